// SPDX-License-Identifier: GPL-2.0-only
/*
 * BB84 channel model (see qkd/channel.h).
 *
 * Physics, per pulse of intensity class c (mean photon number μ_c):
 *   fiber transmittance   η_F = 10^(-α L / 10)
 *   total                 η   = η_F η_D
 *   signal detection      P_s(c) = 1 - exp(-η μ_c)   (WCP, Poisson photons)
 *                                = η                 (single photons)
 *   any click             P_c(c) = 1 - (1 - P_s(c)) (1 - p_d)^2
 * A detected photon goes to the detector of the state's bit when Bob's
 * basis matches the state's basis (flipped with probability e_d), else to
 * a random detector. Dark counts hit each detector independently.
 *
 * Only detections are sampled: candidate pulses are drawn with geometric
 * gaps at rate max_c P_c(c), each kept with probability P_c(class)/max,
 * and the click pattern is drawn conditioned on a click. This gives the
 * same distribution as a per-pulse simulation at a cost proportional to the
 * number of detections.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <openssl/rand.h>

#include "qkd/channel.h"
#include "qkd/prng.h"
#include "qkd/secmem.h"

/* ---------------------------------------------------------------- rng */

void qkd_rng_seed(struct qkd_rng *r, uint64_t seed)
{
	int i;

	memset(r, 0, sizeof(*r));
	for (i = 0; i < 4; i++)
		r->s[i] = qkd_splitmix64(&seed);
}

static int os_fill(struct qkd_rng *r)
{
	size_t got = 0;

	if (r->drbg) {
		if (RAND_priv_bytes((unsigned char *)r->buf,
				    (int)sizeof(r->buf)) != 1)
			return -EIO;
		r->pos = 0;
		return 0;
	}

	while (got < sizeof(r->buf)) {
		ssize_t k = getrandom((char *)r->buf + got,
				      sizeof(r->buf) - got, 0);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)k;
	}
	r->pos = 0;
	return 0;
}

int qkd_rng_os(struct qkd_rng *r)
{
	memset(r, 0, sizeof(*r));
	r->os = true;
	return os_fill(r);
}

int qkd_rng_drbg(struct qkd_rng *r)
{
	memset(r, 0, sizeof(*r));
	r->os = true;
	r->drbg = true;
	return os_fill(r);
}

uint64_t qkd_rng_u64(struct qkd_rng *r)
{
	uint64_t *s = r->s;

	if (r->os) {
		if (r->pos >= sizeof(r->buf) / sizeof(r->buf[0]) &&
		    os_fill(r))
			abort();	/* neither fails once seeded */
		return r->buf[r->pos++];
	}
	return qkd_xoshiro256ss(s);
}

double qkd_rng_double(struct qkd_rng *r)
{
	return (double)(qkd_rng_u64(r) >> 11) * 0x1.0p-53;
}

/* Threshold t so that (u64 < t) has probability p. */
static uint64_t prob_threshold(double p)
{
	if (p <= 0)
		return 0;
	if (p >= 1)
		return UINT64_MAX;
	return (uint64_t)(p * 0x1.0p64);
}

static inline unsigned int bern(struct qkd_rng *r, double p)
{
	return qkd_rng_double(r) < p;
}

/* ----------------------------------------------------------- params */

void qkd_channel_params_default(struct qkd_channel_params *p)
{
	memset(p, 0, sizeof(*p));
	p->source = QKD_SOURCE_WCP;
	p->n_intensities = 3;
	p->mu[0] = 0.5;
	p->mu[1] = 0.1;
	p->mu[2] = 0.0;
	p->p_intensity[0] = 0.8;
	p->p_intensity[1] = 0.1;
	p->p_intensity[2] = 0.1;
	p->p_z_alice = 0.5;
	p->p_z_bob = 0.5;
	p->length_km = 25;
	p->loss_db_per_km = 0.2;
	p->det_efficiency = 0.2;
	p->dark_count_prob = 1e-6;
	p->misalignment = 0.01;
}

static int prob_ok(double x)
{
	return x >= 0 && x <= 1;
}

int qkd_channel_params_check(const struct qkd_channel_params *p,
			     const char **why)
{
	const char *w = NULL;
	double sum = 0;
	unsigned int c;

	if (p->source != QKD_SOURCE_SINGLE_PHOTON &&
	    p->source != QKD_SOURCE_WCP)
		w = "unknown source kind";
	else if (p->n_intensities < 1 ||
		 p->n_intensities > QKD_MAX_INTENSITIES)
		w = "n_intensities must be 1..3";
	else if (p->source == QKD_SOURCE_SINGLE_PHOTON && p->n_intensities != 1)
		w = "a single-photon source has one intensity";
	else if (!prob_ok(p->p_z_alice) || !prob_ok(p->p_z_bob))
		w = "basis probabilities must be in [0, 1]";
	else if (!(p->length_km >= 0) || !(p->loss_db_per_km >= 0))
		w = "fiber length and loss must be >= 0";
	else if (!prob_ok(p->det_efficiency) || !prob_ok(p->dark_count_prob) ||
		 !(p->misalignment >= 0 && p->misalignment <= 0.5))
		w = "detector efficiency, dark counts in [0, 1], misalignment in [0, 0.5]";
	else if (!prob_ok(p->eve_ir_fraction))
		w = "intercept-resend fraction must be in [0, 1]";
	else if (p->eve_basis != QKD_EVE_BASIS_RANDOM &&
		 p->eve_basis != QKD_EVE_BASIS_Z &&
		 p->eve_basis != QKD_EVE_BASIS_X)
		w = "unknown intercept-resend basis";
	else if (p->eve_split != QKD_EVE_SPLIT_NONE &&
		 p->eve_split != QKD_EVE_BEAM_SPLIT &&
		 p->eve_split != QKD_EVE_PNS)
		w = "unknown eavesdropper splitting attack";
	for (c = 0; !w && c < p->n_intensities; c++) {
		if (!prob_ok(p->p_intensity[c]))
			w = "intensity probabilities must be in [0, 1]";
		else if (p->source == QKD_SOURCE_WCP &&
			 !(p->mu[c] >= 0 && p->mu[c] <= 100))
			w = "mean photon numbers must be in [0, 100]";
		sum += p->p_intensity[c];
	}
	if (!w && p->source == QKD_SOURCE_WCP && fabs(sum - 1) > 1e-9)
		w = "intensity probabilities must sum to 1";
	if (why)
		*why = w;
	return w ? -EINVAL : 0;
}

/* ------------------------------------------------------------ model */

double qkd_channel_transmittance(const struct qkd_channel_params *p)
{
	return pow(10, -p->loss_db_per_km * p->length_km / 10) *
	       p->det_efficiency;
}

static unsigned int n_classes(const struct qkd_channel_params *p)
{
	return p->source == QKD_SOURCE_SINGLE_PHOTON ? 1 : p->n_intensities;
}

/* Probability that a signal photon (not a dark count) is detected. */
static double signal_prob(const struct qkd_channel_params *p, unsigned int c)
{
	double eta = qkd_channel_transmittance(p), etad = p->det_efficiency;
	double mu = p->mu[c];

	if (p->eve_split == QKD_EVE_PNS) {
		/* n >= 2 photons: n - 1 reach the detector losslessly */
		double e = exp(-mu), s;

		if (p->source == QKD_SOURCE_SINGLE_PHOTON)
			return 0;
		if (etad >= 1)
			return 1 - e - mu * e;
		/* sum_{n>=2} Pois(n) (1 - etad)^(n-1) */
		s = e * (exp(mu * (1 - etad)) - 1 - mu * (1 - etad)) /
		    (1 - etad);
		return (1 - e - mu * e) - s;
	}
	if (p->source == QKD_SOURCE_SINGLE_PHOTON)
		return eta;
	return -expm1(-eta * mu);
}

/* Probability Eve holds a photon of a pulse of class c (splitting). */
static double eve_photon_prob(const struct qkd_channel_params *p,
			      unsigned int c)
{
	double etaf = pow(10, -p->loss_db_per_km * p->length_km / 10);

	if (p->source == QKD_SOURCE_SINGLE_PHOTON)
		return 0;
	switch (p->eve_split) {
	case QKD_EVE_BEAM_SPLIT:
		return -expm1(-p->mu[c] * (1 - etaf));
	case QKD_EVE_PNS:
		return 1;	/* every detected pulse had n >= 2 */
	default:
		return 0;
	}
}

double qkd_channel_click_prob(const struct qkd_channel_params *p,
			      unsigned int c)
{
	double q = 1 - p->dark_count_prob;

	return 1 - (1 - signal_prob(p, c)) * q * q;
}

double qkd_channel_expected_qber(const struct qkd_channel_params *p,
				 unsigned int c)
{
	double ps = signal_prob(p, c), pd = p->dark_count_prob;
	double ed = p->misalignment, err, click;

	err = ps * ((1 - ed) * pd / 2 + ed * (1 - pd / 2)) +
	      (1 - ps) * (pd * (1 - pd) + pd * pd / 2);
	click = qkd_channel_click_prob(p, c);
	return click > 0 ? err / click : 0;
}

/* ---------------------------------------------------------- records */

int qkd_alice_records_alloc(struct qkd_alice_records *a, size_t n)
{
	memset(a, 0, sizeof(*a));
	a->n = n;
	a->bit = qkd_bits_alloc(n, 0);
	a->basis = qkd_bits_alloc(n, 0);
	a->intensity = qkd_secmem_alloc(n);
	if (!a->bit || !a->basis || !a->intensity) {
		qkd_alice_records_free(a);
		return -ENOMEM;
	}
	return 0;
}

void qkd_alice_records_free(struct qkd_alice_records *a)
{
	qkd_bits_free(a->bit, a->n, 0);
	qkd_bits_free(a->basis, a->n, 0);
	qkd_secmem_free(a->intensity, a->n);
	memset(a, 0, sizeof(*a));
}

/* Word of 64 independent bits, each 1 with probability p (p = 1/2 fast). */
static uint64_t bern_word(struct qkd_rng *r, double p, uint64_t thr)
{
	uint64_t w = 0;
	int i;

	if (p == 0.5)
		return qkd_rng_u64(r);
	if (thr == 0)
		return 0;
	if (thr == UINT64_MAX)
		return ~(uint64_t)0;
	for (i = 0; i < 64; i++)
		w |= (uint64_t)(qkd_rng_u64(r) < thr) << i;
	return w;
}

void qkd_alice_prepare(const struct qkd_channel_params *p, struct qkd_rng *r,
		       struct qkd_alice_records *a)
{
	size_t nw = qkd_bits_words(a->n), i;
	/* basis bit 1 = X, with probability 1 - p_Z */
	uint64_t thr_x = prob_threshold(1 - p->p_z_alice);
	uint64_t c1 = 0, c2 = 0;
	unsigned int nc = n_classes(p);

	for (i = 0; i < nw; i++) {
		a->bit[i] = qkd_rng_u64(r);
		a->basis[i] = bern_word(r, 1 - p->p_z_alice, thr_x);
	}
	qkd_bits_trim(a->bit, a->n);
	qkd_bits_trim(a->basis, a->n);
	if (nc == 1) {
		memset(a->intensity, 0, a->n);
		return;
	}
	/* class: u < P0 -> 0, u < P0 + P1 -> 1, else 2; 32-bit uniforms */
	c1 = (uint64_t)(p->p_intensity[0] * 4294967296.0);
	c2 = (uint64_t)((p->p_intensity[0] + p->p_intensity[1]) *
			4294967296.0);
	if (nc == 2)
		c2 = (uint64_t)1 << 32;
	for (i = 0; i + 1 < a->n; i += 2) {
		uint64_t u = qkd_rng_u64(r), lo = u & 0xffffffffu, hi = u >> 32;

		a->intensity[i] = (uint8_t)((lo >= c1) + (lo >= c2));
		a->intensity[i + 1] = (uint8_t)((hi >= c1) + (hi >= c2));
	}
	if (i < a->n) {
		uint64_t lo = qkd_rng_u64(r) & 0xffffffffu;

		a->intensity[i] = (uint8_t)((lo >= c1) + (lo >= c2));
	}
}

void qkd_detections_free(struct qkd_detections *d)
{
	qkd_secmem_free(d->ev, d->cap * sizeof(*d->ev));
	memset(d, 0, sizeof(*d));
}

/*
 * Grow an array of secret records (Alice's choices, Bob's bits) from @cap
 * to @ncap elements of @size bytes, @used of them kept: a new allocation,
 * the old one wiped before it is freed (realloc() could leave a copy of the
 * records in freed memory), from qkd_secmem_alloc(): a round's arrays are
 * tens of MiB. 0 with *@arr and *@cap updated, or -ENOMEM with
 * both untouched.
 */
static int secret_grow(void **arr, size_t *cap, size_t used, size_t ncap,
		       size_t size)
{
	void *n;

	if (ncap <= *cap)
		return 0;
	if (ncap > SIZE_MAX / size)
		return -ENOMEM;
	n = qkd_secmem_alloc(ncap * size);
	if (!n)
		return -ENOMEM;
	if (*arr) {
		memcpy(n, *arr, used * size);
		qkd_secmem_free(*arr, *cap * size);
	}
	*arr = n;
	*cap = ncap;
	return 0;
}

int qkd_detections_reserve(struct qkd_detections *d, size_t cap)
{
	void *ev = d->ev;
	int err = secret_grow(&ev, &d->cap, d->count, cap, sizeof(*d->ev));

	d->ev = ev;
	return err;
}

static inline int det_push(struct qkd_detections *d,
			   const struct qkd_detection *e)
{
	if (d->count == d->cap &&
	    qkd_detections_reserve(d, d->cap ? d->cap * 2 : 4096))
		return -ENOMEM;
	d->ev[d->count++] = *e;
	return 0;
}

/* Geometric gap: number of failures before a success of probability p. */
static uint64_t geom(struct qkd_rng *r, double log1mp)
{
	double u = 1.0 - qkd_rng_double(r);	/* (0, 1] */
	double k = floor(log(u) / log1mp);

	return k >= 1.8e19 ? UINT64_MAX : (uint64_t)k;
}

/*
 * One click of a pulse of class c whose click probability is pc (>0):
 * signal photon or dark counts only (conditioned on at least one click),
 * Eve, Bob's basis, misalignment, the detectors. @sig_ratio = P(signal
 * photon detected) / pc, @peve the probability Eve holds a photon of the
 * pulse; @abit, @abas Alice's bit and basis. Fills e (all but the pulse
 * index) and counts it in s.
 */
static void click(const struct qkd_channel_params *p, struct qkd_rng *r,
		  double sig_ratio, double peve, double pdark_any,
		  unsigned int abit, unsigned int abas,
		  struct qkd_detection *ep, struct qkd_channel_stats *sp)
{
	struct qkd_detection e = { 0 };
	struct qkd_channel_stats s = *sp;
	double pd = p->dark_count_prob;
	unsigned int sbit, sbas, bas, sig, d0, d1;

	sig = bern(r, sig_ratio);
	bas = qkd_rng_double(r) >= p->p_z_bob;	/* 1 = X */
	d0 = d1 = 0;
	if (sig) {
		sbit = abit;
		sbas = abas;
		if (p->eve_ir_fraction > 0 &&
		    bern(r, p->eve_ir_fraction)) {
			unsigned int ebas =
				p->eve_basis == QKD_EVE_BASIS_Z ? 0 :
				p->eve_basis == QKD_EVE_BASIS_X ? 1 :
				(unsigned int)(qkd_rng_u64(r) >> 63);

			s.eve_intercepted++;
			if (ebas != abas)
				sbit = qkd_rng_u64(r) >> 63;
			else
				e.eve_knows = 1;
			sbas = ebas;
		}
		if (peve > 0 && bern(r, peve))
			e.eve_knows = 1;
		if (bas == sbas)
			sbit ^= bern(r, p->misalignment);
		else
			sbit = qkd_rng_u64(r) >> 63;
		if (sbit)
			d1 = 1;
		else
			d0 = 1;
		d0 |= bern(r, pd);
		d1 |= bern(r, pd);
	} else {
		/* at least one dark count */
		if (bern(r, pd / pdark_any)) {
			d0 = 1;
			d1 = bern(r, pd);
		} else {
			d1 = 1;
		}
		s.dark_only++;
	}
	e.clicks = (uint8_t)(d0 | d1 << 1);
	e.basis = (uint8_t)bas;
	s.detections++;
	s.double_clicks += d0 && d1;
	s.eve_knows += e.eve_knows;
	*ep = e;
	*sp = s;
}

int qkd_channel_transmit(const struct qkd_channel_params *p, struct qkd_rng *r,
			 const struct qkd_alice_records *a,
			 struct qkd_detections *d, struct qkd_channel_stats *st)
{
	double pc[QKD_MAX_INTENSITIES], psig_c[QKD_MAX_INTENSITIES];
	double acc[QKD_MAX_INTENSITIES], peve[QKD_MAX_INTENSITIES];
	double pmax = 0, pd = p->dark_count_prob, log1mp, pdark_any;
	unsigned int nc = n_classes(p), c;
	struct qkd_channel_stats s;
	uint64_t i;
	bool skip;

	if (qkd_channel_params_check(p, NULL))
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	for (c = 0; c < nc; c++) {
		psig_c[c] = signal_prob(p, c);
		pc[c] = qkd_channel_click_prob(p, c);
		peve[c] = eve_photon_prob(p, c);
		s.click_prob[c] = pc[c];
		if (pc[c] > pmax)
			pmax = pc[c];
	}
	for (c = 0; c < nc; c++)
		acc[c] = pmax > 0 ? pc[c] / pmax : 0;
	s.pulses = a->n;
	pdark_any = 1 - (1 - pd) * (1 - pd);
	/* geometric skipping pays when clicks are rare */
	skip = pmax < 0.25;
	log1mp = log1p(-pmax);
	i = 0;
	while (pmax > 0) {
		struct qkd_detection e = { 0 };

		if (skip) {
			uint64_t g = geom(r, log1mp);

			if (g >= a->n - i)
				break;
			i += g;
		} else if (i >= a->n) {
			break;
		}
		c = a->intensity[i];
		if (c >= nc)
			return -EINVAL;
		if (skip ? (acc[c] < 1 && !bern(r, acc[c])) : !bern(r, pc[c])) {
			i++;
			continue;
		}
		/* a click: signal photon, dark counts, conditioned on >= 1 */
		click(p, r, psig_c[c] / pc[c], peve[c], pdark_any,
		      qkd_bit_get(a->bit, i), qkd_bit_get(a->basis, i), &e,
		      &s);
		e.pulse = i;
		if (det_push(d, &e))
			return -ENOMEM;
		i++;
	}
	if (st)
		*st = s;
	return 0;
}

int qkd_det_records_push(struct qkd_det_records *d,
			 const struct qkd_det_rec *e)
{
	if (d->n == d->cap &&
	    qkd_det_records_reserve(d, d->cap ? d->cap * 2 : 4096))
		return -ENOMEM;
	d->r[d->n++] = *e;
	return 0;
}

int qkd_det_records_reserve(struct qkd_det_records *d, size_t cap)
{
	void *r = d->r;
	int err = secret_grow(&r, &d->cap, d->n, cap, sizeof(*d->r));

	d->r = r;
	return err;
}

void qkd_det_records_free(struct qkd_det_records *d)
{
	qkd_secmem_free(d->r, d->cap * sizeof(*d->r));
	memset(d, 0, sizeof(*d));
}

/*
 * The per-detection sampler behind qkd_channel_generate() (per-pulse
 * records @a) and qkd_channel_generate_sparse() (records @sa): exactly one
 * of them is set.
 */
static int generate(const struct qkd_channel_params *p, struct qkd_rng *r,
		    struct qkd_rng *ra, uint64_t npulses,
		    struct qkd_alice_records *a, struct qkd_det_records *sa,
		    struct qkd_detections *d, struct qkd_channel_stats *st)
{
	double pc[QKD_MAX_INTENSITIES], psig_c[QKD_MAX_INTENSITIES];
	double peve[QKD_MAX_INTENSITIES], cum[QKD_MAX_INTENSITIES];
	double ptot = 0, pd = p->dark_count_prob, log1mp, pdark_any;
	unsigned int nc = n_classes(p), c;
	struct qkd_channel_stats s;
	uint64_t i;

	if (qkd_channel_params_check(p, NULL))
		return -EINVAL;
	memset(&s, 0, sizeof(s));
	for (c = 0; c < nc; c++) {
		double pi = nc == 1 ? 1 : p->p_intensity[c];

		psig_c[c] = signal_prob(p, c);
		pc[c] = qkd_channel_click_prob(p, c);
		peve[c] = eve_photon_prob(p, c);
		s.click_prob[c] = pc[c];
		ptot += pi * pc[c];
		cum[c] = ptot;
	}
	s.pulses = npulses;
	if (sa) {
		/* the expected detections and 5 sigma: one allocation */
		double m = (double)npulses * ptot;

		m += 5 * sqrt(m) + 4096;
		if (m > (double)npulses)
			m = (double)npulses;
		if (qkd_det_records_reserve(sa, sa->n + (size_t)m) ||
		    qkd_detections_reserve(d, d->count + (size_t)m))
			return -ENOMEM;
	}
	pdark_any = 1 - (1 - pd) * (1 - pd);
	log1mp = log1p(-ptot);
	i = 0;
	while (ptot > 0) {
		struct qkd_detection e = { 0 };
		uint64_t g = geom(r, log1mp);
		unsigned int abit, abas;
		double u;

		if (g >= npulses - i)
			break;
		i += g;
		/* the class of a detected pulse: p_c pc_c / P */
		u = qkd_rng_double(r) * ptot;
		for (c = 0; c + 1 < nc && u >= cum[c]; c++)
			;
		abit = (unsigned int)(qkd_rng_u64(ra) >> 63);
		abas = qkd_rng_double(ra) >= p->p_z_alice;	/* 1 = X */
		if (a) {
			qkd_bit_set(a->bit, i, abit);
			qkd_bit_set(a->basis, i, abas);
			a->intensity[i] = (uint8_t)c;
		} else {
			struct qkd_det_rec ar = {
				.pulse = i, .bit = (uint8_t)abit,
				.basis = (uint8_t)abas, .intensity = (uint8_t)c,
			};

			if (sa->n < sa->cap)	/* reserved: no call */
				sa->r[sa->n++] = ar;
			else if (qkd_det_records_push(sa, &ar))
				return -ENOMEM;
		}
		click(p, r, psig_c[c] / pc[c], peve[c], pdark_any, abit, abas,
		      &e, &s);
		e.pulse = i;
		if (det_push(d, &e))
			return -ENOMEM;
		i++;
	}
	if (st)
		*st = s;
	return 0;
}

int qkd_channel_generate(const struct qkd_channel_params *p,
			 struct qkd_rng *r, struct qkd_rng *ra,
			 struct qkd_alice_records *a, struct qkd_detections *d,
			 struct qkd_channel_stats *st)
{
	return generate(p, r, ra, a->n, a, NULL, d, st);
}

int qkd_channel_generate_sparse(const struct qkd_channel_params *p,
				struct qkd_rng *r, struct qkd_rng *ra,
				uint64_t npulses, struct qkd_det_records *a,
				struct qkd_detections *d,
				struct qkd_channel_stats *st)
{
	a->npulses = npulses;
	return generate(p, r, ra, npulses, NULL, a, d, st);
}

int qkd_bob_det_records(const struct qkd_detections *d, struct qkd_rng *r,
			uint64_t npulses, struct qkd_det_records *b)
{
	size_t k;

	for (k = 0; k < d->count; k++) {
		const struct qkd_detection *e = &d->ev[k];

		if (e->pulse >= npulses || !e->clicks || e->clicks > 3 ||
		    (k && e->pulse <= d->ev[k - 1].pulse))
			return -EINVAL;
	}
	b->npulses = npulses;
	if (qkd_det_records_reserve(b, b->n + d->count))
		return -ENOMEM;
	for (k = 0; k < d->count; k++) {
		const struct qkd_detection *e = &d->ev[k];
		struct qkd_det_rec br = { .pulse = e->pulse,
					  .basis = e->basis & 1 };

		if (e->clicks == 3)
			br.bit = (uint8_t)(qkd_rng_u64(r) >> 63);	/* squash */
		else
			br.bit = e->clicks == 2;
		b->r[b->n++] = br;	/* reserved above: no call */
	}
	return 0;
}

int qkd_alice_det_records(const struct qkd_alice_records *a,
			  const uint64_t *pulse, size_t n,
			  struct qkd_det_records *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t k = 0; k < n; k++)
		if (pulse[k] >= a->n || (k && pulse[k] <= pulse[k - 1]))
			return -EINVAL;
	out->npulses = a->n;
	if (qkd_det_records_reserve(out, n ? n : 1))
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		uint64_t i = pulse[k];

		out->r[k] = (struct qkd_det_rec){
			.pulse = i,
			.bit = (uint8_t)qkd_bit_get(a->bit, i),
			.basis = (uint8_t)qkd_bit_get(a->basis, i),
			.intensity = a->intensity[i],
		};
	}
	out->n = n;
	return 0;
}

int qkd_det_records_select(const struct qkd_det_records *all,
			   const uint64_t *pulse, size_t n,
			   struct qkd_det_records *out)
{
	size_t j = 0;

	memset(out, 0, sizeof(*out));
	if (n > all->n)
		return -EINVAL;
	out->npulses = all->npulses;
	if (qkd_det_records_reserve(out, n ? n : 1))
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		/* both lists increase: one walk */
		while (j < all->n && all->r[j].pulse < pulse[k])
			j++;
		if (j == all->n || all->r[j].pulse != pulse[k]) {
			qkd_det_records_free(out);
			return -EINVAL;
		}
		out->r[k] = all->r[j++];
	}
	out->n = n;
	return 0;
}

int qkd_bob_records_alloc(struct qkd_bob_records *b, size_t n)
{
	memset(b, 0, sizeof(*b));
	b->n = n;
	b->detected = qkd_bits_alloc(n, 0);
	b->basis = qkd_bits_alloc(n, 0);
	b->bit = qkd_bits_alloc(n, 0);
	if (!b->detected || !b->basis || !b->bit) {
		qkd_bob_records_free(b);
		return -ENOMEM;
	}
	return 0;
}

void qkd_bob_records_free(struct qkd_bob_records *b)
{
	qkd_bits_free(b->detected, b->n, 0);
	qkd_bits_free(b->basis, b->n, 0);
	qkd_bits_free(b->bit, b->n, 0);
	memset(b, 0, sizeof(*b));
}

int qkd_bob_records(const struct qkd_detections *d, struct qkd_rng *r,
		    struct qkd_bob_records *b)
{
	size_t nw = qkd_bits_words(b->n), k;

	memset(b->detected, 0, nw * sizeof(uint64_t));
	memset(b->basis, 0, nw * sizeof(uint64_t));
	memset(b->bit, 0, nw * sizeof(uint64_t));
	for (k = 0; k < d->count; k++) {
		const struct qkd_detection *e = &d->ev[k];
		unsigned int bit;

		if (e->pulse >= b->n || !e->clicks)
			return -EINVAL;
		if (e->clicks == 3)
			bit = qkd_rng_u64(r) >> 63;	/* squash */
		else
			bit = e->clicks == 2;
		qkd_bit_set(b->detected, e->pulse, 1);
		qkd_bit_set(b->basis, e->pulse, e->basis & 1);
		qkd_bit_set(b->bit, e->pulse, bit);
	}
	return 0;
}
