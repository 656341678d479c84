// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: keys for the kernel crypto API. Other modules take a key into a
 * buffer or have a transform keyed from the store; userspace has an AF_ALG
 * socket keyed through /dev/qkd without ever seeing the key
 * (Documentation/kernel-api.md, Documentation/abi.md).
 *
 * Every path takes the key out of the store, hands it to one consumer, and
 * then either frees it with kfree_sensitive() (the consumer took it: the
 * index is delivered) or puts it back at its index (the consumer refused
 * it and kept nothing: a transform whose setkey failed needs a new key
 * before it can be used, and nobody can read a key out of a transform).
 */

#include <linux/export.h>
#include <linux/file.h>
#include <linux/net.h>
#include <linux/qkd.h>
#include <linux/slab.h>
#include <linux/sockptr.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <crypto/aead.h>
#include <crypto/hash.h>
#include <crypto/if_alg.h>
#include <crypto/skcipher.h>

#include "compat.h"
#include "qkd.h"

/**
 * qkd_key_take_begin() - take a key out of the store, not yet delivered
 * @qn: the node
 * @ref: which key; on success its index and key_id say which was taken
 * @len: key bytes wanted: 0 for the key size, else QKD_USE_KEY_LEN_MIN up
 *	to the key size (a prefix of the key)
 * @t: filled on success; end it with qkd_key_take_end()
 *
 * Return: the key bytes to use (> 0), or -errno with nothing taken:
 * -EINVAL for a bad @ref, -ENOENT no such stream, -ERANGE for @len, and
 * the errnos of qkd_consumer_take() (-EBUSY: an SA binding owns the
 * stream).
 */
int qkd_key_take_begin(struct qkd_net *qn, struct qkd_key_ref *ref,
		       unsigned int len, struct qkd_taken *t)
{
	bool by_index = true;
	u64 index = 0;
	int err;

	switch (ref->select) {
	case QKD_KEY_NEXT:
		by_index = false;
		break;
	case QKD_KEY_AT_INDEX:
		index = ref->index;
		break;
	case QKD_KEY_AT_KEY_ID:
		/* Bytes 0..8 of a key ID are those of its stream ID. */
		if (memcmp(ref->key_id, ref->stream_id, 9))
			return -EINVAL;
		index = qkd_key_id_to_index(ref->key_id, ref->stream_id);
		break;
	default:
		return -EINVAL;
	}
	if (index > QKD_INDEX_MAX)
		return -EINVAL;

	err = qkd_consumer_open(&t->c, qn, ref->stream_id);
	if (err)
		return err;
	if (!len)
		len = t->c.stream->key_size;
	err = -ERANGE;
	if (len < QKD_USE_KEY_LEN_MIN || len > t->c.stream->key_size)
		goto err_close;
	err = qkd_consumer_take(&t->c, by_index, index, &t->key, &t->res);
	if (err)
		goto err_close;
	ref->index = t->res.index;
	qkd_key_id_from_index(ref->key_id, t->c.stream->id, t->res.index);
	return len;

err_close:
	qkd_consumer_close(&t->c);
	return err;
}

/**
 * qkd_key_take_end() - finish what qkd_key_take_begin() started
 * @t: the taken key
 * @used: the consumer has the key: zero it, the index is delivered. Else
 *	the key goes back to its index, as if never taken.
 */
void qkd_key_take_end(struct qkd_taken *t, bool used)
{
	if (used) {
		kfree_sensitive(t->key);
		qkd_consumer_used(&t->c, &t->res);
	} else {
		qkd_consumer_return(&t->c, t->res.index, t->key);
	}
	t->key = NULL;
	qkd_consumer_close(&t->c);
}

/* qkd_key_use() on a node. */
int qkd_key_use_qn(struct qkd_net *qn, struct qkd_key_ref *ref,
		   unsigned int len, qkd_key_use_fn use, void *ctx)
{
	struct qkd_taken t;
	int ret, err;

	ret = qkd_key_take_begin(qn, ref, len, &t);
	if (ret < 0)
		return ret;
	err = use(ctx, t.key, ret);
	qkd_key_take_end(&t, !err);
	return err ? err : ret;
}

/**
 * qkd_key_use() - hand one key of a stream to a consumer
 * @net: the network namespace whose store holds the stream (the caller
 *	holds a reference)
 * @ref: which key; @ref->index and @ref->key_id say which one was taken,
 *	already when @use is called
 * @len: key bytes to hand over: 0 for the stream's key size, else
 *	QKD_USE_KEY_LEN_MIN up to the key size (the first @len bytes)
 * @use: the consumer, called with no lock held (it may sleep)
 * @ctx: passed to @use
 *
 * Return: the number of key bytes used, or -errno. If @use fails, its
 * errno is returned and the key is back in the store. -EBUSY: the stream
 * belongs to an in-kernel consumer (an SA binding), nothing taken.
 */
int qkd_key_use(struct net *net, struct qkd_key_ref *ref, unsigned int len,
		qkd_key_use_fn use, void *ctx)
{
	return qkd_key_use_qn(qkd_net(net), ref, len, use, ctx);
}
EXPORT_SYMBOL_GPL(qkd_key_use);

/**
 * qkd_key_size() - key size of a stream
 * @net: the network namespace
 * @stream_id: the stream
 *
 * Return: the size in bytes, or -ENOENT.
 */
int qkd_key_size(struct net *net, const u8 stream_id[QKD_STREAM_ID_LEN])
{
	struct qkd_stream *s = qkd_stream_get(qkd_net(net), stream_id);
	int size;

	if (!s)
		return -ENOENT;
	size = s->key_size;
	qkd_stream_put(s);
	return size;
}
EXPORT_SYMBOL_GPL(qkd_key_size);

struct qkd_buf {
	u8 *buf;
	unsigned int len;
};

static int qkd_buf_use(void *ctx, const u8 *key, unsigned int len)
{
	struct qkd_buf *b = ctx;

	if (len > b->len)
		return -ERANGE;
	memcpy(b->buf, key, len);
	return 0;
}

/**
 * qkd_key_take() - copy one whole key of a stream into a buffer
 * @net: the network namespace (the caller holds a reference)
 * @ref: which key; on success, which key was taken
 * @buf: where the key goes; the caller zeroes it (memzero_explicit())
 *	when done
 * @buflen: size of @buf; below the stream's key size: -ERANGE, nothing
 *	taken
 *
 * Return: the key size, or -errno with nothing taken.
 */
int qkd_key_take(struct net *net, struct qkd_key_ref *ref, u8 *buf,
		 unsigned int buflen)
{
	struct qkd_buf b = { .buf = buf, .len = buflen };
	int size;

	/* Check first, so that a small buffer never takes a key even briefly. */
	size = qkd_key_size(net, ref->stream_id);
	if (size < 0)
		return size;
	if (buflen < (unsigned int)size)
		return -ERANGE;
	return qkd_key_use(net, ref, size, qkd_buf_use, &b);
}
EXPORT_SYMBOL_GPL(qkd_key_take);

/* ---------------------------------------------------------- transforms */

static int qkd_skcipher_use(void *tfm, const u8 *key, unsigned int len)
{
	return crypto_skcipher_setkey(tfm, key, len);
}

static int qkd_aead_use(void *tfm, const u8 *key, unsigned int len)
{
	return crypto_aead_setkey(tfm, key, len);
}

static int qkd_shash_use(void *tfm, const u8 *key, unsigned int len)
{
	return crypto_shash_setkey(tfm, key, len);
}

/**
 * qkd_crypto_skcipher_setkey() - set a skcipher's key from the store
 * @tfm: the transform
 * @net: the network namespace (the caller holds a reference)
 * @ref: which key; on success, which key was taken
 * @keylen: 0 for the stream's key size, else the first @keylen bytes
 *
 * The key bytes exist only in the store's buffer, which is zeroed, and in
 * the transform. If the transform rejects the key, the key goes back.
 *
 * Return: 0, or -errno (the transform's, if it rejected the key).
 */
int qkd_crypto_skcipher_setkey(struct crypto_skcipher *tfm, struct net *net,
			       struct qkd_key_ref *ref, unsigned int keylen)
{
	int ret = qkd_key_use(net, ref, keylen, qkd_skcipher_use, tfm);

	return ret < 0 ? ret : 0;
}
EXPORT_SYMBOL_GPL(qkd_crypto_skcipher_setkey);

/**
 * qkd_crypto_aead_setkey() - set an AEAD's key from the store
 * @tfm: the transform (set its authsize separately)
 * @net: the network namespace (the caller holds a reference)
 * @ref: which key; on success, which key was taken
 * @keylen: 0 for the stream's key size, else the first @keylen bytes
 *
 * Return: 0, or -errno (the transform's, if it rejected the key).
 */
int qkd_crypto_aead_setkey(struct crypto_aead *tfm, struct net *net,
			   struct qkd_key_ref *ref, unsigned int keylen)
{
	int ret = qkd_key_use(net, ref, keylen, qkd_aead_use, tfm);

	return ret < 0 ? ret : 0;
}
EXPORT_SYMBOL_GPL(qkd_crypto_aead_setkey);

/**
 * qkd_crypto_shash_setkey() - set a keyed hash's key (HMAC) from the store
 * @tfm: the transform
 * @net: the network namespace (the caller holds a reference)
 * @ref: which key; on success, which key was taken
 * @keylen: 0 for the stream's key size, else the first @keylen bytes
 *
 * Return: 0, or -errno (the transform's, if it rejected the key).
 */
int qkd_crypto_shash_setkey(struct crypto_shash *tfm, struct net *net,
			    struct qkd_key_ref *ref, unsigned int keylen)
{
	int ret = qkd_key_use(net, ref, keylen, qkd_shash_use, tfm);

	return ret < 0 ? ret : 0;
}
EXPORT_SYMBOL_GPL(qkd_crypto_shash_setkey);

/* -------------------------------------------------------------- ioctls */

/* The selection of the QKD_IOC_ALG_SETKEY and QKD_IOC_LOGON_KEY structs. */
int qkd_key_ref_from_user(struct qkd_key_ref *ref, u32 flags,
			  const u8 *stream_id, u64 index, const u8 *key_id)
{
	memcpy(ref->stream_id, stream_id, QKD_STREAM_ID_LEN);
	memcpy(ref->key_id, key_id, QKD_KEY_ID_LEN);
	ref->index = index;
	switch (flags) {
	case 0:
		ref->select = QKD_KEY_NEXT;
		return 0;
	case QKD_USE_F_BY_INDEX:
		ref->select = QKD_KEY_AT_INDEX;
		return 0;
	case QKD_USE_F_BY_KEY_ID:
		ref->select = QKD_KEY_AT_KEY_ID;
		return 0;
	default:
		return -EINVAL;
	}
}

/*
 * A socket that ALG_SET_KEY applies to: AF_ALG, and the transform socket
 * itself (bind()), not an operation socket from accept(), which has a
 * parent and does not take keys.
 */
static int qkd_alg_check(struct socket *sock)
{
	if (sock->sk->sk_family != PF_ALG)
		return -EAFNOSUPPORT;
	if (alg_sk(sock->sk)->parent || !sock->ops->setsockopt)
		return -EOPNOTSUPP;
	return 0;
}

static int qkd_alg_use(void *ctx, const u8 *key, unsigned int len)
{
	struct socket *sock = ctx;

	/*
	 * Through the path setsockopt(2) takes, so that the LSM hook
	 * security_socket_setsockopt() can refuse (its error is returned and
	 * the key is put back untouched), where the kernel exports it (6.9
	 * on, see qkd_sock_setsockopt()). af_alg's alg_setsockopt() locks the
	 * socket itself and copies the key with copy_from_sockptr(), which
	 * takes a kernel pointer (6.1 and 6.12), into a buffer it zeroes. It
	 * refuses an unbound socket (ENOPROTOOPT) and one with keyed
	 * operation sockets (EBUSY); either way, or if the algorithm rejects
	 * the key, nothing kept it.
	 */
	return qkd_sock_setsockopt(sock, SOL_ALG, ALG_SET_KEY,
				   KERNEL_SOCKPTR((void *)key), len);
}

long qkd_ioctl_alg_setkey(struct qkd_net *qn, void __user *uarg)
{
	struct qkd_alg_setkey req;
	struct qkd_key_ref ref;
	struct socket *sock;
	int err, ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.size != sizeof(req) ||
	    memchr_inv(req.reserved, 0, sizeof(req.reserved)))
		return -EINVAL;
	err = qkd_key_ref_from_user(&ref, req.flags, req.stream_id, req.index,
				    req.key_id);
	if (err)
		return err;
	/*
	 * Once the socket has the key, the key cannot be put back: make sure
	 * the answer can be written before taking it.
	 */
	if (copy_to_user(uarg, &req, sizeof(req)))
		return -EFAULT;

	sock = sockfd_lookup(req.alg_fd, &err);
	if (!sock)
		return err;
	ret = qkd_alg_check(sock);
	if (!ret)
		ret = qkd_key_use_qn(qn, &ref, req.key_len, qkd_alg_use, sock);
	sockfd_put(sock);
	if (ret < 0)
		return ret;

	req.index = ref.index;
	memcpy(req.key_id, ref.key_id, QKD_KEY_ID_LEN);
	req.key_len = ret;
	/* Only if the memory went away meanwhile: the socket is keyed. */
	return copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
}
