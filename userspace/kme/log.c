// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkd-kme's log: one line a message on stderr (the journal under systemd).
 * Callers pass SAE IDs, URLs, key_IDs and counts, never key bytes. A
 * client's URL may carry control characters (%0a): they are logged as '?',
 * so that no client writes a line of its own into the log.
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
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, "qkd-kme: %s\n", buf);
}
