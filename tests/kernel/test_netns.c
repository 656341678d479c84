// SPDX-License-Identifier: GPL-2.0-only
/*
 * Network namespaces and concurrency:
 *  - two nodes (netns) are isolated: objects, keys, events, /dev/qkd files
 *    (bound to the opener's netns for their whole life, keeping it alive);
 *  - a netns deleted with keys in it leaves no trace and no kernel warning;
 *  - concurrent readers: each index is delivered exactly once overall.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "qkd_test.h"

#define KS	32

FIXTURE(ns) {
	struct qkd_nl nl;
	uint8_t sid[QKD_STREAM_ID_LEN];
	int kmsg;
	bool have_dev;
};

FIXTURE_SETUP(ns)
{
	int err;

	if (geteuid() != 0)
		QKD_SKIP_SETUP("needs root");
	err = qkd_new_netns();
	ASSERT_EQ(0, err);
	err = qkd_nl_open(&self->nl);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	self->have_dev = access(QKD_DEV_PATH, F_OK) == 0;
	qkd_sid(self->sid, 1);
	mk_link_stream(_metadata, &self->nl, 1, self->sid, KS);
	self->kmsg = qkd_kmsg_open();
}

FIXTURE_TEARDOWN(ns)
{
	QKD_TEARDOWN_BEGIN();
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->kmsg >= 0)
		close(self->kmsg);
	qkd_nl_close(&self->nl);
}

#define NEED_DEV() do { \
	if (!self->have_dev) \
		SKIP(return, "no %s", QKD_DEV_PATH); \
} while (0)

/* Parent/child rendezvous over two pipes. */
struct sync {
	int to_parent[2], to_child[2];
};

static int sync_init(struct sync *s)
{
	if (pipe(s->to_parent) || pipe(s->to_child))
		return -errno;
	return 0;
}

static int sync_send(int fd, char c)
{
	return write(fd, &c, 1) == 1 ? 0 : -1;
}

static char sync_recv(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c = 0;

	if (poll(&p, 1, 60000) != 1 || read(fd, &c, 1) != 1)
		return 0;
	return c;
}

/* ---------------------------------------------------------------- isolation */

static int child_isolated(const uint8_t *sid, struct sync *s, bool dev)
{
	struct qkd_nl nl;
	struct qkd_obj o;
	struct qkd_stream_status st;
	struct qkd_key_request r;
	uint8_t buf[64];
	int err, fd = -1;

	CHILD_CHECK(qkd_new_netns() == 0, "unshare");
	CHILD_CHECK(qkd_nl_open(&nl) == 0, "genl in a new netns");
	/* nothing of the parent's node is visible */
	err = qkd_stream_get(&nl, sid, NULL);
	CHILD_CHECK(err == -ENOENT, "STREAM_GET of the other netns's stream: %d", err);
	err = qkd_link_get(&nl, 1, NULL);
	CHILD_CHECK(err == -ENOENT, "LINK_GET: %d", err);
	err = qkd_link_get_name(&nl, "l1", NULL);
	CHILD_CHECK(err == -ENOENT, "LINK_GET by name: %d", err);
	CHILD_CHECK(qkd_link_dump(&nl) == 0 && nl.r.n == 0, "link dump: %d links", nl.r.n);
	CHILD_CHECK(qkd_stream_dump(&nl, 0) == 0 && nl.r.n == 0, "stream dump: %d", nl.r.n);
	CHILD_CHECK(qkd_status(&nl, &o) == 0, "status");
	CHILD_CHECK(qkd_obj_u(&o, QKD_A_STATUS_LINKS) == 0 &&
		    qkd_obj_u(&o, QKD_A_STATUS_STREAMS) == 0 &&
		    qkd_obj_u(&o, QKD_T_STATS(KEYS_ADDED)) == 0 &&
		    qkd_obj_u(&o, QKD_T_STATS(KEYS_STORED)) == 0, "status of a fresh netns");
	err = qkd_key_add_pattern(&nl, sid, 10, 1, KS, 2);
	CHILD_CHECK(err == -ENOENT, "KEY_ADD: %d", err);
	err = qkd_key_flush(&nl, sid);
	CHILD_CHECK(err == -ENOENT, "KEY_FLUSH: %d", err);
	err = qkd_stream_set(&nl, sid, 10, QKD_OMIT);
	CHILD_CHECK(err == -ENOENT, "STREAM_SET: %d", err);
	err = qkd_stream_del(&nl, sid);
	CHILD_CHECK(err == -ENOENT, "STREAM_DEL: %d", err);
	err = qkd_link_del(&nl, 1);
	CHILD_CHECK(err == -ENOENT, "LINK_DEL: %d", err);
	err = qkd_link_set(&nl, 1, QKD_LINK_STATE_UP);
	CHILD_CHECK(err == -ENOENT, "LINK_SET: %d", err);
	if (dev) {
		fd = qkd_dev_open();
		CHILD_CHECK(fd >= 0, "open: %d", fd);
		err = qkd_dev_status(fd, sid, &st);
		CHILD_CHECK(err == -ENOENT, "STREAM_STATUS: %d", err);
		err = qkd_get_key(fd, sid, buf, sizeof(buf), NULL);
		CHILD_CHECK(err == -ENOENT, "GET_KEY: %d", err);
		err = qkd_get_key_at(fd, sid, 0, buf, sizeof(buf), NULL);
		CHILD_CHECK(err == -ENOENT, "GET_KEY_BY_ID: %d", err);
		err = qkd_set_poll(fd, sid);
		CHILD_CHECK(err == -ENOENT, "SET_POLL_STREAM: %d", err);
	}
	/* the same link id/name and stream ID, with other keys */
	err = qkd_link_new(&nl, 1, "l1", QKD_LINK_ROLE_RESPONDER, NULL);
	CHILD_CHECK(err == 0, "LINK_NEW: %d", err);
	err = qkd_stream_new(&nl, sid, 1, 64, 50, QKD_OMIT);
	CHILD_CHECK(err == 0, "STREAM_NEW of the same ID: %d", err);
	err = qkd_key_add_pattern(&nl, sid, 100, 5, 64, 2);
	CHILD_CHECK(err == 0, "KEY_ADD: %d", err);
	if (dev) {
		err = qkd_get_key(fd, sid, buf, sizeof(buf), &r);
		CHILD_CHECK(err == 0, "GET_KEY: %d", err);
		CHILD_CHECK(r.index == 100 && r.key_len == 64 &&
			    qkd_pattern_ok(buf, 64, 100, 2), "this netns's key");
	}
	CHILD_CHECK(sync_send(s->to_parent[1], 'r') == 0, "sync");
	CHILD_CHECK(sync_recv(s->to_child[0]) == 'g', "sync");
	/* the parent's activity did not reach here */
	CHILD_CHECK(qkd_stream_get(&nl, sid, &o) == 0, "STREAM_GET");
	CHILD_CHECK(qkd_obj_u(&o, QKD_A_STREAM_STORED_KEYS) == (dev ? 4 : 5),
		    "stored %ju", (uintmax_t)qkd_obj_u(&o, QKD_A_STREAM_STORED_KEYS));
	CHILD_CHECK(qkd_obj_u(&o, QKD_A_STREAM_KEY_SIZE) == 64, "key size");
	CHILD_CHECK(qkd_status(&nl, &o) == 0, "status");
	CHILD_CHECK(qkd_obj_u(&o, QKD_T_STATS(KEYS_ADDED)) == 5, "added in this netns");
	return 0;
}

TEST_F(ns, isolation)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_key_request r;
	struct qkd_obj o;
	struct sync s;
	uint8_t buf[64];
	pid_t pid;
	int fd = -1;

	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 10, KS, 1));
	ASSERT_EQ(0, sync_init(&s));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_isolated(self->sid, &s, self->have_dev));
	ASSERT_EQ('r', sync_recv(s.to_parent[0])) {
		TH_LOG("child failed: exit %d", qkd_wait(pid));
	}
	/* this node: untouched by the other's same-named objects */
	ASSERT_NL_OK(nl, qkd_stream_get(nl, self->sid, &o));
	EXPECT_EQ(KS, qkd_obj_u(&o, QKD_A_STREAM_KEY_SIZE));
	EXPECT_EQ(10, qkd_obj_u(&o, QKD_A_STREAM_STORED_KEYS));
	EXPECT_EQ(10, qkd_obj_u(&o, QKD_A_STREAM_NEXT_INDEX));
	ASSERT_NL_OK(nl, qkd_link_get(nl, 1, &o));
	EXPECT_EQ(QKD_LINK_ROLE_INITIATOR, qkd_obj_u(&o, QKD_A_LINK_ROLE));
	ASSERT_NL_OK(nl, qkd_status(nl, &o));
	EXPECT_EQ(1, qkd_obj_u(&o, QKD_A_STATUS_LINKS));
	EXPECT_EQ(1, qkd_obj_u(&o, QKD_A_STATUS_STREAMS));
	EXPECT_EQ(10, qkd_obj_u(&o, QKD_T_STATS(KEYS_ADDED)));
	if (self->have_dev) {
		fd = qkd_dev_open();
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, qkd_get_key(fd, self->sid, buf, sizeof(buf), &r));
		EXPECT_EQ(0, r.index);
		EXPECT_EQ(KS, r.key_len);
		EXPECT_TRUE(qkd_pattern_ok(buf, KS, 0, 1));
		close(fd);
	}
	/* more activity here, then the child checks its node again */
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 10, 3, KS, 1));
	ASSERT_NL_OK(nl, qkd_key_flush(nl, self->sid));
	ASSERT_EQ(0, sync_send(s.to_child[1], 'g'));
	ASSERT_EQ(0, qkd_wait(pid));
	/* the child's netns is gone; this one is whole */
	ASSERT_NL_OK(nl, qkd_status(nl, &o));
	check_counters(_metadata, &o, "status", 13, self->have_dev ? 1 : 0,
		       self->have_dev ? 12 : 13, 0, 0);
}

/* ------------------------------------------------- /dev/qkd bound to netns */

static int child_dev_binding(int fd_a, const uint8_t *sid)
{
	struct qkd_stream_status st;
	struct qkd_key_request r;
	uint8_t sid_b[QKD_STREAM_ID_LEN], buf[64];
	struct qkd_nl nl;
	int fd_b, err;

	qkd_sid(sid_b, 2);
	CHILD_CHECK(qkd_new_netns() == 0, "unshare");
	CHILD_CHECK(qkd_nl_open(&nl) == 0, "genl");
	CHILD_CHECK(qkd_link_new(&nl, 1, "b", QKD_LINK_ROLE_RESPONDER, NULL) == 0, "link");
	CHILD_CHECK(qkd_stream_new(&nl, sid, 1, 64, QKD_OMIT, QKD_OMIT) == 0, "stream");
	CHILD_CHECK(qkd_stream_new(&nl, sid_b, 1, KS, QKD_OMIT, QKD_OMIT) == 0, "stream b");
	CHILD_CHECK(qkd_key_add_pattern(&nl, sid, 0, 3, 64, 2) == 0, "push");
	CHILD_CHECK(qkd_key_add_pattern(&nl, sid_b, 0, 3, KS, 3) == 0, "push b");
	fd_b = qkd_dev_open();
	CHILD_CHECK(fd_b >= 0, "open in netns B: %d", fd_b);

	/* fd_a was opened in A: it still sees A, from a process in B */
	err = qkd_dev_status(fd_a, sid, &st);
	CHILD_CHECK(err == 0 && st.key_size == KS && st.stored_key_count == 5,
		    "fd of A: status err %d key size %u stored %u", err, st.key_size,
		    st.stored_key_count);
	err = qkd_dev_status(fd_a, sid_b, &st);
	CHILD_CHECK(err == -ENOENT, "fd of A sees B's stream: %d", err);
	err = qkd_get_key(fd_a, sid, buf, sizeof(buf), &r);
	CHILD_CHECK(err == 0 && r.index == 0 && r.key_len == KS &&
		    qkd_pattern_ok(buf, KS, 0, 1), "GET_KEY through fd of A: %d", err);
	err = qkd_set_poll(fd_a, sid_b);
	CHILD_CHECK(err == -ENOENT, "SET_POLL_STREAM of B's stream on fd of A: %d", err);

	/* fd_b sees B */
	err = qkd_dev_status(fd_b, sid, &st);
	CHILD_CHECK(err == 0 && st.key_size == 64 && st.stored_key_count == 3,
		    "fd of B: status err %d key size %u", err, st.key_size);
	err = qkd_get_key(fd_b, sid, buf, sizeof(buf), &r);
	CHILD_CHECK(err == 0 && r.index == 0 && r.key_len == 64 &&
		    qkd_pattern_ok(buf, 64, 0, 2), "GET_KEY through fd of B: %d", err);
	err = qkd_get_key(fd_b, sid_b, buf, sizeof(buf), &r);
	CHILD_CHECK(err == 0 && qkd_pattern_ok(buf, KS, 0, 3), "GET_KEY B: %d", err);
	close(fd_b);
	return 0;
}

TEST_F(ns, dev_bound_to_opener_netns)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_stream_status st;
	int fd;
	pid_t pid;

	NEED_DEV();
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 5, KS, 1));
	fd = qkd_dev_open();
	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_dev_binding(fd, self->sid));
	ASSERT_EQ(0, qkd_wait(pid));
	/* the child took index 0 of A through A's file, and nothing else */
	ASSERT_EQ(0, qkd_dev_status(fd, self->sid, &st));
	EXPECT_EQ(4, st.stored_key_count);
	EXPECT_EQ(4, qkd_stored(nl, self->sid));
	close(fd);
}

/* ------------------------------------------------ netns teardown with keys */

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

/* Wait up to 10 s for the module's refcount to come back to @want. */
static int wait_refcnt(int want)
{
	int i, n = read_refcnt();

	for (i = 0; i < 100 && n != want; i++) {
		qkd_msleep(100);
		n = read_refcnt();
	}
	return n;
}

/* A busy node, left behind for the netns teardown to clean. */
static int child_busy_node(int round, bool dev)
{
	struct qkd_nl nl, ev;
	uint8_t sid[QKD_STREAM_ID_LEN], buf[QKD_KEY_SIZE_MAX];
	int l, s, fd = -1, err;

	CHILD_CHECK(qkd_new_netns() == 0, "unshare");
	CHILD_CHECK(qkd_nl_open(&nl) == 0, "genl");
	CHILD_CHECK(qkd_nl_open(&ev) == 0 && qkd_nl_join_events(&ev) == 0, "events");
	if (dev) {
		fd = qkd_dev_open();
		CHILD_CHECK(fd >= 0, "open");
	}
	for (l = 1; l <= 3; l++) {
		char name[16];

		snprintf(name, sizeof(name), "busy%d", l);
		err = qkd_link_new(&nl, l, name, QKD_LINK_ROLE_INITIATOR, "peer");
		CHILD_CHECK(err == 0, "link %d: %d", l, err);
		CHILD_CHECK(qkd_link_set(&nl, l, QKD_LINK_STATE_UP) == 0, "up");
		for (s = 0; s < 3; s++) {
			uint32_t ks = 16 << s;

			qkd_sid(sid, l * 10 + s);
			err = qkd_stream_new(&nl, sid, l, ks, QKD_OMIT, 5);
			CHILD_CHECK(err == 0, "stream: %d", err);
			err = qkd_key_add_pattern(&nl, sid, round, 200 + 100 * s, ks, 1);
			CHILD_CHECK(err == 0, "push: %d", err);
			if (dev) {
				CHILD_CHECK(qkd_get_key(fd, sid, buf, sizeof(buf), NULL) == 0, "get");
				if (s == 0)
					CHILD_CHECK(qkd_set_poll(fd, sid) == 0, "poll");
			}
		}
	}
	/* leave everything as it is: exit closes fd and sockets, the netns dies */
	return 0;
}

TEST_F_TIMEOUT(ns, netns_deleted_with_keys, 120)
{
	struct qkd_obj before, after;
	int base, round, n;

	base = read_refcnt();
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 7, KS, 1));
	ASSERT_NL_OK(&self->nl, qkd_status(&self->nl, &before));
	for (round = 0; round < 5; round++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(child_busy_node(round, self->have_dev));
		ASSERT_EQ(0, qkd_wait(pid)) TH_LOG("round %d", round);
	}
	/* the netns teardown runs in a workqueue: give it time */
	n = wait_refcnt(base);
	EXPECT_EQ(base, n) TH_LOG("module refcount %d, was %d before the netns came and went", n, base);
	qkd_msleep(500);
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	/* this node is untouched */
	ASSERT_NL_OK(&self->nl, qkd_status(&self->nl, &after));
	EXPECT_TRUE(qkd_obj_eq(&before, &after)) TH_LOG("other netns changed this node's status");
	EXPECT_EQ(7, qkd_stored(&self->nl, self->sid));
}

static int child_send_dev_fd(int sock, const uint8_t *sid)
{
	struct qkd_nl nl;
	int fd;

	CHILD_CHECK(qkd_new_netns() == 0, "unshare");
	CHILD_CHECK(qkd_nl_open(&nl) == 0, "genl");
	CHILD_CHECK(qkd_link_new(&nl, 1, "gone", QKD_LINK_ROLE_INITIATOR, NULL) == 0, "link");
	CHILD_CHECK(qkd_stream_new(&nl, sid, 1, 64, QKD_OMIT, QKD_OMIT) == 0, "stream");
	CHILD_CHECK(qkd_key_add_pattern(&nl, sid, 50, 4, 64, 5) == 0, "push");
	fd = qkd_dev_open();
	CHILD_CHECK(fd >= 0, "open");
	CHILD_CHECK(qkd_send_fd(sock, fd) == 0, "send fd");
	return 0;
}

/* The last process of a netns exits; an open /dev/qkd keeps its node alive. */
TEST_F(ns, dev_file_keeps_netns_alive)
{
	struct qkd_stream_status st;
	struct qkd_key_request r;
	uint8_t buf[64];
	int sv[2], fd, base, n;
	pid_t pid;

	NEED_DEV();
	base = read_refcnt();
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_DGRAM, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_send_dev_fd(sv[1], self->sid));
	fd = qkd_recv_fd(sv[0]);
	ASSERT_EQ(0, qkd_wait(pid));
	ASSERT_LE(0, fd);
	qkd_msleep(500);
	/* the child's netns has no process left, but the file holds it */
	ASSERT_EQ(0, qkd_dev_status(fd, self->sid, &st));
	EXPECT_EQ(64, st.key_size);
	EXPECT_EQ(4, st.stored_key_count);
	EXPECT_EQ(50, st.next_index);
	ASSERT_EQ(0, qkd_get_key(fd, self->sid, buf, sizeof(buf), &r));
	EXPECT_EQ(50, r.index);
	EXPECT_TRUE(qkd_pattern_ok(buf, 64, 50, 5));
	ASSERT_EQ(0, qkd_set_poll(fd, self->sid));
	EXPECT_EQ(POLLIN | POLLRDNORM, qkd_poll1(fd, 0));
	/* this netns's stream of the same ID is another one */
	EXPECT_EQ(0, qkd_stored(&self->nl, self->sid));
	EXPECT_EQ(KS, stream_u(_metadata, &self->nl, self->sid, QKD_A_STREAM_KEY_SIZE));
	close(fd);
	n = wait_refcnt(base);
	EXPECT_EQ(base, n) TH_LOG("module refcount %d after the last file closed, was %d", n, base);
	qkd_msleep(300);
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	close(sv[0]);
	close(sv[1]);
}

/* ------------------------------------------------------------------ events */

static int child_events(const uint8_t *sid, struct sync *s)
{
	struct qkd_nl nl, ev;
	int n;

	CHILD_CHECK(qkd_new_netns() == 0, "unshare");
	CHILD_CHECK(qkd_nl_open(&nl) == 0, "genl");
	CHILD_CHECK(qkd_nl_open(&ev) == 0, "genl");
	CHILD_CHECK(qkd_nl_join_events(&ev) == 0, "join");
	CHILD_CHECK(sync_send(s->to_parent[1], 'j') == 0, "sync");
	/* the parent makes events in its netns: none arrives here */
	CHILD_CHECK(sync_recv(s->to_child[0]) == 'd', "sync");
	n = qkd_ev_read(&ev, 300);
	CHILD_CHECK(n == 0, "%d events of the other netns arrived", n);
	/* events of this netns */
	CHILD_CHECK(qkd_link_new(&nl, 1, "l1", QKD_LINK_ROLE_INITIATOR, NULL) == 0, "link");
	CHILD_CHECK(qkd_stream_new(&nl, sid, 1, KS, QKD_OMIT, QKD_OMIT) == 0, "stream");
	CHILD_CHECK(qkd_key_add_pattern(&nl, sid, 0, 3, KS, 1) == 0, "push");
	CHILD_CHECK(qkd_link_set(&nl, 1, QKD_LINK_STATE_UP) == 0, "up");
	CHILD_CHECK(qkd_link_del(&nl, 1) == 0, "del");
	qkd_ev_read(&ev, 500);
	CHILD_CHECK(qkd_count(&ev, QKD_CMD_KEYS_ADDED_NTF) == 1, "own KEYS_ADDED");
	CHILD_CHECK(qkd_count(&ev, QKD_CMD_LINK_DEL_NTF) == 1, "own LINK_DEL");
	CHILD_CHECK(sync_send(s->to_parent[1], 'e') == 0, "sync");
	return 0;
}

TEST_F(ns, events_stay_in_their_netns)
{
	struct qkd_nl *nl = &self->nl, ev;
	struct sync s;
	pid_t pid;

	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	ASSERT_EQ(0, sync_init(&s));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(child_events(self->sid, &s));
	ASSERT_EQ('j', sync_recv(s.to_parent[0]));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 3, KS, 1));
	ASSERT_NL_OK(nl, qkd_link_set(nl, 1, QKD_LINK_STATE_UP));
	ASSERT_NL_OK(nl, qkd_stream_del(nl, self->sid));
	qkd_ev_read(&ev, 500);
	EXPECT_EQ(1, qkd_count(&ev, QKD_CMD_KEYS_ADDED_NTF));
	EXPECT_EQ(1, qkd_count(&ev, QKD_CMD_STREAM_DEL_NTF));
	ASSERT_EQ(0, sync_send(s.to_child[1], 'd'));
	ASSERT_EQ('e', sync_recv(s.to_parent[0]));
	ASSERT_EQ(0, qkd_wait(pid));
	EXPECT_EQ(0, qkd_ev_read(&ev, 300)) TH_LOG("events of the child's netns arrived here");
	qkd_nl_close(&ev);
}

/* ------------------------------------------------------------- concurrency */

#define RACE_KEYS	3000
#define RACE_PROCS	3
#define RACE_THREADS	2

struct race {
	atomic_int start;
	atomic_int push_done;
	atomic_ullong pushed;		/* keys pushed so far (indices 0..pushed-1) */
	atomic_uint count[RACE_KEYS];	/* deliveries per index */
	atomic_uint bad_bytes, bad_index, other_err, expired, by_id_ok;
	atomic_int last_err;
	uint8_t sid[QKD_STREAM_ID_LEN];
	bool by_id;			/* readers use GET_KEY_BY_ID */
	bool mixed;			/* half GET_KEY, half GET_KEY_BY_ID */
};

struct reader {
	struct race *r;
	int fd;
	int id;
};

static void record(struct race *r, const struct qkd_key_request *q,
		   const uint8_t *buf, uint64_t want)
{
	if (q->index >= RACE_KEYS || (want != UINT64_MAX && q->index != want)) {
		atomic_fetch_add(&r->bad_index, 1);
		return;
	}
	atomic_fetch_add(&r->count[q->index], 1);
	if (!qkd_pattern_ok(buf, KS, q->index, 1))
		atomic_fetch_add(&r->bad_bytes, 1);
}

/* GET_KEY until the pusher is done and the stream is empty. */
static void read_in_order(struct race *r, int fd)
{
	struct qkd_key_request q;
	uint8_t buf[KS];

	for (;;) {
		int err = qkd_get_key(fd, r->sid, buf, KS, &q);

		if (!err) {
			record(r, &q, buf, UINT64_MAX);
			continue;
		}
		if (err == -EAGAIN) {
			if (atomic_load(&r->push_done)) {
				err = qkd_get_key(fd, r->sid, buf, KS, &q);
				if (!err) {
					record(r, &q, buf, UINT64_MAX);
					continue;
				}
				if (err == -EAGAIN)
					return;
			} else {
				qkd_poll1(fd, 20);
				continue;
			}
		}
		atomic_store(&r->last_err, err);
		atomic_fetch_add(&r->other_err, 1);
		return;
	}
}

/* GET_KEY_BY_ID of every index, in order, racing the others. */
static void read_by_id(struct race *r, int fd, int id)
{
	struct qkd_key_request q;
	uint8_t buf[KS], kid[QKD_KEY_ID_LEN];
	uint64_t i = 0;

	while (i < RACE_KEYS) {
		int err;

		if (i >= atomic_load(&r->pushed)) {
			if (atomic_load(&r->push_done) && i >= atomic_load(&r->pushed))
				return;
			sched_yield();
			continue;
		}
		if (id & 1) {
			qkd_key_id_from_index(kid, r->sid, i);
			err = qkd_get_key_kid(fd, r->sid, kid, buf, KS, &q);
		} else {
			err = qkd_get_key_at(fd, r->sid, i, buf, KS, &q);
		}
		if (!err) {
			record(r, &q, buf, i);
			atomic_fetch_add(&r->by_id_ok, 1);
		} else if (err == -EKEYEXPIRED) {
			atomic_fetch_add(&r->expired, 1);
		} else {
			atomic_store(&r->last_err, err);
			atomic_fetch_add(&r->other_err, 1);
			return;
		}
		i++;
	}
}

static void *reader_thread(void *p)
{
	struct reader *rd = p;
	struct race *r = rd->r;

	while (!atomic_load(&r->start))
		sched_yield();
	if (r->by_id || (r->mixed && (rd->id & 2)))
		read_by_id(r, rd->fd, rd->id);
	else
		read_in_order(r, rd->fd);
	return NULL;
}

static int reader_process(struct race *r, int proc)
{
	struct reader rd[RACE_THREADS];
	pthread_t th[RACE_THREADS];
	int fd = qkd_dev_open(), t;

	CHILD_CHECK(fd >= 0, "open: %d", fd);
	CHILD_CHECK(qkd_set_poll(fd, r->sid) == 0, "SET_POLL_STREAM");
	for (t = 0; t < RACE_THREADS; t++) {
		rd[t] = (struct reader){ .r = r, .fd = fd, .id = proc * RACE_THREADS + t };
		CHILD_CHECK(pthread_create(&th[t], NULL, reader_thread, &rd[t]) == 0, "thread");
	}
	for (t = 0; t < RACE_THREADS; t++)
		pthread_join(th[t], NULL);
	close(fd);
	return 0;
}

static void run_race(struct __test_metadata *_metadata, struct qkd_nl *nl,
		     bool by_id, bool mixed, bool push_first)
{
	struct race *r = mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pid_t pids[RACE_PROCS];
	uint64_t done = 0, missing = 0, dup = 0, i;
	struct qkd_obj o;
	unsigned int seed = 1;
	uint8_t buf[KS];
	int p;

	ASSERT_NE(MAP_FAILED, r);
	memset(r, 0, sizeof(*r));
	qkd_sid(r->sid, 77);
	r->by_id = by_id;
	r->mixed = mixed;
	ASSERT_NL_OK(nl, qkd_stream_new(nl, r->sid, 1, KS, RACE_KEYS, QKD_OMIT));
	if (push_first) {
		ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, r->sid, 0, RACE_KEYS, KS, 1));
		atomic_store(&r->pushed, RACE_KEYS);
		atomic_store(&r->push_done, 1);
	}
	fflush(NULL);
	for (p = 0; p < RACE_PROCS; p++) {
		pids[p] = fork();
		ASSERT_LE(0, pids[p]);
		if (pids[p] == 0)
			_exit(reader_process(r, p));
	}
	atomic_store(&r->start, 1);
	while (!push_first && done < RACE_KEYS) {
		uint64_t n = 1 + rand_r(&seed) % 40;

		if (n > RACE_KEYS - done)
			n = RACE_KEYS - done;
		ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, r->sid, done, n, KS, 1));
		done += n;
		atomic_store(&r->pushed, done);
		if (rand_r(&seed) % 8 == 0)
			qkd_msleep(1);
	}
	atomic_store(&r->push_done, 1);
	for (p = 0; p < RACE_PROCS; p++)
		EXPECT_EQ(0, qkd_wait(pids[p])) TH_LOG("reader process %d", p);

	/* by-ID readers leave nothing; in-order ones may leave nothing either */
	{
		int fd = qkd_dev_open();
		struct qkd_key_request q;

		ASSERT_LE(0, fd);
		while (qkd_get_key(fd, r->sid, buf, KS, &q) == 0)
			record(r, &q, buf, UINT64_MAX);
		close(fd);
	}
	for (i = 0; i < RACE_KEYS; i++) {
		unsigned int c = atomic_load(&r->count[i]);

		if (c == 0 && missing++ < 5)
			TH_LOG("index %ju never delivered", (uintmax_t)i);
		if (c > 1 && dup++ < 5)
			TH_LOG("index %ju delivered %u times", (uintmax_t)i, c);
	}
	EXPECT_EQ(0, missing);
	EXPECT_EQ(0, dup);
	EXPECT_EQ(0, atomic_load(&r->bad_bytes));
	EXPECT_EQ(0, atomic_load(&r->bad_index));
	EXPECT_EQ(0, atomic_load(&r->other_err))
		TH_LOG("unexpected errno %d", atomic_load(&r->last_err));
	if (by_id) {
		/* every reader tried every index: one success, the rest expired */
		EXPECT_EQ(RACE_KEYS, atomic_load(&r->by_id_ok));
		EXPECT_EQ((uint64_t)RACE_KEYS * (RACE_PROCS * RACE_THREADS - 1),
			  atomic_load(&r->expired));
	}
	ASSERT_NL_OK(nl, qkd_stream_get(nl, r->sid, &o));
	check_counters(_metadata, &o, "stream", RACE_KEYS, RACE_KEYS, 0, 0, 0);
	munmap(r, sizeof(*r));
}

TEST_F_TIMEOUT(ns, concurrent_get_key, 300)
{
	NEED_DEV();
	run_race(_metadata, &self->nl, false, false, false);
}

TEST_F_TIMEOUT(ns, concurrent_get_key_prefilled, 300)
{
	NEED_DEV();
	run_race(_metadata, &self->nl, false, false, true);
}

TEST_F_TIMEOUT(ns, concurrent_get_key_by_id, 300)
{
	NEED_DEV();
	run_race(_metadata, &self->nl, true, false, true);
}

TEST_F_TIMEOUT(ns, concurrent_get_key_by_id_while_pushing, 300)
{
	NEED_DEV();
	run_race(_metadata, &self->nl, true, false, false);
}

TEST_F_TIMEOUT(ns, concurrent_mixed_while_pushing, 300)
{
	NEED_DEV();
	run_race(_metadata, &self->nl, false, true, false);
}

/* Readers racing a deletion: no key is lost or doubled in the accounting. */
static int reader_until_gone(const uint8_t *sid, atomic_uint *got)
{
	uint8_t buf[KS];
	int fd = qkd_dev_open(), err;

	CHILD_CHECK(fd >= 0, "open");
	for (;;) {
		err = qkd_get_key(fd, sid, buf, KS, NULL);
		if (!err) {
			atomic_fetch_add(got, 1);
			continue;
		}
		if (err == -EAGAIN) {
			sched_yield();
			continue;
		}
		CHILD_CHECK(err == -ENOENT, "GET_KEY while the stream goes: %d", err);
		break;
	}
	close(fd);
	return 0;
}

TEST_F_TIMEOUT(ns, delete_while_reading, 120)
{
	struct qkd_nl *nl = &self->nl;
	atomic_uint *got = mmap(NULL, sizeof(*got), PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	struct qkd_obj st;
	pid_t pids[4];
	int p;

	NEED_DEV();
	ASSERT_NE(MAP_FAILED, got);
	atomic_store(got, 0);
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 4000, KS, 1));
	for (p = 0; p < 4; p++) {
		pids[p] = fork();
		ASSERT_LE(0, pids[p]);
		if (pids[p] == 0)
			_exit(reader_until_gone(self->sid, got));
	}
	qkd_msleep(50);
	ASSERT_NL_OK(nl, qkd_link_del(nl, 1));
	for (p = 0; p < 4; p++)
		EXPECT_EQ(0, qkd_wait(pids[p]));
	ASSERT_NL_OK(nl, qkd_status(nl, &st));
	check_balance(_metadata, &st, "status");
	EXPECT_EQ(4000, qkd_obj_u(&st, QKD_T_STATS(KEYS_ADDED)));
	EXPECT_EQ(atomic_load(got), qkd_obj_u(&st, QKD_T_STATS(KEYS_DELIVERED)));
	EXPECT_EQ(4000 - atomic_load(got), qkd_obj_u(&st, QKD_T_STATS(KEYS_FLUSHED)));
	EXPECT_EQ(0, qkd_obj_u(&st, QKD_T_STATS(KEYS_STORED)));
	munmap(got, sizeof(*got));
}

/* Many netns created and destroyed in parallel, each with keys. */
TEST_F_TIMEOUT(ns, parallel_netns_churn, 180)
{
	pid_t pids[4];
	int p, base = read_refcnt(), n;

	for (p = 0; p < 4; p++) {
		pids[p] = fork();
		ASSERT_LE(0, pids[p]);
		if (pids[p] == 0) {
			int i, rc = 0;

			for (i = 0; i < 5 && !rc; i++) {
				pid_t c = fork();

				if (c == 0)
					_exit(child_busy_node(i, self->have_dev));
				rc = qkd_wait(c);
			}
			_exit(rc);
		}
	}
	for (p = 0; p < 4; p++)
		EXPECT_EQ(0, qkd_wait(pids[p]));
	n = wait_refcnt(base);
	EXPECT_EQ(base, n);
	qkd_msleep(300);
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
}

QKD_TEST_MAIN
