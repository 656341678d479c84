// SPDX-License-Identifier: GPL-2.0-only
/*
 * Recorded detection files (time-tag format, version 1; the layout is in
 * qkd/timetag.h and Documentation/protocol.md, "Recorded detections"):
 * a forward-only reader in windows of pulse slots, a writer, and the
 * simulator recorded into both ends' files.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/timetag.h"
#include "qkd/le.h"

__attribute__((format(printf, 3, 4)))
static int say(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static const char *end_name(unsigned int end)
{
	return end == QKD_TT_ALICE ? "Alice's file (a record per pulse)" :
	       end == QKD_TT_BOB ? "Bob's file (a record per detection)" :
	       "?";
}

void qkd_tt_header_encode(const struct qkd_tt_header *h,
			  uint8_t out[QKD_TT_HDR_LEN])
{
	memset(out, 0, QKD_TT_HDR_LEN);
	qkd_put_le(out, QKD_TT_MAGIC, 4);
	qkd_put_le(out + 4, QKD_TT_VERSION, 2);
	out[6] = h->end;
	out[7] = h->flags;
	qkd_put_le(out + 8, h->pulses, 8);
	qkd_put_le(out + 16, h->rate_hz, 8);
	qkd_put_le(out + 24, h->records, 8);
	out[32] = h->classes;
}

int qkd_tt_header_decode(const uint8_t *in, size_t len,
			 struct qkd_tt_header *h, char *err, size_t errlen)
{
	unsigned int v;

	memset(h, 0, sizeof(*h));
	if (len < QKD_TT_HDR_LEN)
		return say(err, errlen,
			   "header cut short: %zu of its %u bytes", len,
			   QKD_TT_HDR_LEN);
	if (qkd_get_le(in, 4) != QKD_TT_MAGIC)
		return say(err, errlen,
			   "bad magic %02x%02x%02x%02x: not a time-tag file (QKDT)",
			   in[0], in[1], in[2], in[3]);
	v = (unsigned int)qkd_get_le(in + 4, 2);
	if (v != QKD_TT_VERSION)
		return say(err, errlen,
			   "format version %u: this reader knows version %u",
			   v, QKD_TT_VERSION);
	if (in[6] != QKD_TT_ALICE && in[6] != QKD_TT_BOB)
		return say(err, errlen,
			   "end %u: neither Alice's (1) nor Bob's (2)", in[6]);
	if (in[7])
		return say(err, errlen,
			   "flags 0x%02x: no flag is defined in version %u",
			   in[7], QKD_TT_VERSION);
	for (unsigned int i = 33; i < QKD_TT_HDR_LEN; i++)
		if (in[i])
			return say(err, errlen,
				   "reserved header byte %u is 0x%02x, not zero",
				   i, in[i]);
	h->end = in[6];
	h->flags = in[7];
	h->pulses = qkd_get_le(in + 8, 8);
	h->rate_hz = qkd_get_le(in + 16, 8);
	h->records = qkd_get_le(in + 24, 8);
	h->classes = in[32];
	if (!h->pulses || h->pulses > QKD_TT_PULSES_MAX)
		return say(err, errlen,
			   "%" PRIu64 " pulses: a recording has 1 to 2^48",
			   h->pulses);
	if (!h->classes || h->classes > QKD_MAX_INTENSITIES)
		return say(err, errlen,
			   "%u intensity classes: 1 to %u", h->classes,
			   QKD_MAX_INTENSITIES);
	if (h->end == QKD_TT_ALICE && h->records != h->pulses)
		return say(err, errlen,
			   "Alice's file of %" PRIu64 " pulses declares %" PRIu64 " records: one a pulse slot",
			   h->pulses, h->records);
	if (h->end == QKD_TT_BOB && h->records > h->pulses)
		return say(err, errlen,
			   "Bob's file declares %" PRIu64 " records (detections) for %" PRIu64 " pulses",
			   h->records, h->pulses);
	return 0;
}

/* ---- the reader ---------------------------------------------------------- */

static size_t rec_len(const struct qkd_tt_reader *r)
{
	return r->h.end == QKD_TT_ALICE ? QKD_TT_ALICE_REC_LEN
					: QKD_TT_BOB_REC_LEN;
}

__attribute__((format(printf, 3, 4)))
static int refuse(struct qkd_tt_reader *r, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->err, sizeof(r->err), fmt, ap);
	va_end(ap);
	r->broken = true;
	return ret;
}

/*
 * At least @need (<= the buffer) unread bytes: 0; 1 if the file ends
 * before (what there is stays unread); -EIO.
 */
static int fill(struct qkd_tt_reader *r, size_t need)
{
	if (r->len - r->off >= need)
		return 0;
	if (r->off) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		explicit_bzero(r->buf + r->len, r->off);
		r->off = 0;
	}
	while (r->len < need) {
		ssize_t n = read(r->fd, r->buf + r->len,
				 sizeof(r->buf) - r->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return refuse(r, -EIO, "read: %s", strerror(errno));
		if (!n)
			return 1;
		r->len += (size_t)n;
	}
	return 0;
}

int qkd_tt_open_fd(struct qkd_tt_reader *r, int fd, enum qkd_tt_end end)
{
	struct stat st;
	int ret;

	memset(r, 0, offsetof(struct qkd_tt_reader, buf));
	r->fd = fd;
	ret = fill(r, QKD_TT_HDR_LEN);
	if (ret < 0)
		goto fail;
	ret = qkd_tt_header_decode(r->buf, r->len, &r->h, r->err,
				   sizeof(r->err));
	if (ret)
		goto fail;
	if (r->h.end != end) {
		ret = refuse(r, -EBADMSG, "%s where %s is expected",
			     end_name(r->h.end), end_name(end));
		goto fail;
	}
	r->off = QKD_TT_HDR_LEN;
	/* a regular file's size must be what the header promises */
	if (!fstat(fd, &st) && S_ISREG(st.st_mode)) {
		uint64_t want = QKD_TT_HDR_LEN + r->h.records * rec_len(r);

		if ((uint64_t)st.st_size < want) {
			ret = refuse(r, -EBADMSG,
				     "truncated: %lld bytes, the header's %" PRIu64 " records take %" PRIu64,
				     (long long)st.st_size, r->h.records, want);
			goto fail;
		}
		if ((uint64_t)st.st_size > want) {
			ret = refuse(r, -EBADMSG,
				     "%" PRIu64 " bytes after the last record (%lld bytes, the header's %" PRIu64 " records take %" PRIu64 ")",
				     (uint64_t)st.st_size - want,
				     (long long)st.st_size, r->h.records, want);
			goto fail;
		}
	}
	return 0;
fail:
	r->broken = true;
	close(fd);
	r->fd = -1;
	explicit_bzero(r->buf, sizeof(r->buf));
	return ret;
}

int qkd_tt_open_path(struct qkd_tt_reader *r, const char *path,
		     enum qkd_tt_end end)
{
	struct stat st;
	int fd, e;

	memset(r, 0, offsetof(struct qkd_tt_reader, buf));
	r->fd = -1;
	r->broken = true;
	/* O_NONBLOCK: a FIFO must not block the open (refused below) */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY |
		  O_NONBLOCK);
	if (fd < 0) {
		e = errno;
		if (e == ELOOP)
			snprintf(r->err, sizeof(r->err),
				 "%s: is a symbolic link; give the real file",
				 path);
		else
			snprintf(r->err, sizeof(r->err), "%s: %s", path,
				 strerror(e));
		return -e;
	}
	if (fstat(fd, &st)) {
		e = errno;
		snprintf(r->err, sizeof(r->err), "%s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(r->err, sizeof(r->err), "%s: not a regular file",
			 path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(r->err, sizeof(r->err),
			 "%s: mode %04o lets others read or change the recording (its bits are key material): chmod 600",
			 path, (unsigned int)(st.st_mode & 07777));
		close(fd);
		return -EPERM;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(r->err, sizeof(r->err),
			 "%s: owned by uid %u, not by us (uid %u) or root",
			 path, (unsigned int)st.st_uid,
			 (unsigned int)geteuid());
		close(fd);
		return -EPERM;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)) {
		e = errno;
		snprintf(r->err, sizeof(r->err), "%s: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	e = qkd_tt_open_fd(r, fd, end);
	if (e) {
		char why[QKD_TT_ERR_LEN];

		memcpy(why, r->err, sizeof(why));
		snprintf(r->err, sizeof(r->err), "%.64s: %.130s", path, why);
	}
	return e;
}

void qkd_tt_close(struct qkd_tt_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->broken = true;
	explicit_bzero(r->buf, sizeof(r->buf));
	r->next_slot = 0;
	r->next_flags = 0;
	r->have_next = false;
	r->off = r->len = 0;
}

/* Where a window may start: 0, -EINVAL (before the last), -ERANGE. */
static int window_check(struct qkd_tt_reader *r, uint64_t first, uint64_t n)
{
	if (r->broken)
		return -EBADMSG;
	if (first < r->pos)
		return -EINVAL;
	if (n > r->h.pulses || first > r->h.pulses - n)
		return -ERANGE;
	return 0;
}

/*
 * Alice: check the next @n slots (all there by the header), into @a from
 * its slot @at when @a is not NULL.
 */
static int alice_slots(struct qkd_tt_reader *r, uint64_t n,
		       struct qkd_alice_records *a, size_t at)
{
	unsigned int cmax = r->h.classes;

	while (n) {
		size_t m;
		int ret = fill(r, 1);

		if (ret < 0)
			return ret;
		if (ret)
			return refuse(r, -EBADMSG,
				      "truncated: the file ends at slot %" PRIu64 " of the header's %" PRIu64,
				      r->nrec, r->h.pulses);
		m = r->len - r->off;
		if (m > n)
			m = (size_t)n;
		for (size_t i = 0; i < m; i++) {
			uint8_t b = r->buf[r->off + i];
			unsigned int c = (b >> QKD_TT_A_CLASS_SHIFT) & 3;

			if (b & QKD_TT_A_RESERVED)
				return refuse(r, -EBADMSG,
					      "slot %" PRIu64 ": reserved bits set (0x%02x)",
					      r->nrec + i, b & QKD_TT_A_RESERVED);
			if (c >= cmax)
				return refuse(r, -EBADMSG,
					      "slot %" PRIu64 ": intensity class %u, the header has %u",
					      r->nrec + i, c, cmax);
			if (a) {
				size_t j = at + i;
				uint64_t bit = (uint64_t)1 << (j % 64);

				if (b & QKD_TT_A_BIT)
					a->bit[j / 64] |= bit;
				if (b & QKD_TT_A_BASIS)
					a->basis[j / 64] |= bit;
				a->intensity[j] = (uint8_t)c;
			}
		}
		explicit_bzero(r->buf + r->off, m);
		r->off += m;
		r->nrec += m;
		at += m;
		n -= m;
	}
	return 0;
}

int qkd_tt_alice_window(struct qkd_tt_reader *r, uint64_t first,
			struct qkd_alice_records *a)
{
	int ret;

	if (r->h.end != QKD_TT_ALICE)
		return -EINVAL;
	ret = window_check(r, first, a->n);
	if (ret)
		return ret;
	/* the slots in between: checked, dropped */
	ret = alice_slots(r, first - r->nrec, NULL, 0);
	if (!ret)
		ret = alice_slots(r, a->n, a, 0);
	if (ret)
		return ret;
	r->pos = first + a->n;
	return 0;
}

/*
 * Bob: the next record into r->next_*: 0; 1 when the header's records
 * are all read; -EBADMSG, -EIO.
 */
static int bob_next(struct qkd_tt_reader *r)
{
	uint64_t slot;
	uint8_t f;
	int ret;

	if (r->nrec == r->h.records)
		return 1;
	ret = fill(r, QKD_TT_BOB_REC_LEN);
	if (ret < 0)
		return ret;
	if (ret)
		return refuse(r, -EBADMSG,
			      "truncated: %s at record %" PRIu64 " of the header's %" PRIu64,
			      r->len > r->off ? "the file ends within a record" :
						"the file ends",
			      r->nrec, r->h.records);
	slot = qkd_get_le(r->buf + r->off, 8);
	f = r->buf[r->off + 8];
	explicit_bzero(r->buf + r->off, QKD_TT_BOB_REC_LEN);
	r->off += QKD_TT_BOB_REC_LEN;
	if (slot >= r->h.pulses)
		return refuse(r, -EBADMSG,
			      "record %" PRIu64 ": slot %" PRIu64 " beyond the %" PRIu64 " pulses of the header",
			      r->nrec, slot, r->h.pulses);
	if (r->nrec && slot <= r->last)
		return refuse(r, -EBADMSG,
			      "record %" PRIu64 ": slot %" PRIu64 " not after the previous record's %" PRIu64 " (slots strictly increase)",
			      r->nrec, slot, r->last);
	if (f & QKD_TT_B_RESERVED)
		return refuse(r, -EBADMSG,
			      "record %" PRIu64 ": reserved bits set (0x%02x)",
			      r->nrec, f & QKD_TT_B_RESERVED);
	if ((f & QKD_TT_B_DOUBLE) && (f & QKD_TT_B_BIT))
		return refuse(r, -EBADMSG,
			      "record %" PRIu64 ": a double click with a bit (the bit of a double click is qkdd's to draw)",
			      r->nrec);
	r->last = slot;
	r->nrec++;
	r->next_slot = slot;
	r->next_flags = f;
	r->have_next = true;
	return 0;
}

/* Append @e to @d; a grown array is copied and the old one wiped. */
static int det_push(struct qkd_detections *d, const struct qkd_detection *e)
{
	if (d->count == d->cap &&
	    qkd_detections_reserve(d, d->cap ? 2 * d->cap : 4096))
		return -ENOMEM;
	d->ev[d->count++] = *e;
	return 0;
}

int qkd_tt_bob_window(struct qkd_tt_reader *r, uint64_t first, uint64_t n,
		      struct qkd_detections *d)
{
	size_t count0 = d->count;
	int ret;

	if (r->h.end != QKD_TT_BOB)
		return -EINVAL;
	ret = window_check(r, first, n);
	if (ret)
		return ret;
	for (;;) {
		struct qkd_detection e = { 0 };

		if (!r->have_next) {
			ret = bob_next(r);
			if (ret < 0)
				goto fail;
			if (ret)
				break;
		}
		if (r->next_slot >= first + n)
			break;	/* the next window's */
		r->have_next = false;
		if (r->next_slot < first)
			continue;	/* between the windows: dropped */
		e.pulse = r->next_slot - first;
		e.clicks = r->next_flags & QKD_TT_B_DOUBLE ? 3 :
			   r->next_flags & QKD_TT_B_BIT ? 2 : 1;
		e.basis = (r->next_flags & QKD_TT_B_BASIS) ? 1 : 0;
		ret = det_push(d, &e);
		explicit_bzero(&e, sizeof(e));
		if (ret)
			goto fail;
	}
	r->pos = first + n;
	return 0;
fail:
	/* nothing appended (nothing allocated yet: d->ev may be NULL) */
	if (d->count > count0)
		explicit_bzero(d->ev + count0,
			       (d->count - count0) * sizeof(*d->ev));
	d->count = count0;
	return ret;
}

int qkd_tt_skip(struct qkd_tt_reader *r, uint64_t upto)
{
	int ret = window_check(r, upto, 0);

	if (!ret)
		r->pos = upto;
	return ret;
}

int qkd_tt_finish(struct qkd_tt_reader *r)
{
	int ret;

	if (r->broken)
		return -EBADMSG;
	if (r->h.end == QKD_TT_ALICE) {
		ret = alice_slots(r, r->h.pulses - r->nrec, NULL, 0);
	} else {
		while ((ret = bob_next(r)) == 0)
			r->have_next = false;
		ret = ret < 0 ? ret : 0;
	}
	if (ret)
		return ret;
	ret = fill(r, 1);
	if (ret < 0)
		return ret;
	if (!ret)
		return refuse(r, -EBADMSG,
			      "bytes after the last record (the header's %" PRIu64 ")",
			      r->h.records);
	r->pos = r->h.pulses;
	return 0;
}

/* ---- the writer ---------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int wfail(struct qkd_tt_writer *w, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
	w->broken = true;
	return ret;
}

static int wflush(struct qkd_tt_writer *w)
{
	size_t off = 0;

	while (off < w->len) {
		ssize_t n = write(w->fd, w->buf + off, w->len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			explicit_bzero(w->buf, w->len);
			w->len = 0;
			return wfail(w, -EIO, "write: %s",
				     n < 0 ? strerror(errno) : "nothing written");
		}
		off += (size_t)n;
	}
	explicit_bzero(w->buf, w->len);
	w->len = 0;
	return 0;
}

static int wput(struct qkd_tt_writer *w, const uint8_t *p, size_t n)
{
	if (w->len + n > sizeof(w->buf) && wflush(w))
		return -EIO;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

int qkd_tt_writer_open(struct qkd_tt_writer *w, int fd, enum qkd_tt_end end,
		       unsigned int classes, uint64_t rate_hz)
{
	struct stat st;
	uint8_t hdr[QKD_TT_HDR_LEN];

	memset(w, 0, offsetof(struct qkd_tt_writer, buf));
	w->fd = fd;
	if (fd < 0)
		return wfail(w, -EINVAL, "no file");
	if ((end != QKD_TT_ALICE && end != QKD_TT_BOB) || !classes ||
	    classes > QKD_MAX_INTENSITIES) {
		qkd_tt_writer_abort(w);
		return wfail(w, -EINVAL, "bad end or class count");
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		qkd_tt_writer_abort(w);
		return wfail(w, -EINVAL,
			     "not a regular file (the header is written last)");
	}
	w->h.end = (uint8_t)end;
	w->h.classes = (uint8_t)classes;
	w->h.rate_hz = rate_hz;
	/* a placeholder: no pulses, which no reader accepts */
	qkd_tt_header_encode(&w->h, hdr);
	return wput(w, hdr, sizeof(hdr));
}

int qkd_tt_write_alice(struct qkd_tt_writer *w,
		       const struct qkd_alice_records *a)
{
	if (w->broken || w->h.end != QKD_TT_ALICE)
		return -EINVAL;
	for (size_t i = 0; i < a->n; i++) {
		uint8_t b;

		if (a->intensity[i] >= w->h.classes)
			return wfail(w, -EINVAL,
				     "slot %" PRIu64 ": class %u of %u",
				     w->slots + i, a->intensity[i],
				     w->h.classes);
		b = (uint8_t)(qkd_bit_get(a->bit, i) |
			      qkd_bit_get(a->basis, i) << 1 |
			      a->intensity[i] << QKD_TT_A_CLASS_SHIFT);
		if (wput(w, &b, 1))
			return -EIO;
	}
	w->slots += a->n;
	w->h.records += a->n;
	return 0;
}

int qkd_tt_write_bob(struct qkd_tt_writer *w, uint64_t base,
		     const struct qkd_detections *d)
{
	if (w->broken || w->h.end != QKD_TT_BOB)
		return -EINVAL;
	for (size_t i = 0; i < d->count; i++) {
		const struct qkd_detection *e = &d->ev[i];
		uint64_t slot = base + e->pulse;
		uint8_t rec[QKD_TT_BOB_REC_LEN];

		if (slot < base || (w->any && slot <= w->last) ||
		    !e->clicks || e->clicks > 3 || e->basis > 1)
			return wfail(w, -EINVAL,
				     "detection %zu: slot out of order or no click",
				     i);
		qkd_put_le(rec, slot, 8);
		rec[8] = (uint8_t)((e->clicks == 3 ? QKD_TT_B_DOUBLE :
				    e->clicks == 2 ? QKD_TT_B_BIT : 0) |
				   (e->basis ? QKD_TT_B_BASIS : 0));
		w->any = true;
		w->last = slot;
		w->h.records++;
		if (wput(w, rec, sizeof(rec)))
			return -EIO;
		explicit_bzero(rec, sizeof(rec));
	}
	return 0;
}

void qkd_tt_writer_abort(struct qkd_tt_writer *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->broken = true;
	explicit_bzero(w->buf, sizeof(w->buf));
	w->len = 0;
}

int qkd_tt_writer_close(struct qkd_tt_writer *w, uint64_t pulses)
{
	uint8_t hdr[QKD_TT_HDR_LEN];
	int ret = 0;

	if (w->broken)
		ret = -EINVAL;
	else if (w->h.end == QKD_TT_ALICE && pulses != w->slots)
		ret = wfail(w, -EINVAL,
			    "%" PRIu64 " pulses declared, %" PRIu64 " written",
			    pulses, w->slots);
	else if (w->h.end == QKD_TT_BOB && w->any && w->last >= pulses)
		ret = wfail(w, -EINVAL,
			    "a detection at slot %" PRIu64 " of %" PRIu64 " pulses",
			    w->last, pulses);
	else if (!pulses || pulses > QKD_TT_PULSES_MAX)
		ret = wfail(w, -EINVAL, "%" PRIu64 " pulses", pulses);
	if (!ret)
		ret = wflush(w);
	if (!ret) {
		w->h.pulses = pulses;
		qkd_tt_header_encode(&w->h, hdr);
		if (pwrite(w->fd, hdr, sizeof(hdr), 0) != sizeof(hdr))
			ret = wfail(w, -EIO, "header: %s", strerror(errno));
	}
	if (!ret && close(w->fd))
		ret = wfail(w, -EIO, "close: %s", strerror(errno));
	else if (ret)
		close(w->fd);
	w->fd = -1;
	w->broken = true;
	explicit_bzero(w->buf, sizeof(w->buf));
	w->len = 0;
	return ret;
}

/* ---- the simulator, recorded ------------------------------------------- */

#define SIM_CHUNK	(1u << 20)

int qkd_tt_record_sim(const struct qkd_channel_params *p, uint64_t seed,
		      uint64_t pulses, uint64_t rate_hz, int afd, int bfd,
		      struct qkd_channel_stats *st, char *err, size_t errlen)
{
	struct qkd_tt_writer *wa = calloc(1, sizeof(*wa));
	struct qkd_tt_writer *wb = calloc(1, sizeof(*wb));
	struct qkd_rng *rng = calloc(1, sizeof(*rng));
	struct qkd_channel_stats sum = { 0 };
	struct qkd_alice_records a = { 0 };
	const char *why = NULL;
	int ret;

	if (!wa || !wb || !rng) {
		ret = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out_fds;
	}
	if (qkd_channel_params_check(p, &why)) {
		ret = -EINVAL;
		snprintf(err, errlen, "channel: %s", why ? why : "invalid");
		goto out_fds;
	}
	if (!pulses || pulses > QKD_TT_PULSES_MAX) {
		ret = -EINVAL;
		snprintf(err, errlen, "%" PRIu64 " pulses: 1 to 2^48", pulses);
		goto out_fds;
	}
	ret = qkd_tt_writer_open(wa, afd, QKD_TT_ALICE, p->n_intensities,
				 rate_hz);
	afd = -1;
	if (ret) {
		snprintf(err, errlen, "Alice's file: %s", wa->err);
		goto out_fds;
	}
	ret = qkd_tt_writer_open(wb, bfd, QKD_TT_BOB, p->n_intensities,
				 rate_hz);
	bfd = -1;
	if (ret) {
		snprintf(err, errlen, "Bob's file: %s", wb->err);
		qkd_tt_writer_abort(wa);
		goto out_fds;
	}
	qkd_rng_seed(rng, seed);
	for (uint64_t base = 0; base < pulses; base += SIM_CHUNK) {
		uint64_t n = pulses - base < SIM_CHUNK ? pulses - base : SIM_CHUNK;
		struct qkd_detections d = { 0 };
		struct qkd_channel_stats cs;

		ret = qkd_alice_records_alloc(&a, (size_t)n);
		if (ret)
			break;
		qkd_alice_prepare(p, rng, &a);
		ret = qkd_channel_transmit(p, rng, &a, &d, &cs);
		if (!ret)
			ret = qkd_tt_write_alice(wa, &a);
		if (!ret)
			ret = qkd_tt_write_bob(wb, base, &d);
		qkd_detections_free(&d);
		qkd_alice_records_free(&a);
		if (ret)
			break;
		sum.pulses += cs.pulses;
		sum.detections += cs.detections;
		sum.double_clicks += cs.double_clicks;
		sum.dark_only += cs.dark_only;
		sum.eve_intercepted += cs.eve_intercepted;
		sum.eve_knows += cs.eve_knows;
		memcpy(sum.click_prob, cs.click_prob, sizeof(sum.click_prob));
	}
	if (ret) {
		snprintf(err, errlen, "recording: %s",
			 wa->err[0] ? wa->err : wb->err[0] ? wb->err :
			 strerror(-ret));
		qkd_tt_writer_abort(wa);
		qkd_tt_writer_abort(wb);
		goto out;
	}
	ret = qkd_tt_writer_close(wa, pulses);
	if (ret) {
		snprintf(err, errlen, "Alice's file: %s", wa->err);
		qkd_tt_writer_abort(wb);
		goto out;
	}
	ret = qkd_tt_writer_close(wb, pulses);
	if (ret) {
		snprintf(err, errlen, "Bob's file: %s", wb->err);
		goto out;
	}
	if (st)
		*st = sum;
	goto out;
out_fds:
	if (afd >= 0)
		close(afd);
	if (bfd >= 0)
		close(bfd);
out:
	if (rng)
		explicit_bzero(rng, sizeof(*rng));
	free(wa);
	free(wb);
	free(rng);
	return ret;
}
