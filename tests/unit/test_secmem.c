// SPDX-License-Identifier: GPL-2.0-only
/*
 * Memory for a round's secret arrays (userspace/protocol/secmem.c): zeroed
 * when allocated; large blocks on 2 MiB boundaries, marked for huge pages
 * (what keeps a round from faulting its arrays in 4 KiB at a time) and left
 * out of core dumps (they hold Alice's choices and Bob's raw key); a freed
 * block is wiped, kept for a later block of about its size within a bound,
 * and gone from the address space once the kept blocks are trimmed.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kselftest_harness.h"

#include <qkd/channel.h>
#include <qkd/secmem.h>

/*
 * The VmFlags of the mapping that holds @addr (/proc/self/smaps) into
 * @flags; 0, or -1 when no mapping holds it.
 */
static int vm_flags(const void *addr, char *flags, size_t len)
{
	uintptr_t a = (uintptr_t)addr, lo, hi;
	char line[512];
	bool in = false;
	int ret = -1;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		/* a mapping's first line: "lo-hi perms offset ..." */
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			in = a >= lo && a < hi;
			continue;
		}
		if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, len, "%s", line + 8);
			ret = 0;
			break;
		}
	}
	fclose(f);
	return ret;
}

static bool has_flag(const char *flags, const char *fl)
{
	char pat[8];

	snprintf(pat, sizeof(pat), " %s", fl);
	return strstr(flags, pat) != NULL;
}

static bool mapped(const void *p)
{
	unsigned char v;
	long pg = sysconf(_SC_PAGESIZE);

	return mincore((void *)((uintptr_t)p & ~(uintptr_t)(pg - 1)),
		       (size_t)pg, &v) == 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

TEST(small_blocks_are_zeroed_and_usable)
{
	static const size_t sizes[] = { 0, 1, 100, QKD_SECMEM_HUGE - 1 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *p = qkd_secmem_alloc(sizes[i]);

		ASSERT_NE(NULL, p);
		EXPECT_TRUE(all_zero(p, sizes[i]));
		memset(p, 0xa5, sizes[i]);
		qkd_secmem_free(p, sizes[i]);
	}
	qkd_secmem_free(NULL, 123);	/* allowed, does nothing */
}

/*
 * A block of a round's size: zeroed, 2 MiB-aligned, huge pages asked for,
 * not in a core dump, and unmapped by the free and the trim -- up to the
 * end of its last huge page, so the kept length covers the whole mapping.
 */
TEST(large_blocks_are_aligned_hinted_undumped_and_unmapped_when_freed)
{
	static const size_t sizes[] = { QKD_SECMEM_HUGE,
					3 * QKD_SECMEM_HUGE + 4097 };
	bool thp = access("/sys/kernel/mm/transparent_hugepage/enabled",
			  F_OK) == 0;
	char fl[256];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint8_t *p = qkd_secmem_alloc(n);

		ASSERT_NE(NULL, p);
		EXPECT_EQ(0, (uintptr_t)p & (QKD_SECMEM_HUGE - 1));
		EXPECT_TRUE(all_zero(p, n));
		memset(p, 0x5a, n);
		ASSERT_EQ(0, vm_flags(p, fl, sizeof(fl)));
		EXPECT_TRUE(has_flag(fl, "dd")) TH_LOG("VmFlags:%s", fl);
		if (thp) {
			EXPECT_TRUE(has_flag(fl, "hg")) TH_LOG("VmFlags:%s", fl);
		} else {
			TH_LOG("no transparent huge pages here: hint not checked");
		}
		ASSERT_EQ(0, vm_flags(p + n - 1, fl, sizeof(fl)));
		EXPECT_TRUE(has_flag(fl, "dd"));
		qkd_secmem_free(p, n);
		qkd_secmem_trim();
		EXPECT_FALSE(mapped(p));
		EXPECT_FALSE(mapped(p + n - 1));
		/* nor the rest of its last huge page */
		EXPECT_FALSE(mapped(p + ((n + QKD_SECMEM_HUGE - 1) &
					 ~(QKD_SECMEM_HUGE - 1)) - 1));
	}
}

static const size_t MiB = 1 << 20;

/*
 * A freed block comes back to the next request of about its size (the
 * next round's count of detections is a little different), as zero as a
 * fresh one: the free wiped what the last user wrote.
 */
TEST(a_freed_block_is_wiped_and_given_to_the_next_request_of_its_size)
{
	size_t n = 100 * MiB + 123, m = 97 * MiB;
	uint8_t *p = qkd_secmem_alloc(n), *q;

	ASSERT_NE(NULL, p);
	memset(p, 0x5a, n);
	qkd_secmem_free(p, n);
	q = qkd_secmem_alloc(m);
	ASSERT_EQ(p, q);
	EXPECT_TRUE(all_zero(q, m));
	qkd_secmem_free(q, m);
	qkd_secmem_trim();
	EXPECT_FALSE(mapped(p));
	EXPECT_FALSE(mapped(p + n - 1));
}

/*
 * A kept block far larger than a request stays for its own size: a round's
 * small array does not take the block its large one needs.
 */
TEST(a_kept_block_is_not_given_to_a_far_smaller_request)
{
	uint8_t *big = qkd_secmem_alloc(32 * MiB), *p;

	ASSERT_NE(NULL, big);
	qkd_secmem_free(big, 32 * MiB);
	p = qkd_secmem_alloc(4 * MiB);
	ASSERT_NE(NULL, p);
	EXPECT_TRUE(p + 4 * MiB <= big || p >= big + 32 * MiB);
	qkd_secmem_free(p, 4 * MiB);
	p = qkd_secmem_alloc(32 * MiB);
	EXPECT_EQ(big, p);
	qkd_secmem_free(p, 32 * MiB);
	qkd_secmem_trim();
	EXPECT_FALSE(mapped(big));
	EXPECT_FALSE(mapped(big + 32 * MiB - 1));
}

/* What is kept is bounded in bytes and in blocks: the oldest go first. */
TEST(kept_blocks_are_bounded_and_the_oldest_go_first)
{
	uint8_t *p[17];

	qkd_secmem_set_cache_bytes(8 * MiB);
	for (int i = 0; i < 3; i++)
		ASSERT_NE(NULL, p[i] = qkd_secmem_alloc(4 * MiB));
	for (int i = 0; i < 3; i++)
		qkd_secmem_free(p[i], 4 * MiB);
	EXPECT_FALSE(mapped(p[0]));
	EXPECT_TRUE(mapped(p[1]));
	EXPECT_TRUE(mapped(p[2]));
	/* larger than the bound: not kept at all, nor making room */
	ASSERT_NE(NULL, p[0] = qkd_secmem_alloc(10 * MiB));
	qkd_secmem_free(p[0], 10 * MiB);
	EXPECT_FALSE(mapped(p[0]));
	EXPECT_TRUE(mapped(p[1]));
	EXPECT_TRUE(mapped(p[2]));

	qkd_secmem_set_cache_bytes(QKD_SECMEM_CACHE_BYTES);
	EXPECT_FALSE(mapped(p[1]));	/* setting the bound trims */
	for (int i = 0; i < 17; i++)
		ASSERT_NE(NULL, p[i] = qkd_secmem_alloc(2 * MiB));
	for (int i = 0; i < 17; i++)
		qkd_secmem_free(p[i], 2 * MiB);
	EXPECT_FALSE(mapped(p[0]));
	for (int i = 1; i < 17; i++)
		EXPECT_TRUE(mapped(p[i]));
	qkd_secmem_trim();
	for (int i = 1; i < 17; i++)
		EXPECT_FALSE(mapped(p[i]));
}

/* Detection arrays grow through it and keep what they hold. */
TEST(detections_grow_across_the_huge_threshold_and_keep_their_events)
{
	struct qkd_detections d = { 0 };
	size_t big = QKD_SECMEM_HUGE / sizeof(struct qkd_detection) + 10;

	ASSERT_EQ(0, qkd_detections_reserve(&d, 1000));
	for (size_t i = 0; i < 1000; i++)
		d.ev[d.count++] = (struct qkd_detection){ .pulse = 3 * i,
							  .clicks = 1 };
	ASSERT_EQ(0, qkd_detections_reserve(&d, big));
	EXPECT_EQ(big, d.cap);
	EXPECT_EQ(1000, d.count);
	for (size_t i = 0; i < 1000; i++)
		ASSERT_EQ(3 * i, d.ev[i].pulse);
	EXPECT_EQ(0, d.ev[big - 1].pulse);	/* the new room is zeroed */
	ASSERT_EQ(0, qkd_detections_reserve(&d, 10));	/* never shrinks */
	EXPECT_EQ(big, d.cap);
	qkd_detections_free(&d);
	EXPECT_EQ(NULL, d.ev);
	EXPECT_EQ(0, d.cap);
}

TEST_HARNESS_MAIN
