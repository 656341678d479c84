// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd protocol driver: HELLO and crash recovery on every connection, then
 * BB84 rounds, Alice and Bob each as a sequence of authenticated messages
 * (see "Daemon" in Documentation/protocol.md for the message sequence):
 *
 *   quantum   Alice -> fiber -> Bob: detection events of round r
 *   SIFT      B->A detected + Bob's bases;  A->B Alice's bases + classes
 *             of the detected pulses + the sample seed
 *   EST       B->A Bob's sample bits;  A->B Alice's sample bits + Cascade
 *             parameters. Both compute the same estimate; above the
 *             threshold both discard the round.
 *   CASCADE   B->A requests, A->B answers, until Bob is done
 *   VERIFY    B->A hash keys + tag of Bob's corrected key
 *   PA_SEED   A->B secret length, auth bytes withheld, Toeplitz seed
 *   COMMIT    A->B (first index, count, block id); Bob pushes, echoes it
 *             (ACK); Alice pushes. Both then add the withheld bytes to the
 *             authentication reserve.
 *
 * Authentication (frame_send_sealed / frame_recv_open, large messages split
 * with QKD_FRAME_F_MORE): SIFT, EST and CASCADE are deferred -- folded into
 * the round's transcript, no pad each -- and VERIFY (Bob) and PA_SEED
 * (Alice) close the exchange with a Wegman-Carter tag over the whole
 * transcript; KEY_COMMIT and ABORT carry their own tags. Nothing derived
 * from a round is pushed or added to the reserve before both closing tags
 * verified. Every connection starts with SYNC (reserve positions, deferred)
 * and HELLO (closing), so the two ends re-align their reserves after a lost
 * connection or a restart from the state file (--state-dir).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/cascade.h"
#include "qkd/estimate.h"
#include "qkd/frame.h"
#include "qkd/keyrate.h"
#include "qkd/privacy_amp.h"
#include "qkd/sifting.h"
#include "qkd/verify.h"
#include "qkdd.h"

#define HELLO_MAGIC	0x514b4448u	/* "QKDH" */
#define HELLO_VERSION	3	/* 3: next index and low index */
#define SYNC_MAGIC	0x514b4453u	/* "QKDS" */
#define SYNC_VERSION	1
/* Largest re-alignment of a pool at a connection (chunks of 16 bytes). */
#define SYNC_MAX_SKIP	4096
/* Tags of a round after Alice fixes its withheld bytes: PA_SEED, COMMIT,
 * and the echo of COMMIT. */
#define TAGS_AFTER_PA	3
#define STATE_MAGIC	"QKDDSTAT"
#define STATE_VERSION	1
#define STATE_MAX	(QKD_AUTH_RESERVE_CAP_DEFAULT + (1u << 20))

/* how send_msg authenticates */
enum { AUTH_OWN, AUTH_DEFER, AUTH_CLOSE };
#define MIN_SIFTED	256
#define MIN_TAGS	64
#define FRAME_MAX	65536		/* bits per Cascade frame */
#define RETIRE_AFTER	8192		/* QKD bytes added before the PSK /
					 * TLS bootstrap reserve is dropped */

/* recv results besides 0 and negative errnos */
#define RX_ABORT	1		/* the peer aborted the round */

struct proto {
	uint8_t source, nint;
	double mu[3], p[3];
	double qber_abort, sample_frac, eps_sec, eps_cor;
	uint32_t block_bits, tag_bits, auth_target, key_size;
};

struct pending {
	bool valid;
	bool has_keys;			/* keys in memory (not after a restart) */
	bool auth_valid;		/* auth bytes of the current context */
	uint64_t first, id, charge_to;
	uint32_t count, auth_len;
	uint8_t *data;			/* auth bytes, then the keys */
	size_t len;
};

struct qkdd {
	const struct qkdd_opts *o;
	struct store *st;
	struct fiber *fib;
	struct qkd_rng rng;
	struct totals tot;
	struct proto pp;
	uint32_t round;
	uint64_t rounds_done;
	uint64_t next_index;
	uint64_t last_block_id;
	bool have_last;
	struct pending pend;
	double pulses_per_bit;
	size_t last_round_tags;		/* tags each way of the last round */
	uint64_t charged;		/* pad bytes (consumed + skipped)
					 * already paid back by rounds */
	bool persist;			/* --state-dir */
	/* the connection */
	int cfd, qfd;
	struct auth_ctx *auth;
	uint32_t session_id;
	uint8_t *sbuf, *rbuf;
	uint8_t *msg;
	size_t msg_len, msg_cap;
	uint16_t rx_flags;		/* flags of the last frame received */
	char peer_reason[300];
};

/* ---- byte buffers ------------------------------------------------------- */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool err;
};

static void wb_need(struct wbuf *w, size_t n)
{
	size_t nc;
	uint8_t *np;

	if (w->err || w->len + n <= w->cap)
		return;
	nc = w->cap ? w->cap : 256;
	while (nc < w->len + n)
		nc *= 2;
	np = malloc(nc);
	if (!np) {
		w->err = true;
		return;
	}
	if (w->p) {
		memcpy(np, w->p, w->len);
		explicit_bzero(w->p, w->cap);
		free(w->p);
	}
	w->p = np;
	w->cap = nc;
}

static void wb_u(struct wbuf *w, uint64_t v, int bytes)
{
	wb_need(w, (size_t)bytes);
	if (w->err)
		return;
	for (int i = bytes - 1; i >= 0; i--)
		w->p[w->len++] = (uint8_t)(v >> (8 * i));
}

static void wb_f64(struct wbuf *w, double d)
{
	uint64_t v;

	memcpy(&v, &d, 8);
	wb_u(w, v, 8);
}

static void wb_bytes(struct wbuf *w, const void *b, size_t n)
{
	wb_need(w, n);
	if (w->err)
		return;
	memcpy(w->p + w->len, b, n);
	w->len += n;
}

/* Packed bits, little endian words. */
static void wb_bits(struct wbuf *w, const uint64_t *a, size_t nbits)
{
	size_t nw = qkd_bits_words(nbits);

	wb_need(w, nw * 8);
	if (w->err)
		return;
	for (size_t i = 0; i < nw; i++)
		for (int b = 0; b < 8; b++)
			w->p[w->len++] = (uint8_t)(a[i] >> (8 * b));
}

static void wb_free(struct wbuf *w)
{
	if (w->p) {
		explicit_bzero(w->p, w->cap);
		free(w->p);
	}
	memset(w, 0, sizeof(*w));
}

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool err;
};

static uint64_t rb_u(struct rbuf *r, int bytes)
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

static double rb_f64(struct rbuf *r)
{
	uint64_t v = rb_u(r, 8);
	double d;

	memcpy(&d, &v, 8);
	return d;
}

static const uint8_t *rb_bytes(struct rbuf *r, size_t n)
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
static uint64_t *rb_bits(struct rbuf *r, size_t nbits)
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

static bool rb_done(const struct rbuf *r)
{
	return !r->err && r->off == r->len;
}

/* ---- messages ----------------------------------------------------------- */

/*
 * Send one message: AUTH_OWN, a tag per frame; AUTH_DEFER, folded into the
 * round's transcript; AUTH_CLOSE, the closing tag of the transcript on the
 * last frame (earlier frames of a long message are folded in).
 */
static int send_msg(struct qkdd *q, uint8_t type, const uint8_t *p,
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
		r = frame_send_sealed(q->cfd, q->auth, &h, p, (uint32_t)n,
				      q->sbuf, QKD_FRAME_MAX_LEN);
		if (r == QKD_AUTH_E_RESERVE) {
			qlog("cannot send %s: the authentication key reserve is exhausted (%zu bytes left); rounds must make more key than they use (raise --block-bits) -- install a fresh PSK (or use X.509) and restart",
			     frame_type_name(type), auth_reserve_level(q->auth));
			return -EPERM;
		}
		if (r) {
			qlog("cannot send %s: %s", frame_type_name(type),
			     frame_strerror(r));
			return r == QKD_AUTH_E_HALTED ||
			       r == QKD_AUTH_E_PERSIST ? -EPERM : -ECONNRESET;
		}
		p += n;
		len -= n;
	} while (len);
	return 0;
}

static void send_abort(struct qkdd *q, uint16_t reason, const char *text)
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
 * Receive one message of a type in @want (bit mask of 1 << type) for the
 * current round; stale frames of earlier rounds and keepalives are
 * skipped. 0 (*type set, payload in q->msg), RX_ABORT, or -errno:
 * -EINTR stopped, -EPERM fatal, others: reconnect.
 */
static int recv_msg(struct qkdd *q, uint32_t want, uint8_t *type,
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
		r = frame_recv_open(q->cfd, q->auth, q->rbuf,
				    QKD_FRAME_MAX_LEN, &len, &f);
		if (r == QKD_FRAME_E_VERSION) {
			qlog("the peer speaks classical-channel frame version %u, this qkdd version %u: run the same qkdd release at both ends",
			     q->rbuf[4], QKD_FRAME_VERSION);
			return -EPERM;
		}
		if (r) {
			if (r == QKD_FRAME_E_EOF)
				qlog("the peer closed the connection");
			else
				qlog("classical channel: %s%s",
				     frame_strerror(r),
				     r <= QKD_AUTH_E_INVAL ?
				     " (the round is discarded)" : "");
			if (r == QKD_AUTH_E_TAG || r == QKD_AUTH_E_SEQ ||
			    r == QKD_AUTH_E_TRANSCRIPT ||
			    r == QKD_AUTH_E_TR_STATE)
				q->tot.auth_failures++;
			if (r == QKD_AUTH_E_PERSIST)
				return -EPERM;
			if (auth_halted(q->auth)) {
				qlog("authentication halted after repeated failures: stopping; investigate the link, then restart with a fresh PSK or X.509");
				return -EPERM;
			}
			return -ECONNRESET;
		}
		if (f.hdr.session_id != q->session_id) {
			qlog("frame of session %08x, expected %08x",
			     f.hdr.session_id, q->session_id);
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
		if (q->msg_len + f.hdr.payload_len > q->msg_cap) {
			size_t nc = q->msg_cap ? q->msg_cap : 1 << 16;
			uint8_t *np;

			while (nc < q->msg_len + f.hdr.payload_len)
				nc *= 2;
			if (nc > (size_t)1 << 30)
				return -E2BIG;
			np = malloc(nc);
			if (!np)
				return -ENOMEM;
			if (q->msg) {
				memcpy(np, q->msg, q->msg_len);
				explicit_bzero(q->msg, q->msg_cap);
				free(q->msg);
			}
			q->msg = np;
			q->msg_cap = nc;
		}
		memcpy(q->msg + q->msg_len, f.payload, f.hdr.payload_len);
		q->msg_len += f.hdr.payload_len;
		q->rx_flags = f.hdr.flags;
		if (!(f.hdr.flags & QKD_FRAME_F_MORE)) {
			*type = cur;
			return 0;
		}
	}
}

/* ---- setup -------------------------------------------------------------- */

static void proto_from_opts(struct proto *pp, const struct qkdd_opts *o,
			    uint32_t key_size)
{
	memset(pp, 0, sizeof(*pp));
	pp->source = (uint8_t)o->ch.source;
	pp->nint = (uint8_t)o->ch.n_intensities;
	for (int i = 0; i < 3; i++) {
		pp->mu[i] = o->ch.mu[i];
		pp->p[i] = o->ch.p_intensity[i];
	}
	pp->qber_abort = o->qber_abort;
	pp->sample_frac = o->sample_frac;
	pp->eps_sec = o->eps_sec;
	pp->eps_cor = o->eps_cor;
	pp->block_bits = o->block_bits;
	pp->tag_bits = o->tag_bits;
	pp->auth_target = o->auth_target;
	pp->key_size = key_size;
}

struct qkdd *qkdd_new(const struct qkdd_opts *o, struct store *st,
		      struct fiber *fib)
{
	struct qkdd *q = calloc(1, sizeof(*q));
	double pc = 0, ps;

	if (!q)
		return NULL;
	q->o = o;
	q->st = st;
	q->fib = fib;
	q->sbuf = malloc(QKD_FRAME_MAX_LEN);
	q->rbuf = malloc(QKD_FRAME_MAX_LEN);
	if (!q->sbuf || !q->rbuf)
		goto fail;
	if (o->have_seed)
		qkd_rng_seed(&q->rng, o->seed ^ (o->role == QKDD_BOB ?
						  0x626f62ull : 0));
	else if (qkd_rng_os(&q->rng))
		goto fail;
	proto_from_opts(&q->pp, o, store_key_size(st));
	for (unsigned int c = 0; c < o->ch.n_intensities; c++)
		pc += o->ch.p_intensity[c] * qkd_channel_click_prob(&o->ch, c);
	ps = o->ch.p_z_alice * o->ch.p_z_bob +
	     (1 - o->ch.p_z_alice) * (1 - o->ch.p_z_bob);
	q->pulses_per_bit = pc > 0 && ps > 0 ? 1.0 / (pc * ps) : 1e9;
	if (store_next_index(st, &q->next_index))
		goto fail;
	q->tot.next_index = q->next_index;
	return q;
fail:
	qkdd_free(q);
	return NULL;
}

static void pending_clear(struct pending *p)
{
	if (p->data) {
		explicit_bzero(p->data, p->len);
		free(p->data);
	}
	memset(p, 0, sizeof(*p));
}

void qkdd_free(struct qkdd *q)
{
	if (!q)
		return;
	pending_clear(&q->pend);
	free(q->sbuf);
	free(q->rbuf);
	if (q->msg) {
		explicit_bzero(q->msg, q->msg_cap);
		free(q->msg);
	}
	explicit_bzero(&q->rng, sizeof(q->rng));
	free(q);
}

bool qkdd_done(const struct qkdd *q)
{
	return q->o->rounds && q->rounds_done >= q->o->rounds;
}

static uint64_t fnv64(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static void update_reserve(struct qkdd *q)
{
	q->tot.auth_reserve = auth_reserve_level(q->auth);
}

/* Pad bytes this end has used or skipped since the context was made. */
static uint64_t auth_spent(const struct qkdd *q)
{
	struct auth_stats as;

	auth_get_stats(q->auth, &as);
	return as.bytes_consumed + as.bytes_skipped;
}

/* ---- state file (--state-dir) ------------------------------------------- */

static void state_path(const struct qkdd *q, char *buf, size_t len,
		       const char *suffix)
{
	snprintf(buf, len, "%s/%s.state%s", q->o->state_dir,
		 qkdd_role_name(q->o->role), suffix);
}

static int write_file_sync(const char *dir, const char *tmp, const char *path,
			   const uint8_t *b, size_t len)
{
	size_t off = 0;
	int fd, dfd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600))
		goto fail;
	while (off < len) {
		ssize_t w = write(fd, b + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd))
		goto fail;
	if (close(fd)) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path))
		goto fail;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd)) {
		int e = -errno;

		if (dfd >= 0)
			close(dfd);
		return e;
	}
	close(dfd);
	return 0;
fail:
	{
		int e = -errno;

		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return e ? e : -EIO;
	}
}

/*
 * The state file: magic, version, the daemon's commit records (what was
 * charged to rounds, Bob's last block, Alice's pending block without its
 * keys), the authentication context (auth_state_export: every pool from
 * its recorded position on), an FNV-1a checksum. Written to a temporary
 * file, fsynced, renamed over the old one, and the directory fsynced.
 */
static int state_save(struct qkdd *q)
{
	char path[QKDD_PATH_MAX + 32], tmp[QKDD_PATH_MAX + 32];
	struct wbuf w = { 0 };
	uint8_t *ab = NULL;
	size_t alen = 0;
	bool pend = q->pend.valid && q->pend.auth_valid;
	int r;

	if (!q->persist || !q->auth)
		return 0;
	if (auth_state_export(q->auth, &ab, &alen)) {
		qlog("state file: out of memory");
		return -ENOMEM;
	}
	wb_bytes(&w, STATE_MAGIC, 8);
	wb_u(&w, STATE_VERSION, 4);
	wb_u(&w, q->charged, 8);
	wb_u(&w, q->have_last, 1);
	wb_u(&w, q->last_block_id, 8);
	wb_u(&w, pend, 1);
	wb_u(&w, pend ? q->pend.first : 0, 8);
	wb_u(&w, pend ? q->pend.count : 0, 4);
	wb_u(&w, pend ? q->pend.id : 0, 8);
	wb_u(&w, pend ? q->pend.charge_to : 0, 8);
	wb_u(&w, pend ? q->pend.auth_len : 0, 4);
	if (pend)
		wb_bytes(&w, q->pend.data, q->pend.auth_len);
	wb_u(&w, alen, 4);
	wb_bytes(&w, ab, alen);
	auth_key_free(ab, alen);
	if (!w.err)
		wb_u(&w, fnv64(0xcbf29ce484222325ull, w.p, w.len), 8);
	if (w.err) {
		wb_free(&w);
		qlog("state file: out of memory");
		return -ENOMEM;
	}
	state_path(q, path, sizeof(path), "");
	state_path(q, tmp, sizeof(tmp), ".tmp");
	r = write_file_sync(q->o->state_dir, tmp, path, w.p, w.len);
	wb_free(&w);
	if (r)
		qlog("cannot write the state file %s: %s", path, strerror(-r));
	return r;
}

static int persist_cb(void *arg)
{
	return state_save(arg) ? -1 : 0;
}

struct auth_ctx *qkdd_state_load(struct qkdd *q, int *err)
{
	char path[QKDD_PATH_MAX + 32];
	struct auth_ctx *a = NULL;
	struct stat st;
	struct rbuf rb;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t sum;
	int fd, e = 0;

	*err = 0;
	if (!q->o->state_dir[0])
		return NULL;
	state_path(q, path, sizeof(path), "");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return NULL;
		qlog("state file %s: %s", path, strerror(errno));
		*err = -errno;
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (st.st_mode & (S_IRWXG | S_IRWXO)) ||
	    (st.st_uid != geteuid() && st.st_uid != 0) ||
	    st.st_size < 16 || st.st_size > STATE_MAX) {
		qlog("state file %s: not a regular file of ours with mode 0600 and a sane size: refusing it",
		     path);
		e = -EPERM;
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		e = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	rb = (struct rbuf){ buf + len - 8, 8, 0, false };
	sum = rb_u(&rb, 8);
	if (len != (size_t)st.st_size ||
	    sum != fnv64(0xcbf29ce484222325ull, buf, len - 8) ||
	    memcmp(buf, STATE_MAGIC, 8)) {
		qlog("state file %s: damaged (checksum): refusing it; install a fresh PSK pair at both ends",
		     path);
		e = -EINVAL;
		goto out;
	}
	rb = (struct rbuf){ buf + 8, len - 16, 0, false };
	if (rb_u(&rb, 4) != STATE_VERSION) {
		qlog("state file %s: unknown version", path);
		e = -EINVAL;
		goto out;
	}
	q->charged = rb_u(&rb, 8);
	q->have_last = rb_u(&rb, 1);
	q->last_block_id = rb_u(&rb, 8);
	if (rb_u(&rb, 1)) {
		pending_clear(&q->pend);
		q->pend.first = rb_u(&rb, 8);
		q->pend.count = (uint32_t)rb_u(&rb, 4);
		q->pend.id = rb_u(&rb, 8);
		q->pend.charge_to = rb_u(&rb, 8);
		q->pend.auth_len = (uint32_t)rb_u(&rb, 4);
		if (!rb.err && q->pend.auth_len <= QKD_AUTH_RESERVE_CAP_DEFAULT) {
			const uint8_t *ab = rb_bytes(&rb, q->pend.auth_len);

			q->pend.data = malloc(q->pend.auth_len + 1);
			if (ab && q->pend.data) {
				memcpy(q->pend.data, ab, q->pend.auth_len);
				q->pend.len = q->pend.auth_len;
				q->pend.valid = true;
				q->pend.auth_valid = true;
			}
		}
		if (!q->pend.valid)
			rb.err = true;
	} else {
		rb_u(&rb, 8 + 4 + 8 + 8 + 4);
	}
	{
		size_t alen = (size_t)rb_u(&rb, 4);
		const uint8_t *ab = rb_bytes(&rb, alen);

		if (ab && rb_done(&rb))
			a = auth_state_import(ab, alen, NULL, &e);
	}
	if (!a) {
		qlog("state file %s: malformed: refusing it; install a fresh PSK pair at both ends",
		     path);
		pending_clear(&q->pend);
		e = -EINVAL;
		goto out;
	}
	if (auth_halted(a)) {
		qlog("state file %s: authentication was halted after repeated failures; investigate the link, then remove the file and install a fresh PSK pair",
		     path);
		auth_free(a);
		a = NULL;
		e = -EPERM;
		goto out;
	}
	qlog("authentication reserve restored from %s (%zu bytes)", path,
	     auth_reserve_level(a));
out:
	close(fd);
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
	*err = e;
	return a;
}

int qkdd_auth_attach(struct qkdd *q, struct auth_ctx *a, bool fresh)
{
	q->auth = a;
	if (fresh) {
		/* nothing charged yet; a pending block's auth bytes belong to
		 * the old context and are never added to this one */
		q->charged = 0;
		q->pend.auth_valid = false;
	}
	if (!q->o->state_dir[0])
		return 0;
	q->persist = true;
	auth_set_persist(a, persist_cb, q, QKD_AUTH_PERSIST_BATCH);
	return state_save(q) ? -EPERM : 0;
}

/* A committed block's withheld bytes go to the reserve (both ends add the
 * same bytes in the same order). */
static int reserve_add(struct qkdd *q, const uint8_t *bytes, size_t len)
{
	int r = auth_reserve_add(q->auth, bytes, len);

	if (r) {
		qlog("adding %zu bytes to the authentication reserve: %s",
		     len, auth_strerror(r));
		return -EPERM;
	}
	update_reserve(q);
	return 0;
}

/*
 * X.509 bootstrap only: retire the bootstrap reserve once the QKD part alone
 * reaches the target, so that no TLS-derived byte remains in use. Both ends
 * call it at the same quiescent point after a commit. (A PSK is as good as
 * QKD key, and its reserve may be restored from a state file: it is kept.)
 */
static void maybe_retire(struct qkdd *q)
{
	struct auth_stats as;
	int r;

	if (q->o->psk[0])
		return;
	auth_get_stats(q->auth, &as);
	if (as.bootstrap_left && as.bytes_added >= RETIRE_AFTER &&
	    as.reserve_send + as.reserve_recv >=
	    as.bootstrap_left + q->pp.auth_target) {
		r = auth_retire_bootstrap(q->auth);
		if (!r)
			qlog("bootstrap authentication key retired: tags are keyed from QKD output only from now on");
		else if (r != QKD_AUTH_E_RESERVE)
			qlog("retiring the bootstrap key: %s", auth_strerror(r));
	}
	update_reserve(q);
}

/* ---- HELLO and recovery ------------------------------------------------- */

/* SYNC payload: this end's reserve positions (see resync()). */
static int send_sync(struct qkdd *q)
{
	struct auth_position p;
	struct wbuf w = { 0 };
	int r;

	auth_get_position(q->auth, &p);
	wb_u(&w, SYNC_MAGIC, 4);
	wb_u(&w, SYNC_VERSION, 1);
	wb_u(&w, q->o->role == QKDD_ALICE ? QKD_AUTH_INITIATOR :
					    QKD_AUTH_RESPONDER, 1);
	for (int d = 0; d < 2; d++)
		wb_u(&w, p.pos[d], 8);
	for (int d = 0; d < 2; d++)
		wb_u(&w, p.end[d], 8);
	wb_u(&w, p.additions, 8);
	if (w.err)
		return -ENOMEM;
	r = send_msg(q, QKD_MSG_SYNC, w.p, w.len, AUTH_DEFER);
	wb_free(&w);
	return r;
}

static int recv_sync(struct qkdd *q, struct auth_position *peer)
{
	uint8_t type, want = q->o->role == QKDD_ALICE ? QKD_AUTH_RESPONDER :
							QKD_AUTH_INITIATOR;
	struct rbuf rb;
	int r = recv_msg(q, 1u << QKD_MSG_SYNC, &type, true);

	if (r)
		return r > 0 ? -EPROTO : r;
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	if (rb_u(&rb, 4) != SYNC_MAGIC || rb_u(&rb, 1) != SYNC_VERSION ||
	    rb_u(&rb, 1) != want) {
		qlog("SYNC: not a qkdd peer of this version, or both ends have the same role");
		return -EPERM;
	}
	for (int d = 0; d < 2; d++)
		peer->pos[d] = rb_u(&rb, 8);
	for (int d = 0; d < 2; d++)
		peer->end[d] = rb_u(&rb, 8);
	peer->additions = rb_u(&rb, 8);
	if (!rb_done(&rb)) {
		qlog("SYNC: malformed");
		return -ECONNRESET;
	}
	return 0;
}

/*
 * Both ends skip, in each pool, to the larger of the two positions: pads
 * below it were used (or set aside by a write-ahead record, or burnt by a
 * frame lost with the connection) at one end at least, and a pad is never
 * used twice. The SYNC messages are deferred: the HELLO closing tags cover
 * them, so a forged position only fails the HELLO (or wastes pads, at most
 * SYNC_MAX_SKIP per pool and connection).
 */
static int resync(struct qkdd *q, const struct auth_position *peer)
{
	struct auth_position me;
	uint64_t target[2];
	int r;

	auth_get_position(q->auth, &me);
	for (int d = 0; d < 2; d++)
		target[d] = me.pos[d] > peer->pos[d] ? me.pos[d] : peer->pos[d];
	if (target[0] == me.pos[0] && target[1] == me.pos[1])
		return 0;
	r = auth_skip_to(q->auth, target, SYNC_MAX_SKIP);
	if (r) {
		qlog("the peer's authentication reserve is at chunks %" PRIu64 "/%" PRIu64 ", ours at %" PRIu64 "/%" PRIu64 " (of %" PRIu64 "/%" PRIu64 "): too far apart to be the same reserve (an old state file at one end?); install a fresh PSK pair at both ends",
		     peer->pos[0], peer->pos[1], me.pos[0], me.pos[1],
		     me.end[0], me.end[1]);
		return -EPERM;
	}
	qlog("authentication reserve re-aligned with the peer: %" PRIu64 " + %" PRIu64 " pads skipped (used or set aside at one end before the connection was lost)",
	     target[0] - me.pos[0], target[1] - me.pos[1]);
	return 0;
}

static int hello(struct qkdd *q)
{
	struct auth_position peer_pos, me;
	struct wbuf w = { 0 };
	struct rbuf rb;
	uint8_t type;
	uint64_t a_next, b_next, a_low, b_low, lower, resume, b_last = 0;
	uint64_t k_next, my_next, my_low;
	bool alice = q->o->role == QKDD_ALICE, matched = false, b_have = false;
	int r;

	/*
	 * Two indices describe this end: my_next, the lowest index it may
	 * push at (its store's next index, or the resume index of an
	 * earlier connection if that is higher: indices it skips), and
	 * my_low, below which its store holds exactly the keys both ends
	 * committed. They differ when this end skipped indices and has not
	 * pushed past them yet (the peer may still hold orphans there: it
	 * may have died before removing them), or when a multi-batch push
	 * failed half way (its first batches were removed, next_index had
	 * moved). The store is asked again at every connection.
	 */
	r = store_next_index(q->st, &k_next);
	if (r)
		return r == -ESTALE ? -EPERM : r;
	my_next = q->next_index > k_next ? q->next_index : k_next;
	my_low = q->next_index < k_next ? q->next_index : k_next;
	q->round = 0;
	auth_session_start(q->auth);
	auth_transcript_begin(q->auth, 0);
	if (alice) {
		uint32_t sid = 0;

		while (!sid)
			if (getrandom(&sid, sizeof(sid), 0) != sizeof(sid))
				return -EIO;
		q->session_id = sid;
		r = send_sync(q);
		if (!r)
			r = recv_sync(q, &peer_pos);
		if (!r)
			r = resync(q, &peer_pos);
		if (r)
			return r;
		wb_u(&w, HELLO_MAGIC, 4);
		wb_u(&w, HELLO_VERSION, 1);
		wb_bytes(&w, q->o->stream, 16);
		wb_u(&w, q->pp.key_size, 4);
		wb_u(&w, my_next, 8);
		wb_u(&w, my_low, 8);
		/* a pending block whose keys we still hold */
		wb_u(&w, q->pend.valid && q->pend.has_keys, 1);
		wb_u(&w, q->pend.first, 8);
		wb_u(&w, q->pend.count, 4);
		wb_u(&w, q->pend.id, 8);
		wb_u(&w, q->pp.source, 1);
		wb_u(&w, q->pp.nint, 1);
		for (int i = 0; i < 3; i++) {
			wb_f64(&w, q->pp.mu[i]);
			wb_f64(&w, q->pp.p[i]);
		}
		wb_f64(&w, q->pp.qber_abort);
		wb_f64(&w, q->pp.sample_frac);
		wb_f64(&w, q->pp.eps_sec);
		wb_f64(&w, q->pp.eps_cor);
		wb_u(&w, q->pp.block_bits, 4);
		wb_u(&w, q->pp.tag_bits, 4);
		wb_u(&w, q->pp.auth_target, 4);
		if (w.err)
			return -ENOMEM;
		r = send_msg(q, QKD_MSG_HELLO, w.p, w.len, AUTH_CLOSE);
		wb_free(&w);
		if (r)
			return r;
		r = recv_msg(q, 1u << QKD_MSG_HELLO, &type, true);
		if (r)
			return r > 0 ? -EPROTO : r;
		if (!(auth_transcript_state(q->auth, 0) & QKD_AUTH_TR_VERIFIED)) {
			qlog("HELLO without the closing tag of the connection's exchange");
			return -ECONNRESET;
		}
		rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
		if (rb_u(&rb, 4) != HELLO_MAGIC ||
		    rb_u(&rb, 1) != HELLO_VERSION) {
			qlog("HELLO: not a qkdd peer of this version");
			return -EPERM;
		}
		b_next = rb_u(&rb, 8);
		b_low = rb_u(&rb, 8);
		b_have = rb_u(&rb, 1);
		b_last = rb_u(&rb, 8);
		if (!rb_done(&rb) || b_low > b_next) {
			qlog("HELLO: malformed answer");
			return -ECONNRESET;
		}
		a_next = my_next;
		a_low = my_low;
		matched = q->pend.valid && q->pend.has_keys && b_have &&
			  b_last == q->pend.id &&
			  b_next == q->pend.first + q->pend.count &&
			  a_next == q->pend.first && a_low == q->pend.first;
	} else {
		uint64_t p_first, p_id;
		uint32_t p_count, ks;
		bool p_valid;
		const uint8_t *sid;

		/* the session id is Alice's: take it from her first frame */
		q->session_id = 0;
		r = peer_wait(q->cfd, q->o->timeout_s, true);
		if (r <= 0)
			return r ? r : -ETIMEDOUT;
		{
			struct frame_hdr h;

			/* peek at the header for the session id (the frame
			 * itself is authenticated by the HELLO transcript) */
			if (recv(q->cfd, q->rbuf, QKD_FRAME_HDR_LEN, MSG_PEEK |
				 MSG_WAITALL) != QKD_FRAME_HDR_LEN) {
				qlog("HELLO: no first frame");
				return -ECONNRESET;
			}
			r = frame_parse_header(q->rbuf, QKD_FRAME_HDR_LEN, &h);
			if (r == QKD_FRAME_E_VERSION) {
				qlog("the peer speaks classical-channel frame version %u, this qkdd version %u: run the same qkdd release at both ends",
				     q->rbuf[4], QKD_FRAME_VERSION);
				return -EPERM;
			}
			if (r) {
				qlog("HELLO: malformed first frame");
				return -ECONNRESET;
			}
			q->session_id = h.session_id;
		}
		r = recv_sync(q, &peer_pos);
		if (!r)
			r = send_sync(q);
		if (!r)
			r = resync(q, &peer_pos);
		if (r)
			return r;
		r = recv_msg(q, 1u << QKD_MSG_HELLO, &type, true);
		if (r)
			return r > 0 ? -EPROTO : r;
		if (!(auth_transcript_state(q->auth, 0) & QKD_AUTH_TR_VERIFIED)) {
			qlog("HELLO without the closing tag of the connection's exchange");
			return -ECONNRESET;
		}
		rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
		if (rb_u(&rb, 4) != HELLO_MAGIC ||
		    rb_u(&rb, 1) != HELLO_VERSION) {
			qlog("HELLO: not a qkdd peer of this version");
			return -EPERM;
		}
		sid = rb_bytes(&rb, 16);
		ks = (uint32_t)rb_u(&rb, 4);
		a_next = rb_u(&rb, 8);
		a_low = rb_u(&rb, 8);
		p_valid = rb_u(&rb, 1);
		p_first = rb_u(&rb, 8);
		p_count = (uint32_t)rb_u(&rb, 4);
		p_id = rb_u(&rb, 8);
		q->pp.source = (uint8_t)rb_u(&rb, 1);
		q->pp.nint = (uint8_t)rb_u(&rb, 1);
		for (int i = 0; i < 3; i++) {
			q->pp.mu[i] = rb_f64(&rb);
			q->pp.p[i] = rb_f64(&rb);
		}
		q->pp.qber_abort = rb_f64(&rb);
		q->pp.sample_frac = rb_f64(&rb);
		q->pp.eps_sec = rb_f64(&rb);
		q->pp.eps_cor = rb_f64(&rb);
		q->pp.block_bits = (uint32_t)rb_u(&rb, 4);
		q->pp.tag_bits = (uint32_t)rb_u(&rb, 4);
		q->pp.auth_target = (uint32_t)rb_u(&rb, 4);
		if (!rb_done(&rb) || a_low > a_next ||
		    q->pp.nint < 1 || q->pp.nint > 3 ||
		    !(q->pp.qber_abort > 0 && q->pp.qber_abort <= 0.5) ||
		    !(q->pp.sample_frac > 0 && q->pp.sample_frac < 1) ||
		    !(q->pp.eps_sec > 0) || !(q->pp.eps_cor > 0) ||
		    q->pp.block_bits < 1024 || q->pp.block_bits > 1u << 24 ||
		    qkd_verify_check_tag_bits(q->pp.tag_bits, q->o->tag_bits) ||
		    q->pp.auth_target > QKD_AUTH_RESERVE_CAP_DEFAULT / 2) {
			qlog("HELLO: malformed or unacceptable parameters (tag bits %u below our %u?)",
			     q->pp.tag_bits, q->o->tag_bits);
			return -EPERM;
		}
		if (memcmp(sid, q->o->stream, 16) || ks != store_key_size(q->st)) {
			qlog("HELLO: the peer feeds another stream or key size (%u bytes, ours %u): check --stream on both sides",
			     ks, store_key_size(q->st));
			return -EPERM;
		}
		q->pp.key_size = ks;
		b_next = my_next;
		b_low = my_low;
		matched = p_valid && q->have_last && p_id == q->last_block_id &&
			  b_next == p_first + p_count && a_next == p_first &&
			  a_low == p_first;
		wb_u(&w, HELLO_MAGIC, 4);
		wb_u(&w, HELLO_VERSION, 1);
		wb_u(&w, my_next, 8);
		wb_u(&w, my_low, 8);
		wb_u(&w, q->have_last, 1);
		wb_u(&w, q->last_block_id, 8);
		if (w.err)
			return -ENOMEM;
		r = send_msg(q, QKD_MSG_HELLO, w.p, w.len, AUTH_CLOSE);
		wb_free(&w);
		if (r)
			return r;
	}

	/* Recovery: both sides hold both next indices and decide alike. */
	if (alice && q->pend.valid) {
		/*
		 * Bob committed the block (his last block is ours): he added
		 * its withheld bytes to the reserve before acknowledging it,
		 * so we add them too, whether or not we still hold its keys.
		 */
		if (b_have && b_last == q->pend.id && q->pend.auth_valid) {
			r = reserve_add(q, q->pend.data, q->pend.auth_len);
			if (r) {
				pending_clear(&q->pend);
				return r;
			}
			maybe_retire(q);
			q->charged = q->pend.charge_to;
		}
		if (matched) {
			qlog("completing block [%" PRIu64 ", %" PRIu64 ") that the peer acknowledged before the connection was lost",
			     q->pend.first, q->pend.first + q->pend.count);
			r = store_push(q->st, q->pend.first,
				       q->pend.data + q->pend.auth_len,
				       q->pend.count);
			if (!r) {
				a_next = a_low = k_next =
					q->pend.first + q->pend.count;
				q->tot.keys += q->pend.count;
			} else {
				/* The peer now believes we hold it: reconnect
				 * without the block, so that it removes it. */
				qlog("pushing the acknowledged block failed again: dropping it; the peer removes its copy at the next connection");
				pending_clear(&q->pend);
				state_save(q);
				return -ECONNRESET;
			}
		} else if (b_have && b_last == q->pend.id) {
			qlog("block [%" PRIu64 ", %" PRIu64 ") was committed by the peer%s",
			     q->pend.first, q->pend.first + q->pend.count,
			     q->next_index == q->pend.first + q->pend.count ?
			     " and pushed here before the restart" :
			     "; its keys were lost here with the restart");
		} else {
			qlog("discarding block [%" PRIu64 ", %" PRIu64 "): the peer does not hold it",
			     q->pend.first, q->pend.first + q->pend.count);
		}
		pending_clear(&q->pend);
		if (state_save(q))
			return -EPERM;
	} else if (matched) {
		a_next = a_low = b_next; /* Alice completes the pending block */
	}
	if (alice) {
		/* Both reserves must now be the same (Bob's SYNC). */
		auth_get_position(q->auth, &me);
		if (me.end[0] != peer_pos.end[0] ||
		    me.end[1] != peer_pos.end[1] ||
		    me.additions != peer_pos.additions) {
			qlog("the two ends hold different authentication reserves (%" PRIu64 "/%" PRIu64 " chunks after %" PRIu64 " additions here, %" PRIu64 "/%" PRIu64 " after %" PRIu64 " at the peer): install a fresh PSK pair at both ends",
			     me.end[0], me.end[1], me.additions,
			     peer_pos.end[0], peer_pos.end[1],
			     peer_pos.additions);
			return -EPERM;
		}
	}
	/*
	 * Both resume at the higher next index. Below the lower low index
	 * both stores agree; from there on, whatever a store holds was
	 * pushed at that end only (or removed already): each end removes
	 * its keys in [lower, its store's next index) -- again, if it died
	 * before it had removed them all -- and the other skips them.
	 */
	lower = a_low < b_low ? a_low : b_low;
	resume = a_next < b_next ? b_next : a_next;
	if (k_next > lower) {
		qlog("keys [%" PRIu64 ", %" PRIu64 ") were pushed here only (the other end never committed them): removing them",
		     lower, k_next);
		r = store_drop(q->st, lower, k_next);
		if (r)
			qlog("removing orphan keys failed: %s", strerror(-r));
	}
	if (k_next < resume && lower < resume)
		qlog("skipping indices [%" PRIu64 ", %" PRIu64 "): the peer removes its copies",
		     k_next > lower ? k_next : lower, resume);
	q->next_index = resume;
	q->tot.next_index = resume;
	update_reserve(q);
	qlog("session %08x up: stream next index %" PRIu64 ", auth reserve %zu bytes",
	     q->session_id, resume, q->tot.auth_reserve);
	return 0;
}

/* ---- one round ---------------------------------------------------------- */

struct round {
	struct round_stats rs;
	uint64_t charge_to;		/* q->charged once committed */
	struct qkd_sifted sifted;
	uint64_t *mask, *peer, *key, *seed, *final;
	size_t N, k, n, l;
	uint32_t F, nf;			/* Cascade frames: nf of F bits */
	uint64_t **frames;
	uint64_t sample_seed;
	struct qkd_estimate est;
	double n_z[3], n_x[3], m_x[3];
	uint8_t *bytes;
	size_t nbytes;
	struct timespec t0;
};

static void round_free(struct round *R)
{
	for (uint32_t f = 0; R->frames && f < R->nf; f++)
		if (R->frames[f])
			qkd_bits_free(R->frames[f], R->F, 0);
	free(R->frames);
	qkd_sifted_free(&R->sifted);
	if (R->mask)
		qkd_bits_free(R->mask, R->N, 0);
	if (R->peer)
		qkd_bits_free(R->peer, R->N, 0);
	if (R->key)
		qkd_bits_free(R->key, R->N, 0);
	if (R->seed)
		qkd_bits_free(R->seed, R->n + R->l - 1, 0);
	if (R->final)
		qkd_bits_free(R->final, R->l, 0);
	if (R->bytes) {
		explicit_bzero(R->bytes, R->nbytes);
		free(R->bytes);
	}
}

__attribute__((format(printf, 4, 5)))
static int round_abort(struct qkdd *q, struct round *R, int reason,
		       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(R->rs.reason, sizeof(R->rs.reason), fmt, ap);
	va_end(ap);
	if (reason >= 0)
		send_abort(q, (uint16_t)reason, R->rs.reason);
	R->rs.ok = false;
	return 0;
}

/*
 * Before a block is committed: does this side's stream have room for its
 * @count keys? A block is pushed whole or not at all, so a full stream
 * aborts the round (its key is discarded at both ends) instead of leaving
 * a part of it on one side. Returns 0 if the block fits, 1 if the round
 * was aborted, or a negative errno.
 */
static int room_check(struct qkdd *q, struct round *R, uint32_t count)
{
	uint64_t room;
	int r = store_room(q->st, &room);

	if (r)
		return r;
	if (room >= count)
		return 0;
	round_abort(q, R, QKD_ABORT_INTERNAL,
		    "the key store is full at %s (room for %" PRIu64 " keys, the round made %u): discarded at both ends until consumers take keys",
		    q->o->role == QKDD_ALICE ? "alice" : "bob", room, count);
	return 1;
}

/* Map a recv result inside a round: RX_ABORT ends the round. */
static int rx_fail(struct qkdd *q, struct round *R, int r)
{
	if (r == RX_ABORT) {
		snprintf(R->rs.reason, sizeof(R->rs.reason), "%.199s",
			 q->peer_reason);
		return 0;
	}
	if (r == -EINTR)
		send_abort(q, QKD_ABORT_SHUTDOWN, "operator stop");
	return r;
}

/* Pack this side's sifted bits at the sampled positions. */
static uint64_t *sample_bits(const struct round *R)
{
	uint64_t *out = qkd_bits_alloc(R->k, 0);
	size_t j = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < R->N; i++)
		if (qkd_bit_get(R->mask, i))
			qkd_bit_set(out, j++, qkd_bit_get(R->sifted.key, i));
	return out;
}

/* The peer's sample bits, spread to their positions in an N-bit array. */
static uint64_t *spread(const struct round *R, const uint64_t *packed)
{
	uint64_t *out = qkd_bits_alloc(R->N, 0);
	size_t j = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < R->N; i++)
		if (qkd_bit_get(R->mask, i))
			qkd_bit_set(out, i, qkd_bit_get(packed, j++));
	return out;
}

static bool decoy(const struct qkdd *q)
{
	return q->pp.source == QKD_SOURCE_WCP;
}

/* Sample mask: single photons, a random share; decoy states, every X bit
 * (the phase error comes from X, the key from Z). */
static int make_mask(struct qkdd *q, struct round *R)
{
	struct qkd_rng r;

	R->N = R->sifted.n;
	R->mask = qkd_bits_alloc(R->N, 0);
	if (!R->mask)
		return -ENOMEM;
	if (decoy(q)) {
		memcpy(R->mask, R->sifted.basis,
		       qkd_bits_words(R->N) * sizeof(uint64_t));
		R->k = qkd_bits_popcount(R->mask, R->N);
		return 0;
	}
	R->k = (size_t)ceil(q->pp.sample_frac * (double)R->N);
	qkd_rng_seed(&r, R->sample_seed);
	return qkd_sample_mask(&r, R->N, R->k, R->mask);
}

/* Both sides: the estimate from both sample sets; key bits. */
static int estimate(struct qkdd *q, struct round *R, const uint64_t *peer_packed)
{
	struct qkd_estimate_params ep = {
		.qber_abort = q->pp.qber_abort,
		.eps_pe = (q->pp.eps_sec / 2) * (q->pp.eps_sec / 2),
	};
	bool alice = q->o->role == QKDD_ALICE;
	int r;

	R->peer = spread(R, peer_packed);
	if (!R->peer)
		return -ENOMEM;
	r = qkd_estimate_qber(alice ? R->sifted.key : R->peer,
			      alice ? R->peer : R->sifted.key, R->mask, R->N,
			      &ep, &R->est);
	if (r)
		return r;
	R->rs.sampled = R->est.k;
	R->rs.sample_errors = R->est.errors;
	R->rs.qber = R->est.qber;
	for (size_t i = 0; i < R->N; i++) {
		unsigned int c = R->sifted.intensity[i];

		if (c >= 3)
			return -EPROTO;
		if (qkd_bit_get(R->sifted.basis, i)) {
			R->n_x[c]++;
			if (qkd_bit_get(R->mask, i) &&
			    qkd_bit_get(R->sifted.key, i) !=
			    qkd_bit_get(R->peer, i))
				R->m_x[c]++;
		} else if (!qkd_bit_get(R->mask, i)) {
			R->n_z[c]++;
		}
	}
	R->n = R->N - R->k;
	/*
	 * Cascade corrects frames of at most FRAME_MAX bits together (its
	 * round trips, each costing two tags, do not grow with the number
	 * of frames); the key is cut into nf equal frames, and the few
	 * bits left over are dropped.
	 */
	R->nf = (uint32_t)((R->n + FRAME_MAX - 1) / FRAME_MAX);
	if (!R->nf)
		R->nf = 1;
	R->F = (uint32_t)(R->n / R->nf);
	R->n = (size_t)R->F * R->nf;
	R->rs.key_bits = R->n;
	if (R->est.abort)
		return 0;
	/* compress_unmasked clears N bits of its output */
	R->key = qkd_bits_alloc(R->N, 0);
	if (!R->key)
		return -ENOMEM;
	qkd_bits_compress_unmasked(R->sifted.key, R->mask, R->N, R->key);
	qkd_bits_trim(R->key, R->n);
	for (size_t w = qkd_bits_words(R->n); w < qkd_bits_words(R->N); w++)
		R->key[w] = 0;
	if (R->F < 64)
		return 0;
	R->frames = calloc(R->nf, sizeof(*R->frames));
	if (!R->frames)
		return -ENOMEM;
	for (uint32_t f = 0; f < R->nf; f++) {
		R->frames[f] = qkd_bits_alloc(R->F, 0);
		if (!R->frames[f])
			return -ENOMEM;
		for (uint32_t i = 0; i < R->F; i++)
			qkd_bit_set(R->frames[f], i,
				    qkd_bit_get(R->key, (size_t)f * R->F + i));
	}
	return 0;
}

/* Bob: the corrected frames back into the key. */
static void frames_join(struct round *R)
{
	for (uint32_t f = 0; f < R->nf; f++)
		for (uint32_t i = 0; i < R->F; i++)
			qkd_bit_set(R->key, (size_t)f * R->F + i,
				    qkd_bit_get(R->frames[f], i));
}

static uint64_t key_length(struct qkdd *q, struct round *R, double leak,
			   const char **why)
{
	*why = NULL;
	if (decoy(q)) {
		struct qkd_decoy_input in = { .leak_ec = leak,
					      .eps_sec = q->pp.eps_sec,
					      .eps_cor = q->pp.eps_cor };
		struct qkd_decoy_detail d;
		uint64_t l;

		for (int i = 0; i < 3; i++) {
			in.mu[i] = q->pp.mu[i];
			in.p[i] = q->pp.p[i];
			in.n_z[i] = R->n_z[i];
			in.n_x[i] = R->n_x[i];
			in.m_x[i] = R->m_x[i];
		}
		l = qkd_keylen_decoy(&in, &d);
		if (!l)
			*why = d.why_zero ? d.why_zero :
			       "the decoy-state bound leaves no secret key (block too small?)";
		return l;
	} else {
		struct qkd_bb84_input in = {
			.n = R->n, .k = R->k, .qber = R->est.qber,
			.leak_ec = leak, .eps_sec = q->pp.eps_sec,
			.eps_cor = q->pp.eps_cor,
		};
		uint64_t l = qkd_keylen_bb84(&in, NULL);

		if (!l)
			*why = "the finite-key bound leaves no secret key (block too small or QBER too high)";
		return l;
	}
}

/* Toeplitz hashing and the split into auth bytes and keys. */
static int amplify(struct qkdd *q, struct round *R, uint32_t auth_len,
		   uint32_t count)
{
	size_t need = auth_len + (size_t)count * q->pp.key_size;

	R->final = qkd_bits_alloc(R->l, 0);
	if (!R->final || need > R->l / 8)
		return -EINVAL;
	if (qkd_toeplitz_fast(R->seed, R->key, R->n, R->final, R->l))
		return -ENOMEM;
	R->nbytes = need;
	R->bytes = malloc(need ? need : 1);
	if (!R->bytes)
		return -ENOMEM;
	for (size_t i = 0; i < need; i++)
		R->bytes[i] = (uint8_t)(R->final[i / 8] >> (8 * (i % 8)));
	return 0;
}

static void commit_payload(struct wbuf *w, uint64_t first, uint32_t count,
			   uint32_t key_size, uint64_t id, uint32_t auth_len)
{
	wb_u(w, first, 8);
	wb_u(w, count, 4);
	wb_u(w, key_size, 4);
	wb_u(w, id, 8);
	wb_u(w, auth_len, 4);
}

static uint64_t block_id(struct qkdd *q, const struct round *R)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = fnv64(h, &q->session_id, sizeof(q->session_id));
	h = fnv64(h, &q->round, sizeof(q->round));
	h = fnv64(h, R->seed, qkd_bits_words(R->n + R->l - 1) * 8);
	return h;
}

static int finish_round(struct round *R, uint32_t auth_len, uint32_t count,
			uint64_t first)
{
	struct timespec t1;

	R->rs.ok = true;
	R->rs.secret_bits = R->l;
	R->rs.auth_bytes = auth_len;
	R->rs.keys = count;
	R->rs.first_index = first;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	R->rs.seconds = (double)(t1.tv_sec - R->t0.tv_sec) +
			(double)(t1.tv_nsec - R->t0.tv_nsec) / 1e9;
	return 0;
}

static int alice_round(struct qkdd *q, struct round *R)
{
	struct qkd_alice_records a = { 0 };
	struct qkd_cascade_alice *ca = NULL;
	struct qkd_cascade_params cp;
	struct qkd_cascade_msg out = { 0 };
	struct qkd_cascade_stats cs;
	struct qkd_verify_tag vt;
	struct wbuf w = { 0 };
	struct rbuf rb;
	uint64_t *det = NULL, *bb = NULL, *mine = NULL, *peer = NULL;
	uint64_t npulses, id, seedw;
	uint8_t type, cpbuf[QKD_CASCADE_PARAMS_LEN];
	uint32_t auth_len, count;
	size_t nw, ndet = 0, level;
	const char *why;
	double leak;
	int r, v;

	npulses = (uint64_t)ceil(q->pp.block_bits * q->pulses_per_bit * 1.05);
	if (npulses > (1ull << 32)) {
		qlog("a block of %u sifted bits needs %" PRIu64 " pulses: too many; lower --block-bits or the loss",
		     q->pp.block_bits, npulses);
		return -EPERM;
	}
	if (auth_reserve_check(q->auth, MIN_TAGS + q->last_round_tags * 5 / 4)) {
		qlog("authentication reserve too low to start a round (%zu tags to send, %zu to check; the last round used %zu each way): rounds must make more key than they use (raise --block-bits); install a fresh PSK (or use X.509) at both ends and restart",
		     auth_reserve_tags(q->auth, true),
		     auth_reserve_tags(q->auth, false), q->last_round_tags);
		return -EPERM;
	}
	R->rs.pulses = npulses;
	/* SIFT .. CASCADE and VERIFY are authenticated by the transcript */
	r = auth_transcript_begin(q->auth, q->round);
	if (r)
		return -EPERM;
	r = qkd_alice_records_alloc(&a, npulses);
	if (r)
		return r;
	qkd_alice_prepare(&q->o->ch, &q->rng, &a);
	r = fiber_send(q->fib, q->qfd, q->round, &a);
	if (r) {
		qlog("the fiber stage failed: %s", strerror(-r));
		r = -ECONNRESET;
		goto out;
	}
	/* sifting */
	r = recv_msg(q, 1u << QKD_MSG_SIFT_BASES, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	nw = qkd_bits_words(npulses);
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	if (rb_u(&rb, 8) != npulses) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"sifting: pulse count mismatch");
		goto out;
	}
	det = rb_bits(&rb, npulses);
	bb = rb_bits(&rb, npulses);
	if (!rb_done(&rb)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"sifting: malformed announcement");
		goto out;
	}
	ndet = qkd_bits_popcount(det, npulses);
	R->rs.detections = ndet;
	if (getrandom(&R->sample_seed, 8, 0) != 8) {
		r = -EIO;
		goto out;
	}
	{
		uint64_t *ab = qkd_bits_alloc(npulses, 0);

		if (!ab) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < nw; i++)
			ab[i] = a.basis[i] & det[i];
		wb_bits(&w, ab, npulses);
		qkd_bits_free(ab, npulses, 0);
	}
	for (size_t i = 0; i < npulses; i++)
		if (qkd_bit_get(det, i))
			wb_u(&w, a.intensity[i], 1);
	wb_u(&w, R->sample_seed, 8);
	if (w.err) {
		r = -ENOMEM;
		goto out;
	}
	r = send_msg(q, QKD_MSG_SIFT_BASES, w.p, w.len, AUTH_DEFER);
	w.len = 0;
	if (r)
		goto out;
	r = qkd_sift(det, a.basis, bb, a.bit, a.intensity, npulses,
		     &R->sifted);
	if (r)
		goto out;
	qkd_alice_records_free(&a);
	R->rs.sifted = R->sifted.n;
	if (R->sifted.n < MIN_SIFTED) {
		r = round_abort(q, R, QKD_ABORT_KEY_TOO_SHORT,
				"only %zu sifted bits", R->sifted.n);
		goto out;
	}
	/* estimation */
	r = make_mask(q, R);
	if (r)
		goto out;
	r = recv_msg(q, 1u << QKD_MSG_EST_SAMPLE, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	peer = rb_bits(&rb, R->k);
	if (!rb_done(&rb) || !peer) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"estimation: malformed sample");
		goto out;
	}
	r = estimate(q, R, peer);
	if (r)
		goto out;
	mine = sample_bits(R);
	if (!mine) {
		r = -ENOMEM;
		goto out;
	}
	wb_bits(&w, mine, R->k);
	if (!R->est.abort) {
		if (getrandom(&seedw, 8, 0) != 8) {
			r = -EIO;
			goto out;
		}
		cp = (struct qkd_cascade_params){
			.variant = QKD_CASCADE_OPTIMIZED,
			.frame_bits = R->F,
			.nframes = R->nf,
			.qber_ppm = (uint32_t)(fmax(R->est.qber, 0.005) * 1e6),
			.seed = seedw,
			.flags = QKD_CASCADE_F_PARALLEL,
		};
		if (R->F < 64) {
			send_msg(q, QKD_MSG_EST_SAMPLE, w.p, w.len, AUTH_DEFER);
			r = round_abort(q, R, QKD_ABORT_KEY_TOO_SHORT,
					"only %zu key bits after sampling",
					R->n);
			goto out;
		}
		wb_bytes(&w, cpbuf, qkd_cascade_params_encode(&cp, cpbuf));
	}
	if (w.err) {
		r = -ENOMEM;
		goto out;
	}
	r = send_msg(q, QKD_MSG_EST_SAMPLE, w.p, w.len, AUTH_DEFER);
	w.len = 0;
	if (r)
		goto out;
	if (R->est.abort) {
		r = round_abort(q, R, -1, "%s", R->est.reason);
		goto out;
	}
	/* Cascade: answer Bob until he sends the verification hash */
	ca = qkd_cascade_alice_new(&cp, (const uint64_t *const *)R->frames);
	if (!ca) {
		r = round_abort(q, R, QKD_ABORT_INTERNAL,
				"Cascade setup failed");
		goto out;
	}
	for (;;) {
		r = recv_msg(q, (1u << QKD_MSG_CASCADE_REQ) |
				(1u << QKD_MSG_VERIFY_HASH), &type, true);
		if (r) {
			r = rx_fail(q, R, r);
			goto out;
		}
		if (type == QKD_MSG_VERIFY_HASH)
			break;
		if (qkd_cascade_alice_handle(ca, q->msg, q->msg_len, &out)) {
			r = round_abort(q, R, QKD_ABORT_PROTOCOL,
					"malformed Cascade request");
			goto out;
		}
		/*
		 * Every parity answered counts as disclosed, whatever the
		 * request (a forged one included): cs.disclosed_bits.
		 */
		r = send_msg(q, QKD_MSG_CASCADE_ANS, out.data, out.len,
			     AUTH_DEFER);
		if (r)
			goto out;
	}
	/*
	 * Bob's VERIFY_HASH closes the exchange: its tag covers the whole
	 * transcript. Nothing of this round is used before it verified.
	 */
	if (!(auth_transcript_state(q->auth, q->round) &
	      QKD_AUTH_TR_VERIFIED)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"verification hash without the transcript tag");
		goto out;
	}
	{
		struct auth_stats as;

		auth_get_stats(q->auth, &as);
		R->rs.auth_eps_log2 =
			auth_transcript_epsilon_log2(as.last_transcript_blocks);
	}
	qkd_cascade_alice_stats(ca, &cs);
	R->rs.cascade_rounds = cs.rounds;
	/* verification */
	if (qkd_verify_decode(&vt, q->msg, q->msg_len, q->pp.tag_bits) ||
	    vt.key_bits != R->n) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"malformed or too short verification tag");
		goto out;
	}
	v = qkd_verify_check(&vt, R->key, R->n, q->pp.tag_bits);
	leak = (double)cs.disclosed_bits + vt.tag_bits;
	R->rs.disclosed = (uint64_t)leak;
	R->rs.efficiency = R->est.qber > 0 ?
		(double)cs.disclosed_bits / ((double)R->n * qkd_h2(R->est.qber)) : 0;
	if (v != 1) {
		r = round_abort(q, R, QKD_ABORT_VERIFY_FAILED,
				"verification hash mismatch after Cascade (%" PRIu64 " parities disclosed): residual errors, block discarded",
				cs.disclosed_bits);
		goto out;
	}
	/* key length, reserve, PA seed */
	R->l = key_length(q, R, leak, &why);
	if (!R->l) {
		r = round_abort(q, R, QKD_ABORT_KEY_TOO_SHORT, "%s", why);
		goto out;
	}
	/*
	 * Withhold exactly the pads used since the last committed round
	 * (both directions, the SYNC/HELLO of a new connection and aborted
	 * rounds included, and the three tags still to come: PA_SEED,
	 * KEY_COMMIT and its echo), plus half of any shortfall below the
	 * target reserve.
	 */
	level = auth_reserve_level(q->auth);
	{
		uint64_t want, used;

		R->charge_to = auth_spent(q) + TAGS_AFTER_PA * QKD_AUTH_TAG_LEN;
		used = R->charge_to - q->charged;
		R->rs.auth_used = used;
		q->last_round_tags = (size_t)(used + 2 * QKD_AUTH_TAG_LEN - 1) /
				     (2 * QKD_AUTH_TAG_LEN);
		want = used;
		if (level < q->pp.auth_target)
			want += (q->pp.auth_target - level) / 2;
		want = (want + 31) / 32 * 32;
		if (used > R->l / 8)
			qlog("this round used more authentication key (%" PRIu64 " bytes) than it made (%zu): raise --block-bits",
			     used, R->l / 8);
		else if (want > R->l / 8)
			qlog("authentication reserve %zu bytes below its target %u: all %zu secret bytes refill it",
			     level, q->pp.auth_target, R->l / 8);
		if (want > R->l / 8)
			want = R->l / 8 / 32 * 32;
		auth_len = (uint32_t)want;
	}
	count = (uint32_t)((R->l / 8 - auth_len) / q->pp.key_size);
	r = room_check(q, R, count);
	if (r) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	R->seed = qkd_bits_alloc(R->n + R->l - 1, 0);
	if (!R->seed || qkd_pa_seed_random(R->seed, R->n + R->l - 1)) {
		r = -ENOMEM;
		goto out;
	}
	qkd_bits_trim(R->seed, R->n + R->l - 1);
	wb_u(&w, R->l, 8);
	wb_u(&w, (uint64_t)leak, 8);
	wb_u(&w, auth_len, 4);
	wb_u(&w, count, 4);
	wb_u(&w, q->next_index, 8);
	wb_bits(&w, R->seed, R->n + R->l - 1);
	if (w.err) {
		r = -ENOMEM;
		goto out;
	}
	/* PA_SEED closes the exchange for Bob (the transcript tag) */
	r = send_msg(q, QKD_MSG_PA_SEED, w.p, w.len, AUTH_CLOSE);
	w.len = 0;
	if (r)
		goto out;
	r = amplify(q, R, auth_len, count);
	if (r)
		goto out;
	/* two-phase commit: Bob pushes first, then we do */
	id = block_id(q, R);
	pending_clear(&q->pend);
	q->pend = (struct pending){ .valid = true, .has_keys = true,
				    .auth_valid = true,
				    .first = q->next_index,
				    .id = id, .count = count,
				    .charge_to = R->charge_to,
				    .auth_len = auth_len, .data = R->bytes,
				    .len = R->nbytes };
	R->bytes = NULL;
	R->nbytes = 0;
	commit_payload(&w, q->pend.first, count, q->pp.key_size, id, auth_len);
	if (w.err) {
		r = -ENOMEM;
		goto out;
	}
	/* the pending block (without its keys) is on disk before Bob can
	 * commit it, so that a restart still adds its auth bytes */
	if (state_save(q)) {
		r = -EPERM;
		goto out;
	}
	r = send_msg(q, QKD_MSG_KEY_COMMIT, w.p, w.len, AUTH_OWN);
	if (r)
		goto out;
	r = recv_msg(q, 1u << QKD_MSG_KEY_COMMIT, &type, false);
	if (r == RX_ABORT) {
		pending_clear(&q->pend);
		r = rx_fail(q, R, r);
		goto out;
	}
	if (r)
		goto out;	/* keep the pending block for recovery */
	if (q->msg_len != w.len || memcmp(q->msg, w.p, w.len)) {
		qlog("KEY_COMMIT acknowledgement does not match the block");
		r = -ECONNRESET;
		goto out;
	}
	if (count && qkdd_fault && !strcmp(qkdd_fault, "alice-after-ack")) {
		qlog("fault injection: exiting before pushing block [%" PRIu64 ", %" PRIu64 ")",
		     q->pend.first, q->pend.first + count);
		_exit(9);
	}
	if ((auth_transcript_state(q->auth, q->round) &
	     (QKD_AUTH_TR_SENT | QKD_AUTH_TR_VERIFIED)) !=
	    (QKD_AUTH_TR_SENT | QKD_AUTH_TR_VERIFIED)) {
		qlog("internal error: committing a round whose transcript is not authenticated");
		r = -EPERM;
		goto out;
	}
	r = store_push(q->st, q->pend.first, q->pend.data + auth_len, count);
	if (r) {
		qlog("the peer holds block [%" PRIu64 ", %" PRIu64 ") but we cannot push it: reconnecting to recover",
		     q->pend.first, q->pend.first + count);
		r = -ECONNRESET;
		goto out;
	}
	r = reserve_add(q, q->pend.data, auth_len);
	if (r)
		goto out;
	maybe_retire(q);
	if (auth_spent(q) != R->charge_to)
		qdebug("pads spent %" PRIu64 ", charged %" PRIu64,
		       auth_spent(q), R->charge_to);
	q->charged = R->charge_to;
	finish_round(R, auth_len, count, q->pend.first);
	q->next_index = q->pend.first + count;
	pending_clear(&q->pend);
	if (state_save(q)) {
		r = -EPERM;
		goto out;
	}
	r = 0;
out:
	qkd_alice_records_free(&a);
	qkd_cascade_alice_free(ca);
	qkd_cascade_msg_free(&out);
	wb_free(&w);
	if (det)
		qkd_bits_free(det, npulses, 0);
	if (bb)
		qkd_bits_free(bb, npulses, 0);
	if (mine)
		qkd_bits_free(mine, R->k, 0);
	if (peer)
		qkd_bits_free(peer, R->k, 0);
	return r;
}

static int bob_roundtrip(struct qkdd *q, struct round *R,
			 const struct qkd_cascade_msg *req, int *rx)
{
	uint8_t type;
	int r = send_msg(q, QKD_MSG_CASCADE_REQ, req->data, req->len,
			 AUTH_DEFER);

	if (r)
		return r;
	r = recv_msg(q, 1u << QKD_MSG_CASCADE_ANS, &type, true);
	*rx = r;
	(void)R;
	return r;
}

static int bob_round(struct qkdd *q, struct round *R)
{
	struct qkd_detections d = { 0 };
	struct qkd_bob_records b = { 0 };
	struct qkd_cascade_bob *cb = NULL;
	struct qkd_cascade_params cp;
	struct qkd_cascade_msg out = { 0 };
	struct qkd_cascade_stats cs;
	struct qkd_verify_tag vt;
	uint8_t vbuf[QKD_VERIFY_MSG_MAX];
	struct wbuf w = { 0 };
	struct rbuf rb;
	uint64_t *ab = NULL, *mine = NULL, *peer = NULL, npulses = 0;
	uint64_t l, leak, first, l_mine;
	uint8_t *cls = NULL, type;
	uint32_t round = q->round + 1, auth_len, count;
	size_t ndet;
	const char *why;
	int r, rx;

	qkdd_log_round(0);
	r = quantum_recv(q->qfd, &round, q->o->timeout_s, &d, &npulses);
	if (r) {
		if (r == -ENOTCONN)
			qlog("the peer closed the quantum channel");
		else if (r != -EINTR)
			qlog("quantum channel: %s", strerror(-r));
		return r == -EINTR ? r : -ECONNRESET;
	}
	q->round = round;
	R->rs.round = round;
	qkdd_log_round(round);
	r = auth_transcript_begin(q->auth, q->round);
	if (r)
		return -EPERM;
	R->rs.pulses = npulses;
	R->rs.detections = d.count;
	r = qkd_bob_records_alloc(&b, npulses);
	if (!r)
		r = qkd_bob_records(&d, &q->rng, &b);
	qkd_detections_free(&d);
	if (r)
		goto out;
	/* sifting: announce detections and bases, get Alice's */
	wb_u(&w, npulses, 8);
	wb_bits(&w, b.detected, npulses);
	{
		size_t nw = qkd_bits_words(npulses);
		uint64_t *mb = qkd_bits_alloc(npulses, 0);

		if (!mb) {
			r = -ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < nw; i++)
			mb[i] = b.basis[i] & b.detected[i];
		wb_bits(&w, mb, npulses);
		qkd_bits_free(mb, npulses, 0);
	}
	if (w.err) {
		r = -ENOMEM;
		goto out;
	}
	r = send_msg(q, QKD_MSG_SIFT_BASES, w.p, w.len, AUTH_DEFER);
	w.len = 0;
	if (r)
		goto out;
	r = recv_msg(q, 1u << QKD_MSG_SIFT_BASES, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	ndet = qkd_bits_popcount(b.detected, npulses);
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	ab = rb_bits(&rb, npulses);
	cls = calloc(npulses ? npulses : 1, 1);
	if (!cls) {
		r = -ENOMEM;
		goto out;
	}
	{
		const uint8_t *list = rb_bytes(&rb, ndet);
		size_t j = 0;

		for (size_t i = 0; list && i < npulses; i++)
			if (qkd_bit_get(b.detected, i)) {
				if (list[j] >= q->pp.nint) {
					r = round_abort(q, R, QKD_ABORT_PROTOCOL,
							"sifting: intensity class %u out of range",
							list[j]);
					goto out;
				}
				cls[i] = list[j++];
			}
	}
	R->sample_seed = rb_u(&rb, 8);
	if (!rb_done(&rb)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"sifting: malformed answer");
		goto out;
	}
	r = qkd_sift(b.detected, ab, b.basis, b.bit, cls, npulses,
		     &R->sifted);
	if (r)
		goto out;
	qkd_bob_records_free(&b);
	R->rs.sifted = R->sifted.n;
	if (R->sifted.n < MIN_SIFTED) {
		r = round_abort(q, R, -1, "only %zu sifted bits",
				R->sifted.n);
		r = recv_msg(q, 0, &type, true);	/* Alice's ABORT */
		r = r == RX_ABORT ? rx_fail(q, R, r) : r ? r : -EPROTO;
		goto out;
	}
	/* estimation */
	r = make_mask(q, R);
	if (r)
		goto out;
	mine = sample_bits(R);
	if (!mine) {
		r = -ENOMEM;
		goto out;
	}
	wb_bits(&w, mine, R->k);
	r = send_msg(q, QKD_MSG_EST_SAMPLE, w.p, w.len, AUTH_DEFER);
	w.len = 0;
	if (r)
		goto out;
	r = recv_msg(q, 1u << QKD_MSG_EST_SAMPLE, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	peer = rb_bits(&rb, R->k);
	if (!peer) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"estimation: malformed sample");
		goto out;
	}
	r = estimate(q, R, peer);
	if (r)
		goto out;
	if (R->est.abort) {
		r = round_abort(q, R, -1, "%s", R->est.reason);
		goto out;
	}
	{
		const uint8_t *p = rb_bytes(&rb, QKD_CASCADE_PARAMS_LEN);

		if (!p || !rb_done(&rb) ||
		    qkd_cascade_params_decode(&cp, p, QKD_CASCADE_PARAMS_LEN) ||
		    cp.frame_bits != R->F || cp.nframes != R->nf) {
			r = round_abort(q, R, QKD_ABORT_PROTOCOL,
					"estimation: bad Cascade parameters");
			goto out;
		}
	}
	/* Cascade */
	cb = qkd_cascade_bob_new(&cp, (uint64_t *const *)R->frames);
	if (!cb) {
		r = round_abort(q, R, QKD_ABORT_INTERNAL,
				"Cascade setup failed");
		goto out;
	}
	while ((r = qkd_cascade_bob_request(cb, &out)) == 1) {
		r = bob_roundtrip(q, R, &out, &rx);
		if (r) {
			r = rx_fail(q, R, r);
			goto out;
		}
		if (qkd_cascade_bob_reply(cb, q->msg, q->msg_len)) {
			r = round_abort(q, R, QKD_ABORT_PROTOCOL,
					"malformed Cascade answer");
			goto out;
		}
	}
	if (r < 0) {
		r = round_abort(q, R, QKD_ABORT_INTERNAL, "Cascade: %s",
				strerror(-r));
		goto out;
	}
	frames_join(R);
	qkd_cascade_bob_stats(cb, &cs);
	R->rs.cascade_rounds = cs.rounds;
	/* verification: we make the tag, Alice checks */
	if (qkd_verify_make(&vt, R->key, R->n, q->pp.tag_bits, NULL)) {
		r = round_abort(q, R, QKD_ABORT_INTERNAL,
				"cannot make the verification tag");
		goto out;
	}
	/* VERIFY_HASH closes the exchange for Alice (the transcript tag) */
	r = send_msg(q, QKD_MSG_VERIFY_HASH, vbuf,
		     qkd_verify_encode(&vt, vbuf), AUTH_CLOSE);
	if (r)
		goto out;
	/* PA seed: Alice's closing tag over the transcript */
	r = recv_msg(q, 1u << QKD_MSG_PA_SEED, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	if (!(auth_transcript_state(q->auth, q->round) &
	      QKD_AUTH_TR_VERIFIED)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"PA seed without the transcript tag");
		goto out;
	}
	{
		struct auth_stats as;

		auth_get_stats(q->auth, &as);
		R->rs.auth_eps_log2 =
			auth_transcript_epsilon_log2(as.last_transcript_blocks);
	}
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	l = rb_u(&rb, 8);
	leak = rb_u(&rb, 8);
	auth_len = (uint32_t)rb_u(&rb, 4);
	count = (uint32_t)rb_u(&rb, 4);
	first = rb_u(&rb, 8);
	R->rs.disclosed = leak;
	R->rs.efficiency = R->est.qber > 0 ?
		(double)(leak - q->pp.tag_bits) /
		((double)R->n * qkd_h2(R->est.qber)) : 0;
	l_mine = key_length(q, R, (double)leak, &why);
	if (rb.err || !l || l != l_mine || leak < cs.disclosed_bits ||
	    first != q->next_index || l > (1ull << 32)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"PA: secret length %" PRIu64 " / index %" PRIu64 " do not match ours (%" PRIu64 " / %" PRIu64 ")",
				l, first, l_mine, q->next_index);
		goto out;
	}
	R->l = l;
	R->seed = rb_bits(&rb, R->n + R->l - 1);
	if (!R->seed || !rb_done(&rb)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL, "PA: malformed seed");
		goto out;
	}
	r = amplify(q, R, auth_len, count);
	if (r) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"PA: %u auth bytes and %u keys do not fit %" PRIu64 " bits",
				auth_len, count, l);
		goto out;
	}
	/* commit: check, push, acknowledge */
	r = recv_msg(q, 1u << QKD_MSG_KEY_COMMIT, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	commit_payload(&w, first, count, q->pp.key_size, block_id(q, R),
		       auth_len);
	if (w.err || q->msg_len != w.len || memcmp(q->msg, w.p, w.len)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"KEY_COMMIT does not match our block");
		goto out;
	}
	if ((auth_transcript_state(q->auth, q->round) &
	     (QKD_AUTH_TR_SENT | QKD_AUTH_TR_VERIFIED)) !=
	    (QKD_AUTH_TR_SENT | QKD_AUTH_TR_VERIFIED)) {
		qlog("internal error: committing a round whose transcript is not authenticated");
		r = -EPERM;
		goto out;
	}
	r = room_check(q, R, count);
	if (r) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	r = store_push(q->st, first, R->bytes + auth_len, count);
	if (r) {
		round_abort(q, R, QKD_ABORT_INTERNAL,
			    "cannot push the block here (%s): discarded at both ends",
			    strerror(-r));
		/*
		 * The stream's next_index may have moved past a part of the
		 * block that was pushed and then removed: reconnect, so that
		 * recovery starts both sides at the same index again.
		 */
		r = -ECONNRESET;
		goto out;
	}
	if (count && qkdd_fault && !strcmp(qkdd_fault, "bob-after-push")) {
		qlog("fault injection: exiting after pushing block [%" PRIu64 ", %" PRIu64 "), before acknowledging it",
		     first, first + count);
		_exit(9);
	}
	q->last_block_id = block_id(q, R);
	q->have_last = true;
	q->next_index = first + count;
	/*
	 * The withheld bytes join the reserve, and the commit is on disk,
	 * before the acknowledgement leaves: once Alice can add them, we
	 * have them too, across a crash of either end.
	 */
	r = reserve_add(q, R->bytes, auth_len);
	if (r)
		goto out;
	if (state_save(q)) {
		r = -EPERM;
		goto out;
	}
	r = send_msg(q, QKD_MSG_KEY_COMMIT, w.p, w.len, AUTH_OWN);
	if (r)
		goto out;
	maybe_retire(q);
	R->rs.auth_used = auth_spent(q) - q->charged;
	q->charged = auth_spent(q);
	finish_round(R, auth_len, count, first);
	r = 0;
out:
	qkd_detections_free(&d);
	qkd_bob_records_free(&b);
	qkd_cascade_bob_free(cb);
	qkd_cascade_msg_free(&out);
	wb_free(&w);
	free(cls);
	if (ab)
		qkd_bits_free(ab, npulses, 0);
	if (mine)
		qkd_bits_free(mine, R->k, 0);
	if (peer)
		qkd_bits_free(peer, R->k, 0);
	return r;
}

int qkdd_session(struct qkdd *q, int cfd, int qfd, struct auth_ctx *auth)
{
	int r;

	q->cfd = cfd;
	q->qfd = qfd;
	if (auth != q->auth && qkdd_auth_attach(q, auth, true))
		return -EPERM;
	qkdd_log_round(0);
	r = hello(q);
	if (r)
		return r;
	q->tot.connected = true;
	stats_write(q->o, &q->tot, NULL);
	while (!qkdd_done(q)) {
		struct round R;

		if (qkdd_stop) {
			qkdd_log_round(0);
			send_abort(q, QKD_ABORT_SHUTDOWN, "operator stop");
			return 0;
		}
		memset(&R, 0, sizeof(R));
		clock_gettime(CLOCK_MONOTONIC, &R.t0);
		if (q->o->role == QKDD_ALICE) {
			q->round++;
			R.rs.round = q->round;
			qkdd_log_round(q->round);
			r = alice_round(q, &R);
		} else {
			r = bob_round(q, &R);
		}
		if (r) {
			round_free(&R);
			q->tot.connected = false;
			stats_write(q->o, &q->tot, NULL);
			qkdd_log_round(0);
			return r == -EINTR ? 0 : r;
		}
		q->rounds_done++;
		if (!R.rs.ok) {
			struct timespec t1;

			clock_gettime(CLOCK_MONOTONIC, &t1);
			R.rs.seconds = (double)(t1.tv_sec - R.t0.tv_sec) +
				       (double)(t1.tv_nsec - R.t0.tv_nsec) / 1e9;
		}
		update_reserve(q);
		q->tot.next_index = q->next_index;
		stats_round(q->o, &q->tot, &R.rs);
		round_free(&R);
	}
	qkdd_log_round(0);
	return 1;
}
