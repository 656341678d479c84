/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A public-seed pseudo-random generator for what both ends must derive
 * alike from a seed they agreed on -- Cascade's permutations
 * (protocol/cascade.c), the LDPC matrix (protocol/ldpc.c): xoshiro256**
 * seeded through splitmix64, so the sequence is fixed by the seed forever
 * (a change here changes both protocols' wire behaviour: bump the HELLO
 * version). Never for secrets: qkd_rng (qkd/channel.h) has the OS and
 * DRBG generators.
 */
#ifndef QKD_PRNG_H
#define QKD_PRNG_H

#include <stdint.h>

struct qkd_prng {
	uint64_t s[4];
};

static inline uint64_t qkd_splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline void qkd_prng_seed(struct qkd_prng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = qkd_splitmix64(&seed);
}

static inline uint64_t qkd_rotl64(uint64_t x, unsigned int k)
{
	k &= 63;
	return k ? (x << k) | (x >> (64 - k)) : x;
}

/* One xoshiro256** step of the state @s (also qkd_rng's seeded mode). */
static inline uint64_t qkd_xoshiro256ss(uint64_t s[4])
{
	uint64_t res = qkd_rotl64(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = qkd_rotl64(s[3], 45);
	return res;
}

static inline uint64_t qkd_prng_next(struct qkd_prng *r)
{
	return qkd_xoshiro256ss(r->s);
}

/* Uniform in [0, bound), bound >= 1 (Lemire's method: no modulo bias). */
static inline uint32_t qkd_prng_below(struct qkd_prng *r, uint32_t bound)
{
	uint64_t m = (uint64_t)(uint32_t)qkd_prng_next(r) * bound;
	uint32_t lo = (uint32_t)m;

	if (lo < bound) {
		uint32_t t = (uint32_t)(-bound) % bound;

		while (lo < t) {
			m = (uint64_t)(uint32_t)qkd_prng_next(r) * bound;
			lo = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

#endif /* QKD_PRNG_H */
