// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd --key-source etsi014: the parser of a vendor KME's answers
 * (userspace/qkdd/kme_parse.c, included). A Key container is taken only
 * when it holds exactly the keys asked for; every other one is refused
 * with a reason that says what was wrong, and leaves no key behind.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/qkdd/kme_parse.c"
#include "kselftest_harness.h"

#define KS 32
static const char *const id[3] = {
	"3f1d0c4e-5a6f-4b70-8c91-a2b3c4d5e6f7",
	"3f1d0c4e-5a6f-4b70-8c91-a2b3c4d5e6f8",
	"3f1d0c4e-5a6f-4b70-8c91-a2b3c4d5e6f9",
};

/* key i: KS bytes of value i + 1 */
static void b64key(int i, size_t len, char *out)
{
	uint8_t k[128];

	memset(k, i + 1, len);
	qkd_base64_encode(k, len, out, qkd_base64_size(len));
}

/* A container of n keys: ids idx[j], key j of klen[j] bytes (or the
 * base64 text raw[j] if set). */
static char *container(int n, const int *idx, const size_t *klen,
		       const char *const *raw)
{
	char *b = malloc(8192), k[256];
	size_t len = 0;

	len += (size_t)sprintf(b + len, "{\"keys\":[");
	for (int j = 0; j < n; j++) {
		if (raw && raw[j])
			snprintf(k, sizeof(k), "%s", raw[j]);
		else
			b64key(j, klen ? klen[j] : KS, k);
		len += (size_t)sprintf(b + len, "%s{\"key_ID\":\"%s\",\"key\":\"%s\"}",
				       j ? "," : "", id[idx ? idx[j] : j], k);
	}
	sprintf(b + len, "]}");
	return b;
}

static int parse3(const char *body, const kme_key_id *want,
		  struct kme_keys *k, char *err)
{
	return kme_parse_keys(body, strlen(body), 3, KS, want, k, err, 200);
}

/* A refused container leaves nothing: no keys, no ids, count 0. */
#define EXPECT_EMPTY(k) do {						\
		EXPECT_EQ(NULL, (k).keys);				\
		EXPECT_EQ(NULL, (void *)(k).ids);			\
		EXPECT_EQ(0u, (k).count);				\
	} while (0)

TEST(good_container)
{
	struct kme_keys k;
	char err[200] = "", *b = container(3, NULL, NULL, NULL);

	ASSERT_EQ(0, parse3(b, NULL, &k, err)) TH_LOG("%s", err);
	ASSERT_EQ(3u, k.count);
	ASSERT_EQ((uint32_t)KS, k.key_size);
	for (int i = 0; i < 3; i++) {
		EXPECT_STREQ(id[i], k.ids[i]);
		for (int j = 0; j < KS; j++)
			EXPECT_EQ(i + 1, k.keys[i * KS + j]);
	}
	kme_keys_free(&k);
	EXPECT_EMPTY(k);
	free(b);
}

/* dec_keys: the keys in the order the key_IDs were asked for */
TEST(dec_keys_in_the_order_asked)
{
	kme_key_id want[3];
	struct kme_keys k;
	char err[200] = "", *b = container(3, NULL, NULL, NULL);

	for (int i = 0; i < 3; i++)
		snprintf(want[i], sizeof(want[i]), "%s", id[2 - i]);
	ASSERT_EQ(0, parse3(b, want, &k, err)) TH_LOG("%s", err);
	for (int i = 0; i < 3; i++) {
		EXPECT_STREQ(id[2 - i], k.ids[i]);
		EXPECT_EQ(3 - i, k.keys[i * KS]);
	}
	kme_keys_free(&k);
	free(b);
}

TEST(missing_fields)
{
	static const char *const bad[] = {
		"{}",
		"{\"keys\":{}}",
		"{\"keys\":[{\"key\":\"AAAA\"},{},{}]}",
		"[]",
		"{\"keys\":[1,2,3]}",
		"{\"keys\":[{\"key_ID\":\"a\"},{\"key_ID\":\"b\"},{\"key_ID\":\"c\"}]}",
		"{\"keys\":[{\"key_ID\":7,\"key\":\"AAAA\"},{},{}]}",
	};
	struct kme_keys k;
	char err[200];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		EXPECT_EQ(-EPROTO, parse3(bad[i], NULL, &k, err)) TH_LOG("%s", bad[i]);
		EXPECT_NE(0, err[0]);
		EXPECT_EMPTY(k);
	}
}

TEST(wrong_count)
{
	struct kme_keys k;
	char err[200] = "", *b = container(2, NULL, NULL, NULL);

	EXPECT_EQ(-EPROTO, parse3(b, NULL, &k, err));
	EXPECT_STREQ("2 keys in the Key container, asked for 3", err);
	EXPECT_EMPTY(k);
	free(b);
}

TEST(key_of_the_wrong_size)
{
	size_t shorter[3] = { KS, 16, KS }, longer[3] = { KS, KS, 48 };
	struct kme_keys k;
	char err[200] = "", *b = container(3, NULL, shorter, NULL);

	EXPECT_EQ(-EPROTO, parse3(b, NULL, &k, err));
	EXPECT_NE(NULL, strstr(err, "another size")) TH_LOG("%s", err);
	EXPECT_NE(NULL, strstr(err, id[1]));
	EXPECT_EMPTY(k);
	free(b);
	b = container(3, NULL, longer, NULL);
	EXPECT_EQ(-EPROTO, parse3(b, NULL, &k, err));
	EXPECT_NE(NULL, strstr(err, "a longer key")) TH_LOG("%s", err);
	EXPECT_EMPTY(k);
	free(b);
}

TEST(bad_base64)
{
	static const char *const raw[][3] = {
		{ NULL, "!!!!", NULL },
		{ NULL, NULL, "AAAA AAAA" },
		{ "AAA", NULL, NULL },
	};
	struct kme_keys k;
	char err[200];

	for (size_t i = 0; i < sizeof(raw) / sizeof(raw[0]); i++) {
		char *b = container(3, NULL, NULL, raw[i]);

		err[0] = '\0';
		EXPECT_EQ(-EPROTO, parse3(b, NULL, &k, err));
		EXPECT_NE(NULL, strstr(err, "bad base64")) TH_LOG("%s", err);
		EXPECT_EMPTY(k);
		free(b);
	}
}

TEST(duplicate_key_ids)
{
	int dup[3] = { 0, 1, 0 };
	kme_key_id want[3];
	struct kme_keys k;
	char err[200] = "", *b = container(3, dup, NULL, NULL);

	EXPECT_EQ(-EPROTO, parse3(b, NULL, &k, err));
	EXPECT_NE(NULL, strstr(err, "twice")) TH_LOG("%s", err);
	EXPECT_EMPTY(k);
	/* dec_keys: the same, and a key_ID not asked for */
	for (int i = 0; i < 3; i++)
		snprintf(want[i], sizeof(want[i]), "%s", id[i]);
	EXPECT_EQ(-EPROTO, parse3(b, want, &k, err));
	EXPECT_NE(NULL, strstr(err, "twice")) TH_LOG("%s", err);
	EXPECT_EMPTY(k);
	free(b);
	b = container(3, NULL, NULL, NULL);
	snprintf(want[2], sizeof(want[2]), "%s", "00000000-0000-0000-0000-000000000000");
	EXPECT_EQ(-EPROTO, parse3(b, want, &k, err));
	EXPECT_NE(NULL, strstr(err, "was not asked for")) TH_LOG("%s", err);
	EXPECT_EMPTY(k);
	free(b);
}

TEST(oversized_and_malformed_bodies)
{
	struct kme_keys k;
	char err[200] = "", *big = malloc(KME_BODY_MAX + 2);
	char *b = container(3, NULL, NULL, NULL);
	size_t n = strlen(b);

	memset(big, ' ', KME_BODY_MAX + 1);
	memcpy(big, b, n);
	big[KME_BODY_MAX + 1] = '\0';
	EXPECT_EQ(-EPROTO, kme_parse_keys(big, KME_BODY_MAX + 1, 3, KS, NULL,
					  &k, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "more than 1048576")) TH_LOG("%s", err);
	EXPECT_EMPTY(k);
	/* cut short: a partial tree (wiped) and no keys */
	EXPECT_EQ(-EPROTO, kme_parse_keys(b, n - 5, 3, KS, NULL, &k, err,
					  sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "not a JSON document")) TH_LOG("%s", err);
	EXPECT_EMPTY(k);
	/* data after the document */
	strcat(b, "{}");
	EXPECT_EQ(-EPROTO, parse3(b, NULL, &k, err));
	EXPECT_NE(NULL, strstr(err, "not a JSON document")) TH_LOG("%s", err);
	EXPECT_EMPTY(k);
	free(b);
	free(big);
}

TEST(asked_for_nothing_sensible)
{
	struct kme_keys k;
	char err[200] = "";

	EXPECT_EQ(-EPROTO, kme_parse_keys("{}", 2, 0, KS, NULL, &k, err,
					  sizeof(err)));
	EXPECT_EQ(-EPROTO, kme_parse_keys("{}", 2, 1, KME_KEY_SIZE_MAX + 1,
					  NULL, &k, err, sizeof(err)));
	EXPECT_EQ(-EPROTO, kme_parse_keys("{}", 2, KME_KEYS_MAX + 1, KS, NULL,
					  &k, err, sizeof(err)));
}

TEST(status)
{
	static const char good[] =
		"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\","
		"\"master_SAE_ID\":\"SAE_A\",\"slave_SAE_ID\":\"SAE_B\","
		"\"key_size\":256,\"stored_key_count\":40,\"max_key_count\":100,"
		"\"max_key_per_request\":8,\"max_key_size\":1024,"
		"\"min_key_size\":64,\"max_SAE_ID_count\":0}";
	static const char neg[] =
		"{\"key_size\":-1,\"max_key_per_request\":8,"
		"\"max_key_size\":1,\"min_key_size\":1}";
	struct kme_status st;
	char err[200] = "";

	ASSERT_EQ(0, kme_parse_status(good, strlen(good), &st, err,
				      sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(256u, st.key_size);
	EXPECT_EQ(40u, st.stored_key_count);
	EXPECT_EQ(8u, st.max_key_per_request);
	EXPECT_EQ(1024u, st.max_key_size);
	EXPECT_EQ(64u, st.min_key_size);
	EXPECT_EQ(-EPROTO, kme_parse_status("{\"key_size\":256}", 16, &st, err,
					    sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "max_key_per_request")) TH_LOG("%s", err);
	EXPECT_EQ(-EPROTO, kme_parse_status(neg, strlen(neg), &st, err,
					    sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "a bad \"key_size\"")) TH_LOG("%s", err);
}

TEST(error_message)
{
	static const char body[] =
		"{\"message\":\"not enough keys\\u0007\",\"details\":[]}";
	char msg[64];

	kme_parse_message(body, strlen(body), msg, sizeof(msg));
	EXPECT_STREQ("not enough keys?", msg);
	kme_parse_message("<html>", 6, msg, sizeof(msg));
	EXPECT_STREQ("", msg);
}

TEST_HARNESS_MAIN
