// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for the site configuration file of qkdctl up/down
 * (site_parse() in userspace/qkdctl/siteconf.c, qkd.conf(5)). Checks,
 * besides memory safety:
 *  - a failure is -EINVAL with a reason that starts with the file name and
 *    either ": " or ":LINE: " with LINE at most the number of lines;
 *  - a success has a link role, every stream a key size in range and a
 *    UUID that is not zero, every [sa] a stream of the file, every string
 *    terminated, every [daemon] value free of '#' (qkdd reads them
 *    unquoted), and qkdd's stream named when the file has several;
 *  - parsing the same text again gives the same result.
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/util.h"
#include "../userspace/qkdctl/siteconf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)
#define PATH		"f.conf"

static int terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static void check_kv(const struct site_kv *kv)
{
	CHECK(kv->line > 0);
	CHECK(terminated(kv->key, sizeof(kv->key)) && kv->key[0]);
	CHECK(terminated(kv->val, sizeof(kv->val)));
	CHECK(kv->has_val || !kv->val[0]);
}

static void check_conf(const struct site_conf *c, unsigned int lines)
{
	CHECK(c->have_role);
	CHECK(c->role == QKD_LINK_ROLE_INITIATOR ||
	      c->role == QKD_LINK_ROLE_RESPONDER);
	CHECK(c->link_line >= 1 && c->link_line <= lines);
	CHECK(terminated(c->peer, sizeof(c->peer)));
	CHECK(c->nstreams <= SITE_MAX_STREAMS && c->nsas <= SITE_MAX_SAS &&
	      c->ndaemon <= SITE_MAX_KV);
	for (unsigned int i = 0; i < c->nstreams; i++) {
		const struct site_stream *st = &c->streams[i];

		CHECK(st->key_size >= QKD_KEY_SIZE_MIN &&
		      st->key_size <= QKD_KEY_SIZE_MAX);
		CHECK(!qkd_uuid_is_zero(st->id));
		CHECK(!st->have_max_keys ||
		      (st->max_keys >= 1 &&
		       st->max_keys <= QKD_STREAM_MAX_KEYS_LIMIT));
		CHECK(!(st->have_max_keys && st->have_low_water) ||
		      st->low_water <= st->max_keys);
	}
	for (unsigned int i = 0; i < c->nsas; i++) {
		bool found = false;

		for (unsigned int k = 0; k < c->nstreams; k++)
			found |= !memcmp(c->streams[k].id, c->sas[i].id, 16);
		CHECK(found);
		CHECK(c->sas[i].nkv <= SITE_MAX_SA_KV);
		for (unsigned int k = 0; k < c->sas[i].nkv; k++)
			check_kv(&c->sas[i].kv[k]);
	}
	for (unsigned int i = 0; i < c->ndaemon; i++) {
		check_kv(&c->daemon[i]);
		CHECK(!strchr(c->daemon[i].val, '#'));
	}
	if (c->have_daemon && c->nstreams != 1) {
		bool named = false;

		for (unsigned int i = 0; i < c->ndaemon; i++)
			named |= !strcmp(c->daemon[i].key, "stream");
		CHECK(named);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct site_conf *c = malloc(sizeof(*c)), *c2 = malloc(sizeof(*c2));
	char *text = malloc(size + 1), err[512], err2[512];
	unsigned int lines = 1;
	int r, r2;

	if (!c || !c2 || !text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';	/* site_load() refuses embedded NULs */
	for (size_t i = 0; i < strlen(text); i++)
		lines += text[i] == '\n';

	memset(err, 0, sizeof(err));
	r = site_parse(c, "ab", PATH, text, err, sizeof(err));
	if (r) {
		CHECK(r == -EINVAL);
		CHECK(terminated(err, sizeof(err)));
		CHECK(!strncmp(err, PATH ":", strlen(PATH ":")));
		if (err[strlen(PATH ":")] != ' ') {
			char *end;
			unsigned long line = strtoul(err + strlen(PATH ":"), &end, 10);

			CHECK(line >= 1 && line <= lines && end[0] == ':' &&
			      end[1] == ' ');
		}
	} else {
		check_conf(c, lines);
	}
	r2 = site_parse(c2, "ab", PATH, text, err2, sizeof(err2));
	CHECK(r == r2);
	if (!r)
		CHECK(!memcmp(c, c2, sizeof(*c)));
	else
		CHECK(!strcmp(err, err2));
	free(text);
	free(c);
	free(c2);
	return 0;
}
