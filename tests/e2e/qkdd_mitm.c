// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd_mitm: a man in the middle for qkdd's classical channel and its
 * simulated quantum link, for the attack tests (tests/e2e/qkdd_mitm.sh).
 *
 *   qkdd_mitm LISTEN_PORT TARGET_PORT SEED ATTACK_SECONDS RATE ATTACKS
 *
 * Listens on 127.0.0.1:LISTEN_PORT (classical) and LISTEN_PORT + 1 (the
 * simulated quantum link) for Alice, and connects to Bob at TARGET_PORT
 * and TARGET_PORT + 1. For ATTACK_SECONDS from the start, each classical
 * frame is attacked with probability RATE by one of the classical attacks
 * in ATTACKS (comma-separated, chosen with a PRNG seeded by SEED):
 *
 *   drop delay dup reorder replay replay-old trunc flip forge reset flood
 *
 * replay-old injects a frame captured on an earlier connection (session
 * id and sequence number rewritten); forge injects a frame with valid
 * framing (header of the current session, next sequence number, random
 * type, flags, payload and tag). As a capable attacker would, sequence
 * numbers after a drop, a duplicate or an injection are renumbered, so
 * that only the tags can tell.
 *
 * Likewise each quantum chunk (one round's detection events, Alice's
 * fiber to Bob: "QKDQ", u32 round, u64 pulses, u64 detections, 10 bytes
 * a detection; see userspace/qkdd/quantum.c) is attacked with probability
 * RATE by the quantum attacks in ATTACKS taken in turn (a run sees few
 * chunks: one a round), and the variants of each also in turn:
 *
 *   q-drop        the chunk is not sent
 *   q-trunc       cut at a random byte; or fewer detections, well framed
 *   q-flip        1-8 random bits flipped; Bob's bit flipped in 1 % of the
 *                 detections (a noisy channel) or in 25 % (intercept-
 *                 resend); Bob's basis flipped in 50 %
 *   q-header      pulses 2^34; pulses and detections 2^34; round ahead;
 *                 round 2^32 - 1; magic altered; pulses one fewer
 *   q-dup         sent twice
 *   q-replay      a chunk of an earlier round of this connection first, as
 *                 it was or relabelled as this round (then, or if its round
 *                 is this one, logged as "stale detections for this round")
 *   q-replay-old  the same with a chunk of an earlier connection
 *   q-reset       the quantum connection reset (RST), the classical kept
 *   q-flood       8 well-framed chunks of round 0 first; or random bytes
 *                 first, and to Alice (who never reads the link)
 *
 * Afterwards it forwards everything untouched. Each attack is logged on
 * stderr as "attack N: NAME ..." (quantum ones with the connection, 1 for
 * the first, and the round), and "attacker stops" once the time is up.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qkd/frame.h"
#include "qkd/le.h"

enum { A_DROP, A_DELAY, A_DUP, A_REORDER, A_REPLAY, A_REPLAY_OLD, A_TRUNC,
       A_FLIP, A_FORGE, A_RESET, A_FLOOD,
       /* the simulated quantum link, one chunk (a round's detections) */
       A_QDROP, A_QTRUNC, A_QFLIP, A_QHEADER, A_QDUP, A_QREPLAY,
       A_QREPLAY_OLD, A_QRESET, A_QFLOOD, A__N };
#define A_Q0	A_QDROP		/* the first quantum attack */

static const char *const names[A__N] = {
	"drop", "delay", "dup", "reorder", "replay", "replay-old", "trunc",
	"flip", "forge", "reset", "flood",
	"q-drop", "q-trunc", "q-flip", "q-header", "q-dup", "q-replay",
	"q-replay-old", "q-reset", "q-flood",
};

#define KEEP	64	/* frames kept per direction for replays */
#define KEEPQ	3	/* quantum chunks kept (each up to some MB) */

/* the quantum wire format (userspace/qkdd/quantum.c), little endian:
 * "QKDQ", u32 round, u64 pulses, u64 detections, then per detection u64
 * pulse, u8 clicks, u8 basis */
#define QMAGIC		0x51444b51u
#define QHDR_LEN	24
#define QEV_LEN		10
#define QCNT_MAX	(1ull << 28)	/* more than any honest round here */

struct frame_copy {
	uint8_t *b;
	size_t len;
};

static uint64_t rng_s;
/* classical and quantum attacks asked for */
static int enabled[A__N], nenabled, qenabled[A__N], nqenabled;
static double rate;
static time_t stop_at;
static unsigned long nattacks;
static bool stopped_logged;
/* frames of this connection and of earlier ones, per direction */
static struct frame_copy cur[2][KEEP], old[2][KEEP];
static int ncur[2], nold[2];
/* quantum chunks (Alice to Bob) of this connection and of earlier ones */
static struct frame_copy qcur[KEEPQ], qold[KEEPQ];
static int nqcur, nqold;
static unsigned long nconn;	/* connections so far, 1 = the first */
static unsigned int qmode[A__N];	/* variants, taken in turn */
static unsigned int qturn;		/* quantum attacks, taken in turn */

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* The library's stream helpers, as 0 or -1. */
static int read_full(int fd, uint8_t *b, size_t n)
{
	return frame_read_all(fd, b, n) ? -1 : 0;
}

static int write_full(int fd, const uint8_t *b, size_t n)
{
	return frame_write_all(fd, b, n) ? -1 : 0;
}

static int listen_on(unsigned int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 4)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_to(unsigned int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };

	for (int tries = 0; tries < 50; tries++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

		if (fd < 0)
			return -1;
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
			return fd;
		}
		close(fd);
		usleep(100000);
	}
	return -1;
}

/* Close with a TCP RST. */
static void reset_close(int fd)
{
	struct linger l = { 1, 0 };

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

static void keep_n(struct frame_copy *set, int *n, int max, const uint8_t *b,
		   size_t len)
{
	struct frame_copy *c = &set[*n < max ? *n : (int)(rnd() % (uint64_t)max)];
	uint8_t *p = malloc(len);

	if (!p)
		return;
	memcpy(p, b, len);
	free(c->b);
	c->b = p;
	c->len = len;
	if (*n < max)
		(*n)++;
}

static void keep(struct frame_copy *set, int *n, const uint8_t *b,
		 size_t len)
{
	keep_n(set, n, KEEP, b, len);
}

struct conn {
	int c[2];		/* classical: [0] Alice, [1] Bob */
	int q[2];		/* quantum; -1 once q-reset closed it */
	int64_t off[2];		/* sequence renumbering per direction */
	uint8_t *held[2];	/* reorder: a frame sent after the next one */
	size_t held_len[2];
	uint8_t *buf;
	uint8_t *qbuf;		/* one quantum chunk */
	size_t qcap;
	uint32_t sid;		/* session id of the last classical frame */
};

static void logf_attack(int a, int d, const uint8_t *b)
{
	nattacks++;
	fprintf(stderr, "attack %lu: %s %s type %u round %u seq %llu\n",
		nattacks, names[a], d ? "B->A" : "A->B", b[5],
		(unsigned int)get_be(b + 12, 4),
		(unsigned long long)get_be(b + 16, 8));
}

static int send_held(struct conn *k, int d)
{
	int r;

	if (!k->held[d])
		return 0;
	r = write_full(k->c[1 - d], k->held[d], k->held_len[d]);
	free(k->held[d]);
	k->held[d] = NULL;
	return r;
}

/* Write an injected frame of @len bytes at the current sequence number. */
static int inject(struct conn *k, int d, uint8_t *f, size_t len,
		  const uint8_t *hdr_now)
{
	memcpy(f + 8, hdr_now + 8, 8);		/* session id, round */
	put_be(f + 16, get_be(hdr_now + 16, 8), 8);
	k->off[d]++;
	return write_full(k->c[1 - d], f, len);
}

/* Attack this frame or chunk? -1, or one of @list, with probability rate. */
static int pick(const int *list, int n)
{
	if (time(NULL) < stop_at) {
		if (n && (double)(rnd() >> 11) / 9007199254740992.0 < rate)
			return list[rnd() % (uint64_t)n];
	} else if (!stopped_logged) {
		stopped_logged = true;
		fprintf(stderr, "attacker stops after %lu attacks\n", nattacks);
	}
	return -1;
}

/* Forward (or attack) one frame from direction d; -1: end the connection. */
static int one_frame(struct conn *k, int d)
{
	uint8_t *b = k->buf;
	size_t len, plen;
	int out = k->c[1 - d], a = -1, r = 0;

	if (read_full(k->c[d], b, QKD_FRAME_HDR_LEN))
		return -1;
	plen = (size_t)get_be(b + 24, 4);
	if (plen > QKD_FRAME_MAX_PAYLOAD)
		return -1;
	len = QKD_FRAME_HDR_LEN + plen + QKD_FRAME_TAG_LEN;
	if (read_full(k->c[d], b + QKD_FRAME_HDR_LEN, len - QKD_FRAME_HDR_LEN))
		return -1;
	keep(cur[d], &ncur[d], b, len);
	k->sid = (uint32_t)get_be(b + 8, 4);
	put_be(b + 16, get_be(b + 16, 8) + (uint64_t)k->off[d], 8);
	a = pick(enabled, nenabled);
	if (a >= 0)
		logf_attack(a, d, b);
	switch (a) {
	case A_DROP:
		k->off[d]--;
		return 0;
	case A_DELAY: {
		struct timespec ts = { 0, (long)(100 + rnd() % 1400) * 1000000L };

		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec = 1;
			ts.tv_nsec -= 1000000000L;
		}
		nanosleep(&ts, NULL);
		break;
	}
	case A_DUP:
		r = write_full(out, b, len);
		put_be(b + 16, get_be(b + 16, 8) + 1, 8);
		k->off[d]++;
		break;
	case A_REORDER:
		if (k->held[d])
			break;
		k->held[d] = malloc(len);
		if (!k->held[d])
			return -1;
		memcpy(k->held[d], b, len);
		k->held_len[d] = len;
		return 0;
	case A_REPLAY:
	case A_REPLAY_OLD: {
		struct frame_copy *set = a == A_REPLAY ? cur[d] : old[d];
		int n = a == A_REPLAY ? ncur[d] : nold[d];
		struct frame_copy *c;
		uint8_t *f;

		if (!n)
			break;
		c = &set[rnd() % (uint64_t)n];
		f = malloc(c->len);
		if (!f)
			return -1;
		memcpy(f, c->b, c->len);
		r = inject(k, d, f, c->len, b);
		free(f);
		put_be(b + 16, get_be(b + 16, 8) + 1, 8);
		break;
	}
	case A_TRUNC:
		if (!plen)
			break;
		put_be(b + 24, plen - 1, 4);
		memmove(b + len - QKD_FRAME_TAG_LEN - 1,
			b + len - QKD_FRAME_TAG_LEN, QKD_FRAME_TAG_LEN);
		len--;
		break;
	case A_FLIP: {
		size_t bit = (size_t)(rnd() % ((plen + QKD_FRAME_TAG_LEN) * 8));

		b[QKD_FRAME_HDR_LEN + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		break;
	}
	case A_FORGE: {
		size_t fl = (size_t)(rnd() % 257);
		uint8_t *f = calloc(1, QKD_FRAME_OVERHEAD + fl);

		if (!f)
			return -1;
		memcpy(f, b, QKD_FRAME_HDR_LEN);
		f[5] = (uint8_t)(1 + rnd() % QKD_MSG__MAX);
		put_be(f + 6, rnd() & 1 ? QKD_FRAME_F_DEFERRED : 0, 2);
		put_be(f + 24, fl, 4);
		for (size_t i = 0; i < fl + QKD_FRAME_TAG_LEN; i++)
			f[QKD_FRAME_HDR_LEN + i] = (uint8_t)rnd();
		r = inject(k, d, f, QKD_FRAME_OVERHEAD + fl, b);
		free(f);
		put_be(b + 16, get_be(b + 16, 8) + 1, 8);
		break;
	}
	case A_RESET:
		return -1;
	case A_FLOOD: {
		uint8_t *f = calloc(1, QKD_FRAME_MAX_LEN);

		if (!f)
			return -1;
		memcpy(f, b, QKD_FRAME_HDR_LEN);
		put_be(f + 6, QKD_FRAME_F_DEFERRED | QKD_FRAME_F_MORE, 2);
		put_be(f + 24, QKD_FRAME_MAX_PAYLOAD, 4);
		for (int i = 0; i < 8 && !r; i++) {
			r = inject(k, d, f, QKD_FRAME_MAX_LEN, b);
			put_be(b + 16, get_be(b + 16, 8) + 1, 8);
		}
		free(f);
		break;
	}
	default:
		break;
	}
	if (!r && a != A_REORDER && k->held[d]) {
		/* the held frame goes after this one, the sequence numbers
		 * swapped so that they still look in order */
		uint8_t s1[8], s2[8];

		memcpy(s1, k->held[d] + 16, 8);
		memcpy(s2, b + 16, 8);
		memcpy(b + 16, s1, 8);
		memcpy(k->held[d] + 16, s2, 8);
		r = write_full(out, b, len);
		if (!r)
			r = send_held(k, d);
	} else if (!r) {
		r = write_full(out, b, len);
	}
	return r ? -1 : 0;
}

static void logq_attack(const struct conn *k, int a, const uint8_t *h,
			const char *what)
{
	nattacks++;
	fprintf(stderr, "attack %lu: %s A->B conn %lu session %08x round %u pulses %llu detections %llu: %s\n",
		nattacks, names[a], nconn, k->sid, (unsigned int)qkd_get_le(h + 4, 4),
		(unsigned long long)qkd_get_le(h + 8, 8),
		(unsigned long long)qkd_get_le(h + 16, 8), what);
}

/* Flip Bob's bit (clicks 1 <-> 2) or his basis in a share of the events. */
static void q_alter(uint8_t *b, uint64_t cnt, double share, bool basis)
{
	for (uint64_t i = 0; i < cnt; i++) {
		uint8_t *e = b + QHDR_LEN + i * QEV_LEN;

		if ((double)(rnd() >> 11) / 9007199254740992.0 >= share)
			continue;
		if (basis)
			e[9] ^= 1;
		else if (e[8] == 1 || e[8] == 2)
			e[8] ^= 3;
	}
}

/* A chunk kept earlier (this connection's or older ones'), its round
 * rewritten to @round if @rewrite; -1 if there is none. */
static int q_replay(struct conn *k, bool older, bool rewrite, uint32_t round,
		    char *what, size_t wl)
{
	struct frame_copy *set = older ? qold : qcur, *c;
	int n = older ? nqold : nqcur, r;
	uint8_t *f;

	if (!n) {
		snprintf(what, wl, "nothing to replay yet");
		return 0;
	}
	c = &set[rnd() % (uint64_t)n];
	f = malloc(c->len);
	if (!f)
		return -1;
	memcpy(f, c->b, c->len);
	snprintf(what, wl, "a chunk of round %u%s inserted before it%s",
		 (unsigned int)qkd_get_le(f + 4, 4),
		 rewrite ? " relabelled as this round" : "",
		 rewrite || qkd_get_le(f + 4, 4) == round ?
		 " (stale detections for this round)" : "");
	if (rewrite)
		qkd_put_le(f + 4, round, 4);
	r = write_full(k->q[1], f, c->len);
	free(f);
	return r;
}

/*
 * Forward (or attack) one quantum chunk, Alice to Bob; -1: end the
 * connection. Variants of an attack are taken in turn (qmode), so that a
 * short run sees each.
 */
static int one_qchunk(struct conn *k)
{
	uint8_t h[QHDR_LEN], *b;
	uint64_t cnt, n;
	uint32_t round;
	size_t len;
	char what[160] = "";
	int a, r = 0, out = k->q[1];
	unsigned int m;

	if (read_full(k->q[0], h, QHDR_LEN))
		return -1;
	cnt = qkd_get_le(h + 16, 8);
	if (qkd_get_le(h, 4) != QMAGIC || cnt > QCNT_MAX)	/* not qkdd's */
		return write_full(out, h, QHDR_LEN);
	len = QHDR_LEN + (size_t)cnt * QEV_LEN;
	if (len > k->qcap) {
		b = realloc(k->qbuf, len);
		if (!b)
			return -1;
		k->qbuf = b;
		k->qcap = len;
	}
	b = k->qbuf;
	memcpy(b, h, QHDR_LEN);
	if (read_full(k->q[0], b + QHDR_LEN, len - QHDR_LEN))
		return -1;
	round = (uint32_t)qkd_get_le(h + 4, 4);
	n = qkd_get_le(h + 8, 8);
	a = pick(qenabled, nqenabled);
	if (a >= 0)	/* in turn, not at random: a short run sees each */
		a = qenabled[qturn++ % (unsigned int)nqenabled];
	m = a >= 0 ? qmode[a]++ : 0;
	/* a replay takes an earlier chunk; then this one is kept as it came */
	if (a == A_QREPLAY || a == A_QREPLAY_OLD) {
		r = q_replay(k, a == A_QREPLAY_OLD, m % 2, round, what,
			     sizeof(what));
		logq_attack(k, a, h, what);
	}
	keep_n(qcur, &nqcur, KEEPQ, b, len);
	switch (a) {
	case A_QDROP:
		logq_attack(k, a, h, "not sent");
		len = 0;
		break;
	case A_QTRUNC:
		if (m % 2 == 0) {
			size_t cut = (size_t)(rnd() % len);

			snprintf(what, sizeof(what), "cut after %zu of %zu bytes",
				 cut, len);
			len = cut;
		} else {
			uint64_t c2 = cnt ? rnd() % cnt : 0;

			snprintf(what, sizeof(what),
				 "detections %llu -> %llu, the rest not sent",
				 (unsigned long long)cnt,
				 (unsigned long long)c2);
			qkd_put_le(b + 16, c2, 8);
			len = QHDR_LEN + (size_t)c2 * QEV_LEN;
		}
		logq_attack(k, a, h, what);
		break;
	case A_QFLIP:
		switch (m % 4) {
		case 0: {
			int nf = 1 + (int)(rnd() % 8);

			for (int i = 0; cnt && i < nf; i++) {
				uint64_t bit = rnd() % (cnt * QEV_LEN * 8);

				b[QHDR_LEN + bit / 8] ^= (uint8_t)(1u << (bit % 8));
			}
			snprintf(what, sizeof(what), "%d random bits flipped", nf);
			break;
		}
		case 1:	/* a noisy channel: Cascade corrects it */
			q_alter(b, cnt, 0.01, false);
			snprintf(what, sizeof(what), "bit flipped in 1%% of the detections");
			break;
		case 2:	/* intercept-resend on every pulse */
			q_alter(b, cnt, 0.25, false);
			snprintf(what, sizeof(what), "bit flipped in 25%% of the detections (intercept-resend)");
			break;
		default:
			q_alter(b, cnt, 0.5, true);
			snprintf(what, sizeof(what), "basis flipped in 50%% of the detections");
			break;
		}
		logq_attack(k, a, h, what);
		break;
	case A_QHEADER:
		switch (m % 6) {
		case 0:
			qkd_put_le(b + 8, 1ull << 34, 8);
			snprintf(what, sizeof(what), "pulses %llu -> 2^34",
				 (unsigned long long)n);
			break;
		case 1:
			qkd_put_le(b + 8, 1ull << 34, 8);
			qkd_put_le(b + 16, 1ull << 34, 8);
			snprintf(what, sizeof(what), "pulses and detections -> 2^34");
			break;
		case 2: {
			uint32_t r2 = round + 1 + (uint32_t)(rnd() % 1000);

			qkd_put_le(b + 4, r2, 4);
			snprintf(what, sizeof(what), "round -> %u", r2);
			break;
		}
		case 3:
			qkd_put_le(b + 4, 0xffffffffu, 4);
			snprintf(what, sizeof(what), "round -> 2^32 - 1");
			break;
		case 4:
			b[rnd() % 4] ^= (uint8_t)(1u << (rnd() % 8));
			snprintf(what, sizeof(what), "magic altered");
			break;
		default:
			qkd_put_le(b + 8, n ? n - 1 : 0, 8);
			snprintf(what, sizeof(what), "pulses %llu -> %llu",
				 (unsigned long long)n,
				 (unsigned long long)(n ? n - 1 : 0));
			break;
		}
		logq_attack(k, a, h, what);
		break;
	case A_QDUP:
		logq_attack(k, a, h, "sent twice");
		r = write_full(out, b, len);
		break;
	case A_QRESET:
		logq_attack(k, a, h, "quantum connection reset, classical kept");
		reset_close(k->q[0]);
		reset_close(k->q[1]);
		k->q[0] = k->q[1] = -1;
		return 0;
	case A_QFLOOD: {
		uint8_t *f = malloc(len);
		int nf = 8;

		if (!f)
			return -1;
		if (m % 2 == 0) {
			/* well-framed chunks of round 0: Bob reads and skips
			 * each */
			memcpy(f, b, QHDR_LEN);
			qkd_put_le(f + 4, 0, 4);
			for (size_t i = QHDR_LEN; i < len; i++)
				f[i] = (uint8_t)rnd();
			for (int i = 0; i < nf && !r; i++)
				r = write_full(out, f, len);
			snprintf(what, sizeof(what),
				 "%d chunks of round 0 and %zu bytes before it",
				 nf, len);
		} else {
			/* garbage, and garbage to Alice, who never reads */
			size_t gl = len < 65536 ? 65536 : len;
			uint8_t *g = realloc(f, gl);

			if (!g) {
				free(f);
				return -1;
			}
			f = g;
			for (size_t i = 0; i < gl; i++)
				f[i] = (uint8_t)rnd();
			r = write_full(out, f, gl);
			for (int i = 0; i < 16; i++)
				if (send(k->q[0], f, gl < 65536 ? gl : 65536,
					 MSG_DONTWAIT | MSG_NOSIGNAL) <= 0)
					break;
			snprintf(what, sizeof(what),
				 "%zu random bytes before it, and to Alice", gl);
		}
		free(f);
		logq_attack(k, a, h, what);
		break;
	}
	default:
		break;
	}
	return r || (len && write_full(out, b, len)) ? -1 : 0;
}

static void run_conn(struct conn *k)
{
	uint8_t qb[65536];

	for (;;) {
		struct pollfd p[4] = {
			{ k->c[0], POLLIN, 0 }, { k->c[1], POLLIN, 0 },
			{ k->q[0], POLLIN, 0 }, { k->q[1], POLLIN, 0 },
		};
		int n = poll(p, 4, 200);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return;
		if (n == 0) {
			/* nothing came after a held frame: let it go */
			for (int d = 0; d < 2; d++)
				if (send_held(k, d))
					return;
			if (!stopped_logged && time(NULL) >= stop_at) {
				stopped_logged = true;
				fprintf(stderr, "attacker stops after %lu attacks\n",
					nattacks);
			}
			continue;
		}
		for (int d = 0; d < 2; d++) {
			if (p[d].revents && one_frame(k, d))
				return;
			if (!p[2 + d].revents || k->q[d] < 0)
				continue;
			if (d == 0) {
				/* Alice's detections for Bob, chunk by chunk */
				if (one_qchunk(k))
					return;
			} else {
				/* Bob sends nothing on it: as it comes */
				ssize_t r = read(k->q[d], qb, sizeof(qb));

				if (r <= 0 || write_full(k->q[1 - d], qb,
							 (size_t)r))
					return;
			}
		}
	}
}

static int parse_attacks(char *s)
{
	for (char *t = strtok(s, ","); t; t = strtok(NULL, ",")) {
		int a;

		for (a = 0; a < A__N && strcmp(t, names[a]); a++)
			;
		if (a == A__N) {
			fprintf(stderr, "qkdd_mitm: unknown attack %s\n", t);
			return -1;
		}
		if (a >= A_Q0)
			qenabled[nqenabled++] = a;
		else
			enabled[nenabled++] = a;
	}
	return nenabled || nqenabled ? 0 : -1;
}

int main(int argc, char **argv)
{
	unsigned int lport, tport;
	int lc, lq;
	struct conn k;

	if (argc != 7) {
		fprintf(stderr, "usage: qkdd_mitm LISTEN_PORT TARGET_PORT SEED ATTACK_SECONDS RATE ATTACKS\n");
		return 2;
	}
	lport = (unsigned int)strtoul(argv[1], NULL, 10);
	tport = (unsigned int)strtoul(argv[2], NULL, 10);
	rng_s = strtoull(argv[3], NULL, 10);
	stop_at = time(NULL) + strtol(argv[4], NULL, 10);
	rate = strtod(argv[5], NULL);
	if (parse_attacks(argv[6]))
		return 2;
	lc = listen_on(lport);
	lq = listen_on(lport + 1);
	if (lc < 0 || lq < 0) {
		perror("qkdd_mitm: listen");
		return 1;
	}
	memset(&k, 0, sizeof(k));
	k.buf = malloc(QKD_FRAME_MAX_LEN + 1);
	if (!k.buf)
		return 1;
	for (;;) {
		k.c[0] = accept4(lc, NULL, NULL, SOCK_CLOEXEC);
		k.c[1] = connect_to(tport);
		k.q[0] = accept4(lq, NULL, NULL, SOCK_CLOEXEC);
		k.q[1] = connect_to(tport + 1);
		memset(k.off, 0, sizeof(k.off));
		k.sid = 0;
		nconn++;
		if (k.c[0] >= 0 && k.c[1] >= 0 && k.q[0] >= 0 && k.q[1] >= 0)
			run_conn(&k);
		for (int d = 0; d < 2; d++) {
			free(k.held[d]);
			k.held[d] = NULL;
			reset_close(k.c[d]);
			reset_close(k.q[d]);
			/* this connection's frames become old ones */
			for (int i = 0; i < ncur[d]; i++) {
				keep(old[d], &nold[d], cur[d][i].b,
				     cur[d][i].len);
				free(cur[d][i].b);
				cur[d][i].b = NULL;
			}
			ncur[d] = 0;
		}
		for (int i = 0; i < nqcur; i++) {
			keep_n(qold, &nqold, KEEPQ, qcur[i].b, qcur[i].len);
			free(qcur[i].b);
			qcur[i].b = NULL;
		}
		nqcur = 0;
	}
}
