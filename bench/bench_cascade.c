// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_cascade: efficiency and throughput of Cascade.
 *
 * For QBER 1, 2, 5 and 8 %, frames of n = 10^6 bits with exactly n*QBER
 * errors are corrected by the optimized variant, the same with PARALLEL
 * scheduling, and the original Cascade (Brassard-Salvail: 4 passes,
 * k1 = 0.73/Q) as the baseline, in the same run; then the optimized variant
 * again with one frame in flight (smallest working set: the in-process
 * throughput is bound by cache misses, and F frames in flight multiply the
 * working set; in-flight frames are there to hide network round trips). Alice and Bob run in this
 * process on one core, talking through the loopback transport (every
 * message is encoded and decoded).
 *
 * Reported: f = disclosed / (n h(QBER)) (the Shannon limit is f = 1),
 * frames left with errors (verification would discard them), Mbit/s of
 * corrected key per CPU second (process CPU time, both sides) and per
 * wall-clock second, round trips per batch (the latency every frame of the
 * batch sees) and per frame (amortized over the frames in flight), request
 * bytes per disclosed parity bit.
 *
 * Then the daemon's own configuration (qkd_cascade_daemon_params(), what
 * qkdd runs): a round of -b sifted-bit target (qkdd's --block-bits,
 * default 2^20) gives N = 1.05 b sifted bits, each wrong with probability
 * QBER; 20 % of them are sampled (qkdd's --sample) and the estimate from
 * the sample tunes Cascade, the other n bits are cut into frames of at
 * most QKD_CASCADE_DAEMON_FRAME_MAX bits, all in flight, PARALLEL. Reported
 * per round: f against the true errors of the key and f against the
 * estimate (what the daemon's round line says), the round trips, and
 * Mbit/s per CPU second -- the baseline for it is the 10^6-bit rows above.
 * Each QBER twice on the same keys: "before", the schedule before issue 16
 * (each pass's block parities asked when the pass begins, no PIPELINE),
 * and "qkdd", what the daemon runs now; then the ratios of round trips
 * and of f.
 *
 * usage: bench_cascade [-n bits] [-F frames in flight] [-R timed batches]
 *                      [-b daemon block bits] [-D daemon rounds]
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <qkd/bitvec.h>
#include <qkd/cascade.h>
#include <qkd/prng.h>

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
	return qkd_splitmix64(&rng_state);
}

static double now(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct row {
	double f;
	double mbps_cpu, mbps_wall;
	double rounds;		/* per batch */
	double req_bytes_per_bit;
	uint32_t bad, frames;
};

/* Keys for one batch: Bob's = Alice's with exactly nerr errors. */
static void make_keys(uint64_t **a, uint64_t **b, uint32_t F, uint32_t n,
		      uint32_t nerr)
{
	size_t w = QKD_BV_WORDS(n), i;
	uint32_t f, c;

	for (f = 0; f < F; f++) {
		for (i = 0; i < w; i++)
			a[f][i] = rng();
		memcpy(b[f], a[f], w * 8);
		for (c = 0; c < nerr;) {
			uint32_t x = (uint32_t)(rng() % n);

			if (qkd_bv_get(a[f], x) == qkd_bv_get(b[f], x)) {
				qkd_bv_flip(b[f], x);
				c++;
			}
		}
	}
}

static int run(uint32_t variant, uint32_t flags, double q, uint32_t n,
	       uint32_t F, uint32_t R, struct row *out)
{
	struct qkd_cascade_params p = {
		.variant = variant, .flags = flags, .frame_bits = n,
		.nframes = F, .qber_ppm = (uint32_t)(q * 1e6 + 0.5),
		.seed = rng(),
	};
	uint32_t nerr = (uint32_t)(q * n + 0.5), f, r;
	uint64_t **a = calloc(F, sizeof(*a)), **b = calloc(F, sizeof(*b));
	struct qkd_cascade_loopback lb = { 0 };
	struct qkd_cascade_transport t = { &lb,
		qkd_cascade_loopback_roundtrip };
	struct qkd_cascade_stats s0, s1, sb;
	struct qkd_cascade_alice *al;
	struct qkd_cascade_bob *bo;
	double cpu = 0, wall = 0;
	int err = 0;

	for (f = 0; f < F; f++) {
		a[f] = malloc(QKD_BV_WORDS(n) * 8);
		b[f] = malloc(QKD_BV_WORDS(n) * 8);
	}
	memset(out, 0, sizeof(*out));
	make_keys(a, b, F, n, nerr);
	al = qkd_cascade_alice_new(&p, (const uint64_t *const *)a);
	bo = qkd_cascade_bob_new(&p, b);
	if (!al || !bo)
		return -1;
	lb.alice = al;
	/* warm-up batch (allocations, page faults), not timed */
	err = qkd_cascade_bob_run(bo, &t);
	qkd_cascade_alice_stats(al, &s0);
	for (r = 0; r < R && !err; r++) {
		double c0, w0;

		make_keys(a, b, F, n, nerr);
		qkd_cascade_alice_reset(al, (const uint64_t *const *)a);
		qkd_cascade_bob_reset(bo, b);
		c0 = now(CLOCK_PROCESS_CPUTIME_ID);
		w0 = now(CLOCK_MONOTONIC);
		err = qkd_cascade_bob_run(bo, &t);
		cpu += now(CLOCK_PROCESS_CPUTIME_ID) - c0;
		wall += now(CLOCK_MONOTONIC) - w0;
		for (f = 0; f < F; f++)
			if (qkd_bv_hamming(a[f], b[f], n))
				out->bad++;
	}
	qkd_cascade_alice_stats(al, &s1);
	qkd_cascade_bob_stats(bo, &sb);
	out->frames = F * R;
	out->f = (double)(s1.disclosed_bits - s0.disclosed_bits) /
		((double)n * F * R * qkd_cascade_h2((double)nerr / n));
	out->mbps_cpu = (double)n * F * R / cpu / 1e6;
	out->mbps_wall = (double)n * F * R / wall / 1e6;
	out->rounds = (double)(s1.rounds - s0.rounds) / R;
	out->req_bytes_per_bit = (double)(s1.req_bytes - s0.req_bytes) /
		(double)(s1.disclosed_bits - s0.disclosed_bits);
	if (sb.disclosed_bits != s1.disclosed_bits)
		err = -1;	/* Alice and Bob disagree on the leak */
	qkd_cascade_alice_free(al);
	qkd_cascade_bob_free(bo);
	qkd_cascade_msg_free(&lb.reply);
	for (f = 0; f < F; f++) {
		free(a[f]);
		free(b[f]);
	}
	free(a);
	free(b);
	return err;
}

static int bern(double p)
{
	return (double)(rng() >> 11) * 0x1.0p-53 < p;
}

struct drow {
	double f_true, f_est, mbps_cpu, rounds, qber_est;
	uint32_t F, nf, bad, frames;
};

/* Rounds of qkdd's configuration: see the top of the file. */
static int run_daemon(double q, uint32_t block, uint32_t R, bool before,
		      struct drow *out)
{
	size_t N = (size_t)(1.05 * block), k = (size_t)(0.2 * (double)N + 0.999);
	size_t n = N - k;
	uint32_t F, nf, r, f, i;
	double cpu = 0, disc = 0, ht = 0, he = 0;
	uint64_t **a, **b;
	int err = 0;

	qkd_cascade_daemon_frames(n, &F, &nf);
	memset(out, 0, sizeof(*out));
	out->F = F;
	out->nf = nf;
	a = calloc(nf, sizeof(*a));
	b = calloc(nf, sizeof(*b));
	if (!a || !b || F < 64)
		return -1;
	for (f = 0; f < nf; f++) {
		a[f] = malloc(QKD_BV_WORDS(F) * 8);
		b[f] = malloc(QKD_BV_WORDS(F) * 8);
		if (!a[f] || !b[f])
			return -1;
	}
	for (r = 0; r < R + 1 && !err; r++) {
		struct qkd_cascade_params p;
		struct qkd_cascade_loopback lb = { 0 };
		struct qkd_cascade_transport t = { &lb,
			qkd_cascade_loopback_roundtrip };
		struct qkd_cascade_stats s;
		struct qkd_cascade_bob *bo;
		size_t se = 0, e = 0;
		double c0, c1, est, nb = (double)F * nf;

		for (i = 0; i < k; i++)
			se += (size_t)bern(q);
		for (f = 0; f < nf; f++) {
			for (i = 0; i < QKD_BV_WORDS(F); i++)
				a[f][i] = rng();
			memcpy(b[f], a[f], QKD_BV_WORDS(F) * 8);
			for (i = 0; i < F; i++)
				if (bern(q)) {
					qkd_bv_flip(b[f], i);
					e++;
				}
		}
		est = (double)se / (double)k;
		qkd_cascade_daemon_params(&p, F, nf, est, rng());
		if (before)
			p.flags &= ~QKD_CASCADE_F_PIPELINE;
		lb.alice = qkd_cascade_alice_new(&p, (const uint64_t *const *)a);
		bo = qkd_cascade_bob_new(&p, b);
		if (!lb.alice || !bo ||
		    (before && qkd_cascade_bob_set_tops_ahead(bo, false)))
			return -1;
		c0 = now(CLOCK_PROCESS_CPUTIME_ID);
		err = qkd_cascade_bob_run(bo, &t);
		c1 = now(CLOCK_PROCESS_CPUTIME_ID);
		qkd_cascade_alice_stats(lb.alice, &s);
		/* the first round warms up (allocations, page faults) */
		if (r) {
			cpu += c1 - c0;
			disc += (double)s.disclosed_bits;
			ht += nb * qkd_cascade_h2((double)e / nb);
			he += nb * qkd_cascade_h2(est);
			out->rounds += (double)s.rounds;
			out->qber_est += est;
			for (f = 0; f < nf; f++)
				out->bad += qkd_bv_hamming(a[f], b[f], F) != 0;
			out->frames += nf;
		}
		qkd_cascade_alice_free(lb.alice);
		qkd_cascade_bob_free(bo);
		qkd_cascade_msg_free(&lb.reply);
	}
	out->f_true = disc / ht;
	out->f_est = disc / he;
	out->mbps_cpu = (double)F * nf * R / cpu / 1e6;
	out->rounds /= R;
	out->qber_est /= R;
	for (f = 0; f < nf; f++) {
		free(a[f]);
		free(b[f]);
	}
	free(a);
	free(b);
	return err;
}

int main(int argc, char **argv)
{
	static const double qber[] = { 0.01, 0.02, 0.05, 0.08 };
	static const struct {
		const char *name;
		uint32_t variant, flags;
		int one_frame;
	} v[] = {
		{ "optimized", QKD_CASCADE_OPTIMIZED, 0, 0 },
		{ "optimized/parallel", QKD_CASCADE_OPTIMIZED,
		  QKD_CASCADE_F_PARALLEL, 0 },
		{ "original (baseline)", QKD_CASCADE_ORIGINAL, 0, 0 },
		{ "optimized, F=1", QKD_CASCADE_OPTIMIZED, 0, 1 },
	};
	struct row res[4][4];
	uint32_t n = 1000000, F = 4, R = 4, block = 1u << 20, D = 4;
	unsigned int i, j;
	int c;

	while ((c = getopt(argc, argv, "n:F:R:b:D:")) != -1) {
		switch (c) {
		case 'n':
			n = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'F':
			F = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'R':
			R = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'b':
			block = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'D':
			D = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-n bits] [-F frames] [-R batches] [-b daemon block bits] [-D daemon rounds]\n",
				argv[0]);
			return 2;
		}
	}
	if (n < 64 || !F || !R || !D || block < 1024)
		return 2;
	printf("Cascade: n = %u bits/frame, %u frames in flight, %u timed batches\n",
	       n, F, R);
	printf("Shannon limit: f = 1.000; best published Cascade f ~ 1.036 at 2 %%\n\n");
	printf("%-5s %-20s %7s %9s %9s %9s %8s %8s %6s\n", "QBER", "variant",
	       "f", "bad/frm", "Mb/s cpu", "Mb/s wal", "rt/batch", "rt/frame",
	       "B/qry");
	for (i = 0; i < 4; i++) {
		for (j = 0; j < 4; j++) {
			struct row *r = &res[i][j];
			uint32_t nf = v[j].one_frame ? 1 : F;
			uint32_t nb = v[j].one_frame ? R * F : R;

			if (run(v[j].variant, v[j].flags, qber[i], n, nf, nb,
				r)) {
				fprintf(stderr, "run failed\n");
				return 1;
			}
			printf("%4.0f%% %-20s %7.4f %4u/%-4u %9.1f %9.1f %8.0f %8.0f %6.2f\n",
			       qber[i] * 100, v[j].name, r->f, r->bad,
			       r->frames, r->mbps_cpu, r->mbps_wall, r->rounds,
			       r->rounds / nf, r->req_bytes_per_bit);
			fflush(stdout);
		}
	}
	printf("\nratios (optimized vs original baseline; f-1 is the excess over Shannon):\n");
	printf("%-5s %12s %14s %16s %14s\n", "QBER", "f opt/orig",
	       "(f-1) opt/orig", "Mb/s opt/orig", "rt opt/orig");
	for (i = 0; i < 4; i++) {
		struct row *o = &res[i][0], *b = &res[i][2];

		printf("%4.0f%% %12.3f %14.3f %16.2f %14.1f\n", qber[i] * 100,
		       o->f / b->f, (o->f - 1) / (b->f - 1),
		       o->mbps_cpu / b->mbps_cpu, o->rounds / b->rounds);
	}
	printf("\nqkdd's configuration (qkd_cascade_daemon_params): --block-bits %u, 20 %% sampled, errors binomial, tuned for the sampled estimate, %u rounds; \"before\": the same keys with the schedule before issue 16 (each pass's block parities asked when it begins, no PIPELINE):\n",
	       block, D);
	printf("%-5s %-7s %14s %8s %8s %9s %9s %9s %10s %12s\n", "QBER", "",
	       "frames", "f true", "f est", "bad/frm", "Mb/s cpu",
	       "rt/round", "f/f(10^6)", "Mb/s/(10^6)");
	for (i = 0; i < 4; i++) {
		struct drow d[2];
		uint64_t keys = rng_state;
		char fr[32];

		for (j = 0; j < 2; j++) {
			rng_state = keys;	/* the same rounds, both ways */
			if (run_daemon(qber[i], block, D, !j, &d[j])) {
				fprintf(stderr, "daemon run failed\n");
				return 1;
			}
			snprintf(fr, sizeof(fr), "%ux%u", d[j].nf, d[j].F);
			printf("%4.0f%% %-7s %14s %8.4f %8.4f %4u/%-4u %9.1f %9.0f %10.3f %12.2f\n",
			       qber[i] * 100, j ? "qkdd" : "before", fr,
			       d[j].f_true, d[j].f_est, d[j].bad, d[j].frames,
			       d[j].mbps_cpu, d[j].rounds,
			       d[j].f_true / res[i][1].f,
			       d[j].mbps_cpu / res[i][1].mbps_cpu);
		}
		printf("%4.0f%% qkdd/before: round trips %.3f, f %.3f\n",
		       qber[i] * 100, d[1].rounds / d[0].rounds,
		       d[1].f_true / d[0].f_true);
		fflush(stdout);
	}
	printf("# f true: parities over n h(e/n), e the errors of the key; f est: over n h(estimate), the f of qkdd's round line; ratios against optimized/parallel on %u-bit frames above\n",
	       n);
	return 0;
}
