// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl genpsk FILE_A FILE_B [ size BYTES ]: a fresh pre-shared key pair
 * for qkdd --psk, one file for each site, in exactly the form qkdd loads
 * (auth_psk_read(): raw bytes, QKD_AUTH_PSK_MIN..MAX, a multiple of
 * QKD_AUTH_PSK_ALIGN, mode 0600, owned by us).
 *
 * Two files, not the key on standard output (as wg genpsk does): a shell
 * redirection follows symbolic links, overwrites, and takes its mode from
 * the umask, and the two sites need identical bytes. So both files are
 * created here with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600 whatever the umask,
 * written from getrandom(2), fsynced with their directories; if anything
 * fails, the files already created are removed and nothing is left. The key
 * buffer is wiped before it is freed; the key is never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <qkd/auth.h>

#include "qkdctl.h"

/* 64 KiB: 2048 tags per direction before the QKD rounds refill it. */
#define GENPSK_DEFAULT_SIZE	65536u

static int fill_random(uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t r = getrandom(buf + off, len - off, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail_msg("getrandom: %s", strerror(errno));
		off += (size_t)r;
	}
	return 0;
}

/* A new file at @path, mode 0600; never an existing file or a link. */
static int create_new(const char *path)
{
	struct stat st;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC |
		  O_NOCTTY, 0600);
	if (fd < 0) {
		if (errno == EEXIST && !lstat(path, &st) && S_ISLNK(st.st_mode))
			fail_msg("%s: is a symbolic link; refusing to write a key through it",
				 path);
		else if (errno == EEXIST)
			fail_msg("%s: already exists; a pre-shared key is never overwritten (remove it or choose another name)",
				 path);
		else
			fail_msg("%s: %s", path, strerror(errno));
		return -1;
	}
	/* The umask may have taken the owner's bits: exactly 0600. */
	if (fchmod(fd, 0600)) {
		fail_msg("%s: chmod: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t w = write(fd, buf + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		off += (size_t)w;
	}
	return 0;
}

/* fsync the directory holding @path, so that the new name is durable. */
static int sync_dir(const char *path)
{
	char *copy = strdup(path);
	int fd, ret = 0;

	if (!copy)
		return -1;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (fsync(fd) && errno != EINVAL))
		ret = -1;
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

static size_t arg_psk_size(const char *s)
{
	uint64_t v = arg_u64("size", s, QKD_AUTH_PSK_MAX);

	if (v < QKD_AUTH_PSK_MIN || v % QKD_AUTH_PSK_ALIGN)
		usage_error("size \"%s\": must be %u..%u bytes, a multiple of %u",
			    s, QKD_AUTH_PSK_MIN, QKD_AUTH_PSK_MAX,
			    QKD_AUTH_PSK_ALIGN);
	return (size_t)v;
}

int do_genpsk(int argc, char **argv)
{
	const char *path[2];
	size_t size = GENPSK_DEFAULT_SIZE;
	int fd[2] = { -1, -1 };
	bool created[2] = { false, false };
	uint8_t *key;
	int i = 1, n, ret = 1;

	if (argc < 3)
		usage_error("genpsk needs two file names (one for each site)");
	path[0] = argv[1];
	path[1] = argv[2];
	if (!*path[0] || !*path[1])
		usage_error("empty file name");
	if (!strcmp(path[0], path[1]))
		usage_error("\"%s\" given twice: give one file for each site",
			    path[0]);
	i = 3;
	while (i < argc) {
		if (!strcmp(argv[i], "size"))
			size = arg_psk_size(arg_next(argc, argv, &i));
		else
			usage_error("unexpected argument \"%s\"", argv[i]);
	}

	key = malloc(size);
	if (!key)
		return fail_msg("out of memory");
	for (n = 0; n < 2; n++) {
		fd[n] = create_new(path[n]);
		if (fd[n] < 0)
			goto out;
		created[n] = true;
	}
	if (fill_random(key, size))
		goto out;
	for (n = 0; n < 2; n++) {
		if (write_all(fd[n], key, size) || fsync(fd[n])) {
			fail_msg("%s: %s", path[n], strerror(errno));
			goto out;
		}
		if (close(fd[n])) {
			fd[n] = -1;
			fail_msg("%s: %s", path[n], strerror(errno));
			goto out;
		}
		fd[n] = -1;
		if (sync_dir(path[n])) {
			fail_msg("%s: cannot sync its directory: %s", path[n],
				 strerror(errno));
			goto out;
		}
	}
	ret = 0;
out:
	explicit_bzero(key, size);
	free(key);
	if (ret) {
		/* Leave nothing: a half pair or a partial file is no key. */
		for (n = 0; n < 2; n++) {
			if (fd[n] >= 0)
				close(fd[n]);
			if (created[n])
				unlink(path[n]);
		}
	}
	return ret;
}
