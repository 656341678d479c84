// SPDX-License-Identifier: GPL-2.0-only
/*
 * X.509 mode: the authentication context, bootstrapped once from mutually
 * authenticated TLS 1.3 (auth_x509_bootstrap()) and then kept -- across
 * reconnections in memory and across restarts in the state file
 * (--state-dir) --, as in PSK mode. Re-bootstrapping at every connection
 * let an attacker keep TLS-derived key in use with one TCP reset, and
 * threw away the reserve refilled from QKD key (issue 14).
 *
 * Which connection bootstraps: Alice (the TLS client) starts TLS only
 * when she holds no context, else she sends her SYNC straight away. Bob
 * tells the two apart by the first byte (a TLS record is 0x16, a frame
 * starts with "QKDC"). Holding a context, he accepts a new bootstrap
 * (Alice lost hers: no state file, or a new installation) only while his
 * context is still in its bootstrap window (it still holds bootstrap
 * pads: nothing information-theoretic is lost); once it is keyed from QKD
 * output only, a new bootstrap is refused with the alarm -- the operator
 * removes the state files at both ends to start again. An attacker
 * cannot start TLS as Alice without her private key.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "qkd/auth.h"
#include "session.h"

static struct auth_ctx *bootstrap(const struct qkdd_opts *o, int fd)
{
	enum auth_role role = o->role == QKDD_ALICE ? QKD_AUTH_INITIATOR
						    : QKD_AUTH_RESPONDER;
	struct auth_x509_cfg cfg = {
		.cert_file = o->cert, .key_file = o->key, .ca_file = o->ca,
		.peer_name = o->peer_name[0] ? o->peer_name : NULL,
	};
	uint8_t *key = malloc(QKDD_X509_BOOTSTRAP_LEN);
	struct auth_ctx *a = NULL;
	char why[256] = "";
	int err;

	if (!key)
		return NULL;
	err = auth_x509_bootstrap(fd, role, &cfg, key,
				  QKDD_X509_BOOTSTRAP_LEN, why, sizeof(why));
	if (err)
		qlog("X.509 bootstrap: %s", why[0] ? why : auth_strerror(err));
	else
		a = auth_new(role, key, QKDD_X509_BOOTSTRAP_LEN, NULL, &err);
	explicit_bzero(key, QKDD_X509_BOOTSTRAP_LEN);
	free(key);
	return a;
}

/* The first byte of a TLS handshake record (the ClientHello). */
#define TLS_RECORD_HANDSHAKE	0x16

int qkdd_x509_auth(struct qkdd *q, struct auth_ctx **auth, int cfd)
{
	struct auth_ctx *a;

	if (*auth && q->o->role == QKDD_ALICE)
		return 0;
	if (q->o->role == QKDD_BOB) {
		struct auth_stats as;
		uint8_t first;
		int r = peer_wait(cfd, q->o->timeout_s, true);

		if (r <= 0)
			return r ? r : -ETIMEDOUT;
		if (recv(cfd, &first, 1, MSG_PEEK) != 1)
			return -ECONNRESET;
		if (*auth && first != TLS_RECORD_HANDSHAKE)
			return 0;
		if (!*auth && first != TLS_RECORD_HANDSHAKE) {
			auth_strike(q, "the peer runs on the authentication context of an earlier X.509 bootstrap, which we do not hold (no state file here: --state-dir); to bootstrap again, restart the peer without its state file");
			return -ECONNRESET;
		}
		if (*auth) {
			auth_get_stats(*auth, &as);
			if (!as.bootstrap_left) {
				auth_strike(q, "the peer asks for a new X.509 bootstrap, but our authentication context is keyed from QKD output only: a new bootstrap would put TLS-derived key back in use; if the peer lost its state file, remove ours too and restart both");
				return -ECONNRESET;
			}
			qlog("the peer asks for a new X.509 bootstrap (it holds no authentication context): ours is still in its bootstrap window, bootstrapping again");
		}
	}
	/*
	 * The context held is replaced only by one that bootstrapped:
	 * a forged TLS record (one byte 0x16 and junk) must not cost it.
	 */
	a = bootstrap(q->o, cfd);
	if (!a) {
		if (*auth)
			auth_strike(q, "a new X.509 bootstrap failed: our authentication context is kept");
		return -ECONNRESET;
	}
	qkdd_auth_attach(q, NULL, true);
	auth_free(*auth);
	*auth = a;
	q->tot.x509_bootstraps++;
	qlog("X.509 bootstrap done: the authentication context is kept across reconnections%s; its TLS-derived key is retired once enough QKD key was added",
	     q->o->state_dir[0] ? " and restarts (state file)" : "");
	/* saved at once: a restart must not bootstrap again */
	return qkdd_auth_attach(q, *auth, true) ? -EPERM : 0;
}
