// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: keys from the store in keyrings.
 *
 * - The "qkd" key type: add_key("qkd", description, spec, keyring) with a
 *   spec such as "fd=3 stream=<uuid> [index=N | key-id=<uuid>] [len=N]"
 *   takes a key from the store of the /dev/qkd file open at fd 3. Holding
 *   /dev/qkd open for writing is what every other way of taking a key
 *   requires, so the device's file permissions gate this one too, and the
 *   key comes from the netns that file is bound to. The type has no .read:
 *   the payload (struct qkd_key_payload) is for in-kernel users only.
 * - QKD_IOC_LOGON_KEY: a "logon" key, for the subsystems that accept only
 *   that type (dm-crypt, AF_ALG by key serial on 6.12). It is add_key(2)
 *   with the key from the store: the keyring is resolved with
 *   lookup_user_key() and needs write permission, as add_key() does.
 *
 * Revocation and expiry both drop a qkd key's payload at once, zeroed (after
 * RCU readers). The key code calls ->revoke, but has no hook for expiry: an
 * expired key is unusable at once, yet destroyed (payload and all) only by
 * the key garbage collector, gc_delay (300 s) later. So the module keeps its
 * instantiated keys on a list, and while the list is not empty a delayed
 * work looks at it every second and drops the payload of every expired key,
 * as revoke does.
 */

#include <linux/err.h>
#include <linux/export.h>
#include <linux/file.h>
#include <linux/key-type.h>
#include <linux/qkd.h>
#include <linux/rcupdate.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/uuid.h>
#include <linux/workqueue.h>

#include "qkd.h"

/* Longest spec accepted; real ones are under 120 bytes. */
#define QKD_KEY_SPEC_MAX	256

struct qkd_key_spec {
	int fd;
	struct qkd_key_ref ref;
	unsigned int len;
};

/*
 * The entry of a qkd key, in key->payload.data[1] from instantiation to
 * ->destroy. It is on qkd_keys until the payload is dropped (revoked,
 * expired) or the key destroyed, and off it (empty) after that.
 */
struct qkd_key_track {
	struct list_head node;	/* in qkd_keys, under qkd_keys_lock */
	struct key *key;
};

static LIST_HEAD(qkd_keys);
/* Protects qkd_keys; taken under key->sem, never the other way round. */
static DEFINE_SPINLOCK(qkd_keys_lock);
static void qkd_keys_expire(struct work_struct *work);
static DECLARE_DELAYED_WORK(qkd_keys_work, qkd_keys_expire);
/*
 * How often the expiry work looks at the keys: an expired key's payload
 * lives at most about this long (and a scheduling delay) past its expiry.
 */
#define QKD_KEYS_EXPIRE_PERIOD	HZ

/*
 * Between preparse and free_preparse: the file that gates the request
 * (held, so that its netns and store stay alive), the key taken, and the
 * key's entry on qkd_keys.
 */
struct qkd_key_prep {
	struct file *file;
	struct qkd_taken t;
	struct qkd_key_track *track;
	bool used;
};

static int qkd_spec_uuid(const char *s, u8 out[16])
{
	uuid_t u;

	if (uuid_parse(s, &u))
		return -EINVAL;
	memcpy(out, u.b, 16);
	return 0;
}

static int qkd_key_parse_spec(const void *data, size_t datalen,
			      struct qkd_key_spec *spec)
{
	bool have_fd = false, have_stream = false;
	char buf[QKD_KEY_SPEC_MAX], *p = buf, *tok, *val;
	int err;

	if (!data || !datalen || datalen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, data, datalen);
	buf[datalen] = 0;
	if (strlen(buf) != datalen)
		return -EINVAL;

	memset(spec, 0, sizeof(*spec));
	spec->ref.select = QKD_KEY_NEXT;
	while ((tok = strsep(&p, " \t\n"))) {
		if (!*tok)
			continue;
		val = strchr(tok, '=');
		if (!val)
			return -EINVAL;
		*val++ = 0;
		if (!strcmp(tok, "fd") && !have_fd) {
			err = kstrtoint(val, 10, &spec->fd);
			if (err || spec->fd < 0)
				return -EINVAL;
			have_fd = true;
		} else if (!strcmp(tok, "stream") && !have_stream) {
			if (qkd_spec_uuid(val, spec->ref.stream_id))
				return -EINVAL;
			have_stream = true;
		} else if (!strcmp(tok, "index") &&
			   spec->ref.select == QKD_KEY_NEXT) {
			if (kstrtou64(val, 0, &spec->ref.index))
				return -EINVAL;
			spec->ref.select = QKD_KEY_AT_INDEX;
		} else if (!strcmp(tok, "key-id") &&
			   spec->ref.select == QKD_KEY_NEXT) {
			if (qkd_spec_uuid(val, spec->ref.key_id))
				return -EINVAL;
			spec->ref.select = QKD_KEY_AT_KEY_ID;
		} else if (!strcmp(tok, "len") && !spec->len) {
			if (kstrtouint(val, 10, &spec->len) || !spec->len)
				return -EINVAL;
		} else {
			/* Unknown, or given twice, or both index and key-id. */
			return -EINVAL;
		}
	}
	return have_fd && have_stream ? 0 : -EINVAL;
}

/*
 * Take the key the spec names. It is delivered only when the key is
 * instantiated; if anything after this fails (the keyring is not
 * writable, quota), free_preparse puts it back.
 */
static int qkd_key_preparse(struct key_preparsed_payload *prep)
{
	struct qkd_key_payload *payload;
	struct qkd_key_spec spec;
	struct qkd_key_prep *pp;
	struct qkd_net *qn;
	int len, err;

	err = qkd_key_parse_spec(prep->data, prep->datalen, &spec);
	if (err)
		return err;

	pp = kzalloc(sizeof(*pp), GFP_KERNEL);
	if (!pp)
		return -ENOMEM;
	prep->payload.data[1] = pp;
	pp->track = kzalloc(sizeof(*pp->track), GFP_KERNEL);
	if (!pp->track)
		return -ENOMEM;
	INIT_LIST_HEAD(&pp->track->node);
	pp->file = fget(spec.fd);
	if (!pp->file)
		return -EBADF;
	qn = qkd_chardev_file_net(pp->file);
	/* Taking a key needs /dev/qkd open for writing, as its ioctls do. */
	if (!qn || !(pp->file->f_mode & FMODE_WRITE))
		return -EBADF;

	len = qkd_key_take_begin(qn, &spec.ref, spec.len, &pp->t);
	if (len < 0)
		return len;
	payload = kmalloc(struct_size(payload, data, len), GFP_KERNEL);
	if (!payload)
		return -ENOMEM;
	payload->index = spec.ref.index;
	memcpy(payload->stream_id, spec.ref.stream_id, QKD_STREAM_ID_LEN);
	memcpy(payload->key_id, spec.ref.key_id, QKD_KEY_ID_LEN);
	payload->len = len;
	memcpy(payload->data, pp->t.key, len);
	prep->payload.data[0] = payload;
	prep->quotalen = len;

	/* add_key() with an empty description: name the key by its key_ID. */
	if (!prep->orig_description) {
		prep->description = kasprintf(GFP_KERNEL, "qkd:%pUb",
					      payload->key_id);
		if (!prep->description)
			return -ENOMEM;
	}
	return 0;
}

static void qkd_key_free_preparse(struct key_preparsed_payload *prep)
{
	struct qkd_key_prep *pp = prep->payload.data[1];

	kfree_sensitive(prep->payload.data[0]);
	kfree(prep->description);
	if (!pp)
		return;
	if (pp->t.c.stream)
		qkd_key_take_end(&pp->t, pp->used);
	if (pp->file)
		fput(pp->file);
	kfree(pp->track);
	kfree(pp);
}

static int qkd_key_instantiate(struct key *key,
			       struct key_preparsed_payload *prep)
{
	struct qkd_key_prep *pp = prep->payload.data[1];
	int err;

	err = key_payload_reserve(key, prep->quotalen);
	if (err)
		return err;
	rcu_assign_keypointer(key, prep->payload.data[0]);
	prep->payload.data[0] = NULL;
	/* The key now holds it: free_preparse delivers it. */
	pp->used = true;

	/* Watched for expiry from now on. */
	pp->track->key = key;
	key->payload.data[1] = pp->track;
	spin_lock(&qkd_keys_lock);
	list_add_tail(&pp->track->node, &qkd_keys);
	spin_unlock(&qkd_keys_lock);
	pp->track = NULL;
	/* A no-op if already pending; the work re-arms while keys are left. */
	schedule_delayed_work(&qkd_keys_work, QKD_KEYS_EXPIRE_PERIOD);
	return 0;
}

static void qkd_key_payload_free_rcu(struct rcu_head *rcu)
{
	kfree_sensitive(container_of(rcu, struct qkd_key_payload, rcu));
}

/* Off qkd_keys (the work has nothing left to do for the key). */
static void qkd_key_untrack(struct key *key)
{
	struct qkd_key_track *t = key->payload.data[1];

	if (!t)
		return;
	spin_lock(&qkd_keys_lock);
	list_del_init(&t->node);
	spin_unlock(&qkd_keys_lock);
}

/*
 * Drop the payload at once: readers see NULL from now on, and it is zeroed
 * and freed after the RCU readers that may still hold it. Called with
 * key->sem held for writing (->revoke, the expiry work).
 */
static void qkd_key_drop_payload(struct key *key)
{
	struct qkd_key_payload *p = dereference_key_locked(key);

	qkd_key_untrack(key);
	key_payload_reserve(key, 0);
	if (p) {
		rcu_assign_keypointer(key, NULL);
		call_rcu(&p->rcu, qkd_key_payload_free_rcu);
	}
}

/* Revocation drops the payload at once (after RCU readers), zeroed. */
static void qkd_key_revoke(struct key *key)
{
	qkd_key_drop_payload(key);
}

/*
 * By the garbage collector once the key is unused, or, when the type is
 * unregistered, for every key still referenced, with key->sem held.
 */
static void qkd_key_destroy(struct key *key)
{
	qkd_key_untrack(key);
	kfree(key->payload.data[1]);
	key->payload.data[1] = NULL;
	kfree_sensitive(key->payload.data[0]);
}

/* The expiry of key_validate(): set, and reached. */
static bool qkd_key_expired(const struct key *key, time64_t now)
{
	time64_t expiry = READ_ONCE(key->expiry);

	return expiry && now >= expiry;
}

/*
 * Drop the payload of every expired key, as revoke does. The list lock is
 * a spinlock, and key->sem is a sleeping lock taken under nothing of ours:
 * the expired keys are collected under the lock with a reference each (not
 * a key whose last reference is gone: the garbage collector destroys it,
 * payload and all), then handled one by one under their semaphore. A key
 * whose type was unregistered meanwhile was destroyed already (its type is
 * then no longer ours), and the expiry is checked again under the
 * semaphore, as "keyctl timeout" may have moved it.
 */
static void qkd_keys_expire(struct work_struct *work)
{
	struct key *batch[16];
	struct qkd_key_track *t;
	unsigned int n = 0, i;
	bool full = false, more;
	time64_t now;

	now = ktime_get_real_seconds();
	spin_lock(&qkd_keys_lock);
	list_for_each_entry(t, &qkd_keys, node) {
		if (!qkd_key_expired(t->key, now))
			continue;
		if (n == ARRAY_SIZE(batch)) {
			full = true;
			break;
		}
		/* As key_lookup() does: a key at zero references is dying. */
		if (refcount_inc_not_zero(&t->key->usage))
			batch[n++] = t->key;
	}
	more = !list_empty(&qkd_keys);
	spin_unlock(&qkd_keys_lock);

	for (i = 0; i < n; i++) {
		struct key *key = batch[i];

		down_write(&key->sem);
		if (key->type == &key_type_qkd &&
		    qkd_key_expired(key, ktime_get_real_seconds()))
			qkd_key_drop_payload(key);
		up_write(&key->sem);
		key_put(key);
	}
	if (more)
		schedule_delayed_work(&qkd_keys_work,
				      full ? 0 : QKD_KEYS_EXPIRE_PERIOD);
}

/* /proc/keys: which key it is, never its bytes. Called under RCU. */
static void qkd_key_describe(const struct key *key, struct seq_file *m)
{
	const struct qkd_key_payload *p;

	seq_puts(m, key->description);
	if (!key_is_positive(key))
		return;
	p = dereference_key_rcu(key);
	if (p)
		seq_printf(m, ": stream %pUb index %llu key-id %pUb len %u",
			   p->stream_id, p->index, p->key_id, p->len);
}

struct key_type key_type_qkd = {
	.name = "qkd",
	.preparse = qkd_key_preparse,
	.free_preparse = qkd_key_free_preparse,
	.instantiate = qkd_key_instantiate,
	.revoke = qkd_key_revoke,
	.destroy = qkd_key_destroy,
	.describe = qkd_key_describe,
	/* No .read: keyctl read fails with EOPNOTSUPP. No .update. */
};
EXPORT_SYMBOL_GPL(key_type_qkd);

/* ---------------------------------------------------------- logon keys */

struct qkd_logon_ctx {
	key_ref_t keyring;
	const char *desc;
	const struct qkd_key_ref *ref;
	key_serial_t serial;
};

static int qkd_logon_use(void *ctx, const u8 *key, unsigned int len)
{
	struct qkd_logon_ctx *c = ctx;
	char defdesc[4 + 36 + 1];
	key_ref_t kref;

	if (!c->desc) {
		snprintf(defdesc, sizeof(defdesc), "qkd:%pUb", c->ref->key_id);
		c->desc = defdesc;
	}
	/* Copies the key into a logon payload, freed with kfree_sensitive(). */
	kref = key_create_or_update(c->keyring, "logon", c->desc, key, len,
				    KEY_PERM_UNDEF, KEY_ALLOC_IN_QUOTA);
	if (c->desc == defdesc)
		c->desc = NULL;
	if (IS_ERR(kref))
		return PTR_ERR(kref);
	c->serial = key_ref_to_ptr(kref)->serial;
	key_ref_put(kref);
	return 0;
}

long qkd_ioctl_logon_key(struct qkd_net *qn, void __user *uarg)
{
	struct qkd_logon_ctx c = { };
	struct qkd_logon_key req;
	struct qkd_key_ref ref;
	char *desc = NULL;
	int ret;

	if (copy_from_user(&req, uarg, sizeof(req)))
		return -EFAULT;
	if (req.size != sizeof(req) || req.reserved0 ||
	    memchr_inv(req.reserved, 0, sizeof(req.reserved)))
		return -EINVAL;
	ret = qkd_key_ref_from_user(&ref, req.flags, req.stream_id, req.index,
				    req.key_id);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &req, sizeof(req)))
		return -EFAULT;
	if (req.desc_ptr) {
		desc = strndup_user(u64_to_user_ptr(req.desc_ptr), 4096);
		if (IS_ERR(desc))
			return PTR_ERR(desc);
		/* What the logon type demands: "prefix:...". */
		if (desc[0] == ':' || !strchr(desc, ':')) {
			ret = -EINVAL;
			goto out;
		}
	}

	/* As add_key(2): create the special keyrings, need write access. */
	c.keyring = lookup_user_key(req.keyring, KEY_LOOKUP_CREATE,
				    KEY_NEED_WRITE);
	if (IS_ERR(c.keyring)) {
		ret = PTR_ERR(c.keyring);
		goto out;
	}
	c.desc = desc;
	c.ref = &ref;
	ret = qkd_key_use_qn(qn, &ref, req.key_len, qkd_logon_use, &c);
	key_ref_put(c.keyring);
	if (ret < 0)
		goto out;

	req.index = ref.index;
	memcpy(req.key_id, ref.key_id, QKD_KEY_ID_LEN);
	req.key_len = ret;
	req.serial = c.serial;
	ret = copy_to_user(uarg, &req, sizeof(req)) ? -EFAULT : 0;
out:
	kfree(desc);
	return ret;
}

int __init qkd_keyring_init(void)
{
	return register_key_type(&key_type_qkd);
}

void qkd_keyring_exit(void)
{
	/*
	 * Destroys every key of the type, zeroing the payloads and emptying
	 * qkd_keys, so the expiry work does not re-arm after this. Payloads
	 * dropped earlier may still wait for RCU: qkd_store_exit()'s
	 * rcu_barrier() lets their callbacks run before the module goes.
	 */
	unregister_key_type(&key_type_qkd);
	cancel_delayed_work_sync(&qkd_keys_work);
}
