// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl key: push and flush (netlink), get and status (/dev/qkd).
 *
 * Key bytes never come from or go to argv: push reads them from a file or
 * standard input, get writes them to standard output only. Every buffer
 * that held key bytes is zeroed before it is released.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <qkd/dev.h>

#include "qkdctl.h"

enum key_format {
	FMT_HEX,
	FMT_BASE64,
	FMT_RAW,
	FMT_IP_XFRM,
};

/* "key get ... number N": one request per key, so only a sanity bound. */
#define KEY_GET_NUMBER_MAX	(1u << 20)

/* An ioctl error with a hint for the errnos that need one. */
static int dev_error(const char *what, int err)
{
	const char *hint = NULL;

	switch (-err) {
	case EAGAIN:
		hint = "the stream holds no key";
		break;
	case ENOKEY:
		hint = "that index has not been pushed yet";
		break;
	case EKEYEXPIRED:
		hint = "that key was already delivered, flushed or skipped";
		break;
	case ENOENT:
		hint = "no such stream";
		break;
	case ERANGE:
		hint = "key larger than the buffer";
		break;
	}
	if (hint)
		return fail_msg("%s: %s (%s)", what, strerror(-err), hint);
	return fail_msg("%s: %s", what, strerror(-err));
}

static int key_push(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	const char *path = NULL;
	bool hex = false, have_index = false, next = false;
	uint64_t index = 0, pushed = 0, count;
	uint8_t *data = NULL;
	struct qkd_stream s;
	char why[128];
	size_t len = 0;
	int i = 0, err;

	if (argc < 1)
		usage_error("key push: missing UUID");
	arg_uuid("stream id", argv[i++], id);
	while (i < argc) {
		if (!strcmp(argv[i], "index")) {
			const char *v = arg_next(argc, argv, &i);

			if (!strcmp(v, "next"))
				next = true;
			else
				index = arg_u64("index", v, QKD_INDEX_MAX);
			have_index = true;
		} else if (!strcmp(argv[i], "file")) {
			path = arg_next(argc, argv, &i);
		} else if (!strcmp(argv[i], "hex")) {
			hex = true;
			i++;
		} else {
			usage_error("key push: unknown argument \"%s\"",
				    argv[i]);
		}
	}
	if (!have_index)
		usage_error("key push: missing \"index N\" (or \"index next\")");

	err = qkd_stream_get(ctl_nl(), id, &s);
	if (err)
		return kernel_error("key push", err);
	if (!s.key_size)
		return fail_msg("key push: the kernel did not report the stream's key size");
	if (next)
		index = s.next_index;

	err = qkd_read_keys(path, hex, s.key_size, &data, &len, why,
			    sizeof(why));
	if (err == -EINVAL) {
		fprintf(stderr, "qkdctl: key push: %s\n", why);
		return EXIT_USAGE;
	}
	if (err)
		return fail_msg("key push: %s", why);
	count = len / s.key_size;

	err = qkd_key_add(ctl_nl(), id, index, data, len, s.key_size,
			  &pushed);
	qkd_free_secret(data, len);
	if (err) {
		kernel_error("key push", err);
		if (pushed)
			fail_msg("key push: %llu of %llu keys were pushed (indices %llu..%llu)",
				 (unsigned long long)pushed,
				 (unsigned long long)count,
				 (unsigned long long)index,
				 (unsigned long long)(index + pushed - 1));
		return 1;
	}
	if (opts.out == OUT_JSON) {
		json_open('{');
		json_uuid("stream", id);
		json_u64("first_index", index);
		json_u64("count", count);
		json_u64("key_size", s.key_size);
		json_close('}');
		json_end();
	} else if (opts.out == OUT_TAB) {
		printf("%llu\t%llu\n", (unsigned long long)index,
		       (unsigned long long)count);
	}
	return 0;
}

static int key_flush(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	int err;

	if (argc < 1)
		usage_error("key flush: missing UUID");
	arg_uuid("stream id", argv[0], id);
	arg_end(argc, argv, 1);
	err = qkd_key_flush(ctl_nl(), id);
	return err ? kernel_error("key flush", err) : 0;
}

/* rfc4106(gcm(aes)) keys are the AES key followed by a 4-byte salt. */
static bool xfrm_key_size_ok(uint32_t size)
{
	return size == 16 + 4 || size == 24 + 4 || size == 32 + 4;
}

static int print_key(const uint8_t stream[QKD_STREAM_ID_LEN], uint64_t index,
		     const uint8_t key_id[QKD_KEY_ID_LEN], const uint8_t *key,
		     size_t len, enum key_format fmt, bool in_array)
{
	/* Large enough for 0x + hex, or base64, of QKD_KEY_SIZE_MAX bytes. */
	char text[2 * QKD_KEY_SIZE_MAX + 3];
	char kid[QKD_UUID_STR_LEN];
	ssize_t r;

	if (fmt == FMT_RAW)
		return fwrite(key, 1, len, stdout) == len ? 0 : -EIO;
	if (fmt == FMT_BASE64) {
		r = qkd_base64_encode(key, len, text, sizeof(text));
	} else if (fmt == FMT_IP_XFRM) {
		text[0] = '0';
		text[1] = 'x';
		r = qkd_hex_encode(key, len, text + 2, sizeof(text) - 2);
	} else {
		r = qkd_hex_encode(key, len, text, sizeof(text));
	}
	if (r < 0)
		return (int)r;
	qkd_uuid_format(key_id, kid);
	if (opts.out == OUT_JSON) {
		json_open('{');
		json_uuid("stream", stream);
		json_u64("index", index);
		json_str("key_id", kid);
		json_u64("key_size", len);
		json_str("key", text);
		json_close('}');
		if (!in_array)
			json_end();
	} else {
		printf("%llu\t%s\t%s\n", (unsigned long long)index, kid, text);
	}
	explicit_bzero(text, sizeof(text));
	return 0;
}

/*
 * key_take_one: take one key (the next one, or by index, or by key ID) and
 * print it. Returns 0, a negative errno from the device (nothing taken, the
 * message already printed) or 1 if the key was taken but could not be
 * printed.
 */
static int key_take_one(int fd, const uint8_t id[QKD_STREAM_ID_LEN],
			bool by_index, bool by_id, uint64_t index,
			uint8_t key_id[QKD_KEY_ID_LEN], enum key_format fmt,
			bool in_array)
{
	uint8_t key[QKD_KEY_SIZE_MAX];
	size_t len = 0;
	int err;

	if (by_id)
		err = qkd_dev_get_key_by_id(fd, id, key_id, key, sizeof(key),
					    &len, &index);
	else if (by_index)
		err = qkd_dev_get_key_by_index(fd, id, index, key, sizeof(key),
					       &len, key_id);
	else
		err = qkd_dev_get_key(fd, id, key, sizeof(key), &len, &index,
				      key_id);
	if (err) {
		char what[48];

		explicit_bzero(key, sizeof(key));
		if (by_index)
			snprintf(what, sizeof(what), "key get: index %llu",
				 (unsigned long long)index);
		else
			snprintf(what, sizeof(what), "key get");
		dev_error(what, err);
		return err;
	}
	err = print_key(id, index, key_id, key, len, fmt, in_array);
	explicit_bzero(key, sizeof(key));
	if (err) {
		fail_msg("key get: %s (the key was taken)", strerror(-err));
		return 1;
	}
	return 0;
}

/*
 * "key get UUID number M": the M lowest stored keys in one QKD_IOC_GET_KEYS
 * (ETSI 014 enc_keys with "number"), all or nothing.
 */
static int key_get_next_keys(int fd, const uint8_t id[QKD_STREAM_ID_LEN],
			     uint32_t number, enum key_format fmt)
{
	uint8_t key_id[QKD_KEY_ID_LEN], *keys;
	uint64_t indices[QKD_GET_KEYS_MAX];
	uint32_t got = 0, ks = 0, i;
	size_t len = (size_t)number * QKD_KEY_SIZE_MAX;
	int err;

	keys = malloc(len);
	if (!keys)
		return fail_msg("key get: %s", strerror(ENOMEM));
	err = qkd_dev_get_keys(fd, id, number, 0, keys, len, indices, &got,
			       &ks);
	if (err) {
		explicit_bzero(keys, len);
		free(keys);
		if (err == -EAGAIN)
			return fail_msg("key get: the stream holds fewer than %u keys (none taken)",
					number);
		return dev_error("key get", err);
	}
	if (opts.out == OUT_JSON)
		json_open('[');
	for (i = 0; i < got && !err; i++) {
		qkd_key_id_from_index(key_id, id, indices[i]);
		err = print_key(id, indices[i], key_id, keys + (size_t)i * ks,
				ks, fmt, true);
	}
	if (opts.out == OUT_JSON) {
		json_close(']');
		json_end();
	}
	explicit_bzero(keys, len);
	free(keys);
	if (err)
		return fail_msg("key get: %s (%u keys were taken)",
				strerror(-err), got);
	return 0;
}

static int key_get(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN], key_id[QKD_KEY_ID_LEN];
	enum key_format fmt = FMT_HEX;
	bool by_index = false, by_id = false, many = false;
	struct qkd_stream_status st;
	const char *kid_arg = NULL;
	uint64_t index = 0, number = 1, taken = 0, refused = 0;
	int i = 0, fd, err = 0;

	if (argc < 1)
		usage_error("key get: missing UUID");
	arg_uuid("stream id", argv[i++], id);
	while (i < argc) {
		if (!strcmp(argv[i], "index")) {
			index = arg_u64("index", arg_next(argc, argv, &i),
					QKD_INDEX_MAX);
			by_index = true;
		} else if (!strcmp(argv[i], "key-id")) {
			kid_arg = arg_next(argc, argv, &i);
			arg_uuid("key-id", kid_arg, key_id);
			by_id = true;
		} else if (!strcmp(argv[i], "number")) {
			/* ETSI GS QKD 014 "number": keys in one request */
			number = arg_u64("number", arg_next(argc, argv, &i),
					 KEY_GET_NUMBER_MAX);
			if (!number)
				usage_error("key get: number must be at least 1");
			many = true;
		} else if (!strcmp(argv[i], "format")) {
			const char *f = arg_next(argc, argv, &i);

			if (!strcmp(f, "hex"))
				fmt = FMT_HEX;
			else if (!strcmp(f, "base64"))
				fmt = FMT_BASE64;
			else if (!strcmp(f, "raw"))
				fmt = FMT_RAW;
			else if (!strcmp(f, "ip-xfrm"))
				fmt = FMT_IP_XFRM;
			else
				usage_error("format \"%s\": expected hex, base64, raw or ip-xfrm",
					    f);
		} else {
			usage_error("key get: unknown argument \"%s\"",
				    argv[i]);
		}
	}
	if (by_index && by_id)
		usage_error("key get: give \"index N\" or \"key-id KEYUUID\", not both");
	if (fmt == FMT_RAW && opts.out == OUT_JSON)
		usage_error("key get: format raw cannot be combined with --json");
	if (by_id && qkd_key_id_index(key_id, id, &index))
		usage_error("key get: key-id %s is not a key ID of stream %s",
			    kid_arg, argv[0]);
	if (many && by_id)
		usage_error("key get: number goes with the next keys or \"index N\", not with key-id");
	if (many && fmt == FMT_RAW)
		usage_error("key get: format raw takes one key at a time");
	if (many && !by_index && number > QKD_GET_KEYS_MAX)
		usage_error("key get: number %llu: one request takes at most %u keys (ETSI 014 max_key_per_request)",
			    (unsigned long long)number, QKD_GET_KEYS_MAX);
	if (by_index && number - 1 > QKD_INDEX_MAX - index)
		usage_error("key get: index %llu + number %llu goes past the largest index",
			    (unsigned long long)index,
			    (unsigned long long)number);

	fd = ctl_dev();
	if (fmt == FMT_IP_XFRM) {
		/* Check before taking: a taken key cannot be put back. */
		err = qkd_dev_stream_status(fd, id, &st);
		if (err)
			return dev_error("key get", err);
		if (!xfrm_key_size_ok(st.key_size))
			return fail_msg("key get: format ip-xfrm: the stream's keys are %u bytes, but rfc4106(gcm(aes)) takes an AES key plus a 4-byte salt: 20, 28 or 36 bytes (no key taken)",
					st.key_size);
	}
	if (!many) {
		err = key_take_one(fd, id, by_index, by_id, index, key_id, fmt,
				   false);
		return err ? 1 : 0;
	}
	if (!by_index)
		return key_get_next_keys(fd, id, (uint32_t)number, fmt);
	/*
	 * A range by index: every index is tried and each refusal is
	 * reported on its own line, so that two sites can compare a range
	 * index by index.
	 */
	if (opts.out == OUT_JSON)
		json_open('[');
	for (uint64_t n = 0; n < number; n++) {
		err = key_take_one(fd, id, by_index, false, index + n, key_id,
				   fmt, true);
		if (err == 1)
			break;
		if (err) {
			refused++;
			if (!by_index)
				break;
			continue;
		}
		taken++;
	}
	if (opts.out == OUT_JSON) {
		json_close(']');
		json_end();
	}
	if (err == 1)
		return 1;
	if (taken < number) {
		fprintf(stderr, "qkdctl: key get: %llu of %llu keys taken\n",
			(unsigned long long)taken, (unsigned long long)number);
		return 1;
	}
	return 0;
}

static int key_status(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	struct qkd_stream_status st;
	char sid[QKD_UUID_STR_LEN];
	int err;

	if (argc < 1)
		usage_error("key status: missing UUID");
	arg_uuid("stream id", argv[0], id);
	arg_end(argc, argv, 1);
	err = qkd_dev_stream_status(ctl_dev(), id, &st);
	if (err)
		return dev_error("key status", err);
	qkd_uuid_format(id, sid);
	switch (opts.out) {
	case OUT_JSON:
		json_open('{');
		json_str("stream", sid);
		json_u64("link_id", st.link_id);
		json_u64("key_size", st.key_size);
		json_u64("stored_key_count", st.stored_key_count);
		json_u64("max_key_count", st.max_key_count);
		json_u64("max_key_per_request", st.max_key_per_request);
		json_u64("min_key_size", st.min_key_size);
		json_u64("max_key_size", st.max_key_size);
		json_u64("next_index", st.next_index);
		json_close('}');
		json_end();
		break;
	case OUT_TAB:
		printf("%s\t%u\t%u\t%u\t%u\t%u\t%u\t%u\t%llu\n", sid,
		       st.link_id, st.key_size, st.stored_key_count,
		       st.max_key_count, st.max_key_per_request,
		       st.min_key_size, st.max_key_size,
		       (unsigned long long)st.next_index);
		break;
	default:
		printf("%s: link %u key-size %u\n", sid, st.link_id,
		       st.key_size);
		printf("    stored %u/%u max-per-request %u next-index %llu\n",
		       st.stored_key_count, st.max_key_count,
		       st.max_key_per_request,
		       (unsigned long long)st.next_index);
		printf("    key-size range %u..%u\n", st.min_key_size,
		       st.max_key_size);
	}
	return 0;
}

int do_key(int argc, char **argv)
{
	const char *verb;

	if (argc < 2)
		usage_error("key: missing command (push, flush, get, status, to-keyring)");
	verb = argv[1];
	argc -= 2;
	argv += 2;
	if (matches(verb, "push"))
		return key_push(argc, argv);
	if (matches(verb, "flush"))
		return key_flush(argc, argv);
	if (matches(verb, "get"))
		return key_get(argc, argv);
	if (matches(verb, "status"))
		return key_status(argc, argv);
	if (matches(verb, "to-keyring"))
		return key_to_keyring(argc, argv);
	usage_error("key: unknown command \"%s\"", verb);
}
