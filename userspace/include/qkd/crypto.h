/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd: keys the kernel uses for the caller, who never sees their bytes
 * (Documentation/kernel-api.md): an AF_ALG transform socket keyed from the
 * store, a "logon" key, a "qkd" key. Each returns 0 (or a serial or fd)
 * on success and a negative errno on failure.
 */
#ifndef QKD_CRYPTO_H
#define QKD_CRYPTO_H

#include <stdint.h>

#include <linux/qkd.h>
#include <linux/qkd_dev.h>

/* Which key: @flags 0 (the next), QKD_USE_F_BY_INDEX or QKD_USE_F_BY_KEY_ID. */
struct qkd_key_sel {
	uint32_t flags;
	uint64_t index;
	uint8_t key_id[QKD_KEY_ID_LEN];
};

/* Which key was used, and how many of its bytes. */
struct qkd_key_used {
	uint64_t index;
	uint8_t key_id[QKD_KEY_ID_LEN];
	uint32_t key_len;
};

/*
 * A bound AF_ALG transform socket (close-on-exec) for @type ("skcipher",
 * "aead", "hash") and algorithm @name: fd or -errno.
 */
int qkd_alg_tfm(const char *type, const char *name);

/*
 * QKD_IOC_ALG_SETKEY on /dev/qkd fd @dev: key @algfd (from qkd_alg_tfm())
 * with the first @key_len bytes (0: all) of the selected key.
 */
int qkd_alg_setkey(int dev, int algfd, const uint8_t stream[QKD_STREAM_ID_LEN],
		   const struct qkd_key_sel *sel, uint32_t key_len,
		   struct qkd_key_used *used);

/*
 * QKD_IOC_LOGON_KEY: the selected key into @keyring (a serial or KEY_SPEC_*)
 * as a logon key described @desc ("prefix:name"; NULL: "qkd:<key_ID>").
 * *@serial is the key's serial.
 */
int qkd_logon_key(int dev, const uint8_t stream[QKD_STREAM_ID_LEN],
		  const struct qkd_key_sel *sel, uint32_t key_len,
		  const char *desc, int32_t keyring, int32_t *serial,
		  struct qkd_key_used *used);

/*
 * add_key("qkd", @desc, "fd=@dev stream=... [index=|key-id=] [len=]",
 * @keyring): a key of the module's "qkd" type. @desc NULL or "": named
 * "qkd:<key_ID>". Returns the serial or -errno.
 */
int32_t qkd_keyring_add(int dev, const uint8_t stream[QKD_STREAM_ID_LEN],
			const struct qkd_key_sel *sel, uint32_t key_len,
			const char *desc, int32_t keyring);

/*
 * A keyring as keyctl(1) names it: "@t", "@p", "@s", "@u", "@us" (the
 * KEY_SPEC_* values) or a serial number. -EINVAL if malformed.
 */
int qkd_keyring_parse(const char *s, int32_t *out);

#endif /* QKD_CRYPTO_H */
