// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_ldpc: the LDPC reconciliation library (qkd/ldpc.h) against Cascade
 * as qkdd runs it, on the same keys.
 *
 * qkdd's round, as bench_cascade's daemon rows: --block-bits b (default
 * 2^20) gives N = 1.05 b sifted bits, each wrong with probability QBER;
 * 20 % are sampled and the estimate from the sample tunes both codes; the
 * other n bits are cut into equal frames (qkd_ldpc_daemon_frames: at most
 * 2^16 bits, the same cut as Cascade's). Per QBER 1, 2, 3, 5, 8 %, D rounds:
 *
 *  - LDPC with qkd_ldpc_daemon_params() (what qkdd's Alice sends: the
 *    code for the estimate plus its standard error, the reveal steps
 *    reaching 3 standard deviations above it): the matrix built once a
 *    round (both ends build the same one; built once here and its time
 *    printed apart), Alice's SYNDROME, Bob's decoding, the MORE/REVEAL
 *    steps (at most max_steps: five, up to eight for short frames).
 *  - Cascade with qkd_cascade_daemon_params() (what qkdd runs: optimized,
 *    PARALLEL and PIPELINE), over the loopback transport: the baseline.
 *
 * Reported: f = leak / (n h(e/n)), e the true errors of the round's key
 * (pooled over the rounds, as bench_cascade's "f true"; a failed frame
 * counts its length, as qkdd sends it whole); frames failed after the
 * last reveal step (FER), frames that needed one step or more (FER1),
 * decodings a frame (dec/fr: 1 when none did) and Bob's
 * belief-propagation work a frame (kE/fr: edge updates, iterations times
 * edges of the matrix, in thousands: the CPU without the noise of a
 * shared machine); messages a round (LDPC: 1, 3, 5 or 7; Cascade: 2 a
 * round trip); and Mbit/s of key per CPU second of one core (thread CPU
 * time: LDPC Alice's syndrome + Bob's decoding; Cascade both sides), then
 * LDPC / Cascade ratios.
 *
 * -e: LDPC with qkd_ldpc_default_params() at the estimate itself (no
 * margin, no rounding, five steps): the library's efficiency, the figure
 * issue 16's f <= 1.10 at QBER 2 % is about.
 *
 * usage: bench_ldpc [-b block bits] [-D rounds] [-e] [-q QBER, one only]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <qkd/bitvec.h>
#include <qkd/cascade.h>
#include <qkd/ldpc.h>
#include <qkd/prng.h>

static uint64_t rng_state = 0x6a09e667f3bcc909ULL;
/* -e: the code for the estimate itself, the library's own figure */
static bool at_estimate;

static uint64_t rng(void)
{
	return qkd_splitmix64(&rng_state);
}

static int bern(double p)
{
	return (double)(rng() >> 11) * 0x1.0p-53 < p;
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct acc {
	double leak, nh, cpu, build, msgs, bytes, decodes, work;
	uint32_t frames, failed, failed1, bad;
};

/* LDPC on one round's keys; b[] corrected in place. */
static int run_ldpc(uint64_t **a, uint64_t **b, uint32_t F, uint32_t nf,
		    double est, size_t k, struct acc *ac)
{
	struct qkd_ldpc_msg m1 = { 0 }, m2 = { 0 };
	struct qkd_ldpc_params p;
	struct qkd_ldpc_code *c;
	struct qkd_ldpc_alice *al;
	struct qkd_ldpc_bob *bo;
	struct qkd_ldpc_stats sa, sb;
	const char *why = NULL;
	double t0;
	uint32_t f;
	int r;

	if (at_estimate ?
	    qkd_ldpc_default_params(&p, F, nf, est < 0.005 ? 0.005 : est,
				    rng()) :
	    qkd_ldpc_daemon_params(&p, F, nf, est, k, rng()))
		return -1;
	t0 = cpu_now();
	c = qkd_ldpc_code_new(&p);
	ac->build += cpu_now() - t0;
	if (!c)
		return -1;
	al = qkd_ldpc_alice_new(c, &p, (const uint64_t *const *)a);
	bo = qkd_ldpc_bob_new(c, &p, b);
	if (!al || !bo)
		return -1;
	t0 = cpu_now();
	r = qkd_ldpc_alice_syndrome(al, &m1);
	if (!r)
		r = qkd_ldpc_bob_handle(bo, m1.data, m1.len, &m2, &why);
	while (r == 1) {
		r = qkd_ldpc_alice_handle(al, m2.data, m2.len, &m1, &why);
		if (!r)
			r = qkd_ldpc_bob_handle(bo, m1.data, m1.len, &m2,
						&why);
	}
	ac->cpu += cpu_now() - t0;
	if (r < 0) {
		fprintf(stderr, "ldpc: %d %s\n", r, why ? why : "");
		return -1;
	}
	qkd_ldpc_alice_stats(al, &sa);
	qkd_ldpc_bob_stats(bo, &sb);
	if (sa.leak_bits != sb.leak_bits)
		return -1;	/* Alice and Bob disagree on the leak */
	ac->leak += (double)sa.leak_bits;
	ac->msgs += (double)sb.msgs;
	ac->bytes += (double)sb.bytes;
	ac->failed += sb.frames_failed;
	ac->decodes += (double)sb.decodes;
	{
		uint64_t edges;
		uint32_t mr, mc;

		qkd_ldpc_code_shape(c, &edges, &mr, &mc);
		ac->work += (double)sb.iterations * (double)edges;
	}
	for (f = 0; f < nf; f++) {
		/* a frame in a MORE leaked more than the first attempt */
		if (qkd_ldpc_bob_frame_leak(bo, f) >
		    p.m - p.p + QKD_LDPC_TAG_BITS)
			ac->failed1++;
		/* qkdd sends a failed frame whole: its leak is its length */
		if (qkd_ldpc_bob_frame_state(bo, f) == QKD_LDPC_FRAME_FAILED)
			ac->leak += (double)F -
				    (double)qkd_ldpc_bob_frame_leak(bo, f);
		if (qkd_ldpc_bob_frame_state(bo, f) == QKD_LDPC_FRAME_OK &&
		    qkd_bv_hamming(a[f], b[f], F))
			ac->bad++;	/* claimed corrected, still wrong */
	}
	qkd_ldpc_alice_free(al);
	qkd_ldpc_bob_free(bo);
	qkd_ldpc_code_free(c);
	qkd_ldpc_msg_free(&m1);
	qkd_ldpc_msg_free(&m2);
	return 0;
}

static int run_cascade(uint64_t **a, uint64_t **b, uint32_t F, uint32_t nf,
		       double est, struct acc *ac)
{
	struct qkd_cascade_params p;
	struct qkd_cascade_loopback lb = { 0 };
	struct qkd_cascade_transport t = { &lb,
		qkd_cascade_loopback_roundtrip };
	struct qkd_cascade_stats s;
	struct qkd_cascade_bob *bo;
	double t0;
	uint32_t f;
	int r;

	qkd_cascade_daemon_params(&p, F, nf, est, rng());
	lb.alice = qkd_cascade_alice_new(&p, (const uint64_t *const *)a);
	bo = qkd_cascade_bob_new(&p, b);
	if (!lb.alice || !bo)
		return -1;
	t0 = cpu_now();
	r = qkd_cascade_bob_run(bo, &t);
	ac->cpu += cpu_now() - t0;
	qkd_cascade_alice_stats(lb.alice, &s);
	ac->leak += (double)s.disclosed_bits;
	ac->msgs += 2.0 * (double)s.rounds;
	ac->bytes += (double)(s.req_bytes + s.reply_bytes);
	for (f = 0; f < nf; f++)
		if (qkd_bv_hamming(a[f], b[f], F))
			ac->bad++;
	qkd_cascade_alice_free(lb.alice);
	qkd_cascade_bob_free(bo);
	qkd_cascade_msg_free(&lb.reply);
	return r;
}

int main(int argc, char **argv)
{
	static const double qall[] = { 0.01, 0.02, 0.03, 0.05, 0.08 };
	double qone = 0;
	uint32_t block = 1u << 20, D = 2, F, nf, i, f, r;
	int c;

	while ((c = getopt(argc, argv, "b:D:eq:")) != -1) {
		switch (c) {
		case 'e':
			at_estimate = true;
			break;
		case 'b':
			block = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'D':
			D = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			qone = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-b block bits] [-D rounds] [-e] [-q QBER]\n",
				argv[0]);
			return 2;
		}
	}
	if (block < 8192 || block > (1u << 24) || !D ||
	    (qone && (qone < 0.005 || qone > 0.11)))
		return 2;
	{
		size_t N = (size_t)(1.05 * block);
		size_t k = (size_t)(0.2 * (double)N + 0.999);

		qkd_ldpc_daemon_frames(N - k, &F, &nf);
	}
	printf("LDPC reconciliation vs Cascade (qkdd's configuration), the same keys: --block-bits %u, 20 %% sampled, %u frames of %u bits, %u rounds a QBER; LDPC's code %s\n",
	       block, nf, F, D,
	       at_estimate ? "for the estimate itself (-e: qkd_ldpc_default_params)" :
	       "as qkdd's Alice makes it (qkd_ldpc_daemon_params)");
	printf("f: leak / (n h(e/n)), e the true errors; FER1: frames that needed a reveal step; FER: frames failed after the last; dec/fr: decodings a frame; kE/fr: edge updates a frame, thousands; msgs: messages a round; Mb/s: key bits per CPU second of one core\n\n");
	printf("%-5s | %7s %9s %9s %6s %7s %6s %8s %8s %9s | %7s %8s %8s | %7s %8s %9s\n",
	       "QBER", "f LDPC", "FER1", "FER", "dec/fr", "kE/fr", "msgs", "Mb/s",
	       "build ms",
	       "KB/round", "f Casc", "msgs", "Mb/s", "f L/C", "Mb/s L/C",
	       "msgs L/C");
	for (i = 0; i < sizeof(qall) / sizeof(qall[0]); i++) {
		double q = qone ? qone : qall[i];
		struct acc L = { 0 }, C = { 0 };
		uint64_t **a = calloc(nf, sizeof(*a)), **b = calloc(nf, sizeof(*b));
		uint64_t **b2 = calloc(nf, sizeof(*b2));
		size_t W = QKD_BV_WORDS(F), N = (size_t)(1.05 * block);
		size_t k = (size_t)(0.2 * (double)N + 0.999);

		if (!a || !b || !b2)
			return 1;
		for (f = 0; f < nf; f++) {
			a[f] = malloc(W * 8);
			b[f] = malloc(W * 8);
			b2[f] = malloc(W * 8);
			if (!a[f] || !b[f] || !b2[f])
				return 1;
		}
		for (r = 0; r < D; r++) {
			size_t se = 0, e = 0, j;
			double est, nb = (double)F * nf;

			for (j = 0; j < k; j++)
				se += (size_t)bern(q);
			est = (double)se / (double)k;
			for (f = 0; f < nf; f++) {
				for (j = 0; j < W; j++)
					a[f][j] = rng();
				qkd_bv_clear_tail(a[f], F);
				memcpy(b[f], a[f], W * 8);
				for (j = 0; j < F; j++)
					if (bern(q)) {
						qkd_bv_flip(b[f], j);
						e++;
					}
				memcpy(b2[f], b[f], W * 8);
			}
			L.nh += nb * qkd_ldpc_h2((double)e / nb);
			C.nh = L.nh;
			L.frames += nf;
			if (run_ldpc(a, b, F, nf, est, k, &L) ||
			    run_cascade(a, b2, F, nf, est, &C)) {
				fprintf(stderr, "run failed\n");
				return 1;
			}
		}
		{
			double bits = (double)F * nf * D;
			double fl = L.leak / L.nh, fc = C.leak / C.nh;
			double ml = bits / L.cpu / 1e6, mc = bits / C.cpu / 1e6;

			printf("%4.0f%% | %7.4f %4u/%-4u %4u/%-4u %6.2f %7.0f %6.2f %8.3f %8.0f %9.1f | %7.4f %8.0f %8.2f | %7.3f %8.4f %9.4f\n",
			       q * 100, fl, L.failed1, L.frames, L.failed,
			       L.frames, L.decodes / L.frames,
			       L.work / L.frames / 1e3, L.msgs / D, ml, L.build / D * 1e3,
			       L.bytes / D / 1024, fc, C.msgs / D, mc, fl / fc,
			       ml / mc, L.msgs / C.msgs);
			if (L.bad || C.bad)
				printf("      frames claimed corrected but wrong: LDPC %u (must be 0), Cascade left wrong %u\n",
				       L.bad, C.bad);
		}
		fflush(stdout);
		for (f = 0; f < nf; f++) {
			free(a[f]);
			free(b[f]);
			free(b2[f]);
		}
		free(a);
		free(b);
		free(b2);
		if (qone)
			break;
	}
	return 0;
}
