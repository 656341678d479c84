// SPDX-License-Identifier: GPL-2.0-only
/*
 * Bob's round: he receives the detection events, leads sifting and
 * estimation (Alice's privacy amplification seed, in parts, comes before
 * her sample: each part checked for its place), leads Cascade or LDPC,
 * sends the verification hash, checks Alice's secret length and commits
 * the block first (two-phase commit).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/cascade.h"
#include "qkd/estimate.h"
#include "qkd/frame.h"
#include "qkd/sifting.h"
#include "qkd/verify.h"
#include "session.h"

/* Bob: the corrected frames back into the key. */
static void frames_join(struct round *R)
{
	for (uint32_t f = 0; f < R->nf; f++)
		for (uint32_t i = 0; i < R->F; i++)
			qkd_bit_set(R->key, (size_t)f * R->F + i,
				    qkd_bit_get(R->frames[f], i));
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

/*
 * Bob's side of the two-phase commit (R->bytes: @auth_len withheld bytes,
 * then @count keys from index @first): Alice's KEY_COMMIT checked against
 * our block @id, the push, the reserve and the commit on disk, then the
 * echo. Both key sources end their rounds with it.
 */
int bob_commit(struct qkdd *q, struct round *R, uint64_t first,
	       uint32_t auth_len, uint32_t count, uint64_t id)
{
	struct wbuf w = { 0 };
	uint8_t type;
	int r;

	/* commit: check, push, acknowledge */
	stage_switch(QS_PUSH);
	r = recv_msg(q, 1u << QKD_MSG_KEY_COMMIT, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	commit_payload(&w, first, count, q->pp.key_size, id,
		       auth_len);
	if (w.err || q->msg_len != w.len || memcmp(q->msg, w.p, w.len)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"KEY_COMMIT does not match our block");
		goto out;
	}
	r = commit_authenticated(q);
	if (r)
		goto out;
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
	q->last_block_id = id;
	q->have_last = true;
	q->next_index = first + count;
	/*
	 * The withheld bytes join the reserve, and the commit is on disk,
	 * before the acknowledgement leaves: once Alice can add them, we
	 * have them too, across a crash of either end.
	 */
	stage_switch(QS_AUTH);
	r = reserve_add(q, R->bytes, auth_len);
	stage_switch(QS_PUSH);
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
	stage_switch(QS_OTHER);
	wb_free(&w);
	return r;
}

/*
 * Cascade: the parameters at the end of Alice's estimation sample, then
 * requests until every frame is done. 0, 1 the round ended (aborted), or
 * -errno.
 */
static int bob_cascade(struct qkdd *q, struct round *R, struct rbuf *rb)
{
	struct qkd_cascade_bob *cb = NULL;
	struct qkd_cascade_params cp;
	struct qkd_cascade_msg out = { 0 };
	struct qkd_cascade_stats cs;
	const uint8_t *p = rb_bytes(rb, QKD_CASCADE_PARAMS_LEN);
	int r, rx;

	if (!p || !rb_done(rb) ||
	    qkd_cascade_params_decode(&cp, p, QKD_CASCADE_PARAMS_LEN) ||
	    cp.frame_bits != R->F || cp.nframes != R->nf) {
		round_malformed(q, R, "estimation: bad Cascade parameters");
		return 1;
	}
	stage_switch(QS_EC);
	R->ec_t0 = ec_now();
	cb = qkd_cascade_bob_new(&cp, (uint64_t *const *)R->frames);
	if (!cb) {
		round_abort(q, R, QKD_ABORT_INTERNAL, "Cascade setup failed");
		return 1;
	}
	while ((r = qkd_cascade_bob_request(cb, &out)) == 1) {
		r = bob_roundtrip(q, R, &out, &rx);
		if (r) {
			r = rx_fail(q, R, r);
			if (!r)
				r = 1;
			goto out;
		}
		if (qkd_cascade_bob_reply(cb, q->msg, q->msg_len)) {
			/*
			 * Not authenticated yet, and no honest peer sends
			 * it: an attack like bad framing -- the alarm and
			 * the back-off, and the round aborted at once.
			 */
			auth_strike(q, "malformed Cascade answer");
			round_abort(q, R, QKD_ABORT_PROTOCOL,
				    "malformed Cascade answer");
			r = 1;
			goto out;
		}
	}
	if (r < 0) {
		round_abort(q, R, QKD_ABORT_INTERNAL, "Cascade: %s",
			    strerror(-r));
		r = 1;
		goto out;
	}
	qkd_cascade_bob_stats(cb, &cs);
	R->rs.cascade_rounds = cs.rounds;
	R->rs.ec_roundtrips = cs.rounds;
	R->leak_ec = (double)cs.disclosed_bits;
	/* the bits Cascade flipped: the errors, once verification passed */
	R->corrected = cs.corrected_bits;
	R->ec_t1 = ec_now();
	r = 0;
out:
	qkd_cascade_bob_free(cb);
	qkd_cascade_msg_free(&out);
	return r;
}

int bob_round(struct qkdd *q, struct round *R)
{
	struct qkd_detections d = { 0 };
	struct qkd_det_records b = { 0 };
	struct qkd_verify_tag vt;
	uint8_t vbuf[QKD_VERIFY_MSG_MAX];
	struct wbuf w = { 0 };
	struct rbuf rb;
	uint64_t *ab = NULL, *mine = NULL, *peer = NULL, npulses = 0;
	uint64_t l, leak, first, l_mine;
	const uint8_t *cls = NULL;
	uint8_t type;
	uint32_t round = q->round + 1, auth_len, count;
	size_t ndet = 0;
	const char *why;
	int r;

	qkdd_log_round(0);
	stage_switch(QS_QUANTUM);
	if (q->replay) {
		uint64_t wfirst;

		/* the round's window, and its detections from our file */
		r = quantum_recv_window(q->qfd, &round, q->o->timeout_s,
					q->round_pulses, &wfirst);
		if (!r)
			r = replay_bob(q, wfirst, q->round_pulses, &d);
		npulses = q->round_pulses;
		if (!r && d.count > round_max_detections(q)) {
			/* Alice would refuse the announcement: say why here */
			qerr("replay %s: %zu detections in the window of %" PRIu64 " pulse slots, more than a round of this configuration can have (%" PRIu64 "): describe the recorded link with --channel (its loss sets the round's pulses) or lower --block-bits",
			     q->o->replay, d.count, npulses,
			     round_max_detections(q));
			r = -EPERM;
		}
		if (r == -EPERM || r == -ENOMEM) {
			qkd_detections_free(&d);
			return r;
		}
	} else {
		r = quantum_recv(q->qfd, &round, q->o->timeout_s,
				 q->round_pulses, round_max_detections(q), &d,
				 &npulses);
	}
	/* Alice's round reached us: a SIGTERM from now on lets it finish */
	qkdd_in_round = !r;
	if (r) {
		if (r == -ENOTCONN)
			qlog("the peer closed the quantum channel");
		else if (r == -EPROTO)
			/* a chunk no qkdd sends: an attack, as a frame no qkdd
			 * sends is -- the alarm, and the back-off bounds what
			 * such chunks cost (a connection each) */
			auth_strike(q, "quantum channel: a chunk no qkdd sends");
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
	r = qkd_bob_det_records(&d, &q->rng, npulses, &b);
	qkd_detections_free(&d);
	if (r)
		goto out;
	/* sifting: announce detections and bases, get Alice's */
	stage_switch(QS_SIFT);
	r = write_sift_announce(&w, &b);
	if (r)
		goto out;
	r = send_msg(q, QKD_MSG_SIFT_BASES, w.p, w.len, AUTH_DEFER);
	w.len = 0;
	if (r)
		goto out;
	r = recv_msg(q, 1u << QKD_MSG_SIFT_BASES, &type, true);
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	ndet = b.n;
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	/* Alice's answer, per announced detection: her basis, and with
	 * decoy states her class */
	ab = rb_bits(&rb, ndet);
	if (q->pp.nint > 1)
		cls = rb_bytes(&rb, ndet);
	if (rb.err || !ab || (q->pp.nint > 1 && !cls)) {
		r = round_malformed(q, R,
				    "sifting: malformed answer (shorter than the %zu detections announced)",
				    ndet);
		goto out;
	}
	for (size_t j = 0; cls && j < ndet; j++)
		if (cls[j] >= q->pp.nint) {
			r = round_malformed(q, R,
					    "sifting: intensity class %u out of range",
					    cls[j]);
			goto out;
		}
	r = qkd_sift_det(&b, ab, cls, &R->sifted);
	if (r)
		goto out;
	qkd_det_records_free(&b);
	R->rs.sifted = R->sifted.n;
	if (R->sifted.n < MIN_SIFTED) {
		r = round_abort(q, R, -1, "only %zu sifted bits",
				R->sifted.n);
		r = recv_msg(q, 0, &type, true);	/* Alice's ABORT */
		r = r == RX_ABORT ? rx_fail(q, R, r) : r ? r : -EPROTO;
		goto out;
	}
	/* estimation: Alice's sample positions end her answer */
	stage_switch(QS_EST);
	r = take_mask(q, R, &rb);
	if (r) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	/* the round's error correction, one both ends allow */
	R->ec = (unsigned int)rb_u(&rb, 1);
	R->rs.ec_method = (uint8_t)R->ec;
	if (!rb_done(&rb)) {
		r = round_malformed(q, R, "sifting: malformed answer");
		goto out;
	}
	if ((R->ec != QKDD_EC_CASCADE && R->ec != QKDD_EC_LDPC) ||
	    !(QKDD_EC_BIT(R->ec) & q->ec_methods)) {
		r = round_malformed(q, R,
				    "sifting: reconciliation method %u, not one both ends allow",
				    R->ec);
		goto out;
	}
	mine = sample_bits(R);
	if (!mine) {
		r = -ENOMEM;
		goto out;
	}
	wb_bits(&w, mine, R->k);
	if (w.err) {
		r = -ENOMEM;
		goto out;
	}
	r = send_msg(q, QKD_MSG_EST_SAMPLE, w.p, w.len, AUTH_DEFER);
	w.len = 0;
	if (r)
		goto out;
	/*
	 * The PA seed's parts (round.c), then Alice's sample: every part in
	 * its place, and the whole seed before the sample if the round goes
	 * on (checked below, once the estimate says so).
	 */
	round_cut(R);
	for (;;) {
		r = recv_msg(q, (1u << QKD_MSG_EST_SAMPLE) |
				(1u << QKD_MSG_PA_SEED_PART), &type, true);
		if (r) {
			r = rx_fail(q, R, r);
			goto out;
		}
		if (type == QKD_MSG_EST_SAMPLE)
			break;
		stage_switch(QS_PA);
		r = bob_seed_part(q, R);
		stage_switch(QS_EST);
		if (r) {
			r = r > 0 ? 0 : r;
			goto out;
		}
	}
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	peer = rb_bits(&rb, R->k);
	if (!peer) {
		r = round_malformed(q, R, "estimation: malformed sample");
		goto out;
	}
	r = estimate(q, R, peer);
	if (r)
		goto out;
	if (R->est.abort) {
		r = round_abort(q, R, -1, "%s", R->est.reason);
		goto out;
	}
	if (R->F < (R->ec == QKDD_EC_LDPC ? QKD_LDPC_MIN_FRAME_BITS : 64)) {
		/* Alice aborts it too (too short for the method): no alarm */
		round_abort(q, R, -1, "only %zu key bits after sampling", R->n);
		r = recv_msg(q, 0, &type, true);	/* Alice's ABORT */
		r = r == RX_ABORT ? rx_fail(q, R, r) : r ? r : -EPROTO;
		goto out;
	}
	if (R->seed_got != round_seed_bits(R)) {
		r = round_malformed(q, R,
				    "PA seed: %zu of its %zu bits before the estimation sample",
				    R->seed_got, round_seed_bits(R));
		goto out;
	}
	/* error correction: r > 0, the round ended */
	r = R->ec == QKDD_EC_LDPC ? bob_ldpc(q, R, &rb) : bob_cascade(q, R, &rb);
	if (r) {
		r = r > 0 ? 0 : r;
		goto out;
	}
	frames_join(R);
	R->rs.ec_seconds = R->ec_t1 - R->ec_t0;
	/* verification: we make the tag, Alice checks */
	stage_switch(QS_VERIFY);
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
	if (!closing_tag_verified(q, R, "PA seed without the transcript tag")) {
		r = 0;
		goto out;
	}
	stage_switch(QS_PA);
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
	/*
	 * Alice checked our verification hash (she sends no PA seed
	 * otherwise, and its tag verified): the bits error correction
	 * flipped were the errors, and its f against them is what it
	 * achieved -- the f above is against the sampled estimate.
	 */
	R->rs.true_errors = (int64_t)R->corrected;
	R->rs.efficiency_true = R->corrected ?
		R->leak_ec / ((double)R->n *
			      qkd_h2((double)R->corrected / (double)R->n)) : 0;
	qlog("%s: f=%.4f against the true error count (%" PRIu64 " errors in %zu bits, QBER %.4f; estimated %.4f, f=%.4f against it), %.0f bits disclosed, %" PRIu64 " round trips, %u frames of %u bits, %u disclosed whole",
	     ec_method_name(R->ec), R->rs.efficiency_true, R->corrected,
	     R->n, (double)R->corrected / (double)R->n, R->est.qber,
	     R->rs.efficiency, R->leak_ec, R->rs.ec_roundtrips, R->nf, R->F,
	     R->rs.ec_frames_disclosed);
	l_mine = key_length(q, R, (double)leak, &why);
	if (rb.err || !l || l != l_mine || (double)leak < R->leak_ec ||
	    first != q->next_index || l > (1ull << 32) || l >= R->n) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"PA: secret length %" PRIu64 " / index %" PRIu64 " do not match ours (%" PRIu64 " / %" PRIu64 ")",
				l, first, l_mine, q->next_index);
		goto out;
	}
	R->l = l;
	/* the seed came in parts before the sample (round.c) */
	if (!rb_done(&rb)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"PA: malformed PA_SEED");
		goto out;
	}
	r = amplify(q, R, auth_len, count);
	if (r) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"PA: %u auth bytes and %u keys do not fit %" PRIu64 " bits",
				auth_len, count, l);
		goto out;
	}
	r = bob_commit(q, R, first, auth_len, count, block_id(q, R));
out:
	stage_switch(QS_OTHER);
	qkd_detections_free(&d);
	qkd_det_records_free(&b);
	wb_free(&w);
	if (ab)
		qkd_bits_free(ab, ndet, 0);
	if (mine)
		qkd_bits_free(mine, R->k, 0);
	if (peer)
		qkd_bits_free(peer, R->k, 0);
	return r;
}
