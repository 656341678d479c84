// SPDX-License-Identifier: GPL-2.0-only
/* Basis sifting against known inputs and a per-pulse reference. */
#include <errno.h>
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

/* ---- the sparse path: per-detection records, SIFT_BASES as gap lists ---- */

static void det_from_pulses(struct qkd_det_records *d, uint64_t npulses,
			    const uint64_t *pulse, size_t n)
{
	memset(d, 0, sizeof(*d));
	d->npulses = npulses;
	for (size_t i = 0; i < n; i++) {
		struct qkd_det_rec e = { .pulse = pulse[i],
					 .basis = (uint8_t)(i & 1) };

		if (qkd_det_records_push(d, &e))
			abort();
	}
}

/* The known input of known_input, as per-detection records. */
TEST(sparse_known_input)
{
	static const uint64_t dp[7] = { 0, 2, 3, 5, 6, 7, 9 };
	/* per detection: A's basis, B's basis, bit, class (known_input) */
	static const uint8_t ba[7] = { 0, 1, 1, 0, 1, 0, 1 };
	static const uint8_t bb[7] = { 0, 1, 0, 0, 0, 0, 1 };
	static const uint8_t bit[7] = { 1, 0, 1, 1, 0, 0, 1 };
	static const uint8_t cls[7] = { 0, 2, 0, 1, 0, 2, 0 };
	static const uint64_t pos[5] = { 0, 2, 5, 7, 9 };
	struct qkd_det_records mine = { 0 };
	uint64_t peer = 0;
	struct qkd_sifted s;

	mine.npulses = 10;
	for (int i = 0; i < 7; i++) {
		struct qkd_det_rec e = { .pulse = dp[i], .bit = bit[i],
					 .basis = ba[i], .intensity = cls[i] };

		ASSERT_EQ(0, qkd_det_records_push(&mine, &e));
		peer |= (uint64_t)bb[i] << i;
	}
	ASSERT_EQ(0, qkd_sift_det(&mine, &peer, NULL, &s));
	ASSERT_EQ(5, s.n);
	for (int i = 0; i < 5; i++)
		ASSERT_EQ(pos[i], s.pos[i]);
	ASSERT_EQ(0x15, s.key[0]);
	ASSERT_EQ(0x12, s.basis[0]);
	ASSERT_EQ(0, s.intensity[0]);
	ASSERT_EQ(2, s.intensity[1]);
	ASSERT_EQ(1, s.intensity[2]);
	ASSERT_EQ(2, s.intensity[3]);
	ASSERT_EQ(1, s.count[0][0]);
	ASSERT_EQ(1, s.count[0][1]);
	ASSERT_EQ(1, s.count[1][0]);
	ASSERT_EQ(1, s.count[2][0]);
	ASSERT_EQ(1, s.count[2][1]);
	qkd_sifted_free(&s);
	/* a class out of range from the peer: refused */
	{
		uint8_t bad[7] = { 0, 0, 0, 0, 0, 3, 0 };

		ASSERT_EQ(-EINVAL, qkd_sift_det(&mine, &peer, bad, &s));
		ASSERT_EQ(NULL, s.key);
	}
	qkd_det_records_free(&mine);
}

/* Gaps round-trip, large ones and the extremes included. */
TEST(gaps_round_trip)
{
	static const uint64_t pulse[] = {
		0, 1, 2, 127, 128, 129, 16511, 16512, 1ull << 40,
		(1ull << 63) - 1, 1ull << 63, UINT64_MAX - 1,
	};
	size_t n = sizeof(pulse) / sizeof(pulse[0]);
	struct qkd_det_records d;
	uint8_t buf[sizeof(pulse) / sizeof(pulse[0]) * QKD_GAP_MAX_LEN];
	uint64_t out[sizeof(pulse) / sizeof(pulse[0])];
	size_t len;

	det_from_pulses(&d, UINT64_MAX, pulse, n);
	len = qkd_gaps_encode(&d, buf);
	/* 0, 0, 0 one byte; 124 one; 0 0 one; 16382 two; 0 one; ... */
	ASSERT_EQ(1, buf[0] == 0);
	ASSERT_EQ(0, qkd_gaps_decode(buf, len, n, UINT64_MAX, out, NULL));
	ASSERT_EQ(0, memcmp(out, pulse, sizeof(pulse)));
	/* the same list in a round one pulse too short: refused */
	ASSERT_EQ(-EBADMSG, qkd_gaps_decode(buf, len, n, UINT64_MAX - 1, out,
					    NULL));
	qkd_det_records_free(&d);
	/* an empty list is empty bytes */
	ASSERT_EQ(0, qkd_gaps_decode(buf, 0, 0, 10, out, NULL));
}

struct bad_case {
	const char *what;
	uint8_t gaps[24];
	size_t glen;		/* bytes of gaps */
	uint64_t n;		/* detections claimed */
	uint64_t npulses;	/* in the header */
	size_t base_words;	/* words of bases sent */
	uint64_t base0;		/* first basis word */
	size_t extra;		/* bytes appended after the bases */
	const char *why;	/* expected reason (a substring) */
};

static size_t bad_msg(const struct bad_case *c, uint8_t *m)
{
	size_t len = 0;

	for (int i = 0; i < 8; i++) {
		m[i] = (uint8_t)(c->npulses >> (8 * i));
		m[8 + i] = (uint8_t)(c->n >> (8 * i));
		m[16 + i] = (uint8_t)((uint64_t)c->glen >> (8 * i));
	}
	len = 24;
	memcpy(m + len, c->gaps, c->glen);
	len += c->glen;
	for (size_t w = 0; w < c->base_words; w++)
		for (int i = 0; i < 8; i++)
			m[len++] = w ? 0 : (uint8_t)(c->base0 >> (8 * i));
	memset(m + len, 0, c->extra);
	return len + c->extra;
}

/*
 * Every malformed announcement of Bob's is refused with its reason and
 * allocates nothing: what an attacker on the (not yet authenticated)
 * classical channel can send in place of it.
 */
TEST(malformed_announcements_are_refused)
{
	static const struct bad_case bad[] = {
		{ "gap past the pulse count", { 5, 4 }, 2, 2, 10, 1, 0, 0,
		  "run past" },
		{ "first index at the pulse count", { 10 }, 1, 1, 10, 1, 0, 0,
		  "run past" },
		{ "gap overflowing 64 bits",
		  { 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1 },
		  11, 2, UINT64_MAX, 1, 0, 0, "run past" },
		{ "truncated varint", { 3, 0x81 }, 2, 2, 1000, 1, 0, 0,
		  "ends inside" },
		{ "more detections than varints", { 3, 0x81, 1 }, 3, 3, 1000,
		  1, 0, 0, "ends inside" },
		{ "more detections than gap bytes", { 3, 1 }, 2, 3, 1000, 1, 0,
		  0, "too short for its detections" },
		{ "fewer detections than varints", { 3, 1, 1 }, 3, 2, 1000, 1,
		  0, 0, "bytes after the last detection" },
		{ "varint of 11 bytes",
		  { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
		    0 }, 11, 1, UINT64_MAX, 1, 0, 0, "longer than 64 bits" },
		{ "varint over 64 bits",
		  { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 2 },
		  10, 1, UINT64_MAX, 1, 0, 0, "longer than 64 bits" },
		{ "overlong varint", { 0x83, 0 }, 2, 1, 1000, 1, 0, 0,
		  "shortest encoding" },
		{ "bytes after the bases", { 3 }, 1, 1, 1000, 1, 0, 1,
		  "bytes after the bases" },
		{ "bases missing", { 3 }, 1, 1, 1000, 0, 0, 0,
		  "too few bytes" },
		{ "basis bits past the detections", { 3 }, 1, 1, 1000, 1, 2, 0,
		  "past the last detection" },
		{ "gap length past the message", { 3 }, 1, 1, 1000, 0, 0, 0,
		  "too few bytes" },
		{ "more detections than the round can have", { 0 }, 1, 100001,
		  1000000, 1, 0, 0, "more detections" },
		{ "more detections than pulses", { 0 }, 1, 11, 10, 1, 0, 0,
		  "more detections" },
		{ "another pulse count", { 3 }, 1, 1, 999, 1, 0, 0,
		  "pulse count" },
	};
	uint8_t m[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct qkd_sift_announce an;
		const char *why = NULL;
		size_t len = bad_msg(&bad[i], m);
		uint64_t np = strcmp(bad[i].what, "another pulse count") ?
			bad[i].npulses : 1000;

		TH_LOG("%s", bad[i].what);
		ASSERT_EQ(-EBADMSG, qkd_sift_announce_decode(m, len, np,
							      100000, &an,
							      &why));
		ASSERT_NE(NULL, why);
		TH_LOG("  refused: %s", why);
		ASSERT_NE(NULL, strstr(why, bad[i].why));
		ASSERT_EQ(NULL, an.pulse);
		ASSERT_EQ(NULL, an.basis);
		ASSERT_EQ(0, an.n);
	}
	/* and the header cut short */
	{
		struct qkd_sift_announce an;
		const char *why = NULL;

		for (size_t len = 0; len < 24; len++)
			ASSERT_EQ(-EBADMSG, qkd_sift_announce_decode(m, len, 10,
								      10, &an,
								      &why));
	}
}

/*
 * The sparse path end to end against the per-pulse one on the same
 * simulated round: Bob's records per detection, his announcement encoded
 * and decoded, Alice's records at the announced pulses, both sides
 * sifted -- the same keys, positions and counts as qkd_sift() on the
 * per-pulse arrays.
 */
TEST(sparse_path_agrees_with_per_pulse_sifting)
{
	struct qkd_channel_params p;
	struct qkd_alice_records a;
	struct qkd_bob_records b;
	struct qkd_detections d = { 0 };
	struct qkd_det_records bd = { 0 }, ad;
	struct qkd_sift_announce an;
	struct qkd_sifted ref_a, ref_b, sa, sb;
	struct qkd_rng r, r1, r2;
	uint64_t *ab;
	uint8_t *msg, *cls;
	size_t n = 300000, len;
	const char *why = NULL;

	qkd_channel_params_default(&p);
	qkd_rng_seed(&r, 1234);
	ASSERT_EQ(0, qkd_alice_records_alloc(&a, n));
	ASSERT_EQ(0, qkd_bob_records_alloc(&b, n));
	qkd_alice_prepare(&p, &r, &a);
	ASSERT_EQ(0, qkd_channel_transmit(&p, &r, &a, &d, NULL));
	ASSERT_GT(d.count, 1000);
	/* the same squashing draws on both paths */
	qkd_rng_seed(&r1, 5);
	qkd_rng_seed(&r2, 5);
	ASSERT_EQ(0, qkd_bob_records(&d, &r1, &b));
	ASSERT_EQ(0, qkd_bob_det_records(&d, &r2, n, &bd));
	ASSERT_EQ(d.count, bd.n);
	ASSERT_EQ(0, qkd_sift_alice(&a, &b, &ref_a));
	ASSERT_EQ(0, qkd_sift_bob(&b, &a, &ref_b));
	/* Bob -> Alice */
	ASSERT_EQ(0, qkd_sift_announce_encode(&bd, &msg, &len));
	/* a few bytes a detection, not bits a pulse */
	TH_LOG("%zu detections of %zu pulses: %zu bytes (bitmaps: %zu)",
	       bd.n, n, len, 2 * n / 8);
	ASSERT_LT(len, 3 * bd.n);
	ASSERT_EQ(0, qkd_sift_announce_decode(msg, len, n, n, &an, &why));
	ASSERT_EQ(bd.n, an.n);
	ASSERT_EQ(0, qkd_alice_det_records(&a, an.pulse, an.n, &ad));
	ASSERT_EQ(0, qkd_sift_det(&ad, an.basis, NULL, &sa));
	/* Alice -> Bob: her basis and class per detection */
	ab = qkd_bits_alloc(ad.n, 0);
	cls = malloc(ad.n);
	ASSERT_TRUE(ab && cls);
	for (size_t j = 0; j < ad.n; j++) {
		qkd_bit_set(ab, j, ad.r[j].basis);
		cls[j] = ad.r[j].intensity;
	}
	ASSERT_EQ(0, qkd_sift_det(&bd, ab, cls, &sb));
	ASSERT_EQ(ref_a.n, sa.n);
	ASSERT_EQ(ref_b.n, sb.n);
	ASSERT_EQ(0, memcmp(ref_a.key, sa.key, qkd_bits_words(sa.n) * 8));
	ASSERT_EQ(0, memcmp(ref_b.key, sb.key, qkd_bits_words(sb.n) * 8));
	ASSERT_EQ(0, memcmp(ref_a.basis, sb.basis, qkd_bits_words(sb.n) * 8));
	ASSERT_EQ(0, memcmp(ref_a.pos, sb.pos, sb.n * 8));
	ASSERT_EQ(0, memcmp(ref_a.intensity, sb.intensity, sb.n));
	ASSERT_EQ(0, memcmp(ref_a.count, sa.count, sizeof(sa.count)));
	ASSERT_EQ(0, memcmp(ref_a.count, sb.count, sizeof(sb.count)));
	qkd_sifted_free(&ref_a);
	qkd_sifted_free(&ref_b);
	qkd_sifted_free(&sa);
	qkd_sifted_free(&sb);
	qkd_bits_free(ab, ad.n, 0);
	free(cls);
	free(msg);
	qkd_sift_announce_free(&an);
	qkd_det_records_free(&ad);
	qkd_det_records_free(&bd);
	qkd_detections_free(&d);
	qkd_alice_records_free(&a);
	qkd_bob_records_free(&b);
}

/* Bob's records refuse what no time tagger reports; Alice's records
 * refuse pulses her link did not detect (per-detection sampling). */
TEST(det_records_refuse_disorder_and_unknown_pulses)
{
	struct qkd_detection ev[3] = {
		{ .pulse = 5, .clicks = 1 }, { .pulse = 5, .clicks = 2 },
		{ .pulse = 9, .clicks = 3 },
	};
	struct qkd_detections d = { .count = 3, .cap = 3, .ev = ev };
	struct qkd_det_records b = { 0 }, all, out;
	static const uint64_t have[3] = { 1, 4, 8 };
	static const uint64_t ask_ok[2] = { 4, 8 };
	static const uint64_t ask_bad[2] = { 4, 7 };
	struct qkd_rng r;

	qkd_rng_seed(&r, 1);
	ASSERT_EQ(-EINVAL, qkd_bob_det_records(&d, &r, 10, &b));	/* twice 5 */
	ASSERT_EQ(0, b.n);
	ev[1].pulse = 6;
	ASSERT_EQ(-EINVAL, qkd_bob_det_records(&d, &r, 9, &b));	/* 9 >= 9 */
	ASSERT_EQ(0, b.n);
	ASSERT_EQ(0, qkd_bob_det_records(&d, &r, 10, &b));
	ASSERT_EQ(3, b.n);
	ASSERT_EQ(0, b.r[0].bit);
	ASSERT_EQ(1, b.r[1].bit);
	qkd_det_records_free(&b);
	det_from_pulses(&all, 10, have, 3);
	ASSERT_EQ(0, qkd_det_records_select(&all, ask_ok, 2, &out));
	ASSERT_EQ(2, out.n);
	ASSERT_EQ(4, out.r[0].pulse);
	ASSERT_EQ(8, out.r[1].pulse);
	qkd_det_records_free(&out);
	ASSERT_EQ(-EINVAL, qkd_det_records_select(&all, ask_bad, 2, &out));
	ASSERT_EQ(NULL, out.r);
	qkd_det_records_free(&all);
}

/* The per-detection generator with sparse records draws what the
 * per-pulse-record one does, seed for seed. */
TEST(generate_sparse_matches_generate)
{
	struct qkd_channel_params p;
	struct qkd_alice_records a;
	struct qkd_det_records s = { 0 };
	struct qkd_detections d1 = { 0 }, d2 = { 0 };
	struct qkd_rng r1, ra1, r2, ra2;
	size_t n = 500000;

	qkd_channel_params_default(&p);
	qkd_rng_seed(&r1, 3);
	qkd_rng_seed(&ra1, 4);
	qkd_rng_seed(&r2, 3);
	qkd_rng_seed(&ra2, 4);
	ASSERT_EQ(0, qkd_alice_records_alloc(&a, n));
	ASSERT_EQ(0, qkd_channel_generate(&p, &r1, &ra1, &a, &d1, NULL));
	ASSERT_EQ(0, qkd_channel_generate_sparse(&p, &r2, &ra2, n, &s, &d2,
						 NULL));
	ASSERT_EQ(n, s.npulses);
	ASSERT_EQ(d1.count, d2.count);
	ASSERT_EQ(d1.count, s.n);
	ASSERT_GT(s.n, 1000);
	for (size_t i = 0; i < s.n; i++) {
		uint64_t k = s.r[i].pulse;

		ASSERT_EQ(d1.ev[i].pulse, k);
		ASSERT_EQ(d2.ev[i].pulse, k);
		ASSERT_EQ(d1.ev[i].clicks, d2.ev[i].clicks);
		ASSERT_EQ(d1.ev[i].basis, d2.ev[i].basis);
		ASSERT_EQ(qkd_bit_get(a.bit, k), s.r[i].bit);
		ASSERT_EQ(qkd_bit_get(a.basis, k), s.r[i].basis);
		ASSERT_EQ(a.intensity[k], s.r[i].intensity);
	}
	qkd_det_records_free(&s);
	qkd_detections_free(&d1);
	qkd_detections_free(&d2);
	qkd_alice_records_free(&a);
}

TEST_HARNESS_MAIN
