// SPDX-License-Identifier: ((GPL-2.0 WITH Linux-syscall-note) OR BSD-3-Clause)
/* Do not edit directly, auto-generated from: */
/*	Documentation/netlink/specs/qkd.yaml */
/* YNL-GEN kernel source */

#include <net/netlink.h>
#include <net/genetlink.h>

#include "netlink-gen.h"

#include <uapi/linux/qkd.h>

/* Integer value ranges */
static const struct netlink_range_validation qkd_a_stream_max_keys_range = {
	.min	= 1ULL,
	.max	= QKD_STREAM_MAX_KEYS_LIMIT,
};

static const struct netlink_range_validation qkd_a_stream_low_water_range = {
	.max	= QKD_STREAM_MAX_KEYS_LIMIT,
};

static const struct netlink_range_validation qkd_a_keys_first_index_range = {
	.max	= QKD_INDEX_MAX,
};

static const struct netlink_range_validation qkd_a_sa_rekey_seconds_range = {
	.min	= 1ULL,
	.max	= 16777216ULL,
};

static const struct netlink_range_validation qkd_a_sa_rekey_bytes_range = {
	.min	= 1ULL,
	.max	= S64_MAX,
};

static const struct netlink_range_validation qkd_a_sa_rekey_packets_range = {
	.min	= 1ULL,
	.max	= 2147483648ULL,
};

static const struct netlink_range_validation qkd_a_sa_first_index_range = {
	.max	= QKD_INDEX_MAX,
};

/* Common nested types */
const struct nla_policy qkd_sa_policy_nl_policy[QKD_A_SA_POLICY_PRIORITY + 1] = {
	[QKD_A_SA_POLICY_LOCAL_IPV4] = { .type = NLA_U32, },
	[QKD_A_SA_POLICY_LOCAL_IPV6] = NLA_POLICY_EXACT_LEN(16),
	[QKD_A_SA_POLICY_LOCAL_PREFIX] = NLA_POLICY_MAX(NLA_U8, 128),
	[QKD_A_SA_POLICY_REMOTE_IPV4] = { .type = NLA_U32, },
	[QKD_A_SA_POLICY_REMOTE_IPV6] = NLA_POLICY_EXACT_LEN(16),
	[QKD_A_SA_POLICY_REMOTE_PREFIX] = NLA_POLICY_MAX(NLA_U8, 128),
	[QKD_A_SA_POLICY_PRIORITY] = { .type = NLA_U32, },
};

/* QKD_CMD_LINK_NEW - do */
static const struct nla_policy qkd_link_new_nl_policy[QKD_A_LINK_ROLE + 1] = {
	[QKD_A_LINK_ID] = NLA_POLICY_MIN(NLA_U32, 1),
	[QKD_A_LINK_NAME] = { .type = NLA_NUL_STRING, .len = 31, },
	[QKD_A_LINK_PEER] = { .type = NLA_NUL_STRING, .len = 63, },
	[QKD_A_LINK_ROLE] = NLA_POLICY_RANGE(NLA_U8, 1, 2),
};

/* QKD_CMD_LINK_DEL - do */
static const struct nla_policy qkd_link_del_nl_policy[QKD_A_LINK_NAME + 1] = {
	[QKD_A_LINK_ID] = NLA_POLICY_MIN(NLA_U32, 1),
	[QKD_A_LINK_NAME] = { .type = NLA_NUL_STRING, .len = 31, },
};

/* QKD_CMD_LINK_GET - do */
static const struct nla_policy qkd_link_get_nl_policy[QKD_A_LINK_NAME + 1] = {
	[QKD_A_LINK_ID] = NLA_POLICY_MIN(NLA_U32, 1),
	[QKD_A_LINK_NAME] = { .type = NLA_NUL_STRING, .len = 31, },
};

/* QKD_CMD_LINK_SET - do */
static const struct nla_policy qkd_link_set_nl_policy[QKD_A_LINK_STATE + 1] = {
	[QKD_A_LINK_ID] = NLA_POLICY_MIN(NLA_U32, 1),
	[QKD_A_LINK_NAME] = { .type = NLA_NUL_STRING, .len = 31, },
	[QKD_A_LINK_STATE] = NLA_POLICY_RANGE(NLA_U8, 1, 2),
};

/* QKD_CMD_STREAM_NEW - do */
static const struct nla_policy qkd_stream_new_nl_policy[QKD_A_STREAM_LOW_WATER + 1] = {
	[QKD_A_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
	[QKD_A_STREAM_LINK_ID] = NLA_POLICY_MIN(NLA_U32, 1),
	[QKD_A_STREAM_LINK_NAME] = { .type = NLA_NUL_STRING, .len = 31, },
	[QKD_A_STREAM_KEY_SIZE] = NLA_POLICY_RANGE(NLA_U32, QKD_KEY_SIZE_MIN, QKD_KEY_SIZE_MAX),
	[QKD_A_STREAM_MAX_KEYS] = NLA_POLICY_FULL_RANGE(NLA_U32, &qkd_a_stream_max_keys_range),
	[QKD_A_STREAM_LOW_WATER] = NLA_POLICY_FULL_RANGE(NLA_U32, &qkd_a_stream_low_water_range),
};

/* QKD_CMD_STREAM_DEL - do */
static const struct nla_policy qkd_stream_del_nl_policy[QKD_A_STREAM_ID + 1] = {
	[QKD_A_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
};

/* QKD_CMD_STREAM_GET - do */
static const struct nla_policy qkd_stream_get_do_nl_policy[QKD_A_STREAM_ID + 1] = {
	[QKD_A_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
};

/* QKD_CMD_STREAM_GET - dump */
static const struct nla_policy qkd_stream_get_dump_nl_policy[QKD_A_STREAM_LINK_NAME + 1] = {
	[QKD_A_STREAM_LINK_ID] = NLA_POLICY_MIN(NLA_U32, 1),
	[QKD_A_STREAM_LINK_NAME] = { .type = NLA_NUL_STRING, .len = 31, },
};

/* QKD_CMD_STREAM_SET - do */
static const struct nla_policy qkd_stream_set_nl_policy[QKD_A_STREAM_LOW_WATER + 1] = {
	[QKD_A_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
	[QKD_A_STREAM_MAX_KEYS] = NLA_POLICY_FULL_RANGE(NLA_U32, &qkd_a_stream_max_keys_range),
	[QKD_A_STREAM_LOW_WATER] = NLA_POLICY_FULL_RANGE(NLA_U32, &qkd_a_stream_low_water_range),
};

/* QKD_CMD_KEY_ADD - do */
static const struct nla_policy qkd_key_add_nl_policy[QKD_A_KEYS_DATA + 1] = {
	[QKD_A_KEYS_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
	[QKD_A_KEYS_FIRST_INDEX] = NLA_POLICY_FULL_RANGE(NLA_U64, &qkd_a_keys_first_index_range),
	[QKD_A_KEYS_DATA] = { .type = NLA_BINARY, },
};

/* QKD_CMD_KEY_FLUSH - do */
static const struct nla_policy qkd_key_flush_nl_policy[QKD_A_KEYS_STREAM_ID + 1] = {
	[QKD_A_KEYS_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
};

/* QKD_CMD_SA_NEW - do */
static const struct nla_policy qkd_sa_new_nl_policy[QKD_A_SA_POLICY + 1] = {
	[QKD_A_SA_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
	[QKD_A_SA_LOCAL_IPV4] = { .type = NLA_U32, },
	[QKD_A_SA_LOCAL_IPV6] = NLA_POLICY_EXACT_LEN(16),
	[QKD_A_SA_REMOTE_IPV4] = { .type = NLA_U32, },
	[QKD_A_SA_REMOTE_IPV6] = NLA_POLICY_EXACT_LEN(16),
	[QKD_A_SA_MODE] = NLA_POLICY_RANGE(NLA_U8, 1, 2),
	[QKD_A_SA_ALG] = NLA_POLICY_RANGE(NLA_U8, 1, 2),
	[QKD_A_SA_KEY_BITS] = NLA_POLICY_RANGE(NLA_U32, 128, 256),
	[QKD_A_SA_DIR] = NLA_POLICY_RANGE(NLA_U8, 1, 3),
	[QKD_A_SA_REQID] = { .type = NLA_U32, },
	[QKD_A_SA_IF_ID] = { .type = NLA_U32, },
	[QKD_A_SA_MARK] = { .type = NLA_U32, },
	[QKD_A_SA_MARK_MASK] = { .type = NLA_U32, },
	[QKD_A_SA_REKEY_SECONDS] = NLA_POLICY_FULL_RANGE(NLA_U32, &qkd_a_sa_rekey_seconds_range),
	[QKD_A_SA_REKEY_BYTES] = NLA_POLICY_FULL_RANGE(NLA_U64, &qkd_a_sa_rekey_bytes_range),
	[QKD_A_SA_REKEY_PACKETS] = NLA_POLICY_FULL_RANGE(NLA_U64, &qkd_a_sa_rekey_packets_range),
	[QKD_A_SA_FIRST_INDEX] = NLA_POLICY_FULL_RANGE(NLA_U64, &qkd_a_sa_first_index_range),
	[QKD_A_SA_POLICY] = NLA_POLICY_NESTED(qkd_sa_policy_nl_policy),
};

/* QKD_CMD_SA_DEL - do */
static const struct nla_policy qkd_sa_del_nl_policy[QKD_A_SA_REMOVE_PROTECTION + 1] = {
	[QKD_A_SA_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
	[QKD_A_SA_REMOVE_PROTECTION] = { .type = NLA_FLAG, },
};

/* QKD_CMD_SA_GET - do */
static const struct nla_policy qkd_sa_get_nl_policy[QKD_A_SA_STREAM_ID + 1] = {
	[QKD_A_SA_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
};

/* QKD_CMD_SA_REKEY - do */
static const struct nla_policy qkd_sa_rekey_nl_policy[QKD_A_SA_FORCE + 1] = {
	[QKD_A_SA_STREAM_ID] = NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN),
	[QKD_A_SA_FORCE] = { .type = NLA_FLAG, },
};

/* Ops table for qkd */
const struct genl_split_ops qkd_nl_ops[18] = {
	{
		.cmd		= QKD_CMD_LINK_NEW,
		.doit		= qkd_nl_link_new_doit,
		.policy		= qkd_link_new_nl_policy,
		.maxattr	= QKD_A_LINK_ROLE,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_LINK_DEL,
		.doit		= qkd_nl_link_del_doit,
		.policy		= qkd_link_del_nl_policy,
		.maxattr	= QKD_A_LINK_NAME,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_LINK_GET,
		.doit		= qkd_nl_link_get_doit,
		.policy		= qkd_link_get_nl_policy,
		.maxattr	= QKD_A_LINK_NAME,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd	= QKD_CMD_LINK_GET,
		.dumpit	= qkd_nl_link_get_dumpit,
		.flags	= GENL_ADMIN_PERM | GENL_CMD_CAP_DUMP,
	},
	{
		.cmd		= QKD_CMD_LINK_SET,
		.doit		= qkd_nl_link_set_doit,
		.policy		= qkd_link_set_nl_policy,
		.maxattr	= QKD_A_LINK_STATE,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_STREAM_NEW,
		.doit		= qkd_nl_stream_new_doit,
		.policy		= qkd_stream_new_nl_policy,
		.maxattr	= QKD_A_STREAM_LOW_WATER,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_STREAM_DEL,
		.doit		= qkd_nl_stream_del_doit,
		.policy		= qkd_stream_del_nl_policy,
		.maxattr	= QKD_A_STREAM_ID,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_STREAM_GET,
		.doit		= qkd_nl_stream_get_doit,
		.policy		= qkd_stream_get_do_nl_policy,
		.maxattr	= QKD_A_STREAM_ID,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_STREAM_GET,
		.dumpit		= qkd_nl_stream_get_dumpit,
		.policy		= qkd_stream_get_dump_nl_policy,
		.maxattr	= QKD_A_STREAM_LINK_NAME,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DUMP,
	},
	{
		.cmd		= QKD_CMD_STREAM_SET,
		.doit		= qkd_nl_stream_set_doit,
		.policy		= qkd_stream_set_nl_policy,
		.maxattr	= QKD_A_STREAM_LOW_WATER,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_KEY_ADD,
		.doit		= qkd_nl_key_add_doit,
		.policy		= qkd_key_add_nl_policy,
		.maxattr	= QKD_A_KEYS_DATA,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_KEY_FLUSH,
		.doit		= qkd_nl_key_flush_doit,
		.policy		= qkd_key_flush_nl_policy,
		.maxattr	= QKD_A_KEYS_STREAM_ID,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd	= QKD_CMD_STATUS_GET,
		.doit	= qkd_nl_status_get_doit,
		.flags	= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_SA_NEW,
		.doit		= qkd_nl_sa_new_doit,
		.policy		= qkd_sa_new_nl_policy,
		.maxattr	= QKD_A_SA_POLICY,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_SA_DEL,
		.doit		= qkd_nl_sa_del_doit,
		.policy		= qkd_sa_del_nl_policy,
		.maxattr	= QKD_A_SA_REMOVE_PROTECTION,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd		= QKD_CMD_SA_GET,
		.doit		= qkd_nl_sa_get_doit,
		.policy		= qkd_sa_get_nl_policy,
		.maxattr	= QKD_A_SA_STREAM_ID,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
	{
		.cmd	= QKD_CMD_SA_GET,
		.dumpit	= qkd_nl_sa_get_dumpit,
		.flags	= GENL_ADMIN_PERM | GENL_CMD_CAP_DUMP,
	},
	{
		.cmd		= QKD_CMD_SA_REKEY,
		.doit		= qkd_nl_sa_rekey_doit,
		.policy		= qkd_sa_rekey_nl_policy,
		.maxattr	= QKD_A_SA_FORCE,
		.flags		= GENL_ADMIN_PERM | GENL_CMD_CAP_DO,
	},
};

static const struct genl_multicast_group qkd_nl_mcgrps[] = {
	[QKD_NLGRP_EVENTS] = { "events", },
};
