// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd's dumps (qkd_nl_request() with NLM_F_DUMP) against a fake kernel:
 * a second generic netlink socket in this process that answers the
 * requests of a handle opened with qkd_nl_open_peer(), part by part, as the
 * module does, and flags parts NLM_F_DUMP_INTR as the module does when its
 * store changed between two parts (Documentation/abi.md, dumps).
 *
 * The promise: a reader never takes an interrupted dump for the whole set.
 * libqkd reads an interrupted dump again, at most QKD_NL_DUMP_TRIES times
 * in all, and shows (calls back with) only a dump that was not
 * interrupted; when every try was, the request fails with EAGAIN and an
 * extended-ACK text that says so, and nothing was shown.
 *
 * Unicast between two userspace netlink sockets needs CAP_NET_ADMIN: as
 * non-root the test enters a user and network namespace of its own.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "kselftest_harness.h"

#include <qkd/nl.h>
#include "../../userspace/lib/nl_priv.h"

#define FAKE_FAMILY	0x4242

enum script {
	WHOLE,		/* every dump whole */
	ONCE,		/* the first dump interrupted (a part flagged), then whole */
	DONE_ONLY,	/* the first dump's NLMSG_DONE alone flagged, then whole */
	ALWAYS,		/* every dump interrupted */
};

struct fake {
	int fd;
	uint32_t port;
	enum script script;
	int requests;		/* dump requests answered */
	int bad;		/* requests not as expected */
	volatile int stop;
	pthread_t th;
};

struct part {
	char buf[4096];
	size_t len;
};

static void put_hdr(struct part *p, uint16_t type, uint16_t flags,
		    uint32_t seq, uint32_t pid, size_t payload)
{
	struct nlmsghdr *h = (void *)(p->buf + p->len);

	h->nlmsg_len = (uint32_t)(NLMSG_HDRLEN + payload);
	h->nlmsg_type = type;
	h->nlmsg_flags = flags;
	h->nlmsg_seq = seq;
	h->nlmsg_pid = pid;
}

static void put_attr(char *at, size_t *off, uint16_t type, const void *data,
		     size_t len)
{
	struct nlattr *a = (void *)(at + *off);

	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	a->nla_type = type;
	memcpy(at + *off + NLA_HDRLEN, data, len);
	*off += NLA_ALIGN(NLA_HDRLEN + len);
}

/* A link-get reply for link @id ("l<id>"), as the module fills one. */
static void put_link(struct part *p, uint32_t seq, uint32_t pid, uint32_t id,
		     bool intr)
{
	char *msg = p->buf + p->len;
	struct genlmsghdr *g = (void *)(msg + NLMSG_HDRLEN);
	size_t off = NLMSG_HDRLEN + GENL_HDRLEN;
	char name[16];

	memset(msg, 0, 256);
	g->cmd = QKD_CMD_LINK_GET;
	g->version = QKD_FAMILY_VERSION;
	snprintf(name, sizeof(name), "l%u", id);
	put_attr(msg, &off, QKD_A_LINK_ID, &id, sizeof(id));
	put_attr(msg, &off, QKD_A_LINK_NAME, name, strlen(name) + 1);
	put_hdr(p, FAKE_FAMILY, NLM_F_MULTI | (intr ? NLM_F_DUMP_INTR : 0),
		seq, pid, off - NLMSG_HDRLEN);
	p->len += NLMSG_ALIGN(off);
}

static void put_done(struct part *p, uint32_t seq, uint32_t pid, bool intr)
{
	int zero = 0;

	put_hdr(p, NLMSG_DONE, NLM_F_MULTI | (intr ? NLM_F_DUMP_INTR : 0),
		seq, pid, sizeof(zero));
	memcpy(p->buf + p->len + NLMSG_HDRLEN, &zero, sizeof(zero));
	p->len += NLMSG_ALIGN(NLMSG_HDRLEN + sizeof(zero));
}

static void send_part(struct fake *f, uint32_t to, struct part *p)
{
	struct sockaddr_nl dst = { .nl_family = AF_NETLINK, .nl_pid = to };

	if (sendto(f->fd, p->buf, p->len, 0, (struct sockaddr *)&dst,
		   sizeof(dst)) != (ssize_t)p->len)
		f->bad++;
	p->len = 0;
}

/*
 * Answer one dump, the @n-th (from 1): two parts and NLMSG_DONE. The links
 * of the n-th dump are n * 10 + 1 .. n * 10 + 5, so that what the reader
 * saw tells which dump it came from.
 */
static void answer(struct fake *f, uint32_t seq, uint32_t to, int n)
{
	bool intr = f->script == ALWAYS || (f->script == ONCE && n == 1);
	bool done_intr = intr || (f->script == DONE_ONLY && n == 1);
	struct part p = { .len = 0 };
	uint32_t i;

	for (i = 1; i <= 3; i++)
		put_link(&p, seq, to, n * 10 + i, false);
	send_part(f, to, &p);
	/* The module flags the first message after the change. */
	for (i = 4; i <= 5; i++)
		put_link(&p, seq, to, n * 10 + i, intr && i == 4);
	send_part(f, to, &p);
	put_done(&p, seq, to, done_intr);
	send_part(f, to, &p);
}

static void *fake_run(void *arg)
{
	struct fake *f = arg;
	char buf[4096];

	while (!f->stop) {
		struct pollfd pfd = { .fd = f->fd, .events = POLLIN };
		struct sockaddr_nl src;
		socklen_t sl = sizeof(src);
		struct nlmsghdr *h = (void *)buf;
		struct genlmsghdr *g = NLMSG_DATA(h);
		ssize_t n;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		n = recvfrom(f->fd, buf, sizeof(buf), 0, (struct sockaddr *)&src, &sl);
		if (n < (ssize_t)(NLMSG_HDRLEN + GENL_HDRLEN))
			continue;
		if (h->nlmsg_type != FAKE_FAMILY || g->cmd != QKD_CMD_LINK_GET ||
		    (h->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP) {
			f->bad++;
			continue;
		}
		f->requests++;
		answer(f, h->nlmsg_seq, src.nl_pid, f->requests);
	}
	return NULL;
}

/* What the reader was shown: the link ids, in order. */
struct seen {
	uint32_t id[64];
	int n;
};

static int seen_cb(const struct qkd_link *l, void *arg)
{
	struct seen *s = arg;

	if (s->n < 64)
		s->id[s->n] = l->id;
	s->n++;
	return 0;
}

FIXTURE(dump) {
	struct fake f;
	struct qkd_nl *nl;
	struct seen seen;
};

FIXTURE_SETUP(dump)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK };
	socklen_t al = sizeof(a);

	memset(&self->f, 0, sizeof(self->f));
	memset(&self->seen, 0, sizeof(self->seen));
	self->nl = NULL;
	if (geteuid() != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNET))
		SKIP(return, "needs root or an unprivileged user namespace: %s",
		     strerror(errno));
	self->f.fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	ASSERT_LE(0, self->f.fd);
	ASSERT_EQ(0, bind(self->f.fd, (struct sockaddr *)&a, sizeof(a)));
	ASSERT_EQ(0, getsockname(self->f.fd, (struct sockaddr *)&a, &al));
	self->f.port = a.nl_pid;
	ASSERT_EQ(0, qkd_nl_open_peer(&self->nl, self->f.port, FAKE_FAMILY));
}

FIXTURE_TEARDOWN(dump)
{
	if (self->nl)
		qkd_nl_close(self->nl);
	if (self->f.fd > 0)
		close(self->f.fd);
}

/* Run the fake with @script and dump the links; the dump's result. */
static int run_dump(FIXTURE_DATA(dump) *self, enum script script)
{
	int r;

	self->f.script = script;
	self->f.stop = 0;
	if (pthread_create(&self->f.th, NULL, fake_run, &self->f))
		return -1000;
	r = qkd_link_dump(self->nl, seen_cb, &self->seen);
	self->f.stop = 1;
	pthread_join(self->f.th, NULL);
	return r;
}

/* The links shown are exactly the n-th dump's, each once, in order. */
static bool shown_is_dump(const struct seen *s, int n)
{
	int i;

	if (s->n != 5)
		return false;
	for (i = 0; i < 5; i++)
		if (s->id[i] != (uint32_t)(n * 10 + i + 1))
			return false;
	return true;
}

TEST_F(dump, whole_dump_is_shown_once)
{
	EXPECT_EQ(5, run_dump(self, WHOLE));
	EXPECT_EQ(1, self->f.requests);
	EXPECT_EQ(0, self->f.bad);
	EXPECT_TRUE(shown_is_dump(&self->seen, 1))
		TH_LOG("shown %d links, the first %u", self->seen.n, self->seen.id[0]);
}

/*
 * A part flagged NLM_F_DUMP_INTR: the first dump may have missed or
 * repeated links. The reader is shown the second dump alone, never a link
 * of the first (which qkdctl would have printed already).
 */
TEST_F(dump, interrupted_dump_is_read_again)
{
	EXPECT_EQ(5, run_dump(self, ONCE));
	EXPECT_EQ(2, self->f.requests) TH_LOG("the interrupted dump was not read again");
	EXPECT_EQ(0, self->f.bad);
	EXPECT_TRUE(shown_is_dump(&self->seen, 2))
		TH_LOG("shown %d links, the first %u (dump %u)", self->seen.n,
		       self->seen.id[0], self->seen.id[0] / 10);
}

/* The change came after the last link: only NLMSG_DONE carries the flag. */
TEST_F(dump, flag_on_done_alone_is_an_interruption)
{
	EXPECT_EQ(5, run_dump(self, DONE_ONLY));
	EXPECT_EQ(2, self->f.requests);
	EXPECT_TRUE(shown_is_dump(&self->seen, 2))
		TH_LOG("shown %d links, the first %u", self->seen.n, self->seen.id[0]);
}

/*
 * A store that changes during every dump: a bounded number of tries, then
 * a clear error (EAGAIN, the extended-ACK text names the interruption),
 * and nothing shown.
 */
TEST_F(dump, always_interrupted_is_a_clear_error)
{
	const char *ext;

	EXPECT_EQ(-EAGAIN, run_dump(self, ALWAYS));
	EXPECT_EQ(QKD_NL_DUMP_TRIES, self->f.requests);
	EXPECT_EQ(0, self->seen.n) TH_LOG("an interrupted dump was shown");
	EXPECT_EQ(EAGAIN, qkd_nl_errno(self->nl));
	ext = qkd_nl_extack(self->nl);
	ASSERT_NE(NULL, ext);
	EXPECT_NE(NULL, strstr(ext, "interrupted")) TH_LOG("extack: %s", ext);
}

TEST_HARNESS_MAIN
