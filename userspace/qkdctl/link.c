// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl link: add, del, set, show.
 */
#include <string.h>

#include "qkdctl.h"

void print_link(const struct qkd_link *l)
{
	const struct qkd_stats *s = &l->stats;

	switch (opts.out) {
	case OUT_JSON:
		json_open('{');
		json_u64("id", l->id);
		json_str("name", l->name);
		if (QKD_HAVE(l, QKD_A_LINK_PEER))
			json_str("peer", l->peer);
		json_str("role", qkd_role_name(l->role));
		json_str("state", qkd_state_name(l->state));
		json_u64("streams", l->streams);
		json_u64("keys_added", s->keys_added);
		json_u64("keys_delivered", s->keys_delivered);
		json_u64("keys_flushed", s->keys_flushed);
		json_u64("keys_stored", s->keys_stored);
		json_u64("bytes_stored", s->bytes_stored);
		json_close('}');
		break;
	case OUT_TAB:
		printf("%u\t%s\t%s\t%s\t%s\t%u\t%llu\t%llu\t%llu\t%llu\t%llu\n",
		       l->id, l->name, qkd_role_name(l->role),
		       qkd_state_name(l->state), l->peer, l->streams,
		       (unsigned long long)s->keys_added,
		       (unsigned long long)s->keys_delivered,
		       (unsigned long long)s->keys_flushed,
		       (unsigned long long)s->keys_stored,
		       (unsigned long long)s->bytes_stored);
		break;
	default:
		printf("%u: %s: role %s state %s", l->id, l->name,
		       qkd_role_name(l->role), qkd_state_name(l->state));
		if (l->peer[0])
			printf(" peer %s", l->peer);
		printf("\n    streams %u stored %llu keys %llu bytes\n",
		       l->streams, (unsigned long long)s->keys_stored,
		       (unsigned long long)s->bytes_stored);
		printf("    keys added %llu delivered %llu flushed %llu\n",
		       (unsigned long long)s->keys_added,
		       (unsigned long long)s->keys_delivered,
		       (unsigned long long)s->keys_flushed);
	}
}

static int link_add(int argc, char **argv)
{
	const char *name, *peer = NULL;
	struct qkd_link l;
	uint32_t id = 0;
	uint8_t role = 0;
	int i = 0, err;

	if (argc < 1)
		usage_error("link add: missing NAME");
	name = arg_link_name(argv[i++]);
	while (i < argc) {
		if (!strcmp(argv[i], "role")) {
			const char *r = arg_next(argc, argv, &i);

			role = qkd_role_parse(r);
			if (!role)
				usage_error("role \"%s\": expected initiator or responder",
					    r);
		} else if (!strcmp(argv[i], "id")) {
			id = arg_u32("link id", arg_next(argc, argv, &i));
			if (!id)
				usage_error("link id 0 is invalid (ids start at 1)");
		} else if (!strcmp(argv[i], "peer")) {
			peer = arg_next(argc, argv, &i);
			if (strlen(peer) >= QKD_PEER_NAME_MAX)
				usage_error("peer \"%s\" too long (at most %d bytes)",
					    peer, QKD_PEER_NAME_MAX - 1);
		} else {
			usage_error("link add: unknown argument \"%s\"",
				    argv[i]);
		}
	}
	if (!role)
		usage_error("link add: missing \"role initiator|responder\"");
	err = qkd_link_add(ctl_nl(), name, role, id, peer, &l);
	if (err)
		return kernel_error("link add", err);
	if (opts.out == OUT_JSON) {
		print_link(&l);
		json_end();
	} else if (opts.out == OUT_TAB) {
		print_link(&l);
	}
	return 0;
}

static int link_del(int argc, char **argv)
{
	struct qkd_link_ref ref;
	int i = 0, err;

	arg_link_ref(argc, argv, &i, &ref);
	arg_end(argc, argv, i);
	err = qkd_link_del(ctl_nl(), &ref);
	return err ? kernel_error("link del", err) : 0;
}

static int link_set(int argc, char **argv)
{
	struct qkd_link_ref ref;
	uint8_t state = 0;
	int i = 0, err;

	arg_link_ref(argc, argv, &i, &ref);
	while (i < argc) {
		if (!strcmp(argv[i], "state")) {
			const char *s = arg_next(argc, argv, &i);

			state = qkd_state_parse(s);
			if (state != QKD_LINK_STATE_UP && state != QKD_LINK_STATE_DOWN)
				usage_error("state \"%s\": expected up or down",
					    s);
		} else {
			usage_error("link set: unknown argument \"%s\"",
				    argv[i]);
		}
	}
	if (!state)
		usage_error("link set: nothing to change (state up|down)");
	err = qkd_link_set_state(ctl_nl(), &ref, state);
	return err ? kernel_error("link set", err) : 0;
}

static int show_one(const struct qkd_link *l, void *arg)
{
	(void)arg;
	print_link(l);
	return 0;
}

static int link_show(int argc, char **argv)
{
	struct qkd_link_ref ref;
	struct qkd_link l;
	int i = 0, err;

	if (argc > 0) {
		arg_link_ref(argc, argv, &i, &ref);
		arg_end(argc, argv, i);
		err = qkd_link_get(ctl_nl(), &ref, &l);
		if (err)
			return kernel_error("link show", err);
		print_link(&l);
		if (opts.out == OUT_JSON)
			json_end();
		return 0;
	}
	listing_begin();
	return listing_end("link show", qkd_link_dump(ctl_nl(), show_one, NULL));
}

int do_link(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : "show";

	argc = argc > 1 ? argc - 2 : 0;
	argv += 2;
	if (matches(verb, "add"))
		return link_add(argc, argv);
	if (matches(verb, "delete"))
		return link_del(argc, argv);
	if (matches(verb, "set"))
		return link_set(argc, argv);
	if (matches(verb, "show") || matches(verb, "list") ||
	    !strcmp(verb, "ls"))
		return link_show(argc, argv);
	usage_error("link: unknown command \"%s\"", verb);
}
