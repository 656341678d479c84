// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd: Wegman-Carter authentication of the classical channel.
 *
 * Tag = P_H(m) XOR K_i, 128 bits, where P_H is polynomial evaluation over
 * GF(2^128) at a hash key H (one per direction, recycled) and K_i is a fresh
 * 16-byte one-time pad taken from the key reserve for every tag. For two
 * different messages of at most L bytes, a forged tag is accepted with
 * probability at most eps = (ceil(L / 16) + 1) / 2^128 per attempt
 * (auth_epsilon_log2()). See Documentation/protocol.md, "Authentication".
 *
 * The reserve is split into two pools, one per direction (initiator to
 * responder, responder to initiator): bytes added with auth_reserve_add()
 * are cut into 16-byte chunks that go alternately to the two pools, so two
 * peers that add the same bytes in the same order hold the same pools.
 * There is no unauthenticated mode.
 *
 * Transcript authentication (auth_transcript_*): the bulk of a round's
 * exchange (sifting, estimation, Cascade) is not tagged message by message.
 * Both ends fold every such message, sent and received, into a running
 * polynomial hash per direction; the exchange ends with one closing message
 * each way whose Wegman-Carter tag (one 16-byte pad) covers the whole
 * transcript and the closing message itself. A mismatch fails the closing
 * message like a bad tag. See Documentation/protocol.md, "Authentication".
 *
 * Positions: the 16-byte chunks of each pool are numbered from the
 * bootstrap on (auth_get_position); two peers that lost step (a connection
 * broken with frames in flight, a restart from a state file) agree on the
 * larger position of each pool and skip to it (auth_skip_to). A state file
 * (auth_state_export / auth_state_import) records, before any pad is used,
 * a position past it (write-ahead, auth_set_persist), so a restarted daemon
 * never uses a pad twice.
 */
#ifndef QKD_AUTH_H
#define QKD_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QKD_AUTH_TAG_LEN	16
#define QKD_AUTH_HKEY_LEN	16
/* Initial key: H(initiator->responder) | H(responder->initiator) | reserve */
#define QKD_AUTH_KEY_HDR_LEN	(2 * QKD_AUTH_HKEY_LEN)
/* The smallest initial key: hash keys and one tag per direction. */
#define QKD_AUTH_KEY_MIN	(QKD_AUTH_KEY_HDR_LEN + 2 * QKD_AUTH_TAG_LEN)
/* Default bound on the reserve held in memory (all pools together). */
#define QKD_AUTH_RESERVE_CAP_DEFAULT	(4u << 20)
/* Largest message the context authenticates (a whole frame fits). */
#define QKD_AUTH_MAX_MSG	((size_t)1 << 24)

/* Pre-shared key files: raw bytes, this size range, a multiple of 32. */
#define QKD_AUTH_PSK_MIN	1024
#define QKD_AUTH_PSK_MAX	(1u << 20)
#define QKD_AUTH_PSK_ALIGN	32
/* After reading, overwrite the PSK file with zeros and unlink it. */
#define QKD_AUTH_PSK_CONSUME	0x1u

/* Default X.509 bootstrap output: hash keys + 256 tags per direction. */
#define QKD_AUTH_BOOTSTRAP_DEFAULT	(QKD_AUTH_KEY_HDR_LEN + 512 * 16)
#define QKD_AUTH_BOOTSTRAP_MAX		(1u << 20)

enum auth_role {
	QKD_AUTH_INITIATOR = 0,	/* TLS client in the X.509 bootstrap */
	QKD_AUTH_RESPONDER = 1,
};

/* Pool index: direction of the messages the pool authenticates. */
enum auth_dir {
	QKD_AUTH_DIR_I2R = 0,	/* initiator -> responder */
	QKD_AUTH_DIR_R2I = 1,	/* responder -> initiator */
};

enum auth_err {
	QKD_AUTH_OK = 0,
	QKD_AUTH_E_INVAL = -100,	/* bad argument */
	QKD_AUTH_E_TAG = -101,		/* tag mismatch: abort the round */
	QKD_AUTH_E_SEQ = -102,		/* replayed / reordered message */
	QKD_AUTH_E_RESERVE = -103,	/* reserve too low: refused */
	QKD_AUTH_E_HALTED = -104,	/* too many failures: link halted */
	QKD_AUTH_E_FULL = -105,		/* reserve add over the cap */
	QKD_AUTH_E_NOMEM = -106,
	QKD_AUTH_E_KEY = -107,		/* unusable key (size, zero hash key) */
	QKD_AUTH_E_PSK_IO = -108,	/* PSK file cannot be opened/read */
	QKD_AUTH_E_PSK_PERM = -109,	/* PSK file accessible by others */
	QKD_AUTH_E_PSK_SIZE = -110,	/* PSK file has the wrong size */
	QKD_AUTH_E_X509_CONFIG = -111,	/* cert/key/CA cannot be loaded */
	QKD_AUTH_E_X509_PEER = -112,	/* handshake / peer verification */
	QKD_AUTH_E_TOO_BIG = -113,	/* message above QKD_AUTH_MAX_MSG */
	QKD_AUTH_E_TRANSCRIPT = -114,	/* transcript tag mismatch */
	QKD_AUTH_E_TR_STATE = -115,	/* deferred message outside an open
					 * transcript, or after its close */
	QKD_AUTH_E_PERSIST = -116,	/* the state file cannot be written */
	QKD_AUTH_E_STATE = -117,	/* malformed state file / positions */
};

/* Pads recorded as used ahead of need in the state file (write-ahead). */
#define QKD_AUTH_PERSIST_BATCH	32

struct auth_params {
	/* Halt after this many failures in a row (0: default 3). */
	unsigned int max_consecutive_failures;
	/* Halt after this many failures in total (0: default 16). */
	unsigned int max_total_failures;
	/* Bound on the reserve bytes held (0: QKD_AUTH_RESERVE_CAP_DEFAULT). */
	size_t reserve_cap;
};

struct auth_stats {
	size_t reserve_send;		/* bytes in the send pool */
	size_t reserve_recv;		/* bytes in the receive pool */
	size_t reserve_pending;		/* < 16 bytes not yet assigned */
	uint64_t next_send_seq;
	uint64_t next_recv_seq;
	uint64_t tags_made;
	uint64_t tags_verified;		/* successful verifications */
	uint64_t failures_total;
	uint64_t failures_consecutive;
	uint64_t bytes_added;		/* total fed with auth_reserve_add */
	uint64_t bytes_consumed;	/* key bytes used (pads, hash keys) */
	uint64_t bytes_discarded;	/* dropped by auth_retire_bootstrap */
	uint64_t bytes_skipped;		/* chunks dropped to re-align (sync,
					 * write-ahead lost in a restart) */
	size_t bootstrap_left;		/* bootstrap bytes still in the pools */
	uint64_t transcripts_verified;	/* closing tags that verified */
	uint64_t transcript_failures;	/* closing tags that did not */
	uint64_t last_transcript_blocks; /* hash blocks of the last closing
					  * tag made or checked */
	uint64_t additions;		/* auth_reserve_add calls (len > 0) */
	bool halted;
};

struct auth_ctx;

const char *auth_strerror(int err);

/*
 * New context from initial key material (PSK contents or the X.509
 * bootstrap output): the first 32 bytes are the two hash keys, the rest goes
 * to the reserve (a trailing part shorter than 16 bytes is not used). params may be NULL. The key buffer is not kept; the caller
 * cleanses it. Returns NULL and sets *err on error.
 */
struct auth_ctx *auth_new(enum auth_role role, const uint8_t *key, size_t len,
			  const struct auth_params *params, int *err);
/* Zeroes every key byte and frees. NULL is fine. */
void auth_free(struct auth_ctx *a);

/*
 * Tag data as message number seq of our send direction: seq must be the
 * next send sequence number (else QKD_AUTH_E_SEQ), 16 reserve bytes are
 * consumed; QKD_AUTH_E_RESERVE if fewer are left (nothing changes).
 */
int auth_seal(struct auth_ctx *a, uint64_t seq, const uint8_t *data,
	      size_t len, uint8_t tag[QKD_AUTH_TAG_LEN]);
/*
 * Verify a received message: seq must be the next receive sequence number
 * (else QKD_AUTH_E_SEQ: replay or reordering, nothing is consumed); the
 * pad for seq is consumed whatever the outcome and the sequence advances;
 * a mismatch returns QKD_AUTH_E_TAG. Both count as failures; enough of them
 * halt the context (QKD_AUTH_E_HALTED from then on).
 */
int auth_verify(struct auth_ctx *a, uint64_t seq, const uint8_t *data,
		size_t len, const uint8_t tag[QKD_AUTH_TAG_LEN]);

uint64_t auth_next_send_seq(const struct auth_ctx *a);
uint64_t auth_next_recv_seq(const struct auth_ctx *a);

/*
 * Add key bytes (from a round's QKD output) to the reserve. Both peers must
 * add the same bytes in the same order. QKD_AUTH_E_FULL if over the cap
 * (nothing added).
 */
int auth_reserve_add(struct auth_ctx *a, const uint8_t *bytes, size_t len);
/* Total reserve bytes held (both pools and the pending part). */
size_t auth_reserve_level(const struct auth_ctx *a);
/* Tags that can still be made (send) / checked (receive). */
size_t auth_reserve_tags(const struct auth_ctx *a, bool send);
/*
 * QKD_AUTH_OK if at least ntags tags can be made and checked, else
 * QKD_AUTH_E_RESERVE (a round needing ntags messages each way must not
 * start).
 */
int auth_reserve_check(const struct auth_ctx *a, size_t ntags);

/*
 * Replace both hash keys with 16 fresh bytes each, taken from each
 * direction's pool. Both peers must call it at the same point of the
 * protocol, when no message is in flight.
 */
int auth_rekey_hash(struct auth_ctx *a);

/*
 * End the bootstrap window: drop what is left of the bootstrap reserve in
 * both pools and take fresh hash keys from the QKD key behind it
 * (auth_rekey_hash). From then on no key derived from the PSK or the TLS
 * exporter is in use. Both peers call it at the same quiescent point, after
 * adding the first QKD output; QKD_AUTH_E_RESERVE (nothing changed) if the
 * pools do not hold 16 bytes beyond the bootstrap part.
 */
int auth_retire_bootstrap(struct auth_ctx *a);

/* ---- transcript authentication ---- */

/* auth_transcript_state() bits */
#define QKD_AUTH_TR_OPEN	0x1	/* a segment is open */
#define QKD_AUTH_TR_SENT	0x2	/* our closing tag was made */
#define QKD_AUTH_TR_VERIFIED	0x4	/* the peer's closing tag verified */

/*
 * Start a new connection: both sequence numbers back to 0 and any open
 * transcript discarded. Both peers call it before the first frame.
 */
void auth_session_start(struct auth_ctx *a);
/*
 * Open the transcript segment @id (a round number; ids only grow within a
 * session), discarding an unfinished one (its round is aborted).
 */
int auth_transcript_begin(struct auth_ctx *a, uint64_t id);
/*
 * Fold one deferred message (no pad used) into the transcript: @send for a
 * message we send (seq must be the next send seq), else one we received
 * (seq checked like auth_verify; QKD_AUTH_E_SEQ counts as a failure). A
 * received message of an older segment (@id below the open one) only
 * advances the sequence and sets *stale. Deferred messages are refused
 * (QKD_AUTH_E_TR_STATE) with no segment open, with a newer id, and once a
 * closing tag was made or checked in the segment.
 */
int auth_transcript_absorb(struct auth_ctx *a, bool send, uint64_t seq,
			   uint64_t id, const uint8_t *data, size_t len,
			   bool *stale);
/*
 * The closing tag of segment @id over the transcript and data (one pad of
 * the send pool), as message seq; then no more deferred messages.
 */
int auth_transcript_seal(struct auth_ctx *a, uint64_t seq, uint64_t id,
			 const uint8_t *data, size_t len,
			 uint8_t tag[QKD_AUTH_TAG_LEN]);
/*
 * Check the peer's closing tag (one pad of the receive pool, consumed
 * whatever the outcome): QKD_AUTH_E_TRANSCRIPT if it does not match our
 * view of the transcript (counted as a failure). A closing message of an
 * older segment consumes its pad and sets *stale (its round is gone).
 */
int auth_transcript_verify(struct auth_ctx *a, uint64_t seq, uint64_t id,
			   const uint8_t *data, size_t len,
			   const uint8_t tag[QKD_AUTH_TAG_LEN], bool *stale);
/* QKD_AUTH_TR_* bits of segment @id (0 if another segment is open). */
unsigned int auth_transcript_state(const struct auth_ctx *a, uint64_t id);
/*
 * log2 of the forgery bound of one closing tag over @blocks hash blocks
 * (blocks / 2^128; auth_stats.last_transcript_blocks).
 */
double auth_transcript_epsilon_log2(uint64_t blocks);

/* ---- positions, resynchronisation, state file ---- */

struct auth_position {
	uint64_t pos[2];	/* next unused chunk of pool I2R / R2I */
	uint64_t end[2];	/* chunks ever assigned to the pool */
	uint64_t additions;	/* auth_reserve_add calls */
};

void auth_get_position(const struct auth_ctx *a, struct auth_position *p);
/*
 * Drop chunks so that pool d starts at pos[d] (no-op where it already is
 * past). QKD_AUTH_E_STATE (nothing changed) if a target is beyond the pool's
 * end or more than max_skip chunks ahead.
 */
int auth_skip_to(struct auth_ctx *a, const uint64_t pos[2],
		 uint64_t max_skip);

/*
 * SYNC: positions agreed on authenticated data only. auth_sync_seal()
 * tags @data (which states @at, our position from auth_get_position())
 * twice, with the pad at at->pos[d] of each pool d, and uses both pads up
 * (QKD_AUTH_E_STATE if @at is not where we are). auth_sync_verify()
 * checks the peer's tags against the pads at its claimed positions, in
 * each pool where that pad is still here (claim->pos[d] at or past ours,
 * at most @max_skip ahead): nothing moves unless every checked tag
 * verifies; then each checked pool moves past the claimed pad (skipping
 * to it first). *@checked: bit d set for each pool checked. Returns
 * QKD_AUTH_E_SEQ (nothing checked, nothing changed, no failure) when both
 * claims are behind us -- the peer then learns ours from our SYNC --,
 * QKD_AUTH_E_STATE (a failure) for a claim beyond @max_skip or the pool,
 * QKD_AUTH_E_TAG (a failure) for a tag that does not verify.
 */
int auth_sync_seal(struct auth_ctx *a, const struct auth_position *at,
		   const uint8_t *data, size_t len,
		   uint8_t tags[2][QKD_AUTH_TAG_LEN]);
int auth_sync_verify(struct auth_ctx *a, const struct auth_position *claim,
		     uint64_t max_skip, const uint8_t *data, size_t len,
		     const uint8_t tags[2][QKD_AUTH_TAG_LEN],
		     unsigned int *checked);

/*
 * Write-ahead persistence: before a pad at or past the recorded position of
 * its pool is used, the recorded position moves batch chunks ahead and
 * fn(arg) must store the context (auth_state_export); if it fails, the pad
 * is not used (QKD_AUTH_E_PERSIST). fn NULL turns it off.
 */
typedef int (*auth_persist_fn)(void *arg);
void auth_set_persist(struct auth_ctx *a, auth_persist_fn fn, void *arg,
		      unsigned int batch);
/*
 * Serialise the context as it must be restored after a crash: every pool
 * from its recorded position (chunks before it may have been used). *buf is
 * freed with auth_key_free(*buf, *len).
 */
int auth_state_export(const struct auth_ctx *a, uint8_t **buf, size_t *len);
/* A context from auth_state_export() output. NULL and *err on error. */
struct auth_ctx *auth_state_import(const uint8_t *buf, size_t len,
				   const struct auth_params *params,
				   int *err);

/* Record a failure that auth_verify() could not see (malformed frame). */
void auth_note_failure(struct auth_ctx *a);
bool auth_halted(const struct auth_ctx *a);
/*
 * Clear the halt and the count of failures in a row (the total stays): for
 * a caller that rate-limits its attempts instead (qkdd backs off). Every
 * failed verification still burns its pad.
 */
void auth_resume(struct auth_ctx *a);
void auth_get_stats(const struct auth_ctx *a, struct auth_stats *st);

/* log2 of the per-tag forgery bound for messages of at most len bytes. */
double auth_epsilon_log2(size_t len);

/*
 * Bootstrap (a): read a pre-shared key file. The file must be a regular
 * file (not a symlink), not accessible by others (no o+rwx, no g+w), owned
 * by us or root, and of size QKD_AUTH_PSK_MIN..QKD_AUTH_PSK_MAX, a multiple
 * of QKD_AUTH_PSK_ALIGN. Pass QKD_AUTH_PSK_CONSUME to wipe and unlink the
 * file once read (a PSK must never be loaded twice: its pads would repeat).
 * On success *key (free with auth_key_free) and *len are set. errbuf gets a
 * clear message on error (may be NULL).
 */
int auth_psk_read(const char *path, unsigned int flags, uint8_t **key,
		  size_t *len, char *errbuf, size_t errlen);
/* auth_psk_read() + auth_new(). */
struct auth_ctx *auth_new_from_psk(enum auth_role role, const char *path,
				   unsigned int flags,
				   const struct auth_params *params, int *err,
				   char *errbuf, size_t errlen);
void auth_key_free(uint8_t *key, size_t len);

/*
 * Bootstrap (b): X.509 identities. Runs mutually authenticated TLS 1.3 over
 * the connected stream fd (the initiator is the TLS client), both sides
 * verifying the peer against ca_file only; then derives outlen bytes with
 * the TLS exporter and closes TLS cleanly (close_notify both ways), so the
 * fd can carry frames afterwards. peer_name, if not NULL, must match the
 * peer certificate (DNS SAN or CN). On error out is zeroed.
 */
struct auth_x509_cfg {
	const char *cert_file;	/* PEM, our certificate (chain) */
	const char *key_file;	/* PEM, our private key */
	const char *ca_file;	/* PEM, the CA(s) we trust for the peer */
	const char *peer_name;	/* expected peer name, or NULL */
};

int auth_x509_bootstrap(int fd, enum auth_role role,
			const struct auth_x509_cfg *cfg, uint8_t *out,
			size_t outlen, char *errbuf, size_t errlen);

/* Internal, exposed for the unit tests. */
struct auth_u128 {
	uint64_t hi, lo;
};
void auth_gf128_mul(struct auth_u128 *r, const struct auth_u128 *a,
		    const struct auth_u128 *b);
void auth_gf128_mul_portable(struct auth_u128 *r, const struct auth_u128 *a,
			     const struct auth_u128 *b);
bool auth_gf128_have_clmul(void);
/* Tests only: use the portable multiplication even if PCLMUL exists. */
void auth_gf128_force_portable(bool on);
void auth_poly_hash(const uint8_t hkey[QKD_AUTH_HKEY_LEN], uint64_t seq,
		    const uint8_t *data, size_t len,
		    uint8_t out[QKD_AUTH_TAG_LEN]);

#endif /* QKD_AUTH_H */
