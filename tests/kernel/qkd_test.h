/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the kselftest-harness tests of qkd.ko (tests/kernel/).
 *
 * Header-only on purpose: every test_*.c is one translation unit linked by
 * the Makefile rule for kernel tests. Netlink goes through libnl-genl for
 * building messages and resolving the family; replies are read from the
 * socket directly so that every NLMSG_ERROR (errno and extended-ACK TLVs)
 * and every reply attribute can be checked exactly. Nothing here uses
 * libqkd: the tests check the kernel ABI, not the library.
 */
#ifndef QKD_TEST_H
#define QKD_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <netlink/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/socket.h>
#include <netlink/genl/genl.h>
#include <netlink/genl/ctrl.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/qkd.h>
#include <linux/qkd_dev.h>
#include <qkd/ids.h>

#include "kselftest_harness.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define QKD_DEV_PATH		"/dev/qkd"
#define QKD_NOBODY		65534
/* Documented defaults (module parameters), abi.md. */
#define QKD_DEF_STREAM_MAX_KEYS	4096

/*
 * Every test's timeout (the harness's 30 s default, or TEST_F_TIMEOUT's)
 * times $QKD_TEST_TIMEOUT_SCALE, when set. guest-kernel-tests.sh sets it on
 * the debug kernel, where KASAN, lockdep and kmemleak under emulation make
 * everything several times slower: with another job on the host's two
 * cores, xfrm tests that take seconds on Debian's kernels passed 30 s there.
 */
static inline void qkd_scale_test_timeouts(void)
{
	const char *env = getenv("QKD_TEST_TIMEOUT_SCALE");
	struct __fixture_metadata *f;
	struct __test_metadata *t;
	char *end;
	long scale;

	if (!env || !*env)
		return;
	errno = 0;
	scale = strtol(env, &end, 10);
	if (errno || *end || scale < 1 || scale > 100) {
		fprintf(stderr,
			"# QKD_TEST_TIMEOUT_SCALE=%s: not a factor from 1 to 100, ignored\n",
			env);
		return;
	}
	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout *= scale;
}

/* TEST_HARNESS_MAIN, with the timeouts scaled first. */
#define QKD_TEST_MAIN \
	int main(int argc, char **argv) \
	{ \
		qkd_scale_test_timeouts(); \
		return test_harness_run(argc, argv); \
	}

/*
 * The first ESP SA of a boot loads xfrm_user, esp4/esp6 and the AEAD
 * templates (seqiv, gcm, ctr, ghash, chacha20poly1305, ...) through
 * modprobe, and the crypto manager self-tests every new instance. Under
 * emulation that took longer than the harness's 30 s of whichever test made
 * the first SA (VM runs of session 10 on 6.1 and 6.12:
 * xfrm.new_initiator_spis_and_keys "terminated by timeout" while
 * "Initializing XFRM netlink socket" came 7 s and the AEAD's instance 32 s
 * after the binary started). So it is done once, before any test's clock
 * runs: an SA of each AEAD the tests use (ipsec.md: AES-GCM,
 * ChaCha20-Poly1305), added with ip(8) in a network namespace of its own
 * and gone with it. Best effort: what fails here fails in the tests too,
 * where it is reported.
 */
static inline void qkd_warm_up_xfrm(void)
{
	static const char *const aeads[] = {
		"'rfc4106(gcm(aes))' 0x000102030405060708090a0b0c0d0e0f1011121314151617"
		"18191a1b1c1d1e1f20212223 128",
		"'rfc7539esp(chacha20,poly1305)' 0x000102030405060708090a0b0c0d0e0f"
		"101112131415161718191a1b1c1d1e1f20212223 128",
	};
	struct timespec t0, t1;
	char cmd[512];
	unsigned int i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (system("modprobe -q -a esp4 esp6 xfrm_user 2>/dev/null")) {
		/* not fatal: the kernel may have them built in */
	}
	for (i = 0; i < sizeof(aeads) / sizeof(aeads[0]); i++) {
		snprintf(cmd, sizeof(cmd),
			 "unshare -n ip xfrm state add src 192.0.2.1 dst 192.0.2.2 "
			 "proto esp spi 0x%x mode transport aead %s >/dev/null 2>&1",
			 0x100 + i, aeads[i]);
		if (system(cmd))
			fprintf(stderr, "# xfrm warm-up: %s failed\n", cmd);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "# xfrm warm-up: %ld ms\n",
		(long)((t1.tv_sec - t0.tv_sec) * 1000 +
		       (t1.tv_nsec - t0.tv_nsec) / 1000000));
}

/* QKD_TEST_MAIN for the binaries that make ESP SAs: warmed up first. */
#define QKD_TEST_MAIN_XFRM \
	int main(int argc, char **argv) \
	{ \
		qkd_scale_test_timeouts(); \
		if (argc < 2 || (strcmp(argv[1], "-l") && strcmp(argv[1], "-h"))) \
			qkd_warm_up_xfrm(); \
		return test_harness_run(argc, argv); \
	}

/* Exit code of a harness test child that means SKIP (kselftest_harness.h). */
#define QKD_HARNESS_SKIP	255

/*
 * SKIP from a FIXTURE_SETUP. The current harness (it has
 * FIXTURE_TEARDOWN_PARENT) ends the test after a SKIP in the setup; an older
 * one runs the test body anyway, so there end the test child here with the
 * exit code that harness reads as SKIP.
 */
#ifdef FIXTURE_TEARDOWN_PARENT
#define QKD_SKIP_SETUP(fmt, ...) SKIP(return, fmt, ##__VA_ARGS__)
#else
#define QKD_SKIP_SETUP(fmt, ...) \
	SKIP({ fflush(NULL); _exit(QKD_HARNESS_SKIP); }, fmt, ##__VA_ARGS__)
#endif

/*
 * Start of every FIXTURE_TEARDOWN: after a failed ASSERT the harness leaves
 * _metadata->trigger set, which would run the TH_LOG of every later passing
 * EXPECT in the teardown.
 */
#define QKD_TEARDOWN_BEGIN() do { _metadata->trigger = 0; } while (0)

/*
 * Context printed by the ASSERT_NL_* macros when they fail (e.g. the loop
 * variable of a table-driven check); set with QKD_CTX(), cleared with
 * QKD_CTX_CLEAR().
 */
static char qkd_ctx[160] __attribute__((unused));
#define QKD_CTX(fmt, ...) snprintf(qkd_ctx, sizeof(qkd_ctx), fmt, ##__VA_ARGS__)
#define QKD_CTX_CLEAR() (qkd_ctx[0] = 0)

/*
 * errno of an integer outside the range its attribute allows (role 3, state
 * 0, link id 0, key size 513, max-keys 0, low-water above 2^20, first index
 * above 2^56-1), and of a binary attribute of a wrong length (a 15-byte
 * stream ID, KEY_DATA above 32 KiB). Documentation/abi.md: both fail with
 * ERANGE (the kernel's netlink policy checks); an integer of the wrong size
 * (a u32 given as u8) and missing or foreign attributes fail with EINVAL.
 */
#define QKD_ERRNO_RANGE	ERANGE
#define QKD_ERRNO_LENGTH ERANGE

/* ------------------------------------------------------------------------
 * Small utilities
 * ------------------------------------------------------------------------
 */

static inline uint64_t qkd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void qkd_msleep(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* A deterministic, never all-zero stream ID (UUID-shaped: variant byte 8). */
static inline void qkd_sid(uint8_t sid[QKD_STREAM_ID_LEN], uint32_t n)
{
	int i;

	for (i = 0; i < QKD_STREAM_ID_LEN; i++)
		sid[i] = (uint8_t)(0x11 * (i + 1) ^ (n >> (8 * (i % 4))));
	sid[0] = 'q';
	sid[1] = 'k';
	sid[2] = 'd';
	sid[3] = (uint8_t)n;
	sid[4] = (uint8_t)(n >> 8);
	sid[6] = 0x40 | (sid[6] & 0x0f);	/* UUID version 4 */
	sid[8] = 0x80 | (sid[8] & 0x3f);	/* RFC 4122 variant */
}

static inline uint64_t qkd_mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* Key bytes of (seed, index): lets a reader check what it got. */
static inline void qkd_pattern(uint8_t *buf, size_t key_size, uint64_t index,
			       uint32_t seed)
{
	uint64_t s = qkd_mix64(((uint64_t)seed << 56) ^ index);
	size_t i;

	for (i = 0; i < key_size; i++) {
		if (i % 8 == 0)
			s = qkd_mix64(s + i);
		buf[i] = (uint8_t)(s >> (8 * (i % 8)));
	}
}

static inline bool qkd_pattern_ok(const uint8_t *buf, size_t key_size,
				  uint64_t index, uint32_t seed)
{
	uint8_t want[QKD_KEY_SIZE_MAX];

	qkd_pattern(want, key_size, index, seed);
	return memcmp(buf, want, key_size) == 0;
}

/* Enter a fresh network namespace, unless QKD_TEST_SAME_NETNS is set. */
static inline int qkd_enter_test_netns(void)
{
	if (getenv("QKD_TEST_SAME_NETNS"))
		return 0;
	if (unshare(CLONE_NEWNET))
		return -errno;
	return 0;
}

static inline int qkd_new_netns(void)
{
	return unshare(CLONE_NEWNET) ? -errno : 0;
}

/* Wait for a child; 0 if it exited 0, else its code (or 128 + signal). */
static inline int qkd_wait(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 255;
}

/*
 * The output of `ip xfrm @what` (state, policy) in this thread's netns into
 * @buf, NUL-terminated; its length, or -1 if ip failed or @buf was too
 * small. ip is run directly, not through popen()'s shell: under emulation
 * each exec costs tens of milliseconds, and the XFRM tests read the SAD
 * and SPD a hundred times a run.
 */
static inline ssize_t qkd_ip_xfrm_read(const char *what, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd[2], rc;
	pid_t pid;

	if (size < 2 || pipe2(fd, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (dup2(fd[1], STDOUT_FILENO) < 0 || null < 0 ||
		    dup2(null, STDERR_FILENO) < 0)
			_exit(126);
		execlp("ip", "ip", "xfrm", what, (char *)NULL);
		_exit(127);
	}
	close(fd[1]);
	while ((n = read(fd[0], buf + len, size - 1 - len)) > 0 || (n < 0 && errno == EINTR))
		if (n > 0)
			len += (size_t)n;
	/* Drain what did not fit, so that ip is not blocked writing. */
	if (len == size - 1) {
		char sink[512];

		while (read(fd[0], sink, sizeof(sink)) > 0)
			len = size;
	}
	close(fd[0]);
	rc = qkd_wait(pid);
	buf[len < size ? len : size - 1] = '\0';
	return rc || len >= size - 1 ? -1 : (ssize_t)len;
}

/* Lines of @text containing @what. */
static inline int qkd_count_lines(const char *text, const char *what)
{
	size_t wl = strlen(what);
	const char *end;
	int n = 0;

	while (*text) {
		end = strchrnul(text, '\n');
		n += !!memmem(text, (size_t)(end - text), what, wl);
		text = *end ? end + 1 : end;
	}
	return n;
}

/*
 * Checks inside forked children and threads, where the harness's ASSERT
 * (a longjmp into the test wrapper) must not be used. A failing check prints
 * why and makes the function return 1.
 */
#define CHILD_CHECK(cond, fmt, ...) do { \
	if (!(cond)) { \
		fprintf(stderr, "# %s:%d: child check failed: %s: " fmt "\n", \
			__FILE__, __LINE__, #cond, ##__VA_ARGS__); \
		return 1; \
	} \
} while (0)

/* Drop to uid/gid nobody with no supplementary groups: no capabilities. */
static inline int qkd_become_nobody(void)
{
	if (setgroups(0, NULL))
		return -errno;
	if (setresgid(QKD_NOBODY, QKD_NOBODY, QKD_NOBODY))
		return -errno;
	if (setresuid(QKD_NOBODY, QKD_NOBODY, QKD_NOBODY))
		return -errno;
	return 0;
}

/* ------------------------------------------------------------------------
 * Kernel log: no WARNING/BUG/... while a test runs
 * ------------------------------------------------------------------------
 */

static inline int qkd_kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/* Count (and print) new kernel log records that look like a kernel problem. */
static inline int qkd_kmsg_bad(int fd)
{
	static const char *const bad[] = {
		"WARNING:", "BUG:", "BUG ", "Oops", "general protection",
		"UBSAN", "KASAN", "refcount_t", "list_del corruption",
		"list_add corruption", "kmemleak", "possible circular locking",
		"possible recursive locking", "suspicious RCU usage",
		"INFO: task", "stack-protector", "Call Trace",
		"scheduling while atomic", "sleeping function called",
	};
	char rec[8192];
	int n = 0;
	size_t i;

	if (fd < 0)
		return 0;
	for (;;) {
		ssize_t len = read(fd, rec, sizeof(rec) - 1);

		if (len < 0) {
			if (errno == EPIPE)	/* overwritten records: go on */
				continue;
			break;
		}
		rec[len] = 0;
		for (i = 0; i < ARRAY_SIZE(bad); i++) {
			if (strstr(rec, bad[i])) {
				fprintf(stderr, "# kernel log: %s", rec);
				n++;
				break;
			}
		}
	}
	return n;
}

/* ------------------------------------------------------------------------
 * Generic netlink
 * ------------------------------------------------------------------------
 */

#define QKD_RAW_MAX	96

/*
 * Slots of a struct qkd_obj: a message's top-level attributes at their
 * type (of the command's attribute set, ABI 2: each object has its own),
 * then the attributes of its nests, flattened: the counters (stats), an
 * SA's out, in and rekey-event SA (sa-gen) and its policy selector.
 */
#define QKD_T_TOP_MAX		QKD_A_SA_MAX
#define QKD_T_STATS_BASE	(QKD_T_TOP_MAX + 1)
#define QKD_T_OUT_BASE		(QKD_T_STATS_BASE + QKD_A_STATS_MAX + 1)
#define QKD_T_IN_BASE		(QKD_T_OUT_BASE + QKD_A_SA_GEN_MAX + 1)
#define QKD_T_GEN_BASE		(QKD_T_IN_BASE + QKD_A_SA_GEN_MAX + 1)
#define QKD_T_POL_BASE		(QKD_T_GEN_BASE + QKD_A_SA_GEN_MAX + 1)
#define QKD_T_MAX		(QKD_T_POL_BASE + QKD_A_SA_POLICY_MAX)
#define QKD_T_STATS(x)		(QKD_T_STATS_BASE + QKD_A_STATS_##x)
#define QKD_T_OUT(x)		(QKD_T_OUT_BASE + QKD_A_SA_GEN_##x)
#define QKD_T_IN(x)		(QKD_T_IN_BASE + QKD_A_SA_GEN_##x)
#define QKD_T_GEN(x)		(QKD_T_GEN_BASE + QKD_A_SA_GEN_##x)
#define QKD_T_POL(x)		(QKD_T_POL_BASE + QKD_A_SA_POLICY_##x)

/* The attribute set of @cmd's messages (ABI 2: one per object). */
enum { QKD_SET_NONE, QKD_SET_LINK, QKD_SET_STREAM, QKD_SET_KEYS,
       QKD_SET_STATUS, QKD_SET_SA };

static inline int qkd_cmd_set(int cmd)
{
	switch (cmd) {
	case QKD_CMD_LINK_NEW: case QKD_CMD_LINK_DEL: case QKD_CMD_LINK_GET:
	case QKD_CMD_LINK_SET: case QKD_CMD_LINK_STATE_NTF:
	case QKD_CMD_LINK_DEL_NTF:
		return QKD_SET_LINK;
	case QKD_CMD_STREAM_NEW: case QKD_CMD_STREAM_DEL: case QKD_CMD_STREAM_GET:
	case QKD_CMD_STREAM_SET: case QKD_CMD_STREAM_LOW_NTF:
	case QKD_CMD_STREAM_EMPTY_NTF: case QKD_CMD_STREAM_DEL_NTF:
		return QKD_SET_STREAM;
	case QKD_CMD_KEY_ADD: case QKD_CMD_KEY_FLUSH: case QKD_CMD_KEYS_ADDED_NTF:
		return QKD_SET_KEYS;
	case QKD_CMD_STATUS_GET:
		return QKD_SET_STATUS;
	case QKD_CMD_SA_NEW: case QKD_CMD_SA_DEL: case QKD_CMD_SA_GET:
	case QKD_CMD_SA_REKEY_NTF: case QKD_CMD_SA_STATE_NTF: case QKD_CMD_SA_REKEY:
		return QKD_SET_SA;
	}
	return QKD_SET_NONE;
}

/* The maximum attribute of @cmd's set, 0 if none. */
static inline int qkd_cmd_maxattr(int cmd)
{
	static const int max[] = {
		[QKD_SET_LINK] = QKD_A_LINK_MAX, [QKD_SET_STREAM] = QKD_A_STREAM_MAX,
		[QKD_SET_KEYS] = QKD_A_KEYS_MAX, [QKD_SET_STATUS] = QKD_A_STATUS_MAX,
		[QKD_SET_SA] = QKD_A_SA_MAX,
	};

	return max[qkd_cmd_set(cmd)];
}

/* Where the children of nest @type of a @cmd message go; -1: not a nest. */
static inline int qkd_nest_base(int cmd, int type, int *max)
{
	int set = qkd_cmd_set(cmd);

	*max = QKD_A_STATS_MAX;
	if ((set == QKD_SET_LINK && type == QKD_A_LINK_STATS) ||
	    (set == QKD_SET_STREAM && type == QKD_A_STREAM_STATS) ||
	    (set == QKD_SET_STATUS && type == QKD_A_STATUS_STATS))
		return QKD_T_STATS_BASE;
	if (set != QKD_SET_SA)
		return -1;
	*max = QKD_A_SA_GEN_MAX;
	if (type == QKD_A_SA_OUT)
		return QKD_T_OUT_BASE;
	if (type == QKD_A_SA_IN)
		return QKD_T_IN_BASE;
	if (type == QKD_A_SA_GEN)
		return QKD_T_GEN_BASE;
	*max = QKD_A_SA_POLICY_MAX;
	if (type == QKD_A_SA_POLICY)
		return QKD_T_POL_BASE;
	return -1;
}

/* One genl message of the qkd family (a reply or an event), flattened. */
struct qkd_obj {
	int cmd;
	unsigned int unknown;		/* attributes beyond the set's maximum */
	unsigned int dups;		/* attributes seen twice */
	bool has[QKD_T_MAX + 1];
	uint32_t len[QKD_T_MAX + 1];
	uint8_t raw[QKD_T_MAX + 1][QKD_RAW_MAX];
};

struct qkd_objs {
	int n, cap;
	struct qkd_obj *v;
};

struct qkd_nl {
	struct nl_sock *sk;
	int fd;
	int family;
	int grp;			/* "events" group id, or < 0 */
	/* Last request's replies (or the events read by qkd_ev_read()). */
	struct qkd_objs r;
	/* Extended ACK of the last request. */
	char ext_msg[256];
	bool ext_has_msg, ext_has_offs, ext_has_miss;
	uint32_t ext_offs, ext_miss_type;
	/* Replies or events that carried QKD_A_KEYS_DATA, over the socket's life. */
	unsigned int key_data_seen;
	unsigned int unknown_seen;
};

static inline uint64_t qkd_obj_u(const struct qkd_obj *o, int type)
{
	const uint8_t *p = o->raw[type];

	if (!o->has[type])
		return ~0ULL;
	switch (o->len[type]) {
	case 1:
		return p[0];
	case 2:
		return *(const uint16_t *)p;
	case 4:
		return *(const uint32_t *)p;
	case 8: {
		uint64_t v;

		memcpy(&v, p, 8);
		return v;
	}
	}
	return ~0ULL - 1;
}

static inline const char *qkd_obj_str(const struct qkd_obj *o, int type)
{
	if (!o->has[type])
		return "(absent)";
	return (const char *)o->raw[type];
}

static inline bool qkd_obj_sid_is(const struct qkd_obj *o,
				  const uint8_t sid[QKD_STREAM_ID_LEN])
{
	return o->has[QKD_A_STREAM_ID] &&
	       o->len[QKD_A_STREAM_ID] == QKD_STREAM_ID_LEN &&
	       !memcmp(o->raw[QKD_A_STREAM_ID], sid, QKD_STREAM_ID_LEN);
}

static inline void qkd_objs_reset(struct qkd_objs *r)
{
	r->n = 0;
}

static inline void qkd_objs_free(struct qkd_objs *r)
{
	free(r->v);
	memset(r, 0, sizeof(*r));
}

static inline struct qkd_obj *qkd_objs_add(struct qkd_objs *r)
{
	if (r->n == r->cap) {
		int cap = r->cap ? r->cap * 2 : 16;
		struct qkd_obj *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			abort();
		r->v = v;
		r->cap = cap;
	}
	memset(&r->v[r->n], 0, sizeof(r->v[0]));
	return &r->v[r->n++];
}

/* Attributes at @a (@len bytes) into @o's slots @base + type (1..@max). */
static inline void qkd_parse_attrs(struct qkd_obj *o, const struct nlattr *a,
				   int len, int base, int max, int cmd, bool top)
{
	while (len >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) &&
	       a->nla_len <= len) {
		int type = a->nla_type & NLA_TYPE_MASK;
		int plen = a->nla_len - NLA_HDRLEN;
		int nbase, nmax;

		if (type > max || type == 0) {
			o->unknown++;
		} else {
			if (o->has[base + type])
				o->dups++;
			o->has[base + type] = true;
			o->len[base + type] = plen;
			memcpy(o->raw[base + type], (const char *)a + NLA_HDRLEN,
			       plen < QKD_RAW_MAX - 1 ? plen : QKD_RAW_MAX - 1);
			nbase = top ? qkd_nest_base(cmd, type, &nmax) : -1;
			if (nbase >= 0)
				qkd_parse_attrs(o, (const void *)((const char *)a + NLA_HDRLEN),
						plen, nbase, nmax, cmd, false);
		}
		len -= NLA_ALIGN(a->nla_len);
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
}

static inline void qkd_parse_genl(struct qkd_nl *nl, const struct nlmsghdr *h,
				  struct qkd_objs *r)
{
	const struct genlmsghdr *g = NLMSG_DATA(h);
	int len = (int)h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	const struct nlattr *a = (const void *)((const char *)g + GENL_HDRLEN);
	struct qkd_obj *o = qkd_objs_add(r);
	int maxattr = qkd_cmd_maxattr(g->cmd);

	o->cmd = g->cmd;
	qkd_parse_attrs(o, a, len, 0, maxattr, g->cmd, true);
	if (qkd_cmd_set(g->cmd) == QKD_SET_KEYS && o->has[QKD_A_KEYS_DATA])
		nl->key_data_seen++;
	if (o->unknown)
		nl->unknown_seen++;
}

static inline void qkd_parse_ext_ack(struct qkd_nl *nl,
				     const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	size_t off = sizeof(*e);
	const struct nlattr *a;
	int len;

	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
	len = (int)h->nlmsg_len - NLMSG_HDRLEN - (int)off;
	a = (const void *)((const char *)e + off);
	while (len >= (int)sizeof(*a) && a->nla_len >= sizeof(*a) &&
	       a->nla_len <= len) {
		const char *p = (const char *)a + NLA_HDRLEN;
		int plen = a->nla_len - NLA_HDRLEN;

		switch (a->nla_type & NLA_TYPE_MASK) {
		case NLMSGERR_ATTR_MSG:
			snprintf(nl->ext_msg, sizeof(nl->ext_msg), "%.*s",
				 plen, p);
			nl->ext_has_msg = nl->ext_msg[0] != 0;
			break;
		case NLMSGERR_ATTR_OFFS:
			if (plen >= 4) {
				nl->ext_has_offs = true;
				memcpy(&nl->ext_offs, p, 4);
			}
			break;
		case NLMSGERR_ATTR_MISS_TYPE:
			if (plen >= 4) {
				nl->ext_has_miss = true;
				memcpy(&nl->ext_miss_type, p, 4);
			}
			break;
		}
		len -= NLA_ALIGN(a->nla_len);
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
}

static inline void qkd_nl_close(struct qkd_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);
	qkd_objs_free(&nl->r);
	nl->sk = NULL;
	nl->fd = -1;
}

/*
 * Open a genl socket and resolve the family and its events group.
 * Returns 0, -ENOENT if the family is not registered (module not loaded),
 * or another -errno.
 */
static inline int qkd_nl_open(struct qkd_nl *nl)
{
	struct timeval tv = { .tv_sec = 20 };
	int one = 1;

	memset(nl, 0, sizeof(*nl));
	nl->fd = -1;
	nl->grp = -1;
	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return -ENOMEM;
	if (genl_connect(nl->sk)) {
		qkd_nl_close(nl);
		return -EIO;
	}
	nl->fd = nl_socket_get_fd(nl->sk);
	nl->family = genl_ctrl_resolve(nl->sk, QKD_FAMILY_NAME);
	if (nl->family < 0) {
		qkd_nl_close(nl);
		return -ENOENT;
	}
	nl->grp = genl_ctrl_resolve_grp(nl->sk, QKD_FAMILY_NAME,
					QKD_MCGRP_EVENTS);
	setsockopt(nl->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	setsockopt(nl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return 0;
}

/* Join the events group: 0 or -errno (EPERM without CAP_NET_ADMIN). */
static inline int qkd_nl_join_events(struct qkd_nl *nl)
{
	int grp = nl->grp;

	if (grp < 0)
		return -ENOENT;
	if (setsockopt(nl->fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp,
		       sizeof(grp)))
		return -errno;
	return 0;
}

/* A request of @cmd; @flags e.g. NLM_F_DUMP. Add attributes with nla_put*. */
static inline struct nl_msg *qkd_msg(struct qkd_nl *nl, int cmd, int flags)
{
	struct nl_msg *m = nlmsg_alloc_size(QKD_KEY_BATCH_MAX_BYTES + 4096);

	if (!m)
		abort();
	if (!genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, flags,
			 cmd, QKD_FAMILY_VERSION))
		abort();
	return m;
}

#define QKD_RXBUF (1 << 18)

/*
 * Send @m (freed) and read every answer up to its ACK / DONE. Replies of the
 * family go to nl->r; the return is the request's errno (0 or -errno), and
 * nl->ext_* hold the extended ACK.
 */
/*
 * An SA_NEW's policy nest (QKD_A_SA_POLICY), the last attributes of the
 * requests that have one: opened here, closed by the qkd_req() that sends
 * @m, and by no other: ASSERT_NL_INVALID() sends its snapshot's requests
 * between building @m and sending it, and closing the nest there wrote the
 * distance between two buffers into @m's nest length (the "bytes leftover
 * after parsing attributes" of session 10's policy_rejections_change_nothing).
 */
static struct nl_msg *qkd_open_nest_msg;
static struct nlattr *qkd_open_nest;

static inline void qkd_policy_begin(struct nl_msg *m)
{
	qkd_open_nest_msg = m;
	qkd_open_nest = nla_nest_start(m, QKD_A_SA_POLICY);
}

static inline int qkd_req(struct qkd_nl *nl, struct nl_msg *m)
{
	static char *buf;
	uint32_t seq;
	int ret;

	/* libnl's nla_nest_end() would drop an empty nest: keep it (abi.md) */
	if (qkd_open_nest && qkd_open_nest_msg == m) {
		if ((char *)nlmsg_tail(nlmsg_hdr(m)) != (char *)nla_data(qkd_open_nest))
			nla_nest_end(m, qkd_open_nest);
		qkd_open_nest = NULL;
		qkd_open_nest_msg = NULL;
	}

	if (!buf) {
		buf = malloc(QKD_RXBUF);
		if (!buf)
			abort();
	}
	qkd_objs_reset(&nl->r);
	nl->ext_msg[0] = 0;
	nl->ext_has_msg = nl->ext_has_offs = nl->ext_has_miss = false;

	ret = nl_send_auto(nl->sk, m);
	seq = nlmsg_hdr(m)->nlmsg_seq;
	nlmsg_free(m);
	if (ret < 0)
		return -EIO;

	for (;;) {
		ssize_t n = recv(nl->fd, buf, QKD_RXBUF, 0);
		struct nlmsghdr *h;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		for (h = (void *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;	/* a stale answer */
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				qkd_parse_ext_ack(nl, h);
				return e->error;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				int err = 0;

				if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(int))
					memcpy(&err, NLMSG_DATA(h), sizeof(int));
				if (err)
					qkd_parse_ext_ack(nl, h);
				return err;
			}
			if (h->nlmsg_type == nl->family)
				qkd_parse_genl(nl, h, &nl->r);
		}
	}
}

/*
 * A dump of @cmd (no attributes) read part by part on a socket of its own,
 * 4 KiB at a time: the kernel fills no part beyond that (its minimum is
 * NLMSG_GOODSIZE), so a dump of a few dozen objects comes in several parts
 * and resumes between them. @change, if given, runs once with @ctx after
 * the first part. The objects of every part go to @out (reset first);
 * *@intr says whether any message carried NLM_F_DUMP_INTR. Returns the
 * number of parts (the NLMSG_DONE's included), or -errno.
 */
static inline int qkd_dump_by_parts(struct qkd_nl *nl, int cmd,
				    struct qkd_objs *out, bool *intr,
				    void (*change)(struct qkd_nl *nl, void *ctx),
				    void *ctx)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct {
		struct nlmsghdr h;
		struct genlmsghdr g;
	} req = {
		.h = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = (uint16_t)nl->family,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
			.nlmsg_seq = 4243,
		},
		.g = { .cmd = (uint8_t)cmd, .version = QKD_FAMILY_VERSION },
	};
	struct timeval tv = { .tv_sec = 20 };
	static char buf[4096];
	int fd, parts = 0, err = 0;
	bool done = false;

	*intr = false;
	qkd_objs_reset(out);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) != sizeof(req)) {
		close(fd);
		return -EIO;
	}
	while (!done && !err) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recvmsg(fd, &mh, 0);
		struct nlmsghdr *h;

		if (n <= 0 || (mh.msg_flags & MSG_TRUNC)) {
			fprintf(stderr, "# dump part %d: recv %zd (%s), flags %#x\n",
				parts + 1, n, strerror(errno), mh.msg_flags);
			err = -EIO;
			break;
		}
		parts++;
		for (h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_flags & NLM_F_DUMP_INTR)
				*intr = true;
			if (h->nlmsg_type == NLMSG_DONE) {
				done = true;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);

				err = e->error ? e->error : -EPROTO;
				break;
			}
			if (h->nlmsg_type != nl->family) {
				err = -EPROTO;
				break;
			}
			qkd_parse_genl(nl, h, out);
		}
		if (change && parts == 1 && !err) {
			if (done)
				fprintf(stderr, "# the whole dump fit in one part: nothing resumed\n");
			change(nl, ctx);
			change = NULL;
		}
	}
	close(fd);
	return err ? err : parts;
}

/* Read events for up to @timeout_ms (then 50 ms after each) into nl->r. */
static inline int qkd_ev_read(struct qkd_nl *nl, int timeout_ms)
{
	static char *buf;
	struct pollfd p = { .fd = nl->fd, .events = POLLIN };

	if (!buf) {
		buf = malloc(QKD_RXBUF);
		if (!buf)
			abort();
	}
	qkd_objs_reset(&nl->r);
	for (;;) {
		struct nlmsghdr *h;
		ssize_t n;

		if (poll(&p, 1, timeout_ms) <= 0)
			break;
		n = recv(nl->fd, buf, QKD_RXBUF, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		for (h = (void *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == nl->family)
				qkd_parse_genl(nl, h, &nl->r);
		timeout_ms = 50;
	}
	return nl->r.n;
}

/* The @nth (0-based) object of command @cmd in nl->r, or NULL. */
static inline struct qkd_obj *qkd_find(struct qkd_nl *nl, int cmd, int nth)
{
	int i;

	for (i = 0; i < nl->r.n; i++)
		if (nl->r.v[i].cmd == cmd && nth-- == 0)
			return &nl->r.v[i];
	return NULL;
}

static inline int qkd_count(struct qkd_nl *nl, int cmd)
{
	int i, n = 0;

	for (i = 0; i < nl->r.n; i++)
		n += nl->r.v[i].cmd == cmd;
	return n;
}

/* Copy the first reply of the last request to @out (if any). */
static inline void qkd_first(struct qkd_nl *nl, struct qkd_obj *out)
{
	if (!out)
		return;
	if (nl->r.n)
		*out = nl->r.v[0];
	else
		memset(out, 0, sizeof(*out));
}

/* --- Commands with valid arguments. 0 or -errno; replies in nl->r. ------- */

#define QKD_OMIT (-1LL)

static inline int qkd_link_new(struct qkd_nl *nl, uint32_t id,
			       const char *name, int role, const char *peer)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_LINK_NEW, 0);

	if (id)
		nla_put_u32(m, QKD_A_LINK_ID, id);
	if (name)
		nla_put_string(m, QKD_A_LINK_NAME, name);
	if (role)
		nla_put_u8(m, QKD_A_LINK_ROLE, (uint8_t)role);
	if (peer)
		nla_put_string(m, QKD_A_LINK_PEER, peer);
	return qkd_req(nl, m);
}

static inline int qkd_link_del(struct qkd_nl *nl, uint32_t id)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_LINK_DEL, 0);

	nla_put_u32(m, QKD_A_LINK_ID, id);
	return qkd_req(nl, m);
}

static inline int qkd_link_del_name(struct qkd_nl *nl, const char *name)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_LINK_DEL, 0);

	nla_put_string(m, QKD_A_LINK_NAME, name);
	return qkd_req(nl, m);
}

static inline int qkd_link_get(struct qkd_nl *nl, uint32_t id,
			       struct qkd_obj *out)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_LINK_GET, 0);
	int err;

	nla_put_u32(m, QKD_A_LINK_ID, id);
	err = qkd_req(nl, m);
	qkd_first(nl, out);
	return err;
}

static inline int qkd_link_get_name(struct qkd_nl *nl, const char *name,
				    struct qkd_obj *out)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_LINK_GET, 0);
	int err;

	nla_put_string(m, QKD_A_LINK_NAME, name);
	err = qkd_req(nl, m);
	qkd_first(nl, out);
	return err;
}

static inline int qkd_link_set(struct qkd_nl *nl, uint32_t id, int state)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_LINK_SET, 0);

	nla_put_u32(m, QKD_A_LINK_ID, id);
	nla_put_u8(m, QKD_A_LINK_STATE, (uint8_t)state);
	return qkd_req(nl, m);
}

static inline int qkd_link_dump(struct qkd_nl *nl)
{
	return qkd_req(nl, qkd_msg(nl, QKD_CMD_LINK_GET, NLM_F_DUMP));
}

static inline int qkd_stream_new(struct qkd_nl *nl,
				 const uint8_t sid[QKD_STREAM_ID_LEN],
				 uint32_t link_id, uint32_t key_size,
				 long long max_keys, long long low_water)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_STREAM_NEW, 0);

	nla_put(m, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	nla_put_u32(m, QKD_A_STREAM_LINK_ID, link_id);
	nla_put_u32(m, QKD_A_STREAM_KEY_SIZE, key_size);
	if (max_keys != QKD_OMIT)
		nla_put_u32(m, QKD_A_STREAM_MAX_KEYS, (uint32_t)max_keys);
	if (low_water != QKD_OMIT)
		nla_put_u32(m, QKD_A_STREAM_LOW_WATER, (uint32_t)low_water);
	return qkd_req(nl, m);
}

static inline int qkd_stream_del(struct qkd_nl *nl,
				 const uint8_t sid[QKD_STREAM_ID_LEN])
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_STREAM_DEL, 0);

	nla_put(m, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	return qkd_req(nl, m);
}

static inline int qkd_stream_get(struct qkd_nl *nl,
				 const uint8_t sid[QKD_STREAM_ID_LEN],
				 struct qkd_obj *out)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_STREAM_GET, 0);
	int err;

	nla_put(m, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	err = qkd_req(nl, m);
	qkd_first(nl, out);
	return err;
}

static inline int qkd_stream_set(struct qkd_nl *nl,
				 const uint8_t sid[QKD_STREAM_ID_LEN],
				 long long max_keys, long long low_water)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_STREAM_SET, 0);

	nla_put(m, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	if (max_keys != QKD_OMIT)
		nla_put_u32(m, QKD_A_STREAM_MAX_KEYS, (uint32_t)max_keys);
	if (low_water != QKD_OMIT)
		nla_put_u32(m, QKD_A_STREAM_LOW_WATER, (uint32_t)low_water);
	return qkd_req(nl, m);
}

/* Dump streams; @link_id 0: all, else only that link's. */
static inline int qkd_stream_dump(struct qkd_nl *nl, uint32_t link_id)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_STREAM_GET, NLM_F_DUMP);

	if (link_id)
		nla_put_u32(m, QKD_A_STREAM_LINK_ID, link_id);
	return qkd_req(nl, m);
}

static inline int qkd_key_add(struct qkd_nl *nl,
			      const uint8_t sid[QKD_STREAM_ID_LEN],
			      uint64_t first, const void *data, size_t len)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_KEY_ADD, 0);

	nla_put(m, QKD_A_KEYS_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	nla_put_u64(m, QKD_A_KEYS_FIRST_INDEX, first);
	nla_put(m, QKD_A_KEYS_DATA, (int)len, data);
	return qkd_req(nl, m);
}

/* Push @count pattern keys (seed) at @first, in batches of at most 32 KiB. */
static inline int qkd_key_add_pattern(struct qkd_nl *nl,
				      const uint8_t sid[QKD_STREAM_ID_LEN],
				      uint64_t first, uint64_t count,
				      uint32_t key_size, uint32_t seed)
{
	uint64_t per = QKD_KEY_BATCH_MAX_BYTES / key_size, done = 0;
	uint8_t *buf = malloc(QKD_KEY_BATCH_MAX_BYTES);
	int err = 0;

	if (!buf)
		abort();
	while (done < count) {
		uint64_t n = count - done < per ? count - done : per, i;

		for (i = 0; i < n; i++)
			qkd_pattern(buf + i * key_size, key_size,
				    first + done + i, seed);
		err = qkd_key_add(nl, sid, first + done, buf, n * key_size);
		if (err)
			break;
		done += n;
	}
	free(buf);
	return err;
}

static inline int qkd_key_flush(struct qkd_nl *nl,
				const uint8_t sid[QKD_STREAM_ID_LEN])
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_KEY_FLUSH, 0);

	nla_put(m, QKD_A_KEYS_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	return qkd_req(nl, m);
}

static inline int qkd_status(struct qkd_nl *nl, struct qkd_obj *out)
{
	int err = qkd_req(nl, qkd_msg(nl, QKD_CMD_STATUS_GET, 0));

	qkd_first(nl, out);
	return err;
}

/* --- A snapshot of a node's whole state: status, links, streams. -------- */

struct qkd_snap {
	int err;
	struct qkd_obj status;
	struct qkd_objs links, streams;
};

static inline void qkd_snap_free(struct qkd_snap *s)
{
	qkd_objs_free(&s->links);
	qkd_objs_free(&s->streams);
}

static inline int qkd_snap_take(struct qkd_nl *nl, struct qkd_snap *s)
{
	int i;

	memset(s, 0, sizeof(*s));
	s->err = qkd_status(nl, &s->status);
	if (!s->err)
		s->err = qkd_link_dump(nl);
	for (i = 0; !s->err && i < nl->r.n; i++)
		*qkd_objs_add(&s->links) = nl->r.v[i];
	if (!s->err)
		s->err = qkd_stream_dump(nl, 0);
	for (i = 0; !s->err && i < nl->r.n; i++)
		*qkd_objs_add(&s->streams) = nl->r.v[i];
	return s->err;
}

static inline bool qkd_obj_eq(const struct qkd_obj *a, const struct qkd_obj *b)
{
	return !memcmp(a, b, sizeof(*a));
}

static inline bool qkd_objs_same_set(const struct qkd_objs *a,
				     const struct qkd_objs *b)
{
	int i, j;

	if (a->n != b->n)
		return false;
	for (i = 0; i < a->n; i++) {
		for (j = 0; j < b->n; j++)
			if (qkd_obj_eq(&a->v[i], &b->v[j]))
				break;
		if (j == b->n)
			return false;
	}
	return true;
}

/* Which part differs, for the log; NULL if equal. */
static inline const char *qkd_snap_diff(const struct qkd_snap *a,
					const struct qkd_snap *b)
{
	if (a->err || b->err)
		return "snapshot failed";
	if (!qkd_obj_eq(&a->status, &b->status))
		return "status";
	if (!qkd_objs_same_set(&a->links, &b->links))
		return "links";
	if (!qkd_objs_same_set(&a->streams, &b->streams))
		return "streams";
	return NULL;
}

/* ------------------------------------------------------------------------
 * /dev/qkd
 * ------------------------------------------------------------------------
 */

static inline int qkd_dev_open(void)
{
	int fd = open(QKD_DEV_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static inline int qkd_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? -errno : 0;
}

static inline void qkd_req_init(struct qkd_key_request *r,
				const uint8_t sid[QKD_STREAM_ID_LEN],
				void *buf, uint32_t len)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	memcpy(r->stream_id, sid, QKD_STREAM_ID_LEN);
	r->key_len = len;
	r->key_ptr = (uint64_t)(uintptr_t)buf;
}

/* QKD_IOC_GET_KEY: 0 or -errno; @r (may be NULL) gets the request back. */
static inline int qkd_get_key(int fd, const uint8_t sid[QKD_STREAM_ID_LEN],
			      void *buf, uint32_t len,
			      struct qkd_key_request *r)
{
	struct qkd_key_request tmp;

	if (!r)
		r = &tmp;
	qkd_req_init(r, sid, buf, len);
	return qkd_ioctl(fd, QKD_IOC_GET_KEY, r);
}

static inline int qkd_get_key_at(int fd, const uint8_t sid[QKD_STREAM_ID_LEN],
				 uint64_t index, void *buf, uint32_t len,
				 struct qkd_key_request *r)
{
	struct qkd_key_request tmp;

	if (!r)
		r = &tmp;
	qkd_req_init(r, sid, buf, len);
	r->index = index;
	return qkd_ioctl(fd, QKD_IOC_GET_KEY_BY_ID, r);
}

static inline int qkd_get_key_kid(int fd, const uint8_t sid[QKD_STREAM_ID_LEN],
				  const uint8_t kid[QKD_KEY_ID_LEN],
				  void *buf, uint32_t len,
				  struct qkd_key_request *r)
{
	struct qkd_key_request tmp;

	if (!r)
		r = &tmp;
	qkd_req_init(r, sid, buf, len);
	r->flags = QKD_KEY_F_BY_KEY_ID;
	memcpy(r->key_id, kid, QKD_KEY_ID_LEN);
	return qkd_ioctl(fd, QKD_IOC_GET_KEY_BY_ID, r);
}

static inline int qkd_dev_status(int fd, const uint8_t sid[QKD_STREAM_ID_LEN],
				 struct qkd_stream_status *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	memcpy(st->stream_id, sid, QKD_STREAM_ID_LEN);
	return qkd_ioctl(fd, QKD_IOC_STREAM_STATUS, st);
}

static inline int qkd_set_poll(int fd, const uint8_t sid[QKD_STREAM_ID_LEN])
{
	struct qkd_poll_stream p;

	memset(&p, 0, sizeof(p));
	p.size = sizeof(p);
	memcpy(p.stream_id, sid, QKD_STREAM_ID_LEN);
	return qkd_ioctl(fd, QKD_IOC_SET_POLL_STREAM, &p);
}

/* poll() the device once: revents, or -errno. */
static inline int qkd_poll1(int fd, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDNORM };
	int n = poll(&p, 1, timeout_ms);

	if (n < 0)
		return -errno;
	return n ? p.revents : 0;
}

/* Stored keys of a stream, through genl (-1 on error). */
static inline long long qkd_stored(struct qkd_nl *nl,
				   const uint8_t sid[QKD_STREAM_ID_LEN])
{
	struct qkd_obj o;

	if (qkd_stream_get(nl, sid, &o))
		return -1;
	return (long long)qkd_obj_u(&o, QKD_A_STREAM_STORED_KEYS);
}

/* ------------------------------------------------------------------------
 * Assertions on netlink rejections
 * ------------------------------------------------------------------------
 */

/*
 * A request rejected as invalid: -@err (EINVAL or QKD_ERRNO_RANGE), a
 * non-empty extended-ACK message, the offending attribute named if @named
 * (its offset, or the missing attribute's type), and nothing changed in the node
 * (snapshot before == after). The errno is checked with EXPECT so that one run
 * reports every deviation of a table-driven test.
 */
#define ASSERT_NL_INVALID(nl, err, named, expr) do { \
	struct qkd_snap __b, __a; \
	int __e; \
	ASSERT_EQ(0, qkd_snap_take((nl), &__b)); \
	__e = (expr); \
	EXPECT_EQ(-(err), __e) TH_LOG("%s%s%s: got %d (%s), want %d (%s), extack '%s'", \
				      qkd_ctx, qkd_ctx[0] ? ": " : "", #expr, \
				      __e, strerror(-__e), -(err), strerror(err), \
				      (nl)->ext_msg); \
	EXPECT_TRUE(__e == 0 || (nl)->ext_has_msg) \
		TH_LOG("%s%s%s: no extended-ACK message (attribute offset %s, missing-attribute type %s)", \
		       qkd_ctx, qkd_ctx[0] ? ": " : "", #expr, \
		       (nl)->ext_has_offs ? "present" : "absent", \
		       (nl)->ext_has_miss ? "present" : "absent"); \
	EXPECT_TRUE(__e == 0 || !(named) || (nl)->ext_has_offs || (nl)->ext_has_miss) \
		TH_LOG("%s%s%s: the extended ACK names no attribute (no offset, no missing type)", \
		       qkd_ctx, qkd_ctx[0] ? ": " : "", #expr); \
	ASSERT_EQ(0, qkd_snap_take((nl), &__a)); \
	EXPECT_EQ(NULL, qkd_snap_diff(&__b, &__a)) \
		TH_LOG("%s%s%s changed the node's %s", qkd_ctx, \
		       qkd_ctx[0] ? ": " : "", #expr, \
		       qkd_snap_diff(&__b, &__a)); \
	qkd_snap_free(&__b); \
	qkd_snap_free(&__a); \
} while (0)

#define ASSERT_NL_EINVAL(nl, expr) ASSERT_NL_INVALID(nl, EINVAL, true, expr)
#define ASSERT_NL_BADRANGE(nl, expr) ASSERT_NL_INVALID(nl, QKD_ERRNO_RANGE, true, expr)
#define ASSERT_NL_BADLEN(nl, expr) ASSERT_NL_INVALID(nl, QKD_ERRNO_LENGTH, true, expr)
/* One of several attributes is missing (LINK_ID or LINK_NAME): none to name. */
#define ASSERT_NL_EINVAL_ONEOF(nl, expr) ASSERT_NL_INVALID(nl, EINVAL, false, expr)

/* A request rejected with -@err and nothing changed in the node. */
#define ASSERT_NL_ERR(nl, err, expr) do { \
	struct qkd_snap __b, __a; \
	int __e; \
	ASSERT_EQ(0, qkd_snap_take((nl), &__b)); \
	__e = (expr); \
	EXPECT_EQ(-(err), __e) TH_LOG("%s%s%s: got %d (%s), want %d (%s), extack '%s'", \
				      qkd_ctx, qkd_ctx[0] ? ": " : "", #expr, \
				      __e, strerror(-__e), -(err), strerror(err), \
				      (nl)->ext_msg); \
	ASSERT_EQ(0, qkd_snap_take((nl), &__a)); \
	EXPECT_EQ(NULL, qkd_snap_diff(&__b, &__a)) \
		TH_LOG("%s%s%s changed the node's %s", qkd_ctx, \
		       qkd_ctx[0] ? ": " : "", #expr, \
		       qkd_snap_diff(&__b, &__a)); \
	qkd_snap_free(&__b); \
	qkd_snap_free(&__a); \
} while (0)

#define ASSERT_NL_OK(nl, expr) do { \
	int __e = (expr); \
	ASSERT_EQ(0, __e) TH_LOG("%s%s%s: got %d (%s), extack '%s'", qkd_ctx, \
				 qkd_ctx[0] ? ": " : "", #expr, __e, \
				 strerror(-__e), (nl)->ext_msg); \
} while (0)

/* ------------------------------------------------------------------------
 * Harness-level helpers (ASSERT_* inside: call from a test or fixture only)
 * ------------------------------------------------------------------------
 */

/* A link (id @id, name "l<id>", initiator) with one stream @sid of @ks. */
static inline void mk_link_stream(struct __test_metadata *_metadata,
			   struct qkd_nl *nl, uint32_t id,
			   const uint8_t *sid, uint32_t ks)
{
	char name[16];

	snprintf(name, sizeof(name), "l%u", id);
	ASSERT_NL_OK(nl, qkd_link_new(nl, id, name, QKD_LINK_ROLE_INITIATOR, NULL));
	if (sid)
		ASSERT_NL_OK(nl, qkd_stream_new(nl, sid, id, ks, QKD_OMIT,
						QKD_OMIT));
}

static inline uint64_t stream_u(struct __test_metadata *_metadata, struct qkd_nl *nl,
			 const uint8_t *sid, int attr)
{
	struct qkd_obj o;

	ASSERT_NL_OK(nl, qkd_stream_get(nl, sid, &o));
	ASSERT_TRUE(o.has[attr]) TH_LOG("stream reply lacks attribute %d", attr);
	return qkd_obj_u(&o, attr);
}

static inline uint64_t link_u(struct __test_metadata *_metadata, struct qkd_nl *nl,
		       uint32_t id, int attr)
{
	struct qkd_obj o;

	ASSERT_NL_OK(nl, qkd_link_get(nl, id, &o));
	ASSERT_TRUE(o.has[attr]) TH_LOG("link reply lacks attribute %d", attr);
	return qkd_obj_u(&o, attr);
}

static inline uint64_t status_u(struct __test_metadata *_metadata, struct qkd_nl *nl,
			 int attr)
{
	struct qkd_obj o;

	ASSERT_NL_OK(nl, qkd_status(nl, &o));
	ASSERT_TRUE(o.has[attr]) TH_LOG("status reply lacks attribute %d", attr);
	return qkd_obj_u(&o, attr);
}

/* added = delivered + flushed + stored, on any object with STATS_*. */
static inline void check_balance(struct __test_metadata *_metadata,
			  const struct qkd_obj *o, const char *what)
{
	uint64_t a = qkd_obj_u(o, QKD_T_STATS(KEYS_ADDED));
	uint64_t d = qkd_obj_u(o, QKD_T_STATS(KEYS_DELIVERED));
	uint64_t f = qkd_obj_u(o, QKD_T_STATS(KEYS_FLUSHED));
	uint64_t s = qkd_obj_u(o, QKD_T_STATS(KEYS_STORED));

	ASSERT_TRUE(o->has[QKD_T_STATS(KEYS_ADDED)] &&
		    o->has[QKD_T_STATS(KEYS_DELIVERED)] &&
		    o->has[QKD_T_STATS(KEYS_FLUSHED)] &&
		    o->has[QKD_T_STATS(KEYS_STORED)] &&
		    o->has[QKD_T_STATS(BYTES_STORED)])
		TH_LOG("%s: a STATS_* counter is missing", what);
	EXPECT_EQ(a, d + f + s)
		TH_LOG("%s: added %ju != delivered %ju + flushed %ju + stored %ju",
		       what, (uintmax_t)a, (uintmax_t)d, (uintmax_t)f,
		       (uintmax_t)s);
}

static inline void check_counters(struct __test_metadata *_metadata,
			   const struct qkd_obj *o, const char *what,
			   uint64_t added, uint64_t delivered, uint64_t flushed,
			   uint64_t stored, uint64_t bytes)
{
	check_balance(_metadata, o, what);
	EXPECT_EQ(added, qkd_obj_u(o, QKD_T_STATS(KEYS_ADDED))) TH_LOG("%s added", what);
	EXPECT_EQ(delivered, qkd_obj_u(o, QKD_T_STATS(KEYS_DELIVERED))) TH_LOG("%s delivered", what);
	EXPECT_EQ(flushed, qkd_obj_u(o, QKD_T_STATS(KEYS_FLUSHED))) TH_LOG("%s flushed", what);
	EXPECT_EQ(stored, qkd_obj_u(o, QKD_T_STATS(KEYS_STORED))) TH_LOG("%s stored", what);
	EXPECT_EQ(bytes, qkd_obj_u(o, QKD_T_STATS(BYTES_STORED))) TH_LOG("%s bytes stored", what);
}

/* Pass an open fd over a unix socket (SCM_RIGHTS). */
static inline int qkd_send_fd(int sock, int fd)
{
	char c = 'f', cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;

	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	return sendmsg(sock, &mh, 0) == 1 ? 0 : -errno;
}

static inline int qkd_recv_fd(int sock)
{
	char c, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &c, .iov_len = 1 };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int fd;

	if (recvmsg(sock, &mh, 0) != 1)
		return -1;
	cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

#endif /* QKD_TEST_H */
