// SPDX-License-Identifier: GPL-2.0-only
/*
 * The simulated quantum channel: source optics, fiber, eavesdropper and
 * Bob's detectors, as its own thread with its own socket pair.
 *
 * Alice's session writes each round's pulse records (bit, basis,
 * intensity: what drives the modulators) into the socket pair; the fiber
 * thread runs qkd_channel_transmit() and writes the resulting detection
 * events -- pulse index, which detector clicked, Bob's basis setting,
 * nothing else -- to the quantum TCP connection towards Bob. With
 * sampling=detections the thread samples the detected pulses only, and
 * does so for the round ahead while Alice's session runs the classical
 * part of the current one (FIBER_PREPARE, then FIBER_SEND when that round
 * begins): the two cores share the work, and nothing reaches Bob before
 * Alice begins the round, so the wire is what it was. Bob's process
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

/* What Alice asks of the fiber thread. */
enum fiber_op {
	FIBER_STOP,
	FIBER_RECORDS,		/* sampling=pulses: the records follow */
	FIBER_PREPARE,		/* sampling=detections: sample a round */
	FIBER_SEND,		/* the prepared round out on qfd */
	FIBER_DROP,		/* the prepared round wiped, never sent */
};

struct fiber_req {
	uint32_t magic;
	uint32_t round;
	int32_t qfd;
	uint32_t op;			/* enum fiber_op */
	uint64_t n;
	/*
	 * FIBER_PREPARE: Alice's records (empty, this process's memory: the
	 * thread appends those of the detected pulses while Alice does not
	 * touch them, until she has its answer)
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
	/*
	 * The fiber thread's: a prepared round's detections as the quantum
	 * wire has them (round field written when sent), or none
	 */
	uint8_t *ready;
	size_t ready_len;
	/* Alice's session thread's: a FIBER_PREPARE not yet answered */
	bool posted;
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

/* The detections @d as the quantum wire has them, into f->ready. */
static int fiber_serialize(struct fiber *f, uint64_t npulses,
			   const struct qkd_detections *d)
{
	size_t len = QHDR_LEN + d->count * QEV_LEN;
	uint8_t *out = qkd_secmem_alloc(len);

	if (!out)
		return -ENOMEM;
	qkd_put_le(out, QMAGIC, 4);
	qkd_put_le(out + 8, npulses, 8);
	qkd_put_le(out + 16, d->count, 8);
	for (size_t i = 0; i < d->count; i++) {
		uint8_t *e = out + QHDR_LEN + i * QEV_LEN;

		/* eve_knows is simulation ground truth: never sent */
		qkd_put_le(e, d->ev[i].pulse, 8);
		e[8] = d->ev[i].clicks;
		e[9] = d->ev[i].basis;
	}
	f->ready = out;
	f->ready_len = len;
	return 0;
}

static void fiber_drop(struct fiber *f)
{
	qkd_secmem_free(f->ready, f->ready_len);	/* Bob's clicks */
	f->ready = NULL;
	f->ready_len = 0;
}

/* The prepared round out on @qfd as round @round, and gone here. */
static int fiber_send_ready(struct fiber *f, int qfd, uint32_t round)
{
	int r;

	if (!f->ready)
		return -EINVAL;
	qkd_put_le(f->ready + 4, round, 4);
	r = frame_write_all(qfd, f->ready, f->ready_len) ? -EPIPE : 0;
	fiber_drop(f);
	return r;
}

/* sampling=detections: the source and the optics, per detection */
static int fiber_prepare(struct fiber *f, const struct fiber_req *rq)
{
	struct qkd_detections d = { 0 };
	struct qkd_channel_stats st;
	int r;

	fiber_drop(f);
	r = phys_reseed(f);
	if (!r)
		r = qkd_channel_generate_sparse(&f->p, &f->phys, &f->rng,
						rq->n, rq->gen, &d, &st);
	if (!r)
		r = fiber_serialize(f, rq->n, &d);
	qkd_detections_free(&d);
	return r;
}

/* sampling=pulses: Alice's records of every pulse in, detections out */
static int fiber_records(struct fiber *f, const struct fiber_req *rq)
{
	struct qkd_alice_records a;
	struct qkd_detections d = { 0 };
	struct qkd_channel_stats st;
	size_t nw = qkd_bits_words(rq->n);
	int r;

	fiber_drop(f);
	r = phys_reseed(f);
	if (r)
		return r;
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
	if (!r)
		r = fiber_serialize(f, rq->n, &d);
	qkd_detections_free(&d);
	if (!r)
		r = fiber_send_ready(f, rq->qfd, rq->round);
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
		    rq.magic != QMAGIC || rq.op == FIBER_STOP)
			break;
		c0 = qkdd_thread_cpu();
		switch (rq.op) {
		case FIBER_RECORDS:
			ans.res = fiber_records(f, &rq);
			break;
		case FIBER_PREPARE:
			ans.res = fiber_prepare(f, &rq);
			break;
		case FIBER_SEND:
			ans.res = fiber_send_ready(f, rq.qfd, rq.round);
			break;
		case FIBER_DROP:
			fiber_drop(f);
			break;
		default:
			ans.res = -EINVAL;
		}
		ans.cpu = qkdd_thread_cpu() - c0;
		if (frame_write_all(f->sv[1], &ans, sizeof(ans)))
			break;
	}
	fiber_drop(f);
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
	struct fiber_req rq = { .magic = QMAGIC, .op = FIBER_STOP };

	if (!f)
		return;
	fiber_cancel(f);
	frame_write_all(f->sv[0], &rq, sizeof(rq));
	shutdown(f->sv[0], SHUT_WR);
	pthread_join(f->th, NULL);
	close(f->sv[0]);
	close(f->sv[1]);
	explicit_bzero(&f->rng, sizeof(f->rng));
	explicit_bzero(&f->phys, sizeof(f->phys));
	free(f);
}

/* One request to the fiber thread and its answer; -EPIPE if it is gone. */
static int fiber_call(struct fiber *f, const struct fiber_req *rq)
{
	struct fiber_ans ans;

	if (frame_write_all(f->sv[0], rq, sizeof(*rq)) ||
	    frame_read_all(f->sv[0], &ans, sizeof(ans)))
		return -EPIPE;
	stage_add(QS_QUANTUM, ans.cpu);
	return ans.res;
}

int fiber_send(struct fiber *f, int qfd, uint32_t round,
	       const struct qkd_alice_records *a)
{
	struct fiber_req rq = {
		.magic = QMAGIC, .op = FIBER_RECORDS, .round = round,
		.qfd = qfd, .n = a->n,
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

int fiber_prepare_post(struct fiber *f, uint64_t npulses,
		       struct qkd_det_records *a)
{
	struct fiber_req rq = {
		.magic = QMAGIC, .op = FIBER_PREPARE, .n = npulses, .gen = a,
	};

	if (f->posted)
		return -EBUSY;
	if (frame_write_all(f->sv[0], &rq, sizeof(rq)))
		return -EPIPE;
	f->posted = true;
	return 0;
}

int fiber_prepare_wait(struct fiber *f)
{
	struct fiber_ans ans;

	if (!f->posted)
		return -EINVAL;
	f->posted = false;
	if (frame_read_all(f->sv[0], &ans, sizeof(ans)))
		return -EPIPE;
	stage_add(QS_QUANTUM, ans.cpu);
	return ans.res;
}

int fiber_send_prepared(struct fiber *f, int qfd, uint32_t round)
{
	struct fiber_req rq = {
		.magic = QMAGIC, .op = FIBER_SEND, .round = round, .qfd = qfd,
	};

	/* answered once the detections are out: qfd stays open until then */
	return fiber_call(f, &rq);
}

int fiber_cancel(struct fiber *f)
{
	struct fiber_req rq = { .magic = QMAGIC, .op = FIBER_DROP };
	int r = 0;

	if (f->posted && fiber_prepare_wait(f) == -EPIPE)
		r = -EPIPE;
	if (!r)
		r = fiber_call(f, &rq);
	return r;
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

/* Events read and checked a slice at a time, as they arrive. */
#define QEV_SLICE	4096

/* @len bytes of an old round's chunk read and dropped. */
static int quantum_skip(int qfd, uint64_t len)
{
	uint8_t buf[QEV_SLICE];
	int r = 0;

	while (len && !r) {
		size_t k = len < sizeof(buf) ? (size_t)len : sizeof(buf);

		r = frame_read_all(qfd, buf, k) ? -EPIPE : 0;
		len -= k;
	}
	explicit_bzero(buf, sizeof(buf));	/* Bob's clicks */
	return r;
}

/*
 * The @cnt events of a chunk of @n pulses into @d (room for them
 * reserved), decoded slice by slice while Alice's fiber still writes the
 * rest: no copy of the whole chunk in between.
 */
static int quantum_read_events(int qfd, uint64_t n, uint64_t cnt,
			       struct qkd_detections *d)
{
	uint8_t buf[QEV_SLICE * QEV_LEN];
	uint64_t i = 0;
	int r = 0;

	while (i < cnt && !r) {
		uint64_t k = cnt - i < QEV_SLICE ? cnt - i : QEV_SLICE;

		if (frame_read_all(qfd, buf, k * QEV_LEN)) {
			r = -EPIPE;
			break;
		}
		for (uint64_t j = 0; j < k; j++, i++) {
			const uint8_t *e = buf + j * QEV_LEN;
			struct qkd_detection *ev = &d->ev[i];

			ev->pulse = qkd_get_le(e, 8);
			ev->clicks = e[8];
			ev->basis = e[9];
			if (ev->pulse >= n || !e[8] || e[8] > 3 || e[9] > 1 ||
			    (i && ev->pulse <= ev[-1].pulse)) {
				/* clicks and basis are Bob's raw key: not logged */
				qlog("quantum channel: detection %" PRIu64 " of %" PRIu64 " malformed (pulse index out of range or not after the previous one, clicks or basis out of range): refused",
				     i, cnt);
				r = -EPROTO;
				break;
			}
		}
	}
	explicit_bzero(buf, sizeof(buf));	/* Bob's clicks */
	d->count = r ? 0 : cnt;
	return r;
}

int quantum_recv(int qfd, uint32_t *round, unsigned int timeout_s,
		 uint64_t pulses, uint64_t max_det,
		 struct qkd_detections *d, uint64_t *npulses)
{
	uint8_t hdr[QHDR_LEN];

	for (;;) {
		uint64_t n, cnt;
		uint32_t rr;
		int r, w = quantum_read_hdr(qfd, timeout_s, hdr);

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
		if (rr < *round) {
			qdebug("skipping detections of old round %u", rr);
			r = quantum_skip(qfd, cnt * QEV_LEN);
			if (r)
				return r;
			continue;
		}
		memset(d, 0, sizeof(*d));
		if (qkd_detections_reserve(d, cnt ? cnt : 1))
			return -ENOMEM;
		r = quantum_read_events(qfd, n, cnt, d);
		if (r) {
			qkd_detections_free(d);
			return r;
		}
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
