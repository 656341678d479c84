// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: the per-network-namespace key store: links, streams and keys.
 *
 * Keys live in a per-stream xarray indexed by key index, one kmalloc'ed
 * buffer each, charged to the memory cgroup of the pusher. A key leaves the
 * store by exactly one of: delivery (taken out under the xarray lock, so two
 * readers never get the same index), flush, or deletion of its stream, link
 * or namespace; every one of those paths frees it with kfree_sensitive().
 *
 * The store is the bottom layer (qkd.h): it calls nothing above it. What
 * happens it reports on its notifier chain; a consumer of a stream reaches
 * the keys through struct qkd_consumer, and is told through its ops when
 * the store takes the stream back.
 */

#include <linux/jhash.h>
#include <linux/netlink.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <net/netns/generic.h>

#include "qkd.h"

static unsigned int qkd_net_id __read_mostly;

/* Subscribers of store events (netlink.c), registered at module init. */
static BLOCKING_NOTIFIER_HEAD(qkd_store_chain);

int qkd_store_register_notifier(struct notifier_block *nb)
{
	return blocking_notifier_chain_register(&qkd_store_chain, nb);
}

int qkd_store_unregister_notifier(struct notifier_block *nb)
{
	return blocking_notifier_chain_unregister(&qkd_store_chain, nb);
}

/* Send a store event: under qkd_net.lock, right after its cause. */
static void qkd_store_notify(enum qkd_store_event event,
			     struct qkd_store_event_info *info)
{
	lockdep_assert_held(&info->qn->lock);
	blocking_notifier_call_chain(&qkd_store_chain, event, info);
}

static void qkd_store_notify_stream(struct qkd_net *qn,
				    enum qkd_store_event event,
				    const struct qkd_stream *s, u32 stored)
{
	struct qkd_store_event_info info = {
		.qn = qn, .stream = s, .stored = stored,
	};

	qkd_store_notify(event, &info);
}

struct qkd_net *qkd_net(const struct net *net)
{
	return net_generic(net, qkd_net_id);
}

static void qkd_counters_add(struct qkd_counters *sum,
			     const struct qkd_counters *c)
{
	sum->added += c->added;
	sum->delivered += c->delivered;
	sum->flushed += c->flushed;
	sum->stored += c->stored;
	sum->bytes_stored += c->bytes_stored;
}

/*
 * Account a change of a stream's keys. Called under the stream's xarray
 * lock; deliveries touch nothing shared but this stream's cache lines.
 */
static void qkd_stream_account(struct qkd_stream *s, s64 added, s64 delivered,
			       s64 flushed, s64 stored)
{
	s->stats.added += added;
	s->stats.delivered += delivered;
	s->stats.flushed += flushed;
	WRITE_ONCE(s->stats.stored, s->stats.stored + stored);
	s->stats.bytes_stored = s->stats.stored * s->key_size;
}

void qkd_stream_counters(struct qkd_stream *s, struct qkd_counters *c)
{
	xa_lock(&s->keys);
	*c = s->stats;
	xa_unlock(&s->keys);
}

/* A link's counters: its live streams' plus its deleted streams'. */
void qkd_link_counters(const struct qkd_link *link, struct qkd_counters *c)
{
	struct qkd_counters sc;
	struct qkd_stream *s;

	*c = link->retired;
	list_for_each_entry(s, &link->streams, link_list) {
		qkd_stream_counters(s, &sc);
		qkd_counters_add(c, &sc);
	}
}

/* A node's counters over its whole life: pushed = delivered + flushed + stored. */
void qkd_net_counters(struct qkd_net *qn, struct qkd_counters *c)
{
	struct qkd_counters sc;
	struct qkd_stream *s;

	lockdep_assert_held(&qn->lock);

	*c = qn->retired;
	list_for_each_entry(s, &qn->stream_list, list) {
		qkd_stream_counters(s, &sc);
		qkd_counters_add(c, &sc);
	}
}

/* ---------------------------------------------------------------- links */

struct qkd_link *qkd_link_find(struct qkd_net *qn, u32 id, const char *name)
{
	struct qkd_link *link;
	unsigned long i;

	lockdep_assert_held(&qn->lock);

	if (id)
		return xa_load(&qn->links, id);
	xa_for_each(&qn->links, i, link)
		if (!strcmp(link->name, name))
			return link;
	return NULL;
}

/*
 * The node's set of links, streams or claims changed: dumps that resume
 * across it say so (qkd_net.dump_gen). Under qkd_net.lock.
 */
static void qkd_net_changed(struct qkd_net *qn)
{
	lockdep_assert_held(&qn->lock);

	if (!++qn->dump_gen)
		qn->dump_gen = 1;	/* 0 is "no generation" to the core */
}

static void qkd_link_put(struct qkd_link *link)
{
	if (refcount_dec_and_test(&link->refs))
		kfree(link);
}

int qkd_link_create(struct qkd_net *qn, u32 id, const char *name,
		    const char *peer, u8 role, struct qkd_link **out)
{
	struct qkd_link *link;
	int err;

	lockdep_assert_held(&qn->lock);

	if (qkd_link_find(qn, 0, name))
		return -EEXIST;
	if (qn->n_links >= QKD_NETNS_MAX_LINKS)
		return -ENOSPC;

	link = kzalloc(sizeof(*link), GFP_KERNEL_ACCOUNT);
	if (!link)
		return -ENOMEM;
	refcount_set(&link->refs, 1);
	strscpy(link->name, name, sizeof(link->name));
	if (peer)
		strscpy(link->peer, peer, sizeof(link->peer));
	link->role = role;
	link->admin_state = QKD_LINK_STATE_DOWN;
	link->reported_state = QKD_LINK_STATE_DOWN;
	INIT_LIST_HEAD(&link->streams);

	if (id) {
		link->id = id;
		err = xa_insert(&qn->links, id, link, GFP_KERNEL_ACCOUNT);
		if (err == -EBUSY)
			err = -EEXIST;
	} else {
		err = xa_alloc(&qn->links, &link->id, link, xa_limit_32b,
			       GFP_KERNEL_ACCOUNT);
		if (err == -EBUSY)
			err = -ENOSPC;
	}
	if (err) {
		kfree(link);
		return err;
	}
	qn->n_links++;
	qkd_net_changed(qn);
	*out = link;
	return 0;
}

static bool qkd_link_has_keys(const struct qkd_link *link)
{
	const struct qkd_stream *s;

	list_for_each_entry(s, &link->streams, link_list)
		if (qkd_stream_stored(s))
			return true;
	return false;
}

/*
 * The state a link shows: its admin state, or exhausted when it is up and
 * has streams but not one key. Under qkd_net.lock.
 */
u8 qkd_link_state(const struct qkd_link *link)
{
	if (link->admin_state != QKD_LINK_STATE_UP)
		return QKD_LINK_STATE_DOWN;
	if (link->n_streams && !qkd_link_has_keys(link))
		return QKD_LINK_STATE_EXHAUSTED;
	return QKD_LINK_STATE_UP;
}

/*
 * Announce the link's state if it changed since the last announcement:
 * after a state change, a push, a flush, a stream deletion, or a delivery
 * that emptied a stream.
 */
static void qkd_link_update_state(struct qkd_net *qn, struct qkd_link *link)
{
	struct qkd_store_event_info info = { .qn = qn, .link = link };

	lockdep_assert_held(&qn->lock);

	info.state = qkd_link_state(link);
	if (link->reported_state == info.state)
		return;
	link->reported_state = info.state;
	qkd_store_notify(QKD_STORE_LINK_STATE, &info);
}

void qkd_link_set_state(struct qkd_net *qn, struct qkd_link *link, u8 state)
{
	lockdep_assert_held(&qn->lock);

	link->admin_state = state;
	qkd_link_update_state(qn, link);
}

/*
 * May a requester delete @link now? Each of its streams' claiming consumer
 * is asked (qkd_stream_may_delete()); the first refusal is the answer.
 */
int qkd_link_may_delete(struct qkd_net *qn, struct qkd_link *link,
			struct netlink_ext_ack *extack)
{
	struct qkd_stream *s;
	int err;

	lockdep_assert_held(&qn->lock);

	list_for_each_entry(s, &link->streams, link_list) {
		err = qkd_stream_may_delete(qn, s, extack);
		if (err)
			return err;
	}
	return 0;
}

void qkd_link_delete(struct qkd_net *qn, struct qkd_link *link, bool notify)
{
	struct qkd_stream *s, *tmp;

	lockdep_assert_held(&qn->lock);

	list_for_each_entry_safe(s, tmp, &link->streams, link_list)
		qkd_stream_delete(qn, s, notify);
	xa_erase(&qn->links, link->id);
	qn->n_links--;
	qkd_net_changed(qn);
	if (notify) {
		struct qkd_store_event_info info = { .qn = qn, .link = link };

		qkd_store_notify(QKD_STORE_LINK_DEL, &info);
	}
	qkd_link_put(link);
}

/* -------------------------------------------------------------- streams */

static u32 qkd_stream_hash(const u8 *id)
{
	return jhash(id, QKD_STREAM_ID_LEN, 0);
}

struct qkd_stream *qkd_stream_find_locked(struct qkd_net *qn, const u8 *id)
{
	struct qkd_stream *s;

	lockdep_assert_held(&qn->lock);

	hash_for_each_possible(qn->streams, s, hnode, qkd_stream_hash(id))
		if (!memcmp(s->id, id, QKD_STREAM_ID_LEN))
			return s;
	return NULL;
}

/* Find a live stream without the node lock; the caller must put it. */
struct qkd_stream *qkd_stream_get(struct qkd_net *qn, const u8 *id)
{
	struct qkd_stream *s, *found = NULL;

	rcu_read_lock();
	hash_for_each_possible_rcu(qn->streams, s, hnode, qkd_stream_hash(id)) {
		if (!memcmp(s->id, id, QKD_STREAM_ID_LEN)) {
			if (refcount_inc_not_zero(&s->refs))
				found = s;
			break;
		}
	}
	rcu_read_unlock();
	return found;
}

/*
 * Zero and free every key of a stream; returns how many there were. Keys are
 * counted as flushed. The lock is dropped now and then so that flushing a
 * million keys does not stall the CPU.
 */
static u32 qkd_stream_drop_keys(struct qkd_stream *s)
{
	XA_STATE(xas, &s->keys, 0);
	u32 dropped = 0, batch = 0;
	u8 *key;

	xas_lock(&xas);
	xas_for_each(&xas, key, ULONG_MAX) {
		xas_store(&xas, NULL);
		kfree_sensitive(key);
		dropped++;
		if (++batch < 256)
			continue;
		qkd_stream_account(s, 0, 0, batch, -(s64)batch);
		batch = 0;
		xas_pause(&xas);
		xas_unlock(&xas);
		cond_resched();
		xas_lock(&xas);
	}
	qkd_stream_account(s, 0, 0, batch, -(s64)batch);
	s->low_index = s->next_index;
	xas_unlock(&xas);
	return dropped;
}

void qkd_stream_put(struct qkd_stream *s)
{
	if (!refcount_dec_and_test(&s->refs))
		return;
	/* Deletion emptied it; a key put back by a racing reader is not lost. */
	qkd_stream_drop_keys(s);
	xa_destroy(&s->keys);
	qkd_link_put(s->link);
	kfree_rcu(s, rcu);
}

int qkd_stream_create(struct qkd_net *qn, struct qkd_link *link, const u8 *id,
		      u32 key_size, u32 max_keys, u32 low_water,
		      struct qkd_stream **out)
{
	struct qkd_stream *s;

	lockdep_assert_held(&qn->lock);

	if (qkd_stream_find_locked(qn, id))
		return -EEXIST;
	if (qn->n_streams >= QKD_NETNS_MAX_STREAMS)
		return -ENOSPC;

	s = kzalloc(sizeof(*s), GFP_KERNEL_ACCOUNT);
	if (!s)
		return -ENOMEM;
	refcount_set(&s->refs, 1);
	s->qn = qn;
	s->link = link;
	refcount_inc(&link->refs);
	memcpy(s->id, id, QKD_STREAM_ID_LEN);
	s->key_size = key_size;
	s->max_keys = max_keys;
	s->low_water = low_water;
	xa_init(&s->keys);

	hash_add_rcu(qn->streams, &s->hnode, qkd_stream_hash(id));
	list_add_tail(&s->list, &qn->stream_list);
	list_add_tail(&s->link_list, &link->streams);
	link->n_streams++;
	qn->n_streams++;
	qkd_net_changed(qn);
	*out = s;
	return 0;
}

/*
 * May a requester delete @s now? Its claiming consumer says: an SA binding
 * asks the security modules about each of its SAs, as xfrm_user's flush
 * does, so that a process refused SA_DEL cannot delete the binding by
 * deleting its stream or link instead.
 */
int qkd_stream_may_delete(struct qkd_net *qn, struct qkd_stream *s,
			  struct netlink_ext_ack *extack)
{
	struct qkd_consumer *c = s->owner;

	lockdep_assert_held(&qn->lock);

	if (!c || !c->ops->may_detach)
		return 0;
	return c->ops->may_detach(c, extack);
}

void qkd_stream_delete(struct qkd_net *qn, struct qkd_stream *s, bool notify)
{
	struct qkd_link *link = s->link;

	lockdep_assert_held(&qn->lock);

	/* Its claiming consumer goes first: it holds a reference and takes keys. */
	if (s->owner)
		s->owner->ops->detach(s->owner, QKD_DETACH_STREAM);
	WARN_ON_ONCE(s->owner);
	hash_del_rcu(&s->hnode);
	list_del(&s->list);
	list_del(&s->link_list);
	link->n_streams--;
	qn->n_streams--;
	qkd_net_changed(qn);

	xa_lock(&s->keys);
	s->dead = true;
	xa_unlock(&s->keys);
	qkd_stream_drop_keys(s);
	/*
	 * Its counts live on in the link's and node's totals. A reader that
	 * faulted may still put a key back and drop it as flushed in
	 * qkd_stream_return_key(); that one is counted in the node alone.
	 */
	xa_lock(&s->keys);
	qkd_counters_add(&link->retired, &s->stats);
	qkd_counters_add(&qn->retired, &s->stats);
	xa_unlock(&s->keys);

	if (notify) {
		qkd_store_notify_stream(qn, QKD_STORE_STREAM_DEL, s, 0);
		qkd_link_update_state(qn, link);
	}
	/* Pollers of this stream now see EPOLLERR. */
	wake_up_interruptible_all(&qn->poll_wait);
	qkd_stream_put(s);
}

u32 qkd_stream_flush(struct qkd_net *qn, struct qkd_stream *s)
{
	u32 n;

	lockdep_assert_held(&qn->lock);

	n = qkd_stream_drop_keys(s);
	if (n) {
		qkd_store_notify_stream(qn, QKD_STORE_STREAM_EMPTY, s, 0);
		qkd_link_update_state(qn, s->link);
	}
	return n;
}

u64 qkd_stream_next_index(struct qkd_stream *s)
{
	u64 next;

	xa_lock(&s->keys);
	next = s->next_index;
	xa_unlock(&s->keys);
	return next;
}

/* Lowest stored index, or next_index when the stream is empty. */
u64 qkd_stream_first_index(struct qkd_stream *s)
{
	XA_STATE(xas, &s->keys, 0);
	u64 first;

	xas_lock(&xas);
	first = s->next_index;
	xas_set(&xas, s->low_index);
	if (first && xas_find(&xas, first - 1))
		first = xas.xa_index;
	xas_unlock(&xas);
	return first;
}

/*
 * Push a batch of @len / key_size consecutive keys starting at index @first.
 * All or nothing: the keys are inserted above next_index, where no reader
 * looks, and published by moving next_index in one step at the end.
 */
int qkd_stream_push(struct qkd_net *qn, struct qkd_stream *s, u64 first,
		    const u8 *data, u32 len, struct netlink_ext_ack *extack)
{
	struct qkd_store_event_info info = { .qn = qn, .stream = s };
	struct qkd_counters node;
	u32 ks = s->key_size, n, i;
	int err;

	lockdep_assert_held(&qn->lock);

	if (!len || len % ks) {
		NL_SET_ERR_MSG_MOD(extack,
				   "key data length is not a multiple of the key size");
		return -EINVAL;
	}
	n = len / ks;
	if (first > QKD_INDEX_MAX - (n - 1)) {
		NL_SET_ERR_MSG_MOD(extack,
				   "last key index of the batch is above the maximum");
		return -ERANGE;
	}
	/* next_index and the counters change only under qn->lock. */
	if (first < s->next_index) {
		NL_SET_ERR_MSG_MOD(extack,
				   "key index already pushed (below the next index)");
		return -EEXIST;
	}
	if ((u64)qkd_stream_stored(s) + n > s->max_keys) {
		NL_SET_ERR_MSG_MOD(extack, "stream is full (max-keys)");
		return -ENOSPC;
	}
	qkd_net_counters(qn, &node);
	if (node.stored + n > qkd_netns_max_keys ||
	    node.bytes_stored + (u64)n * ks > qkd_netns_max_bytes) {
		NL_SET_ERR_MSG_MOD(extack, "key store of this network namespace is full");
		return -ENOSPC;
	}

	for (i = 0; i < n; i++) {
		u8 *key = kmemdup(data + (size_t)i * ks, ks, GFP_KERNEL_ACCOUNT);

		if (!key) {
			err = -ENOMEM;
			goto undo;
		}
		err = xa_insert(&s->keys, first + i, key, GFP_KERNEL_ACCOUNT);
		if (err) {
			kfree_sensitive(key);
			goto undo;
		}
	}

	xa_lock(&s->keys);
	s->next_index = first + n;
	qkd_stream_account(s, n, 0, 0, n);
	info.stored = s->stats.stored;
	xa_unlock(&s->keys);

	wake_up_interruptible_all(&qn->poll_wait);
	info.first = first;
	info.count = n;
	qkd_store_notify(QKD_STORE_KEYS_ADDED, &info);
	qkd_link_update_state(qn, s->link);
	return 0;

undo:
	while (i--)
		kfree_sensitive(xa_erase(&s->keys, first + i));
	return err;
}

/*
 * Take one key out of the store: the lowest stored index, or @index when
 * @by_index. @consumer is who asks (enum qkd_stream_consumer: NONE for a
 * shared consumer, else the kind of the stream's claiming consumer): -EBUSY
 * on a stream that another consumer owns. On success the caller owns *@key
 * (key_size bytes) and must kfree_sensitive() it or give it back with
 * qkd_stream_return_key().
 */
static int qkd_stream_take_key(struct qkd_stream *s, u8 consumer,
			       bool by_index, u64 index, u8 **key,
			       struct qkd_take_result *res)
{
	XA_STATE(xas, &s->keys, index);
	u32 before;
	u8 *k;
	int err = 0;

	xas_lock(&xas);
	if (s->dead) {
		err = -ENOENT;
		goto out;
	}
	if (s->consumer != consumer) {
		err = -EBUSY;
		goto out;
	}
	if (by_index) {
		if (index >= s->next_index) {
			err = -ENOKEY;
			goto out;
		}
		k = xas_load(&xas);
		if (!k) {
			err = -EKEYEXPIRED;
			goto out;
		}
	} else {
		xas_set(&xas, s->low_index);
		k = s->next_index ? xas_find(&xas, s->next_index - 1) : NULL;
		if (!k) {
			err = -EAGAIN;
			goto out;
		}
	}
	xas_store(&xas, NULL);
	/* GET_KEY found the lowest stored key; by index, maybe not. */
	if (!by_index || xas.xa_index == s->low_index)
		s->low_index = xas.xa_index + 1;
	before = s->stats.stored;
	qkd_stream_account(s, 0, 1, 0, -1);

	*key = k;
	res->index = xas.xa_index;
	res->stored_after = before - 1;
	res->crossed_low_water = s->low_water && before >= s->low_water &&
				 before - 1 < s->low_water;
	res->emptied = before == 1;
out:
	xas_unlock(&xas);
	return err;
}

/*
 * Take the @want lowest stored keys in one step (ETSI 014 enc_keys with
 * "number"): all of them or none, or with @partial as many as there are.
 * On success *@got keys are in @keys[] (the caller owns them, as with
 * qkd_stream_take_key()) with their indices in @indices[], in index order.
 * For shared consumers only: -EBUSY on a stream that a consumer claimed.
 */
static int qkd_stream_take_keys(struct qkd_stream *s, u32 want, bool partial,
				u8 **keys, u64 *indices, u32 *got,
				struct qkd_take_result *res)
{
	XA_STATE(xas, &s->keys, 0);
	u32 before, n = 0;
	u8 *k;
	int err = 0;

	xas_lock(&xas);
	xas_set(&xas, s->low_index);
	before = s->stats.stored;
	if (s->dead) {
		err = -ENOENT;
		goto out;
	}
	if (s->consumer != QKD_STREAM_CONSUMER_NONE) {
		err = -EBUSY;
		goto out;
	}
	if (!before || (before < want && !partial)) {
		err = -EAGAIN;
		goto out;
	}
	want = min(want, before);
	/* stored > 0 means next_index > 0; nothing lives at or above it */
	xas_for_each(&xas, k, s->next_index - 1) {
		xas_store(&xas, NULL);
		keys[n] = k;
		indices[n] = xas.xa_index;
		if (++n == want)
			break;
	}
	/* the counters say @want keys are stored at or above low_index */
	if (WARN_ON_ONCE(n != want) && !n) {
		err = -EAGAIN;
		goto out;
	}
	s->low_index = indices[n - 1] + 1;
	qkd_stream_account(s, 0, n, 0, -(s64)n);

	res->index = indices[0];
	res->stored_after = before - n;
	res->crossed_low_water = s->low_water && before >= s->low_water &&
				 before - n < s->low_water;
	res->emptied = before == n;
out:
	xas_unlock(&xas);
	*got = n;
	return err;
}

/*
 * Give back a key that no consumer got: a reader's buffer took none of its
 * bytes, a transform refused it, an SA could not be built. Only the taker
 * knew of it, so its index is still free. If the
 * stream died meanwhile, or no memory is left for the slot, the key is
 * dropped as flushed: zeroed, never delivered.
 */
static void qkd_stream_return_key(struct qkd_stream *s, u64 index, u8 *key)
{
	bool dead;
	int err = -ENOENT;

	xa_lock(&s->keys);
	dead = s->dead;
	/* Non-blocking, so the lock is never dropped under us. */
	if (!dead)
		err = __xa_insert(&s->keys, index, key,
				  GFP_NOWAIT | __GFP_ACCOUNT | __GFP_NOWARN);
	if (!err) {
		qkd_stream_account(s, 0, -1, 0, 1);
		s->low_index = min(s->low_index, index);
	} else if (!dead) {
		qkd_stream_account(s, 0, -1, 1, 0);
	}
	xa_unlock(&s->keys);

	if (!err) {
		wake_up_interruptible_all(&s->qn->poll_wait);
		return;
	}
	kfree_sensitive(key);
	if (dead) {
		/* Its counters were retired as delivered: make it flushed. */
		mutex_lock(&s->qn->lock);
		s->link->retired.delivered--;
		s->link->retired.flushed++;
		s->qn->retired.delivered--;
		s->qn->retired.flushed++;
		mutex_unlock(&s->qn->lock);
	}
}

/* ------------------------------------------------------------ consumers */

/*
 * The events a delivery may cause, under qkd_net.lock, outside the stream's
 * lock. @link_state: announce the link's state too (not while a claiming
 * consumer's all-or-nothing start may still give its keys back).
 */
static void qkd_stream_taken(struct qkd_stream *s,
			     const struct qkd_take_result *res, bool link_state)
{
	struct qkd_net *qn = s->qn;

	lockdep_assert_held(&qn->lock);

	if (res->crossed_low_water)
		qkd_store_notify_stream(qn, QKD_STORE_STREAM_LOW, s,
					res->stored_after);
	if (res->emptied) {
		qkd_store_notify_stream(qn, QKD_STORE_STREAM_EMPTY, s, 0);
		if (link_state)
			qkd_link_update_state(qn, s->link);
	}
}

/**
 * qkd_consumer_open() - a shared consumer opens a stream for one call
 * @c: the consumer
 * @qn: the node
 * @stream_id: the stream
 *
 * Without qkd_net.lock. Close it with qkd_consumer_close().
 *
 * Return: 0, or -ENOENT: no such stream.
 */
int qkd_consumer_open(struct qkd_consumer *c, struct qkd_net *qn,
		      const u8 *stream_id)
{
	c->ops = NULL;
	c->starting = false;
	c->stream = qkd_stream_get(qn, stream_id);
	return c->stream ? 0 : -ENOENT;
}

void qkd_consumer_close(struct qkd_consumer *c)
{
	qkd_stream_put(c->stream);
	c->stream = NULL;
}

/**
 * qkd_consumer_claim() - make @s the consumer's alone
 * @c: the consumer
 * @ops: its kind and what the store asks of it
 * @s: a live stream of the node (found under qkd_net.lock, which the
 *	caller holds)
 *
 * Until qkd_consumer_release(), only @c may take @s's keys; everyone else
 * gets -EBUSY. Takes in flight finish: a key already taken by a reader is
 * not the claimer's to use (its index is gone from the store, which the
 * claimer sees as for any key delivered before). The consumer starts out
 * starting: see qkd_consumer_activate().
 *
 * Return: 0, or -EBUSY: another consumer has claimed @s.
 */
int qkd_consumer_claim(struct qkd_consumer *c,
		       const struct qkd_consumer_ops *ops, struct qkd_stream *s)
{
	struct qkd_net *qn = s->qn;
	int err = 0;

	lockdep_assert_held(&qn->lock);

	xa_lock(&s->keys);
	if (s->consumer != QKD_STREAM_CONSUMER_NONE)
		err = -EBUSY;
	else
		WRITE_ONCE(s->consumer, ops->kind);
	xa_unlock(&s->keys);
	if (err)
		return err;
	refcount_inc(&s->refs);
	s->owner = c;
	c->stream = s;
	c->ops = ops;
	c->starting = true;
	list_add_tail(&c->list, &qn->consumers);
	qkd_net_changed(qn);
	return 0;
}

/*
 * The claiming consumer's start is done: from now on the link state its
 * takes change is announced with their stream events; what its start's
 * takes changed is announced now.
 */
void qkd_consumer_activate(struct qkd_consumer *c)
{
	struct qkd_stream *s = c->stream;

	lockdep_assert_held(&s->qn->lock);

	c->starting = false;
	qkd_link_update_state(s->qn, s->link);
}

/*
 * The stream is everyone's again (its claiming consumer is going away), and
 * the consumer's reference goes. Under qkd_net.lock. A consumer whose start
 * failed announces the link state its takes left (keys it used up).
 */
void qkd_consumer_release(struct qkd_consumer *c)
{
	struct qkd_stream *s = c->stream;
	struct qkd_net *qn = s->qn;

	lockdep_assert_held(&qn->lock);

	xa_lock(&s->keys);
	if (!WARN_ON_ONCE(s->consumer != c->ops->kind))
		WRITE_ONCE(s->consumer, QKD_STREAM_CONSUMER_NONE);
	xa_unlock(&s->keys);
	s->owner = NULL;
	list_del(&c->list);
	qkd_net_changed(qn);
	if (c->starting)
		qkd_link_update_state(qn, s->link);
	c->stream = NULL;
	qkd_stream_put(s);
}

/**
 * qkd_consumer_take() - take one key of the consumer's stream
 * @c: the consumer
 * @by_index: take @index, else the lowest stored key
 * @index: the index to take when @by_index
 * @key: on success the key (key_size bytes), the caller's: it frees it with
 *	kfree_sensitive() or gives it back with qkd_consumer_return()
 * @res: on success, what was taken
 *
 * A shared consumer then says whether the key was used
 * (qkd_consumer_used()). A claiming consumer takes under qkd_net.lock, and
 * its key counts as used at once (it goes into the kernel's own state): its
 * events go out here. KEY_ADD holds that lock from inserting its keys to
 * announcing them, so they follow the KEYS_ADDED of the key, and precede
 * whatever the consumer announces of its use.
 *
 * Return: 0; -ENOENT: the stream was deleted; -EBUSY: another consumer
 * claimed it; -ENOKEY: @index not pushed yet; -EKEYEXPIRED: @index taken or
 * flushed; -EAGAIN: no key stored.
 */
int qkd_consumer_take(struct qkd_consumer *c, bool by_index, u64 index,
		      u8 **key, struct qkd_take_result *res)
{
	struct qkd_stream *s = c->stream;
	int err;

	if (!c->ops)
		return qkd_stream_take_key(s, QKD_STREAM_CONSUMER_NONE,
					   by_index, index, key, res);
	lockdep_assert_held(&s->qn->lock);
	err = qkd_stream_take_key(s, c->ops->kind, by_index, index, key, res);
	if (!err)
		qkd_stream_taken(s, res, !c->starting);
	return err;
}

/*
 * A shared consumer takes the @want lowest stored keys in one step: see
 * qkd_stream_take_keys(). Then qkd_consumer_used() or qkd_consumer_return()
 * for every key, as for qkd_consumer_take().
 */
int qkd_consumer_take_batch(struct qkd_consumer *c, u32 want, bool partial,
			    u8 **keys, u64 *indices, u32 *got,
			    struct qkd_take_result *res)
{
	if (WARN_ON_ONCE(c->ops)) {
		*got = 0;
		return -EINVAL;
	}
	return qkd_stream_take_keys(c->stream, want, partial, keys, indices,
				    got, res);
}

/*
 * A shared consumer's keys were delivered (not merely taken: a key given
 * back changes nothing): the events the take may cause, sent outside the
 * stream's lock but under qkd_net.lock. A reader may take a key as soon as
 * KEY_ADD has inserted it, before KEY_ADD (which holds qkd_net.lock from the
 * insertion to its KEYS_ADDED) has announced it; waiting for the lock here
 * sends the STREAM_LOW/EMPTY such a take causes after the KEYS_ADDED of its
 * keys. A stream deleted meanwhile has sent STREAM_DEL: nothing follows it.
 */
void qkd_consumer_used(struct qkd_consumer *c,
		       const struct qkd_take_result *res)
{
	struct qkd_stream *s = c->stream;

	/* A claiming consumer's takes were counted when taken. */
	if (WARN_ON_ONCE(c->ops))
		return;
	if (!res->crossed_low_water && !res->emptied)
		return;
	mutex_lock(&s->qn->lock);
	if (!READ_ONCE(s->dead))
		qkd_stream_taken(s, res, true);
	mutex_unlock(&s->qn->lock);
}

/*
 * Give back a key taken through @c that no one got: see
 * qkd_stream_return_key().
 */
void qkd_consumer_return(struct qkd_consumer *c, u64 index, u8 *key)
{
	qkd_stream_return_key(c->stream, index, key);
}

/* ------------------------------------------------------------ namespace */

static int __net_init qkd_net_init(struct net *net)
{
	struct qkd_net *qn = qkd_net(net);

	qn->net = net;
	mutex_init(&qn->lock);
	xa_init_flags(&qn->links, XA_FLAGS_ALLOC1);
	hash_init(qn->streams);
	INIT_LIST_HEAD(&qn->stream_list);
	init_waitqueue_head(&qn->poll_wait);
	INIT_LIST_HEAD(&qn->consumers);
	INIT_LIST_HEAD(&qn->sas);
	qn->dump_gen = 1;
	return 0;
}

/*
 * The namespace is going away (or the module is unloading): nobody can
 * reach the store any more (no socket and no /dev/qkd file of this netns is
 * left, and the genl family is gone on unload), so delete everything
 * without events. Claiming consumers go first, told why (sa.c's bindings
 * have normally gone already, by its own pernet exit, which runs first).
 */
static void __net_exit qkd_net_exit(struct net *net)
{
	struct qkd_net *qn = qkd_net(net);
	struct qkd_consumer *c, *tmp;
	struct qkd_link *link;
	unsigned long id;

	mutex_lock(&qn->lock);
	list_for_each_entry_safe(c, tmp, &qn->consumers, list)
		c->ops->detach(c, QKD_DETACH_NET);
	WARN_ON_ONCE(!list_empty(&qn->consumers));
	xa_for_each(&qn->links, id, link)
		qkd_link_delete(qn, link, false);
	mutex_unlock(&qn->lock);
	xa_destroy(&qn->links);
	WARN_ON_ONCE(qn->n_streams || qn->n_links);
	mutex_destroy(&qn->lock);
}

static struct pernet_operations qkd_net_ops = {
	.init = qkd_net_init,
	.exit = qkd_net_exit,
	.id = &qkd_net_id,
	.size = sizeof(struct qkd_net),
};

int qkd_store_init(void)
{
	return register_pernet_subsys(&qkd_net_ops);
}

void qkd_store_exit(void)
{
	unregister_pernet_subsys(&qkd_net_ops);
	/* Streams are freed with kfree_rcu(); let that finish before unload. */
	rcu_barrier();
}
