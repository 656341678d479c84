// SPDX-License-Identifier: GPL-2.0-only
/*
 * What Alice's and Bob's rounds share: cleanup and aborts, the checks of
 * the closing tags before anything of a round is used, the sifting
 * announcement, the sample and the error estimate, the secret key length,
 * privacy amplification, the commit record of a block, and the round's
 * statistics.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "qkd/auth.h"
#include "qkd/cascade.h"
#include "qkd/estimate.h"
#include "qkd/frame.h"
#include "qkd/keyrate.h"
#include "qkd/privacy_amp.h"
#include "qkd/verify.h"
#include "session.h"


/* Alice: the pulses of a round, from her configuration (0: too many). */
uint64_t round_pulses(const struct qkdd *q)
{
	double n = ceil(q->pp.block_bits * q->pulses_per_bit * 1.05);

	return n > (double)ROUND_PULSES_MAX ? 0 : (uint64_t)n;
}

/*
 * The largest classical message of a round of @npulses pulses: the
 * sifting announcements (two bit arrays of npulses, and a class byte
 * per detected pulse and the sample positions), all smaller ones (the
 * samples, Cascade's and LDPC's messages; the PA seed goes in parts of
 * one frame each) below that, plus 1 MiB.
 */
size_t round_msg_limit(uint64_t npulses)
{
	return (size_t)(npulses + 4 * 8 * qkd_bits_words(npulses) + 16 +
			(1u << 20));
}

/*
 * Bob: the detections a round of the agreed configuration can have. Alice
 * sends pulses for 1.05 block-bits sifted bits, sifting keeps a share ps =
 * pz_a pz_b + (1 - pz_a)(1 - pz_b) of the detections: 2 block-bits / ps
 * (plus a margin for small blocks) is far above any honest round.
 */
uint64_t round_max_detections(const struct qkdd *q)
{
	double ps = q->pp.pz_alice * q->pp.pz_bob +
		    (1 - q->pp.pz_alice) * (1 - q->pp.pz_bob);
	double m = ps > 1e-6 ? 2.0 * q->pp.block_bits / ps + 65536 :
			       (double)q->round_pulses;

	return m < (double)q->round_pulses ? (uint64_t)m : q->round_pulses;
}

void round_free(struct round *R)
{
	for (uint32_t f = 0; R->frames && f < R->nf; f++)
		if (R->frames[f])
			qkd_bits_free(R->frames[f], R->F, 0);
	free(R->frames);
	qkd_ldpc_alice_free(R->la);
	qkd_ldpc_bob_free(R->lb);
	qkd_sifted_free(&R->sifted);
	if (R->mask)
		qkd_bits_free(R->mask, R->N, 0);
	if (R->peer)
		qkd_bits_free(R->peer, R->N, 0);
	if (R->key)
		qkd_bits_free(R->key, R->N, 0);
	if (R->seed)
		qkd_bits_free(R->seed, R->seed_bits, 0);
	if (R->final)
		qkd_bits_free(R->final, R->l, 0);
	if (R->bytes) {
		explicit_bzero(R->bytes, R->nbytes);
		free(R->bytes);
	}
}

__attribute__((format(printf, 4, 5)))
int round_abort(struct qkdd *q, struct round *R, int reason,
		const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(R->rs.reason, sizeof(R->rs.reason), fmt, ap);
	va_end(ap);
	if (reason >= 0)
		send_abort(q, (uint16_t)reason, R->rs.reason);
	R->rs.ok = false;
	return 0;
}

/*
 * A deferred message (its tag comes only with the round's closing tag)
 * that no honest peer sends: an attack like bad framing, so the alarm and
 * the back-off (auth_strike()) as well as the round aborted with the
 * reason. Returns 0, as round_abort().
 */
int round_malformed(struct qkdd *q, struct round *R, const char *fmt, ...)
{
	char why[sizeof(R->rs.reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	auth_strike(q, why);
	return round_abort(q, R, QKD_ABORT_PROTOCOL, "%s", why);
}

/*
 * The authentication key a round withholds from its block: the pads used
 * since the last committed round (@tags_after tags still to come
 * included; charged to the round in R->charge_to, *@used bytes), plus half
 * of any shortfall of @level below the reserve's target, in whole 32-byte
 * chunks. Shared by BB84 (Alice's PA_SEED) and etsi014 (KME_IDS) rounds.
 */
uint64_t auth_withhold(struct qkdd *q, struct round *R, size_t level,
		       unsigned int tags_after, uint64_t *used)
{
	uint64_t want;

	R->charge_to = auth_spent(q) + tags_after * QKD_AUTH_TAG_LEN;
	*used = R->charge_to - q->charged;
	R->rs.auth_used = *used;
	q->last_round_tags = (size_t)(*used + 2 * QKD_AUTH_TAG_LEN - 1) /
			     (2 * QKD_AUTH_TAG_LEN);
	want = *used;
	if (level < q->pp.auth_target)
		want += (q->pp.auth_target - level) / 2;
	return (want + 31) / 32 * 32;
}

/*
 * Before a block is committed: does this side's stream have room for its
 * @count keys? A block is pushed whole or not at all, so a full stream
 * aborts the round (its key is discarded at both ends) instead of leaving
 * a part of it on one side. Returns 0 if the block fits, 1 if the round
 * was aborted, or a negative errno.
 */
int room_check(struct qkdd *q, struct round *R, uint32_t count)
{
	uint64_t room;
	int r = store_room(q->st, &room, NULL);

	if (r)
		return r;
	if (room >= count)
		return 0;
	round_abort(q, R, QKD_ABORT_INTERNAL,
		    "the key store is full at %s (room for %" PRIu64 " keys, the round made %u): discarded at both ends until consumers take keys",
		    q->o->role == QKDD_ALICE ? "alice" : "bob", room, count);
	return 1;
}

/*
 * The peer's closing tag of the round's exchange (Bob's VERIFY_HASH for
 * Alice, Alice's PA_SEED for Bob) covers the whole transcript: nothing of
 * the round is used before it verified. true if it did, with the forgery
 * bound of that tag in the round's statistics; else the round is aborted
 * with @why as the reason.
 */
bool closing_tag_verified(struct qkdd *q, struct round *R, const char *why)
{
	struct auth_stats as;

	if (!(auth_transcript_state(q->auth, q->round) &
	      QKD_AUTH_TR_VERIFIED)) {
		round_abort(q, R, QKD_ABORT_PROTOCOL, "%s", why);
		return false;
	}
	auth_get_stats(q->auth, &as);
	R->rs.auth_eps_log2 =
		auth_transcript_epsilon_log2(as.last_transcript_blocks);
	return true;
}

/*
 * Before a block is pushed: were both closing tags of the round's exchange
 * sent and verified? The round has checked the peer's already
 * (closing_tag_verified()), so a failure here is a bug of ours, and fatal.
 */
int commit_authenticated(struct qkdd *q)
{
	if ((auth_transcript_state(q->auth, q->round) &
	     (QKD_AUTH_TR_SENT | QKD_AUTH_TR_VERIFIED)) !=
	    (QKD_AUTH_TR_SENT | QKD_AUTH_TR_VERIFIED)) {
		qlog("internal error: committing a round whose transcript is not authenticated");
		return -EPERM;
	}
	return 0;
}

/* Map a recv result inside a round: RX_ABORT ends the round. */
int rx_fail(struct qkdd *q, struct round *R, int r)
{
	if (r == RX_ABORT) {
		snprintf(R->rs.reason, sizeof(R->rs.reason), "%.199s",
			 q->peer_reason);
		return 0;
	}
	if (r == -EINTR)
		send_abort(q, QKD_ABORT_SHUTDOWN, "operator stop");
	return r;
}

/*
 * Bob's SIFT_BASES: his detections as pulse-index gaps and his basis for
 * each (qkd_sift_announce_encode()). 0 or -ENOMEM.
 */
int write_sift_announce(struct wbuf *w, const struct qkd_det_records *b)
{
	uint8_t *p;
	size_t len;
	int r = qkd_sift_announce_encode(b, &p, &len);

	if (r)
		return r;
	wb_bytes(w, p, len);
	explicit_bzero(p, len);
	free(p);
	return w->err ? -ENOMEM : 0;
}

/* Pack this side's sifted bits at the sampled positions. */
uint64_t *sample_bits(const struct round *R)
{
	uint64_t *out = qkd_bits_alloc(R->k, 0);
	size_t j = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < R->N; i++)
		if (qkd_bit_get(R->mask, i))
			qkd_bit_set(out, j++, qkd_bit_get(R->sifted.key, i));
	return out;
}

/* The peer's sample bits, spread to their positions in an N-bit array. */
static uint64_t *spread(const struct round *R, const uint64_t *packed)
{
	uint64_t *out = qkd_bits_alloc(R->N, 0);
	size_t j = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < R->N; i++)
		if (qkd_bit_get(R->mask, i))
			qkd_bit_set(out, i, qkd_bit_get(packed, j++));
	return out;
}

static bool decoy(const struct qkdd *q)
{
	return q->pp.source == QKD_SOURCE_WCP;
}

/*
 * Is the sample every X-basis bit (and the key every Z bit)? With decoy
 * states always. With single photons whenever a basis choice is biased:
 * the phase error rate of the Z key is the bit error rate in X, and a
 * sample drawn from both bases is mostly Z -- an eavesdropper measuring
 * every pulse in Z disturbs only X and would hide in it (issue 14: 1.6 %
 * sampled errors, every key bit known to her). Only with p_z = 1/2 at
 * both ends are the two bases alike (the sifted bits of each basis are a
 * uniform half, and Eve cannot tell them apart before sifting), so that a
 * uniform sample of all sifted bits bounds the phase error of the rest.
 */
bool sample_is_x_basis(const struct qkdd *q)
{
	return decoy(q) || q->pp.pz_alice != 0.5 || q->pp.pz_bob != 0.5;
}

int (*qkdd_sample_rng)(struct qkd_rng *r) = qkd_rng_os;

/*
 * Sample mask: single photons with p_z = 1/2, a uniform share of the
 * sifted bits, drawn by Alice from getrandom() (Serfling's bound assumes
 * a uniform sample: not a short seed stretched by a PRNG) and sent to Bob
 * as positions inside the round's transcript (take_mask()); otherwise
 * every X bit (the phase error comes from X, the key from Z).
 */
int make_mask(struct qkdd *q, struct round *R)
{
	struct qkd_rng r;
	int err;

	R->N = R->sifted.n;
	R->mask = qkd_bits_alloc(R->N, 0);
	if (!R->mask)
		return -ENOMEM;
	if (sample_is_x_basis(q)) {
		memcpy(R->mask, R->sifted.basis,
		       qkd_bits_words(R->N) * sizeof(uint64_t));
		R->k = qkd_bits_popcount(R->mask, R->N);
		return 0;
	}
	R->k = (size_t)ceil(q->pp.sample_frac * (double)R->N);
	err = qkdd_sample_rng(&r);
	if (!err)
		err = qkd_sample_mask(&r, R->N, R->k, R->mask);
	explicit_bzero(&r, sizeof(r));
	return err;
}

/*
 * Bob: the mask Alice sent in her SIFT_BASES (random-share mode), or his
 * own (X basis). 0, 1 if the round was aborted (malformed positions), or
 * a negative errno.
 */
int take_mask(struct qkdd *q, struct round *R, struct rbuf *rb)
{
	if (sample_is_x_basis(q))
		return make_mask(q, R);
	R->N = R->sifted.n;
	R->k = (size_t)ceil(q->pp.sample_frac * (double)R->N);
	R->mask = rb_bits(rb, R->N);
	if (!R->mask || qkd_bits_popcount(R->mask, R->N) != R->k) {
		round_malformed(q, R,
				"sifting: the sample positions are not %zu of %zu bits",
				R->k, R->N);
		return 1;
	}
	return 0;
}

/*
 * The key bits of the round (R->n), and its cut into R->nf frames of R->F
 * bits, from the sifted and sampled counts and the method: Bob knows them
 * before Alice's sample arrives (the PA seed's length, bob_seed_part()).
 */
void round_cut(struct round *R)
{
	R->n = R->N - R->k;
	if (R->ec == QKDD_EC_LDPC)
		qkd_ldpc_daemon_frames(R->n, &R->F, &R->nf);
	else
		qkd_cascade_daemon_frames(R->n, &R->F, &R->nf);
	R->n = (size_t)R->F * R->nf;
}

/* Bits [@from, @from + @nbits) of @src into @dst, zero beyond them. */
static void bits_extract(uint64_t *dst, const uint64_t *src, size_t from,
			 size_t nbits)
{
	size_t w0 = from / 64, s = from % 64, last = (from + nbits - 1) / 64;

	for (size_t i = 0; i < qkd_bits_words(nbits); i++) {
		uint64_t v = src[w0 + i] >> s;

		/* the next word only if the range reaches into it */
		if (s && w0 + i + 1 <= last)
			v |= src[w0 + i + 1] << (64 - s);
		dst[i] = v;
	}
	qkd_bits_trim(dst, nbits);
}

/* The 64 bytes at @c all 0: one intensity class, the signal. */
static bool all_signal(const uint8_t *c)
{
	uint64_t v = 0, w;

	for (int j = 0; j < 8; j++) {
		memcpy(&w, c + 8 * j, 8);
		v |= w;
	}
	return !v;
}

/*
 * The decoy bound's counts: n_Z only of the key bits kept (the first n
 * unsampled ones: the bits cut off by round_cut() are in no key and must
 * not count as single-photon events of it), n_X and m_X of the whole
 * sample. A word of 64 positions at a time where they are all of the
 * signal class and all kept (most of a round: a popcount each), bit by
 * bit elsewhere.
 */
static int count_classes(struct round *R)
{
	const uint8_t *cls = R->sifted.intensity;
	uint64_t nz0 = 0, nx0 = 0, mx0 = 0;
	size_t kept = 0;

	for (size_t w = 0; w < qkd_bits_words(R->N); w++) {
		size_t i0 = w * 64, nb = R->N - i0 < 64 ? R->N - i0 : 64;
		uint64_t valid = nb == 64 ? ~0ull : ((uint64_t)1 << nb) - 1;
		uint64_t m = R->mask[w] & valid;
		uint64_t x = R->sifted.basis[w] & valid;
		uint64_t un = ~m & valid;
		size_t nun = (size_t)__builtin_popcountll(un);

		if (nb == 64 && kept + nun <= R->n && all_signal(cls + i0)) {
			uint64_t err = R->sifted.key[w] ^ R->peer[w];

			nx0 += (uint64_t)__builtin_popcountll(x);
			mx0 += (uint64_t)__builtin_popcountll(x & m & err);
			nz0 += (uint64_t)__builtin_popcountll(un & ~x);
			kept += nun;
			continue;
		}
		for (size_t i = i0; i < i0 + nb; i++) {
			unsigned int c = cls[i];
			bool sampled = qkd_bit_get(R->mask, i);

			if (c >= 3)
				return -EPROTO;
			if (qkd_bit_get(R->sifted.basis, i)) {
				R->n_x[c]++;
				if (sampled && qkd_bit_get(R->sifted.key, i) !=
					       qkd_bit_get(R->peer, i))
					R->m_x[c]++;
			} else if (!sampled && kept < R->n) {
				R->n_z[c]++;
			}
			kept += !sampled;
		}
	}
	R->n_z[0] += (double)nz0;
	R->n_x[0] += (double)nx0;
	R->m_x[0] += (double)mx0;
	return 0;
}

/* Both sides: the estimate from both sample sets; key bits. */
int estimate(struct qkdd *q, struct round *R, const uint64_t *peer_packed)
{
	struct qkd_estimate_params ep = {
		.qber_abort = q->pp.qber_abort,
		.eps_pe = (q->pp.eps_sec / 2) * (q->pp.eps_sec / 2),
	};
	bool alice = q->o->role == QKDD_ALICE;
	int r;

	R->peer = spread(R, peer_packed);
	if (!R->peer)
		return -ENOMEM;
	r = qkd_estimate_qber(alice ? R->sifted.key : R->peer,
			      alice ? R->peer : R->sifted.key, R->mask, R->N,
			      &ep, &R->est);
	if (r)
		return r;
	R->rs.sampled = R->est.k;
	R->rs.sample_errors = R->est.errors;
	R->rs.qber = R->est.qber;
	/*
	 * Cascade corrects frames of at most QKD_CASCADE_DAEMON_FRAME_MAX
	 * bits together (its round trips, each costing two tags, do not
	 * grow with the number of frames), LDPC frames of at most
	 * QKD_LDPC_DAEMON_FRAME_MAX; the key is cut into nf equal frames,
	 * and the few bits left over are dropped.
	 */
	round_cut(R);
	/* the decoy bound's counts, of the key bits kept (count_classes()) */
	r = count_classes(R);
	if (r)
		return r;
	for (int c = 0; c < 3; c++) {
		R->rs.n_z[c] = R->n_z[c];
		R->rs.n_x[c] = R->n_x[c];
		R->rs.m_x[c] = R->m_x[c];
	}
	R->rs.estimated = true;
	R->rs.key_bits = R->n;
	if (R->est.abort)
		return 0;
	/* compress_unmasked clears N bits of its output */
	R->key = qkd_bits_alloc(R->N, 0);
	if (!R->key)
		return -ENOMEM;
	qkd_bits_compress_unmasked(R->sifted.key, R->mask, R->N, R->key);
	qkd_bits_trim(R->key, R->n);
	for (size_t w = qkd_bits_words(R->n); w < qkd_bits_words(R->N); w++)
		R->key[w] = 0;
	if (R->F < 64)
		return 0;
	R->frames = calloc(R->nf, sizeof(*R->frames));
	if (!R->frames)
		return -ENOMEM;
	for (uint32_t f = 0; f < R->nf; f++) {
		R->frames[f] = qkd_bits_alloc(R->F, 0);
		if (!R->frames[f])
			return -ENOMEM;
		bits_extract(R->frames[f], R->key, (size_t)f * R->F, R->F);
	}
	return 0;
}

uint64_t key_length(struct qkdd *q, struct round *R, double leak,
		    const char **why)
{
	*why = NULL;
	/* the configuration was checked for qkdd_max_key_bits(); a round
	 * above it cannot claim eps_cor */
	if (R->n > qkdd_max_key_bits(q->pp.block_bits) ||
	    qkd_verify_eps_cor(R->n, q->pp.tag_bits) > q->pp.eps_cor) {
		*why = "more key bits than the configuration allows for (the verification hash's eps-cor)";
		return 0;
	}
	if (decoy(q)) {
		struct qkd_decoy_input in = { .leak_ec = leak,
					      .eps_sec = q->pp.eps_sec,
					      .eps_cor = q->pp.eps_cor };
		struct qkd_decoy_detail d;
		uint64_t l;

		for (int i = 0; i < 3; i++) {
			in.mu[i] = q->pp.mu[i];
			in.p[i] = q->pp.p[i];
			in.n_z[i] = R->n_z[i];
			in.n_x[i] = R->n_x[i];
			in.m_x[i] = R->m_x[i];
		}
		l = qkd_keylen_decoy(&in, &d);
		if (!l)
			*why = d.why_zero ? d.why_zero :
			       "the decoy-state bound leaves no secret key (block too small?)";
		return l;
	} else {
		struct qkd_bb84_input in = {
			.n = R->n, .k = R->k, .qber = R->est.qber,
			.leak_ec = leak, .eps_sec = q->pp.eps_sec,
			.eps_cor = q->pp.eps_cor,
		};
		uint64_t l = qkd_keylen_bb84(&in, NULL);

		if (!l)
			*why = "the finite-key bound leaves no secret key (block too small or QBER too high)";
		return l;
	}
}

/* Toeplitz hashing and the split into auth bytes and keys. */
int amplify(struct qkdd *q, struct round *R, uint32_t auth_len,
	    uint32_t count)
{
	size_t need = auth_len + (size_t)count * q->pp.key_size;

	R->final = qkd_bits_alloc(R->l, 0);
	if (!R->final || need > R->l / 8 || !R->seed ||
	    R->n + R->l - 1 > R->seed_bits)
		return -EINVAL;
	/* the Toeplitz matrix of l x n takes the seed's first n + l - 1 bits */
	qkd_bits_trim(R->seed, R->n + R->l - 1);
	if (qkd_toeplitz_fast(R->seed, R->key, R->n, R->final, R->l))
		return -ENOMEM;
	R->nbytes = need;
	R->bytes = malloc(need ? need : 1);
	if (!R->bytes)
		return -ENOMEM;
	for (size_t i = 0; i < need; i++)
		R->bytes[i] = (uint8_t)(R->final[i / 8] >> (8 * (i % 8)));
	return 0;
}

void commit_payload(struct wbuf *w, uint64_t first, uint32_t count,
		    uint32_t key_size, uint64_t id, uint32_t auth_len)
{
	wb_u(w, first, 8);
	wb_u(w, count, 4);
	wb_u(w, key_size, 4);
	wb_u(w, id, 8);
	wb_u(w, auth_len, 4);
}

uint64_t block_id(struct qkdd *q, const struct round *R)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = fnv64(h, &q->session_id, sizeof(q->session_id));
	h = fnv64(h, &q->round, sizeof(q->round));
	h = fnv64(h, R->seed, qkd_bits_words(R->n + R->l - 1) * 8);
	return h;
}

/*
 * The PA seed in PA_SEED_PART messages (issue 16: blocks above 2^21 bits).
 * The Toeplitz matrix of a round needs n + l - 1 seed bits, and l is known
 * only after Bob's closing VERIFY_HASH, after which no deferred frame is
 * accepted; the closing PA_SEED is one frame of at most 1 MiB. So Alice
 * draws n + n - 1 bits (l < n: l is at most the bits the bound leaves of n)
 * once the sample is estimated -- after the quantum stage, independent of
 * the key -- and sends them before her estimation sample, in parts of one
 * frame each, deferred like the rest of the exchange (the closing tags
 * cover them). A part: offset (u64), the seed's length (u64), the part's
 * bit count (u32), then its bits in little-endian words. The privacy
 * amplification takes the first n + l - 1 bits.
 */
size_t qkdd_seed_part_bits = QKDD_SEED_PART_BITS_MAX;

size_t round_seed_bits(const struct round *R)
{
	return R->n ? 2 * R->n - 1 : 0;
}

int alice_send_seed(struct qkdd *q, struct round *R)
{
	size_t part = qkdd_seed_part_bits / 64 * 64;
	struct wbuf w = { 0 };
	int r = 0;

	if (!part || part > QKDD_SEED_PART_BITS_MAX)
		part = QKDD_SEED_PART_BITS_MAX;
	R->seed_bits = round_seed_bits(R);
	R->seed = qkd_bits_alloc(R->seed_bits, 0);
	if (!R->seed || qkd_pa_seed_random(R->seed, R->seed_bits))
		return -ENOMEM;
	qkd_bits_trim(R->seed, R->seed_bits);
	for (size_t off = 0; off < R->seed_bits && !r; off += part) {
		size_t nb = R->seed_bits - off < part ? R->seed_bits - off :
							part;

		w.len = 0;
		wb_u(&w, off, 8);
		wb_u(&w, R->seed_bits, 8);
		wb_u(&w, nb, 4);
		/* off is a multiple of 64, and only the last part ends
		 * inside a word (past the seed's end: zero) */
		wb_bits(&w, R->seed + off / 64, nb);
		r = w.err ? -ENOMEM :
		    send_msg(q, QKD_MSG_PA_SEED_PART, w.p, w.len, AUTH_DEFER);
	}
	wb_free(&w);
	return r;
}

int bob_seed_part(struct qkdd *q, struct round *R)
{
	struct rbuf rb = { q->msg, q->msg_len, 0, false };
	size_t want = round_seed_bits(R);
	uint64_t off = rb_u(&rb, 8), total = rb_u(&rb, 8);
	uint32_t nb = (uint32_t)rb_u(&rb, 4);
	uint64_t *bits = NULL;

	if (rb.err || total != want || !want) {
		round_malformed(q, R,
				"PA seed: a part of a seed of %" PRIu64 " bits, the round's has %zu",
				rb.err ? 0 : total, want);
		return 1;
	}
	if (off != R->seed_got || off % 64) {
		round_malformed(q, R,
				"PA seed: a part at bit %" PRIu64 ", expected at %zu (a part missing, twice or out of order)",
				off, R->seed_got);
		return 1;
	}
	if (!nb || nb > QKDD_SEED_PART_BITS_MAX || nb > want - off ||
	    (nb % 64 && off + nb != want)) {
		round_malformed(q, R,
				"PA seed: a part of %u bits at bit %" PRIu64 " of %zu",
				nb, off, want);
		return 1;
	}
	bits = rb_bits(&rb, nb);
	if (!bits || !rb_done(&rb)) {
		if (bits)
			qkd_bits_free(bits, nb, 0);
		round_malformed(q, R,
				"PA seed: a part of %u bits in %zu bytes", nb,
				q->msg_len);
		return 1;
	}
	if (!R->seed) {
		R->seed_bits = want;
		R->seed = qkd_bits_alloc(want, 0);
		if (!R->seed) {
			qkd_bits_free(bits, nb, 0);
			return -ENOMEM;
		}
	}
	memcpy(R->seed + off / 64, bits, qkd_bits_words(nb) * 8);
	qkd_bits_free(bits, nb, 0);
	R->seed_got = off + nb;
	return 0;
}

/* The round's duration so far, from R->t0, into its statistics. */
void round_elapsed(struct round *R)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	R->rs.seconds = (double)(t1.tv_sec - R->t0.tv_sec) +
			(double)(t1.tv_nsec - R->t0.tv_nsec) / 1e9;
}

int finish_round(struct round *R, uint32_t auth_len, uint32_t count,
		 uint64_t first)
{
	R->rs.ok = true;
	R->rs.secret_bits = R->l;
	R->rs.auth_bytes = auth_len;
	R->rs.keys = count;
	R->rs.first_index = first;
	round_elapsed(R);
	return 0;
}
