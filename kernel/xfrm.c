// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: ESP SAs keyed and re-keyed from a key stream, inside the kernel.
 *
 * A binding ties an SA pair (local <-> remote) to one key stream. The module
 * builds the xfrm_states itself with keys taken from the stream by index,
 * so the key bytes never return to userspace, and both ends, holding the
 * same keys at the same indices, build the same SAs with no signalling:
 *
 *  - channel 0 carries initiator -> responder traffic, channel 1 the other
 *    way (the link's role says which one this end sends on);
 *  - generation g of channel c is keyed by the key at index
 *    first + 2g + c, and its SPI is qkd_sa_spi(stream, index) (uapi header).
 *
 * Re-key is make-before-break and needs no agreement on time between the
 * ends: the sender moves its outbound SA to the next generation when its
 * policy says so (a timer for seconds, the SA's soft byte and packet limits
 * for the rest); the receiver always has the next generation's inbound SA
 * installed ahead, notices the peer's switch when that SA carries traffic
 * (its soft packet limit is 1, so xfrm tells us), then installs the one
 * after and drops the old inbound SA after a grace period.
 *
 * Locking: qkd_net.lock guards the list of bindings (RCU for the xfrm
 * key-manager callback, which runs in softirq context and only kicks the
 * binding's work). Each binding's own mutex guards its SAs and counters.
 * The work takes qkd_net.lock only with mutex_trylock() (and runs again a
 * jiffy later if it is busy), then that mutex, so a binding can be torn
 * down (waiting for its work) with qkd_net.lock held. Order: qkd_net.lock,
 * then the binding's lock.
 *
 * See Documentation/ipsec.md for the ABI and the formulas.
 */

#include <linux/jiffies.h>
#include <linux/rculist.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <net/xfrm.h>
#include <uapi/linux/pfkeyv2.h>

#include "compat.h"
#include "netlink-gen.h"
#include "qkd.h"
#include "sa.h"

/*
 * What xfrm_aead_get_byname() would say for these two, without making the
 * module depend on xfrm_algo.ko for two constant strings.
 */
const struct qkd_sa_alg_info qkd_sa_algs[] = {
	[QKD_SA_ALG_AES_GCM] = {
		.name = "rfc4106(gcm(aes))",
		.geniv = "seqiv",
		.sadb_id = SADB_X_EALG_AES_GCM_ICV16,
		.key_bits_mask = BIT(128 / 64) | BIT(192 / 64) | BIT(256 / 64),
	},
	[QKD_SA_ALG_CHACHA20_POLY1305] = {
		.name = "rfc7539esp(chacha20,poly1305)",
		.geniv = "seqiv",
		.key_bits_mask = BIT(256 / 64),
	},
};

/*
 * Take the key at @index. Every caller (SA_NEW, SA_REKEY, the work) holds
 * qkd_net.lock, as a claiming consumer's takes must: the store sends the
 * take's STREAM_LOW/EMPTY now, after the KEYS_ADDED of its key and before
 * the NEWSA and SA_REKEY_NTF of the SA it keys; the link's state too,
 * once the binding runs (SA_NEW's all-or-nothing start announces it when
 * done, qkd_consumer_activate(), or undone, so that a failed one sends no
 * flapping state).
 */
static int qkd_sa_take(struct qkd_sa *b, u64 index, u8 **key)
{
	struct qkd_take_result res;

	lockdep_assert_held(&b->qn->lock);
	return qkd_consumer_take(&b->consumer, true, index, key, &res);
}

static void qkd_sa_km_notify(struct xfrm_state *x, int event)
{
	struct km_event c = {
		.event = event,
		.net = xs_net(x),
	};

	km_state_notify(x, &c);
}

/*
 * Delete one of our SAs (if xfrm has not already) and drop our reference;
 * xfrm frees it (and its key copies) when the last reference goes.
 *
 * As xfrm_user's DELSA: under xfrm_cfg_mutex, notified, audited (SAD-delete).
 * An SA someone else deleted (xfrm at its hard lifetime, an administrator)
 * was audited by them; a second, failed record would only be noise.
 */
void qkd_sa_drop(struct xfrm_state *x)
{
	if (!x)
		return;
	mutex_lock(&xs_net(x)->xfrm.xfrm_cfg_mutex);
	if (!xfrm_state_delete(x)) {
		qkd_sa_km_notify(x, XFRM_MSG_DELSA);
		xfrm_audit_state_delete(x, 1, true);
	}
	/*
	 * Dead now (deleted here or by xfrm before), so x->aead's key has no
	 * reader left: the SA is off the SAD's hashes and dump list, so no
	 * dump, MIGRATE or clone finds it (those run under this mutex or
	 * the state lock, after the delete), and its transform holds a key
	 * of its own. xfrm would free the copy unwiped (kfree() in
	 * xfrm_state_gc_destroy()), and the last reference may be a packet's
	 * long after this: wipe it here. Only a dead SA is touched, so
	 * nothing that can still carry or copy traffic ever sees zeros.
	 */
	if (x->km.state == XFRM_STATE_DEAD && x->aead)
		memzero_explicit(x->aead->alg_key,
				 (x->aead->alg_key_len + 7) / 8);
	mutex_unlock(&xs_net(x)->xfrm.xfrm_cfg_mutex);
	xfrm_state_put(x);
}

/*
 * An SA built by qkd_sa_build() that is not (or no longer) to be added. It
 * never was in the SAD, so nobody else read its key copy: wipe that, as
 * xfrm would free it unwiped and the key may go back to the store.
 * xfrm_state_put() insists on a dead SA, and xfrm exports no call that
 * kills one that was never in the SAD (xfrm_state_delete() would unlink it
 * from hash chains it is not on): mark it as xfrm_user's
 * xfrm_state_construct() and xfrm_add_sa() do on their error paths.
 */
static void qkd_sa_unbuild(struct xfrm_state *x)
{
	memzero_explicit(x->aead->alg_key, x->aead->alg_key_len / 8);
	x->km.state = XFRM_STATE_DEAD;
	xfrm_state_put(x);
}

/*
 * The SA's selector, of which xfrm uses only the family here (prefixes 0):
 * it must be the family of the traffic inside, which in tunnel mode may be
 * the other one (the policies' selector says which). A selector of the
 * outer family would never match an inner flow of the other: xfrm would
 * find no SA, and the traffic would go nowhere. A tunnel without our
 * policies takes either family, as `ip xfrm state add ... flag af-unspec`
 * makes it (xfrm then picks the inner mode by the decapsulated protocol).
 * In transport mode there is no inner family but the SA's own.
 */
static void qkd_sa_build_sel(const struct qkd_sa *b, struct xfrm_state *x)
{
	if (b->mode != QKD_SA_MODE_TUNNEL) {
		x->sel.family = b->family;
	} else if (b->policy) {
		x->sel.family = b->sel_family;
	} else {
		x->sel.family = AF_UNSPEC;
		x->props.flags |= XFRM_STATE_AF_UNSPEC;
	}
}

/*
 * Build the SA of generation @gen in direction @out, keyed by @key (the
 * stream's key at its index; the first qkd_sa_key_len() bytes are the AEAD
 * key and salt): ESP keys its transform, but the SA is not in the SAD yet,
 * so nothing can use the key. On success *@xp holds the only reference.
 */
static int qkd_sa_build(struct qkd_sa *b, bool out, u64 gen, const u8 *key,
			struct xfrm_state **xp, struct netlink_ext_ack *extack)
{
	const struct qkd_sa_alg_info *alg = &qkd_sa_algs[b->alg];
	unsigned int klen = qkd_sa_key_len(b);
	u64 index = qkd_sa_index(b, out, gen);
	struct xfrm_algo_aead *aead;
	struct xfrm_state *x;
	int err;

	x = xfrm_state_alloc(b->qn->net);
	if (!x)
		return -ENOMEM;
	aead = kzalloc(sizeof(*aead) + klen, GFP_KERNEL);
	if (!aead) {
		qkd_sa_unbuild(x);
		return -ENOMEM;
	}
	strscpy(aead->alg_name, alg->name, sizeof(aead->alg_name));
	aead->alg_key_len = klen * 8;
	aead->alg_icv_len = QKD_SA_ICV_BITS;
	memcpy(aead->alg_key, key, klen);
	x->aead = aead;
	x->geniv = alg->geniv;
	x->props.ealgo = alg->sadb_id;

	x->id.proto = IPPROTO_ESP;
	x->id.spi = htonl(qkd_sa_spi(b->stream->id, index));
	x->id.daddr = out ? b->remote : b->local;
	x->props.saddr = out ? b->local : b->remote;
	x->props.family = b->family;
	x->props.mode = b->mode == QKD_SA_MODE_TUNNEL ? XFRM_MODE_TUNNEL :
			XFRM_MODE_TRANSPORT;
	x->props.reqid = b->reqid;
	x->props.replay_window = out ? 0 : QKD_SA_REPLAY_WINDOW;
	qkd_sa_build_sel(b, x);
	x->mark = b->mark;
	x->if_id = b->if_id;
	qkd_xfrm_state_set_dir(x, out);

	/*
	 * The policy keeps these products below 2^64 (qkd_sa_new_policy), and
	 * packets within the sequence space.
	 */
	if (b->rekey_packets)
		x->lft.hard_packet_limit = min(b->rekey_packets * QKD_SA_HARD_FACTOR,
					       (u64)QKD_SA_SEQ_LAST);
	else
		x->lft.hard_packet_limit = QKD_SA_SEQ_LAST;
	if (b->rekey_bytes)
		x->lft.hard_byte_limit = b->rekey_bytes * QKD_SA_HARD_FACTOR;
	if (out) {
		/* Soft limits tell us to re-key; hard ones close. */
		x->lft.soft_packet_limit = b->rekey_packets ?: QKD_SA_SEQ_SOFT;
		if (b->rekey_bytes)
			x->lft.soft_byte_limit = b->rekey_bytes;
		/* From first use: an idle SA is neither re-keyed nor closed. */
		if (b->rekey_seconds)
			x->lft.hard_use_expires_seconds = qkd_sa_hard_seconds(b);
	} else {
		/*
		 * The second packet through an inbound SA soft-expires it:
		 * that is how the receiver learns the peer switched to it.
		 * Its hard lifetime counts from its first use.
		 */
		x->lft.soft_packet_limit = 1;
		if (b->rekey_seconds)
			x->lft.hard_use_expires_seconds = qkd_sa_hard_seconds(b);
	}

	/*
	 * Replay notification defaults, as xfrm_user's xfrm_state_construct()
	 * sets them (the sysctl's time is in 100 ms units): listeners of
	 * XFRMNLGRP_AEVENTS hear of our SAs as of any other.
	 */
	x->replay_maxdiff = b->qn->net->xfrm.sysctl_aevent_rseqth;
	x->replay_maxage = (b->qn->net->xfrm.sysctl_aevent_etime * HZ) /
			   XFRM_AE_ETH_M;

	/*
	 * No security_xfrm_state_alloc(): xfrm_user calls it only for an
	 * XFRMA_SEC_CTX, and our SAs carry no security context (x->security
	 * stays NULL); SELinux refuses a NULL context with EINVAL.
	 *
	 * xfrm_init_state() marks the SA valid, as af_key's add does; it
	 * gives no extended ACK, hence ours below.
	 */
	err = xfrm_init_state(x);
	/*
	 * x->aead keeps its copy of the key, as in every SA xfrm_user adds.
	 * xfrm reads it again to clone the SA for XFRM_MSG_MIGRATE, and a
	 * clone must carry the stream's key (one keyed with zeros would carry
	 * traffic that anyone can read). Its other readers are `ip xfrm state`
	 * dumps and the NEWSA/DELSA notifications, which xfrm_user zeros under
	 * lockdown=confidentiality (xfrm_redact(), LOCKDOWN_XFRM_SECRET, on
	 * 6.1 and 6.12); PF_KEY has no AEAD attribute and never shows it.
	 * Without lockdown root reads kernel memory anyway. xfrm frees x->aead
	 * with plain kfree() (xfrm_state_gc_destroy(), 6.1 and 6.12): that
	 * copy is not wiped on free unless the kernel runs with init_on_free=1
	 * (Documentation/threat-model.md). ESP's transform, keyed here, holds
	 * its own copy and is freed with kfree_sensitive().
	 */
	if (err) {
		/* Ours, unless something before said better. */
		if (extack && !extack->_msg)
			NL_SET_ERR_MSG_MOD(extack,
					   "xfrm cannot set up the SA (no ESP module or algorithm?)");
		qkd_sa_unbuild(x);
		return err;
	}
	*xp = x;
	return 0;
}

static void qkd_sa_spi_taken(struct netlink_ext_ack *extack)
{
	NL_SET_ERR_MSG_MOD(extack,
			   "an SA with the derived SPI to that address exists");
}

/*
 * Add a built SA to the SAD, keeping our reference. From then on it may
 * carry traffic (any policy, even one added by hand, can select it), so its
 * key is used up whatever happens next: the caller never gives it back to
 * the store. On failure the SA is destroyed and nothing used the key.
 *
 * Under xfrm_cfg_mutex. Audited as xfrm_user's NEWSA is (SAD-add, with the
 * result), from the requester's context or the binding's work.
 */
static int qkd_sa_commit(struct xfrm_state *x, struct netlink_ext_ack *extack)
{
	int err;

	lockdep_assert_held(&xs_net(x)->xfrm.xfrm_cfg_mutex);

	xfrm_state_hold(x);
	err = xfrm_state_add(x);
	xfrm_audit_state_add(x, err ? 0 : 1, true);
	if (err) {
		if (err == -EEXIST)
			qkd_sa_spi_taken(extack);
		__xfrm_state_put(x);
		qkd_sa_unbuild(x);
		return err;
	}
	qkd_sa_km_notify(x, XFRM_MSG_NEWSA);
	return 0;
}

static void qkd_sa_take_error(struct netlink_ext_ack *extack, int err)
{
	switch (err) {
	case -ENOKEY:
		NL_SET_ERR_MSG_MOD(extack, "the key of the SA is not in the stream yet");
		break;
	case -EKEYEXPIRED:
		NL_SET_ERR_MSG_MOD(extack,
				   "the key of the SA was already taken or flushed at this end");
		break;
	default:
		NL_SET_ERR_MSG_MOD(extack, "the stream is gone");
	}
}

/*
 * Take the key of (@out, @gen) and install its SA (a re-key). A failure
 * before the SA is in the SAD gives the key back to the store; once it is
 * in, the key is used up.
 */
int qkd_sa_install(struct qkd_sa *b, bool out, u64 gen,
		   struct xfrm_state **xp, struct netlink_ext_ack *extack)
{
	u64 index = qkd_sa_index(b, out, gen);
	struct xfrm_state *x;
	u8 *key;
	int err;

	err = qkd_sa_take(b, index, &key);
	if (err) {
		qkd_sa_take_error(extack, err);
		return err;
	}
	err = qkd_sa_build(b, out, gen, key, &x, extack);
	if (!err) {
		mutex_lock(&b->qn->net->xfrm.xfrm_cfg_mutex);
		err = qkd_sa_commit(x, extack);
		mutex_unlock(&b->qn->net->xfrm.xfrm_cfg_mutex);
	}
	if (err) {
		qkd_consumer_return(&b->consumer, index, key);
		return err;
	}
	kfree_sensitive(key);
	*xp = x;
	return 0;
}

/*
 * A one-way binding takes and zeroes the other direction's key of each
 * generation, so that the stream drains at the same pace at both ends.
 */
void qkd_sa_discard(struct qkd_sa *b, bool out, u64 gen)
{
	u8 *key;

	if (!qkd_sa_take(b, qkd_sa_index(b, out, gen), &key))
		kfree_sensitive(key);
}

bool qkd_sa_valid(struct xfrm_state *x)
{
	return x && READ_ONCE(x->km.state) == XFRM_STATE_VALID;
}

/* The last sequence number outbound SA @x used (ours are never ESN). */
u32 qkd_sa_oseq(struct xfrm_state *x)
{
	u32 seq;

	spin_lock_bh(&x->lock);
	seq = x->replay.oseq;
	spin_unlock_bh(&x->lock);
	return seq;
}

/*
 * Can the outbound SA still send? Valid, and a sequence number left: the
 * hard packet limit closes it first, unless someone moved its sequence
 * number on (XFRM_MSG_NEWAE), and then xfrm drops every packet with
 * EOVERFLOW while the SA stays valid.
 */
bool qkd_sa_out_open(struct xfrm_state *x)
{
	return qkd_sa_valid(x) && qkd_sa_oseq(x) < QKD_SA_SEQ_LAST;
}

void qkd_sa_curlft(struct xfrm_state *x, u64 *bytes, u64 *packets)
{
	*bytes = 0;
	*packets = 0;
	if (!x)
		return;
	spin_lock_bh(&x->lock);
	*bytes = x->curlft.bytes;
	*packets = x->curlft.packets;
	spin_unlock_bh(&x->lock);
}

/*
 * Has @x (no longer valid) reached its hard lifetime, as xfrm counts it
 * (xfrm_state_check_expire(), xfrm_timer_handler())? If not, someone
 * deleted it: XFRM_MSG_DELSA, `ip xfrm state flush`.
 */
bool qkd_sa_expired(struct xfrm_state *x)
{
	time64_t now = ktime_get_real_seconds();
	bool expired;

	spin_lock_bh(&x->lock);
	expired = x->curlft.packets >= x->lft.hard_packet_limit ||
		  x->curlft.bytes >= x->lft.hard_byte_limit ||
		  (x->lft.hard_use_expires_seconds && x->curlft.use_time &&
		   now >= x->curlft.use_time + x->lft.hard_use_expires_seconds) ||
		  (x->lft.hard_add_expires_seconds &&
		   now >= x->curlft.add_time + x->lft.hard_add_expires_seconds);
	spin_unlock_bh(&x->lock);
	return expired;
}

/* Every SA of the binding goes. Under b->lock. */
static void qkd_sa_drop_all(struct qkd_sa *b)
{
	struct qkd_sa_slot *sl;

	qkd_sa_drop(b->out);
	qkd_sa_drop(b->out_old);
	b->out = NULL;
	b->out_old = NULL;
	for (sl = b->in; sl < b->in + QKD_SA_IN_SLOTS; sl++) {
		qkd_sa_drop(sl->x);
		memset(sl, 0, sizeof(*sl));
	}
}

static void qkd_sa_free(struct qkd_sa *b)
{
	qkd_consumer_release(&b->consumer);
	mutex_destroy(&b->lock);
	kfree(b);
}

/* Frees bindings after a grace period (qkd_sa_destroy()). */
static struct workqueue_struct *qkd_sa_free_wq;

/*
 * A grace period after qkd_sa_destroy(): no key-manager callback can find
 * the binding any more, so none can kick its work after this cancel (one
 * that did before finds b->dead and does nothing).
 */
static void qkd_sa_free_rcu(struct work_struct *work)
{
	struct qkd_sa *b = container_of(to_rcu_work(work), struct qkd_sa,
					free_work);

	cancel_delayed_work_sync(&b->work);
	mutex_destroy(&b->lock);
	kfree(b);
}

/*
 * Unbind: delete the SAs, leave block policies in place of the binding's
 * (or, if @unprotect, delete them), stop the work, give the stream back;
 * the binding itself is freed a grace period later, without qn->lock held
 * for the wait.
 */
void qkd_sa_destroy(struct qkd_net *qn, struct qkd_sa *b, bool unprotect)
{
	lockdep_assert_held(&qn->lock);

	list_del_rcu(&b->list);
	qn->n_sas--;
	mutex_lock(&b->lock);
	b->dead = true;
	/* SAs first: in between, packets find a policy and no SA: dropped. */
	qkd_sa_drop_all(b);
	if (!unprotect)
		qkd_sa_policies_block(b);
	qkd_sa_policies_del(b);
	mutex_unlock(&b->lock);
	/* The work takes b->lock alone; from now on it finds b->dead. */
	cancel_delayed_work_sync(&b->work);
	qkd_consumer_release(&b->consumer);
	b->stream = NULL;
	INIT_RCU_WORK(&b->free_work, qkd_sa_free_rcu);
	queue_rcu_work(qkd_sa_free_wq, &b->free_work);
}

struct qkd_sa *qkd_sa_find(struct qkd_net *qn, const u8 *stream_id)
{
	struct qkd_sa *b;

	lockdep_assert_held(&qn->lock);

	list_for_each_entry(b, &qn->sas, list)
		if (!memcmp(b->stream->id, stream_id, QKD_STREAM_ID_LEN))
			return b;
	return NULL;
}

/*
 * Every binding of @qn goes: the module is unloading, or the namespace is
 * going away. On unload the namespace lives on and its traffic stays
 * blocked. A dying namespace (no reference left) has no traffic to protect
 * and xfrm flushes its SPD itself: after this exit (6.1), or before it,
 * in xfrm's pre_exit (6.12), when a policy added now would outlive the
 * flush, warned of and leaked. So its policies are only deleted.
 */
static void qkd_xfrm_net_exit(struct qkd_net *qn)
{
	bool unprotect = !check_net(qn->net);
	struct qkd_sa *b, *tmp;

	lockdep_assert_held(&qn->lock);

	list_for_each_entry_safe(b, tmp, &qn->sas, list)
		qkd_sa_destroy(qn, b, unprotect);
}

/*
 * The store takes the stream back. Its deletion (or its link's): the
 * binding goes, failing closed. Its namespace's: as qkd_xfrm_net_exit().
 */
static void qkd_sa_detach(struct qkd_consumer *c, enum qkd_detach_reason why)
{
	struct qkd_sa *b = container_of(c, struct qkd_sa, consumer);
	struct qkd_net *qn = b->qn;

	qkd_sa_destroy(qn, b, why == QKD_DETACH_NET && !check_net(qn->net));
}

/*
 * May the requester delete the binding's SAs? The LSM check xfrm_user's
 * DELSA makes (security_xfrm_state_delete()), for every SA before any
 * goes, so that a refusal changes nothing. Our SAs carry no security
 * context, which SELinux (the one LSM with xfrm hooks) always allows; a
 * BPF LSM program on the hook may refuse. Under qkd_net.lock.
 */
int qkd_sa_may_delete(struct qkd_sa *b, struct netlink_ext_ack *extack)
{
	struct xfrm_state *xs[2 + QKD_SA_IN_SLOTS];
	unsigned int i, n = 0;
	int err = 0;

	mutex_lock(&b->lock);
	xs[n++] = b->out;
	xs[n++] = b->out_old;
	for (i = 0; i < QKD_SA_IN_SLOTS; i++)
		xs[n++] = b->in[i].x;
	for (i = 0; !err && i < n; i++)
		if (xs[i])
			err = security_xfrm_state_delete(xs[i]);
	mutex_unlock(&b->lock);
	if (err)
		NL_SET_ERR_MSG_MOD(extack,
				   "a security module refused to delete an SA of the binding");
	return err;
}

/* A requester deletes the stream or its link: as SA_DEL, ask first. */
static int qkd_sa_may_detach(struct qkd_consumer *c,
			     struct netlink_ext_ack *extack)
{
	return qkd_sa_may_delete(container_of(c, struct qkd_sa, consumer),
				 extack);
}

static const struct qkd_consumer_ops qkd_sa_consumer_ops = {
	.kind = QKD_STREAM_CONSUMER_SA,
	.detach = qkd_sa_detach,
	.may_detach = qkd_sa_may_detach,
};

/* The module is unloading: no new bindings. */
static bool qkd_xfrm_closing;

/* Two bindings would fight over the same SAs. Under qkd_net.lock. */
static struct qkd_sa *qkd_sa_overlap(struct qkd_net *qn, const struct qkd_sa *nb)
{
	struct qkd_sa *b;

	list_for_each_entry(b, &qn->sas, list)
		if (b->family == nb->family && b->reqid == nb->reqid &&
		    b->if_id == nb->if_id && b->mark.v == nb->mark.v &&
		    b->mark.m == nb->mark.m &&
		    ((xfrm_addr_equal(&b->local, &nb->local, b->family) &&
		      xfrm_addr_equal(&b->remote, &nb->remote, b->family)) ||
		     (xfrm_addr_equal(&b->local, &nb->remote, b->family) &&
		      xfrm_addr_equal(&b->remote, &nb->local, b->family))))
			return b;
	return NULL;
}

/* What SA_NEW installs: out g0, in g0 .. g(QKD_SA_LOOKAHEAD). */
#define QKD_SA_START_MAX	(2 + QKD_SA_LOOKAHEAD)

/* One of those SAs while SA_NEW builds it. */
struct qkd_sa_prep {
	bool out;
	u64 gen;
	u8 *key;		/* taken; NULL once its SA is in the SAD */
	struct xfrm_state *x;	/* built; NULL once in the SAD */
};

/* Is the SPI of every SA in @p free? */
static int qkd_sa_spis_check(struct qkd_sa *b, const struct qkd_sa_prep *p,
			     unsigned int n, struct netlink_ext_ack *extack)
{
	struct xfrm_state *x, *other;
	unsigned int i;

	for (i = 0; i < n; i++) {
		x = p[i].x;
		/* As xfrm_state_add() looks for a duplicate. */
		other = xfrm_state_lookup(b->qn->net, x->mark.v & x->mark.m,
					  &x->id.daddr, x->id.spi, x->id.proto,
					  x->props.family);
		if (other) {
			xfrm_state_put(other);
			qkd_sa_spi_taken(extack);
			return -EEXIST;
		}
	}
	return 0;
}

/*
 * The first SAs (and policies) of a new binding; all or nothing. Under
 * b->lock.
 *
 * An SA in the SAD can carry traffic at once (a policy added by hand may
 * select it), so its key must never be used again: rebuilt by a retry, it
 * would start again at sequence number 1 with the same key and salt, which
 * for AES-GCM is nonce reuse. So everything that can fail is done or
 * checked before the first SA goes in: every key taken, every SA built
 * (ESP keys its transform), every policy allocated, and every SPI and
 * policy slot found free, under the mutex xfrm_user and af_key hold to add
 * SAs and policies. If the add still fails, the keys of the SAs that were
 * in go with them, used up; only keys that never reached the SAD go back
 * to the store.
 */
static int qkd_sa_start(struct qkd_sa *b, struct netlink_ext_ack *extack)
{
	struct xfrm_policy *pols[XFRM_POLICY_MAX] = {};
	struct qkd_sa_prep p[QKD_SA_START_MAX] = {};
	struct mutex *cfg = &b->qn->net->xfrm.xfrm_cfg_mutex;
	unsigned int n = 0, i;
	struct xfrm_state *x;
	int dir, err;
	u64 gen;

	if (qkd_sa_has_out(b))
		p[n++].out = true;
	if (qkd_sa_has_in(b))
		for (gen = 0; gen <= QKD_SA_LOOKAHEAD; gen++)
			p[n++].gen = gen;

	for (i = 0; i < n; i++) {
		err = qkd_sa_take(b, qkd_sa_index(b, p[i].out, p[i].gen),
				  &p[i].key);
		if (err) {
			qkd_sa_take_error(extack, err);
			goto out;
		}
		err = qkd_sa_build(b, p[i].out, p[i].gen, p[i].key, &p[i].x,
				   extack);
		if (err)
			goto out;
	}
	if (b->policy) {
		err = qkd_sa_policies_alloc(b, pols);
		if (err)
			goto out;
	}

	mutex_lock(cfg);
	err = qkd_sa_spis_check(b, p, n, extack);
	if (!err && b->policy)
		err = qkd_sa_policies_check(b, pols, extack);
	for (i = 0; !err && i < n; i++) {
		x = p[i].x;
		p[i].x = NULL;
		err = qkd_sa_commit(x, extack);
		if (err)
			break;
		kfree_sensitive(p[i].key);
		p[i].key = NULL;
		if (p[i].out) {
			b->out = x;
		} else {
			b->in[p[i].gen].x = x;
			b->in[p[i].gen].gen = p[i].gen;
			b->in_next = p[i].gen + 1;
		}
	}
	/* After the SAs: no packet finds a policy and no SA. */
	if (!err && b->policy)
		err = qkd_sa_policies_insert(b, pols, extack);
	mutex_unlock(cfg);

out:
	if (err) {
		qkd_sa_policies_del(b);
		qkd_sa_drop_all(b);
		b->in_next = 0;
	}
	for (dir = 0; dir < XFRM_POLICY_MAX; dir++)
		if (pols[dir])
			qkd_sa_policy_unbuild(pols[dir]);
	for (i = n; i-- > 0;) {
		if (p[i].x)
			qkd_sa_unbuild(p[i].x);
		if (p[i].key)
			qkd_consumer_return(&b->consumer,
					    qkd_sa_index(b, p[i].out, p[i].gen),
					    p[i].key);
	}
	if (err)
		return err;
	b->next_rekey = jiffies + (unsigned long)b->rekey_seconds * HZ;
	b->state = QKD_SA_STATE_OK;
	return 0;
}

/* A one-way binding's first generations: drop the other direction's keys. */
static void qkd_sa_start_discard(struct qkd_sa *b)
{
	u64 gen;

	if (b->dir == QKD_SA_DIR_OUT)
		qkd_sa_discard(b, false, 0);
	if (b->dir == QKD_SA_DIR_IN)
		for (gen = 0; gen < b->in_next; gen++)
			qkd_sa_discard(b, true, gen);
}

/*
 * Bind @b (configured from the request) to the stream @sid_attr names and
 * start it: the stream is claimed, the first SAs (and policies) are in, the
 * work is queued. Under qkd_net.lock. On failure @b is freed (the error is
 * in @extack); on success it is on the node's list.
 */
int qkd_sa_create(struct qkd_net *qn, struct qkd_sa *b,
		  const struct nlattr *sid_attr,
		  struct netlink_ext_ack *extack)
{
	struct qkd_stream *s;
	int err;

	lockdep_assert_held(&qn->lock);

	if (READ_ONCE(qkd_xfrm_closing)) {
		NL_SET_ERR_MSG_MOD(extack, "the module is unloading");
		err = -ENODEV;
		goto err_free;
	}
	s = qkd_stream_find_locked(qn, nla_data(sid_attr));
	if (!s) {
		NL_SET_ERR_MSG_ATTR(extack, sid_attr, "no such stream");
		err = -ENOENT;
		goto err_free;
	}
	if (s->key_size < qkd_sa_key_len(b)) {
		NL_SET_ERR_MSG_ATTR(extack, sid_attr,
				    "the stream's keys are shorter than the SA's key and 4-byte salt");
		err = -EINVAL;
		goto err_free;
	}
	if (qkd_sa_find(qn, s->id)) {
		NL_SET_ERR_MSG_ATTR(extack, sid_attr,
				    "the stream already keys an SA binding");
		err = -EEXIST;
		goto err_free;
	}
	if (qkd_sa_overlap(qn, b)) {
		NL_SET_ERR_MSG_MOD(extack,
				   "another binding has the same addresses, reqid, mark and if_id");
		err = -EEXIST;
		goto err_free;
	}
	if (qn->n_sas >= QKD_SA_MAX_BINDINGS) {
		NL_SET_ERR_MSG_MOD(extack, "too many SA bindings in this network namespace");
		err = -ENOSPC;
		goto err_free;
	}

	/*
	 * The stream is the binding's alone from now on, until it goes:
	 * whoever could take its keys could take (and know) future SA keys.
	 */
	err = qkd_consumer_claim(&b->consumer, &qkd_sa_consumer_ops, s);
	if (err) {
		NL_SET_ERR_MSG_ATTR(extack, sid_attr,
				    "the stream belongs to another in-kernel consumer");
		goto err_free;
	}
	b->qn = qn;
	b->stream = s;
	b->initiator = s->link->role == QKD_LINK_ROLE_INITIATOR;
	mutex_init(&b->lock);
	INIT_DELAYED_WORK(&b->work, qkd_sa_work);

	mutex_lock(&b->lock);
	err = qkd_sa_start(b, extack);
	if (err) {
		mutex_unlock(&b->lock);
		/* Announces the link state of keys whose SA had been in the SAD. */
		qkd_sa_free(b);
		return err;
	}
	qkd_consumer_activate(&b->consumer);
	qkd_sa_start_discard(b);
	mutex_unlock(&b->lock);
	list_add_tail_rcu(&b->list, &qn->sas);
	qn->n_sas++;
	queue_delayed_work(system_wq, &b->work, QKD_SA_POLL);
	return 0;

err_free:
	kfree(b);
	return err;
}

/*
 * Bindings go before their namespace's store (this is registered after it,
 * so its exit runs first), and every namespace's go when the module
 * unloads, before the genl family their work sends events on.
 */
static void __net_exit qkd_xfrm_pernet_exit(struct net *net)
{
	struct qkd_net *qn = qkd_net(net);

	mutex_lock(&qn->lock);
	qkd_xfrm_net_exit(qn);
	mutex_unlock(&qn->lock);
}

static struct pernet_operations qkd_xfrm_net_ops = {
	.exit = qkd_xfrm_pernet_exit,
};

int __init qkd_xfrm_init(void)
{
	int err;

	qkd_sa_free_wq = alloc_workqueue("qkd_sa_free", 0, 0);
	if (!qkd_sa_free_wq)
		return -ENOMEM;
	err = register_pernet_subsys(&qkd_xfrm_net_ops);
	if (err) {
		destroy_workqueue(qkd_sa_free_wq);
		return err;
	}
	qkd_sa_km_register();
	return 0;
}

void qkd_xfrm_exit(void)
{
	/* SA_NEW refuses from now on; the pernet exit removes what exists. */
	WRITE_ONCE(qkd_xfrm_closing, true);
	/* Waits for callbacks in flight (synchronize_rcu). */
	qkd_sa_km_unregister();
	unregister_pernet_subsys(&qkd_xfrm_net_ops);
	/* Bindings freed a grace period after their destruction: wait. */
	rcu_barrier();
	destroy_workqueue(qkd_sa_free_wq);
}
