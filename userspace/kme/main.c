// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd-kme: options, start and stop (Documentation/man/qkd-kme.8).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "kme.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qkd-kme [-c FILE] [-t]\n"
		"  -c, --config FILE  configuration (default " KME_DEFAULT_CONFIG ")\n"
		"  -t, --check        check the configuration and the files it names, then exit\n"
		"  -V, --version      print the version\n"
		"  -h, --help         this help\n"
		"An ETSI GS QKD 014 key manager over HTTPS with client certificates,\n"
		"serving the keys of this network namespace's /dev/qkd. See qkd-kme(8).\n");
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *path = KME_DEFAULT_CONFIG;
	struct kme_store store = { .fd = -1 };
	struct kme_server *srv = NULL;
	struct kme_tls *tls = NULL;
	struct kme_config *c;
	bool check = false;
	char err[512];
	sigset_t set;
	int opt, r, sig = 0;

	while ((opt = getopt_long(argc, argv, "c:tVh", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 't':
			check = true;
			break;
		case 'V':
			printf("qkd-kme %s\n", QKD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* no core dump, no ptrace by the same user: the process holds keys */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	c = malloc(sizeof(*c));
	if (!c)
		return 1;
	kme_config_default(c);
	r = kme_config_load(c, path, err, sizeof(err));
	if (r) {
		kme_log("%s: %s", path, err);
		free(c);
		return 2;	/* a bad configuration: no restart helps */
	}
	r = kme_tls_init(&tls, c, err, sizeof(err));
	if (r) {
		kme_log("%s", err);
		free(c);
		return 2;
	}
	r = kme_store_open(&store, c->device, c->max_keys_per_request);
	if (r) {
		kme_log("%s: %s", c->device, strerror(-r));
		kme_tls_free(tls);
		free(c);
		return 1;
	}
	if (check) {
		printf("%s: OK (%zu SAEs, %zu pairs)\n", path, c->n_saes, c->n_pairs);
		kme_store_close(&store);
		kme_tls_free(tls);
		free(c);
		return 0;
	}
	/* The server's thread inherits the mask: the signals come here. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	r = kme_server_start(&srv, c, &store, tls, err, sizeof(err));
	if (r) {
		kme_log("%s", err);
		kme_store_close(&store);
		kme_tls_free(tls);
		free(c);
		return 1;
	}
	kme_log("%s serving %zu pairs on %s port %u", c->kme_id, c->n_pairs,
		c->address[0] ? c->address : "*", c->port);
	do {
		if (sigwait(&set, &sig))
			break;
	} while (sig == SIGHUP);	/* no reload yet: restart to re-read */
	kme_log("signal %d: stopping", sig);
	kme_server_stop(srv);
	kme_store_close(&store);
	kme_tls_free(tls);
	free(c);
	return 0;
}
