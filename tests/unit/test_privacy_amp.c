// SPDX-License-Identifier: GPL-2.0-only
/* Toeplitz privacy amplification: fast == naive == definition, bit for bit. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"
#include "qkd/keyrate.h"
#include "qkd/privacy_amp.h"
#include "qkd/prng.h"

static uint64_t rng_state = 0x1234567887654321ULL;

static uint64_t rnd(void)
{
	return qkd_splitmix64(&rng_state);
}

static uint64_t *rnd_bits(size_t nbits)
{
	size_t w = qkd_bits_words(nbits), i;
	uint64_t *a = calloc(w + 1, sizeof(uint64_t));

	for (i = 0; i < w; i++)
		a[i] = rnd();	/* garbage past nbits on purpose */
	return a;
}

/* The definition, one bit at a time. */
static void toeplitz_bits(const uint64_t *s, const uint64_t *x, size_t n,
			  uint64_t *y, size_t l)
{
	size_t i, j;

	memset(y, 0, qkd_bits_words(l) * 8);
	for (i = 0; i < l; i++) {
		unsigned int v = 0;

		for (j = 0; j < n; j++)
			v ^= qkd_bit_get(s, i - j + n - 1) & qkd_bit_get(x, j);
		qkd_bit_set(y, i, v);
	}
}

TEST(hand_example)
{
	/* n = 3, l = 2: T = [[s2 s1 s0], [s3 s2 s1]].
	 * s = 1,0,1,1 (s0..s3), x = 1,1,0 (x0..x2):
	 * y0 = s2 x0 + s1 x1 + s0 x2 = 1 + 0 + 0 = 1
	 * y1 = s3 x0 + s2 x1 + s1 x2 = 1 + 1 + 0 = 0 */
	uint64_t s = 0xd, x = 0x3, y = ~0ULL;

	ASSERT_EQ(0, qkd_toeplitz_naive(&s, &x, 3, &y, 2));
	ASSERT_EQ(1, y);
	y = ~0ULL;
	ASSERT_EQ(0, qkd_toeplitz_fast(&s, &x, 3, &y, 2));
	ASSERT_EQ(1, y);
}

TEST(invalid)
{
	uint64_t s = 0, x = 0, y = 0;

	ASSERT_EQ(-EINVAL, qkd_toeplitz_naive(&s, &x, 0, &y, 1));
	ASSERT_EQ(-EINVAL, qkd_toeplitz_fast(&s, &x, 1, &y, 0));
	ASSERT_EQ(-EINVAL, qkd_toeplitz_fast(NULL, &x, 1, &y, 1));
}

TEST(naive_matches_definition)
{
	int it;

	for (it = 0; it < 200; it++) {
		size_t n = 1 + rnd() % 300, l = 1 + rnd() % 300;
		uint64_t *s = rnd_bits(n + l - 1), *x = rnd_bits(n);
		uint64_t *y1 = calloc(qkd_bits_words(l), 8);
		uint64_t *y2 = calloc(qkd_bits_words(l), 8);

		/* the definition reads seed bits only below n + l - 1 */
		qkd_bits_trim(s, n + l - 1);
		qkd_bits_trim(x, n);
		toeplitz_bits(s, x, n, y1, l);
		ASSERT_EQ(0, qkd_toeplitz_naive(s, x, n, y2, l));
		ASSERT_EQ(0, memcmp(y1, y2, qkd_bits_words(l) * 8))
			TH_LOG("n=%zu l=%zu", n, l);
		free(s); free(x); free(y1); free(y2);
	}
}

static void fast_vs_naive(struct __test_metadata *_metadata, size_t n, size_t l)
{
	uint64_t *s = rnd_bits(n + l - 1), *x = rnd_bits(n);
	size_t w = qkd_bits_words(l);
	uint64_t *y1 = malloc(w * 8), *y2 = malloc(w * 8);

	memset(y1, 0xa5, w * 8);
	memset(y2, 0x5a, w * 8);
	ASSERT_EQ(0, qkd_toeplitz_naive(s, x, n, y1, l));
	ASSERT_EQ(0, qkd_toeplitz_fast(s, x, n, y2, l));
	ASSERT_EQ(0, memcmp(y1, y2, w * 8))
		TH_LOG("impl=%s n=%zu l=%zu",
		       qkd_pa_impl_name(qkd_pa_get_impl()), n, l);
	free(s); free(x); free(y1); free(y2);
}

static const enum qkd_pa_impl impls[] = {
	QKD_PA_GENERIC, QKD_PA_PCLMUL, QKD_PA_VPCLMUL512, QKD_PA_VPCLMUL512,
};

/* The second VPCLMUL512 entry runs the additive FFT at every size. */
static int select_impl(size_t k)
{
	qkd_pa_set_fft_threshold(k == 3 ? 0 : (size_t)-1);
	return qkd_pa_set_impl(impls[k]);
}

TEST(fast_matches_naive_small_random)
{
	size_t k;
	int it, tried = 0;

	for (k = 0; k < sizeof(impls) / sizeof(impls[0]); k++) {
		if (select_impl(k))
			continue;
		tried++;
		for (it = 0; it < 300; it++) {
			size_t n = 1 + rnd() % 5000, l = 1 + rnd() % n;

			fast_vs_naive(_metadata, n, l);
		}
		/* l > n also works (not used for PA, but defined) */
		fast_vs_naive(_metadata, 100, 1000);
		/* exact multiples of 64 and neighbours */
		fast_vs_naive(_metadata, 64, 64);
		fast_vs_naive(_metadata, 1024, 1024);
		fast_vs_naive(_metadata, 1025, 1023);
		fast_vs_naive(_metadata, 4096, 2048);
		fast_vs_naive(_metadata, 4095, 2049);
	}
	ASSERT_EQ(0, qkd_pa_set_impl(QKD_PA_AUTO));
	qkd_pa_set_fft_threshold(1000000);
	ASSERT_GE(tried, 1);
}

/*
 * Every implementation the CPU has against one naive product of @n x @l
 * (the naive product is most of the time at these sizes: computed once).
 */
static void all_fast_vs_one_naive(struct __test_metadata *_metadata, size_t n,
				  size_t l, bool with_generic)
{
	uint64_t *s = rnd_bits(n + l - 1), *x = rnd_bits(n);
	size_t w = qkd_bits_words(l), k;
	uint64_t *y1 = malloc(w * 8), *y2 = malloc(w * 8);

	memset(y1, 0xa5, w * 8);
	ASSERT_EQ(0, qkd_toeplitz_naive(s, x, n, y1, l));
	for (k = 0; k < sizeof(impls) / sizeof(impls[0]); k++) {
		if (select_impl(k) || (impls[k] == QKD_PA_GENERIC && !with_generic))
			continue;
		memset(y2, 0x5a, w * 8);
		ASSERT_EQ(0, qkd_toeplitz_fast(s, x, n, y2, l));
		ASSERT_EQ(0, memcmp(y1, y2, w * 8))
			TH_LOG("impl=%s fft=%d n=%zu l=%zu",
			       qkd_pa_impl_name(qkd_pa_get_impl()), k == 3, n, l);
	}
	free(s); free(x); free(y1); free(y2);
}

TEST(fast_matches_naive_large)
{
	/* deep recursion: many Karatsuba levels, odd tails */
	all_fast_vs_one_naive(_metadata, 100003, 61234, true);
	all_fast_vs_one_naive(_metadata, 300000, 200001, false);
	ASSERT_EQ(0, qkd_pa_set_impl(QKD_PA_AUTO));
	qkd_pa_set_fft_threshold(1000000);
}

TEST(fft_matches_karatsuba_large)
{
	/* the two fast algorithms, independent, agree at a size where the
	 * naive product is too slow to run in a unit test */
	size_t n = 2000003, l = 1234567, w = qkd_bits_words(l);
	uint64_t *s, *x, *y1, *y2;

	if (qkd_pa_set_impl(QKD_PA_VPCLMUL512))
		SKIP(return, "no VPCLMULQDQ: the FFT is not used");
	s = rnd_bits(n + l - 1);
	x = rnd_bits(n);
	y1 = malloc(w * 8);
	y2 = malloc(w * 8);
	qkd_pa_set_fft_threshold((size_t)-1);
	ASSERT_EQ(0, qkd_toeplitz_fast(s, x, n, y1, l));
	qkd_pa_set_fft_threshold(0);
	ASSERT_EQ(0, qkd_toeplitz_fast(s, x, n, y2, l));
	qkd_pa_set_fft_threshold(1000000);
	ASSERT_EQ(0, memcmp(y1, y2, w * 8));
	/* and against one bit of the definition, computed directly */
	{
		size_t i = 777777, j;
		unsigned int v = 0;

		for (j = 0; j < n; j++)
			v ^= qkd_bit_get(s, i - j + n - 1) & qkd_bit_get(x, j);
		ASSERT_EQ(v, qkd_bit_get(y1, i));
	}
	qkd_pa_release_workspace();
	ASSERT_EQ(0, qkd_pa_set_impl(QKD_PA_AUTO));
	free(s); free(x); free(y1); free(y2);
}

TEST(workspace_reuse_across_algorithms)
{
	/* FFT, Karatsuba, FFT again at the same size: the per-thread
	 * workspace (and the FFT twiddles cached in it) must not leak state
	 * from one call into the next */
	size_t k;

	if (qkd_pa_set_impl(QKD_PA_VPCLMUL512))
		SKIP(return, "no VPCLMULQDQ: the FFT is not used");
	for (k = 0; k < 3; k++) {
		qkd_pa_set_fft_threshold(k == 1 ? (size_t)-1 : 0);
		fast_vs_naive(_metadata, 20000, 12345);
		fast_vs_naive(_metadata, 3000, 2999);
	}
	qkd_pa_release_workspace();
	qkd_pa_set_fft_threshold(0);
	fast_vs_naive(_metadata, 20000, 12345);
	qkd_pa_set_fft_threshold(1000000);
	ASSERT_EQ(0, qkd_pa_set_impl(QKD_PA_AUTO));
}

TEST(linear_and_output_trimmed)
{
	/* T(x1 ^ x2) = T x1 ^ T x2; bits past l are zero */
	size_t n = 77777, l = 40001, w = qkd_bits_words(l), i;
	uint64_t *s = rnd_bits(n + l - 1), *x1 = rnd_bits(n), *x2 = rnd_bits(n);
	uint64_t *x3 = calloc(qkd_bits_words(n), 8);
	uint64_t *y1 = calloc(w, 8), *y2 = calloc(w, 8), *y3 = calloc(w, 8);

	for (i = 0; i < qkd_bits_words(n); i++)
		x3[i] = x1[i] ^ x2[i];
	ASSERT_EQ(0, qkd_toeplitz_fast(s, x1, n, y1, l));
	ASSERT_EQ(0, qkd_toeplitz_fast(s, x2, n, y2, l));
	ASSERT_EQ(0, qkd_toeplitz_fast(s, x3, n, y3, l));
	for (i = 0; i < w; i++)
		ASSERT_EQ(y3[i], y1[i] ^ y2[i]);
	ASSERT_EQ(0, y1[w - 1] >> (l % 64));
	/* a random input gives about half ones */
	ASSERT_GT(qkd_bits_popcount(y1, l), l / 2 - 600);
	ASSERT_LT(qkd_bits_popcount(y1, l), l / 2 + 600);
	free(s); free(x1); free(x2); free(x3); free(y1); free(y2); free(y3);
}

TEST(seed_random)
{
	uint64_t a[4] = { 0 }, b[4] = { 0 };

	ASSERT_EQ(0, qkd_pa_seed_random(a, 200));
	ASSERT_EQ(0, qkd_pa_seed_random(b, 200));
	ASSERT_NE(0, memcmp(a, b, sizeof(a)));
	ASSERT_EQ(0, a[3] >> 8);
}

TEST(output_length_is_the_bound)
{
	/* ℓ from Tomamichel et al. (see test_keyrate): n = 10^6 key bits,
	 * k = 10^5 sampled, Q = 2%, leak 150000, ε_sec 1e-10, ε_cor 1e-15:
	 * ℓ = floor(n (1 - h(Q + μ)) - leak - log2(2/(ε_sec² ε_cor)))
	 *   = 625517 */
	struct qkd_bb84_input in = {
		.n = 1000000, .k = 100000, .qber = 0.02, .leak_ec = 150000,
		.eps_sec = 1e-10, .eps_cor = 1e-15,
	};
	size_t n = in.n, l = qkd_keylen_bb84(&in, NULL);
	size_t w = qkd_bits_words(l);
	uint64_t *s = rnd_bits(n + l - 1), *x = rnd_bits(n);
	uint64_t *y = malloc((w + 1) * 8);

	ASSERT_EQ(625517, l);
	y[w] = 0x1234;	/* canary after the output */
	ASSERT_EQ(0, qkd_toeplitz_fast(s, x, n, y, l));
	ASSERT_EQ(0x1234, y[w]);
	ASSERT_EQ(0, y[w - 1] >> (l % 64));	/* exactly l bits */
	ASSERT_GT(qkd_bits_popcount(y, l), l / 2 - 4000);
	ASSERT_LT(qkd_bits_popcount(y, l), l / 2 + 4000);
	free(s); free(x); free(y);
}

TEST_HARNESS_MAIN
