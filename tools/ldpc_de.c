// SPDX-License-Identifier: GPL-2.0-only
/*
 * ldpc_de: offline optimizer of the column degree distribution of
 * userspace/protocol/ldpc.c (rate-adaptive LDPC reconciliation over the
 * BSC). Prints the integer table dist_tab[] that ldpc.c compiles in; the
 * daemon never runs this (both ends must get exactly the same column
 * counts whatever their floating point does, so only the integers of the
 * table are used there).
 *
 * Model. The ensemble of ldpc.c's construction: N = n + p columns, m
 * rows, node fractions x_2 (degree 2, at most m - 1 columns: the path),
 * x_3, x_m (a middle degree d_m) and x_h (a high degree d_h); rows
 * concentrated (degrees floor and ceil of the mean). The p punctured
 * columns are degree-2 columns whose channel LLR is 0 (p / m given with
 * -P: ldpc.c's default_params, MAX_STEPS REVEAL_F / (f0 + MAX_STEPS
 * REVEAL_F) = 0.09 / 1.18). The first attempt leaks m - p, so the
 * efficiency of a distribution is f* = (m - p) / (n h(q*)), q* its BP
 * threshold.
 *
 * Threshold: density evolution in a Gaussian approximation that keeps the
 * BSC's two-point channel exact ("tanh-mean" evolution): check-to-variable
 * messages are taken as consistent Gaussians N(mu, 2 mu); a variable of
 * degree i sends, for a channel LLR c in {+l0 (prob 1 - q), -l0 (prob q)}
 * or 0 (punctured), N(c + (i-1) mu, 2 (i-1) mu); at a row the mean of
 * tanh(L/2) is exactly the product of the inputs' (independent inputs),
 * and mu of the output is the consistent Gaussian's with that tanh mean
 * (one per row degree, their mean passed on). Computed with the
 * error-like quantity e = E[2 / (1 + exp L)] = 1 - E[tanh(L/2)] to keep
 * precision near 1. Converged when e < 1e-12 at the variables; stuck when
 * e fell by less than 0.1 % in 100 iterations; q* by bisection. The
 * approximation ranks distributions; it is optimistic at high rates (rows
 * of 60 ones and more: f* below 1.03 above R 0.9, 1.00 at R 0.96, cannot
 * be right). The measured efficiency at 2^16-bit frames (bench_ldpc) is
 * the arbiter; Documentation/protocol.md gives both. For the former
 * hand-tuned code at R 0.83 ({2, 3, 14}: -t -r 0.831 -x
 * 0.169,0,0,0.25,14 -P 0.068) it gives f* 1.076 (1.082 at -P 0.076),
 * where population dynamics gave
 * 1.08-1.09.
 *
 * Optimization, per mother rate R = 1 - m/N of the table (0.40 to 0.97 by
 * 0.01): at an anchor rate (every -a hundredths) and for each pair
 * (d_m, d_h) of -d, a coarse grid over (x_2, x_m, x_h), then a pattern
 * search (coordinate steps of 0.02 halved to 0.002); between anchors, and
 * at anchors as one more candidate, a pattern search from the previous
 * rate's optimum (steps of 0.005). The landscape has local optima (the
 * stuck test is not smooth), hence the grid. The best f* is kept.
 *
 * usage: ldpc_de [-r R] [-P p/m] [-d dm:dh,...] [-a anchor] [-t -x ...]
 *   -r R   one rate only, each pair's optimum on stderr (no warm start
 *          from the neighbour rates: can stop at a worse local optimum
 *          than the whole table's run)
 *   -P     punctured bits over syndrome bits (default 0.068)
 *   -d     pairs of degrees tried, dm 0: none (default
 *          0:12,6:20,8:24,8:30)
 *   -a     anchor spacing in hundredths of rate (default 5)
 *   -t -x x2,xm,dm,xh,dh  the threshold of one distribution (with -r, -P)
 *
 * ldpc.c's table: ldpc_de -d 8:24 -a 5 -P 0.076 (4 minutes on one core);
 * ldpc.c then moves 3750 of 10^5 columns from degree 8 and 3000 to degree
 * 24 in the rows from rate 0.75 up (measured better: see ldpc.c).
 *
 * Build: cc -O2 -o build/tools/ldpc_de tools/ldpc_de.c -lm
 */
#define _POSIX_C_SOURCE 200809L	/* getopt */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NZ	61	/* trapezoid nodes of the standard normal, z in [-7.5, 7.5] */
static double zn[NZ], zw[NZ];

static void quad_init(void)
{
	double h = 15.0 / (NZ - 1), s = 0;
	int i;

	for (i = 0; i < NZ; i++) {
		zn[i] = -7.5 + h * i;
		zw[i] = exp(-zn[i] * zn[i] / 2);
		s += zw[i];
	}
	for (i = 0; i < NZ; i++)
		zw[i] /= s;
}

/* E[2 / (1 + exp X)], X ~ N(a, v) */
static double gerr(double a, double v)
{
	double sd = sqrt(v), s = 0;
	int i;

	if (v <= 0)
		return 2 / (1 + exp(a));
	for (i = 0; i < NZ; i++) {
		double x = a + sd * zn[i];

		s += zw[i] * (x > 0 ? 2 * exp(-x) / (1 + exp(-x)) : 2 / (1 + exp(x)));
	}
	return s;
}

/* The consistent Gaussian: e(mu) = gerr(mu, 2 mu); a table and its inverse. */
#define NT 4000
static double tmu[NT], tle[NT];

static void tab_init(void)
{
	int i;

	for (i = 0; i < NT; i++) {
		tmu[i] = 1e-6 * pow(1e8, (double)i / (NT - 1));	/* 1e-6 .. 100 */
		tle[i] = log(gerr(tmu[i], 2 * tmu[i]));
	}
}

static double mu_of_err(double e)
{
	double le;
	int lo = 0, hi = NT - 1;

	if (e >= 1)
		return 0;
	le = log(e);
	if (le >= tle[0])
		return tmu[0] * (1 - e) / (1 - exp(tle[0]));
	if (le <= tle[NT - 1])
		return tmu[NT - 1];
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;

		if (tle[mid] > le)
			lo = mid;
		else
			hi = mid;
	}
	return tmu[lo] + (tmu[hi] - tmu[lo]) * (le - tle[lo]) /
	       (tle[hi] - tle[lo]);
}

struct dist {
	double x2, x3, xh;	/* node fractions */
	int dh;
	double xm;		/* a middle degree dm (0: none) */
	int dm;
	double R;		/* mother rate 1 - m/N */
	double pm;		/* p / m */
};

/* 1 if BP converges at crossover q. */
static int converges(const struct dist *d, double q)
{
	double l0 = log((1 - q) / q), dbar, xp, ed[4], lam[4], rl, rh;
	double mu = 0, prev = 2;	/* e 100 iterations ago */
	int deg[4] = { 2, 3, d->dh, d->dm ? d->dm : 4 }, dl, i, it;

	dbar = 2 * d->x2 + 3 * d->x3 + d->dh * d->xh + deg[3] * d->xm;
	lam[0] = 2 * d->x2 / dbar;
	lam[1] = 3 * d->x3 / dbar;
	lam[2] = d->dh * d->xh / dbar;
	lam[3] = deg[3] * d->xm / dbar;
	/* punctured: fraction of the degree-2 columns */
	xp = d->pm * (1 - d->R) / d->x2;
	if (xp > 1)
		return 0;
	rl = dbar / (1 - d->R);
	dl = (int)floor(rl);
	rh = rl - dl;		/* fraction of rows of degree dl + 1 ... */
	/* ... as edge fractions */
	rh = rh * (dl + 1) / rl;
	for (it = 0; it < 3000; it++) {
		double e = 0, t, el, eh, mul, muh;

		for (i = 0; i < 4; i++) {
			double v = 2 * (deg[i] - 1) * mu, a = (deg[i] - 1) * mu;

			ed[i] = (1 - q) * gerr(l0 + a, v) + q * gerr(-l0 + a, v);
			if (i == 0)
				ed[i] = (1 - xp) * ed[i] + xp * gerr(a, v);
			e += lam[i] * ed[i];
		}
		if (e < 1e-12)
			return 1;
		if (it % 100 == 99) {
			if (e > prev * 0.999)
				return 0;	/* stuck at a fixed point */
			prev = e;
		}
		t = log1p(-e);
		el = -expm1((dl - 1) * t);
		eh = -expm1(dl * t);
		mul = mu_of_err(el);
		muh = mu_of_err(eh);
		/* the variables see a mix of row degrees: mean of the means */
		mu = (1 - rh) * mul + rh * muh;
	}
	return 0;
}

static double h2(double q)
{
	return -q * log2(q) - (1 - q) * log2(1 - q);
}

static double threshold(const struct dist *d)
{
	double lo = 1e-4, hi = 0.3;
	int k;

	if (d->x2 < 0 || d->x3 < 0 || d->xh < 0 || d->xm < 0)
		return 0;
	if (!converges(d, lo))
		return 0;
	for (k = 0; k < 16; k++) {
		double mid = sqrt(lo * hi);

		if (converges(d, mid))
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* efficiency of the first attempt at the threshold */
static double eff(const struct dist *d, double qs)
{
	double m = 1 - d->R, p = d->pm * m, n = 1 - p;

	return qs > 0 ? (m - p) / (n * h2(qs)) : 99;
}

static double cost(struct dist *d, const double x[3])
{
	if (x[0] < 0.01 || x[1] < 0 || x[2] < 0.005 || x[0] > 1 - d->R ||
	    x[0] + x[1] + x[2] > 1 || (!d->dm && x[1] > 0))
		return 99;
	d->x2 = x[0];
	d->xm = x[1];
	d->xh = x[2];
	d->x3 = 1 - x[0] - x[1] - x[2];
	return eff(d, threshold(d));
}

/*
 * Pattern search on (x2, xm, xh): try +-step on each coordinate, keep any
 * improvement, halve the step when none; from a start with x2 at 0.8 of
 * its bound.
 */
static double optimize(struct dist *d, double x[3], int warm)
{
	double step, f, best;
	int k, s, moved;

	static const double g2[] = { 0.5, 0.7, 0.85, 1.0 };
	static const double gm[] = { 0, 0.05, 0.1, 0.15 };
	static const double gh[] = { 0.1, 0.15, 0.2, 0.25, 0.3 };
	int a, b, c;

	/* a coarse grid first: the landscape has local optima */
	best = 99;
	if (warm) {	/* from x, a neighbour rate's optimum */
		if (x[0] > 1 - d->R)
			x[0] = 1 - d->R;
		best = cost(d, x);
	}
	for (a = 0; a < 4 && !warm; a++)
		for (b = 0; b < (d->dm ? 4 : 1); b++)
			for (c = 0; c < 5; c++) {
				double y[3] = { g2[a] * (1 - d->R), gm[b], gh[c] };

				f = cost(d, y);
				if (f < best) {
					best = f;
					memcpy(x, y, sizeof(y));
				}
			}
	step = warm ? 0.005 : 0.02;
	while (step > 0.002) {
		moved = 0;
		for (k = 0; k < 3; k++) {
			if (k == 1 && !d->dm)
				continue;
			for (s = -1; s <= 1; s += 2) {
				double y[3] = { x[0], x[1], x[2] };

				y[k] += s * step;
				if (k == 0 && y[0] > 1 - d->R)
					y[0] = 1 - d->R;
				f = cost(d, y);
				if (f < best - 1e-5) {
					best = f;
					memcpy(x, y, sizeof(y));
					moved = 1;
					break;
				}
			}
		}
		if (!moved)
			step /= 2;
	}
	cost(d, x);
	return best;
}

int main(int argc, char **argv)
{
	/* (dm, dh) pairs tried; dm 0: three degrees 2, 3, dh */
	int pairs[32][2] = { { 0, 12 }, { 6, 20 }, { 8, 24 },
			     { 8, 30 } }, np = 4, o, test = 0;
	double R1 = 0, pm = 0.068, tx[5] = { 0 };
	int r0, r1, ri, k, anchor = 5, np_skip;
	struct dist best = { 0 };

	while ((o = getopt(argc, argv, "r:P:d:tx:a:")) != -1) {
		switch (o) {
		case 'a':
			anchor = atoi(optarg);
			break;
		case 'r':
			R1 = strtod(optarg, NULL);
			break;
		case 'P':
			pm = strtod(optarg, NULL);
			break;
		case 'd': {
			char *s = optarg;

			for (np = 0; np < 32 && *s; np++) {
				pairs[np][0] = (int)strtol(s, &s, 10);
				if (*s == ':')
					s++;
				pairs[np][1] = (int)strtol(s, &s, 10);
				if (*s == ',')
					s++;
			}
			break;
		}
		case 't':
			test = 1;
			break;
		case 'x':
			sscanf(optarg, "%lf,%lf,%lf,%lf,%lf", &tx[0], &tx[1],
			       &tx[2], &tx[3], &tx[4]);
			break;
		default:
			fprintf(stderr, "usage: %s [-r R] [-P p/m] [-d dm:dh,...] [-a anchor]\n"
				"\t[-t -x x2,xm,dm,xh,dh]\n", argv[0]);
			return 2;
		}
	}
	quad_init();
	tab_init();
	if (test) {
		struct dist d = { 0 };
		double qs;

		d.R = R1;
		d.pm = pm;
		d.x2 = tx[0];
		d.xm = tx[1];
		d.dm = (int)tx[2];
		d.xh = tx[3];
		d.dh = (int)tx[4];
		d.x3 = 1 - d.x2 - d.xm - d.xh;
		qs = threshold(&d);
		printf("R %.3f x2 %.4f x3 %.4f x%d %.4f x%d %.4f: q* %.5f f* %.4f\n",
		       R1, d.x2, d.x3, d.dm, d.xm, d.dh, d.xh, qs, eff(&d, qs));
		return 0;
	}
	r0 = R1 ? (int)lround(R1 * 100) : 40;
	r1 = R1 ? r0 : 97;
	printf("/* { degree 2, dm, dh (per 10^5 columns), dm, dh }, the rest 3;"
	       " R %.2f-%.2f, p/m %.3f */\n", r0 / 100.0, r1 / 100.0, pm);
	for (ri = r0; ri <= r1; ri++) {
		np_skip = 0;
		struct dist d = { 0 };
		double bf = 99, x[3], f;

		if (ri != r0) {
			/*
			 * From the previous rate's optimum (warm start); at an
			 * anchor (every -a hundredths) also from a grid for each
			 * pair of degrees, the best kept.
			 */
			d = best;
			d.R = ri / 100.0;
			x[0] = best.x2;
			x[1] = best.xm;
			x[2] = best.xh;
			bf = optimize(&d, x, 1);
			best = d;
			np_skip = ri % anchor != 0;
		}
		for (k = 0; k < np && !np_skip; k++) {
			d.R = ri / 100.0;
			d.pm = pm;
			d.dm = pairs[k][0];
			d.dh = pairs[k][1];
			f = optimize(&d, x, 0);
			if (R1)
				fprintf(stderr, "R %.2f dm %2d dh %2d: x2 %.4f xm %.4f xh %.4f f* %.4f\n",
					d.R, d.dm, d.dh, x[0], x[1], x[2], f);
			if (f < bf) {
				bf = f;
				best = d;
			}
		}
		printf("\t{ %5ld, %5ld, %5ld, %2d, %2d },\t/* R %.2f: f* %.4f, q* %.4f */\n",
		       lround(best.x2 * 1e5), lround(best.xm * 1e5),
		       lround(best.xh * 1e5), best.dm, best.dh, best.R, bf,
		       threshold(&best));
		fflush(stdout);
	}
	return 0;
}
