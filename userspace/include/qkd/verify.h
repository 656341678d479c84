/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Error verification after error correction: one side (the initiator)
 * draws fresh random hash keys, computes a polynomial universal hash over
 * GF(2^64) of its corrected key and sends keys and tag; the other side
 * computes the same hash of its own key and compares. d = tag_bits / 64
 * independent evaluations are made, so two keys of n bits that differ
 * collide with probability at most
 *
 *	eps_cor = ((ceil(n / 64) + 1) / 2^64)^d
 *
 * over the choice of the hash keys (the hash is a polynomial of degree
 * ceil(n/64) + 1 in the key, with no constant term). The tag_bits bits of
 * the tag are disclosed and must be subtracted by privacy amplification;
 * the hash keys are independent of the key and disclose nothing.
 *
 * The tag length has a compiled-in floor, QKD_VERIFY_MIN_TAG_BITS: a peer
 * that sends or asks for a shorter tag is rejected (-EPERM), whatever it
 * says. A side may raise its own floor (local_min).
 */
#ifndef QKD_VERIFY_H
#define QKD_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#define QKD_VERIFY_MIN_TAG_BITS		64
#define QKD_VERIFY_DEFAULT_TAG_BITS	128
#define QKD_VERIFY_MAX_TAG_BITS		256
#define QKD_VERIFY_MAX_WORDS		(QKD_VERIFY_MAX_TAG_BITS / 64)
#define QKD_VERIFY_MSG_MAX		(16 + 16 * QKD_VERIFY_MAX_WORDS)

struct qkd_verify_tag {
	uint32_t tag_bits;			/* 64 * d */
	uint64_t key_bits;			/* length of the hashed key */
	uint64_t hkey[QKD_VERIFY_MAX_WORDS];	/* hash keys, nonzero */
	uint64_t tag[QKD_VERIFY_MAX_WORDS];
};

/*
 * 0 if a tag of tag_bits bits may be used: a multiple of 64, at most
 * QKD_VERIFY_MAX_TAG_BITS, at least QKD_VERIFY_MIN_TAG_BITS and local_min.
 * -EPERM if it is too short, -EINVAL if malformed.
 */
int qkd_verify_check_tag_bits(uint32_t tag_bits, uint32_t local_min);

/* Polynomial hash of key_bits bits of key under hash key hkey (GF(2^64)). */
uint64_t qkd_verify_hash64(uint64_t hkey, const uint64_t *key,
			   uint64_t key_bits);

/*
 * Initiator: make a tag of tag_bits bits. hkey[] gives the hash keys
 * (tag_bits / 64 of them, for tests) or is NULL to draw them with
 * getrandom(2).
 */
int qkd_verify_make(struct qkd_verify_tag *t, const uint64_t *key,
		    uint64_t key_bits, uint32_t tag_bits,
		    const uint64_t *hkey);

/*
 * Responder: 1 if the peer's tag matches key, 0 if not (the keys differ:
 * discard), -EPERM if the tag is shorter than allowed, -EINVAL if malformed
 * (zero hash key, length mismatch).
 */
int qkd_verify_check(const struct qkd_verify_tag *peer, const uint64_t *key,
		     uint64_t key_bits, uint32_t local_min);

/* Wire format (little endian): see Documentation/protocol.md. */
size_t qkd_verify_encode(const struct qkd_verify_tag *t, uint8_t *buf);
/* Decodes and applies qkd_verify_check_tag_bits(local_min). */
int qkd_verify_decode(struct qkd_verify_tag *t, const uint8_t *buf,
		      size_t len, uint32_t local_min);

/* Collision probability bound for keys of key_bits bits. */
double qkd_verify_eps_cor(uint64_t key_bits, uint32_t tag_bits);
/* log2 of the same bound (does not underflow). */
double qkd_verify_log2_eps_cor(uint64_t key_bits, uint32_t tag_bits);

/* Bits disclosed by one verification (the tag). */
static inline uint64_t qkd_verify_disclosed_bits(uint32_t tag_bits)
{
	return tag_bits;
}

#endif /* QKD_VERIFY_H */
