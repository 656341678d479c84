// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memory for a round's secret arrays (see qkd/secmem.h).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "qkd/secmem.h"

/*
 * Freed large blocks, wiped, kept for the next round's arrays of the same
 * mapped length (block_len()). Every round used to map its arrays afresh, and the kernel
 * zeroed each new huge page on its first fault: that clearing was a
 * quarter of the daemons' busy CPU at 2^23-bit blocks (perf:
 * clear_page_erms under do_huge_pmd_anonymous_page). A kept block is
 * already zero -- wiped by the free that put it here -- so it is handed
 * out again as it is.
 *
 * Bounded in blocks and bytes; the oldest go first. The fiber thread and
 * the session both allocate: a mutex.
 */
#define CACHE_SLOTS	16

struct cached_block {
	uint8_t *p;
	size_t len;		/* mapped: block_len() of its size */
	uint64_t age;		/* when it was freed: the oldest go first */
};

static struct {
	pthread_mutex_t lock;
	struct cached_block b[CACHE_SLOTS];
	size_t n, bytes, limit;
	uint64_t clock;
} cache = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.limit = QKD_SECMEM_CACHE_BYTES,
};

/*
 * The mapped length of a block of @size bytes: whole huge pages, in steps
 * of a sixteenth of the size or more. A round's arrays vary a little in
 * size from round to round (the detections counted); the steps put them
 * into the same length, so the block the last round freed fits the next
 * one. The untouched rest of the last step is never faulted in.
 */
static size_t block_len(size_t size)
{
	size_t step = QKD_SECMEM_HUGE;

	while (step < size / 16)
		step <<= 1;
	return (size + step - 1) & ~(step - 1);
}

static void cache_drop(size_t i)
{
	cache.bytes -= cache.b[i].len;
	cache.b[i] = cache.b[--cache.n];
}

/* A kept block of exactly @len mapped bytes, or NULL. */
static uint8_t *cache_take(size_t len)
{
	uint8_t *p = NULL;

	pthread_mutex_lock(&cache.lock);
	for (size_t i = 0; i < cache.n; i++)
		if (cache.b[i].len == len) {
			p = cache.b[i].p;
			cache_drop(i);
			break;
		}
	pthread_mutex_unlock(&cache.lock);
	return p;
}

/* Keep the wiped block @p of @len mapped bytes, or unmap it. */
static void cache_put(uint8_t *p, size_t len)
{
	struct cached_block old[CACHE_SLOTS];
	size_t nold = 0;

	/*
	 * Wiped, so its pages are zero: the kernel may take them back under
	 * memory pressure instead of swapping zeros, and a page it took reads
	 * as zero again. Until then a reuse finds them in place. Before the
	 * block is in the cache: once there, another thread may take it and
	 * write to it, and a MADV_FREE after that could drop its writes.
	 */
	(void)madvise(p, len, MADV_FREE);
	pthread_mutex_lock(&cache.lock);
	/* one larger than the bound is not kept, and makes no room */
	if (len <= cache.limit) {
		while (cache.n && (cache.n == CACHE_SLOTS ||
				   cache.bytes + len > cache.limit)) {
			size_t o = 0;

			for (size_t i = 1; i < cache.n; i++)
				if (cache.b[i].age < cache.b[o].age)
					o = i;
			old[nold++] = cache.b[o];
			cache_drop(o);
		}
		cache.b[cache.n++] = (struct cached_block){
			.p = p, .len = len, .age = ++cache.clock,
		};
		cache.bytes += len;
		p = NULL;
	}
	pthread_mutex_unlock(&cache.lock);
	for (size_t i = 0; i < nold; i++)
		munmap(old[i].p, old[i].len);
	if (p)
		munmap(p, len);
}

void qkd_secmem_set_cache_bytes(size_t bytes)
{
	pthread_mutex_lock(&cache.lock);
	cache.limit = bytes;
	pthread_mutex_unlock(&cache.lock);
	qkd_secmem_trim();
}

void qkd_secmem_trim(void)
{
	pthread_mutex_lock(&cache.lock);
	while (cache.n) {
		munmap(cache.b[cache.n - 1].p, cache.b[cache.n - 1].len);
		cache_drop(cache.n - 1);
	}
	pthread_mutex_unlock(&cache.lock);
}

void *qkd_secmem_alloc(size_t size)
{
	size_t len, head;
	uint8_t *m;

	if (size < QKD_SECMEM_HUGE)
		return calloc(size ? size : 1, 1);
	if (size > SIZE_MAX / 4)	/* block_len() and the alignment room */
		return NULL;
	len = block_len(size);
	m = cache_take(len);
	if (m)
		return m;
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
	/*
	 * Only the @size bytes the caller had can hold anything: the rest of
	 * the block was zero when it was handed out.
	 */
	explicit_bzero(p, size ? size : 1);
	if (size < QKD_SECMEM_HUGE)
		free(p);
	else
		cache_put(p, block_len(size));
}
