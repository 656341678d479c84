/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Privacy amplification by Toeplitz hashing.
 *
 * The n reconciled key bits x are compressed to l bits y = T x over GF(2),
 * where T is the l x n Toeplitz matrix defined by a seed s of n + l - 1
 * bits, chosen uniformly at random by one side and sent in the clear:
 *
 *	T[i][j] = s[i - j + n - 1]	(0 <= i < l, 0 <= j < n)
 *
 * so y[i] = XOR_j s[i - j + n - 1] x[j]. Toeplitz matrices form a
 * 2-universal family, which is what the leftover hash lemma needs.
 *
 * All arrays are packed bits (see qkd/bits.h); output bits past l in the
 * last output word are written as zero. Inputs are not modified. Key
 * material in internal buffers is zeroed with explicit_bzero() before it
 * is freed.
 */
#ifndef QKD_PRIVACY_AMP_H
#define QKD_PRIVACY_AMP_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"

/* Reference: the direct O(n l) matrix-vector product, one word-wise
 * AND/popcount per 64 matrix entries. 0, or -EINVAL. */
int qkd_toeplitz_naive(const uint64_t *seed, const uint64_t *in, size_t n,
		       uint64_t *out, size_t l);

/*
 * Fast: Karatsuba on the Toeplitz structure (three half-size Toeplitz
 * products per level, about n^1.58 work) down to a carry-less
 * multiplication kernel (PCLMULQDQ, or VPCLMULQDQ on 512-bit vectors when
 * the CPU has it); from 10^6 input bits with VPCLMULQDQ, an additive FFT over
 * GF(2^64). Bit-for-bit equal to qkd_toeplitz_naive().
 * 0, -EINVAL, or -ENOMEM.
 */
int qkd_toeplitz_fast(const uint64_t *seed, const uint64_t *in, size_t n,
		      uint64_t *out, size_t l);

/* Which multiplication kernel qkd_toeplitz_fast() uses. */
enum qkd_pa_impl {
	QKD_PA_AUTO = 0,	/* best the CPU supports */
	QKD_PA_GENERIC,		/* portable C, no carry-less multiply insn */
	QKD_PA_PCLMUL,		/* 128-bit PCLMULQDQ */
	QKD_PA_VPCLMUL512,	/* AVX-512 VPCLMULQDQ */
};

/* Select a kernel (for tests and benchmarks); -ENOTSUP if the CPU lacks it. */
int qkd_pa_set_impl(enum qkd_pa_impl impl);
enum qkd_pa_impl qkd_pa_get_impl(void);
const char *qkd_pa_impl_name(enum qkd_pa_impl impl);

/*
 * Inputs of at least this many bits use an additive FFT over GF(2^64)
 * instead of the Karatsuba recursion (only with the VPCLMUL512 kernel);
 * default 1e6, the measured crossover. For tests and tuning.
 */
void qkd_pa_set_fft_threshold(size_t nbits);
size_t qkd_pa_get_fft_threshold(void);

/* qkd_toeplitz_fast() keeps a per-thread workspace between calls (cleared
 * after every call); this frees the calling thread's now, its exit frees it
 * otherwise. */
void qkd_pa_release_workspace(void);

/* Fill a seed of @nbits bits from getrandom(); 0 or -errno. */
int qkd_pa_seed_random(uint64_t *seed, size_t nbits);

#endif /* QKD_PRIVACY_AMP_H */
