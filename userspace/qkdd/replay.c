// SPDX-License-Identifier: GPL-2.0-only
/*
 * --replay FILE: recorded detections instead of the simulated quantum
 * channel (Documentation/protocol.md, "Recorded detections"). Each end
 * reads its own file of the recording -- Alice her bit, basis and class
 * of every pulse slot, Bob his detections -- in windows of the round's
 * pulse count, forward only. Alice names each round's window on the
 * quantum connection (quantum_send_window(): the first slot and the
 * count, nothing secret); Bob reads the detections of that window from
 * his file, and the round goes on as with the simulated link: sifting,
 * estimation, Cascade, verification, privacy amplification, unchanged.
 *
 * The files are secrets (Alice's choices, Bob's raw key): opened as the
 * PSK is (qkd_tt_open_path()), every buffer wiped, no bit logged.
 *
 * A window is used once. With --state-dir, where each end has got to is
 * kept in STATE_DIR/ROLE.replay (the recording's identity -- device,
 * inode, size, a hash of its header -- and the next slot), written
 * durably before anything of a window is used: a restart goes on after
 * the last window, never replays one (which would give the raw key of an
 * earlier round again).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkd/timetag.h"
#include "session.h"

#define REPLAY_STATE_MAGIC	"qkdd-replay 1"

static void replay_state_path(const struct qkdd *q, char *buf, size_t len,
			      const char *suffix)
{
	snprintf(buf, len, "%s/%s.replay%s", q->o->state_dir,
		 qkdd_role_name(q->o->role), suffix);
}

/* What names the recording: device, inode, size, its header's hash. */
static int replay_identity(const struct qkd_tt_reader *r, uint64_t id[4])
{
	uint8_t hdr[QKD_TT_HDR_LEN];
	struct stat st;

	if (fstat(r->fd, &st))
		return -errno;
	qkd_tt_header_encode(&r->h, hdr);
	id[0] = (uint64_t)st.st_dev;
	id[1] = (uint64_t)st.st_ino;
	id[2] = (uint64_t)st.st_size;
	id[3] = fnv64(0xcbf29ce484222325ull, hdr, sizeof(hdr));
	return 0;
}

/* Where this end got to, durably, before a window is used: 0 or -EPERM. */
static int replay_state_save(struct qkdd *q, uint64_t pos)
{
	char path[QKDD_PATH_MAX + 32], tmp[QKDD_PATH_MAX + 32], text[160];
	uint64_t id[4];
	int n, r;

	if (!q->o->state_dir[0])
		return 0;
	r = replay_identity(q->replay, id);
	n = snprintf(text, sizeof(text),
		     REPLAY_STATE_MAGIC " %" PRIu64 " %" PRIu64 " %" PRIu64 " %016" PRIx64 " %" PRIu64 "\n",
		     id[0], id[1], id[2], id[3], pos);
	replay_state_path(q, path, sizeof(path), "");
	replay_state_path(q, tmp, sizeof(tmp), ".tmp");
	if (!r)
		r = write_file_sync(q->o->state_dir, tmp, path, (uint8_t *)text,
				    (size_t)n);
	if (r) {
		qerr("replay: cannot save where the recording is (%s): %s; stopping, so that no window is used twice",
		     path, strerror(-r));
		return -EPERM;
	}
	return 0;
}

/*
 * Where an earlier run left this recording (0: from the start, or a
 * state of another recording); -EINVAL on a damaged state file.
 */
static int replay_state_load(struct qkdd *q, uint64_t *pos)
{
	char path[QKDD_PATH_MAX + 32], text[161];
	uint64_t id[4], sid[4], p;
	ssize_t n;
	int fd;

	*pos = 0;
	if (!q->o->state_dir[0])
		return 0;
	replay_state_path(q, path, sizeof(path), "");
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0) {
		qerr("replay: %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0 || replay_identity(q->replay, id))
		n = 0;
	text[n > 0 ? n : 0] = '\0';
	if (sscanf(text, REPLAY_STATE_MAGIC " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNx64 " %" SCNu64,
		   &sid[0], &sid[1], &sid[2], &sid[3], &p) != 5 ||
	    !strchr(text, '\n')) {
		qerr("replay: %s is damaged: where the recording was left is not known; remove it only with a fresh recording",
		     path);
		return -EINVAL;
	}
	if (memcmp(id, sid, sizeof(id))) {
		qlog("replay: %s is of another recording: this one from its first slot",
		     path);
		return 0;
	}
	if (p > q->replay->h.pulses) {
		qerr("replay: %s: slot %" PRIu64 " past the recording's %" PRIu64,
		     path, p, q->replay->h.pulses);
		return -EINVAL;
	}
	*pos = p;
	return 0;
}

int replay_open(struct qkdd *q)
{
	const struct qkdd_opts *o = q->o;
	enum qkd_tt_end end = o->role == QKDD_ALICE ? QKD_TT_ALICE
						    : QKD_TT_BOB;
	struct qkd_tt_reader *r;
	uint64_t pos;

	if (!o->replay[0] || o->key_source != QKDD_SRC_BB84)
		return 0;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	if (qkd_tt_open_path(r, o->replay, end)) {
		qerr("replay: %s", r->err);
		goto fail;
	}
	if (r->h.classes != o->ch.n_intensities) {
		qerr("replay %s: the recording has %u intensity classes, the configured source %u (--channel mu=...): describe the recorded source",
		     o->replay, r->h.classes, o->ch.n_intensities);
		goto fail;
	}
	q->replay = r;
	if (replay_state_load(q, &pos) || qkd_tt_skip(r, pos)) {
		q->replay = NULL;
		goto fail;
	}
	qlog("replaying %s: %s of %" PRIu64 " pulse slots, %" PRIu64 " records, %u intensity classes, %" PRIu64 " Hz, from slot %" PRIu64,
	     o->replay, end == QKD_TT_ALICE ? "Alice's choices" :
	     "Bob's detections", r->h.pulses, r->h.records, r->h.classes,
	     r->h.rate_hz, pos);
	if (!o->state_dir[0])
		qwarn("a recording gives its raw key once: without --state-dir every start replays it from its first pulse, and the keys of a second replay are not independent of the first's");
	return 0;
fail:
	qkd_tt_close(r);
	free(r);
	return -EINVAL;
}

void replay_close(struct qkdd *q)
{
	if (!q->replay)
		return;
	qkd_tt_close(q->replay);
	explicit_bzero(q->replay, sizeof(*q->replay));
	free(q->replay);
	q->replay = NULL;
}

bool replay_exhausted(const struct qkdd *q, uint64_t npulses)
{
	const struct qkd_tt_reader *r = q->replay;

	return r && (npulses > r->h.pulses || r->pos > r->h.pulses - npulses);
}

/* A refusal of the file: the reason, and the daemon stops (-EPERM). */
static int file_fail(struct qkdd *q, int r)
{
	if (r == -ENOMEM)
		return r;
	qerr("replay %s: %s", q->o->replay,
	     r == -ERANGE ? "no full round left in the recording" :
	     q->replay->err[0] ? q->replay->err : strerror(-r));
	return -EPERM;
}

int replay_alice(struct qkdd *q, uint64_t npulses,
		 struct qkd_alice_records *a)
{
	uint64_t first = q->replay->pos;
	int r;

	r = qkd_alice_records_alloc(a, (size_t)npulses);
	if (r)
		return r;
	r = qkd_tt_alice_window(q->replay, first, a);
	if (r)
		return file_fail(q, r);
	/* the window is used: never again, across a restart too */
	if (replay_state_save(q, first + npulses))
		return -EPERM;
	qdebug("replay: pulse slots [%" PRIu64 ", %" PRIu64 ") of %" PRIu64,
	       first, first + npulses, q->replay->h.pulses);
	r = quantum_send_window(q->qfd, q->round, first, npulses);
	if (r) {
		qlog("the quantum connection failed: %s", strerror(-r));
		return -ECONNRESET;
	}
	return 0;
}

int replay_bob(struct qkdd *q, uint64_t first, uint64_t npulses,
	       struct qkd_detections *d)
{
	int r = qkd_tt_bob_window(q->replay, first, npulses, d);

	if (r == -EINVAL) {
		/* Alice's windows only go forward: no qkdd sends it */
		qlog("quantum channel: the window [%" PRIu64 ", %" PRIu64 ") starts before slot %" PRIu64 ", which this end has replayed: refused",
		     first, first + npulses, q->replay->pos);
		return -EPROTO;
	}
	if (r == -ERANGE) {
		/*
		 * Not fatal: the window came over the unauthenticated
		 * quantum connection, and what an attacker can send must
		 * not stop the daemon.
		 */
		qerr("replay %s: Alice's window [%" PRIu64 ", %" PRIu64 ") goes past this recording's %" PRIu64 " pulse slots: the two ends' files are not of one recording, or the window was forged",
		     q->o->replay, first, first + npulses,
		     q->replay->h.pulses);
		return -EPROTO;
	}
	if (r)
		return file_fail(q, r);
	return replay_state_save(q, first + npulses);
}
