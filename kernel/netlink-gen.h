/* SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause) */
/* Do not edit directly, auto-generated from: */
/*	Documentation/netlink/specs/qkd.yaml */
/* YNL-GEN kernel header */

#ifndef _LINUX_QKD_GEN_H
#define _LINUX_QKD_GEN_H

#include <net/netlink.h>
#include <net/genetlink.h>

#include <uapi/linux/qkd.h>

/* Common nested types */
extern const struct nla_policy qkd_sa_policy_nl_policy[QKD_A_SA_POLICY_PRIORITY + 1];

/* Ops table for qkd */
extern const struct genl_split_ops qkd_nl_ops[18];

int qkd_nl_link_new_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_link_del_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_link_get_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_link_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb);
int qkd_nl_link_set_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_stream_new_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_stream_del_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_stream_get_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_stream_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb);
int qkd_nl_stream_set_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_key_add_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_key_flush_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_status_get_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_sa_new_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_sa_del_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_sa_get_doit(struct sk_buff *skb, struct genl_info *info);
int qkd_nl_sa_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb);
int qkd_nl_sa_rekey_doit(struct sk_buff *skb, struct genl_info *info);

enum {
	QKD_NLGRP_EVENTS,
};

#endif /* _LINUX_QKD_GEN_H */
