// SPDX-License-Identifier: GPL-2.0-only
/*
 * Basis sifting (see qkd/sifting.h). Per pulse (the reference),
 * word-parallel: for each 64-pulse word the kept mask is detected &
 * ~(basis_a ^ basis_b); its set bits are visited with count-trailing-zeros,
 * so the cost is one word operation per 64 pulses plus one step per sifted
 * bit. Per detection (qkdd): one step per detection, and Bob's
 * announcement as a list of pulse-index gaps (LEB128 varints).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/sifting.h"
#include "qkd/le.h"
#include "qkd/secmem.h"

void qkd_sifted_free(struct qkd_sifted *s)
{
	qkd_bits_free(s->key, s->cap, 0);
	qkd_bits_free(s->basis, s->cap, 0);
	qkd_secmem_free(s->intensity, s->cap);
	qkd_secmem_free(s->pos, s->cap * sizeof(*s->pos));
	memset(s, 0, sizeof(*s));
}

/* The arrays of @out for @cap sifted bits. 0 or -ENOMEM (@out freed). */
static int sifted_alloc(struct qkd_sifted *out, size_t cap)
{
	out->cap = cap;
	out->key = qkd_bits_alloc(cap, 0);
	out->basis = qkd_bits_alloc(cap, 0);
	out->intensity = qkd_secmem_alloc(cap);
	out->pos = qkd_secmem_alloc(cap * sizeof(*out->pos));
	if (!out->key || !out->basis || !out->intensity || !out->pos) {
		qkd_sifted_free(out);
		return -ENOMEM;
	}
	return 0;
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
	if (sifted_alloc(out, cap))
		return -ENOMEM;
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

int qkd_sift_det(const struct qkd_det_records *mine,
		 const uint64_t *peer_basis, const uint8_t *intensity,
		 struct qkd_sifted *out)
{
	uint64_t cnt[QKD_MAX_INTENSITIES][2] = { { 0 } }, kw = 0, bw = 0, *keep;
	size_t n, nw, w, cap = 0, k = 0;
	const struct qkd_det_rec *r;
	int err;

	memset(out, 0, sizeof(*out));
	if (!mine || !peer_basis || (mine->n && !mine->r))
		return -EINVAL;
	n = mine->n;
	r = mine->r;
	nw = qkd_bits_words(n);
	/* pass 1: the kept detections, 64 at a time (the bases agree) */
	keep = malloc((nw ? nw : 1) * sizeof(*keep));
	if (!keep)
		return -ENOMEM;
	for (w = 0; w < nw; w++) {
		size_t base = w * 64, lim = n - base < 64 ? n - base : 64;
		uint64_t mb = 0, m;

		for (size_t j = 0; j < lim; j++)
			mb |= (uint64_t)(r[base + j].basis & 1) << j;
		m = ~(mb ^ peer_basis[w]);
		if (lim < 64)
			m &= ((uint64_t)1 << lim) - 1;
		keep[w] = m;
		cap += (size_t)__builtin_popcountll(m);
	}
	err = sifted_alloc(out, cap);
	if (err) {
		free(keep);
		return err;
	}
	/* pass 2: gather them, key and basis bits a word at a time */
	for (w = 0; w < nw; w++)
		for (uint64_t m = keep[w]; m; m &= m - 1) {
			const struct qkd_det_rec *e =
				&r[w * 64 + (size_t)__builtin_ctzll(m)];
			unsigned int bas = e->basis & 1;
			unsigned int cls = intensity ?
				intensity[w * 64 + (size_t)__builtin_ctzll(m)] :
				e->intensity;

			if (cls >= QKD_MAX_INTENSITIES) {
				explicit_bzero(&kw, sizeof(kw));
				free(keep);
				qkd_sifted_free(out);
				return -EINVAL;
			}
			kw |= (uint64_t)(e->bit & 1) << (k % 64);
			bw |= (uint64_t)bas << (k % 64);
			out->intensity[k] = (uint8_t)cls;
			out->pos[k] = e->pulse;
			cnt[cls][bas]++;
			if (++k % 64 == 0) {
				out->key[k / 64 - 1] = kw;
				out->basis[k / 64 - 1] = bw;
				kw = bw = 0;
			}
		}
	if (k % 64) {
		out->key[k / 64] = kw;
		out->basis[k / 64] = bw;
	}
	explicit_bzero(&kw, sizeof(kw));
	free(keep);
	memcpy(out->count, cnt, sizeof(cnt));
	out->n = k;
	return 0;
}

size_t qkd_gaps_encode(const struct qkd_det_records *d, uint8_t *out)
{
	size_t len = 0;

	for (size_t i = 0; i < d->n; i++) {
		uint64_t g = i ? d->r[i].pulse - d->r[i - 1].pulse - 1 :
				 d->r[i].pulse;

		while (g >= 0x80) {
			out[len++] = (uint8_t)(g | 0x80);
			g >>= 7;
		}
		out[len++] = (uint8_t)g;
	}
	return len;
}

int qkd_gaps_decode(const uint8_t *buf, size_t len, size_t n,
		    uint64_t npulses, uint64_t *pulse, const char **why)
{
	const char *dummy;
	size_t off = 0;
	uint64_t next = 0;	/* the smallest index the next one may have */

	if (!why)
		why = &dummy;
	for (size_t i = 0; i < n; i++) {
		uint64_t g = 0;
		unsigned int shift = 0;
		uint8_t b;

		do {
			if (off >= len) {
				*why = off ? "the list ends inside a varint or before its last detection" :
					     "an empty list for detections";
				return -EBADMSG;
			}
			b = buf[off++];
			if (shift == 63 && (b & 0xfe)) {
				*why = "a varint longer than 64 bits";
				return -EBADMSG;
			}
			g |= (uint64_t)(b & 0x7f) << shift;
			shift += 7;
		} while (b & 0x80);
		if (!b && shift > 7) {
			*why = "a varint longer than its shortest encoding";
			return -EBADMSG;
		}
		if (next >= npulses || g >= npulses - next) {
			*why = "the gaps run past the round's pulses";
			return -EBADMSG;
		}
		pulse[i] = next + g;
		next = pulse[i] + 1;
	}
	if (off != len) {
		*why = "bytes after the last detection";
		return -EBADMSG;
	}
	return 0;
}

int qkd_sift_announce_encode(const struct qkd_det_records *b, uint8_t **out,
			     size_t *len)
{
	size_t nw = qkd_bits_words(b->n), max = 24 + b->n * QKD_GAP_MAX_LEN +
						nw * 8, gl;
	uint8_t *p = malloc(max ? max : 1), *bas;

	*out = NULL;
	*len = 0;
	if (!p)
		return -ENOMEM;
	qkd_put_le(p, b->npulses, 8);
	qkd_put_le(p + 8, b->n, 8);
	gl = qkd_gaps_encode(b, p + 24);
	qkd_put_le(p + 16, gl, 8);
	bas = p + 24 + gl;
	memset(bas, 0, nw * 8);
	for (size_t i = 0; i < b->n; i++)
		bas[i / 8] |= (uint8_t)((b->r[i].basis & 1) << (i % 8));
	*out = p;
	*len = 24 + gl + nw * 8;
	return 0;
}

void qkd_sift_announce_free(struct qkd_sift_announce *an)
{
	qkd_secmem_free(an->pulse, an->n * sizeof(*an->pulse));
	qkd_bits_free(an->basis, an->n, 0);
	memset(an, 0, sizeof(*an));
}

int qkd_sift_announce_decode(const uint8_t *buf, size_t len,
			     uint64_t npulses, uint64_t max_det,
			     struct qkd_sift_announce *an, const char **why)
{
	const char *dummy;
	uint64_t n, gl;
	size_t nw;
	int r;

	if (!why)
		why = &dummy;
	memset(an, 0, sizeof(*an));
	if (len < 24) {
		*why = "shorter than its header";
		return -EBADMSG;
	}
	if (qkd_get_le(buf, 8) != npulses) {
		*why = "another pulse count than the round's";
		return -EBADMSG;
	}
	n = qkd_get_le(buf + 8, 8);
	gl = qkd_get_le(buf + 16, 8);
	if (n > max_det || n > npulses) {
		*why = "more detections than a round of this configuration has";
		return -EBADMSG;
	}
	/* every detection takes a gap byte at least, and a basis bit */
	if (gl > len - 24 || n > gl) {
		*why = "the gap list is longer than the message or too short for its detections";
		return -EBADMSG;
	}
	nw = qkd_bits_words((size_t)n);
	if (len - 24 - gl != nw * 8) {
		*why = len - 24 - gl < nw * 8 ?
			"too few bytes for the bases of its detections" :
			"bytes after the bases";
		return -EBADMSG;
	}
	an->pulse = qkd_secmem_alloc((size_t)n * sizeof(*an->pulse));
	an->basis = qkd_bits_alloc((size_t)n, 0);
	an->n = (size_t)n;
	if (!an->pulse || !an->basis) {
		qkd_sift_announce_free(an);
		return -ENOMEM;
	}
	r = qkd_gaps_decode(buf + 24, (size_t)gl, (size_t)n, npulses,
			    an->pulse, why);
	if (r) {
		qkd_sift_announce_free(an);
		return r;
	}
	for (size_t i = 0; i < nw; i++)
		an->basis[i] = qkd_get_le(buf + 24 + gl + i * 8, 8);
	if (n % 64 && (an->basis[nw - 1] >> (n % 64))) {
		*why = "basis bits set past the last detection";
		qkd_sift_announce_free(an);
		return -EBADMSG;
	}
	return 0;
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
