// SPDX-License-Identifier: GPL-2.0-only
/*
 * Privacy amplification throughput: Mbit/s of input (n key bits in, l = n/2
 * bits out, override the ratio with argv[1]) for the fast Toeplitz hash,
 * against the naive O(n l) product (measured at n = 10^6; 10^7 extrapolated
 * from it by the n l scaling; 10^8 would take hours).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/privacy_amp.h"

/* Thread CPU time: the machine is shared, wall time would count the time
 * other processes hold the core. */
static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t st = 42;

static uint64_t rnd(void)
{
	uint64_t z = (st += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t *rbits(size_t n)
{
	size_t w = qkd_bits_words(n), i;
	uint64_t *a = malloc(w * 8);

	if (!a)
		exit(1);
	for (i = 0; i < w; i++)
		a[i] = rnd();
	return a;
}

/* best of @reps runs, seconds */
static double time_fast(const uint64_t *s, const uint64_t *x, size_t n,
			uint64_t *y, size_t l, int reps)
{
	double best = 1e30;
	int r;

	for (r = 0; r < reps; r++) {
		double t0 = now();

		if (qkd_toeplitz_fast(s, x, n, y, l))
			exit(1);
		t0 = now() - t0;
		if (t0 < best)
			best = t0;
	}
	return best;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = { 1000000, 10000000, 100000000 };
	double ratio = argc > 1 ? atof(argv[1]) : 0.5;
	double naive_t = 0, naive_nl = 0;
	size_t k;

	if (ratio <= 0 || ratio > 1)
		ratio = 0.5;
	printf("bench_pa: Toeplitz hashing, l = %.2f n, kernel %s\n", ratio,
	       qkd_pa_impl_name(qkd_pa_get_impl()));
	printf("baseline: naive O(n l) word-parallel product (qkd_toeplitz_naive)\n");
	printf("fast = Karatsuba + carry-less kernel below %zu input bits, additive FFT over GF(2^64) above (with VPCLMULQDQ)\n",
	       qkd_pa_get_fft_threshold());
	printf("times: thread CPU seconds, best of 3 (of 2 at 10^8)\n\n");
	printf("%12s %12s %12s %12s %14s %10s\n", "n", "l", "fast s",
	       "fast Mbit/s", "naive Mbit/s", "ratio");
	for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k], l = (size_t)((double)n * ratio);
		uint64_t *s = rbits(n + l - 1), *x = rbits(n);
		uint64_t *y = malloc(qkd_bits_words(l) * 8);
		uint64_t *y2 = malloc(qkd_bits_words(l) * 8);
		double tf, tn;
		const char *note = "";

		if (!y || !y2)
			return 1;
		tf = time_fast(s, x, n, y, l, n >= 100000000 ? 2 : 3);
		if (k == 0) {
			double t0 = now();

			if (qkd_toeplitz_naive(s, x, n, y2, l))
				return 1;
			naive_t = now() - t0;
			naive_nl = (double)n * (double)l;
			if (memcmp(y, y2, qkd_bits_words(l) * 8)) {
				printf("MISMATCH fast != naive at n=%zu\n", n);
				return 1;
			}
			tn = naive_t;
		} else {
			tn = naive_t * (double)n * (double)l / naive_nl;
			note = " (naive extrapolated)";
		}
		if (k < 2)
			printf("%12zu %12zu %12.4f %12.1f %14.3f %9.0fx%s\n", n, l,
			       tf, (double)n / tf / 1e6, (double)n / tn / 1e6,
			       tn / tf, note);
		else
			printf("%12zu %12zu %12.4f %12.1f %14s %10s\n", n, l, tf,
			       (double)n / tf / 1e6, "-", "-");
		free(s); free(x); free(y); free(y2);
	}
	return 0;
}
