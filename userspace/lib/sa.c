// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd: requests and replies of the ESP SA bindings (QKD_CMD_SA_*).
 */
#include <errno.h>
#include <string.h>

#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <qkd/sa.h>

#include "nl_priv.h"

static const char *const mode_names[] = {
	[QKD_SA_MODE_TRANSPORT] = "transport",
	[QKD_SA_MODE_TUNNEL] = "tunnel",
};

static const char *const alg_names[] = {
	[QKD_SA_ALG_AES_GCM] = "rfc4106(gcm(aes))",
	[QKD_SA_ALG_CHACHA20_POLY1305] = "rfc7539esp(chacha20,poly1305)",
};

static const char *const alg_short[] = {
	[QKD_SA_ALG_AES_GCM] = "aes-gcm",
	[QKD_SA_ALG_CHACHA20_POLY1305] = "chacha20-poly1305",
};

static const char *const dir_names[] = {
	[QKD_SA_DIR_OUT] = "out",
	[QKD_SA_DIR_IN] = "in",
	[QKD_SA_DIR_BOTH] = "both",
};

static const char *const state_names[] = {
	[QKD_SA_STATE_OK] = "ok",
	[QKD_SA_STATE_DRY] = "dry",
	[QKD_SA_STATE_CLOSED] = "closed",
	[QKD_SA_STATE_STUCK] = "stuck",
};

static const char *const reason_names[] = {
	[QKD_SA_REASON_NO_KEY] = "no-key",
	[QKD_SA_REASON_EXPIRED] = "expired",
	[QKD_SA_REASON_KEY_GONE] = "key-gone",
	[QKD_SA_REASON_IN_DELETED] = "in-deleted",
	[QKD_SA_REASON_PEER_BEHIND] = "peer-behind",
	[QKD_SA_REASON_LOST_AGAIN] = "lost-again",
};

#define N_OF(tbl)	(sizeof(tbl) / sizeof((tbl)[0]))
#define NAME_OF(tbl, v)	((v) < N_OF(tbl) && (tbl)[v] ? (tbl)[v] : "?")

const char *qkd_sa_mode_name(uint8_t mode)
{
	return NAME_OF(mode_names, mode);
}

const char *qkd_sa_alg_name(uint8_t alg)
{
	return NAME_OF(alg_names, alg);
}

const char *qkd_sa_dir_name(uint8_t dir)
{
	return NAME_OF(dir_names, dir);
}

const char *qkd_sa_state_name(uint8_t state)
{
	return NAME_OF(state_names, state);
}

const char *qkd_sa_reason_name(uint8_t reason)
{
	return NAME_OF(reason_names, reason);
}

static uint8_t lookup(const char *const *tbl, size_t n, const char *s)
{
	size_t i;

	for (i = 1; i < n; i++)
		if (tbl[i] && !strcmp(tbl[i], s))
			return (uint8_t)i;
	return 0;
}

uint8_t qkd_sa_mode_parse(const char *s)
{
	return lookup(mode_names, N_OF(mode_names), s);
}

uint8_t qkd_sa_alg_parse(const char *s)
{
	uint8_t a = lookup(alg_names, N_OF(alg_names), s);

	return a ? a : lookup(alg_short, N_OF(alg_short), s);
}

uint8_t qkd_sa_dir_parse(const char *s)
{
	return lookup(dir_names, N_OF(dir_names), s);
}

static uint64_t u64_or0(struct nlattr **tb, int a)
{
	return tb[a] && nla_len(tb[a]) == 8 ? nla_get_u64(tb[a]) : 0;
}

static uint32_t u32_or0(struct nlattr **tb, int a)
{
	return tb[a] && nla_len(tb[a]) == 4 ? nla_get_u32(tb[a]) : 0;
}

static uint8_t u8_or0(struct nlattr **tb, int a)
{
	return tb[a] && nla_len(tb[a]) == 1 ? nla_get_u8(tb[a]) : 0;
}

/*
 * An address given as the IPv4 (@v4) or the IPv6 (@v4 + 1) attribute of
 * @tb: its length (4 or 16) and bytes (network order); 0 if neither, -1 if
 * malformed.
 */
static int get_addr(struct nlattr **tb, int v4, uint8_t out[16])
{
	if (tb[v4] && !tb[v4 + 1] && nla_len(tb[v4]) == 4) {
		memcpy(out, nla_data(tb[v4]), 4);
		return 4;
	}
	if (tb[v4 + 1] && !tb[v4] && nla_len(tb[v4 + 1]) == 16) {
		memcpy(out, nla_data(tb[v4 + 1]), 16);
		return 16;
	}
	return tb[v4] || tb[v4 + 1] ? -1 : 0;
}

/* An sa-gen nest: the SA of one generation. */
static int get_gen(struct nlattr *nest, uint64_t *gen, uint32_t *spi,
		   uint64_t *bytes, uint64_t *packets)
{
	static struct nla_policy pol[QKD_A_SA_GEN_MAX + 1] = {
		[QKD_A_SA_GEN_GENERATION] = { .type = NLA_U64 },
		[QKD_A_SA_GEN_SPI] = { .type = NLA_U32 },
		[QKD_A_SA_GEN_KEY_INDEX] = { .type = NLA_U64 },
		[QKD_A_SA_GEN_BYTES] = { .minlen = 4, .maxlen = 8 },
		[QKD_A_SA_GEN_PACKETS] = { .minlen = 4, .maxlen = 8 },
	};
	struct nlattr *tb[QKD_A_SA_GEN_MAX + 1];

	if (nla_parse_nested(tb, QKD_A_SA_GEN_MAX, nest, pol) < 0)
		return -EINVAL;
	*gen = u64_or0(tb, QKD_A_SA_GEN_GENERATION);
	*spi = u32_or0(tb, QKD_A_SA_GEN_SPI);
	*bytes = tb[QKD_A_SA_GEN_BYTES] ? qkd_nla_get_uint(tb[QKD_A_SA_GEN_BYTES]) : 0;
	*packets = tb[QKD_A_SA_GEN_PACKETS] ?
		   qkd_nla_get_uint(tb[QKD_A_SA_GEN_PACKETS]) : 0;
	return 0;
}

static int get_policy(struct nlattr *nest, struct qkd_sa_info *out)
{
	static struct nla_policy pol[QKD_A_SA_POLICY_MAX + 1] = {
		[QKD_A_SA_POLICY_LOCAL_IPV4] = { .type = NLA_U32 },
		[QKD_A_SA_POLICY_LOCAL_IPV6] = { .minlen = 16 },
		[QKD_A_SA_POLICY_LOCAL_PREFIX] = { .type = NLA_U8 },
		[QKD_A_SA_POLICY_REMOTE_IPV4] = { .type = NLA_U32 },
		[QKD_A_SA_POLICY_REMOTE_IPV6] = { .minlen = 16 },
		[QKD_A_SA_POLICY_REMOTE_PREFIX] = { .type = NLA_U8 },
		[QKD_A_SA_POLICY_PRIORITY] = { .type = NLA_U32 },
	};
	struct nlattr *tb[QKD_A_SA_POLICY_MAX + 1];
	int l, r;

	if (nla_parse_nested(tb, QKD_A_SA_POLICY_MAX, nest, pol) < 0)
		return -EINVAL;
	l = get_addr(tb, QKD_A_SA_POLICY_LOCAL_IPV4, out->sel_local);
	r = get_addr(tb, QKD_A_SA_POLICY_REMOTE_IPV4, out->sel_remote);
	if (l < 0 || r < 0 || l != r)
		return -EINVAL;
	out->sel_len = (uint8_t)l;
	out->sel_local_prefix = u8_or0(tb, QKD_A_SA_POLICY_LOCAL_PREFIX);
	out->sel_remote_prefix = u8_or0(tb, QKD_A_SA_POLICY_REMOTE_PREFIX);
	out->priority = u32_or0(tb, QKD_A_SA_POLICY_PRIORITY);
	return 0;
}

int qkd_sa_parse(struct nlattr **tb, struct qkd_sa_info *out)
{
	int l, r;

	memset(out, 0, sizeof(*out));
	if (!tb[QKD_A_SA_STREAM_ID] ||
	    nla_len(tb[QKD_A_SA_STREAM_ID]) != QKD_STREAM_ID_LEN)
		return -EINVAL;
	memcpy(out->stream_id, nla_data(tb[QKD_A_SA_STREAM_ID]), QKD_STREAM_ID_LEN);
	l = get_addr(tb, QKD_A_SA_LOCAL_IPV4, out->local);
	r = get_addr(tb, QKD_A_SA_REMOTE_IPV4, out->remote);
	if (l <= 0 || l != r)
		return -EINVAL;
	out->addr_len = (uint8_t)l;
	out->link_id = u32_or0(tb, QKD_A_SA_LINK_ID);
	out->mode = u8_or0(tb, QKD_A_SA_MODE);
	out->alg = u8_or0(tb, QKD_A_SA_ALG);
	out->dir = u8_or0(tb, QKD_A_SA_DIR);
	out->state = u8_or0(tb, QKD_A_SA_STATE);
	out->reason = u8_or0(tb, QKD_A_SA_REASON);
	out->key_bits = u32_or0(tb, QKD_A_SA_KEY_BITS);
	out->reqid = u32_or0(tb, QKD_A_SA_REQID);
	out->if_id = u32_or0(tb, QKD_A_SA_IF_ID);
	out->mark = u32_or0(tb, QKD_A_SA_MARK);
	out->mark_mask = u32_or0(tb, QKD_A_SA_MARK_MASK);
	out->rekey_seconds = u32_or0(tb, QKD_A_SA_REKEY_SECONDS);
	out->rekey_bytes = u64_or0(tb, QKD_A_SA_REKEY_BYTES);
	out->rekey_packets = u64_or0(tb, QKD_A_SA_REKEY_PACKETS);
	out->first_index = u64_or0(tb, QKD_A_SA_FIRST_INDEX);
	out->rekeys = tb[QKD_A_SA_REKEYS] ? qkd_nla_get_uint(tb[QKD_A_SA_REKEYS]) : 0;
	out->failures = tb[QKD_A_SA_REKEY_FAILURES] ?
			qkd_nla_get_uint(tb[QKD_A_SA_REKEY_FAILURES]) : 0;
	out->has_out = tb[QKD_A_SA_OUT] != NULL;
	if (out->has_out &&
	    get_gen(tb[QKD_A_SA_OUT], &out->out_gen, &out->out_spi,
		    &out->out_bytes, &out->out_packets))
		return -EINVAL;
	out->has_in = tb[QKD_A_SA_IN] != NULL;
	if (out->has_in &&
	    get_gen(tb[QKD_A_SA_IN], &out->in_gen, &out->in_spi,
		    &out->in_bytes, &out->in_packets))
		return -EINVAL;
	out->policy = tb[QKD_A_SA_POLICY] != NULL;
	if (out->policy && get_policy(tb[QKD_A_SA_POLICY], out))
		return -EINVAL;
	return 0;
}

static int sa_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	(void)cmd;
	return arg ? qkd_sa_parse(tb, arg) : 0;
}

/* A message that could not be built. */
static int built_fail(struct qkd_nl *nl, struct nl_msg *msg)
{
	qkd_nl_msg_free(msg);
	qkd_nl_fail(nl, 0);
	return qkd_nl_fail(nl, EMSGSIZE);
}

/* An address as the IPv4 (@v4, 4 bytes) or the IPv6 attribute (@v4 + 1). */
static int put_addr(struct nl_msg *msg, int v4, uint8_t len, const uint8_t *a)
{
	if (len == 4)
		return nla_put(msg, v4, 4, a);
	if (len == 16)
		return nla_put(msg, v4 + 1, 16, a);
	return -1;
}

static int put_params(struct nl_msg *msg, const struct qkd_sa_params *p)
{
	struct nlattr *nest;

	if (nla_put(msg, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, p->stream_id) ||
	    put_addr(msg, QKD_A_SA_LOCAL_IPV4, p->addr_len, p->local) ||
	    put_addr(msg, QKD_A_SA_REMOTE_IPV4, p->addr_len, p->remote))
		return -1;
	if ((p->mode && nla_put_u8(msg, QKD_A_SA_MODE, p->mode)) ||
	    (p->alg && nla_put_u8(msg, QKD_A_SA_ALG, p->alg)) ||
	    (p->dir && nla_put_u8(msg, QKD_A_SA_DIR, p->dir)) ||
	    (p->key_bits && nla_put_u32(msg, QKD_A_SA_KEY_BITS, p->key_bits)) ||
	    (p->have_reqid && nla_put_u32(msg, QKD_A_SA_REQID, p->reqid)) ||
	    (p->have_if_id && nla_put_u32(msg, QKD_A_SA_IF_ID, p->if_id)) ||
	    (p->have_mark && nla_put_u32(msg, QKD_A_SA_MARK, p->mark)) ||
	    (p->have_mark_mask &&
	     nla_put_u32(msg, QKD_A_SA_MARK_MASK, p->mark_mask)) ||
	    (p->rekey_seconds &&
	     nla_put_u32(msg, QKD_A_SA_REKEY_SECONDS, p->rekey_seconds)) ||
	    (p->rekey_bytes &&
	     nla_put_u64(msg, QKD_A_SA_REKEY_BYTES, p->rekey_bytes)) ||
	    (p->rekey_packets &&
	     nla_put_u64(msg, QKD_A_SA_REKEY_PACKETS, p->rekey_packets)) ||
	    (p->have_first &&
	     nla_put_u64(msg, QKD_A_SA_FIRST_INDEX, p->first_index)))
		return -1;
	if (!p->policy)
		return 0;
	nest = nla_nest_start(msg, QKD_A_SA_POLICY);
	if (!nest ||
	    (p->sel_local_len &&
	     put_addr(msg, QKD_A_SA_POLICY_LOCAL_IPV4, p->sel_local_len, p->sel_local)) ||
	    (p->have_sel_local_prefix &&
	     nla_put_u8(msg, QKD_A_SA_POLICY_LOCAL_PREFIX, p->sel_local_prefix)) ||
	    (p->sel_remote_len &&
	     put_addr(msg, QKD_A_SA_POLICY_REMOTE_IPV4, p->sel_remote_len,
		      p->sel_remote)) ||
	    (p->have_sel_remote_prefix &&
	     nla_put_u8(msg, QKD_A_SA_POLICY_REMOTE_PREFIX, p->sel_remote_prefix)) ||
	    (p->have_priority &&
	     nla_put_u32(msg, QKD_A_SA_POLICY_PRIORITY, p->priority)))
		return -1;
	/*
	 * An empty nest asks for the default selector. libnl's nla_nest_end()
	 * drops an empty nest ("kernels cannot handle" them: old ones), which
	 * would silently ask for no policies: leave it as nla_nest_start()
	 * made it, a header with NLA_F_NESTED and length 4.
	 */
	if ((char *)nlmsg_tail(nlmsg_hdr(msg)) != (char *)nla_data(nest))
		nla_nest_end(msg, nest);
	return 0;
}

int qkd_sa_add(struct qkd_nl *nl, const struct qkd_sa_params *p,
	       struct qkd_sa_info *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_SA_NEW, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (put_params(msg, p))
		return built_fail(nl, msg);
	return qkd_nl_request(nl, msg, sa_cb, out);
}

static int sa_simple(struct qkd_nl *nl, uint8_t cmd,
		     const uint8_t id[QKD_STREAM_ID_LEN], struct qkd_sa_info *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, cmd, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (nla_put(msg, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, id))
		return built_fail(nl, msg);
	if (out)
		memset(out, 0, sizeof(*out));
	return qkd_nl_request(nl, msg, out ? sa_cb : NULL, out);
}

int qkd_sa_del(struct qkd_nl *nl, const uint8_t stream_id[QKD_STREAM_ID_LEN])
{
	return sa_simple(nl, QKD_CMD_SA_DEL, stream_id, NULL);
}

int qkd_sa_del_unprotect(struct qkd_nl *nl,
			 const uint8_t stream_id[QKD_STREAM_ID_LEN])
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_SA_DEL, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (nla_put(msg, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, stream_id) ||
	    nla_put_flag(msg, QKD_A_SA_REMOVE_PROTECTION))
		return built_fail(nl, msg);
	return qkd_nl_request(nl, msg, NULL, NULL);
}

int qkd_sa_rekey(struct qkd_nl *nl, const uint8_t stream_id[QKD_STREAM_ID_LEN],
		 struct qkd_sa_info *out)
{
	return sa_simple(nl, QKD_CMD_SA_REKEY, stream_id, out);
}

int qkd_sa_rekey_force(struct qkd_nl *nl, const uint8_t stream_id[QKD_STREAM_ID_LEN],
		       struct qkd_sa_info *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_SA_REKEY, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (nla_put(msg, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, stream_id) ||
	    nla_put_flag(msg, QKD_A_SA_FORCE))
		return built_fail(nl, msg);
	if (out)
		memset(out, 0, sizeof(*out));
	return qkd_nl_request(nl, msg, out ? sa_cb : NULL, out);
}

int qkd_sa_get(struct qkd_nl *nl, const uint8_t stream_id[QKD_STREAM_ID_LEN],
	       struct qkd_sa_info *out)
{
	return sa_simple(nl, QKD_CMD_SA_GET, stream_id, out);
}

struct sa_dump_ctx {
	int (*cb)(const struct qkd_sa_info *sa, void *arg);
	void *arg;
	int count;
};

static int sa_dump_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	struct sa_dump_ctx *ctx = arg;
	struct qkd_sa_info sa;
	int err;

	(void)cmd;
	err = qkd_sa_parse(tb, &sa);
	if (err)
		return err;
	ctx->count++;
	return ctx->cb ? ctx->cb(&sa, ctx->arg) : 0;
}

int qkd_sa_dump(struct qkd_nl *nl,
		int (*cb)(const struct qkd_sa_info *sa, void *arg), void *arg)
{
	struct sa_dump_ctx ctx = { .cb = cb, .arg = arg };
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_SA_GET, NLM_F_DUMP);
	int err;

	err = qkd_nl_request(nl, msg, sa_dump_cb, &ctx);
	return err ? err : ctx.count;
}
