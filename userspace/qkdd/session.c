// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd protocol driver: the daemon's state across connections
 * (qkdd_new(), qkdd_free()), and one connection: HELLO and recovery, then
 * rounds until the requested number is done, the operator stops the
 * daemon or the connection must be re-established. session.h describes
 * the protocol and the files that carry it out.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/auth.h"
#include "qkd/frame.h"
#include "session.h"

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
	pp->pz_alice = o->ch.p_z_alice;
	pp->pz_bob = o->ch.p_z_bob;
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
	else if (qkd_rng_drbg(&q->rng))	/* Alice's choices, Bob's squashing */
		goto fail;
	proto_from_opts(&q->pp, o, store_key_size(st));
	for (unsigned int c = 0; c < o->ch.n_intensities; c++)
		pc += o->ch.p_intensity[c] * qkd_channel_click_prob(&o->ch, c);
	ps = o->ch.p_z_alice * o->ch.p_z_bob +
	     (1 - o->ch.p_z_alice) * (1 - o->ch.p_z_bob);
	q->pulses_per_bit = pc > 0 && ps > 0 ? 1.0 / (pc * ps) : 1e9;
	if (store_next_index(st, &q->next_index))
		goto fail;
	if (replay_open(q))
		goto fail;
	if (o->key_source == QKDD_SRC_ETSI014) {
		char err[300];

		q->kme = kme_client_new(o, err, sizeof(err));
		if (!q->kme) {
			qlog("vendor KME %s: %s", o->kme, err);
			goto fail;
		}
	}
	q->tot.next_index = q->next_index;
	q->ecm.qber = -1;
	q->ecm.rtt = -1;
	return q;
fail:
	qkdd_free(q);
	return NULL;
}

void qkdd_free(struct qkdd *q)
{
	if (!q)
		return;
	pending_clear(&q->pend);
	replay_close(q);
	kme_client_free(q->kme);
	ldpc_cache_free(&q->ldpc);
	qkd_det_records_free(&q->next_det);	/* empty after a session */
	free(q->sbuf);
	free(q->rbuf);
	if (q->msg) {
		explicit_bzero(q->msg, q->msg_cap);
		free(q->msg);
	}
	explicit_bzero(&q->rng, sizeof(q->rng));
	free(q);
}

unsigned int qkdd_backoff_s(const struct qkdd *q)
{
	unsigned int n = q->auth_strikes > q->conn_fails ? q->auth_strikes
							  : q->conn_fails;
	unsigned int base = q->o->backoff_base_s ? q->o->backoff_base_s : 1;
	unsigned int cap = q->o->backoff_max_s ? q->o->backoff_max_s
					       : QKDD_AUTH_BACKOFF_MAX_S;
	uint64_t s;

	if (!n)
		return 0;
	s = n > 32 ? cap : (uint64_t)base << (n - 1);
	return s > cap ? cap : (unsigned int)s;
}

/*
 * A connection that ended before a round completed with a key: whatever
 * cut it (a reset, a dropped or cut chunk, a timeout, a bad tag), its
 * handshake spent pads and gave nothing back. Counted, the next
 * connection waits qkdd_backoff_s(), and every QKDD_CONN_ALARM_EVERY
 * failures in a row (the first included) raise one ALARM line, so the
 * log grows by at most one line per connection and one alarm per four.
 */
void qkdd_conn_ended(struct qkdd *q, const char *why)
{
	if (q->tot.rounds_ok > q->ok_at_connect)
		return;		/* a good round on it: conn_fails is 0 */
	if (q->conn_fails < UINT_MAX)
		q->conn_fails++;
	q->tot.conn_failures = q->conn_fails;
	q->tot.conn_failures_total++;
	q->tot.backoff_s = qkdd_backoff_s(q);
	if (q->auth)
		update_reserve(q);
	if (q->conn_fails % QKDD_CONN_ALARM_EVERY == 1)
		qalarm("connection failure %u in a row without a completed round (last: %s): an attacker cutting the links, or a broken link; each costs up to %u reserve bytes (%zu left), the next waits %u s",
		       q->conn_fails, why, QKDD_CONN_PAD_MAX,
		       q->tot.auth_reserve, q->tot.backoff_s);
	stats_write(q->o, &q->tot, NULL);
}

/*
 * An authentication failure, or a handshake frame no honest peer sends:
 * counted (status file: auth_failures), alarmed, and the next connection
 * waits qkdd_backoff_s(). It never stops the daemon: an attacker who can
 * forge a frame could stop it at will.
 */
void auth_strike(struct qkdd *q, const char *what)
{
	if (q->auth_strikes < 1000)
		q->auth_strikes++;
	q->tot.auth_failures++;
	q->tot.auth_backoff_s = qkdd_backoff_s(q);
	qalarm("authentication failure %" PRIu64 " (%s): an active attacker or a damaged link; the connection is dropped and retried in %u s",
	       q->tot.auth_failures, what, q->tot.auth_backoff_s);
	stats_write(q->o, &q->tot, NULL);
}

void qkdd_status_publish(struct qkdd *q)
{
	stats_write(q->o, &q->tot, NULL);
}

bool qkdd_done(const struct qkdd *q)
{
	return (q->o->rounds && q->rounds_done >= q->o->rounds) ||
	       q->replay_done;
}

static int session_run(struct qkdd *q, int cfd, int qfd,
		       struct auth_ctx *auth)
{
	int r;

	q->cfd = cfd;
	q->qfd = qfd;
	q->ok_at_connect = q->tot.rounds_ok;
	/* what Bob's stream can take is asked again on each connection */
	q->peer_room_known = false;
	q->resume_wait = false;
	if (auth != q->auth && qkdd_auth_attach(q, auth, true))
		return -EPERM;
	qkdd_log_round(0);
	/*
	 * The context's failure counters halt it (auth.c); qkdd does not
	 * halt: it backs off (qkdd_backoff_s(), main.c) and tries again.
	 */
	auth_resume(q->auth);
	r = hello(q);
	if (r)
		return r;
	q->tot.connected = true;
	qkdd_notify_status("connected: %" PRIu64 " keys so far", q->tot.keys);
	stats_write(q->o, &q->tot, NULL);
	while (!qkdd_done(q)) {
		struct round R;
		double c0[QS_N], c1[QS_N];

		if (qkdd_reload)
			qkdd_reload_apply();
		if (qkdd_stop || qkdd_term) {
			qkdd_log_round(0);
			if (!qkdd_stop)
				qlog("SIGTERM: between rounds, stopping");
			send_abort(q, QKD_ABORT_SHUTDOWN, "operator stop");
			return 0;
		}
		/* --replay: a round needs a whole window of the recording */
		if (q->o->role == QKDD_ALICE &&
		    replay_exhausted(q, q->round_pulses)) {
			qkdd_log_round(0);
			qlog("replay %s: no full round of %" PRIu64 " pulse slots left (%" PRIu64 " of %" PRIu64 " replayed): done",
			     q->o->replay, q->round_pulses, q->replay->pos,
			     q->replay->h.pulses);
			send_abort(q, QKD_ABORT_SHUTDOWN,
				   "the recording is replayed to its end");
			q->replay_done = true;
			break;
		}
		r = q->o->role == QKDD_ALICE ? alice_before_round(q) :
					       bob_before_round(q);
		q->resume_wait = false;
		if (r) {
			q->tot.connected = false;
			q->tot.paused = false;
			stats_write(q->o, &q->tot, NULL);
			qkdd_log_round(0);
			return r == -EINTR ? 0 : r;
		}
		memset(&R, 0, sizeof(R));
		R.rs.true_errors = -1;
		R.rs.efficiency_true = -1;
		stage_switch(QS_OTHER);
		stage_read(c0);
		clock_gettime(CLOCK_MONOTONIC, &R.t0);
		if (q->o->role == QKDD_ALICE) {
			qkdd_in_round = true;
			q->round++;
			R.rs.round = q->round;
			qkdd_log_round(q->round);
			r = q->kme ? alice_kme_round(q, &R) :
				     alice_round(q, &R);
		} else {
			r = q->kme ? bob_kme_round(q, &R) : bob_round(q, &R);
		}
		qkdd_in_round = false;
		if (r) {
			round_free(&R);
			q->tot.connected = false;
			stats_write(q->o, &q->tot, NULL);
			qkdd_log_round(0);
			return r == -EINTR ? 0 : r;
		}
		q->rounds_done++;
		if (!R.rs.ok) {
			round_elapsed(&R);
		} else {
			if (q->auth_strikes)
				qlog("a round completed: authentication alarm cleared after %u failure(s)",
				     q->auth_strikes);
			if (q->conn_fails)
				qlog("a round completed: back-off cleared after %u failed connection(s)",
				     q->conn_fails);
			q->auth_strikes = 0;
			q->conn_fails = 0;
			q->tot.auth_backoff_s = 0;
			q->tot.conn_failures = 0;
			q->tot.backoff_s = 0;
		}
		update_reserve(q);
		q->tot.next_index = q->next_index;
		stage_read(c1);
		for (int i = 0; i < QS_N; i++) {
			R.rs.cpu[i] = c1[i] - c0[i];
			q->tot.cpu[i] += R.rs.cpu[i];
		}
		stats_round(q->o, &q->tot, &R.rs);
		if (qkdd_term && !qkdd_stop)
			qlog("SIGTERM: round %llu finished, stopping",
			     (unsigned long long)R.rs.round);
		round_free(&R);
	}
	qkdd_log_round(0);
	return 1;
}

int qkdd_session(struct qkdd *q, int cfd, int qfd, struct auth_ctx *auth)
{
	int r = session_run(q, cfd, qfd, auth);

	/*
	 * A round the fiber thread was sampling ahead is of this connection
	 * only: wiped, and the thread idle before the caller closes qfd.
	 */
	alice_detections_cancel(q);
	return r;
}
