/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Raw generic netlink helpers for the robustness tests: no libnl, so that a
 * fuzzer can build malformed messages byte by byte. Every function is
 * static inline so that each program uses what it needs.
 */
#ifndef QKD_ROBUST_NLRAW_H
#define QKD_ROBUST_NLRAW_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/qkd.h>

/* The largest attribute set's maximum (ABI 2 has one set per object). */
#define QKD_NLR_MAXATTR	QKD_A_SA_MAX
#include <linux/qkd_dev.h>
#include <qkd/ids.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NLM_F_CAPPED
#define NLM_F_CAPPED 0x100
#endif
#ifndef NLM_F_ACK_TLVS
#define NLM_F_ACK_TLVS 0x200
#endif

#define NLR_BUF_MAX (96 * 1024)

struct nlsock {
	int fd;
	uint32_t seq;
	uint32_t portid;
	uint16_t family;
	uint32_t mcgrp;
	uint8_t *rx;
	uint8_t *echo;	/* copy of the last echoed request */
};

/* What came back for one request. */
struct nlresp {
	bool acked;		/* an NLMSG_ERROR (ack or error) with our seq */
	bool dump_done;		/* NLMSG_DONE with our seq */
	int err;		/* the errno (positive), 0 on success */
	int nreplies;		/* data messages with our seq */
	int nother;		/* messages with another seq (split garbage) */
	bool echo;		/* the error ack echoed the request */
	uint32_t bad_off;	/* NLMSGERR_ATTR_OFFS, or 0 */
	char extack[160];	/* NLMSGERR_ATTR_MSG */
	const uint8_t *echo_req; /* the echoed request (until the next request) */
	size_t echo_len;
	bool timeout;		/* a dump did not finish */
};

/* Called for each data message (after the genl header) with our seq. */
typedef void (*nlr_reply_cb)(void *ctx, uint8_t cmd, const uint8_t *attrs,
			     size_t len);

static inline uint64_t nlr_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int nls_open(struct nlsock *s)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	socklen_t sl = sizeof(sa);
	int one = 1, buf = 1 << 20;

	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (s->fd < 0)
		return -errno;
	if (bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    getsockname(s->fd, (struct sockaddr *)&sa, &sl)) {
		int e = -errno;

		close(s->fd);
		return e;
	}
	s->portid = sa.nl_pid;
	setsockopt(s->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	if (setsockopt(s->fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf)))
		setsockopt(s->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	s->rx = malloc(NLR_BUF_MAX * 2);
	s->echo = malloc(NLR_BUF_MAX * 2);
	s->seq = (uint32_t)nlr_now_ns() & 0xffff;
	return s->rx && s->echo ? 0 : -ENOMEM;
}

static inline void nls_close(struct nlsock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->rx);
	free(s->echo);
	s->fd = -1;
	s->rx = NULL;
	s->echo = NULL;
}

/* ------------------------------------------------------------ builder */

struct nlmsgb {
	uint8_t *b;
	size_t len;
	size_t cap;
};

static inline void mb_init(struct nlmsgb *m, uint8_t *buf, size_t cap)
{
	m->b = buf;
	m->len = 0;
	m->cap = cap;
}

/* Raw bytes, no alignment. Silently truncates at the capacity. */
static inline void mb_raw(struct nlmsgb *m, const void *p, size_t n)
{
	if (m->len + n > m->cap)
		n = m->cap - m->len;
	if (p)
		memcpy(m->b + m->len, p, n);
	else
		memset(m->b + m->len, 0, n);
	m->len += n;
}

static inline void mb_align(struct nlmsgb *m)
{
	size_t pad = NLA_ALIGN(m->len) - m->len;

	mb_raw(m, NULL, pad);
}

static inline void mb_attr(struct nlmsgb *m, uint16_t type, const void *p,
			   size_t n)
{
	struct nlattr a = { .nla_len = (uint16_t)(NLA_HDRLEN + n),
			    .nla_type = type };

	mb_raw(m, &a, sizeof(a));
	mb_raw(m, p, n);
	mb_align(m);
}

static inline void mb_u8(struct nlmsgb *m, uint16_t t, uint8_t v) { mb_attr(m, t, &v, 1); }
static inline void mb_u16(struct nlmsgb *m, uint16_t t, uint16_t v) { mb_attr(m, t, &v, 2); }
static inline void mb_u32(struct nlmsgb *m, uint16_t t, uint32_t v) { mb_attr(m, t, &v, 4); }
static inline void mb_u64(struct nlmsgb *m, uint16_t t, uint64_t v) { mb_attr(m, t, &v, 8); }
static inline void mb_str(struct nlmsgb *m, uint16_t t, const char *s)
{
	mb_attr(m, t, s, strlen(s) + 1);
}

/* A whole genl request around attribute bytes @attrs. */
static inline size_t nlr_build(uint8_t *out, size_t cap, uint16_t family,
			       uint16_t flags, uint32_t seq, uint8_t cmd,
			       uint8_t version, uint16_t reserved,
			       const uint8_t *attrs, size_t alen)
{
	struct nlmsghdr *nlh = (struct nlmsghdr *)out;
	struct genlmsghdr *g = (struct genlmsghdr *)(out + NLMSG_HDRLEN);
	size_t len = NLMSG_HDRLEN + GENL_HDRLEN + alen;

	if (len > cap)
		len = cap;
	memset(out, 0, NLMSG_HDRLEN + GENL_HDRLEN);
	nlh->nlmsg_len = (uint32_t)len;
	nlh->nlmsg_type = family;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	g->cmd = cmd;
	g->version = version;
	g->reserved = reserved;
	memcpy(out + NLMSG_HDRLEN + GENL_HDRLEN, attrs,
	       len - NLMSG_HDRLEN - GENL_HDRLEN);
	return len;
}

/* ------------------------------------------------------------ parsing */

static inline const struct nlattr *nlr_attr_find(const uint8_t *p, size_t len,
						 uint16_t type)
{
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)p;
		size_t al = a->nla_len, step = NLA_ALIGN(al);

		if (al < NLA_HDRLEN || al > len)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		if (step >= len)
			break;
		p += step;
		len -= step;
	}
	return NULL;
}

static inline const void *nla_payload(const struct nlattr *a)
{
	return (const uint8_t *)a + NLA_HDRLEN;
}

static inline size_t nla_plen(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

static inline bool nlr_get_u32(const uint8_t *p, size_t len, uint16_t t,
			       uint32_t *v)
{
	const struct nlattr *a = nlr_attr_find(p, len, t);

	if (!a || nla_plen(a) != 4)
		return false;
	memcpy(v, nla_payload(a), 4);
	return true;
}

static inline bool nlr_get_u64(const uint8_t *p, size_t len, uint16_t t,
			       uint64_t *v)
{
	const struct nlattr *a = nlr_attr_find(p, len, t);

	if (!a || nla_plen(a) != 8)
		return false;
	memcpy(v, nla_payload(a), 8);
	return true;
}

/* A uint attribute: 4 or 8 bytes, the shortest the value fits in. */
static inline bool nlr_get_uint(const uint8_t *p, size_t len, uint16_t t,
				uint64_t *v)
{
	const struct nlattr *a = nlr_attr_find(p, len, t);
	uint32_t v32;

	if (a && nla_plen(a) == 4) {
		memcpy(&v32, nla_payload(a), 4);
		*v = v32;
		return true;
	}
	return nlr_get_u64(p, len, t, v);
}

static inline void nlr_parse_err(struct nlresp *r, const struct nlmsghdr *h,
				 uint8_t *echo_buf)
{
	const struct nlmsgerr *e = NLMSG_DATA(h);
	size_t plen = h->nlmsg_len - NLMSG_HDRLEN, off;

	if (plen < sizeof(*e))
		return;
	r->err = -e->error;
	r->acked = true;
	off = sizeof(*e);
	if (!(h->nlmsg_flags & NLM_F_CAPPED) && e->error) {
		size_t ol = e->msg.nlmsg_len;

		r->echo = true;
		r->echo_len = ol <= plen - sizeof(*e) + sizeof(e->msg) ?
			      ol : plen - sizeof(*e) + sizeof(e->msg);
		if (r->echo_len > NLR_BUF_MAX * 2)
			r->echo_len = NLR_BUF_MAX * 2;
		memcpy(echo_buf, &e->msg, r->echo_len);
		r->echo_req = echo_buf;
		off = sizeof(*e) - sizeof(e->msg) + NLMSG_ALIGN(ol);
	}
	if ((h->nlmsg_flags & NLM_F_ACK_TLVS) && off < plen) {
		const uint8_t *tlv = (const uint8_t *)e + off;
		const struct nlattr *a;
		uint32_t o;

		a = nlr_attr_find(tlv, plen - off, NLMSGERR_ATTR_MSG);
		if (a && nla_plen(a)) {
			size_t n = nla_plen(a) < sizeof(r->extack) - 1 ?
				   nla_plen(a) : sizeof(r->extack) - 1;

			memcpy(r->extack, nla_payload(a), n);
			r->extack[n] = 0;
		}
		if (nlr_get_u32(tlv, plen - off, NLMSGERR_ATTR_OFFS, &o))
			r->bad_off = o;
	}
}

/*
 * Send one buffer (one or more messages, possibly malformed), then collect
 * what the kernel queued. Requests are handled synchronously in sendmsg(),
 * so whatever answer there is has been queued when it returns; a dump goes
 * on in recvmsg(), so a started dump is read to its NLMSG_DONE.
 */
static inline int nls_txrx(struct nlsock *s, const void *msg, size_t len,
			   uint32_t seq, struct nlresp *r, nlr_reply_cb cb,
			   void *ctx)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	bool in_dump = false;
	ssize_t n;

	memset(r, 0, sizeof(*r));
	if (sendto(s->fd, msg, len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		n = recv(s->fd, s->rx, NLR_BUF_MAX * 2, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = s->fd, .events = POLLIN };

			if (!in_dump || r->dump_done || r->acked)
				break;
			if (poll(&p, 1, 3000) <= 0) {
				r->timeout = true;
				break;
			}
			continue;
		}
		if (n < 0)
			return -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)s->rx;
		     NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq) {
				r->nother++;
				continue;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				nlr_parse_err(r, h, s->echo);
			} else if (h->nlmsg_type == NLMSG_DONE) {
				int e = 0;

				r->dump_done = true;
				if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(int))
					memcpy(&e, NLMSG_DATA(h), sizeof(e));
				r->err = -e;
				if (e && (h->nlmsg_flags & NLM_F_ACK_TLVS)) {
					const uint8_t *t = (uint8_t *)NLMSG_DATA(h) + sizeof(int);
					size_t tl = h->nlmsg_len - NLMSG_HDRLEN - sizeof(int);
					const struct nlattr *a = nlr_attr_find(t, tl, NLMSGERR_ATTR_MSG);

					if (a && nla_plen(a))
						snprintf(r->extack, sizeof(r->extack), "%.*s",
							 (int)nla_plen(a), (const char *)nla_payload(a));
				}
			} else {
				const struct genlmsghdr *g = NLMSG_DATA(h);
				size_t pl = h->nlmsg_len - NLMSG_HDRLEN;

				if (h->nlmsg_flags & NLM_F_MULTI)
					in_dump = true;
				r->nreplies++;
				if (cb && pl >= GENL_HDRLEN)
					cb(ctx, g->cmd, (const uint8_t *)g + GENL_HDRLEN,
					   pl - GENL_HDRLEN);
			}
		}
	}
	return 0;
}

/* A well-formed request: returns -errno of the answer (0: ok). */
static inline int nls_req(struct nlsock *s, uint8_t cmd, uint16_t flags,
			  const struct nlmsgb *attrs, nlr_reply_cb cb, void *ctx,
			  struct nlresp *rout)
{
	static _Thread_local uint8_t buf[NLR_BUF_MAX];
	struct nlresp r;
	uint32_t seq = ++s->seq;
	size_t len;
	int e;

	len = nlr_build(buf, sizeof(buf), s->family,
			NLM_F_REQUEST | NLM_F_ACK | flags, seq, cmd,
			QKD_FAMILY_VERSION, 0, attrs ? attrs->b : NULL,
			attrs ? attrs->len : 0);
	e = nls_txrx(s, buf, len, seq, &r, cb, ctx);
	if (rout)
		*rout = r;
	if (e)
		return e;
	if (!r.acked && !r.dump_done)
		return -ETIMEDOUT;
	return -r.err;
}

struct nlr_family_ctx {
	uint16_t id;
	uint32_t mcgrp;
};

static inline void nlr_family_cb(void *ctx, uint8_t cmd, const uint8_t *a,
				 size_t len)
{
	struct nlr_family_ctx *f = ctx;
	const struct nlattr *id = nlr_attr_find(a, len, CTRL_ATTR_FAMILY_ID);
	const struct nlattr *grps = nlr_attr_find(a, len, CTRL_ATTR_MCAST_GROUPS);

	(void)cmd;
	if (id && nla_plen(id) >= 2)
		memcpy(&f->id, nla_payload(id), 2);
	if (grps) {
		const uint8_t *p = nla_payload(grps);
		size_t l = nla_plen(grps);

		/* nested: one nest per group with NAME and ID */
		while (l >= NLA_HDRLEN) {
			const struct nlattr *g = (const struct nlattr *)p;
			const struct nlattr *nm, *gid;

			if (g->nla_len < NLA_HDRLEN || g->nla_len > l)
				break;
			nm = nlr_attr_find(nla_payload(g), nla_plen(g), CTRL_ATTR_MCAST_GRP_NAME);
			gid = nlr_attr_find(nla_payload(g), nla_plen(g), CTRL_ATTR_MCAST_GRP_ID);
			if (nm && gid && !strcmp(nla_payload(nm), QKD_MCGRP_EVENTS))
				memcpy(&f->mcgrp, nla_payload(gid), 4);
			if ((size_t)NLA_ALIGN(g->nla_len) >= l)
				break;
			l -= NLA_ALIGN(g->nla_len);
			p += NLA_ALIGN(g->nla_len);
		}
	}
}

/* Look up family "qkd": sets s->family and s->mcgrp. */
static inline int nls_resolve(struct nlsock *s)
{
	uint8_t ab[64];
	struct nlmsgb m;
	struct nlr_family_ctx f = { 0 };
	uint16_t save = s->family;
	int e;

	mb_init(&m, ab, sizeof(ab));
	mb_str(&m, CTRL_ATTR_FAMILY_NAME, QKD_FAMILY_NAME);
	s->family = GENL_ID_CTRL;
	e = nls_req(s, CTRL_CMD_GETFAMILY, 0, &m, nlr_family_cb, &f, NULL);
	s->family = e ? save : f.id;
	s->mcgrp = f.mcgrp;
	if (!e && !f.id)
		e = -ENOENT;
	return e;
}

/* ------------------------------------------------------------ keys */

static inline uint64_t nlr_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* The bytes every test pushes for (stream, index): checkable on delivery. */
static inline void key_pattern(const uint8_t sid[QKD_STREAM_ID_LEN],
			       uint64_t index, uint8_t *out, uint32_t len)
{
	uint64_t seed = 0, x = 0;
	uint32_t i;

	for (i = 0; i < QKD_STREAM_ID_LEN; i++)
		seed = seed * 131 + sid[i];
	for (i = 0; i < len; i++) {
		if (!(i & 7))
			x = nlr_mix(seed ^ nlr_mix(index) ^ ((uint64_t)i << 48));
		out[i] = (uint8_t)(x >> (8 * (i & 7)));
	}
}

/* The counters of STATUS_GET. */
struct qkd_status {
	uint64_t added, delivered, flushed, stored, bytes;
	uint32_t links, streams;
	bool ok;
};

static inline void nlr_status_cb(void *ctx, uint8_t cmd, const uint8_t *a,
				 size_t len)
{
	struct qkd_status *st = ctx;

	const struct nlattr *stats = nlr_attr_find(a, len, QKD_A_STATUS_STATS);
	const uint8_t *sp = stats ? nla_payload(stats) : NULL;
	size_t sl = stats ? nla_plen(stats) : 0;

	(void)cmd;
	/* the counters are a nest of uint (4 or 8 bytes) */
	st->ok = stats &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_KEYS_ADDED, &st->added) &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_KEYS_DELIVERED, &st->delivered) &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_KEYS_FLUSHED, &st->flushed) &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_KEYS_STORED, &st->stored) &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_BYTES_STORED, &st->bytes) &&
		 nlr_get_u32(a, len, QKD_A_STATUS_LINKS, &st->links) &&
		 nlr_get_u32(a, len, QKD_A_STATUS_STREAMS, &st->streams);
}

static inline int nls_status(struct nlsock *s, struct qkd_status *st)
{
	int e;

	memset(st, 0, sizeof(*st));
	e = nls_req(s, QKD_CMD_STATUS_GET, 0, NULL, nlr_status_cb, st, NULL);
	if (!e && !st->ok)
		e = -EBADMSG;
	return e;
}

/* ------------------------------------------------------------ TAP */

struct tap {
	int n, pass, fail;
};

static inline void tap_result(struct tap *t, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void tap_result(struct tap *t, bool ok, const char *fmt, ...)
{
	va_list ap;

	t->n++;
	if (ok)
		t->pass++;
	else
		t->fail++;
	printf("%sok %d - ", ok ? "" : "not ", t->n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static inline void tap_end(const struct tap *t)
{
	printf("1..%d\n%d passed, %d failed\n", t->n, t->pass, t->fail);
	fflush(stdout);
}

#endif /* QKD_ROBUST_NLRAW_H */
