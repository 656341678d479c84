/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Forced into every unit test (-include, see the Makefile): LeakSanitizer
 * in the kselftest harness's children.
 *
 * The harness runs each test in a forked child (and a TEST_F body in a
 * grandchild) that leaves with _exit(), which skips the atexit() hook where
 * LSan looks for leaks: without this, a test that leaks passes. Every _exit()
 * of the test's translation unit -- the harness's, inlined from
 * kselftest_harness.h, and the test's own -- first runs a leak check and, if
 * anything leaked, exits with KSFT_FAIL (1) instead, so the test is reported
 * "not ok" with LSan's report in its output. A macro, not a link-time wrap,
 * so that it works with any harness version that calls _exit() and touches
 * nothing outside the test binary's own code.
 */
#ifndef QKD_LSAN_EXIT_H
#define QKD_LSAN_EXIT_H

#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_LEAK__)
#include <sanitizer/lsan_interface.h>

static inline __attribute__((noreturn, unused)) void qkd_lsan_exit(int code)
{
	if (__lsan_do_recoverable_leak_check()) {
		static const char msg[] =
			"# LeakSanitizer: this test leaked memory (see above): failed\n";
		ssize_t w = write(2, msg, sizeof(msg) - 1);

		(void)w;
		code = 1;	/* KSFT_FAIL, whatever the test said */
	}
	_exit(code);
}

#define _exit(code) qkd_lsan_exit(code)
#endif

#endif /* QKD_LSAN_EXIT_H */
