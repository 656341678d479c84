// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for qkdd's configuration-file parser
 * (qkdd_config_parse() in userspace/qkdd/config.c: the text of --config
 * FILE, every option through qkdd_opt_set(), --channel included). Checks,
 * besides memory safety:
 *  - a failure is -EINVAL with a reason that starts with "line N: ";
 *  - a success leaves every option inside its documented range (strings
 *    terminated, numbers within bounds, a channel model the simulator
 *    accepts), and the cross-option check only ever fails with a reason;
 *  - parsing the same text again gives the same options;
 *  - qkdd_opt_set() on the input's first line, cut at its first '=' into
 *    a name and a value (the command line's --NAME=VALUE), either succeeds
 *    or changes nothing.
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/auth.h"
#include "qkd/util.h"
#include "qkd/verify.h"
#include "../userspace/qkdd/qkdd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)

static int terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static void check_opts(const struct qkdd_opts *o)
{
	CHECK(o->role == QKDD_ROLE_NONE || o->role == QKDD_ALICE ||
	      o->role == QKDD_BOB);
	CHECK(terminated(o->peer, sizeof(o->peer)));
	CHECK(terminated(o->listen, sizeof(o->listen)));
	CHECK(terminated(o->link, sizeof(o->link)));
	CHECK(strlen(o->link) < 32);	/* QKD_LINK_NAME_MAX */
	CHECK(terminated(o->psk, sizeof(o->psk)));
	CHECK(terminated(o->cert, sizeof(o->cert)));
	CHECK(terminated(o->key, sizeof(o->key)));
	CHECK(terminated(o->ca, sizeof(o->ca)));
	CHECK(terminated(o->peer_name, sizeof(o->peer_name)));
	CHECK(terminated(o->out, sizeof(o->out)));
	CHECK(terminated(o->status, sizeof(o->status)));
	CHECK(terminated(o->state_dir, sizeof(o->state_dir)));
	CHECK(!o->have_stream || !qkd_uuid_is_zero(o->stream));
	CHECK(qkd_channel_params_check(&o->ch, NULL) == 0);
	CHECK(o->block_bits >= 1024 && o->block_bits <= 1u << 24);
	CHECK(o->key_size >= 16 && o->key_size <= 512);
	CHECK(o->qber_abort >= 0.001 && o->qber_abort <= 0.5);
	CHECK(o->sample_frac >= 0.01 && o->sample_frac <= 0.9);
	CHECK(o->eps_sec > 0 && o->eps_sec <= 0.1);
	CHECK(o->eps_cor > 0 && o->eps_cor <= 0.1);
	CHECK(qkd_verify_check_tag_bits(o->tag_bits, 0) == 0);
	CHECK(o->auth_target >= 4096 &&
	      o->auth_target <= QKD_AUTH_RESERVE_CAP_DEFAULT / 2);
	CHECK(o->timeout_s >= 1 && o->timeout_s <= 3600);
	CHECK(o->retry_max_s >= 1 && o->retry_max_s <= 3600);
	CHECK(o->backoff_base_s >= 1 && o->backoff_base_s <= 3600);
	CHECK(o->backoff_max_s >= 1 && o->backoff_max_s <= 86400);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkdd_opts *o = malloc(sizeof(*o)), *o2 = malloc(sizeof(*o2));
	char *text = malloc(size + 1), err[256], err2[256], *value;
	int r, r2;

	if (!o || !o2 || !text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';	/* qkdd_config_load() refuses embedded NULs */

	qkdd_opts_default(o);
	memset(err, 0, sizeof(err));
	r = qkdd_config_parse(o, text, err, sizeof(err));
	if (r) {
		CHECK(r == -EINVAL);
		CHECK(terminated(err, sizeof(err)));
		CHECK(!strncmp(err, "line ", 5) && strchr(err, ':'));
	} else {
		check_opts(o);
		err[0] = '\0';
		if (qkdd_opts_check(o, err, sizeof(err)))
			CHECK(err[0] && terminated(err, sizeof(err)));
	}

	qkdd_opts_default(o2);
	r2 = qkdd_config_parse(o2, text, err2, sizeof(err2));
	CHECK(r == r2);
	if (!r)
		CHECK(!memcmp(o, o2, sizeof(*o)));
	else
		CHECK(!strcmp(err, err2));

	/* --NAME=VALUE: a rejected option leaves the options as they were */
	text[strcspn(text, "\n")] = '\0';
	value = strchr(text, '=');
	if (value)
		*value++ = '\0';
	qkdd_opts_default(o);
	qkdd_opts_default(o2);
	if (qkdd_opt_set(o, text, value, err, sizeof(err))) {
		CHECK(err[0] && terminated(err, sizeof(err)));
		CHECK(!memcmp(o, o2, sizeof(*o)));
	} else {
		check_opts(o);
	}

	free(text);
	free(o);
	free(o2);
	return 0;
}
