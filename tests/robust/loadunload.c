// SPDX-License-Identifier: GPL-2.0-only
/*
 * loadunload: load and unload qkd.ko over and over while it is in use.
 *
 *   loadunload -k QKD_KO [-n ITERATIONS (20)] [-l LINKS (200)] [-v]
 *
 * Runs as root in the VM with the module not loaded. Each iteration loads
 * the module (finit_module), fills the initial netns (LINKS links with a
 * stream each, keys in some of them) and a second netns held by a child
 * (keys too, no file or socket of the module open), then starts the holders:
 *  - two readers blocked in poll() on /dev/qkd, on empty streams;
 *  - a genl dump in progress: LINK_GET or STREAM_GET (four iterations each
 *    in turn, so that each meets every release order) of all
 *    LINKS objects, of which the holder has read one datagram (with a small
 *    buffer, so the rest of the dump is still to be built).
 * and tries delete_module(O_NONBLOCK): it must be refused as busy (EAGAIN,
 * or EBUSY) while any holder is there, and never taken. Then it releases
 * the holders in one of four orders (the dump read to its end and checked,
 * or its socket closed unread; a poller killed in poll(), woken by a key,
 * or woken by its stream's deletion), trying the unload after each, until
 * one succeeds once they are all gone (the netlink socket is freed after
 * an RCU grace period: a refusal right after is counted as a retry).
 * After the unload the family and /dev/qkd must be gone. The netns of the
 * child still exists, so the unload itself deletes its keys.
 *
 * Prints TAP per check and the figures: iterations, unload attempts,
 * successes, refusals while held (by errno), retries after release. The
 * kernel side (WARN, BUG, KASAN, leaks) is checked by run-vm.sh's dmesg
 * scan and, on the debug kernel, kmemleak; that the keys deleted by the
 * unload are zeroed is the canary's "unload" phase.
 */
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "nlraw.h"

#define KS 32

static struct tap tap;
static bool verbose;
static const char *ko;
static unsigned int links = 200;

static struct {
	unsigned int attempts, ok, busy_eagain, busy_ebusy, retries;
	unsigned int dumps_read, dumped_objects, polls_killed, polls_key,
		     polls_del;
} fig;

static void die(const char *what, int err)
{
	printf("Bail out! %s: %s\n", what, strerror(err));
	exit(1);
}

static void sid_of(uint8_t sid[QKD_STREAM_ID_LEN], unsigned int n)
{
	memset(sid, 0, QKD_STREAM_ID_LEN);
	sid[0] = 0x10;
	sid[1] = 0xad;
	sid[6] = 0x40;
	sid[8] = 0x80;
	sid[14] = (uint8_t)(n >> 8);
	sid[15] = (uint8_t)n;
}

/* ------------------------------------------------------------ module */

static int load(void)
{
	int fd = open(ko, O_RDONLY | O_CLOEXEC), e = 0;

	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0))
		e = -errno;
	close(fd);
	return e;
}

/* One unload attempt: 0, or the errno. */
static int unload(void)
{
	fig.attempts++;
	if (!syscall(SYS_delete_module, "qkd", O_NONBLOCK)) {
		fig.ok++;
		return 0;
	}
	return errno;
}

static bool busy(int e)
{
	if (e == EAGAIN)
		fig.busy_eagain++;
	else if (e == EBUSY)
		fig.busy_ebusy++;
	return e == EAGAIN || e == EBUSY;
}

/* ------------------------------------------------------------ genl */

static int genl(struct nlsock *s)
{
	int e = nls_open(s);

	if (!e)
		e = nls_resolve(s);
	return e;
}

static int link_stream(struct nlsock *s, unsigned int n)
{
	uint8_t ab[128], sid[QKD_STREAM_ID_LEN];
	char name[32];
	struct nlmsgb m;
	int e;

	snprintf(name, sizeof(name), "lu-%u", n);
	mb_init(&m, ab, sizeof(ab));
	mb_u32(&m, QKD_A_LINK_ID, n);
	mb_str(&m, QKD_A_LINK_NAME, name);
	mb_u8(&m, QKD_A_LINK_ROLE, QKD_LINK_ROLE_INITIATOR);
	e = nls_req(s, QKD_CMD_LINK_NEW, 0, &m, NULL, NULL, NULL);
	if (e)
		return e;
	sid_of(sid, n);
	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, sizeof(sid));
	mb_u32(&m, QKD_A_STREAM_LINK_ID, n);
	mb_u32(&m, QKD_A_STREAM_KEY_SIZE, KS);
	return nls_req(s, QKD_CMD_STREAM_NEW, 0, &m, NULL, NULL, NULL);
}

static int push(struct nlsock *s, unsigned int n, uint64_t first, uint32_t count)
{
	static uint8_t ab[64 * KS + 128];
	uint8_t sid[QKD_STREAM_ID_LEN], keys[64 * KS];
	struct nlmsgb m;
	int e;

	if (count > 64)
		count = 64;
	sid_of(sid, n);
	for (uint32_t i = 0; i < count; i++)
		key_pattern(sid, first + i, keys + i * KS, KS);
	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, sizeof(sid));
	mb_u64(&m, QKD_A_KEYS_FIRST_INDEX, first);
	mb_attr(&m, QKD_A_KEYS_DATA, keys, (size_t)count * KS);
	memset(keys, 0, sizeof(keys));
	e = nls_req(s, QKD_CMD_KEY_ADD, 0, &m, NULL, NULL, NULL);
	memset(ab, 0, m.len);
	return e;
}

static int stream_del(struct nlsock *s, unsigned int n)
{
	uint8_t ab[64], sid[QKD_STREAM_ID_LEN];
	struct nlmsgb m;

	sid_of(sid, n);
	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, sizeof(sid));
	return nls_req(s, QKD_CMD_STREAM_DEL, 0, &m, NULL, NULL, NULL);
}

/* ------------------------------------------------------------ holders */

struct holder {
	pid_t pid;
	int ctl;	/* parent's end of a socketpair to the child */
};

static void child_ready(int ctl, char c)
{
	if (write(ctl, &c, 1) != 1)
		_exit(3);
}

static char wait_ready(const struct holder *h)
{
	struct pollfd p = { .fd = h->ctl, .events = POLLIN };
	char c = 0;

	if (poll(&p, 1, 20000) != 1 || read(h->ctl, &c, 1) != 1)
		return 0;
	return c;
}

static struct holder spawn(void (*fn)(int ctl, unsigned int arg), unsigned int arg)
{
	struct holder h = { .pid = -1, .ctl = -1 };
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		die("socketpair", errno);
	h.pid = fork();
	if (h.pid < 0)
		die("fork", errno);
	if (!h.pid) {
		close(sv[0]);
		fn(sv[1], arg);
		_exit(0);
	}
	close(sv[1]);
	h.ctl = sv[0];
	return h;
}

/* 0: exited 0; else a description in @why. */
static int reap(struct holder *h, bool kill_it, char *why, size_t wl)
{
	int st = 0;

	if (h->pid <= 0)
		return 0;
	if (kill_it)
		kill(h->pid, SIGKILL);
	if (waitpid(h->pid, &st, 0) < 0)
		st = -1;
	close(h->ctl);
	h->pid = -1;
	if (kill_it && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
		return 0;
	if (WIFEXITED(st) && !WEXITSTATUS(st))
		return 0;
	snprintf(why, wl, "holder ended with status 0x%x", st);
	return -1;
}

/*
 * A reader blocked in poll() on stream @n: says 'p' just before poll(),
 * then 'i' (EPOLLIN) or 'e' (EPOLLERR) when woken, and exits.
 */
static void poller(int ctl, unsigned int n)
{
	struct qkd_poll_stream ps = { .size = sizeof(ps) };
	struct pollfd p;
	int fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		_exit(10);
	sid_of(ps.stream_id, n);
	if (ioctl(fd, QKD_IOC_SET_POLL_STREAM, &ps))
		_exit(11);
	p.fd = fd;
	p.events = POLLIN;
	child_ready(ctl, 'p');
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
	child_ready(ctl, p.revents & POLLERR ? 'e' : p.revents & POLLIN ? 'i' : '?');
	close(fd);
	_exit(0);
}

/*
 * A dump of @arg's command (LINK_GET or STREAM_GET) read one truncated
 * datagram at a time: says 'd' after the first, then waits. A byte from the
 * parent asks for the rest; the child reads the dump to NLMSG_DONE and
 * writes the number of objects it saw (4 bytes), then exits.
 */
static void dumper(int ctl, unsigned int cmd)
{
	static uint8_t buf[NLR_BUF_MAX];
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct nlsock s, r;
	uint32_t seq, objs = 0;
	bool done = false;
	size_t len;
	ssize_t n;
	char c;

	/*
	 * The dump on a socket of its own that has read nothing yet: the
	 * kernel sizes a dump's datagrams after the largest read so far (up
	 * to 32 KiB), and a fresh socket gets one page each.
	 */
	if (genl(&r) || nls_open(&s))
		_exit(20);
	s.family = r.family;
	nls_close(&r);
	seq = ++s.seq;
	len = nlr_build(buf, sizeof(buf), s.family,
			NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq, (uint8_t)cmd,
			QKD_FAMILY_VERSION, 0, NULL, 0);
	if (sendto(s.fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(21);
	/* a small buffer: the datagram is truncated, the dump goes on */
	n = recv(s.fd, buf, 256, MSG_TRUNC);
	if (n <= 0)
		_exit(22);
	{
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
			_exit(23);	/* the dump did not span datagrams */
	}
	child_ready(ctl, 'd');
	if (read(ctl, &c, 1) != 1)
		_exit(24);
	/* the rest: what the truncated first datagram held is not known */
	while (!done) {
		n = recv(s.fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(25);
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR)
				_exit(26);
			objs++;
		}
	}
	if (write(ctl, &objs, sizeof(objs)) != sizeof(objs))
		_exit(27);
	nls_close(&s);
	_exit(0);
}

/* A netns of its own with a stream of keys; waits to be killed. */
static void ns_keeper(int ctl, unsigned int n)
{
	struct nlsock s;

	if (unshare(CLONE_NEWNET))
		_exit(30);
	if (genl(&s) || link_stream(&s, n) || push(&s, n, 0, 64))
		_exit(31);
	nls_close(&s);
	child_ready(ctl, 'n');
	for (;;)
		pause();
}

/* ------------------------------------------------------------ iteration */

static unsigned int objects_per_datagram(void)
{
	/* NLMSG_GOODSIZE is below one page; a link or stream message is more
	 * than 100 bytes: a dump of @links objects spans several datagrams.
	 */
	return 4096 / 100;
}

static bool iteration(unsigned int it)
{
	struct holder pa, pb, dump, keeper;
	unsigned int order = it % 4;
	unsigned int cmd = (it / 4) % 2 ? QKD_CMD_STREAM_GET : QKD_CMD_LINK_GET;
	char why[200] = "", c;
	struct nlsock s;
	struct stat st;
	bool ok = true;
	int e, i;

	e = load();
	if (e) {
		tap_result(&tap, false, "iteration %u: load qkd.ko: %s", it, strerror(-e));
		return false;
	}
	for (i = 0; i < 100 && stat("/dev/qkd", &st); i++)
		usleep(20000);
	e = genl(&s);
	for (unsigned int n = 1; !e && n <= links; n++)
		e = link_stream(&s, n);
	/* keys in streams 3 .. 10; streams 1 and 2 stay empty for the pollers */
	for (unsigned int n = 3; !e && n <= 10 && n <= links; n++)
		e = push(&s, n, 0, 16 + n);
	if (e) {
		snprintf(why, sizeof(why), "fill the store: %s", strerror(-e));
		ok = false;
		goto out_sock;
	}
	keeper = spawn(ns_keeper, 1);
	pa = spawn(poller, 1);
	pb = spawn(poller, 2);
	dump = spawn(dumper, cmd);
	if (wait_ready(&keeper) != 'n' || wait_ready(&pa) != 'p' ||
	    wait_ready(&pb) != 'p' || wait_ready(&dump) != 'd') {
		snprintf(why, sizeof(why), "a holder did not get ready");
		ok = false;
		goto out_holders;
	}
	/* let the pollers get into poll() */
	usleep(50000);

	/* held by two files and a dump: refused, never taken */
	e = unload();
	if (!e || !busy(e)) {
		snprintf(why, sizeof(why), "unload while held: %s",
			 e ? strerror(e) : "succeeded");
		ok = false;
		goto out_holders;
	}

	switch (order) {
	case 0:	/* the dump read to its end, pollers killed in poll() */
	case 2: {
		uint32_t objs = 0;

		c = 'r';
		if (write(dump.ctl, &c, 1) != 1 ||
		    read(dump.ctl, &objs, sizeof(objs)) != sizeof(objs)) {
			snprintf(why, sizeof(why), "the dump did not end");
			ok = false;
			goto out_holders;
		}
		fig.dumps_read++;
		fig.dumped_objects += objs;
		/* the first datagram held at least one object */
		if (objs >= links || objs + objects_per_datagram() * 2 < links) {
			snprintf(why, sizeof(why),
				 "the rest of the dump had %u objects of %u", objs, links);
			ok = false;
			goto out_holders;
		}
		if (reap(&dump, false, why, sizeof(why))) {
			ok = false;
			goto out_holders;
		}
		e = unload();
		if (!e || !busy(e)) {
			snprintf(why, sizeof(why), "unload with two pollers: %s",
				 e ? strerror(e) : "succeeded");
			ok = false;
			goto out_holders;
		}
		if (order == 0) {
			reap(&pa, true, why, sizeof(why));
			reap(&pb, true, why, sizeof(why));
			fig.polls_killed += 2;
		} else {
			/* a key wakes one, its stream's deletion the other */
			e = push(&s, 1, 0, 1);
			if (!e && wait_ready(&pa) != 'i')
				e = -EPROTO;
			if (!e)
				e = stream_del(&s, 2);
			if (!e && wait_ready(&pb) != 'e')
				e = -EPROTO;
			if (e) {
				snprintf(why, sizeof(why), "wake the pollers: %s",
					 strerror(-e));
				ok = false;
				goto out_holders;
			}
			fig.polls_key++;
			fig.polls_del++;
			if (reap(&pa, false, why, sizeof(why)) ||
			    reap(&pb, false, why, sizeof(why))) {
				ok = false;
				goto out_holders;
			}
		}
		break;
	}
	default: /* pollers killed first, then the dump's socket closed unread */
		reap(&pa, true, why, sizeof(why));
		fig.polls_killed++;
		e = unload();
		if (!e || !busy(e)) {
			snprintf(why, sizeof(why), "unload with a poller and a dump: %s",
				 e ? strerror(e) : "succeeded");
			ok = false;
			goto out_holders;
		}
		reap(&pb, true, why, sizeof(why));
		fig.polls_killed++;
		e = unload();
		if (!e || !busy(e)) {
			snprintf(why, sizeof(why), "unload with a dump in progress: %s",
				 e ? strerror(e) : "succeeded");
			ok = false;
			goto out_holders;
		}
		reap(&dump, true, why, sizeof(why));
		break;
	}

	/* nothing of the module is held but the store (and the child's netns) */
	nls_close(&s);
	s.fd = -1;
	for (i = 0; i < 200; i++) {
		e = unload();
		if (!e || !busy(e))
			break;
		/* counted as a refusal above; it is a retry after release */
		if (e == EAGAIN)
			fig.busy_eagain--;
		else
			fig.busy_ebusy--;
		fig.retries++;
		usleep(10000);
	}
	if (e) {
		snprintf(why, sizeof(why), "unload after every holder left: %s", strerror(e));
		ok = false;
		goto out_holders;
	}
	if (!stat("/dev/qkd", &st)) {
		snprintf(why, sizeof(why), "/dev/qkd still there after the unload");
		ok = false;
	}
	if (!genl(&s)) {
		snprintf(why, sizeof(why), "genl family qkd still there after the unload");
		ok = false;
	}

out_holders:
	reap(&dump, true, why, sizeof(why));
	reap(&pa, true, why, sizeof(why));
	reap(&pb, true, why, sizeof(why));
	reap(&keeper, true, why, sizeof(why));
out_sock:
	if (s.fd >= 0)
		nls_close(&s);
	if (!ok) {
		/* leave no module behind for the next iteration's load */
		for (i = 0; i < 200 && unload() && errno != ENOENT; i++)
			usleep(10000);
	}
	if (verbose || !ok)
		tap_result(&tap, ok, "iteration %u (%s, %s dump)%s%s", it,
			   order == 0 ? "dump read, pollers killed" :
			   order == 2 ? "dump read, pollers woken" :
			   "pollers killed, dump closed unread",
			   cmd == QKD_CMD_LINK_GET ? "LINK_GET" : "STREAM_GET",
			   why[0] ? ": " : "", why);
	return ok;
}

int main(int argc, char **argv)
{
	unsigned int iters = 20, passed = 0;
	uint64_t t0;
	int c;

	while ((c = getopt(argc, argv, "k:n:l:v")) != -1) {
		switch (c) {
		case 'k':
			ko = optarg;
			break;
		case 'n':
			iters = (unsigned int)atoi(optarg);
			break;
		case 'l':
			links = (unsigned int)atoi(optarg);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			fprintf(stderr, "usage: loadunload -k QKD_KO [-n ITERATIONS] [-l LINKS] [-v]\n");
			return 2;
		}
	}
	if (!ko || !iters || links < 64 || links > 256) {
		fprintf(stderr, "usage: loadunload -k QKD_KO [-n ITERATIONS] [-l LINKS (64..256)] [-v]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	printf("TAP version 13\n");
	if (geteuid()) {
		tap_result(&tap, true, "load/unload # SKIP needs root");
		tap_end(&tap);
		return 0;
	}
	if (!access("/sys/module/qkd", F_OK)) {
		tap_result(&tap, false, "the module is loaded already: unload it first");
		tap_end(&tap);
		return 1;
	}
	t0 = nlr_now_ns();
	for (unsigned int it = 0; it < iters; it++)
		passed += iteration(it);
	printf("# %u iterations in %.1f s: %u unload attempts, %u succeeded, %u refused while held (EAGAIN %u, EBUSY %u), %u retries after release, %u other errors\n",
	       iters, (double)(nlr_now_ns() - t0) / 1e9, fig.attempts, fig.ok,
	       fig.busy_eagain + fig.busy_ebusy, fig.busy_eagain, fig.busy_ebusy,
	       fig.retries, fig.attempts - fig.ok - fig.busy_eagain - fig.busy_ebusy - fig.retries);
	printf("# holders: %u dumps read to the end after a refused unload (%u objects after the first datagram), %u pollers killed in poll(), %u woken by a key, %u by their stream's deletion\n",
	       fig.dumps_read, fig.dumped_objects, fig.polls_killed, fig.polls_key,
	       fig.polls_del);
	tap_result(&tap, passed == iters && fig.ok == iters,
		   "%u/%u load/unload iterations with keys, pollers and a dump in progress: every unload refused while held, done once released",
		   passed, iters);
	tap_end(&tap);
	return tap.fail ? 1 : 0;
}
