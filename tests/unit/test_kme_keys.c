// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd-kme's key operations (userspace/kme/keys.c) against a fake store:
 * this file defines libqkd's /dev/qkd wrappers (the linker then takes
 * them, not libqkd's), with the kernel's semantics of abi.md: GET_KEYS
 * takes the lowest keys all or nothing, GET_KEY_BY_ID fails with
 * EKEYEXPIRED below the push index and ENOKEY at or above it. Checked:
 * every refusal of enc_keys and dec_keys takes no key, the status codes,
 * the keys delivered are the store's, and a dec_keys that fails at a
 * later key parks the earlier ones for the retry, which delivers them
 * once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "kselftest_harness.h"

#include "qkd/dev.h"
#include "qkd/util.h"
#include "../../userspace/kme/kme.h"

#define S1 "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
#define KS 32
#define NK 64

/* The fake store: one stream, keys 0..NK-1 pushed, present[] per index. */
static struct {
	uint8_t stream[16];
	bool present[NK];
	uint64_t push;		/* next push index */
	unsigned int takes;	/* keys taken */
} fs;

static uint8_t key_byte(uint64_t index, size_t i)
{
	return (uint8_t)(index * 31 + i * 7 + 1);
}

static void fs_reset(uint64_t pushed)
{
	memset(&fs, 0, sizeof(fs));
	qkd_uuid_parse(S1, fs.stream);
	for (uint64_t i = 0; i < pushed; i++)
		fs.present[i] = true;
	fs.push = pushed;
}

static unsigned int fs_stored(void)
{
	unsigned int n = 0;

	for (int i = 0; i < NK; i++)
		n += fs.present[i];
	return n;
}

int qkd_dev_open(const char *path)
{
	(void)path;
	return 100;
}

int qkd_dev_info(int fd, struct qkd_info *out)
{
	(void)fd;
	memset(out, 0, sizeof(*out));
	return 0;
}

int qkd_dev_stream_status(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
			  struct qkd_stream_status *st)
{
	(void)fd;
	if (memcmp(stream, fs.stream, 16))
		return -ENOENT;
	memset(st, 0, sizeof(*st));
	st->key_size = KS;
	st->stored_key_count = fs_stored();
	st->max_key_count = 4096;
	st->max_key_per_request = QKD_GET_KEYS_MAX;
	st->next_index = fs.push;
	for (uint64_t i = 0; i < fs.push; i++)
		if (fs.present[i]) {
			st->next_index = i;
			break;
		}
	return 0;
}

static void fill(uint64_t index, uint8_t *out)
{
	for (size_t i = 0; i < KS; i++)
		out[i] = key_byte(index, i);
}

int qkd_dev_get_keys(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		     uint32_t number, uint32_t flags, uint8_t *keys,
		     size_t buflen, uint64_t *indices, uint32_t *got,
		     uint32_t *key_size)
{
	uint32_t n = 0;

	(void)fd;
	if (flags || !number || number > QKD_GET_KEYS_MAX)
		return -EINVAL;
	if (memcmp(stream, fs.stream, 16))
		return -ENOENT;
	if (buflen < (size_t)number * KS)
		return -ERANGE;
	if (fs_stored() < number)
		return -EAGAIN;
	for (uint64_t i = 0; i < NK && n < number; i++) {
		if (!fs.present[i])
			continue;
		fs.present[i] = false;
		fs.takes++;
		fill(i, keys + n * KS);
		indices[n++] = i;
	}
	*got = n;
	*key_size = KS;
	return 0;
}

int qkd_dev_get_key_by_id(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
			  const uint8_t key_id[QKD_KEY_ID_LEN], uint8_t *key,
			  size_t buflen, size_t *key_len, uint64_t *index)
{
	uint64_t i;

	(void)fd;
	if (memcmp(stream, fs.stream, 16))
		return -ENOENT;
	if (qkd_key_id_index(key_id, fs.stream, &i))
		return -EINVAL;
	if (buflen < KS)
		return -ERANGE;
	if (i >= fs.push)
		return -ENOKEY;
	if (i >= NK || !fs.present[i])
		return -EKEYEXPIRED;
	fs.present[i] = false;
	fs.takes++;
	fill(i, key);
	if (key_len)
		*key_len = KS;
	if (index)
		*index = i;
	return 0;
}

static struct kme_pair pair(void)
{
	struct kme_pair p = { .master = "SAE_A", .slave = "SAE_B", .peer_kme = "KME_B" };

	qkd_uuid_parse(S1, p.stream);
	return p;
}

static struct kme_store store(void)
{
	struct kme_store s = { .fd = -1 };

	if (kme_store_open(&s, NULL, 8))
		abort();
	return s;
}

/* The keys of a 200 reply, checked against the fake store's bytes. */
static int container_is(const struct kme_reply *rep, const uint64_t *idx,
			size_t n)
{
	struct json_object *o = json_tokener_parse(rep->body), *arr;
	int ok = o && json_object_object_get_ex(o, "keys", &arr) &&
		 json_object_array_length(arr) == n;

	for (size_t i = 0; ok && i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *k, *id;
		uint8_t want[KS], got[KS], wid[16], gid[16];

		fill(idx[i], want);
		qkd_key_id(fs.stream, idx[i], wid);
		ok = json_object_object_get_ex(e, "key", &k) &&
		     json_object_object_get_ex(e, "key_ID", &id) &&
		     qkd_base64_decode(json_object_get_string(k),
				       strlen(json_object_get_string(k)), got,
				       sizeof(got)) == KS &&
		     !memcmp(got, want, KS) &&
		     !qkd_uuid_parse(json_object_get_string(id), gid) &&
		     !memcmp(gid, wid, 16);
	}
	json_object_put(o);
	return ok;
}

static const char *msg(const struct kme_reply *rep)
{
	return rep->body ? rep->body : "";
}

TEST(enc_keys_refusals_take_nothing)
{
	struct kme_store s = store();
	struct kme_pair p = pair();
	struct kme_key_request r;
	struct kme_reply rep;
	static const struct {
		const char *body;
		unsigned int status;
		const char *msg;
	} cases[] = {
		{ "{\"number\":9}", 400, "above max_key_per_request 8" },
		{ "{\"size\":128}", 400, "size 128 is not served" },
		{ "{\"size\":264}", 400, "size 264 is not served" },
		{ "{\"extension_mandatory\":[{\"abc\":1}]}", 400, "not supported: abc" },
		{ "{\"additional_slave_SAE_IDs\":[\"SAE_C\"]}", 400, "max_SAE_ID_count is 0" },
		{ "{\"number\":5}", 503, "not enough keys: 5 asked for, 4 stored" },
	};
	char err[256];

	fs_reset(4);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ASSERT_EQ(0, kme_json_key_request(cases[i].body, strlen(cases[i].body),
						  &r, err, sizeof(err)));
		kme_enc_keys(&s, &p, &r, &rep);
		EXPECT_EQ(cases[i].status, rep.status) TH_LOG("%s: %s", cases[i].body, msg(&rep));
		EXPECT_NE(NULL, strstr(msg(&rep), cases[i].msg))
			TH_LOG("%s: %s", cases[i].body, msg(&rep));
		EXPECT_EQ(0, fs.takes) TH_LOG("%s took a key", cases[i].body);
		kme_reply_free(&rep);
	}
	/* a stream not in the store: 503 */
	p.stream[0] ^= 1;
	kme_query_key_request(NULL, NULL, &r, err, sizeof(err));
	kme_enc_keys(&s, &p, &r, &rep);
	EXPECT_EQ(503, rep.status);
	EXPECT_NE(NULL, strstr(msg(&rep), "not in this KME's store"));
	kme_reply_free(&rep);
	EXPECT_EQ(4, fs_stored());
	kme_store_close(&s);
}

TEST(enc_keys_gives_the_lowest_keys_once)
{
	struct kme_store s = store();
	struct kme_pair p = pair();
	struct kme_key_request r;
	struct kme_reply rep;
	char err[256];
	uint64_t first[] = { 0, 1, 2 }, next[] = { 3 };

	fs_reset(10);
	ASSERT_EQ(0, kme_query_key_request("3", "256", &r, err, sizeof(err)));
	kme_enc_keys(&s, &p, &r, &rep);
	ASSERT_EQ(200, rep.status) TH_LOG("%s", msg(&rep));
	EXPECT_EQ(3, rep.keys);
	EXPECT_TRUE(container_is(&rep, first, 3));
	kme_reply_free(&rep);
	ASSERT_EQ(0, kme_query_key_request(NULL, NULL, &r, err, sizeof(err)));
	kme_enc_keys(&s, &p, &r, &rep);
	ASSERT_EQ(200, rep.status);
	EXPECT_TRUE(container_is(&rep, next, 1));
	kme_reply_free(&rep);
	EXPECT_EQ(4, fs.takes);
	kme_store_close(&s);
}

static void ids_of(struct kme_key_ids *r, const uint64_t *idx, size_t n)
{
	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < n; i++)
		qkd_key_id(fs.stream, idx[i], r->ids[i]);
	r->n = n;
}

TEST(dec_keys_refusals_take_nothing)
{
	struct kme_store s = store();
	struct kme_pair p = pair();
	struct kme_key_ids *r = malloc(sizeof(*r));
	struct kme_reply rep;
	uint64_t below[] = { 5, 1 }, other[] = { 6 };
	char u[QKD_UUID_STR_LEN];

	ASSERT_NE(NULL, r);
	fs_reset(10);
	fs.present[0] = fs.present[1] = false;	/* delivered before */
	/* index 1 is below the lowest stored (2): gone, refused before 5 is taken */
	ids_of(r, below, 2);
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(400, rep.status);
	EXPECT_NE(NULL, strstr(msg(&rep), "already delivered"));
	kme_reply_free(&rep);
	/* a key_ID of another stream (its first bytes differ) */
	ids_of(r, other, 1);
	r->ids[0][3] ^= 0x40;
	qkd_uuid_format(r->ids[0], u);
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(400, rep.status);
	EXPECT_NE(NULL, strstr(msg(&rep), "is not a key of master SAE SAE_A for slave SAE SAE_B"));
	EXPECT_NE(NULL, strstr(msg(&rep), u));
	kme_reply_free(&rep);
	/* more than max_key_per_request */
	memset(r, 0, sizeof(*r));
	r->n = 9;
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(400, rep.status);
	kme_reply_free(&rep);
	EXPECT_EQ(0, fs.takes);
	EXPECT_EQ(8, fs_stored());
	/* an empty stream: an index at or above its push index is not here yet */
	fs_reset(3);
	fs.present[0] = fs.present[1] = fs.present[2] = false;
	other[0] = 3;
	ids_of(r, other, 1);
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(503, rep.status);
	EXPECT_NE(NULL, strstr(msg(&rep), "not available at this KME yet"));
	kme_reply_free(&rep);
	other[0] = 2;
	ids_of(r, other, 1);
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(400, rep.status);
	kme_reply_free(&rep);
	EXPECT_EQ(0, fs.takes);
	free(r);
	kme_store_close(&s);
}

TEST(dec_keys_failing_late_parks_what_it_took)
{
	struct kme_store s = store();
	struct kme_pair p = pair();
	struct kme_key_ids *r = malloc(sizeof(*r));
	struct kme_reply rep;
	uint64_t ask[] = { 4, 5, 7 }, retry[] = { 5, 4 }, gap[] = { 6 };

	ASSERT_NE(NULL, r);
	fs_reset(10);
	fs.present[6] = false;
	/* 7 is fine, 6 is a gap the status cannot show: seen only when taken */
	ask[2] = 6;
	ids_of(r, ask, 3);
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(400, rep.status);
	EXPECT_NE(NULL, strstr(msg(&rep), "already delivered"));
	kme_reply_free(&rep);
	EXPECT_EQ(2, fs.takes);		/* 4 and 5 left the store */
	EXPECT_EQ(2, kme_parked());	/* and wait here */
	/* the retry, in another order: the parked keys, the store's bytes */
	ids_of(r, retry, 2);
	kme_dec_keys(&s, &p, r, &rep);
	ASSERT_EQ(200, rep.status) TH_LOG("%s", msg(&rep));
	EXPECT_TRUE(container_is(&rep, retry, 2));
	kme_reply_free(&rep);
	EXPECT_EQ(0, kme_parked());
	EXPECT_EQ(2, fs.takes);
	/* delivered once: asked again, gone */
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(400, rep.status);
	kme_reply_free(&rep);
	/* a not-yet-pushed key after a good one: 503, the good one parked */
	ask[0] = 8;
	ask[1] = 40;
	ids_of(r, ask, 2);
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(503, rep.status);
	kme_reply_free(&rep);
	EXPECT_EQ(1, kme_parked());
	ids_of(r, ask, 1);
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(200, rep.status);
	EXPECT_TRUE(container_is(&rep, ask, 1));
	kme_reply_free(&rep);
	EXPECT_EQ(0, kme_parked());
	ids_of(r, gap, 1);
	kme_dec_keys(&s, &p, r, &rep);
	EXPECT_EQ(400, rep.status);
	kme_reply_free(&rep);
	free(r);
	kme_store_close(&s);
}

TEST(status_from_the_store)
{
	struct kme_store s = store();
	struct kme_pair p = pair();
	struct kme_config *c = calloc(1, sizeof(*c));
	struct kme_reply rep;
	struct json_object *o, *v;

	ASSERT_NE(NULL, c);
	strcpy(c->kme_id, "KME_A");
	fs_reset(10);
	fs.present[0] = false;
	kme_status(&s, c, &p, &rep);
	ASSERT_EQ(200, rep.status);
	o = json_tokener_parse(rep.body);
	ASSERT_NE(NULL, o);
	ASSERT_TRUE(json_object_object_get_ex(o, "stored_key_count", &v));
	EXPECT_EQ(9, json_object_get_int(v));
	ASSERT_TRUE(json_object_object_get_ex(o, "key_size", &v));
	EXPECT_EQ(KS * 8, json_object_get_int(v));
	ASSERT_TRUE(json_object_object_get_ex(o, "max_key_per_request", &v));
	EXPECT_EQ(8, json_object_get_int(v));
	ASSERT_TRUE(json_object_object_get_ex(o, "target_KME_ID", &v));
	EXPECT_STREQ("KME_B", json_object_get_string(v));
	json_object_put(o);
	kme_reply_free(&rep);
	EXPECT_EQ(0, fs.takes);
	free(c);
	kme_store_close(&s);
}

TEST_HARNESS_MAIN
