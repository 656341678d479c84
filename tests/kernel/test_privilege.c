// SPDX-License-Identifier: GPL-2.0-only
/*
 * Privilege: every genl command needs CAP_NET_ADMIN in the initial user
 * namespace (GENL_ADMIN_PERM), so it fails with EPERM for nobody, for root
 * without CAP_NET_ADMIN, for a socket used after its opener dropped
 * privilege, and from inside a user namespace (even as its root). Joining
 * the events group needs CAP_NET_ADMIN over the netns's own user namespace
 * (Documentation/abi.md): denied to the first three, allowed to the owner of
 * a user+net namespace for that namespace's (empty) store. /dev/qkd is 0600
 * root:root; reading keys is gated by the file permissions only.
 */
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>

#include "qkd_test.h"

#define KS	32

FIXTURE(priv) {
	struct qkd_nl nl;
	uint8_t sid[QKD_STREAM_ID_LEN];
	int kmsg;
};

FIXTURE_SETUP(priv)
{
	int err;

	if (geteuid() != 0)
		QKD_SKIP_SETUP("needs root");
	err = qkd_enter_test_netns();
	ASSERT_EQ(0, err);
	err = qkd_nl_open(&self->nl);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	qkd_sid(self->sid, 1);
	mk_link_stream(_metadata, &self->nl, 1, self->sid, KS);
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 5, KS, 1));
	self->kmsg = qkd_kmsg_open();
}

FIXTURE_TEARDOWN(priv)
{
	QKD_TEARDOWN_BEGIN();
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->kmsg >= 0)
		close(self->kmsg);
	qkd_nl_close(&self->nl);
}

/* ---------------------------------------------------- the commands tried */

enum {
	T_LINK_NEW, T_LINK_DEL, T_LINK_GET, T_LINK_DUMP, T_LINK_SET,
	T_STREAM_NEW, T_STREAM_DEL, T_STREAM_GET, T_STREAM_DUMP, T_STREAM_SET,
	T_KEY_ADD, T_KEY_FLUSH, T_STATUS_GET, T_JOIN_EVENTS, T_DEV_OPEN, T_N
};

static const char *const t_name[T_N] = {
	"LINK_NEW", "LINK_DEL", "LINK_GET", "LINK_GET dump", "LINK_SET",
	"STREAM_NEW", "STREAM_DEL", "STREAM_GET", "STREAM_GET dump",
	"STREAM_SET", "KEY_ADD", "KEY_FLUSH", "STATUS_GET", "join events",
	"open /dev/qkd",
};

/* What a child found: per attempt 0 or -errno; status is why it gave up. */
struct tries {
	int res[T_N];
	int setup_err;
	char why[128];
};

/* Every command with valid arguments that would succeed for root. */
static void try_all(struct qkd_nl *nl, const uint8_t *sid, struct tries *t)
{
	uint8_t sid2[QKD_STREAM_ID_LEN], key[KS] = { 0 };
	int fd;

	qkd_sid(sid2, 2);
	t->res[T_LINK_NEW] = qkd_link_new(nl, 2, "l2", QKD_LINK_ROLE_INITIATOR, NULL);
	t->res[T_LINK_GET] = qkd_link_get(nl, 1, NULL);
	t->res[T_LINK_DUMP] = qkd_link_dump(nl);
	t->res[T_LINK_SET] = qkd_link_set(nl, 1, QKD_LINK_STATE_UP);
	t->res[T_STREAM_NEW] = qkd_stream_new(nl, sid2, 1, KS, QKD_OMIT, QKD_OMIT);
	t->res[T_STREAM_GET] = qkd_stream_get(nl, sid, NULL);
	t->res[T_STREAM_DUMP] = qkd_stream_dump(nl, 0);
	t->res[T_STREAM_SET] = qkd_stream_set(nl, sid, 100, 1);
	t->res[T_KEY_ADD] = qkd_key_add(nl, sid, 5, key, sizeof(key));
	t->res[T_STATUS_GET] = qkd_status(nl, NULL);
	t->res[T_KEY_FLUSH] = qkd_key_flush(nl, sid);
	t->res[T_STREAM_DEL] = qkd_stream_del(nl, sid);
	t->res[T_LINK_DEL] = qkd_link_del(nl, 1);
	t->res[T_JOIN_EVENTS] = qkd_nl_join_events(nl);
	fd = qkd_dev_open();
	t->res[T_DEV_OPEN] = fd < 0 ? fd : 0;
	if (fd >= 0)
		close(fd);
}

enum how {
	AS_NOBODY,		/* setuid 65534 */
	AS_ROOT_NO_NET_ADMIN,	/* uid 0, CAP_NET_ADMIN dropped (capset) */
	AS_ROOT_ONLY_NET_ADMIN,	/* uid 0, every capability but CAP_NET_ADMIN dropped */
	SOCKET_THEN_NOBODY,	/* socket opened as root, used as nobody */
	USERNS_NOBODY,		/* nobody, in its own user + network namespace */
	USERNS_ROOT,		/* root, in a new user + network namespace */
};

static int set_caps(uint64_t keep)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct d[2];
	int i;

	if (syscall(SYS_capget, &hdr, d))
		return -errno;
	for (i = 0; i < 2; i++) {
		uint32_t k = (uint32_t)(keep >> (32 * i));

		d[i].effective &= k;
		d[i].permitted &= k;
		d[i].inheritable &= k;
	}
	if (syscall(SYS_capset, &hdr, d))
		return -errno;
	return 0;
}

static int write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	close(fd);
	return n == (ssize_t)strlen(s) ? 0 : -errno;
}

/* Enter a user namespace (and a network namespace) mapping 0 to @outer. */
static int enter_userns(unsigned int outer, char *why, size_t len)
{
	char map[64];
	int err;

	/* after a setuid, /proc/self/ belongs to root unless dumpable again */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET)) {
		snprintf(why, len, "unshare(CLONE_NEWUSER|CLONE_NEWNET): %s",
			 strerror(errno));
		return -errno;
	}
	snprintf(map, sizeof(map), "0 %u 1\n", outer);
	err = write_file("/proc/self/setgroups", "deny");
	if (!err)
		err = write_file("/proc/self/uid_map", map);
	if (!err)
		err = write_file("/proc/self/gid_map", map);
	if (err) {
		snprintf(why, len, "uid/gid map: %s", strerror(-err));
		return err;
	}
	return 0;
}

static int child_try(enum how how, const uint8_t *sid, struct tries *t)
{
	struct qkd_nl nl;
	int err = 0;

	memset(&nl, 0, sizeof(nl));
	switch (how) {
	case AS_NOBODY:
		err = qkd_become_nobody();
		break;
	case AS_ROOT_NO_NET_ADMIN:
		err = set_caps(~(1ULL << CAP_NET_ADMIN));
		break;
	case AS_ROOT_ONLY_NET_ADMIN:
		err = set_caps(1ULL << CAP_NET_ADMIN);
		break;
	case SOCKET_THEN_NOBODY:
		err = qkd_nl_open(&nl);
		if (!err)
			err = qkd_become_nobody();
		break;
	case USERNS_NOBODY:
		err = qkd_become_nobody();
		if (!err)
			err = enter_userns(QKD_NOBODY, t->why, sizeof(t->why));
		if (err) {
			t->setup_err = err;
			return 4;
		}
		break;
	case USERNS_ROOT:
		err = enter_userns(0, t->why, sizeof(t->why));
		if (err) {
			t->setup_err = err;
			return 4;
		}
		break;
	}
	if (err) {
		t->setup_err = err;
		snprintf(t->why, sizeof(t->why), "dropping privilege: %s", strerror(-err));
		return 2;
	}
	if (!nl.sk) {
		err = qkd_nl_open(&nl);
		if (err) {
			t->setup_err = err;
			snprintf(t->why, sizeof(t->why),
				 "genl family not resolvable here: %s", strerror(-err));
			return 3;
		}
	}
	try_all(&nl, sid, t);
	qkd_nl_close(&nl);
	return 0;
}

static struct tries *run_child(struct __test_metadata *_metadata, enum how how,
			       const uint8_t *sid)
{
	struct tries *t = mmap(NULL, sizeof(*t), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pid;
	int rc, i;

	if (t == MAP_FAILED)
		return NULL;
	memset(t, 0, sizeof(*t));
	for (i = 0; i < T_N; i++)
		t->res[i] = 1;	/* not tried */
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		_exit(child_try(how, sid, t));
	rc = qkd_wait(pid);
	if (rc == 4) {
		TH_LOG("user namespace unavailable: %s", t->why);
		t->setup_err = 4;
		return t;
	}
	if (rc)
		TH_LOG("child %d failed (%d): %s", how, rc, t->why);
	return rc ? NULL : t;
}

/* Every command EPERM, the group join EPERM, and the node untouched. */
static void check_denied(struct __test_metadata *_metadata, struct qkd_nl *nl,
			 enum how how, const uint8_t *sid, int dev_open_err,
			 bool same_netns, int join_want)
{
	struct qkd_snap before, after;
	struct tries *t;
	int i;

	ASSERT_EQ(0, qkd_snap_take(nl, &before));
	t = run_child(_metadata, how, sid);
	ASSERT_NE(NULL, t);
	if (t->setup_err == 4)
		SKIP(return, "unprivileged user namespaces not available");
	for (i = 0; i < T_JOIN_EVENTS; i++)
		EXPECT_EQ(-EPERM, t->res[i])
			TH_LOG("%s: got %d (%s), want EPERM", t_name[i], t->res[i],
			       strerror(-t->res[i]));
	EXPECT_EQ(join_want, t->res[T_JOIN_EVENTS])
		TH_LOG("joining the events group: got %d (%s), want %d",
		       t->res[T_JOIN_EVENTS], strerror(-t->res[T_JOIN_EVENTS]),
		       join_want);
	if (dev_open_err != 1)
		EXPECT_EQ(dev_open_err, t->res[T_DEV_OPEN])
			TH_LOG("open %s: got %d (%s), want %d", QKD_DEV_PATH,
			       t->res[T_DEV_OPEN], strerror(-t->res[T_DEV_OPEN]),
			       dev_open_err);
	if (same_netns) {
		ASSERT_EQ(0, qkd_snap_take(nl, &after));
		EXPECT_EQ(NULL, qkd_snap_diff(&before, &after))
			TH_LOG("an unprivileged attempt changed the node's %s",
			       qkd_snap_diff(&before, &after));
		qkd_snap_free(&after);
	}
	qkd_snap_free(&before);
	munmap(t, sizeof(*t));
}

static bool have_dev(void)
{
	return access(QKD_DEV_PATH, F_OK) == 0;
}

TEST_F(priv, nobody_denied)
{
	check_denied(_metadata, &self->nl, AS_NOBODY, self->sid,
		     have_dev() ? -EACCES : 1, true, -EPERM);
}

TEST_F(priv, root_without_cap_net_admin_denied)
{
	/* still uid 0 and CAP_SYS_ADMIN etc.: only CAP_NET_ADMIN counts */
	check_denied(_metadata, &self->nl, AS_ROOT_NO_NET_ADMIN, self->sid, 1, true,
		     -EPERM);
}

TEST_F(priv, socket_opened_by_root_used_by_nobody_denied)
{
	check_denied(_metadata, &self->nl, SOCKET_THEN_NOBODY, self->sid,
		     have_dev() ? -EACCES : 1, true, -EPERM);
}

TEST_F(priv, userns_nobody_denied)
{
	/* its own netns's events: allowed, see the top of this file */
	check_denied(_metadata, &self->nl, USERNS_NOBODY, self->sid,
		     have_dev() ? -EACCES : 1, false, 0);
	/* and the caller's node was not touched either */
	EXPECT_EQ(5, qkd_stored(&self->nl, self->sid));
	EXPECT_EQ(0, qkd_link_get(&self->nl, 1, NULL));
}

TEST_F(priv, userns_root_denied)
{
	check_denied(_metadata, &self->nl, USERNS_ROOT, self->sid, 1, false, 0);
	EXPECT_EQ(5, qkd_stored(&self->nl, self->sid));
}

/* Positive control: CAP_NET_ADMIN alone (uid 0, no other capability) works. */
TEST_F(priv, cap_net_admin_alone_suffices)
{
	struct tries *t = run_child(_metadata, AS_ROOT_ONLY_NET_ADMIN, self->sid);
	int i;

	ASSERT_NE(NULL, t);
	for (i = 0; i < T_DEV_OPEN; i++)
		EXPECT_EQ(0, t->res[i]) TH_LOG("%s with CAP_NET_ADMIN: got %d (%s)",
					       t_name[i], t->res[i], strerror(-t->res[i]));
	/* the child deleted the link, and with it the stream */
	EXPECT_EQ(-ENOENT, qkd_link_get(&self->nl, 1, NULL));
	EXPECT_EQ(0, qkd_link_get(&self->nl, 2, NULL));
	munmap(t, sizeof(*t));
}

/* ------------------------------------------------------------- /dev/qkd */

TEST_F(priv, dev_mode_0600_root)
{
	struct stat st;

	if (!have_dev())
		SKIP(return, "no %s", QKD_DEV_PATH);
	ASSERT_EQ(0, stat(QKD_DEV_PATH, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(0600, st.st_mode & 07777) TH_LOG("mode %o", st.st_mode & 07777);
	EXPECT_EQ(0, st.st_uid);
	EXPECT_EQ(0, st.st_gid);
}

static int child_open_as_nobody(void)
{
	static const int modes[] = { O_RDWR, O_RDONLY, O_WRONLY };
	size_t i;

	CHILD_CHECK(qkd_become_nobody() == 0, "setuid nobody");
	for (i = 0; i < 3; i++) {
		int fd = open(QKD_DEV_PATH, modes[i] | O_CLOEXEC);

		CHILD_CHECK(fd < 0 && errno == EACCES, "open mode %d: fd %d errno %d (%s)",
			    modes[i], fd, errno, strerror(errno));
	}
	return 0;
}

TEST_F(priv, dev_open_denied_for_nobody)
{
	pid_t pid;

	if (!have_dev())
		SKIP(return, "no %s", QKD_DEV_PATH);
	pid = fork();
	if (pid == 0)
		_exit(child_open_as_nobody());
	ASSERT_EQ(0, qkd_wait(pid));
}

/* An fd opened by root and inherited by nobody delivers keys: no capability. */
static int child_use_fd(int fd, const uint8_t *sid)
{
	struct qkd_stream_status st;
	struct qkd_key_request r;
	uint8_t buf[KS];
	int err;

	CHILD_CHECK(qkd_become_nobody() == 0, "setuid nobody");
	err = qkd_dev_status(fd, sid, &st);
	CHILD_CHECK(err == 0, "STREAM_STATUS as nobody: %d", err);
	CHILD_CHECK(st.stored_key_count == 5, "%u", st.stored_key_count);
	err = qkd_get_key(fd, sid, buf, KS, &r);
	CHILD_CHECK(err == 0, "GET_KEY as nobody: %d", err);
	CHILD_CHECK(r.index == 0 && qkd_pattern_ok(buf, KS, 0, 1), "index %llu",
		    (unsigned long long)r.index);
	err = qkd_get_key_at(fd, sid, 3, buf, KS, &r);
	CHILD_CHECK(err == 0, "GET_KEY_BY_ID as nobody: %d", err);
	CHILD_CHECK(qkd_pattern_ok(buf, KS, 3, 1), "key bytes");
	return 0;
}

TEST_F(priv, dev_fd_of_root_works_for_nobody)
{
	int fd = qkd_dev_open();
	pid_t pid;

	if (fd == -ENOENT)
		SKIP(return, "no %s", QKD_DEV_PATH);
	ASSERT_LE(0, fd);
	pid = fork();
	if (pid == 0)
		_exit(child_use_fd(fd, self->sid));
	ASSERT_EQ(0, qkd_wait(pid));
	EXPECT_EQ(3, qkd_stored(&self->nl, self->sid));
	close(fd);
}

/* A node made accessible to nobody by its mode opens and delivers. */
static int child_open_node(const char *path, const uint8_t *sid)
{
	uint8_t buf[KS];
	int fd, err;

	CHILD_CHECK(qkd_become_nobody() == 0, "setuid nobody");
	fd = open(path, O_RDWR | O_CLOEXEC);
	CHILD_CHECK(fd >= 0, "open %s as nobody: %s", path, strerror(errno));
	err = qkd_get_key(fd, sid, buf, KS, NULL);
	CHILD_CHECK(err == 0, "GET_KEY: %d", err);
	close(fd);
	return 0;
}

TEST_F(priv, dev_gated_by_file_mode_only)
{
	char path[64];
	struct stat st;
	pid_t pid;
	int rc;

	if (!have_dev())
		SKIP(return, "no %s", QKD_DEV_PATH);
	ASSERT_EQ(0, stat(QKD_DEV_PATH, &st));
	snprintf(path, sizeof(path), "/dev/qkd-test-%d", getpid());
	if (mknod(path, S_IFCHR | 0600, st.st_rdev))
		SKIP(return, "mknod %s: %s", path, strerror(errno));
	ASSERT_EQ(0, chown(path, 0, QKD_NOBODY));
	ASSERT_EQ(0, chmod(path, 0660));
	pid = fork();
	if (pid == 0) {
		/* nobody's group is nobody/nogroup 65534 */
		_exit(child_open_node(path, self->sid));
	}
	rc = qkd_wait(pid);
	unlink(path);
	ASSERT_EQ(0, rc);
	EXPECT_EQ(4, qkd_stored(&self->nl, self->sid));
}

QKD_TEST_MAIN
