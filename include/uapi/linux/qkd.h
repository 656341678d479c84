/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause) */
/* Do not edit directly, auto-generated from: */
/*	Documentation/netlink/specs/qkd.yaml */
/* YNL-GEN uapi header */

#ifndef _UAPI_LINUX_QKD_H
#define _UAPI_LINUX_QKD_H

#define QKD_FAMILY_NAME		"qkd"
#define QKD_FAMILY_VERSION	1

#define QKD_ABI_VERSION			2
#define QKD_STREAM_ID_LEN		16
#define QKD_KEY_ID_LEN			16
#define QKD_LINK_NAME_MAX		32
#define QKD_PEER_NAME_MAX		64
#define QKD_KEY_SIZE_MIN		16
#define QKD_KEY_SIZE_MAX		512
#define QKD_KEY_BATCH_MAX_BYTES		32768
#define QKD_INDEX_MAX			72057594037927935
#define QKD_STREAM_MAX_KEYS_LIMIT	1048576

/**
 * enum qkd_link_role - Which end of the QKD link this node is.
 * @QKD_LINK_ROLE_INITIATOR: Alice, drives the protocol, sends on the quantum
 *   channel.
 * @QKD_LINK_ROLE_RESPONDER: Bob, measures and answers.
 */
enum qkd_link_role {
	QKD_LINK_ROLE_INITIATOR = 1,
	QKD_LINK_ROLE_RESPONDER,
};

/**
 * enum qkd_link_state - State of a link.
 * @QKD_LINK_STATE_DOWN: The protocol is not producing key (the initial state).
 * @QKD_LINK_STATE_UP: The protocol runs and pushes key.
 * @QKD_LINK_STATE_EXHAUSTED: Up, but every stream of the link is empty.
 *   Reported, never set: it is derived from the streams' fill levels.
 */
enum qkd_link_state {
	QKD_LINK_STATE_DOWN = 1,
	QKD_LINK_STATE_UP,
	QKD_LINK_STATE_EXHAUSTED,
};

/**
 * enum qkd_stream_consumer - Who may take a stream's keys.
 * @QKD_STREAM_CONSUMER_NONE: Anyone holding /dev/qkd open for writing (the
 *   get-key ioctls, ALG_SETKEY, LOGON_KEY, the "qkd" key type) and in-kernel
 *   users of qkd_key_use().
 * @QKD_STREAM_CONSUMER_SA: An SA binding (sa-new) owns the stream: every other
 *   way of taking its keys fails with EBUSY until the binding is deleted.
 */
enum qkd_stream_consumer {
	QKD_STREAM_CONSUMER_NONE,
	QKD_STREAM_CONSUMER_SA,
};

/**
 * enum qkd_sa_mode - XFRM mode of the SAs of a binding.
 * @QKD_SA_MODE_TUNNEL: Between the local and remote addresses.
 */
enum qkd_sa_mode {
	QKD_SA_MODE_TRANSPORT = 1,
	QKD_SA_MODE_TUNNEL,
};

/**
 * enum qkd_sa_alg - AEAD of the SAs of a binding; the ICV is always 128 bits.
 * @QKD_SA_ALG_AES_GCM: rfc4106(gcm(aes)), a 128, 192 or 256-bit key and a
 *   4-byte salt.
 * @QKD_SA_ALG_CHACHA20_POLY1305: rfc7539esp(chacha20,poly1305), a 256-bit key
 *   and a 4-byte salt.
 */
enum qkd_sa_alg {
	QKD_SA_ALG_AES_GCM = 1,
	QKD_SA_ALG_CHACHA20_POLY1305,
};

/**
 * enum qkd_sa_dir - Which SAs of the pair a binding installs.
 * @QKD_SA_DIR_OUT: Only the outbound SA (local to remote).
 * @QKD_SA_DIR_IN: Only the inbound SA (remote to local).
 */
enum qkd_sa_dir {
	QKD_SA_DIR_OUT = 1,
	QKD_SA_DIR_IN,
	QKD_SA_DIR_BOTH,
};

/**
 * enum qkd_sa_state - State of a binding.
 * @QKD_SA_STATE_OK: Every SA the binding needs is installed.
 * @QKD_SA_STATE_DRY: A re-key found no key; the current SAs live until their
 *   hard lifetime.
 * @QKD_SA_STATE_CLOSED: An SA reached its hard lifetime (or the outbound one
 *   its last sequence number) with no successor: what the policies send
 *   through it is dropped (fail closed).
 * @QKD_SA_STATE_STUCK: A key the binding needs can never come at this end
 *   (taken or flushed here, or its SPI held by an SA of someone else): no more
 *   retries; the current SAs live until their hard lifetime, then traffic is
 *   dropped. sa-rekey tries the outbound re-key again.
 */
enum qkd_sa_state {
	QKD_SA_STATE_OK = 1,
	QKD_SA_STATE_DRY,
	QKD_SA_STATE_CLOSED,
	QKD_SA_STATE_STUCK,
};

/**
 * enum qkd_sa_reason - Why a binding is not ok (absent when it is).
 * @QKD_SA_REASON_NO_KEY: A re-key found no key in the stream; pushing keys
 *   recovers.
 * @QKD_SA_REASON_EXPIRED: An SA reached its hard lifetime (or the outbound one
 *   its last sequence number) with no successor.
 * @QKD_SA_REASON_KEY_GONE: A key the binding needs was taken or flushed at
 *   this end, or an SA of someone else holds its SPI.
 * @QKD_SA_REASON_IN_DELETED: An inbound SA the peer uses or will use next was
 *   deleted by hand (DELSA, flush): fresh ones are installed further on, and
 *   the binding is ok again once the peer's traffic arrives on them, after at
 *   most sa-lookahead + 1 re-keys of the peer.
 * @QKD_SA_REASON_PEER_BEHIND: sa-rekey with force moved the outbound SA more
 *   than sa-lookahead generations beyond the newest one that sent traffic: the
 *   peer cannot follow; bind again at both ends.
 * @QKD_SA_REASON_LOST_AGAIN: SAs the binding installed in place of lost ones
 *   were lost too before traffic crossed them (ip xfrm state deleteall racing
 *   the binding): it stopped replacing them. sa-rekey at this end resumes (the
 *   outbound SA moves on to the last generation the peer holds, inbound SAs
 *   are installed again beyond the lost ones); the peer then re-keys up to 2 *
 *   (sa-lookahead + 1) times.
 */
enum qkd_sa_reason {
	QKD_SA_REASON_NO_KEY = 1,
	QKD_SA_REASON_EXPIRED,
	QKD_SA_REASON_KEY_GONE,
	QKD_SA_REASON_IN_DELETED,
	QKD_SA_REASON_PEER_BEHIND,
	QKD_SA_REASON_LOST_AGAIN,
};

/**
 * enum qkd_feature - What this module offers, in status-get's features and in
 *   struct qkd_info's features (QKD_IOC_INFO).
 * @QKD_FEATURE_GET_KEY: QKD_IOC_GET_KEY.
 * @QKD_FEATURE_GET_KEY_BY_ID: QKD_IOC_GET_KEY_BY_ID.
 * @QKD_FEATURE_POLL: QKD_IOC_SET_POLL_STREAM and poll().
 * @QKD_FEATURE_ALG_SETKEY: QKD_IOC_ALG_SETKEY.
 * @QKD_FEATURE_LOGON_KEY: QKD_IOC_LOGON_KEY.
 * @QKD_FEATURE_KEY_TYPE: The "qkd" key type (add_key).
 * @QKD_FEATURE_GET_KEYS: QKD_IOC_GET_KEYS.
 */
enum qkd_feature {
	QKD_FEATURE_GET_KEY = 1,
	QKD_FEATURE_GET_KEY_BY_ID = 2,
	QKD_FEATURE_POLL = 4,
	QKD_FEATURE_ALG_SETKEY = 8,
	QKD_FEATURE_LOGON_KEY = 16,
	QKD_FEATURE_KEY_TYPE = 32,
	QKD_FEATURE_GET_KEYS = 64,
};

#define QKD_SA_LOOKAHEAD	2
#define QKD_SA_MAX_BINDINGS	64

enum qkd_a_stats {
	QKD_A_STATS_KEYS_ADDED = 1,
	QKD_A_STATS_KEYS_DELIVERED,
	QKD_A_STATS_KEYS_FLUSHED,
	QKD_A_STATS_KEYS_STORED,
	QKD_A_STATS_BYTES_STORED,

	__QKD_A_STATS_MAX,
	QKD_A_STATS_MAX = (__QKD_A_STATS_MAX - 1)
};

enum qkd_a_link {
	QKD_A_LINK_ID = 1,
	QKD_A_LINK_NAME,
	QKD_A_LINK_PEER,
	QKD_A_LINK_ROLE,
	QKD_A_LINK_STATE,
	QKD_A_LINK_STREAMS,
	QKD_A_LINK_STATS,

	__QKD_A_LINK_MAX,
	QKD_A_LINK_MAX = (__QKD_A_LINK_MAX - 1)
};

enum qkd_a_stream {
	QKD_A_STREAM_PAD = 1,
	QKD_A_STREAM_ID,
	QKD_A_STREAM_LINK_ID,
	QKD_A_STREAM_LINK_NAME,
	QKD_A_STREAM_KEY_SIZE,
	QKD_A_STREAM_MAX_KEYS,
	QKD_A_STREAM_LOW_WATER,
	QKD_A_STREAM_STORED_KEYS,
	QKD_A_STREAM_NEXT_INDEX,
	QKD_A_STREAM_CONSUMER,
	QKD_A_STREAM_STATS,

	__QKD_A_STREAM_MAX,
	QKD_A_STREAM_MAX = (__QKD_A_STREAM_MAX - 1)
};

enum qkd_a_keys {
	QKD_A_KEYS_PAD = 1,
	QKD_A_KEYS_STREAM_ID,
	QKD_A_KEYS_LINK_ID,
	QKD_A_KEYS_FIRST_INDEX,
	QKD_A_KEYS_DATA,
	QKD_A_KEYS_COUNT,
	QKD_A_KEYS_STORED_KEYS,

	__QKD_A_KEYS_MAX,
	QKD_A_KEYS_MAX = (__QKD_A_KEYS_MAX - 1)
};

enum qkd_a_status {
	QKD_A_STATUS_ABI_VERSION = 1,
	QKD_A_STATUS_LINKS,
	QKD_A_STATUS_STREAMS,
	QKD_A_STATUS_MAX_KEYS,
	QKD_A_STATUS_MAX_BYTES,
	QKD_A_STATUS_FEATURES,
	QKD_A_STATUS_STATS,

	__QKD_A_STATUS_MAX,
	QKD_A_STATUS_MAX = (__QKD_A_STATUS_MAX - 1)
};

enum qkd_a_sa_gen {
	QKD_A_SA_GEN_PAD = 1,
	QKD_A_SA_GEN_GENERATION,
	QKD_A_SA_GEN_SPI,
	QKD_A_SA_GEN_KEY_INDEX,
	QKD_A_SA_GEN_BYTES,
	QKD_A_SA_GEN_PACKETS,

	__QKD_A_SA_GEN_MAX,
	QKD_A_SA_GEN_MAX = (__QKD_A_SA_GEN_MAX - 1)
};

enum qkd_a_sa_policy {
	QKD_A_SA_POLICY_LOCAL_IPV4 = 1,
	QKD_A_SA_POLICY_LOCAL_IPV6,
	QKD_A_SA_POLICY_LOCAL_PREFIX,
	QKD_A_SA_POLICY_REMOTE_IPV4,
	QKD_A_SA_POLICY_REMOTE_IPV6,
	QKD_A_SA_POLICY_REMOTE_PREFIX,
	QKD_A_SA_POLICY_PRIORITY,

	__QKD_A_SA_POLICY_MAX,
	QKD_A_SA_POLICY_MAX = (__QKD_A_SA_POLICY_MAX - 1)
};

enum qkd_a_sa {
	QKD_A_SA_PAD = 1,
	QKD_A_SA_STREAM_ID,
	QKD_A_SA_LINK_ID,
	QKD_A_SA_LOCAL_IPV4,
	QKD_A_SA_LOCAL_IPV6,
	QKD_A_SA_REMOTE_IPV4,
	QKD_A_SA_REMOTE_IPV6,
	QKD_A_SA_MODE,
	QKD_A_SA_ALG,
	QKD_A_SA_KEY_BITS,
	QKD_A_SA_DIR,
	QKD_A_SA_REQID,
	QKD_A_SA_IF_ID,
	QKD_A_SA_MARK,
	QKD_A_SA_MARK_MASK,
	QKD_A_SA_REKEY_SECONDS,
	QKD_A_SA_REKEY_BYTES,
	QKD_A_SA_REKEY_PACKETS,
	QKD_A_SA_FIRST_INDEX,
	QKD_A_SA_POLICY,
	QKD_A_SA_STATE,
	QKD_A_SA_REASON,
	QKD_A_SA_REKEYS,
	QKD_A_SA_REKEY_FAILURES,
	QKD_A_SA_OUT,
	QKD_A_SA_IN,
	QKD_A_SA_GEN,
	QKD_A_SA_REMOVE_PROTECTION,
	QKD_A_SA_FORCE,

	__QKD_A_SA_MAX,
	QKD_A_SA_MAX = (__QKD_A_SA_MAX - 1)
};

enum qkd_cmd {
	QKD_CMD_LINK_NEW = 1,
	QKD_CMD_LINK_DEL,
	QKD_CMD_LINK_GET,
	QKD_CMD_LINK_SET,
	QKD_CMD_STREAM_NEW,
	QKD_CMD_STREAM_DEL,
	QKD_CMD_STREAM_GET,
	QKD_CMD_STREAM_SET,
	QKD_CMD_KEY_ADD,
	QKD_CMD_KEY_FLUSH,
	QKD_CMD_STATUS_GET,
	QKD_CMD_LINK_STATE_NTF,
	QKD_CMD_STREAM_LOW_NTF,
	QKD_CMD_STREAM_EMPTY_NTF,
	QKD_CMD_KEYS_ADDED_NTF,
	QKD_CMD_LINK_DEL_NTF,
	QKD_CMD_STREAM_DEL_NTF,
	QKD_CMD_SA_NEW,
	QKD_CMD_SA_DEL,
	QKD_CMD_SA_GET,
	QKD_CMD_SA_REKEY_NTF,
	QKD_CMD_SA_STATE_NTF,
	QKD_CMD_SA_REKEY,

	__QKD_CMD_MAX,
	QKD_CMD_MAX = (__QKD_CMD_MAX - 1)
};

#define QKD_MCGRP_EVENTS	"events"

#endif /* _UAPI_LINUX_QKD_H */
