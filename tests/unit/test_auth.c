// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for userspace/protocol/auth.c: the GF(2^128) hash, Wegman-Carter
 * tags, reserve accounting, failure counting, the PSK-file bootstrap and the
 * X.509 (TLS 1.3 exporter) bootstrap.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "kselftest_harness.h"

#include "qkd/auth.h"
#include "qkd/frame.h"

#define KEYLEN (QKD_AUTH_KEY_HDR_LEN + 64 * 16)

static void fill_random(uint8_t *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1)
		abort();
}

static void make_pair(const uint8_t *key, size_t len,
		      const struct auth_params *p, struct auth_ctx **ini,
		      struct auth_ctx **res)
{
	int e1 = 1, e2 = 1;

	*ini = auth_new(QKD_AUTH_INITIATOR, key, len, p, &e1);
	*res = auth_new(QKD_AUTH_RESPONDER, key, len, p, &e2);
	if (!*ini || !*res || e1 || e2)
		abort();
}

static struct auth_u128 u(uint64_t hi, uint64_t lo)
{
	struct auth_u128 v = { hi, lo };

	return v;
}

TEST(gf128_known_answers)
{
	struct auth_u128 r, a, b, one = u(0, 1), x = u(0, 2);

	/* x^127 * x = x^128 = x^7 + x^2 + x + 1 */
	a = u(1ull << 63, 0);
	auth_gf128_mul_portable(&r, &a, &x);
	ASSERT_EQ(r.hi, 0);
	ASSERT_EQ(r.lo, 0x87);
	auth_gf128_mul(&r, &a, &x);
	ASSERT_EQ(r.hi, 0);
	ASSERT_EQ(r.lo, 0x87);
	/* x^64 * x^64 = x^128 */
	a = u(1, 0);
	auth_gf128_mul(&r, &a, &a);
	ASSERT_EQ(r.hi, 0);
	ASSERT_EQ(r.lo, 0x87);
	/* x^127 * x^127 = x^254 = x^126 * (x^7+x^2+x+1) reduced:
	 * x^133 + x^128 + x^127 + x^126; x^133 = x^5 * x^128 = x^12+x^7+x^6+x^5,
	 * x^128 = x^7+x^2+x+1 -> x^127 + x^126 + x^12 + x^6 + x^5 + x^2 + x + 1
	 */
	a = u(1ull << 63, 0);
	auth_gf128_mul_portable(&r, &a, &a);
	ASSERT_EQ(r.hi, 0xc000000000000000ull);
	ASSERT_EQ(r.lo, 0x1067ull);
	auth_gf128_mul(&r, &a, &a);
	ASSERT_EQ(r.hi, 0xc000000000000000ull);
	ASSERT_EQ(r.lo, 0x1067ull);
	/* 1 is the identity, 0 absorbs */
	b = u(0x0123456789abcdefull, 0xfedcba9876543210ull);
	auth_gf128_mul(&r, &b, &one);
	ASSERT_EQ(r.hi, b.hi);
	ASSERT_EQ(r.lo, b.lo);
	a = u(0, 0);
	auth_gf128_mul(&r, &b, &a);
	ASSERT_EQ(r.hi, 0);
	ASSERT_EQ(r.lo, 0);
}

TEST(gf128_clmul_matches_portable)
{
	struct auth_u128 a, b, c, r1, r2, t1, t2, s;

	if (!auth_gf128_have_clmul())
		SKIP(return, "no PCLMULQDQ on this CPU");
	for (int i = 0; i < 20000; i++) {
		fill_random((uint8_t *)&a, sizeof(a));
		fill_random((uint8_t *)&b, sizeof(b));
		fill_random((uint8_t *)&c, sizeof(c));
		auth_gf128_mul(&r1, &a, &b);
		auth_gf128_mul_portable(&r2, &a, &b);
		ASSERT_EQ(r1.hi, r2.hi);
		ASSERT_EQ(r1.lo, r2.lo);
		/* commutative */
		auth_gf128_mul(&r2, &b, &a);
		ASSERT_EQ(r1.hi, r2.hi);
		ASSERT_EQ(r1.lo, r2.lo);
		/* distributive: a(b+c) = ab + ac */
		s = u(b.hi ^ c.hi, b.lo ^ c.lo);
		auth_gf128_mul(&t1, &a, &s);
		auth_gf128_mul_portable(&t2, &a, &c);
		ASSERT_EQ(t1.hi, r1.hi ^ t2.hi);
		ASSERT_EQ(t1.lo, r1.lo ^ t2.lo);
	}
}

static struct auth_u128 be(const uint8_t *p)
{
	struct auth_u128 v = { 0, 0 };

	for (int i = 0; i < 8; i++) {
		v.hi = (v.hi << 8) | p[i];
		v.lo = (v.lo << 8) | p[8 + i];
	}
	return v;
}

/* The hash is m1 H^n + ... + mn H with a final (len, seq) block. */
TEST(poly_hash_is_the_documented_polynomial)
{
	uint8_t hk[16], m[21], out[16], blk[16];
	struct auth_u128 h, m1, m2, l, acc, t;

	fill_random(hk, sizeof(hk));
	fill_random(m, sizeof(m));
	h = be(hk);
	memset(blk, 0, sizeof(blk));
	memcpy(blk, m + 16, 5);
	m1 = be(m);
	m2 = be(blk);
	l = u(21, 0x1122334455667788ull);
	/* ((m1 H + m2) H + l) H */
	auth_gf128_mul_portable(&acc, &m1, &h);
	acc.hi ^= m2.hi;
	acc.lo ^= m2.lo;
	auth_gf128_mul_portable(&t, &acc, &h);
	t.hi ^= l.hi;
	t.lo ^= l.lo;
	auth_gf128_mul_portable(&acc, &t, &h);
	auth_poly_hash(hk, 0x1122334455667788ull, m, sizeof(m), out);
	t = be(out);
	ASSERT_EQ(t.hi, acc.hi);
	ASSERT_EQ(t.lo, acc.lo);

	/* empty message: only the length block, (0, seq) * H */
	l = u(0, 7);
	auth_gf128_mul_portable(&acc, &l, &h);
	auth_poly_hash(hk, 7, NULL, 0, out);
	t = be(out);
	ASSERT_EQ(t.hi, acc.hi);
	ASSERT_EQ(t.lo, acc.lo);

	/* zero padding is not ambiguous: "ab" and "ab\0" hash differently */
	{
		uint8_t o1[16], o2[16], ab[3] = { 'a', 'b', 0 };

		auth_poly_hash(hk, 0, ab, 2, o1);
		auth_poly_hash(hk, 0, ab, 3, o2);
		ASSERT_NE(0, memcmp(o1, o2, 16));
	}
}

/* The PCLMUL and the portable paths give the same tags, at what speed. */
TEST(hash_paths_agree)
{
	size_t len = 1 << 20;
	uint8_t *m = malloc(len), hk[16], o1[16], o2[16];
	struct timespec t0, t1, t2;

	ASSERT_NE(NULL, m);
	fill_random(m, len);
	fill_random(hk, sizeof(hk));
	for (size_t l = 0; l < 100; l++) {
		auth_gf128_force_portable(false);
		auth_poly_hash(hk, l, m, l, o1);
		auth_gf128_force_portable(true);
		ASSERT_FALSE(auth_gf128_have_clmul());
		auth_poly_hash(hk, l, m, l, o2);
		ASSERT_EQ(0, memcmp(o1, o2, 16));
	}
	auth_gf128_force_portable(false);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	auth_poly_hash(hk, 1, m, len, o1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	auth_gf128_force_portable(true);
	auth_poly_hash(hk, 1, m, len, o2);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	auth_gf128_force_portable(false);
	ASSERT_EQ(0, memcmp(o1, o2, 16));
	TH_LOG("1 MiB: %s %.2f ms, portable %.2f ms (sanitized build)",
	       auth_gf128_have_clmul() ? "pclmul" : "default",
	       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
	       (t2.tv_sec - t1.tv_sec) * 1e3 + (t2.tv_nsec - t1.tv_nsec) / 1e6);
	free(m);
}

TEST(epsilon_per_tag)
{
	/* one block (the length block) for an empty message: 2^-128 */
	ASSERT_EQ(-128.0, auth_epsilon_log2(0));
	ASSERT_EQ(-127.0, auth_epsilon_log2(16));
	ASSERT_EQ(-127.0, auth_epsilon_log2(1));
	/* 48 + 1 MiB: 65539 + 1 blocks -> about 2^-112 */
	ASSERT_TRUE(fabs(auth_epsilon_log2(QKD_FRAME_MAX_LEN) -
			 (log2(65540.0) - 128.0)) < 1e-9);
	ASSERT_TRUE(auth_epsilon_log2(QKD_FRAME_MAX_LEN) < -111.9);
}

TEST(round_trip_both_directions)
{
	uint8_t key[KEYLEN], msg[300], tag[16];
	struct auth_ctx *ini, *res;
	struct auth_stats st;

	fill_random(key, sizeof(key));
	make_pair(key, sizeof(key), NULL, &ini, &res);
	for (uint64_t i = 0; i < 10; i++) {
		fill_random(msg, sizeof(msg));
		ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, i, msg, 1 + i * 29, tag));
		ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, i, msg, 1 + i * 29, tag));
		ASSERT_EQ(QKD_AUTH_OK, auth_seal(res, i, msg, i * 17, tag));
		ASSERT_EQ(QKD_AUTH_OK, auth_verify(ini, i, msg, i * 17, tag));
	}
	auth_get_stats(ini, &st);
	ASSERT_EQ(10, st.tags_made);
	ASSERT_EQ(10, st.tags_verified);
	ASSERT_EQ(10, st.next_send_seq);
	ASSERT_EQ(10, st.next_recv_seq);
	ASSERT_EQ(0, st.failures_total);
	ASSERT_EQ(320, st.bytes_consumed);
	ASSERT_FALSE(st.halted);
	/* seq must be the next one on the send side too */
	ASSERT_EQ(QKD_AUTH_E_SEQ, auth_seal(ini, 12, msg, 10, tag));
	ASSERT_EQ(QKD_AUTH_E_SEQ, auth_seal(ini, 9, msg, 10, tag));
	auth_free(ini);
	auth_free(res);
}

/*
 * SYNC (issue 14): positions are agreed on authenticated data only. The
 * initiator used 3 pads the responder never saw (lost with a
 * connection); its SYNC states (3, 0) with a tag at each. A stated
 * position moved forward, a flipped byte or a position beyond the bound
 * fail and move nothing (no pad skipped or used); the honest SYNC
 * re-aligns (3 pads skipped, 2 used); replayed, it is behind and checks
 * nothing. Then the responder's SYNC re-aligns the initiator and a tag
 * made by one verifies at the other.
 */
TEST(sync_tags_checked_at_the_stated_position_move_nothing_when_forged)
{
	uint8_t key[KEYLEN], msg[64], data[40], tags[2][QKD_AUTH_TAG_LEN];
	uint8_t tag[QKD_AUTH_TAG_LEN];
	struct auth_position p, q, forged;
	struct auth_ctx *ini, *res;
	struct auth_stats st;
	unsigned int checked;

	fill_random(key, sizeof(key));
	fill_random(msg, sizeof(msg));
	fill_random(data, sizeof(data));
	make_pair(key, sizeof(key), NULL, &ini, &res);
	for (uint64_t i = 0; i < 3; i++)
		ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, i, msg, sizeof(msg), tag));
	auth_get_position(ini, &p);
	ASSERT_EQ(3, p.pos[0]);
	ASSERT_EQ(0, p.pos[1]);
	forged = p;
	forged.pos[1] = 1;
	ASSERT_EQ(QKD_AUTH_E_STATE, auth_sync_seal(ini, &forged, data,
						   sizeof(data), tags));
	ASSERT_EQ(QKD_AUTH_OK, auth_sync_seal(ini, &p, data, sizeof(data),
					      tags));

	/* forged: a position one ahead, a byte flipped, beyond the bound */
	forged = p;
	forged.pos[0]++;
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_sync_verify(res, &forged, 80, data,
						   sizeof(data), tags,
						   &checked));
	data[5] ^= 1;
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_sync_verify(res, &p, 80, data,
						   sizeof(data), tags,
						   &checked));
	data[5] ^= 1;
	forged = p;
	forged.pos[1] = 81;
	ASSERT_EQ(QKD_AUTH_E_STATE, auth_sync_verify(res, &forged, 80, data,
						     sizeof(data), tags,
						     &checked));
	auth_get_position(res, &q);
	auth_get_stats(res, &st);
	ASSERT_EQ(0, q.pos[0]);
	ASSERT_EQ(0, q.pos[1]);
	ASSERT_EQ(0, st.bytes_skipped);
	ASSERT_EQ(0, st.bytes_consumed);
	ASSERT_EQ(3, st.failures_total);
	/* three in a row halt the context; qkdd resumes it (back-off) */
	ASSERT_TRUE(st.halted);
	auth_resume(res);

	/* honest */
	ASSERT_EQ(QKD_AUTH_OK, auth_sync_verify(res, &p, 80, data,
						sizeof(data), tags, &checked));
	ASSERT_EQ(3, checked);
	auth_get_position(res, &q);
	auth_get_stats(res, &st);
	ASSERT_EQ(4, q.pos[0]);
	ASSERT_EQ(1, q.pos[1]);
	ASSERT_EQ(3 * 16, st.bytes_skipped);
	ASSERT_EQ(2 * 16, st.bytes_consumed);
	/* replayed: behind in both pools, nothing to check, nothing moves */
	ASSERT_EQ(QKD_AUTH_E_SEQ, auth_sync_verify(res, &p, 80, data,
						   sizeof(data), tags,
						   &checked));
	ASSERT_EQ(0, checked);
	auth_get_position(res, &q);
	ASSERT_EQ(4, q.pos[0]);

	/* the responder's SYNC, at its positions: the ends are in step */
	ASSERT_EQ(QKD_AUTH_OK, auth_sync_seal(res, &q, data, sizeof(data),
					      tags));
	ASSERT_EQ(QKD_AUTH_OK, auth_sync_verify(ini, &q, 80, data,
						sizeof(data), tags, &checked));
	ASSERT_EQ(3, checked);
	auth_get_position(ini, &p);
	auth_get_position(res, &q);
	ASSERT_EQ(p.pos[0], q.pos[0]);
	ASSERT_EQ(p.pos[1], q.pos[1]);
	auth_session_start(ini);
	auth_session_start(res);
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 0, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 0, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(res, 0, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(ini, 0, msg, sizeof(msg), tag));
	auth_free(ini);
	auth_free(res);
}

/* Every single-bit flip of message and tag is rejected with E_TAG. */
TEST(every_bit_flip_rejected)
{
	uint8_t key[KEYLEN], msg[77], tag[16], m2[77], t2[16];
	struct auth_ctx *ini, *res;
	unsigned int rejected = 0;

	fill_random(key, sizeof(key));
	fill_random(msg, sizeof(msg));
	make_pair(key, sizeof(key), NULL, &ini, &res);
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 0, msg, sizeof(msg), tag));
	auth_free(res);
	for (size_t bit = 0; bit < 8 * (sizeof(msg) + sizeof(tag)); bit++) {
		memcpy(m2, msg, sizeof(msg));
		memcpy(t2, tag, sizeof(tag));
		if (bit < 8 * sizeof(msg))
			m2[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		else
			t2[(bit / 8) - sizeof(msg)] ^= (uint8_t)(1u << (bit % 8));
		res = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
		ASSERT_NE(NULL, res);
		ASSERT_EQ(QKD_AUTH_E_TAG,
			  auth_verify(res, 0, m2, sizeof(m2), t2));
		rejected++;
		auth_free(res);
	}
	ASSERT_EQ(8 * (77 + 16), rejected);
	/* the untouched message passes */
	res = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 0, msg, sizeof(msg), tag));
	auth_free(res);
	auth_free(ini);
}

TEST(truncation_extension_wrong_key_reflection)
{
	uint8_t key[KEYLEN], key2[KEYLEN], msg[64], ext[65], tag[16];
	struct auth_ctx *ini, *res, *other;

	fill_random(key, sizeof(key));
	fill_random(msg, sizeof(msg));
	memcpy(ext, msg, sizeof(msg));
	ext[64] = 0;
	make_pair(key, sizeof(key), NULL, &ini, &res);
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 0, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(res, 0, msg, 63, tag));
	auth_free(res);
	res = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(res, 0, ext, 65, tag));
	auth_free(res);
	res = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(res, 0, msg, 0, tag));
	auth_free(res);

	/* wrong key */
	memcpy(key2, key, sizeof(key));
	key2[5] ^= 1;
	other = auth_new(QKD_AUTH_RESPONDER, key2, sizeof(key2), NULL, NULL);
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(other, 0, msg, 64, tag));
	auth_free(other);
	/* same hash keys, different pads */
	memcpy(key2, key, sizeof(key));
	key2[QKD_AUTH_KEY_HDR_LEN] ^= 0x80;
	other = auth_new(QKD_AUTH_RESPONDER, key2, sizeof(key2), NULL, NULL);
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(other, 0, msg, 64, tag));
	auth_free(other);

	/* reflection: our own message sent back to us */
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(ini, 0, msg, 64, tag));

	/* the genuine receiver still accepts */
	res = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 0, msg, 64, tag));
	auth_free(res);
	auth_free(ini);
}

TEST(replay_and_reorder_rejected)
{
	uint8_t key[KEYLEN], m0[40], m1[40], t0[16], t1[16];
	struct auth_ctx *ini, *res;
	struct auth_stats st;

	fill_random(key, sizeof(key));
	fill_random(m0, sizeof(m0));
	fill_random(m1, sizeof(m1));
	make_pair(key, sizeof(key), NULL, &ini, &res);
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 0, m0, sizeof(m0), t0));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 1, m1, sizeof(m1), t1));
	/* reorder: message 1 first */
	ASSERT_EQ(QKD_AUTH_E_SEQ, auth_verify(res, 1, m1, sizeof(m1), t1));
	/* message 1's tag presented as message 0 */
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(res, 0, m1, sizeof(m1), t1));
	auth_free(res);
	res = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
	ASSERT_EQ(QKD_AUTH_E_SEQ, auth_verify(res, 1, m1, sizeof(m1), t1));
	/* a rejected out-of-order message consumes nothing */
	auth_get_stats(res, &st);
	ASSERT_EQ(0, st.bytes_consumed);
	ASSERT_EQ(0, st.next_recv_seq);
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 0, m0, sizeof(m0), t0));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 1, m1, sizeof(m1), t1));
	/* replay of both */
	ASSERT_EQ(QKD_AUTH_E_SEQ, auth_verify(res, 0, m0, sizeof(m0), t0));
	ASSERT_EQ(QKD_AUTH_E_SEQ, auth_verify(res, 1, m1, sizeof(m1), t1));
	/* and replay under the expected seq number fails the tag */
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(res, 2, m1, sizeof(m1), t1));
	auth_get_stats(res, &st);
	ASSERT_EQ(4, st.failures_total);
	ASSERT_EQ(2, st.tags_verified);
	auth_free(res);
	auth_free(ini);
}

TEST(reserve_accounting_exact)
{
	/* 32 hash-key bytes + 5 chunks + 7 bytes */
	uint8_t key[QKD_AUTH_KEY_HDR_LEN + 5 * 16 + 7], add[100], tag[16];
	uint8_t msg[8] = "reserve";
	struct auth_ctx *ini, *res;
	struct auth_stats st;

	fill_random(key, sizeof(key));
	fill_random(add, sizeof(add));
	make_pair(key, sizeof(key), NULL, &ini, &res);
	/* chunks 0,2,4 -> I2R; 1,3 -> R2I; the 7 trailing bytes are dropped */
	ASSERT_EQ(5 * 16, auth_reserve_level(ini));
	ASSERT_EQ(3, auth_reserve_tags(ini, true));
	ASSERT_EQ(2, auth_reserve_tags(ini, false));
	ASSERT_EQ(2, auth_reserve_tags(res, true));
	ASSERT_EQ(3, auth_reserve_tags(res, false));
	auth_get_stats(ini, &st);
	ASSERT_EQ(48, st.reserve_send);
	ASSERT_EQ(32, st.reserve_recv);
	ASSERT_EQ(0, st.reserve_pending);
	ASSERT_EQ(80, st.bootstrap_left);
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_check(ini, 2));
	ASSERT_EQ(QKD_AUTH_E_RESERVE, auth_reserve_check(ini, 3));

	/* 9 bytes stay pending, 7 more make chunk 5 (-> R2I) */
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(ini, add, 9));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(res, add, 9));
	ASSERT_EQ(5 * 16 + 9, auth_reserve_level(ini));
	ASSERT_EQ(2, auth_reserve_tags(ini, false));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(ini, add + 9, 7));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(res, add + 9, 7));
	ASSERT_EQ(6 * 16, auth_reserve_level(ini));
	ASSERT_EQ(3, auth_reserve_tags(ini, false));

	/* spend the initiator's three send tags, the fourth is refused */
	for (uint64_t i = 0; i < 3; i++) {
		ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, i, msg, sizeof(msg), tag));
		ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, i, msg, sizeof(msg), tag));
		ASSERT_EQ(6 * 16 - 16 * (i + 1), auth_reserve_level(ini));
		ASSERT_EQ(6 * 16 - 16 * (i + 1), auth_reserve_level(res));
	}
	ASSERT_EQ(QKD_AUTH_E_RESERVE, auth_seal(ini, 3, msg, sizeof(msg), tag));
	auth_get_stats(ini, &st);
	ASSERT_EQ(3, st.next_send_seq);
	ASSERT_EQ(48, st.bytes_consumed);
	ASSERT_EQ(0, st.reserve_send);
	ASSERT_EQ(48, st.reserve_recv);
	ASSERT_FALSE(st.halted);

	/* replenish with 91 bytes: chunks 6..10 (6,8,10 -> I2R), 11 pending */
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(ini, add + 16, 84));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(res, add + 16, 84));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(ini, add, 7));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(res, add, 7));
	auth_get_stats(ini, &st);
	ASSERT_EQ(48, st.reserve_send);
	ASSERT_EQ(48 + 32, st.reserve_recv);
	ASSERT_EQ(11, st.reserve_pending);
	ASSERT_EQ(107, st.bytes_added);
	/* 3 of the initiator's and 0 of its receive bootstrap chunks used */
	ASSERT_EQ(32, st.bootstrap_left);
	ASSERT_EQ(48 + 80 + 11, auth_reserve_level(ini));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 3, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 3, msg, sizeof(msg), tag));
	/* the receiver refuses when its pool is empty */
	for (uint64_t i = 0; i < 5; i++) {
		ASSERT_EQ(QKD_AUTH_OK, auth_seal(res, i, msg, sizeof(msg), tag));
		ASSERT_EQ(QKD_AUTH_OK, auth_verify(ini, i, msg, sizeof(msg), tag));
	}
	ASSERT_EQ(QKD_AUTH_E_RESERVE, auth_seal(res, 5, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_E_RESERVE, auth_verify(ini, 5, msg, sizeof(msg), tag));
	auth_get_stats(ini, &st);
	ASSERT_EQ(0, st.failures_total);
	ASSERT_EQ(16 * 4 + 16 * 5, st.bytes_consumed);
	auth_free(ini);
	auth_free(res);
}

TEST(reserve_cap_and_bad_keys)
{
	struct auth_params p = { .reserve_cap = 256 };
	uint8_t key[QKD_AUTH_KEY_HDR_LEN + 128], more[200];
	struct auth_ctx *a;
	int err = 0;

	fill_random(key, sizeof(key));
	fill_random(more, sizeof(more));
	a = auth_new(QKD_AUTH_INITIATOR, key, sizeof(key), &p, &err);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(QKD_AUTH_E_FULL, auth_reserve_add(a, more, 129));
	ASSERT_EQ(128, auth_reserve_level(a));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(a, more, 128));
	ASSERT_EQ(256, auth_reserve_level(a));
	ASSERT_EQ(QKD_AUTH_E_FULL, auth_reserve_add(a, more, 1));
	auth_free(a);

	/* too short, zero hash key */
	ASSERT_EQ(NULL, auth_new(QKD_AUTH_INITIATOR, key, QKD_AUTH_KEY_MIN - 1,
				 NULL, &err));
	ASSERT_EQ(QKD_AUTH_E_KEY, err);
	memset(key + 16, 0, 16);
	ASSERT_EQ(NULL, auth_new(QKD_AUTH_INITIATOR, key, sizeof(key), NULL,
				 &err));
	ASSERT_EQ(QKD_AUTH_E_KEY, err);
	ASSERT_EQ(NULL, auth_new((enum auth_role)7, key, sizeof(key), NULL,
				 &err));
	ASSERT_EQ(QKD_AUTH_E_INVAL, err);
}

TEST(failures_counted_and_link_halted)
{
	struct auth_params p = { .max_consecutive_failures = 3,
				 .max_total_failures = 5 };
	uint8_t key[KEYLEN], msg[20], tag[16], bad[16];
	struct auth_ctx *ini, *res;
	struct auth_stats st;
	uint64_t s = 0;

	fill_random(key, sizeof(key));
	fill_random(msg, sizeof(msg));
	make_pair(key, sizeof(key), &p, &ini, &res);
	/* two failures, a success resets the consecutive count */
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, s, msg, sizeof(msg), tag));
		memcpy(bad, tag, 16);
		bad[15] ^= 1;
		ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(res, s, msg, sizeof(msg), bad));
		s++;
	}
	auth_get_stats(res, &st);
	ASSERT_EQ(2, st.failures_consecutive);
	ASSERT_EQ(2, st.failures_total);
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, s, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, s, msg, sizeof(msg), tag));
	s++;
	auth_get_stats(res, &st);
	ASSERT_EQ(0, st.failures_consecutive);
	ASSERT_EQ(2, st.failures_total);
	ASSERT_FALSE(auth_halted(res));
	/* three in a row halt */
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, s, msg, sizeof(msg), tag));
		ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(res, s, msg, 19, tag));
		s++;
	}
	ASSERT_TRUE(auth_halted(res));
	auth_get_stats(res, &st);
	ASSERT_EQ(5, st.failures_total);
	ASSERT_EQ(3, st.failures_consecutive);
	ASSERT_TRUE(st.halted);
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, s, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_E_HALTED, auth_verify(res, s, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_E_HALTED, auth_seal(res, 0, msg, sizeof(msg), tag));
	auth_free(ini);
	auth_free(res);

	/* total limit with successes in between; auth_note_failure counts */
	make_pair(key, sizeof(key), &p, &ini, &res);
	s = 0;
	for (int i = 0; i < 4; i++) {
		auth_note_failure(res);
		ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, s, msg, sizeof(msg), tag));
		ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, s, msg, sizeof(msg), tag));
		s++;
	}
	ASSERT_FALSE(auth_halted(res));
	auth_note_failure(res);
	ASSERT_TRUE(auth_halted(res));
	auth_free(ini);
	auth_free(res);
}

TEST(rekey_hash_in_lockstep)
{
	uint8_t key[KEYLEN], msg[33], t1[16], t2[16];
	struct auth_ctx *ini, *res, *ini2, *res2;

	fill_random(key, sizeof(key));
	fill_random(msg, sizeof(msg));
	make_pair(key, sizeof(key), NULL, &ini, &res);
	make_pair(key, sizeof(key), NULL, &ini2, &res2);
	ASSERT_EQ(QKD_AUTH_OK, auth_rekey_hash(ini));
	ASSERT_EQ(QKD_AUTH_OK, auth_rekey_hash(res));
	ASSERT_EQ(64 * 16 - 32, auth_reserve_level(ini));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 0, msg, sizeof(msg), t1));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 0, msg, sizeof(msg), t1));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(res, 0, msg, sizeof(msg), t1));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(ini, 0, msg, sizeof(msg), t1));
	/* a peer that did not rekey rejects */
	ASSERT_EQ(QKD_AUTH_OK, auth_rekey_hash(ini2));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini2, 0, msg, sizeof(msg), t2));
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(res2, 0, msg, sizeof(msg), t2));
	auth_free(ini);
	auth_free(res);
	auth_free(ini2);
	auth_free(res2);
}

TEST(retire_bootstrap_ends_the_window)
{
	uint8_t key[QKD_AUTH_KEY_HDR_LEN + 8 * 16], qkd[160], msg[16], tag[16];
	struct auth_ctx *ini, *res, *stale;
	struct auth_stats st;

	fill_random(key, sizeof(key));
	fill_random(qkd, sizeof(qkd));
	fill_random(msg, sizeof(msg));
	make_pair(key, sizeof(key), NULL, &ini, &res);
	stale = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
	ASSERT_NE(NULL, stale);
	/* nothing but bootstrap key yet: refused, nothing changes */
	ASSERT_EQ(QKD_AUTH_E_RESERVE, auth_retire_bootstrap(ini));
	ASSERT_EQ(128, auth_reserve_level(ini));
	/* one message each way on bootstrap pads */
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 0, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 0, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(stale, 0, msg, sizeof(msg), tag));
	/* the first QKD output arrives at both ends */
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(ini, qkd, sizeof(qkd)));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(res, qkd, sizeof(qkd)));
	ASSERT_EQ(QKD_AUTH_OK, auth_reserve_add(stale, qkd, sizeof(qkd)));
	auth_get_stats(ini, &st);
	ASSERT_EQ(128 - 16, st.bootstrap_left);
	ASSERT_EQ(QKD_AUTH_OK, auth_retire_bootstrap(ini));
	ASSERT_EQ(QKD_AUTH_OK, auth_retire_bootstrap(res));
	auth_get_stats(ini, &st);
	ASSERT_EQ(0, st.bootstrap_left);
	ASSERT_EQ(112, st.bytes_discarded);
	/* only QKD key is left, minus the two new hash keys */
	ASSERT_EQ(160 - 32, auth_reserve_level(ini));
	ASSERT_EQ(160 - 32, auth_reserve_level(res));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 1, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 1, msg, sizeof(msg), tag));
	/* a peer still on bootstrap keys rejects */
	ASSERT_EQ(QKD_AUTH_E_TAG, auth_verify(stale, 1, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(res, 0, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(ini, 0, msg, sizeof(msg), tag));
	auth_free(ini);
	auth_free(res);
	auth_free(stale);
}

/* ---- PSK file ----------------------------------------------------------- */

FIXTURE(tmpdir) {
	char dir[64];
	char path[128];
};

FIXTURE_SETUP(tmpdir)
{
	snprintf(self->dir, sizeof(self->dir), "/tmp/qkd-test-auth-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	snprintf(self->path, sizeof(self->path), "%s/psk", self->dir);
}

FIXTURE_TEARDOWN(tmpdir)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", self->dir);
}

static int write_file(const char *path, const uint8_t *p, size_t n,
		      mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		return -1;
	if (write(fd, p, n) != (ssize_t)n || fchmod(fd, mode)) {
		close(fd);
		return -1;
	}
	return close(fd);
}

TEST_F(tmpdir, psk_good_file_both_ends_agree)
{
	uint8_t key[2048], msg[50], tag[16], *rd = NULL;
	struct auth_ctx *ini, *res;
	char err[256] = "";
	size_t len = 0;
	int e = 1;

	fill_random(key, sizeof(key));
	fill_random(msg, sizeof(msg));
	ASSERT_EQ(0, write_file(self->path, key, sizeof(key), 0600));
	ASSERT_EQ(QKD_AUTH_OK, auth_psk_read(self->path, 0, &rd, &len, err,
					     sizeof(err)));
	ASSERT_EQ(sizeof(key), len);
	ASSERT_EQ(0, memcmp(rd, key, len));
	auth_key_free(rd, len);

	ini = auth_new_from_psk(QKD_AUTH_INITIATOR, self->path, 0, NULL, &e,
				err, sizeof(err));
	ASSERT_NE(NULL, ini);
	ASSERT_EQ(0, e);
	res = auth_new_from_psk(QKD_AUTH_RESPONDER, self->path, 0, NULL, &e,
				err, sizeof(err));
	ASSERT_NE(NULL, res);
	ASSERT_EQ(sizeof(key) - 32, auth_reserve_level(ini));
	ASSERT_EQ((sizeof(key) - 32) / 32, auth_reserve_tags(ini, true));
	ASSERT_EQ(QKD_AUTH_OK, auth_seal(ini, 0, msg, sizeof(msg), tag));
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(res, 0, msg, sizeof(msg), tag));
	auth_free(ini);
	auth_free(res);
	/* group-readable is allowed */
	ASSERT_EQ(0, chmod(self->path, 0640));
	ASSERT_EQ(QKD_AUTH_OK, auth_psk_read(self->path, 0, &rd, &len, err,
					     sizeof(err)));
	auth_key_free(rd, len);
}

TEST_F(tmpdir, psk_rejects_world_access)
{
	static const mode_t bad[] = { 0644, 0604, 0602, 0601, 0620, 0666 };
	uint8_t key[1024], *rd = (uint8_t *)1;
	char err[256];
	size_t len = 99;

	fill_random(key, sizeof(key));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ASSERT_EQ(0, write_file(self->path, key, sizeof(key), bad[i]));
		err[0] = '\0';
		ASSERT_EQ(QKD_AUTH_E_PSK_PERM,
			  auth_psk_read(self->path, 0, &rd, &len, err,
					sizeof(err)));
		ASSERT_EQ(NULL, rd);
		ASSERT_EQ(0, len);
		ASSERT_NE(NULL, strstr(err, "chmod 600"));
	}
}

TEST_F(tmpdir, psk_rejects_wrong_size)
{
	static const size_t bad[] = { 0, 32, 1000, 1023, 1025, 1040,
				      QKD_AUTH_PSK_MAX + 32 };
	uint8_t *key = malloc(QKD_AUTH_PSK_MAX + 32), *rd;
	char err[256];
	size_t len;
	int e = 0;

	ASSERT_NE(NULL, key);
	fill_random(key, QKD_AUTH_PSK_MAX + 32);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		ASSERT_EQ(0, write_file(self->path, key, bad[i], 0600));
		ASSERT_EQ(QKD_AUTH_E_PSK_SIZE,
			  auth_psk_read(self->path, 0, &rd, &len, err,
					sizeof(err)));
		ASSERT_NE(NULL, strstr(err, "must be 1024..1048576 bytes"));
	}
	ASSERT_EQ(NULL, auth_new_from_psk(QKD_AUTH_INITIATOR, self->path, 0,
					  NULL, &e, err, sizeof(err)));
	ASSERT_EQ(QKD_AUTH_E_PSK_SIZE, e);
	/* the largest allowed size loads */
	ASSERT_EQ(0, write_file(self->path, key, QKD_AUTH_PSK_MAX, 0600));
	ASSERT_EQ(QKD_AUTH_OK, auth_psk_read(self->path, 0, &rd, &len, err,
					     sizeof(err)));
	ASSERT_EQ(QKD_AUTH_PSK_MAX, len);
	auth_key_free(rd, len);
	free(key);
}

TEST_F(tmpdir, psk_rejects_missing_symlink_dir_zero)
{
	uint8_t key[1024], *rd;
	char err[256], link[160];
	size_t len;

	ASSERT_EQ(QKD_AUTH_E_PSK_IO, auth_psk_read(self->path, 0, &rd, &len,
						   err, sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "No such file"));
	fill_random(key, sizeof(key));
	ASSERT_EQ(0, write_file(self->path, key, sizeof(key), 0600));
	snprintf(link, sizeof(link), "%s/link", self->dir);
	ASSERT_EQ(0, symlink(self->path, link));
	ASSERT_EQ(QKD_AUTH_E_PSK_IO, auth_psk_read(link, 0, &rd, &len, err,
						   sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "symbolic link"));
	ASSERT_EQ(QKD_AUTH_E_PSK_IO, auth_psk_read(self->dir, 0, &rd, &len,
						   err, sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "not a regular file"));
	memset(key, 0, sizeof(key));
	ASSERT_EQ(0, write_file(self->path, key, sizeof(key), 0600));
	ASSERT_EQ(QKD_AUTH_E_KEY, auth_psk_read(self->path, 0, &rd, &len, err,
						sizeof(err)));
	ASSERT_EQ(QKD_AUTH_E_INVAL, auth_psk_read(self->path, 0x80, &rd,
						  &len, err, sizeof(err)));
}

TEST_F(tmpdir, psk_consume_wipes_and_removes)
{
	uint8_t key[1024], *rd;
	struct stat st;
	char err[256];
	size_t len;
	int fd;

	fill_random(key, sizeof(key));
	ASSERT_EQ(0, write_file(self->path, key, sizeof(key), 0600));
	/* keep a descriptor: the wiped contents must be zeros */
	fd = open(self->path, O_RDONLY);
	ASSERT_GE(fd, 0);
	ASSERT_EQ(QKD_AUTH_OK, auth_psk_read(self->path, QKD_AUTH_PSK_CONSUME,
					     &rd, &len, err, sizeof(err)));
	ASSERT_EQ(sizeof(key), len);
	ASSERT_EQ(0, memcmp(rd, key, len));
	auth_key_free(rd, len);
	ASSERT_EQ(-1, stat(self->path, &st));
	ASSERT_EQ(ENOENT, errno);
	{
		uint8_t back[1024], zero[1024] = { 0 };

		ASSERT_EQ((ssize_t)sizeof(back), pread(fd, back, sizeof(back), 0));
		ASSERT_EQ(0, memcmp(back, zero, sizeof(back)));
	}
	close(fd);
	ASSERT_EQ(QKD_AUTH_E_PSK_IO, auth_psk_read(self->path, 0, &rd, &len,
						   err, sizeof(err)));
}

/* ---- X.509 bootstrap ---------------------------------------------------- */

static int add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *val)
{
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, v3, nid, val);
	int r;

	if (!ex)
		return -1;
	r = X509_add_ext(x, ex, -1) == 1 ? 0 : -1;
	X509_EXTENSION_free(ex);
	return r;
}

/* Issue a certificate for key; issuer NULL means self-signed (a CA). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer,
		       EVP_PKEY *issuer_key, long serial)
{
	X509 *x = X509_new();
	X509V3_CTX v3;
	char san[128];
	int bad = 0;

	if (!x)
		return NULL;
	bad |= X509_set_version(x, 2) != 1;
	bad |= ASN1_INTEGER_set(X509_get_serialNumber(x), serial) != 1;
	bad |= !X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	bad |= !X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	bad |= X509_set_pubkey(x, key) != 1;
	bad |= X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
					  MBSTRING_ASC,
					  (const unsigned char *)cn, -1, -1,
					  0) != 1;
	bad |= X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) :
				    X509_get_subject_name(x)) != 1;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	if (!issuer) {
		bad |= add_ext(x, &v3, NID_basic_constraints, "critical,CA:TRUE");
		bad |= add_ext(x, &v3, NID_key_usage,
			       "critical,keyCertSign,cRLSign");
	} else {
		snprintf(san, sizeof(san), "DNS:%s", cn);
		bad |= add_ext(x, &v3, NID_basic_constraints, "critical,CA:FALSE");
		bad |= add_ext(x, &v3, NID_key_usage,
			       "critical,digitalSignature");
		bad |= add_ext(x, &v3, NID_ext_key_usage,
			       "serverAuth,clientAuth");
		bad |= add_ext(x, &v3, NID_subject_alt_name, san);
	}
	bad |= X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0;
	if (bad) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static int write_pem(const char *dir, const char *name, X509 *x,
		     EVP_PKEY *k)
{
	char path[256];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s.%s", dir, name, x ? "crt" : "key");
	f = fopen(path, "w");
	if (!f)
		return -1;
	ok = x ? PEM_write_X509(f, x) :
		 PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	return fclose(f) == 0 && ok == 1 ? 0 : -1;
}

/* ca1 issues alice, bob; ca2 issues mallory (also named "bob.example"). */
static int make_pki(const char *dir)
{
	EVP_PKEY *ca1k = EVP_EC_gen("P-256"), *ca2k = EVP_EC_gen("P-256");
	EVP_PKEY *ak = EVP_EC_gen("P-256"), *bk = EVP_EC_gen("P-256");
	EVP_PKEY *mk = EVP_EC_gen("P-256");
	X509 *ca1 = NULL, *ca2 = NULL, *a = NULL, *b = NULL, *m = NULL;
	int r = -1;

	if (!ca1k || !ca2k || !ak || !bk || !mk)
		goto out;
	ca1 = make_cert(ca1k, "qkd test CA 1", NULL, NULL, 1);
	ca2 = make_cert(ca2k, "qkd test CA 2", NULL, NULL, 1);
	if (!ca1 || !ca2)
		goto out;
	a = make_cert(ak, "alice.example", ca1, ca1k, 2);
	b = make_cert(bk, "bob.example", ca1, ca1k, 3);
	m = make_cert(mk, "bob.example", ca2, ca2k, 2);
	if (!a || !b || !m)
		goto out;
	if (write_pem(dir, "ca1", ca1, NULL) || write_pem(dir, "ca2", ca2, NULL) ||
	    write_pem(dir, "alice", a, NULL) || write_pem(dir, "alice", NULL, ak) ||
	    write_pem(dir, "bob", b, NULL) || write_pem(dir, "bob", NULL, bk) ||
	    write_pem(dir, "mallory", m, NULL) ||
	    write_pem(dir, "mallory", NULL, mk))
		goto out;
	r = 0;
out:
	X509_free(ca1);
	X509_free(ca2);
	X509_free(a);
	X509_free(b);
	X509_free(m);
	EVP_PKEY_free(ca1k);
	EVP_PKEY_free(ca2k);
	EVP_PKEY_free(ak);
	EVP_PKEY_free(bk);
	EVP_PKEY_free(mk);
	return r;
}

#define BOOT_LEN QKD_AUTH_BOOTSTRAP_DEFAULT

struct side {
	int fd;
	enum auth_role role;
	char cert[256], key[256], ca[256];
	const char *peer_name;
	uint8_t out[BOOT_LEN];
	int rc;
	int frame_rc;		/* exchange of frames after the bootstrap */
	char err[512];
};

static void side_init(struct side *s, const char *dir, int fd,
		      enum auth_role role, const char *who, const char *ca)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->role = role;
	snprintf(s->cert, sizeof(s->cert), "%s/%s.crt", dir, who);
	snprintf(s->key, sizeof(s->key), "%s/%s.key", dir, who);
	snprintf(s->ca, sizeof(s->ca), "%s/%s.crt", dir, ca);
	s->frame_rc = 1;
}

/* After the bootstrap, one sealed frame each way on the same stream. */
static int exchange(struct side *s)
{
	uint8_t buf[256], payload[40];
	struct frame_hdr h = { .type = QKD_MSG_SIFT_BASES, .round_id = 1 };
	struct auth_ctx *a;
	struct frame f;
	size_t n;
	int r;

	a = auth_new(s->role, s->out, sizeof(s->out), NULL, &r);
	if (!a)
		return r;
	memset(payload, s->role == QKD_AUTH_INITIATOR ? 0xa1 : 0xb2,
	       sizeof(payload));
	if (s->role == QKD_AUTH_INITIATOR) {
		r = frame_send_sealed(s->fd, a, &h, payload, sizeof(payload),
				      buf, sizeof(buf));
		if (!r)
			r = frame_recv_open(s->fd, a, buf, sizeof(buf), &n, &f);
		if (!r && (f.hdr.payload_len != 40 || f.payload[0] != 0xb2))
			r = -1;
	} else {
		r = frame_recv_open(s->fd, a, buf, sizeof(buf), &n, &f);
		if (!r && (f.hdr.payload_len != 40 || f.payload[0] != 0xa1))
			r = -1;
		if (!r)
			r = frame_send_sealed(s->fd, a, &h, payload,
					      sizeof(payload), buf,
					      sizeof(buf));
	}
	auth_free(a);
	return r;
}

static void *side_run(void *arg)
{
	struct side *s = arg;
	struct auth_x509_cfg cfg = {
		.cert_file = s->cert, .key_file = s->key, .ca_file = s->ca,
		.peer_name = s->peer_name,
	};

	s->rc = auth_x509_bootstrap(s->fd, s->role, &cfg, s->out,
				    sizeof(s->out), s->err, sizeof(s->err));
	if (s->rc == 0)
		s->frame_rc = exchange(s);
	else
		shutdown(s->fd, SHUT_RDWR);	/* unblock the peer */
	return NULL;
}

/* Run initiator (in this thread) and responder (in another). */
static int run_pair(struct side *ini, struct side *res)
{
	pthread_t t;

	if (pthread_create(&t, NULL, side_run, res))
		return -1;
	side_run(ini);
	return pthread_join(t, NULL);
}

FIXTURE(pki) {
	char dir[64];
	int sv[2];
	struct side ini, res;
};

FIXTURE_SETUP(pki)
{
	struct timeval tv = { .tv_sec = 10 };

	signal(SIGPIPE, SIG_IGN);
	snprintf(self->dir, sizeof(self->dir), "/tmp/qkd-test-pki-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	ASSERT_EQ(0, make_pki(self->dir));
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, self->sv));
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, setsockopt(self->sv[i], SOL_SOCKET, SO_RCVTIMEO,
					&tv, sizeof(tv)));
		ASSERT_EQ(0, setsockopt(self->sv[i], SOL_SOCKET, SO_SNDTIMEO,
					&tv, sizeof(tv)));
	}
}

FIXTURE_TEARDOWN(pki)
{
	char cmd[200];

	close(self->sv[0]);
	close(self->sv[1]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
	if (system(cmd))
		fprintf(stderr, "cannot remove %s\n", self->dir);
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

TEST_F(pki, x509_both_ends_derive_same_reserve)
{
	static uint8_t first[BOOT_LEN];

	side_init(&self->ini, self->dir, self->sv[0], QKD_AUTH_INITIATOR,
		  "alice", "ca1");
	side_init(&self->res, self->dir, self->sv[1], QKD_AUTH_RESPONDER,
		  "bob", "ca1");
	self->ini.peer_name = "bob.example";
	self->res.peer_name = "alice.example";
	ASSERT_EQ(0, run_pair(&self->ini, &self->res));
	if (self->ini.rc || self->res.rc)
		TH_LOG("initiator: %s / responder: %s", self->ini.err,
		       self->res.err);
	ASSERT_EQ(QKD_AUTH_OK, self->ini.rc);
	ASSERT_EQ(QKD_AUTH_OK, self->res.rc);
	ASSERT_EQ(0, memcmp(self->ini.out, self->res.out, BOOT_LEN));
	ASSERT_FALSE(is_zero(self->ini.out, BOOT_LEN));
	/* the stream is clean after TLS: sealed frames pass both ways */
	ASSERT_EQ(0, self->ini.frame_rc);
	ASSERT_EQ(0, self->res.frame_rc);
	memcpy(first, self->ini.out, BOOT_LEN);

	/* a second bootstrap gives fresh, different key material */
	close(self->sv[0]);
	close(self->sv[1]);
	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, self->sv));
	side_init(&self->ini, self->dir, self->sv[0], QKD_AUTH_INITIATOR,
		  "alice", "ca1");
	side_init(&self->res, self->dir, self->sv[1], QKD_AUTH_RESPONDER,
		  "bob", "ca1");
	ASSERT_EQ(0, run_pair(&self->ini, &self->res));
	ASSERT_EQ(QKD_AUTH_OK, self->ini.rc);
	ASSERT_EQ(QKD_AUTH_OK, self->res.rc);
	ASSERT_EQ(0, memcmp(self->ini.out, self->res.out, BOOT_LEN));
	ASSERT_NE(0, memcmp(first, self->ini.out, BOOT_LEN));
}

/* A connected pair of TCP sockets over 127.0.0.1. */
static int tcp_pair(int sv[2])
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int l, one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0)
		return -1;
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) ||
	    listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sin, &len))
		goto err;
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sv[0] < 0)
		goto err;
	if (connect(sv[0], (struct sockaddr *)&sin, sizeof(sin))) {
		close(sv[0]);
		goto err;
	}
	sv[1] = accept(l, NULL, NULL);
	close(l);
	if (sv[1] < 0) {
		close(sv[0]);
		return -1;
	}
	setsockopt(sv[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sv[1], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
err:
	close(l);
	return -1;
}

TEST_F(pki, x509_over_loopback_tcp)
{
	struct timeval tv = { .tv_sec = 10 };
	int sv[2];

	ASSERT_EQ(0, tcp_pair(sv));
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, setsockopt(sv[i], SOL_SOCKET, SO_RCVTIMEO, &tv,
					sizeof(tv)));
	side_init(&self->ini, self->dir, sv[0], QKD_AUTH_INITIATOR, "alice",
		  "ca1");
	side_init(&self->res, self->dir, sv[1], QKD_AUTH_RESPONDER, "bob",
		  "ca1");
	self->ini.peer_name = "bob.example";
	self->res.peer_name = "alice.example";
	ASSERT_EQ(0, run_pair(&self->ini, &self->res));
	if (self->ini.rc || self->res.rc)
		TH_LOG("initiator: %s / responder: %s", self->ini.err,
		       self->res.err);
	ASSERT_EQ(QKD_AUTH_OK, self->ini.rc);
	ASSERT_EQ(QKD_AUTH_OK, self->res.rc);
	ASSERT_EQ(0, memcmp(self->ini.out, self->res.out, BOOT_LEN));
	ASSERT_FALSE(is_zero(self->ini.out, BOOT_LEN));
	ASSERT_EQ(0, self->ini.frame_rc);
	ASSERT_EQ(0, self->res.frame_rc);
	close(sv[0]);
	close(sv[1]);
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* Signals without SA_RESTART interrupt the handshake's reads: retried. */
TEST_F(pki, x509_survives_eintr)
{
	struct itimerval it = { { 0, 200 }, { 0, 200 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	for (int round = 0; round < 5; round++) {
		int sv[2];

		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		side_init(&self->ini, self->dir, sv[0], QKD_AUTH_INITIATOR,
			  "alice", "ca1");
		side_init(&self->res, self->dir, sv[1], QKD_AUTH_RESPONDER,
			  "bob", "ca1");
		ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
		ASSERT_EQ(0, run_pair(&self->ini, &self->res));
		setitimer(ITIMER_REAL, &off, NULL);
		if (self->ini.rc || self->res.rc)
			TH_LOG("initiator: %s / responder: %s", self->ini.err,
			       self->res.err);
		ASSERT_EQ(QKD_AUTH_OK, self->ini.rc);
		ASSERT_EQ(QKD_AUTH_OK, self->res.rc);
		ASSERT_EQ(0, self->ini.frame_rc);
		ASSERT_EQ(0, memcmp(self->ini.out, self->res.out, BOOT_LEN));
		close(sv[0]);
		close(sv[1]);
	}
	TH_LOG("%d signals during 5 bootstraps", (int)alarms);
	ASSERT_GT(alarms, 0);
}

TEST_F(pki, x509_client_cert_from_other_ca_rejected)
{
	/* mallory trusts the real CA but her cert comes from ca2 */
	side_init(&self->ini, self->dir, self->sv[0], QKD_AUTH_INITIATOR,
		  "mallory", "ca1");
	side_init(&self->res, self->dir, self->sv[1], QKD_AUTH_RESPONDER,
		  "bob", "ca1");
	ASSERT_EQ(0, run_pair(&self->ini, &self->res));
	TH_LOG("initiator: %s / responder: %s", self->ini.err, self->res.err);
	ASSERT_EQ(QKD_AUTH_E_X509_PEER, self->res.rc);
	ASSERT_NE(NULL, strstr(self->res.err, "peer certificate rejected"));
	/* the initiator learns it through the missing key confirmation */
	ASSERT_EQ(QKD_AUTH_E_X509_PEER, self->ini.rc);
	ASSERT_NE(NULL, strstr(self->ini.err, "key confirmation"));
	ASSERT_TRUE(is_zero(self->ini.out, BOOT_LEN));
	ASSERT_TRUE(is_zero(self->res.out, BOOT_LEN));
}

TEST_F(pki, x509_server_cert_from_other_ca_rejected)
{
	side_init(&self->ini, self->dir, self->sv[0], QKD_AUTH_INITIATOR,
		  "alice", "ca1");
	side_init(&self->res, self->dir, self->sv[1], QKD_AUTH_RESPONDER,
		  "mallory", "ca1");
	self->ini.peer_name = "bob.example";
	ASSERT_EQ(0, run_pair(&self->ini, &self->res));
	TH_LOG("initiator: %s / responder: %s", self->ini.err, self->res.err);
	ASSERT_EQ(QKD_AUTH_E_X509_PEER, self->ini.rc);
	ASSERT_NE(NULL, strstr(self->ini.err, "peer certificate rejected"));
	ASSERT_EQ(QKD_AUTH_E_X509_PEER, self->res.rc);
	ASSERT_TRUE(is_zero(self->ini.out, BOOT_LEN));
	ASSERT_TRUE(is_zero(self->res.out, BOOT_LEN));
}

TEST_F(pki, x509_wrong_peer_name_rejected)
{
	side_init(&self->ini, self->dir, self->sv[0], QKD_AUTH_INITIATOR,
		  "alice", "ca1");
	side_init(&self->res, self->dir, self->sv[1], QKD_AUTH_RESPONDER,
		  "bob", "ca1");
	self->ini.peer_name = "carol.example";
	ASSERT_EQ(0, run_pair(&self->ini, &self->res));
	ASSERT_EQ(QKD_AUTH_E_X509_PEER, self->ini.rc);
	ASSERT_NE(NULL, strstr(self->ini.err, "hostname mismatch"));
	ASSERT_NE(QKD_AUTH_OK, self->res.rc);
}

TEST_F(pki, x509_config_errors)
{
	struct auth_x509_cfg cfg;
	char cert[256], key[256], ca[256], err[512];
	uint8_t out[BOOT_LEN];

	snprintf(cert, sizeof(cert), "%s/alice.crt", self->dir);
	snprintf(key, sizeof(key), "%s/bob.key", self->dir);
	snprintf(ca, sizeof(ca), "%s/ca1.crt", self->dir);
	cfg = (struct auth_x509_cfg){ cert, key, ca, NULL };
	ASSERT_EQ(QKD_AUTH_E_X509_CONFIG,
		  auth_x509_bootstrap(self->sv[0], QKD_AUTH_INITIATOR, &cfg,
				      out, sizeof(out), err, sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "key values mismatch"));
	snprintf(key, sizeof(key), "%s/alice.key", self->dir);
	snprintf(ca, sizeof(ca), "%s/nonexistent.crt", self->dir);
	ASSERT_EQ(QKD_AUTH_E_X509_CONFIG,
		  auth_x509_bootstrap(self->sv[0], QKD_AUTH_INITIATOR, &cfg,
				      out, sizeof(out), err, sizeof(err)));
	ASSERT_NE(NULL, strstr(err, "CA file"));
	ASSERT_EQ(QKD_AUTH_E_INVAL,
		  auth_x509_bootstrap(self->sv[0], QKD_AUTH_INITIATOR, &cfg,
				      out, QKD_AUTH_KEY_MIN - 1, err,
				      sizeof(err)));
}

TEST_HARNESS_MAIN
