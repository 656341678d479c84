// SPDX-License-Identifier: GPL-2.0-only
/*
 * The SAE's identity: its TLS client certificate. libmicrohttpd runs the
 * handshake with GnuTLS and asks for a client certificate (the configured
 * CA as its trust, MHD_OPTION_HTTPS_MEM_TRUST), but it does not verify one;
 * this file does, for every connection before its first request is
 * answered: the chain against the configured CA(s) and CRL(s) (a trust
 * list of our own), valid now (not before its notBefore, not after its
 * notAfter, GnuTLS's default), for TLS client use when it names its
 * purposes; then the SAE whose identity (subject CN, or a DNS or URI
 * subjectAltName) it carries.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "kme.h"

#define MAX_SANS	16

struct kme_tls {
	gnutls_x509_trust_list_t trust;
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

int kme_tls_init(struct kme_tls **out, const struct kme_config *c, char *err,
		 size_t errlen)
{
	struct kme_tls *t = calloc(1, sizeof(*t));
	int r;

	if (!t)
		return -ENOMEM;
	r = gnutls_x509_trust_list_init(&t->trust, 0);
	if (r < 0) {
		free(t);
		return fail(err, errlen, "gnutls: %s", gnutls_strerror(r));
	}
	r = gnutls_x509_trust_list_add_trust_file(t->trust, c->ca,
						  c->crl[0] ? c->crl : NULL,
						  GNUTLS_X509_FMT_PEM,
						  c->crl[0] ? GNUTLS_TL_VERIFY_CRL : 0, 0);
	if (r <= 0) {
		kme_tls_free(t);
		return fail(err, errlen, "%s%s%s: no CA certificate read (%s)", c->ca,
			    c->crl[0] ? " and " : "", c->crl,
			    r < 0 ? gnutls_strerror(r) : "empty");
	}
	*out = t;
	return 0;
}

void kme_tls_free(struct kme_tls *t)
{
	if (!t)
		return;
	gnutls_x509_trust_list_deinit(t->trust, 1);
	free(t);
}

static void status_text(unsigned int status, char *why, size_t whylen)
{
	const char *s = "not trusted";

	if (status & GNUTLS_CERT_REVOKED)
		s = "revoked";
	else if (status & GNUTLS_CERT_EXPIRED)
		s = "expired";
	else if (status & GNUTLS_CERT_NOT_ACTIVATED)
		s = "not yet valid";
	else if (status & GNUTLS_CERT_SIGNER_NOT_FOUND)
		s = "not issued by a configured CA";
	else if (status & GNUTLS_CERT_PURPOSE_MISMATCH)
		s = "not for TLS client use";
	else if (status & GNUTLS_CERT_INSECURE_ALGORITHM)
		s = "signed with an insecure algorithm";
	else if (status & GNUTLS_CERT_SIGNATURE_FAILURE)
		s = "badly signed";
	fail(why, whylen, "client certificate %s", s);
}

const struct kme_sae *kme_tls_identify(struct kme_tls *t,
				       const struct kme_config *c,
				       const void *certs, unsigned int n,
				       char *why, size_t whylen)
{
	const gnutls_datum_t *der = certs;
	gnutls_x509_crt_t chain[8] = { 0 };
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (void *)GNUTLS_KP_TLS_WWW_CLIENT,
	};
	char *dns[MAX_SANS] = { 0 }, *uri[MAX_SANS] = { 0 };
	size_t n_dns = 0, n_uri = 0;
	const struct kme_sae *sae = NULL;
	char cn[KME_IDENT_MAX + 1] = "";
	unsigned int i, status = 0, nchain;
	size_t cnlen = sizeof(cn);
	int r;

	if (!n || !der) {
		fail(why, whylen, "no client certificate");
		return NULL;
	}
	nchain = n < 8 ? n : 8;
	for (i = 0; i < nchain; i++) {
		if (gnutls_x509_crt_init(&chain[i]) < 0 ||
		    gnutls_x509_crt_import(chain[i], &der[i], GNUTLS_X509_FMT_DER) < 0) {
			fail(why, whylen, "client certificate unreadable");
			goto out;
		}
	}
	r = gnutls_x509_trust_list_verify_crt2(t->trust, chain, nchain, &purpose, 1,
					       0, &status, NULL);
	if (r < 0 || status) {
		if (r < 0)
			fail(why, whylen, "client certificate: %s", gnutls_strerror(r));
		else
			status_text(status, why, whylen);
		goto out;
	}
	r = gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_X520_COMMON_NAME, 0,
					  0, cn, &cnlen);
	if (r < 0 || strlen(cn) != cnlen)
		cn[0] = '\0';	/* none, too long, or with a NUL inside */
	else {
		/* a second CN makes the subject ambiguous */
		char cn2[8];
		size_t len2 = sizeof(cn2);

		r = gnutls_x509_crt_get_dn_by_oid(chain[0], GNUTLS_OID_X520_COMMON_NAME,
						  1, 0, cn2, &len2);
		if (r != GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			cn[0] = '\0';
	}
	for (i = 0; i < 64 && n_dns < MAX_SANS && n_uri < MAX_SANS; i++) {
		char buf[KME_IDENT_MAX + 1];
		size_t len = sizeof(buf);
		unsigned int critical;

		r = gnutls_x509_crt_get_subject_alt_name(chain[0], i, buf, &len,
							 &critical);
		if (r == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
			break;
		if (r < 0 || strlen(buf) != len)
			continue;
		if (r == GNUTLS_SAN_DNSNAME)
			dns[n_dns++] = strdup(buf);
		else if (r == GNUTLS_SAN_URI)
			uri[n_uri++] = strdup(buf);
	}
	for (i = 0; i < n_dns; i++)
		if (!dns[i])
			goto nomem;
	for (i = 0; i < n_uri; i++)
		if (!uri[i])
			goto nomem;
	sae = kme_sae_match(c, cn[0] ? cn : NULL, (const char *const *)dns, n_dns,
			    (const char *const *)uri, n_uri, why, whylen);
	goto out;
nomem:
	fail(why, whylen, "out of memory");
out:
	for (i = 0; i < MAX_SANS; i++) {
		free(dns[i]);
		free(uri[i]);
	}
	for (i = 0; i < nchain; i++)
		if (chain[i])
			gnutls_x509_crt_deinit(chain[i]);
	return sae;
}
