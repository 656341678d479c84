/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkd: internal declarations shared by the files of the module.
 *
 * Locking, outermost first:
 *  - qkd_net.lock (mutex) serialises every change of a node's links and
 *    streams and every key push, so a push never races a delete of its
 *    stream and pushes to one stream are ordered.
 *  - The keys of a stream are protected by the spinlock of its xarray,
 *    xa_lock(&stream->keys). It also protects the stream's counters,
 *    next_index and dead flag. It is taken from process context only.
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
 * @sas: SA bindings (xfrm.c; RCU readers, writers under @lock)
 * @n_sas: number of SA bindings, under @lock
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
	struct list_head sas;
	unsigned int n_sas;
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
 *	use. Set by qkd_stream_claim() under qkd_net.lock, cleared by
 *	qkd_stream_release(); checked by every take under the xarray lock.
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
void qkd_link_delete(struct qkd_net *qn, struct qkd_link *link, bool notify);
void qkd_link_set_state(struct qkd_net *qn, struct qkd_link *link, u8 state);
u8 qkd_link_state(const struct qkd_link *link);
void qkd_link_update_state(struct qkd_net *qn, struct qkd_link *link);
void qkd_link_counters(const struct qkd_link *link, struct qkd_counters *c);
void qkd_net_counters(struct qkd_net *qn, struct qkd_counters *c);

struct qkd_stream *qkd_stream_find_locked(struct qkd_net *qn, const u8 *id);
struct qkd_stream *qkd_stream_get(struct qkd_net *qn, const u8 *id);
void qkd_stream_put(struct qkd_stream *s);
int qkd_stream_create(struct qkd_net *qn, struct qkd_link *link, const u8 *id,
		      u32 key_size, u32 max_keys, u32 low_water,
		      struct qkd_stream **out);
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

int qkd_stream_claim(struct qkd_stream *s, u8 consumer);
void qkd_stream_release(struct qkd_stream *s, u8 consumer);
int qkd_stream_take_key(struct qkd_stream *s, u8 consumer, bool by_index,
			u64 index, u8 **key, struct qkd_take_result *res);
int qkd_stream_take_keys(struct qkd_stream *s, u32 want, bool partial,
			 u8 **keys, u64 *indices, u32 *got,
			 struct qkd_take_result *res);
void qkd_stream_return_key(struct qkd_stream *s, u64 index, u8 *key);
void qkd_stream_taken_notify(struct qkd_net *qn, struct qkd_stream *s,
			     const struct qkd_take_result *res);

/* netlink.c */
struct genl_info;
int qkd_genl_init(void);
void qkd_genl_exit(void);
void qkd_notify_link_state(struct qkd_net *qn, struct qkd_link *link, u8 state);
void qkd_notify_link_del(struct qkd_net *qn, const struct qkd_link *link);
void qkd_notify_stream_del(struct qkd_net *qn, const struct qkd_stream *s);
void qkd_notify_keys_added(struct qkd_net *qn, const struct qkd_stream *s,
			   u64 first, u32 count, u32 stored);
void qkd_notify_stream_low(struct qkd_net *qn, const struct qkd_stream *s,
			   u32 stored);
void qkd_notify_stream_empty(struct qkd_net *qn, const struct qkd_stream *s);
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

/* xfrm.c */
int qkd_xfrm_init(void);
void qkd_xfrm_exit(void);
void qkd_xfrm_stream_delete(struct qkd_net *qn, struct qkd_stream *s);
void qkd_xfrm_net_exit(struct qkd_net *qn);
int qkd_nl_no_attrs(const struct nlmsghdr *nlh, struct netlink_ext_ack *extack);

/* chardev.c */
int qkd_chardev_init(void);
void qkd_chardev_exit(void);
struct qkd_net *qkd_chardev_file_net(struct file *file);

/* crypto.c: a key out of the store, delivered or put back at the end. */
struct qkd_taken {
	struct qkd_net *qn;
	struct qkd_stream *s;
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
