/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Secret key length, finite-key, composable: the key is ε_sec-secret and
 * ε_cor-correct (ε_sec + ε_cor-secure overall).
 *
 * Single photons: Tomamichel, Lim, Gisin, Renner, "Tight finite-key
 * analysis for quantum cryptography", Nat. Commun. 3, 634 (2012), Eq. (2):
 *
 *	ℓ = floor( n (1 - h(Q + μ)) - leak_EC - log2(2 / (ε_sec^2 ε_cor)) )
 *	μ = sqrt( (n + k)/(n k) (k + 1)/k ln(2/ε_sec) )
 *
 * n: key bits, k: sampled bits, Q: tolerated (or observed) QBER of the
 * sample, h the binary entropy, leak_EC the bits disclosed by error
 * correction (including the verification hash).
 *
 * Weak coherent pulses with two decoys: Lim, Curty, Walenta, Xu, Zbinden,
 * "Concise security bounds for practical decoy-state quantum key
 * distribution", Phys. Rev. A 89, 022307 (2014). Key from the Z basis,
 * phase error from the X basis, intensities μ1 > μ2 + μ3, μ2 > μ3 >= 0:
 *
 *	ℓ = floor( s_Z0 + s_Z1 (1 - h(φ_Z)) - leak_EC
 *		   - 6 log2(21/ε_sec) - log2(2/ε_cor) )
 *
 * with s_Z0, s_Z1 the lower bounds on vacuum and single-photon events and
 * φ_Z the upper bound on their phase error rate (formulas in keyrate.c and
 * Documentation/protocol.md). A result <= 0 gives ℓ = 0.
 */
#ifndef QKD_KEYRATE_H
#define QKD_KEYRATE_H

#include <stddef.h>
#include <stdint.h>

struct qkd_bb84_input {
	uint64_t n;		/* bits that become key */
	uint64_t k;		/* bits sampled for parameter estimation */
	double qber;		/* Q: QBER tolerated (abort threshold) or seen */
	double leak_ec;		/* bits disclosed by error correction */
	double eps_sec, eps_cor;
};

struct qkd_bb84_detail {
	double mu;		/* statistical deviation */
	double phase;		/* Q + μ */
	double raw;		/* ℓ before rounding and clamping */
};

uint64_t qkd_keylen_bb84(const struct qkd_bb84_input *in,
			 struct qkd_bb84_detail *d);

struct qkd_decoy_input {
	/* intensities: mu[0] = μ1 (signal), mu[1] = μ2, mu[2] = μ3 */
	double mu[3];
	double p[3];		/* probability Alice sends each intensity */
	/* sifted counts per intensity and basis, X-basis errors */
	double n_z[3], n_x[3], m_x[3];
	double leak_ec;		/* leak of the Z-basis key */
	double eps_sec, eps_cor;
};

struct qkd_decoy_detail {
	double s_z0, s_z1;	/* vacuum / single-photon events, Z (lower) */
	double s_x0, s_x1;	/* same, X basis (lower) */
	double v_x1;		/* single-photon errors in X (upper) */
	double phi_z;		/* phase error rate of the Z singles (upper) */
	double raw;		/* ℓ before rounding and clamping */
	const char *why_zero;	/* static reason when ℓ = 0, else NULL */
};

/* 0 with *why_zero set on invalid input (see the constraints above). */
uint64_t qkd_keylen_decoy(const struct qkd_decoy_input *in,
			  struct qkd_decoy_detail *d);

#endif /* QKD_KEYRATE_H */
