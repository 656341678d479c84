// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd_get_key_example: an application taking keys from the qkd kernel
 * store through libqkd's ETSI GS QKD 004 interface (libqkd(3)).
 *
 *   qkd_get_key_example [-n COUNT] [-i INDEX] [-t TIMEOUT_MS] [-s SOURCE]
 *                       DESTINATION [KEY_STREAM_ID]
 *
 * Opens the key stream (KEY_STREAM_ID, or the one the DESTINATION URI
 * qkd://HOST/KSID names), takes COUNT keys (the next ones, or those at
 * INDEX, INDEX+1, ...) waiting up to TIMEOUT_MS for each, and prints for
 * each its index, key_ID and a fingerprint (the first 8 bytes of its
 * SHA-256, so that two sites can compare keys without showing them). The
 * exit status is the 004 status of the call that failed (0: all taken).
 *
 * Build: cc -o example qkd_get_key_example.c $(pkg-config --cflags --libs libqkd) -lcrypto
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <qkd/etsi004.h>
#include <qkd/util.h>

static void usage(void)
{
	fprintf(stderr, "usage: qkd_get_key_example [-n COUNT] [-i INDEX] [-t TIMEOUT_MS] [-s SOURCE] DESTINATION [KEY_STREAM_ID]\n");
	exit(QKD_STATUS_INVALID_ARGUMENT);
}

static uint64_t number(const char *s, uint64_t max)
{
	uint64_t v;

	if (qkd_parse_u64(s, max, &v))
		usage();
	return v;
}

int main(int argc, char **argv)
{
	const char *source = "qkd://localhost";
	uint8_t ksid[QKD_004_KSID_LEN] = { 0 }, key[QKD_KEY_SIZE_MAX];
	uint8_t md[EVP_MAX_MD_SIZE], key_id[QKD_KEY_ID_LEN];
	char meta[256], kid[QKD_UUID_STR_LEN], fp[17];
	struct qkd_qos qos = { 0 };
	struct qkd_metadata m;
	uint64_t count = 1, first = QKD_004_INDEX_NEXT, index, i;
	unsigned int mdlen;
	uint32_t status;
	int c;

	qos.timeout = 1000;
	while ((c = getopt(argc, argv, "n:i:t:s:")) != -1) {
		switch (c) {
		case 'n': count = number(optarg, 1000000); break;
		case 'i': first = number(optarg, QKD_INDEX_MAX); break;
		case 't': qos.timeout = (uint32_t)number(optarg, UINT32_MAX); break;
		case 's': source = optarg; break;
		default: usage();
		}
	}
	if (optind >= argc || argc - optind > 2)
		usage();
	if (argc - optind == 2 && qkd_uuid_parse(argv[optind + 1], ksid))
		usage();

	/* key_chunk_size 0: the stream's key size; metadata in JSON */
	status = qkd_open_connect(source, argv[optind], &qos, ksid);
	if (status != QKD_STATUS_SUCCESSFUL) {
		fprintf(stderr, "qkd_open_connect: %s (%s)\n",
			qkd_004_status_name(status), strerror(errno));
		return (int)status;
	}
	if (qos.key_chunk_size > sizeof(key)) {	/* cannot happen */
		qkd_close(ksid);
		return QKD_STATUS_DEVICE_ERROR;
	}
	for (i = 0; i < count; i++) {
		index = first == QKD_004_INDEX_NEXT ? first : first + i;
		m.metadata_size = sizeof(meta);
		m.metadata_buffer = meta;
		status = qkd_get_key(ksid, &index, key, &m);
		if (status != QKD_STATUS_SUCCESSFUL) {
			fprintf(stderr, "qkd_get_key: %s (%s)\n",
				qkd_004_status_name(status), strerror(errno));
			break;
		}
		mdlen = 0;
		if (!EVP_Digest(key, qos.key_chunk_size, md, &mdlen, EVP_sha256(), NULL) ||
		    mdlen < 8)
			memset(md, 0, 8);
		explicit_bzero(key, sizeof(key));
		qkd_hex_encode(md, 8, fp, sizeof(fp));
		qkd_key_id_from_index(key_id, ksid, index);
		qkd_uuid_format(key_id, kid);
		printf("index=%" PRIu64 " key_ID=%s size=%" PRIu32 " fingerprint=%s\n",
		       index, kid, qos.key_chunk_size, fp);
		if (i == 0)
			printf("metadata=%s\n", meta);
	}
	explicit_bzero(key, sizeof(key));
	if (qkd_close(ksid) != QKD_STATUS_SUCCESSFUL && !status)
		status = QKD_STATUS_DEVICE_ERROR;
	return (int)status;
}
