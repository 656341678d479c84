// SPDX-License-Identifier: GPL-2.0-only
/*
 * Between rounds: no round starts unless both key stores have room for
 * what it makes. A full store pauses the link instead of discarding
 * rounds, and the kernel's events resume it once consumers take keys.
 *
 *   Alice  ROOM_QUERY (the keys a round may make) when she does not know
 *          that Bob has room for them -- at each connection, and when
 *          the rounds since his last answer have used it up -- and waits
 *          for ROOM and for room in her own stream.
 *   Bob    answers ROOM (the keys his stream can take) at once if he has
 *          room, else once his stream fell below its low-water mark or
 *          emptied (STREAM_LOW_NTF, STREAM_EMPTY_NTF).
 *
 * Nobody polls the store: each end waits in poll() on its classical
 * socket and on a genl socket joined to the kernel's events, and looks at
 * its stream again when an event says it may have room. So a stream is
 * kept between its low-water mark and its limit, as the kernel's events
 * define them. The connection idles for as long as the stores are full:
 * the waits have no timeout, and TCP keepalives (peer.c) find a peer
 * that went away. See "Daemon" in Documentation/protocol.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "qkd/frame.h"
#include "session.h"

/* poll()'s tick: how soon a signal (SIGTERM, SIGHUP) is seen */
#define PAUSE_TICK_MS	200

/*
 * The keys the next round may make: at most what its block can give, and
 * a quarter more than the last round made, once one did (so that a
 * stream does not wait to be near empty for a round that makes far less
 * than its bound).
 */
uint64_t round_need(const struct qkdd *q)
{
	uint64_t most, n;

	if (q->kme)
		most = q->o->kme_keys;
	else
		most = qkdd_max_key_bits(q->pp.block_bits) / 8 /
		       (q->pp.key_size ? q->pp.key_size : 1);
	if (!most)
		most = 1;
	if (!q->last_count)
		return most;
	n = (uint64_t)q->last_count + q->last_count / 4 + 1;
	return n < most ? n : most;
}

/* @need capped at the stream's limit: a round that fills it all will do */
static uint64_t need_here(uint64_t need, uint64_t max_keys)
{
	return need < max_keys ? need : (max_keys ? max_keys : 1);
}

static void paused_status(struct qkdd *q, bool paused)
{
	q->tot.paused = paused;
	stats_write(q->o, &q->tot, NULL);
}

/* The one wait of both ends: the classical socket, the store's events. */
static int pause_poll(struct qkdd *q, int efd, bool *cfd_ready,
		      bool *ev_ready)
{
	struct pollfd p[2] = {
		{ .fd = q->cfd, .events = POLLIN },
		{ .fd = efd, .events = POLLIN },
	};
	int r;

	*cfd_ready = *ev_ready = false;
	if (qkdd_stopping())
		return -EINTR;
	if (qkdd_reload)
		qkdd_reload_apply();
	r = poll(p, efd >= 0 ? 2 : 1, PAUSE_TICK_MS);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	*cfd_ready = p[0].revents != 0;
	*ev_ready = efd >= 0 && p[1].revents != 0;
	return 0;
}

/*
 * A message from the peer where only an ABORT (the peer stopping) may
 * come: the connection ends either way.
 */
static int peer_spoke(struct qkdd *q)
{
	uint8_t type;
	int r = recv_msg(q, 0, &type, true);

	if (r == RX_ABORT) {
		qlog("while waiting for room: %s", q->peer_reason);
		return -ECONNRESET;
	}
	return r ? r : -EPROTO;
}

/* ROOM_QUERY and ROOM: one u64, in the byte order of wire.c */
static int send_u64(struct qkdd *q, uint8_t type, uint64_t v)
{
	struct wbuf w = { 0 };
	int r;

	wb_u(&w, v, 8);
	r = w.err ? -ENOMEM : send_msg(q, type, w.p, w.len, AUTH_OWN);
	wb_free(&w);
	return r;
}

static int stopped(struct qkdd *q)
{
	send_abort(q, QKD_ABORT_SHUTDOWN, "operator stop");
	return -EINTR;
}

/* This end's room, and whether it is enough for @need keys. */
static int room_here(struct qkdd *q, uint64_t need, uint64_t *room,
		     bool *enough)
{
	uint64_t max;
	int r = store_room(q->st, room, &max);

	if (r)
		return r;
	*enough = *room && *room >= need_here(need, max);
	return 0;
}

/*
 * Waiting for room: the events group joined before the look that decides
 * to wait, so that no delivery between the look and the wait goes unseen.
 */
static int room_watch(struct qkdd *q, uint64_t need, int *efd,
		      uint64_t *room, bool *enough)
{
	int r = store_events_fd(q->st, efd);

	return r ? r : room_here(q, need, room, enough);
}

/* The events queued; the room looked at again if one may have made some. */
static int room_after_events(struct qkdd *q, uint64_t need, uint64_t *room,
			     bool *enough)
{
	int r = store_events_drain(q->st);

	if (r <= 0)
		return r;
	return room_here(q, need, room, enough);
}

static int alice_wait_room(struct qkdd *q)
{
	uint64_t need = round_need(q), room;
	uint8_t type;
	bool enough, got = false, logged = false;
	struct timespec t0, t1;
	int efd = -1, r;

	r = room_here(q, need, &room, &enough);
	if (r)
		return r;
	if (enough && q->peer_room_known && q->peer_room >= need)
		return 0;
	if (!enough) {
		r = room_watch(q, need, &efd, &room, &enough);
		if (r)
			return r;
	}
	r = send_u64(q, QKD_MSG_ROOM_QUERY, need);
	if (r)
		return r;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!(got && enough)) {
		bool cr, er;

		if (!logged) {
			clock_gettime(CLOCK_MONOTONIC, &t1);
			if (!enough || t1.tv_sec - t0.tv_sec >= 2) {
				if (!enough)
					qlog("key store full here (room for %" PRIu64 " keys, a round makes up to %" PRIu64 "): no round until consumers take keys",
					     room, need);
				else
					qlog("waiting for room in bob's key store (a round makes up to %" PRIu64 " keys)",
					     need);
				qkdd_notify_status("paused: key store full at %s",
						   enough ? "bob" : "alice");
				paused_status(q, true);
				logged = true;
			}
		}
		r = pause_poll(q, efd, &cr, &er);
		if (r == -EINTR)
			return stopped(q);
		if (r)
			return r;
		if (cr && got)
			return peer_spoke(q);
		if (cr) {
			struct rbuf rb;

			r = recv_msg(q, 1u << QKD_MSG_ROOM, &type, true);
			if (r == RX_ABORT) {
				qlog("while waiting for room: %s",
				     q->peer_reason);
				return -ECONNRESET;
			}
			if (r == -EINTR)
				return stopped(q);
			if (r)
				return r;
			rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
			q->peer_room = rb_u(&rb, 8);
			if (!rb_done(&rb) || !q->peer_room) {
				send_abort(q, QKD_ABORT_PROTOCOL,
					   "malformed ROOM");
				return -EPROTO;
			}
			q->peer_room_known = true;
			got = true;
		}
		if (er) {
			r = room_after_events(q, need, &room, &enough);
			if (r)
				return r;
		}
	}
	if (logged) {
		qlog("room again (here %" PRIu64 " keys, at bob %" PRIu64 "): rounds resume",
		     room, q->peer_room);
		paused_status(q, false);
	}
	return 0;
}

int alice_before_round(struct qkdd *q)
{
	int r = alice_wait_room(q);

	store_events_close(q->st);
	return r;
}

/* Bob: Alice's ROOM_QUERY, answered once his stream has the room. */
static int bob_wait_room(struct qkdd *q)
{
	uint64_t need, room;
	uint8_t type;
	bool enough, logged = false;
	struct rbuf rb;
	int efd = -1, r;

	r = recv_msg(q, 1u << QKD_MSG_ROOM_QUERY, &type, true);
	if (r == RX_ABORT) {
		qlog("between rounds: %s", q->peer_reason);
		return -ECONNRESET;
	}
	if (r)
		return r;
	rb = (struct rbuf){ q->msg, q->msg_len, 0, false };
	need = rb_u(&rb, 8);
	if (!rb_done(&rb) || !need) {
		send_abort(q, QKD_ABORT_PROTOCOL, "malformed ROOM_QUERY");
		return -EPROTO;
	}
	r = room_here(q, need, &room, &enough);
	if (r)
		return r;
	if (!enough) {
		r = room_watch(q, need, &efd, &room, &enough);
		if (r)
			return r;
	}
	while (!enough) {
		bool cr, er;

		if (!logged) {
			qlog("key store full here (room for %" PRIu64 " keys, a round makes up to %" PRIu64 "): no round until consumers take keys",
			     room, need);
			qkdd_notify_status("paused: key store full at bob");
			paused_status(q, true);
			logged = true;
		}
		r = pause_poll(q, efd, &cr, &er);
		if (r == -EINTR)
			return stopped(q);
		if (r)
			return r;
		if (cr)
			return peer_spoke(q);
		if (er) {
			r = room_after_events(q, need, &room, &enough);
			if (r)
				return r;
		}
	}
	r = send_u64(q, QKD_MSG_ROOM, room);
	if (r)
		return r;
	if (logged) {
		qlog("room again (%" PRIu64 " keys): answered alice", room);
		paused_status(q, false);
	}
	/* Alice may now wait for room of her own, for as long as it takes */
	q->resume_wait = true;
	return 0;
}

static int bob_room_query(struct qkdd *q)
{
	int r = bob_wait_room(q);

	store_events_close(q->st);
	return r;
}

/*
 * The type of the frame at the head of the classical socket, unread:
 * 1 with *type set, 0 if a whole header is not there yet, or -errno.
 * Only to route it: the round, or bob_room_query(), reads and checks it.
 */
static int peek_type(struct qkdd *q, uint8_t *type)
{
	uint8_t h[QKD_FRAME_HDR_LEN];
	struct frame_hdr hdr;
	ssize_t n = recv(q->cfd, h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);

	if (n == 0) {
		qlog("the peer closed the connection");
		return -ECONNRESET;
	}
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	if ((size_t)n < sizeof(h))
		return 0;
	/* a header we cannot parse: the round's recv says what is wrong */
	*type = frame_parse_header(h, sizeof(h), &hdr) ? 0 : hdr.type;
	return 1;
}

int bob_before_round(struct qkdd *q)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = q->cfd, .events = POLLIN },
			{ .fd = q->qfd, .events = POLLIN },
		};
		bool quantum = !q->kme && q->qfd >= 0;
		uint8_t type = 0;
		int r;

		if (qkdd_stopping())
			return -EINTR;
		if (qkdd_reload)
			qkdd_reload_apply();
		r = poll(p, quantum ? 2 : 1, PAUSE_TICK_MS);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (quantum && p[1].revents)
			return 0;	/* Alice's pulses: the round begins */
		if (r > 0 && p[0].revents) {
			r = peek_type(q, &type);
			if (r < 0)
				return r;
			if (r && type != QKD_MSG_ROOM_QUERY)
				return 0;	/* the round's, or an ABORT */
			if (r) {
				r = bob_room_query(q);
				if (r)
					return r;
				clock_gettime(CLOCK_MONOTONIC, &t0);
				continue;
			}
			/* part of a header: wait for the rest, not spinning */
			nanosleep(&(struct timespec){ 0, 20 * 1000000L }, NULL);
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (!q->resume_wait && q->o->timeout_s &&
		    t1.tv_sec - t0.tv_sec >= (time_t)q->o->timeout_s) {
			qlog("no message from the peer for %u s",
			     q->o->timeout_s);
			return -ETIMEDOUT;
		}
	}
}

/*
 * Alice, before a block is committed: its @count keys capped at the room
 * of both stores (hers, and Bob's as his last ROOM less the rounds since),
 * when a round made more than round_need() foresaw. The key beyond is
 * discarded at both ends -- the block, the indices and the withheld
 * authentication bytes stay the same at both -- and a prefix of the
 * amplified key is as secret as the whole.
 */
int room_cap(struct qkdd *q, uint32_t *count)
{
	uint64_t room, cap;
	int r = store_room(q->st, &room, NULL);

	if (r)
		return r;
	cap = room;
	if (q->peer_room_known && q->peer_room < cap)
		cap = q->peer_room;
	if (*count <= cap)
		return 0;
	qlog("room for %" PRIu64 " of the round's %u keys (here %" PRIu64 ", at bob %" PRIu64 "): the rest is discarded at both ends",
	     cap, *count, room, q->peer_room_known ? q->peer_room : room);
	*count = (uint32_t)cap;
	return 0;
}
