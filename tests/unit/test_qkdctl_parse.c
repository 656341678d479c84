// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host unit tests of libqkd's parsers and encoders (used by qkdctl and
 * qkdd): numbers, UUIDs, hex, base64, key_ID mapping, key files, the
 * decoders of netlink replies, and qkdctl's exit codes on bad arguments.
 * No kernel module is needed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netlink/attr.h>
#include <netlink/msg.h>

#include <qkd/json.h>
#include <qkd/nl.h>
#include <qkd/util.h>

#include "kselftest_harness.h"

/* ---- numbers ------------------------------------------------------------ */

TEST(parse_u64_accepts)
{
	uint64_t v;

	ASSERT_EQ(0, qkd_parse_u64("0", UINT64_MAX, &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(0, qkd_parse_u64("42", UINT64_MAX, &v));
	EXPECT_EQ(42, v);
	ASSERT_EQ(0, qkd_parse_u64("007", UINT64_MAX, &v));
	EXPECT_EQ(7, v);	/* decimal, not octal */
	ASSERT_EQ(0, qkd_parse_u64("0x1F", UINT64_MAX, &v));
	EXPECT_EQ(31, v);
	ASSERT_EQ(0, qkd_parse_u64("18446744073709551615", UINT64_MAX, &v));
	EXPECT_EQ(UINT64_MAX, v);
	ASSERT_EQ(0, qkd_parse_u64("0xffffffffffffffff", UINT64_MAX, &v));
	EXPECT_EQ(UINT64_MAX, v);
	ASSERT_EQ(0, qkd_parse_u64("72057594037927935", QKD_INDEX_MAX, &v));
	EXPECT_EQ(QKD_INDEX_MAX, v);
}

TEST(parse_u64_rejects)
{
	static const char *const bad[] = {
		"", "-1", "-0", "+1", " 1", "1 ", "1x", "12abc", "0x", "0x-1",
		"1.5", "1e3", "0b101", "\t7", "4294967296\n", "0xg",
	};
	uint64_t v = 1234;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_EQ(-EINVAL, qkd_parse_u64(bad[i], UINT64_MAX, &v))
			TH_LOG("accepted \"%s\"", bad[i]);
	}
	EXPECT_EQ(1234, v);	/* untouched on failure */
	EXPECT_EQ(-EINVAL, qkd_parse_u64(NULL, UINT64_MAX, &v));
	/* Overflow of 64 bits, and above the given maximum. */
	EXPECT_EQ(-ERANGE, qkd_parse_u64("18446744073709551616", UINT64_MAX, &v));
	EXPECT_EQ(-ERANGE, qkd_parse_u64("99999999999999999999999", UINT64_MAX, &v));
	EXPECT_EQ(-ERANGE, qkd_parse_u64("0x10000000000000000", UINT64_MAX, &v));
	EXPECT_EQ(-ERANGE, qkd_parse_u64("72057594037927936", QKD_INDEX_MAX, &v));
	EXPECT_EQ(-ERANGE, qkd_parse_u64("11", 10, &v));
	/* Garbage after an overflowing number is a format error. */
	EXPECT_EQ(-EINVAL, qkd_parse_u64("99999999999999999999999z", UINT64_MAX, &v));
	EXPECT_EQ(1234, v);
}

TEST(parse_u32)
{
	uint32_t v = 5;

	ASSERT_EQ(0, qkd_parse_u32("4294967295", &v));
	EXPECT_EQ(UINT32_MAX, v);
	ASSERT_EQ(0, qkd_parse_u32("0x20", &v));
	EXPECT_EQ(32, v);
	EXPECT_EQ(-ERANGE, qkd_parse_u32("4294967296", &v));
	EXPECT_EQ(-EINVAL, qkd_parse_u32("-4294967295", &v));
	EXPECT_EQ(-EINVAL, qkd_parse_u32("32k", &v));
	EXPECT_EQ(32, v);
}

/* ---- UUIDs -------------------------------------------------------------- */

TEST(uuid_round_trip)
{
	static const uint8_t bin[16] = {
		0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
		0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
	};
	char s[QKD_UUID_STR_LEN];
	uint8_t out[16];
	unsigned int i;

	qkd_uuid_format(bin, s);
	EXPECT_STREQ("00112233-4455-6677-8899-aabbccddeeff", s);
	ASSERT_EQ(0, qkd_uuid_parse(s, out));
	EXPECT_EQ(0, memcmp(bin, out, 16));
	/* Upper case parses to the same bytes, formats back lower case. */
	ASSERT_EQ(0, qkd_uuid_parse("00112233-4455-6677-8899-AABBCCDDEEFF", out));
	EXPECT_EQ(0, memcmp(bin, out, 16));

	/* Every byte value survives a round trip. */
	for (i = 0; i < 256; i += 16) {
		uint8_t b[16], c[16];
		unsigned int j;

		for (j = 0; j < 16; j++)
			b[j] = (uint8_t)(i + j * 17);
		qkd_uuid_format(b, s);
		ASSERT_EQ(36, strlen(s));
		ASSERT_EQ(0, qkd_uuid_parse(s, c));
		ASSERT_EQ(0, memcmp(b, c, 16));
	}
	memset(out, 0, sizeof(out));
	EXPECT_TRUE(qkd_uuid_is_zero(out));
	out[15] = 1;
	EXPECT_FALSE(qkd_uuid_is_zero(out));
}

TEST(uuid_rejects)
{
	static const char *const bad[] = {
		"",
		"00112233445566778899aabbccddeeff",		/* no dashes */
		"00112233-4455-6677-8899-aabbccddeef",		/* short */
		"00112233-4455-6677-8899-aabbccddeeff0",	/* long */
		"00112233-4455-6677-8899-aabbccddeefg",		/* not hex */
		"0011223-34455-6677-8899-aabbccddeeff",		/* dash moved */
		"00112233_4455_6677_8899_aabbccddeeff",
		"{00112233-4455-6677-8899-aabbccddeeff}",
		" 00112233-4455-6677-8899-aabbccddeef",
		"00112233-4455-6677-8899-aabbccddeef ",
		"+0112233-4455-6677-8899-aabbccddeeff",
	};
	uint8_t out[16], keep[16];
	size_t i;

	memset(out, 0x5a, sizeof(out));
	memcpy(keep, out, sizeof(out));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_EQ(-EINVAL, qkd_uuid_parse(bad[i], out))
			TH_LOG("accepted case %zu", i);
	EXPECT_EQ(-EINVAL, qkd_uuid_parse(NULL, out));
	EXPECT_EQ(0, memcmp(out, keep, 16));
}

/* ---- hex and base64 ----------------------------------------------------- */

TEST(hex)
{
	static const uint8_t bin[] = { 0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff };
	uint8_t out[8];
	char s[13];

	ASSERT_EQ(12, qkd_hex_encode(bin, sizeof(bin), s, sizeof(s)));
	EXPECT_STREQ("00017f80feff", s);
	EXPECT_EQ(-ENOSPC, qkd_hex_encode(bin, sizeof(bin), s, 12));
	ASSERT_EQ(6, qkd_hex_decode("00017F80feFF", 12, out, sizeof(out)));
	EXPECT_EQ(0, memcmp(bin, out, sizeof(bin)));
	EXPECT_EQ(0, qkd_hex_decode("", 0, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_hex_decode("abc", 3, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_hex_decode("0g", 2, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_hex_decode("0 ", 2, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_hex_decode("0x12", 4, out, sizeof(out)));
	EXPECT_EQ(-ENOSPC, qkd_hex_decode("00112233", 8, out, 3));
}

TEST(base64_vectors)
{
	/* RFC 4648 section 10. */
	static const char *const vec[][2] = {
		{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" },
		{ "foo", "Zm9v" }, { "foob", "Zm9vYg==" },
		{ "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
	};
	uint8_t out[16];
	char s[16];
	size_t i, n;

	for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
		n = strlen(vec[i][0]);
		ASSERT_EQ((ssize_t)strlen(vec[i][1]),
			  qkd_base64_encode((const uint8_t *)vec[i][0], n, s,
					    sizeof(s)));
		EXPECT_STREQ(vec[i][1], s);
		ASSERT_EQ((ssize_t)n, qkd_base64_decode(vec[i][1],
							strlen(vec[i][1]),
							out, sizeof(out)));
		EXPECT_EQ(0, memcmp(out, vec[i][0], n));
	}
	EXPECT_EQ(qkd_base64_size(32), 45);
	EXPECT_EQ(-ENOSPC, qkd_base64_encode((const uint8_t *)"foo", 3, s, 4));
}

TEST(base64_round_trip_and_rejects)
{
	uint8_t in[257], out[257];
	char s[400];
	size_t n, i;
	ssize_t r;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + 3);
	for (n = 0; n <= sizeof(in); n += 1 + n / 3) {
		r = qkd_base64_encode(in, n, s, sizeof(s));
		ASSERT_EQ((ssize_t)(4 * ((n + 2) / 3)), r);
		ASSERT_EQ((ssize_t)n, qkd_base64_decode(s, (size_t)r, out,
							sizeof(out)));
		ASSERT_EQ(0, memcmp(in, out, n));
	}
	EXPECT_EQ(-EINVAL, qkd_base64_decode("Zg=", 3, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_base64_decode("Z===", 4, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_base64_decode("Zg=A", 4, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_base64_decode("Zg==Zg==", 8, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_base64_decode("Zh==", 4, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_base64_decode("Zm9 ", 4, out, sizeof(out)));
	/* bytes from 0x80 up (libsodium 1.0.18 reads them as '/') */
	EXPECT_EQ(-EINVAL, qkd_base64_decode("\x80" "AAA", 4, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_base64_decode("Zm9\xff", 4, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_base64_decode("18446744073709551\xff\xff" "6",
					     20, out, sizeof(out)));
	EXPECT_EQ(-EINVAL, qkd_base64_decode("Zm9-", 4, out, sizeof(out)));
	EXPECT_EQ(-ENOSPC, qkd_base64_decode("Zm9vYmFy", 8, out, 5));
}

/* ---- key_ID mapping ----------------------------------------------------- */

TEST(key_id_mapping)
{
	uint8_t stream[16], kid[16];
	uint64_t idx;
	unsigned int i;

	ASSERT_EQ(0, qkd_uuid_parse("5f0c7a3e-1b2d-4c6e-8f10-112233445566",
				    stream));
	qkd_key_id(stream, 0, kid);
	EXPECT_EQ(0, memcmp(stream, kid, 16));	/* index 0: the stream ID */

	qkd_key_id(stream, 0x0102030405, kid);
	EXPECT_EQ(0, memcmp(stream, kid, 11));
	EXPECT_EQ(0x22 ^ 0x01, kid[11]);
	EXPECT_EQ(0x33 ^ 0x02, kid[12]);
	EXPECT_EQ(0x44 ^ 0x03, kid[13]);
	EXPECT_EQ(0x55 ^ 0x04, kid[14]);
	EXPECT_EQ(0x66 ^ 0x05, kid[15]);
	ASSERT_EQ(0, qkd_key_id_index(kid, stream, &idx));
	EXPECT_EQ(0x0102030405ULL, idx);

	qkd_key_id(stream, QKD_INDEX_MAX, kid);
	EXPECT_EQ(stream[8], kid[8]);		/* the UUID variant stays */
	ASSERT_EQ(0, qkd_key_id_index(kid, stream, &idx));
	EXPECT_EQ(QKD_INDEX_MAX, idx);

	for (i = 0; i < 64; i++) {
		uint64_t want = (0x9e3779b97f4a7c15ULL * (i + 1)) & QKD_INDEX_MAX;

		qkd_key_id(stream, want, kid);
		ASSERT_EQ(0, qkd_key_id_index(kid, stream, &idx));
		ASSERT_EQ(want, idx);
	}

	/* A key ID of another stream, or with an index above 2^56 - 1. */
	qkd_key_id(stream, 7, kid);
	kid[0] ^= 1;
	EXPECT_EQ(-EINVAL, qkd_key_id_index(kid, stream, &idx));
	kid[0] ^= 1;
	kid[8] ^= 1;
	EXPECT_EQ(-EINVAL, qkd_key_id_index(kid, stream, &idx));
}

/* ---- reading key material ------------------------------------------------- */

static char *write_tmp(const void *data, size_t len)
{
	char *path = strdup("/tmp/qkd-unit-XXXXXX");
	int fd;

	if (!path)
		return NULL;
	fd = mkstemp(path);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		free(path);
		return NULL;
	}
	close(fd);
	return path;
}

TEST(read_keys_raw_file)
{
	uint8_t in[96], *data = NULL;
	char why[128] = "", *path;
	size_t len = 0, i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(255 - i);
	path = write_tmp(in, sizeof(in));
	ASSERT_NE(NULL, path);

	ASSERT_EQ(0, qkd_read_keys(path, false, 32, &data, &len, why,
				   sizeof(why))) TH_LOG("%s", why);
	EXPECT_EQ(96, len);
	EXPECT_EQ(0, memcmp(in, data, sizeof(in)));
	qkd_free_secret(data, len);

	/* 96 bytes are 6 keys of 16, 2 of 48, but not keys of 20 or 64. */
	ASSERT_EQ(0, qkd_read_keys(path, false, 16, &data, &len, NULL, 0));
	qkd_free_secret(data, len);
	ASSERT_EQ(0, qkd_read_keys(path, false, 48, &data, &len, NULL, 0));
	qkd_free_secret(data, len);
	data = NULL;
	EXPECT_EQ(-EINVAL, qkd_read_keys(path, false, 20, &data, &len, why,
					 sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "not a multiple of the key size 20"));
	EXPECT_EQ(-EINVAL, qkd_read_keys(path, false, 64, &data, &len, NULL,
					 0));
	EXPECT_EQ(NULL, data);
	unlink(path);
	free(path);

	EXPECT_EQ(-ENOENT, qkd_read_keys("/nonexistent/qkd-keys", false, 16,
					 &data, &len, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "/nonexistent/qkd-keys"));

	/* An empty file is no key material. */
	path = write_tmp("", 0);
	ASSERT_NE(NULL, path);
	EXPECT_EQ(-EINVAL, qkd_read_keys(path, false, 16, &data, &len, why,
					 sizeof(why)));
	EXPECT_STREQ("no key material", why);
	unlink(path);
	free(path);
}

TEST(read_keys_hex)
{
	static const char text[] =
		"000102030405060708090a0b0c0d0e0f\n"
		"  F0 F1 F2 F3 F4 F5 F6 F7\tF8F9FAFBFCFDFEFF\r\n";
	uint8_t *data = NULL;
	char why[128] = "", *path;
	size_t len = 0, i;

	path = write_tmp(text, strlen(text));
	ASSERT_NE(NULL, path);
	ASSERT_EQ(0, qkd_read_keys(path, true, 16, &data, &len, why,
				   sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(32, len);
	for (i = 0; i < 16; i++) {
		EXPECT_EQ(i, data[i]);
		EXPECT_EQ(0xf0 + i, data[16 + i]);
	}
	qkd_free_secret(data, len);
	/* As raw bytes the same file is 91 bytes: not a multiple of 16. */
	EXPECT_EQ(-EINVAL, qkd_read_keys(path, false, 16, &data, &len, NULL,
					 0));
	unlink(path);
	free(path);

	path = write_tmp("0011zz", 6);
	ASSERT_NE(NULL, path);
	EXPECT_EQ(-EINVAL, qkd_read_keys(path, true, 0, &data, &len, why,
					 sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "offset 4"));
	unlink(path);
	free(path);

	path = write_tmp("001", 3);
	ASSERT_NE(NULL, path);
	EXPECT_EQ(-EINVAL, qkd_read_keys(path, true, 0, &data, &len, why,
					 sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "odd number"));
	unlink(path);
	free(path);

	path = write_tmp(" \n\t ", 4);
	ASSERT_NE(NULL, path);
	EXPECT_EQ(-EINVAL, qkd_read_keys(path, true, 0, &data, &len, NULL, 0));
	unlink(path);
	free(path);

	/* the offset counts the whitespace; a bad digit wins over oddness */
	path = write_tmp(" 00\n 1x2", 8);
	ASSERT_NE(NULL, path);
	EXPECT_EQ(-EINVAL, qkd_read_keys(path, true, 0, &data, &len, why,
					 sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "not a hex digit at offset 6")) TH_LOG("%s", why);
	unlink(path);
	free(path);

	/* whitespace between the two digits of a byte is whitespace too */
	path = write_tmp("a\nb c d", 7);
	ASSERT_NE(NULL, path);
	ASSERT_EQ(0, qkd_read_keys(path, true, 0, &data, &len, why,
				   sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(2, len);
	EXPECT_EQ(0xab, data[0]);
	EXPECT_EQ(0xcd, data[1]);
	qkd_free_secret(data, len);
	unlink(path);
	free(path);
}

/* Feed @len bytes of @buf through a pipe on standard input. */
static int stdin_from(const void *buf, size_t len)
{
	int p[2];

	if (pipe(p))
		return -1;
	if (write(p[1], buf, len) != (ssize_t)len)
		return -1;
	close(p[1]);
	if (dup2(p[0], STDIN_FILENO) < 0)
		return -1;
	close(p[0]);
	return 0;
}

TEST(read_keys_stdin)
{
	uint8_t in[20000], *data = NULL;
	size_t len = 0, i;

	/* Larger than a pipe read and the initial 4 KiB buffer. */
	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 31 + 7);
	ASSERT_EQ(0, stdin_from(in, sizeof(in)));
	ASSERT_EQ(0, qkd_read_keys("-", false, 20, &data, &len, NULL, 0));
	ASSERT_EQ(sizeof(in), len);
	EXPECT_EQ(0, memcmp(in, data, len));
	qkd_free_secret(data, len);

	ASSERT_EQ(0, stdin_from("abcd\nef01\n", 10));
	ASSERT_EQ(0, qkd_read_keys(NULL, true, 4, &data, &len, NULL, 0));
	ASSERT_EQ(4, len);
	EXPECT_EQ(0xab, data[0]);
	EXPECT_EQ(0x01, data[3]);
	qkd_free_secret(data, len);

	ASSERT_EQ(0, stdin_from("abc", 3));
	EXPECT_EQ(-EINVAL, qkd_read_keys("-", false, 2, &data, &len, NULL, 0));
}

TEST(read_keys_fd_pipe_limit)
{
	char why[128] = "";
	uint8_t *data = NULL;
	size_t len = 0;
	int fd;

	/* /dev/zero never ends: the reader must stop at its limit. */
	fd = open("/dev/zero", O_RDONLY);
	ASSERT_GE(fd, 0);
	EXPECT_EQ(-EFBIG, qkd_read_keys_fd(fd, false, 16, &data, &len, why,
					   sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "more than"));
	EXPECT_EQ(NULL, data);
	close(fd);
}

/* ---- netlink decoders --------------------------------------------------- */

static struct nl_msg *new_attrs(void)
{
	return nlmsg_alloc_size(4096);
}

static int parse_attrs(struct nl_msg *msg, struct nlattr **tb)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);

	return nla_parse(tb, QKD_NL_TB_MAX, nlmsg_attrdata(nlh, 0),
			 nlmsg_attrlen(nlh, 0), NULL);
}

TEST(decode_link)
{
	struct nlattr *tb[QKD_NL_TB_MAX + 1];
	struct nl_msg *msg = new_attrs();
	struct nlattr *nest;
	struct qkd_link l;

	ASSERT_NE(NULL, msg);
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_LINK_ID, 7));
	ASSERT_EQ(0, nla_put_string(msg, QKD_A_LINK_NAME, "alice"));
	ASSERT_EQ(0, nla_put_u8(msg, QKD_A_LINK_ROLE, QKD_LINK_ROLE_RESPONDER));
	ASSERT_EQ(0, nla_put_u8(msg, QKD_A_LINK_STATE, QKD_LINK_STATE_UP));
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_LINK_STREAMS, 3));
	/* The counters nest; a uint is 4 or 8 bytes. */
	nest = nla_nest_start(msg, QKD_A_LINK_STATS);
	ASSERT_NE(NULL, nest);
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_STATS_KEYS_ADDED, 100));
	ASSERT_EQ(0, nla_put_u64(msg, QKD_A_STATS_BYTES_STORED, 1ULL << 33));
	nla_nest_end(msg, nest);
	ASSERT_EQ(0, parse_attrs(msg, tb));
	ASSERT_EQ(0, qkd_link_parse(tb, &l));
	EXPECT_EQ(7, l.id);
	EXPECT_STREQ("alice", l.name);
	EXPECT_STREQ("", l.peer);
	EXPECT_FALSE(QKD_HAVE(&l, QKD_A_LINK_PEER));
	EXPECT_TRUE(QKD_HAVE(&l, QKD_A_LINK_NAME));
	EXPECT_EQ(QKD_LINK_ROLE_RESPONDER, l.role);
	EXPECT_STREQ("responder", qkd_role_name(l.role));
	EXPECT_STREQ("up", qkd_state_name(l.state));
	EXPECT_EQ(3, l.streams);
	EXPECT_EQ(100, l.stats.keys_added);
	EXPECT_EQ(1ULL << 33, l.stats.bytes_stored);
	EXPECT_TRUE(QKD_HAVE(&l, QKD_A_LINK_STATS));
	nlmsg_free(msg);

	/* No id: not a link. A name too long for the struct: rejected. */
	msg = new_attrs();
	ASSERT_EQ(0, nla_put_string(msg, QKD_A_LINK_NAME, "x"));
	ASSERT_EQ(0, parse_attrs(msg, tb));
	EXPECT_EQ(-EINVAL, qkd_link_parse(tb, &l));
	nlmsg_free(msg);
	msg = new_attrs();
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_LINK_ID, 1));
	ASSERT_EQ(0, nla_put_string(msg, QKD_A_LINK_NAME,
				    "0123456789012345678901234567890123"));
	ASSERT_EQ(0, parse_attrs(msg, tb));
	EXPECT_EQ(-EINVAL, qkd_link_parse(tb, &l));
	nlmsg_free(msg);
}

TEST(decode_stream_and_event)
{
	struct nlattr *tb[QKD_NL_TB_MAX + 1];
	struct nl_msg *msg = new_attrs();
	uint8_t id[16];
	struct qkd_stream s;
	struct qkd_event e;

	ASSERT_EQ(0, qkd_uuid_parse("00112233-4455-6677-8899-aabbccddeeff", id));
	ASSERT_EQ(0, nla_put(msg, QKD_A_STREAM_ID, 16, id));
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_STREAM_LINK_ID, 2));
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_STREAM_KEY_SIZE, 32));
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_STREAM_STORED_KEYS, 9));
	ASSERT_EQ(0, nla_put_u64(msg, QKD_A_STREAM_NEXT_INDEX, 1ULL << 40));
	ASSERT_EQ(0, nla_put_u8(msg, QKD_A_STREAM_CONSUMER, QKD_STREAM_CONSUMER_SA));
	ASSERT_EQ(0, parse_attrs(msg, tb));
	ASSERT_EQ(0, qkd_stream_parse(tb, &s));
	EXPECT_EQ(0, memcmp(id, s.id, 16));
	EXPECT_EQ(2, s.link_id);
	EXPECT_EQ(32, s.key_size);
	EXPECT_EQ(9, s.stored_keys);
	EXPECT_EQ(1ULL << 40, s.next_index);
	EXPECT_EQ(QKD_STREAM_CONSUMER_SA, s.consumer);
	EXPECT_TRUE(QKD_HAVE(&s, QKD_A_STREAM_CONSUMER));
	EXPECT_FALSE(QKD_HAVE(&s, QKD_A_STREAM_MAX_KEYS));

	nlmsg_free(msg);

	/* A keys-added event: the keys set's attributes. */
	msg = new_attrs();
	ASSERT_EQ(0, nla_put(msg, QKD_A_KEYS_STREAM_ID, 16, id));
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_KEYS_LINK_ID, 2));
	ASSERT_EQ(0, nla_put_u64(msg, QKD_A_KEYS_FIRST_INDEX, 5));
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_KEYS_COUNT, 4));
	ASSERT_EQ(0, nla_put_u32(msg, QKD_A_KEYS_STORED_KEYS, 9));
	ASSERT_EQ(0, parse_attrs(msg, tb));
	ASSERT_EQ(0, qkd_event_parse(QKD_CMD_KEYS_ADDED_NTF, tb, &e));
	EXPECT_STREQ("keys-added", qkd_event_name(e.cmd));
	EXPECT_EQ(0, memcmp(id, e.stream_id, 16));
	EXPECT_EQ(2, e.link_id);
	EXPECT_EQ(5, e.first_index);
	EXPECT_EQ(4, e.count);
	EXPECT_EQ(9, e.stored_keys);
	EXPECT_TRUE(QKD_HAVE(&e, QKD_EV_STREAM_ID));
	EXPECT_FALSE(QKD_HAVE(&e, QKD_EV_LINK_STATE));
	nlmsg_free(msg);

	/* A stream ID of the wrong length is malformed. */
	msg = new_attrs();
	ASSERT_EQ(0, nla_put(msg, QKD_A_STREAM_ID, 15, id));
	ASSERT_EQ(0, parse_attrs(msg, tb));
	EXPECT_EQ(-EINVAL, qkd_stream_parse(tb, &s));
	nlmsg_free(msg);

	EXPECT_EQ(QKD_LINK_ROLE_INITIATOR, qkd_role_parse("initiator"));
	EXPECT_EQ(0, qkd_role_parse("Initiator"));
	EXPECT_EQ(QKD_LINK_STATE_DOWN, qkd_state_parse("down"));
	EXPECT_EQ(0, qkd_state_parse(""));
	EXPECT_STREQ("?", qkd_state_name(0));
	EXPECT_STREQ("?", qkd_state_name(200));
	EXPECT_STREQ("?", qkd_event_name(QKD_CMD_LINK_NEW));
}

/* ---- JSON writer ------------------------------------------------------- */

TEST(json_writer)
{
	struct qkd_json j;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	ASSERT_NE(NULL, f);
	qkd_json_init(&j, f);
	qkd_json_open(&j, '[');
	qkd_json_open(&j, '{');
	qkd_json_u64(&j, "id", 1);
	qkd_json_str(&j, "name", "a\"b\\c\n\t\x01");
	qkd_json_key(&j, "list");
	qkd_json_open(&j, '[');
	qkd_json_u64(&j, NULL, 18446744073709551615ULL);
	qkd_json_str(&j, NULL, "x");
	qkd_json_close(&j, ']');
	qkd_json_bool(&j, "ok", true);
	qkd_json_close(&j, '}');
	qkd_json_open(&j, '{');
	qkd_json_close(&j, '}');
	qkd_json_close(&j, ']');
	qkd_json_end(&j);
	qkd_json_u64(&j, "n", 0);	/* a fresh top level after end */
	fclose(f);
	EXPECT_STREQ("[{\"id\":1,\"name\":\"a\\\"b\\\\c\\n\\t\\u0001\","
		     "\"list\":[18446744073709551615,\"x\"],\"ok\":true},{}]\n"
		     "\"n\":0", buf);
	free(buf);
}

/* qkdctl -j -p: the same values, one member a line, four spaces a level. */
TEST(json_writer_pretty)
{
	struct qkd_json j;
	char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	ASSERT_NE(NULL, f);
	qkd_json_init(&j, f);
	qkd_json_pretty(&j, true);
	qkd_json_open(&j, '[');
	qkd_json_open(&j, '{');
	qkd_json_u64(&j, "id", 1);
	qkd_json_key(&j, "list");
	qkd_json_open(&j, '[');
	qkd_json_u64(&j, NULL, 2);
	qkd_json_str(&j, NULL, "x");
	qkd_json_close(&j, ']');
	qkd_json_key(&j, "none");
	qkd_json_open(&j, '[');
	qkd_json_close(&j, ']');
	qkd_json_close(&j, '}');
	qkd_json_close(&j, ']');
	qkd_json_end(&j);
	/* still pretty after the end of a top-level value */
	qkd_json_open(&j, '{');
	qkd_json_bool(&j, "ok", false);
	qkd_json_close(&j, '}');
	qkd_json_end(&j);
	fclose(f);
	EXPECT_STREQ("[\n"
		     "    {\n"
		     "        \"id\": 1,\n"
		     "        \"list\": [\n"
		     "            2,\n"
		     "            \"x\"\n"
		     "        ],\n"
		     "        \"none\": []\n"
		     "    }\n"
		     "]\n"
		     "{\n"
		     "    \"ok\": false\n"
		     "}\n", buf);
	free(buf);
}

TEST(attr_names)
{
	/* By the command's attribute set. */
	EXPECT_STREQ("stream-key-size",
		     qkd_attr_name(QKD_CMD_STREAM_NEW, QKD_A_STREAM_KEY_SIZE));
	EXPECT_STREQ("link-name", qkd_attr_name(QKD_CMD_LINK_DEL, QKD_A_LINK_NAME));
	EXPECT_STREQ("status-max-bytes",
		     qkd_attr_name(QKD_CMD_STATUS_GET, QKD_A_STATUS_MAX_BYTES));
	EXPECT_STREQ("keys-data", qkd_attr_name(QKD_CMD_KEY_ADD, QKD_A_KEYS_DATA));
	EXPECT_STREQ("sa-local-ipv6", qkd_attr_name(QKD_CMD_SA_NEW, QKD_A_SA_LOCAL_IPV6));
	/* The same number in another set is another attribute. */
	EXPECT_STREQ("stream-id", qkd_attr_name(QKD_CMD_STREAM_DEL, 2));
	EXPECT_STREQ("keys-stream-id", qkd_attr_name(QKD_CMD_KEY_FLUSH, 2));
	EXPECT_STREQ("?", qkd_attr_name(QKD_CMD_LINK_GET, 0));
	EXPECT_STREQ("?", qkd_attr_name(QKD_CMD_LINK_GET, QKD_A_LINK_MAX + 1));
	EXPECT_STREQ("?", qkd_attr_name(0, QKD_A_LINK_ID));
}

/* ---- qkdctl's command line (exit codes; needs build/qkdctl) -------------- */

static int run_qkdctl(const char *const *args)
{
	char *argv[16];
	int status, i, devnull;
	pid_t pid;

	argv[0] = "build/qkdctl";
	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	pid = fork();
	if (pid == 0) {
		devnull = open("/dev/null", O_RDWR);
		dup2(devnull, STDOUT_FILENO);
		dup2(devnull, STDERR_FILENO);
		dup2(devnull, STDIN_FILENO);
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

TEST(qkdctl_usage_errors_exit_2)
{
	static const char *const cases[][10] = {
		{ "bogus" },
		{ "--bogus" },
		{ "-D" },
		{ "--device" },
		{ "link", "frob" },
		{ "link", "add" },
		{ "link", "add", "a", "role", "eve" },
		{ "link", "add", "a", "role", "initiator", "id", "-1" },
		{ "link", "add", "a", "role", "initiator", "id", "4294967296" },
		{ "link", "add", "a", "role", "initiator", "id", "12x" },
		{ "link", "add", "0123456789abcdef0123456789abcdef", "role",
		  "initiator" },
		{ "link", "set", "a", "state", "exhausted" },
		{ "link", "del", "id" },
		{ "stream", "add", "not-a-uuid", "link", "a", "key-size", "32" },
		{ "stream", "add", "00112233-4455-6677-8899-aabbccddeeff",
		  "key-size", "32" },
		{ "stream", "set", "00112233-4455-6677-8899-aabbccddeeff" },
		{ "key", "push", "00112233-4455-6677-8899-aabbccddeeff" },
		{ "key", "push", "00112233-4455-6677-8899-aabbccddeeff",
		  "index", "72057594037927936" },
		{ "key", "get", "00112233-4455-6677-8899-aabbccddeeff",
		  "format", "pem" },
		{ "key", "get", "00112233-4455-6677-8899-aabbccddeeff",
		  "key-id", "00112233-4455-6677-0000-aabbccddeeff" },
		{ "status", "extra" },
		{ "sa", "add", "00112233-4455-6677-8899-aabbccddeeff", "local",
		  "10.0.0.1", "remote", "10.0.0.2", "policy-local", "10.0.0.0/33" },
		{ "sa", "add", "00112233-4455-6677-8899-aabbccddeeff", "local",
		  "10.0.0.1", "remote", "10.0.0.2", "policy-remote", "10.0.0.0/x" },
		{ "sa", "add", "00112233-4455-6677-8899-aabbccddeeff", "local",
		  "10.0.0.1", "remote", "10.0.0.2", "policy-remote", "fd00::/129" },
		{ "sa", "add", "00112233-4455-6677-8899-aabbccddeeff", "local",
		  "10.0.0.1", "remote", "10.0.0.2", "policy-priority", "-1" },
		{ "sa", "add", "00112233-4455-6677-8899-aabbccddeeff", "local",
		  "10.0.0.1", "remote", "10.0.0.2", "policy-local" },
		/* "policy" takes no value: the next word is checked on its own. */
		{ "sa", "add", "00112233-4455-6677-8899-aabbccddeeff", "local",
		  "10.0.0.1", "remote", "10.0.0.2", "policy", "bogus" },
		{ "sa", "rekey" },
		{ "sa", "rekey", "not-a-uuid" },
		{ "sa", "rekey", "00112233-4455-6677-8899-aabbccddeeff", "extra" },
		{ "sa", "del", "00112233-4455-6677-8899-aabbccddeeff", "remove" },
		{ "sa", "del", "00112233-4455-6677-8899-aabbccddeeff",
		  "remove-protection", "extra" },
		{ "sa", "rekey", "00112233-4455-6677-8899-aabbccddeeff", "force",
		  "extra" },
	};
	static const char *const json_raw[] = {
		"-j", "key", "get", "00112233-4455-6677-8899-aabbccddeeff",
		"format", "raw", NULL,
	};
	size_t i;

	if (access("build/qkdctl", X_OK))
		SKIP(return, "build/qkdctl not built (run from the top of the tree)");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		EXPECT_EQ(2, run_qkdctl(cases[i]))
			TH_LOG("case %zu", i);
	EXPECT_EQ(2, run_qkdctl(json_raw));
	{
		static const char *const help[] = { "help", NULL };
		static const char *const ver[] = { "-V", NULL };

		EXPECT_EQ(0, run_qkdctl(help));
		EXPECT_EQ(0, run_qkdctl(ver));
	}
}

/*
 * Link names: what the kernel's LINK_NEW takes (tests/kernel/test_genl.c,
 * link_new_name_charset), checked by qkdctl before anything is sent, with
 * exit 2 for every command that names a link.
 */
TEST(link_name_charset)
{
	static const char *const bad[] = {
		"", "a b", "a/b", "../x", "-a", ".a", ".", "..", "a\"b",
		"a\\b", "a\nb", "a:b", "a@b", "\xc3\xa9t\xc3\xa9", "a\x7f",
		"$x", "01234567890123456789012345678901",
	};
	static const char *const good[] = {
		"a", "Z", "_x", "alice-bob", "site_A.1", "a-", "a.",
		"0123456789012345678901234567890",
	};
	const char *why;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		EXPECT_FALSE(qkd_link_name_valid(bad[i], &why))
			TH_LOG("accepted \"%s\"", bad[i]);
		EXPECT_NE(NULL, why);
	}
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *g = good[i];

		EXPECT_TRUE(qkd_link_name_valid(g, NULL)) TH_LOG("refused %zu", i);
	}
	if (access("build/qkdctl", X_OK))
		SKIP(return, "build/qkdctl not built (run from the top of the tree)");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *add[] = { "link", "add", bad[i], "role", "initiator", NULL };
		const char *show[] = { "link", "show", bad[i], NULL };
		const char *sadd[] = { "stream", "add",
			"00112233-4455-6677-8899-aabbccddeeff", "link", bad[i],
			"key-size", "32", NULL };

		EXPECT_EQ(2, run_qkdctl(add)) TH_LOG("link add \"%s\"", bad[i]);
		EXPECT_EQ(2, run_qkdctl(show)) TH_LOG("link show \"%s\"", bad[i]);
		EXPECT_EQ(2, run_qkdctl(sadd)) TH_LOG("stream add link \"%s\"", bad[i]);
	}
}

TEST_HARNESS_MAIN
