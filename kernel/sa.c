// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: ESP SA bindings -- an SA pair keyed and re-keyed from a key stream,
 * inside the kernel.
 *
 * This file is a binding's life: its start (the first SAs and policies,
 * all or nothing), its teardown (failing closed), the store's consumer
 * interface through which the binding owns its stream, the namespace's
 * exit, and the module's init and exit. The parts (kernel/sa.h has who
 * calls whom and the locks):
 *
 *   sa_netlink.c  SA_* commands, attributes, events
 *   sa.c          create, destroy, find; consumer ops; init/exit
 *   sa_rekey.c    the re-key state machine (the binding's work)
 *   sa_xfrm.c     xfrm states from stream keys: build, add, delete
 *   sa_policy.c   XFRM policies, block policies at teardown
 *   sa_km.c       xfrm key-manager hooks: kick the work
 *
 * See Documentation/ipsec.md for the ABI and the formulas.
 */

#include <linux/jiffies.h>
#include <linux/rculist.h>
#include <linux/security.h>
#include <linux/slab.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <net/xfrm.h>

#include "sa.h"

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
