// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd's classical-channel messages: the byte buffers that their payloads
 * (and the state file) are written to and read from -- big-endian numbers,
 * packed bit arrays -- and send_msg() / recv_msg(), which split a message
 * into authenticated frames and put it back together, and send_abort().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/auth.h"
#include "qkd/frame.h"
#include "session.h"

/* ---- byte buffers ------------------------------------------------------- */

/*
 * Move the first @len bytes of *@p (*@cap long) to a new buffer of @nc
 * bytes. The old one is wiped before it is freed: what it held may be
 * secret (the state file's image holds authentication key bytes). false,
 * and *@p unchanged, when out of memory.
 */
static bool grow_wiped(uint8_t **p, size_t *cap, size_t len, size_t nc)
{
	uint8_t *np = malloc(nc);

	if (!np)
		return false;
	if (*p) {
		memcpy(np, *p, len);
		explicit_bzero(*p, *cap);
		free(*p);
	}
	*p = np;
	*cap = nc;
	return true;
}

static void wb_need(struct wbuf *w, size_t n)
{
	size_t nc;

	if (w->err || w->len + n <= w->cap)
		return;
	nc = w->cap ? w->cap : 256;
	while (nc < w->len + n)
		nc *= 2;
	if (!grow_wiped(&w->p, &w->cap, w->len, nc))
		w->err = true;
}

void wb_u(struct wbuf *w, uint64_t v, int bytes)
{
	wb_need(w, (size_t)bytes);
	if (w->err)
		return;
	for (int i = bytes - 1; i >= 0; i--)
		w->p[w->len++] = (uint8_t)(v >> (8 * i));
}

void wb_f64(struct wbuf *w, double d)
{
	uint64_t v;

	memcpy(&v, &d, 8);
	wb_u(w, v, 8);
}

void wb_bytes(struct wbuf *w, const void *b, size_t n)
{
	wb_need(w, n);
	if (w->err)
		return;
	memcpy(w->p + w->len, b, n);
	w->len += n;
}

/* Packed bits, little endian words. */
void wb_bits(struct wbuf *w, const uint64_t *a, size_t nbits)
{
	size_t nw = qkd_bits_words(nbits);

	wb_need(w, nw * 8);
	if (w->err)
		return;
	for (size_t i = 0; i < nw; i++)
		for (int b = 0; b < 8; b++)
			w->p[w->len++] = (uint8_t)(a[i] >> (8 * b));
}

void wb_free(struct wbuf *w)
{
	if (w->p) {
		explicit_bzero(w->p, w->cap);
		free(w->p);
	}
	memset(w, 0, sizeof(*w));
}

uint64_t rb_u(struct rbuf *r, int bytes)
{
	uint64_t v = 0;

	if (r->err || r->len - r->off < (size_t)bytes) {
		r->err = true;
		return 0;
	}
	for (int i = 0; i < bytes; i++)
		v = (v << 8) | r->p[r->off++];
	return v;
}

double rb_f64(struct rbuf *r)
{
	uint64_t v = rb_u(r, 8);
	double d;

	memcpy(&d, &v, 8);
	return d;
}

const uint8_t *rb_bytes(struct rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err || r->len - r->off < n) {
		r->err = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

/* Packed bits into a new array (free with qkd_bits_free(a, nbits, 0)). */
uint64_t *rb_bits(struct rbuf *r, size_t nbits)
{
	size_t nw = qkd_bits_words(nbits);
	const uint8_t *p = rb_bytes(r, nw * 8);
	uint64_t *a;

	if (!p)
		return NULL;
	a = qkd_bits_alloc(nbits, 0);
	if (!a) {
		r->err = true;
		return NULL;
	}
	for (size_t i = 0; i < nw; i++) {
		uint64_t v = 0;

		for (int b = 7; b >= 0; b--)
			v = (v << 8) | p[i * 8 + (size_t)b];
		a[i] = v;
	}
	qkd_bits_trim(a, nbits);
	return a;
}

bool rb_done(const struct rbuf *r)
{
	return !r->err && r->off == r->len;
}

/* ---- messages ----------------------------------------------------------- */

/*
 * Send one message: AUTH_OWN, a tag per frame; AUTH_DEFER, folded into the
 * round's transcript; AUTH_CLOSE, the closing tag of the transcript on the
 * last frame (earlier frames of a long message are folded in).
 */
static int send_msg_io(struct qkdd *q, uint8_t type, const uint8_t *p,
		       size_t len, int mode)
{
	do {
		size_t n = len > QKD_FRAME_MAX_PAYLOAD ? QKD_FRAME_MAX_PAYLOAD
						       : len;
		bool more = n < len;
		struct frame_hdr h = {
			.type = type,
			.flags = more ? QKD_FRAME_F_MORE : 0,
			.session_id = q->session_id,
			.round_id = q->round,
		};
		int r;

		if (mode == AUTH_DEFER || (mode == AUTH_CLOSE && more))
			h.flags |= QKD_FRAME_F_DEFERRED;
		else if (mode == AUTH_CLOSE)
			h.flags |= QKD_FRAME_F_TRANSCRIPT;
		{
			/* frame_send_sealed(), the tag (or the transcript)
			 * charged to authentication */
			size_t wl;

			stage_switch(QS_AUTH);
			r = frame_seal(q->auth, &h, p, (uint32_t)n, q->sbuf,
				       QKD_FRAME_MAX_LEN, &wl);
			stage_switch(QS_IO);
			if (!r)
				r = frame_write_all(q->cfd, q->sbuf, wl);
		}
		if (r == QKD_AUTH_E_RESERVE) {
			qlog("cannot send %s: the authentication key reserve is exhausted (%zu bytes left); rounds must make more key than they use (raise --block-bits) -- install a fresh PSK (or use X.509) and restart",
			     frame_type_name(type), auth_reserve_level(q->auth));
			return -EPERM;
		}
		if (r) {
			qlog("cannot send %s: %s", frame_type_name(type),
			     frame_strerror(r));
			return r == QKD_AUTH_E_PERSIST ? -EPERM : -ECONNRESET;
		}
		p += n;
		len -= n;
	} while (len);
	return 0;
}

/* The CPU time of sending and receiving is I/O's (cpu.c). */
int send_msg(struct qkdd *q, uint8_t type, const uint8_t *p, size_t len,
	     int mode)
{
	enum qkdd_stage prev = stage_switch(QS_IO);
	int r = send_msg_io(q, type, p, len, mode);

	stage_switch(prev);
	return r;
}

void send_abort(struct qkdd *q, uint16_t reason, const char *text)
{
	uint8_t buf[QKD_ABORT_FIXED_LEN + QKD_ABORT_MAX_TEXT];
	char clean[QKD_ABORT_MAX_TEXT + 1];
	uint32_t len;
	size_t i;

	for (i = 0; text && text[i] && i < QKD_ABORT_MAX_TEXT; i++)
		clean[i] = text[i] >= 0x20 && text[i] <= 0x7e ? text[i] : '?';
	clean[i] = '\0';
	if (!frame_abort_encode(reason, clean, buf, sizeof(buf), &len))
		send_msg(q, QKD_MSG_ABORT, buf, len, AUTH_OWN);
}

/*
 * A frame header in q->rbuf with another version: the peer runs another
 * qkdd release -- or an attacker changed one byte, which nothing tells
 * apart before authentication. Not fatal (one forged frame would stop the
 * daemon): the alarm, and the connection retried with the back-off.
 */
int frame_version_mismatch(struct qkdd *q)
{
	char why[160];

	snprintf(why, sizeof(why),
		 "a frame of classical-channel version %u, this qkdd speaks %u: a forged frame, or another qkdd release at the peer (then run the same release at both ends)",
		 q->rbuf[4], QKD_FRAME_VERSION);
	auth_strike(q, why);
	return -ECONNRESET;
}

/*
 * Receive one message of a type in @want (bit mask of 1 << type) for the
 * current round; stale frames of earlier rounds and keepalives are
 * skipped. 0 (*type set, payload in q->msg), RX_ABORT, or -errno:
 * -EINTR stopped, -EPERM fatal, others: reconnect.
 */
static int recv_msg_io(struct qkdd *q, uint32_t want, uint8_t *type,
		       bool stoppable)
{
	uint8_t cur = 0;

	q->msg_len = 0;
	for (;;) {
		struct frame f;
		size_t len;
		int r = peer_wait(q->cfd, q->o->timeout_s, stoppable);

		if (r < 0)
			return r;
		if (r == 0) {
			qlog("no message from the peer for %u s", q->o->timeout_s);
			return -ETIMEDOUT;
		}
		/* frame_recv_open(), the tag check charged to
		 * authentication */
		r = frame_recv_checked(q->cfd, q->auth, q->rbuf,
				       QKD_FRAME_MAX_LEN, &len, &f);
		if (!r) {
			stage_switch(QS_AUTH);
			r = frame_open(q->auth, q->rbuf, len, &f);
			stage_switch(QS_IO);
		}
		if (r == QKD_FRAME_E_VERSION)
			return frame_version_mismatch(q);
		if (r) {
			if (r == QKD_FRAME_E_EOF)
				qlog("the peer closed the connection");
			else
				qlog("classical channel: %s%s",
				     frame_strerror(r),
				     r <= QKD_AUTH_E_INVAL ?
				     " (the round is discarded)" : "");
			/*
			 * A bad tag, and framing no qkdd peer sends (TCP does
			 * not corrupt it): an attack. The end of the stream,
			 * an I/O error or a timeout are not.
			 */
			if (r != QKD_FRAME_E_EOF && r != QKD_FRAME_E_IO &&
			    r != QKD_FRAME_E_TIMEOUT &&
			    r != QKD_FRAME_E_TRUNCATED &&
			    r != QKD_FRAME_E_NOSPACE &&
			    r != QKD_FRAME_E_INVAL &&
			    r != QKD_AUTH_E_RESERVE &&
			    r != QKD_AUTH_E_PERSIST &&
			    r != QKD_AUTH_E_NOMEM && r != QKD_AUTH_E_INVAL)
				auth_strike(q, frame_strerror(r));
			if (r == QKD_AUTH_E_PERSIST)
				return -EPERM;
			/*
			 * No halt: failures only slow the reconnections down
			 * (auth_strike), see protocol.md, "Active attacks".
			 */
			return -ECONNRESET;
		}
		if (f.hdr.session_id != q->session_id) {
			char why[80];

			snprintf(why, sizeof(why),
				 "frame of session %08x, expected %08x",
				 f.hdr.session_id, q->session_id);
			auth_strike(q, why);
			return -ECONNRESET;
		}
		if (f.hdr.type == QKD_MSG_KEEPALIVE)
			continue;
		if (f.hdr.round_id < q->round) {
			qdebug("skipping %s of old round %u",
			       frame_type_name(f.hdr.type), f.hdr.round_id);
			continue;
		}
		if (f.hdr.round_id > q->round) {
			qlog("%s for round %u ahead of ours",
			     frame_type_name(f.hdr.type), f.hdr.round_id);
			return -ECONNRESET;
		}
		if (f.hdr.type == QKD_MSG_ABORT) {
			uint16_t reason;
			char text[QKD_ABORT_MAX_TEXT + 1];

			if (frame_abort_decode(f.payload, f.hdr.payload_len,
					       &reason, text, sizeof(text)))
				snprintf(text, sizeof(text), "?");
			snprintf(q->peer_reason, sizeof(q->peer_reason),
				 "peer aborted the round: %s: %s",
				 frame_abort_reason_name(reason), text);
			return RX_ABORT;
		}
		if ((cur && f.hdr.type != cur) ||
		    !(want & (1u << f.hdr.type))) {
			qlog("unexpected %s message", frame_type_name(f.hdr.type));
			send_abort(q, QKD_ABORT_PROTOCOL, "unexpected message");
			return -EPROTO;
		}
		cur = f.hdr.type;
		/*
		 * Deferred frames are authenticated only at the close: until
		 * then anyone on the path can send them. Buffer no more than
		 * the largest message a round of our configuration has.
		 */
		if (q->msg_len + f.hdr.payload_len >
		    (q->msg_limit ? q->msg_limit : HANDSHAKE_MSG_MAX)) {
			qlog("%s of more than %zu bytes, more than a round of this configuration sends: refused",
			     frame_type_name(cur),
			     q->msg_limit ? q->msg_limit : HANDSHAKE_MSG_MAX);
			return -E2BIG;
		}
		if (q->msg_len + f.hdr.payload_len > q->msg_cap) {
			size_t nc = q->msg_cap ? q->msg_cap : 1 << 16;

			while (nc < q->msg_len + f.hdr.payload_len)
				nc *= 2;
			if (!grow_wiped(&q->msg, &q->msg_cap, q->msg_len, nc))
				return -ENOMEM;
		}
		/* an empty frame may come first: no buffer yet */
		if (f.hdr.payload_len)
			memcpy(q->msg + q->msg_len, f.payload,
			       f.hdr.payload_len);
		q->msg_len += f.hdr.payload_len;
		q->rx_flags = f.hdr.flags;
		if (!(f.hdr.flags & QKD_FRAME_F_MORE)) {
			*type = cur;
			return 0;
		}
	}
}

int recv_msg(struct qkdd *q, uint32_t want, uint8_t *type, bool stoppable)
{
	enum qkdd_stage prev = stage_switch(QS_IO);
	int r = recv_msg_io(q, want, type, stoppable);

	stage_switch(prev);
	return r;
}
