// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: classical-channel message framing (see qkd/frame.h for the layout).
 *
 * The parser trusts nothing: every length is checked against the bytes at
 * hand, against QKD_FRAME_MAX_PAYLOAD and against the bounds of the message
 * type, and unknown magic, versions, types, flags and non-zero reserved
 * fields are rejected with their own error code.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/frame.h"

/* How a type may be authenticated (besides its own tag, always allowed). */
#define DEF_NO		0	/* never deferred */
#define DEF_YES		1	/* may be deferred */
#define DEF_MORE	2	/* only its non-final (MORE) frames */

struct type_rule {
	const char *name;
	uint32_t min_len;
	uint32_t max_len;
	bool more_ok;		/* may carry QKD_FRAME_F_MORE */
	uint8_t deferred;	/* DEF_*: may carry QKD_FRAME_F_DEFERRED */
	bool closing_ok;	/* may carry QKD_FRAME_F_TRANSCRIPT */
};

/*
 * The interactive bulk (sifting, estimation, Cascade, the position sync) is
 * deferred; messages that commit to something keep their own tag (abort,
 * key commit) or close an exchange with the transcript tag (hello, verify
 * hash, PA seed: whose earlier frames of a long seed are folded in).
 */
#define ANY QKD_FRAME_MAX_PAYLOAD
static const struct type_rule rules[QKD_MSG__MAX + 1] = {
	[QKD_MSG_HELLO] = { "hello", 0, 4096, false, DEF_NO, true },
	[QKD_MSG_SIFT_BASES] = { "sift-bases", 1, ANY, true, DEF_YES, false },
	[QKD_MSG_EST_SAMPLE] = { "estimation-sample", 1, ANY, true, DEF_YES,
				 false },
	[QKD_MSG_CASCADE_REQ] = { "cascade-parity-request", 1, ANY, true,
				  DEF_YES, false },
	[QKD_MSG_CASCADE_ANS] = { "cascade-parity-answer", 1, ANY, true,
				  DEF_YES, false },
	[QKD_MSG_VERIFY_HASH] = { "verify-hash", 1, 1024, false, DEF_NO,
				  true },
	[QKD_MSG_PA_SEED] = { "pa-seed", 1, ANY, true, DEF_MORE, true },
	[QKD_MSG_KEY_CONFIRM] = { "key-confirm", 0, 1024, false, DEF_NO,
				  false },
	[QKD_MSG_KEY_COMMIT] = { "key-commit", 0, 1024, false, DEF_NO, false },
	[QKD_MSG_ABORT] = { "abort", QKD_ABORT_FIXED_LEN,
			    QKD_ABORT_FIXED_LEN + QKD_ABORT_MAX_TEXT, false,
			    DEF_NO, false },
	[QKD_MSG_KEEPALIVE] = { "keepalive", 0, 0, false, DEF_NO, false },
	[QKD_MSG_SYNC] = { "sync", 0, 1024, false, DEF_YES, false },
	/* --key-source etsi014: Alice's key_IDs and Bob's confirmation each
	 * close the round's exchange (protocol.md, "etsi014 rounds") */
	[QKD_MSG_KME_IDS] = { "kme-key-ids", 1, 96 * 1024, false, DEF_NO,
			      true },
	[QKD_MSG_KME_CONFIRM] = { "kme-confirm", 1, 1024, false, DEF_NO,
				  true },
	/* between rounds, each with its own tag (pause.c) */
	[QKD_MSG_ROOM_QUERY] = { "room-query", 8, 8, false, DEF_NO, false },
	[QKD_MSG_ROOM] = { "room", 8, 8, false, DEF_NO, false },
	/* LDPC reconciliation (round_ldpc.c), deferred like Cascade's */
	[QKD_MSG_LDPC_MORE] = { "ldpc-more", 1, ANY, true, DEF_YES, false },
	[QKD_MSG_LDPC_REVEAL] = { "ldpc-reveal", 1, ANY, true, DEF_YES,
				  false },
	[QKD_MSG_EC_DISCLOSE_REQ] = { "ec-disclose-request", 1, ANY, true,
				      DEF_YES, false },
	[QKD_MSG_EC_DISCLOSE] = { "ec-disclose", 1, ANY, true, DEF_YES,
				  false },
	/* the PA seed in parts, one frame each, deferred: a seed longer
	 * than a frame cannot ride in the closing PA_SEED (round.c) */
	[QKD_MSG_PA_SEED_PART] = { "pa-seed-part", 28, ANY, false, DEF_YES,
				   false },
};
#undef ANY

static const char *const abort_names[QKD_ABORT__MAX + 1] = {
	[QKD_ABORT_UNSPEC] = "unspecified",
	[QKD_ABORT_AUTH_FAILED] = "authentication failed",
	[QKD_ABORT_QBER_HIGH] = "QBER above threshold",
	[QKD_ABORT_VERIFY_FAILED] = "verification failed",
	[QKD_ABORT_RESERVE_LOW] = "authentication reserve low",
	[QKD_ABORT_PROTOCOL] = "protocol error",
	[QKD_ABORT_TIMEOUT] = "timeout",
	[QKD_ABORT_SHUTDOWN] = "shutdown",
	[QKD_ABORT_INTERNAL] = "internal error",
	[QKD_ABORT_KEY_TOO_SHORT] = "no secret key left",
};

const char *frame_strerror(int err)
{
	if (err <= QKD_AUTH_E_INVAL)
		return auth_strerror(err);
	switch (err) {
	case QKD_FRAME_OK: return "success";
	case QKD_FRAME_E_INVAL: return "invalid argument";
	case QKD_FRAME_E_SHORT: return "frame shorter than its header says";
	case QKD_FRAME_E_MAGIC: return "bad frame magic";
	case QKD_FRAME_E_VERSION: return "unsupported frame version";
	case QKD_FRAME_E_TYPE: return "unknown message type";
	case QKD_FRAME_E_FLAGS: return "unknown or misplaced frame flags";
	case QKD_FRAME_E_RESERVED: return "reserved header field not zero";
	case QKD_FRAME_E_TOO_BIG: return "frame above the maximum size";
	case QKD_FRAME_E_TYPE_LEN: return "payload length invalid for the message type";
	case QKD_FRAME_E_TRAILING: return "bytes after the frame tag";
	case QKD_FRAME_E_NOSPACE: return "output buffer too small";
	case QKD_FRAME_E_EOF: return "peer closed the connection";
	case QKD_FRAME_E_TRUNCATED: return "connection closed in the middle of a frame";
	case QKD_FRAME_E_IO: return "I/O error";
	case QKD_FRAME_E_TIMEOUT: return "timed out";
	case QKD_FRAME_E_PAYLOAD: return "malformed payload";
	default: return "unknown frame error";
	}
}

const char *frame_type_name(unsigned int type)
{
	if (type == 0 || type > QKD_MSG__MAX)
		return "unknown";
	return rules[type].name;
}

const char *frame_abort_reason_name(unsigned int reason)
{
	if (reason > QKD_ABORT__MAX)
		return "unknown";
	return abort_names[reason];
}

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t get64(const uint8_t *p)
{
	return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	put32(p + 4, (uint32_t)v);
}

static int check_hdr(const struct frame_hdr *h)
{
	const struct type_rule *r;

	if (h->version != QKD_FRAME_VERSION)
		return QKD_FRAME_E_VERSION;
	if (h->type == 0 || h->type > QKD_MSG__MAX)
		return QKD_FRAME_E_TYPE;
	r = &rules[h->type];
	if (h->flags & ~QKD_FRAME_F_ALL)
		return QKD_FRAME_E_FLAGS;
	if ((h->flags & QKD_FRAME_F_MORE) && !r->more_ok)
		return QKD_FRAME_E_FLAGS;
	if (h->flags & QKD_FRAME_F_DEFERRED) {
		if ((h->flags & QKD_FRAME_F_TRANSCRIPT) ||
		    r->deferred == DEF_NO ||
		    (r->deferred == DEF_MORE &&
		     !(h->flags & QKD_FRAME_F_MORE)))
			return QKD_FRAME_E_FLAGS;
	}
	if ((h->flags & QKD_FRAME_F_TRANSCRIPT) &&
	    (!r->closing_ok || (h->flags & QKD_FRAME_F_MORE)))
		return QKD_FRAME_E_FLAGS;
	if (h->payload_len > QKD_FRAME_MAX_PAYLOAD)
		return QKD_FRAME_E_TOO_BIG;
	if (h->payload_len < r->min_len || h->payload_len > r->max_len)
		return QKD_FRAME_E_TYPE_LEN;
	return QKD_FRAME_OK;
}

int frame_parse_header(const uint8_t *buf, size_t len, struct frame_hdr *hdr)
{
	struct frame_hdr h;
	int r;

	if (!buf || !hdr)
		return QKD_FRAME_E_INVAL;
	if (len < QKD_FRAME_HDR_LEN)
		return QKD_FRAME_E_SHORT;
	if (get32(buf) != QKD_FRAME_MAGIC)
		return QKD_FRAME_E_MAGIC;
	h.version = buf[4];
	h.type = buf[5];
	h.flags = get16(buf + 6);
	h.session_id = get32(buf + 8);
	h.round_id = get32(buf + 12);
	h.seq = get64(buf + 16);
	h.payload_len = get32(buf + 24);
	/* version first: a future version may change everything after it */
	if (h.version != QKD_FRAME_VERSION)
		return QKD_FRAME_E_VERSION;
	if (get32(buf + 28) != 0)
		return QKD_FRAME_E_RESERVED;
	r = check_hdr(&h);
	if (r)
		return r;
	*hdr = h;
	return QKD_FRAME_OK;
}

static bool printable(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] > 0x7e)
			return false;
	return true;
}

/* Type-specific payload checks, beyond the length bounds. */
static int check_payload(uint8_t type, const uint8_t *p, uint32_t len)
{
	if (type == QKD_MSG_ABORT) {
		if (len < QKD_ABORT_FIXED_LEN || get16(p) > QKD_ABORT__MAX ||
		    get16(p + 2) != 0 ||
		    !printable(p + QKD_ABORT_FIXED_LEN,
			       len - QKD_ABORT_FIXED_LEN))
			return QKD_FRAME_E_PAYLOAD;
	}
	return QKD_FRAME_OK;
}

static bool zero_tag(const uint8_t *t)
{
	uint8_t acc = 0;

	for (int i = 0; i < QKD_FRAME_TAG_LEN; i++)
		acc |= t[i];
	return acc == 0;
}

int frame_parse(const uint8_t *buf, size_t len, struct frame *f)
{
	struct frame_hdr h;
	size_t need;
	int r;

	if (!buf || !f)
		return QKD_FRAME_E_INVAL;
	r = frame_parse_header(buf, len, &h);
	if (r)
		return r;
	need = frame_wire_len(h.payload_len);
	if (len < need)
		return QKD_FRAME_E_SHORT;
	if (len > need)
		return QKD_FRAME_E_TRAILING;
	r = check_payload(h.type, buf + QKD_FRAME_HDR_LEN, h.payload_len);
	if (r)
		return r;
	/* a deferred frame has no tag: its tag field must be zero */
	if ((h.flags & QKD_FRAME_F_DEFERRED) &&
	    !zero_tag(buf + QKD_FRAME_HDR_LEN + h.payload_len))
		return QKD_FRAME_E_PAYLOAD;
	f->hdr = h;
	f->payload = buf + QKD_FRAME_HDR_LEN;
	f->tag = buf + QKD_FRAME_HDR_LEN + h.payload_len;
	return QKD_FRAME_OK;
}

int frame_write_header(const struct frame_hdr *hdr, uint8_t *out, size_t cap)
{
	int r;

	if (!hdr || !out)
		return QKD_FRAME_E_INVAL;
	if (cap < QKD_FRAME_HDR_LEN)
		return QKD_FRAME_E_NOSPACE;
	r = check_hdr(hdr);
	if (r)
		return r;
	put32(out, QKD_FRAME_MAGIC);
	out[4] = hdr->version;
	out[5] = hdr->type;
	put16(out + 6, hdr->flags);
	put32(out + 8, hdr->session_id);
	put32(out + 12, hdr->round_id);
	put64(out + 16, hdr->seq);
	put32(out + 24, hdr->payload_len);
	put32(out + 28, 0);
	return QKD_FRAME_OK;
}

/* Header and payload into out; returns the authenticated length. */
static int build(const struct frame_hdr *hdr, const uint8_t *payload,
		 uint8_t *out, size_t cap, size_t *authlen)
{
	int r;

	if (!hdr || !out || (!payload && hdr->payload_len))
		return QKD_FRAME_E_INVAL;
	r = check_hdr(hdr);
	if (r)
		return r;
	if (cap < frame_wire_len(hdr->payload_len))
		return QKD_FRAME_E_NOSPACE;
	r = check_payload(hdr->type, payload, hdr->payload_len);
	if (r)
		return r;
	r = frame_write_header(hdr, out, cap);
	if (r)
		return r;
	if (hdr->payload_len)
		memmove(out + QKD_FRAME_HDR_LEN, payload, hdr->payload_len);
	*authlen = QKD_FRAME_HDR_LEN + (size_t)hdr->payload_len;
	return QKD_FRAME_OK;
}

int frame_serialize(const struct frame_hdr *hdr, const uint8_t *payload,
		    const uint8_t tag[QKD_FRAME_TAG_LEN], uint8_t *out,
		    size_t cap, size_t *outlen)
{
	size_t n;
	int r;

	if (!tag || !outlen)
		return QKD_FRAME_E_INVAL;
	r = build(hdr, payload, out, cap, &n);
	if (r)
		return r;
	memcpy(out + n, tag, QKD_FRAME_TAG_LEN);
	*outlen = n + QKD_FRAME_TAG_LEN;
	return QKD_FRAME_OK;
}

int frame_seal(struct auth_ctx *a, struct frame_hdr *hdr,
	       const uint8_t *payload, uint32_t payload_len, uint8_t *out,
	       size_t cap, size_t *outlen)
{
	size_t n;
	int r;

	if (!a || !hdr || !outlen)
		return QKD_FRAME_E_INVAL;
	hdr->version = QKD_FRAME_VERSION;
	hdr->seq = auth_next_send_seq(a);
	hdr->payload_len = payload_len;
	r = build(hdr, payload, out, cap, &n);
	if (r)
		return r;
	if (hdr->flags & QKD_FRAME_F_DEFERRED) {
		memset(out + n, 0, QKD_FRAME_TAG_LEN);
		r = auth_transcript_absorb(a, true, hdr->seq, hdr->round_id,
					   out, n, NULL);
	} else if (hdr->flags & QKD_FRAME_F_TRANSCRIPT) {
		r = auth_transcript_seal(a, hdr->seq, hdr->round_id, out, n,
					 out + n);
	} else {
		r = auth_seal(a, hdr->seq, out, n, out + n);
	}
	if (r)
		return r;
	*outlen = n + QKD_FRAME_TAG_LEN;
	return QKD_FRAME_OK;
}

static bool is_format_err(int r)
{
	return r == QKD_FRAME_E_SHORT || r == QKD_FRAME_E_MAGIC ||
	       r == QKD_FRAME_E_VERSION || r == QKD_FRAME_E_TYPE ||
	       r == QKD_FRAME_E_FLAGS || r == QKD_FRAME_E_RESERVED ||
	       r == QKD_FRAME_E_TOO_BIG || r == QKD_FRAME_E_TYPE_LEN ||
	       r == QKD_FRAME_E_TRAILING || r == QKD_FRAME_E_PAYLOAD;
}

int frame_open(struct auth_ctx *a, const uint8_t *buf, size_t len,
	       struct frame *f)
{
	struct frame tmp;
	size_t n;
	int r;

	if (!a || !buf || !f)
		return QKD_FRAME_E_INVAL;
	if (auth_halted(a))
		return QKD_AUTH_E_HALTED;
	r = frame_parse(buf, len, &tmp);
	if (r) {
		/* malformed on an authenticated channel: count it */
		if (is_format_err(r))
			auth_note_failure(a);
		return r;
	}
	n = QKD_FRAME_HDR_LEN + (size_t)tmp.hdr.payload_len;
	if (tmp.hdr.flags & QKD_FRAME_F_DEFERRED)
		r = auth_transcript_absorb(a, false, tmp.hdr.seq,
					   tmp.hdr.round_id, buf, n, NULL);
	else if (tmp.hdr.flags & QKD_FRAME_F_TRANSCRIPT)
		r = auth_transcript_verify(a, tmp.hdr.seq, tmp.hdr.round_id,
					   buf, n, tmp.tag, NULL);
	else
		r = auth_verify(a, tmp.hdr.seq, buf, n, tmp.tag);
	if (r)
		return r;
	*f = tmp;
	return QKD_FRAME_OK;
}

int frame_abort_encode(uint16_t reason, const char *text, uint8_t *out,
		       size_t cap, uint32_t *outlen)
{
	size_t tlen = text ? strlen(text) : 0;

	if (!out || !outlen || reason > QKD_ABORT__MAX ||
	    tlen > QKD_ABORT_MAX_TEXT ||
	    (tlen && !printable((const uint8_t *)text, tlen)))
		return QKD_FRAME_E_INVAL;
	if (cap < QKD_ABORT_FIXED_LEN + tlen)
		return QKD_FRAME_E_NOSPACE;
	put16(out, reason);
	put16(out + 2, 0);
	if (tlen)
		memcpy(out + QKD_ABORT_FIXED_LEN, text, tlen);
	*outlen = (uint32_t)(QKD_ABORT_FIXED_LEN + tlen);
	return QKD_FRAME_OK;
}

int frame_abort_decode(const uint8_t *payload, uint32_t len,
		       uint16_t *reason, char *text, size_t textcap)
{
	size_t tlen;

	if (!payload || !reason)
		return QKD_FRAME_E_INVAL;
	if (len < QKD_ABORT_FIXED_LEN ||
	    len > QKD_ABORT_FIXED_LEN + QKD_ABORT_MAX_TEXT)
		return QKD_FRAME_E_TYPE_LEN;
	if (check_payload(QKD_MSG_ABORT, payload, len))
		return QKD_FRAME_E_PAYLOAD;
	*reason = get16(payload);
	if (text && textcap) {
		tlen = len - QKD_ABORT_FIXED_LEN;
		if (tlen > textcap - 1)
			tlen = textcap - 1;
		memcpy(text, payload + QKD_ABORT_FIXED_LEN, tlen);
		text[tlen] = '\0';
	}
	return QKD_FRAME_OK;
}

/* ---- stream I/O --------------------------------------------------------- */

int frame_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	bool sock = true;

	if (fd < 0 || (!buf && len))
		return QKD_FRAME_E_INVAL;
	while (len) {
		ssize_t w;

		if (sock) {
			w = send(fd, p, len, MSG_NOSIGNAL);
			if (w < 0 && errno == ENOTSOCK) {
				sock = false;
				continue;
			}
		} else {
			w = write(fd, p, len);
		}
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return QKD_FRAME_E_TIMEOUT;
			return QKD_FRAME_E_IO;
		}
		if (w == 0) {
			errno = EIO;
			return QKD_FRAME_E_IO;
		}
		p += w;
		len -= (size_t)w;
	}
	return QKD_FRAME_OK;
}

int frame_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	size_t off = 0;

	if (fd < 0 || (!buf && len))
		return QKD_FRAME_E_INVAL;
	while (off < len) {
		ssize_t r = read(fd, p + off, len - off);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return QKD_FRAME_E_TIMEOUT;
			return QKD_FRAME_E_IO;
		}
		if (r == 0)
			return off ? QKD_FRAME_E_TRUNCATED : QKD_FRAME_E_EOF;
		off += (size_t)r;
	}
	return QKD_FRAME_OK;
}

int frame_recv(int fd, uint8_t *buf, size_t cap, size_t *len,
	       struct frame *f)
{
	struct frame_hdr h;
	size_t need;
	int r;

	if (!buf || !len || !f || cap < QKD_FRAME_OVERHEAD)
		return QKD_FRAME_E_INVAL;
	*len = 0;
	r = frame_read_all(fd, buf, QKD_FRAME_HDR_LEN);
	if (r)
		return r;
	r = frame_parse_header(buf, QKD_FRAME_HDR_LEN, &h);
	if (r)
		return r;
	need = frame_wire_len(h.payload_len);
	if (need > cap)
		return QKD_FRAME_E_TOO_BIG;
	r = frame_read_all(fd, buf + QKD_FRAME_HDR_LEN,
			   need - QKD_FRAME_HDR_LEN);
	if (r == QKD_FRAME_E_EOF)
		r = QKD_FRAME_E_TRUNCATED;
	if (r)
		return r;
	r = frame_parse(buf, need, f);
	if (r)
		return r;
	*len = need;
	return QKD_FRAME_OK;
}

int frame_send_sealed(int fd, struct auth_ctx *a, struct frame_hdr *hdr,
		      const uint8_t *payload, uint32_t payload_len,
		      uint8_t *buf, size_t cap)
{
	size_t n;
	int r;

	r = frame_seal(a, hdr, payload, payload_len, buf, cap, &n);
	if (r)
		return r;
	return frame_write_all(fd, buf, n);
}

int frame_recv_checked(int fd, struct auth_ctx *a, uint8_t *buf, size_t cap,
		       size_t *len, struct frame *f)
{
	int r;

	if (!a)
		return QKD_FRAME_E_INVAL;
	if (auth_halted(a))
		return QKD_AUTH_E_HALTED;
	r = frame_recv(fd, buf, cap, len, f);
	if (r && is_format_err(r))
		auth_note_failure(a);
	return r;
}

int frame_recv_open(int fd, struct auth_ctx *a, uint8_t *buf, size_t cap,
		    size_t *len, struct frame *f)
{
	int r = frame_recv_checked(fd, a, buf, cap, len, f);

	return r ? r : frame_open(a, buf, *len, f);
}
