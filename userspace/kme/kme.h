/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkd-kme: an ETSI GS QKD 014 v1.1.1 key manager (REST over HTTPS with
 * mutual TLS) backed by the kernel store (/dev/qkd).
 *
 *   config.c  the configuration file: the KME, its TLS files, the SAEs
 *             (certificate identities) and the SAE pairs (streams)
 *   json.c    the 014 data formats: requests parsed, replies written
 *   tls.c     the client's certificate verified, its SAE found
 *   keys.c    keys taken from /dev/qkd, the 014 checks before any is taken
 *   http.c    the HTTP server (libmicrohttpd): routing, status codes
 *   log.c     log lines (never key bytes)
 *   main.c    options, signals, start and stop
 *
 * Every function that can fail returns 0 or a negative errno; the ones that
 * answer a request fill a struct kme_reply instead.
 */
#ifndef QKD_KME_H
#define QKD_KME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/qkd.h>
#include <linux/qkd_dev.h>

#define KME_DEFAULT_CONFIG	"/etc/qkd/kme.conf"
#define KME_DEFAULT_PORT	443
/* SAE and KME IDs: 1..64 of [A-Za-z0-9._~:@-] (no '/', nothing to escape). */
#define KME_ID_MAX		64
#define KME_IDENT_MAX		256
#define KME_PATH_MAX		4096
#define KME_MAX_SAES		256
#define KME_MAX_PAIRS		1024
/* Largest request body (a Key IDs of 256 key_IDs is about 15 KiB). */
#define KME_BODY_MAX		(64u * 1024)
/* Keys of a failed multi-key dec_keys held for a retry (keys.c). */
#define KME_PARK_MAX		1024

enum kme_ident_kind { KME_IDENT_CN, KME_IDENT_DNS, KME_IDENT_URI };

struct kme_sae {
	char id[KME_ID_MAX + 1];
	enum kme_ident_kind kind;
	char ident[KME_IDENT_MAX + 1];
};

struct kme_pair {
	char master[KME_ID_MAX + 1];
	char slave[KME_ID_MAX + 1];
	uint8_t stream[QKD_STREAM_ID_LEN];
	char peer_kme[KME_ID_MAX + 1];
};

struct kme_config {
	char kme_id[KME_ID_MAX + 1];
	char address[64];		/* "" = every address (IPv6 dual stack) */
	unsigned int port;
	char cert[KME_PATH_MAX];	/* the KME's certificate (PEM, chain) */
	char key[KME_PATH_MAX];		/* its private key (PEM) */
	char ca[KME_PATH_MAX];		/* CA(s) of the SAEs' certificates */
	char crl[KME_PATH_MAX];		/* optional CRL(s) of that CA */
	char device[KME_PATH_MAX];	/* default /dev/qkd */
	unsigned int max_keys_per_request;	/* 1..QKD_GET_KEYS_MAX */
	unsigned int connection_limit;
	unsigned int timeout_s;
	size_t n_saes, n_pairs;
	struct kme_sae saes[KME_MAX_SAES];
	struct kme_pair pairs[KME_MAX_PAIRS];
};

/* config.c */
void kme_config_default(struct kme_config *c);
/* Parses @text (@len bytes); on error -EINVAL and @err names the line. */
int kme_config_parse(struct kme_config *c, const char *text, size_t len,
		     char *err, size_t errlen);
int kme_config_load(struct kme_config *c, const char *path, char *err,
		    size_t errlen);
bool kme_id_valid(const char *s);
/* The pair with this master and slave, or NULL. */
const struct kme_pair *kme_pair_find(const struct kme_config *c,
				     const char *master, const char *slave);

/*
 * A reply: HTTP status and a body that may hold key bytes (base64); the
 * body is wiped when freed (kme_reply_free()). @allow: the Allow header of
 * a 405.
 */
struct kme_reply {
	unsigned int status;
	char *body;
	size_t len;
	const char *allow;
	unsigned int keys;	/* keys in the body, for the log */
};

/* json.c */
#define KME_HTTP_OK		200
#define KME_HTTP_BAD_REQUEST	400
#define KME_HTTP_UNAUTHORIZED	401
#define KME_HTTP_NOT_FOUND	404
#define KME_HTTP_BAD_METHOD	405
#define KME_HTTP_UNAVAILABLE	503

struct kme_key_request {
	bool has_number, has_size;
	uint32_t number;		/* default 1 */
	uint32_t size;			/* bits; default: the stream's */
	size_t n_additional;		/* additional_slave_SAE_IDs */
	size_t n_mandatory;		/* extension_mandatory entries */
	char mandatory[256];		/* their names, for the message */
};

struct kme_key_ids {
	size_t n;
	uint8_t ids[QKD_GET_KEYS_MAX][QKD_KEY_ID_LEN];
};

/*
 * Request parsers: 0, or -EINVAL with a message for the Error reply in
 * @err. A Key IDs with more than @max key_IDs fails.
 */
int kme_json_key_request(const char *body, size_t len,
			 struct kme_key_request *r, char *err, size_t errlen);
int kme_json_key_ids(const char *body, size_t len, unsigned int max,
		     struct kme_key_ids *r, char *err, size_t errlen);
/* Query strings of the GET forms: "number", "size"; "key_ID". */
int kme_query_key_request(const char *number, const char *size,
			  struct kme_key_request *r, char *err, size_t errlen);
int kme_query_key_id(const char *key_id, struct kme_key_ids *r, char *err,
		     size_t errlen);

struct kme_status {
	const char *source_kme, *target_kme, *master, *slave;
	uint32_t key_size_bits, stored, max_count, max_per_request;
	uint32_t min_size_bits, max_size_bits, max_sae_ids;
};
int kme_json_status(const struct kme_status *s, struct kme_reply *out);
/* An Error reply {"message": ...} with @status. */
int kme_json_error(unsigned int status, struct kme_reply *out,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * A Key container of @n keys of @key_size bytes at @keys, key_IDs @ids.
 * Written into a buffer of its own (no JSON library holds a copy), which
 * kme_reply_free() wipes.
 */
int kme_json_key_container(const uint8_t *keys, size_t key_size, size_t n,
			   const uint8_t (*ids)[QKD_KEY_ID_LEN],
			   struct kme_reply *out);
void kme_reply_free(struct kme_reply *r);
/* Wipes and frees a body handed to the HTTP library (its free callback). */
void kme_body_free(void *body, size_t len);

/* keys.c: the 014 operations on the store, for an authorised pair. */
struct kme_store {
	int fd;				/* /dev/qkd, read-write */
	unsigned int max_per_request;
};
int kme_store_open(struct kme_store *s, const char *device,
		   unsigned int max_per_request);
void kme_store_close(struct kme_store *s);
void kme_status(struct kme_store *s, const struct kme_config *c,
		const struct kme_pair *p, struct kme_reply *out);
void kme_enc_keys(struct kme_store *s, const struct kme_pair *p,
		  const struct kme_key_request *r, struct kme_reply *out);
void kme_dec_keys(struct kme_store *s, const struct kme_pair *p,
		  const struct kme_key_ids *r, struct kme_reply *out);
/* Keys parked now (for the tests and the log). */
size_t kme_parked(void);

/* tls.c */
struct kme_tls;
int kme_tls_init(struct kme_tls **t, const struct kme_config *c, char *err,
		 size_t errlen);
void kme_tls_free(struct kme_tls *t);
/*
 * The SAE of a peer's certificate chain (@certs of @n DER certificates, as
 * GnuTLS hands them): verified against the configured CA(s) and CRL(s),
 * valid now, for TLS client use; then matched against the configured
 * identities. NULL with @why set if any of that fails.
 */
const struct kme_sae *kme_tls_identify(struct kme_tls *t,
				       const struct kme_config *c,
				       const void *certs, unsigned int n,
				       char *why, size_t whylen);
/* Matching alone (config.c): a certificate's CN and SANs against the SAEs. */
const struct kme_sae *kme_sae_match(const struct kme_config *c, const char *cn,
				    const char *const *dns, size_t n_dns,
				    const char *const *uri, size_t n_uri,
				    char *why, size_t whylen);

/* http.c */
struct kme_server;
int kme_server_start(struct kme_server **srv, const struct kme_config *c,
		     struct kme_store *store, struct kme_tls *tls, char *err,
		     size_t errlen);
void kme_server_stop(struct kme_server *srv);

/* Log lines to stderr (the journal): never key bytes. */
void kme_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* QKD_KME_H */
