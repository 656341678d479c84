// SPDX-License-Identifier: GPL-2.0-only
/*
 * failnth: allocation-failure sweep of qkd.ko with /proc/thread-self/fail-nth.
 *
 *   failnth [-b BATCH] [-m MAX_N (4000)] [-N NETNS_MAX_N (0: none)]
 *           [-S NETNS_STRIDE (1)] [-o OP] [-v]
 *
 * For each operation (push, get, get-by-id, get into an unfaulted buffer,
 * flush, link/stream create, change and delete, status, open, netns
 * create+exit), for n = 1, 2, 3, ...: prepare the state without faults, make
 * the n-th allocation of the operation's syscall fail (fail-nth counts every
 * slab and page allocation of this thread, the kernel's and the module's),
 * then check:
 *  - a syscall that reports an error changed nothing (the object is not
 *    created or deleted, no key is stored, taken or dropped);
 *  - a syscall that succeeds did all of it (a lost event is fine);
 *  - the node's counters add up and match a ledger the test keeps itself:
 *    pushed = delivered + flushed + stored, pushed and delivered as counted
 *    here, stored as the streams report;
 *  - the kernel reports nothing (run-vm.sh scans dmesg, the debug kernel
 *    panics on a WARN).
 * The sweep of an operation ends at the first n whose fault was not
 * consumed: the operation then ran without a fault and must succeed. The
 * figure printed per operation is n - 1, the allocations the syscall makes,
 * and how the faulted runs ended (clean error, success despite the fault,
 * ACK lost). Creating a netns makes thousands of allocations: its sweep
 * runs to the end too (no limit unless -N), every NETNS_STRIDE-th of them
 * (-S; 1: all), each success filling the new node and checking its counters
 * before the netns is left to die with its keys.
 *
 * One case is ambiguous by netlink's design: when the allocation of the
 * ACK itself fails, the request took effect but the sender only sees
 * ENOBUFS on its socket. Then the state decides, and the ledger must still
 * add up.
 *
 * Runs as root in a network namespace of its own. Needs a kernel with
 * CONFIG_FAULT_INJECTION, CONFIG_FAILSLAB and CONFIG_FAIL_PAGE_ALLOC (the
 * debug VM kernel): elsewhere each operation runs once without a fault (a
 * check of the operations and the ledger) and the sweep is a SKIP. It sets
 * the failslab and fail_page_alloc debugfs knobs so that sleeping
 * allocations count, and restores them at the end.
 */
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "nlraw.h"

#define KS 32
#define MAIN_MAX_KEYS 4096
#define EXTRA_KEYS 4
#define DBG "/sys/kernel/debug"

static const uint8_t main_sid[QKD_STREAM_ID_LEN] = {
	0xfa, 0x11, 0x07, 0x00, 0x00, 0x00, 0x40, 0x00,
	0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t extra_sid[QKD_STREAM_ID_LEN] = {
	0xfa, 0x11, 0x07, 0x00, 0x00, 0x00, 0x40, 0x00,
	0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02 };

static struct tap tap;
static bool verbose;
static unsigned int batch = 16, max_n = 4000, netns_max_n, netns_stride = 1;
static int fn_fd = -1;		/* /proc/thread-self/fail-nth */
static bool dry;		/* no fail-nth: each operation once, no fault */
static struct nlsock ctl;	/* requests, in the test netns */
static struct nlsock evs;	/* a member of the events group */
static int qkd_fd = -1;		/* /dev/qkd, in the test netns */
static int test_ns = -1;	/* the test netns */
static uint32_t main_link;
static uint8_t keybuf[QKD_KEY_BATCH_MAX_BYTES];

/* What the test knows happened, to compare with the node's counters. */
static struct {
	uint64_t added, delivered;
} ledger;

/* ------------------------------------------------------------ fail-nth */

static void die(const char *what, int err)
{
	printf("Bail out! %s: %s\n", what, strerror(err));
	exit(1);
}

static void arm(unsigned int n)
{
	char b[16];
	int l = snprintf(b, sizeof(b), "%u", n);

	if (dry)
		return;
	if (pwrite(fn_fd, b, (size_t)l, 0) != l)
		die("write fail-nth", errno);
}

/* Disarm; returns what was left (0: the fault was injected). */
static unsigned int disarm(void)
{
	char b[16];
	ssize_t r;
	int e;

	if (dry)
		return 1;
	r = pread(fn_fd, b, sizeof(b) - 1, 0);
	e = errno;
	if (pwrite(fn_fd, "0", 1, 0) != 1)
		die("reset fail-nth", errno);
	if (r <= 0)
		die("read fail-nth", r < 0 ? e : EIO);
	b[r] = 0;
	return (unsigned int)strtoul(b, NULL, 10);
}

/* debugfs knobs: sleeping allocations, highmem and order 0 count too. */
struct knob {
	const char *path, *value;
	char saved[32];
	bool ok;
};

static struct knob knobs[] = {
	{ DBG "/failslab/ignore-gfp-wait", "N", "", false },
	{ DBG "/failslab/verbose", "0", "", false },
	{ DBG "/fail_page_alloc/ignore-gfp-wait", "N", "", false },
	{ DBG "/fail_page_alloc/ignore-gfp-highmem", "N", "", false },
	{ DBG "/fail_page_alloc/min-order", "0", "", false },
	{ DBG "/fail_page_alloc/verbose", "0", "", false },
};

/* Debugfs attribute files are not seekable: one open to read, one to write. */
static bool knob_rw(const char *path, char *old, size_t oldsz, const char *val)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return false;
	r = read(fd, old, oldsz - 1);
	old[r > 0 ? r : 0] = 0;
	old[strcspn(old, "\n")] = 0;
	close(fd);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	r = write(fd, val, strlen(val));
	close(fd);
	if (r != (ssize_t)strlen(val))
		printf("# %s: cannot write %s\n", path, val);
	return r == (ssize_t)strlen(val);
}

static bool knobs_set(void)
{
	bool all = true;

	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		knobs[i].ok = knob_rw(knobs[i].path, knobs[i].saved,
				      sizeof(knobs[i].saved), knobs[i].value);
		all &= knobs[i].ok;
	}
	return all;
}

static void knobs_restore(void)
{
	char dummy[32];

	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++)
		if (knobs[i].ok && knobs[i].saved[0])
			knob_rw(knobs[i].path, dummy, sizeof(dummy), knobs[i].saved);
}

static void kmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void kmsg(const char *fmt, ...)
{
	char b[200];
	va_list ap;
	int fd, l;

	va_start(ap, fmt);
	l = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, b, (size_t)l) < 0)
		l = 0;
	close(fd);
}

/* ------------------------------------------------------------ genl */

/* The outcome of one request, possibly under a fault. */
struct out {
	int send_err;		/* sendto() failed with this errno */
	bool acked;
	int err;		/* errno of the ACK (0: success) */
	bool ack_lost;		/* ENOBUFS on the socket instead of an ACK */
	unsigned int left;	/* fail-nth after the syscall */
	char extack[160];
};

static bool out_ok(const struct out *o)
{
	return !o->send_err && o->acked && !o->err;
}

static bool out_failed(const struct out *o)
{
	return o->send_err || (o->acked && o->err);
}

/* Send one request with the n-th allocation failing (n = 0: none). */
static void request(struct nlsock *s, uint8_t cmd, const struct nlmsgb *attrs,
		    unsigned int n, struct out *o, nlr_reply_cb cb, void *ctx)
{
	static uint8_t buf[NLR_BUF_MAX];
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	uint32_t seq = ++s->seq;
	size_t len;
	ssize_t r;
	int e;

	memset(o, 0, sizeof(*o));
	len = nlr_build(buf, sizeof(buf), s->family, NLM_F_REQUEST | NLM_F_ACK,
			seq, cmd, QKD_FAMILY_VERSION, 0, attrs ? attrs->b : NULL,
			attrs ? attrs->len : 0);
	if (n)
		arm(n);
	r = sendto(s->fd, buf, len, 0, (struct sockaddr *)&sa, sizeof(sa));
	e = errno;
	o->left = n ? disarm() : 1;
	/* The request may hold keys: the kernel wiped its copy, wipe ours. */
	memset(buf, 0, len);
	if (r < 0) {
		o->send_err = e;
		return;
	}
	/* A do request is answered within sendto(): read what is queued. */
	for (;;) {
		ssize_t n_rx = recv(s->fd, s->rx, NLR_BUF_MAX * 2, MSG_DONTWAIT);

		if (n_rx < 0 && errno == EINTR)
			continue;
		if (n_rx < 0 && errno == ENOBUFS) {
			o->ack_lost = true;
			continue;
		}
		if (n_rx < 0)
			break;
		for (struct nlmsghdr *h = (struct nlmsghdr *)s->rx;
		     NLMSG_OK(h, (size_t)n_rx); h = NLMSG_NEXT(h, n_rx)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlresp rr = { 0 };

				nlr_parse_err(&rr, h, s->echo);
				o->acked = true;
				o->err = rr.err;
				memcpy(o->extack, rr.extack, sizeof(o->extack));
			} else if (cb && h->nlmsg_len >= NLMSG_HDRLEN + GENL_HDRLEN) {
				cb(ctx, ((struct genlmsghdr *)NLMSG_DATA(h))->cmd,
				   (uint8_t *)NLMSG_DATA(h) + GENL_HDRLEN,
				   h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN);
			}
		}
	}
	/* An ACK that was lost is not an error of the request. */
	if (o->acked)
		o->ack_lost = false;
}

/* A request without faults that must succeed. */
static int must(struct nlsock *s, uint8_t cmd, const struct nlmsgb *attrs,
		nlr_reply_cb cb, void *ctx)
{
	struct out o;

	request(s, cmd, attrs, 0, &o, cb, ctx);
	if (o.send_err)
		return -o.send_err;
	if (!o.acked)
		return -ETIMEDOUT;
	return -o.err;
}

static void drain_events(void)
{
	while (recv(evs.fd, evs.rx, NLR_BUF_MAX * 2, MSG_DONTWAIT) > 0 ||
	       errno == ENOBUFS || errno == EINTR)
		;
}

/* ------------------------------------------------------------ store */

struct stream_info {
	bool found;
	uint32_t stored;
	uint64_t next_index, max_keys;
};

static void stream_cb(void *ctx, uint8_t cmd, const uint8_t *a, size_t len)
{
	struct stream_info *si = ctx;
	uint32_t mk = 0;

	(void)cmd;
	si->found = nlr_get_u32(a, len, QKD_A_STREAM_STORED_KEYS, &si->stored) &&
		    nlr_get_u64(a, len, QKD_A_STREAM_NEXT_INDEX, &si->next_index);
	if (nlr_get_u32(a, len, QKD_A_STREAM_MAX_KEYS, &mk))
		si->max_keys = mk;
}

static int stream_get(struct nlsock *s, const uint8_t *sid, struct stream_info *si)
{
	uint8_t ab[64];
	struct nlmsgb m;
	int e;

	memset(si, 0, sizeof(*si));
	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, QKD_STREAM_ID_LEN);
	e = must(s, QKD_CMD_STREAM_GET, &m, stream_cb, si);
	if (e == -ENOENT)
		return 0;
	if (!e && !si->found)
		e = -EBADMSG;
	return e;
}

static void link_id_cb(void *ctx, uint8_t cmd, const uint8_t *a, size_t len)
{
	(void)cmd;
	nlr_get_u32(a, len, QKD_A_LINK_ID, ctx);
}

/* 1: the link exists, 0: not, <0: error. */
static int link_exists(struct nlsock *s, const char *name, uint32_t *id)
{
	uint8_t ab[64];
	struct nlmsgb m;
	uint32_t lid = 0;
	int e;

	mb_init(&m, ab, sizeof(ab));
	mb_str(&m, QKD_A_LINK_NAME, name);
	e = must(s, QKD_CMD_LINK_GET, &m, link_id_cb, &lid);
	if (e == -ENOENT)
		return 0;
	if (e)
		return e;
	if (id)
		*id = lid;
	return 1;
}

static void link_new_msg(struct nlmsgb *m, uint8_t *ab, size_t cap,
			 const char *name)
{
	mb_init(m, ab, cap);
	mb_str(m, QKD_A_LINK_NAME, name);
	mb_str(m, QKD_A_LINK_PEER, "failnth-peer");
	mb_u8(m, QKD_A_LINK_ROLE, QKD_LINK_ROLE_INITIATOR);
}

static int link_new(struct nlsock *s, const char *name, uint32_t *id)
{
	uint8_t ab[128];
	struct nlmsgb m;
	int e;

	link_new_msg(&m, ab, sizeof(ab), name);
	e = must(s, QKD_CMD_LINK_NEW, &m, link_id_cb, id);
	if (!e) {
		mb_init(&m, ab, sizeof(ab));
		mb_u32(&m, QKD_A_LINK_ID, *id);
		mb_u8(&m, QKD_A_LINK_STATE, QKD_LINK_STATE_UP);
		e = must(s, QKD_CMD_LINK_SET, &m, NULL, NULL);
	}
	return e;
}

static int link_del(struct nlsock *s, const char *name)
{
	uint8_t ab[64];
	struct nlmsgb m;

	mb_init(&m, ab, sizeof(ab));
	mb_str(&m, QKD_A_LINK_NAME, name);
	return must(s, QKD_CMD_LINK_DEL, &m, NULL, NULL);
}

static void stream_new_msg(struct nlmsgb *m, uint8_t *ab, size_t cap,
			   const uint8_t *sid, uint32_t link, uint32_t max_keys)
{
	mb_init(m, ab, cap);
	mb_attr(m, QKD_A_STREAM_ID, sid, QKD_STREAM_ID_LEN);
	mb_u32(m, QKD_A_STREAM_LINK_ID, link);
	mb_u32(m, QKD_A_STREAM_KEY_SIZE, KS);
	mb_u32(m, QKD_A_STREAM_MAX_KEYS, max_keys);
	mb_u32(m, QKD_A_STREAM_LOW_WATER, 2);
}

static int stream_new(struct nlsock *s, const uint8_t *sid, uint32_t link,
		      uint32_t max_keys)
{
	uint8_t ab[128];
	struct nlmsgb m;

	stream_new_msg(&m, ab, sizeof(ab), sid, link, max_keys);
	return must(s, QKD_CMD_STREAM_NEW, &m, NULL, NULL);
}

static int sid_cmd(struct nlsock *s, uint8_t cmd, const uint8_t *sid)
{
	uint8_t ab[64];
	struct nlmsgb m;

	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, QKD_STREAM_ID_LEN);
	return must(s, cmd, &m, NULL, NULL);
}

/* The KEY_ADD request of @n keys at @first (the key bytes are wiped by
 * request() once sent; @kb holds them meanwhile and is wiped here after).
 */
static size_t push_msg(struct nlmsgb *m, uint8_t *ab, size_t cap,
		       const uint8_t *sid, uint64_t first, uint32_t n)
{
	mb_init(m, ab, cap);
	mb_attr(m, QKD_A_STREAM_ID, sid, QKD_STREAM_ID_LEN);
	mb_u64(m, QKD_A_KEYS_FIRST_INDEX, first);
	for (uint32_t i = 0; i < n; i++)
		key_pattern(sid, first + i, keybuf + (size_t)i * KS, KS);
	mb_attr(m, QKD_A_KEYS_DATA, keybuf, (size_t)n * KS);
	memset(keybuf, 0, (size_t)n * KS);
	return m->len;
}

static uint8_t reqbuf[QKD_KEY_BATCH_MAX_BYTES + 256];

/* Push @n keys without faults, at the stream's next index. */
static int push_plain(struct nlsock *s, const uint8_t *sid, uint32_t n)
{
	struct stream_info si;
	struct nlmsgb m;
	int e = stream_get(s, sid, &si);

	if (e || !si.found)
		return e ? e : -ENOENT;
	push_msg(&m, reqbuf, sizeof(reqbuf), sid, si.next_index, n);
	e = must(s, QKD_CMD_KEY_ADD, &m, NULL, NULL);
	memset(reqbuf, 0, m.len);
	if (!e && s == &ctl)
		ledger.added += n;
	return e;
}

/* ------------------------------------------------------------ checks */

/*
 * The node's counters against the ledger: pushed and delivered as counted
 * here, stored as the streams report, flushed what is left.
 */
static bool counters_ok(const char *op, unsigned int n)
{
	struct qkd_status st;
	struct stream_info a, b;
	uint64_t stored;
	int e = nls_status(&ctl, &st);

	if (!e)
		e = stream_get(&ctl, main_sid, &a);
	if (!e)
		e = stream_get(&ctl, extra_sid, &b);
	if (e) {
		tap_result(&tap, false, "%s n=%u: STATUS_GET/STREAM_GET: %s", op, n,
			   strerror(-e));
		return false;
	}
	stored = (a.found ? a.stored : 0) + (b.found ? b.stored : 0);
	if (st.added != st.delivered + st.flushed + st.stored ||
	    st.added != ledger.added || st.delivered != ledger.delivered ||
	    st.stored != stored || st.bytes != st.stored * KS) {
		tap_result(&tap, false,
			   "%s n=%u: counters: added %llu (ledger %llu) delivered %llu (ledger %llu) flushed %llu stored %llu (streams %llu) bytes %llu",
			   op, n, (unsigned long long)st.added,
			   (unsigned long long)ledger.added,
			   (unsigned long long)st.delivered,
			   (unsigned long long)ledger.delivered,
			   (unsigned long long)st.flushed,
			   (unsigned long long)st.stored,
			   (unsigned long long)stored,
			   (unsigned long long)st.bytes);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------ operations */

/*
 * An operation: prepare() sets the state up without faults; attempt() runs
 * the one syscall under fault n and reports whether it reported success,
 * an error, or (genl) a lost ACK; effect() tells from the state whether the
 * operation took effect; settle() updates the ledger from the effect and
 * restores the state for the next round.
 */
enum result { RES_OK, RES_ERR, RES_UNKNOWN };

struct op {
	const char *name;
	int (*prepare)(void);
	enum result (*attempt)(unsigned int n, unsigned int *left, int *err);
	int (*effect)(void);	/* 1: took effect, 0: not, <0: error */
	int (*settle)(bool took_effect);
};

static enum result genl_result(const struct out *o, unsigned int *left, int *err)
{
	*left = o->left;
	*err = o->send_err ? o->send_err : o->err;
	if (out_ok(o))
		return RES_OK;
	if (out_failed(o))
		return RES_ERR;
	*err = ENOBUFS;
	return RES_UNKNOWN;
}

/* -- push: KEY_ADD of a batch at the main stream's next index */

static struct stream_info push_before;

static int push_prepare(void)
{
	int e = stream_get(&ctl, main_sid, &push_before);

	if (!e && push_before.stored + batch > MAIN_MAX_KEYS) {
		e = sid_cmd(&ctl, QKD_CMD_KEY_FLUSH, main_sid);
		if (!e)
			e = stream_get(&ctl, main_sid, &push_before);
	}
	return e;
}

static enum result push_attempt(unsigned int n, unsigned int *left, int *err)
{
	struct nlmsgb m;
	struct out o;

	push_msg(&m, reqbuf, sizeof(reqbuf), main_sid, push_before.next_index, batch);
	request(&ctl, QKD_CMD_KEY_ADD, &m, n, &o, NULL, NULL);
	memset(reqbuf, 0, m.len);
	return genl_result(&o, left, err);
}

static int push_effect(void)
{
	struct stream_info si;
	int e = stream_get(&ctl, main_sid, &si);

	if (e)
		return e;
	if (si.next_index == push_before.next_index && si.stored == push_before.stored)
		return 0;
	if (si.next_index == push_before.next_index + batch &&
	    si.stored == push_before.stored + batch)
		return 1;
	printf("# push: half a batch? next %llu -> %llu, stored %u -> %u\n",
	       (unsigned long long)push_before.next_index,
	       (unsigned long long)si.next_index, push_before.stored, si.stored);
	return -EPROTO;
}

static int push_settle(bool took)
{
	if (took)
		ledger.added += batch;
	return 0;
}

/* -- get: GET_KEY (lowest index), GET_KEY_BY_ID (by key ID), and GET_KEY
 * into a buffer not yet faulted in, whose page fault may fail (EFAULT: the
 * key must go back to its slot).
 */

static struct stream_info get_before;
static uint64_t get_index;
static int get_mode;	/* 0: GET_KEY, 1: by key ID, 2: unfaulted buffer */
static uint8_t get_buf[4096];
static bool get_delivered;

static int get_prepare(void)
{
	int e = stream_get(&ctl, main_sid, &get_before);

	if (!e && get_before.stored + 1 > MAIN_MAX_KEYS) {
		e = sid_cmd(&ctl, QKD_CMD_KEY_FLUSH, main_sid);
		if (!e)
			e = stream_get(&ctl, main_sid, &get_before);
	}
	if (e)
		return e;
	/* One fresh key at the top; by key ID takes that one. */
	get_index = get_before.next_index;
	e = push_plain(&ctl, main_sid, 1);
	if (!e)
		e = stream_get(&ctl, main_sid, &get_before);
	memset(get_buf, 0, sizeof(get_buf));
	get_delivered = false;
	return e;
}

static enum result get_attempt(unsigned int n, unsigned int *left, int *err)
{
	struct qkd_key_request req = { .size = sizeof(req) };
	uint8_t *buf = get_buf, *map = NULL;
	unsigned long cmd = QKD_IOC_GET_KEY;
	long r;
	int e;

	memcpy(req.stream_id, main_sid, QKD_STREAM_ID_LEN);
	if (get_mode == 1) {
		cmd = QKD_IOC_GET_KEY_BY_ID;
		req.flags = QKD_KEY_F_BY_KEY_ID;
		qkd_key_id_from_index(req.key_id, main_sid, get_index);
	}
	if (get_mode == 2) {
		map = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (map == MAP_FAILED)
			die("mmap", errno);
		buf = map;
	}
	req.key_len = KS;
	req.key_ptr = (uint64_t)(uintptr_t)buf;
	arm(n);
	r = ioctl(qkd_fd, cmd, &req);
	e = errno;
	*left = disarm();
	*err = r ? e : 0;
	if (!r) {
		uint8_t want[KS];

		key_pattern(main_sid, req.index, want, KS);
		if (memcmp(want, buf, KS)) {
			printf("# get: wrong key bytes at index %llu\n",
			       (unsigned long long)req.index);
			*err = EPROTO;
			r = -1;
		}
		memset(want, 0, sizeof(want));
		if (get_mode == 1 && req.index != get_index) {
			printf("# get-by-id: index %llu, asked %llu\n",
			       (unsigned long long)req.index,
			       (unsigned long long)get_index);
			*err = EPROTO;
			r = -1;
		}
	}
	memset(buf, 0, KS);
	if (map)
		munmap(map, 4096);
	get_delivered = !r;
	return r ? RES_ERR : RES_OK;
}

static int get_effect(void)
{
	struct stream_info si;
	int e = stream_get(&ctl, main_sid, &si);

	if (e)
		return e;
	if (si.stored == get_before.stored)
		return 0;
	if (si.stored + 1 == get_before.stored)
		return get_delivered ? 1 : -EPROTO;	/* a key lost */
	return -EPROTO;
}

static int get_settle(bool took)
{
	if (took)
		ledger.delivered++;
	return 0;
}

/* -- flush: KEY_FLUSH of the main stream */

static struct stream_info flush_before;

static int flush_prepare(void)
{
	int e = 0;

	if (stream_get(&ctl, main_sid, &flush_before) || flush_before.stored < 4)
		e = push_plain(&ctl, main_sid, 4);
	if (!e)
		e = stream_get(&ctl, main_sid, &flush_before);
	return e;
}

static enum result flush_attempt(unsigned int n, unsigned int *left, int *err)
{
	uint8_t ab[64];
	struct nlmsgb m;
	struct out o;

	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, main_sid, QKD_STREAM_ID_LEN);
	request(&ctl, QKD_CMD_KEY_FLUSH, &m, n, &o, NULL, NULL);
	return genl_result(&o, left, err);
}

static int flush_effect(void)
{
	struct stream_info si;
	int e = stream_get(&ctl, main_sid, &si);

	if (e)
		return e;
	if (si.stored == flush_before.stored)
		return 0;
	return si.stored == 0 ? 1 : -EPROTO;
}

static int flush_settle(bool took)
{
	(void)took;
	return 0;
}

/* -- link-new, link-del (with a stream holding keys) */

#define XLINK "failnth-x"

static int link_absent(void)
{
	int e = link_exists(&ctl, XLINK, NULL);

	if (e == 1)
		e = link_del(&ctl, XLINK);
	return e;
}

static enum result link_new_attempt(unsigned int n, unsigned int *left, int *err)
{
	uint8_t ab[128];
	struct nlmsgb m;
	struct out o;

	link_new_msg(&m, ab, sizeof(ab), XLINK);
	request(&ctl, QKD_CMD_LINK_NEW, &m, n, &o, NULL, NULL);
	return genl_result(&o, left, err);
}

static int link_effect_exists(void)
{
	return link_exists(&ctl, XLINK, NULL);
}

static int link_new_settle(bool took)
{
	return took ? link_del(&ctl, XLINK) : 0;
}

static int link_del_prepare(void)
{
	uint32_t id;
	int e = link_absent();

	if (!e)
		e = link_new(&ctl, XLINK, &id);
	if (!e)
		e = stream_new(&ctl, extra_sid, id, 64);
	if (!e)
		e = push_plain(&ctl, extra_sid, EXTRA_KEYS);
	return e;
}

static enum result link_del_attempt(unsigned int n, unsigned int *left, int *err)
{
	uint8_t ab[64];
	struct nlmsgb m;
	struct out o;

	mb_init(&m, ab, sizeof(ab));
	mb_str(&m, QKD_A_LINK_NAME, XLINK);
	request(&ctl, QKD_CMD_LINK_DEL, &m, n, &o, NULL, NULL);
	return genl_result(&o, left, err);
}

static int link_effect_gone(void)
{
	int e = link_exists(&ctl, XLINK, NULL);

	return e < 0 ? e : !e;
}

static int link_del_settle(bool took)
{
	return took ? 0 : link_del(&ctl, XLINK);
}

/* -- stream-new, stream-set, stream-del (holding keys), on the main link */

static int stream_absent(void)
{
	struct stream_info si;
	int e = stream_get(&ctl, extra_sid, &si);

	if (!e && si.found)
		e = sid_cmd(&ctl, QKD_CMD_STREAM_DEL, extra_sid);
	return e;
}

static enum result stream_new_attempt(unsigned int n, unsigned int *left, int *err)
{
	uint8_t ab[128];
	struct nlmsgb m;
	struct out o;

	stream_new_msg(&m, ab, sizeof(ab), extra_sid, main_link, 64);
	request(&ctl, QKD_CMD_STREAM_NEW, &m, n, &o, NULL, NULL);
	return genl_result(&o, left, err);
}

static int stream_effect_exists(void)
{
	struct stream_info si;
	int e = stream_get(&ctl, extra_sid, &si);

	return e ? e : si.found;
}

static int stream_effect_gone(void)
{
	int e = stream_effect_exists();

	return e < 0 ? e : !e;
}

static int stream_new_settle(bool took)
{
	return took ? sid_cmd(&ctl, QKD_CMD_STREAM_DEL, extra_sid) : 0;
}

static int stream_full_prepare(void)
{
	int e = stream_absent();

	if (!e)
		e = stream_new(&ctl, extra_sid, main_link, 64);
	if (!e)
		e = push_plain(&ctl, extra_sid, EXTRA_KEYS);
	return e;
}

static enum result stream_del_attempt(unsigned int n, unsigned int *left, int *err)
{
	uint8_t ab[64];
	struct nlmsgb m;
	struct out o;

	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, extra_sid, QKD_STREAM_ID_LEN);
	request(&ctl, QKD_CMD_STREAM_DEL, &m, n, &o, NULL, NULL);
	return genl_result(&o, left, err);
}

static int stream_del_settle(bool took)
{
	return took ? 0 : sid_cmd(&ctl, QKD_CMD_STREAM_DEL, extra_sid);
}

static enum result stream_set_attempt(unsigned int n, unsigned int *left, int *err)
{
	uint8_t ab[64];
	struct nlmsgb m;
	struct out o;

	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, extra_sid, QKD_STREAM_ID_LEN);
	mb_u32(&m, QKD_A_STREAM_MAX_KEYS, 128);
	request(&ctl, QKD_CMD_STREAM_SET, &m, n, &o, NULL, NULL);
	return genl_result(&o, left, err);
}

static int stream_set_effect(void)
{
	struct stream_info si;
	int e = stream_get(&ctl, extra_sid, &si);

	if (e || !si.found)
		return e ? e : -ENOENT;
	return si.max_keys == 128;
}

static int stream_set_settle(bool took)
{
	(void)took;
	return sid_cmd(&ctl, QKD_CMD_STREAM_DEL, extra_sid);
}

/* -- status: STATUS_GET (read only: must fail or answer, nothing else) */

static int nothing(void)
{
	return 0;
}

static int no_effect(void)
{
	return 0;
}

static int no_settle(bool took)
{
	(void)took;
	return 0;
}

static enum result status_attempt(unsigned int n, unsigned int *left, int *err)
{
	struct qkd_status st = { 0 };
	struct out o;

	request(&ctl, QKD_CMD_STATUS_GET, NULL, n, &o, nlr_status_cb, &st);
	if (out_ok(&o) && !st.ok) {
		o.err = EBADMSG;
		o.acked = true;
	}
	return genl_result(&o, left, err);
}

/* -- open: open("/dev/qkd") */

static enum result open_attempt(unsigned int n, unsigned int *left, int *err)
{
	int fd, e;

	arm(n);
	fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	e = errno;
	*left = disarm();
	*err = fd < 0 ? e : 0;
	if (fd >= 0)
		close(fd);
	return fd < 0 ? RES_ERR : RES_OK;
}

/* -- netns: unshare(CLONE_NEWNET); when it worked, fill the new node's
 * store (a link, a stream, keys), check its counters, and leave it: its
 * exit deletes everything.
 */

static enum result netns_attempt(unsigned int n, unsigned int *left, int *err)
{
	int r, e;

	arm(n);
	r = unshare(CLONE_NEWNET);
	e = errno;
	*left = disarm();
	*err = r ? e : 0;
	return r ? RES_ERR : RES_OK;
}

static int netns_in_new;

static int netns_effect(void)
{
	struct stat a, b;

	if (stat("/proc/thread-self/ns/net", &a))
		return -errno;
	if (fstat(test_ns, &b))
		return -errno;
	netns_in_new = a.st_ino != b.st_ino;
	return netns_in_new;
}

static int netns_settle(bool took)
{
	struct nlsock s;
	struct qkd_status st;
	uint32_t id = 0;
	int e;

	if (!took)
		return 0;
	e = nls_open(&s);
	if (!e)
		e = nls_resolve(&s);
	if (!e)
		e = link_new(&s, "failnth-ns", &id);
	if (!e)
		e = stream_new(&s, extra_sid, id, 64);
	if (!e)
		e = push_plain(&s, extra_sid, EXTRA_KEYS);
	if (!e)
		e = nls_status(&s, &st);
	/* a new node: its ledger is the push above */
	if (!e && (st.added != EXTRA_KEYS || st.stored != EXTRA_KEYS ||
		   st.added != st.delivered + st.flushed + st.stored ||
		   st.bytes != st.stored * KS || st.links != 1 || st.streams != 1)) {
		printf("# netns: new node: added %llu delivered %llu flushed %llu stored %llu bytes %llu, %u links, %u streams\n",
		       (unsigned long long)st.added, (unsigned long long)st.delivered,
		       (unsigned long long)st.flushed, (unsigned long long)st.stored,
		       (unsigned long long)st.bytes, st.links, st.streams);
		e = -EPROTO;
	}
	nls_close(&s);
	if (setns(test_ns, CLONE_NEWNET) && !e)
		e = -errno;
	return e;
}

static const struct op ops[] = {
	{ "push", push_prepare, push_attempt, push_effect, push_settle },
	{ "get", get_prepare, get_attempt, get_effect, get_settle },
	{ "get-by-id", get_prepare, get_attempt, get_effect, get_settle },
	{ "get-unfaulted-buffer", get_prepare, get_attempt, get_effect, get_settle },
	{ "flush", flush_prepare, flush_attempt, flush_effect, flush_settle },
	{ "link-new", link_absent, link_new_attempt, link_effect_exists, link_new_settle },
	{ "link-del", link_del_prepare, link_del_attempt, link_effect_gone, link_del_settle },
	{ "stream-new", stream_absent, stream_new_attempt, stream_effect_exists,
	  stream_new_settle },
	{ "stream-set", stream_full_prepare, stream_set_attempt, stream_set_effect,
	  stream_set_settle },
	{ "stream-del", stream_full_prepare, stream_del_attempt, stream_effect_gone,
	  stream_del_settle },
	{ "status", nothing, status_attempt, no_effect, no_settle },
	{ "open", nothing, open_attempt, no_effect, no_settle },
	{ "netns", nothing, netns_attempt, netns_effect, netns_settle },
};

/* Sweep one operation; returns the number of faults injected. */
static void sweep(const struct op *op)
{
	unsigned int n, clean = 0, despite = 0, lost = 0, limit, stride = 1, tries = 0;
	char why[200] = "";
	uint64_t t0 = nlr_now_ns();
	bool ok = true, done = false;

	limit = max_n;
	if (!strcmp(op->name, "netns")) {
		limit = netns_max_n ? netns_max_n : UINT32_MAX - 1;
		stride = netns_stride;
	}
	get_mode = !strcmp(op->name, "get-by-id") ? 1 :
		   !strcmp(op->name, "get-unfaulted-buffer") ? 2 : 0;
	kmsg("qkd-failnth: start %s\n", op->name);
	for (n = 1; n <= limit && ok; n += stride) {
		unsigned int left = 0;
		enum result r;
		int err = 0, eff, e;

		tries++;
		e = op->prepare();
		if (e) {
			snprintf(why, sizeof(why), "n=%u: prepare: %s", n, strerror(-e));
			ok = false;
			break;
		}
		drain_events();
		r = op->attempt(n, &left, &err);
		eff = op->effect();
		if (eff < 0) {
			snprintf(why, sizeof(why), "n=%u: state after the attempt: %s",
				 n, strerror(-eff));
			ok = false;
			break;
		}
		if (verbose)
			printf("# %s n=%u: %s (%s), left %u, effect %d\n", op->name, n,
			       r == RES_OK ? "ok" : r == RES_ERR ? "error" : "ack lost",
			       strerror(err), left, eff);
		/* Read-only operations: "took effect" means it answered. */
		if (op->effect == no_effect && r == RES_OK)
			eff = 1;
		if (r == RES_OK && !eff) {
			snprintf(why, sizeof(why), "n=%u: success reported, nothing done", n);
			ok = false;
		} else if (r == RES_ERR && eff) {
			snprintf(why, sizeof(why),
				 "n=%u: %s reported, but the operation took effect",
				 n, strerror(err));
			ok = false;
		} else if (left && r != RES_OK) {
			snprintf(why, sizeof(why), "n=%u: no fault injected, yet %s",
				 n, strerror(err));
			ok = false;
		}
		e = op->settle(eff > 0);
		if (e && ok) {
			snprintf(why, sizeof(why), "n=%u: restoring the state: %s", n,
				 strerror(-e));
			ok = false;
		}
		if (!counters_ok(op->name, n))
			ok = false;
		if (!ok)
			break;
		if (left) {
			done = true;
			break;
		}
		if (r == RES_ERR)
			clean++;
		else if (r == RES_OK)
			despite++;
		else
			lost++;
	}
	drain_events();
	/* A partial sweep (the limit) is reported, not failed. */
	if (ok && !done)
		snprintf(why, sizeof(why), "PARTIAL: stopped at the limit of %u faults",
			 limit);
	if (dry) {
		tap_result(&tap, ok && done, "%s: once without faults%s%s", op->name,
			   why[0] ? ": " : "", why);
		return;
	}
	/* done: the n-th was not consumed, the syscall makes fewer than n */
	printf("# %-22s %4u faults injected%s: %u failed cleanly, %u succeeded anyway, %u ACKs lost (%.1f s)%s\n",
	       op->name, tries - done, stride > 1 ? " (every one in a stride)" : "",
	       clean, despite, lost, (double)(nlr_now_ns() - t0) / 1e9,
	       done ? "; ran to the end" : "");
	tap_result(&tap, ok, "%s: every allocation failure handled (%u faults%s, %s)%s%s",
		   op->name, tries - done, stride > 1 ? ", strided" : "",
		   done ? "to the end" : "not to the end",
		   why[0] ? ": " : "", why);
	kmsg("qkd-failnth: end %s n=%u\n", op->name, n - 1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: failnth [-b BATCH] [-m MAX_N] [-N NETNS_MAX_N] [-S NETNS_STRIDE] [-o OP] [-v]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *only = NULL;
	int c, e;

	while ((c = getopt(argc, argv, "b:m:N:S:o:v")) != -1) {
		switch (c) {
		case 'b':
			batch = (unsigned int)atoi(optarg);
			break;
		case 'm':
			max_n = (unsigned int)atoi(optarg);
			break;
		case 'N':
			netns_max_n = (unsigned int)atoi(optarg);
			break;
		case 'S':
			netns_stride = (unsigned int)atoi(optarg);
			break;
		case 'o':
			only = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	if (!batch || batch * KS > QKD_KEY_BATCH_MAX_BYTES || batch * 2 > MAIN_MAX_KEYS ||
	    !netns_stride)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("TAP version 13\n");

	/*
	 * Without fail-nth, each operation runs once without a fault: that
	 * checks the operations and the ledger, and the sweep is a SKIP.
	 */
	fn_fd = open("/proc/thread-self/fail-nth", O_RDWR | O_CLOEXEC);
	if (fn_fd < 0) {
		tap_result(&tap, true, "allocation-failure sweep # SKIP no /proc/thread-self/fail-nth (kernel without CONFIG_FAULT_INJECTION)");
		dry = true;
	} else if (!knobs_set()) {
		knobs_restore();
		tap_result(&tap, true, "allocation-failure sweep # SKIP cannot set the failslab/fail_page_alloc debugfs knobs (CONFIG_FAULT_INJECTION_DEBUG_FS, debugfs)");
		dry = true;
	} else {
		atexit(knobs_restore);
	}

	if (unshare(CLONE_NEWNET))
		die("unshare(CLONE_NEWNET)", errno);
	test_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (test_ns < 0)
		die("open the test netns", errno);
	e = nls_open(&ctl);
	if (!e)
		e = nls_resolve(&ctl);
	if (e)
		die("genl family qkd", -e);
	e = nls_open(&evs);
	if (!e)
		e = nls_resolve(&evs);
	if (!e && setsockopt(evs.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
			     &evs.mcgrp, sizeof(evs.mcgrp)))
		e = -errno;
	if (e)
		die("events group", -e);
	qkd_fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	if (qkd_fd < 0)
		die("open /dev/qkd", errno);
	e = link_new(&ctl, "failnth", &main_link);
	if (!e)
		e = stream_new(&ctl, main_sid, main_link, MAIN_MAX_KEYS);
	if (e)
		die("the main link and stream", -e);
	printf("# batch %u keys of %u bytes, fail-nth up to %u (netns: up to %u, 0: to the end; stride %u), events listener on\n",
	       batch, KS, max_n, netns_max_n, netns_stride);

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (only && strcmp(only, ops[i].name))
			continue;
		sweep(&ops[i]);
	}

	/* Leave nothing behind but the store, which the netns exit deletes. */
	close(qkd_fd);
	nls_close(&evs);
	nls_close(&ctl);
	tap_end(&tap);
	return tap.fail ? 1 : 0;
}
