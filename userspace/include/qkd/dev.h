/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd: wrappers of the /dev/qkd ioctls (key delivery, ETSI 014 status).
 * Each returns 0 or a negative errno.
 */
#ifndef QKD_DEV_H
#define QKD_DEV_H

#include <stddef.h>
#include <stdint.h>

#include <linux/qkd.h>
#include <linux/qkd_dev.h>
#include <qkd/ids.h>

#define QKD_DEV_PATH	"/dev/qkd"

/* Opens @path (NULL: QKD_DEV_PATH) read-write, close-on-exec; fd or -errno. */
int qkd_dev_open(const char *path);

int qkd_dev_info(int fd, struct qkd_info *out);
int qkd_dev_stream_status(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
			  struct qkd_stream_status *out);

/*
 * A key taken from the store: @key is written to the caller's buffer
 * (@buflen bytes; -ERANGE if below the key size, nothing taken), and
 * *@key_len, *@index and @key_id (any may be NULL) are set.
 */
/* The lowest stored key (ETSI 014 enc_keys). */
int qkd_dev_get_key(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		    uint8_t *key, size_t buflen, size_t *key_len,
		    uint64_t *index, uint8_t key_id[QKD_KEY_ID_LEN]);
/* The key at @index (ETSI 014 dec_keys). */
int qkd_dev_get_key_by_index(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
			     uint64_t index, uint8_t *key, size_t buflen,
			     size_t *key_len, uint8_t key_id[QKD_KEY_ID_LEN]);
/* The key named @key_id (ETSI 014 dec_keys). */
int qkd_dev_get_key_by_id(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
			  const uint8_t key_id[QKD_KEY_ID_LEN], uint8_t *key,
			  size_t buflen, size_t *key_len, uint64_t *index);

/*
 * The @number lowest stored keys in one request (ETSI 014 enc_keys with
 * "number", at most QKD_GET_KEYS_MAX): key i at @keys + i * key size, its
 * index in @indices[i]. All or nothing (-EAGAIN if fewer are stored)
 * unless @flags has QKD_KEYS_F_PARTIAL. *@got keys of *@key_size bytes.
 */
int qkd_dev_get_keys(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		     uint32_t number, uint32_t flags, uint8_t *keys,
		     size_t buflen, uint64_t *indices, uint32_t *got,
		     uint32_t *key_size);

/*
 * ETSI 014 enc_keys: qkd_dev_get_keys() all or nothing, with each key's
 * key_ID in @key_ids[i] (may be NULL). -EINVAL before any ioctl for a
 * @number of 0 or above QKD_GET_KEYS_MAX or a NULL @keys.
 */
int qkd_dev_enc_keys(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		     uint32_t number, uint8_t *keys, size_t buflen,
		     uint8_t (*key_ids)[QKD_KEY_ID_LEN], uint32_t *got,
		     uint32_t *key_size);

/*
 * ETSI 014 dec_keys: the keys named @key_ids[0..@number-1], key i at @keys
 * + i * key size. Refused with nothing taken: -EINVAL (before any ioctl)
 * for a @number of 0 or above QKD_GET_KEYS_MAX, a NULL pointer, a key_ID
 * of another stream or beyond the store's indices, the same key_ID twice;
 * -ENOENT no such stream, -ERANGE @buflen below @number keys. Then taken
 * one by one: when key i cannot be taken (-EKEYEXPIRED delivered already,
 * -ENOKEY not pushed yet, ...), keys 0..i-1 stay taken (*@taken says how
 * many; they are delivered at this end) and @keys is wiped.
 */
int qkd_dev_dec_keys(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		     const uint8_t (*key_ids)[QKD_KEY_ID_LEN], uint32_t number,
		     uint8_t *keys, size_t buflen, uint32_t *taken,
		     uint32_t *key_size);

/* Chooses the stream poll() on @fd watches. */
int qkd_dev_set_poll_stream(int fd, const uint8_t stream[QKD_STREAM_ID_LEN]);

#endif /* QKD_DEV_H */
