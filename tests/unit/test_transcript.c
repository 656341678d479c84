// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for transcript authentication (auth_transcript_*, frames with
 * QKD_FRAME_F_DEFERRED / QKD_FRAME_F_TRANSCRIPT), reserve positions and the
 * state file (auth_state_export / auth_state_import):
 *
 *  - an honest exchange of deferred frames both ways costs two pads, and
 *    both closing tags verify;
 *  - every single bit flip of every deferred frame (header or payload), a
 *    truncation, a dropped, replayed, reordered or injected frame, renumbered
 *    so that the sequence numbers look right, fails the closing tag
 *    (QKD_AUTH_E_TRANSCRIPT);
 *  - deferred frames are refused outside an open exchange and after a close;
 *    stale frames of an older exchange are skipped, not folded in;
 *  - the closing hash is the documented polynomial;
 *  - a state file restores the context at its recorded position (write-
 *    ahead), and two ends that lost step re-align with auth_skip_to.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "kselftest_harness.h"

#include "qkd/auth.h"
#include "qkd/frame.h"

#define KEYLEN (QKD_AUTH_KEY_HDR_LEN + 512 * 16)
#define NFR 6		/* frames of the test exchange */

static uint8_t g_key[KEYLEN];

static struct auth_ctx *ctx(enum auth_role role)
{
	static int init;
	struct auth_ctx *a;

	if (!init) {
		if (RAND_bytes(g_key, sizeof(g_key)) != 1)
			abort();
		init = 1;
	}
	a = auth_new(role, g_key, sizeof(g_key), NULL, NULL);
	if (!a)
		abort();
	return a;
}

struct wire {
	uint8_t b[256];
	size_t n;
	int from;	/* 0: initiator, 1: responder */
};

/*
 * The exchange: NFR deferred frames alternating B->A, A->B (a small
 * Cascade-like ping-pong), then the responder's closing frame (VERIFY) and
 * the initiator's (PA_SEED). Sealed with fresh contexts sharing g_key.
 */
static void make_exchange(struct wire *w, struct wire *close_b,
			  struct wire *close_a)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
	uint8_t pl[64];

	auth_transcript_begin(a, 7);
	auth_transcript_begin(b, 7);
	for (int i = 0; i < NFR; i++) {
		struct frame_hdr h = {
			.type = i & 1 ? QKD_MSG_CASCADE_ANS :
					QKD_MSG_CASCADE_REQ,
			.flags = QKD_FRAME_F_DEFERRED,
			.session_id = 0x1234, .round_id = 7,
		};
		struct auth_ctx *s = i & 1 ? a : b;
		struct frame f;

		for (size_t j = 0; j < sizeof(pl); j++)
			pl[j] = (uint8_t)(i * 31 + j);
		w[i].from = i & 1 ? 0 : 1;
		if (frame_seal(s, &h, pl, (uint32_t)(20 + 5 * i), w[i].b,
			       sizeof(w[i].b), &w[i].n) ||
		    frame_open(i & 1 ? b : a, w[i].b, w[i].n, &f))
			abort();
	}
	{
		struct frame_hdr hb = { .type = QKD_MSG_VERIFY_HASH,
					.flags = QKD_FRAME_F_TRANSCRIPT,
					.session_id = 0x1234, .round_id = 7 };
		struct frame_hdr ha = { .type = QKD_MSG_PA_SEED,
					.flags = QKD_FRAME_F_TRANSCRIPT,
					.session_id = 0x1234, .round_id = 7 };

		close_b->from = 1;
		close_a->from = 0;
		if (frame_seal(b, &hb, pl, 24, close_b->b, sizeof(close_b->b),
			       &close_b->n) ||
		    frame_seal(a, &ha, pl, 40, close_a->b, sizeof(close_a->b),
			       &close_a->n))
			abort();
	}
	auth_free(a);
	auth_free(b);
}

/*
 * Deliver a (possibly tampered) list of deferred frames, then both closing
 * frames, to fresh contexts. Returns the first error, or QKD_AUTH_OK if
 * both closing tags verified. The sequence numbers of each direction are
 * rewritten to look in order (an attacker can do that: deferred frames
 * carry no tag).
 */
static int deliver(const struct wire *w, int n, const struct wire *cb,
		   const struct wire *ca, unsigned int *state_a,
		   unsigned int *state_b)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
	uint64_t seq[2] = { 0, 0 };
	struct frame f;
	int r = QKD_AUTH_OK;

	auth_transcript_begin(a, 7);
	auth_transcript_begin(b, 7);
	/* the receivers see the frames as delivered; the senders folded in
	 * what they sent: replay the honest sending side */
	{
		struct wire hw[NFR], hcb, hca;

		make_exchange(hw, &hcb, &hca);
		for (int i = 0; i < NFR; i++) {
			bool stale;
			struct auth_ctx *s = hw[i].from ? b : a;

			if (auth_transcript_absorb(s, true,
						   auth_next_send_seq(s), 7,
						   hw[i].b, hw[i].n - 16,
						   &stale))
				abort();
		}
	}
	for (int i = 0; i < n && !r; i++) {
		struct wire m = w[i];
		struct auth_ctx *rx = m.from ? a : b;
		uint64_t s = seq[m.from]++;

		for (int k = 0; k < 8; k++)
			m.b[16 + k] = (uint8_t)(s >> (56 - 8 * k));
		r = frame_open(rx, m.b, m.n, &f);
	}
	/* closing frames: renumbered too, to come right after the deferred
	 * frames delivered (their tag covers the number: honest ones keep
	 * theirs) */
	{
		struct wire c[2] = { *cb, *ca };

		for (int d = 0; d < 2; d++)
			for (int k = 0; k < 8; k++)
				c[d].b[16 + k] = (uint8_t)(seq[1 - d] >>
							   (56 - 8 * k));
		if (!r)
			r = frame_open(a, c[0].b, c[0].n, &f);
		if (!r)
			r = frame_open(b, c[1].b, c[1].n, &f);
	}
	*state_a = auth_transcript_state(a, 7);
	*state_b = auth_transcript_state(b, 7);
	auth_free(a);
	auth_free(b);
	return r;
}

TEST(honest_exchange_two_pads_both_verify)
{
	struct wire w[NFR], cb, ca;
	unsigned int sa, sb;

	make_exchange(w, &cb, &ca);
	for (int i = 0; i < NFR; i++) {
		/* a deferred frame carries a zero tag field */
		for (int k = 0; k < 16; k++)
			ASSERT_EQ(0, w[i].b[w[i].n - 16 + k]);
	}
	ASSERT_EQ(QKD_AUTH_OK, deliver(w, NFR, &cb, &ca, &sa, &sb));
	ASSERT_EQ(QKD_AUTH_TR_OPEN | QKD_AUTH_TR_VERIFIED, sa);
	ASSERT_EQ(QKD_AUTH_TR_OPEN | QKD_AUTH_TR_VERIFIED, sb);

	/* the pads: one closing tag per direction, whatever NFR is */
	{
		struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
		struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
		struct auth_stats st;
		struct frame f;

		auth_transcript_begin(a, 1);
		auth_transcript_begin(b, 1);
		for (int i = 0; i < 500; i++) {
			struct frame_hdr h = { .type = QKD_MSG_CASCADE_REQ,
					       .flags = QKD_FRAME_F_DEFERRED,
					       .round_id = 1 };
			uint8_t pl[8] = { (uint8_t)i }, buf[64];
			size_t n;

			ASSERT_EQ(0, frame_seal(b, &h, pl, 8, buf, sizeof(buf),
						&n));
			ASSERT_EQ(0, frame_open(a, buf, n, &f));
		}
		{
			struct frame_hdr h = { .type = QKD_MSG_VERIFY_HASH,
					       .flags = QKD_FRAME_F_TRANSCRIPT,
					       .round_id = 1 };
			uint8_t pl[8] = { 1 }, buf[64];
			size_t n;

			ASSERT_EQ(0, frame_seal(b, &h, pl, 8, buf, sizeof(buf),
						&n));
			ASSERT_EQ(0, frame_open(a, buf, n, &f));
		}
		auth_get_stats(a, &st);
		ASSERT_EQ(16, st.bytes_consumed);
		ASSERT_EQ(1, st.transcripts_verified);
		/* 500 frames of 3 blocks, the closing frame 3, 2 final */
		ASSERT_EQ(500 * 3 + 3 + 2, st.last_transcript_blocks);
		auth_get_stats(b, &st);
		ASSERT_EQ(16, st.bytes_consumed);
		/* no deferred frame once the exchange is closed */
		{
			struct frame_hdr h = { .type = QKD_MSG_CASCADE_REQ,
					       .flags = QKD_FRAME_F_DEFERRED,
					       .round_id = 1 };
			uint8_t pl[8] = { 0 }, buf[64];
			size_t n;

			ASSERT_EQ(QKD_AUTH_E_TR_STATE,
				  frame_seal(b, &h, pl, 8, buf, sizeof(buf),
					     &n));
		}
		auth_free(a);
		auth_free(b);
	}
}

TEST(every_bit_flip_of_every_deferred_frame_fails_the_close)
{
	struct wire w[NFR], cb, ca, t[NFR];
	unsigned int sa, sb, flips = 0, caught = 0;

	make_exchange(w, &cb, &ca);
	for (int i = 0; i < NFR; i++)
		for (size_t bit = 0; bit < 8 * (w[i].n - 16); bit++) {
			int r;

			/* sequence numbers are rewritten by deliver() */
			if (bit / 8 >= 16 && bit / 8 < 24)
				continue;
			memcpy(t, w, sizeof(t));
			t[i].b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
			r = deliver(t, NFR, &cb, &ca, &sa, &sb);
			flips++;
			if (r == QKD_AUTH_OK || (sa & sb & QKD_AUTH_TR_VERIFIED))
				TH_LOG("frame %d bit %zu: %d, states %u %u", i,
				       bit, r, sa, sb);
			ASSERT_NE(QKD_AUTH_OK, r);
			/* no end accepted the peer's close */
			ASSERT_EQ(0, (sa & sb) & QKD_AUTH_TR_VERIFIED);
			/* header fields the parser checks fail at once; all
			 * else (session, round, payload) at the close */
			if (r == QKD_AUTH_E_TRANSCRIPT)
				caught++;
			else
				ASSERT_TRUE(r > -100 || r == QKD_AUTH_E_TAG ||
					    r == QKD_AUTH_E_TR_STATE);
		}
	TH_LOG("%u flips, %u caught by the closing tag", flips, caught);
	ASSERT_GT(caught, flips / 2);
}

TEST(truncation_drop_replay_reorder_injection_fail_the_close)
{
	struct wire w[NFR], cb, ca, t[NFR + 1];
	unsigned int sa, sb;

	make_exchange(w, &cb, &ca);
	/* truncation: one payload byte less, length field fixed up */
	for (int i = 0; i < NFR; i++) {
		memcpy(t, w, sizeof(w));
		t[i].b[27]--;
		memmove(t[i].b + t[i].n - 17, t[i].b + t[i].n - 16, 16);
		t[i].n--;
		ASSERT_EQ(QKD_AUTH_E_TRANSCRIPT,
			  deliver(t, NFR, &cb, &ca, &sa, &sb));
	}
	/* drop */
	for (int i = 0; i < NFR; i++) {
		int k = 0;

		for (int j = 0; j < NFR; j++)
			if (j != i)
				t[k++] = w[j];
		ASSERT_EQ(QKD_AUTH_E_TRANSCRIPT,
			  deliver(t, NFR - 1, &cb, &ca, &sa, &sb));
	}
	/* replay */
	for (int i = 0; i < NFR; i++) {
		int k = 0;

		for (int j = 0; j < NFR; j++) {
			t[k++] = w[j];
			if (j == i)
				t[k++] = w[j];
		}
		ASSERT_EQ(QKD_AUTH_E_TRANSCRIPT,
			  deliver(t, NFR + 1, &cb, &ca, &sa, &sb));
	}
	/* reorder two frames of the same direction */
	for (int i = 0; i + 2 < NFR; i++) {
		memcpy(t, w, sizeof(w));
		t[i] = w[i + 2];
		t[i + 2] = w[i];
		ASSERT_EQ(QKD_AUTH_E_TRANSCRIPT,
			  deliver(t, NFR, &cb, &ca, &sa, &sb));
	}
	/* injection: a frame the sender never sent */
	memcpy(t, w, sizeof(w));
	t[NFR] = w[1];
	t[NFR].b[40] ^= 0x55;
	ASSERT_EQ(QKD_AUTH_E_TRANSCRIPT,
		  deliver(t, NFR + 1, &cb, &ca, &sa, &sb));
	/* without renumbering, a replay or a drop fails at once */
	{
		struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
		struct frame f;

		auth_transcript_begin(a, 7);
		ASSERT_EQ(0, frame_open(a, w[0].b, w[0].n, &f));
		ASSERT_EQ(QKD_AUTH_E_SEQ, frame_open(a, w[0].b, w[0].n, &f));
		ASSERT_EQ(QKD_AUTH_E_SEQ, frame_open(a, w[4].b, w[4].n, &f));
		auth_free(a);
	}
}

TEST(deferred_frames_need_an_open_exchange_stale_ones_skipped)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
	struct frame_hdr h = { .type = QKD_MSG_SIFT_BASES,
			       .flags = QKD_FRAME_F_DEFERRED, .round_id = 3 };
	uint8_t pl[10] = { 0 }, buf[64], old[64];
	struct auth_stats st;
	struct frame f;
	size_t n, on;

	/* nothing open: refused on both sides, the receiver counts it */
	ASSERT_EQ(QKD_AUTH_E_TR_STATE, frame_seal(b, &h, pl, 10, buf,
						  sizeof(buf), &n));
	ASSERT_EQ(0, auth_transcript_begin(b, 3));
	ASSERT_EQ(0, frame_seal(b, &h, pl, 10, old, sizeof(old), &on));
	ASSERT_EQ(QKD_AUTH_E_TR_STATE, frame_open(a, old, on, &f));
	auth_get_stats(a, &st);
	ASSERT_EQ(1, st.failures_total);
	auth_free(a);
	/* a frame of round 3 reaching an end already in round 4: skipped */
	a = ctx(QKD_AUTH_INITIATOR);
	ASSERT_EQ(0, auth_transcript_begin(a, 4));
	ASSERT_EQ(0, frame_open(a, old, on, &f));
	ASSERT_EQ(3, f.hdr.round_id);
	/* ... and not folded in: round 4 still verifies */
	ASSERT_EQ(0, auth_transcript_begin(b, 4));
	{
		struct frame_hdr c = { .type = QKD_MSG_VERIFY_HASH,
				       .flags = QKD_FRAME_F_TRANSCRIPT,
				       .round_id = 4 };

		ASSERT_EQ(0, frame_seal(b, &c, pl, 10, buf, sizeof(buf), &n));
		ASSERT_EQ(0, frame_open(a, buf, n, &f));
		ASSERT_EQ(QKD_AUTH_TR_OPEN | QKD_AUTH_TR_VERIFIED,
			  auth_transcript_state(a, 4));
	}
	/* a frame of a later round: refused */
	h.round_id = 9;
	ASSERT_EQ(0, auth_transcript_begin(b, 9));
	ASSERT_EQ(0, frame_seal(b, &h, pl, 10, buf, sizeof(buf), &n));
	ASSERT_EQ(QKD_AUTH_E_TR_STATE, frame_open(a, buf, n, &f));
	auth_free(a);
	auth_free(b);
}

/* The closing hash, evaluated block by block with auth_gf128_mul. */
TEST(closing_tag_is_the_documented_polynomial)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER);
	struct frame_hdr d = { .type = QKD_MSG_EST_SAMPLE,
			       .flags = QKD_FRAME_F_DEFERRED, .round_id = 2 };
	struct frame_hdr c = { .type = QKD_MSG_PA_SEED,
			       .flags = QKD_FRAME_F_TRANSCRIPT, .round_id = 2 };
	uint8_t pl[40], f0[128], f1[128], f2[128], enc[512], tag[16];
	struct auth_u128 h, acc = { 0, 0 };
	size_t n0, n1, n2, e = 0;
	struct frame f;

	for (int i = 0; i < 40; i++)
		pl[i] = (uint8_t)(i * 3);
	auth_transcript_begin(a, 2);
	auth_transcript_begin(b, 2);
	ASSERT_EQ(0, frame_seal(a, &d, pl, 17, f0, sizeof(f0), &n0)); /* I2R */
	ASSERT_EQ(0, frame_open(b, f0, n0, &f));
	ASSERT_EQ(0, frame_seal(b, &d, pl, 5, f1, sizeof(f1), &n1));  /* R2I */
	ASSERT_EQ(0, frame_open(a, f1, n1, &f));
	ASSERT_EQ(0, frame_seal(a, &c, pl, 40, f2, sizeof(f2), &n2));
	/* I2R stream (f0, 49 bytes -> 4 blocks), R2I (f1, 37 -> 3), the
	 * closing frame (72 -> 5), [4, 3], [2^63 + 72, seq 1] */
	memset(enc, 0, sizeof(enc));
	memcpy(enc, f0, n0 - 16);
	e = 64;
	memcpy(enc + e, f1, n1 - 16);
	e += 48;
	memcpy(enc + e, f2, n2 - 16);
	e += 80;
	enc[e + 7] = 4;
	enc[e + 15] = 3;
	e += 16;
	enc[e] = 0x80;
	enc[e + 7] = 72;
	enc[e + 15] = 1;
	e += 16;
	h.hi = h.lo = 0;
	for (int i = 0; i < 8; i++) {
		h.hi = (h.hi << 8) | g_key[i];
		h.lo = (h.lo << 8) | g_key[8 + i];
	}
	for (size_t off = 0; off < e; off += 16) {
		uint64_t hi = 0, lo = 0;

		for (int i = 0; i < 8; i++) {
			hi = (hi << 8) | enc[off + i];
			lo = (lo << 8) | enc[off + 8 + i];
		}
		acc.hi ^= hi;
		acc.lo ^= lo;
		auth_gf128_mul(&acc, &acc, &h);
	}
	/* the pad: the first chunk of the I2R pool (chunks alternate) */
	for (int i = 0; i < 8; i++) {
		tag[i] = (uint8_t)(acc.hi >> (56 - 8 * i)) ^
			 g_key[QKD_AUTH_KEY_HDR_LEN + i];
		tag[8 + i] = (uint8_t)(acc.lo >> (56 - 8 * i)) ^
			     g_key[QKD_AUTH_KEY_HDR_LEN + 8 + i];
	}
	ASSERT_EQ(0, memcmp(tag, f2 + n2 - 16, 16));
	ASSERT_EQ(0, frame_open(b, f2, n2, &f));
	auth_free(a);
	auth_free(b);
}

TEST(state_file_restores_past_the_recorded_position)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER), *a2;
	struct auth_position pa, pb;
	uint8_t *buf, data[16] = "hello", tag[16];
	size_t len;
	int err;

	for (int i = 0; i < 10; i++) {
		uint64_t seq = auth_next_send_seq(a);

		ASSERT_EQ(0, auth_seal(a, seq, data, 5, tag));
		ASSERT_EQ(0, auth_verify(b, seq, data, 5, tag));
	}
	ASSERT_EQ(0, auth_state_export(a, &buf, &len));
	a2 = auth_state_import(buf, len, NULL, &err);
	ASSERT_NE(NULL, a2);
	auth_key_free(buf, len);
	auth_get_position(a2, &pa);
	auth_get_position(b, &pb);
	/* without a persist hook the position is the current one */
	ASSERT_EQ(pb.pos[0], pa.pos[0]);
	ASSERT_EQ(pb.end[0], pa.end[0]);
	ASSERT_EQ(pb.end[1], pa.end[1]);
	/* the restored context goes on in step with the peer */
	auth_session_start(a2);
	auth_session_start(b);
	ASSERT_EQ(0, auth_seal(a2, 0, data, 5, tag));
	ASSERT_EQ(0, auth_verify(b, 0, data, 5, tag));
	auth_free(a2);
	/* malformed state: refused */
	ASSERT_EQ(0, auth_state_export(a, &buf, &len));
	buf[3] ^= 1;
	ASSERT_EQ(NULL, auth_state_import(buf, len, NULL, &err));
	ASSERT_EQ(QKD_AUTH_E_STATE, err);
	buf[3] ^= 1;
	ASSERT_EQ(NULL, auth_state_import(buf, len - 16, NULL, &err));
	auth_key_free(buf, len);
	auth_free(a);
	auth_free(b);
}

static int g_saves;
static struct auth_ctx *g_pctx;
static uint8_t *g_saved;
static size_t g_saved_len;

static int save_cb(void *arg)
{
	(void)arg;
	g_saves++;
	auth_key_free(g_saved, g_saved_len);
	return auth_state_export(g_pctx, &g_saved, &g_saved_len) ? -1 : 0;
}

TEST(write_ahead_never_reuses_a_pad_after_a_crash)
{
	struct auth_ctx *a = ctx(QKD_AUTH_INITIATOR);
	struct auth_ctx *b = ctx(QKD_AUTH_RESPONDER), *a2;
	struct auth_position pa, pb;
	uint64_t target[2];
	uint8_t data[5] = "hello", tag[16], used[12][16];
	int err;

	g_pctx = a;
	g_saves = 0;
	auth_set_persist(a, save_cb, NULL, 4);
	for (int i = 0; i < 10; i++) {
		uint64_t seq = auth_next_send_seq(a);

		ASSERT_EQ(0, auth_seal(a, seq, data, 5, used[i]));
		ASSERT_EQ(0, auth_verify(b, seq, data, 5, used[i]));
	}
	/* pads 0..9 used, recorded positions 4, 8, 12: three writes */
	ASSERT_EQ(3, g_saves);
	/* the crash: memory lost, the last file written survives */
	auth_free(a);
	a2 = auth_state_import(g_saved, g_saved_len, NULL, &err);
	ASSERT_NE(NULL, a2);
	auth_get_position(a2, &pa);
	auth_get_position(b, &pb);
	ASSERT_EQ(12, pa.pos[0]);	/* past every pad used */
	ASSERT_EQ(10, pb.pos[0]);
	/* re-align: both take the larger position of each pool */
	for (int d = 0; d < 2; d++)
		target[d] = pa.pos[d] > pb.pos[d] ? pa.pos[d] : pb.pos[d];
	ASSERT_EQ(QKD_AUTH_E_STATE, auth_skip_to(b, target, 1));
	ASSERT_EQ(0, auth_skip_to(b, target, 64));
	ASSERT_EQ(0, auth_skip_to(a2, target, 64));
	auth_session_start(a2);
	auth_session_start(b);
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, auth_seal(a2, (uint64_t)i, data, 5, tag));
		ASSERT_EQ(0, auth_verify(b, (uint64_t)i, data, 5, tag));
		/* a pad used before the crash would give an old tag */
		for (int j = 0; j < 10; j++)
			ASSERT_NE(0, memcmp(tag, used[j], 16));
	}
	/* a skip beyond the pool is refused */
	target[0] = pb.end[0] + 1;
	ASSERT_EQ(QKD_AUTH_E_STATE, auth_skip_to(b, target, UINT64_MAX));
	auth_key_free(g_saved, g_saved_len);
	g_saved = NULL;
	auth_free(a2);
	auth_free(b);
}

TEST_HARNESS_MAIN
