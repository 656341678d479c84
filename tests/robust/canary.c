// SPDX-License-Identifier: GPL-2.0-only
/*
 * canary: key-wipe check. Pushes keys with known random patterns through
 * the whole life of a key, and later counts the patterns in a dump of the
 * guest's memory: every copy the kernel made must have been zeroed.
 *
 *   canary run -s SEED [-k KEYS] [-P]     (in the VM, as root, qkd.ko loaded)
 *   canary control -s SEED               (in the VM: the positive control)
 *   canary count -s SEED [-k KEYS] [-P] [-C] [-v] DUMP   (on the host)
 *
 * run: the patterns are generated from SEED (which is not secret and never a
 * key) directly into this program's buffers and pushed over genl from there
 * (no file, no pipe, no qkdctl: the only copies are the kernel's); every
 * buffer is wiped after use, and at the end the stack and the vector
 * registers too, with the copy of them the kernel saved (see
 * wipe_vector_registers()). Per phase, KEYS keys of 32 bytes:
 *   unload     in a stream of the initial netns, left for rmmod to delete
 *   delivered  taken with GET_KEY and GET_KEY_BY_ID (into a wiped buffer)
 *   flushed    KEY_FLUSH of the stream after those deliveries
 *   stream-del in a stream deleted while holding them
 *   netns-exit in a stream left in a netns that dies when this program exits
 *   rejected   pushes the module refuses (index already used, bad length):
 *              it must wipe them from the request before the error ACK
 *   sa         taken by an ESP SA binding (SA_NEW, 8 SA_REKEYs, SA_DEL):
 *              XFRM's copy of each SA key, its notifications and the
 *              ciphers' key schedules
 *   batch      taken with GET_KEYS, a few keys per call
 *   link-del   in a stream of a link deleted while holding them
 *   one-way    taken by an outbound-only binding (SA_DIR out), which
 *              takes and drops the inbound key of each generation
 *   alg        set as the key of AF_ALG sockets (ALG_SETKEY; cbc(aes) and
 *              hmac(sha256)), the sockets then closed
 *   logon      put into a keyring as "logon" keys (LOGON_KEY), then
 *              invalidated (the key GC frees them)
 *   key-type   instantiated as keys of the "qkd" type (add_key with
 *              fd=), then invalidated
 *   policy     (-P) a push the netlink policy rejects (an attribute KEY_ADD
 *              does not take), sent with NETLINK_CAP_ACK as libqkd does:
 *              the genl core refuses it before the module sees it and
 *              frees it unwiped (Documentation/abi.md), so this phase is
 *              counted and shown, not a failure
 * The caller then unloads the module and dumps guest memory (QMP
 * dump-guest-memory, see canary.sh).
 *
 * Order. A missing wipe shows only if the freed copy is still there at
 * the dump. The store keeps each key in a 32-byte kmalloc object
 * (kmalloc-cg-32: kmemdup with GFP_KERNEL_ACCOUNT). SLUB hands out the
 * most recently freed objects of a cache first, and the next push's
 * kmemdup() fills each one it gets with a new key (zeroed before, with
 * init_on_alloc as on Debian), which is then wiped correctly: a push after
 * a phase's frees erases that phase's evidence. Run phase after phase,
 * push-use-push-use, the canary was blind to every phase followed by
 * another's push: the mutant chardev-delivered-key-not-wiped (GET_KEY
 * freeing with kfree()) survived with 0 delivered patterns found. So run()
 * goes in three steps:
 *   1. every allocation: every link and stream of every phase created,
 *      every key of every phase pushed, the keyring made. The streams are
 *      filled in turn, FILL_CHUNK keys each: a slab of 32-byte objects
 *      holds 128 keys, and with each phase pushed in one run a phase's
 *      free emptied whole slabs, which SLUB gives back to the page
 *      allocator (beyond min_partial) to be reused and zeroed before the
 *      dump (store-flush-no-wipe on 6.12: netns-exit 0 of 256 keys found,
 *      stream-del and link-del 128). Filled in turn, every slab holds
 *      keys of many phases, the unload phase's among them, and none
 *      empties before rmmod;
 *   2. the pushes that are themselves the action (rejected, policy): no
 *      key object is allocated for them, and they come before any free,
 *      so their large requests cannot land on freed evidence;
 *   3. the consuming actions, no push among them: first those that
 *      allocate on their way (sa, one-way: XFRM states and transforms;
 *      alg, logon, key-type), then those that only take and free keys
 *      (batch, delivered, flushed, stream-del, link-del); netns-exit and
 *      unload follow when the program exits and at rmmod, which free only.
 * What still allocates after a free (the kernel's own work, the guest
 * script's processes, the control file) takes the most recently freed
 * objects first: the rmmod and netns-exit keys, hundreds of them, lie on
 * top of the earlier phases' frees.
 *
 * control: writes CONTROL_KEYS patterns of their own (never pushed, never
 * wiped) to stdout; canary-guest.sh keeps them in a tmpfs file until the
 * dump, so that they must be found there: the proof, in every run, that
 * the dump holds guest memory and the count finds patterns in it.
 *
 * count: regenerates the same patterns and counts, in DUMP, every 16-byte
 * window of every key (two per key), per phase. Prints
 *   canary: N occurrences (...)
 * and exits 1 if N > 0 (the control apart); with -C, exits 3 if fewer than
 * all of the control patterns were found (the count would be blind). -v prints where (guest
 * physical address, from the ELF headers of the dump) and the bytes around.
 */
#include <elf.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <linux/if_alg.h>
#include <linux/keyctl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "nlraw.h"

#define KS 32
#define WIN 16
#define NWIN (KS / WIN)

enum phase { PH_UNLOAD, PH_DELIVERED, PH_FLUSHED, PH_STREAM_DEL, PH_NETNS_EXIT,
	     PH_REJECTED, PH_SA, PH_BATCH, PH_LINK_DEL, PH_ONEWAY, PH_ALG,
	     PH_LOGON, PH_KEYTYPE, PH_POLICY, PH_MAX };
static const char *const phase_name[PH_MAX] = {
	"unload", "delivered", "flushed", "stream-del", "netns-exit", "rejected",
	"sa", "batch", "link-del", "one-way", "alg", "logon", "key-type",
	"policy" };
#define SA_REKEYS 8
/* The positive control: phase number PH_MAX, CONTROL_KEYS keys. */
#define PH_CONTROL PH_MAX
#define CONTROL_KEYS 16

static uint64_t seed;
static uint32_t nkeys = 256;
static bool with_policy, verbose, with_control;

/* ------------------------------------------------------------ patterns */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Key @i of phase @ph. */
static void pattern(enum phase ph, uint32_t i, uint8_t out[KS])
{
	uint64_t x = seed ^ ((uint64_t)ph << 40) ^ ((uint64_t)i << 8), v;

	for (int w = 0; w < KS / 8; w++) {
		v = splitmix(&x);
		memcpy(out + 8 * w, &v, 8);
	}
	v = 0;
	x = 0;
	__asm__ __volatile__("" : : "r"(&v), "r"(&x) : "memory");
}

/*
 * Zero the vector registers, and the copy of them the kernel keeps.
 *
 * memcpy() leaves key bytes in the vector registers: glibc's AVX2 memcpy
 * of a batch loads its last four 32-byte keys into ymm5-8, and its
 * vzeroupper leaves their first halves in xmm5-8. The kernel saves the
 * registers into this task's FPU state (in its task_struct) at context
 * switches and kernel_fpu_begin(), and frees that memory as it is when the
 * task exits. Zeroing the registers does not reach that copy; only the next
 * save does, and there may be none before exit. So: fill every register,
 * block for a moment (the context switch saves the filler over the old
 * copy), then zero them. The filler is not zero: XSAVEOPT and XSAVES skip
 * a component in its initial (zero) state and would leave the old copy.
 */
#if defined(__x86_64__)
#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", \
	"xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", \
	"xmm15"
#define XMM_HI_CLOBBERS "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", \
	"xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", \
	"xmm29", "xmm30", "xmm31"

/* AVX-512: all 512 bits of zmm0-31 (glibc's memcpy uses zmm16-31 there). */
__attribute__((target("avx512f"), noinline))
static void fill_avx512_registers(void)
{
	__asm__ __volatile__(
		".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n\t"
		"vpternlogd $0xff, %%zmm\\n, %%zmm\\n, %%zmm\\n\n\t"
		".endr"
		::: XMM_CLOBBERS, XMM_HI_CLOBBERS, "memory");
}

/* vzeroall (below) clears zmm0-15 whole, but not zmm16-31. */
__attribute__((target("avx512f"), noinline))
static void zero_avx512_registers(void)
{
	__asm__ __volatile__(
		".irp n,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31\n\t"
		"vpxord %%zmm\\n, %%zmm\\n, %%zmm\\n\n\t"
		".endr"
		::: XMM_HI_CLOBBERS, "memory");
}
#endif

static void fill_vector_registers(void)
{
#if defined(__x86_64__)
	__asm__ __volatile__(
		".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		"pcmpeqd %%xmm\\n, %%xmm\\n\n\t"
		".endr"
		::: XMM_CLOBBERS, "memory");
	/* The upper halves: a compare that is always true sets every bit. */
	if (__builtin_cpu_supports("avx"))
		__asm__ __volatile__(
			".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
			"vcmpps $0x0f, %%ymm\\n, %%ymm\\n, %%ymm\\n\n\t"
			".endr"
			::: XMM_CLOBBERS, "memory");
	if (__builtin_cpu_supports("avx512f"))
		fill_avx512_registers();
#endif
}

static void zero_vector_registers(void)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx512f"))
		zero_avx512_registers();
	/* vzeroall clears all of ymm0-15 (zmm0-15), pxor the SSE-only case. */
	if (__builtin_cpu_supports("avx"))
		__asm__ __volatile__("vzeroall" ::: "memory");
	__asm__ __volatile__(
		".irp n,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15\n\t"
		"pxor %%xmm\\n, %%xmm\\n\n\t"
		".endr"
		::: XMM_CLOBBERS, "memory");
#endif
}

/*
 * Zero the stack below this frame, where deeper calls may have left
 * copies: the pages of an exiting process are freed as they are. (With
 * lazy binding, ld.so's resolver saved all vector registers there at the
 * first call of each libc function -- the first ioctl() after the flushed
 * push, with four flushed keys in xmm5-8: the 6.1 finding of
 * Documentation/robustness.md. The Makefile now links with -z now.)
 */
static __attribute__((noinline)) void wipe_stack(void)
{
	uint8_t below[64 * 1024];

	explicit_bzero(below, sizeof(below));
	__asm__ __volatile__("" : : "r"(below) : "memory");
}

static void wipe_vector_registers(void)
{
	const struct timespec ms = { .tv_nsec = 1000000 };

	fill_vector_registers();
	/* Blocks, so the scheduler switches away and saves the filler. */
	nanosleep(&ms, NULL);
	zero_vector_registers();
}

/* ------------------------------------------------------------ run */

static const uint8_t sid_base[QKD_STREAM_ID_LEN] = {
	0xca, 0x4a, 0x41, 0x00, 0x00, 0x00, 0x40, 0x00,
	0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };

static void sid_of(uint8_t sid[QKD_STREAM_ID_LEN], int n)
{
	memcpy(sid, sid_base, QKD_STREAM_ID_LEN);
	sid[15] = (uint8_t)n;
}

static uint8_t msg[QKD_KEY_BATCH_MAX_BYTES + 512];	/* attributes */
static uint8_t reqbuf[QKD_KEY_BATCH_MAX_BYTES + 1024];	/* the request */
static uint8_t data[QKD_KEY_BATCH_MAX_BYTES];

static void fail(const char *what, int e)
{
	printf("not ok - canary run: %s: %s\n", what, strerror(e < 0 ? -e : e));
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(reqbuf, sizeof(reqbuf));
	explicit_bzero(data, sizeof(data));
	wipe_vector_registers();
	exit(1);
}

static void link_id_cb(void *ctx, uint8_t cmd, const uint8_t *a, size_t len)
{
	(void)cmd;
	nlr_get_u32(a, len, QKD_A_LINK_ID, ctx);
}

static uint32_t setup_link(struct nlsock *s, const char *name)
{
	uint8_t ab[128];
	struct nlmsgb m;
	uint32_t id = 0;
	int e;

	mb_init(&m, ab, sizeof(ab));
	mb_str(&m, QKD_A_LINK_NAME, name);
	mb_u8(&m, QKD_A_LINK_ROLE, QKD_LINK_ROLE_RESPONDER);
	e = nls_req(s, QKD_CMD_LINK_NEW, 0, &m, link_id_cb, &id, NULL);
	if (e || !id)
		fail("LINK_NEW", e ? e : -EBADMSG);
	return id;
}

static void setup_stream(struct nlsock *s, uint32_t link, int n)
{
	uint8_t ab[128], sid[QKD_STREAM_ID_LEN];
	struct nlmsgb m;
	int e;

	sid_of(sid, n);
	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, sizeof(sid));
	mb_u32(&m, QKD_A_STREAM_LINK_ID, link);
	mb_u32(&m, QKD_A_STREAM_KEY_SIZE, KS);
	mb_u32(&m, QKD_A_STREAM_MAX_KEYS, 65536);
	e = nls_req(s, QKD_CMD_STREAM_NEW, 0, &m, NULL, NULL, NULL);
	if (e)
		fail("STREAM_NEW", e);
}

static void sid_cmd(struct nlsock *s, uint8_t cmd, int n, const char *what)
{
	uint8_t ab[64], sid[QKD_STREAM_ID_LEN];
	struct nlmsgb m;
	int e;

	sid_of(sid, n);
	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_STREAM_ID, sid, sizeof(sid));
	e = nls_req(s, cmd, 0, &m, NULL, NULL, NULL);
	if (e)
		fail(what, e);
}

/*
 * Bind an ESP SA pair to stream @n (AES-128-GCM: the first 20 bytes of a
 * key are the SA's key and salt), then re-key it SA_REKEYS times.
 */
static void sa_bind_dir(struct nlsock *s, int n, uint8_t dir)
{
	/* distinct pairs, so that bindings never overlap */
	const uint8_t local[4] = { 198, 51, 100, (uint8_t)(2 * n + 1) };
	const uint8_t remote[4] = { 198, 51, 100, (uint8_t)(2 * n + 2) };
	uint8_t ab[128], sid[QKD_STREAM_ID_LEN];
	struct nlmsgb m;
	int e;

	sid_of(sid, n);
	mb_init(&m, ab, sizeof(ab));
	mb_attr(&m, QKD_A_SA_STREAM_ID, sid, sizeof(sid));
	mb_attr(&m, QKD_A_SA_LOCAL_IPV4, local, sizeof(local));
	mb_attr(&m, QKD_A_SA_REMOTE_IPV4, remote, sizeof(remote));
	mb_u32(&m, QKD_A_SA_KEY_BITS, 128);
	mb_u64(&m, QKD_A_SA_FIRST_INDEX, 0);	/* the stream's keys start at 0 */
	if (dir)
		mb_u8(&m, QKD_A_SA_DIR, dir);
	e = nls_req(s, QKD_CMD_SA_NEW, 0, &m, NULL, NULL, NULL);
	if (e)
		fail("SA_NEW (ESP: modprobe esp4?)", e);
	/* Forced: no traffic flows, so more than the lookahead is refused. */
	for (int i = 0; i < SA_REKEYS; i++) {
		mb_init(&m, ab, sizeof(ab));
		mb_attr(&m, QKD_A_SA_STREAM_ID, sid, sizeof(sid));
		mb_attr(&m, QKD_A_SA_FORCE, sid, 0);	/* a flag */
		e = nls_req(s, QKD_CMD_SA_REKEY, 0, &m, NULL, NULL, NULL);
		if (e)
			fail("SA_REKEY", e);
	}
}

static void sa_bind(struct nlsock *s, int n)
{
	sa_bind_dir(s, n, 0);
}

static void link_del(struct nlsock *s, uint32_t link)
{
	uint8_t ab[64];
	struct nlmsgb m;
	int e;

	mb_init(&m, ab, sizeof(ab));
	mb_u32(&m, QKD_A_LINK_ID, link);
	e = nls_req(s, QKD_CMD_LINK_DEL, 0, &m, NULL, NULL, NULL);
	if (e)
		fail("LINK_DEL", e);
}

/*
 * Push keys [from, from + count) of phase @ph into stream @n at index
 * @first, in batches. @extra adds an attribute KEY_ADD does not take, @cut
 * drops bytes from the data. Returns the first error (0: all pushed).
 */
static int push(struct nlsock *s, int n, enum phase ph, uint32_t from,
		uint32_t count, uint64_t first, bool extra, uint32_t cut)
{
	uint8_t sid[QKD_STREAM_ID_LEN];
	uint32_t per = QKD_KEY_BATCH_MAX_BYTES / KS / 4, done = 0;
	int err = 0;

	sid_of(sid, n);
	while (done < count) {
		uint32_t b = count - done < per ? count - done : per;
		struct nlresp r;
		struct nlmsgb m;
		uint32_t seq = ++s->seq;
		size_t len;
		int e;

		for (uint32_t i = 0; i < b; i++)
			pattern(ph, from + done + i, data + (size_t)i * KS);
		mb_init(&m, msg, sizeof(msg));
		mb_attr(&m, QKD_A_KEYS_STREAM_ID, sid, sizeof(sid));
		mb_u64(&m, QKD_A_KEYS_FIRST_INDEX, first + done);
		if (extra)	/* reply-only: not in KEY_ADD's policy */
			mb_u32(&m, QKD_A_KEYS_COUNT, 1);
		mb_attr(&m, QKD_A_KEYS_DATA, data, (size_t)b * KS - cut);
		explicit_bzero(data, (size_t)b * KS);
		len = nlr_build(reqbuf, sizeof(reqbuf), s->family,
				NLM_F_REQUEST | NLM_F_ACK, seq, QKD_CMD_KEY_ADD,
				QKD_FAMILY_VERSION, 0, m.b, m.len);
		explicit_bzero(msg, m.len);
		e = nls_txrx(s, reqbuf, len, seq, &r, NULL, NULL);
		if (!e)
			e = r.acked ? -r.err : -ETIMEDOUT;
		explicit_bzero(reqbuf, len);
		/* An error ACK echoes the request: wipe what we received. */
		explicit_bzero(s->echo, NLR_BUF_MAX * 2);
		explicit_bzero(s->rx, NLR_BUF_MAX * 2);
		if (e && !err)
			err = e;
		done += b;
	}
	return err;
}

static uint32_t take(int fd, int n, enum phase ph, uint32_t count, bool by_id,
		     uint64_t first)
{
	uint8_t buf[KS], want[KS], sid[QKD_STREAM_ID_LEN];
	uint32_t bad = 0;

	sid_of(sid, n);
	for (uint32_t i = 0; i < count; i++) {
		struct qkd_key_request req = { .size = sizeof(req) };
		unsigned long cmd = QKD_IOC_GET_KEY;

		memcpy(req.stream_id, sid, sizeof(sid));
		req.key_len = sizeof(buf);
		req.key_ptr = (uint64_t)(uintptr_t)buf;
		if (by_id) {
			cmd = QKD_IOC_GET_KEY_BY_ID;
			req.flags = QKD_KEY_F_BY_KEY_ID;
			qkd_key_id_from_index(req.key_id, sid, first + i);
		}
		if (ioctl(fd, cmd, &req))
			fail(by_id ? "GET_KEY_BY_ID" : "GET_KEY", errno);
		pattern(ph, (uint32_t)(req.index), want);
		if (memcmp(buf, want, KS))
			bad++;
		explicit_bzero(buf, sizeof(buf));
		explicit_bzero(want, sizeof(want));
	}
	return bad;
}

/* GET_KEYS: @count keys of stream @n, up to 8 a call. */
static uint32_t take_batch(int fd, int n, enum phase ph, uint32_t count)
{
	uint8_t buf[8 * KS], want[KS], sid[QKD_STREAM_ID_LEN];
	uint64_t idx[8];
	uint32_t bad = 0, done = 0;

	sid_of(sid, n);
	while (done < count) {
		uint32_t b = count - done < 8 ? count - done : 8;
		struct qkd_keys_request req = { .size = sizeof(req) };

		memcpy(req.stream_id, sid, sizeof(sid));
		req.number = b;
		req.keys_len = sizeof(buf);
		req.keys_ptr = (uint64_t)(uintptr_t)buf;
		req.indices_ptr = (uint64_t)(uintptr_t)idx;
		if (ioctl(fd, QKD_IOC_GET_KEYS, &req))
			fail("GET_KEYS", errno);
		if (req.number != b || req.key_size != KS)
			fail("GET_KEYS: fewer keys than asked", EPROTO);
		for (uint32_t i = 0; i < b; i++) {
			pattern(ph, (uint32_t)idx[i], want);
			if (memcmp(buf + (size_t)i * KS, want, KS))
				bad++;
		}
		explicit_bzero(buf, sizeof(buf));
		explicit_bzero(want, sizeof(want));
		done += b;
	}
	return bad;
}

/*
 * ALG_SETKEY: each key of stream @n keys an AF_ALG transform socket
 * (alternately an AES-256 cipher and an HMAC), which is then closed: the
 * module's copy, the transform's key schedule or HMAC pads, all freed.
 */
static void use_alg(int fd, int n, uint32_t count)
{
	static const char *const alg[2][2] = {
		{ "skcipher", "cbc(aes)" }, { "hash", "hmac(sha256)" } };
	uint8_t sid[QKD_STREAM_ID_LEN];

	sid_of(sid, n);
	for (uint32_t i = 0; i < count; i++) {
		struct sockaddr_alg sa = { .salg_family = AF_ALG };
		struct qkd_alg_setkey req = { .size = sizeof(req) };
		int t = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		if (t < 0)
			fail("socket(AF_ALG)", errno);
		strcpy((char *)sa.salg_type, alg[i % 2][0]);
		strcpy((char *)sa.salg_name, alg[i % 2][1]);
		if (bind(t, (struct sockaddr *)&sa, sizeof(sa)))
			fail(alg[i % 2][1], errno);
		memcpy(req.stream_id, sid, sizeof(sid));
		req.alg_fd = t;
		if (ioctl(fd, QKD_IOC_ALG_SETKEY, &req))
			fail("ALG_SETKEY", errno);
		close(t);
	}
}

static long add_key_raw(const char *type, const char *desc, const void *payload,
			size_t len, int32_t ring)
{
	return syscall(SYS_add_key, type, desc, payload, len, ring);
}

static void invalidate(long serial, const char *what)
{
	if (syscall(SYS_keyctl, KEYCTL_INVALIDATE, serial, 0, 0, 0))
		fail(what, errno);
}

/* LOGON_KEY: each key of stream @n into @ring as a logon key, invalidated. */
static void use_logon(int fd, int n, uint32_t count, int32_t ring)
{
	uint8_t sid[QKD_STREAM_ID_LEN];

	sid_of(sid, n);
	for (uint32_t i = 0; i < count; i++) {
		struct qkd_logon_key req = { .size = sizeof(req) };

		memcpy(req.stream_id, sid, sizeof(sid));
		req.keyring = ring;
		if (ioctl(fd, QKD_IOC_LOGON_KEY, &req))
			fail("LOGON_KEY", errno);
		invalidate(req.serial, "KEYCTL_INVALIDATE (logon)");
	}
}

/* The "qkd" key type: each key of stream @n instantiated, invalidated. */
static void use_key_type(int fd, int n, uint32_t count, int32_t ring)
{
	uint8_t sid[QKD_STREAM_ID_LEN];
	char spec[128], desc[32], *p;
	long key;

	sid_of(sid, n);
	p = spec + sprintf(spec, "fd=%d stream=", fd);
	for (int i = 0; i < QKD_STREAM_ID_LEN; i++)
		p += sprintf(p, "%s%02x", i == 4 || i == 6 || i == 8 || i == 10 ?
			     "-" : "", sid[i]);
	for (uint32_t i = 0; i < count; i++) {
		snprintf(desc, sizeof(desc), "canary-%u", i);
		key = add_key_raw("qkd", desc, spec, strlen(spec), ring);
		if (key < 0)
			fail("add_key qkd", errno);
		invalidate(key, "KEYCTL_INVALIDATE (qkd)");
	}
}

/* One stream to fill: phase @ph below index @split, @ph2 from there. */
struct fill {
	struct nlsock *s;
	int n;
	enum phase ph, ph2;
	uint32_t count, split;
};

#define FILL_CHUNK 8

/* Push keys [off, off + FILL_CHUNK) of @f, those it has. */
static void fill_chunk(const struct fill *f, uint32_t off)
{
	uint32_t end = off + FILL_CHUNK < f->count ? off + FILL_CHUNK : f->count;

	for (uint32_t i = off; i < end;) {
		bool second = i >= f->split;
		uint32_t stop = second || end <= f->split ? end : f->split;
		int e = push(f->s, f->n, second ? f->ph2 : f->ph,
			     second ? i - f->split : i, stop - i, i, false, 0);

		if (e)
			fail("push", e);
		i = stop;
	}
}

static int run(void)
{
	struct nlsock s, s0;
	uint32_t link, link2, bad, half = nkeys / 2, nuse = nkeys / 8;
	int32_t ring;
	int fd, e;

	/*
	 * 1. Every allocation first: every stream of every phase is created
	 * and filled before any key is taken or freed (see the top comment:
	 * a push after a phase's frees would get that phase's freed objects
	 * back, zeroed, and hide a missing wipe).
	 */

	/* The initial netns: keys that only rmmod deletes. Its socket stays
	 * open (bound to the initial netns) for the pushes below.
	 */
	e = nls_open(&s0);
	if (!e)
		e = nls_resolve(&s0);
	if (e)
		fail("genl family qkd", e);
	link = setup_link(&s0, "canary-unload");
	setup_stream(&s0, link, 0);

	/* A netns of its own, which dies when this program exits. */
	if (unshare(CLONE_NEWNET))
		fail("unshare(CLONE_NEWNET)", errno);
	e = nls_open(&s);
	if (!e)
		e = nls_resolve(&s);
	if (e)
		fail("genl family qkd (netns)", e);
	fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		fail("open /dev/qkd", errno);
	link = setup_link(&s, "canary");
	for (int n = 1; n <= 4; n++)
		setup_stream(&s, link, n);
	for (int n = 6; n <= 10; n++)
		setup_stream(&s, link, n);
	/* Stream 5, of a link of its own, for the link deletion. */
	link2 = setup_link(&s, "canary-link-del");
	setup_stream(&s, link2, 5);
	ring = (int32_t)add_key_raw("keyring", "qkd-canary", NULL, 0,
				    KEY_SPEC_PROCESS_KEYRING);
	if (ring < 0)
		fail("add_key keyring", errno);

	/*
	 * Every stream filled, FILL_CHUNK keys at a time, stream after stream
	 * in turn, so that every slab of key objects holds keys of many phases,
	 * the unload phase's among them: no slab empties (and goes back to the
	 * page allocator, to be reused) before rmmod (see the top comment).
	 * Stream 1: indices 0 .. half-1 are the keys to be delivered, half ..
	 * nkeys-1 those to be flushed (pattern i - half of phase "flushed").
	 * 2: deleted holding its keys; 3: left full for the netns exit; 4: an
	 * ESP SA binding; 5: its link deleted; 6: taken with GET_KEYS; 7: an
	 * outbound-only binding; 8, 9, 10: keys the kernel uses for the caller
	 * (AF_ALG, logon keys, qkd keys).
	 */
	{
		const struct fill f[] = {
			{ &s0, 0, PH_UNLOAD, PH_UNLOAD, nkeys, nkeys },
			{ &s, 1, PH_DELIVERED, PH_FLUSHED, nkeys, half },
			{ &s, 2, PH_STREAM_DEL, PH_STREAM_DEL, nkeys, nkeys },
			{ &s, 3, PH_NETNS_EXIT, PH_NETNS_EXIT, nkeys, nkeys },
			{ &s, 4, PH_SA, PH_SA, nkeys, nkeys },
			{ &s, 5, PH_LINK_DEL, PH_LINK_DEL, nkeys, nkeys },
			{ &s, 6, PH_BATCH, PH_BATCH, nkeys, nkeys },
			{ &s, 7, PH_ONEWAY, PH_ONEWAY, nkeys, nkeys },
			{ &s, 8, PH_ALG, PH_ALG, nuse, nuse },
			{ &s, 9, PH_LOGON, PH_LOGON, nuse, nuse },
			{ &s, 10, PH_KEYTYPE, PH_KEYTYPE, nuse, nuse },
		};

		for (uint32_t off = 0; off < nkeys; off += FILL_CHUNK)
			for (size_t j = 0; j < sizeof(f) / sizeof(f[0]); j++)
				fill_chunk(&f[j], off);
	}
	nls_close(&s0);

	/*
	 * 2. The pushes that are their own action, before any key is freed:
	 * the module (rejected) or the genl core (policy) refuses them before
	 * a key object is allocated, but their requests are large buffers,
	 * and after the frees below they could land on freed memory.
	 */

	/* Refused by the module: an index already used, a bad length. */
	e = push(&s, 3, PH_REJECTED, 0, nkeys / 2, 0, false, 0);
	if (e != -EEXIST)
		fail("push below the next index: want EEXIST", e ? e : -EPROTO);
	e = push(&s, 3, PH_REJECTED, nkeys / 2, nkeys - nkeys / 2, nkeys, false, 1);
	if (e != -EINVAL)
		fail("push with a bad length: want EINVAL", e ? e : -EPROTO);

	/* Refused by the netlink policy, before the module. */
	if (with_policy) {
		int one = 1;

		/* as libqkd: no echo of the request in the error ACK */
		setsockopt(s.fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
		e = push(&s, 3, PH_POLICY, 0, nkeys, nkeys, true, 0);
		if (e != -EINVAL)
			fail("push with an attribute KEY_ADD does not take: want EINVAL",
			     e ? e : -EPROTO);
	}

	/*
	 * 3. The consuming actions, no push among them. Those that allocate
	 * (XFRM states, crypto transforms, keys of the key service) come
	 * first; the ones that only take and free keys last, so that as
	 * little as possible is allocated after them.
	 */

	/* Stream 4: keys in ESP SAs, re-keyed, then the binding deleted. */
	sa_bind(&s, 4);
	sid_cmd(&s, QKD_CMD_SA_DEL, 4, "SA_DEL");

	/* Stream 7: an outbound-only binding, re-keyed, deleted. */
	sa_bind_dir(&s, 7, QKD_SA_DIR_OUT);
	sid_cmd(&s, QKD_CMD_SA_DEL, 7, "SA_DEL (one-way)");

	/* Streams 8, 9, 10: keys the kernel uses for the caller. */
	use_alg(fd, 8, nuse);
	use_logon(fd, 9, nuse, ring);
	use_key_type(fd, 10, nuse, ring);
	invalidate(ring, "KEYCTL_INVALIDATE (keyring)");

	/* Stream 6: every key taken with GET_KEYS. */
	if (take_batch(fd, 6, PH_BATCH, nkeys))
		fail("GET_KEYS: keys differ from what was pushed", EPROTO);

	/* Stream 1: the first half delivered, then the rest flushed. */
	bad = take(fd, 1, PH_DELIVERED, half / 2, false, 0);
	bad += take(fd, 1, PH_DELIVERED, half - half / 2, true, half / 2);
	if (bad)
		fail("delivered keys differ from what was pushed", EPROTO);
	sid_cmd(&s, QKD_CMD_KEY_FLUSH, 1, "KEY_FLUSH");

	/* Stream 2 deleted holding its keys, then link 2 with stream 5. */
	sid_cmd(&s, QKD_CMD_STREAM_DEL, 2, "STREAM_DEL");
	link_del(&s, link2);

	/* Stream 3 is left for the netns exit, stream 0 for rmmod. */
	nls_close(&s);
	close(fd);
	explicit_bzero(msg, sizeof(msg));
	explicit_bzero(reqbuf, sizeof(reqbuf));
	explicit_bzero(data, sizeof(data));
	wipe_stack();
	wipe_vector_registers();
	printf("ok - canary run: %u keys per phase pushed, %u delivered, %u flushed, %u deleted with their stream, %u left for the netns exit, %u for rmmod, %u refused, an SA binding keyed from %u and re-keyed %d times, then deleted; %u taken with GET_KEYS, %u deleted with their link, a one-way binding keyed from %u; %u each into AF_ALG sockets, logon keys and qkd keys%s\n",
	       nkeys, half, nkeys - half, nkeys, nkeys, nkeys, nkeys, nkeys,
	       SA_REKEYS, nkeys, nkeys, nkeys, nuse,
	       with_policy ? ", policy-refused push sent" : "");
	return 0;
}

/* ------------------------------------------------------------ control */

/* The control patterns on stdout, for the guest to keep until the dump. */
static int control(void)
{
	uint8_t k[KS];

	for (uint32_t i = 0; i < CONTROL_KEYS; i++) {
		pattern((enum phase)PH_CONTROL, i, k);
		if (fwrite(k, KS, 1, stdout) != 1)
			return 1;
	}
	return fflush(stdout) ? 1 : 0;
}

/* ------------------------------------------------------------ count */

struct win {
	uint64_t head;		/* first 8 bytes, 0: empty slot */
	uint8_t bytes[WIN];
	uint8_t ph;
	uint32_t key;
	uint8_t off;
	uint64_t hits;
};

static struct win *table;
static size_t tmask;

static size_t slot(uint64_t h)
{
	return (size_t)((h * 0x9e3779b97f4a7c15ull) >> 20) & tmask;
}

static void table_add(enum phase ph, uint32_t key, int off, const uint8_t *w)
{
	uint64_t h;
	size_t i;

	memcpy(&h, w, 8);
	if (!h)
		return;	/* 2^-64 */
	for (i = slot(h); table[i].head; i = (i + 1) & tmask)
		;
	table[i].head = h;
	memcpy(table[i].bytes, w, WIN);
	table[i].ph = (uint8_t)ph;
	table[i].key = key;
	table[i].off = (uint8_t)off;
}

/* Guest-physical address of file offset @off, from the ELF PT_LOADs. */
static uint64_t phys_of(const uint8_t *map, size_t size, size_t off)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)map;

	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64)
		return UINT64_MAX;
	for (int i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *ph = (const Elf64_Phdr *)(map + eh->e_phoff +
							     (size_t)i * eh->e_phentsize);

		if ((const uint8_t *)(ph + 1) > map + size)
			break;
		if (ph->p_type == PT_LOAD && off >= ph->p_offset &&
		    off < ph->p_offset + ph->p_filesz)
			return ph->p_paddr + (off - ph->p_offset);
	}
	return UINT64_MAX;
}

static int count(const char *path)
{
	uint64_t per_phase[PH_MAX + 1] = { 0 }, total = 0, outside_policy = 0;
	uint32_t keys_hit[PH_MAX + 1] = { 0 };
	size_t nwin = ((size_t)PH_MAX * nkeys + CONTROL_KEYS) * NWIN, cap = 1, size;
	uint8_t k[KS];
	const uint8_t *map;
	struct stat st;
	int fd, shown = 0;

	while (cap < nwin * 4)
		cap <<= 1;
	table = calloc(cap, sizeof(*table));
	if (!table)
		return 2;
	tmask = cap - 1;
	for (int ph = 0; ph < PH_MAX; ph++)
		for (uint32_t i = 0; i < nkeys; i++) {
			pattern((enum phase)ph, i, k);
			for (int w = 0; w < NWIN; w++)
				table_add((enum phase)ph, i, w * WIN, k + w * WIN);
		}
	for (uint32_t i = 0; i < CONTROL_KEYS; i++) {
		pattern((enum phase)PH_CONTROL, i, k);
		for (int w = 0; w < NWIN; w++)
			table_add((enum phase)PH_CONTROL, i, w * WIN, k + w * WIN);
	}
	explicit_bzero(k, sizeof(k));

	fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "canary: %s: %s\n", path, strerror(errno));
		return 2;
	}
	size = (size_t)st.st_size;
	map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "canary: mmap %s: %s\n", path, strerror(errno));
		return 2;
	}
	madvise((void *)map, size, MADV_SEQUENTIAL);
	for (size_t off = 0; off + WIN <= size; off++) {
		uint64_t h;
		size_t i;

		memcpy(&h, map + off, 8);
		if (!h)
			continue;
		for (i = slot(h); table[i].head; i = (i + 1) & tmask) {
			if (table[i].head != h || memcmp(table[i].bytes, map + off, WIN))
				continue;
			table[i].hits++;
			per_phase[table[i].ph]++;
			if (table[i].ph == PH_CONTROL)
				break;
			total++;
			if (verbose && shown++ < 40) {
				uint64_t pa = phys_of(map, size, off);
				size_t a = off >= 32 ? off - 32 : 0;

				printf("# %s key %u +%u at file offset %zu, guest phys 0x%llx:",
				       phase_name[table[i].ph], table[i].key,
				       table[i].off, off, (unsigned long long)pa);
				for (size_t j = a; j < off + 48 && j < size; j++)
					printf("%s%02x", (j - a) % 16 ? "" : " ", map[j]);
				printf("\n");
			}
			break;
		}
	}
	for (size_t i = 0; i <= tmask; i++)
		if (table[i].head && table[i].hits && !table[i].off)
			keys_hit[table[i].ph]++;
	for (int ph = 0; ph < PH_MAX; ph++) {
		if (ph == PH_POLICY && !with_policy)
			continue;
		printf("# %-11s %6llu occurrences (%u keys with their first half found)\n",
		       phase_name[ph], (unsigned long long)per_phase[ph], keys_hit[ph]);
		if (ph != PH_POLICY)
			outside_policy += per_phase[ph];
	}
	printf("# %-11s %6llu occurrences (%u of %u patterns with their first half found; must be all)\n",
	       "control", (unsigned long long)per_phase[PH_CONTROL],
	       keys_hit[PH_CONTROL], CONTROL_KEYS);
	printf("canary: %llu occurrences of %u key patterns in %zu MiB of guest memory (%llu outside the policy phase)\n",
	       (unsigned long long)total, (unsigned)(PH_MAX - !with_policy) * nkeys,
	       size >> 20, (unsigned long long)outside_policy);
	munmap((void *)map, size);
	close(fd);
	/*
	 * The policy phase is the sender's own request, refused by the genl
	 * core before any module hook and freed unwiped: a documented
	 * exposure (abi.md), counted above, not a failure. Every other phase
	 * must find nothing, and the positive control all of its patterns.
	 */
	if (outside_policy)
		return 1;
	if (with_control && keys_hit[PH_CONTROL] < CONTROL_KEYS) {
		printf("canary: the positive control failed: %u of %u control patterns in the dump\n",
		       keys_hit[PH_CONTROL], CONTROL_KEYS);
		return 3;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: canary run -s SEED [-k KEYS] [-P]\n"
		"       canary control -s SEED\n"
		"       canary count -s SEED [-k KEYS] [-P] [-C] [-v] DUMP\n");
	exit(2);
}

int main(int argc, char **argv)
{
	bool have_seed = false;
	const char *mode;
	int c;

	if (argc < 2)
		usage();
	mode = argv[1];
	optind = 2;
	while ((c = getopt(argc, argv, "s:k:PCv")) != -1) {
		switch (c) {
		case 's':
			seed = strtoull(optarg, NULL, 0);
			have_seed = true;
			break;
		case 'k':
			nkeys = (uint32_t)atoi(optarg);
			break;
		case 'P':
			with_policy = true;
			break;
		case 'C':
			with_control = true;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	/* The SA phase takes a few keys per re-key from its stream. */
	if (!have_seed || nkeys < 32 || nkeys > 16384)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "run") && optind == argc)
		return run();
	if (!strcmp(mode, "count") && optind == argc - 1)
		return count(argv[optind]);
	if (!strcmp(mode, "control") && optind == argc)
		return control();
	usage();
	return 2;
}
