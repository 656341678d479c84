// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: the xfrm states of an SA binding, built from stream keys.
 *
 * Generation g of channel c is keyed by the stream's key at index
 * first + 2g + c (qkd_sa_index()), and its SPI is qkd_sa_spi(stream,
 * index): both ends, holding the same keys at the same indices, build the
 * same SAs with no signalling. The key is taken from the store by the
 * binding's claim (the bytes never return to userspace), the SA is built
 * (ESP keys its transform), added to the SAD and deleted from it as
 * xfrm_user does: under xfrm_cfg_mutex, notified, audited; its key copy
 * is wiped before xfrm frees it.
 */

#include <linux/slab.h>
#include <linux/string.h>
#include <net/xfrm.h>
#include <uapi/linux/pfkeyv2.h>

#include "compat.h"
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
int qkd_sa_take(struct qkd_sa *b, u64 index, u8 **key)
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
void qkd_sa_unbuild(struct xfrm_state *x)
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
int qkd_sa_build(struct qkd_sa *b, bool out, u64 gen, const u8 *key,
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

void qkd_sa_spi_taken(struct netlink_ext_ack *extack)
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
int qkd_sa_commit(struct xfrm_state *x, struct netlink_ext_ack *extack)
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

void qkd_sa_take_error(struct netlink_ext_ack *extack, int err)
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
void qkd_sa_drop_all(struct qkd_sa *b)
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
