/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Packed bit arrays used by the protocol stages (channel, sifting,
 * estimation, privacy amplification).
 *
 * Convention everywhere: bit i of an array lives in word i / 64 at bit
 * position i % 64 (least significant bit first). Bits past the logical
 * length in the last word are kept zero by every function that writes an
 * array.
 */
#ifndef QKD_BITS_H
#define QKD_BITS_H

#include <stddef.h>
#include <stdint.h>

static inline size_t qkd_bits_words(size_t nbits)
{
	return (nbits + 63) / 64;
}

static inline unsigned int qkd_bit_get(const uint64_t *a, size_t i)
{
	return (unsigned int)((a[i / 64] >> (i % 64)) & 1);
}

static inline void qkd_bit_set(uint64_t *a, size_t i, unsigned int v)
{
	uint64_t m = (uint64_t)1 << (i % 64);

	if (v)
		a[i / 64] |= m;
	else
		a[i / 64] &= ~m;
}

/* Clear the bits at positions >= nbits in the last word of @a. */
static inline void qkd_bits_trim(uint64_t *a, size_t nbits)
{
	if (nbits % 64)
		a[nbits / 64] &= ((uint64_t)1 << (nbits % 64)) - 1;
}

/*
 * Zeroed, 64-byte aligned array of @nbits bits (rounded up to whole words,
 * plus @pad_words spare zero words at the end). NULL on failure.
 */
uint64_t *qkd_bits_alloc(size_t nbits, size_t pad_words);
/* explicit_bzero() the array (same @nbits, @pad_words as allocated), free it. */
void qkd_bits_free(uint64_t *a, size_t nbits, size_t pad_words);
/* Number of set bits among the first @nbits. */
size_t qkd_bits_popcount(const uint64_t *a, size_t nbits);

#endif /* QKD_BITS_H */
