/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Memory for a round's secret arrays (detection records, Bob's raw
 * clicks): zeroed when allocated, wiped when freed.
 *
 * Why not malloc(): a round's arrays are tens of MiB, which glibc maps
 * and unmaps again every round, so each round faults every 4 KiB page in
 * anew -- at 2^21-bit blocks that was most of the simulated link's CPU
 * and 40 % system time (bench_throughput). Arrays of QKD_SECMEM_HUGE
 * bytes and more are mapped here on 2 MiB boundaries with
 * MADV_HUGEPAGE, so a fault brings in 2 MiB, and MADV_DONTDUMP, so a core
 * dump does not carry them. Smaller ones come from calloc().
 *
 * A freed large block is wiped and then kept (up to 16 blocks and
 * QKD_SECMEM_CACHE_BYTES, the oldest given back first) for the next
 * round's array of its mapped length -- whole huge pages, in steps of a
 * sixteenth of the size, so that arrays a little apart in size share it:
 * the reuse spares the fault and the kernel's clearing of fresh pages.
 * qkd_secmem_trim() gives the kept blocks back (a daemon between
 * connections, and at exit).
 *
 * Which of the two a block came from follows from its size alone: free
 * it with the size it was allocated with, and never pass memory from
 * malloc() here (or the reverse). AddressSanitizer does not watch the
 * mapped blocks: an overrun into a large block's last huge page goes
 * unseen; the unit tests' small rounds (arrays below QKD_SECMEM_HUGE)
 * are where ASan checks these arrays' bounds.
 */
#ifndef QKD_SECMEM_H
#define QKD_SECMEM_H

#include <stddef.h>

#define QKD_SECMEM_HUGE		((size_t)2 << 20)
#define QKD_SECMEM_CACHE_BYTES	((size_t)1 << 30)

/* @size bytes, zeroed; NULL when out of memory (or @size is 0: 1 byte) */
void *qkd_secmem_alloc(size_t size);
/* Wipe the @size bytes at @p and free them; NULL is allowed. */
void qkd_secmem_free(void *p, size_t size);
/* Unmap the wiped blocks kept for reuse. */
void qkd_secmem_trim(void);
/* At most @bytes kept from now on (0: none); the kept blocks unmapped. */
void qkd_secmem_set_cache_bytes(size_t bytes);

#endif
