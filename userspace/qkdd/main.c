// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd: the BB84 daemon of one site. Options and the configuration file,
 * signals, the authentication bootstrap and the connection loop; the
 * protocol itself is in session.c and the files session.h lists.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/frame.h"
#include "qkd/secmem.h"
#include "qkd/timetag.h"
#include "qkdd.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: qkdd --role alice|bob (--peer HOST:PORT | --listen ADDR:PORT)\n"
"            --stream UUID --link NAME (--psk FILE | --cert F --key F --ca F)\n"
"            [--config FILE] [--seed N] [--channel KEY=VAL,...]\n"
"            [--block-bits N] [--rounds N] [--no-kernel --out FILE]\n"
"            [--reconcile auto|cascade|ldpc]\n"
"            [--status FILE] [--state-dir DIR] [--verbose]\n"
"            [--backoff-base S] [--backoff-max S]\n"
"            [--simulated-channel-test-keys-only] [--replay FILE]\n"
"            [--key-source bb84|etsi014 --kme https://HOST:PORT --kme-sae ID\n"
"             --kme-cert F --kme-key F --kme-ca F [--kme-keys N]]\n"
"       qkdd --help | --version\n"
"The quantum channel (simulated) uses PORT + 1 and must stay on loopback\n"
"unless the keys are for testing only. See qkdd(8).\n");
}

/*
 * SIGTERM: finish the round in progress, then stop (a second SIGTERM, or
 * SIGINT: stop now). SIGHUP: reload between rounds.
 */
static void on_signal(int sig)
{
	if (sig == SIGHUP)
		qkdd_reload = 1;
	else if (sig == SIGTERM && !qkdd_term)
		qkdd_term = 1;
	else
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
	int r = qkdd_args_parse(o, argc, argv, false, err, sizeof(err));

	if (r == QKDD_ARGS_HELP) {
		usage(stdout);
		exit(0);
	}
	if (r == QKDD_ARGS_VERSION) {
		printf("qkdd %s\n", QKD_VERSION);
		exit(0);
	}
	if (r) {
		fprintf(stderr, "qkdd: %s\n", err);
		usage(stderr);
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

/* ---- configuration problems found at start (exit 2) ---------------------- */

/* A file the daemon reads later (certificate, key, CA): readable now. */
static int check_readable(const char *what, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		qerr("%s %s: %s", what, path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/* A file the daemon writes (--out, --status): its directory exists and is
 * writable. */
static int check_dir_of(const char *what, const char *path)
{
	char dir[QKDD_PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == path)
		snprintf(dir, sizeof(dir), "/");
	else
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	if (stat(dir, &st)) {
		qerr("%s %s: %s: %s", what, path, dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		qerr("%s %s: %s: %s", what, path, dir, strerror(ENOTDIR));
		return -1;
	}
	if (access(dir, W_OK | X_OK)) {
		qerr("%s %s: cannot write in %s: %s", what, path, dir,
		     strerror(errno));
		return -1;
	}
	return 0;
}

/* The state directory: ours to write, nobody else's. */
static int check_state_dir(const char *dir)
{
	struct stat st;

	if (stat(dir, &st)) {
		qerr("state directory %s: %s", dir, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		qerr("state directory %s: %s", dir, strerror(ENOTDIR));
		return -1;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		qerr("state directory %s: mode %04o lets others replace the state file: chmod go-w",
		     dir, (unsigned int)(st.st_mode & 07777));
		return -1;
	}
	if (access(dir, W_OK | X_OK)) {
		qerr("state directory %s: cannot write in it: %s", dir,
		     strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The PSK: a regular file (not a symbolic link), of ours or root's, that
 * no group or other user may read or write, of a size auth_psk_read()
 * takes. Missing is a problem only when there is no state to resume from.
 */
static int check_psk(const struct qkdd_opts *o, bool have_state)
{
	struct stat st;

	if (lstat(o->psk, &st)) {
		if (errno == ENOENT && have_state)
			return 0;
		if (errno == ENOENT)
			qerr("pre-shared key %s: missing, and no state in %s to resume from: install one (qkdctl genpsk) at both ends",
			     o->psk, o->state_dir[0] ? o->state_dir : "(no --state-dir)");
		else
			qerr("pre-shared key %s: %s", o->psk, strerror(errno));
		return -1;
	}
	if (S_ISLNK(st.st_mode)) {
		qerr("pre-shared key %s: is a symbolic link; give the real file",
		     o->psk);
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		qerr("pre-shared key %s: not a regular file", o->psk);
		return -1;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		qerr("pre-shared key %s: mode %04o lets others read or change it: chmod 600",
		     o->psk, (unsigned int)(st.st_mode & 07777));
		return -1;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		qerr("pre-shared key %s: owned by uid %u, not by us (uid %u) or root",
		     o->psk, (unsigned int)st.st_uid, (unsigned int)geteuid());
		return -1;
	}
	if (st.st_size < QKD_AUTH_PSK_MIN || st.st_size > QKD_AUTH_PSK_MAX ||
	    st.st_size % QKD_AUTH_PSK_ALIGN) {
		qerr("pre-shared key %s: %lld bytes; must be %u..%u bytes, a multiple of %u",
		     o->psk, (long long)st.st_size, QKD_AUTH_PSK_MIN,
		     QKD_AUTH_PSK_MAX, QKD_AUTH_PSK_ALIGN);
		return -1;
	}
	if (access(o->psk, R_OK | W_OK)) {
		qerr("pre-shared key %s: cannot read and wipe it: %s", o->psk,
		     strerror(errno));
		return -1;
	}
	return 0;
}

static int check_start(const struct qkdd_opts *o)
{
	bool have_state = false;

	if (o->state_dir[0]) {
		char path[QKDD_PATH_MAX + 32];

		if (check_state_dir(o->state_dir))
			return -1;
		snprintf(path, sizeof(path), "%s/%s.state", o->state_dir,
			 qkdd_role_name(o->role));
		have_state = !access(path, F_OK);
	}
	if (o->psk[0] && check_psk(o, have_state))
		return -1;
	if (!o->psk[0] && (check_readable("certificate", o->cert) ||
			   check_readable("private key", o->key) ||
			   check_readable("CA certificate", o->ca)))
		return -1;
	if (o->key_source == QKDD_SRC_ETSI014 &&
	    (check_readable("vendor KME client certificate (--kme-cert)",
			    o->kme_cert) ||
	     check_readable("vendor KME client key (--kme-key)", o->kme_key) ||
	     check_readable("vendor KME CA certificate (--kme-ca)", o->kme_ca)))
		return -1;
	if (o->replay[0] && o->key_source == QKDD_SRC_BB84) {
		/* the recording: there, ours alone, and well-formed */
		struct qkd_tt_reader *r = calloc(1, sizeof(*r));
		int e;

		if (!r)
			return -1;
		e = qkd_tt_open_path(r, o->replay, o->role == QKDD_ALICE ?
				     QKD_TT_ALICE : QKD_TT_BOB);
		if (e) {
			qerr("replay: %s", r->err);
		} else if (r->h.classes != o->ch.n_intensities) {
			qerr("replay %s: the recording has %u intensity classes, the configured source %u (--channel mu=...): describe the recorded source",
			     o->replay, r->h.classes, o->ch.n_intensities);
			e = -EINVAL;
		}
		qkd_tt_close(r);
		free(r);
		if (e)
			return -1;
	}
	if (o->out[0] && check_dir_of("output file", o->out))
		return -1;
	if (o->status[0] && check_dir_of("status file", o->status))
		return -1;
	if (o->control[0] && check_dir_of("control socket", o->control))
		return -1;
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
		qerr("PSK %s: %s", o->psk, why[0] ? why : auth_strerror(err));
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
	while (ms && !qkdd_stopping()) {
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
	bool etsi;

	qkdd_opts_default(&o);
	if (parse_args(&o, argc, argv))
		return 2;
	etsi = o.key_source == QKDD_SRC_ETSI014;
	qkdd_log_init(o.role, o.verbose);
	qkdd_fault = getenv("QKDD_FAULT");
	if (qkdd_fault)
		qlog("QKDD_FAULT=%s: fault injection for tests", qkdd_fault);
	if (push_batch_from_env())
		return 2;
	if (peer_split(o.listen[0] ? o.listen : o.peer, host, sizeof(host),
		       &port)) {
		qerr("bad address '%s': want HOST:PORT (PORT below 65535; the quantum channel uses PORT + 1)",
		     o.listen[0] ? o.listen : o.peer);
		return 2;
	}
	/* a configuration problem: exit 2, which the unit does not restart */
	if (check_start(&o))
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	qkdd_reload_init(&o, argc, argv);
	if (o.control[0] && control_start(o.control, err, sizeof(err))) {
		qerr("%s", err);
		return 2;
	}

	if (o.sim_test_keys)
		qlog("%s", QKDD_SIM_WARNING);
	if (o.have_seed)
		qlog("--seed %llu: the simulation is reproducible and the keys are NOT secret (tests only)",
		     (unsigned long long)o.seed);
	st = store_open(&o, err, sizeof(err));
	if (!st) {
		qerr("%s", err);
		control_stop();
		return 1;
	}
	if (o.role == QKDD_ALICE && o.key_source == QKDD_SRC_BB84 &&
	    !o.replay[0]) {
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
		if (lfd < 0)
			goto out;
		/* etsi014: no quantum channel */
		if (!etsi) {
			lqfd = peer_listen(host, port + 1);
			if (lqfd < 0)
				goto out;
		}
	}
	if (o.state_dir[0]) {
		int e;

		/* a damaged state file needs an operator: exit 2 */
		auth = qkdd_state_load(q, &e);
		if (e) {
			rc = 2;
			goto out;
		}
		if (auth && qkdd_auth_attach(q, auth, false)) {
			rc = 1;
			goto out;
		}
	}
	store_link_state(st, true);
	qlog("started: %s %s, stream on link %s, %s, keys from %s%s%s",
	     o.listen[0] ? "listening on" : "peer", o.listen[0] ? o.listen : o.peer,
	     o.link, o.no_kernel ? "keys to file" : "keys to the kernel",
	     etsi ? "the vendor KME " : o.replay[0] ?
	     "BB84 on the recording " : "the simulated BB84 stage",
	     etsi ? o.kme : o.replay[0] ? o.replay : "",
	     etsi ? " (ETSI GS QKD 014)" : "");
	qkdd_status_publish(q);
	qkdd_notify("READY=1");
	qkdd_notify_status("%s %s", o.listen[0] ? "listening on" : "connecting to",
			   o.listen[0] ? o.listen : o.peer);
	rc = 0;
	while (!qkdd_stopping()) {
		int cfd, qfd, fatal = 0;

		if (qkdd_reload)
			qkdd_reload_apply();

		if (o.psk[0]) {
			struct auth_ctx *prev = auth;

			auth = auth_from_psk(&o, auth, &fatal);
			if (fatal) {
				rc = 2;
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
			qfd = cfd >= 0 && lqfd >= 0 ? peer_accept(lqfd) : -1;
		} else {
			cfd = peer_connect(host, port, o.retry_max_s);
			qfd = cfd >= 0 && !etsi ?
			      peer_connect(host, port + 1, o.retry_max_s) : -1;
		}
		/* etsi014: no quantum channel (qfd -1) */
		if (cfd < 0 || (qfd < 0 && !etsi)) {
			if (cfd >= 0)
				close(cfd);
			if (qkdd_stopping())
				break;
			qnotice("connection failed: %s", strerror(cfd < 0 ? -cfd : -qfd));
			pause_s(1);
			continue;
		}
		set_timeouts(cfd, o.timeout_s);
		if (qfd >= 0)
			set_timeouts(qfd, o.timeout_s);
		if (!o.psk[0]) {
			r = qkdd_x509_auth(q, &auth, cfd);
			if (r == -EPERM) {
				close(cfd);
				if (qfd >= 0)
					close(qfd);
				rc = 1;
				break;
			}
			if (r) {
				unsigned int bo = qkdd_backoff_s(q);

				close(cfd);
				if (qfd >= 0)
					close(qfd);
				pause_s(bo > o.retry_max_s ? bo : o.retry_max_s);
				continue;
			}
		}
		r = qkdd_session(q, cfd, qfd, auth);
		close(cfd);
		if (qfd >= 0)
			close(qfd);
		/* the rounds' kept arrays: no use until the next session */
		qkd_secmem_trim();
		if (r == 1) {
			if (o.rounds)
				qlog("%llu rounds done: exiting",
				     (unsigned long long)o.rounds);
			else	/* --replay: the recording's end */
				qlog("the recording is replayed: exiting");
			break;
		}
		if (r == 0 || qkdd_stopping())
			break;
		if (r == -EPERM) {
			rc = 1;
			break;
		}
		{
			unsigned int bo;

			qkdd_conn_ended(q, strerror(-r));
			bo = qkdd_backoff_s(q);
			qnotice("connection lost (%s): reconnecting in %u s%s",
			     strerror(-r), bo > 1 ? bo : 1,
			     bo > 1 ? " or a little more (back-off)" : "");
			pause_jitter_s(bo > 1 ? bo : 1);
		}
	}
	if (qkdd_stop || qkdd_term)
		qlog("stopped by signal");
	qkdd_notify("STOPPING=1");
out:
	if (st)
		store_link_state(st, false);
	if (lfd >= 0)
		close(lfd);
	if (lqfd >= 0)
		close(lqfd);
	qkdd_free(q);
	fiber_stop(fib);
	qkd_secmem_trim();
	auth_free(auth);
	store_close(st);
	control_stop();
	return rc;
}
