// SPDX-License-Identifier: GPL-2.0-only
/* Basis sifting against known inputs and a per-pulse reference. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "qkd/channel.h"
#include "qkd/sifting.h"

TEST(known_input)
{
	/* pulse:      0 1 2 3 4 5 6 7 8 9
	 * detected:   1 0 1 1 0 1 1 1 0 1
	 * basis A:    0 0 1 1 0 0 1 0 1 1
	 * basis B:    0 1 1 0 0 0 0 0 1 1
	 * match&det:  1 . 1 . . 1 . 1 . 1   -> pulses 0 2 5 7 9
	 * bits:       1 0 0 1 1 1 0 0 1 1   -> key 1 0 1 0 1
	 * classes:    0 1 2 0 0 1 0 2 1 0   -> 0 2 1 2 0
	 * bases kept:                       -> 0 1 0 0 1 */
	uint64_t det = 0x2ed;	/* bits 0,2,3,5,6,7,9 */
	uint64_t ba = 0x34c;	/* bits 2,3,6,8,9 */
	uint64_t bb = 0x306;	/* bits 1,2,8,9 */
	uint64_t bits = 0x239;	/* bits 0,3,4,5,9 */
	uint8_t cls[10] = { 0, 1, 2, 0, 0, 1, 0, 2, 1, 0 };
	static const uint64_t pos[5] = { 0, 2, 5, 7, 9 };
	struct qkd_sifted s;
	int i;

	ASSERT_EQ(0, qkd_sift(&det, &ba, &bb, &bits, cls, 10, &s));
	ASSERT_EQ(5, s.n);
	for (i = 0; i < 5; i++)
		ASSERT_EQ(pos[i], s.pos[i]);
	ASSERT_EQ(0x15, s.key[0]);	/* 1 0 1 0 1 */
	ASSERT_EQ(0x12, s.basis[0]);	/* 0 1 0 0 1 */
	ASSERT_EQ(0, s.intensity[0]);
	ASSERT_EQ(2, s.intensity[1]);
	ASSERT_EQ(1, s.intensity[2]);
	ASSERT_EQ(2, s.intensity[3]);
	ASSERT_EQ(0, s.intensity[4]);
	/* bookkeeping: class 0: Z at pulse 0, X at 9; class 1: Z at 5;
	 * class 2: X at 2, Z at 7 */
	ASSERT_EQ(1, s.count[0][0]);
	ASSERT_EQ(1, s.count[0][1]);
	ASSERT_EQ(1, s.count[1][0]);
	ASSERT_EQ(0, s.count[1][1]);
	ASSERT_EQ(1, s.count[2][0]);
	ASSERT_EQ(1, s.count[2][1]);
	qkd_sifted_free(&s);
}

TEST(select_basis_and_class)
{
	uint64_t det = 0x2ed, ba = 0x34c, bb = 0x306, bits = 0x239, *o;
	uint8_t cls[10] = { 0, 1, 2, 0, 0, 1, 0, 2, 1, 0 };
	struct qkd_sifted s;
	size_t n;

	ASSERT_EQ(0, qkd_sift(&det, &ba, &bb, &bits, cls, 10, &s));
	/* Z-basis bits: pulses 0, 5, 7 -> 1 1 0 */
	ASSERT_EQ(0, qkd_sifted_select(&s, 0, -1, &o, &n));
	ASSERT_EQ(3, n);
	ASSERT_EQ(0x3, o[0]);
	qkd_bits_free(o, n, 0);
	/* X basis, class 2: pulse 2 -> 0 */
	ASSERT_EQ(0, qkd_sifted_select(&s, 1, 2, &o, &n));
	ASSERT_EQ(1, n);
	ASSERT_EQ(0, o[0]);
	qkd_bits_free(o, n, 0);
	qkd_sifted_free(&s);
}

TEST(random_against_reference)
{
	struct qkd_rng r;
	size_t n = 100003, i, k = 0, w = qkd_bits_words(n);
	uint64_t *det = calloc(w, 8), *ba = calloc(w, 8), *bb = calloc(w, 8);
	uint64_t *bits = calloc(w, 8);
	uint8_t *cls = calloc(n, 1);
	struct qkd_sifted s;

	qkd_rng_seed(&r, 7);
	for (i = 0; i < w; i++) {
		det[i] = qkd_rng_u64(&r) & qkd_rng_u64(&r);
		ba[i] = qkd_rng_u64(&r);
		bb[i] = qkd_rng_u64(&r);
		bits[i] = qkd_rng_u64(&r);
	}
	for (i = 0; i < n; i++)
		cls[i] = qkd_rng_u64(&r) % 3;
	ASSERT_EQ(0, qkd_sift(det, ba, bb, bits, cls, n, &s));
	for (i = 0; i < n; i++) {
		if (!qkd_bit_get(det, i) ||
		    qkd_bit_get(ba, i) != qkd_bit_get(bb, i))
			continue;
		ASSERT_LT(k, s.n);
		ASSERT_EQ(i, s.pos[k]);
		ASSERT_EQ(qkd_bit_get(bits, i), qkd_bit_get(s.key, k));
		ASSERT_EQ(qkd_bit_get(ba, i), qkd_bit_get(s.basis, k));
		ASSERT_EQ(cls[i], s.intensity[k]);
		k++;
	}
	ASSERT_EQ(k, s.n);
	/* about n/4 detected, half of them matching: n/8 */
	ASSERT_GT(s.n, n / 8 - 1000);
	ASSERT_LT(s.n, n / 8 + 1000);
	qkd_sifted_free(&s);
	free(det); free(ba); free(bb); free(bits); free(cls);
}

TEST(noiseless_channel_gives_equal_keys)
{
	struct qkd_channel_params p;
	struct qkd_alice_records a;
	struct qkd_bob_records b;
	struct qkd_detections d = { 0 };
	struct qkd_sifted sa, sb;
	struct qkd_rng r;
	size_t n = 200000;
	int c;

	qkd_channel_params_default(&p);
	p.misalignment = 0;
	p.dark_count_prob = 0;
	qkd_rng_seed(&r, 99);
	ASSERT_EQ(0, qkd_alice_records_alloc(&a, n));
	ASSERT_EQ(0, qkd_bob_records_alloc(&b, n));
	qkd_alice_prepare(&p, &r, &a);
	ASSERT_EQ(0, qkd_channel_transmit(&p, &r, &a, &d, NULL));
	ASSERT_EQ(0, qkd_bob_records(&d, &r, &b));
	ASSERT_EQ(0, qkd_sift_alice(&a, &b, &sa));
	ASSERT_EQ(0, qkd_sift_bob(&b, &a, &sb));
	ASSERT_EQ(sa.n, sb.n);
	ASSERT_GT(sa.n, 100);
	ASSERT_EQ(0, memcmp(sa.key, sb.key, qkd_bits_words(sa.n) * 8));
	ASSERT_EQ(0, memcmp(sa.pos, sb.pos, sa.n * 8));
	for (c = 0; c < 3; c++) {
		ASSERT_EQ(sa.count[c][0], sb.count[c][0]);
		ASSERT_EQ(sa.count[c][1], sb.count[c][1]);
	}
	/* the signal class dominates */
	ASSERT_GT(sa.count[0][0], sa.count[1][0]);
	qkd_sifted_free(&sa);
	qkd_sifted_free(&sb);
	qkd_detections_free(&d);
	qkd_alice_records_free(&a);
	qkd_bob_records_free(&b);
}

TEST_HARNESS_MAIN
