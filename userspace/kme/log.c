// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd-kme's log: one line a message on stderr (the journal under systemd).
 * Callers pass SAE IDs, URLs, key_IDs and counts, never key bytes.
 */
#include <stdarg.h>
#include <stdio.h>

#include "kme.h"

void kme_log(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "qkd-kme: %s\n", buf);
}
