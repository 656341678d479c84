// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl -j as ip -j does it, where no kernel is needed: numbers as
 * numbers, booleans as booleans, a field's type given by the field and not
 * by its value, lists as arrays, and nothing on standard output before an
 * error. Runs `build/qkdctl -j daemon show file F` on status files in the
 * form qkdd writes them (userspace/qkdd/stats.c), and libqkd's JSON writer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <qkd/json.h>

#include "kselftest_harness.h"
#include "run_qkdctl.h"


/* A status file as qkdd writes it after an aborted round (stats.c). */
static const char status_text[] =
	"role=alice\n"
	"link=123\n"		/* a link name made of digits: still a name */
	"stream=5f0c7a3e-1b2d-4c6e-8f10-112233445500\n"
	"pid=2147483647\n"	/* no such process: not running */
	"time=1765000000\n"
	"connected=1\n"
	"rounds=3\nrounds_ok=2\nrounds_aborted=1\nkeys_total=40\n"
	"secret_bits_total=10240\nnext_index=40\nauth_reserve=60000\n"
	"auth_failures=0\n"
	"auth_alarm=0\nauth_backoff_s=0\nauth_bootstraps=0\n"
	"auth_spent=512\nconn_failures=0\nconn_failures_total=2\nbackoff_s=0\n"
	"warning=simulated quantum channel: test keys only\n"
	"cpu_sift_s=0.001250\n"
	"source=wcp\n"
	"mu=0.5,0.10000000000000001,0\n"
	"p_mu=0.80000000000000004,0.10000000000000001,0.10000000000000001\n"
	"eps_sec=1.0000000000000001e-09\neps_cor=1e-15\n"
	"last_round=3\nlast_result=aborted\n"
	"last_reason=QBER 0.2 above 0.11\n"
	"pulses=1000000\ndetections=52000\nsifted_bits=26000\n"
	"sampled_bits=2600\nqber=0.200000\nkey_bits=23400\n"
	"disclosed_bits=0\nefficiency=1.1500\nsecret_bits=0\n"
	"auth_used_bytes=64\nauth_withheld_bytes=0\nkeys=0\n"
	"cascade_roundtrips=0\nround_seconds=0.512\n"
	"true_errors=-1\nefficiency_true=1.0000\n"
	"n_z=1000,200,0\nn_x=10,2,0\nm_x=1,0,0\n";

/* jq -e FILTER on @json: 0 if it holds, -1 without jq. */
static int jq_holds(const char *json, const char *filter)
{
	char cmd[512], tmp[] = "/tmp/qkd-json.XXXXXX";
	int fd, rc;

	if (system("command -v jq >/dev/null 2>&1"))
		return -1;
	fd = mkstemp(tmp);
	if (fd < 0 || write(fd, json, strlen(json)) < 0)
		return 1;
	close(fd);
	snprintf(cmd, sizeof(cmd), "jq -e '%s' <%s >/dev/null 2>&1", filter,
		 tmp);
	rc = system(cmd);
	unlink(tmp);
	return rc;
}

FIXTURE(daemon) {
	char path[64];
};

FIXTURE_SETUP(daemon)
{
	int fd;

	strcpy(self->path, "/tmp/qkd-status.XXXXXX");
	fd = mkstemp(self->path);
	ASSERT_LE(0, fd);
	ASSERT_EQ((ssize_t)strlen(status_text),
		  write(fd, status_text, strlen(status_text)));
	close(fd);
	if (access(QKDCTL, X_OK))
		SKIP(return, QKDCTL " not built (run from the top of the tree)");
}

FIXTURE_TEARDOWN(daemon)
{
	unlink(self->path);
}

TEST_F(daemon, show_types_by_field)
{
	const char *args[] = { "-j", "daemon", "show", "file", self->path,
			       NULL };
	static const char *const want[] = {
		"\"link\":\"123\"",		/* a name, not a number */
		"\"role\":\"alice\"",
		"\"connected\":true",		/* booleans, not 0/1 */
		"\"auth_alarm\":false",
		"\"running\":false",
		"\"pid\":2147483647",
		"\"qber\":0.200000",		/* numbers, not strings */
		"\"efficiency\":1.1500",
		"\"round_seconds\":0.512",
		"\"cpu_sift_s\":0.001250",
		"\"eps_sec\":1.0000000000000001e-09",
		"\"true_errors\":-1",
		"\"mu\":[0.5,0.10000000000000001,0]",	/* lists: arrays */
		"\"n_z\":[1000,200,0]",
		"\"last_reason\":\"QBER 0.2 above 0.11\"",
		"\"stream\":\"5f0c7a3e-1b2d-4c6e-8f10-112233445500\"",
	};
	struct run r;
	size_t i;
	int jq;

	run_qkdctl(&r, -1, 022, args);
	ASSERT_EQ(0, r.rc) TH_LOG("stderr: %s", r.err);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		EXPECT_NE(NULL, strstr(r.out, want[i]))
			TH_LOG("no %s in %s", want[i], r.out);
	jq = jq_holds(r.out, ".qber == 0.2 and .connected == true and "
			     ".running == false and .link == \"123\" and "
			     "(.mu | length) == 3 and (.p_mu[0] | type) == \"number\"");
	if (jq < 0)
		TH_LOG("jq not installed: the output not parsed");
	else
		EXPECT_EQ(0, jq) TH_LOG("not valid or not as typed: %s", r.out);
}

/* A value a field cannot hold in its type: never a bare token. */
TEST_F(daemon, show_no_invalid_json)
{
	static const char odd[] =
		"role=bob\nlink=ab\nconnected=2\nqber=nan\nefficiency=inf\n"
		"pulses=0x10\nkeys=01\nmu=0.5,,0\nround_seconds=1.\n";
	const char *args[] = { "-j", "daemon", "show", "file", self->path,
			       NULL };
	struct run r;
	FILE *f = fopen(self->path, "w");

	ASSERT_NE(NULL, f);
	fputs(odd, f);
	fclose(f);
	run_qkdctl(&r, -1, 022, args);
	ASSERT_EQ(0, r.rc) TH_LOG("stderr: %s", r.err);
	EXPECT_EQ(NULL, strstr(r.out, ":nan"));
	EXPECT_EQ(NULL, strstr(r.out, ":inf"));
	EXPECT_EQ(NULL, strstr(r.out, ":0x10"));
	EXPECT_EQ(NULL, strstr(r.out, ":01"));
	EXPECT_EQ(NULL, strstr(r.out, ":[0.5,,"));
	EXPECT_EQ(NULL, strstr(r.out, ":1.,"));
	EXPECT_NE(-1, jq_holds(r.out, ".")) TH_LOG("jq missing");
	EXPECT_EQ(0, jq_holds(r.out, "(.connected | type) != \"number\""))
		TH_LOG("%s", r.out);
}

/* An error: the message on stderr, nothing on stdout. */
TEST_F(daemon, show_error_leaves_stdout_empty)
{
	const char *missing[] = { "-j", "daemon", "show", "file",
				  "/nonexistent/qkd.status", NULL };
	const char *bad[] = { "-j", "daemon", "show", "file", self->path,
			      NULL };
	struct run r;
	FILE *f;

	run_qkdctl(&r, -1, 022, missing);
	EXPECT_EQ(1, r.rc);
	EXPECT_STREQ("", r.out);
	EXPECT_NE(NULL, strstr(r.err, "/nonexistent/qkd.status"));
	f = fopen(self->path, "w");
	ASSERT_NE(NULL, f);
	fputs("role=alice\nnot a status line\n", f);
	fclose(f);
	run_qkdctl(&r, -1, 022, bad);
	EXPECT_EQ(1, r.rc);
	EXPECT_STREQ("", r.out);
}

/*
 * Without the module every listing fails: nothing on stdout (it printed
 * "[" before the error), only the message on stderr.
 */
TEST(listing_error_leaves_stdout_empty)
{
	static const char *const cases[][8] = {
		{ "-j", "link", "show" },
		{ "-j", "link", "show", "a" },
		{ "-j", "stream", "show" },
		{ "-j", "sa", "show" },
		{ "-j", "status" },
		{ "-j", "-D", "/nonexistent/qkd", "key", "get",
		  "00112233-4455-6677-8899-aabbccddeeff" },
	};
	struct run r;
	size_t i;

	if (access(QKDCTL, X_OK))
		SKIP(return, QKDCTL " not built (run from the top of the tree)");
	if (!access("/sys/module/qkd", F_OK))
		SKIP(return, "the qkd module is loaded here: listings succeed");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run_qkdctl(&r, -1, 022, cases[i]);
		EXPECT_EQ(1, r.rc) TH_LOG("case %zu: %s", i, r.err);
		EXPECT_STREQ("", r.out) TH_LOG("case %zu", i);
		EXPECT_NE(NULL, strstr(r.err, "qkdctl: ")) TH_LOG("case %zu", i);
	}
}

/* libqkd's writer: the number check behind the above. */
TEST(json_number_grammar)
{
	static const char *const good[] = {
		"0", "-0", "12", "-1", "0.5", "1e-15", "1.0000000000000001e-09",
		"2E+3", "0.200000",
	};
	static const char *const bad[] = {
		"", "-", "01", "+1", "1.", ".5", "0x10", "nan", "inf", "-inf",
		"1e", "1e+", "1,2", " 1", "1 ", "--1", "1.5.2",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		EXPECT_TRUE(qkd_json_is_number(good[i])) TH_LOG("good %zu", i);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT_FALSE(qkd_json_is_number(bad[i])) TH_LOG("bad %zu", i);
}

TEST_HARNESS_MAIN
