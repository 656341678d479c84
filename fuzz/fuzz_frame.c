// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the classical-channel frame parser (frame.c) and the
 * authenticated open path (auth.c). Checks, besides memory safety:
 *  - a frame that parses re-serializes to exactly the same bytes;
 *  - frame_open() never accepts what frame_parse() rejects;
 *  - the stream reader (frame_recv_open over a memfd) consumes only whole,
 *    valid frames, and never more bytes than there are.
 * Build and run with fuzz/run.sh.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/frame.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t key[FUZZ_KEYLEN];
static int memfd = -1;

static int hdr_eq(const struct frame_hdr *x, const struct frame_hdr *y)
{
	return x->version == y->version && x->type == y->type &&
	       x->flags == y->flags && x->session_id == y->session_id &&
	       x->round_id == y->round_id && x->seq == y->seq &&
	       x->payload_len == y->payload_len;
}

static void check_parse(const uint8_t *data, size_t size)
{
	struct frame f, g;
	struct frame_hdr h;
	uint8_t *out;
	size_t n = 0;
	int r = frame_parse(data, size, &f);

	if (r > 0 || r < QKD_FRAME_E_PAYLOAD)
		__builtin_trap();
	if (r)
		return;
	if (frame_parse_header(data, size, &h) || !hdr_eq(&h, &f.hdr))
		__builtin_trap();
	if (size != frame_wire_len(f.hdr.payload_len) ||
	    f.hdr.payload_len > QKD_FRAME_MAX_PAYLOAD)
		__builtin_trap();
	out = malloc(size);
	if (!out)
		abort();
	if (frame_serialize(&f.hdr, f.payload, f.tag, out, size, &n) ||
	    n != size || memcmp(out, data, size))
		__builtin_trap();
	if (frame_parse(out, n, &g) || !hdr_eq(&g.hdr, &f.hdr))
		__builtin_trap();
	free(out);
	if (f.hdr.type == QKD_MSG_ABORT) {
		uint16_t reason;
		char text[64];

		if (frame_abort_decode(f.payload, f.hdr.payload_len, &reason,
				       text, sizeof(text)) ||
		    reason > QKD_ABORT__MAX || strlen(text) >= sizeof(text))
			__builtin_trap();
	}
}

static void check_open(const uint8_t *data, size_t size)
{
	struct auth_ctx *a = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key),
				      NULL, NULL);
	struct frame f;
	int parsed, opened;

	if (!a)
		abort();
	parsed = frame_parse(data, size, &f);
	opened = frame_open(a, data, size, &f);
	if (parsed && opened == QKD_FRAME_OK)
		__builtin_trap();
	auth_free(a);
}

static void check_stream(const uint8_t *data, size_t size)
{
	static uint8_t buf[QKD_FRAME_OVERHEAD + 65536];
	struct auth_ctx *a;
	size_t consumed = 0, n;
	struct frame f;

	if (memfd < 0) {
		memfd = memfd_create("fuzz_frame", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
	}
	if (ftruncate(memfd, 0) || pwrite(memfd, data, size, 0) != (ssize_t)size ||
	    lseek(memfd, 0, SEEK_SET) != 0)
		abort();
	a = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
	if (!a)
		abort();
	for (;;) {
		int r = frame_recv_open(memfd, a, buf, sizeof(buf), &n, &f);

		if (r)
			break;
		consumed += n;
		if (consumed > size || n != frame_wire_len(f.hdr.payload_len) ||
		    memcmp(buf, data + consumed - n, n))
			__builtin_trap();
	}
	auth_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!key[0] && !key[1])
		fuzz_key(key);
	check_parse(data, size);
	check_open(data, size);
	check_stream(data, size);
	return 0;
}
