// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd: generic netlink transport on libnl-genl-3.
 *
 * libnl 3.7 has no helper for extended ACKs, so NETLINK_EXT_ACK is set on
 * the socket and a custom error handler reads NLMSGERR_ATTR_MSG from the
 * TLVs that follow the struct nlmsgerr (and from NLMSG_DONE of a dump).
 * NETLINK_CAP_ACK keeps the kernel from echoing a rejected request (which
 * for KEY_ADD would carry key bytes) back in the error message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/handlers.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include <qkd/nl.h>
#include <qkd/util.h>

#include "nl_priv.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif
#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

struct qkd_nl {
	struct nl_sock *sk;
	int family;
	int events_grp;
	int err;		/* positive errno of the last failure */
	char extack[256];
};

/*
 * Attribute policies for replies and events, one per attribute set of the
 * family (the command says which): integer sizes; the rest is checked by
 * the decoders. Unknown attributes (newer kernel) are ignored. A uint is 4
 * or 8 bytes; nests are parsed by their decoders.
 */
#define UINT_POL	{ .minlen = 4, .maxlen = 8 }

static struct nla_policy link_policy[QKD_A_LINK_MAX + 1] = {
	[QKD_A_LINK_ID]			= { .type = NLA_U32 },
	[QKD_A_LINK_NAME]		= { .type = NLA_STRING },
	[QKD_A_LINK_PEER]		= { .type = NLA_STRING },
	[QKD_A_LINK_ROLE]		= { .type = NLA_U8 },
	[QKD_A_LINK_STATE]		= { .type = NLA_U8 },
	[QKD_A_LINK_STREAMS]		= { .type = NLA_U32 },
	[QKD_A_LINK_STATS]		= { .type = NLA_NESTED },
};

static struct nla_policy stream_policy[QKD_A_STREAM_MAX + 1] = {
	[QKD_A_STREAM_ID]		= { .minlen = QKD_STREAM_ID_LEN },
	[QKD_A_STREAM_LINK_ID]		= { .type = NLA_U32 },
	[QKD_A_STREAM_LINK_NAME]	= { .type = NLA_STRING },
	[QKD_A_STREAM_KEY_SIZE]		= { .type = NLA_U32 },
	[QKD_A_STREAM_MAX_KEYS]		= { .type = NLA_U32 },
	[QKD_A_STREAM_LOW_WATER]	= { .type = NLA_U32 },
	[QKD_A_STREAM_STORED_KEYS]	= { .type = NLA_U32 },
	[QKD_A_STREAM_NEXT_INDEX]	= { .type = NLA_U64 },
	[QKD_A_STREAM_CONSUMER]		= { .type = NLA_U8 },
	[QKD_A_STREAM_STATS]		= { .type = NLA_NESTED },
};

static struct nla_policy keys_policy[QKD_A_KEYS_MAX + 1] = {
	[QKD_A_KEYS_STREAM_ID]		= { .minlen = QKD_STREAM_ID_LEN },
	[QKD_A_KEYS_LINK_ID]		= { .type = NLA_U32 },
	[QKD_A_KEYS_FIRST_INDEX]	= { .type = NLA_U64 },
	[QKD_A_KEYS_COUNT]		= { .type = NLA_U32 },
	[QKD_A_KEYS_STORED_KEYS]	= { .type = NLA_U32 },
};

static struct nla_policy status_policy[QKD_A_STATUS_MAX + 1] = {
	[QKD_A_STATUS_ABI_VERSION]	= { .type = NLA_U32 },
	[QKD_A_STATUS_LINKS]		= { .type = NLA_U32 },
	[QKD_A_STATUS_STREAMS]		= { .type = NLA_U32 },
	[QKD_A_STATUS_MAX_KEYS]		= UINT_POL,
	[QKD_A_STATUS_MAX_BYTES]	= UINT_POL,
	[QKD_A_STATUS_FEATURES]		= UINT_POL,
	[QKD_A_STATUS_STATS]		= { .type = NLA_NESTED },
};

static struct nla_policy sa_policy[QKD_A_SA_MAX + 1] = {
	[QKD_A_SA_STREAM_ID]		= { .minlen = QKD_STREAM_ID_LEN },
	[QKD_A_SA_LINK_ID]		= { .type = NLA_U32 },
	[QKD_A_SA_LOCAL_IPV4]		= { .type = NLA_U32 },
	[QKD_A_SA_LOCAL_IPV6]		= { .minlen = 16 },
	[QKD_A_SA_REMOTE_IPV4]		= { .type = NLA_U32 },
	[QKD_A_SA_REMOTE_IPV6]		= { .minlen = 16 },
	[QKD_A_SA_MODE]			= { .type = NLA_U8 },
	[QKD_A_SA_ALG]			= { .type = NLA_U8 },
	[QKD_A_SA_KEY_BITS]		= { .type = NLA_U32 },
	[QKD_A_SA_DIR]			= { .type = NLA_U8 },
	[QKD_A_SA_REQID]		= { .type = NLA_U32 },
	[QKD_A_SA_IF_ID]		= { .type = NLA_U32 },
	[QKD_A_SA_MARK]			= { .type = NLA_U32 },
	[QKD_A_SA_MARK_MASK]		= { .type = NLA_U32 },
	[QKD_A_SA_REKEY_SECONDS]	= { .type = NLA_U32 },
	[QKD_A_SA_REKEY_BYTES]		= { .type = NLA_U64 },
	[QKD_A_SA_REKEY_PACKETS]	= { .type = NLA_U64 },
	[QKD_A_SA_FIRST_INDEX]		= { .type = NLA_U64 },
	[QKD_A_SA_POLICY]		= { .type = NLA_NESTED },
	[QKD_A_SA_STATE]		= { .type = NLA_U8 },
	[QKD_A_SA_REASON]		= { .type = NLA_U8 },
	[QKD_A_SA_REKEYS]		= UINT_POL,
	[QKD_A_SA_REKEY_FAILURES]	= UINT_POL,
	[QKD_A_SA_OUT]			= { .type = NLA_NESTED },
	[QKD_A_SA_IN]			= { .type = NLA_NESTED },
	[QKD_A_SA_GEN]			= { .type = NLA_NESTED },
};

static const char *const link_names[QKD_A_LINK_MAX + 1] = {
	[QKD_A_LINK_ID] = "link-id",
	[QKD_A_LINK_NAME] = "link-name",
	[QKD_A_LINK_PEER] = "link-peer",
	[QKD_A_LINK_ROLE] = "link-role",
	[QKD_A_LINK_STATE] = "link-state",
	[QKD_A_LINK_STREAMS] = "link-streams",
	[QKD_A_LINK_STATS] = "link-stats",
};

static const char *const stream_names[QKD_A_STREAM_MAX + 1] = {
	[QKD_A_STREAM_PAD] = "stream-pad",
	[QKD_A_STREAM_ID] = "stream-id",
	[QKD_A_STREAM_LINK_ID] = "stream-link-id",
	[QKD_A_STREAM_LINK_NAME] = "stream-link-name",
	[QKD_A_STREAM_KEY_SIZE] = "stream-key-size",
	[QKD_A_STREAM_MAX_KEYS] = "stream-max-keys",
	[QKD_A_STREAM_LOW_WATER] = "stream-low-water",
	[QKD_A_STREAM_STORED_KEYS] = "stream-stored-keys",
	[QKD_A_STREAM_NEXT_INDEX] = "stream-next-index",
	[QKD_A_STREAM_CONSUMER] = "stream-consumer",
	[QKD_A_STREAM_STATS] = "stream-stats",
};

static const char *const keys_names[QKD_A_KEYS_MAX + 1] = {
	[QKD_A_KEYS_PAD] = "keys-pad",
	[QKD_A_KEYS_STREAM_ID] = "keys-stream-id",
	[QKD_A_KEYS_LINK_ID] = "keys-link-id",
	[QKD_A_KEYS_FIRST_INDEX] = "keys-first-index",
	[QKD_A_KEYS_DATA] = "keys-data",
	[QKD_A_KEYS_COUNT] = "keys-count",
	[QKD_A_KEYS_STORED_KEYS] = "keys-stored-keys",
};

static const char *const status_names[QKD_A_STATUS_MAX + 1] = {
	[QKD_A_STATUS_ABI_VERSION] = "status-abi-version",
	[QKD_A_STATUS_LINKS] = "status-links",
	[QKD_A_STATUS_STREAMS] = "status-streams",
	[QKD_A_STATUS_MAX_KEYS] = "status-max-keys",
	[QKD_A_STATUS_MAX_BYTES] = "status-max-bytes",
	[QKD_A_STATUS_FEATURES] = "status-features",
	[QKD_A_STATUS_STATS] = "status-stats",
};

static const char *const sa_names[QKD_A_SA_MAX + 1] = {
	[QKD_A_SA_PAD] = "sa-pad",
	[QKD_A_SA_STREAM_ID] = "sa-stream-id",
	[QKD_A_SA_LINK_ID] = "sa-link-id",
	[QKD_A_SA_LOCAL_IPV4] = "sa-local-ipv4",
	[QKD_A_SA_LOCAL_IPV6] = "sa-local-ipv6",
	[QKD_A_SA_REMOTE_IPV4] = "sa-remote-ipv4",
	[QKD_A_SA_REMOTE_IPV6] = "sa-remote-ipv6",
	[QKD_A_SA_MODE] = "sa-mode",
	[QKD_A_SA_ALG] = "sa-alg",
	[QKD_A_SA_KEY_BITS] = "sa-key-bits",
	[QKD_A_SA_DIR] = "sa-dir",
	[QKD_A_SA_REQID] = "sa-reqid",
	[QKD_A_SA_IF_ID] = "sa-if-id",
	[QKD_A_SA_MARK] = "sa-mark",
	[QKD_A_SA_MARK_MASK] = "sa-mark-mask",
	[QKD_A_SA_REKEY_SECONDS] = "sa-rekey-seconds",
	[QKD_A_SA_REKEY_BYTES] = "sa-rekey-bytes",
	[QKD_A_SA_REKEY_PACKETS] = "sa-rekey-packets",
	[QKD_A_SA_FIRST_INDEX] = "sa-first-index",
	[QKD_A_SA_POLICY] = "sa-policy",
	[QKD_A_SA_STATE] = "sa-state",
	[QKD_A_SA_REASON] = "sa-reason",
	[QKD_A_SA_REKEYS] = "sa-rekeys",
	[QKD_A_SA_REKEY_FAILURES] = "sa-rekey-failures",
	[QKD_A_SA_OUT] = "sa-out",
	[QKD_A_SA_IN] = "sa-in",
	[QKD_A_SA_GEN] = "sa-gen",
	[QKD_A_SA_REMOVE_PROTECTION] = "sa-remove-protection",
	[QKD_A_SA_FORCE] = "sa-force",
};

/* The attribute set of each command. */
struct attr_set {
	int maxattr;
	struct nla_policy *policy;
	const char *const *names;
};

static const struct attr_set sets[] = {
	{ QKD_A_LINK_MAX, link_policy, link_names },
	{ QKD_A_STREAM_MAX, stream_policy, stream_names },
	{ QKD_A_KEYS_MAX, keys_policy, keys_names },
	{ QKD_A_STATUS_MAX, status_policy, status_names },
	{ QKD_A_SA_MAX, sa_policy, sa_names },
};

enum { SET_LINK, SET_STREAM, SET_KEYS, SET_STATUS, SET_SA };

static const struct attr_set *cmd_set(uint8_t cmd)
{
	switch (cmd) {
	case QKD_CMD_LINK_NEW:
	case QKD_CMD_LINK_DEL:
	case QKD_CMD_LINK_GET:
	case QKD_CMD_LINK_SET:
	case QKD_CMD_LINK_STATE_NTF:
	case QKD_CMD_LINK_DEL_NTF:
		return &sets[SET_LINK];
	case QKD_CMD_STREAM_NEW:
	case QKD_CMD_STREAM_DEL:
	case QKD_CMD_STREAM_GET:
	case QKD_CMD_STREAM_SET:
	case QKD_CMD_STREAM_LOW_NTF:
	case QKD_CMD_STREAM_EMPTY_NTF:
	case QKD_CMD_STREAM_DEL_NTF:
		return &sets[SET_STREAM];
	case QKD_CMD_KEY_ADD:
	case QKD_CMD_KEY_FLUSH:
	case QKD_CMD_KEYS_ADDED_NTF:
		return &sets[SET_KEYS];
	case QKD_CMD_STATUS_GET:
		return &sets[SET_STATUS];
	case QKD_CMD_SA_NEW:
	case QKD_CMD_SA_DEL:
	case QKD_CMD_SA_GET:
	case QKD_CMD_SA_REKEY_NTF:
	case QKD_CMD_SA_STATE_NTF:
	case QKD_CMD_SA_REKEY:
		return &sets[SET_SA];
	default:
		return NULL;
	}
}

/*
 * The attributes of a message of the family into @tb, indexed by its
 * command's set; -EBADMSG if malformed or of no known command.
 */
static int parse_msg(struct nlmsghdr *nlh, struct nlattr **tb, uint8_t *cmd)
{
	const struct genlmsghdr *gnlh = nlmsg_data(nlh);
	const struct attr_set *set = cmd_set(gnlh->cmd);

	memset(tb, 0, sizeof(*tb) * (QKD_NL_TB_MAX + 1));
	*cmd = gnlh->cmd;
	if (!set || genlmsg_parse(nlh, 0, tb, set->maxattr, set->policy) < 0)
		return -EBADMSG;
	return 0;
}

/* libnl error codes and the errnos they stand for. */
static const struct {
	int nle;
	int err;
} nle_errno[] = {
	{ NLE_INTR, EINTR },
	{ NLE_AGAIN, EAGAIN },
	{ NLE_NOMEM, ENOMEM },
	{ NLE_EXIST, EEXIST },
	{ NLE_INVAL, EINVAL },
	{ NLE_RANGE, ERANGE },
	{ NLE_MSGSIZE, EMSGSIZE },
	{ NLE_OPNOTSUPP, EOPNOTSUPP },
	{ NLE_AF_NOSUPPORT, EAFNOSUPPORT },
	{ NLE_OBJ_NOTFOUND, ENOENT },
	{ NLE_NOATTR, ENOENT },
	{ NLE_MISSING_ATTR, EINVAL },
	{ NLE_AF_MISMATCH, EAFNOSUPPORT },
	{ NLE_SEQ_MISMATCH, EPROTO },
	{ NLE_MSG_OVERFLOW, EMSGSIZE },
	{ NLE_MSG_TRUNC, EMSGSIZE },
	{ NLE_NOADDR, EADDRNOTAVAIL },
	{ NLE_SRCRT_NOSUPPORT, EOPNOTSUPP },
	{ NLE_MSG_TOOSHORT, EPROTO },
	{ NLE_MSGTYPE_NOSUPPORT, EOPNOTSUPP },
	{ NLE_OBJ_MISMATCH, EINVAL },
	{ NLE_NOCACHE, ENOENT },
	{ NLE_BUSY, EBUSY },
	{ NLE_PROTO_MISMATCH, EPROTONOSUPPORT },
	{ NLE_NOACCESS, EACCES },
	{ NLE_PERM, EPERM },
	{ NLE_PKTLOC_FILE, ENOENT },
	{ NLE_PARSE_ERR, EINVAL },
	{ NLE_NODEV, ENODEV },
	{ NLE_IMMUTABLE, EPERM },
	{ NLE_DUMP_INTR, EINTR },
	{ NLE_ATTRSIZE, EINVAL },
	{ NLE_BAD_SOCK, EBADF },
};

/* A libnl error code (either sign) as a positive errno; EIO if unknown. */
int qkd_nlerr_to_errno(int e)
{
	size_t i;

	if (e < 0)
		e = -e;
	if (!e)
		return 0;
	for (i = 0; i < ARRAY_SIZE(nle_errno); i++)
		if (nle_errno[i].nle == e)
			return nle_errno[i].err;
	return EIO;
}

int qkd_nl_family(const struct qkd_nl *nl)
{
	return nl->family;
}

int qkd_nl_fd(const struct qkd_nl *nl)
{
	return nl_socket_get_fd(nl->sk);
}

const char *qkd_nl_extack(const struct qkd_nl *nl)
{
	return nl->extack[0] ? nl->extack : NULL;
}

int qkd_nl_errno(const struct qkd_nl *nl)
{
	return nl->err;
}

int qkd_nl_fail(struct qkd_nl *nl, int err)
{
	if (err < 0)
		err = -err;
	nl->err = err;
	if (!err)
		nl->extack[0] = '\0';
	return -err;
}

/* A connected generic netlink socket with our options, in a new handle. */
static int nl_alloc(struct qkd_nl **out)
{
	struct qkd_nl *nl;
	int one = 1, r, err;

	nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	nl->events_grp = -1;
	nl->sk = nl_socket_alloc();
	if (!nl->sk) {
		err = -ENOMEM;
		goto out_free;
	}
	r = genl_connect(nl->sk);
	if (r < 0) {
		err = -qkd_nlerr_to_errno(r);
		goto out_sock;
	}
	/* Best effort: an old kernel without them still works. */
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_EXT_ACK,
		   &one, sizeof(one));
	setsockopt(nl_socket_get_fd(nl->sk), SOL_NETLINK, NETLINK_CAP_ACK,
		   &one, sizeof(one));
	nl_socket_enable_msg_peek(nl->sk);
	nl_socket_set_msg_buf_size(nl->sk, 65536);
	*out = nl;
	return 0;

out_sock:
	nl_socket_free(nl->sk);
out_free:
	free(nl);
	return err;
}

int qkd_nl_open(struct qkd_nl **out)
{
	struct qkd_nl *nl;
	int r;

	r = nl_alloc(&nl);
	if (r)
		return r;
	r = genl_ctrl_resolve(nl->sk, QKD_FAMILY_NAME);
	if (r < 0) {
		qkd_nl_close(nl);
		return r == -NLE_OBJ_NOTFOUND ? -ENOENT : -qkd_nlerr_to_errno(r);
	}
	nl->family = r;
	*out = nl;
	return 0;
}

int qkd_nl_open_peer(struct qkd_nl **out, uint32_t port, int family)
{
	int r = nl_alloc(out);

	if (r)
		return r;
	nl_socket_set_peer_port((*out)->sk, port);
	(*out)->family = family;
	return 0;
}

void qkd_nl_close(struct qkd_nl *nl)
{
	if (!nl)
		return;
	nl_socket_free(nl->sk);
	free(nl);
}

struct nl_msg *qkd_nl_msg_size(struct qkd_nl *nl, uint8_t cmd, int flags,
			       size_t size)
{
	struct nl_msg *msg = nlmsg_alloc_size(size);

	if (!msg)
		return NULL;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, nl->family, 0, flags,
			 cmd, QKD_FAMILY_VERSION)) {
		nlmsg_free(msg);
		return NULL;
	}
	return msg;
}

struct nl_msg *qkd_nl_msg(struct qkd_nl *nl, uint8_t cmd, int flags)
{
	return qkd_nl_msg_size(nl, cmd, flags, 4096);
}

/* Zero a message (it may carry key bytes) and free it. */
void qkd_nl_msg_free(struct nl_msg *msg)
{
	struct nlmsghdr *nlh;

	if (!msg)
		return;
	nlh = nlmsg_hdr(msg);
	explicit_bzero(nlh, nlh->nlmsg_len);
	nlmsg_free(msg);
}

#define REQ_ATTRS_MAX	16

struct req_ctx {
	struct qkd_nl *nl;
	qkd_nl_cb cb;
	void *arg;
	int err;	/* negative errno, or 0 */
	int done;
	/*
	 * A dump: its replies are held (copies, in order) until it ends, and
	 * @cb sees them only if no message carried NLM_F_DUMP_INTR (@intr).
	 */
	int dump;
	int intr;
	struct nl_msg **held;
	size_t n_held, cap_held;
	/*
	 * Top-level attributes of the request, to name the one an extended
	 * ACK points at (NLMSGERR_ATTR_OFFS is an offset into the request).
	 */
	uint8_t cmd;
	int nattrs;
	struct {
		uint32_t off;
		uint16_t type;
	} attrs[REQ_ATTRS_MAX];
};

const char *qkd_attr_name(uint8_t cmd, unsigned int type)
{
	const struct attr_set *set = cmd_set(cmd);

	if (set && type <= (unsigned int)set->maxattr && set->names[type])
		return set->names[type];
	return "?";
}

static void record_attrs(struct req_ctx *ctx, struct nl_msg *msg)
{
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *nla;
	int rem;

	ctx->cmd = ((struct genlmsghdr *)nlmsg_data(nlh))->cmd;
	nlmsg_for_each_attr(nla, nlh, GENL_HDRLEN, rem) {
		if (ctx->nattrs >= REQ_ATTRS_MAX)
			break;
		ctx->attrs[ctx->nattrs].off =
			(uint32_t)((char *)nla - (char *)nlh);
		ctx->attrs[ctx->nattrs].type = (uint16_t)nla_type(nla);
		ctx->nattrs++;
	}
}

static const char *attr_at(const struct req_ctx *ctx, uint32_t off)
{
	int i;

	for (i = 0; i < ctx->nattrs; i++)
		if (ctx->attrs[i].off == off)
			return qkd_attr_name(ctx->cmd, ctx->attrs[i].type);
	return NULL;
}

/*
 * The extended ACK in the TLVs at @tlvs (@len bytes): the message, and the
 * attribute it points at (by offset into the request) or names as missing.
 */
static void read_extack(struct req_ctx *ctx, void *tlvs, int len)
{
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	struct qkd_nl *nl = ctx->nl;
	const char *s = NULL, *attr = NULL, *what = NULL;
	size_t n = 0;

	if (len <= 0)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, tlvs, len, NULL) < 0)
		return;
	if (tb[NLMSGERR_ATTR_MSG] && nla_len(tb[NLMSGERR_ATTR_MSG]) > 0) {
		s = nla_data(tb[NLMSGERR_ATTR_MSG]);
		n = strnlen(s, (size_t)nla_len(tb[NLMSGERR_ATTR_MSG]));
	}
	if (tb[NLMSGERR_ATTR_OFFS] && nla_len(tb[NLMSGERR_ATTR_OFFS]) >= 4) {
		attr = attr_at(ctx, nla_get_u32(tb[NLMSGERR_ATTR_OFFS]));
		what = n ? "attribute" : "bad attribute";
	}
	if (tb[NLMSGERR_ATTR_MISS_TYPE] &&
	    nla_len(tb[NLMSGERR_ATTR_MISS_TYPE]) >= 4 && !attr) {
		attr = qkd_attr_name(ctx->cmd, nla_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]));
		what = "missing attribute";
	}
	if (n > 200)
		n = 200;
	if (attr && n)
		snprintf(nl->extack, sizeof(nl->extack), "%.*s (%s %s)",
			 (int)n, s, what, attr);
	else if (attr)
		snprintf(nl->extack, sizeof(nl->extack), "%s %s", what, attr);
	else if (n)
		snprintf(nl->extack, sizeof(nl->extack), "%.*s", (int)n, s);
}

static int err_cb(struct sockaddr_nl *nla, struct nlmsgerr *e, void *arg)
{
	struct req_ctx *ctx = arg;
	struct nlmsghdr *nlh = (void *)((char *)e - NLMSG_HDRLEN);
	int off, len;

	(void)nla;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		off = (int)sizeof(*e);
		if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
			off += (int)e->msg.nlmsg_len - (int)NLMSG_HDRLEN;
		off = NLMSG_ALIGN(off);
		len = (int)nlh->nlmsg_len - NLMSG_HDRLEN - off;
		if (off > 0 && len > 0)
			read_extack(ctx, (char *)e + off, len);
	}
	if (!ctx->err)
		ctx->err = e->error < 0 ? e->error : -EPROTO;
	ctx->done = 1;
	return NL_STOP;
}

static int ack_cb(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;

	(void)msg;
	ctx->done = 1;
	return NL_STOP;
}

static int finish_cb(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	int e, len;

	/*
	 * A dump ends with NLMSG_DONE carrying its error (int) and, with
	 * NLM_F_ACK_TLVS, the extended ACK after it.
	 */
	len = (int)nlh->nlmsg_len - NLMSG_HDRLEN;
	if (len >= (int)sizeof(int)) {
		memcpy(&e, nlmsg_data(nlh), sizeof(e));
		if (e < 0 && !ctx->err) {
			ctx->err = e;
			if (nlh->nlmsg_flags & NLM_F_ACK_TLVS)
				read_extack(ctx,
					    (char *)nlmsg_data(nlh) +
					    NLMSG_ALIGN(sizeof(int)),
					    len - NLMSG_ALIGN(sizeof(int)));
		}
	}
	ctx->done = 1;
	return NL_STOP;
}

static int valid_cb(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[QKD_NL_TB_MAX + 1];
	uint8_t cmd;
	int r;

	if (ctx->err)
		return NL_SKIP;		/* drain the rest of a dump */
	if (parse_msg(nlh, tb, &cmd)) {
		ctx->err = -EBADMSG;
		return NL_SKIP;
	}
	if (ctx->dump) {
		struct nl_msg *copy;

		if (ctx->n_held == ctx->cap_held) {
			size_t cap = ctx->cap_held ? 2 * ctx->cap_held : 64;
			struct nl_msg **h = realloc(ctx->held, cap * sizeof(*h));

			if (!h) {
				ctx->err = -ENOMEM;
				return NL_SKIP;
			}
			ctx->held = h;
			ctx->cap_held = cap;
		}
		copy = nlmsg_convert(nlh);
		if (!copy) {
			ctx->err = -ENOMEM;
			return NL_SKIP;
		}
		ctx->held[ctx->n_held++] = copy;
		return NL_OK;
	}
	if (ctx->cb) {
		r = ctx->cb(cmd, tb, ctx->arg);
		if (r < 0)
			ctx->err = r;
	}
	return NL_OK;
}

/*
 * A message of the dump carried NLM_F_DUMP_INTR (an object or NLMSG_DONE):
 * noted, and the message is processed as usual (libnl would otherwise
 * only say so in nl_recvmsgs()'s return once the dump is read).
 */
static int intr_cb(struct nl_msg *msg, void *arg)
{
	struct req_ctx *ctx = arg;

	(void)msg;
	ctx->intr = 1;
	return NL_OK;
}

static void drop_held(struct req_ctx *ctx)
{
	size_t i;

	for (i = 0; i < ctx->n_held; i++)
		nlmsg_free(ctx->held[i]);
	ctx->n_held = 0;
}

/* A whole dump, shown: @cb for each message held, in order. */
static int replay_held(struct req_ctx *ctx)
{
	struct nlattr *tb[QKD_NL_TB_MAX + 1];
	size_t i;
	uint8_t cmd;
	int r;

	for (i = 0; i < ctx->n_held; i++) {
		if (parse_msg(nlmsg_hdr(ctx->held[i]), tb, &cmd))
			return -EBADMSG;
		if (ctx->cb) {
			r = ctx->cb(cmd, tb, ctx->arg);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static struct nl_cb *make_cb(struct req_ctx *ctx)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);

	if (!cb)
		return NULL;
	nl_cb_err(cb, NL_CB_CUSTOM, err_cb, ctx);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, ack_cb, ctx);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, finish_cb, ctx);
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, valid_cb, ctx);
	nl_cb_set(cb, NL_CB_DUMP_INTR, NL_CB_CUSTOM, intr_cb, ctx);
	return cb;
}

/* Send @msg (freed) and read its answer into @ctx: 0 or a negative errno. */
static int request_once(struct qkd_nl *nl, struct nl_msg *msg,
			struct req_ctx *ctx)
{
	struct nl_cb *nlcb;
	int r;

	ctx->err = 0;
	ctx->done = 0;
	ctx->intr = 0;
	ctx->nattrs = 0;
	nlcb = make_cb(ctx);
	if (!nlcb) {
		qkd_nl_msg_free(msg);
		return -ENOMEM;
	}
	record_attrs(ctx, msg);
	/* Adds NLM_F_REQUEST | NLM_F_ACK, the port and a sequence number. */
	r = nl_send_auto(nl->sk, msg);
	qkd_nl_msg_free(msg);
	if (r < 0) {
		nl_cb_put(nlcb);
		return -qkd_nlerr_to_errno(r);
	}
	while (!ctx->done) {
		r = nl_recvmsgs(nl->sk, nlcb);
		if (r == -NLE_DUMP_INTR)
			ctx->intr = 1;	/* should intr_cb() not have run */
		if (r < 0 && !ctx->done) {
			if (r == -NLE_INTR || r == -NLE_AGAIN)
				continue;
			ctx->err = -qkd_nlerr_to_errno(r);
			break;
		}
	}
	nl_cb_put(nlcb);
	return ctx->err;
}

int qkd_nl_request(struct qkd_nl *nl, struct nl_msg *msg, qkd_nl_cb cb,
		   void *arg)
{
	struct req_ctx ctx = { .nl = nl, .cb = cb, .arg = arg };
	struct nl_msg *again = NULL;
	int tries = 0, err;

	nl->err = 0;
	nl->extack[0] = '\0';
	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	ctx.dump = (nlmsg_hdr(msg)->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
	if (ctx.dump) {
		/* Still without port and sequence number: each send gets its own. */
		again = nlmsg_convert(nlmsg_hdr(msg));
		if (!again) {
			qkd_nl_msg_free(msg);
			return qkd_nl_fail(nl, ENOMEM);
		}
	}
	for (;;) {
		err = request_once(nl, msg, &ctx);
		tries++;
		if (err || !ctx.intr)
			break;
		/* Interrupted: what it carried may miss or repeat objects. */
		drop_held(&ctx);
		if (tries == QKD_NL_DUMP_TRIES) {
			snprintf(nl->extack, sizeof(nl->extack),
				 "the dump was interrupted by changes %d times in a row (NLM_F_DUMP_INTR); nothing shown, try again",
				 tries);
			err = -EAGAIN;
			break;
		}
		msg = nlmsg_convert(nlmsg_hdr(again));
		if (!msg) {
			err = -ENOMEM;
			break;
		}
	}
	if (!err && ctx.dump)
		err = replay_held(&ctx);
	drop_held(&ctx);
	free(ctx.held);
	if (again)
		nlmsg_free(again);
	if (err)
		return qkd_nl_fail(nl, err);
	return 0;
}

int qkd_nl_join_events(struct qkd_nl *nl)
{
	int r;

	nl->err = 0;
	nl->extack[0] = '\0';
	if (nl->events_grp < 0) {
		r = genl_ctrl_resolve_grp(nl->sk, QKD_FAMILY_NAME,
					  QKD_MCGRP_EVENTS);
		if (r < 0)
			return qkd_nl_fail(nl, r == -NLE_OBJ_NOTFOUND ? ENOENT :
				    qkd_nlerr_to_errno(r));
		nl->events_grp = r;
	}
	r = nl_socket_add_membership(nl->sk, nl->events_grp);
	if (r < 0)
		return qkd_nl_fail(nl, qkd_nlerr_to_errno(r));
	/* Notifications carry sequence number 0. */
	nl_socket_disable_seq_check(nl->sk);
	return 0;
}

struct ev_ctx {
	qkd_nl_cb cb;
	void *arg;
	int err;
};

static int ev_valid_cb(struct nl_msg *msg, void *arg)
{
	struct ev_ctx *ctx = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct nlattr *tb[QKD_NL_TB_MAX + 1];
	uint8_t cmd;
	int r;

	if (parse_msg(nlh, tb, &cmd))
		return NL_SKIP;
	r = ctx->cb(cmd, tb, ctx->arg);
	if (r < 0) {
		ctx->err = r;
		return NL_STOP;
	}
	return NL_OK;
}

static int no_seq_check(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_OK;
}

int qkd_nl_recv_events(struct qkd_nl *nl, qkd_nl_cb cb, void *arg)
{
	struct ev_ctx ctx = { .cb = cb, .arg = arg };
	struct nl_cb *nlcb = nl_cb_alloc(NL_CB_DEFAULT);
	int r;

	if (!nlcb)
		return qkd_nl_fail(nl, ENOMEM);
	nl_cb_set(nlcb, NL_CB_VALID, NL_CB_CUSTOM, ev_valid_cb, &ctx);
	/* Notifications carry sequence number 0. */
	nl_cb_set(nlcb, NL_CB_SEQ_CHECK, NL_CB_CUSTOM, no_seq_check, NULL);
	r = nl_recvmsgs(nl->sk, nlcb);
	nl_cb_put(nlcb);
	if (ctx.err)
		return qkd_nl_fail(nl, ctx.err);
	if (r < 0)
		return qkd_nl_fail(nl, qkd_nlerr_to_errno(r));
	return 0;
}
