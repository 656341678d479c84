// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: the "qkd" generic netlink family: administration of links and
 * streams, the daemon's key pushes, status, and multicast events.
 *
 * Documentation/netlink/specs/qkd.yaml is the source of truth for what each
 * command takes. Every command has its own strict policy, so an attribute a
 * command does not take is rejected by the core with an extended ACK. No
 * reply and no event ever carries key bytes.
 */

#include <linux/string.h>
#include <net/genetlink.h>
#include <net/sock.h>

#include "compat.h"
#include "qkd.h"

static struct netlink_range_validation qkd_max_keys_range = {
	.min = 1,
	.max = QKD_STREAM_MAX_KEYS_LIMIT,
};

static struct netlink_range_validation qkd_low_water_range = {
	.min = 0,
	.max = QKD_STREAM_MAX_KEYS_LIMIT,
};

static struct netlink_range_validation qkd_index_range = {
	.min = 0,
	.max = QKD_INDEX_MAX,
};

#define QKD_POLICY_LINK_ID	NLA_POLICY_MIN(NLA_U32, 1)
#define QKD_POLICY_LINK_NAME	{ .type = NLA_NUL_STRING, .len = QKD_LINK_NAME_MAX - 1 }
#define QKD_POLICY_STREAM_ID	NLA_POLICY_EXACT_LEN(QKD_STREAM_ID_LEN)
#define QKD_POLICY_MAX_KEYS	NLA_POLICY_FULL_RANGE(NLA_U32, &qkd_max_keys_range)
#define QKD_POLICY_LOW_WATER	NLA_POLICY_FULL_RANGE(NLA_U32, &qkd_low_water_range)

static const struct nla_policy qkd_link_new_policy[QKD_A_MAX + 1] = {
	[QKD_A_LINK_ID] = QKD_POLICY_LINK_ID,
	[QKD_A_LINK_NAME] = QKD_POLICY_LINK_NAME,
	[QKD_A_LINK_PEER] = { .type = NLA_NUL_STRING, .len = QKD_PEER_NAME_MAX - 1 },
	[QKD_A_LINK_ROLE] = NLA_POLICY_RANGE(NLA_U8, QKD_ROLE_INITIATOR, QKD_ROLE_RESPONDER),
};

/* LINK_DEL and LINK_GET: one link, by id or by name. */
static const struct nla_policy qkd_link_ref_policy[QKD_A_MAX + 1] = {
	[QKD_A_LINK_ID] = QKD_POLICY_LINK_ID,
	[QKD_A_LINK_NAME] = QKD_POLICY_LINK_NAME,
};

static const struct nla_policy qkd_link_set_policy[QKD_A_MAX + 1] = {
	[QKD_A_LINK_ID] = QKD_POLICY_LINK_ID,
	[QKD_A_LINK_NAME] = QKD_POLICY_LINK_NAME,
	[QKD_A_LINK_STATE] = NLA_POLICY_RANGE(NLA_U8, QKD_LINK_DOWN, QKD_LINK_UP),
};

static const struct nla_policy qkd_stream_new_policy[QKD_A_MAX + 1] = {
	[QKD_A_STREAM_ID] = QKD_POLICY_STREAM_ID,
	[QKD_A_LINK_ID] = QKD_POLICY_LINK_ID,
	[QKD_A_LINK_NAME] = QKD_POLICY_LINK_NAME,
	[QKD_A_STREAM_KEY_SIZE] = NLA_POLICY_RANGE(NLA_U32, QKD_KEY_SIZE_MIN, QKD_KEY_SIZE_MAX),
	[QKD_A_STREAM_MAX_KEYS] = QKD_POLICY_MAX_KEYS,
	[QKD_A_STREAM_LOW_WATER] = QKD_POLICY_LOW_WATER,
};

/* STREAM_DEL, STREAM_GET (do) and KEY_FLUSH: one stream. */
static const struct nla_policy qkd_stream_ref_policy[QKD_A_MAX + 1] = {
	[QKD_A_STREAM_ID] = QKD_POLICY_STREAM_ID,
};

/* STREAM_GET (dump): optionally one link's streams. */
static const struct nla_policy qkd_stream_get_policy[QKD_A_MAX + 1] = {
	[QKD_A_STREAM_ID] = QKD_POLICY_STREAM_ID,
	[QKD_A_LINK_ID] = QKD_POLICY_LINK_ID,
	[QKD_A_LINK_NAME] = QKD_POLICY_LINK_NAME,
};

static const struct nla_policy qkd_stream_set_policy[QKD_A_MAX + 1] = {
	[QKD_A_STREAM_ID] = QKD_POLICY_STREAM_ID,
	[QKD_A_STREAM_MAX_KEYS] = QKD_POLICY_MAX_KEYS,
	[QKD_A_STREAM_LOW_WATER] = QKD_POLICY_LOW_WATER,
};

/* KEY_ADD: validated by the core like every command, then wiped by its handler. */
static const struct nla_policy qkd_key_add_policy[QKD_A_MAX + 1] = {
	[QKD_A_STREAM_ID] = QKD_POLICY_STREAM_ID,
	[QKD_A_KEY_FIRST_INDEX] = NLA_POLICY_FULL_RANGE(NLA_U64, &qkd_index_range),
	[QKD_A_KEY_DATA] = { .type = NLA_BINARY, .len = QKD_KEY_BATCH_MAX_BYTES },
};

/* STATUS_GET takes no attribute at all. */
static const struct nla_policy qkd_empty_policy[QKD_A_MAX + 1] = {};

static struct genl_family qkd_genl_family;

/*
 * A required attribute is missing: mark it in the extended ACK (type and
 * nest, for tools) and say so in words (for people).
 */
#define QKD_REQUIRE(info, attr) ({					\
	struct genl_info *__qinfo = (info);				\
	bool __missing = GENL_REQ_ATTR_CHECK(__qinfo, attr);		\
									\
	if (__missing)							\
		NL_SET_ERR_MSG_MOD(__qinfo->extack,			\
				   "missing attribute " #attr);		\
	__missing;							\
})

static u32 qkd_attr_u32(const struct nlattr *attr, u32 default_value)
{
	return attr ? nla_get_u32(attr) : default_value;
}

enum {
	QKD_MCGRP_EVENTS_IDX,
};

static const struct genl_multicast_group qkd_mcgrps[] = {
	[QKD_MCGRP_EVENTS_IDX] = {
		.name = QKD_MCGRP_EVENTS,
		.flags = GENL_MCAST_CAP_NET_ADMIN,
	},
};

/* ------------------------------------------------------------ messages */

static int qkd_put_counters(struct sk_buff *skb, const struct qkd_counters *c)
{
	if (nla_put_u64_64bit(skb, QKD_A_STATS_KEYS_ADDED, c->added, QKD_A_PAD) ||
	    nla_put_u64_64bit(skb, QKD_A_STATS_KEYS_DELIVERED, c->delivered, QKD_A_PAD) ||
	    nla_put_u64_64bit(skb, QKD_A_STATS_KEYS_FLUSHED, c->flushed, QKD_A_PAD) ||
	    nla_put_u64_64bit(skb, QKD_A_STATS_KEYS_STORED, c->stored, QKD_A_PAD) ||
	    nla_put_u64_64bit(skb, QKD_A_STATS_BYTES_STORED, c->bytes_stored, QKD_A_PAD))
		return -EMSGSIZE;
	return 0;
}

static int qkd_put_link(struct sk_buff *skb, const struct qkd_link *link)
{
	struct qkd_counters c;

	if (nla_put_u32(skb, QKD_A_LINK_ID, link->id) ||
	    nla_put_string(skb, QKD_A_LINK_NAME, link->name) ||
	    (link->peer[0] && nla_put_string(skb, QKD_A_LINK_PEER, link->peer)) ||
	    nla_put_u8(skb, QKD_A_LINK_ROLE, link->role) ||
	    nla_put_u8(skb, QKD_A_LINK_STATE, qkd_link_state(link)) ||
	    nla_put_u32(skb, QKD_A_STATUS_STREAMS, link->n_streams))
		return -EMSGSIZE;
	qkd_link_counters(link, &c);
	return qkd_put_counters(skb, &c);
}

static int qkd_put_stream(struct sk_buff *skb, struct qkd_stream *s)
{
	struct qkd_counters c;

	qkd_stream_counters(s, &c);
	if (nla_put(skb, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, s->id) ||
	    nla_put_u32(skb, QKD_A_LINK_ID, s->link->id) ||
	    nla_put_u32(skb, QKD_A_STREAM_KEY_SIZE, s->key_size) ||
	    nla_put_u32(skb, QKD_A_STREAM_MAX_KEYS, READ_ONCE(s->max_keys)) ||
	    nla_put_u32(skb, QKD_A_STREAM_LOW_WATER, READ_ONCE(s->low_water)) ||
	    nla_put_u32(skb, QKD_A_STREAM_STORED_KEYS, c.stored) ||
	    nla_put_u64_64bit(skb, QKD_A_STREAM_NEXT_INDEX,
			      qkd_stream_next_index(s), QKD_A_PAD) ||
	    nla_put_u8(skb, QKD_A_STREAM_CONSUMER, READ_ONCE(s->consumer)))
		return -EMSGSIZE;
	return qkd_put_counters(skb, &c);
}

/* A reply to a do request: one object, filled by @fill. */
int qkd_reply(struct genl_info *info, u8 cmd,
	      int (*fill)(struct sk_buff *skb, void *obj), void *obj)
{
	struct sk_buff *msg;
	void *hdr;
	int err;

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg)
		return -ENOMEM;
	hdr = genlmsg_put_reply(msg, info, &qkd_genl_family, 0, cmd);
	if (!hdr) {
		err = -EMSGSIZE;
		goto err_free;
	}
	err = fill(msg, obj);
	if (err)
		goto err_free;
	genlmsg_end(msg, hdr);
	return genlmsg_reply(msg, info);

err_free:
	nlmsg_free(msg);
	return err;
}

/*
 * The reply to a request that changes something (LINK_NEW, STREAM_NEW,
 * STREAM_SET): qkd_reply_alloc() before the change, so that a failed
 * allocation fails the request with nothing changed; qkd_reply_changed()
 * after it, which consumes @msg and cannot fail the request any more: once
 * the change is made the request succeeded, and a reply that cannot be
 * queued shows as ENOBUFS on the requester's socket, as a lost ACK does.
 */
struct sk_buff *qkd_reply_alloc(void)
{
	return genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
}

void qkd_reply_changed(struct sk_buff *msg, struct genl_info *info, u8 cmd,
		       int (*fill)(struct sk_buff *skb, void *obj), void *obj)
{
	void *hdr;

	hdr = genlmsg_put_reply(msg, info, &qkd_genl_family, 0, cmd);
	/* NLMSG_DEFAULT_SIZE holds any one object. */
	if (WARN_ON_ONCE(!hdr || fill(msg, obj))) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_reply(msg, info);
}

static int qkd_fill_link(struct sk_buff *skb, void *obj)
{
	return qkd_put_link(skb, obj);
}

static int qkd_fill_stream(struct sk_buff *skb, void *obj)
{
	return qkd_put_stream(skb, obj);
}

/* ---------------------------------------------------------------- events */

struct qkd_event {
	u8 cmd;
	const struct qkd_link *link;
	const struct qkd_stream *stream;
	u8 state;
	u64 first;
	u32 count;
	u32 stored;
};

static int qkd_fill_event(struct sk_buff *skb, void *obj)
{
	const struct qkd_event *ev = obj;
	const struct qkd_stream *s = ev->stream;

	if (s && (nla_put(skb, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, s->id) ||
		  nla_put_u32(skb, QKD_A_LINK_ID, s->link->id)))
		return -EMSGSIZE;

	switch (ev->cmd) {
	case QKD_CMD_LINK_STATE_NTF:
		if (nla_put_u8(skb, QKD_A_LINK_STATE, ev->state))
			return -EMSGSIZE;
		fallthrough;
	case QKD_CMD_LINK_DEL_NTF:
		if (nla_put_u32(skb, QKD_A_LINK_ID, ev->link->id) ||
		    nla_put_string(skb, QKD_A_LINK_NAME, ev->link->name))
			return -EMSGSIZE;
		break;
	case QKD_CMD_KEYS_ADDED_NTF:
		if (nla_put_u64_64bit(skb, QKD_A_KEY_FIRST_INDEX, ev->first, QKD_A_PAD) ||
		    nla_put_u32(skb, QKD_A_KEY_COUNT, ev->count) ||
		    nla_put_u32(skb, QKD_A_STREAM_STORED_KEYS, ev->stored))
			return -EMSGSIZE;
		break;
	case QKD_CMD_STREAM_LOW_NTF:
		if (nla_put_u32(skb, QKD_A_STREAM_STORED_KEYS, ev->stored) ||
		    nla_put_u32(skb, QKD_A_STREAM_LOW_WATER, READ_ONCE(s->low_water)))
			return -EMSGSIZE;
		break;
	default:
		break;
	}
	return 0;
}

/* An event of @cmd whose attributes @fill puts. */
void qkd_notify_fill(struct qkd_net *qn, u8 cmd,
		     int (*fill)(struct sk_buff *skb, void *obj), void *obj)
{
	struct sk_buff *msg;
	void *hdr;

	/* Deliveries are a hot path: build nothing when nobody listens. */
	if (!genl_has_listeners(&qkd_genl_family, qn->net, QKD_MCGRP_EVENTS_IDX))
		return;
	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &qkd_genl_family, 0, cmd);
	if (!hdr || fill(msg, obj)) {
		nlmsg_free(msg);
		return;
	}
	genlmsg_end(msg, hdr);
	genlmsg_multicast_netns(&qkd_genl_family, qn->net, msg, 0,
				QKD_MCGRP_EVENTS_IDX, GFP_KERNEL);
}

static void qkd_notify(struct qkd_net *qn, struct qkd_event *ev)
{
	qkd_notify_fill(qn, ev->cmd, qkd_fill_event, ev);
}

/*
 * One object of a dump of @cmd, filled by @fill: 0, or -EMSGSIZE when the
 * skb is full (nothing of the object is left in it).
 */
int qkd_dump_one(struct sk_buff *skb, struct netlink_callback *cb, u8 cmd,
		 int (*fill)(struct sk_buff *skb, void *obj), void *obj)
{
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &qkd_genl_family, NLM_F_MULTI, cmd);
	if (!hdr)
		return -EMSGSIZE;
	if (fill(skb, obj)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/*
 * What a dump callback returns after a round that ended with @err: a full
 * skb ends the round, and the dump resumes where cb->args says; an object
 * too big for an empty skb, or any other error, ends the dump with it.
 */
int qkd_dump_done(struct sk_buff *skb, int err)
{
	if (err == -EMSGSIZE && skb->len)
		return skb->len;
	return err ?: skb->len;
}

/* The multicast event of each store event (qkd.h). */
static const u8 qkd_store_event_cmd[] = {
	[QKD_STORE_LINK_STATE] = QKD_CMD_LINK_STATE_NTF,
	[QKD_STORE_LINK_DEL] = QKD_CMD_LINK_DEL_NTF,
	[QKD_STORE_STREAM_DEL] = QKD_CMD_STREAM_DEL_NTF,
	[QKD_STORE_KEYS_ADDED] = QKD_CMD_KEYS_ADDED_NTF,
	[QKD_STORE_STREAM_LOW] = QKD_CMD_STREAM_LOW_NTF,
	[QKD_STORE_STREAM_EMPTY] = QKD_CMD_STREAM_EMPTY_NTF,
};

/*
 * The store reports what happened, under qkd_net.lock and in the order of
 * the causes: each report goes out as it comes.
 */
static int qkd_genl_store_event(struct notifier_block *nb,
				unsigned long event, void *data)
{
	const struct qkd_store_event_info *info = data;
	struct qkd_event ev = {
		.link = info->link,
		.stream = info->stream,
		.state = info->state,
		.first = info->first,
		.count = info->count,
		.stored = info->stored,
	};

	if (WARN_ON_ONCE(event >= ARRAY_SIZE(qkd_store_event_cmd)))
		return NOTIFY_DONE;
	ev.cmd = qkd_store_event_cmd[event];
	qkd_notify(info->qn, &ev);
	return NOTIFY_OK;
}

static struct notifier_block qkd_store_nb = {
	.notifier_call = qkd_genl_store_event,
};

/* -------------------------------------------------------------- handlers */

static struct qkd_net *qkd_info_net(struct genl_info *info)
{
	return qkd_net(genl_info_net(info));
}

/* The link named by LINK_ID or LINK_NAME; sets an extended ACK if none. */
static struct qkd_link *qkd_link_from_attrs(struct qkd_net *qn,
					    struct nlattr **attrs,
					    struct netlink_ext_ack *extack,
					    int *err)
{
	struct nlattr *id = attrs[QKD_A_LINK_ID], *name = attrs[QKD_A_LINK_NAME];
	struct qkd_link *link;

	if (!id && !name) {
		NL_SET_ERR_MSG_MOD(extack, "a link id or link name is required");
		*err = -EINVAL;
		return NULL;
	}
	link = qkd_link_find(qn, id ? nla_get_u32(id) : 0,
			     name ? nla_data(name) : NULL);
	if (!link || (id && name && strcmp(link->name, nla_data(name)))) {
		NL_SET_ERR_MSG_ATTR(extack, id ?: name, "no such link");
		*err = -ENOENT;
		return NULL;
	}
	return link;
}

static struct qkd_stream *qkd_stream_from_attrs(struct qkd_net *qn,
						struct genl_info *info,
						int *err)
{
	struct qkd_stream *s;

	if (QKD_REQUIRE(info, QKD_A_STREAM_ID)) {
		*err = -EINVAL;
		return NULL;
	}
	s = qkd_stream_find_locked(qn, nla_data(info->attrs[QKD_A_STREAM_ID]));
	if (!s) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[QKD_A_STREAM_ID],
				    "no such stream");
		*err = -ENOENT;
	}
	return s;
}

static int qkd_nl_link_new(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct nlattr **attrs = info->attrs;
	struct qkd_link *link;
	struct sk_buff *msg;
	const char *name;
	int err;

	if (QKD_REQUIRE(info, QKD_A_LINK_NAME) ||
	    QKD_REQUIRE(info, QKD_A_LINK_ROLE))
		return -EINVAL;
	name = nla_data(attrs[QKD_A_LINK_NAME]);
	if (!name[0]) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[QKD_A_LINK_NAME],
				    "link name is empty");
		return -EINVAL;
	}

	msg = qkd_reply_alloc();
	if (!msg)
		return -ENOMEM;
	mutex_lock(&qn->lock);
	err = qkd_link_create(qn, qkd_attr_u32(attrs[QKD_A_LINK_ID], 0),
			      name,
			      attrs[QKD_A_LINK_PEER] ? nla_data(attrs[QKD_A_LINK_PEER]) : NULL,
			      nla_get_u8(attrs[QKD_A_LINK_ROLE]), &link);
	if (err == -EEXIST)
		NL_SET_ERR_MSG_MOD(info->extack, "link id or name already in use");
	else if (err == -ENOSPC)
		NL_SET_ERR_MSG_MOD(info->extack, "too many links in this network namespace");
	if (!err)
		qkd_reply_changed(msg, info, QKD_CMD_LINK_NEW, qkd_fill_link, link);
	else
		nlmsg_free(msg);
	mutex_unlock(&qn->lock);
	return err;
}

static int qkd_nl_link_del(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_link *link;
	int err = 0;

	mutex_lock(&qn->lock);
	link = qkd_link_from_attrs(qn, info->attrs, info->extack, &err);
	if (link)
		err = qkd_link_may_delete(qn, link, info->extack);
	if (link && !err)
		qkd_link_delete(qn, link, true);
	mutex_unlock(&qn->lock);
	return err;
}

static int qkd_nl_link_get(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_link *link;
	int err = 0;

	mutex_lock(&qn->lock);
	link = qkd_link_from_attrs(qn, info->attrs, info->extack, &err);
	if (link)
		err = qkd_reply(info, QKD_CMD_LINK_GET, qkd_fill_link, link);
	mutex_unlock(&qn->lock);
	return err;
}

static int qkd_nl_link_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct qkd_net *qn = qkd_net(sock_net(cb->skb->sk));
	unsigned long id = cb->args[0];
	struct qkd_link *link;
	int err = 0;

	mutex_lock(&qn->lock);
	xa_for_each_start(&qn->links, id, link, id) {
		err = qkd_dump_one(skb, cb, QKD_CMD_LINK_GET, qkd_fill_link, link);
		if (err)
			break;
		cb->args[0] = id + 1;
	}
	mutex_unlock(&qn->lock);
	return qkd_dump_done(skb, err);
}

static int qkd_nl_link_set(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_link *link;
	int err = 0;

	if (QKD_REQUIRE(info, QKD_A_LINK_STATE))
		return -EINVAL;

	mutex_lock(&qn->lock);
	link = qkd_link_from_attrs(qn, info->attrs, info->extack, &err);
	if (link)
		qkd_link_set_state(qn, link, nla_get_u8(info->attrs[QKD_A_LINK_STATE]));
	mutex_unlock(&qn->lock);
	return err;
}

static int qkd_check_limits(struct genl_info *info, u32 max_keys, u32 low_water)
{
	if (low_water > max_keys) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[QKD_A_STREAM_LOW_WATER] ?:
				    info->attrs[QKD_A_STREAM_MAX_KEYS],
				    "low-water mark is above max-keys");
		return -EINVAL;
	}
	return 0;
}

static int qkd_nl_stream_new(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct nlattr **attrs = info->attrs;
	struct qkd_stream *s;
	struct qkd_link *link;
	u32 max_keys, low_water;
	struct sk_buff *msg;
	const u8 *id;
	int err = 0;

	if (QKD_REQUIRE(info, QKD_A_STREAM_ID) ||
	    QKD_REQUIRE(info, QKD_A_STREAM_KEY_SIZE))
		return -EINVAL;
	id = nla_data(attrs[QKD_A_STREAM_ID]);
	if (!memchr_inv(id, 0, QKD_STREAM_ID_LEN)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[QKD_A_STREAM_ID],
				    "the nil UUID is not a stream ID");
		return -EINVAL;
	}
	max_keys = qkd_attr_u32(attrs[QKD_A_STREAM_MAX_KEYS],
				qkd_stream_default_max_keys);
	low_water = qkd_attr_u32(attrs[QKD_A_STREAM_LOW_WATER], 0);
	err = qkd_check_limits(info, max_keys, low_water);
	if (err)
		return err;

	msg = qkd_reply_alloc();
	if (!msg)
		return -ENOMEM;
	mutex_lock(&qn->lock);
	link = qkd_link_from_attrs(qn, attrs, info->extack, &err);
	if (!link)
		goto out;
	err = qkd_stream_create(qn, link, id, nla_get_u32(attrs[QKD_A_STREAM_KEY_SIZE]),
				max_keys, low_water, &s);
	if (err == -EEXIST)
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[QKD_A_STREAM_ID],
				    "stream ID already in use in this network namespace");
	else if (err == -ENOSPC)
		NL_SET_ERR_MSG_MOD(info->extack, "too many streams in this network namespace");
	if (!err) {
		qkd_reply_changed(msg, info, QKD_CMD_STREAM_NEW, qkd_fill_stream, s);
		msg = NULL;
	}
out:
	mutex_unlock(&qn->lock);
	nlmsg_free(msg);
	return err;
}

static int qkd_nl_stream_del(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_stream *s;
	int err = 0;

	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, &err);
	if (s)
		err = qkd_stream_may_delete(qn, s, info->extack);
	if (s && !err)
		qkd_stream_delete(qn, s, true);
	mutex_unlock(&qn->lock);
	return err;
}

static int qkd_nl_stream_get(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_stream *s;
	int err = 0;

	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, &err);
	if (s)
		err = qkd_reply(info, QKD_CMD_STREAM_GET, qkd_fill_stream, s);
	mutex_unlock(&qn->lock);
	return err;
}

/*
 * Dump all streams, or one link's. cb->args[0] counts the streams already
 * sent, cb->args[1] is the link filter (0: none). The order is creation
 * order; a stream deleted between rounds may shift the rest by one, as with
 * other position-based netlink dumps.
 */
static int qkd_nl_stream_dump(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct qkd_net *qn = qkd_net(sock_net(cb->skb->sk));
	struct nlattr **attrs = qkd_dumpit_attrs(cb);
	long skip = cb->args[0], pos = 0;
	struct qkd_stream *s;
	int err = 0;

	mutex_lock(&qn->lock);
	if (!skip && attrs && (attrs[QKD_A_LINK_ID] || attrs[QKD_A_LINK_NAME])) {
		struct qkd_link *link = qkd_link_from_attrs(qn, attrs, cb->extack, &err);

		if (!link)
			goto out;
		cb->args[1] = link->id;
	}
	list_for_each_entry(s, &qn->stream_list, list) {
		if (cb->args[1] && s->link->id != cb->args[1])
			continue;
		if (pos++ < skip)
			continue;
		err = qkd_dump_one(skb, cb, QKD_CMD_STREAM_GET, qkd_fill_stream, s);
		if (err)
			break;
		cb->args[0] = pos;
	}
out:
	mutex_unlock(&qn->lock);
	return qkd_dump_done(skb, err);
}

static int qkd_nl_stream_set(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct nlattr **attrs = info->attrs;
	struct qkd_stream *s;
	u32 max_keys, low_water;
	struct sk_buff *msg;
	int err = 0;

	if (!attrs[QKD_A_STREAM_MAX_KEYS] && !attrs[QKD_A_STREAM_LOW_WATER]) {
		NL_SET_ERR_MSG_MOD(info->extack,
				   "nothing to set: give max-keys and/or low-water");
		return -EINVAL;
	}

	msg = qkd_reply_alloc();
	if (!msg)
		return -ENOMEM;
	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, &err);
	if (!s)
		goto out;
	max_keys = qkd_attr_u32(attrs[QKD_A_STREAM_MAX_KEYS], s->max_keys);
	low_water = qkd_attr_u32(attrs[QKD_A_STREAM_LOW_WATER], s->low_water);
	err = qkd_check_limits(info, max_keys, low_water);
	if (err)
		goto out;
	/* Read locklessly by deliveries and dumps. */
	xa_lock(&s->keys);
	WRITE_ONCE(s->max_keys, max_keys);
	WRITE_ONCE(s->low_water, low_water);
	xa_unlock(&s->keys);
	qkd_reply_changed(msg, info, QKD_CMD_STREAM_SET, qkd_fill_stream, s);
	msg = NULL;
out:
	mutex_unlock(&qn->lock);
	nlmsg_free(msg);
	return err;
}

/*
 * Zero whatever of a KEY_ADD request may be key bytes: the payload of every
 * attribute but a well-formed STREAM_ID or KEY_FIRST_INDEX (so a second
 * KEY_DATA, key bytes under another attribute type or in a nest are wiped
 * too), and any bytes after the last well-formed attribute. The attribute
 * headers stay, so that an error ACK's echo still shows the request's shape.
 */
static void qkd_key_add_wipe(struct genl_info *info)
{
	struct nlattr *nla;
	int rem;

	nla_for_each_attr(nla, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		if ((nla->nla_type == QKD_A_STREAM_ID &&
		     nla_len(nla) == QKD_STREAM_ID_LEN) ||
		    (nla->nla_type == QKD_A_KEY_FIRST_INDEX &&
		     nla_len(nla) == sizeof(u64)))
			continue;
		memzero_explicit(nla_data(nla), nla_len(nla));
	}
	if (rem > 0)
		memzero_explicit(nla, rem);
}

/*
 * KEY_DATA carries key bytes. The genl core validates the request (header,
 * strict policy, extended ACK) like any other; once it reaches this handler
 * the key bytes are zeroed in the request skb on every exit (stored, refused
 * by the store), as WireGuard does for its private and preshared keys, so
 * neither the skb the core frees nor an error ACK's echo of it keeps them.
 *
 * A request the core itself rejects (a bad header, an attribute the policy
 * refuses, no CAP_NET_ADMIN) never reaches a module hook: pre_doit and
 * post_doit run only after the core's parse. Such a request is freed as it
 * was sent, and echoed to its sender in the error ACK unless the socket set
 * NETLINK_CAP_ACK. The exposure is the sender's own bytes, sent back to the
 * sender alone, plus their copy in freed slab memory until it is reused
 * (init_on_free=1 closes that). The module cannot wipe what it is never
 * handed; senders must set NETLINK_CAP_ACK (libqkd and so qkdd do) and send
 * well-formed requests, see Documentation/abi.md.
 */
static int qkd_nl_key_add(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct nlattr *data = info->attrs[QKD_A_KEY_DATA];
	struct qkd_stream *s;
	int err;

	if (QKD_REQUIRE(info, QKD_A_STREAM_ID) ||
	    QKD_REQUIRE(info, QKD_A_KEY_FIRST_INDEX) ||
	    QKD_REQUIRE(info, QKD_A_KEY_DATA)) {
		err = -EINVAL;
		goto out_wipe;
	}

	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, &err);
	if (s && (!nla_len(data) || nla_len(data) % s->key_size)) {
		NL_SET_ERR_MSG_ATTR(info->extack, data,
				    "key data length is not a multiple of the key size");
		err = -EINVAL;
	} else if (s) {
		err = qkd_stream_push(qn, s, nla_get_u64(info->attrs[QKD_A_KEY_FIRST_INDEX]),
				      nla_data(data), nla_len(data), info->extack);
	}
	mutex_unlock(&qn->lock);

out_wipe:
	qkd_key_add_wipe(info);
	return err;
}

static int qkd_nl_key_flush(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_stream *s;
	int err = 0;

	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, &err);
	if (s)
		qkd_stream_flush(qn, s);
	mutex_unlock(&qn->lock);
	return err;
}

static int qkd_fill_status(struct sk_buff *skb, void *obj)
{
	struct qkd_net *qn = obj;
	struct qkd_counters c;

	if (nla_put_u32(skb, QKD_A_STATUS_ABI_VERSION, QKD_ABI_VERSION) ||
	    nla_put_u32(skb, QKD_A_STATUS_LINKS, qn->n_links) ||
	    nla_put_u32(skb, QKD_A_STATUS_STREAMS, qn->n_streams) ||
	    nla_put_u64_64bit(skb, QKD_A_STATUS_MAX_KEYS, qkd_netns_max_keys, QKD_A_PAD) ||
	    nla_put_u64_64bit(skb, QKD_A_STATUS_MAX_BYTES, qkd_netns_max_bytes, QKD_A_PAD))
		return -EMSGSIZE;
	qkd_net_counters(qn, &c);
	return qkd_put_counters(skb, &c);
}

static int qkd_nl_status_get(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	int err;

	mutex_lock(&qn->lock);
	err = qkd_reply(info, QKD_CMD_STATUS_GET, qkd_fill_status, qn);
	mutex_unlock(&qn->lock);
	return err;
}

#define QKD_OP(_cmd, _doit, _dumpit, _policy) {		\
	.cmd = _cmd,					\
	.doit = _doit,					\
	.dumpit = _dumpit,				\
	.policy = _policy,				\
	.maxattr = QKD_A_MAX,				\
	.flags = GENL_ADMIN_PERM,			\
}

/*
 * GENL_ADMIN_PERM: CAP_NET_ADMIN in the initial user namespace. Key material
 * is trusted input from the daemon; an unprivileged user namespace owner
 * gets no way into this parser (see Documentation/abi.md, Permissions).
 */
static const struct genl_ops qkd_genl_ops[] = {
	QKD_OP(QKD_CMD_LINK_NEW, qkd_nl_link_new, NULL, qkd_link_new_policy),
	QKD_OP(QKD_CMD_LINK_DEL, qkd_nl_link_del, NULL, qkd_link_ref_policy),
	QKD_OP(QKD_CMD_LINK_GET, qkd_nl_link_get, qkd_nl_link_dump, qkd_link_ref_policy),
	QKD_OP(QKD_CMD_LINK_SET, qkd_nl_link_set, NULL, qkd_link_set_policy),
	QKD_OP(QKD_CMD_STREAM_NEW, qkd_nl_stream_new, NULL, qkd_stream_new_policy),
	QKD_OP(QKD_CMD_STREAM_DEL, qkd_nl_stream_del, NULL, qkd_stream_ref_policy),
	QKD_OP(QKD_CMD_STREAM_GET, qkd_nl_stream_get, qkd_nl_stream_dump,
	       qkd_stream_get_policy),
	QKD_OP(QKD_CMD_STREAM_SET, qkd_nl_stream_set, NULL, qkd_stream_set_policy),
	QKD_OP(QKD_CMD_KEY_ADD, qkd_nl_key_add, NULL, qkd_key_add_policy),
	QKD_OP(QKD_CMD_KEY_FLUSH, qkd_nl_key_flush, NULL, qkd_stream_ref_policy),
	QKD_OP(QKD_CMD_STATUS_GET, qkd_nl_status_get, NULL, qkd_empty_policy),
	QKD_OP(QKD_CMD_SA_NEW, qkd_nl_sa_new, NULL, qkd_sa_new_policy),
	QKD_OP(QKD_CMD_SA_DEL, qkd_nl_sa_del, NULL, qkd_sa_del_policy),
	QKD_OP(QKD_CMD_SA_GET, qkd_nl_sa_get, qkd_nl_sa_dump, qkd_sa_ref_policy),
	QKD_OP(QKD_CMD_SA_REKEY, qkd_nl_sa_rekey, NULL, qkd_sa_rekey_policy),
};

static struct genl_family qkd_genl_family __ro_after_init = {
	.name = QKD_GENL_NAME,
	.version = QKD_GENL_VERSION,
	.maxattr = QKD_A_MAX,
	.netnsok = true,
	.parallel_ops = true,
	/*
	 * No resv_start_op: the core checks the header (reserved byte, flags)
	 * and validates the attributes strictly for every command.
	 */
	.module = THIS_MODULE,
	.ops = qkd_genl_ops,
	.n_ops = ARRAY_SIZE(qkd_genl_ops),
	.mcgrps = qkd_mcgrps,
	.n_mcgrps = ARRAY_SIZE(qkd_mcgrps),
};

/*
 * Subscribed to the store's events before the family exists, so that every
 * event a request causes is sent; unsubscribed after the family is gone,
 * when no request is in flight any more.
 */
int __init qkd_genl_init(void)
{
	int err;

	err = qkd_store_register_notifier(&qkd_store_nb);
	if (err)
		return err;
	err = genl_register_family(&qkd_genl_family);
	if (err)
		qkd_store_unregister_notifier(&qkd_store_nb);
	return err;
}

void qkd_genl_exit(void)
{
	genl_unregister_family(&qkd_genl_family);
	qkd_store_unregister_notifier(&qkd_store_nb);
}
