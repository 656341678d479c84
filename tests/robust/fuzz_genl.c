// SPDX-License-Identifier: GPL-2.0-only
/*
 * fuzz_genl: a bounded, seeded fuzzer of the qkd generic netlink family and
 * of the /dev/qkd ioctls.
 *
 *   fuzz_genl [-n COUNT] [-u COUNT] [-t SECONDS] [-s SEED] [-m root|user|userns|all] [-k] [-v]
 *
 * -n: messages + ioctls of the root phase, -u: messages of each
 * unprivileged phase (default -n), -t: time limit of each phase, -k: keep
 * what the root phase created (default: delete its links at the end).
 *
 * root:   random and mutated genl messages and ioctls in the current netns;
 *         every error must be documented for its command (abi.md), every
 *         delivered key must be the pushed one, once, and the node counters
 *         must match what was accepted.
 * user:   a child with no open file drops to uid/gid 65534: /dev/qkd must
 *         not open, the events group must not be joinable, every message
 *         must be rejected, and the store of this netns must be unchanged.
 * userns: the same from unshare(CLONE_NEWUSER | CLONE_NEWNET), mapped root.
 * all:    root, then user, then userns (default).
 * Ends with TAP lines and "N passed, N failed".
 */
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "nlraw.h"

#define N_SID 20
#define N_LNAME 10
#define MAX_SAMPLES 40

static uint64_t rng;
static bool verbose;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static uint32_t rn(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static bool chance(unsigned int pct)
{
	return rn(100) < pct;
}

/* ------------------------------------------------------------- state */

struct fstream {
	bool live;
	bool pattern_ok;
	uint32_t ks;
	uint32_t link;
	uint64_t next;
	uint64_t *got;		/* delivered indices (unsorted) */
	size_t ngot, capgot;
};

static uint8_t sid_pool[N_SID][QKD_STREAM_ID_LEN];
static struct fstream streams[N_SID];
static uint32_t link_ids[64];
static int n_link_ids;

static const char *const errname_tab[] = {
	[EPERM] = "EPERM", [ENOENT] = "ENOENT", [EINTR] = "EINTR",
	[ENOMEM] = "ENOMEM", [EACCES] = "EACCES", [EFAULT] = "EFAULT",
	[EEXIST] = "EEXIST", [EINVAL] = "EINVAL", [ENOTTY] = "ENOTTY",
	[ENOSPC] = "ENOSPC", [ERANGE] = "ERANGE", [EAGAIN] = "EAGAIN",
	[EMSGSIZE] = "EMSGSIZE", [EOPNOTSUPP] = "EOPNOTSUPP",
	[ENOBUFS] = "ENOBUFS", [ENOKEY] = "ENOKEY",
	[EKEYEXPIRED] = "EKEYEXPIRED", [ETIMEDOUT] = "ETIMEDOUT",
	[EBADMSG] = "EBADMSG",
};

static const char *errname(int e)
{
	static char b[16];

	if (e == 0)
		return "OK";
	if (e > 0 && e < (int)(sizeof(errname_tab) / sizeof(errname_tab[0])) &&
	    errname_tab[e])
		return errname_tab[e];
	snprintf(b, sizeof(b), "errno%d", e);
	return b;
}

static const char *const cmd_names[] = {
	"UNSPEC", "LINK_NEW", "LINK_DEL", "LINK_GET", "LINK_SET",
	"STREAM_NEW", "STREAM_DEL", "STREAM_GET", "STREAM_SET", "KEY_ADD",
	"KEY_FLUSH", "STATUS_GET", "LINK_STATE_NTF", "STREAM_LOW_NTF",
	"STREAM_EMPTY_NTF", "KEYS_ADDED_NTF", "LINK_DEL_NTF", "STREAM_DEL_NTF",
	"SA_NEW", "SA_DEL", "SA_GET", "SA_REKEY_NTF", "SA_STATE_NTF",
};

static const char *cmdname(unsigned int c)
{
	static char b[16];

	if (c < sizeof(cmd_names) / sizeof(cmd_names[0]))
		return cmd_names[c];
	snprintf(b, sizeof(b), "cmd%u", c);
	return b;
}

/* Errnos abi.md documents per command (plus EINVAL for every command). */
static bool documented(unsigned int cmd, int e)
{
	if (e == EINVAL)
		return true;
	switch (cmd) {
	case QKD_CMD_LINK_NEW:
		return e == ERANGE || e == EEXIST || e == ENOSPC;
	case QKD_CMD_LINK_DEL:
	case QKD_CMD_LINK_GET:
	case QKD_CMD_STREAM_DEL:
	case QKD_CMD_STREAM_GET:
	case QKD_CMD_KEY_FLUSH:
		return e == ENOENT;
	case QKD_CMD_LINK_SET:
	case QKD_CMD_STREAM_SET:
		return e == ENOENT || e == ERANGE;
	case QKD_CMD_STREAM_NEW:
		return e == ERANGE || e == EEXIST || e == ENOENT || e == ENOSPC;
	case QKD_CMD_KEY_ADD:
		return e == ERANGE || e == EEXIST || e == ENOENT || e == ENOSPC ||
		       e == ENOMEM;
	case QKD_CMD_SA_NEW:	/* Documentation/ipsec.md */
		return e == ERANGE || e == EEXIST || e == ENOENT || e == ENOSPC ||
		       e == ENOKEY || e == EKEYEXPIRED || e == ENOMEM;
	case QKD_CMD_SA_DEL:
	case QKD_CMD_SA_GET:
		return e == ENOENT;
	default:
		return false;
	}
}

static bool has_dump(unsigned int cmd)
{
	return cmd == QKD_CMD_LINK_GET || cmd == QKD_CMD_STREAM_GET ||
	       cmd == QKD_CMD_SA_GET;
}

static bool valid_cmd(unsigned int cmd)
{
	return (cmd >= QKD_CMD_LINK_NEW && cmd <= QKD_CMD_STATUS_GET) ||
	       (cmd >= QKD_CMD_SA_NEW && cmd <= QKD_CMD_SA_GET);
}

/* ------------------------------------------------------------- stats */

struct sample {
	char text[320];
};

struct stats {
	uint64_t sent, accepted, rejected, unanswered, unexpected, noted, ignored;
	uint64_t by_errno[160];
	uint64_t by_cmd_ok[256], by_cmd_err[256];
	uint64_t ioctls, ioctl_ok, ioctl_unexpected, ioctl_by_errno[160];
	uint64_t echo_leaks, key_bad, key_dup, delivered, pushed_keys;
	uint64_t fault_consumed;	/* of delivered: EFAULT after key bytes */
	uint64_t polls, poll_bad;
	bool push_uncertain;
	int nsamples;
	struct sample samples[MAX_SAMPLES];
};

static struct stats st;

static void sample(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sample(const char *fmt, ...)
{
	va_list ap;

	if (verbose) {
		va_start(ap, fmt);
		printf("# ");
		vprintf(fmt, ap);
		printf("\n");
		va_end(ap);
	}
	if (st.nsamples >= MAX_SAMPLES)
		return;
	va_start(ap, fmt);
	vsnprintf(st.samples[st.nsamples++].text, sizeof(st.samples[0].text), fmt, ap);
	va_end(ap);
}

static void count_errno(uint64_t *tab, int e)
{
	tab[e >= 0 && e < 159 ? e : 159]++;
}

static void print_errnos(const char *what, const uint64_t *tab)
{
	printf("# %s:", what);
	for (int e = 0; e < 160; e++)
		if (tab[e])
			printf(" %s=%llu", e == 159 ? "other" : errname(e),
			       (unsigned long long)tab[e]);
	printf("\n");
}

/* --------------------------------------------------- state from replies */

static int sid_slot(const uint8_t *id)
{
	for (int i = 0; i < N_SID; i++)
		if (!memcmp(sid_pool[i], id, QKD_STREAM_ID_LEN))
			return i;
	return -1;
}

static void stream_forget(int i)
{
	streams[i].live = false;
	streams[i].ngot = 0;
	streams[i].pattern_ok = true;
	streams[i].next = 0;
}

static bool seen_live[N_SID];

static void learn_cb(void *ctx, uint8_t cmd, const uint8_t *a, size_t len)
{
	const struct nlattr *sid = nlr_attr_find(a, len, QKD_A_STREAM_ID);
	uint32_t id;

	(void)ctx;
	if (sid && nla_plen(sid) == QKD_STREAM_ID_LEN &&
	    (cmd == QKD_CMD_STREAM_GET || cmd == QKD_CMD_STREAM_NEW ||
	     cmd == QKD_CMD_STREAM_SET)) {
		int i = sid_slot(nla_payload(sid));
		struct fstream *s;

		if (i < 0)
			return;
		s = &streams[i];
		seen_live[i] = true;
		nlr_get_u32(a, len, QKD_A_STREAM_KEY_SIZE, &s->ks);
		nlr_get_u32(a, len, QKD_A_STREAM_LINK_ID, &s->link);
		nlr_get_u64(a, len, QKD_A_STREAM_NEXT_INDEX, &s->next);
		return;
	}
	if ((cmd == QKD_CMD_LINK_GET || cmd == QKD_CMD_LINK_NEW) &&
	    nlr_get_u32(a, len, QKD_A_LINK_ID, &id) && n_link_ids < 64)
		link_ids[n_link_ids++] = id;
}

/* Re-read links and streams after anything that may have changed them. */
static void resync(struct nlsock *s)
{
	n_link_ids = 0;
	memset(seen_live, 0, sizeof(seen_live));
	nls_req(s, QKD_CMD_LINK_GET, NLM_F_DUMP, NULL, learn_cb, NULL, NULL);
	nls_req(s, QKD_CMD_STREAM_GET, NLM_F_DUMP, NULL, learn_cb, NULL, NULL);
	for (int i = 0; i < N_SID; i++) {
		if (streams[i].live && !seen_live[i])
			stream_forget(i);
		else if (!streams[i].live && seen_live[i]) {
			uint64_t next = streams[i].next;

			stream_forget(i);
			streams[i].live = true;
			streams[i].next = next;
		}
	}
}

/* ------------------------------------------------------- generator */

struct gen {
	uint8_t attrs[70000];
	size_t alen;
	unsigned int cmd;
	uint16_t flags;
	uint8_t version;
	uint16_t reserved;
	int len_delta;		/* nlmsg_len - real length */
	size_t cut;		/* bytes cut off the end (truncated attr) */
	bool expect_answer;
	bool header_bad;	/* reserved/flags: the core rejects it */
	char mut[200];
};

static void mut_note(struct gen *g, const char *m)
{
	size_t l = strlen(g->mut);

	snprintf(g->mut + l, sizeof(g->mut) - l, "%s%s", l ? "," : "", m);
}

static int n_live_streams(void)
{
	int n = 0;

	for (int i = 0; i < N_SID; i++)
		n += streams[i].live;
	return n;
}

static int pick_live_stream(void)
{
	int c[N_SID], n = 0;

	for (int i = 0; i < N_SID; i++)
		if (streams[i].live)
			c[n++] = i;
	return n ? c[rn(n)] : (int)rn(N_SID);
}

static void put_sid(struct nlmsgb *m, int *slot)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	uint32_t r = rn(100);

	*slot = -1;
	if (r < 85) {
		*slot = chance(70) ? pick_live_stream() : (int)rn(N_SID);
		mb_attr(m, QKD_A_STREAM_ID, sid_pool[*slot], QKD_STREAM_ID_LEN);
		return;
	}
	for (int i = 0; i < QKD_STREAM_ID_LEN; i++)
		id[i] = r < 92 ? 0 : (uint8_t)rnd();
	mb_attr(m, QKD_A_STREAM_ID, id, r < 96 ? QKD_STREAM_ID_LEN :
		(size_t)(rn(2) ? 15 : 17));
}

static uint32_t rand_link_id(void)
{
	uint32_t r = rn(100);

	if (r < 60 && n_link_ids)
		return link_ids[rn(n_link_ids)];
	if (r < 85)
		return 1 + rn(12);
	if (r < 92)
		return 0;
	return (uint32_t)rnd();
}

/* A link's name as attribute @attr: the link set's, or a stream's link-name. */
static void put_link_name(struct nlmsgb *m, uint16_t attr)
{
	char name[80];
	uint32_t r = rn(100);

	if (r < 85) {
		snprintf(name, sizeof(name), "l%u", rn(N_LNAME));
		mb_str(m, attr, name);
	} else if (r < 89) {
		mb_str(m, attr, "");
	} else if (r < 93) {
		memset(name, 'n', sizeof(name));
		mb_attr(m, attr, name, 30 + rn(4));	/* no NUL */
	} else if (r < 97) {
		memset(name, 0, sizeof(name));
		name[0] = 'l';
		mb_attr(m, attr, name, 2 + rn(60));	/* NUL padded */
	} else {
		memset(name, 'x', sizeof(name));
		name[31] = 0;
		mb_attr(m, attr, name, 32);
	}
}

/*
 * A link by id and/or name: the link set's own attributes (@stream false)
 * or a stream's link-id/link-name (stream-new, the stream-get dump).
 */
static void put_link_ref(struct nlmsgb *m, bool stream)
{
	uint32_t r = rn(100);

	if (r < 45 || r >= 90)
		mb_u32(m, stream ? QKD_A_STREAM_LINK_ID : QKD_A_LINK_ID,
		       rand_link_id());
	if (r >= 45)
		put_link_name(m, stream ? QKD_A_STREAM_LINK_NAME : QKD_A_LINK_NAME);
}

static uint32_t rand_u32_edge(uint32_t good)
{
	static const uint32_t edges[] = { 0, 1, 15, 16, 17, 511, 512, 513,
					  4095, 4096, 1048576, 1048577,
					  0x7fffffff, 0xffffffff };

	if (chance(75))
		return good;
	if (chance(70))
		return edges[rn(sizeof(edges) / sizeof(edges[0]))];
	return (uint32_t)rnd();
}

static void gen_key_add(struct nlmsgb *m)
{
	static uint8_t data[66000];
	int slot;
	uint32_t ks, n, len;
	uint64_t first;

	put_sid(m, &slot);
	ks = slot >= 0 && streams[slot].ks ? streams[slot].ks : 32;
	first = slot >= 0 ? streams[slot].next : 0;
	switch (rn(12)) {
	case 0: first += 1 + rn(5); break;		/* a gap */
	case 1: first = first ? first - 1 : 0; break;	/* overlap */
	case 2: first = QKD_INDEX_MAX - rn(4); break;
	case 3: first = QKD_INDEX_MAX + 1 + rn(3); break;
	case 4: first = rnd(); break;
	default: break;
	}
	if (!chance(5))
		mb_u64(m, QKD_A_KEYS_FIRST_INDEX, first);
	n = 1 + rn(chance(10) ? QKD_KEY_BATCH_MAX_BYTES / ks : 8);
	len = n * ks;
	switch (rn(14)) {
	case 0: len += 1; break;
	case 1: len -= 1; break;
	case 2: len = QKD_KEY_BATCH_MAX_BYTES + 1 + rn(ks); break;
	case 3: len = 0; break;
	case 4: len = 32769 + rn(65000 - 32769); break;	/* huge */
	default: break;
	}
	if (len > sizeof(data))
		len = sizeof(data);
	for (uint32_t k = 0; k * ks < len; k++) {
		uint32_t chunk = len - k * ks < ks ? len - k * ks : ks;

		key_pattern(slot >= 0 ? sid_pool[slot] : sid_pool[0], first + k,
			    data + (size_t)k * ks, chunk);
	}
	if (!chance(5))
		mb_attr(m, QKD_A_KEYS_DATA, data, len);
}

/* Valid-looking attributes for @cmd, random values now and then. */
static void gen_attrs(struct gen *g, struct nlmsgb *m)
{
	static const uint32_t sizes[] = { 16, 32, 64, 512 };
	int slot;

	switch (g->cmd) {
	case QKD_CMD_LINK_NEW:
		if (chance(25))
			mb_u32(m, QKD_A_LINK_ID, rand_link_id());
		if (chance(92))
			put_link_name(m, QKD_A_LINK_NAME);
		if (chance(92))
			mb_u8(m, QKD_A_LINK_ROLE, (uint8_t)rand_u32_edge(1 + rn(2)));
		if (chance(25))
			mb_str(m, QKD_A_LINK_PEER, chance(80) ? "peer.example" :
			       "a-very-long-peer-name-that-goes-on-and-on-and-on-beyond-64-bytes!!");
		break;
	case QKD_CMD_LINK_DEL:
	case QKD_CMD_LINK_GET:
		if (!(g->flags & NLM_F_DUMP) || chance(20))
			put_link_ref(m, false);
		break;
	case QKD_CMD_LINK_SET:
		if (chance(92))
			put_link_ref(m, false);
		if (chance(92))
			mb_u8(m, QKD_A_LINK_STATE, (uint8_t)rand_u32_edge(1 + rn(2)));
		break;
	case QKD_CMD_STREAM_NEW:
		put_sid(m, &slot);
		if (chance(92))
			put_link_ref(m, true);
		if (chance(92))
			mb_u32(m, QKD_A_STREAM_KEY_SIZE, rand_u32_edge(sizes[rn(4)]));
		if (chance(40))
			mb_u32(m, QKD_A_STREAM_MAX_KEYS, rand_u32_edge(16 + rn(2000)));
		if (chance(30))
			mb_u32(m, QKD_A_STREAM_LOW_WATER, rand_u32_edge(rn(16)));
		break;
	case QKD_CMD_STREAM_DEL:
	case QKD_CMD_KEY_FLUSH:
		if (chance(95))
			put_sid(m, &slot);
		break;
	case QKD_CMD_STREAM_GET:
		if (g->flags & NLM_F_DUMP) {
			if (chance(40))
				put_link_ref(m, true);
		} else if (chance(95)) {
			put_sid(m, &slot);
		}
		break;
	case QKD_CMD_STREAM_SET:
		if (chance(95))
			put_sid(m, &slot);
		if (chance(70))
			mb_u32(m, QKD_A_STREAM_MAX_KEYS, rand_u32_edge(16 + rn(2000)));
		if (chance(50))
			mb_u32(m, QKD_A_STREAM_LOW_WATER, rand_u32_edge(rn(16)));
		break;
	case QKD_CMD_KEY_ADD:
		gen_key_add(m);
		break;
	default:
		/* unknown commands and notifications: something random */
		if (chance(50))
			put_sid(m, &slot);
		if (chance(50))
			put_link_ref(m, chance(50));
		break;
	}
}

/* Attribute-level mutations on the attribute bytes. */
static void mutate(struct gen *g, struct nlmsgb *m)
{
	int nm = chance(55) ? 0 : 1 + (int)rn(3);

	for (int k = 0; k < nm; k++) {
		switch (rn(11)) {
		case 0: {	/* unknown attribute type */
			static const uint16_t types[] = { 0, 1, QKD_NLR_MAXATTR + 1,
							  QKD_NLR_MAXATTR + 7, 0x3fff, 200 };
			uint16_t t = types[rn(6)];
			uint32_t v = (uint32_t)rnd();

			mb_attr(m, t, &v, rn(9));
			mut_note(g, "unknown-type");
			break;
		}
		case 1: {	/* an attribute this command does not take */
			uint64_t v = rnd();

			mb_attr(m, (uint16_t)(2 + rn(QKD_NLR_MAXATTR - 1)), &v,
				(size_t)(1u << rn(4)));
			mut_note(g, "foreign-attr");
			break;
		}
		case 2:		/* off-by-one length of the first attribute */
			if (m->len >= NLA_HDRLEN) {
				struct nlattr *a = (struct nlattr *)m->b;

				a->nla_len = (uint16_t)(a->nla_len + (rn(2) ? 1 : -1));
				mut_note(g, "len+-1");
			}
			break;
		case 3:		/* truncated: cut inside the last attribute */
			if (m->len > 2) {
				g->cut = 1 + rn(m->len < 8 ? (uint32_t)m->len - 1 : 7);
				mut_note(g, "truncated");
			}
			break;
		case 4:		/* nla_len below the header */
			if (m->len >= NLA_HDRLEN) {
				((struct nlattr *)m->b)->nla_len = (uint16_t)rn(NLA_HDRLEN);
				mut_note(g, "nla_len<4");
			}
			break;
		case 5: {	/* nested garbage */
			uint8_t inner[64];
			struct nlmsgb im;
			uint16_t t = (uint16_t)(1 + rn(QKD_NLR_MAXATTR + 2));

			mb_init(&im, inner, sizeof(inner));
			mb_u32(&im, (uint16_t)rn(30), (uint32_t)rnd());
			mb_u64(&im, (uint16_t)rn(30), rnd());
			im.len -= rn(6);
			mb_attr(m, (uint16_t)(t | NLA_F_NESTED), inner, im.len);
			mut_note(g, "nested-garbage");
			break;
		}
		case 6:		/* NLA_F_NESTED / byte order flag on the first attr */
			if (m->len >= NLA_HDRLEN) {
				((struct nlattr *)m->b)->nla_type |=
					rn(2) ? NLA_F_NESTED : NLA_F_NET_BYTEORDER;
				mut_note(g, "type-flag");
			}
			break;
		case 7:		/* duplicate the first attribute */
			if (m->len >= NLA_HDRLEN) {
				struct nlattr *a = (struct nlattr *)m->b;
				size_t al = NLA_ALIGN(a->nla_len);

				if (a->nla_len >= NLA_HDRLEN && al <= m->len &&
				    m->len + al <= m->cap) {
					memcpy(m->b + m->len, m->b, al);
					m->len += al;
					mut_note(g, "dup");
				}
			}
			break;
		case 8:		/* flip random bytes */
			for (int i = 0; i < 1 + (int)rn(4) && m->len; i++)
				m->b[rn((uint32_t)m->len)] ^= (uint8_t)(1 + rn(255));
			mut_note(g, "flip");
			break;
		case 9:		/* trailing bytes, not a whole attribute */
			mb_raw(m, "\x01\x02\x03", 1 + rn(3));
			mut_note(g, "trailing");
			break;
		default:	/* drop a random attribute from the front */
			if (m->len >= NLA_HDRLEN) {
				struct nlattr *a = (struct nlattr *)m->b;
				size_t al = NLA_ALIGN(a->nla_len);

				if (a->nla_len >= NLA_HDRLEN && al <= m->len) {
					memmove(m->b, m->b + al, m->len - al);
					m->len -= al;
					mut_note(g, "drop");
				}
			}
			break;
		}
	}
}

static void gen_msg(struct gen *g)
{
	struct nlmsgb m;
	uint32_t r = rn(100);

	memset(g->mut, 0, sizeof(g->mut));
	g->cut = 0;
	g->len_delta = 0;
	g->header_bad = false;
	if (r < 86)
		g->cmd = 1 + rn(QKD_CMD_STATUS_GET);
	else if (r < 91)
		g->cmd = QKD_CMD_LINK_STATE_NTF + rn(6);
	else if (r < 94)
		g->cmd = 0;
	else
		g->cmd = __QKD_CMD_MAX + rn(256 - __QKD_CMD_MAX);
	if (chance(12))
		g->cmd = QKD_CMD_KEY_ADD;	/* weight pushes up */
	/* deletes are cheap to succeed at: keep some streams alive */
	if ((g->cmd == QKD_CMD_LINK_DEL || g->cmd == QKD_CMD_STREAM_DEL ||
	     g->cmd == QKD_CMD_KEY_FLUSH) && chance(50))
		g->cmd = QKD_CMD_KEY_ADD;
	if (n_live_streams() < 3 && chance(25))
		g->cmd = n_link_ids ? QKD_CMD_STREAM_NEW : QKD_CMD_LINK_NEW;
	g->flags = NLM_F_REQUEST | NLM_F_ACK;
	if (has_dump(g->cmd) ? chance(35) : chance(4))
		g->flags |= NLM_F_DUMP;
	if (chance(3)) {
		static const uint16_t odd[] = { NLM_F_ECHO, NLM_F_EXCL, NLM_F_APPEND,
						NLM_F_ROOT, 0x800, NLM_F_MULTI };
		uint16_t f = odd[rn(6)];

		g->flags |= f;
		mut_note(g, "nlmsg-flags");
	}
	{	/* what genl_header_check() lets through */
		uint16_t f = g->flags;

		if ((f & NLM_F_DUMP) == NLM_F_DUMP)
			f &= (uint16_t)~NLM_F_DUMP;
		if (f & ~(NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO))
			g->header_bad = true;
	}
	g->version = chance(90) ? QKD_FAMILY_VERSION : (uint8_t)rnd();
	g->reserved = 0;
	if (chance(4)) {
		g->reserved = (uint16_t)(1 + rn(0xfffe));
		g->header_bad = true;
		mut_note(g, "genl-reserved");
	}
	mb_init(&m, g->attrs, sizeof(g->attrs));
	gen_attrs(g, &m);
	mutate(g, &m);
	if (g->cut >= m.len)
		g->cut = 0;
	g->alen = m.len - g->cut;
	g->expect_answer = true;
	if (chance(3)) {
		g->len_delta = rn(2) ? 1 + (int)rn(8) : -(1 + (int)rn(8));
		mut_note(g, "nlmsg_len");
		g->expect_answer = false;
	}
	if (chance(2)) {
		g->flags &= (uint16_t)~NLM_F_REQUEST;
		mut_note(g, "no-request");
		g->expect_answer = false;
	}
}

/* The KEY_DATA payload position in a sent message, for the echo check. */
static const struct nlattr *find_last(const uint8_t *p, size_t len, uint16_t t)
{
	const struct nlattr *last = NULL;

	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)p;
		size_t step = NLA_ALIGN(a->nla_len);

		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			break;
		if ((a->nla_type & NLA_TYPE_MASK) == t)
			last = a;
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return last;
}

/* ------------------------------------------------------------ ioctls */

struct iofuzz {
	int fd;
	uint8_t *keybuf;	/* RW page */
	uint8_t *ro;		/* read-only page */
	uint8_t *argpage;	/* read-only while an ioctl argument sits in it */
	uint8_t *guard;		/* RW page followed by PROT_NONE */
};

static bool ioctl_documented(unsigned long cmd, int e)
{
	switch (cmd) {
	case QKD_IOC_INFO:
		return e == EINVAL || e == EFAULT;
	case QKD_IOC_STREAM_STATUS:
	case QKD_IOC_SET_POLL_STREAM:
		return e == EINVAL || e == EFAULT || e == ENOENT;
	/* EBUSY: a stream that an SA binding (maybe a fuzzed one) owns. */
	case QKD_IOC_GET_KEY:
		return e == EINVAL || e == EFAULT || e == ENOENT || e == EAGAIN ||
		       e == ERANGE || e == EBUSY;
	case QKD_IOC_GET_KEY_BY_ID:
		return e == EINVAL || e == EFAULT || e == ENOENT || e == ENOKEY ||
		       e == EKEYEXPIRED || e == ERANGE || e == EBUSY;
	/*
	 * Not generated on purpose (they take keys and need an AF_ALG socket
	 * or a keyring; tests/kernel/test_crypto covers them), but a random
	 * number can be one of them: Documentation/abi.md's errors.
	 */
	case QKD_IOC_GET_KEYS:
		return e == EINVAL || e == EFAULT || e == ENOENT || e == EAGAIN ||
		       e == ERANGE || e == EBUSY;
	case QKD_IOC_ALG_SETKEY:
	case QKD_IOC_LOGON_KEY:
		return e == EINVAL || e == EFAULT || e == ENOENT || e == EAGAIN ||
		       e == ENOKEY || e == EKEYEXPIRED || e == ERANGE ||
		       e == EBADF || e == ENOTSOCK || e == EAFNOSUPPORT ||
		       e == EOPNOTSUPP || e == ENOPROTOOPT || e == EBUSY ||
		       e == ENOTDIR || e == EACCES || e == EPERM || e == EDQUOT;
	default:
		return e == ENOTTY;
	}
}

static bool ledger_add(struct fstream *s, uint64_t idx)
{
	for (size_t i = 0; i < s->ngot; i++)
		if (s->got[i] == idx)
			return false;
	if (s->ngot == s->capgot) {
		size_t c = s->capgot ? s->capgot * 2 : 256;
		uint64_t *n = realloc(s->got, c * sizeof(*n));

		if (!n)
			return true;
		s->got = n;
		s->capgot = c;
	}
	s->got[s->ngot++] = idx;
	return true;
}

/* A key was delivered: check it against what was pushed. */
static void check_key(const struct qkd_key_request *req, const uint8_t *key)
{
	int slot = sid_slot(req->stream_id);
	uint8_t id[QKD_KEY_ID_LEN], want[QKD_KEY_SIZE_MAX];
	struct fstream *s;

	st.delivered++;
	if (slot < 0)
		return;
	s = &streams[slot];
	if (verbose)
		printf("# deliver: slot %d index %llu len %u pattern_ok %d\n", slot,
		       (unsigned long long)req->index, req->key_len, s->pattern_ok);
	qkd_key_id_from_index(id, req->stream_id, req->index);
	if (memcmp(id, req->key_id, QKD_KEY_ID_LEN) ||
	    (s->ks && req->key_len != s->ks) || req->index > QKD_INDEX_MAX) {
		st.key_bad++;
		sample("ioctl: delivered key of stream %d index %llu: bad key_id/len %u",
		       slot, (unsigned long long)req->index, req->key_len);
	} else if (s->pattern_ok && s->ks) {
		key_pattern(req->stream_id, req->index, want, s->ks);
		if (memcmp(want, key, s->ks)) {
			char where[80] = "matches no pushed pattern nearby";

			/* whose bytes are these? */
			for (int j = 0; j < N_SID; j++)
				for (int64_t d = -64; d <= 64; d++) {
					uint64_t i2 = req->index + (uint64_t)d;

					key_pattern(sid_pool[j], i2, want, s->ks);
					if (!memcmp(want, key, 16))
						snprintf(where, sizeof(where),
							 "starts like stream %d index %llu", j,
							 (unsigned long long)i2);
				}
			st.key_bad++;
			sample("ioctl: stream %d (ks %u) index %llu: key bytes differ from the pushed ones (%s): %02x%02x%02x%02x%02x%02x%02x%02x...",
			       slot, s->ks, (unsigned long long)req->index, where,
			       key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7]);
		}
	}
	if (!ledger_add(s, req->index)) {
		st.key_dup++;
		sample("ioctl: stream %d index %llu delivered twice", slot,
		       (unsigned long long)req->index);
	}
}

/*
 * A GET_KEY whose key buffer ran into the guard page after @avail bytes
 * failed with EFAULT: the request came back (it is written before the key)
 * and part of the key reached us, so the key is used up (abi.md, "Faults"):
 * delivered once, its written bytes the pushed ones.
 */
static void fault_consumed(const struct qkd_key_request *req,
			   const uint8_t *key, size_t avail)
{
	int slot = sid_slot(req->stream_id);
	uint8_t want[QKD_KEY_SIZE_MAX];
	struct fstream *s;

	st.delivered++;
	st.fault_consumed++;
	if (slot < 0)
		return;
	s = &streams[slot];
	if (s->pattern_ok && s->ks) {
		key_pattern(req->stream_id, req->index, want, s->ks);
		/*
		 * copy_to_user() may store less than fits before the guard
		 * (uaccess.h), but never nothing when a byte fits: only the
		 * first byte is sure to be the key's.
		 */
		if (want[0] != key[0]) {
			st.key_bad++;
			sample("ioctl: stream %d index %llu: the first byte written before EFAULT (of at most %zu) differs from the pushed key",
			       slot, (unsigned long long)req->index, avail);
		}
	}
	if (!ledger_add(s, req->index)) {
		st.key_dup++;
		sample("ioctl: stream %d index %llu delivered twice (the second by a faulting copy)",
		       slot, (unsigned long long)req->index);
	}
}

static unsigned long rand_ioctl_cmd(int *real)
{
	static const unsigned long cmds[] = { QKD_IOC_INFO, QKD_IOC_STREAM_STATUS,
		QKD_IOC_GET_KEY, QKD_IOC_GET_KEY_BY_ID, QKD_IOC_SET_POLL_STREAM };
	static const uint8_t bad_types[] = { 0x00, 0x12, 0x15, 0x54, 0x58, 0x66, 0x94 };
	uint32_t r = rn(100);
	unsigned long c;

	*real = (int)rn(5);
	if (r < 75)
		return cmds[*real];
	if (r < 85)	/* a real number with another size or direction */
		return (cmds[*real] & ~(_IOC_SIZEMASK << _IOC_SIZESHIFT |
					_IOC_DIRMASK << _IOC_DIRSHIFT)) |
		       ((unsigned long)rn(4) << _IOC_DIRSHIFT) |
		       ((unsigned long)(_IOC_SIZE(cmds[*real]) + rn(17) - 8) << _IOC_SIZESHIFT);
	if (r < 93)	/* numbers past the last ioctl (GET_KEYS, 7) */
		return _IOC(rn(4), QKD_IOC_MAGIC, 8 + rn(12), rn(200));
	do {
		c = r < 97 ? _IOC(rn(4), QKD_IOC_MAGIC - 1 + 2 * rn(2), rn(8), rn(200)) :
			     (unsigned long)(uint32_t)rnd();
		for (size_t i = 0; i < sizeof(bad_types); i++)
			if (_IOC_TYPE(c) == bad_types[i])
				c = 0;
	} while (!c);
	return c;
}

static void fuzz_ioctl(struct iofuzz *io)
{
	union {
		struct qkd_info info;
		struct qkd_stream_status ss;
		struct qkd_key_request kr;
		struct qkd_poll_stream ps;
		uint8_t raw[160];
	} u;
	static const uint32_t sizes[] = { sizeof(struct qkd_info),
		sizeof(struct qkd_stream_status), sizeof(struct qkd_key_request),
		sizeof(struct qkd_key_request), sizeof(struct qkd_poll_stream) };
	int real, slot, e;
	unsigned long cmd = rand_ioctl_cmd(&real);
	void *arg = &u;
	const char *argkind = "ok";
	bool arg_ro = false, key_straddles = false;
	long ret;

	memset(&u, 0, sizeof(u));
	if (chance(3))
		for (size_t i = 0; i < sizeof(u); i++)
			u.raw[i] = (uint8_t)rnd();
	u.info.size = sizes[real];
	if (chance(8)) {
		static const int d[] = { -8, -1, 1, 8 };

		u.info.size = chance(20) ? (uint32_t)rnd() : chance(20) ? 0 :
			      sizes[real] + d[rn(4)];
	}
	if (chance(6))
		u.info.flags = 1u << rn(32);
	slot = chance(80) ? pick_live_stream() : (int)rn(N_SID);
	if (real == 1 || real == 2 || real == 3 || real == 4)
		memcpy(u.ss.stream_id, sid_pool[slot], QKD_STREAM_ID_LEN);
	if (chance(4))
		memset(u.ss.stream_id, 0, QKD_STREAM_ID_LEN);
	if (real == 2 || real == 3) {
		struct fstream *s = &streams[slot];
		uint64_t idx;

		if (real == 3 && chance(40))
			u.kr.flags = QKD_KEY_F_BY_KEY_ID;
		switch (rn(10)) {
		case 0: idx = QKD_INDEX_MAX + 1 + rn(10); break;
		case 1: idx = rnd(); break;
		case 2: idx = s->next + rn(3); break;
		default:
			idx = s->ngot && chance(30) ? s->got[rn((uint32_t)s->ngot)] :
			      s->next ? s->next - 1 - rn((uint32_t)(s->next < 40 ? s->next : 40)) : 0;
			break;
		}
		u.kr.index = idx;
		qkd_key_id_from_index(u.kr.key_id, sid_pool[slot], idx);
		if (chance(5))
			u.kr.key_id[rn(9)] ^= 0x40;
		u.kr.key_len = chance(88) ? QKD_KEY_SIZE_MAX :
			       chance(50) ? (s->ks ? s->ks - 1 : 0) : (uint32_t)rnd();
		switch (rn(20)) {
		case 0: u.kr.key_ptr = 0; break;
		case 1: u.kr.key_ptr = (uintptr_t)io->ro; break;
		case 2:	/* ends on the guard page: a fault after key bytes */
			u.kr.key_ptr = (uintptr_t)(io->guard + 4096 - 1 - rn(64));
			key_straddles = true;
			break;
		case 3: u.kr.key_ptr = 0xffffffff81000000ull; break;
		case 4: u.kr.key_ptr = 0x8000000000000000ull; break;
		default: u.kr.key_ptr = (uintptr_t)io->keybuf; break;
		}
	}
	if (chance(5)) {	/* a reserved byte */
		size_t off = real == 0 ? 20 + rn(44) : real == 1 ? 60 + rn(44) :
			     real == 4 ? 24 + rn(16) : 76 + rn(32);

		if (real != 0 || off < 24 || off >= 32)	/* not info's features */
			u.raw[off] = (uint8_t)(1 + rn(255));
		if (real == 1 && off < 64)		/* stream status reserved0 */
			u.raw[off] = (uint8_t)(1 + rn(255));
	}
	switch (rn(25)) {
	case 0: arg = NULL; argkind = "null"; break;
	case 1:
		memcpy(io->argpage, &u, sizeof(u));
		mprotect(io->argpage, 4096, PROT_READ);
		arg = io->argpage;
		arg_ro = true;
		argkind = "ro";
		break;
	case 2: {
		size_t k = 1 + rn(sizes[real] - 1);

		memcpy(io->guard + 4096 - k, &u, k);
		arg = io->guard + 4096 - k;
		argkind = "straddle";
		break;
	}
	case 3: arg = (void *)0xffffffff81000000ull; argkind = "kernel"; break;
	default: break;
	}
	ret = ioctl(io->fd, cmd, arg);
	e = ret < 0 ? errno : 0;
	if (arg_ro)
		mprotect(io->argpage, 4096, PROT_READ | PROT_WRITE);
	st.ioctls++;
	count_errno(st.ioctl_by_errno, e);
	if (ret == 0) {
		st.ioctl_ok++;
		if (!ioctl_documented(cmd, ENOTTY) || cmd == QKD_IOC_INFO ||
		    cmd == QKD_IOC_STREAM_STATUS || cmd == QKD_IOC_SET_POLL_STREAM) {
			if ((cmd == QKD_IOC_GET_KEY || cmd == QKD_IOC_GET_KEY_BY_ID) &&
			    arg == (void *)&u)
				check_key(&u.kr, (const uint8_t *)(uintptr_t)u.kr.key_ptr);
		} else {
			st.ioctl_unexpected++;
			sample("ioctl 0x%lx (unknown) succeeded", cmd);
		}
		if (ret == 0 && (cmd == QKD_IOC_GET_KEY || cmd == QKD_IOC_GET_KEY_BY_ID) &&
		    arg != (void *)&u) {
			st.ioctl_unexpected++;
			sample("ioctl 0x%lx succeeded with a %s argument", cmd, argkind);
		}
	} else if (e == EFAULT && key_straddles && arg == (void *)&u &&
		   (cmd == QKD_IOC_GET_KEY || cmd == QKD_IOC_GET_KEY_BY_ID)) {
		fault_consumed(&u.kr, (const uint8_t *)(uintptr_t)u.kr.key_ptr,
			       (size_t)(io->guard + 4096 -
					(uint8_t *)(uintptr_t)u.kr.key_ptr));
	} else if (!ioctl_documented(cmd, e)) {
		st.ioctl_unexpected++;
		sample("ioctl 0x%lx (nr %lu size %lu) arg %s size %u flags 0x%x -> %s (undocumented)",
		       cmd, (unsigned long)_IOC_NR(cmd), (unsigned long)_IOC_SIZE(cmd),
		       argkind, u.info.size, u.info.flags, errname(e));
	}
	if (!(st.ioctls % 16)) {
		struct pollfd p = { .fd = io->fd, .events = POLLIN };

		st.polls++;
		if (poll(&p, 1, 0) < 0 ||
		    (p.revents & ~(POLLIN | POLLRDNORM | POLLERR))) {
			st.poll_bad++;
			sample("poll: revents 0x%x", p.revents);
		}
	}
	if (!(st.ioctls % 500)) {	/* a fresh file now and then */
		close(io->fd);
		io->fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	}
}

/* ---------------------------------------------------------- one message */

struct kadd {
	int slot;
	uint64_t first;
	uint32_t len;
	bool pattern;
};

static void parse_key_add(const struct gen *g, struct kadd *k)
{
	const struct nlattr *sid = find_last(g->attrs, g->alen, QKD_A_STREAM_ID);
	const struct nlattr *fi = find_last(g->attrs, g->alen, QKD_A_KEYS_FIRST_INDEX);
	const struct nlattr *d = find_last(g->attrs, g->alen, QKD_A_KEYS_DATA);

	memset(k, 0, sizeof(*k));
	k->slot = sid && nla_plen(sid) == QKD_STREAM_ID_LEN ? sid_slot(nla_payload(sid)) : -1;
	if (fi && nla_plen(fi) == 8)
		memcpy(&k->first, nla_payload(fi), 8);
	k->len = d ? (uint32_t)nla_plen(d) : 0;
	if (k->slot >= 0 && d && streams[k->slot].ks) {
		uint32_t ks = streams[k->slot].ks;
		uint8_t want[QKD_KEY_SIZE_MAX];

		k->pattern = true;
		for (uint32_t i = 0; i < k->len / ks; i++) {
			key_pattern(sid_pool[k->slot], k->first + i, want, ks);
			if (memcmp(want, (const uint8_t *)nla_payload(d) + (size_t)i * ks, ks))
				k->pattern = false;
		}
	}
}

/* Send one fuzz message; returns its errno, -1 if no answer. */
static int fuzz_one(struct nlsock *s, struct gen *g, bool privileged)
{
	static uint8_t buf[NLR_BUF_MAX];
	struct nlresp r;
	uint32_t seq = ++s->seq;
	size_t len;
	int e;

	gen_msg(g);
	len = nlr_build(buf, sizeof(buf), s->family, g->flags, seq, (uint8_t)g->cmd,
			g->version, g->reserved, g->attrs, g->alen);
	((struct nlmsghdr *)buf)->nlmsg_len = (uint32_t)((int)len + g->len_delta);
	st.sent++;
	e = nls_txrx(s, buf, len, seq, &r, privileged ? learn_cb : NULL, NULL);
	if (e) {
		sample("%s: sendto/recv failed: %s", cmdname(g->cmd), strerror(-e));
		st.unexpected++;
		return -1;
	}
	if (r.timeout) {
		st.unexpected++;
		sample("%s [%s]: dump did not finish", cmdname(g->cmd), g->mut);
	}
	if (!r.acked && !r.dump_done) {
		if (g->expect_answer && (g->flags & NLM_F_ACK) && !r.nreplies) {
			st.unanswered++;
			sample("%s flags 0x%x [%s]: no answer", cmdname(g->cmd),
			       g->flags, g->mut);
		}
		/* a dropped or ack-less message */
		if (!r.nreplies)
			return -1;
	}
	e = r.err;
	if (!(g->flags & NLM_F_REQUEST) && !e && !r.nreplies) {
		/* not a request: the core only acks it, nothing ran */
		st.ignored++;
		return -1;
	}
	count_errno(st.by_errno, e);
	if (!e) {
		st.accepted++;
		st.by_cmd_ok[g->cmd]++;
	} else {
		st.rejected++;
		st.by_cmd_err[g->cmd]++;
	}
	if (!privileged)
		return e;

	/* classify */
	if (!e) {
		bool dump = (g->flags & NLM_F_DUMP) == NLM_F_DUMP;

		if (!valid_cmd(g->cmd) || (dump && !has_dump(g->cmd)) || g->header_bad) {
			st.unexpected++;
			sample("%s flags 0x%x [%s]: accepted!", cmdname(g->cmd),
			       g->flags, g->mut);
		}
	} else if (!valid_cmd(g->cmd) ||
		   ((g->flags & NLM_F_DUMP) == NLM_F_DUMP && !has_dump(g->cmd))) {
		if (e != EOPNOTSUPP && e != EINVAL) {
			st.unexpected++;
			sample("%s (no such op) [%s]: %s", cmdname(g->cmd), g->mut, errname(e));
		}
	} else if (!documented(g->cmd, e)) {
		if (e == ERANGE && r.bad_off) {
			/* a policy length/range check abi.md does not list */
			if (st.noted < 3 || verbose)
				sample("note: %s [%s]: ERANGE '%s' (offset %u): not in abi.md for this command",
				       cmdname(g->cmd), g->mut, r.extack, r.bad_off);
			st.noted++;
		} else {
			st.unexpected++;
			sample("%s [%s]: %s '%s' (undocumented)", cmdname(g->cmd),
			       g->mut, errname(e), r.extack);
		}
	}

	/* an error ack echoes the request: KEY_DATA must not come back */
	if (e && r.echo && g->cmd == QKD_CMD_KEY_ADD) {
		const struct nlattr *d = find_last(g->attrs, g->alen, QKD_A_KEYS_DATA);

		if (d && nla_plen(d) >= QKD_KEY_SIZE_MIN) {
			size_t off = NLMSG_HDRLEN + GENL_HDRLEN +
				     (size_t)((const uint8_t *)nla_payload(d) - g->attrs);

			if (off + nla_plen(d) <= r.echo_len &&
			    !memcmp(r.echo_req + off, nla_payload(d), nla_plen(d))) {
				if (!st.echo_leaks)
					sample("KEY_ADD [%s] -> %s '%s': the error ack echoed %zu key bytes",
					       g->mut, errname(e), r.extack, nla_plen(d));
				st.echo_leaks++;
			}
		}
	}

	/* follow the state */
	if (!e && g->cmd == QKD_CMD_KEY_ADD) {
		struct kadd k;

		parse_key_add(g, &k);
		if (k.slot >= 0 && streams[k.slot].ks && !g->len_delta) {
			uint32_t ks = streams[k.slot].ks, n = k.len / ks;

			if (k.len % ks || !n) {
				st.unexpected++;
				sample("KEY_ADD [%s]: accepted %u bytes for key size %u",
				       g->mut, k.len, ks);
			}
			st.pushed_keys += n;
			if (verbose)
				printf("# push: slot %d first %llu n %u ks %u pattern %d [%s]\n",
				       k.slot, (unsigned long long)k.first, n, ks, k.pattern, g->mut);
			if (!k.pattern)
				streams[k.slot].pattern_ok = false;
			resync(s);
			if (streams[k.slot].next != k.first + n) {
				st.unexpected++;
				sample("KEY_ADD [%s]: first %llu + %u keys, next_index now %llu",
				       g->mut, (unsigned long long)k.first, n,
				       (unsigned long long)streams[k.slot].next);
			}
		} else {
			st.push_uncertain = true;
			if (k.slot >= 0)
				streams[k.slot].pattern_ok = false;
			resync(s);
		}
	}
	if (!e && (g->cmd == QKD_CMD_LINK_NEW || g->cmd == QKD_CMD_LINK_DEL ||
		   g->cmd == QKD_CMD_STREAM_NEW || g->cmd == QKD_CMD_STREAM_DEL))
		resync(s);
	return e;
}

/* ------------------------------------------------------------ snapshot */

struct snap {
	uint8_t *b;
	size_t len, cap;
};

static void snap_cb(void *ctx, uint8_t cmd, const uint8_t *a, size_t len)
{
	struct snap *sn = ctx;

	if (sn->len + len + 1 > sn->cap) {
		size_t c = (sn->len + len + 1) * 2;
		uint8_t *n = realloc(sn->b, c);

		if (!n)
			return;
		sn->b = n;
		sn->cap = c;
	}
	sn->b[sn->len++] = cmd;
	memcpy(sn->b + sn->len, a, len);
	sn->len += len;
}

static int take_snap(struct nlsock *s, struct snap *sn)
{
	int e;

	sn->len = 0;
	e = nls_req(s, QKD_CMD_STATUS_GET, 0, NULL, snap_cb, sn, NULL);
	if (!e)
		e = nls_req(s, QKD_CMD_LINK_GET, NLM_F_DUMP, NULL, snap_cb, sn, NULL);
	if (!e)
		e = nls_req(s, QKD_CMD_STREAM_GET, NLM_F_DUMP, NULL, snap_cb, sn, NULL);
	return e;
}

/* ------------------------------------------------------------ phases */

static struct tap tap;
static uint64_t opt_count = 20000, opt_ucount;
static double opt_time = 30;

static void print_stats(const char *who)
{
	printf("# %s: sent %llu, accepted %llu, rejected %llu, ignored (no request/bad length) %llu, no answer %llu, unexpected %llu, notes %llu\n",
	       who, (unsigned long long)st.sent, (unsigned long long)st.accepted,
	       (unsigned long long)st.rejected, (unsigned long long)st.ignored,
	       (unsigned long long)st.unanswered,
	       (unsigned long long)st.unexpected, (unsigned long long)st.noted);
	print_errnos("genl answers by errno", st.by_errno);
	if (st.ioctls) {
		printf("# %s: ioctls %llu, ok %llu, unexpected %llu, keys delivered %llu (%llu used up by a faulting copy), pushed %llu, polls %llu\n",
		       who, (unsigned long long)st.ioctls, (unsigned long long)st.ioctl_ok,
		       (unsigned long long)st.ioctl_unexpected,
		       (unsigned long long)st.delivered,
		       (unsigned long long)st.fault_consumed,
		       (unsigned long long)st.pushed_keys,
		       (unsigned long long)st.polls);
		print_errnos("ioctl results by errno", st.ioctl_by_errno);
		printf("# %s: genl per command ok/err:", who);
		for (unsigned int c = 0; c <= QKD_CMD_STATUS_GET; c++)
			printf(" %s=%llu/%llu", cmdname(c), (unsigned long long)st.by_cmd_ok[c],
			       (unsigned long long)st.by_cmd_err[c]);
		printf("\n");
	}
	for (int i = 0; i < st.nsamples; i++)
		printf("#   %s\n", st.samples[i].text);
	fflush(stdout);
}

static void phase_root(void)
{
	struct qkd_status before, after;
	struct iofuzz io;
	struct nlsock s;
	struct gen *g = calloc(1, sizeof(*g));
	uint64_t end = nlr_now_ns() + (uint64_t)(opt_time * 1e9);
	bool ok;

	memset(&st, 0, sizeof(st));
	if (nls_open(&s) || nls_resolve(&s)) {
		tap_result(&tap, false, "root: family %s resolved", QKD_FAMILY_NAME);
		return;
	}
	tap_result(&tap, true, "root: family %s resolved (id %u)", QKD_FAMILY_NAME, s.family);
	for (int i = 0; i < N_SID; i++)
		stream_forget(i);
	resync(&s);
	io.fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	io.keybuf = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	io.ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	io.guard = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	io.argpage = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (io.fd < 0 || io.keybuf == MAP_FAILED || io.ro == MAP_FAILED ||
	    io.guard == MAP_FAILED || io.argpage == MAP_FAILED ||
	    mprotect(io.ro, 4096, PROT_READ)) {
		tap_result(&tap, false, "root: open /dev/qkd: %s", strerror(errno));
		return;
	}
	mprotect(io.guard + 4096, 4096, PROT_NONE);
	if (nls_status(&s, &before)) {
		tap_result(&tap, false, "root: STATUS_GET");
		return;
	}
	while (st.sent + st.ioctls < opt_count && nlr_now_ns() < end) {
		if (chance(70) || io.fd < 0)
			fuzz_one(&s, g, true);
		else
			fuzz_ioctl(&io);
		/* keep the store from filling up or going empty */
		if (!(st.sent % 1500) && chance(50))
			resync(&s);
	}
	if (io.fd >= 0)
		close(io.fd);
	print_stats("root");
	tap_result(&tap, st.unexpected == 0,
		   "root genl: %llu messages, every error documented for its command, unknown ops never accepted (%llu unexpected)",
		   (unsigned long long)st.sent, (unsigned long long)st.unexpected);
	tap_result(&tap, st.unanswered == 0,
		   "root genl: every request with NLM_F_ACK answered (%llu without answer)",
		   (unsigned long long)st.unanswered);
	tap_result(&tap, st.ioctl_unexpected == 0 && st.poll_bad == 0,
		   "root ioctl: %llu ioctls, every error documented (%llu unexpected, %llu bad poll)",
		   (unsigned long long)st.ioctls, (unsigned long long)st.ioctl_unexpected,
		   (unsigned long long)st.poll_bad);
	tap_result(&tap, st.key_bad == 0 && st.key_dup == 0,
		   "root ioctl: %llu delivered keys are the pushed bytes with the right key ID, no index twice (%llu bad, %llu duplicate)",
		   (unsigned long long)st.delivered, (unsigned long long)st.key_bad,
		   (unsigned long long)st.key_dup);
	ok = !nls_status(&s, &after) &&
	     after.added == after.delivered + after.flushed + after.stored &&
	     after.delivered - before.delivered == st.delivered &&
	     (st.push_uncertain || after.added - before.added == st.pushed_keys);
	printf("# root: node counters before added %llu delivered %llu flushed %llu stored %llu; after %llu %llu %llu %llu (%u links, %u streams)\n",
	       (unsigned long long)before.added, (unsigned long long)before.delivered,
	       (unsigned long long)before.flushed, (unsigned long long)before.stored,
	       (unsigned long long)after.added, (unsigned long long)after.delivered,
	       (unsigned long long)after.flushed, (unsigned long long)after.stored,
	       after.links, after.streams);
	tap_result(&tap, ok,
		   "root: added = delivered + flushed + stored; deltas: added %llu = pushes accepted %llu%s, delivered %llu = ioctls %llu",
		   (unsigned long long)(after.added - before.added),
		   (unsigned long long)st.pushed_keys, st.push_uncertain ? " (uncertain)" : "",
		   (unsigned long long)(after.delivered - before.delivered),
		   (unsigned long long)st.delivered);
	/*
	 * The netlink core echoes a request rejected by the policy (before
	 * the handler can wipe it) to its sender, unless the socket sets
	 * NETLINK_CAP_ACK: the sender's own bytes, documented in abi.md. A
	 * figure, not a failure.
	 */
	printf("# note: %llu error acks echoed the sender's own KEY_DATA (no NETLINK_CAP_ACK here; see Documentation/abi.md)\n",
	       (unsigned long long)st.echo_leaks);
	nls_close(&s);
	free(g);
}

struct child_result {
	int open_rdwr, open_rdonly;	/* errno of open(/dev/qkd) */
	int mcast;			/* errno of joining events (0: joined) */
	int setup;			/* errno of the privilege drop, 0 ok */
	uint64_t sent, accepted, rejected, noanswer, eperm;
	uint64_t by_errno[160];
	char first_accepted[200];
};

static int write_map(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	close(fd);
	return n < 0 ? -errno : 0;
}

static void child_unpriv(int wfd, bool userns, uint64_t seed)
{
	struct child_result cr;
	struct nlsock s;
	struct gen *g = calloc(1, sizeof(*g));
	uint64_t end = nlr_now_ns() + (uint64_t)(opt_time * 1e9);
	int fd, grp;

	memset(&cr, 0, sizeof(cr));
	/* open nothing: close every descriptor but stdio and the result pipe */
	if (dup2(wfd, 3) < 0)
		_exit(2);
	for (int i = 4; i < 1024; i++)
		close(i);
	wfd = 3;
	if (setgroups(0, NULL) || setgid(65534) || setuid(65534))
		cr.setup = errno;
	/* setuid() made us non-dumpable: /proc/self would stay root's */
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	if (!cr.setup && userns) {
		int e;

		if (unshare(CLONE_NEWUSER | CLONE_NEWNET))
			cr.setup = errno;
		else if ((e = write_map("/proc/self/setgroups", "deny")) ||
			 (e = write_map("/proc/self/uid_map", "0 65534 1")) ||
			 (e = write_map("/proc/self/gid_map", "0 65534 1")))
			cr.setup = -e;
	}
	if (cr.setup)
		goto out;
	fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	cr.open_rdwr = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	fd = open("/dev/qkd", O_RDONLY | O_CLOEXEC);
	cr.open_rdonly = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	if (nls_open(&s) || nls_resolve(&s)) {
		cr.setup = ENOENT;
		goto out;
	}
	grp = (int)s.mcgrp;
	cr.mcast = setsockopt(s.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp,
			      sizeof(grp)) ? errno : 0;
	memset(&st, 0, sizeof(st));
	rng = seed;
	while (st.sent < opt_ucount && nlr_now_ns() < end) {
		int e = fuzz_one(&s, g, false);

		if (e == 0 && !cr.first_accepted[0])
			snprintf(cr.first_accepted, sizeof(cr.first_accepted),
				 "%s flags 0x%x [%.150s]", cmdname(g->cmd), g->flags, g->mut);
		if (e == EPERM)
			cr.eperm++;
	}
	cr.sent = st.sent;
	cr.accepted = st.accepted;
	cr.rejected = st.rejected;
	cr.noanswer = st.sent - st.accepted - st.rejected;
	memcpy(cr.by_errno, st.by_errno, sizeof(cr.by_errno));
out:
	if (write(wfd, &cr, sizeof(cr)) != sizeof(cr))
		_exit(3);
	_exit(0);
}

static void phase_unpriv(bool userns, uint64_t seed)
{
	const char *who = userns ? "userns" : "user";
	struct child_result cr;
	struct snap a = { 0 }, b = { 0 };
	struct nlsock s;
	int p[2], status;
	pid_t pid;
	bool same;

	if (nls_open(&s) || nls_resolve(&s) || take_snap(&s, &b) || pipe(p)) {
		tap_result(&tap, false, "%s: setup (family, snapshot)", who);
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(p[0]);
		child_unpriv(p[1], userns, seed);
	}
	close(p[1]);
	memset(&cr, 0, sizeof(cr));
	if (read(p[0], &cr, sizeof(cr)) != sizeof(cr))
		cr.setup = EIO;
	close(p[0]);
	waitpid(pid, &status, 0);
	if (cr.setup) {
		tap_result(&tap, false, "%s: dropping privileges%s: %s", who,
			   userns ? " and unshare(CLONE_NEWUSER|CLONE_NEWNET)" : "",
			   strerror(cr.setup));
		return;
	}
	printf("# %s: sent %llu, accepted %llu, rejected %llu (EPERM %llu), no answer %llu\n",
	       who, (unsigned long long)cr.sent, (unsigned long long)cr.accepted,
	       (unsigned long long)cr.rejected, (unsigned long long)cr.eperm,
	       (unsigned long long)cr.noanswer);
	print_errnos("rejections by errno", cr.by_errno);
	tap_result(&tap, cr.open_rdwr == EACCES && cr.open_rdonly == EACCES,
		   "%s: open(/dev/qkd) fails with EACCES (O_RDWR: %s, O_RDONLY: %s)",
		   who, errname(cr.open_rdwr), errname(cr.open_rdonly));
	/*
	 * The events group is governed by CAP_NET_ADMIN over the netns's user
	 * namespace (abi.md): refused to nobody, allowed to the owner of a
	 * user+net namespace for that (empty) namespace.
	 */
	tap_result(&tap, cr.mcast == (userns ? 0 : EPERM),
		   "%s: joining the events group: %s (got %s)", who,
		   userns ? "allowed in its own netns" : "refused with EPERM",
		   errname(cr.mcast));
	tap_result(&tap, cr.accepted == 0 && cr.sent > 0,
		   "%s: all %llu genl messages rejected (%llu accepted%s%s)", who,
		   (unsigned long long)cr.sent, (unsigned long long)cr.accepted,
		   cr.first_accepted[0] ? ", first: " : "", cr.first_accepted);
	same = !take_snap(&s, &a) && a.len == b.len && !memcmp(a.b, b.b, a.len);
	tap_result(&tap, same,
		   "%s: the store of this netns is unchanged (STATUS_GET, link and stream dumps: %zu bytes)",
		   who, b.len);
	free(a.b);
	free(b.b);
	nls_close(&s);
}

/* Remove what the root phase created. */
static void cleanup(void)
{
	struct nlsock s;
	uint8_t ab[64];
	struct nlmsgb m;

	if (nls_open(&s) || nls_resolve(&s))
		return;
	resync(&s);
	for (int i = 0; i < n_link_ids; i++) {
		mb_init(&m, ab, sizeof(ab));
		mb_u32(&m, QKD_A_LINK_ID, link_ids[i]);
		nls_req(&s, QKD_CMD_LINK_DEL, 0, &m, NULL, NULL, NULL);
	}
	nls_close(&s);
}

int main(int argc, char **argv)
{
	const char *mode = "all";
	uint64_t seed = (uint64_t)time(NULL);
	bool keep = false;
	int c;

	while ((c = getopt(argc, argv, "n:u:t:s:m:kvh")) != -1) {
		switch (c) {
		case 'n': opt_count = strtoull(optarg, NULL, 0); break;
		case 'u': opt_ucount = strtoull(optarg, NULL, 0); break;
		case 't': opt_time = strtod(optarg, NULL); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'm': mode = optarg; break;
		case 'k': keep = true; break;
		case 'v': verbose = true; break;
		default:
			fprintf(stderr, "usage: %s [-n COUNT] [-u COUNT] [-t SECONDS] [-s SEED] [-m root|user|userns|all] [-k] [-v]\n",
				argv[0]);
			return 2;
		}
	}
	rng = seed ? seed : 1;
	if (!opt_ucount)
		opt_ucount = opt_count;
	for (int i = 0; i < N_SID; i++)
		for (int j = 0; j < QKD_STREAM_ID_LEN; j++)
			sid_pool[i][j] = (uint8_t)(0x51 + i * 37 + j * 11) | 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# fuzz_genl: mode %s, seed %llu, count %llu (unprivileged %llu), time %.0f s per phase\n",
	       mode, (unsigned long long)seed, (unsigned long long)opt_count,
	       (unsigned long long)opt_ucount, opt_time);
	if (getuid() != 0) {
		printf("# must run as root\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "root") || !strcmp(mode, "all"))
		phase_root();
	if (!strcmp(mode, "user") || !strcmp(mode, "all"))
		phase_unpriv(false, seed + 1);
	if (!strcmp(mode, "userns") || !strcmp(mode, "all"))
		phase_unpriv(true, seed + 2);
	if (!keep)
		cleanup();
	tap_end(&tap);
	return tap.fail ? 1 : 0;
}
