/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Parameter estimation: QBER on a random sample of the sifted key, and a
 * finite-size upper bound on the phase error of the unsampled bits.
 *
 * Bound (Serfling, "Probability inequalities for the sum in sampling
 * without replacement", Ann. Stat. 2, 1974; in the form used by Tomamichel,
 * Lim, Gisin, Renner, Nat. Commun. 3, 634, 2012): k bits are sampled
 * uniformly without replacement from n + k; if the sample error rate is
 * Q, then the error rate (for BB84: the phase error rate) of the other n
 * bits exceeds Q + μ with probability at most ε_pe, where
 *
 *	μ = sqrt( (n + k) (k + 1) ln(1/ε_pe) / (2 n k^2) ).
 *
 * The key-length formula of Tomamichel et al. uses ε_pe = (ε_sec / 2)^2,
 * which gives their μ = sqrt((n + k)/(n k) (k + 1)/k ln(2/ε_sec)).
 */
#ifndef QKD_ESTIMATE_H
#define QKD_ESTIMATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/channel.h"

/* Binary entropy h(p) = -p log2 p - (1-p) log2(1-p); h(0) = h(1) = 0. */
double qkd_h2(double p);

/* Serfling deviation μ for n unsampled and k sampled bits at failure
 * probability eps (formula above); +inf if n or k is 0. */
double qkd_serfling_mu(size_t n, size_t k, double eps);

/*
 * Random subset of exactly k of N positions as a bit mask (N bits), drawn
 * with r (both sides use the same seed, or one side sends the mask).
 * 0, -EINVAL (k > N).
 */
int qkd_sample_mask(struct qkd_rng *r, size_t N, size_t k, uint64_t *mask);

/* Bits of @in (N bits) where @mask is clear, packed into @out; returns
 * their number. */
size_t qkd_bits_compress_unmasked(const uint64_t *in, const uint64_t *mask,
				  size_t N, uint64_t *out);

struct qkd_estimate_params {
	double qber_abort;	/* abort when the sample QBER exceeds this
				 * (e.g. 0.11: BB84 gives no key above ~11%) */
	double eps_pe;		/* failure probability of the phase bound */
};

struct qkd_estimate {
	size_t k;		/* sampled bits */
	size_t errors;		/* disagreements among them */
	size_t n;		/* unsampled bits left for the key */
	double qber;		/* errors / k */
	double mu;		/* Serfling deviation */
	double phase_bound;	/* qber + mu, upper bound on the phase error */
	bool abort;
	char reason[160];	/* why, when abort; "" otherwise */
};

/*
 * Compare Alice's and Bob's sifted bits (N each) at the positions of
 * @mask. Fills @out; out->abort is set, with a reason, if the sample is
 * empty, the QBER is above the threshold, or the phase bound reaches 1/2.
 * 0 or -EINVAL.
 */
int qkd_estimate_qber(const uint64_t *alice, const uint64_t *bob,
		      const uint64_t *mask, size_t N,
		      const struct qkd_estimate_params *p,
		      struct qkd_estimate *out);

#endif /* QKD_ESTIMATE_H */
