// SPDX-License-Identifier: GPL-2.0-only
/*
 * A security module may refuse what the qkd module does on its caller's
 * behalf, as it may refuse xfrm_user and setsockopt(2) (Documentation/
 * ipsec.md, "xfrm citizenship"; abi.md, QKD_IOC_ALG_SETKEY): a BPF LSM
 * program (lsm_deny.bpf.c, loaded here with libbpf) refuses, when switched
 * on and only for this test's process, xfrm_state_delete_security and
 * socket_setsockopt(SOL_ALG, ALG_SET_KEY), and counts the calls.
 *
 * - SA_DEL asks security_xfrm_state_delete() for every SA of the binding
 *   before any goes: refused, it fails with the LSM's errno and an extended
 *   ACK, and the binding, its SAs, its policies and its traffic stay as they
 *   were. xfrm_user's DELSA is refused alike (the program works).
 * - Deleting the bound stream or its link asks the same, and is refused
 *   alike; the namespace going asks no LSM (as xfrm's own namespace exit):
 *   it deletes while the LSM would refuse.
 * - QKD_IOC_ALG_SETKEY keys the socket through do_sock_setsockopt() from
 *   6.9 on: the LSM's refusal is the ioctl's errno and costs no key (the
 *   key goes back to its index, unread by the socket). Before 6.9 (6.1) no
 *   exported function runs the hook: the ioctl keys the socket although
 *   the LSM would refuse setsockopt(2) -- pinned here as documented.
 *
 * SKIP where no BPF LSM program can run: a kernel without BTF (the debug
 * kernel, tests/vm/debug-kernel.config), without CONFIG_BPF_LSM or "bpf"
 * in its active LSMs, or without CONFIG_SECURITY_NETWORK_XFRM.
 */
#include <arpa/inet.h>
#include <libgen.h>
#include <linux/btf.h>
#include <linux/if_alg.h>
#include <linux/xfrm.h>
#include <sys/mount.h>
#include <sys/utsname.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "qkd_test.h"
#include "qkd_wire.h"
#include "lsm_deny.h"

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SOL_ALG
#define SOL_ALG 279
#endif

#define KS	36	/* AES-256 key + 4-byte salt */
#define SEED	0x5a
#define NKEYS	8

/* ------------------------------------------------------ the BPF program */

struct lsm {
	struct bpf_object *obj;
	struct bpf_link *link[2];
	int cfg, counts;	/* map fds */
	struct qkd_lsm_cfg c;	/* what the program was last told */
};

/* libbpf's warnings (a verifier log among them) as TAP comments. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static char text[1 << 16];
	char *line, *save = NULL;

	if (level == LIBBPF_DEBUG)
		return 0;
	vsnprintf(text, sizeof(text), fmt, ap);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fprintf(stderr, "# %s\n", line);
	return 0;
}

/*
 * Can a BPF LSM program run here? NULL if so, else why not (a SKIP).
 * securityfs is mounted if it is not (the guest mounts no more than it
 * needs), to read the active LSMs.
 */
static const char *lsm_unavailable(void)
{
	char lsms[512] = "";
	struct btf *btf;
	ssize_t n;
	int fd, id;

	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return "kernel without BTF (CONFIG_DEBUG_INFO_BTF): no BPF LSM program can attach";
	if (access("/sys/kernel/security/lsm", R_OK))
		mount("securityfs", "/sys/kernel/security", "securityfs", 0, NULL);
	fd = open("/sys/kernel/security/lsm", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "no /sys/kernel/security/lsm (CONFIG_SECURITYFS): cannot tell whether the BPF LSM is active";
	n = read(fd, lsms, sizeof(lsms) - 1);
	close(fd);
	lsms[n > 0 ? n : 0] = 0;
	if (!strstr(lsms, "bpf"))
		return "the BPF LSM is not active (CONFIG_BPF_LSM, and \"bpf\" in CONFIG_LSM or lsm=)";
	btf = btf__load_vmlinux_btf();
	if (!btf)
		return "cannot read the kernel's BTF";
	id = btf__find_by_name_kind(btf, "bpf_lsm_xfrm_state_delete_security",
				    BTF_KIND_FUNC);
	btf__free(btf);
	if (id < 0)
		return "kernel without CONFIG_SECURITY_NETWORK_XFRM: security_xfrm_state_delete() asks no LSM";
	return NULL;
}

/* The compiled program, next to this binary (Makefile). */
static int lsm_path(char *buf, size_t len)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return -errno;
	exe[n] = 0;
	snprintf(buf, len, "%s/lsm_deny.bpf.o", dirname(exe));
	return 0;
}

static int lsm_tell(struct lsm *l)
{
	__u32 k = 0;

	return bpf_map_update_elem(l->cfg, &k, &l->c, BPF_ANY) ? -errno : 0;
}

static struct qkd_lsm_counts lsm_counts(struct lsm *l)
{
	struct qkd_lsm_counts n;
	__u32 k = 0;

	memset(&n, 0xff, sizeof(n));	/* a failed read shows */
	bpf_map_lookup_elem(l->counts, &k, &n);
	return n;
}

static void lsm_reset(struct lsm *l)
{
	struct qkd_lsm_counts n;
	__u32 k = 0;

	memset(&n, 0, sizeof(n));
	bpf_map_update_elem(l->counts, &k, &n, BPF_ANY);
}

static int lsm_load(struct lsm *l, const char *path)
{
	static const char *const progs[2] = {
		"qkd_xfrm_state_delete", "qkd_socket_setsockopt",
	};
	struct bpf_program *p;
	int i, err;

	l->obj = bpf_object__open_file(path, NULL);
	if (!l->obj) {
		err = -errno;
		fprintf(stderr, "# open %s: %s\n", path, strerror(-err));
		return err;
	}
	err = bpf_object__load(l->obj);
	if (err)
		return err;
	for (i = 0; i < 2; i++) {
		p = bpf_object__find_program_by_name(l->obj, progs[i]);
		if (!p)
			return -ENOENT;
		l->link[i] = bpf_program__attach_lsm(p);
		if (!l->link[i]) {
			err = -errno;
			fprintf(stderr, "# attach %s: %s\n", progs[i], strerror(-err));
			return err;
		}
	}
	l->cfg = bpf_object__find_map_fd_by_name(l->obj, "lsm_cfg");
	l->counts = bpf_object__find_map_fd_by_name(l->obj, "lsm_counts");
	if (l->cfg < 0 || l->counts < 0)
		return -ENOENT;
	memset(&l->c, 0, sizeof(l->c));
	l->c.tgid = getpid();
	l->c.xfrm_errno = EPERM;
	l->c.setkey_errno = EPERM;
	err = lsm_tell(l);
	lsm_reset(l);
	return err;
}

/* Detach and unload (the links go with the object). */
static void lsm_unload(struct lsm *l)
{
	int i;

	for (i = 0; i < 2; i++)
		if (l->link[i])
			bpf_link__destroy(l->link[i]);
	if (l->obj)
		bpf_object__close(l->obj);
	memset(l, 0, sizeof(*l));
	l->cfg = l->counts = -1;
}

/* ---------------------------------------------------------- the fixture */

FIXTURE(lsm) {
	struct qkd_nl nl;
	int dev;
	int kmsg;
	uint8_t sid[QKD_STREAM_ID_LEN];
	struct lsm l;
};

FIXTURE_SETUP(lsm)
{
	const char *why;
	char path[4200];
	int err;

	self->dev = self->kmsg = -1;
	self->l.cfg = self->l.counts = -1;
	err = qkd_enter_test_netns();
	if (err == -EPERM)
		QKD_SKIP_SETUP("needs root (unshare CLONE_NEWNET)");
	ASSERT_EQ(0, err);
	err = qkd_nl_open(&self->nl);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	self->dev = qkd_dev_open();
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", QKD_DEV_PATH, strerror(-self->dev));
	self->kmsg = qkd_kmsg_open();
	qkd_sid(self->sid, 13);
	if (system("modprobe -q -a esp4 xfrm_user algif_hash 2>/dev/null")) {
		/* not fatal: the kernel may have them built in */
	}
	why = lsm_unavailable();
	if (why)
		QKD_SKIP_SETUP("%s", why);
	/* Available: from here on, anything that does not work is a failure. */
	libbpf_set_print(libbpf_log);
	ASSERT_EQ(0, lsm_path(path, sizeof(path)));
	err = lsm_load(&self->l, path);
	ASSERT_EQ(0, err) TH_LOG("load and attach %s: %s", path, strerror(-err));
}

FIXTURE_TEARDOWN(lsm)
{
	QKD_TEARDOWN_BEGIN();
	lsm_unload(&self->l);
	EXPECT_EQ(0, self->nl.key_data_seen) TH_LOG("a reply or event carried QKD_A_KEYS_DATA");
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->dev >= 0)
		close(self->dev);
	if (self->kmsg >= 0)
		close(self->kmsg);
	qkd_nl_close(&self->nl);
}

/* ---------------------------------------------------------------- xfrm */

static int sa_simple(struct qkd_nl *nl, int cmd, const uint8_t *sid)
{
	struct nl_msg *m = qkd_msg(nl, cmd, 0);

	nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	return qkd_req(nl, m);
}

/* Bindings of this netns (SA_GET dump), or -errno. */
static int sa_count(struct qkd_nl *nl)
{
	int err = qkd_req(nl, qkd_msg(nl, QKD_CMD_SA_GET, NLM_F_DUMP));

	return err ? err : qkd_count(nl, QKD_CMD_SA_GET);
}

/* The output of @cmd (run in this netns) into @buf; -1 on error. */
static int cmd_text(const char *cmd, char *buf, size_t len)
{
	FILE *f = popen(cmd, "r");
	size_t n;

	buf[0] = 0;
	if (!f)
		return -1;
	n = fread(buf, 1, len - 1, f);
	buf[n] = 0;
	return pclose(f) ? -1 : (int)n;
}

/* Lines of @text containing @what. */
static int lines_with(const char *text, const char *what)
{
	const char *p = text;
	int n = 0;

	while ((p = strstr(p, what))) {
		n++;
		p = strchr(p, '\n');
		if (!p)
			break;
	}
	return n;
}

/* Link 1 (@role), stream @sid with NKEYS pattern keys, a binding with policies. */
static void bind_one(struct __test_metadata *_metadata, struct qkd_nl *nl,
		     const uint8_t *sid)
{
	struct nl_msg *m;
	uint8_t a[4];

	ASSERT_NL_OK(nl, qkd_link_new(nl, 1, "l1", QKD_LINK_ROLE_INITIATOR, NULL));
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid, 0, NKEYS, KS, SEED));
	m = qkd_msg(nl, QKD_CMD_SA_NEW, 0);
	nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, sid);
	nla_put_u64(m, QKD_A_SA_FIRST_INDEX, 0);
	inet_pton(AF_INET, "10.1.0.1", a);
	nla_put(m, QKD_A_SA_LOCAL_IPV4, 4, a);
	inet_pton(AF_INET, "10.1.0.2", a);
	nla_put(m, QKD_A_SA_REMOTE_IPV4, 4, a);
	qkd_policy_begin(m);
	ASSERT_NL_OK(nl, qkd_req(nl, m));
}

/* XFRM_MSG_DELSA (xfrm_user, `ip xfrm state delete`) of an IPv4 ESP SA. */
static int xfrm_delsa(const char *dst, uint32_t spi)
{
	struct {
		struct nlmsghdr h;
		struct xfrm_usersa_id id;
	} req = {
		.h = {
			.nlmsg_len = sizeof(req),
			.nlmsg_type = XFRM_MSG_DELSA,
			.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK,
			.nlmsg_seq = 1,
		},
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	char buf[4096];
	int fd, err = -EPROTO;
	ssize_t n;

	req.id.family = AF_INET;
	req.id.proto = IPPROTO_ESP;
	req.id.spi = htonl(spi);
	inet_pton(AF_INET, dst, &req.id.daddr);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_XFRM);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, &req, sizeof(req), 0) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	n = recv(fd, buf, sizeof(buf), 0);
	if (n >= (ssize_t)NLMSG_LENGTH(sizeof(struct nlmsgerr))) {
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (h->nlmsg_type == NLMSG_ERROR)
			err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;
	}
	close(fd);
	return err;
}

/* Everything SA_DEL could change, in this netns. */
struct xstate {
	struct qkd_snap snap;		/* status, links, streams */
	struct qkd_obj binding;		/* SA_GET */
	char sad[8192], spd[8192];	/* ip xfrm state / policy */
};

static void xstate_take(struct __test_metadata *_metadata, struct qkd_nl *nl,
			const uint8_t *sid, struct xstate *x)
{
	ASSERT_EQ(0, qkd_snap_take(nl, &x->snap));
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_GET, sid));
	ASSERT_EQ(1, nl->r.n);
	x->binding = nl->r.v[0];
	ASSERT_LE(0, cmd_text("ip xfrm state 2>&1", x->sad, sizeof(x->sad)));
	ASSERT_LE(0, cmd_text("ip xfrm policy 2>&1", x->spd, sizeof(x->spd)));
}

static void xstate_same(struct __test_metadata *_metadata,
			const struct xstate *b, const struct xstate *a)
{
	EXPECT_EQ(NULL, qkd_snap_diff(&b->snap, &a->snap))
		TH_LOG("the node's %s changed", qkd_snap_diff(&b->snap, &a->snap));
	EXPECT_TRUE(qkd_obj_eq(&b->binding, &a->binding)) TH_LOG("the binding (SA_GET) changed");
	EXPECT_STREQ(b->sad, a->sad) TH_LOG("the SAD changed");
	EXPECT_STREQ(b->spd, a->spd) TH_LOG("the SPD changed");
}

static void xstate_free(struct xstate *x)
{
	qkd_snap_free(&x->snap);
}

/*
 * The attack: an LSM forbids this process to delete SAs; SA_DEL must not
 * delete the binding's anyway. Two sites over veth, ping through the
 * binding; A's SA_DEL is refused (EPERM, extended ACK, one question asked
 * and refused), and A's node, binding, SAD and SPD are what they were, the
 * same SAs still carry A's ping in ESP. With the LSM allowing, SA_DEL asks
 * for every SA and deletes the binding (its policies become block
 * policies, ipsec.md "Teardown").
 */
TEST_F_TIMEOUT(lsm, sa_del_refused_changes_nothing, 120)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_lsm_counts n;
	struct qkd_wire_seen s;
	struct xstate *b, *a;
	struct qkd_wire w;
	int err, nsa;

	if (getenv("QKD_TEST_SAME_NETNS"))
		SKIP(return, "needs a netns of its own (QKD_TEST_SAME_NETNS is set)");
	b = calloc(1, sizeof(*b));
	a = calloc(1, sizeof(*a));
	ASSERT_TRUE(a && b);
	err = qkd_wire_up(&w);
	ASSERT_EQ(0, err) TH_LOG("two netns over veth: %d (%s)", err, strerror(-err));
	memcpy(self->sid, w.sid, QKD_STREAM_ID_LEN);
	ASSERT_NL_OK(nl, qkd_wire_bind_both(&w, nl));
	qkd_wire_sniffed(&w);
	ASSERT_TRUE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("no ping through the binding");
	s = qkd_wire_sniffed(&w);
	ASSERT_EQ(0, s.echo);
	ASSERT_LT(0, s.esp);

	xstate_take(_metadata, nl, w.sid, b);
	nsa = lines_with(b->sad, "proto esp");
	ASSERT_LE(2, nsa) TH_LOG("A's SAD:\n%s", b->sad);
	ASSERT_EQ(2, lines_with(b->spd, "tmpl")) TH_LOG("A's SPD:\n%s", b->spd);

	self->l.c.xfrm_deny_from = 1;
	self->l.c.xfrm_errno = EPERM;
	ASSERT_EQ(0, lsm_tell(&self->l));
	lsm_reset(&self->l);
	err = sa_simple(nl, QKD_CMD_SA_DEL, w.sid);
	EXPECT_EQ(-EPERM, err) TH_LOG("SA_DEL under an LSM that refuses: %d (%s)", err,
				      strerror(-err));
	EXPECT_TRUE(strstr(nl->ext_msg, "security module") != NULL)
		TH_LOG("extended ACK '%s'", nl->ext_msg);
	n = lsm_counts(&self->l);
	EXPECT_EQ(1, n.xfrm_calls_test) TH_LOG("security_xfrm_state_delete() calls");
	EXPECT_EQ(1, n.xfrm_denied);

	xstate_take(_metadata, nl, w.sid, a);
	xstate_same(_metadata, b, a);
	/* The same SAs carry the traffic, still in ESP. */
	EXPECT_TRUE(qkd_wire_ping(w.ns_a, QKD_WIRE_B)) TH_LOG("no ping after the refused SA_DEL");
	s = qkd_wire_sniffed(&w);
	EXPECT_EQ(0, s.echo) TH_LOG("ICMP in clear after the refused SA_DEL");
	EXPECT_LT(0, s.esp);
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_GET, w.sid));
	EXPECT_EQ(QKD_SA_STATE_OK, qkd_obj_u(&nl->r.v[0], QKD_A_SA_STATE));
	EXPECT_EQ(qkd_obj_u(&b->binding, QKD_T_OUT(SPI)),
		  qkd_obj_u(&nl->r.v[0], QKD_T_OUT(SPI)));
	EXPECT_LT(qkd_obj_u(&b->binding, QKD_T_OUT(PACKETS)),
		  qkd_obj_u(&nl->r.v[0], QKD_T_OUT(PACKETS)));

	/* Allowed: every SA is asked, all go, the policies block. */
	self->l.c.xfrm_deny_from = 0;
	ASSERT_EQ(0, lsm_tell(&self->l));
	lsm_reset(&self->l);
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, w.sid));
	n = lsm_counts(&self->l);
	EXPECT_EQ((uint64_t)nsa, n.xfrm_calls_test) TH_LOG("one question per SA");
	EXPECT_EQ(0, n.xfrm_denied);
	EXPECT_EQ(0, sa_count(nl));
	ASSERT_LE(0, cmd_text("ip xfrm state 2>&1", a->sad, sizeof(a->sad)));
	EXPECT_EQ(0, lines_with(a->sad, "proto esp")) TH_LOG("A's SAD:\n%s", a->sad);
	ASSERT_LE(0, cmd_text("ip xfrm policy 2>&1", a->spd, sizeof(a->spd)));
	EXPECT_EQ(2, lines_with(a->spd, "action block")) TH_LOG("A's SPD:\n%s", a->spd);

	EXPECT_EQ(0, w.nl_b.key_data_seen);
	qkd_wire_down(&w);
	xstate_free(b);
	xstate_free(a);
	free(b);
	free(a);
}

/*
 * Every SA is asked before any goes: the LSM allows the first questions
 * and refuses the last one; not one SA may be gone. The refusal's errno
 * (here EACCES) is the LSM's, passed through.
 */
TEST_F(lsm, sa_del_asks_every_sa_before_any_goes)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_lsm_counts n;
	struct xstate *b, *a;
	int err, nsa;

	b = calloc(1, sizeof(*b));
	a = calloc(1, sizeof(*a));
	ASSERT_TRUE(a && b);
	bind_one(_metadata, nl, self->sid);
	xstate_take(_metadata, nl, self->sid, b);
	nsa = lines_with(b->sad, "proto esp");
	ASSERT_LE(2, nsa) TH_LOG("SAD:\n%s", b->sad);

	self->l.c.xfrm_deny_from = nsa;
	self->l.c.xfrm_errno = EACCES;
	ASSERT_EQ(0, lsm_tell(&self->l));
	lsm_reset(&self->l);
	err = sa_simple(nl, QKD_CMD_SA_DEL, self->sid);
	EXPECT_EQ(-EACCES, err) TH_LOG("SA_DEL: %d (%s), extack '%s'", err, strerror(-err),
				       nl->ext_msg);
	EXPECT_TRUE(nl->ext_has_msg);
	n = lsm_counts(&self->l);
	EXPECT_EQ((uint64_t)nsa, n.xfrm_calls_test);
	EXPECT_EQ(1, n.xfrm_denied);
	xstate_take(_metadata, nl, self->sid, a);
	xstate_same(_metadata, b, a);

	self->l.c.xfrm_deny_from = 0;
	ASSERT_EQ(0, lsm_tell(&self->l));
	ASSERT_NL_OK(nl, sa_simple(nl, QKD_CMD_SA_DEL, self->sid));
	EXPECT_EQ(0, sa_count(nl));
	xstate_free(b);
	xstate_free(a);
	free(b);
	free(a);
}

/*
 * The program refuses xfrm_user's DELSA from this process too, with the
 * same errno: SA_DEL and `ip xfrm state delete` answer alike.
 */
TEST_F(lsm, xfrm_user_delsa_refused_alike)
{
	struct qkd_nl *nl = &self->nl;
	uint32_t spi = qkd_sa_spi(self->sid, 0);	/* initiator's out SA */
	char sad[8192], want[32];
	int err;

	bind_one(_metadata, nl, self->sid);
	self->l.c.xfrm_deny_from = 1;
	ASSERT_EQ(0, lsm_tell(&self->l));
	err = xfrm_delsa("10.1.0.2", spi);
	EXPECT_EQ(-EPERM, err) TH_LOG("DELSA: %d (%s)", err, strerror(-err));
	EXPECT_EQ(1, lsm_counts(&self->l).xfrm_denied);
	ASSERT_LE(0, cmd_text("ip xfrm state 2>&1", sad, sizeof(sad)));
	snprintf(want, sizeof(want), "spi 0x%08x ", spi);
	EXPECT_EQ(1, lines_with(sad, want)) TH_LOG("the refused DELSA deleted it; SAD:\n%s", sad);
	self->l.c.xfrm_deny_from = 0;
	ASSERT_EQ(0, lsm_tell(&self->l));
	EXPECT_EQ(0, xfrm_delsa("10.1.0.2", spi));
}

enum teardown { TD_STREAM, TD_LINK };

/*
 * Deleting the binding's stream or link would delete its SAs: a process the
 * LSM refuses SA_DEL must not get the same by deleting the stream or link
 * instead. The binding asks for each SA first, as SA_DEL and xfrm_user's
 * flush do: refused, nothing goes (the stream, its link, the binding, its
 * SAs and policies stay); allowed, every SA is asked and the policies
 * become block policies (Documentation/ipsec.md, "xfrm citizenship").
 */
static void teardown_asks_the_lsm(struct __test_metadata *_metadata,
				  FIXTURE_DATA(lsm) *self, enum teardown how)
{
	const char *what = how == TD_STREAM ? "STREAM_DEL" : "LINK_DEL";
	struct qkd_nl *nl = &self->nl;
	struct qkd_lsm_counts n;
	char sad[8192], spd[8192];
	int err, nsa;

	bind_one(_metadata, nl, self->sid);
	ASSERT_LE(0, cmd_text("ip xfrm state 2>&1", sad, sizeof(sad)));
	nsa = lines_with(sad, "proto esp");
	ASSERT_LE(2, nsa) TH_LOG("SAD:\n%s", sad);

	self->l.c.xfrm_deny_from = 1;
	self->l.c.xfrm_errno = EPERM;
	ASSERT_EQ(0, lsm_tell(&self->l));
	lsm_reset(&self->l);
	err = how == TD_STREAM ? qkd_stream_del(nl, self->sid) : qkd_link_del(nl, 1);
	EXPECT_EQ(-EPERM, err) TH_LOG("%s under an LSM that refuses: %d (%s)", what,
				      err, strerror(-err));
	EXPECT_TRUE(strstr(nl->ext_msg, "security module") != NULL)
		TH_LOG("extended ACK '%s'", nl->ext_msg);
	n = lsm_counts(&self->l);
	EXPECT_EQ(1, n.xfrm_calls_test) TH_LOG("security_xfrm_state_delete() calls");
	EXPECT_EQ(1, n.xfrm_denied);
	EXPECT_EQ(1, sa_count(nl)) TH_LOG("the refused %s took the binding", what);
	ASSERT_LE(0, cmd_text("ip xfrm state 2>&1", sad, sizeof(sad)));
	EXPECT_EQ(nsa, lines_with(sad, "proto esp")) TH_LOG("SAD:\n%s", sad);
	ASSERT_LE(0, cmd_text("ip xfrm policy 2>&1", spd, sizeof(spd)));
	EXPECT_EQ(0, lines_with(spd, "action block")) TH_LOG("SPD:\n%s", spd);

	/* Allowed: every SA is asked, all go, the policies block. */
	self->l.c.xfrm_deny_from = 0;
	ASSERT_EQ(0, lsm_tell(&self->l));
	lsm_reset(&self->l);
	if (how == TD_STREAM)
		ASSERT_NL_OK(nl, qkd_stream_del(nl, self->sid));
	else
		ASSERT_NL_OK(nl, qkd_link_del(nl, 1));
	n = lsm_counts(&self->l);
	EXPECT_EQ((uint64_t)nsa, n.xfrm_calls_test) TH_LOG("one question per SA");
	EXPECT_EQ(0, n.xfrm_denied);
	EXPECT_EQ(0, sa_count(nl));
	ASSERT_LE(0, cmd_text("ip xfrm state 2>&1", sad, sizeof(sad)));
	EXPECT_EQ(0, lines_with(sad, "proto esp")) TH_LOG("SAD:\n%s", sad);
	ASSERT_LE(0, cmd_text("ip xfrm policy 2>&1", spd, sizeof(spd)));
	EXPECT_EQ(2, lines_with(spd, "action block")) TH_LOG("SPD:\n%s", spd);
}

TEST_F(lsm, stream_del_refused_changes_nothing)
{
	teardown_asks_the_lsm(_metadata, self, TD_STREAM);
}

TEST_F(lsm, link_del_refused_changes_nothing)
{
	teardown_asks_the_lsm(_metadata, self, TD_LINK);
}

/*
 * A namespace that goes takes its bindings' SAs without asking an LSM
 * (xfrm flushes the rest of its SAD the same way): not one question, from
 * any task, while the namespace goes. The counter counts other tasks' too:
 * `ip xfrm state delete` (another process, not refused) is counted first.
 */
TEST_F_TIMEOUT(lsm, netns_exit_asks_no_lsm, 120)
{
	struct qkd_lsm_counts n;
	struct qkd_wire w;
	int err;

	if (getenv("QKD_TEST_SAME_NETNS"))
		SKIP(return, "needs a netns of its own (QKD_TEST_SAME_NETNS is set)");
	err = qkd_wire_up(&w);
	ASSERT_EQ(0, err) TH_LOG("two netns over veth: %d (%s)", err, strerror(-err));
	ASSERT_NL_OK(&w.nl_b, qkd_wire_bind(&w, &w.nl_b, QKD_LINK_ROLE_RESPONDER,
					    QKD_WIRE_B, QKD_WIRE_A));
	ASSERT_NL_OK(&w.nl_b, sa_count(&w.nl_b) == 1 ? 0 : -ENOENT);

	self->l.c.xfrm_deny_from = 1;
	ASSERT_EQ(0, lsm_tell(&self->l));
	lsm_reset(&self->l);
	ASSERT_EQ(0, qkd_wire_sh(w.ns_a, "ip xfrm state add src 10.99.0.1 dst 10.99.0.2 "
				 "proto esp spi 0x1234 mode transport "
				 "aead 'rfc4106(gcm(aes))' 0x" "0102030405060708090a0b0c0d0e0f1011121314"
				 " 128 && ip xfrm state delete src 10.99.0.1 dst 10.99.0.2 "
				 "proto esp spi 0x1234"));
	n = lsm_counts(&self->l);
	ASSERT_EQ(1, n.xfrm_calls) TH_LOG("ip xfrm state delete: the counter missed it");
	ASSERT_EQ(0, n.xfrm_calls_test);

	ASSERT_TRUE(qkd_wire_drop_b(&w)) TH_LOG("netns B not cleaned up in 30 s");
	/* cleanup_net() has run the pernet exits (qkd's, then xfrm's). */
	n = lsm_counts(&self->l);
	EXPECT_EQ(1, n.xfrm_calls) TH_LOG("the namespace's exit asked the LSM %llu times",
					  (unsigned long long)n.xfrm_calls - 1);
	EXPECT_EQ(0, n.xfrm_denied);
	qkd_wire_down(&w);
}

/* ------------------------------------------------------------ ALG_SETKEY */

/* 6.9 and later export do_sock_setsockopt(), which runs the LSM hook. */
static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;

	if (uname(&u) || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return false;
	return ma > major || (ma == major && mi >= minor);
}

/* A bound hmac(sha256) transform socket: fd or -errno. */
static int hmac_tfm(void)
{
	struct sockaddr_alg sa = {
		.salg_family = AF_ALG,
		.salg_type = "hash",
		.salg_name = "hmac(sha256)",
	};
	int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * Is the transform keyed? An operation on an unkeyed hmac fails with
 * ENOKEY (at accept() on 6.12, at the first send() on 6.1).
 */
static int tfm_keyed(int tfm)
{
	uint8_t md[32];
	int op = accept(tfm, NULL, NULL), err = 0;

	if (op < 0)
		return -errno;
	if (send(op, "qkd", 3, 0) != 3 || read(op, md, sizeof(md)) != (ssize_t)sizeof(md))
		err = errno ? -errno : -EIO;
	close(op);
	return err;
}

/* QKD_IOC_ALG_SETKEY: the next key (@index ~0) or @index; 0 or -errno. */
static int alg_setkey(int dev, int tfm, const uint8_t *sid, uint64_t index,
		      struct qkd_alg_setkey *r)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->flags = index == ~0ULL ? 0 : QKD_USE_F_BY_INDEX;
	memcpy(r->stream_id, sid, QKD_STREAM_ID_LEN);
	r->index = index == ~0ULL ? 0 : index;
	r->alg_fd = tfm;
	return qkd_ioctl(dev, QKD_IOC_ALG_SETKEY, r);
}

static void stream_with_keys(struct __test_metadata *_metadata, struct qkd_nl *nl,
			     const uint8_t *sid)
{
	ASSERT_NL_OK(nl, qkd_link_new(nl, 1, "l1", QKD_LINK_ROLE_INITIATOR, NULL));
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid, 0, NKEYS, KS, SEED));
}

/*
 * The program refuses setsockopt(2)'s ALG_SET_KEY from this process, on
 * every kernel (the hook runs in __sys_setsockopt()), with its errno; the
 * same call goes through with the switch off.
 */
TEST_F(lsm, setsockopt_alg_set_key_refused)
{
	uint8_t key[32] = { 1, 2, 3 };
	int tfm = hmac_tfm();

	ASSERT_LE(0, tfm) TH_LOG("bind hmac(sha256): %s", strerror(-tfm));
	self->l.c.setkey_deny = 1;
	self->l.c.setkey_errno = EACCES;
	ASSERT_EQ(0, lsm_tell(&self->l));
	lsm_reset(&self->l);
	EXPECT_EQ(-1, setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key, sizeof(key)));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(-ENOKEY, tfm_keyed(tfm));
	EXPECT_EQ(1, lsm_counts(&self->l).setkey_calls_test);
	self->l.c.setkey_deny = 0;
	ASSERT_EQ(0, lsm_tell(&self->l));
	EXPECT_EQ(0, setsockopt(tfm, SOL_ALG, ALG_SET_KEY, key, sizeof(key)));
	EXPECT_EQ(0, tfm_keyed(tfm));
	EXPECT_EQ(2, lsm_counts(&self->l).setkey_calls_test);
	close(tfm);
}

/*
 * The attack on 6.9 and later: an LSM forbids this process to key AF_ALG
 * sockets; ALG_SETKEY must not key one anyway, and the refusal must cost
 * no key -- not the next key (its index is still the next), not one by
 * index (still there, intact), no counter moved. On 6.1 the hook
 * is not reached (no exported function runs it): the ioctl keys the socket
 * and the key is used, as Documentation/abi.md says.
 */
TEST_F(lsm, alg_setkey_refused_takes_no_key)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_alg_setkey r;
	struct qkd_snap sb, sa;
	uint8_t buf[KS];
	struct qkd_lsm_counts n;
	int tfm, err;

	stream_with_keys(_metadata, nl, self->sid);
	tfm = hmac_tfm();
	ASSERT_LE(0, tfm) TH_LOG("bind hmac(sha256): %s", strerror(-tfm));
	self->l.c.setkey_deny = 1;
	self->l.c.setkey_errno = EACCES;
	ASSERT_EQ(0, lsm_tell(&self->l));
	lsm_reset(&self->l);

	if (!kernel_at_least(6, 9)) {
		/* 6.1: the socket's op is called directly, the hook not at all. */
		err = alg_setkey(self->dev, tfm, self->sid, ~0ULL, &r);
		EXPECT_EQ(0, err) TH_LOG("ALG_SETKEY before 6.9: %s (documented: the LSM is not asked)",
					 strerror(-err));
		n = lsm_counts(&self->l);
		EXPECT_EQ(0, n.setkey_calls_test) TH_LOG("the hook was reached before 6.9: update abi.md");
		EXPECT_EQ(0, r.index);
		EXPECT_EQ(0, tfm_keyed(tfm));
		EXPECT_EQ(NKEYS - 1, qkd_stored(nl, self->sid));
		EXPECT_EQ(1, stream_u(_metadata, nl, self->sid, QKD_T_STATS(KEYS_DELIVERED)));
		close(tfm);
		return;
	}

	/* The next key, then one by index: both refused, nothing taken. */
	ASSERT_EQ(0, qkd_snap_take(nl, &sb));
	err = alg_setkey(self->dev, tfm, self->sid, ~0ULL, &r);
	EXPECT_EQ(-EACCES, err) TH_LOG("ALG_SETKEY (next) under an LSM that refuses: %d (%s)",
				       err, strerror(-err));
	err = alg_setkey(self->dev, tfm, self->sid, 3, &r);
	EXPECT_EQ(-EACCES, err) TH_LOG("ALG_SETKEY (index 3): %d (%s)", err, strerror(-err));
	n = lsm_counts(&self->l);
	EXPECT_EQ(2, n.setkey_calls_test);
	EXPECT_EQ(2, n.setkey_denied);
	EXPECT_EQ(-ENOKEY, tfm_keyed(tfm)) TH_LOG("the refused socket holds a key");
	ASSERT_EQ(0, qkd_snap_take(nl, &sa));
	EXPECT_EQ(NULL, qkd_snap_diff(&sb, &sa))
		TH_LOG("the refused ALG_SETKEY changed the node's %s", qkd_snap_diff(&sb, &sa));
	qkd_snap_free(&sb);
	qkd_snap_free(&sa);
	EXPECT_EQ(NKEYS, qkd_stored(nl, self->sid));
	EXPECT_EQ(0, stream_u(_metadata, nl, self->sid, QKD_T_STATS(KEYS_DELIVERED)));
	/* Index 3 is there, intact (read through /dev/qkd: it is used now). */
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sid, 3, buf, KS, NULL));
	EXPECT_TRUE(qkd_pattern_ok(buf, KS, 3, SEED));

	/* Allowed: the next key is still index 0, and it keys the socket. */
	self->l.c.setkey_deny = 0;
	ASSERT_EQ(0, lsm_tell(&self->l));
	ASSERT_EQ(0, alg_setkey(self->dev, tfm, self->sid, ~0ULL, &r));
	EXPECT_EQ(0, r.index);
	EXPECT_EQ(3, lsm_counts(&self->l).setkey_calls_test);
	EXPECT_EQ(0, tfm_keyed(tfm));
	EXPECT_EQ(NKEYS - 2, qkd_stored(nl, self->sid));
	close(tfm);
}

QKD_TEST_MAIN_XFRM
