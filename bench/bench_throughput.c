// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_throughput: the whole post-processing chain end to end, two qkdd
 * daemons, at 0, 1 and 10 ms of round-trip time on the classical channel.
 *
 * Channel: single photons, 25 km of fiber at 0.2 dB/km, detector
 * efficiency 0.2, dark counts 1e-6, misalignment 1 % (qkdd's defaults
 * with source=single-photon), blocks of 2^19 sifted bits, ε_sec = 1e-10,
 * ε_cor = 1e-15. Alice and Bob are two build/qkdd processes (--no-kernel
 * key files, a fresh 64 KiB PSK each run); the fiber stage is a thread in
 * Alice's, its detections go to Bob over the quantum TCP connection.
 *
 * Latency: the build machines' kernel has no sch_netem, so the benchmark
 * puts a delaying relay of its own between the daemons (threads of this
 * process on 127.0.0.1): every byte of the classical channel is held
 * RTT/2 in each direction (no bandwidth limit, no loss); the quantum
 * connection (the simulated detection stream, which a real link does not
 * have) is relayed without delay. The 0 ms run goes through the same
 * relay, so the ratios compare the same chain. The first round of each
 * run (connection, SYNC/HELLO, page faults) is not counted.
 *
 * Printed, per RTT:
 *  - the sustained secret-key rate: key bits delivered to the stores (and
 *    the bytes withheld for the authentication reserve, secret key too)
 *    per second of round time (Alice's round times), as Mbit/s, as a
 *    ratio to the record 115.8 Mbit/s (10 km, 2023) and to the 0 ms run;
 *  - the fraction of the finite-key bound extracted: those bits over
 *    qkd_keylen_bb84() for the same n, k, errors, leak_EC and ε's;
 *  - error correction as the daemon ran it, from Bob's log: f against
 *    the true error count (known after verification), its round trips a
 *    round (Alice's log), and the rounds that used LDPC;
 *  - per stage, CPU seconds per Mbit of secret key, Alice's and Bob's
 *    added (the daemons' "cpu:" lines, CLOCK_THREAD_CPUTIME_ID; Alice's
 *    fiber thread in "quantum"), and how much of the processes' CPU time
 *    (wait4 rusage, first round included) the stages account for;
 * and the baseline, in the same invocation: the same stages (channel,
 * sifting, estimation, Cascade in the daemon's configuration with the
 * loopback transport, verification, Toeplitz hashing) back to back in
 * this process, one thread, no network, no authentication.
 *
 * usage (from the repository root, after make build/qkdd bench):
 *   build/bench/bench_throughput [-r rounds] [-R rounds at 10 ms]
 *       [-t rtt_ms,...] [-b block_bits] [-k fiber_km] [-p port]
 *       [-q path/to/qkdd] [-S] [-T path/to/qkd-timetag]
 *       [-E auto|cascade|ldpc]
 *
 * -S: the simulated link sampled per detection (--channel
 * sampling=detections: qkd_channel_generate_sparse() in Alice's fiber
 * thread, and in the baseline, with sifting on per-detection records and
 * Bob's announcement encoded and decoded as qkdd does), not per pulse.
 * The baseline's generator is OpenSSL's DRBG, qkdd's for Alice's choices.
 * -T: before each RTT's run, qkd-timetag records the simulated link (the
 * rounds and two more) into time-tag files, outside the clock, and both
 * daemons replay them (--replay): the chain fed as a time tagger would
 * feed it, the quantum stage only reading the recording.
 * -E: both daemons' --reconcile (default: qkdd's, auto: Alice picks
 * Cascade or LDPC each round from the RTT and QBER she measures).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
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
#define RECORD_MBPS	115.8
#define MAX_RTT		8

/* qkdd's stages, in the order of its "cpu:" lines (userspace/qkdd/cpu.c) */
static const char *const stages[] = {
	"other", "quantum", "sift", "estimate", "ec", "verify", "pa", "auth",
	"io", "push",
};
#define NSTAGES	(sizeof(stages) / sizeof(stages[0]))
static const char *const stage_label[NSTAGES] = {
	"other (round loop, logs)", "quantum-stage simulation", "sifting",
	"estimation", "error correction", "verification",
	"privacy amplification", "authentication", "I/O (classical channel)",
	"push into the store",
};

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

/* ---- the delaying relay ------------------------------------------------- */

struct chunk {
	struct chunk *next;
	double due;
	size_t len;		/* 0: end of stream */
	uint8_t data[];
};

struct pump {
	int from, to;
	double delay;		/* one way, seconds */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct chunk *head, *tail;
	int refs;		/* the two threads of a delayed pump */
};

static void pump_put(struct pump *p)
{
	bool last;

	pthread_mutex_lock(&p->mu);
	last = --p->refs == 0;
	pthread_mutex_unlock(&p->mu);
	if (!last)
		return;
	while (p->head) {
		struct chunk *c = p->head;

		p->head = c->next;
		free(c);
	}
	shutdown(p->to, SHUT_WR);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* reader: stamp each chunk with the time it may leave */
static void *pump_reader(void *arg)
{
	struct pump *p = arg;

	for (;;) {
		struct chunk *c = malloc(sizeof(*c) + 65536);
		ssize_t n;
		bool eof;

		if (!c)
			break;
		do
			n = recv(p->from, c->data, 65536, 0);
		while (n < 0 && errno == EINTR);
		c->len = n > 0 ? (size_t)n : 0;
		c->next = NULL;
		c->due = now() + p->delay;
		if (!p->delay) {
			int w = c->len ? write_all(p->to, c->data, c->len) : -1;

			free(c);
			if (w)
				break;
			continue;
		}
		/* once queued, c is the writer's (it may be freed at once) */
		eof = !c->len;
		pthread_mutex_lock(&p->mu);
		if (p->tail)
			p->tail->next = c;
		else
			p->head = c;
		p->tail = c;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		if (eof)
			break;
	}
	shutdown(p->from, SHUT_RD);
	pump_put(p);
	return NULL;
}

/* writer: send each chunk when it is due */
static void *pump_writer(void *arg)
{
	struct pump *p = arg;

	for (;;) {
		struct chunk *c;
		struct timespec ts;
		double t;

		pthread_mutex_lock(&p->mu);
		while (!p->head)
			pthread_cond_wait(&p->cv, &p->mu);
		c = p->head;
		p->head = c->next;
		if (!p->head)
			p->tail = NULL;
		pthread_mutex_unlock(&p->mu);
		t = c->due;
		ts.tv_sec = (time_t)t;
		ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR)
			;
		if (!c->len || write_all(p->to, c->data, c->len)) {
			free(c);
			break;
		}
		free(c);
	}
	pump_put(p);
	return NULL;
}

static int pump_start(int from, int to, double delay)
{
	struct pump *p = calloc(1, sizeof(*p));
	pthread_t th;
	pthread_attr_t at;

	if (!p)
		return -1;
	p->from = from;
	p->to = to;
	p->delay = delay;
	p->refs = delay > 0 ? 2 : 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &at, pump_reader, p) ||
	    (delay > 0 && pthread_create(&th, &at, pump_writer, p))) {
		fprintf(stderr, "bench_throughput: cannot start the relay\n");
		exit(1);
	}
	pthread_attr_destroy(&at);
	return 0;
}

struct relay {
	int lfd;
	int to_port;
	double delay;		/* one way */
};

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* accept from Alice, connect to Bob, pump both ways */
static void *relay_main(void *arg)
{
	struct relay *r = arg;

	for (;;) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		int a = accept(r->lfd, NULL, NULL), b;

		if (a < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			break;
		}
		b = socket(AF_INET, SOCK_STREAM, 0);
		sa.sin_port = htons((uint16_t)r->to_port);
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (b < 0 || connect(b, (struct sockaddr *)&sa, sizeof(sa))) {
			close(a);
			if (b >= 0)
				close(b);
			continue;
		}
		nodelay(a);
		nodelay(b);
		/* the sockets stay open until the process ends: a few per
		 * run, and no pump can write into a reused descriptor */
		pump_start(a, b, r->delay);
		pump_start(b, a, r->delay);
	}
	return NULL;
}

static int relay_listen(int port, int to_port, double delay)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct relay *r = calloc(1, sizeof(*r));
	pthread_t th;
	int one = 1;

	if (!r)
		return -1;
	r->lfd = socket(AF_INET, SOCK_STREAM, 0);
	r->to_port = to_port;
	r->delay = delay;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(r->lfd, 8) || pthread_create(&th, NULL, relay_main, r)) {
		fprintf(stderr, "bench_throughput: relay on port %d: %s\n",
			port, strerror(errno));
		return -1;
	}
	pthread_detach(th);
	return 0;
}

/* ---- the daemons -------------------------------------------------------- */

struct totals {
	int rounds;
	double seconds, delivered, ell, bound;
	double cpu[NSTAGES];		/* both daemons, counted rounds */
	double cpu_all;			/* both daemons' cpu lines, all rounds */
	double proc_cpu;		/* both processes, rusage */
	double proc_sys;		/* of which system time */
	double f_true, f_est;		/* means over counted rounds (Bob) */
	double cascade_rt;		/* EC round trips a round */
	int ldpc_rounds;		/* counted rounds that used LDPC */
	int f_rounds;
	int aborted;			/* counted rounds aborted */
};

static uint64_t field(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	return p ? strtoull(p + strlen(key), NULL, 10) : 0;
}

static double dfield(const char *line, const char *key)
{
	const char *p = strstr(line, key);

	return p ? strtod(p + strlen(key), NULL) : 0;
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

static bool first_round(const char *line)
{
	return strstr(line, "] round 1: ") != NULL;
}

/* the "cpu:" lines of a daemon's log */
static void parse_cpu(const char *log, struct totals *t)
{
	FILE *f = fopen(log, "r");
	char line[2048];

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		const char *c = strstr(line, ": cpu: ");

		if (!c)
			continue;
		t->cpu_all += dfield(c, " total=");
		if (first_round(line))
			continue;
		for (size_t i = 0; i < NSTAGES; i++) {
			char key[32];

			snprintf(key, sizeof(key), " %s=", stages[i]);
			t->cpu[i] += dfield(c, key);
		}
	}
	fclose(f);
}

/* -S: the daemons' fiber and the baseline sample per detection */
static bool per_detection;
/* -T: both daemons replay files qkd-timetag recorded (--replay) */
static const char *timetag_tool;
/* -E: both daemons' --reconcile */
static const char *reconcile = "auto";

/* The pulses a round of qkdd's has (round.c's round_pulses()). */
static uint64_t daemon_round_pulses(uint32_t block, double km)
{
	struct qkd_channel_params p;
	double pc, ps;

	qkd_channel_params_default(&p);
	p.source = QKD_SOURCE_SINGLE_PHOTON;
	p.n_intensities = 1;
	p.p_intensity[0] = 1;
	p.length_km = km;
	pc = qkd_channel_click_prob(&p, 0);
	ps = p.p_z_alice * p.p_z_bob + (1 - p.p_z_alice) * (1 - p.p_z_bob);
	return (uint64_t)ceil(block / (pc * ps) * 1.05);
}

/*
 * -T: record the link for @rounds rounds into DIR/alice.tt and DIR/bob.tt
 * (outside the clock: the recording stands for a time tagger's output).
 */
static int record_link(const char *dir, int rounds, uint32_t block,
		       double km, const char *ch)
{
	char a[300], b[300], np[32], log[300];
	pid_t pid;
	int st;

	snprintf(a, sizeof(a), "%s/alice.tt", dir);
	snprintf(b, sizeof(b), "%s/bob.tt", dir);
	snprintf(log, sizeof(log), "%s/record.log", dir);
	snprintf(np, sizeof(np), "%" PRIu64,
		 daemon_round_pulses(block, km) * (uint64_t)rounds);
	{
		char *argv[] = { (char *)timetag_tool, "record", "--channel",
				 (char *)ch, "--pulses", np, a, b, NULL };

		pid = spawn(argv, log);
	}
	if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) ||
	    WEXITSTATUS(st)) {
		fprintf(stderr, "bench_throughput: %s record failed, see %s\n",
			timetag_tool, log);
		return -1;
	}
	return 0;
}

static int run_daemons(const char *qkdd, int rounds, uint32_t block,
		       double km, int port, double rtt_ms, struct totals *t)
{
	char dir[] = "/tmp/bench_throughput.XXXXXX", path[2][300], out[2][300];
	char log[2][300], addr[2][64], rs[16], bs[16], ch[80], tt[2][300];
	uint8_t psk[65536];
	pid_t pid[2];
	FILE *f;
	char line[2048];
	int st[2];
	int rport = port + 10;

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
	/* Bob listens on port (classical) and port + 1 (quantum); Alice
	 * talks to the relay on rport and rport + 1 */
	if (relay_listen(rport, port, rtt_ms / 2e3) ||
	    relay_listen(rport + 1, port + 1, 0))
		return -1;
	snprintf(addr[1], sizeof(addr[1]), "127.0.0.1:%d", port);
	snprintf(addr[0], sizeof(addr[0]), "127.0.0.1:%d", rport);
	snprintf(rs, sizeof(rs), "%d", rounds + 1);
	snprintf(bs, sizeof(bs), "%u", block);
	snprintf(ch, sizeof(ch), "source=single-photon,fiber-km=%g%s", km,
		 per_detection ? ",sampling=detections" : "");
	/* the rounds and the one not counted, and a round to spare */
	if (timetag_tool && record_link(dir, rounds + 2, block, km, ch))
		return -1;
	/* qkdd --replay describes the recorded source, no sampling */
	if (timetag_tool)
		snprintf(ch, sizeof(ch), "source=single-photon,fiber-km=%g", km);
	for (int i = 1; i >= 0; i--) {
		char *argv[] = {
			(char *)qkdd, "--role", i ? "bob" : "alice",
			i ? "--listen" : "--peer", addr[i],
			"--stream", UUID, "--link", "bench", "--psk", path[i],
			"--no-kernel", "--out", out[i], "--rounds", rs,
			"--block-bits", bs, "--channel", ch,
			"--reconcile", (char *)reconcile,
			timetag_tool ? "--replay" : NULL, tt[i], NULL,
		};

		snprintf(tt[i], sizeof(tt[i]), "%s/%s.tt", dir,
			 i ? "bob" : "alice");

		pid[i] = spawn(argv, log[i]);
		if (pid[i] < 0)
			return -1;
		if (i)
			usleep(300000);
	}
	memset(t, 0, sizeof(*t));
	for (int i = 0; i < 2; i++) {
		struct rusage ru;

		if (wait4(pid[i], &st[i], 0, &ru) < 0 || !WIFEXITED(st[i]) ||
		    WEXITSTATUS(st[i])) {
			fprintf(stderr, "bench_throughput: qkdd %s failed, see %s\n",
				i ? "bob" : "alice", log[i]);
			return -1;
		}
		t->proc_cpu += (double)ru.ru_utime.tv_sec +
			       (double)ru.ru_utime.tv_usec / 1e6 +
			       (double)ru.ru_stime.tv_sec +
			       (double)ru.ru_stime.tv_usec / 1e6;
		t->proc_sys += (double)ru.ru_stime.tv_sec +
			       (double)ru.ru_stime.tv_usec / 1e6;
	}
	f = fopen(log[0], "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *tm;
		uint64_t sifted, sampled, b;

		if (first_round(line))
			continue;
		if (strstr(line, ": aborted, "))
			t->aborted++;
		if (!strstr(line, ": ok: "))
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
		t->cascade_rt += (double)field(line, " ec_roundtrips=");
		t->ldpc_rounds += strstr(line, " reconciliation=ldpc ") != NULL;
	}
	fclose(f);
	f = fopen(log[1], "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		const char *c = strstr(line, ": cascade: f=");

		if (!c && (c = strstr(line, ": ldpc: f=")))
			c -= 3;		/* the same length as ": cascade" */
		if (!c || first_round(line))
			continue;
		t->f_true += strtod(c + 13, NULL);
		t->f_est += dfield(c, ", f=");
		t->f_rounds++;
	}
	fclose(f);
	if (t->f_rounds) {
		t->f_true /= t->f_rounds;
		t->f_est /= t->f_rounds;
	}
	if (t->rounds)
		t->cascade_rt /= t->rounds;
	parse_cpu(log[0], t);
	parse_cpu(log[1], t);
	{
		char cmd[700];

		snprintf(cmd, sizeof(cmd), "cmp -s %s %s", out[0], out[1]);
		if (system(cmd)) {
			fprintf(stderr, "bench_throughput: key files differ (%s)\n",
				dir);
			return -1;
		}
		/* BENCH_KEEP=1: keep the logs */
		if (getenv("BENCH_KEEP")) {
			printf("# %g ms: logs in %s\n", rtt_ms, dir);
		} else {
			snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
			if (system(cmd))
				return -1;
		}
	}
	return t->rounds ? 0 : -1;
}

/* ---- the baseline: the same stages in one process ---------------------------- */

/* The per-detection link and sifting as qkdd runs them (-S). */
static int sparse_sift(const struct qkd_channel_params *p,
		       struct qkd_rng *rng, size_t npulses,
		       struct qkd_detections *d, struct qkd_channel_stats *cst,
		       struct qkd_sifted *sa, struct qkd_sifted *sb)
{
	struct qkd_det_records ar = { 0 }, br = { 0 };
	struct qkd_sift_announce an = { 0 };
	uint64_t *ab = NULL;
	uint8_t *cls = NULL, *msg = NULL;
	size_t len = 0, n = 0;
	int r = -1;

	if (qkd_channel_generate_sparse(p, rng, rng, npulses, &ar, d, cst) ||
	    qkd_bob_det_records(d, rng, npulses, &br) ||
	    qkd_sift_announce_encode(&br, &msg, &len) ||
	    qkd_sift_announce_decode(msg, len, npulses, npulses, &an, NULL) ||
	    an.n != ar.n)
		goto out;
	n = ar.n;
	ab = qkd_bits_alloc(n, 0);
	cls = malloc(ar.n ? ar.n : 1);
	if (!ab || !cls)
		goto out;
	for (size_t i = 0; i < ar.n; i++) {
		if (ar.r[i].pulse != an.pulse[i])
			goto out;
		if (ar.r[i].basis)
			ab[i / 64] |= (uint64_t)1 << (i % 64);
		cls[i] = ar.r[i].intensity;
	}
	if (qkd_sift_det(&ar, an.basis, NULL, sa) ||
	    qkd_sift_det(&br, ab, cls, sb))
		goto out;
	r = 0;
out:
	qkd_det_records_free(&ar);
	qkd_det_records_free(&br);
	qkd_sift_announce_free(&an);
	if (ab)
		qkd_bits_free(ab, n, 0);
	free(cls);
	free(msg);
	return r;
}

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

	if (per_detection) {
		/* qkdd's sparse path: per-detection records, Bob's
		 * announcement encoded and decoded, both sides sifted */
		if (sparse_sift(p, rng, npulses, &d, &cst, &sa, &sb))
			goto out;
	} else if (qkd_alice_records_alloc(&a, npulses) ||
		   qkd_bob_records_alloc(&b, npulses) ||
		   (qkd_alice_prepare(p, rng, &a),
		    qkd_channel_transmit(p, rng, &a, &d, &cst)) ||
		   qkd_bob_records(&d, rng, &b) ||
		   qkd_sift(b.detected, a.basis, b.basis, a.bit, a.intensity,
			    npulses, &sa) ||
		   qkd_sift(b.detected, a.basis, b.basis, b.bit, a.intensity,
			    npulses, &sb)) {
		goto out;
	}
	N = sa.n;
	k = (size_t)ceil(SAMPLE * (double)N);
	mask = qkd_bits_alloc(N, 0);
	qkd_rng_seed(&sr, qkd_rng_u64(rng));
	if (!mask || qkd_sample_mask(&sr, N, k, mask) ||
	    qkd_estimate_qber(sa.key, sb.key, mask, N, &ep, &est) || est.abort)
		goto out;
	n = N - k;
	qkd_cascade_daemon_frames(n, &F, &nf);
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
	qkd_cascade_daemon_params(&cp, F, nf, est.qber, qkd_rng_u64(rng));
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
	/* the daemons' generator for Alice's choices */
	if (qkd_rng_drbg(&rng))
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
	struct totals dm[MAX_RTT], bl;
	double rtt[MAX_RTT] = { 0, 1, 10 };
	uint32_t block = 1u << 19;
	double km = 25;
	int rounds = 4, rounds_slow = 2, port = 7760, c, nrtt = 3;

	while ((c = getopt(argc, argv, "r:R:t:b:k:p:q:ST:E:")) != -1) {
		switch (c) {
		case 'r': rounds = atoi(optarg); break;
		case 'R': rounds_slow = atoi(optarg); break;
		case 't': {
			char *s = optarg, *e;

			for (nrtt = 0; nrtt < MAX_RTT && *s; nrtt++) {
				rtt[nrtt] = strtod(s, &e);
				if (e == s || rtt[nrtt] < 0)
					return 2;
				s = *e == ',' ? e + 1 : e;
			}
			break;
		}
		case 'b': block = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'k': km = strtod(optarg, NULL); break;
		case 'p': port = atoi(optarg); break;
		case 'q': qkdd = optarg; break;
		case 'S': per_detection = true; break;
		case 'T': timetag_tool = optarg; break;
		case 'E': reconcile = optarg; break;
		default:
			fprintf(stderr, "usage: %s [-r rounds] [-R rounds at >= 10 ms] [-t rtt_ms,...] [-b block_bits] [-k km] [-p port] [-q qkdd] [-S] [-T qkd-timetag] [-E auto|cascade|ldpc]\n",
				argv[0]);
			return 2;
		}
	}
	if (timetag_tool && access(timetag_tool, X_OK)) {
		fprintf(stderr, "bench_throughput: -T %s: not an executable (make build/qkd-timetag)\n",
			timetag_tool);
		return 2;
	}
	if (rounds < 1 || rounds_slow < 1 || !nrtt || access(qkdd, X_OK)) {
		fprintf(stderr, "bench_throughput: need %s (make build/qkdd), rounds >= 1 and RTTs\n",
			qkdd);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	printf("# end to end: two qkdd, single photons, %g km, %u sifted bits a block, eps_sec %g, eps_cor %g, the link sampled per %s\n",
	       km, block, EPS_SEC, EPS_COR,
	       per_detection ? "detection (sampling=detections)" :
			       "pulse (the reference)");
	if (timetag_tool)
		printf("# -T: both daemons replay files %s recorded before each run, outside the clock (qkdd --replay): the quantum stage is reading the recording\n",
		       timetag_tool);
	printf("# classical channel through this benchmark's delaying relay (the build machine's kernel has no sch_netem): RTT/2 each way, no bandwidth limit; detections relayed without delay; first round not counted\n");
	for (int i = 0; i < nrtt; i++) {
		int r = rtt[i] >= 10 ? rounds_slow : rounds;

		if (run_daemons(qkdd, r, block, km, port + 40 * i, rtt[i],
				&dm[i])) {
			fprintf(stderr, "bench_throughput: the daemons failed at %g ms\n",
				rtt[i]);
			return 1;
		}
	}
	if (run_baseline(rounds, block, km, &bl)) {
		fprintf(stderr, "bench_throughput: the baseline failed\n");
		return 1;
	}
	printf("# error correction: --reconcile %s\n", reconcile);
	printf("%-32s %6s %9s %9s %8s %9s %8s %8s %8s %5s\n", "", "ok",
	       "secret", "/ record", "/ 0 ms", "of bound", "f true", "f est",
	       "rt/round", "LDPC");
	printf("%-32s %6s %9s %9s %8s %9s %8s %8s %8s %5s\n", "", "",
	       "Mbit/s", "115.8", "", "", "(Bob)", "(Bob)", "EC", "rnds");
	for (int i = 0; i < nrtt; i++) {
		char name[64];
		double rate = dm[i].delivered / dm[i].seconds / 1e6;

		snprintf(name, sizeof(name), "qkdd pair, RTT %g ms", rtt[i]);
		if (dm[i].aborted)
			printf("# %g ms: %d round(s) aborted (see the logs)\n",
			       rtt[i], dm[i].aborted);
		printf("%-32s %6d %9.3f %9.2e %8.3f %8.2f%% %8.4f %8.4f %8.0f %5d\n",
		       name, dm[i].rounds, rate, rate / RECORD_MBPS,
		       rate / (dm[0].delivered / dm[0].seconds / 1e6),
		       100 * dm[i].delivered / dm[i].bound, dm[i].f_true,
		       dm[i].f_est, dm[i].cascade_rt, dm[i].ldpc_rounds);
	}
	printf("%-32s %6d %9.3f %9.2e %8s %8.2f%%\n",
	       "baseline: 1 process, no net/auth", bl.rounds,
	       bl.delivered / bl.seconds / 1e6,
	       bl.delivered / bl.seconds / 1e6 / RECORD_MBPS, "",
	       100 * bl.delivered / bl.bound);
	printf("ratio daemons at %g ms / baseline: %.2f (secret-key rate)\n",
	       rtt[0], (dm[0].delivered / dm[0].seconds) /
	       (bl.delivered / bl.seconds));
	printf("\nCPU seconds per Mbit of secret key, by stage (Alice + Bob):\n");
	printf("%-28s", "stage");
	for (int i = 0; i < nrtt; i++) {
		char h[32];

		snprintf(h, sizeof(h), "%g ms", rtt[i]);
		printf(" %9s", h);
	}
	printf("\n");
	for (size_t s = 0; s < NSTAGES; s++) {
		printf("%-28s", stage_label[s]);
		for (int i = 0; i < nrtt; i++)
			printf(" %9.3f", dm[i].cpu[s] / (dm[i].delivered / 1e6));
		printf("\n");
	}
	printf("%-28s", "total (stages)");
	for (int i = 0; i < nrtt; i++) {
		double sum = 0;

		for (size_t s = 0; s < NSTAGES; s++)
			sum += dm[i].cpu[s];
		printf(" %9.3f", sum / (dm[i].delivered / 1e6));
	}
	printf("\n%-28s", "wall s per Mbit (rounds)");
	for (int i = 0; i < nrtt; i++)
		printf(" %9.3f", dm[i].seconds / (dm[i].delivered / 1e6));
	printf("\n%-28s", "process CPU s per Mbit");
	for (int i = 0; i < nrtt; i++)
		printf(" %9.3f", dm[i].proc_cpu / (dm[i].delivered / 1e6));
	printf("\n%-28s", "  of which system time");
	for (int i = 0; i < nrtt; i++)
		printf(" %8.1f%%", 100 * dm[i].proc_sys / dm[i].proc_cpu);
	printf("\n%-28s", "round wall s (mean)");
	for (int i = 0; i < nrtt; i++)
		printf(" %9.3f", dm[i].seconds / dm[i].rounds);
	printf("\n%-28s", "stages / process CPU");
	for (int i = 0; i < nrtt; i++)
		printf(" %8.1f%%", 100 * dm[i].cpu_all / dm[i].proc_cpu);
	printf("\n# process CPU: both daemons (wait4), first round and handshake included; secret key: keys delivered + auth reserve refill; of bound: over qkd_keylen_bb84(n, k, errors, leak_EC); f true: the bits error correction disclosed over n h(e/n), e the errors it corrected (Bob's log, after verification); f est: the same over h of the sampled estimate\n");
	return 0;
}
