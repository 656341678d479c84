// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: the SA_* commands of the genl family, their attributes, and the
 * SA_REKEY_NTF and SA_STATE_NTF events.
 *
 * Requests are parsed here into a struct qkd_sa (addresses, algorithm,
 * limits, the policy nest's selector); the binding's life is kernel/sa.c's,
 * its re-keys kernel/sa_rekey.c's. Replies and events go through
 * kernel/netlink.c's helpers (one family). The policies and the op table
 * are generated from the YNL spec (kernel/netlink-gen.[ch]).
 */

#include <linux/slab.h>
#include <linux/workqueue.h>
#include <net/genetlink.h>
#include <net/sock.h>
#include <net/xfrm.h>

#include "compat.h"
#include "netlink-gen.h"
#include "sa.h"

struct qkd_sa_event {
	const struct qkd_sa *b;
	bool out;
	u64 gen;
	u64 index;
	u8 state;
	u8 reason;
};

static int qkd_sa_put_ids(struct sk_buff *skb, const struct qkd_sa *b)
{
	if (nla_put(skb, QKD_A_SA_STREAM_ID, QKD_STREAM_ID_LEN, b->stream->id) ||
	    nla_put_u32(skb, QKD_A_SA_LINK_ID, b->stream->link->id))
		return -EMSGSIZE;
	return 0;
}

/*
 * The SA of generation @gen, keyed by the key at @index, as a nest of type
 * @type (enum qkd_a_sa_gen); its traffic counters if given.
 */
static int qkd_sa_put_gen(struct sk_buff *skb, int type, const struct qkd_sa *b,
			  u64 gen, u64 index, const u64 *bytes, const u64 *packets)
{
	struct nlattr *nest = nla_nest_start(skb, type);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, QKD_A_SA_GEN_GENERATION, gen, QKD_A_SA_GEN_PAD) ||
	    nla_put_u32(skb, QKD_A_SA_GEN_SPI, qkd_sa_spi(b->stream->id, index)) ||
	    nla_put_u64_64bit(skb, QKD_A_SA_GEN_KEY_INDEX, index, QKD_A_SA_GEN_PAD) ||
	    (bytes && nla_put_uint(skb, QKD_A_SA_GEN_BYTES, *bytes)) ||
	    (packets && nla_put_uint(skb, QKD_A_SA_GEN_PACKETS, *packets))) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int qkd_sa_fill_rekey(struct sk_buff *skb, void *obj)
{
	const struct qkd_sa_event *ev = obj;

	if (qkd_sa_put_ids(skb, ev->b) ||
	    nla_put_u8(skb, QKD_A_SA_DIR, ev->out ? QKD_SA_DIR_OUT : QKD_SA_DIR_IN) ||
	    qkd_sa_put_gen(skb, QKD_A_SA_GEN, ev->b, ev->gen, ev->index,
			   NULL, NULL))
		return -EMSGSIZE;
	return 0;
}

static int qkd_sa_fill_state(struct sk_buff *skb, void *obj)
{
	const struct qkd_sa_event *ev = obj;

	if (qkd_sa_put_ids(skb, ev->b) ||
	    nla_put_u8(skb, QKD_A_SA_STATE, ev->state) ||
	    (ev->reason && nla_put_u8(skb, QKD_A_SA_REASON, ev->reason)))
		return -EMSGSIZE;
	return 0;
}

/* SA_REKEY_NTF: the SA of generation @gen in direction @out is in. */
void qkd_sa_notify_rekey(struct qkd_sa *b, bool out, u64 gen)
{
	struct qkd_sa_event ev = { .b = b, .out = out, .gen = gen,
				   .index = qkd_sa_index(b, out, gen) };

	qkd_notify_fill(b->qn, QKD_CMD_SA_REKEY_NTF, qkd_sa_fill_rekey, &ev);
}

/* SA_STATE_NTF: the binding's state and reason, as just set. */
void qkd_sa_notify_state(struct qkd_sa *b)
{
	struct qkd_sa_event ev = { .b = b, .state = b->state,
				   .reason = b->reason };

	qkd_notify_fill(b->qn, QKD_CMD_SA_STATE_NTF, qkd_sa_fill_state, &ev);
}

/* An address as the IPv4 (@type4, be32) or the IPv6 attribute (@type4 + 1). */
static int qkd_sa_put_addr(struct sk_buff *skb, u16 family, int type4,
			   const xfrm_address_t *addr)
{
	if (family == AF_INET)
		return nla_put_in_addr(skb, type4, addr->a4);
	return nla_put_in6_addr(skb, type4 + 1, &addr->in6);
}

static int qkd_sa_put_policy(struct sk_buff *skb, const struct qkd_sa *b)
{
	struct nlattr *nest = nla_nest_start(skb, QKD_A_SA_POLICY);

	if (!nest)
		return -EMSGSIZE;
	if (qkd_sa_put_addr(skb, b->sel_family, QKD_A_SA_POLICY_LOCAL_IPV4,
			    &b->sel_local) ||
	    nla_put_u8(skb, QKD_A_SA_POLICY_LOCAL_PREFIX, b->sel_local_prefix) ||
	    qkd_sa_put_addr(skb, b->sel_family, QKD_A_SA_POLICY_REMOTE_IPV4,
			    &b->sel_remote) ||
	    nla_put_u8(skb, QKD_A_SA_POLICY_REMOTE_PREFIX, b->sel_remote_prefix) ||
	    nla_put_u32(skb, QKD_A_SA_POLICY_PRIORITY, b->pol_priority)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int qkd_sa_put(struct sk_buff *skb, struct qkd_sa *b)
{
	struct xfrm_state *in;
	u64 bytes, packets;
	int err = -EMSGSIZE;
	u8 state, reason;

	mutex_lock(&b->lock);
	state = qkd_sa_compute_state(b);
	reason = qkd_sa_compute_reason(b, state);
	if (qkd_sa_put_ids(skb, b) ||
	    qkd_sa_put_addr(skb, b->family, QKD_A_SA_LOCAL_IPV4, &b->local) ||
	    qkd_sa_put_addr(skb, b->family, QKD_A_SA_REMOTE_IPV4, &b->remote) ||
	    nla_put_u8(skb, QKD_A_SA_MODE, b->mode) ||
	    nla_put_u8(skb, QKD_A_SA_ALG, b->alg) ||
	    nla_put_u32(skb, QKD_A_SA_KEY_BITS, b->key_bits) ||
	    nla_put_u8(skb, QKD_A_SA_DIR, b->dir) ||
	    nla_put_u32(skb, QKD_A_SA_REQID, b->reqid) ||
	    nla_put_u32(skb, QKD_A_SA_IF_ID, b->if_id) ||
	    nla_put_u32(skb, QKD_A_SA_MARK, b->mark.v) ||
	    nla_put_u32(skb, QKD_A_SA_MARK_MASK, b->mark.m) ||
	    (b->rekey_seconds &&
	     nla_put_u32(skb, QKD_A_SA_REKEY_SECONDS, b->rekey_seconds)) ||
	    (b->rekey_bytes &&
	     nla_put_u64_64bit(skb, QKD_A_SA_REKEY_BYTES, b->rekey_bytes, QKD_A_SA_PAD)) ||
	    (b->rekey_packets &&
	     nla_put_u64_64bit(skb, QKD_A_SA_REKEY_PACKETS, b->rekey_packets,
			       QKD_A_SA_PAD)) ||
	    nla_put_u64_64bit(skb, QKD_A_SA_FIRST_INDEX, b->first, QKD_A_SA_PAD) ||
	    nla_put_u8(skb, QKD_A_SA_STATE, state) ||
	    (reason && nla_put_u8(skb, QKD_A_SA_REASON, reason)) ||
	    nla_put_uint(skb, QKD_A_SA_REKEYS, b->rekeys) ||
	    nla_put_uint(skb, QKD_A_SA_REKEY_FAILURES, b->failures))
		goto out;
	if (b->policy && qkd_sa_put_policy(skb, b))
		goto out;
	if (qkd_sa_has_out(b)) {
		qkd_sa_curlft(b->out, &bytes, &packets);
		if (qkd_sa_put_gen(skb, QKD_A_SA_OUT, b, b->out_gen,
				   qkd_sa_index(b, true, b->out_gen), &bytes, &packets))
			goto out;
	}
	if (qkd_sa_has_in(b)) {
		in = qkd_sa_in_current(b);
		qkd_sa_curlft(in, &bytes, &packets);
		if (qkd_sa_put_gen(skb, QKD_A_SA_IN, b, b->in_gen,
				   qkd_sa_index(b, false, b->in_gen), &bytes, &packets))
			goto out;
	}
	err = 0;
out:
	mutex_unlock(&b->lock);
	return err;
}

static int qkd_sa_fill(struct sk_buff *skb, void *obj)
{
	return qkd_sa_put(skb, obj);
}

/* As netlink.c's: the attribute in the extended ACK and in words. */
#define QKD_SA_REQUIRE(info, attr) ({					\
	struct genl_info *__qinfo = (info);				\
	bool __missing = GENL_REQ_ATTR_CHECK(__qinfo, attr);		\
									\
	if (__missing)							\
		NL_SET_ERR_MSG_MOD(__qinfo->extack,			\
				   "missing attribute " #attr);		\
	__missing;							\
})

static u32 qkd_attr_u32_or(struct nlattr *attr, u32 def)
{
	return attr ? nla_get_u32(attr) : def;
}

static u64 qkd_attr_u64_or(struct nlattr *attr, u64 def)
{
	return attr ? nla_get_u64(attr) : def;
}

/*
 * One address given as an IPv4 (@v4) or an IPv6 (@v6) attribute, not both;
 * @family (0 if not known yet) is the family it must have. 0 with
 * *@family and @addr set; -ENOENT if neither is given.
 */
static int qkd_sa_get_addr(struct nlattr *v4, struct nlattr *v6, u16 *family,
			   xfrm_address_t *addr, struct netlink_ext_ack *extack)
{
	if (v4 && v6) {
		NL_SET_ERR_MSG_ATTR(extack, v6,
				    "an address is IPv4 or IPv6, not both");
		return -EINVAL;
	}
	if (!v4 && !v6)
		return -ENOENT;
	if (*family && *family != (v4 ? AF_INET : AF_INET6)) {
		NL_SET_ERR_MSG_ATTR(extack, v4 ?: v6,
				    "local and remote addresses differ in family");
		return -EINVAL;
	}
	memset(addr, 0, sizeof(*addr));
	if (v4) {
		addr->a4 = nla_get_in_addr(v4);
		*family = AF_INET;
	} else {
		addr->in6 = nla_get_in6_addr(v6);
		*family = AF_INET6;
	}
	return 0;
}

/* The SA's local and remote addresses: one family, not unspecified. */
static int qkd_sa_parse_addrs(struct qkd_sa *b, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	struct nlattr *l = attrs[QKD_A_SA_LOCAL_IPV4] ?: attrs[QKD_A_SA_LOCAL_IPV6];
	struct nlattr *r = attrs[QKD_A_SA_REMOTE_IPV4] ?: attrs[QKD_A_SA_REMOTE_IPV6];
	u16 family = 0;
	int err;

	err = qkd_sa_get_addr(attrs[QKD_A_SA_LOCAL_IPV4], attrs[QKD_A_SA_LOCAL_IPV6],
			      &family, &b->local, info->extack);
	/* Missing: named by its IPv4 attribute, for tools; both in words. */
	if (err == -ENOENT) {
		NL_SET_ERR_ATTR_MISS(info->extack, NULL, QKD_A_SA_LOCAL_IPV4);
		NL_SET_ERR_MSG_MOD(info->extack,
				   "missing attribute: the local address (LOCAL_IPV4 or LOCAL_IPV6)");
	}
	if (err)
		return err == -ENOENT ? -EINVAL : err;
	err = qkd_sa_get_addr(attrs[QKD_A_SA_REMOTE_IPV4], attrs[QKD_A_SA_REMOTE_IPV6],
			      &family, &b->remote, info->extack);
	if (err == -ENOENT) {
		NL_SET_ERR_ATTR_MISS(info->extack, NULL, QKD_A_SA_REMOTE_IPV4);
		NL_SET_ERR_MSG_MOD(info->extack,
				   "missing attribute: the remote address (REMOTE_IPV4 or REMOTE_IPV6)");
	}
	if (err)
		return err == -ENOENT ? -EINVAL : err;
	b->family = family;
	if (xfrm_addr_any(&b->local, b->family) ||
	    xfrm_addr_any(&b->remote, b->family)) {
		NL_SET_ERR_MSG_ATTR(info->extack,
				    xfrm_addr_any(&b->local, b->family) ? l : r,
				    "the unspecified address cannot key an SA");
		return -EINVAL;
	}
	if (xfrm_addr_equal(&b->local, &b->remote, b->family)) {
		NL_SET_ERR_MSG_ATTR(info->extack, r,
				    "local and remote addresses are the same");
		return -EINVAL;
	}
	return 0;
}

/*
 * One end of the policies' selector, from the policy nest @tb: address
 * (@v4 or @v4 + 1 for IPv6; default @def, of the SA's family) and prefix
 * length. *@family is the SA's family on entry, the selector's on return.
 */
static int qkd_sa_parse_sel(struct nlattr **tb, int v4, int prefix_attr,
			    const xfrm_address_t *def, xfrm_address_t *addr,
			    u8 *prefix, u16 *family, struct netlink_ext_ack *extack)
{
	struct nlattr *a = tb[v4] ?: tb[v4 + 1];
	struct nlattr *p = tb[prefix_attr];
	unsigned int len, i;
	u16 fam = 0;
	int err;

	err = qkd_sa_get_addr(tb[v4], tb[v4 + 1], &fam, addr, extack);
	if (err == -ENOENT) {
		*addr = *def;
		fam = *family;
	} else if (err) {
		return err;
	}
	len = qkd_sa_addr_len(fam);
	*prefix = p ? nla_get_u8(p) : len * 8;
	if (*prefix > len * 8) {
		NL_SET_ERR_MSG_ATTR(extack, p,
				    "prefix length beyond the address (IPv4: 32, IPv6: 128)");
		return -EINVAL;
	}
	/* As `ip route` does: host bits set are a typo, not a network. */
	for (i = 0; i < len; i++) {
		unsigned int bits = *prefix > i * 8 ? *prefix - i * 8 : 0;
		u8 host = bits >= 8 ? 0 : 0xff >> bits;

		if (((const u8 *)addr)[i] & host) {
			NL_SET_ERR_MSG_ATTR(extack, a ?: p,
					    "selector address has bits set beyond its prefix length");
			return -EINVAL;
		}
	}
	*family = fam;
	return 0;
}

/*
 * The policy nest and its selector: by default the SA's own addresses;
 * networks (which may be of the other family) in tunnel mode only, as a
 * transport SA protects nothing but its own two addresses. The core
 * validated the nest with qkd_sa_policy_nl_policy (generated).
 */
static int qkd_sa_parse_policy(struct qkd_sa *b, struct genl_info *info)
{
	static const int sel_attrs[] = {
		QKD_A_SA_POLICY_LOCAL_IPV4, QKD_A_SA_POLICY_LOCAL_IPV6,
		QKD_A_SA_POLICY_LOCAL_PREFIX, QKD_A_SA_POLICY_REMOTE_IPV4,
		QKD_A_SA_POLICY_REMOTE_IPV6, QKD_A_SA_POLICY_REMOTE_PREFIX,
	};
	struct nlattr *tb[QKD_A_SA_POLICY_MAX + 1];
	struct nlattr *nest = info->attrs[QKD_A_SA_POLICY];
	u16 lfam = b->family, rfam = b->family;
	unsigned int i;
	int err;

	b->policy = nest;
	if (!nest)
		return 0;
	err = nla_parse_nested(tb, QKD_A_SA_POLICY_MAX, nest,
			       qkd_sa_policy_nl_policy, info->extack);
	if (err)
		return err;
	for (i = 0; i < ARRAY_SIZE(sel_attrs); i++) {
		struct nlattr *a = tb[sel_attrs[i]];

		if (a && b->mode != QKD_SA_MODE_TUNNEL) {
			NL_SET_ERR_MSG_ATTR(info->extack, a,
					    "in transport mode the policies select the SA's own addresses");
			return -EINVAL;
		}
	}
	b->pol_priority = qkd_attr_u32_or(tb[QKD_A_SA_POLICY_PRIORITY], 0);
	err = qkd_sa_parse_sel(tb, QKD_A_SA_POLICY_LOCAL_IPV4,
			       QKD_A_SA_POLICY_LOCAL_PREFIX, &b->local,
			       &b->sel_local, &b->sel_local_prefix, &lfam,
			       info->extack);
	if (err)
		return err;
	err = qkd_sa_parse_sel(tb, QKD_A_SA_POLICY_REMOTE_IPV4,
			       QKD_A_SA_POLICY_REMOTE_PREFIX, &b->remote,
			       &b->sel_remote, &b->sel_remote_prefix, &rfam,
			       info->extack);
	if (err)
		return err;
	if (lfam != rfam) {
		NL_SET_ERR_MSG_ATTR(info->extack,
				    tb[QKD_A_SA_POLICY_REMOTE_IPV4] ?:
				    tb[QKD_A_SA_POLICY_REMOTE_IPV6] ?:
				    tb[QKD_A_SA_POLICY_LOCAL_IPV4] ?:
				    tb[QKD_A_SA_POLICY_LOCAL_IPV6],
				    "the local and remote selector addresses differ in family");
		return -EINVAL;
	}
	b->sel_family = lfam;
	return 0;
}

/* The configuration of a new binding from the request; no lock needed. */
static int qkd_sa_parse(struct qkd_sa *b, struct genl_info *info)
{
	struct nlattr **attrs = info->attrs;
	int err;

	/* An address's IPv6 attribute follows its IPv4 one (the spec's order). */
	BUILD_BUG_ON(QKD_A_SA_LOCAL_IPV6 - QKD_A_SA_LOCAL_IPV4 != 1);
	BUILD_BUG_ON(QKD_A_SA_REMOTE_IPV6 - QKD_A_SA_REMOTE_IPV4 != 1);
	BUILD_BUG_ON(QKD_A_SA_POLICY_LOCAL_IPV6 - QKD_A_SA_POLICY_LOCAL_IPV4 != 1);
	BUILD_BUG_ON(QKD_A_SA_POLICY_REMOTE_IPV6 - QKD_A_SA_POLICY_REMOTE_IPV4 != 1);
	if (QKD_SA_REQUIRE(info, QKD_A_SA_STREAM_ID))
		return -EINVAL;
	/*
	 * No default: "the lowest index stored here" differs between the ends
	 * as soon as one of them delivered or flushed a key the other still
	 * holds, and misaligned ends key every SA differently.
	 */
	if (GENL_REQ_ATTR_CHECK(info, QKD_A_SA_FIRST_INDEX)) {
		NL_SET_ERR_MSG_MOD(info->extack,
				   "FIRST_INDEX is required: both ends must name the same first index");
		return -EINVAL;
	}
	b->first = nla_get_u64(attrs[QKD_A_SA_FIRST_INDEX]);
	err = qkd_sa_parse_addrs(b, info);
	if (err)
		return err;
	b->mode = attrs[QKD_A_SA_MODE] ? nla_get_u8(attrs[QKD_A_SA_MODE]) :
		  QKD_SA_MODE_TRANSPORT;
	b->alg = attrs[QKD_A_SA_ALG] ? nla_get_u8(attrs[QKD_A_SA_ALG]) :
		 QKD_SA_ALG_AES_GCM;
	b->dir = attrs[QKD_A_SA_DIR] ? nla_get_u8(attrs[QKD_A_SA_DIR]) :
		 QKD_SA_DIR_BOTH;
	b->key_bits = qkd_attr_u32_or(attrs[QKD_A_SA_KEY_BITS], 256);
	if (b->key_bits % 64 ||
	    !(qkd_sa_algs[b->alg].key_bits_mask & BIT(b->key_bits / 64))) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[QKD_A_SA_KEY_BITS] ?:
				    attrs[QKD_A_SA_ALG],
				    "the algorithm takes no key of that size (AES-GCM: 128, 192, 256 bits; ChaCha20-Poly1305: 256)");
		return -EINVAL;
	}
	b->reqid = qkd_attr_u32_or(attrs[QKD_A_SA_REQID], 0);
	b->if_id = qkd_attr_u32_or(attrs[QKD_A_SA_IF_ID], 0);
	b->mark.v = qkd_attr_u32_or(attrs[QKD_A_SA_MARK], 0);
	b->mark.m = qkd_attr_u32_or(attrs[QKD_A_SA_MARK_MASK],
				    attrs[QKD_A_SA_MARK] ? U32_MAX : 0);
	if (b->mark.v & ~b->mark.m) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[QKD_A_SA_MARK],
				    "mark has bits outside its mask");
		return -EINVAL;
	}
	b->rekey_seconds = qkd_attr_u32_or(attrs[QKD_A_SA_REKEY_SECONDS], 0);
	b->rekey_bytes = qkd_attr_u64_or(attrs[QKD_A_SA_REKEY_BYTES], 0);
	b->rekey_packets = qkd_attr_u64_or(attrs[QKD_A_SA_REKEY_PACKETS], 0);
	if (!b->rekey_seconds && !b->rekey_bytes && !b->rekey_packets)
		b->rekey_seconds = QKD_SA_DEFAULT_REKEY_SECONDS;
	return qkd_sa_parse_policy(b, info);
}

int qkd_nl_sa_new_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_net(genl_info_net(info));
	struct sk_buff *msg;
	struct qkd_sa *b;
	int err;

	b = kzalloc(sizeof(*b), GFP_KERNEL_ACCOUNT);
	if (!b)
		return -ENOMEM;
	err = qkd_sa_parse(b, info);
	if (err)
		goto err_free;
	msg = qkd_reply_alloc();
	if (!msg) {
		err = -ENOMEM;
		goto err_free;
	}

	mutex_lock(&qn->lock);
	err = qkd_sa_create(qn, b, info->attrs[QKD_A_SA_STREAM_ID], info->extack);
	if (!err)
		qkd_reply_changed(msg, info, QKD_CMD_SA_NEW, qkd_sa_fill, b);
	mutex_unlock(&qn->lock);
	if (err)
		nlmsg_free(msg);
	return err;

err_free:
	kfree(b);
	return err;
}

static struct qkd_sa *qkd_sa_from_attrs(struct qkd_net *qn,
					struct genl_info *info, int *err)
{
	struct qkd_sa *b;

	if (QKD_SA_REQUIRE(info, QKD_A_SA_STREAM_ID)) {
		*err = -EINVAL;
		return NULL;
	}
	b = qkd_sa_find(qn, nla_data(info->attrs[QKD_A_SA_STREAM_ID]));
	if (!b) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[QKD_A_SA_STREAM_ID],
				    "no SA binding on this stream");
		*err = -ENOENT;
	}
	return b;
}

int qkd_nl_sa_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_net(genl_info_net(info));
	struct qkd_sa *b;
	int err = 0;

	mutex_lock(&qn->lock);
	b = qkd_sa_from_attrs(qn, info, &err);
	if (b)
		err = qkd_sa_may_delete(b, info->extack);
	if (b && !err)
		qkd_sa_destroy(qn, b,
			       nla_get_flag(info->attrs[QKD_A_SA_REMOVE_PROTECTION]));
	mutex_unlock(&qn->lock);
	return err;
}

int qkd_nl_sa_rekey_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_net(genl_info_net(info));
	struct sk_buff *msg;
	struct qkd_sa *b;
	int err = 0;

	msg = qkd_reply_alloc();
	if (!msg)
		return -ENOMEM;
	mutex_lock(&qn->lock);
	b = qkd_sa_from_attrs(qn, info, &err);
	if (!b)
		goto out;
	mutex_lock(&b->lock);
	if (!qkd_sa_has_out(b) && !b->in_held) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[QKD_A_SA_STREAM_ID],
				    "an inbound-only binding follows its peer's re-keys");
		err = -EOPNOTSUPP;
	} else {
		err = qkd_sa_rekey(b, nla_get_flag(info->attrs[QKD_A_SA_FORCE]),
				   info->extack);
	}
	mutex_unlock(&b->lock);
	if (err)
		goto out;
	/* The work retires the old SA and announces a state change. */
	mod_delayed_work(system_wq, &b->work, 0);
	qkd_reply_changed(msg, info, QKD_CMD_SA_REKEY, qkd_sa_fill, b);
	msg = NULL;
out:
	mutex_unlock(&qn->lock);
	nlmsg_free(msg);
	return err;
}

int qkd_nl_sa_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_net(genl_info_net(info));
	struct qkd_sa *b;
	int err = 0;

	mutex_lock(&qn->lock);
	b = qkd_sa_from_attrs(qn, info, &err);
	if (b)
		err = qkd_reply(info, QKD_CMD_SA_GET, qkd_sa_fill, b);
	mutex_unlock(&qn->lock);
	return err;
}

/*
 * Dump every binding; cb->args[0] counts those already sent. A binding
 * created or deleted between rounds (its claim or release of the stream
 * bumps the node's dump_gen) flags the first message after it
 * NLM_F_DUMP_INTR.
 */
int qkd_nl_sa_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct qkd_net *qn = qkd_net(sock_net(cb->skb->sk));
	long skip = cb->args[0], pos = 0;
	struct qkd_sa *b;
	int err;

	err = qkd_nl_no_attrs(cb->nlh, cb->extack);
	if (err)
		return err;
	mutex_lock(&qn->lock);
	cb->seq = qn->dump_gen;
	list_for_each_entry(b, &qn->sas, list) {
		if (pos++ < skip)
			continue;
		err = qkd_dump_one(skb, cb, QKD_CMD_SA_GET, qkd_sa_fill, b);
		if (err)
			break;
		cb->args[0] = pos;
	}
	mutex_unlock(&qn->lock);
	return qkd_dump_done(skb, err);
}
