// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for qkdd's handshake state machine (handshake.c,
 * wire.c): the input is whatever a network attacker without the key
 * sends to Bob on a new connection -- SYNC, HELLO, any frame, any bytes.
 * Bob runs hello() on it, with his real store (--no-kernel, a file) and a
 * fresh authentication context. Checks, besides memory safety:
 *  - no session comes up from unauthenticated bytes (hello() never
 *    returns 0: that needs the HELLO closing tag);
 *  - nothing in them stops the daemon (hello() never returns -EPERM);
 *  - nothing is allocated beyond the handshake's bound, and no pad is
 *    skipped at all: SYNC positions move nothing before the SYNC's own
 *    tags verified at them (issue 14).
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qkd/auth.h"
#include "../userspace/qkdd/qkdd.h"
#include "../userspace/qkdd/session.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct qkdd_opts o;
static struct store *st;
static struct qkdd *q;
static uint8_t key[FUZZ_KEYLEN];

static void setup(void)
{
	char err[256], dir[] = "/tmp/fuzz_handshake.XXXXXX";

	if (!mkdtemp(dir))
		abort();
	qkdd_opts_default(&o);
	o.role = QKDD_BOB;
	if (qkdd_opt_set(&o, "listen", "127.0.0.1:7790", err, sizeof(err)) ||
	    qkdd_opt_set(&o, "stream", "6f1c2a9e-3b4d-4e5f-8a7b-1c2d3e4f5a6b",
			 err, sizeof(err)) ||
	    qkdd_opt_set(&o, "link", "ab", err, sizeof(err)) ||
	    qkdd_opt_set(&o, "psk", "/nonexistent", err, sizeof(err)) ||
	    qkdd_channel_parse(&o.ch, "source=single-photon", err,
			       sizeof(err)))
		abort();
	o.no_kernel = true;
	snprintf(o.out, sizeof(o.out), "%s/bob.keys", dir);
	o.timeout_s = 1;
	st = store_open(&o, err, sizeof(err));
	q = st ? qkdd_new(&o, st, NULL) : NULL;
	if (!q)
		abort();
	fuzz_key(key);
	/* qkdd logs on stderr: run.sh passes -close_fd_mask=2 */
	qkdd_log_init(QKDD_BOB, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct auth_stats as;
	struct auth_ctx *a;
	int sv[2], r;

	if (!q)
		setup();
	a = auth_new(QKD_AUTH_RESPONDER, key, sizeof(key), NULL, NULL);
	if (!a || qkdd_auth_attach(q, a, true))
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		abort();
	/* the input fits the socket buffer (-max_len); Bob's own frames
	 * (a SYNC, an ABORT) too */
	if (size && write(sv[0], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[0], SHUT_WR);
	q->cfd = sv[1];
	q->qfd = -1;
	r = hello(q);
	auth_get_stats(a, &as);
	if (r == 0 || r == -EPERM)
		__builtin_trap();
	if (q->msg_cap > HANDSHAKE_MSG_MAX * 2)
		__builtin_trap();
	if (as.bytes_skipped)
		__builtin_trap();
	close(sv[0]);
	close(sv[1]);
	qkdd_auth_attach(q, NULL, true);
	auth_free(a);
	return 0;
}
