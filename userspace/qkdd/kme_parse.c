// SPDX-License-Identifier: GPL-2.0-only
/*
 * The answers of a vendor KME (--key-source etsi014, ETSI GS QKD 014
 * v1.1.1): the Key container of enc_keys and dec_keys, Status, and the
 * Error message. Pure functions on a body, for kme_client.c and the unit
 * tests (tests/unit/test_qkdd_kme_parse.c) and the fuzzer.
 *
 * A Key container is refused whole -- with the reason, and every key byte
 * decoded so far wiped -- unless it holds exactly the keys asked for: the
 * number asked, each of exactly the size asked, base64 that decodes
 * strictly, no key_ID twice, and (dec_keys) exactly the key_IDs asked for.
 *
 * json-c copies every string it parses into its own objects and its
 * tokener's buffer, which it frees without wiping. So the tokener's buffer
 * is grown to the size of the body before the parse (it is never
 * reallocated, leaving no copy behind), and every string of the tree, the
 * tokener's buffer and, after a failed parse, the partial tree are wiped
 * before they are freed. This reaches into json_tokener's fields, which
 * json-c 0.16 still declares (marked deprecated); json-c has no allocator
 * hook that would do it otherwise.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "qkd/util.h"
#include "qkdd.h"

__attribute__((format(printf, 3, 4)))
static int pfail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EPROTO;
}

/* Wipe every string of the tree at @o (its storage is the object's). */
static void wipe_tree(struct json_object *o, int depth)
{
	if (!o || depth > 16)
		return;
	switch (json_object_get_type(o)) {
	case json_type_string: {
		int n = json_object_get_string_len(o);

		if (n > 0)
			explicit_bzero((char *)json_object_get_string(o),
				       (size_t)n);
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			wipe_tree(json_object_array_get_idx(o, i), depth + 1);
		break;
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			(void)k;
			wipe_tree(v, depth + 1);
		}
		break;
	}
	default:
		break;
	}
}

/* The tokener's buffer and partial tree, wiped (see the top comment). */
static void tokener_wipe_free(struct json_tokener *tok)
{
	if (!tok)
		return;
	if (tok->pb && tok->pb->buf)
		explicit_bzero(tok->pb->buf, (size_t)tok->pb->size);
	for (int i = 0; i <= tok->depth && i < tok->max_depth; i++) {
		wipe_tree(tok->stack[i].current, 0);
		if (tok->stack[i].obj_field_name)
			explicit_bzero(tok->stack[i].obj_field_name,
				       strlen(tok->stack[i].obj_field_name));
	}
	json_tokener_free(tok);
}

/* Parse @body (an object, strict JSON); NULL with the reason in @err. */
static struct json_object *parse(const char *body, size_t len, char *err,
				 size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *o;
	enum json_tokener_error e;

	if (len > KME_BODY_MAX) {
		pfail(err, errlen, "an answer of %zu bytes, more than %u",
		      len, KME_BODY_MAX);
		return NULL;
	}
	tok = json_tokener_new_ex(8);
	if (!tok) {
		pfail(err, errlen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_VALIDATE_UTF8);
	/* room for any string of the body: the buffer is never moved */
	if (printbuf_memset(tok->pb, 0, 0, (int)len + 1) < 0) {
		tokener_wipe_free(tok);
		pfail(err, errlen, "out of memory");
		return NULL;
	}
	printbuf_reset(tok->pb);
	o = json_tokener_parse_ex(tok, body, (int)len);
	e = json_tokener_get_error(tok);
	if (!o || e != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		pfail(err, errlen, "not a JSON document: %s",
		      !o || e != json_tokener_success ?
		      (e == json_tokener_continue ? "unexpected end" :
		       json_tokener_error_desc(e)) :
		      "data after it");
		if (o) {
			wipe_tree(o, 0);
			json_object_put(o);
		}
		tokener_wipe_free(tok);
		return NULL;
	}
	tokener_wipe_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		wipe_tree(o, 0);
		json_object_put(o);
		pfail(err, errlen, "not a JSON object");
		return NULL;
	}
	return o;
}

static void put_wiped(struct json_object *o)
{
	wipe_tree(o, 0);
	json_object_put(o);
}

/* A key_ID as ETSI 014 has it (a UUID; we take up to KME_KEY_ID_MAX
 * printable characters, since it goes back in a JSON string and a log). */
bool kme_key_id_ok(const char *s, size_t n)
{
	if (!n || n > KME_KEY_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.:", s[i]))
			return false;
	return true;
}

void kme_keys_free(struct kme_keys *k)
{
	if (k->keys) {
		explicit_bzero(k->keys, (size_t)k->count * k->key_size);
		free(k->keys);
	}
	free(k->ids);
	memset(k, 0, sizeof(*k));
}

int kme_parse_keys(const char *body, size_t len, uint32_t count,
		   uint32_t key_size, const kme_key_id *want,
		   struct kme_keys *out, char *err, size_t errlen)
{
	struct json_object *o, *arr;
	bool *seen = NULL;
	size_t n;
	int r = -EPROTO;

	memset(out, 0, sizeof(*out));
	if (!count || count > KME_KEYS_MAX || !key_size ||
	    key_size > KME_KEY_SIZE_MAX)
		return pfail(err, errlen, "asked for %u keys of %u bytes",
			     count, key_size);
	o = parse(body, len, err, errlen);
	if (!o)
		return -EPROTO;
	if (!json_object_object_get_ex(o, "keys", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		pfail(err, errlen, "no \"keys\" array in the Key container");
		goto out;
	}
	n = json_object_array_length(arr);
	if (n != count) {
		pfail(err, errlen, "%zu keys in the Key container, asked for %u",
		      n, count);
		goto out;
	}
	out->count = count;
	out->key_size = key_size;
	out->ids = calloc(count, sizeof(*out->ids));
	out->keys = calloc(count, key_size);
	seen = calloc(count, sizeof(*seen));
	if (!out->ids || !out->keys || !seen) {
		pfail(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i);
		struct json_object *id, *key;
		const char *ids, *ks;
		size_t idn, kn, pos = i;
		ssize_t got;

		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "key_ID", &id) ||
		    !json_object_is_type(id, json_type_string) ||
		    !json_object_object_get_ex(e, "key", &key) ||
		    !json_object_is_type(key, json_type_string)) {
			pfail(err, errlen,
			      "key %zu of the Key container: no key_ID and key strings",
			      i);
			goto out;
		}
		ids = json_object_get_string(id);
		idn = (size_t)json_object_get_string_len(id);
		if (!kme_key_id_ok(ids, idn)) {
			pfail(err, errlen,
			      "key %zu of the Key container: a key_ID of %zu characters that is no UUID",
			      i, idn);
			goto out;
		}
		if (want) {
			for (pos = 0; pos < count; pos++)
				if (strlen(want[pos]) == idn &&
				    !memcmp(want[pos], ids, idn))
					break;
			if (pos == count) {
				pfail(err, errlen,
				      "key_ID %.*s of the Key container was not asked for",
				      (int)idn, ids);
				goto out;
			}
		} else {
			/* enc_keys: in the container's order, each once */
			for (size_t j = 0; j < i; j++)
				if (strlen(out->ids[j]) == idn &&
				    !memcmp(out->ids[j], ids, idn))
					pos = count;
		}
		if (pos == count || seen[pos]) {
			pfail(err, errlen, "key_ID %.*s twice in the Key container",
			      (int)idn, ids);
			goto out;
		}
		seen[pos] = true;
		memcpy(out->ids[pos], ids, idn);
		out->ids[pos][idn] = '\0';
		ks = json_object_get_string(key);
		kn = (size_t)json_object_get_string_len(key);
		got = qkd_base64_decode(ks, kn, out->keys + pos * key_size,
					key_size);
		if (got != (ssize_t)key_size) {
			pfail(err, errlen,
			      got == -ENOSPC || got >= 0 ?
			      "key %s: %s, not %u bytes" :
			      "key %s: %s (not %u bytes of strict base64)",
			      out->ids[pos],
			      got >= 0 ? "a key of another size" :
			      got == -ENOSPC ? "a longer key" : "bad base64",
			      key_size);
			goto out;
		}
	}
	r = 0;
out:
	free(seen);
	put_wiped(o);
	if (r)
		kme_keys_free(out);
	return r;
}

static int get_u32(struct json_object *o, const char *name, uint32_t *v,
		   bool need)
{
	struct json_object *f;
	int64_t x;

	if (!json_object_object_get_ex(o, name, &f))
		return need ? -ENOENT : 0;
	if (!json_object_is_type(f, json_type_int))
		return -EINVAL;
	x = json_object_get_int64(f);
	if (x < 0 || x > UINT32_MAX)
		return -EINVAL;
	*v = (uint32_t)x;
	return 0;
}

int kme_parse_status(const char *body, size_t len, struct kme_status *st,
		     char *err, size_t errlen)
{
	static const struct {
		const char *name;
		size_t off;
		bool need;
	} f[] = {
		{ "key_size", offsetof(struct kme_status, key_size), true },
		{ "stored_key_count",
		  offsetof(struct kme_status, stored_key_count), false },
		{ "max_key_per_request",
		  offsetof(struct kme_status, max_key_per_request), true },
		{ "max_key_size", offsetof(struct kme_status, max_key_size),
		  true },
		{ "min_key_size", offsetof(struct kme_status, min_key_size),
		  true },
	};
	struct json_object *o = parse(body, len, err, errlen);

	memset(st, 0, sizeof(*st));
	if (!o)
		return -EPROTO;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		int r = get_u32(o, f[i].name,
				(uint32_t *)((char *)st + f[i].off), f[i].need);

		if (r) {
			put_wiped(o);
			return pfail(err, errlen, "Status: %s \"%s\"",
				     r == -ENOENT ? "no" : "a bad", f[i].name);
		}
	}
	put_wiped(o);
	if (!st->max_key_per_request || st->min_key_size > st->max_key_size)
		return pfail(err, errlen,
			     "Status: max_key_per_request %u, key sizes %u..%u bits",
			     st->max_key_per_request, st->min_key_size,
			     st->max_key_size);
	return 0;
}

void kme_parse_message(const char *body, size_t len, char *msg,
		       size_t msglen)
{
	struct json_object *o, *m;
	char err[8];
	size_t j = 0;

	if (!msglen)
		return;
	msg[0] = '\0';
	o = parse(body, len, err, sizeof(err));
	if (!o)
		return;
	if (json_object_object_get_ex(o, "message", &m) &&
	    json_object_is_type(m, json_type_string)) {
		const char *s = json_object_get_string(m);

		/* printable ASCII only: it goes into a log line */
		for (size_t i = 0; s[i] && j + 1 < msglen && i < 200; i++)
			msg[j++] = s[i] >= 0x20 && s[i] <= 0x7e ? s[i] : '?';
		msg[j] = '\0';
	}
	put_wiped(o);
}
