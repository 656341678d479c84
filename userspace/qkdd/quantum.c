// SPDX-License-Identifier: GPL-2.0-only
/*
 * The simulated quantum channel: source optics, fiber, eavesdropper and
 * Bob's detectors, as its own thread with its own socket pair.
 *
 * Alice's session writes each round's pulse records (bit, basis,
 * intensity: what drives the modulators) into the socket pair; the fiber
 * thread runs qkd_channel_transmit() and writes the resulting detection
 * events -- pulse index, which detector clicked, Bob's basis setting,
 * nothing else -- to the quantum TCP connection towards Bob. Bob's process
 * therefore never holds Alice's bits or bases: it learns her bases only
 * through sifting, on the classical channel. With hardware this file is
 * replaced by the source driver (Alice) and the time tagger (Bob).
 *
 * Quantum wire format (little endian): "QKDQ", u32 round, u64 pulses,
 * u64 detections, then per detection u64 pulse, u8 clicks, u8 basis, the
 * pulse indices strictly increasing (Bob refuses a chunk otherwise).
 * With --replay (replay.c) only the round's window of the recordings
 * travels: "QKDR", u32 round, u64 pulses, u64 first pulse slot.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/frame.h"
#include "qkd/le.h"
#include "qkd/secmem.h"
#include "qkdd.h"

#define QMAGIC		0x51444b51u	/* "QKDQ" little endian */
#define QMAGIC_REPLAY	0x52444b51u	/* "QKDR": --replay's windows */
#define QHDR_LEN	24
#define QEV_LEN		10

struct fiber_req {
	uint32_t magic;
	uint32_t round;
	int32_t qfd;			/* -1: stop the thread */
	uint32_t pad;
	uint64_t n;
	/*
	 * sampling=detections: Alice's records (empty, this process's
	 * memory: the thread appends those of the detected pulses while
	 * Alice waits for its answer); NULL: the records follow on the socket
	 */
	struct qkd_det_records *gen;
};

struct fiber {
	pthread_t th;
	int sv[2];			/* [0] Alice, [1] the fiber */
	struct qkd_channel_params p;
	/* Alice's choices (sampling=detections): OpenSSL's DRBG, 4 KiB a
	 * call (or from --seed) */
	struct qkd_rng rng;
	/*
	 * The optics (loss, Eve, Bob's basis and detectors): xoshiro256**,
	 * 256 bits of getrandom() a round (or from --seed). Simulated
	 * physics, not key material of either end: a kernel ChaCha draw
	 * for each of its ~7 numbers a detection was a fifth of the
	 * daemons' CPU time (bench_throughput, perf).
	 */
	struct qkd_rng phys;
	bool seeded;
};

/* A fresh state for the optics' generator, from getrandom(). */
static int phys_reseed(struct fiber *f)
{
	struct qkd_rng os;
	int r;

	if (f->seeded)
		return 0;
	r = qkd_rng_os(&os);
	if (r)
		return r;
	memset(&f->phys, 0, sizeof(f->phys));
	do
		for (int i = 0; i < 4; i++)
			f->phys.s[i] = qkd_rng_u64(&os);
	while (!(f->phys.s[0] | f->phys.s[1] | f->phys.s[2] | f->phys.s[3]));
	explicit_bzero(&os, sizeof(os));
	return 0;
}

static int fiber_round(struct fiber *f, const struct fiber_req *rq)
{
	struct qkd_alice_records a;
	struct qkd_detections d = { 0 };
	struct qkd_channel_stats st;
	size_t nw = qkd_bits_words(rq->n), len;
	uint8_t *out;
	int r;

	r = phys_reseed(f);
	if (r)
		return r;
	if (rq->gen) {
		/* the source and the optics, sampled per detection */
		r = qkd_channel_generate_sparse(&f->p, &f->phys, &f->rng,
						rq->n, rq->gen, &d, &st);
		goto events;
	}
	if (qkd_alice_records_alloc(&a, rq->n))
		return -ENOMEM;
	r = frame_read_all(f->sv[1], a.bit, nw * 8);
	if (!r)
		r = frame_read_all(f->sv[1], a.basis, nw * 8);
	if (!r)
		r = frame_read_all(f->sv[1], a.intensity, rq->n);
	if (r) {
		qkd_alice_records_free(&a);
		return -EIO;
	}
	r = qkd_channel_transmit(&f->p, &f->phys, &a, &d, &st);
	qkd_alice_records_free(&a);
events:
	if (r) {
		qkd_detections_free(&d);
		return r;
	}
	len = QHDR_LEN + d.count * QEV_LEN;
	out = qkd_secmem_alloc(len);
	if (!out) {
		qkd_detections_free(&d);
		return -ENOMEM;
	}
	qkd_put_le(out, QMAGIC, 4);
	qkd_put_le(out + 4, rq->round, 4);
	qkd_put_le(out + 8, rq->n, 8);
	qkd_put_le(out + 16, d.count, 8);
	for (size_t i = 0; i < d.count; i++) {
		uint8_t *e = out + QHDR_LEN + i * QEV_LEN;

		/* eve_knows is simulation ground truth: never sent */
		qkd_put_le(e, d.ev[i].pulse, 8);
		e[8] = d.ev[i].clicks;
		e[9] = d.ev[i].basis;
	}
	qkd_detections_free(&d);
	r = frame_write_all(rq->qfd, out, len) ? -EPIPE : 0;
	qkd_secmem_free(out, len);	/* Bob's clicks: his raw key */
	return r;
}

/* The fiber's answer to a round: its result, and the CPU time the fiber
 * thread spent on it (charged to the quantum stage, cpu.c). */
struct fiber_ans {
	int32_t res;
	uint32_t pad;
	double cpu;
};

static void *fiber_main(void *arg)
{
	struct fiber *f = arg;

	for (;;) {
		struct fiber_req rq;
		struct fiber_ans ans = { 0 };
		double c0;

		if (frame_read_all(f->sv[1], &rq, sizeof(rq)) ||
		    rq.magic != QMAGIC || rq.qfd < 0)
			break;
		c0 = qkdd_thread_cpu();
		ans.res = fiber_round(f, &rq);
		ans.cpu = qkdd_thread_cpu() - c0;
		if (frame_write_all(f->sv[1], &ans, sizeof(ans)))
			break;
	}
	return NULL;
}

struct fiber *fiber_start(const struct qkd_channel_params *p, uint64_t seed,
			  bool seeded)
{
	struct fiber *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->p = *p;
	f->seeded = seeded;
	if (seeded) {
		qkd_rng_seed(&f->rng, seed ^ 0x66696265726c696eull);
		qkd_rng_seed(&f->phys, seed ^ 0x6f70746963730a00ull);
	} else if (qkd_rng_drbg(&f->rng)) {
		goto fail;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, f->sv))
		goto fail;
	if (pthread_create(&f->th, NULL, fiber_main, f)) {
		close(f->sv[0]);
		close(f->sv[1]);
		goto fail;
	}
	return f;
fail:
	free(f);
	return NULL;
}

void fiber_stop(struct fiber *f)
{
	struct fiber_req rq = { .magic = QMAGIC, .qfd = -1 };

	if (!f)
		return;
	frame_write_all(f->sv[0], &rq, sizeof(rq));
	shutdown(f->sv[0], SHUT_WR);
	pthread_join(f->th, NULL);
	close(f->sv[0]);
	close(f->sv[1]);
	explicit_bzero(&f->rng, sizeof(f->rng));
	explicit_bzero(&f->phys, sizeof(f->phys));
	free(f);
}

int fiber_send(struct fiber *f, int qfd, uint32_t round,
	       const struct qkd_alice_records *a)
{
	struct fiber_req rq = {
		.magic = QMAGIC, .round = round, .qfd = qfd, .n = a->n,
	};
	size_t nw = qkd_bits_words(a->n);
	struct fiber_ans ans;

	if (frame_write_all(f->sv[0], &rq, sizeof(rq)) ||
	    frame_write_all(f->sv[0], a->bit, nw * 8) ||
	    frame_write_all(f->sv[0], a->basis, nw * 8) ||
	    frame_write_all(f->sv[0], a->intensity, a->n))
		return -EPIPE;
	/* Wait until the detections are out, so qfd is not closed under
	 * the thread's feet. */
	if (frame_read_all(f->sv[0], &ans, sizeof(ans)))
		return -EPIPE;
	stage_add(QS_QUANTUM, ans.cpu);
	return ans.res;
}

int fiber_generate(struct fiber *f, int qfd, uint32_t round,
		   uint64_t npulses, struct qkd_det_records *a)
{
	struct fiber_req rq = {
		.magic = QMAGIC, .round = round, .qfd = qfd, .n = npulses,
		.gen = a,
	};
	struct fiber_ans ans;

	if (frame_write_all(f->sv[0], &rq, sizeof(rq)) ||
	    frame_read_all(f->sv[0], &ans, sizeof(ans)))
		return -EPIPE;
	stage_add(QS_QUANTUM, ans.cpu);
	return ans.res;
}

/*
 * The next chunk's header, within timeout_s: 0, -ETIMEDOUT, -ENOTCONN
 * (the peer closed the connection), -EPIPE or peer_wait()'s error.
 */
static int quantum_read_hdr(int qfd, unsigned int timeout_s,
			    uint8_t hdr[QHDR_LEN])
{
	int w = peer_wait(qfd, timeout_s, true);

	if (w < 0)
		return w;
	if (w == 0)
		return -ETIMEDOUT;
	w = frame_read_all(qfd, hdr, QHDR_LEN);
	if (w == QKD_FRAME_E_EOF)
		return -ENOTCONN;
	return w ? -EPIPE : 0;
}

int quantum_recv(int qfd, uint32_t *round, unsigned int timeout_s,
		 uint64_t pulses, uint64_t max_det,
		 struct qkd_detections *d, uint64_t *npulses)
{
	uint8_t hdr[QHDR_LEN];

	for (;;) {
		uint64_t n, cnt;
		uint32_t rr;
		uint8_t *buf;
		size_t blen;
		int w = quantum_read_hdr(qfd, timeout_s, hdr);

		if (w)
			return w;
		rr = (uint32_t)qkd_get_le(hdr + 4, 4);
		n = qkd_get_le(hdr + 8, 8);
		cnt = qkd_get_le(hdr + 16, 8);
		/*
		 * Nothing on this link is authenticated: allocate only what a
		 * round of our configuration needs, and refuse what Alice's
		 * fiber never sends -- another magic, another pulse count than
		 * the agreed one, a round after the next (within a connection
		 * her rounds are 1, 2, 3, ..., one chunk each).
		 */
		if (qkd_get_le(hdr, 4) == QMAGIC_REPLAY) {
			qlog("quantum channel: the peer replays a recording (--replay) and this end simulates the link: configure both ends alike");
			return -EPROTO;
		}
		if (qkd_get_le(hdr, 4) != QMAGIC) {
			qlog("quantum channel: a chunk with the magic %08x, not QKDQ: refused",
			     (unsigned int)qkd_get_le(hdr, 4));
			return -EPROTO;
		}
		if (n != pulses || cnt > n || cnt > max_det) {
			qlog("quantum channel: a round of %" PRIu64 " pulses and %" PRIu64 " detections, not the %" PRIu64 " pulses and at most %" PRIu64 " detections the configuration makes: refused",
			     n, cnt, pulses, max_det);
			return -EPROTO;
		}
		if (rr > *round) {
			qlog("quantum channel: detections for round %u, the next round is %u: refused",
			     rr, *round);
			return -EPROTO;
		}
		blen = cnt * QEV_LEN;
		buf = qkd_secmem_alloc(blen);
		if (!buf)
			return -ENOMEM;
		if (frame_read_all(qfd, buf, blen)) {
			qkd_secmem_free(buf, blen);
			return -EPIPE;
		}
		if (rr < *round) {
			qkd_secmem_free(buf, blen);
			qdebug("skipping detections of old round %u", rr);
			continue;
		}
		memset(d, 0, sizeof(*d));
		if (qkd_detections_reserve(d, cnt ? cnt : 1)) {
			qkd_secmem_free(buf, blen);
			return -ENOMEM;
		}
		d->count = cnt;
		for (uint64_t i = 0; i < cnt; i++) {
			const uint8_t *e = buf + i * QEV_LEN;

			d->ev[i].pulse = qkd_get_le(e, 8);
			d->ev[i].clicks = e[8];
			d->ev[i].basis = e[9];
			if (d->ev[i].pulse >= n || !e[8] || e[8] > 3 ||
			    e[9] > 1 ||
			    (i && d->ev[i].pulse <= d->ev[i - 1].pulse)) {
				/* clicks and basis are Bob's raw key: not logged */
				qlog("quantum channel: detection %" PRIu64 " of %" PRIu64 " malformed (pulse index out of range or not after the previous one, clicks or basis out of range): refused",
				     i, cnt);
				qkd_secmem_free(buf, blen);
				qkd_detections_free(d);
				return -EPROTO;
			}
		}
		qkd_secmem_free(buf, blen);	/* the clicks: Bob's raw key */
		*npulses = n;
		*round = rr;
		return 0;
	}
}

int quantum_send_window(int qfd, uint32_t round, uint64_t first,
			uint64_t pulses)
{
	uint8_t hdr[QHDR_LEN];

	qkd_put_le(hdr, QMAGIC_REPLAY, 4);
	qkd_put_le(hdr + 4, round, 4);
	qkd_put_le(hdr + 8, pulses, 8);
	qkd_put_le(hdr + 16, first, 8);
	return frame_write_all(qfd, hdr, sizeof(hdr)) ? -EPIPE : 0;
}

int quantum_recv_window(int qfd, uint32_t *round, unsigned int timeout_s,
			uint64_t pulses, uint64_t *first)
{
	uint8_t hdr[QHDR_LEN];

	for (;;) {
		uint64_t n;
		uint32_t rr, magic;
		int w = quantum_read_hdr(qfd, timeout_s, hdr);

		if (w)
			return w;
		magic = (uint32_t)qkd_get_le(hdr, 4);
		rr = (uint32_t)qkd_get_le(hdr + 4, 4);
		n = qkd_get_le(hdr + 8, 8);
		if (magic == QMAGIC) {
			qlog("quantum channel: the peer simulates the link and this end replays a recording (--replay): configure both ends alike");
			return -EPROTO;
		}
		if (magic != QMAGIC_REPLAY) {
			qlog("quantum channel: a chunk with the magic %08x, not QKDR: refused",
			     (unsigned int)magic);
			return -EPROTO;
		}
		if (n != pulses) {
			qlog("quantum channel: a window of %" PRIu64 " pulses, not the %" PRIu64 " of the agreed round: refused",
			     n, pulses);
			return -EPROTO;
		}
		if (rr > *round) {
			qlog("quantum channel: the window of round %u, the next round is %u: refused",
			     rr, *round);
			return -EPROTO;
		}
		if (rr < *round) {
			qdebug("skipping the window of old round %u", rr);
			continue;
		}
		*first = qkd_get_le(hdr + 16, 8);
		return 0;
	}
}
