// SPDX-License-Identifier: GPL-2.0-only
/*
 * --key-source etsi014: the rounds when a commercial QKD device, through
 * its vendor KME (ETSI GS QKD 014), replaces the quantum stage. Each site
 * has its own KME; the two KMEs hold the same keys under the same key_IDs.
 *
 *   Alice   GET status, POST enc_keys (number, size): key_IDs and keys
 *   KME_IDS A->B the first index, the split of the block (withheld for the
 *           authentication reserve, the confirmation pad, the keys) and
 *           the key_IDs, in order; it closes Alice's side of the round's
 *           exchange (the transcript tag): Bob uses nothing of it before
 *           the tag verified
 *   Bob     POST dec_keys with those key_IDs: the same keys
 *   KME_CONFIRM B->A a verification tag (verify.c, hash keys fresh from
 *           Bob's getrandom()) of Bob's block, one-time-padded with the
 *           block's confirmation pad: it tells Alice whether the blocks
 *           are equal and nothing about the keys; it closes Bob's side
 *   COMMIT  A->B, Bob pushes, echoes it, Alice pushes (alice_commit(),
 *           bob_commit(): the two-phase commit and crash recovery of BB84
 *           rounds, unchanged); both add the withheld bytes to the reserve
 *
 * A KME that refuses (an HTTP error, a timeout, a TLS failure, a Key
 * container with the wrong count or size, bad base64, a key_ID twice or
 * not asked for) aborts the round at both ends (ABORT with the KME's
 * status and message), nothing is pushed, and Alice backs off before the
 * next round. Keys Alice took from her KME in a round that is not
 * committed are lost: ETSI 014 delivers a key once, and only the indices
 * of the kernel stores must agree.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "qkd/frame.h"
#include "qkd/verify.h"
#include "session.h"

#define MIN_TAGS	64
/* tags after Alice fixes the withheld bytes: KME_IDS, KME_CONFIRM,
 * KEY_COMMIT and its echo */
#define TAGS_AFTER_IDS	4
/* the IDS header: first, count, key size, auth_len, conf_len, total */
#define IDS_HDR_LEN	(8 + 5 * 4)

/* Sleep @s seconds, or less when stopping. */
static void nap(unsigned int s)
{
	for (unsigned int i = 0; i < s && !qkdd_stop && !qkdd_term; i++)
		sleep(1);
}

/*
 * Alice after a refusal of her KME (or a KME she cannot use): the round
 * aborted at both ends with the KME's words, and a back-off before the
 * next one -- doubling up to --backoff-max, and below the classical
 * channel's timeout, which Bob waits for the next round at most.
 */
static unsigned int kme_backoff(struct qkdd *q)
{
	unsigned int cap = q->o->backoff_max_s, s;

	if (q->o->timeout_s / 3 < cap)
		cap = q->o->timeout_s / 3;
	if (!cap)
		cap = 1;
	if (q->kme_fails < 31)
		q->kme_fails++;
	s = 1u << (q->kme_fails > 8 ? 8 : q->kme_fails - 1);
	return s > cap ? cap : s;
}

static int kme_refused(struct qkdd *q, struct round *R, const char *why)
{
	unsigned int s = kme_backoff(q);

	qwarn("vendor KME refused the round (%s): nothing pushed at either end, next round in %u s",
	      why, s);
	round_abort(q, R, QKD_ABORT_INTERNAL, "the vendor KME at alice: %.150s",
		    why);
	nap(s);
	return 0;
}

/* The block's words for verify.c: @len bytes, little endian. */
static uint64_t *block_words(const uint8_t *b, size_t len)
{
	size_t nw = (len + 7) / 8;
	uint64_t *w = calloc(nw ? nw : 1, sizeof(*w));

	if (!w)
		return NULL;
	for (size_t i = 0; i < len; i++)
		w[i / 8] |= (uint64_t)b[i] << (8 * (i % 8));
	return w;
}

static void words_free(uint64_t *w, size_t len)
{
	if (w) {
		explicit_bzero(w, ((len + 7) / 8 ? (len + 7) / 8 : 1) * 8);
		free(w);
	}
}

/* The tag XOR the confirmation pad (tag_bits / 8 bytes). */
static void pad_tag(struct qkd_verify_tag *vt, const uint8_t *pad)
{
	for (uint32_t i = 0; i < vt->tag_bits / 8; i++)
		vt->tag[i / 8] ^= (uint64_t)pad[i] << (8 * (i % 8));
}

/*
 * From the vendor block @k (total keys), R->bytes: the @auth_len withheld
 * bytes (the block's first bytes) then the @count keys (its last ones);
 * the confirmation pad (@conf_len bytes) ends the withheld keys.
 */
static int take_block(struct qkdd *q, struct round *R,
		      const struct kme_keys *k, uint32_t auth_len,
		      uint32_t count, const uint8_t **pad, uint32_t conf_len)
{
	size_t ks = q->pp.key_size;
	size_t wk = k->count - count;

	R->nbytes = auth_len + (size_t)count * ks;
	R->bytes = malloc(R->nbytes ? R->nbytes : 1);
	if (!R->bytes)
		return -ENOMEM;
	memcpy(R->bytes, k->keys, auth_len);
	memcpy(R->bytes + auth_len, k->keys + wk * ks, (size_t)count * ks);
	*pad = k->keys + wk * ks - conf_len;
	R->l = R->nbytes * 8;
	return 0;
}

/* The block's id: the session, the round and the vendor key_IDs. */
static uint64_t kme_block_id(const struct qkdd *q, const kme_key_id *ids,
			     uint32_t total)
{
	uint64_t h = 0xcbf29ce484222325ull;

	h = fnv64(h, &q->session_id, sizeof(q->session_id));
	h = fnv64(h, &q->round, sizeof(q->round));
	for (uint32_t i = 0; i < total; i++)
		h = fnv64(h, ids[i], strlen(ids[i]) + 1);
	return h;
}

int alice_kme_round(struct qkdd *q, struct round *R)
{
	struct kme_keys k = { 0 };
	struct kme_status st;
	struct qkd_verify_tag vt;
	struct wbuf w = { 0 };
	uint32_t ks = q->pp.key_size, conf_len = q->pp.tag_bits / 8;
	uint32_t total, wk, count, auth_len;
	uint64_t *words = NULL;
	const uint8_t *pad;
	char why[300];
	uint8_t type;
	size_t level;
	int r, v;

	if (auth_reserve_check(q->auth, MIN_TAGS + q->last_round_tags * 5 / 4)) {
		qlog("authentication reserve too low to start a round (%zu tags to send, %zu to check; the last round used %zu each way): install a fresh PSK (or use X.509) at both ends and restart",
		     auth_reserve_tags(q->auth, true),
		     auth_reserve_tags(q->auth, false), q->last_round_tags);
		return -EPERM;
	}
	r = auth_transcript_begin(q->auth, q->round);
	if (r)
		return -EPERM;
	stage_switch(QS_QUANTUM);
	r = kme_get_status(q->kme, &st, why, sizeof(why));
	if (r)
		return kme_refused(q, R, why);
	if (ks * 8 < st.min_key_size || ks * 8 > st.max_key_size) {
		snprintf(why, sizeof(why),
			 "its keys are of %u to %u bits, the stream's of %u: configure the KME or the stream",
			 st.min_key_size, st.max_key_size, ks * 8);
		return kme_refused(q, R, why);
	}
	/*
	 * Withhold the pads used since the last committed round (and the
	 * four tags still to come), plus half of any shortfall below the
	 * target reserve, as a BB84 round does, and the confirmation pad:
	 * whole keys of the vendor block.
	 */
	stage_switch(QS_PA);
	level = auth_reserve_level(q->auth);
	{
		uint64_t used, cap;
		uint64_t want = auth_withhold(q, R, level, TAGS_AFTER_IDS,
					      &used);
		total = q->o->kme_keys;
		if (total > st.max_key_per_request)
			total = st.max_key_per_request;
		if (total > KME_KEYS_MAX)
			total = KME_KEYS_MAX;
		wk = (uint32_t)((want + conf_len + ks - 1) / ks);
		if (st.stored_key_count && st.stored_key_count < total &&
		    st.stored_key_count > wk)
			total = st.stored_key_count;
		cap = ((uint64_t)total * ks - conf_len) / 32 * 32;
		if (total * (uint64_t)ks < conf_len + 32) {
			snprintf(why, sizeof(why),
				 "%u keys of %u bytes a request are too few for a round",
				 total, ks);
			return kme_refused(q, R, why);
		}
		if (want > cap) {
			qlog("authentication reserve %zu bytes below its target %u: all %u keys of the round refill it",
			     level, q->pp.auth_target, total);
			want = cap;
			wk = total;
		}
		auth_len = (uint32_t)want;
		count = total - wk;
	}
	r = room_cap(q, &count);
	if (r)
		return r;
	total = wk + count;
	stage_switch(QS_QUANTUM);
	r = kme_enc_keys(q->kme, total, ks, &k, why, sizeof(why));
	if (r)
		return kme_refused(q, R, why);
	if (qkdd_fault && !strcmp(qkdd_fault, "alice-after-enc")) {
		qlog("fault injection: exiting after enc_keys, before sending the key_IDs");
		_exit(9);
	}
	R->rs.key_bits = (uint64_t)total * ks * 8;
	/* the key_IDs close our side of the exchange */
	stage_switch(QS_IO);
	wb_u(&w, q->next_index, 8);
	wb_u(&w, count, 4);
	wb_u(&w, ks, 4);
	wb_u(&w, auth_len, 4);
	wb_u(&w, conf_len, 4);
	wb_u(&w, total, 4);
	for (uint32_t i = 0; i < total; i++) {
		size_t n = strlen(k.ids[i]);

		wb_u(&w, n, 1);
		wb_bytes(&w, k.ids[i], n);
	}
	if (w.err) {
		r = -ENOMEM;
		goto out;
	}
	r = send_msg(q, QKD_MSG_KME_IDS, w.p, w.len, AUTH_CLOSE);
	if (r)
		goto out;
	r = take_block(q, R, &k, auth_len, count, &pad, conf_len);
	if (r)
		goto out;
	/* Bob's confirmation closes his side */
	r = recv_msg(q, 1u << QKD_MSG_KME_CONFIRM, &type, true);
	if (r == RX_ABORT) {
		/* Bob's KME refused (or Bob found the key_IDs wrong): the
		 * same back-off as after a refusal of ours */
		r = rx_fail(q, R, r);
		nap(kme_backoff(q));
		goto out;
	}
	if (r) {
		r = rx_fail(q, R, r);
		goto out;
	}
	if (!closing_tag_verified(q, R,
				  "key confirmation without the transcript tag")) {
		r = 0;
		goto out;
	}
	stage_switch(QS_VERIFY);
	words = block_words(R->bytes, R->nbytes);
	if (!words) {
		r = -ENOMEM;
		goto out;
	}
	if (qkd_verify_decode(&vt, q->msg, q->msg_len, q->pp.tag_bits) ||
	    vt.key_bits != R->nbytes * 8 || vt.tag_bits != q->pp.tag_bits) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"malformed key confirmation");
		goto out;
	}
	pad_tag(&vt, pad);
	v = qkd_verify_check(&vt, words, R->nbytes * 8, q->pp.tag_bits);
	explicit_bzero(&vt, sizeof(vt));
	if (v != 1) {
		r = round_abort(q, R, QKD_ABORT_VERIFY_FAILED,
				"key confirmation failed: the two vendor KMEs gave different keys for the same %u key_IDs; block discarded at both ends",
				total);
		qwarn("%s: a vendor KME that misbehaves (check the QKD devices and their KMEs)",
		      R->rs.reason);
		nap(kme_backoff(q));
		goto out;
	}
	r = alice_commit(q, R, auth_len, count, kme_block_id(q, k.ids, total));
	if (!r && R->rs.ok)
		q->kme_fails = 0;
out:
	stage_switch(QS_OTHER);
	words_free(words, R->nbytes);
	kme_keys_free(&k);
	wb_free(&w);
	return r;
}

int bob_kme_round(struct qkdd *q, struct round *R)
{
	struct kme_keys k = { 0 };
	struct qkd_verify_tag vt;
	kme_key_id *ids = NULL;
	struct rbuf rb;
	uint64_t first, *words = NULL;
	uint32_t count, ks, auth_len, conf_len, total, wk;
	uint8_t type, vbuf[QKD_VERIFY_MSG_MAX];
	const uint8_t *pad;
	char why[300];
	int r;

	qkdd_log_round(0);
	q->round++;
	R->rs.round = q->round;
	r = auth_transcript_begin(q->auth, q->round);
	if (r)
		return -EPERM;
	/* between rounds until Alice's key_IDs arrive */
	r = recv_msg(q, 1u << QKD_MSG_KME_IDS, &type, true);
	qkdd_in_round = !r;
	qkdd_log_round(q->round);
	if (r)
		return rx_fail(q, R, r);
	if (!closing_tag_verified(q, R, "key_IDs without the transcript tag"))
		return 0;
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	first = rb_u(&rb, 8);
	count = (uint32_t)rb_u(&rb, 4);
	ks = (uint32_t)rb_u(&rb, 4);
	auth_len = (uint32_t)rb_u(&rb, 4);
	conf_len = (uint32_t)rb_u(&rb, 4);
	total = (uint32_t)rb_u(&rb, 4);
	wk = total - count;
	if (rb.err || first != q->next_index || ks != q->pp.key_size ||
	    !total || total > KME_KEYS_MAX || count > total ||
	    conf_len != q->pp.tag_bits / 8 ||
	    (uint64_t)auth_len + conf_len > (uint64_t)wk * ks)
		return round_abort(q, R, QKD_ABORT_PROTOCOL,
				   "key_IDs: index %" PRIu64 " (ours %" PRIu64 "), %u keys of %u bytes (ours %u), %u withheld bytes and a %u-byte pad in %u keys: not a block of ours",
				   first, q->next_index, total, ks,
				   q->pp.key_size, auth_len, conf_len, wk);
	ids = calloc(total, sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	for (uint32_t i = 0; i < total; i++) {
		size_t n = (size_t)rb_u(&rb, 1);
		const uint8_t *p = rb_bytes(&rb, n);

		if (!p || !kme_key_id_ok((const char *)p, n)) {
			r = round_abort(q, R, QKD_ABORT_PROTOCOL,
					"key_IDs: malformed key_ID %u", i);
			goto out;
		}
		memcpy(ids[i], p, n);
		ids[i][n] = '\0';
		for (uint32_t j = 0; j < i; j++)
			if (!strcmp(ids[i], ids[j])) {
				r = round_abort(q, R, QKD_ABORT_PROTOCOL,
						"key_IDs: %s twice", ids[i]);
				goto out;
			}
	}
	if (!rb_done(&rb)) {
		r = round_abort(q, R, QKD_ABORT_PROTOCOL,
				"key_IDs: malformed message");
		goto out;
	}
	R->rs.key_bits = (uint64_t)total * ks * 8;
	stage_switch(QS_QUANTUM);
	r = kme_dec_keys(q->kme, ids, total, ks, &k, why, sizeof(why));
	if (r) {
		qwarn("vendor KME refused the round (%s): nothing pushed at either end",
		      why);
		r = round_abort(q, R, QKD_ABORT_INTERNAL,
				"the vendor KME at bob: %.150s", why);
		goto out;
	}
	if (qkdd_fault && !strcmp(qkdd_fault, "bob-after-dec")) {
		qlog("fault injection: exiting after dec_keys, before the key confirmation");
		_exit(9);
	}
	r = take_block(q, R, &k, auth_len, count, &pad, conf_len);
	if (r)
		goto out;
	stage_switch(QS_VERIFY);
	words = block_words(R->bytes, R->nbytes);
	if (!words || qkd_verify_make(&vt, words, R->nbytes * 8,
				      q->pp.tag_bits, NULL)) {
		r = round_abort(q, R, QKD_ABORT_INTERNAL,
				"cannot make the key confirmation");
		goto out;
	}
	pad_tag(&vt, pad);
	r = send_msg(q, QKD_MSG_KME_CONFIRM, vbuf, qkd_verify_encode(&vt, vbuf),
		     AUTH_CLOSE);
	explicit_bzero(&vt, sizeof(vt));
	explicit_bzero(vbuf, sizeof(vbuf));
	if (r)
		goto out;
	r = bob_commit(q, R, first, auth_len, count,
		       kme_block_id(q, ids, total));
out:
	stage_switch(QS_OTHER);
	words_free(words, R->nbytes);
	kme_keys_free(&k);
	free(ids);
	return r;
}
