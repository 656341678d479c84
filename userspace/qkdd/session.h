/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkdd protocol driver: HELLO and crash recovery on every connection, then
 * BB84 rounds, Alice and Bob each as a sequence of authenticated messages
 * (see "Daemon" in Documentation/protocol.md for the message sequence):
 *
 *   quantum   Alice -> fiber -> Bob: detection events of round r
 *   SIFT      B->A Bob's detections (pulse-index gaps) + his basis for
 *             each;  A->B Alice's basis + class for each announced
 *             detection + the sample positions
 *   PA_SEED_PART  A->B the Toeplitz seed (2n - 1 bits) in parts of a
 *             frame each, before Alice's sample (round.c)
 *   EST       B->A Bob's sample bits;  A->B Alice's sample bits + Cascade
 *             parameters, or LDPC parameters and syndromes (the round's
 *             method is the last byte of Alice's SIFT answer). Both
 *             compute the same estimate; above the threshold both discard
 *             the round.
 *   CASCADE   B->A requests, A->B answers, until Bob is done; or LDPC
 *             (reconcile.c): reveal steps and frames sent whole, only for
 *             frames Bob did not decode
 *   VERIFY    B->A hash keys + tag of Bob's corrected key
 *   PA_SEED   A->B secret length, auth bytes withheld, first index
 *   COMMIT    A->B (first index, count, block id); Bob pushes, echoes it
 *             (ACK); Alice pushes. Both then add the withheld bytes to the
 *             authentication reserve.
 *
 * Authentication (frame_send_sealed / frame_recv_open, large messages split
 * with QKD_FRAME_F_MORE): SIFT, EST, PA_SEED_PART, CASCADE and LDPC are
 * deferred --
 * folded into the round's transcript, no pad each -- and VERIFY (Bob) and
 * PA_SEED (Alice) close the exchange with a Wegman-Carter tag over the
 * whole transcript; KEY_COMMIT and ABORT carry their own tags. Nothing derived
 * from a round is pushed or added to the reserve before both closing tags
 * verified. Every connection starts with SYNC (reserve positions, deferred)
 * and HELLO (closing), so the two ends re-align their reserves after a lost
 * connection or a restart from the state file (--state-dir).
 *
 * The driver is internal to qkdd: main.c calls it through qkdd.h, and its
 * files -- session.c, handshake.c, pause.c, round.c, round_alice.c,
 * round_bob.c, reconcile.c, wire.c and state.c (qkdd.h says what each is
 * for) -- share what is declared here.
 */
#ifndef QKDD_SESSION_H
#define QKDD_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "qkd/estimate.h"
#include "qkd/frame.h"
#include "qkd/ldpc.h"
#include "qkd/sifting.h"
#include "qkd/timetag.h"
#include "qkdd.h"

/* how send_msg authenticates */
enum { AUTH_OWN, AUTH_DEFER, AUTH_CLOSE };

/* recv results besides 0 and negative errnos */
#define RX_ABORT	1		/* the peer aborted the round */

/* a round with fewer sifted bits is aborted, at both ends */
#define MIN_SIFTED	256

struct proto {
	uint8_t source, nint;
	double mu[3], p[3];
	double pz_alice, pz_bob;	/* probability of Z at each end */
	double qber_abort, sample_frac, eps_sec, eps_cor;
	uint32_t block_bits, tag_bits, auth_target, key_size;
};

struct pending {
	bool valid;
	bool has_keys;			/* keys in memory (not after a restart) */
	bool auth_valid;		/* auth bytes of the current context */
	uint64_t first, id, charge_to;
	uint32_t count, auth_len;
	uint8_t *data;			/* auth bytes, then the keys */
	size_t len;
};

/*
 * What Alice's --reconcile auto predicts a method's key rate from
 * (reconcile.c): per method, a running mean of its rounds on this connection.
 */
struct ec_history {
	bool have;
	double f;			/* leak / (n h(Q)) */
	double roundtrips;		/* per round */
	double sec_per_bit;		/* wall time beyond the round trips */
};

struct ec_model {
	struct ec_history m[2];		/* QKDD_EC_CASCADE - 1, _LDPC - 1 */
	double rtt;			/* seconds, least sample; < 0: none */
	double qber;			/* last estimate; < 0: none */
	double base_s;			/* last round's wall time outside EC */
	double l0_per_bit;		/* (secret + EC leak) / n of it */
	double ldpc_sec_per_bit;	/* this host's decoding, measured */
};

/* LDPC parity-check matrices built, by parameters (reconcile.c) */
#define LDPC_CACHE_CODES	8
struct ldpc_cache {
	struct qkd_ldpc_params params[LDPC_CACHE_CODES];
	struct qkd_ldpc_code *code[LDPC_CACHE_CODES];
	uint64_t used[LDPC_CACHE_CODES], clock;
};

struct qkdd {
	const struct qkdd_opts *o;
	struct store *st;
	struct fiber *fib;
	struct qkd_rng rng;
	struct totals tot;
	struct proto pp;
	uint32_t round;
	uint64_t rounds_done;
	uint64_t next_index;
	/*
	 * The lowest index this end may ever push at again (the state file's
	 * record of next_index): a store emptied while qkdd was down (its
	 * stream deleted and made again, as `qkdctl down` and `up` do) starts
	 * at 0, and keys pushed there again would give a second key the
	 * ETSI 014 key_ID (stream, index) of an earlier one.
	 */
	uint64_t index_floor;
	uint64_t last_block_id;
	bool have_last;
	struct pending pend;
	double pulses_per_bit;
	uint64_t round_pulses;		/* pulses a round sends (Alice's
					 * configuration, in HELLO) */
	/*
	 * sampling=detections: Alice's records of the next round, drawn by
	 * the fiber thread while this round runs (round_alice.c), for a
	 * round of next_pulses pulses; 0: none under way
	 */
	struct qkd_det_records next_det;
	uint64_t next_pulses;
	size_t msg_limit;		/* largest message accepted */
	size_t last_round_tags;		/* tags each way of the last round */
	uint64_t charged;		/* pad bytes (consumed + skipped)
					 * already paid back by rounds */
	bool persist;			/* --state-dir */
	/* the connection */
	int cfd, qfd;
	struct auth_ctx *auth;
	uint32_t session_id;
	uint8_t *sbuf, *rbuf;
	uint8_t *msg;
	size_t msg_len, msg_cap;
	uint16_t rx_flags;		/* flags of the last frame received */
	char peer_reason[300];
	/* authentication failures and forged handshakes since the last
	 * good round (the back-off, qkdd_backoff_s()) */
	unsigned int auth_strikes;
	/* connections in a row that ended without a good round */
	unsigned int conn_fails;
	uint64_t ok_at_connect;		/* tot.rounds_ok when it began */
	/* between rounds: room in the stores (pause.c) */
	uint64_t peer_room;		/* Alice: keys Bob's stream takes at
					 * least (his last ROOM, less the
					 * rounds committed since) */
	bool peer_room_known;		/* Alice: a ROOM on this connection */
	uint32_t last_count;		/* Alice: keys of the last block */
	bool resume_wait;		/* Bob: ROOM sent; Alice may wait for
					 * room of her own, without a limit */
	/* --replay: this end's recording (replay.c), NULL without */
	struct qkd_tt_reader *replay;
	bool replay_done;		/* Alice: replayed to its end */
	/* --key-source etsi014 (round_kme.c) */
	struct kme_client *kme;
	unsigned int kme_fails;		/* refusals in a row (Alice) */
	/* error correction (reconcile.c) */
	uint8_t ec_methods;		/* QKDD_EC_BITs both ends allow */
	struct ec_model ecm;		/* Alice: --reconcile auto */
	struct ldpc_cache ldpc;
	uint64_t ldpc_seed;		/* Alice: this connection's codes */
	bool ldpc_seed_set;
};

struct round {
	struct round_stats rs;
	uint64_t charge_to;		/* q->charged once committed */
	struct qkd_sifted sifted;
	uint64_t *mask, *peer, *key, *seed, *final;
	size_t N, k, n, l;
	size_t seed_bits;		/* R->seed: 2n - 1 (round_seed_bits()) */
	size_t seed_got;		/* Bob: bits of it received */
	uint32_t F, nf;			/* EC frames: nf of F bits */
	uint64_t **frames;
	unsigned int ec;		/* QKDD_EC_CASCADE / _LDPC */
	struct qkd_ldpc_params lp;	/* LDPC: the round's parameters */
	struct qkd_ldpc_alice *la;
	struct qkd_ldpc_bob *lb;
	double leak_ec;			/* LDPC: bits disclosed, all frames */
	uint64_t corrected;		/* LDPC, Bob: bits corrected */
	double ec_t0, ec_t1;		/* wall clock around EC, seconds */
	double ec_build_s;		/* of it Alice's building of H */
	struct qkd_estimate est;
	double n_z[3], n_x[3], m_x[3];
	uint8_t *bytes;
	size_t nbytes;
	struct timespec t0;
};

/* ---- wire.c ------------------------------------------------------------- */

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	bool err;
};

struct rbuf {
	const uint8_t *p;
	size_t len, off;
	bool err;
};

void wb_u(struct wbuf *w, uint64_t v, int bytes);
void wb_f64(struct wbuf *w, double d);
void wb_bytes(struct wbuf *w, const void *b, size_t n);
void wb_bits(struct wbuf *w, const uint64_t *a, size_t nbits);
void wb_free(struct wbuf *w);
uint64_t rb_u(struct rbuf *r, int bytes);
double rb_f64(struct rbuf *r);
const uint8_t *rb_bytes(struct rbuf *r, size_t n);
uint64_t *rb_bits(struct rbuf *r, size_t nbits);
bool rb_done(const struct rbuf *r);
int send_msg(struct qkdd *q, uint8_t type, const uint8_t *p, size_t len,
	     int mode);
void send_abort(struct qkdd *q, uint16_t reason, const char *text);
int frame_version_mismatch(struct qkdd *q);
int recv_msg(struct qkdd *q, uint32_t want, uint8_t *type, bool stoppable);

/* ---- state.c ------------------------------------------------------------ */

void pending_clear(struct pending *p);
/* @b to @path durably: written to @tmp, fsynced, renamed, @dir fsynced.
 * 0 or -errno. */
int write_file_sync(const char *dir, const char *tmp, const char *path,
		    const uint8_t *b, size_t len);
uint64_t fnv64(uint64_t h, const void *p, size_t n);
void update_reserve(struct qkdd *q);
uint64_t auth_spent(const struct qkdd *q);
int state_save(struct qkdd *q);
int reserve_add(struct qkdd *q, const uint8_t *bytes, size_t len);
void maybe_retire(struct qkdd *q);

/* ---- handshake.c -------------------------------------------------------- */

/*
 * Largest re-alignment of a pool at a connection, in 16-byte chunks: what
 * honest ends can differ by (a write-ahead batch set aside at each end by
 * a restart, and the few tags of a round lost with the connection). The
 * SYNC positions are authenticated by the SYNC's own tags, at the
 * positions they state, before anything moves (handshake.c, recv_sync()):
 * a forged position skips nothing; one more than this far ahead drops
 * the connection with the alarm, unchecked.
 */
#define QKDD_SYNC_MAX_SKIP	(2 * QKD_AUTH_PERSIST_BATCH + 16)
/* An authentication failure or a forged handshake: alarm, back off. */
void auth_strike(struct qkdd *q, const char *what);

/* Messages before HELLO verified: SYNC and HELLO are far smaller. */
#define HANDSHAKE_MSG_MAX	(64u * 1024)
/* A round has at most 2^32 pulses. */
#define ROUND_PULSES_MAX	(1ull << 32)
uint64_t round_pulses(const struct qkdd *q);
size_t round_msg_limit(uint64_t npulses);
uint64_t round_max_detections(const struct qkdd *q);

int hello(struct qkdd *q);

/* ---- round.c ------------------------------------------------------------ */

void round_free(struct round *R);
__attribute__((format(printf, 3, 4)))
int round_malformed(struct qkdd *q, struct round *R, const char *fmt, ...);
__attribute__((format(printf, 4, 5)))
int round_abort(struct qkdd *q, struct round *R, int reason,
		const char *fmt, ...);
uint64_t auth_withhold(struct qkdd *q, struct round *R, size_t level,
		       unsigned int tags_after, uint64_t *used);
int room_check(struct qkdd *q, struct round *R, uint32_t count);
bool closing_tag_verified(struct qkdd *q, struct round *R, const char *why);
int commit_authenticated(struct qkdd *q);
int rx_fail(struct qkdd *q, struct round *R, int r);
int write_sift_announce(struct wbuf *w, const struct qkd_det_records *b);
uint64_t *sample_bits(const struct round *R);
void round_cut(struct round *R);
/*
 * The PA seed in PA_SEED_PART messages before Alice's estimation sample
 * (round.c): 2n - 1 bits, of which privacy amplification takes the first
 * n + l - 1. A part carries at most QKDD_SEED_PART_BITS_MAX bits, Alice's
 * qkdd_seed_part_bits (a variable only so that the tests can cut the
 * seed of a small round into many parts).
 */
#define QKDD_SEED_PART_BITS_MAX	((size_t)(QKD_FRAME_MAX_PAYLOAD - 64) * 8)
extern size_t qkdd_seed_part_bits;
size_t round_seed_bits(const struct round *R);
/* Alice: draw R->seed and send it. 0 or -errno. */
int alice_send_seed(struct qkdd *q, struct round *R);
/* Bob: the PA_SEED_PART in q->msg into R->seed, every check of its place
 * made. 0, 1 the round was aborted (malformed: the alarm), or -errno. */
int bob_seed_part(struct qkdd *q, struct round *R);
bool sample_is_x_basis(const struct qkdd *q);
/*
 * Where Alice's sample positions come from: qkd_rng_os (getrandom()). A
 * pointer only so that the tests can check that it is used.
 */
extern int (*qkdd_sample_rng)(struct qkd_rng *r);
int make_mask(struct qkdd *q, struct round *R);
int take_mask(struct qkdd *q, struct round *R, struct rbuf *rb);
int estimate(struct qkdd *q, struct round *R, const uint64_t *peer_packed);
uint64_t key_length(struct qkdd *q, struct round *R, double leak,
		    const char **why);
int amplify(struct qkdd *q, struct round *R, uint32_t auth_len,
	    uint32_t count);
void commit_payload(struct wbuf *w, uint64_t first, uint32_t count,
		    uint32_t key_size, uint64_t id, uint32_t auth_len);
uint64_t block_id(struct qkdd *q, const struct round *R);
void round_elapsed(struct round *R);
int finish_round(struct round *R, uint32_t auth_len, uint32_t count,
		 uint64_t first);

/* ---- round_alice.c, round_bob.c ----------------------------------------- */

int alice_round(struct qkdd *q, struct round *R);
/* The next round's detections no longer wanted: waited for and wiped. */
void alice_detections_cancel(struct qkdd *q);
int bob_round(struct qkdd *q, struct round *R);
int alice_commit(struct qkdd *q, struct round *R, uint32_t auth_len,
		 uint32_t count, uint64_t id);
int bob_commit(struct qkdd *q, struct round *R, uint64_t first,
	       uint32_t auth_len, uint32_t count, uint64_t id);

/* ---- reconcile.c -------------------------------------------------------- */

/* CLOCK_MONOTONIC, seconds. */
double ec_now(void);
/* The QKDD_EC_BITs a --reconcile setting allows. */
uint8_t ec_allowed(enum qkdd_reconcile r);
/* A new connection: no RTT sample, no history, a new LDPC seed. */
void ec_connection_start(struct qkdd *q);
void ec_rtt_sample(struct qkdd *q, double seconds);
/*
 * A message of error correction (types in @want): 0, 1 the round ended
 * (the peer's ABORT: R's reason set), or -errno. @since > 0: the time
 * since then is an RTT sample (our answer to the peer's next request).
 */
int ec_recv(struct qkdd *q, struct round *R, uint32_t want, uint8_t *type,
	    double since);
/* Predicted secret key rate (bits/s) of method @m for n key bits;
 * *key_bits (may be NULL): the bits it predicts. */
double ec_predict(const struct ec_model *e, unsigned int m, double n,
		  double *key_bits);
/* The method of the higher predicted rate among @methods. */
unsigned int ec_choose(const struct ec_model *e, uint8_t methods, double n);
/* Alice: this round's method, from --reconcile or ec_choose(). */
unsigned int ec_round_method(struct qkdd *q, size_t sifted);
/* Alice, after a verified round: what the model learns from it. */
void ec_learn(struct qkdd *q, const struct round *R, double leak_ec,
	      uint64_t secret_bits);
void ldpc_cache_free(struct ldpc_cache *c);
/* Alice: the LDPC parameters, then the syndromes, into her estimation
 * sample; then answer Bob until his VERIFY_HASH (in q->msg, *type). */
/*
 * Where Alice's LDPC parameters come from: qkd_ldpc_daemon_params. A
 * pointer only so that the tests can make every frame fail.
 */
extern int (*qkdd_ldpc_params)(struct qkd_ldpc_params *p, uint32_t frame_bits,
			       uint32_t nframes, double est,
			       uint64_t sample_bits, uint64_t seed);
int alice_ldpc_params(struct qkdd *q, struct round *R, struct wbuf *w);
int alice_ldpc_syndrome(struct qkdd *q, struct round *R, struct wbuf *w);
int alice_ldpc_exchange(struct qkdd *q, struct round *R, uint8_t *type);
/* Bob: the rest of Alice's estimation sample (parameters, syndromes),
 * then decode, ask, and correct R->frames. */
int bob_ldpc(struct qkdd *q, struct round *R, struct rbuf *rb);

/* ---- pause.c ------------------------------------------------------------ */

uint64_t round_need(const struct qkdd *q);
/* Before each round: 0 to start it, -EINTR stopped, or -errno. */
int alice_before_round(struct qkdd *q);
int bob_before_round(struct qkdd *q);
int room_cap(struct qkdd *q, uint32_t *count);

/* ---- replay.c ----------------------------------------------------------- */

/* Open o->replay for this end (nothing without --replay): 0; -EINVAL,
 * -ENOMEM with the reason logged. */
int replay_open(struct qkdd *q);
void replay_close(struct qkdd *q);
/* Alice: is there no full round of @npulses left? */
bool replay_exhausted(const struct qkdd *q, uint64_t npulses);
/*
 * Alice: the next window of @npulses slots into @a (allocated here) and
 * its name to Bob. 0; -EPERM (the file refused: stop), -ECONNRESET,
 * -ENOMEM.
 */
int replay_alice(struct qkdd *q, uint64_t npulses,
		 struct qkd_alice_records *a);
/*
 * Bob: the detections of the window [@first, @first + @npulses) into @d.
 * 0; -EPROTO (a window no honest Alice sends: before what was replayed,
 * or past the recording); -EPERM (the file refused); -ENOMEM.
 */
int replay_bob(struct qkdd *q, uint64_t first, uint64_t npulses,
	       struct qkd_detections *d);

/* ---- round_kme.c -------------------------------------------------------- */

/* --key-source etsi014: a round of each role (protocol.md) */
int alice_kme_round(struct qkdd *q, struct round *R);
int bob_kme_round(struct qkdd *q, struct round *R);

#endif /* QKDD_SESSION_H */
