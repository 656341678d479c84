// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd: AF_ALG sockets and keyring keys keyed from the store.
 *
 * The transform socket is made with raw AF_ALG calls, not libkcapi: the
 * kernel needs the socket's fd, and libkcapi's handle does not expose it
 * (Documentation/kernel-api.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/if_alg.h>
#include <linux/keyctl.h>

#include <qkd/crypto.h>
#include <qkd/util.h>

#ifndef AF_ALG
#define AF_ALG 38
#endif

int qkd_alg_tfm(const char *type, const char *name)
{
	struct sockaddr_alg sa = { .salg_family = AF_ALG };
	int fd, err;

	if (strlen(type) >= sizeof(sa.salg_type) ||
	    strlen(name) >= sizeof(sa.salg_name))
		return -ENAMETOOLONG;
	memcpy(sa.salg_type, type, strlen(type));
	memcpy(sa.salg_name, name, strlen(name));
	fd = socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int do_ioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int qkd_alg_setkey(int dev, int algfd, const uint8_t stream[QKD_STREAM_ID_LEN],
		   const struct qkd_key_sel *sel, uint32_t key_len,
		   struct qkd_key_used *used)
{
	struct qkd_alg_setkey r = { 0 };
	int err;

	r.size = sizeof(r);
	r.flags = sel ? sel->flags : 0;
	memcpy(r.stream_id, stream, QKD_STREAM_ID_LEN);
	if (sel) {
		r.index = sel->index;
		memcpy(r.key_id, sel->key_id, QKD_KEY_ID_LEN);
	}
	r.key_len = key_len;
	r.alg_fd = algfd;
	err = do_ioctl(dev, QKD_IOC_ALG_SETKEY, &r);
	if (err)
		return err;
	if (used) {
		used->index = r.index;
		memcpy(used->key_id, r.key_id, QKD_KEY_ID_LEN);
		used->key_len = r.key_len;
	}
	return 0;
}

int qkd_logon_key(int dev, const uint8_t stream[QKD_STREAM_ID_LEN],
		  const struct qkd_key_sel *sel, uint32_t key_len,
		  const char *desc, int32_t keyring, int32_t *serial,
		  struct qkd_key_used *used)
{
	struct qkd_logon_key r = { 0 };
	int err;

	r.size = sizeof(r);
	r.flags = sel ? sel->flags : 0;
	memcpy(r.stream_id, stream, QKD_STREAM_ID_LEN);
	if (sel) {
		r.index = sel->index;
		memcpy(r.key_id, sel->key_id, QKD_KEY_ID_LEN);
	}
	r.key_len = key_len;
	r.keyring = keyring;
	r.desc_ptr = (uint64_t)(uintptr_t)(desc && *desc ? desc : NULL);
	err = do_ioctl(dev, QKD_IOC_LOGON_KEY, &r);
	if (err)
		return err;
	if (serial)
		*serial = r.serial;
	if (used) {
		used->index = r.index;
		memcpy(used->key_id, r.key_id, QKD_KEY_ID_LEN);
		used->key_len = r.key_len;
	}
	return 0;
}

int32_t qkd_keyring_add(int dev, const uint8_t stream[QKD_STREAM_ID_LEN],
			const struct qkd_key_sel *sel, uint32_t key_len,
			const char *desc, int32_t keyring)
{
	char spec[200], sid[QKD_UUID_STR_LEN], kid[QKD_UUID_STR_LEN];
	int n;
	long r;

	qkd_uuid_format(stream, sid);
	n = snprintf(spec, sizeof(spec), "fd=%d stream=%s", dev, sid);
	if (sel && sel->flags == QKD_USE_F_BY_INDEX) {
		n += snprintf(spec + n, sizeof(spec) - n, " index=%llu",
			      (unsigned long long)sel->index);
	} else if (sel && sel->flags == QKD_USE_F_BY_KEY_ID) {
		qkd_uuid_format(sel->key_id, kid);
		n += snprintf(spec + n, sizeof(spec) - n, " key-id=%s", kid);
	} else if (sel && sel->flags) {
		return -EINVAL;
	}
	if (key_len)
		n += snprintf(spec + n, sizeof(spec) - n, " len=%u", key_len);
	/* An empty description asks the kernel for "qkd:<key_ID>". */
	r = syscall(SYS_add_key, "qkd", desc ? desc : "", spec, (size_t)n,
		    keyring);
	return r < 0 ? -errno : (int32_t)r;
}

int qkd_keyring_parse(const char *s, int32_t *out)
{
	static const struct {
		const char *name;
		int32_t id;
	} special[] = {
		{ "@t", KEY_SPEC_THREAD_KEYRING },
		{ "@p", KEY_SPEC_PROCESS_KEYRING },
		{ "@s", KEY_SPEC_SESSION_KEYRING },
		{ "@u", KEY_SPEC_USER_KEYRING },
		{ "@us", KEY_SPEC_USER_SESSION_KEYRING },
	};
	uint32_t v;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(special); i++) {
		if (!strcmp(s, special[i].name)) {
			*out = special[i].id;
			return 0;
		}
	}
	if (qkd_parse_u32(s, &v) || !v || v > INT32_MAX)
		return -EINVAL;
	*out = (int32_t)v;
	return 0;
}
