// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl key: push and flush (netlink), get and status (/dev/qkd).
 *
 * Key bytes never come from or go to argv: push reads them from a file or
 * standard input, get writes them to standard output only. Every buffer
 * that held key bytes is zeroed before it is released.
 */
#include <errno.h>
#include <string.h>

#include <qkd/dev.h>

#include "qkdctl.h"

enum key_format {
	FMT_HEX,
	FMT_BASE64,
	FMT_RAW,
	FMT_IP_XFRM,
};

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
		     size_t len, enum key_format fmt)
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
		json_end();
	} else {
		printf("%llu\t%s\t%s\n", (unsigned long long)index, kid, text);
	}
	explicit_bzero(text, sizeof(text));
	return 0;
}

static int key_get(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN], key_id[QKD_KEY_ID_LEN];
	uint8_t key[QKD_KEY_SIZE_MAX];
	enum key_format fmt = FMT_HEX;
	bool by_index = false, by_id = false;
	struct qkd_stream_status st;
	const char *kid_arg = NULL;
	uint64_t index = 0;
	size_t len = 0;
	int i = 0, fd, err;

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
		explicit_bzero(key, sizeof(key));
		return dev_error("key get", err);
	}
	err = print_key(id, index, key_id, key, len, fmt);
	explicit_bzero(key, sizeof(key));
	if (err)
		return fail_msg("key get: %s (the key was taken)",
				strerror(-err));
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
		usage_error("key: missing command (push, flush, get, status)");
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
	usage_error("key: unknown command \"%s\"", verb);
}
