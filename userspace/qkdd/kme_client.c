// SPDX-License-Identifier: GPL-2.0-only
/*
 * --key-source etsi014: qkdd as an ETSI GS QKD 014 client (an SAE) of the
 * vendor KME at its site. One libcurl easy handle, reused (keep-alive,
 * TCP_NODELAY), HTTPS only, TLS 1.2 or later, the KME's certificate and
 * host name verified against --kme-ca, our certificate (--kme-cert,
 * --kme-key) for the KME's client authentication. No redirect is
 * followed, no proxy is used.
 *
 * The answers go into one buffer of ours (CURLOPT_WRITEFUNCTION), of at
 * most KME_BODY_MAX bytes, wiped after every request on every path; the
 * keys are decoded from it by kme_parse.c. No key byte is logged: the
 * errors name the HTTP status and the KME's message, or curl's error.
 *
 * What this does not reach: libcurl's receive buffer and OpenSSL's TLS
 * record buffers, which hold the same bytes before on_data() copies them
 * and are freed by those libraries without a wipe (neither has an option
 * for it). The kernel store stays the only place keys live for long; the
 * vendor KME's keys pass through this process as they would through any
 * ETSI 014 client.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "qkdd.h"

/* connect, and a whole request: below the classical channel's timeout
 * (the peer waits for our next message that long) */
#define KME_CONNECT_S	5
#define KME_REQUEST_S	10

struct kme_client {
	CURL *h;
	struct curl_slist *hdr;
	char base[QKDD_ADDR_MAX + 96];	/* https://HOST:PORT/api/v1/keys/SAE */
	char *buf;			/* the answer */
	size_t len;
	bool too_big;
	char cerr[CURL_ERROR_SIZE];
};

static size_t on_data(char *p, size_t size, size_t n, void *arg)
{
	struct kme_client *c = arg;
	size_t len = size * n;

	if (len > KME_BODY_MAX - c->len) {
		c->too_big = true;
		return 0;	/* CURLE_WRITE_ERROR */
	}
	memcpy(c->buf + c->len, p, len);
	c->len += len;
	return len;
}

/* what on_data() wrote: [0, len) */
static void wipe_answer(struct kme_client *c)
{
	explicit_bzero(c->buf, c->len);
	c->len = 0;
	c->too_big = false;
}

struct kme_client *kme_client_new(const struct qkdd_opts *o, char *err,
				  size_t errlen)
{
	static bool global;
	struct kme_client *c;
	size_t n;

	if (!global) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
			snprintf(err, errlen, "libcurl: cannot initialise");
			return NULL;
		}
		global = true;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		goto nomem;
	c->buf = malloc(KME_BODY_MAX + 1);
	c->h = curl_easy_init();
	c->hdr = curl_slist_append(NULL, "Content-Type: application/json");
	if (!c->buf || !c->h || !c->hdr)
		goto nomem;
	n = strlen(o->kme);
	while (n && o->kme[n - 1] == '/')
		n--;
	snprintf(c->base, sizeof(c->base), "%.*s/api/v1/keys/%s", (int)n,
		 o->kme, o->kme_sae);
#define SET(opt, v)							\
	do {								\
		if (curl_easy_setopt(c->h, opt, v) != CURLE_OK) {	\
			snprintf(err, errlen, "libcurl: cannot set %s", #opt); \
			goto fail;					\
		}							\
	} while (0)
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	SET(CURLOPT_CAINFO, o->kme_ca);
	SET(CURLOPT_CAPATH, NULL);
	SET(CURLOPT_SSLCERT, o->kme_cert);
	SET(CURLOPT_SSLCERTTYPE, "PEM");
	SET(CURLOPT_SSLKEY, o->kme_key);
	SET(CURLOPT_SSLKEYTYPE, "PEM");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TCP_NODELAY, 1L);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_CONNECTTIMEOUT, (long)KME_CONNECT_S);
	SET(CURLOPT_TIMEOUT, (long)KME_REQUEST_S);
	SET(CURLOPT_WRITEFUNCTION, on_data);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_ERRORBUFFER, c->cerr);
	SET(CURLOPT_HTTPHEADER, c->hdr);
	SET(CURLOPT_USERAGENT, "qkdd");
#undef SET
	return c;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	kme_client_free(c);
	return NULL;
}

void kme_client_free(struct kme_client *c)
{
	if (!c)
		return;
	if (c->h)
		curl_easy_cleanup(c->h);
	curl_slist_free_all(c->hdr);
	if (c->buf) {
		wipe_answer(c);
		free(c->buf);
	}
	free(c);
}

/* What a TLS failure usually means, for the log line. */
static const char *tls_hint(CURLcode cr)
{
	switch (cr) {
	case CURLE_PEER_FAILED_VERIFICATION:
		return " (the KME's certificate is not signed by --kme-ca or does not name the host of --kme)";
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
		return " (our --kme-cert/--kme-key cannot be used)";
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return " (TLS: the KME may refuse our client certificate --kme-cert, e.g. one of another CA)";
	default:
		return "";
	}
}

/*
 * One request: GET @path (no @body) or POST @body. 0 with a 200 answer in
 * c->buf, or -errno with the reason in @err (the answer wiped).
 */
static int request(struct kme_client *c, const char *what, const char *path,
		   const char *body, char *err, size_t errlen)
{
	char url[sizeof(c->base) + 32], msg[160];
	long code = 0;
	CURLcode cr;

	wipe_answer(c);
	c->cerr[0] = '\0';
	snprintf(url, sizeof(url), "%s/%s", c->base, path);
	curl_easy_setopt(c->h, CURLOPT_URL, url);
	if (body) {
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	} else {
		curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
	}
	cr = curl_easy_perform(c->h);
	if (body)
		curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, NULL);
	if (cr != CURLE_OK) {
		if (c->too_big)
			snprintf(err, errlen,
				 "%s: an answer of more than %u bytes: refused",
				 what, KME_BODY_MAX);
		else
			snprintf(err, errlen, "%s: %s%s%s%s", what,
				 curl_easy_strerror(cr), c->cerr[0] ? ": " : "",
				 c->cerr, tls_hint(cr));
		wipe_answer(c);
		return cr == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT :
		       -ECONNREFUSED;
	}
	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200) {
		kme_parse_message(c->buf, c->len, msg, sizeof(msg));
		snprintf(err, errlen, "%s: HTTP %ld%s%s", what, code,
			 msg[0] ? ": " : "", msg);
		wipe_answer(c);
		return code == 503 ? -EAGAIN : -EPROTO;
	}
	return 0;
}

int kme_get_status(struct kme_client *c, struct kme_status *st, char *err,
		   size_t errlen)
{
	char why[200];
	int r = request(c, "Status", "status", NULL, err, errlen);

	if (r)
		return r;
	r = kme_parse_status(c->buf, c->len, st, why, sizeof(why));
	wipe_answer(c);
	if (r)
		snprintf(err, errlen, "Status: %s", why);
	return r;
}

int kme_enc_keys(struct kme_client *c, uint32_t number, uint32_t key_size,
		 struct kme_keys *out, char *err, size_t errlen)
{
	char body[96], why[200];
	int r;

	memset(out, 0, sizeof(*out));
	snprintf(body, sizeof(body), "{\"number\":%" PRIu32 ",\"size\":%" PRIu32 "}",
		 number, key_size * 8);
	r = request(c, "enc_keys", "enc_keys", body, err, errlen);
	if (r)
		return r;
	r = kme_parse_keys(c->buf, c->len, number, key_size, NULL, out, why,
			   sizeof(why));
	wipe_answer(c);
	if (r)
		snprintf(err, errlen, "enc_keys: %s", why);
	return r;
}

int kme_dec_keys(struct kme_client *c, const kme_key_id *ids,
		 uint32_t count, uint32_t key_size, struct kme_keys *out,
		 char *err, size_t errlen)
{
	size_t cap = 32 + (size_t)count * (KME_KEY_ID_MAX + 16), len = 0;
	char *body = malloc(cap), why[200];
	int r;

	memset(out, 0, sizeof(*out));
	if (!body) {
		snprintf(err, errlen, "dec_keys: out of memory");
		return -ENOMEM;
	}
	len += (size_t)snprintf(body + len, cap - len, "{\"key_IDs\":[");
	for (uint32_t i = 0; i < count; i++)
		len += (size_t)snprintf(body + len, cap - len,
					"%s{\"key_ID\":\"%s\"}", i ? "," : "",
					ids[i]);
	snprintf(body + len, cap - len, "]}");
	r = request(c, "dec_keys", "dec_keys", body, err, errlen);
	free(body);
	if (r)
		return r;
	r = kme_parse_keys(c->buf, c->len, count, key_size, ids, out, why,
			   sizeof(why));
	wipe_answer(c);
	if (r)
		snprintf(err, errlen, "dec_keys: %s", why);
	return r;
}
