// SPDX-License-Identifier: GPL-2.0-only
/*
 * The ETSI GS QKD 014 v1.1.1 data formats (its clause 6): the Key request
 * and Key IDs that SAEs send are parsed with json-c, strictly (RFC 8259,
 * the members the spec names and no other, each of its type); Status and
 * Error are written with json-c; the Key container, which carries key
 * bytes, is written into a buffer of our own, which is wiped when freed:
 * no library keeps a copy of a key.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qkd/util.h"
#include "kme.h"

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

/*
 * json-c takes 'strings' even in its strict mode; RFC 8259 does not: a
 * quote outside a "string" is refused here.
 */
static bool single_quote(const char *s, size_t len)
{
	bool in = false;
	size_t i;

	for (i = 0; i < len; i++) {
		if (in && s[i] == '\\')
			i++;
		else if (s[i] == '"')
			in = !in;
		else if (!in && s[i] == '\'')
			return true;
	}
	return false;
}

/* The whole of @body, one JSON object, strict; NULL with @err set. */
static struct json_object *parse_object(const char *body, size_t len,
					char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if (!len) {
		fail(err, errlen, "empty body: a JSON object is expected");
		return NULL;
	}
	if (len > KME_BODY_MAX || memchr(body, '\0', len)) {
		fail(err, errlen, "body is not a JSON object of at most %u bytes",
		     KME_BODY_MAX);
		return NULL;
	}
	if (single_quote(body, len)) {
		fail(err, errlen, "body is not valid JSON: a single-quoted string");
		return NULL;
	}
	tok = json_tokener_new_ex(8);
	if (!tok) {
		fail(err, errlen, "out of memory");
		return NULL;
	}
	/* trailing data is refused below, with its own message */
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
			       JSON_TOKENER_ALLOW_TRAILING_CHARS |
			       JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success) {
		enum json_tokener_error e = json_tokener_get_error(tok);

		fail(err, errlen, "body is not valid JSON: %s",
		     e == json_tokener_continue ? "unexpected end" :
		     json_tokener_error_desc(e));
		json_object_put(o);
		json_tokener_free(tok);
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	while (end < len && strchr(" \t\r\n", body[end]))
		end++;
	if (end != len) {
		fail(err, errlen, "body has data after its JSON value");
		json_object_put(o);
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		fail(err, errlen, "body is not a JSON object");
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* A JSON integer 1..UINT32_MAX (not 1.0, not "1"). */
static int get_count(struct json_object *v, const char *name, uint32_t *out,
		     char *err, size_t errlen)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return fail(err, errlen, "%s must be an integer", name);
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < 1 || x > UINT32_MAX)
		return fail(err, errlen, "%s must be a positive integer", name);
	*out = (uint32_t)x;
	return 0;
}

static int check_extensions(struct json_object *v, const char *name,
			    struct kme_key_request *r, bool mandatory,
			    char *err, size_t errlen)
{
	size_t i, n;

	if (!json_object_is_type(v, json_type_array))
		return fail(err, errlen, "%s must be an array of objects", name);
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		struct json_object_iterator it, end;

		if (!json_object_is_type(e, json_type_object))
			return fail(err, errlen, "%s must be an array of objects", name);
		if (!mandatory)
			continue;
		it = json_object_iter_begin(e);
		end = json_object_iter_end(e);
		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			size_t used = strlen(r->mandatory);

			r->n_mandatory++;
			snprintf(r->mandatory + used, sizeof(r->mandatory) - used,
				 "%s%s", used ? ", " : "", json_object_iter_peek_name(&it));
		}
	}
	return 0;
}

int kme_json_key_request(const char *body, size_t len,
			 struct kme_key_request *r, char *err, size_t errlen)
{
	struct json_object_iterator it, end;
	struct json_object *o;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	r->number = 1;
	o = parse_object(body, len, err, errlen);
	if (!o)
		return -EINVAL;
	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !ret && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *name = json_object_iter_peek_name(&it);
		struct json_object *v = json_object_iter_peek_value(&it);

		if (!strcmp(name, "number")) {
			ret = get_count(v, name, &r->number, err, errlen);
			r->has_number = true;
		} else if (!strcmp(name, "size")) {
			ret = get_count(v, name, &r->size, err, errlen);
			r->has_size = true;
		} else if (!strcmp(name, "additional_slave_SAE_IDs")) {
			size_t i, n;

			if (!json_object_is_type(v, json_type_array)) {
				ret = fail(err, errlen, "%s must be an array of SAE IDs", name);
				break;
			}
			n = json_object_array_length(v);
			for (i = 0; i < n && !ret; i++)
				if (!json_object_is_type(json_object_array_get_idx(v, i),
							 json_type_string))
					ret = fail(err, errlen, "%s must be an array of SAE IDs", name);
			r->n_additional = n;
		} else if (!strcmp(name, "extension_mandatory")) {
			ret = check_extensions(v, name, r, true, err, errlen);
		} else if (!strcmp(name, "extension_optional")) {
			ret = check_extensions(v, name, r, false, err, errlen);
		} else {
			ret = fail(err, errlen, "unknown member \"%.64s\" in a Key request", name);
		}
	}
	json_object_put(o);
	return ret;
}

static int key_id_parse(const char *s, uint8_t id[QKD_KEY_ID_LEN], char *err,
			size_t errlen)
{
	if (strlen(s) != QKD_UUID_STR_LEN - 1 || qkd_uuid_parse(s, id))
		return fail(err, errlen, "key_ID \"%.40s\" is not a UUID", s);
	return 0;
}

static int add_key_id(struct kme_key_ids *r, const uint8_t id[QKD_KEY_ID_LEN],
		      const char *s, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!memcmp(r->ids[i], id, QKD_KEY_ID_LEN))
			return fail(err, errlen, "key_ID %s is asked for twice", s);
	memcpy(r->ids[r->n++], id, QKD_KEY_ID_LEN);
	return 0;
}

int kme_json_key_ids(const char *body, size_t len, unsigned int max,
		     struct kme_key_ids *r, char *err, size_t errlen)
{
	struct json_object_iterator it, end;
	struct json_object *o, *list = NULL;
	size_t i, n;
	int ret = 0;

	memset(r, 0, sizeof(*r));
	if (max > QKD_GET_KEYS_MAX)
		max = QKD_GET_KEYS_MAX;
	o = parse_object(body, len, err, errlen);
	if (!o)
		return -EINVAL;
	it = json_object_iter_begin(o);
	end = json_object_iter_end(o);
	for (; !ret && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *name = json_object_iter_peek_name(&it);
		struct json_object *v = json_object_iter_peek_value(&it);

		if (!strcmp(name, "key_IDs"))
			list = v;
		else if (!strcmp(name, "key_IDs_extension")) {
			if (!json_object_is_type(v, json_type_object))
				ret = fail(err, errlen, "key_IDs_extension must be an object");
		} else
			ret = fail(err, errlen, "unknown member \"%.64s\" in Key IDs", name);
	}
	if (!ret && !list)
		ret = fail(err, errlen, "Key IDs without key_IDs");
	if (!ret && !json_object_is_type(list, json_type_array))
		ret = fail(err, errlen, "key_IDs must be an array");
	n = ret ? 0 : json_object_array_length(list);
	if (!ret && !n)
		ret = fail(err, errlen, "key_IDs is empty");
	if (!ret && n > max)
		ret = fail(err, errlen, "%zu key_IDs asked for, max_key_per_request is %u",
			   n, max);
	for (i = 0; !ret && i < n; i++) {
		struct json_object *e = json_object_array_get_idx(list, i), *kid = NULL;
		uint8_t id[QKD_KEY_ID_LEN];

		if (!json_object_is_type(e, json_type_object)) {
			ret = fail(err, errlen, "key_IDs[%zu] is not an object", i);
			break;
		}
		it = json_object_iter_begin(e);
		end = json_object_iter_end(e);
		for (; !ret && !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
			const char *name = json_object_iter_peek_name(&it);
			struct json_object *v = json_object_iter_peek_value(&it);

			if (!strcmp(name, "key_ID"))
				kid = v;
			else if (!strcmp(name, "key_ID_extension")) {
				if (!json_object_is_type(v, json_type_object))
					ret = fail(err, errlen, "key_ID_extension must be an object");
			} else
				ret = fail(err, errlen, "unknown member \"%.64s\" in key_IDs[%zu]",
					   name, i);
		}
		if (ret)
			break;
		if (!kid || !json_object_is_type(kid, json_type_string)) {
			ret = fail(err, errlen, "key_IDs[%zu] has no key_ID string", i);
			break;
		}
		ret = key_id_parse(json_object_get_string(kid), id, err, errlen);
		if (!ret)
			ret = add_key_id(r, id, json_object_get_string(kid), err, errlen);
	}
	json_object_put(o);
	return ret;
}

/* A query parameter: decimal digits only, 1..UINT32_MAX. */
static int query_count(const char *s, const char *name, uint32_t *out,
		       char *err, size_t errlen)
{
	uint64_t v = 0;
	const char *p;

	if (!*s || strlen(s) > 10)
		return fail(err, errlen, "%s must be a positive integer", name);
	for (p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return fail(err, errlen, "%s must be a positive integer", name);
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (!v || v > UINT32_MAX)
		return fail(err, errlen, "%s must be a positive integer", name);
	*out = (uint32_t)v;
	return 0;
}

int kme_query_key_request(const char *number, const char *size,
			  struct kme_key_request *r, char *err, size_t errlen)
{
	memset(r, 0, sizeof(*r));
	r->number = 1;
	if (number) {
		r->has_number = true;
		if (query_count(number, "number", &r->number, err, errlen))
			return -EINVAL;
	}
	if (size) {
		r->has_size = true;
		if (query_count(size, "size", &r->size, err, errlen))
			return -EINVAL;
	}
	return 0;
}

int kme_query_key_id(const char *key_id, struct kme_key_ids *r, char *err,
		     size_t errlen)
{
	memset(r, 0, sizeof(*r));
	if (!key_id)
		return fail(err, errlen, "key_ID is required");
	if (key_id_parse(key_id, r->ids[0], err, errlen))
		return -EINVAL;
	r->n = 1;
	return 0;
}

/* json-c's text of @o into a reply body of our own. */
static int reply_json(struct json_object *o, unsigned int status,
		      struct kme_reply *out)
{
	const char *s;
	size_t len;

	memset(out, 0, sizeof(*out));
	out->status = status;
	s = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) : NULL;
	if (!s) {
		json_object_put(o);
		return -ENOMEM;
	}
	len = strlen(s);
	out->body = malloc(len + 2);
	if (!out->body) {
		json_object_put(o);
		return -ENOMEM;
	}
	memcpy(out->body, s, len);
	out->body[len++] = '\n';
	out->body[len] = '\0';
	out->len = len;
	json_object_put(o);
	return 0;
}

static int add(struct json_object *o, const char *k, struct json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (json_object_object_add(o, k, v)) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

int kme_json_status(const struct kme_status *s, struct kme_reply *out)
{
	struct json_object *o = json_object_new_object();
	int r = o ? 0 : -ENOMEM;

	r = r ?: add(o, "source_KME_ID", json_object_new_string(s->source_kme));
	r = r ?: add(o, "target_KME_ID", json_object_new_string(s->target_kme));
	r = r ?: add(o, "master_SAE_ID", json_object_new_string(s->master));
	r = r ?: add(o, "slave_SAE_ID", json_object_new_string(s->slave));
	r = r ?: add(o, "key_size", json_object_new_int64(s->key_size_bits));
	r = r ?: add(o, "stored_key_count", json_object_new_int64(s->stored));
	r = r ?: add(o, "max_key_count", json_object_new_int64(s->max_count));
	r = r ?: add(o, "max_key_per_request", json_object_new_int64(s->max_per_request));
	r = r ?: add(o, "max_key_size", json_object_new_int64(s->max_size_bits));
	r = r ?: add(o, "min_key_size", json_object_new_int64(s->min_size_bits));
	r = r ?: add(o, "max_SAE_ID_count", json_object_new_int64(s->max_sae_ids));
	if (r) {
		json_object_put(o);
		memset(out, 0, sizeof(*out));
		return r;
	}
	return reply_json(o, KME_HTTP_OK, out);
}

int kme_json_error(unsigned int status, struct kme_reply *out,
		   const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!o || add(o, "message", json_object_new_string(msg))) {
		json_object_put(o);
		memset(out, 0, sizeof(*out));
		return -ENOMEM;
	}
	return reply_json(o, status, out);
}

int kme_json_key_container(const uint8_t *keys, size_t key_size, size_t n,
			   const uint8_t (*ids)[QKD_KEY_ID_LEN],
			   struct kme_reply *out)
{
	static const char head[] = "{\"keys\":[", tail[] = "]}\n";
	size_t b64 = qkd_base64_size(key_size), cap, len = 0, i;
	char *buf;

	memset(out, 0, sizeof(*out));
	/* per key: {"key_ID":"UUID","key":"B64"}, */
	cap = sizeof(head) + sizeof(tail) + n * (40 + QKD_UUID_STR_LEN + b64);
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, head, sizeof(head) - 1);
	len = sizeof(head) - 1;
	for (i = 0; i < n; i++) {
		char uuid[QKD_UUID_STR_LEN];
		ssize_t k;
		int w;

		qkd_uuid_format(ids[i], uuid);
		w = snprintf(buf + len, cap - len, "%s{\"key_ID\":\"%s\",\"key\":\"",
			     i ? "," : "", uuid);
		if (w < 0 || (size_t)w >= cap - len)
			goto nospace;
		len += (size_t)w;
		k = qkd_base64_encode(keys + i * key_size, key_size, buf + len,
				      cap - len);
		if (k < 0)
			goto nospace;
		len += (size_t)k;
		if (cap - len < 3)
			goto nospace;
		memcpy(buf + len, "\"}", 2);
		len += 2;
	}
	if (cap - len < sizeof(tail))
		goto nospace;
	memcpy(buf + len, tail, sizeof(tail));
	len += sizeof(tail) - 1;
	out->status = KME_HTTP_OK;
	out->body = buf;
	out->len = len;
	out->keys = (unsigned int)n;
	return 0;
nospace:
	kme_body_free(buf, cap);
	return -ENOSPC;
}

void kme_body_free(void *body, size_t len)
{
	if (!body)
		return;
	explicit_bzero(body, len);
	free(body);
}

void kme_reply_free(struct kme_reply *r)
{
	/* the whole allocation: the key container's may be longer than len */
	if (r->body)
		kme_body_free(r->body, r->len + 1);
	memset(r, 0, sizeof(*r));
}
