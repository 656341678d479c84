// SPDX-License-Identifier: GPL-2.0-only
/*
 * The recorded-detection (time-tag) files of qkdd --replay
 * (userspace/protocol/timetag.c): every malformed header and record is
 * refused with its reason, the secret files are opened like the PSK, and
 * what the writer (and the simulator's recorder) writes reads back the
 * same, window by window.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "qkd/channel.h"
#include "qkd/timetag.h"
#include "qkd/le.h"

static char g_tmp[64];

static void tmp_dir(void)
{
	snprintf(g_tmp, sizeof(g_tmp), "/tmp/test_timetag.XXXXXX");
	if (!mkdtemp(g_tmp))
		abort();
}

static void tmp_rm(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", g_tmp);
	if (system(cmd))
		abort();
}

/* A file image: a header and room for records. */
struct img {
	uint8_t b[4096];
	size_t len;
};

static void img_header(struct img *m, uint8_t end, uint64_t pulses,
		       uint64_t records, uint8_t classes)
{
	struct qkd_tt_header h = {
		.end = end, .pulses = pulses, .records = records,
		.classes = classes, .rate_hz = 1000000000,
	};

	memset(m, 0, sizeof(*m));
	qkd_tt_header_encode(&h, m->b);
	m->len = QKD_TT_HDR_LEN;
}

static void img_alice(struct img *m, uint8_t rec)
{
	m->b[m->len++] = rec;
}

static void img_bob(struct img *m, uint64_t slot, uint8_t flags)
{
	qkd_put_le(m->b + m->len, slot, 8);
	m->b[m->len + 8] = flags;
	m->len += 9;
}

/* @m as a file (mode 0600) in the test's directory: its path. */
static const char *img_file(const struct img *m, const char *name)
{
	static char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", g_tmp, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, m->b, m->len) != (ssize_t)m->len)
		abort();
	close(fd);
	return path;
}

/* @m through a pipe: a stream whose size nobody knows in advance. */
static int img_pipe(const struct img *m)
{
	int p[2];

	if (pipe(p) || write(p[1], m->b, m->len) != (ssize_t)m->len)
		abort();
	close(p[1]);
	return p[0];
}

/*
 * Open @m (as a file, and as a stream) for @end and read it all: the
 * first refusal's code and reason.
 */
static int read_all(const struct img *m, enum qkd_tt_end end, bool stream,
		    char *why, size_t len)
{
	struct qkd_tt_reader *r = calloc(1, sizeof(*r));
	int ret;

	if (!r)
		abort();
	if (stream)
		ret = qkd_tt_open_fd(r, img_pipe(m), end);
	else
		ret = qkd_tt_open_path(r, img_file(m, "f"), end);
	if (!ret)
		ret = qkd_tt_finish(r);
	snprintf(why, len, "%s", r->err);
	qkd_tt_close(r);
	free(r);
	return ret;
}

/* Refused with -EBADMSG and @reason in the message, both ways. */
#define REFUSED(m, end, reason)						\
	do {								\
		char _w[QKD_TT_ERR_LEN];				\
		for (int _s = 0; _s < 2; _s++) {			\
			EXPECT_EQ(-EBADMSG, read_all(m, end, _s, _w,	\
						     sizeof(_w)));	\
			EXPECT_NE(NULL, strstr(_w, reason)) {		\
				TH_LOG("%s: \"%s\", want \"%s\"",	\
				       _s ? "stream" : "file", _w,	\
				       reason);				\
			}						\
		}							\
	} while (0)

#define ACCEPTED(m, end)						\
	do {								\
		char _w[QKD_TT_ERR_LEN];				\
		for (int _s = 0; _s < 2; _s++) {			\
			EXPECT_EQ(0, read_all(m, end, _s, _w,		\
					      sizeof(_w))) {		\
				TH_LOG("%s", _w);			\
			}						\
		}							\
	} while (0)

TEST(well_formed_files_are_accepted)
{
	struct img m;

	tmp_dir();
	img_header(&m, QKD_TT_ALICE, 4, 4, 3);
	img_alice(&m, 0x00);
	img_alice(&m, 0x03);
	img_alice(&m, 0x04 | 0x01);
	img_alice(&m, 0x08 | 0x02);
	ACCEPTED(&m, QKD_TT_ALICE);
	img_header(&m, QKD_TT_BOB, 100, 3, 3);
	img_bob(&m, 0, 0);
	img_bob(&m, 7, QKD_TT_B_BIT | QKD_TT_B_BASIS);
	img_bob(&m, 99, QKD_TT_B_DOUBLE);
	ACCEPTED(&m, QKD_TT_BOB);
	/* a link that detected nothing */
	img_header(&m, QKD_TT_BOB, 100, 0, 1);
	ACCEPTED(&m, QKD_TT_BOB);
	tmp_rm();
}

TEST(malformed_headers_are_refused)
{
	struct img m;

	tmp_dir();
	img_header(&m, QKD_TT_BOB, 10, 0, 1);
	m.b[0] = 'X';
	REFUSED(&m, QKD_TT_BOB, "magic");
	img_header(&m, QKD_TT_BOB, 10, 0, 1);
	m.b[4] = 2;
	REFUSED(&m, QKD_TT_BOB, "version 2");
	img_header(&m, QKD_TT_BOB, 10, 0, 1);
	m.b[5] = 1;
	REFUSED(&m, QKD_TT_BOB, "version 257");
	/* the other end's file */
	img_header(&m, QKD_TT_ALICE, 1, 1, 1);
	img_alice(&m, 0);
	REFUSED(&m, QKD_TT_BOB, "Alice's file");
	img_header(&m, QKD_TT_BOB, 10, 0, 1);
	REFUSED(&m, QKD_TT_ALICE, "Bob's file");
	img_header(&m, 3, 10, 0, 1);
	REFUSED(&m, QKD_TT_BOB, "end 3");
	img_header(&m, QKD_TT_BOB, 10, 0, 1);
	m.b[7] = 0x80;
	REFUSED(&m, QKD_TT_BOB, "flags 0x80");
	for (int i = 33; i < QKD_TT_HDR_LEN; i++) {
		img_header(&m, QKD_TT_BOB, 10, 0, 1);
		m.b[i] = 1;
		REFUSED(&m, QKD_TT_BOB, "reserved");
	}
	img_header(&m, QKD_TT_BOB, 0, 0, 1);
	REFUSED(&m, QKD_TT_BOB, "pulses");
	img_header(&m, QKD_TT_BOB, QKD_TT_PULSES_MAX + 1, 0, 1);
	REFUSED(&m, QKD_TT_BOB, "pulses");
	img_header(&m, QKD_TT_BOB, 10, 0, 0);
	REFUSED(&m, QKD_TT_BOB, "intensity classes");
	img_header(&m, QKD_TT_BOB, 10, 0, 4);
	REFUSED(&m, QKD_TT_BOB, "intensity classes");
	img_header(&m, QKD_TT_ALICE, 2, 1, 1);
	img_alice(&m, 0);
	REFUSED(&m, QKD_TT_ALICE, "records");
	img_header(&m, QKD_TT_BOB, 2, 3, 1);
	img_bob(&m, 0, 0);
	img_bob(&m, 1, 0);
	img_bob(&m, 2, 0);
	REFUSED(&m, QKD_TT_BOB, "records");
	/* a header cut short */
	img_header(&m, QKD_TT_BOB, 10, 0, 1);
	m.len = 40;
	REFUSED(&m, QKD_TT_BOB, "header");
	m.len = 0;
	REFUSED(&m, QKD_TT_BOB, "header");
	tmp_rm();
}

TEST(malformed_alice_records_are_refused)
{
	struct img m;

	tmp_dir();
	img_header(&m, QKD_TT_ALICE, 3, 3, 2);
	img_alice(&m, 0);
	img_alice(&m, 0x10);
	img_alice(&m, 0);
	REFUSED(&m, QKD_TT_ALICE, "slot 1: reserved bits");
	img_header(&m, QKD_TT_ALICE, 3, 3, 2);
	img_alice(&m, 0);
	img_alice(&m, 0);
	img_alice(&m, 2 << QKD_TT_A_CLASS_SHIFT);
	REFUSED(&m, QKD_TT_ALICE, "slot 2: intensity class 2");
	img_header(&m, QKD_TT_ALICE, 3, 3, 3);
	img_alice(&m, 3 << QKD_TT_A_CLASS_SHIFT);
	img_alice(&m, 0);
	img_alice(&m, 0);
	REFUSED(&m, QKD_TT_ALICE, "slot 0: intensity class 3");
	img_header(&m, QKD_TT_ALICE, 3, 3, 1);
	img_alice(&m, 0);
	img_alice(&m, 0);
	REFUSED(&m, QKD_TT_ALICE, "truncated");
	img_header(&m, QKD_TT_ALICE, 3, 3, 1);
	img_alice(&m, 0);
	img_alice(&m, 0);
	img_alice(&m, 0);
	img_alice(&m, 0);
	REFUSED(&m, QKD_TT_ALICE, "after the last record");
	tmp_rm();
}

TEST(malformed_bob_records_are_refused)
{
	struct img m;

	tmp_dir();
	img_header(&m, QKD_TT_BOB, 100, 2, 1);
	img_bob(&m, 5, 0);
	img_bob(&m, 5, 0);
	REFUSED(&m, QKD_TT_BOB, "record 1: slot 5 not after the previous record's 5");
	img_header(&m, QKD_TT_BOB, 100, 2, 1);
	img_bob(&m, 5, 0);
	img_bob(&m, 4, 0);
	REFUSED(&m, QKD_TT_BOB, "record 1: slot 4 not after");
	img_header(&m, QKD_TT_BOB, 100, 2, 1);
	img_bob(&m, 5, 0);
	img_bob(&m, 100, 0);
	REFUSED(&m, QKD_TT_BOB, "record 1: slot 100 beyond the 100 pulses");
	img_header(&m, QKD_TT_BOB, 100, 1, 1);
	img_bob(&m, UINT64_MAX, 0);
	REFUSED(&m, QKD_TT_BOB, "beyond the 100 pulses");
	img_header(&m, QKD_TT_BOB, 100, 1, 1);
	img_bob(&m, 3, 0x08);
	REFUSED(&m, QKD_TT_BOB, "record 0: reserved bits");
	img_header(&m, QKD_TT_BOB, 100, 1, 1);
	img_bob(&m, 3, QKD_TT_B_DOUBLE | QKD_TT_B_BIT);
	REFUSED(&m, QKD_TT_BOB, "double click");
	/* cut in the middle of a record */
	img_header(&m, QKD_TT_BOB, 100, 2, 1);
	img_bob(&m, 1, 0);
	img_bob(&m, 2, 0);
	m.len -= 4;
	REFUSED(&m, QKD_TT_BOB, "truncated");
	/* fewer records than the header says */
	img_header(&m, QKD_TT_BOB, 100, 3, 1);
	img_bob(&m, 1, 0);
	img_bob(&m, 2, 0);
	REFUSED(&m, QKD_TT_BOB, "truncated");
	img_header(&m, QKD_TT_BOB, 100, 1, 1);
	img_bob(&m, 1, 0);
	m.b[m.len++] = 0;
	REFUSED(&m, QKD_TT_BOB, "after the last record");
	tmp_rm();
}

/* The file is a secret: opened as qkdd opens its PSK. */
TEST(files_others_may_read_or_links_are_refused)
{
	struct qkd_tt_reader *r = calloc(1, sizeof(*r));
	char link[160], path[128];
	struct img m;

	ASSERT_NE(NULL, r);
	tmp_dir();
	img_header(&m, QKD_TT_BOB, 10, 0, 1);
	snprintf(path, sizeof(path), "%s", img_file(&m, "bob"));
	ASSERT_EQ(0, qkd_tt_open_path(r, path, QKD_TT_BOB));
	qkd_tt_close(r);
	ASSERT_EQ(0, chmod(path, 0640));
	EXPECT_EQ(-EPERM, qkd_tt_open_path(r, path, QKD_TT_BOB));
	EXPECT_NE(NULL, strstr(r->err, "chmod 600")) TH_LOG("%s", r->err);
	qkd_tt_close(r);
	ASSERT_EQ(0, chmod(path, 0604));
	EXPECT_EQ(-EPERM, qkd_tt_open_path(r, path, QKD_TT_BOB));
	qkd_tt_close(r);
	ASSERT_EQ(0, chmod(path, 0600));
	snprintf(link, sizeof(link), "%s/link", g_tmp);
	ASSERT_EQ(0, symlink(path, link));
	EXPECT_EQ(-ELOOP, qkd_tt_open_path(r, link, QKD_TT_BOB));
	EXPECT_NE(NULL, strstr(r->err, "symbolic link")) TH_LOG("%s", r->err);
	qkd_tt_close(r);
	EXPECT_EQ(-EINVAL, qkd_tt_open_path(r, g_tmp, QKD_TT_BOB));
	EXPECT_NE(NULL, strstr(r->err, "not a regular file")) TH_LOG("%s", r->err);
	qkd_tt_close(r);
	/* a FIFO: refused, and the open does not wait for a writer */
	snprintf(link, sizeof(link), "%s/fifo", g_tmp);
	ASSERT_EQ(0, mkfifo(link, 0600));
	EXPECT_EQ(-EINVAL, qkd_tt_open_path(r, link, QKD_TT_BOB));
	EXPECT_NE(NULL, strstr(r->err, "not a regular file")) TH_LOG("%s", r->err);
	qkd_tt_close(r);
	snprintf(link, sizeof(link), "%s/none", g_tmp);
	EXPECT_EQ(-ENOENT, qkd_tt_open_path(r, link, QKD_TT_BOB));
	qkd_tt_close(r);
	free(r);
	tmp_rm();
}

/* Windows go forward only, and not past the recording. */
TEST(windows_before_the_last_or_past_the_end_are_refused)
{
	struct qkd_tt_reader *r = calloc(1, sizeof(*r));
	struct qkd_detections d = { 0 };
	struct img m;

	ASSERT_NE(NULL, r);
	tmp_dir();
	img_header(&m, QKD_TT_BOB, 100, 3, 1);
	img_bob(&m, 10, 0);
	img_bob(&m, 50, QKD_TT_B_BIT);
	img_bob(&m, 60, QKD_TT_B_DOUBLE | QKD_TT_B_BASIS);
	ASSERT_EQ(0, qkd_tt_open_path(r, img_file(&m, "bob"), QKD_TT_BOB));
	EXPECT_EQ(-ERANGE, qkd_tt_bob_window(r, 60, 41, &d));
	EXPECT_EQ(-ERANGE, qkd_tt_bob_window(r, UINT64_MAX, 2, &d));
	ASSERT_EQ(0, qkd_tt_bob_window(r, 40, 20, &d));	/* skips slot 10 */
	ASSERT_EQ(1, d.count);
	EXPECT_EQ(10, d.ev[0].pulse);
	EXPECT_EQ(2, d.ev[0].clicks);
	EXPECT_EQ(0, d.ev[0].basis);
	EXPECT_EQ(-EINVAL, qkd_tt_bob_window(r, 59, 1, &d));
	ASSERT_EQ(0, qkd_tt_bob_window(r, 60, 40, &d));
	ASSERT_EQ(2, d.count);
	EXPECT_EQ(0, d.ev[1].pulse);
	EXPECT_EQ(3, d.ev[1].clicks);
	EXPECT_EQ(1, d.ev[1].basis);
	EXPECT_EQ(-ERANGE, qkd_tt_bob_window(r, 100, 1, &d));
	EXPECT_EQ(0, qkd_tt_finish(r));
	qkd_tt_close(r);
	/* a window refused at its first record: nothing appended (the
	 * fuzzer's find: the list not even allocated yet) */
	{
		struct qkd_detections e = { 0 };
		struct img bad;

		img_header(&bad, QKD_TT_BOB, 100, 1, 1);
		img_bob(&bad, 3, 0x80);
		ASSERT_EQ(0, qkd_tt_open_path(r, img_file(&bad, "bad"),
					      QKD_TT_BOB));
		EXPECT_EQ(-EBADMSG, qkd_tt_bob_window(r, 0, 100, &e));
		EXPECT_EQ(0, e.count);
		EXPECT_EQ(NULL, e.ev);
		EXPECT_EQ(-EBADMSG, qkd_tt_bob_window(r, 0, 100, &e));
		qkd_tt_close(r);
	}
	/* resumed at slot 55 (qkd_tt_skip): nothing before it again */
	ASSERT_EQ(0, qkd_tt_open_path(r, img_file(&m, "bob"), QKD_TT_BOB));
	EXPECT_EQ(-ERANGE, qkd_tt_skip(r, 101));
	ASSERT_EQ(0, qkd_tt_skip(r, 55));
	EXPECT_EQ(-EINVAL, qkd_tt_skip(r, 54));
	EXPECT_EQ(-EINVAL, qkd_tt_bob_window(r, 0, 55, &d));
	d.count = 0;
	ASSERT_EQ(0, qkd_tt_bob_window(r, 55, 45, &d));
	ASSERT_EQ(1, d.count);
	EXPECT_EQ(5, d.ev[0].pulse);
	qkd_tt_close(r);
	qkd_detections_free(&d);
	free(r);
	tmp_rm();
}

/* What the writer writes reads back, window by window. */
TEST(writer_and_reader_round_trip)
{
	enum { N = 200000, W = 30011 };
	struct qkd_tt_reader *r = calloc(1, sizeof(*r));
	struct qkd_tt_writer *w = calloc(1, sizeof(*w));
	struct qkd_alice_records a, back;
	struct qkd_detections d = { 0 }, got = { 0 };
	struct qkd_rng rng;
	char ap[128], bp[128];
	size_t k = 0;
	int fd;

	ASSERT_NE(NULL, r);
	ASSERT_NE(NULL, w);
	tmp_dir();
	qkd_rng_seed(&rng, 16);
	ASSERT_EQ(0, qkd_alice_records_alloc(&a, N));
	for (size_t i = 0; i < N; i++) {
		qkd_bit_set(a.bit, i, qkd_rng_u64(&rng) & 1);
		qkd_bit_set(a.basis, i, qkd_rng_u64(&rng) & 1);
		a.intensity[i] = (uint8_t)(qkd_rng_u64(&rng) % 3);
		if (qkd_rng_u64(&rng) % 7 == 0) {
			struct qkd_detection e = {
				.pulse = i,
				.clicks = (uint8_t)(1 + qkd_rng_u64(&rng) % 3),
				.basis = (uint8_t)(qkd_rng_u64(&rng) & 1),
			};

			if (d.count == d.cap)
				ASSERT_EQ(0, qkd_detections_reserve(&d,
						d.cap ? 2 * d.cap : 1024));
			d.ev[d.count++] = e;
		}
	}
	snprintf(ap, sizeof(ap), "%s/alice", g_tmp);
	snprintf(bp, sizeof(bp), "%s/bob", g_tmp);
	fd = open(ap, O_RDWR | O_CREAT | O_EXCL, 0600);
	ASSERT_EQ(0, qkd_tt_writer_open(w, fd, QKD_TT_ALICE, 3, 1000000));
	ASSERT_EQ(0, qkd_tt_write_alice(w, &a));
	ASSERT_EQ(0, qkd_tt_writer_close(w, N)) TH_LOG("%s", w->err);
	fd = open(bp, O_RDWR | O_CREAT | O_EXCL, 0600);
	ASSERT_EQ(0, qkd_tt_writer_open(w, fd, QKD_TT_BOB, 3, 1000000));
	ASSERT_EQ(0, qkd_tt_write_bob(w, 0, &d));
	/* out of order across calls: refused */
	EXPECT_EQ(-EINVAL, qkd_tt_write_bob(w, 0, &d));
	qkd_tt_writer_abort(w);
	fd = open(bp, O_RDWR | O_TRUNC);
	ASSERT_EQ(0, qkd_tt_writer_open(w, fd, QKD_TT_BOB, 3, 1000000));
	ASSERT_EQ(0, qkd_tt_write_bob(w, 0, &d));
	ASSERT_EQ(0, qkd_tt_writer_close(w, N)) TH_LOG("%s", w->err);

	/* Alice: windows with gaps between them */
	ASSERT_EQ(0, qkd_tt_open_path(r, ap, QKD_TT_ALICE)) TH_LOG("%s", r->err);
	EXPECT_EQ(N, r->h.pulses);
	EXPECT_EQ(3, r->h.classes);
	EXPECT_EQ(1000000, r->h.rate_hz);
	for (uint64_t first = 0; first + W <= N; first += W + 1000) {
		ASSERT_EQ(0, qkd_alice_records_alloc(&back, W));
		ASSERT_EQ(0, qkd_tt_alice_window(r, first, &back));
		for (size_t i = 0; i < W; i++) {
			ASSERT_EQ(qkd_bit_get(a.bit, first + i),
				  qkd_bit_get(back.bit, i));
			ASSERT_EQ(qkd_bit_get(a.basis, first + i),
				  qkd_bit_get(back.basis, i));
			ASSERT_EQ(a.intensity[first + i], back.intensity[i]);
		}
		qkd_alice_records_free(&back);
	}
	ASSERT_EQ(0, qkd_tt_finish(r)) TH_LOG("%s", r->err);
	qkd_tt_close(r);

	/* Bob: the same windows */
	ASSERT_EQ(0, qkd_tt_open_path(r, bp, QKD_TT_BOB)) TH_LOG("%s", r->err);
	EXPECT_EQ(d.count, r->h.records);
	for (uint64_t first = 0; first + W <= N; first += W + 1000) {
		got.count = 0;
		ASSERT_EQ(0, qkd_tt_bob_window(r, first, W, &got));
		while (k < d.count && d.ev[k].pulse < first)
			k++;
		for (size_t i = 0; i < got.count; i++, k++) {
			ASSERT_LT(k, d.count);
			ASSERT_EQ(d.ev[k].pulse, got.ev[i].pulse + first);
			ASSERT_EQ(d.ev[k].clicks, got.ev[i].clicks);
			ASSERT_EQ(d.ev[k].basis, got.ev[i].basis);
		}
		ASSERT_TRUE(k == d.count || d.ev[k].pulse >= first + W);
	}
	ASSERT_EQ(0, qkd_tt_finish(r)) TH_LOG("%s", r->err);
	qkd_tt_close(r);
	qkd_alice_records_free(&a);
	qkd_detections_free(&d);
	qkd_detections_free(&got);
	free(r);
	free(w);
	tmp_rm();
}

/*
 * The simulator recorded: as many detections and double clicks as the
 * optics made, and Bob's bits agree with Alice's where the bases do at
 * the model's error rate.
 */
TEST(simulator_recording_reads_back_with_the_models_error_rate)
{
	enum { N = 3000000 };
	struct qkd_tt_reader *ra = calloc(1, sizeof(*ra));
	struct qkd_tt_reader *rb = calloc(1, sizeof(*rb));
	struct qkd_channel_params p;
	struct qkd_channel_stats st;
	struct qkd_alice_records a;
	struct qkd_detections d = { 0 };
	char ap[128], bp[128], err[200];
	uint64_t sifted = 0, errors = 0, dbl = 0;
	double q;

	ASSERT_NE(NULL, ra);
	ASSERT_NE(NULL, rb);
	tmp_dir();
	qkd_channel_params_default(&p);
	p.source = QKD_SOURCE_SINGLE_PHOTON;
	p.n_intensities = 1;
	p.p_intensity[0] = 1;
	p.misalignment = 0.03;
	p.dark_count_prob = 1e-5;
	snprintf(ap, sizeof(ap), "%s/alice", g_tmp);
	snprintf(bp, sizeof(bp), "%s/bob", g_tmp);
	ASSERT_EQ(0, qkd_tt_record_sim(&p, 7, N, 0,
				       open(ap, O_RDWR | O_CREAT | O_EXCL, 0600),
				       open(bp, O_RDWR | O_CREAT | O_EXCL, 0600),
				       &st, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, qkd_tt_open_path(ra, ap, QKD_TT_ALICE)) TH_LOG("%s", ra->err);
	ASSERT_EQ(0, qkd_tt_open_path(rb, bp, QKD_TT_BOB)) TH_LOG("%s", rb->err);
	EXPECT_EQ(N, rb->h.pulses);
	EXPECT_EQ(st.detections, rb->h.records);
	ASSERT_EQ(0, qkd_alice_records_alloc(&a, N));
	ASSERT_EQ(0, qkd_tt_alice_window(ra, 0, &a));
	ASSERT_EQ(0, qkd_tt_bob_window(rb, 0, N, &d));
	ASSERT_EQ(st.detections, d.count);
	for (size_t i = 0; i < d.count; i++) {
		const struct qkd_detection *e = &d.ev[i];

		if (e->clicks == 3) {
			dbl++;
			continue;
		}
		if (e->basis != qkd_bit_get(a.basis, e->pulse))
			continue;
		sifted++;
		errors += (unsigned int)(e->clicks == 2) !=
			  qkd_bit_get(a.bit, e->pulse);
	}
	EXPECT_EQ(st.double_clicks, dbl);
	q = qkd_channel_expected_qber(&p, 0);
	TH_LOG("%zu detections, %" PRIu64 " sifted, %" PRIu64 " errors (model %.4f)",
	       d.count, sifted, errors, q);
	ASSERT_LT(1000, sifted);
	EXPECT_LT(fabs((double)errors - sifted * q),
		  5 * sqrt(sifted * q * (1 - q)) + 1);
	qkd_tt_close(ra);
	qkd_tt_close(rb);
	qkd_alice_records_free(&a);
	qkd_detections_free(&d);
	free(ra);
	free(rb);
	tmp_rm();
}

TEST_HARNESS_MAIN
