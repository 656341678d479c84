// SPDX-License-Identifier: GPL-2.0-only
/*
 * Privacy amplification: Toeplitz hashing, naive and fast.
 *
 * Matrix: T[i][j] = s[i - j + n - 1], y = T x (see qkd/privacy_amp.h).
 *
 * Fast algorithm. y_i = sum_j s[i - j + n - 1] x_j is the slice
 * [n - 1, n + l - 1) of the polynomial product s(z) x(z) over GF(2) (a
 * "middle product"). Computing only that slice on the Toeplitz structure
 * avoids the full (n + l) x n polynomial product: split an m x m Toeplitz
 * block T (seed of 2m - 1 bits) into halves,
 *
 *	[ y0 ]   [ C  L ] [ x0 ]      L = seed[0, m - 1), C = seed[m/2, ...),
 *	[ y1 ] = [ U  C ] [ x1 ]      U = seed[m, 2m - 1)  (half-size seeds)
 *
 *	p = C (x0 + x1),  y0 = p + (L + C) x1,  y1 = p + (U + C) x0
 *
 * which is three half-size Toeplitz products plus O(m) XORs (Karatsuba for
 * the transposed product; Hanrot, Quercia, Zimmermann, "The middle product
 * algorithm I", AAECC 14, 2004). The l x n matrix is cut into square blocks
 * of m = B 2^r words; the recursion stops at B words (B <= PA_BMAX), where a
 * kernel forms the middle product from 64 x 64 -> 128 bit carry-less
 * products (PCLMULQDQ, four at a time with 512-bit VPCLMULQDQ).
 *
 * From pa_fft_threshold input bits on (with VPCLMULQDQ), an additive FFT
 * over GF(2^64) computes the whole product instead (see below).
 *
 * Seed storage inside: a block seed is stored shifted up by one bit (bit k
 * of the stored words is seed bit k - 1), which makes the wanted slice of
 * the product start on a word boundary: for a B-word block, y word q is
 * word B + q of (stored seed) * x.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PA_X86 1
#endif

#include "qkd/privacy_amp.h"

#define PA_BMAX 16	/* largest base-case block, words */

/*
 * Per-thread workspace kept between calls: fresh pages for every call cost
 * page faults and kernel zeroing, about a third of the time at 10^7 bits.
 * Whatever a call used is cleared with explicit_bzero() before it returns;
 * qkd_pa_release_workspace() frees it.
 */
static _Thread_local uint64_t *ws_buf;
static _Thread_local size_t ws_words;
/* FFT twiddles (public) left in the workspace by the last call: where and
 * for which size */
static _Thread_local uint64_t *tw_at;
static _Thread_local unsigned int tw_k;

/*
 * A thread that ends without qkd_pa_release_workspace() (qkdd's sessions in
 * threads, the unit tests' peers) would leak its workspace: a key's
 * destructor frees it when the thread exits. Already cleared then.
 */
static pthread_key_t ws_key;
static pthread_once_t ws_key_once = PTHREAD_ONCE_INIT;
static int ws_key_err;

static void ws_key_init(void)
{
	ws_key_err = pthread_key_create(&ws_key, free);
}

static uint64_t *ws_get(size_t words)
{
	words = (words + 7) & ~(size_t)7;
	if (words > ws_words) {
		uint64_t *p;

		pthread_once(&ws_key_once, ws_key_init);
		if (ws_key_err)
			return NULL;
		p = aligned_alloc(64, words * sizeof(uint64_t));
		if (!p)
			return NULL;
		if (pthread_setspecific(ws_key, p)) {
			free(p);
			return NULL;
		}
		free(ws_buf);	/* cleared after its last use */
		ws_buf = p;
		ws_words = words;
		tw_at = NULL;
	}
	return ws_buf;
}

void qkd_pa_release_workspace(void)
{
	if (ws_buf) {
		explicit_bzero(ws_buf, ws_words * sizeof(uint64_t));
		free(ws_buf);
		pthread_setspecific(ws_key, NULL);
	}
	ws_buf = NULL;
	ws_words = 0;
	tw_at = NULL;
}
#define PA_PAD 16	/* readable slack words after every seed buffer */

/* ------------------------------------------------------------------ */
/* Reference                                                          */

int qkd_toeplitz_naive(const uint64_t *seed, const uint64_t *in, size_t n,
		       uint64_t *out, size_t l)
{
	size_t nw, sw, i, t, nbits;
	uint64_t *rx, *s;

	if (!seed || !in || !out || !n || !l || n > SIZE_MAX / 2 - l)
		return -EINVAL;
	nw = qkd_bits_words(n);
	nbits = n + l - 1;
	sw = qkd_bits_words(nbits);
	/* rx[k] = x[n - 1 - k]: then y_i = XOR_k s[i + k] rx[k]. */
	rx = qkd_bits_alloc(n, 1);
	s = qkd_bits_alloc(nbits, 2);
	if (!rx || !s) {
		qkd_bits_free(rx, n, 1);
		qkd_bits_free(s, nbits, 2);
		return -ENOMEM;
	}
	for (t = 0; t < n; t++)
		if (qkd_bit_get(in, t))
			qkd_bit_set(rx, n - 1 - t, 1);
	memcpy(s, seed, sw * sizeof(uint64_t));
	qkd_bits_trim(s, nbits);
	memset(out, 0, qkd_bits_words(l) * sizeof(uint64_t));
	for (i = 0; i < l; i++) {
		size_t q = i / 64;
		unsigned int r = i % 64;
		uint64_t acc = 0;

		for (t = 0; t < nw; t++) {
			uint64_t w = s[q + t] >> r;

			if (r)
				w |= s[q + t + 1] << (64 - r);
			acc ^= w & rx[t];
		}
		if (__builtin_parityll(acc))
			out[i / 64] |= (uint64_t)1 << (i % 64);
	}
	qkd_bits_free(rx, n, 1);
	qkd_bits_free(s, nbits, 2);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Base-case kernels: y[0..B) ^= middle words [B, 2B) of S[0..2B) * x[0..B).
 * Diagonal sums D_d = XOR_{b} clmul(S[d - b], x[b]) for d in [B-1, 2B-1];
 * y_q = lo(D_{B+q}) ^ hi(D_{B+q-1}). S must have PA_PAD readable words past
 * 2B (their values do not matter). */

typedef void (*pa_base_fn)(const uint64_t *S, const uint64_t *x, uint64_t *y,
			   size_t B);

static void clmul64_soft(uint64_t a, uint64_t b, uint64_t *lo, uint64_t *hi)
{
	/* 4-bit windows of b against a table of a's multiples. */
	uint64_t tab[16][2] = { { 0, 0 } };
	uint64_t l = 0, h = 0;
	int i;

	for (i = 1; i < 16; i++) {
		uint64_t tl = 0, th = 0;
		int k;

		for (k = 0; k < 4; k++)
			if (i & (1 << k)) {
				tl ^= a << k;
				th ^= k ? a >> (64 - k) : 0;
			}
		tab[i][0] = tl;
		tab[i][1] = th;
	}
	for (i = 60; i >= 0; i -= 4) {
		unsigned int nib = (unsigned int)(b >> i) & 15;

		h = (h << 4) | (l >> 60);
		l <<= 4;
		l ^= tab[nib][0];
		h ^= tab[nib][1];
	}
	*lo = l;
	*hi = h;
}

static void base_generic(const uint64_t *S, const uint64_t *x, uint64_t *y,
			 size_t B)
{
	uint64_t dl[PA_BMAX + 1], dh[PA_BMAX + 1];
	size_t k, b, q;

	for (k = 0; k <= B; k++) {
		size_t d = B - 1 + k;
		uint64_t al = 0, ah = 0;

		for (b = 0; b < B; b++) {
			uint64_t pl, ph;

			clmul64_soft(S[d - b], x[b], &pl, &ph);
			al ^= pl;
			ah ^= ph;
		}
		dl[k] = al;
		dh[k] = ah;
	}
	for (q = 0; q < B; q++)
		y[q] ^= dl[q + 1] ^ dh[q];
}

#ifdef PA_X86
__attribute__((target("pclmul,sse4.1")))
static void base_pclmul(const uint64_t *S, const uint64_t *x, uint64_t *y,
			size_t B)
{
	uint64_t dl[PA_BMAX + 4], dh[PA_BMAX + 4];
	size_t k, b, q;

	/* four diagonals per pass: two independent accumulator chains */
	for (k = 0; k <= B; k += 4) {
		size_t d0 = B - 1 + k;
		__m128i a0 = _mm_setzero_si128(), a1 = a0, a2 = a0, a3 = a0;

		for (b = 0; b < B; b++) {
			__m128i v0 = _mm_loadu_si128((const void *)(S + d0 - b));
			__m128i v1 = _mm_loadu_si128((const void *)(S + d0 + 2 - b));
			__m128i xb = _mm_set1_epi64x((long long)x[b]);

			a0 = _mm_xor_si128(a0, _mm_clmulepi64_si128(v0, xb, 0x00));
			a1 = _mm_xor_si128(a1, _mm_clmulepi64_si128(v0, xb, 0x01));
			a2 = _mm_xor_si128(a2, _mm_clmulepi64_si128(v1, xb, 0x00));
			a3 = _mm_xor_si128(a3, _mm_clmulepi64_si128(v1, xb, 0x01));
		}
		dl[k] = (uint64_t)_mm_cvtsi128_si64(a0);
		dh[k] = (uint64_t)_mm_extract_epi64(a0, 1);
		dl[k + 1] = (uint64_t)_mm_cvtsi128_si64(a1);
		dh[k + 1] = (uint64_t)_mm_extract_epi64(a1, 1);
		dl[k + 2] = (uint64_t)_mm_cvtsi128_si64(a2);
		dh[k + 2] = (uint64_t)_mm_extract_epi64(a2, 1);
		dl[k + 3] = (uint64_t)_mm_cvtsi128_si64(a3);
		dh[k + 3] = (uint64_t)_mm_extract_epi64(a3, 1);
	}
	for (q = 0; q < B; q++)
		y[q] ^= dl[q + 1] ^ dh[q];
}

__attribute__((target("avx512f,vpclmulqdq,avx2,pclmul")))
static void base_vpclmul512(const uint64_t *S, const uint64_t *x, uint64_t *y,
			    size_t B)
{
	uint64_t e[8] __attribute__((aligned(64)));
	uint64_t o[8] __attribute__((aligned(64)));
	uint64_t dl[PA_BMAX + 8], dh[PA_BMAX + 8];
	size_t k = 0, b, q, t;

	/* eight diagonals per pass: lanes of ev hold D_{d0}, D_{d0+2}, ...,
	 * lanes of od hold D_{d0+1}, D_{d0+3}, ... */
	while (k + 4 < B + 1) {
		size_t d0 = B - 1 + k;
		__m512i ev = _mm512_setzero_si512(), od = ev;

		for (b = 0; b < B; b++) {
			__m512i v = _mm512_loadu_si512((const void *)(S + d0 - b));
			__m512i xb = _mm512_set1_epi64((long long)x[b]);

			ev = _mm512_xor_si512(ev, _mm512_clmulepi64_epi128(v, xb, 0x00));
			od = _mm512_xor_si512(od, _mm512_clmulepi64_epi128(v, xb, 0x01));
		}
		_mm512_store_si512((void *)e, ev);
		_mm512_store_si512((void *)o, od);
		for (t = 0; t < 4; t++) {
			dl[k + 2 * t] = e[2 * t];
			dh[k + 2 * t] = e[2 * t + 1];
			dl[k + 2 * t + 1] = o[2 * t];
			dh[k + 2 * t + 1] = o[2 * t + 1];
		}
		k += 8;
	}
	if (k <= B) {
		size_t d0 = B - 1 + k;
		__m256i ev = _mm256_setzero_si256(), od = ev;

		for (b = 0; b < B; b++) {
			__m256i v = _mm256_loadu_si256((const void *)(S + d0 - b));
			__m256i xb = _mm256_set1_epi64x((long long)x[b]);

			ev = _mm256_xor_si256(ev, _mm256_clmulepi64_epi128(v, xb, 0x00));
			od = _mm256_xor_si256(od, _mm256_clmulepi64_epi128(v, xb, 0x01));
		}
		_mm256_store_si256((void *)e, ev);
		_mm256_store_si256((void *)o, od);
		for (t = 0; t < 2; t++) {
			dl[k + 2 * t] = e[2 * t];
			dh[k + 2 * t] = e[2 * t + 1];
			dl[k + 2 * t + 1] = o[2 * t];
			dh[k + 2 * t + 1] = o[2 * t + 1];
		}
	}
	for (q = 0; q < B; q++)
		y[q] ^= dl[q + 1] ^ dh[q];
}
#endif /* PA_X86 */

/* ------------------------------------------------------------------ */
/* Dispatch                                                           */

static enum qkd_pa_impl pa_impl; /* 0 = not chosen yet */

static int impl_supported(enum qkd_pa_impl impl)
{
	switch (impl) {
	case QKD_PA_GENERIC:
		return 1;
#ifdef PA_X86
	case QKD_PA_PCLMUL:
		__builtin_cpu_init();
		return __builtin_cpu_supports("pclmul") &&
		       __builtin_cpu_supports("sse4.1");
	case QKD_PA_VPCLMUL512:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx512f") &&
		       __builtin_cpu_supports("vpclmulqdq") &&
		       __builtin_cpu_supports("avx2") &&
		       __builtin_cpu_supports("pclmul");
#endif
	default:
		return 0;
	}
}

int qkd_pa_set_impl(enum qkd_pa_impl impl)
{
	if (impl == QKD_PA_AUTO) {
		if (impl_supported(QKD_PA_VPCLMUL512))
			impl = QKD_PA_VPCLMUL512;
		else if (impl_supported(QKD_PA_PCLMUL))
			impl = QKD_PA_PCLMUL;
		else
			impl = QKD_PA_GENERIC;
	} else if (!impl_supported(impl)) {
		return -ENOTSUP;
	}
	pa_impl = impl;
	return 0;
}

enum qkd_pa_impl qkd_pa_get_impl(void)
{
	if (pa_impl == QKD_PA_AUTO)
		qkd_pa_set_impl(QKD_PA_AUTO);
	return pa_impl;
}

const char *qkd_pa_impl_name(enum qkd_pa_impl impl)
{
	switch (impl) {
	case QKD_PA_AUTO: return "auto";
	case QKD_PA_GENERIC: return "generic";
	case QKD_PA_PCLMUL: return "pclmul";
	case QKD_PA_VPCLMUL512: return "vpclmul512";
	}
	return "?";
}

static pa_base_fn pa_base(void)
{
	switch (qkd_pa_get_impl()) {
#ifdef PA_X86
	case QKD_PA_PCLMUL:
		return base_pclmul;
	case QKD_PA_VPCLMUL512:
		return base_vpclmul512;
#endif
	default:
		return base_generic;
	}
}

/* ------------------------------------------------------------------ */
/* Karatsuba on Toeplitz blocks                                       */

static void xor3(uint64_t *restrict d, const uint64_t *a, const uint64_t *b,
		 size_t w)
{
	size_t i;

	for (i = 0; i < w; i++)
		d[i] = a[i] ^ b[i];
}

static void xor_into(uint64_t *restrict d, const uint64_t *restrict a, size_t w)
{
	size_t i;

	for (i = 0; i < w; i++)
		d[i] ^= a[i];
}

struct pa_ctx {
	pa_base_fn base;
	size_t B;
};

/*
 * y[0..w) ^= T x[0..w), T the (64 w)-bit square Toeplitz block whose seed
 * is stored shifted by one bit in S[0..2w) (+ PA_PAD readable words).
 * scratch: 4 w + PA_PAD words.
 */
static void toep_rec(const struct pa_ctx *c, const uint64_t *S,
		     const uint64_t *x, uint64_t *y, size_t w, uint64_t *scratch)
{
	size_t h = w / 2;
	uint64_t *tx = scratch, *p = scratch + h, *sc = scratch + 2 * h;
	uint64_t *next = sc + w;

	if (w == c->B) {
		c->base(S, x, y, w);
		return;
	}
	xor3(tx, x, x + h, h);
	memset(p, 0, h * sizeof(*p));
	toep_rec(c, S + h, tx, p, h, next);		/* p = C (x0 + x1) */
	xor_into(y, p, h);
	xor_into(y + h, p, h);
	xor3(sc, S, S + h, w);				/* L + C */
	toep_rec(c, sc, x + h, y, h, next);
	xor3(sc, S + w, S + h, w);			/* U + C */
	toep_rec(c, sc, x, y + h, h, next);
}

/* Choose the block size m = B 2^r words minimising the estimated work. */
static void pa_plan(size_t nw, size_t lw, size_t *m_out, size_t *b_out)
{
	size_t minw = nw < lw ? nw : lw, k;
	double best = 0;

	for (k = 1; k <= 8 && k <= minw; k++) {
		size_t target = (minw + k - 1) / k, B = target, r = 0, m, nb, lb;
		double cost = 1;

		while (B > PA_BMAX) {
			r++;
			B = (target + ((size_t)1 << r) - 1) >> r;
		}
		m = B << r;
		nb = (nw + m - 1) / m;
		lb = (lw + m - 1) / m;
		cost = (double)(B * B + 4 * B);
		while (r--)
			cost *= 3;
		cost *= (double)(nb * lb);
		if (k == 1 || cost < best) {
			best = cost;
			*m_out = m;
			*b_out = B;
		}
	}
}

/* ------------------------------------------------------------------ */
/* Additive FFT over GF(2^64) (large inputs, AVX-512 VPCLMULQDQ)      */
/*
 * For large n the Karatsuba recursion (n^1.58) loses to an FFT. GF(2)[x]
 * has no useful multiplicative FFT, so the product s(z) x(z) is computed
 * with the additive FFT of Gao and Mateer ("Additive fast Fourier
 * transforms over finite fields", IEEE Trans. Inf. Theory 56, 2010) over
 * GF(2^64) = GF(2)[t]/(t^64 + t^4 + t^3 + t + 1) with a Cantor basis
 * (β0 = 1, β_i^2 + β_i = β_{i-1}):
 *
 *  - bits are cut into 32-bit chunks, each chunk a field element: the
 *    product of two chunks has degree < 63, so no reduction modulo the
 *    field polynomial happens and the coefficients of the product in
 *    GF(2^64)[X] are exactly the GF(2)[t] sums of chunk products;
 *  - a polynomial of degree < 2^k is evaluated at the 2^k points of
 *    span(β0..β_{k-1}): Taylor expansion at X^2 + X (XORs only),
 *    f = f0(X^2+X) + X f1(X^2+X), two half-size evaluations, and one field
 *    multiplication per pair of points (f(γ) = f0 + γ f1, f(γ+1) = f(γ) + f1);
 *  - points are kept in bit-reversed order (the same for all transforms,
 *    so the pointwise product is unaffected);
 *  - only the needed slice of the product is computed, as a middle product
 *    with transposed transforms (see toeplitz_fft()), so 2^k must hold
 *    about (n + l)/32 chunks, not (2n + l)/32.
 */

#define GF_POLY 0x1bULL		/* t^4 + t^3 + t + 1 */

static uint64_t gf_beta[64];
static pthread_once_t gf_once = PTHREAD_ONCE_INIT;

static uint64_t gf_mul_soft(uint64_t a, uint64_t b)
{
	uint64_t lo, hi, l2, h2;

	clmul64_soft(a, b, &lo, &hi);
	clmul64_soft(hi, GF_POLY, &l2, &h2);
	lo ^= l2;
	clmul64_soft(h2, GF_POLY, &l2, &h2);
	return lo ^ l2;
}

static uint64_t gf_sqr_plus(uint64_t x)
{
	return gf_mul_soft(x, x) ^ x;
}

/*
 * Solve x^2 + x = c, a GF(2)-linear equation in the 64 bits of x, by
 * Gauss-Jordan elimination (one of the two solutions, free bits 0).
 */
static uint64_t gf_solve_sqr_plus(uint64_t c)
{
	uint64_t col[64], rows[64], x = 0;
	unsigned int rbit[64];
	int piv[64], r = 0, i, j;

	for (i = 0; i < 64; i++)	/* column i: image of t^i */
		col[i] = gf_sqr_plus((uint64_t)1 << i);
	for (j = 0; j < 64; j++) {	/* row j: bit j of the image */
		rows[j] = 0;
		for (i = 0; i < 64; i++)
			rows[j] |= ((col[i] >> j) & 1) << i;
		rbit[j] = (unsigned int)(c >> j) & 1;
	}
	for (i = 0; i < 64 && r < 64; i++) {
		uint64_t tr;
		unsigned int tb;
		int p = -1;

		for (j = r; j < 64 && p < 0; j++)
			if ((rows[j] >> i) & 1)
				p = j;
		if (p < 0)
			continue;
		tr = rows[p];
		tb = rbit[p];
		rows[p] = rows[r];
		rbit[p] = rbit[r];
		rows[r] = tr;
		rbit[r] = tb;
		for (j = 0; j < 64; j++)
			if (j != r && ((rows[j] >> i) & 1)) {
				rows[j] ^= rows[r];
				rbit[j] ^= rbit[r];
			}
		piv[r++] = i;
	}
	for (j = 0; j < r; j++)
		if (rbit[j])
			x |= (uint64_t)1 << piv[j];
	return x;
}

static void gf_init(void)
{
	int i;

	gf_beta[0] = 1;
	for (i = 1; i < 64; i++)
		gf_beta[i] = gf_solve_sqr_plus(gf_beta[i - 1]);
}

#ifdef PA_X86
#define FFT_TARGET __attribute__((target("avx512f,vpclmulqdq,pclmul,sse4.1")))

FFT_TARGET static inline uint64_t gf_mul1(uint64_t a, uint64_t b)
{
	__m128i k = _mm_cvtsi64_si128((long long)GF_POLY);
	__m128i p = _mm_clmulepi64_si128(_mm_cvtsi64_si128((long long)a),
					 _mm_cvtsi64_si128((long long)b), 0x00);
	__m128i t = _mm_clmulepi64_si128(p, k, 0x01);	/* hi * poly */
	__m128i u = _mm_clmulepi64_si128(t, k, 0x01);	/* overflow * poly */

	return (uint64_t)_mm_cvtsi128_si64(_mm_xor_si128(_mm_xor_si128(p, t), u));
}

/* eight products a[i] * b[i] */
FFT_TARGET static inline __m512i gf_mul8(__m512i a, __m512i b)
{
	const __m512i k = _mm512_set1_epi64((long long)GF_POLY);
	__m512i p0 = _mm512_clmulepi64_epi128(a, b, 0x00);
	__m512i p1 = _mm512_clmulepi64_epi128(a, b, 0x11);
	__m512i lo = _mm512_unpacklo_epi64(p0, p1);
	__m512i hi = _mm512_unpackhi_epi64(p0, p1);
	__m512i t0 = _mm512_clmulepi64_epi128(hi, k, 0x00);
	__m512i t1 = _mm512_clmulepi64_epi128(hi, k, 0x01);
	__m512i h2, u0, u1;

	lo = _mm512_xor_si512(lo, _mm512_unpacklo_epi64(t0, t1));
	h2 = _mm512_unpackhi_epi64(t0, t1);
	u0 = _mm512_clmulepi64_epi128(h2, k, 0x00);
	u1 = _mm512_clmulepi64_epi128(h2, k, 0x01);
	return _mm512_xor_si512(lo, _mm512_unpacklo_epi64(u0, u1));
}

FFT_TARGET static void xor_blk(uint64_t *restrict d, const uint64_t *restrict s,
			       size_t t)
{
	size_t i = 0;

	for (; i + 8 <= t; i += 8)
		_mm512_storeu_si512((void *)(d + i),
			_mm512_xor_si512(_mm512_loadu_si512((const void *)(d + i)),
					 _mm512_loadu_si512((const void *)(s + i))));
	for (; i < t; i++)
		d[i] ^= s[i];
}

/*
 * f = sum_i (g[2i] + g[2i+1] X) (X^2 + X)^i, in place; m a power of 2.
 * For a block of 4t coefficients F0..F3 (t each), (X^2+X)^t = X^2t + X^t
 * gives f = [F0, F1+F2+F3] + (X^2+X)^t [F2+F3, F3]; then each half is
 * expanded the same way. Done level by level (blocks are independent),
 * small blocks without calls.
 */
#define TAYLOR_BLOCK 4096	/* words: finish smaller levels block by block,
				 * in cache, instead of sweeping the array */

FFT_TARGET static void taylor(uint64_t *f, size_t m)
{
	size_t bs, o;

	if (m > TAYLOR_BLOCK) {
		for (bs = m; bs > TAYLOR_BLOCK; bs /= 2) {
			size_t t = bs / 4;

			for (o = 0; o < m; o += bs) {
				xor_blk(f + o + 2 * t, f + o + 3 * t, t);
				xor_blk(f + o + t, f + o + 2 * t, t);
			}
		}
		for (o = 0; o < m; o += TAYLOR_BLOCK)
			taylor(f + o, TAYLOR_BLOCK);
		return;
	}
	for (bs = m; bs >= 32; bs /= 2) {
		size_t t = bs / 4;

		for (o = 0; o < m; o += bs) {
			xor_blk(f + o + 2 * t, f + o + 3 * t, t);
			xor_blk(f + o + t, f + o + 2 * t, t);
		}
	}
	if (m >= 16)
		for (o = 0; o < m; o += 16) {
			uint64_t *b = f + o;
			int i;

			for (i = 0; i < 4; i++)
				b[8 + i] ^= b[12 + i];
			for (i = 0; i < 4; i++)
				b[4 + i] ^= b[8 + i];
		}
	if (m >= 8)
		for (o = 0; o < m; o += 8) {
			uint64_t *b = f + o;

			b[4] ^= b[6];
			b[5] ^= b[7];
			b[2] ^= b[4];
			b[3] ^= b[5];
		}
	if (m >= 4)
		for (o = 0; o < m; o += 4) {
			f[o + 2] ^= f[o + 3];
			f[o + 1] ^= f[o + 2];
		}
}

/* even-indexed coefficients of f to the first half of tmp, odd to the
 * second */
FFT_TARGET static void deinterleave(uint64_t *f, uint64_t *tmp, size_t m)
{
	size_t h = m / 2, j = 0;

	if (m >= 16) {
		const __m512i ie = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
		const __m512i io = _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15);

		for (; j + 8 <= h; j += 8) {
			__m512i a = _mm512_loadu_si512((const void *)(f + 2 * j));
			__m512i b = _mm512_loadu_si512((const void *)(f + 2 * j + 8));

			_mm512_storeu_si512((void *)(tmp + j),
					    _mm512_permutex2var_epi64(a, ie, b));
			_mm512_storeu_si512((void *)(tmp + h + j),
					    _mm512_permutex2var_epi64(a, io, b));
		}
	}
	for (; j < h; j++) {
		tmp[j] = f[2 * j];
		tmp[h + j] = f[2 * j + 1];
	}
}

/* f[2j] = tmp[j], f[2j + 1] = tmp[h + j] */
FFT_TARGET static void interleave(uint64_t *f, const uint64_t *tmp, size_t m)
{
	size_t h = m / 2, j = 0;

	if (m >= 16) {
		const __m512i i0 = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
		const __m512i i1 = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);

		for (; j + 8 <= h; j += 8) {
			__m512i a = _mm512_loadu_si512((const void *)(tmp + j));
			__m512i b = _mm512_loadu_si512((const void *)(tmp + h + j));

			_mm512_storeu_si512((void *)(f + 2 * j),
					    _mm512_permutex2var_epi64(a, i0, b));
			_mm512_storeu_si512((void *)(f + 2 * j + 8),
					    _mm512_permutex2var_epi64(a, i1, b));
		}
	}
	for (; j < h; j++) {
		f[2 * j] = tmp[j];
		f[2 * j + 1] = tmp[h + j];
	}
}

/* Twiddles of level k (size 2^k): tw[k][j] = sum_i bit_i(j) β_{k-1-i},
 * j < 2^(k-1), stored at tw + 2^(k-1). */
static void fft_twiddles(uint64_t *tw, unsigned int K)
{
	unsigned int k;

	for (k = 1; k <= K; k++) {
		size_t h = (size_t)1 << (k - 1), j;
		uint64_t *g = tw + h;

		g[0] = 0;
		for (j = 1; j < h; j++)
			g[j] = g[j & (j - 1)] ^
			       gf_beta[k - 1 - (unsigned int)__builtin_ctzll(j)];
	}
}

/*
 * Evaluate f (2^k coefficients, those from index len on are zero) at the
 * 2^k points, in place. The zero tail is skipped in the Taylor expansions:
 * a block whose upper half is zero keeps it zero.
 */
FFT_TARGET static void fft_fwd(uint64_t *f, unsigned int k, uint64_t *tmp,
			       const uint64_t *tw, size_t len)
{
	size_t m = (size_t)1 << k, h = m / 2, j = 0, ext = 1;
	const uint64_t *g = tw + h;
	uint64_t *lo = f, *hi = f + h;

	if (k == 0)
		return;
	if (k == 1) {
		f[1] ^= f[0];
		return;
	}
	while (ext < len)
		ext *= 2;
	if (ext < 2)
		ext = 2;
	/* halves go to tmp, transformed there with f as their scratch, and
	 * the butterflies bring the result back: no copies */
	taylor(f, ext);
	deinterleave(f, tmp, ext);
	if (ext < m) {
		/* deinterleave() put the halves at tmp, tmp + ext/2 */
		memmove(tmp + h, tmp + ext / 2, ext / 2 * sizeof(*tmp));
		memset(tmp + ext / 2, 0, (h - ext / 2) * sizeof(*tmp));
		memset(tmp + h + ext / 2, 0, (h - ext / 2) * sizeof(*tmp));
	}
	fft_fwd(tmp, k - 1, lo, tw, ext / 2);
	fft_fwd(tmp + h, k - 1, hi, tw, ext / 2);
	for (; j + 8 <= h; j += 8) {
		__m512i a = _mm512_loadu_si512((const void *)(tmp + j));
		__m512i b = _mm512_loadu_si512((const void *)(tmp + h + j));
		__m512i gg = _mm512_loadu_si512((const void *)(g + j));

		a = _mm512_xor_si512(a, gf_mul8(gg, b));
		_mm512_storeu_si512((void *)(lo + j), a);
		_mm512_storeu_si512((void *)(hi + j), _mm512_xor_si512(a, b));
	}
	for (; j < h; j++) {
		lo[j] = tmp[j] ^ gf_mul1(g[j], tmp[h + j]);
		hi[j] = lo[j] ^ tmp[h + j];
	}
}

FFT_TARGET static void pointwise(uint64_t *a, const uint64_t *b, size_t m)
{
	size_t j = 0;

	for (; j + 8 <= m; j += 8)
		_mm512_storeu_si512((void *)(a + j),
			gf_mul8(_mm512_loadu_si512((const void *)(a + j)),
				_mm512_loadu_si512((const void *)(b + j))));
	for (; j < m; j++)
		a[j] = gf_mul1(a[j], b[j]);
}

/*
 * Transposed transforms (transposition principle). The slice of a product
 * that the Toeplitz hash needs is a middle product, the transpose of a
 * multiplication: with M = IFFT D FFT (multiplication by a fixed
 * polynomial, D the diagonal of its transform), M^T = FFT^T D IFFT^T
 * computes a middle product with transforms the size of the seed instead
 * of the size of the full product (half, for l = n/2). Each step below is
 * the transpose of the matching step of fft_fwd()/fft_inv(), in reverse
 * order: "d ^= s" becomes "s ^= d", a permutation becomes its inverse, a
 * butterfly matrix its transpose.
 */

/* transpose of taylor(): levels small to large, F2 ^= F1 then F3 ^= F2 */
FFT_TARGET static void taylor_t(uint64_t *f, size_t m)
{
	size_t bs, o;

	if (m > TAYLOR_BLOCK) {
		for (o = 0; o < m; o += TAYLOR_BLOCK)
			taylor_t(f + o, TAYLOR_BLOCK);
		for (bs = 2 * TAYLOR_BLOCK; bs <= m; bs *= 2) {
			size_t t = bs / 4;

			for (o = 0; o < m; o += bs) {
				xor_blk(f + o + 2 * t, f + o + t, t);
				xor_blk(f + o + 3 * t, f + o + 2 * t, t);
			}
		}
		return;
	}
	if (m >= 4)
		for (o = 0; o < m; o += 4) {
			f[o + 2] ^= f[o + 1];
			f[o + 3] ^= f[o + 2];
		}
	if (m >= 8)
		for (o = 0; o < m; o += 8) {
			uint64_t *b = f + o;

			b[4] ^= b[2];
			b[5] ^= b[3];
			b[6] ^= b[4];
			b[7] ^= b[5];
		}
	if (m >= 16)
		for (o = 0; o < m; o += 16) {
			uint64_t *b = f + o;
			int i;

			for (i = 0; i < 4; i++)
				b[8 + i] ^= b[4 + i];
			for (i = 0; i < 4; i++)
				b[12 + i] ^= b[8 + i];
		}
	for (bs = 32; bs <= m; bs *= 2) {
		size_t t = bs / 4;

		for (o = 0; o < m; o += bs) {
			xor_blk(f + o + 2 * t, f + o + t, t);
			xor_blk(f + o + 3 * t, f + o + 2 * t, t);
		}
	}
}

/*
 * The inverse transform (not needed as such) undoes fft_fwd(): inverse
 * butterflies hi' = lo + hi, lo' = lo + g hi' ([[1 + g, g], [1, 1]]), the
 * two half inverses, interleave, and the inverse Taylor expansion (levels
 * small to large, F1 ^= F2 then F2 ^= F3). Below are their transposes.
 *
 * transpose of the inverse Taylor expansion: levels large to small,
 * F3 ^= F2 then F2 ^= F1.
 */
FFT_TARGET static void itaylor_t(uint64_t *f, size_t m)
{
	size_t bs, o;

	if (m > TAYLOR_BLOCK) {
		for (bs = m; bs > TAYLOR_BLOCK; bs /= 2) {
			size_t t = bs / 4;

			for (o = 0; o < m; o += bs) {
				xor_blk(f + o + 3 * t, f + o + 2 * t, t);
				xor_blk(f + o + 2 * t, f + o + t, t);
			}
		}
		for (o = 0; o < m; o += TAYLOR_BLOCK)
			itaylor_t(f + o, TAYLOR_BLOCK);
		return;
	}
	for (bs = m; bs >= 32; bs /= 2) {
		size_t t = bs / 4;

		for (o = 0; o < m; o += bs) {
			xor_blk(f + o + 3 * t, f + o + 2 * t, t);
			xor_blk(f + o + 2 * t, f + o + t, t);
		}
	}
	if (m >= 16)
		for (o = 0; o < m; o += 16) {
			uint64_t *b = f + o;
			int i;

			for (i = 0; i < 4; i++)
				b[12 + i] ^= b[8 + i];
			for (i = 0; i < 4; i++)
				b[8 + i] ^= b[4 + i];
		}
	if (m >= 8)
		for (o = 0; o < m; o += 8) {
			uint64_t *b = f + o;

			b[6] ^= b[4];
			b[7] ^= b[5];
			b[4] ^= b[2];
			b[5] ^= b[3];
		}
	if (m >= 4)
		for (o = 0; o < m; o += 4) {
			f[o + 3] ^= f[o + 2];
			f[o + 2] ^= f[o + 1];
		}
}

/*
 * Transpose of fft_fwd(): outputs from index len on are not wanted (the
 * transpose of a zero input tail), so the interleave and the transposed
 * Taylor expansion stop at the power of two ext >= len.
 */
FFT_TARGET static void fft_fwd_t(uint64_t *f, unsigned int k, uint64_t *tmp,
				 const uint64_t *tw, size_t len)
{
	size_t m = (size_t)1 << k, h = m / 2, j = 0, ext = 2;
	const uint64_t *g = tw + h;
	uint64_t *lo = f, *hi = f + h;

	if (k == 0)
		return;
	if (k == 1) {
		f[0] ^= f[1];
		return;
	}
	while (ext < len)
		ext *= 2;
	/* butterfly [[1, g], [1, 1 + g]] transposed: a = lo + hi,
	 * b = hi + g a */
	for (; j + 8 <= h; j += 8) {
		__m512i a = _mm512_loadu_si512((const void *)(lo + j));
		__m512i b = _mm512_loadu_si512((const void *)(hi + j));
		__m512i gg = _mm512_loadu_si512((const void *)(g + j));

		a = _mm512_xor_si512(a, b);
		_mm512_storeu_si512((void *)(tmp + j), a);
		_mm512_storeu_si512((void *)(tmp + h + j),
				    _mm512_xor_si512(b, gf_mul8(gg, a)));
	}
	for (; j < h; j++) {
		tmp[j] = lo[j] ^ hi[j];
		tmp[h + j] = hi[j] ^ gf_mul1(g[j], tmp[j]);
	}
	fft_fwd_t(tmp, k - 1, lo, tw, ext / 2);
	fft_fwd_t(tmp + h, k - 1, hi, tw, ext / 2);
	if (ext < m)	/* interleave() takes the halves at tmp, tmp + ext/2 */
		memmove(tmp + ext / 2, tmp + h, ext / 2 * sizeof(*tmp));
	interleave(f, tmp, ext);
	taylor_t(f, ext);
}

/* transpose of the inverse transform */
FFT_TARGET static void fft_inv_t(uint64_t *f, unsigned int k, uint64_t *tmp,
				 const uint64_t *tw)
{
	size_t m = (size_t)1 << k, h = m / 2, j = 0;
	const uint64_t *g = tw + h;
	uint64_t *lo = f, *hi = f + h;

	if (k == 0)
		return;
	if (k == 1) {
		f[0] ^= f[1];
		return;
	}
	itaylor_t(f, m);
	deinterleave(f, tmp, m);
	fft_inv_t(tmp, k - 1, lo, tw);
	fft_inv_t(tmp + h, k - 1, hi, tw);
	/* inverse butterfly [[1 + g, g], [1, 1]] transposed:
	 * hi' = hi + g lo, lo' = lo + hi' */
	for (; j + 8 <= h; j += 8) {
		__m512i a = _mm512_loadu_si512((const void *)(tmp + j));
		__m512i b = _mm512_loadu_si512((const void *)(tmp + h + j));
		__m512i gg = _mm512_loadu_si512((const void *)(g + j));

		b = _mm512_xor_si512(b, gf_mul8(gg, a));
		_mm512_storeu_si512((void *)(hi + j), b);
		_mm512_storeu_si512((void *)(lo + j), _mm512_xor_si512(a, b));
	}
	for (; j < h; j++) {
		hi[j] = tmp[h + j] ^ gf_mul1(g[j], tmp[j]);
		lo[j] = tmp[j] ^ hi[j];
	}
}

/* dst[k] = 32-bit chunk (start + k) of the first nbits bits of v, 0 outside
 * [0, nbits), for k < m */
static void chunk32_at(uint64_t *dst, const uint64_t *v, size_t nbits,
		       long long start, size_t m)
{
	long long nc = (long long)((nbits + 31) / 32);
	size_t k = 0;

	/* before the array */
	for (; k < m && start + (long long)k < 0; k++)
		dst[k] = 0;
	/* whole chunks */
	for (; k < m && start + (long long)k < nc - 1; k++) {
		long long i = start + (long long)k;
		uint64_t w = v[i / 2];

		dst[k] = (i & 1) ? w >> 32 : w & 0xffffffffu;
	}
	/* last chunk, masked */
	if (k < m && start + (long long)k == nc - 1) {
		long long i = nc - 1;
		uint64_t w = v[i / 2];

		dst[k] = (i & 1) ? w >> 32 : w & 0xffffffffu;
		if (nbits % 32)
			dst[k] &= ((uint64_t)1 << (nbits % 32)) - 1;
		k++;
	}
	/* after it */
	if (k < m)
		memset(dst + k, 0, (m - k) * sizeof(*dst));
}

/*
 * y = bits [n - 1, n + l - 1) of s x, from the 32-bit chunk products
 * C_w = sum_u S_{w-u} X_u (63 bits each, at bit 32 w). Only the window
 * W0 <= w < W1 of chunks that reach those bits is computed, as the middle
 * product C_{W0+i} = sum_j c_{i+j} Xr_j with c_k = S_{W0-cb+1+k} and Xr the
 * chunks of x in reverse order: M^T c for M = multiplication by Xr.
 */
static int toeplitz_fft(const uint64_t *seed, const uint64_t *in, size_t n,
			uint64_t *out, size_t l)
{
	size_t N = n + l - 1, cb = (n + 31) / 32, m = 0, L = 0, pw, j, p;
	unsigned int k = 0, kk;
	uint64_t *A, *B, *T, *tw, *P;
	double best = 0;

	/*
	 * Size: the output is cut into q parts of L bits (a multiple of 64);
	 * each part needs 2^k >= (window chunks) + cb - 1, window chunks
	 * <= (L + 62)/32 + 3. Cost ~ (1 + 2q) transforms of 2^k (x once,
	 * two per part): pick the cheapest k.
	 */
	for (kk = 3; kk < 40; kk++) {
		size_t mm = (size_t)1 << kk, lmax, q;
		double cost;

		if (mm < cb + 8)
			continue;
		lmax = (32 * (mm - cb - 2) - 62) / 64 * 64;
		if (lmax < 64)
			continue;
		q = (l + lmax - 1) / lmax;
		cost = (double)(1 + 2 * q) * (double)mm * kk;
		if (!m || cost < best) {
			best = cost;
			m = mm;
			k = kk;
			L = ((l + q - 1) / q + 63) / 64 * 64;
		}
		if (q == 1)
			break;
	}
	pw = (L + 62) / 64 + 4;
	pthread_once(&gf_once, gf_init);
	/* A, B, T, tw are written before they are read, P zeroed per part */
	A = ws_get(4 * m + pw);
	if (!A)
		return -ENOMEM;
	B = A + m;
	T = B + m;
	tw = T + m;
	P = tw + m;
	if (tw_at != tw || tw_k != k) {
		fft_twiddles(tw, k);
		tw_at = tw;
		tw_k = k;
	}
	chunk32_at(T, in, n, 0, cb);
	for (j = 0; j < cb; j++)	/* Xr: chunks of x reversed */
		B[j] = T[cb - 1 - j];
	memset(B + cb, 0, (m - cb) * sizeof(*B));
	fft_fwd(B, k, T, tw, cb);
	for (p = 0; p * L < l; p++) {
		/* output bits [pL, pL + lp) = bits [b0, b0 + lp) of s x */
		size_t lp = l - p * L < L ? l - p * L : L;
		size_t b0 = p * L + n - 1, b1 = b0 + lp;
		size_t W0 = b0 / 32 >= 1 ? b0 / 32 - 1 : 0;
		size_t W1 = (b1 - 1) / 32 + 1, wl = W1 - W0;
		size_t sh = b0 - 32 * W0, q = sh / 64, i;
		unsigned int r = sh % 64;
		uint64_t *o = out + p * L / 64;

		chunk32_at(A, seed, N, (long long)W0 - (long long)cb + 1, m);
		fft_inv_t(A, k, T, tw);
		pointwise(A, B, m);
		fft_fwd_t(A, k, T, tw, wl);
		/* chunk W0 + j (63 bits) at bit 32 j of P */
		memset(P, 0, pw * sizeof(*P));
		for (j = 0; j < wl; j++) {
			if (j & 1) {
				P[j / 2] ^= A[j] << 32;
				P[j / 2 + 1] ^= A[j] >> 32;
			} else {
				P[j / 2] ^= A[j];
			}
		}
		for (i = 0; i < qkd_bits_words(lp); i++) {
			uint64_t v = P[q + i] >> r;

			if (r)
				v |= P[q + i + 1] << (64 - r);
			o[i] = v;
		}
	}
	qkd_bits_trim(out, l);
	/* A, B, T, P held key-derived data; the twiddles are public */
	explicit_bzero(A, 3 * m * sizeof(*A));
	explicit_bzero(P, pw * sizeof(*P));
	return 0;
}

/* toep_rec() with AVX-512 block XORs (the scalar loops cost about as much
 * as the multiplication kernel otherwise). */
FFT_TARGET static void xor3_blk(uint64_t *restrict d, const uint64_t *a,
				const uint64_t *b, size_t t)
{
	size_t i = 0;

	for (; i + 8 <= t; i += 8)
		_mm512_storeu_si512((void *)(d + i),
			_mm512_xor_si512(_mm512_loadu_si512((const void *)(a + i)),
					 _mm512_loadu_si512((const void *)(b + i))));
	for (; i < t; i++)
		d[i] = a[i] ^ b[i];
}

FFT_TARGET static void toep_rec512(const struct pa_ctx *c, const uint64_t *S,
				   const uint64_t *x, uint64_t *y, size_t w,
				   uint64_t *scratch)
{
	size_t h = w / 2;
	uint64_t *tx = scratch, *p = scratch + h, *sc = scratch + 2 * h;
	uint64_t *next = sc + w;

	if (w == c->B) {
		base_vpclmul512(S, x, y, w);
		return;
	}
	xor3_blk(tx, x, x + h, h);
	memset(p, 0, h * sizeof(*p));
	toep_rec512(c, S + h, tx, p, h, next);
	xor_blk(y, p, h);
	xor_blk(y + h, p, h);
	xor3_blk(sc, S, S + h, w);
	toep_rec512(c, sc, x + h, y, h, next);
	xor3_blk(sc, S + w, S + h, w);
	toep_rec512(c, sc, x, y + h, h, next);
}
#endif /* PA_X86 */

/* Crossover measured with bench/bench_pa (l = n/2): Karatsuba is faster
 * below about 1e6 input bits, the FFT above. */
static size_t pa_fft_threshold = 1000000;	/* input bits */

void qkd_pa_set_fft_threshold(size_t nbits)
{
	pa_fft_threshold = nbits;
}

size_t qkd_pa_get_fft_threshold(void)
{
	return pa_fft_threshold;
}

int qkd_toeplitz_fast(const uint64_t *seed, const uint64_t *in, size_t n,
		      uint64_t *out, size_t l)
{
	size_t nw, lw, m = 1, B = 1, nb, lb, gw, I, J, sw, sh, t, nbits, total;
	uint64_t *G, *xb, *yb, *scr;
	struct pa_ctx c;

	if (!seed || !in || !out || !n || !l || n > SIZE_MAX / 4 - l)
		return -EINVAL;
#ifdef PA_X86
	if (qkd_pa_get_impl() == QKD_PA_VPCLMUL512 && n >= pa_fft_threshold)
		return toeplitz_fft(seed, in, n, out, l);
#endif
	nw = qkd_bits_words(n);
	lw = qkd_bits_words(l);
	pa_plan(nw, lw, &m, &B);
	nb = (nw + m - 1) / m;
	lb = (lw + m - 1) / m;
	gw = (lb + nb) * m;
	nbits = n + l - 1;
	sw = qkd_bits_words(nbits);

	total = gw + PA_PAD + (nb + lb + 4) * m + PA_PAD;
	G = ws_get(total);
	if (!G)
		return -ENOMEM;
	tw_at = NULL;	/* the FFT twiddles in the workspace are overwritten */
	xb = G + gw + PA_PAD;
	yb = xb + nb * m;
	scr = yb + lb * m;
	/* G, xb, yb must start zeroed; scratch is written before it is read
	 * (the kernels' reads past a seed block only reach unused products) */
	memset(G, 0, (gw + PA_PAD + (nb + lb) * m) * sizeof(*G));
	memset(scr, 0, (4 * m + PA_PAD) * sizeof(*scr));

	/* x zero-padded at the end to nb m words */
	memcpy(xb, in, nw * sizeof(uint64_t));
	qkd_bits_trim(xb, n);
	/* G bit g = s[g - 1 - D], D = 64 nb m - n: seed shifted up D + 1 */
	sh = nb * m * 64 - n + 1;
	for (t = 0; t < sw; t++) {
		uint64_t v = seed[t];
		size_t wi = t + sh / 64;
		unsigned int r = sh % 64;

		if (t == sw - 1 && nbits % 64)
			v &= ((uint64_t)1 << (nbits % 64)) - 1;
		G[wi] |= v << r;
		if (r && wi + 1 < gw)
			G[wi + 1] |= v >> (64 - r);
	}

	c.base = pa_base();
	c.B = B;
	for (I = 0; I < lb; I++)
		for (J = 0; J < nb; J++) {
#ifdef PA_X86
			if (c.base == base_vpclmul512) {
				toep_rec512(&c, G + (I + nb - 1 - J) * m,
					    xb + J * m, yb + I * m, m, scr);
				continue;
			}
#endif
			toep_rec(&c, G + (I + nb - 1 - J) * m, xb + J * m,
				 yb + I * m, m, scr);
		}
	memcpy(out, yb, lw * sizeof(uint64_t));
	qkd_bits_trim(out, l);
	explicit_bzero(G, total * sizeof(*G));
	return 0;
}

int qkd_pa_seed_random(uint64_t *seed, size_t nbits)
{
	size_t len = qkd_bits_words(nbits) * sizeof(uint64_t), got = 0;

	if (!seed)
		return -EINVAL;
	while (got < len) {
		ssize_t r = getrandom((char *)seed + got, len - got, 0);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	qkd_bits_trim(seed, nbits);
	return 0;
}
