// SPDX-License-Identifier: GPL-2.0-only
/*
 * Finite-key secret key length (see qkd/keyrate.h for references).
 *
 * Decoy-state bounds (Lim et al. 2014), for basis B in {Z, X}, intensity k:
 *
 *   n^±_{B,k} = e^{μ_k}/p_k ( n_{B,k} ± sqrt(n_B/2 ln(21/ε_sec)) )
 *		(Hoeffding; n_B = sum_k n_{B,k})
 *   τ_j = sum_k p_k e^{-μ_k} μ_k^j / j!
 *   s_{B,0} >= τ_0 (μ2 n^-_{B,μ3} - μ3 n^+_{B,μ2}) / (μ2 - μ3)
 *   s_{B,1} >= τ_1 μ1 [ n^-_{B,μ2} - n^+_{B,μ3}
 *		 - (μ2² - μ3²)/μ1² (n^+_{B,μ1} - s_{B,0}/τ_0) ]
 *		/ ( μ1 (μ2 - μ3) - μ2² + μ3² )
 *   v_{X,1} <= τ_1 (m^+_{X,μ2} - m^-_{X,μ3}) / (μ2 - μ3)
 *   φ_Z <= v_{X,1}/s_{X,1} + γ(ε_sec, v_{X,1}/s_{X,1}, s_{Z,1}, s_{X,1}),
 *	and never below ln(21/ε_sec) / (s_{Z,1} ln(1 + s_{X,1}/s_{Z,1}))
 *	(the exact bound when no X error is seen, where γ vanishes)
 *   γ(a,b,c,d) = sqrt( (c+d)(1-b)b/(c d ln 2)
 *		       log2( (c+d)/(c d (1-b) b) 21²/a² ) )
 *   ℓ = s_{Z,0} + s_{Z,1} (1 - h(φ_Z)) - leak_EC - 6 log2(21/ε_sec)
 *       - log2(2/ε_cor)
 *
 * with m^± like n^± on the X-basis error counts m_{X,k}.
 */
#include <math.h>
#include <string.h>

#include "qkd/estimate.h"
#include "qkd/keyrate.h"

static uint64_t clamp_len(double raw)
{
	if (!(raw >= 1))	/* also NaN */
		return 0;
	if (raw >= 1.8e19)
		return UINT64_MAX;
	return (uint64_t)floor(raw);
}

uint64_t qkd_keylen_bb84(const struct qkd_bb84_input *in,
			 struct qkd_bb84_detail *d)
{
	struct qkd_bb84_detail t;
	double n = (double)in->n;

	memset(&t, 0, sizeof(t));
	if (!in->n || !in->k || !(in->eps_sec > 0 && in->eps_sec < 1) ||
	    !(in->eps_cor > 0 && in->eps_cor < 1) || !(in->qber >= 0) ||
	    !(in->leak_ec >= 0)) {
		t.raw = NAN;
		goto out;
	}
	/* Serfling with failure probability (ε_sec/2)²: see estimate.h */
	t.mu = qkd_serfling_mu(in->n, in->k, in->eps_sec * in->eps_sec / 4);
	t.phase = in->qber + t.mu;
	if (t.phase >= 0.5) {
		t.raw = -INFINITY;
		goto out;
	}
	t.raw = n * (1 - qkd_h2(t.phase)) - in->leak_ec -
		log2(2 / (in->eps_sec * in->eps_sec * in->eps_cor));
out:
	if (d)
		*d = t;
	return clamp_len(t.raw);
}

static double gamma_fn(double a, double b, double c, double dd)
{
	double v = (c + dd) * (1 - b) * b / (c * dd * log(2)) *
		   log2((c + dd) / (c * dd * (1 - b) * b) * 21 * 21 / (a * a));

	return v > 0 ? sqrt(v) : 0;
}

/* Lower bounds on vacuum and single-photon events in one basis. */
static void singles(const struct qkd_decoy_input *in, const double cnt[3],
		    double ln21, double tau0, double tau1, double *s0,
		    double *s1)
{
	const double *mu = in->mu;
	double tot = cnt[0] + cnt[1] + cnt[2];
	double dev = sqrt(tot / 2 * ln21), np[3], nm[3], v0, v1;
	int k;

	for (k = 0; k < 3; k++) {
		double f = exp(mu[k]) / in->p[k];

		np[k] = f * (cnt[k] + dev);
		nm[k] = f * (cnt[k] - dev);
	}
	v0 = tau0 * (mu[1] * nm[2] - mu[2] * np[1]) / (mu[1] - mu[2]);
	if (v0 < 0)
		v0 = 0;
	v1 = tau1 * mu[0] *
	     (nm[1] - np[2] - (mu[1] * mu[1] - mu[2] * mu[2]) / (mu[0] * mu[0]) *
				  (np[0] - v0 / tau0)) /
	     (mu[0] * (mu[1] - mu[2]) - mu[1] * mu[1] + mu[2] * mu[2]);
	if (v1 < 0)
		v1 = 0;
	*s0 = v0;
	*s1 = v1;
}

uint64_t qkd_keylen_decoy(const struct qkd_decoy_input *in,
			  struct qkd_decoy_detail *d)
{
	struct qkd_decoy_detail t;
	const double *mu = in->mu;
	double tau0 = 0, tau1 = 0, ln21, mtot, dev, mp, mm, b, phi0;
	int k;

	memset(&t, 0, sizeof(t));
	t.raw = NAN;
	if (!(mu[0] > mu[1] + mu[2]) || !(mu[1] > mu[2]) || !(mu[2] >= 0)) {
		t.why_zero = "intensities must satisfy mu1 > mu2 + mu3, mu2 > mu3 >= 0";
		goto out;
	}
	if (!(in->eps_sec > 0 && in->eps_sec < 1) ||
	    !(in->eps_cor > 0 && in->eps_cor < 1) || !(in->leak_ec >= 0)) {
		t.why_zero = "eps_sec, eps_cor must be in (0, 1), leak_ec >= 0";
		goto out;
	}
	for (k = 0; k < 3; k++) {
		if (!(in->p[k] > 0) || !(in->n_z[k] >= 0) ||
		    !(in->n_x[k] >= 0) || !(in->m_x[k] >= 0) ||
		    in->m_x[k] > in->n_x[k]) {
			t.why_zero = "need p_k > 0 and 0 <= m_x <= n_x counts";
			goto out;
		}
		tau0 += in->p[k] * exp(-mu[k]);
		tau1 += in->p[k] * exp(-mu[k]) * mu[k];
	}
	ln21 = log(21 / in->eps_sec);
	singles(in, in->n_z, ln21, tau0, tau1, &t.s_z0, &t.s_z1);
	singles(in, in->n_x, ln21, tau0, tau1, &t.s_x0, &t.s_x1);
	mtot = in->m_x[0] + in->m_x[1] + in->m_x[2];
	dev = sqrt(mtot / 2 * ln21);
	mp = exp(mu[1]) / in->p[1] * (in->m_x[1] + dev);
	mm = exp(mu[2]) / in->p[2] * (in->m_x[2] - dev);
	t.v_x1 = tau1 * (mp - mm) / (mu[1] - mu[2]);
	if (t.s_z1 <= 0 || t.s_x1 <= 0) {
		t.why_zero = "no single-photon events can be guaranteed (decoy bound is zero)";
		t.raw = -INFINITY;
		goto out;
	}
	b = t.v_x1 / t.s_x1;
	if (b >= 0.5) {
		t.phi_z = b;
		t.why_zero = "single-photon phase error rate bound reaches 50%";
		t.raw = -INFINITY;
		goto out;
	}
	if (b <= 0)
		b = 0;
	t.phi_z = b + (b > 0 ? gamma_fn(in->eps_sec, b, t.s_z1, t.s_x1) : 0);
	/*
	 * γ vanishes at b = 0 (its b(1 - b) factor: the Stirling-based
	 * bound behind it needs b > 0), which left no statistical
	 * correction when no X error was seen. The exact form there, for
	 * sampling without replacement: t phase errors among the c + d
	 * single-photon events all fall in Z (c of them) with probability
	 * C(c, t)/C(c + d, t) <= (c/(c + d))^t, at most ε_sec/21 (the share
	 * of γ) once t >= ln(21/ε_sec)/ln(1 + d/c). φ_Z never goes below
	 * t/c: seeing errors cannot give a smaller bound than seeing none.
	 */
	phi0 = log(21 / in->eps_sec) / (t.s_z1 * log1p(t.s_x1 / t.s_z1));
	if (t.phi_z < phi0)
		t.phi_z = phi0;
	if (t.phi_z >= 0.5) {
		t.why_zero = "single-photon phase error rate bound reaches 50%";
		t.raw = -INFINITY;
		goto out;
	}
	t.raw = t.s_z0 + t.s_z1 * (1 - qkd_h2(t.phi_z)) - in->leak_ec -
		6 * log2(21 / in->eps_sec) - log2(2 / in->eps_cor);
	if (!(t.raw >= 1))
		t.why_zero = "finite-key corrections exceed the extractable entropy";
out:
	if (d)
		*d = t;
	return clamp_len(t.raw);
}
