/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Basis sifting, on per-detection records (qkd_sift_det(), qkdd) or on
 * packed bit arrays over every pulse (qkd_sift(), the reference).
 *
 * Over the classical channel Bob announces which pulses he detected and
 * his basis for each; Alice answers with her basis for those pulses and
 * (for decoy states) their intensity class. Both sides then keep the
 * detected pulses where the bases agree, in pulse order, so the two sifted
 * keys are aligned bit for bit. Each side sifts its own bits against the
 * announced bases.
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
	/* intensity and pos: qkd_secmem_alloc() (qkd/secmem.h), cap of them */
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
 * Sifting on per-detection records (qkdd's path): @mine, this side's
 * records of the announced detections (in the announced order), and
 * @peer_basis, the other side's basis for each (mine->n bits). Kept: the
 * detections whose bases agree, in order. @intensity: Alice's class per
 * detection (Bob's side: from her answer); NULL: mine->r[].intensity
 * (Alice's side). 0, -EINVAL (a class >= QKD_MAX_INTENSITIES) or -ENOMEM.
 */
int qkd_sift_det(const struct qkd_det_records *mine,
		 const uint64_t *peer_basis, const uint8_t *intensity,
		 struct qkd_sifted *out);

/*
 * A list of detected pulses on the wire (SIFT_BASES, Documentation/
 * protocol.md "Sifting"): one unsigned LEB128 varint per detection, the
 * first the pulse index, each next one the number of undetected pulses
 * since the previous detection (index - previous - 1). 7 bits a byte,
 * least significant group first, bit 7 set on every byte but the last;
 * the shortest encoding only (one list, one byte string: the transcript
 * authenticates the bytes). At most QKD_GAP_MAX_LEN bytes a detection.
 */
#define QKD_GAP_MAX_LEN	10

/* Encode the pulse indices of @d (strictly increasing) into @out
 * (d->n * QKD_GAP_MAX_LEN bytes at least); returns the length. */
size_t qkd_gaps_encode(const struct qkd_det_records *d, uint8_t *out);

/*
 * Decode exactly @n pulse indices from the @len bytes @buf, every one
 * below @npulses, into @pulse: 0, or -EBADMSG with *@why (if not NULL)
 * set to a static reason -- a varint cut short by the end of the bytes,
 * longer than 64 bits or not the shortest encoding, an index at or past
 * @npulses (gaps overflowing the round), fewer than @n varints, or bytes
 * left after the n-th.
 */
int qkd_gaps_decode(const uint8_t *buf, size_t len, size_t n,
		    uint64_t npulses, uint64_t *pulse, const char **why);

/*
 * Bob's SIFT_BASES (HELLO version 8), little endian: u64 pulses of the
 * round, u64 n detections, u64 L, L bytes of gaps (qkd_gaps_encode()),
 * then Bob's basis per detection, n bits in 64-bit words of 8 bytes each
 * (bit i of the list is bit i % 64 of word i / 64; the bits past n zero).
 */
struct qkd_sift_announce {
	size_t n;		/* detections */
	uint64_t *pulse;	/* n pulse indices, strictly increasing
				 * (qkd_secmem_alloc(): n * 8 bytes) */
	uint64_t *basis;	/* n bits */
};

/* Encode Bob's records into a new buffer *@out of *@len bytes (free with
 * free() after explicit_bzero: it holds Bob's bases). 0 or -ENOMEM. */
int qkd_sift_announce_encode(const struct qkd_det_records *b, uint8_t **out,
			     size_t *len);
/*
 * Decode an announcement of exactly @len bytes for a round of @npulses
 * pulses and at most @max_det detections. 0; -EBADMSG with *@why (if not
 * NULL) a static reason: another pulse count, more detections than
 * @max_det or than the gap bytes can hold, a malformed gap list (see
 * qkd_gaps_decode()), too few bytes for the bases, bits set past the
 * n-th, bytes after the end; or -ENOMEM. Nothing is allocated on error.
 */
int qkd_sift_announce_decode(const uint8_t *buf, size_t len,
			     uint64_t npulses, uint64_t max_det,
			     struct qkd_sift_announce *an, const char **why);
void qkd_sift_announce_free(struct qkd_sift_announce *an);	/* zeroes */

/*
 * Bits of one basis (and optionally one intensity class, -1 for all) of a
 * sifted key, packed into a new array *@bits of *@n bits
 * (free with qkd_bits_free(*bits, *n, 0)). 0 or -ENOMEM.
 */
int qkd_sifted_select(const struct qkd_sifted *s, unsigned int basis,
		      int intensity, uint64_t **bits, size_t *n);

void qkd_sifted_free(struct qkd_sifted *s);	/* zeroes */

#endif /* QKD_SIFTING_H */
