// SPDX-License-Identifier: GPL-2.0-only
/*
 * The module as a citizen of xfrm (Documentation/ipsec.md, "xfrm
 * citizenship"): the SAs and policies of a binding leave the audit records
 * xfrm_user leaves for the same operations (AUDIT_MAC_IPSEC_EVENT, op=SAD-add
 * and SPD-add on SA_NEW, SAD-delete and SPD-delete on SA_DEL), and a tunnel
 * whose policies select networks of the other address family carries real
 * traffic (ping -6 through an IPv4 tunnel, ping -4 through an IPv6 one)
 * between two network namespaces joined by a veth pair.
 *
 * The LSM hooks are tested in test_lsm.c, with a BPF LSM program that
 * refuses.
 */
#include <arpa/inet.h>
#include <linux/audit.h>

#include "qkd_test.h"

#define KS	36	/* AES-256 key + 4-byte salt */
#define SEED	0x5a

FIXTURE(citizen) {
	struct qkd_nl nl;
	int kmsg;
	uint8_t sid[QKD_STREAM_ID_LEN];
	char peer[32];		/* the second site's named netns, if made */
	int audit;		/* NETLINK_AUDIT socket registered as auditd */
	uint32_t audit_was;	/* audit_enabled before the test */
};

FIXTURE_SETUP(citizen)
{
	int err = qkd_enter_test_netns();

	self->audit = -1;
	if (err == -EPERM)
		QKD_SKIP_SETUP("needs root (unshare CLONE_NEWNET)");
	ASSERT_EQ(0, err);
	err = qkd_nl_open(&self->nl);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	self->kmsg = qkd_kmsg_open();
	qkd_sid(self->sid, 77);
	if (system("modprobe -q -a esp4 esp6 xfrm_user xfrm4_tunnel xfrm6_tunnel 2>/dev/null")) {
		/* not fatal: the kernel may have them built in */
	}
}

static int audit_set(int fd, uint32_t mask, uint32_t enabled, uint32_t pid);

FIXTURE_TEARDOWN(citizen)
{
	char cmd[96];

	QKD_TEARDOWN_BEGIN();
	if (self->audit >= 0) {
		EXPECT_EQ(0, audit_set(self->audit, AUDIT_STATUS_PID |
				       AUDIT_STATUS_ENABLED, self->audit_was, 0));
		close(self->audit);
	}
	if (self->peer[0]) {
		snprintf(cmd, sizeof(cmd), "ip netns del %s", self->peer);
		EXPECT_EQ(0, system(cmd));
	}
	EXPECT_EQ(0, self->nl.key_data_seen) TH_LOG("a reply or event carried QKD_A_KEYS_DATA");
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->kmsg >= 0)
		close(self->kmsg);
	qkd_nl_close(&self->nl);
}

/* An address as ABI 2 types it: @attr4 (be32) or @attr6 (16 bytes). */
static void put_addr(struct nl_msg *m, int attr4, int attr6, const char *s)
{
	uint8_t a[16];

	if (inet_pton(AF_INET, s, a) == 1)
		nla_put(m, attr4, 4, a);
	else if (inet_pton(AF_INET6, s, a) == 1)
		nla_put(m, attr6, 16, a);
}

static struct nl_msg *sa_msg(struct qkd_nl *nl, const uint8_t *sid,
			     const char *local, const char *remote)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_SA_NEW, 0);

	nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	/* the keys start at index 0 at both ends (setup_stream()) */
	nla_put_u64(m, QKD_A_SA_FIRST_INDEX, 0);
	put_addr(m, QKD_A_SA_LOCAL_IPV4, QKD_A_SA_LOCAL_IPV6, local);
	put_addr(m, QKD_A_SA_REMOTE_IPV4, QKD_A_SA_REMOTE_IPV6, remote);
	return m;
}

static int sa_simple(struct qkd_nl *nl, int cmd, const uint8_t *sid)
{
	struct nl_msg *m = qkd_msg(nl, cmd, 0);

	nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	return qkd_req(nl, m);
}

static void setup_stream(struct __test_metadata *_metadata, struct qkd_nl *nl,
			 const uint8_t *sid, int role)
{
	ASSERT_NL_OK(nl, qkd_link_new(nl, 1, "l1", role, NULL));
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid, 0, 8, KS, SEED));
}

/* ------------------------------------------------------------- audit */

/* Send one audit request and read its ACK: 0 or -errno. */
static int audit_req(int fd, uint16_t type, const void *data, size_t len)
{
	struct {
		struct nlmsghdr h;
		char data[sizeof(struct audit_status)];
	} req = {};
	char buf[8192];
	uint64_t end = qkd_now_ms() + 2000;

	req.h.nlmsg_len = NLMSG_LENGTH(len);
	req.h.nlmsg_type = type;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.h.nlmsg_seq = 1;
	memcpy(req.data, data, len);
	if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
		return -errno;
	while (qkd_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct nlmsghdr *h;
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return -errno;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == 1)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
	return -ETIMEDOUT;
}

static int audit_set(int fd, uint32_t mask, uint32_t enabled, uint32_t pid)
{
	struct audit_status s = { .mask = mask, .enabled = enabled, .pid = pid };

	return audit_req(fd, AUDIT_SET, &s, sizeof(s));
}

/* audit_enabled now, through AUDIT_GET; -errno on failure. */
static int64_t audit_enabled_now(int fd)
{
	struct {
		struct nlmsghdr h;
	} req = { .h = { .nlmsg_len = NLMSG_LENGTH(0), .nlmsg_type = AUDIT_GET,
			 .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 2 } };
	char buf[8192];
	uint64_t end = qkd_now_ms() + 2000;

	if (send(fd, &req, req.h.nlmsg_len, 0) < 0)
		return -errno;
	while (qkd_now_ms() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct nlmsghdr *h;
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0)
			return -errno;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error ?: -EPROTO;
			if (h->nlmsg_type == AUDIT_GET &&
			    h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct audit_status)))
				return ((struct audit_status *)NLMSG_DATA(h))->enabled;
		}
	}
	return -ETIMEDOUT;
}

/* What one batch of records must hold: SPIs by op, and policy records. */
struct audit_want {
	const char *op;		/* "SAD-add", ... */
	uint32_t spi[8];
	int n_spi;
	int seen_spi[8];	/* records with that SPI and res=1 */
	const char *spd_op;	/* "SPD-add", ... */
	int spd_seen;		/* records of spd_op with res=1 */
	const char *spd_op2;	/* and another policy op, or NULL */
	int spd_seen2;		/* records of spd_op2 with res=1 */
	int failed;		/* records of either op with res=0 */
};

static void audit_record(struct audit_want *w, const char *text)
{
	char op[32], spd[32], spi[32];
	bool ok = strstr(text, " res=1") != NULL;
	int i;

	snprintf(op, sizeof(op), "op=%s ", w->op);
	snprintf(spd, sizeof(spd), "op=%s ", w->spd_op);
	if ((strstr(text, op) || strstr(text, spd)) && !ok)
		fprintf(stderr, "# audit record without res=1: %s\n", text);
	if (strstr(text, op)) {
		if (!ok)
			w->failed++;
		for (i = 0; ok && i < w->n_spi; i++) {
			snprintf(spi, sizeof(spi), " spi=%u(0x%x)", w->spi[i], w->spi[i]);
			if (strstr(text, spi))
				w->seen_spi[i]++;
		}
	} else if (strstr(text, spd)) {
		if (ok)
			w->spd_seen++;
		else
			w->failed++;
	} else if (w->spd_op2) {
		snprintf(spd, sizeof(spd), "op=%s ", w->spd_op2);
		if (strstr(text, spd))
			w->spd_seen2 += ok;
	}
}

static bool audit_done(const struct audit_want *w, int spd)
{
	int i;

	for (i = 0; i < w->n_spi; i++)
		if (!w->seen_spi[i])
			return false;
	return w->spd_seen >= spd;
}

/*
 * Read AUDIT_MAC_IPSEC_EVENT records into @w until it has every SPI and
 * @spd policy records, then 300 ms more for any extra record (a duplicate
 * would show), or until @ms pass.
 */
static void audit_collect(int fd, struct audit_want *w, int spd, int ms)
{
	uint64_t end = qkd_now_ms() + ms, settle = 0;
	char buf[16384], text[8192];

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct nlmsghdr *h;
		uint64_t now = qkd_now_ms();
		size_t len;
		ssize_t n;

		if (now >= end || (settle && now >= settle))
			return;
		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < NLMSG_HDRLEN)
			continue;
		/*
		 * kauditd sends one record a datagram, and its nlmsg_len
		 * counts the text only (without the header): take the
		 * datagram's length, and the text up to its NUL.
		 */
		h = (struct nlmsghdr *)buf;
		if (h->nlmsg_type != AUDIT_MAC_IPSEC_EVENT)
			continue;
		len = (size_t)n - NLMSG_HDRLEN;
		if (len >= sizeof(text))
			len = sizeof(text) - 1;
		memcpy(text, NLMSG_DATA(h), len);
		text[len] = 0;
		audit_record(w, text);
		if (!settle && audit_done(w, spd))
			settle = qkd_now_ms() + 300;
	}
}

/*
 * An administrator who audits IPsec sees the binding's SAs and policies
 * come and go exactly as if xfrm_user had added and deleted them: one
 * SAD-add per SA (its SPI) and one SPD-add per policy on SA_NEW, and the
 * matching deletes on SA_DEL, every one with res=1; SA_DEL fails closed,
 * so each policy's delete comes with the SPD-add of the block policy that
 * took its place (Documentation/ipsec.md, "Teardown").
 */
TEST_F(citizen, audit_records_sa_and_policy_add_and_delete)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK };
	struct qkd_nl *nl = &self->nl;
	struct audit_want add = { .op = "SAD-add", .spd_op = "SPD-add", .n_spi = 4 };
	struct audit_want del = { .op = "SAD-delete", .spd_op = "SPD-delete", .n_spi = 4,
				  .spd_op2 = "SPD-add" };
	struct nl_msg *m;
	int64_t was;
	int fd, i, err;

	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_AUDIT);
	if (fd < 0 && errno == EPROTONOSUPPORT)
		SKIP(return, "kernel without CONFIG_AUDIT");
	ASSERT_LE(0, fd) TH_LOG("NETLINK_AUDIT socket: %s", strerror(errno));
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&a, sizeof(a)));
	was = audit_enabled_now(fd);
	ASSERT_LE(0, was) TH_LOG("AUDIT_GET: %s", strerror((int)-was));
	if (was == 2)
		SKIP(close(fd); return, "audit is locked (enabled=2): cannot take auditd's place");
	/* This process is auditd for the test: records come to @fd. */
	err = audit_set(fd, AUDIT_STATUS_PID | AUDIT_STATUS_ENABLED, 1, getpid());
	if (err == -EEXIST)
		SKIP(close(fd); return, "an audit daemon is running");
	ASSERT_EQ(0, err) TH_LOG("AUDIT_SET pid: %s", strerror(-err));
	self->audit = fd;
	self->audit_was = (uint32_t)was;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR);
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	qkd_policy_begin(m);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	/* Initiator: out generation 0 (index 0), in generations 0..2 (1, 3, 5). */
	add.spi[0] = qkd_sa_spi(self->sid, 0);
	add.spi[1] = qkd_sa_spi(self->sid, 1);
	add.spi[2] = qkd_sa_spi(self->sid, 3);
	add.spi[3] = qkd_sa_spi(self->sid, 5);
	memcpy(del.spi, add.spi, sizeof(add.spi));
	audit_collect(fd, &add, 2, 3000);
	for (i = 0; i < add.n_spi; i++) {
		EXPECT_EQ(1, add.seen_spi[i]) {
			TH_LOG("SA_NEW: %d SAD-add res=1 records for SPI 0x%08x, want 1",
			       add.seen_spi[i], add.spi[i]);
		}
	}
	EXPECT_EQ(2, add.spd_seen) TH_LOG("SA_NEW: SPD-add res=1 records (out, in)");
	EXPECT_EQ(0, add.failed);

	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	audit_collect(fd, &del, 2, 3000);
	for (i = 0; i < del.n_spi; i++) {
		EXPECT_EQ(1, del.seen_spi[i]) {
			TH_LOG("SA_DEL: %d SAD-delete res=1 records for SPI 0x%08x, want 1",
			       del.seen_spi[i], del.spi[i]);
		}
	}
	EXPECT_EQ(2, del.spd_seen) TH_LOG("SA_DEL: SPD-delete res=1 records (out, in)");
	EXPECT_EQ(2, del.spd_seen2) TH_LOG("SA_DEL: SPD-add res=1 records of the block policies");
	EXPECT_EQ(0, del.failed);
}

/* ---------------------------------------------- cross-family tunnels */

/* Run a shell command; ASSERT it succeeded. */
#define SH(fmt, ...) do { \
	char __cmd[512]; \
	snprintf(__cmd, sizeof(__cmd), fmt, ##__VA_ARGS__); \
	ASSERT_EQ(0, system(__cmd)) TH_LOG("%s", __cmd); \
} while (0)

/* The two sites: A, this test's netns, and B, a named one. */
struct site {
	const char *outer;	/* tunnel endpoint, on the veth */
	int outer_len;		/* its prefix length on the veth */
	const char *inner;	/* a host of the network behind it, on lo */
	const char *net;	/* that network, for the policy */
	int net_len;
};

/* Open a genl socket in netns @name; come back to @home. */
static int nl_open_in(struct qkd_nl *nl, const char *name, int home)
{
	char path[64];
	int fd, err;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET)) {
		err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	err = qkd_nl_open(nl);
	if (setns(home, CLONE_NEWNET) && !err)
		err = -errno;
	return err;
}

/*
 * The binding of one site, tunnel mode, reqid 7; with @pol its policies
 * select the networks.
 */
static int bind_site(struct qkd_nl *nl, const uint8_t *sid,
		     const struct site *me, const struct site *peer, bool pol)
{
	struct nl_msg *m = sa_msg(nl, sid, me->outer, peer->outer);

	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	nla_put_u32(m, QKD_A_SA_REQID, 7);
	if (!pol)
		return qkd_req(nl, m);
	qkd_policy_begin(m);
	put_addr(m, QKD_A_SA_POLICY_LOCAL_IPV4, QKD_A_SA_POLICY_LOCAL_IPV6,
		 me->net);
	nla_put_u8(m, QKD_A_SA_POLICY_LOCAL_PREFIX, me->net_len);
	put_addr(m, QKD_A_SA_POLICY_REMOTE_IPV4, QKD_A_SA_POLICY_REMOTE_IPV6,
		 peer->net);
	nla_put_u8(m, QKD_A_SA_POLICY_REMOTE_PREFIX, peer->net_len);
	return qkd_req(nl, m);
}

/* Packets through the binding's current SAs, from SA_GET. */
static void sa_packets(struct __test_metadata *_metadata, struct qkd_nl *nl,
		       const uint8_t *sid, uint64_t *out, uint64_t *in)
{
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_GET, sid));
	*out = qkd_obj_u(&nl->r.v[0], QKD_T_OUT(PACKETS));
	*in = qkd_obj_u(&nl->r.v[0], QKD_T_IN(PACKETS));
}

/* The policies `ip xfrm policy` would add at site @ns ("" for A). */
static int hand_policies(const char *ns, const struct site *me,
			 const struct site *peer)
{
	static const char *const dirs[] = { "out", "in", "fwd" };
	char cmd[512], nsarg[48] = "";
	int i, err = 0;

	if (ns[0])
		snprintf(nsarg, sizeof(nsarg), "-n %s", ns);
	for (i = 0; !err && i < 3; i++) {
		bool out = i == 0;

		snprintf(cmd, sizeof(cmd),
			 "ip %s xfrm policy add src %s/%d dst %s/%d dir %s "
			 "tmpl src %s dst %s proto esp reqid 7 mode tunnel",
			 nsarg, out ? me->net : peer->net,
			 out ? me->net_len : peer->net_len,
			 out ? peer->net : me->net,
			 out ? peer->net_len : me->net_len, dirs[i],
			 out ? me->outer : peer->outer,
			 out ? peer->outer : me->outer);
		err = system(cmd);
	}
	return err;
}

/*
 * A pings B's inner host from its own inner host, through a tunnel of the
 * other family that both ends' bindings built (SAs, and policies unless
 * @hand, when `ip xfrm policy` adds them): every echo answered, and the
 * SAs' counters at both ends show the packets went through them (the in
 * policies admit nothing in clear).
 */
static void cross_family_ping(struct __test_metadata *_metadata,
			      FIXTURE_DATA(citizen) *self,
			      const struct site *sa, const struct site *sb,
			      bool hand)
{
	bool v6_inner = strchr(sa->inner, ':') != NULL;
	bool v6_outer = strchr(sa->outer, ':') != NULL;
	const char *fam = v6_inner ? "-6" : "-4";
	struct qkd_nl nlb = {}, *nl = &self->nl;
	uint64_t out, in;
	int home, err;

	snprintf(self->peer, sizeof(self->peer), "qkdcit%d", (int)getpid());
	SH("ip netns add %s", self->peer);
	SH("ip link set lo up");
	SH("ip -n %s link set lo up", self->peer);
	SH("ip link add va type veth peer name vb netns %s", self->peer);
	/* No duplicate address detection: IPv6 addresses work at once. */
	SH("ip addr add %s/%d dev va %s", sa->outer, sa->outer_len,
	   v6_outer ? "nodad" : "");
	SH("ip -n %s addr add %s/%d dev vb %s", self->peer, sb->outer,
	   sb->outer_len, v6_outer ? "nodad" : "");
	SH("ip addr add %s/%d dev lo %s", sa->inner, v6_inner ? 128 : 32,
	   v6_inner ? "nodad" : "");
	SH("ip -n %s addr add %s/%d dev lo %s", self->peer, sb->inner,
	   v6_inner ? 128 : 32, v6_inner ? "nodad" : "");
	SH("ip link set va up");
	SH("ip -n %s link set vb up", self->peer);
	/* Each site routes the other's network to the veth; xfrm does the rest. */
	SH("ip %s route add %s/%d dev va", fam, sb->net, sb->net_len);
	SH("ip -n %s %s route add %s/%d dev vb", self->peer, fam, sa->net, sa->net_len);

	home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, home);
	err = nl_open_in(&nlb, self->peer, home);
	close(home);
	ASSERT_EQ(0, err) TH_LOG("genl socket in %s: %s", self->peer, strerror(-err));

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR);
	setup_stream(_metadata, &nlb, self->sid, QKD_LINK_ROLE_RESPONDER);
	ASSERT_NL_OK(nl, bind_site(nl, self->sid, sa, sb, !hand));
	ASSERT_NL_OK(&nlb, bind_site(&nlb, self->sid, sb, sa, !hand));
	if (hand) {
		ASSERT_EQ(0, hand_policies("", sa, sb));
		ASSERT_EQ(0, hand_policies(self->peer, sb, sa));
	}

	SH("ping %s -q -c 3 -i 0.2 -W 2 -I %s %s >/dev/null", fam, sa->inner, sb->inner);

	sa_packets(_metadata, nl, self->sid, &out, &in);
	EXPECT_LE(3, out) TH_LOG("A's outbound SA carried %llu packets", (unsigned long long)out);
	EXPECT_LE(3, in) TH_LOG("A's inbound SA carried %llu packets", (unsigned long long)in);
	sa_packets(_metadata, &nlb, self->sid, &out, &in);
	EXPECT_LE(3, out) TH_LOG("B's outbound SA carried %llu packets", (unsigned long long)out);
	EXPECT_LE(3, in) TH_LOG("B's inbound SA carried %llu packets", (unsigned long long)in);
	EXPECT_EQ(0, nlb.key_data_seen);
	qkd_nl_close(&nlb);
}

TEST_F(citizen, ping6_through_ipv4_tunnel)
{
	static const struct site a = { "10.9.0.1", 24, "fd01::1", "fd01::", 64 };
	static const struct site b = { "10.9.0.2", 24, "fd02::1", "fd02::", 64 };

	cross_family_ping(_metadata, self, &a, &b, false);
}

TEST_F(citizen, ping4_through_ipv6_tunnel)
{
	static const struct site a = { "fd09::1", 64, "10.7.1.1", "10.7.1.0", 24 };
	static const struct site b = { "fd09::2", 64, "10.7.2.1", "10.7.2.0", 24 };

	cross_family_ping(_metadata, self, &a, &b, false);
}

/*
 * A tunnel binding without the module's policies: the administrator's own
 * `ip xfrm policy` of the other family (or the same one) routes into it.
 */
TEST_F(citizen, ping6_through_ipv4_tunnel_hand_policies)
{
	static const struct site a = { "10.9.0.1", 24, "fd01::1", "fd01::", 64 };
	static const struct site b = { "10.9.0.2", 24, "fd02::1", "fd02::", 64 };

	cross_family_ping(_metadata, self, &a, &b, true);
}

TEST_F(citizen, ping4_through_ipv4_tunnel_hand_policies)
{
	static const struct site a = { "10.9.0.1", 24, "10.7.1.1", "10.7.1.0", 24 };
	static const struct site b = { "10.9.0.2", 24, "10.7.2.1", "10.7.2.0", 24 };

	cross_family_ping(_metadata, self, &a, &b, true);
}

QKD_TEST_MAIN_XFRM
