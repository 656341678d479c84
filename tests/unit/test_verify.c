// SPDX-License-Identifier: GPL-2.0-only
/*
 * Error verification (userspace/protocol/verify.c): equal keys pass, any
 * single-bit difference fails, tags shorter than the compiled-in minimum are
 * rejected, the GF(2^64) arithmetic matches a bit-by-bit reference, and
 * eps_cor and the disclosed bits are what the documentation says.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include <qkd/bitvec.h>
#include <qkd/verify.h>
#include <qkd/prng.h>

static uint64_t rng_state = 0x2545f4914f6cdd1dULL;

static uint64_t rng(void)
{
	return qkd_splitmix64(&rng_state);
}

/* Reference: shift-and-add multiplication modulo x^64 + x^4 + x^3 + x + 1. */
static uint64_t ref_mul(uint64_t a, uint64_t b)
{
	uint64_t r = 0;
	int i;

	for (i = 63; i >= 0; i--) {
		r = (r << 1) ^ ((r >> 63) ? 0x1b : 0);
		if ((b >> i) & 1)
			r ^= a;
	}
	return r;
}

static uint64_t ref_hash(uint64_t k, const uint64_t *m, uint64_t nbits)
{
	uint64_t acc = 0, i, words = (nbits + 63) / 64;

	for (i = 0; i < words; i++) {
		uint64_t w = m[i];

		if (i == words - 1 && (nbits & 63))
			w &= ((uint64_t)1 << (nbits & 63)) - 1;
		acc = ref_mul(acc ^ w, k);
	}
	return ref_mul(acc ^ nbits, k);
}

TEST(matches_reference_arithmetic)
{
	uint64_t key[20];
	int i, t;

	for (t = 0; t < 200; t++) {
		uint64_t k = rng(), nbits = 1 + rng() % (64 * 20);

		for (i = 0; i < 20; i++)
			key[i] = rng();
		ASSERT_EQ(ref_hash(k, key, nbits),
			  qkd_verify_hash64(k, key, nbits));
	}
	/* x * x^63 = x^64 = x^4 + x^3 + x + 1 */
	ASSERT_EQ(0x1bULL, ref_mul(2, 1ULL << 63));
	/* hash of one zero word with k = 1: ((0 * 1) + 64) * 1 = 64 */
	key[0] = 0;
	ASSERT_EQ(64, qkd_verify_hash64(1, key, 64));
}

TEST(equal_keys_pass)
{
	static const uint64_t lens[] = { 1, 63, 64, 65, 4096, 10007, 100000 };
	uint64_t *a = malloc(QKD_BV_WORDS(100000) * 8);
	uint64_t *b = malloc(QKD_BV_WORDS(100000) * 8);
	unsigned int i, tb;

	for (i = 0; i < QKD_BV_WORDS(100000); i++)
		a[i] = b[i] = rng();
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		for (tb = 64; tb <= QKD_VERIFY_MAX_TAG_BITS; tb += 64) {
			struct qkd_verify_tag t;

			ASSERT_EQ(0, qkd_verify_make(&t, a, lens[i], tb,
						     NULL));
			ASSERT_EQ(1, qkd_verify_check(&t, b, lens[i], 0));
		}
	}
	/* bits past the length do not matter */
	b[0] ^= 1ULL << 40;
	{
		struct qkd_verify_tag t;

		ASSERT_EQ(0, qkd_verify_make(&t, a, 40, 128, NULL));
		ASSERT_EQ(1, qkd_verify_check(&t, b, 40, 0));
	}
	free(a);
	free(b);
}

/*
 * Every single-bit difference in a 4109-bit key is caught, with fresh
 * random hash keys each time, at the minimum tag length.
 */
TEST(any_single_bit_difference_fails)
{
	const uint64_t n = 4096 + 13;
	uint64_t a[65], b[65];
	uint64_t x;
	int i;

	for (i = 0; i < 65; i++)
		a[i] = b[i] = rng();
	for (x = 0; x < n; x++) {
		struct qkd_verify_tag t;

		qkd_bv_flip(b, x);
		ASSERT_EQ(0, qkd_verify_make(&t, a, n, QKD_VERIFY_MIN_TAG_BITS,
					     NULL));
		ASSERT_EQ(0, qkd_verify_check(&t, b, n, 0));
		qkd_bv_flip(b, x);
	}
	/* and random multi-bit differences */
	for (i = 0; i < 500; i++) {
		struct qkd_verify_tag t;
		uint64_t e[65] = { 0 };
		int j, nflip = 1 + (int)(rng() % 20);

		for (j = 0; j < nflip; j++)
			qkd_bv_flip(e, rng() % n);
		if (!qkd_bv_popcount(e, n))
			continue;
		for (j = 0; j < 65; j++)
			b[j] = a[j] ^ e[j];
		ASSERT_EQ(0, qkd_verify_make(&t, a, n, 128, NULL));
		ASSERT_EQ(0, qkd_verify_check(&t, b, n, 0));
	}
}

TEST(short_tags_rejected)
{
	uint64_t key[4] = { 1, 2, 3, 4 }, hk[4] = { 5, 6, 7, 8 };
	uint8_t buf[QKD_VERIFY_MSG_MAX];
	struct qkd_verify_tag t, d;
	size_t len;

	ASSERT_EQ(-EPERM, qkd_verify_check_tag_bits(0, 0));
	ASSERT_EQ(-EPERM, qkd_verify_check_tag_bits(0, 256));
	ASSERT_EQ(-EINVAL, qkd_verify_check_tag_bits(32, 0));
	ASSERT_EQ(-EINVAL, qkd_verify_check_tag_bits(320, 0));
	ASSERT_EQ(0, qkd_verify_check_tag_bits(64, 0));
	/* a side may raise its own floor, and then rejects 64 */
	ASSERT_EQ(-EPERM, qkd_verify_check_tag_bits(64, 128));
	ASSERT_EQ(0, qkd_verify_check_tag_bits(128, 128));
	ASSERT_EQ(-EINVAL, qkd_verify_make(&t, key, 256, 32, hk));
	ASSERT_EQ(-EPERM, qkd_verify_make(&t, key, 256, 0, hk));

	/* A peer's message asking for 0 bits (forged field) is rejected. */
	ASSERT_EQ(0, qkd_verify_make(&t, key, 256, 64, hk));
	len = qkd_verify_encode(&t, buf);
	ASSERT_EQ(32, len);
	ASSERT_EQ(0, qkd_verify_decode(&d, buf, len, 0));
	ASSERT_EQ(-EPERM, qkd_verify_decode(&d, buf, len, 128));
	buf[2] = 0;
	buf[3] = 0;
	ASSERT_EQ(-EPERM, qkd_verify_decode(&d, buf, 16, 0));
	/* and a tag struct claiming fewer bits is refused by check */
	t.tag_bits = 0;
	ASSERT_EQ(-EPERM, qkd_verify_check(&t, key, 256, 0));
	t.tag_bits = 64;
	ASSERT_EQ(-EPERM, qkd_verify_check(&t, key, 256, 128));
	ASSERT_EQ(1, qkd_verify_check(&t, key, 256, 64));
}

TEST(wire_roundtrip_and_errors)
{
	uint64_t key[16], hk[4] = { 11, 22, 33, 44 };
	uint8_t buf[QKD_VERIFY_MSG_MAX];
	struct qkd_verify_tag t, d;
	size_t len;
	int i;

	for (i = 0; i < 16; i++)
		key[i] = rng();
	ASSERT_EQ(0, qkd_verify_make(&t, key, 1000, 256, hk));
	len = qkd_verify_encode(&t, buf);
	ASSERT_EQ(QKD_VERIFY_MSG_MAX, len);
	ASSERT_EQ(0, qkd_verify_decode(&d, buf, len, 0));
	ASSERT_EQ(0, memcmp(&t, &d, sizeof(t)));
	ASSERT_EQ(1, qkd_verify_check(&d, key, 1000, 0));
	ASSERT_EQ(-EINVAL, qkd_verify_check(&d, key, 999, 0));
	ASSERT_EQ(-EINVAL, qkd_verify_decode(&d, buf, len - 1, 0));
	buf[0] ^= 1;
	ASSERT_EQ(-EINVAL, qkd_verify_decode(&d, buf, len, 0));
	buf[0] ^= 1;
	memset(buf + 16, 0, 8);		/* zero hash key */
	ASSERT_EQ(-EINVAL, qkd_verify_decode(&d, buf, len, 0));
	hk[1] = 0;
	ASSERT_EQ(-EINVAL, qkd_verify_make(&t, key, 1000, 128, hk));
	/* random keys: fresh, nonzero, different each time */
	ASSERT_EQ(0, qkd_verify_make(&t, key, 1000, 128, NULL));
	ASSERT_EQ(0, qkd_verify_make(&d, key, 1000, 128, NULL));
	ASSERT_NE(0, t.hkey[0]);
	ASSERT_NE(t.hkey[0], d.hkey[0]);
	ASSERT_NE(t.hkey[0], t.hkey[1]);
}

TEST(eps_cor_and_disclosure)
{
	/* 10^6 bits: 15625 words, bound (15626 / 2^64)^d */
	double l64 = qkd_verify_log2_eps_cor(1000000, 64);
	double l128 = qkd_verify_log2_eps_cor(1000000, 128);

	ASSERT_LT(-50.1, l64);
	ASSERT_GT(-50.0, l64);
	ASSERT_LT(-100.2, l128);
	ASSERT_GT(-100.0, l128);
	ASSERT_GT(1e-15, qkd_verify_eps_cor(1000000, 64));
	ASSERT_LT(1e-16, qkd_verify_eps_cor(1000000, 64));
	ASSERT_EQ(64, qkd_verify_disclosed_bits(64));
	ASSERT_EQ(128, qkd_verify_disclosed_bits(128));
	ASSERT_EQ(1, (int)(fabs(l128 - 2 * l64) < 1e-9));
}

TEST_HARNESS_MAIN
