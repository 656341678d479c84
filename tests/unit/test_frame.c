// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for userspace/protocol/frame.c: wire layout, strict parsing,
 * authenticated framing (every bit flip, truncation, extension, replay,
 * reorder, wrong key) and the stream helpers (short reads/writes, EINTR,
 * EOF, truncation, timeouts, oversized frames).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "kselftest_harness.h"

#include "qkd/auth.h"
#include "qkd/frame.h"

#define KEYLEN (QKD_AUTH_KEY_HDR_LEN + 256 * 16)

static uint8_t g_key[KEYLEN];

static void fill_random(uint8_t *p, size_t n)
{
	if (RAND_bytes(p, (int)n) != 1)
		abort();
}

static struct auth_ctx *ctx(enum auth_role role)
{
	static int init;
	struct auth_ctx *a;

	if (!init) {
		fill_random(g_key, sizeof(g_key));
		init = 1;
	}
	a = auth_new(role, g_key, sizeof(g_key), NULL, NULL);
	if (!a)
		abort();
	return a;
}

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

TEST(wire_layout)
{
	static const uint8_t expect_hdr[32] = {
		0x51, 0x4b, 0x44, 0x43,	/* "QKDC" */
		2, QKD_MSG_CASCADE_REQ, 0x00, 0x01,	/* version 2 */
		0xde, 0xad, 0xbe, 0xef,	/* session */
		0x00, 0x00, 0x01, 0x02,	/* round */
		0, 0, 0, 0, 0, 0, 0, 0,	/* seq 0 */
		0, 0, 0, 5,		/* payload length */
		0, 0, 0, 0,		/* reserved */
	};
	struct frame_hdr h = { .type = QKD_MSG_CASCADE_REQ,
			       .flags = QKD_FRAME_F_MORE,
			       .session_id = 0xdeadbeef, .round_id = 0x102 };
	uint8_t out[64], pl[5] = { 1, 2, 3, 4, 5 }, tag[16];
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
	size_t n = 0;

	ASSERT_EQ(QKD_FRAME_OK, frame_seal(a, &h, pl, 5, out, sizeof(out), &n));
	ASSERT_EQ(32 + 5 + 16, n);
	ASSERT_EQ(n, frame_wire_len(5));
	ASSERT_EQ(0, memcmp(out, expect_hdr, 32));
	ASSERT_EQ(0, memcmp(out + 32, pl, 5));
	/* the tag is the Wegman-Carter tag of the first 37 bytes */
	ASSERT_EQ(QKD_AUTH_OK, auth_verify(b, 0, out, 37, out + 37));
	/* the next frame gets seq 1, at bytes 16..23 */
	ASSERT_EQ(QKD_FRAME_OK, frame_seal(a, &h, pl, 5, out, sizeof(out), &n));
	ASSERT_EQ(1, out[23]);
	ASSERT_EQ(1, h.seq);
	/* frame_serialize with a given tag */
	memset(tag, 0x5a, sizeof(tag));
	h.seq = 0x0102030405060708ull;
	ASSERT_EQ(QKD_FRAME_OK, frame_serialize(&h, pl, tag, out, sizeof(out),
						&n));
	ASSERT_EQ(0, memcmp(out + 16, "\x01\x02\x03\x04\x05\x06\x07\x08", 8));
	ASSERT_EQ(0, memcmp(out + 37, tag, 16));
	auth_free(a);
	auth_free(b);
}

TEST(round_trip_every_type)
{
	static const uint32_t lens[QKD_MSG__MAX + 1] = {
		[QKD_MSG_HELLO] = 64, [QKD_MSG_SIFT_BASES] = 1000,
		[QKD_MSG_EST_SAMPLE] = 77, [QKD_MSG_CASCADE_REQ] = 12,
		[QKD_MSG_CASCADE_ANS] = 3, [QKD_MSG_VERIFY_HASH] = 32,
		[QKD_MSG_PA_SEED] = 512, [QKD_MSG_KEY_CONFIRM] = 16,
		[QKD_MSG_KEY_COMMIT] = 0, [QKD_MSG_ABORT] = 4,
		[QKD_MSG_KEEPALIVE] = 0, [QKD_MSG_SYNC] = 40,
		[QKD_MSG_KME_IDS] = 200, [QKD_MSG_KME_CONFIRM] = 32,
		[QKD_MSG_ROOM_QUERY] = 8, [QKD_MSG_ROOM] = 8,
		[QKD_MSG_LDPC_MORE] = 20, [QKD_MSG_LDPC_REVEAL] = 100,
		[QKD_MSG_EC_DISCLOSE_REQ] = 8, [QKD_MSG_EC_DISCLOSE] = 800,
		[QKD_MSG_PA_SEED_PART] = 40,
	};
	uint8_t pl[1024], out[2048], tag[16];
	struct frame f;
	size_t n;

	for (unsigned int t = 1; t <= QKD_MSG__MAX; t++) {
		struct frame_hdr h = { .version = QKD_FRAME_VERSION,
				       .type = (uint8_t)t,
				       .session_id = 7 * t,
				       .round_id = 1000 + t,
				       .seq = (uint64_t)t << 40,
				       .payload_len = lens[t] };

		fill_random(pl, sizeof(pl));
		fill_random(tag, sizeof(tag));
		if (t == QKD_MSG_ABORT)
			memset(pl, 0, 4);
		ASSERT_EQ(QKD_FRAME_OK, frame_serialize(&h, pl, tag, out,
							sizeof(out), &n));
		ASSERT_EQ(frame_wire_len(lens[t]), n);
		memset(&f, 0, sizeof(f));
		ASSERT_EQ(QKD_FRAME_OK, frame_parse(out, n, &f));
		ASSERT_EQ(QKD_FRAME_VERSION, f.hdr.version);
		ASSERT_EQ(t, f.hdr.type);
		ASSERT_EQ(0, f.hdr.flags);
		ASSERT_EQ(7 * t, f.hdr.session_id);
		ASSERT_EQ(1000 + t, f.hdr.round_id);
		ASSERT_EQ((uint64_t)t << 40, f.hdr.seq);
		ASSERT_EQ(lens[t], f.hdr.payload_len);
		ASSERT_EQ(out + 32, f.payload);
		ASSERT_EQ(0, memcmp(f.payload, pl, lens[t]));
		ASSERT_EQ(0, memcmp(f.tag, tag, 16));
		ASSERT_NE(0, strcmp("unknown", frame_type_name(t)));
	}
	ASSERT_EQ(0, strcmp("unknown", frame_type_name(0)));
	ASSERT_EQ(0, strcmp("unknown", frame_type_name(QKD_MSG__MAX + 1)));
	ASSERT_EQ(0, strcmp("kme-key-ids", frame_type_name(QKD_MSG_KME_IDS)));
	ASSERT_EQ(0, strcmp("sync", frame_type_name(QKD_MSG_SYNC)));
	ASSERT_EQ(0, strcmp("keepalive", frame_type_name(QKD_MSG_KEEPALIVE)));
}

/* A valid unauthenticated sample frame: sift-bases with 10 payload bytes. */
static size_t sample(uint8_t *out)
{
	struct frame_hdr h = { .version = QKD_FRAME_VERSION,
			       .type = QKD_MSG_SIFT_BASES,
			       .session_id = 1, .round_id = 2, .seq = 3,
			       .payload_len = 10 };
	uint8_t pl[10] = { 0 }, tag[16] = { 0 };
	size_t n = 0;

	if (frame_serialize(&h, pl, tag, out, 64, &n))
		abort();
	return n;
}

TEST(parser_rejects_with_reason)
{
	uint8_t b[128];
	struct frame f;
	struct frame_hdr h;
	size_t n = sample(b);

	ASSERT_EQ(58, n);
	ASSERT_EQ(QKD_FRAME_OK, frame_parse(b, n, &f));

	/* lengths: short header, short body, trailing bytes */
	for (size_t l = 0; l < n; l++)
		ASSERT_EQ(QKD_FRAME_E_SHORT, frame_parse(b, l, &f));
	ASSERT_EQ(QKD_FRAME_E_TRAILING, frame_parse(b, n + 1, &f));
	ASSERT_EQ(QKD_FRAME_E_SHORT, frame_parse_header(b, 31, &h));
	ASSERT_EQ(QKD_FRAME_OK, frame_parse_header(b, 32, &h));
	ASSERT_EQ(10, h.payload_len);

	n = sample(b); b[0] = 'X';
	ASSERT_EQ(QKD_FRAME_E_MAGIC, frame_parse(b, n, &f));
	n = sample(b); b[4] = 1;	/* the old version: refused */
	ASSERT_EQ(QKD_FRAME_E_VERSION, frame_parse(b, n, &f));
	n = sample(b); b[4] = 3;
	ASSERT_EQ(QKD_FRAME_E_VERSION, frame_parse(b, n, &f));
	n = sample(b); b[4] = 0;
	ASSERT_EQ(QKD_FRAME_E_VERSION, frame_parse(b, n, &f));
	n = sample(b); b[5] = 0;
	ASSERT_EQ(QKD_FRAME_E_TYPE, frame_parse(b, n, &f));
	n = sample(b); b[5] = QKD_MSG__MAX + 1;
	ASSERT_EQ(QKD_FRAME_E_TYPE, frame_parse(b, n, &f));
	n = sample(b); b[5] = 0xff;
	ASSERT_EQ(QKD_FRAME_E_TYPE, frame_parse(b, n, &f));
	n = sample(b); b[6] = 0x80;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	n = sample(b); b[7] = 0x08;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	/* deferred: fine on sift-bases, with a zero tag field only */
	n = sample(b); b[7] = 0x02;
	ASSERT_EQ(QKD_FRAME_OK, frame_parse(b, n, &f));
	ASSERT_EQ(QKD_FRAME_F_DEFERRED, f.hdr.flags);
	n = sample(b); b[7] = 0x02; b[n - 1] = 1;
	ASSERT_EQ(QKD_FRAME_E_PAYLOAD, frame_parse(b, n, &f));
	/* closing: not on sift-bases, never together with deferred */
	n = sample(b); b[7] = 0x04;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	n = sample(b); b[7] = 0x06;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	/* what commits to something is never deferred */
	n = sample(b); b[5] = QKD_MSG_KEY_COMMIT; b[7] = 0x02;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	n = sample(b); b[5] = QKD_MSG_HELLO; b[7] = 0x02;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	n = sample(b); b[5] = QKD_MSG_VERIFY_HASH; b[7] = 0x02;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	n = sample(b); b[5] = QKD_MSG_VERIFY_HASH; b[7] = 0x04;
	ASSERT_EQ(QKD_FRAME_OK, frame_parse(b, n, &f));
	/* a long PA seed: its non-final frames are folded in */
	n = sample(b); b[5] = QKD_MSG_PA_SEED; b[7] = 0x02;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	n = sample(b); b[5] = QKD_MSG_PA_SEED; b[7] = 0x03;
	ASSERT_EQ(QKD_FRAME_OK, frame_parse(b, n, &f));
	n = sample(b); b[5] = QKD_MSG_PA_SEED; b[7] = 0x05;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	n = sample(b); b[5] = QKD_MSG_PA_SEED; b[7] = 0x04;
	ASSERT_EQ(QKD_FRAME_OK, frame_parse(b, n, &f));
	n = sample(b); b[7] = 0x01;	/* F_MORE: fine on sift-bases */
	ASSERT_EQ(QKD_FRAME_OK, frame_parse(b, n, &f));
	ASSERT_EQ(QKD_FRAME_F_MORE, f.hdr.flags);
	n = sample(b); b[31] = 1;
	ASSERT_EQ(QKD_FRAME_E_RESERVED, frame_parse(b, n, &f));
	n = sample(b); b[28] = 0x80;
	ASSERT_EQ(QKD_FRAME_E_RESERVED, frame_parse(b, n, &f));

	/* payload length above the maximum, even with the bytes present */
	n = sample(b); be32(b + 24, QKD_FRAME_MAX_PAYLOAD + 1);
	ASSERT_EQ(QKD_FRAME_E_TOO_BIG, frame_parse(b, n, &f));
	n = sample(b); be32(b + 24, 0xffffffffu);
	ASSERT_EQ(QKD_FRAME_E_TOO_BIG, frame_parse(b, n, &f));
	n = sample(b); be32(b + 24, QKD_FRAME_MAX_PAYLOAD);
	ASSERT_EQ(QKD_FRAME_E_SHORT, frame_parse(b, n, &f));

	/* per-type bounds */
	n = sample(b); b[5] = QKD_MSG_KEEPALIVE;
	ASSERT_EQ(QKD_FRAME_E_TYPE_LEN, frame_parse(b, n, &f));
	n = sample(b); b[5] = QKD_MSG_ABORT; b[7] = 1;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_parse(b, n, &f));
	n = sample(b); be32(b + 24, 0);
	ASSERT_EQ(QKD_FRAME_E_TYPE_LEN, frame_parse(b, 48, &f));
	n = sample(b); b[5] = QKD_MSG_VERIFY_HASH; be32(b + 24, 1025);
	ASSERT_EQ(QKD_FRAME_E_TYPE_LEN, frame_parse(b, n, &f));

	/* abort payload: reason 0..max, reserved zero, printable text */
	n = sample(b); b[5] = QKD_MSG_ABORT;	/* zero bytes are no text */
	ASSERT_EQ(QKD_FRAME_E_PAYLOAD, frame_parse(b, n, &f));
	memcpy(b + 36, "qber h", 6);
	ASSERT_EQ(QKD_FRAME_OK, frame_parse(b, n, &f));
	b[33] = QKD_ABORT__MAX + 1;
	ASSERT_EQ(QKD_FRAME_E_PAYLOAD, frame_parse(b, n, &f));
	b[33] = 1; b[35] = 1;
	ASSERT_EQ(QKD_FRAME_E_PAYLOAD, frame_parse(b, n, &f));
	b[35] = 0; memcpy(b + 36, "bad\x01\x02\x03", 6);
	ASSERT_EQ(QKD_FRAME_E_PAYLOAD, frame_parse(b, n, &f));
	memcpy(b + 36, "qber h", 6);
	ASSERT_EQ(QKD_FRAME_OK, frame_parse(b, n, &f));

	/* bad arguments */
	ASSERT_EQ(QKD_FRAME_E_INVAL, frame_parse(NULL, 10, &f));
	ASSERT_EQ(QKD_FRAME_E_INVAL, frame_parse(b, n, NULL));

	/* every error has its own message */
	for (int e = QKD_FRAME_E_INVAL; e >= QKD_FRAME_E_PAYLOAD; e--)
		ASSERT_NE(0, strcmp("unknown frame error", frame_strerror(e)));
	ASSERT_EQ(0, strcmp("authentication tag mismatch",
			    frame_strerror(QKD_AUTH_E_TAG)));
}

TEST(serializer_refuses_what_parser_rejects)
{
	struct frame_hdr h = { .version = QKD_FRAME_VERSION,
			       .type = QKD_MSG_KEEPALIVE };
	uint8_t out[128], tag[16] = { 0 }, pl[8] = { 0 };
	size_t n;

	ASSERT_EQ(QKD_FRAME_OK, frame_serialize(&h, NULL, tag, out, 48, &n));
	ASSERT_EQ(48, n);
	ASSERT_EQ(QKD_FRAME_E_NOSPACE, frame_serialize(&h, NULL, tag, out, 47,
						       &n));
	h.payload_len = 1;
	ASSERT_EQ(QKD_FRAME_E_TYPE_LEN, frame_serialize(&h, pl, tag, out,
							sizeof(out), &n));
	h.payload_len = 0;
	h.version = 1;
	ASSERT_EQ(QKD_FRAME_E_VERSION, frame_serialize(&h, NULL, tag, out,
						       sizeof(out), &n));
	h.version = QKD_FRAME_VERSION;
	h.type = 0;
	ASSERT_EQ(QKD_FRAME_E_TYPE, frame_serialize(&h, NULL, tag, out,
						    sizeof(out), &n));
	h.type = QKD_MSG_HELLO;
	h.flags = QKD_FRAME_F_MORE;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_serialize(&h, NULL, tag, out,
						     sizeof(out), &n));
	h.flags = 0x100;
	ASSERT_EQ(QKD_FRAME_E_FLAGS, frame_serialize(&h, NULL, tag, out,
						     sizeof(out), &n));
	h.flags = 0;
	h.type = QKD_MSG_ABORT;
	h.payload_len = 8;
	pl[1] = 200;	/* unknown reason */
	ASSERT_EQ(QKD_FRAME_E_PAYLOAD, frame_serialize(&h, pl, tag, out,
						       sizeof(out), &n));
	h.payload_len = 1 << 21;
	ASSERT_EQ(QKD_FRAME_E_TOO_BIG, frame_serialize(&h, pl, tag, out,
						       sizeof(out), &n));
}

TEST(abort_payload)
{
	uint8_t p[256];
	char text[256];
	uint32_t n = 0;
	uint16_t reason = 0;
	char long_text[QKD_ABORT_MAX_TEXT + 2];

	ASSERT_EQ(QKD_FRAME_OK, frame_abort_encode(QKD_ABORT_QBER_HIGH,
						   "QBER 0.137 > 0.11", p,
						   sizeof(p), &n));
	ASSERT_EQ(4 + 17, n);
	ASSERT_EQ(0, p[0]);
	ASSERT_EQ(QKD_ABORT_QBER_HIGH, p[1]);
	ASSERT_EQ(QKD_FRAME_OK, frame_abort_decode(p, n, &reason, text,
						   sizeof(text)));
	ASSERT_EQ(QKD_ABORT_QBER_HIGH, reason);
	ASSERT_EQ(0, strcmp("QBER 0.137 > 0.11", text));
	/* text truncated to the caller's buffer */
	ASSERT_EQ(QKD_FRAME_OK, frame_abort_decode(p, n, &reason, text, 5));
	ASSERT_EQ(0, strcmp("QBER", text));
	ASSERT_EQ(QKD_FRAME_OK, frame_abort_encode(QKD_ABORT_AUTH_FAILED, NULL,
						   p, sizeof(p), &n));
	ASSERT_EQ(4, n);
	ASSERT_EQ(QKD_FRAME_OK, frame_abort_decode(p, n, &reason, text,
						   sizeof(text)));
	ASSERT_EQ(QKD_ABORT_AUTH_FAILED, reason);
	ASSERT_EQ(0, strcmp("", text));
	ASSERT_EQ(0, strcmp("authentication failed",
			    frame_abort_reason_name(reason)));
	ASSERT_EQ(0, strcmp("unknown", frame_abort_reason_name(999)));
	/* refusals */
	ASSERT_EQ(QKD_FRAME_E_INVAL, frame_abort_encode(QKD_ABORT__MAX + 1,
							NULL, p, sizeof(p), &n));
	ASSERT_EQ(QKD_FRAME_E_INVAL, frame_abort_encode(1, "tab\there", p,
							sizeof(p), &n));
	memset(long_text, 'x', sizeof(long_text) - 1);
	long_text[sizeof(long_text) - 1] = '\0';
	ASSERT_EQ(QKD_FRAME_E_INVAL, frame_abort_encode(1, long_text, p,
							sizeof(p), &n));
	ASSERT_EQ(QKD_FRAME_E_NOSPACE, frame_abort_encode(1, "abc", p, 6, &n));
	ASSERT_EQ(QKD_FRAME_E_TYPE_LEN, frame_abort_decode(p, 3, &reason, NULL,
							   0));
}

/*
 * Authenticated frames: every single-bit flip of header, payload and tag is
 * rejected, each with the reason expected for the field it hits.
 */
TEST(every_bit_flip_of_a_sealed_frame_rejected)
{
	struct frame_hdr h = { .type = QKD_MSG_SIFT_BASES, .session_id = 9,
			       .round_id = 4 };
	uint8_t pl[100], wire[200], m[200];
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR), *b;
	unsigned int by_err[4] = { 0 };
	struct auth_stats st;
	struct frame f;
	size_t n, bits;

	fill_random(pl, sizeof(pl));
	ASSERT_EQ(QKD_FRAME_OK, frame_seal(a, &h, pl, sizeof(pl), wire,
					   sizeof(wire), &n));
	ASSERT_EQ(148, n);
	bits = 8 * n;
	for (size_t bit = 0; bit < bits; bit++) {
		size_t byte = bit / 8;
		int r;

		memcpy(m, wire, n);
		m[byte] ^= (uint8_t)(1u << (bit % 8));
		b = ctx(QKD_AUTH_RESPONDER);
		r = frame_open(b, m, n, &f);
		ASSERT_NE(QKD_FRAME_OK, r);
		if (byte < 4) {
			ASSERT_EQ(QKD_FRAME_E_MAGIC, r);
		} else if (byte == 4) {
			ASSERT_EQ(QKD_FRAME_E_VERSION, r);
		} else if (byte == 5) {
			ASSERT_TRUE(r == QKD_FRAME_E_TYPE ||
				    r == QKD_AUTH_E_TAG ||
				    r == QKD_FRAME_E_PAYLOAD);
		} else if (byte == 6 || byte == 7) {
			if (byte == 7 && bit % 8 == 0) {
				ASSERT_EQ(QKD_AUTH_E_TAG, r);	/* F_MORE */
			} else if (byte == 7 && bit % 8 == 1) {
				/* F_DEFERRED: the tag field must be zero */
				ASSERT_EQ(QKD_FRAME_E_PAYLOAD, r);
			} else {
				ASSERT_EQ(QKD_FRAME_E_FLAGS, r);
			}
		} else if (byte < 16) {
			ASSERT_EQ(QKD_AUTH_E_TAG, r);	/* session, round */
		} else if (byte < 24) {
			ASSERT_EQ(QKD_AUTH_E_SEQ, r);
		} else if (byte < 28) {
			ASSERT_TRUE(r == QKD_FRAME_E_TOO_BIG ||
				    r == QKD_FRAME_E_SHORT ||
				    r == QKD_FRAME_E_TRAILING);
		} else if (byte < 32) {
			ASSERT_EQ(QKD_FRAME_E_RESERVED, r);
		} else {
			ASSERT_EQ(QKD_AUTH_E_TAG, r);	/* payload, tag */
		}
		by_err[r == QKD_AUTH_E_TAG ? 0 : r == QKD_AUTH_E_SEQ ? 1 :
		       r > -100 ? 2 : 3]++;
		/* every rejection is counted as a failure */
		auth_get_stats(b, &st);
		ASSERT_EQ(1, st.failures_total);
		auth_free(b);
	}
	ASSERT_EQ(bits, by_err[0] + by_err[1] + by_err[2]);
	ASSERT_EQ(0, by_err[3]);
	ASSERT_EQ(64, by_err[1]);
	/* 8 session/round bytes + payload + tag + F_MORE bit + valid types */
	ASSERT_GE(by_err[0], 8 * (8 + 100 + 16) + 1);
	b = ctx(QKD_AUTH_RESPONDER);
	ASSERT_EQ(QKD_FRAME_OK, frame_open(b, wire, n, &f));
	ASSERT_EQ(100, f.hdr.payload_len);
	ASSERT_EQ(0, memcmp(f.payload, pl, 100));
	auth_free(b);
	auth_free(a);
}

TEST(sealed_truncation_extension_replay_reorder_wrong_key)
{
	struct frame_hdr h = { .type = QKD_MSG_CASCADE_ANS, .round_id = 5 };
	uint8_t pl[40], f0[128], f1[128], m[160], key2[KEYLEN];
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR), *b, *w;
	size_t n0, n1;
	struct frame f;

	fill_random(pl, sizeof(pl));
	ASSERT_EQ(QKD_FRAME_OK, frame_seal(a, &h, pl, 40, f0, sizeof(f0), &n0));
	ASSERT_EQ(QKD_FRAME_OK, frame_seal(a, &h, pl, 40, f1, sizeof(f1), &n1));
	ASSERT_EQ(1, h.seq);

	/* truncation: drop the last byte; or shorten payload_len to match */
	b = ctx(QKD_AUTH_RESPONDER);
	ASSERT_EQ(QKD_FRAME_E_SHORT, frame_open(b, f0, n0 - 1, &f));
	memcpy(m, f0, n0);
	m[27] = 39;	/* payload 39 bytes: tag now starts one byte early */
	ASSERT_EQ(QKD_AUTH_E_TAG, frame_open(b, m, n0 - 1, &f));
	auth_free(b);
	/* extension: a byte after the tag; or a longer payload */
	b = ctx(QKD_AUTH_RESPONDER);
	memcpy(m, f0, n0);
	m[n0] = 0;
	ASSERT_EQ(QKD_FRAME_E_TRAILING, frame_open(b, m, n0 + 1, &f));
	memcpy(m, f0, 32 + 40);
	m[72] = 0xee;		/* one more payload byte */
	memcpy(m + 73, f0 + 72, 16);
	m[27] = 41;
	ASSERT_EQ(QKD_AUTH_E_TAG, frame_open(b, m, n0 + 1, &f));
	auth_free(b);

	/* reorder then replay */
	b = ctx(QKD_AUTH_RESPONDER);
	ASSERT_EQ(QKD_AUTH_E_SEQ, frame_open(b, f1, n1, &f));
	ASSERT_EQ(QKD_FRAME_OK, frame_open(b, f0, n0, &f));
	ASSERT_EQ(0, f.hdr.seq);
	ASSERT_EQ(QKD_AUTH_E_SEQ, frame_open(b, f0, n0, &f));
	ASSERT_EQ(QKD_FRAME_OK, frame_open(b, f1, n1, &f));
	ASSERT_EQ(1, f.hdr.seq);
	ASSERT_EQ(QKD_AUTH_E_SEQ, frame_open(b, f1, n1, &f));
	/* replay with the seq field rewritten to the expected one */
	memcpy(m, f0, n0);
	m[23] = 2;
	ASSERT_EQ(QKD_AUTH_E_TAG, frame_open(b, m, n0, &f));
	auth_free(b);

	/* wrong key */
	memcpy(key2, g_key, sizeof(key2));
	key2[0] ^= 0x10;
	w = auth_new(QKD_AUTH_RESPONDER, key2, sizeof(key2), NULL, NULL);
	ASSERT_NE(NULL, w);
	ASSERT_EQ(QKD_AUTH_E_TAG, frame_open(w, f0, n0, &f));
	auth_free(w);
	/* reflected back to the sender */
	ASSERT_EQ(QKD_AUTH_E_TAG, frame_open(a, f0, n0, &f));
	auth_free(a);
}

TEST(seal_refuses_without_reserve)
{
	uint8_t key[QKD_AUTH_KEY_MIN], out[64];
	struct frame_hdr h = { .type = QKD_MSG_KEEPALIVE };
	struct auth_ctx *a;
	size_t n;

	fill_random(key, sizeof(key));
	a = auth_new(QKD_AUTH_INITIATOR, key, sizeof(key), NULL, NULL);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(QKD_FRAME_OK, frame_seal(a, &h, NULL, 0, out, sizeof(out), &n));
	ASSERT_EQ(QKD_AUTH_E_RESERVE, frame_seal(a, &h, NULL, 0, out,
						 sizeof(out), &n));
	ASSERT_EQ(1, auth_next_send_seq(a));
	auth_free(a);
}

/* ---- stream helpers ----------------------------------------------------- */

static void socks(int sv[2])
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
}

TEST(stream_send_recv_several_and_eof)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
	uint8_t buf[4096], pl[1000];
	struct frame f;
	size_t n;
	int sv[2];

	socks(sv);
	for (unsigned int i = 0; i < 3; i++) {
		struct frame_hdr h = { .type = QKD_MSG_EST_SAMPLE,
				       .round_id = i };

		memset(pl, (int)i, sizeof(pl));
		ASSERT_EQ(QKD_FRAME_OK,
			  frame_send_sealed(sv[0], a, &h, pl, 100 * (i + 1),
					    buf, sizeof(buf)));
	}
	for (unsigned int i = 0; i < 3; i++) {
		ASSERT_EQ(QKD_FRAME_OK, frame_recv_open(sv[1], b, buf,
							sizeof(buf), &n, &f));
		ASSERT_EQ(frame_wire_len(100 * (i + 1)), n);
		ASSERT_EQ(i, f.hdr.round_id);
		ASSERT_EQ(i, f.hdr.seq);
		ASSERT_EQ(i, f.payload[99]);
	}
	close(sv[0]);
	ASSERT_EQ(QKD_FRAME_E_EOF, frame_recv_open(sv[1], b, buf, sizeof(buf),
						   &n, &f));
	close(sv[1]);
	auth_free(a);
	auth_free(b);
}

TEST(stream_truncated_oversized_garbage_timeout)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
	struct frame_hdr h = { .type = QKD_MSG_PA_SEED };
	uint8_t buf[4096], pl[1000] = { 0 };
	struct timeval tv = { .tv_usec = 100000 };
	struct auth_stats st;
	struct frame f;
	size_t n;
	int sv[2];

	/* peer dies in the middle of a frame */
	socks(sv);
	ASSERT_EQ(QKD_FRAME_OK, frame_seal(a, &h, pl, 500, buf, sizeof(buf),
					   &n));
	ASSERT_EQ(QKD_FRAME_OK, frame_write_all(sv[0], buf, 40));
	close(sv[0]);
	ASSERT_EQ(QKD_FRAME_E_TRUNCATED, frame_recv(sv[1], buf, sizeof(buf),
						    &n, &f));
	close(sv[1]);
	/* ... or in the middle of the header */
	socks(sv);
	ASSERT_EQ(QKD_FRAME_OK, frame_write_all(sv[0], "QKDC\x01", 5));
	close(sv[0]);
	ASSERT_EQ(QKD_FRAME_E_TRUNCATED, frame_recv(sv[1], buf, sizeof(buf),
						    &n, &f));
	close(sv[1]);

	/* a frame larger than the receive buffer is refused on its header */
	socks(sv);
	h.seq = 0;
	{
		struct auth_ctx *a2 = ctx(QKD_AUTH_INITIATOR);

		ASSERT_EQ(QKD_FRAME_OK, frame_send_sealed(sv[0], a2, &h, pl,
							  1000, buf,
							  sizeof(buf)));
		auth_free(a2);
	}
	ASSERT_EQ(QKD_FRAME_E_TOO_BIG, frame_recv_open(sv[1], b, buf, 512, &n,
						       &f));
	/* only the header was consumed */
	{
		uint8_t rest[1016];

		ASSERT_EQ(QKD_FRAME_OK, frame_read_all(sv[1], rest,
						       sizeof(rest)));
	}
	auth_get_stats(b, &st);
	ASSERT_EQ(1, st.failures_total);

	/* garbage header */
	memset(buf, 'G', 32);
	ASSERT_EQ(QKD_FRAME_OK, frame_write_all(sv[0], buf, 32));
	ASSERT_EQ(QKD_FRAME_E_MAGIC, frame_recv_open(sv[1], b, buf,
						     sizeof(buf), &n, &f));
	auth_get_stats(b, &st);
	ASSERT_EQ(2, st.failures_total);

	/* timeout */
	ASSERT_EQ(0, setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv,
				sizeof(tv)));
	ASSERT_EQ(QKD_FRAME_E_TIMEOUT, frame_recv(sv[1], buf, sizeof(buf), &n,
						  &f));
	close(sv[0]);
	close(sv[1]);
	ASSERT_EQ(QKD_FRAME_E_INVAL, frame_recv(3, buf, 47, &n, &f));
	auth_free(a);
	auth_free(b);
}

/* Writer dribbles a frame out a few bytes at a time. */
struct dribble {
	int fd;
	const uint8_t *p;
	size_t n;
};

static void *dribble_run(void *arg)
{
	struct dribble *d = arg;

	for (size_t off = 0; off < d->n; off += 7) {
		size_t k = d->n - off < 7 ? d->n - off : 7;

		if (frame_write_all(d->fd, d->p + off, k))
			break;
		usleep(2000);
	}
	return NULL;
}

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

TEST(stream_short_reads_and_eintr)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
	struct frame_hdr h = { .type = QKD_MSG_SIFT_BASES };
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	uint8_t wire[1024], buf[1024], pl[300];
	struct sigaction sa;
	struct dribble d;
	struct frame f;
	pthread_t t;
	size_t n;
	int sv[2];

	fill_random(pl, sizeof(pl));
	ASSERT_EQ(QKD_FRAME_OK, frame_seal(a, &h, pl, sizeof(pl), wire,
					   sizeof(wire), &n));
	socks(sv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: reads see EINTR */
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	{
		sigset_t s;

		/* only this thread takes the signal */
		sigemptyset(&s);
		sigaddset(&s, SIGALRM);
		pthread_sigmask(SIG_BLOCK, &s, NULL);
		d = (struct dribble){ sv[0], wire, n };
		ASSERT_EQ(0, pthread_create(&t, NULL, dribble_run, &d));
		pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	}
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	ASSERT_EQ(QKD_FRAME_OK, frame_recv_open(sv[1], b, buf, sizeof(buf), &n,
						&f));
	setitimer(ITIMER_REAL, &off, NULL);
	pthread_join(t, NULL);
	TH_LOG("%d SIGALRMs during the read", (int)alarms);
	ASSERT_GT(alarms, 5);
	ASSERT_EQ(300, f.hdr.payload_len);
	ASSERT_EQ(0, memcmp(f.payload, pl, 300));
	close(sv[0]);
	close(sv[1]);
	auth_free(a);
	auth_free(b);
}

struct slow_reader {
	int fd;
	uint8_t *buf;
	size_t cap;
	size_t len;
	int rc;
	struct auth_ctx *a;
	struct frame f;
};

static void *slow_reader_run(void *arg)
{
	struct slow_reader *r = arg;

	usleep(50000);	/* let the writer fill the socket buffer */
	r->rc = frame_recv_open(r->fd, r->a, r->buf, r->cap, &r->len, &r->f);
	return NULL;
}

TEST(stream_short_writes_max_size_frame)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct frame_hdr h = { .type = QKD_MSG_PA_SEED };
	size_t cap = QKD_FRAME_MAX_LEN;
	uint8_t *pl = malloc(QKD_FRAME_MAX_PAYLOAD), *wbuf = malloc(cap);
	struct slow_reader r = { .cap = cap, .buf = malloc(cap) };
	int sndbuf = 4096, sv[2];
	struct itimerval it = { { 0, 1000 }, { 0, 1000 } };
	struct itimerval off = { { 0, 0 }, { 0, 0 } };
	struct sigaction sa;
	pthread_t t;
	sigset_t s;

	ASSERT_NE(NULL, pl);
	ASSERT_NE(NULL, wbuf);
	ASSERT_NE(NULL, r.buf);
	fill_random(pl, QKD_FRAME_MAX_PAYLOAD);
	socks(sv);
	ASSERT_EQ(0, setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf,
				sizeof(sndbuf)));
	r.fd = sv[1];
	r.a = ctx(QKD_AUTH_RESPONDER);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;	/* no SA_RESTART: partial sends */
	ASSERT_EQ(0, sigaction(SIGALRM, &sa, NULL));
	sigemptyset(&s);
	sigaddset(&s, SIGALRM);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	ASSERT_EQ(0, pthread_create(&t, NULL, slow_reader_run, &r));
	pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	alarms = 0;
	ASSERT_EQ(0, setitimer(ITIMER_REAL, &it, NULL));
	ASSERT_EQ(QKD_FRAME_OK, frame_send_sealed(sv[0], a, &h, pl,
						  QKD_FRAME_MAX_PAYLOAD, wbuf,
						  cap));
	setitimer(ITIMER_REAL, &off, NULL);
	pthread_join(t, NULL);
	TH_LOG("%d SIGALRMs during the write", (int)alarms);
	ASSERT_GT(alarms, 5);
	ASSERT_EQ(QKD_FRAME_OK, r.rc);
	ASSERT_EQ(QKD_FRAME_MAX_LEN, r.len);
	ASSERT_EQ(QKD_FRAME_MAX_PAYLOAD, r.f.hdr.payload_len);
	ASSERT_EQ(0, memcmp(r.f.payload, pl, QKD_FRAME_MAX_PAYLOAD));
	/* one byte more is refused by the sender */
	{
		size_t n;

		ASSERT_EQ(QKD_FRAME_E_TOO_BIG,
			  frame_seal(a, &h, pl, QKD_FRAME_MAX_PAYLOAD + 1,
				     wbuf, cap, &n));
	}
	close(sv[0]);
	close(sv[1]);
	auth_free(a);
	auth_free(r.a);
	free(pl);
	free(wbuf);
	free(r.buf);
}

TEST(stream_write_to_closed_peer_no_sigpipe)
{
	uint8_t b[64] = { 0 };
	int sv[2];

	socks(sv);
	close(sv[1]);
	/* MSG_NOSIGNAL: an error, not a dead process */
	ASSERT_EQ(QKD_FRAME_E_IO, frame_write_all(sv[0], b, sizeof(b)));
	ASSERT_EQ(EPIPE, errno);
	close(sv[0]);
}

TEST_HARNESS_MAIN
