// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd-kme's configuration file (userspace/kme/config.c): the accepted
 * form, every refused line with its line number, and the mapping of a
 * certificate's identity to an SAE (kme_sae_match(): CN exact, DNS names
 * without case, a certificate that matches two SAEs refused).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

#include "qkd/util.h"
#include "../../userspace/kme/kme.h"

#define S1 "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b"
#define S2 "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6c"
#define S3 "0e5b7a31-9c2d-4f60-b1a2-c3d4e5f60718"

static const char good[] =
	"# KME of site A\n"
	"kme-id KME_A\n"
	"  address 192.0.2.1   # the SAEs' side\n"
	"port 8443\n"
	"cert /etc/qkd/kme-a.crt\n"
	"key /etc/qkd/kme-a.key\n"
	"ca /etc/qkd/sae-ca.crt\n"
	"crl /etc/qkd/sae-ca.crl\n"
	"max-keys-per-request 16\n"
	"sae SAE_A cn=sae-a.example Org Unit\n"
	"sae SAE_C\tdns=sae-c.example\n"
	"sae spiffe-sae uri=spiffe://qkd.example/sae\n"
	"pair SAE_A SAE_B " S1 " KME_B\n"
	"pair SAE_C SAE_A " S3 " KME_B";

static struct kme_config *parse(const char *text, int *r, char *err,
				size_t errlen)
{
	struct kme_config *c = malloc(sizeof(*c));

	if (!c)
		abort();
	kme_config_default(c);
	err[0] = '\0';
	*r = kme_config_parse(c, text, strlen(text), err, errlen);
	return c;
}

TEST(defaults)
{
	struct kme_config *c = malloc(sizeof(*c));

	ASSERT_NE(NULL, c);
	kme_config_default(c);
	EXPECT_EQ(443, c->port);
	EXPECT_EQ(QKD_GET_KEYS_MAX, c->max_keys_per_request);
	EXPECT_STREQ("/dev/qkd", c->device);
	EXPECT_EQ(0, c->n_pairs);
	free(c);
}

TEST(good_file)
{
	char err[256];
	int r;
	struct kme_config *c = parse(good, &r, err, sizeof(err));
	const struct kme_pair *p;
	uint8_t s1[16];

	ASSERT_EQ(0, r) TH_LOG("%s", err);
	EXPECT_STREQ("KME_A", c->kme_id);
	EXPECT_STREQ("192.0.2.1", c->address);
	EXPECT_EQ(8443, c->port);
	EXPECT_STREQ("/etc/qkd/sae-ca.crl", c->crl);
	EXPECT_EQ(16, c->max_keys_per_request);
	ASSERT_EQ(3, c->n_saes);
	EXPECT_STREQ("SAE_A", c->saes[0].id);
	EXPECT_EQ(KME_IDENT_CN, c->saes[0].kind);
	/* a CN may hold spaces: the rest of the line */
	EXPECT_STREQ("sae-a.example Org Unit", c->saes[0].ident);
	EXPECT_EQ(KME_IDENT_DNS, c->saes[1].kind);
	EXPECT_EQ(KME_IDENT_URI, c->saes[2].kind);
	EXPECT_STREQ("spiffe://qkd.example/sae", c->saes[2].ident);
	ASSERT_EQ(2, c->n_pairs);
	p = kme_pair_find(c, "SAE_A", "SAE_B");
	ASSERT_NE(NULL, p);
	ASSERT_EQ(0, qkd_uuid_parse(S1, s1));
	EXPECT_EQ(0, memcmp(s1, p->stream, 16));
	EXPECT_STREQ("KME_B", p->peer_kme);
	/* a pair has a direction: B is not A's master */
	EXPECT_EQ(NULL, kme_pair_find(c, "SAE_B", "SAE_A"));
	EXPECT_NE(NULL, kme_pair_find(c, "SAE_C", "SAE_A"));
	EXPECT_EQ(NULL, kme_pair_find(c, "SAE_C", "SAE_B"));
	free(c);
}

/* Each bad configuration: refused, and the message says what and where. */
static const struct {
	const char *text, *msg;
} bad[] = {
	{ "kme-id KME_A\ncert a\nkey b\nca c\n", "no pair" },
	{ "cert a\nkey b\nca c\npair A B " S1 " K\n", "no kme-id" },
	{ "kme-id K\nkey b\nca c\npair A B " S1 " K\n", "required" },
	{ "kme-id K/1\n", "line 1: bad KME ID" },
	{ "kme-id K\nport 0\n", "line 2: bad port" },
	{ "kme-id K\nport 65536\n", "line 2: bad port" },
	{ "kme-id K\nport 0x10\n", "line 2: bad port" },
	{ "kme-id K\nport 443 444\n", "line 2: port takes one value" },
	{ "kme-id K\nmax-keys-per-request 257\n", "line 2: bad max-keys-per-request" },
	{ "kme-id K\nlisten 1\n", "line 2: unknown setting \"listen\"" },
	{ "kme-id K\nsae A\n", "line 2: sae ID" },
	{ "kme-id K\nsae A subject=x\n", "line 2: SAE A: identity must be" },
	{ "kme-id K\nsae A cn=\n", "line 2: SAE A: empty" },
	{ "kme-id K\nsae A/B cn=x\n", "line 2: bad SAE ID" },
	{ "kme-id K\nsae A cn=x\nsae A cn=y\n", "line 3: SAE A given twice" },
	{ "kme-id K\nsae A dns=x.example\nsae B dns=X.Example\n",
	  "line 3: SAEs A and B have the same identity" },
	{ "kme-id K\npair A B " S1 "\n", "line 2: pair MASTER_SAE" },
	{ "kme-id K\npair A B " S1 " K x\n", "line 2: pair MASTER_SAE" },
	{ "kme-id K\npair A A " S1 " K\n", "line 2: an SAE cannot be paired with itself" },
	{ "kme-id K\npair A B 6f1c2a9e K\n", "line 2: bad stream UUID" },
	{ "kme-id K\npair A B 00000000-0000-0000-0000-000000000000 K\n",
	  "line 2: bad stream UUID" },
	{ "kme-id K\npair A B " S1 " K\npair A B " S3 " K\n", "line 3: pair A B given twice" },
	/* one stream serves one pair: two would take each other's keys */
	{ "kme-id K\npair A B " S1 " K\npair B A " S1 " K\n",
	  "line 3: stream " S1 " already serves pair A B" },
	{ "kme-id K\npair A B " S1 " K\npair C D " S1 " K\n",
	  "line 3: stream " S1 " already serves pair A B" },
	/* S1 and S2 differ in their last byte: a key_ID of one is the other's */
	{ "kme-id K\npair A B " S1 " K\npair C D " S2 " K\n",
	  "line 3: stream " S2 " and the stream of pair A B share their first 9 bytes" },
};

TEST(bad_lines)
{
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256];
		int r;
		struct kme_config *c = parse(bad[i].text, &r, err, sizeof(err));

		EXPECT_EQ(-EINVAL, r) TH_LOG("accepted: %s", bad[i].text);
		EXPECT_NE(NULL, strstr(err, bad[i].msg))
			TH_LOG("\"%s\": got \"%s\", wanted \"%s\"", bad[i].text, err, bad[i].msg);
		free(c);
	}
}

TEST(nul_byte_refused)
{
	static const char text[] = "kme-id K\0\npair A B " S1 " K\n";
	struct kme_config *c = malloc(sizeof(*c));
	char err[128];

	ASSERT_NE(NULL, c);
	kme_config_default(c);
	EXPECT_EQ(-EINVAL, kme_config_parse(c, text, sizeof(text) - 1, err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "NUL"));
	free(c);
}

TEST(load_missing_file)
{
	struct kme_config *c = malloc(sizeof(*c));
	char err[256];

	ASSERT_NE(NULL, c);
	kme_config_default(c);
	EXPECT_EQ(-ENOENT, kme_config_load(c, "/nonexistent/kme.conf", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "/nonexistent/kme.conf"));
	free(c);
}

TEST(ids)
{
	char long_id[KME_ID_MAX + 2];

	EXPECT_TRUE(kme_id_valid("SAE_A"));
	EXPECT_TRUE(kme_id_valid("sae-1.example:443@x~y"));
	EXPECT_FALSE(kme_id_valid(""));
	EXPECT_FALSE(kme_id_valid("a/b"));
	EXPECT_FALSE(kme_id_valid("a b"));
	EXPECT_FALSE(kme_id_valid("a\"b"));
	EXPECT_FALSE(kme_id_valid("a%2fb"));
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	EXPECT_FALSE(kme_id_valid(long_id));
	long_id[KME_ID_MAX] = '\0';
	EXPECT_TRUE(kme_id_valid(long_id));
}

TEST(identity_match)
{
	char err[256], why[256];
	int r;
	struct kme_config *c = parse(good, &r, err, sizeof(err));
	const char *dns[] = { "other.example", "SAE-C.EXAMPLE" };
	const char *uri[] = { "spiffe://qkd.example/sae" };
	const char *uri_case[] = { "SPIFFE://qkd.example/sae" };
	const struct kme_sae *s;

	ASSERT_EQ(0, r);
	s = kme_sae_match(c, "sae-a.example Org Unit", NULL, 0, NULL, 0, why, sizeof(why));
	ASSERT_NE(NULL, s);
	EXPECT_STREQ("SAE_A", s->id);
	/* the CN exactly: no prefix, no case folding */
	EXPECT_EQ(NULL, kme_sae_match(c, "sae-a.example", NULL, 0, NULL, 0, why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "no configured SAE"));
	EXPECT_EQ(NULL, kme_sae_match(c, "SAE-A.example Org Unit", NULL, 0, NULL, 0,
				      why, sizeof(why)));
	EXPECT_EQ(NULL, kme_sae_match(c, NULL, NULL, 0, NULL, 0, why, sizeof(why)));
	/* a DNS SAN without case; a CN does not stand for a DNS SAN */
	s = kme_sae_match(c, "x", dns, 2, NULL, 0, why, sizeof(why));
	ASSERT_NE(NULL, s);
	EXPECT_STREQ("SAE_C", s->id);
	EXPECT_EQ(NULL, kme_sae_match(c, "sae-c.example", NULL, 0, NULL, 0, why, sizeof(why)));
	s = kme_sae_match(c, NULL, NULL, 0, uri, 1, why, sizeof(why));
	ASSERT_NE(NULL, s);
	EXPECT_STREQ("spiffe-sae", s->id);
	EXPECT_EQ(NULL, kme_sae_match(c, NULL, NULL, 0, uri_case, 1, why, sizeof(why)));
	/* one certificate, two SAEs: refused, not the first one taken */
	EXPECT_EQ(NULL, kme_sae_match(c, "sae-a.example Org Unit", dns, 2, NULL, 0,
				      why, sizeof(why)));
	EXPECT_NE(NULL, strstr(why, "matches SAEs SAE_A and SAE_C"));
	free(c);
}

TEST_HARNESS_MAIN
