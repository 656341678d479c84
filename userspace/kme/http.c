// SPDX-License-Identifier: GPL-2.0-only
/*
 * The HTTPS server (libmicrohttpd over GnuTLS, TLS 1.2 and 1.3 only) and
 * the routes of ETSI GS QKD 014 v1.1.1, clause 5:
 *   GET      /api/v1/keys/{slave_SAE_ID}/status     (the master SAE)
 *   POST|GET /api/v1/keys/{slave_SAE_ID}/enc_keys   (the master SAE)
 *   POST|GET /api/v1/keys/{master_SAE_ID}/dec_keys  (the slave SAE)
 * Order of the checks: the client's certificate (401), the route (404,
 * 405), the pair of the caller and the SAE of the URL (401), the request's
 * format (400), then keys.c's checks (400, 503) before any key is taken.
 * One thread serves every connection (keys.c relies on it); connections
 * are kept alive and have TCP_NODELAY set. A reply's body is wiped when
 * libmicrohttpd frees it, after it was sent.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "kme.h"

#define API_PREFIX	"/api/v1/keys/"
#define TLS_PRIORITIES	"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct kme_server {
	struct MHD_Daemon *d;
	const struct kme_config *c;
	struct kme_store *store;
	struct kme_tls *tls;
	char *cert, *key, *ca;
	size_t key_len;
};

/* Per connection: the client's SAE, found once. */
struct conn {
	bool checked;
	const struct kme_sae *sae;
	char why[160];
};

/* Per request: its body. */
struct req {
	char *body;
	size_t len;
	bool too_big;
};

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			char *nb;

			if (cap > (1u << 20))
				goto bad;
			nb = malloc(cap + 8192);
			if (!nb)
				goto bad;
			if (buf) {
				memcpy(nb, buf, n);
				explicit_bzero(buf, cap);
				free(buf);
			}
			buf = nb;
			cap += 8192;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (!got)
			break;
	}
	if (ferror(f))
		goto bad;
	fclose(f);
	buf[n] = '\0';
	if (len)
		*len = cap;
	return buf;
bad:
	if (buf) {
		explicit_bzero(buf, cap);
		free(buf);
	}
	fclose(f);
	return NULL;
}

static void body_free_cb(void *cls)
{
	char *body = cls;

	kme_body_free(body, strlen(body) + 1);
}

static void on_connection(void *cls, struct MHD_Connection *mc,
			  void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	(void)cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		int one = 1;

		/* no Nagle stall between a reply's TLS records */
		if (ci)
			setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		*socket_context = calloc(1, sizeof(struct conn));
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
	}
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
			 enum MHD_RequestTerminationCode code)
{
	struct req *rq = *req_cls;

	(void)cls, (void)mc, (void)code;
	if (rq) {
		free(rq->body);
		free(rq);
	}
	*req_cls = NULL;
}

/* The caller's SAE (cached for the connection), or NULL and @why. */
static const struct kme_sae *caller(struct kme_server *s,
				    struct MHD_Connection *mc, const char **why)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	const union MHD_ConnectionInfo *ti;
	struct conn *cn = ci ? ci->socket_context : NULL;
	const gnutls_datum_t *certs = NULL;
	unsigned int n = 0;

	*why = "no connection state";
	if (!cn)
		return NULL;
	if (!cn->checked) {
		ti = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		if (ti && ti->tls_session)
			certs = gnutls_certificate_get_peers(ti->tls_session, &n);
		cn->sae = kme_tls_identify(s->tls, s->c, certs, certs ? n : 0,
					   cn->why, sizeof(cn->why));
		cn->checked = true;
	}
	*why = cn->why;
	return cn->sae;
}

struct args {
	unsigned int n_number, n_size, n_key_id, n_other;
	const char *number, *size, *key_id, *other;
};

static enum MHD_Result arg_cb(void *cls, enum MHD_ValueKind kind,
			      const char *key, const char *value)
{
	struct args *a = cls;

	(void)kind;
	if (!strcmp(key, "number"))
		a->n_number++, a->number = value ? value : "";
	else if (!strcmp(key, "size"))
		a->n_size++, a->size = value ? value : "";
	else if (!strcmp(key, "key_ID"))
		a->n_key_id++, a->key_id = value ? value : "";
	else if (!a->n_other++)
		a->other = key;
	return MHD_YES;
}

/* The query of a GET: only the parameters @allowed names, each once. */
static int query(struct MHD_Connection *mc, const char *allowed,
		 struct args *a, struct kme_reply *out)
{
	memset(a, 0, sizeof(*a));
	MHD_get_connection_values(mc, MHD_GET_ARGUMENT_KIND, arg_cb, a);
	if (a->n_other || (a->n_number && !strstr(allowed, "number")) ||
	    (a->n_size && !strstr(allowed, "size")) ||
	    (a->n_key_id && !strstr(allowed, "key_ID"))) {
		kme_json_error(KME_HTTP_BAD_REQUEST, out,
			       "unknown query parameter \"%.64s\" (this request takes %s)",
			       a->n_other ? a->other : a->n_number ? "number" :
			       a->n_size ? "size" : "key_ID", allowed);
		return -EINVAL;
	}
	if (a->n_number > 1 || a->n_size > 1 || a->n_key_id > 1) {
		kme_json_error(KME_HTTP_BAD_REQUEST, out,
			       "a query parameter is given twice");
		return -EINVAL;
	}
	return 0;
}

static void route(struct kme_server *s, struct MHD_Connection *mc,
		  const char *url, const char *method, struct req *rq,
		  const struct kme_sae *sae, struct kme_reply *out)
{
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	char other[KME_ID_MAX + 1], err[256];
	const struct kme_pair *p;
	const char *op;
	size_t n;

	if (strncmp(url, API_PREFIX, strlen(API_PREFIX))) {
		kme_json_error(KME_HTTP_NOT_FOUND, out, "no such resource");
		return;
	}
	url += strlen(API_PREFIX);
	op = strchr(url, '/');
	n = op ? (size_t)(op - url) : 0;
	if (!op || (strcmp(op, "/status") && strcmp(op, "/enc_keys") &&
		    strcmp(op, "/dec_keys"))) {
		kme_json_error(KME_HTTP_NOT_FOUND, out, "no such resource");
		return;
	}
	op++;
	if (!strcmp(op, "status") ? !get : !get && !post) {
		kme_json_error(KME_HTTP_BAD_METHOD, out, "%s takes %s", op,
			       !strcmp(op, "status") ? "GET" : "GET or POST");
		out->allow = !strcmp(op, "status") ? "GET" : "GET, POST";
		return;
	}
	if (n > KME_ID_MAX) {
		kme_json_error(KME_HTTP_UNAUTHORIZED, out,
			       "SAE %s is not paired with that SAE", sae->id);
		return;
	}
	memcpy(other, url, n);
	other[n] = '\0';
	if (!strcmp(op, "dec_keys"))
		p = kme_pair_find(s->c, other, sae->id);
	else
		p = kme_pair_find(s->c, sae->id, other);
	if (!p) {
		kme_json_error(KME_HTTP_UNAUTHORIZED, out,
			       !strcmp(op, "dec_keys") ?
			       "SAE %s is not the slave of master SAE %s here" :
			       "SAE %s is not the master of slave SAE %s here",
			       sae->id, kme_id_valid(other) ? other : "(invalid ID)");
		return;
	}
	if (rq->too_big) {
		kme_json_error(KME_HTTP_BAD_REQUEST, out,
			       "request body above %u bytes", KME_BODY_MAX);
		return;
	}
	if (!strcmp(op, "status")) {
		struct args a;

		if (!query(mc, "no parameter", &a, out))
			kme_status(s->store, s->c, p, out);
	} else if (!strcmp(op, "enc_keys")) {
		struct kme_key_request r;
		struct args a;
		int e;

		if (get) {
			if (query(mc, "number and size", &a, out))
				return;
			e = kme_query_key_request(a.number, a.size, &r, err, sizeof(err));
		} else {
			e = kme_json_key_request(rq->body, rq->len, &r, err, sizeof(err));
		}
		if (e)
			kme_json_error(KME_HTTP_BAD_REQUEST, out, "%s", err);
		else
			kme_enc_keys(s->store, p, &r, out);
	} else {
		struct kme_key_ids *r = malloc(sizeof(*r));
		struct args a;
		int e;

		if (!r) {
			kme_json_error(KME_HTTP_UNAVAILABLE, out, "out of memory");
			return;
		}
		if (get) {
			e = query(mc, "key_ID", &a, out);
			if (!e && kme_query_key_id(a.key_id, r, err, sizeof(err))) {
				kme_json_error(KME_HTTP_BAD_REQUEST, out, "%s", err);
				e = -EINVAL;
			}
		} else {
			e = kme_json_key_ids(rq->body, rq->len, s->store->max_per_request,
					     r, err, sizeof(err));
			if (e)
				kme_json_error(KME_HTTP_BAD_REQUEST, out, "%s", err);
		}
		if (!e)
			kme_dec_keys(s->store, p, r, out);
		free(r);
	}
}

static enum MHD_Result send_reply(struct MHD_Connection *mc,
				  struct kme_reply *rep)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!rep->body)
		return MHD_NO;	/* out of memory even for an Error: drop */
	resp = MHD_create_response_from_buffer_with_free_callback_cls(
		rep->len, rep->body, body_free_cb, rep->body);
	if (!resp) {
		kme_reply_free(rep);
		return MHD_NO;
	}
	rep->body = NULL;	/* the response owns it now, and wipes it */
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (rep->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
	ret = MHD_queue_response(mc, rep->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *mc,
			      const char *url, const char *method,
			      const char *version, const char *upload,
			      size_t *upload_size, void **req_cls)
{
	struct kme_server *s = cls;
	struct req *rq = *req_cls;
	struct kme_reply rep = { 0 };
	const struct kme_sae *sae;
	const char *why;
	unsigned int status;
	enum MHD_Result ret;

	(void)version;
	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*req_cls = rq;
		return MHD_YES;
	}
	if (*upload_size) {
		size_t n = *upload_size;

		*upload_size = 0;
		if (rq->too_big || n > KME_BODY_MAX - rq->len) {
			rq->too_big = true;
			return MHD_YES;
		}
		if (!rq->body) {
			rq->body = malloc(KME_BODY_MAX);
			if (!rq->body)
				return MHD_NO;
		}
		memcpy(rq->body + rq->len, upload, n);
		rq->len += n;
		return MHD_YES;
	}
	sae = caller(s, mc, &why);
	if (!sae) {
		kme_json_error(KME_HTTP_UNAUTHORIZED, &rep, "%s", why);
		kme_log("%s %s: 401 (%s)", method, url, why);
	} else {
		route(s, mc, url, method, rq, sae, &rep);
		kme_log("%s %s %s: %u, %u keys", sae->id, method, url, rep.status,
			rep.keys);
	}
	status = rep.status;
	ret = send_reply(mc, &rep);
	kme_reply_free(&rep);
	(void)status;
	return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	kme_log("microhttpd: %s", buf);
}

int kme_server_start(struct kme_server **out, const struct kme_config *c,
		     struct kme_store *store, struct kme_tls *tls, char *err,
		     size_t errlen)
{
	struct kme_server *s = calloc(1, sizeof(*s));
	/*
	 * poll(), not epoll: libmicrohttpd 0.9.75 (Debian 12) with TLS and
	 * epoll spins a whole CPU while a client stalls in its handshake
	 * (epoll_wait with timeout 0, recv EAGAIN, again) -- anyone who can
	 * reach the port could keep cores busy without a certificate
	 * (qkd_kme.sh: "a stalled TLS handshake").
	 */
	unsigned int flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
			     MHD_USE_POLL | MHD_USE_ERROR_LOG;
	struct sockaddr_in6 a6 = { 0 };
	struct sockaddr_in a4 = { 0 };
	struct sockaddr *sa = NULL;
	struct MHD_OptionItem opts[16];
	unsigned int i = 0;

	if (!s)
		return -ENOMEM;
	s->c = c;
	s->store = store;
	s->tls = tls;
	s->cert = read_file(c->cert, NULL);
	s->key = read_file(c->key, &s->key_len);
	s->ca = read_file(c->ca, NULL);
	if (!s->cert || !s->key || !s->ca) {
		fail(err, errlen, "cannot read %s", !s->cert ? c->cert :
		     !s->key ? c->key : c->ca);
		kme_server_stop(s);
		return -EINVAL;
	}
	if (c->address[0]) {
		if (inet_pton(AF_INET, c->address, &a4.sin_addr) == 1) {
			a4.sin_family = AF_INET;
			a4.sin_port = htons((uint16_t)c->port);
			sa = (struct sockaddr *)&a4;
		} else if (inet_pton(AF_INET6, c->address, &a6.sin6_addr) == 1) {
			a6.sin6_family = AF_INET6;
			a6.sin6_port = htons((uint16_t)c->port);
			sa = (struct sockaddr *)&a6;
			flags |= MHD_USE_IPv6;
		} else {
			fail(err, errlen, "address %s is not an IPv4 or IPv6 address",
			     c->address);
			kme_server_stop(s);
			return -EINVAL;
		}
	} else {
		flags |= MHD_USE_DUAL_STACK;
	}
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->key };
	/* a client certificate is asked for, of the SAEs' CA; tls.c verifies */
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, s->ca };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
					     (void *)TLS_PRIORITIES };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION,
					     (intptr_t)on_connection, NULL };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED,
					     (intptr_t)on_completed, NULL };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
					     c->connection_limit, NULL };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT,
					     c->timeout_s, NULL };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER,
					     (intptr_t)mhd_log, NULL };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL };
	if (sa)
		opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, sa };
	opts[i++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
	s->d = MHD_start_daemon(flags, (uint16_t)c->port, NULL, NULL, handle, s,
				MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	if (!s->d) {
		fail(err, errlen, "cannot serve HTTPS on %s port %u (the address in use, the certificate or key unusable?)",
		     c->address[0] ? c->address : "*", c->port);
		kme_server_stop(s);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

void kme_server_stop(struct kme_server *s)
{
	if (!s)
		return;
	if (s->d)
		MHD_stop_daemon(s->d);
	free(s->cert);
	free(s->ca);
	if (s->key) {
		explicit_bzero(s->key, s->key_len);
		free(s->key);
	}
	free(s);
}
