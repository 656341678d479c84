// SPDX-License-Identifier: GPL-2.0-only
/*
 * What qkdd keeps across a crash, and the authentication reserve it keeps
 * in step with the peer: the commit records (what rounds were charged,
 * Bob's last block, Alice's pending block), the state file of --state-dir
 * that holds them with the authentication context, and the additions to
 * the reserve from committed blocks.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "session.h"

#define STATE_MAGIC	"QKDDSTAT"
/* 2 adds the index floor after the last block id; 1 is still read */
#define STATE_VERSION	2
#define STATE_MAX	(QKD_AUTH_RESERVE_CAP_DEFAULT + (1u << 20))

#define RETIRE_AFTER	8192		/* QKD bytes added before the PSK /
					 * TLS bootstrap reserve is dropped */

void pending_clear(struct pending *p)
{
	if (p->data) {
		explicit_bzero(p->data, p->len);
		free(p->data);
	}
	memset(p, 0, sizeof(*p));
}

uint64_t fnv64(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void update_reserve(struct qkdd *q)
{
	q->tot.auth_reserve = auth_reserve_level(q->auth);
	if (q->auth)
		q->tot.auth_spent = auth_spent(q);
}

/* Pad bytes this end has used or skipped since the context was made. */
uint64_t auth_spent(const struct qkdd *q)
{
	struct auth_stats as;

	auth_get_stats(q->auth, &as);
	return as.bytes_consumed + as.bytes_skipped;
}

/* ---- state file (--state-dir) ------------------------------------------- */

static void state_path(const struct qkdd *q, char *buf, size_t len,
		       const char *suffix)
{
	snprintf(buf, len, "%s/%s.state%s", q->o->state_dir,
		 qkdd_role_name(q->o->role), suffix);
}

int write_file_sync(const char *dir, const char *tmp, const char *path,
		    const uint8_t *b, size_t len)
{
	size_t off = 0;
	int fd, dfd;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0600))
		goto fail;
	while (off < len) {
		ssize_t w = write(fd, b + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd))
		goto fail;
	if (close(fd)) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path))
		goto fail;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd)) {
		int e = -errno;

		if (dfd >= 0)
			close(dfd);
		return e;
	}
	close(dfd);
	return 0;
fail:
	{
		int e = -errno;

		if (fd >= 0)
			close(fd);
		unlink(tmp);
		return e ? e : -EIO;
	}
}

/*
 * The state file: magic, version, the daemon's commit records (what was
 * charged to rounds, Bob's last block, Alice's pending block without its
 * keys), the authentication context (auth_state_export: every pool from
 * its recorded position on), an FNV-1a checksum. Written to a temporary
 * file, fsynced, renamed over the old one, and the directory fsynced.
 */
int state_save(struct qkdd *q)
{
	char path[QKDD_PATH_MAX + 32], tmp[QKDD_PATH_MAX + 32];
	struct wbuf w = { 0 };
	uint8_t *ab = NULL;
	size_t alen = 0;
	bool pend = q->pend.valid && q->pend.auth_valid;
	int r;

	if (!q->persist || !q->auth)
		return 0;
	if (auth_state_export(q->auth, &ab, &alen)) {
		qlog("state file: out of memory");
		return -ENOMEM;
	}
	wb_bytes(&w, STATE_MAGIC, 8);
	wb_u(&w, STATE_VERSION, 4);
	wb_u(&w, q->charged, 8);
	wb_u(&w, q->have_last, 1);
	wb_u(&w, q->last_block_id, 8);
	wb_u(&w, q->next_index > q->index_floor ? q->next_index : q->index_floor,
	     8);
	wb_u(&w, pend, 1);
	wb_u(&w, pend ? q->pend.first : 0, 8);
	wb_u(&w, pend ? q->pend.count : 0, 4);
	wb_u(&w, pend ? q->pend.id : 0, 8);
	wb_u(&w, pend ? q->pend.charge_to : 0, 8);
	wb_u(&w, pend ? q->pend.auth_len : 0, 4);
	if (pend)
		wb_bytes(&w, q->pend.data, q->pend.auth_len);
	wb_u(&w, alen, 4);
	wb_bytes(&w, ab, alen);
	auth_key_free(ab, alen);
	if (!w.err)
		wb_u(&w, fnv64(0xcbf29ce484222325ull, w.p, w.len), 8);
	if (w.err) {
		wb_free(&w);
		qlog("state file: out of memory");
		return -ENOMEM;
	}
	state_path(q, path, sizeof(path), "");
	state_path(q, tmp, sizeof(tmp), ".tmp");
	r = write_file_sync(q->o->state_dir, tmp, path, w.p, w.len);
	wb_free(&w);
	if (r)
		qlog("cannot write the state file %s: %s", path, strerror(-r));
	return r;
}

static int persist_cb(void *arg)
{
	return state_save(arg) ? -1 : 0;
}

struct auth_ctx *qkdd_state_load(struct qkdd *q, int *err)
{
	char path[QKDD_PATH_MAX + 32];
	struct auth_ctx *a = NULL;
	struct stat st;
	struct rbuf rb;
	uint8_t *buf = NULL;
	size_t len = 0;
	uint64_t sum;
	uint32_t version;
	int fd, e = 0;

	*err = 0;
	if (!q->o->state_dir[0])
		return NULL;
	state_path(q, path, sizeof(path), "");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return NULL;
		qlog("state file %s: %s", path, strerror(errno));
		*err = -errno;
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (st.st_mode & (S_IRWXG | S_IRWXO)) ||
	    (st.st_uid != geteuid() && st.st_uid != 0) ||
	    st.st_size < 16 || st.st_size > STATE_MAX) {
		qlog("state file %s: not a regular file of ours with mode 0600 and a sane size: refusing it",
		     path);
		e = -EPERM;
		goto out;
	}
	buf = malloc((size_t)st.st_size);
	if (!buf) {
		e = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	rb = (struct rbuf){ buf + len - 8, 8, 0, false };
	sum = rb_u(&rb, 8);
	if (len != (size_t)st.st_size ||
	    sum != fnv64(0xcbf29ce484222325ull, buf, len - 8) ||
	    memcmp(buf, STATE_MAGIC, 8)) {
		qlog("state file %s: damaged (checksum): refusing it; install a fresh PSK pair at both ends",
		     path);
		e = -EINVAL;
		goto out;
	}
	rb = (struct rbuf){ buf + 8, len - 16, 0, false };
	version = (uint32_t)rb_u(&rb, 4);
	if (version != 1 && version != STATE_VERSION) {
		qlog("state file %s: unknown version %u", path, version);
		e = -EINVAL;
		goto out;
	}
	q->charged = rb_u(&rb, 8);
	q->have_last = rb_u(&rb, 1);
	q->last_block_id = rb_u(&rb, 8);
	/* version 1 (before 2026-12-06) kept no floor: the store's index */
	q->index_floor = version >= 2 ? rb_u(&rb, 8) : 0;
	if (rb_u(&rb, 1)) {
		pending_clear(&q->pend);
		q->pend.first = rb_u(&rb, 8);
		q->pend.count = (uint32_t)rb_u(&rb, 4);
		q->pend.id = rb_u(&rb, 8);
		q->pend.charge_to = rb_u(&rb, 8);
		q->pend.auth_len = (uint32_t)rb_u(&rb, 4);
		if (!rb.err && q->pend.auth_len <= QKD_AUTH_RESERVE_CAP_DEFAULT) {
			const uint8_t *ab = rb_bytes(&rb, q->pend.auth_len);

			q->pend.data = malloc(q->pend.auth_len + 1);
			if (ab && q->pend.data) {
				memcpy(q->pend.data, ab, q->pend.auth_len);
				q->pend.len = q->pend.auth_len;
				q->pend.valid = true;
				q->pend.auth_valid = true;
			}
		}
		if (!q->pend.valid)
			rb.err = true;
	} else {
		rb_u(&rb, 8 + 4 + 8 + 8 + 4);
	}
	{
		size_t alen = (size_t)rb_u(&rb, 4);
		const uint8_t *ab = rb_bytes(&rb, alen);

		if (ab && rb_done(&rb))
			a = auth_state_import(ab, alen, NULL, &e);
	}
	if (!a) {
		qlog("state file %s: malformed: refusing it; install a fresh PSK pair at both ends",
		     path);
		pending_clear(&q->pend);
		e = -EINVAL;
		goto out;
	}
	if (auth_halted(a)) {
		/* a halt is no reason to refuse the reserve: qkdd backs off */
		qalarm("state file %s: authentication had failed repeatedly before the restart; going on (each failure drops the connection and slows the next one down)",
		       path);
		auth_resume(a);
	}
	qlog("authentication reserve restored from %s (%zu bytes)", path,
	     auth_reserve_level(a));
out:
	close(fd);
	if (buf) {
		explicit_bzero(buf, len);
		free(buf);
	}
	*err = e;
	return a;
}

int qkdd_auth_attach(struct qkdd *q, struct auth_ctx *a, bool fresh)
{
	q->auth = a;
	if (fresh) {
		/* nothing charged yet; a pending block's auth bytes belong to
		 * the old context and are never added to this one */
		q->charged = 0;
		q->pend.auth_valid = false;
	}
	if (!q->o->state_dir[0])
		return 0;
	q->persist = true;
	auth_set_persist(a, persist_cb, q, QKD_AUTH_PERSIST_BATCH);
	return state_save(q) ? -EPERM : 0;
}

/* ---- the reserve -------------------------------------------------------- */

/* A committed block's withheld bytes go to the reserve (both ends add the
 * same bytes in the same order). */
int reserve_add(struct qkdd *q, const uint8_t *bytes, size_t len)
{
	int r = auth_reserve_add(q->auth, bytes, len);

	if (r) {
		qlog("adding %zu bytes to the authentication reserve: %s",
		     len, auth_strerror(r));
		return -EPERM;
	}
	update_reserve(q);
	return 0;
}

/*
 * X.509 bootstrap only: retire the bootstrap reserve once the QKD part alone
 * reaches the target, so that no TLS-derived byte remains in use. Both ends
 * call it at the same quiescent point after a commit. (A PSK is as good as
 * QKD key, and its reserve may be restored from a state file: it is kept.)
 */
void maybe_retire(struct qkdd *q)
{
	struct auth_stats as;
	int r;

	if (q->o->psk[0])
		return;
	auth_get_stats(q->auth, &as);
	if (as.bootstrap_left && as.bytes_added >= RETIRE_AFTER &&
	    as.reserve_send + as.reserve_recv >=
	    as.bootstrap_left + q->pp.auth_target) {
		r = auth_retire_bootstrap(q->auth);
		if (!r)
			qlog("bootstrap authentication key retired: tags are keyed from QKD output only from now on");
		else if (r != QKD_AUTH_E_RESERVE)
			qlog("retiring the bootstrap key: %s", auth_strerror(r));
	}
	update_reserve(q);
}
