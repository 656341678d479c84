// SPDX-License-Identifier: GPL-2.0-only
/*
 * etsi004_probe OP...: drives libqkd's ETSI 004 calls for
 * tests/e2e/etsi004.sh, one line of output per OP:
 *   open:DEST[,KSID[,CHUNK[,TIMEOUT_MS[,TTL_S[,MIMETYPE]]]]]
 *                       qkd_open_connect(); KSID "-" for all-zero;
 *                       "open STATUS chunk=N mimetype=M"
 *   get[:INDEX]         qkd_get_key() of the next key or of INDEX, metadata
 *                       of 256 bytes; "get STATUS index=N fp=HEX ms=T"
 *   getmeta:SIZE        the same with a metadata buffer of SIZE bytes;
 *                       "getmeta STATUS size=N"
 *   get-other:KSID      qkd_get_key() on KSID; "get-other STATUS"
 *   close[:KSID]        qkd_close(); "close STATUS"
 *   enc:N               qkd_dev_enc_keys() of N keys on the last KSID;
 *                       "enc ERRNO ids=ID,... fp=HEX,..."
 *   dec:ID,...          qkd_dev_dec_keys(); "dec ERRNO taken=N fp=HEX,..."
 *   wait:MS             sleeps MS milliseconds; prints nothing
 *   getclose:MS[,INDEX] get (the next key, or INDEX), and qkd_close()
 *                       from another thread MS ms later;
 *                       "getclose GET_STATUS CLOSE_STATUS ms=T"
 * KSID is the last opened. fp is the first 8 bytes of the key's SHA-256;
 * no key byte is printed.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <qkd/dev.h>
#include <qkd/etsi004.h>
#include <qkd/util.h>

static uint8_t ksid[QKD_004_KSID_LEN];

static void fingerprint(const uint8_t *key, size_t len, char out[17])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(key, len, md, &n, EVP_sha256(), NULL) || n < 8)
		memset(md, 0, 8);
	qkd_hex_encode(md, 8, out, 17);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* The next ","-separated field of *@s, or NULL. */
static char *field(char **s)
{
	char *f = *s, *c;

	if (!f)
		return NULL;
	c = strchr(f, ',');
	if (c)
		*c++ = '\0';
	*s = c;
	return f;
}

static uint64_t num(const char *s, uint64_t dflt)
{
	uint64_t v;

	return s && *s && !qkd_parse_u64(s, UINT64_MAX, &v) ? v : dflt;
}

static void op_open(char *a)
{
	struct qkd_qos q = { 0 };
	const char *dest = field(&a), *k = field(&a), *mt;
	uint32_t st;

	memset(ksid, 0, sizeof(ksid));
	if (k && strcmp(k, "-") && qkd_uuid_parse(k, ksid))
		memset(ksid, 0xee, sizeof(ksid));
	q.key_chunk_size = (uint32_t)num(field(&a), 0);
	q.timeout = (uint32_t)num(field(&a), 0);
	q.ttl = (uint32_t)num(field(&a), 0);
	mt = field(&a);
	if (mt)
		snprintf(q.metadata_mimetype, sizeof(q.metadata_mimetype), "%s", mt);
	st = qkd_open_connect("qkd://probe", dest, &q, ksid);
	printf("open %s chunk=%u mimetype=%s\n", qkd_004_status_name(st),
	       q.key_chunk_size, q.metadata_mimetype);
}

static void op_get(const char *idx, long metasize)
{
	uint8_t key[QKD_KEY_SIZE_MAX];
	char meta[1024], fp[17] = "-";
	struct qkd_metadata m = { .metadata_size = 256, .metadata_buffer = meta };
	uint64_t index = idx ? num(idx, 0) : QKD_004_INDEX_NEXT;
	double t0 = now_ms();
	uint32_t st;

	memset(key, 0, sizeof(key));
	if (metasize >= 0)
		m.metadata_size = (uint32_t)metasize;
	st = qkd_get_key(ksid, &index, key, &m);
	if (metasize >= 0) {
		printf("getmeta %s size=%u\n", qkd_004_status_name(st), m.metadata_size);
		explicit_bzero(key, sizeof(key));
		return;
	}
	if (st == QKD_STATUS_SUCCESSFUL) {
		/* the key size is in the metadata; the buffer is big enough */
		const char *ks = strstr(meta, "\"key_size\":");

		fingerprint(key, ks ? strtoul(ks + 11, NULL, 10) : 0, fp);
	}
	explicit_bzero(key, sizeof(key));
	printf("get %s index=%" PRIu64 " fp=%s ms=%.0f\n", qkd_004_status_name(st),
	       st == QKD_STATUS_SUCCESSFUL ? index : 0, fp, now_ms() - t0);
}

static void op_get_other(const char *k)
{
	uint8_t other[QKD_004_KSID_LEN], key[QKD_KEY_SIZE_MAX];
	uint64_t index = QKD_004_INDEX_NEXT;

	if (qkd_uuid_parse(k, other))
		memset(other, 0xee, sizeof(other));
	printf("get-other %s\n", qkd_004_status_name(qkd_get_key(other, &index, key, NULL)));
	explicit_bzero(key, sizeof(key));
}

static void op_close(const char *k)
{
	uint8_t other[QKD_004_KSID_LEN];

	memcpy(other, ksid, sizeof(other));
	if (k && qkd_uuid_parse(k, other))
		memset(other, 0xee, sizeof(other));
	printf("close %s\n", qkd_004_status_name(qkd_close(other)));
}

static void op_enc(const char *n)
{
	static uint8_t keys[QKD_GET_KEYS_MAX * QKD_KEY_SIZE_MAX];
	uint8_t ids[QKD_GET_KEYS_MAX][QKD_KEY_ID_LEN];
	uint32_t got = 0, ksz = 0, i, number = (uint32_t)num(n, 0);
	char s[QKD_UUID_STR_LEN], fp[17];
	int fd = qkd_dev_open(NULL), err;

	err = fd < 0 ? fd : qkd_dev_enc_keys(fd, ksid, number, keys, sizeof(keys),
					     ids, &got, &ksz);
	printf("enc %d", -err);
	for (i = 0; i < got; i++) {
		qkd_uuid_format(ids[i], s);
		fingerprint(keys + (size_t)i * ksz, ksz, fp);
		printf("%s%s/%s", i ? "," : " keys=", s, fp);
	}
	printf("\n");
	explicit_bzero(keys, sizeof(keys));
	if (fd >= 0)
		close(fd);
}

static void op_dec(char *list)
{
	static uint8_t keys[QKD_GET_KEYS_MAX * QKD_KEY_SIZE_MAX];
	uint8_t ids[QKD_GET_KEYS_MAX][QKD_KEY_ID_LEN];
	uint32_t n = 0, taken = 0, ksz = 0, i;
	char *tok, *save = NULL, fp[17];
	int fd = qkd_dev_open(NULL), err;

	for (tok = strtok_r(list, ",", &save); tok && n < QKD_GET_KEYS_MAX;
	     tok = strtok_r(NULL, ",", &save))
		if (qkd_uuid_parse(tok, ids[n++]))
			memset(ids[n - 1], 0xee, QKD_KEY_ID_LEN);
	err = fd < 0 ? fd : qkd_dev_dec_keys(fd, ksid, ids, n, keys, sizeof(keys),
					     &taken, &ksz);
	printf("dec %d taken=%u", -err, taken);
	for (i = 0; !err && i < n; i++) {
		fingerprint(keys + (size_t)i * ksz, ksz, fp);
		printf("%s%s", i ? "," : " fp=", fp);
	}
	printf("\n");
	explicit_bzero(keys, sizeof(keys));
	if (fd >= 0)
		close(fd);
}

static uint32_t closer_status;

static void *closer(void *arg)
{
	long ms = *(const long *)arg;

	nanosleep(&(struct timespec){ .tv_sec = ms / 1000,
		  .tv_nsec = (ms % 1000) * 1000000L }, NULL);
	closer_status = qkd_close(ksid);
	return NULL;
}

static void op_getclose(char *a)
{
	uint8_t key[QKD_KEY_SIZE_MAX];
	long ms = (long)num(field(&a), 0);
	const char *idx = field(&a);
	uint64_t index = idx ? num(idx, 0) : QKD_004_INDEX_NEXT;
	double t0 = now_ms();
	pthread_t th;
	uint32_t st;

	closer_status = UINT32_MAX;
	if (pthread_create(&th, NULL, closer, &ms)) {
		printf("getclose pthread_create failed\n");
		return;
	}
	st = qkd_get_key(ksid, &index, key, NULL);
	pthread_join(th, NULL);
	explicit_bzero(key, sizeof(key));
	printf("getclose %s %s ms=%.0f\n", qkd_004_status_name(st),
	       qkd_004_status_name(closer_status), now_ms() - t0);
}

int main(int argc, char **argv)
{
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		char *a = argv[i], *arg = strchr(a, ':');

		if (arg)
			*arg++ = '\0';
		if (!strcmp(a, "open"))
			op_open(arg);
		else if (!strcmp(a, "get"))
			op_get(arg, -1);
		else if (!strcmp(a, "getmeta"))
			op_get(NULL, (long)num(arg, 0));
		else if (!strcmp(a, "get-other"))
			op_get_other(arg ? arg : "");
		else if (!strcmp(a, "close"))
			op_close(arg);
		else if (!strcmp(a, "enc"))
			op_enc(arg);
		else if (!strcmp(a, "getclose"))
			op_getclose(arg);
		else if (!strcmp(a, "wait"))
			nanosleep(&(struct timespec){ .tv_sec = (time_t)(num(arg, 0) / 1000),
				  .tv_nsec = (long)(num(arg, 0) % 1000) * 1000000L }, NULL);
		else if (!strcmp(a, "dec"))
			op_dec(arg ? arg : "");
		else {
			fprintf(stderr, "etsi004_probe: unknown op %s\n", a);
			return 2;
		}
	}
	return 0;
}
