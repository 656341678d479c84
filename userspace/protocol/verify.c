// SPDX-License-Identifier: GPL-2.0-only
/*
 * Error verification: polynomial universal hashing over GF(2^64), modulus
 * x^64 + x^4 + x^3 + x + 1. See qkd/verify.h.
 *
 * hash(k, m) = ((..((m_1 k + m_2) k + ..) + m_L) k + n) k, where m_i are the
 * 64-bit words of the key (bits beyond n cleared) and n is the bit length:
 * a polynomial in k of degree L + 1 with no constant term, so two different
 * keys of the same length collide for at most L + 1 values of k.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/random.h>

#include <qkd/verify.h>

#define GF_POLY_LOW	0x1bULL		/* x^4 + x^3 + x + 1 */
#define MSG_TYPE	0x56		/* 'V' */
#define MSG_VERSION	1

/*
 * a k in GF(2^64), in constant time: both the hash key k and the key
 * words a are secret, so no table is indexed by them and no branch
 * depends on them (the 4-bit tables used before leaked both through the
 * cache). For each bit of a, k x^i is added under a mask, and k x^(i+1)
 * is reduced with a mask of its top bit.
 */
static inline uint64_t gf_mul(uint64_t k, uint64_t a)
{
	uint64_t r = 0;
	int i;

	for (i = 0; i < 64; i++) {
		r ^= k & (0 - ((a >> i) & 1));
		k = (k << 1) ^ (GF_POLY_LOW & (0 - (k >> 63)));
	}
	return r;
}

uint64_t qkd_verify_hash64(uint64_t hkey, const uint64_t *key,
			   uint64_t key_bits)
{
	uint64_t acc = 0, i, full = key_bits / 64;

	for (i = 0; i < full; i++)
		acc = gf_mul(hkey, acc ^ key[i]);
	if (key_bits & 63)
		acc = gf_mul(hkey, acc ^ (key[full] &
				(((uint64_t)1 << (key_bits & 63)) - 1)));
	return gf_mul(hkey, acc ^ key_bits);
}

int qkd_verify_check_tag_bits(uint32_t tag_bits, uint32_t local_min)
{
	if (tag_bits % 64 || tag_bits > QKD_VERIFY_MAX_TAG_BITS)
		return -EINVAL;
	if (tag_bits < QKD_VERIFY_MIN_TAG_BITS || tag_bits < local_min)
		return -EPERM;
	return 0;
}

int qkd_verify_make(struct qkd_verify_tag *t, const uint64_t *key,
		    uint64_t key_bits, uint32_t tag_bits,
		    const uint64_t *hkey)
{
	uint32_t d, i;
	int err = qkd_verify_check_tag_bits(tag_bits, 0);

	if (err)
		return err;
	memset(t, 0, sizeof(*t));
	d = tag_bits / 64;
	t->tag_bits = tag_bits;
	t->key_bits = key_bits;
	for (i = 0; i < d; i++) {
		if (hkey) {
			t->hkey[i] = hkey[i];
		} else {
			do {
				if (getrandom(&t->hkey[i], sizeof(t->hkey[i]),
					      0) != sizeof(t->hkey[i]))
					return -EIO;
			} while (!t->hkey[i]);
		}
		if (!t->hkey[i])
			return -EINVAL;
		t->tag[i] = qkd_verify_hash64(t->hkey[i], key, key_bits);
	}
	return 0;
}

int qkd_verify_check(const struct qkd_verify_tag *peer, const uint64_t *key,
		     uint64_t key_bits, uint32_t local_min)
{
	uint64_t diff = 0;
	uint32_t d, i;
	int err = qkd_verify_check_tag_bits(peer->tag_bits, local_min);

	if (err)
		return err;
	if (peer->key_bits != key_bits)
		return -EINVAL;
	d = peer->tag_bits / 64;
	for (i = 0; i < d; i++)
		if (!peer->hkey[i])
			return -EINVAL;
	for (i = 0; i < d; i++)
		diff |= peer->tag[i] ^ qkd_verify_hash64(peer->hkey[i], key,
							 key_bits);
	return diff == 0;
}

static void put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

size_t qkd_verify_encode(const struct qkd_verify_tag *t, uint8_t *buf)
{
	uint32_t d = t->tag_bits / 64, i;

	buf[0] = MSG_TYPE;
	buf[1] = MSG_VERSION;
	buf[2] = (uint8_t)t->tag_bits;
	buf[3] = (uint8_t)(t->tag_bits >> 8);
	memset(buf + 4, 0, 4);
	put64(buf + 8, t->key_bits);
	for (i = 0; i < d; i++) {
		put64(buf + 16 + 16 * i, t->hkey[i]);
		put64(buf + 24 + 16 * i, t->tag[i]);
	}
	return 16 + 16 * (size_t)d;
}

int qkd_verify_decode(struct qkd_verify_tag *t, const uint8_t *buf,
		      size_t len, uint32_t local_min)
{
	uint32_t d, i;
	int err;

	if (len < 16 || buf[0] != MSG_TYPE || buf[1] != MSG_VERSION ||
	    buf[4] || buf[5] || buf[6] || buf[7])
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	t->tag_bits = buf[2] | (uint32_t)buf[3] << 8;
	err = qkd_verify_check_tag_bits(t->tag_bits, local_min);
	if (err)
		return err;
	d = t->tag_bits / 64;
	if (len != 16 + 16 * (size_t)d)
		return -EINVAL;
	t->key_bits = get64(buf + 8);
	for (i = 0; i < d; i++) {
		t->hkey[i] = get64(buf + 16 + 16 * i);
		t->tag[i] = get64(buf + 24 + 16 * i);
		if (!t->hkey[i])
			return -EINVAL;
	}
	return 0;
}

double qkd_verify_log2_eps_cor(uint64_t key_bits, uint32_t tag_bits)
{
	double words = (double)((key_bits + 63) / 64) + 1;

	return (tag_bits / 64) * (log2(words) - 64.0);
}

double qkd_verify_eps_cor(uint64_t key_bits, uint32_t tag_bits)
{
	return exp2(qkd_verify_log2_eps_cor(key_bits, tag_bits));
}
