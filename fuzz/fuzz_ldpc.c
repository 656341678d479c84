// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the LDPC reconciliation messages
 * (userspace/protocol/ldpc.c): once qkdd uses them they arrive, like
 * Cascade's, before the round's transcript tag is checked. The first
 * input byte picks the parser, the rest is the message:
 *   0  qkd_ldpc_params_decode()   the 40-byte parameters
 *   1  qkd_ldpc_bob_handle()      Alice's SYNDROME (its length in the next
 *                                 two bytes, little endian), then the rest
 *                                 as a REVEAL
 *   2  qkd_ldpc_alice_handle()    Bob's MORE, after Alice's SYNDROME
 * Checks, besides memory safety:
 *  - a refusal is -EPROTO with a reason, and changes nothing: Bob's frames
 *    stay pending, his keys as they were and his leak 0 (the first
 *    message); Alice's leak and reveal count stay as before;
 *  - accepted parameters pass qkd_ldpc_params_check() and encode back to
 *    the same 40 bytes;
 *  - Bob never claims a frame corrected whose key is not Alice's (the
 *    syndrome and the frame's tag both matched: a forged message can make
 *    frames fail, never make a wrong one pass).
 * One small code (2 frames of 1024 bits, 12 iterations), built once.
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/bits.h"
#include "qkd/ldpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)
#define NBITS		1024
#define NFRAMES		2
#define WORDS		(NBITS / 64)

static struct qkd_ldpc_params par;
static struct qkd_ldpc_code *code;
/* Alice's keys, and Bob's: Alice's with a few errors */
static uint64_t ka[NFRAMES][WORDS], kb[NFRAMES][WORDS];

static void setup(void)
{
	uint64_t x = 0x9e3779b97f4a7c15ull;

	if (code)
		return;
	CHECK(!qkd_ldpc_default_params(&par, NBITS, NFRAMES, 0.03, 7));
	/* few iterations: the parsers are the target, not the decoder's
	 * convergence (the seeds' frames still decode) */
	par.max_iter = 12;
	code = qkd_ldpc_code_new(&par);
	CHECK(code);
	for (int f = 0; f < NFRAMES; f++)
		for (int w = 0; w < WORDS; w++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			ka[f][w] = x;
			kb[f][w] = x ^ (w % 5 == f ? 1ull << (w % 64) : 0);
		}
}

static void fuzz_params(const uint8_t *d, size_t n)
{
	struct qkd_ldpc_params p;
	uint8_t enc[QKD_LDPC_PARAMS_LEN];
	const char *why = NULL;
	int r = qkd_ldpc_params_decode(&p, d, n, &why);

	if (r) {
		CHECK((r == -EPROTO || r == -EINVAL) && why && *why);
		return;
	}
	CHECK(n == QKD_LDPC_PARAMS_LEN);
	CHECK(!qkd_ldpc_params_check(&p, NULL));
	CHECK(qkd_ldpc_params_encode(&p, enc) == QKD_LDPC_PARAMS_LEN);
	CHECK(!memcmp(enc, d, QKD_LDPC_PARAMS_LEN));
}

static void fuzz_bob(const uint8_t *d, size_t n)
{
	uint64_t k[NFRAMES][WORDS];
	uint64_t *keys[NFRAMES];
	struct qkd_ldpc_msg out = { 0 };
	const char *why = NULL;
	struct qkd_ldpc_bob *b;
	size_t cut = n;
	int r;

	if (n < 2)
		return;
	cut = (size_t)d[0] | (size_t)d[1] << 8;
	d += 2;
	n -= 2;
	cut = cut > n ? n : cut;
	memcpy(k, kb, sizeof(k));
	for (int f = 0; f < NFRAMES; f++)
		keys[f] = k[f];
	b = qkd_ldpc_bob_new(code, &par, keys);
	CHECK(b);
	r = qkd_ldpc_bob_handle(b, d, cut, &out, &why);
	if (r < 0) {
		CHECK(r == -EPROTO && why && *why);
		CHECK(!memcmp(k, kb, sizeof(k)));
		for (uint32_t f = 0; f < NFRAMES; f++) {
			CHECK(qkd_ldpc_bob_frame_state(b, f) ==
			      QKD_LDPC_FRAME_PENDING);
			CHECK(qkd_ldpc_bob_frame_leak(b, f) == 0);
		}
		goto out;
	}
	if (r == 1 && cut < n)	/* the rest as a REVEAL */
		r = qkd_ldpc_bob_handle(b, d + cut, n - cut, &out, &why);
	CHECK(r >= 0 || (r == -EPROTO && why && *why));
	for (uint32_t f = 0; f < NFRAMES; f++) {
		/* a corrected frame is Alice's (tag over her key) */
		if (qkd_ldpc_bob_frame_state(b, f) == QKD_LDPC_FRAME_OK)
			CHECK(!memcmp(k[f], ka[f], sizeof(k[f])));
		else
			CHECK(!memcmp(k[f], kb[f], sizeof(k[f])));
	}
out:
	qkd_ldpc_msg_free(&out);
	qkd_ldpc_bob_free(b);
}

static void fuzz_alice(const uint8_t *d, size_t n)
{
	const uint64_t *keys[NFRAMES];
	struct qkd_ldpc_msg syn = { 0 }, out = { 0 };
	struct qkd_ldpc_stats s0, s1;
	const char *why = NULL;
	struct qkd_ldpc_alice *a;
	int r;

	for (int f = 0; f < NFRAMES; f++)
		keys[f] = ka[f];
	a = qkd_ldpc_alice_new(code, &par, keys);
	CHECK(a);
	CHECK(!qkd_ldpc_alice_syndrome(a, &syn));
	qkd_ldpc_alice_stats(a, &s0);
	r = qkd_ldpc_alice_handle(a, d, n, &out, &why);
	qkd_ldpc_alice_stats(a, &s1);
	if (r) {
		CHECK(r == -EPROTO && why && *why);
		CHECK(s1.leak_bits == s0.leak_bits && s1.steps == s0.steps);
	} else {
		/* a reveal discloses more, never less */
		CHECK(s1.leak_bits > s0.leak_bits && s1.steps == s0.steps + 1);
	}
	qkd_ldpc_msg_free(&syn);
	qkd_ldpc_msg_free(&out);
	qkd_ldpc_alice_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	setup();
	switch (data[0] % 3) {
	case 0:
		fuzz_params(data + 1, size - 1);
		break;
	case 1:
		fuzz_bob(data + 1, size - 1);
		break;
	default:
		fuzz_alice(data + 1, size - 1);
		break;
	}
	return 0;
}
