// SPDX-License-Identifier: GPL-2.0-only
/* Packed bit arrays: allocation with zeroing on free. */
#include <stdlib.h>
#include <string.h>

#include "qkd/bits.h"

uint64_t *qkd_bits_alloc(size_t nbits, size_t pad_words)
{
	size_t words = qkd_bits_words(nbits) + pad_words;
	size_t bytes = words * sizeof(uint64_t);
	void *p;

	if (words > SIZE_MAX / sizeof(uint64_t) - 64)
		return NULL;
	bytes = (bytes + 63) & ~(size_t)63;
	if (!bytes)
		bytes = 64;
	p = aligned_alloc(64, bytes);
	if (p)
		memset(p, 0, bytes);
	return p;
}

void qkd_bits_free(uint64_t *a, size_t nbits, size_t pad_words)
{
	size_t bytes = (qkd_bits_words(nbits) + pad_words) * sizeof(uint64_t);

	if (!a)
		return;
	bytes = (bytes + 63) & ~(size_t)63;
	if (!bytes)
		bytes = 64;
	explicit_bzero(a, bytes);
	free(a);
}

size_t qkd_bits_popcount(const uint64_t *a, size_t nbits)
{
	size_t i, c = 0, w = nbits / 64;

	for (i = 0; i < w; i++)
		c += (size_t)__builtin_popcountll(a[i]);
	if (nbits % 64)
		c += (size_t)__builtin_popcountll(a[w] &
				(((uint64_t)1 << (nbits % 64)) - 1));
	return c;
}
