// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for Cascade's message parsers (userspace/protocol/
 * cascade.c), what an attacker on the classical channel sends before the
 * round's transcript tag is checked:
 *
 *  - Alice's qkd_cascade_alice_handle() fed any request: it is refused
 *    (-EPROTO) or answered, and then the answer holds exactly the bits it
 *    counts (12-byte head, the le32 count, the bits, zero padding) and
 *    every bit sent is counted, in total and per frame;
 *  - Bob's qkd_cascade_bob_reply() fed any answer to his first request
 *    (all frames' tops of every pass, the batch of issue 16), with the
 *    header and count made right for half of the inputs so that the bits
 *    themselves reach him: refused or taken, and then the rest of the run,
 *    answered by an honest Alice, ends (frames given up or corrected)
 *    within a bounded number of round trips, with nothing read or written
 *    out of bounds.
 *
 * The first input byte picks the side and the variant's flags. Build and
 * run with fuzz/run.sh.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <qkd/bitvec.h>
#include <qkd/cascade.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)
#define NBITS		4096
#define NFRAMES		2

static uint64_t ka[NFRAMES][NBITS / 64], kb[NFRAMES][NBITS / 64];

static void keys(uint32_t seed)
{
	uint64_t x = seed | 1;

	for (int f = 0; f < NFRAMES; f++)
		for (int i = 0; i < NBITS / 64; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			ka[f][i] = x;
			/* about 2 % of Bob's bits differ */
			kb[f][i] = x ^ ((x * 0x9e3779b97f4a7c15ULL) &
					(x >> 3) & (x >> 7) & (x >> 11) &
					(x >> 17) & (x >> 23));
		}
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		(uint32_t)p[3] << 24;
}

static void fuzz_alice(struct qkd_cascade_alice *a, const uint8_t *req,
		       size_t len)
{
	struct qkd_cascade_msg out = { 0 };
	struct qkd_cascade_stats s0, s1;
	uint64_t nbits, sum = 0;
	int r;

	qkd_cascade_alice_stats(a, &s0);
	r = qkd_cascade_alice_handle(a, req, len, &out);
	CHECK(r == 0 || r == -EPROTO);
	qkd_cascade_alice_stats(a, &s1);
	if (r) {
		CHECK(s1.disclosed_bits == s0.disclosed_bits);
		CHECK(s1.rounds == s0.rounds);
	} else {
		CHECK(out.len >= 12 && out.data[0] == 2);
		nbits = le32(out.data + 8);
		CHECK(out.len == 12 + (nbits + 7) / 8);
		CHECK(!(nbits % 8) || !(out.data[out.len - 1] >> (nbits % 8)));
		CHECK(s1.disclosed_bits == s0.disclosed_bits + nbits);
		CHECK(s1.rounds == s0.rounds + 1);
		for (uint32_t f = 0; f < NFRAMES; f++)
			sum += qkd_cascade_alice_frame_disclosed(a, f);
		CHECK(sum == s1.disclosed_bits);
	}
	qkd_cascade_msg_free(&out);
}

static void fuzz_bob(struct qkd_cascade_alice *a, struct qkd_cascade_bob *b,
		     const uint8_t *data, size_t size, int fix)
{
	struct qkd_cascade_msg req = { 0 }, out = { 0 };
	uint8_t *reply;
	size_t len;
	int r, rounds = 0;

	CHECK(qkd_cascade_bob_request(b, &req) == 1);
	/* Alice answers round 0 so that she can go on with Bob */
	CHECK(qkd_cascade_alice_handle(a, req.data, req.len, &out) == 0);
	len = fix ? out.len : size;
	reply = malloc(len ? len : 1);
	CHECK(reply);
	if (fix) {
		/* header and count right, the bits from the input */
		memcpy(reply, out.data, 12);
		memset(reply + 12, 0, len - 12);
		memcpy(reply + 12, data, size < len - 12 ? size : len - 12);
		if (le32(out.data + 8) % 8)
			reply[len - 1] &= (uint8_t)((1u << (le32(out.data + 8) %
							    8)) - 1);
	} else {
		memcpy(reply, data, len);
	}
	r = qkd_cascade_bob_reply(b, reply, len);
	free(reply);
	CHECK(r == 0 || r == -EPROTO);
	if (r)
		goto out;
	while ((r = qkd_cascade_bob_request(b, &req)) == 1) {
		CHECK(++rounds < 20000);
		r = qkd_cascade_alice_handle(a, req.data, req.len, &out);
		/* a Bob misled by forged tops still only asks what parses */
		CHECK(r == 0 || r == -EPROTO);
		if (r)
			break;
		CHECK(qkd_cascade_bob_reply(b, out.data, out.len) == 0);
	}
	CHECK(r >= 0 || r == -EPROTO);
out:
	qkd_cascade_msg_free(&req);
	qkd_cascade_msg_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_cascade_params p;
	struct qkd_cascade_alice *a;
	struct qkd_cascade_bob *b;
	const uint64_t *pa[NFRAMES] = { ka[0], ka[1] };
	uint64_t *pb[NFRAMES] = { kb[0], kb[1] };
	uint8_t mode;

	if (!size)
		return 0;
	mode = data[0];
	data++;
	size--;
	keys(mode);
	qkd_cascade_daemon_params(&p, NBITS, NFRAMES, 0.02, 7);
	if (mode & 2)
		p.flags &= ~QKD_CASCADE_F_PIPELINE;
	if (mode & 4)
		p.flags &= ~QKD_CASCADE_F_PARALLEL;
	a = qkd_cascade_alice_new(&p, pa);
	b = qkd_cascade_bob_new(&p, pb);
	CHECK(a && b);
	if (mode & 1)
		fuzz_bob(a, b, data, size, mode & 8);
	else
		fuzz_alice(a, data, size);
	qkd_cascade_alice_free(a);
	qkd_cascade_bob_free(b);
	return 0;
}
