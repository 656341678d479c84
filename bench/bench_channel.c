// SPDX-License-Identifier: GPL-2.0-only
/*
 * Channel simulator throughput, pulses/s on one core: Alice's records,
 * the optics, Bob's records and sifting, at several fiber lengths.
 * Baseline: a straightforward per-pulse simulation (Poisson photon number,
 * per-photon loss, per-pulse dark counts) measured in the same run.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "qkd/channel.h"
#include "qkd/sifting.h"

/* Thread CPU time: robust on a shared machine. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Per-pulse reference: sample photons one pulse at a time. */
static size_t per_pulse(const struct qkd_channel_params *p, struct qkd_rng *r,
			const struct qkd_alice_records *a)
{
	double eta = qkd_channel_transmittance(p), pd = p->dark_count_prob;
	size_t i, clicks = 0;

	for (i = 0; i < a->n; i++) {
		double mu = p->mu[a->intensity[i]], l = exp(-mu), pr = 1;
		int photons = -1, det = 0, k;

		do {	/* Knuth's Poisson sampler */
			photons++;
			pr *= qkd_rng_double(r);
		} while (pr > l);
		for (k = 0; k < photons; k++)
			det |= qkd_rng_double(r) < eta;
		det |= qkd_rng_double(r) < pd;
		det |= qkd_rng_double(r) < pd;
		clicks += det;
	}
	return clicks;
}

int main(void)
{
	static const double km[] = { 0, 25, 50, 100, 150 };
	size_t n = 20000000, k;
	struct qkd_channel_params p;
	struct qkd_alice_records a;
	struct qkd_bob_records b;
	struct qkd_rng r;
	double t0, tp, tb;

	qkd_channel_params_default(&p);
	if (qkd_alice_records_alloc(&a, n) || qkd_bob_records_alloc(&b, n))
		return 1;
	qkd_rng_seed(&r, 1);
	t0 = now();
	qkd_alice_prepare(&p, &r, &a);
	tp = now() - t0;
	printf("bench_channel: %zu pulses, WCP mu = 0.5/0.1/0 (p 0.8/0.1/0.1), eta_D 0.2, 0.2 dB/km\n", n);
	printf("baseline: per-pulse simulation (Poisson photons, per-photon loss)\n");
	printf("alice_prepare alone: %.1f Mpulses/s\n\n", (double)n / tp / 1e6);
	printf("%6s %12s %16s %16s %16s %8s\n", "km", "detections",
	       "transmit Mp/s", "end-to-end Mp/s", "per-pulse Mp/s", "ratio");
	for (k = 0; k < sizeof(km) / sizeof(km[0]); k++) {
		struct qkd_detections d = { 0 };
		struct qkd_sifted s;
		double tt, te;
		size_t ref;

		p.length_km = km[k];
		t0 = now();
		if (qkd_channel_transmit(&p, &r, &a, &d, NULL))
			return 1;
		tt = now() - t0;
		if (qkd_bob_records(&d, &r, &b) || qkd_sift_bob(&b, &a, &s))
			return 1;
		te = now() - t0 + tp;
		/* baseline on a tenth of the pulses */
		{
			struct qkd_alice_records sub = a;

			sub.n = n / 10;
			t0 = now();
			ref = per_pulse(&p, &r, &sub);
			tb = (now() - t0) * 10;
		}
		printf("%6.0f %12zu %16.1f %16.1f %16.1f %7.1fx\n", km[k],
		       d.count, (double)n / tt / 1e6, (double)n / te / 1e6,
		       (double)n / tb / 1e6, tb / te);
		if (labs((long)ref * 10 - (long)d.count) > 5 * (long)sqrt((double)d.count) * 4 + 100)
			printf("   (warning: per-pulse reference saw %zu x 10 clicks)\n", ref);
		qkd_sifted_free(&s);
		qkd_detections_free(&d);
	}
	qkd_alice_records_free(&a);
	qkd_bob_records_free(&b);
	return 0;
}
