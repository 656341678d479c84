// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd_kapi_test: a test module that is an in-kernel user of qkd.ko. It calls
 * the exported API of include/linux/qkd.h (qkd_key_size, qkd_key_take,
 * qkd_key_use, qkd_crypto_{skcipher,aead,shash}_setkey) and reads keys of
 * the "qkd" key type, on behalf of tests/kernel/test_kapi.c, which drives it
 * through /dev/qkd_kapi_test (tests/kmod/qkd_kapi_test.h). It is also the
 * worked example of Documentation/kernel-api.md.
 *
 * Key bytes never leave the kernel: what goes back to userspace is what a
 * transform keyed from the store computed (a ciphertext, a MAC), which the
 * test compares with what the other end's copy of the key computes.
 */

#include <linux/build_bug.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/key.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/nsproxy.h>
#include <linux/qkd.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <crypto/aead.h>
#include <crypto/hash.h>
#include <crypto/skcipher.h>
#include <net/net_namespace.h>

#include "qkd_kapi_test.h"

/* HMAC-SHA256 of @in under @key into @mac (QKD_KAPI_MAC_LEN bytes). */
static int kapi_hmac(const u8 *key, unsigned int keylen, const u8 *in,
		     unsigned int inlen, u8 *mac)
{
	struct crypto_shash *tfm = crypto_alloc_shash("hmac(sha256)", 0, 0);
	int err;

	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	err = crypto_shash_setkey(tfm, key, keylen);
	if (!err)
		err = crypto_shash_tfm_digest(tfm, in, inlen, mac);
	/* Zeroes the key in the transform's context. */
	crypto_free_shash(tfm);
	return err;
}

static_assert(QKD_KAPI_SEL_NEXT == QKD_KEY_NEXT);
static_assert(QKD_KAPI_SEL_INDEX == QKD_KEY_AT_INDEX);
static_assert(QKD_KAPI_SEL_KEY_ID == QKD_KEY_AT_KEY_ID);

static void kapi_ref(const struct qkd_kapi_req *r, struct qkd_key_ref *ref)
{
	memset(ref, 0, sizeof(*ref));
	memcpy(ref->stream_id, r->stream_id, QKD_STREAM_ID_LEN);
	memcpy(ref->key_id, r->key_id, QKD_KEY_ID_LEN);
	ref->select = r->select;
	ref->index = r->index;
}

/* What was taken goes back in the request. */
static void kapi_ref_out(struct qkd_kapi_req *r, const struct qkd_key_ref *ref)
{
	r->index = ref->index;
	memcpy(r->key_id, ref->key_id, QKD_KEY_ID_LEN);
}

static int kapi_take(struct net *net, struct qkd_kapi_req *r)
{
	unsigned int buflen = r->buflen ? r->buflen : QKD_KEY_SIZE_MAX;
	struct qkd_key_ref ref;
	u8 *buf;
	int ret;

	if (buflen > QKD_KEY_SIZE_MAX)
		return -EINVAL;
	buf = kmalloc(buflen, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	kapi_ref(r, &ref);
	ret = qkd_key_take(net, &ref, buf, buflen);
	r->ret = ret;
	if (ret > 0) {
		kapi_ref_out(r, &ref);
		r->ret = kapi_hmac(buf, ret, r->in, r->in_len, r->out);
		if (!r->ret) {
			r->ret = ret;
			r->out_len = QKD_KAPI_MAC_LEN;
		}
	}
	/* The caller of qkd_key_take() zeroes its copy. */
	kfree_sensitive(buf);
	return 0;
}

static int kapi_use_cb(void *ctx, const u8 *key, unsigned int len)
{
	struct qkd_kapi_req *r = ctx;

	/* A refusal keeps and shows nothing: the key goes back. */
	if (r->flags & QKD_KAPI_F_USE_FAIL)
		return -EIO;
	return kapi_hmac(key, len, r->in, r->in_len, r->out);
}

static int kapi_use(struct net *net, struct qkd_kapi_req *r)
{
	struct qkd_key_ref ref;

	kapi_ref(r, &ref);
	r->ret = qkd_key_use(net, &ref, r->key_len, kapi_use_cb, r);
	if (r->ret > 0) {
		kapi_ref_out(r, &ref);
		r->out_len = QKD_KAPI_MAC_LEN;
	}
	return 0;
}

static int kapi_skcipher(struct net *net, struct qkd_kapi_req *r)
{
	struct crypto_skcipher *tfm;
	struct skcipher_request *req;
	DECLARE_CRYPTO_WAIT(wait);
	struct qkd_key_ref ref;
	struct scatterlist sg;
	u8 iv[16];
	int err;

	tfm = crypto_alloc_skcipher(r->alg, 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	err = -EINVAL;
	if (crypto_skcipher_ivsize(tfm) > sizeof(iv))
		goto out;
	kapi_ref(r, &ref);
	r->ret = qkd_crypto_skcipher_setkey(tfm, net, &ref, r->key_len);
	err = 0;
	if (r->ret)
		goto out;
	kapi_ref_out(r, &ref);

	req = skcipher_request_alloc(tfm, GFP_KERNEL);
	if (!req) {
		r->ret = -ENOMEM;
		goto out;
	}
	memcpy(iv, r->iv, sizeof(iv));
	memcpy(r->out, r->in, r->in_len);
	sg_init_one(&sg, r->out, r->in_len);
	skcipher_request_set_callback(req, CRYPTO_TFM_REQ_MAY_SLEEP,
				      crypto_req_done, &wait);
	skcipher_request_set_crypt(req, &sg, &sg, r->in_len, iv);
	r->ret = crypto_wait_req(crypto_skcipher_encrypt(req), &wait);
	if (!r->ret)
		r->out_len = r->in_len;
	skcipher_request_free(req);
out:
	crypto_free_skcipher(tfm);
	return err;
}

static int kapi_aead(struct net *net, struct qkd_kapi_req *r)
{
	struct crypto_aead *tfm;
	struct aead_request *req;
	DECLARE_CRYPTO_WAIT(wait);
	struct qkd_key_ref ref;
	struct scatterlist sg;
	u8 iv[16];
	int err;

	if (r->assoclen > r->in_len)
		return -EINVAL;
	tfm = crypto_alloc_aead(r->alg, 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	err = -EINVAL;
	if (crypto_aead_ivsize(tfm) > sizeof(iv))
		goto out;
	kapi_ref(r, &ref);
	r->ret = qkd_crypto_aead_setkey(tfm, net, &ref, r->key_len);
	err = 0;
	if (r->ret)
		goto out;
	kapi_ref_out(r, &ref);
	r->ret = crypto_aead_setauthsize(tfm, QKD_KAPI_TAG_LEN);
	if (r->ret)
		goto out;

	req = aead_request_alloc(tfm, GFP_KERNEL);
	if (!req) {
		r->ret = -ENOMEM;
		goto out;
	}
	memcpy(iv, r->iv, sizeof(iv));
	memcpy(r->out, r->in, r->in_len);
	sg_init_one(&sg, r->out, r->in_len + QKD_KAPI_TAG_LEN);
	aead_request_set_callback(req, CRYPTO_TFM_REQ_MAY_SLEEP,
				  crypto_req_done, &wait);
	aead_request_set_ad(req, r->assoclen);
	aead_request_set_crypt(req, &sg, &sg, r->in_len - r->assoclen, iv);
	r->ret = crypto_wait_req(crypto_aead_encrypt(req), &wait);
	if (!r->ret)
		r->out_len = r->in_len + QKD_KAPI_TAG_LEN;
	aead_request_free(req);
out:
	crypto_free_aead(tfm);
	return err;
}

static int kapi_shash(struct net *net, struct qkd_kapi_req *r)
{
	struct crypto_shash *tfm;
	struct qkd_key_ref ref;
	int err = 0;

	tfm = crypto_alloc_shash(r->alg, 0, 0);
	if (IS_ERR(tfm))
		return PTR_ERR(tfm);
	if (crypto_shash_digestsize(tfm) > QKD_KAPI_DATA_MAX) {
		err = -EINVAL;
		goto out;
	}
	kapi_ref(r, &ref);
	r->ret = qkd_crypto_shash_setkey(tfm, net, &ref, r->key_len);
	if (r->ret)
		goto out;
	kapi_ref_out(r, &ref);
	r->ret = crypto_shash_tfm_digest(tfm, r->in, r->in_len, r->out);
	if (!r->ret)
		r->out_len = crypto_shash_digestsize(tfm);
out:
	crypto_free_shash(tfm);
	return err;
}

/* The payload of a qkd key, read as Documentation/kernel-api.md says. */
static void kapi_read_payload(struct key *key, struct qkd_kapi_req *r,
			      bool mac)
{
	const struct qkd_key_payload *p;

	down_read(&key->sem);
	/* After unregister_key_type() the key's type is no longer ours. */
	p = key->type == &key_type_qkd ? qkd_key_payload_locked(key) : NULL;
	if (p) {
		r->payload_len = p->len;
		r->index = p->index;
		memcpy(r->key_id, p->key_id, QKD_KEY_ID_LEN);
		if (mac && !kapi_hmac(p->data, p->len, r->in, r->in_len,
				      r->out))
			r->out_len = QKD_KAPI_MAC_LEN;
	}
	up_read(&key->sem);
}

static int kapi_key_probe(struct qkd_kapi_req *r)
{
	struct key *key;

	r->lookup_ret = -ENOKEY;
	r->validate_ret = -ENOKEY;
	if (r->desc[0]) {
		/* Searches the caller's keyrings: an expired key is not found. */
		key = request_key(&key_type_qkd, r->desc, NULL);
		if (IS_ERR(key)) {
			r->lookup_ret = PTR_ERR(key);
			return 0;
		}
		r->lookup_ret = 0;
		r->validate_ret = key_validate(key);
		kapi_read_payload(key, r, true);
		key_put(key);
		return 0;
	}
	if (r->serial > 0) {
		/* By serial, not validated: to see an expired key's payload. */
		key_ref_t kref = lookup_user_key(r->serial, 0,
						 KEY_DEFER_PERM_CHECK);

		if (IS_ERR(kref)) {
			r->lookup_ret = PTR_ERR(kref);
			return 0;
		}
		key = key_ref_to_ptr(kref);
		r->lookup_ret = key->type == &key_type_qkd ? 0 : -EINVAL;
		r->validate_ret = key_validate(key);
		if (!r->lookup_ret)
			kapi_read_payload(key, r, false);
		key_ref_put(kref);
		return 0;
	}
	return -EINVAL;
}

static long kapi_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct net *net = file->private_data;
	struct qkd_kapi_req *r;
	int err;

	if (cmd != QKD_KAPI_IOC_CALL)
		return -ENOTTY;
	r = memdup_user((void __user *)arg, sizeof(*r));
	if (IS_ERR(r))
		return PTR_ERR(r);
	err = -EINVAL;
	if (r->size != sizeof(*r) || r->in_len > QKD_KAPI_DATA_MAX ||
	    r->flags & ~QKD_KAPI_F_USE_FAIL)
		goto out;
	r->alg[sizeof(r->alg) - 1] = 0;
	r->desc[sizeof(r->desc) - 1] = 0;
	r->ret = 0;
	r->out_len = 0;
	r->payload_len = 0;
	memset(r->out, 0, sizeof(r->out));

	switch (r->op) {
	case QKD_KAPI_SIZE:
		r->ret = qkd_key_size(net, r->stream_id);
		err = 0;
		break;
	case QKD_KAPI_TAKE:
		err = kapi_take(net, r);
		break;
	case QKD_KAPI_USE:
		err = kapi_use(net, r);
		break;
	case QKD_KAPI_SKCIPHER:
		err = kapi_skcipher(net, r);
		break;
	case QKD_KAPI_AEAD:
		err = kapi_aead(net, r);
		break;
	case QKD_KAPI_SHASH:
		err = kapi_shash(net, r);
		break;
	case QKD_KAPI_KEY_PROBE:
		err = kapi_key_probe(r);
		break;
	}
	if (!err && copy_to_user((void __user *)arg, r, sizeof(*r)))
		err = -EFAULT;
out:
	/* It may hold results computed with a key: zero it too. */
	kfree_sensitive(r);
	return err;
}

/* Bound to the opener's network namespace, as /dev/qkd is. */
static int kapi_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	file->private_data = get_net(current->nsproxy->net_ns);
	return 0;
}

static int kapi_release(struct inode *inode, struct file *file)
{
	put_net(file->private_data);
	return 0;
}

static const struct file_operations kapi_fops = {
	.owner = THIS_MODULE,
	.open = kapi_open,
	.release = kapi_release,
	.unlocked_ioctl = kapi_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
};

static struct miscdevice kapi_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = QKD_KAPI_DEV_NAME,
	.fops = &kapi_fops,
	.mode = 0600,
};

module_misc_device(kapi_dev);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Test user of the qkd in-kernel API (tests only)");
MODULE_AUTHOR("qkd developers");
