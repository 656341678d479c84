// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd: the BB84 daemon of one site. Options and the configuration file,
 * signals, the authentication bootstrap and the connection loop; the
 * protocol itself is in session.c and the files session.h lists.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/frame.h"
#include "qkdd.h"

static const struct option lopts[] = {
	{ "role", required_argument, NULL, 0 },
	{ "peer", required_argument, NULL, 0 },
	{ "listen", required_argument, NULL, 0 },
	{ "stream", required_argument, NULL, 0 },
	{ "link", required_argument, NULL, 0 },
	{ "psk", required_argument, NULL, 0 },
	{ "cert", required_argument, NULL, 0 },
	{ "key", required_argument, NULL, 0 },
	{ "ca", required_argument, NULL, 0 },
	{ "peer-name", required_argument, NULL, 0 },
	{ "seed", required_argument, NULL, 0 },
	{ "channel", required_argument, NULL, 0 },
	{ "block-bits", required_argument, NULL, 0 },
	{ "rounds", required_argument, NULL, 0 },
	{ "no-kernel", no_argument, NULL, 0 },
	{ "out", required_argument, NULL, 0 },
	{ "status", required_argument, NULL, 0 },
	{ "key-size", required_argument, NULL, 0 },
	{ "qber-abort", required_argument, NULL, 0 },
	{ "sample", required_argument, NULL, 0 },
	{ "eps-sec", required_argument, NULL, 0 },
	{ "eps-cor", required_argument, NULL, 0 },
	{ "tag-bits", required_argument, NULL, 0 },
	{ "auth-reserve", required_argument, NULL, 0 },
	{ "state-dir", required_argument, NULL, 0 },
	{ "timeout", required_argument, NULL, 0 },
	{ "retry-max", required_argument, NULL, 0 },
	{ "backoff-base", required_argument, NULL, 0 },
	{ "backoff-max", required_argument, NULL, 0 },
	{ "simulated-channel-test-keys-only", no_argument, NULL, 0 },
	{ "verbose", no_argument, NULL, 'v' },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
"usage: qkdd --role alice|bob (--peer HOST:PORT | --listen ADDR:PORT)\n"
"            --stream UUID --link NAME (--psk FILE | --cert F --key F --ca F)\n"
"            [--config FILE] [--seed N] [--channel KEY=VAL,...]\n"
"            [--block-bits N] [--rounds N] [--no-kernel --out FILE]\n"
"            [--status FILE] [--state-dir DIR] [--verbose]\n"
"            [--backoff-base S] [--backoff-max S]\n"
"            [--simulated-channel-test-keys-only]\n"
"       qkdd --help | --version\n"
"The quantum channel (simulated) uses PORT + 1 and must stay on loopback\n"
"unless the keys are for testing only. See qkdd(8).\n");
}

static void on_signal(int sig)
{
	(void)sig;
	qkdd_stop = 1;
}

static void set_timeouts(int fd, unsigned int s)
{
	struct timeval tv = { .tv_sec = s };

	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int parse_args(struct qkdd_opts *o, int argc, char **argv)
{
	char err[300];
	int c, idx;

	/* the configuration file first, so that options override it */
	for (int i = 1; i < argc; i++) {
		const char *path = NULL;

		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			path = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			path = argv[i] + 9;
		if (path && qkdd_config_load(o, path, err, sizeof(err))) {
			fprintf(stderr, "qkdd: %s\n", err);
			return -1;
		}
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "vhVc:", lopts, &idx)) != -1) {
		switch (c) {
		case 0:
			if (qkdd_opt_set(o, lopts[idx].name, optarg, err,
					 sizeof(err))) {
				fprintf(stderr, "qkdd: --%s: %s\n",
					lopts[idx].name, err);
				return -1;
			}
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'c':
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("qkdd %s\n", QKD_VERSION);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qkdd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (qkdd_opts_check(o, err, sizeof(err))) {
		fprintf(stderr, "qkdd: %s\n", err);
		usage(stderr);
		return -1;
	}
	if (o->role == QKDD_ALICE && o->ch.source == QKD_SOURCE_WCP &&
	    o->ch.n_intensities != 3) {
		fprintf(stderr, "qkdd: a WCP source needs three intensities (signal and two decoys) for the decoy-state bound: --channel mu=0.5/0.1/0,p-mu=0.8/0.1/0.1\n");
		return -1;
	}
	return 0;
}

/* A fresh context from the PSK file if there is one; else keep @cur. */
static struct auth_ctx *auth_from_psk(const struct qkdd_opts *o,
				      struct auth_ctx *cur, int *fatal)
{
	enum auth_role role = o->role == QKDD_ALICE ? QKD_AUTH_INITIATOR
						    : QKD_AUTH_RESPONDER;
	struct auth_ctx *a;
	char why[256] = "";
	int err;

	*fatal = 0;
	if (access(o->psk, F_OK)) {
		if (!cur)
			qlog("no authentication key: PSK file %s is missing (it is consumed when read: install a fresh one)",
			     o->psk);
		return cur;
	}
	a = auth_new_from_psk(role, o->psk, QKD_AUTH_PSK_CONSUME, NULL, &err,
			      why, sizeof(why));
	if (!a) {
		qlog("PSK %s: %s", o->psk, why[0] ? why : auth_strerror(err));
		*fatal = err == QKD_AUTH_E_PSK_PERM ||
			 err == QKD_AUTH_E_PSK_SIZE;
		return cur;
	}
	if (cur)
		qlog("a new PSK was installed: re-bootstrapping authentication");
	qlog("PSK %s loaded and wiped (%zu reserve bytes)", o->psk,
	     auth_reserve_level(a));
	auth_free(cur);
	return a;
}

static void pause_ms(unsigned long ms)
{
	while (ms && !qkdd_stop) {
		unsigned long step = ms < 200 ? ms : 200;
		struct timespec ts = { 0, (long)step * 1000000L };

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static void pause_s(unsigned int s)
{
	pause_ms(s * 1000ul);
}

/*
 * The back-off of @s seconds with a jitter: s plus up to half of it, never
 * less (the budget in protocol.md counts the waits without it), so that
 * the two ends and many links do not retry in step.
 */
static void pause_jitter_s(unsigned int s)
{
	static unsigned int seed;
	unsigned long ms = s * 1000ul;

	if (!seed) {
		struct timespec t;

		clock_gettime(CLOCK_MONOTONIC, &t);
		seed = (unsigned int)t.tv_nsec ^ (unsigned int)getpid() ^ 1u;
	}
	if (ms > 1)
		ms += (unsigned long)rand_r(&seed) % (ms / 2 + 1);
	pause_ms(ms);
}

/* QKDD_PUSH_BATCH_KEYS (tests only, see qkdd.h): a count of keys, or unset. */
static int push_batch_from_env(void)
{
	const char *v = getenv("QKDD_PUSH_BATCH_KEYS");
	unsigned long n;
	char *end;

	if (!v)
		return 0;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || !n || n > UINT32_MAX || *v == '-') {
		qlog("QKDD_PUSH_BATCH_KEYS=%s: want a number of keys from 1", v);
		return -1;
	}
	qkdd_push_batch_keys = (uint32_t)n;
	qlog("QKDD_PUSH_BATCH_KEYS=%lu: at most %lu keys per KEY_ADD, for tests",
	     n, n);
	return 0;
}

int main(int argc, char **argv)
{
	struct qkdd_opts o;
	struct sigaction sa;
	struct store *st = NULL;
	struct fiber *fib = NULL;
	struct qkdd *q = NULL;
	struct auth_ctx *auth = NULL;
	char host[QKDD_ADDR_MAX], err[300];
	unsigned int port;
	int lfd = -1, lqfd = -1, rc = 1, r;

	qkdd_opts_default(&o);
	if (parse_args(&o, argc, argv))
		return 2;
	qkdd_log_init(o.role, o.verbose);
	qkdd_fault = getenv("QKDD_FAULT");
	if (qkdd_fault)
		qlog("QKDD_FAULT=%s: fault injection for tests", qkdd_fault);
	if (push_batch_from_env())
		return 2;
	if (peer_split(o.listen[0] ? o.listen : o.peer, host, sizeof(host),
		       &port)) {
		qlog("bad address '%s': want HOST:PORT (PORT below 65535; the quantum channel uses PORT + 1)",
		     o.listen[0] ? o.listen : o.peer);
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (o.sim_test_keys)
		qlog("%s", QKDD_SIM_WARNING);
	if (o.have_seed)
		qlog("--seed %llu: the simulation is reproducible and the keys are NOT secret (tests only)",
		     (unsigned long long)o.seed);
	st = store_open(&o, err, sizeof(err));
	if (!st) {
		qlog("%s", err);
		return 1;
	}
	if (o.role == QKDD_ALICE) {
		fib = fiber_start(&o.ch, o.seed, o.have_seed);
		if (!fib) {
			qlog("cannot start the fiber stage");
			goto out;
		}
	}
	q = qkdd_new(&o, st, fib);
	if (!q) {
		qlog("cannot initialise (out of memory or the store is unreachable)");
		goto out;
	}
	if (o.listen[0]) {
		lfd = peer_listen(host, port);
		lqfd = lfd >= 0 ? peer_listen(host, port + 1) : -1;
		if (lqfd < 0)
			goto out;
	}
	if (o.state_dir[0]) {
		int e;

		auth = qkdd_state_load(q, &e);
		if (e) {
			rc = 1;
			goto out;
		}
		if (auth && qkdd_auth_attach(q, auth, false)) {
			rc = 1;
			goto out;
		}
	}
	store_link_state(st, true);
	qlog("started: %s %s, stream on link %s, %s",
	     o.listen[0] ? "listening on" : "peer", o.listen[0] ? o.listen : o.peer,
	     o.link, o.no_kernel ? "keys to file" : "keys to the kernel");
	rc = 0;
	while (!qkdd_stop) {
		int cfd, qfd, fatal = 0;

		if (o.psk[0]) {
			struct auth_ctx *prev = auth;

			auth = auth_from_psk(&o, auth, &fatal);
			if (fatal) {
				rc = 1;
				break;
			}
			if (!auth) {
				pause_s(o.retry_max_s);
				continue;
			}
			/* a PSK just read is consumed: save it at once */
			if (auth != prev && qkdd_auth_attach(q, auth, true)) {
				rc = 1;
				break;
			}
		}
		if (o.listen[0]) {
			cfd = peer_accept(lfd);
			qfd = cfd >= 0 ? peer_accept(lqfd) : -1;
		} else {
			cfd = peer_connect(host, port, o.retry_max_s);
			qfd = cfd >= 0 ? peer_connect(host, port + 1,
						      o.retry_max_s) : -1;
		}
		if (cfd < 0 || qfd < 0) {
			if (cfd >= 0)
				close(cfd);
			if (qkdd_stop)
				break;
			qlog("connection failed: %s", strerror(cfd < 0 ? -cfd : -qfd));
			pause_s(1);
			continue;
		}
		set_timeouts(cfd, o.timeout_s);
		set_timeouts(qfd, o.timeout_s);
		if (!o.psk[0]) {
			r = qkdd_x509_auth(q, &auth, cfd);
			if (r == -EPERM) {
				close(cfd);
				close(qfd);
				rc = 1;
				break;
			}
			if (r) {
				unsigned int bo = qkdd_backoff_s(q);

				close(cfd);
				close(qfd);
				pause_s(bo > o.retry_max_s ? bo : o.retry_max_s);
				continue;
			}
		}
		r = qkdd_session(q, cfd, qfd, auth);
		close(cfd);
		close(qfd);
		if (r == 1) {
			qlog("%llu rounds done: exiting",
			     (unsigned long long)o.rounds);
			break;
		}
		if (r == 0 || qkdd_stop)
			break;
		if (r == -EPERM) {
			rc = 1;
			break;
		}
		{
			unsigned int bo;

			qkdd_conn_ended(q, strerror(-r));
			bo = qkdd_backoff_s(q);
			qlog("connection lost (%s): reconnecting in %u s%s",
			     strerror(-r), bo > 1 ? bo : 1,
			     bo > 1 ? " or a little more (back-off)" : "");
			pause_jitter_s(bo > 1 ? bo : 1);
		}
	}
	if (qkdd_stop)
		qlog("stopped by signal");
out:
	if (st)
		store_link_state(st, false);
	if (lfd >= 0)
		close(lfd);
	if (lqfd >= 0)
		close(lqfd);
	qkdd_free(q);
	fiber_stop(fib);
	auth_free(auth);
	store_close(st);
	return rc;
}
