// SPDX-License-Identifier: GPL-2.0-only
/* Parameter estimation: sampling, QBER, Serfling bound, abort reasons. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "qkd/channel.h"
#include "qkd/estimate.h"
#include "qkd/sifting.h"

TEST(serfling_hand_value)
{
	/* n = 9e5, k = 1e5, ε = 1e-10:
	 * μ = sqrt((n+k)(k+1) ln(1/ε) / (2 n k²))
	 *   = sqrt(1e6 * 100001 * 23.02585093 / (2 * 9e5 * 1e10))
	 *   = sqrt(1.27922504e-4) = 0.0113103 */
	double mu = qkd_serfling_mu(900000, 100000, 1e-10);

	ASSERT_LT(fabs(mu - sqrt(1e6 * 100001.0 * log(1e10) /
				 (2 * 9e5 * 1e10))), 1e-15);
	ASSERT_LT(fabs(mu - 0.0113103), 1e-6);
	ASSERT_TRUE(isinf(qkd_serfling_mu(0, 10, 1e-10)));
	/* more samples, tighter */
	ASSERT_LT(qkd_serfling_mu(900000, 200000, 1e-10), mu);
}

TEST(sample_mask_exact_and_uniform)
{
	struct qkd_rng r;
	size_t N = 1000, hits[1000] = { 0 }, i, t;
	uint64_t mask[16];

	qkd_rng_seed(&r, 3);
	for (t = 0; t < 2000; t++) {
		size_t k = t % 2 ? 100 : 900;	/* both Floyd branches */

		ASSERT_EQ(0, qkd_sample_mask(&r, N, k, mask));
		ASSERT_EQ(k, qkd_bits_popcount(mask, N));
		ASSERT_EQ(0, mask[15] >> (N % 64));
		for (i = 0; i < N; i++)
			hits[i] += qkd_bit_get(mask, i);
	}
	/* each position: 1000 draws at 0.1 and 1000 at 0.9 -> mean 1000,
	 * sd sqrt(2 * 1000 * 0.09) = 13.4; allow 6 sd */
	for (i = 0; i < N; i++) {
		ASSERT_GT(hits[i], 1000 - 81);
		ASSERT_LT(hits[i], 1000 + 81);
	}
	ASSERT_EQ(-EINVAL, qkd_sample_mask(&r, 10, 11, mask));
}

TEST(compress_unmasked)
{
	struct qkd_rng r;
	size_t N = 10007, i, k = 0, got;
	uint64_t in[157], mask[157], out[157];

	qkd_rng_seed(&r, 4);
	for (i = 0; i < 157; i++) {
		in[i] = qkd_rng_u64(&r);
		mask[i] = qkd_rng_u64(&r);
	}
	got = qkd_bits_compress_unmasked(in, mask, N, out);
	for (i = 0; i < N; i++)
		if (!qkd_bit_get(mask, i)) {
			ASSERT_EQ(qkd_bit_get(in, i), qkd_bit_get(out, k));
			k++;
		}
	ASSERT_EQ(k, got);
}

TEST(known_qber)
{
	/* 1000 bits, sample = first 200 (mask), 10 errors inside the sample
	 * and 50 outside: QBER = 10/200 = 5% */
	uint64_t a[16] = { 0 }, b[16] = { 0 }, m[16] = { 0 };
	struct qkd_estimate_params p = { .qber_abort = 0.11, .eps_pe = 1e-10 };
	struct qkd_estimate e;
	size_t i;

	for (i = 0; i < 200; i++)
		qkd_bit_set(m, i, 1);
	for (i = 0; i < 10; i++)
		qkd_bit_set(b, i * 20, 1);
	for (i = 0; i < 50; i++)
		qkd_bit_set(b, 200 + i * 16, 1);
	ASSERT_EQ(0, qkd_estimate_qber(a, b, m, 1000, &p, &e));
	ASSERT_EQ(200, e.k);
	ASSERT_EQ(10, e.errors);
	ASSERT_EQ(800, e.n);
	ASSERT_LT(fabs(e.qber - 0.05), 1e-15);
	/* μ = sqrt(1000 * 201 * ln(1e10) / (2 * 800 * 200²)) = 0.2687 */
	ASSERT_LT(fabs(e.mu - sqrt(1000 * 201 * log(1e10) / (2 * 800 * 4e4))),
		  1e-12);
	/* so the phase bound 0.319 is < 1/2: no abort */
	ASSERT_FALSE(e.abort);
	ASSERT_STREQ("", e.reason);
	/* above threshold */
	p.qber_abort = 0.04;
	ASSERT_EQ(0, qkd_estimate_qber(a, b, m, 1000, &p, &e));
	ASSERT_TRUE(e.abort);
	ASSERT_NE(NULL, strstr(e.reason, "QBER 5.00%"));
	ASSERT_NE(NULL, strstr(e.reason, "above the abort threshold 4.00%"));
	/* sample too small: 20 bits */
	memset(m, 0, sizeof(m));
	for (i = 0; i < 20; i++)
		qkd_bit_set(m, 300 + i, 1);
	p.qber_abort = 0.11;
	ASSERT_EQ(0, qkd_estimate_qber(a, b, m, 1000, &p, &e));
	ASSERT_TRUE(e.abort);
	ASSERT_NE(NULL, strstr(e.reason, "sample too small"));
	/* empty sample */
	memset(m, 0, sizeof(m));
	ASSERT_EQ(0, qkd_estimate_qber(a, b, m, 1000, &p, &e));
	ASSERT_TRUE(e.abort);
}

/* Full chain: channel -> sifting -> random sample -> estimate. */
static void chain(struct __test_metadata *_metadata, double ir,
		  struct qkd_estimate *e)
{
	struct qkd_channel_params p;
	struct qkd_alice_records a;
	struct qkd_bob_records b;
	struct qkd_detections d = { 0 };
	struct qkd_sifted sa, sb;
	struct qkd_rng r, shared;
	struct qkd_estimate_params ep = { .qber_abort = 0.11, .eps_pe = 1e-10 };
	uint64_t *mask;
	size_t n = 3000000;

	qkd_channel_params_default(&p);
	p.source = QKD_SOURCE_SINGLE_PHOTON;
	p.n_intensities = 1;
	p.p_intensity[0] = 1;
	p.eve_ir_fraction = ir;
	qkd_rng_seed(&r, 11);
	ASSERT_EQ(0, qkd_alice_records_alloc(&a, n));
	ASSERT_EQ(0, qkd_bob_records_alloc(&b, n));
	qkd_alice_prepare(&p, &r, &a);
	ASSERT_EQ(0, qkd_channel_transmit(&p, &r, &a, &d, NULL));
	ASSERT_EQ(0, qkd_bob_records(&d, &r, &b));
	ASSERT_EQ(0, qkd_sift_alice(&a, &b, &sa));
	ASSERT_EQ(0, qkd_sift_bob(&b, &a, &sb));
	mask = qkd_bits_alloc(sa.n, 0);
	qkd_rng_seed(&shared, 12345);	/* the seed one side sends */
	ASSERT_EQ(0, qkd_sample_mask(&shared, sa.n, sa.n / 10, mask));
	ASSERT_EQ(0, qkd_estimate_qber(sa.key, sb.key, mask, sa.n, &ep, e));
	ASSERT_EQ(sa.n / 10, e->k);
	qkd_bits_free(mask, sa.n, 0);
	qkd_sifted_free(&sa);
	qkd_sifted_free(&sb);
	qkd_detections_free(&d);
	qkd_alice_records_free(&a);
	qkd_bob_records_free(&b);
}

TEST(honest_channel_passes)
{
	struct qkd_estimate e;

	chain(_metadata, 0, &e);
	/* e_d = 1%: about 9500 sampled bits, sd 0.1% */
	ASSERT_GT(e.k, 5000);
	ASSERT_GT(e.qber, 0.005);
	ASSERT_LT(e.qber, 0.015);
	ASSERT_FALSE(e.abort);
	ASSERT_LT(e.phase_bound, 0.11);
}

TEST(intercept_resend_aborts)
{
	struct qkd_estimate e;

	chain(_metadata, 1, &e);
	/* 25% + e_d/2 = 25.5%, sd 0.45% */
	ASSERT_GT(e.qber, 0.235);
	ASSERT_LT(e.qber, 0.275);
	ASSERT_TRUE(e.abort);
	ASSERT_NE(NULL, strstr(e.reason, "above the abort threshold 11.00%"));
	TH_LOG("abort reason: %s", e.reason);
}

TEST_HARNESS_MAIN
