// SPDX-License-Identifier: GPL-2.0-only
/*
 * ESP SA bindings (QKD_CMD_SA_*, Documentation/ipsec.md): the SAs the module
 * builds from a key stream (SPIs of the formula, keys consumed at the
 * indices of the formula and no others), every rejection with its errno and
 * extended ACK and no state change (no key consumed, no SA left behind),
 * permissions, re-key events, and removal with the binding or the stream.
 *
 * Also the policies a binding installs on request (the QKD_A_SA_POLICY nest) and
 * re-keys on demand (QKD_CMD_SA_REKEY).
 *
 * Each test runs in a fresh network namespace (the fixture unshares), so it
 * sees only its own xfrm states and policies; `ip xfrm` lists them.
 *
 * Teardown fails closed (Documentation/ipsec.md, "Teardown"): the wire_*
 * tests bind two namespaces over veth (qkd_wire.h), tear the binding down
 * and watch the wire with a raw AF_PACKET socket for ICMP in clear.
 */
#include <arpa/inet.h>
#include <linux/if_alg.h>
#include <linux/ipsec.h>
#include <linux/keyctl.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>


#include "qkd_test.h"
#include "qkd_wire.h"

#ifndef AF_ALG
#define AF_ALG 38
#endif

#define KS	36	/* AES-256 key + 4-byte salt */
#define SEED	0x5a

FIXTURE(xfrm) {
	struct qkd_nl nl;
	int dev;
	int kmsg;
	uint8_t sid[QKD_STREAM_ID_LEN];
};

FIXTURE_SETUP(xfrm)
{
	int err = qkd_enter_test_netns();

	if (err == -EPERM)
		QKD_SKIP_SETUP("needs root (unshare CLONE_NEWNET)");
	ASSERT_EQ(0, err);
	err = qkd_nl_open(&self->nl);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	self->dev = qkd_dev_open();
	self->kmsg = qkd_kmsg_open();
	qkd_sid(self->sid, 40);
	/* esp4/esp6 load on demand too; this only saves the first SA a wait. */
	if (system("modprobe -q -a esp4 esp6 xfrm_user 2>/dev/null")) {
		/* not fatal: the kernel may have them built in */
	}
}

FIXTURE_TEARDOWN(xfrm)
{
	QKD_TEARDOWN_BEGIN();
	EXPECT_EQ(0, self->nl.key_data_seen) TH_LOG("a reply or event carried QKD_A_KEYS_DATA");
	EXPECT_EQ(0, self->nl.unknown_seen) TH_LOG("a reply carried an attribute beyond its set");
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->dev >= 0)
		close(self->dev);
	if (self->kmsg >= 0)
		close(self->kmsg);
	qkd_nl_close(&self->nl);
}

/* sa_msg_at()'s @first for a request without KEY_FIRST_INDEX. */
#define NO_FIRST UINT64_MAX

/*
 * An SA_NEW request for @sid between two addresses, generation 0 at index
 * @first; add more with nla_put.
 */
static struct nl_msg *sa_msg_at(struct qkd_nl *nl, const uint8_t *sid,
				const char *local, const char *remote,
				uint64_t first)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_SA_NEW, 0);
	uint8_t a[16];

	if (first != NO_FIRST)
		nla_put_u64(m, QKD_A_SA_FIRST_INDEX, first);
	if (sid)
		nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	/* IPv4 as the _IPV4 attribute (be32), IPv6 as the _IPV6 one */
	if (local) {
		if (inet_pton(AF_INET, local, a) == 1)
			nla_put(m, QKD_A_SA_LOCAL_IPV4, 4, a);
		else if (inet_pton(AF_INET6, local, a) == 1)
			nla_put(m, QKD_A_SA_LOCAL_IPV6, 16, a);
	}
	if (remote) {
		if (inet_pton(AF_INET, remote, a) == 1)
			nla_put(m, QKD_A_SA_REMOTE_IPV4, 4, a);
		else if (inet_pton(AF_INET6, remote, a) == 1)
			nla_put(m, QKD_A_SA_REMOTE_IPV6, 16, a);
	}
	return m;
}

/* The same, at index 0 (where setup_stream() pushes the first key). */
static struct nl_msg *sa_msg(struct qkd_nl *nl, const uint8_t *sid,
			     const char *local, const char *remote)
{
	return sa_msg_at(nl, sid, local, remote, 0);
}

static int sa_simple(struct qkd_nl *nl, int cmd, const uint8_t *sid)
{
	struct nl_msg *m = qkd_msg(nl, cmd, 0);

	nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	return qkd_req(nl, m);
}

/* SA_REKEY with QKD_A_SA_FORCE: even beyond what the peer can follow. */
static int sa_rekey_force(struct qkd_nl *nl, const uint8_t *sid)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_SA_REKEY, 0);

	nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	nla_put_flag(m, QKD_A_SA_FORCE);
	return qkd_req(nl, m);
}

static int sa_count(struct qkd_nl *nl)
{
	int err = qkd_req(nl, qkd_msg(nl, QKD_CMD_SA_GET, NLM_F_DUMP));

	return err ? err : qkd_count(nl, QKD_CMD_SA_GET);
}

/* ESP states of this netns whose `ip xfrm state` text contains @what. */
static int xfrm_count(const char *what)
{
	static char sad[65536];
	const char *line, *end;
	int n = 0;

	if (qkd_ip_xfrm_read("state", sad, sizeof(sad)) < 0)
		return -1;
	/* One "src ..." line per state; @what is looked for on every line. */
	if (what)
		return qkd_count_lines(sad, what);
	for (line = sad; *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		n += !strncmp(line, "src", 3);
	}
	return n;
}

/* Lines of `ip xfrm policy` containing @what (NULL: policies, one "dir" each). */
static int policy_count(const char *what)
{
	static char spd[65536];

	if (qkd_ip_xfrm_read("policy", spd, sizeof(spd)) < 0)
		return -1;
	return qkd_count_lines(spd, what ? what : "\tdir ");
}

/* @s as the IPv4 attribute @attr4, or as the IPv6 one (@attr4 + 1). */
static void put_addr(struct nl_msg *m, int attr4, const char *s)
{
	uint8_t a[16];

	if (inet_pton(AF_INET, s, a) == 1)
		nla_put(m, attr4, 4, a);
	else if (inet_pton(AF_INET6, s, a) == 1)
		nla_put(m, attr4 + 1, 16, a);
}

/* Key @index still in the store? Takes it if so (pattern checked). */
static int take_index(int dev, const uint8_t *sid, uint64_t index)
{
	uint8_t buf[QKD_KEY_SIZE_MAX];
	int err = qkd_get_key_at(dev, sid, index, buf, sizeof(buf), NULL);

	if (!err && !qkd_pattern_ok(buf, KS, index, SEED))
		return -EBADMSG;
	return err;
}

/* ------------------------------------------------- XFRM netlink (raw) */

/* An ESP SA as xfrm_user reports it: where it goes, its SPI, its limits. */
struct xsa {
	uint16_t family;
	uint8_t daddr[16];
	uint32_t spi;		/* host order */
	uint64_t soft_packets, hard_packets, soft_bytes, hard_bytes;
	uint8_t key[64];	/* XFRMA_ALG_AEAD's key and salt */
	int key_len;		/* bytes; -1: no AEAD attribute */
};

struct xsas {
	struct xsa v[32];
	int n;
};

/* A NETLINK_XFRM socket, joined to the SA group if @groups. */
static int xfrm_open(uint32_t groups)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = groups };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -errno;
	}
	return fd;
}

static void xsa_from(struct xsas *out, const struct nlmsghdr *h)
{
	const struct xfrm_usersa_info *p = NLMSG_DATA(h);
	const struct rtattr *a;
	struct xsa *x;
	int len;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*p)) || p->id.proto != IPPROTO_ESP ||
	    out->n >= (int)(sizeof(out->v) / sizeof(out->v[0])))
		return;
	x = &out->v[out->n++];
	x->family = p->family;
	memcpy(x->daddr, &p->id.daddr, 16);
	x->spi = ntohl(p->id.spi);
	x->soft_packets = p->lft.soft_packet_limit;
	x->hard_packets = p->lft.hard_packet_limit;
	x->soft_bytes = p->lft.soft_byte_limit;
	x->hard_bytes = p->lft.hard_byte_limit;
	x->key_len = -1;
	for (a = (const struct rtattr *)((const char *)p + NLMSG_ALIGN(sizeof(*p))),
	     len = h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(*p)));
	     RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		const struct xfrm_algo_aead *aead = RTA_DATA(a);
		int klen;

		if (a->rta_type != XFRMA_ALG_AEAD ||
		    RTA_PAYLOAD(a) < sizeof(*aead))
			continue;
		klen = (aead->alg_key_len + 7) / 8;
		if (klen > (int)sizeof(x->key) ||
		    RTA_PAYLOAD(a) < sizeof(*aead) + klen)
			continue;
		memcpy(x->key, aead->alg_key, klen);
		x->key_len = klen;
	}
}

/*
 * Read what is queued on @fd (within @timeout_ms for the first message):
 * every XFRM_MSG_NEWSA into @out. Returns at NLMSG_DONE, or when idle.
 */
static int xfrm_read(int fd, struct xsas *out, int timeout_ms)
{
	static char buf[1 << 16];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	while (poll(&pfd, 1, timeout_ms) == 1) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (len < 0)
			return -errno;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type == XFRM_MSG_NEWSA)
				xsa_from(out, h);
		}
		timeout_ms = 50;
	}
	return 0;
}

/* Every ESP SA of this netns, as XFRM_MSG_GETSA dumps it. */
static int xfrm_dump(struct xsas *out)
{
	struct {
		struct nlmsghdr h;
		struct xfrm_usersa_info p;
	} req = {
		.h = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = XFRM_MSG_GETSA,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP,
		},
	};
	int fd = xfrm_open(0), err;

	if (fd < 0)
		return fd;
	out->n = 0;
	err = send(fd, &req, sizeof(req), 0) < 0 ? -errno : xfrm_read(fd, out, 2000);
	close(fd);
	return err;
}

static const struct xsa *xsa_find(const struct xsas *s, uint32_t spi)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (s->v[i].spi == spi)
			return &s->v[i];
	return NULL;
}

/*
 * XFRM_MSG_NEWAE on the SA (@dst, @spi): set its outbound sequence number,
 * as an administrator (or a hostile root without lockdown) can.
 */
static int xfrm_set_oseq(const char *dst, uint32_t spi, uint32_t oseq)
{
	struct {
		struct nlmsghdr h;
		struct xfrm_aevent_id ae;
		struct nlattr a;
		struct xfrm_replay_state rp;
	} req = {
		.h = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = XFRM_MSG_NEWAE,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE,
		},
		.a = { .nla_len = NLA_HDRLEN + sizeof(struct xfrm_replay_state),
		       .nla_type = XFRMA_REPLAY_VAL },
		.rp = { .oseq = oseq },
	};
	struct xsas none = { .n = 0 };
	int fd, err;

	req.ae.sa_id.spi = htonl(spi);
	req.ae.sa_id.proto = IPPROTO_ESP;
	req.ae.sa_id.family = AF_INET;
	inet_pton(AF_INET, dst, &req.ae.sa_id.daddr);
	fd = xfrm_open(0);
	if (fd < 0)
		return fd;
	err = send(fd, &req, sizeof(req), 0) < 0 ? -errno : xfrm_read(fd, &none, 2000);
	close(fd);
	return err;
}

/* The binding's state and outbound generation, with SA_GET. */
static int sa_get_state(struct qkd_nl *nl, const uint8_t *sid, uint64_t *gen)
{
	struct nl_msg *m = qkd_msg(nl, QKD_CMD_SA_GET, 0);

	nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	if (qkd_req(nl, m) || nl->r.n != 1)
		return -1;
	if (gen)
		*gen = qkd_obj_u(&nl->r.v[0], QKD_T_OUT(GENERATION));
	return (int)qkd_obj_u(&nl->r.v[0], QKD_A_SA_STATE);
}

/* A link of @role with the fixture's stream of @ks and @n pattern keys. */
static void setup_stream(struct __test_metadata *_metadata, struct qkd_nl *nl,
			 const uint8_t *sid, int role, uint32_t ks, int n)
{
	ASSERT_NL_OK(nl, qkd_link_new(nl, 1, "l1", role, NULL));
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid, 1, ks, QKD_OMIT, QKD_OMIT));
	if (n)
		ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid, 0, n, ks, SEED));
}

/* -------------------------------------------------------------- success */

TEST_F(xfrm, new_initiator_spis_and_keys)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;
	struct qkd_obj o;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u32(m, QKD_A_SA_REQID, 5);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	ASSERT_EQ(1, nl->r.n) TH_LOG("SA_NEW must reply with the binding");
	o = nl->r.v[0];
	EXPECT_EQ(QKD_CMD_SA_NEW, o.cmd);
	EXPECT_TRUE(qkd_obj_sid_is(&o, self->sid));
	EXPECT_EQ(1, qkd_obj_u(&o, QKD_A_SA_LINK_ID));
	EXPECT_EQ(QKD_SA_MODE_TRANSPORT, qkd_obj_u(&o, QKD_A_SA_MODE));
	EXPECT_EQ(QKD_SA_ALG_AES_GCM, qkd_obj_u(&o, QKD_A_SA_ALG));
	EXPECT_EQ(256, qkd_obj_u(&o, QKD_A_SA_KEY_BITS));
	EXPECT_EQ(QKD_SA_DIR_BOTH, qkd_obj_u(&o, QKD_A_SA_DIR));
	EXPECT_EQ(5, qkd_obj_u(&o, QKD_A_SA_REQID));
	EXPECT_EQ(QKD_SA_STATE_OK, qkd_obj_u(&o, QKD_A_SA_STATE));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_A_SA_FIRST_INDEX));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_T_OUT(GENERATION)));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_T_IN(GENERATION)));
	/* Initiator: sends on channel 0 (index 2g), receives on 1 (2g + 1). */
	EXPECT_EQ(qkd_sa_spi(self->sid, 0), qkd_obj_u(&o, QKD_T_OUT(SPI)));
	EXPECT_EQ(qkd_sa_spi(self->sid, 1), qkd_obj_u(&o, QKD_T_IN(SPI)));
	EXPECT_EQ(4, o.len[QKD_A_SA_LOCAL_IPV4]);
	EXPECT_FALSE(o.has[QKD_A_SA_LOCAL_IPV6]);

	/* Out g0 (index 0), in g0 (1) and the lookahead in g1, g2 (3, 5). */
	EXPECT_EQ(4, qkd_stored(nl, self->sid));
	EXPECT_EQ(4, xfrm_count(NULL));
	EXPECT_EQ(4, xfrm_count("mode transport"));
	/* GET replies with the same binding. */
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_GET, self->sid));
	ASSERT_EQ(1, nl->r.n);
	EXPECT_EQ(qkd_sa_spi(self->sid, 0), qkd_obj_u(&nl->r.v[0], QKD_T_OUT(SPI)));
	EXPECT_EQ(1, sa_count(nl));
	/* The stream is the binding's alone; once unbound, what it took is gone. */
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	if (self->dev >= 0) {
		EXPECT_EQ(-EKEYEXPIRED, take_index(self->dev, self->sid, 0));
		EXPECT_EQ(-EKEYEXPIRED, take_index(self->dev, self->sid, 1));
		EXPECT_EQ(-EKEYEXPIRED, take_index(self->dev, self->sid, 3));
		EXPECT_EQ(-EKEYEXPIRED, take_index(self->dev, self->sid, 5));
		EXPECT_EQ(0, take_index(self->dev, self->sid, 2))
			TH_LOG("index 2 (the next outbound key) must still be stored");
	}
}

TEST_F(xfrm, new_responder_mirrors_initiator)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;
	struct qkd_obj o;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_RESPONDER, KS, 10);
	m = sa_msg_at(nl, self->sid, "fd00::2", "fd00::1", 4);
	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	nla_put_u8(m, QKD_A_SA_ALG, QKD_SA_ALG_CHACHA20_POLY1305);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	o = nl->r.v[0];
	EXPECT_EQ(16, o.len[QKD_A_SA_LOCAL_IPV6]);
	EXPECT_FALSE(o.has[QKD_A_SA_LOCAL_IPV4]);
	EXPECT_EQ(4, qkd_obj_u(&o, QKD_A_SA_FIRST_INDEX));
	/* Responder: sends on channel 1, receives on channel 0. */
	EXPECT_EQ(qkd_sa_spi(self->sid, 5), qkd_obj_u(&o, QKD_T_OUT(SPI)));
	EXPECT_EQ(qkd_sa_spi(self->sid, 4), qkd_obj_u(&o, QKD_T_IN(SPI)));
	EXPECT_EQ(4, xfrm_count("mode tunnel"));
	EXPECT_EQ(4, xfrm_count("rfc7539esp(chacha20,poly1305)"));
	/* Indices 5 (out), 4, 6, 8 (in) taken; those below the first not. */
	EXPECT_EQ(6, qkd_stored(nl, self->sid));
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	if (self->dev >= 0) {
		EXPECT_EQ(-EKEYEXPIRED, take_index(self->dev, self->sid, 6));
		EXPECT_EQ(0, take_index(self->dev, self->sid, 7));
		EXPECT_EQ(0, take_index(self->dev, self->sid, 0));
	}
}

TEST_F(xfrm, one_way_binding_discards_the_other_direction)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	EXPECT_FALSE(nl->r.v[0].has[QKD_T_IN(SPI)]);
	EXPECT_EQ(1, xfrm_count(NULL));
	/* Generation 0 of both channels is used up at both ends alike. */
	EXPECT_EQ(6, qkd_stored(nl, self->sid));
}

/* ------------------------------------------------------------ rejections */

TEST_F(xfrm, rejects_bad_input_without_change)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t other[QKD_STREAM_ID_LEN], sid16[QKD_STREAM_ID_LEN];
	uint8_t addr[16] = { 10, 1, 0, 1 };
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	qkd_sid(sid16, 41);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid16, 1, 16, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid16, 0, 8, 16, SEED));

	QKD_CTX("unknown algorithm");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_ALG, 3);
	ASSERT_NL_BADRANGE(nl, qkd_req(nl, m));

	QKD_CTX("chacha20-poly1305 with a 128-bit key");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_ALG, QKD_SA_ALG_CHACHA20_POLY1305);
	nla_put_u32(m, QKD_A_SA_KEY_BITS, 128);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("AES-GCM with a 200-bit key");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u32(m, QKD_A_SA_KEY_BITS, 200);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("a 512-bit key");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u32(m, QKD_A_SA_KEY_BITS, 512);
	ASSERT_NL_BADRANGE(nl, qkd_req(nl, m));

	QKD_CTX("16-byte stream keys for AES-256 + salt");
	ASSERT_NL_EINVAL(nl, qkd_req(nl, sa_msg(nl, sid16, "10.1.0.1", "10.1.0.2")));

	QKD_CTX("non-existent stream");
	qkd_sid(other, 42);
	ASSERT_NL_INVALID(nl, ENOENT, true, qkd_req(nl, sa_msg(nl, other, "10.1.0.1", "10.1.0.2")));

	QKD_CTX("missing remote");
	ASSERT_NL_EINVAL(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", NULL)));
	QKD_CTX("missing stream");
	ASSERT_NL_EINVAL(nl, qkd_req(nl, sa_msg(nl, NULL, "10.1.0.1", "10.1.0.2")));

	QKD_CTX("mixed families");
	ASSERT_NL_EINVAL(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "fd00::2")));

	QKD_CTX("a 5-byte IPv4 address");
	m = sa_msg(nl, self->sid, NULL, "10.1.0.2");
	nla_put(m, QKD_A_SA_LOCAL_IPV4, 5, addr);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("a 5-byte IPv6 address");
	m = sa_msg(nl, self->sid, NULL, "fd00::2");
	nla_put(m, QKD_A_SA_LOCAL_IPV6, 5, addr);
	ASSERT_NL_BADLEN(nl, qkd_req(nl, m));

	QKD_CTX("a local address given as IPv4 and as IPv6");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put(m, QKD_A_SA_LOCAL_IPV6, 16, addr);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("the unspecified address");
	ASSERT_NL_EINVAL(nl, qkd_req(nl, sa_msg(nl, self->sid, "0.0.0.0", "10.1.0.2")));

	QKD_CTX("mode 3");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_MODE, 3);
	ASSERT_NL_BADRANGE(nl, qkd_req(nl, m));

	QKD_CTX("rekey-seconds 0");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u32(m, QKD_A_SA_REKEY_SECONDS, 0);
	ASSERT_NL_BADRANGE(nl, qkd_req(nl, m));

	QKD_CTX("an attribute SA_NEW does not take");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_STATE, QKD_SA_STATE_OK);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));
	QKD_CTX("an attribute beyond the SA set");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u32(m, QKD_A_SA_MAX + 1, 32);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));
	QKD_CTX_CLEAR();

	EXPECT_EQ(0, sa_count(nl));
	EXPECT_EQ(0, xfrm_count(NULL));
	EXPECT_EQ(8, qkd_stored(nl, self->sid)) TH_LOG("a rejected SA_NEW took keys");
}

TEST_F(xfrm, missing_keys_consume_nothing)
{
	struct qkd_nl *nl = &self->nl;

	/* Keys 0 and 1 only: the inbound lookahead (index 3) is missing. */
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 2);
	ASSERT_NL_INVALID(nl, ENOKEY, false,
			  qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	EXPECT_EQ(2, qkd_stored(nl, self->sid)) TH_LOG("the keys taken were not given back");
	EXPECT_EQ(0, xfrm_count(NULL)) TH_LOG("the SAs installed were not removed");
	EXPECT_EQ(0, sa_count(nl));
	if (self->dev >= 0) {
		EXPECT_EQ(0, take_index(self->dev, self->sid, 0));
		EXPECT_EQ(0, take_index(self->dev, self->sid, 1));
	}
}

TEST_F(xfrm, rejects_overlapping_bindings)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t sid2[QKD_STREAM_ID_LEN];
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 16);
	qkd_sid(sid2, 43);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid2, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid2, 0, 16, KS, SEED));
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));

	QKD_CTX("same stream, other addresses");
	ASSERT_NL_INVALID(nl, EEXIST, true,
			  qkd_req(nl, sa_msg(nl, self->sid, "10.2.0.1", "10.2.0.2")));
	QKD_CTX("other stream, same addresses and reqid");
	ASSERT_NL_INVALID(nl, EEXIST, false,
			  qkd_req(nl, sa_msg(nl, sid2, "10.1.0.1", "10.1.0.2")));
	QKD_CTX("other stream, same addresses swapped");
	ASSERT_NL_ERR(nl, EEXIST, qkd_req(nl, sa_msg(nl, sid2, "10.1.0.2", "10.1.0.1")));
	QKD_CTX_CLEAR();
	EXPECT_EQ(16, qkd_stored(nl, sid2));
	EXPECT_EQ(4, xfrm_count(NULL));

	/* Another reqid is another SA pair: allowed. */
	m = sa_msg(nl, sid2, "10.1.0.1", "10.1.0.2");
	nla_put_u32(m, QKD_A_SA_REQID, 2);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	EXPECT_EQ(2, sa_count(nl));
	EXPECT_EQ(8, xfrm_count(NULL));
}

/* In a child: every SA command fails with EPERM for uid nobody. */
static int sa_as_nobody(const uint8_t *sid)
{
	struct qkd_nl u;

	CHILD_CHECK(qkd_become_nobody() == 0, "setresuid");
	CHILD_CHECK(qkd_nl_open(&u) == 0, "genl open");
	CHILD_CHECK(qkd_req(&u, sa_msg(&u, sid, "10.1.0.1", "10.1.0.2")) == -EPERM,
		    "SA_NEW without CAP_NET_ADMIN");
	CHILD_CHECK(qkd_req(&u, qkd_msg(&u, QKD_CMD_SA_GET, NLM_F_DUMP)) == -EPERM,
		    "SA_GET dump without CAP_NET_ADMIN");
	CHILD_CHECK(sa_simple(&u, QKD_CMD_SA_DEL, sid) == -EPERM,
		    "SA_DEL without CAP_NET_ADMIN");
	CHILD_CHECK(sa_simple(&u, QKD_CMD_SA_REKEY, sid) == -EPERM,
		    "SA_REKEY without CAP_NET_ADMIN");
	qkd_nl_close(&u);
	return 0;
}

TEST_F(xfrm, needs_cap_net_admin)
{
	struct qkd_nl *nl = &self->nl;
	pid_t pid;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(sa_as_nobody(self->sid));
	EXPECT_EQ(0, qkd_wait(pid));
	EXPECT_EQ(0, sa_count(nl));
	EXPECT_EQ(8, qkd_stored(nl, self->sid));
	EXPECT_EQ(0, xfrm_count(NULL));
}

/* ------------------------------------------------- no nonce reuse */

enum sa_obstacle { OBST_KEY, OBST_SPI, OBST_POLICY };

/*
 * The attack: make SA_NEW fail after xfrm may already hold (and send on)
 * the outbound SA, clear the obstacle, and retry. Any SA the failed attempt
 * put into the SAD (seen as XFRM_MSG_NEWSA by a listener) must not come
 * back at the retry with the same SPI, hence the same key and salt, and
 * its sequence number at 1 again: with AES-GCM that is nonce reuse.
 * Initiator, first index 0: out g0 = 0, in g0..g2 = 1, 3, 5.
 */
static void sa_retry_attack(struct __test_metadata *_metadata,
			    FIXTURE_DATA(xfrm) *self, enum sa_obstacle how)
{
	struct qkd_nl *nl = &self->nl;
	struct xsas failed = { .n = 0 }, now;
	char cmd[512];
	struct nl_msg *m;
	int mon, err, i;

	/* Keys up to index 3 (OBST_KEY: index 5, the last inbound one, missing). */
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS,
		     how == OBST_KEY ? 4 : 8);
	if (how == OBST_SPI) {
		/* Someone's SA at the SPI of inbound generation 2 (index 5). */
		snprintf(cmd, sizeof(cmd),
			 "ip xfrm state add src 10.1.0.2 dst 10.1.0.1 proto esp spi 0x%08x "
			 "mode transport aead 'rfc4106(gcm(aes))' 0x%072d 128",
			 qkd_sa_spi(self->sid, 5), 7);
		ASSERT_EQ(0, system(cmd));
	}
	if (how == OBST_POLICY)
		ASSERT_EQ(0, system("ip xfrm policy add src 10.1.0.2/32 dst 10.1.0.1/32 "
				    "dir in tmpl proto esp mode transport"));
	mon = xfrm_open(1 << (XFRMNLGRP_SA - 1));
	ASSERT_LE(0, mon);

	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	if (how == OBST_POLICY)
		qkd_policy_begin(m);
	err = qkd_req(nl, m);
	EXPECT_EQ(how == OBST_KEY ? -ENOKEY : -EEXIST, err) TH_LOG("extack '%s'", nl->ext_msg);
	ASSERT_EQ(0, xfrm_read(mon, &failed, 300));
	close(mon);
	EXPECT_EQ(0, sa_count(nl));
	EXPECT_EQ(how == OBST_SPI ? 1 : 0, xfrm_count(NULL))
		TH_LOG("the failed SA_NEW left SAs behind");

	/* The obstacle goes; the administrator retries. */
	if (how == OBST_KEY)
		ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 4, 8, KS, SEED));
	if (how == OBST_SPI) {
		snprintf(cmd, sizeof(cmd), "ip xfrm state delete src 10.1.0.2 dst 10.1.0.1 "
			 "proto esp spi 0x%08x", qkd_sa_spi(self->sid, 5));
		ASSERT_EQ(0, system(cmd));
	}
	if (how == OBST_POLICY)
		ASSERT_EQ(0, system("ip xfrm policy delete src 10.1.0.2/32 dst 10.1.0.1/32 dir in"));
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	if (how == OBST_POLICY)
		qkd_policy_begin(m);
	err = qkd_req(nl, m);
	if (err)
		TH_LOG("the retry failed (%d, '%s'): fine, nothing reused", err, nl->ext_msg);
	ASSERT_EQ(0, xfrm_dump(&now));
	for (i = 0; i < failed.n; i++) {
		const struct xsa *x = xsa_find(&now, failed.v[i].spi);

		EXPECT_FALSE(x && x->family == failed.v[i].family &&
			     !memcmp(x->daddr, failed.v[i].daddr, 16))
			TH_LOG("SA %08x was in the SAD during the failed SA_NEW and is installed again with the same key and sequence number 1",
			       failed.v[i].spi);
	}
}

TEST_F(xfrm, failed_new_missing_key_no_nonce_reuse)
{
	sa_retry_attack(_metadata, self, OBST_KEY);
}

TEST_F(xfrm, failed_new_spi_taken_no_nonce_reuse)
{
	sa_retry_attack(_metadata, self, OBST_SPI);
}

TEST_F(xfrm, failed_new_policy_taken_no_nonce_reuse)
{
	sa_retry_attack(_metadata, self, OBST_POLICY);
}

/* ---------------------------------------- 32-bit sequence number space */

/*
 * Without ESN an SA has 2^32 - 1 sequence numbers; xfrm refuses the next
 * packet (EOVERFLOW) rather than wrap. The outbound SA's soft packet limit
 * must make the binding re-key well before, whatever re-key policy was
 * given, and its hard one close it before the last number.
 */
TEST_F(xfrm, sa_lifetimes_fit_the_sequence_space)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t sid2[QKD_STREAM_ID_LEN];
	const struct xsa *x;
	struct nl_msg *m;
	struct xsas all;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	/* A time-only policy (the default). */
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	ASSERT_EQ(0, xfrm_dump(&all));
	x = xsa_find(&all, qkd_sa_spi(self->sid, 0));
	ASSERT_NE(NULL, x) TH_LOG("no outbound SA in the dump");
	EXPECT_GE(1ULL << 31, x->soft_packets) TH_LOG("soft packet limit %llu",
						     (unsigned long long)x->soft_packets);
	EXPECT_GT(x->hard_packets, x->soft_packets);
	EXPECT_GE(0xffffffffULL, x->hard_packets) TH_LOG("hard packet limit %llu",
							(unsigned long long)x->hard_packets);

	/* A packet policy beyond the space is refused, as are doubled limits that overflow. */
	qkd_sid(sid2, 46);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid2, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid2, 0, 8, KS, SEED));
	QKD_CTX("rekey-packets 2^32");
	m = sa_msg(nl, sid2, "10.2.0.1", "10.2.0.2");
	nla_put_u64(m, QKD_A_SA_REKEY_PACKETS, 1ULL << 32);
	ASSERT_NL_BADRANGE(nl, qkd_req(nl, m));
	QKD_CTX("rekey-bytes 2^63 (hard limit 2^64)");
	m = sa_msg(nl, sid2, "10.2.0.1", "10.2.0.2");
	nla_put_u64(m, QKD_A_SA_REKEY_BYTES, 1ULL << 63);
	ASSERT_NL_BADRANGE(nl, qkd_req(nl, m));
	QKD_CTX("rekey-bytes 2^64 - 1");
	m = sa_msg(nl, sid2, "10.2.0.1", "10.2.0.2");
	nla_put_u64(m, QKD_A_SA_REKEY_BYTES, ~0ULL);
	ASSERT_NL_BADRANGE(nl, qkd_req(nl, m));
	QKD_CTX_CLEAR();
	EXPECT_EQ(8, qkd_stored(nl, sid2));

	/* The largest limits accepted: the hard ones are exactly twice. */
	m = sa_msg(nl, sid2, "10.2.0.1", "10.2.0.2");
	nla_put_u64(m, QKD_A_SA_REKEY_PACKETS, 1ULL << 31);
	nla_put_u64(m, QKD_A_SA_REKEY_BYTES, (1ULL << 63) - 1);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	EXPECT_EQ(1ULL << 31, qkd_obj_u(&nl->r.v[0], QKD_A_SA_REKEY_PACKETS));
	ASSERT_EQ(0, xfrm_dump(&all));
	x = xsa_find(&all, qkd_sa_spi(sid2, 0));
	ASSERT_NE(NULL, x);
	EXPECT_EQ(1ULL << 31, x->soft_packets);
	EXPECT_EQ(0xffffffffULL, x->hard_packets);
	EXPECT_EQ((1ULL << 63) - 1, x->soft_bytes);
	EXPECT_EQ((1ULL << 63) - 1 + (1ULL << 63) - 1, x->hard_bytes);
	/* The inbound SAs close with the peer's outbound one. */
	x = xsa_find(&all, qkd_sa_spi(sid2, 1));
	ASSERT_NE(NULL, x);
	EXPECT_EQ(0xffffffffULL, x->hard_packets);
}

/* Wait up to 3 s for the binding to reach a state and generation. */
static int sa_wait_state(struct qkd_nl *nl, const uint8_t *sid, int state,
			 uint64_t gen)
{
	uint64_t t0 = qkd_now_ms(), g = 0;
	int st = -1;

	while (qkd_now_ms() - t0 < 3000) {
		st = sa_get_state(nl, sid, &g);
		if (st == state && g == gen)
			return 0;
		qkd_msleep(100);
	}
	return st < 0 ? st : (int)(100 * g + st + 1);
}

/*
 * An administrator (or root without lockdown) moves the outbound SA's
 * sequence number to the end of its space (XFRM_MSG_NEWAE): the binding
 * re-keys at once rather than let xfrm drop every packet with EOVERFLOW.
 */
TEST_F(xfrm, sequence_near_2_32_rekeys)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;

	/* One-way (out g0 = 0, 1 discarded; g1 = 2). */
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 4);
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	ASSERT_EQ(0, xfrm_set_oseq("10.1.0.2", qkd_sa_spi(self->sid, 0), 0xfffffff0U));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_OK, 1))
		TH_LOG("no re-key with 15 sequence numbers left");
}

/*
 * The same with no key for the next generation: the SA cannot send another
 * packet, and the binding must say so (closed), not `ok`; when the key
 * comes, it re-keys.
 */
TEST_F(xfrm, sequence_exhausted_is_not_ok)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 2);
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	ASSERT_EQ(0, xfrm_set_oseq("10.1.0.2", qkd_sa_spi(self->sid, 0), 0xffffffffU));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_CLOSED, 0))
		TH_LOG("an SA out of sequence numbers is not closed");
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 2, 2, KS, SEED));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_OK, 1))
		TH_LOG("no re-key once the key came");
}

/* ------------------------------------------- keys that can never come */

/*
 * The outbound re-key needs a key this end can never get again: taken or
 * flushed here (EKEYEXPIRED), or its SPI held by an SA the module did not
 * make (EEXIST). The binding says so once (state `stuck`, SA_STATE_NTF)
 * and stops retrying, rather than stay `dry` with a retry every 0.5 s;
 * SA_REKEY tries again on request. The re-key is provoked by moving the
 * outbound sequence number past 2^31 (XFRM_MSG_NEWAE).
 */
static void sa_stuck(struct __test_metadata *_metadata, FIXTURE_DATA(xfrm) *self,
		     bool flush)
{
	struct qkd_nl *nl = &self->nl, ev;
	char cmd[512];
	struct nl_msg *m;
	int i, stuck = 0;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 4);
	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	snprintf(cmd, sizeof(cmd),
		 "ip xfrm state add src 10.1.0.1 dst 10.1.0.2 proto esp spi 0x%08x "
		 "mode transport aead 'rfc4106(gcm(aes))' 0x%072d 128",
		 qkd_sa_spi(self->sid, 2), 9);
	if (flush)
		ASSERT_NL_OK(nl, qkd_key_flush(nl, self->sid));
	else
		ASSERT_EQ(0, system(cmd));
	ASSERT_EQ(0, xfrm_set_oseq("10.1.0.2", qkd_sa_spi(self->sid, 0), 0x80000001U));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_STUCK, 0))
		TH_LOG("a key that can never come is not a final state");
	EXPECT_EQ(1, qkd_obj_u(&nl->r.v[0], QKD_A_SA_REKEY_FAILURES));
	qkd_ev_read(&ev, 300);
	for (i = 0; i < ev.r.n; i++)
		if (ev.r.v[i].cmd == QKD_CMD_SA_STATE_NTF)
			stuck += qkd_obj_u(&ev.r.v[i], QKD_A_SA_STATE) == QKD_SA_STATE_STUCK;
	EXPECT_EQ(1, stuck) TH_LOG("no (or more than one) SA_STATE_NTF stuck");
	/* It stays so: no retry turns it back into `dry`. */
	qkd_msleep(1200);
	EXPECT_EQ(QKD_SA_STATE_STUCK, sa_get_state(nl, self->sid, NULL));
	qkd_ev_read(&ev, 100);
	EXPECT_EQ(0, qkd_count(&ev, QKD_CMD_SA_STATE_NTF));
	qkd_nl_close(&ev);

	if (flush) {
		QKD_CTX("SA_REKEY with the key flushed");
		ASSERT_NL_INVALID(nl, EKEYEXPIRED, false,
				  sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
		QKD_CTX_CLEAR();
		return;
	}
	/* The administrator removes the foreign SA and asks for a re-key. */
	snprintf(cmd, sizeof(cmd), "ip xfrm state delete src 10.1.0.1 dst 10.1.0.2 "
		 "proto esp spi 0x%08x", qkd_sa_spi(self->sid, 2));
	ASSERT_EQ(0, system(cmd));
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_OK, 1));
}

TEST_F(xfrm, key_flushed_is_a_final_state)
{
	sa_stuck(_metadata, self, true);
}

TEST_F(xfrm, spi_taken_is_a_final_state)
{
	sa_stuck(_metadata, self, false);
}

/* ------------------------------------------------------------- policies */

TEST_F(xfrm, policy_pair_follows_the_binding)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;
	struct qkd_obj o;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u32(m, QKD_A_SA_REQID, 9);
	qkd_policy_begin(m);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	o = nl->r.v[0];
	EXPECT_TRUE(o.has[QKD_A_SA_POLICY]);
	EXPECT_EQ(4, o.len[QKD_T_POL(LOCAL_IPV4)]);
	EXPECT_EQ(32, qkd_obj_u(&o, QKD_T_POL(LOCAL_PREFIX)));
	EXPECT_EQ(32, qkd_obj_u(&o, QKD_T_POL(REMOTE_PREFIX)));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_T_POL(PRIORITY)));
	/* Transport mode: out and in, no fwd. */
	EXPECT_EQ(2, policy_count(NULL));
	EXPECT_EQ(1, policy_count("src 10.1.0.1/32 dst 10.1.0.2/32"));
	EXPECT_EQ(1, policy_count("src 10.1.0.2/32 dst 10.1.0.1/32"));
	EXPECT_EQ(1, policy_count("dir out"));
	EXPECT_EQ(1, policy_count("dir in"));
	EXPECT_EQ(2, policy_count("proto esp reqid 9 mode transport"));
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_GET, self->sid));
	EXPECT_TRUE(nl->r.v[0].has[QKD_A_SA_POLICY]);

	/* SA_DEL leaves block policies in their place (fails closed). */
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	EXPECT_EQ(2, policy_count(NULL));
	EXPECT_EQ(2, policy_count("action block"));
	EXPECT_EQ(0, policy_count("tmpl"));
	EXPECT_EQ(1, policy_count("src 10.1.0.1/32 dst 10.1.0.2/32"));
	EXPECT_EQ(1, policy_count("src 10.1.0.2/32 dst 10.1.0.1/32"));
	EXPECT_EQ(0, xfrm_count(NULL));
	/* They are plain policies: the administrator removes them. */
	EXPECT_EQ(0, system("ip xfrm policy flush"));
	EXPECT_EQ(0, policy_count(NULL));

	/* Without the flag, no policy. */
	m = sa_msg_at(nl, self->sid, "10.1.0.1", "10.1.0.2", 6);
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	EXPECT_FALSE(nl->r.v[0].has[QKD_A_SA_POLICY]);
	EXPECT_EQ(0, policy_count(NULL));
}

TEST_F(xfrm, policy_tunnel_networks)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_RESPONDER, KS, 8);
	m = sa_msg(nl, self->sid, "10.1.0.2", "10.1.0.1");
	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	qkd_policy_begin(m);
	put_addr(m, QKD_A_SA_POLICY_LOCAL_IPV4, "fd02::");
	nla_put_u8(m, QKD_A_SA_POLICY_LOCAL_PREFIX, 64);
	put_addr(m, QKD_A_SA_POLICY_REMOTE_IPV4, "fd01::");
	nla_put_u8(m, QKD_A_SA_POLICY_REMOTE_PREFIX, 48);
	nla_put_u32(m, QKD_A_SA_POLICY_PRIORITY, 7);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	EXPECT_EQ(16, nl->r.v[0].len[QKD_T_POL(LOCAL_IPV6)]);
	EXPECT_EQ(7, qkd_obj_u(&nl->r.v[0], QKD_T_POL(PRIORITY)));
	/* IPv6 networks through an IPv4 tunnel: out, in and fwd. */
	EXPECT_EQ(3, policy_count(NULL));
	EXPECT_EQ(1, policy_count("src fd02::/64 dst fd01::/48"));
	EXPECT_EQ(2, policy_count("src fd01::/48 dst fd02::/64"));
	EXPECT_EQ(1, policy_count("dir fwd priority 7"));
	EXPECT_EQ(1, policy_count("tmpl src 10.1.0.2 dst 10.1.0.1"));
	EXPECT_EQ(2, policy_count("tmpl src 10.1.0.1 dst 10.1.0.2"));
	EXPECT_EQ(3, policy_count("mode tunnel"));

	/* The stream goes: the binding and its SAs go, block policies stay. */
	ASSERT_NL_OK(nl, qkd_stream_del(nl, self->sid));
	EXPECT_EQ(3, policy_count(NULL));
	EXPECT_EQ(3, policy_count("action block"));
	EXPECT_EQ(3, policy_count("priority 7 "));
	EXPECT_EQ(1, policy_count("dir fwd "));
	EXPECT_EQ(1, policy_count("src fd02::/64 dst fd01::/48"));
	EXPECT_EQ(2, policy_count("src fd01::/48 dst fd02::/64"));
	EXPECT_EQ(0, policy_count("tmpl"));
	EXPECT_EQ(0, xfrm_count(NULL));
}

TEST_F(xfrm, policy_rejections_change_nothing)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);

	/* The selector is the policy nest's: beyond its set, refused. */
	QKD_CTX("an attribute beyond the policy nest's set");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	qkd_policy_begin(m);
	nla_put_u32(m, QKD_A_SA_POLICY_MAX + 1, 0);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("a selector end given as IPv4 and as IPv6");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	qkd_policy_begin(m);
	put_addr(m, QKD_A_SA_POLICY_LOCAL_IPV4, "192.168.1.0");
	put_addr(m, QKD_A_SA_POLICY_LOCAL_IPV4, "fd01::");
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("networks in transport mode");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	qkd_policy_begin(m);
	put_addr(m, QKD_A_SA_POLICY_REMOTE_IPV4, "192.168.2.0");
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("IPv4 prefix 33");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	qkd_policy_begin(m);
	put_addr(m, QKD_A_SA_POLICY_LOCAL_IPV4, "192.168.1.0");
	nla_put_u8(m, QKD_A_SA_POLICY_LOCAL_PREFIX, 33);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("prefix 129");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	qkd_policy_begin(m);
	nla_put_u8(m, QKD_A_SA_POLICY_REMOTE_PREFIX, 129);
	ASSERT_NL_BADRANGE(nl, qkd_req(nl, m));

	QKD_CTX("host bits beyond the prefix");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	qkd_policy_begin(m);
	put_addr(m, QKD_A_SA_POLICY_LOCAL_IPV4, "192.168.1.1");
	nla_put_u8(m, QKD_A_SA_POLICY_LOCAL_PREFIX, 24);
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	QKD_CTX("selector ends of two families");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_MODE, QKD_SA_MODE_TUNNEL);
	qkd_policy_begin(m);
	put_addr(m, QKD_A_SA_POLICY_LOCAL_IPV4, "fd01::");
	ASSERT_NL_EINVAL(nl, qkd_req(nl, m));

	/* Someone's policy for the same selector stays theirs. */
	QKD_CTX("an existing policy");
	ASSERT_EQ(0, system("ip xfrm policy add src 10.1.0.2/32 dst 10.1.0.1/32 dir in "
			    "tmpl proto esp mode transport"));
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	qkd_policy_begin(m);
	ASSERT_NL_INVALID(nl, EEXIST, false, qkd_req(nl, m));
	QKD_CTX_CLEAR();
	EXPECT_EQ(1, policy_count(NULL)) TH_LOG("the out policy was left, or theirs removed");
	EXPECT_EQ(0, sa_count(nl));
	EXPECT_EQ(0, xfrm_count(NULL));
	EXPECT_EQ(8, qkd_stored(nl, self->sid)) TH_LOG("a rejected SA_NEW took keys");
}

/* --------------------------------------------------------------- re-key */

/*
 * ESP states after a re-key requested at @t0 (qkd_now_ms()): @n while the
 * old outbound SA is in its grace period (QKD_SA_GRACE, 2 s), one fewer
 * once it is over. A count that ended within 1.9 s of @t0 must see it; a
 * slower one (the debug kernel under emulation can take that long to run
 * `ip xfrm state`) may not.
 */
#define EXPECT_XFRM_IN_GRACE(n, t0) do {					\
	int __c = xfrm_count(NULL);						\
	uint64_t __dt = qkd_now_ms() - (t0);					\
										\
	if (__dt < 1900) {							\
		EXPECT_EQ((n), __c);						\
	} else {								\
		EXPECT_TRUE(__c == (n) || __c == (n) - 1)			\
			TH_LOG("%d ESP states %llu ms after the re-key", __c,	\
			       (unsigned long long)__dt);			\
	}									\
} while (0)

TEST_F(xfrm, rekey_now)
{
	struct qkd_nl *nl = &self->nl, ev;
	uint8_t other[QKD_STREAM_ID_LEN];
	struct nl_msg *m;
	struct qkd_obj o;
	uint64_t t0;
	int i;

	/* Indices 0..7: out g0 = 0, in g0..g2 = 1, 3, 5; out g1 = 2, g2 = 4. */
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 7);
	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));

	t0 = qkd_now_ms();
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	ASSERT_EQ(1, nl->r.n) TH_LOG("SA_REKEY must reply with the binding");
	o = nl->r.v[0];
	EXPECT_EQ(QKD_CMD_SA_REKEY, o.cmd);
	EXPECT_EQ(1, qkd_obj_u(&o, QKD_T_OUT(GENERATION)));
	EXPECT_EQ(qkd_sa_spi(self->sid, 2), qkd_obj_u(&o, QKD_T_OUT(SPI)));
	EXPECT_EQ(1, qkd_obj_u(&o, QKD_A_SA_REKEYS));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_T_IN(GENERATION)))
		TH_LOG("the inbound side follows the peer, not SA_REKEY");
	/* New out SA in, the old one kept for the grace period. */
	EXPECT_XFRM_IN_GRACE(5, t0);
	/* Index 2 taken: 4 and 6 are left. */
	EXPECT_EQ(2, qkd_stored(nl, self->sid));

	/* Generation 2 takes index 4. */
	t0 = qkd_now_ms();
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	EXPECT_EQ(2, qkd_obj_u(&nl->r.v[0], QKD_T_OUT(GENERATION)));
	/* The one before the previous goes at once: still 5. */
	EXPECT_XFRM_IN_GRACE(5, t0);

	/*
	 * Generation 3 would be beyond the peer's lookahead (it has seen
	 * generation 0 at most, as nothing was sent): refused, nothing
	 * taken, unless forced.
	 */
	EXPECT_EQ(-EAGAIN, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	EXPECT_STREQ("qkd: no traffic on the last re-keys: the peer could not follow another one (send first, or force)",
		     nl->ext_msg);
	QKD_CTX("a third re-key with no traffic");
	ASSERT_NL_INVALID(nl, EAGAIN, false, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	QKD_CTX_CLEAR();
	EXPECT_EQ(1, qkd_stored(nl, self->sid));
	/* Forced, generation 3 takes index 6, the last one; 4 finds none. */
	ASSERT_NL_OK(nl, sa_rekey_force(nl, self->sid));
	EXPECT_EQ(3, qkd_obj_u(&nl->r.v[0], QKD_T_OUT(GENERATION)));
	QKD_CTX("a dry stream");
	ASSERT_NL_INVALID(nl, ENOKEY, false, sa_rekey_force(nl, self->sid));
	QKD_CTX_CLEAR();
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_GET, self->sid));
	o = nl->r.v[0];
	EXPECT_EQ(3, qkd_obj_u(&o, QKD_T_OUT(GENERATION))) TH_LOG("a failed SA_REKEY changed the SA");
	EXPECT_EQ(qkd_sa_spi(self->sid, 6), qkd_obj_u(&o, QKD_T_OUT(SPI)));
	EXPECT_EQ(0, qkd_obj_u(&o, QKD_A_SA_REKEY_FAILURES));
	/* Forced past the peer's lookahead: closed for good, and why. */
	EXPECT_EQ(QKD_SA_STATE_CLOSED, qkd_obj_u(&o, QKD_A_SA_STATE));
	EXPECT_EQ(QKD_SA_REASON_PEER_BEHIND, qkd_obj_u(&o, QKD_A_SA_REASON));

	qkd_ev_read(&ev, 300);
	EXPECT_EQ(3, qkd_count(&ev, QKD_CMD_SA_REKEY_NTF));
	for (i = 0; i < ev.r.n; i++)
		if (ev.r.v[i].cmd == QKD_CMD_SA_REKEY_NTF)
			EXPECT_EQ(QKD_SA_DIR_OUT, qkd_obj_u(&ev.r.v[i], QKD_A_SA_DIR));
	EXPECT_EQ(0, ev.key_data_seen);
	qkd_nl_close(&ev);

	QKD_CTX("no binding");
	qkd_sid(other, 45);
	ASSERT_NL_INVALID(nl, ENOENT, true, sa_simple(nl, QKD_CMD_SA_REKEY, other));
	QKD_CTX("an inbound-only binding");
	ASSERT_NL_OK(nl, qkd_stream_new(nl, other, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, other, 0, 8, KS, SEED));
	m = sa_msg(nl, other, "10.2.0.1", "10.2.0.2");
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_IN);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	ASSERT_NL_INVALID(nl, EOPNOTSUPP, true, sa_simple(nl, QKD_CMD_SA_REKEY, other));
	QKD_CTX_CLEAR();
}

/* ------------------------------------------------------- life and death */

TEST_F(xfrm, del_removes_sas)
{
	struct qkd_nl *nl = &self->nl;

	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 16);
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	EXPECT_EQ(4, xfrm_count(NULL));
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	EXPECT_EQ(0, xfrm_count(NULL));
	EXPECT_EQ(0, sa_count(nl));
	ASSERT_NL_INVALID(nl, ENOENT, true, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	ASSERT_NL_ERR(nl, ENOENT, sa_simple(nl, QKD_CMD_SA_GET, self->sid));
	/* The keys it used stay used. */
	EXPECT_EQ(12, qkd_stored(nl, self->sid));
	/* The lowest stored index (2) would reuse index 3: refused. */
	ASSERT_NL_INVALID(nl, EKEYEXPIRED, false,
			  qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	/* Bound again past the used keys: 6 (out), 7, 9, 11 (in). */
	m = sa_msg_at(nl, self->sid, "10.1.0.1", "10.1.0.2", 6);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	EXPECT_EQ(qkd_sa_spi(self->sid, 6), qkd_obj_u(&nl->r.v[0], QKD_T_OUT(SPI)));
	EXPECT_EQ(8, qkd_stored(nl, self->sid));
}

TEST_F(xfrm, stream_and_link_deletion_remove_sas)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t sid2[QKD_STREAM_ID_LEN];
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	qkd_sid(sid2, 44);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid2, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid2, 0, 8, KS, SEED));
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	m = sa_msg(nl, sid2, "fd00::1", "fd00::2");
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	EXPECT_EQ(8, xfrm_count(NULL));
	ASSERT_NL_OK(nl, qkd_stream_del(nl, self->sid));
	EXPECT_EQ(4, xfrm_count(NULL));
	EXPECT_EQ(1, sa_count(nl));
	ASSERT_NL_OK(nl, qkd_link_del(nl, 1));
	EXPECT_EQ(0, xfrm_count(NULL));
	EXPECT_EQ(0, sa_count(nl));
}

/*
 * Time re-keys only an SA that carried traffic (the receiver follows the
 * sender by its traffic): an idle binding keeps generation 0 and its keys.
 * Re-keys under traffic, with their events, are in tests/e2e/ipsec.sh.
 */
TEST_F(xfrm, idle_binding_is_not_rekeyed)
{
	struct qkd_nl *nl = &self->nl, ev;
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 40);
	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	m = sa_msg_at(nl, self->sid, "10.1.0.1", "10.1.0.2", 10);
	nla_put_u32(m, QKD_A_SA_REKEY_SECONDS, 1);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	EXPECT_EQ(10, qkd_obj_u(&nl->r.v[0], QKD_A_SA_FIRST_INDEX));
	EXPECT_EQ(1, qkd_obj_u(&nl->r.v[0], QKD_A_SA_REKEY_SECONDS));

	qkd_msleep(2500);
	qkd_ev_read(&ev, 200);
	EXPECT_EQ(0, qkd_count(&ev, QKD_CMD_SA_REKEY_NTF));
	EXPECT_EQ(0, ev.key_data_seen);
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_GET, self->sid));
	EXPECT_EQ(0, qkd_obj_u(&nl->r.v[0], QKD_T_OUT(GENERATION)));
	EXPECT_EQ(QKD_SA_STATE_OK, qkd_obj_u(&nl->r.v[0], QKD_A_SA_STATE));
	EXPECT_EQ(0, qkd_obj_u(&nl->r.v[0], QKD_A_SA_REKEYS));
	EXPECT_EQ(36, qkd_stored(nl, self->sid));
	EXPECT_EQ(4, xfrm_count(NULL));
	qkd_nl_close(&ev);
}

/* ------------------------------------------------ the binding's stream */

static uint64_t stream_consumer(struct __test_metadata *_metadata,
				struct qkd_nl *nl, const uint8_t *sid)
{
	struct qkd_obj o;

	ASSERT_NL_OK(nl, qkd_stream_get(nl, sid, &o));
	EXPECT_TRUE(o.has[QKD_A_STREAM_CONSUMER]) TH_LOG("STREAM_GET names no consumer");
	return qkd_obj_u(&o, QKD_A_STREAM_CONSUMER);
}

/* A bound AF_ALG skcipher socket, or -errno. */
static int alg_cbc_aes(void)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG };
	int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	strcpy((char *)sa.salg_type, "skcipher");
	strcpy((char *)sa.salg_name, "cbc(aes)");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -errno;
	}
	return fd;
}

/*
 * The attack: a member of the /dev/qkd group takes the keys a binding will
 * use next (index 2 is the outbound SA's next generation, 7 an inbound
 * one), so that the binding breaks or, worse, the member knows its future
 * SA keys. A stream with an SA binding is the binding's alone: every other
 * way of taking its keys fails with EBUSY and takes nothing, and the
 * binding still re-keys. Unbound, the stream is open to all again.
 */
TEST_F(xfrm, binding_owns_its_stream)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t buf[4 * KS], kid[QKD_KEY_ID_LEN];
	struct qkd_keys_request kr;
	struct qkd_logon_key lr;
	struct qkd_alg_setkey ar;
	struct qkd_key_request r;
	uint64_t idx[4];
	char spec[128];
	int tfm, i;
	long key;

	if (self->dev < 0)
		SKIP(return, "no %s", QKD_DEV_PATH);
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 16);
	EXPECT_EQ(QKD_STREAM_CONSUMER_NONE, stream_consumer(_metadata, nl, self->sid));
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	EXPECT_EQ(QKD_STREAM_CONSUMER_SA, stream_consumer(_metadata, nl, self->sid));
	/* Out g0 (0), in g0..g2 (1, 3, 5) taken. */
	ASSERT_EQ(12, qkd_stored(nl, self->sid));

	EXPECT_EQ(-EBUSY, qkd_get_key(self->dev, self->sid, buf, KS, &r));
	EXPECT_EQ(-EBUSY, take_index(self->dev, self->sid, 2));
	EXPECT_EQ(-EBUSY, take_index(self->dev, self->sid, 7));
	qkd_key_id_from_index(kid, self->sid, 2);
	EXPECT_EQ(-EBUSY, qkd_get_key_kid(self->dev, self->sid, kid, buf, KS, NULL));
	memset(&kr, 0, sizeof(kr));
	kr.size = sizeof(kr);
	memcpy(kr.stream_id, self->sid, QKD_STREAM_ID_LEN);
	kr.number = 4;
	kr.keys_len = sizeof(buf);
	kr.keys_ptr = (uintptr_t)buf;
	kr.indices_ptr = (uintptr_t)idx;
	EXPECT_EQ(-EBUSY, qkd_ioctl(self->dev, QKD_IOC_GET_KEYS, &kr));

	tfm = alg_cbc_aes();
	ASSERT_LE(0, tfm) TH_LOG("AF_ALG cbc(aes): %s", strerror(-tfm));
	for (i = 0; i < 2; i++) {
		memset(&ar, 0, sizeof(ar));
		ar.size = sizeof(ar);
		ar.flags = i ? QKD_USE_F_BY_INDEX : 0;
		ar.index = 2;
		memcpy(ar.stream_id, self->sid, QKD_STREAM_ID_LEN);
		ar.key_len = 32;
		ar.alg_fd = tfm;
		EXPECT_EQ(-EBUSY, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, &ar))
			TH_LOG("ALG_SETKEY %s", i ? "by index" : "next");
		memset(&lr, 0, sizeof(lr));
		lr.size = sizeof(lr);
		lr.flags = i ? QKD_USE_F_BY_INDEX : 0;
		lr.index = 2;
		memcpy(lr.stream_id, self->sid, QKD_STREAM_ID_LEN);
		lr.keyring = KEY_SPEC_PROCESS_KEYRING;
		EXPECT_EQ(-EBUSY, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &lr))
			TH_LOG("LOGON_KEY %s", i ? "by index" : "next");
	}
	close(tfm);
	/* the "qkd" key type takes through the same store */
	snprintf(spec, sizeof(spec), "fd=%d stream=%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x index=2", self->dev,
		 self->sid[0], self->sid[1], self->sid[2], self->sid[3], self->sid[4],
		 self->sid[5], self->sid[6], self->sid[7], self->sid[8], self->sid[9],
		 self->sid[10], self->sid[11], self->sid[12], self->sid[13],
		 self->sid[14], self->sid[15]);
	key = syscall(SYS_add_key, "qkd", "x", spec, strlen(spec), KEY_SPEC_PROCESS_KEYRING);
	EXPECT_EQ(-1, key);
	EXPECT_EQ(EBUSY, errno) TH_LOG("add_key qkd: %s", strerror(errno));
	EXPECT_EQ(12, qkd_stored(nl, self->sid)) TH_LOG("a refused take took keys");

	/* The binding's own re-key takes index 2. */
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	EXPECT_EQ(1, qkd_obj_u(&nl->r.v[0], QKD_T_OUT(GENERATION)));
	EXPECT_EQ(qkd_sa_spi(self->sid, 2), qkd_obj_u(&nl->r.v[0], QKD_T_OUT(SPI)));
	EXPECT_EQ(11, qkd_stored(nl, self->sid));
	/* Status and poll stay open to readers. */
	{
		struct qkd_stream_status st;

		EXPECT_EQ(0, qkd_dev_status(self->dev, self->sid, &st));
		EXPECT_EQ(11, st.stored_key_count);
		EXPECT_EQ(0, qkd_set_poll(self->dev, self->sid));
	}

	/* Unbound: the stream is anyone's again, the binding's keys stay used. */
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	EXPECT_EQ(QKD_STREAM_CONSUMER_NONE, stream_consumer(_metadata, nl, self->sid));
	EXPECT_EQ(-EKEYEXPIRED, take_index(self->dev, self->sid, 2));
	EXPECT_EQ(0, take_index(self->dev, self->sid, 7));
	EXPECT_EQ(0, qkd_get_key(self->dev, self->sid, buf, KS, &r));
	EXPECT_EQ(4, r.index);
}

/* Deleting the stream of a binding releases nothing twice; a new one is free. */
TEST_F(xfrm, stream_delete_releases_the_binding)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t buf[KS];

	if (self->dev < 0)
		SKIP(return, "no %s", QKD_DEV_PATH);
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	EXPECT_EQ(-EBUSY, take_index(self->dev, self->sid, 2));
	ASSERT_NL_OK(nl, qkd_stream_del(nl, self->sid));
	EXPECT_EQ(0, sa_count(nl));
	ASSERT_NL_OK(nl, qkd_stream_new(nl, self->sid, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 2, KS, SEED));
	EXPECT_EQ(QKD_STREAM_CONSUMER_NONE, stream_consumer(_metadata, nl, self->sid));
	EXPECT_EQ(0, qkd_get_key(self->dev, self->sid, buf, KS, NULL));
}

/* ------------------------------------------------- xfrm's copy of the key */

/* Is the kernel at lockdown=confidentiality (xfrm_user then zeros SA keys)? */
static bool lockdown_confidentiality(void)
{
	char buf[128] = "";
	FILE *f = fopen("/sys/kernel/security/lockdown", "r");

	if (!f)
		return false;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return strstr(buf, "[confidentiality]") != NULL;
}

/*
 * The key of SA @spi in the SAD is the stream's key at @index (key and
 * salt: its first KS bytes), and not all zeros.
 */
static void expect_sad_key(struct __test_metadata *_metadata,
			   const struct xsas *sad, uint32_t spi, uint64_t index)
{
	static const uint8_t zeros[KS];
	const struct xsa *x = xsa_find(sad, spi);
	uint8_t want[KS];

	qkd_pattern(want, KS, index, SEED);
	ASSERT_NE(NULL, x) TH_LOG("no SA with SPI %08x (index %llu)", spi,
				  (unsigned long long)index);
	ASSERT_EQ(KS, x->key_len) TH_LOG("SA %08x: AEAD key of %d bytes", spi, x->key_len);
	EXPECT_NE(0, memcmp(x->key, zeros, KS))
		TH_LOG("SA %08x is keyed with zeros: whoever captures its traffic decrypts it", spi);
	EXPECT_EQ(0, memcmp(x->key, want, KS))
		TH_LOG("SA %08x: the key in the SAD is not the stream's key at index %llu",
		       spi, (unsigned long long)index);
}

/*
 * xfrm's own copy of the key (x->aead) is the stream's key: the module does
 * not edit it behind xfrm's back. xfrm reads that copy to clone the SA for
 * XFRM_MSG_MIGRATE; it shows it in dumps only without lockdown.
 */
TEST_F(xfrm, sad_key_is_the_stream_key)
{
	struct qkd_nl *nl = &self->nl;
	struct xsas sad;

	if (lockdown_confidentiality())
		SKIP(return, "lockdown=confidentiality: xfrm_user zeros SA keys in dumps (tests/e2e/lockdown.sh)");
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	ASSERT_EQ(0, xfrm_dump(&sad));
	EXPECT_EQ(4, sad.n);
	/* Initiator at index 0: out g0 = 0, in g0..g2 = 1, 3, 5. */
	expect_sad_key(_metadata, &sad, qkd_sa_spi(self->sid, 0), 0);
	expect_sad_key(_metadata, &sad, qkd_sa_spi(self->sid, 1), 1);
	expect_sad_key(_metadata, &sad, qkd_sa_spi(self->sid, 3), 3);
	expect_sad_key(_metadata, &sad, qkd_sa_spi(self->sid, 5), 5);
}

/*
 * XFRM_MSG_MIGRATE for the outbound SA of a binding (to the same
 * addresses, as an IKE daemon's MOBIKE update would send it): @dir's policy
 * selects local -> remote, the SA is found by reqid. Returns the ACK's
 * error (0: migrated).
 */
static int xfrm_migrate_out(const char *local, const char *remote, uint32_t reqid)
{
	struct {
		struct nlmsghdr h;
		struct xfrm_userpolicy_id pi;
		struct nlattr a;
		struct xfrm_user_migrate um;
	} req = {
		.h = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = XFRM_MSG_MIGRATE,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
		},
		.pi = {
			.sel = {
				.family = AF_INET,
				.prefixlen_d = 32,
				.prefixlen_s = 32,
				.proto = IPSEC_ULPROTO_ANY,
			},
			.dir = XFRM_POLICY_OUT,
		},
		.a = { .nla_len = NLA_HDRLEN + sizeof(struct xfrm_user_migrate),
		       .nla_type = XFRMA_MIGRATE },
		.um = {
			.proto = IPPROTO_ESP,
			.mode = XFRM_MODE_TRANSPORT,
			.reqid = reqid,
			.old_family = AF_INET,
			.new_family = AF_INET,
		},
	};
	struct xsas none = { .n = 0 };
	int fd, err;

	inet_pton(AF_INET, local, &req.pi.sel.saddr);
	inet_pton(AF_INET, remote, &req.pi.sel.daddr);
	inet_pton(AF_INET, remote, &req.um.old_daddr);
	inet_pton(AF_INET, local, &req.um.old_saddr);
	req.um.new_daddr = req.um.old_daddr;
	req.um.new_saddr = req.um.old_saddr;
	fd = xfrm_open(0);
	if (fd < 0)
		return fd;
	err = send(fd, &req, sizeof(req), 0) < 0 ? -errno : xfrm_read(fd, &none, 2000);
	close(fd);
	return err;
}

/*
 * The attack: XFRM_MSG_MIGRATE makes xfrm clone a bound SA from x->aead
 * (xfrm_state_clone()) and put the clone in the SAD in its place. If the
 * module had cleared that copy, the clone would be a working SA keyed with
 * zeros, and a passive listener would decrypt what it carries. The clone
 * must carry the stream's key. The binding's own SA is gone with the
 * migration: it moves on to the next generation (a fresh key), as for any
 * SA that someone deleted.
 */
TEST_F(xfrm, migrated_sa_keeps_the_stream_key)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;
	struct xsas sad;
	uint64_t gen = 0;
	int err, i;

	if (lockdown_confidentiality())
		SKIP(return, "lockdown=confidentiality: xfrm_user zeros SA keys in dumps (tests/e2e/lockdown.sh)");
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u32(m, QKD_A_SA_REQID, 5);
	qkd_policy_begin(m);
	ASSERT_NL_OK(nl, qkd_req(nl, m));

	err = xfrm_migrate_out("10.1.0.1", "10.1.0.2", 5);
	ASSERT_EQ(0, err) TH_LOG("XFRM_MSG_MIGRATE: %d (%s)", err, strerror(-err));
	ASSERT_EQ(0, xfrm_dump(&sad));
	expect_sad_key(_metadata, &sad, qkd_sa_spi(self->sid, 0), 0);

	/* The binding notices that its outbound SA went, and re-keys. */
	for (i = 0; i < 40 && gen == 0; i++) {
		qkd_msleep(100);
		sa_get_state(nl, self->sid, &gen);
	}
	EXPECT_EQ(1, gen) TH_LOG("the binding did not move past its migrated SA");
	ASSERT_EQ(0, xfrm_dump(&sad));
	expect_sad_key(_metadata, &sad, qkd_sa_spi(self->sid, 2), 2);
	/* The clone is xfrm's (its migrator's), not the binding's: it stays. */
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	ASSERT_EQ(0, xfrm_dump(&sad));
	EXPECT_EQ(1, sad.n);
	expect_sad_key(_metadata, &sad, qkd_sa_spi(self->sid, 0), 0);
}

/*
 * The attack: one end delivered keys 0 and 1 to an application (or flushed
 * them), the other still holds them. "The lowest index stored here" is 2 at
 * one end and 0 at the other, and a default first index would key every SA
 * of the two ends differently (traffic lost, keys wasted) with no error. So
 * SA_NEW names its first index, and is refused without one.
 */
TEST_F(xfrm, first_index_is_required)
{
	struct qkd_nl *nl = &self->nl;
	int err;

	ASSERT_NL_OK(nl, qkd_link_new(nl, 1, "l1", QKD_LINK_ROLE_INITIATOR, NULL));
	ASSERT_NL_OK(nl, qkd_stream_new(nl, self->sid, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 2, 8, KS, SEED));
	err = qkd_req(nl, sa_msg_at(nl, self->sid, "10.1.0.1", "10.1.0.2", NO_FIRST));
	EXPECT_EQ(-EINVAL, err) TH_LOG("SA_NEW without KEY_FIRST_INDEX: %d, extack '%s'",
				       err, nl->ext_msg);
	EXPECT_STREQ("qkd: FIRST_INDEX is required: both ends must name the same first index",
		     nl->ext_msg);
	EXPECT_TRUE(nl->ext_has_miss) TH_LOG("the extended ACK names no missing attribute");
	EXPECT_EQ(0, sa_count(nl));
	EXPECT_EQ(0, xfrm_count(NULL));
	EXPECT_EQ(8, qkd_stored(nl, self->sid)) TH_LOG("a refused SA_NEW took keys");
	/* Named, the same index at both ends: bound. */
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg_at(nl, self->sid, "10.1.0.1",
					       "10.1.0.2", 2)));
	EXPECT_EQ(2, qkd_obj_u(&nl->r.v[0], QKD_A_SA_FIRST_INDEX));
}

/* ------------------------------------------- SAs lost under a binding */

/* SA_STATE_NTF events closed with @reason in @ev's pending events. */
static int state_events(struct qkd_nl *ev, int reason)
{
	int i, n = 0;

	qkd_ev_read(ev, 300);
	for (i = 0; i < ev->r.n; i++)
		n += ev->r.v[i].cmd == QKD_CMD_SA_STATE_NTF &&
		     qkd_obj_u(&ev->r.v[i], QKD_A_SA_STATE) == QKD_SA_STATE_CLOSED &&
		     ev->r.v[i].has[QKD_A_SA_REASON] &&
		     (int)qkd_obj_u(&ev->r.v[i], QKD_A_SA_REASON) == reason;
	return n;
}

/* The binding's reason (0: none given), after sa_get_state(). */
static int sa_reason(struct qkd_nl *nl)
{
	return nl->r.n == 1 && nl->r.v[0].has[QKD_A_SA_REASON] ?
	       (int)qkd_obj_u(&nl->r.v[0], QKD_A_SA_REASON) : 0;
}

/*
 * Someone deletes the outbound SA of a one-way binding (XFRM_MSG_DELSA):
 * the binding replaces it with the next generation at once, not at its
 * next re-key (an hour away here), and is `ok`. Then every SA is flushed
 * (XFRM_MSG_FLUSHSA) before the replacement sent anything: a second
 * replacement would use up the last generation the peer holds (it has
 * seen generation 0 at most), as each round of `ip xfrm state deleteall`
 * did until the stream ran dry. The binding stops instead: `closed` with
 * lost_again, one event, no key taken; SA_REKEY moves it on to that last
 * generation.
 */
TEST_F(xfrm, deleted_outbound_sa_replaced_at_once)
{
	struct qkd_nl *nl = &self->nl, ev;
	struct nl_msg *m;
	char spi[32];

	/* Out g0 = 0, g1 = 2, g2 = 4; 1, 3, 5 discarded with them. */
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 6);
	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	ASSERT_EQ(0, system("ip xfrm state delete src 10.1.0.1 dst 10.1.0.2 proto esp "
			    "spi $(ip xfrm state | sed -n 's/.* spi \\(0x[0-9a-f]*\\).*/\\1/p')"));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_OK, 1))
		TH_LOG("DELSA of the outbound SA: not replaced");
	snprintf(spi, sizeof(spi), "spi 0x%08x", qkd_sa_spi(self->sid, 2));
	EXPECT_EQ(1, xfrm_count(spi));
	EXPECT_EQ(2, qkd_stored(nl, self->sid));

	/* Lost again, nothing sent on it: held, not replaced. */
	ASSERT_EQ(0, system("ip xfrm state flush"));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_CLOSED, 1))
		TH_LOG("flush of an unused replacement: not closed at generation 1");
	EXPECT_EQ(QKD_SA_REASON_LOST_AGAIN, sa_reason(nl));
	qkd_msleep(1000);
	EXPECT_EQ(QKD_SA_STATE_CLOSED, sa_get_state(nl, self->sid, NULL));
	EXPECT_EQ(0, xfrm_count(NULL)) TH_LOG("the binding replaced its SA again");
	EXPECT_EQ(2, qkd_stored(nl, self->sid)) TH_LOG("keys taken while held");
	EXPECT_EQ(1, state_events(&ev, QKD_SA_REASON_LOST_AGAIN));

	/* SA_REKEY: the last generation the peer holds. */
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	EXPECT_EQ(2, qkd_obj_u(&nl->r.v[0], QKD_T_OUT(GENERATION)));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_OK, 2));
	snprintf(spi, sizeof(spi), "spi 0x%08x", qkd_sa_spi(self->sid, 4));
	EXPECT_EQ(1, xfrm_count(spi));
	EXPECT_EQ(1, xfrm_count(NULL));
	/* Beyond it, only forced. */
	EXPECT_EQ(-EAGAIN, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	EXPECT_EQ(0, ev.key_data_seen);
	qkd_nl_close(&ev);
}

/*
 * The inbound side of the same race: a flush takes the inbound SAs the
 * peer uses and the two installed ahead; the binding installs three
 * beyond them (the peer must re-key past the lost ones: `in-deleted`). A
 * second flush takes those too before any traffic reached them:
 * installing three more each round would move the peer's goal on without
 * end. The binding stops (`closed`, lost_again, one event, no key taken)
 * until SA_REKEY, which installs them once more (and the outbound SA, lost
 * too, moves on to the last generation the peer holds).
 */
TEST_F(xfrm, inbound_replacements_lost_again_hold)
{
	struct qkd_nl *nl = &self->nl, ev;
	unsigned int g, idx[] = { 4, 13, 15, 17 };
	char spi[32];

	/* Out g = 2g, in g = 2g + 1. */
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 24);
	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	ASSERT_NL_OK(nl, qkd_req(nl, sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2")));
	EXPECT_EQ(20, qkd_stored(nl, self->sid));

	/* Out g0 -> g1; in g0..g2 lost -> g3..g5 installed. */
	ASSERT_EQ(0, system("ip xfrm state flush"));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_CLOSED, 1));
	EXPECT_EQ(QKD_SA_REASON_IN_DELETED, sa_reason(nl));
	EXPECT_EQ(4, xfrm_count(NULL));
	EXPECT_EQ(16, qkd_stored(nl, self->sid));

	ASSERT_EQ(0, system("ip xfrm state flush"));
	qkd_msleep(1000);
	EXPECT_EQ(QKD_SA_STATE_CLOSED, sa_get_state(nl, self->sid, NULL));
	EXPECT_EQ(QKD_SA_REASON_LOST_AGAIN, sa_reason(nl));
	EXPECT_EQ(0, xfrm_count(NULL)) TH_LOG("the binding replaced its SAs again");
	EXPECT_EQ(16, qkd_stored(nl, self->sid)) TH_LOG("keys taken while held");
	EXPECT_EQ(1, state_events(&ev, QKD_SA_REASON_LOST_AGAIN));

	/* Resumed: out g2 = 4, in g6..g8 = 13, 15, 17; the peer must reach g6. */
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_REKEY, self->sid));
	EXPECT_EQ(2, qkd_obj_u(&nl->r.v[0], QKD_T_OUT(GENERATION)));
	EXPECT_EQ(QKD_SA_STATE_CLOSED, qkd_obj_u(&nl->r.v[0], QKD_A_SA_STATE));
	EXPECT_EQ(QKD_SA_REASON_IN_DELETED, qkd_obj_u(&nl->r.v[0], QKD_A_SA_REASON));
	qkd_msleep(1000);
	for (g = 0; g < sizeof(idx) / sizeof(idx[0]); g++) {
		snprintf(spi, sizeof(spi), "spi 0x%08x", qkd_sa_spi(self->sid, idx[g]));
		EXPECT_EQ(1, xfrm_count(spi)) TH_LOG("no SA of index %u", idx[g]);
	}
	EXPECT_EQ(4, xfrm_count(NULL));
	EXPECT_EQ(12, qkd_stored(nl, self->sid));
	EXPECT_EQ(0, ev.key_data_seen);
	qkd_nl_close(&ev);
}

/* Sum of /proc/crypto's refcnt over the algorithms named @name. */
static int crypto_refcnt(const char *name)
{
	char line[256], cur[128] = "";
	FILE *f = fopen("/proc/crypto", "r");
	int n = 0, v;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "name : %127s", cur) == 1)
			continue;
		if (sscanf(line, "refcnt : %d", &v) == 1 && !strcmp(cur, name))
			n += v;
	}
	fclose(f);
	return n;
}

/*
 * A dry binding's outbound SA reaches its hard lifetime (2 packets): xfrm
 * deletes it from the SAD, and the binding, with no key for the next
 * generation, must let it go too. Holding it would keep its AEAD
 * transform, and so the key, alive until the next key comes: /proc/crypto
 * counts the transforms of rfc4106(gcm(aes)).
 */
TEST_F(xfrm, dry_binding_keeps_no_expired_sa)
{
	struct qkd_nl *nl = &self->nl;
	uint64_t t0;
	struct nl_msg *m;
	int before, with, after;

	ASSERT_EQ(0, system("ip link add d0 type dummy && ip addr add 10.1.0.1/24 dev d0 && "
			    "ip link set d0 up"));
	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 2);
	before = crypto_refcnt("rfc4106(gcm(aes))");
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
	nla_put_u64(m, QKD_A_SA_REKEY_PACKETS, 1);
	qkd_policy_begin(m);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	with = crypto_refcnt("rfc4106(gcm(aes))");
	ASSERT_EQ(before + 1, with) TH_LOG("the SA's transform is not counted");
	/* Through the SA onto the dummy: soft limit (re-key, dry), then hard. */
	if (system("ping -c 4 -i 0.2 -W 1 -q 10.1.0.2 >/dev/null 2>&1")) {
		/* no answer expected: nobody is behind d0 */
	}
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_CLOSED, 0))
		TH_LOG("the SA past its hard lifetime with no next key is not closed");
	EXPECT_EQ(0, xfrm_count(NULL)) TH_LOG("an expired SA in the SAD");
	t0 = qkd_now_ms();
	do {
		after = crypto_refcnt("rfc4106(gcm(aes))");
		if (after == before)
			break;
		qkd_msleep(100);
	} while (qkd_now_ms() - t0 < 3000);
	EXPECT_EQ(before, after) TH_LOG("the expired SA's transform is still alive");
}

/*
 * A re-key by the binding's work (not SA_REKEY) takes the stream's last
 * keys: the stream's events (STREAM_EMPTY) and the link's (exhausted) come
 * before the SA's SA_REKEY_NTF, as their causes do, not after it or at the
 * next operation on the link.
 */
TEST_F(xfrm, rekey_events_follow_their_keys)
{
	struct qkd_nl *nl = &self->nl, ev;
	int i, empty = -1, link = -1, rekey = -1;
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 4);
	ASSERT_NL_OK(nl, qkd_link_set(nl, 1, QKD_LINK_STATE_UP));
	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	qkd_ev_read(&ev, 300);
	/* Past 2^31: the work re-keys, taking keys 2 and 3 (the last). */
	ASSERT_EQ(0, xfrm_set_oseq("10.1.0.2", qkd_sa_spi(self->sid, 0), 0x80000001U));
	EXPECT_EQ(0, sa_wait_state(nl, self->sid, QKD_SA_STATE_OK, 1));
	qkd_ev_read(&ev, 1000);
	for (i = 0; i < ev.r.n; i++) {
		const struct qkd_obj *o = &ev.r.v[i];

		if (o->cmd == QKD_CMD_STREAM_EMPTY_NTF && empty < 0)
			empty = i;
		if (o->cmd == QKD_CMD_LINK_STATE_NTF && link < 0 &&
		    qkd_obj_u(o, QKD_A_LINK_STATE) == QKD_LINK_STATE_EXHAUSTED)
			link = i;
		if (o->cmd == QKD_CMD_SA_REKEY_NTF && rekey < 0)
			rekey = i;
	}
	qkd_nl_close(&ev);
	ASSERT_LE(0, rekey) TH_LOG("no SA_REKEY_NTF");
	EXPECT_LE(0, empty) TH_LOG("no STREAM_EMPTY_NTF");
	EXPECT_LE(0, link) TH_LOG("no LINK_STATE_NTF exhausted");
	EXPECT_LT(empty, rekey);
	EXPECT_LT(link, rekey);
}

/*
 * The SA dump resumes by position in the node's list of bindings. A binding
 * deleted between two parts (SA_DEL after the first) moves every later one a
 * place down, and the one that moves into the last place sent is never sent.
 * A reader must not take that for the node's bindings: the dump says it was
 * interrupted (NLM_F_DUMP_INTR: the binding's release of its stream bumps
 * the node's generation, the dump's cb->seq), or is whole. A dump with no
 * change in between is whole and not flagged.
 */
#define SADUMP_N	40	/* one-way bindings: one SA each */
#define SADUMP_SID0	300

static void sadump_del_first(struct qkd_nl *nl, void *ctx)
{
	uint8_t sid[QKD_STREAM_ID_LEN];

	(void)ctx;
	qkd_sid(sid, SADUMP_SID0);
	if (sa_simple(nl, QKD_CMD_SA_DEL, sid))
		fprintf(stderr, "# sa_del between the parts: %s\n", nl->ext_msg);
}

/* Which bindings (by their stream's number) @r carried, each how often. */
static void sadump_count(const struct qkd_objs *r, unsigned int seen[SADUMP_N])
{
	int i;

	memset(seen, 0, SADUMP_N * sizeof(seen[0]));
	for (i = 0; i < r->n; i++) {
		const struct qkd_obj *o = &r->v[i];
		const uint8_t *id = o->raw[QKD_A_SA_STREAM_ID];
		unsigned int k = (id[3] | id[4] << 8) - SADUMP_SID0;

		if (o->len[QKD_A_SA_STREAM_ID] == QKD_STREAM_ID_LEN && k < SADUMP_N)
			seen[k]++;
	}
}

TEST_F_TIMEOUT(xfrm, sa_dump_interrupted_by_a_delete, 120)
{
	struct qkd_nl *nl = &self->nl;
	unsigned int seen[SADUMP_N], missing = 0, twice = 0;
	uint8_t sid[QKD_STREAM_ID_LEN];
	struct qkd_objs r = { 0 };
	struct nl_msg *m;
	bool intr;
	int i, parts;

	ASSERT_NL_OK(nl, qkd_link_new(nl, 1, "l1", QKD_LINK_ROLE_INITIATOR, NULL));
	for (i = 0; i < SADUMP_N; i++) {
		qkd_sid(sid, SADUMP_SID0 + i);
		ASSERT_NL_OK(nl, qkd_stream_new(nl, sid, 1, KS, QKD_OMIT, QKD_OMIT));
		ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid, 0, 2, KS, SEED));
		m = sa_msg(nl, sid, "10.1.0.1", "10.1.0.2");
		nla_put_u8(m, QKD_A_SA_DIR, QKD_SA_DIR_OUT);
		nla_put_u32(m, QKD_A_SA_REQID, 1000 + i);
		ASSERT_NL_OK(nl, qkd_req(nl, m));
	}
	ASSERT_EQ(SADUMP_N, sa_count(nl));

	/* No change: every binding once, in several parts, no flag. */
	parts = qkd_dump_by_parts(nl, QKD_CMD_SA_GET, &r, &intr, NULL, NULL);
	ASSERT_LE(2, parts) TH_LOG("%d parts: the dump must resume for this test", parts);
	EXPECT_FALSE(intr) TH_LOG("a dump of unchanged bindings flagged NLM_F_DUMP_INTR");
	sadump_count(&r, seen);
	for (i = 0; i < SADUMP_N; i++)
		EXPECT_EQ(1, seen[i]) TH_LOG("binding %d dumped %u times", i, seen[i]);

	/* The first binding deleted after the first part. */
	parts = qkd_dump_by_parts(nl, QKD_CMD_SA_GET, &r, &intr, sadump_del_first, NULL);
	ASSERT_LE(2, parts);
	sadump_count(&r, seen);
	for (i = 1; i < SADUMP_N; i++) {
		missing += !seen[i];
		twice += seen[i] > 1;
	}
	TH_LOG("%d parts, NLM_F_DUMP_INTR %s, %u live bindings missing, %u twice",
	       parts, intr ? "set" : "not set", missing, twice);
	EXPECT_TRUE(intr || (!missing && !twice))
		TH_LOG("a dump that missed live bindings or repeated some said nothing");
	EXPECT_EQ(1, seen[0]) TH_LOG("the first part carried the first binding");
	EXPECT_EQ(SADUMP_N - 1, sa_count(nl));
	qkd_objs_free(&r);
}

/* ------------------------------------------------ resynchronisation */

/*
 * Two sites: site A is the test's own network namespace (the link's
 * initiator, 10.97.0.1), site B one of its own joined by a veth pair (the
 * responder, 10.97.0.2), each with its own store holding the same keys,
 * bound with QKD_A_SA_POLICY and a re-key period far beyond the test (so
 * every re-key is the attack's or the recovery's). A ping from either site
 * needs both directions. Then someone breaks the SAs under the binding:
 * `ip xfrm state flush` at A, at B, at both; XFRM_MSG_DELSA of A's outbound
 * SA, of B's current inbound SA; or A re-keys more than QKD_SA_LOOKAHEAD
 * generations while B sees no traffic. The promise (Documentation/ipsec.md,
 * "Resynchronisation"): ping works again within RESYNC_SELF_MS by itself,
 * or an end says `closed` with QKD_A_SA_REASON in_deleted and its peer's
 * re-keys (SA_REKEY, at most QKD_SA_LOOKAHEAD + 1, with traffic between)
 * bring it back. Never both ends `ok` while no ping gets through.
 */
#define RA	"10.97.0.1"
#define RB	"10.97.0.2"
/* The bound on recovering by itself: a work run after the notification. */
#define RESYNC_SELF_MS	3000

FIXTURE(resync) {
	struct qkd_nl a, b;
	struct qkd_nl ev[2];	/* each site's events */
	int kmsg;
	int sniff;		/* AF_PACKET on A's end of the wire (va) */
	char ns[32];
	uint8_t sid[QKD_STREAM_ID_LEN];
};

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

/* A genl socket in the named network namespace @ns. */
static int nl_open_in(struct qkd_nl *nl, const char *ns)
{
	char path[64];
	int here, there, err;

	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	here = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	there = open(path, O_RDONLY | O_CLOEXEC);
	if (here < 0 || there < 0) {
		err = -errno;
	} else if (setns(there, CLONE_NEWNET)) {
		err = -errno;
	} else {
		err = qkd_nl_open(nl);
		if (setns(here, CLONE_NEWNET))
			err = -errno;
	}
	if (here >= 0)
		close(here);
	if (there >= 0)
		close(there);
	return err;
}

/* A binding at index @first re-keyed every @seconds, with its policies or not. */
static int resync_bind_at(struct qkd_nl *nl, const uint8_t *sid,
			  const char *local, const char *remote,
			  uint64_t first, uint32_t seconds, bool policy)
{
	struct nl_msg *m = sa_msg_at(nl, sid, local, remote, first);

	nla_put_u32(m, QKD_A_SA_REQID, 1);
	nla_put_u32(m, QKD_A_SA_REKEY_SECONDS, seconds);
	if (policy)
		qkd_policy_begin(m);
	return qkd_req(nl, m);
}

static int resync_bind(struct qkd_nl *nl, const uint8_t *sid,
		       const char *local, const char *remote)
{
	return resync_bind_at(nl, sid, local, remote, 0, 3600, true);
}

FIXTURE_SETUP(resync)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
	};
	int err = qkd_enter_test_netns();

	self->sniff = -1;
	if (err == -EPERM)
		QKD_SKIP_SETUP("needs root (unshare CLONE_NEWNET)");
	ASSERT_EQ(0, err);
	err = qkd_nl_open(&self->a);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	self->kmsg = qkd_kmsg_open();
	qkd_sid(self->sid, 41);
	if (system("modprobe -q -a esp4 xfrm_user 2>/dev/null")) {
		/* not fatal: the kernel may have them built in */
	}
	snprintf(self->ns, sizeof(self->ns), "qkdB%d", (int)getpid());
	ASSERT_EQ(0, run("ip netns add %s", self->ns));
	ASSERT_EQ(0, run("ip link add va type veth peer name vb netns %s", self->ns));
	ASSERT_EQ(0, run("ip addr add " RA "/24 dev va && ip link set va up && "
			 "ip link set lo up"));
	ASSERT_EQ(0, run("ip -n %s addr add " RB "/24 dev vb && ip -n %s link set vb up && "
			 "ip -n %s link set lo up", self->ns, self->ns, self->ns));
	self->sniff = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	ASSERT_LE(0, self->sniff);
	sll.sll_ifindex = if_nametoindex("va");
	ASSERT_NE(0, sll.sll_ifindex);
	ASSERT_EQ(0, bind(self->sniff, (struct sockaddr *)&sll, sizeof(sll)));
	ASSERT_EQ(0, nl_open_in(&self->b, self->ns));
	ASSERT_EQ(0, qkd_nl_open(&self->ev[0]));
	ASSERT_EQ(0, qkd_nl_join_events(&self->ev[0]));
	ASSERT_EQ(0, nl_open_in(&self->ev[1], self->ns));
	ASSERT_EQ(0, qkd_nl_join_events(&self->ev[1]));
	setup_stream(_metadata, &self->a, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 64);
	setup_stream(_metadata, &self->b, self->sid, QKD_LINK_ROLE_RESPONDER, KS, 64);
	ASSERT_NL_OK(&self->a, resync_bind(&self->a, self->sid, RA, RB));
	ASSERT_NL_OK(&self->b, resync_bind(&self->b, self->sid, RB, RA));
}

FIXTURE_TEARDOWN(resync)
{
	QKD_TEARDOWN_BEGIN();
	EXPECT_EQ(0, self->a.key_data_seen + self->b.key_data_seen)
		TH_LOG("a reply or event carried QKD_A_KEYS_DATA");
	EXPECT_EQ(0, self->a.unknown_seen + self->b.unknown_seen)
		TH_LOG("a reply carried an attribute beyond its set");
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->kmsg >= 0)
		close(self->kmsg);
	if (self->sniff >= 0)
		close(self->sniff);
	qkd_nl_close(&self->ev[1]);
	qkd_nl_close(&self->ev[0]);
	qkd_nl_close(&self->b);
	qkd_nl_close(&self->a);
	if (self->ns[0] && run("ip netns del %s 2>/dev/null", self->ns)) {
		/* the setup may have failed before adding it */
	}
}

/*
 * One ping from site A to B (@from_b: from B to A), 0.5 s to answer: an
 * answer takes milliseconds even on the emulated debug kernel, and most
 * of these tests' time was pings that were not answered. A ping that must
 * not cross is checked on the wire as well (resync_sniffed()).
 */
static bool ping_once(FIXTURE_DATA(resync) *self, bool from_b)
{
	if (from_b)
		return !run("ip netns exec %s ping -c 1 -W 0.5 -q " RA " >/dev/null 2>&1",
			    self->ns);
	return !run("ping -c 1 -W 0.5 -q " RB " >/dev/null 2>&1");
}

static bool ping_within(FIXTURE_DATA(resync) *self, unsigned int ms)
{
	uint64_t t0 = qkd_now_ms();

	do {
		if (ping_once(self, false))
			return true;
	} while (qkd_now_ms() - t0 < ms);
	return false;
}

/* State and reason of a site's binding (reason 0: none given). */
static int resync_state(struct qkd_nl *nl, const uint8_t *sid, int *reason)
{
	int st = sa_get_state(nl, sid, NULL);

	*reason = 0;
	if (st >= 0 && nl->r.v[0].has[QKD_A_SA_REASON])
		*reason = (int)qkd_obj_u(&nl->r.v[0], QKD_A_SA_REASON);
	return st;
}

/* Both sites `ok` within 2 s, with no reason given. */
static void resync_both_ok(struct __test_metadata *_metadata,
			   FIXTURE_DATA(resync) *self)
{
	uint64_t t0 = qkd_now_ms();
	int sa, sb, ra, rb;

	do {
		sa = resync_state(&self->a, self->sid, &ra);
		sb = resync_state(&self->b, self->sid, &rb);
		if (sa == QKD_SA_STATE_OK && sb == QKD_SA_STATE_OK)
			break;
		qkd_msleep(100);
	} while (qkd_now_ms() - t0 < 2000);
	EXPECT_EQ(QKD_SA_STATE_OK, sa) TH_LOG("site A's binding (reason %d)", ra);
	EXPECT_EQ(QKD_SA_STATE_OK, sb) TH_LOG("site B's binding (reason %d)", rb);
	EXPECT_EQ(0, ra);
	EXPECT_EQ(0, rb);
}

enum resync_attack {
	FLUSH_A, FLUSH_B, FLUSH_BOTH, DEL_OUT_A, DEL_IN_B, AHEAD_A,
};

/* Did site @ev announce SA_STATE_NTF closed with reason @reason? */
static bool resync_event(struct qkd_nl *ev, int reason)
{
	int i;

	qkd_ev_read(ev, 300);
	for (i = 0; i < ev->r.n; i++)
		if (ev->r.v[i].cmd == QKD_CMD_SA_STATE_NTF &&
		    qkd_obj_u(&ev->r.v[i], QKD_A_SA_STATE) == QKD_SA_STATE_CLOSED &&
		    ev->r.v[i].has[QKD_A_SA_REASON] &&
		    (int)qkd_obj_u(&ev->r.v[i], QKD_A_SA_REASON) == reason)
			return true;
	return false;
}

static void resync_attack(struct __test_metadata *_metadata,
			  FIXTURE_DATA(resync) *self, enum resync_attack how)
{
	struct qkd_nl *site[2] = { &self->a, &self->b };
	int st[2], why[2], i, round, rekeyed = 0;
	bool ok;

	/* Both directions work, and each site has seen the other's gen 0. */
	ASSERT_TRUE(ping_within(self, 5000)) TH_LOG("no ping before the attack");
	ASSERT_TRUE(ping_once(self, true));

	switch (how) {
	case FLUSH_A:
		ASSERT_EQ(0, run("ip xfrm state flush"));
		break;
	case FLUSH_B:
		ASSERT_EQ(0, run("ip -n %s xfrm state flush", self->ns));
		break;
	case FLUSH_BOTH:
		ASSERT_EQ(0, run("ip xfrm state flush"));
		ASSERT_EQ(0, run("ip -n %s xfrm state flush", self->ns));
		break;
	case DEL_OUT_A:	/* A's outbound SA: channel 0, generation 0 */
		ASSERT_EQ(0, run("ip xfrm state delete src " RA " dst " RB
				 " proto esp spi 0x%08x", qkd_sa_spi(self->sid, 0)));
		break;
	case DEL_IN_B:	/* B's inbound SA in use: the same one, at B */
		ASSERT_EQ(0, run("ip -n %s xfrm state delete src " RA " dst " RB
				 " proto esp spi 0x%08x", self->ns,
				 qkd_sa_spi(self->sid, 0)));
		break;
	case AHEAD_A:
		/* No traffic at all while A re-keys past B's lookahead. */
		for (i = 0; i <= QKD_SA_LOOKAHEAD; i++)
			rekeyed += !sa_simple(&self->a, QKD_CMD_SA_REKEY, self->sid);
		TH_LOG("%d of %d re-keys with no traffic accepted", rekeyed, i);
		break;
	}

	/* By itself, within the bound? */
	if (ping_within(self, RESYNC_SELF_MS)) {
		resync_both_ok(_metadata, self);
		return;
	}
	/* If not: an end says closed, and why (its peer must re-key). */
	for (i = 0; i < 2; i++)
		st[i] = resync_state(site[i], self->sid, &why[i]);
	ASSERT_TRUE((st[0] == QKD_SA_STATE_CLOSED && why[0]) ||
		    (st[1] == QKD_SA_STATE_CLOSED && why[1]))
		TH_LOG("no ping for %d ms, yet no site says closed with a reason: A state %d reason %d, B state %d reason %d",
		       RESYNC_SELF_MS, st[0], why[0], st[1], why[1]);
	for (i = 0; i < 2; i++)
		if (st[i] == QKD_SA_STATE_CLOSED) {
			EXPECT_EQ(QKD_SA_REASON_IN_DELETED, why[i]);
			EXPECT_TRUE(resync_event(&self->ev[i], QKD_SA_REASON_IN_DELETED))
				TH_LOG("site %c: no SA_STATE_NTF closed, in-deleted", 'A' + i);
		}
	/* The peer of each closed end re-keys, with traffic in between. */
	ok = false;
	for (round = 0; round <= QKD_SA_LOOKAHEAD && !ok; round++) {
		for (i = 0; i < 2; i++)
			if (st[i] == QKD_SA_STATE_CLOSED)
				ASSERT_NL_OK(site[!i], sa_simple(site[!i], QKD_CMD_SA_REKEY,
								 self->sid));
		ping_once(self, true);
		ok = ping_once(self, false);
	}
	ASSERT_TRUE(ok) TH_LOG("no ping after %d re-keys of the peer", round);
	TH_LOG("recovered after %d re-key(s) of the peer", round);
	resync_both_ok(_metadata, self);
}

TEST_F_TIMEOUT(resync, flush_sender_end, 120)
{
	resync_attack(_metadata, self, FLUSH_A);
}

TEST_F_TIMEOUT(resync, flush_receiver_end, 120)
{
	resync_attack(_metadata, self, FLUSH_B);
}

TEST_F_TIMEOUT(resync, flush_both_ends, 120)
{
	resync_attack(_metadata, self, FLUSH_BOTH);
}

TEST_F_TIMEOUT(resync, delsa_outbound, 120)
{
	resync_attack(_metadata, self, DEL_OUT_A);
}

TEST_F_TIMEOUT(resync, delsa_current_inbound, 120)
{
	resync_attack(_metadata, self, DEL_IN_B);
}

TEST_F_TIMEOUT(resync, rekeys_beyond_lookahead_while_idle, 120)
{
	resync_attack(_metadata, self, AHEAD_A);
}

/* What crossed A's end of the wire since the last call (qkd_wire.h). */
static struct qkd_wire_seen resync_sniffed(FIXTURE_DATA(resync) *self)
{
	struct qkd_wire w = { .sniff = self->sniff };

	return qkd_wire_sniffed(&w);
}

/*
 * Both directions at once (a ping from A and one from B; each needs both
 * directions), always sending both: the pings are also the traffic that
 * lets the next SA_REKEY of either end go ahead.
 */
static bool resync_ping_both(FIXTURE_DATA(resync) *self)
{
	bool a = ping_once(self, false);
	bool b = ping_once(self, true);

	return a && b;
}

/*
 * `ip xfrm state deleteall` (iproute2 dumps the SAD and deletes every SA
 * it found, again until a dump comes back empty) at A, at B, or at both,
 * while pings cross both ways. It races the bindings, which replace what
 * they lose at once: before the bound, every round burnt a generation of
 * each kind, the outbound one beyond what the peer holds (nothing crossed
 * the replacements) and the inbound lost window beyond the peer's three
 * re-keys, until the stream ran dry. The promise (Documentation/ipsec.md,
 * "Resynchronisation"): deleteall ends; the end it ran at takes at most a
 * bounded number of keys; no ICMP crosses the wire in clear at any time;
 * ping works again within RESYNC_SELF_MS by itself, or an end says
 * `closed` with a reason (in_deleted, or lost_again when it stopped
 * replacing) and the documented actions bring ping back: SA_REKEY once at
 * each end that says lost_again, then, with traffic between, SA_REKEY at
 * the peer of each end that is not `ok`, at most
 * RESYNC_PEER_REKEYS times.
 */
#define RESYNC_DELETEALL_S	30
/*
 * Keys the end that ran deleteall may take for it: a generation out and a
 * lookahead window in, after the first loss; with traffic crossing a
 * replacement, another round may follow. Far below the 60 keys left.
 */
#define RESYNC_DELETEALL_KEYS	(4 * (QKD_SA_LOOKAHEAD + 2))
#define RESYNC_PEER_REKEYS	(2 * (QKD_SA_LOOKAHEAD + 1))

enum resync_where { AT_A = 1, AT_B = 2, AT_BOTH = 3 };

static void resync_deleteall(struct __test_metadata *_metadata,
			     FIXTURE_DATA(resync) *self, int where)
{
	struct qkd_nl *site[2] = { &self->a, &self->b };
	int st[2], why[2], i, round, rc;
	long long before[2], took;
	struct qkd_wire_seen seen;
	bool ok;

	ASSERT_TRUE(ping_within(self, 5000)) TH_LOG("no ping before the attack");
	ASSERT_TRUE(ping_once(self, true));
	for (i = 0; i < 2; i++)
		before[i] = qkd_stored(site[i], self->sid);
	resync_sniffed(self);

	/* Traffic both ways, through the attack and a while after it. */
	ASSERT_EQ(0, run("ping -q -i 0.2 -w 6 " RB " >/dev/null 2>&1 &"));
	ASSERT_EQ(0, run("ip netns exec %s ping -q -i 0.2 -w 6 " RA " >/dev/null 2>&1 &",
			 self->ns));
	qkd_msleep(600);
	for (i = 0; i < 2; i++) {
		if (!(where & (1 << i)))
			continue;
		if (i)
			rc = run("ip netns exec %s timeout %d ip xfrm state deleteall",
				 self->ns, RESYNC_DELETEALL_S);
		else
			rc = run("timeout %d ip xfrm state deleteall", RESYNC_DELETEALL_S);
		ASSERT_EQ(0, rc == -1 ? -1 : WEXITSTATUS(rc))
			TH_LOG("site %c: deleteall did not end well (124: still deleting after %d s)",
			       'A' + i, RESYNC_DELETEALL_S);
	}
	/* A replacement the last round's notification kicked lands now. */
	qkd_msleep(500);
	for (i = 0; i < 2; i++) {
		if (!(where & (1 << i)))
			continue;
		took = before[i] - qkd_stored(site[i], self->sid);
		EXPECT_GE(RESYNC_DELETEALL_KEYS, took)
			TH_LOG("site %c: the binding took %lld keys racing deleteall", 'A' + i, took);
		TH_LOG("site %c: %lld keys taken racing deleteall", 'A' + i, took);
	}

	if (ping_within(self, RESYNC_SELF_MS) && ping_once(self, true)) {
		TH_LOG("recovered by itself");
		resync_both_ok(_metadata, self);
		goto wire;
	}
	for (i = 0; i < 2; i++)
		st[i] = resync_state(site[i], self->sid, &why[i]);
	ASSERT_TRUE((st[0] == QKD_SA_STATE_CLOSED && why[0]) ||
		    (st[1] == QKD_SA_STATE_CLOSED && why[1]))
		TH_LOG("no ping for %d ms, yet no site says closed with a reason: A state %d reason %d, B state %d reason %d",
		       RESYNC_SELF_MS, st[0], why[0], st[1], why[1]);
	for (i = 0; i < 2; i++) {
		if (st[i] != QKD_SA_STATE_CLOSED)
			continue;
		TH_LOG("site %c: closed, reason %d", 'A' + i, why[i]);
		EXPECT_TRUE(why[i] == QKD_SA_REASON_IN_DELETED ||
			    why[i] == QKD_SA_REASON_LOST_AGAIN) TH_LOG("reason %d", why[i]);
		EXPECT_TRUE(resync_event(&self->ev[i], why[i]))
			TH_LOG("site %c: no SA_STATE_NTF closed with reason %d", 'A' + i, why[i]);
	}
	/* An end that stopped replacing resumes on SA_REKEY. */
	for (i = 0; i < 2; i++)
		if (st[i] == QKD_SA_STATE_CLOSED && why[i] == QKD_SA_REASON_LOST_AGAIN)
			ASSERT_NL_OK(site[i], sa_simple(site[i], QKD_CMD_SA_REKEY, self->sid));
	/* The peer of each end that is not ok re-keys, traffic between. */
	for (round = 0;; round++) {
		ok = resync_ping_both(self);
		if (ok || round == RESYNC_PEER_REKEYS)
			break;
		for (i = 0; i < 2; i++)
			if (resync_state(site[i], self->sid, &why[i]) != QKD_SA_STATE_OK)
				ASSERT_NL_OK(site[!i], sa_simple(site[!i], QKD_CMD_SA_REKEY,
								 self->sid));
	}
	ASSERT_TRUE(ok) TH_LOG("no ping after %d rounds of re-keys", round);
	TH_LOG("recovered after %d round(s) of re-keys", round);
	resync_both_ok(_metadata, self);
wire:
	seen = resync_sniffed(self);
	EXPECT_EQ(0, seen.echo) TH_LOG("%d ICMP echoes crossed in clear", seen.echo);
	EXPECT_LT(0, seen.esp);
}

TEST_F_TIMEOUT(resync, deleteall_initiator_end, 180)
{
	resync_deleteall(_metadata, self, AT_A);
}

TEST_F_TIMEOUT(resync, deleteall_responder_end, 180)
{
	resync_deleteall(_metadata, self, AT_B);
}

TEST_F_TIMEOUT(resync, deleteall_both_ends, 180)
{
	resync_deleteall(_metadata, self, AT_BOTH);
}

/*
 * A sender whose traffic is all lost (ESP from A dropped at B's end of the
 * wire) for more than QKD_SA_LOOKAHEAD re-key periods while it sends: its
 * policy re-keys each SA that sent packets, and it cannot know they never
 * arrived, so it moves beyond B's inbound SAs. No signal between the
 * sites says so (Documentation/ipsec.md, "Resynchronisation": XFRM tells
 * no key manager of ESP with SPIs it has no SA for, and such packets are
 * not authenticated, so they must not move an end). The promise: fail
 * closed, no ICMP in clear on the wire, during the outage or after; and
 * once the wire is back, ping works by itself within RESYNC_SELF_MS or
 * the documented recovery brings it back: the binding made again at both
 * ends at a later KEY_FIRST_INDEX, the traffic kept closed meanwhile by
 * the block policies SA_DEL leaves, which `ip xfrm policy update` then
 * swaps for policies with the binding's template.
 */
#define RESYNC_FAST_REKEY_S	2

TEST_F_TIMEOUT(resync, sender_traffic_lost_beyond_lookahead, 180)
{
	struct qkd_wire_seen seen;
	uint64_t gen = 0, first, t0;
	int st, why, i;

	/* A re-bound at index 8 with a re-key every 2 s; B as before. */
	for (i = 0; i < 2; i++) {
		struct qkd_nl *nl = i ? &self->b : &self->a;
		struct nl_msg *m = qkd_msg(nl, QKD_CMD_SA_DEL, 0);

		nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, self->sid);
		nla_put_flag(m, QKD_A_SA_REMOVE_PROTECTION);
		ASSERT_NL_OK(nl, qkd_req(nl, m));
	}
	ASSERT_NL_OK(&self->a, resync_bind_at(&self->a, self->sid, RA, RB, 8,
					      RESYNC_FAST_REKEY_S, true));
	ASSERT_NL_OK(&self->b, resync_bind_at(&self->b, self->sid, RB, RA, 8, 3600, true));
	ASSERT_TRUE(ping_within(self, 5000)) TH_LOG("no ping before the outage");
	ASSERT_TRUE(ping_once(self, true));
	resync_sniffed(self);

	/*
	 * The outage: every packet from A reaches B's end of the wire and is
	 * dropped there before IP sees it. A keeps B's old MAC address (a
	 * permanent neighbour entry) while vb takes another, so A's frames
	 * are for another host (PACKET_OTHERHOST) at B. No tc filter: the
	 * debug kernel has no clsact or u32 (a tc drop failed there).
	 */
	ASSERT_EQ(0, run("ip neigh replace " RB " dev va nud permanent lladdr "
			 "$(ip netns exec %s cat /sys/class/net/vb/address)", self->ns));
	ASSERT_EQ(0, run("ip -n %s link set vb down && "
			 "ip -n %s link set vb address 02:00:00:00:00:b0 && "
			 "ip -n %s link set vb up", self->ns, self->ns, self->ns));
	/*
	 * A sends, and re-keys meanwhile, until its outbound generation is
	 * beyond B's lookahead: LOOKAHEAD + 1 re-key periods on an idle
	 * host, more on an emulated debug kernel (a bound, not a sleep).
	 */
	t0 = qkd_now_ms();
	do {
		if (!run("ping -q -c 5 -i 0.2 -W 0.5 " RB " >/dev/null 2>&1"))
			TH_LOG("a ping crossed the outage");
		st = sa_get_state(&self->a, self->sid, &gen);
	} while (gen <= QKD_SA_LOOKAHEAD &&
		 qkd_now_ms() - t0 < 8000ULL * (QKD_SA_LOOKAHEAD + 2) * RESYNC_FAST_REKEY_S);
	TH_LOG("A after the outage: state %d, outbound generation %llu", st,
	       (unsigned long long)gen);
	ASSERT_LT(QKD_SA_LOOKAHEAD, gen) TH_LOG("A did not re-key beyond B's lookahead");
	/* The wire back: vb takes the address A has for it again. */
	ASSERT_EQ(0, run("ip -n %s link set vb down && "
			 "ip -n %s link set vb address $(ip neigh show " RB " dev va | "
			 "awk '{ print $3 }') && ip -n %s link set vb up",
			 self->ns, self->ns, self->ns));

	seen = resync_sniffed(self);
	EXPECT_EQ(0, seen.echo) TH_LOG("%d ICMP echoes in clear during the outage", seen.echo);
	EXPECT_LT(0, seen.esp) TH_LOG("A sent nothing during the outage");

	if (ping_within(self, RESYNC_SELF_MS) && ping_once(self, true)) {
		TH_LOG("recovered by itself");
		resync_both_ok(_metadata, self);
		goto wire;
	}
	for (i = 0; i < 2; i++) {
		st = resync_state(i ? &self->b : &self->a, self->sid, &why);
		TH_LOG("site %c after the outage: state %d reason %d", 'A' + i, st, why);
	}
	seen = resync_sniffed(self);
	EXPECT_EQ(0, seen.echo) TH_LOG("%d ICMP echoes in clear after the outage", seen.echo);

	/*
	 * The documented recovery: SA_DEL at both ends (block policies stay,
	 * so nothing crosses in clear), a new binding at both ends at an
	 * index beyond every one either end took, without SA_POLICY (the
	 * block policies hold the slots), then each block policy swapped
	 * for one with the binding's template (update: no gap between).
	 */
	first = 8 + 2 * (gen + 2 * QKD_SA_LOOKAHEAD + 2);
	ASSERT_NL_OK(&self->a, sa_simple(&self->a, QKD_CMD_SA_DEL, self->sid));
	ASSERT_NL_OK(&self->b, sa_simple(&self->b, QKD_CMD_SA_DEL, self->sid));
	EXPECT_FALSE(ping_once(self, false)) TH_LOG("a ping crossed between the bindings");
	ASSERT_NL_OK(&self->a, resync_bind_at(&self->a, self->sid, RA, RB, first,
					      RESYNC_FAST_REKEY_S, false));
	ASSERT_NL_OK(&self->b, resync_bind_at(&self->b, self->sid, RB, RA, first, 3600,
					      false));
	EXPECT_FALSE(ping_once(self, false)) TH_LOG("a ping crossed the block policies");
	ASSERT_EQ(0, run("ip xfrm policy update src " RA "/32 dst " RB "/32 dir out "
			 "tmpl proto esp reqid 1 mode transport && "
			 "ip xfrm policy update src " RB "/32 dst " RA "/32 dir in "
			 "tmpl proto esp reqid 1 mode transport"));
	ASSERT_EQ(0, run("ip -n %s xfrm policy update src " RB "/32 dst " RA "/32 dir out "
			 "tmpl proto esp reqid 1 mode transport && "
			 "ip -n %s xfrm policy update src " RA "/32 dst " RB "/32 dir in "
			 "tmpl proto esp reqid 1 mode transport", self->ns, self->ns));
	EXPECT_NE(0, run("ip xfrm policy | grep -q 'action block'"))
		TH_LOG("a block policy left at A");
	EXPECT_TRUE(ping_within(self, 5000)) TH_LOG("no ping through the new binding");
	EXPECT_TRUE(ping_once(self, true));
	resync_both_ok(_metadata, self);
wire:
	seen = resync_sniffed(self);
	EXPECT_EQ(0, seen.echo) TH_LOG("%d ICMP echoes crossed in clear", seen.echo);
	EXPECT_LT(0, seen.esp);
}


/* ------------------------------------------------- teardown fails closed */

enum wire_teardown {
	WIRE_SA_DEL,
	WIRE_SA_DEL_REMOVE,	/* SA_DEL with QKD_A_SA_REMOVE_PROTECTION */
	WIRE_STREAM_DEL,
	WIRE_LINK_DEL,
};

static int wire_teardown(struct qkd_nl *nl, const uint8_t *sid, enum wire_teardown how)
{
	struct nl_msg *m;

	switch (how) {
	case WIRE_SA_DEL:
		return sa_simple(nl, QKD_CMD_SA_DEL, sid);
	case WIRE_SA_DEL_REMOVE:
		m = qkd_msg(nl, QKD_CMD_SA_DEL, 0);
		nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
		nla_put_flag(m, QKD_A_SA_REMOVE_PROTECTION);
		return qkd_req(nl, m);
	case WIRE_STREAM_DEL:
		return qkd_stream_del(nl, sid);
	case WIRE_LINK_DEL:
		return qkd_link_del(nl, 1);
	}
	return -EINVAL;
}

/*
 * The attack: a binding protects A <-> B; it is torn down (at both ends,
 * so that neither end's policies mask the other's); does anything cross
 * the wire in clear? It must not until an administrator removes the block
 * policies the teardown left, and then it must (or the sniffer proves
 * nothing).
 */
static void wire_teardown_test(struct __test_metadata *_metadata,
			       FIXTURE_DATA(xfrm) *self, enum wire_teardown how)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_wire_seen s;
	struct qkd_wire w;
	struct qkd_wire_spd spd;
	int err, i;

	if (getenv("QKD_TEST_SAME_NETNS"))
		SKIP(return, "needs a netns of its own (QKD_TEST_SAME_NETNS is set)");
	err = qkd_wire_up(&w);
	ASSERT_EQ(0, err) TH_LOG("two netns over veth: %d (%s)", err, strerror(-err));
	ASSERT_NL_OK(nl, qkd_wire_bind(&w, nl, QKD_LINK_ROLE_INITIATOR, QKD_WIRE_A, QKD_WIRE_B));
	ASSERT_NL_OK(&w.nl_b, qkd_wire_bind(&w, &w.nl_b, QKD_LINK_ROLE_RESPONDER,
					    QKD_WIRE_B, QKD_WIRE_A));
	qkd_wire_sniffed(&w);
	ASSERT_TRUE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("no ping through the binding");
	s = qkd_wire_sniffed(&w);
	ASSERT_EQ(0, s.echo) TH_LOG("the bound ping crossed in clear");
	ASSERT_LT(0, s.esp) TH_LOG("the bound ping crossed, but not in ESP");

	ASSERT_NL_OK(nl, wire_teardown(nl, w.sid, how));
	ASSERT_NL_OK(&w.nl_b, wire_teardown(&w.nl_b, w.sid, how));
	EXPECT_EQ(0, sa_count(nl));
	EXPECT_EQ(0, xfrm_count(NULL)) TH_LOG("the binding's SAs outlived it");

	if (how == WIRE_SA_DEL_REMOVE) {
		/* The administrator asked for the protection to go: it went. */
		EXPECT_EQ(0, qkd_wire_policies(&w, w.ns_a, "\tdir "));
		EXPECT_EQ(0, qkd_wire_policies(&w, w.ns_b, "\tdir "));
		EXPECT_TRUE(qkd_wire_ping(w.ns_a, QKD_WIRE_B))
			TH_LOG("no clear ping after remove-protection");
		s = qkd_wire_sniffed(&w);
		EXPECT_LT(0, s.reply);
		goto out;
	}

	/* At each end: out and in, same selector and priority, no template. */
	for (i = 0; i < 2; i++) {
		qkd_wire_spd_read(&w, i ? w.ns_b : w.ns_a, &spd);
		QKD_CTX("netns %c", i ? 'B' : 'A');
		EXPECT_EQ(2, qkd_wire_spd_count(&spd, "\tdir "))
			TH_LOG("%s, whose SPD is\n%s", qkd_ctx, spd.text);
		EXPECT_EQ(2, qkd_wire_spd_count(&spd, "action block"))
			TH_LOG("%s, whose SPD is\n%s", qkd_ctx, spd.text);
		EXPECT_EQ(2, qkd_wire_spd_count(&spd, "priority 7 "))
			TH_LOG("%s, whose SPD is\n%s", qkd_ctx, spd.text);
		EXPECT_EQ(0, qkd_wire_spd_count(&spd, "tmpl"))
			TH_LOG("%s, whose SPD is\n%s", qkd_ctx, spd.text);
		EXPECT_EQ(1, qkd_wire_spd_count(&spd, "src " QKD_WIRE_A "/32 dst " QKD_WIRE_B "/32"))
			TH_LOG("%s, whose SPD is\n%s", qkd_ctx, spd.text);
		EXPECT_EQ(1, qkd_wire_spd_count(&spd, "src " QKD_WIRE_B "/32 dst " QKD_WIRE_A "/32"))
			TH_LOG("%s, whose SPD is\n%s", qkd_ctx, spd.text);
	}
	QKD_CTX_CLEAR();

	EXPECT_FALSE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("A reached B after the teardown");
	EXPECT_FALSE(qkd_wire_ping(w.ns_b, QKD_WIRE_A)) TH_LOG("B reached A after the teardown");
	s = qkd_wire_sniffed(&w);
	EXPECT_EQ(0, s.echo) TH_LOG("%d ICMP echoes in clear on the wire after the teardown",
				    s.echo);

	/* B's administrator lifts B's block: A's in policy still drops B's echoes. */
	EXPECT_EQ(0, qkd_wire_sh(w.ns_b, "ip xfrm policy flush"));
	EXPECT_FALSE(qkd_wire_ping(w.ns_b, QKD_WIRE_A)) TH_LOG("A answered a clear echo");
	s = qkd_wire_sniffed(&w);
	EXPECT_LT(0, s.echo) TH_LOG("B's clear echoes should be on the wire now");
	EXPECT_EQ(0, s.reply) TH_LOG("A's in block policy let a clear echo in");

	/* A's administrator lifts A's: clear traffic flows, and the sniffer sees it. */
	EXPECT_EQ(0, qkd_wire_sh(w.ns_a, "ip xfrm policy delete src " QKD_WIRE_A "/32 dst "
				 QKD_WIRE_B "/32 dir out && ip xfrm policy delete src "
				 QKD_WIRE_B "/32 dst " QKD_WIRE_A "/32 dir in"));
	EXPECT_EQ(0, qkd_wire_policies(&w, w.ns_a, "\tdir "));
	EXPECT_TRUE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("no clear ping once unblocked");
	s = qkd_wire_sniffed(&w);
	EXPECT_LT(0, s.reply);
	EXPECT_EQ(0, s.esp);
out:
	EXPECT_EQ(0, w.nl_b.key_data_seen);
	qkd_wire_down(&w);
}

TEST_F_TIMEOUT(xfrm, wire_sa_del_blocks, 120)
{
	wire_teardown_test(_metadata, self, WIRE_SA_DEL);
}

TEST_F_TIMEOUT(xfrm, wire_stream_del_blocks, 120)
{
	wire_teardown_test(_metadata, self, WIRE_STREAM_DEL);
}

TEST_F_TIMEOUT(xfrm, wire_link_del_blocks, 120)
{
	wire_teardown_test(_metadata, self, WIRE_LINK_DEL);
}

TEST_F_TIMEOUT(xfrm, wire_sa_del_remove_protection, 120)
{
	wire_teardown_test(_metadata, self, WIRE_SA_DEL_REMOVE);
}

/*
 * A policy of the binding's that the administrator replaced or deleted is
 * theirs: the teardown leaves what is in its place alone and does not put
 * a block policy where they removed one.
 */
TEST_F(xfrm, teardown_leaves_hand_made_policies_alone)
{
	struct qkd_nl *nl = &self->nl;
	struct nl_msg *m;

	setup_stream(_metadata, nl, self->sid, QKD_LINK_ROLE_INITIATOR, KS, 8);
	m = sa_msg(nl, self->sid, "10.1.0.1", "10.1.0.2");
	qkd_policy_begin(m);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
	ASSERT_EQ(2, policy_count(NULL));
	ASSERT_EQ(0, system("ip xfrm policy update src 10.1.0.1/32 dst 10.1.0.2/32 "
			    "dir out priority 0 action allow"));
	ASSERT_EQ(0, system("ip xfrm policy delete src 10.1.0.2/32 dst 10.1.0.1/32 dir in"));
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	EXPECT_EQ(1, policy_count(NULL));
	EXPECT_EQ(1, policy_count("dir out"));
	EXPECT_EQ(0, policy_count("action block"));
}

/*
 * A namespace that dies with a live binding: the binding goes with it and
 * nothing is left for XFRM's own exit to trip on (its exit warns about a
 * policy added after it flushed the SPD: the fixture checks the log).
 */
TEST_F_TIMEOUT(xfrm, netns_exit_with_binding_is_clean, 120)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_wire w;
	int err;

	if (getenv("QKD_TEST_SAME_NETNS"))
		SKIP(return, "needs a netns of its own (QKD_TEST_SAME_NETNS is set)");
	err = qkd_wire_up(&w);
	ASSERT_EQ(0, err) TH_LOG("two netns over veth: %d (%s)", err, strerror(-err));
	ASSERT_NL_OK(nl, qkd_wire_bind_both(&w, nl));
	ASSERT_TRUE(qkd_wire_ping(w.ns_a, QKD_WIRE_B));
	EXPECT_TRUE(qkd_wire_drop_b(&w)) TH_LOG("netns B not cleaned up in 30 s");
	/* A's binding and its policies are A's: untouched. */
	EXPECT_EQ(1, sa_count(nl));
	EXPECT_EQ(2, policy_count("tmpl"));
	qkd_wire_down(&w);
}

QKD_TEST_MAIN_XFRM
