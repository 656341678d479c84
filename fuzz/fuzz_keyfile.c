// SPDX-License-Identifier: GPL-2.0-only
/*
 * libFuzzer target for libqkd's key-file reader (qkd_read_keys_fd() in
 * userspace/lib/util.c: `qkdctl key push ... file PATH [hex]`). The input
 * is the file's content; it is read raw and as hex text, from a regular
 * file (memfd: the size is known in advance) and from a pipe (it is not),
 * with key sizes 0 (any), 32 and 36. Each result is checked against an
 * oracle: raw input comes back as is, hex input decoded with whitespace
 * between digits ignored, failures have a reason.
 * Build and run with fuzz/run.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <qkd/util.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)	do { if (!(c)) __builtin_trap(); } while (0)

static int memfd = -1;

static int hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* What a hex file must decode to: -1 if it must be refused. */
static ssize_t oracle_hex(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t digits = 0;
	int hi = -1;

	for (size_t i = 0; i < n; i++) {
		int v;

		if (strchr(" \t\n\r\v\f", in[i]) && in[i])
			continue;
		v = hexval(in[i]);
		if (v < 0)
			return -1;
		if (hi < 0) {
			hi = v;
		} else {
			out[digits / 2] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
		digits++;
	}
	return digits % 2 ? -1 : (ssize_t)(digits / 2);
}

static int from_memfd(const uint8_t *data, size_t size)
{
	if (memfd < 0) {
		memfd = memfd_create("fuzz_keyfile", MFD_CLOEXEC);
		if (memfd < 0)
			abort();
	}
	if (ftruncate(memfd, 0) ||
	    pwrite(memfd, data, size, 0) != (ssize_t)size ||
	    lseek(memfd, 0, SEEK_SET) != 0)
		abort();
	return memfd;
}

/* A pipe holding the input, write end closed (inputs are < 64 KiB). */
static int from_pipe(const uint8_t *data, size_t size)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) || fcntl(p[1], F_SETPIPE_SZ, 1 << 17) < 0 ||
	    write(p[1], data, size) != (ssize_t)size)
		abort();
	close(p[1]);
	return p[0];
}

static void one(const uint8_t *data, size_t size, int use_pipe, bool hex,
		size_t key_size, const uint8_t *want, ssize_t want_len)
{
	uint8_t *keys = (uint8_t *)0x1;
	size_t len = 12345;
	char why[128];
	int fd = use_pipe ? from_pipe(data, size) : from_memfd(data, size);
	int r;

	memset(why, 0, sizeof(why));
	r = qkd_read_keys_fd(fd, hex, key_size, &keys, &len, why,
			     sizeof(why));
	if (use_pipe)
		close(fd);
	if (want_len <= 0 || (key_size && want_len % key_size)) {
		CHECK(r == -EINVAL);
		CHECK(why[0] && memchr(why, '\0', sizeof(why)));
		CHECK(keys == (uint8_t *)0x1 && len == 12345);
		return;
	}
	CHECK(r == 0 && len == (size_t)want_len && !memcmp(keys, want, len));
	qkd_free_secret(keys, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *dec = malloc(size / 2 + 1);
	ssize_t n;

	if (!dec)
		abort();
	n = oracle_hex(data, size, dec);
	one(data, size, 0, false, 0, data, (ssize_t)size);
	one(data, size, 1, false, 36, data, (ssize_t)size);
	one(data, size, 0, true, 0, dec, n);
	one(data, size, 1, true, 32, dec, n);
	one(data, size, 0, true, 36, dec, n);
	free(dec);
	return 0;
}
