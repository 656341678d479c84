/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What test_lsm.c and its BPF LSM program (lsm_deny.bpf.c) share: the
 * program's switch (map "lsm_cfg", written by the test) and its counters
 * (map "lsm_counts", written by the program, read and reset by the test),
 * each an array of one element.
 */
#ifndef QKD_LSM_DENY_H
#define QKD_LSM_DENY_H

#include <linux/types.h>

struct qkd_lsm_cfg {
	/* The test's process (its thread group): no other is refused. */
	__u32 tgid;
	/*
	 * xfrm_state_delete_security: 0 allows; N refuses the test's Nth
	 * call and every later one (1: every call), with -xfrm_errno
	 * (EPERM or EACCES).
	 */
	__u32 xfrm_deny_from;
	__u32 xfrm_errno;
	/* socket_setsockopt(SOL_ALG, ALG_SET_KEY): refuse with -setkey_errno (EPERM, EACCES). */
	__u32 setkey_deny;
	__u32 setkey_errno;
};

struct qkd_lsm_counts {
	__u64 xfrm_calls;	/* xfrm_state_delete_security, any task */
	__u64 xfrm_calls_test;	/* ... of the test's process */
	__u64 xfrm_denied;
	__u64 setkey_calls_test; /* socket_setsockopt(SOL_ALG, ALG_SET_KEY) */
	__u64 setkey_denied;
};

#endif /* QKD_LSM_DENY_H */
