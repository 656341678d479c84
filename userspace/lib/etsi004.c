// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd: ETSI GS QKD 004 (v2.1.1) OPEN_CONNECT, GET_KEY and CLOSE on
 * /dev/qkd (<qkd/etsi004.h>; the mapping is in Documentation/etsi.md).
 *
 * A connection is a /dev/qkd file of its own, opened for writing, with
 * poll() set to its stream, in a table of this process (one connection a
 * stream: a second OPEN_CONNECT of the same KSID is OC_KSID_ALREADY_IN_USE).
 * Keys go from the kernel straight to the caller's key_buffer: the library
 * holds no copy of a key.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <qkd/dev.h>
#include <qkd/ids.h>
#include <qkd/util.h>

#include "etsi004_priv.h"

#define HOST_MAX	255
/* Waiting for a given index that is not there yet while the stream holds
 * others: poll() says readable at once, so the wait re-checks this often. */
#define INDEX_WAIT_MS	5

struct conn {
	bool used;		/* the slot is taken (maybe still opening) */
	bool ready;		/* open_connect finished: get_key may use it */
	bool closing;		/* closed: the last user closes the fd */
	unsigned int users;	/* get_key calls in flight */
	int fd;
	int wake;		/* eventfd: qkd_close() ends a waiting get_key */
	uint8_t ksid[QKD_004_KSID_LEN];
	uint32_t key_size;
	uint32_t timeout_ms;
	uint64_t expires_ns;	/* CLOCK_MONOTONIC; 0: no TTL */
};

static struct conn conns[QKD_004_MAX_CONNECTIONS];
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const status_names[] = {
	[QKD_STATUS_SUCCESSFUL] = "SUCCESSFUL",
	[QKD_STATUS_PEER_NOT_CONNECTED] = "PEER_NOT_CONNECTED",
	[QKD_STATUS_GK_INSUFFICIENT_KEY_AVAILABLE] = "GK_INSUFFICIENT_KEY_AVAILABLE",
	[QKD_STATUS_GK_PEER_NOT_CONNECTED] = "GK_PEER_NOT_CONNECTED",
	[QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE] = "NO_QKD_CONNECTION_AVAILABLE",
	[QKD_STATUS_OC_KSID_ALREADY_IN_USE] = "OC_KSID_ALREADY_IN_USE",
	[QKD_STATUS_TIMEOUT_ERROR] = "TIMEOUT_ERROR",
	[QKD_STATUS_OC_QOS_NOT_SATISFIABLE] = "OC_QOS_NOT_SATISFIABLE",
	[QKD_STATUS_GK_METADATA_INSUFFICIENT_SIZE] = "GK_METADATA_INSUFFICIENT_SIZE",
	[QKD_STATUS_INVALID_ARGUMENT] = "INVALID_ARGUMENT",
	[QKD_STATUS_DEVICE_ERROR] = "DEVICE_ERROR",
};

const char *qkd_004_status_name(uint32_t status)
{
	if (status < sizeof(status_names) / sizeof(status_names[0]) &&
	    status_names[status])
		return status_names[status];
	return "UNKNOWN";
}

/* A status, with errno set to @err (positive). */
static uint32_t fail(uint32_t status, int err)
{
	errno = err;
	return status;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || (c && strchr("-._~:[]%", c));
}

int qkd004_parse_uri(const char *uri, uint8_t ksid[QKD_004_KSID_LEN],
		     bool *has_ksid)
{
	const char *host, *path;
	size_t hostlen, i;

	if (!uri || strncmp(uri, "qkd://", 6) ||
	    strnlen(uri, QKD004_URI_MAX + 1) > QKD004_URI_MAX)
		return -EINVAL;
	host = uri + 6;
	hostlen = strcspn(host, "/");
	if (!hostlen || hostlen > HOST_MAX)
		return -EINVAL;
	for (i = 0; i < hostlen; i++)
		if (!host_char(host[i]))
			return -EINVAL;
	path = host + hostlen;
	if (!*path) {
		*has_ksid = false;
		return 0;
	}
	path++;
	if (strlen(path) != QKD_UUID_STR_LEN - 1 || qkd_uuid_parse(path, ksid) ||
	    qkd_uuid_is_zero(ksid))
		return -EINVAL;
	*has_ksid = true;
	return 0;
}

uint32_t qkd004_pick_stream(const char *source, const char *destination,
			    const uint8_t ksid[QKD_004_KSID_LEN],
			    uint8_t out[QKD_004_KSID_LEN])
{
	uint8_t named[2][QKD_004_KSID_LEN];
	const uint8_t *pick = NULL;
	bool has[2];
	int i;

	if (qkd004_parse_uri(source, named[0], &has[0]) ||
	    qkd004_parse_uri(destination, named[1], &has[1]))
		return fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
	if (!qkd_uuid_is_zero(ksid))
		pick = ksid;
	for (i = 0; i < 2; i++) {
		if (!has[i])
			continue;
		if (pick && memcmp(pick, named[i], QKD_004_KSID_LEN))
			return fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
		pick = named[i];
	}
	if (!pick)
		return fail(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, ENOENT);
	memcpy(out, pick, QKD_004_KSID_LEN);
	return QKD_STATUS_SUCCESSFUL;
}

uint32_t qkd004_check_qos(struct qkd_qos *qos,
			  const struct qkd_stream_status *st)
{
	uint32_t status = QKD_STATUS_SUCCESSFUL;

	/* first what is refused, before anything of @qos is changed */
	if (!memchr(qos->metadata_mimetype, '\0', sizeof(qos->metadata_mimetype)))
		return fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
	if (qos->max_bps && qos->min_bps > qos->max_bps)
		return fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
	if (qos->key_chunk_size != st->key_size) {
		if (qos->key_chunk_size)
			status = QKD_STATUS_OC_QOS_NOT_SATISFIABLE;
		qos->key_chunk_size = st->key_size;
	}
	if (strcasecmp(qos->metadata_mimetype, QKD_004_MIMETYPE_JSON)) {
		if (qos->metadata_mimetype[0])
			status = QKD_STATUS_OC_QOS_NOT_SATISFIABLE;
		memset(qos->metadata_mimetype, 0, sizeof(qos->metadata_mimetype));
		strcpy(qos->metadata_mimetype, QKD_004_MIMETYPE_JSON);
	}
	return status == QKD_STATUS_SUCCESSFUL ? status : fail(status, EINVAL);
}

uint32_t qkd004_get_key_status(int err)
{
	switch (err) {
	case 0:
		return QKD_STATUS_SUCCESSFUL;
	case -EAGAIN:		/* the stream is empty */
	case -ENOKEY:		/* that index is not pushed yet */
		return QKD_STATUS_GK_INSUFFICIENT_KEY_AVAILABLE;
	case -ENOENT:		/* the stream was deleted */
		return QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE;
	case -EBUSY:		/* an SA binding owns the stream */
		return QKD_STATUS_OC_KSID_ALREADY_IN_USE;
	case -EKEYEXPIRED:	/* that index was delivered here, or flushed */
	case -EINVAL:
		return QKD_STATUS_INVALID_ARGUMENT;
	default:
		return QKD_STATUS_DEVICE_ERROR;
	}
}

long qkd004_format_metadata(char *buf, size_t size,
			    const uint8_t ksid[QKD_004_KSID_LEN],
			    uint64_t index, uint32_t key_size)
{
	char ks[QKD_UUID_STR_LEN], kid[QKD_UUID_STR_LEN];
	char tmp[QKD004_METADATA_SIZE];
	uint8_t key_id[QKD_KEY_ID_LEN];
	int n;

	if (size < QKD004_METADATA_SIZE)
		return -(long)QKD004_METADATA_SIZE;
	qkd_uuid_format(ksid, ks);
	qkd_key_id_from_index(key_id, ksid, index);
	qkd_uuid_format(key_id, kid);
	n = snprintf(tmp, sizeof(tmp),
		     "{\"key_stream_id\":\"%s\",\"index\":%" PRIu64
		     ",\"key_ID\":\"%s\",\"key_size\":%" PRIu32 "}",
		     ks, index, kid, key_size);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -(long)QKD004_METADATA_SIZE;	/* cannot happen */
	memcpy(buf, tmp, (size_t)n + 1);
	return n + 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Under conns_lock. */
static struct conn *conn_find(const uint8_t ksid[QKD_004_KSID_LEN])
{
	int i;

	for (i = 0; i < QKD_004_MAX_CONNECTIONS; i++)
		if (conns[i].used &&
		    !memcmp(conns[i].ksid, ksid, QKD_004_KSID_LEN))
			return &conns[i];
	return NULL;
}

/* Under conns_lock: the slot is free again. */
static void conn_free(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->wake >= 0)
		close(c->wake);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->wake = -1;
}

uint32_t qkd_open_connect(const char *source, const char *destination,
			  struct qkd_qos *qos,
			  uint8_t key_stream_id[QKD_004_KSID_LEN])
{
	struct qkd_stream_status st;
	struct qkd_qos q;
	uint8_t ksid[QKD_004_KSID_LEN];
	struct conn *c = NULL;
	uint32_t status;
	int i, fd, err;

	if (!source || !destination || !qos || !key_stream_id)
		return fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
	status = qkd004_pick_stream(source, destination, key_stream_id, ksid);
	if (status)
		return status;

	pthread_mutex_lock(&conns_lock);
	if (conn_find(ksid)) {
		pthread_mutex_unlock(&conns_lock);
		return fail(QKD_STATUS_OC_KSID_ALREADY_IN_USE, EBUSY);
	}
	for (i = 0; i < QKD_004_MAX_CONNECTIONS && !c; i++)
		if (!conns[i].used)
			c = &conns[i];
	if (c) {
		memset(c, 0, sizeof(*c));
		c->used = true;		/* reserved: not ready for get_key */
		c->fd = -1;
		c->wake = -1;
		memcpy(c->ksid, ksid, QKD_004_KSID_LEN);
	}
	pthread_mutex_unlock(&conns_lock);
	if (!c)
		return fail(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, EMFILE);

	fd = qkd_dev_open(NULL);
	if (fd < 0) {
		status = fail(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, -fd);
		goto out_free;
	}
	c->fd = fd;
	c->wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake < 0) {
		status = fail(QKD_STATUS_DEVICE_ERROR, errno);
		goto out_free;
	}
	err = qkd_dev_stream_status(fd, ksid, &st);
	if (err) {
		status = fail(err == -ENOENT ? QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE :
			      QKD_STATUS_DEVICE_ERROR, -err);
		goto out_free;
	}
	q = *qos;
	status = qkd004_check_qos(&q, &st);
	if (status == QKD_STATUS_OC_QOS_NOT_SATISFIABLE)
		*qos = q;	/* the counter-proposal */
	if (status)
		goto out_free;
	err = qkd_dev_set_poll_stream(fd, ksid);
	if (err) {
		status = fail(err == -ENOENT ? QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE :
			      QKD_STATUS_DEVICE_ERROR, -err);
		goto out_free;
	}
	*qos = q;
	memcpy(key_stream_id, ksid, QKD_004_KSID_LEN);
	pthread_mutex_lock(&conns_lock);
	c->key_size = st.key_size;
	c->timeout_ms = q.timeout;
	c->expires_ns = q.ttl ? now_ns() + (uint64_t)q.ttl * 1000000000u : 0;
	c->ready = true;
	pthread_mutex_unlock(&conns_lock);
	return QKD_STATUS_SUCCESSFUL;

out_free:
	err = errno;
	pthread_mutex_lock(&conns_lock);
	conn_free(c);
	pthread_mutex_unlock(&conns_lock);
	errno = err;
	return status;
}

/* Under conns_lock. */
static struct conn *conn_get(const uint8_t ksid[QKD_004_KSID_LEN])
{
	struct conn *c = conn_find(ksid);

	if (!c || !c->ready || c->closing)
		return NULL;
	c->users++;
	return c;
}

static void conn_put(struct conn *c)
{
	pthread_mutex_lock(&conns_lock);
	if (!--c->users && c->closing)
		conn_free(c);
	pthread_mutex_unlock(&conns_lock);
}

/*
 * Waits up to @ms for the stream to hold a key (@stream), or only for
 * @ms: 0; -ETIMEDOUT; -ENOENT the stream is gone or qkd_close() closed the
 * connection meanwhile.
 */
static int wait_key(const struct conn *c, int ms, bool stream)
{
	struct pollfd p[2] = {
		{ .fd = stream ? c->fd : -1, .events = POLLIN },
		{ .fd = c->wake, .events = POLLIN },
	};
	int r;

	r = poll(p, 2, ms);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (!r)
		return -ETIMEDOUT;
	if (p[1].revents || (p[0].revents & (POLLERR | POLLHUP | POLLNVAL)))
		return -ENOENT;
	return 0;
}

/* Closed meanwhile (by another thread)? */
static bool conn_closing(struct conn *c)
{
	bool closing;

	pthread_mutex_lock(&conns_lock);
	closing = c->closing;
	pthread_mutex_unlock(&conns_lock);
	return closing;
}

static int take(const struct conn *c, uint64_t want, uint8_t *buf,
		uint64_t *got)
{
	if (want == QKD_004_INDEX_NEXT)
		return qkd_dev_get_key(c->fd, c->ksid, buf, c->key_size, NULL,
				       got, NULL);
	*got = want;
	return qkd_dev_get_key_by_index(c->fd, c->ksid, want, buf, c->key_size,
					NULL, NULL);
}

uint32_t qkd_get_key(const uint8_t key_stream_id[QKD_004_KSID_LEN],
		     uint64_t *index, uint8_t *key_buffer,
		     struct qkd_metadata *metadata)
{
	uint64_t want, got = 0, deadline, t;
	struct conn *c;
	uint32_t status;
	long n;
	int err;

	if (!key_stream_id || !index || !key_buffer)
		return fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
	pthread_mutex_lock(&conns_lock);
	c = conn_get(key_stream_id);
	pthread_mutex_unlock(&conns_lock);
	if (!c)
		return fail(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, ENOENT);

	/* everything that refuses the call before a key is taken */
	want = *index;
	if (want != QKD_004_INDEX_NEXT && want > QKD_INDEX_MAX) {
		status = fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
		goto out;
	}
	if (metadata && !metadata->metadata_buffer && metadata->metadata_size) {
		status = fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
		goto out;
	}
	if (metadata && metadata->metadata_size < QKD004_METADATA_SIZE) {
		metadata->metadata_size = QKD004_METADATA_SIZE;
		status = fail(QKD_STATUS_GK_METADATA_INSUFFICIENT_SIZE, ENOSPC);
		goto out;
	}
	t = now_ns();
	if (c->expires_ns && t >= c->expires_ns) {
		status = fail(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, ETIME);
		goto out;
	}

	deadline = t + (uint64_t)c->timeout_ms * 1000000u;
	for (;;) {
		err = take(c, want, key_buffer, &got);
		if (err != -EAGAIN && err != -ENOKEY)
			break;
		t = now_ns();
		if (t >= deadline) {
			if (c->timeout_ms)
				err = -ETIMEDOUT;
			break;
		}
		n = (long)((deadline - t + 999999) / 1000000);
		if (n > 60000)
			n = 60000;
		/*
		 * A given index: the stream may hold others, so poll() on it
		 * would return at once; re-check every INDEX_WAIT_MS instead.
		 */
		if (err == -ENOKEY && n > INDEX_WAIT_MS)
			n = INDEX_WAIT_MS;
		err = wait_key(c, (int)n, want == QKD_004_INDEX_NEXT);
		if (err && err != -ETIMEDOUT)
			break;		/* -ENOENT: gone or closed */
		if (conn_closing(c)) {
			err = -ENOENT;
			break;
		}
	}
	if (err == -ETIMEDOUT) {
		status = fail(QKD_STATUS_TIMEOUT_ERROR, ETIMEDOUT);
		goto out;
	}
	if (err) {
		status = fail(qkd004_get_key_status(err), -err);
		goto out;
	}
	*index = got;
	if (metadata) {
		n = qkd004_format_metadata(metadata->metadata_buffer,
					   metadata->metadata_size, c->ksid,
					   got, c->key_size);
		metadata->metadata_size = n > 0 ? (uint32_t)n : 0;
	}
	status = QKD_STATUS_SUCCESSFUL;
out:
	err = errno;
	conn_put(c);
	errno = err;
	return status;
}

uint32_t qkd_close(const uint8_t key_stream_id[QKD_004_KSID_LEN])
{
	struct conn *c;

	if (!key_stream_id)
		return fail(QKD_STATUS_INVALID_ARGUMENT, EINVAL);
	pthread_mutex_lock(&conns_lock);
	c = conn_find(key_stream_id);
	if (!c || !c->ready || c->closing) {
		pthread_mutex_unlock(&conns_lock);
		return fail(QKD_STATUS_NO_QKD_CONNECTION_AVAILABLE, ENOENT);
	}
	c->closing = true;
	if (!c->users)
		conn_free(c);
	else	/* wake a waiting get_key: it returns, the last one frees */
		(void)!write(c->wake, &(uint64_t){ 1 }, sizeof(uint64_t));
	pthread_mutex_unlock(&conns_lock);
	return QKD_STATUS_SUCCESSFUL;
}
