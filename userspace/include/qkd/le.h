/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Little-endian integers of 1 to 8 bytes in wire formats: the quantum
 * link's chunks (qkdd/quantum.c), the sparse sifting announcement
 * (protocol/sifting.c) and the recorded detection files
 * (protocol/timetag.c). One copy, byte by byte: no alignment or host
 * byte order assumed.
 */
#ifndef QKD_LE_H
#define QKD_LE_H

#include <stdint.h>

static inline void qkd_put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t qkd_get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

#endif /* QKD_LE_H */
