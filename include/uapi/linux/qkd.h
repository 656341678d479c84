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

	__QKD_A_MAX,
};

#define QKD_A_MAX (__QKD_A_MAX - 1)

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

#define QKD_IOC_INFO		_IOWR(QKD_IOC_MAGIC, 0x00, struct qkd_info)
#define QKD_IOC_STREAM_STATUS	_IOWR(QKD_IOC_MAGIC, 0x01, struct qkd_stream_status)
#define QKD_IOC_GET_KEY		_IOWR(QKD_IOC_MAGIC, 0x02, struct qkd_key_request)
#define QKD_IOC_GET_KEY_BY_ID	_IOWR(QKD_IOC_MAGIC, 0x03, struct qkd_key_request)
#define QKD_IOC_SET_POLL_STREAM	_IOW(QKD_IOC_MAGIC, 0x04, struct qkd_poll_stream)

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
