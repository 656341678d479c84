// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl stream: add, set, del, show.
 */
#include <errno.h>
#include <string.h>

#include "qkdctl.h"

/* Who may take the stream's keys (enum qkd_stream_consumer). */
static const char *consumer_name(uint8_t c)
{
	switch (c) {
	case QKD_STREAM_CONSUMER_NONE:
		return "none";
	case QKD_STREAM_CONSUMER_SA:
		return "sa";
	default:
		return "unknown";
	}
}

void print_stream(const struct qkd_stream *s)
{
	const struct qkd_stats *st = &s->stats;
	const char *lname = link_name_of(s->link_id);
	char id[QKD_UUID_STR_LEN];

	qkd_uuid_format(s->id, id);
	switch (opts.out) {
	case OUT_JSON:
		json_open('{');
		json_str("stream", id);
		json_u64("link_id", s->link_id);
		if (lname)
			json_str("link", lname);
		json_u64("key_size", s->key_size);
		json_u64("max_keys", s->max_keys);
		json_u64("low_water", s->low_water);
		json_u64("stored_keys", s->stored_keys);
		json_u64("next_index", s->next_index);
		json_str("consumer", consumer_name(s->consumer));
		json_u64("keys_added", st->keys_added);
		json_u64("keys_delivered", st->keys_delivered);
		json_u64("keys_flushed", st->keys_flushed);
		json_u64("keys_stored", st->keys_stored);
		json_u64("bytes_stored", st->bytes_stored);
		json_close('}');
		break;
	case OUT_TAB:
		printf("%s\t%u\t%u\t%u\t%u\t%u\t%llu\t%llu\t%llu\t%llu\t%llu\t%s\n",
		       id, s->link_id, s->key_size, s->max_keys, s->low_water,
		       s->stored_keys, (unsigned long long)s->next_index,
		       (unsigned long long)st->keys_added,
		       (unsigned long long)st->keys_delivered,
		       (unsigned long long)st->keys_flushed,
		       (unsigned long long)st->bytes_stored,
		       consumer_name(s->consumer));
		break;
	default:
		printf("%s: link %s (%u) key-size %u%s\n", id,
		       lname ? lname : "?", s->link_id, s->key_size,
		       s->consumer == QKD_STREAM_CONSUMER_SA ?
		       " (keys an SA binding)" : "");
		printf("    stored %u/%u low-water %u next-index %llu\n",
		       s->stored_keys, s->max_keys, s->low_water,
		       (unsigned long long)s->next_index);
		printf("    keys added %llu delivered %llu flushed %llu bytes %llu\n",
		       (unsigned long long)st->keys_added,
		       (unsigned long long)st->keys_delivered,
		       (unsigned long long)st->keys_flushed,
		       (unsigned long long)st->bytes_stored);
	}
}

/*
 * [max-keys N] [low-water N] from argv[*i] on; returns false on another
 * keyword (left at argv[*i]).
 */
static bool parse_limit(int argc, char **argv, int *i,
			uint32_t *max_keys, bool *have_max,
			uint32_t *low_water, bool *have_low)
{
	if (!strcmp(argv[*i], "max-keys")) {
		*max_keys = arg_u32("max-keys", arg_next(argc, argv, i));
		*have_max = true;
		return true;
	}
	if (!strcmp(argv[*i], "low-water")) {
		*low_water = arg_u32("low-water", arg_next(argc, argv, i));
		*have_low = true;
		return true;
	}
	return false;
}

static void print_result(const struct qkd_stream *s)
{
	/* Like ip: silent on success, the object with -j or -t. */
	if (opts.out == OUT_HUMAN)
		return;
	link_name_of(0);
	print_stream(s);
	if (opts.out == OUT_JSON)
		json_end();
}

static int stream_add(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	struct qkd_link_ref link = { 0 };
	uint32_t key_size = 0, max_keys = 0, low_water = 0;
	bool have_link = false, have_size = false, have_max = false,
	     have_low = false;
	struct qkd_stream s;
	int i = 0, err;

	if (argc < 1)
		usage_error("stream add: missing UUID");
	arg_uuid("stream id", argv[i++], id);
	while (i < argc) {
		if (parse_limit(argc, argv, &i, &max_keys, &have_max,
				&low_water, &have_low))
			continue;
		if (!strcmp(argv[i], "link")) {
			i++;
			arg_link_ref(argc, argv, &i, &link);
			have_link = true;
		} else if (!strcmp(argv[i], "key-size")) {
			key_size = arg_u32("key-size",
					   arg_next(argc, argv, &i));
			have_size = true;
		} else {
			usage_error("stream add: unknown argument \"%s\"",
				    argv[i]);
		}
	}
	if (!have_link)
		usage_error("stream add: missing \"link { NAME | id N }\"");
	if (!have_size)
		usage_error("stream add: missing \"key-size BYTES\"");
	err = qkd_stream_add(ctl_nl(), id, &link, key_size,
			     have_max ? &max_keys : NULL,
			     have_low ? &low_water : NULL, &s);
	if (err)
		return kernel_error("stream add", err);
	print_result(&s);
	return 0;
}

static int stream_set(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	uint32_t max_keys = 0, low_water = 0;
	bool have_max = false, have_low = false;
	struct qkd_stream s;
	int i = 0, err;

	if (argc < 1)
		usage_error("stream set: missing UUID");
	arg_uuid("stream id", argv[i++], id);
	while (i < argc) {
		if (!parse_limit(argc, argv, &i, &max_keys, &have_max,
				 &low_water, &have_low))
			usage_error("stream set: unknown argument \"%s\"",
				    argv[i]);
	}
	if (!have_max && !have_low)
		usage_error("stream set: nothing to change (max-keys N, low-water N)");
	err = qkd_stream_set(ctl_nl(), id, have_max ? &max_keys : NULL,
			     have_low ? &low_water : NULL, &s);
	if (err)
		return kernel_error("stream set", err);
	print_result(&s);
	return 0;
}

static int stream_del(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	int err;

	if (argc < 1)
		usage_error("stream del: missing UUID");
	arg_uuid("stream id", argv[0], id);
	arg_end(argc, argv, 1);
	err = qkd_stream_del(ctl_nl(), id);
	return err ? kernel_error("stream del", err) : 0;
}

static int show_one(const struct qkd_stream *s, void *arg)
{
	(void)arg;
	print_stream(s);
	return 0;
}

static int stream_show(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	struct qkd_link_ref link = { 0 };
	bool have_id = false, have_link = false;
	struct qkd_stream s;
	int i = 0, err;

	while (i < argc) {
		if (!strcmp(argv[i], "link")) {
			i++;
			arg_link_ref(argc, argv, &i, &link);
			have_link = true;
		} else if (!have_id) {
			arg_uuid("stream id", argv[i++], id);
			have_id = true;
		} else {
			usage_error("stream show: unknown argument \"%s\"",
				    argv[i]);
		}
	}
	/* Fetch link names now: no request may run inside a dump. */
	link_name_of(0);
	if (have_id) {
		err = qkd_stream_get(ctl_nl(), id, &s);
		if (err)
			return kernel_error("stream show", err);
		if (have_link) {
			const char *n = link_name_of(s.link_id);
			bool same = link.name ?
				n && !strcmp(link.name, n) :
				link.id == s.link_id;

			if (!same)
				return kernel_error("stream show", -ENOENT);
		}
		print_stream(&s);
		if (opts.out == OUT_JSON)
			json_end();
		return 0;
	}
	listing_begin();
	return listing_end("stream show",
			   qkd_stream_dump(ctl_nl(), have_link ? &link : NULL,
					   show_one, NULL));
}

int do_stream(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "show";

	argc = argc > 1 ? argc - 2 : 0;
	argv += 2;
	if (matches(verb, "add"))
		return stream_add(argc, argv);
	if (matches(verb, "delete"))
		return stream_del(argc, argv);
	if (matches(verb, "set"))
		return stream_set(argc, argv);
	if (matches(verb, "show") || matches(verb, "list") ||
	    !strcmp(verb, "ls"))
		return stream_show(argc, argv);
	usage_error("stream: unknown command \"%s\"", verb);
}
