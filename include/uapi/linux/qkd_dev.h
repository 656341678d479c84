/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * qkd: the ioctls of the /dev/qkd character device (key delivery with ETSI
 * GS QKD 014 enc_keys/dec_keys and GS QKD 004 semantics). Hand-written.
 *
 * The generic netlink family "qkd" (administration and events) and the
 * constants both share (QKD_ABI_VERSION, QKD_STREAM_ID_LEN, the key sizes,
 * the QKD_FEATURE_* bits) are in <linux/qkd.h>, generated from the YNL spec
 * Documentation/netlink/specs/qkd.yaml.
 *
 * Objects: a node (one network namespace) holds links to peer nodes; a link
 * carries key streams (ETSI 004 Key_stream_ID, a 16-byte UUID); a stream
 * holds fixed-size keys at 64-bit indices. Both ends of a link hold the same
 * keys at the same indices; each index is delivered at most once per end.
 */
#ifndef _UAPI_LINUX_QKD_DEV_H
#define _UAPI_LINUX_QKD_DEV_H

#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/qkd.h>

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
 * at both ends, and the index is recovered from the key_ID and the stream ID
 * alone (Documentation/abi.md; qkd_key_id_from_index() and
 * qkd_key_id_to_index() in libqkd's <qkd/ids.h>).
 */
#define QKD_IOC_MAGIC		0xBA

/**
 * struct qkd_info - QKD_IOC_INFO: what this module offers
 * @size: sizeof(struct qkd_info)
 * @flags: must be 0
 * @abi_version: out: QKD_ABI_VERSION
 * @key_size_min: out: smallest key size a stream may have, bytes
 * @key_size_max: out: largest key size a stream may have, bytes
 * @reserved0: must be 0
 * @features: out: enum qkd_feature bits (<linux/qkd.h>)
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
 *	(its key_ID is derived from it, see "Key IDs" above)
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

#endif /* _UAPI_LINUX_QKD_DEV_H */
