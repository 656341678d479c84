// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd: typed requests of the "qkd" family and decoders of its replies
 * and notifications.
 */
#include <errno.h>
#include <string.h>

#include <netlink/attr.h>
#include <netlink/genl/genl.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <qkd/nl.h>

#include "nl_priv.h"

#define HAVE_BIT(a)	(1ULL << (a))

static uint32_t get_u32(struct nlattr **tb, int a, uint64_t *have)
{
	if (!tb[a])
		return 0;
	*have |= HAVE_BIT(a);
	return nla_get_u32(tb[a]);
}

static uint64_t get_u64(struct nlattr **tb, int a, uint64_t *have)
{
	if (!tb[a])
		return 0;
	*have |= HAVE_BIT(a);
	return nla_get_u64(tb[a]);
}

static uint8_t get_u8(struct nlattr **tb, int a, uint64_t *have)
{
	if (!tb[a])
		return 0;
	*have |= HAVE_BIT(a);
	return nla_get_u8(tb[a]);
}

static int get_str(struct nlattr **tb, int a, char *out, size_t size,
		   uint64_t *have)
{
	size_t n;

	out[0] = '\0';
	if (!tb[a])
		return 0;
	n = strnlen(nla_data(tb[a]), (size_t)nla_len(tb[a]));
	if (n >= size)
		return -EINVAL;
	memcpy(out, nla_data(tb[a]), n);
	out[n] = '\0';
	*have |= HAVE_BIT(a);
	return 0;
}

static int get_id(struct nlattr **tb, int a, uint8_t *out, uint64_t *have)
{
	if (!tb[a])
		return 0;
	if (nla_len(tb[a]) != QKD_STREAM_ID_LEN)
		return -EINVAL;
	memcpy(out, nla_data(tb[a]), QKD_STREAM_ID_LEN);
	*have |= HAVE_BIT(a);
	return 0;
}

/* A uint attribute: 4 or 8 bytes (the kernel sends the shortest). */
uint64_t qkd_nla_get_uint(const struct nlattr *a)
{
	uint32_t v32;
	uint64_t v64;

	if (nla_len(a) == (int)sizeof(v64)) {
		memcpy(&v64, nla_data(a), sizeof(v64));
		return v64;
	}
	memcpy(&v32, nla_data(a), sizeof(v32));
	return v32;
}

/* The counters nest of type @a (enum qkd_a_stats inside). */
static int get_stats(struct nlattr **tb, int a, struct qkd_stats *s,
		     uint64_t *have)
{
	static struct nla_policy pol[QKD_A_STATS_MAX + 1] = {
		[QKD_A_STATS_KEYS_ADDED] = { .minlen = 4, .maxlen = 8 },
		[QKD_A_STATS_KEYS_DELIVERED] = { .minlen = 4, .maxlen = 8 },
		[QKD_A_STATS_KEYS_FLUSHED] = { .minlen = 4, .maxlen = 8 },
		[QKD_A_STATS_KEYS_STORED] = { .minlen = 4, .maxlen = 8 },
		[QKD_A_STATS_BYTES_STORED] = { .minlen = 4, .maxlen = 8 },
	};
	struct nlattr *st[QKD_A_STATS_MAX + 1];
	uint64_t *const field[QKD_A_STATS_MAX + 1] = {
		[QKD_A_STATS_KEYS_ADDED] = &s->keys_added,
		[QKD_A_STATS_KEYS_DELIVERED] = &s->keys_delivered,
		[QKD_A_STATS_KEYS_FLUSHED] = &s->keys_flushed,
		[QKD_A_STATS_KEYS_STORED] = &s->keys_stored,
		[QKD_A_STATS_BYTES_STORED] = &s->bytes_stored,
	};
	int i;

	memset(s, 0, sizeof(*s));
	if (!tb[a])
		return 0;
	if (nla_parse_nested(st, QKD_A_STATS_MAX, tb[a], pol) < 0)
		return -EINVAL;
	for (i = 1; i <= QKD_A_STATS_MAX; i++)
		if (st[i])
			*field[i] = qkd_nla_get_uint(st[i]);
	*have |= HAVE_BIT(a);
	return 0;
}

static uint64_t get_uint(struct nlattr **tb, int a, uint64_t *have)
{
	if (!tb[a])
		return 0;
	*have |= HAVE_BIT(a);
	return qkd_nla_get_uint(tb[a]);
}

int qkd_link_parse(struct nlattr **tb, struct qkd_link *out)
{
	memset(out, 0, sizeof(*out));
	if (!tb[QKD_A_LINK_ID])
		return -EINVAL;
	out->id = get_u32(tb, QKD_A_LINK_ID, &out->have);
	if (get_str(tb, QKD_A_LINK_NAME, out->name, sizeof(out->name),
		    &out->have) ||
	    get_str(tb, QKD_A_LINK_PEER, out->peer, sizeof(out->peer),
		    &out->have))
		return -EINVAL;
	out->role = get_u8(tb, QKD_A_LINK_ROLE, &out->have);
	out->state = get_u8(tb, QKD_A_LINK_STATE, &out->have);
	out->streams = get_u32(tb, QKD_A_LINK_STREAMS, &out->have);
	return get_stats(tb, QKD_A_LINK_STATS, &out->stats, &out->have);
}

int qkd_stream_parse(struct nlattr **tb, struct qkd_stream *out)
{
	memset(out, 0, sizeof(*out));
	if (!tb[QKD_A_STREAM_ID] ||
	    get_id(tb, QKD_A_STREAM_ID, out->id, &out->have))
		return -EINVAL;
	out->link_id = get_u32(tb, QKD_A_STREAM_LINK_ID, &out->have);
	out->key_size = get_u32(tb, QKD_A_STREAM_KEY_SIZE, &out->have);
	out->max_keys = get_u32(tb, QKD_A_STREAM_MAX_KEYS, &out->have);
	out->low_water = get_u32(tb, QKD_A_STREAM_LOW_WATER, &out->have);
	out->stored_keys = get_u32(tb, QKD_A_STREAM_STORED_KEYS, &out->have);
	out->next_index = get_u64(tb, QKD_A_STREAM_NEXT_INDEX, &out->have);
	out->consumer = get_u8(tb, QKD_A_STREAM_CONSUMER, &out->have);
	return get_stats(tb, QKD_A_STREAM_STATS, &out->stats, &out->have);
}

int qkd_status_parse(struct nlattr **tb, struct qkd_status *out)
{
	memset(out, 0, sizeof(*out));
	out->abi_version = get_u32(tb, QKD_A_STATUS_ABI_VERSION, &out->have);
	out->links = get_u32(tb, QKD_A_STATUS_LINKS, &out->have);
	out->streams = get_u32(tb, QKD_A_STATUS_STREAMS, &out->have);
	out->max_keys = get_uint(tb, QKD_A_STATUS_MAX_KEYS, &out->have);
	out->max_bytes = get_uint(tb, QKD_A_STATUS_MAX_BYTES, &out->have);
	out->features = get_uint(tb, QKD_A_STATUS_FEATURES, &out->have);
	return get_stats(tb, QKD_A_STATUS_STATS, &out->stats, &out->have);
}

/*
 * A notification: the fields are the same whatever its attribute set
 * (link, stream, keys; of the SA ones the stream and link), so @have has
 * the event's own bits (QKD_EV_*).
 */
int qkd_event_parse(uint8_t cmd, struct nlattr **tb, struct qkd_event *out)
{
	uint64_t h = 0;
	int id = 0, link = 0, name = 0, state = 0, first = 0, count = 0,
	    stored = 0, low = 0;

	memset(out, 0, sizeof(*out));
	out->cmd = cmd;
	switch (cmd) {
	case QKD_CMD_LINK_STATE_NTF:
	case QKD_CMD_LINK_DEL_NTF:
		link = QKD_A_LINK_ID;
		name = QKD_A_LINK_NAME;
		state = QKD_A_LINK_STATE;
		break;
	case QKD_CMD_STREAM_LOW_NTF:
	case QKD_CMD_STREAM_EMPTY_NTF:
	case QKD_CMD_STREAM_DEL_NTF:
		id = QKD_A_STREAM_ID;
		link = QKD_A_STREAM_LINK_ID;
		stored = QKD_A_STREAM_STORED_KEYS;
		low = QKD_A_STREAM_LOW_WATER;
		break;
	case QKD_CMD_KEYS_ADDED_NTF:
		id = QKD_A_KEYS_STREAM_ID;
		link = QKD_A_KEYS_LINK_ID;
		first = QKD_A_KEYS_FIRST_INDEX;
		count = QKD_A_KEYS_COUNT;
		stored = QKD_A_KEYS_STORED_KEYS;
		break;
	case QKD_CMD_SA_REKEY_NTF:
	case QKD_CMD_SA_STATE_NTF:
		id = QKD_A_SA_STREAM_ID;
		link = QKD_A_SA_LINK_ID;
		break;
	default:
		return 0;
	}
#define EV_GET(attr, bit, expr) do {			\
		if ((attr) && tb[attr]) {		\
			expr;				\
			out->have |= HAVE_BIT(bit);	\
		}					\
	} while (0)
	EV_GET(link, QKD_EV_LINK_ID, out->link_id = nla_get_u32(tb[link]));
	EV_GET(state, QKD_EV_LINK_STATE, out->state = nla_get_u8(tb[state]));
	EV_GET(first, QKD_EV_FIRST_INDEX, out->first_index = nla_get_u64(tb[first]));
	EV_GET(count, QKD_EV_COUNT, out->count = nla_get_u32(tb[count]));
	EV_GET(stored, QKD_EV_STORED_KEYS, out->stored_keys = nla_get_u32(tb[stored]));
	EV_GET(low, QKD_EV_LOW_WATER, out->low_water = nla_get_u32(tb[low]));
#undef EV_GET
	if (name && get_str(tb, name, out->link_name, sizeof(out->link_name), &h))
		return -EINVAL;
	if (h)
		out->have |= HAVE_BIT(QKD_EV_LINK_NAME);
	h = 0;
	if (id && get_id(tb, id, out->stream_id, &h))
		return -EINVAL;
	if (h)
		out->have |= HAVE_BIT(QKD_EV_STREAM_ID);
	return 0;
}

static const char *const role_names[] = {
	[QKD_LINK_ROLE_INITIATOR] = "initiator",
	[QKD_LINK_ROLE_RESPONDER] = "responder",
};

static const char *const state_names[] = {
	[QKD_LINK_STATE_DOWN] = "down",
	[QKD_LINK_STATE_UP] = "up",
	[QKD_LINK_STATE_EXHAUSTED] = "exhausted",
};

static const char *const event_names[] = {
	[QKD_CMD_LINK_STATE_NTF] = "link-state",
	[QKD_CMD_STREAM_LOW_NTF] = "stream-low",
	[QKD_CMD_STREAM_EMPTY_NTF] = "stream-empty",
	[QKD_CMD_KEYS_ADDED_NTF] = "keys-added",
	[QKD_CMD_LINK_DEL_NTF] = "link-del",
	[QKD_CMD_STREAM_DEL_NTF] = "stream-del",
	[QKD_CMD_SA_REKEY_NTF] = "sa-rekey",
	[QKD_CMD_SA_STATE_NTF] = "sa-state",
};

#define NAME_OF(tbl, v) \
	((v) < sizeof(tbl) / sizeof((tbl)[0]) && (tbl)[v] ? (tbl)[v] : "?")

const char *qkd_role_name(uint8_t role)
{
	return NAME_OF(role_names, role);
}

const char *qkd_state_name(uint8_t state)
{
	return NAME_OF(state_names, state);
}

const char *qkd_event_name(uint8_t cmd)
{
	return NAME_OF(event_names, cmd);
}

uint8_t qkd_role_parse(const char *s)
{
	if (!strcmp(s, "initiator"))
		return QKD_LINK_ROLE_INITIATOR;
	if (!strcmp(s, "responder"))
		return QKD_LINK_ROLE_RESPONDER;
	return 0;
}

uint8_t qkd_state_parse(const char *s)
{
	if (!strcmp(s, "up"))
		return QKD_LINK_STATE_UP;
	if (!strcmp(s, "down"))
		return QKD_LINK_STATE_DOWN;
	if (!strcmp(s, "exhausted"))
		return QKD_LINK_STATE_EXHAUSTED;
	return 0;
}

/* ---- requests --------------------------------------------------------- */

/* A link by id or name: the link's own attributes (@id_attr, @id_attr + 1). */
static int put_link_ref(struct nl_msg *msg, const struct qkd_link_ref *ref,
			int id_attr, int name_attr)
{
	if (ref->name)
		return nla_put_string(msg, name_attr, ref->name);
	return nla_put_u32(msg, id_attr, ref->id);
}

/* A message that could not be built: too long a name, most likely. */
static int built_fail(struct qkd_nl *nl, struct nl_msg *msg)
{
	qkd_nl_msg_free(msg);
	qkd_nl_fail(nl, 0);	/* forget the previous request's extack */
	return qkd_nl_fail(nl, EMSGSIZE);
}

static int link_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	(void)cmd;
	return arg ? qkd_link_parse(tb, arg) : 0;
}

static int stream_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	(void)cmd;
	return arg ? qkd_stream_parse(tb, arg) : 0;
}

int qkd_link_add(struct qkd_nl *nl, const char *name, uint8_t role,
		 uint32_t id, const char *peer, struct qkd_link *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_LINK_NEW, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (nla_put_string(msg, QKD_A_LINK_NAME, name) ||
	    nla_put_u8(msg, QKD_A_LINK_ROLE, role) ||
	    (id && nla_put_u32(msg, QKD_A_LINK_ID, id)) ||
	    (peer && nla_put_string(msg, QKD_A_LINK_PEER, peer)))
		return built_fail(nl, msg);
	return qkd_nl_request(nl, msg, link_cb, out);
}

int qkd_link_del(struct qkd_nl *nl, const struct qkd_link_ref *ref)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_LINK_DEL, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (put_link_ref(msg, ref, QKD_A_LINK_ID, QKD_A_LINK_NAME))
		return built_fail(nl, msg);
	return qkd_nl_request(nl, msg, NULL, NULL);
}

int qkd_link_set_state(struct qkd_nl *nl, const struct qkd_link_ref *ref,
		       uint8_t state)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_LINK_SET, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (put_link_ref(msg, ref, QKD_A_LINK_ID, QKD_A_LINK_NAME) ||
	    nla_put_u8(msg, QKD_A_LINK_STATE, state))
		return built_fail(nl, msg);
	return qkd_nl_request(nl, msg, NULL, NULL);
}

int qkd_link_get(struct qkd_nl *nl, const struct qkd_link_ref *ref,
		 struct qkd_link *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_LINK_GET, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (put_link_ref(msg, ref, QKD_A_LINK_ID, QKD_A_LINK_NAME))
		return built_fail(nl, msg);
	memset(out, 0, sizeof(*out));
	return qkd_nl_request(nl, msg, link_cb, out);
}

struct link_dump_ctx {
	int (*cb)(const struct qkd_link *l, void *arg);
	void *arg;
	int count;
};

static int link_dump_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	struct link_dump_ctx *ctx = arg;
	struct qkd_link l;
	int err;

	(void)cmd;
	err = qkd_link_parse(tb, &l);
	if (err)
		return err;
	ctx->count++;
	return ctx->cb ? ctx->cb(&l, ctx->arg) : 0;
}

int qkd_link_dump(struct qkd_nl *nl,
		  int (*cb)(const struct qkd_link *l, void *arg), void *arg)
{
	struct link_dump_ctx ctx = { .cb = cb, .arg = arg };
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_LINK_GET, NLM_F_DUMP);
	int err;

	err = qkd_nl_request(nl, msg, link_dump_cb, &ctx);
	return err ? err : ctx.count;
}

static int put_limits(struct nl_msg *msg, const uint32_t *max_keys,
		      const uint32_t *low_water)
{
	if (max_keys && nla_put_u32(msg, QKD_A_STREAM_MAX_KEYS, *max_keys))
		return -1;
	if (low_water && nla_put_u32(msg, QKD_A_STREAM_LOW_WATER, *low_water))
		return -1;
	return 0;
}

int qkd_stream_add(struct qkd_nl *nl, const uint8_t id[QKD_STREAM_ID_LEN],
		   const struct qkd_link_ref *link, uint32_t key_size,
		   const uint32_t *max_keys, const uint32_t *low_water,
		   struct qkd_stream *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_STREAM_NEW, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (nla_put(msg, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, id) ||
	    put_link_ref(msg, link, QKD_A_STREAM_LINK_ID, QKD_A_STREAM_LINK_NAME) ||
	    nla_put_u32(msg, QKD_A_STREAM_KEY_SIZE, key_size) ||
	    put_limits(msg, max_keys, low_water))
		return built_fail(nl, msg);
	return qkd_nl_request(nl, msg, stream_cb, out);
}

int qkd_stream_set(struct qkd_nl *nl, const uint8_t id[QKD_STREAM_ID_LEN],
		   const uint32_t *max_keys, const uint32_t *low_water,
		   struct qkd_stream *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_STREAM_SET, 0);

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (nla_put(msg, QKD_A_STREAM_ID, QKD_STREAM_ID_LEN, id) ||
	    put_limits(msg, max_keys, low_water))
		return built_fail(nl, msg);
	return qkd_nl_request(nl, msg, stream_cb, out);
}

static int stream_simple(struct qkd_nl *nl, uint8_t cmd,
			 const uint8_t id[QKD_STREAM_ID_LEN],
			 struct qkd_stream *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, cmd, 0);
	int attr = cmd == QKD_CMD_KEY_FLUSH ? QKD_A_KEYS_STREAM_ID : QKD_A_STREAM_ID;

	if (!msg)
		return qkd_nl_fail(nl, ENOMEM);
	if (nla_put(msg, attr, QKD_STREAM_ID_LEN, id))
		return built_fail(nl, msg);
	if (out)
		memset(out, 0, sizeof(*out));
	return qkd_nl_request(nl, msg, out ? stream_cb : NULL, out);
}

int qkd_stream_del(struct qkd_nl *nl, const uint8_t id[QKD_STREAM_ID_LEN])
{
	return stream_simple(nl, QKD_CMD_STREAM_DEL, id, NULL);
}

int qkd_stream_get(struct qkd_nl *nl, const uint8_t id[QKD_STREAM_ID_LEN],
		   struct qkd_stream *out)
{
	return stream_simple(nl, QKD_CMD_STREAM_GET, id, out);
}

int qkd_key_flush(struct qkd_nl *nl, const uint8_t stream[QKD_STREAM_ID_LEN])
{
	return stream_simple(nl, QKD_CMD_KEY_FLUSH, stream, NULL);
}

struct stream_dump_ctx {
	int (*cb)(const struct qkd_stream *s, void *arg);
	void *arg;
	int count;
};

static int stream_dump_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	struct stream_dump_ctx *ctx = arg;
	struct qkd_stream s;
	int err;

	(void)cmd;
	err = qkd_stream_parse(tb, &s);
	if (err)
		return err;
	ctx->count++;
	return ctx->cb ? ctx->cb(&s, ctx->arg) : 0;
}

int qkd_stream_dump(struct qkd_nl *nl, const struct qkd_link_ref *link,
		    int (*cb)(const struct qkd_stream *s, void *arg),
		    void *arg)
{
	struct stream_dump_ctx ctx = { .cb = cb, .arg = arg };
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_STREAM_GET, NLM_F_DUMP);
	int err;

	if (msg && link &&
	    put_link_ref(msg, link, QKD_A_STREAM_LINK_ID, QKD_A_STREAM_LINK_NAME))
		return built_fail(nl, msg);
	err = qkd_nl_request(nl, msg, stream_dump_cb, &ctx);
	return err ? err : ctx.count;
}

int qkd_key_add(struct qkd_nl *nl, const uint8_t stream[QKD_STREAM_ID_LEN],
		uint64_t first_index, const uint8_t *data, size_t len,
		uint32_t key_size, uint64_t *pushed)
{
	size_t batch, off = 0, n;
	struct nl_msg *msg;
	int err;

	if (pushed)
		*pushed = 0;
	if (!key_size || key_size > QKD_KEY_BATCH_MAX_BYTES || !len ||
	    len % key_size)
		return -EINVAL;
	batch = QKD_KEY_BATCH_MAX_BYTES / key_size * key_size;
	while (off < len) {
		n = len - off < batch ? len - off : batch;
		msg = qkd_nl_msg_size(nl, QKD_CMD_KEY_ADD, 0, n + 1024);
		if (!msg)
			return qkd_nl_fail(nl, ENOMEM);
		if (nla_put(msg, QKD_A_KEYS_STREAM_ID, QKD_STREAM_ID_LEN, stream) ||
		    nla_put_u64(msg, QKD_A_KEYS_FIRST_INDEX,
				first_index + off / key_size) ||
		    nla_put(msg, QKD_A_KEYS_DATA, (int)n, data + off))
			return built_fail(nl, msg);
		err = qkd_nl_request(nl, msg, NULL, NULL);
		if (err)
			return err;
		off += n;
		if (pushed)
			*pushed = off / key_size;
	}
	return 0;
}

static int status_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	(void)cmd;
	return qkd_status_parse(tb, arg);
}

int qkd_status_get(struct qkd_nl *nl, struct qkd_status *out)
{
	struct nl_msg *msg = qkd_nl_msg(nl, QKD_CMD_STATUS_GET, 0);

	memset(out, 0, sizeof(*out));
	return qkd_nl_request(nl, msg, status_cb, out);
}
