// SPDX-License-Identifier: GPL-2.0-only
/*
 * Per-stage CPU accounting: the session thread's CPU time
 * (CLOCK_THREAD_CPUTIME_ID, user and system) charged to the stage it is
 * in. stage_switch() reads the clock once, charges the time since the
 * last switch to the stage that was current and makes another current:
 * one clock read per stage boundary, a few per Cascade round trip (the
 * only place with thousands of them a round), about a microsecond each.
 * The fiber thread's time (Alice's simulated quantum stage) is measured
 * by that thread and added with stage_add().
 *
 * The accumulators are the calling thread's: the session thread's in
 * qkdd (each end's in the unit tests, which run both in one process).
 */
#include <time.h>

#include "qkdd.h"

const char *const qkdd_stage_name[QS_N] = {
	[QS_OTHER] = "other",
	[QS_QUANTUM] = "quantum",
	[QS_SIFT] = "sift",
	[QS_EST] = "estimate",
	[QS_EC] = "ec",
	[QS_VERIFY] = "verify",
	[QS_PA] = "pa",
	[QS_AUTH] = "auth",
	[QS_IO] = "io",
	[QS_PUSH] = "push",
};

/* per thread: the unit tests run both ends in one process */
static _Thread_local enum qkdd_stage cur = QS_OTHER;
static _Thread_local double last = -1;
static _Thread_local double acc[QS_N];

double qkdd_thread_cpu(void)
{
	struct timespec t;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t))
		return 0;
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void charge(void)
{
	double t = qkdd_thread_cpu();

	if (last >= 0)
		acc[cur] += t - last;
	last = t;
}

enum qkdd_stage stage_switch(enum qkdd_stage s)
{
	enum qkdd_stage prev = cur;

	if (s == cur)
		return prev;
	charge();
	cur = s;
	return prev;
}

void stage_add(enum qkdd_stage s, double seconds)
{
	if (s < QS_N && seconds > 0)
		acc[s] += seconds;
}

void stage_read(double out[QS_N])
{
	charge();
	for (int i = 0; i < QS_N; i++)
		out[i] = acc[i];
}
