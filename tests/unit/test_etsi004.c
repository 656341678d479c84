// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host unit tests of libqkd's ETSI GS QKD 004 interface (<qkd/etsi004.h>)
 * and the 014-style calls on the device (qkd_dev_enc_keys(),
 * qkd_dev_dec_keys()): what is refused before the device is asked, so
 * that a malformed call takes no key. No kernel module is needed: the
 * calls that would reach /dev/qkd are shown to reach it by an fd of -1
 * (EBADF) or a missing device (tests/e2e/etsi004.sh takes keys through
 * the module in the VM).
 *
 * The spec's numbering of the status values (ETSI GS QKD 004 v2.1.1,
 * table of status values) is written out here, not taken from the header.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <qkd/dev.h>
#include <qkd/etsi004.h>
#include <qkd/ids.h>
#include <qkd/util.h>

#include "../../userspace/lib/etsi004_priv.h"
#include "kselftest_harness.h"

#define KSID_STR "5f0c7a3e-1b2d-4c6e-8f10-112233445500"
#define KSID2_STR "5f0c7a3e-1b2d-4c6e-8f10-aabbccdd0000"

static void ksid_of(const char *s, uint8_t out[16])
{
	if (qkd_uuid_parse(s, out))
		memset(out, 0xee, 16);
}

/* ---- status values ------------------------------------------------------- */

TEST(status_values_are_the_specs)
{
	static const struct { uint32_t v; const char *name; } spec[] = {
		{ 0, "SUCCESSFUL" },
		{ 1, "PEER_NOT_CONNECTED" },
		{ 2, "GK_INSUFFICIENT_KEY_AVAILABLE" },
		{ 3, "GK_PEER_NOT_CONNECTED" },
		{ 4, "NO_QKD_CONNECTION_AVAILABLE" },
		{ 5, "OC_KSID_ALREADY_IN_USE" },
		{ 6, "TIMEOUT_ERROR" },
		{ 7, "OC_QOS_NOT_SATISFIABLE" },
		{ 8, "GK_METADATA_INSUFFICIENT_SIZE" },
		{ 64, "INVALID_ARGUMENT" },
		{ 65, "DEVICE_ERROR" },
	};
	size_t i;

	EXPECT_EQ(0, QKD_STATUS_SUCCESSFUL);
	EXPECT_EQ(2, QKD_STATUS_GK_INSUFFICIENT_KEY_AVAILABLE);
	EXPECT_EQ(4, QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE);
	EXPECT_EQ(5, QKD_STATUS_OC_KSID_ALREADY_IN_USE);
	EXPECT_EQ(6, QKD_STATUS_TIMEOUT_ERROR);
	EXPECT_EQ(7, QKD_STATUS_OC_QOS_NOT_SATISFIABLE);
	EXPECT_EQ(8, QKD_STATUS_GK_METADATA_INSUFFICIENT_SIZE);
	for (i = 0; i < sizeof(spec) / sizeof(spec[0]); i++)
		EXPECT_STREQ(spec[i].name, qkd_004_status_name(spec[i].v));
	EXPECT_STREQ("UNKNOWN", qkd_004_status_name(9));
	EXPECT_STREQ("UNKNOWN", qkd_004_status_name(63));
	EXPECT_STREQ("UNKNOWN", qkd_004_status_name(UINT32_MAX));
}

/* ---- URIs ---------------------------------------------------------------- */

TEST(uri_rejects)
{
	char longhost[300];
	static const char *const bad[] = {
		"", "qkd:", "qkd:/", "qkd://", "qkd:///" KSID_STR,
		"http://siteB/" KSID_STR, "QKD://siteB", "qkd:siteB",
		"qkd://siteB/", "qkd://siteB/not-a-uuid",
		"qkd://siteB/00000000-0000-0000-0000-000000000000",
		"qkd://siteB/" KSID_STR "/", "qkd://siteB/" KSID_STR "/x",
		"qkd://siteB/" KSID_STR "?x=1", "qkd://siteB/" KSID_STR "#f",
		"qkd://site B", "qkd://site\tB", "qkd://user@siteB",
		"qkd://siteB?x", "qkd://siteB#x", "qkd://siteB//" KSID_STR,
		"qkd://siteB/" KSID_STR "0", " qkd://siteB",
	};
	uint8_t ksid[16];
	bool has = false;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(ksid, 0xaa, sizeof(ksid));
		EXPECT_EQ(-EINVAL, qkd004_parse_uri(bad[i], ksid, &has))
			TH_LOG("accepted \"%s\"", bad[i]);
	}
	EXPECT_EQ(-EINVAL, qkd004_parse_uri(NULL, ksid, &has));
	memset(longhost, 'a', sizeof(longhost));
	memcpy(longhost, "qkd://", 6);
	longhost[sizeof(longhost) - 1] = '\0';
	EXPECT_EQ(-EINVAL, qkd004_parse_uri(longhost, ksid, &has));
}

TEST(uri_accepts)
{
	uint8_t ksid[16], want[16];
	bool has = true;

	ASSERT_EQ(0, qkd004_parse_uri("qkd://siteB", ksid, &has));
	EXPECT_FALSE(has);
	ASSERT_EQ(0, qkd004_parse_uri("qkd://10.0.0.2:4000", ksid, &has));
	EXPECT_FALSE(has);
	ASSERT_EQ(0, qkd004_parse_uri("qkd://siteB/" KSID_STR, ksid, &has));
	EXPECT_TRUE(has);
	ksid_of(KSID_STR, want);
	EXPECT_EQ(0, memcmp(ksid, want, 16));
	ASSERT_EQ(0, qkd004_parse_uri("qkd://[fd00::2]/5F0C7A3E-1B2D-4C6E-8F10-112233445500",
				      ksid, &has));
	EXPECT_TRUE(has);
	EXPECT_EQ(0, memcmp(ksid, want, 16));
}

/* ---- which stream open_connect attaches to -------------------------------- */

TEST(pick_stream)
{
	uint8_t zero[16] = { 0 }, k1[16], k2[16], out[16];

	ksid_of(KSID_STR, k1);
	ksid_of(KSID2_STR, k2);
	/* named by the KSID alone, by the destination alone, by both alike */
	ASSERT_EQ(QKD_STATUS_SUCCESSFUL,
		  qkd004_pick_stream("qkd://siteA", "qkd://siteB", k1, out));
	EXPECT_EQ(0, memcmp(out, k1, 16));
	ASSERT_EQ(QKD_STATUS_SUCCESSFUL,
		  qkd004_pick_stream("qkd://siteA", "qkd://siteB/" KSID2_STR, zero, out));
	EXPECT_EQ(0, memcmp(out, k2, 16));
	ASSERT_EQ(QKD_STATUS_SUCCESSFUL,
		  qkd004_pick_stream("qkd://siteA/" KSID_STR, "qkd://siteB/" KSID_STR, k1, out));
	EXPECT_EQ(0, memcmp(out, k1, 16));
	/* disagreeing names: refused, not one of them chosen */
	memset(out, 0, sizeof(out));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd004_pick_stream("qkd://siteA", "qkd://siteB/" KSID2_STR, k1, out));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd004_pick_stream("qkd://siteA/" KSID2_STR, "qkd://siteB", k1, out));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd004_pick_stream("qkd://siteA/" KSID2_STR, "qkd://siteB/" KSID_STR, zero, out));
	EXPECT_EQ(0, memcmp(out, zero, 16));
	/* nothing names a stream: the store assigns none */
	EXPECT_EQ(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE,
		  qkd004_pick_stream("qkd://siteA", "qkd://siteB", zero, out));
	/* malformed or missing URIs */
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd004_pick_stream(NULL, "qkd://siteB", k1, out));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd004_pick_stream("qkd://siteA", NULL, k1, out));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd004_pick_stream("qkd://siteA", "http://siteB", k1, out));
}

/* ---- QoS ------------------------------------------------------------------ */

static struct qkd_stream_status status32(void)
{
	struct qkd_stream_status st = { 0 };

	st.key_size = 32;
	st.max_key_count = 4096;
	st.max_key_per_request = QKD_GET_KEYS_MAX;
	st.min_key_size = 16;
	st.max_key_size = 512;
	return st;
}

TEST(qos_fills_in_zeroes)
{
	struct qkd_stream_status st = status32();
	struct qkd_qos q = { 0 };

	q.timeout = 250;
	q.ttl = 60;
	q.priority = 3;
	q.jitter = 10;
	q.max_bps = 1000;
	q.min_bps = 10;
	ASSERT_EQ(QKD_STATUS_SUCCESSFUL, qkd004_check_qos(&q, &st));
	EXPECT_EQ(32, q.key_chunk_size);
	EXPECT_STREQ(QKD_004_MIMETYPE_JSON, q.metadata_mimetype);
	EXPECT_EQ(250, q.timeout);
	EXPECT_EQ(60, q.ttl);
	EXPECT_EQ(3, q.priority);
	EXPECT_EQ(10, q.jitter);
	EXPECT_EQ(1000, q.max_bps);
	EXPECT_EQ(10, q.min_bps);
	q.key_chunk_size = 32;
	strcpy(q.metadata_mimetype, "application/json");
	EXPECT_EQ(QKD_STATUS_SUCCESSFUL, qkd004_check_qos(&q, &st));
}

TEST(qos_counter_proposal)
{
	static const uint32_t chunks[] = { 1, 16, 31, 33, 64, 512, UINT32_MAX };
	struct qkd_stream_status st = status32();
	struct qkd_qos q;
	size_t i;

	for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		memset(&q, 0, sizeof(q));
		q.key_chunk_size = chunks[i];
		EXPECT_EQ(QKD_STATUS_OC_QOS_NOT_SATISFIABLE, qkd004_check_qos(&q, &st))
			TH_LOG("chunk %u accepted on a 32-byte stream", chunks[i]);
		EXPECT_EQ(32, q.key_chunk_size);
	}
	memset(&q, 0, sizeof(q));
	strcpy(q.metadata_mimetype, "text/plain");
	EXPECT_EQ(QKD_STATUS_OC_QOS_NOT_SATISFIABLE, qkd004_check_qos(&q, &st));
	EXPECT_STREQ(QKD_004_MIMETYPE_JSON, q.metadata_mimetype);
}

TEST(qos_rejects_nonsense)
{
	struct qkd_stream_status st = status32();
	struct qkd_qos q;

	memset(&q, 0, sizeof(q));
	q.min_bps = 2000;
	q.max_bps = 1000;
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT, qkd004_check_qos(&q, &st));
	/* a mimetype without its NUL: never read past the field */
	memset(&q, 0, sizeof(q));
	memset(q.metadata_mimetype, 'a', sizeof(q.metadata_mimetype));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT, qkd004_check_qos(&q, &st));
}

/* ---- the status of a failed get ---------------------------------------- */

TEST(get_key_status_of_errno)
{
	EXPECT_EQ(QKD_STATUS_GK_INSUFFICIENT_KEY_AVAILABLE, qkd004_get_key_status(-EAGAIN));
	EXPECT_EQ(QKD_STATUS_GK_INSUFFICIENT_KEY_AVAILABLE, qkd004_get_key_status(-ENOKEY));
	EXPECT_EQ(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, qkd004_get_key_status(-ENOENT));
	EXPECT_EQ(QKD_STATUS_OC_KSID_ALREADY_IN_USE, qkd004_get_key_status(-EBUSY));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT, qkd004_get_key_status(-EKEYEXPIRED));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT, qkd004_get_key_status(-EINVAL));
	EXPECT_EQ(QKD_STATUS_DEVICE_ERROR, qkd004_get_key_status(-EFAULT));
	EXPECT_EQ(QKD_STATUS_DEVICE_ERROR, qkd004_get_key_status(-EBADF));
	EXPECT_EQ(QKD_STATUS_DEVICE_ERROR, qkd004_get_key_status(-ERANGE));
	EXPECT_EQ(QKD_STATUS_DEVICE_ERROR, qkd004_get_key_status(-EPROTO));
}

/* ---- metadata ----------------------------------------------------------- */

TEST(metadata_size_is_the_worst_case)
{
	char buf[512];
	uint8_t k[16];
	long n;

	ksid_of(KSID_STR, k);
	/* the longest: index 2^56 - 1, key size of 10 digits */
	n = qkd004_format_metadata(buf, sizeof(buf), k, QKD_INDEX_MAX, UINT32_MAX);
	ASSERT_EQ(QKD004_METADATA_SIZE, n);
	EXPECT_EQ(n - 1, (long)strlen(buf));
}

TEST(metadata_too_small_writes_nothing)
{
	char buf[QKD004_METADATA_SIZE];
	uint8_t k[16];
	size_t sz;

	ksid_of(KSID_STR, k);
	for (sz = 0; sz < QKD004_METADATA_SIZE; sz++) {
		memset(buf, 'X', sizeof(buf));
		/* even a key whose metadata would fit: the need is the worst case */
		EXPECT_EQ(-(long)QKD004_METADATA_SIZE,
			  qkd004_format_metadata(buf, sz, k, 0, 32));
		EXPECT_EQ('X', buf[0]);
	}
}

TEST(metadata_content)
{
	char buf[QKD004_METADATA_SIZE], want[256], kid[QKD_UUID_STR_LEN];
	uint8_t k[16], key_id[16];
	long n;

	ksid_of(KSID_STR, k);
	qkd_key_id_from_index(key_id, k, 4242);
	qkd_uuid_format(key_id, kid);
	n = qkd004_format_metadata(buf, sizeof(buf), k, 4242, 32);
	snprintf(want, sizeof(want),
		 "{\"key_stream_id\":\"%s\",\"index\":4242,\"key_ID\":\"%s\",\"key_size\":32}",
		 KSID_STR, kid);
	ASSERT_LT(0, n);
	EXPECT_STREQ(want, buf);
	EXPECT_EQ((long)strlen(want) + 1, n);
}

/* ---- the public calls: refused before the device ------------------------ */

TEST(open_connect_refuses_bad_arguments)
{
	struct qkd_qos q = { 0 };
	uint8_t k[16];

	ksid_of(KSID_STR, k);
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd_open_connect(NULL, "qkd://siteB", &q, k));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd_open_connect("qkd://siteA", NULL, &q, k));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd_open_connect("qkd://siteA", "qkd://siteB", NULL, k));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd_open_connect("qkd://siteA", "qkd://siteB", &q, NULL));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT,
		  qkd_open_connect("qkd://siteA", "qkd://siteB/" KSID2_STR, &q, k));
	EXPECT_EQ(EINVAL, errno);
}

TEST(open_connect_without_device)
{
	struct qkd_qos q = { 0 };
	uint8_t k[16];

	if (access(QKD_DEV_PATH, F_OK) == 0)
		SKIP(return, "%s exists here", QKD_DEV_PATH);
	ksid_of(KSID_STR, k);
	EXPECT_EQ(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE,
		  qkd_open_connect("qkd://siteA", "qkd://siteB", &q, k));
	EXPECT_EQ(ENOENT, errno);
	/* and no connection was left behind */
	EXPECT_EQ(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, qkd_close(k));
}

TEST(get_key_and_close_refuse_unknown_ksid)
{
	uint8_t k[16], key[64], zero[64] = { 0 };
	uint64_t index = QKD_004_INDEX_NEXT;

	ksid_of(KSID_STR, k);
	memset(key, 0, sizeof(key));
	EXPECT_EQ(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE,
		  qkd_get_key(k, &index, key, NULL));
	EXPECT_EQ(QKD_004_INDEX_NEXT, index);
	EXPECT_EQ(0, memcmp(key, zero, sizeof(key)));
	EXPECT_EQ(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, qkd_close(k));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT, qkd_get_key(NULL, &index, key, NULL));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT, qkd_get_key(k, NULL, key, NULL));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT, qkd_get_key(k, &index, NULL, NULL));
	EXPECT_EQ(QKD_STATUS_INVALID_ARGUMENT, qkd_close(NULL));
}

/* ---- 014-style calls: validated before any ioctl ------------------------- */

TEST(dec_keys_refuses_before_the_device)
{
	uint8_t s[16], other[16], ids[3][16], keys[3 * 64];
	uint32_t taken = 99, ksz = 0;

	ksid_of(KSID_STR, s);
	/* differing in bytes 0..8: KSID2's key IDs are also KSID's (by design,
	 * a key ID names an index of any stream sharing those bytes) */
	ksid_of("6f0c7a3e-1b2d-4c6e-8f10-112233445500", other);
	qkd_key_id_from_index(ids[0], s, 1);
	qkd_key_id_from_index(ids[1], s, 2);
	qkd_key_id_from_index(ids[2], s, 3);
	/* fd -1: any call that got as far as an ioctl fails with EBADF */
	EXPECT_EQ(-EINVAL, qkd_dev_dec_keys(-1, s, ids, 0, keys, sizeof(keys), &taken, &ksz));
	EXPECT_EQ(-EINVAL, qkd_dev_dec_keys(-1, s, ids, QKD_GET_KEYS_MAX + 1, keys,
					    sizeof(keys), &taken, &ksz));
	EXPECT_EQ(-EINVAL, qkd_dev_dec_keys(-1, s, NULL, 3, keys, sizeof(keys), &taken, &ksz));
	EXPECT_EQ(-EINVAL, qkd_dev_dec_keys(-1, s, ids, 3, NULL, sizeof(keys), &taken, &ksz));
	/* the same key twice */
	memcpy(ids[2], ids[0], 16);
	EXPECT_EQ(-EINVAL, qkd_dev_dec_keys(-1, s, ids, 3, keys, sizeof(keys), &taken, &ksz));
	/* a key of another stream */
	qkd_key_id_from_index(ids[2], other, 3);
	EXPECT_EQ(-EINVAL, qkd_dev_dec_keys(-1, s, ids, 3, keys, sizeof(keys), &taken, &ksz));
	/* an index beyond the store's range (bytes 8.. give 2^56 or more) */
	qkd_key_id_from_index(ids[2], s, 3);
	ids[2][8] ^= 0x01;
	EXPECT_EQ(-EINVAL, qkd_dev_dec_keys(-1, s, ids, 3, keys, sizeof(keys), &taken, &ksz));
	EXPECT_EQ(0, taken);
	/* a good request reaches the device */
	qkd_key_id_from_index(ids[2], s, 3);
	EXPECT_EQ(-EBADF, qkd_dev_dec_keys(-1, s, ids, 3, keys, sizeof(keys), &taken, &ksz));
	EXPECT_EQ(0, taken);
}

TEST(enc_keys_refuses_before_the_device)
{
	uint8_t s[16], keys[4 * 64], ids[4][16];
	uint32_t got = 99, ksz = 0;

	ksid_of(KSID_STR, s);
	EXPECT_EQ(-EINVAL, qkd_dev_enc_keys(-1, s, 0, keys, sizeof(keys), ids, &got, &ksz));
	EXPECT_EQ(-EINVAL, qkd_dev_enc_keys(-1, s, QKD_GET_KEYS_MAX + 1, keys, sizeof(keys),
					    ids, &got, &ksz));
	EXPECT_EQ(-EINVAL, qkd_dev_enc_keys(-1, s, 4, NULL, sizeof(keys), ids, &got, &ksz));
	EXPECT_EQ(-EBADF, qkd_dev_enc_keys(-1, s, 4, keys, sizeof(keys), ids, &got, &ksz));
	EXPECT_EQ(0, got);
}

TEST_HARNESS_MAIN
