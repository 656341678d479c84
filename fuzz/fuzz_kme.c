// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for qkd-kme's parsers (userspace/kme/json.c and
 * config.c): the first byte picks one, the rest is its input.
 *  0  a Key request (enc_keys body): a failure has a message; a success
 *     has number >= 1 and counts what keys.c refuses (additional slave
 *     SAEs, mandatory extensions);
 *  1  Key IDs (dec_keys body, at most 4): a success has 1..4 distinct
 *     key_IDs;
 *  2  the configuration file: a failure has a message; a success has a
 *     valid kme-id, a pair, valid IDs, pairs whose streams differ in their
 *     first 9 bytes, and parses the same again;
 *  3  a Key container of the input as keys of 16 bytes: it parses back
 *     with json-c, and each key decodes to its bytes.
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qkd/util.h"
#include "../userspace/kme/kme.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)

static void key_request(const char *s, size_t n)
{
	struct kme_key_request r;
	char err[256] = "";

	if (kme_json_key_request(s, n, &r, err, sizeof(err))) {
		CHECK(err[0]);
		return;
	}
	CHECK(r.number >= 1);
	CHECK(!r.n_mandatory == !r.mandatory[0] || r.n_mandatory);
	CHECK(memchr(r.mandatory, '\0', sizeof(r.mandatory)));
}

static void key_ids(const char *s, size_t n)
{
	struct kme_key_ids *r = malloc(sizeof(*r));
	char err[256] = "";
	size_t i, j;

	CHECK(r);
	if (kme_json_key_ids(s, n, 4, r, err, sizeof(err))) {
		CHECK(err[0]);
	} else {
		CHECK(r->n >= 1 && r->n <= 4);
		for (i = 0; i < r->n; i++)
			for (j = i + 1; j < r->n; j++)
				CHECK(memcmp(r->ids[i], r->ids[j], QKD_KEY_ID_LEN));
	}
	free(r);
}

static void config(const char *s, size_t n)
{
	struct kme_config *c = malloc(sizeof(*c)), *c2 = malloc(sizeof(*c2));
	char err[256] = "";
	size_t i, j;

	CHECK(c && c2);
	kme_config_default(c);
	if (kme_config_parse(c, s, n, err, sizeof(err))) {
		CHECK(err[0]);
		goto out;
	}
	CHECK(kme_id_valid(c->kme_id));
	CHECK(c->n_pairs >= 1 && c->n_pairs <= KME_MAX_PAIRS);
	CHECK(c->port >= 1 && c->port <= 65535);
	CHECK(c->max_keys_per_request >= 1 && c->max_keys_per_request <= QKD_GET_KEYS_MAX);
	for (i = 0; i < c->n_saes; i++)
		CHECK(kme_id_valid(c->saes[i].id) && c->saes[i].ident[0]);
	for (i = 0; i < c->n_pairs; i++) {
		const struct kme_pair *p = &c->pairs[i];

		CHECK(kme_id_valid(p->master) && kme_id_valid(p->slave));
		CHECK(strcmp(p->master, p->slave));
		CHECK(kme_pair_find(c, p->master, p->slave) == p);
		for (j = i + 1; j < c->n_pairs; j++)
			CHECK(memcmp(p->stream, c->pairs[j].stream, 9));
	}
	kme_config_default(c2);
	CHECK(!kme_config_parse(c2, s, n, err, sizeof(err)));
	CHECK(!memcmp(c, c2, sizeof(*c)));
out:
	free(c);
	free(c2);
}

static void container(const uint8_t *d, size_t n)
{
	size_t k = n / 16, i;
	uint8_t (*ids)[QKD_KEY_ID_LEN];
	struct json_object *o, *arr;
	struct kme_reply rep;

	if (!k || k > QKD_GET_KEYS_MAX)
		return;
	ids = calloc(k, QKD_KEY_ID_LEN);
	CHECK(ids);
	for (i = 0; i < k; i++)
		memcpy(ids[i], d + ((i * 7) % (n - 15)), QKD_KEY_ID_LEN);
	CHECK(!kme_json_key_container(d, 16, k, (const uint8_t (*)[QKD_KEY_ID_LEN])ids, &rep));
	CHECK(rep.len == strlen(rep.body));
	o = json_tokener_parse(rep.body);
	CHECK(o && json_object_object_get_ex(o, "keys", &arr));
	CHECK(json_object_array_length(arr) == k);
	for (i = 0; i < k; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *v;
		uint8_t back[16], id[QKD_KEY_ID_LEN];
		const char *b64;

		CHECK(json_object_object_get_ex(e, "key", &v));
		b64 = json_object_get_string(v);
		CHECK(qkd_base64_decode(b64, strlen(b64), back, sizeof(back)) == 16);
		CHECK(!memcmp(back, d + i * 16, 16));
		CHECK(json_object_object_get_ex(e, "key_ID", &v));
		CHECK(!qkd_uuid_parse(json_object_get_string(v), id));
		CHECK(!memcmp(id, ids[i], QKD_KEY_ID_LEN));
	}
	json_object_put(o);
	kme_reply_free(&rep);
	free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (!size)
		return 0;
	/* the parsers take a length; a copy so that reading past it traps */
	s = malloc(size - 1 ? size - 1 : 1);
	CHECK(s);
	memcpy(s, data + 1, size - 1);
	switch (data[0] & 3) {
	case 0:
		key_request(s, size - 1);
		break;
	case 1:
		key_ids(s, size - 1);
		break;
	case 2:
		config(s, size - 1);
		break;
	default:
		container(data + 1, size - 1);
		break;
	}
	free(s);
	return 0;
}
