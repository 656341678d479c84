// SPDX-License-Identifier: GPL-2.0-only
/*
 * Writes the seed corpus of fuzz_frame into the directory given: one
 * authenticated frame of every message type (sealed with the fuzzing key, so
 * frame_open accepts them), a stream of several frames, and a few
 * near-misses. Nothing binary is kept in the tree; run.sh calls this.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/auth.h"
#include "qkd/frame.h"
#include "fuzz_common.h"

static int put(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		perror(path);
		return -1;
	}
	return 0;
}

static struct auth_ctx *ctx(const uint8_t *key)
{
	int e;
	struct auth_ctx *a = auth_new(QKD_AUTH_INITIATOR, key, FUZZ_KEYLEN,
				      NULL, &e);

	if (!a) {
		fprintf(stderr, "auth_new: %s\n", auth_strerror(e));
		exit(1);
	}
	return a;
}

int main(int argc, char **argv)
{
	static const uint32_t lens[QKD_MSG__MAX + 1] = {
		[QKD_MSG_HELLO] = 24, [QKD_MSG_SIFT_BASES] = 96,
		[QKD_MSG_EST_SAMPLE] = 40, [QKD_MSG_CASCADE_REQ] = 12,
		[QKD_MSG_CASCADE_ANS] = 2, [QKD_MSG_VERIFY_HASH] = 16,
		[QKD_MSG_PA_SEED] = 64, [QKD_MSG_KEY_CONFIRM] = 16,
		[QKD_MSG_KEY_COMMIT] = 8, [QKD_MSG_ABORT] = 0,
		[QKD_MSG_KEEPALIVE] = 0,
		[QKD_MSG_KME_IDS] = 64, [QKD_MSG_KME_CONFIRM] = 16,
		[QKD_MSG_ROOM_QUERY] = 8, [QKD_MSG_ROOM] = 8,
		[QKD_MSG_LDPC_MORE] = 20, [QKD_MSG_LDPC_REVEAL] = 24,
		[QKD_MSG_EC_DISCLOSE_REQ] = 8, [QKD_MSG_EC_DISCLOSE] = 32,
		[QKD_MSG_PA_SEED_PART] = 40,
	};
	uint8_t key[FUZZ_KEYLEN], pl[256], out[1024], stream[4096];
	size_t n, sn = 0;
	uint32_t plen;
	struct auth_ctx *a, *s;
	char name[64];

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	fuzz_key(key);
	for (size_t i = 0; i < sizeof(pl); i++)
		pl[i] = (uint8_t)(i * 7 + 3);
	s = ctx(key);
	for (unsigned int t = 1; t <= QKD_MSG__MAX; t++) {
		struct frame_hdr h = { .type = (uint8_t)t, .session_id = 0x51,
				       .round_id = t };

		plen = lens[t];
		if (t == QKD_MSG_ABORT &&
		    frame_abort_encode(QKD_ABORT_QBER_HIGH, "QBER 0.12", pl,
				       sizeof(pl), &plen))
			return 1;
		if (t == QKD_MSG_SIFT_BASES)
			h.flags = QKD_FRAME_F_MORE;
		a = ctx(key);
		if (frame_seal(a, &h, pl, plen, out, sizeof(out), &n))
			return 1;
		auth_free(a);
		snprintf(name, sizeof(name), "type-%02u-%s", t,
			 frame_type_name(t));
		if (put(argv[1], name, out, n))
			return 1;
		/* the same types in one stream, seq 0, 1, 2, ... */
		if (frame_seal(s, &h, pl, plen, stream + sn,
			       sizeof(stream) - sn, &n))
			return 1;
		sn += n;
	}
	auth_free(s);
	if (put(argv[1], "stream-all-types", stream, sn) ||
	    put(argv[1], "stream-truncated", stream, sn - 5) ||
	    put(argv[1], "header-only", stream, QKD_FRAME_HDR_LEN) ||
	    put(argv[1], "empty", stream, 0))
		return 1;
	/* a frame with a wrong tag */
	a = ctx(key);
	{
		struct frame_hdr h = { .type = QKD_MSG_VERIFY_HASH };

		if (frame_seal(a, &h, pl, 32, out, sizeof(out), &n))
			return 1;
	}
	auth_free(a);
	out[n - 1] ^= 1;
	if (put(argv[1], "bad-tag", out, n))
		return 1;
	printf("seed corpus: %u files in %s\n", QKD_MSG__MAX + 5, argv[1]);
	return 0;
}
