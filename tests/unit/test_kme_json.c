// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd-kme's ETSI GS QKD 014 data formats (userspace/kme/json.c): Key
 * request and Key IDs parsed strictly (each bad body refused with a
 * message: types, ranges, unknown members, duplicates, limits, trailing
 * data), the GET query forms, and the Status, Error and Key container
 * written (parsed back with json-c, keys compared after base64).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "kselftest_harness.h"

#include "qkd/util.h"
#include "../../userspace/kme/kme.h"

#define S1 "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
#define S2 "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6c"

static int kreq(const char *body, struct kme_key_request *r, char *err)
{
	return kme_json_key_request(body, strlen(body), r, err, 256);
}

TEST(key_request_good)
{
	struct kme_key_request r;
	char err[256] = "";

	ASSERT_EQ(0, kreq("{}", &r, err)) TH_LOG("%s", err);
	EXPECT_EQ(1, r.number);
	EXPECT_FALSE(r.has_number);
	EXPECT_FALSE(r.has_size);
	ASSERT_EQ(0, kreq(" {\"number\": 3, \"size\": 256,\n"
			  "  \"additional_slave_SAE_IDs\": [],\n"
			  "  \"extension_mandatory\": [],\n"
			  "  \"extension_optional\": [{\"abc_route_type\": \"direct\",\n"
			  "    \"note\": \"it's \\\"quoted\\\"\"}]}\r\n",
			  &r, err)) TH_LOG("%s", err);
	EXPECT_EQ(3, r.number);
	EXPECT_EQ(256, r.size);
	EXPECT_TRUE(r.has_size);
	EXPECT_EQ(0, r.n_additional);
	EXPECT_EQ(0, r.n_mandatory);
	/* these are valid requests that keys.c then refuses: counted here */
	ASSERT_EQ(0, kreq("{\"additional_slave_SAE_IDs\":[\"B\",\"C\"],"
			  "\"extension_mandatory\":[{\"abc_route_type\":\"direct\","
			  "\"abc_transfer_method\":\"qkd\"},{\"x\":{}}]}", &r, err));
	EXPECT_EQ(2, r.n_additional);
	EXPECT_EQ(3, r.n_mandatory);
	EXPECT_STREQ("abc_route_type, abc_transfer_method, x", r.mandatory);
}

static const struct {
	const char *body, *msg;
} bad_requests[] = {
	{ "", "empty body" },
	{ "[]", "not a JSON object" },
	{ "\"number\"", "not a JSON object" },
	{ "{\"number\":1", "not valid JSON" },
	{ "{\"number\":1}{}", "data after" },
	{ "{\"number\":1} x", "data after" },
	{ "{'number':1}", "not valid JSON" },
	{ "{\"number\":1,\"extension_optional\":[{'a':1}]}", "not valid JSON" },
	{ "{\"extension_optional\":[{\"\xff\":1}]}", "not valid JSON" },
	{ "{\"number\":1,}", "not valid JSON" },
	{ "{\"number\":0}", "number must be a positive integer" },
	{ "{\"number\":-1}", "number must be a positive integer" },
	{ "{\"number\":4294967296}", "number must be a positive integer" },
	{ "{\"number\":99999999999999999999999}", "number must be" },
	{ "{\"number\":1.5}", "number must be an integer" },
	{ "{\"number\":1e2}", "number must be an integer" },
	{ "{\"number\":\"2\"}", "number must be an integer" },
	{ "{\"number\":true}", "number must be an integer" },
	{ "{\"number\":null}", "number must be an integer" },
	{ "{\"size\":0}", "size must be a positive integer" },
	{ "{\"size\":\"256\"}", "size must be an integer" },
	{ "{\"numbr\":1}", "unknown member \"numbr\"" },
	{ "{\"Number\":1}", "unknown member \"Number\"" },
	{ "{\"additional_slave_SAE_IDs\":\"B\"}", "array of SAE IDs" },
	{ "{\"additional_slave_SAE_IDs\":[1]}", "array of SAE IDs" },
	{ "{\"extension_mandatory\":{}}", "extension_mandatory must be an array" },
	{ "{\"extension_mandatory\":[1]}", "extension_mandatory must be an array of objects" },
	{ "{\"extension_optional\":[\"x\"]}", "extension_optional must be an array of objects" },
	{ "{\"a\":[[[[[[[[[[[[1]]]]]]]]]]]]}", "not valid JSON" },
};

TEST(key_request_bad)
{
	size_t i;

	for (i = 0; i < sizeof(bad_requests) / sizeof(bad_requests[0]); i++) {
		struct kme_key_request r;
		char err[256] = "";

		EXPECT_EQ(-EINVAL, kreq(bad_requests[i].body, &r, err))
			TH_LOG("accepted: %s", bad_requests[i].body);
		EXPECT_NE(NULL, strstr(err, bad_requests[i].msg))
			TH_LOG("%s: got \"%s\", wanted \"%s\"", bad_requests[i].body, err,
			       bad_requests[i].msg);
	}
}

TEST(key_request_nul_and_size)
{
	static const char nul[] = "{\"number\":1}\0{\"number\":9}";
	struct kme_key_request r;
	char err[256] = "", *big;

	EXPECT_EQ(-EINVAL, kme_json_key_request(nul, sizeof(nul) - 1, &r, err, sizeof(err)));
	big = malloc(KME_BODY_MAX + 2);
	ASSERT_NE(NULL, big);
	memset(big, ' ', KME_BODY_MAX + 1);
	big[0] = '{';
	big[KME_BODY_MAX] = '}';
	EXPECT_EQ(-EINVAL, kme_json_key_request(big, KME_BODY_MAX + 1, &r, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "at most"));
	free(big);
}

static int kids(const char *body, unsigned int max, struct kme_key_ids *r,
		char *err)
{
	return kme_json_key_ids(body, strlen(body), max, r, err, 256);
}

TEST(key_ids_good)
{
	struct kme_key_ids *r = malloc(sizeof(*r));
	uint8_t s1[16], s2[16];
	char err[256] = "";

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, kids("{\"key_IDs\":[{\"key_ID\":\"" S1 "\"},"
			  "{\"key_ID\":\"" S2 "\",\"key_ID_extension\":{}}],"
			  "\"key_IDs_extension\":{}}", 256, r, err)) TH_LOG("%s", err);
	ASSERT_EQ(2, r->n);
	qkd_uuid_parse(S1, s1);
	qkd_uuid_parse(S2, s2);
	EXPECT_EQ(0, memcmp(r->ids[0], s1, 16));
	EXPECT_EQ(0, memcmp(r->ids[1], s2, 16));
	/* upper case UUIDs are UUIDs */
	ASSERT_EQ(0, kids("{\"key_IDs\":[{\"key_ID\":\"6F1C2A9E-3B4D-4E5F-8A7B-1C2D3E4F5A6B\"}]}",
			  1, r, err));
	EXPECT_EQ(0, memcmp(r->ids[0], s1, 16));
	free(r);
}

static const struct {
	const char *body, *msg;
} bad_ids[] = {
	{ "{}", "without key_IDs" },
	{ "{\"key_IDs\":[]}", "key_IDs is empty" },
	{ "{\"key_IDs\":{}}", "key_IDs must be an array" },
	{ "{\"key_IDs\":[\"" S1 "\"]}", "key_IDs[0] is not an object" },
	{ "{\"key_IDs\":[{}]}", "key_IDs[0] has no key_ID" },
	{ "{\"key_IDs\":[{\"key_ID\":1}]}", "key_IDs[0] has no key_ID" },
	{ "{\"key_IDs\":[{\"key_ID\":\"6f1c2a9e\"}]}", "is not a UUID" },
	{ "{\"key_IDs\":[{\"key_ID\":\"" S1 "x\"}]}", "is not a UUID" },
	{ "{\"key_IDs\":[{\"key_ID\":\"{" S1 "}\"}]}", "is not a UUID" },
	{ "{\"key_IDs\":[{\"key_ID\":\"" S1 "\"},{\"key_ID\":\"" S1 "\"}]}",
	  "asked for twice" },
	{ "{\"key_IDs\":[{\"key_ID\":\"" S1 "\",\"key\":\"AAAA\"}]}",
	  "unknown member \"key\" in key_IDs[0]" },
	{ "{\"key_IDs\":[{\"key_ID\":\"" S1 "\"}],\"number\":1}", "unknown member \"number\"" },
	{ "{\"key_IDs\":[{\"key_ID\":\"" S1 "\"}],\"key_IDs_extension\":[]}",
	  "key_IDs_extension must be an object" },
	{ "{\"key_IDs\":[{\"key_ID\":\"" S1 "\",\"key_ID_extension\":1}]}",
	  "key_ID_extension must be an object" },
	/* three for a limit of two */
	{ "{\"key_IDs\":[{\"key_ID\":\"" S1 "\"},{\"key_ID\":\"" S2 "\"},"
	  "{\"key_ID\":\"6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6d\"}]}",
	  "3 key_IDs asked for, max_key_per_request is 2" },
};

TEST(key_ids_bad)
{
	struct kme_key_ids *r = malloc(sizeof(*r));
	size_t i;

	ASSERT_NE(NULL, r);
	for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		char err[256] = "";

		EXPECT_EQ(-EINVAL, kids(bad_ids[i].body, 2, r, err))
			TH_LOG("accepted: %s", bad_ids[i].body);
		EXPECT_NE(NULL, strstr(err, bad_ids[i].msg))
			TH_LOG("%s: got \"%s\", wanted \"%s\"", bad_ids[i].body, err,
			       bad_ids[i].msg);
	}
	free(r);
}

TEST(query_forms)
{
	struct kme_key_request q;
	struct kme_key_ids *r = malloc(sizeof(*r));
	char err[256];

	ASSERT_NE(NULL, r);
	ASSERT_EQ(0, kme_query_key_request(NULL, NULL, &q, err, sizeof(err)));
	EXPECT_EQ(1, q.number);
	EXPECT_FALSE(q.has_size);
	ASSERT_EQ(0, kme_query_key_request("12", "256", &q, err, sizeof(err)));
	EXPECT_EQ(12, q.number);
	EXPECT_EQ(256, q.size);
	EXPECT_EQ(-EINVAL, kme_query_key_request("0", NULL, &q, err, sizeof(err)));
	EXPECT_EQ(-EINVAL, kme_query_key_request("", NULL, &q, err, sizeof(err)));
	EXPECT_EQ(-EINVAL, kme_query_key_request("0x10", NULL, &q, err, sizeof(err)));
	EXPECT_EQ(-EINVAL, kme_query_key_request("+1", NULL, &q, err, sizeof(err)));
	EXPECT_EQ(-EINVAL, kme_query_key_request("1 ", NULL, &q, err, sizeof(err)));
	EXPECT_EQ(-EINVAL, kme_query_key_request("4294967296", NULL, &q, err, sizeof(err)));
	EXPECT_EQ(-EINVAL, kme_query_key_request("1", "x", &q, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "size"));
	ASSERT_EQ(0, kme_query_key_id(S1, r, err, sizeof(err)));
	EXPECT_EQ(1, r->n);
	EXPECT_EQ(-EINVAL, kme_query_key_id(NULL, r, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "required"));
	EXPECT_EQ(-EINVAL, kme_query_key_id("", r, err, sizeof(err)));
	EXPECT_EQ(-EINVAL, kme_query_key_id(S1 "0", r, err, sizeof(err)));
	free(r);
}

static struct json_object *parse_reply(const struct kme_reply *rep)
{
	return json_tokener_parse(rep->body);
}

static int64_t get_int(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

static const char *get_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

TEST(status_written)
{
	struct kme_status s = {
		.source_kme = "KME_A", .target_kme = "KME_B", .master = "SAE_A",
		.slave = "SAE_B", .key_size_bits = 256, .stored = 40,
		.max_count = 4096, .max_per_request = 8, .min_size_bits = 256,
		.max_size_bits = 256, .max_sae_ids = 0,
	};
	struct kme_reply rep;
	struct json_object *o;

	ASSERT_EQ(0, kme_json_status(&s, &rep));
	EXPECT_EQ(200, rep.status);
	EXPECT_EQ(strlen(rep.body), rep.len);
	o = parse_reply(&rep);
	ASSERT_NE(NULL, o);
	EXPECT_STREQ("KME_A", get_str(o, "source_KME_ID"));
	EXPECT_STREQ("KME_B", get_str(o, "target_KME_ID"));
	EXPECT_STREQ("SAE_A", get_str(o, "master_SAE_ID"));
	EXPECT_STREQ("SAE_B", get_str(o, "slave_SAE_ID"));
	EXPECT_EQ(256, get_int(o, "key_size"));
	EXPECT_EQ(40, get_int(o, "stored_key_count"));
	EXPECT_EQ(4096, get_int(o, "max_key_count"));
	EXPECT_EQ(8, get_int(o, "max_key_per_request"));
	EXPECT_EQ(256, get_int(o, "max_key_size"));
	EXPECT_EQ(256, get_int(o, "min_key_size"));
	EXPECT_EQ(0, get_int(o, "max_SAE_ID_count"));
	EXPECT_EQ(11, json_object_object_length(o));
	json_object_put(o);
	kme_reply_free(&rep);
	EXPECT_EQ(NULL, rep.body);
}

TEST(error_written)
{
	struct kme_reply rep;
	struct json_object *o;

	ASSERT_EQ(0, kme_json_error(400, &rep, "key_ID %s is \"bad\"\n", "x"));
	EXPECT_EQ(400, rep.status);
	o = parse_reply(&rep);
	ASSERT_NE(NULL, o);
	/* quotes and control characters escaped: the message comes back whole */
	EXPECT_STREQ("key_ID x is \"bad\"\n", get_str(o, "message"));
	EXPECT_EQ(1, json_object_object_length(o));
	json_object_put(o);
	kme_reply_free(&rep);
}

TEST(key_container_written)
{
	uint8_t keys[3 * 32], ids[3][16], back[64];
	struct kme_reply rep;
	struct json_object *o, *arr;
	size_t i;

	for (i = 0; i < sizeof(keys); i++)
		keys[i] = (uint8_t)(i * 37 + 11);
	for (i = 0; i < 3; i++) {
		uint8_t s[16];

		qkd_uuid_parse(S1, s);
		qkd_key_id(s, i + 5, ids[i]);
	}
	ASSERT_EQ(0, kme_json_key_container(keys, 32, 3, (const uint8_t (*)[16])ids, &rep));
	EXPECT_EQ(200, rep.status);
	EXPECT_EQ(3, rep.keys);
	EXPECT_EQ(strlen(rep.body), rep.len);
	o = parse_reply(&rep);
	ASSERT_NE(NULL, o);
	EXPECT_EQ(1, json_object_object_length(o));
	ASSERT_TRUE(json_object_object_get_ex(o, "keys", &arr));
	ASSERT_EQ(3, json_object_array_length(arr));
	for (i = 0; i < 3; i++) {
		struct json_object *k = json_object_array_get_idx(arr, i);
		char uuid[QKD_UUID_STR_LEN];
		const char *b64 = get_str(k, "key");

		qkd_uuid_format(ids[i], uuid);
		EXPECT_STREQ(uuid, get_str(k, "key_ID"));
		ASSERT_NE(NULL, b64);
		EXPECT_EQ(32, qkd_base64_decode(b64, strlen(b64), back, sizeof(back)));
		EXPECT_EQ(0, memcmp(back, keys + i * 32, 32));
		EXPECT_EQ(2, json_object_object_length(k));
	}
	json_object_put(o);
	kme_reply_free(&rep);
	/* the largest: 256 keys of 512 bytes */
	{
		size_t n = QKD_GET_KEYS_MAX, ks = QKD_KEY_SIZE_MAX;
		uint8_t *big = calloc(n, ks), (*bids)[16] = calloc(n, 16);

		ASSERT_NE(NULL, big);
		ASSERT_NE(NULL, bids);
		ASSERT_EQ(0, kme_json_key_container(big, ks, n, (const uint8_t (*)[16])bids, &rep));
		o = parse_reply(&rep);
		ASSERT_NE(NULL, o);
		ASSERT_TRUE(json_object_object_get_ex(o, "keys", &arr));
		EXPECT_EQ(n, json_object_array_length(arr));
		json_object_put(o);
		kme_reply_free(&rep);
		free(big);
		free(bids);
	}
}

TEST_HARNESS_MAIN
