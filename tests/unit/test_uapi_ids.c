// SPDX-License-Identifier: GPL-2.0-only
/*
 * Known answers for the names both ends compute from a stream ID alone:
 * qkd_sa_spi() (an SA's SPI) and qkd_key_id_from_index()/_to_index() (the
 * ETSI 014 key_ID), libqkd's <qkd/ids.h>. The kernel has its own copy
 * (kernel/qkd.h: the generated uapi header holds no code), and the kernel
 * tests compare the module's SPIs and key IDs with these functions, so a
 * wrong function here would pass there;
 * here the expected values come from outside the code: they were computed
 * with a separate Python transcription of Documentation/ipsec.md (the SPI:
 * 32-bit FNV-1a over the stream ID then the big-endian index, 0x100 set
 * below 256) and Documentation/abi.md (key IDs: bytes 8..15 XORed with
 * the big-endian index), not with these functions.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kselftest_harness.h"

#include <qkd/ids.h>

struct id_vector {
	const char *stream_id;	/* hex, 16 bytes */
	uint64_t index;
	uint32_t spi;
	const char *key_id;	/* hex, 16 bytes */
};

static const struct id_vector vectors[] = {
	{ "00000000000000000000000000000000", 0, 0xe2ba14a5,
	  "00000000000000000000000000000000" },
	{ "00000000000000000000000000000000", 1, 0xe1ba1312,
	  "00000000000000000000000000000001" },
	{ "00000000000000000000000000000000", 0xff, 0x13b8cec8,
	  "000000000000000000000000000000ff" },
	{ "00000000000000000000000000000000", 0x100, 0xbcb79a3c,
	  "00000000000000000000000000000100" },
	{ "00000000000000000000000000000000", 0xffffffffffffffULL, 0x81223432,
	  "000000000000000000ffffffffffffff" },
	/* FNV-1a gives 188 here: the SPI is 188 | 0x100 (0..255 reserved) */
	{ "00000000000000000000000000000000", 27055005, 0x1bc,
	  "000000000000000000000000019cd39d" },
	{ "000102030405060708090a0b0c0d0e0f", 0, 0x3ec8ffb5,
	  "000102030405060708090a0b0c0d0e0f" },
	{ "000102030405060708090a0b0c0d0e0f", 1, 0x3dc8fe22,
	  "000102030405060708090a0b0c0d0e0e" },
	{ "000102030405060708090a0b0c0d0e0f", 0x100, 0x18c6854c,
	  "000102030405060708090a0b0c0d0f0f" },
	{ "000102030405060708090a0b0c0d0e0f", 0x0123456789abcdefULL, 0x15b92d95,
	  "0001020304050607092a4f6c85a6c3e0" },
	{ "6ba7b8109dad11d180b400c04fd430c8", 0, 0x7ec1801c,
	  "6ba7b8109dad11d180b400c04fd430c8" },
	{ "6ba7b8109dad11d180b400c04fd430c8", 0xff, 0x95c01151,
	  "6ba7b8109dad11d180b400c04fd43037" },
	{ "6ba7b8109dad11d180b400c04fd430c8", 0xffffffffffffffULL, 0xa3c484bb,
	  "6ba7b8109dad11d1804bff3fb02bcf37" },
};

static void unhex(uint8_t *out, const char *hex, size_t n)
{
	size_t i;
	unsigned int b;

	for (i = 0; i < n; i++) {
		if (sscanf(hex + 2 * i, "%2x", &b) != 1)
			abort();
		out[i] = (uint8_t)b;
	}
}

TEST(sa_spi_known_answers)
{
	uint8_t sid[QKD_STREAM_ID_LEN];
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		unhex(sid, vectors[i].stream_id, sizeof(sid));
		EXPECT_EQ(vectors[i].spi, qkd_sa_spi(sid, vectors[i].index))
			TH_LOG("vector %zu: %s index %#llx", i,
			       vectors[i].stream_id,
			       (unsigned long long)vectors[i].index);
		/* an SPI below 256 is reserved (RFC 4303): never produced */
		EXPECT_GE(qkd_sa_spi(sid, vectors[i].index), 256U);
	}
}

TEST(key_id_known_answers_and_round_trip)
{
	uint8_t sid[QKD_STREAM_ID_LEN], want[QKD_KEY_ID_LEN];
	uint8_t got[QKD_KEY_ID_LEN];
	size_t i;

	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		unhex(sid, vectors[i].stream_id, sizeof(sid));
		unhex(want, vectors[i].key_id, sizeof(want));
		memset(got, 0xa5, sizeof(got));
		qkd_key_id_from_index(got, sid, vectors[i].index);
		EXPECT_EQ(0, memcmp(want, got, sizeof(got)))
			TH_LOG("vector %zu", i);
		EXPECT_EQ(vectors[i].index, qkd_key_id_to_index(want, sid));
	}
}

/* Distinct indices of one stream never share a key_ID (the map is a bijection). */
TEST(key_id_distinct_per_index)
{
	uint8_t sid[QKD_STREAM_ID_LEN], a[QKD_KEY_ID_LEN], b[QKD_KEY_ID_LEN];

	unhex(sid, vectors[10].stream_id, sizeof(sid));
	qkd_key_id_from_index(a, sid, 1);
	qkd_key_id_from_index(b, sid, 1ULL << 55);
	EXPECT_NE(0, memcmp(a, b, sizeof(a)));
	/* and a key_ID of another stream decodes to another index */
	unhex(sid, vectors[0].stream_id, sizeof(sid));
	EXPECT_NE(1ULL, qkd_key_id_to_index(a, sid));
}

TEST_HARNESS_MAIN
