/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Recorded detection files (time-tag format, version 1): what a real
 * link's two ends log, replayed by qkdd --replay instead of the simulated
 * quantum channel (Documentation/protocol.md, "Recorded detections").
 *
 * Every file: a 64-byte header, then records, little endian.
 *
 *   off size
 *     0   4  magic "QKDT"
 *     4   2  version, 1
 *     6   1  end: 1 Alice (a record per pulse slot), 2 Bob (a record per
 *            detection)
 *     7   1  flags: 0 (none is defined in version 1)
 *     8   8  pulses: the pulse slots of the recording, 1 .. 2^48
 *    16   8  pulse rate in Hz (information only; 0: not known)
 *    24   8  records: Alice: = pulses; Bob: the detections, <= pulses
 *    32   1  intensity classes of the source, 1 .. 3
 *    33  31  reserved, zero
 *
 * Alice's record, one byte per pulse slot in slot order (the slot is the
 * record's index): bit 0 her bit, bit 1 her basis (0 Z, 1 X), bits 2-3 the
 * intensity class (below the header's count), bits 4-7 zero.
 *
 * Bob's record, 9 bytes per detection: u64 the pulse slot (the time tag
 * converted to the slot of the pulse; strictly increasing, below the
 * header's pulses), then one byte: bit 0 the bit (the detector that
 * clicked), bit 1 his basis, bit 2 a double click (both detectors; bit 0
 * then zero: qkdd squashes it to a random bit), bits 3-7 zero.
 *
 * Both files are secret (Alice's bits and bases, Bob's raw key): the
 * reader opens them as qkdd opens its PSK, and every buffer that held a
 * record is wiped (explicit_bzero) before it is freed.
 */
#ifndef QKD_TIMETAG_H
#define QKD_TIMETAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/channel.h"

#define QKD_TT_MAGIC		0x54444b51u	/* "QKDT" little endian */
#define QKD_TT_VERSION		1
#define QKD_TT_HDR_LEN		64
#define QKD_TT_ALICE_REC_LEN	1
#define QKD_TT_BOB_REC_LEN	9
#define QKD_TT_PULSES_MAX	(1ull << 48)
#define QKD_TT_ERR_LEN		200
#define QKD_TT_BUF_LEN		(64 * 1024)

enum qkd_tt_end {
	QKD_TT_ALICE = 1,
	QKD_TT_BOB = 2,
};

/* Alice's record byte */
#define QKD_TT_A_BIT		0x01
#define QKD_TT_A_BASIS		0x02
#define QKD_TT_A_CLASS_SHIFT	2
#define QKD_TT_A_RESERVED	0xf0
/* Bob's record flags byte */
#define QKD_TT_B_BIT		0x01
#define QKD_TT_B_BASIS		0x02
#define QKD_TT_B_DOUBLE		0x04
#define QKD_TT_B_RESERVED	0xf8

struct qkd_tt_header {
	uint8_t end;		/* enum qkd_tt_end */
	uint8_t flags;		/* 0 */
	uint8_t classes;	/* 1 .. QKD_MAX_INTENSITIES */
	uint64_t pulses;
	uint64_t rate_hz;
	uint64_t records;
};

/* The 64 header bytes of @h. */
void qkd_tt_header_encode(const struct qkd_tt_header *h,
			  uint8_t out[QKD_TT_HDR_LEN]);
/*
 * A header from @len bytes: 0, or -EBADMSG with the reason in @err (bad
 * magic, another version, an unknown end, flags, a reserved byte not
 * zero, no pulses or more than QKD_TT_PULSES_MAX, a class count out of
 * 1..3, Alice's records not her pulses, Bob's more than the pulses).
 */
int qkd_tt_header_decode(const uint8_t *in, size_t len,
			 struct qkd_tt_header *h, char *err, size_t errlen);

/*
 * A file read in windows of pulse slots, forward only: each window starts
 * at or after the end of the previous one (the slots between are read,
 * checked and dropped). Refusals are -EBADMSG with the reason (and the
 * record's number) in r->err; the reader is then unusable.
 */
struct qkd_tt_reader {
	int fd;
	struct qkd_tt_header h;
	uint64_t pos;		/* the next slot a window may start at */
	uint64_t nrec;		/* records read */
	uint64_t last;		/* Bob: slot of the last record read */
	bool have_next;		/* Bob: a record read ahead of the window */
	bool broken;		/* a refusal or a read error: no more */
	uint64_t next_slot;
	uint8_t next_flags;
	size_t off, len;	/* unread bytes: buf[off, len) */
	char err[QKD_TT_ERR_LEN];
	uint8_t buf[QKD_TT_BUF_LEN];
};

/*
 * A reader on @fd (taken over: qkd_tt_close() closes it) for a file of
 * @end: the header is read and checked, and for a regular file its size
 * against the records the header promises. 0; -EBADMSG, -EIO with the
 * reason in r->err (fd closed).
 */
int qkd_tt_open_fd(struct qkd_tt_reader *r, int fd, enum qkd_tt_end end);
/*
 * The same for a path, opened with the care of a secret: O_NOFOLLOW (no
 * symbolic link), a regular file, owned by us or root, that no group or
 * other user may read or write. -errno (-ELOOP, -EPERM, -ENOENT, ...) or
 * -EBADMSG with the reason in r->err.
 */
int qkd_tt_open_path(struct qkd_tt_reader *r, const char *path,
		     enum qkd_tt_end end);
/* Wipe the buffers and the read-ahead record, close the file. */
void qkd_tt_close(struct qkd_tt_reader *r);

/*
 * Alice: the slots [@first, @first + a->n) into @a (allocated for a->n
 * pulses, qkd_alice_records_alloc()). 0; -EINVAL if @first is before the
 * end of the last window; -ERANGE if the window goes past the recording
 * (nothing read); -EBADMSG, -EIO with r->err.
 */
int qkd_tt_alice_window(struct qkd_tt_reader *r, uint64_t first,
			struct qkd_alice_records *a);
/*
 * Bob: the detections of slots [@first, @first + @n), appended to @d
 * with pulse indices relative to @first, in order (clicks 1 or 2 for a
 * single click of detector 0 or 1, 3 for a double click). 0; -EINVAL,
 * -ERANGE, -EBADMSG, -EIO as qkd_tt_alice_window(); -ENOMEM.
 */
int qkd_tt_bob_window(struct qkd_tt_reader *r, uint64_t first, uint64_t n,
		      struct qkd_detections *d);
/*
 * The next window starts at @upto or later (the slots before it are
 * dropped, checked, when the next window is read): a recording resumed
 * where an earlier run left it. 0; -EINVAL, -ERANGE as the windows.
 */
int qkd_tt_skip(struct qkd_tt_reader *r, uint64_t upto);
/*
 * Read and check the rest of the file: every record, and nothing after
 * the last. 0, -EBADMSG or -EIO with r->err.
 */
int qkd_tt_finish(struct qkd_tt_reader *r);

/*
 * A writer: the header (counts filled in at qkd_tt_writer_close()), then
 * records appended in slot order. @fd must be a regular file (the header
 * is rewritten at the end); it is taken over.
 */
struct qkd_tt_writer {
	int fd;
	struct qkd_tt_header h;
	uint64_t slots;		/* Alice: slots written; Bob: the base of
				 * the next qkd_tt_write_bob() at least */
	uint64_t last;		/* Bob: slot of the last record */
	bool any, broken;
	size_t len;
	char err[QKD_TT_ERR_LEN];
	uint8_t buf[QKD_TT_BUF_LEN];
};

int qkd_tt_writer_open(struct qkd_tt_writer *w, int fd, enum qkd_tt_end end,
		       unsigned int classes, uint64_t rate_hz);
/* Alice: the a->n pulses of @a as the next slots. 0, -EINVAL, -EIO. */
int qkd_tt_write_alice(struct qkd_tt_writer *w,
		       const struct qkd_alice_records *a);
/*
 * Bob: the detections of @d, their pulse indices plus @base (strictly
 * increasing across calls). 0, -EINVAL (out of order, no click), -EIO.
 */
int qkd_tt_write_bob(struct qkd_tt_writer *w, uint64_t base,
		     const struct qkd_detections *d);
/*
 * Flush, write the header with @pulses slots (Alice: the slots written),
 * wipe the buffer and close the file. 0, -EINVAL, -EIO (w->err).
 */
int qkd_tt_writer_close(struct qkd_tt_writer *w, uint64_t pulses);
/* Give up: wipe and close, the file left as it is. */
void qkd_tt_writer_abort(struct qkd_tt_writer *w);

/*
 * Record the simulator (qkd_alice_prepare() and qkd_channel_transmit(),
 * seeded with @seed: reproducible) for @pulses pulse slots, in chunks of
 * 2^20, into Alice's file @afd and Bob's @bfd (both taken over). @st (may
 * be NULL) gets the totals of the optics. 0, -EINVAL, -ENOMEM or -EIO
 * with the reason in @err.
 */
int qkd_tt_record_sim(const struct qkd_channel_params *p, uint64_t seed,
		      uint64_t pulses, uint64_t rate_hz, int afd, int bfd,
		      struct qkd_channel_stats *st, char *err, size_t errlen);

#endif /* QKD_TIMETAG_H */
