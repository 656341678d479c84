// SPDX-License-Identifier: GPL-2.0-only
/*
 * Shared by the frame fuzz target and its seed-corpus generator: a fixed
 * authentication key, so that the generated seeds carry valid tags and the
 * fuzzer reaches the code behind a successful frame_open().
 */
#ifndef QKD_FUZZ_COMMON_H
#define QKD_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "qkd/auth.h"

#define FUZZ_KEYLEN (QKD_AUTH_KEY_HDR_LEN + 64 * 16)

static inline void fuzz_key(uint8_t key[FUZZ_KEYLEN])
{
	uint32_t x = 0x9e3779b9u;

	for (size_t i = 0; i < FUZZ_KEYLEN; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		key[i] = (uint8_t)(x >> 24);
	}
}

#endif
