// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd's error correction besides Cascade (issue 16): which method a round
 * uses, and the LDPC exchange at both ends.
 *
 * The choice. Both ends state in their HELLO the methods they allow
 * (--reconcile auto: both; cascade or ldpc: that one); a connection with
 * none in common is refused with both sets named. Alice picks each
 * round's method among the common ones and names it at the end of her
 * sifting answer, before the frames are cut (Cascade and LDPC cut the key
 * into frames of different lengths, and the bits a cut drops must not
 * count in the decoy bound). With auto she picks the one that predicts
 * the higher secret key rate,
 *
 *	rate(m) = n (l0 - f_m h(Q)) / (T_base + rt_m RTT + c_m n),
 *
 * l0 n the secret length the last round would have had without error
 * correction's leak, Q the last QBER estimate, T_base the last round's
 * wall time outside error correction, and per method its efficiency f_m,
 * round trips rt_m and seconds per key bit c_m (what its wall time was
 * beyond its round trips), each a running mean over the rounds that used
 * it on this connection (the newest weighing 0.3), or a prior before one
 * did. RTT is the least of this connection's samples: the HELLO
 * exchange, and at every request of a round the time from Alice's answer
 * to Bob's next request; the first round of a connection runs Cascade,
 * for these samples. So Cascade's ~500 round trips a round win on a
 * short link and LDPC's zero to four on a long one, and a method whose
 * rounds fail (its frames disclosed, f high) loses.
 *
 * LDPC (qkd/ldpc.h). Alice's estimation sample carries the parameters and
 * the syndromes of every frame: no round trip of its own. Bob decodes,
 * asks for the next punctured bits of the frames that did not decode
 * (LDPC_MORE, LDPC_REVEAL) as often as the parameters allow, and then
 * asks for the frames still undecoded in full (EC_DISCLOSE_REQ,
 * EC_DISCLOSE): such a frame's leak is its length, so a decoding that
 * fails costs that frame, not the round. All of it is deferred, parsed
 * before its tag is checked: a malformed message raises the alarm and
 * aborts the round, as a malformed Cascade message does.
 *
 * Codes. Building a parity-check matrix takes 0.3-0.7 s for a 2^16-bit
 * frame, so each end keeps the last few it built (the same parameters
 * and seed give the same matrix), the frames are cut to a multiple of
 * 64 bits (qkd_ldpc_daemon_frames), Alice draws one seed per
 * connection, and rounds the QBER the syndrome length is made for up to
 * a step of 0.05 % (about 1 % more syndrome at QBER 2 %): rounds of one
 * link then mostly reuse a code. Bob's decoder uses the estimate itself, and
 * decodes the frames on as many threads as there are CPUs.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "qkd/bits.h"
#include "qkd/frame.h"
#include "qkd/ldpc.h"
#include "qkd/prng.h"
#include "session.h"

/* Priors before a method ran on the connection (bench_throughput,
 * bench_ldpc on this 2-core machine, 2^21-bit blocks). */
static const struct ec_history ec_prior[2] = {
	/* Cascade: f 1.08, ~530 round trips, 0.3 us per key bit */
	{ .f = 1.08, .roundtrips = 600, .sec_per_bit = 0.3e-6 },
	/* LDPC: f 1.15, one round trip, 1.5 us per key bit to decode */
	{ .f = 1.15, .roundtrips = 1, .sec_per_bit = 1.5e-6 },
};

int (*qkdd_ldpc_params)(struct qkd_ldpc_params *p, uint32_t frame_bits,
			uint32_t nframes, double est, uint64_t sample_bits,
			uint64_t seed) = qkd_ldpc_daemon_params;

double ec_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

const char *ec_method_name(unsigned int m)
{
	return m == QKDD_EC_CASCADE ? "cascade" :
	       m == QKDD_EC_LDPC ? "ldpc" : "none";
}

uint8_t ec_allowed(enum qkdd_reconcile r)
{
	return r == QKDD_EC_AUTO ? QKDD_EC_ALL : (uint8_t)QKDD_EC_BIT(r);
}

/*
 * This host's LDPC decoding speed, measured once: a 4096-bit frame at
 * QBER 2 % decoded alone (its matrix built outside the clock), seconds of
 * CPU a key bit, at least the prior's. The prior is a fast machine's: on
 * a host ten or thirty times slower (an emulated one) auto would pick
 * LDPC and its rounds would take a minute.
 */
static double ldpc_calibrate(void)
{
	static double per_bit;
	struct qkd_ldpc_params p;
	struct qkd_ldpc_code *c = NULL;
	uint64_t x[64], y[64], s[64], st = 0x9e3779b97f4a7c15ull;
	struct timespec t0, t1;
	uint32_t it;

	if (per_bit > 0)
		return per_bit;
	per_bit = ec_prior[QKDD_EC_LDPC - 1].sec_per_bit;
	if (qkd_ldpc_default_params(&p, 4096, 1, 0.02, 1) ||
	    !(c = qkd_ldpc_code_new(&p)) || p.m > 64 * 64)
		goto out;
	for (int i = 0; i < 64; i++)
		x[i] = y[i] = qkd_splitmix64(&st);
	for (int e = 0; e < 82; e++) {
		uint32_t b = (uint32_t)(qkd_splitmix64(&st) % 4096);

		y[b / 64] ^= 1ull << (b % 64);
	}
	memset(s, 0, sizeof(s));
	qkd_ldpc_syndrome(c, x, NULL, s);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	qkd_ldpc_decode(c, &p, y, s, NULL, 0, &it);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	{
		double t = (double)(t1.tv_sec - t0.tv_sec) +
			   (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

		if (t / 4096 > per_bit)
			per_bit = t / 4096;
	}
out:
	qkd_ldpc_code_free(c);
	return per_bit;
}

void ec_connection_start(struct qkdd *q)
{
	if (q->o->role == QKDD_ALICE && q->o->reconcile == QKDD_EC_AUTO)
		q->ecm.ldpc_sec_per_bit = ldpc_calibrate();
	q->ecm.rtt = -1;
	q->ldpc_seed_set = false;
	for (int i = 0; i < 2; i++)
		q->ecm.m[i].have = false;
}

void ec_rtt_sample(struct qkdd *q, double seconds)
{
	if (seconds > 0 && (q->ecm.rtt < 0 || seconds < q->ecm.rtt))
		q->ecm.rtt = seconds;
}

double ec_predict(const struct ec_model *e, unsigned int m, double n,
		  double *key_bits)
{
	struct ec_history prior = ec_prior[m - 1];
	const struct ec_history *h = e->m[m - 1].have ? &e->m[m - 1] : &prior;

	if (!e->m[m - 1].have && e->ldpc_sec_per_bit > prior.sec_per_bit &&
	    m == QKDD_EC_LDPC)
		prior.sec_per_bit = e->ldpc_sec_per_bit;
	double q = e->qber >= 0 ? e->qber : 0.02;
	double l0 = e->l0_per_bit > 0 ? e->l0_per_bit : 0.5;
	double rtt = e->rtt > 0 ? e->rtt : 0;
	double key = n * (l0 - h->f * qkd_h2(q));
	double t = e->base_s + h->roundtrips * rtt + h->sec_per_bit * n;

	if (key < 0)
		key = 0;
	if (key_bits)
		*key_bits = key;
	return t > 0 ? key / t : key;
}

/* A method without figures of its own is tried if predicted this close. */
#define EC_EXPLORE	0.5

unsigned int ec_choose(const struct ec_model *e, uint8_t methods, double n)
{
	unsigned int best, other;
	double pl, pc;

	if (!(methods & QKDD_EC_BIT(QKDD_EC_LDPC)))
		return QKDD_EC_CASCADE;
	if (!(methods & QKDD_EC_BIT(QKDD_EC_CASCADE)))
		return QKDD_EC_LDPC;
	/* the LDPC parameters cover QBER 0.5-11 % */
	if (e->qber > 0.10)
		return QKDD_EC_CASCADE;
	pl = ec_predict(e, QKDD_EC_LDPC, n, NULL);
	pc = ec_predict(e, QKDD_EC_CASCADE, n, NULL);
	best = pl > pc ? QKDD_EC_LDPC : QKDD_EC_CASCADE;
	other = QKDD_EC_CASCADE + QKDD_EC_LDPC - best;
	/*
	 * A method not run yet on this connection is predicted from its
	 * prior (LDPC's decoding from this host's calibration, one frame on
	 * one thread), which can be well off what the daemon gets: at 2^23-bit
	 * blocks and 10 ms the prior put LDPC below Cascade, and measured it
	 * made 1.1 Mbit/s to Cascade's 0.7. If its prediction is within
	 * EC_EXPLORE of the best's, it gets one round, and its own figures
	 * decide from then on.
	 */
	if (e->m[best - 1].have && !e->m[other - 1].have &&
	    fmin(pl, pc) >= EC_EXPLORE * fmax(pl, pc))
		return other;
	return best;
}

unsigned int ec_round_method(struct qkdd *q, size_t sifted)
{
	double n = (double)sifted * (1 - q->pp.sample_frac);
	unsigned int m;

	if (q->o->reconcile != QKDD_EC_AUTO)
		return q->o->reconcile;
	/*
	 * Cascade first on a connection (when both allow it): its requests
	 * measure the RTT (the HELLO's sample includes Bob's work on it,
	 * milliseconds on a slow host), and give it figures of its own;
	 * and for a key too short for one LDPC frame.
	 */
	if ((q->ec_methods & QKDD_EC_BIT(QKDD_EC_CASCADE)) &&
	    (!q->ecm.m[QKDD_EC_CASCADE - 1].have ||
	     n < 2 * QKD_LDPC_MIN_FRAME_BITS))
		return QKDD_EC_CASCADE;
	m = ec_choose(&q->ecm, q->ec_methods, n);
	if (q->o->verbose)
		qlog("reconciliation: %s (predicted %.3f Mbit/s, %s %.3f; RTT %.2f ms, QBER %.4f)",
		     ec_method_name(m),
		     ec_predict(&q->ecm, m, n, NULL) / 1e6,
		     ec_method_name(QKDD_EC_CASCADE + QKDD_EC_LDPC - m),
		     ec_predict(&q->ecm, QKDD_EC_CASCADE + QKDD_EC_LDPC - m, n,
				NULL) / 1e6,
		     q->ecm.rtt * 1e3, q->ecm.qber);
	return m;
}

/*
 * The newest round's weight in a method's figures: an LDPC frame sent
 * whole raises one round's f by a third, and that happens in a few
 * rounds out of ten at QBER 1 %; the mean is what predicts.
 */
#define EC_NEW_WEIGHT	0.3

static double ec_mean(bool have, double old, double x)
{
	return have ? old + EC_NEW_WEIGHT * (x - old) : x;
}

void ec_learn(struct qkdd *q, const struct round *R, double leak_ec,
	      uint64_t secret_bits)
{
	struct ec_model *e = &q->ecm;
	struct ec_history *h;
	double n = (double)R->n, nh = n * qkd_h2(R->est.qber), wall, rt, c;

	if ((R->ec != QKDD_EC_CASCADE && R->ec != QKDD_EC_LDPC) || !R->n)
		return;
	h = &e->m[R->ec - 1];
	wall = R->ec_t1 - R->ec_t0;
	rt = (double)R->rs.ec_roundtrips;
	/*
	 * Beyond the round trips; and beyond building the round's matrix if
	 * it was new here (at Bob too: the same matrix, and Alice waits for
	 * it), which the next rounds of the link do not pay -- counted, it
	 * made the one round auto tries LDPC in look twice as slow.
	 */
	c = wall - rt * (e->rtt > 0 ? e->rtt : 0) - 2 * R->ec_build_s;
	if (c < 0)
		c = 0;
	h->f = ec_mean(h->have, h->f,
		       nh > 0 ? leak_ec / nh : ec_prior[R->ec - 1].f);
	h->roundtrips = ec_mean(h->have, h->roundtrips, rt);
	h->sec_per_bit = ec_mean(h->have, h->sec_per_bit, c / n);
	h->have = true;
	e->qber = R->est.qber;
	e->l0_per_bit = ((double)secret_bits + leak_ec) / n;
	e->base_s = ec_now() - ((double)R->t0.tv_sec +
			       (double)R->t0.tv_nsec / 1e9) - wall;
	if (e->base_s < 0)
		e->base_s = 0;
}

int ec_recv(struct qkdd *q, struct round *R, uint32_t want, uint8_t *type,
	    double since)
{
	int r = recv_msg(q, want, type, true);

	if (r) {
		r = rx_fail(q, R, r);
		return r ? r : 1;
	}
	if (since > 0)
		ec_rtt_sample(q, ec_now() - since);
	return 0;
}

/* ---- codes ---------------------------------------------------------------- */

static bool same_code(const struct qkd_ldpc_params *a,
		      const struct qkd_ldpc_params *b)
{
	return a->frame_bits == b->frame_bits && a->m == b->m &&
	       a->p == b->p && a->seed == b->seed;
}

static const struct qkd_ldpc_code *ldpc_code(struct qkdd *q,
					     const struct qkd_ldpc_params *p)
{
	struct ldpc_cache *c = &q->ldpc;
	unsigned int i, old = 0;

	for (i = 0; i < LDPC_CACHE_CODES; i++) {
		if (c->code[i] && same_code(&c->params[i], p)) {
			c->used[i] = ++c->clock;
			return c->code[i];
		}
		if (c->used[i] < c->used[old])
			old = i;
	}
	qkd_ldpc_code_free(c->code[old]);
	c->code[old] = qkd_ldpc_code_new(p);
	if (!c->code[old])
		return NULL;
	c->params[old] = *p;
	c->used[old] = ++c->clock;
	return c->code[old];
}

void ldpc_cache_free(struct ldpc_cache *c)
{
	for (unsigned int i = 0; i < LDPC_CACHE_CODES; i++) {
		qkd_ldpc_code_free(c->code[i]);
		c->code[i] = NULL;
	}
}

/* ---- Alice ----------------------------------------------------------------- */

int alice_ldpc_params(struct qkdd *q, struct round *R, struct wbuf *w)
{
	struct qkd_ldpc_params *lp = &R->lp;
	double qe = R->est.qber;
	uint8_t buf[QKD_LDPC_PARAMS_LEN];

	if (!q->ldpc_seed_set) {
		if (getrandom(&q->ldpc_seed, sizeof(q->ldpc_seed), 0) !=
		    sizeof(q->ldpc_seed))
			return -EIO;
		q->ldpc_seed_set = true;
	}
	if (qe > 0.11)
		qe = 0.11;
	if (qkdd_ldpc_params(lp, R->F, R->nf, qe, R->est.k, q->ldpc_seed))
		return -EINVAL;
	if (qkd_ldpc_params_check(lp, NULL))
		return -EINVAL;
	wb_bytes(w, buf, qkd_ldpc_params_encode(lp, buf));
	return 0;
}

int alice_ldpc_syndrome(struct qkdd *q, struct round *R, struct wbuf *w)
{
	struct qkd_ldpc_msg out = { 0 };
	double t0 = ec_now();
	const struct qkd_ldpc_code *c = ldpc_code(q, &R->lp);
	int r;

	R->ec_build_s = ec_now() - t0;	/* a new matrix: ec_learn() */
	if (!c)
		return -ENOMEM;
	R->la = qkd_ldpc_alice_new(c, &R->lp,
				   (const uint64_t *const *)R->frames);
	if (!R->la)
		return -errno;
	r = qkd_ldpc_alice_syndrome(R->la, &out);
	if (!r)
		wb_bytes(w, out.data, out.len);
	qkd_ldpc_msg_free(&out);
	return r;
}

/*
 * Bob's EC_DISCLOSE_REQ: the count, then the frame numbers, ascending,
 * each below nf (u32 each, big endian as wire.c writes). The frames are
 * marked disclosed.
 */
static int parse_disclose(struct round *R, const uint8_t *p, size_t len,
			  bool *disclosed, uint32_t *count)
{
	struct rbuf rb = { p, len, 0, false };
	uint64_t n = rb_u(&rb, 4), prev = 0;

	if (rb.err || !n || n > R->nf || len != 4 + 4 * n)
		return -EPROTO;
	for (uint64_t i = 0; i < n; i++) {
		uint64_t f = rb_u(&rb, 4);

		if (f >= R->nf || (i && f <= prev))
			return -EPROTO;
		prev = f;
	}
	rb.off = 4;
	for (uint64_t i = 0; i < n; i++)
		disclosed[rb_u(&rb, 4)] = true;
	*count = (uint32_t)n;
	return 0;
}

int alice_ldpc_exchange(struct qkdd *q, struct round *R, uint8_t *type)
{
	struct qkd_ldpc_msg out = { 0 };
	struct wbuf w = { 0 };
	bool *disclosed = calloc(R->nf, sizeof(*disclosed));
	bool asked = false;
	double sent = 0;
	const char *why;
	uint32_t count;
	int r;

	if (!disclosed)
		return -ENOMEM;
	for (;;) {
		r = ec_recv(q, R, (1u << QKD_MSG_LDPC_MORE) |
				  (1u << QKD_MSG_EC_DISCLOSE_REQ) |
				  (1u << QKD_MSG_VERIFY_HASH), type, sent);
		if (r)
			goto out;
		if (*type == QKD_MSG_VERIFY_HASH)
			break;
		R->rs.ec_roundtrips++;
		if (*type == QKD_MSG_LDPC_MORE) {
			/* no reveal step after the frames were disclosed */
			r = asked ? -EPROTO :
			    qkd_ldpc_alice_handle(R->la, q->msg, q->msg_len,
						  &out, &why);
			if (asked)
				why = "a reveal request after the disclosure";
			if (r == -EPROTO) {
				auth_strike(q, "malformed LDPC request");
				round_abort(q, R, QKD_ABORT_PROTOCOL,
					    "malformed LDPC request: %s", why);
				r = 1;
				goto out;
			}
			if (r)
				goto out;
			r = send_msg(q, QKD_MSG_LDPC_REVEAL, out.data, out.len,
				     AUTH_DEFER);
		} else {
			if (asked || parse_disclose(R, q->msg, q->msg_len,
						    disclosed, &count)) {
				auth_strike(q, "malformed LDPC disclosure request");
				round_abort(q, R, QKD_ABORT_PROTOCOL,
					    "malformed LDPC disclosure request");
				r = 1;
				goto out;
			}
			asked = true;
			R->rs.ec_frames_disclosed = count;
			w.len = 0;
			for (uint32_t f = 0; f < R->nf; f++)
				if (disclosed[f])
					wb_bits(&w, R->frames[f], R->F);
			if (w.err) {
				r = -ENOMEM;
				goto out;
			}
			r = send_msg(q, QKD_MSG_EC_DISCLOSE, w.p, w.len,
				     AUTH_DEFER);
		}
		if (r)
			goto out;
		sent = ec_now();
	}
	/*
	 * The leak: per frame what the syndrome, the tag and the punctured
	 * bits revealed disclosed, or the whole frame if it was sent.
	 */
	R->leak_ec = 0;
	for (uint32_t f = 0; f < R->nf; f++)
		R->leak_ec += disclosed[f] ? R->F :
			      qkd_ldpc_alice_frame_leak(R->la, f);
	r = 0;
out:
	free(disclosed);
	wb_free(&w);
	qkd_ldpc_msg_free(&out);
	return r;
}

/* ---- Bob ------------------------------------------------------------------- */

int bob_ldpc(struct qkdd *q, struct round *R, struct rbuf *rb)
{
	struct qkd_ldpc_params lp;
	struct qkd_ldpc_msg out = { 0 };
	struct wbuf w = { 0 };
	const struct qkd_ldpc_code *c;
	const uint8_t *pb = rb_bytes(rb, QKD_LDPC_PARAMS_LEN);
	const char *why = NULL;
	uint32_t nfail = 0;
	uint8_t type;
	int r;

	if (!pb || qkd_ldpc_params_decode(&lp, pb, QKD_LDPC_PARAMS_LEN, &why) ||
	    lp.frame_bits != R->F || lp.nframes != R->nf) {
		round_malformed(q, R, "estimation: bad LDPC parameters%s%s",
				why ? ": " : "", why ? why : "");
		return 1;
	}
	stage_switch(QS_EC);
	R->ec_t0 = ec_now();
	c = ldpc_code(q, &lp);
	if (!c)
		return -ENOMEM;
	R->lp = lp;
	R->lb = qkd_ldpc_bob_new(c, &lp, (uint64_t *const *)R->frames);
	if (!R->lb)
		return -errno;
	/*
	 * The frames are independent: decode them on every CPU (the same
	 * outcome, frame for frame; fewer threads if memory is short).
	 */
	{
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		qkd_ldpc_bob_set_threads(R->lb, ncpu < 1 ? 1 :
					 ncpu > QKD_LDPC_MAX_THREADS ?
					 QKD_LDPC_MAX_THREADS :
					 (unsigned int)ncpu);
	}
	/* the syndromes: the rest of Alice's estimation sample */
	r = qkd_ldpc_bob_handle(R->lb, rb->p + rb->off, rb->len - rb->off,
				&out, &why);
	while (r == 1) {
		r = send_msg(q, QKD_MSG_LDPC_MORE, out.data, out.len,
			     AUTH_DEFER);
		if (r)
			goto out;
		R->rs.ec_roundtrips++;
		r = ec_recv(q, R, 1u << QKD_MSG_LDPC_REVEAL, &type, 0);
		if (r)
			goto out;
		r = qkd_ldpc_bob_handle(R->lb, q->msg, q->msg_len, &out, &why);
	}
	if (r == -EPROTO) {
		round_malformed(q, R, "malformed LDPC message: %s", why);
		r = 1;
		goto out;
	}
	if (r)
		goto out;
	/* frames still undecoded: Alice sends them whole */
	for (uint32_t f = 0; f < R->nf; f++)
		nfail += qkd_ldpc_bob_frame_state(R->lb, f) !=
			 QKD_LDPC_FRAME_OK;
	if (nfail) {
		struct rbuf fb;

		wb_u(&w, nfail, 4);
		for (uint32_t f = 0; f < R->nf; f++)
			if (qkd_ldpc_bob_frame_state(R->lb, f) !=
			    QKD_LDPC_FRAME_OK)
				wb_u(&w, f, 4);
		if (w.err) {
			r = -ENOMEM;
			goto out;
		}
		r = send_msg(q, QKD_MSG_EC_DISCLOSE_REQ, w.p, w.len,
			     AUTH_DEFER);
		if (r)
			goto out;
		R->rs.ec_roundtrips++;
		r = ec_recv(q, R, 1u << QKD_MSG_EC_DISCLOSE, &type, 0);
		if (r)
			goto out;
		fb = (struct rbuf){ q->msg, q->msg_len, 0, false };
		for (uint32_t f = 0; f < R->nf && !fb.err; f++) {
			uint64_t *bits;

			if (qkd_ldpc_bob_frame_state(R->lb, f) ==
			    QKD_LDPC_FRAME_OK)
				continue;
			bits = rb_bits(&fb, R->F);
			if (!bits)
				break;
			memcpy(R->frames[f], bits,
			       qkd_bits_words(R->F) * sizeof(uint64_t));
			qkd_bits_free(bits, R->F, 0);
		}
		if (fb.err || !rb_done(&fb)) {
			round_malformed(q, R,
					"malformed LDPC disclosure: not the %u frames asked for",
					nfail);
			r = 1;
			goto out;
		}
	}
	R->rs.ec_frames_disclosed = nfail;
	R->leak_ec = 0;
	for (uint32_t f = 0; f < R->nf; f++)
		R->leak_ec += qkd_ldpc_bob_frame_state(R->lb, f) ==
			      QKD_LDPC_FRAME_OK ?
			      qkd_ldpc_bob_frame_leak(R->lb, f) : R->F;
	/* the errors corrected: the frames against the key before */
	R->corrected = 0;
	for (uint32_t f = 0; f < R->nf; f++)
		for (uint32_t i = 0; i < R->F; i++)
			R->corrected += qkd_bit_get(R->frames[f], i) !=
					qkd_bit_get(R->key,
						    (size_t)f * R->F + i);
	R->ec_t1 = ec_now();
	r = 0;
out:
	{
		struct qkd_ldpc_stats ls;

		/* the decoding threads' CPU time, besides this thread's */
		qkd_ldpc_bob_stats(R->lb, &ls);
		stage_add(QS_EC, ls.thread_cpu_s);
	}
	wb_free(&w);
	qkd_ldpc_msg_free(&out);
	return r;
}
