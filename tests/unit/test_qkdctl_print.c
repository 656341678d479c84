// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl's -j printers on the host (no kernel): the objects `stream show`,
 * `stream add` and `stream set` print, built from a decoded reply. One name
 * per concept: a stream's UUID is "stream", as in key, sa and monitor.
 * Includes qkdctl's common.c and stream.c to reach print_stream().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../userspace/qkdctl/common.c"
#include "../../userspace/qkdctl/stream.c"

#include "kselftest_harness.h"

/* qkdctl's main.c is not linked: its usage text is not needed here. */
void usage(FILE *f, const char *object)
{
	(void)f;
	(void)object;
}

/* print_stream(@s) + json_end() in -j mode, into @buf. */
static void json_of_stream(const struct qkd_stream *s, char *buf, size_t cap)
{
	FILE *tmp = tmpfile();
	int saved = dup(STDOUT_FILENO);
	ssize_t n;

	fflush(stdout);
	dup2(fileno(tmp), STDOUT_FILENO);
	opts.out = OUT_JSON;
	nnames = 0;		/* no link names: no netlink */
	print_stream(s);
	json_end();
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	n = pread(fileno(tmp), buf, cap - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	fclose(tmp);
}

TEST(stream_json_names_the_stream)
{
	static const uint8_t uuid[16] = {
		0x5f, 0x0c, 0x7a, 0x3e, 0x1b, 0x2d, 0x4c, 0x6e,
		0x8f, 0x10, 0x11, 0x22, 0x33, 0x44, 0x55, 0x00,
	};
	struct qkd_stream s;
	char out[2048];

	memset(&s, 0, sizeof(s));
	memcpy(s.id, uuid, sizeof(uuid));
	s.link_id = 3;
	s.key_size = 32;
	s.max_keys = 100;
	s.low_water = 2;
	s.stored_keys = 7;
	s.next_index = 1234567890123ULL;
	s.stats.keys_added = 9;
	json_of_stream(&s, out, sizeof(out));
	EXPECT_NE(NULL, strstr(out,
		"\"stream\":\"5f0c7a3e-1b2d-4c6e-8f10-112233445500\""))
		TH_LOG("%s", out);
	EXPECT_EQ(NULL, strstr(out, "\"id\":")) TH_LOG("%s", out);
	/* numbers as numbers */
	EXPECT_NE(NULL, strstr(out, "\"link_id\":3,")) TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"next_index\":1234567890123,"))
		TH_LOG("%s", out);
	EXPECT_NE(NULL, strstr(out, "\"stored_keys\":7,")) TH_LOG("%s", out);
	EXPECT_EQ('{', out[0]);
	EXPECT_EQ('\n', out[strlen(out) - 1]);
}

TEST_HARNESS_MAIN
