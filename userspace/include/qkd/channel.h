/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * BB84 quantum channel: Alice's source, the fiber (with an optional
 * eavesdropper) and Bob's detectors, split so that hardware can replace the
 * simulator stage by stage:
 *
 *   qkd_alice_prepare()     per-pulse records: bit, basis, intensity class
 *        |                  (what Alice's modulators are driven with)
 *   qkd_channel_transmit()  the optics: fiber loss, Eve, detector efficiency,
 *        |                  dark counts, misalignment. Its only output is a
 *        v                  list of detection events (pulse index, which
 *                           detector(s) clicked, Bob's basis setting): what a
 *                           time tagger on real detectors produces.
 *   qkd_bob_records()       detection events in, per-pulse records out
 *                           (detected?, basis, bit); double clicks are
 *                           squashed to a random bit.
 *
 * With real hardware, qkd_alice_prepare() still makes the records (from
 * getrandom()) and drives the source; qkd_channel_transmit() is replaced by
 * the detector read-out; qkd_bob_records() is unchanged.
 *
 * Basis: 0 = Z (key basis when the choice is biased), 1 = X.
 */
#ifndef QKD_CHANNEL_H
#define QKD_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/bits.h"

#define QKD_MAX_INTENSITIES 3

/* Random numbers: xoshiro256** for reproducible simulation (seeded), the
 * kernel's getrandom() or OpenSSL's DRBG for real use. */
struct qkd_rng {
	uint64_t s[4];
	bool os;		/* true: getrandom() (or drbg) */
	bool drbg;		/* true: OpenSSL's private DRBG */
	unsigned int pos;	/* os mode: next unused word of buf */
	uint64_t buf[512];	/* 4 KiB a getrandom() call: 2x the throughput of 512 B */
};

/* Seeded, reproducible (seed expanded with splitmix64). */
void qkd_rng_seed(struct qkd_rng *r, uint64_t seed);
/* Cryptographic randomness from getrandom(); 0 or -errno. */
int qkd_rng_os(struct qkd_rng *r);
/*
 * Cryptographic randomness from OpenSSL's private DRBG (RAND_priv_bytes():
 * NIST SP 800-90A CTR-DRBG with AES-256, seeded and reseeded from the
 * operating system), 4 KiB a call: Alice's choices, a few bytes each of
 * millions of pulses a round, at AES-NI speed instead of the kernel's
 * generic ChaCha behind getrandom() (issue 16). 0 or -EIO.
 */
int qkd_rng_drbg(struct qkd_rng *r);
uint64_t qkd_rng_u64(struct qkd_rng *r);
/* Uniform in [0, 1). */
double qkd_rng_double(struct qkd_rng *r);

enum qkd_source_kind {
	QKD_SOURCE_SINGLE_PHOTON = 0,	/* ideal: exactly one photon a pulse */
	QKD_SOURCE_WCP,			/* weak coherent pulses, Poisson */
};

enum qkd_eve_split {
	QKD_EVE_SPLIT_NONE = 0,
	/* Passive beam splitting: Eve replaces the fiber by a lossless one
	 * and a beam splitter of the same loss; keeps the diverted photons
	 * (Bob's statistics unchanged). Learns the bit whenever she holds a
	 * photon, once the basis is announced. */
	QKD_EVE_BEAM_SPLIT,
	/* Photon-number splitting: Eve measures the photon number, blocks
	 * single-photon pulses, keeps one photon of every multi-photon pulse
	 * and forwards the rest over a lossless channel. Changes the gain of
	 * each intensity differently: the decoy-state bound detects it. */
	QKD_EVE_PNS,
};

/* The basis intercept-resend measures in. */
enum qkd_eve_basis {
	QKD_EVE_BASIS_RANDOM = 0,	/* each pulse: Z or X, 1/2 each */
	/* Always Z (or X): against a biased basis choice, Eve measures in
	 * the key basis and disturbs only the rarer one. */
	QKD_EVE_BASIS_Z,
	QKD_EVE_BASIS_X,
};

struct qkd_channel_params {
	/* source */
	enum qkd_source_kind source;
	unsigned int n_intensities;	/* WCP: 1 (signal only) .. 3 */
	double mu[QKD_MAX_INTENSITIES];	/* mean photon numbers: mu[0] is the
					 * signal μ, mu[1], mu[2] the decoys
					 * ν1, ν2 (ν2 may be 0: vacuum) */
	double p_intensity[QKD_MAX_INTENSITIES]; /* probabilities, sum 1 */
	double p_z_alice;		/* probability Alice encodes in Z */
	double p_z_bob;			/* probability Bob measures in Z */
	/* fiber */
	double length_km;
	double loss_db_per_km;		/* e.g. 0.2 at 1550 nm */
	/* Bob's detectors (two, one per outcome, behind a basis choice) */
	double det_efficiency;		/* η_D, includes Bob's optics */
	double dark_count_prob;		/* per detector per pulse slot */
	double misalignment;		/* e_d: a detected photon lands in the
					 * wrong detector with this probability */
	/* eavesdropper */
	double eve_ir_fraction;		/* intercept-resend on this fraction of
					 * pulses: measures (in eve_basis),
					 * resends her result with the same
					 * photon number */
	enum qkd_eve_basis eve_basis;
	enum qkd_eve_split eve_split;
	/* how qkdd's fiber stage samples the link: every pulse
	 * (qkd_alice_prepare() + qkd_channel_transmit(), the reference), or
	 * per detection (qkd_channel_generate()) */
	bool per_detection;
};

/* Defaults: WCP μ = 0.5, ν1 = 0.1, ν2 = 0.0 (probabilities 0.8/0.1/0.1),
 * p_Z = 0.5 both sides, 25 km at 0.2 dB/km, η_D = 0.2, p_dark = 1e-6,
 * e_d = 1%, no Eve. */
void qkd_channel_params_default(struct qkd_channel_params *p);
/* 0, or -EINVAL with *why set to a static reason. */
int qkd_channel_params_check(const struct qkd_channel_params *p,
			     const char **why);

/* Alice's per-pulse records. Arrays of n bits / n bytes. */
struct qkd_alice_records {
	size_t n;
	uint64_t *bit;
	uint64_t *basis;
	uint8_t *intensity;	/* class index into mu[] */
};

int qkd_alice_records_alloc(struct qkd_alice_records *a, size_t n);
void qkd_alice_records_free(struct qkd_alice_records *a); /* zeroes */
/* Draw bits, bases and intensity classes for a->n pulses. */
void qkd_alice_prepare(const struct qkd_channel_params *p, struct qkd_rng *r,
		       struct qkd_alice_records *a);

/* One detection event (the hardware interface). */
struct qkd_detection {
	uint64_t pulse;		/* index of the pulse slot */
	uint8_t clicks;		/* bit 0: detector "0" clicked, bit 1: "1" */
	uint8_t basis;		/* Bob's basis setting for this slot */
	uint8_t eve_knows;	/* simulation ground truth only: Eve can know
				 * the bit after the basis announcement */
};

/*
 * ev comes from qkd_detections_reserve() (qkd_secmem_alloc(), qkd/secmem.h)
 * and goes with qkd_detections_free(), which wipes it: never malloc() it.
 */
struct qkd_detections {
	size_t count, cap;
	struct qkd_detection *ev;
};

/* Room for @cap detections, the ones there kept. 0 or -ENOMEM. */
int qkd_detections_reserve(struct qkd_detections *d, size_t cap);
void qkd_detections_free(struct qkd_detections *d);	/* wipes */

struct qkd_channel_stats {
	uint64_t pulses;
	uint64_t detections;
	uint64_t double_clicks;
	uint64_t dark_only;		/* clicks without a signal photon */
	uint64_t eve_intercepted;	/* detections of intercepted pulses */
	uint64_t eve_knows;		/* detections whose bit Eve can know */
	double click_prob[QKD_MAX_INTENSITIES];	/* model gain per class */
};

/*
 * The optics, simulated: from Alice's records to detection events
 * (appended to *d). Work is proportional to the number of detections,
 * not of pulses, when the click probability is small (geometric skipping
 * between candidate pulses, then thinning by intensity class).
 * 0, -EINVAL or -ENOMEM.
 */
int qkd_channel_transmit(const struct qkd_channel_params *p, struct qkd_rng *r,
			 const struct qkd_alice_records *a,
			 struct qkd_detections *d, struct qkd_channel_stats *st);

/*
 * The source and the optics sampled per detection, not per pulse, for a
 * link whose undetected pulses nobody looks at: the gap to the next
 * detected pulse is drawn from its geometric distribution (click
 * probability P = sum_c p_c pc_c over the intensity classes), then the
 * class of the detected pulse (probability p_c pc_c / P), Alice's bit
 * (uniform) and basis (p_z_alice) from @ra (Alice's generator, which may
 * be @r), and the click itself from @r with the same code
 * and conditional probabilities as qkd_channel_transmit(). Writes Alice's
 * records at the detected pulses only (the others keep what the caller
 * put there: allocate them zeroed) and appends the detection events to *d.
 * The same distribution as qkd_alice_prepare() + qkd_channel_transmit()
 * (test_channel: generate_agrees_with_the_per_pulse_simulator), at a cost
 * proportional to the detections. 0, -EINVAL or -ENOMEM.
 */
int qkd_channel_generate(const struct qkd_channel_params *p,
			 struct qkd_rng *r, struct qkd_rng *ra,
			 struct qkd_alice_records *a, struct qkd_detections *d,
			 struct qkd_channel_stats *st);
/*
 * Per-detection records (the sparse form of both ends' records): one
 * entry per detected pulse, pulse indices strictly increasing. What
 * qkdd keeps of a round: Alice's choices for the pulses Bob detected,
 * Bob's basis and bit for each detection; never an array over every
 * pulse (a round has ~30 pulses a detection at 25 km).
 */
struct qkd_det_rec {
	uint64_t pulse;		/* pulse index, < npulses */
	uint8_t bit;
	uint8_t basis;		/* 0 = Z, 1 = X */
	uint8_t intensity;	/* Alice's class (Bob: 0 until sifting) */
	uint8_t pad;
};

/* r: as qkd_detections' ev, from qkd_det_records_reserve() only */
struct qkd_det_records {
	uint64_t npulses;	/* pulses of the round */
	size_t n, cap;
	struct qkd_det_rec *r;
};

/* Append one record (grows the array). 0 or -ENOMEM. */
int qkd_det_records_push(struct qkd_det_records *d,
			 const struct qkd_det_rec *e);
/* Room for @cap records in all (one allocation instead of doublings).
 * 0 or -ENOMEM. */
int qkd_det_records_reserve(struct qkd_det_records *d, size_t cap);
void qkd_det_records_free(struct qkd_det_records *d);	/* zeroes */

/*
 * qkd_channel_generate() for @npulses pulses with Alice's records kept
 * per detection only (appended to *@a, a->npulses set): the same draws in
 * the same order, so the same seeds give the same detections and
 * records at the detected pulses. 0, -EINVAL or -ENOMEM.
 */
int qkd_channel_generate_sparse(const struct qkd_channel_params *p,
				struct qkd_rng *r, struct qkd_rng *ra,
				uint64_t npulses, struct qkd_det_records *a,
				struct qkd_detections *d,
				struct qkd_channel_stats *st);

/*
 * Bob's side per detection: detection events of a round of @npulses
 * pulses to records (bit of the detector; a double click squashed to a
 * random bit from @r, as qkd_bob_records()). The events must be in
 * strictly increasing pulse order, each with a click and a pulse index
 * below @npulses: 0 or -EINVAL (nothing appended), -ENOMEM.
 */
int qkd_bob_det_records(const struct qkd_detections *d, struct qkd_rng *r,
			uint64_t npulses, struct qkd_det_records *b);

/*
 * Alice's per-pulse records at the @n pulse indices @pulse (strictly
 * increasing, < a->n: the detections Bob announced) into *@out.
 * 0, -EINVAL or -ENOMEM.
 */
int qkd_alice_det_records(const struct qkd_alice_records *a,
			  const uint64_t *pulse, size_t n,
			  struct qkd_det_records *out);

/*
 * The records of @all (per-detection, strictly increasing) at the @n pulse
 * indices @pulse (strictly increasing) into *@out: Alice's side when her
 * link was sampled per detection. 0; -EINVAL if an index is not one of
 * @all's (a pulse the link did not detect); -ENOMEM.
 */
int qkd_det_records_select(const struct qkd_det_records *all,
			   const uint64_t *pulse, size_t n,
			   struct qkd_det_records *out);

/* Bob's per-pulse records. Arrays of n bits. */
struct qkd_bob_records {
	size_t n;
	uint64_t *detected;
	uint64_t *basis;
	uint64_t *bit;
};

int qkd_bob_records_alloc(struct qkd_bob_records *b, size_t n);
void qkd_bob_records_free(struct qkd_bob_records *b); /* zeroes */
/*
 * Detection events of pulses [0, b->n) to records. A single click gives
 * the bit of the detector; a double click gives a random bit (squashing,
 * needed by the security proofs). 0 or -EINVAL (event out of range).
 */
int qkd_bob_records(const struct qkd_detections *d, struct qkd_rng *r,
		    struct qkd_bob_records *b);

/* Model quantities (for tests and the documentation). */
double qkd_channel_transmittance(const struct qkd_channel_params *p);
/* Click probability for one pulse of class c (any outcome). */
double qkd_channel_click_prob(const struct qkd_channel_params *p,
			      unsigned int c);
/* Expected QBER of sifted detections of class c (no Eve). */
double qkd_channel_expected_qber(const struct qkd_channel_params *p,
				 unsigned int c);

#endif /* QKD_CHANNEL_H */
