// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl up / down: a whole site from one file (qkd.conf(5)), in the
 * style of wg-quick.
 *
 *   qkdctl up   [-c|--config FILE] [--run-dir DIR] [--foreground|--bind-only] NAME
 *   qkdctl down [-c|--config FILE] [--run-dir DIR] [--purge] NAME
 *
 * up: the link, its streams, the link state, qkdd (its options written to
 * DIR/NAME.qkdd.conf, its pid to DIR/NAME.qkdd.pid) and, once the keys of
 * their first generation are there, the SA bindings. What exists already
 * is adopted when it is what the file says, and refused, untouched, when
 * it is not (a stream's keys are never deleted to make the file true); up
 * twice is up once. What this run made is undone in reverse if a later
 * step fails, so a failure leaves the site as it found it.
 * --foreground (qkd@.service's ExecStart): link and streams, then exec()
 * qkdd, so that it is the unit's main process (its sd_notify reaches
 * systemd, a crash restarts it); without [daemon], READY=1 and wait for
 * SIGTERM. --bind-only (ExecStartPost): the bindings alone.
 * down: the bindings (as [sa] on-down says) and qkdd; the link and its
 * streams stay with their keys unless --purge.
 *
 * Exit status: 0; 1 the kernel or the daemon refused; 2 a bad command line
 * or configuration (FILE:LINE: reason), or a link, stream or binding that
 * exists with other parameters than the file's: nothing touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <qkd/sa.h>
#include <systemd/sd-daemon.h>

#include "qkdctl.h"
#include "siteconf.h"

#define DEFAULT_CONF_DIR	"/etc/qkd"
#define DEFAULT_RUN_DIR		"/run/qkdd"
/* How long up waits for the keys of an SA's first generation. */
#define SA_KEY_WAIT_S		300
/* How long qkdd must stay alive after its start to count as started. */
#define DAEMON_SETTLE_MS	1000
#define DAEMON_STOP_S		20

struct site_run {
	struct site_conf *c;
	bool foreground, bind_only, purge;
	char run_dir[PATH_MAX / 2];
	char conf_path[PATH_MAX];
	char pid_path[PATH_MAX];
	char log_path[PATH_MAX];
	/* what this run made, for the undo */
	bool made_link;
	bool made_stream[SITE_MAX_STREAMS];
	bool made_sa[SITE_MAX_SAS];
	pid_t made_daemon;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("[#] ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/*
 * "-c FILE", "--config FILE", "--config=FILE", "--run-dir DIR", NAME; up:
 * "--foreground", "--bind-only"; down: "--purge".
 */
static void parse_args(struct site_run *r, int argc, char **argv,
		       const char *cmd, const char **name, const char **file,
		       const char **rdir)
{
	bool up = !strcmp(cmd, "up");

	int i;

	*name = *file = NULL;
	*rdir = getenv("QKDCTL_RUN_DIR");
	if (!*rdir || !**rdir)
		*rdir = DEFAULT_RUN_DIR;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
			if (++i >= argc)
				usage_error("%s: \"%s\" needs a file", cmd, a);
			*file = argv[i];
		} else if (!strncmp(a, "--config=", 9)) {
			*file = a + 9;
		} else if (!strcmp(a, "--run-dir")) {
			if (++i >= argc)
				usage_error("%s: \"%s\" needs a directory", cmd, a);
			*rdir = argv[i];
		} else if (up && !strcmp(a, "--foreground")) {
			r->foreground = true;
		} else if (up && !strcmp(a, "--bind-only")) {
			r->bind_only = true;
		} else if (!up && !strcmp(a, "--purge")) {
			r->purge = true;
		} else if (a[0] == '-' && a[1]) {
			usage_error("%s: unknown option \"%s\"", cmd, a);
		} else if (*name) {
			usage_error("%s: unexpected argument \"%s\"", cmd, a);
		} else {
			*name = arg_link_name(a);
		}
	}
	if (!*name)
		usage_error("%s: missing link NAME", cmd);
	if (r->foreground && r->bind_only)
		usage_error("%s: --foreground and --bind-only exclude each other",
			    cmd);
}

static int load(struct site_run *r, int argc, char **argv, const char *cmd)
{
	const char *name, *file, *rdir;
	char path[PATH_MAX], err[768];
	int ret;

	memset(r, 0, sizeof(*r));
	parse_args(r, argc, argv, cmd, &name, &file, &rdir);
	if (!file) {
		snprintf(path, sizeof(path), "%s/%s.conf", DEFAULT_CONF_DIR, name);
		file = path;
	}
	if (strlen(rdir) >= sizeof(r->run_dir))
		usage_error("%s: run directory too long", cmd);
	strcpy(r->run_dir, rdir);
	snprintf(r->conf_path, sizeof(r->conf_path), "%s/%s.qkdd.conf", rdir, name);
	snprintf(r->pid_path, sizeof(r->pid_path), "%s/%s.qkdd.pid", rdir, name);
	snprintf(r->log_path, sizeof(r->log_path), "%s/%s.qkdd.log", rdir, name);
	r->c = calloc(1, sizeof(*r->c));
	if (!r->c)
		return fail_msg("%s: out of memory", cmd);
	ret = site_load(r->c, name, file, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "qkdctl: %s: %s\n", cmd, err);
		free(r->c);
		r->c = NULL;
		return ret == -EINVAL ? EXIT_USAGE : 1;
	}
	return 0;
}

/* ---- the SA bindings: "sa add" argument vectors from [sa] ------------- */

static int sa_argv(const struct site_sa *sa, char **argv, int cap)
{
	int n = 0;

	argv[n++] = (char *)sa->id_str;
	for (unsigned int i = 0; i < sa->nkv && n + 2 < cap; i++) {
		argv[n++] = (char *)sa->kv[i].key;
		if (sa->kv[i].has_val)
			argv[n++] = (char *)sa->kv[i].val;
	}
	argv[n] = NULL;
	return n;
}

/*
 * The [sa] sections checked as "qkdctl sa add" checks its arguments, in a
 * child (the checks exit on the first error): before anything is made.
 */
static int check_sas(const struct site_run *r)
{
	for (unsigned int i = 0; i < r->c->nsas; i++) {
		const struct site_sa *sa = &r->c->sas[i];
		char *argv[2 * SITE_MAX_SA_KV + 2];
		int argc = sa_argv(sa, argv, (int)ARRAY_SIZE(argv)), st;
		pid_t pid;

		fflush(NULL);
		pid = fork();
		if (pid < 0)
			return fail_msg("up: fork: %s", strerror(errno));
		if (!pid) {
			struct qkd_sa_params p;

			sa_params_parse(argc, argv, &p);
			_exit(0);
		}
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st)) {
			fprintf(stderr, "qkdctl: up: %s:%u: [sa %s]: refused (above)\n",
				r->c->path, sa->line, sa->id_str);
			return EXIT_USAGE;
		}
	}
	return 0;
}

/* ---- the daemon -------------------------------------------------------- */

static pid_t read_pid(const char *path)
{
	char buf[32];
	ssize_t n;
	long v;
	char *end;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	v = strtol(buf, &end, 10);
	if (v <= 1 || v > INT_MAX || (*end && *end != '\n'))
		return 0;
	return (pid_t)v;
}

/* @pid is a qkdd started with our configuration file (not a reused pid). */
static bool is_our_daemon(const struct site_run *r, pid_t pid)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* argv: qkdd --config CONF */
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(buf + i) + 1)
		if (!strcmp(buf + i, r->conf_path))
			return true;
	return false;
}

static int write_file(const char *path, const char *text, size_t len)
{
	char tmp[PATH_MAX + 8];
	int fd, err = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len || fsync(fd))
		err = errno ? -errno : -EIO;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

/*
 * qkdd's configuration: each [daemon] line at its own line number (so that
 * qkdd's "FILE:LINE" is the line of the site file), the rest blank, then
 * link, stream and status unless the section gave them.
 */
static int write_daemon_conf(const struct site_run *r)
{
	const struct site_conf *c = r->c;
	unsigned int last = 0, line = 1;
	bool have_link = false, have_stream = false, have_status = false;
	bool have_ks = false;
	size_t cap = 64 * 1024, len = 0;
	char *text = malloc(cap);
	int err;

	if (!text)
		return -ENOMEM;
	for (unsigned int i = 0; i < c->ndaemon; i++)
		if (c->daemon[i].line > last)
			last = c->daemon[i].line;
	for (unsigned int i = 0; i < c->ndaemon; i++) {
		const struct site_kv *kv = &c->daemon[i];

		while (line < kv->line && len < cap - 1) {
			text[len++] = '\n';
			line++;
		}
		len += (size_t)snprintf(text + len, cap - len, "%s%s%s\n",
					kv->key, kv->has_val ? " = " : "",
					kv->val);
		line++;
		have_link |= !strcmp(kv->key, "link");
		have_stream |= !strcmp(kv->key, "stream");
		have_status |= !strcmp(kv->key, "status");
		have_ks |= !strcmp(kv->key, "key-size");
	}
	len += (size_t)snprintf(text + len, cap - len,
				"# written by qkdctl up from %s (its line numbers)\n",
				c->path);
	if (!have_link)
		len += (size_t)snprintf(text + len, cap - len, "link = %s\n",
					c->name);
	if (!have_stream)
		len += (size_t)snprintf(text + len, cap - len, "stream = %s\n",
					c->streams[c->daemon_stream].id_str);
	if (!have_ks)
		len += (size_t)snprintf(text + len, cap - len, "key-size = %u\n",
					c->streams[c->daemon_stream].key_size);
	if (!have_status)
		len += (size_t)snprintf(text + len, cap - len,
					"status = %s/%s.status\n", r->run_dir,
					c->name);
	err = len >= cap ? -E2BIG : write_file(r->conf_path, text, len);
	free(text);
	return err;
}

static void qkdd_path(char *out, size_t len)
{
	const char *env = getenv("QKDCTL_QKDD");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(out, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 16);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash) {
			*slash = '\0';
			if ((size_t)snprintf(out, len, "%.*s/qkdd",
					     (int)(PATH_MAX - 16), self) < len)
				return;
		}
	}
	snprintf(out, len, "qkdd");
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* The last lines of qkdd's log, as diagnostics. */
static void show_log(const struct site_run *r)
{
	char buf[2048];
	ssize_t n;
	off_t size;
	int fd = open(r->log_path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n > 0) {
		buf[n] = '\0';
		fprintf(stderr, "qkdctl: qkdd's log (%s):\n%s", r->log_path, buf);
	}
}

static int start_daemon(struct site_run *r)
{
	char exe[PATH_MAX], pidtxt[32];
	int err, st;
	pid_t pid;
	bool journal = getenv("JOURNAL_STREAM") != NULL;

	pid = read_pid(r->pid_path);
	if (pid && kill(pid, 0) == 0 && is_our_daemon(r, pid)) {
		say("qkdd already running (pid %d)", (int)pid);
		return 0;
	}
	if (mkdir(r->run_dir, 0755) && errno != EEXIST)
		return fail_msg("up: %s: %s", r->run_dir, strerror(errno));
	err = write_daemon_conf(r);
	if (err)
		return fail_msg("up: %s: %s", r->conf_path, strerror(-err));
	qkdd_path(exe, sizeof(exe));
	say("%s --config %s", exe, r->conf_path);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return fail_msg("up: fork: %s", strerror(errno));
	if (!pid) {
		int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
		int out = journal ? -1 :
			  open(r->log_path, O_WRONLY | O_CREAT | O_APPEND |
			       O_NOFOLLOW | O_CLOEXEC, 0600);

		setsid();
		if (in < 0 || dup2(in, STDIN_FILENO) < 0)
			_exit(127);
		/* stdout too: a caller reading ours must see its end */
		if (out >= 0 && (dup2(out, STDOUT_FILENO) < 0 ||
				 dup2(out, STDERR_FILENO) < 0))
			_exit(127);
		if (out < 0 && dup2(STDERR_FILENO, STDOUT_FILENO) < 0)
			_exit(127);
		execl(exe, "qkdd", "--config", r->conf_path, (char *)NULL);
		fprintf(stderr, "qkdctl: up: %s: %s\n", exe, strerror(errno));
		_exit(127);
	}
	r->made_daemon = pid;
	snprintf(pidtxt, sizeof(pidtxt), "%d\n", (int)pid);
	err = write_file(r->pid_path, pidtxt, strlen(pidtxt));
	if (err)
		return fail_msg("up: %s: %s", r->pid_path, strerror(-err));
	/* A configuration qkdd refuses ends it at once (exit 2). */
	for (int t = 0; t < DAEMON_SETTLE_MS; t += 50) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			r->made_daemon = 0;
			unlink(r->pid_path);
			show_log(r);
			if (WIFEXITED(st))
				fprintf(stderr, "qkdctl: up: qkdd exited with status %d at once (%s: the lines of %s)\n",
					WEXITSTATUS(st), r->conf_path, r->c->path);
			else
				fprintf(stderr, "qkdctl: up: qkdd died at once\n");
			return WIFEXITED(st) && WEXITSTATUS(st) == 2 ?
			       EXIT_USAGE : 1;
		}
		sleep_ms(50);
	}
	return 0;
}

/*
 * --foreground: qkdd replaces this process (the unit's main process keeps
 * its pid, so NAME.qkdd.pid is it). Returns only on failure.
 */
static int exec_daemon(struct site_run *r)
{
	char exe[PATH_MAX], pidtxt[32];
	pid_t pid = read_pid(r->pid_path);
	int err;

	if (pid && pid != getpid() && kill(pid, 0) == 0 &&
	    is_our_daemon(r, pid)) {
		fprintf(stderr, "qkdctl: up: qkdd runs already for %s (pid %d), started outside this unit: qkdctl down %s first\n",
			r->c->name, (int)pid, r->c->name);
		return 1;
	}
	if (mkdir(r->run_dir, 0755) && errno != EEXIST)
		return fail_msg("up: %s: %s", r->run_dir, strerror(errno));
	err = write_daemon_conf(r);
	if (err)
		return fail_msg("up: %s: %s", r->conf_path, strerror(-err));
	snprintf(pidtxt, sizeof(pidtxt), "%d\n", (int)getpid());
	err = write_file(r->pid_path, pidtxt, strlen(pidtxt));
	if (err)
		return fail_msg("up: %s: %s", r->pid_path, strerror(-err));
	qkdd_path(exe, sizeof(exe));
	say("exec %s --config %s", exe, r->conf_path);
	ctl_cleanup();
	fflush(NULL);
	execl(exe, "qkdd", "--config", r->conf_path, (char *)NULL);
	err = errno;
	unlink(r->pid_path);
	return fail_msg("up: %s: %s", exe, strerror(err));
}

/*
 * --foreground without [daemon]: the unit's main process has nothing to
 * run; it says it is ready and waits for SIGTERM or SIGINT (SIGHUP, a
 * reload, changes nothing).
 */
static int wait_without_daemon(const struct site_run *r)
{
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return fail_msg("up: sigprocmask: %s", strerror(errno));
	ctl_cleanup();
	say("%s is up (no [daemon] in %s: no qkdd; waiting for SIGTERM)",
	    r->c->name, r->c->path);
	sd_notifyf(0, "READY=1\nSTATUS=link %s up, no [daemon]: no qkdd",
		   r->c->name);
	fflush(NULL);
	while (sig != SIGTERM && sig != SIGINT)
		if (sigwait(&set, &sig))
			return fail_msg("up: sigwait: %s", strerror(errno));
	sd_notify(0, "STOPPING=1");
	return 0;
}

/* Exited: reaped (our child), or no such process, or a zombie. */
static bool gone(pid_t pid, bool child)
{
	char path[64], buf[256], *p;
	ssize_t n;
	int fd;

	if (child)
		return waitpid(pid, NULL, WNOHANG) == pid;
	if (kill(pid, 0) && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return true;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'Z';
}

/* SIGTERM, then SIGKILL after DAEMON_STOP_S. */
static void stop_pid(pid_t pid, bool child)
{
	if (kill(pid, SIGTERM))
		return;
	for (int t = 0; t < DAEMON_STOP_S * 20; t++) {
		if (gone(pid, child))
			return;
		sleep_ms(50);
	}
	kill(pid, SIGKILL);
	for (int t = 0; t < 100 && !gone(pid, child); t++)
		sleep_ms(50);
}

static void stop_daemon(const struct site_run *r, pid_t child)
{
	pid_t pid = child ? child : read_pid(r->pid_path);

	if (pid && (child || is_our_daemon(r, pid))) {
		say("stop qkdd (pid %d)", (int)pid);
		stop_pid(pid, child != 0);
	}
	unlink(r->pid_path);
	unlink(r->conf_path);
}

/* ---- up ---------------------------------------------------------------- */

static bool made_any(const struct site_run *r)
{
	bool any = r->made_link || r->made_daemon;

	for (unsigned int i = 0; i < r->c->nstreams; i++)
		any |= r->made_stream[i];
	for (unsigned int i = 0; i < r->c->nsas; i++)
		any |= r->made_sa[i];
	return any;
}

static void undo(struct site_run *r)
{
	struct qkd_nl *nl;
	struct qkd_link_ref ref = { .name = r->c->name };

	if (!made_any(r))
		return;		/* nothing to undo: netlink not even opened */
	nl = ctl_nl();

	for (unsigned int i = r->c->nsas; i-- > 0;)
		if (r->made_sa[i]) {
			say("undo: sa del %s remove-protection", r->c->sas[i].id_str);
			qkd_sa_del_unprotect(nl, r->c->sas[i].id);
		}
	if (r->made_daemon)
		stop_daemon(r, r->made_daemon);
	for (unsigned int i = r->c->nstreams; i-- > 0;)
		if (r->made_stream[i]) {
			say("undo: stream del %s", r->c->streams[i].id_str);
			qkd_stream_del(nl, r->c->streams[i].id);
		}
	if (r->made_link) {
		say("undo: link del %s", r->c->name);
		qkd_link_del(nl, &ref);
	}
}

/* "qkdctl: up: FILE:LINE: WHAT: strerror: extack" */
static int at_line_error(const struct site_conf *c, unsigned int line,
			 const char *what, int err)
{
	char buf[PATH_MAX + 64];

	snprintf(buf, sizeof(buf), "up: %s:%u: %s", c->path, line, what);
	return kernel_error(buf, err);
}

static int up_link(struct site_run *r)
{
	struct site_conf *c = r->c;
	struct qkd_link_ref ref = { .name = c->name };
	struct qkd_link l;
	int err;

	char why[256];

	err = qkd_link_get(ctl_nl(), &ref, &l);
	if (!err) {
		if (site_link_diff(c, &l, why, sizeof(why))) {
			fprintf(stderr, "qkdctl: up: %s:%u: link %s exists with other parameters (%s): not adopted, nothing changed; change the file back, or take the link down with qkdctl down --purge %s (deletes the keys of its streams)\n",
				c->path, c->link_line, c->name, why, c->name);
			return EXIT_USAGE;
		}
		say("link %s exists: adopted", c->name);
		return 0;
	}
	if (err != -ENOENT)
		return kernel_error("up: link get", err);
	say("link add %s role %s%s%s", c->name, qkd_role_name(c->role),
	    c->peer[0] ? " peer " : "", c->peer);
	err = qkd_link_add(ctl_nl(), c->name, c->role, c->id,
			   c->peer[0] ? c->peer : NULL, NULL);
	if (err) {
		return at_line_error(c, c->link_line, "link add", err);
	}
	r->made_link = true;
	return 0;
}

static int up_streams(struct site_run *r)
{
	struct site_conf *c = r->c;
	struct qkd_link_ref ref = { .name = c->name };
	int err;

	for (unsigned int i = 0; i < c->nstreams; i++) {
		struct site_stream *st = &c->streams[i];
		struct qkd_stream s;

		char why[256];

		err = qkd_stream_get(ctl_nl(), st->id, &s);
		if (!err) {
			const char *ln = link_name_of(s.link_id);

			if (!ln || strcmp(ln, c->name)) {
				fprintf(stderr, "qkdctl: up: %s:%u: stream %s exists on link %s\n",
					c->path, st->line, st->id_str,
					ln ? ln : "?");
				return 1;
			}
			if (site_stream_diff(st, &s, why, sizeof(why))) {
				fprintf(stderr, "qkdctl: up: %s:%u: stream %s exists with other parameters (%s): not adopted, nothing changed, its %u stored keys kept; change the file back, or the stream (qkdctl stream set, which keeps its keys), or take the link down with qkdctl down --purge %s (deletes them)\n",
					c->path, st->line, st->id_str, why,
					s.stored_keys, c->name);
				return EXIT_USAGE;
			}
			say("stream %s exists with %u stored keys: adopted",
			    st->id_str, s.stored_keys);
			continue;
		}
		if (err != -ENOENT)
			return kernel_error("up: stream get", err);
		say("stream add %s link %s key-size %u", st->id_str, c->name,
		    st->key_size);
		err = qkd_stream_add(ctl_nl(), st->id, &ref, st->key_size,
				     st->have_max_keys ? &st->max_keys : NULL,
				     st->have_low_water ? &st->low_water : NULL,
				     NULL);
		if (err) {
			return at_line_error(c, st->line, "stream add", err);
		}
		r->made_stream[i] = true;
	}
	if (!c->state_down) {
		say("link set %s state up", c->name);
		err = qkd_link_set_state(ctl_nl(), &ref, QKD_LINK_STATE_UP);
		if (err)
			return kernel_error("up: link set state up", err);
	}
	return 0;
}

/*
 * A binding that exists is adopted if it is what its [sa] section says,
 * else refused: 0, 1 (not there), or EXIT_USAGE (said why).
 */
static int adopt_sa(const struct site_run *r, const struct site_sa *sa,
		    bool quiet)
{
	char *argv[2 * SITE_MAX_SA_KV + 2];
	int argc = sa_argv(sa, argv, (int)ARRAY_SIZE(argv));
	struct qkd_sa_params p;
	struct qkd_sa_info info;
	char why[256];

	if (qkd_sa_get(ctl_nl(), sa->id, &info))
		return 1;
	sa_params_parse(argc, argv, &p);	/* checked before */
	if (site_sa_diff(&p, &info, why, sizeof(why))) {
		fprintf(stderr, "qkdctl: up: %s:%u: [sa %s]: a binding exists with other parameters (%s): not adopted, nothing changed; change the file back, or unbind it with qkdctl down %s (its policies then block the traffic) and give both ends a new first-index\n",
			r->c->path, sa->line, sa->id_str, why, r->c->name);
		return EXIT_USAGE;
	}
	if (!quiet)
		say("sa %s exists: adopted", sa->id_str);
	return 0;
}

/*
 * Every binding that exists is what the file says, before qkdd starts
 * (said once: by up_sas, or here under --foreground, which binds nothing).
 */
static int check_bound_sas(const struct site_run *r)
{
	for (unsigned int i = 0; i < r->c->nsas; i++) {
		int ret = adopt_sa(r, &r->c->sas[i], !r->foreground);

		if (ret && ret != 1)
			return ret;
	}
	return 0;
}

static int up_sas(struct site_run *r)
{
	struct site_conf *c = r->c;

	for (unsigned int i = 0; i < c->nsas; i++) {
		struct site_sa *sa = &c->sas[i];
		char *argv[2 * SITE_MAX_SA_KV + 2];
		int argc = sa_argv(sa, argv, (int)ARRAY_SIZE(argv)), err;
		struct qkd_sa_params p;
		struct qkd_sa_info info;
		bool told = false;

		err = adopt_sa(r, sa, false);
		if (err != 1) {
			if (err)
				return err;
			continue;
		}
		sa_params_parse(argc, argv, &p);	/* checked before */
		say("sa add %s ...", sa->id_str);
		/* The keys of the first generation come from qkdd: wait. */
		for (int t = 0;; t++) {
			err = qkd_sa_add(ctl_nl(), &p, &info);
			if (err != -ENOKEY || t >= SA_KEY_WAIT_S * 2)
				break;
			if (!told)
				say("sa %s: waiting for the keys of its first generation",
				    sa->id_str);
			told = true;
			sleep_ms(500);
		}
		if (err) {
			return at_line_error(c, sa->line, "sa add", err);
		}
		r->made_sa[i] = true;
	}
	return 0;
}

int do_up(int argc, char **argv)
{
	struct site_run r;
	int ret;

	ret = load(&r, argc, argv, "up");
	if (ret)
		return ret;
	ret = check_sas(&r);
	if (!ret)
		ret = up_link(&r);
	if (!ret)
		ret = up_streams(&r);
	if (!ret)
		ret = check_bound_sas(&r);
	if (!ret && r.foreground)
		ret = r.c->have_daemon ? exec_daemon(&r) :
		      wait_without_daemon(&r);
	else if (!ret && r.c->have_daemon && !r.bind_only)
		ret = start_daemon(&r);
	if (!ret && !r.foreground)
		ret = up_sas(&r);
	if (ret) {
		bool any = made_any(&r);

		undo(&r);
		fprintf(stderr, "qkdctl: up %s: failed, %s (%s)\n", r.c->name,
			any ? "what it made undone" : "nothing changed",
			r.c->path);
	} else if (!r.foreground) {
		say("%s is up", r.c->name);
	}
	free(r.c);
	return ret;
}

/* ---- down -------------------------------------------------------------- */

int do_down(int argc, char **argv)
{
	struct site_run r;
	struct qkd_link_ref ref;
	struct qkd_sa_info info;
	int ret, err, bad = 0;

	ret = load(&r, argc, argv, "down");
	if (ret)
		return ret;
	ref.name = r.c->name;
	ref.id = 0;
	for (unsigned int i = r.c->nsas; i-- > 0;) {
		struct site_sa *sa = &r.c->sas[i];

		if (qkd_sa_get(ctl_nl(), sa->id, &info))
			continue;
		say("sa del %s%s", sa->id_str,
		    sa->remove_protection ? " remove-protection" : "");
		err = sa->remove_protection ?
		      qkd_sa_del_unprotect(ctl_nl(), sa->id) :
		      qkd_sa_del(ctl_nl(), sa->id);
		if (err && err != -ENOENT)
			bad = kernel_error("down: sa del", err);
	}
	stop_daemon(&r, 0);
	for (unsigned int i = r.c->nstreams; i-- > 0 && !r.purge;) {
		struct site_stream *st = &r.c->streams[i];
		struct qkd_stream s;

		if (!qkd_stream_get(ctl_nl(), st->id, &s))
			say("stream %s kept with its %u stored keys (--purge deletes them)",
			    st->id_str, s.stored_keys);
	}
	for (unsigned int i = r.c->nstreams; i-- > 0 && r.purge;) {
		struct site_stream *st = &r.c->streams[i];

		err = qkd_stream_del(ctl_nl(), st->id);
		if (!err)
			say("stream del %s", st->id_str);
		else if (err != -ENOENT)
			bad = kernel_error("down: stream del", err);
	}
	err = r.purge ? qkd_link_del(ctl_nl(), &ref) : 0;
	if (r.purge && !err)
		say("link del %s", r.c->name);
	else if (r.purge && err != -ENOENT)
		bad = kernel_error("down: link del", err);
	if (!bad)
		say("%s is down%s", r.c->name,
		    r.purge ? ", its keys deleted" : "");
	free(r.c);
	return bad;
}
