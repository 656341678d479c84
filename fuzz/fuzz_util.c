// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for libqkd's string parsers (userspace/lib/util.c):
 * numbers, UUIDs (stream IDs and ETSI 014 key_IDs), the key_ID -> index
 * mapping, hex and base64. Each parser is checked against a simple oracle
 * of what it must accept, and every accepted input must survive the round
 * trip through the matching encoder. Output buffers are allocated at the
 * exact size so that ASan sees any write past them.
 * Build and run with fuzz/run.sh.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <qkd/util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)

static const uint8_t stream_id[16] = {
	0x6f, 0x1c, 0x2a, 0x9e, 0x3b, 0x4d, 0x4e, 0x5f,
	0x8a, 0x7b, 0x1c, 0x2d, 0x3e, 0x4f, 0x5a, 0x6b,
};

static int all(const char *s, size_t n, int (*cls)(int))
{
	for (size_t i = 0; i < n; i++)
		if (!cls((unsigned char)s[i]))
			return 0;
	return 1;
}

static void check_numbers(const char *s, size_t len)
{
	uint64_t v = 0, w;
	uint32_t v32;
	char buf[32];
	int r = qkd_parse_u64(s, UINT64_MAX, &v), hex, dec;

	hex = len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') &&
	      all(s + 2, len - 2, isxdigit);
	dec = len > 0 && all(s, len, isdigit);
	CHECK(r == 0 || r == -EINVAL || r == -ERANGE);
	if (!hex && !dec) {
		CHECK(r == -EINVAL);
		return;
	}
	/* the oracle: strtoull on what is known to be digits only */
	errno = 0;
	w = strtoull(s, NULL, hex ? 16 : 10);
	if (errno == ERANGE) {
		CHECK(r == -ERANGE);
		return;
	}
	CHECK(r == 0 && v == w);
	snprintf(buf, sizeof(buf), hex ? "0x%" PRIx64 : "%" PRIu64, v);
	CHECK(qkd_parse_u64(buf, v, &w) == 0 && w == v);
	if (v)
		CHECK(qkd_parse_u64(s, v - 1, &w) == -ERANGE);
	r = qkd_parse_u32(s, &v32);
	CHECK(v <= UINT32_MAX ? r == 0 && v32 == v : r == -ERANGE);
}

static void check_uuid(const char *s, size_t len)
{
	uint8_t id[16], back[16];
	char str[QKD_UUID_STR_LEN];
	uint64_t index;
	int ok = len == 36;

	for (size_t i = 0; ok && i < 36; i++)
		ok = (i == 8 || i == 13 || i == 18 || i == 23) ?
		     s[i] == '-' : isxdigit((unsigned char)s[i]);
	memset(id, 0xa5, sizeof(id));
	if (qkd_uuid_parse(s, id)) {
		CHECK(!ok);
		for (size_t i = 0; i < sizeof(id); i++)
			CHECK(id[i] == 0xa5);	/* untouched */
		return;
	}
	CHECK(ok);
	qkd_uuid_format(id, str);
	CHECK(strlen(str) == 36 && !strcasecmp(str, s));
	CHECK(qkd_uuid_is_zero(id) == !strcmp(str,
		"00000000-0000-0000-0000-000000000000"));
	/* as an ETSI 014 key_ID of stream_id */
	if (!qkd_key_id_index(id, stream_id, &index)) {
		CHECK(index <= QKD_INDEX_MAX);
		qkd_key_id(stream_id, index, back);
		CHECK(!memcmp(back, id, 16));
	} else {
		CHECK(memcmp(id, stream_id, 9) ||
		      qkd_key_id_to_index(id, stream_id) > QKD_INDEX_MAX);
	}
}

static void check_key_id(const uint8_t *data, size_t size)
{
	uint8_t back[16];
	uint64_t index, want;

	if (size < 32)
		return;
	/* a binary key_ID against a binary stream ID, both from the input */
	if (!qkd_key_id_index(data + 16, data, &index)) {
		CHECK(index <= QKD_INDEX_MAX);
		qkd_key_id(data, index, back);
		CHECK(!memcmp(back, data + 16, 16));
	}
	/* and every index the store can hand out maps back to itself */
	memcpy(&want, data + 16, sizeof(want));
	want &= QKD_INDEX_MAX;
	qkd_key_id(data, want, back);
	CHECK(!qkd_key_id_index(back, data, &index) && index == want);
}

static void check_hex(const char *s, size_t len, const uint8_t *raw,
		      size_t size)
{
	size_t n = len / 2;
	uint8_t *out = malloc(n ? n : 1);
	char *enc = malloc(2 * size + 1);
	ssize_t r;

	if (!out || !enc)
		abort();
	r = qkd_hex_decode(s, len, out, n);
	if (len % 2 || !all(s, len, isxdigit)) {
		CHECK(r == -EINVAL);
	} else {
		CHECK(r == (ssize_t)n);
		CHECK(qkd_hex_encode(out, n, enc, 2 * n + 1) == (ssize_t)len);
		CHECK(!strncasecmp(enc, s, len));
		if (n)
			CHECK(qkd_hex_decode(s, len, out, n - 1) == -ENOSPC);
	}
	/* encoder: exact size works, one byte less does not */
	CHECK(qkd_hex_encode(raw, size, enc, 2 * size + 1) == (ssize_t)(2 * size));
	CHECK(qkd_hex_encode(raw, size, enc, 2 * size) == -ENOSPC);
	r = qkd_hex_decode(enc, 2 * size, (uint8_t *)enc, 2 * size);
	CHECK(r == (ssize_t)size && !memcmp(enc, raw, size));
	free(out);
	free(enc);
}

static void check_base64(const char *s, size_t len, const uint8_t *raw,
			 size_t size)
{
	size_t cap = len / 4 * 3, encsz;
	uint8_t *out = malloc(cap ? cap : 1), *dec;
	char *enc;
	ssize_t r = qkd_base64_decode(s, len, out, cap);

	if (!out)
		abort();
	CHECK(r == -EINVAL || r == -ENOSPC || (r >= 0 && (size_t)r <= cap));
	if (r >= 0) {
		/* strict: the canonical encoding of what was decoded */
		encsz = qkd_base64_size((size_t)r);
		enc = malloc(encsz);
		if (!enc)
			abort();
		CHECK(qkd_base64_encode(out, (size_t)r, enc, encsz) ==
		      (ssize_t)len);
		CHECK(!memcmp(enc, s, len));
		free(enc);
		/* exactly r bytes of room are enough */
		dec = malloc(r ? (size_t)r : 1);
		if (!dec)
			abort();
		CHECK(qkd_base64_decode(s, len, dec, (size_t)r) == r);
		CHECK(!memcmp(dec, out, (size_t)r));
		free(dec);
	}
	free(out);

	/* encoder round trip of the raw input */
	encsz = qkd_base64_size(size);
	enc = malloc(encsz);
	dec = malloc(size ? size : 1);
	if (!enc || !dec)
		abort();
	CHECK(qkd_base64_encode(raw, size, enc, encsz) ==
	      (ssize_t)(encsz - 1));
	CHECK(qkd_base64_encode(raw, size, enc, encsz - 1) == -ENOSPC);
	CHECK(qkd_base64_decode(enc, encsz - 1, dec, size) == (ssize_t)size);
	CHECK(!memcmp(dec, raw, size));
	free(enc);
	free(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	size_t len;

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	len = strlen(s);	/* the parsers take C strings */
	check_numbers(s, len);
	check_uuid(s, len);
	check_key_id(data, size);
	check_hex(s, len, data, size);
	/* base64 gets the exact bytes (the decoder takes a length) */
	check_base64((const char *)data, size, data, size);
	free(s);
	return 0;
}
