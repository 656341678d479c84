// SPDX-License-Identifier: GPL-2.0-only
/*
 * /dev/qkd: every ioctl's success and failure (Documentation/abi.md), the
 * state after each call (a rejected request takes no key), key bytes and IDs,
 * and poll().
 *
 * Each test runs in a fresh network namespace with one link (id 1) and one
 * stream (KS-byte keys); keys are pushed through genl.
 */
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/select.h>
#include <pthread.h>

#include "qkd_test.h"

#define KS	32

FIXTURE(dev) {
	struct qkd_nl nl;
	int fd;
	int kmsg;
	uint8_t sid[QKD_STREAM_ID_LEN];
};

FIXTURE_SETUP(dev)
{
	int err = qkd_enter_test_netns();

	if (err == -EPERM)
		QKD_SKIP_SETUP("needs root (unshare CLONE_NEWNET)");
	ASSERT_EQ(0, err);
	err = qkd_nl_open(&self->nl);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	self->fd = qkd_dev_open();
	if (self->fd == -ENOENT)
		QKD_SKIP_SETUP("no " QKD_DEV_PATH);
	ASSERT_LE(0, self->fd) TH_LOG("open %s: %s", QKD_DEV_PATH, strerror(-self->fd));
	qkd_sid(self->sid, 1);
	mk_link_stream(_metadata, &self->nl, 1, self->sid, KS);
	self->kmsg = qkd_kmsg_open();
}

FIXTURE_TEARDOWN(dev)
{
	QKD_TEARDOWN_BEGIN();
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->fd >= 0)
		close(self->fd);
	if (self->kmsg >= 0)
		close(self->kmsg);
	qkd_nl_close(&self->nl);
}

/* Stored keys of the stream and keys delivered from it, via genl. */
struct counts {
	uint64_t stored, delivered, next;
};

static struct counts counts_of(struct __test_metadata *_metadata,
			       struct qkd_nl *nl, const uint8_t *sid)
{
	struct counts c;
	struct qkd_obj o;

	ASSERT_NL_OK(nl, qkd_stream_get(nl, sid, &o));
	c.stored = qkd_obj_u(&o, QKD_A_STREAM_STORED_KEYS);
	c.delivered = qkd_obj_u(&o, QKD_T_STATS(KEYS_DELIVERED));
	c.next = qkd_obj_u(&o, QKD_A_STREAM_NEXT_INDEX);
	return c;
}

#define ASSERT_SAME_COUNTS(a, b) do { \
	EXPECT_EQ((a).stored, (b).stored) TH_LOG("stored keys changed"); \
	EXPECT_EQ((a).delivered, (b).delivered) TH_LOG("delivered changed"); \
	EXPECT_EQ((a).next, (b).next) TH_LOG("next index changed"); \
} while (0)

/* A request rejected with -@err that takes nothing. */
#define ASSERT_DEV_ERR(err, expr) do { \
	struct counts __cb = counts_of(_metadata, &self->nl, self->sid), __ca; \
	int __r = (expr); \
	ASSERT_EQ(-(err), __r) TH_LOG("%s%s%s: got %d (%s), want %d (%s)", qkd_ctx, \
				      qkd_ctx[0] ? ": " : "", #expr, __r, \
				      strerror(-__r), -(err), strerror(err)); \
	__ca = counts_of(_metadata, &self->nl, self->sid); \
	ASSERT_SAME_COUNTS(__cb, __ca); \
} while (0)

static void check_key(struct __test_metadata *_metadata,
		      const struct qkd_key_request *r, const uint8_t *sid,
		      const uint8_t *buf, uint32_t ks, uint64_t index,
		      uint32_t seed)
{
	uint8_t kid[QKD_KEY_ID_LEN];

	EXPECT_EQ(index, r->index);
	EXPECT_EQ(ks, r->key_len) TH_LOG("key_len out is the key size");
	EXPECT_TRUE(qkd_pattern_ok(buf, ks, index, seed))
		TH_LOG("key bytes of index %ju differ from those pushed", (uintmax_t)index);
	qkd_key_id_from_index(kid, sid, index);
	EXPECT_EQ(0, memcmp(kid, r->key_id, QKD_KEY_ID_LEN))
		TH_LOG("key_id of index %ju", (uintmax_t)index);
	EXPECT_EQ(index, qkd_key_id_to_index(r->key_id, sid));
	EXPECT_EQ(0, r->reserved0);
	EXPECT_EQ(0, r->reserved[0] | r->reserved[1] | r->reserved[2] | r->reserved[3]);
}

/* ------------------------------------------------------------------ INFO */

TEST_F(dev, info)
{
	struct qkd_info in;

	memset(&in, 0, sizeof(in));
	in.size = sizeof(in);
	ASSERT_EQ(0, qkd_ioctl(self->fd, QKD_IOC_INFO, &in));
	EXPECT_EQ(sizeof(in), in.size);
	EXPECT_EQ(0, in.flags);
	EXPECT_EQ(QKD_ABI_VERSION, in.abi_version);
	EXPECT_EQ(QKD_KEY_SIZE_MIN, in.key_size_min);
	EXPECT_EQ(QKD_KEY_SIZE_MAX, in.key_size_max);
	EXPECT_EQ(0, in.reserved0);
	EXPECT_EQ(QKD_FEATURE_GET_KEY | QKD_FEATURE_GET_KEY_BY_ID | QKD_FEATURE_POLL,
		  in.features & (QKD_FEATURE_GET_KEY | QKD_FEATURE_GET_KEY_BY_ID |
				 QKD_FEATURE_POLL));
	EXPECT_EQ(0, in.reserved[0] | in.reserved[1] | in.reserved[2] | in.reserved[3]);
}

TEST_F(dev, info_validation)
{
	static const uint32_t sizes[] = { 0, 4, sizeof(struct qkd_info) - 1,
		sizeof(struct qkd_info) - 8, sizeof(struct qkd_info) + 8, 4096 };
	struct qkd_info in;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		memset(&in, 0, sizeof(in));
		in.size = sizes[i];
		ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_INFO, &in))
			TH_LOG("size %u", sizes[i]);
	}
	for (i = 0; i < 32; i++) {
		memset(&in, 0, sizeof(in));
		in.size = sizeof(in);
		in.flags = 1U << i;
		ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_INFO, &in))
			TH_LOG("flags %#x", in.flags);
	}
	memset(&in, 0, sizeof(in));
	in.size = sizeof(in);
	in.reserved0 = 1;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_INFO, &in));
	for (i = 0; i < 4; i++) {
		memset(&in, 0, sizeof(in));
		in.size = sizeof(in);
		in.reserved[i] = 1ULL << 63;
		ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_INFO, &in))
			TH_LOG("reserved[%zu]", i);
	}
	ASSERT_EQ(-EFAULT, qkd_ioctl(self->fd, QKD_IOC_INFO, NULL));
	ASSERT_EQ(-EFAULT, qkd_ioctl(self->fd, QKD_IOC_INFO, (void *)8));
}

TEST_F(dev, unknown_ioctl)
{
	const unsigned long cmds[] = {
		_IO(QKD_IOC_MAGIC, 0x05),
		_IOWR(QKD_IOC_MAGIC, 0x05, struct qkd_key_request),
		_IOWR(QKD_IOC_MAGIC, 0xff, struct qkd_info),
		_IOWR(QKD_IOC_MAGIC, 0x00, __u64),	/* INFO's nr, wrong size */
		_IOWR(QKD_IOC_MAGIC, 0x02, struct qkd_info),	/* GET_KEY's nr, wrong size */
		_IOR(QKD_IOC_MAGIC, 0x00, struct qkd_info),	/* wrong direction */
		_IOWR('X', 0x00, struct qkd_info),
		_IOWR('X', 0x02, struct qkd_key_request),
		0,
	};
	uint8_t buf[4096] = { 0 };
	size_t i;

	*(uint32_t *)buf = sizeof(struct qkd_info);
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		ASSERT_EQ(-ENOTTY, qkd_ioctl(self->fd, cmds[i], buf))
			TH_LOG("ioctl %#lx", cmds[i]);
	}
}

/* --------------------------------------------------------- STREAM_STATUS */

TEST_F(dev, stream_status)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_stream_status st;
	uint8_t buf[KS], sid2[QKD_STREAM_ID_LEN];

	ASSERT_EQ(0, qkd_dev_status(self->fd, self->sid, &st));
	EXPECT_EQ(sizeof(st), st.size);
	EXPECT_EQ(0, memcmp(st.stream_id, self->sid, QKD_STREAM_ID_LEN));
	EXPECT_EQ(1, st.link_id);
	EXPECT_EQ(KS, st.key_size);
	EXPECT_EQ(0, st.stored_key_count);
	EXPECT_EQ(QKD_DEF_STREAM_MAX_KEYS, st.max_key_count);
	EXPECT_EQ(QKD_GET_KEYS_MAX, st.max_key_per_request);
	EXPECT_EQ(QKD_KEY_SIZE_MIN, st.min_key_size);
	EXPECT_EQ(QKD_KEY_SIZE_MAX, st.max_key_size);
	EXPECT_EQ(0, st.reserved0);
	EXPECT_EQ(0, st.next_index);
	EXPECT_EQ(0, st.reserved[0] | st.reserved[1] | st.reserved[2] | st.reserved[3]);

	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 3, 5, KS, 1));
	ASSERT_EQ(0, qkd_dev_status(self->fd, self->sid, &st));
	EXPECT_EQ(5, st.stored_key_count);
	EXPECT_EQ(3, st.next_index) TH_LOG("the lowest index GET_KEY would deliver");
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 4, buf, KS, NULL));
	ASSERT_EQ(0, qkd_dev_status(self->fd, self->sid, &st));
	EXPECT_EQ(3, st.stored_key_count);
	EXPECT_EQ(5, st.next_index);
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 7, buf, KS, NULL));
	ASSERT_EQ(0, qkd_dev_status(self->fd, self->sid, &st));
	EXPECT_EQ(2, st.stored_key_count);
	EXPECT_EQ(5, st.next_index);
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	/* empty: the index the next push will start at */
	ASSERT_EQ(0, qkd_dev_status(self->fd, self->sid, &st));
	EXPECT_EQ(0, st.stored_key_count);
	EXPECT_EQ(8, st.next_index);

	ASSERT_NL_OK(nl, qkd_stream_set(nl, self->sid, 77, QKD_OMIT));
	ASSERT_EQ(0, qkd_dev_status(self->fd, self->sid, &st));
	EXPECT_EQ(77, st.max_key_count);

	qkd_sid(sid2, 2);
	mk_link_stream(_metadata, nl, 2, NULL, 0);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid2, 2, 500, 10, 1));
	ASSERT_EQ(0, qkd_dev_status(self->fd, sid2, &st));
	EXPECT_EQ(2, st.link_id);
	EXPECT_EQ(500, st.key_size);
	EXPECT_EQ(10, st.max_key_count);
}

TEST_F(dev, stream_status_validation)
{
	struct qkd_stream_status st;
	uint8_t other[QKD_STREAM_ID_LEN];
	size_t i;

	qkd_sid(other, 2);
	ASSERT_EQ(-ENOENT, qkd_dev_status(self->fd, other, &st));
	ASSERT_NL_OK(&self->nl, qkd_stream_del(&self->nl, self->sid));
	ASSERT_EQ(-ENOENT, qkd_dev_status(self->fd, self->sid, &st));
	mk_link_stream(_metadata, &self->nl, 2, self->sid, KS);

	qkd_dev_status(self->fd, self->sid, &st);
	st.size = sizeof(st) - 8;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_STREAM_STATUS, &st));
	qkd_dev_status(self->fd, self->sid, &st);
	st.size = 0;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_STREAM_STATUS, &st));
	qkd_dev_status(self->fd, self->sid, &st);
	st.size = sizeof(st) + 8;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_STREAM_STATUS, &st));
	qkd_dev_status(self->fd, self->sid, &st);
	st.flags = 1;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_STREAM_STATUS, &st));
	qkd_dev_status(self->fd, self->sid, &st);
	st.flags = 0;
	st.reserved0 = 1;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_STREAM_STATUS, &st));
	for (i = 0; i < 4; i++) {
		qkd_dev_status(self->fd, self->sid, &st);
		st.reserved0 = 0;
		st.reserved[i] = 1;
		ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_STREAM_STATUS, &st))
			TH_LOG("reserved[%zu]", i);
	}
	ASSERT_EQ(-EFAULT, qkd_ioctl(self->fd, QKD_IOC_STREAM_STATUS, (void *)16));
}

/* --------------------------------------------------------------- GET_KEY */

TEST_F(dev, get_key_in_order)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_key_request r;
	static const uint64_t want[] = { 0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 1000 };
	uint8_t buf[KS];
	size_t i;

	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 3, KS, 7));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 3, 4, KS, 7));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 20, 3, KS, 7));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 1000, 1, KS, 7));
	for (i = 0; i < ARRAY_SIZE(want); i++) {
		memset(buf, 0, sizeof(buf));
		ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, &r)) TH_LOG("key %zu", i);
		check_key(_metadata, &r, self->sid, buf, KS, want[i], 7);
		EXPECT_EQ(ARRAY_SIZE(want) - i - 1,
			  (size_t)qkd_stored(nl, self->sid));
	}
	ASSERT_EQ(-EAGAIN, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	ASSERT_EQ(-EAGAIN, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	EXPECT_EQ(11, counts_of(_metadata, nl, self->sid).delivered);
}

TEST_F(dev, get_key_validation)
{
	struct qkd_key_request r;
	uint8_t buf[KS];
	size_t i;

	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 4, KS, 1));

	qkd_req_init(&r, self->sid, buf, KS);
	r.size = sizeof(r) - 8;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, &r));
	qkd_req_init(&r, self->sid, buf, KS);
	r.size = sizeof(r) + 8;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, &r));
	qkd_req_init(&r, self->sid, buf, KS);
	r.size = 0;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, &r));
	/* GET_KEY takes no flag at all, not even BY_KEY_ID */
	for (i = 0; i < 32; i++) {
		qkd_req_init(&r, self->sid, buf, KS);
		r.flags = 1U << i;
		QKD_CTX("flags %#x", r.flags);
		ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, &r));
	}
	QKD_CTX_CLEAR();
	qkd_req_init(&r, self->sid, buf, KS);
	r.reserved0 = 1;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, &r));
	for (i = 0; i < 4; i++) {
		qkd_req_init(&r, self->sid, buf, KS);
		r.reserved[i] = 1;
		QKD_CTX("reserved[%zu]", i);
		ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, &r));
	}
	QKD_CTX_CLEAR();
	ASSERT_DEV_ERR(EFAULT, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, NULL));
	ASSERT_DEV_ERR(EFAULT, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, (void *)64));
	/* all four keys are still there, in order */
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, &r));
		check_key(_metadata, &r, self->sid, buf, KS, i, 1);
	}
}

TEST_F(dev, get_key_unknown_and_empty)
{
	uint8_t other[QKD_STREAM_ID_LEN], buf[KS];

	qkd_sid(other, 2);
	ASSERT_EQ(-ENOENT, qkd_get_key(self->fd, other, buf, KS, NULL));
	ASSERT_DEV_ERR(EAGAIN, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 2, KS, 1));
	ASSERT_NL_OK(&self->nl, qkd_key_flush(&self->nl, self->sid));
	ASSERT_DEV_ERR(EAGAIN, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	ASSERT_NL_OK(&self->nl, qkd_stream_del(&self->nl, self->sid));
	ASSERT_EQ(-ENOENT, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
}

TEST_F(dev, get_key_buffer_too_small)
{
	struct qkd_key_request r;
	uint8_t buf[KS + 64];
	size_t i;

	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 2, KS, 3));
	memset(buf, 0xee, sizeof(buf));
	ASSERT_DEV_ERR(ERANGE, qkd_get_key(self->fd, self->sid, buf, KS - 1, NULL));
	ASSERT_DEV_ERR(ERANGE, qkd_get_key(self->fd, self->sid, buf, 1, NULL));
	ASSERT_DEV_ERR(ERANGE, qkd_get_key(self->fd, self->sid, buf, 0, NULL));
	ASSERT_DEV_ERR(ERANGE, qkd_get_key(self->fd, self->sid, NULL, 0, NULL));
	for (i = 0; i < sizeof(buf); i++)
		ASSERT_EQ(0xee, buf[i]) TH_LOG("byte %zu written by a failed request", i);
	/* a larger buffer gets exactly the key, the rest is untouched */
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, sizeof(buf), &r));
	check_key(_metadata, &r, self->sid, buf, KS, 0, 3);
	for (i = KS; i < sizeof(buf); i++)
		ASSERT_EQ(0xee, buf[i]) TH_LOG("byte %zu past the key written", i);
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 1, 3);
}

/*
 * A request that fails writes nothing to the caller's memory: neither the
 * key buffer nor the request struct (an _IOWR struct is copied back only on
 * success).
 */
TEST_F(dev, failed_request_leaves_user_memory_alone)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_key_request r, copy;
	uint8_t buf[KS], other[QKD_STREAM_ID_LEN];
	struct {
		const char *what;
		unsigned long cmd;
		int err;
		uint64_t index;
		uint32_t len;
		bool other_stream;
	} cases[] = {
		{ "GET_KEY, empty", QKD_IOC_GET_KEY, EAGAIN, 0, KS, false },
		{ "GET_KEY, unknown stream", QKD_IOC_GET_KEY, ENOENT, 0, KS, true },
		{ "GET_KEY, buffer too small", QKD_IOC_GET_KEY, ERANGE, 0, KS - 1, false },
		{ "GET_KEY_BY_ID, not pushed", QKD_IOC_GET_KEY_BY_ID, ENOKEY, 5, KS, false },
		{ "GET_KEY_BY_ID, delivered", QKD_IOC_GET_KEY_BY_ID, EKEYEXPIRED, 0, KS, false },
		{ "GET_KEY_BY_ID, index too big", QKD_IOC_GET_KEY_BY_ID, EINVAL, UINT64_MAX, KS, false },
	};
	size_t i, j;

	qkd_sid(other, 2);
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 1, KS, 1));
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(buf, 0xa5, sizeof(buf));
		qkd_req_init(&r, cases[i].other_stream ? other : self->sid, buf, cases[i].len);
		r.index = cases[i].index;
		memset(r.key_id, 0x5a, sizeof(r.key_id));
		copy = r;
		ASSERT_EQ(-cases[i].err, qkd_ioctl(self->fd, cases[i].cmd, &r))
			TH_LOG("%s", cases[i].what);
		for (j = 0; j < sizeof(buf); j++)
			if (buf[j] != 0xa5)
				break;
		EXPECT_EQ(sizeof(buf), j)
			TH_LOG("%s: key buffer byte %zu overwritten (%#x)", cases[i].what, j,
			       j < sizeof(buf) ? buf[j] : 0);
		EXPECT_EQ(0, memcmp(&r, &copy, sizeof(r)))
			TH_LOG("%s: request struct modified (size %u was %u, flags %u, key_len %u)",
			       cases[i].what, r.size, copy.size, r.flags, r.key_len);
		/* the same struct can be used again as it is */
		if (r.size != copy.size)
			r = copy;
	}
}

/* A page mapped without write access and one not mapped at all. */
struct bad_pages {
	uint8_t *ro, *none, *edge;	/* edge: KS/2 bytes before @none, in @ro */
	size_t pg;
};

static void bad_pages_map(struct __test_metadata *_metadata, struct bad_pages *b)
{
	uint8_t *m;

	b->pg = sysconf(_SC_PAGESIZE);
	m = mmap(NULL, 3 * b->pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	memset(m, 0, 3 * b->pg);
	ASSERT_EQ(0, mprotect(m + b->pg, b->pg, PROT_READ));
	ASSERT_EQ(0, mprotect(m + 2 * b->pg, b->pg, PROT_NONE));
	b->ro = m + b->pg;
	b->none = m + 2 * b->pg;
	b->edge = b->none - KS / 2;
}

/*
 * Two pages, the first writable, the second PROT_NONE: the attacker's
 * buffer. Returns the boundary between them.
 */
static uint8_t *straddle_map(struct __test_metadata *_metadata)
{
	size_t pg = sysconf(_SC_PAGESIZE);
	uint8_t *m;

	m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	memset(m, 0, 2 * pg);
	ASSERT_EQ(0, mprotect(m + pg, pg, PROT_NONE));
	return m + pg;
}

/*
 * A key_ptr that cannot take a single byte fails with EFAULT and the key
 * stays, with its bytes: none of them reached the caller.
 */
TEST_F(dev, get_key_bad_buffer_loses_no_key)
{
	struct qkd_key_request r;
	struct bad_pages b;
	uint8_t buf[KS];
	void *bad[4];
	size_t i;

	bad_pages_map(_metadata, &b);
	bad[0] = NULL;
	bad[1] = b.ro;
	bad[2] = b.none;
	bad[3] = b.edge;	/* read-only, then unmapped: not one byte lands */
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 5, 3, KS, 9));
	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		QKD_CTX("bad buffer %zu", i);
		ASSERT_DEV_ERR(EFAULT, qkd_get_key(self->fd, self->sid, bad[i], KS, NULL));
	}
	QKD_CTX_CLEAR();
	/* not a user address at all: refused before anything is taken */
	ASSERT_DEV_ERR(EFAULT, qkd_get_key(self->fd, self->sid, (void *)-4096L, KS, NULL));
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 5, 9);

	/* by index: the same */
	for (i = 0; i < ARRAY_SIZE(bad); i++)
		ASSERT_DEV_ERR(EFAULT, qkd_get_key_at(self->fd, self->sid, 7, bad[i], KS, NULL));
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 7, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 7, 9);
}

/*
 * The attack: a key buffer whose end sits on a PROT_NONE page receives the
 * first half of the key before the copy faults. Those bytes are the key's,
 * so the key is used up: EFAULT, counted as delivered, never deliverable
 * again (by index either), its events sent; the request struct, written
 * before the key, names it.
 */
TEST_F(dev, get_key_straddling_buffer_consumes_key)
{
	uint8_t buf[KS], want[KS], *edge;
	struct counts before, after;
	struct qkd_key_request r;
	struct qkd_nl ev;

	ASSERT_EQ(0, qkd_nl_open(&ev));
	ASSERT_EQ(0, qkd_nl_join_events(&ev));
	edge = straddle_map(_metadata) - KS / 2;
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 5, 3, KS, 9));
	qkd_ev_read(&ev, 100);

	/* GET_KEY: the lowest index, 5 */
	before = counts_of(_metadata, &self->nl, self->sid);
	memset(edge, 0xa5, KS / 2);
	ASSERT_EQ(-EFAULT, qkd_get_key(self->fd, self->sid, edge, KS, &r));
	after = counts_of(_metadata, &self->nl, self->sid);
	qkd_pattern(want, KS, 5, 9);
	ASSERT_EQ(0, memcmp(edge, want, KS / 2))
		TH_LOG("the caller holds the first %d bytes of key 5", KS / 2);
	EXPECT_EQ(5, r.index) TH_LOG("the request names the key used up");
	EXPECT_EQ(before.stored - 1, after.stored) TH_LOG("key 5 is still stored");
	EXPECT_EQ(before.delivered + 1, after.delivered)
		TH_LOG("key 5 not counted as delivered");
	EXPECT_EQ(before.next, after.next);
	ASSERT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 5, buf, KS, NULL))
		TH_LOG("key 5 was seen in part and is deliverable again");

	/* GET_KEY_BY_ID: index 7, the last key but one */
	memset(edge, 0xa5, KS / 2);
	ASSERT_EQ(-EFAULT, qkd_get_key_at(self->fd, self->sid, 7, edge, KS, NULL));
	qkd_pattern(want, KS, 7, 9);
	ASSERT_EQ(0, memcmp(edge, want, KS / 2));
	ASSERT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 7, buf, KS, NULL))
		TH_LOG("key 7 was seen in part and is deliverable again");
	after = counts_of(_metadata, &self->nl, self->sid);
	EXPECT_EQ(before.stored - 2, after.stored);
	EXPECT_EQ(before.delivered + 2, after.delivered);

	/* the last key, 6, the same way: the stream-empty event is sent */
	ASSERT_EQ(-EFAULT, qkd_get_key(self->fd, self->sid, edge, KS, &r));
	EXPECT_EQ(6, r.index);
	ASSERT_EQ(0, qkd_stored(&self->nl, self->sid));
	ASSERT_EQ(-EAGAIN, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	qkd_ev_read(&ev, 500);
	EXPECT_EQ(1, qkd_count(&ev, QKD_CMD_STREAM_EMPTY_NTF))
		TH_LOG("no stream-empty event after the last key was used up");
	qkd_nl_close(&ev);
}

/* The request struct cannot be written back: EFAULT, and the key stays. */
TEST_F(dev, get_key_readonly_request_loses_no_key)
{
	size_t pg = sysconf(_SC_PAGESIZE);
	struct qkd_key_request *ro, r;
	uint8_t buf[KS];
	void *m;

	m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	ro = m;
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 3, KS, 4));

	qkd_req_init(ro, self->sid, buf, KS);
	ASSERT_EQ(0, mprotect(m, pg, PROT_READ));
	ASSERT_DEV_ERR(EFAULT, qkd_ioctl(self->fd, QKD_IOC_GET_KEY, ro));
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 0, 4);

	ASSERT_EQ(0, mprotect(m, pg, PROT_READ | PROT_WRITE));
	qkd_req_init(ro, self->sid, buf, KS);
	ro->index = 2;
	ASSERT_EQ(0, mprotect(m, pg, PROT_READ));
	ASSERT_DEV_ERR(EFAULT, qkd_ioctl(self->fd, QKD_IOC_GET_KEY_BY_ID, ro));
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 2, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 2, 4);
	munmap(m, pg);
}

/* --------------------------------------------------------- GET_KEY_BY_ID */

TEST_F(dev, get_key_by_index)
{
	struct qkd_nl *nl = &self->nl;
	struct qkd_key_request r;
	uint8_t buf[KS];
	uint64_t i;

	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 10, KS, 2));
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 5, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 5, 2);
	EXPECT_EQ(9, qkd_stored(nl, self->sid));
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 5, buf, KS, NULL));
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 9, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 9, 2);
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 0, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 0, 2);
	/* GET_KEY takes the lowest remaining, skipping those taken by index */
	for (i = 1; i < 9; i++) {
		if (i == 5)
			continue;
		ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, &r));
		check_key(_metadata, &r, self->sid, buf, KS, i, 2);
	}
	ASSERT_EQ(-EAGAIN, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	/* delivered by GET_KEY: expired by index too */
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 3, buf, KS, NULL));
	EXPECT_EQ(10, counts_of(_metadata, nl, self->sid).delivered);
}

TEST_F(dev, get_key_by_index_not_yet)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t buf[KS];

	ASSERT_DEV_ERR(ENOKEY, qkd_get_key_at(self->fd, self->sid, 0, buf, KS, NULL));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 4, KS, 2));
	ASSERT_DEV_ERR(ENOKEY, qkd_get_key_at(self->fd, self->sid, 4, buf, KS, NULL));
	ASSERT_DEV_ERR(ENOKEY, qkd_get_key_at(self->fd, self->sid, 1000000, buf, KS, NULL));
	ASSERT_DEV_ERR(ENOKEY, qkd_get_key_at(self->fd, self->sid, QKD_INDEX_MAX, buf, KS, NULL));
	ASSERT_DEV_ERR(EINVAL, qkd_get_key_at(self->fd, self->sid, QKD_INDEX_MAX + 1, buf, KS, NULL));
	ASSERT_DEV_ERR(EINVAL, qkd_get_key_at(self->fd, self->sid, UINT64_MAX, buf, KS, NULL));
	/* once pushed, it is there */
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 4, 1, KS, 2));
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 4, buf, KS, NULL));
	ASSERT_TRUE(qkd_pattern_ok(buf, KS, 4, 2));
}

TEST_F(dev, get_key_by_index_expired)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t buf[KS];

	/* 0..4 flushed, 5..9 skipped by the pusher, 10..12 stored */
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 5, KS, 4));
	ASSERT_NL_OK(nl, qkd_key_flush(nl, self->sid));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 10, 3, KS, 4));
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 0, buf, KS, NULL));
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 4, buf, KS, NULL));
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 5, buf, KS, NULL));
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 9, buf, KS, NULL));
	ASSERT_DEV_ERR(ENOKEY, qkd_get_key_at(self->fd, self->sid, 13, buf, KS, NULL));
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 11, buf, KS, NULL));
	ASSERT_TRUE(qkd_pattern_ok(buf, KS, 11, 4));
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 11, buf, KS, NULL));
	EXPECT_EQ(2, qkd_stored(nl, self->sid));
}

TEST_F(dev, get_key_by_key_id)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t kid[QKD_KEY_ID_LEN], buf[KS];
	struct qkd_key_request r;

	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 10, KS, 5));
	qkd_key_id_from_index(kid, self->sid, 7);
	ASSERT_EQ(0, qkd_get_key_kid(self->fd, self->sid, kid, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 7, 5);
	EXPECT_EQ(QKD_KEY_F_BY_KEY_ID, r.flags);
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_kid(self->fd, self->sid, kid, buf, KS, NULL));
	/* @index is ignored with BY_KEY_ID */
	qkd_key_id_from_index(kid, self->sid, 2);
	qkd_req_init(&r, self->sid, buf, KS);
	r.flags = QKD_KEY_F_BY_KEY_ID;
	r.index = 7;
	memcpy(r.key_id, kid, sizeof(kid));
	ASSERT_EQ(0, qkd_ioctl(self->fd, QKD_IOC_GET_KEY_BY_ID, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 2, 5);
	/* not pushed yet */
	qkd_key_id_from_index(kid, self->sid, 10);
	ASSERT_DEV_ERR(ENOKEY, qkd_get_key_kid(self->fd, self->sid, kid, buf, KS, NULL));
	/* taken by index, then asked by key ID */
	ASSERT_EQ(0, qkd_get_key_at(self->fd, self->sid, 3, buf, KS, NULL));
	qkd_key_id_from_index(kid, self->sid, 3);
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_kid(self->fd, self->sid, kid, buf, KS, NULL));
	EXPECT_EQ(7, qkd_stored(nl, self->sid));
}

TEST_F(dev, get_key_by_key_id_foreign)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t kid[QKD_KEY_ID_LEN], other[QKD_STREAM_ID_LEN], buf[KS];
	int i;

	qkd_sid(other, 2);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, other, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 4, KS, 5));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, other, 0, 4, KS, 6));
	/* a key ID of the other stream */
	qkd_key_id_from_index(kid, other, 1);
	ASSERT_DEV_ERR(EINVAL, qkd_get_key_kid(self->fd, self->sid, kid, buf, KS, NULL));
	/* any of bytes 0..8 different from the stream's */
	for (i = 0; i <= 8; i++) {
		qkd_key_id_from_index(kid, self->sid, 1);
		kid[i] ^= 0x01;
		QKD_CTX("key ID byte %d altered", i);
		ASSERT_DEV_ERR(EINVAL, qkd_get_key_kid(self->fd, self->sid, kid, buf, KS, NULL));
	}
	QKD_CTX_CLEAR();
	/* the other stream's key is right there */
	qkd_key_id_from_index(kid, other, 1);
	ASSERT_EQ(0, qkd_get_key_kid(self->fd, other, kid, buf, KS, NULL));
	ASSERT_TRUE(qkd_pattern_ok(buf, KS, 1, 6));
	EXPECT_EQ(4, qkd_stored(nl, self->sid));
}

TEST_F(dev, get_key_by_id_validation)
{
	struct qkd_key_request r;
	uint8_t buf[KS], other[QKD_STREAM_ID_LEN], kid[QKD_KEY_ID_LEN];
	size_t i;

	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 4, KS, 1));
	qkd_sid(other, 2);
	ASSERT_EQ(-ENOENT, qkd_get_key_at(self->fd, other, 0, buf, KS, NULL));
	qkd_key_id_from_index(kid, other, 0);
	ASSERT_EQ(-ENOENT, qkd_get_key_kid(self->fd, other, kid, buf, KS, NULL));

	qkd_req_init(&r, self->sid, buf, KS);
	r.size = sizeof(r) - 8;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY_BY_ID, &r));
	qkd_req_init(&r, self->sid, buf, KS);
	r.size = sizeof(r) + 8;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY_BY_ID, &r));
	for (i = 1; i < 32; i++) {
		qkd_req_init(&r, self->sid, buf, KS);
		r.flags = (1U << i) | (i & 1 ? QKD_KEY_F_BY_KEY_ID : 0);
		qkd_key_id_from_index(r.key_id, self->sid, 0);
		QKD_CTX("flags %#x", r.flags);
		ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY_BY_ID, &r));
	}
	QKD_CTX_CLEAR();
	qkd_req_init(&r, self->sid, buf, KS);
	r.reserved0 = 1;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY_BY_ID, &r));
	for (i = 0; i < 4; i++) {
		qkd_req_init(&r, self->sid, buf, KS);
		r.reserved[i] = 1;
		ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEY_BY_ID, &r));
	}
	ASSERT_DEV_ERR(EFAULT, qkd_ioctl(self->fd, QKD_IOC_GET_KEY_BY_ID, (void *)32));
	/* buffer too small, by index and by key ID: nothing taken */
	ASSERT_DEV_ERR(ERANGE, qkd_get_key_at(self->fd, self->sid, 1, buf, KS - 1, NULL));
	qkd_key_id_from_index(kid, self->sid, 1);
	ASSERT_DEV_ERR(ERANGE, qkd_get_key_kid(self->fd, self->sid, kid, buf, 0, NULL));
	ASSERT_EQ(0, qkd_get_key_kid(self->fd, self->sid, kid, buf, KS, &r));
	check_key(_metadata, &r, self->sid, buf, KS, 1, 1);
}

/* Random key bytes in, the same bytes out, through all three ways of asking. */
TEST_F(dev, bytes_delivered_equal_bytes_pushed)
{
	enum { N = 300, KSZ = 48, PER = 37 };
	struct qkd_nl *nl = &self->nl;
	uint8_t sid[QKD_STREAM_ID_LEN], kid[QKD_KEY_ID_LEN];
	uint8_t *in = malloc(N * KSZ), *out = calloc(N, KSZ);
	bool got[N] = { false };
	int how[N], when[N], bad = 0;
	static const char *const way[] = { "GET_KEY", "GET_KEY_BY_ID index",
		"GET_KEY_BY_ID key ID", "GET_KEY after EKEYEXPIRED" };
	struct qkd_key_request r;
	struct qkd_obj o;
	int i, n;

	ASSERT_NE(NULL, in);
	ASSERT_NE(NULL, out);
	ASSERT_EQ(N * KSZ, getrandom(in, N * KSZ, 0));
	qkd_sid(sid, 9);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sid, 1, KSZ, QKD_OMIT, QKD_OMIT));
	for (i = 0; i < N; i += PER) {
		n = N - i < PER ? N - i : PER;
		ASSERT_NL_OK(nl, qkd_key_add(nl, sid, i, in + i * KSZ, n * KSZ));
	}
	for (i = 0; i < N; i++) {
		uint8_t buf[KSZ];
		int err;

		int m = i % 3;

		if (m == 0) {
			err = qkd_get_key(self->fd, sid, buf, KSZ, &r);
		} else if (m == 1) {
			err = qkd_get_key_at(self->fd, sid, N - i, buf, KSZ, &r);
		} else {
			qkd_key_id_from_index(kid, sid, (i * 7) % N);
			err = qkd_get_key_kid(self->fd, sid, kid, buf, KSZ, &r);
		}
		if (err == -EKEYEXPIRED) {
			m = 3;
			err = qkd_get_key(self->fd, sid, buf, KSZ, &r);
		}
		ASSERT_EQ(0, err) TH_LOG("request %d", i);
		ASSERT_GT(N, r.index);
		ASSERT_FALSE(got[r.index]) TH_LOG("index %ju delivered twice", (uintmax_t)r.index);
		got[r.index] = true;
		how[r.index] = m;
		when[r.index] = i;
		memcpy(out + r.index * KSZ, buf, KSZ);
	}
	{
		uint8_t scratch[KSZ];

		ASSERT_EQ(-EAGAIN, qkd_get_key(self->fd, sid, scratch, KSZ, NULL));
	}
	for (i = 0; i < N; i++) {
		if (!memcmp(in + i * KSZ, out + i * KSZ, KSZ))
			continue;
		if (bad++ < 8)
			TH_LOG("index %d (request %d, %s): bytes differ from those pushed",
			       i, when[i], way[how[i]]);
	}
	EXPECT_EQ(0, bad) TH_LOG("%d of %d keys delivered with other bytes than pushed", bad, N);
	ASSERT_NL_OK(nl, qkd_stream_get(nl, sid, &o));
	check_counters(_metadata, &o, "stream", N, N, 0, 0, 0);
	free(in);
	free(out);
}

TEST_F(dev, key_sizes)
{
	static const uint32_t sizes[] = { QKD_KEY_SIZE_MIN, 17, 100, 511, QKD_KEY_SIZE_MAX };
	struct qkd_nl *nl = &self->nl;
	uint8_t sid[QKD_STREAM_ID_LEN], buf[QKD_KEY_SIZE_MAX + 1];
	struct qkd_key_request r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		uint32_t ks = sizes[i];

		qkd_sid(sid, 100 + i);
		ASSERT_NL_OK(nl, qkd_stream_new(nl, sid, 1, ks, QKD_OMIT, QKD_OMIT));
		ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sid, 0, 3, ks, ks));
		ASSERT_EQ(-ERANGE, qkd_get_key(self->fd, sid, buf, ks - 1, NULL));
		ASSERT_EQ(0, qkd_get_key(self->fd, sid, buf, ks, &r));
		check_key(_metadata, &r, sid, buf, ks, 0, ks);
		ASSERT_EQ(0, qkd_get_key(self->fd, sid, buf, sizeof(buf), &r));
		check_key(_metadata, &r, sid, buf, ks, 1, ks);
		ASSERT_EQ(0, qkd_get_key_at(self->fd, sid, 2, buf, sizeof(buf), &r));
		check_key(_metadata, &r, sid, buf, ks, 2, ks);
	}
}

/* Keys are handed out once per node, whichever open file asks. */
TEST_F(dev, two_files_share_the_store)
{
	uint8_t buf[KS];
	struct qkd_key_request r;
	int fd2 = qkd_dev_open();

	ASSERT_LE(0, fd2);
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 4, KS, 1));
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, &r));
	EXPECT_EQ(0, r.index);
	ASSERT_EQ(0, qkd_get_key(fd2, self->sid, buf, KS, &r));
	EXPECT_EQ(1, r.index);
	ASSERT_EQ(-EKEYEXPIRED, qkd_get_key_at(fd2, self->sid, 0, buf, KS, NULL));
	ASSERT_EQ(0, qkd_get_key_at(fd2, self->sid, 3, buf, KS, NULL));
	ASSERT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 3, buf, KS, NULL));
	close(fd2);
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, &r));
	EXPECT_EQ(2, r.index);
}

/* ------------------------------------------------------------------ poll */

TEST_F(dev, poll_before_set_stream)
{
	int ev;

	ev = qkd_poll1(self->fd, 0);
	ASSERT_LE(0, ev);
	EXPECT_TRUE(ev & POLLERR) TH_LOG("revents %#x", ev);
	EXPECT_FALSE(ev & POLLIN);
	/* keys in some stream do not matter: none is chosen */
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 1, KS, 1));
	ev = qkd_poll1(self->fd, 1000);
	EXPECT_TRUE(ev & POLLERR) TH_LOG("revents %#x", ev);
	EXPECT_FALSE(ev & POLLIN);
}

TEST_F(dev, poll_levels)
{
	uint8_t buf[KS];
	int ev;

	ASSERT_EQ(0, qkd_set_poll(self->fd, self->sid));
	ev = qkd_poll1(self->fd, 0);
	EXPECT_EQ(0, ev) TH_LOG("empty stream: revents %#x", ev);
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 2, KS, 1));
	ev = qkd_poll1(self->fd, 0);
	EXPECT_EQ(POLLIN | POLLRDNORM, ev) TH_LOG("revents %#x", ev);
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	ev = qkd_poll1(self->fd, 0);
	EXPECT_EQ(POLLIN | POLLRDNORM, ev) TH_LOG("one key left: revents %#x", ev);
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	ev = qkd_poll1(self->fd, 0);
	EXPECT_EQ(0, ev) TH_LOG("emptied: revents %#x", ev);
	ev = qkd_poll1(self->fd, 200);
	EXPECT_EQ(0, ev) TH_LOG("emptied, 200 ms: revents %#x", ev);
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 2, 1, KS, 1));
	EXPECT_EQ(POLLIN | POLLRDNORM, qkd_poll1(self->fd, 0));
	ASSERT_NL_OK(&self->nl, qkd_key_flush(&self->nl, self->sid));
	EXPECT_EQ(0, qkd_poll1(self->fd, 0)) TH_LOG("flushed");
}

/* Push from another process after @delay_ms. */
static pid_t push_later(const uint8_t *sid, uint64_t first, unsigned int delay_ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct qkd_nl nl;

		qkd_msleep(delay_ms);
		if (qkd_nl_open(&nl))
			_exit(2);
		_exit(qkd_key_add_pattern(&nl, sid, first, 1, KS, 1) ? 3 : 0);
	}
	return pid;
}

TEST_F(dev, poll_wakes_on_push)
{
	uint64_t t0, dt;
	pid_t pid;
	int ev;

	ASSERT_EQ(0, qkd_set_poll(self->fd, self->sid));
	ASSERT_EQ(0, qkd_poll1(self->fd, 0));
	pid = push_later(self->sid, 0, 300);
	ASSERT_LT(0, pid);
	t0 = qkd_now_ms();
	ev = qkd_poll1(self->fd, 10000);
	dt = qkd_now_ms() - t0;
	ASSERT_EQ(0, qkd_wait(pid));
	EXPECT_EQ(POLLIN | POLLRDNORM, ev) TH_LOG("revents %#x", ev);
	EXPECT_LE(200, dt) TH_LOG("poll returned after %ju ms, before the push", (uintmax_t)dt);
	EXPECT_GT(9000, dt) TH_LOG("poll was not woken by the push (%ju ms)", (uintmax_t)dt);
}

TEST_F(dev, epoll_wakes_on_push)
{
	struct epoll_event e = { .events = EPOLLIN }, out[2];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint8_t buf[KS];
	pid_t pid;
	int n;

	ASSERT_LE(0, ep);
	ASSERT_EQ(0, qkd_set_poll(self->fd, self->sid));
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, self->fd, &e));
	ASSERT_EQ(0, epoll_wait(ep, out, 2, 0));
	pid = push_later(self->sid, 0, 200);
	ASSERT_LT(0, pid);
	n = epoll_wait(ep, out, 2, 10000);
	ASSERT_EQ(0, qkd_wait(pid));
	ASSERT_EQ(1, n);
	EXPECT_TRUE(out[0].events & EPOLLIN);
	EXPECT_FALSE(out[0].events & EPOLLERR);
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	ASSERT_EQ(0, epoll_wait(ep, out, 2, 0)) TH_LOG("level-triggered: empty again");
	/* a second push, edge of another process again */
	pid = push_later(self->sid, 1, 100);
	n = epoll_wait(ep, out, 2, 10000);
	ASSERT_EQ(0, qkd_wait(pid));
	ASSERT_EQ(1, n);
	close(ep);
}

TEST_F(dev, select_readable)
{
	struct timeval tv = { 0, 0 };
	fd_set rd;

	ASSERT_EQ(0, qkd_set_poll(self->fd, self->sid));
	FD_ZERO(&rd);
	FD_SET(self->fd, &rd);
	ASSERT_EQ(0, select(self->fd + 1, &rd, NULL, NULL, &tv));
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 1, KS, 1));
	FD_ZERO(&rd);
	FD_SET(self->fd, &rd);
	tv.tv_sec = 1;
	ASSERT_EQ(1, select(self->fd + 1, &rd, NULL, NULL, &tv));
	EXPECT_TRUE(FD_ISSET(self->fd, &rd));
}

TEST_F(dev, poll_stream_deleted)
{
	struct qkd_nl *nl = &self->nl;
	uint8_t s2[QKD_STREAM_ID_LEN], buf[KS];
	int ev;

	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 2, KS, 1));
	ASSERT_EQ(0, qkd_set_poll(self->fd, self->sid));
	ASSERT_EQ(POLLIN | POLLRDNORM, qkd_poll1(self->fd, 0));
	ASSERT_NL_OK(nl, qkd_stream_del(nl, self->sid));
	ev = qkd_poll1(self->fd, 0);
	EXPECT_TRUE(ev & POLLERR) TH_LOG("deleted: revents %#x", ev);
	EXPECT_FALSE(ev & POLLIN) TH_LOG("deleted: revents %#x", ev);
	/*
	 * (Whether a new stream of the same ID revives the choice is not
	 * documented: not checked.) Choosing a live stream clears the error.
	 */
	mk_link_stream(_metadata, nl, 2, NULL, 0);
	qkd_sid(s2, 2);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, s2, 2, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_EQ(0, qkd_set_poll(self->fd, s2));
	EXPECT_EQ(0, qkd_poll1(self->fd, 0));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, s2, 0, 1, KS, 1));
	EXPECT_EQ(POLLIN | POLLRDNORM, qkd_poll1(self->fd, 0));
	ASSERT_EQ(0, qkd_get_key(self->fd, s2, buf, KS, NULL));
	/* deleted with its link */
	ASSERT_NL_OK(nl, qkd_link_del(nl, 2));
	ev = qkd_poll1(self->fd, 0);
	EXPECT_TRUE(ev & POLLERR) TH_LOG("link deleted: revents %#x", ev);
}

TEST_F(dev, poll_wakes_on_delete)
{
	uint64_t t0, dt;
	pid_t pid;
	int ev;

	ASSERT_EQ(0, qkd_set_poll(self->fd, self->sid));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		struct qkd_nl nl;

		qkd_msleep(300);
		if (qkd_nl_open(&nl))
			_exit(2);
		_exit(qkd_stream_del(&nl, self->sid) ? 3 : 0);
	}
	t0 = qkd_now_ms();
	ev = qkd_poll1(self->fd, 10000);
	dt = qkd_now_ms() - t0;
	ASSERT_EQ(0, qkd_wait(pid));
	EXPECT_TRUE(ev & POLLERR) TH_LOG("revents %#x", ev);
	EXPECT_GT(9000, dt) TH_LOG("poll was not woken by the deletion");
}

TEST_F(dev, set_poll_stream_validation)
{
	struct qkd_poll_stream p;
	uint8_t other[QKD_STREAM_ID_LEN];

	qkd_sid(other, 2);
	ASSERT_EQ(-ENOENT, qkd_set_poll(self->fd, other));
	EXPECT_TRUE(qkd_poll1(self->fd, 0) & POLLERR) TH_LOG("a failed SET_POLL_STREAM chooses nothing");

	memset(&p, 0, sizeof(p));
	memcpy(p.stream_id, self->sid, QKD_STREAM_ID_LEN);
	p.size = sizeof(p) - 8;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_SET_POLL_STREAM, &p));
	p.size = sizeof(p) + 8;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_SET_POLL_STREAM, &p));
	p.size = sizeof(p);
	p.flags = 1;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_SET_POLL_STREAM, &p));
	p.flags = 0;
	p.reserved[0] = 1;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_SET_POLL_STREAM, &p));
	p.reserved[0] = 0;
	p.reserved[1] = 1;
	ASSERT_EQ(-EINVAL, qkd_ioctl(self->fd, QKD_IOC_SET_POLL_STREAM, &p));
	ASSERT_EQ(-EFAULT, qkd_ioctl(self->fd, QKD_IOC_SET_POLL_STREAM, (void *)8));
	EXPECT_TRUE(qkd_poll1(self->fd, 0) & POLLERR);
	p.reserved[1] = 0;
	ASSERT_EQ(0, qkd_ioctl(self->fd, QKD_IOC_SET_POLL_STREAM, &p));
	EXPECT_EQ(0, qkd_poll1(self->fd, 0));

	/* a failed switch to another stream keeps the chosen one */
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 1, KS, 1));
	ASSERT_EQ(-ENOENT, qkd_set_poll(self->fd, other));
	EXPECT_EQ(POLLIN | POLLRDNORM, qkd_poll1(self->fd, 0));
}

/* A thread blocked in poll() is woken by a push from another thread. */
struct pusher_arg {
	const uint8_t *sid;
	unsigned int delay_ms;
	int err;
};

static void *pusher_thread(void *p)
{
	struct pusher_arg *a = p;
	struct qkd_nl nl;

	qkd_msleep(a->delay_ms);
	a->err = qkd_nl_open(&nl);
	if (!a->err) {
		a->err = qkd_key_add_pattern(&nl, a->sid, 0, 3, KS, 1);
		qkd_nl_close(&nl);
	}
	return NULL;
}

TEST_F(dev, poll_wakes_on_push_thread)
{
	struct pusher_arg a = { .sid = self->sid, .delay_ms = 250 };
	pthread_t th;
	uint8_t buf[KS];
	int ev, i;

	ASSERT_EQ(0, qkd_set_poll(self->fd, self->sid));
	ASSERT_EQ(0, pthread_create(&th, NULL, pusher_thread, &a));
	ev = qkd_poll1(self->fd, 10000);
	ASSERT_EQ(0, pthread_join(th, NULL));
	ASSERT_EQ(0, a.err);
	EXPECT_EQ(POLLIN | POLLRDNORM, ev);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
	EXPECT_EQ(0, qkd_poll1(self->fd, 0));
}

/* ------------------------------------------------------------- GET_KEYS */

static void keys_req_init(struct qkd_keys_request *r, const uint8_t *sid,
			  uint32_t number, uint32_t flags, void *keys,
			  uint32_t keys_len, uint64_t *indices)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->flags = flags;
	memcpy(r->stream_id, sid, QKD_STREAM_ID_LEN);
	r->number = number;
	r->keys_len = keys_len;
	r->keys_ptr = (uintptr_t)keys;
	r->indices_ptr = (uintptr_t)indices;
}

static int get_keys(int fd, const uint8_t *sid, uint32_t number,
		    uint32_t flags, void *keys, uint32_t keys_len,
		    uint64_t *indices, struct qkd_keys_request *out)
{
	struct qkd_keys_request r;
	int err;

	keys_req_init(&r, sid, number, flags, keys, keys_len, indices);
	err = qkd_ioctl(fd, QKD_IOC_GET_KEYS, &r);
	if (out)
		*out = r;
	return err;
}

/* @n keys in @buf with indices @idx equal to @want[], pattern @seed. */
static void check_keys(struct __test_metadata *_metadata,
		       const struct qkd_keys_request *r, const uint8_t *buf,
		       const uint64_t *idx, const uint64_t *want, uint32_t n,
		       uint32_t seed)
{
	uint32_t i;

	ASSERT_EQ(n, r->number) TH_LOG("number out is the keys delivered");
	EXPECT_EQ(KS, r->key_size);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(want[i], idx[i]) TH_LOG("key %u", i);
		EXPECT_TRUE(qkd_pattern_ok(buf + (size_t)i * KS, KS, idx[i], seed))
			TH_LOG("key bytes of index %ju", (uintmax_t)idx[i]);
	}
}

/* The lowest keys in index order; all or nothing unless PARTIAL. */
TEST_F(dev, get_keys_in_order)
{
	static const uint64_t want[] = { 0, 1, 2, 3, 4, 5, 6, 20, 21, 22, 1000 };
	struct qkd_nl *nl = &self->nl;
	struct qkd_keys_request r;
	uint8_t buf[16 * KS];
	uint64_t idx[16];

	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 0, 3, KS, 7));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 3, 4, KS, 7));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 20, 3, KS, 7));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, self->sid, 1000, 1, KS, 7));
	ASSERT_EQ(0, get_keys(self->fd, self->sid, 5, 0, buf, sizeof(buf), idx, &r));
	check_keys(_metadata, &r, buf, idx, want, 5, 7);
	EXPECT_EQ(6, qkd_stored(nl, self->sid));
	/* 6 stored, 7 wanted: nothing taken */
	ASSERT_DEV_ERR(EAGAIN, get_keys(self->fd, self->sid, 7, 0, buf, sizeof(buf), idx, NULL));
	/* the one key left after 5 more, then by index still works */
	ASSERT_EQ(0, get_keys(self->fd, self->sid, 5, 0, buf, sizeof(buf), idx, &r));
	check_keys(_metadata, &r, buf, idx, want + 5, 5, 7);
	ASSERT_EQ(0, get_keys(self->fd, self->sid, 16, QKD_KEYS_F_PARTIAL,
			      buf, sizeof(buf), idx, &r));
	check_keys(_metadata, &r, buf, idx, want + 10, 1, 7);
	ASSERT_DEV_ERR(EAGAIN, get_keys(self->fd, self->sid, 1, QKD_KEYS_F_PARTIAL,
					buf, sizeof(buf), idx, NULL));
	ASSERT_DEV_ERR(EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 3, buf, KS, NULL));
	EXPECT_EQ(11, counts_of(_metadata, nl, self->sid).delivered);
}

/* QKD_GET_KEYS_MAX keys in one request, interleaved with single gets. */
TEST_F(dev, get_keys_max)
{
	struct qkd_keys_request r;
	struct qkd_key_request one;
	uint64_t want[QKD_GET_KEYS_MAX], *idx;
	uint8_t *buf, k[KS];
	uint32_t i;

	buf = malloc((size_t)QKD_GET_KEYS_MAX * KS);
	idx = calloc(QKD_GET_KEYS_MAX, sizeof(*idx));
	ASSERT_TRUE(buf && idx);
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0,
						    QKD_GET_KEYS_MAX + 2, KS, 3));
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, k, KS, &one));
	EXPECT_EQ(0, one.index);
	ASSERT_DEV_ERR(EINVAL, get_keys(self->fd, self->sid, QKD_GET_KEYS_MAX + 1, 0,
					buf, (QKD_GET_KEYS_MAX + 1) * KS, idx, NULL));
	ASSERT_EQ(0, get_keys(self->fd, self->sid, QKD_GET_KEYS_MAX, 0, buf,
			      QKD_GET_KEYS_MAX * KS, idx, &r));
	for (i = 0; i < QKD_GET_KEYS_MAX; i++)
		want[i] = i + 1;
	check_keys(_metadata, &r, buf, idx, want, QKD_GET_KEYS_MAX, 3);
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, k, KS, &one));
	EXPECT_EQ(QKD_GET_KEYS_MAX + 1, one.index);
	free(buf);
	free(idx);
}

TEST_F(dev, get_keys_validation)
{
	uint8_t other[QKD_STREAM_ID_LEN], buf[4 * KS];
	struct qkd_keys_request r;
	uint64_t idx[4];
	size_t i;

	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 4, KS, 2));
	keys_req_init(&r, self->sid, 2, 0, buf, sizeof(buf), idx);
	r.size--;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEYS, &r));
	keys_req_init(&r, self->sid, 2, 1U << 1, buf, sizeof(buf), idx);
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEYS, &r));
	keys_req_init(&r, self->sid, 2, 0, buf, sizeof(buf), idx);
	r.reserved0 = 1;
	ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEYS, &r));
	for (i = 0; i < 4; i++) {
		QKD_CTX("reserved[%zu]", i);
		keys_req_init(&r, self->sid, 2, 0, buf, sizeof(buf), idx);
		r.reserved[i] = 1;
		ASSERT_DEV_ERR(EINVAL, qkd_ioctl(self->fd, QKD_IOC_GET_KEYS, &r));
	}
	QKD_CTX_CLEAR();
	ASSERT_DEV_ERR(EINVAL, get_keys(self->fd, self->sid, 0, 0, buf, sizeof(buf), idx, NULL));
	ASSERT_DEV_ERR(ERANGE, get_keys(self->fd, self->sid, 2, 0, buf, 2 * KS - 1, idx, NULL));
	ASSERT_DEV_ERR(ERANGE, get_keys(self->fd, self->sid, 3, QKD_KEYS_F_PARTIAL,
					buf, 2 * KS, idx, NULL));
	qkd_sid(other, 99);
	ASSERT_DEV_ERR(ENOENT, get_keys(self->fd, other, 2, 0, buf, sizeof(buf), idx, NULL));
	ASSERT_EQ(0, get_keys(self->fd, self->sid, 4, 0, buf, sizeof(buf), idx, &r));
	EXPECT_EQ(4, r.number);
}

/*
 * A bad pointer found before any key byte reached the caller: EFAULT, and
 * every key stays with its bytes. A bad indices_ptr is found first: the
 * indices and the request are written before any key, so the key area
 * holds no key byte afterwards.
 */
TEST_F(dev, get_keys_bad_buffer_loses_no_key)
{
	static const uint64_t want[] = { 5, 6, 7 };
	size_t pg = sysconf(_SC_PAGESIZE);
	struct qkd_keys_request r, *ro;
	uint8_t buf[3 * KS], fill[3 * KS];
	uint64_t idx[3];
	struct bad_pages b;
	void *m;

	bad_pages_map(_metadata, &b);
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 5, 3, KS, 9));
	ASSERT_DEV_ERR(EFAULT, get_keys(self->fd, self->sid, 3, 0, NULL, 3 * KS, idx, NULL));
	ASSERT_DEV_ERR(EFAULT, get_keys(self->fd, self->sid, 3, 0, b.ro, 3 * KS, idx, NULL));
	ASSERT_DEV_ERR(EFAULT, get_keys(self->fd, self->sid, 3, 0, b.none, 3 * KS, idx, NULL));
	ASSERT_DEV_ERR(EFAULT, get_keys(self->fd, self->sid, 3, 0, (void *)-4096L, 3 * KS,
					idx, NULL));
	memset(fill, 0xa5, sizeof(fill));
	memcpy(buf, fill, sizeof(buf));
	ASSERT_DEV_ERR(EFAULT, get_keys(self->fd, self->sid, 3, 0, buf, sizeof(buf),
					(uint64_t *)b.ro, NULL));
	ASSERT_EQ(0, memcmp(buf, fill, sizeof(buf)))
		TH_LOG("key bytes reached the caller although the keys stayed");
	ASSERT_DEV_ERR(EFAULT, get_keys(self->fd, self->sid, 3, 0, buf, sizeof(buf),
					(uint64_t *)(b.none - 8), NULL));
	ASSERT_EQ(0, memcmp(buf, fill, sizeof(buf)))
		TH_LOG("key bytes reached the caller although the keys stayed");
	ASSERT_DEV_ERR(EFAULT, get_keys(self->fd, self->sid, 3, 0, buf, sizeof(buf),
					(uint64_t *)-4096L, NULL));
	/* the request itself read-only: nothing can be reported, nothing taken */
	m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, m);
	ro = m;
	keys_req_init(ro, self->sid, 3, 0, buf, sizeof(buf), idx);
	ASSERT_EQ(0, mprotect(m, pg, PROT_READ));
	ASSERT_DEV_ERR(EFAULT, qkd_ioctl(self->fd, QKD_IOC_GET_KEYS, ro));
	munmap(m, pg);
	ASSERT_EQ(0, memcmp(buf, fill, sizeof(buf)));
	ASSERT_EQ(0, get_keys(self->fd, self->sid, 3, 0, buf, sizeof(buf), idx, &r));
	check_keys(_metadata, &r, buf, idx, want, 3, 9);
}

/*
 * The attack on GET_KEYS: a key area that faults in the middle of the third
 * key. The caller holds two keys and half of the third: the whole batch is
 * used up (EFAULT, delivered, never deliverable again), and the indices
 * array and the request, written first, say which keys they were.
 */
TEST_F(dev, get_keys_key_area_fault_consumes_batch)
{
	struct counts before, after;
	struct qkd_keys_request r;
	uint8_t k[KS], *area;
	uint64_t idx[3] = { 0 };
	int i;

	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 5, 4, KS, 9));
	area = straddle_map(_metadata) - 2 * KS - KS / 2;
	before = counts_of(_metadata, &self->nl, self->sid);
	ASSERT_EQ(-EFAULT, get_keys(self->fd, self->sid, 3, 0, area, 3 * KS, idx, &r));
	after = counts_of(_metadata, &self->nl, self->sid);
	EXPECT_TRUE(qkd_pattern_ok(area, KS, 5, 9)) TH_LOG("key 5 reached the caller");
	EXPECT_TRUE(qkd_pattern_ok(area + KS, KS, 6, 9)) TH_LOG("key 6 reached the caller");
	EXPECT_EQ(3, r.number);
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(5 + i, idx[i]) TH_LOG("indices[%d]", i);
		EXPECT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->fd, self->sid, 5 + i, k, KS, NULL))
			TH_LOG("key %d of a faulted batch is deliverable again", 5 + i);
	}
	EXPECT_EQ(before.stored - 3, after.stored) TH_LOG("the batch is still stored");
	EXPECT_EQ(before.delivered + 3, after.delivered)
		TH_LOG("the batch is not counted as delivered");
	EXPECT_EQ(before.next, after.next);
	ASSERT_EQ(0, qkd_get_key(self->fd, self->sid, k, KS, NULL));
	ASSERT_EQ(-EAGAIN, qkd_get_key(self->fd, self->sid, k, KS, NULL));
}

/* ------------------------------------------------------- read-only opens */

/*
 * An O_RDONLY open may look (INFO, STREAM_STATUS, poll) but not take: every
 * key-taking ioctl fails with EBADF and consumes nothing.
 */
TEST_F(dev, readonly_open_takes_no_key)
{
	struct qkd_stream_status st;
	struct qkd_keys_request r;
	struct qkd_info in;
	uint8_t buf[2 * KS];
	uint64_t idx[2];
	int fd;

	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 2, KS, 3));
	fd = open(QKD_DEV_PATH, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_DEV_ERR(EBADF, qkd_get_key(fd, self->sid, buf, KS, NULL));
	ASSERT_DEV_ERR(EBADF, qkd_get_key_at(fd, self->sid, 1, buf, KS, NULL));
	ASSERT_DEV_ERR(EBADF, get_keys(fd, self->sid, 2, 0, buf, sizeof(buf), idx, &r));
	memset(&in, 0, sizeof(in));
	in.size = sizeof(in);
	EXPECT_EQ(0, qkd_ioctl(fd, QKD_IOC_INFO, &in));
	EXPECT_EQ(0, qkd_dev_status(fd, self->sid, &st));
	EXPECT_EQ(2, st.stored_key_count);
	EXPECT_EQ(0, qkd_set_poll(fd, self->sid));
	close(fd);
	/* write-only is a writer: it takes */
	fd = open(QKD_DEV_PATH, O_WRONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, qkd_get_key(fd, self->sid, buf, KS, NULL));
	close(fd);
	EXPECT_EQ(0, qkd_get_key(self->fd, self->sid, buf, KS, NULL));
}

/* GET_KEYS and GET_KEY from two threads: every index delivered once. */
struct keys_race {
	int fd;
	const uint8_t *sid;
	uint32_t number;
	uint64_t seen[2048];
	size_t n;
};

static void *keys_race_thread(void *arg)
{
	struct keys_race *k = arg;
	uint8_t buf[8 * KS];
	uint64_t idx[8];
	struct qkd_keys_request r;
	struct qkd_key_request one;
	uint32_t i;

	for (;;) {
		if (k->number == 1) {
			if (qkd_get_key(k->fd, k->sid, buf, KS, &one))
				break;
			k->seen[k->n++] = one.index;
			continue;
		}
		if (get_keys(k->fd, k->sid, k->number, QKD_KEYS_F_PARTIAL,
			     buf, sizeof(buf), idx, &r))
			break;
		for (i = 0; i < r.number; i++)
			k->seen[k->n++] = idx[i];
	}
	return NULL;
}

TEST_F(dev, get_keys_race_with_get_key)
{
	struct keys_race a = { .fd = self->fd, .sid = self->sid, .number = 8 };
	struct keys_race b = { .fd = self->fd, .sid = self->sid, .number = 1 };
	static uint8_t seen[2048];
	pthread_t ta, tb;
	size_t i;

	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 0, 1000, KS, 1));
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sid, 1000, 1000, KS, 1));
	ASSERT_EQ(0, pthread_create(&ta, NULL, keys_race_thread, &a));
	ASSERT_EQ(0, pthread_create(&tb, NULL, keys_race_thread, &b));
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	ASSERT_EQ(2000, a.n + b.n) TH_LOG("GET_KEYS %zu + GET_KEY %zu", a.n, b.n);
	for (i = 0; i < a.n; i++)
		seen[a.seen[i]]++;
	for (i = 0; i < b.n; i++)
		seen[b.seen[i]]++;
	for (i = 0; i < 2000; i++)
		ASSERT_EQ(1, seen[i]) TH_LOG("index %zu delivered %u times", i, seen[i]);
}

QKD_TEST_MAIN
