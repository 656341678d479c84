/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Packed bit vectors: bit i of a vector lives in word i / 64, at bit i % 64
 * (least significant bit first). Helpers shared by the protocol stages; the
 * hot ones are inline so that parities are word-parallel (XOR + popcount).
 */
#ifndef QKD_BITVEC_H
#define QKD_BITVEC_H

#include <stddef.h>
#include <stdint.h>

#define QKD_BV_WORDS(nbits) (((size_t)(nbits) + 63) / 64)

static inline int qkd_bv_get(const uint64_t *v, size_t i)
{
	return (int)((v[i >> 6] >> (i & 63)) & 1);
}

static inline void qkd_bv_set(uint64_t *v, size_t i, int bit)
{
	uint64_t m = (uint64_t)1 << (i & 63);

	if (bit)
		v[i >> 6] |= m;
	else
		v[i >> 6] &= ~m;
}

static inline void qkd_bv_flip(uint64_t *v, size_t i)
{
	v[i >> 6] ^= (uint64_t)1 << (i & 63);
}

static inline int qkd_parity64(uint64_t w)
{
	return __builtin_parityll(w);
}

/* Parity of bits [start, start + len) of v. */
static inline int qkd_bv_parity_range(const uint64_t *v, size_t start,
				      size_t len)
{
	size_t end, w0, w1, w;
	uint64_t acc;

	if (!len)
		return 0;
	end = start + len;
	w0 = start >> 6;
	w1 = (end - 1) >> 6;
	if (w0 == w1) {
		uint64_t m = len == 64 ? ~(uint64_t)0 :
			(((uint64_t)1 << len) - 1) << (start & 63);
		return qkd_parity64(v[w0] & m);
	}
	acc = v[w0] >> (start & 63);
	for (w = w0 + 1; w < w1; w++)
		acc ^= v[w];
	if (end & 63)
		acc ^= v[w1] & (((uint64_t)1 << (end & 63)) - 1);
	else
		acc ^= v[w1];
	return qkd_parity64(acc);
}

/* Number of set bits among the first nbits bits. */
size_t qkd_bv_popcount(const uint64_t *v, size_t nbits);
/* Number of positions where a and b differ among the first nbits bits. */
size_t qkd_bv_hamming(const uint64_t *a, const uint64_t *b, size_t nbits);
/* Clear the unused bits of the last word (bits nbits .. 64*words-1). */
void qkd_bv_clear_tail(uint64_t *v, size_t nbits);
/*
 * Transpose a 64x64 bit matrix in place. With row r = m[r] and column c =
 * bit c of a row, the result holds R[r] bit c = M[63 - c] bit (63 - r)
 * (a transpose in most-significant-bit-first numbering).
 */
void qkd_bv_transpose64(uint64_t m[64]);

#endif /* QKD_BITVEC_H */
