// SPDX-License-Identifier: GPL-2.0-only
/*
 * Basis sifting (see qkd/sifting.h): word-parallel. For each 64-pulse word
 * the kept mask is detected & ~(basis_a ^ basis_b); its set bits are
 * visited with count-trailing-zeros, so the cost is one word operation per
 * 64 pulses plus one step per sifted bit.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/sifting.h"

void qkd_sifted_free(struct qkd_sifted *s)
{
	qkd_bits_free(s->key, s->cap, 0);
	qkd_bits_free(s->basis, s->cap, 0);
	if (s->intensity) {
		explicit_bzero(s->intensity, s->cap ? s->cap : 1);
		free(s->intensity);
	}
	if (s->pos) {
		explicit_bzero(s->pos, (s->cap ? s->cap : 1) * sizeof(*s->pos));
		free(s->pos);
	}
	memset(s, 0, sizeof(*s));
}

int qkd_sift(const uint64_t *detected, const uint64_t *basis_a,
	     const uint64_t *basis_b, const uint64_t *bits,
	     const uint8_t *intensity, size_t npulses, struct qkd_sifted *out)
{
	size_t nw = qkd_bits_words(npulses), w, cap = 0, k = 0;

	memset(out, 0, sizeof(*out));
	if (!detected || !basis_a || !basis_b || !bits)
		return -EINVAL;
	/* pass 1: size */
	for (w = 0; w < nw; w++) {
		uint64_t m = detected[w] & ~(basis_a[w] ^ basis_b[w]);

		if (w == nw - 1 && npulses % 64)
			m &= ((uint64_t)1 << (npulses % 64)) - 1;
		cap += (size_t)__builtin_popcountll(m);
	}
	out->cap = cap;
	out->key = qkd_bits_alloc(cap, 0);
	out->basis = qkd_bits_alloc(cap, 0);
	out->intensity = calloc(cap ? cap : 1, 1);
	out->pos = calloc(cap ? cap : 1, sizeof(*out->pos));
	if (!out->key || !out->basis || !out->intensity || !out->pos) {
		qkd_sifted_free(out);
		return -ENOMEM;
	}
	/* pass 2: gather */
	for (w = 0; w < nw; w++) {
		uint64_t m = detected[w] & ~(basis_a[w] ^ basis_b[w]);

		if (w == nw - 1 && npulses % 64)
			m &= ((uint64_t)1 << (npulses % 64)) - 1;
		while (m) {
			unsigned int b = (unsigned int)__builtin_ctzll(m);
			size_t i = w * 64 + b;
			unsigned int bas = (unsigned int)(basis_a[w] >> b) & 1;
			unsigned int cls = intensity ? intensity[i] : 0;

			if (cls >= QKD_MAX_INTENSITIES) {
				qkd_sifted_free(out);
				return -EINVAL;
			}
			m &= m - 1;
			if ((bits[w] >> b) & 1)
				out->key[k / 64] |= (uint64_t)1 << (k % 64);
			if (bas)
				out->basis[k / 64] |= (uint64_t)1 << (k % 64);
			out->intensity[k] = (uint8_t)cls;
			out->pos[k] = i;
			out->count[cls][bas]++;
			k++;
		}
	}
	out->n = k;
	return 0;
}

int qkd_sift_alice(const struct qkd_alice_records *a,
		   const struct qkd_bob_records *b, struct qkd_sifted *out)
{
	if (a->n != b->n)
		return -EINVAL;
	return qkd_sift(b->detected, a->basis, b->basis, a->bit, a->intensity,
			a->n, out);
}

int qkd_sift_bob(const struct qkd_bob_records *b,
		 const struct qkd_alice_records *a, struct qkd_sifted *out)
{
	if (a->n != b->n)
		return -EINVAL;
	return qkd_sift(b->detected, a->basis, b->basis, b->bit, a->intensity,
			b->n, out);
}

int qkd_sifted_select(const struct qkd_sifted *s, unsigned int basis,
		      int intensity, uint64_t **bits, size_t *n)
{
	size_t i, k = 0, cnt = 0;
	uint64_t *o;

	for (i = 0; i < s->n; i++)
		if (qkd_bit_get(s->basis, i) == basis &&
		    (intensity < 0 || s->intensity[i] == intensity))
			cnt++;
	o = qkd_bits_alloc(cnt, 0);
	if (!o)
		return -ENOMEM;
	for (i = 0; i < s->n; i++)
		if (qkd_bit_get(s->basis, i) == basis &&
		    (intensity < 0 || s->intensity[i] == intensity)) {
			if (qkd_bit_get(s->key, i))
				o[k / 64] |= (uint64_t)1 << (k % 64);
			k++;
		}
	*bits = o;
	*n = cnt;
	return 0;
}
