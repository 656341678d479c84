// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: classical-channel message framing.
 *
 * Every message on the classical channel between two qkdd daemons is one
 * frame:
 *
 *   offset size field
 *        0    4 magic        "QKDC" (0x514b4443), big endian
 *        4    1 version      QKD_FRAME_VERSION
 *        5    1 type         enum qkd_msg_type
 *        6    2 flags        QKD_FRAME_F_*; unknown bits are rejected
 *        8    4 session_id   link session chosen at hello
 *       12    4 round_id     BB84 round this message belongs to
 *       16    8 seq          per-direction sequence number of the
 *                            connection (session), from 0
 *       24    4 payload_len  bytes of payload, <= QKD_FRAME_MAX_PAYLOAD
 *       28    4 reserved     must be zero
 *       32    n payload
 *     32+n   16 tag          see below
 *
 * All integers are big endian. Version 2 authenticates a frame in one of
 * three ways, told by its flags:
 *
 *  - no flag: the tag is the frame's own Wegman-Carter tag over bytes
 *    [0, 32+n) (one 16-byte pad);
 *  - QKD_FRAME_F_DEFERRED: the tag field is zero; the frame (bytes
 *    [0, 32+n)) is folded into the transcript of the open exchange, which a
 *    closing frame authenticates later (no pad);
 *  - QKD_FRAME_F_TRANSCRIPT (a closing frame): the tag covers the whole
 *    transcript of the exchange, both directions, and this frame.
 *
 * Each message type allows only some of them (frame_parse_header); a
 * version-1 peer is refused with QKD_FRAME_E_VERSION. The header and the
 * payload of every frame are authenticated either way. See
 * Documentation/protocol.md, "Authentication".
 */
#ifndef QKD_FRAME_H
#define QKD_FRAME_H

#include <stddef.h>
#include <stdint.h>

struct auth_ctx;

#define QKD_FRAME_MAGIC		0x514b4443u	/* "QKDC" */
#define QKD_FRAME_VERSION	2
#define QKD_FRAME_HDR_LEN	32
#define QKD_FRAME_TAG_LEN	16
/* Bounded maximum message size: larger data is sent as several frames. */
#define QKD_FRAME_MAX_PAYLOAD	(1u << 20)
#define QKD_FRAME_OVERHEAD	(QKD_FRAME_HDR_LEN + QKD_FRAME_TAG_LEN)
#define QKD_FRAME_MAX_LEN	(QKD_FRAME_OVERHEAD + QKD_FRAME_MAX_PAYLOAD)

/* More frames of the same logical message follow (data-carrying types). */
#define QKD_FRAME_F_MORE	0x0001u
/* Authenticated later by the transcript of the exchange (no own tag). */
#define QKD_FRAME_F_DEFERRED	0x0002u
/* Closing frame: the tag covers the exchange's transcript and the frame. */
#define QKD_FRAME_F_TRANSCRIPT	0x0004u
#define QKD_FRAME_F_ALL		(QKD_FRAME_F_MORE | QKD_FRAME_F_DEFERRED | \
				 QKD_FRAME_F_TRANSCRIPT)

enum qkd_msg_type {
	QKD_MSG_HELLO = 1,		/* bootstrap / session parameters */
	QKD_MSG_SIFT_BASES = 2,		/* basis announcements for sifting */
	QKD_MSG_EST_SAMPLE = 3,		/* disclosed bits for QBER estimation */
	QKD_MSG_CASCADE_REQ = 4,	/* Cascade parity requests */
	QKD_MSG_CASCADE_ANS = 5,	/* Cascade parity answers */
	QKD_MSG_VERIFY_HASH = 6,	/* error-verification hash */
	QKD_MSG_PA_SEED = 7,		/* privacy-amplification seed */
	QKD_MSG_KEY_CONFIRM = 8,	/* key confirmation */
	QKD_MSG_KEY_COMMIT = 9,		/* commit the block to the store */
	QKD_MSG_ABORT = 10,		/* abort the round, with reason */
	QKD_MSG_KEEPALIVE = 11,		/* liveness, empty payload */
	QKD_MSG_SYNC = 12,		/* reserve positions at connection */
	QKD_MSG_KME_IDS = 13,		/* etsi014: the vendor key_IDs */
	QKD_MSG_KME_CONFIRM = 14,	/* etsi014: key confirmation */
	QKD_MSG_ROOM_QUERY = 15,	/* between rounds: "say when you have
					 * room for N keys" (Alice) */
	QKD_MSG_ROOM = 16,		/* the answer: room for N keys (Bob) */
	QKD_MSG_LDPC_MORE = 17,		/* LDPC: frames Bob did not decode */
	QKD_MSG_LDPC_REVEAL = 18,	/* LDPC: their next punctured bits */
	QKD_MSG_EC_DISCLOSE_REQ = 19,	/* frames still undecoded: send them */
	QKD_MSG_EC_DISCLOSE = 20,	/* those frames' bits (all leaked) */
	QKD_MSG_PA_SEED_PART = 21,	/* a part of the Toeplitz seed, sent
					 * before the round's closing tags */
	QKD_MSG__MAX = QKD_MSG_PA_SEED_PART,
};

/* Abort reason codes carried in a QKD_MSG_ABORT payload. */
enum qkd_abort_reason {
	QKD_ABORT_UNSPEC = 0,
	QKD_ABORT_AUTH_FAILED = 1,	/* a tag did not verify */
	QKD_ABORT_QBER_HIGH = 2,	/* QBER above the abort threshold */
	QKD_ABORT_VERIFY_FAILED = 3,	/* verification hashes differ */
	QKD_ABORT_RESERVE_LOW = 4,	/* authentication key reserve too low */
	QKD_ABORT_PROTOCOL = 5,		/* unexpected or malformed message */
	QKD_ABORT_TIMEOUT = 6,
	QKD_ABORT_SHUTDOWN = 7,		/* operator stop */
	QKD_ABORT_INTERNAL = 8,
	QKD_ABORT_KEY_TOO_SHORT = 9,	/* no secret key left after PA */
	QKD_ABORT__MAX = QKD_ABORT_KEY_TOO_SHORT,
};

/* ABORT payload: u16 reason, u16 reserved (0), then 0..N printable bytes. */
#define QKD_ABORT_FIXED_LEN	4
#define QKD_ABORT_MAX_TEXT	200

/*
 * Errors: negative values. Frame errors are -1..-99; authentication errors
 * (QKD_AUTH_E_*, see auth.h) are -100 and below and may be returned by the
 * authenticated helpers. frame_strerror() names both.
 */
enum qkd_frame_err {
	QKD_FRAME_OK = 0,
	QKD_FRAME_E_INVAL = -1,		/* bad argument from the caller */
	QKD_FRAME_E_SHORT = -2,		/* fewer bytes than the header says */
	QKD_FRAME_E_MAGIC = -3,
	QKD_FRAME_E_VERSION = -4,
	QKD_FRAME_E_TYPE = -5,
	QKD_FRAME_E_FLAGS = -6,
	QKD_FRAME_E_RESERVED = -7,	/* reserved header field not zero */
	QKD_FRAME_E_TOO_BIG = -8,	/* above the maximum / buffer size */
	QKD_FRAME_E_TYPE_LEN = -9,	/* payload length invalid for type */
	QKD_FRAME_E_TRAILING = -10,	/* bytes after the tag */
	QKD_FRAME_E_NOSPACE = -11,	/* output buffer too small */
	QKD_FRAME_E_EOF = -12,		/* peer closed before a frame */
	QKD_FRAME_E_TRUNCATED = -13,	/* peer closed in the middle */
	QKD_FRAME_E_IO = -14,		/* read/write failed, see errno */
	QKD_FRAME_E_TIMEOUT = -15,	/* socket timeout (EAGAIN) */
	QKD_FRAME_E_PAYLOAD = -16,	/* malformed type-specific payload */
};

struct frame_hdr {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t session_id;
	uint32_t round_id;
	uint64_t seq;
	uint32_t payload_len;
};

/* A parsed frame; payload and tag point into the parsed buffer. */
struct frame {
	struct frame_hdr hdr;
	const uint8_t *payload;
	const uint8_t *tag;
};

const char *frame_strerror(int err);
const char *frame_type_name(unsigned int type);
const char *frame_abort_reason_name(unsigned int reason);

/* Bytes on the wire for a payload of payload_len bytes. */
static inline size_t frame_wire_len(uint32_t payload_len)
{
	return (size_t)QKD_FRAME_OVERHEAD + payload_len;
}

/*
 * Parse and check a 32-byte header (magic, version, type, flags, reserved,
 * payload length against the maximum and against the type).
 */
int frame_parse_header(const uint8_t *buf, size_t len, struct frame_hdr *hdr);

/*
 * Parse exactly one frame that occupies all of buf[0, len): too few bytes is
 * QKD_FRAME_E_SHORT, more is QKD_FRAME_E_TRAILING. Does not check the tag.
 */
int frame_parse(const uint8_t *buf, size_t len, struct frame *f);

/* Write the 32-byte header (hdr->payload_len is used as is). */
int frame_write_header(const struct frame_hdr *hdr, uint8_t *out, size_t cap);

/*
 * Serialize header, payload and a given tag into out. hdr->payload_len must
 * equal payload_len. *outlen gets the wire length.
 */
int frame_serialize(const struct frame_hdr *hdr, const uint8_t *payload,
		    const uint8_t tag[QKD_FRAME_TAG_LEN], uint8_t *out,
		    size_t cap, size_t *outlen);

/*
 * Authenticated framing. frame_seal() fills hdr->version, hdr->seq (the
 * next send sequence number of the context) and hdr->payload_len, writes the
 * frame into out and appends the tag: per hdr->flags its own tag (16 bytes
 * of the send reserve), none (DEFERRED: folded into the transcript of the
 * exchange hdr->round_id, see auth_transcript_begin) or the closing tag of
 * the exchange (TRANSCRIPT). frame_open() parses strictly, then checks the
 * sequence number and the tag (or folds a deferred frame into the
 * transcript, or checks a closing tag against it); any error means the round
 * must be aborted and its key discarded (QKD_AUTH_E_TAG,
 * QKD_AUTH_E_TRANSCRIPT and QKD_AUTH_E_SEQ are counted as authentication
 * failures, malformed frames too). A deferred or closing frame of an older
 * exchange is accepted without being folded in (its round is gone; the
 * caller skips it by its round_id).
 */
int frame_seal(struct auth_ctx *a, struct frame_hdr *hdr,
	       const uint8_t *payload, uint32_t payload_len, uint8_t *out,
	       size_t cap, size_t *outlen);
int frame_open(struct auth_ctx *a, const uint8_t *buf, size_t len,
	       struct frame *f);

/* ABORT payload helpers; text may be NULL. */
int frame_abort_encode(uint16_t reason, const char *text, uint8_t *out,
		       size_t cap, uint32_t *outlen);
int frame_abort_decode(const uint8_t *payload, uint32_t len,
		       uint16_t *reason, char *text, size_t textcap);

/*
 * Stream helpers. frame_write_all()/frame_read_all() loop over short
 * writes/reads and EINTR; send uses MSG_NOSIGNAL on sockets (plain write
 * on other fds). frame_read_all() returns QKD_FRAME_E_EOF if the stream
 * ended before the first byte and QKD_FRAME_E_TRUNCATED after it.
 *
 * frame_recv() reads one whole frame into buf (capacity cap): it reads
 * and checks the header before reading the rest, so an oversized or
 * malformed frame is refused before its payload is read. After any error
 * the stream is out of step and must be closed.
 */
int frame_write_all(int fd, const void *buf, size_t len);
int frame_read_all(int fd, void *buf, size_t len);
int frame_recv(int fd, uint8_t *buf, size_t cap, size_t *len,
	       struct frame *f);

/* Seal and send one frame; buf is scratch space of at least cap bytes. */
int frame_send_sealed(int fd, struct auth_ctx *a, struct frame_hdr *hdr,
		      const uint8_t *payload, uint32_t payload_len,
		      uint8_t *buf, size_t cap);
/*
 * Receive and open one frame into buf: frame_recv_checked() (refused when
 * the context is halted; a malformed frame counted as an authentication
 * failure), then frame_open(). qkdd calls the two halves itself, to charge
 * their CPU time to I/O and to authentication.
 */
int frame_recv_checked(int fd, struct auth_ctx *a, uint8_t *buf, size_t cap,
		       size_t *len, struct frame *f);
int frame_recv_open(int fd, struct auth_ctx *a, uint8_t *buf, size_t cap,
		    size_t *len, struct frame *f);

#endif /* QKD_FRAME_H */
