/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Cascade information reconciliation (error correction), as two message-driven
 * state machines:
 *
 *  - Alice holds the reference key and answers parity queries; she never
 *    changes her key. She counts every parity bit she sends: that count is
 *    the leak of error correction that privacy amplification subtracts.
 *  - Bob corrects his key. Each round he emits ONE request message holding
 *    the parity queries of all frames in flight and of all blocks being
 *    bisected, and consumes ONE reply holding the answers, so the number of
 *    round trips does not grow with the number of frames.
 *
 * Messages are byte buffers (see Documentation/protocol.md for the format):
 * a transport moves them, in-process for tests and benchmarks (the loopback
 * transport calls Alice directly) or over the authenticated classical channel
 * in qkdd. Both sides must be created with identical parameters; the seed of
 * the permutations is public and is sent over the authenticated channel
 * (qkd_cascade_params_encode/decode).
 */
#ifndef QKD_CASCADE_H
#define QKD_CASCADE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QKD_CASCADE_MAX_PASSES		32
#define QKD_CASCADE_MAX_FRAME_BITS	(1u << 26)
#define QKD_CASCADE_MAX_FRAMES		4096
#define QKD_CASCADE_PARAMS_LEN		(32 + 4 * QKD_CASCADE_MAX_PASSES)

enum qkd_cascade_variant {
	/* Brassard-Salvail 1993: 4 passes, k1 = 0.73/Q, k_i = 2 k_{i-1}. */
	QKD_CASCADE_ORIGINAL = 1,
	/*
	 * Best known parameters (Martinez-Mateo et al. 2015, "option 8"
	 * style, re-tuned for frames of 10^6 bits): k1 = 2^a(Q), k2 = 10/Q
	 * rounded to a power of two, k3 = 8 k2 above 3 %, then BICONF-like
	 * passes over halves of the frame; 16 passes, cascading on every
	 * started pass, known sub-block parities reused.
	 */
	QKD_CASCADE_OPTIMIZED = 2,
	/* Yan et al. 2008: 10 passes, k1 = 0.8/Q, k2 = 5 k1, then n/2. */
	QKD_CASCADE_YANETAL = 3,
	/* Block sizes given in params.block[] (for experiments). */
	QKD_CASCADE_CUSTOM = 4,
};

/*
 * Bob's scheduling (only Bob's behaviour changes; Alice answers whatever
 * she is asked). By default the odd blocks of passes 1 and 2 are bisected
 * together, and a block of a later pass (large blocks) only when no lower
 * pass has a query in flight, which discloses least. PARALLEL bisects the
 * odd blocks of every pass at once: 0-40 % fewer round trips for 0.5-1 %
 * more disclosed bits.
 */
#define QKD_CASCADE_F_PARALLEL		0x1
/*
 * Round trips are the cost of Cascade on a link with latency: the first
 * request asks the block parities of every pass at once (always: what
 * Alice discloses with them does not depend on Bob's key, so it changes
 * no parity disclosed and no bit corrected, and saves one round trip per
 * pass), and a pass is bisected as soon as the passes before it are done,
 * in the same request. The remaining round trips are the chains of
 * corrections that cascade back and forth between passes 0 and 1.
 * PIPELINE overlaps their tail: once passes 0 and 1 are open and at most
 * a few of their bisections are left in a frame, the odd blocks of the
 * next pass are bisected too, without waiting for the chains to end (its
 * bisections find the chains' errors and end them). A deliberate trade
 * (bench_cascade, qkdd's configuration, the same keys): about half the
 * round trips at QBER 1-2 %, a third to a half fewer at 5-8 %, for f up
 * to 1.5 % higher at 1-2 % and unchanged at 5-8 %.
 */
#define QKD_CASCADE_F_PIPELINE		0x2

struct qkd_cascade_params {
	uint32_t variant;	/* enum qkd_cascade_variant */
	uint32_t frame_bits;	/* n: bits per frame, 64 .. MAX_FRAME_BITS */
	uint32_t nframes;	/* frames corrected together (in flight) */
	uint32_t qber_ppm;	/* estimated QBER in parts per million */
	uint64_t seed;		/* public seed of the permutations */
	uint32_t flags;		/* QKD_CASCADE_F_* */
	/* QKD_CASCADE_CUSTOM only: number of passes and block sizes. */
	uint32_t passes;
	uint32_t block[QKD_CASCADE_MAX_PASSES];
};

/*
 * The configuration qkdd runs Cascade with, and bench_cascade measures:
 * the n key bits of a round cut into nf = ceil(n / DAEMON_FRAME_MAX)
 * equal frames of F = floor(n / nf) bits (the n - nf F bits left over
 * are dropped), all nf in flight together, the optimized variant with
 * PARALLEL and PIPELINE scheduling, tuned for the sampled QBER estimate (at least
 * 0.5 %): qkd_cascade_daemon_frames() gives F and nf (nf >= 1; F may be
 * below 64, which no round corrects), qkd_cascade_daemon_params() the
 * parameters Alice sends.
 */
#define QKD_CASCADE_DAEMON_FRAME_MAX	65536
void qkd_cascade_daemon_frames(size_t n, uint32_t *frame_bits,
			       uint32_t *nframes);
void qkd_cascade_daemon_params(struct qkd_cascade_params *p,
			       uint32_t frame_bits, uint32_t nframes,
			       double qber_estimate, uint64_t seed);

/* Counters of one side. Alice's disclosed_bits is the authoritative leak. */
struct qkd_cascade_stats {
	uint64_t disclosed_bits;	/* parity bits sent by Alice */
	uint64_t queries;		/* parity queries answered/sent */
	uint64_t rounds;		/* request/reply round trips */
	uint64_t req_bytes;		/* bytes of request messages */
	uint64_t reply_bytes;		/* bytes of reply messages */
	uint64_t corrected_bits;	/* Bob: bits flipped */
	uint32_t frames_failed;		/* Bob: frames given up (protocol) */
};

/* A growable message buffer. */
struct qkd_cascade_msg {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/*
 * A transport for Bob: send req, wait for Alice's reply. Returns 0 or a
 * negative errno. The reply buffer belongs to the transport and stays valid
 * until the next call.
 */
struct qkd_cascade_transport {
	void *ctx;
	int (*roundtrip)(void *ctx, const uint8_t *req, size_t req_len,
			 const uint8_t **reply, size_t *reply_len);
};

struct qkd_cascade_alice;
struct qkd_cascade_bob;

/*
 * Block sizes used for a parameter set: fills block[] (QKD_CASCADE_MAX_PASSES
 * entries) and returns the number of passes, or a negative errno.
 */
int qkd_cascade_schedule(const struct qkd_cascade_params *p, uint32_t *block);

/* Parameters on the wire (QKD_CASCADE_PARAMS_LEN bytes, little endian). */
size_t qkd_cascade_params_encode(const struct qkd_cascade_params *p,
				 uint8_t *buf);
int qkd_cascade_params_decode(struct qkd_cascade_params *p,
			      const uint8_t *buf, size_t len);

/*
 * Alice: keys[f] holds frame f (frame_bits bits, packed LSB first); the keys
 * are copied. Returns NULL with errno set on bad parameters or no memory.
 */
struct qkd_cascade_alice *
qkd_cascade_alice_new(const struct qkd_cascade_params *p,
		      const uint64_t *const *keys);
void qkd_cascade_alice_free(struct qkd_cascade_alice *a);
/* Start a new batch with new keys, keeping parameters and memory. */
void qkd_cascade_alice_reset(struct qkd_cascade_alice *a,
			     const uint64_t *const *keys);
/* Answer one request; the reply replaces out's contents. */
int qkd_cascade_alice_handle(struct qkd_cascade_alice *a, const uint8_t *req,
			     size_t len, struct qkd_cascade_msg *out);
void qkd_cascade_alice_stats(const struct qkd_cascade_alice *a,
			     struct qkd_cascade_stats *s);
/* Parity bits disclosed for frame f (the leak to account for that frame). */
uint64_t qkd_cascade_alice_frame_disclosed(const struct qkd_cascade_alice *a,
					   uint32_t frame);

/*
 * Bob: keys[f] holds frame f; the keys are corrected in place when the
 * protocol finishes (qkd_cascade_bob_request returns 0).
 */
struct qkd_cascade_bob *qkd_cascade_bob_new(const struct qkd_cascade_params *p,
					    uint64_t *const *keys);
void qkd_cascade_bob_free(struct qkd_cascade_bob *b);
/* Start a new batch with new keys, keeping parameters and memory. */
void qkd_cascade_bob_reset(struct qkd_cascade_bob *b, uint64_t *const *keys);
/*
 * The reference schedule (on = false): each pass's block parities asked
 * only when the passes before it are done, as before issue 16; the same
 * parities disclosed and bits corrected, one more round trip per pass.
 * For tests and benchmarks. Only before the first request of a batch
 * (else -EBUSY); kept across qkd_cascade_bob_reset().
 */
int qkd_cascade_bob_set_tops_ahead(struct qkd_cascade_bob *b, bool on);
/*
 * Produce the next request into out. Returns 1 if a request must be sent,
 * 0 when every frame is finished (keys written back), or a negative errno.
 */
int qkd_cascade_bob_request(struct qkd_cascade_bob *b,
			    struct qkd_cascade_msg *out);
/* Consume Alice's reply to the last request. */
int qkd_cascade_bob_reply(struct qkd_cascade_bob *b, const uint8_t *reply,
			  size_t len);
/* Drive the whole protocol over a transport. */
int qkd_cascade_bob_run(struct qkd_cascade_bob *b,
			const struct qkd_cascade_transport *t);
void qkd_cascade_bob_stats(const struct qkd_cascade_bob *b,
			   struct qkd_cascade_stats *s);
uint64_t qkd_cascade_bob_frame_disclosed(const struct qkd_cascade_bob *b,
					 uint32_t frame);

/* Loopback transport: ctx is a struct qkd_cascade_loopback. */
struct qkd_cascade_loopback {
	struct qkd_cascade_alice *alice;
	struct qkd_cascade_msg reply;
};
int qkd_cascade_loopback_roundtrip(void *ctx, const uint8_t *req,
				   size_t req_len, const uint8_t **reply,
				   size_t *reply_len);

void qkd_cascade_msg_free(struct qkd_cascade_msg *m);

/* Binary entropy h(p) in bits. */
double qkd_cascade_h2(double p);

#endif /* QKD_CASCADE_H */
