/* SPDX-License-Identifier: GPL-2.0-only */
/* libqkd internals shared by nl.c and admin.c. */
#ifndef QKD_NL_PRIV_H
#define QKD_NL_PRIV_H

#include <stddef.h>
#include <stdint.h>

struct nl_msg;
struct qkd_nl;

int qkd_nlerr_to_errno(int e);
struct nl_msg *qkd_nl_msg_size(struct qkd_nl *nl, uint8_t cmd, int flags,
			       size_t size);
void qkd_nl_msg_free(struct nl_msg *msg);
/* Record @err (an errno, either sign) as the last failure; returns -err. */
int qkd_nl_fail(struct qkd_nl *nl, int err);
/*
 * For the unit tests: a handle whose requests go to the netlink port @port
 * (a fake kernel in userspace) and name genl family @family.
 */
int qkd_nl_open_peer(struct qkd_nl **out, uint32_t port, int family);

#endif /* QKD_NL_PRIV_H */
