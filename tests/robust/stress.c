// SPDX-License-Identifier: GPL-2.0-only
/*
 * stress: concurrency stress of qkd.ko for a bounded time.
 *
 *   stress [-t SECONDS] [-r READERS] [-e ENDS] [-s SEED] [-v]
 *
 * In one or two fresh network namespaces (the two ends of a link, same
 * stream ID): a pusher pushes the same batches to every end (with gaps now
 * and then), READERS threads per end race GET_KEY and GET_KEY_BY_ID (by
 * index and by key ID) on the same lowest indices, some with a buffer that
 * faults (the key must go back), a churn thread per end creates, fills,
 * reads, flushes and deletes extra streams and links, flushes the main
 * stream and toggles the link, a poller sits in poll(), and an events
 * listener keeps the notification path busy. A ledger of delivered indices
 * (one bit per index) catches any index delivered twice; at the end
 * pushed = delivered + flushed + stored must hold with the node's
 * STATUS_GET counters, and the kernel's counters must match the ledger.
 */
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "nlraw.h"

#define MAX_ENDS 2
#define MAX_READERS 8
#define MAIN_KS 32
#define MAIN_MAX_KEYS 2048
#define LEDGER_BITS (1ull << 25)
#define N_EXTRA 6

static const uint8_t main_sid[QKD_STREAM_ID_LEN] = {
	0x5e, 0x55, 0x00, 0x01, 0x11, 0x22, 0x43, 0x33,
	0x84, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa };

static atomic_bool stop;
static bool verbose;
static int n_ends = 2, n_readers = 2;

struct end {
	int idx;
	uint32_t link_id;
	struct nlsock ctl, push, churn, events;
	int reader_fd[MAX_READERS];
	int poll_fd, churn_fd;
	_Atomic uint64_t *ledger;
	atomic_ullong pushed_keys;	/* accepted by KEY_ADD, every stream */
	atomic_ullong delivered_main, delivered_extra;
	atomic_ullong dup, bad_key, unexpected;
	atomic_ullong efault_back, eagain, enokey, ekeyexpired, enoent_extra;
	atomic_ullong poll_in, poll_err, poll_timeout, poll_bad, events_rx, events_enobufs;
	atomic_ullong flushes, extra_created, extra_deleted, links_deleted;
	atomic_ullong pushed_main;
	_Atomic uint64_t hi_index;	/* next index of the main stream */
	uint8_t extra_sid[QKD_STREAM_ID_LEN];
	atomic_bool extra_valid;
	pthread_mutex_t extra_lock;
	char sample[4][200];
	atomic_int nsample;
};

static struct end ends[MAX_ENDS];
static uint8_t *fault_page;	/* PROT_NONE */

static void end_sample(struct end *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void end_sample(struct end *e, const char *fmt, ...)
{
	int i = atomic_fetch_add(&e->nsample, 1);
	va_list ap;

	atomic_fetch_add(&e->unexpected, 1);
	if (i >= 4 && !verbose)
		return;
	va_start(ap, fmt);
	if (i < 4)
		vsnprintf(e->sample[i], sizeof(e->sample[i]), fmt, ap);
	else
		vprintf(fmt, ap), printf("\n");
	va_end(ap);
}

struct rng {
	uint64_t s;
};

static uint32_t rr(struct rng *r, uint32_t n)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return n ? (uint32_t)((r->s * 0x2545f4914f6cdd1dull) % n) : 0;
}

/* ------------------------------------------------------------ genl */

static int push_keys(struct nlsock *s, const uint8_t *sid, uint32_t ks,
		     uint64_t first, uint32_t n)
{
	static _Thread_local uint8_t ab[QKD_KEY_BATCH_MAX_BYTES + 256];
	static _Thread_local uint8_t data[QKD_KEY_BATCH_MAX_BYTES + 1024];
	struct nlmsgb m;

	if ((size_t)n * ks > QKD_KEY_BATCH_MAX_BYTES)
		n = QKD_KEY_BATCH_MAX_BYTES / ks;

	for (uint32_t i = 0; i < n; i++)
		key_pattern(sid, first + i, data + (size_t)i * ks, ks);
	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, QKD_STREAM_ID_LEN);
	mb_u64(&m, QKD_A_KEYS_FIRST_INDEX, first);
	mb_attr(&m, QKD_A_KEYS_DATA, data, (size_t)n * ks);
	return nls_req(s, QKD_CMD_KEY_ADD, 0, &m, NULL, NULL, NULL);
}

static int sid_cmd(struct nlsock *s, uint8_t cmd, const uint8_t *sid)
{
	uint8_t ab[64];
	struct nlmsgb m;

	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, QKD_STREAM_ID_LEN);
	return nls_req(s, cmd, 0, &m, NULL, NULL, NULL);
}

static int link_new(struct nlsock *s, const char *name, uint8_t role)
{
	uint8_t ab[128];
	struct nlmsgb m;

	mb_init(&m, ab, sizeof(ab));
	mb_str(&m, QKD_A_LINK_NAME, name);
	mb_u8(&m, QKD_A_LINK_ROLE, role);
	return nls_req(s, QKD_CMD_LINK_NEW, 0, &m, NULL, NULL, NULL);
}

static void link_id_cb(void *ctx, uint8_t cmd, const uint8_t *a, size_t len)
{
	(void)cmd;
	nlr_get_u32(a, len, QKD_A_LINK_ID, ctx);
}

static int link_lookup(struct nlsock *s, const char *name, uint32_t *id)
{
	uint8_t ab[64];
	struct nlmsgb m;

	mb_init(&m, ab, sizeof(ab));
	mb_str(&m, QKD_A_LINK_NAME, name);
	return nls_req(s, QKD_CMD_LINK_GET, 0, &m, link_id_cb, id, NULL);
}

static int link_state(struct nlsock *s, uint32_t id, uint8_t state)
{
	uint8_t ab[64];
	struct nlmsgb m;

	mb_init(&m, ab, sizeof(ab));
	mb_u32(&m, QKD_A_LINK_ID, id);
	mb_u8(&m, QKD_A_LINK_STATE, state);
	return nls_req(s, QKD_CMD_LINK_SET, 0, &m, NULL, NULL, NULL);
}

static int link_del(struct nlsock *s, uint32_t id)
{
	uint8_t ab[64];
	struct nlmsgb m;

	mb_init(&m, ab, sizeof(ab));
	mb_u32(&m, QKD_A_LINK_ID, id);
	return nls_req(s, QKD_CMD_LINK_DEL, 0, &m, NULL, NULL, NULL);
}

static int stream_new(struct nlsock *s, const uint8_t *sid, uint32_t link,
		      uint32_t ks, uint32_t max_keys, uint32_t low)
{
	uint8_t ab[128];
	struct nlmsgb m;

	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, QKD_STREAM_ID_LEN);
	mb_u32(&m, QKD_A_STREAM_LINK_ID, link);
	mb_u32(&m, QKD_A_STREAM_KEY_SIZE, ks);
	mb_u32(&m, QKD_A_STREAM_MAX_KEYS, max_keys);
	mb_u32(&m, QKD_A_STREAM_LOW_WATER, low);
	return nls_req(s, QKD_CMD_STREAM_NEW, 0, &m, NULL, NULL, NULL);
}

struct sstats {
	uint64_t added, delivered, flushed, stored, next;
	uint32_t ks;
	bool ok;
};

static void stream_stats_cb(void *ctx, uint8_t cmd, const uint8_t *a, size_t len)
{
	struct sstats *ss = ctx;
	const struct nlattr *stats = nlr_attr_find(a, len, QKD_A_STREAM_STATS);
	const uint8_t *sp = stats ? nla_payload(stats) : NULL;
	size_t sl = stats ? nla_plen(stats) : 0;

	(void)cmd;
	ss->ok = stats &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_KEYS_ADDED, &ss->added) &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_KEYS_DELIVERED, &ss->delivered) &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_KEYS_FLUSHED, &ss->flushed) &&
		 nlr_get_uint(sp, sl, QKD_A_STATS_KEYS_STORED, &ss->stored) &&
		 nlr_get_u64(a, len, QKD_A_STREAM_NEXT_INDEX, &ss->next) &&
		 nlr_get_u32(a, len, QKD_A_STREAM_KEY_SIZE, &ss->ks);
}

/* ------------------------------------------------------------ threads */

static void *pusher(void *arg)
{
	struct rng r = { (uint64_t)(uintptr_t)arg * 7919 + 1 };
	uint64_t next = 0;

	while (!atomic_load(&stop) && next < LEDGER_BITS - 4096) {
		uint32_t n = 1 + rr(&r, 64);
		uint64_t first = next;

		if (!rr(&r, 20))
			first += 1 + rr(&r, 3);	/* skipped indices */
		for (int i = 0; i < n_ends; i++) {
			struct end *e = &ends[i];
			int err;

			while ((err = push_keys(&e->push, main_sid, MAIN_KS, first, n)) == -ENOSPC &&
			       !atomic_load(&stop))
				usleep(2000);
			if (err == -ENOSPC)
				break;
			if (err) {
				end_sample(e, "pusher: KEY_ADD first %llu n %u: %s",
					   (unsigned long long)first, n, strerror(-err));
				continue;
			}
			atomic_fetch_add(&e->pushed_keys, n);
			atomic_fetch_add(&e->pushed_main, n);
			atomic_store(&e->hi_index, first + n);
		}
		next = first + n;
		if (!rr(&r, 8))
			sched_yield();
	}
	return NULL;
}

struct reader_arg {
	struct end *e;
	int fd;
	int id;
};

static void check_delivery(struct end *e, const struct qkd_key_request *req,
			   const uint8_t *key)
{
	uint8_t want[MAIN_KS], kid[QKD_KEY_ID_LEN];
	uint64_t idx = req->index, bit;

	qkd_key_id_from_index(kid, main_sid, idx);
	key_pattern(main_sid, idx, want, MAIN_KS);
	if (req->key_len != MAIN_KS || memcmp(kid, req->key_id, sizeof(kid)) ||
	    memcmp(want, key, MAIN_KS)) {
		atomic_fetch_add(&e->bad_key, 1);
		end_sample(e, "end %d: index %llu: wrong key bytes, key ID or length %u",
			   e->idx, (unsigned long long)idx, req->key_len);
	}
	if (idx >= LEDGER_BITS) {
		end_sample(e, "end %d: index %llu beyond the ledger", e->idx,
			   (unsigned long long)idx);
		return;
	}
	bit = 1ull << (idx & 63);
	if (atomic_fetch_or(&e->ledger[idx / 64], bit) & bit) {
		atomic_fetch_add(&e->dup, 1);
		end_sample(e, "end %d: index %llu delivered twice", e->idx,
			   (unsigned long long)idx);
	}
	atomic_fetch_add(&e->delivered_main, 1);
}

static void *reader(void *arg)
{
	struct reader_arg *ra = arg;
	struct end *e = ra->e;
	struct rng r = { (uint64_t)ra->id * 104729 + (uint64_t)e->idx + 3 };
	uint8_t key[QKD_KEY_SIZE_MAX];

	while (!atomic_load(&stop)) {
		struct qkd_key_request req = { .size = sizeof(req) };
		uint32_t op = rr(&r, 100);
		bool fault = rr(&r, 100) < 5, extra = false;
		unsigned long cmd = QKD_IOC_GET_KEY;
		int err;

		memcpy(req.stream_id, main_sid, QKD_STREAM_ID_LEN);
		if (op < 8 && atomic_load(&e->extra_valid)) {
			pthread_mutex_lock(&e->extra_lock);
			memcpy(req.stream_id, e->extra_sid, QKD_STREAM_ID_LEN);
			pthread_mutex_unlock(&e->extra_lock);
			extra = true;
		} else if (op >= 45) {
			struct qkd_stream_status ss = { .size = sizeof(ss) };
			uint64_t idx;

			memcpy(ss.stream_id, main_sid, QKD_STREAM_ID_LEN);
			if (ioctl(ra->fd, QKD_IOC_STREAM_STATUS, &ss)) {
				end_sample(e, "end %d: STREAM_STATUS: %s", e->idx, strerror(errno));
				continue;
			}
			/* the lowest stored index, which every reader goes for */
			idx = ss.next_index + rr(&r, 3);
			cmd = QKD_IOC_GET_KEY_BY_ID;
			req.index = idx;
			if (op >= 85) {
				req.flags = QKD_KEY_F_BY_KEY_ID;
				qkd_key_id_from_index(req.key_id, main_sid, idx);
				req.index = 0;
			}
		}
		req.key_len = sizeof(key);
		req.key_ptr = fault ? (uintptr_t)fault_page : (uintptr_t)key;
		err = ioctl(ra->fd, cmd, &req) ? errno : 0;
		if (!err && fault) {
			end_sample(e, "end %d: a key was delivered into a PROT_NONE buffer",
				   e->idx);
			continue;
		}
		if (!err) {
			if (extra)
				atomic_fetch_add(&e->delivered_extra, 1);
			else
				check_delivery(e, &req, key);
			continue;
		}
		switch (err) {
		case EFAULT:
			if (fault) {
				atomic_fetch_add(&e->efault_back, 1);
				continue;
			}
			break;
		case EAGAIN:
			if (cmd == QKD_IOC_GET_KEY) {
				atomic_fetch_add(&e->eagain, 1);
				continue;
			}
			break;
		case ENOKEY:
			if (cmd == QKD_IOC_GET_KEY_BY_ID) {
				atomic_fetch_add(&e->enokey, 1);
				continue;
			}
			break;
		case EKEYEXPIRED:
			if (cmd == QKD_IOC_GET_KEY_BY_ID) {
				atomic_fetch_add(&e->ekeyexpired, 1);
				continue;
			}
			break;
		case ENOENT:
			if (extra) {
				atomic_fetch_add(&e->enoent_extra, 1);
				continue;
			}
			break;
		default:
			break;
		}
		end_sample(e, "end %d: reader %s%s%s: %s", e->idx,
			   cmd == QKD_IOC_GET_KEY ? "GET_KEY" : "GET_KEY_BY_ID",
			   extra ? " (extra stream)" : "", fault ? " (faulting buffer)" : "",
			   strerror(err));
	}
	return NULL;
}

static void *churn(void *arg)
{
	struct end *e = arg;
	struct rng r = { (uint64_t)e->idx * 31337 + 5 };
	uint8_t sid[QKD_STREAM_ID_LEN], key[QKD_KEY_SIZE_MAX];
	unsigned int iter = 0;

	while (!atomic_load(&stop)) {
		uint32_t ks = rr(&r, 2) ? 16 : 64, n, link = e->link_id, xlink = 0;
		bool own_link = !rr(&r, 4);
		char name[32];
		int err;

		iter++;
		memcpy(sid, main_sid, sizeof(sid));
		sid[0] = 0xe0;
		sid[1] = (uint8_t)rr(&r, N_EXTRA);
		if (own_link) {
			snprintf(name, sizeof(name), "x%u", iter % 4);
			err = link_new(&e->churn, name, QKD_LINK_ROLE_RESPONDER);
			if (!err)
				err = link_lookup(&e->churn, name, &xlink);
			if (err && err != -EEXIST) {
				end_sample(e, "end %d: churn: LINK_NEW: %s", e->idx, strerror(-err));
				continue;
			}
			if (err == -EEXIST && link_lookup(&e->churn, name, &xlink))
				continue;
			link = xlink;
		}
		err = stream_new(&e->churn, sid, link, ks, 512, rr(&r, 8));
		if (err && err != -EEXIST) {
			end_sample(e, "end %d: churn: STREAM_NEW: %s", e->idx, strerror(-err));
			continue;
		}
		if (!err)
			atomic_fetch_add(&e->extra_created, 1);
		pthread_mutex_lock(&e->extra_lock);
		memcpy(e->extra_sid, sid, sizeof(sid));
		pthread_mutex_unlock(&e->extra_lock);
		atomic_store(&e->extra_valid, true);
		for (int b = 0; b < 3; b++) {
			struct sstats ss = { 0 };
			uint8_t ab[64];
			struct nlmsgb m;

			mb_init(&m, ab, sizeof(ab));
			mb_attr(&m, QKD_A_STREAM_ID, sid, QKD_STREAM_ID_LEN);
			if (nls_req(&e->churn, QKD_CMD_STREAM_GET, 0, &m, stream_stats_cb, &ss, NULL) ||
			    !ss.ok)
				break;
			n = 1 + rr(&r, 40);
			err = push_keys(&e->churn, sid, ss.ks, ss.next + rr(&r, 3), n);
			if (!err)
				atomic_fetch_add(&e->pushed_keys, n);
			else if (err != -ENOSPC && err != -EEXIST)
				end_sample(e, "end %d: churn: KEY_ADD extra: %s", e->idx, strerror(-err));
		}
		for (int k = 0; k < 5; k++) {
			struct qkd_key_request req = { .size = sizeof(req), .key_len = sizeof(key),
						       .key_ptr = (uintptr_t)key };

			memcpy(req.stream_id, sid, sizeof(sid));
			err = ioctl(e->churn_fd, QKD_IOC_GET_KEY, &req) ? errno : 0;
			if (!err)
				atomic_fetch_add(&e->delivered_extra, 1);
			else if (err != EAGAIN)
				end_sample(e, "end %d: churn: GET_KEY extra: %s", e->idx, strerror(err));
		}
		if (!rr(&r, 3)) {
			err = sid_cmd(&e->churn, QKD_CMD_KEY_FLUSH, sid);
			if (err)
				end_sample(e, "end %d: churn: KEY_FLUSH extra: %s", e->idx, strerror(-err));
		}
		usleep(rr(&r, 3000));
		if (own_link && rr(&r, 2)) {
			err = link_del(&e->churn, link);
			if (!err)
				atomic_fetch_add(&e->links_deleted, 1);
			else
				end_sample(e, "end %d: churn: LINK_DEL: %s", e->idx, strerror(-err));
		} else if (rr(&r, 3)) {
			err = sid_cmd(&e->churn, QKD_CMD_STREAM_DEL, sid);
			if (!err)
				atomic_fetch_add(&e->extra_deleted, 1);
			else
				end_sample(e, "end %d: churn: STREAM_DEL: %s", e->idx, strerror(-err));
		}
		if (!(iter % 25)) {
			err = sid_cmd(&e->churn, QKD_CMD_KEY_FLUSH, main_sid);
			if (err)
				end_sample(e, "end %d: churn: KEY_FLUSH main: %s", e->idx, strerror(-err));
			else
				atomic_fetch_add(&e->flushes, 1);
		}
		if (!(iter % 7)) {
			err = link_state(&e->churn, e->link_id, iter % 14 ? QKD_LINK_STATE_DOWN : QKD_LINK_STATE_UP);
			if (err)
				end_sample(e, "end %d: churn: LINK_SET: %s", e->idx, strerror(-err));
		}
	}
	return NULL;
}

static void *poller(void *arg)
{
	struct end *e = arg;
	struct qkd_poll_stream ps = { .size = sizeof(ps) };

	memcpy(ps.stream_id, main_sid, QKD_STREAM_ID_LEN);
	if (ioctl(e->poll_fd, QKD_IOC_SET_POLL_STREAM, &ps)) {
		end_sample(e, "end %d: SET_POLL_STREAM: %s", e->idx, strerror(errno));
		return NULL;
	}
	while (!atomic_load(&stop)) {
		struct pollfd p = { .fd = e->poll_fd, .events = POLLIN };
		int n = poll(&p, 1, 100);

		if (n < 0) {
			end_sample(e, "end %d: poll: %s", e->idx, strerror(errno));
			break;
		}
		if (!n) {
			atomic_fetch_add(&e->poll_timeout, 1);
			continue;
		}
		if (p.revents & ~(POLLIN | POLLRDNORM)) {
			atomic_fetch_add(&e->poll_bad, 1);
			end_sample(e, "end %d: poll on the main stream: revents 0x%x",
				   e->idx, p.revents);
		}
		if (p.revents & POLLIN)
			atomic_fetch_add(&e->poll_in, 1);
		usleep(500);	/* POLLIN stays while keys are stored */
	}
	return NULL;
}

static void *listener(void *arg)
{
	struct end *e = arg;
	uint8_t *buf = malloc(65536);

	while (buf && !atomic_load(&stop)) {
		struct pollfd p = { .fd = e->events.fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 100) <= 0)
			continue;
		n = recv(e->events.fd, buf, 65536, MSG_DONTWAIT);
		if (n < 0 && errno == ENOBUFS)
			atomic_fetch_add(&e->events_enobufs, 1);
		else if (n > 0)
			for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
			     h = NLMSG_NEXT(h, n))
				atomic_fetch_add(&e->events_rx, 1);
	}
	free(buf);
	return NULL;
}

/* ------------------------------------------------------------ setup */

static int setup_end(struct end *e, int idx)
{
	int grp, err;

	e->idx = idx;
	pthread_mutex_init(&e->extra_lock, NULL);
	if (unshare(CLONE_NEWNET)) {
		printf("# unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (nls_open(&e->ctl) || nls_resolve(&e->ctl) || nls_open(&e->push) ||
	    nls_resolve(&e->push) || nls_open(&e->churn) || nls_resolve(&e->churn) ||
	    nls_open(&e->events) || nls_resolve(&e->events)) {
		printf("# end %d: genl family: %s\n", idx, strerror(errno));
		return -1;
	}
	grp = (int)e->events.mcgrp;
	if (setsockopt(e->events.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof(grp)))
		printf("# end %d: join events: %s\n", idx, strerror(errno));
	for (int i = 0; i < n_readers; i++)
		e->reader_fd[i] = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	e->poll_fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	e->churn_fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	if (e->poll_fd < 0 || e->churn_fd < 0 || e->reader_fd[0] < 0) {
		printf("# end %d: open /dev/qkd: %s\n", idx, strerror(errno));
		return -1;
	}
	err = link_new(&e->ctl, idx ? "bob" : "alice",
		       idx ? QKD_LINK_ROLE_RESPONDER : QKD_LINK_ROLE_INITIATOR);
	if (!err)
		err = link_lookup(&e->ctl, idx ? "bob" : "alice", &e->link_id);
	if (!err)
		err = stream_new(&e->ctl, main_sid, e->link_id, MAIN_KS, MAIN_MAX_KEYS, 64);
	if (!err)
		err = link_state(&e->ctl, e->link_id, QKD_LINK_STATE_UP);
	if (err) {
		printf("# end %d: link/stream setup: %s\n", idx, strerror(-err));
		return -1;
	}
	e->ledger = calloc(LEDGER_BITS / 64, sizeof(uint64_t));
	return e->ledger ? 0 : -1;
}

int main(int argc, char **argv)
{
	double secs = 20;
	pthread_t th[64];
	struct reader_arg ra[MAX_ENDS * MAX_READERS];
	int nth = 0, c;
	struct tap tap = { 0 };
	uint64_t seed = 1;
	bool ok = true;

	while ((c = getopt(argc, argv, "t:r:e:s:v")) != -1) {
		switch (c) {
		case 't': secs = strtod(optarg, NULL); break;
		case 'r': n_readers = atoi(optarg); break;
		case 'e': n_ends = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'v': verbose = true; break;
		default:
			fprintf(stderr, "usage: %s [-t SECONDS] [-r READERS] [-e 1|2] [-s SEED] [-v]\n",
				argv[0]);
			return 2;
		}
	}
	if (n_readers < 1 || n_readers > MAX_READERS || n_ends < 1 || n_ends > MAX_ENDS)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# stress: %.0f s, %d end(s), %d readers per end, seed %llu\n", secs,
	       n_ends, n_readers, (unsigned long long)seed);
	fault_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < n_ends; i++)
		if (setup_end(&ends[i], i))
			ok = false;
	tap_result(&tap, ok && fault_page != MAP_FAILED,
		   "setup: %d netns end(s) with link, stream, /dev/qkd files, events listener",
		   n_ends);
	if (!ok) {
		tap_end(&tap);
		return 1;
	}
	pthread_create(&th[nth++], NULL, pusher, (void *)(uintptr_t)seed);
	for (int i = 0; i < n_ends; i++) {
		for (int k = 0; k < n_readers; k++) {
			struct reader_arg *a = &ra[i * MAX_READERS + k];

			a->e = &ends[i];
			a->fd = ends[i].reader_fd[k];
			a->id = k + (int)seed * 16;
			pthread_create(&th[nth++], NULL, reader, a);
		}
		pthread_create(&th[nth++], NULL, churn, &ends[i]);
		pthread_create(&th[nth++], NULL, poller, &ends[i]);
		pthread_create(&th[nth++], NULL, listener, &ends[i]);
	}
	usleep((useconds_t)(secs * 1e6));
	atomic_store(&stop, true);
	for (int i = 0; i < nth; i++)
		pthread_join(th[i], NULL);

	for (int i = 0; i < n_ends; i++) {
		struct end *e = &ends[i];
		struct qkd_status s;
		struct sstats ms = { 0 };
		uint64_t pushed = atomic_load(&e->pushed_keys);
		uint64_t deliv = atomic_load(&e->delivered_main) + atomic_load(&e->delivered_extra);
		uint64_t bits = 0;
		uint8_t ab[64];
		struct nlmsgb m;
		int err;

		for (uint64_t w = 0; w < LEDGER_BITS / 64; w++)
			bits += (uint64_t)__builtin_popcountll(atomic_load(&e->ledger[w]));
		err = nls_status(&e->ctl, &s);
		mb_init(&m, ab, sizeof(ab));
		mb_attr(&m, QKD_A_STREAM_ID, main_sid, QKD_STREAM_ID_LEN);
		if (!err)
			err = nls_req(&e->ctl, QKD_CMD_STREAM_GET, 0, &m, stream_stats_cb, &ms, NULL);
		printf("# end %d: pushed %llu keys (main %llu, hi index %llu), delivered %llu (main %llu, extra %llu), ledger bits %llu\n",
		       i, (unsigned long long)pushed,
		       (unsigned long long)atomic_load(&e->pushed_main),
		       (unsigned long long)atomic_load(&e->hi_index),
		       (unsigned long long)deliv,
		       (unsigned long long)atomic_load(&e->delivered_main),
		       (unsigned long long)atomic_load(&e->delivered_extra),
		       (unsigned long long)bits);
		printf("# end %d: STATUS_GET added %llu delivered %llu flushed %llu stored %llu; main stream added %llu delivered %llu flushed %llu stored %llu\n",
		       i, (unsigned long long)s.added, (unsigned long long)s.delivered,
		       (unsigned long long)s.flushed, (unsigned long long)s.stored,
		       (unsigned long long)ms.added, (unsigned long long)ms.delivered,
		       (unsigned long long)ms.flushed, (unsigned long long)ms.stored);
		printf("# end %d: EFAULT (key put back) %llu, EAGAIN %llu, ENOKEY %llu, EKEYEXPIRED %llu, ENOENT (extra) %llu; main flushes %llu, extra streams created %llu deleted %llu, links deleted %llu\n",
		       i, (unsigned long long)atomic_load(&e->efault_back),
		       (unsigned long long)atomic_load(&e->eagain),
		       (unsigned long long)atomic_load(&e->enokey),
		       (unsigned long long)atomic_load(&e->ekeyexpired),
		       (unsigned long long)atomic_load(&e->enoent_extra),
		       (unsigned long long)atomic_load(&e->flushes),
		       (unsigned long long)atomic_load(&e->extra_created),
		       (unsigned long long)atomic_load(&e->extra_deleted),
		       (unsigned long long)atomic_load(&e->links_deleted));
		printf("# end %d: poll POLLIN %llu, timeouts %llu, bad %llu; events received %llu (ENOBUFS %llu)\n",
		       i, (unsigned long long)atomic_load(&e->poll_in),
		       (unsigned long long)atomic_load(&e->poll_timeout),
		       (unsigned long long)atomic_load(&e->poll_bad),
		       (unsigned long long)atomic_load(&e->events_rx),
		       (unsigned long long)atomic_load(&e->events_enobufs));
		for (int k = 0; k < 4 && k < atomic_load(&e->nsample); k++)
			printf("#   %s\n", e->sample[k]);
		tap_result(&tap, !atomic_load(&e->dup) && bits == atomic_load(&e->delivered_main),
			   "end %d: no index delivered twice (%llu deliveries of the main stream, %llu duplicates)",
			   i, (unsigned long long)atomic_load(&e->delivered_main),
			   (unsigned long long)atomic_load(&e->dup));
		tap_result(&tap, !atomic_load(&e->bad_key),
			   "end %d: every delivered key has the pushed bytes and key ID (%llu wrong)",
			   i, (unsigned long long)atomic_load(&e->bad_key));
		tap_result(&tap, !atomic_load(&e->unexpected),
			   "end %d: no unexpected error, poll result or delivery (%llu)",
			   i, (unsigned long long)atomic_load(&e->unexpected));
		tap_result(&tap, !err && s.added == s.delivered + s.flushed + s.stored &&
			   pushed == s.delivered + s.flushed + s.stored,
			   "end %d: pushed %llu = delivered %llu + flushed %llu + stored %llu (STATUS_GET)",
			   i, (unsigned long long)pushed, (unsigned long long)s.delivered,
			   (unsigned long long)s.flushed, (unsigned long long)s.stored);
		tap_result(&tap, !err && s.added == pushed && s.delivered == deliv &&
			   ms.ok && ms.delivered == atomic_load(&e->delivered_main) &&
			   ms.added == atomic_load(&e->pushed_main),
			   "end %d: kernel counters match the ledger (added %llu/%llu, delivered %llu/%llu, main delivered %llu/%llu)",
			   i, (unsigned long long)s.added, (unsigned long long)pushed,
			   (unsigned long long)s.delivered, (unsigned long long)deliv,
			   (unsigned long long)ms.delivered,
			   (unsigned long long)atomic_load(&e->delivered_main));
		tap_result(&tap, atomic_load(&e->poll_in) > 0 && !atomic_load(&e->poll_bad),
			   "end %d: poll() woke with POLLIN %llu times, never POLLERR on a live stream",
			   i, (unsigned long long)atomic_load(&e->poll_in));
	}
	tap_end(&tap);
	return tap.fail ? 1 : 0;
}
