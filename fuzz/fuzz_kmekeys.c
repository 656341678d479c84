// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for qkdd's parser of a vendor KME's answers
 * (userspace/qkdd/kme_parse.c, --key-source etsi014): the first byte picks
 * one, the second the count asked for, the rest is the body.
 *  0  a Key container of enc_keys (count 1..8 keys of 16 bytes): a success
 *     has exactly count keys with distinct, valid key_IDs; a failure has a
 *     reason and leaves nothing
 *  1  the same for dec_keys with the key_IDs "k0".."k7" asked for: a
 *     success has them in the order asked
 *  2  Status: a success has max_key_per_request >= 1, min <= max size
 *  3  an Error's message: printable, bounded
 * Build and run with fuzz/run.sh.
 */
#include <stdio.h>
#include <string.h>

#include "../userspace/qkdd/qkdd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + 2;
	uint32_t count;
	kme_key_id want[8];
	struct kme_keys k;
	struct kme_status st;
	char err[200], msg[64];
	int r;

	if (size < 2)
		return 0;
	count = data[1] % 8 + 1;
	size -= 2;
	err[0] = '\0';
	switch (data[0] % 4) {
	case 0:
	case 1:
		for (uint32_t i = 0; i < 8; i++)
			snprintf(want[i], sizeof(want[i]), "k%u", i);
		r = kme_parse_keys(body, size, count, 16,
				   data[0] % 4 ? want : NULL, &k, err,
				   sizeof(err));
		if (r) {
			CHECK(err[0] && !k.keys && !k.ids && !k.count);
			break;
		}
		CHECK(k.count == count && k.key_size == 16);
		for (uint32_t i = 0; i < count; i++) {
			CHECK(kme_key_id_ok(k.ids[i], strlen(k.ids[i])));
			if (data[0] % 4)
				CHECK(!strcmp(k.ids[i], want[i]));
			for (uint32_t j = 0; j < i; j++)
				CHECK(strcmp(k.ids[i], k.ids[j]));
		}
		kme_keys_free(&k);
		break;
	case 2:
		r = kme_parse_status(body, size, &st, err, sizeof(err));
		CHECK(r ? err[0] != 0 :
		      st.max_key_per_request >= 1 &&
		      st.min_key_size <= st.max_key_size);
		break;
	default:
		kme_parse_message(body, size, msg, sizeof(msg));
		for (size_t i = 0; msg[i]; i++)
			CHECK(msg[i] >= 0x20 && msg[i] <= 0x7e);
		break;
	}
	return 0;
}
