// SPDX-License-Identifier: GPL-2.0-only
/*
 * Alice's round: she sends the pulses, answers Bob's sifting and
 * estimation messages (the privacy amplification seed goes before her
 * sample), answers Cascade or LDPC, checks his verification hash, picks
 * the secret length, and commits the block after Bob (two-phase commit).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/cascade.h"
#include "qkd/estimate.h"
#include "qkd/frame.h"
#include "qkd/privacy_amp.h"
#include "qkd/sifting.h"
#include "qkd/verify.h"
#include "session.h"

#define MIN_TAGS	64
/* Tags of a round after Alice fixes its withheld bytes: PA_SEED, COMMIT,
 * and the echo of COMMIT. */
#define TAGS_AFTER_PA	3

/*
 * The two-phase commit of a round's block (R->bytes: @auth_len withheld
 * bytes, then @count keys; R->charge_to): the pending record on disk,
 * KEY_COMMIT, Bob's echo (he has pushed), then our push and the reserve.
 * Both key sources end their rounds with it.
 */
int alice_commit(struct qkdd *q, struct round *R, uint32_t auth_len,
		 uint32_t count, uint64_t id)
{
	struct wbuf w = { 0 };
	uint8_t type;
	int r;

	/* two-phase commit: Bob pushes first, then we do */
	stage_switch(QS_PUSH);
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
	r = commit_authenticated(q);
	if (r)
		goto out;
	r = store_push(q->st, q->pend.first, q->pend.data + auth_len, count);
	if (r) {
		qlog("the peer holds block [%" PRIu64 ", %" PRIu64 ") but we cannot push it: reconnecting to recover",
		     q->pend.first, q->pend.first + count);
		r = -ECONNRESET;
		goto out;
	}
	stage_switch(QS_AUTH);
	r = reserve_add(q, q->pend.data, auth_len);
	if (r)
		goto out;
	maybe_retire(q);
	stage_switch(QS_PUSH);
	if (auth_spent(q) != R->charge_to)
		qdebug("pads spent %" PRIu64 ", charged %" PRIu64,
		       auth_spent(q), R->charge_to);
	q->charged = R->charge_to;
	finish_round(R, auth_len, count, q->pend.first);
	q->next_index = q->pend.first + count;
	pending_clear(&q->pend);
	/* pause.c: what the next round may make, and Bob's room for it */
	if (count)
		q->last_count = count;
	q->peer_room = q->peer_room > count ? q->peer_room - count : 0;
	if (state_save(q)) {
		r = -EPERM;
		goto out;
	}
	r = 0;
out:
	stage_switch(QS_OTHER);
	wb_free(&w);
	return r;
}

/* Does Bob announce exactly the detections of our records? */
static bool same_pulses(const struct qkd_det_records *d,
			const struct qkd_sift_announce *an)
{
	if (d->n != an->n)
		return false;
	for (size_t i = 0; i < d->n; i++)
		if (d->r[i].pulse != an->pulse[i])
			return false;
	return true;
}

/*
 * Cascade: answer Bob's requests until his VERIFY_HASH (left in q->msg,
 * *type). The time from an answer to Bob's next request is an RTT sample.
 */
static int alice_cascade(struct qkdd *q, struct round *R,
			 const struct qkd_cascade_params *cp, uint8_t *type)
{
	struct qkd_cascade_alice *ca = NULL;
	struct qkd_cascade_msg out = { 0 };
	struct qkd_cascade_stats cs;
	double answered = 0;
	int r;

	R->ec_t0 = ec_now();
	ca = qkd_cascade_alice_new(cp, (const uint64_t *const *)R->frames);
	if (!ca) {
		round_abort(q, R, QKD_ABORT_INTERNAL, "Cascade setup failed");
		r = 1;
		goto out;
	}
	for (;;) {
		/* our answer to Bob's next request: RTT and his work */
		r = ec_recv(q, R, (1u << QKD_MSG_CASCADE_REQ) |
				  (1u << QKD_MSG_VERIFY_HASH), type, answered);
		if (r)
			goto out;
		if (*type == QKD_MSG_VERIFY_HASH)
			break;
		if (qkd_cascade_alice_handle(ca, q->msg, q->msg_len, &out)) {
			/*
			 * Not authenticated yet, and no honest peer sends
			 * it: an attack like bad framing -- the alarm and
			 * the back-off, and the round aborted at once.
			 */
			auth_strike(q, "malformed Cascade request");
			round_abort(q, R, QKD_ABORT_PROTOCOL,
				    "malformed Cascade request");
			r = 1;
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
		answered = ec_now();
	}
	qkd_cascade_alice_stats(ca, &cs);
	R->rs.cascade_rounds = cs.rounds;
	R->rs.ec_roundtrips = cs.rounds;
	R->leak_ec = (double)cs.disclosed_bits;
	r = 0;
out:
	qkd_cascade_alice_free(ca);
	qkd_cascade_msg_free(&out);
	return r;
}

/*
 * sampling=detections: the next round's sampling started on the fiber
 * thread, to run on the other core while this round's classical part runs
 * here -- unless no next round on this connection would use it.
 */
static void alice_prepare_next(struct qkdd *q, uint64_t npulses)
{
	if ((q->o->rounds && q->rounds_done + 1 >= q->o->rounds) ||
	    qkdd_stopping())
		return;
	if (!fiber_prepare_post(q->fib, npulses, &q->next_det))
		q->next_pulses = npulses;
}

/*
 * sampling=detections: this round's detections out to Bob, and Alice's
 * records of them in @ga (empty) -- drawn during the last round when they
 * were (alice_prepare_next()), else now. Nothing goes to Bob before the
 * round begins here, so the quantum channel carries what it did.
 */
static int alice_detections(struct qkdd *q, uint64_t npulses,
			    struct qkd_det_records *ga)
{
	int r = -EAGAIN;

	if (q->next_pulses) {
		r = fiber_prepare_wait(q->fib);
		/* another round length since (a reconnect): drawn again */
		if (!r && q->next_pulses != npulses)
			r = -ESTALE;
		if (!r)
			*ga = q->next_det;
		else
			qkd_det_records_free(&q->next_det);
		memset(&q->next_det, 0, sizeof(q->next_det));
		q->next_pulses = 0;
		if (r == -EPIPE)
			return r;
	}
	if (r) {
		r = fiber_prepare_post(q->fib, npulses, ga);
		if (!r)
			r = fiber_prepare_wait(q->fib);
		if (r)
			return r;
	}
	r = fiber_send_prepared(q->fib, q->qfd, q->round);
	if (!r)
		alice_prepare_next(q, npulses);
	return r;
}

void alice_detections_cancel(struct qkdd *q)
{
	if (!q->fib)
		return;
	/* the thread is done with next_det only once it has answered */
	fiber_cancel(q->fib);
	qkd_det_records_free(&q->next_det);
	memset(&q->next_det, 0, sizeof(q->next_det));
	q->next_pulses = 0;
}

int alice_round(struct qkdd *q, struct round *R)
{
	struct qkd_alice_records a = { 0 };
	struct qkd_det_records ga = { 0 }, ad = { 0 };
	const struct qkd_det_records *own = &ad;
	struct qkd_sift_announce an = { 0 };
	struct qkd_cascade_params cp;
	struct qkd_verify_tag vt;
	struct wbuf w = { 0 };
	struct rbuf rb;
	uint64_t *mine = NULL, *peer = NULL;
	uint64_t npulses, seedw;
	uint8_t type, cpbuf[QKD_CASCADE_PARAMS_LEN];
	uint32_t auth_len, count;
	size_t ndet = 0, level;
	const char *why;
	double leak;
	int r, v;

	npulses = q->round_pulses;
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
	stage_switch(QS_QUANTUM);
	if (q->replay) {
		/* the round's window of the recording, named to Bob */
		r = replay_alice(q, npulses, &a);
		if (r)
			goto out;
	} else {
		if (q->o->ch.per_detection) {
			/* records of the detected pulses only */
			r = alice_detections(q, npulses, &ga);
		} else {
			r = qkd_alice_records_alloc(&a, npulses);
			if (r)
				goto out;
			qkd_alice_prepare(&q->o->ch, &q->rng, &a);
			r = fiber_send(q->fib, q->qfd, q->round, &a);
		}
		if (r) {
			qlog("the fiber stage failed: %s", strerror(-r));
			r = -ECONNRESET;
			goto out;
		}
	}
	/* sifting: Bob's detections (pulse-index gaps) and his bases */
	r = recv_msg(q, 1u << QKD_MSG_SIFT_BASES, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	stage_switch(QS_SIFT);
	r = qkd_sift_announce_decode(q->msg, q->msg_len, npulses,
				     round_max_detections(q), &an, &why);
	if (r == -EBADMSG) {
		/*
		 * Not authenticated yet, and no honest peer sends it: an
		 * attack like bad framing (a malformed Cascade request) --
		 * the alarm and the back-off, and the round aborted.
		 */
		auth_strike(q, "malformed sifting announcement");
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"sifting: malformed announcement: %s", why);
		goto out;
	}
	if (r)
		goto out;
	/* our records at the announced pulses: with the link sampled per
	 * detection, all of them when Bob announces every detection */
	if (q->o->ch.per_detection && same_pulses(&ga, &an))
		own = &ga;
	else if (q->o->ch.per_detection)
		r = qkd_det_records_select(&ga, an.pulse, an.n, &ad);
	else
		r = qkd_alice_det_records(&a, an.pulse, an.n, &ad);
	if (r == -EINVAL) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"sifting: Bob announced a pulse the link did not detect");
		goto out;
	}
	if (r)
		goto out;
	qkd_alice_records_free(&a);
	ndet = an.n;
	R->rs.detections = ndet;
	r = qkd_sift_det(own, an.basis, NULL, &R->sifted);
	if (r)
		goto out;
	R->rs.sifted = R->sifted.n;
	/* the sample (positions from getrandom(), see make_mask()) */
	if (R->sifted.n >= MIN_SIFTED) {
		stage_switch(QS_EST);
		r = make_mask(q, R);
		stage_switch(QS_SIFT);
		if (r)
			goto out;
	}
	/*
	 * per announced detection: our basis (bits), and with decoy states
	 * our class (bytes; with one intensity every class is 0, and 1 byte
	 * a detection, the larger part of the answer, said nothing)
	 */
	{
		bool classes = q->pp.nint > 1;
		uint64_t *ab = qkd_bits_alloc(ndet, 0);
		uint8_t *cl = classes ? malloc(ndet ? ndet : 1) : NULL;

		if (!ab || (classes && !cl)) {
			qkd_bits_free(ab, ndet, 0);
			free(cl);
			r = -ENOMEM;
			goto out;
		}
		for (size_t j = 0; j < ndet; j++)
			if (own->r[j].basis & 1)
				ab[j / 64] |= (uint64_t)1 << (j % 64);
		wb_bits(&w, ab, ndet);
		qkd_bits_free(ab, ndet, 0);
		if (classes) {
			for (size_t j = 0; j < ndet; j++)
				cl[j] = own->r[j].intensity;
			wb_bytes(&w, cl, ndet);
			explicit_bzero(cl, ndet ? ndet : 1);
			free(cl);
		}
	}
	/* the positions travel in the transcript: the round's closing tags
	 * cover them */
	if (R->mask && !sample_is_x_basis(q))
		wb_bits(&w, R->mask, R->N);
	/* the round's error correction: it decides how the key is cut */
	R->ec = ec_round_method(q, R->sifted.n);
	R->rs.ec_method = (uint8_t)R->ec;
	wb_u(&w, R->ec, 1);
	if (w.err) {
		r = -ENOMEM;
		goto out;
	}
	r = send_msg(q, QKD_MSG_SIFT_BASES, w.p, w.len, AUTH_DEFER);
	w.len = 0;
	if (r)
		goto out;
	qkd_det_records_free(&ga);
	qkd_det_records_free(&ad);
	qkd_sift_announce_free(&an);
	if (R->sifted.n < MIN_SIFTED) {
		r = round_abort(q, R, QKD_ABORT_KEY_TOO_SHORT,
				"only %zu sifted bits", R->sifted.n);
		goto out;
	}
	/* estimation */
	r = recv_msg(q, 1u << QKD_MSG_EST_SAMPLE, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	stage_switch(QS_EST);
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	peer = rb_bits(&rb, R->k);
	if (!rb_done(&rb) || !peer) {
		r = round_malformed(q, R, "estimation: malformed sample");
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
		qkd_cascade_daemon_params(&cp, R->F, R->nf, R->est.qber,
					  seedw);
		if (R->F < (R->ec == QKDD_EC_LDPC ? QKD_LDPC_MIN_FRAME_BITS :
						    64)) {
			send_msg(q, QKD_MSG_EST_SAMPLE, w.p, w.len, AUTH_DEFER);
			r = round_abort(q, R, QKD_ABORT_KEY_TOO_SHORT,
					"only %zu key bits after sampling",
					R->n);
			goto out;
		}
		/* the PA seed, in parts before the sample (round.c) */
		stage_switch(QS_PA);
		r = alice_send_seed(q, R);
		stage_switch(QS_EST);
		if (r)
			goto out;
		if (R->ec == QKDD_EC_LDPC) {
			/* the syndromes ride on the sample: no round trip */
			stage_switch(QS_EC);
			R->ec_t0 = ec_now();
			r = alice_ldpc_params(q, R, &w);
			if (!r)
				r = alice_ldpc_syndrome(q, R, &w);
			stage_switch(QS_EST);
			if (r) {
				send_msg(q, QKD_MSG_EST_SAMPLE, w.p, w.len,
					 AUTH_DEFER);
				r = round_abort(q, R, QKD_ABORT_INTERNAL,
						"LDPC setup failed: %s",
						strerror(-r));
				goto out;
			}
		} else {
			wb_bytes(&w, cpbuf,
				 qkd_cascade_params_encode(&cp, cpbuf));
		}
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
	stage_switch(QS_EC);
	/* answer Bob until his verification hash: r > 0, the round ended */
	if (R->ec == QKDD_EC_LDPC)
		r = alice_ldpc_exchange(q, R, &type);
	else
		r = alice_cascade(q, R, &cp, &type);
	if (r) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	R->ec_t1 = ec_now();
	R->rs.ec_seconds = R->ec_t1 - R->ec_t0;
	/*
	 * Bob's VERIFY_HASH closes the exchange: its tag covers the whole
	 * transcript. Nothing of this round is used before it verified.
	 */
	if (!closing_tag_verified(q, R,
				  "verification hash without the transcript tag")) {
		r = 0;
		goto out;
	}
	/* verification */
	stage_switch(QS_VERIFY);
	if (qkd_verify_decode(&vt, q->msg, q->msg_len, q->pp.tag_bits) ||
	    vt.key_bits != R->n) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"malformed or too short verification tag");
		goto out;
	}
	v = qkd_verify_check(&vt, R->key, R->n, q->pp.tag_bits);
	leak = R->leak_ec + vt.tag_bits;
	R->rs.disclosed = (uint64_t)leak;
	R->rs.efficiency = R->est.qber > 0 ?
		R->leak_ec / ((double)R->n * qkd_h2(R->est.qber)) : 0;
	if (v != 1) {
		r = round_abort(q, R, QKD_ABORT_VERIFY_FAILED,
				"verification hash mismatch after %s (%.0f bits disclosed): residual errors, block discarded",
				R->ec == QKDD_EC_LDPC ? "LDPC" : "Cascade",
				R->leak_ec);
		goto out;
	}
	/* key length, reserve, PA seed */
	stage_switch(QS_PA);
	R->l = key_length(q, R, leak, &why);
	if (!R->l) {
		r = round_abort(q, R, QKD_ABORT_KEY_TOO_SHORT, "%s", why);
		goto out;
	}
	ec_learn(q, R, R->leak_ec, R->l);
	/*
	 * Withhold exactly the pads used since the last committed round
	 * (both directions, the SYNC/HELLO of a new connection and aborted
	 * rounds included, and the three tags still to come: PA_SEED,
	 * KEY_COMMIT and its echo), plus half of any shortfall below the
	 * target reserve.
	 */
	level = auth_reserve_level(q->auth);
	{
		uint64_t used, want = auth_withhold(q, R, level, TAGS_AFTER_PA,
						    &used);
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
	r = room_cap(q, &count);
	if (r) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	/* the seed went before the sample: l < n of its 2n - 1 bits */
	if (R->l >= R->n || !R->seed) {
		r = -EINVAL;
		goto out;
	}
	wb_u(&w, R->l, 8);
	wb_u(&w, (uint64_t)leak, 8);
	wb_u(&w, auth_len, 4);
	wb_u(&w, count, 4);
	wb_u(&w, q->next_index, 8);
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
	r = alice_commit(q, R, auth_len, count, block_id(q, R));
	if (r)
		goto out;
	r = 0;
out:
	stage_switch(QS_OTHER);
	qkd_alice_records_free(&a);
	qkd_det_records_free(&ga);
	qkd_det_records_free(&ad);
	qkd_sift_announce_free(&an);
	wb_free(&w);
	if (mine)
		qkd_bits_free(mine, R->k, 0);
	if (peer)
		qkd_bits_free(peer, R->k, 0);
	return r;
}
