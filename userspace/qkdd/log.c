// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd log lines on stderr, one per event, with the role and the round so
 * that an operator can tell what happened where:
 *
 *   qkdd[alice] round 7: aborted: QBER 25.17% (...) above the abort ...
 *
 * When stderr is the journal (JOURNAL_STREAM names its device and inode,
 * as systemd sets it for a service's stderr) each line starts with its
 * syslog priority, sd-daemon(3) style ("<4>" = SD_WARNING), so that
 * `journalctl -p warning` shows an aborted round and an authentication
 * failure but not a normal round (qkdd(8), "Logs").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkdd.h"

volatile sig_atomic_t qkdd_stop;
volatile sig_atomic_t qkdd_term;
volatile sig_atomic_t qkdd_reload;
bool qkdd_in_round;
const char *qkdd_fault;
uint32_t qkdd_push_batch_keys;

static enum qkdd_role log_role;
static bool log_verbose;
static bool log_prio;
static uint64_t log_round;

const char *qkdd_role_name(enum qkdd_role r)
{
	return r == QKDD_ALICE ? "alice" : r == QKDD_BOB ? "bob" : "?";
}

/* Is stderr the stream JOURNAL_STREAM ("DEV:INO") names? */
static bool stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int n = 0;

	if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n])
		return false;
	return !fstat(STDERR_FILENO, &st) &&
	       (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void qkdd_log_init(enum qkdd_role role, bool verbose)
{
	log_role = role;
	log_verbose = verbose;
	log_prio = stderr_is_journal();
}

void qkdd_log_verbose(bool verbose)
{
	log_verbose = verbose;
}

void qkdd_log_round(uint64_t round)
{
	log_round = round;
}

static void vlog(int prio, const char *fmt, va_list ap)
{
	char buf[1024], pfx[8] = "";

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_prio)
		snprintf(pfx, sizeof(pfx), "<%d>", prio);
	if (log_round)
		fprintf(stderr, "%sqkdd[%s] round %llu: %s\n", pfx,
			qkdd_role_name(log_role),
			(unsigned long long)log_round, buf);
	else
		fprintf(stderr, "%sqkdd[%s]: %s\n", pfx,
			qkdd_role_name(log_role), buf);
	fflush(stderr);
}

#define LOG_FN(name, prio)				\
void name(const char *fmt, ...)				\
{							\
	va_list ap;					\
							\
	va_start(ap, fmt);				\
	vlog(prio, fmt, ap);				\
	va_end(ap);					\
}

LOG_FN(qlog, QKDD_LOG_INFO)
LOG_FN(qnotice, QKDD_LOG_NOTICE)
LOG_FN(qwarn, QKDD_LOG_WARNING)
LOG_FN(qerr, QKDD_LOG_ERR)

void qalarm(const char *fmt, ...)
{
	char buf[1000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	qerr("ALARM: %s", buf);
}

void qdebug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog(QKDD_LOG_DEBUG, fmt, ap);
	va_end(ap);
}
