// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the recorded detection files of qkdd --replay
 * (userspace/protocol/timetag.c). The first input byte chooses the end
 * (bit 0: Bob), the source (bit 1: a pipe, a stream of unknown size;
 * else a memfd, a regular file whose size is checked at open) and where
 * the first window ends (the rest of the byte, as a share of the
 * pulses); the rest is the file. Checks, besides memory safety:
 *  - a refusal is -EBADMSG (or -EIO) with a reason, and a Bob window
 *    refused appends nothing;
 *  - what is accepted is in range: Alice's classes below the header's
 *    count, Bob's detections inside their window, strictly increasing,
 *    clicks 1..3, basis 0..1;
 *  - a file accepted whole (two windows that cover it, then
 *    qkd_tt_finish()) written back by the writer is the same bytes.
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "qkd/timetag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)
/* Alice's windows are allocated per pulse: only small recordings */
#define ALICE_MAX	65536

static int source(const uint8_t *data, size_t size, bool stream)
{
	int fd, p[2];

	if (stream) {
		if (pipe(p))
			return -1;
		if (size && write(p[1], data, size) != (ssize_t)size) {
			close(p[0]);
			close(p[1]);
			return -1;
		}
		close(p[1]);
		return p[0];
	}
	fd = memfd_create("timetag", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return -1;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* The accepted file written back: the same bytes. */
static void write_back(const struct qkd_tt_header *h,
		       const struct qkd_alice_records *a,
		       const struct qkd_detections *d, const uint8_t *data,
		       size_t size)
{
	struct qkd_tt_writer *w = calloc(1, sizeof(*w));
	int fd = memfd_create("back", MFD_CLOEXEC);
	uint8_t *back = malloc(size ? size : 1);
	ssize_t n;

	CHECK(w && back && fd >= 0);
	CHECK(qkd_tt_writer_open(w, dup(fd), h->end, h->classes,
				 h->rate_hz) == 0);
	if (h->end == QKD_TT_ALICE)
		CHECK(qkd_tt_write_alice(w, a) == 0);
	else
		CHECK(qkd_tt_write_bob(w, 0, d) == 0);
	CHECK(qkd_tt_writer_close(w, h->pulses) == 0);
	n = pread(fd, back, size, 0);
	CHECK(n == (ssize_t)size && !memcmp(back, data, size));
	CHECK(pread(fd, back, 1, (off_t)size) == 0);
	close(fd);
	free(back);
	free(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_tt_reader *r;
	struct qkd_alice_records a = { 0 };
	struct qkd_detections d = { 0 };
	enum qkd_tt_end end;
	uint64_t cut;
	bool stream, whole = true;
	uint8_t ctl;
	int fd, ret;

	if (size < 1)
		return 0;
	ctl = data[0];
	data++;
	size--;
	end = ctl & 1 ? QKD_TT_BOB : QKD_TT_ALICE;
	stream = ctl & 2;
	fd = source(data, size, stream);
	if (fd < 0)
		return 0;
	r = calloc(1, sizeof(*r));
	CHECK(r);
	ret = qkd_tt_open_fd(r, fd, end);
	if (ret) {
		CHECK((ret == -EBADMSG || ret == -EIO) && r->err[0]);
		goto out;
	}
	CHECK(r->h.end == end && r->h.pulses && r->h.classes >= 1 &&
	      r->h.classes <= QKD_MAX_INTENSITIES);
	cut = r->h.pulses / 64 * (ctl >> 2);
	if (end == QKD_TT_ALICE && r->h.pulses <= ALICE_MAX) {
		struct qkd_alice_records w2;
		size_t n1 = (size_t)cut, n2 = (size_t)(r->h.pulses - cut);

		CHECK(qkd_alice_records_alloc(&a, (size_t)r->h.pulses) == 0);
		CHECK(qkd_alice_records_alloc(&w2, n1) == 0);
		ret = qkd_tt_alice_window(r, 0, &w2);
		if (!ret) {
			for (size_t i = 0; i < n1; i++) {
				CHECK(w2.intensity[i] < r->h.classes);
				qkd_bit_set(a.bit, i, qkd_bit_get(w2.bit, i));
				qkd_bit_set(a.basis, i, qkd_bit_get(w2.basis, i));
				a.intensity[i] = w2.intensity[i];
			}
		}
		qkd_alice_records_free(&w2);
		if (!ret) {
			CHECK(qkd_alice_records_alloc(&w2, n2) == 0);
			ret = qkd_tt_alice_window(r, cut, &w2);
			for (size_t i = 0; !ret && i < n2; i++) {
				CHECK(w2.intensity[i] < r->h.classes);
				qkd_bit_set(a.bit, n1 + i, qkd_bit_get(w2.bit, i));
				qkd_bit_set(a.basis, n1 + i,
					    qkd_bit_get(w2.basis, i));
				a.intensity[n1 + i] = w2.intensity[i];
			}
			qkd_alice_records_free(&w2);
		}
	} else if (end == QKD_TT_BOB) {
		struct qkd_detections d2 = { 0 };

		ret = qkd_tt_bob_window(r, 0, cut, &d);
		if (!ret)
			ret = qkd_tt_bob_window(r, cut, r->h.pulses - cut, &d2);
		if (ret)
			CHECK(d2.count == 0);
		for (size_t i = 0; !ret && i < d.count; i++)
			CHECK(d.ev[i].pulse < cut &&
			      (!i || d.ev[i].pulse > d.ev[i - 1].pulse));
		for (size_t i = 0; !ret && i < d2.count; i++) {
			struct qkd_detection e = d2.ev[i];

			CHECK(e.pulse < r->h.pulses - cut &&
			      (!i || e.pulse > d2.ev[i - 1].pulse));
			e.pulse += cut;
			/* the whole file's detections, in d */
			if (d.count == d.cap)
				CHECK(!qkd_detections_reserve(&d,
						d.cap ? 2 * d.cap : 64));
			d.ev[d.count++] = e;
		}
		for (size_t i = 0; !ret && i < d.count; i++)
			CHECK(d.ev[i].clicks >= 1 && d.ev[i].clicks <= 3 &&
			      d.ev[i].basis <= 1);
		qkd_detections_free(&d2);
	} else {
		whole = false;
	}
	if (ret) {
		CHECK((ret == -EBADMSG || ret == -EIO) && r->err[0]);
		goto out;
	}
	ret = qkd_tt_finish(r);
	if (ret) {
		CHECK((ret == -EBADMSG || ret == -EIO) && r->err[0]);
		goto out;
	}
	if (whole)
		write_back(&r->h, &a, &d, data, size);
out:
	qkd_tt_close(r);
	free(r);
	qkd_alice_records_free(&a);
	qkd_detections_free(&d);
	return 0;
}
