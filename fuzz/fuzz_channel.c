// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for qkdd's --channel KEY=VAL,... parser
 * (qkdd_channel_parse() in userspace/qkdd/config.c). Checks, besides memory
 * safety:
 *  - a failure is -EINVAL with a reason that starts with "channel: ", and
 *    leaves the model as it was;
 *  - a success gives a model that qkd_channel_params_check() accepts, with
 *    finite model quantities in [0, 1], and that the simulator runs: a few
 *    hundred pulses are prepared, transmitted and detected, and Bob's
 *    per-detection records agree with his per-pulse ones and go through
 *    the sparse SIFT_BASES (encoded, decoded back to the same list).
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "qkd/channel.h"
#include "qkd/sifting.h"
#include "../userspace/qkdd/qkdd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)
#define PULSES		512

static int prob(double x)
{
	return isfinite(x) && x >= 0 && x <= 1;
}

static void simulate(const struct qkd_channel_params *p)
{
	struct qkd_alice_records a;
	struct qkd_bob_records b;
	struct qkd_detections d = { 0 };
	struct qkd_channel_stats st;
	struct qkd_rng rng;

	qkd_rng_seed(&rng, 42);
	if (qkd_alice_records_alloc(&a, PULSES) ||
	    qkd_bob_records_alloc(&b, PULSES))
		abort();
	qkd_alice_prepare(p, &rng, &a);
	memset(&st, 0, sizeof(st));
	CHECK(qkd_channel_transmit(p, &rng, &a, &d, &st) == 0);
	CHECK(d.count <= PULSES && st.detections == d.count);
	for (size_t i = 0; i < d.count; i++)
		CHECK(d.ev[i].pulse < PULSES && d.ev[i].clicks &&
		      d.ev[i].clicks <= 3 && d.ev[i].basis <= 1);
	{
		struct qkd_rng r1 = rng, r2 = rng;
		struct qkd_det_records bd = { 0 };
		struct qkd_sift_announce an;
		uint8_t *msg;
		size_t len;

		CHECK(qkd_bob_records(&d, &r1, &b) == 0);
		CHECK(qkd_bob_det_records(&d, &r2, PULSES, &bd) == 0);
		CHECK(bd.n == d.count);
		for (size_t i = 0; i < bd.n; i++) {
			uint64_t k = bd.r[i].pulse;

			CHECK(qkd_bit_get(b.detected, k));
			CHECK(qkd_bit_get(b.bit, k) == bd.r[i].bit);
			CHECK(qkd_bit_get(b.basis, k) == bd.r[i].basis);
		}
		CHECK(qkd_sift_announce_encode(&bd, &msg, &len) == 0);
		CHECK(qkd_sift_announce_decode(msg, len, PULSES, PULSES, &an,
					       NULL) == 0);
		CHECK(an.n == bd.n);
		for (size_t i = 0; i < an.n; i++)
			CHECK(an.pulse[i] == bd.r[i].pulse &&
			      qkd_bit_get(an.basis, i) == bd.r[i].basis);
		qkd_sift_announce_free(&an);
		free(msg);
		qkd_det_records_free(&bd);
	}
	qkd_detections_free(&d);
	qkd_bob_records_free(&b);
	qkd_alice_records_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkd_channel_params p, before;
	char *spec = malloc(size + 1), err[256];
	int r;

	if (!spec)
		abort();
	memcpy(spec, data, size);
	spec[size] = '\0';
	qkd_channel_params_default(&p);
	memcpy(&before, &p, sizeof(p));
	memset(err, 0, sizeof(err));
	r = qkdd_channel_parse(&p, spec, err, sizeof(err));
	if (r) {
		CHECK(r == -EINVAL);
		CHECK(memchr(err, '\0', sizeof(err)));
		CHECK(!strncmp(err, "channel: ", 9));
		CHECK(!memcmp(&p, &before, sizeof(p)));
	} else {
		CHECK(qkd_channel_params_check(&p, NULL) == 0);
		CHECK(p.n_intensities >= 1 &&
		      p.n_intensities <= QKD_MAX_INTENSITIES);
		CHECK(prob(qkd_channel_transmittance(&p)));
		for (unsigned int c = 0; c < p.n_intensities; c++)
			CHECK(prob(qkd_channel_click_prob(&p, c)));
		simulate(&p);
	}
	free(spec);
	return 0;
}
