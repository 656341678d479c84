/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd: the names both ends of a link derive alike from a stream ID and a
 * key index, as Documentation/abi.md ("Key IDs") and Documentation/ipsec.md
 * ("SPIs") define them. The kernel computes the same (kernel/qkd.h); the
 * generated uapi header holds no code, so these live here.
 */
#ifndef QKD_IDS_H
#define QKD_IDS_H

#include <stdint.h>

#include <linux/qkd.h>

/*
 * SPI of the SA keyed by the key at @index of stream @stream_id: the 32-bit
 * FNV-1a hash of the stream ID followed by the index in big-endian order,
 * with 0x100 set when below 256 (SPIs 0..255 are reserved). Host order.
 */
static inline uint32_t qkd_sa_spi(const uint8_t stream_id[QKD_STREAM_ID_LEN],
				  uint64_t index)
{
	uint32_t h = 2166136261U;
	int i;

	for (i = 0; i < QKD_STREAM_ID_LEN; i++)
		h = (h ^ stream_id[i]) * 16777619U;
	for (i = 7; i >= 0; i--)
		h = (h ^ (uint8_t)(index >> (8 * i))) * 16777619U;
	return h < 256 ? h | 0x100 : h;
}

/*
 * ETSI GS QKD 014 key_ID of (stream ID, index): the stream ID with bytes
 * 8..15 XORed with the index in big-endian order. Both ends compute the same
 * ID, and the index is recovered from the key_ID and the stream ID alone.
 */
static inline void qkd_key_id_from_index(uint8_t key_id[QKD_KEY_ID_LEN],
					 const uint8_t stream_id[QKD_STREAM_ID_LEN],
					 uint64_t index)
{
	int i;

	for (i = 0; i < QKD_KEY_ID_LEN; i++)
		key_id[i] = stream_id[i];
	for (i = 0; i < 8; i++)
		key_id[15 - i] ^= (uint8_t)(index >> (8 * i));
}

static inline uint64_t qkd_key_id_to_index(const uint8_t key_id[QKD_KEY_ID_LEN],
					   const uint8_t stream_id[QKD_STREAM_ID_LEN])
{
	uint64_t index = 0;
	int i;

	for (i = 8; i < QKD_KEY_ID_LEN; i++)
		index = (index << 8) | (uint8_t)(key_id[i] ^ stream_id[i]);
	return index;
}

#endif /* QKD_IDS_H */
