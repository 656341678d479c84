// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl monitor: print the notifications of the "events" multicast group,
 * one line each, until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "qkdctl.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * The time an event was received, ISO 8601 in UTC with microseconds
 * ("2026-12-06T15:55:29.123456Z"): sortable, and the same on every host.
 */
static void timestamp(char *out, size_t len)
{
	struct timeval tv;
	struct tm tm;
	char s[32];

	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%06ldZ", s, (long)tv.tv_usec);
}

static void print_event(const struct qkd_event *e)
{
	char sid[QKD_UUID_STR_LEN] = "", ts[48] = "";

	if (QKD_HAVE(e, QKD_EV_STREAM_ID))
		qkd_uuid_format(e->stream_id, sid);
	if (opts.timestamp)
		timestamp(ts, sizeof(ts));
	if (opts.out == OUT_JSON) {
		json_open('{');
		if (opts.timestamp)
			json_str("time", ts);
		json_str("event", qkd_event_name(e->cmd));
		if (QKD_HAVE(e, QKD_EV_LINK_ID))
			json_u64("link_id", e->link_id);
		if (QKD_HAVE(e, QKD_EV_LINK_NAME))
			json_str("link", e->link_name);
		if (QKD_HAVE(e, QKD_EV_LINK_STATE))
			json_str("state", qkd_state_name(e->state));
		if (QKD_HAVE(e, QKD_EV_STREAM_ID))
			json_str("stream", sid);
		if (QKD_HAVE(e, QKD_EV_FIRST_INDEX))
			json_u64("first_index", e->first_index);
		if (QKD_HAVE(e, QKD_EV_COUNT))
			json_u64("count", e->count);
		if (QKD_HAVE(e, QKD_EV_STORED_KEYS))
			json_u64("stored_keys", e->stored_keys);
		if (QKD_HAVE(e, QKD_EV_LOW_WATER))
			json_u64("low_water", e->low_water);
		json_close('}');
		json_end();
		return;
	}
	/* Human and tab modes: "[TIME] EVENT key value ..." on one line. */
	if (opts.timestamp)
		printf("[%s] ", ts);
	printf("%s", qkd_event_name(e->cmd));
	if (QKD_HAVE(e, QKD_EV_STREAM_ID))
		printf(" stream %s", sid);
	if (QKD_HAVE(e, QKD_EV_LINK_ID))
		printf(" link %u", e->link_id);
	if (QKD_HAVE(e, QKD_EV_LINK_NAME))
		printf(" name %s", e->link_name);
	if (QKD_HAVE(e, QKD_EV_LINK_STATE))
		printf(" state %s", qkd_state_name(e->state));
	if (QKD_HAVE(e, QKD_EV_FIRST_INDEX))
		printf(" first-index %llu",
		       (unsigned long long)e->first_index);
	if (QKD_HAVE(e, QKD_EV_COUNT))
		printf(" count %u", e->count);
	if (QKD_HAVE(e, QKD_EV_STORED_KEYS))
		printf(" stored %u", e->stored_keys);
	if (QKD_HAVE(e, QKD_EV_LOW_WATER))
		printf(" low-water %u", e->low_water);
	putchar('\n');
}

static int event_cb(uint8_t cmd, struct nlattr **tb, void *arg)
{
	struct qkd_event e;

	(void)arg;
	if (qkd_event_parse(cmd, tb, &e))
		return 0;	/* malformed: skip it, keep listening */
	print_event(&e);
	fflush(stdout);
	return 0;
}

int do_monitor(int argc, char **argv)
{
	struct sigaction sa;
	struct qkd_nl *nl;
	struct pollfd pfd;
	int err, r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") || !strcmp(argv[i], "--timestamp") ||
		    !strcmp(argv[i], "timestamp"))
			opts.timestamp = true;
		else
			usage_error("monitor: unexpected argument \"%s\"", argv[i]);
	}
	nl = ctl_nl();
	err = qkd_nl_join_events(nl);
	if (err)
		return kernel_error("monitor: join events group", err);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;	/* no SA_RESTART: poll() returns */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pfd.fd = qkd_nl_fd(nl);
	pfd.events = POLLIN;
	while (!stop) {
		r = poll(&pfd, 1, -1);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return fail_msg("monitor: poll: %s", strerror(errno));
		}
		if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL)) {
			if (!(pfd.revents & POLLIN))
				return fail_msg("monitor: socket error");
		}
		err = qkd_nl_recv_events(nl, event_cb, NULL);
		/*
		 * libnl reports a receive-buffer overrun (ENOBUFS) as
		 * ENOMEM: events were lost, but the socket still works.
		 */
		if (err == -ENOMEM || err == -ENOBUFS) {
			fprintf(stderr, "qkdctl: monitor: events lost (receive buffer overrun)\n");
			continue;
		}
		if (err == -EINTR || err == -EAGAIN)
			continue;
		if (err)
			return kernel_error("monitor", err);
	}
	return 0;
}
