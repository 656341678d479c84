// SPDX-License-Identifier: GPL-2.0-only
/* Parameter estimation (see qkd/estimate.h for the bound and its ε). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qkd/estimate.h"

double qkd_h2(double p)
{
	if (p <= 0 || p >= 1)
		return 0;
	return -p * log2(p) - (1 - p) * log2(1 - p);
}

double qkd_serfling_mu(size_t n, size_t k, double eps)
{
	double dn = (double)n, dk = (double)k;

	if (!n || !k || !(eps > 0))
		return INFINITY;
	return sqrt((dn + dk) * (dk + 1) * log(1 / eps) / (2 * dn * dk * dk));
}

/* Uniform integer in [0, m), m > 0 (Lemire's multiply-shift, unbiased). */
static uint64_t uniform_below(struct qkd_rng *r, uint64_t m)
{
	unsigned __int128 x = (unsigned __int128)qkd_rng_u64(r) * m;
	uint64_t lo = (uint64_t)x;

	if (lo < m) {
		uint64_t t = -m % m;

		while (lo < t) {
			x = (unsigned __int128)qkd_rng_u64(r) * m;
			lo = (uint64_t)x;
		}
	}
	return (uint64_t)(x >> 64);
}

int qkd_sample_mask(struct qkd_rng *r, size_t N, size_t k, uint64_t *mask)
{
	size_t j;

	if (k > N || !mask)
		return -EINVAL;
	memset(mask, 0, qkd_bits_words(N) * sizeof(uint64_t));
	/* Floyd's algorithm: exactly k distinct positions, uniform. When
	 * k > N/2 choose the complement instead. */
	if (k > N / 2) {
		uint64_t *m = mask;

		for (j = N - (N - k); j < N; j++) {
			size_t t = (size_t)uniform_below(r, j + 1);

			if (qkd_bit_get(m, t))
				qkd_bit_set(m, j, 1);
			else
				qkd_bit_set(m, t, 1);
		}
		for (j = 0; j < qkd_bits_words(N); j++)
			m[j] = ~m[j];
		qkd_bits_trim(m, N);
		return 0;
	}
	for (j = N - k; j < N; j++) {
		size_t t = (size_t)uniform_below(r, j + 1);

		if (qkd_bit_get(mask, t))
			qkd_bit_set(mask, j, 1);
		else
			qkd_bit_set(mask, t, 1);
	}
	return 0;
}

size_t qkd_bits_compress_unmasked(const uint64_t *in, const uint64_t *mask,
				  size_t N, uint64_t *out)
{
	size_t nw = qkd_bits_words(N), w, k = 0;

	memset(out, 0, nw * sizeof(uint64_t));
	for (w = 0; w < nw; w++) {
		uint64_t keep = ~mask[w];
		unsigned int cnt;
		uint64_t v;

		if (w == nw - 1 && N % 64)
			keep &= ((uint64_t)1 << (N % 64)) - 1;
#if defined(__BMI2__)
		v = _pext_u64(in[w], keep);
#else
		{
			uint64_t m = keep, src = in[w];
			unsigned int i = 0;

			v = 0;
			while (m) {
				unsigned int b = (unsigned int)__builtin_ctzll(m);

				v |= ((src >> b) & 1) << i++;
				m &= m - 1;
			}
		}
#endif
		cnt = (unsigned int)__builtin_popcountll(keep);
		out[k / 64] |= v << (k % 64);
		if (k % 64 && cnt > 64 - k % 64)
			out[k / 64 + 1] |= v >> (64 - k % 64);
		k += cnt;
	}
	return k;
}

int qkd_estimate_qber(const uint64_t *alice, const uint64_t *bob,
		      const uint64_t *mask, size_t N,
		      const struct qkd_estimate_params *p,
		      struct qkd_estimate *out)
{
	size_t nw = qkd_bits_words(N), w, k = 0, e = 0;

	if (!alice || !bob || !mask || !p || !out || !(p->eps_pe > 0) ||
	    !(p->eps_pe < 1))
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (w = 0; w < nw; w++) {
		uint64_t m = mask[w];

		if (w == nw - 1 && N % 64)
			m &= ((uint64_t)1 << (N % 64)) - 1;
		k += (size_t)__builtin_popcountll(m);
		e += (size_t)__builtin_popcountll((alice[w] ^ bob[w]) & m);
	}
	out->k = k;
	out->errors = e;
	out->n = N - k;
	if (!k) {
		out->abort = true;
		snprintf(out->reason, sizeof(out->reason),
			 "no sifted bits sampled for parameter estimation");
		return 0;
	}
	out->qber = (double)e / (double)k;
	out->mu = qkd_serfling_mu(out->n, k, p->eps_pe);
	out->phase_bound = out->qber + out->mu;
	if (out->qber > p->qber_abort) {
		out->abort = true;
		snprintf(out->reason, sizeof(out->reason),
			 "QBER %.2f%% (%zu errors in %zu sampled bits) above the abort threshold %.2f%%",
			 100 * out->qber, e, k, 100 * p->qber_abort);
	} else if (out->phase_bound >= 0.5) {
		out->abort = true;
		snprintf(out->reason, sizeof(out->reason),
			 "phase-error bound %.2f%% (QBER %.2f%% + %.2f%% for %zu sampled bits at eps %.1e) reaches 50%%: sample too small",
			 100 * out->phase_bound, 100 * out->qber,
			 100 * out->mu, k, p->eps_pe);
	}
	return 0;
}
