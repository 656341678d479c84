// SPDX-License-Identifier: GPL-2.0-only
/*
 * The in-kernel API of qkd.ko (include/linux/qkd.h, Documentation/
 * kernel-api.md), called by a real in-kernel user: the test module
 * qkd_kapi_test.ko (tests/kmod/), driven through /dev/qkd_kapi_test.
 *
 * Two streams carry the same keys at the same indices, standing for the two
 * ends of a link (as in test_crypto.c): the test module keys a transform in
 * the kernel from stream A's index i, and the test computes the same
 * operation in userspace (libkcapi) with stream B's copy of index i, read
 * through /dev/qkd. Every rejected call must take nothing from the store.
 * Also: the "qkd" key type seen by an in-kernel user, and its payload
 * dropped promptly when the key expires.
 *
 * Needs the test module: $QKD_KAPI_KO, else qkd_kapi_test.ko next to
 * $QKD_KO (tests/vm/run-kernel-tests.sh puts it there), else
 * build/kmod-kapi-test/$(uname -r)/qkd_kapi_test.ko; SKIP without it. The
 * test loads it for each test and unloads it after (qkd.ko cannot be
 * unloaded while it is loaded). Each test may take 120 s instead of the
 * harness's 30: the first use of an algorithm loads its modules, which
 * takes tens of seconds under emulation on a loaded host.
 */
#include <libgen.h>
#include <sys/utsname.h>
#include <linux/ioctl.h>
#include <linux/keyctl.h>
#include <linux/types.h>

#include <kcapi.h>

#include "qkd_test.h"
#include "../kmod/qkd_kapi_test.h"

#define KS	32	/* key size of the streams */
#define NKEYS	16	/* keys pushed to each stream */
#define SEED	11
#define KAPI_DEV "/dev/" QKD_KAPI_DEV_NAME
#define KAPI_MOD "qkd_kapi_test"

static char kapi_ko[4096];

/* Where the test module is; false if nowhere. */
static bool find_kapi_ko(void)
{
	const char *env = getenv("QKD_KAPI_KO");
	char tmp[4096];
	struct utsname u;

	if (env) {
		snprintf(kapi_ko, sizeof(kapi_ko), "%s", env);
		return access(kapi_ko, R_OK) == 0;
	}
	env = getenv("QKD_KO");
	if (env) {
		snprintf(tmp, sizeof(tmp), "%s", env);
		snprintf(kapi_ko, sizeof(kapi_ko), "%s/%s.ko", dirname(tmp), KAPI_MOD);
		if (access(kapi_ko, R_OK) == 0)
			return true;
	}
	if (uname(&u))
		return false;
	snprintf(kapi_ko, sizeof(kapi_ko), "build/kmod-kapi-test/%s/%s.ko",
		 u.release, KAPI_MOD);
	return access(kapi_ko, R_OK) == 0;
}

static int kapi_load(void)
{
	int fd = open(kapi_ko, O_RDONLY | O_CLOEXEC), err = 0, i;

	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0))
		err = -errno;
	close(fd);
	if (err)
		return err;
	/* devtmpfs makes the node (no udev in the VM) */
	for (i = 0; i < 50 && access(KAPI_DEV, F_OK); i++)
		qkd_msleep(100);
	return access(KAPI_DEV, F_OK) ? -ENODEV : 0;
}

static int kapi_unload(void)
{
	int i;

	for (i = 0; i < 50; i++) {
		if (syscall(SYS_delete_module, KAPI_MOD, O_NONBLOCK) == 0)
			return 0;
		if (errno != EAGAIN && errno != EBUSY)
			return -errno;
		qkd_msleep(100);
	}
	return -errno;
}

static void kapi_init(struct qkd_kapi_req *r, uint32_t op, const uint8_t *sid,
		      uint32_t select, uint64_t index)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->op = op;
	r->select = select;
	r->index = index;
	if (sid)
		memcpy(r->stream_id, sid, QKD_STREAM_ID_LEN);
}

/* QKD_KAPI_IOC_CALL: 0 or the ioctl's -errno; the API's result is r->ret. */
static int kapi_call(int fd, struct qkd_kapi_req *r)
{
	return ioctl(fd, QKD_KAPI_IOC_CALL, r) ? -errno : 0;
}

static long keyctl5(int cmd, unsigned long a, unsigned long b, unsigned long c,
		    unsigned long d)
{
	return syscall(SYS_keyctl, cmd, a, b, c, d);
}

static void uuid_str(const uint8_t *u, char *out)
{
	int i, o = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		o += sprintf(out + o, "%02x", u[i]);
	}
}

/* The /proc/keys line of @serial, or "". */
static void proc_keys_line(int32_t serial, char *out, size_t len)
{
	char line[1024], id[16];
	FILE *f = fopen("/proc/keys", "r");

	out[0] = 0;
	if (!f)
		return;
	snprintf(id, sizeof(id), "%08x ", serial);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, id, strlen(id)))
			snprintf(out, len, "%s", line);
	fclose(f);
}

FIXTURE(kapi) {
	struct qkd_nl nl;
	int dev;		/* /dev/qkd */
	int kapi;		/* /dev/qkd_kapi_test */
	int kmsg;
	bool loaded;		/* we loaded the test module */
	uint8_t sa[QKD_STREAM_ID_LEN];	/* end A: keyed in the kernel */
	uint8_t sb[QKD_STREAM_ID_LEN];	/* end B: the same keys */
};

FIXTURE_SETUP(kapi)
{
	int err;

	self->dev = -1;
	self->kapi = -1;
	self->kmsg = -1;
	err = qkd_enter_test_netns();
	if (err == -EPERM)
		QKD_SKIP_SETUP("needs root (unshare CLONE_NEWNET)");
	ASSERT_EQ(0, err);
	err = qkd_nl_open(&self->nl);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	if (access(KAPI_DEV, F_OK)) {
		if (!find_kapi_ko())
			QKD_SKIP_SETUP("test module %s.ko not found (tests/kmod/build.sh; QKD_KAPI_KO)",
				       KAPI_MOD);
		err = kapi_load();
		ASSERT_EQ(0, err) TH_LOG("load %s: %s", kapi_ko, strerror(-err));
		self->loaded = true;
	}
	self->kmsg = qkd_kmsg_open();
	self->dev = qkd_dev_open();
	ASSERT_LE(0, self->dev) TH_LOG("open %s: %s", QKD_DEV_PATH, strerror(-self->dev));
	/* Opened in the test netns: the module's calls use this netns. */
	self->kapi = open(KAPI_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->kapi) TH_LOG("open %s: %s", KAPI_DEV, strerror(errno));
	qkd_sid(self->sa, 1);
	qkd_sid(self->sb, 2);
	mk_link_stream(_metadata, &self->nl, 1, self->sa, KS);
	ASSERT_NL_OK(&self->nl, qkd_stream_new(&self->nl, self->sb, 1, KS,
					       QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sa, 0,
						    NKEYS, KS, SEED));
	ASSERT_NL_OK(&self->nl, qkd_key_add_pattern(&self->nl, self->sb, 0,
						    NKEYS, KS, SEED));
	if (system("modprobe -a algif_skcipher algif_aead algif_hash >/dev/null 2>&1"))
		fprintf(stderr, "# modprobe algif_*: failed (autoload may still work)\n");
}

FIXTURE_TEARDOWN(kapi)
{
	QKD_TEARDOWN_BEGIN();
	if (self->kapi >= 0)
		close(self->kapi);
	if (self->dev >= 0)
		close(self->dev);
	qkd_nl_close(&self->nl);
	if (self->loaded)
		EXPECT_EQ(0, kapi_unload()) TH_LOG("rmmod %s", KAPI_MOD);
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->kmsg >= 0)
		close(self->kmsg);
}

/* Stored / delivered of a stream. */
struct counts {
	uint64_t stored, delivered;
};

static struct counts counts_of(struct __test_metadata *_metadata,
			       struct qkd_nl *nl, const uint8_t *sid)
{
	struct counts c = { 0, 0 };
	struct qkd_obj o;

	ASSERT_NL_OK(nl, qkd_stream_get(nl, sid, &o));
	c.stored = qkd_obj_u(&o, QKD_A_STREAM_STORED_KEYS);
	c.delivered = qkd_obj_u(&o, QKD_T_STATS(KEYS_DELIVERED));
	return c;
}

/* B's copy of @index, through /dev/qkd. */
static void key_b(struct __test_metadata *_metadata, int dev,
		  const uint8_t *sb, uint64_t index, uint8_t *key)
{
	ASSERT_EQ(0, qkd_get_key_at(dev, sb, index, key, KS, NULL))
		TH_LOG("B's copy of index %ju", (uintmax_t)index);
	ASSERT_TRUE(qkd_pattern_ok(key, KS, index, SEED));
}

static void fill_in(struct qkd_kapi_req *r, uint32_t len)
{
	static const uint8_t iv[16] = "qkd-kapi-iv-0123";
	uint32_t i;

	r->in_len = len;
	for (i = 0; i < len; i++)
		r->in[i] = (uint8_t)(i * 7 + 3);
	memcpy(r->iv, iv, sizeof(iv));
}

/* HMAC-SHA256 in userspace (libkcapi). */
static void hmac_user(struct __test_metadata *_metadata, const uint8_t *key,
		      uint32_t keylen, const uint8_t *in, uint32_t inlen,
		      uint8_t *mac)
{
	struct kcapi_handle *h;

	ASSERT_EQ(0, kcapi_md_init(&h, "hmac(sha256)", 0));
	ASSERT_EQ(0, kcapi_md_setkey(h, key, keylen));
	ASSERT_EQ(QKD_KAPI_MAC_LEN, kcapi_md_digest(h, in, inlen, mac,
						    QKD_KAPI_MAC_LEN));
	kcapi_md_destroy(h);
}

/*
 * What the module computed with A's key at r->index (r->key_len bytes of
 * it, 0: all) equals what libkcapi computes with B's copy of that index.
 */
static void check_known_answer(struct __test_metadata *_metadata, int dev,
			       const uint8_t *sb, const struct qkd_kapi_req *r)
{
	uint32_t keylen = r->key_len ? r->key_len : KS;
	uint8_t key[KS], want[QKD_KAPI_DATA_MAX + QKD_KAPI_TAG_LEN];
	struct kcapi_handle *h;
	ssize_t n;

	key_b(_metadata, dev, sb, r->index, key);
	switch (r->op) {
	case QKD_KAPI_TAKE:
	case QKD_KAPI_USE:
	case QKD_KAPI_SHASH:
		ASSERT_EQ(QKD_KAPI_MAC_LEN, r->out_len);
		hmac_user(_metadata, key, keylen, r->in, r->in_len, want);
		break;
	case QKD_KAPI_SKCIPHER:
		ASSERT_EQ(r->in_len, r->out_len);
		ASSERT_EQ(0, kcapi_cipher_init(&h, r->alg, 0));
		ASSERT_EQ(0, kcapi_cipher_setkey(h, key, keylen));
		n = kcapi_cipher_encrypt(h, r->in, r->in_len, r->iv, want,
					 r->in_len, KCAPI_ACCESS_HEURISTIC);
		kcapi_cipher_destroy(h);
		ASSERT_EQ((ssize_t)r->in_len, n);
		break;
	case QKD_KAPI_AEAD:
		ASSERT_EQ(r->in_len + QKD_KAPI_TAG_LEN, r->out_len);
		ASSERT_EQ(0, kcapi_aead_init(&h, r->alg, 0));
		ASSERT_EQ(0, kcapi_aead_setkey(h, key, keylen));
		ASSERT_EQ(0, kcapi_aead_settaglen(h, QKD_KAPI_TAG_LEN));
		kcapi_aead_setassoclen(h, r->assoclen);
		n = kcapi_aead_encrypt(h, r->in, r->in_len, r->iv, want,
				       r->out_len, KCAPI_ACCESS_HEURISTIC);
		kcapi_aead_destroy(h);
		ASSERT_EQ((ssize_t)r->out_len, n);
		break;
	default:
		ASSERT_TRUE(false) TH_LOG("op %u", r->op);
	}
	EXPECT_EQ(0, memcmp(r->out, want, r->out_len))
		TH_LOG("op %u %s: the kernel (A, index %ju) and userspace (B) differ",
		       r->op, r->alg, (uintmax_t)r->index);
	memset(key, 0, sizeof(key));
}

/*
 * One known-answer call: @op with @alg on A's key chosen by @select/@index
 * (@keylen bytes); takes exactly one key of A (the one reported), then
 * compares with B's copy. Returns the index taken.
 */
static uint64_t kat(struct __test_metadata *_metadata,
		    FIXTURE_DATA(kapi) *self, uint32_t op, const char *alg,
		    uint32_t select, uint64_t index, uint32_t keylen)
{
	struct counts before, after;
	uint8_t kid[QKD_KEY_ID_LEN];
	struct qkd_kapi_req r;
	int want_ret;

	kapi_init(&r, op, self->sa, select, index);
	if (select == QKD_KAPI_SEL_KEY_ID)
		qkd_key_id_from_index(r.key_id, self->sa, index);
	snprintf(r.alg, sizeof(r.alg), "%s", alg ? alg : "");
	r.key_len = keylen;
	fill_in(&r, op == QKD_KAPI_AEAD ? 16 + 64 : 64);
	if (op == QKD_KAPI_AEAD)
		r.assoclen = 16;
	before = counts_of(_metadata, &self->nl, self->sa);
	ASSERT_EQ(0, kapi_call(self->kapi, &r));
	after = counts_of(_metadata, &self->nl, self->sa);
	/* take returns the key size, use the bytes used, setkey 0 */
	want_ret = op == QKD_KAPI_TAKE ? KS : op == QKD_KAPI_USE ?
		   (int)(keylen ? keylen : KS) : 0;
	ASSERT_EQ(want_ret, r.ret) TH_LOG("op %u %s: %d (%s)", op, r.alg, r.ret,
					  strerror(-r.ret));
	EXPECT_EQ(before.stored - 1, after.stored);
	EXPECT_EQ(before.delivered + 1, after.delivered);
	if (select != QKD_KAPI_SEL_NEXT)
		EXPECT_EQ(index, r.index);
	qkd_key_id_from_index(kid, self->sa, r.index);
	EXPECT_EQ(0, memcmp(kid, r.key_id, QKD_KEY_ID_LEN)) TH_LOG("key_id out");
	check_known_answer(_metadata, self->dev, self->sb, &r);
	/* once per end: that index of A is gone */
	{
		uint8_t buf[KS];

		EXPECT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->dev, self->sa,
						       r.index, buf, KS, NULL));
	}
	return r.index;
}

/* A call that fails with @err and takes nothing from A. */
#define ASSERT_KAPI_NOTHING_TAKEN(err, r) do { \
	struct counts __b = counts_of(_metadata, &self->nl, self->sa), __a; \
	ASSERT_EQ(0, kapi_call(self->kapi, (r))); \
	EXPECT_EQ(-(err), (r)->ret) TH_LOG("op %u %s: got %d (%s), want %d (%s)", \
					   (r)->op, (r)->alg, (r)->ret, strerror(-(r)->ret), \
					   -(err), strerror(err)); \
	EXPECT_EQ(0, (r)->out_len) TH_LOG("op %u: output after a failure", (r)->op); \
	__a = counts_of(_metadata, &self->nl, self->sa); \
	EXPECT_EQ(__b.stored, __a.stored) TH_LOG("op %u: stored keys changed", (r)->op); \
	EXPECT_EQ(__b.delivered, __a.delivered) TH_LOG("op %u: delivered changed", (r)->op); \
} while (0)

/* ----------------------------------------------------- known answers */

TEST_F_TIMEOUT(kapi, key_size, 120)
{
	struct qkd_kapi_req r;
	uint8_t other[QKD_STREAM_ID_LEN];

	kapi_init(&r, QKD_KAPI_SIZE, self->sa, 0, 0);
	ASSERT_EQ(0, kapi_call(self->kapi, &r));
	EXPECT_EQ(KS, r.ret);
	qkd_sid(other, 9);
	kapi_init(&r, QKD_KAPI_SIZE, other, 0, 0);
	ASSERT_EQ(0, kapi_call(self->kapi, &r));
	EXPECT_EQ(-ENOENT, r.ret);
	/* the ioctl itself rejects a malformed request */
	kapi_init(&r, QKD_KAPI_SIZE, self->sa, 0, 0);
	r.size = 4;
	EXPECT_EQ(-EINVAL, kapi_call(self->kapi, &r));
	kapi_init(&r, 99, self->sa, 0, 0);
	EXPECT_EQ(-EINVAL, kapi_call(self->kapi, &r));
}

/* qkd_key_take(): by index, next, key_ID; the whole key. */
TEST_F_TIMEOUT(kapi, take, 120)
{
	EXPECT_EQ(3, kat(_metadata, self, QKD_KAPI_TAKE, NULL, QKD_KAPI_SEL_INDEX, 3, 0));
	EXPECT_EQ(0, kat(_metadata, self, QKD_KAPI_TAKE, NULL, QKD_KAPI_SEL_NEXT, 0, 0));
	EXPECT_EQ(1, kat(_metadata, self, QKD_KAPI_TAKE, NULL, QKD_KAPI_SEL_NEXT, 0, 0));
	EXPECT_EQ(9, kat(_metadata, self, QKD_KAPI_TAKE, NULL, QKD_KAPI_SEL_KEY_ID, 9, 0));
}

/* qkd_key_use(): the whole key and a 16-byte prefix. */
TEST_F_TIMEOUT(kapi, use, 120)
{
	EXPECT_EQ(2, kat(_metadata, self, QKD_KAPI_USE, NULL, QKD_KAPI_SEL_INDEX, 2, 0));
	EXPECT_EQ(4, kat(_metadata, self, QKD_KAPI_USE, NULL, QKD_KAPI_SEL_INDEX, 4, 16));
	EXPECT_EQ(0, kat(_metadata, self, QKD_KAPI_USE, NULL, QKD_KAPI_SEL_NEXT, 0, 24));
	EXPECT_EQ(7, kat(_metadata, self, QKD_KAPI_USE, NULL, QKD_KAPI_SEL_KEY_ID, 7, 0));
}

TEST_F_TIMEOUT(kapi, skcipher_cbc_aes, 120)
{
	EXPECT_EQ(5, kat(_metadata, self, QKD_KAPI_SKCIPHER, "cbc(aes)",
			 QKD_KAPI_SEL_INDEX, 5, 0));
	/* AES-128 from a prefix */
	EXPECT_EQ(0, kat(_metadata, self, QKD_KAPI_SKCIPHER, "cbc(aes)",
			 QKD_KAPI_SEL_NEXT, 0, 16));
	EXPECT_EQ(12, kat(_metadata, self, QKD_KAPI_SKCIPHER, "cbc(aes)",
			  QKD_KAPI_SEL_KEY_ID, 12, 24));
	/* XTS takes the whole 32 bytes as two AES-128 keys */
	EXPECT_EQ(13, kat(_metadata, self, QKD_KAPI_SKCIPHER, "xts(aes)",
			  QKD_KAPI_SEL_INDEX, 13, 0));
}

TEST_F_TIMEOUT(kapi, aead_gcm_aes, 120)
{
	EXPECT_EQ(6, kat(_metadata, self, QKD_KAPI_AEAD, "gcm(aes)",
			 QKD_KAPI_SEL_INDEX, 6, 0));
	EXPECT_EQ(0, kat(_metadata, self, QKD_KAPI_AEAD, "gcm(aes)",
			 QKD_KAPI_SEL_NEXT, 0, 16));
	EXPECT_EQ(11, kat(_metadata, self, QKD_KAPI_AEAD, "gcm(aes)",
			  QKD_KAPI_SEL_KEY_ID, 11, 0));
}

TEST_F_TIMEOUT(kapi, shash_hmac_sha256, 120)
{
	EXPECT_EQ(8, kat(_metadata, self, QKD_KAPI_SHASH, "hmac(sha256)",
			 QKD_KAPI_SEL_INDEX, 8, 0));
	EXPECT_EQ(0, kat(_metadata, self, QKD_KAPI_SHASH, "hmac(sha256)",
			 QKD_KAPI_SEL_NEXT, 0, 0));
	EXPECT_EQ(10, kat(_metadata, self, QKD_KAPI_SHASH, "hmac(sha256)",
			  QKD_KAPI_SEL_KEY_ID, 10, 20));
}

/* ------------------------------------------------------------ errors */

static const struct {
	uint32_t op;
	const char *alg;
} all_ops[] = {
	{ QKD_KAPI_TAKE, "" },
	{ QKD_KAPI_USE, "" },
	{ QKD_KAPI_SKCIPHER, "cbc(aes)" },
	{ QKD_KAPI_AEAD, "gcm(aes)" },
	{ QKD_KAPI_SHASH, "hmac(sha256)" },
};

static void err_req(struct qkd_kapi_req *r, int i, const uint8_t *sid,
		    uint32_t select, uint64_t index)
{
	kapi_init(r, all_ops[i].op, sid, select, index);
	snprintf(r->alg, sizeof(r->alg), "%s", all_ops[i].alg);
	fill_in(r, 32);
	if (r->op == QKD_KAPI_AEAD)
		r->assoclen = 16;
}

/* Unknown stream, bad selection, consumed, not pushed, empty: every API. */
TEST_F_TIMEOUT(kapi, selection_errors, 120)
{
	uint8_t other[QKD_STREAM_ID_LEN], buf[KS];
	struct qkd_kapi_req r;
	int i;

	qkd_sid(other, 9);
	/* consumed at this end (through /dev/qkd) */
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sa, 1, buf, KS, NULL));
	for (i = 0; i < (int)ARRAY_SIZE(all_ops); i++) {
		QKD_CTX("op %u", all_ops[i].op);
		err_req(&r, i, other, QKD_KAPI_SEL_NEXT, 0);
		ASSERT_KAPI_NOTHING_TAKEN(ENOENT, &r);
		err_req(&r, i, other, QKD_KAPI_SEL_INDEX, 0);
		ASSERT_KAPI_NOTHING_TAKEN(ENOENT, &r);
		err_req(&r, i, self->sa, QKD_KAPI_SEL_INDEX, 1);
		ASSERT_KAPI_NOTHING_TAKEN(EKEYEXPIRED, &r);
		err_req(&r, i, self->sa, QKD_KAPI_SEL_KEY_ID, 1);
		qkd_key_id_from_index(r.key_id, self->sa, 1);
		ASSERT_KAPI_NOTHING_TAKEN(EKEYEXPIRED, &r);
		err_req(&r, i, self->sa, QKD_KAPI_SEL_INDEX, NKEYS);
		ASSERT_KAPI_NOTHING_TAKEN(ENOKEY, &r);
		err_req(&r, i, self->sa, QKD_KAPI_SEL_INDEX, QKD_INDEX_MAX + 1);
		ASSERT_KAPI_NOTHING_TAKEN(EINVAL, &r);
		/* a key_ID of another stream */
		err_req(&r, i, self->sa, QKD_KAPI_SEL_KEY_ID, 0);
		qkd_key_id_from_index(r.key_id, other, 2);
		ASSERT_KAPI_NOTHING_TAKEN(EINVAL, &r);
		err_req(&r, i, self->sa, 7, 0);
		ASSERT_KAPI_NOTHING_TAKEN(EINVAL, &r);
	}
	/* empty stream: next fails with EAGAIN */
	ASSERT_NL_OK(&self->nl, qkd_key_flush(&self->nl, self->sa));
	for (i = 0; i < (int)ARRAY_SIZE(all_ops); i++) {
		err_req(&r, i, self->sa, QKD_KAPI_SEL_NEXT, 0);
		ASSERT_KAPI_NOTHING_TAKEN(EAGAIN, &r);
	}
	QKD_CTX_CLEAR();
}

/*
 * A key the transform refuses (a length the algorithm does not take), a
 * length outside 16..key size, a buffer too small, a refusing callback:
 * the call fails and the key is still at its index, with its bytes.
 */
TEST_F_TIMEOUT(kapi, refused_keys_go_back, 120)
{
	static const struct {
		uint32_t op;
		const char *alg;
		uint32_t keylen;
		int err;
	} cases[] = {
		{ QKD_KAPI_SKCIPHER, "cbc(aes)", 20, EINVAL },
		{ QKD_KAPI_SKCIPHER, "cbc(aes)", 17, EINVAL },
		{ QKD_KAPI_SKCIPHER, "xts(aes)", 16, EINVAL },
		{ QKD_KAPI_AEAD, "gcm(aes)", 20, EINVAL },
		{ QKD_KAPI_AEAD, "gcm(aes)", 31, EINVAL },
		{ QKD_KAPI_SKCIPHER, "cbc(aes)", 15, ERANGE },
		{ QKD_KAPI_AEAD, "gcm(aes)", KS + 1, ERANGE },
		{ QKD_KAPI_SHASH, "hmac(sha256)", 8, ERANGE },
		{ QKD_KAPI_USE, "", 1, ERANGE },
		{ QKD_KAPI_USE, "", KS + 1, ERANGE },
	};
	struct qkd_kapi_req r;
	uint8_t buf[KS];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		QKD_CTX("case %zu: %s keylen %u", i, cases[i].alg, cases[i].keylen);
		kapi_init(&r, cases[i].op, self->sa, QKD_KAPI_SEL_INDEX, 3);
		snprintf(r.alg, sizeof(r.alg), "%s", cases[i].alg);
		r.key_len = cases[i].keylen;
		fill_in(&r, 32);
		ASSERT_KAPI_NOTHING_TAKEN(cases[i].err, &r);
		/* the same with "next": index 0 stays */
		r.select = QKD_KAPI_SEL_NEXT;
		r.index = 0;
		ASSERT_KAPI_NOTHING_TAKEN(cases[i].err, &r);
	}
	QKD_CTX_CLEAR();
	/* qkd_key_take() with a buffer below the key size */
	kapi_init(&r, QKD_KAPI_TAKE, self->sa, QKD_KAPI_SEL_INDEX, 3);
	r.buflen = KS - 1;
	ASSERT_KAPI_NOTHING_TAKEN(ERANGE, &r);
	/* a qkd_key_use() callback that refuses the key */
	kapi_init(&r, QKD_KAPI_USE, self->sa, QKD_KAPI_SEL_INDEX, 3);
	r.flags = QKD_KAPI_F_USE_FAIL;
	ASSERT_KAPI_NOTHING_TAKEN(EIO, &r);
	r.select = QKD_KAPI_SEL_NEXT;
	ASSERT_KAPI_NOTHING_TAKEN(EIO, &r);

	/* still there, intact, and still the same as B's */
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sa, 3, buf, KS, NULL));
	EXPECT_TRUE(qkd_pattern_ok(buf, KS, 3, SEED));
	EXPECT_EQ(0, kat(_metadata, self, QKD_KAPI_SKCIPHER, "cbc(aes)",
			 QKD_KAPI_SEL_NEXT, 0, 0));
}

/* The module's file is bound to its opener's netns, as /dev/qkd is. */
TEST_F_TIMEOUT(kapi, other_netns, 120)
{
	struct qkd_kapi_req r;
	int fd, err;

	err = qkd_new_netns();
	ASSERT_EQ(0, err);
	fd = open(KAPI_DEV, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	/* the stream exists in the test netns only */
	kapi_init(&r, QKD_KAPI_SIZE, self->sa, 0, 0);
	ASSERT_EQ(0, kapi_call(fd, &r));
	EXPECT_EQ(-ENOENT, r.ret);
	kapi_init(&r, QKD_KAPI_SHASH, self->sa, QKD_KAPI_SEL_NEXT, 0);
	snprintf(r.alg, sizeof(r.alg), "hmac(sha256)");
	ASSERT_EQ(0, kapi_call(fd, &r));
	EXPECT_EQ(-ENOENT, r.ret);
	close(fd);
	/* the fd opened before still works in the netns it was opened in */
	kapi_init(&r, QKD_KAPI_SIZE, self->sa, 0, 0);
	ASSERT_EQ(0, kapi_call(self->kapi, &r));
	EXPECT_EQ(KS, r.ret);
}

/* ------------------------------------------------- the qkd key type */

/* add_key("qkd", desc, "fd=N stream=... index=I", process keyring). */
static int32_t add_qkd_key(int dev, const uint8_t *sid, uint64_t index)
{
	char spec[256], s[40];
	long r;

	uuid_str(sid, s);
	snprintf(spec, sizeof(spec), "fd=%d stream=%s index=%ju", dev, s,
		 (uintmax_t)index);
	r = syscall(SYS_add_key, "qkd", "", spec, strlen(spec),
		    KEY_SPEC_PROCESS_KEYRING);
	return r < 0 ? -errno : (int32_t)r;
}

static void probe_desc(struct __test_metadata *_metadata, int kapi,
		       const uint8_t *sid, uint64_t index,
		       struct qkd_kapi_req *r)
{
	uint8_t kid[QKD_KEY_ID_LEN];
	char s[40];

	kapi_init(r, QKD_KAPI_KEY_PROBE, NULL, 0, 0);
	qkd_key_id_from_index(kid, sid, index);
	uuid_str(kid, s);
	snprintf(r->desc, sizeof(r->desc), "qkd:%s", s);
	fill_in(r, 64);
	ASSERT_EQ(0, kapi_call(kapi, r));
}

static void probe_serial(struct __test_metadata *_metadata, int kapi,
			 int32_t serial, struct qkd_kapi_req *r)
{
	kapi_init(r, QKD_KAPI_KEY_PROBE, NULL, 0, 0);
	r->serial = serial;
	ASSERT_EQ(0, kapi_call(kapi, r));
}

/* An in-kernel user finds a qkd key by description and uses its payload. */
TEST_F_TIMEOUT(kapi, key_type_payload, 120)
{
	uint8_t key[KS], mac[QKD_KAPI_MAC_LEN];
	struct qkd_kapi_req r;
	int32_t serial;

	serial = add_qkd_key(self->dev, self->sa, 6);
	ASSERT_LT(0, serial) TH_LOG("add_key qkd: %s", strerror(-serial));
	probe_desc(_metadata, self->kapi, self->sa, 6, &r);
	ASSERT_EQ(0, r.lookup_ret) TH_LOG("request_key: %s", strerror(-r.lookup_ret));
	EXPECT_EQ(0, r.validate_ret);
	EXPECT_EQ(KS, r.payload_len);
	EXPECT_EQ(6, r.index);
	ASSERT_EQ(QKD_KAPI_MAC_LEN, r.out_len);
	key_b(_metadata, self->dev, self->sb, 6, key);
	hmac_user(_metadata, key, KS, r.in, r.in_len, mac);
	EXPECT_EQ(0, memcmp(mac, r.out, sizeof(mac)))
		TH_LOG("the payload is not B's copy of index 6");

	/* revoked: no payload at once */
	ASSERT_EQ(0, keyctl5(KEYCTL_REVOKE, serial, 0, 0, 0));
	probe_serial(_metadata, self->kapi, serial, &r);
	EXPECT_EQ(0, r.lookup_ret);
	EXPECT_EQ(-EKEYREVOKED, r.validate_ret);
	EXPECT_EQ(0, r.payload_len) TH_LOG("a revoked key keeps its payload");
}

/*
 * "keyctl timeout KEY 1": the payload is dropped (zeroed, freed) within
 * about 2 s of the expiry, not when the key garbage collector destroys the
 * key (gc_delay, 300 s); a key without a timeout keeps its payload.
 */
TEST_F_TIMEOUT(kapi, key_expiry_drops_payload, 120)
{
	char line[1024];
	struct qkd_kapi_req r;
	int32_t exp_key, keep_key;
	uint64_t t0, waited;

	exp_key = add_qkd_key(self->dev, self->sa, 6);
	ASSERT_LT(0, exp_key) TH_LOG("add_key qkd: %s", strerror(-exp_key));
	keep_key = add_qkd_key(self->dev, self->sa, 7);
	ASSERT_LT(0, keep_key);
	probe_serial(_metadata, self->kapi, exp_key, &r);
	ASSERT_EQ(0, r.lookup_ret);
	EXPECT_EQ(0, r.validate_ret);
	EXPECT_EQ(KS, r.payload_len);

	ASSERT_EQ(0, keyctl5(KEYCTL_SET_TIMEOUT, exp_key, 1, 0, 0))
		TH_LOG("keyctl timeout: %s", strerror(errno));
	t0 = qkd_now_ms();
	/* Expired after 1 s; the module's work runs every second. */
	do {
		qkd_msleep(250);
		probe_serial(_metadata, self->kapi, exp_key, &r);
		ASSERT_EQ(0, r.lookup_ret) TH_LOG("lookup by serial: %s",
						  strerror(-r.lookup_ret));
	} while (r.payload_len && qkd_now_ms() - t0 < 10000);
	waited = qkd_now_ms() - t0;
	EXPECT_EQ(0, r.payload_len) TH_LOG("payload still there %ju ms after a 1 s timeout",
					   (uintmax_t)waited);
	EXPECT_EQ(-EKEYEXPIRED, r.validate_ret);
	/* 1 s to expire, at most about 1 s more to be seen, and slack */
	EXPECT_GE(4500, waited) TH_LOG("dropped after %ju ms", (uintmax_t)waited);
	fprintf(stderr, "# payload dropped %ju ms after the 1 s timeout was set\n",
		(uintmax_t)waited);

	/*
	 * request_key() does not hand it out: its search skips expired keys
	 * (ENOKEY, after a failed upcall) or reports them (EKEYEXPIRED).
	 * /proc/keys no longer describes the payload.
	 */
	probe_desc(_metadata, self->kapi, self->sa, 6, &r);
	EXPECT_TRUE(r.lookup_ret == -ENOKEY || r.lookup_ret == -EKEYEXPIRED)
		TH_LOG("request_key: %d (%s)", r.lookup_ret, strerror(-r.lookup_ret));
	EXPECT_EQ(0, r.out_len);
	proc_keys_line(exp_key, line, sizeof(line));
	EXPECT_EQ(NULL, strstr(line, "index 6")) TH_LOG("expired: %s", line);

	/* the key without a timeout is untouched */
	probe_serial(_metadata, self->kapi, keep_key, &r);
	EXPECT_EQ(0, r.validate_ret);
	EXPECT_EQ(KS, r.payload_len);
	probe_desc(_metadata, self->kapi, self->sa, 7, &r);
	EXPECT_EQ(0, r.lookup_ret);
	EXPECT_EQ(QKD_KAPI_MAC_LEN, r.out_len);
	proc_keys_line(keep_key, line, sizeof(line));
	EXPECT_NE(NULL, strstr(line, "index 7")) TH_LOG("%s", line);
}

QKD_TEST_MAIN
