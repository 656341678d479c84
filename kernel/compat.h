/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkd: the differences between the kernels the module supports (6.1 LTS and
 * 6.12 LTS), in one place.
 */
#ifndef _QKD_COMPAT_H
#define _QKD_COMPAT_H

#include <net/genetlink.h>
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
 * The op genl_family.pre_doit is called with: a struct genl_ops on 6.1, a
 * struct genl_split_ops from 6.2 on.
 */
#ifdef QKD_COMPAT_GENL_SPLIT_OPS
#define qkd_genl_doit_op genl_split_ops
#else
#define qkd_genl_doit_op genl_ops
#endif

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

#endif /* _QKD_COMPAT_H */
