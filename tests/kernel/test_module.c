// SPDX-License-Identifier: GPL-2.0-only
/*
 * Module life: unload with links, streams and keys present (in this netns
 * and in another live one, with an events listener open) succeeds, and a
 * reload starts every node empty; an open /dev/qkd pins the module.
 * Unloading (and so a DKMS upgrade, rmmod then insmod) fails closed: the
 * traffic of a binding stays blocked, not in clear (qkd_wire.h).
 *
 * Needs the module loaded from a file we can reload: $QKD_KO, else
 * build/kmod/$(uname -r)/qkd.ko (from the repo top, as the VM runner starts
 * the tests), else that path relative to this binary. Every test leaves the
 * module loaded, with the parameters it had.
 */
#include <sys/uio.h>
#include <sys/utsname.h>

#include "qkd_test.h"
#include "qkd_wire.h"

#define KS	32

static char ko_path[4096];
static char ko_params[1024];

static bool module_loaded(void)
{
	return access("/sys/module/qkd", F_OK) == 0;
}

static bool find_ko(void)
{
	struct utsname u;
	char exe[2048], *slash;
	const char *env = getenv("QKD_KO");
	ssize_t n;

	if (env && access(env, R_OK) == 0) {
		snprintf(ko_path, sizeof(ko_path), "%s", env);
		return true;
	}
	if (uname(&u))
		return false;
	snprintf(ko_path, sizeof(ko_path), "build/kmod/%s/qkd.ko", u.release);
	if (access(ko_path, R_OK) == 0)
		return true;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	slash = strrchr(exe, '/');
	if (!slash)
		return false;
	*slash = 0;
	snprintf(ko_path, sizeof(ko_path), "%s/../../kmod/%s/qkd.ko", exe, u.release);
	return access(ko_path, R_OK) == 0;
}

/* "name=value ..." of the loaded module's readable parameters. */
static void read_params(void)
{
	static const char *const names[] = {
		"stream_max_keys", "netns_max_keys", "netns_max_bytes",
	};
	size_t i, off = 0;

	ko_params[0] = 0;
	for (i = 0; i < ARRAY_SIZE(names); i++) {
		char path[128], val[64] = { 0 };
		int fd;
		ssize_t n;

		snprintf(path, sizeof(path), "/sys/module/qkd/parameters/%s", names[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, val, sizeof(val) - 1);
		close(fd);
		if (n <= 0)
			continue;
		val[strcspn(val, "\n")] = 0;
		off += snprintf(ko_params + off, sizeof(ko_params) - off, "%s%s=%s",
				off ? " " : "", names[i], val);
	}
}

/* rmmod qkd: 0 or -errno; retried for a while on EAGAIN/EBUSY if @retry. */
static int unload(bool retry)
{
	int i;

	for (i = 0; i < (retry ? 50 : 1); i++) {
		if (syscall(SYS_delete_module, "qkd", O_NONBLOCK) == 0)
			return 0;
		if (errno != EAGAIN && errno != EBUSY)
			return -errno;
		if (retry)
			qkd_msleep(100);
	}
	return -errno;
}

static int load(void)
{
	int fd = open(ko_path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, ko_params, 0))
		err = -errno;
	close(fd);
	return err;
}

/* Wait up to 5 s for /dev/qkd to (dis)appear. */
static bool wait_dev(bool present)
{
	int i;

	for (i = 0; i < 50; i++) {
		if ((access(QKD_DEV_PATH, F_OK) == 0) == present)
			return true;
		qkd_msleep(100);
	}
	return false;
}

static int read_refcnt(void)
{
	char buf[32] = { 0 };
	int fd = open("/sys/module/qkd/refcnt", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoi(buf) : -1;
}

FIXTURE(mod) {
	int kmsg;
	bool had_dev;
};

FIXTURE_SETUP(mod)
{
	if (geteuid() != 0)
		QKD_SKIP_SETUP("needs root");
	if (!module_loaded())
		QKD_SKIP_SETUP("qkd.ko not loaded");
	if (!find_ko())
		QKD_SKIP_SETUP("qkd.ko file not found (set QKD_KO): cannot reload");
	read_params();
	self->had_dev = access(QKD_DEV_PATH, F_OK) == 0;
	self->kmsg = qkd_kmsg_open();
	TH_LOG("module file %s, parameters '%s'", ko_path, ko_params);
}

FIXTURE_TEARDOWN(mod)
{
	QKD_TEARDOWN_BEGIN();
	/* whatever happened, leave the module loaded for the next tests */
	if (!module_loaded()) {
		int err = load();

		EXPECT_EQ(0, err) TH_LOG("reloading %s: %s", ko_path, strerror(-err));
	}
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->kmsg >= 0)
		close(self->kmsg);
}

/* Some of everything in the caller's netns. */
static int fill(struct qkd_nl *nl, int seed)
{
	uint8_t sid[QKD_STREAM_ID_LEN];
	int l, s, err;

	for (l = 1; l <= 2; l++) {
		char name[16];

		snprintf(name, sizeof(name), "m%d", l);
		err = qkd_link_new(nl, l, name, QKD_LINK_ROLE_INITIATOR, NULL);
		if (!err)
			err = qkd_link_set(nl, l, QKD_LINK_STATE_UP);
		for (s = 0; !err && s < 3; s++) {
			qkd_sid(sid, 10 * l + s);
			err = qkd_stream_new(nl, sid, l, KS, QKD_OMIT, 3);
			if (!err)
				err = qkd_key_add_pattern(nl, sid, 0, 500, KS, seed);
		}
		if (err)
			return err;
	}
	return 0;
}

/* A child holding a second netns with keys across the unload. */
static int child_other_netns(int to_parent, int from_parent)
{
	struct qkd_nl nl;
	struct qkd_obj o;
	char c = 0;
	int err;

	CHILD_CHECK(qkd_new_netns() == 0, "unshare");
	CHILD_CHECK(qkd_nl_open(&nl) == 0, "genl");
	err = fill(&nl, 2);
	CHILD_CHECK(err == 0, "fill: %d", err);
	qkd_nl_close(&nl);
	CHILD_CHECK(write(to_parent, "f", 1) == 1, "sync");
	/* the parent unloads and reloads the module */
	CHILD_CHECK(read(from_parent, &c, 1) == 1 && c == 'r', "sync");
	CHILD_CHECK(qkd_nl_open(&nl) == 0, "genl after reload");
	CHILD_CHECK(qkd_status(&nl, &o) == 0, "status after reload");
	CHILD_CHECK(qkd_obj_u(&o, QKD_A_STATUS_LINKS) == 0 &&
		    qkd_obj_u(&o, QKD_A_STATUS_STREAMS) == 0 &&
		    qkd_obj_u(&o, QKD_T_STATS(KEYS_ADDED)) == 0,
		    "the other netns's node is not empty after a reload");
	err = fill(&nl, 3);
	CHILD_CHECK(err == 0, "fill after reload: %d", err);
	qkd_nl_close(&nl);
	return 0;
}

TEST_F_TIMEOUT(mod, unload_with_keys_and_reload, 120)
{
	struct qkd_nl nl, ev;
	struct qkd_obj o;
	int to_parent[2], to_child[2], err, fam;
	char c = 0;
	pid_t pid;

	/* state in a test netns, in a second netns, and a listener */
	ASSERT_EQ(0, qkd_new_netns());
	ASSERT_EQ(0, qkd_nl_open(&nl));
	ASSERT_EQ(0, fill(&nl, 1));
	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	fam = nl.family;
	qkd_nl_close(&nl);
	ASSERT_EQ(0, pipe(to_parent));
	ASSERT_EQ(0, pipe(to_child));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_other_netns(to_parent[1], to_child[0]));
	ASSERT_EQ(1, read(to_parent[0], &c, 1)) TH_LOG("child: %d", qkd_wait(pid));

	err = unload(true);
	ASSERT_EQ(0, err) TH_LOG("rmmod with keys present: %s (refcnt %d)",
				 strerror(-err), read_refcnt());
	EXPECT_FALSE(module_loaded());
	EXPECT_TRUE(wait_dev(false)) TH_LOG("%s still there after rmmod", QKD_DEV_PATH);
	EXPECT_EQ(-ENOENT, qkd_nl_open(&nl)) TH_LOG("genl family still registered");
	/* the listener's socket survives its family */
	EXPECT_EQ(0, qkd_ev_read(&ev, 100));

	err = load();
	ASSERT_EQ(0, err) TH_LOG("reload %s: %s", ko_path, strerror(-err));
	if (self->had_dev)
		EXPECT_TRUE(wait_dev(true)) TH_LOG("%s not back after reload", QKD_DEV_PATH);
	ASSERT_EQ(0, qkd_nl_open(&nl));
	ASSERT_NL_OK(&nl, qkd_status(&nl, &o));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_A_STATUS_LINKS));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_A_STATUS_STREAMS));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_T_STATS(KEYS_ADDED)));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_T_STATS(KEYS_STORED)));
	TH_LOG("family id %d before, %d after the reload", fam, nl.family);
	/* works again */
	ASSERT_EQ(0, fill(&nl, 4));
	ASSERT_EQ(1, write(to_child[1], "r", 1));
	EXPECT_EQ(0, qkd_wait(pid));
	qkd_nl_close(&nl);
	qkd_nl_close(&ev);
}

#define MAX_KEYS_PARAM "/sys/module/qkd/parameters/stream_max_keys"

/* Write @val to stream_max_keys: 0 or -errno. */
static int write_max_keys_param(const char *val)
{
	int fd = open(MAX_KEYS_PARAM, O_WRONLY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, val, strlen(val)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static long read_max_keys_param(void)
{
	char buf[32] = { 0 };
	int fd = open(MAX_KEYS_PARAM, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

/*
 * stream_max_keys is writable at run time (0644): a value the genl policy
 * would refuse must be refused when written, not later as a STREAM_NEW
 * without max-keys that fails for a reason its caller never gave. And the
 * same range holds at load time.
 */
TEST_F_TIMEOUT(mod, stream_max_keys_param_range, 120)
{
	static const char *const bad[] = { "0", "-1", "abc", "4294967296" };
	uint8_t sid[QKD_STREAM_ID_LEN];
	char val[32], saved[1024];
	struct qkd_nl nl;
	struct qkd_obj o;
	long before = read_max_keys_param();
	size_t i;
	int err;

	ASSERT_LT(0, before);
	/* one past the policy's max-keys maximum, 2^20 (abi.md) */
	snprintf(val, sizeof(val), "%u", (1u << 20) + 1);
	EXPECT_EQ(-EINVAL, write_max_keys_param(val)) TH_LOG("wrote %s", val);
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		/* EINVAL, or ERANGE from the parser for 2^32 */
		err = write_max_keys_param(bad[i]);
		EXPECT_TRUE(err == -EINVAL || err == -ERANGE) {
			TH_LOG("wrote '%s': %d", bad[i], err);
		}
	}
	EXPECT_EQ(before, read_max_keys_param());

	/* a value in range is taken by the next stream without max-keys */
	ASSERT_EQ(0, write_max_keys_param("123"));
	ASSERT_EQ(0, qkd_new_netns());
	ASSERT_EQ(0, qkd_nl_open(&nl));
	ASSERT_NL_OK(&nl, qkd_link_new(&nl, 1, "p", QKD_LINK_ROLE_INITIATOR, NULL));
	qkd_sid(sid, 1);
	err = qkd_stream_new(&nl, sid, 1, KS, QKD_OMIT, QKD_OMIT);
	snprintf(val, sizeof(val), "%ld", before);
	EXPECT_EQ(0, write_max_keys_param(val));
	ASSERT_NL_OK(&nl, err);
	ASSERT_NL_OK(&nl, qkd_stream_get(&nl, sid, &o));
	EXPECT_EQ(123, qkd_obj_u(&o, QKD_A_STREAM_MAX_KEYS));
	qkd_nl_close(&nl);

	/* and at load time: the module does not load with a bad value */
	ASSERT_EQ(0, unload(true));
	snprintf(saved, sizeof(saved), "%s", ko_params);
	snprintf(ko_params, sizeof(ko_params), "stream_max_keys=0");
	err = load();
	snprintf(ko_params, sizeof(ko_params), "%s", saved);
	EXPECT_EQ(-EINVAL, err);
	if (!err)
		EXPECT_EQ(0, unload(true));
	ASSERT_EQ(0, load());
	EXPECT_EQ(before, read_max_keys_param());
}

TEST_F_TIMEOUT(mod, open_dev_pins_module, 120)
{
	struct qkd_nl nl;
	uint8_t sid[QKD_STREAM_ID_LEN], buf[KS];
	int fd, err, ref;

	if (!self->had_dev)
		SKIP(return, "no %s", QKD_DEV_PATH);
	ASSERT_EQ(0, qkd_new_netns());
	fd = qkd_dev_open();
	ASSERT_LE(0, fd);
	ref = read_refcnt();
	EXPECT_LT(0, ref) TH_LOG("an open /dev/qkd must hold a module reference");
	err = unload(false);
	EXPECT_TRUE(err == -EAGAIN || err == -EBUSY)
		TH_LOG("rmmod with /dev/qkd open: %d (%s)", err, strerror(-err));
	ASSERT_TRUE(module_loaded()) {
		close(fd);
		return;
	}
	/* still fully working */
	ASSERT_EQ(0, qkd_nl_open(&nl));
	qkd_sid(sid, 1);
	ASSERT_EQ(0, fill(&nl, 1));
	qkd_sid(sid, 10);
	ASSERT_EQ(0, qkd_get_key(fd, sid, buf, KS, NULL));
	qkd_nl_close(&nl);
	close(fd);
	err = unload(true);
	ASSERT_EQ(0, err) TH_LOG("rmmod after close: %s (refcnt %d)", strerror(-err),
				 read_refcnt());
	err = load();
	ASSERT_EQ(0, err) TH_LOG("reload: %s", strerror(-err));
	EXPECT_TRUE(wait_dev(true));
}

static int child_dev_fd_of_netns(int sock)
{
	struct qkd_nl nl;
	int fd, err;

	CHILD_CHECK(qkd_new_netns() == 0, "unshare");
	CHILD_CHECK(qkd_nl_open(&nl) == 0, "genl");
	err = fill(&nl, 5);
	CHILD_CHECK(err == 0, "fill: %d", err);
	fd = qkd_dev_open();
	CHILD_CHECK(fd >= 0, "open: %d", fd);
	CHILD_CHECK(qkd_send_fd(sock, fd) == 0, "send fd");
	return 0;
}

/* An fd whose netns has no process left pins the module, keys and all. */
TEST_F_TIMEOUT(mod, dev_fd_of_dead_netns_pins_module, 120)
{
	uint8_t sid[QKD_STREAM_ID_LEN], buf[KS];
	int fd, err, sv[2];
	pid_t pid;

	if (!self->had_dev)
		SKIP(return, "no %s", QKD_DEV_PATH);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_dev_fd_of_netns(sv[1]));
	fd = qkd_recv_fd(sv[0]);
	ASSERT_EQ(0, qkd_wait(pid));
	ASSERT_LE(0, fd);
	close(sv[0]);
	close(sv[1]);
	qkd_msleep(300);
	err = unload(false);
	EXPECT_TRUE(err == -EAGAIN || err == -EBUSY) TH_LOG("rmmod: %d (%s)", err, strerror(-err));
	ASSERT_TRUE(module_loaded()) {
		close(fd);
		return;
	}
	qkd_sid(sid, 10);
	ASSERT_EQ(0, qkd_get_key(fd, sid, buf, KS, NULL)) TH_LOG("keys of the dead netns");
	EXPECT_TRUE(qkd_pattern_ok(buf, KS, 0, 5));
	close(fd);
	err = unload(true);
	ASSERT_EQ(0, err) TH_LOG("rmmod once closed: %s (refcnt %d)", strerror(-err),
				 read_refcnt());
	err = load();
	ASSERT_EQ(0, err) TH_LOG("reload: %s", strerror(-err));
	EXPECT_TRUE(wait_dev(true));
}

TEST_F_TIMEOUT(mod, reload_cycles, 180)
{
	int i, err;

	ASSERT_EQ(0, qkd_new_netns());
	for (i = 0; i < 4; i++) {
		struct qkd_nl nl;
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0) {
			/* state in a netns that is still being torn down */
			if (qkd_new_netns() || qkd_nl_open(&nl) || fill(&nl, i))
				_exit(1);
			_exit(0);
		}
		ASSERT_EQ(0, qkd_wait(pid));
		ASSERT_EQ(0, qkd_nl_open(&nl));
		ASSERT_EQ(0, qkd_link_new(&nl, 0, "cycle", QKD_LINK_ROLE_RESPONDER, NULL));
		qkd_nl_close(&nl);
		err = unload(true);
		ASSERT_EQ(0, err) TH_LOG("cycle %d: rmmod: %s (refcnt %d)", i,
					 strerror(-err), read_refcnt());
		err = load();
		ASSERT_EQ(0, err) TH_LOG("cycle %d: reload: %s", i, strerror(-err));
		ASSERT_EQ(0, qkd_nl_open(&nl));
		EXPECT_EQ(-ENOENT, qkd_link_get_name(&nl, "cycle", NULL))
			TH_LOG("state survived a reload");
		qkd_nl_close(&nl);
	}
	if (self->had_dev)
		EXPECT_TRUE(wait_dev(true));
}

QKD_TEST_MAIN

/*
 * The attack: a binding protects A <-> B, and the module is unloaded (an
 * upgrade: rmmod, then insmod of the new one). Unloading tears every
 * binding down; does anything cross the wire in clear before, or after the
 * new module is in? Nothing may until an administrator removes the block
 * policies left in the bindings' place; then clear pings must cross (or
 * the sniffer proves nothing).
 */
TEST_F_TIMEOUT(mod, unload_fails_closed, 180)
{
	struct qkd_wire_seen s;
	struct qkd_nl nl;
	struct qkd_wire w;
	int err, i;

	ASSERT_EQ(0, qkd_new_netns());
	ASSERT_EQ(0, qkd_nl_open(&nl));
	err = qkd_wire_up(&w);
	ASSERT_EQ(0, err) TH_LOG("two netns over veth: %d (%s)", err, strerror(-err));
	ASSERT_NL_OK(&nl, qkd_wire_bind_both(&w, &nl));
	qkd_wire_sniffed(&w);
	ASSERT_TRUE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("no ping through the binding");
	s = qkd_wire_sniffed(&w);
	ASSERT_EQ(0, s.echo) TH_LOG("the bound ping crossed in clear");
	ASSERT_LT(0, s.esp);
	qkd_nl_close(&nl);
	qkd_nl_close(&w.nl_b);
	w.nl_b_open = false;

	err = unload(true);
	ASSERT_EQ(0, err) TH_LOG("rmmod with bindings: %s (refcnt %d)", strerror(-err),
				 read_refcnt());
	for (i = 0; i < 2; i++) {
		int ns = i ? w.ns_b : w.ns_a;

		QKD_CTX("netns %c after rmmod", i ? 'B' : 'A');
		EXPECT_EQ(2, qkd_wire_policies(&w, ns, "action block")) TH_LOG("%s", qkd_ctx);
		EXPECT_EQ(0, qkd_wire_policies(&w, ns, "tmpl")) TH_LOG("%s", qkd_ctx);
	}
	QKD_CTX_CLEAR();
	EXPECT_FALSE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("A reached B after rmmod");
	s = qkd_wire_sniffed(&w);
	EXPECT_EQ(0, s.echo) TH_LOG("%d ICMP echoes in clear after rmmod", s.echo);

	/* The new module comes in: it does not know the old one's policies. */
	err = load();
	ASSERT_EQ(0, err) TH_LOG("reload %s: %s", ko_path, strerror(-err));
	EXPECT_EQ(2, qkd_wire_policies(&w, w.ns_a, "action block"));
	EXPECT_FALSE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("A reached B after insmod");
	EXPECT_FALSE(qkd_wire_ping(w.ns_b, QKD_WIRE_A)) TH_LOG("B reached A after insmod");
	s = qkd_wire_sniffed(&w);
	EXPECT_EQ(0, s.echo) TH_LOG("%d ICMP echoes in clear after insmod", s.echo);

	/* The administrator lifts the block at both ends: clear pings cross. */
	EXPECT_EQ(0, qkd_wire_sh(w.ns_a, "ip xfrm policy flush"));
	EXPECT_EQ(0, qkd_wire_sh(w.ns_b, "ip xfrm policy flush"));
	EXPECT_TRUE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("no clear ping once unblocked");
	s = qkd_wire_sniffed(&w);
	EXPECT_LT(0, s.reply);
	qkd_wire_down(&w);
}
