// SPDX-License-Identifier: GPL-2.0-only
/*
 * Key length formulas against numbers computed by hand (by the formulas
 * written next to them, evaluated in double precision outside this code).
 */
#include <math.h>
#include <stdint.h>

#include "kselftest_harness.h"
#include "qkd/channel.h"
#include "qkd/estimate.h"
#include "qkd/keyrate.h"
#include "qkd/sifting.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

TEST(h2)
{
	ASSERT_TRUE(NEAR(qkd_h2(0.5), 1.0, 1e-15));
	ASSERT_TRUE(NEAR(qkd_h2(0.11), 0.49991596, 1e-8));
	ASSERT_TRUE(NEAR(qkd_h2(0.02), 0.14144054, 1e-8));
	ASSERT_EQ(0, qkd_h2(0));
	ASSERT_EQ(0, qkd_h2(1));
}

/*
 * Tomamichel et al. 2012, n = 10^6, k = 10^5, Q = 2%, leak = 150000,
 * ε_sec = 1e-10, ε_cor = 1e-15:
 *   μ = sqrt((n+k)/(nk) (k+1)/k ln(2/ε_sec))
 *     = sqrt(1.1e-5 * 1.00001 * 23.7189981...) = 0.0161527579164
 *   ℓ = n (1 - h(0.0361527579164)) - 150000 - log2(2/(1e-20 * 1e-15))
 *     = 625517.027...  -> 625517
 */
TEST(bb84_hand_value)
{
	struct qkd_bb84_input in = {
		.n = 1000000, .k = 100000, .qber = 0.02, .leak_ec = 150000,
		.eps_sec = 1e-10, .eps_cor = 1e-15,
	};
	struct qkd_bb84_detail d;

	ASSERT_EQ(625517, qkd_keylen_bb84(&in, &d));
	ASSERT_TRUE(NEAR(d.mu, 0.0161527579164, 1e-12));
	ASSERT_TRUE(NEAR(d.raw, 625517.0270582187, 1e-4));
}

TEST(bb84_zero_when_too_noisy_or_small)
{
	struct qkd_bb84_input in = {
		.n = 1000000, .k = 100000, .qber = 0.12, .leak_ec = 0,
		.eps_sec = 1e-10, .eps_cor = 1e-15,
	};

	/* 1 - h(0.136) < 0.5 ... still positive without leak: */
	ASSERT_GT(qkd_keylen_bb84(&in, NULL), 0);
	/* with a realistic leak (1.1 h(Q) n) nothing is left */
	in.leak_ec = 1.1 * qkd_h2(0.12) * 1e6;
	ASSERT_EQ(0, qkd_keylen_bb84(&in, NULL));
	/* tiny block: μ dominates */
	in.qber = 0.01;
	in.n = 1000;
	in.k = 100;
	in.leak_ec = 100;
	ASSERT_EQ(0, qkd_keylen_bb84(&in, NULL));
	/* invalid */
	in.k = 0;
	ASSERT_EQ(0, qkd_keylen_bb84(&in, NULL));
}

TEST(bb84_monotone)
{
	struct qkd_bb84_input in = {
		.n = 10000000, .k = 1000000, .qber = 0.03, .leak_ec = 2e6,
		.eps_sec = 1e-10, .eps_cor = 1e-15,
	};
	uint64_t a = qkd_keylen_bb84(&in, NULL), b;

	in.qber = 0.04;
	b = qkd_keylen_bb84(&in, NULL);
	ASSERT_LT(b, a);
	in.qber = 0.03;
	in.eps_sec = 1e-6;
	ASSERT_GT(qkd_keylen_bb84(&in, NULL), a);
}

/*
 * Lim et al. 2014, μ = (0.5, 0.1, 0), p = (0.8, 0.1, 0.1), ε_sec = 1e-10,
 * ε_cor = 1e-15, leak = 5e6; counts from 2e10 pulses, η = 0.02,
 * p_dark = 1e-6, e_d = 1%, p_Z = p_X = 1/2 (same in both bases):
 *   n_Z = n_X = (3.98e7, 1.0e6, 1.0e3), m_X = (4.02e5, 1.05e4, 5.0e2)
 * τ0 = Σ p_k e^{-μ_k} = 0.675708269574, τ1 = Σ p_k e^{-μ_k} μ_k =
 * 0.251660638065. Hoeffding deviation sqrt(n_B/2 ln(21/ε_sec)) = 23307.4:
 * larger than the vacuum counts, so s_{Z,0} = 0;
 * s_{Z,1} = τ1 μ1 [n^-_{μ2} - n^+_{μ3} - (μ2²-μ3²)/μ1² n^+_{μ1}]
 *	     / (μ1(μ2-μ3) - μ2² + μ3²) = 22880234.9178476 (= s_{X,1})
 * v_{X,1} = τ1 (m^+_{μ2} - m^-_{μ3}) / (μ2 - μ3) = 402375.281218322
 * φ_Z = v/s + γ(ε_sec, v/s, s_{Z,1}, s_{X,1}) = 0.0179405007193
 * ℓ = 0 + s_{Z,1}(1 - h(φ_Z)) - 5e6 - 6 log2(21e10) - log2(2e15)
 *   = 14912039.3369 -> 14912039
 */
TEST(decoy_hand_value)
{
	struct qkd_decoy_input in = {
		.mu = { 0.5, 0.1, 0.0 }, .p = { 0.8, 0.1, 0.1 },
		.n_z = { 3.98e7, 1.0e6, 1.0e3 },
		.n_x = { 3.98e7, 1.0e6, 1.0e3 },
		.m_x = { 4.02e5, 1.05e4, 5.0e2 },
		.leak_ec = 5e6, .eps_sec = 1e-10, .eps_cor = 1e-15,
	};
	struct qkd_decoy_detail d;

	ASSERT_EQ(14912039, qkd_keylen_decoy(&in, &d));
	ASSERT_TRUE(NEAR(d.s_z0, 0, 0));
	ASSERT_TRUE(NEAR(d.s_z1, 22880234.9178476, 1e-3));
	ASSERT_TRUE(NEAR(d.s_x1, 22880234.9178476, 1e-3));
	ASSERT_TRUE(NEAR(d.v_x1, 402375.281218322, 1e-4));
	ASSERT_TRUE(NEAR(d.phi_z, 0.0179405007193, 1e-10));
	ASSERT_NULL(d.why_zero);
}

/*
 * Issue 14: no X-basis error at all (b = v_{X,1}/s_{X,1} = 0). γ vanishes
 * there (its b(1 - b) factor; the Stirling-based bound behind it needs
 * b > 0), and φ_Z was 0: no statistical correction. The exact form for
 * sampling without replacement: t phase errors among the c + d = s_{Z,1}
 * + s_{X,1} single-photon events all fall in Z with probability
 * C(c, t)/C(c + d, t) <= (c/(c + d))^t, at most ε_sec/21 once
 * t >= ln(21/ε_sec)/ln(1 + d/c). Same counts as decoy_hand_value with
 * m_X = 0: c = d = 22880234.9178476,
 *   φ_Z = ln(21e10)/(c ln 2) = 1.6438466871821175e-06
 *   ℓ = c (1 - h(φ_Z)) - 5e6 - 6 log2(21e10) - log2(2e15)
 *     = 17879181.4695 -> 17879181
 * (computed apart, in Python). One error seen never gives a smaller φ_Z
 * than none.
 */
TEST(decoy_zero_errors_phase_bound_keeps_its_statistical_correction)
{
	struct qkd_decoy_input in = {
		.mu = { 0.5, 0.1, 0.0 }, .p = { 0.8, 0.1, 0.1 },
		.n_z = { 3.98e7, 1.0e6, 1.0e3 },
		.n_x = { 3.98e7, 1.0e6, 1.0e3 },
		.m_x = { 0, 0, 0 },
		.leak_ec = 5e6, .eps_sec = 1e-10, .eps_cor = 1e-15,
	};
	struct qkd_decoy_detail d, d1;

	ASSERT_EQ(17879181, qkd_keylen_decoy(&in, &d));
	ASSERT_TRUE(NEAR(d.v_x1, 0, 0));
	ASSERT_TRUE(NEAR(d.phi_z, 1.6438466871821175e-06, 1e-15));
	/* one error in the signal's X bits: a bound at least as large */
	in.m_x[0] = 1;
	qkd_keylen_decoy(&in, &d1);
	ASSERT_GE(d1.phi_z, d.phi_z);
}

TEST(decoy_pns_detected)
{
	/* PNS: decoys see far fewer detections per photon than the signal
	 * (single-photon pulses blocked): the single-photon bound collapses */
	struct qkd_decoy_input in = {
		.mu = { 0.5, 0.1, 0.0 }, .p = { 0.8, 0.1, 0.1 },
		.n_z = { 3.98e7, 1.5e5, 1.0e3 },
		.n_x = { 3.98e7, 1.5e5, 1.0e3 },
		.m_x = { 4.02e5, 1.5e3, 5.0e2 },
		.leak_ec = 5e6, .eps_sec = 1e-10, .eps_cor = 1e-15,
	};
	struct qkd_decoy_detail d;

	ASSERT_EQ(0, qkd_keylen_decoy(&in, &d));
	ASSERT_NE(NULL, d.why_zero);
	ASSERT_EQ(0, d.s_z1);
}

TEST(decoy_invalid_intensities)
{
	struct qkd_decoy_input in = {
		.mu = { 0.2, 0.15, 0.1 }, .p = { 0.8, 0.1, 0.1 },
		.n_z = { 1e6, 1e5, 1e4 }, .n_x = { 1e6, 1e5, 1e4 },
		.m_x = { 1e4, 1e3, 1e2 }, .eps_sec = 1e-10, .eps_cor = 1e-15,
	};
	struct qkd_decoy_detail d;

	ASSERT_EQ(0, qkd_keylen_decoy(&in, &d));
	ASSERT_NE(NULL, d.why_zero);
}

/*
 * End to end with the simulated channel: sifting's per-class counts feed
 * the decoy bound. Honest channel: a key; PNS attack (single-photon pulses
 * blocked, multi-photon pulses split): no single-photon events can be
 * guaranteed, no key.
 */
static uint64_t decoy_run(struct __test_metadata *_metadata,
			  enum qkd_eve_split eve, struct qkd_decoy_detail *d)
{
	struct qkd_channel_params p;
	struct qkd_alice_records a;
	struct qkd_bob_records b;
	struct qkd_detections det = { 0 };
	struct qkd_sifted sa, sb;
	struct qkd_decoy_input in = { 0 };
	struct qkd_rng r;
	size_t n = 100000000, i, ez = 0, nz = 0;
	int c;

	/* 10^8 pulses, decoys sent often enough for the finite-size bound:
	 * about 0.5 M single-photon Z events expected */
	qkd_channel_params_default(&p);
	p.p_intensity[0] = 0.6;
	p.p_intensity[1] = 0.2;
	p.p_intensity[2] = 0.2;
	p.length_km = 10;
	p.eve_split = eve;
	qkd_rng_seed(&r, 21);
	ASSERT_EQ(0, qkd_alice_records_alloc(&a, n));
	ASSERT_EQ(0, qkd_bob_records_alloc(&b, n));
	qkd_alice_prepare(&p, &r, &a);
	ASSERT_EQ(0, qkd_channel_transmit(&p, &r, &a, &det, NULL));
	ASSERT_EQ(0, qkd_bob_records(&det, &r, &b));
	ASSERT_EQ(0, qkd_sift_alice(&a, &b, &sa));
	ASSERT_EQ(0, qkd_sift_bob(&b, &a, &sb));
	for (c = 0; c < 3; c++) {
		in.mu[c] = p.mu[c];
		in.p[c] = p.p_intensity[c];
		in.n_z[c] = (double)sa.count[c][0];
		in.n_x[c] = (double)sa.count[c][1];
	}
	for (i = 0; i < sa.n; i++) {
		unsigned int e = qkd_bit_get(sa.key, i) != qkd_bit_get(sb.key, i);

		if (qkd_bit_get(sa.basis, i))
			in.m_x[sa.intensity[i]] += e;	/* X: all disclosed */
		else {
			ez += e;
			nz++;
		}
	}
	/* error correction at 1.16 x the Shannon limit */
	in.leak_ec = 1.16 * (double)nz * qkd_h2((double)ez / (double)nz);
	in.eps_sec = 1e-10;
	in.eps_cor = 1e-15;
	qkd_sifted_free(&sa);
	qkd_sifted_free(&sb);
	qkd_detections_free(&det);
	qkd_alice_records_free(&a);
	qkd_bob_records_free(&b);
	return qkd_keylen_decoy(&in, d);
}

TEST(decoy_with_simulated_channel)
{
	struct qkd_decoy_detail d;
	uint64_t l = decoy_run(_metadata, QKD_EVE_SPLIT_NONE, &d);

	TH_LOG("honest: s_z1 %.0f phi_z %.4f l %llu", d.s_z1, d.phi_z,
	       (unsigned long long)l);
	/* expected from the model: η = 10^-0.2 0.2 = 0.126, gains 0.061
	 * (μ1) and 0.0126 (μ2); n_Z ≈ (915k, 62.5k, 10); the formulas give
	 * s_Z1 ≈ 517k, φ_Z ≈ 3.1%, leak ≈ 1.16 · 915k · h(1%) ≈ 86k,
	 * ℓ ≈ 517k (1 - h(0.031)) - 86k ≈ 327k */
	ASSERT_GT(d.s_z1, 450000);
	ASSERT_LT(d.s_z1, 600000);
	ASSERT_LT(d.phi_z, 0.04);
	ASSERT_GT(l, 250000);
	ASSERT_LT(l, 400000);
	l = decoy_run(_metadata, QKD_EVE_PNS, &d);
	TH_LOG("PNS: s_z1 %.0f l %llu (%s)", d.s_z1, (unsigned long long)l,
	       d.why_zero ? d.why_zero : "");
	ASSERT_EQ(0, l);
	ASSERT_NE(NULL, d.why_zero);
}

TEST_HARNESS_MAIN
