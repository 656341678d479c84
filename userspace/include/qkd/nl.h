/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd: a client of the generic netlink family "qkd" on libnl-genl-3.
 *
 * Two layers:
 *  - transport: open the family, send one request and receive its reply or
 *    dump through a callback, keep the kernel's errno and extended-ACK
 *    message of the last failure, join the "events" group;
 *  - objects: typed requests for links, streams, keys and node status, and
 *    decoders of replies and events into plain structs.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure. After a failure qkd_nl_extack() is the kernel's message, if it
 * sent one.
 */
#ifndef QKD_NL_H
#define QKD_NL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/qkd.h>

struct nl_msg;
struct nlattr;
struct qkd_nl;

/* ---- transport -------------------------------------------------------- */

/*
 * Opens a genl socket (extended ACKs on) and resolves the family. -ENOENT
 * when the family is not registered (module not loaded).
 */
int qkd_nl_open(struct qkd_nl **out);
void qkd_nl_close(struct qkd_nl *nl);

/*
 * The kernel's extended-ACK message of the last failed request, or NULL;
 * with the attribute it points at, if any: "integer out of range
 * (attribute stream-key-size)".
 */
const char *qkd_nl_extack(const struct qkd_nl *nl);
/* The errno of the last failed request (positive), or 0. */
int qkd_nl_errno(const struct qkd_nl *nl);
int qkd_nl_family(const struct qkd_nl *nl);
/*
 * Name of attribute @type of the attribute set of command @cmd
 * ("stream-key-size"), "?" if unknown.
 */
const char *qkd_attr_name(uint8_t cmd, unsigned int type);
/* The socket's file descriptor, for poll() in event loops. */
int qkd_nl_fd(const struct qkd_nl *nl);

/*
 * Called for every reply message: @cmd is the genl command of the message,
 * @tb its attributes indexed by the QKD_A_<SET>_* of the command's
 * attribute set (link, stream, keys, status or sa; NULL where absent). Return 0 to go
 * on, a negative errno to stop the request with that error.
 */
typedef int (*qkd_nl_cb)(uint8_t cmd, struct nlattr **tb, void *arg);

/* Entries of @tb: the largest attribute set's (sa) maximum + 1. */
#define QKD_NL_TB_MAX	QKD_A_SA_MAX

/* A new request message for @cmd; @flags: NLM_F_DUMP or 0. */
struct nl_msg *qkd_nl_msg(struct qkd_nl *nl, uint8_t cmd, int flags);

/*
 * Sends @msg (and frees it), then receives until the ACK, the error or the
 * end of the dump, calling @cb (may be NULL) for each reply message.
 *
 * A dump (@msg has NLM_F_DUMP) is held until it ends, and @cb is called
 * only for a dump that the kernel did not flag NLM_F_DUMP_INTR (its set of
 * objects changed between two parts, so it may have missed or repeated
 * some): an interrupted dump is sent again, at most QKD_NL_DUMP_TRIES
 * times in all, and when every one was interrupted the request fails with
 * EAGAIN (qkd_nl_extack() says why) and @cb was never called.
 */
#define QKD_NL_DUMP_TRIES	4

int qkd_nl_request(struct qkd_nl *nl, struct nl_msg *msg, qkd_nl_cb cb,
		   void *arg);

/*
 * Events: join the "events" multicast group (needs CAP_NET_ADMIN), then
 * call qkd_nl_recv_events() whenever the fd is readable (it may block once
 * if nothing is pending): it calls @cb for each notification received.
 */
int qkd_nl_join_events(struct qkd_nl *nl);
int qkd_nl_recv_events(struct qkd_nl *nl, qkd_nl_cb cb, void *arg);

/* ---- objects ---------------------------------------------------------- */

/*
 * Bit QKD_A_<SET>_x of @have is set when attribute x of the object's set
 * was present (a struct qkd_event has the QKD_EV_* bits instead).
 */
#define QKD_HAVE(obj, attr)	(!!((obj)->have & (1ULL << (attr))))

/* A uint attribute's value (4 or 8 bytes). */
uint64_t qkd_nla_get_uint(const struct nlattr *a);

struct qkd_stats {
	uint64_t keys_added;
	uint64_t keys_delivered;
	uint64_t keys_flushed;
	uint64_t keys_stored;
	uint64_t bytes_stored;
};

struct qkd_link {
	uint64_t have;
	uint32_t id;
	char name[QKD_LINK_NAME_MAX];
	char peer[QKD_PEER_NAME_MAX];
	uint8_t role;		/* enum qkd_link_role */
	uint8_t state;		/* enum qkd_link_state */
	uint32_t streams;
	struct qkd_stats stats;
};

struct qkd_stream {
	uint64_t have;
	uint8_t id[QKD_STREAM_ID_LEN];
	uint32_t link_id;
	uint32_t key_size;
	uint32_t max_keys;
	uint32_t low_water;
	uint32_t stored_keys;
	uint64_t next_index;
	uint8_t consumer;	/* enum qkd_stream_consumer */
	struct qkd_stats stats;
};

struct qkd_status {
	uint64_t have;
	uint32_t abi_version;
	uint32_t links;
	uint32_t streams;
	uint64_t max_keys;
	uint64_t max_bytes;
	uint64_t features;	/* enum qkd_feature bits */
	struct qkd_stats stats;
};

/* The fields of a struct qkd_event, for QKD_HAVE(). */
enum {
	QKD_EV_LINK_ID,
	QKD_EV_LINK_NAME,
	QKD_EV_LINK_STATE,
	QKD_EV_STREAM_ID,
	QKD_EV_FIRST_INDEX,
	QKD_EV_COUNT,
	QKD_EV_STORED_KEYS,
	QKD_EV_LOW_WATER,
};

/* A notification: whichever attributes it carried (see Documentation). */
struct qkd_event {
	uint64_t have;
	uint8_t cmd;		/* QKD_CMD_*_NTF */
	uint32_t link_id;
	char link_name[QKD_LINK_NAME_MAX];
	uint8_t state;
	uint8_t stream_id[QKD_STREAM_ID_LEN];
	uint64_t first_index;
	uint32_t count;
	uint32_t stored_keys;
	uint32_t low_water;
};

/* A link named by id (name NULL) or by name. */
struct qkd_link_ref {
	uint32_t id;
	const char *name;
};

/* Decoders (for qkd_nl_cb callbacks); -EINVAL on a malformed message. */
int qkd_link_parse(struct nlattr **tb, struct qkd_link *out);
int qkd_stream_parse(struct nlattr **tb, struct qkd_stream *out);
int qkd_status_parse(struct nlattr **tb, struct qkd_status *out);
int qkd_event_parse(uint8_t cmd, struct nlattr **tb, struct qkd_event *out);

/* Names of enum values ("initiator", "up", "keys-added", ...); "?" if unknown. */
const char *qkd_role_name(uint8_t role);
const char *qkd_state_name(uint8_t state);
const char *qkd_event_name(uint8_t cmd);
/* Reverse of the two above; 0 if unknown. */
uint8_t qkd_role_parse(const char *s);
uint8_t qkd_state_parse(const char *s);

/* Links. @id 0: the kernel picks the lowest free id. @peer may be NULL. */
int qkd_link_add(struct qkd_nl *nl, const char *name, uint8_t role,
		 uint32_t id, const char *peer, struct qkd_link *out);
int qkd_link_del(struct qkd_nl *nl, const struct qkd_link_ref *ref);
int qkd_link_set_state(struct qkd_nl *nl, const struct qkd_link_ref *ref,
		       uint8_t state);
int qkd_link_get(struct qkd_nl *nl, const struct qkd_link_ref *ref,
		 struct qkd_link *out);
/* Calls @cb for each link; returns the number of links or -errno. */
int qkd_link_dump(struct qkd_nl *nl,
		  int (*cb)(const struct qkd_link *l, void *arg), void *arg);

/* Streams. @max_keys / @low_water NULL: not sent (kernel default / keep). */
int qkd_stream_add(struct qkd_nl *nl, const uint8_t id[QKD_STREAM_ID_LEN],
		   const struct qkd_link_ref *link, uint32_t key_size,
		   const uint32_t *max_keys, const uint32_t *low_water,
		   struct qkd_stream *out);
int qkd_stream_set(struct qkd_nl *nl, const uint8_t id[QKD_STREAM_ID_LEN],
		   const uint32_t *max_keys, const uint32_t *low_water,
		   struct qkd_stream *out);
int qkd_stream_del(struct qkd_nl *nl, const uint8_t id[QKD_STREAM_ID_LEN]);
int qkd_stream_get(struct qkd_nl *nl, const uint8_t id[QKD_STREAM_ID_LEN],
		   struct qkd_stream *out);
/* @link NULL: all streams. Returns the number of streams or -errno. */
int qkd_stream_dump(struct qkd_nl *nl, const struct qkd_link_ref *link,
		    int (*cb)(const struct qkd_stream *s, void *arg),
		    void *arg);

/*
 * Keys: pushes @len bytes (a multiple of @key_size) as keys at indices
 * @first_index, @first_index + 1, ..., split into KEY_ADD messages of at
 * most QKD_KEY_BATCH_MAX_BYTES. Batches are all-or-nothing each; *@pushed
 * (may be NULL) is set to the number of keys the kernel accepted, also on
 * failure.
 */
int qkd_key_add(struct qkd_nl *nl, const uint8_t stream[QKD_STREAM_ID_LEN],
		uint64_t first_index, const uint8_t *data, size_t len,
		uint32_t key_size, uint64_t *pushed);
int qkd_key_flush(struct qkd_nl *nl, const uint8_t stream[QKD_STREAM_ID_LEN]);

int qkd_status_get(struct qkd_nl *nl, struct qkd_status *out);

#endif /* QKD_NL_H */
