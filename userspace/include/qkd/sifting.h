/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Basis sifting on packed bit arrays.
 *
 * Over the classical channel Bob announces which pulses he detected and
 * his basis for each; Alice answers with her basis for those pulses and
 * (for decoy states) their intensity class. Both sides then keep the
 * detected pulses where the bases agree, in pulse order, so the two sifted
 * keys are aligned bit for bit. Each side calls qkd_sift() with its own
 * bits and the announced arrays.
 */
#ifndef QKD_SIFTING_H
#define QKD_SIFTING_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"
#include "qkd/channel.h"

struct qkd_sifted {
	size_t n;		/* sifted bits */
	uint64_t *key;		/* n bits: this side's bit per sifted pulse */
	uint64_t *basis;	/* n bits: the (common) basis, 0 = Z, 1 = X */
	uint8_t *intensity;	/* n bytes: Alice's intensity class */
	uint64_t *pos;		/* n pulse indices, increasing */
	/* decoy bookkeeping: sifted bits per intensity class and basis */
	uint64_t count[QKD_MAX_INTENSITIES][2];
	size_t cap;
};

/*
 * Sift @npulses pulses. @detected: Bob's detection flags; @basis_a,
 * @basis_b: both bases; @bits: this side's bits; @intensity: Alice's
 * classes (NULL: all class 0). The result is allocated in @out (free with
 * qkd_sifted_free). 0, -EINVAL or -ENOMEM.
 */
int qkd_sift(const uint64_t *detected, const uint64_t *basis_a,
	     const uint64_t *basis_b, const uint64_t *bits,
	     const uint8_t *intensity, size_t npulses, struct qkd_sifted *out);

/* Alice's and Bob's sides from the channel records. */
int qkd_sift_alice(const struct qkd_alice_records *a,
		   const struct qkd_bob_records *announced_by_bob,
		   struct qkd_sifted *out);
int qkd_sift_bob(const struct qkd_bob_records *b,
		 const struct qkd_alice_records *announced_by_alice,
		 struct qkd_sifted *out);

/*
 * Bits of one basis (and optionally one intensity class, -1 for all) of a
 * sifted key, packed into a new array *@bits of *@n bits
 * (free with qkd_bits_free(*bits, *n, 0)). 0 or -ENOMEM.
 */
int qkd_sifted_select(const struct qkd_sifted *s, unsigned int basis,
		      int intensity, uint64_t **bits, size_t *n);

void qkd_sifted_free(struct qkd_sifted *s);	/* zeroes */

#endif /* QKD_SIFTING_H */
