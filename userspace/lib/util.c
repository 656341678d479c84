// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd utilities: numbers, UUIDs, hex, base64, key IDs, key files.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include <qkd/util.h>

static void why_set(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int qkd_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	unsigned int base = 10;
	uint64_t v = 0;
	bool range = false;
	int d;

	if (!s || !*s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		if (!*s)
			return -EINVAL;
	}
	for (; *s; s++) {
		d = hexval((unsigned char)*s);
		if (d < 0 || (unsigned int)d >= base)
			return -EINVAL;
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			range = true;	/* keep scanning: garbage wins */
		else
			v = v * base + (uint64_t)d;
	}
	if (range || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int qkd_parse_u32(const char *s, uint32_t *out)
{
	uint64_t v;
	int err = qkd_parse_u64(s, UINT32_MAX, &v);

	if (err)
		return err;
	*out = (uint32_t)v;
	return 0;
}

int qkd_uuid_parse(const char *s, uint8_t out[16])
{
	uint8_t tmp[16];
	size_t i, n = 0;
	int hi, lo;

	if (!s || strlen(s) != QKD_UUID_STR_LEN - 1)
		return -EINVAL;
	for (i = 0; i < QKD_UUID_STR_LEN - 1; ) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			i++;
			continue;
		}
		hi = hexval((unsigned char)s[i]);
		lo = hexval((unsigned char)s[i + 1]);
		if (hi < 0 || lo < 0)
			return -EINVAL;
		tmp[n++] = (uint8_t)(hi << 4 | lo);
		i += 2;
	}
	memcpy(out, tmp, sizeof(tmp));
	return 0;
}

void qkd_uuid_format(const uint8_t in[16], char out[QKD_UUID_STR_LEN])
{
	static const char digits[] = "0123456789abcdef";
	size_t i, o = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = digits[in[i] >> 4];
		out[o++] = digits[in[i] & 0xf];
	}
	out[o] = '\0';
}

bool qkd_uuid_is_zero(const uint8_t in[16])
{
	uint8_t acc = 0;
	size_t i;

	for (i = 0; i < 16; i++)
		acc |= in[i];
	return acc == 0;
}

/*
 * Key bytes pass through hex and base64 on their way to and from files,
 * the JSON of qkd-kme and qkdctl's output: libsodium's codecs turn each
 * nibble or sextet into a character and back with arithmetic alone (no
 * table look-up, no branch on the value), so neither the time they take
 * nor the cache lines they touch depend on the key. They need no
 * sodium_init(). Our checks come first: sodium_bin2hex() and
 * sodium_bin2base64() abort the process when the output is too small.
 */
ssize_t qkd_hex_encode(const uint8_t *in, size_t len, char *out, size_t outsz)
{
	if (len > (SIZE_MAX - 1) / 2 || outsz < 2 * len + 1)
		return -ENOSPC;
	sodium_bin2hex(out, outsz, in, len);
	return (ssize_t)(2 * len);
}

ssize_t qkd_hex_decode(const char *in, size_t inlen, uint8_t *out,
		       size_t outsz)
{
	size_t n = 0;

	if (inlen % 2)
		return -EINVAL;
	if (outsz < inlen / 2)
		return -ENOSPC;
	/* NULL hex_end: anything but digits to the end is an error */
	if (sodium_hex2bin(out, outsz, in, inlen, NULL, &n, NULL) ||
	    n != inlen / 2) {
		explicit_bzero(out, inlen / 2);
		return -EINVAL;
	}
	return (ssize_t)n;
}

ssize_t qkd_base64_encode(const uint8_t *in, size_t len, char *out,
			  size_t outsz)
{
	size_t need;

	if (len > (SIZE_MAX / 4) * 3 - 3)
		return -ENOSPC;
	need = qkd_base64_size(len);
	if (outsz < need)
		return -ENOSPC;
	sodium_bin2base64(out, outsz, in, len,
			  sodium_base64_VARIANT_ORIGINAL);
	return (ssize_t)(need - 1);
}

ssize_t qkd_base64_decode(const char *in, size_t inlen, uint8_t *out,
			  size_t outsz)
{
	size_t pad = 0, need, n = 0, i;
	unsigned char high = 0;

	/*
	 * The length and the padding first, so that a short @out is -ENOSPC
	 * whatever the text holds. libsodium then rejects any other symbol,
	 * padding anywhere but the end or of the wrong length, and nonzero
	 * unused bits of the last symbol (non-canonical encodings).
	 */
	if (inlen % 4)
		return -EINVAL;
	if (inlen) {
		if (in[inlen - 1] == '=')
			pad++;
		if (in[inlen - 2] == '=')
			pad++;
	}
	need = inlen / 4 * 3 - pad;
	if (outsz < need)
		return -ENOSPC;
	/*
	 * libsodium 1.0.18 (Debian 12) decodes every byte from 0x80 up as
	 * '/' (its char is signed): refuse them here, without a branch per
	 * symbol. fuzz_util found it ("...1\xff\xff6" decoded).
	 */
	for (i = 0; i < inlen; i++)
		high |= (unsigned char)in[i];
	if (high & 0x80)
		return -EINVAL;
	if (sodium_base642bin(out, need, in, inlen, NULL, &n, NULL,
			      sodium_base64_VARIANT_ORIGINAL) || n != need) {
		explicit_bzero(out, need);
		return -EINVAL;
	}
	return (ssize_t)n;
}

void qkd_key_id(const uint8_t stream_id[QKD_STREAM_ID_LEN], uint64_t index,
		uint8_t key_id[QKD_KEY_ID_LEN])
{
	qkd_key_id_from_index(key_id, stream_id, index);
}

int qkd_key_id_index(const uint8_t key_id[QKD_KEY_ID_LEN],
		     const uint8_t stream_id[QKD_STREAM_ID_LEN],
		     uint64_t *index)
{
	uint64_t i;

	/* Bytes 0..7 carry no index; byte 8 none either below 2^56. */
	if (memcmp(key_id, stream_id, 9))
		return -EINVAL;
	i = qkd_key_id_to_index(key_id, stream_id);
	if (i > QKD_INDEX_MAX)
		return -EINVAL;
	*index = i;
	return 0;
}

void qkd_free_secret(void *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len);
	free(p);
}

/*
 * Grow a secret buffer without leaving a copy behind in freed memory (which
 * realloc() would).
 */
static int grow_secret(uint8_t **buf, size_t *cap, size_t used, size_t want)
{
	uint8_t *nbuf;
	size_t ncap = *cap ? *cap : 4096;

	while (ncap < want)
		ncap *= 2;
	nbuf = malloc(ncap);
	if (!nbuf)
		return -ENOMEM;
	if (*buf) {
		memcpy(nbuf, *buf, used);
		qkd_free_secret(*buf, *cap);
	}
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	       c == '\v' || c == '\f';
}

/*
 * Hex key text in *@buf (@used bytes of @cap) to its bytes, whitespace
 * between digits ignored: *@buf is replaced by a new secret buffer holding
 * the bytes, the text is wiped and freed. The digits are decoded by
 * libsodium in constant time; only a text already rejected is scanned
 * again, to name the offending offset in the message.
 */
static int decode_hex_text(uint8_t **buf, size_t *cap, size_t *used,
			   char *why, size_t whylen)
{
	uint8_t *text = *buf, *digits, *bin = NULL;
	size_t i, n = 0, k, bincap = 0;
	int err = -ENOMEM;

	digits = malloc(*used + 1);
	if (!digits)
		goto nomem;
	for (i = 0; i < *used; i++)
		if (!is_space(text[i]))
			digits[n++] = text[i];
	bincap = n / 2 + 1;
	bin = malloc(bincap);
	if (!bin)
		goto nomem;
	if (!(n % 2) &&
	    qkd_hex_decode((const char *)digits, n, bin, bincap) >= 0) {
		qkd_free_secret(text, *cap);
		*buf = bin;
		*cap = bincap;
		*used = n / 2;
		bin = NULL;
		err = 0;
		goto out;
	}
	err = -EINVAL;
	for (k = 0; k < n && hexval(digits[k]) >= 0; k++)
		;
	if (k == n) {
		why_set(why, whylen, "odd number of hex digits (%zu)", n);
		goto out;
	}
	/* the k-th non-space character of the text */
	for (i = 0; i < *used; i++)
		if (!is_space(text[i]) && !k--)
			break;
	why_set(why, whylen, "not a hex digit at offset %zu", i);
	goto out;
nomem:
	why_set(why, whylen, "out of memory");
out:
	qkd_free_secret(bin, bincap);
	qkd_free_secret(digits, n);
	return err;
}

int qkd_read_keys_fd(int fd, bool hex, size_t key_size,
		     uint8_t **data, size_t *len, char *why, size_t whylen)
{
	/*
	 * Raw input is at most QKD_READ_KEYS_MAX; hex text twice that plus
	 * whitespace, so let the text be up to 3 times as long.
	 */
	size_t limit = hex ? 3 * (size_t)QKD_READ_KEYS_MAX : QKD_READ_KEYS_MAX;
	uint8_t *buf = NULL;
	size_t cap = 0, used = 0;
	struct stat st;
	ssize_t r;
	int err;

	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (uint64_t)st.st_size <= limit) {
		err = grow_secret(&buf, &cap, 0, (size_t)st.st_size + 1);
		if (err)
			goto fail_nomem;
	}
	for (;;) {
		if (used == cap) {
			if (cap >= limit + 1) {
				why_set(why, whylen,
					"more than %u bytes of key material",
					QKD_READ_KEYS_MAX);
				err = -EFBIG;
				goto fail;
			}
			err = grow_secret(&buf, &cap, used, used + 1);
			if (err)
				goto fail_nomem;
		}
		r = read(fd, buf + used, cap - used);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			why_set(why, whylen, "read: %s", strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		used += (size_t)r;
		if (used > limit) {
			why_set(why, whylen,
				"more than %u bytes of key material",
				QKD_READ_KEYS_MAX);
			err = -EFBIG;
			goto fail;
		}
	}

	if (hex) {
		err = decode_hex_text(&buf, &cap, &used, why, whylen);
		if (err)
			goto fail;
	}
	if (!used) {
		why_set(why, whylen, "no key material");
		err = -EINVAL;
		goto fail;
	}
	if (key_size && used % key_size) {
		why_set(why, whylen,
			"%zu bytes is not a multiple of the key size %zu",
			used, key_size);
		err = -EINVAL;
		goto fail;
	}
	*data = buf;
	*len = used;
	/*
	 * The tail beyond @used stays zeroed memory we own: zero it now so
	 * the caller may free with qkd_free_secret(data, len).
	 */
	explicit_bzero(buf + used, cap - used);
	return 0;

fail_nomem:
	why_set(why, whylen, "out of memory");
fail:
	qkd_free_secret(buf, cap);
	return err;
}

int qkd_read_keys(const char *path, bool hex, size_t key_size,
		  uint8_t **data, size_t *len, char *why, size_t whylen)
{
	int fd, err;

	if (!path || !strcmp(path, "-"))
		return qkd_read_keys_fd(STDIN_FILENO, hex, key_size, data, len,
					why, whylen);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		why_set(why, whylen, "%s: %s", path, strerror(errno));
		return err;
	}
	err = qkd_read_keys_fd(fd, hex, key_size, data, len, why, whylen);
	close(fd);
	return err;
}

bool qkd_link_name_valid(const char *s, const char **why)
{
	const char *w = NULL;
	size_t i;

	if (!s[0])
		w = "empty";
	else if (s[0] == '-' || s[0] == '.')
		w = "starts with '-' or '.'";
	else if (strlen(s) >= QKD_LINK_NAME_MAX)
		w = "longer than 31 characters";
	for (i = 0; !w && s[i]; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		      c == '.'))
			w = "only letters, digits, '_', '-' and '.' are allowed";
	}
	if (why)
		*why = w;
	return !w;
}
