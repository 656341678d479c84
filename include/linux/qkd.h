/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkd: QKD keys for in-kernel users (other modules). Documented in
 * Documentation/kernel-api.md.
 *
 * A key is named by (network namespace, stream ID, index); each index is
 * handed out once per end, whichever path takes it (/dev/qkd, AF_ALG, a
 * keyring, or these functions). Every function here may sleep.
 */
#ifndef _LINUX_QKD_H
#define _LINUX_QKD_H

#include <linux/key.h>
#include <linux/types.h>
#include <uapi/linux/qkd.h>

struct net;
struct crypto_skcipher;
struct crypto_aead;
struct crypto_shash;

/**
 * enum qkd_key_select - which key of a stream to take
 * @QKD_KEY_NEXT: the lowest stored index (ETSI GS QKD 014 enc_keys)
 * @QKD_KEY_AT_INDEX: the key at qkd_key_ref.index (014 dec_keys)
 * @QKD_KEY_AT_KEY_ID: the key named qkd_key_ref.key_id (014 dec_keys)
 */
enum qkd_key_select {
	QKD_KEY_NEXT,
	QKD_KEY_AT_INDEX,
	QKD_KEY_AT_KEY_ID,
};

/**
 * struct qkd_key_ref - names the key to take; tells which was taken
 * @stream_id: in: the stream
 * @select: in: which key
 * @index: in with QKD_KEY_AT_INDEX; out: the index taken
 * @key_id: in with QKD_KEY_AT_KEY_ID; out: the ETSI 014 key_ID taken
 */
struct qkd_key_ref {
	u8 stream_id[QKD_STREAM_ID_LEN];
	enum qkd_key_select select;
	u64 index;
	u8 key_id[QKD_KEY_ID_LEN];
};

/*
 * Called with the key's first @len bytes. Returns 0 if it used the key,
 * or -errno if not; on failure it must neither have kept nor exposed the
 * bytes (a tfm whose setkey failed is left needing a key), and the key
 * goes back into the store at its index.
 */
typedef int (*qkd_key_use_fn)(void *ctx, const u8 *key, unsigned int len);

int qkd_key_size(struct net *net, const u8 stream_id[QKD_STREAM_ID_LEN]);
int qkd_key_take(struct net *net, struct qkd_key_ref *ref, u8 *buf,
		 unsigned int buflen);
int qkd_key_use(struct net *net, struct qkd_key_ref *ref, unsigned int len,
		qkd_key_use_fn use, void *ctx);

int qkd_crypto_skcipher_setkey(struct crypto_skcipher *tfm, struct net *net,
			       struct qkd_key_ref *ref, unsigned int keylen);
int qkd_crypto_aead_setkey(struct crypto_aead *tfm, struct net *net,
			   struct qkd_key_ref *ref, unsigned int keylen);
int qkd_crypto_shash_setkey(struct crypto_shash *tfm, struct net *net,
			    struct qkd_key_ref *ref, unsigned int keylen);

/* ------------------------------------------------------------------------
 * The "qkd" key type
 * ------------------------------------------------------------------------
 */
extern struct key_type key_type_qkd;

/**
 * struct qkd_key_payload - payload of a key of type "qkd"
 * @rcu: frees the payload after a revocation
 * @index: index of the key in its stream
 * @stream_id: the stream
 * @key_id: ETSI 014 key_ID of (stream, index)
 * @len: bytes in @data
 * @data: the key bytes (zeroed when the payload is freed)
 *
 * Read it under the key's semaphore (down_read(&key->sem), then
 * qkd_key_payload_locked()) or RCU (dereference_key_rcu()); NULL once the
 * key is revoked.
 */
struct qkd_key_payload {
	struct rcu_head rcu;
	u64 index;
	u8 stream_id[QKD_STREAM_ID_LEN];
	u8 key_id[QKD_KEY_ID_LEN];
	u32 len;
	u8 data[] __aligned(__alignof__(u64));
};

static inline const struct qkd_key_payload *
qkd_key_payload_locked(const struct key *key)
{
	return (const struct qkd_key_payload *)dereference_key_locked(key);
}

#endif /* _LINUX_QKD_H */
