// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: the re-key state machine of an SA binding.
 *
 * Make-before-break, with no agreement on time between the ends: the
 * sender moves its outbound SA to the next generation when its policy says
 * so (a timer for seconds, the SA's soft byte and packet limits for the
 * rest); the receiver always has the next generation's inbound SA
 * installed ahead, notices the peer's switch when that SA carries traffic
 * (its soft packet limit is 1, so xfrm tells us, kernel/sa_km.c), then
 * installs the one after and drops the old inbound SA after a grace
 * period. SAs deleted under the binding are replaced within bounds
 * (Documentation/ipsec.md, "Resynchronisation"). The binding's state (ok,
 * dry, closed, stuck) and its reason follow from the flags kept here.
 *
 * All of it runs in the binding's delayed work (the timers: re-key, retry,
 * retire, poll), and SA_REKEY on request, under qkd_net.lock and then the
 * binding's lock (kernel/sa.h).
 */

#include <linux/jiffies.h>
#include <linux/workqueue.h>
#include <net/xfrm.h>

#include "sa.h"

/*
 * A re-key failure that no waiting can cure: the key was taken or flushed
 * at this end (keys are never pushed again at an index), or an SA the
 * module did not make holds the SPI. Retrying every QKD_SA_RETRY would
 * change nothing; the binding says `stuck` once and waits for SA_REKEY
 * (outbound) or to be made again.
 */
static bool qkd_sa_never(int err)
{
	return err == -EKEYEXPIRED || err == -EEXIST;
}

static void qkd_next(unsigned long *next, unsigned long when)
{
	if (time_before(when, *next))
		*next = when;
}

/*
 * Move the outbound SA on to the next generation, now: the work does it
 * when the policy says so, QKD_CMD_SA_REKEY when the administrator does.
 * If the stream has no key for it nothing changes. Under b->lock.
 */
static int qkd_sa_tx_switch(struct qkd_sa *b, struct netlink_ext_ack *extack)
{
	unsigned long now = jiffies;
	struct xfrm_state *x = b->out, *nx = NULL;
	int err;

	err = qkd_sa_install(b, true, b->out_gen + 1, &nx, extack);
	if (err)
		return err;
	b->out_failed = false;
	b->out_stuck = false;
	b->out_held = false;
	if (b->dir == QKD_SA_DIR_OUT)
		qkd_sa_discard(b, false, b->out_gen + 1);
	/*
	 * The new SA is in: adding it bumped the old one's genid, so cached
	 * routes look up again and find the new one (the old one is also
	 * marked dying, which xfrm_state_find() ranks lower). Packets already
	 * on their way through the old one finish during the grace period.
	 *
	 * The one write to xfrm's key-manager fields: xfrm exports no call
	 * that soft-expires an SA on request (xfrm_state_check_expire() does
	 * it from the lifetime counters only), and km.dying, set under
	 * x->lock as xfrm's own timer sets it, is what ranks the old SA below
	 * the new one in xfrm_state_find() whatever their add times and hash
	 * order.
	 */
	if (x) {
		qkd_sa_drop(b->out_old);
		b->out_old = x;
		spin_lock_bh(&x->lock);
		x->km.dying = 1;
		spin_unlock_bh(&x->lock);
		b->out_old_expires = now + QKD_SA_GRACE;
	}
	b->out = nx;
	b->out_gen++;
	b->rekeys++;
	b->next_rekey = now + (unsigned long)b->rekey_seconds * HZ;
	qkd_sa_notify_rekey(b, true, b->out_gen);
	return 0;
}

/* The sender's side: move the outbound SA on when it is due. */
static void qkd_sa_tx(struct qkd_sa *b, unsigned long *next)
{
	unsigned long now = jiffies;
	struct xfrm_state *x = b->out;
	u64 bytes, packets;
	bool due;
	int err;

	if (b->out_old && time_after_eq(now, b->out_old_expires)) {
		qkd_sa_drop(b->out_old);
		b->out_old = NULL;
	}
	if (b->out_old)
		qkd_next(next, b->out_old_expires);
	/*
	 * Time re-keys only an SA that carried traffic: the receiver learns
	 * of a switch from traffic, so an idle sender never runs more than
	 * one generation ahead of what the receiver has seen. A deleted SA's
	 * counters stay readable: what it sent counts.
	 */
	qkd_sa_curlft(x, &bytes, &packets);
	if (packets)
		b->out_seen = b->out_gen;
	/*
	 * An outbound SA that expired or that someone deleted (DELSA, a
	 * flush; the key-manager callback kicks us) goes now: our reference
	 * would keep its transform, and with it the key, while the binding
	 * waits for the next key. The re-key below replaces it.
	 */
	if (x && !qkd_sa_valid(x)) {
		qkd_sa_drop(x);
		b->out = NULL;
		x = NULL;
	}

	due = !qkd_sa_valid(x) || READ_ONCE(x->km.dying) ||
	      qkd_sa_oseq(x) >= QKD_SA_SEQ_SOFT ||
	      (b->rekey_seconds && time_after_eq(now, b->next_rekey) && packets);
	if (!due) {
		if (b->rekey_seconds)
			qkd_next(next, time_after(b->next_rekey, now) ?
				 b->next_rekey : now + QKD_SA_POLL);
		return;
	}
	if (b->out_stuck || b->out_held)
		return;
	/*
	 * Every re-key the policy makes follows traffic on the current SA;
	 * only a lost SA is replaced with none. Each replacement with no
	 * traffic since moves the peer's window no further, so a binding
	 * whose SAs someone deletes as fast as it installs them (iproute2's
	 * deleteall repeats until the SAD is empty) would burn a generation
	 * a round, beyond what the peer holds, until the stream ran dry.
	 * Replace at most QKD_SA_AUTO_AHEAD beyond the last generation that
	 * sent, then stop and say so once: SA_REKEY takes the last one the
	 * peer holds (Documentation/ipsec.md, "Resynchronisation").
	 */
	if (b->out_gen + 1 > b->out_seen + QKD_SA_AUTO_AHEAD) {
		b->out_held = true;
		return;
	}
	err = qkd_sa_tx_switch(b, NULL);
	if (err) {
		if (!b->out_failed)
			b->failures++;
		b->out_failed = true;
		b->out_stuck = qkd_sa_never(err);
		if (!b->out_stuck)
			qkd_next(next, now + QKD_SA_RETRY);
		return;
	}
	qkd_next(next, b->out_old_expires);
	if (b->rekey_seconds)
		qkd_next(next, b->next_rekey);
}

static struct qkd_sa_slot *qkd_sa_free_slot(struct qkd_sa *b)
{
	struct qkd_sa_slot *sl, *oldest = NULL;

	for (sl = b->in; sl < b->in + QKD_SA_IN_SLOTS; sl++) {
		if (!sl->x)
			return sl;
		if (sl->expires && (!oldest || sl->gen < oldest->gen))
			oldest = sl;
	}
	if (!oldest)
		return NULL;
	/* Re-keys faster than the grace period: the oldest goes early. */
	qkd_sa_drop(oldest->x);
	memset(oldest, 0, sizeof(*oldest));
	return oldest;
}

/*
 * Install inbound generations up to the newest in use plus the lookahead
 * (SA_NEW installs the first ones itself, qkd_sa_start()); after a loss,
 * up to the lookahead beyond the newest generation lost, so that the peer,
 * re-keying one generation at a time, finds SAs past the ones that are
 * gone.
 */
static int qkd_sa_rx_fill(struct qkd_sa *b)
{
	u64 base = b->in_gen;
	struct qkd_sa_slot *sl;
	int err;

	if (b->in_lost)
		base = max(base, b->in_lost_max + 1);
	while (b->in_next <= base + QKD_SA_LOOKAHEAD) {
		sl = qkd_sa_free_slot(b);
		if (WARN_ON_ONCE(!sl))
			return -ENOSPC;
		err = qkd_sa_install(b, false, b->in_next, &sl->x, NULL);
		if (err)
			return err;
		sl->gen = b->in_next;
		sl->expires = 0;
		if (b->dir == QKD_SA_DIR_IN)
			qkd_sa_discard(b, true, b->in_next);
		b->rekeys++;
		qkd_sa_notify_rekey(b, false, sl->gen);
		b->in_next++;
	}
	return 0;
}

/* The receiver's side: follow the peer's switch, retire, install ahead. */
static void qkd_sa_rx(struct qkd_sa *b, unsigned long *next)
{
	unsigned long now = jiffies;
	struct qkd_sa_slot *sl;
	u64 bytes, packets;
	int err;

	/* A deleted SA's counters stay readable: what it carried counts. */
	for (sl = b->in; sl < b->in + QKD_SA_IN_SLOTS; sl++) {
		if (!sl->x || sl->gen <= b->in_gen)
			continue;
		qkd_sa_curlft(sl->x, &bytes, &packets);
		if (packets)
			b->in_gen = sl->gen;
	}
	/* The peer's traffic beyond the loss: found again. */
	if (b->in_lost && b->in_gen > b->in_lost_max) {
		b->in_lost = false;
		b->in_held = false;
	}
	for (sl = b->in; sl < b->in + QKD_SA_IN_SLOTS; sl++) {
		if (!sl->x)
			continue;
		/*
		 * Gone: its transform (and key) go now too. One the peer
		 * uses or will use that did not expire was deleted under us,
		 * and its key is used up (never again in the SAD): the peer
		 * must re-key past it. Until its traffic is seen there the
		 * binding is closed, and SAs are installed beyond it.
		 */
		if (!qkd_sa_valid(sl->x)) {
			if (sl->gen >= b->in_gen && !qkd_sa_expired(sl->x)) {
				if (!b->in_lost || sl->gen > b->in_lost_max)
					b->in_lost_max = sl->gen;
				b->in_lost = true;
				/*
				 * Beyond the window installed ahead of the
				 * peer: a replacement for an earlier loss,
				 * lost before the peer's traffic reached it.
				 * Installing more would move the peer's goal
				 * on a window a round (deleteall): stop, so
				 * that the peer needs a bounded number of
				 * re-keys, until SA_REKEY here resumes.
				 */
				if (sl->gen > b->in_gen + QKD_SA_LOOKAHEAD)
					b->in_held = true;
			}
			qkd_sa_drop(sl->x);
			memset(sl, 0, sizeof(*sl));
			continue;
		}
		if (sl->gen < b->in_gen && !sl->expires)
			sl->expires = now + QKD_SA_GRACE;
		if (sl->expires && time_after_eq(now, sl->expires)) {
			qkd_sa_drop(sl->x);
			memset(sl, 0, sizeof(*sl));
			continue;
		}
		if (sl->expires)
			qkd_next(next, sl->expires);
	}
	err = b->in_stuck || b->in_held ? 0 : qkd_sa_rx_fill(b);
	if (err) {
		if (!b->in_failed)
			b->failures++;
		b->in_failed = true;
		b->in_stuck = qkd_sa_never(err);
		if (!b->in_stuck)
			qkd_next(next, now + QKD_SA_RETRY);
	} else if (!b->in_stuck) {
		b->in_failed = false;
	}
	qkd_next(next, now + QKD_SA_POLL);
}

struct xfrm_state *qkd_sa_in_current(const struct qkd_sa *b)
{
	const struct qkd_sa_slot *sl;

	for (sl = b->in; sl < b->in + QKD_SA_IN_SLOTS; sl++)
		if (sl->x && sl->gen == b->in_gen)
			return sl->x;
	return NULL;
}

/*
 * Could the peer's traffic still get in? Any valid inbound SA of the newest
 * generation seen or one ahead will do: when the peer stops sending, the SA
 * it used last reaches its hard lifetime while the peer has moved on to the
 * next one (which it has not used yet), and nothing is closed.
 */
static bool qkd_sa_in_open(const struct qkd_sa *b)
{
	const struct qkd_sa_slot *sl;

	for (sl = b->in; sl < b->in + QKD_SA_IN_SLOTS; sl++)
		if (sl->gen >= b->in_gen && qkd_sa_valid(sl->x))
			return true;
	return false;
}

u8 qkd_sa_compute_state(const struct qkd_sa *b)
{
	if (b->out_stuck || b->in_stuck)
		return QKD_SA_STATE_STUCK;
	/*
	 * An inbound SA deleted under us: the peer's traffic is dropped now
	 * or at its next re-key, and the peer cannot know. Closed, never ok,
	 * until its traffic arrives beyond the lost generations.
	 */
	if (b->in_lost || b->out_behind ||
	    (qkd_sa_has_out(b) && !qkd_sa_out_open(b->out)) ||
	    (qkd_sa_has_in(b) && !qkd_sa_in_open(b)))
		return QKD_SA_STATE_CLOSED;
	if (b->out_failed || b->in_failed)
		return QKD_SA_STATE_DRY;
	return QKD_SA_STATE_OK;
}

/* Why @state (enum qkd_sa_reason), 0 when ok. */
u8 qkd_sa_compute_reason(const struct qkd_sa *b, u8 state)
{
	switch (state) {
	case QKD_SA_STATE_STUCK:
		return QKD_SA_REASON_KEY_GONE;
	case QKD_SA_STATE_DRY:
		return QKD_SA_REASON_NO_KEY;
	case QKD_SA_STATE_CLOSED:
		if (b->out_behind)
			return QKD_SA_REASON_PEER_BEHIND;
		if (b->out_held || b->in_held)
			return QKD_SA_REASON_LOST_AGAIN;
		if (b->in_lost)
			return QKD_SA_REASON_IN_DELETED;
		return b->out_failed || b->in_failed ? QKD_SA_REASON_NO_KEY :
		       QKD_SA_REASON_EXPIRED;
	}
	return 0;
}

void qkd_sa_work(struct work_struct *work)
{
	struct qkd_sa *b = container_of(to_delayed_work(work), struct qkd_sa,
					work);
	unsigned long now = jiffies, next = now + 3600 * HZ;
	struct qkd_net *qn = b->qn;
	u8 state, reason;

	/*
	 * qkd_net.lock first (the lock order), as SA_NEW and SA_REKEY hold
	 * it: the events of the keys this run takes then follow the
	 * KEYS_ADDED of those keys (qkd_sa_take()). Only tried, because
	 * qkd_sa_destroy() holds it while it cancels this work; when busy,
	 * the run comes a jiffy later.
	 */
	if (!mutex_trylock(&qn->lock)) {
		queue_delayed_work(system_wq, &b->work, 1);
		return;
	}
	mutex_lock(&b->lock);
	if (b->dead)
		goto out;
	if (qkd_sa_has_out(b))
		qkd_sa_tx(b, &next);
	if (qkd_sa_has_in(b))
		qkd_sa_rx(b, &next);
	state = qkd_sa_compute_state(b);
	reason = qkd_sa_compute_reason(b, state);
	if (state != b->state || reason != b->reason) {
		b->state = state;
		b->reason = reason;
		qkd_sa_notify_state(b);
	}
	/* A kick that came in meanwhile stays queued: it is sooner. */
	queue_delayed_work(system_wq, &b->work,
			   time_after(next, now) ? next - now : 0);
out:
	mutex_unlock(&b->lock);
	mutex_unlock(&qn->lock);
}

/*
 * May the outbound SA move on now (0), only forced (1), or not (-EAGAIN)?
 * The receiver installs QKD_SA_LOOKAHEAD
 * generations beyond the newest it has seen carrying traffic, and learns
 * of a switch only from traffic: so a re-key on request goes no further
 * than that beyond the newest generation that has sent anything, or the
 * peer would be left behind for good. (A re-key by policy is only ever due
 * on an SA that carried traffic, or one that is gone.)
 */
static int qkd_sa_rekey_allowed(struct qkd_sa *b, bool force,
				struct netlink_ext_ack *extack)
{
	u64 bytes, packets;

	qkd_sa_curlft(b->out, &bytes, &packets);
	if (packets)
		b->out_seen = b->out_gen;
	if (b->out_gen + 1 <= b->out_seen + QKD_SA_LOOKAHEAD)
		return 0;
	/*
	 * Sending on it later proves nothing (the peer drops it): the
	 * binding stays closed until it is made again.
	 */
	if (force)
		return 1;
	NL_SET_ERR_MSG_MOD(extack,
			   "no traffic on the last re-keys: the peer could not follow another one (send first, or force)");
	return -EAGAIN;
}

/*
 * Re-key now: the outbound SA moves on to the next generation as if its
 * policy said so; the peer follows when traffic arrives on the new SA.
 * Replies with the binding. Without a key in the stream nothing changes.
 *
 * A binding that stopped replacing lost SAs (lost_again) resumes instead:
 * a lost outbound SA is replaced (by the last generation the peer holds,
 * within qkd_sa_rekey_allowed()), inbound SAs are installed again beyond
 * the lost ones; a healthy outbound SA is left as it is. Under b->lock.
 */
int qkd_sa_rekey(struct qkd_sa *b, bool force,
		 struct netlink_ext_ack *extack)
{
	bool held = b->out_held || b->in_held;
	int err = 0, behind;

	if (!held || b->out_held) {
		behind = qkd_sa_rekey_allowed(b, force, extack);
		err = behind < 0 ? behind : qkd_sa_tx_switch(b, extack);
		if (!err && behind)
			b->out_behind = true;
	}
	/* The work installs the inbound SAs beyond the lost ones. */
	if (!err)
		b->in_held = false;
	return err;
}
