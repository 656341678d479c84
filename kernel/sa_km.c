// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: the xfrm key-manager hooks of the SA bindings.
 *
 * xfrm tells every registered key manager of SA expiry, deletion, flushes
 * and counter changes, in softirq context and with the SA's lock held: the
 * hooks only find the bindings concerned (under RCU, on the node's list)
 * and kick their work (kernel/sa_rekey.c), which does the rest.
 */

#include <linux/rculist.h>
#include <linux/workqueue.h>
#include <net/xfrm.h>

#include "sa.h"

/* Could @x be one of @b's SAs? Compares constant fields only. */
static bool qkd_sa_matches(const struct qkd_sa *b, const struct xfrm_state *x)
{
	if (x->props.family != b->family || x->props.reqid != b->reqid ||
	    x->id.proto != IPPROTO_ESP || x->if_id != b->if_id ||
	    x->mark.v != b->mark.v || x->mark.m != b->mark.m)
		return false;
	return (xfrm_addr_equal(&x->id.daddr, &b->remote, b->family) &&
		xfrm_addr_equal(&x->props.saddr, &b->local, b->family)) ||
	       (xfrm_addr_equal(&x->id.daddr, &b->local, b->family) &&
		xfrm_addr_equal(&x->props.saddr, &b->remote, b->family));
}

/*
 * Soft and hard expiry of our SAs: a re-key is due (outbound), the peer
 * switched (inbound), or an SA is gone; an SA deleted (XFRM_MSG_DELSA) or
 * every SA flushed (XFRM_MSG_FLUSHSA, with no state: every binding of the
 * namespace): the binding replaces what it lost at once (Documentation/
 * ipsec.md, "Resynchronisation"); or someone changed an SA's sequence
 * numbers or counters (XFRM_MSG_NEWAE from userspace, not xfrm's own
 * replay notifications): a re-key may be due. May run in softirq context
 * with x->lock held: only kick the binding's work.
 */
static int qkd_km_notify(struct xfrm_state *x, const struct km_event *c)
{
	bool all = c->event == XFRM_MSG_FLUSHSA;
	struct qkd_net *qn;
	struct qkd_sa *b;

	if (c->event != XFRM_MSG_EXPIRE && c->event != XFRM_MSG_DELSA && !all &&
	    !(c->event == XFRM_MSG_NEWAE && c->data.aevent == XFRM_AE_CU))
		return 0;
	if (all ? !c->net : !x)
		return 0;
	qn = qkd_net(all ? c->net : xs_net(x));
	rcu_read_lock();
	list_for_each_entry_rcu(b, &qn->sas, list)
		if (all || qkd_sa_matches(b, x))
			mod_delayed_work(system_wq, &b->work, 0);
	rcu_read_unlock();
	return 0;
}

/* xfrm calls these unconditionally; we answer neither. */
static int qkd_km_acquire(struct xfrm_state *x, struct xfrm_tmpl *t,
			  struct xfrm_policy *xp)
{
	return -EOPNOTSUPP;
}

static struct xfrm_policy *qkd_km_compile_policy(struct sock *sk, int opt,
						 u8 *data, int len, int *dir)
{
	*dir = -EOPNOTSUPP;
	return NULL;
}

static struct xfrm_mgr qkd_km = {
	.notify = qkd_km_notify,
	.acquire = qkd_km_acquire,
	.compile_policy = qkd_km_compile_policy,
};

/* The hooks, for the module's init and exit (kernel/sa.c). */
void qkd_sa_km_register(void)
{
	xfrm_register_km(&qkd_km);
}

/* Waits for callbacks in flight (synchronize_rcu). */
void qkd_sa_km_unregister(void)
{
	xfrm_unregister_km(&qkd_km);
}
