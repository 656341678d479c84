/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Rate-adaptive LDPC reconciliation (issue 16): error correction with one
 * message per frame in the common case instead of one round trip per
 * Cascade bisection. qkdd uses it with --reconcile ldpc or auto
 * (userspace/qkdd/reconcile.c).
 *
 * The protocol, per batch of frames (all frames of a round travel in the
 * same messages, so round trips do not grow with the number of frames):
 *
 *   1. A -> B  SYNDROME  s = H [x ; u] for every frame: x Alice's n key
 *              bits, u p punctured bits Alice draws with getrandom() and
 *              never sends unless asked; and a 32-bit tag of x (the
 *              polynomial hash of qkd/verify.h under a hash key drawn for
 *              the batch), with which Bob tells a decoding that reached
 *              the wrong word with the right syndrome (the true word plus
 *              a low-weight codeword) from the right one.
 *   2. B -> A  MORE      (only if some frame did not decode) the frames
 *              Bob could not decode.
 *   3. A -> B  REVEAL    the next step_bits punctured bits of those frames;
 *              Bob decodes them again with the punctured bits now known.
 *
 * Steps 2-3 repeat at most max_steps times; a frame still undecoded then
 * is reported failed (QKD_LDPC_FRAME_FAILED), never as corrected.
 *
 * Leak (bits of information about Alice's key disclosed), exactly, per
 * frame: m - p + 32 + r, r the punctured bits revealed so far, 32 the tag. The p punctured
 * columns each own a check row no other punctured column touches (chosen
 * so at construction), so H restricted to them has rank p and the p - r
 * still secret punctured bits act as a one-time pad on p - r independent
 * combinations of the syndrome: those give Eve nothing about x. See
 * Documentation/protocol.md, "LDPC reconciliation".
 *
 * Both sides build the same parity-check matrix from the parameters
 * (qkd_ldpc_code_new: deterministic from seed, frame_bits, m and p); the
 * parameters travel over the authenticated channel
 * (qkd_ldpc_params_encode/decode). Messages arrive before authentication is
 * checked, so each is parsed strictly: any deviation is refused with a
 * reason and changes nothing.
 */
#ifndef QKD_LDPC_H
#define QKD_LDPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QKD_LDPC_MIN_FRAME_BITS		256
#define QKD_LDPC_MAX_FRAME_BITS		(1u << 20)
#define QKD_LDPC_MAX_FRAMES		4096
#define QKD_LDPC_MAX_STEPS		8
/* Decoding threads of a Bob (qkd_ldpc_bob_set_threads), at most. */
#define QKD_LDPC_MAX_THREADS		8
#define QKD_LDPC_PARAMS_LEN		40
/*
 * Bits of each frame's tag in the SYNDROME message (counted in the leak):
 * whether a decoded word is Alice's; the round's verification stays the
 * correctness guarantee (ldpc.c, frame_tag).
 */
#define QKD_LDPC_TAG_BITS		32
/* Frame length of qkd_ldpc_daemon_params(): 2^16 key bits. */
#define QKD_LDPC_DAEMON_FRAME_MAX	65536
/* ... rounded down to a multiple of this (qkd_ldpc_daemon_frames) */
#define QKD_LDPC_DAEMON_FRAME_STEP	64

struct qkd_ldpc_params {
	uint32_t frame_bits;	/* n: key bits per frame */
	uint32_t nframes;	/* frames per batch */
	uint32_t m;		/* syndrome bits (check rows) per frame */
	uint32_t p;		/* punctured bits per frame (p < m) */
	uint32_t step_bits;	/* punctured bits revealed per step */
	uint32_t max_steps;	/* reveal steps, step_bits * max_steps <= p */
	uint32_t qber_ppm;	/* estimated QBER: Bob's channel LLR */
	uint32_t max_iter;	/* BP iterations per decoding attempt */
	uint64_t seed;		/* public seed of the construction */
};

/*
 * Parameters for n key bits per frame at QBER estimate q (0.5-11 %): the
 * first attempt at m - p = ceil(f0(q) n h(q)), f0 1.08 (1.14 below
 * QBER 1.5 %: ldpc.c), then up to five reveal steps of 0.02 n h(q)
 * punctured bits each (p = 5 step_bits; from QBER 6.5 % on f0 1.09 and
 * three steps of 0.03 n h(q)): one message a batch when every frame
 * decodes at once, 3, 5, ... 11 with the steps. 60 iterations an attempt
 * at most.
 * Returns 0 or -EINVAL (n or q out of range).
 */
int qkd_ldpc_default_params(struct qkd_ldpc_params *p, uint32_t frame_bits,
			    uint32_t nframes, double qber, uint64_t seed);
/*
 * qkdd's parameters (Alice's, sent to Bob): the QBER estimate est from a
 * sample of sample_bits bits. The code is made for est plus the
 * estimate's standard error, rounded up to a step of 0.05 % so that
 * rounds of a link reuse a matrix (qkdd keeps the last few it built);
 * qber_ppm is est itself (Bob's decoder). The reveal steps then reach at
 * least what a frame of frame_bits bits needs when its true QBER is 3
 * standard deviations above est (the frame's own errors and the sample's
 * both spread): short frames and small samples get more steps, up to
 * QKD_LDPC_MAX_STEPS, then larger ones. Returns 0 or -EINVAL.
 */
int qkd_ldpc_daemon_params(struct qkd_ldpc_params *p, uint32_t frame_bits,
			   uint32_t nframes, double est, uint64_t sample_bits,
			   uint64_t seed);
/*
 * qkdd's cut of n key bits into frames (as qkd_cascade_daemon_frames):
 * nf = ceil(n / 2^16) equal frames of floor(n / nf) bits, rounded down
 * to a multiple of 64 bits when that is at least 4096 (fewer than 64
 * bits a frame are left out; a round's frames then have the length of
 * the last round's, and the same matrix).
 */
void qkd_ldpc_daemon_frames(size_t n, uint32_t *frame_bits,
			    uint32_t *nframes);

/* Parameters on the wire: QKD_LDPC_PARAMS_LEN bytes, little endian. */
size_t qkd_ldpc_params_encode(const struct qkd_ldpc_params *p, uint8_t *buf);
/* 0, or -EPROTO / -EINVAL with *why set (may be NULL). */
int qkd_ldpc_params_decode(struct qkd_ldpc_params *p, const uint8_t *buf,
			   size_t len, const char **why);
/* 0 if usable, else -EINVAL with *why set (may be NULL). */
int qkd_ldpc_params_check(const struct qkd_ldpc_params *p, const char **why);

/*
 * The parity-check matrix of a parameter set: immutable once built, may be
 * shared by any number of Alice and Bob objects and threads. Columns
 * 0 .. n-1 are the key bits, n .. n+p-1 the punctured bits.
 */
struct qkd_ldpc_code;
struct qkd_ldpc_code *qkd_ldpc_code_new(const struct qkd_ldpc_params *p);
void qkd_ldpc_code_free(struct qkd_ldpc_code *c);
/* A 64-bit digest of the matrix (tests: both ends build the same one). */
uint64_t qkd_ldpc_code_digest(const struct qkd_ldpc_code *c);
/* Number of edges (ones of H), and the largest row and column weights. */
void qkd_ldpc_code_shape(const struct qkd_ldpc_code *c, uint64_t *edges,
			 uint32_t *max_row, uint32_t *max_col);
/*
 * s = H [x ; u] (m bits, packed). x: n bits, u: p bits (NULL: zeros).
 * For tests and Alice.
 */
void qkd_ldpc_syndrome(const struct qkd_ldpc_code *c, const uint64_t *x,
		       const uint64_t *u, uint64_t *s);

/* Frame states (Bob). */
enum qkd_ldpc_frame_state {
	QKD_LDPC_FRAME_PENDING = 0,
	QKD_LDPC_FRAME_OK = 1,		/* syndrome and tag matched: corrected */
	QKD_LDPC_FRAME_FAILED = 2,	/* given up: key left as it was */
};

struct qkd_ldpc_stats {
	uint64_t leak_bits;	/* sum of the frames' leaks */
	uint64_t msgs;		/* messages of the batch, both directions */
	uint64_t bytes;		/* their bytes */
	uint64_t iterations;	/* Bob: BP iterations, all attempts */
	uint64_t decodes;	/* Bob: decoding attempts */
	uint32_t frames_ok;	/* Bob */
	uint32_t frames_failed;	/* Bob */
	uint32_t steps;		/* reveal steps taken */
	double thread_cpu_s;	/* Bob: CPU seconds of his decoding
				 * threads besides the caller's */
};

/* A growable message buffer; wiped when freed. */
struct qkd_ldpc_msg {
	uint8_t *data;
	size_t len;
	size_t cap;
};
void qkd_ldpc_msg_free(struct qkd_ldpc_msg *m);

struct qkd_ldpc_alice;
struct qkd_ldpc_bob;

/*
 * Alice: keys[f] holds frame f (n bits packed); copied. The punctured bits
 * are drawn with getrandom(). NULL with errno set on failure. The code
 * must outlive the object.
 */
struct qkd_ldpc_alice *qkd_ldpc_alice_new(const struct qkd_ldpc_code *c,
					  const struct qkd_ldpc_params *p,
					  const uint64_t *const *keys);
void qkd_ldpc_alice_free(struct qkd_ldpc_alice *a);
/* The SYNDROME message of every frame (out's contents replaced). */
int qkd_ldpc_alice_syndrome(struct qkd_ldpc_alice *a,
			    struct qkd_ldpc_msg *out);
/*
 * Answer a MORE request with a REVEAL. 0, or -EPROTO with *why set: the
 * request is refused and nothing is disclosed or counted.
 */
int qkd_ldpc_alice_handle(struct qkd_ldpc_alice *a, const uint8_t *req,
			  size_t len, struct qkd_ldpc_msg *out,
			  const char **why);
/* Leak of frame f so far (what Alice disclosed: m - p + 32 + revealed). */
uint64_t qkd_ldpc_alice_frame_leak(const struct qkd_ldpc_alice *a,
				   uint32_t frame);
void qkd_ldpc_alice_stats(const struct qkd_ldpc_alice *a,
			  struct qkd_ldpc_stats *s);

/*
 * Bob: keys[f] holds frame f; corrected in place when the frame decodes.
 */
struct qkd_ldpc_bob *qkd_ldpc_bob_new(const struct qkd_ldpc_code *c,
				      const struct qkd_ldpc_params *p,
				      uint64_t *const *keys);
void qkd_ldpc_bob_free(struct qkd_ldpc_bob *b);
/*
 * Decode the frames on @n threads (1 .. QKD_LDPC_MAX_THREADS; 1 when
 * made): frames are independent, so the outcome is the same, frame for
 * frame, whatever @n. 0, -EINVAL, or -ENOMEM (then fewer threads).
 */
int qkd_ldpc_bob_set_threads(struct qkd_ldpc_bob *b, unsigned int n);
/*
 * Consume Alice's SYNDROME (first) or REVEAL and decode the pending
 * frames; a frame counts as decoded when its syndrome and its tag match. Returns 1 with a MORE request in out (send it), 0 when every
 * frame is OK or FAILED, or -EPROTO (*why set: message refused, nothing
 * changed) / -ENOMEM.
 */
int qkd_ldpc_bob_handle(struct qkd_ldpc_bob *b, const uint8_t *msg,
			size_t len, struct qkd_ldpc_msg *out, const char **why);
enum qkd_ldpc_frame_state qkd_ldpc_bob_frame_state(const struct qkd_ldpc_bob *b,
						   uint32_t frame);
/* Leak of frame f, as Bob counts it from what he received (equals Alice's). */
uint64_t qkd_ldpc_bob_frame_leak(const struct qkd_ldpc_bob *b, uint32_t frame);
void qkd_ldpc_bob_stats(const struct qkd_ldpc_bob *b,
			struct qkd_ldpc_stats *s);

/*
 * Decode one frame alone (no messages): y Bob's n bits (corrected in place
 * on success), s the m-bit syndrome, u_known the first r punctured bits.
 * Returns 1 decoded (syndrome matched), 0 not decoded (y unchanged), or
 * -ENOMEM. *iters: iterations used. For tests and benchmarks.
 */
int qkd_ldpc_decode(const struct qkd_ldpc_code *c,
		    const struct qkd_ldpc_params *p, uint64_t *y,
		    const uint64_t *s, const uint64_t *u_known, uint32_t r,
		    uint32_t *iters);

/* Binary entropy h(q) in bits. */
double qkd_ldpc_h2(double q);

#endif /* QKD_LDPC_H */
