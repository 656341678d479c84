/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkd: the SA bindings' private declarations (kernel/sa*.c).
 *
 * A binding ties an SA pair (local <-> remote) to one key stream. The module
 * builds the xfrm_states itself with keys taken from the stream by index,
 * so the key bytes never return to userspace, and both ends, holding the
 * same keys at the same indices, build the same SAs with no signalling:
 *
 *  - channel 0 carries initiator -> responder traffic, channel 1 the other
 *    way (the link's role says which one this end sends on);
 *  - generation g of channel c is keyed by the key at index
 *    first + 2g + c, and its SPI is qkd_sa_spi(stream, index) (qkd.h).
 *
 * Re-key is make-before-break and needs no agreement on time between the
 * ends (kernel/sa_rekey.c). See Documentation/ipsec.md for the ABI and the
 * formulas, Documentation/design.md for the picture of the whole module.
 *
 * The files, and who calls whom (arrows are calls; nothing calls up):
 *
 *   netlink-gen.c (op table) --> sa_netlink.c: SA_NEW/DEL/GET/REKEY, dump;
 *        |                        parse requests, fill replies and events
 *        |                          |            |             ^
 *        |              create/destroy/find   SA_REKEY      notify_*()
 *        |                          v            v             |
 *   store.c --ops->detach()--> sa.c: the binding's life   sa_rekey.c: the
 *   (consumer)                 start, destroy, consumer   work: tx, rx,
 *        ^                     ops, pernet exit, init/exit   state; SA_REKEY
 *        |                          |    |                   |      ^
 *        +--- qkd_consumer_*() -----+----|-------------------+      |
 *                                   v    v                   v      |
 *                         sa_policy.c   sa_xfrm.c: take a key,      |
 *                         policies,     build, add, delete SAs      |
 *                         block at      (xfrm_state_*, audit,       |
 *                         teardown      km notify)                  |
 *                                                                   |
 *   xfrm (softirq) --> sa_km.c: xfrm_mgr hooks --mod_delayed_work()-+
 *
 * sa_netlink.c calls netlink.c's reply and event helpers (one genl family);
 * sa.c, sa_rekey.c and sa_xfrm.c call the store only through the consumer
 * interface (qkd_consumer_claim/take/return/activate/release) and its
 * lookups (qkd_stream_find_locked()).
 *
 * Locking, outermost first (the module's rules are at the top of qkd.h):
 *  - qkd_net.lock (the store's): the node's list of bindings (RCU readers:
 *    sa_km.c's hooks, which run in softirq context and only kick a
 *    binding's work), every take of a key (a claiming consumer's), every
 *    create and destroy (sa.c), every genl handler (sa_netlink.c). The
 *    work (sa_rekey.c) takes it only with mutex_trylock() (and runs again a
 *    jiffy later if it is busy), because a binding is torn down, waiting
 *    for its work, with qkd_net.lock held.
 *  - qkd_sa.lock: everything of a binding from @dead on; owned by sa.c,
 *    taken by sa.c (start, destroy, may_delete), sa_rekey.c (the work)
 *    and sa_netlink.c (filling a reply; SA_REKEY, around qkd_sa_rekey()),
 *    after qkd_net.lock.
 *  - xfrm_cfg_mutex (xfrm's, per namespace): taken by sa_xfrm.c and
 *    sa_policy.c to change the SAD and SPD, as xfrm_user does, after the
 *    binding's lock.
 *  - x->lock (an xfrm_state's spinlock, BH): sa_xfrm.c and sa_rekey.c read
 *    counters and mark an SA dying under it; innermost.
 */
#ifndef _QKD_SA_H
#define _QKD_SA_H

#include <linux/mutex.h>
#include <linux/types.h>
#include <linux/workqueue.h>
#include <net/xfrm.h>

#include "qkd.h"

#define QKD_SA_SALT_LEN		4	/* RFC 4106 / RFC 7634 nonce salt */
#define QKD_SA_ICV_BITS		128
#define QKD_SA_REPLAY_WINDOW	32
/* QKD_SA_LOOKAHEAD (uapi): inbound generations installed ahead. */
/*
 * A lost outbound SA is replaced by itself only this far beyond the newest
 * generation that sent traffic: one short of the peer's lookahead, so that
 * when the replacements are lost too (`ip xfrm state deleteall` racing the
 * binding) the last generation the peer holds is left for SA_REKEY.
 */
#define QKD_SA_AUTO_AHEAD	(QKD_SA_LOOKAHEAD - 1)
/* Old SAs live on this long after their successor took over. */
#define QKD_SA_GRACE		(2 * HZ)
/* A re-key that found no key is retried this often. */
#define QKD_SA_RETRY		(HZ / 2)
/* The receiver also looks for the peer's switch this often. */
#define QKD_SA_POLL		(HZ / 4)
#define QKD_SA_IN_SLOTS		8
#define QKD_SA_DEFAULT_REKEY_SECONDS 3600
/*
 * Hard lifetimes are this multiple of the re-key (soft) limits; in time, at
 * least QKD_SA_HARD_MIN_EXTRA seconds beyond it, so that a busy machine
 * re-keying a second late does not close the SA.
 */
#define QKD_SA_HARD_FACTOR	2
#define QKD_SA_HARD_MIN_EXTRA	10
#define QKD_SA_REKEY_SECONDS_MAX BIT(24)
/*
 * Without ESN an SA numbers its packets with 32 bits, and xfrm refuses to
 * send beyond 2^32 - 1 (EOVERFLOW for every packet, for good) rather than
 * wrap the AEAD nonce. An outbound SA re-keys at half the space at the
 * latest, so that a late or dry re-key still has the other half, and closes
 * (hard limit) at the last number. SA_REKEY_PACKETS goes no further.
 */
#define QKD_SA_SEQ_SOFT		BIT_ULL(31)
#define QKD_SA_SEQ_LAST		U32_MAX

struct qkd_sa_alg_info {
	const char *name;
	const char *geniv;
	u8 sadb_id;
	u32 key_bits_mask;	/* BIT(key bits / 64) */
};

/* An inbound SA: active, the lookahead, or retired until @expires. */
struct qkd_sa_slot {
	struct xfrm_state *x;
	u64 gen;
	unsigned long expires;	/* 0: not retired */
};

/**
 * struct qkd_sa - a binding of an SA pair to a key stream
 * @list: in qkd_net.sas (RCU readers, writers under qkd_net.lock)
 * @qn: the node
 * @stream: the stream (@consumer holds a reference)
 * @consumer: the binding as the claiming consumer of @stream
 * @lock: guards everything from @dead on
 * @work: re-key, retire, retry
 * @free_work: frees the binding a grace period after qkd_sa_destroy()
 * @family: AF_INET or AF_INET6
 * @local: local address (source of the outbound SA)
 * @remote: remote address
 * @mode: enum qkd_sa_mode
 * @alg: enum qkd_sa_alg
 * @dir: enum qkd_sa_dir
 * @key_bits: AEAD key bits, without the salt
 * @reqid: XFRM reqid of every SA
 * @if_id: XFRM interface id
 * @mark: XFRM mark
 * @rekey_seconds: re-key period (0: none)
 * @rekey_bytes: re-key after this many bytes (0: none)
 * @rekey_packets: re-key after this many packets (0: none)
 * @first: index of generation 0's first key
 * @initiator: this end is the link's initiator (sends on channel 0)
 * @policy: the binding installs its XFRM policies (in @pol)
 * @sel_family: family of the policies' selector
 * @sel_local: local selector address (the local address by default)
 * @sel_remote: remote selector address
 * @sel_local_prefix: prefix length of @sel_local
 * @sel_remote_prefix: prefix length of @sel_remote
 * @pol_priority: XFRM priority of the policies
 * @pol: the policies installed, by XFRM_POLICY_IN/OUT/FWD (a reference each)
 * @dead: being torn down: the work does nothing
 * @state: enum qkd_sa_state last announced
 * @out: the outbound SA in use
 * @out_gen: its generation
 * @out_old: the previous outbound SA, until @out_old_expires
 * @out_old_expires: when @out_old goes
 * @next_rekey: when the outbound SA is due (jiffies)
 * @out_failed: the last outbound re-key found no key
 * @out_stuck: ... and never will (qkd_sa_never()): no more retries
 * @out_seen: newest outbound generation that has sent a packet
 * @out_behind: a forced SA_REKEY left the peer behind for good
 * @out_held: the outbound SA was lost again before a replacement carried
 *	traffic: no more replacements until SA_REKEY (lost_again)
 * @in: the inbound SAs
 * @in_gen: newest inbound generation seen carrying traffic
 * @in_next: next inbound generation to install
 * @in_failed: the last inbound install found no key
 * @in_stuck: ... and never will: no more retries
 * @in_lost: an inbound SA of generation @in_gen or later was deleted by
 *	someone else (DELSA, flush): closed until the peer is seen beyond it
 * @in_lost_max: the newest such generation
 * @in_held: an inbound SA installed in place of lost ones was lost too
 *	before the peer's traffic reached it: no more installs until
 *	SA_REKEY (lost_again)
 * @reason: enum qkd_sa_reason last announced with @state
 * @rekeys: SAs installed after the first ones
 * @failures: re-keys that found no key
 */
struct qkd_sa {
	struct list_head list;
	struct qkd_net *qn;
	struct qkd_stream *stream;
	struct qkd_consumer consumer;
	struct mutex lock; /* see above */
	struct delayed_work work;
	struct rcu_work free_work;

	u16 family;
	xfrm_address_t local;
	xfrm_address_t remote;
	u8 mode;
	u8 alg;
	u8 dir;
	u32 key_bits;
	u32 reqid;
	u32 if_id;
	struct xfrm_mark mark;
	u32 rekey_seconds;
	u64 rekey_bytes;
	u64 rekey_packets;
	u64 first;
	bool initiator;
	bool policy;
	u16 sel_family;
	xfrm_address_t sel_local;
	xfrm_address_t sel_remote;
	u8 sel_local_prefix;
	u8 sel_remote_prefix;
	u32 pol_priority;
	struct xfrm_policy *pol[XFRM_POLICY_MAX];

	bool dead;
	u8 state;
	struct xfrm_state *out;
	u64 out_gen;
	struct xfrm_state *out_old;
	unsigned long out_old_expires;
	unsigned long next_rekey;
	bool out_failed;
	bool out_stuck;
	u64 out_seen;
	bool out_behind;
	bool out_held;
	struct qkd_sa_slot in[QKD_SA_IN_SLOTS];
	u64 in_gen;
	u64 in_next;
	bool in_failed;
	bool in_stuck;
	bool in_lost;
	u64 in_lost_max;
	bool in_held;
	u8 reason;
	u64 rekeys;
	u64 failures;
};

static inline bool qkd_sa_has_out(const struct qkd_sa *b)
{
	return b->dir != QKD_SA_DIR_IN;
}

static inline bool qkd_sa_has_in(const struct qkd_sa *b)
{
	return b->dir != QKD_SA_DIR_OUT;
}

static inline unsigned int qkd_sa_key_len(const struct qkd_sa *b)
{
	return b->key_bits / 8 + QKD_SA_SALT_LEN;
}

static inline u64 qkd_sa_hard_seconds(const struct qkd_sa *b)
{
	u64 t = b->rekey_seconds;

	return max(t * QKD_SA_HARD_FACTOR, t + QKD_SA_HARD_MIN_EXTRA);
}

static inline unsigned int qkd_sa_addr_len(u16 family)
{
	return family == AF_INET ? 4 : 16;
}

/* Stream index of the key of generation @gen in direction @out. */
static inline u64 qkd_sa_index(const struct qkd_sa *b, bool out, u64 gen)
{
	unsigned int channel = out == b->initiator ? 0 : 1;

	return b->first + 2 * gen + channel;
}

/* sa.c */
void qkd_sa_destroy(struct qkd_net *qn, struct qkd_sa *b, bool unprotect);
struct qkd_sa *qkd_sa_find(struct qkd_net *qn, const u8 *stream_id);
int qkd_sa_may_delete(struct qkd_sa *b, struct netlink_ext_ack *extack);
int qkd_sa_create(struct qkd_net *qn, struct qkd_sa *b,
		  const struct nlattr *sid_attr,
		  struct netlink_ext_ack *extack);

/* sa_policy.c */
void qkd_sa_policies_del(struct qkd_sa *b);
void qkd_sa_policy_unbuild(struct xfrm_policy *pol);
int qkd_sa_policies_alloc(struct qkd_sa *b,
			  struct xfrm_policy *pols[XFRM_POLICY_MAX]);
int qkd_sa_policies_check(struct qkd_sa *b,
			  struct xfrm_policy *pols[XFRM_POLICY_MAX],
			  struct netlink_ext_ack *extack);
int qkd_sa_policies_insert(struct qkd_sa *b,
			   struct xfrm_policy *pols[XFRM_POLICY_MAX],
			   struct netlink_ext_ack *extack);
void qkd_sa_policies_block(struct qkd_sa *b);

/* sa_km.c */
void qkd_sa_km_register(void);
void qkd_sa_km_unregister(void);

/* sa_netlink.c */
void qkd_sa_notify_rekey(struct qkd_sa *b, bool out, u64 gen);
void qkd_sa_notify_state(struct qkd_sa *b);

/* sa_rekey.c */
struct xfrm_state *qkd_sa_in_current(const struct qkd_sa *b);
u8 qkd_sa_compute_state(const struct qkd_sa *b);
u8 qkd_sa_compute_reason(const struct qkd_sa *b, u8 state);
void qkd_sa_work(struct work_struct *work);
int qkd_sa_rekey(struct qkd_sa *b, bool force,
		 struct netlink_ext_ack *extack);

/* sa_xfrm.c */
extern const struct qkd_sa_alg_info qkd_sa_algs[];
int qkd_sa_take(struct qkd_sa *b, u64 index, u8 **key);
void qkd_sa_drop(struct xfrm_state *x);
void qkd_sa_unbuild(struct xfrm_state *x);
int qkd_sa_build(struct qkd_sa *b, bool out, u64 gen, const u8 *key,
		 struct xfrm_state **xp, struct netlink_ext_ack *extack);
void qkd_sa_spi_taken(struct netlink_ext_ack *extack);
int qkd_sa_commit(struct xfrm_state *x, struct netlink_ext_ack *extack);
void qkd_sa_take_error(struct netlink_ext_ack *extack, int err);
int qkd_sa_install(struct qkd_sa *b, bool out, u64 gen,
		   struct xfrm_state **xp, struct netlink_ext_ack *extack);
void qkd_sa_discard(struct qkd_sa *b, bool out, u64 gen);
bool qkd_sa_valid(struct xfrm_state *x);
u32 qkd_sa_oseq(struct xfrm_state *x);
bool qkd_sa_out_open(struct xfrm_state *x);
void qkd_sa_curlft(struct xfrm_state *x, u64 *bytes, u64 *packets);
bool qkd_sa_expired(struct xfrm_state *x);
void qkd_sa_drop_all(struct qkd_sa *b);

#endif /* _QKD_SA_H */
