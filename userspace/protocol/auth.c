// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: Wegman-Carter authentication of the classical channel.
 *
 * Hash: polynomial evaluation over GF(2^128) = GF(2)[x] / (x^128 + x^7 +
 * x^2 + x + 1). A message of len bytes and sequence number seq is encoded as
 * n = ceil(len / 16) + 1 blocks: the data zero-padded to whole blocks, then
 * one block holding len (64-bit) and seq (64-bit). The hash is
 *
 *	P_H(m) = m_1 H^n + m_2 H^(n-1) + ... + m_n H
 *
 * For two different encodings the difference P_H(m) - P_H(m') - c is a
 * non-zero polynomial in H of degree <= n (the length block makes the
 * encoding injective), so it has at most n roots: the family is
 * eps-almost-XOR-universal with eps = n / 2^128, and tag = P_H(m) XOR K with
 * a fresh uniform 16-byte pad K is eps-almost strongly universal.
 *
 * Block <-> field element: 16 bytes big endian; bit 127 (the top bit of
 * byte 0) is the coefficient of x^127.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AUTH_HAVE_X86 1
#endif

#include "qkd/auth.h"

#define AUTH_DEFAULT_MAX_CONSEC	3
#define AUTH_DEFAULT_MAX_TOTAL	16
#define AUTH_EXPORT_LABEL	"EXPORTER-qkd-auth-bootstrap-v1"
#define AUTH_EXPORT_CHUNK	4096

struct auth_pool {
	uint8_t *buf;		/* bytes [head, len) are unused key */
	size_t head;
	size_t len;
	size_t cap;
};

/*
 * Running transcript of one segment: per stream (direction of the
 * messages) the number of 16-byte blocks folded in, and per hash key
 * (direction of the closing tag) and stream the Horner accumulator
 * sum_i b_i H^(n - i + 1) of the stream's blocks.
 */
struct auth_transcript {
	bool open;
	bool closed_send, closed_recv;
	bool verified;				/* the peer's closing tag */
	bool failed;				/* ... did not verify */
	uint64_t id;
	struct auth_u128 acc[2][2];		/* [key dir][stream dir] */
	uint64_t nblk[2];			/* per stream dir */
};

struct auth_ctx {
	enum auth_role role;
	uint8_t hkey[2][QKD_AUTH_HKEY_LEN];	/* per direction */
	struct auth_pool pool[2];		/* per direction */
	uint8_t pending[QKD_AUTH_TAG_LEN];	/* partial chunk */
	size_t pending_len;
	uint64_t chunk_index;			/* chunks assigned so far */
	size_t boot_left[2];			/* bootstrap bytes per pool */
	uint64_t send_seq;
	uint64_t recv_seq;
	uint64_t tags_made;
	uint64_t tags_verified;
	uint64_t failures_total;
	uint64_t failures_consecutive;
	uint64_t bytes_added;
	uint64_t bytes_consumed;
	uint64_t bytes_discarded;
	unsigned int max_consec;
	unsigned int max_total;
	size_t reserve_cap;
	bool halted;
	/* chunk numbering and write-ahead persistence */
	uint64_t pos[2];			/* next chunk of each pool */
	uint64_t limit[2];			/* recorded position */
	uint64_t additions;
	uint64_t bytes_skipped;
	auth_persist_fn persist;
	void *persist_arg;
	unsigned int persist_batch;
	/* transcript authentication */
	struct auth_transcript tr;
	uint64_t tr_verified, tr_failures, tr_last_blocks;
};

const char *auth_strerror(int err)
{
	switch (err) {
	case QKD_AUTH_OK: return "success";
	case QKD_AUTH_E_INVAL: return "invalid argument";
	case QKD_AUTH_E_TAG: return "authentication tag mismatch";
	case QKD_AUTH_E_SEQ: return "unexpected sequence number (replay or reordering)";
	case QKD_AUTH_E_RESERVE: return "authentication key reserve too low";
	case QKD_AUTH_E_HALTED: return "authentication halted after repeated failures";
	case QKD_AUTH_E_FULL: return "authentication key reserve full";
	case QKD_AUTH_E_NOMEM: return "out of memory";
	case QKD_AUTH_E_KEY: return "unusable authentication key";
	case QKD_AUTH_E_PSK_IO: return "pre-shared key file cannot be read";
	case QKD_AUTH_E_PSK_PERM: return "pre-shared key file has unsafe ownership or permissions";
	case QKD_AUTH_E_PSK_SIZE: return "pre-shared key file has the wrong size";
	case QKD_AUTH_E_X509_CONFIG: return "X.509 certificate, key or CA cannot be loaded";
	case QKD_AUTH_E_X509_PEER: return "X.509 bootstrap handshake or peer verification failed";
	case QKD_AUTH_E_TOO_BIG: return "message too long to authenticate";
	case QKD_AUTH_E_TRANSCRIPT: return "transcript authentication failed: a message of the exchange was altered, dropped, replayed, reordered or injected";
	case QKD_AUTH_E_TR_STATE: return "deferred-authentication message outside an open exchange";
	case QKD_AUTH_E_PERSIST: return "cannot record the authentication reserve position in the state file";
	case QKD_AUTH_E_STATE: return "authentication state or reserve positions do not match";
	default: return "unknown authentication error";
	}
}

/* ---- GF(2^128) ---------------------------------------------------------- */

static inline uint64_t load_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void store_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Constant-time shift-and-add multiplication. */
void auth_gf128_mul_portable(struct auth_u128 *r, const struct auth_u128 *a,
			     const struct auth_u128 *b)
{
	uint64_t zh = 0, zl = 0, ah = a->hi, al = a->lo;

	for (int i = 127; i >= 0; i--) {
		uint64_t carry = zh >> 63;
		uint64_t bit = i >= 64 ? (b->hi >> (i - 64)) & 1 :
					 (b->lo >> i) & 1;
		uint64_t mask = (uint64_t)0 - bit;

		zh = (zh << 1) | (zl >> 63);
		zl = (zl << 1) ^ (0x87 & ((uint64_t)0 - carry));
		zh ^= ah & mask;
		zl ^= al & mask;
	}
	r->hi = zh;
	r->lo = zl;
}

/* Reduce the 256-bit product w3:w2:w1:w0 modulo x^128 + x^7 + x^2 + x + 1. */
static inline void gf128_reduce(uint64_t w3, uint64_t w2, uint64_t w1,
				uint64_t w0, struct auth_u128 *r)
{
	/* w3 x^192 = w3 x^64 (x^7 + x^2 + x + 1) */
	w1 ^= w3 ^ (w3 << 1) ^ (w3 << 2) ^ (w3 << 7);
	w2 ^= (w3 >> 63) ^ (w3 >> 62) ^ (w3 >> 57);
	/* w2 x^128 = w2 (x^7 + x^2 + x + 1) */
	w0 ^= w2 ^ (w2 << 1) ^ (w2 << 2) ^ (w2 << 7);
	w1 ^= (w2 >> 63) ^ (w2 >> 62) ^ (w2 >> 57);
	r->hi = w1;
	r->lo = w0;
}

#ifdef AUTH_HAVE_X86
__attribute__((target("pclmul,sse2")))
static inline void gf128_mul_clmul(struct auth_u128 *r,
				   const struct auth_u128 *a,
				   const struct auth_u128 *b)
{
	__m128i A = _mm_set_epi64x((long long)a->hi, (long long)a->lo);
	__m128i B = _mm_set_epi64x((long long)b->hi, (long long)b->lo);
	__m128i lo = _mm_clmulepi64_si128(A, B, 0x00);
	__m128i hi = _mm_clmulepi64_si128(A, B, 0x11);
	__m128i mid = _mm_xor_si128(_mm_clmulepi64_si128(A, B, 0x01),
				    _mm_clmulepi64_si128(A, B, 0x10));
	uint64_t l[2], h[2], m[2];

	_mm_storeu_si128((__m128i *)(void *)l, lo);
	_mm_storeu_si128((__m128i *)(void *)h, hi);
	_mm_storeu_si128((__m128i *)(void *)m, mid);
	/* little endian: [0] is the low qword */
	gf128_reduce(h[1], h[0] ^ m[1], l[1] ^ m[0], l[0], r);
}
#endif

static bool force_portable;

void auth_gf128_force_portable(bool on)
{
	force_portable = on;
}

bool auth_gf128_have_clmul(void)
{
#ifdef AUTH_HAVE_X86
	return !force_portable && __builtin_cpu_supports("pclmul");
#else
	return false;
#endif
}

void auth_gf128_mul(struct auth_u128 *r, const struct auth_u128 *a,
		    const struct auth_u128 *b)
{
#ifdef AUTH_HAVE_X86
	if (auth_gf128_have_clmul()) {
		gf128_mul_clmul(r, a, b);
		return;
	}
#endif
	auth_gf128_mul_portable(r, a, b);
}

/*
 * Horner's rule over data zero-padded to whole blocks:
 * acc = (acc + b) H for every block b.
 */
#ifdef AUTH_HAVE_X86
__attribute__((target("pclmul,sse2")))
static void absorb_clmul(struct auth_u128 *z, const struct auth_u128 *h,
			 const uint8_t *data, size_t len)
{
	struct auth_u128 acc = *z;
	uint8_t last[16];
	size_t off = 0;

	for (; off + 16 <= len; off += 16) {
		acc.hi ^= load_be64(data + off);
		acc.lo ^= load_be64(data + off + 8);
		gf128_mul_clmul(&acc, &acc, h);
	}
	if (off < len) {
		memset(last, 0, sizeof(last));
		memcpy(last, data + off, len - off);
		acc.hi ^= load_be64(last);
		acc.lo ^= load_be64(last + 8);
		gf128_mul_clmul(&acc, &acc, h);
		OPENSSL_cleanse(last, sizeof(last));
	}
	*z = acc;
	OPENSSL_cleanse(&acc, sizeof(acc));
}
#endif

static void absorb_portable(struct auth_u128 *z, const struct auth_u128 *h,
			    const uint8_t *data, size_t len)
{
	struct auth_u128 acc = *z;
	uint8_t last[16];
	size_t off = 0;

	for (; off + 16 <= len; off += 16) {
		acc.hi ^= load_be64(data + off);
		acc.lo ^= load_be64(data + off + 8);
		auth_gf128_mul_portable(&acc, &acc, h);
	}
	if (off < len) {
		memset(last, 0, sizeof(last));
		memcpy(last, data + off, len - off);
		acc.hi ^= load_be64(last);
		acc.lo ^= load_be64(last + 8);
		auth_gf128_mul_portable(&acc, &acc, h);
		OPENSSL_cleanse(last, sizeof(last));
	}
	*z = acc;
	OPENSSL_cleanse(&acc, sizeof(acc));
}

static void absorb(struct auth_u128 *z, const struct auth_u128 *h,
		   const uint8_t *data, size_t len)
{
#ifdef AUTH_HAVE_X86
	if (auth_gf128_have_clmul()) {
		absorb_clmul(z, h, data, len);
		return;
	}
#endif
	absorb_portable(z, h, data, len);
}

static void absorb_block(struct auth_u128 *z, const struct auth_u128 *h,
			 uint64_t hi, uint64_t lo)
{
	z->hi ^= hi;
	z->lo ^= lo;
	auth_gf128_mul(z, z, h);
}

static void hkey_load(struct auth_u128 *h, const uint8_t k[QKD_AUTH_HKEY_LEN])
{
	h->hi = load_be64(k);
	h->lo = load_be64(k + 8);
}

static void poly_hash(const uint8_t hkey[QKD_AUTH_HKEY_LEN], uint64_t seq,
		      const uint8_t *data, size_t len, struct auth_u128 *z)
{
	struct auth_u128 h;

	hkey_load(&h, hkey);
	z->hi = z->lo = 0;
	absorb(z, &h, data, len);
	absorb_block(z, &h, (uint64_t)len, seq);
	OPENSSL_cleanse(&h, sizeof(h));
}

void auth_poly_hash(const uint8_t hkey[QKD_AUTH_HKEY_LEN], uint64_t seq,
		    const uint8_t *data, size_t len,
		    uint8_t out[QKD_AUTH_TAG_LEN])
{
	struct auth_u128 z;

	poly_hash(hkey, seq, data, len, &z);
	store_be64(out, z.hi);
	store_be64(out + 8, z.lo);
	OPENSSL_cleanse(&z, sizeof(z));
}

double auth_epsilon_log2(size_t len)
{
	double blocks = (double)((len + 15) / 16) + 1.0;

	return log2(blocks) - 128.0;
}

/* ---- key reserve -------------------------------------------------------- */

static void pool_free(struct auth_pool *p)
{
	if (p->buf) {
		OPENSSL_cleanse(p->buf, p->cap);
		free(p->buf);
	}
	memset(p, 0, sizeof(*p));
}

static size_t pool_level(const struct auth_pool *p)
{
	return p->len - p->head;
}

/* Make room for extra more bytes: compact, or move to a larger buffer. */
static int pool_reserve(struct auth_pool *p, size_t extra)
{
	size_t used = pool_level(p);
	size_t ncap;
	uint8_t *nbuf;

	if (p->len + extra <= p->cap)
		return 0;
	if (used + extra <= p->cap) {
		memmove(p->buf, p->buf + p->head, used);
		OPENSSL_cleanse(p->buf + used, p->cap - used);
		p->head = 0;
		p->len = used;
		return 0;
	}
	ncap = p->cap ? p->cap : 256;
	while (ncap < used + extra)
		ncap *= 2;
	nbuf = malloc(ncap);
	if (!nbuf)
		return -1;
	if (used)
		memcpy(nbuf, p->buf + p->head, used);
	memset(nbuf + used, 0, ncap - used);
	if (p->buf) {
		OPENSSL_cleanse(p->buf, p->cap);
		free(p->buf);
	}
	p->buf = nbuf;
	p->cap = ncap;
	p->head = 0;
	p->len = used;
	return 0;
}

/* Drop the next n bytes (caller checked the level); they are wiped. */
static void pool_drop(struct auth_pool *p, size_t n)
{
	OPENSSL_cleanse(p->buf + p->head, n);
	p->head += n;
	if (p->head == p->len)
		p->head = p->len = 0;
}

/* Drop n whole chunks of pool d (caller checked the level). */
static void drop_chunks(struct auth_ctx *a, int d, uint64_t n)
{
	size_t bytes = (size_t)n * QKD_AUTH_TAG_LEN;

	pool_drop(&a->pool[d], bytes);
	a->boot_left[d] -= a->boot_left[d] < bytes ? a->boot_left[d] : bytes;
	a->pos[d] += n;
}

/*
 * Write-ahead: the chunk at pos[d] may only be used once the state file
 * records a position past it.
 */
static int persist_ahead(struct auth_ctx *a, int d)
{
	uint64_t old;
	int r;

	if (!a->persist || a->pos[d] < a->limit[d])
		return QKD_AUTH_OK;
	old = a->limit[d];
	a->limit[d] = a->pos[d] + a->persist_batch;
	r = a->persist(a->persist_arg);
	if (r) {
		a->limit[d] = old;
		return QKD_AUTH_E_PERSIST;
	}
	return QKD_AUTH_OK;
}

/*
 * Take the next chunk of direction d's pool (caller checked the level),
 * keeping count of bootstrap bytes left.
 */
static int take(struct auth_ctx *a, int d, uint8_t out[QKD_AUTH_TAG_LEN])
{
	int r = persist_ahead(a, d);

	if (r)
		return r;
	memcpy(out, a->pool[d].buf + a->pool[d].head, QKD_AUTH_TAG_LEN);
	drop_chunks(a, d, 1);
	return QKD_AUTH_OK;
}

size_t auth_reserve_level(const struct auth_ctx *a)
{
	if (!a)
		return 0;
	return pool_level(&a->pool[0]) + pool_level(&a->pool[1]) +
	       a->pending_len;
}

int auth_reserve_add(struct auth_ctx *a, const uint8_t *bytes, size_t len)
{
	size_t total, chunks, per[2];

	if (!a || (!bytes && len))
		return QKD_AUTH_E_INVAL;
	if (len == 0)
		return QKD_AUTH_OK;
	total = auth_reserve_level(a);
	if (len > a->reserve_cap || total > a->reserve_cap - len)
		return QKD_AUTH_E_FULL;

	/* Count the chunks each pool will get, then reserve, then copy. */
	chunks = (a->pending_len + len) / QKD_AUTH_TAG_LEN;
	per[0] = per[1] = chunks / 2;
	if (chunks & 1)
		per[a->chunk_index & 1]++;
	for (int d = 0; d < 2; d++)
		if (pool_reserve(&a->pool[d], per[d] * QKD_AUTH_TAG_LEN))
			return QKD_AUTH_E_NOMEM;
	a->additions++;

	while (len) {
		size_t n = QKD_AUTH_TAG_LEN - a->pending_len;
		struct auth_pool *p;

		if (n > len)
			n = len;
		memcpy(a->pending + a->pending_len, bytes, n);
		a->pending_len += n;
		bytes += n;
		len -= n;
		a->bytes_added += n;
		if (a->pending_len < QKD_AUTH_TAG_LEN)
			break;
		p = &a->pool[a->chunk_index & 1];
		memcpy(p->buf + p->len, a->pending, QKD_AUTH_TAG_LEN);
		p->len += QKD_AUTH_TAG_LEN;
		a->chunk_index++;
		a->pending_len = 0;
		OPENSSL_cleanse(a->pending, sizeof(a->pending));
	}
	return QKD_AUTH_OK;
}

static int send_dir(const struct auth_ctx *a)
{
	return a->role == QKD_AUTH_INITIATOR ? QKD_AUTH_DIR_I2R :
					       QKD_AUTH_DIR_R2I;
}

static int recv_dir(const struct auth_ctx *a)
{
	return 1 - send_dir(a);
}

size_t auth_reserve_tags(const struct auth_ctx *a, bool send)
{
	if (!a)
		return 0;
	return pool_level(&a->pool[send ? send_dir(a) : recv_dir(a)]) /
	       QKD_AUTH_TAG_LEN;
}

int auth_reserve_check(const struct auth_ctx *a, size_t ntags)
{
	if (!a)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	if (auth_reserve_tags(a, true) < ntags ||
	    auth_reserve_tags(a, false) < ntags)
		return QKD_AUTH_E_RESERVE;
	return QKD_AUTH_OK;
}

/* ---- context ------------------------------------------------------------ */

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

struct auth_ctx *auth_new(enum auth_role role, const uint8_t *key, size_t len,
			  const struct auth_params *params, int *err)
{
	struct auth_ctx *a;
	int e = QKD_AUTH_E_INVAL, dummy;

	if (!err)
		err = &dummy;
	if ((role != QKD_AUTH_INITIATOR && role != QKD_AUTH_RESPONDER) ||
	    !key) {
		*err = QKD_AUTH_E_INVAL;
		return NULL;
	}
	if (len < QKD_AUTH_KEY_MIN ||
	    all_zero(key, QKD_AUTH_HKEY_LEN) ||
	    all_zero(key + QKD_AUTH_HKEY_LEN, QKD_AUTH_HKEY_LEN)) {
		*err = QKD_AUTH_E_KEY;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a) {
		*err = QKD_AUTH_E_NOMEM;
		return NULL;
	}
	a->role = role;
	a->max_consec = params && params->max_consecutive_failures ?
			params->max_consecutive_failures :
			AUTH_DEFAULT_MAX_CONSEC;
	a->max_total = params && params->max_total_failures ?
		       params->max_total_failures : AUTH_DEFAULT_MAX_TOTAL;
	a->reserve_cap = params && params->reserve_cap ? params->reserve_cap :
			 QKD_AUTH_RESERVE_CAP_DEFAULT;
	memcpy(a->hkey[0], key, QKD_AUTH_HKEY_LEN);
	memcpy(a->hkey[1], key + QKD_AUTH_HKEY_LEN, QKD_AUTH_HKEY_LEN);
	e = auth_reserve_add(a, key + QKD_AUTH_KEY_HDR_LEN,
			     len - QKD_AUTH_KEY_HDR_LEN);
	if (e) {
		auth_free(a);
		*err = e;
		return NULL;
	}
	/*
	 * The initial material counts as the bootstrap, not as added key; a
	 * trailing partial chunk of it is not used.
	 */
	a->bytes_added = 0;
	a->additions = 0;
	OPENSSL_cleanse(a->pending, sizeof(a->pending));
	a->pending_len = 0;
	a->boot_left[0] = pool_level(&a->pool[0]);
	a->boot_left[1] = pool_level(&a->pool[1]);
	*err = QKD_AUTH_OK;
	return a;
}

void auth_free(struct auth_ctx *a)
{
	if (!a)
		return;
	pool_free(&a->pool[0]);
	pool_free(&a->pool[1]);
	OPENSSL_cleanse(a, sizeof(*a));
	free(a);
}

static void note_failure(struct auth_ctx *a)
{
	a->failures_total++;
	a->failures_consecutive++;
	if (a->failures_consecutive >= a->max_consec ||
	    a->failures_total >= a->max_total)
		a->halted = true;
}

void auth_note_failure(struct auth_ctx *a)
{
	if (a)
		note_failure(a);
}

void auth_resume(struct auth_ctx *a)
{
	if (!a)
		return;
	a->halted = false;
	a->failures_consecutive = 0;
}

bool auth_halted(const struct auth_ctx *a)
{
	return !a || a->halted;
}

uint64_t auth_next_send_seq(const struct auth_ctx *a)
{
	return a ? a->send_seq : 0;
}

uint64_t auth_next_recv_seq(const struct auth_ctx *a)
{
	return a ? a->recv_seq : 0;
}

static void make_tag(const uint8_t hkey[QKD_AUTH_HKEY_LEN], uint64_t seq,
		     const uint8_t *data, size_t len,
		     const uint8_t pad[QKD_AUTH_TAG_LEN],
		     uint8_t tag[QKD_AUTH_TAG_LEN])
{
	auth_poly_hash(hkey, seq, data, len, tag);
	for (int i = 0; i < QKD_AUTH_TAG_LEN; i++)
		tag[i] ^= pad[i];
}

int auth_seal(struct auth_ctx *a, uint64_t seq, const uint8_t *data,
	      size_t len, uint8_t tag[QKD_AUTH_TAG_LEN])
{
	uint8_t pad[QKD_AUTH_TAG_LEN];
	struct auth_pool *p;
	int r;

	if (!a || (!data && len) || !tag)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	if (len > QKD_AUTH_MAX_MSG)
		return QKD_AUTH_E_TOO_BIG;
	if (seq != a->send_seq || seq == UINT64_MAX)
		return QKD_AUTH_E_SEQ;
	p = &a->pool[send_dir(a)];
	if (pool_level(p) < QKD_AUTH_TAG_LEN)
		return QKD_AUTH_E_RESERVE;
	r = take(a, send_dir(a), pad);
	if (r)
		return r;
	make_tag(a->hkey[send_dir(a)], seq, data, len, pad, tag);
	OPENSSL_cleanse(pad, sizeof(pad));
	a->send_seq++;
	a->tags_made++;
	a->bytes_consumed += QKD_AUTH_TAG_LEN;
	return QKD_AUTH_OK;
}

int auth_verify(struct auth_ctx *a, uint64_t seq, const uint8_t *data,
		size_t len, const uint8_t tag[QKD_AUTH_TAG_LEN])
{
	uint8_t pad[QKD_AUTH_TAG_LEN], expect[QKD_AUTH_TAG_LEN];
	struct auth_pool *p;
	int ok, r;

	if (!a || (!data && len) || !tag)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	if (len > QKD_AUTH_MAX_MSG) {
		note_failure(a);
		return QKD_AUTH_E_TOO_BIG;
	}
	if (seq != a->recv_seq || seq == UINT64_MAX) {
		note_failure(a);
		return QKD_AUTH_E_SEQ;
	}
	p = &a->pool[recv_dir(a)];
	if (pool_level(p) < QKD_AUTH_TAG_LEN)
		return QKD_AUTH_E_RESERVE;
	/* The pad is burnt whatever the outcome: one verification per pad. */
	r = take(a, recv_dir(a), pad);
	if (r)
		return r;
	make_tag(a->hkey[recv_dir(a)], seq, data, len, pad, expect);
	ok = CRYPTO_memcmp(expect, tag, QKD_AUTH_TAG_LEN) == 0;
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(expect, sizeof(expect));
	a->recv_seq++;
	a->bytes_consumed += QKD_AUTH_TAG_LEN;
	if (!ok) {
		note_failure(a);
		return QKD_AUTH_E_TAG;
	}
	a->tags_verified++;
	a->failures_consecutive = 0;
	return QKD_AUTH_OK;
}

/* ---- transcript authentication ----------------------------------------- */

void auth_session_start(struct auth_ctx *a)
{
	if (!a)
		return;
	a->send_seq = 0;
	a->recv_seq = 0;
	OPENSSL_cleanse(&a->tr, sizeof(a->tr));
}

int auth_transcript_begin(struct auth_ctx *a, uint64_t id)
{
	if (!a)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	OPENSSL_cleanse(&a->tr, sizeof(a->tr));
	a->tr.open = true;
	a->tr.id = id;
	return QKD_AUTH_OK;
}

unsigned int auth_transcript_state(const struct auth_ctx *a, uint64_t id)
{
	unsigned int st = 0;

	if (!a || !a->tr.open || a->tr.id != id)
		return 0;
	st |= QKD_AUTH_TR_OPEN;
	if (a->tr.closed_send)
		st |= QKD_AUTH_TR_SENT;
	if (a->tr.verified && !a->tr.failed)
		st |= QKD_AUTH_TR_VERIFIED;
	return st;
}

double auth_transcript_epsilon_log2(uint64_t blocks)
{
	return log2((double)(blocks ? blocks : 1)) - 128.0;
}

/* Message direction (stream) of a message we send or receive. */
static int stream_dir(const struct auth_ctx *a, bool send)
{
	return send ? send_dir(a) : recv_dir(a);
}

int auth_transcript_absorb(struct auth_ctx *a, bool send, uint64_t seq,
			   uint64_t id, const uint8_t *data, size_t len,
			   bool *stale)
{
	struct auth_transcript *t;
	int sd;

	if (stale)
		*stale = false;
	if (!a || (!data && len))
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	t = &a->tr;
	if (len > QKD_AUTH_MAX_MSG) {
		if (!send)
			note_failure(a);
		return QKD_AUTH_E_TOO_BIG;
	}
	if (send) {
		if (seq != a->send_seq || seq == UINT64_MAX)
			return QKD_AUTH_E_SEQ;
		if (!t->open || t->closed_send || t->closed_recv ||
		    id != t->id)
			return QKD_AUTH_E_TR_STATE;
		a->send_seq++;
	} else {
		if (seq != a->recv_seq || seq == UINT64_MAX) {
			note_failure(a);
			return QKD_AUTH_E_SEQ;
		}
		if (t->open && id < t->id) {
			/* a message of an aborted round: skipped, not folded */
			a->recv_seq++;
			if (stale)
				*stale = true;
			return QKD_AUTH_OK;
		}
		if (!t->open || t->closed_send || t->closed_recv ||
		    id != t->id) {
			note_failure(a);
			return QKD_AUTH_E_TR_STATE;
		}
		a->recv_seq++;
	}
	sd = stream_dir(a, send);
	for (int k = 0; k < 2; k++) {
		struct auth_u128 h;

		hkey_load(&h, a->hkey[k]);
		absorb(&t->acc[k][sd], &h, data, len);
		OPENSSL_cleanse(&h, sizeof(h));
	}
	t->nblk[sd] += (len + 15) / 16;
	return QKD_AUTH_OK;
}

/* r = h^e */
static void gf128_pow(struct auth_u128 *r, const struct auth_u128 *h,
		      uint64_t e)
{
	struct auth_u128 b = *h;

	r->hi = 0;
	r->lo = 1;
	while (e) {
		if (e & 1)
			auth_gf128_mul(r, r, &b);
		auth_gf128_mul(&b, &b, &b);
		e >>= 1;
	}
	OPENSSL_cleanse(&b, sizeof(b));
}

/*
 * The hash of a closing message under key direction k: Horner's rule over
 *   S_I2R || S_R2I || data || [n_I2R, n_R2I] || [2^63 + len, seq]
 * (streams and data zero-padded to whole blocks, n_* their block counts).
 * The top bit of the last block tells it from a per-message hash, whose
 * last block is [len, seq] with len < 2^63.
 */
static void transcript_hash(const struct auth_ctx *a, int k, uint64_t seq,
			    const uint8_t *data, size_t len,
			    uint8_t out[QKD_AUTH_TAG_LEN], uint64_t *blocks)
{
	const struct auth_transcript *t = &a->tr;
	struct auth_u128 h, p, z;

	hkey_load(&h, a->hkey[k]);
	gf128_pow(&p, &h, t->nblk[1]);
	auth_gf128_mul(&z, &t->acc[k][0], &p);
	z.hi ^= t->acc[k][1].hi;
	z.lo ^= t->acc[k][1].lo;
	absorb(&z, &h, data, len);
	absorb_block(&z, &h, t->nblk[0], t->nblk[1]);
	absorb_block(&z, &h, (1ull << 63) | (uint64_t)len, seq);
	store_be64(out, z.hi);
	store_be64(out + 8, z.lo);
	*blocks = t->nblk[0] + t->nblk[1] + (len + 15) / 16 + 2;
	OPENSSL_cleanse(&h, sizeof(h));
	OPENSSL_cleanse(&p, sizeof(p));
	OPENSSL_cleanse(&z, sizeof(z));
}

int auth_transcript_seal(struct auth_ctx *a, uint64_t seq, uint64_t id,
			 const uint8_t *data, size_t len,
			 uint8_t tag[QKD_AUTH_TAG_LEN])
{
	uint8_t pad[QKD_AUTH_TAG_LEN];
	int d, r;

	if (!a || (!data && len) || !tag)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	if (len > QKD_AUTH_MAX_MSG)
		return QKD_AUTH_E_TOO_BIG;
	if (seq != a->send_seq || seq == UINT64_MAX)
		return QKD_AUTH_E_SEQ;
	if (!a->tr.open || a->tr.closed_send || a->tr.failed ||
	    id != a->tr.id)
		return QKD_AUTH_E_TR_STATE;
	d = send_dir(a);
	if (pool_level(&a->pool[d]) < QKD_AUTH_TAG_LEN)
		return QKD_AUTH_E_RESERVE;
	r = take(a, d, pad);
	if (r)
		return r;
	transcript_hash(a, d, seq, data, len, tag, &a->tr_last_blocks);
	for (int i = 0; i < QKD_AUTH_TAG_LEN; i++)
		tag[i] ^= pad[i];
	OPENSSL_cleanse(pad, sizeof(pad));
	a->tr.closed_send = true;
	a->send_seq++;
	a->tags_made++;
	a->bytes_consumed += QKD_AUTH_TAG_LEN;
	return QKD_AUTH_OK;
}

int auth_transcript_verify(struct auth_ctx *a, uint64_t seq, uint64_t id,
			   const uint8_t *data, size_t len,
			   const uint8_t tag[QKD_AUTH_TAG_LEN], bool *stale)
{
	uint8_t pad[QKD_AUTH_TAG_LEN], expect[QKD_AUTH_TAG_LEN];
	int d, ok, r;

	if (stale)
		*stale = false;
	if (!a || (!data && len) || !tag)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	if (len > QKD_AUTH_MAX_MSG) {
		note_failure(a);
		return QKD_AUTH_E_TOO_BIG;
	}
	if (seq != a->recv_seq || seq == UINT64_MAX) {
		note_failure(a);
		return QKD_AUTH_E_SEQ;
	}
	d = recv_dir(a);
	if (a->tr.open && id < a->tr.id) {
		/*
		 * The closing message of a round we already left: its pad is
		 * burnt unchecked (the transcript is gone) and it is skipped.
		 */
		if (pool_level(&a->pool[d]) < QKD_AUTH_TAG_LEN)
			return QKD_AUTH_E_RESERVE;
		r = take(a, d, pad);
		OPENSSL_cleanse(pad, sizeof(pad));
		if (r)
			return r;
		a->recv_seq++;
		a->bytes_consumed += QKD_AUTH_TAG_LEN;
		if (stale)
			*stale = true;
		return QKD_AUTH_OK;
	}
	if (!a->tr.open || a->tr.closed_recv || id != a->tr.id) {
		note_failure(a);
		return QKD_AUTH_E_TR_STATE;
	}
	if (pool_level(&a->pool[d]) < QKD_AUTH_TAG_LEN)
		return QKD_AUTH_E_RESERVE;
	r = take(a, d, pad);
	if (r)
		return r;
	transcript_hash(a, d, seq, data, len, expect, &a->tr_last_blocks);
	for (int i = 0; i < QKD_AUTH_TAG_LEN; i++)
		expect[i] ^= pad[i];
	ok = CRYPTO_memcmp(expect, tag, QKD_AUTH_TAG_LEN) == 0;
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(expect, sizeof(expect));
	a->recv_seq++;
	a->bytes_consumed += QKD_AUTH_TAG_LEN;
	a->tr.closed_recv = true;
	if (!ok) {
		a->tr_failures++;
		/* nothing of this segment may be used: closed for good */
		a->tr.failed = true;
		note_failure(a);
		return QKD_AUTH_E_TRANSCRIPT;
	}
	a->tr.verified = true;
	a->tr_verified++;
	a->tags_verified++;
	a->failures_consecutive = 0;
	return QKD_AUTH_OK;
}

/* ---- positions, resynchronisation, state file --------------------------- */

void auth_get_position(const struct auth_ctx *a, struct auth_position *p)
{
	if (!p)
		return;
	memset(p, 0, sizeof(*p));
	if (!a)
		return;
	for (int d = 0; d < 2; d++) {
		p->pos[d] = a->pos[d];
		p->end[d] = a->pos[d] + pool_level(&a->pool[d]) /
					QKD_AUTH_TAG_LEN;
	}
	p->additions = a->additions;
}

int auth_skip_to(struct auth_ctx *a, const uint64_t pos[2],
		 uint64_t max_skip)
{
	if (!a || !pos)
		return QKD_AUTH_E_INVAL;
	for (int d = 0; d < 2; d++) {
		uint64_t have = pool_level(&a->pool[d]) / QKD_AUTH_TAG_LEN;

		if (pos[d] <= a->pos[d])
			continue;
		if (pos[d] - a->pos[d] > max_skip ||
		    pos[d] - a->pos[d] > have)
			return QKD_AUTH_E_STATE;
	}
	for (int d = 0; d < 2; d++) {
		if (pos[d] <= a->pos[d])
			continue;
		a->bytes_skipped += (pos[d] - a->pos[d]) * QKD_AUTH_TAG_LEN;
		drop_chunks(a, d, pos[d] - a->pos[d]);
	}
	return QKD_AUTH_OK;
}

/*
 * Tags of a SYNC (positions of the reserve, at a connection's start).
 * seq UINT64_MAX is never a frame's (auth_seal() and auth_verify() refuse
 * it), so a SYNC tag verifies as nothing else; the hash key is the pool's.
 */
#define SYNC_SEQ	UINT64_MAX

static void sync_tag(const struct auth_ctx *a, int d, const uint8_t *data,
		     size_t len, const uint8_t pad[QKD_AUTH_TAG_LEN],
		     uint8_t tag[QKD_AUTH_TAG_LEN])
{
	make_tag(a->hkey[d], SYNC_SEQ, data, len, pad, tag);
}

int auth_sync_seal(struct auth_ctx *a, const struct auth_position *at,
		   const uint8_t *data, size_t len,
		   uint8_t tags[2][QKD_AUTH_TAG_LEN])
{
	uint8_t pad[QKD_AUTH_TAG_LEN];
	int r;

	if (!a || !at || (!data && len) || !tags)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	if (len > QKD_AUTH_MAX_MSG)
		return QKD_AUTH_E_TOO_BIG;
	for (int d = 0; d < 2; d++) {
		if (at->pos[d] != a->pos[d])
			return QKD_AUTH_E_STATE;
		if (pool_level(&a->pool[d]) < QKD_AUTH_TAG_LEN)
			return QKD_AUTH_E_RESERVE;
	}
	/* both pads are used up here: a tag on the wire is never re-made */
	for (int d = 0; d < 2; d++) {
		r = take(a, d, pad);
		if (r) {
			OPENSSL_cleanse(pad, sizeof(pad));
			return r;
		}
		sync_tag(a, d, data, len, pad, tags[d]);
		a->tags_made++;
		a->bytes_consumed += QKD_AUTH_TAG_LEN;
	}
	OPENSSL_cleanse(pad, sizeof(pad));
	return QKD_AUTH_OK;
}

int auth_sync_verify(struct auth_ctx *a, const struct auth_position *claim,
		     uint64_t max_skip, const uint8_t *data, size_t len,
		     const uint8_t tags[2][QKD_AUTH_TAG_LEN],
		     unsigned int *checked)
{
	uint8_t expect[QKD_AUTH_TAG_LEN], pad[QKD_AUTH_TAG_LEN];
	unsigned int mask = 0;
	int ok = 1;

	if (checked)
		*checked = 0;
	if (!a || !claim || (!data && len) || !tags)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	if (len > QKD_AUTH_MAX_MSG) {
		note_failure(a);
		return QKD_AUTH_E_TOO_BIG;
	}
	for (int d = 0; d < 2; d++) {
		uint64_t have = pool_level(&a->pool[d]) / QKD_AUTH_TAG_LEN;

		/* behind us: that pad is gone here, nothing to check with */
		if (claim->pos[d] < a->pos[d])
			continue;
		if (claim->pos[d] - a->pos[d] > max_skip ||
		    claim->pos[d] - a->pos[d] >= have) {
			note_failure(a);
			return QKD_AUTH_E_STATE;
		}
		mask |= 1u << d;
	}
	if (!mask)
		return QKD_AUTH_E_SEQ;
	/*
	 * Check with the pads at the claimed positions, consuming nothing:
	 * a failed check moves no position (a forged position costs no
	 * pad); like any failed verification it counts, and it is one
	 * forgery attempt on that pad (eps per attempt).
	 */
	for (int d = 0; d < 2; d++) {
		size_t off;

		if (!(mask & (1u << d)))
			continue;
		off = a->pool[d].head +
		      (size_t)(claim->pos[d] - a->pos[d]) * QKD_AUTH_TAG_LEN;
		memcpy(pad, a->pool[d].buf + off, QKD_AUTH_TAG_LEN);
		sync_tag(a, d, data, len, pad, expect);
		ok &= CRYPTO_memcmp(expect, tags[d], QKD_AUTH_TAG_LEN) == 0;
	}
	OPENSSL_cleanse(pad, sizeof(pad));
	OPENSSL_cleanse(expect, sizeof(expect));
	if (!ok) {
		note_failure(a);
		return QKD_AUTH_E_TAG;
	}
	/*
	 * Authenticated: every pool moves to the peer's position if it is
	 * ahead (pads it used or set aside), and past each pad that
	 * verified, through take() so that the state file records it first.
	 */
	for (int d = 0; d < 2; d++) {
		int r;

		if (!(mask & (1u << d)))
			continue;
		if (claim->pos[d] > a->pos[d]) {
			a->bytes_skipped += (claim->pos[d] - a->pos[d]) *
					    QKD_AUTH_TAG_LEN;
			drop_chunks(a, d, claim->pos[d] - a->pos[d]);
		}
		r = take(a, d, pad);
		OPENSSL_cleanse(pad, sizeof(pad));
		if (r)
			return r;
		a->bytes_consumed += QKD_AUTH_TAG_LEN;
	}
	a->tags_verified++;
	a->failures_consecutive = 0;
	if (checked)
		*checked = mask;
	return QKD_AUTH_OK;
}

void auth_set_persist(struct auth_ctx *a, auth_persist_fn fn, void *arg,
		      unsigned int batch)
{
	if (!a)
		return;
	a->persist = fn;
	a->persist_arg = arg;
	a->persist_batch = batch ? batch : QKD_AUTH_PERSIST_BATCH;
	/* the next pad of each pool is recorded before its use */
	a->limit[0] = a->pos[0];
	a->limit[1] = a->pos[1];
}

#define STATE_MAGIC	"QKDAUTH\x01"
#define STATE_FIXED	(8 + 4 + 2 * QKD_AUTH_HKEY_LEN + 1 + \
			 QKD_AUTH_TAG_LEN + 15 * 8)

static void put_be64(uint8_t **p, uint64_t v)
{
	store_be64(*p, v);
	*p += 8;
}

static uint64_t get_be64(const uint8_t **p)
{
	uint64_t v = load_be64(*p);

	*p += 8;
	return v;
}

/*
 * Layout (big endian): magic[8], role u8, halted u8, 0 u16, hkey[2][16],
 * pending_len u8, pending[16], chunk_index, additions, bytes_added,
 * bytes_consumed, bytes_discarded, bytes_skipped, tags_made, tags_verified,
 * failures_total, then per pool: position, bootstrap bytes left, chunk
 * count, then the chunks of pool 0 and of pool 1.
 */
int auth_state_export(const struct auth_ctx *a, uint8_t **buf, size_t *len)
{
	uint64_t from[2], n[2], skip[2];
	uint8_t *b, *p;
	size_t total;

	if (!a || !buf || !len)
		return QKD_AUTH_E_INVAL;
	total = STATE_FIXED;
	for (int d = 0; d < 2; d++) {
		uint64_t have = pool_level(&a->pool[d]) / QKD_AUTH_TAG_LEN;
		uint64_t lim = a->persist && a->limit[d] > a->pos[d] ?
			       a->limit[d] : a->pos[d];

		skip[d] = lim - a->pos[d] < have ? lim - a->pos[d] : have;
		from[d] = a->pos[d] + skip[d];
		n[d] = have - skip[d];
		total += (size_t)n[d] * QKD_AUTH_TAG_LEN;
	}
	b = malloc(total);
	if (!b)
		return QKD_AUTH_E_NOMEM;
	p = b;
	memcpy(p, STATE_MAGIC, 8);
	p += 8;
	*p++ = (uint8_t)a->role;
	*p++ = a->halted;
	*p++ = 0;
	*p++ = 0;
	memcpy(p, a->hkey, 2 * QKD_AUTH_HKEY_LEN);
	p += 2 * QKD_AUTH_HKEY_LEN;
	*p++ = (uint8_t)a->pending_len;
	memcpy(p, a->pending, QKD_AUTH_TAG_LEN);
	p += QKD_AUTH_TAG_LEN;
	put_be64(&p, a->chunk_index);
	put_be64(&p, a->additions);
	put_be64(&p, a->bytes_added);
	put_be64(&p, a->bytes_consumed);
	put_be64(&p, a->bytes_discarded);
	/* what a restart from this file skips counts as skipped */
	put_be64(&p, a->bytes_skipped +
		 (skip[0] + skip[1]) * QKD_AUTH_TAG_LEN);
	put_be64(&p, a->tags_made);
	put_be64(&p, a->tags_verified);
	put_be64(&p, a->failures_total);
	for (int d = 0; d < 2; d++) {
		uint64_t sb = skip[d] * QKD_AUTH_TAG_LEN;

		put_be64(&p, from[d]);
		put_be64(&p, a->boot_left[d] > sb ? a->boot_left[d] - sb : 0);
		put_be64(&p, n[d]);
	}
	for (int d = 0; d < 2; d++) {
		size_t nb = (size_t)n[d] * QKD_AUTH_TAG_LEN;

		memcpy(p, a->pool[d].buf + a->pool[d].head +
		       skip[d] * QKD_AUTH_TAG_LEN, nb);
		p += nb;
	}
	*buf = b;
	*len = total;
	return QKD_AUTH_OK;
}

struct auth_ctx *auth_state_import(const uint8_t *buf, size_t len,
				   const struct auth_params *params,
				   int *err)
{
	const uint8_t *p = buf;
	uint64_t n[2], boot[2], from[2];
	struct auth_ctx *a;
	int dummy;

	if (!err)
		err = &dummy;
	*err = QKD_AUTH_E_STATE;
	if (!buf || len < STATE_FIXED || memcmp(p, STATE_MAGIC, 8) ||
	    p[8] > QKD_AUTH_RESPONDER || p[9] > 1 || p[10] || p[11])
		return NULL;
	a = calloc(1, sizeof(*a));
	if (!a) {
		*err = QKD_AUTH_E_NOMEM;
		return NULL;
	}
	a->role = p[8];
	a->halted = p[9];
	p += 12;
	memcpy(a->hkey, p, 2 * QKD_AUTH_HKEY_LEN);
	p += 2 * QKD_AUTH_HKEY_LEN;
	a->pending_len = *p++;
	memcpy(a->pending, p, QKD_AUTH_TAG_LEN);
	p += QKD_AUTH_TAG_LEN;
	a->chunk_index = get_be64(&p);
	a->additions = get_be64(&p);
	a->bytes_added = get_be64(&p);
	a->bytes_consumed = get_be64(&p);
	a->bytes_discarded = get_be64(&p);
	a->bytes_skipped = get_be64(&p);
	a->tags_made = get_be64(&p);
	a->tags_verified = get_be64(&p);
	a->failures_total = get_be64(&p);
	for (int d = 0; d < 2; d++) {
		from[d] = get_be64(&p);
		boot[d] = get_be64(&p);
		n[d] = get_be64(&p);
	}
	a->max_consec = params && params->max_consecutive_failures ?
			params->max_consecutive_failures :
			AUTH_DEFAULT_MAX_CONSEC;
	a->max_total = params && params->max_total_failures ?
		       params->max_total_failures : AUTH_DEFAULT_MAX_TOTAL;
	a->reserve_cap = params && params->reserve_cap ? params->reserve_cap :
			 QKD_AUTH_RESERVE_CAP_DEFAULT;
	if (a->pending_len >= QKD_AUTH_TAG_LEN ||
	    all_zero(a->hkey[0], QKD_AUTH_HKEY_LEN) ||
	    all_zero(a->hkey[1], QKD_AUTH_HKEY_LEN) ||
	    n[0] > a->reserve_cap / QKD_AUTH_TAG_LEN ||
	    n[1] > a->reserve_cap / QKD_AUTH_TAG_LEN ||
	    (size_t)(len - STATE_FIXED) !=
	    (size_t)(n[0] + n[1]) * QKD_AUTH_TAG_LEN ||
	    boot[0] > n[0] * QKD_AUTH_TAG_LEN ||
	    boot[1] > n[1] * QKD_AUTH_TAG_LEN ||
	    a->failures_total > UINT32_MAX)
		goto fail;
	for (int d = 0; d < 2; d++) {
		size_t nb = (size_t)n[d] * QKD_AUTH_TAG_LEN;

		if (pool_reserve(&a->pool[d], nb)) {
			*err = QKD_AUTH_E_NOMEM;
			goto fail;
		}
		memcpy(a->pool[d].buf, p, nb);
		a->pool[d].len = nb;
		p += nb;
		a->pos[d] = a->limit[d] = from[d];
		a->boot_left[d] = (size_t)boot[d];
	}
	if (a->failures_total >= a->max_total)
		a->halted = true;
	*err = QKD_AUTH_OK;
	return a;
fail:
	auth_free(a);
	return NULL;
}

int auth_rekey_hash(struct auth_ctx *a)
{
	uint8_t nk[2][QKD_AUTH_HKEY_LEN];

	if (!a)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	if (pool_level(&a->pool[0]) < QKD_AUTH_HKEY_LEN ||
	    pool_level(&a->pool[1]) < QKD_AUTH_HKEY_LEN)
		return QKD_AUTH_E_RESERVE;
	if (persist_ahead(a, 0) || persist_ahead(a, 1))
		return QKD_AUTH_E_PERSIST;
	if (take(a, 0, nk[0]) || take(a, 1, nk[1])) {
		OPENSSL_cleanse(nk, sizeof(nk));
		return QKD_AUTH_E_PERSIST;
	}
	a->bytes_consumed += 2 * QKD_AUTH_HKEY_LEN;
	if (all_zero(nk[0], QKD_AUTH_HKEY_LEN) ||
	    all_zero(nk[1], QKD_AUTH_HKEY_LEN)) {
		/* probability 2^-127; both ends see the same bytes */
		OPENSSL_cleanse(nk, sizeof(nk));
		return QKD_AUTH_E_KEY;
	}
	memcpy(a->hkey, nk, sizeof(nk));
	OPENSSL_cleanse(nk, sizeof(nk));
	return QKD_AUTH_OK;
}

int auth_retire_bootstrap(struct auth_ctx *a)
{
	if (!a)
		return QKD_AUTH_E_INVAL;
	if (a->halted)
		return QKD_AUTH_E_HALTED;
	for (int d = 0; d < 2; d++)
		if (pool_level(&a->pool[d]) < a->boot_left[d] + QKD_AUTH_HKEY_LEN)
			return QKD_AUTH_E_RESERVE;
	for (int d = 0; d < 2; d++) {
		size_t n = a->boot_left[d];

		drop_chunks(a, d, n / QKD_AUTH_TAG_LEN);
		a->bytes_discarded += n;
	}
	return auth_rekey_hash(a);
}

void auth_get_stats(const struct auth_ctx *a, struct auth_stats *st)
{
	if (!st)
		return;
	memset(st, 0, sizeof(*st));
	if (!a)
		return;
	st->reserve_send = pool_level(&a->pool[send_dir(a)]);
	st->reserve_recv = pool_level(&a->pool[recv_dir(a)]);
	st->reserve_pending = a->pending_len;
	st->next_send_seq = a->send_seq;
	st->next_recv_seq = a->recv_seq;
	st->tags_made = a->tags_made;
	st->tags_verified = a->tags_verified;
	st->failures_total = a->failures_total;
	st->failures_consecutive = a->failures_consecutive;
	st->bytes_added = a->bytes_added;
	st->bytes_consumed = a->bytes_consumed;
	st->bytes_discarded = a->bytes_discarded;
	st->bytes_skipped = a->bytes_skipped;
	st->bootstrap_left = a->boot_left[0] + a->boot_left[1];
	st->transcripts_verified = a->tr_verified;
	st->transcript_failures = a->tr_failures;
	st->last_transcript_blocks = a->tr_last_blocks;
	st->additions = a->additions;
	st->halted = a->halted;
}

/* ---- bootstrap (a): pre-shared key file -------------------------------- */

__attribute__((format(printf, 3, 4)))
static void set_err(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!buf || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

void auth_key_free(uint8_t *key, size_t len)
{
	if (!key)
		return;
	OPENSSL_cleanse(key, len);
	free(key);
}

static int wipe_file(int fd, size_t size)
{
	uint8_t zero[4096];
	size_t off = 0;

	memset(zero, 0, sizeof(zero));
	while (off < size) {
		size_t n = size - off < sizeof(zero) ? size - off : sizeof(zero);
		ssize_t w = pwrite(fd, zero, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return fsync(fd);
}

int auth_psk_read(const char *path, unsigned int flags, uint8_t **key,
		  size_t *len, char *errbuf, size_t errlen)
{
	bool consume = flags & QKD_AUTH_PSK_CONSUME;
	struct stat st;
	uint8_t *buf = NULL;
	size_t size = 0, off = 0;
	int fd, e;

	if (!path || !key || !len || (flags & ~QKD_AUTH_PSK_CONSUME)) {
		set_err(errbuf, errlen, "invalid argument");
		return QKD_AUTH_E_INVAL;
	}
	*key = NULL;
	*len = 0;
	fd = open(path, (consume ? O_RDWR : O_RDONLY) | O_NOFOLLOW |
		  O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ELOOP)
			set_err(errbuf, errlen,
				"pre-shared key %s: is a symbolic link; give the real file",
				path);
		else
			set_err(errbuf, errlen, "pre-shared key %s: %s", path,
				strerror(errno));
		return QKD_AUTH_E_PSK_IO;
	}
	if (fstat(fd, &st)) {
		set_err(errbuf, errlen, "pre-shared key %s: %s", path,
			strerror(errno));
		e = QKD_AUTH_E_PSK_IO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		set_err(errbuf, errlen, "pre-shared key %s: not a regular file",
			path);
		e = QKD_AUTH_E_PSK_IO;
		goto out;
	}
	if (st.st_mode & (S_IRWXO | S_IWGRP)) {
		set_err(errbuf, errlen,
			"pre-shared key %s: mode %04o lets others read or change it; run chmod 600",
			path, (unsigned int)(st.st_mode & 07777));
		e = QKD_AUTH_E_PSK_PERM;
		goto out;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		set_err(errbuf, errlen,
			"pre-shared key %s: owned by uid %u, not by us (uid %u) or root",
			path, (unsigned int)st.st_uid, (unsigned int)geteuid());
		e = QKD_AUTH_E_PSK_PERM;
		goto out;
	}
	if (st.st_size < QKD_AUTH_PSK_MIN || st.st_size > QKD_AUTH_PSK_MAX ||
	    st.st_size % QKD_AUTH_PSK_ALIGN) {
		set_err(errbuf, errlen,
			"pre-shared key %s: %lld bytes; must be %u..%u bytes, a multiple of %u",
			path, (long long)st.st_size, QKD_AUTH_PSK_MIN,
			QKD_AUTH_PSK_MAX, QKD_AUTH_PSK_ALIGN);
		e = QKD_AUTH_E_PSK_SIZE;
		goto out;
	}
	size = (size_t)st.st_size;
	buf = malloc(size + 1);
	if (!buf) {
		set_err(errbuf, errlen, "out of memory");
		e = QKD_AUTH_E_NOMEM;
		goto out;
	}
	/* Read one byte more than expected to catch a file that grew. */
	while (off < size + 1) {
		ssize_t r = read(fd, buf + off, size + 1 - off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			set_err(errbuf, errlen, "pre-shared key %s: %s", path,
				strerror(errno));
			e = QKD_AUTH_E_PSK_IO;
			goto out;
		}
		if (r == 0)
			break;
		off += (size_t)r;
	}
	if (off != size) {
		set_err(errbuf, errlen,
			"pre-shared key %s: size changed while reading", path);
		e = QKD_AUTH_E_PSK_SIZE;
		goto out;
	}
	if (all_zero(buf, QKD_AUTH_HKEY_LEN) ||
	    all_zero(buf + QKD_AUTH_HKEY_LEN, QKD_AUTH_HKEY_LEN)) {
		set_err(errbuf, errlen,
			"pre-shared key %s: zero hash key; the file is not random key material",
			path);
		e = QKD_AUTH_E_KEY;
		goto out;
	}
	if (consume && (wipe_file(fd, size) || unlink(path))) {
		set_err(errbuf, errlen,
			"pre-shared key %s: cannot wipe and remove it: %s", path,
			strerror(errno));
		e = QKD_AUTH_E_PSK_IO;
		goto out;
	}
	*key = buf;
	*len = size;
	buf = NULL;
	e = QKD_AUTH_OK;
out:
	if (buf)
		auth_key_free(buf, size + 1);
	close(fd);
	return e;
}

struct auth_ctx *auth_new_from_psk(enum auth_role role, const char *path,
				   unsigned int flags,
				   const struct auth_params *params, int *err,
				   char *errbuf, size_t errlen)
{
	struct auth_ctx *a;
	uint8_t *key;
	size_t len;
	int e, dummy;

	if (!err)
		err = &dummy;
	e = auth_psk_read(path, flags, &key, &len, errbuf, errlen);
	if (e) {
		*err = e;
		return NULL;
	}
	a = auth_new(role, key, len, params, err);
	auth_key_free(key, len);
	if (!a)
		set_err(errbuf, errlen, "pre-shared key %s: %s", path,
			auth_strerror(*err));
	return a;
}

/* ---- bootstrap (b): X.509 identities, TLS 1.3 exporter ----------------- */

static void ssl_err(char *errbuf, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[256];

	if (e) {
		ERR_error_string_n(e, buf, sizeof(buf));
		set_err(errbuf, errlen, "%s: %s", what, buf);
	} else {
		set_err(errbuf, errlen, "%s", what);
	}
}

static SSL_CTX *x509_ctx(enum auth_role role, const struct auth_x509_cfg *cfg,
			 char *errbuf, size_t errlen)
{
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(role == QKD_AUTH_INITIATOR ? TLS_client_method() :
			  TLS_server_method());
	if (!ctx) {
		ssl_err(errbuf, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		ssl_err(errbuf, errlen, "cannot require TLS 1.3");
		goto err;
	}
	/* No tickets: nothing may follow the handshake on the stream. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
		ssl_err(errbuf, errlen, "cannot load certificate");
		goto err;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file,
					SSL_FILETYPE_PEM) != 1) {
		ssl_err(errbuf, errlen, "cannot load private key");
		goto err;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_err(errbuf, errlen,
			"private key does not match the certificate");
		goto err;
	}
	/* Trust only the given CA file, never the system store. */
	if (SSL_CTX_load_verify_locations(ctx, cfg->ca_file, NULL) != 1) {
		ssl_err(errbuf, errlen, "cannot load CA file");
		goto err;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
			   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_verify_depth(ctx, 8);
	return ctx;
err:
	SSL_CTX_free(ctx);
	return NULL;
}

static void x509_peer_err(SSL *ssl, char *errbuf, size_t errlen,
			  const char *what)
{
	long vr = SSL_get_verify_result(ssl);

	if (vr != X509_V_OK)
		set_err(errbuf, errlen, "%s: peer certificate rejected: %s",
			what, X509_verify_cert_error_string(vr));
	else
		ssl_err(errbuf, errlen, what);
}

/*
 * The descriptor is blocking: an SSL call that wants to read or write again
 * was interrupted by a signal (EINTR; OpenSSL treats it as retryable) and
 * is simply repeated. A socket timeout (EAGAIN) is an error.
 */
static bool ssl_again(SSL *ssl, int r, unsigned int *tries)
{
	int e = SSL_get_error(ssl, r);

	return (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
	       errno == EINTR && ++*tries < 100000;
}

static int x509_confirm_value(SSL *ssl, enum auth_role who,
			      uint8_t v[32])
{
	static const char label[] = "EXPORTER-qkd-auth-confirm-v1";
	uint8_t c[1] = { (uint8_t)who };

	return SSL_export_keying_material(ssl, v, 32, label, strlen(label), c,
					  sizeof(c), 1) == 1 ? 0 : -1;
}

static int x509_confirm(SSL *ssl, enum auth_role role, char *errbuf,
			size_t errlen)
{
	enum auth_role peer = role == QKD_AUTH_INITIATOR ? QKD_AUTH_RESPONDER :
							   QKD_AUTH_INITIATOR;
	uint8_t mine[32], theirs[32], got[32];
	int e = QKD_AUTH_E_X509_PEER;
	size_t off = 0;

	if (x509_confirm_value(ssl, role, mine) ||
	    x509_confirm_value(ssl, peer, theirs)) {
		ssl_err(errbuf, errlen, "TLS exporter failed");
		goto out;
	}
	for (int step = 0; step < 2; step++) {
		bool send_now = (step == 0) == (role == QKD_AUTH_INITIATOR);

		if (send_now) {
			unsigned int tries = 0;
			int w;

			do {
				errno = 0;
				w = SSL_write(ssl, mine, sizeof(mine));
			} while (w <= 0 && ssl_again(ssl, w, &tries));
			if (w != (int)sizeof(mine)) {
				x509_peer_err(ssl, errbuf, errlen,
					      "key confirmation not sent");
				goto out;
			}
			continue;
		}
		while (off < sizeof(got)) {
			unsigned int tries = 0;
			int n;

			do {
				errno = 0;
				n = SSL_read(ssl, got + off,
					     (int)(sizeof(got) - off));
			} while (n <= 0 && ssl_again(ssl, n, &tries));
			if (n <= 0) {
				x509_peer_err(ssl, errbuf, errlen,
					      "no key confirmation from the peer (it rejected us?)");
				goto out;
			}
			off += (size_t)n;
		}
		if (CRYPTO_memcmp(got, theirs, sizeof(got))) {
			set_err(errbuf, errlen, "key confirmation mismatch");
			goto out;
		}
	}
	e = QKD_AUTH_OK;
out:
	OPENSSL_cleanse(mine, sizeof(mine));
	OPENSSL_cleanse(theirs, sizeof(theirs));
	OPENSSL_cleanse(got, sizeof(got));
	return e;
}

static int x509_run(int fd, enum auth_role role,
		    const struct auth_x509_cfg *cfg, uint8_t *out,
		    size_t outlen, char *errbuf, size_t errlen)
{
	unsigned int tries = 0;
	SSL_CTX *ctx;
	SSL *ssl = NULL;
	int e = QKD_AUTH_E_X509_PEER, r;

	ctx = x509_ctx(role, cfg, errbuf, errlen);
	if (!ctx)
		return QKD_AUTH_E_X509_CONFIG;
	ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		ssl_err(errbuf, errlen, "SSL_new");
		e = QKD_AUTH_E_NOMEM;
		goto out;
	}
	if (cfg->peer_name) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);

		X509_VERIFY_PARAM_set_hostflags(vp,
			X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (X509_VERIFY_PARAM_set1_host(vp, cfg->peer_name, 0) != 1) {
			ssl_err(errbuf, errlen, "bad peer name");
			e = QKD_AUTH_E_X509_CONFIG;
			goto out;
		}
	}
	do {
		errno = 0;
		r = role == QKD_AUTH_INITIATOR ? SSL_connect(ssl) :
						 SSL_accept(ssl);
	} while (r != 1 && ssl_again(ssl, r, &tries));
	if (r != 1) {
		x509_peer_err(ssl, errbuf, errlen, "TLS handshake failed");
		goto out;
	}
	if (SSL_version(ssl) != TLS1_3_VERSION ||
	    !SSL_get0_peer_certificate(ssl) ||
	    SSL_get_verify_result(ssl) != X509_V_OK) {
		x509_peer_err(ssl, errbuf, errlen, "peer not authenticated");
		goto out;
	}
	for (size_t off = 0, i = 0; off < outlen; i++) {
		size_t n = outlen - off > AUTH_EXPORT_CHUNK ? AUTH_EXPORT_CHUNK :
			   outlen - off;
		uint8_t c[8] = { 'q', 'k', 'd', 'a', (uint8_t)(i >> 24),
				 (uint8_t)(i >> 16), (uint8_t)(i >> 8),
				 (uint8_t)i };

		if (SSL_export_keying_material(ssl, out + off, n,
					       AUTH_EXPORT_LABEL,
					       strlen(AUTH_EXPORT_LABEL), c,
					       sizeof(c), 1) != 1) {
			ssl_err(errbuf, errlen, "TLS exporter failed");
			goto out;
		}
		off += n;
	}
	/*
	 * Key confirmation. In TLS 1.3 the client completes its handshake
	 * before the server has checked the client certificate, so the
	 * client must not trust the exporter output until the server has
	 * spoken: each side sends a confirmation value derived from the
	 * exporter (the initiator first) and checks the peer's. A server that
	 * rejected us sends an alert instead.
	 */
	r = x509_confirm(ssl, role, errbuf, errlen);
	if (r) {
		e = r;
		goto out;
	}
	/* Close cleanly both ways so the stream can carry frames after. */
	tries = 0;
	do {
		errno = 0;
		r = SSL_shutdown(ssl);
	} while (r < 0 && ssl_again(ssl, r, &tries));
	while (r == 0 || (r < 0 && ssl_again(ssl, r, &tries))) {
		errno = 0;
		r = SSL_shutdown(ssl);
	}
	if (r != 1) {
		x509_peer_err(ssl, errbuf, errlen, "TLS close failed");
		goto out;
	}
	e = QKD_AUTH_OK;
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return e;
}

int auth_x509_bootstrap(int fd, enum auth_role role,
			const struct auth_x509_cfg *cfg, uint8_t *out,
			size_t outlen, char *errbuf, size_t errlen)
{
	sigset_t pipe_set, old, pending;
	bool was_pending;
	int e;

	if (fd < 0 || !cfg || !cfg->cert_file || !cfg->key_file ||
	    !cfg->ca_file || !out ||
	    (role != QKD_AUTH_INITIATOR && role != QKD_AUTH_RESPONDER) ||
	    outlen < QKD_AUTH_KEY_MIN || outlen > QKD_AUTH_BOOTSTRAP_MAX) {
		set_err(errbuf, errlen, "invalid argument");
		return QKD_AUTH_E_INVAL;
	}
	memset(out, 0, outlen);
	if (errbuf && errlen)
		errbuf[0] = '\0';
	ERR_clear_error();

	/* OpenSSL writes with write(2): keep a closed peer from killing us. */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);

	e = x509_run(fd, role, cfg, out, outlen, errbuf, errlen);

	if (!was_pending) {
		struct timespec zero = { 0, 0 };

		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE))
			sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	ERR_clear_error();
	if (e)
		OPENSSL_cleanse(out, outlen);
	return e;
}
