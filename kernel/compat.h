/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkd: the differences between the kernels the module supports (6.1 LTS and
 * 6.12 LTS), in one place.
 */
#ifndef _QKD_COMPAT_H
#define _QKD_COMPAT_H

#include <linux/net.h>
#include <linux/sockptr.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <net/xfrm.h>

/*
 * QKD_COMPAT_* macros come from feature probes of the kernel's headers in
 * Kbuild, not from version numbers, so that backports are handled too.
 */

/*
 * The attributes a dump request carried, parsed with the op's policy.
 * 6.2 moved them from genl_dumpit_info.attrs into an embedded genl_info.
 */
static inline struct nlattr **qkd_dumpit_attrs(struct netlink_callback *cb)
{
#ifdef QKD_COMPAT_DUMPIT_INFO_HAS_INFO
	return genl_dumpit_info(cb)->info.attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

/*
 * The direction of an SA (6.10+): xfrm then refuses to use an inbound SA for
 * output and the other way round. Older kernels tell them apart by address.
 */
static inline void qkd_xfrm_state_set_dir(struct xfrm_state *x, bool out)
{
#ifdef QKD_COMPAT_XFRM_SA_DIR
	x->dir = out ? XFRM_SA_DIR_OUT : XFRM_SA_DIR_IN;
#endif
}

/*
 * ALG_SETKEY keys an AF_ALG socket the way setsockopt(2) would, LSM hook
 * (security_socket_setsockopt()) and cgroup BPF setsockopt programs
 * included: do_sock_setsockopt() is exported from 6.9 on. Before that no
 * exported function runs the hook (security_socket_setsockopt() itself is
 * not exported, on 6.1 either), so the socket's op is called directly and
 * the hook is not consulted: see Documentation/abi.md, ALG_SETKEY.
 */
static inline int qkd_sock_setsockopt(struct socket *sock, int level, int optname,
				      sockptr_t optval, unsigned int optlen)
{
#ifdef QKD_COMPAT_DO_SOCK_SETSOCKOPT
	return do_sock_setsockopt(sock, false, level, optname, optval, optlen);
#else
	return sock->ops->setsockopt(sock, level, optname, optval, optlen);
#endif
}

#endif /* _QKD_COMPAT_H */
