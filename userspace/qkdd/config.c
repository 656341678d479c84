// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd options and configuration file.
 *
 * The configuration file has the long options as keys: one option per
 * line, "key = value", "key value" or a bare flag ("no-kernel"), '#'
 * starts a comment. Command-line options override the file. Every error
 * names its line so that an operator can fix it.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/util.h"
#include "qkd/verify.h"
#include "qkdd.h"

#define CONFIG_MAX_BYTES	(1u << 20)

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

void qkdd_opts_default(struct qkdd_opts *o)
{
	memset(o, 0, sizeof(*o));
	qkd_channel_params_default(&o->ch);
	o->block_bits = 1u << 20;
	o->key_size = 32;
	o->qber_abort = 0.11;
	o->sample_frac = 0.2;
	o->eps_sec = 1e-10;
	o->eps_cor = 1e-15;
	o->tag_bits = QKD_VERIFY_DEFAULT_TAG_BITS;
	o->auth_target = 64 * 1024;
	o->timeout_s = 30;
	o->retry_max_s = 10;
	o->backoff_base_s = 1;
	o->backoff_max_s = QKDD_AUTH_BACKOFF_MAX_S;
	o->kme_keys = QKDD_KME_KEYS_DEFAULT;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (!s || !*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (!n || n >= cap)
		return -EINVAL;
	memcpy(dst, v, n + 1);
	return 0;
}

/* "0.5/0.1/0": up to QKD_MAX_INTENSITIES values. */
static int parse_list(const char *s, double lo, double hi, double *out,
		      unsigned int *n)
{
	char buf[128], *tok, *save = NULL;
	unsigned int i = 0;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, s);
	for (tok = strtok_r(buf, "/", &save); tok;
	     tok = strtok_r(NULL, "/", &save)) {
		if (i >= QKD_MAX_INTENSITIES ||
		    parse_double(tok, lo, hi, &out[i]))
			return -EINVAL;
		i++;
	}
	if (!i)
		return -EINVAL;
	*n = i;
	return 0;
}

int qkdd_channel_parse(struct qkd_channel_params *out, const char *spec,
		       char *err, size_t errlen)
{
	/* Work on a copy: a rejected spec leaves *out as it was. */
	struct qkd_channel_params c = *out, *p = &c;
	char buf[1024], *tok, *save = NULL;
	const char *why = NULL;
	unsigned int n;
	double v[QKD_MAX_INTENSITIES];

	if (!spec || strlen(spec) >= sizeof(buf))
		return fail(err, errlen, "channel: empty or too long");
	strcpy(buf, spec);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');
		int r = 0;

		if (!val)
			return fail(err, errlen,
				    "channel: '%s' is not KEY=VALUE", tok);
		*val++ = '\0';
		if (!strcmp(tok, "fiber-km"))
			r = parse_double(val, 0, 1000, &p->length_km);
		else if (!strcmp(tok, "loss-db-km"))
			r = parse_double(val, 0, 10, &p->loss_db_per_km);
		else if (!strcmp(tok, "det-eff"))
			r = parse_double(val, 0, 1, &p->det_efficiency);
		else if (!strcmp(tok, "dark"))
			r = parse_double(val, 0, 1, &p->dark_count_prob);
		else if (!strcmp(tok, "misalign"))
			r = parse_double(val, 0, 0.5, &p->misalignment);
		else if (!strcmp(tok, "pz-alice"))
			r = parse_double(val, 0, 1, &p->p_z_alice);
		else if (!strcmp(tok, "pz-bob"))
			r = parse_double(val, 0, 1, &p->p_z_bob);
		else if (!strcmp(tok, "eve"))
			r = parse_double(val, 0, 1, &p->eve_ir_fraction);
		else if (!strcmp(tok, "mu")) {
			r = parse_list(val, 0, 100, v, &n);
			if (!r) {
				memcpy(p->mu, v, n * sizeof(v[0]));
				p->n_intensities = n;
			}
		} else if (!strcmp(tok, "p-mu")) {
			r = parse_list(val, 0, 1, v, &n);
			if (!r)
				memcpy(p->p_intensity, v, n * sizeof(v[0]));
			if (!r && n != p->n_intensities)
				return fail(err, errlen,
					    "channel: p-mu has %u values, mu has %u (give mu first)",
					    n, p->n_intensities);
		} else if (!strcmp(tok, "source")) {
			if (!strcmp(val, "wcp"))
				p->source = QKD_SOURCE_WCP;
			else if (!strcmp(val, "single-photon"))
				p->source = QKD_SOURCE_SINGLE_PHOTON;
			else
				r = -EINVAL;
		} else if (!strcmp(tok, "eve-basis")) {
			if (!strcmp(val, "random"))
				p->eve_basis = QKD_EVE_BASIS_RANDOM;
			else if (!strcmp(val, "z"))
				p->eve_basis = QKD_EVE_BASIS_Z;
			else if (!strcmp(val, "x"))
				p->eve_basis = QKD_EVE_BASIS_X;
			else
				r = -EINVAL;
		} else if (!strcmp(tok, "sampling")) {
			if (!strcmp(val, "pulses"))
				p->per_detection = false;
			else if (!strcmp(val, "detections"))
				p->per_detection = true;
			else
				r = -EINVAL;
		} else if (!strcmp(tok, "eve-split")) {
			if (!strcmp(val, "none"))
				p->eve_split = QKD_EVE_SPLIT_NONE;
			else if (!strcmp(val, "beam"))
				p->eve_split = QKD_EVE_BEAM_SPLIT;
			else if (!strcmp(val, "pns"))
				p->eve_split = QKD_EVE_PNS;
			else
				r = -EINVAL;
		} else {
			return fail(err, errlen, "channel: unknown key '%s'",
				    tok);
		}
		if (r)
			return fail(err, errlen,
				    "channel: bad value '%s' for %s", val, tok);
	}
	/* A single-photon source has one class; keep the arrays sane. */
	if (p->source == QKD_SOURCE_SINGLE_PHOTON && p->n_intensities != 1) {
		p->n_intensities = 1;
		p->p_intensity[0] = 1;
	}
	if (p->n_intensities == 1)
		p->p_intensity[0] = 1;
	if (qkd_channel_params_check(p, &why))
		return fail(err, errlen, "channel: %s", why ? why : "invalid");
	*out = c;
	return 0;
}

struct optdesc {
	const char *name;
	bool flag;
};

static const struct optdesc known[] = {
	{ "role", false }, { "peer", false }, { "listen", false },
	{ "stream", false }, { "link", false }, { "psk", false },
	{ "cert", false }, { "key", false }, { "ca", false },
	{ "peer-name", false }, { "seed", false }, { "channel", false },
	{ "block-bits", false }, { "rounds", false }, { "no-kernel", true },
	{ "out", false }, { "status", false }, { "control", false },
	{ "key-size", false },
	{ "state-dir", false },
	{ "qber-abort", false }, { "sample", false }, { "eps-sec", false },
	{ "eps-cor", false }, { "tag-bits", false }, { "auth-reserve", false },
	{ "timeout", false }, { "retry-max", false }, { "verbose", true },
	{ "backoff-base", false }, { "backoff-max", false },
	{ "simulated-channel-test-keys-only", true }, { "replay", false },
	{ "key-source", false }, { "kme", false }, { "kme-cert", false },
	{ "kme-key", false }, { "kme-ca", false }, { "kme-sae", false },
	{ "kme-keys", false }, { "reconcile", false },
};

/* --kme: https://HOST:PORT (HOST a name, an IPv4 or [IPv6] address), a
 * trailing '/' allowed, nothing else: the API path is ETSI 014's. */
static bool kme_url_ok(const char *u)
{
	const char *colon, *host_end;
	uint64_t port;
	char num[8];
	size_t n;

	if (strncmp(u, "https://", 8))
		return false;
	u += 8;
	n = strlen(u);
	while (n && u[n - 1] == '/')
		n--;
	if (!n || n >= QKDD_ADDR_MAX || memchr(u, '/', n) || memchr(u, '@', n) ||
	    memchr(u, '?', n) || memchr(u, '#', n))
		return false;
	if (u[0] == '[') {
		host_end = memchr(u, ']', n);
		if (!host_end || host_end == u + 1 || host_end[1] != ':')
			return false;
		colon = host_end + 1;
	} else {
		colon = memchr(u, ':', n);
		if (!colon || colon == u || memchr(colon + 1, ':', n - (size_t)(colon + 1 - u)))
			return false;
	}
	if ((size_t)(u + n - colon - 1) >= sizeof(num) || colon + 1 == u + n)
		return false;
	memcpy(num, colon + 1, (size_t)(u + n - colon - 1));
	num[u + n - colon - 1] = '\0';
	return !qkd_parse_u64(num, 65535, &port) && port > 0;
}

/* --kme-sae: it goes into the URL path: [A-Za-z0-9_.-], 1..64 */
static bool kme_sae_ok(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > QKDD_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("_.-", s[i]))
			return false;
	return true;
}

int qkdd_opt_set(struct qkdd_opts *o, const char *name, const char *value,
		 char *err, size_t errlen)
{
	const struct optdesc *d = NULL;
	uint32_t *dst = NULL;	/* set from u once the value is accepted */
	uint64_t u = 0;
	uint8_t id[16];
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (!strcmp(known[i].name, name))
			d = &known[i];
	if (!d)
		return fail(err, errlen, "unknown option '%s'", name);
	if (d->flag) {
		if (value && strcmp(value, "yes") && strcmp(value, "true") &&
		    strcmp(value, "1"))
			return fail(err, errlen,
				    "'%s' is a flag: no value, or yes/true/1",
				    name);
		if (!strcmp(name, "no-kernel"))
			o->no_kernel = true;
		else if (!strcmp(name, "simulated-channel-test-keys-only"))
			o->sim_test_keys = true;
		else
			o->verbose = true;
		return 0;
	}
	if (!value || !*value)
		return fail(err, errlen, "option '%s' needs a value", name);

	if (!strcmp(name, "role")) {
		if (!strcmp(value, "alice"))
			o->role = QKDD_ALICE;
		else if (!strcmp(value, "bob"))
			o->role = QKDD_BOB;
		else
			return fail(err, errlen,
				    "role must be alice or bob, not '%s'",
				    value);
	} else if (!strcmp(name, "peer")) {
		r = copy_str(o->peer, sizeof(o->peer), value);
	} else if (!strcmp(name, "listen")) {
		r = copy_str(o->listen, sizeof(o->listen), value);
	} else if (!strcmp(name, "stream")) {
		if (qkd_uuid_parse(value, id) || qkd_uuid_is_zero(id))
			return fail(err, errlen,
				    "stream must be a non-zero UUID, not '%s'",
				    value);
		memcpy(o->stream, id, sizeof(id));
		o->have_stream = true;
	} else if (!strcmp(name, "link")) {
		if (strlen(value) >= 32)	/* QKD_LINK_NAME_MAX */
			r = -EINVAL;
		else
			r = copy_str(o->link, sizeof(o->link), value);
	} else if (!strcmp(name, "psk")) {
		r = copy_str(o->psk, sizeof(o->psk), value);
	} else if (!strcmp(name, "replay")) {
		r = copy_str(o->replay, sizeof(o->replay), value);
	} else if (!strcmp(name, "cert")) {
		r = copy_str(o->cert, sizeof(o->cert), value);
	} else if (!strcmp(name, "key")) {
		r = copy_str(o->key, sizeof(o->key), value);
	} else if (!strcmp(name, "ca")) {
		r = copy_str(o->ca, sizeof(o->ca), value);
	} else if (!strcmp(name, "key-source")) {
		if (!strcmp(value, "bb84"))
			o->key_source = QKDD_SRC_BB84;
		else if (!strcmp(value, "etsi014"))
			o->key_source = QKDD_SRC_ETSI014;
		else
			return fail(err, errlen,
				    "key-source must be bb84 or etsi014, not '%s'",
				    value);
	} else if (!strcmp(name, "reconcile")) {
		if (!strcmp(value, "auto"))
			o->reconcile = QKDD_EC_AUTO;
		else if (!strcmp(value, "cascade"))
			o->reconcile = QKDD_EC_CASCADE;
		else if (!strcmp(value, "ldpc"))
			o->reconcile = QKDD_EC_LDPC;
		else
			return fail(err, errlen,
				    "reconcile must be auto, cascade or ldpc, not '%s'",
				    value);
	} else if (!strcmp(name, "kme")) {
		if (!kme_url_ok(value))
			return fail(err, errlen,
				    "kme must be https://HOST:PORT (the vendor KME; no path, no user), not '%s'",
				    value);
		r = copy_str(o->kme, sizeof(o->kme), value);
	} else if (!strcmp(name, "kme-cert")) {
		r = copy_str(o->kme_cert, sizeof(o->kme_cert), value);
	} else if (!strcmp(name, "kme-key")) {
		r = copy_str(o->kme_key, sizeof(o->kme_key), value);
	} else if (!strcmp(name, "kme-ca")) {
		r = copy_str(o->kme_ca, sizeof(o->kme_ca), value);
	} else if (!strcmp(name, "kme-sae")) {
		if (!kme_sae_ok(value))
			return fail(err, errlen,
				    "kme-sae must be an SAE ID of 1 to %u characters [A-Za-z0-9_.-], not '%s'",
				    QKDD_NAME_MAX, value);
		r = copy_str(o->kme_sae, sizeof(o->kme_sae), value);
	} else if (!strcmp(name, "kme-keys")) {
		r = qkd_parse_u64(value, KME_KEYS_MAX, &u);
		if (!r && u < 1)
			r = -EINVAL;
		dst = &o->kme_keys;
	} else if (!strcmp(name, "peer-name")) {
		r = copy_str(o->peer_name, sizeof(o->peer_name), value);
	} else if (!strcmp(name, "seed")) {
		r = qkd_parse_u64(value, UINT64_MAX, &o->seed);
		if (!r)
			o->have_seed = true;
	} else if (!strcmp(name, "channel")) {
		return qkdd_channel_parse(&o->ch, value, err, errlen);
	} else if (!strcmp(name, "block-bits")) {
		r = qkd_parse_u64(value, QKDD_BLOCK_BITS_MAX, &u);
		if (!r && u < 1024)
			r = -EINVAL;
		dst = &o->block_bits;
	} else if (!strcmp(name, "rounds")) {
		r = qkd_parse_u64(value, UINT64_MAX, &o->rounds);
	} else if (!strcmp(name, "state-dir")) {
		r = copy_str(o->state_dir, sizeof(o->state_dir) - 16, value);
	} else if (!strcmp(name, "out")) {
		r = copy_str(o->out, sizeof(o->out), value);
	} else if (!strcmp(name, "status")) {
		r = copy_str(o->status, sizeof(o->status), value);
	} else if (!strcmp(name, "control")) {
		r = copy_str(o->control, sizeof(o->control), value);
	} else if (!strcmp(name, "key-size")) {
		r = qkd_parse_u64(value, 512, &u);
		if (!r && u < 16)
			r = -EINVAL;
		dst = &o->key_size;
	} else if (!strcmp(name, "qber-abort")) {
		r = parse_double(value, 0.001, 0.5, &o->qber_abort);
	} else if (!strcmp(name, "sample")) {
		r = parse_double(value, 0.01, 0.9, &o->sample_frac);
	} else if (!strcmp(name, "eps-sec")) {
		r = parse_double(value, 1e-300, 0.1, &o->eps_sec);
	} else if (!strcmp(name, "eps-cor")) {
		r = parse_double(value, 1e-300, 0.1, &o->eps_cor);
	} else if (!strcmp(name, "tag-bits")) {
		r = qkd_parse_u64(value, QKD_VERIFY_MAX_TAG_BITS, &u);
		if (!r && qkd_verify_check_tag_bits((uint32_t)u, 0))
			r = -EINVAL;
		dst = &o->tag_bits;
	} else if (!strcmp(name, "auth-reserve")) {
		r = qkd_parse_u64(value, QKD_AUTH_RESERVE_CAP_DEFAULT / 2, &u);
		if (!r && u < 4096)
			r = -EINVAL;
		dst = &o->auth_target;
	} else if (!strcmp(name, "timeout")) {
		r = qkd_parse_u64(value, 3600, &u);
		if (!r && !u)
			r = -EINVAL;
		dst = &o->timeout_s;
	} else if (!strcmp(name, "retry-max")) {
		r = qkd_parse_u64(value, 3600, &u);
		if (!r && !u)
			r = -EINVAL;
		dst = &o->retry_max_s;
	} else if (!strcmp(name, "backoff-base")) {
		r = qkd_parse_u64(value, 3600, &u);
		if (!r && !u)
			r = -EINVAL;
		dst = &o->backoff_base_s;
	} else if (!strcmp(name, "backoff-max")) {
		r = qkd_parse_u64(value, 86400, &u);
		if (!r && !u)
			r = -EINVAL;
		dst = &o->backoff_max_s;
	}
	if (r)
		return fail(err, errlen, "bad value '%s' for %s", value, name);
	if (dst)
		*dst = (uint32_t)u;
	return 0;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

int qkdd_config_parse(struct qkdd_opts *o, const char *text, char *err,
		      size_t errlen)
{
	const char *p = text;
	unsigned int lineno = 0;
	char line[1024], msg[256];

	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *s, *key, *val, *hash;

		lineno++;
		if (len >= sizeof(line))
			return fail(err, errlen, "line %u: line too long",
				    lineno);
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (nl ? 1 : 0);
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		s = trim(line);
		if (!*s)
			continue;
		for (char *c = s; *c; c++)
			if (!isprint((unsigned char)*c) && *c != '\t')
				return fail(err, errlen,
					    "line %u: non-printable character",
					    lineno);
		key = s;
		val = s + strcspn(s, " \t=");
		if (*val) {
			*val++ = '\0';
			val = trim(val);
			if (*val == '=')
				val = trim(val + 1);
			if (!*val)
				val = NULL;
		} else {
			val = NULL;
		}
		if (!strcmp(key, "config"))
			return fail(err, errlen,
				    "line %u: 'config' cannot be nested",
				    lineno);
		if (qkdd_opt_set(o, key, val, msg, sizeof(msg)))
			return fail(err, errlen, "line %u: %s", lineno, msg);
	}
	return 0;
}

int qkdd_config_load(struct qkdd_opts *o, const char *path, char *err,
		     size_t errlen)
{
	char msg[300], *buf;
	ssize_t n;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	buf = malloc(CONFIG_MAX_BYTES + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while ((n = read(fd, buf + len, CONFIG_MAX_BYTES - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (n < 0 || len == CONFIG_MAX_BYTES) {
		free(buf);
		snprintf(err, errlen, "%s: unreadable or larger than 1 MiB",
			 path);
		return -EINVAL;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		free(buf);
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		return -EINVAL;
	}
	r = qkdd_config_parse(o, buf, msg, sizeof(msg));
	free(buf);
	if (r)
		snprintf(err, errlen, "%s:%s", path, msg + 5 /* "line " */);
	return r;
}

bool qkdd_addr_is_loopback(const char *addr)
{
	char host[QKDD_ADDR_MAX];
	const char *end;
	size_t n;
	struct in_addr a4;
	struct in6_addr a6;

	if (addr[0] == '[') {
		end = strchr(addr, ']');
		if (!end || end[1] != ':')
			return false;
		addr++;
	} else {
		end = strrchr(addr, ':');
		if (!end)
			return false;
	}
	n = (size_t)(end - addr);
	if (n >= sizeof(host))
		return false;
	memcpy(host, addr, n);
	host[n] = '\0';
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

int qkdd_opts_check(const struct qkdd_opts *o, char *err, size_t errlen)
{
	if (o->role == QKDD_ROLE_NONE)
		return fail(err, errlen, "--role alice|bob is required");
	if (!!o->peer[0] == !!o->listen[0])
		return fail(err, errlen,
			    "give exactly one of --peer HOST:PORT and --listen ADDR:PORT");
	if (!o->have_stream)
		return fail(err, errlen, "--stream UUID is required");
	if (!o->link[0])
		return fail(err, errlen, "--link NAME is required");
	if (o->backoff_base_s > o->backoff_max_s)
		return fail(err, errlen,
			    "--backoff-base %u s is above --backoff-max %u s",
			    o->backoff_base_s, o->backoff_max_s);
	if (!o->psk[0] == !(o->cert[0] || o->key[0] || o->ca[0]))
		return fail(err, errlen,
			    "authentication: give --psk FILE or --cert/--key/--ca, not both");
	if (!o->psk[0] && !(o->cert[0] && o->key[0] && o->ca[0]))
		return fail(err, errlen,
			    "X.509 bootstrap needs all of --cert, --key and --ca");
	/* any certificate the CA signed would otherwise do (issue 14) */
	if (!o->psk[0] && !o->peer_name[0])
		return fail(err, errlen,
			    "X.509 bootstrap needs --peer-name NAME: the peer's certificate must carry that name (subjectAltName DNS, or CN without one); a certificate of the CA alone is not enough");
	if (o->no_kernel && !o->out[0])
		return fail(err, errlen, "--no-kernel needs --out FILE");
	if (!o->no_kernel && o->out[0])
		return fail(err, errlen, "--out is only for --no-kernel");
	{
		/*
		 * The key is eps_cor-correct only if the verification hash
		 * collides with at most that probability: for d = tag/64
		 * evaluations on n bits, ((ceil(n/64) + 1) / 2^64)^d, on the
		 * longest key a round corrects (qkdd_max_key_bits(); the
		 * round checks its own n too, key_length()).
		 */
		uint64_t n = qkdd_max_key_bits(o->block_bits);
		double e = qkd_verify_eps_cor(n, o->tag_bits);

		if (e > o->eps_cor)
			return fail(err, errlen,
				    "--eps-cor %g cannot be met: %u-bit verification tags on keys of up to %llu bits collide with probability up to %.2g (raise --tag-bits, at most %u, or --eps-cor)",
				    o->eps_cor, o->tag_bits,
				    (unsigned long long)n, e,
				    QKD_VERIFY_MAX_TAG_BITS);
	}
	/* the parser refuses more; a caller that sets the field directly
	 * gets the reason */
	if (o->block_bits > QKDD_BLOCK_BITS_MAX)
		return fail(err, errlen,
			    "--block-bits %u: above %u, the largest block qkdd is tested with (a round's memory grows with it: about 0.7 GB per daemon at %u)",
			    o->block_bits, QKDD_BLOCK_BITS_MAX,
			    QKDD_BLOCK_BITS_MAX);
	if (o->key_source == QKDD_SRC_ETSI014) {
		const char *miss = !o->kme[0] ? "--kme https://HOST:PORT" :
				   !o->kme_cert[0] ? "--kme-cert FILE" :
				   !o->kme_key[0] ? "--kme-key FILE" :
				   !o->kme_ca[0] ? "--kme-ca FILE" :
				   !o->kme_sae[0] ?
				   (o->role == QKDD_ALICE ?
				    "--kme-sae SAE_ID (the slave SAE of enc_keys: the KME's name of the peer's end)" :
				    "--kme-sae SAE_ID (the master SAE of dec_keys: the KME's name of the peer's end)") :
				   NULL;

		if (miss)
			return fail(err, errlen,
				    "--key-source etsi014 needs %s", miss);
		if (o->sim_test_keys)
			return fail(err, errlen,
				    "--simulated-channel-test-keys-only is for the simulated quantum channel, which --key-source etsi014 does not use");
		if (o->replay[0])
			return fail(err, errlen,
				    "--replay is for --key-source bb84 (recorded detections), not etsi014");
		/* no quantum channel: nothing travels in clear */
		return 0;
	}
	if (o->kme[0] || o->kme_cert[0] || o->kme_key[0] || o->kme_ca[0] ||
	    o->kme_sae[0])
		return fail(err, errlen,
			    "--kme, --kme-cert, --kme-key, --kme-ca and --kme-sae are for --key-source etsi014");
	if (o->replay[0]) {
		if (o->ch.per_detection)
			return fail(err, errlen,
				    "--replay replaces the simulated link: --channel sampling=detections does not apply");
		if (o->sim_test_keys)
			return fail(err, errlen,
				    "--simulated-channel-test-keys-only is for the simulated quantum channel, which --replay does not use");
		/* the quantum link carries the rounds' windows only */
		return 0;
	}
	/*
	 * The simulated quantum link carries Bob's detections and bases in
	 * clear: whoever reads it rebuilds every key. Off the host only when
	 * the operator says by name that the keys are for tests.
	 */
	if (!o->sim_test_keys &&
	    !qkdd_addr_is_loopback(o->peer[0] ? o->peer : o->listen))
		return fail(err, errlen,
			    "%s %s is not loopback: the simulated quantum channel sends Bob's detections and bases in clear on PORT+1 (enough to rebuild every key); use 127.0.0.1 or [::1], or --simulated-channel-test-keys-only",
			    o->peer[0] ? "--peer" : "--listen",
			    o->peer[0] ? o->peer : o->listen);
	return 0;
}

/* ---- the command line, and SIGHUP ---------------------------------------- */

static const struct option lopts[] = {
	{ "role", required_argument, NULL, 0 },
	{ "peer", required_argument, NULL, 0 },
	{ "listen", required_argument, NULL, 0 },
	{ "stream", required_argument, NULL, 0 },
	{ "link", required_argument, NULL, 0 },
	{ "psk", required_argument, NULL, 0 },
	{ "cert", required_argument, NULL, 0 },
	{ "key", required_argument, NULL, 0 },
	{ "ca", required_argument, NULL, 0 },
	{ "peer-name", required_argument, NULL, 0 },
	{ "seed", required_argument, NULL, 0 },
	{ "channel", required_argument, NULL, 0 },
	{ "block-bits", required_argument, NULL, 0 },
	{ "rounds", required_argument, NULL, 0 },
	{ "no-kernel", no_argument, NULL, 0 },
	{ "out", required_argument, NULL, 0 },
	{ "status", required_argument, NULL, 0 },
	{ "control", required_argument, NULL, 0 },
	{ "key-size", required_argument, NULL, 0 },
	{ "qber-abort", required_argument, NULL, 0 },
	{ "sample", required_argument, NULL, 0 },
	{ "eps-sec", required_argument, NULL, 0 },
	{ "eps-cor", required_argument, NULL, 0 },
	{ "tag-bits", required_argument, NULL, 0 },
	{ "auth-reserve", required_argument, NULL, 0 },
	{ "state-dir", required_argument, NULL, 0 },
	{ "timeout", required_argument, NULL, 0 },
	{ "retry-max", required_argument, NULL, 0 },
	{ "backoff-base", required_argument, NULL, 0 },
	{ "backoff-max", required_argument, NULL, 0 },
	{ "simulated-channel-test-keys-only", no_argument, NULL, 0 },
	{ "replay", required_argument, NULL, 0 },
	{ "key-source", required_argument, NULL, 0 },
	{ "kme", required_argument, NULL, 0 },
	{ "kme-cert", required_argument, NULL, 0 },
	{ "kme-key", required_argument, NULL, 0 },
	{ "kme-ca", required_argument, NULL, 0 },
	{ "kme-sae", required_argument, NULL, 0 },
	{ "kme-keys", required_argument, NULL, 0 },
	{ "reconcile", required_argument, NULL, 0 },
	{ "verbose", no_argument, NULL, 'v' },
	{ "config", required_argument, NULL, 'c' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int qkdd_args_parse(struct qkdd_opts *o, int argc, char **argv, bool quiet,
		    char *err, size_t errlen)
{
	const char *sd = getenv("STATE_DIRECTORY");
	const char *rd = getenv("RUNTIME_DIRECTORY");
	char msg[300];
	int c, idx;

	/* the configuration file first, so that options override it */
	for (int i = 1; i < argc; i++) {
		const char *path = NULL;

		if (!strcmp(argv[i], "--config") && i + 1 < argc)
			path = argv[i + 1];
		else if (!strncmp(argv[i], "--config=", 9))
			path = argv[i] + 9;
		if (path && qkdd_config_load(o, path, err, errlen))
			return -1;
	}
	optind = 0;		/* glibc: start afresh (a reload parses again) */
	opterr = !quiet;
	while ((c = getopt_long(argc, argv, "vhVc:", lopts, &idx)) != -1) {
		switch (c) {
		case 0:
			if (qkdd_opt_set(o, lopts[idx].name, optarg, msg,
					 sizeof(msg)))
				return fail(err, errlen, "--%s: %s",
					    lopts[idx].name, msg), -1;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'c':
			break;
		case 'h':
			return QKDD_ARGS_HELP;
		case 'V':
			return QKDD_ARGS_VERSION;
		default:
			return fail(err, errlen, "unknown option or missing value: %s",
				    optind > 1 && optind <= argc ? argv[optind - 1] : "?"), -1;
		}
	}
	if (optind < argc)
		return fail(err, errlen, "unexpected argument '%s'",
			    argv[optind]), -1;
	/* under the unit (RuntimeDirectory=qkdd): /run/qkdd/LINK.sock */
	if (!o->control[0] && rd && *rd && o->link[0]) {
		int n = snprintf(o->control, sizeof(o->control), "%.*s/%s.sock",
				 (int)strcspn(rd, ":"), rd, o->link);

		if (n < 0 || (size_t)n >= sizeof(o->control))
			return fail(err, errlen, "RUNTIME_DIRECTORY too long"), -1;
	}
	/*
	 * Under the unit (StateDirectory=qkdd/%i), systemd names the state
	 * directory in STATE_DIRECTORY (a list, ':' between): the state is
	 * kept across restarts without --state-dir.
	 */
	if (!o->state_dir[0] && sd && *sd) {
		size_t n = strcspn(sd, ":");

		if (n >= sizeof(o->state_dir) - 16)
			return fail(err, errlen, "STATE_DIRECTORY too long"), -1;
		memcpy(o->state_dir, sd, n);
		o->state_dir[n] = '\0';
	}
	return 0;
}

/*
 * What SIGHUP may change between rounds: nothing the peer agreed to in
 * the HELLO (qber-abort, eps-*, tag-bits, the channel, block-bits, ...),
 * nothing the connection or the store was opened with. The rest of the
 * options are compared, and a change is named as needing a restart.
 */
struct optfield {
	const char *name;
	size_t off, len;
};

#define F(n, m) { n, offsetof(struct qkdd_opts, m), \
		  sizeof(((struct qkdd_opts *)0)->m) }
static const struct optfield restart_only[] = {
	F("role", role), F("peer", peer), F("listen", listen),
	F("stream", stream), F("link", link), F("psk", psk), F("cert", cert),
	F("key", key), F("ca", ca), F("peer-name", peer_name),
	F("seed", seed), F("seed", have_seed), F("channel", ch),
	F("block-bits", block_bits), F("rounds", rounds),
	F("no-kernel", no_kernel), F("out", out), F("status", status),
	F("control", control),
	F("key-size", key_size), F("qber-abort", qber_abort),
	F("sample", sample_frac), F("eps-sec", eps_sec),
	F("eps-cor", eps_cor), F("tag-bits", tag_bits),
	F("auth-reserve", auth_target), F("state-dir", state_dir),
	F("simulated-channel-test-keys-only", sim_test_keys),
	F("replay", replay),
	F("key-source", key_source), F("kme", kme), F("kme-cert", kme_cert),
	F("kme-key", kme_key), F("kme-ca", kme_ca), F("kme-sae", kme_sae),
	F("kme-keys", kme_keys), F("reconcile", reconcile),
};
#undef F

int qkdd_reload_diff(struct qkdd_opts *live, const struct qkdd_opts *n,
		     char *changed, size_t len)
{
	const char *prev = NULL;
	size_t off = 0;
	int count = 0;

	if (len)
		changed[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(restart_only); i++) {
		const struct optfield *f = &restart_only[i];

		if (!memcmp((const char *)live + f->off,
			    (const char *)n + f->off, f->len) ||
		    (prev && !strcmp(prev, f->name)))
			continue;
		prev = f->name;
		count++;
		if (off < len)
			off += (size_t)snprintf(changed + off, len - off, "%s%s",
						off ? ", " : "", f->name);
	}
	live->verbose = n->verbose;
	live->timeout_s = n->timeout_s;
	live->retry_max_s = n->retry_max_s;
	live->backoff_base_s = n->backoff_base_s;
	live->backoff_max_s = n->backoff_max_s;
	return count;
}
