// SPDX-License-Identifier: GPL-2.0-only
/*
 * The start of every connection: SYNC re-aligns the two ends'
 * authentication reserves, on positions authenticated by the SYNC's own
 * tags before anything moves; HELLO checks that both run the same protocol
 * with the same parameters (Bob checks Alice's against his own), and
 * recovers what a lost connection or a restart left half done: a block committed at one end
 * only, keys pushed at one end only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "qkd/auth.h"
#include "qkd/frame.h"
#include "qkd/verify.h"
#include "session.h"

#define HELLO_MAGIC	0x514b4448u	/* "QKDH" */
#define HELLO_VERSION	12	/* 3: next index and low index;
				 * 4: basis probabilities;
				 * 5: Cascade's PIPELINE flag (issue 16);
				 * 6: the key source (issue 17);
				 * 7: ROOM_QUERY and ROOM between rounds;
				 * 8: sparse SIFT_BASES (detection lists);
				 * 9: the reconciliation methods (LDPC;
				 *    the number stayed 8 by mistake);
				 * 10: the PA seed in PA_SEED_PART
				 *    messages before Alice's sample;
				 *    LDPC's matrices of construction 2
				 *    (ldpc.c's MSG_VERSION);
				 * 11: LDPC frame tags of 32 bits;
				 * 12: Alice's sifting answer without
				 *    class bytes for one intensity */
#define SYNC_MAGIC	0x514b4453u	/* "QKDS" */
#define SYNC_VERSION	2	/* 2: tagged at the stated positions */
#define SYNC_BODY_LEN	(4 + 1 + 1 + 5 * 8)

/*
 * What a SYNC's tags cover: its body (magic, version, role, positions)
 * and the session id, so that it is bound to this connection.
 */
static void sync_signed(const struct qkdd *q, const uint8_t *body,
			uint8_t out[SYNC_BODY_LEN + 4])
{
	memcpy(out, body, SYNC_BODY_LEN);
	for (int i = 0; i < 4; i++)
		out[SYNC_BODY_LEN + i] =
			(uint8_t)(q->session_id >> (8 * (3 - i)));
}

/*
 * SYNC payload: this end's reserve positions and two tags, each with the
 * pad at this end's position of one pool (auth_sync_seal(): both pads
 * are used up by it). The peer re-aligns on it only once a tag verified
 * at the position it states (recv_sync()).
 */
static int send_sync(struct qkdd *q)
{
	uint8_t tags[2][QKD_AUTH_TAG_LEN], sig[SYNC_BODY_LEN + 4];
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
	if (w.err) {
		wb_free(&w);
		return -ENOMEM;
	}
	sync_signed(q, w.p, sig);
	r = auth_sync_seal(q->auth, &p, sig, sizeof(sig), tags);
	if (r == QKD_AUTH_E_RESERVE) {
		qlog("cannot send SYNC: the authentication key reserve is exhausted (%zu bytes left) -- install a fresh PSK (or use X.509) and restart",
		     auth_reserve_level(q->auth));
		wb_free(&w);
		return -EPERM;
	}
	if (r) {
		qlog("cannot send SYNC: %s", auth_strerror(r));
		wb_free(&w);
		return r == QKD_AUTH_E_PERSIST ? -EPERM : -ECONNRESET;
	}
	wb_bytes(&w, tags, sizeof(tags));
	explicit_bzero(tags, sizeof(tags));
	if (w.err) {
		wb_free(&w);
		return -ENOMEM;
	}
	r = send_msg(q, QKD_MSG_SYNC, w.p, w.len, AUTH_DEFER);
	wb_free(&w);
	return r;
}

/*
 * The peer's SYNC. Nothing in it is used before its tags verified at the
 * positions it states -- each tag whose pad is still here, one at least
 * (auth_sync_verify()) --: then both pools are
 * re-aligned -- each end skips, in each pool, to the larger of the two
 * positions: pads below it were used (or set aside by a write-ahead
 * record, or burnt by a frame lost with the connection) at one end at
 * least, and a pad is never used twice. A position more than
 * QKDD_SYNC_MAX_SKIP ahead (honest ends never differ by more), a tag that
 * does not verify, a bad magic or a reflected role drop the connection
 * with the alarm, nothing skipped: a forged SYNC costs the pads of the
 * two SYNC tags, never a pad the attacker names.
 *
 * Both claims behind ours (only when this end restarted, or skipped
 * further, since the peer's pads there are gone here): nothing can be
 * checked and nothing is used; Bob goes on, Alice's SYNC came first and
 * his, at his positions, tells her (she can always check it: her pads
 * are never ahead of his after his check). For Alice it is an attack.
 * *@peer gets the peer's (authenticated) positions.
 */
static int recv_sync(struct qkdd *q, struct auth_position *peer)
{
	uint8_t type, want = q->o->role == QKDD_ALICE ? QKD_AUTH_RESPONDER :
							QKD_AUTH_INITIATOR;
	uint8_t tags[2][QKD_AUTH_TAG_LEN], sig[SYNC_BODY_LEN + 4];
	struct auth_position me;
	unsigned int checked;
	const uint8_t *t;
	struct rbuf rb;
	int r = recv_msg(q, 1u << QKD_MSG_SYNC, &type, true);

	if (r)
		return r > 0 ? -EPROTO : r;
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	if (rb_u(&rb, 4) != SYNC_MAGIC || rb_u(&rb, 1) != SYNC_VERSION ||
	    rb_u(&rb, 1) != want) {
		auth_strike(q, "SYNC from no qkdd peer of this version, or with our own role (a reflection, or both ends configured alike)");
		return -ECONNRESET;
	}
	for (int d = 0; d < 2; d++)
		peer->pos[d] = rb_u(&rb, 8);
	for (int d = 0; d < 2; d++)
		peer->end[d] = rb_u(&rb, 8);
	peer->additions = rb_u(&rb, 8);
	t = rb_bytes(&rb, sizeof(tags));
	if (!rb_done(&rb) || !t) {
		auth_strike(q, "malformed SYNC");
		return -ECONNRESET;
	}
	memcpy(tags, t, sizeof(tags));
	sync_signed(q, q->msg, sig);
	auth_get_position(q->auth, &me);
	r = auth_sync_verify(q->auth, peer, QKDD_SYNC_MAX_SKIP, sig,
			     sizeof(sig), tags, &checked);
	explicit_bzero(tags, sizeof(tags));
	if (r == QKD_AUTH_E_SEQ && q->o->role == QKDD_BOB) {
		qlog("the peer's SYNC states authentication reserve positions %" PRIu64 "/%" PRIu64 ", behind ours %" PRIu64 "/%" PRIu64 ": nothing to check it with, ours tells the peer",
		     peer->pos[0], peer->pos[1], me.pos[0], me.pos[1]);
		memset(peer, 0, sizeof(*peer));
		return 0;
	}
	if (r) {
		char why[300], what[64];

		if (r == QKD_AUTH_E_TAG)
			snprintf(what, sizeof(what), "its tag does not verify there");
		else if (r == QKD_AUTH_E_SEQ)
			snprintf(what, sizeof(what), "behind ours in both pools");
		else if (r == QKD_AUTH_E_STATE)
			snprintf(what, sizeof(what),
				 "more than %u chunks ahead or beyond the pool",
				 (unsigned int)QKDD_SYNC_MAX_SKIP);
		else
			snprintf(what, sizeof(what), "%s", auth_strerror(r));
		snprintf(why, sizeof(why),
			 "the peer's SYNC puts its authentication reserve at chunks %" PRIu64 "/%" PRIu64 ", ours is at %" PRIu64 "/%" PRIu64 " (of %" PRIu64 "/%" PRIu64 "): %s, nothing skipped (a forged SYNC; or an old state file at one end: then install a fresh PSK pair at both ends)",
			 peer->pos[0], peer->pos[1], me.pos[0], me.pos[1],
			 me.end[0], me.end[1], what);
		auth_strike(q, why);
		return r == QKD_AUTH_E_PERSIST ? -EPERM : -ECONNRESET;
	}
	if (peer->pos[0] > me.pos[0] || peer->pos[1] > me.pos[1])
		qlog("authentication reserve re-aligned with the peer's authenticated SYNC: %" PRIu64 " + %" PRIu64 " pads skipped (used or set aside at one end before the connection was lost)",
		     peer->pos[0] > me.pos[0] ? peer->pos[0] - me.pos[0] : 0,
		     peer->pos[1] > me.pos[1] ? peer->pos[1] - me.pos[1] : 0);
	return 0;
}

/* SYNC both ways, Alice's first; each re-aligns on the other's. */
static int sync_reserves(struct qkdd *q, struct auth_position *peer)
{
	bool alice = q->o->role == QKDD_ALICE;
	int r;

	r = alice ? send_sync(q) : recv_sync(q, peer);
	if (!r)
		r = alice ? recv_sync(q, peer) : send_sync(q);
	return r;
}

/* Send this end's HELLO from @w: it closes the connection's exchange. */
static int send_hello(struct qkdd *q, struct wbuf *w)
{
	int r;

	if (w->err) {
		wb_free(w);
		return -ENOMEM;
	}
	r = send_msg(q, QKD_MSG_HELLO, w->p, w->len, AUTH_CLOSE);
	wb_free(w);
	return r;
}

/*
 * The peer's HELLO closes the connection's exchange: its tag covers both
 * SYNC messages too. 0 with @rb past its magic and version, or -errno.
 */
static int recv_hello(struct qkdd *q, struct rbuf *rb)
{
	uint8_t type;
	int r = recv_msg(q, 1u << QKD_MSG_HELLO, &type, true);

	if (r == RX_ABORT)
		qlog("HELLO: %s", q->peer_reason);
	if (r)
		return r > 0 ? -EPROTO : r;
	if (!(auth_transcript_state(q->auth, 0) & QKD_AUTH_TR_VERIFIED)) {
		qlog("HELLO without the closing tag of the connection's exchange");
		return -ECONNRESET;
	}
	*rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	if (rb_u(rb, 4) != HELLO_MAGIC || rb_u(rb, 1) != HELLO_VERSION) {
		qlog("HELLO: not a qkdd peer of this version");
		return -EPERM;
	}
	return 0;
}

/*
 * Bob: every parameter a security bound depends on, as Alice's HELLO
 * carries it, against his own configuration. He never adopts Alice's: a
 * peer (or an operator at the other site) with a weaker abort threshold, a
 * larger ε, another sample or another description of the source would make
 * him output key under a bound he did not agree to. A difference refuses
 * the connection with the parameter's name, here and (ABORT) at Alice's.
 * The verification hash may be longer than ours (its tag bits are counted
 * as leakage either way), never shorter.
 */
static int check_policy(struct qkdd *q, const struct proto *ap)
{
	const struct proto *me = &q->pp;
	char why[QKD_ABORT_MAX_TEXT];

	why[0] = '\0';
#define DIFF_F(field, name)						\
	do {								\
		if (!why[0] && memcmp(&ap->field, &me->field,		\
				      sizeof(me->field)))		\
			snprintf(why, sizeof(why),			\
				 "the peer's %s %.12g differs from ours %.12g", \
				 name, (double)ap->field, (double)me->field); \
	} while (0)
	if (ap->source != me->source)
		snprintf(why, sizeof(why),
			 "the peer's source %s differs from ours %s",
			 ap->source == QKD_SOURCE_WCP ? "wcp" : "single-photon",
			 me->source == QKD_SOURCE_WCP ? "wcp" : "single-photon");
	else if (ap->nint != me->nint)
		snprintf(why, sizeof(why),
			 "the peer's %u intensities differ from our %u",
			 ap->nint, me->nint);
	for (int i = 0; i < me->nint && i < 3 &&
			me->source == QKD_SOURCE_WCP; i++) {
		DIFF_F(mu[i], "mean photon number (mu)");
		DIFF_F(p[i], "intensity probability (p-mu)");
	}
	DIFF_F(pz_alice, "pz-alice");
	DIFF_F(pz_bob, "pz-bob");
	DIFF_F(qber_abort, "qber-abort");
	DIFF_F(sample_frac, "sample");
	DIFF_F(eps_sec, "eps-sec");
	DIFF_F(eps_cor, "eps-cor");
	DIFF_F(block_bits, "block-bits");
#undef DIFF_F
	if (!why[0] && qkd_verify_check_tag_bits(ap->tag_bits, q->o->tag_bits))
		snprintf(why, sizeof(why),
			 "the peer's tag-bits %u are below ours %u",
			 ap->tag_bits, q->o->tag_bits);
	if (!why[0])
		return 0;
	qlog("HELLO refused: %s: every parameter of the security bound must be configured alike at both ends", why);
	send_abort(q, QKD_ABORT_PROTOCOL, why);
	return -EPERM;
}

int hello(struct qkdd *q)
{
	struct auth_position peer_pos, me;
	struct wbuf w = { 0 };
	struct rbuf rb;
	uint64_t a_next, b_next, a_low, b_low, lower, resume, b_last = 0;
	uint64_t k_next, my_next, my_low;
	bool alice = q->o->role == QKDD_ALICE, matched = false, b_have = false;
	double t_hello;
	uint8_t b_ec;
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
	if (my_next < q->index_floor) {
		/* the store was emptied while we were down: never again
		 * below what we had pushed (session.h: index_floor) */
		qlog("the store's next index is %" PRIu64 ", below the %" PRIu64 " this end had reached: going on from there, no index is used twice",
		     k_next, q->index_floor);
		my_next = q->index_floor;
	}
	q->round = 0;
	ec_connection_start(q);
	/* nothing of the peer is authenticated before its HELLO verified */
	q->msg_limit = HANDSHAKE_MSG_MAX;
	auth_session_start(q->auth);
	auth_transcript_begin(q->auth, 0);
	if (alice) {
		uint32_t sid = 0;

		while (!sid)
			if (getrandom(&sid, sizeof(sid), 0) != sizeof(sid))
				return -EIO;
		q->session_id = sid;
		q->round_pulses = round_pulses(q);
		if (!q->round_pulses) {
			qlog("a block of %u sifted bits needs more than %llu pulses: lower --block-bits or the loss",
			     q->pp.block_bits, ROUND_PULSES_MAX);
			return -EPERM;
		}
		r = sync_reserves(q, &peer_pos);
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
		wb_f64(&w, q->pp.pz_alice);
		wb_f64(&w, q->pp.pz_bob);
		wb_f64(&w, q->pp.qber_abort);
		wb_f64(&w, q->pp.sample_frac);
		wb_f64(&w, q->pp.eps_sec);
		wb_f64(&w, q->pp.eps_cor);
		wb_u(&w, q->pp.block_bits, 4);
		wb_u(&w, q->pp.tag_bits, 4);
		wb_u(&w, q->pp.auth_target, 4);
		wb_u(&w, q->round_pulses, 8);
		wb_u(&w, q->o->key_source, 1);
		wb_u(&w, ec_allowed(q->o->reconcile), 1);
		t_hello = ec_now();
		r = send_hello(q, &w);
		if (r)
			return r;
		r = recv_hello(q, &rb);
		if (r)
			return r;
		/* Bob answers at once: the connection's first RTT sample */
		ec_rtt_sample(q, ec_now() - t_hello);
		b_next = rb_u(&rb, 8);
		b_low = rb_u(&rb, 8);
		b_have = rb_u(&rb, 1);
		b_last = rb_u(&rb, 8);
		b_ec = (uint8_t)rb_u(&rb, 1);
		if (!rb_done(&rb) || b_low > b_next ||
		    !(b_ec & ec_allowed(q->o->reconcile)) ||
		    (b_ec & ~QKDD_EC_ALL)) {
			qlog("HELLO: malformed answer");
			return -ECONNRESET;
		}
		q->ec_methods = b_ec & ec_allowed(q->o->reconcile);
		a_next = my_next;
		a_low = my_low;
		matched = q->pend.valid && q->pend.has_keys && b_have &&
			  b_last == q->pend.id &&
			  b_next == q->pend.first + q->pend.count &&
			  a_next == q->pend.first && a_low == q->pend.first;
	} else {
		struct proto ap;
		uint64_t p_first, p_id;
		uint32_t p_count, ks;
		unsigned int src;
		uint8_t a_ec;
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
			if (r == QKD_FRAME_E_VERSION)
				return frame_version_mismatch(q);
			if (r) {
				qlog("HELLO: malformed first frame");
				return -ECONNRESET;
			}
			q->session_id = h.session_id;
		}
		r = sync_reserves(q, &peer_pos);
		if (r)
			return r;
		r = recv_hello(q, &rb);
		if (r)
			return r;
		sid = rb_bytes(&rb, 16);
		ks = (uint32_t)rb_u(&rb, 4);
		a_next = rb_u(&rb, 8);
		a_low = rb_u(&rb, 8);
		p_valid = rb_u(&rb, 1);
		p_first = rb_u(&rb, 8);
		p_count = (uint32_t)rb_u(&rb, 4);
		p_id = rb_u(&rb, 8);
		ap.source = (uint8_t)rb_u(&rb, 1);
		ap.nint = (uint8_t)rb_u(&rb, 1);
		for (int i = 0; i < 3; i++) {
			ap.mu[i] = rb_f64(&rb);
			ap.p[i] = rb_f64(&rb);
		}
		ap.pz_alice = rb_f64(&rb);
		ap.pz_bob = rb_f64(&rb);
		ap.qber_abort = rb_f64(&rb);
		ap.sample_frac = rb_f64(&rb);
		ap.eps_sec = rb_f64(&rb);
		ap.eps_cor = rb_f64(&rb);
		ap.block_bits = (uint32_t)rb_u(&rb, 4);
		ap.tag_bits = (uint32_t)rb_u(&rb, 4);
		ap.auth_target = (uint32_t)rb_u(&rb, 4);
		q->round_pulses = rb_u(&rb, 8);
		src = (unsigned int)rb_u(&rb, 1);
		a_ec = (uint8_t)rb_u(&rb, 1);
		if (!rb_done(&rb) || a_low > a_next || !a_ec ||
		    (a_ec & ~QKDD_EC_ALL) ||
		    ap.auth_target > QKD_AUTH_RESERVE_CAP_DEFAULT / 2 ||
		    !q->round_pulses || q->round_pulses > ROUND_PULSES_MAX) {
			qlog("HELLO: malformed");
			return -EPERM;
		}
		if (src != q->o->key_source) {
			char why[QKD_ABORT_MAX_TEXT];

			snprintf(why, sizeof(why),
				 "the peer's key source %s differs from ours %s",
				 src == QKDD_SRC_ETSI014 ? "etsi014" :
				 src == QKDD_SRC_BB84 ? "bb84" : "(unknown)",
				 q->o->key_source == QKDD_SRC_ETSI014 ?
				 "etsi014" : "bb84");
			qlog("HELLO refused: %s: configure --key-source alike at both ends",
			     why);
			send_abort(q, QKD_ABORT_PROTOCOL, why);
			return -EPERM;
		}
		r = check_policy(q, &ap);
		if (r)
			return r;
		q->ec_methods = a_ec & ec_allowed(q->o->reconcile);
		if (!q->ec_methods) {
			char why[QKD_ABORT_MAX_TEXT];

			snprintf(why, sizeof(why),
				 "the peer reconciles with %s only, we with %s only",
				 ec_method_name(a_ec == QKDD_EC_BIT(QKDD_EC_LDPC) ?
						QKDD_EC_LDPC : QKDD_EC_CASCADE),
				 ec_method_name(q->o->reconcile));
			qlog("HELLO refused: %s: configure --reconcile so that both ends allow a method (auto allows both)",
			     why);
			send_abort(q, QKD_ABORT_PROTOCOL, why);
			return -EPERM;
		}
		q->pp.tag_bits = ap.tag_bits;
		q->pp.auth_target = ap.auth_target;
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
		wb_u(&w, ec_allowed(q->o->reconcile), 1);
		r = send_hello(q, &w);
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
		} else if (b_have && b_last == q->pend.id &&
			   q->next_index == k_next && k_next > q->pend.first &&
			   k_next < q->pend.first + q->pend.count) {
			/*
			 * Killed while pushing the block in several KEY_ADD
			 * messages: the keys pushed stay (our low index is
			 * past them, and the peer holds the same ones), the
			 * peer removes the rest.
			 */
			qlog("block [%" PRIu64 ", %" PRIu64 ") was committed by the peer; its first %" PRIu64 " keys were pushed here before the restart, the rest were lost",
			     q->pend.first, q->pend.first + q->pend.count,
			     k_next - q->pend.first);
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
	/* from now on, messages as large as a round of ours needs */
	q->msg_limit = round_msg_limit(q->round_pulses);
	update_reserve(q);
	qlog("session %08x up: stream next index %" PRIu64 ", auth reserve %zu bytes",
	     q->session_id, resume, q->tot.auth_reserve);
	return 0;
}
