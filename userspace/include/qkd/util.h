/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd utilities: strict number parsing, UUIDs, hex and base64, the ETSI
 * 014 key_ID mapping, and reading key material from a file or stdin.
 *
 * Every function that can fail returns 0 (or a length) on success and a
 * negative errno on failure; none prints anything.
 */
#ifndef QKD_UTIL_H
#define QKD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <linux/qkd.h>
#include <qkd/ids.h>

#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#endif

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" plus the NUL. */
#define QKD_UUID_STR_LEN	37

/* Largest amount of key material qkd_read_keys() accepts (raw bytes). */
#define QKD_READ_KEYS_MAX	(64u << 20)

/*
 * Numbers: decimal, or hexadecimal with a "0x" prefix. No sign, no
 * whitespace, no trailing characters. -EINVAL for a malformed string,
 * -ERANGE for a value above @max.
 */
int qkd_parse_u64(const char *s, uint64_t max, uint64_t *out);
int qkd_parse_u32(const char *s, uint32_t *out);

/*
 * A link name as the kernel accepts it (LINK_NEW): 1 to QKD_LINK_NAME_MAX - 1
 * characters of [A-Za-z0-9_.-], the first neither '-' nor '.', so that it
 * works as a file name (/etc/qkd/NAME.conf), a systemd unit instance
 * (qkd@NAME) and a JSON string without quoting. NULL @why, or *@why set to
 * the reason when false.
 */
bool qkd_link_name_valid(const char *s, const char **why);

/* UUIDs in the 8-4-4-4-12 form, either case. -EINVAL if malformed. */
int qkd_uuid_parse(const char *s, uint8_t out[16]);
void qkd_uuid_format(const uint8_t in[16], char out[QKD_UUID_STR_LEN]);
bool qkd_uuid_is_zero(const uint8_t in[16]);

/*
 * Hex: qkd_hex_encode() writes 2 * @len lowercase digits and a NUL into @out
 * (of @outsz bytes; -ENOSPC if too small). qkd_hex_decode() takes exactly
 * 2 * n digits (either case, nothing else) and returns n, or -EINVAL for a
 * bad digit or an odd count, -ENOSPC if @out is too small.
 */
ssize_t qkd_hex_encode(const uint8_t *in, size_t len, char *out, size_t outsz);
ssize_t qkd_hex_decode(const char *in, size_t inlen, uint8_t *out,
		       size_t outsz);

/*
 * Base64 (RFC 4648, standard alphabet, with '=' padding). The encoder needs
 * qkd_base64_size(len) bytes at @out (including the NUL). The decoder is
 * strict: length a multiple of 4, padding only at the end, no whitespace,
 * and unused bits of the last symbol zero.
 */
static inline size_t qkd_base64_size(size_t len)
{
	return 4 * ((len + 2) / 3) + 1;
}
ssize_t qkd_base64_encode(const uint8_t *in, size_t len, char *out,
			  size_t outsz);
ssize_t qkd_base64_decode(const char *in, size_t inlen, uint8_t *out,
			  size_t outsz);

/*
 * ETSI 014 key_ID of (stream, index) and back (see the uapi header). The
 * reverse fails with -EINVAL when @key_id cannot belong to @stream: bytes
 * 0..8 must be the stream's, since indices stay below 2^56.
 */
void qkd_key_id(const uint8_t stream_id[QKD_STREAM_ID_LEN], uint64_t index,
		uint8_t key_id[QKD_KEY_ID_LEN]);
int qkd_key_id_index(const uint8_t key_id[QKD_KEY_ID_LEN],
		     const uint8_t stream_id[QKD_STREAM_ID_LEN],
		     uint64_t *index);

/*
 * Reads key material from @path ("-" or NULL: standard input) or from @fd:
 * raw bytes, or with @hex hex text (whitespace between digits ignored).
 * The result must be non-empty and, if @key_size is not 0, a multiple of it.
 * On success *@data (malloc'ed; release with qkd_free_secret()) and *@len
 * are set. On failure a negative errno is returned and, if @why is not
 * NULL, a short reason is written to it (@whylen bytes). Every temporary
 * buffer is zeroed before it is freed.
 */
int qkd_read_keys(const char *path, bool hex, size_t key_size,
		  uint8_t **data, size_t *len, char *why, size_t whylen);
int qkd_read_keys_fd(int fd, bool hex, size_t key_size,
		     uint8_t **data, size_t *len, char *why, size_t whylen);

/* Zero @len bytes at @p (if not NULL) and free it. */
void qkd_free_secret(void *p, size_t len);

#endif /* QKD_UTIL_H */
