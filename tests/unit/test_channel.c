// SPDX-License-Identifier: GPL-2.0-only
/* Channel model: rates and QBER against the model within statistical
 * bounds (5 standard deviations), attacks, reproducibility. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "qkd/channel.h"
#include "qkd/sifting.h"

struct run {
	struct qkd_channel_stats st;
	size_t sifted, errors, eve_knows;
	size_t cls_det[3], cls_sift[3], cls_err[3];
	uint64_t first_pulses[4];
};

static int simulate(const struct qkd_channel_params *p, size_t n,
		    uint64_t seed, struct run *out)
{
	struct qkd_alice_records a;
	struct qkd_bob_records b;
	struct qkd_detections d = { 0 };
	struct qkd_sifted sa, sb;
	struct qkd_rng r;
	size_t i, k;

	memset(out, 0, sizeof(*out));
	qkd_rng_seed(&r, seed);
	if (qkd_alice_records_alloc(&a, n) || qkd_bob_records_alloc(&b, n))
		return -1;
	qkd_alice_prepare(p, &r, &a);
	if (qkd_channel_transmit(p, &r, &a, &d, &out->st) ||
	    qkd_bob_records(&d, &r, &b) || qkd_sift_alice(&a, &b, &sa) ||
	    qkd_sift_bob(&b, &a, &sb))
		return -1;
	for (i = 0; i < d.count; i++)
		out->cls_det[a.intensity[d.ev[i].pulse]]++;
	for (i = 0; i < 4 && i < d.count; i++)
		out->first_pulses[i] = d.ev[i].pulse;
	out->sifted = sa.n;
	for (i = k = 0; i < sa.n; i++) {
		unsigned int e = qkd_bit_get(sa.key, i) != qkd_bit_get(sb.key, i);

		out->errors += e;
		out->cls_sift[sa.intensity[i]]++;
		out->cls_err[sa.intensity[i]] += e;
	}
	/* Eve's knowledge among sifted pulses */
	for (i = k = 0; i < d.count && k < sa.n; i++) {
		if (d.ev[i].pulse != sa.pos[k])
			continue;
		out->eve_knows += d.ev[i].eve_knows;
		k++;
	}
	qkd_sifted_free(&sa);
	qkd_sifted_free(&sb);
	qkd_detections_free(&d);
	qkd_alice_records_free(&a);
	qkd_bob_records_free(&b);
	return 0;
}

/* |x - n p| <= 5 sqrt(n p (1-p)) + 1 */
static int within(double x, double n, double prob)
{
	return fabs(x - n * prob) <= 5 * sqrt(n * prob * (1 - prob)) + 1;
}

TEST(params_check)
{
	struct qkd_channel_params p;
	const char *why = NULL;

	qkd_channel_params_default(&p);
	ASSERT_EQ(0, qkd_channel_params_check(&p, &why));
	ASSERT_NULL(why);
	p.p_intensity[0] = 0.9;
	ASSERT_NE(0, qkd_channel_params_check(&p, &why));
	ASSERT_NE(NULL, why);
	qkd_channel_params_default(&p);
	p.det_efficiency = 1.5;
	ASSERT_NE(0, qkd_channel_params_check(&p, &why));
	qkd_channel_params_default(&p);
	p.source = QKD_SOURCE_SINGLE_PHOTON;	/* with 3 intensities */
	ASSERT_NE(0, qkd_channel_params_check(&p, &why));
}

TEST(model_numbers)
{
	struct qkd_channel_params p;

	qkd_channel_params_default(&p);
	/* 25 km * 0.2 dB/km = 5 dB: 10^-0.5 * 0.2 = 0.0632455532 */
	ASSERT_LT(fabs(qkd_channel_transmittance(&p) - 0.0632455532), 1e-9);
	/* signal: 1 - exp(-0.0632455532 * 0.5) = 0.0311281...,
	 * click = 1 - (1 - 0.0311281)(1 - 1e-6)^2 */
	ASSERT_LT(fabs(qkd_channel_click_prob(&p, 0) -
		       (1 - exp(-0.0632455532 * 0.5) * (1 - 1e-6) * (1 - 1e-6))),
		  1e-9);
	/* vacuum decoy: only dark counts, QBER 1/2 */
	ASSERT_LT(fabs(qkd_channel_expected_qber(&p, 2) - 0.5), 1e-9);
	/* signal QBER ~ e_d plus a dark-count share */
	ASSERT_GT(qkd_channel_expected_qber(&p, 0), 0.01);
	ASSERT_LT(qkd_channel_expected_qber(&p, 0), 0.0101);
}

TEST(single_photon_rate_and_qber)
{
	struct qkd_channel_params p;
	struct run r;
	size_t n = 2000000;
	double pc, q;

	qkd_channel_params_default(&p);
	p.source = QKD_SOURCE_SINGLE_PHOTON;
	p.n_intensities = 1;
	p.p_intensity[0] = 1;
	p.length_km = 50;		/* 10 dB */
	p.det_efficiency = 0.5;
	p.dark_count_prob = 1e-4;	/* large, so it shows */
	p.misalignment = 0.03;
	ASSERT_EQ(0, simulate(&p, n, 1, &r));
	pc = qkd_channel_click_prob(&p, 0);
	/* η = 0.1 * 0.5 = 0.05; click = 1 - 0.95 (1 - 1e-4)^2 = 0.05019 */
	ASSERT_LT(fabs(pc - 0.0501899905), 1e-9);
	ASSERT_TRUE(within((double)r.st.detections, (double)n, pc));
	/* sifted: bases agree half the time */
	ASSERT_TRUE(within((double)r.sifted, (double)r.st.detections, 0.5));
	/* QBER = [ps(e_d(1 - pd/2) + (1-e_d) pd/2) + (1-ps)(pd(1-pd) +
	 * pd²/2)] / click = 0.0015974 / 0.0501900 = 0.031826
	 * (misalignment 3% + dark counts 0.95e-4 / 0.0502 = 0.19%) */
	q = qkd_channel_expected_qber(&p, 0);
	ASSERT_LT(fabs(q - 0.031826), 2e-6);
	ASSERT_TRUE(within((double)r.errors, (double)r.sifted, q))
		TH_LOG("errors %zu of %zu, expected %.5f", r.errors, r.sifted, q);
	ASSERT_EQ(0, r.st.eve_intercepted);
	ASSERT_EQ(0, r.eve_knows);
}

TEST(decoy_classes)
{
	struct qkd_channel_params p;
	struct run r;
	size_t n = 4000000;
	int c;

	qkd_channel_params_default(&p);
	p.dark_count_prob = 1e-4;
	ASSERT_EQ(0, simulate(&p, n, 2, &r));
	for (c = 0; c < 3; c++) {
		double pc = p.p_intensity[c] * qkd_channel_click_prob(&p, c);
		double q = qkd_channel_expected_qber(&p, c);

		ASSERT_TRUE(within((double)r.cls_det[c], (double)n, pc))
			TH_LOG("class %d: %zu detections, expected %.1f", c,
			       r.cls_det[c], n * pc);
		ASSERT_TRUE(within((double)r.cls_err[c],
				   (double)r.cls_sift[c], q));
	}
	/* vacuum decoy: dark counts only, QBER ~ 50% */
	ASSERT_GT(r.cls_sift[2], 15);	/* ~40 expected */
	ASSERT_EQ(r.st.dark_only >= r.cls_det[2], 1);
}

TEST(reproducible)
{
	struct qkd_channel_params p;
	struct run r1, r2, r3;

	qkd_channel_params_default(&p);
	ASSERT_EQ(0, simulate(&p, 300000, 5, &r1));
	ASSERT_EQ(0, simulate(&p, 300000, 5, &r2));
	ASSERT_EQ(0, simulate(&p, 300000, 6, &r3));
	ASSERT_EQ(r1.st.detections, r2.st.detections);
	ASSERT_EQ(r1.errors, r2.errors);
	ASSERT_EQ(0, memcmp(r1.first_pulses, r2.first_pulses, 32));
	ASSERT_NE(0, memcmp(r1.first_pulses, r3.first_pulses, 32));
}

TEST(os_randomness)
{
	/* real use: Alice's records from getrandom(), through the buffer
	 * refill (more than 64 words) */
	struct qkd_channel_params p;
	struct qkd_alice_records a;
	struct qkd_rng r;
	size_t ones;

	qkd_channel_params_default(&p);
	ASSERT_EQ(0, qkd_rng_os(&r));
	ASSERT_EQ(0, qkd_alice_records_alloc(&a, 100000));
	qkd_alice_prepare(&p, &r, &a);
	ones = qkd_bits_popcount(a.bit, a.n);
	/* 100000 fair bits: sd 158 */
	ASSERT_GT(ones, 50000 - 1000);
	ASSERT_LT(ones, 50000 + 1000);
	ASSERT_NE(qkd_rng_u64(&r), qkd_rng_u64(&r));
	qkd_alice_records_free(&a);
}

/*
 * Alice's choices from OpenSSL's DRBG (qkdd's generator for them): fair
 * bits through several 4 KiB refills, two generators never alike, and
 * the buffer refilled from the DRBG (not left as it was).
 */
TEST(drbg_generator_is_fair_and_unpredictable_across_refills)
{
	struct qkd_rng r, r2;
	uint64_t ones = 0, first[4], again[4];
	size_t n = 512 * 20;	/* 20 refills of 512 words */

	ASSERT_EQ(0, qkd_rng_drbg(&r));
	ASSERT_EQ(0, qkd_rng_drbg(&r2));
	ASSERT_TRUE(r.os && r.drbg);
	for (int i = 0; i < 4; i++) {
		first[i] = qkd_rng_u64(&r);
		again[i] = qkd_rng_u64(&r2);
	}
	ASSERT_NE(0, memcmp(first, again, sizeof(first)));
	for (size_t i = 4; i < n; i++)
		ones += (uint64_t)__builtin_popcountll(qkd_rng_u64(&r));
	/* 655104 fair bits: sd 405 */
	ASSERT_GT(ones, (n - 4) * 32 - 4000);
	ASSERT_LT(ones, (n - 4) * 32 + 4000);
	/* the 21st refill does not repeat the first block */
	r2.pos = 512;
	ASSERT_NE(again[0], qkd_rng_u64(&r2));
}

TEST(intercept_resend_all)
{
	struct qkd_channel_params p;
	struct run r;
	double q;

	qkd_channel_params_default(&p);
	p.eve_ir_fraction = 1;
	ASSERT_EQ(0, simulate(&p, 4000000, 3, &r));
	/* Eve's basis wrong half the time -> Bob random: 1/4, plus e_d/2
	 * from the right half: 0.255 on signal detections; decoy classes
	 * and dark counts shift it a little. Measured over all classes: */
	q = (double)r.errors / (double)r.sifted;
	ASSERT_GT(r.sifted, 10000);
	ASSERT_GT(q, 0.24);
	ASSERT_LT(q, 0.27);
	ASSERT_TRUE(within((double)r.cls_err[0], (double)r.cls_sift[0],
			   0.25 + 0.5 * p.misalignment));
	/* Eve knows the bits she measured in the right basis: about half */
	ASSERT_TRUE(within((double)r.eve_knows, (double)r.sifted, 0.5));
}

TEST(intercept_resend_fraction)
{
	struct qkd_channel_params p;
	struct run r;
	double q;

	qkd_channel_params_default(&p);
	p.eve_ir_fraction = 0.2;
	p.misalignment = 0;
	ASSERT_EQ(0, simulate(&p, 4000000, 4, &r));
	/* 0.2 * 1/4 = 5% on signal pulses */
	q = qkd_channel_expected_qber(&p, 0) + 0.05;
	ASSERT_TRUE(within((double)r.cls_err[0], (double)r.cls_sift[0], q))
		TH_LOG("%zu / %zu", r.cls_err[0], r.cls_sift[0]);
}

TEST(pns_changes_gains_not_qber)
{
	struct qkd_channel_params p;
	struct run base, pns;

	qkd_channel_params_default(&p);
	p.length_km = 100;	/* 20 dB: PNS pays for Eve */
	ASSERT_EQ(0, simulate(&p, 4000000, 8, &base));
	p.eve_split = QKD_EVE_PNS;
	ASSERT_EQ(0, simulate(&p, 4000000, 8, &pns));
	/* Signal gain: (1 - e^-μ - μe^-μ) minus the undetected ones, with
	 * η_D = 0.2: larger than the honest 1 - exp(-η μ) at 100 km. */
	ASSERT_GT(qkd_channel_click_prob(&p, 0), 0.01);
	ASSERT_TRUE(within((double)pns.cls_det[0], 4e6,
			   0.8 * qkd_channel_click_prob(&p, 0)));
	/* Eve knows every bit of a signal detection */
	ASSERT_GT(pns.eve_knows, pns.sifted * 9 / 10);
	/* the weak decoy loses relatively more than the signal */
	ASSERT_LT((double)pns.cls_det[1] / (double)pns.cls_det[0],
		  (double)base.cls_det[1] / (double)base.cls_det[0]);
	/* no disturbance beyond misalignment on the signal */
	ASSERT_LT((double)pns.cls_err[0] / (double)pns.cls_sift[0], 0.02);
}

TEST(beam_splitting)
{
	struct qkd_channel_params p;
	struct run r;
	double etaf;

	qkd_channel_params_default(&p);
	p.eve_split = QKD_EVE_BEAM_SPLIT;
	ASSERT_EQ(0, simulate(&p, 2000000, 9, &r));
	/* Bob unchanged; Eve holds a photon with 1 - exp(-μ(1 - η_F)) on
	 * signal pulses (0.2985 at μ = 0.5, 5 dB) */
	etaf = pow(10, -0.5);
	ASSERT_TRUE(within((double)r.st.detections, 2e6,
			   0.8 * qkd_channel_click_prob(&p, 0) +
			   0.1 * qkd_channel_click_prob(&p, 1) +
			   0.1 * qkd_channel_click_prob(&p, 2)));
	ASSERT_GT((double)r.eve_knows / (double)r.sifted,
		  0.8 * (1 - exp(-0.5 * (1 - etaf))) - 0.03);
}

/* ---- the per-detection generator against the per-pulse simulator ---- */

/* What both are compared on: per intensity class detections and double
 * clicks; per class and basis sifted bits and errors; Eve's knowledge. */
struct gstats {
	uint64_t det[3], dbl[3], sift[3][2], err[3][2], eve_knows, sifted;
	uint64_t alice_x, bob_x;
};

static int gen_run(const struct qkd_channel_params *p, size_t n,
		   uint64_t seed, bool direct, struct gstats *g)
{
	struct qkd_alice_records a;
	struct qkd_bob_records b;
	struct qkd_detections d = { 0 };
	struct qkd_rng r;
	int err;

	memset(g, 0, sizeof(*g));
	qkd_rng_seed(&r, seed);
	if (qkd_alice_records_alloc(&a, n) || qkd_bob_records_alloc(&b, n))
		return -1;
	if (direct) {
		err = qkd_channel_generate(p, &r, &r, &a, &d, NULL);
	} else {
		qkd_alice_prepare(p, &r, &a);
		err = qkd_channel_transmit(p, &r, &a, &d, NULL);
	}
	if (err || qkd_bob_records(&d, &r, &b))
		return -1;
	for (size_t i = 0; i < d.count; i++) {
		const struct qkd_detection *e = &d.ev[i];
		unsigned int c = a.intensity[e->pulse];
		unsigned int ab = qkd_bit_get(a.basis, e->pulse);

		g->det[c]++;
		g->dbl[c] += e->clicks == 3;
		g->alice_x += ab;
		g->bob_x += e->basis;
		if (ab != e->basis)
			continue;
		g->sifted++;
		g->sift[c][ab]++;
		g->err[c][ab] += qkd_bit_get(a.bit, e->pulse) !=
				 qkd_bit_get(b.bit, e->pulse);
		g->eve_knows += e->eve_knows;
	}
	qkd_detections_free(&d);
	qkd_alice_records_free(&a);
	qkd_bob_records_free(&b);
	return 0;
}

/*
 * Two proportions x1/n1 and x2/n2 equal within 5 standard deviations
 * (pooled), plus a continuity correction that only matters for the few
 * counts of the vacuum class; nothing to compare when a side has none.
 */
static int same_rate(double x1, double n1, double x2, double n2)
{
	double q = (x1 + x2) / (n1 + n2);

	if (n1 == 0 || n2 == 0)
		return 1;
	return fabs(x1 / n1 - x2 / n2) <=
	       5 * sqrt(q * (1 - q) * (1 / n1 + 1 / n2)) + 0.5 / n1 +
	       0.5 / n2;
}

static void gen_compare(struct __test_metadata *_metadata,
			const struct qkd_channel_params *p, size_t n,
			uint64_t seed)
{
	struct gstats s, g;
	unsigned int nc = p->source == QKD_SOURCE_SINGLE_PHOTON ? 1 :
			  p->n_intensities;

	ASSERT_EQ(0, gen_run(p, n, seed, false, &s));
	ASSERT_EQ(0, gen_run(p, n, seed + 1, true, &g));
	for (unsigned int c = 0; c < nc; c++) {
		double pi = nc == 1 ? 1 : p->p_intensity[c];
		double pc = qkd_channel_click_prob(p, c) * pi;

		TH_LOG("class %u: detections %lu / %lu (model %.0f), double clicks %lu / %lu",
		       c, (unsigned long)s.det[c], (unsigned long)g.det[c],
		       pc * (double)n, (unsigned long)s.dbl[c],
		       (unsigned long)g.dbl[c]);
		/* the detection rate per class: both the model's */
		EXPECT_TRUE(within((double)s.det[c], (double)n, pc));
		EXPECT_TRUE(within((double)g.det[c], (double)n, pc));
		EXPECT_TRUE(same_rate((double)s.dbl[c], (double)s.det[c],
				      (double)g.dbl[c], (double)g.det[c]));
		for (unsigned int bs = 0; bs < 2; bs++) {
			TH_LOG("  %s: sifted %lu / %lu, QBER %.5f / %.5f",
			       bs ? "X" : "Z", (unsigned long)s.sift[c][bs],
			       (unsigned long)g.sift[c][bs],
			       (double)s.err[c][bs] / (double)s.sift[c][bs],
			       (double)g.err[c][bs] / (double)g.sift[c][bs]);
			EXPECT_TRUE(same_rate((double)s.sift[c][bs],
					      (double)s.det[c],
					      (double)g.sift[c][bs],
					      (double)g.det[c]));
			EXPECT_TRUE(same_rate((double)s.err[c][bs],
					      (double)s.sift[c][bs],
					      (double)g.err[c][bs],
					      (double)g.sift[c][bs]));
		}
	}
	for (unsigned int c = nc; c < 3; c++)
		EXPECT_EQ(0, g.det[c]);
	EXPECT_TRUE(same_rate((double)s.alice_x, (double)(s.det[0] + s.det[1] + s.det[2]),
			      (double)g.alice_x, (double)(g.det[0] + g.det[1] + g.det[2])));
	EXPECT_TRUE(same_rate((double)s.bob_x, (double)(s.det[0] + s.det[1] + s.det[2]),
			      (double)g.bob_x, (double)(g.det[0] + g.det[1] + g.det[2])));
	EXPECT_TRUE(same_rate((double)s.eve_knows, (double)s.sifted,
			      (double)g.eve_knows, (double)g.sifted));
}

/*
 * Issue 16: the detection source samples the gaps between detections
 * instead of every pulse. It must be the same link: per intensity class
 * the detection rate (against the model too) and double clicks, per class
 * and basis the sifted share and the QBER, the basis choices, and Eve's
 * knowledge, equal to the per-pulse simulator's within 5 sigma, on about
 * 10^6 detections each: decoys at 0 km, biased single photons with dark
 * counts, intercept-resend on 30 %, photon-number splitting.
 */
TEST(generate_agrees_with_the_per_pulse_simulator)
{
	struct qkd_channel_params p;

	qkd_channel_params_default(&p);
	p.length_km = 0;
	gen_compare(_metadata, &p, 12000000, 11);

	qkd_channel_params_default(&p);
	p.source = QKD_SOURCE_SINGLE_PHOTON;
	p.n_intensities = 1;
	p.p_intensity[0] = 1;
	p.p_z_alice = p.p_z_bob = 0.9;
	p.length_km = 10;
	p.dark_count_prob = 1e-3;
	p.misalignment = 0.03;
	gen_compare(_metadata, &p, 8000000, 21);

	qkd_channel_params_default(&p);
	p.length_km = 5;
	p.eve_ir_fraction = 0.3;
	gen_compare(_metadata, &p, 12000000, 31);

	qkd_channel_params_default(&p);
	p.length_km = 25;
	p.det_efficiency = 1;
	p.eve_split = QKD_EVE_PNS;
	gen_compare(_metadata, &p, 12000000, 41);
}

TEST_HARNESS_MAIN
