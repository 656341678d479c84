// SPDX-License-Identifier: GPL-2.0-only
/*
 * The service manager's view of qkdd (Type=notify): READY=1 once the
 * daemon listens (Bob) or has its authentication key and starts to
 * connect (Alice), a STATUS= line at every change (connecting, connected,
 * each round's result, QBER and keys), STOPPING=1, RELOADING=1 around a
 * SIGHUP. libsystemd's sd_notify(3): nothing happens without NOTIFY_SOCKET.
 * And the reload on SIGHUP: the options parsed again, what may change
 * between rounds applied (qkdd_reload_diff()).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "qkdd.h"

void qkdd_notify(const char *state)
{
	sd_notify(0, state);
}

void qkdd_notify_status(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "STATUS=");

	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	sd_notify(0, buf);
}

static struct qkdd_opts *reload_live;
static int reload_argc;
static char **reload_argv;

void qkdd_reload_init(struct qkdd_opts *live, int argc, char **argv)
{
	reload_live = live;
	reload_argc = argc;
	reload_argv = argv;
}

void qkdd_reload_apply(void)
{
	struct qkdd_opts n;
	char err[300], changed[400];

	qkdd_reload = 0;
	if (!reload_live)
		return;
	qkdd_notify("RELOADING=1");
	qkdd_opts_default(&n);
	if (qkdd_args_parse(&n, reload_argc, reload_argv, true, err,
			    sizeof(err)) ||
	    qkdd_opts_check(&n, err, sizeof(err))) {
		qerr("SIGHUP: the configuration is not reloaded, the running one is kept: %s",
		     err);
		qkdd_notify("READY=1");
		return;
	}
	if (qkdd_reload_diff(reload_live, &n, changed, sizeof(changed)))
		qwarn("SIGHUP: changed, but only a restart applies it: %s",
		      changed);
	qkdd_log_verbose(reload_live->verbose);
	qnotice("SIGHUP: configuration reloaded (verbose %s, timeout %u s, retry-max %u s, backoff %u..%u s)",
		reload_live->verbose ? "on" : "off", reload_live->timeout_s,
		reload_live->retry_max_s, reload_live->backoff_base_s,
		reload_live->backoff_max_s);
	qkdd_notify("READY=1");
}
