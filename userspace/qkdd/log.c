// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd log lines on stderr, one per event, with the role and the round so
 * that an operator can tell what happened where:
 *
 *   qkdd[alice] round 7: aborted: QBER 25.17% (...) above the abort ...
 */
#include <stdarg.h>
#include <stdio.h>

#include "qkdd.h"

volatile sig_atomic_t qkdd_stop;
const char *qkdd_fault;
uint32_t qkdd_push_batch_keys;

static enum qkdd_role log_role;
static bool log_verbose;
static uint64_t log_round;

const char *qkdd_role_name(enum qkdd_role r)
{
	return r == QKDD_ALICE ? "alice" : r == QKDD_BOB ? "bob" : "?";
}

void qkdd_log_init(enum qkdd_role role, bool verbose)
{
	log_role = role;
	log_verbose = verbose;
}

void qkdd_log_round(uint64_t round)
{
	log_round = round;
}

static void vlog(const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_round)
		fprintf(stderr, "qkdd[%s] round %llu: %s\n",
			qkdd_role_name(log_role),
			(unsigned long long)log_round, buf);
	else
		fprintf(stderr, "qkdd[%s]: %s\n", qkdd_role_name(log_role),
			buf);
	fflush(stderr);
}

void qlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}

void qalarm(const char *fmt, ...)
{
	char buf[1000];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	qlog("ALARM: %s", buf);
}

void qdebug(const char *fmt, ...)
{
	va_list ap;

	if (!log_verbose)
		return;
	va_start(ap, fmt);
	vlog(fmt, ap);
	va_end(ap);
}
