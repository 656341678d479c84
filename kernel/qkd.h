/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkd: internal declarations shared by the files of the module.
 *
 * Layers (Documentation/design.md has the long form). The store (store.c:
 * the links, streams and keys of each network namespace) is the bottom
 * layer and calls nothing above it; it speaks upwards only through the two
 * interfaces it defines below: store events and consumers. Arrows are calls:
 *
 *   netlink.c       chardev.c     crypto.c <- keyring.c      sa*.c
 *   (genl: admin,   (/dev/qkd)    (qkd_key_use(),            (SA bindings)
 *    KEY_ADD)           |          ALG_SETKEY, key types)        |
 *      |                |                |                       |
 *      | qkd_link_*()   +----------------+-----------------------+
 *      | qkd_stream_*()        | qkd_consumer_*(): open or claim a stream,
 *      v                       v take, used or return, close or release
 *   store.c ---------------------------------------------------------------
 *      |                                                         |
 *      | store events, on its notifier chain            qkd_consumer_ops
 *      v (qkd_store_register_notifier())                 .detach(): the
 *   netlink.c: multicast events                stream or namespace goes
 *                                                                v
 *                                                   sa.c: unbind
 *
 * Beside these, front ends call each other: sa_netlink.c's SA_* commands
 * use netlink.c's reply and event helpers (one genl family); chardev.c's
 * ioctls call crypto.c and keyring.c. The store's read-only lookups
 * (qkd_stream_get(), counters, states) serve every front end. A key's way
 * is KEY_ADD -> store -> consumer: a take is counted, and its events sent,
 * by the store, never by a front end. main.c registers the parts bottom up
 * and unwinds them top down. The SA bindings are six files with a private
 * header, kernel/sa.h, which has their own picture and locks.
 *
 * Locking, outermost first:
 *  - qkd_net.lock (mutex) serialises every change of a node's links and
 *    streams, every key push, every claim and release of a stream by a
 *    consumer, and every store event: events are sent synchronously under
 *    it, in the order of their causes (a take's STREAM_LOW/EMPTY wait for
 *    it, so they follow the KEYS_ADDED of the keys taken, which KEY_ADD
 *    sends before it lets go).
 *  - sa*.c: an SA binding's mutex, then xfrm's xfrm_cfg_mutex
 *    (kernel/sa.h).
 *  - The rwsem of the store's notifier chain: read while an event is sent
 *    (under the locks above); written only by (un)registration at module
 *    init and exit, under no other lock.
 *  - The keys of a stream are protected by the spinlock of its xarray,
 *    xa_lock(&stream->keys). It also protects the stream's counters,
 *    next_index, dead flag and consumer kind. Process context only.
 * Lookups of a stream by ID from the key delivery path (ioctl) walk the
 * node's stream hash table under RCU and take a reference; a deleted stream
 * is unhashed and marked dead under both locks, so a delivery that found it
 * before then sees the dead flag and takes nothing.
 */
#ifndef _QKD_H
#define _QKD_H

#include <linux/bits.h>
#include <linux/hashtable.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/netlink.h>
#include <linux/notifier.h>
#include <linux/qkd.h>
#include <linux/refcount.h>
#include <linux/string.h>
#include <linux/types.h>
#include <linux/wait.h>
#include <linux/xarray.h>
#include <net/net_namespace.h>

/*
 * A stream's keys live in an xarray keyed by the stream index, and xarray
 * indices are unsigned long while stream indices are 64-bit: on a 32-bit
 * kernel index 2^32 + i would land on i. Refuse to build there rather than
 * deliver one key under two indices (dkms.conf says the same to DKMS).
 */
#ifndef CONFIG_64BIT
#error "qkd needs a 64-bit kernel: stream indices are xarray indices"
#endif
#include <net/netlink.h>
#include <uapi/linux/qkd.h>
#include <uapi/linux/qkd_dev.h>

#define QKD_NETNS_MAX_LINKS	256
#define QKD_NETNS_MAX_STREAMS	1024
/* QKD_STREAM_MAX_KEYS_LIMIT: in the uapi header, from the YNL spec. */

/* What this module offers: QKD_IOC_INFO and status-get report it. */
#define QKD_FEATURES \
	(QKD_FEATURE_GET_KEY | QKD_FEATURE_GET_KEY_BY_ID | QKD_FEATURE_POLL | \
	 QKD_FEATURE_ALG_SETKEY | QKD_FEATURE_LOGON_KEY | QKD_FEATURE_KEY_TYPE | \
	 QKD_FEATURE_GET_KEYS)

extern unsigned int qkd_stream_default_max_keys;
extern unsigned long qkd_netns_max_keys;
extern unsigned long qkd_netns_max_bytes;

/*
 * Key counters. A stream's are exact, under its xarray lock; the delivery
 * path touches nothing else. A link's and a node's are summed over their
 * streams on demand, plus what their deleted streams left in @retired.
 */
struct qkd_counters {
	u64 added;
	u64 delivered;
	u64 flushed;
	u64 stored;
	u64 bytes_stored;
};

/**
 * struct qkd_net - one node: the key store of a network namespace
 * @net: the namespace (not referenced: we live inside it)
 * @lock: serialises changes of links and streams and key pushes
 * @links: links by id (xarray, allocating ids), under @lock
 * @n_links: number of links, under @lock
 * @streams: streams by ID (RCU readers, writers under @lock)
 * @stream_list: streams in creation order, for dumps, under @lock
 * @n_streams: number of streams, under @lock
 * @poll_wait: woken when a stream gains keys or goes away; in the node so
 *	that a file polling a stream never outlives its wait queue
 * @retired: counters of the node's deleted streams, under @lock
 * @consumers: consumers that claim a stream of the node, in the order of
 *	their claims, under @lock
 * @sas: SA bindings (sa.c; RCU readers, writers under @lock)
 * @n_sas: number of SA bindings, under @lock
 * @dump_gen: generation of the node's sets of links, streams and claims
 *	(bindings), under @lock: bumped by every creation and deletion of a
 *	link or stream and every claim and release of a stream, never 0. The
 *	link, stream and SA dumps resume by position or id between their
 *	parts; they set cb->seq from it, and genl_dump_check_consistent()
 *	flags NLM_F_DUMP_INTR on the first message after a change.
 */
struct qkd_net {
	struct net *net;
	struct mutex lock; /* see the locking rules at the top */
	struct xarray links;
	unsigned int n_links;
	DECLARE_HASHTABLE(streams, 8);
	struct list_head stream_list;
	unsigned int n_streams;
	wait_queue_head_t poll_wait;
	struct qkd_counters retired;
	struct list_head consumers;
	struct list_head sas;
	unsigned int n_sas;
	unsigned int dump_gen;
};

/**
 * struct qkd_link - a QKD link to one peer node
 * @refs: held by the node's link table and by each stream of the link
 * @id: link id, unique in the node
 * @name: unique name in the node
 * @peer: free text naming the peer (may be empty)
 * @role: enum qkd_link_role
 * @admin_state: QKD_LINK_STATE_UP or QKD_LINK_STATE_DOWN, as set by LINK_SET
 * @reported_state: the state last announced, for LINK_STATE_NTF; under
 *	qkd_net.lock like everything below
 * @n_streams: streams on the link
 * @retired: counters of the link's deleted streams
 * @streams: the link's streams
 */
struct qkd_link {
	refcount_t refs;
	u32 id;
	char name[QKD_LINK_NAME_MAX];
	char peer[QKD_PEER_NAME_MAX];
	u8 role;
	u8 admin_state;
	u8 reported_state;
	unsigned int n_streams;
	struct qkd_counters retired;
	struct list_head streams;
};

/**
 * struct qkd_stream - a key stream: fixed-size keys at 64-bit indices
 * @hnode: in qkd_net.streams
 * @list: in qkd_net.stream_list
 * @link_list: in qkd_link.streams
 * @rcu: frees the stream after RCU readers are done
 * @refs: the node's table holds one, each user in flight one
 * @qn: the node
 * @link: the link (a reference is held)
 * @id: ETSI 004 Key_stream_ID
 * @key_size: bytes per key
 * @keys: stored keys by index; its lock protects the fields below
 * @next_index: lowest index a push may use; indices below it that are not
 *	in @keys were delivered, flushed or skipped
 * @low_index: no key is stored below it; where a search for the lowest
 *	stored key starts, so that it does not walk consumed slots
 * @max_keys: limit of stored keys
 * @low_water: STREAM_LOW_NTF when a delivery crosses below it (0: never)
 * @dead: deleted; takes no more keys and hands none out
 * @consumer: enum qkd_stream_consumer: who may take keys. NONE: every
 *	holder of /dev/qkd open for writing and every in-kernel user; else
 *	the in-kernel consumer that claimed the stream, alone (the others get
 *	EBUSY), so that nobody takes, or so much as sees, the keys it will
 *	use. Set by qkd_consumer_claim() under qkd_net.lock, cleared by
 *	qkd_consumer_release(); checked by every take under the xarray lock.
 * @owner: the consumer that claimed the stream (NULL: none), under
 *	qkd_net.lock
 * @stats: counters of the stream
 */
struct qkd_stream {
	struct hlist_node hnode;
	struct list_head list;
	struct list_head link_list;
	struct rcu_head rcu;
	refcount_t refs;
	struct qkd_net *qn;
	struct qkd_link *link;
	u8 id[QKD_STREAM_ID_LEN];
	u32 key_size;
	struct xarray keys;
	u64 next_index;
	u64 low_index;
	u32 max_keys;
	u32 low_water;
	bool dead;
	u8 consumer;
	struct qkd_consumer *owner;
	struct qkd_counters stats;
};

/* What a delivery took, and what it means for events. */
struct qkd_take_result {
	u64 index;
	u32 stored_after;
	bool crossed_low_water;
	bool emptied;
};

/* store.c */
struct qkd_net *qkd_net(const struct net *net);
int qkd_store_init(void);
void qkd_store_exit(void);

struct qkd_link *qkd_link_find(struct qkd_net *qn, u32 id, const char *name);
int qkd_link_create(struct qkd_net *qn, u32 id, const char *name,
		    const char *peer, u8 role, struct qkd_link **out);
int qkd_link_may_delete(struct qkd_net *qn, struct qkd_link *link,
			struct netlink_ext_ack *extack);
void qkd_link_delete(struct qkd_net *qn, struct qkd_link *link, bool notify);
void qkd_link_set_state(struct qkd_net *qn, struct qkd_link *link, u8 state);
u8 qkd_link_state(const struct qkd_link *link);
void qkd_link_counters(const struct qkd_link *link, struct qkd_counters *c);
void qkd_net_counters(struct qkd_net *qn, struct qkd_counters *c);

struct qkd_stream *qkd_stream_find_locked(struct qkd_net *qn, const u8 *id);
struct qkd_stream *qkd_stream_get(struct qkd_net *qn, const u8 *id);
void qkd_stream_put(struct qkd_stream *s);
int qkd_stream_create(struct qkd_net *qn, struct qkd_link *link, const u8 *id,
		      u32 key_size, u32 max_keys, u32 low_water,
		      struct qkd_stream **out);
int qkd_stream_may_delete(struct qkd_net *qn, struct qkd_stream *s,
			  struct netlink_ext_ack *extack);
void qkd_stream_delete(struct qkd_net *qn, struct qkd_stream *s, bool notify);
int qkd_stream_push(struct qkd_net *qn, struct qkd_stream *s, u64 first,
		    const u8 *data, u32 len, struct netlink_ext_ack *extack);
u32 qkd_stream_flush(struct qkd_net *qn, struct qkd_stream *s);
u64 qkd_stream_next_index(struct qkd_stream *s);
u64 qkd_stream_first_index(struct qkd_stream *s);
void qkd_stream_counters(struct qkd_stream *s, struct qkd_counters *c);

/* Keys stored now; exact under the xarray lock, a snapshot without it. */
static inline u32 qkd_stream_stored(const struct qkd_stream *s)
{
	return READ_ONCE(s->stats.stored);
}

/*
 * Store events: what happened to links, streams and keys, sent on the
 * store's notifier chain (a blocking one) with a struct
 * qkd_store_event_info. Every event is sent synchronously, in process
 * context, under qkd_net.lock, right after its cause, so subscribers see
 * them in the order of their causes; a subscriber must not call back into
 * the store. Deletions without notification (namespace exit, module
 * unload) send none. netlink.c turns them into the multicast events of
 * Documentation/abi.md.
 */
enum qkd_store_event {
	QKD_STORE_LINK_STATE,	/* qkd_link_state() of @link is now @state */
	QKD_STORE_LINK_DEL,	/* @link deleted (after its streams) */
	QKD_STORE_STREAM_DEL,	/* @stream deleted, its keys gone */
	QKD_STORE_KEYS_ADDED,	/* @count keys from @first pushed to @stream */
	QKD_STORE_STREAM_LOW,	/* a delivery took @stream below low water */
	QKD_STORE_STREAM_EMPTY,	/* a delivery or a flush emptied @stream */
};

/**
 * struct qkd_store_event_info - what a store event is about
 * @qn: the node
 * @link: the link (LINK_STATE, LINK_DEL)
 * @stream: the stream (STREAM_*, KEYS_ADDED)
 * @state: enum qkd_link_state (LINK_STATE)
 * @first: index of the first key pushed (KEYS_ADDED)
 * @count: keys pushed (KEYS_ADDED)
 * @stored: keys stored after the event (KEYS_ADDED, STREAM_LOW)
 */
struct qkd_store_event_info {
	struct qkd_net *qn;
	const struct qkd_link *link;
	const struct qkd_stream *stream;
	u8 state;
	u64 first;
	u32 count;
	u32 stored;
};

int qkd_store_register_notifier(struct notifier_block *nb);
int qkd_store_unregister_notifier(struct notifier_block *nb);

/*
 * Consumers: every in-kernel user of a stream's keys (an SA binding in
 * sa.c; /dev/qkd in chardev.c; crypto.c's qkd_key_use(), ALG_SETKEY and
 * the key types of keyring.c) reaches the keys through a struct
 * qkd_consumer, and only through it. A shared consumer opens a stream for
 * one call (qkd_consumer_open()) and takes keys of unclaimed streams; its
 * takes are counted and announced when it says they were used. A claiming
 * consumer claims the stream for itself (qkd_consumer_claim(): EBUSY for
 * everyone else, as struct qkd_stream.consumer says), takes under
 * qkd_net.lock, and its takes are counted and announced when taken; the
 * store tells it through its ops when the stream or the namespace goes.
 */
enum qkd_detach_reason {
	QKD_DETACH_STREAM,	/* the stream is being deleted */
	QKD_DETACH_NET,		/* the namespace's store is being torn down */
};

struct qkd_consumer;

/**
 * struct qkd_consumer_ops - what the store asks of a claiming consumer
 * @kind: enum qkd_stream_consumer it claims as (not NONE); what
 *	QKD_A_STREAM_CONSUMER reports
 * @detach: the store takes the stream back, under qkd_net.lock: the
 *	consumer stops using it and calls qkd_consumer_release() before it
 *	returns. QKD_DETACH_STREAM: before the stream's keys are dropped and
 *	its deletion announced; QKD_DETACH_NET: before the namespace's links
 *	and streams go, without events
 * @may_detach: may a requester delete the stream (or its link) now? Asked
 *	under qkd_net.lock before anything is deleted; 0, or the refusal
 *	(with @extack set). Optional. Namespace exit asks nothing.
 */
struct qkd_consumer_ops {
	u8 kind;
	void (*detach)(struct qkd_consumer *c, enum qkd_detach_reason why);
	int (*may_detach)(struct qkd_consumer *c,
			  struct netlink_ext_ack *extack);
};

/**
 * struct qkd_consumer - one in-kernel user of one stream's keys
 * @stream: the stream; a reference is held from open or claim to close or
 *	release
 * @ops: a claiming consumer's; NULL for a shared one
 * @list: in qkd_net.consumers while it claims @stream
 * @starting: claimed but not yet active (qkd_consumer_activate()): the link
 *	state its takes change is announced when the start is done or undone
 */
struct qkd_consumer {
	struct qkd_stream *stream;
	const struct qkd_consumer_ops *ops;
	struct list_head list;
	bool starting;
};

int qkd_consumer_open(struct qkd_consumer *c, struct qkd_net *qn,
		      const u8 *stream_id);
void qkd_consumer_close(struct qkd_consumer *c);
int qkd_consumer_claim(struct qkd_consumer *c,
		       const struct qkd_consumer_ops *ops,
		       struct qkd_stream *s);
void qkd_consumer_activate(struct qkd_consumer *c);
void qkd_consumer_release(struct qkd_consumer *c);
int qkd_consumer_take(struct qkd_consumer *c, bool by_index, u64 index,
		      u8 **key, struct qkd_take_result *res);
int qkd_consumer_take_batch(struct qkd_consumer *c, u32 want, bool partial,
			    u8 **keys, u64 *indices, u32 *got,
			    struct qkd_take_result *res);
void qkd_consumer_used(struct qkd_consumer *c,
		       const struct qkd_take_result *res);
void qkd_consumer_return(struct qkd_consumer *c, u64 index, u8 *key);

/* netlink.c */
struct genl_info;
int qkd_genl_init(void);
void qkd_genl_exit(void);
void qkd_notify_fill(struct qkd_net *qn, u8 cmd,
		     int (*fill)(struct sk_buff *skb, void *obj), void *obj);
int qkd_reply(struct genl_info *info, u8 cmd,
	      int (*fill)(struct sk_buff *skb, void *obj), void *obj);
struct sk_buff *qkd_reply_alloc(void);
void qkd_reply_changed(struct sk_buff *msg, struct genl_info *info, u8 cmd,
		       int (*fill)(struct sk_buff *skb, void *obj), void *obj);
int qkd_dump_one(struct sk_buff *skb, struct netlink_callback *cb, u8 cmd,
		 int (*fill)(struct sk_buff *skb, void *obj), void *obj);
int qkd_dump_done(struct sk_buff *skb, int err);
int qkd_nl_no_attrs(const struct nlmsghdr *nlh, struct netlink_ext_ack *extack);

/* sa.c: the SA bindings (kernel/sa.h has the rest) */
int qkd_xfrm_init(void);
void qkd_xfrm_exit(void);

/* chardev.c */
int qkd_chardev_init(void);
void qkd_chardev_exit(void);
struct qkd_net *qkd_chardev_file_net(struct file *file);

/* crypto.c: a key out of the store, delivered or put back at the end. */
struct qkd_taken {
	struct qkd_consumer c;
	u8 *key;
	struct qkd_take_result res;
};

int qkd_key_take_begin(struct qkd_net *qn, struct qkd_key_ref *ref,
		       unsigned int len, struct qkd_taken *t);
void qkd_key_take_end(struct qkd_taken *t, bool used);
int qkd_key_use_qn(struct qkd_net *qn, struct qkd_key_ref *ref,
		   unsigned int len, qkd_key_use_fn use, void *ctx);
int qkd_key_ref_from_user(struct qkd_key_ref *ref, u32 flags,
			  const u8 *stream_id, u64 index, const u8 *key_id);
long qkd_ioctl_alg_setkey(struct qkd_net *qn, void __user *uarg);

/* keyring.c */
int qkd_keyring_init(void);
void qkd_keyring_exit(void);
long qkd_ioctl_logon_key(struct qkd_net *qn, void __user *uarg);

/*
 * The names both ends derive alike from a stream ID and an index
 * (Documentation/abi.md, "Key IDs"; Documentation/ipsec.md, "SPIs"):
 * userspace has the same in libqkd's <qkd/ids.h>. Not in the uapi header,
 * which is generated and holds no code.
 */

/* SPI of the SA keyed by the key at @index: FNV-1a, 0x100 set below 256. */
static inline u32 qkd_sa_spi(const u8 stream_id[QKD_STREAM_ID_LEN], u64 index)
{
	u32 h = 2166136261U;
	int i;

	for (i = 0; i < QKD_STREAM_ID_LEN; i++)
		h = (h ^ stream_id[i]) * 16777619U;
	for (i = 7; i >= 0; i--)
		h = (h ^ (u8)(index >> (8 * i))) * 16777619U;
	return h < 256 ? h | 0x100 : h;
}

/* ETSI 014 key_ID: the stream ID, bytes 8..15 XORed with the BE index. */
static inline void qkd_key_id_from_index(u8 key_id[QKD_KEY_ID_LEN],
					 const u8 stream_id[QKD_STREAM_ID_LEN],
					 u64 index)
{
	int i;

	memcpy(key_id, stream_id, QKD_KEY_ID_LEN);
	for (i = 0; i < 8; i++)
		key_id[15 - i] ^= (u8)(index >> (8 * i));
}

static inline u64 qkd_key_id_to_index(const u8 key_id[QKD_KEY_ID_LEN],
				      const u8 stream_id[QKD_STREAM_ID_LEN])
{
	u64 index = 0;
	int i;

	for (i = 8; i < QKD_KEY_ID_LEN; i++)
		index = (index << 8) | (u8)(key_id[i] ^ stream_id[i]);
	return index;
}

#endif /* _QKD_H */
