// SPDX-License-Identifier: GPL-2.0-only
/*
 * Packed bit vector helpers (see qkd/bitvec.h).
 */
#include <qkd/bitvec.h>

size_t qkd_bv_popcount(const uint64_t *v, size_t nbits)
{
	size_t i, n = 0, full = nbits / 64;

	for (i = 0; i < full; i++)
		n += (size_t)__builtin_popcountll(v[i]);
	if (nbits & 63)
		n += (size_t)__builtin_popcountll(v[full] &
				(((uint64_t)1 << (nbits & 63)) - 1));
	return n;
}

size_t qkd_bv_hamming(const uint64_t *a, const uint64_t *b, size_t nbits)
{
	size_t i, n = 0, full = nbits / 64;

	for (i = 0; i < full; i++)
		n += (size_t)__builtin_popcountll(a[i] ^ b[i]);
	if (nbits & 63)
		n += (size_t)__builtin_popcountll((a[full] ^ b[full]) &
				(((uint64_t)1 << (nbits & 63)) - 1));
	return n;
}

void qkd_bv_clear_tail(uint64_t *v, size_t nbits)
{
	if (nbits & 63)
		v[nbits / 64] &= ((uint64_t)1 << (nbits & 63)) - 1;
}

void qkd_bv_transpose64(uint64_t a[64])
{
	unsigned int j, k;
	uint64_t m, t;

	for (j = 32, m = 0x00000000ffffffffULL; j; j >>= 1, m ^= m << j) {
		for (k = 0; k < 64; k = ((k | j) + 1) & ~j) {
			t = (a[k] ^ (a[k | j] >> j)) & m;
			a[k] ^= t;
			a[k | j] ^= t << j;
		}
	}
}
