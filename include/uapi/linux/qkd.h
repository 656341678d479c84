/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * qkd: a per-network-namespace store of quantum key distribution keys.
 *
 * This is the one ABI shared by the kernel module and userspace:
 *  - the generic netlink family "qkd" (administration and events), whose
 *    source of truth is Documentation/netlink/specs/qkd.yaml;
 *  - the ioctls of the /dev/qkd character device (key delivery with ETSI
 *    GS QKD 014 enc_keys/dec_keys and GS QKD 004 semantics).
 *
 * Objects: a node (one network namespace) holds links to peer nodes; a link
 * carries key streams (ETSI 004 Key_stream_ID, a 16-byte UUID); a stream
 * holds fixed-size keys at 64-bit indices. Both ends of a link hold the same
 * keys at the same indices; each index is delivered at most once per end.
 */
#ifndef _UAPI_LINUX_QKD_H
#define _UAPI_LINUX_QKD_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define QKD_GENL_NAME		"qkd"
#define QKD_GENL_VERSION	1
#define QKD_MCGRP_EVENTS	"events"

/* Version of the whole ABI (genl + ioctl), reported by QKD_IOC_INFO. */
#define QKD_ABI_VERSION		1

#define QKD_STREAM_ID_LEN	16	/* ETSI GS QKD 004 Key_stream_ID (UUID) */
#define QKD_KEY_ID_LEN		16	/* ETSI GS QKD 014 key_ID (UUID) */
#define QKD_LINK_NAME_MAX	32	/* including the terminating NUL */
#define QKD_PEER_NAME_MAX	64	/* including the terminating NUL */
#define QKD_KEY_SIZE_MIN	16	/* bytes (128 bits) */
#define QKD_KEY_SIZE_MAX	512	/* bytes (4096 bits) */
/* Key bytes carried by one QKD_CMD_KEY_ADD message (a batch). */
#define QKD_KEY_BATCH_MAX_BYTES	32768
/* Highest valid key index (indices are 0 .. QKD_INDEX_MAX). */
#define QKD_INDEX_MAX		((__u64)0x00ffffffffffffffULL)

/**
 * enum qkd_link_role - which end of the QKD link this node is
 * @QKD_ROLE_INITIATOR: Alice: drives the protocol, sends on the quantum channel
 * @QKD_ROLE_RESPONDER: Bob: measures and answers
 */
enum qkd_link_role {
	QKD_ROLE_INITIATOR = 1,
	QKD_ROLE_RESPONDER,
};

/**
 * enum qkd_link_state - state of a link
 * @QKD_LINK_DOWN: the protocol is not producing key (the initial state)
 * @QKD_LINK_UP: the protocol runs and pushes key
 * @QKD_LINK_EXHAUSTED: up, but every stream of the link is empty (reported
 *	only, never set: it is derived from the streams' fill levels)
 */
enum qkd_link_state {
	QKD_LINK_DOWN = 1,
	QKD_LINK_UP,
	QKD_LINK_EXHAUSTED,
};

/* ------------------------------------------------------------------------
 * Generic netlink
 * ------------------------------------------------------------------------
 * Every command needs CAP_NET_ADMIN in the initial user namespace and acts on
 * the caller's network namespace. No command or event ever carries key bytes
 * back out: QKD_A_KEY_DATA is accepted by QKD_CMD_KEY_ADD only.
 */
enum qkd_cmd {
	QKD_CMD_UNSPEC,

	QKD_CMD_LINK_NEW,	/* do: create a link; replies with the link */
	QKD_CMD_LINK_DEL,	/* do: delete a link and all of its streams */
	QKD_CMD_LINK_GET,	/* do: one link by id or name; dump: all links */
	QKD_CMD_LINK_SET,	/* do: change a link's state (up/down) */

	QKD_CMD_STREAM_NEW,	/* do: create a stream on a link */
	QKD_CMD_STREAM_DEL,	/* do: delete a stream, zeroing its keys */
	QKD_CMD_STREAM_GET,	/* do: one stream; dump: all, or one link's */
	QKD_CMD_STREAM_SET,	/* do: change a stream's limits */

	QKD_CMD_KEY_ADD,	/* do: push a batch of consecutive keys */
	QKD_CMD_KEY_FLUSH,	/* do: zero and drop every stored key of a stream */

	QKD_CMD_STATUS_GET,	/* do: the node's totals and limits */

	/* Notifications, multicast to the "events" group only. */
	QKD_CMD_LINK_STATE_NTF,		/* a link changed state */
	QKD_CMD_STREAM_LOW_NTF,		/* fill level fell below the low-water mark */
	QKD_CMD_STREAM_EMPTY_NTF,	/* the last stored key was taken */
	QKD_CMD_KEYS_ADDED_NTF,		/* a batch was added (first index, count) */
	QKD_CMD_LINK_DEL_NTF,		/* a link was deleted */
	QKD_CMD_STREAM_DEL_NTF,		/* a stream was deleted */

	/* ESP SAs keyed from a stream (Documentation/ipsec.md). */
	QKD_CMD_SA_NEW,		/* do: bind an SA pair to a stream */
	QKD_CMD_SA_DEL,		/* do: unbind, deleting the SAs it made */
	QKD_CMD_SA_GET,		/* do: one binding; dump: all */
	QKD_CMD_SA_REKEY_NTF,	/* an SA of a new generation was installed */
	QKD_CMD_SA_STATE_NTF,	/* a binding ran dry, closed, or resumed */
	QKD_CMD_SA_REKEY,	/* do: move the outbound SA to the next generation now */

	__QKD_CMD_MAX,
};

#define QKD_CMD_MAX (__QKD_CMD_MAX - 1)

/*
 * One flat attribute space; each command has its own strict policy (see the
 * YNL spec), and an attribute a command does not take is rejected.
 */
enum qkd_attr {
	QKD_A_UNSPEC,
	QKD_A_PAD,

	QKD_A_LINK_ID,			/* u32, 1 .. U32_MAX */
	QKD_A_LINK_NAME,		/* string, < QKD_LINK_NAME_MAX */
	QKD_A_LINK_PEER,		/* string, < QKD_PEER_NAME_MAX */
	QKD_A_LINK_ROLE,		/* u8, enum qkd_link_role */
	QKD_A_LINK_STATE,		/* u8, enum qkd_link_state */

	QKD_A_STREAM_ID,		/* binary, QKD_STREAM_ID_LEN */
	QKD_A_STREAM_KEY_SIZE,		/* u32, key size in bytes */
	QKD_A_STREAM_MAX_KEYS,		/* u32, keys the stream may hold */
	QKD_A_STREAM_LOW_WATER,		/* u32, low-water mark (keys) */
	QKD_A_STREAM_STORED_KEYS,	/* u32, keys stored now */
	QKD_A_STREAM_NEXT_INDEX,	/* u64, lowest index a push may use */

	QKD_A_KEY_FIRST_INDEX,		/* u64, index of the first key of a batch */
	QKD_A_KEY_DATA,			/* binary, n * key size bytes (KEY_ADD only) */
	QKD_A_KEY_COUNT,		/* u32, keys in a batch (events) */

	/* Counters (u64), per stream, per link, or per node. */
	QKD_A_STATS_KEYS_ADDED,
	QKD_A_STATS_KEYS_DELIVERED,
	QKD_A_STATS_KEYS_FLUSHED,
	QKD_A_STATS_KEYS_STORED,
	QKD_A_STATS_BYTES_STORED,

	/* Node status (QKD_CMD_STATUS_GET). */
	QKD_A_STATUS_ABI_VERSION,	/* u32 */
	QKD_A_STATUS_LINKS,		/* u32, number of links */
	QKD_A_STATUS_STREAMS,		/* u32, number of streams */
	QKD_A_STATUS_MAX_KEYS,		/* u64, limit of keys in this netns */
	QKD_A_STATUS_MAX_BYTES,		/* u64, limit of key bytes in this netns */

	/* SA bindings (QKD_CMD_SA_*), Documentation/ipsec.md. */
	QKD_A_SA_LOCAL,			/* binary, IPv4 (4) or IPv6 (16) address */
	QKD_A_SA_REMOTE,		/* binary, same family as QKD_A_SA_LOCAL */
	QKD_A_SA_MODE,			/* u8, enum qkd_sa_mode */
	QKD_A_SA_ALG,			/* u8, enum qkd_sa_alg */
	QKD_A_SA_KEY_BITS,		/* u32, AEAD key bits (salt not included) */
	QKD_A_SA_DIR,			/* u8, enum qkd_sa_dir */
	QKD_A_SA_REQID,			/* u32 */
	QKD_A_SA_IF_ID,			/* u32, XFRM interface id */
	QKD_A_SA_MARK,			/* u32 */
	QKD_A_SA_MARK_MASK,		/* u32 */
	QKD_A_SA_REKEY_SECONDS,		/* u32, re-key after this many seconds */
	QKD_A_SA_REKEY_BYTES,		/* u64, ... or this many bytes */
	QKD_A_SA_REKEY_PACKETS,		/* u64, ... or this many packets */
	QKD_A_SA_STATE,			/* u8, enum qkd_sa_state */
	QKD_A_SA_GENERATION,		/* u64, generation of an SA */
	QKD_A_SA_SPI,			/* u32, SPI of an SA (host order) */
	QKD_A_SA_KEY_INDEX,		/* u64, stream index of an SA's key */
	QKD_A_SA_OUT_GENERATION,	/* u64, generation of the outbound SA */
	QKD_A_SA_OUT_SPI,		/* u32 */
	QKD_A_SA_IN_GENERATION,		/* u64, newest inbound generation in use */
	QKD_A_SA_IN_SPI,		/* u32 */
	QKD_A_SA_REKEYS,		/* u64, SAs installed after the first ones */
	QKD_A_SA_REKEY_FAILURES,	/* u64, re-keys that found no key */
	QKD_A_SA_OUT_BYTES,		/* u64, bytes through the outbound SA */
	QKD_A_SA_OUT_PACKETS,		/* u64 */
	QKD_A_SA_IN_BYTES,		/* u64, bytes through the newest inbound SA */
	QKD_A_SA_IN_PACKETS,		/* u64 */
	QKD_A_SA_POLICY,		/* flag: the binding installs its XFRM policies */
	QKD_A_SA_POLICY_LOCAL,		/* binary, local selector address (tunnel) */
	QKD_A_SA_POLICY_LOCAL_PREFIX,	/* u8, its prefix length */
	QKD_A_SA_POLICY_REMOTE,		/* binary, remote selector address (tunnel) */
	QKD_A_SA_POLICY_REMOTE_PREFIX,	/* u8, its prefix length */
	QKD_A_SA_POLICY_PRIORITY,	/* u32, XFRM priority of the policies */

	QKD_A_STREAM_CONSUMER,		/* u8, enum qkd_stream_consumer */
	QKD_A_SA_REMOVE_PROTECTION,	/* flag, SA_DEL: no block policies */
	QKD_A_SA_REASON,		/* u8, enum qkd_sa_reason: why not ok */
	QKD_A_SA_FORCE,			/* flag: SA_REKEY beyond the peer's lookahead */

	__QKD_A_MAX,
};

#define QKD_A_MAX (__QKD_A_MAX - 1)

/**
 * enum qkd_stream_consumer - who may take a stream's keys
 * @QKD_STREAM_CONSUMER_NONE: any holder of /dev/qkd open for writing
 *	(QKD_IOC_GET_KEY*, ALG_SETKEY, LOGON_KEY, the "qkd" key type) and
 *	in-kernel users of qkd_key_use()
 * @QKD_STREAM_CONSUMER_SA: an SA binding (QKD_CMD_SA_NEW) owns the stream:
 *	every other way of taking its keys fails with EBUSY until the binding
 *	is deleted
 */
enum qkd_stream_consumer {
	QKD_STREAM_CONSUMER_NONE,
	QKD_STREAM_CONSUMER_SA,
};

/**
 * enum qkd_sa_mode - XFRM mode of the SAs of a binding
 * @QKD_SA_MODE_TRANSPORT: transport mode
 * @QKD_SA_MODE_TUNNEL: tunnel mode, between the local and remote addresses
 */
enum qkd_sa_mode {
	QKD_SA_MODE_TRANSPORT = 1,
	QKD_SA_MODE_TUNNEL,
};

/**
 * enum qkd_sa_alg - AEAD of the SAs of a binding (ICV always 128 bits)
 * @QKD_SA_ALG_AES_GCM: rfc4106(gcm(aes)), 128, 192 or 256-bit key + 4-byte salt
 * @QKD_SA_ALG_CHACHA20_POLY1305: rfc7539esp(chacha20,poly1305), 256-bit key
 *	+ 4-byte salt
 */
enum qkd_sa_alg {
	QKD_SA_ALG_AES_GCM = 1,
	QKD_SA_ALG_CHACHA20_POLY1305,
};

/**
 * enum qkd_sa_dir - which SAs of the pair a binding installs
 * @QKD_SA_DIR_OUT: only the outbound SA (local to remote)
 * @QKD_SA_DIR_IN: only the inbound SA (remote to local)
 * @QKD_SA_DIR_BOTH: both
 */
enum qkd_sa_dir {
	QKD_SA_DIR_OUT = 1,
	QKD_SA_DIR_IN,
	QKD_SA_DIR_BOTH,
};

/**
 * enum qkd_sa_state - state of a binding
 * @QKD_SA_STATE_OK: every SA it needs is installed
 * @QKD_SA_STATE_DRY: a re-key found no key; the current SAs are kept until
 *	their hard lifetime
 * @QKD_SA_STATE_CLOSED: an SA reached its hard lifetime (or the outbound
 *	one its last sequence number) with no successor: traffic that the
 *	policies send through it is dropped (fail closed)
 * @QKD_SA_STATE_STUCK: a key the binding needs can never come at this end
 *	(taken or flushed here, or its SPI held by an SA of someone else): no
 *	more retries; the current SAs live until their hard lifetime, then
 *	traffic is dropped. SA_REKEY tries the outbound re-key again.
 */
enum qkd_sa_state {
	QKD_SA_STATE_OK = 1,
	QKD_SA_STATE_DRY,
	QKD_SA_STATE_CLOSED,
	QKD_SA_STATE_STUCK,
};

/**
 * enum qkd_sa_reason - why a binding is not ok (QKD_A_SA_REASON, in the
 *	binding and in SA_STATE_NTF; absent when it is ok)
 * @QKD_SA_REASON_NO_KEY: a re-key found no key in the stream (dry, then
 *	closed at the current SA's hard lifetime); pushing keys recovers
 * @QKD_SA_REASON_EXPIRED: an SA reached its hard lifetime (or the outbound
 *	one its last sequence number) with no successor
 * @QKD_SA_REASON_KEY_GONE: a key the binding needs was taken or flushed at
 *	this end, or an SA of someone else holds its SPI (stuck)
 * @QKD_SA_REASON_IN_DELETED: an inbound SA the peer uses or will use next
 *	was deleted by hand (XFRM_MSG_DELSA, flush): the binding installed
 *	fresh ones further on, and is ok again once the peer's traffic
 *	arrives on them, after at most QKD_SA_LOOKAHEAD + 1 re-keys of the
 *	peer (its policy, or SA_REKEY there)
 * @QKD_SA_REASON_PEER_BEHIND: SA_REKEY with QKD_A_SA_FORCE moved the
 *	outbound SA more than QKD_SA_LOOKAHEAD generations beyond the newest
 *	one that sent traffic: the peer cannot follow; bind again at both ends
 * @QKD_SA_REASON_LOST_AGAIN: SAs the binding installed in place of lost
 *	ones were lost too before any traffic crossed them (`ip xfrm state
 *	deleteall` racing the binding): it stopped replacing them, so that no
 *	more keys burn and the peer can still follow. SA_REKEY at this end
 *	resumes (the outbound SA moves on to the last generation the peer
 *	holds, inbound SAs are installed again beyond the lost ones); the
 *	peer then re-keys up to 2 * (QKD_SA_LOOKAHEAD + 1) times
 */
enum qkd_sa_reason {
	QKD_SA_REASON_NO_KEY = 1,
	QKD_SA_REASON_EXPIRED,
	QKD_SA_REASON_KEY_GONE,
	QKD_SA_REASON_IN_DELETED,
	QKD_SA_REASON_PEER_BEHIND,
	QKD_SA_REASON_LOST_AGAIN,
};

/*
 * Inbound generations a binding installs beyond the newest one its peer is
 * seen using: how far a sender may re-key ahead of what its receiver saw.
 */
#define QKD_SA_LOOKAHEAD	2

/* SAs (bindings) one network namespace may hold. */
#define QKD_SA_MAX_BINDINGS	64

/*
 * SPI of the SA keyed by the key at @index of stream @stream_id: the 32-bit
 * FNV-1a hash of the stream ID followed by the index in big-endian order,
 * with 0x100 set when below 256 (SPIs 0..255 are reserved). Both ends
 * compute the same SPI for the same key; see Documentation/ipsec.md.
 */
static inline __u32 qkd_sa_spi(const __u8 stream_id[QKD_STREAM_ID_LEN],
			       __u64 index)
{
	__u32 h = 2166136261U;
	int i;

	for (i = 0; i < QKD_STREAM_ID_LEN; i++)
		h = (h ^ stream_id[i]) * 16777619U;
	for (i = 7; i >= 0; i--)
		h = (h ^ (__u8)(index >> (8 * i))) * 16777619U;
	return h < 256 ? h | 0x100 : h;
}

/* ------------------------------------------------------------------------
 * /dev/qkd ioctls
 * ------------------------------------------------------------------------
 * The device binds to the network namespace of the process that opens it.
 * Every struct starts with @size (must be sizeof the struct) and @flags
 * (unknown bits are rejected with -EINVAL); every reserved field must be
 * zero (else -EINVAL). Unknown ioctls fail with -ENOTTY.
 *
 * Key IDs: a key is named by (stream ID, index). Its ETSI GS QKD 014 key_ID
 * is the stream ID with bytes 8..15 XORed with the big-endian index, the same
 * at both ends: see qkd_key_id_from_index() below.
 */
#define QKD_IOC_MAGIC		0xBA

/* Feature bits of struct qkd_info.features. */
#define QKD_FEATURE_GET_KEY	(1ULL << 0)	/* QKD_IOC_GET_KEY */
#define QKD_FEATURE_GET_KEY_BY_ID (1ULL << 1)	/* QKD_IOC_GET_KEY_BY_ID */
#define QKD_FEATURE_POLL	(1ULL << 2)	/* QKD_IOC_SET_POLL_STREAM + poll() */
#define QKD_FEATURE_ALG_SETKEY	(1ULL << 3)	/* QKD_IOC_ALG_SETKEY */
#define QKD_FEATURE_LOGON_KEY	(1ULL << 4)	/* QKD_IOC_LOGON_KEY */
#define QKD_FEATURE_KEY_TYPE	(1ULL << 5)	/* the "qkd" key type (add_key) */
#define QKD_FEATURE_GET_KEYS	(1ULL << 6)	/* QKD_IOC_GET_KEYS */

/**
 * struct qkd_info - QKD_IOC_INFO: what this module offers
 * @size: sizeof(struct qkd_info)
 * @flags: must be 0
 * @abi_version: out: QKD_ABI_VERSION
 * @key_size_min: out: smallest key size a stream may have, bytes
 * @key_size_max: out: largest key size a stream may have, bytes
 * @reserved0: must be 0
 * @features: out: QKD_FEATURE_* bits
 * @reserved: must be 0
 */
struct qkd_info {
	__u32 size;
	__u32 flags;
	__u32 abi_version;
	__u32 key_size_min;
	__u32 key_size_max;
	__u32 reserved0;
	__u64 features;
	__u64 reserved[4];
};

/**
 * struct qkd_stream_status - QKD_IOC_STREAM_STATUS: ETSI 014 "Get status"
 * @size: sizeof(struct qkd_stream_status)
 * @flags: must be 0
 * @stream_id: in: the stream
 * @link_id: out: the link that carries the stream
 * @key_size: out: key size of the stream, bytes (014 key_size, in bytes)
 * @stored_key_count: out: keys available now (014 stored_key_count)
 * @max_key_count: out: keys the stream may hold (014 max_key_count)
 * @max_key_per_request: out: keys one request can take (014 max_key_per_request)
 * @min_key_size: out: smallest key size the node supports, bytes
 * @max_key_size: out: largest key size the node supports, bytes
 * @reserved0: must be 0
 * @next_index: out: lowest index the next QKD_IOC_GET_KEY would deliver, or
 *	the index the next push will start at when the stream is empty
 * @reserved: must be 0
 */
struct qkd_stream_status {
	__u32 size;
	__u32 flags;
	__u8  stream_id[QKD_STREAM_ID_LEN];
	__u32 link_id;
	__u32 key_size;
	__u32 stored_key_count;
	__u32 max_key_count;
	__u32 max_key_per_request;
	__u32 min_key_size;
	__u32 max_key_size;
	__u32 reserved0;
	__u64 next_index;
	__u64 reserved[4];
};

/* struct qkd_key_request.flags */
#define QKD_KEY_F_BY_KEY_ID	(1U << 0)	/* GET_KEY_BY_ID: look up @key_id, not @index */
#define QKD_KEY_FLAGS_ALL	QKD_KEY_F_BY_KEY_ID

/**
 * struct qkd_key_request - QKD_IOC_GET_KEY and QKD_IOC_GET_KEY_BY_ID
 * @size: sizeof(struct qkd_key_request)
 * @flags: QKD_KEY_F_* (only GET_KEY_BY_ID takes any)
 * @stream_id: in: the stream
 * @index: GET_KEY: out, the index delivered; GET_KEY_BY_ID: in, the index
 *	wanted (ignored with QKD_KEY_F_BY_KEY_ID, then out)
 * @key_id: out: the ETSI 014 key_ID of the key; in with QKD_KEY_F_BY_KEY_ID
 * @key_len: in: size of the buffer at @key_ptr; out: the key size. A buffer
 *	smaller than the stream's key size fails with -ERANGE and takes nothing.
 * @reserved0: must be 0
 * @key_ptr: in: user address of the buffer the key is written to
 * @reserved: must be 0
 *
 * GET_KEY takes the lowest stored index of the stream (014 enc_keys);
 * GET_KEY_BY_ID takes the given one (014 dec_keys). Either way the key is
 * removed from this end's store: a second request for it fails.
 */
struct qkd_key_request {
	__u32 size;
	__u32 flags;
	__u8  stream_id[QKD_STREAM_ID_LEN];
	__u64 index;
	__u8  key_id[QKD_KEY_ID_LEN];
	__u32 key_len;
	__u32 reserved0;
	__u64 key_ptr;
	__u64 reserved[4];
};

/**
 * struct qkd_poll_stream - QKD_IOC_SET_POLL_STREAM: what poll() waits for
 * @size: sizeof(struct qkd_poll_stream)
 * @flags: must be 0
 * @stream_id: in: the stream; poll() then reports EPOLLIN while it holds a
 *	key, and EPOLLERR once it is deleted. Before this call poll() reports
 *	EPOLLERR.
 * @reserved: must be 0
 */
struct qkd_poll_stream {
	__u32 size;
	__u32 flags;
	__u8  stream_id[QKD_STREAM_ID_LEN];
	__u64 reserved[2];
};

/* Most keys one QKD_IOC_GET_KEYS takes (ETSI 014 max_key_per_request). */
#define QKD_GET_KEYS_MAX	256

#define QKD_KEYS_F_PARTIAL	(1U << 0)	/* fewer than @number will do */
#define QKD_KEYS_FLAGS_ALL	QKD_KEYS_F_PARTIAL

/**
 * struct qkd_keys_request - QKD_IOC_GET_KEYS: the next keys of a stream
 * @size: sizeof(struct qkd_keys_request)
 * @flags: QKD_KEYS_F_*
 * @stream_id: in: the stream
 * @number: in: keys wanted, 1..QKD_GET_KEYS_MAX (014 "number"); out: keys
 *	delivered
 * @key_size: out: the stream's key size, bytes
 * @keys_len: in: size of the buffer at @keys_ptr; less than @number times
 *	the key size fails with -ERANGE and takes nothing
 * @reserved0: must be 0
 * @keys_ptr: in: user buffer; key i is written at offset i * key_size
 * @indices_ptr: in: user array of @number __u64; index i is that of key i
 *	(its key_ID is qkd_key_id_from_index() of it)
 * @reserved: must be 0
 *
 * ETSI 014 enc_keys with "number": the @number lowest stored keys, in
 * index order, taken in one step. Without QKD_KEYS_F_PARTIAL it is all or
 * nothing: a stream holding fewer keys fails with -EAGAIN and nothing is
 * taken; with it, as many as there are (at least one, else -EAGAIN).
 */
struct qkd_keys_request {
	__u32 size;
	__u32 flags;
	__u8  stream_id[QKD_STREAM_ID_LEN];
	__u32 number;
	__u32 key_size;
	__u32 keys_len;
	__u32 reserved0;
	__u64 keys_ptr;
	__u64 indices_ptr;
	__u64 reserved[4];
};

/*
 * Keys that the kernel uses for the caller, who never sees their bytes:
 * QKD_IOC_ALG_SETKEY keys an AF_ALG transform socket, QKD_IOC_LOGON_KEY puts
 * the key into a keyring as a "logon" key. Which key: the stream's lowest
 * stored one, or with one of these flags the one at @index or @key_id.
 */
#define QKD_USE_F_BY_INDEX	(1U << 0)	/* take the key at @index */
#define QKD_USE_F_BY_KEY_ID	(1U << 1)	/* take the key named @key_id */
#define QKD_USE_FLAGS_ALL	(QKD_USE_F_BY_INDEX | QKD_USE_F_BY_KEY_ID)
/* Fewest key bytes a consumer may ask for (128 bits); see @key_len below. */
#define QKD_USE_KEY_LEN_MIN	16

/**
 * struct qkd_alg_setkey - QKD_IOC_ALG_SETKEY: key an AF_ALG socket
 * @size: sizeof(struct qkd_alg_setkey)
 * @flags: QKD_USE_F_* (at most one)
 * @stream_id: in: the stream
 * @index: in with QKD_USE_F_BY_INDEX; out: the index used
 * @key_id: in with QKD_USE_F_BY_KEY_ID; out: the key_ID of the key used
 * @key_len: in: key bytes to use, 0 for the stream's key size, else
 *	QKD_USE_KEY_LEN_MIN .. key size (the first @key_len bytes of the key;
 *	the rest is zeroed); out: the bytes used
 * @alg_fd: in: an AF_ALG transform socket, bound (the socket passed to
 *	bind(), not one returned by accept())
 * @reserved: must be 0
 *
 * Sets the socket's key as setsockopt(SOL_ALG, ALG_SET_KEY) would, with key
 * bytes that never leave the kernel. The key is consumed only if the
 * algorithm accepted it.
 */
struct qkd_alg_setkey {
	__u32 size;
	__u32 flags;
	__u8  stream_id[QKD_STREAM_ID_LEN];
	__u64 index;
	__u8  key_id[QKD_KEY_ID_LEN];
	__u32 key_len;
	__s32 alg_fd;
	__u64 reserved[4];
};

/**
 * struct qkd_logon_key - QKD_IOC_LOGON_KEY: a key into a keyring, as "logon"
 * @size: sizeof(struct qkd_logon_key)
 * @flags: QKD_USE_F_* (at most one)
 * @stream_id: in: the stream
 * @index: in with QKD_USE_F_BY_INDEX; out: the index used
 * @key_id: in with QKD_USE_F_BY_KEY_ID; out: the key_ID of the key used
 * @key_len: in: as in struct qkd_alg_setkey; out: the bytes used
 * @keyring: in: the destination keyring, a serial or a KEY_SPEC_* value
 *	(e.g. KEY_SPEC_SESSION_KEYRING, -3), resolved as add_key(2) does; the
 *	caller needs write permission on it
 * @desc_ptr: in: user address of the key's description, a NUL-terminated
 *	"prefix:name" string as the logon type requires; 0 for
 *	"qkd:<key_ID>"
 * @serial: out: the serial of the key
 * @reserved0: must be 0
 * @reserved: must be 0
 *
 * Exactly add_key("logon", description, key, keyring) with the key from the
 * store: a logon key of that description already in the keyring is
 * updated. Logon keys cannot be read back from userspace, but any kernel
 * subsystem that accepts logon keys (dm-crypt, AF_ALG by serial) can use it
 * for whoever can search it.
 */
struct qkd_logon_key {
	__u32 size;
	__u32 flags;
	__u8  stream_id[QKD_STREAM_ID_LEN];
	__u64 index;
	__u8  key_id[QKD_KEY_ID_LEN];
	__u32 key_len;
	__s32 keyring;
	__u64 desc_ptr;
	__s32 serial;
	__u32 reserved0;
	__u64 reserved[4];
};

#define QKD_IOC_INFO		_IOWR(QKD_IOC_MAGIC, 0x00, struct qkd_info)
#define QKD_IOC_STREAM_STATUS	_IOWR(QKD_IOC_MAGIC, 0x01, struct qkd_stream_status)
#define QKD_IOC_GET_KEY		_IOWR(QKD_IOC_MAGIC, 0x02, struct qkd_key_request)
#define QKD_IOC_GET_KEY_BY_ID	_IOWR(QKD_IOC_MAGIC, 0x03, struct qkd_key_request)
#define QKD_IOC_SET_POLL_STREAM	_IOW(QKD_IOC_MAGIC, 0x04, struct qkd_poll_stream)
#define QKD_IOC_ALG_SETKEY	_IOWR(QKD_IOC_MAGIC, 0x05, struct qkd_alg_setkey)
#define QKD_IOC_LOGON_KEY	_IOWR(QKD_IOC_MAGIC, 0x06, struct qkd_logon_key)
#define QKD_IOC_GET_KEYS	_IOWR(QKD_IOC_MAGIC, 0x07, struct qkd_keys_request)

/*
 * ETSI 014 key_ID of (stream ID, index): the stream ID with bytes 8..15
 * XORed with the index in big-endian order. Both ends compute the same ID,
 * and the index is recovered from the key_ID and the stream ID alone.
 */
static inline void qkd_key_id_from_index(__u8 key_id[QKD_KEY_ID_LEN],
					 const __u8 stream_id[QKD_STREAM_ID_LEN],
					 __u64 index)
{
	int i;

	for (i = 0; i < QKD_KEY_ID_LEN; i++)
		key_id[i] = stream_id[i];
	for (i = 0; i < 8; i++)
		key_id[15 - i] ^= (__u8)(index >> (8 * i));
}

static inline __u64 qkd_key_id_to_index(const __u8 key_id[QKD_KEY_ID_LEN],
					const __u8 stream_id[QKD_STREAM_ID_LEN])
{
	__u64 index = 0;
	int i;

	for (i = 8; i < QKD_KEY_ID_LEN; i++)
		index = (index << 8) | (__u8)(key_id[i] ^ stream_id[i]);
	return index;
}

#endif /* _UAPI_LINUX_QKD_H */
