// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd-kme's configuration file (Documentation/man/qkd-kme.8): one setting a
 * line, "NAME VALUE...", '#' starts a comment. Every error names its line.
 * The SAEs it authorises are named here: "sae ID IDENTITY" maps a client
 * certificate (its subject CN, or a DNS or URI subjectAltName) to an SAE
 * ID, and "pair MASTER SLAVE STREAM PEER_KME" gives a master SAE the keys
 * of one stream for one slave SAE.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/util.h"
#include "kme.h"

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

void kme_config_default(struct kme_config *c)
{
	memset(c, 0, sizeof(*c));
	c->port = KME_DEFAULT_PORT;
	snprintf(c->device, sizeof(c->device), "%s", "/dev/qkd");
	c->max_keys_per_request = QKD_GET_KEYS_MAX;
	c->connection_limit = 64;
	c->timeout_s = 30;
}

bool kme_id_valid(const char *s)
{
	size_t n = strlen(s), i;

	if (!n || n > KME_ID_MAX)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (!isalnum(ch) && !strchr("._~:@-", ch))
			return false;
	}
	return true;
}

/* Decimal only: 1..@max. */
static int parse_uint(const char *s, unsigned int max, unsigned int *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 10)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*s - '0');
	}
	if (v < 1 || v > max)
		return -ERANGE;
	*out = (unsigned int)v;
	return 0;
}

static int set_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);

	if (!n || n >= cap)
		return -EINVAL;
	memcpy(dst, v, n + 1);
	return 0;
}

static const struct kme_sae *sae_by_id(const struct kme_config *c,
				       const char *id)
{
	size_t i;

	for (i = 0; i < c->n_saes; i++)
		if (!strcmp(c->saes[i].id, id))
			return &c->saes[i];
	return NULL;
}

const struct kme_pair *kme_pair_find(const struct kme_config *c,
				     const char *master, const char *slave)
{
	size_t i;

	for (i = 0; i < c->n_pairs; i++)
		if (!strcmp(c->pairs[i].master, master) &&
		    !strcmp(c->pairs[i].slave, slave))
			return &c->pairs[i];
	return NULL;
}

static bool ident_equal(enum kme_ident_kind kind, const char *a, const char *b)
{
	/* DNS names compare without case (RFC 4343); CN and URI exactly. */
	return kind == KME_IDENT_DNS ? !strcasecmp(a, b) : !strcmp(a, b);
}

static int add_sae(struct kme_config *c, char *args, unsigned int line,
		   char *err, size_t errlen)
{
	char *id = strtok(args, " \t"), *ident = strtok(NULL, "");
	struct kme_sae *s;
	size_t i;

	while (ident && isspace((unsigned char)*ident))
		ident++;
	if (!id || !ident || !*ident)
		return fail(err, errlen, "line %u: sae ID cn=NAME|dns=NAME|uri=URI", line);
	if (!kme_id_valid(id))
		return fail(err, errlen, "line %u: bad SAE ID \"%s\" (1..%d of A-Z a-z 0-9 . _ ~ : @ -)",
			    line, id, KME_ID_MAX);
	if (sae_by_id(c, id))
		return fail(err, errlen, "line %u: SAE %s given twice", line, id);
	if (c->n_saes == KME_MAX_SAES)
		return fail(err, errlen, "line %u: more than %d SAEs", line, KME_MAX_SAES);
	s = &c->saes[c->n_saes];
	if (!strncasecmp(ident, "cn=", 3))
		s->kind = KME_IDENT_CN;
	else if (!strncasecmp(ident, "dns=", 4))
		s->kind = KME_IDENT_DNS;
	else if (!strncasecmp(ident, "uri=", 4))
		s->kind = KME_IDENT_URI;
	else
		return fail(err, errlen, "line %u: SAE %s: identity must be cn=, dns= or uri=", line, id);
	ident = strchr(ident, '=') + 1;
	if (!*ident || strlen(ident) > KME_IDENT_MAX)
		return fail(err, errlen, "line %u: SAE %s: empty or too long identity", line, id);
	for (i = 0; ident[i]; i++)
		if (iscntrl((unsigned char)ident[i]))
			return fail(err, errlen, "line %u: SAE %s: control character in identity", line, id);
	for (i = 0; i < c->n_saes; i++)
		if (c->saes[i].kind == s->kind &&
		    ident_equal(s->kind, c->saes[i].ident, ident))
			return fail(err, errlen, "line %u: SAEs %s and %s have the same identity",
				    line, c->saes[i].id, id);
	snprintf(s->id, sizeof(s->id), "%s", id);
	snprintf(s->ident, sizeof(s->ident), "%s", ident);
	c->n_saes++;
	return 0;
}

static int add_pair(struct kme_config *c, char *args, unsigned int line,
		    char *err, size_t errlen)
{
	char *master = strtok(args, " \t"), *slave = strtok(NULL, " \t");
	char *stream = strtok(NULL, " \t"), *peer = strtok(NULL, " \t");
	struct kme_pair *p;
	size_t i;

	if (!master || !slave || !stream || !peer || strtok(NULL, " \t"))
		return fail(err, errlen, "line %u: pair MASTER_SAE SLAVE_SAE STREAM_UUID PEER_KME_ID", line);
	if (!kme_id_valid(master) || !kme_id_valid(slave) || !kme_id_valid(peer))
		return fail(err, errlen, "line %u: bad SAE or KME ID (1..%d of A-Z a-z 0-9 . _ ~ : @ -)",
			    line, KME_ID_MAX);
	if (!strcmp(master, slave))
		return fail(err, errlen, "line %u: an SAE cannot be paired with itself", line);
	if (c->n_pairs == KME_MAX_PAIRS)
		return fail(err, errlen, "line %u: more than %d pairs", line, KME_MAX_PAIRS);
	p = &c->pairs[c->n_pairs];
	if (qkd_uuid_parse(stream, p->stream) || qkd_uuid_is_zero(p->stream))
		return fail(err, errlen, "line %u: bad stream UUID \"%s\"", line, stream);
	if (kme_pair_find(c, master, slave))
		return fail(err, errlen, "line %u: pair %s %s given twice", line, master, slave);
	/*
	 * A stream keys one direction of one pair: two pairs taking the
	 * lowest keys of one stream at the two ends would each use keys the
	 * other's slave then finds gone.
	 */
	for (i = 0; i < c->n_pairs; i++)
		if (!memcmp(c->pairs[i].stream, p->stream, QKD_STREAM_ID_LEN))
			return fail(err, errlen, "line %u: stream %s already serves pair %s %s",
				    line, stream, c->pairs[i].master, c->pairs[i].slave);
	/*
	 * A key_ID is its stream's ID with bytes 9..15 changed by the index:
	 * two streams with the same first 9 bytes would each take the
	 * other's key_IDs for their own (at some far index). Refused, so that
	 * a key_ID names the key of at most one pair.
	 */
	for (i = 0; i < c->n_pairs; i++)
		if (!memcmp(c->pairs[i].stream, p->stream, 9))
			return fail(err, errlen, "line %u: stream %s and the stream of pair %s %s share their first 9 bytes: their key_IDs could be confused",
				    line, stream, c->pairs[i].master, c->pairs[i].slave);
	snprintf(p->master, sizeof(p->master), "%s", master);
	snprintf(p->slave, sizeof(p->slave), "%s", slave);
	snprintf(p->peer_kme, sizeof(p->peer_kme), "%s", peer);
	c->n_pairs++;
	return 0;
}

static int one_value(char *args, char **v)
{
	*v = strtok(args, " \t");
	return *v && !strtok(NULL, " \t") ? 0 : -EINVAL;
}

static int set_line(struct kme_config *c, char *name, char *args,
		    unsigned int line, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t off, cap;
	} paths[] = {
		{ "cert", offsetof(struct kme_config, cert), KME_PATH_MAX },
		{ "key", offsetof(struct kme_config, key), KME_PATH_MAX },
		{ "ca", offsetof(struct kme_config, ca), KME_PATH_MAX },
		{ "crl", offsetof(struct kme_config, crl), KME_PATH_MAX },
		{ "device", offsetof(struct kme_config, device), KME_PATH_MAX },
		{ "address", offsetof(struct kme_config, address), 64 },
	};
	char *v;
	size_t i;
	int r;

	if (!strcmp(name, "sae"))
		return add_sae(c, args, line, err, errlen);
	if (!strcmp(name, "pair"))
		return add_pair(c, args, line, err, errlen);
	if (one_value(args, &v))
		return fail(err, errlen, "line %u: %s takes one value", line, name);
	if (!strcmp(name, "kme-id")) {
		if (!kme_id_valid(v))
			return fail(err, errlen, "line %u: bad KME ID \"%s\"", line, v);
		snprintf(c->kme_id, sizeof(c->kme_id), "%s", v);
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(paths); i++) {
		if (strcmp(name, paths[i].name))
			continue;
		if (set_str((char *)c + paths[i].off, paths[i].cap, v))
			return fail(err, errlen, "line %u: %s too long", line, name);
		return 0;
	}
	if (!strcmp(name, "port"))
		r = parse_uint(v, 65535, &c->port);
	else if (!strcmp(name, "max-keys-per-request"))
		r = parse_uint(v, QKD_GET_KEYS_MAX, &c->max_keys_per_request);
	else if (!strcmp(name, "connection-limit"))
		r = parse_uint(v, 65536, &c->connection_limit);
	else if (!strcmp(name, "timeout"))
		r = parse_uint(v, 3600, &c->timeout_s);
	else
		return fail(err, errlen, "line %u: unknown setting \"%s\"", line, name);
	if (r)
		return fail(err, errlen, "line %u: bad %s \"%s\"", line, name, v);
	return 0;
}

int kme_config_parse(struct kme_config *c, const char *text, size_t len,
		     char *err, size_t errlen)
{
	unsigned int line = 0;
	size_t pos = 0;
	char buf[8192];

	if (memchr(text, '\0', len))
		return fail(err, errlen, "NUL byte in the configuration");
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char *s, *e, *name, *args;
		int r;

		line++;
		if (n >= sizeof(buf))
			return fail(err, errlen, "line %u: too long", line);
		memcpy(buf, text + pos, n);
		buf[n] = '\0';
		pos += n + (nl ? 1 : 0);
		if ((s = strchr(buf, '#')))
			*s = '\0';
		for (s = buf; isspace((unsigned char)*s); s++)
			;
		for (e = s + strlen(s); e > s && isspace((unsigned char)e[-1]); e--)
			;
		*e = '\0';
		if (!*s)
			continue;
		name = s;
		args = s + strcspn(s, " \t");
		if (*args)
			*args++ = '\0';
		while (isspace((unsigned char)*args))
			args++;
		r = set_line(c, name, args, line, err, errlen);
		if (r)
			return r;
	}
	if (!c->kme_id[0])
		return fail(err, errlen, "no kme-id");
	if (!c->cert[0] || !c->key[0] || !c->ca[0])
		return fail(err, errlen, "cert, key and ca are required");
	if (!c->n_pairs)
		return fail(err, errlen, "no pair: this KME would serve nothing");
	return 0;
}

int kme_config_load(struct kme_config *c, const char *path, char *err,
		    size_t errlen)
{
	char *text;
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		fail(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_BYTES) {
		close(fd);
		return fail(err, errlen, "%s: not a regular file of at most %u bytes",
			    path, CONFIG_MAX_BYTES);
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size &&
	       (n = read(fd, text + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)n;
	close(fd);
	r = kme_config_parse(c, text, got, err, errlen);
	free(text);
	return r;
}

const struct kme_sae *kme_sae_match(const struct kme_config *c, const char *cn,
				    const char *const *dns, size_t n_dns,
				    const char *const *uri, size_t n_uri,
				    char *why, size_t whylen)
{
	const struct kme_sae *found = NULL;
	size_t i, j;

	for (i = 0; i < c->n_saes; i++) {
		const struct kme_sae *s = &c->saes[i];
		bool hit = false;

		if (s->kind == KME_IDENT_CN)
			hit = cn && !strcmp(cn, s->ident);
		for (j = 0; s->kind == KME_IDENT_DNS && j < n_dns; j++)
			hit |= ident_equal(s->kind, dns[j], s->ident);
		for (j = 0; s->kind == KME_IDENT_URI && j < n_uri; j++)
			hit |= ident_equal(s->kind, uri[j], s->ident);
		if (!hit)
			continue;
		if (found) {
			fail(why, whylen, "the certificate matches SAEs %s and %s",
			     found->id, s->id);
			return NULL;
		}
		found = s;
	}
	if (!found)
		fail(why, whylen, "the certificate (CN \"%s\") is no configured SAE's",
		     cn ? cn : "");
	return found;
}
