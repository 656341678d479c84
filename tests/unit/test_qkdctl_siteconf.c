// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl up/down's site configuration parser (userspace/qkdctl/siteconf.c,
 * qkd.conf(5)): the accepted forms, quoting, and every kind of bad line
 * refused with the file and the line. The examples of
 * Documentation/examples/ parse, and their [daemon] sections are accepted
 * by qkdd's own configuration parser (compiled in, as test_qkdd_config
 * does).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../userspace/qkdctl/siteconf.c"
#include "../../userspace/qkdd/config.c"

#include "kselftest_harness.h"
#include "run_qkdctl.h"

#define SID "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"

static const char good[] =
	"# site A\n"
	"\n"
	"[link]\n"
	"role = initiator\n"
	"peer \"site B # rack 4, \\\"north\\\" \\\\ x\"   # comment\n"
	"  id=7\n"
	"[stream " SID "]   # the stream\n"
	"key-size = 32\n"
	"max-keys 100\n"
	"low-water = 10\r\n"
	"[ daemon ]\n"
	"role = alice\n"
	"peer = 127.0.0.1:7000\n"
	"simulated-channel-test-keys-only\n"
	"[sa " SID "]\n"
	"local = 10.0.0.1\n"
	"remote = 10.0.0.2\n"
	"first-index = 0\n"
	"policy\n"
	"on-down = remove-protection\n";

static struct site_conf *parse(const char *name, const char *text, char *err,
			       size_t errlen, int *r)
{
	struct site_conf *c = calloc(1, sizeof(*c));

	if (!c) {
		*r = -ENOMEM;
		return NULL;
	}
	err[0] = '\0';
	*r = site_parse(c, name, "/etc/qkd/x.conf", text, err, errlen);
	return c;
}

TEST(good_file)
{
	char err[512];
	int r;
	struct site_conf *c = parse("ab", good, err, sizeof(err), &r);

	ASSERT_NE(NULL, c);
	ASSERT_EQ(0, r) TH_LOG("%s", err);
	EXPECT_STREQ("ab", c->name);
	EXPECT_EQ(QKD_LINK_ROLE_INITIATOR, c->role);
	EXPECT_STREQ("site B # rack 4, \"north\" \\ x", c->peer);
	EXPECT_EQ(7, c->id);
	EXPECT_FALSE(c->state_down);
	ASSERT_EQ(1, c->nstreams);
	EXPECT_STREQ(SID, c->streams[0].id_str);
	EXPECT_EQ(32, c->streams[0].key_size);
	EXPECT_EQ(100, c->streams[0].max_keys);
	EXPECT_EQ(10, c->streams[0].low_water);
	EXPECT_EQ(7, c->streams[0].line);
	ASSERT_TRUE(c->have_daemon);
	ASSERT_EQ(3, c->ndaemon);
	EXPECT_STREQ("peer", c->daemon[1].key);
	EXPECT_STREQ("127.0.0.1:7000", c->daemon[1].val);
	EXPECT_EQ(13, c->daemon[1].line);
	EXPECT_FALSE(c->daemon[2].has_val);
	ASSERT_EQ(1, c->nsas);
	EXPECT_TRUE(c->sas[0].remove_protection);
	ASSERT_EQ(4, c->sas[0].nkv);
	EXPECT_STREQ("policy", c->sas[0].kv[3].key);
	EXPECT_FALSE(c->sas[0].kv[3].has_val);
	free(c);
}

/* Each bad file: the line the error must name (0: the file only), a word of the reason. */
static const struct {
	const char *text;
	unsigned int line;
	const char *reason;
} bad[] = {
	{ "", 0, "no [link]" },
	{ "# only a comment\n", 0, "no [link]" },
	{ "role = initiator\n", 1, "outside a section" },
	{ "[link]\n", 1, "needs role" },
	{ "[link]\nrole = eve\n", 2, "initiator or responder" },
	{ "[link]\nrole = initiator\nrole = responder\n", 3, "twice" },
	{ "[link]\nrole = initiator\ncolour = red\n", 3, "unknown key" },
	{ "[link]\nrole = initiator\nname = other\n", 3, "not the link" },
	{ "[link]\nrole = initiator\nname = \"a b\"\n", 3, "letters" },
	{ "[link]\nrole = initiator\nid = 0\n", 3, "1..4294967295" },
	{ "[link]\nrole = initiator\nid = 4294967296\n", 3, "1..4294967295" },
	{ "[link]\nrole = initiator\nstate = exhausted\n", 3, "up or down" },
	{ "[link]\nrole = initiator\npeer\n", 3, "needs a value" },
	{ "[link]\nrole = initiator\npeer = \"abc\n", 3, "unterminated" },
	{ "[link]\nrole = initiator\npeer = \"a\\nb\"\n", 3, "escapes" },
	{ "[link]\nrole = initiator\npeer = \"a\" b\n", 3, "after the closing" },
	{ "[link]\nrole = initiator\npeer = a\"b\n", 3, "unquoted" },
	{ "[link]\nrole = initiator\npeer = \"0123456789012345678901234567890123456789012345678901234567890123\"\n",
	  3, "longer" },
	{ "[link]\nrole = initiator\n[link]\n", 3, "second [link]" },
	{ "[link\nrole = initiator\n", 1, "missing ']'" },
	{ "[link] x\nrole = initiator\n", 1, "after ']'" },
	{ "[link x]\nrole = initiator\n", 1, "no argument" },
	{ "[links]\n", 1, "unknown section" },
	{ "[link]\nrole = initiator\n[stream]\n", 3, "needs a stream UUID" },
	{ "[link]\nrole = initiator\n[stream 00000000-0000-0000-0000-000000000000]\n",
	  3, "needs a stream UUID" },
	{ "[link]\nrole = initiator\n[stream " SID "]\n", 3, "needs key-size" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 8\n", 4, "16..512" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32x\n", 4, "16..512" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\nkey-size = 32\n",
	  5, "twice" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\nmax-keys = 0\n",
	  5, "1..1048576" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\nmax-keys = 10\nlow-water = 11\n",
	  3, "above max-keys" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\nsize = 2\n",
	  5, "unknown key" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[stream " SID "]\n",
	  5, "declared twice" },
	{ "[link]\nrole = initiator\n[sa " SID "]\nlocal = 10.0.0.1\n", 3,
	  "no [stream]" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[sa " SID "]\nlocal\n",
	  6, "needs a value" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[sa " SID "]\nspi = 1\n",
	  6, "unknown key" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[sa " SID "]\npolicy = no\n",
	  6, "flag" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[sa " SID "]\non-down = keep\n",
	  6, "block or remove" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[sa " SID "]\nlocal = a\nlocal = b\n",
	  7, "twice" },
	{ "[link]\nrole = initiator\n[daemon]\nrole = alice\n", 3, "needs stream" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[daemon]\nlink = other\n",
	  6, "not this file's link" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[daemon]\nstream = 6f1c2a9e-3b4d-4e5f-8a7b-000000000000\n",
	  6, "not a [stream]" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[daemon]\npeer = \"a#b\"\n",
	  6, "'#'" },
	/* an empty quoted value (fuzz_siteconf: it read the byte before it) */
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[daemon]\npeer = \"\"\n",
	  6, "may not be empty" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[daemon]\nconfig = /x\n",
	  6, "nested" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[daemon]\nrounds = 1\nrounds = 2\n",
	  7, "twice" },
	{ "[link]\nrole = initiator\n[daemon]\n[daemon]\n", 4, "second [daemon]" },
	{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 36\n[daemon]\nkey-size = 32\n",
	  6, "not its stream's (36)" },
	{ "[link]\nrole = initiator\npeer = a\x01" "b\n", 3, "non-printable" },
	{ "[link]\nrole = initiator\n= x\n", 3, "key = value" },
	{ "[link]\nrole = initiator\nro!e = x\n", 3, "bad character" },
};

TEST(bad_files_name_file_and_line)
{
	char err[512], want[64];
	size_t i;
	int r;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct site_conf *c = parse("ab", bad[i].text, err, sizeof(err), &r);

		ASSERT_NE(NULL, c);
		EXPECT_EQ(-EINVAL, r) TH_LOG("case %zu accepted", i);
		if (bad[i].line)
			snprintf(want, sizeof(want), "/etc/qkd/x.conf:%u: ",
				 bad[i].line);
		else
			snprintf(want, sizeof(want), "/etc/qkd/x.conf: ");
		EXPECT_EQ(0, strncmp(err, want, strlen(want)))
			TH_LOG("case %zu: '%s' does not start with '%s'", i,
			       err, want);
		EXPECT_NE(NULL, strstr(err, bad[i].reason))
			TH_LOG("case %zu: '%s' does not say '%s'", i, err,
			       bad[i].reason);
		free(c);
	}
}

TEST(long_line_and_bad_name)
{
	char err[512], *text;
	int r;
	struct site_conf *c;

	text = malloc(4096);
	ASSERT_NE(NULL, text);
	strcpy(text, "[link]\nrole = initiator\npeer = ");
	memset(text + strlen(text), 'x', 2000);
	strcpy(text + 2031, "\n");
	c = parse("ab", text, err, sizeof(err), &r);
	EXPECT_EQ(-EINVAL, r);
	EXPECT_NE(NULL, strstr(err, "x.conf:3: line too long")) TH_LOG("%s", err);
	free(c);
	free(text);
	c = parse("-ab", good, err, sizeof(err), &r);
	EXPECT_EQ(-EINVAL, r);
	EXPECT_NE(NULL, strstr(err, "starts with")) TH_LOG("%s", err);
	free(c);
}

/* A value as long as SITE_VAL_MAX allows, and one byte more. */
TEST(daemon_value_bounds)
{
	char err[512], *text;
	int r;
	struct site_conf *c;
	size_t at;

	text = malloc(2048);
	ASSERT_NE(NULL, text);
	strcpy(text, "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n[daemon]\npsk = ");
	at = strlen(text);
	memset(text + at, 'p', SITE_VAL_MAX - 1);
	strcpy(text + at + SITE_VAL_MAX - 1, "\n");
	c = parse("ab", text, err, sizeof(err), &r);
	EXPECT_EQ(0, r) TH_LOG("%s", err);
	EXPECT_EQ(SITE_VAL_MAX - 1, strlen(c->daemon[0].val));
	free(c);
	memset(text + at, 'p', SITE_VAL_MAX);
	strcpy(text + at + SITE_VAL_MAX, "\n");
	c = parse("ab", text, err, sizeof(err), &r);
	EXPECT_EQ(-EINVAL, r);
	EXPECT_NE(NULL, strstr(err, "x.conf:6: value longer")) TH_LOG("%s", err);
	free(c);
	free(text);
}

/*
 * Documentation/examples/: each parses, and its [daemon] lines, as
 * qkdctl up hands them to qkdd, are accepted by qkdd's own parser.
 */
TEST(examples)
{
	static const char *const files[] = {
		"Documentation/examples/psk-siteA.conf",
		"Documentation/examples/psk-siteB.conf",
		"Documentation/examples/x509-siteA.conf",
		"Documentation/examples/etsi014-siteA.conf",
	};
	char err[512];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		struct site_conf *c = calloc(1, sizeof(*c));
		struct qkdd_opts o;
		char *text;
		size_t len = 0;
		int r;

		ASSERT_NE(NULL, c);
		if (access(files[i], R_OK)) {
			free(c);
			SKIP(return, "%s: run from the top of the tree", files[i]);
		}
		r = site_load(c, strstr(files[i], "x509") ? "hq-dc1" : "alice-bob",
			      files[i], err, sizeof(err));
		ASSERT_EQ(0, r) TH_LOG("%s", err);
		EXPECT_TRUE(c->have_daemon);
		EXPECT_EQ(1, c->nstreams);
		EXPECT_EQ(1, c->nsas);
		text = calloc(1, 16384);
		ASSERT_NE(NULL, text);
		for (unsigned int k = 0; k < c->ndaemon; k++)
			len += (size_t)snprintf(text + len, 16384 - len,
						"%s%s%s\n", c->daemon[k].key,
						c->daemon[k].has_val ? " = " : "",
						c->daemon[k].val);
		qkdd_opts_default(&o);
		EXPECT_EQ(0, qkdd_config_parse(&o, text, err, sizeof(err)))
			TH_LOG("%s: qkdd refuses its [daemon]: %s", files[i], err);
		free(text);
		free(c);
	}
}

/*
 * build/qkdctl up/down on a file it refuses: exit 2 and FILE:LINE before
 * anything reaches the kernel (no module is needed to see it: a refusal
 * after opening netlink would be "family not found", exit 1).
 */
TEST(qkdctl_up_refuses_before_the_kernel)
{
	static const struct {
		const char *text;
		const char *want;
	} cases[] = {
		{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 7\n",
		  ":4: key-size needs an integer" },
		{ "[link]\nrole = eve\n", ":2: role must be" },
		{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n"
		  "[sa " SID "]\nlocal = 10.0.0.300\nremote = 10.0.0.2\nfirst-index = 0\n",
		  ":5: [sa " SID "]: refused" },
		{ "[link]\nrole = initiator\n[stream " SID "]\nkey-size = 32\n"
		  "[sa " SID "]\nlocal = 10.0.0.1\nremote = 10.0.0.2\n",
		  ":5: [sa " SID "]: refused" },
	};
	char path[] = "/tmp/qkd-siteconf-XXXXXX";
	struct run r;
	size_t i;
	int fd;

	if (access(QKDCTL, X_OK))
		SKIP(return, "build/qkdctl not built (run from the top of the tree)");
	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *up[] = { "up", "-c", path, "ab", NULL };
		const char *down[] = { "down", "--config", path, "ab", NULL };

		ASSERT_EQ(0, ftruncate(fd, 0));
		ASSERT_EQ((ssize_t)strlen(cases[i].text),
			  pwrite(fd, cases[i].text, strlen(cases[i].text), 0));
		run_qkdctl(&r, -1, 022, up);
		EXPECT_EQ(2, r.rc) TH_LOG("case %zu: %s", i, r.err);
		EXPECT_NE(NULL, strstr(r.err, path)) TH_LOG("case %zu: %s", i, r.err);
		EXPECT_NE(NULL, strstr(r.err, cases[i].want))
			TH_LOG("case %zu: '%s' lacks '%s'", i, r.err, cases[i].want);
		EXPECT_EQ(NULL, strstr(r.err, "netlink")) TH_LOG("%s", r.err);
		EXPECT_STREQ("", r.out);
		if (i < 2) {	/* down reads the same file */
			run_qkdctl(&r, -1, 022, down);
			EXPECT_EQ(2, r.rc) TH_LOG("down, case %zu: %s", i, r.err);
		}
	}
	close(fd);
	unlink(path);
	{
		const char *missing[] = { "up", "-c", "/nonexistent/x.conf", "ab", NULL };
		const char *badname[] = { "up", "-c", path, "a/b", NULL };
		const char *noname[] = { "up", "-c", path, NULL };

		run_qkdctl(&r, -1, 022, missing);
		EXPECT_EQ(1, r.rc);
		EXPECT_NE(NULL, strstr(r.err, "/nonexistent/x.conf: No such file"))
			TH_LOG("%s", r.err);
		run_qkdctl(&r, -1, 022, badname);
		EXPECT_EQ(2, r.rc);
		run_qkdctl(&r, -1, 022, noname);
		EXPECT_EQ(2, r.rc);
	}
	{
		/* the options of each command only, and one mode of up */
		const char *both[] = { "up", "--foreground", "--bind-only", "ab", NULL };
		const char *uppurge[] = { "up", "--purge", "ab", NULL };
		const char *downfg[] = { "down", "--foreground", "ab", NULL };

		run_qkdctl(&r, -1, 022, both);
		EXPECT_EQ(2, r.rc);
		EXPECT_NE(NULL, strstr(r.err, "exclude each other")) TH_LOG("%s", r.err);
		run_qkdctl(&r, -1, 022, uppurge);
		EXPECT_EQ(2, r.rc);
		EXPECT_NE(NULL, strstr(r.err, "unknown option \"--purge\"")) TH_LOG("%s", r.err);
		run_qkdctl(&r, -1, 022, downfg);
		EXPECT_EQ(2, r.rc);
		EXPECT_NE(NULL, strstr(r.err, "unknown option \"--foreground\"")) TH_LOG("%s", r.err);
	}
}

/*
 * The file against what exists (qkdctl up adopts or refuses): equal
 * parameters adopt, each differing field is named with both values, and
 * what the file leaves out is the kernel's default.
 */
TEST(diff_link_and_stream)
{
	char err[512], why[256];
	int r;
	struct site_conf *c = parse("ab", good, err, sizeof(err), &r);
	struct qkd_link l = { .role = QKD_LINK_ROLE_INITIATOR, .id = 7 };
	struct qkd_stream s = { .key_size = 32, .max_keys = 100,
				.low_water = 10 };

	ASSERT_EQ(0, r);
	strcpy(l.peer, c->peer);
	EXPECT_EQ(0, site_link_diff(c, &l, why, sizeof(why)));
	l.id = 8;
	EXPECT_EQ(1, site_link_diff(c, &l, why, sizeof(why)));
	EXPECT_STREQ("id: 7 in the file, 8 in the kernel", why);
	l.id = 7;
	l.role = QKD_LINK_ROLE_RESPONDER;
	EXPECT_EQ(1, site_link_diff(c, &l, why, sizeof(why)));
	EXPECT_STREQ("role: initiator in the file, responder in the kernel", why);
	l.role = QKD_LINK_ROLE_INITIATOR;
	strcpy(l.peer, "another");
	EXPECT_EQ(1, site_link_diff(c, &l, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "peer: \"site B # rack 4"));

	EXPECT_EQ(0, site_stream_diff(&c->streams[0], &s, why, sizeof(why)));
	s.key_size = 64;
	EXPECT_EQ(1, site_stream_diff(&c->streams[0], &s, why, sizeof(why)));
	EXPECT_STREQ("key-size: 32 in the file, 64 in the kernel", why);
	s.key_size = 32;
	s.max_keys = 4096;
	EXPECT_EQ(1, site_stream_diff(&c->streams[0], &s, why, sizeof(why)));
	EXPECT_STREQ("max-keys: 100 in the file, 4096 in the kernel", why);
	s.max_keys = 100;
	s.low_water = 0;
	EXPECT_EQ(1, site_stream_diff(&c->streams[0], &s, why, sizeof(why)));
	EXPECT_STREQ("low-water: 10 in the file, 0 in the kernel", why);
	/* left out: max-keys not compared, low-water 0 */
	c->streams[0].have_max_keys = false;
	c->streams[0].have_low_water = false;
	s.max_keys = 4096;
	EXPECT_EQ(0, site_stream_diff(&c->streams[0], &s, why, sizeof(why)));
	s.low_water = 5;
	EXPECT_EQ(1, site_stream_diff(&c->streams[0], &s, why, sizeof(why)));
	free(c);
}

TEST(diff_sa)
{
	struct qkd_sa_params p = {
		.addr_len = 4, .local = { 10, 0, 0, 1 }, .remote = { 10, 0, 0, 2 },
		.first_index = 5, .have_first = true,
	};
	/* what the kernel made of it: its defaults filled in */
	struct qkd_sa_info k = {
		.addr_len = 4, .local = { 10, 0, 0, 1 }, .remote = { 10, 0, 0, 2 },
		.first_index = 5, .mode = QKD_SA_MODE_TRANSPORT,
		.alg = QKD_SA_ALG_AES_GCM, .key_bits = 256, .dir = QKD_SA_DIR_BOTH,
		.rekey_seconds = 3600,
	};
	char why[256];

	EXPECT_EQ(0, site_sa_diff(&p, &k, why, sizeof(why)));
	k.remote[3] = 3;
	EXPECT_EQ(1, site_sa_diff(&p, &k, why, sizeof(why)));
	EXPECT_STREQ("remote: 10.0.0.2 in the file, 10.0.0.3 in the kernel", why);
	k.remote[3] = 2;
	k.first_index = 0;
	EXPECT_EQ(1, site_sa_diff(&p, &k, why, sizeof(why)));
	EXPECT_STREQ("first-index: 5 in the file, 0 in the kernel", why);
	k.first_index = 5;
	p.rekey_bytes = 1000;	/* no rekey-seconds then: the kernel's 0 */
	EXPECT_EQ(1, site_sa_diff(&p, &k, why, sizeof(why)));
	EXPECT_STREQ("rekey-seconds: 0 in the file, 3600 in the kernel", why);
	k.rekey_seconds = 0;
	k.rekey_bytes = 1000;
	EXPECT_EQ(0, site_sa_diff(&p, &k, why, sizeof(why)));
	p.key_bits = 128;
	EXPECT_EQ(1, site_sa_diff(&p, &k, why, sizeof(why)));
	EXPECT_STREQ("key-bits: 128 in the file, 256 in the kernel", why);
	p.key_bits = 0;
	p.have_mark = true;
	p.mark = 1;
	k.mark = 1;
	EXPECT_EQ(1, site_sa_diff(&p, &k, why, sizeof(why)));
	EXPECT_STREQ("mask: 4294967295 in the file, 0 in the kernel", why);
	k.mark_mask = UINT32_MAX;
	EXPECT_EQ(0, site_sa_diff(&p, &k, why, sizeof(why)));
	p.policy = true;
	EXPECT_EQ(1, site_sa_diff(&p, &k, why, sizeof(why)));
	EXPECT_STREQ("policy: yes in the file, no in the kernel", why);
	k.policy = true;
	EXPECT_EQ(0, site_sa_diff(&p, &k, why, sizeof(why)));
	p.mode = QKD_SA_MODE_TUNNEL;
	EXPECT_EQ(1, site_sa_diff(&p, &k, why, sizeof(why)));
	EXPECT_STREQ("mode: tunnel in the file, transport in the kernel", why);
}

TEST_HARNESS_MAIN
