// SPDX-License-Identifier: GPL-2.0-only
/*
 * Cascade (userspace/protocol/cascade.c): corrects every frame at QBER 1, 2,
 * 5 and 8 %, discloses exactly the parity bits it sends, stays within the
 * expected efficiency, rejects malformed messages, and whatever it leaves
 * wrong is caught by error verification.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <qkd/bitvec.h>
#include <qkd/cascade.h>
#include <qkd/verify.h>
#include <qkd/prng.h>

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t rng(void)
{
	return qkd_splitmix64(&rng_state);
}

/* nframes pairs of keys; Bob's differ from Alice's in exactly nerr bits. */
struct keyset {
	uint32_t n, nframes;
	uint64_t **a, **b;
};

static void keyset_make(struct keyset *ks, uint32_t n, uint32_t nframes,
			uint32_t nerr)
{
	size_t w = QKD_BV_WORDS(n), i;
	uint32_t f, c;

	ks->n = n;
	ks->nframes = nframes;
	ks->a = calloc(nframes, sizeof(*ks->a));
	ks->b = calloc(nframes, sizeof(*ks->b));
	for (f = 0; f < nframes; f++) {
		ks->a[f] = malloc(w * 8);
		ks->b[f] = malloc(w * 8);
		for (i = 0; i < w; i++)
			ks->a[f][i] = rng();
		memcpy(ks->b[f], ks->a[f], w * 8);
		for (c = 0; c < nerr;) {
			uint32_t x = (uint32_t)(rng() % n);

			if (qkd_bv_get(ks->a[f], x) == qkd_bv_get(ks->b[f], x)) {
				qkd_bv_flip(ks->b[f], x);
				c++;
			}
		}
	}
}

static void keyset_free(struct keyset *ks)
{
	uint32_t f;

	for (f = 0; f < ks->nframes; f++) {
		free(ks->a[f]);
		free(ks->b[f]);
	}
	free(ks->a);
	free(ks->b);
}

/* A transport that counts the parity bits in every reply it carries. */
struct counting {
	struct qkd_cascade_loopback lb;
	uint64_t reply_bits;
	uint64_t rounds;
};

static int counting_roundtrip(void *ctx, const uint8_t *req, size_t len,
			      const uint8_t **reply, size_t *rlen)
{
	struct counting *c = ctx;
	uint8_t *copy = malloc(len);	/* nothing shared with Alice */
	int r;

	memcpy(copy, req, len);
	r = qkd_cascade_loopback_roundtrip(&c->lb, copy, len, reply, rlen);
	free(copy);
	if (r)
		return r;
	/* reply: 8-byte header, le32 bit count, packed bits */
	c->reply_bits += (uint64_t)(*reply)[8] | (uint64_t)(*reply)[9] << 8 |
		(uint64_t)(*reply)[10] << 16 | (uint64_t)(*reply)[11] << 24;
	c->rounds++;
	return 0;
}

struct result {
	uint64_t disclosed;		/* Alice's count */
	uint64_t disclosed_bob;
	uint64_t counted;		/* bits seen on the wire */
	uint64_t frame_sum;		/* sum of per-frame counts (Alice) */
	uint64_t rounds;
	uint32_t bad_frames;		/* frames still different */
	uint32_t caught;		/* of those, caught by verification */
	uint32_t verify_false_fail;	/* equal frames that failed to verify */
	double f;
	int err;
};

static void run_cascade_flags(struct keyset *ks, uint32_t variant,
			      uint32_t flags, uint32_t nerr, uint32_t qber_ppm,
			      struct result *res)
{
	struct qkd_cascade_params p = {
		.variant = variant,
		.flags = flags,
		.frame_bits = ks->n,
		.nframes = ks->nframes,
		.qber_ppm = qber_ppm,
		.seed = rng(),
	};
	struct counting c = { 0 };
	struct qkd_cascade_transport t = { &c, counting_roundtrip };
	struct qkd_cascade_stats sa, sb;
	struct qkd_cascade_alice *a;
	struct qkd_cascade_bob *b;
	uint32_t f;

	memset(res, 0, sizeof(*res));
	a = qkd_cascade_alice_new(&p, (const uint64_t *const *)ks->a);
	b = qkd_cascade_bob_new(&p, ks->b);
	if (!a || !b) {
		res->err = -ENOMEM;
		return;
	}
	c.lb.alice = a;
	res->err = qkd_cascade_bob_run(b, &t);
	qkd_cascade_alice_stats(a, &sa);
	qkd_cascade_bob_stats(b, &sb);
	res->disclosed = sa.disclosed_bits;
	res->disclosed_bob = sb.disclosed_bits;
	res->counted = c.reply_bits;
	res->rounds = c.rounds;
	for (f = 0; f < ks->nframes; f++) {
		struct qkd_verify_tag tag;
		int same = !qkd_bv_hamming(ks->a[f], ks->b[f], ks->n);
		int v;

		res->frame_sum += qkd_cascade_alice_frame_disclosed(a, f);
		qkd_verify_make(&tag, ks->a[f], ks->n, 128, NULL);
		v = qkd_verify_check(&tag, ks->b[f], ks->n, 0);
		if (!same) {
			res->bad_frames++;
			if (v == 0)
				res->caught++;
		} else if (v != 1) {
			res->verify_false_fail++;
		}
	}
	res->f = (double)res->disclosed /
		((double)ks->n * ks->nframes *
		 qkd_cascade_h2((double)nerr / ks->n));
	qkd_cascade_alice_free(a);
	qkd_cascade_bob_free(b);
	qkd_cascade_msg_free(&c.lb.reply);
}

/* The estimated QBER is the true one (1 % when there are no errors). */
static void run_cascade(struct keyset *ks, uint32_t variant, uint32_t nerr,
			struct result *res)
{
	uint32_t ppm = nerr ? (uint32_t)((uint64_t)nerr * 1000000 / ks->n) :
		10000;

	run_cascade_flags(ks, variant, 0, nerr, ppm, res);
}

/*
 * The optimized variant corrects every frame; accounting matches the wire;
 * f (x 1000) stays in [lo, hi].
 */
static void check_optimized(struct __test_metadata *_metadata, uint32_t n,
			    uint32_t nframes, double qber, int lo, int hi)
{
	uint32_t nerr = (uint32_t)(qber * n + 0.5);
	struct keyset ks;
	struct result r;

	keyset_make(&ks, n, nframes, nerr);
	run_cascade(&ks, QKD_CASCADE_OPTIMIZED, nerr, &r);
	TH_LOG("QBER %.0f%%: f = %.4f, %llu bits disclosed, %llu rounds",
	       qber * 100, r.f, (unsigned long long)r.disclosed,
	       (unsigned long long)r.rounds);
	ASSERT_EQ(0, r.err);
	ASSERT_EQ(0, r.bad_frames);
	ASSERT_EQ(0, r.verify_false_fail);
	ASSERT_EQ(r.counted, r.disclosed);
	ASSERT_EQ(r.disclosed, r.disclosed_bob);
	ASSERT_EQ(r.disclosed, r.frame_sum);
	ASSERT_LE(lo, (int)(r.f * 1000));
	ASSERT_GE(hi, (int)(r.f * 1000));
	keyset_free(&ks);
}

/* 32 frames of 2^16 bits per QBER. */
TEST(corrects_qber_1)
{
	check_optimized(_metadata, 65536, 32, 0.01, 1000, 1065);
}

TEST(corrects_qber_2)
{
	check_optimized(_metadata, 65536, 32, 0.02, 1000, 1065);
}

TEST(corrects_qber_5)
{
	check_optimized(_metadata, 65536, 32, 0.05, 1000, 1085);
}

TEST(corrects_qber_8)
{
	check_optimized(_metadata, 65536, 32, 0.08, 1000, 1110);
}

/* At 10^6 bits the optimized variant reaches f <= 1.045 at 2 %. */
TEST(efficiency_large_frame_qber_2)
{
	check_optimized(_metadata, 1000000, 2, 0.02, 1000, 1045);
}

/*
 * PARALLEL scheduling: same corrections in fewer round trips, for a few
 * more disclosed bits.
 */
TEST(parallel_schedule)
{
	uint32_t n = 65536, nerr = 1311;	/* 2 % */
	struct keyset k1, k2;
	struct result rs, rp;
	uint64_t saved = rng_state;

	keyset_make(&k1, n, 8, nerr);
	rng_state = saved;
	keyset_make(&k2, n, 8, nerr);		/* the same keys */
	run_cascade_flags(&k1, QKD_CASCADE_OPTIMIZED, 0, nerr, 20000, &rs);
	run_cascade_flags(&k2, QKD_CASCADE_OPTIMIZED, QKD_CASCADE_F_PARALLEL,
			  nerr, 20000, &rp);
	TH_LOG("serial f %.4f %llu rounds, parallel f %.4f %llu rounds",
	       rs.f, (unsigned long long)rs.rounds, rp.f,
	       (unsigned long long)rp.rounds);
	ASSERT_EQ(0, rs.err);
	ASSERT_EQ(0, rp.err);
	ASSERT_EQ(0, rs.bad_frames);
	ASSERT_EQ(0, rp.bad_frames);
	ASSERT_EQ(rp.counted, rp.disclosed);
	ASSERT_LT(rp.rounds, rs.rounds);
	ASSERT_GT(1100, (int)(rp.f * 1000));
	keyset_free(&k1);
	keyset_free(&k2);
}

/*
 * A QBER far above the estimate (8 % against 1 %): block sizes are far
 * too large, but 16 passes still converge, at a high price in disclosed
 * bits; whatever frame is left wrong is caught by verification.
 */
TEST(qber_above_estimate)
{
	uint32_t n = 32768, nerr = 2621;
	struct keyset ks;
	struct result r;

	keyset_make(&ks, n, 16, nerr);
	run_cascade_flags(&ks, QKD_CASCADE_OPTIMIZED, 0, nerr, 10000, &r);
	TH_LOG("estimate 1 %%, actual 8 %%: f = %.3f, %u/16 frames wrong",
	       r.f, r.bad_frames);
	ASSERT_EQ(0, r.err);
	ASSERT_EQ(r.counted, r.disclosed);
	ASSERT_EQ(r.bad_frames, r.caught);
	ASSERT_EQ(0, r.verify_false_fail);
	ASSERT_LT(1100, (int)(r.f * 1000));
	keyset_free(&ks);
}

TEST(odd_frame_length)
{
	struct keyset ks;
	struct result r;
	uint64_t tail_a, tail_b;
	uint32_t n = 10007, w = QKD_BV_WORDS(10007);

	keyset_make(&ks, n, 4, 200);
	ks.b[0][w - 1] |= ~(((uint64_t)1 << (n & 63)) - 1);
	ks.a[0][w - 1] &= ((uint64_t)1 << (n & 63)) - 1;
	tail_b = ks.b[0][w - 1] >> (n & 63);
	run_cascade(&ks, QKD_CASCADE_OPTIMIZED, 200, &r);
	ASSERT_EQ(0, r.err);
	ASSERT_EQ(0, r.bad_frames);
	tail_a = ks.b[0][w - 1] >> (n & 63);
	ASSERT_EQ(tail_b, tail_a);
	keyset_free(&ks);
}

TEST(no_errors)
{
	struct keyset ks;
	struct result r;

	keyset_make(&ks, 50000, 2, 0);
	run_cascade(&ks, QKD_CASCADE_OPTIMIZED, 0, &r);
	ASSERT_EQ(0, r.err);
	ASSERT_EQ(0, r.bad_frames);
	ASSERT_EQ(r.counted, r.disclosed);
	/* only the block parities of every pass, no bisection */
	ASSERT_EQ(0, r.caught);
	ASSERT_GT(r.disclosed, 0);
	ASSERT_GT(1200, r.disclosed);
	keyset_free(&ks);
}

/*
 * Original Cascade (4 passes, k1 = 0.73/Q) is the baseline: f is well
 * above the optimized variant; frames it leaves wrong are all caught by
 * verification.
 */
TEST(original_baseline)
{
	static const double q[] = { 0.02, 0.05 };
	unsigned int i;

	for (i = 0; i < 2; i++) {
		uint32_t n = 65536, nerr = (uint32_t)(q[i] * n);
		struct keyset ks;
		struct result r;

		keyset_make(&ks, n, 16, nerr);
		run_cascade(&ks, QKD_CASCADE_ORIGINAL, nerr, &r);
		TH_LOG("original QBER %.0f%%: f = %.4f, %u/16 frames wrong",
		       q[i] * 100, r.f, r.bad_frames);
		ASSERT_EQ(0, r.err);
		ASSERT_EQ(r.counted, r.disclosed);
		ASSERT_EQ(r.disclosed, r.disclosed_bob);
		ASSERT_EQ(r.bad_frames, r.caught);
		ASSERT_LE(1100, (int)(r.f * 1000));
		ASSERT_GE(1400, (int)(r.f * 1000));
		keyset_free(&ks);
	}
}

/* Yan et al.'s parameters: 10 passes, k1 = 0.8/Q, k2 = 5 k1, then n/2. */
TEST(yanetal_variant)
{
	uint32_t n = 65536, nerr = 1311;
	struct keyset ks;
	struct result r;

	keyset_make(&ks, n, 8, nerr);
	run_cascade(&ks, QKD_CASCADE_YANETAL, nerr, &r);
	TH_LOG("yanetal QBER 2%%: f = %.4f", r.f);
	ASSERT_EQ(0, r.err);
	ASSERT_EQ(r.counted, r.disclosed);
	ASSERT_EQ(r.bad_frames, r.caught);
	ASSERT_LE(1000, (int)(r.f * 1000));
	ASSERT_GE(1150, (int)(r.f * 1000));
	keyset_free(&ks);
}

/*
 * Too few passes leave errors: every such frame is caught by verification
 * (and a single bit injected into a corrected frame is caught too).
 */
TEST(residual_errors_are_caught)
{
	struct qkd_cascade_params p = {
		.variant = QKD_CASCADE_CUSTOM,
		.frame_bits = 20000,
		.nframes = 32,
		.qber_ppm = 50000,
		.passes = 2,
		.block = { 16, 32 },
		.seed = 7,
	};
	struct qkd_cascade_loopback lb = { 0 };
	struct qkd_cascade_transport t = { &lb,
		qkd_cascade_loopback_roundtrip };
	struct qkd_cascade_alice *a;
	struct qkd_cascade_bob *b;
	struct keyset ks;
	uint32_t f, bad = 0, caught = 0;

	keyset_make(&ks, 20000, 32, 1000);
	a = qkd_cascade_alice_new(&p, (const uint64_t *const *)ks.a);
	b = qkd_cascade_bob_new(&p, ks.b);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	lb.alice = a;
	ASSERT_EQ(0, qkd_cascade_bob_run(b, &t));
	for (f = 0; f < 32; f++) {
		struct qkd_verify_tag tag;
		uint32_t x = (uint32_t)(rng() % 20000);

		if (!qkd_bv_hamming(ks.a[f], ks.b[f], 20000))
			qkd_bv_flip(ks.b[f], x);	/* inject one */
		bad++;
		ASSERT_EQ(0, qkd_verify_make(&tag, ks.a[f], 20000, 64, NULL));
		if (qkd_verify_check(&tag, ks.b[f], 20000, 0) == 0)
			caught++;
	}
	ASSERT_EQ(32, bad);
	ASSERT_EQ(bad, caught);
	qkd_cascade_alice_free(a);
	qkd_cascade_bob_free(b);
	qkd_cascade_msg_free(&lb.reply);
	keyset_free(&ks);
}

/* Reset keeps parameters and memory; the result is the same as fresh. */
TEST(reset_reuses_state)
{
	struct qkd_cascade_params p = {
		.variant = QKD_CASCADE_OPTIMIZED,
		.frame_bits = 30000,
		.nframes = 3,
		.qber_ppm = 30000,
		.seed = 99,
	};
	struct qkd_cascade_loopback lb = { 0 };
	struct qkd_cascade_transport t = { &lb,
		qkd_cascade_loopback_roundtrip };
	struct qkd_cascade_alice *a;
	struct qkd_cascade_bob *b;
	struct qkd_cascade_stats s1, s2;
	struct keyset k1, k2;
	uint32_t f;

	keyset_make(&k1, 30000, 3, 900);
	keyset_make(&k2, 30000, 3, 900);
	a = qkd_cascade_alice_new(&p, (const uint64_t *const *)k1.a);
	b = qkd_cascade_bob_new(&p, k1.b);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	lb.alice = a;
	ASSERT_EQ(0, qkd_cascade_bob_run(b, &t));
	qkd_cascade_alice_stats(a, &s1);
	qkd_cascade_alice_reset(a, (const uint64_t *const *)k2.a);
	qkd_cascade_bob_reset(b, k2.b);
	ASSERT_EQ(0, qkd_cascade_bob_run(b, &t));
	qkd_cascade_alice_stats(a, &s2);
	for (f = 0; f < 3; f++) {
		ASSERT_EQ(0, qkd_bv_hamming(k1.a[f], k1.b[f], 30000));
		ASSERT_EQ(0, qkd_bv_hamming(k2.a[f], k2.b[f], 30000));
	}
	ASSERT_LT(s1.disclosed_bits, s2.disclosed_bits);
	qkd_cascade_alice_free(a);
	qkd_cascade_bob_free(b);
	qkd_cascade_msg_free(&lb.reply);
	keyset_free(&k1);
	keyset_free(&k2);
}

TEST(params_wire)
{
	struct qkd_cascade_params p = {
		.variant = QKD_CASCADE_CUSTOM, .frame_bits = 4096,
		.nframes = 2, .qber_ppm = 20000, .seed = 0x0123456789abcdefULL,
		.passes = 3, .block = { 64, 128, 2048 },
	}, q;
	uint8_t buf[QKD_CASCADE_PARAMS_LEN];
	uint32_t blk[QKD_CASCADE_MAX_PASSES];

	ASSERT_EQ(QKD_CASCADE_PARAMS_LEN, qkd_cascade_params_encode(&p, buf));
	ASSERT_EQ(0, qkd_cascade_params_decode(&q, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(&p, &q, sizeof(p)));
	ASSERT_EQ(-EPROTO, qkd_cascade_params_decode(&q, buf, 10));
	buf[0] = 99;	/* unknown variant */
	ASSERT_EQ(-EINVAL, qkd_cascade_params_decode(&q, buf, sizeof(buf)));
	/* schedules */
	p.variant = QKD_CASCADE_ORIGINAL;
	p.frame_bits = 1000000;
	ASSERT_EQ(4, qkd_cascade_schedule(&p, blk));
	ASSERT_EQ(37, blk[0]);		/* ceil(0.73 / 0.02) */
	ASSERT_EQ(74, blk[1]);
	ASSERT_EQ(296, blk[3]);
	p.variant = QKD_CASCADE_OPTIMIZED;
	ASSERT_EQ(16, qkd_cascade_schedule(&p, blk));
	ASSERT_EQ(64, blk[0]);		/* 2^ceil(log2(1 / 0.02)) */
	p.qber_ppm = 0;
	ASSERT_EQ(-EINVAL, qkd_cascade_schedule(&p, blk));
	p.qber_ppm = 20000;
	p.nframes = 0;
	errno = 0;
	ASSERT_EQ(NULL, qkd_cascade_bob_new(&p, NULL));
	ASSERT_EQ(EINVAL, errno);
}

/* Alice rejects malformed requests; Bob rejects malformed replies. */
TEST(malformed_messages)
{
	struct qkd_cascade_params p = {
		.variant = QKD_CASCADE_OPTIMIZED, .frame_bits = 8192,
		.nframes = 2, .qber_ppm = 20000, .seed = 1,
	};
	struct qkd_cascade_msg out = { 0 }, req = { 0 };
	struct qkd_cascade_alice *a;
	struct qkd_cascade_bob *b;
	struct keyset ks;
	struct qkd_cascade_stats st;
	/* header: type 1, version 1, 0, 0, round 0 */
	uint8_t bad_frame[] = { 1, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0 };
	uint8_t bad_pass[] = { 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 40 };
	uint8_t no_select[] = { 1, 1, 0, 0, 0, 0, 0, 0, 1 };
	/* range past the end of the key: start 8192, len 1 */
	uint8_t past_end[] = { 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
			       0x82, 0x80, 0x01, 0x01 };
	uint8_t zero_len[] = { 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0 };
	uint8_t truncated[] = { 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x84 };
	uint8_t good[] = { 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 8 };
	uint8_t reply[13];

	keyset_make(&ks, 8192, 2, 100);
	a = qkd_cascade_alice_new(&p, (const uint64_t *const *)ks.a);
	b = qkd_cascade_bob_new(&p, ks.b);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, bad_frame,
						     sizeof(bad_frame), &out));
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, bad_pass,
						     sizeof(bad_pass), &out));
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, no_select,
						     sizeof(no_select), &out));
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, past_end,
						     sizeof(past_end), &out));
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, zero_len,
						     sizeof(zero_len), &out));
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, truncated,
						     sizeof(truncated), &out));
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, good, 4, &out));
	/* a reserved byte set, or a round other than the next (0) */
	good[2] = 1;
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, good, sizeof(good),
						     &out));
	good[2] = 0;
	good[4] = 1;
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, good, sizeof(good),
						     &out));
	good[4] = 0;
	/* a valid query: one bit, the parity of bits 0..7, counted */
	ASSERT_EQ(0, qkd_cascade_alice_handle(a, good, sizeof(good), &out));
	ASSERT_EQ(13, out.len);
	ASSERT_EQ(1, out.data[8]);
	ASSERT_EQ(__builtin_parityll(ks.a[0][0] & 0xff), out.data[12] & 1);
	qkd_cascade_alice_stats(a, &st);
	ASSERT_EQ(1, st.disclosed_bits);
	ASSERT_EQ(1, qkd_cascade_alice_frame_disclosed(a, 0));
	ASSERT_EQ(0, qkd_cascade_alice_frame_disclosed(a, 1));

	/* Bob, with an Alice who answered nothing yet (rounds from 0) */
	qkd_cascade_alice_free(a);
	a = qkd_cascade_alice_new(&p, (const uint64_t *const *)ks.a);
	ASSERT_NE(NULL, a);
	/* Bob: first request is the block parities of pass 1, both frames */
	ASSERT_EQ(1, qkd_cascade_bob_request(b, &req));
	ASSERT_EQ(-EBUSY, qkd_cascade_bob_request(b, &req));
	ASSERT_EQ(0, qkd_cascade_alice_handle(a, req.data, req.len, &out));
	memcpy(reply, out.data, 12);
	reply[8] ^= 1;		/* wrong bit count */
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, reply, 12));
	out.data[4] ^= 1;	/* wrong round */
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, out.data, out.len));
	out.data[4] ^= 1;
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, out.data, out.len - 1));
	out.data[3] = 1;	/* a reserved byte */
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, out.data, out.len));
	out.data[3] = 0;
	{
		uint32_t nb = (uint32_t)out.data[8] | out.data[9] << 8;

		/* a padding bit after the last parity */
		if (nb % 8) {
			out.data[out.len - 1] |= 0x80;
			ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, out.data,
								 out.len));
			out.data[out.len - 1] &= 0x7f;
		}
	}
	ASSERT_EQ(0, qkd_cascade_bob_reply(b, out.data, out.len));
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, out.data, out.len));
	/* the block parities of a pass are answered once (in round 1) */
	req.data[4] = 1;
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, req.data, req.len,
						     &out));
	/* a range across two blocks (k1 = 64): start 60, len 8, round 1 */
	{
		uint8_t cross[] = { 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 122, 8 };

		ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, cross,
							     sizeof(cross),
							     &out));
		cross[12] = 4;		/* 60..63 is inside block 0 */
		ASSERT_EQ(0, qkd_cascade_alice_handle(a, cross, sizeof(cross),
						      &out));
	}

	qkd_cascade_msg_free(&out);
	qkd_cascade_msg_free(&req);
	qkd_cascade_alice_free(a);
	qkd_cascade_bob_free(b);
	keyset_free(&ks);
}

/*
 * Alice and Bob in two threads over a stream socket, messages framed with a
 * 4-byte length, as qkdd will carry them (without the authentication).
 */
static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = write(fd, p, len);

		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = read(fd, p, len);

		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int send_msg(int fd, const uint8_t *buf, size_t len)
{
	uint32_t n = (uint32_t)len;

	return write_all(fd, &n, 4) || write_all(fd, buf, len) ? -1 : 0;
}

static int recv_msg(int fd, struct qkd_cascade_msg *m)
{
	uint32_t n;

	if (read_all(fd, &n, 4) || n > (64u << 20))
		return -1;
	if (m->cap < n) {
		uint8_t *d = realloc(m->data, n);

		if (!d)
			return -1;
		m->data = d;
		m->cap = n;
	}
	m->len = n;
	return read_all(fd, m->data, n);
}

struct alice_thread {
	struct qkd_cascade_alice *a;
	int fd;
	int err;
	uint64_t handled;
};

static void *alice_main(void *arg)
{
	struct alice_thread *at = arg;
	struct qkd_cascade_msg in = { 0 }, out = { 0 };

	while (!recv_msg(at->fd, &in)) {
		at->err = qkd_cascade_alice_handle(at->a, in.data, in.len, &out);
		if (at->err || send_msg(at->fd, out.data, out.len))
			break;
		at->handled++;
	}
	qkd_cascade_msg_free(&in);
	qkd_cascade_msg_free(&out);
	return NULL;
}

struct socket_transport {
	int fd;
	struct qkd_cascade_msg reply;
};

static int socket_roundtrip(void *ctx, const uint8_t *req, size_t len,
			    const uint8_t **reply, size_t *rlen)
{
	struct socket_transport *st = ctx;

	if (send_msg(st->fd, req, len) || recv_msg(st->fd, &st->reply))
		return -EIO;
	*reply = st->reply.data;
	*rlen = st->reply.len;
	return 0;
}

TEST(over_a_socket)
{
	struct qkd_cascade_params p = {
		.variant = QKD_CASCADE_OPTIMIZED, .frame_bits = 100000,
		.nframes = 4, .qber_ppm = 30000, .seed = 0x5eed,
	};
	struct qkd_cascade_params pa;
	uint8_t pbuf[QKD_CASCADE_PARAMS_LEN];
	struct socket_transport st = { 0 };
	struct qkd_cascade_transport t = { &st, socket_roundtrip };
	struct alice_thread at = { 0 };
	struct qkd_cascade_stats sb;
	struct qkd_cascade_bob *b;
	struct keyset ks;
	pthread_t th;
	int sv[2];
	uint32_t f;

	keyset_make(&ks, 100000, 4, 3000);
	/* Alice is built from the parameters as received */
	qkd_cascade_params_encode(&p, pbuf);
	ASSERT_EQ(0, qkd_cascade_params_decode(&pa, pbuf, sizeof(pbuf)));
	at.a = qkd_cascade_alice_new(&pa, (const uint64_t *const *)ks.a);
	b = qkd_cascade_bob_new(&p, ks.b);
	ASSERT_NE(NULL, at.a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	at.fd = sv[1];
	st.fd = sv[0];
	ASSERT_EQ(0, pthread_create(&th, NULL, alice_main, &at));
	ASSERT_EQ(0, qkd_cascade_bob_run(b, &t));
	close(sv[0]);
	pthread_join(th, NULL);
	close(sv[1]);
	ASSERT_EQ(0, at.err);
	qkd_cascade_bob_stats(b, &sb);
	ASSERT_EQ(sb.rounds, at.handled);
	for (f = 0; f < 4; f++) {
		ASSERT_EQ(0, qkd_bv_hamming(ks.a[f], ks.b[f], 100000));
		ASSERT_EQ(qkd_cascade_alice_frame_disclosed(at.a, f),
			  qkd_cascade_bob_frame_disclosed(b, f));
	}
	qkd_cascade_alice_free(at.a);
	qkd_cascade_bob_free(b);
	qkd_cascade_msg_free(&st.reply);
	keyset_free(&ks);
}

/* A peer answering at random cannot make Bob loop or crash. */
static int random_roundtrip(void *ctx, const uint8_t *req, size_t len,
			    const uint8_t **reply, size_t *rlen)
{
	struct counting *c = ctx;
	uint32_t nbits;
	size_t i, bytes;
	int r = qkd_cascade_loopback_roundtrip(&c->lb, req, len, reply, rlen);

	if (r)
		return r;
	nbits = (uint32_t)(*reply)[8] | (uint32_t)(*reply)[9] << 8 |
		(uint32_t)(*reply)[10] << 16 | (uint32_t)(*reply)[11] << 24;
	bytes = (nbits + 7) / 8;
	for (i = 0; i < bytes; i++)
		c->lb.reply.data[12 + i] = (uint8_t)rng();
	if (nbits & 7)
		c->lb.reply.data[12 + bytes - 1] &= (1u << (nbits & 7)) - 1;
	c->rounds++;
	return 0;
}

TEST(lying_peer_terminates)
{
	struct qkd_cascade_params p = {
		.variant = QKD_CASCADE_OPTIMIZED, .frame_bits = 5000,
		.nframes = 4, .qber_ppm = 20000, .seed = 3,
	};
	struct counting c = { 0 };
	struct qkd_cascade_transport t = { &c, random_roundtrip };
	struct qkd_cascade_stats st;
	struct qkd_cascade_bob *b;
	struct keyset ks;

	keyset_make(&ks, 5000, 4, 100);
	c.lb.alice = qkd_cascade_alice_new(&p, (const uint64_t *const *)ks.a);
	b = qkd_cascade_bob_new(&p, ks.b);
	ASSERT_NE(NULL, c.lb.alice);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, qkd_cascade_bob_run(b, &t));
	qkd_cascade_bob_stats(b, &st);
	TH_LOG("%llu rounds, %u frames given up, %llu bits flipped",
	       (unsigned long long)c.rounds, st.frames_failed,
	       (unsigned long long)st.corrected_bits);
	ASSERT_GT(100000, c.rounds);
	qkd_cascade_alice_free(c.lb.alice);
	qkd_cascade_bob_free(b);
	qkd_cascade_msg_free(&c.lb.reply);
	keyset_free(&ks);
}

/*
 * Issue 16: round trips. One run of the given schedule on copies of the
 * keyset's keys (ks->b untouched); out[f] gets Bob's corrected frame f,
 * disclosed[f] Alice's count for it.
 */
struct sched_run {
	struct result r;
	uint64_t corrected;
	uint64_t **out;
	uint64_t *disclosed;
	uint32_t passes;
};

static void sched_run(struct keyset *ks, uint32_t first, uint32_t nframes,
		      uint32_t flags, bool tops_ahead, uint32_t qber_ppm,
		      uint64_t seed, struct sched_run *sr)
{
	struct qkd_cascade_params p = {
		.variant = QKD_CASCADE_OPTIMIZED, .flags = flags,
		.frame_bits = ks->n, .nframes = nframes,
		.qber_ppm = qber_ppm, .seed = seed,
	};
	uint32_t block[QKD_CASCADE_MAX_PASSES];
	struct counting c = { 0 };
	struct qkd_cascade_transport t = { &c, counting_roundtrip };
	struct qkd_cascade_stats sa, sb;
	struct qkd_cascade_alice *a;
	struct qkd_cascade_bob *b;
	size_t w = QKD_BV_WORDS(ks->n);
	uint32_t f;

	memset(sr, 0, sizeof(*sr));
	sr->passes = (uint32_t)qkd_cascade_schedule(&p, block);
	sr->out = calloc(nframes, sizeof(*sr->out));
	sr->disclosed = calloc(nframes, sizeof(*sr->disclosed));
	for (f = 0; f < nframes; f++) {
		sr->out[f] = malloc(w * 8);
		memcpy(sr->out[f], ks->b[first + f], w * 8);
	}
	a = qkd_cascade_alice_new(&p,
				  (const uint64_t *const *)ks->a + first);
	b = qkd_cascade_bob_new(&p, sr->out);
	if (!a || !b) {
		sr->r.err = -ENOMEM;
		return;
	}
	sr->r.err = qkd_cascade_bob_set_tops_ahead(b, tops_ahead);
	c.lb.alice = a;
	if (!sr->r.err)
		sr->r.err = qkd_cascade_bob_run(b, &t);
	qkd_cascade_alice_stats(a, &sa);
	qkd_cascade_bob_stats(b, &sb);
	sr->r.disclosed = sa.disclosed_bits;
	sr->r.disclosed_bob = sb.disclosed_bits;
	sr->r.counted = c.reply_bits;
	sr->r.rounds = c.rounds;
	sr->corrected = sb.corrected_bits;
	for (f = 0; f < nframes; f++) {
		sr->disclosed[f] = qkd_cascade_alice_frame_disclosed(a, f);
		sr->r.frame_sum += sr->disclosed[f];
		if (qkd_bv_hamming(ks->a[first + f], sr->out[f], ks->n))
			sr->r.bad_frames++;
	}
	qkd_cascade_alice_free(a);
	qkd_cascade_bob_free(b);
	qkd_cascade_msg_free(&c.lb.reply);
}

static void sched_free(struct sched_run *sr, uint32_t nframes)
{
	uint32_t f;

	for (f = 0; f < nframes && sr->out; f++)
		free(sr->out[f]);
	free(sr->out);
	free(sr->disclosed);
}

/*
 * Bob's first request asks the block parities ("top") of every pass of
 * every frame, each once: what Alice discloses with them does not depend
 * on Bob's key, and every pass asks for them. Before issue 16 a pass's
 * top left only when the passes before it were done: one round trip per
 * pass more.
 */
TEST(every_pass_top_in_the_first_request)
{
	const uint32_t n = 16384, nf = 3;
	struct qkd_cascade_params p;
	uint32_t block[QKD_CASCADE_MAX_PASSES], tops[3] = { 0 }, pass;
	struct qkd_cascade_msg req = { 0 }, out = { 0 };
	struct qkd_cascade_alice *a;
	struct qkd_cascade_bob *b;
	struct qkd_cascade_stats st;
	uint64_t expect = 0, frame = 0;
	const uint8_t *q, *end;
	struct keyset ks;
	int passes, i;

	keyset_make(&ks, n, nf, 328);
	qkd_cascade_daemon_params(&p, n, nf, 0.02, 5);
	passes = qkd_cascade_schedule(&p, block);
	ASSERT_LT(2, passes);
	for (i = 0; i < passes; i++)	/* n is a multiple of 4096: N = n */
		expect += (n + block[i] - 1) / block[i] - (i ? 1 : 0);
	a = qkd_cascade_alice_new(&p, (const uint64_t *const *)ks.a);
	b = qkd_cascade_bob_new(&p, ks.b);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(1, qkd_cascade_bob_request(b, &req));
	ASSERT_EQ(-EBUSY, qkd_cascade_bob_set_tops_ahead(b, false));
	/* tokens: 0 frame pass (select), 1 (top); nothing else yet */
	q = req.data + 8;
	end = req.data + req.len;
	pass = 0;
	while (q < end) {
		if (*q == 0) {
			ASSERT_LT(q + 2, end);
			frame = q[1];
			pass = q[2];
			ASSERT_GT(nf, frame);
			q += 3;
			continue;
		}
		ASSERT_EQ(1, *q);
		ASSERT_EQ(0, tops[frame] & (1u << pass));
		tops[frame] |= 1u << pass;
		q++;
	}
	for (i = 0; i < (int)nf; i++)
		ASSERT_EQ((1u << passes) - 1, tops[i]);
	ASSERT_EQ(0, qkd_cascade_alice_handle(a, req.data, req.len, &out));
	qkd_cascade_alice_stats(a, &st);
	ASSERT_EQ(expect * nf, st.disclosed_bits);
	ASSERT_EQ(0, qkd_cascade_bob_reply(b, out.data, out.len));
	qkd_cascade_msg_free(&req);
	qkd_cascade_msg_free(&out);
	qkd_cascade_alice_free(a);
	qkd_cascade_bob_free(b);
	keyset_free(&ks);
}

/*
 * The tops asked ahead change nothing but the round trips: on the same
 * keys and seed, Bob corrects the same bits and Alice discloses the same
 * parities, per frame, as with the reference schedule (tops one pass at a
 * time), in exactly passes - 1 fewer round trips; serial and PARALLEL
 * scheduling, QBER 2 % (passes 2.. are halves) and 5 % (pass 2 is not).
 */
TEST(tops_ahead_disclose_and_correct_exactly_as_the_reference)
{
	static const uint32_t qber[] = { 20000, 50000 };
	static const uint32_t flags[] = { 0, QKD_CASCADE_F_PARALLEL };
	const uint32_t n = 16384, nf = 6;
	unsigned int i, j;
	uint32_t f;

	for (i = 0; i < 2; i++) {
		struct keyset ks;

		keyset_make(&ks, n, nf, (uint32_t)((uint64_t)n * qber[i] /
						   1000000));
		for (j = 0; j < 2; j++) {
			struct sched_run ref, now;

			sched_run(&ks, 0, nf, flags[j], false, qber[i], 77, &ref);
			sched_run(&ks, 0, nf, flags[j], true, qber[i], 77, &now);
			TH_LOG("QBER %u ppm flags %u: %llu parities, %llu round trips (reference %llu parities, %llu round trips)",
			       qber[i], flags[j],
			       (unsigned long long)now.r.disclosed,
			       (unsigned long long)now.r.rounds,
			       (unsigned long long)ref.r.disclosed,
			       (unsigned long long)ref.r.rounds);
			ASSERT_EQ(0, ref.r.err);
			ASSERT_EQ(0, now.r.err);
			ASSERT_EQ(0, ref.r.bad_frames);
			ASSERT_EQ(0, now.r.bad_frames);
			ASSERT_EQ(ref.r.disclosed, now.r.disclosed);
			ASSERT_EQ(now.r.counted, now.r.disclosed);
			ASSERT_EQ(now.r.disclosed_bob, now.r.disclosed);
			ASSERT_EQ(now.r.frame_sum, now.r.disclosed);
			ASSERT_EQ(ref.corrected, now.corrected);
			for (f = 0; f < nf; f++) {
				ASSERT_EQ(ref.disclosed[f], now.disclosed[f]);
				ASSERT_EQ(0, memcmp(ref.out[f], now.out[f],
						    QKD_BV_WORDS(n) * 8));
			}
			ASSERT_EQ(ref.r.rounds - (ref.passes - 1),
				  now.r.rounds);
			sched_free(&ref, nf);
			sched_free(&now, nf);
		}
		keyset_free(&ks);
	}
}

/*
 * Frames in flight are batched, never coupled: each frame of a batch
 * (qkdd's flags, PIPELINE included) is corrected with the same parities
 * as when it runs alone with the same seed, and the batch takes as many
 * round trips as its slowest frame.
 */
TEST(batched_frames_match_one_frame_at_a_time)
{
	const uint32_t n = 16384, nf = 5;
	struct qkd_cascade_params p;
	struct sched_run batch, one;
	uint64_t slowest = 0;
	struct keyset ks;
	uint32_t f;

	keyset_make(&ks, n, nf, 328);
	qkd_cascade_daemon_params(&p, n, nf, 0.02, 0);
	ASSERT_EQ(QKD_CASCADE_F_PARALLEL | QKD_CASCADE_F_PIPELINE, p.flags);
	sched_run(&ks, 0, nf, p.flags, true, p.qber_ppm, 31, &batch);
	ASSERT_EQ(0, batch.r.err);
	ASSERT_EQ(0, batch.r.bad_frames);
	ASSERT_EQ(batch.r.counted, batch.r.disclosed);
	ASSERT_EQ(batch.r.frame_sum, batch.r.disclosed);
	for (f = 0; f < nf; f++) {
		sched_run(&ks, f, 1, p.flags, true, p.qber_ppm, 31, &one);
		ASSERT_EQ(0, one.r.err);
		ASSERT_EQ(one.disclosed[0], batch.disclosed[f]);
		ASSERT_EQ(0, memcmp(one.out[0], batch.out[f],
				    QKD_BV_WORDS(n) * 8));
		if (one.r.rounds > slowest)
			slowest = one.r.rounds;
		sched_free(&one, 1);
	}
	TH_LOG("%u frames: %llu round trips, the slowest alone %llu",
	       nf, (unsigned long long)batch.r.rounds,
	       (unsigned long long)slowest);
	ASSERT_EQ(slowest, batch.r.rounds);
	sched_free(&batch, nf);
	keyset_free(&ks);
}

/*
 * PIPELINE, the deliberate trade: qkdd's configuration (frames of 62914
 * bits, QBER 2 %) needs at most 70 % of the round trips of the schedule
 * without it, for f at most 2 % higher, corrects every frame, and every
 * parity Alice sends is counted (Alice's total = bits on the wire = Bob's
 * = sum over frames).
 */
TEST(pipeline_cuts_round_trips_and_counts_every_parity)
{
	const uint32_t n = 62914, nf = 6, nerr = 1258;
	struct sched_run ref, pipe;
	struct keyset ks;
	double fr, fp, h = qkd_cascade_h2((double)nerr / n);

	keyset_make(&ks, n, nf, nerr);
	sched_run(&ks, 0, nf, QKD_CASCADE_F_PARALLEL, true, 20000, 9, &ref);
	sched_run(&ks, 0, nf, QKD_CASCADE_F_PARALLEL | QKD_CASCADE_F_PIPELINE,
		  true, 20000, 9, &pipe);
	fr = (double)ref.r.disclosed / ((double)n * nf * h);
	fp = (double)pipe.r.disclosed / ((double)n * nf * h);
	TH_LOG("without PIPELINE f %.4f %llu round trips, with f %.4f %llu",
	       fr, (unsigned long long)ref.r.rounds, fp,
	       (unsigned long long)pipe.r.rounds);
	ASSERT_EQ(0, pipe.r.err);
	ASSERT_EQ(0, pipe.r.bad_frames);
	ASSERT_EQ(pipe.r.counted, pipe.r.disclosed);
	ASSERT_EQ(pipe.r.disclosed_bob, pipe.r.disclosed);
	ASSERT_EQ(pipe.r.frame_sum, pipe.r.disclosed);
	ASSERT_GE(ref.r.rounds * 7, pipe.r.rounds * 10);
	ASSERT_LT(fp, fr * 1.02);
	sched_free(&ref, nf);
	sched_free(&pipe, nf);
	keyset_free(&ks);
}

/*
 * The batched answer is checked as strictly as any: Alice's reply to a
 * first request holding every pass's top, cut short, one byte longer, with
 * a bit count one off or far beyond the message, a padding bit set, is
 * refused and changes nothing (the honest reply then gives the same
 * result as a clean run); Alice refuses a batch that asks a top twice,
 * a top of a pass beyond the schedule, or a frame beyond the batch after
 * valid queries, and sends nothing for it.
 */
TEST(malformed_batch_refused_and_changes_nothing)
{
	const uint32_t n = 8192, nf = 3;
	struct qkd_cascade_params p;
	struct qkd_cascade_msg req = { 0 }, out = { 0 }, tmp = { 0 };
	struct qkd_cascade_loopback lb = { 0 };
	struct qkd_cascade_transport t = { &lb,
		qkd_cascade_loopback_roundtrip };
	struct qkd_cascade_alice *a;
	struct qkd_cascade_bob *b;
	struct qkd_cascade_stats st;
	struct sched_run clean;
	uint8_t *bad;
	uint32_t nbits, f;
	struct keyset ks;

	keyset_make(&ks, n, nf, 164);
	qkd_cascade_daemon_params(&p, n, nf, 0.02, 12);
	sched_run(&ks, 0, nf, p.flags, true, p.qber_ppm, 12, &clean);
	ASSERT_EQ(0, clean.r.err);
	a = qkd_cascade_alice_new(&p, (const uint64_t *const *)ks.a);
	b = qkd_cascade_bob_new(&p, ks.b);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(1, qkd_cascade_bob_request(b, &req));
	ASSERT_EQ(0, qkd_cascade_alice_handle(a, req.data, req.len, &out));
	nbits = (uint32_t)out.data[8] | (uint32_t)out.data[9] << 8;
	ASSERT_LT(8, nbits);
	bad = malloc(out.len + 1);
	memcpy(bad, out.data, out.len);
	bad[out.len] = 0;
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, bad, out.len - 1));
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, bad, out.len + 1));
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, bad, 11));
	bad[8] = (uint8_t)(nbits - 1);
	bad[9] = (uint8_t)((nbits - 1) >> 8);
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, bad, out.len));
	bad[8] = bad[9] = bad[10] = bad[11] = 0xff;
	ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, bad, out.len));
	memcpy(bad, out.data, out.len);
	if (nbits % 8) {
		bad[out.len - 1] |= 0x80;
		ASSERT_EQ(-EPROTO, qkd_cascade_bob_reply(b, bad, out.len));
	}
	free(bad);
	ASSERT_EQ(0, qkd_cascade_bob_reply(b, out.data, out.len));
	/* round 1: the same tops again are refused, nothing is sent */
	req.data[4] = 1;
	qkd_cascade_alice_stats(a, &st);
	ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, req.data, req.len,
						     &tmp));
	{
		struct qkd_cascade_stats st2;

		qkd_cascade_alice_stats(a, &st2);
		ASSERT_EQ(st.disclosed_bits, st2.disclosed_bits);
		ASSERT_EQ(st.rounds, st2.rounds);
	}
	{
		/* a top of pass 16 (of 16), then of frame 3 (of 3) */
		uint8_t beyond[] = { 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 16, 1 };
		uint8_t frame[] = { 1, 1, 0, 0, 1, 0, 0, 0,
				    0, 0, 0, 2, 4, 0, 3, 0, 2, 4 };

		ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, beyond,
							     sizeof(beyond),
							     &tmp));
		ASSERT_EQ(-EPROTO, qkd_cascade_alice_handle(a, frame,
							     sizeof(frame),
							     &tmp));
	}
	/* Alice is still at round 1: the rest of the run is honest */
	lb.alice = a;
	ASSERT_EQ(0, qkd_cascade_bob_run(b, &t));
	qkd_cascade_alice_stats(a, &st);
	ASSERT_EQ(clean.r.disclosed, st.disclosed_bits);
	ASSERT_EQ(clean.r.rounds, st.rounds);
	for (f = 0; f < nf; f++)
		ASSERT_EQ(0, memcmp(clean.out[f], ks.b[f],
				    QKD_BV_WORDS(n) * 8));
	sched_free(&clean, nf);
	qkd_cascade_msg_free(&req);
	qkd_cascade_msg_free(&out);
	qkd_cascade_msg_free(&tmp);
	qkd_cascade_alice_free(a);
	qkd_cascade_bob_free(b);
	qkd_cascade_msg_free(&lb.reply);
	keyset_free(&ks);
}

TEST_HARNESS_MAIN
