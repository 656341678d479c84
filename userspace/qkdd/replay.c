// SPDX-License-Identifier: GPL-2.0-only
/*
 * --replay FILE: recorded detections instead of the simulated quantum
 * channel (Documentation/protocol.md, "Recorded detections"). Each end
 * reads its own file of the recording -- Alice her bit, basis and class
 * of every pulse slot, Bob his detections -- in windows of the round's
 * pulse count, forward only. Alice names each round's window on the
 * quantum connection (quantum_send_window(): the first slot and the
 * count, nothing secret); Bob reads the detections of that window from
 * his file, and the round goes on as with the simulated link: sifting,
 * estimation, Cascade, verification, privacy amplification, unchanged.
 *
 * The files are secrets (Alice's choices, Bob's raw key): opened as the
 * PSK is (qkd_tt_open_path()), every buffer wiped, no bit logged.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/timetag.h"
#include "session.h"

int replay_open(struct qkdd *q)
{
	const struct qkdd_opts *o = q->o;
	enum qkd_tt_end end = o->role == QKDD_ALICE ? QKD_TT_ALICE
						    : QKD_TT_BOB;
	struct qkd_tt_reader *r;

	if (!o->replay[0] || o->key_source != QKDD_SRC_BB84)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	if (qkd_tt_open_path(r, o->replay, end)) {
		qerr("replay: %s", r->err);
		goto fail;
	}
	if (r->h.classes != o->ch.n_intensities) {
		qerr("replay %s: the recording has %u intensity classes, the configured source %u (--channel mu=...): describe the recorded source",
		     o->replay, r->h.classes, o->ch.n_intensities);
		goto fail;
	}
	q->replay = r;
	qlog("replaying %s: %s of %" PRIu64 " pulse slots, %" PRIu64 " records, %u intensity classes, %" PRIu64 " Hz",
	     o->replay, end == QKD_TT_ALICE ? "Alice's choices" :
	     "Bob's detections", r->h.pulses, r->h.records, r->h.classes,
	     r->h.rate_hz);
	qwarn("a recording gives its raw key once: every start replays it from its first pulse, and the keys of a second replay are not independent of the first's: give each run a fresh recording");
	return 0;
fail:
	qkd_tt_close(r);
	free(r);
	return -EINVAL;
}

void replay_close(struct qkdd *q)
{
	if (!q->replay)
		return;
	qkd_tt_close(q->replay);
	explicit_bzero(q->replay, sizeof(*q->replay));
	free(q->replay);
	q->replay = NULL;
}

bool replay_exhausted(const struct qkdd *q, uint64_t npulses)
{
	const struct qkd_tt_reader *r = q->replay;

	return r && (npulses > r->h.pulses || r->pos > r->h.pulses - npulses);
}

/* A refusal of the file: the reason, and the daemon stops (-EPERM). */
static int file_fail(struct qkdd *q, int r)
{
	if (r == -ENOMEM)
		return r;
	qerr("replay %s: %s", q->o->replay,
	     r == -ERANGE ? "no full round left in the recording" :
	     q->replay->err[0] ? q->replay->err : strerror(-r));
	return -EPERM;
}

int replay_alice(struct qkdd *q, uint64_t npulses,
		 struct qkd_alice_records *a)
{
	uint64_t first = q->replay->pos;
	int r;

	r = qkd_alice_records_alloc(a, (size_t)npulses);
	if (r)
		return r;
	r = qkd_tt_alice_window(q->replay, first, a);
	if (r)
		return file_fail(q, r);
	qdebug("replay: pulse slots [%" PRIu64 ", %" PRIu64 ") of %" PRIu64,
	       first, first + npulses, q->replay->h.pulses);
	r = quantum_send_window(q->qfd, q->round, first, npulses);
	if (r) {
		qlog("the quantum connection failed: %s", strerror(-r));
		return -ECONNRESET;
	}
	return 0;
}

int replay_bob(struct qkdd *q, uint64_t first, uint64_t npulses,
	       struct qkd_detections *d)
{
	int r = qkd_tt_bob_window(q->replay, first, npulses, d);

	if (r == -EINVAL) {
		/* Alice's windows only go forward: no qkdd sends it */
		qlog("quantum channel: the window [%" PRIu64 ", %" PRIu64 ") starts before slot %" PRIu64 ", which this end has replayed: refused",
		     first, first + npulses, q->replay->pos);
		return -EPROTO;
	}
	if (r == -ERANGE) {
		/*
		 * Not fatal: the window came over the unauthenticated
		 * quantum connection, and what an attacker can send must
		 * not stop the daemon.
		 */
		qerr("replay %s: Alice's window [%" PRIu64 ", %" PRIu64 ") goes past this recording's %" PRIu64 " pulse slots: the two ends' files are not of one recording, or the window was forged",
		     q->o->replay, first, first + npulses,
		     q->replay->h.pulses);
		return -EPROTO;
	}
	return r ? file_fail(q, r) : 0;
}
