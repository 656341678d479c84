// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: /dev/qkd, where applications take keys (ETSI GS QKD 014 enc_keys and
 * dec_keys, GS QKD 004 streams).
 *
 * An open file belongs to the network namespace of its opener for its whole
 * life. Access is gated by the device node's permissions (0600 root) and the
 * file's open mode (taking keys needs it open for writing); the ioctls take
 * no capability so that a group can be granted key access without admin
 * rights.
 */

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/nsproxy.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "qkd.h"

/**
 * struct qkd_file - state of one open /dev/qkd
 * @net: the opener's namespace (referenced)
 * @qn: its key store
 * @lock: protects @poll_stream and @poll_set
 * @poll_stream: the stream poll() watches
 * @poll_set: whether QKD_IOC_SET_POLL_STREAM was called
 */
struct qkd_file {
	struct net *net;
	struct qkd_net *qn;
	spinlock_t lock; /* protects poll_stream, poll_set */
	u8 poll_stream[QKD_STREAM_ID_LEN];
	bool poll_set;
};

static int qkd_open(struct inode *inode, struct file *file)
{
	struct qkd_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL_ACCOUNT);
	if (!f)
		return -ENOMEM;
	f->net = get_net(current->nsproxy->net_ns);
	f->qn = qkd_net(f->net);
	spin_lock_init(&f->lock);
	file->private_data = f;
	return nonseekable_open(inode, file);
}

static int qkd_release(struct inode *inode, struct file *file)
{
	struct qkd_file *f = file->private_data;

	put_net(f->net);
	kfree(f);
	return 0;
}

/* Reserved fields are for future use and must be zero now. */
static bool qkd_reserved_zero(const void *p, size_t len)
{
	return !memchr_inv(p, 0, len);
}

static long qkd_ioctl_info(void __user *uarg)
{
	struct qkd_info info;

	if (copy_from_user(&info, uarg, sizeof(info)))
		return -EFAULT;
	if (info.size != sizeof(info) || info.flags || info.reserved0 ||
	    !qkd_reserved_zero(info.reserved, sizeof(info.reserved)))
		return -EINVAL;

	info.abi_version = QKD_ABI_VERSION;
	info.key_size_min = QKD_KEY_SIZE_MIN;
	info.key_size_max = QKD_KEY_SIZE_MAX;
	info.features = QKD_FEATURES;
	return copy_to_user(uarg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long qkd_ioctl_stream_status(struct qkd_file *f, void __user *uarg)
{
	struct qkd_stream_status st;
	struct qkd_stream *s;

	if (copy_from_user(&st, uarg, sizeof(st)))
		return -EFAULT;
	if (st.size != sizeof(st) || st.flags || st.reserved0 ||
	    !qkd_reserved_zero(st.reserved, sizeof(st.reserved)))
		return -EINVAL;

	s = qkd_stream_get(f->qn, st.stream_id);
	if (!s)
		return -ENOENT;
	st.link_id = s->link->id;
	st.key_size = s->key_size;
	st.stored_key_count = qkd_stream_stored(s);
	st.max_key_count = READ_ONCE(s->max_keys);
	st.max_key_per_request = QKD_GET_KEYS_MAX;
	st.min_key_size = QKD_KEY_SIZE_MIN;
	st.max_key_size = QKD_KEY_SIZE_MAX;
	st.next_index = qkd_stream_first_index(s);
	qkd_stream_put(s);

	return copy_to_user(uarg, &st, sizeof(st)) ? -EFAULT : 0;
}

/*
 * Delivery to userspace: a key is delivered at most once, and no byte of a
 * key reaches the caller without the key being used up.
 *
 * Everything that can be checked is checked before a key is taken (sizes,
 * flags, reserved fields, access_ok() of every pointer). Once taken, what
 * carries no key byte (the request struct, GET_KEYS' indices) is written
 * first: if that faults, no key byte left the kernel and the keys go back
 * to their indices. Key bytes go last. copy_to_user() stores nothing past
 * what it reports as copied (the raw_copy_to_user() contract in
 * include/linux/uaccess.h): if it copied nothing at all, the caller saw
 * nothing and the key goes back; if it copied part of the key (a buffer
 * that ends on a PROT_NONE page), the caller holds key bytes, so the key
 * is consumed as if delivered (zeroed, counted, its events sent) and the
 * call fails with EFAULT.
 */

/* Key bytes written to userspace: none, part or all of them. */
enum qkd_copy {
	QKD_COPY_NONE,
	QKD_COPY_PART,
	QKD_COPY_ALL,
};

static enum qkd_copy qkd_copy_key(u8 __user *ubuf, const u8 *key, u32 len)
{
	unsigned long left = copy_to_user(ubuf, key, len);

	if (!left)
		return QKD_COPY_ALL;
	return left == len ? QKD_COPY_NONE : QKD_COPY_PART;
}

static long qkd_ioctl_get_key(struct qkd_file *f, void __user *uarg, bool by_id)
{
	struct qkd_take_result res;
	struct qkd_key_request req;
	struct qkd_consumer c;
	struct qkd_stream *s;
	enum qkd_copy copied;
	u8 __user *ubuf;
	u64 index = 0;
	u8 *key;
	long err;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.size != sizeof(req) || req.reserved0 ||
	    !qkd_reserved_zero(req.reserved, sizeof(req.reserved)) ||
	    req.flags & ~(by_id ? QKD_KEY_FLAGS_ALL : 0))
		return -EINVAL;
	if (by_id) {
		if (req.flags & QKD_KEY_F_BY_KEY_ID) {
			/* Bytes 0..8 of a key ID are those of its stream ID. */
			if (memcmp(req.key_id, req.stream_id, 9))
				return -EINVAL;
			index = qkd_key_id_to_index(req.key_id, req.stream_id);
		} else {
			index = req.index;
		}
		if (index > QKD_INDEX_MAX)
			return -EINVAL;
	}

	err = qkd_consumer_open(&c, f->qn, req.stream_id);
	if (err)
		return err;
	s = c.stream;
	err = -ERANGE;
	if (req.key_len < s->key_size)
		goto out_put;
	ubuf = u64_to_user_ptr(req.key_ptr);
	err = -EFAULT;
	if (!access_ok(ubuf, s->key_size))
		goto out_put;

	err = qkd_consumer_take(&c, by_id, index, &key, &res);
	if (err)
		goto out_put;

	req.index = res.index;
	qkd_key_id_from_index(req.key_id, s->id, res.index);
	req.key_len = s->key_size;
	copied = QKD_COPY_NONE;
	if (!copy_to_user(uarg, &req, sizeof(req)))
		copied = qkd_copy_key(ubuf, key, s->key_size);
	if (copied == QKD_COPY_NONE) {
		qkd_consumer_return(&c, res.index, key);
		err = -EFAULT;
		goto out_put;
	}
	/* All of it, or part: either way the caller has seen the key. */
	kfree_sensitive(key);
	qkd_consumer_used(&c, &res);
	err = copied == QKD_COPY_ALL ? 0 : -EFAULT;
out_put:
	qkd_consumer_close(&c);
	return err;
}

static long qkd_ioctl_get_keys(struct qkd_file *f, void __user *uarg)
{
	struct qkd_take_result res;
	struct qkd_keys_request req;
	enum qkd_copy copied = QKD_COPY_NONE;
	u8 __user *ukeys;
	u64 __user *uindices;
	struct qkd_consumer c;
	struct qkd_stream *s;
	u8 **keys = NULL;
	u64 *indices = NULL;
	u32 got = 0, i;
	long err;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.size != sizeof(req) || req.reserved0 ||
	    !qkd_reserved_zero(req.reserved, sizeof(req.reserved)) ||
	    req.flags & ~QKD_KEYS_FLAGS_ALL ||
	    !req.number || req.number > QKD_GET_KEYS_MAX)
		return -EINVAL;

	err = qkd_consumer_open(&c, f->qn, req.stream_id);
	if (err)
		return err;
	s = c.stream;
	err = -ERANGE;
	if (req.keys_len < (u64)req.number * s->key_size)
		goto out_put;
	ukeys = u64_to_user_ptr(req.keys_ptr);
	uindices = u64_to_user_ptr(req.indices_ptr);
	err = -EFAULT;
	if (!access_ok(ukeys, (size_t)req.number * s->key_size) ||
	    !access_ok(uindices, (size_t)req.number * sizeof(*indices)))
		goto out_put;
	err = -ENOMEM;
	keys = kmalloc_array(req.number, sizeof(*keys), GFP_KERNEL);
	indices = kmalloc_array(req.number, sizeof(*indices), GFP_KERNEL);
	if (!keys || !indices)
		goto out_free;

	err = qkd_consumer_take_batch(&c, req.number,
				      req.flags & QKD_KEYS_F_PARTIAL, keys,
				      indices, &got, &res);
	if (err)
		goto out_free;
	req.number = got;
	req.key_size = s->key_size;
	if (!copy_to_user(uindices, indices, (size_t)got * sizeof(*indices)) &&
	    !copy_to_user(uarg, &req, sizeof(req))) {
		for (i = 0; i < got; i++) {
			copied = qkd_copy_key(ukeys + (size_t)i * s->key_size,
					      keys[i], s->key_size);
			if (copied != QKD_COPY_ALL) {
				/* Keys 0 .. i-1 are out whole. */
				if (i)
					copied = QKD_COPY_PART;
				break;
			}
		}
	}
	/*
	 * The batch goes as one: back whole when not one key byte reached the
	 * caller, else used up whole, although the keys after the one that
	 * faulted were never written. The call fails, so the caller uses none
	 * of them; what it was told (indices, number) names the whole batch;
	 * the counters and events then say what the store lost; and putting
	 * back keys above ones a racing reader took since would hand out
	 * indices out of order. The cost is keys that the caller could have
	 * taken anyway.
	 */
	for (i = 0; i < got; i++) {
		if (copied == QKD_COPY_NONE)
			qkd_consumer_return(&c, indices[i], keys[i]);
		else
			kfree_sensitive(keys[i]);
	}
	if (copied != QKD_COPY_NONE)
		qkd_consumer_used(&c, &res);
	err = copied == QKD_COPY_ALL ? 0 : -EFAULT;
out_free:
	kfree(indices);
	kfree(keys);
out_put:
	qkd_consumer_close(&c);
	return err;
}

static long qkd_ioctl_set_poll_stream(struct qkd_file *f, void __user *uarg)
{
	struct qkd_poll_stream ps;
	struct qkd_stream *s;

	if (copy_from_user(&ps, uarg, sizeof(ps)))
		return -EFAULT;
	if (ps.size != sizeof(ps) || ps.flags ||
	    !qkd_reserved_zero(ps.reserved, sizeof(ps.reserved)))
		return -EINVAL;

	s = qkd_stream_get(f->qn, ps.stream_id);
	if (!s)
		return -ENOENT;
	qkd_stream_put(s);

	spin_lock(&f->lock);
	memcpy(f->poll_stream, ps.stream_id, QKD_STREAM_ID_LEN);
	f->poll_set = true;
	spin_unlock(&f->lock);
	return 0;
}

/* The ioctls that take keys out of the store. */
static bool qkd_ioctl_takes_keys(unsigned int cmd)
{
	switch (cmd) {
	case QKD_IOC_GET_KEY:
	case QKD_IOC_GET_KEY_BY_ID:
	case QKD_IOC_GET_KEYS:
	case QKD_IOC_ALG_SETKEY:
	case QKD_IOC_LOGON_KEY:
		return true;
	default:
		return false;
	}
}

static long qkd_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct qkd_file *f = file->private_data;
	void __user *uarg = (void __user *)arg;

	/*
	 * Taking a key changes the store: a file opened read-only may look
	 * (INFO, STREAM_STATUS, poll) but not take, as for write(2).
	 */
	if (qkd_ioctl_takes_keys(cmd) && !(file->f_mode & FMODE_WRITE))
		return -EBADF;

	switch (cmd) {
	case QKD_IOC_INFO:
		return qkd_ioctl_info(uarg);
	case QKD_IOC_STREAM_STATUS:
		return qkd_ioctl_stream_status(f, uarg);
	case QKD_IOC_GET_KEY:
		return qkd_ioctl_get_key(f, uarg, false);
	case QKD_IOC_GET_KEY_BY_ID:
		return qkd_ioctl_get_key(f, uarg, true);
	case QKD_IOC_GET_KEYS:
		return qkd_ioctl_get_keys(f, uarg);
	case QKD_IOC_SET_POLL_STREAM:
		return qkd_ioctl_set_poll_stream(f, uarg);
	case QKD_IOC_ALG_SETKEY:
		return qkd_ioctl_alg_setkey(f->qn, uarg);
	case QKD_IOC_LOGON_KEY:
		return qkd_ioctl_logon_key(f->qn, uarg);
	default:
		return -ENOTTY;
	}
}

/*
 * The wait queue is the node's, not the stream's: a file may poll a stream
 * that is deleted meanwhile, and the node outlives every file bound to it.
 */
static __poll_t qkd_poll(struct file *file, poll_table *wait)
{
	struct qkd_file *f = file->private_data;
	u8 id[QKD_STREAM_ID_LEN];
	struct qkd_stream *s;
	__poll_t mask = 0;
	bool set;

	poll_wait(file, &f->qn->poll_wait, wait);

	spin_lock(&f->lock);
	set = f->poll_set;
	memcpy(id, f->poll_stream, sizeof(id));
	spin_unlock(&f->lock);
	if (!set)
		return EPOLLERR;

	s = qkd_stream_get(f->qn, id);
	if (!s)
		return EPOLLERR;
	if (qkd_stream_stored(s))
		mask = EPOLLIN | EPOLLRDNORM;
	qkd_stream_put(s);
	return mask;
}

static const struct file_operations qkd_fops = {
	.owner = THIS_MODULE,
	.open = qkd_open,
	.release = qkd_release,
	.unlocked_ioctl = qkd_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.poll = qkd_poll,
};

static struct miscdevice qkd_miscdev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "qkd",
	.fops = &qkd_fops,
	.mode = 0600,
};

/* The store an open /dev/qkd is bound to, or NULL if @file is not one. */
struct qkd_net *qkd_chardev_file_net(struct file *file)
{
	struct qkd_file *f;

	if (file->f_op != &qkd_fops)
		return NULL;
	f = file->private_data;
	return f->qn;
}

int __init qkd_chardev_init(void)
{
	return misc_register(&qkd_miscdev);
}

void qkd_chardev_exit(void)
{
	misc_deregister(&qkd_miscdev);
}
