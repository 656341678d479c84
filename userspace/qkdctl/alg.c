// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl alg setkey: key an AF_ALG socket from the store and run standard
 * input through it; qkdctl key to-keyring: a key into a keyring, as the
 * module's "qkd" type or as "logon". Neither ever holds key bytes.
 *
 * The AF_ALG socket is made and driven with raw system calls because the
 * kernel needs its fd and libkcapi does not expose it; libkcapi is still
 * used to ask the algorithm's IV size (Documentation/kernel-api.md).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/if_alg.h>

#include <kcapi.h>

#include <qkd/crypto.h>
#include <qkd/dev.h>

#include "qkdctl.h"

#ifndef SOL_ALG
#define SOL_ALG 279
#endif

/* Input of one "alg setkey" run: one AF_ALG operation. */
#define ALG_INPUT_MAX	(64u << 10)
#define ALG_IV_MAX	32
#define ALG_DIGEST_MAX	64

enum alg_type { ALG_SKCIPHER, ALG_AEAD, ALG_HASH };

static int crypto_error(const char *what, int err)
{
	const char *hint = NULL;

	switch (-err) {
	case EAGAIN:
		hint = "the stream holds no key";
		break;
	case ENOKEY:
		hint = "that index has not been pushed yet, or no such keyring";
		break;
	case EKEYEXPIRED:
		hint = "that key was already delivered, flushed or skipped";
		break;
	case ENOENT:
		hint = "no such stream, or no such algorithm";
		break;
	case ERANGE:
		hint = "key-len must be 16 up to the stream's key size";
		break;
	case EINVAL:
		hint = "the algorithm may not take a key of this length";
		break;
	}
	if (hint)
		return fail_msg("%s: %s (%s; no key taken)", what,
				strerror(-err), hint);
	return fail_msg("%s: %s", what, strerror(-err));
}

/* index N | key-id KEYUUID at argv[*i]: true if it was one of those. */
static bool arg_key_sel(int argc, char **argv, int *i,
			const uint8_t stream[QKD_STREAM_ID_LEN],
			struct qkd_key_sel *sel)
{
	const char *kw = argv[*i];

	if (strcmp(kw, "index") && strcmp(kw, "key-id"))
		return false;
	if (sel->flags)
		usage_error("give \"index N\" or \"key-id KEYUUID\" once");
	if (!strcmp(kw, "index")) {
		sel->index = arg_u64("index", arg_next(argc, argv, i),
				     QKD_INDEX_MAX);
		sel->flags = QKD_USE_F_BY_INDEX;
	} else {
		const char *v = arg_next(argc, argv, i);
		uint64_t index;

		arg_uuid("key-id", v, sel->key_id);
		if (qkd_key_id_index(sel->key_id, stream, &index))
			usage_error("key-id %s is not a key ID of the stream",
				    v);
		sel->flags = QKD_USE_F_BY_KEY_ID;
	}
	return true;
}

static void print_used(FILE *f, const struct qkd_key_used *u)
{
	char kid[QKD_UUID_STR_LEN];

	qkd_uuid_format(u->key_id, kid);
	fprintf(f, "index %llu key-id %s key-len %u\n",
		(unsigned long long)u->index, kid, u->key_len);
}

/* All of standard input, at most ALG_INPUT_MAX bytes. */
static int read_input(uint8_t *buf, size_t *len)
{
	size_t n = 0;
	ssize_t r;

	for (;;) {
		r = read(STDIN_FILENO, buf + n, ALG_INPUT_MAX + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		n += r;
		if (n > ALG_INPUT_MAX)
			return -EFBIG;
	}
	*len = n;
	return 0;
}

/* The algorithm's IV size, asked of libkcapi. */
static int alg_ivsize(enum alg_type t, const char *name)
{
	struct kcapi_handle *h;
	int ivs;

	if (t == ALG_SKCIPHER) {
		if (kcapi_cipher_init(&h, name, 0))
			return -ENOENT;
		ivs = (int)kcapi_cipher_ivsize(h);
		kcapi_cipher_destroy(h);
	} else {
		if (kcapi_aead_init(&h, name, 0))
			return -ENOENT;
		ivs = (int)kcapi_aead_ivsize(h);
		kcapi_aead_destroy(h);
	}
	return ivs;
}

static int write_all(const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t w = write(STDOUT_FILENO, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= w;
	}
	return 0;
}

/* One operation through an accepted socket; reads exactly @outlen bytes. */
static ssize_t alg_run(int tfm, enum alg_type t, int op, const uint8_t *iv,
		       uint32_t ivlen, uint32_t assoclen, const uint8_t *in,
		       size_t inlen, uint8_t *out, size_t outlen)
{
	char cbuf[CMSG_SPACE(4) + CMSG_SPACE(4 + ALG_IV_MAX) + CMSG_SPACE(4)];
	struct iovec iov = { .iov_base = (void *)in, .iov_len = inlen };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	size_t got = 0;
	ssize_t n;
	int opfd;

	opfd = accept4(tfm, NULL, NULL, SOCK_CLOEXEC);
	if (opfd < 0)
		return -errno;
	if (t != ALG_HASH) {
		memset(cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf;
		mh.msg_controllen = CMSG_SPACE(4) + CMSG_SPACE(4 + ivlen) +
				    (t == ALG_AEAD ? CMSG_SPACE(4) : 0);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_ALG;
		cm->cmsg_type = ALG_SET_OP;
		cm->cmsg_len = CMSG_LEN(4);
		memcpy(CMSG_DATA(cm), &op, 4);
		cm = CMSG_NXTHDR(&mh, cm);
		cm->cmsg_level = SOL_ALG;
		cm->cmsg_type = ALG_SET_IV;
		cm->cmsg_len = CMSG_LEN(4 + ivlen);
		memcpy(CMSG_DATA(cm), &ivlen, 4);
		memcpy(CMSG_DATA(cm) + 4, iv, ivlen);
		if (t == ALG_AEAD) {
			cm = CMSG_NXTHDR(&mh, cm);
			cm->cmsg_level = SOL_ALG;
			cm->cmsg_type = ALG_SET_AEAD_ASSOCLEN;
			cm->cmsg_len = CMSG_LEN(4);
			memcpy(CMSG_DATA(cm), &assoclen, 4);
		}
	}
	n = sendmsg(opfd, &mh, 0);
	if (n >= 0 && (size_t)n != inlen)
		n = -EMSGSIZE;
	while (n >= 0 && got < outlen) {
		n = read(opfd, out + got, outlen - got);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0)
			break;
		got += n;
		if (t == ALG_HASH)
			break;	/* one digest, shorter than the buffer */
	}
	if (n < 0)
		n = -errno;
	close(opfd);
	return n < 0 ? n : (ssize_t)got;
}

static int alg_setkey(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN], iv[ALG_IV_MAX] = { 0 };
	const char *type_s = NULL, *name = NULL, *iv_hex = NULL;
	uint32_t key_len = 0, assoclen = 0, taglen = 16;
	struct qkd_key_sel sel = { 0 };
	struct qkd_key_used used;
	bool decrypt = false;
	uint8_t *in = NULL, *out = NULL;
	size_t inlen = 0, outlen;
	enum alg_type t;
	int i = 0, ivlen = 0, tfm = -1, err, ret = 1;
	ssize_t n;

	if (argc < 1)
		usage_error("alg setkey: missing UUID");
	arg_uuid("stream id", argv[i++], id);
	while (i < argc) {
		if (arg_key_sel(argc, argv, &i, id, &sel))
			continue;
		if (!strcmp(argv[i], "type")) {
			type_s = arg_next(argc, argv, &i);
		} else if (!strcmp(argv[i], "name")) {
			name = arg_next(argc, argv, &i);
		} else if (!strcmp(argv[i], "key-len")) {
			key_len = arg_u32("key-len", arg_next(argc, argv, &i));
		} else if (!strcmp(argv[i], "op")) {
			const char *v = arg_next(argc, argv, &i);

			if (!strcmp(v, "decrypt"))
				decrypt = true;
			else if (strcmp(v, "encrypt"))
				usage_error("op \"%s\": expected encrypt or decrypt", v);
		} else if (!strcmp(argv[i], "iv")) {
			iv_hex = arg_next(argc, argv, &i);
		} else if (!strcmp(argv[i], "assoc-len")) {
			assoclen = arg_u32("assoc-len", arg_next(argc, argv, &i));
		} else if (!strcmp(argv[i], "tag-len")) {
			taglen = arg_u32("tag-len", arg_next(argc, argv, &i));
		} else {
			usage_error("alg setkey: unknown argument \"%s\"", argv[i]);
		}
	}
	if (!type_s || !name)
		usage_error("alg setkey: needs \"type TYPE\" and \"name ALG\"");
	if (!strcmp(type_s, "skcipher"))
		t = ALG_SKCIPHER;
	else if (!strcmp(type_s, "aead"))
		t = ALG_AEAD;
	else if (!strcmp(type_s, "hash"))
		t = ALG_HASH;
	else
		usage_error("type \"%s\": expected skcipher, aead or hash", type_s);
	if (t == ALG_HASH && (decrypt || iv_hex))
		usage_error("alg setkey: a hash takes no op or iv");
	if (t != ALG_AEAD && assoclen)
		usage_error("alg setkey: assoc-len is for aead only");
	if (iv_hex) {
		ivlen = (int)qkd_hex_decode(iv_hex, strlen(iv_hex), iv,
					    sizeof(iv));
		if (ivlen < 0)
			usage_error("iv \"%s\": not hex, or longer than %d bytes",
				    iv_hex, ALG_IV_MAX);
	} else if (t != ALG_HASH) {
		/* Sound only because each key encrypts one message. */
		ivlen = alg_ivsize(t, name);
		if (ivlen < 0 || ivlen > ALG_IV_MAX)
			return fail_msg("alg setkey: %s: unknown algorithm (no key taken)",
					name);
	}

	/* Everything that can fail without the key comes first. */
	in = malloc(ALG_INPUT_MAX + 1);
	out = malloc(ALG_INPUT_MAX + ALG_DIGEST_MAX + 64);
	if (!in || !out) {
		fail_msg("alg setkey: out of memory");
		goto out;
	}
	err = read_input(in, &inlen);
	if (err) {
		fail_msg("alg setkey: standard input: %s%s", strerror(-err),
			 err == -EFBIG ? " (at most 64 KiB)" : "");
		goto out;
	}
	if (t == ALG_SKCIPHER) {
		outlen = inlen;
	} else if (t == ALG_HASH) {
		outlen = ALG_DIGEST_MAX;
	} else if (!decrypt) {
		outlen = inlen + taglen;
	} else {
		if (inlen < (size_t)assoclen + taglen) {
			fail_msg("alg setkey: input shorter than assoc-len + tag-len");
			goto out;
		}
		outlen = inlen - taglen;
	}
	if (t != ALG_HASH && (!inlen || inlen < assoclen)) {
		fail_msg("alg setkey: nothing to %s", decrypt ? "decrypt" : "encrypt");
		goto out;
	}

	tfm = qkd_alg_tfm(type_s, name);
	if (tfm < 0) {
		crypto_error("alg setkey: AF_ALG socket", tfm);
		goto out;
	}
	if (t == ALG_AEAD &&
	    setsockopt(tfm, SOL_ALG, ALG_SET_AEAD_AUTHSIZE, NULL, taglen)) {
		fail_msg("alg setkey: tag-len %u: %s (no key taken)", taglen,
			 strerror(errno));
		goto out;
	}
	err = qkd_alg_setkey(ctl_dev(), tfm, id, &sel, key_len, &used);
	if (err) {
		crypto_error("alg setkey", err);
		goto out;
	}
	/* Standard output is the data: which key it was goes to stderr. */
	fputs("qkdctl: alg setkey: ", stderr);
	print_used(stderr, &used);

	n = alg_run(tfm, t, decrypt ? ALG_OP_DECRYPT : ALG_OP_ENCRYPT, iv,
		    (uint32_t)ivlen, assoclen, in, inlen, out, outlen);
	if (n < 0) {
		fail_msg("alg setkey: %s: %s (the key was used)",
			 decrypt ? "decrypt" : "encrypt", strerror((int)-n));
		goto out;
	}
	err = write_all(out, (size_t)n);
	if (err) {
		fail_msg("alg setkey: standard output: %s", strerror(-err));
		goto out;
	}
	ret = 0;
out:
	if (tfm >= 0)
		close(tfm);
	if (in)
		qkd_free_secret(in, ALG_INPUT_MAX + 1);
	if (out)
		qkd_free_secret(out, ALG_INPUT_MAX + ALG_DIGEST_MAX + 64);
	return ret;
}

int do_alg(int argc, char **argv)
{
	const char *verb;

	if (argc < 2)
		usage_error("alg: missing command (setkey)");
	verb = argv[1];
	if (matches(verb, "setkey"))
		return alg_setkey(argc - 2, argv + 2);
	usage_error("alg: unknown command \"%s\"", verb);
}

/* ------------------------------------------------------------ keyrings */

/* "index N key-id UUID len N" of a qkd key, from /proc/keys. */
static bool qkd_key_proc(int32_t serial, struct qkd_key_used *u)
{
	char line[1024], pfx[16], kid[QKD_UUID_STR_LEN];
	unsigned long long index;
	bool found = false;
	const char *p;
	FILE *f;

	f = fopen("/proc/keys", "re");
	if (!f)
		return false;
	snprintf(pfx, sizeof(pfx), "%08x ", (uint32_t)serial);
	while (!found && fgets(line, sizeof(line), f)) {
		if (strncmp(line, pfx, strlen(pfx)))
			continue;
		p = strstr(line, ": stream ");
		if (p && sscanf(p, ": stream %*36s index %llu key-id %36s len %u",
				&index, kid, &u->key_len) == 3 &&
		    !qkd_uuid_parse(kid, u->key_id)) {
			u->index = index;
			found = true;
		}
	}
	fclose(f);
	return found;
}

int key_to_keyring(int argc, char **argv)
{
	uint8_t id[QKD_STREAM_ID_LEN];
	const char *desc = NULL, *ring_s = "@s";
	struct qkd_key_sel sel = { 0 };
	struct qkd_key_used used = { 0 };
	char kid[QKD_UUID_STR_LEN];
	bool logon = false, known = true;
	uint32_t key_len = 0;
	int32_t ring, serial;
	int i = 0, err;

	if (argc < 1)
		usage_error("key to-keyring: missing UUID");
	arg_uuid("stream id", argv[i++], id);
	while (i < argc) {
		if (arg_key_sel(argc, argv, &i, id, &sel))
			continue;
		if (!strcmp(argv[i], "type")) {
			const char *v = arg_next(argc, argv, &i);

			if (!strcmp(v, "logon"))
				logon = true;
			else if (strcmp(v, "qkd"))
				usage_error("type \"%s\": expected qkd or logon", v);
		} else if (!strcmp(argv[i], "desc")) {
			desc = arg_next(argc, argv, &i);
		} else if (!strcmp(argv[i], "keyring")) {
			ring_s = arg_next(argc, argv, &i);
		} else if (!strcmp(argv[i], "key-len")) {
			key_len = arg_u32("key-len", arg_next(argc, argv, &i));
		} else {
			usage_error("key to-keyring: unknown argument \"%s\"",
				    argv[i]);
		}
	}
	if (qkd_keyring_parse(ring_s, &ring))
		usage_error("keyring \"%s\": expected @t, @p, @s, @u, @us or a serial",
			    ring_s);
	if (logon && desc && (desc[0] == ':' || !strchr(desc, ':')))
		usage_error("desc \"%s\": a logon key's description is \"prefix:name\"",
			    desc);

	if (logon) {
		err = qkd_logon_key(ctl_dev(), id, &sel, key_len, desc, ring,
				    &serial, &used);
	} else {
		serial = qkd_keyring_add(ctl_dev(), id, &sel, key_len, desc,
					 ring);
		err = serial < 0 ? serial : 0;
		if (!err)
			known = qkd_key_proc(serial, &used);
	}
	if (err)
		return crypto_error("key to-keyring", err);

	qkd_uuid_format(used.key_id, kid);
	switch (opts.out) {
	case OUT_JSON:
		json_open('{');
		json_u64("serial", (uint32_t)serial);
		json_str("type", logon ? "logon" : "qkd");
		json_uuid("stream", id);
		if (known) {
			json_u64("index", used.index);
			json_str("key_id", kid);
			json_u64("key_len", used.key_len);
		}
		json_close('}');
		json_end();
		break;
	case OUT_TAB:
		if (known)
			printf("%d\t%llu\t%s\t%u\n", serial,
			       (unsigned long long)used.index, kid,
			       used.key_len);
		else
			printf("%d\n", serial);
		break;
	default:
		printf("serial %d", serial);
		if (known)
			printf(" index %llu key-id %s key-len %u",
			       (unsigned long long)used.index, kid,
			       used.key_len);
		putchar('\n');
	}
	return 0;
}
