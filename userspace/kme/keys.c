// SPDX-License-Identifier: GPL-2.0-only
/*
 * The ETSI 014 operations on the kernel store, for a pair the caller is
 * authorised for (http.c checked that). Everything a request can get wrong
 * is checked before a key is taken, so that a refused request consumes
 * nothing:
 *   enc_keys  extension_mandatory (none is supported), additional slave
 *             SAEs (no key multicast: max_SAE_ID_count 0), number against
 *             max_key_per_request, size against the stream's key size
 *             (equal, in bits), then QKD_IOC_GET_KEYS, which takes all
 *             `number` keys or none.
 *   dec_keys  each key_ID one of the pair's stream (its first 9 bytes the
 *             stream's), not below the stream's lowest stored index (gone
 *             at this end), not at or above its push index when the
 *             stream is empty (not here yet); then each key is taken by
 *             ID. A key found gone only then (a gap the status cannot
 *             show, or a race with another reader) fails the request, and
 *             the keys it took before are parked: kept here, wiped when
 *             delivered or at exit, and delivered to the same pair's slave
 *             when it asks for them again. A key reaches a slave once.
 * Key bytes live in buffers of this file and of the reply, wiped after use.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkd/dev.h"
#include "qkd/util.h"
#include "kme.h"

/* A key taken from the store by a dec_keys that then failed. */
struct parked {
	bool used;
	uint8_t stream[QKD_STREAM_ID_LEN];
	uint8_t key_id[QKD_KEY_ID_LEN];
	size_t len;
	uint8_t key[QKD_KEY_SIZE_MAX];
};

/* One server thread serves every request (http.c): no lock. */
static struct parked *park;
static size_t n_parked;

size_t kme_parked(void)
{
	return n_parked;
}

static struct parked *park_find(const uint8_t stream[QKD_STREAM_ID_LEN],
				const uint8_t key_id[QKD_KEY_ID_LEN])
{
	size_t i;

	for (i = 0; park && i < KME_PARK_MAX; i++)
		if (park[i].used && !memcmp(park[i].stream, stream, QKD_STREAM_ID_LEN) &&
		    !memcmp(park[i].key_id, key_id, QKD_KEY_ID_LEN))
			return &park[i];
	return NULL;
}

static void park_drop(struct parked *p)
{
	explicit_bzero(p, sizeof(*p));
	n_parked--;
}

/* false (the key wiped) when the park is full. */
static bool park_put(const uint8_t stream[QKD_STREAM_ID_LEN],
		     const uint8_t key_id[QKD_KEY_ID_LEN], const uint8_t *key,
		     size_t len)
{
	size_t i;

	for (i = 0; park && i < KME_PARK_MAX; i++) {
		if (park[i].used)
			continue;
		park[i].used = true;
		memcpy(park[i].stream, stream, QKD_STREAM_ID_LEN);
		memcpy(park[i].key_id, key_id, QKD_KEY_ID_LEN);
		memcpy(park[i].key, key, len);
		park[i].len = len;
		n_parked++;
		return true;
	}
	return false;
}

int kme_store_open(struct kme_store *s, const char *device,
		   unsigned int max_per_request)
{
	struct qkd_info info;
	int fd, r;

	fd = qkd_dev_open(device);
	if (fd < 0)
		return fd;
	r = qkd_dev_info(fd, &info);
	if (r) {
		close(fd);
		return r;
	}
	if (!park) {
		park = calloc(KME_PARK_MAX, sizeof(*park));
		if (!park) {
			close(fd);
			return -ENOMEM;
		}
	}
	s->fd = fd;
	s->max_per_request = max_per_request;
	return 0;
}

void kme_store_close(struct kme_store *s)
{
	if (park) {
		explicit_bzero(park, KME_PARK_MAX * sizeof(*park));
		free(park);
		park = NULL;
		n_parked = 0;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

static const char *uuid_str(const uint8_t id[16], char buf[QKD_UUID_STR_LEN])
{
	qkd_uuid_format(id, buf);
	return buf;
}

/* The stream's status, or an Error reply (503: the store cannot serve). */
static int stream_status(struct kme_store *s, const struct kme_pair *p,
			 struct qkd_stream_status *st, struct kme_reply *out)
{
	char u[QKD_UUID_STR_LEN];
	int r = qkd_dev_stream_status(s->fd, p->stream, st);

	if (r == -ENOENT)
		kme_json_error(KME_HTTP_UNAVAILABLE, out,
			       "stream %s of SAEs %s and %s is not in this KME's store",
			       uuid_str(p->stream, u), p->master, p->slave);
	else if (r)
		kme_json_error(KME_HTTP_UNAVAILABLE, out, "key store error: %s",
			       strerror(-r));
	return r;
}

static unsigned int max_per_request(struct kme_store *s,
				    const struct qkd_stream_status *st)
{
	unsigned int m = s->max_per_request;

	return st->max_key_per_request < m ? st->max_key_per_request : m;
}

void kme_status(struct kme_store *s, const struct kme_config *c,
		const struct kme_pair *p, struct kme_reply *out)
{
	struct qkd_stream_status st;
	struct kme_status k;

	if (stream_status(s, p, &st, out))
		return;
	/* The stream's keys are all of one size: min = max = key_size. */
	k = (struct kme_status){
		.source_kme = c->kme_id, .target_kme = p->peer_kme,
		.master = p->master, .slave = p->slave,
		.key_size_bits = st.key_size * 8, .stored = st.stored_key_count,
		.max_count = st.max_key_count,
		.max_per_request = max_per_request(s, &st),
		.min_size_bits = st.key_size * 8,
		.max_size_bits = st.key_size * 8, .max_sae_ids = 0,
	};
	if (kme_json_status(&k, out))
		kme_json_error(KME_HTTP_UNAVAILABLE, out, "out of memory");
}

void kme_enc_keys(struct kme_store *s, const struct kme_pair *p,
		  const struct kme_key_request *r, struct kme_reply *out)
{
	uint64_t indices[QKD_GET_KEYS_MAX];
	uint8_t ids[QKD_GET_KEYS_MAX][QKD_KEY_ID_LEN];
	struct qkd_stream_status st;
	uint32_t got = 0, ksize = 0, i;
	uint8_t *keys;
	size_t buflen;
	int err;

	if (r->n_mandatory) {
		kme_json_error(KME_HTTP_BAD_REQUEST, out,
			       "extension_mandatory not supported: %s", r->mandatory);
		return;
	}
	if (r->n_additional) {
		kme_json_error(KME_HTTP_BAD_REQUEST, out,
			       "additional_slave_SAE_IDs not supported (max_SAE_ID_count is 0)");
		return;
	}
	if (stream_status(s, p, &st, out))
		return;
	if (r->number > max_per_request(s, &st)) {
		kme_json_error(KME_HTTP_BAD_REQUEST, out,
			       "number %u is above max_key_per_request %u",
			       r->number, max_per_request(s, &st));
		return;
	}
	if (r->has_size && r->size != st.key_size * 8) {
		kme_json_error(KME_HTTP_BAD_REQUEST, out,
			       "size %u is not served: keys between %s and %s are of %u bits",
			       r->size, p->master, p->slave, st.key_size * 8);
		return;
	}
	buflen = (size_t)r->number * st.key_size;
	keys = malloc(buflen);
	if (!keys) {
		kme_json_error(KME_HTTP_UNAVAILABLE, out, "out of memory");
		return;
	}
	err = qkd_dev_get_keys(s->fd, p->stream, r->number, 0, keys, buflen,
			       indices, &got, &ksize);
	if (err == -EAGAIN)
		kme_json_error(KME_HTTP_UNAVAILABLE, out,
			       "not enough keys: %u asked for, %u stored", r->number,
			       st.stored_key_count);
	else if (err == -EBUSY)
		kme_json_error(KME_HTTP_UNAVAILABLE, out,
			       "the stream's keys belong to an in-kernel consumer");
	else if (err)
		kme_json_error(KME_HTTP_UNAVAILABLE, out, "key store error: %s",
			       strerror(-err));
	else if (ksize != st.key_size || got != r->number) {
		/* the stream was re-created between the two ioctls */
		kme_json_error(KME_HTTP_UNAVAILABLE, out, "the stream changed; retry");
	} else {
		for (i = 0; i < got; i++)
			qkd_key_id(p->stream, indices[i], ids[i]);
		if (kme_json_key_container(keys, ksize, got,
					   (const uint8_t (*)[QKD_KEY_ID_LEN])ids, out))
			kme_json_error(KME_HTTP_UNAVAILABLE, out, "out of memory");
	}
	explicit_bzero(keys, buflen);
	free(keys);
}

/* The checks that need no key taken; 0 or an Error reply. */
static int dec_check(const struct kme_pair *p, const struct kme_key_ids *r,
		     const struct qkd_stream_status *st, struct kme_reply *out)
{
	char u[QKD_UUID_STR_LEN];
	uint64_t index;
	size_t i;

	for (i = 0; i < r->n; i++) {
		uuid_str(r->ids[i], u);
		if (qkd_key_id_index(r->ids[i], p->stream, &index)) {
			kme_json_error(KME_HTTP_BAD_REQUEST, out,
				       "key_ID %s is not a key of master SAE %s for slave SAE %s",
				       u, p->master, p->slave);
			return -EINVAL;
		}
		if (park_find(p->stream, r->ids[i]))
			continue;
		if (index < st->next_index && st->stored_key_count) {
			kme_json_error(KME_HTTP_BAD_REQUEST, out,
				       "key_ID %s was already delivered or is no longer available", u);
			return -EKEYEXPIRED;
		}
		if (!st->stored_key_count) {
			if (index >= st->next_index)
				kme_json_error(KME_HTTP_UNAVAILABLE, out,
					       "key_ID %s is not available at this KME yet", u);
			else
				kme_json_error(KME_HTTP_BAD_REQUEST, out,
					       "key_ID %s was already delivered or is no longer available", u);
			return -ENOKEY;
		}
	}
	return 0;
}

void kme_dec_keys(struct kme_store *s, const struct kme_pair *p,
		  const struct kme_key_ids *r, struct kme_reply *out)
{
	struct qkd_stream_status st;
	char u[QKD_UUID_STR_LEN];
	size_t i, taken = 0, lost = 0, buflen, klen = 0;
	uint8_t *keys;
	int err = 0;

	if (r->n > s->max_per_request) {
		kme_json_error(KME_HTTP_BAD_REQUEST, out,
			       "%zu key_IDs asked for, max_key_per_request is %u",
			       r->n, s->max_per_request);
		return;
	}
	if (stream_status(s, p, &st, out))
		return;
	if (dec_check(p, r, &st, out))
		return;
	buflen = r->n * (size_t)st.key_size;
	keys = calloc(r->n ? r->n : 1, st.key_size);
	if (!keys) {
		kme_json_error(KME_HTTP_UNAVAILABLE, out, "out of memory");
		return;
	}
	for (i = 0; i < r->n; i++) {
		struct parked *pk = park_find(p->stream, r->ids[i]);

		if (pk) {
			if (pk->len != st.key_size) {
				err = -EKEYEXPIRED;	/* a stream re-created */
				break;
			}
			memcpy(keys + i * st.key_size, pk->key, pk->len);
			continue;
		}
		err = qkd_dev_get_key_by_id(s->fd, p->stream, r->ids[i],
					    keys + i * st.key_size, st.key_size,
					    &klen, NULL);
		if (!err && klen != st.key_size)
			err = -EPROTO;
		if (err)
			break;
		taken = i + 1;
	}
	if (!err && kme_json_key_container(keys, st.key_size, r->n,
					   (const uint8_t (*)[QKD_KEY_ID_LEN])r->ids, out))
		err = -ENOMEM;
	if (!err) {
		/* Delivered: the parked ones go now. */
		for (i = 0; i < r->n; i++) {
			struct parked *pk = park_find(p->stream, r->ids[i]);

			if (pk)
				park_drop(pk);
		}
	} else {
		size_t j;

		/* Keep what this request took from the store for a retry. */
		for (j = 0; j < taken; j++) {
			if (park_find(p->stream, r->ids[j]))
				continue;
			if (!park_put(p->stream, r->ids[j], keys + j * st.key_size,
				      st.key_size))
				lost++;
		}
		if (lost)
			kme_log("dec_keys %s %s: park full, %zu keys dropped",
				p->master, p->slave, lost);
		uuid_str(r->ids[i < r->n ? i : 0], u);
		if (err == -ENOKEY)
			kme_json_error(KME_HTTP_UNAVAILABLE, out,
				       "key_ID %s is not available at this KME yet", u);
		else if (err == -EKEYEXPIRED)
			kme_json_error(KME_HTTP_BAD_REQUEST, out,
				       "key_ID %s was already delivered or is no longer available", u);
		else if (err == -EBUSY)
			kme_json_error(KME_HTTP_UNAVAILABLE, out,
				       "the stream's keys belong to an in-kernel consumer");
		else
			kme_json_error(KME_HTTP_UNAVAILABLE, out, "key store error: %s",
				       strerror(-err));
	}
	explicit_bzero(keys, buflen);
	free(keys);
}
