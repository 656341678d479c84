// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_pipeline: the whole pipeline, two qkdd daemons over loopback.
 *
 * Channel: single photons, 25 km of fiber at 0.2 dB/km, detector
 * efficiency 0.2, dark counts 1e-6, misalignment 1 % (qkdd's defaults
 * with source=single-photon), blocks of 2^19 sifted bits, ε_sec = 1e-10,
 * ε_cor = 1e-15. Alice and Bob are two build/qkdd processes (--no-kernel
 * key files, a fresh 64 KiB PSK) on 127.0.0.1; the fiber stage is a thread
 * in Alice's. The first round (connection, SYNC/HELLO) is not counted.
 *
 * Printed:
 *  - sustained secret-key rate: key bits delivered to the stores (plus the
 *    bytes withheld for the authentication reserve, which are secret key
 *    too) per second of round time;
 *  - the fraction of the finite-key bound extracted: those bits over
 *    qkd_keylen_bb84() for the same n (sifted - sampled), k, errors,
 *    leak_EC (every parity disclosed + the verification tag) and ε's; and
 *    ℓ / bound (the daemon's privacy amplification output: below 100 % only
 *    by the bits dropped to cut equal Cascade frames);
 *  - the baseline in the same invocation: the same stages (channel,
 *    sifting, estimation, Cascade with the loopback transport,
 *    verification, Toeplitz hashing) back to back in this process, one
 *    thread, no network, no authentication; and the ratio daemons/baseline.
 *
 * usage (from the repository root, after make build/qkdd bench):
 *   build/bench/bench_pipeline [-r rounds] [-b block_bits] [-k fiber_km]
 *                              [-p port] [-q path/to/qkdd]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <qkd/bits.h>
#include <qkd/cascade.h>
#include <qkd/channel.h>
#include <qkd/estimate.h>
#include <qkd/keyrate.h>
#include <qkd/privacy_amp.h>
#include <qkd/sifting.h>
#include <qkd/verify.h>

#define UUID		"6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
#define KEY_SIZE	32
#define EPS_SEC		1e-10
#define EPS_COR		1e-15
#define SAMPLE		0.2
#define FRAME_MAX	65536

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t bound(uint64_t n, uint64_t k, uint64_t errors, double leak)
{
	struct qkd_bb84_input in = {
		.n = n, .k = k, .qber = k ? (double)errors / (double)k : 0,
		.leak_ec = leak, .eps_sec = EPS_SEC, .eps_cor = EPS_COR,
	};

	return qkd_keylen_bb84(&in, NULL);
}

/* ---- the daemons ---------------------------------------------------------- */

struct totals {
	int rounds;
	double seconds, delivered, ell, bound;
};

static uint64_t field(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static pid_t spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		FILE *f = freopen(log, "w", stderr);

		if (!f)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int run_daemons(const char *qkdd, int rounds, uint32_t block,
		       double km, int port, struct totals *t)
{
	char dir[] = "/tmp/bench_pipeline.XXXXXX", path[2][300], out[2][300];
	char log[2][300], addr[2][64], rs[16], bs[16], ch[80];
	uint8_t psk[65536];
	pid_t pid[2];
	FILE *f;
	char line[2048];
	int st[2];

	if (!mkdtemp(dir) || getrandom(psk, sizeof(psk), 0) != sizeof(psk))
		return -1;
	for (int i = 0; i < 2; i++) {
		const char *role = i ? "bob" : "alice";
		int fd;

		snprintf(path[i], sizeof(path[i]), "%s/%s.psk", dir, role);
		snprintf(out[i], sizeof(out[i]), "%s/%s.keys", dir, role);
		snprintf(log[i], sizeof(log[i]), "%s/%s.log", dir, role);
		fd = creat(path[i], 0600);
		if (fd < 0 || write(fd, psk, sizeof(psk)) != sizeof(psk))
			return -1;
		close(fd);
	}
	explicit_bzero(psk, sizeof(psk));
	snprintf(addr[0], sizeof(addr[0]), "127.0.0.1:%d", port);
	snprintf(rs, sizeof(rs), "%d", rounds + 1);
	snprintf(bs, sizeof(bs), "%u", block);
	snprintf(ch, sizeof(ch), "source=single-photon,fiber-km=%g", km);
	for (int i = 1; i >= 0; i--) {
		char *argv[] = {
			(char *)qkdd, "--role", i ? "bob" : "alice",
			i ? "--listen" : "--peer", addr[0],
			"--stream", UUID, "--link", "bench", "--psk", path[i],
			"--no-kernel", "--out", out[i], "--rounds", rs,
			"--block-bits", bs, "--channel", ch, NULL,
		};

		pid[i] = spawn(argv, log[i]);
		if (pid[i] < 0)
			return -1;
		if (i)
			usleep(300000);
	}
	for (int i = 0; i < 2; i++)
		if (waitpid(pid[i], &st[i], 0) < 0 || !WIFEXITED(st[i]) ||
		    WEXITSTATUS(st[i])) {
			fprintf(stderr, "bench_pipeline: qkdd %s failed, see %s\n",
				i ? "bob" : "alice", log[i]);
			return -1;
		}
	memset(t, 0, sizeof(*t));
	f = fopen(log[0], "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *tm;
		uint64_t sifted, sampled, b;

		if (!strstr(line, ": ok: ") || strstr(line, "round 1: "))
			continue;
		sifted = field(line, " sifted=");
		sampled = field(line, " sampled=");
		b = bound(sifted - sampled, sampled,
			  field(line, " sample_errors="),
			  (double)field(line, " disclosed="));
		tm = strstr(line, " time=");
		t->rounds++;
		t->seconds += tm ? strtod(tm + 6, NULL) : 0;
		t->delivered += (double)field(line, " keys=") * KEY_SIZE * 8 +
				(double)field(line, " auth_withheld=") * 8;
		t->ell += (double)field(line, " secret_bits=");
		t->bound += (double)b;
	}
	fclose(f);
	{
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "cmp -s %s %s", out[0], out[1]);
		if (system(cmd)) {
			fprintf(stderr, "bench_pipeline: key files differ (%s)\n",
				dir);
			return -1;
		}
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			return -1;
	}
	return t->rounds ? 0 : -1;
}

/* ---- the baseline: the same stages in one process ---------------------------- */

static int baseline_round(const struct qkd_channel_params *p,
			  struct qkd_rng *rng, size_t npulses,
			  struct totals *t)
{
	struct qkd_alice_records a = { 0 };
	struct qkd_bob_records b = { 0 };
	struct qkd_detections d = { 0 };
	struct qkd_channel_stats cst;
	struct qkd_sifted sa = { 0 }, sb = { 0 };
	struct qkd_estimate est;
	struct qkd_estimate_params ep = { .qber_abort = 0.11,
					  .eps_pe = (EPS_SEC / 2) *
						    (EPS_SEC / 2) };
	struct qkd_cascade_params cp;
	struct qkd_cascade_loopback lb = { 0 };
	struct qkd_cascade_transport tr = { &lb,
					    qkd_cascade_loopback_roundtrip };
	struct qkd_cascade_stats cs;
	struct qkd_cascade_bob *cb = NULL;
	struct qkd_verify_tag vt;
	struct qkd_rng sr;
	uint64_t *mask = NULL, *ka = NULL, *kb = NULL, **fa = NULL,
		 **fb = NULL, *seed = NULL, *out = NULL;
	size_t N, k, n, l = 0;
	uint32_t nf, F;
	int r = -1;

	if (qkd_alice_records_alloc(&a, npulses) ||
	    qkd_bob_records_alloc(&b, npulses))
		goto out;
	qkd_alice_prepare(p, rng, &a);
	if (qkd_channel_transmit(p, rng, &a, &d, &cst) ||
	    qkd_bob_records(&d, rng, &b) ||
	    qkd_sift(b.detected, a.basis, b.basis, a.bit, a.intensity,
		     npulses, &sa) ||
	    qkd_sift(b.detected, a.basis, b.basis, b.bit, a.intensity,
		     npulses, &sb))
		goto out;
	N = sa.n;
	k = (size_t)ceil(SAMPLE * (double)N);
	mask = qkd_bits_alloc(N, 0);
	qkd_rng_seed(&sr, qkd_rng_u64(rng));
	if (!mask || qkd_sample_mask(&sr, N, k, mask) ||
	    qkd_estimate_qber(sa.key, sb.key, mask, N, &ep, &est) || est.abort)
		goto out;
	n = N - k;
	nf = (uint32_t)((n + FRAME_MAX - 1) / FRAME_MAX);
	F = (uint32_t)(n / nf);
	ka = qkd_bits_alloc(N, 0);
	kb = qkd_bits_alloc(N, 0);
	fa = calloc(nf, sizeof(*fa));
	fb = calloc(nf, sizeof(*fb));
	if (!ka || !kb || !fa || !fb)
		goto out;
	qkd_bits_compress_unmasked(sa.key, mask, N, ka);
	qkd_bits_compress_unmasked(sb.key, mask, N, kb);
	n = (size_t)F * nf;
	for (uint32_t f = 0; f < nf; f++) {
		fa[f] = qkd_bits_alloc(F, 0);
		fb[f] = qkd_bits_alloc(F, 0);
		if (!fa[f] || !fb[f])
			goto out;
		for (uint32_t i = 0; i < F; i++) {
			qkd_bit_set(fa[f], i, qkd_bit_get(ka, (size_t)f * F + i));
			qkd_bit_set(fb[f], i, qkd_bit_get(kb, (size_t)f * F + i));
		}
	}
	cp = (struct qkd_cascade_params){
		.variant = QKD_CASCADE_OPTIMIZED, .frame_bits = F,
		.nframes = nf, .qber_ppm = (uint32_t)(fmax(est.qber, 0.005) * 1e6),
		.seed = qkd_rng_u64(rng), .flags = QKD_CASCADE_F_PARALLEL,
	};
	lb.alice = qkd_cascade_alice_new(&cp, (const uint64_t *const *)fa);
	cb = qkd_cascade_bob_new(&cp, fb);
	if (!lb.alice || !cb || qkd_cascade_bob_run(cb, &tr))
		goto out;
	qkd_cascade_alice_stats(lb.alice, &cs);
	for (uint32_t f = 0; f < nf; f++)
		for (uint32_t i = 0; i < F; i++) {
			qkd_bit_set(ka, (size_t)f * F + i, qkd_bit_get(fa[f], i));
			qkd_bit_set(kb, (size_t)f * F + i, qkd_bit_get(fb[f], i));
		}
	qkd_bits_trim(ka, n);
	qkd_bits_trim(kb, n);
	if (qkd_verify_make(&vt, kb, n, QKD_VERIFY_DEFAULT_TAG_BITS, NULL) ||
	    qkd_verify_check(&vt, ka, n, QKD_VERIFY_DEFAULT_TAG_BITS) != 1)
		goto out;
	{
		struct qkd_bb84_input in = {
			.n = n, .k = k, .qber = est.qber,
			.leak_ec = (double)cs.disclosed_bits + vt.tag_bits,
			.eps_sec = EPS_SEC, .eps_cor = EPS_COR,
		};

		l = qkd_keylen_bb84(&in, NULL);
		t->bound += (double)bound(N - k, k, est.errors, in.leak_ec);
	}
	if (!l)
		goto out;
	seed = qkd_bits_alloc(n + l - 1, 0);
	out = qkd_bits_alloc(l, 0);
	if (!seed || !out || qkd_pa_seed_random(seed, n + l - 1) ||
	    qkd_toeplitz_fast(seed, ka, n, out, l))
		goto out;
	t->ell += (double)l;
	t->delivered += (double)l;
	t->rounds++;
	r = 0;
out:
	qkd_alice_records_free(&a);
	qkd_bob_records_free(&b);
	qkd_detections_free(&d);
	qkd_sifted_free(&sa);
	qkd_sifted_free(&sb);
	qkd_cascade_alice_free(lb.alice);
	qkd_cascade_msg_free(&lb.reply);
	qkd_cascade_bob_free(cb);
	for (uint32_t f = 0; fa && f < nf; f++)
		if (fa[f])
			qkd_bits_free(fa[f], F, 0);
	for (uint32_t f = 0; fb && f < nf; f++)
		if (fb[f])
			qkd_bits_free(fb[f], F, 0);
	free(fa);
	free(fb);
	if (mask)
		qkd_bits_free(mask, N, 0);
	if (ka)
		qkd_bits_free(ka, N, 0);
	if (kb)
		qkd_bits_free(kb, N, 0);
	if (seed)
		qkd_bits_free(seed, n + l - 1, 0);
	if (out)
		qkd_bits_free(out, l, 0);
	return r;
}

static int run_baseline(int rounds, uint32_t block, double km,
			struct totals *t)
{
	struct qkd_channel_params p;
	struct qkd_rng rng;
	double pc, ps, t0;
	size_t npulses;

	qkd_channel_params_default(&p);
	p.source = QKD_SOURCE_SINGLE_PHOTON;
	p.n_intensities = 1;
	p.p_intensity[0] = 1;
	p.length_km = km;
	if (qkd_rng_os(&rng))
		return -1;
	pc = qkd_channel_click_prob(&p, 0);
	ps = p.p_z_alice * p.p_z_bob + (1 - p.p_z_alice) * (1 - p.p_z_bob);
	npulses = (size_t)ceil(block / (pc * ps) * 1.05);
	memset(t, 0, sizeof(*t));
	/* one round to warm up (page faults, PA workspace), not counted */
	{
		struct totals w = { 0 };

		baseline_round(&p, &rng, npulses, &w);
	}
	t0 = now();
	for (int i = 0; i < rounds; i++)
		if (baseline_round(&p, &rng, npulses, t))
			return -1;
	t->seconds = now() - t0;
	return 0;
}

int main(int argc, char **argv)
{
	const char *qkdd = "build/qkdd";
	struct totals dm, bl;
	uint32_t block = 1u << 19;
	double km = 25;
	int rounds = 8, port = 7760, c;

	while ((c = getopt(argc, argv, "r:b:k:p:q:")) != -1) {
		switch (c) {
		case 'r': rounds = atoi(optarg); break;
		case 'b': block = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'k': km = strtod(optarg, NULL); break;
		case 'p': port = atoi(optarg); break;
		case 'q': qkdd = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-r rounds] [-b block_bits] [-k km] [-p port] [-q qkdd]\n",
				argv[0]);
			return 2;
		}
	}
	if (rounds < 1 || access(qkdd, X_OK)) {
		fprintf(stderr, "bench_pipeline: need %s (make build/qkdd) and rounds >= 1\n",
			qkdd);
		return 2;
	}
	printf("# whole pipeline: single photons, %g km, %u sifted bits a block, eps_sec %g, eps_cor %g, %d rounds\n",
	       km, block, EPS_SEC, EPS_COR, rounds);
	if (run_daemons(qkdd, rounds, block, km, port, &dm)) {
		fprintf(stderr, "bench_pipeline: the daemons failed\n");
		return 1;
	}
	if (run_baseline(rounds, block, km, &bl)) {
		fprintf(stderr, "bench_pipeline: the baseline failed\n");
		return 1;
	}
	printf("%-34s %10s %12s %12s %12s\n", "", "rounds", "secret Mbit/s",
	       "of bound", "ell/bound");
	printf("%-34s %10d %12.3f %11.2f%% %11.2f%%\n",
	       "qkdd pair over loopback", dm.rounds,
	       dm.delivered / dm.seconds / 1e6,
	       100 * dm.delivered / dm.bound, 100 * dm.ell / dm.bound);
	printf("%-34s %10d %12.3f %11.2f%% %11.2f%%\n",
	       "baseline: one process, no net/auth", bl.rounds,
	       bl.delivered / bl.seconds / 1e6,
	       100 * bl.delivered / bl.bound, 100 * bl.ell / bl.bound);
	printf("ratio daemons / baseline: %.2f (secret-key rate)\n",
	       (dm.delivered / dm.seconds) / (bl.delivered / bl.seconds));
	printf("# daemons: keys delivered + auth reserve refill over the finite-key bound qkd_keylen_bb84(n, k, errors, leak_EC); the rest is the part of the last key of each round that does not fill a %d-byte key\n",
	       KEY_SIZE);
	return 0;
}
