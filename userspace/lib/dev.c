// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd: /dev/qkd ioctl wrappers.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <qkd/dev.h>

int qkd_dev_open(const char *path)
{
	int fd = open(path ? path : QKD_DEV_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}

static int do_ioctl(int fd, unsigned long req, void *arg)
{
	int r;

	do {
		r = ioctl(fd, req, arg);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : 0;
}

int qkd_dev_info(int fd, struct qkd_info *out)
{
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	return do_ioctl(fd, QKD_IOC_INFO, out);
}

int qkd_dev_stream_status(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
			  struct qkd_stream_status *out)
{
	memset(out, 0, sizeof(*out));
	out->size = sizeof(*out);
	memcpy(out->stream_id, stream, QKD_STREAM_ID_LEN);
	return do_ioctl(fd, QKD_IOC_STREAM_STATUS, out);
}

static int get_key(int fd, unsigned long req, struct qkd_key_request *r,
		   uint8_t *key, size_t buflen, size_t *key_len)
{
	int err;

	r->size = sizeof(*r);
	r->key_len = buflen > UINT32_MAX ? UINT32_MAX : (uint32_t)buflen;
	r->key_ptr = (uint64_t)(uintptr_t)key;
	err = do_ioctl(fd, req, r);
	if (err)
		return err;
	if (r->key_len > buflen)	/* a kernel bug: never trust it */
		return -EPROTO;
	if (key_len)
		*key_len = r->key_len;
	return 0;
}

int qkd_dev_get_key(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		    uint8_t *key, size_t buflen, size_t *key_len,
		    uint64_t *index, uint8_t key_id[QKD_KEY_ID_LEN])
{
	struct qkd_key_request r = { 0 };
	int err;

	memcpy(r.stream_id, stream, QKD_STREAM_ID_LEN);
	err = get_key(fd, QKD_IOC_GET_KEY, &r, key, buflen, key_len);
	if (err)
		return err;
	if (index)
		*index = r.index;
	if (key_id)
		memcpy(key_id, r.key_id, QKD_KEY_ID_LEN);
	return 0;
}

int qkd_dev_get_keys(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		     uint32_t number, uint32_t flags, uint8_t *keys,
		     size_t buflen, uint64_t *indices, uint32_t *got,
		     uint32_t *key_size)
{
	struct qkd_keys_request r = { 0 };
	int err;

	r.size = sizeof(r);
	r.flags = flags;
	memcpy(r.stream_id, stream, QKD_STREAM_ID_LEN);
	r.number = number;
	r.keys_len = buflen > UINT32_MAX ? UINT32_MAX : (uint32_t)buflen;
	r.keys_ptr = (uint64_t)(uintptr_t)keys;
	r.indices_ptr = (uint64_t)(uintptr_t)indices;
	err = do_ioctl(fd, QKD_IOC_GET_KEYS, &r);
	if (err)
		return err;
	/* a kernel bug: never trust it */
	if (r.number > number || (uint64_t)r.number * r.key_size > buflen)
		return -EPROTO;
	if (got)
		*got = r.number;
	if (key_size)
		*key_size = r.key_size;
	return 0;
}

int qkd_dev_get_key_by_index(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
			     uint64_t index, uint8_t *key, size_t buflen,
			     size_t *key_len, uint8_t key_id[QKD_KEY_ID_LEN])
{
	struct qkd_key_request r = { 0 };
	int err;

	memcpy(r.stream_id, stream, QKD_STREAM_ID_LEN);
	r.index = index;
	err = get_key(fd, QKD_IOC_GET_KEY_BY_ID, &r, key, buflen, key_len);
	if (err)
		return err;
	if (key_id)
		memcpy(key_id, r.key_id, QKD_KEY_ID_LEN);
	return 0;
}

int qkd_dev_get_key_by_id(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
			  const uint8_t key_id[QKD_KEY_ID_LEN], uint8_t *key,
			  size_t buflen, size_t *key_len, uint64_t *index)
{
	struct qkd_key_request r = { 0 };
	int err;

	memcpy(r.stream_id, stream, QKD_STREAM_ID_LEN);
	memcpy(r.key_id, key_id, QKD_KEY_ID_LEN);
	r.flags = QKD_KEY_F_BY_KEY_ID;
	err = get_key(fd, QKD_IOC_GET_KEY_BY_ID, &r, key, buflen, key_len);
	if (err)
		return err;
	if (index)
		*index = r.index;
	return 0;
}

int qkd_dev_set_poll_stream(int fd, const uint8_t stream[QKD_STREAM_ID_LEN])
{
	struct qkd_poll_stream p = { 0 };

	p.size = sizeof(p);
	memcpy(p.stream_id, stream, QKD_STREAM_ID_LEN);
	return do_ioctl(fd, QKD_IOC_SET_POLL_STREAM, &p);
}

int qkd_dev_enc_keys(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		     uint32_t number, uint8_t *keys, size_t buflen,
		     uint8_t (*key_ids)[QKD_KEY_ID_LEN], uint32_t *got,
		     uint32_t *key_size)
{
	uint64_t indices[QKD_GET_KEYS_MAX];
	uint32_t n = 0, i;
	int err;

	if (got)
		*got = 0;
	if (!stream || !keys || !number || number > QKD_GET_KEYS_MAX)
		return -EINVAL;
	err = qkd_dev_get_keys(fd, stream, number, 0, keys, buflen, indices,
			       &n, key_size);
	if (err)
		return err;
	if (n != number)	/* all or nothing: a kernel bug otherwise */
		return -EPROTO;
	for (i = 0; key_ids && i < n; i++)
		qkd_key_id_from_index(key_ids[i], stream, indices[i]);
	if (got)
		*got = n;
	return 0;
}

int qkd_dev_dec_keys(int fd, const uint8_t stream[QKD_STREAM_ID_LEN],
		     const uint8_t (*key_ids)[QKD_KEY_ID_LEN], uint32_t number,
		     uint8_t *keys, size_t buflen, uint32_t *taken,
		     uint32_t *key_size)
{
	struct qkd_stream_status st;
	uint32_t i, j;
	size_t ksz;
	int err;

	if (taken)
		*taken = 0;
	if (!stream || !key_ids || !keys || !number ||
	    number > QKD_GET_KEYS_MAX)
		return -EINVAL;
	for (i = 0; i < number; i++) {
		/* bytes 0..8 are the stream's: of this stream, below 2^56 */
		if (memcmp(key_ids[i], stream, 9))
			return -EINVAL;
		for (j = 0; j < i; j++)
			if (!memcmp(key_ids[i], key_ids[j], QKD_KEY_ID_LEN))
				return -EINVAL;
	}
	err = qkd_dev_stream_status(fd, stream, &st);
	if (err)
		return err;
	ksz = st.key_size;
	if (!ksz || buflen / ksz < number)
		return -ERANGE;
	for (i = 0; i < number; i++) {
		err = qkd_dev_get_key_by_id(fd, stream, key_ids[i],
					    keys + i * ksz, ksz, NULL, NULL);
		if (err) {
			explicit_bzero(keys, (size_t)(i + 1) * ksz);
			break;
		}
		if (taken)
			*taken = i + 1;
	}
	if (!err && key_size)
		*key_size = st.key_size;
	return err;
}
