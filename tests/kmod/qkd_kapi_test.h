/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkd_kapi_test: the interface of the test module that calls the in-kernel
 * API of qkd.ko (include/linux/qkd.h) on behalf of tests/kernel/test_kapi.c.
 * Shared by the module and the test; userspace includes it after
 * <linux/types.h> and <linux/ioctl.h>.
 *
 * /dev/qkd_kapi_test (0600, and CAP_SYS_ADMIN to open) is bound to the
 * network namespace it was opened in, as /dev/qkd is. One ioctl,
 * QKD_KAPI_IOC_CALL, runs one call: the ioctl fails only for a malformed
 * request (-EINVAL, -EFAULT, -ENOMEM); what the API returned is in @ret.
 */
#ifndef _QKD_KAPI_TEST_H
#define _QKD_KAPI_TEST_H

#define QKD_KAPI_DEV_NAME	"qkd_kapi_test"
#define QKD_KAPI_DATA_MAX	256
#define QKD_KAPI_TAG_LEN	16	/* AEAD tag bytes */
#define QKD_KAPI_MAC_LEN	32	/* HMAC-SHA256 */

/**
 * enum qkd_kapi_op - what QKD_KAPI_IOC_CALL does
 * @QKD_KAPI_SIZE: qkd_key_size(); @ret the size or -errno
 * @QKD_KAPI_TAKE: qkd_key_take() into a buffer of @buflen bytes (0: the
 *	largest key size); @ret as qkd_key_take(); on success @out is
 *	HMAC-SHA256 of @in keyed with the whole key taken (the key bytes never
 *	leave the kernel)
 * @QKD_KAPI_USE: qkd_key_use() with @key_len; the callback computes
 *	HMAC-SHA256 of @in with the key it is given into @out, or with
 *	QKD_KAPI_F_USE_FAIL fails with -EIO without touching the key
 * @QKD_KAPI_SKCIPHER: allocates skcipher @alg, qkd_crypto_skcipher_setkey()
 *	with @key_len, then encrypts @in (@in_len bytes) with @iv into @out
 * @QKD_KAPI_AEAD: allocates aead @alg, qkd_crypto_aead_setkey(), authsize
 *	QKD_KAPI_TAG_LEN, encrypts @in (the first @assoclen bytes are AAD) with
 *	@iv into @out: AAD || ciphertext || tag
 * @QKD_KAPI_SHASH: allocates shash @alg, qkd_crypto_shash_setkey(), digest
 *	of @in into @out
 * @QKD_KAPI_KEY_PROBE: the "qkd" key type. With @desc: request_key() of
 *	that description by the caller (@lookup_ret 0 or its -errno); if
 *	found, @out is HMAC-SHA256 of @in keyed with the payload. With
 *	@serial: the key looked up without validating it (an expired key is
 *	found), @validate_ret what key_validate() says. Either way
 *	@payload_len is the payload's length read under key->sem, 0 when the
 *	key has no payload (revoked, expired), and @index/@key_id the
 *	payload's.
 */
enum qkd_kapi_op {
	QKD_KAPI_SIZE = 1,
	QKD_KAPI_TAKE,
	QKD_KAPI_USE,
	QKD_KAPI_SKCIPHER,
	QKD_KAPI_AEAD,
	QKD_KAPI_SHASH,
	QKD_KAPI_KEY_PROBE,
};

#define QKD_KAPI_F_USE_FAIL	0x1U

/* qkd_kapi_req.select: the values of enum qkd_key_select (linux/qkd.h) */
#define QKD_KAPI_SEL_NEXT	0
#define QKD_KAPI_SEL_INDEX	1
#define QKD_KAPI_SEL_KEY_ID	2

struct qkd_kapi_req {
	__u32 size;		/* sizeof(struct qkd_kapi_req) */
	__u32 op;		/* enum qkd_kapi_op */
	__u32 select;		/* QKD_KAPI_SEL_* (others: passed on) */
	__u32 key_len;		/* 0 or a prefix length */
	__u8 stream_id[16];
	__u8 key_id[16];	/* in (QKD_KEY_AT_KEY_ID) / out */
	__u64 index;		/* in (QKD_KEY_AT_INDEX) / out */
	__s32 ret;		/* out: what the API call returned */
	__u32 flags;		/* QKD_KAPI_F_* */
	__u32 buflen;		/* QKD_KAPI_TAKE */
	__u32 assoclen;		/* QKD_KAPI_AEAD */
	__u32 in_len;
	__u32 out_len;		/* out */
	__s32 serial;		/* QKD_KAPI_KEY_PROBE */
	__s32 lookup_ret;	/* out */
	__s32 validate_ret;	/* out */
	__u32 payload_len;	/* out */
	char alg[64];		/* crypto API name, NUL-terminated */
	char desc[80];		/* key description, NUL-terminated */
	__u8 iv[16];
	__u8 in[QKD_KAPI_DATA_MAX];
	__u8 out[QKD_KAPI_DATA_MAX + QKD_KAPI_TAG_LEN + QKD_KAPI_MAC_LEN];
};

#define QKD_KAPI_IOC_CALL	_IOWR('Q', 0xa0, struct qkd_kapi_req)

#endif /* _QKD_KAPI_TEST_H */
