// SPDX-License-Identifier: GPL-2.0-only
/*
 * Keys for the kernel crypto API (Documentation/abi.md, kernel-api.md):
 * QKD_IOC_ALG_SETKEY keys an AF_ALG transform socket, QKD_IOC_LOGON_KEY
 * makes a logon key, and the "qkd" key type takes a key through add_key().
 *
 * Two streams of one link carry the same key bytes at the same indices,
 * standing for the two ends of a link: "A" is keyed in the kernel, "B"'s
 * copy of the same index is read through /dev/qkd and given to libkcapi.
 * Both must encrypt alike, and each decrypts what the other encrypted.
 * Every rejected request must leave the stream as it was (nothing taken).
 * The dm-crypt test uses two sites instead: two network namespaces, each
 * with its own store holding the same keys, as deployed.
 */
#include <sys/socket.h>
#include <linux/if_alg.h>
#include <linux/keyctl.h>

#include <kcapi.h>

#include "qkd_test.h"

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef SOL_ALG
#define SOL_ALG 279
#endif
/* 6.2+ (include/uapi/linux/if_alg.h); the build host's headers are 6.1's. */
#ifndef ALG_SET_KEY_BY_KEY_SERIAL
#define ALG_SET_KEY_BY_KEY_SERIAL 7
#endif

#define KS	32	/* key size of the streams */
#define NKEYS	8	/* keys pushed to each stream */
#define SEED	7

/* ------------------------------------------------------------ helpers */

static void load_algif(void)
{
	/* Autoloaded on bind() too; this makes a missing module obvious. */
	if (system("modprobe -a algif_skcipher algif_aead algif_hash >/dev/null 2>&1"))
		fprintf(stderr, "# modprobe algif_*: failed (autoload may still work)\n");
}

/* A bound AF_ALG transform socket: fd or -errno. */
static int alg_tfm(const char *type, const char *name)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG };
	int fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf((char *)sa.salg_type, sizeof(sa.salg_type), "%s", type);
	snprintf((char *)sa.salg_name, sizeof(sa.salg_name), "%s", name);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

static void use_init(struct qkd_alg_setkey *r, const uint8_t *sid, int algfd,
		     uint32_t flags, uint64_t index, uint32_t key_len)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->flags = flags;
	memcpy(r->stream_id, sid, QKD_STREAM_ID_LEN);
	r->index = index;
	r->key_len = key_len;
	r->alg_fd = algfd;
}

/* QKD_IOC_ALG_SETKEY on the key at @index (or the next, index ~0). */
static int alg_setkey(int dev, int algfd, const uint8_t *sid, uint64_t index,
		      uint32_t key_len, struct qkd_alg_setkey *out)
{
	struct qkd_alg_setkey r;

	use_init(&r, sid, algfd, index == ~0ULL ? 0 : QKD_USE_F_BY_INDEX,
		 index == ~0ULL ? 0 : index, key_len);
	if (ioctl(dev, QKD_IOC_ALG_SETKEY, &r))
		return -errno;
	if (out)
		*out = r;
	return 0;
}

/*
 * One operation on an accepted socket of @tfm: @in (assoc || data) to
 * @out, of exactly @outlen bytes (reading more than the operation yields
 * waits for more input). Returns the bytes read or -errno.
 */
static ssize_t alg_op(int tfm, int op, const uint8_t *iv, uint32_t ivlen,
		      uint32_t assoclen, const uint8_t *in, size_t inlen,
		      uint8_t *out, size_t outlen)
{
	char cbuf[CMSG_SPACE(4) + CMSG_SPACE(4 + 32) + CMSG_SPACE(4)];
	struct iovec iov = { .iov_base = (void *)in, .iov_len = inlen };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t n;
	int opfd;

	opfd = accept(tfm, NULL, NULL);
	if (opfd < 0)
		return -errno;
	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_ALG;
	cm->cmsg_type = ALG_SET_OP;
	cm->cmsg_len = CMSG_LEN(4);
	memcpy(CMSG_DATA(cm), &op, 4);
	cm = CMSG_NXTHDR(&mh, cm);
	cm->cmsg_level = SOL_ALG;
	cm->cmsg_type = ALG_SET_IV;
	cm->cmsg_len = CMSG_LEN(4 + 32);
	memcpy(CMSG_DATA(cm), &ivlen, 4);
	memcpy(CMSG_DATA(cm) + 4, iv, ivlen);
	cm = CMSG_NXTHDR(&mh, cm);
	cm->cmsg_level = SOL_ALG;
	cm->cmsg_type = ALG_SET_AEAD_ASSOCLEN;
	cm->cmsg_len = CMSG_LEN(4);
	memcpy(CMSG_DATA(cm), &assoclen, 4);

	n = sendmsg(opfd, &mh, 0);
	if (n == (ssize_t)inlen)
		n = read(opfd, out, outlen);
	if (n < 0)
		n = -errno;
	close(opfd);
	return n;
}

/* A digest through an accepted socket of @tfm. */
static ssize_t alg_hash(int tfm, const uint8_t *in, size_t inlen,
			uint8_t *out, size_t outlen)
{
	int opfd = accept(tfm, NULL, NULL);
	ssize_t n;

	if (opfd < 0)
		return -errno;
	n = send(opfd, in, inlen, 0);
	if (n == (ssize_t)inlen)
		n = read(opfd, out, outlen);
	if (n < 0)
		n = -errno;
	close(opfd);
	return n;
}

/* The algorithms of the known-answer tests. */
enum kind { SKCIPHER, AEAD, HASH };

FIXTURE(alg) {
	struct qkd_nl nl;
	int dev;
	int kmsg;
	uint8_t sa[QKD_STREAM_ID_LEN];	/* end A */
	uint8_t sb[QKD_STREAM_ID_LEN];	/* end B: the same keys */
};

FIXTURE_VARIANT(alg) {
	enum kind kind;
	const char *name;
	uint32_t ivlen;
	uint32_t taglen;
};

FIXTURE_VARIANT_ADD(alg, cbc_aes) {
	.kind = SKCIPHER, .name = "cbc(aes)", .ivlen = 16,
};

FIXTURE_VARIANT_ADD(alg, gcm_aes) {
	.kind = AEAD, .name = "gcm(aes)", .ivlen = 12, .taglen = 16,
};

FIXTURE_VARIANT_ADD(alg, chacha20_poly1305) {
	.kind = AEAD, .name = "rfc7539(chacha20,poly1305)", .ivlen = 12,
	.taglen = 16,
};

FIXTURE_VARIANT_ADD(alg, hmac_sha256) {
	.kind = HASH, .name = "hmac(sha256)",
};

static void setup_streams(struct __test_metadata *_metadata, struct qkd_nl *nl,
			  int *dev, uint8_t *sa, uint8_t *sb)
{
	int err = qkd_enter_test_netns();

	if (err == -EPERM)
		QKD_SKIP_SETUP("needs root (unshare CLONE_NEWNET)");
	ASSERT_EQ(0, err);
	err = qkd_nl_open(nl);
	if (err == -ENOENT)
		QKD_SKIP_SETUP("genl family " QKD_FAMILY_NAME " not found: qkd.ko not loaded");
	ASSERT_EQ(0, err);
	*dev = qkd_dev_open();
	ASSERT_LE(0, *dev) TH_LOG("open %s: %s", QKD_DEV_PATH, strerror(-*dev));
	qkd_sid(sa, 1);
	qkd_sid(sb, 2);
	mk_link_stream(_metadata, nl, 1, sa, KS);
	ASSERT_NL_OK(nl, qkd_stream_new(nl, sb, 1, KS, QKD_OMIT, QKD_OMIT));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sa, 0, NKEYS, KS, SEED));
	ASSERT_NL_OK(nl, qkd_key_add_pattern(nl, sb, 0, NKEYS, KS, SEED));
	load_algif();
}

FIXTURE_SETUP(alg)
{
	setup_streams(_metadata, &self->nl, &self->dev, self->sa, self->sb);
	self->kmsg = qkd_kmsg_open();
}

FIXTURE_TEARDOWN(alg)
{
	QKD_TEARDOWN_BEGIN();
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->dev >= 0)
		close(self->dev);
	if (self->kmsg >= 0)
		close(self->kmsg);
	qkd_nl_close(&self->nl);
}

static const char *type_of(enum kind k)
{
	return k == SKCIPHER ? "skcipher" : k == AEAD ? "aead" : "hash";
}

/*
 * Encrypt (or MAC) @pt with the tfm socket @tfm, which holds some key, and
 * with libkcapi keyed with @key; both results must be equal, and each
 * side's ciphertext must decrypt on the other.
 */
static void check_same(struct __test_metadata *_metadata,
		       const FIXTURE_VARIANT(alg) *v, int tfm,
		       const uint8_t *key, uint32_t keylen)
{
	static const uint8_t iv[16] = "qkd-test-iv-0123";
	uint8_t pt[64 + 16], a[256], b[256], c[256];
	const uint32_t assoclen = 16;	/* AEAD: 16 bytes of AAD first */
	ssize_t na, nb, nc;
	size_t i;

	for (i = 0; i < sizeof(pt); i++)
		pt[i] = (uint8_t)(i * 7 + 1);

	if (v->kind == HASH) {
		struct kcapi_handle *h;

		na = alg_hash(tfm, pt, sizeof(pt), a, sizeof(a));
		ASSERT_EQ(32, na) TH_LOG("hmac through the socket: %zd", na);
		ASSERT_EQ(0, kcapi_md_init(&h, v->name, 0));
		ASSERT_EQ(0, kcapi_md_setkey(h, key, keylen));
		nb = kcapi_md_digest(h, pt, sizeof(pt), b, sizeof(b));
		kcapi_md_destroy(h);
		ASSERT_EQ(32, nb);
		EXPECT_EQ(0, memcmp(a, b, 32)) TH_LOG("%s: the MACs differ", v->name);
		return;
	}

	if (v->kind == SKCIPHER) {
		struct kcapi_handle *h;

		na = alg_op(tfm, ALG_OP_ENCRYPT, iv, v->ivlen, 0, pt + 16, 64,
			    a, 64);
		ASSERT_EQ(64, na) TH_LOG("encrypt through the socket: %zd (%s)",
					 na, na < 0 ? strerror(-na) : "");
		ASSERT_EQ(0, kcapi_cipher_init(&h, v->name, 0));
		ASSERT_EQ(0, kcapi_cipher_setkey(h, key, keylen));
		nb = kcapi_cipher_encrypt(h, pt + 16, 64, iv, b, 64,
					  KCAPI_ACCESS_HEURISTIC);
		ASSERT_EQ(64, nb);
		EXPECT_EQ(0, memcmp(a, b, 64)) TH_LOG("%s: ciphertexts differ", v->name);
		/* B decrypts A's ciphertext; A decrypts B's. */
		nc = kcapi_cipher_decrypt(h, a, 64, iv, c, 64,
					  KCAPI_ACCESS_HEURISTIC);
		kcapi_cipher_destroy(h);
		ASSERT_EQ(64, nc);
		EXPECT_EQ(0, memcmp(c, pt + 16, 64));
		nc = alg_op(tfm, ALG_OP_DECRYPT, iv, v->ivlen, 0, b, 64, c, 64);
		ASSERT_EQ(64, nc);
		EXPECT_EQ(0, memcmp(c, pt + 16, 64));
		return;
	}

	/* AEAD: in = AAD || plaintext, out = AAD || ciphertext || tag. */
	{
		struct kcapi_handle *h;
		size_t ctlen = assoclen + 64 + v->taglen;

		ASSERT_EQ(0, setsockopt(tfm, SOL_ALG, ALG_SET_AEAD_AUTHSIZE,
					NULL, v->taglen));
		na = alg_op(tfm, ALG_OP_ENCRYPT, iv, v->ivlen, assoclen, pt,
			    sizeof(pt), a, ctlen);
		ASSERT_EQ((ssize_t)ctlen, na) TH_LOG("encrypt through the socket: %zd", na);
		ASSERT_EQ(0, kcapi_aead_init(&h, v->name, 0));
		ASSERT_EQ(0, kcapi_aead_setkey(h, key, keylen));
		ASSERT_EQ(0, kcapi_aead_settaglen(h, v->taglen));
		kcapi_aead_setassoclen(h, assoclen);
		nb = kcapi_aead_encrypt(h, pt, sizeof(pt), iv, b, ctlen,
					KCAPI_ACCESS_HEURISTIC);
		ASSERT_EQ((ssize_t)ctlen, nb);
		EXPECT_EQ(0, memcmp(a, b, ctlen)) TH_LOG("%s: ciphertexts differ", v->name);
		nc = kcapi_aead_decrypt(h, a, ctlen, iv, c, assoclen + 64,
					KCAPI_ACCESS_HEURISTIC);
		kcapi_aead_destroy(h);
		ASSERT_LE(64, nc) TH_LOG("libkcapi decrypt: %zd", nc);
		EXPECT_EQ(0, memcmp(c + nc - 64, pt + assoclen, 64));
		nc = alg_op(tfm, ALG_OP_DECRYPT, iv, v->ivlen, assoclen, b,
			    ctlen, c, assoclen + 64);
		ASSERT_EQ(assoclen + 64, nc) TH_LOG("decrypt through the socket: %zd", nc);
		EXPECT_EQ(0, memcmp(c + assoclen, pt + assoclen, 64));
	}
}

/* Stored / delivered / next of a stream. */
struct counts {
	uint64_t stored, delivered, next;
};

static struct counts counts_of(struct __test_metadata *_metadata,
			       struct qkd_nl *nl, const uint8_t *sid)
{
	struct counts c;
	struct qkd_obj o;

	memset(&c, 0, sizeof(c));
	ASSERT_NL_OK(nl, qkd_stream_get(nl, sid, &o));
	c.stored = qkd_obj_u(&o, QKD_A_STREAM_STORED_KEYS);
	c.delivered = qkd_obj_u(&o, QKD_T_STATS(KEYS_DELIVERED));
	c.next = qkd_obj_u(&o, QKD_A_STREAM_NEXT_INDEX);
	return c;
}

/* A request that fails with -@err and takes nothing from stream A. */
#define ASSERT_NOTHING_TAKEN(err, expr) do { \
	struct counts __b = counts_of(_metadata, &self->nl, self->sa), __a; \
	int __r = (expr); \
	EXPECT_EQ(-(err), __r) TH_LOG("%s: got %d (%s), want %d (%s)", #expr, \
				      __r, strerror(-__r), -(err), strerror(err)); \
	__a = counts_of(_metadata, &self->nl, self->sa); \
	EXPECT_EQ(__b.stored, __a.stored) TH_LOG("%s: stored keys changed", #expr); \
	EXPECT_EQ(__b.delivered, __a.delivered) TH_LOG("%s: delivered changed", #expr); \
} while (0)

/* ----------------------------------------------------- known answers */

/* In-kernel keying by index equals libkcapi keyed with B's copy. */
TEST_F(alg, known_answer_by_index)
{
	struct qkd_alg_setkey r;
	uint8_t kb[KS], kid[QKD_KEY_ID_LEN];
	struct counts before, after;
	int tfm;

	tfm = alg_tfm(type_of(variant->kind), variant->name);
	if (tfm == -ENOENT || tfm == -EAFNOSUPPORT)
		SKIP(return, "%s: not available (%s)", variant->name, strerror(-tfm));
	ASSERT_LE(0, tfm) TH_LOG("bind %s: %s", variant->name, strerror(-tfm));

	before = counts_of(_metadata, &self->nl, self->sa);
	ASSERT_EQ(0, alg_setkey(self->dev, tfm, self->sa, 3, 0, &r));
	after = counts_of(_metadata, &self->nl, self->sa);
	EXPECT_EQ(3, r.index);
	EXPECT_EQ(KS, r.key_len);
	qkd_key_id_from_index(kid, self->sa, 3);
	EXPECT_EQ(0, memcmp(kid, r.key_id, QKD_KEY_ID_LEN));
	EXPECT_EQ(before.stored - 1, after.stored);
	EXPECT_EQ(before.delivered + 1, after.delivered);

	/* B's copy of index 3, through the privileged read path. */
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sb, 3, kb, KS, NULL));
	ASSERT_TRUE(qkd_pattern_ok(kb, KS, 3, SEED));
	check_same(_metadata, variant, tfm, kb, KS);

	/* Index 3 of A is consumed: once per end. */
	EXPECT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->dev, self->sa, 3, kb, KS, NULL));
	EXPECT_EQ(-EKEYEXPIRED, alg_setkey(self->dev, tfm, self->sa, 3, 0, NULL));
	close(tfm);
}

/* Without flags the lowest stored key is used, and reported. */
TEST_F(alg, known_answer_next)
{
	struct qkd_alg_setkey r;
	struct qkd_key_request q;
	uint8_t kb[KS], buf[KS];
	int tfm;

	tfm = alg_tfm(type_of(variant->kind), variant->name);
	if (tfm == -ENOENT || tfm == -EAFNOSUPPORT)
		SKIP(return, "%s: not available", variant->name);
	ASSERT_LE(0, tfm);
	ASSERT_EQ(0, qkd_get_key(self->dev, self->sa, buf, KS, NULL));	/* 0 */
	ASSERT_EQ(0, alg_setkey(self->dev, tfm, self->sa, ~0ULL, 0, &r));
	EXPECT_EQ(1, r.index);
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sb, r.index, kb, KS, NULL));
	check_same(_metadata, variant, tfm, kb, KS);
	/* the next GET_KEY at A gets index 2 */
	ASSERT_EQ(0, qkd_get_key(self->dev, self->sa, buf, KS, &q));
	EXPECT_EQ(2, q.index);
	close(tfm);
}

/* By key_ID, and a shorter key: the first key_len bytes. */
TEST_F(alg, known_answer_key_id_prefix)
{
	uint32_t len = variant->kind == AEAD && !strncmp(variant->name, "rfc7539", 7) ?
		       32 : 16;
	struct qkd_alg_setkey r;
	uint8_t kb[KS];
	int tfm;

	tfm = alg_tfm(type_of(variant->kind), variant->name);
	if (tfm == -ENOENT || tfm == -EAFNOSUPPORT)
		SKIP(return, "%s: not available", variant->name);
	ASSERT_LE(0, tfm);
	use_init(&r, self->sa, tfm, QKD_USE_F_BY_KEY_ID, 0, len);
	qkd_key_id_from_index(r.key_id, self->sa, 5);
	ASSERT_EQ(0, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, &r));
	EXPECT_EQ(5, r.index);
	EXPECT_EQ(len, r.key_len);
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sb, 5, kb, KS, NULL));
	check_same(_metadata, variant, tfm, kb, len);
	close(tfm);
}

/* ------------------------------------------------------------ errors */

FIXTURE(bad) {
	struct qkd_nl nl;
	int dev;
	int kmsg;
	uint8_t sa[QKD_STREAM_ID_LEN];
	uint8_t sb[QKD_STREAM_ID_LEN];
};

FIXTURE_SETUP(bad)
{
	setup_streams(_metadata, &self->nl, &self->dev, self->sa, self->sb);
	self->kmsg = qkd_kmsg_open();
}

FIXTURE_TEARDOWN(bad)
{
	QKD_TEARDOWN_BEGIN();
	EXPECT_EQ(0, qkd_kmsg_bad(self->kmsg));
	if (self->dev >= 0)
		close(self->dev);
	if (self->kmsg >= 0)
		close(self->kmsg);
	qkd_nl_close(&self->nl);
}

TEST_F(bad, fds)
{
	int nul, udp, unbound, tfm, op;

	ASSERT_NOTHING_TAKEN(EBADF, alg_setkey(self->dev, -1, self->sa, 0, 0, NULL));
	ASSERT_NOTHING_TAKEN(EBADF, alg_setkey(self->dev, 1000, self->sa, 0, 0, NULL));
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, nul);
	ASSERT_NOTHING_TAKEN(ENOTSOCK, alg_setkey(self->dev, nul, self->sa, 0, 0, NULL));
	/* /dev/qkd itself is not a socket either */
	ASSERT_NOTHING_TAKEN(ENOTSOCK, alg_setkey(self->dev, self->dev, self->sa, 0, 0, NULL));
	close(nul);
	udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, udp);
	ASSERT_NOTHING_TAKEN(EAFNOSUPPORT, alg_setkey(self->dev, udp, self->sa, 0, 0, NULL));
	close(udp);

	/* AF_ALG, but not bound to an algorithm: af_alg's own errno */
	unbound = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, unbound);
	ASSERT_NOTHING_TAKEN(ENOPROTOOPT, alg_setkey(self->dev, unbound, self->sa, 0, 0, NULL));
	close(unbound);

	/* An operation socket (from accept()) takes no key. */
	tfm = alg_tfm("skcipher", "cbc(aes)");
	ASSERT_LE(0, tfm);
	op = accept(tfm, NULL, NULL);
	ASSERT_LE(0, op) TH_LOG("accept on an unkeyed tfm: %s", strerror(errno));
	ASSERT_NOTHING_TAKEN(EOPNOTSUPP, alg_setkey(self->dev, op, self->sa, 0, 0, NULL));
	close(op);
	close(tfm);
}

TEST_F(bad, key_sizes)
{
	int tfm = alg_tfm("skcipher", "cbc(aes)");
	uint8_t buf[KS];

	ASSERT_LE(0, tfm);
	/* in the stream's range, but AES takes 16, 24 or 32 bytes */
	ASSERT_NOTHING_TAKEN(EINVAL, alg_setkey(self->dev, tfm, self->sa, 0, 20, NULL));
	ASSERT_NOTHING_TAKEN(EINVAL, alg_setkey(self->dev, tfm, self->sa, ~0ULL, 17, NULL));
	/* outside what the stream can give */
	ASSERT_NOTHING_TAKEN(ERANGE, alg_setkey(self->dev, tfm, self->sa, 0, 15, NULL));
	ASSERT_NOTHING_TAKEN(ERANGE, alg_setkey(self->dev, tfm, self->sa, 0, 1, NULL));
	ASSERT_NOTHING_TAKEN(ERANGE, alg_setkey(self->dev, tfm, self->sa, 0, KS + 1, NULL));
	ASSERT_NOTHING_TAKEN(ERANGE, alg_setkey(self->dev, tfm, self->sa, 0, 0xffffffff, NULL));
	close(tfm);

	/* The rejected key is still at its index, with its bytes. */
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sa, 0, buf, KS, NULL));
	EXPECT_TRUE(qkd_pattern_ok(buf, KS, 0, SEED));
}

TEST_F(bad, selection)
{
	uint8_t other[QKD_STREAM_ID_LEN], buf[KS];
	struct qkd_alg_setkey r;
	int tfm = alg_tfm("skcipher", "cbc(aes)");

	ASSERT_LE(0, tfm);
	qkd_sid(other, 9);
	ASSERT_NOTHING_TAKEN(ENOENT, alg_setkey(self->dev, tfm, other, ~0ULL, 0, NULL));
	ASSERT_NOTHING_TAKEN(ENOENT, alg_setkey(self->dev, tfm, other, 0, 0, NULL));
	/* not pushed yet; above the index range */
	ASSERT_NOTHING_TAKEN(ENOKEY, alg_setkey(self->dev, tfm, self->sa, NKEYS, 0, NULL));
	ASSERT_NOTHING_TAKEN(EINVAL, alg_setkey(self->dev, tfm, self->sa,
						 QKD_INDEX_MAX + 1, 0, NULL));
	/* a key ID of another stream */
	use_init(&r, self->sa, tfm, QKD_USE_F_BY_KEY_ID, 0, 0);
	qkd_key_id_from_index(r.key_id, other, 1);
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, &r));
	/* consumed at this end */
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sa, 2, buf, KS, NULL));
	ASSERT_NOTHING_TAKEN(EKEYEXPIRED, alg_setkey(self->dev, tfm, self->sa, 2, 0, NULL));
	/* empty stream */
	ASSERT_NL_OK(&self->nl, qkd_key_flush(&self->nl, self->sa));
	ASSERT_NOTHING_TAKEN(EAGAIN, alg_setkey(self->dev, tfm, self->sa, ~0ULL, 0, NULL));
	close(tfm);
}

TEST_F(bad, struct_fields)
{
	struct qkd_alg_setkey r;
	int tfm = alg_tfm("skcipher", "cbc(aes)");
	int i;

	ASSERT_LE(0, tfm);
	for (i = 0; i < 32; i++) {
		uint32_t f = 1U << i;

		if (f & QKD_USE_FLAGS_ALL)
			continue;
		use_init(&r, self->sa, tfm, f, 0, 0);
		ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, &r));
	}
	use_init(&r, self->sa, tfm, QKD_USE_FLAGS_ALL, 0, 0);
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, &r));
	for (i = 0; i < 4; i++) {
		use_init(&r, self->sa, tfm, 0, 0, 0);
		r.reserved[i] = 1;
		ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, &r));
	}
	use_init(&r, self->sa, tfm, 0, 0, 0);
	r.size = sizeof(r) - 8;
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, &r));
	r.size = 0;
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, &r));
	ASSERT_NOTHING_TAKEN(EFAULT, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, NULL));
	/* a read-only struct: nothing taken, as the answer could not be written */
	{
		struct qkd_alg_setkey *ro = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
						 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		ASSERT_NE(MAP_FAILED, ro);
		use_init(ro, self->sa, tfm, 0, 0, 0);
		ASSERT_EQ(0, mprotect(ro, 4096, PROT_READ));
		ASSERT_NOTHING_TAKEN(EFAULT, qkd_ioctl(self->dev, QKD_IOC_ALG_SETKEY, ro));
		munmap(ro, 4096);
	}
	close(tfm);
}

/* A tfm with a keyed operation socket refuses keys: the key stays. */
TEST_F(bad, busy_tfm)
{
	int tfm = alg_tfm("skcipher", "cbc(aes)"), op;

	ASSERT_LE(0, tfm);
	ASSERT_EQ(0, alg_setkey(self->dev, tfm, self->sa, 0, 0, NULL));
	op = accept(tfm, NULL, NULL);
	ASSERT_LE(0, op);
	ASSERT_NOTHING_TAKEN(EBUSY, alg_setkey(self->dev, tfm, self->sa, 1, 0, NULL));
	close(op);
	/* with the operation socket gone, it takes the key */
	ASSERT_EQ(0, alg_setkey(self->dev, tfm, self->sa, 1, 0, NULL));
	close(tfm);
}

TEST_F(bad, info_features)
{
	struct qkd_info in;

	memset(&in, 0, sizeof(in));
	in.size = sizeof(in);
	ASSERT_EQ(0, qkd_ioctl(self->dev, QKD_IOC_INFO, &in));
	EXPECT_TRUE(in.features & QKD_FEATURE_ALG_SETKEY);
	EXPECT_TRUE(in.features & QKD_FEATURE_LOGON_KEY);
	EXPECT_TRUE(in.features & QKD_FEATURE_KEY_TYPE);
}

/* ------------------------------------------------------------ keyrings */

#define QKD_UUID_STR_LEN_T 37

/* 8-4-4-4-12 lowercase, as the kernel's %pUb prints it. */
static void qkd_uuid_str(const uint8_t *u, char *out)
{
	int i, o = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		o += sprintf(out + o, "%02x", u[i]);
	}
}

static long keyctl5(int cmd, unsigned long a, unsigned long b, unsigned long c,
		    unsigned long d)
{
	return syscall(SYS_keyctl, cmd, a, b, c, d);
}

static int32_t add_key(const char *type, const char *desc, const void *data,
		       size_t len, int32_t ring)
{
	long r = syscall(SYS_add_key, type, desc, data, len, ring);

	return r < 0 ? -errno : (int32_t)r;
}

/* keyctl describe: "type;uid;gid;perm;description". */
static int describe(int32_t serial, char *buf, size_t len)
{
	long r = keyctl5(KEYCTL_DESCRIBE, serial, (unsigned long)buf, len, 0);

	return r < 0 ? -errno : 0;
}

static int read_key(int32_t serial)
{
	char buf[512];
	long r = keyctl5(KEYCTL_READ, serial, (unsigned long)buf, sizeof(buf), 0);

	return r < 0 ? -errno : (int)r;
}

static void logon_init(struct qkd_logon_key *r, const uint8_t *sid,
		       uint32_t flags, uint64_t index, const char *desc,
		       int32_t ring)
{
	memset(r, 0, sizeof(*r));
	r->size = sizeof(*r);
	r->flags = flags;
	memcpy(r->stream_id, sid, QKD_STREAM_ID_LEN);
	r->index = index;
	r->keyring = ring;
	r->desc_ptr = (uint64_t)(uintptr_t)desc;
}

/* The /proc/keys line of @serial, or "" */
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

/* Hex of a pattern key, to check it appears nowhere. */
static void key_hex(uint64_t index, char *hex)
{
	uint8_t k[KS];
	int i;

	qkd_pattern(k, KS, index, SEED);
	for (i = 0; i < 8; i++)
		sprintf(hex + 2 * i, "%02x", k[i]);
}

TEST_F(bad, logon_key)
{
	char desc[256], want[128], kid[QKD_UUID_STR_LEN_T], line[1024], hex[17];
	struct counts before, after;
	struct qkd_logon_key r;
	uint8_t kb[KS];
	int tfm, err;

	before = counts_of(_metadata, &self->nl, self->sa);
	logon_init(&r, self->sa, QKD_USE_F_BY_INDEX, 4, NULL, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_EQ(0, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	after = counts_of(_metadata, &self->nl, self->sa);
	EXPECT_LT(0, r.serial);
	EXPECT_EQ(4, r.index);
	EXPECT_EQ(KS, r.key_len);
	EXPECT_EQ(before.delivered + 1, after.delivered);
	EXPECT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->dev, self->sa, 4, kb, KS, NULL));

	/* described by its key ID, never readable */
	ASSERT_EQ(0, describe(r.serial, desc, sizeof(desc)));
	qkd_uuid_str(r.key_id, kid);
	snprintf(want, sizeof(want), ";qkd:%s", kid);
	EXPECT_TRUE(!strncmp(desc, "logon;", 6)) TH_LOG("describe: %s", desc);
	EXPECT_NE(NULL, strstr(desc, want)) TH_LOG("describe: %s, want %s", desc, want);
	err = read_key(r.serial);
	EXPECT_TRUE(err == -EOPNOTSUPP || err == -EACCES) TH_LOG("keyctl read: %d", err);
	proc_keys_line(r.serial, line, sizeof(line));
	key_hex(4, hex);
	EXPECT_EQ(NULL, strstr(line, hex)) TH_LOG("/proc/keys shows key bytes: %s", line);

	/* 6.12: AF_ALG keyed by the logon key's serial, as B's copy */
	tfm = alg_tfm("skcipher", "cbc(aes)");
	ASSERT_LE(0, tfm);
	err = setsockopt(tfm, SOL_ALG, ALG_SET_KEY_BY_KEY_SERIAL, &r.serial,
			 sizeof(r.serial)) ? -errno : 0;
	if (err == -ENOPROTOOPT) {
		close(tfm);
		SKIP(return, "ALG_SET_KEY_BY_KEY_SERIAL needs Linux 6.2+");
	}
	ASSERT_EQ(0, err) TH_LOG("ALG_SET_KEY_BY_KEY_SERIAL: %s", strerror(-err));
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sb, 4, kb, KS, NULL));
	{
		const FIXTURE_VARIANT(alg) v = { .kind = SKCIPHER, .name = "cbc(aes)", .ivlen = 16 };

		check_same(_metadata, &v, tfm, kb, KS);
	}
	close(tfm);
}

TEST_F(bad, logon_key_named)
{
	struct qkd_logon_key r;
	char desc[256];
	int32_t ring;

	/* a keyring of our own, by serial */
	ring = add_key("keyring", "qkd-test", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_LT(0, ring) TH_LOG("add_key keyring: %s", strerror(-ring));
	logon_init(&r, self->sa, 0, 0, "qkdtest:volume1", ring);
	r.key_len = 16;
	ASSERT_EQ(0, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	EXPECT_EQ(0, r.index);
	EXPECT_EQ(16, r.key_len);
	ASSERT_EQ(0, describe(r.serial, desc, sizeof(desc)));
	EXPECT_NE(NULL, strstr(desc, ";qkdtest:volume1")) TH_LOG("%s", desc);
	/* the same description again updates that key (add_key semantics) */
	{
		struct qkd_logon_key r2;

		logon_init(&r2, self->sa, 0, 0, "qkdtest:volume1", ring);
		ASSERT_EQ(0, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r2));
		EXPECT_EQ(1, r2.index);
		EXPECT_EQ(r.serial, r2.serial);
	}
}

TEST_F(bad, logon_key_errors)
{
	uint8_t other[QKD_STREAM_ID_LEN];
	struct qkd_logon_key r;
	int32_t ring;
	int i;

	qkd_sid(other, 9);
	logon_init(&r, other, 0, 0, NULL, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_NOTHING_TAKEN(ENOENT, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	/* the logon type wants "prefix:name" */
	logon_init(&r, self->sa, 0, 0, "nocolon", KEY_SPEC_PROCESS_KEYRING);
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	logon_init(&r, self->sa, 0, 0, ":x", KEY_SPEC_PROCESS_KEYRING);
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	logon_init(&r, self->sa, 0, 0, (const char *)8, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_NOTHING_TAKEN(EFAULT, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	/* no such keyring */
	logon_init(&r, self->sa, 0, 0, NULL, 0x7ffffff0);
	ASSERT_NOTHING_TAKEN(ENOKEY, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	/* a key that is not a keyring */
	logon_init(&r, self->sa, 0, 0, NULL, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_EQ(0, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	ring = r.serial;
	logon_init(&r, self->sa, 0, 0, NULL, ring);
	ASSERT_NOTHING_TAKEN(ENOTDIR, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	/* a keyring that refuses every link: fails after the key was taken */
	ring = add_key("keyring", "qkd-closed", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_LT(0, ring);
	ASSERT_EQ(0, keyctl5(KEYCTL_RESTRICT_KEYRING, ring, 0, 0, 0))
		TH_LOG("restrict: %s", strerror(errno));
	logon_init(&r, self->sa, 0, 0, NULL, ring);
	ASSERT_NOTHING_TAKEN(EPERM, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	/* struct checks */
	for (i = 2; i < 32; i++) {
		logon_init(&r, self->sa, 1U << i, 0, NULL, KEY_SPEC_PROCESS_KEYRING);
		ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	}
	logon_init(&r, self->sa, QKD_USE_FLAGS_ALL, 0, NULL, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	logon_init(&r, self->sa, 0, 0, NULL, KEY_SPEC_PROCESS_KEYRING);
	r.reserved0 = 1;
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	for (i = 0; i < 4; i++) {
		logon_init(&r, self->sa, 0, 0, NULL, KEY_SPEC_PROCESS_KEYRING);
		r.reserved[i] = 1;
		ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	}
	logon_init(&r, self->sa, 0, 0, NULL, KEY_SPEC_PROCESS_KEYRING);
	r.size = sizeof(r) + 8;
	ASSERT_NOTHING_TAKEN(EINVAL, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	logon_init(&r, self->sa, 0, 0, NULL, KEY_SPEC_PROCESS_KEYRING);
	r.key_len = 8;
	ASSERT_NOTHING_TAKEN(ERANGE, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
}

/* The "qkd" key type: add_key("qkd", desc, "fd=N stream=...", ring). */
static int32_t add_qkd_key(int dev, const uint8_t *sid, const char *extra,
			   const char *desc, int32_t ring)
{
	char spec[256], s[QKD_UUID_STR_LEN_T];

	qkd_uuid_str(sid, s);
	snprintf(spec, sizeof(spec), "fd=%d stream=%s%s%s", dev, s,
		 extra ? " " : "", extra ? extra : "");
	return add_key("qkd", desc, spec, strlen(spec), ring);
}

TEST_F(bad, qkd_key_type)
{
	char desc[256], want[128], kid[QKD_UUID_STR_LEN_T], line[1024], hex[17];
	uint8_t k6[QKD_KEY_ID_LEN], buf[KS];
	struct counts before, after;
	int32_t key;
	int tfm, err;

	before = counts_of(_metadata, &self->nl, self->sa);
	key = add_qkd_key(self->dev, self->sa, "index=6", "", KEY_SPEC_PROCESS_KEYRING);
	ASSERT_LT(0, key) TH_LOG("add_key qkd: %s", strerror(-key));
	after = counts_of(_metadata, &self->nl, self->sa);
	EXPECT_EQ(before.delivered + 1, after.delivered);
	EXPECT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->dev, self->sa, 6, buf, KS, NULL));

	/* an empty description becomes qkd:<key ID> */
	ASSERT_EQ(0, describe(key, desc, sizeof(desc)));
	qkd_key_id_from_index(k6, self->sa, 6);
	qkd_uuid_str(k6, kid);
	snprintf(want, sizeof(want), ";qkd:%s", kid);
	EXPECT_TRUE(!strncmp(desc, "qkd;", 4)) TH_LOG("%s", desc);
	EXPECT_NE(NULL, strstr(desc, want)) TH_LOG("describe %s, want %s", desc, want);
	EXPECT_EQ(-EOPNOTSUPP, read_key(key));
	proc_keys_line(key, line, sizeof(line));
	EXPECT_NE(NULL, strstr(line, "index 6")) TH_LOG("/proc/keys: %s", line);
	key_hex(6, hex);
	EXPECT_EQ(NULL, strstr(line, hex)) TH_LOG("/proc/keys shows key bytes: %s", line);

	/* AF_ALG (6.12) takes user/logon/encrypted/trusted keys, not qkd */
	tfm = alg_tfm("skcipher", "cbc(aes)");
	ASSERT_LE(0, tfm);
	err = setsockopt(tfm, SOL_ALG, ALG_SET_KEY_BY_KEY_SERIAL, &key,
			 sizeof(key)) ? -errno : 0;
	EXPECT_EQ(-ENOPROTOOPT, err);
	close(tfm);

	/* revocation drops the payload: /proc/keys no longer describes it */
	ASSERT_EQ(0, keyctl5(KEYCTL_REVOKE, key, 0, 0, 0));
	proc_keys_line(key, line, sizeof(line));
	EXPECT_EQ(NULL, strstr(line, "index 6")) TH_LOG("revoked: %s", line);

	/* next key, with a description and a prefix length */
	key = add_qkd_key(self->dev, self->sa, "len=16", "mine", KEY_SPEC_PROCESS_KEYRING);
	ASSERT_LT(0, key);
	proc_keys_line(key, line, sizeof(line));
	EXPECT_NE(NULL, strstr(line, "mine: stream")) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, "index 0 ")) TH_LOG("%s", line);
	EXPECT_NE(NULL, strstr(line, "len 16")) TH_LOG("%s", line);
	/* by key ID */
	qkd_key_id_from_index(k6, self->sa, 7);
	qkd_uuid_str(k6, kid);
	snprintf(want, sizeof(want), "key-id=%s", kid);
	key = add_qkd_key(self->dev, self->sa, want, "", KEY_SPEC_PROCESS_KEYRING);
	ASSERT_LT(0, key);
	EXPECT_EQ(-EKEYEXPIRED, qkd_get_key_at(self->dev, self->sa, 7, buf, KS, NULL));
}

TEST_F(bad, qkd_key_type_errors)
{
	char spec[256], s[QKD_UUID_STR_LEN_T];
	uint8_t other[QKD_STREAM_ID_LEN];
	uint8_t buf[KS];
	int32_t ring;
	int nul;

	qkd_uuid_str(self->sa, s);
	ASSERT_NOTHING_TAKEN(EINVAL, add_key("qkd", "x", "", 0, KEY_SPEC_PROCESS_KEYRING));
	ASSERT_NOTHING_TAKEN(EINVAL, add_key("qkd", "x", "fd=3", 4, KEY_SPEC_PROCESS_KEYRING));
	snprintf(spec, sizeof(spec), "stream=%s", s);
	ASSERT_NOTHING_TAKEN(EINVAL, add_key("qkd", "x", spec, strlen(spec),
					     KEY_SPEC_PROCESS_KEYRING));
	ASSERT_NOTHING_TAKEN(EINVAL, add_qkd_key(self->dev, self->sa, "index=1 index=2", "x",
						 KEY_SPEC_PROCESS_KEYRING));
	ASSERT_NOTHING_TAKEN(EINVAL, add_qkd_key(self->dev, self->sa, "bogus=1", "x",
						 KEY_SPEC_PROCESS_KEYRING));
	ASSERT_NOTHING_TAKEN(EINVAL, add_qkd_key(self->dev, self->sa, "index=x", "x",
						 KEY_SPEC_PROCESS_KEYRING));
	ASSERT_NOTHING_TAKEN(ERANGE, add_qkd_key(self->dev, self->sa, "len=8", "x",
						 KEY_SPEC_PROCESS_KEYRING));
	ASSERT_NOTHING_TAKEN(ENOKEY, add_qkd_key(self->dev, self->sa, "index=100", "x",
						 KEY_SPEC_PROCESS_KEYRING));
	/* the fd must be an open /dev/qkd */
	ASSERT_NOTHING_TAKEN(EBADF, add_qkd_key(999, self->sa, NULL, "x",
						KEY_SPEC_PROCESS_KEYRING));
	nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, nul);
	ASSERT_NOTHING_TAKEN(EBADF, add_qkd_key(nul, self->sa, NULL, "x",
						KEY_SPEC_PROCESS_KEYRING));
	close(nul);
	qkd_sid(other, 9);
	ASSERT_NOTHING_TAKEN(ENOENT, add_qkd_key(self->dev, other, NULL, "x",
						 KEY_SPEC_PROCESS_KEYRING));
	/* refused by the keyring after the key was taken: it goes back */
	ring = add_key("keyring", "qkd-closed", NULL, 0, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_LT(0, ring);
	ASSERT_EQ(0, keyctl5(KEYCTL_RESTRICT_KEYRING, ring, 0, 0, 0));
	ASSERT_NOTHING_TAKEN(EPERM, add_qkd_key(self->dev, self->sa, "index=1", "x", ring));
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sa, 1, buf, KS, NULL));
	EXPECT_TRUE(qkd_pattern_ok(buf, KS, 1, SEED));
}

/*
 * A read-only open of /dev/qkd may look but not take: ALG_SETKEY, LOGON_KEY
 * and the "qkd" key type naming it fail with EBADF and take nothing.
 */
TEST_F(bad, readonly_open_takes_no_key)
{
	struct qkd_logon_key lr;
	int ro, tfm;

	ro = open(QKD_DEV_PATH, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, ro);
	tfm = alg_tfm("skcipher", "cbc(aes)");
	ASSERT_LE(0, tfm);
	ASSERT_NOTHING_TAKEN(EBADF, alg_setkey(ro, tfm, self->sa, ~0ULL, 0, NULL));
	ASSERT_NOTHING_TAKEN(EBADF, alg_setkey(ro, tfm, self->sa, 3, 0, NULL));
	close(tfm);
	logon_init(&lr, self->sa, QKD_USE_F_BY_INDEX, 3, NULL, KEY_SPEC_PROCESS_KEYRING);
	ASSERT_NOTHING_TAKEN(EBADF, qkd_ioctl(ro, QKD_IOC_LOGON_KEY, &lr));
	ASSERT_NOTHING_TAKEN(EBADF, add_qkd_key(ro, self->sa, "index=3", "x",
						KEY_SPEC_PROCESS_KEYRING));
	close(ro);
	/* the same requests through a writable open take the key */
	ASSERT_LT(0, add_qkd_key(self->dev, self->sa, "index=3", "x",
				 KEY_SPEC_PROCESS_KEYRING));
}

/* ------------------------------------------------------------ dm-crypt */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* /dev/dm-MINOR of a mapping: devtmpfs makes it, with no udev in the VM. */
static int dm_node(const char *name, char *dev, size_t len)
{
	char cmd[128], out[32] = "";
	FILE *p;
	int i;

	snprintf(cmd, sizeof(cmd), "dmsetup info -c --noheadings -o minor %s", name);
	p = popen(cmd, "r");
	if (!p)
		return -errno;
	if (!fgets(out, sizeof(out), p))
		out[0] = 0;
	pclose(p);
	snprintf(dev, len, "/dev/dm-%d", atoi(out));
	for (i = 0; i < 50 && access(dev, F_OK); i++)
		qkd_msleep(100);
	return out[0] >= '0' && out[0] <= '9' && !access(dev, F_OK) ? 0 : -ENOENT;
}

/* A dm-crypt mapping of @loop keyed by the logon key @desc (AES-XTS). */
static int dm_map(const char *mapper, const char *desc, const char *loop,
		  char *dev, size_t len)
{
	if (sh("dmsetup create --noudevsync --noudevrules %s --table "
	       "'0 2048 crypt aes-xts-plain64 :32:logon:%s 0 %s 0'",
	       mapper, desc, loop))
		return -EIO;
	return dm_node(mapper, dev, len);
}

static int dm_unmap(const char *mapper)
{
	return sh("dmsetup remove --noudevsync --noudevrules %s", mapper) ? -EIO : 0;
}

/* Read the first @len bytes of @dev (a mapping or the loop device). */
static ssize_t read_dev(const char *dev, uint8_t *buf, size_t len)
{
	int fd = open(dev, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = pread(fd, buf, len, 0);
	close(fd);
	return n;
}

/*
 * dm-crypt across two sites, as deployed: site A is the test's netns, site
 * B a second netns whose store holds the same keys under the same stream ID
 * (the peer node). A loop device is mapped with a logon key made from site
 * A's index 0 by a caller in netns A (through a /dev/qkd opened there),
 * written and closed; then mapped with a logon key made from site B's copy
 * of index 0 by a caller in netns B, and read back. A key from another
 * index (B's index 1) does not read the data. dmsetup runs as a child, so
 * the keys go into a fresh session keyring, which children inherit (a
 * process keyring is not). The first mapping loads the AES modules, which
 * takes tens of seconds under emulation: more than the harness's default
 * 30 s for the whole test.
 */
TEST_F_TIMEOUT(bad, dm_crypt_logon, 300)
{
	const char *img = "/tmp/qkd-test-dm.img";
	char loop[64] = "", mapper[64], dev[80];
	uint8_t data[4096], back[4096], kb[KS];
	struct counts ca, cb_before, cb_after;
	struct qkd_logon_key r;
	int fd, i, ns_a, ns_b, dev_b;
	struct qkd_nl nl_b;
	FILE *p;

	if (sh("command -v dmsetup >/dev/null && command -v losetup >/dev/null"))
		SKIP(return, "dmsetup or losetup not installed");
	/*
	 * Built in (the debug kernel) rather than modules: no modules.builtin
	 * in the guest for modprobe to find them in, so ask for the device
	 * and the target themselves first.
	 */
	if (sh("{ [ -e /dev/loop-control ] || modprobe loop; } >/dev/null 2>&1"))
		SKIP(return, "no loop devices (CONFIG_BLK_DEV_LOOP)");
	if (sh("{ dmsetup targets 2>/dev/null | grep -q '^crypt ' || modprobe dm_crypt; } >/dev/null 2>&1"))
		SKIP(return, "no dm-crypt target (CONFIG_DM_CRYPT)");
	ASSERT_LT(0, keyctl5(KEYCTL_JOIN_SESSION_KEYRING, 0, 0, 0, 0))
		TH_LOG("new session keyring: %s", strerror(errno));

	/* Site B: its own netns and store, the same stream and keys. */
	ns_a = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, ns_a);
	ASSERT_EQ(0, qkd_new_netns());
	ns_b = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, ns_b);
	ASSERT_EQ(0, qkd_nl_open(&nl_b));
	mk_link_stream(_metadata, &nl_b, 1, self->sa, KS);
	ASSERT_NL_OK(&nl_b, qkd_key_add_pattern(&nl_b, self->sa, 0, NKEYS, KS, SEED));
	dev_b = qkd_dev_open();
	ASSERT_LE(0, dev_b);
	ASSERT_EQ(0, setns(ns_a, CLONE_NEWNET)) TH_LOG("setns A: %s", strerror(errno));

	/* Site A, from netns A: the logon key of its index 0. */
	logon_init(&r, self->sa, QKD_USE_F_BY_INDEX, 0, "qkdtest:dm-a",
		   KEY_SPEC_SESSION_KEYRING);
	ASSERT_EQ(0, qkd_ioctl(self->dev, QKD_IOC_LOGON_KEY, &r));
	EXPECT_EQ(0, r.index);
	ca = counts_of(_metadata, &self->nl, self->sa);
	EXPECT_EQ(1, ca.delivered);
	/* B's store is another store: its index 0 is still there */
	EXPECT_EQ(NKEYS, counts_of(_metadata, &nl_b, self->sa).stored);

	ASSERT_EQ(0, sh("rm -f %s && truncate -s 1M %s", img, img));
	p = popen("losetup -f --show /tmp/qkd-test-dm.img", "r");
	ASSERT_NE(NULL, p);
	if (!fgets(loop, sizeof(loop), p))
		loop[0] = 0;
	pclose(p);
	loop[strcspn(loop, "\n")] = 0;
	ASSERT_EQ(0, strncmp(loop, "/dev/loop", 9)) TH_LOG("losetup: '%s'", loop);

	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 5);
	snprintf(mapper, sizeof(mapper), "qkdtest%d", getpid());

	/* site A: write through dm-crypt, keyed by A's logon key */
	ASSERT_EQ(0, dm_map(mapper, "qkdtest:dm-a", loop, dev, sizeof(dev)));
	fd = open(dev, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd) TH_LOG("open %s: %s", dev, strerror(errno));
	EXPECT_EQ((ssize_t)sizeof(data), pwrite(fd, data, sizeof(data), 0));
	EXPECT_EQ(0, fsync(fd));
	close(fd);
	ASSERT_EQ(0, dm_unmap(mapper));

	/* on the loop device itself: ciphertext */
	ASSERT_EQ((ssize_t)sizeof(back), read_dev(loop, back, sizeof(back)));
	EXPECT_NE(0, memcmp(back, data, sizeof(data)));

	/*
	 * Site B, from netns B: logon keys of its copy of index 0 and of
	 * index 1, taken from B's store.
	 */
	ASSERT_EQ(0, setns(ns_b, CLONE_NEWNET)) TH_LOG("setns B: %s", strerror(errno));
	cb_before = counts_of(_metadata, &nl_b, self->sa);
	logon_init(&r, self->sa, QKD_USE_F_BY_INDEX, 0, "qkdtest:dm-b",
		   KEY_SPEC_SESSION_KEYRING);
	EXPECT_EQ(0, qkd_ioctl(dev_b, QKD_IOC_LOGON_KEY, &r));
	logon_init(&r, self->sa, QKD_USE_F_BY_INDEX, 1, "qkdtest:dm-wrong",
		   KEY_SPEC_SESSION_KEYRING);
	EXPECT_EQ(0, qkd_ioctl(dev_b, QKD_IOC_LOGON_KEY, &r));
	cb_after = counts_of(_metadata, &nl_b, self->sa);
	EXPECT_EQ(cb_before.delivered + 2, cb_after.delivered);
	EXPECT_EQ(-EKEYEXPIRED, qkd_get_key_at(dev_b, self->sa, 0, kb, KS, NULL));
	ASSERT_EQ(0, setns(ns_a, CLONE_NEWNET));
	/* site A's store did not pay for B's keys */
	EXPECT_EQ(ca.delivered, counts_of(_metadata, &self->nl, self->sa).delivered);
	ASSERT_EQ(0, qkd_get_key_at(self->dev, self->sa, 1, kb, KS, NULL));
	EXPECT_TRUE(qkd_pattern_ok(kb, KS, 1, SEED));

	/* site B: its copy of the same key reads the plaintext back */
	ASSERT_EQ(0, dm_map(mapper, "qkdtest:dm-b", loop, dev, sizeof(dev)));
	EXPECT_EQ((ssize_t)sizeof(back), read_dev(dev, back, sizeof(back)));
	EXPECT_EQ(0, memcmp(back, data, sizeof(data))) TH_LOG("B did not read A's data");
	EXPECT_EQ(0, dm_unmap(mapper));

	/* the key of another index does not */
	ASSERT_EQ(0, dm_map(mapper, "qkdtest:dm-wrong", loop, dev, sizeof(dev)));
	EXPECT_EQ((ssize_t)sizeof(back), read_dev(dev, back, sizeof(back)));
	EXPECT_NE(0, memcmp(back, data, sizeof(data))) TH_LOG("index 1's key read index 0's data");
	EXPECT_EQ(0, dm_unmap(mapper));

	EXPECT_EQ(0, sh("losetup -d %s", loop));
	unlink(img);
	close(dev_b);
	qkd_nl_close(&nl_b);
	close(ns_b);
	close(ns_a);
}

QKD_TEST_MAIN
