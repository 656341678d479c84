// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd-timetag: recorded detection files (qkd/timetag.h) for qkdd --replay.
 *
 *   qkd-timetag record [--channel SPEC] [--seed N] [--rate HZ]
 *                      --pulses N ALICE_FILE BOB_FILE
 *       the simulator (qkdd's --channel model, seeded) recorded into both
 *       ends' files, created with mode 0600 (never over an existing file)
 *   qkd-timetag check alice|bob FILE
 *       read and check a whole file as qkdd would; print its header
 *
 * Exit 0, 1 on a refused file or a failure (the reason on stderr), 2 on a
 * usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "qkd/timetag.h"
#include "qkd/util.h"
#include "../qkdd/qkdd.h"

static void usage(FILE *f)
{
	fprintf(f,
"usage: qkd-timetag record [--channel KEY=VAL,...] [--seed N] [--rate HZ]\n"
"                          --pulses N ALICE_FILE BOB_FILE\n"
"       qkd-timetag check alice|bob FILE\n"
"Recorded detection files for qkdd --replay (Documentation/protocol.md,\n"
"\"Recorded detections\"). record: the simulated link (qkdd's --channel\n"
"model) into Alice's and Bob's files, new, mode 0600. check: a file read\n"
"and checked as qkdd reads it.\n");
}

static int create(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		      0600);

	if (fd < 0)
		fprintf(stderr, "qkd-timetag: %s: %s\n", path, strerror(errno));
	return fd;
}

static int cmd_record(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "channel", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },
		{ "rate", required_argument, NULL, 'r' },
		{ "pulses", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct qkd_channel_params p;
	struct qkd_channel_stats st;
	uint64_t seed = 0, rate = 0, pulses = 0;
	bool have_seed = false;
	char err[300];
	int c, afd, bfd;

	qkd_channel_params_default(&p);
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (qkdd_channel_parse(&p, optarg, err, sizeof(err))) {
				fprintf(stderr, "qkd-timetag: %s\n", err);
				return 2;
			}
			break;
		case 's':
			if (qkd_parse_u64(optarg, UINT64_MAX, &seed)) {
				fprintf(stderr, "qkd-timetag: bad seed '%s'\n",
					optarg);
				return 2;
			}
			have_seed = true;
			break;
		case 'r':
			if (qkd_parse_u64(optarg, UINT64_MAX, &rate)) {
				fprintf(stderr, "qkd-timetag: bad rate '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'p':
			if (qkd_parse_u64(optarg, QKD_TT_PULSES_MAX, &pulses) ||
			    !pulses) {
				fprintf(stderr, "qkd-timetag: --pulses: 1 to 2^48, not '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!pulses || argc - optind != 2) {
		usage(stderr);
		return 2;
	}
	if (p.source == QKD_SOURCE_WCP && p.n_intensities != 3)
		fprintf(stderr, "qkd-timetag: note: qkdd needs three intensities of a WCP source for the decoy-state bound\n");
	if (!have_seed && getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
		fprintf(stderr, "qkd-timetag: getrandom: %s\n", strerror(errno));
		return 1;
	}
	afd = create(argv[optind]);
	if (afd < 0)
		return 1;
	bfd = create(argv[optind + 1]);
	if (bfd < 0) {
		close(afd);
		unlink(argv[optind]);
		return 1;
	}
	if (qkd_tt_record_sim(&p, seed, pulses, rate, afd, bfd, &st, err,
			      sizeof(err))) {
		fprintf(stderr, "qkd-timetag: %s\n", err);
		unlink(argv[optind]);
		unlink(argv[optind + 1]);
		return 1;
	}
	printf("%" PRIu64 " pulse slots, %" PRIu64 " detections (%" PRIu64 " double clicks), seed %" PRIu64 "\n",
	       pulses, st.detections, st.double_clicks, seed);
	return 0;
}

static int cmd_check(int argc, char **argv)
{
	struct qkd_tt_reader *r;
	enum qkd_tt_end end;
	int ret;

	if (argc != 3 || (strcmp(argv[1], "alice") && strcmp(argv[1], "bob"))) {
		usage(stderr);
		return 2;
	}
	end = !strcmp(argv[1], "alice") ? QKD_TT_ALICE : QKD_TT_BOB;
	r = calloc(1, sizeof(*r));
	if (!r)
		return 1;
	ret = qkd_tt_open_path(r, argv[2], end);
	if (!ret)
		ret = qkd_tt_finish(r);
	if (ret)
		fprintf(stderr, "qkd-timetag: %s\n", r->err);
	else
		printf("%s: %s, version %u, %" PRIu64 " pulse slots, %" PRIu64 " records, %u intensity classes, %" PRIu64 " Hz: well-formed\n",
		       argv[2], end == QKD_TT_ALICE ? "Alice" : "Bob",
		       QKD_TT_VERSION, r->h.pulses, r->h.records,
		       r->h.classes, r->h.rate_hz);
	qkd_tt_close(r);
	free(r);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "record"))
		return cmd_record(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "check"))
		return cmd_check(argc - 1, argv + 1);
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && !strcmp(argv[1], "--version")) {
		printf("qkd-timetag %s\n", QKD_VERSION);
		return 0;
	}
	usage(stderr);
	return 2;
}
