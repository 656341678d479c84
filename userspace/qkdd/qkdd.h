/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkdd: the BB84 daemon. One concern per file:
 *
 *   main.c         options, signals, the connection loop
 *   config.c       options and the configuration file (key = value lines)
 *   peer.c         TCP classical and quantum connections, with reconnect
 *   quantum.c      the simulated fiber stage (a thread: pulses in over a
 *                  socket pair, detection events out to Bob)
 *   replay.c       --replay: recorded detection files instead of the
 *                  simulated fiber (each round a window of their slots)
 *   kme_client.c   --key-source etsi014: the ETSI GS QKD 014 client of a
 *                  vendor KME (libcurl, mTLS)
 *   kme_parse.c    its answers parsed (Key container, Status, Error)
 *   session.c      the protocol driver on one connection: HELLO, then
 *                  rounds (session.h describes the protocol)
 *   handshake.c    SYNC/HELLO and recovery at every connection
 *   pause.c        between rounds: no round until both stores have room
 *   round.c        what the rounds of both roles share
 *   round_alice.c  the per-round protocol of Alice
 *   round_bob.c    the per-round protocol of Bob
 *   reconcile.c    error correction: which method a round uses (Cascade
 *                  or LDPC, --reconcile), and the LDPC exchange
 *   round_kme.c    the rounds of --key-source etsi014 (both roles)
 *   wire.c         authenticated messages and their byte buffers
 *   state.c        commit records, the state file (--state-dir), the
 *                  authentication reserve
 *   push.c         the key store: the kernel (libqkd) or a file (--no-kernel)
 *   stats.c        per-round statistics, log lines and the status file
 *   log.c          log lines: "qkdd[alice] round 3: ..." (with journal
 *                  priorities)
 *   service.c      sd_notify, and the reload on SIGHUP
 *   control.c      the control socket (qkdctl daemon show)
 *   cpu.c          per-stage CPU accounting (the log's "cpu:" lines, the
 *                  status file's cpu_* keys)
 */
#ifndef QKDD_H
#define QKDD_H

#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "qkd/channel.h"

/* Where a round's key comes from (--key-source). */
enum qkdd_key_source {
	QKDD_SRC_BB84 = 0,	/* the (simulated) BB84 stage */
	QKDD_SRC_ETSI014,	/* a vendor KME over ETSI GS QKD 014 */
};

/*
 * Error correction (--reconcile): Cascade, LDPC, or chosen by Alice each
 * round from the measured round-trip time and QBER (auto, the default).
 * The wire values of a round's method are QKDD_EC_CASCADE / _LDPC.
 */
enum qkdd_reconcile {
	QKDD_EC_AUTO = 0,
	QKDD_EC_CASCADE = 1,
	QKDD_EC_LDPC = 2,
};
/* bit of a method in the HELLO's set of methods an end allows */
#define QKDD_EC_BIT(m)		(1u << ((m) - 1))
#define QKDD_EC_ALL		(QKDD_EC_BIT(QKDD_EC_CASCADE) | \
				 QKDD_EC_BIT(QKDD_EC_LDPC))
/* "cascade", "ldpc", or "none" (reconcile.c) */
const char *ec_method_name(unsigned int m);

enum qkdd_role {
	QKDD_ROLE_NONE = 0,
	QKDD_ALICE,
	QKDD_BOB,
};

#define QKDD_PATH_MAX		512
#define QKDD_ADDR_MAX		256
#define QKDD_NAME_MAX		64

struct qkdd_opts {
	enum qkdd_role role;
	char peer[QKDD_ADDR_MAX];	/* HOST:PORT to connect to */
	char listen[QKDD_ADDR_MAX];	/* ADDR:PORT to listen on */
	uint8_t stream[16];
	bool have_stream;
	char link[QKDD_NAME_MAX];
	char psk[QKDD_PATH_MAX];
	char cert[QKDD_PATH_MAX];
	char key[QKDD_PATH_MAX];
	char ca[QKDD_PATH_MAX];
	char peer_name[QKDD_ADDR_MAX];
	uint64_t seed;
	bool have_seed;
	struct qkd_channel_params ch;
	uint32_t block_bits;		/* target sifted bits per round */
	uint64_t rounds;		/* 0: run until stopped */
	bool no_kernel;
	char out[QKDD_PATH_MAX];
	char status[QKDD_PATH_MAX];
	char control[108];		/* --control: unix socket path */
	uint32_t key_size;		/* --no-kernel: bytes per key */
	double qber_abort;
	double sample_frac;		/* single photons: share sampled */
	double eps_sec, eps_cor;
	uint32_t tag_bits;		/* verification hash */
	enum qkdd_reconcile reconcile;	/* --reconcile */
	uint32_t auth_target;		/* auth reserve kept, bytes */
	char state_dir[QKDD_PATH_MAX];	/* --state-dir: auth reserve state */
	uint32_t timeout_s;		/* classical message timeout */
	uint32_t retry_max_s;		/* reconnect back-off ceiling */
	/*
	 * --backoff-base, --backoff-max: the wait after a connection that
	 * ended before a round completed (or an authentication failure),
	 * doubling from the base to the cap (seconds; qkdd_backoff_s())
	 */
	uint32_t backoff_base_s, backoff_max_s;
	/*
	 * --simulated-channel-test-keys-only: the simulated quantum link
	 * (Bob's detections and bases in clear on PORT + 1) may leave the
	 * host; the keys are then for testing only, and qkdd says so.
	 */
	bool sim_test_keys;
	/*
	 * --replay FILE: this end's recorded detection file (Alice's pulses
	 * or Bob's detections, qkd/timetag.h) instead of the simulated
	 * quantum channel; the quantum connection carries only each round's
	 * window of pulse slots.
	 */
	char replay[QKDD_PATH_MAX];
	bool verbose;
	/*
	 * --key-source etsi014: the local vendor KME (--kme https://HOST:PORT),
	 * our client certificate and key and the CA of the KME's certificate
	 * (--kme-cert, --kme-key, --kme-ca), and the other SAE (--kme-sae:
	 * Alice asks enc_keys for that slave SAE, Bob dec_keys from that
	 * master SAE).
	 */
	enum qkdd_key_source key_source;
	char kme[QKDD_ADDR_MAX];
	char kme_cert[QKDD_PATH_MAX];
	char kme_key[QKDD_PATH_MAX];
	char kme_ca[QKDD_PATH_MAX];
	char kme_sae[QKDD_NAME_MAX + 1];
	uint32_t kme_keys;		/* --kme-keys: keys a round asks for */
};

/* ---- config.c ----------------------------------------------------------- */

void qkdd_opts_default(struct qkdd_opts *o);
/*
 * Set option @name (a long option name, as in the config file) to @value
 * (NULL for a flag). 0, or -EINVAL with a reason in @err and @o unchanged.
 */
int qkdd_opt_set(struct qkdd_opts *o, const char *name, const char *value,
		 char *err, size_t errlen);
/*
 * Configuration text: one "key = value" (or "key value", or a bare flag)
 * per line, '#' comments, blank lines. A bad line fails the whole parse
 * with -EINVAL and "LINE: reason" in @err.
 */
int qkdd_config_parse(struct qkdd_opts *o, const char *text, char *err,
		      size_t errlen);
/* The same from a file ("FILE:LINE: reason"); -errno if unreadable. */
int qkdd_config_load(struct qkdd_opts *o, const char *path, char *err,
		     size_t errlen);
/*
 * --channel KEY=VAL,KEY=VAL,... on top of *@p; checked with
 * qkd_channel_params_check. A rejected spec leaves *@p unchanged.
 */
int qkdd_channel_parse(struct qkd_channel_params *p, const char *spec,
		       char *err, size_t errlen);
/*
 * The most key bits a round of @block_bits sifted bits corrects and
 * verifies: the round aims at 1.05 block_bits sifted bits; 1.5 times is
 * the ceiling the configuration is checked against, and a round above it
 * gives no key (key_length()).
 */
static inline uint64_t qkdd_max_key_bits(uint32_t block_bits)
{
	return 3 * (uint64_t)block_bits / 2;
}
/*
 * Largest --block-bits (issue 16). The PA seed goes in as many
 * PA_SEED_PART frames as it needs (round.c), so no frame limits a block
 * any more; memory does: a daemon holds some 35-45 bytes per detection
 * (the per-detection records, Bob's announcement, the sifted positions),
 * about 0.6-0.8 GB per daemon at 2^23 sifted bits and 1.2-1.5 GB at 2^24
 * (measured; protocol.md, "Secret key length"). 2^23 is the largest block tested
 * with the memory that leaves to a host.
 */
#define QKDD_BLOCK_BITS_MAX	(1u << 23)
/*
 * Is the address of --peer or --listen ("HOST:PORT", "[V6]:PORT") a
 * literal loopback address (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104)?
 * Names are not: they may resolve anywhere.
 */
bool qkdd_addr_is_loopback(const char *addr);
/* The warning of --simulated-channel-test-keys-only (start, every round's
 * log; the status file has the short form, QKDD_SIM_STATUS_WARNING). */
#define QKDD_SIM_WARNING \
	"WARNING: simulated quantum channel across hosts (--simulated-channel-test-keys-only): Bob's detections and bases travel in clear on PORT+1, anyone reading them can rebuild every key: the keys are for testing only"
#define QKDD_SIM_STATUS_WARNING \
	"simulated quantum channel across hosts (--simulated-channel-test-keys-only): keys for testing only"
/* Cross-option checks after everything is parsed. */
int qkdd_opts_check(const struct qkdd_opts *o, char *err, size_t errlen);
/*
 * The command line, after the --config files it names, on top of *@o;
 * STATE_DIRECTORY (systemd's StateDirectory=) is the default --state-dir.
 * 0, QKDD_ARGS_HELP, QKDD_ARGS_VERSION, or -1 with the reason in @err
 * (@quiet: getopt prints nothing, for a reload).
 */
#define QKDD_ARGS_HELP		1
#define QKDD_ARGS_VERSION	2
int qkdd_args_parse(struct qkdd_opts *o, int argc, char **argv, bool quiet,
		    char *err, size_t errlen);
/* SIGHUP parses @argc/@argv again and applies it to @live. */
void qkdd_reload_init(struct qkdd_opts *live, int argc, char **argv);
/*
 * Copy what a reload may change from @n to @live (verbose, timeout,
 * retry-max, backoff-base, backoff-max); the number of other options that
 * differ, named in @changed.
 */
int qkdd_reload_diff(struct qkdd_opts *live, const struct qkdd_opts *n,
		     char *changed, size_t len);

/* ---- control.c ------------------------------------------------------------ */

/*
 * The control socket at @path (mode 0600; root and our own user answered):
 * "status" gives the last published status. 0 or -errno with @err set.
 */
int control_start(const char *path, char *err, size_t errlen);
/* The status text (key=value lines) the socket answers from now on. */
void control_publish(const char *text, size_t len);
void control_stop(void);

/* ---- service.c ----------------------------------------------------------- */

/*
 * sd_notify(3) to the service manager (nothing without NOTIFY_SOCKET):
 * READY=1, STATUS=..., STOPPING=1, RELOADING=1.
 */
void qkdd_notify(const char *state);
__attribute__((format(printf, 1, 2))) void qkdd_notify_status(const char *fmt,
							      ...);

/* ---- log.c -------------------------------------------------------------- */

/* SIGINT, or a second SIGTERM: stop now (a round in progress is dropped,
 * which the commit records make safe) */
extern volatile sig_atomic_t qkdd_stop;
/* SIGTERM: finish the round in progress, then stop */
extern volatile sig_atomic_t qkdd_term;
/* SIGHUP: reload the configuration between rounds (qkdd_reload_apply) */
extern volatile sig_atomic_t qkdd_reload;
/* a round has begun (Alice: started it; Bob: its pulses arrived) */
extern bool qkdd_in_round;
/* Should a wait give up? Now on qkdd_stop; on qkdd_term outside a round. */
static inline bool qkdd_stopping(void)
{
	return qkdd_stop || (qkdd_term && !qkdd_in_round);
}
/* Between rounds and connections: apply a pending SIGHUP (main.c). */
void qkdd_reload_apply(void);
/*
 * Fault injection for the crash-recovery tests (environment QKDD_FAULT):
 * "alice-after-ack" exits Alice when Bob acknowledged a block with keys,
 * before she pushes it; "bob-after-push" exits Bob after pushing a block
 * with keys, before he acknowledges it. NULL in normal operation.
 */
extern const char *qkdd_fault;
/*
 * For the crash tests (environment QKDD_PUSH_BATCH_KEYS): at most this many
 * keys per KEY_ADD message, so that small blocks span several messages as
 * large ones do (a message holds up to 32 KiB). 0: as many as fit.
 */
extern uint32_t qkdd_push_batch_keys;
/*
 * Syslog priorities (sd-daemon(3)'s SD_ERR ... SD_DEBUG), the "<N>" prefix
 * of each line when stderr is the journal (JOURNAL_STREAM).
 */
#define QKDD_LOG_ERR		3
#define QKDD_LOG_WARNING	4
#define QKDD_LOG_NOTICE		5
#define QKDD_LOG_INFO		6
#define QKDD_LOG_DEBUG		7
void qkdd_log_init(enum qkdd_role role, bool verbose);
void qkdd_log_verbose(bool verbose);
void qkdd_log_round(uint64_t round);	/* 0: no round */
/* info: a round done, a start, a restore */
__attribute__((format(printf, 1, 2))) void qlog(const char *fmt, ...);
/* notice: a connection lost, a reload */
__attribute__((format(printf, 1, 2))) void qnotice(const char *fmt, ...);
/* warning: a round aborted (QBER above the threshold, ...) */
__attribute__((format(printf, 1, 2))) void qwarn(const char *fmt, ...);
/* error: what stops the daemon or needs an operator */
__attribute__((format(printf, 1, 2))) void qerr(const char *fmt, ...);
/* An authentication alarm: "ALARM: " and the line, on stderr, an error. */
__attribute__((format(printf, 1, 2))) void qalarm(const char *fmt, ...);
__attribute__((format(printf, 1, 2))) void qdebug(const char *fmt, ...);
const char *qkdd_role_name(enum qkdd_role r);

/* ---- peer.c ------------------------------------------------------------- */

/* Split "host:port" / "[v6]:port"; the quantum channel uses port + 1. */
int peer_split(const char *addr, char *host, size_t hostlen,
	       unsigned int *port);
int peer_listen(const char *host, unsigned int port);
/* Connect with back-off until connected or qkdd_stop; fd or -errno. */
int peer_connect(const char *host, unsigned int port, unsigned int max_s);
/* Accept on @lfd until a connection or qkdd_stop: the newest waiting, older
 * ones closed unused; fd or -errno. */
int peer_accept(int lfd);
/* Wait until @fd is readable: 1, 0 on timeout, -EINTR when stopping. */
int peer_wait(int fd, unsigned int timeout_s, bool stoppable);

/* ---- quantum.c ---------------------------------------------------------- */

struct fiber;
/* Alice's side: start the fiber thread with its own socket pair. */
struct fiber *fiber_start(const struct qkd_channel_params *p, uint64_t seed,
			  bool seeded);
void fiber_stop(struct fiber *f);
/* Send a round's pulses into the fiber; detections go out on @qfd. */
int fiber_send(struct fiber *f, int qfd, uint32_t round,
	       const struct qkd_alice_records *a);
/*
 * sampling=detections, in three steps so that a round's sampling can run
 * on the fiber thread during the round before it:
 * fiber_prepare_post() asks the thread to draw Alice's records of the
 * detected pulses of a round of @npulses pulses, and only those, into @a
 * (empty; not to be touched until fiber_prepare_wait() has answered;
 * qkd_det_records_free() it) together with the detections
 * (qkd_channel_generate_sparse()), which the thread keeps;
 * fiber_prepare_wait() waits for that; fiber_send_prepared() sends the
 * kept detections out on @qfd as round @round, as fiber_send()'s go, and
 * returns once they are out. fiber_cancel() waits for a posted request and
 * wipes what the thread keeps (a session's end: nothing of it is sent).
 */
int fiber_prepare_post(struct fiber *f, uint64_t npulses,
		       struct qkd_det_records *a);
int fiber_prepare_wait(struct fiber *f);
int fiber_send_prepared(struct fiber *f, int qfd, uint32_t round);
int fiber_cancel(struct fiber *f);
/*
 * Bob's side: read the detection events of round *@round from @qfd (older
 * rounds are skipped); *@npulses gets its pulse count. What Alice's fiber
 * never sends is refused (-EPROTO) before anything is allocated: another
 * magic, a pulse count other than @pulses (the agreed one), more than
 * @max_det detections, a later round; and malformed detections.
 */
int quantum_recv(int qfd, uint32_t *round, unsigned int timeout_s,
		 uint64_t pulses, uint64_t max_det,
		 struct qkd_detections *d, uint64_t *npulses);
/*
 * --replay: Alice names the window of pulse slots of round @round, [@first,
 * @first + @pulses) of the recordings, on @qfd ("QKDR", u32 round, u64
 * pulses, u64 first: nothing secret). Bob reads it as quantum_recv()
 * reads detections (older rounds skipped; another magic, pulse count or a
 * later round refused with -EPROTO).
 */
int quantum_send_window(int qfd, uint32_t round, uint64_t first,
			uint64_t pulses);
int quantum_recv_window(int qfd, uint32_t *round, unsigned int timeout_s,
			uint64_t pulses, uint64_t *first);

/* ---- kme_parse.c, kme_client.c ------------------------------------------- */

#define KME_BODY_MAX		(1u << 20)	/* largest answer taken */
#define KME_KEYS_MAX		1024		/* keys a request asks for */
#define KME_KEY_SIZE_MAX	512		/* bytes (the stream's limit) */
#define KME_KEY_ID_MAX		64		/* characters (a UUID: 36) */
#define QKDD_KME_KEYS_DEFAULT	64		/* --kme-keys */
typedef char kme_key_id[KME_KEY_ID_MAX + 1];

/* Keys of a Key container: ids[i] and key i at keys + i * key_size. */
struct kme_keys {
	uint32_t count, key_size;	/* key_size in bytes */
	kme_key_id *ids;
	uint8_t *keys;
};
/* A key_ID we send back to a KME: 1..KME_KEY_ID_MAX of [A-Za-z0-9-_.:]. */
bool kme_key_id_ok(const char *s, size_t n);
/* Wipe and free the keys (a zeroed struct is fine). */
void kme_keys_free(struct kme_keys *k);
/*
 * A Key container of exactly @count keys of @key_size bytes, each key_ID
 * once; with @want (dec_keys) exactly those key_IDs, the keys in @want's
 * order. 0, or -EPROTO (-ENOMEM) with the reason in @err, @out empty and
 * every key byte wiped.
 */
int kme_parse_keys(const char *body, size_t len, uint32_t count,
		   uint32_t key_size, const kme_key_id *want,
		   struct kme_keys *out, char *err, size_t errlen);
/* Status (sizes in bits, as ETSI 014 has them) */
struct kme_status {
	uint32_t key_size, stored_key_count, max_key_per_request;
	uint32_t max_key_size, min_key_size;
};
int kme_parse_status(const char *body, size_t len, struct kme_status *st,
		     char *err, size_t errlen);
/* The "message" of an Error body, printable, "" if none. */
void kme_parse_message(const char *body, size_t len, char *msg,
		       size_t msglen);

struct kme_client;
/* One keep-alive HTTPS connection to the vendor KME; NULL with @err. */
struct kme_client *kme_client_new(const struct qkdd_opts *o, char *err,
				  size_t errlen);
void kme_client_free(struct kme_client *c);
/*
 * The requests; 0, or -errno with what the KME said (HTTP status and its
 * message, or the TLS/connection error) in @err. Key bytes pass through
 * one buffer of ours, wiped after every request.
 */
int kme_get_status(struct kme_client *c, struct kme_status *st, char *err,
		   size_t errlen);
int kme_enc_keys(struct kme_client *c, uint32_t number, uint32_t key_size,
		 struct kme_keys *out, char *err, size_t errlen);
int kme_dec_keys(struct kme_client *c, const kme_key_id *ids,
		 uint32_t count, uint32_t key_size, struct kme_keys *out,
		 char *err, size_t errlen);

/* ---- push.c ------------------------------------------------------------- */

struct store;
/* Kernel (libqkd) or --no-kernel file store. NULL with @err on failure. */
struct store *store_open(const struct qkdd_opts *o, char *err, size_t errlen);
void store_close(struct store *s);
uint32_t store_key_size(const struct store *s);
/* The index the next pushed key gets (kernel: STREAM_GET next_index). */
int store_next_index(struct store *s, uint64_t *next);
int store_push(struct store *s, uint64_t first, const uint8_t *keys,
	       uint32_t count);
/* Remove keys [first, end) pushed on this side only (orphans). */
int store_drop(struct store *s, uint64_t first, uint64_t end);
/*
 * Keys the stream can still take, and its limit (@max_keys may be NULL;
 * both UINT64_MAX for a key file).
 */
int store_room(struct store *s, uint64_t *room, uint64_t *max_keys);
/*
 * Waiting for room: *@fd, a socket joined to the kernel's events (-1 for
 * a key file, which is never full); 0 or -errno. And the drain of what it
 * has queued: 1 if our stream may have room now, 0 if not, or -errno;
 * closed when the wait is over.
 */
int store_events_fd(struct store *s, int *fd);
int store_events_drain(struct store *s);
void store_events_close(struct store *s);
/* Link state up/down (kernel only; no-op otherwise). */
void store_link_state(struct store *s, bool up);

/* ---- cpu.c -------------------------------------------------------------- */

/*
 * The stages a round's CPU time is charged to (Documentation/qkdd.md,
 * "Per-stage CPU time"): the simulated quantum stage (Alice's pulses, the
 * fiber thread, Bob's detection stream and detector model), sifting,
 * estimation (sample, estimate, the key and its Cascade frames), error
 * correction (Cascade), verification, privacy amplification (the seed,
 * Toeplitz hashing, the key bytes), authentication (sealing and opening
 * frames, the transcript, the reserve), I/O on the classical channel
 * (framing, syscalls), pushing into the store (and the state file), and
 * the rest.
 */
enum qkdd_stage {
	QS_OTHER, QS_QUANTUM, QS_SIFT, QS_EST, QS_EC, QS_VERIFY, QS_PA,
	QS_AUTH, QS_IO, QS_PUSH, QS_N
};
extern const char *const qkdd_stage_name[QS_N];
/* This thread's CPU time (user + system), seconds. */
double qkdd_thread_cpu(void);
/* Charge the CPU time since the last switch to the current stage, make @s
 * current; returns the stage that was (to switch back to). */
enum qkdd_stage stage_switch(enum qkdd_stage s);
/* Add another thread's CPU time (the fiber thread's) to stage @s. */
void stage_add(enum qkdd_stage s, double seconds);
/* The accumulated seconds per stage, up to now. */
void stage_read(double out[QS_N]);

/* ---- stats.c ------------------------------------------------------------ */

struct round_stats {
	uint64_t round;
	bool ok;
	char reason[200];		/* abort reason, "" when ok */
	uint64_t pulses, detections, sifted, sampled, sample_errors;
	double qber;
	uint64_t key_bits;		/* n: bits into error correction */
	uint64_t disclosed;		/* Cascade parities + verify tag */
	double efficiency;		/* f = disclosed / (n h(Q)) */
	/*
	 * Bob, once verification passed (Alice's PA seed arrived): the
	 * errors Cascade corrected, which are the true errors, and Cascade's
	 * f against them: cascade parities / (n h(errors / n)). -1 where
	 * not known (Alice, an aborted round).
	 */
	int64_t true_errors;
	double efficiency_true;
	double cpu[QS_N];		/* CPU seconds of the round per stage */
	uint64_t secret_bits;		/* ℓ */
	uint64_t auth_bytes;		/* withheld for the auth reserve */
	uint64_t auth_used;		/* auth key (pads) the round used */
	double auth_eps_log2;		/* log2 of the transcript tag bound */
	uint64_t keys, first_index;
	uint64_t cascade_rounds;
	/*
	 * The round's error correction (QKDD_EC_CASCADE / _LDPC, 0 before
	 * it was chosen), its round trips (Cascade's, or LDPC's: the
	 * syndrome rides on Alice's estimation sample, then one per reveal
	 * step and one for disclosed frames), and the LDPC frames that did
	 * not decode and were disclosed whole (counted as leaked).
	 */
	uint8_t ec_method;
	uint64_t ec_roundtrips;
	uint32_t ec_frames_disclosed;
	double ec_seconds;		/* wall time of error correction */
	double seconds;
	/*
	 * The counts the decoy bound is computed from (per intensity class:
	 * sifted Z key bits, sifted X bits, X errors), published so that a
	 * test can recompute the secret length independently (-1: the
	 * round did not get to the estimate).
	 */
	double n_z[3], n_x[3], m_x[3];
	bool estimated;
};

struct totals {
	uint64_t rounds, rounds_ok, rounds_aborted;
	uint64_t keys, secret_bits, auth_bytes;
	uint64_t next_index;
	size_t auth_reserve;		/* bytes, both pools */
	uint64_t auth_failures;
	unsigned int auth_backoff_s;	/* > 0: the authentication alarm */
	unsigned int conn_failures;	/* in a row, without a good round */
	uint64_t conn_failures_total;
	unsigned int backoff_s;		/* before the next connection */
	uint64_t auth_spent;		/* pad bytes used since start */
	uint64_t x509_bootstraps;	/* TLS bootstraps (X.509 mode) */
	double cpu[QS_N];		/* CPU seconds per stage, all rounds */
	bool connected;
	bool paused;			/* a key store full (pause.c) */
};

void stats_round(const struct qkdd_opts *o, struct totals *t,
		 const struct round_stats *r);
void stats_write(const struct qkdd_opts *o, const struct totals *t,
		 const struct round_stats *last);

/* ---- session.c ---------------------------------------------------------- */

struct auth_ctx;
struct qkdd;

struct qkdd *qkdd_new(const struct qkdd_opts *o, struct store *st,
		      struct fiber *fib);
void qkdd_free(struct qkdd *q);
/*
 * Run on one connected pair of sockets with an authentication context
 * until the rounds are done (1), stopped (0), or the connection must be
 * re-established (negative errno). Fatal conditions return -EPERM.
 */
int qkdd_session(struct qkdd *q, int cfd, int qfd, struct auth_ctx *auth);
/* The status as it stands (status file, control socket). */
void qkdd_status_publish(struct qkdd *q);
bool qkdd_done(const struct qkdd *q);
/*
 * Seconds to wait before the next connection: 0, or after n failures since
 * the last good round -- connections that ended before a round completed
 * with a key, authentication failures, forged handshakes, whichever count
 * is larger -- base * 2^(n-1) up to the cap (--backoff-base, default 1;
 * --backoff-max, default QKDD_AUTH_BACKOFF_MAX_S). main.c adds a jitter
 * of up to half of it, never less. See protocol.md, "Active attacks".
 */
#define QKDD_AUTH_BACKOFF_MAX_S	64
/* one ALARM line per this many connections in a row without a round */
#define QKDD_CONN_ALARM_EVERY	4
/*
 * The pad bytes one connection that completes no round may cost an end at
 * most (the handshake's tags with the default 64-bit tags; measured ~104,
 * protocol.md "Security claims"); for the budget and the ALARM line.
 */
#define QKDD_CONN_PAD_MAX	128
unsigned int qkdd_backoff_s(const struct qkdd *q);
/*
 * A connection ended (qkdd_session() returned an error other than -EPERM):
 * if no round completed with a key on it, one more failure in a row (the
 * back-off grows; the ALARM every QKDD_CONN_ALARM_EVERY of them).
 */
void qkdd_conn_ended(struct qkdd *q, const char *why);

/* ---- state.c ------------------------------------------------------------ */

/*
 * --state-dir: the authentication reserve (and the commit records that
 * keep both ends' reserves equal across a crash) in STATE_DIR/ROLE.state.
 * qkdd_state_load(): a context from the state file, or NULL (*err: 0 when
 * there is no file, else a reason logged). qkdd_auth_attach(): use @a from
 * now on (fresh: just bootstrapped from a PSK or X.509, else restored);
 * with a state directory it is saved at once and before every pad it uses.
 * Returns 0 or -EPERM if it cannot be saved.
 */
struct auth_ctx *qkdd_state_load(struct qkdd *q, int *err);
int qkdd_auth_attach(struct qkdd *q, struct auth_ctx *a, bool fresh);

/* ---- x509.c ------------------------------------------------------------- */

/* X.509 bootstrap output: hash keys and 64 KiB of pads. */
#define QKDD_X509_BOOTSTRAP_LEN	(QKD_AUTH_KEY_HDR_LEN + 64 * 1024)
/*
 * X.509 mode, on a new connection @cfd: *@auth is the context to run it
 * with (attached to @q): the one held (kept across reconnections, or from
 * the state file), or, when Alice holds none, a new TLS bootstrap (see
 * x509.c for when Bob accepts one). 0; -EPERM: the state file cannot be
 * written (stop); other -errno: drop the connection and retry.
 */
int qkdd_x509_auth(struct qkdd *q, struct auth_ctx **auth, int cfd);

#endif /* QKDD_H */
