// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl: administration of the qkd key store.
 *
 *   qkdctl [-j|--json] [-p|--pretty] [-t|--tab] [-n|--netns NETNS]
 *          [-D|--device PATH] [--timestamp] [-h] [-V] OBJECT COMMAND ...
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qkdctl.h"

static const char usage_global[] =
	"Usage: qkdctl [OPTIONS] OBJECT COMMAND [ARGS]\n"
	"       qkdctl help [OBJECT]\n"
	"OBJECT := { link | stream | key | status | monitor | sa | alg | daemon | genpsk | up | down }\n"
	"OPTIONS := { -j|--json | -p|--pretty | -t|--tab | -n|--netns NETNS | -D|--device PATH |\n"
	"             --timestamp | -h|--help | -V|--version }\n";

static const char usage_link[] =
	"       qkdctl link add NAME role { initiator | responder } [ id N ] [ peer TEXT ]\n"
	"       qkdctl link del { NAME | id N }\n"
	"       qkdctl link set { NAME | id N } state { up | down }\n"
	"       qkdctl link show [ NAME | id N ]\n";

static const char usage_stream[] =
	"       qkdctl stream add UUID link { NAME | id N } key-size BYTES [ max-keys N ] [ low-water N ]\n"
	"       qkdctl stream set UUID [ max-keys N ] [ low-water N ]\n"
	"       qkdctl stream del UUID\n"
	"       qkdctl stream show [ UUID ] [ link { NAME | id N } ]\n";

static const char usage_key[] =
	"       qkdctl key push UUID index { N | next } [ file { PATH | - } ] [ hex ]\n"
	"       qkdctl key flush UUID\n"
	"       qkdctl key get UUID [ index N | key-id KEYUUID ] [ number M ] [ format { hex | base64 | raw | ip-xfrm } ]\n"
	"       qkdctl key status UUID\n"
	"       qkdctl key to-keyring UUID [ index N | key-id KEYUUID ] [ type { qkd | logon } ]\n"
	"                 [ desc TEXT ] [ keyring { @s | @p | @t | @u | @us | SERIAL } ] [ key-len N ]\n";

static const char usage_status[] =
	"       qkdctl status\n";

static const char usage_monitor[] =
	"       qkdctl monitor [ -t | --timestamp ]\n";

static const char usage_daemon[] =
	"       qkdctl daemon show [ LINK | file PATH ]\n";

static const char usage_genpsk[] =
	"       qkdctl genpsk FILE_A FILE_B [ size BYTES ]\n";

static const char usage_up[] =
	"       qkdctl up [ -c FILE ] [ --run-dir DIR ] [ --foreground | --bind-only ] NAME\n"
	"                 (FILE: /etc/qkd/NAME.conf, qkd.conf(5))\n"
	"       qkdctl down [ -c FILE ] [ --run-dir DIR ] [ --purge ] NAME\n";

static const char usage_sa[] =
	"       qkdctl sa add UUID local ADDR remote ADDR [ mode { transport | tunnel } ]\n"
	"                 [ alg { aes-gcm | chacha20-poly1305 } ] [ key-bits N ] [ dir { out | in | both } ]\n"
	"                 [ reqid N ] [ if-id N ] [ mark N [ mask N ] ] first-index N\n"
	"                 [ rekey-seconds N ] [ rekey-bytes N ] [ rekey-packets N ]\n"
	"                 [ policy [ policy-local NET[/LEN] ] [ policy-remote NET[/LEN] ]\n"
	"                   [ policy-priority N ] ]\n"
	"       qkdctl sa rekey UUID [ force ]\n"
	"       qkdctl sa del UUID [remove-protection]\n"
	"       qkdctl sa show [ UUID ]\n";

static const char usage_alg[] =
	"       qkdctl alg setkey UUID type { skcipher | aead | hash } name ALG [ index N | key-id KEYUUID ]\n"
	"                 [ key-len N ] [ op { encrypt | decrypt } ] [ iv HEX ] [ assoc-len N ] [ tag-len N ]\n";

void usage(FILE *f, const char *object)
{
	fputs(usage_global, f);
	if (!object || matches(object, "link"))
		fputs(usage_link, f);
	if (!object || matches(object, "stream"))
		fputs(usage_stream, f);
	if (!object || matches(object, "key"))
		fputs(usage_key, f);
	if (!object || matches(object, "status"))
		fputs(usage_status, f);
	if (!object || matches(object, "monitor"))
		fputs(usage_monitor, f);
	if (!object || !strcmp(object, "sa"))
		fputs(usage_sa, f);
	if (!object || matches(object, "alg"))
		fputs(usage_alg, f);
	if (!object || matches(object, "daemon"))
		fputs(usage_daemon, f);
	if (!object || matches(object, "genpsk"))
		fputs(usage_genpsk, f);
	if (!object || !strcmp(object, "up") || !strcmp(object, "down"))
		fputs(usage_up, f);
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
} objects[] = {
	/* The first match wins (as in ip): "s" and "st" mean stream. */
	{ "link", do_link },
	{ "stream", do_stream },
	{ "key", do_key },
	{ "status", do_status },
	{ "monitor", do_monitor },
	{ "sa", do_sa },
	{ "alg", do_alg },
	{ "daemon", do_daemon },
	{ "genpsk", do_genpsk },
	{ "up", do_up },
	{ "down", do_down },
};

/*
 * -n NETNS: into the network namespace of /run/netns/NETNS (ip netns add),
 * as ip -n does, before netlink or /dev/qkd is opened: both bind to the
 * namespace of the process that opens them.
 */
static void enter_netns(const char *name)
{
	char path[256];
	int fd;

	if (!*name || strchr(name, '/') || !strcmp(name, ".") ||
	    !strcmp(name, "..") || strlen(name) > 200)
		usage_error("netns \"%s\": not a name under /run/netns", name);
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fail_msg("netns %s: %s: %s", name, path, strerror(errno));
		exit(1);
	}
	if (setns(fd, CLONE_NEWNET)) {
		fail_msg("netns %s: setns: %s", name, strerror(errno));
		close(fd);
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "tab", no_argument, NULL, 't' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "netns", required_argument, NULL, 'n' },
		{ "timestamp", no_argument, NULL, 'T' },
		{ "device", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *netns = NULL;
	size_t i;
	int c, ret;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:jptn:D:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			opts.out = OUT_JSON;
			break;
		case 't':
			opts.out = OUT_TAB;
			break;
		case 'p':
			opts.pretty = true;
			break;
		case 'n':
			netns = optarg;
			break;
		case 'T':
			opts.timestamp = true;
			break;
		case 'D':
			opts.device = optarg;
			break;
		case 'h':
			usage(stdout, NULL);
			return 0;
		case 'V':
			printf("qkdctl %s (qkd ABI %d)\n", QKD_VERSION,
			       QKD_ABI_VERSION);
			return 0;
		case ':':
			usage_error("option \"%s\" needs a value",
				    argv[optind - 1]);
		default:
			if (optopt)
				usage_error("unknown option '-%c'", optopt);
			usage_error("unknown option \"%s\"", argv[optind - 1]);
		}
	}
	argc -= optind;
	argv += optind;
	json_setup();
	if (netns)
		enter_netns(netns);
	if (argc < 1) {
		usage(stderr, NULL);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[0], "help")) {
		if (argc > 2)
			usage_error("unexpected argument \"%s\"", argv[2]);
		usage(stdout, argc > 1 ? argv[1] : NULL);
		return 0;
	}
	for (i = 0; i < ARRAY_SIZE(objects); i++) {
		if (matches(argv[0], objects[i].name)) {
			if (argc > 1 && !strcmp(argv[1], "help")) {
				usage(stdout, objects[i].name);
				return 0;
			}
			ret = objects[i].fn(argc, argv);
			if (fflush(stdout) && !ret)
				ret = fail_msg("write: error on standard output");
			ctl_cleanup();
			return ret;
		}
	}
	usage_error("unknown object \"%s\"", argv[0]);
}
