// SPDX-License-Identifier: GPL-2.0-only
/*
 * Not a test of qkd: the proof that a leaking unit test fails. Built like
 * the unit tests (ASan, tests/lib/lsan_exit.h forced in) by
 * tests/lib/selftest.sh, which checks that "no_leak" passes and both
 * leaking tests -- a TEST (the harness's child) and a TEST_F (its
 * grandchild) -- fail. Never part of the unit-test suite.
 */
#include <stdlib.h>
#include <string.h>

#include "kselftest_harness.h"

static void *volatile sink;

/* Allocates and forgets: nothing keeps the address once this returns. */
static __attribute__((noinline)) void leak(size_t n)
{
	sink = malloc(n);
	memset(sink, 0x5a, n);
	sink = NULL;
}

TEST(no_leak)
{
	void *p = malloc(64);

	ASSERT_NE(NULL, p);
	free(p);
}

TEST(leaks)
{
	leak(4096);
}

FIXTURE(f) {
	int unused;
};

FIXTURE_SETUP(f)
{
}

FIXTURE_TEARDOWN(f)
{
}

TEST_F(f, leaks_in_test_f)
{
	leak(4096);
}

TEST_HARNESS_MAIN
