// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memory for a round's secret arrays (see qkd/secmem.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qkd/secmem.h"

static size_t huge_round(size_t size)
{
	return (size + QKD_SECMEM_HUGE - 1) & ~(QKD_SECMEM_HUGE - 1);
}

void *qkd_secmem_alloc(size_t size)
{
	size_t len, head;
	uint8_t *m;

	if (size < QKD_SECMEM_HUGE)
		return calloc(size ? size : 1, 1);
	if (size > SIZE_MAX - 2 * QKD_SECMEM_HUGE)
		return NULL;
	len = huge_round(size);
	/*
	 * One huge page more than needed, then the unaligned ends unmapped:
	 * kernels before 6.7 do not align large anonymous mappings, and a
	 * huge page needs a 2 MiB-aligned range.
	 */
	m = mmap(NULL, len + QKD_SECMEM_HUGE, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	head = (QKD_SECMEM_HUGE - ((uintptr_t)m & (QKD_SECMEM_HUGE - 1))) &
	       (QKD_SECMEM_HUGE - 1);
	if (head)
		munmap(m, head);
	munmap(m + head + len, QKD_SECMEM_HUGE - head);
	m += head;
	/*
	 * Both are hints: a kernel without transparent huge pages says
	 * EINVAL and the block works with 4 KiB pages; one without
	 * MADV_DONTDUMP (before 3.4) is not one this runs on.
	 */
	(void)madvise(m, len, MADV_HUGEPAGE);
	(void)madvise(m, len, MADV_DONTDUMP);
	return m;
}

void qkd_secmem_free(void *p, size_t size)
{
	if (!p)
		return;
	explicit_bzero(p, size ? size : 1);
	if (size < QKD_SECMEM_HUGE)
		free(p);
	else
		munmap(p, huge_round(size));
}
