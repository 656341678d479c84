// SPDX-License-Identifier: GPL-2.0-only
/*
 * Where final keys go: the kernel store of this netns through libqkd's
 * genl client (KEY_ADD on the stream), or, with --no-kernel, a text file
 * of "index hexkey" lines (for tests on a host without the module).
 *
 * Both stores answer the one question crash recovery needs -- the index
 * the next key gets -- and can remove keys pushed on this side only
 * (see "Daemon" in Documentation/protocol.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/dev.h"
#include "qkd/frame.h"
#include "qkd/nl.h"
#include "qkd/util.h"
#include "qkdd.h"

/* Above this many orphans, flushing the stream is cheaper than taking
 * them one by one. */
#define DROP_ONE_BY_ONE_MAX	65536

struct store {
	bool kernel;
	uint8_t stream[16];
	char link[QKDD_NAME_MAX];
	uint32_t key_size;
	/* kernel */
	struct qkd_nl *nl;
	struct qkd_nl *events;		/* the "events" group, once joined */
	/* file */
	char path[QKDD_PATH_MAX];
	uint64_t next;
};

static int file_scan(struct store *s)
{
	FILE *f = fopen(s->path, "re");
	char line[2 * 512 + 64];
	unsigned int lineno = 0;

	s->next = 0;
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long idx;
		char *end;

		lineno++;
		errno = 0;
		idx = strtoull(line, &end, 10);
		if (errno || end == line || *end != ' ') {
			qlog("%s:%u: not an 'index key' line; refusing to append",
			     s->path, lineno);
			fclose(f);
			return -EINVAL;
		}
		if (idx + 1 > s->next)
			s->next = idx + 1;
	}
	fclose(f);
	return 0;
}

struct store *store_open(const struct qkdd_opts *o, char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	struct qkd_stream st;
	struct qkd_link lk;
	struct qkd_link_ref ref;
	char uuid[QKD_UUID_STR_LEN];
	int r;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	memcpy(s->stream, o->stream, 16);
	snprintf(s->link, sizeof(s->link), "%s", o->link);
	qkd_uuid_format(o->stream, uuid);
	if (o->no_kernel) {
		s->key_size = o->key_size;
		snprintf(s->path, sizeof(s->path), "%s", o->out);
		r = file_scan(s);
		if (r) {
			snprintf(err, errlen, "%s: %s", s->path, strerror(-r));
			free(s);
			return NULL;
		}
		return s;
	}
	s->kernel = true;
	r = qkd_nl_open(&s->nl);
	if (r) {
		snprintf(err, errlen,
			 r == -ENOENT ? "genl family qkd not found: load the module (modprobe qkd) or use --no-kernel --out FILE"
				      : "cannot open the qkd genl family: %s",
			 strerror(-r));
		free(s);
		return NULL;
	}
	ref.id = 0;
	ref.name = o->link;
	r = qkd_link_get(s->nl, &ref, &lk);
	if (r) {
		snprintf(err, errlen,
			 "link %s: %s (create it: qkdctl link add %s role %s)",
			 o->link, strerror(-r), o->link,
			 o->role == QKDD_ALICE ? "initiator" : "responder");
		goto fail;
	}
	r = qkd_stream_get(s->nl, o->stream, &st);
	if (r) {
		snprintf(err, errlen,
			 "stream %s: %s (create it: qkdctl stream add %s link %s key-size 32)",
			 uuid, strerror(-r), uuid, o->link);
		goto fail;
	}
	if (st.link_id != lk.id) {
		snprintf(err, errlen, "stream %s belongs to link %u, not to %s",
			 uuid, st.link_id, o->link);
		goto fail;
	}
	s->key_size = st.key_size;
	return s;
fail:
	qkd_nl_close(s->nl);
	free(s);
	return NULL;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	if (s->nl)
		qkd_nl_close(s->nl);
	if (s->events)
		qkd_nl_close(s->events);
	free(s);
}

uint32_t store_key_size(const struct store *s)
{
	return s->key_size;
}

int store_next_index(struct store *s, uint64_t *next)
{
	struct qkd_stream st;
	int r;

	if (!s->kernel) {
		*next = s->next;
		return 0;
	}
	r = qkd_stream_get(s->nl, s->stream, &st);
	if (r) {
		qlog("STREAM_GET: %s%s%s", strerror(-r),
		     qkd_nl_extack(s->nl) ? ": " : "",
		     qkd_nl_extack(s->nl) ? qkd_nl_extack(s->nl) : "");
		return r;
	}
	if (st.key_size != s->key_size) {
		qlog("stream key size changed from %u to %u: restart qkdd",
		     s->key_size, st.key_size);
		return -ESTALE;
	}
	*next = st.next_index;
	return 0;
}

static int file_push(struct store *s, uint64_t first, const uint8_t *keys,
		     uint32_t count)
{
	size_t linecap = 2 * s->key_size + 32;
	char *line = malloc(linecap);
	int fd, r = 0;

	if (!line)
		return -ENOMEM;
	fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	for (uint32_t i = 0; i < count && !r; i++) {
		int n = snprintf(line, linecap, "%" PRIu64 " ", first + i);

		qkd_hex_encode(keys + (size_t)i * s->key_size, s->key_size,
			       line + n, linecap - (size_t)n);
		n += 2 * (int)s->key_size;
		line[n++] = '\n';
		if (frame_write_all(fd, line, (size_t)n))
			r = -EIO;
	}
	if (!r && fsync(fd))
		r = -errno;
	close(fd);
	if (!r)
		s->next = first + count;
out:
	explicit_bzero(line, linecap);
	free(line);
	return r;
}

static int file_drop(struct store *s, uint64_t first, uint64_t end)
{
	char tmp[QKDD_PATH_MAX + 8], line[2 * 512 + 64];
	FILE *in, *out;
	int fd, r = 0;

	in = fopen(s->path, "re");
	if (!in)
		return errno == ENOENT ? 0 : -errno;
	snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	out = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!out) {
		r = -errno;
		if (fd >= 0)
			close(fd);
		fclose(in);
		return r;
	}
	while (fgets(line, sizeof(line), in)) {
		unsigned long long idx = strtoull(line, NULL, 10);

		if (idx >= first && idx < end)
			continue;
		fputs(line, out);
	}
	explicit_bzero(line, sizeof(line));
	fclose(in);
	if (fflush(out) || fsync(fileno(out)))
		r = -errno;
	fclose(out);
	if (!r && rename(tmp, s->path))
		r = -errno;
	return r;
}

static int kernel_drop(struct store *s, uint64_t first, uint64_t end)
{
	uint8_t buf[QKD_KEY_SIZE_MAX];
	uint64_t taken = 0;
	int fd, r;

	if (end - first > DROP_ONE_BY_ONE_MAX) {
		r = qkd_key_flush(s->nl, s->stream);
		qlog("%" PRIu64 " orphan indices: flushed the whole stream (%s)",
		     end - first, r ? strerror(-r) : "ok");
		return r;
	}
	fd = qkd_dev_open(NULL);
	if (fd < 0) {
		qlog("cannot open %s to remove orphan keys (%s); flushing the stream",
		     QKD_DEV_PATH, strerror(-fd));
		return qkd_key_flush(s->nl, s->stream);
	}
	for (uint64_t i = first; i < end; i++) {
		r = qkd_dev_get_key_by_index(fd, s->stream, i, buf, sizeof(buf),
					     NULL, NULL);
		if (!r)
			taken++;
		else if (r != -EKEYEXPIRED && r != -ENOKEY)
			qlog("removing orphan key %" PRIu64 ": %s", i,
			     strerror(-r));
	}
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	qlog("removed %" PRIu64 " orphan keys in [%" PRIu64 ", %" PRIu64 ")",
	     taken, first, end);
	return 0;
}

int store_drop(struct store *s, uint64_t first, uint64_t end)
{
	if (end <= first)
		return 0;
	return s->kernel ? kernel_drop(s, first, end)
			 : file_drop(s, first, end);
}

int store_push(struct store *s, uint64_t first, const uint8_t *keys,
	       uint32_t count)
{
	uint32_t per = qkdd_push_batch_keys ? qkdd_push_batch_keys : count;
	uint64_t pushed = 0, done = 0;
	int r = 0;

	if (!count)
		return 0;
	if (!s->kernel)
		return file_push(s, first, keys, count);
	/* libqkd splits at 32 KiB; the test knob splits further. */
	while (done < count) {
		uint32_t n = count - done < per ? (uint32_t)(count - done) : per;

		r = qkd_key_add(s->nl, s->stream, first + done,
				keys + done * s->key_size,
				(size_t)n * s->key_size, s->key_size, &pushed);
		if (r) {
			pushed += done;
			break;
		}
		done += n;
	}
	if (!r)
		return 0;
	qlog("KEY_ADD of %u keys at index %" PRIu64 " failed after %" PRIu64 ": %s%s%s",
	     count, first, pushed, strerror(-r),
	     qkd_nl_extack(s->nl) ? ": " : "",
	     qkd_nl_extack(s->nl) ? qkd_nl_extack(s->nl) : "");
	/*
	 * A block larger than one KEY_ADD batch goes in several messages,
	 * each all or nothing; if a later one fails, the earlier ones must
	 * not stay behind as keys this side holds alone. The stream's
	 * next_index has moved past them all the same: the caller
	 * reconnects, and recovery starts both sides at the larger index.
	 */
	if (pushed)
		kernel_drop(s, first, first + pushed);
	return r;
}

int store_room(struct store *s, uint64_t *room, uint64_t *max_keys)
{
	struct qkd_stream st;
	int r;

	if (!s->kernel) {
		*room = UINT64_MAX;
		if (max_keys)
			*max_keys = UINT64_MAX;
		return 0;
	}
	r = qkd_stream_get(s->nl, s->stream, &st);
	if (r) {
		qlog("STREAM_GET: %s", strerror(-r));
		return r;
	}
	*room = st.stored_keys < st.max_keys ?
		(uint64_t)(st.max_keys - st.stored_keys) : 0;
	if (max_keys)
		*max_keys = st.max_keys;
	return 0;
}

/*
 * The kernel's events, for waiting on a full stream: a socket of its own
 * (a request socket would get them between its replies), non-blocking so
 * that a drain stops when nothing is left. Joined before the caller looks
 * at the room, so that no delivery between the look and the wait goes
 * unseen.
 */
int store_events_fd(struct store *s, int *fd)
{
	int r;

	*fd = -1;
	if (!s->kernel)
		return 0;
	if (s->events) {
		*fd = qkd_nl_fd(s->events);
		return 0;
	}
	r = qkd_nl_open(&s->events);
	if (r) {
		qlog("cannot open a genl socket for the store's events: %s",
		     strerror(-r));
		return r;
	}
	r = qkd_nl_join_events(s->events);
	if (!r) {
		*fd = qkd_nl_fd(s->events);
		if (fcntl(*fd, F_SETFL, fcntl(*fd, F_GETFL) | O_NONBLOCK) < 0)
			r = -errno;
	}
	if (r) {
		qlog("cannot listen to the qkd genl events (CAP_NET_ADMIN?): %s",
		     strerror(-r));
		qkd_nl_close(s->events);
		s->events = NULL;
		*fd = -1;
	}
	return r;
}

/* Leave the events group: between pauses nothing would read them. */
void store_events_close(struct store *s)
{
	if (s->events)
		qkd_nl_close(s->events);
	s->events = NULL;
}

struct events_seen {
	const uint8_t *stream;
	bool ours;
};

static int event_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	struct events_seen *e = arg;
	struct qkd_event ev;

	if (qkd_event_parse(cmd, tb, &ev))
		return 0;
	qdebug("kernel event %s", qkd_event_name(cmd));
	if (QKD_HAVE(&ev, QKD_EV_STREAM_ID) &&
	    !memcmp(ev.stream_id, e->stream, QKD_STREAM_ID_LEN) &&
	    (cmd == QKD_CMD_STREAM_LOW_NTF || cmd == QKD_CMD_STREAM_EMPTY_NTF ||
	     cmd == QKD_CMD_STREAM_DEL_NTF))
		e->ours = true;
	return 0;
}

/*
 * Read every event queued: 1 if one may have made room in our stream (it
 * fell below its low-water mark or emptied, or was deleted, or events were
 * lost to a full socket buffer: look again), 0 if none did, or -errno.
 */
int store_events_drain(struct store *s)
{
	struct events_seen e = { .stream = s->stream };

	if (!s->events)
		return 0;
	for (;;) {
		int r = qkd_nl_recv_events(s->events, event_cb, &e);

		if (r == -EAGAIN || r == -EWOULDBLOCK)
			break;
		/* ENOBUFS (libnl says ENOMEM): events were lost */
		if (r == -ENOBUFS || r == -ENOMEM)
			return 1;
		if (r) {
			qlog("reading the store's events: %s", strerror(-r));
			return r;
		}
	}
	return e.ours;
}

void store_link_state(struct store *s, bool up)
{
	struct qkd_link_ref ref = { .name = s->link };
	int r;

	if (!s->kernel)
		return;
	r = qkd_link_set_state(s->nl, &ref, up ? QKD_LINK_STATE_UP : QKD_LINK_STATE_DOWN);
	if (r)
		qlog("cannot set link %s %s: %s", s->link, up ? "up" : "down",
		     strerror(-r));
}
