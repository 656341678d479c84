/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Two sites on one wire, for tests that must see what leaves a host: the
 * caller's network namespace (A, 10.99.0.1 on veth "qfa") and a second one
 * (B, 10.99.0.2 on its peer "qfb"), each with its own qkd node, an ESP SA
 * binding between them with its XFRM policies, ping across, and a raw
 * AF_PACKET socket on A's end of the wire that counts ICMP echoes in clear
 * and ESP frames in both directions.
 *
 * Needs root, ip(8) and ping(8). Not thread-safe: it switches the calling
 * thread's netns with setns() around commands run in B.
 */
#ifndef QKD_WIRE_H
#define QKD_WIRE_H

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>

#include "qkd_test.h"

#define QKD_WIRE_A	"10.99.0.1"
#define QKD_WIRE_B	"10.99.0.2"
#define QKD_WIRE_KS	36	/* AES-256-GCM key + salt */
#define QKD_WIRE_SEED	0x3c
#define QKD_WIRE_PRIO	7	/* the policies' priority, to see it kept */

struct qkd_wire {
	int ns_a, ns_b;		/* netns fds; ns_b is inherited by ip(8) */
	int sniff;		/* AF_PACKET on qfa */
	struct qkd_nl nl_b;	/* genl socket of B's node */
	bool nl_b_open;
	uint8_t sid[QKD_STREAM_ID_LEN];
};

/* What the sniffer saw since the last call. */
struct qkd_wire_seen {
	int echo;	/* ICMP echo requests and replies in clear */
	int reply;	/* ... of which replies */
	int esp;	/* ESP frames */
};

/* Run @cmd with sh in the netns @ns; its exit status (or -1). */
static inline int qkd_wire_sh(int ns, const char *cmd)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (setns(ns, CLONE_NEWNET))
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	return qkd_wait(pid);
}

/*
 * `ip xfrm policy` in @ns, read once (a command costs a fork and two execs,
 * a good part of a wire test's time on the emulated debug kernel), so that
 * several lines can be counted in the same SPD. Truncated beyond its size:
 * a wire test's SPD holds a few policies.
 */
struct qkd_wire_spd {
	char text[8192];
	bool ok;
};

static inline struct qkd_wire_spd *qkd_wire_spd_read(struct qkd_wire *w, int ns,
							  struct qkd_wire_spd *spd)
{
	spd->ok = false;
	spd->text[0] = '\0';
	if (setns(ns, CLONE_NEWNET))
		return spd;
	spd->ok = qkd_ip_xfrm_read("policy", spd->text, sizeof(spd->text)) >= 0;
	if (setns(w->ns_a, CLONE_NEWNET))
		spd->ok = false;
	return spd;
}

/* Lines of @spd containing @what; -1 if it could not be read whole. */
static inline int qkd_wire_spd_count(const struct qkd_wire_spd *spd, const char *what)
{
	return spd->ok ? qkd_count_lines(spd->text, what) : -1;
}

/* Lines of `ip xfrm policy` in @ns containing @what (-1: not read). */
static inline int qkd_wire_policies(struct qkd_wire *w, int ns, const char *what)
{
	struct qkd_wire_spd spd;

	return qkd_wire_spd_count(qkd_wire_spd_read(w, ns, &spd), what);
}

/* ping from @ns to @dst: true if a reply came. */
static inline bool qkd_wire_ping(int ns, const char *dst)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "ping -n -q -c 2 -i 0.3 -W 2 %s >/dev/null 2>&1", dst);
	return qkd_wire_sh(ns, cmd) == 0;
}

static inline struct qkd_wire_seen qkd_wire_sniffed(struct qkd_wire *w)
{
	struct qkd_wire_seen s = { 0, 0, 0 };
	unsigned char buf[2048];
	ssize_t n;

	while ((n = recv(w->sniff, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		unsigned char *ip = buf + ETH_HLEN;
		unsigned int ihl;

		if (n < ETH_HLEN + 20 || buf[12] != 0x08 || buf[13] != 0x00)
			continue;
		ihl = (ip[0] & 0x0f) * 4;
		if (ip[9] == IPPROTO_ESP)
			s.esp++;
		else if (ip[9] == IPPROTO_ICMP && n >= (ssize_t)(ETH_HLEN + ihl + 1) &&
			 (ip[ihl] == 8 || ip[ihl] == 0)) {
			s.echo++;
			s.reply += ip[ihl] == 0;
		}
	}
	return s;
}

/*
 * The wire, B's node and the sniffer. The caller is in a fresh netns (A),
 * which goes away with the test, and B with it (the last fd to it).
 */
static inline int qkd_wire_up(struct qkd_wire *w)
{
	struct sockaddr_ll sll = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_ALL),
	};
	char cmd[256];
	int err;

	memset(w, 0, sizeof(*w));
	w->ns_b = w->sniff = -1;
	w->ns_a = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (w->ns_a < 0 || unshare(CLONE_NEWNET))
		return -errno;
	/* Not O_CLOEXEC: ip(8) names B by /proc/self/fd/N. */
	w->ns_b = open("/proc/self/ns/net", O_RDONLY);
	if (w->ns_b < 0 || setns(w->ns_a, CLONE_NEWNET))
		return -errno;
	snprintf(cmd, sizeof(cmd),
		 "ip link set lo up && "
		 "ip link add qfa type veth peer name qfb netns /proc/self/fd/%d && "
		 "ip addr add " QKD_WIRE_A "/24 dev qfa && ip link set qfa up", w->ns_b);
	if (qkd_wire_sh(w->ns_a, cmd))
		return -EIO;
	if (qkd_wire_sh(w->ns_b, "ip link set lo up && "
			"ip addr add " QKD_WIRE_B "/24 dev qfb && ip link set qfb up"))
		return -EIO;
	if (setns(w->ns_b, CLONE_NEWNET))
		return -errno;
	err = qkd_nl_open(&w->nl_b);
	w->nl_b_open = !err;
	if (setns(w->ns_a, CLONE_NEWNET))
		return -errno;
	if (err)
		return err;
	w->sniff = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (w->sniff < 0)
		return -errno;
	sll.sll_ifindex = if_nametoindex("qfa");
	if (!sll.sll_ifindex || bind(w->sniff, (struct sockaddr *)&sll, sizeof(sll)))
		return -errno;
	qkd_sid(w->sid, 77);
	return 0;
}

static inline void qkd_wire_down(struct qkd_wire *w)
{
	if (w->nl_b_open)
		qkd_nl_close(&w->nl_b);
	w->nl_b_open = false;
	if (w->sniff >= 0)
		close(w->sniff);
	if (w->ns_b >= 0)
		close(w->ns_b);
	if (w->ns_a >= 0)
		close(w->ns_a);
	w->sniff = w->ns_b = w->ns_a = -1;
}

/*
 * Let netns B go: its last references here are closed (the sniffer too),
 * and its veth end takes ours with it. True once "qfa" is gone, after
 * cleanup_net() ran the pernet exits (qkd's, then xfrm's); false if that
 * took more than 30 s. Netns A, its socket and ns_a stay.
 */
static inline bool qkd_wire_drop_b(struct qkd_wire *w)
{
	int i;

	if (w->nl_b_open)
		qkd_nl_close(&w->nl_b);
	w->nl_b_open = false;
	if (w->ns_b >= 0)
		close(w->ns_b);
	if (w->sniff >= 0)
		close(w->sniff);
	w->ns_b = w->sniff = -1;
	for (i = 0; i < 300 && if_nametoindex("qfa"); i++)
		qkd_msleep(100);
	return !if_nametoindex("qfa");
}

/*
 * One end: a link of @role (id 1), the stream with 16 pattern keys (the
 * same at both ends), and a transport-mode binding with its policies.
 */
static inline int qkd_wire_bind(struct qkd_wire *w, struct qkd_nl *nl, int role,
				const char *local, const char *remote)
{
	struct nlattr *pol;
	struct nl_msg *m;
	uint8_t a[4];
	int err;

	err = qkd_link_new(nl, 1, "wire", role, NULL);
	if (!err)
		err = qkd_stream_new(nl, w->sid, 1, QKD_WIRE_KS, QKD_OMIT, QKD_OMIT);
	if (!err)
		err = qkd_key_add_pattern(nl, w->sid, 0, 16, QKD_WIRE_KS, QKD_WIRE_SEED);
	if (err)
		return err;
	m = qkd_msg(nl, QKD_CMD_SA_NEW, 0);
	nla_put(m, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, w->sid);
	/* both ends' keys start at index 0 */
	nla_put_u64(m, QKD_A_SA_FIRST_INDEX, 0);
	inet_pton(AF_INET, local, a);
	nla_put(m, QKD_A_SA_LOCAL_IPV4, 4, a);
	inet_pton(AF_INET, remote, a);
	nla_put(m, QKD_A_SA_REMOTE_IPV4, 4, a);
	pol = nla_nest_start(m, QKD_A_SA_POLICY);
	nla_put_u32(m, QKD_A_SA_POLICY_PRIORITY, QKD_WIRE_PRIO);
	nla_nest_end(m, pol);
	return qkd_req(nl, m);
}

/* Both ends bound: A (on @nl_a) the initiator, B the responder. */
static inline int qkd_wire_bind_both(struct qkd_wire *w, struct qkd_nl *nl_a)
{
	int err = qkd_wire_bind(w, nl_a, QKD_LINK_ROLE_INITIATOR, QKD_WIRE_A, QKD_WIRE_B);

	return err ? err : qkd_wire_bind(w, &w->nl_b, QKD_LINK_ROLE_RESPONDER,
					 QKD_WIRE_B, QKD_WIRE_A);
}

#endif /* QKD_WIRE_H */
