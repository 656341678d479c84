// SPDX-License-Identifier: GPL-2.0-only
/*
 * A BPF LSM program for test_lsm.c: refuses, when the test says so and only
 * for the test's own process, what a security module may refuse the qkd
 * module -- deleting an XFRM SA (security_xfrm_state_delete(), which SA_DEL
 * asks as xfrm_user's DELSA does) and keying an AF_ALG socket
 * (security_socket_setsockopt() with SOL_ALG/ALG_SET_KEY, which ALG_SETKEY
 * reaches through do_sock_setsockopt() from 6.9 on) -- and counts the calls.
 *
 * Built with `clang -target bpf -O2 -g` (Makefile); no vmlinux.h: the hooks'
 * pointer arguments are only forward-declared, never read.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "lsm_deny.h"

#define EPERM		1
#define EACCES		13
#define SOL_ALG		279	/* include/linux/socket.h */
#define ALG_SET_KEY	1	/* include/uapi/linux/if_alg.h */

struct xfrm_state;
struct socket;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qkd_lsm_cfg);
} lsm_cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct qkd_lsm_counts);
} lsm_counts SEC(".maps");

static __always_inline __u32 current_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

/*
 * -EACCES or -EPERM, as a constant: a verifier that checks an LSM
 * program's return range (Debian's 6.12 does) loses the range of a
 * negated register, so no arithmetic on the errno.
 */
static __always_inline int refusal(__u32 e)
{
	return e == EACCES ? -EACCES : -EPERM;
}

/* @ret: what the LSMs before this program said (0: allowed). */
SEC("lsm/xfrm_state_delete_security")
int BPF_PROG(qkd_xfrm_state_delete, struct xfrm_state *x, int ret)
{
	struct qkd_lsm_counts *n;
	struct qkd_lsm_cfg *c;
	__u32 k = 0;

	c = bpf_map_lookup_elem(&lsm_cfg, &k);
	n = bpf_map_lookup_elem(&lsm_counts, &k);
	if (!c || !n)
		return ret;
	__sync_fetch_and_add(&n->xfrm_calls, 1);
	if (!c->tgid || current_tgid() != c->tgid)
		return ret;
	__sync_fetch_and_add(&n->xfrm_calls_test, 1);
	if (ret || !c->xfrm_deny_from || n->xfrm_calls_test < c->xfrm_deny_from)
		return ret;
	__sync_fetch_and_add(&n->xfrm_denied, 1);
	return refusal(c->xfrm_errno);
}

SEC("lsm/socket_setsockopt")
int BPF_PROG(qkd_socket_setsockopt, struct socket *sock, int level, int optname,
	     int ret)
{
	struct qkd_lsm_counts *n;
	struct qkd_lsm_cfg *c;
	__u32 k = 0;

	if (level != SOL_ALG || optname != ALG_SET_KEY)
		return ret;
	c = bpf_map_lookup_elem(&lsm_cfg, &k);
	n = bpf_map_lookup_elem(&lsm_counts, &k);
	if (!c || !n || !c->tgid || current_tgid() != c->tgid)
		return ret;
	__sync_fetch_and_add(&n->setkey_calls_test, 1);
	if (ret || !c->setkey_deny)
		return ret;
	__sync_fetch_and_add(&n->setkey_denied, 1);
	return refusal(c->setkey_errno);
}

char LICENSE[] SEC("license") = "GPL";
