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
 * The op table is generated (netlink-gen.c) as split ops, one entry per do
 * and per dump with its own policy: 6.2 and later. 6.1 has only struct
 * genl_ops, one entry per command with one policy: there netlink-gen.c is
 * compiled with this header included first (Kbuild), which gives it the
 * fields it fills, and netlink.c turns the table into genl_ops at init
 * (qkd_compat_genl_ops_init()): one entry per command, the union of its do
 * and dump policies where they differ, each request validated strictly
 * again with its own (see there).
 */
#ifdef QKD_COMPAT_SPLIT_OPS
#define QKD_COMPAT_GENL_OPS \
	.split_ops = qkd_nl_ops, .n_split_ops = ARRAY_SIZE(qkd_nl_ops)
static inline int __init qkd_compat_genl_ops_init(void)
{
	return 0;
}
#else
struct genl_split_ops {
	int (*doit)(struct sk_buff *skb, struct genl_info *info);
	int (*dumpit)(struct sk_buff *skb, struct netlink_callback *cb);
	const struct nla_policy *policy;
	unsigned int maxattr;
	u8 cmd;
	u8 flags;
};

/*
 * The generated range tables are const, as 6.2+'s struct nla_policy takes
 * them; 6.1's pointer is not (the core only reads through it).
 */
#undef NLA_POLICY_FULL_RANGE
#define NLA_POLICY_FULL_RANGE(tp, _range) {		\
	.type = NLA_ENSURE_UINT_OR_BINARY_TYPE(tp),	\
	.validation_type = NLA_VALIDATE_RANGE_PTR,	\
	.range = (struct netlink_range_validation *)(_range),	\
}

#define QKD_COMPAT_GENL_OPS .ops = NULL
int __init qkd_compat_genl_ops_init(void);
#endif

/* Variable-size unsigned integers (NLA_UINT, 6.6): as 6.6 puts them. */
#ifndef QKD_COMPAT_NLA_UINT
static inline int nla_put_uint(struct sk_buff *skb, int attrtype, u64 value)
{
	u64 tmp64 = value;
	u32 tmp32 = value;

	if (tmp64 == tmp32)
		return nla_put_u32(skb, attrtype, tmp32);
	return nla_put(skb, attrtype, sizeof(u64), &tmp64);
}
#endif

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
