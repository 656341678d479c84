// SPDX-License-Identifier: GPL-2.0-only
/*
 * The site configuration file of qkdctl up/down (qkd.conf(5)):
 *
 *   # comment
 *   [link]
 *   role = initiator
 *   peer = "site B, rack 4"
 *   [stream 6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b]
 *   key-size = 32
 *   [daemon]
 *   role = alice            # qkdd's own options, qkdd(8)
 *   [sa 6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b]
 *   local = 10.0.0.1
 *
 * The line syntax is qkdd's (userspace/qkdd/config.c: "key = value",
 * "key value" or a bare flag, '#' to the end of the line is a comment),
 * plus sections and double-quoted values ("...", with \" and \\) so that a
 * value may hold '#' or start with a space. Every error names the file
 * and the line. Nothing here touches the kernel.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qkd/util.h>

#include "siteconf.h"

enum section { SEC_NONE, SEC_LINK, SEC_STREAM, SEC_DAEMON, SEC_SA };

__attribute__((format(printf, 5, 6)))
static int perr(char *err, size_t errlen, const char *path, unsigned int line,
		const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, errlen, "%s:%u: %s", path, line, msg);
	else
		snprintf(err, errlen, "%s: %s", path, msg);
	return -EINVAL;
}

/* The keywords of "qkdctl sa add" a [sa] section may use; flag: no value. */
static const struct {
	const char *key;
	bool flag;
} sa_keys[] = {
	{ "local", false }, { "remote", false }, { "mode", false },
	{ "alg", false }, { "key-bits", false }, { "dir", false },
	{ "reqid", false }, { "if-id", false }, { "mark", false },
	{ "mask", false }, { "first-index", false },
	{ "rekey-seconds", false }, { "rekey-bytes", false },
	{ "rekey-packets", false }, { "policy", true },
	{ "policy-local", false }, { "policy-remote", false },
	{ "policy-priority", false },
};

static struct site_stream *find_stream(struct site_conf *c,
				       const uint8_t id[16])
{
	for (unsigned int i = 0; i < c->nstreams; i++)
		if (!memcmp(c->streams[i].id, id, 16))
			return &c->streams[i];
	return NULL;
}

static int get_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t u;

	if (qkd_parse_u64(v, hi, &u) || u < lo)
		return -EINVAL;
	*out = (uint32_t)u;
	return 0;
}

/*
 * Split a line (comment already handled by the caller for unquoted text)
 * into key and value. Returns 0, or an error message.
 */
static const char *split_kv(char *s, char **key, char **val, bool *has_val)
{
	char *p = s, *o;

	*key = s;
	while (*p && (isalnum((unsigned char)*p) || *p == '-' || *p == '_'))
		p++;
	if (p == s)
		return "expected \"key = value\"";
	if (*p && *p != ' ' && *p != '\t' && *p != '=')
		return "bad character in key";
	if (*p == '=') {
		*p++ = '\0';
	} else if (*p) {
		*p++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '=')
			p++;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	*has_val = *p != '\0' && *p != '#';
	*val = p;
	if (!*has_val) {
		*p = '\0';
		return NULL;
	}
	if (*p != '"') {
		char *hash = strchr(p, '#'), *e;

		if (hash)
			*hash = '\0';
		e = p + strlen(p);
		while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if (strchr(p, '"'))
			return "a '\"' inside an unquoted value (quote the whole value)";
		return NULL;
	}
	/* "quoted", with \" and \\ */
	o = ++p;
	*val = o;
	for (;;) {
		if (!*p)
			return "unterminated quoted value";
		if (*p == '"')
			break;
		if (*p == '\\') {
			p++;
			if (*p != '"' && *p != '\\')
				return "only \\\" and \\\\ are escapes in a quoted value";
		}
		*o++ = *p++;
	}
	p++;
	*o = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p && *p != '#')
		return "text after the closing quote";
	return NULL;
}

static int parse_section(struct site_conf *c, char *s, unsigned int line,
			 enum section *sec, void **cur, char *err,
			 size_t errlen)
{
	char *end = strchr(s, ']'), *arg, *t;
	uint8_t id[16];

	if (!end)
		return perr(err, errlen, c->path, line, "missing ']'");
	t = end + 1;
	while (*t == ' ' || *t == '\t')
		t++;
	if (*t && *t != '#')
		return perr(err, errlen, c->path, line, "text after ']'");
	*end = '\0';
	s++;
	while (*s == ' ' || *s == '\t')
		s++;
	arg = s + strcspn(s, " \t");
	if (*arg) {
		*arg++ = '\0';
		while (*arg == ' ' || *arg == '\t')
			arg++;
		t = arg + strlen(arg);
		while (t > arg && (t[-1] == ' ' || t[-1] == '\t'))
			*--t = '\0';
	}
	if (!strcmp(s, "link") || !strcmp(s, "daemon")) {
		bool link = s[0] == 'l';

		if (*arg)
			return perr(err, errlen, c->path, line,
				    "[%s] takes no argument", s);
		if (link ? c->link_line : c->have_daemon)
			return perr(err, errlen, c->path, line,
				    "a second [%s] section", s);
		if (link) {
			c->link_line = line;
			*sec = SEC_LINK;
		} else {
			c->have_daemon = true;
			c->daemon_line = line;
			*sec = SEC_DAEMON;
		}
		*cur = NULL;
		return 0;
	}
	if (strcmp(s, "stream") && strcmp(s, "sa"))
		return perr(err, errlen, c->path, line,
			    "unknown section [%s] (link, stream UUID, daemon, sa UUID)",
			    s);
	if (!*arg || qkd_uuid_parse(arg, id) || qkd_uuid_is_zero(id))
		return perr(err, errlen, c->path, line,
			    "[%s] needs a stream UUID (non-zero, xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
			    s);
	if (s[0] == 's' && s[1] == 't') {
		struct site_stream *st;

		if (find_stream(c, id))
			return perr(err, errlen, c->path, line,
				    "stream %s declared twice", arg);
		if (c->nstreams == SITE_MAX_STREAMS)
			return perr(err, errlen, c->path, line,
				    "more than %d streams", SITE_MAX_STREAMS);
		st = &c->streams[c->nstreams++];
		st->line = line;
		memcpy(st->id, id, 16);
		qkd_uuid_format(id, st->id_str);
		*sec = SEC_STREAM;
		*cur = st;
	} else {
		struct site_sa *sa;

		for (unsigned int i = 0; i < c->nsas; i++)
			if (!memcmp(c->sas[i].id, id, 16))
				return perr(err, errlen, c->path, line,
					    "a second [sa %s]", arg);
		if (c->nsas == SITE_MAX_SAS)
			return perr(err, errlen, c->path, line,
				    "more than %d SA bindings", SITE_MAX_SAS);
		sa = &c->sas[c->nsas++];
		sa->line = line;
		memcpy(sa->id, id, 16);
		qkd_uuid_format(id, sa->id_str);
		*sec = SEC_SA;
		*cur = sa;
	}
	return 0;
}

static int link_kv(struct site_conf *c, const char *k, const char *v,
		   unsigned int line, unsigned int *seen, char *err,
		   size_t errlen)
{
	static const char *const keys[] = { "name", "role", "peer", "id",
					    "state" };
	const char *why;
	unsigned int bit = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(keys); i++)
		if (!strcmp(k, keys[i]))
			bit = 1u << i;
	if (!bit)
		return perr(err, errlen, c->path, line,
			    "unknown key '%s' in [link] (name, role, peer, id, state)",
			    k);
	if (*seen & bit)
		return perr(err, errlen, c->path, line, "'%s' given twice", k);
	*seen |= bit;
	if (!v)
		return perr(err, errlen, c->path, line, "'%s' needs a value", k);
	if (!strcmp(k, "name")) {
		if (!qkd_link_name_valid(v, &why))
			return perr(err, errlen, c->path, line,
				    "link name \"%s\": %s", v, why);
		if (strcmp(v, c->name))
			return perr(err, errlen, c->path, line,
				    "name \"%s\" is not the link this file is for (\"%s\")",
				    v, c->name);
	} else if (!strcmp(k, "role")) {
		if (!strcmp(v, "initiator"))
			c->role = QKD_LINK_ROLE_INITIATOR;
		else if (!strcmp(v, "responder"))
			c->role = QKD_LINK_ROLE_RESPONDER;
		else
			return perr(err, errlen, c->path, line,
				    "role must be initiator or responder, not \"%s\"",
				    v);
		c->have_role = true;
	} else if (!strcmp(k, "peer")) {
		if (strlen(v) >= sizeof(c->peer))
			return perr(err, errlen, c->path, line,
				    "peer longer than %zu bytes",
				    sizeof(c->peer) - 1);
		strcpy(c->peer, v);
	} else if (!strcmp(k, "id")) {
		if (get_u32(v, 1, UINT32_MAX, &c->id))
			return perr(err, errlen, c->path, line,
				    "id \"%s\": not an integer in 1..4294967295",
				    v);
	} else {
		if (!strcmp(v, "down"))
			c->state_down = true;
		else if (strcmp(v, "up"))
			return perr(err, errlen, c->path, line,
				    "state must be up or down, not \"%s\"", v);
	}
	return 0;
}

static int stream_kv(struct site_conf *c, struct site_stream *st,
		     const char *k, const char *v, unsigned int line,
		     char *err, size_t errlen)
{
	uint32_t *dst;
	uint32_t lo = 0, hi = QKD_STREAM_MAX_KEYS_LIMIT;
	bool *have = NULL;

	if (!strcmp(k, "key-size")) {
		dst = &st->key_size;
		lo = QKD_KEY_SIZE_MIN;
		hi = QKD_KEY_SIZE_MAX;
	} else if (!strcmp(k, "max-keys")) {
		dst = &st->max_keys;
		lo = 1;
		have = &st->have_max_keys;
	} else if (!strcmp(k, "low-water")) {
		dst = &st->low_water;
		have = &st->have_low_water;
	} else {
		return perr(err, errlen, c->path, line,
			    "unknown key '%s' in [stream] (key-size, max-keys, low-water)",
			    k);
	}
	if (have ? *have : *dst != 0)
		return perr(err, errlen, c->path, line, "'%s' given twice", k);
	if (!v || get_u32(v, lo, hi, dst))
		return perr(err, errlen, c->path, line,
			    "%s needs an integer in %u..%u", k, lo, hi);
	if (have)
		*have = true;
	return 0;
}

static int kv_add(struct site_conf *c, struct site_kv *kv, unsigned int *n,
		  unsigned int max, const char *k, const char *v,
		  unsigned int line, const char *what, char *err,
		  size_t errlen)
{
	struct site_kv *e;

	if (*n == max)
		return perr(err, errlen, c->path, line, "more than %u lines in %s",
			    max, what);
	if (strlen(k) >= sizeof(e->key))
		return perr(err, errlen, c->path, line, "key too long");
	if (v && strlen(v) >= sizeof(e->val))
		return perr(err, errlen, c->path, line,
			    "value longer than %d bytes", SITE_VAL_MAX - 1);
	e = &kv[(*n)++];
	e->line = line;
	strcpy(e->key, k);
	e->has_val = v != NULL;
	strcpy(e->val, v ? v : "");
	return 0;
}

static int sa_kv(struct site_conf *c, struct site_sa *sa, const char *k,
		 const char *v, unsigned int line, char *err, size_t errlen)
{
	int flag = -1;

	if (!strcmp(k, "on-down")) {
		if (v && !strcmp(v, "remove-protection"))
			sa->remove_protection = true;
		else if (!v || strcmp(v, "block"))
			return perr(err, errlen, c->path, line,
				    "on-down must be block or remove-protection");
		return 0;
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(sa_keys); i++)
		if (!strcmp(k, sa_keys[i].key))
			flag = sa_keys[i].flag;
	if (flag < 0)
		return perr(err, errlen, c->path, line,
			    "unknown key '%s' in [sa] (the keywords of qkdctl sa add, and on-down)",
			    k);
	for (unsigned int i = 0; i < sa->nkv; i++)
		if (!strcmp(sa->kv[i].key, k))
			return perr(err, errlen, c->path, line,
				    "'%s' given twice", k);
	if (flag && v && strcmp(v, "yes") && strcmp(v, "true") && strcmp(v, "1"))
		return perr(err, errlen, c->path, line,
			    "'%s' is a flag: no value, or yes/true/1", k);
	if (!flag && !v)
		return perr(err, errlen, c->path, line, "'%s' needs a value", k);
	return kv_add(c, sa->kv, &sa->nkv, SITE_MAX_SA_KV, k, flag ? NULL : v,
		      line, "[sa]", err, errlen);
}

static int daemon_kv(struct site_conf *c, const char *k, const char *v,
		     unsigned int line, char *err, size_t errlen)
{
	/* qkdd reads these lines itself, without quoting: keep them simple. */
	if (v && !v[0])
		return perr(err, errlen, c->path, line,
			    "a qkdd option's value may not be empty (a flag has no value at all)");
	if (v && (strchr(v, '#') || v[0] == ' ' || v[0] == '\t' ||
		  v[strlen(v) - 1] == ' ' || v[strlen(v) - 1] == '\t'))
		return perr(err, errlen, c->path, line,
			    "a qkdd option's value may not hold '#' or begin or end with a space");
	if (!strcmp(k, "config"))
		return perr(err, errlen, c->path, line,
			    "'config' cannot be nested: give qkdd's options here");
	for (unsigned int i = 0; i < c->ndaemon; i++)
		if (!strcmp(c->daemon[i].key, k))
			return perr(err, errlen, c->path, line,
				    "'%s' given twice", k);
	return kv_add(c, c->daemon, &c->ndaemon, SITE_MAX_KV, k, v, line,
		      "[daemon]", err, errlen);
}

/* After the last line: what the sections need of each other. */
static int check_whole(struct site_conf *c, char *err, size_t errlen)
{
	struct site_stream *ds;	/* the stream qkdd fills */
	struct site_kv *ks = NULL;
	uint8_t id[16];
	uint32_t v;

	if (!c->link_line)
		return perr(err, errlen, c->path, 0, "no [link] section");
	if (!c->have_role)
		return perr(err, errlen, c->path, c->link_line,
			    "[link] needs role = initiator or responder");
	for (unsigned int i = 0; i < c->nstreams; i++) {
		struct site_stream *st = &c->streams[i];

		if (!st->key_size)
			return perr(err, errlen, c->path, st->line,
				    "[stream %s] needs key-size", st->id_str);
		if (st->have_max_keys && st->have_low_water &&
		    st->low_water > st->max_keys)
			return perr(err, errlen, c->path, st->line,
				    "low-water %u above max-keys %u",
				    st->low_water, st->max_keys);
	}
	for (unsigned int i = 0; i < c->nsas; i++)
		if (!find_stream(c, c->sas[i].id))
			return perr(err, errlen, c->path, c->sas[i].line,
				    "[sa %s]: no [stream] of that UUID in this file",
				    c->sas[i].id_str);
	if (!c->have_daemon)
		return 0;
	ds = NULL;
	for (unsigned int i = 0; i < c->ndaemon; i++) {
		struct site_kv *kv = &c->daemon[i];

		if (!strcmp(kv->key, "link") && strcmp(kv->val, c->name))
			return perr(err, errlen, c->path, kv->line,
				    "qkdd's link \"%s\" is not this file's link \"%s\"",
				    kv->val, c->name);
		if (!strcmp(kv->key, "stream")) {
			if (qkd_uuid_parse(kv->val, id) ||
			    !(ds = find_stream(c, id)))
				return perr(err, errlen, c->path, kv->line,
					    "qkdd's stream \"%s\" is not a [stream] of this file",
					    kv->val);
		}
		if (!strcmp(kv->key, "key-size"))
			ks = kv;
	}
	if (!ds && c->nstreams != 1)
		return perr(err, errlen, c->path, c->daemon_line,
			    "[daemon] needs stream = UUID: the file has %u streams",
			    c->nstreams);
	if (!ds)
		ds = &c->streams[0];
	c->daemon_stream = (unsigned int)(ds - c->streams);
	/* qkdd pushes keys of its key-size: the stream's, or KEY_ADD fails */
	if (ks && (get_u32(ks->val, 0, UINT32_MAX, &v) || v != ds->key_size))
		return perr(err, errlen, c->path, ks->line,
			    "qkdd's key-size %s is not its stream's (%u); leave it out",
			    ks->val, ds->key_size);
	return 0;
}

int site_parse(struct site_conf *c, const char *name, const char *path,
	       const char *text, char *err, size_t errlen)
{
	enum section sec = SEC_NONE;
	void *cur = NULL;
	unsigned int line = 0, link_seen = 0;
	const char *p = text, *why;
	char buf[1024];
	int r;

	memset(c, 0, sizeof(*c));
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (!qkd_link_name_valid(name, &why))
		return perr(err, errlen, c->path, 0, "link name \"%s\": %s",
			    name, why);
	strcpy(c->name, name);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char *s, *e, *key, *val;
		bool has_val;

		line++;
		if (len >= sizeof(buf))
			return perr(err, errlen, c->path, line,
				    "line too long (at most %zu bytes)",
				    sizeof(buf) - 1);
		memcpy(buf, p, len);
		buf[len] = '\0';
		p += len + (nl ? 1 : 0);
		if (len && buf[len - 1] == '\r')
			buf[--len] = '\0';
		for (e = buf; *e; e++)
			if (!isprint((unsigned char)*e) && *e != '\t')
				return perr(err, errlen, c->path, line,
					    "non-printable character");
		s = buf;
		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '#')
			continue;
		if (*s == '[') {
			r = parse_section(c, s, line, &sec, &cur, err, errlen);
			if (r)
				return r;
			continue;
		}
		why = split_kv(s, &key, &val, &has_val);
		if (why)
			return perr(err, errlen, c->path, line, "%s", why);
		if (!has_val)
			val = NULL;
		switch (sec) {
		case SEC_NONE:
			return perr(err, errlen, c->path, line,
				    "'%s' outside a section ([link], [stream UUID], [daemon], [sa UUID])",
				    key);
		case SEC_LINK:
			r = link_kv(c, key, val, line, &link_seen, err, errlen);
			break;
		case SEC_STREAM:
			r = stream_kv(c, cur, key, val, line, err, errlen);
			break;
		case SEC_DAEMON:
			r = daemon_kv(c, key, val, line, err, errlen);
			break;
		default:
			r = sa_kv(c, cur, key, val, line, err, errlen);
			break;
		}
		if (r)
			return r;
	}
	return check_whole(c, err, errlen);
}

/* ---- the file against what exists ---------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int differs(char *why, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, len, fmt, ap);
	va_end(ap);
	return 1;
}

#define DIFF_U(name, file, kern)					\
	do {								\
		if ((uint64_t)(file) != (uint64_t)(kern))		\
			return differs(why, len,			\
				       "%s: %llu in the file, %llu in the kernel", \
				       name,				\
				       (unsigned long long)(file),	\
				       (unsigned long long)(kern));	\
	} while (0)

static const char *role_str(uint8_t role)
{
	return role == QKD_LINK_ROLE_INITIATOR ? "initiator" :
	       role == QKD_LINK_ROLE_RESPONDER ? "responder" : "?";
}

int site_link_diff(const struct site_conf *c, const struct qkd_link *have,
		   char *why, size_t len)
{
	if (have->role != c->role)
		return differs(why, len, "role: %s in the file, %s in the kernel",
			       role_str(c->role), role_str(have->role));
	if (c->id)
		DIFF_U("id", c->id, have->id);
	if (strcmp(c->peer, have->peer))
		return differs(why, len, "peer: \"%s\" in the file, \"%s\" in the kernel",
			       c->peer, have->peer);
	return 0;
}

int site_stream_diff(const struct site_stream *st,
		     const struct qkd_stream *have, char *why, size_t len)
{
	DIFF_U("key-size", st->key_size, have->key_size);
	if (st->have_max_keys)
		DIFF_U("max-keys", st->max_keys, have->max_keys);
	DIFF_U("low-water", st->have_low_water ? st->low_water : 0,
	       have->low_water);
	return 0;
}

static void addr_str(uint8_t alen, const uint8_t *a, char *out, size_t len)
{
	if (!inet_ntop(alen == 16 ? AF_INET6 : AF_INET, a, out, (socklen_t)len))
		snprintf(out, len, "?");
}

static int diff_addr(const char *name, uint8_t flen, const uint8_t *f,
		     uint8_t klen, const uint8_t *k, char *why, size_t len)
{
	char a[64], b[64];

	if (flen == klen && !memcmp(f, k, flen))
		return 0;
	addr_str(flen, f, a, sizeof(a));
	addr_str(klen, k, b, sizeof(b));
	return differs(why, len, "%s: %s in the file, %s in the kernel", name,
		       a, b);
}

int site_sa_diff(const struct qkd_sa_params *p, const struct qkd_sa_info *have,
		 char *why, size_t len)
{
	bool any_rekey = p->rekey_seconds || p->rekey_bytes || p->rekey_packets;

	if (diff_addr("local", p->addr_len, p->local, have->addr_len,
		      have->local, why, len) ||
	    diff_addr("remote", p->addr_len, p->remote, have->addr_len,
		      have->remote, why, len))
		return 1;
	DIFF_U("first-index", p->first_index, have->first_index);
	if ((p->mode ? p->mode : QKD_SA_MODE_TRANSPORT) != have->mode)
		return differs(why, len, "mode: %s in the file, %s in the kernel",
			       qkd_sa_mode_name(p->mode ? p->mode :
						QKD_SA_MODE_TRANSPORT),
			       qkd_sa_mode_name(have->mode));
	if ((p->alg ? p->alg : QKD_SA_ALG_AES_GCM) != have->alg)
		return differs(why, len, "alg: %s in the file, %s in the kernel",
			       qkd_sa_alg_name(p->alg ? p->alg :
					       QKD_SA_ALG_AES_GCM),
			       qkd_sa_alg_name(have->alg));
	DIFF_U("key-bits", p->key_bits ? p->key_bits : 256, have->key_bits);
	if ((p->dir ? p->dir : QKD_SA_DIR_BOTH) != have->dir)
		return differs(why, len, "dir: %s in the file, %s in the kernel",
			       qkd_sa_dir_name(p->dir ? p->dir : QKD_SA_DIR_BOTH),
			       qkd_sa_dir_name(have->dir));
	DIFF_U("reqid", p->reqid, have->reqid);
	DIFF_U("if-id", p->if_id, have->if_id);
	DIFF_U("mark", p->mark, have->mark);
	DIFF_U("mask", p->have_mark_mask ? p->mark_mask :
	       p->have_mark ? UINT32_MAX : 0, have->mark_mask);
	DIFF_U("rekey-seconds", any_rekey ? p->rekey_seconds : 3600,
	       have->rekey_seconds);
	DIFF_U("rekey-bytes", p->rekey_bytes, have->rekey_bytes);
	DIFF_U("rekey-packets", p->rekey_packets, have->rekey_packets);
	if (p->policy != have->policy)
		return differs(why, len, "policy: %s in the file, %s in the kernel",
			       p->policy ? "yes" : "no",
			       have->policy ? "yes" : "no");
	if (!p->policy)
		return 0;
	DIFF_U("policy-priority", p->priority, have->priority);
	if (p->sel_local_len &&
	    (diff_addr("policy-local", p->sel_local_len, p->sel_local,
		       have->sel_len, have->sel_local, why, len) ||
	     (p->have_sel_local_prefix &&
	      p->sel_local_prefix != have->sel_local_prefix &&
	      differs(why, len, "policy-local: prefix /%u in the file, /%u in the kernel",
		      p->sel_local_prefix, have->sel_local_prefix))))
		return 1;
	if (p->sel_remote_len &&
	    (diff_addr("policy-remote", p->sel_remote_len, p->sel_remote,
		       have->sel_len, have->sel_remote, why, len) ||
	     (p->have_sel_remote_prefix &&
	      p->sel_remote_prefix != have->sel_remote_prefix &&
	      differs(why, len, "policy-remote: prefix /%u in the file, /%u in the kernel",
		      p->sel_remote_prefix, have->sel_remote_prefix))))
		return 1;
	return 0;
}

int site_load(struct site_conf *c, const char *name, const char *path,
	      char *err, size_t errlen)
{
	char *buf;
	size_t len = 0;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return r;
	}
	buf = malloc(SITE_FILE_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while ((n = read(fd, buf + len, SITE_FILE_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (n < 0 || len == SITE_FILE_MAX) {
		free(buf);
		snprintf(err, errlen, "%s: unreadable or larger than %u KiB",
			 path, SITE_FILE_MAX >> 10);
		return n < 0 ? -EIO : -EINVAL;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		free(buf);
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		return -EINVAL;
	}
	r = site_parse(c, name, path, buf, err, errlen);
	free(buf);
	return r;
}
