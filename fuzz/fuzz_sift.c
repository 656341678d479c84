// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for Bob's sparse SIFT_BASES (HELLO version 8): the
 * announcement parser qkd_sift_announce_decode() and the gap-list decoder
 * under it (userspace/protocol/sifting.c). The first 4 input bytes give
 * the round's pulse count (little endian, 0 included), the rest is the
 * message. Checks, besides memory safety:
 *  - a refusal is -EBADMSG with a reason, and allocates nothing;
 *  - an accepted announcement has at most the detections asked for, pulse
 *    indices strictly increasing below the pulse count, no basis bit past
 *    the last detection, and encodes back to exactly the input bytes (one
 *    list, one byte string: what the transcript authenticates is what
 *    both ends sift);
 *  - sifting Bob's side of it (qkd_sift_det() with the bases as both
 *    ends') keeps every detection, in order.
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/channel.h"
#include "qkd/sifting.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)
#define MAX_DET		4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_sift_announce an;
	struct qkd_det_records b = { 0 };
	struct qkd_sifted s;
	const char *why = NULL;
	uint64_t npulses = 0;
	uint8_t *enc;
	size_t len;
	int r;

	if (size < 4)
		return 0;
	for (int i = 3; i >= 0; i--)
		npulses = npulses << 8 | data[i];
	data += 4;
	size -= 4;
	r = qkd_sift_announce_decode(data, size, npulses, MAX_DET, &an, &why);
	if (r) {
		CHECK(r == -EBADMSG && why && *why);
		CHECK(!an.pulse && !an.basis && !an.n);
		return 0;
	}
	CHECK(an.n <= MAX_DET && an.n <= npulses);
	b.npulses = npulses;
	for (size_t i = 0; i < an.n; i++) {
		struct qkd_det_rec e = {
			.pulse = an.pulse[i],
			.basis = (uint8_t)qkd_bit_get(an.basis, i),
		};

		CHECK(an.pulse[i] < npulses);
		CHECK(!i || an.pulse[i] > an.pulse[i - 1]);
		CHECK(qkd_det_records_push(&b, &e) == 0);
	}
	for (size_t i = an.n; i < qkd_bits_words(an.n) * 64; i++)
		CHECK(!qkd_bit_get(an.basis, i));
	CHECK(qkd_sift_announce_encode(&b, &enc, &len) == 0);
	CHECK(len == size && !memcmp(enc, data, size));
	free(enc);
	CHECK(qkd_sift_det(&b, an.basis, NULL, &s) == 0);
	CHECK(s.n == an.n);
	for (size_t i = 0; i < s.n; i++)
		CHECK(s.pos[i] == an.pulse[i]);
	qkd_sifted_free(&s);
	qkd_det_records_free(&b);
	qkd_sift_announce_free(&an);
	return 0;
}
