/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd: the ETSI GS QKD 004 (v2.1.1) application interface on /dev/qkd.
 *
 * A 004 key stream is a stream of the kernel store: its Key_stream_ID is
 * the store's stream ID, and the index a key is delivered at is the
 * store's index of that key, the same at both ends of the link. The
 * streams are created by the administrator (qkdctl stream add, at both
 * sites with the same ID); qkd_open_connect() attaches to one, it never
 * creates one. Source and destination are URIs
 *
 *	qkd://HOST[/KSID]
 *
 * (HOST names the application's or the peer's node, KSID a stream ID in
 * the 8-4-4-4-12 form). The stream is the one @key_stream_id names, or,
 * when that is all-zero, the one the destination URI names (and
 * @key_stream_id is set to it); when both name one, they must agree.
 * Documentation/etsi.md has the whole mapping and libqkd(3) the calls.
 *
 * Every call returns a status: 0..8 are the spec's (enum qkd_004_status);
 * QKD_STATUS_INVALID_ARGUMENT and QKD_STATUS_DEVICE_ERROR are this
 * library's (a malformed call, and a failure of /dev/qkd the spec has no
 * status for), with errno set to the cause. A call that fails takes no
 * key, except QKD_STATUS_DEVICE_ERROR with errno EFAULT for a key_buffer
 * the kernel could write only part of (the key counts as delivered,
 * Documentation/abi.md, "Faults").
 *
 * The calls are thread-safe. The index is 64-bit (the store's indices go
 * up to 2^56 - 1), where the spec's abstract interface has 32 bits.
 */
#ifndef QKD_ETSI004_H
#define QKD_ETSI004_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QKD_004_KSID_LEN		16
#define QKD_004_MIMETYPE_LEN		256
/* The only metadata format: a JSON object (see libqkd(3)). */
#define QKD_004_MIMETYPE_JSON		"application/json"
/* *index for qkd_get_key(): take the stream's next key (lowest stored). */
#define QKD_004_INDEX_NEXT		UINT64_MAX
/* Connections one process may hold open at once. */
#define QKD_004_MAX_CONNECTIONS		64

/* The status values of ETSI GS QKD 004 v2.1.1, and two of libqkd's. */
enum qkd_004_status {
	QKD_STATUS_SUCCESSFUL = 0,
	QKD_STATUS_PEER_NOT_CONNECTED = 1,		/* never returned */
	QKD_STATUS_GK_INSUFFICIENT_KEY_AVAILABLE = 2,
	QKD_STATUS_GK_PEER_NOT_CONNECTED = 3,		/* never returned */
	QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE = 4,
	QKD_STATUS_OC_KSID_ALREADY_IN_USE = 5,
	QKD_STATUS_TIMEOUT_ERROR = 6,
	QKD_STATUS_OC_QOS_NOT_SATISFIABLE = 7,
	QKD_STATUS_GK_METADATA_INSUFFICIENT_SIZE = 8,
	/* libqkd's own: outside the spec's range */
	QKD_STATUS_INVALID_ARGUMENT = 64,
	QKD_STATUS_DEVICE_ERROR = 65,
};

/*
 * QoS (004 clause 6.2): in to qkd_open_connect(), out with what the
 * connection has (a 0 filled in, or a counter-proposal with
 * QKD_STATUS_OC_QOS_NOT_SATISFIABLE).
 */
struct qkd_qos {
	uint32_t key_chunk_size;	/* bytes a qkd_get_key() writes: the
					 * stream's key size (0: fill in) */
	uint32_t max_bps;		/* not enforced; 0 or >= min_bps */
	uint32_t min_bps;		/* not guaranteed (the store has no rate) */
	uint32_t jitter;		/* not guaranteed, kept as given */
	uint32_t priority;		/* kept as given */
	uint32_t timeout;		/* ms qkd_get_key() waits for a key;
					 * 0: it does not wait */
	uint32_t ttl;			/* s the connection lives; 0: until
					 * qkd_close() */
	char metadata_mimetype[QKD_004_MIMETYPE_LEN];	/* "" or
					 * QKD_004_MIMETYPE_JSON */
};

/*
 * Metadata of a key: in, the buffer and its size; out, the bytes written
 * (a NUL-terminated JSON object, the NUL counted), or with
 * QKD_STATUS_GK_METADATA_INSUFFICIENT_SIZE the size needed.
 */
struct qkd_metadata {
	uint32_t metadata_size;
	char *metadata_buffer;
};

uint32_t qkd_open_connect(const char *source, const char *destination,
			  struct qkd_qos *qos,
			  uint8_t key_stream_id[QKD_004_KSID_LEN]);
/*
 * *@index: in, QKD_004_INDEX_NEXT or the index wanted; out, the index of
 * the key written to @key_buffer (qos.key_chunk_size bytes). @metadata may
 * be NULL.
 */
uint32_t qkd_get_key(const uint8_t key_stream_id[QKD_004_KSID_LEN],
		     uint64_t *index, uint8_t *key_buffer,
		     struct qkd_metadata *metadata);
uint32_t qkd_close(const uint8_t key_stream_id[QKD_004_KSID_LEN]);

/* "SUCCESSFUL", "TIMEOUT_ERROR", ...; "UNKNOWN" for another value. */
const char *qkd_004_status_name(uint32_t status);

#ifdef __cplusplus
}
#endif

#endif /* QKD_ETSI004_H */
