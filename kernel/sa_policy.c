// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: the XFRM policies of an SA binding, and failing closed.
 *
 * On request (the QKD_A_SA_POLICY nest) a binding installs the policies
 * that send traffic into its SAs and require it from them; at teardown
 * each of them still in the SPD is swapped for a block policy that the
 * module forgets (Documentation/ipsec.md, "Teardown"). Everything here is
 * done as xfrm_user does it: under xfrm_cfg_mutex, notified to the key
 * managers, audited. Called with the binding's lock held (kernel/sa.h).
 */

#include <net/xfrm.h>

#include "sa.h"

/*
 * On request a binding also installs the policies that send traffic into
 * its SAs and require it from them: out (local -> remote), in (remote ->
 * local) and, in tunnel mode, fwd (what the tunnel carries on to hosts
 * behind this one), each with one ESP template of the binding's mode and
 * reqid, as `ip xfrm policy add ... tmpl proto esp reqid R mode M` makes
 * them. They go with the binding: see Documentation/ipsec.md for why, and
 * for installing them by hand when they should outlive it.
 */
static void qkd_sa_policy_notify(struct xfrm_policy *pol, int dir, int event)
{
	struct km_event c = {
		.event = event,
		.net = xp_net(pol),
	};

	km_policy_notify(pol, dir, &c);
}

static struct xfrm_policy *qkd_sa_policy_alloc(struct qkd_sa *b, int dir)
{
	bool out = dir == XFRM_POLICY_OUT;
	struct xfrm_policy *pol;
	struct xfrm_tmpl *t;

	/*
	 * No security_xfrm_policy_alloc(): as for our SAs, xfrm_user calls it
	 * only for an XFRMA_SEC_CTX; pol->security stays NULL.
	 */
	pol = xfrm_policy_alloc(b->qn->net, GFP_KERNEL_ACCOUNT);
	if (!pol)
		return NULL;
	pol->selector.family = b->sel_family;
	pol->selector.saddr = out ? b->sel_local : b->sel_remote;
	pol->selector.prefixlen_s = out ? b->sel_local_prefix : b->sel_remote_prefix;
	pol->selector.daddr = out ? b->sel_remote : b->sel_local;
	pol->selector.prefixlen_d = out ? b->sel_remote_prefix : b->sel_local_prefix;
	pol->family = b->sel_family;
	pol->lft.soft_byte_limit = XFRM_INF;
	pol->lft.hard_byte_limit = XFRM_INF;
	pol->lft.soft_packet_limit = XFRM_INF;
	pol->lft.hard_packet_limit = XFRM_INF;
	pol->priority = b->pol_priority;
	pol->action = XFRM_POLICY_ALLOW;
	pol->type = XFRM_POLICY_TYPE_MAIN;
	pol->mark = b->mark;
	pol->if_id = b->if_id;

	pol->xfrm_nr = 1;
	t = &pol->xfrm_vec[0];
	t->id.proto = IPPROTO_ESP;
	t->reqid = b->reqid;
	t->encap_family = b->family;
	t->aalgos = ~0U;
	t->ealgos = ~0U;
	t->calgos = ~0U;
	t->allalgs = true;
	if (b->mode == QKD_SA_MODE_TUNNEL) {
		/* Transport mode takes the addresses from the packet. */
		t->mode = XFRM_MODE_TUNNEL;
		t->id.daddr = out ? b->remote : b->local;
		t->saddr = out ? b->local : b->remote;
	} else {
		t->mode = XFRM_MODE_TRANSPORT;
	}
	return pol;
}

/*
 * Remove the binding's policies (if nobody did) and drop our references.
 * As xfrm_user's DELPOLICY: under xfrm_cfg_mutex, notified, audited
 * (SPD-delete); one someone else deleted was audited by them.
 * security_xfrm_policy_delete() is not exported (6.1, 6.12): our policies
 * carry no security context, for which SELinux, the one LSM with xfrm
 * hooks, allows the deletion anyway.
 */
void qkd_sa_policies_del(struct qkd_sa *b)
{
	struct mutex *cfg = &b->qn->net->xfrm.xfrm_cfg_mutex;
	int dir;

	mutex_lock(cfg);
	for (dir = 0; dir < XFRM_POLICY_MAX; dir++) {
		struct xfrm_policy *pol = b->pol[dir];

		if (!pol)
			continue;
		if (!xfrm_policy_delete(pol, dir)) {
			qkd_sa_policy_notify(pol, dir, XFRM_MSG_DELPOLICY);
			xfrm_audit_policy_delete(pol, 1, true);
		}
		xfrm_pol_put(pol);
		b->pol[dir] = NULL;
	}
	mutex_unlock(cfg);
}

static void qkd_sa_policy_exists(struct netlink_ext_ack *extack, int dir)
{
	/* No NL_SET_ERR_MSG_FMT before 6.3. */
	if (dir == XFRM_POLICY_OUT)
		NL_SET_ERR_MSG_MOD(extack,
				   "an XFRM out policy with that selector, priority, mark and if_id exists");
	else if (dir == XFRM_POLICY_IN)
		NL_SET_ERR_MSG_MOD(extack,
				   "an XFRM in policy with that selector, priority, mark and if_id exists");
	else
		NL_SET_ERR_MSG_MOD(extack,
				   "an XFRM fwd policy with that selector, priority, mark and if_id exists");
}

/*
 * A policy of qkd_sa_policies_alloc() that was not inserted: marked dead
 * for xfrm_policy_destroy(), as xfrm_user's xfrm_policy_construct() does
 * on its error path (no exported call does it).
 */
void qkd_sa_policy_unbuild(struct xfrm_policy *pol)
{
	pol->walk.dead = 1;
	xfrm_policy_destroy(pol);
}

/* The binding's policies, by direction, not yet inserted. */
int qkd_sa_policies_alloc(struct qkd_sa *b,
			  struct xfrm_policy *pols[XFRM_POLICY_MAX])
{
	int dir;

	for (dir = 0; dir < XFRM_POLICY_MAX; dir++) {
		if ((dir == XFRM_POLICY_OUT && !qkd_sa_has_out(b)) ||
		    (dir != XFRM_POLICY_OUT && !qkd_sa_has_in(b)) ||
		    (dir == XFRM_POLICY_FWD && b->mode != QKD_SA_MODE_TUNNEL))
			continue;
		pols[dir] = qkd_sa_policy_alloc(b, dir);
		if (!pols[dir])
			return -ENOMEM;
	}
	return 0;
}

/*
 * Is the slot of each of @pols free? Exclusive insertion would fail on a
 * policy with the same type, selector, mark and if_id (and no security
 * context, as ours have none), which is what xfrm_policy_bysel_ctx() finds.
 */
int qkd_sa_policies_check(struct qkd_sa *b,
			  struct xfrm_policy *pols[XFRM_POLICY_MAX],
			  struct netlink_ext_ack *extack)
{
	struct xfrm_policy *pol;
	int dir, err;

	for (dir = 0; dir < XFRM_POLICY_MAX; dir++) {
		if (!pols[dir])
			continue;
		pol = xfrm_policy_bysel_ctx(b->qn->net, &pols[dir]->mark,
					    pols[dir]->if_id, pols[dir]->type,
					    dir, &pols[dir]->selector, NULL, 0,
					    &err);
		if (pol) {
			xfrm_pol_put(pol);
			qkd_sa_policy_exists(extack, dir);
			return -EEXIST;
		}
	}
	return 0;
}

/*
 * Insert @pols (each one moves to b->pol as it goes in). On failure those
 * inserted stay in b->pol for the caller to delete. Under b->lock and
 * xfrm_cfg_mutex; audited as xfrm_user's NEWPOLICY is (SPD-add, with the
 * result).
 */
int qkd_sa_policies_insert(struct qkd_sa *b,
			   struct xfrm_policy *pols[XFRM_POLICY_MAX],
			   struct netlink_ext_ack *extack)
{
	int dir, err;

	for (dir = 0; dir < XFRM_POLICY_MAX; dir++) {
		if (!pols[dir])
			continue;
		/* Exclusive: a policy someone else installed stays theirs. */
		err = xfrm_policy_insert(dir, pols[dir], 1);
		xfrm_audit_policy_add(pols[dir], err ? 0 : 1, true);
		if (err) {
			if (err == -EEXIST)
				qkd_sa_policy_exists(extack, dir);
			return err;
		}
		qkd_sa_policy_notify(pols[dir], dir, XFRM_MSG_NEWPOLICY);
		b->pol[dir] = pols[dir];
		pols[dir] = NULL;
	}
	return 0;
}

/*
 * A block policy in @pol's place: same selector, direction, priority, mark
 * and if_id, no template, infinite lifetime, as `ip xfrm policy add ...
 * action block` makes it. Nothing in it points into this module (xfrm's
 * own timer and RCU callbacks; no security context, no offload), so it can
 * outlive the module.
 */
static struct xfrm_policy *qkd_sa_block_alloc(struct xfrm_policy *pol)
{
	struct xfrm_policy *blk;

	/* Not charged to the caller: it is the administrator's from now on. */
	blk = xfrm_policy_alloc(xp_net(pol), GFP_KERNEL);
	if (!blk)
		return NULL;
	blk->selector = pol->selector;
	blk->family = pol->family;
	blk->lft.soft_byte_limit = XFRM_INF;
	blk->lft.hard_byte_limit = XFRM_INF;
	blk->lft.soft_packet_limit = XFRM_INF;
	blk->lft.hard_packet_limit = XFRM_INF;
	blk->priority = pol->priority;
	blk->action = XFRM_POLICY_BLOCK;
	blk->type = pol->type;
	blk->mark = pol->mark;
	blk->if_id = pol->if_id;
	return blk;
}

/*
 * Teardown fails closed (Documentation/ipsec.md, "Teardown"): each of the
 * binding's policies still in the SPD is swapped for a block policy, which
 * the module then forgets; the administrator lifts it with `ip xfrm policy
 * delete` or `flush`. A policy an administrator deleted or replaced is
 * theirs: nothing goes in its place. Under the namespace's xfrm_cfg_mutex,
 * which xfrm_user and af_key hold to change the SPD, so none of their
 * changes falls between the check and the swap. Under b->lock.
 */
void qkd_sa_policies_block(struct qkd_sa *b)
{
	struct mutex *cfg = &b->qn->net->xfrm.xfrm_cfg_mutex;
	struct xfrm_policy *pol, *cur, *blk;
	int dir, err;
	bool ours;

	mutex_lock(cfg);
	for (dir = 0; dir < XFRM_POLICY_MAX; dir++) {
		pol = b->pol[dir];
		if (!pol)
			continue;
		cur = xfrm_policy_bysel_ctx(b->qn->net, &pol->mark, pol->if_id,
					    pol->type, dir, &pol->selector,
					    NULL, 0, &err);
		ours = cur == pol;
		if (cur)
			xfrm_pol_put(cur);
		/*
		 * Without memory ours stays in the SPD, forgotten like a block
		 * policy: its template finds no SA, so it drops what it selects.
		 */
		blk = ours ? qkd_sa_block_alloc(pol) : NULL;
		/*
		 * Not exclusive: xfrm swaps ours for it under the SPD lock, as
		 * XFRM_MSG_UPDPOLICY does, so no packet finds neither.
		 */
		if (blk && xfrm_policy_insert(dir, blk, 0)) {
			qkd_sa_policy_unbuild(blk);
			blk = NULL;
		}
		if (blk) {
			/*
			 * Audited as what it is: the binding's policy left
			 * the SPD (as xfrm_user's DELPOLICY says it) and a
			 * block policy came in (as its UPDPOLICY does).
			 */
			xfrm_audit_policy_delete(pol, 1, true);
			xfrm_audit_policy_add(blk, 1, true);
			qkd_sa_policy_notify(blk, dir, XFRM_MSG_UPDPOLICY);
			xfrm_pol_put(blk);
		}
		xfrm_pol_put(pol);
		b->pol[dir] = NULL;
	}
	mutex_unlock(cfg);
}
