// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: the "qkd" generic netlink family: administration of links and
 * streams, the daemon's key pushes, status, and multicast events.
 *
 * Documentation/netlink/specs/qkd.yaml is the source of truth: the
 * attributes, every operation's request policy (one per do and per dump)
 * and the op table are generated from it into netlink-gen.[ch] (make
 * regen). An attribute an operation does not take is rejected by the core
 * with an extended ACK; the operations without a request list (status-get,
 * the link-get and sa-get dumps) get no policy, so their handlers refuse
 * any attribute themselves. No reply and no event ever carries key bytes.
 */

#include <linux/string.h>
#include <net/genetlink.h>
#include <net/sock.h>

#include "compat.h"
#include "netlink-gen.h"
#include "qkd.h"

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

/*
 * Not the generated qkd_nl_mcgrps: the 6.12 generator drops the group's
 * admin-perm flag, which GENL_MCAST_CAP_NET_ADMIN is.
 */
static const struct genl_multicast_group qkd_mcgrps[] = {
	[QKD_NLGRP_EVENTS] = {
		.name = QKD_MCGRP_EVENTS,
		.flags = GENL_MCAST_CAP_NET_ADMIN,
	},
};

/* ------------------------------------------------------------ messages */

/* The key counters, as a nest of type @type (enum qkd_a_stats). */
static int qkd_put_counters(struct sk_buff *skb, int type, const struct qkd_counters *c)
{
	struct nlattr *nest = nla_nest_start(skb, type);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_uint(skb, QKD_A_STATS_KEYS_ADDED, c->added) ||
	    nla_put_uint(skb, QKD_A_STATS_KEYS_DELIVERED, c->delivered) ||
	    nla_put_uint(skb, QKD_A_STATS_KEYS_FLUSHED, c->flushed) ||
	    nla_put_uint(skb, QKD_A_STATS_KEYS_STORED, c->stored) ||
	    nla_put_uint(skb, QKD_A_STATS_BYTES_STORED, c->bytes_stored)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
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
	    nla_put_u32(skb, QKD_A_LINK_STREAMS, link->n_streams))
		return -EMSGSIZE;
	qkd_link_counters(link, &c);
	return qkd_put_counters(skb, QKD_A_LINK_STATS, &c);
}

static int qkd_put_stream(struct sk_buff *skb, struct qkd_stream *s)
{
	struct qkd_counters c;

	qkd_stream_counters(s, &c);
	if (nla_put(skb, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, s->id) ||
	    nla_put_u32(skb, QKD_A_STREAM_LINK_ID, s->link->id) ||
	    nla_put_u32(skb, QKD_A_STREAM_KEY_SIZE, s->key_size) ||
	    nla_put_u32(skb, QKD_A_STREAM_MAX_KEYS, READ_ONCE(s->max_keys)) ||
	    nla_put_u32(skb, QKD_A_STREAM_LOW_WATER, READ_ONCE(s->low_water)) ||
	    nla_put_u32(skb, QKD_A_STREAM_STORED_KEYS, c.stored) ||
	    nla_put_u64_64bit(skb, QKD_A_STREAM_NEXT_INDEX,
			      qkd_stream_next_index(s), QKD_A_STREAM_PAD) ||
	    nla_put_u8(skb, QKD_A_STREAM_CONSUMER, READ_ONCE(s->consumer)))
		return -EMSGSIZE;
	return qkd_put_counters(skb, QKD_A_STREAM_STATS, &c);
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
		if (nla_put(skb, QKD_A_KEYS_STREAM_ID, QKD_STREAM_ID_LEN, s->id) ||
		    nla_put_u32(skb, QKD_A_KEYS_LINK_ID, s->link->id) ||
		    nla_put_u64_64bit(skb, QKD_A_KEYS_FIRST_INDEX, ev->first,
				      QKD_A_KEYS_PAD) ||
		    nla_put_u32(skb, QKD_A_KEYS_COUNT, ev->count) ||
		    nla_put_u32(skb, QKD_A_KEYS_STORED_KEYS, ev->stored))
			return -EMSGSIZE;
		break;
	case QKD_CMD_STREAM_LOW_NTF:
		if (nla_put_u32(skb, QKD_A_STREAM_STORED_KEYS, ev->stored) ||
		    nla_put_u32(skb, QKD_A_STREAM_LOW_WATER, READ_ONCE(s->low_water)))
			return -EMSGSIZE;
		fallthrough;
	case QKD_CMD_STREAM_EMPTY_NTF:
	case QKD_CMD_STREAM_DEL_NTF:
		if (nla_put(skb, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, s->id) ||
		    nla_put_u32(skb, QKD_A_STREAM_LINK_ID, s->link->id))
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
	if (!genl_has_listeners(&qkd_genl_family, qn->net, QKD_NLGRP_EVENTS))
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
				QKD_NLGRP_EVENTS, GFP_KERNEL);
}

static void qkd_notify(struct qkd_net *qn, struct qkd_event *ev)
{
	qkd_notify_fill(qn, ev->cmd, qkd_fill_event, ev);
}

/*
 * One object of a dump of @cmd, filled by @fill: 0, or -EMSGSIZE when the
 * skb is full (nothing of the object is left in it). The dumpit set cb->seq
 * to the node's dump_gen under qkd_net.lock: the first message after a
 * change of the node's sets carries NLM_F_DUMP_INTR.
 */
int qkd_dump_one(struct sk_buff *skb, struct netlink_callback *cb, u8 cmd,
		 int (*fill)(struct sk_buff *skb, void *obj), void *obj)
{
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq,
			  &qkd_genl_family, NLM_F_MULTI, cmd);
	if (!hdr)
		return -EMSGSIZE;
	genl_dump_check_consistent(cb, hdr);
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

/*
 * The link named by @id or @name (a link's own attributes, or a stream's
 * link-id/link-name); sets an extended ACK if none.
 */
static struct qkd_link *qkd_link_from_attrs(struct qkd_net *qn,
					    struct nlattr *id, struct nlattr *name,
					    struct netlink_ext_ack *extack,
					    int *err)
{
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

static struct qkd_link *qkd_link_from_info(struct qkd_net *qn,
					   struct genl_info *info, int *err)
{
	return qkd_link_from_attrs(qn, info->attrs[QKD_A_LINK_ID],
				   info->attrs[QKD_A_LINK_NAME], info->extack, err);
}

/* The stream named by the attribute @type (a stream's id, a batch's stream-id). */
static struct qkd_stream *qkd_stream_from_attrs(struct qkd_net *qn,
						struct genl_info *info,
						int type, int *err)
{
	struct qkd_stream *s;

	if (GENL_REQ_ATTR_CHECK(info, type)) {
		NL_SET_ERR_MSG_MOD(info->extack, "missing attribute: the stream id");
		*err = -EINVAL;
		return NULL;
	}
	s = qkd_stream_find_locked(qn, nla_data(info->attrs[type]));
	if (!s) {
		NL_SET_ERR_MSG_ATTR(info->extack, info->attrs[type],
				    "no such stream");
		*err = -ENOENT;
	}
	return s;
}

/*
 * An operation without a request list in the spec gets no policy, and the
 * core passes whatever attributes it carries unchecked: refuse them.
 */
int qkd_nl_no_attrs(const struct nlmsghdr *nlh, struct netlink_ext_ack *extack)
{
	if (nlmsg_attrlen(nlh, GENL_HDRLEN)) {
		NL_SET_ERR_MSG_ATTR(extack, nlmsg_attrdata(nlh, GENL_HDRLEN),
				    "this request takes no attribute");
		return -EINVAL;
	}
	return 0;
}

/*
 * Link names end up in file names (/etc/qkd/NAME.conf), systemd unit
 * instances (qkd@NAME) and JSON: letters, digits, '_', '-' and '.', not
 * starting with '-' or '.' (the YNL spec cannot express a pattern, so the
 * handler checks; the policy bounds the length). Explicit ranges, not
 * isalnum(): the kernel's ctype counts Latin-1 letters as alphabetic.
 */
static bool qkd_link_name_ok(const char *s)
{
	size_t i;

	if (s[0] == '\0' || s[0] == '-' || s[0] == '.')
		return false;
	for (i = 0; s[i]; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

int qkd_nl_link_new_doit(struct sk_buff *skb, struct genl_info *info)
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
	if (!qkd_link_name_ok(name)) {
		NL_SET_ERR_MSG_ATTR(info->extack, attrs[QKD_A_LINK_NAME],
				    "link name must be 1 to 31 of [A-Za-z0-9_.-], not starting with '-' or '.'");
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

int qkd_nl_link_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_link *link;
	int err = 0;

	mutex_lock(&qn->lock);
	link = qkd_link_from_info(qn, info, &err);
	if (link)
		err = qkd_link_may_delete(qn, link, info->extack);
	if (link && !err)
		qkd_link_delete(qn, link, true);
	mutex_unlock(&qn->lock);
	return err;
}

int qkd_nl_link_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_link *link;
	int err = 0;

	mutex_lock(&qn->lock);
	link = qkd_link_from_info(qn, info, &err);
	if (link)
		err = qkd_reply(info, QKD_CMD_LINK_GET, qkd_fill_link, link);
	mutex_unlock(&qn->lock);
	return err;
}

int qkd_nl_link_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct qkd_net *qn = qkd_net(sock_net(cb->skb->sk));
	unsigned long id = cb->args[0];
	struct qkd_link *link;
	int err;

	err = qkd_nl_no_attrs(cb->nlh, cb->extack);
	if (err)
		return err;
	mutex_lock(&qn->lock);
	cb->seq = qn->dump_gen;
	xa_for_each_start(&qn->links, id, link, id) {
		err = qkd_dump_one(skb, cb, QKD_CMD_LINK_GET, qkd_fill_link, link);
		if (err)
			break;
		cb->args[0] = id + 1;
	}
	mutex_unlock(&qn->lock);
	return qkd_dump_done(skb, err);
}

int qkd_nl_link_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_link *link;
	int err = 0;

	if (QKD_REQUIRE(info, QKD_A_LINK_STATE))
		return -EINVAL;

	mutex_lock(&qn->lock);
	link = qkd_link_from_info(qn, info, &err);
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

int qkd_nl_stream_new_doit(struct sk_buff *skb, struct genl_info *info)
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
	link = qkd_link_from_attrs(qn, attrs[QKD_A_STREAM_LINK_ID],
				   attrs[QKD_A_STREAM_LINK_NAME], info->extack, &err);
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

int qkd_nl_stream_del_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_stream *s;
	int err = 0;

	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, QKD_A_STREAM_ID, &err);
	if (s)
		err = qkd_stream_may_delete(qn, s, info->extack);
	if (s && !err)
		qkd_stream_delete(qn, s, true);
	mutex_unlock(&qn->lock);
	return err;
}

int qkd_nl_stream_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_stream *s;
	int err = 0;

	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, QKD_A_STREAM_ID, &err);
	if (s)
		err = qkd_reply(info, QKD_CMD_STREAM_GET, qkd_fill_stream, s);
	mutex_unlock(&qn->lock);
	return err;
}

/*
 * Dump all streams, or one link's. cb->args[0] counts the streams already
 * sent, cb->args[1] is the link filter (0: none). The order is creation
 * order; a stream deleted between rounds shifts the rest by one, and the
 * first message after it carries NLM_F_DUMP_INTR (qkd_dump_one()).
 */
int qkd_nl_stream_get_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	struct qkd_net *qn = qkd_net(sock_net(cb->skb->sk));
	struct nlattr **attrs = qkd_dumpit_attrs(cb);
	long skip = cb->args[0], pos = 0;
	struct qkd_stream *s;
	int err = 0;

	mutex_lock(&qn->lock);
	cb->seq = qn->dump_gen;
	if (!skip && attrs &&
	    (attrs[QKD_A_STREAM_LINK_ID] || attrs[QKD_A_STREAM_LINK_NAME])) {
		struct qkd_link *link;

		link = qkd_link_from_attrs(qn, attrs[QKD_A_STREAM_LINK_ID],
					   attrs[QKD_A_STREAM_LINK_NAME],
					   cb->extack, &err);

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

int qkd_nl_stream_set_doit(struct sk_buff *skb, struct genl_info *info)
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
	s = qkd_stream_from_attrs(qn, info, QKD_A_STREAM_ID, &err);
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
 * attribute but a well-formed STREAM_ID or FIRST_INDEX (so a second
 * DATA, key bytes under another attribute type or in a nest are wiped
 * too), and any bytes after the last well-formed attribute. The attribute
 * headers stay, so that an error ACK's echo still shows the request's shape.
 */
static void qkd_key_add_wipe(struct genl_info *info)
{
	struct nlattr *nla;
	int rem;

	nla_for_each_attr(nla, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), rem) {
		if ((nla->nla_type == QKD_A_KEYS_STREAM_ID &&
		     nla_len(nla) == QKD_STREAM_ID_LEN) ||
		    (nla->nla_type == QKD_A_KEYS_FIRST_INDEX &&
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
int qkd_nl_key_add_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct nlattr *data = info->attrs[QKD_A_KEYS_DATA];
	struct qkd_stream *s;
	int err;

	if (QKD_REQUIRE(info, QKD_A_KEYS_STREAM_ID) ||
	    QKD_REQUIRE(info, QKD_A_KEYS_FIRST_INDEX) ||
	    QKD_REQUIRE(info, QKD_A_KEYS_DATA)) {
		err = -EINVAL;
		goto out_wipe;
	}
	/* The policy's job in ABI 1; the 6.12 generator has no binary max-len. */
	if (nla_len(data) > QKD_KEY_BATCH_MAX_BYTES) {
		NL_SET_ERR_MSG_ATTR(info->extack, data,
				    "key data is over QKD_KEY_BATCH_MAX_BYTES");
		err = -ERANGE;
		goto out_wipe;
	}

	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, QKD_A_KEYS_STREAM_ID, &err);
	if (s && (!nla_len(data) || nla_len(data) % s->key_size)) {
		NL_SET_ERR_MSG_ATTR(info->extack, data,
				    "key data length is not a multiple of the key size");
		err = -EINVAL;
	} else if (s) {
		err = qkd_stream_push(qn, s, nla_get_u64(info->attrs[QKD_A_KEYS_FIRST_INDEX]),
				      nla_data(data), nla_len(data), info->extack);
	}
	mutex_unlock(&qn->lock);

out_wipe:
	qkd_key_add_wipe(info);
	return err;
}

int qkd_nl_key_flush_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	struct qkd_stream *s;
	int err = 0;

	mutex_lock(&qn->lock);
	s = qkd_stream_from_attrs(qn, info, QKD_A_KEYS_STREAM_ID, &err);
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
	    nla_put_uint(skb, QKD_A_STATUS_MAX_KEYS, qkd_netns_max_keys) ||
	    nla_put_uint(skb, QKD_A_STATUS_MAX_BYTES, qkd_netns_max_bytes) ||
	    nla_put_uint(skb, QKD_A_STATUS_FEATURES, QKD_FEATURES))
		return -EMSGSIZE;
	qkd_net_counters(qn, &c);
	return qkd_put_counters(skb, QKD_A_STATUS_STATS, &c);
}

int qkd_nl_status_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct qkd_net *qn = qkd_info_net(info);
	int err;

	err = qkd_nl_no_attrs(info->nlhdr, info->extack);
	if (err)
		return err;
	mutex_lock(&qn->lock);
	err = qkd_reply(info, QKD_CMD_STATUS_GET, qkd_fill_status, qn);
	mutex_unlock(&qn->lock);
	return err;
}

/*
 * The ops are generated (netlink-gen.c, from the spec): GENL_ADMIN_PERM,
 * CAP_NET_ADMIN in the initial user namespace, on every one. Key material
 * is trusted input from the daemon; an unprivileged user namespace owner
 * gets no way into this parser (see Documentation/abi.md, Permissions).
 */
static struct genl_family qkd_genl_family __ro_after_init = {
	.name = QKD_FAMILY_NAME,
	.version = QKD_FAMILY_VERSION,
	.netnsok = true,
	.parallel_ops = true,
	/*
	 * No resv_start_op: the core checks the header (reserved byte, flags)
	 * and validates the attributes strictly for every command.
	 */
	.module = THIS_MODULE,
	QKD_COMPAT_GENL_OPS,
	.mcgrps = qkd_mcgrps,
	.n_mcgrps = ARRAY_SIZE(qkd_mcgrps),
};

#ifndef QKD_COMPAT_SPLIT_OPS
/*
 * 6.1: the generated split ops as genl_ops (kernel/compat.h), one per
 * command with one policy, which the core applies to its do and its dump
 * alike; 6.1 forbids GENL_DONT_VALIDATE_* on strict commands. So a command
 * whose do and dump have different policies (stream-get) gets their union,
 * and each request is then validated strictly again with its own: the do
 * in the family's pre_doit, the dump in its start callback. A dump without
 * a policy refuses every attribute in its dumpit either way.
 */
static struct genl_ops qkd_compat_ops[ARRAY_SIZE(qkd_nl_ops)];
static const struct genl_split_ops *qkd_compat_dos[QKD_CMD_MAX + 1];
static const struct genl_split_ops *qkd_compat_dumps[QKD_CMD_MAX + 1];
static struct nla_policy *qkd_compat_unions[QKD_CMD_MAX + 1];

static int qkd_compat_pre_doit(const struct genl_ops *ops, struct sk_buff *skb,
			       struct genl_info *info)
{
	const struct genl_split_ops *op = qkd_compat_dos[ops->cmd];

	if (!op || !op->maxattr || op->policy == ops->policy)
		return 0;
	return nla_validate(genlmsg_data(info->genlhdr),
			    genlmsg_len(info->genlhdr), op->maxattr, op->policy,
			    info->extack);
}

static int qkd_compat_dump_start(struct netlink_callback *cb)
{
	const struct genl_dumpit_info *info = genl_dumpit_info(cb);
	const struct genl_split_ops *op = qkd_compat_dumps[info->op.cmd];

	if (!op->maxattr)
		return 0;	/* no policy: the dumpit refuses any attribute */
	return nla_validate(nlmsg_attrdata(cb->nlh, GENL_HDRLEN),
			    nlmsg_attrlen(cb->nlh, GENL_HDRLEN), op->maxattr,
			    op->policy, cb->extack);
}

/* The union of a command's do and dump policies, or NULL (-ENOMEM: err). */
static const struct nla_policy *qkd_compat_union(u8 cmd, unsigned int *maxattr)
{
	const struct genl_split_ops *d = qkd_compat_dos[cmd], *u = qkd_compat_dumps[cmd];
	struct nla_policy *p;
	unsigned int i;

	*maxattr = max(d->maxattr, u->maxattr);
	p = kcalloc(*maxattr + 1, sizeof(*p), GFP_KERNEL);
	if (!p)
		return NULL;
	/* memcpy(): 6.1's struct nla_policy has const members */
	for (i = 0; i <= *maxattr; i++) {
		if (i <= d->maxattr && d->policy[i].type != NLA_UNSPEC)
			memcpy(&p[i], &d->policy[i], sizeof(p[i]));
		else if (i <= u->maxattr && u->policy[i].type != NLA_UNSPEC)
			memcpy(&p[i], &u->policy[i], sizeof(p[i]));
	}
	qkd_compat_unions[cmd] = p;
	return p;
}

static void qkd_compat_genl_ops_free(void)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(qkd_compat_unions); i++)
		kfree(qkd_compat_unions[i]);
}

int __init qkd_compat_genl_ops_init(void)
{
	unsigned int i, j, n = 0;

	for (i = 0; i < ARRAY_SIZE(qkd_nl_ops); i++) {
		const struct genl_split_ops *op = &qkd_nl_ops[i];
		struct genl_ops *o = NULL;

		for (j = 0; j < n; j++)
			if (qkd_compat_ops[j].cmd == op->cmd)
				o = &qkd_compat_ops[j];
		if (!o) {
			o = &qkd_compat_ops[n++];
			o->cmd = op->cmd;
			o->flags = op->flags & (GENL_ADMIN_PERM | GENL_UNS_ADMIN_PERM);
		}
		if (op->flags & GENL_CMD_CAP_DO) {
			o->doit = op->doit;
			qkd_compat_dos[op->cmd] = op;
		} else {
			o->dumpit = op->dumpit;
			o->start = qkd_compat_dump_start;
			qkd_compat_dumps[op->cmd] = op;
		}
	}
	for (j = 0; j < n; j++) {
		struct genl_ops *o = &qkd_compat_ops[j];
		const struct genl_split_ops *d = qkd_compat_dos[o->cmd];
		const struct genl_split_ops *u = qkd_compat_dumps[o->cmd];

		if (d && u && d->maxattr && u->maxattr && d->policy != u->policy) {
			o->policy = qkd_compat_union(o->cmd, &o->maxattr);
			if (!o->policy) {
				qkd_compat_genl_ops_free();
				return -ENOMEM;
			}
		} else if (d && d->maxattr) {
			o->policy = d->policy;
			o->maxattr = d->maxattr;
		} else if (u && u->maxattr) {
			o->policy = u->policy;
			o->maxattr = u->maxattr;
		}
	}
	qkd_genl_family.ops = qkd_compat_ops;
	qkd_genl_family.n_ops = n;
	qkd_genl_family.pre_doit = qkd_compat_pre_doit;
	return 0;
}
#else
static void qkd_compat_genl_ops_free(void)
{
}
#endif

/*
 * Subscribed to the store's events before the family exists, so that every
 * event a request causes is sent; unsubscribed after the family is gone,
 * when no request is in flight any more.
 */
int __init qkd_genl_init(void)
{
	int err = qkd_compat_genl_ops_init();

	if (err)
		return err;
	err = qkd_store_register_notifier(&qkd_store_nb);
	if (err) {
		qkd_compat_genl_ops_free();
		return err;
	}
	err = genl_register_family(&qkd_genl_family);
	if (err) {
		qkd_store_unregister_notifier(&qkd_store_nb);
		qkd_compat_genl_ops_free();
	}
	return err;
}

void qkd_genl_exit(void)
{
	genl_unregister_family(&qkd_genl_family);
	qkd_store_unregister_notifier(&qkd_store_nb);
	qkd_compat_genl_ops_free();
}
