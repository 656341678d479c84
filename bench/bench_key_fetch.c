// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_key_fetch: cost of taking one 32-byte key through /dev/qkd
 * (QKD_IOC_GET_KEY) and of one genl round trip (STREAM_GET), as ratios to a
 * trivial syscall (getppid) measured in the same run. Goal: a key fetch
 * costs at most 3x getppid. Also per key through QKD_IOC_GET_KEYS (ETSI 014
 * "number"), which takes 64 or 256 keys in one call. And side by side with
 * the raw ioctl, the same one-key fetch through libqkd: its ioctl wrapper
 * qkd_dev_get_key() and the ETSI 004 qkd_get_key() (a connection lookup,
 * the ioctl, and with metadata its JSON), with keys/s and the ratio to the
 * raw ioctl.
 *
 * Then the other direction, the push into the store (issue 16, "the kernel
 * keeps up"): genl KEY_ADD of 1, 16, 128 and 1024 32-byte keys a message
 * (32 bytes to QKD_KEY_BATCH_MAX_BYTES), each with its ACK, as keys/s and
 * MB/s and as the cost of a message against getppid() and against a genl
 * round trip that carries no key (STREAM_GET). Goal: the record link's key
 * rate, 115.8 Mbit/s of secret key, in 32-byte keys: 452 344 keys/s.
 *
 * Runs where qkd.ko is loaded (in the VM: bench/run-vm-bench.sh), as root.
 * It creates its own link and stream in the current netns and removes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <linux/qkd.h>
#include <linux/qkd_dev.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include <qkd/dev.h>
#include <qkd/etsi004.h>
#include <qkd/util.h>

#define KEY_SIZE 32
#define BATCH 1000		/* keys per KEY_ADD: 32000 bytes */
#define ROUNDS 5
/* The record link's secret key rate (Mbit/s) in 32-byte keys per second. */
#define RECORD_KEYS_PER_S (115.8e6 / (KEY_SIZE * 8))
/* Keys a KEY_ADD timing pushes per message size: 32 full messages. */
#define PUSH_KEYS_PER_SIZE (32 * (QKD_KEY_BATCH_MAX_BYTES / KEY_SIZE))

static const uint8_t stream_id[QKD_STREAM_ID_LEN] = {
	0xbe, 0x9c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x00,
	0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
};

static struct nl_sock *sk;
static int family;
static int acked;

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int genl_call(uint8_t cmd, int (*fill)(struct nl_msg *msg, void *arg),
		     void *arg)
{
	struct nl_msg *msg = nlmsg_alloc_size(QKD_KEY_BATCH_MAX_BYTES + 4096);
	int err;

	if (!msg)
		return -NLE_NOMEM;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, cmd,
			 QKD_FAMILY_VERSION) ||
	    (fill && fill(msg, arg) < 0)) {
		nlmsg_free(msg);
		return -NLE_NOMEM;
	}
	err = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	if (err < 0)
		return err;
	/* Replies go to ignore_reply(); the ACK ends the call. */
	acked = 0;
	while (!acked) {
		err = nl_recvmsgs_default(sk);
		if (err < 0)
			return err;
	}
	return 0;
}

static int fill_link(struct nl_msg *msg, void *arg)
{
	(void)arg;
	return nla_put_string(msg, QKD_A_LINK_NAME, "bench") ?:
	       nla_put_u8(msg, QKD_A_LINK_ROLE, QKD_LINK_ROLE_INITIATOR);
}

static int fill_stream(struct nl_msg *msg, void *arg)
{
	(void)arg;
	return nla_put(msg, QKD_A_STREAM_ID, sizeof(stream_id), stream_id) ?:
	       nla_put_string(msg, QKD_A_STREAM_LINK_NAME, "bench") ?:
	       nla_put_u32(msg, QKD_A_STREAM_KEY_SIZE, KEY_SIZE) ?:
	       nla_put_u32(msg, QKD_A_STREAM_MAX_KEYS, PUSH_KEYS_PER_SIZE);
}

static int fill_stream_ref(struct nl_msg *msg, void *arg)
{
	(void)arg;
	return nla_put(msg, QKD_A_STREAM_ID, sizeof(stream_id), stream_id);
}

static int fill_keys_ref(struct nl_msg *msg, void *arg)
{
	(void)arg;
	return nla_put(msg, QKD_A_KEYS_STREAM_ID, sizeof(stream_id), stream_id);
}

struct push {
	uint64_t first;
	uint8_t *data;
	size_t len;
};

static int fill_push(struct nl_msg *msg, void *arg)
{
	struct push *p = arg;

	return nla_put(msg, QKD_A_KEYS_STREAM_ID, sizeof(stream_id), stream_id) ?:
	       nla_put_u64(msg, QKD_A_KEYS_FIRST_INDEX, p->first) ?:
	       nla_put(msg, QKD_A_KEYS_DATA, (int)p->len, p->data);
}

static int fill_link_ref(struct nl_msg *msg, void *arg)
{
	(void)arg;
	return nla_put_string(msg, QKD_A_LINK_NAME, "bench");
}

static int ignore_reply(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_OK;
}

static int on_ack(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	acked = 1;
	return NL_STOP;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_key_fetch: %s: %s\n", what,
		err < 0 ? nl_geterror(err) : strerror(err));
	exit(1);
}

/*
 * KEY_ADD throughput: for each message size, best of ROUNDS, each pushing
 * PUSH_KEYS_PER_SIZE keys (the stream is flushed between timings, outside
 * the clock; its max_keys holds one timing's keys). Indices go on from
 * next: a flushed index is not pushed again.
 */
static void bench_key_add(double syscall_ns, double genl_ns, uint64_t next)
{
	static const uint32_t keys_per_msg[] = {
		1, 16, 128, QKD_KEY_BATCH_MAX_BYTES / KEY_SIZE,
	};
	static uint8_t data[QKD_KEY_BATCH_MAX_BYTES];
	double best[4] = { 1e30, 1e30, 1e30, 1e30 };
	unsigned int m;
	int r, i, err;

	for (i = 0; i < (int)sizeof(data); i++)
		data[i] = (uint8_t)(i * 13 + 5);
	for (r = 0; r < ROUNDS; r++) {
		for (m = 0; m < 4; m++) {
			uint32_t n = keys_per_msg[m];
			int msgs = PUSH_KEYS_PER_SIZE / (int)n;
			double t0, t;

			/* 1 key a message: 1/32 of the keys, still 1024 messages */
			if (n == 1)
				msgs /= 32;
			err = genl_call(QKD_CMD_KEY_FLUSH, fill_keys_ref, NULL);
			if (err < 0)
				die("key flush", err);
			t0 = now_ns();
			for (i = 0; i < msgs; i++) {
				struct push p = { .first = next, .data = data,
						  .len = (size_t)n * KEY_SIZE };

				err = genl_call(QKD_CMD_KEY_ADD, fill_push, &p);
				if (err < 0)
					die("KEY_ADD", err);
				next += n;
			}
			t = (now_ns() - t0) / msgs;
			best[m] = t < best[m] ? t : best[m];
		}
	}
	genl_call(QKD_CMD_KEY_FLUSH, fill_keys_ref, NULL);

	printf("\n%-26s %11s %12s %9s %10s %10s %9s\n", "KEY_ADD, 32-byte keys",
	       "ns/message", "keys/s", "MB/s", "x getppid", "x genl rt",
	       "x record");
	for (m = 0; m < 4; m++) {
		double kps = keys_per_msg[m] * 1e9 / best[m];
		char what[40];

		snprintf(what, sizeof(what), "%u keys (%u bytes)/message",
			 keys_per_msg[m], keys_per_msg[m] * KEY_SIZE);
		printf("%-26s %11.0f %12.0f %9.1f %10.2f %10.2f %9.2f\n", what,
		       best[m], kps, kps * KEY_SIZE / 1e6, best[m] / syscall_ns,
		       best[m] / genl_ns, kps / RECORD_KEYS_PER_S);
	}
	printf("goal: KEY_ADD keeps up with the record link (%.0f keys/s) with %u keys a message: %s (x%.2f)\n",
	       RECORD_KEYS_PER_S, keys_per_msg[3],
	       keys_per_msg[3] * 1e9 / best[3] >= RECORD_KEYS_PER_S ? "met" : "NOT met",
	       keys_per_msg[3] * 1e9 / best[3] / RECORD_KEYS_PER_S);
}

int main(void)
{
	static uint8_t data[BATCH * KEY_SIZE];
	struct qkd_key_request req;
	double t0, syscall_ns = 1e30, ioctl_ns = 1e30, genl_ns = 1e30, info_ns = 1e30;
	static const uint32_t per_call[] = { 64, QKD_GET_KEYS_MAX };
	static uint8_t many[QKD_GET_KEYS_MAX * KEY_SIZE];
	static uint64_t indices[QKD_GET_KEYS_MAX];
	double keys_ns[2] = { 1e30, 1e30 };
	/* one key a call: raw ioctl, qkd_dev_get_key, qkd_get_key, + metadata */
	static const char *const lib_what[] = {
		"QKD_IOC_GET_KEY (raw ioctl)", "libqkd qkd_dev_get_key()",
		"libqkd qkd_get_key() (ETSI 004)", "qkd_get_key() with metadata",
	};
	double lib_ns[4] = { 1e30, 1e30, 1e30, 1e30 };
	struct qkd_qos qos = { 0 };
	uint8_t ksid[QKD_004_KSID_LEN];
	char meta[256], dest[64], uuid[QKD_UUID_STR_LEN];
	struct qkd_metadata md;
	uint64_t index;
	uint32_t st;
	struct qkd_keys_request kr;
	unsigned int m;
	struct qkd_info info;
	uint8_t key[KEY_SIZE];
	uint64_t next = 0;
	int fd, err, r, i;

	sk = nl_socket_alloc();
	if (!sk || genl_connect(sk))
		die("netlink socket", ENOMEM);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, ignore_reply, NULL);
	nl_socket_modify_cb(sk, NL_CB_ACK, NL_CB_CUSTOM, on_ack, NULL);
	family = genl_ctrl_resolve(sk, QKD_FAMILY_NAME);
	if (family < 0)
		die("resolving the qkd family (is qkd.ko loaded?)", family);
	fd = open("/dev/qkd", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("/dev/qkd", errno);

	genl_call(QKD_CMD_LINK_DEL, fill_link_ref, NULL);
	err = genl_call(QKD_CMD_LINK_NEW, fill_link, NULL);
	if (err < 0)
		die("link add", err);
	err = genl_call(QKD_CMD_STREAM_NEW, fill_stream, NULL);
	if (err < 0)
		die("stream add", err);
	qkd_uuid_format(stream_id, uuid);
	snprintf(dest, sizeof(dest), "qkd://bench/%s", uuid);
	memset(ksid, 0, sizeof(ksid));
	st = qkd_open_connect("qkd://localhost", dest, &qos, ksid);
	if (st != QKD_STATUS_SUCCESSFUL) {
		fprintf(stderr, "bench_key_fetch: qkd_open_connect: %s\n",
			qkd_004_status_name(st));
		return 1;
	}

	/* Best of ROUNDS, each over BATCH operations: the least disturbed run. */
	for (r = 0; r < ROUNDS; r++) {
		struct push p = { .first = next, .data = data, .len = sizeof(data) };
		double t;

		for (i = 0; i < (int)sizeof(data); i++)
			data[i] = (uint8_t)(i * 7 + r);
		err = genl_call(QKD_CMD_KEY_ADD, fill_push, &p);
		if (err < 0)
			die("key push", err);
		next += BATCH;

		t0 = now_ns();
		for (i = 0; i < BATCH; i++)
			(void)getppid();
		t = (now_ns() - t0) / BATCH;
		syscall_ns = t < syscall_ns ? t : syscall_ns;

		/* The floor of any ioctl on this device: QKD_IOC_INFO. */
		t0 = now_ns();
		for (i = 0; i < BATCH; i++) {
			memset(&info, 0, sizeof(info));
			info.size = sizeof(info);
			if (ioctl(fd, QKD_IOC_INFO, &info))
				die("QKD_IOC_INFO", errno);
		}
		t = (now_ns() - t0) / BATCH;
		info_ns = t < info_ns ? t : info_ns;

		t0 = now_ns();
		for (i = 0; i < BATCH; i++) {
			memset(&req, 0, sizeof(req));
			req.size = sizeof(req);
			memcpy(req.stream_id, stream_id, sizeof(stream_id));
			req.key_len = sizeof(key);
			req.key_ptr = (uintptr_t)key;
			if (ioctl(fd, QKD_IOC_GET_KEY, &req))
				die("QKD_IOC_GET_KEY", errno);
		}
		t = (now_ns() - t0) / BATCH;
		ioctl_ns = t < ioctl_ns ? t : ioctl_ns;
		if (req.index != next - 1)
			die("keys out of order", EPROTO);

		lib_ns[0] = ioctl_ns;
		/* One key a call through libqkd: its wrapper, then 004. */
		for (m = 1; m < 4; m++) {
			p = (struct push){ .first = next, .data = data,
					   .len = sizeof(data) };
			err = genl_call(QKD_CMD_KEY_ADD, fill_push, &p);
			if (err < 0)
				die("key push", err);
			next += BATCH;
			t0 = now_ns();
			for (i = 0; i < BATCH; i++) {
				if (m == 1) {
					err = qkd_dev_get_key(fd, stream_id, key, sizeof(key),
							      NULL, &index, NULL);
					if (err)
						die("qkd_dev_get_key", -err);
					continue;
				}
				index = QKD_004_INDEX_NEXT;
				md.metadata_size = sizeof(meta);
				md.metadata_buffer = meta;
				st = qkd_get_key(ksid, &index, key, m == 3 ? &md : NULL);
				if (st != QKD_STATUS_SUCCESSFUL)
					die(qkd_004_status_name(st), errno);
			}
			t = (now_ns() - t0) / BATCH;
			lib_ns[m] = t < lib_ns[m] ? t : lib_ns[m];
			if (index != next - 1)
				die("keys out of order", EPROTO);
		}

		/* The same number of keys again, several per call. */
		for (m = 0; m < 2; m++) {
			int calls = BATCH / (int)per_call[m];

			p = (struct push){ .first = next, .data = data,
					   .len = sizeof(data) };
			err = genl_call(QKD_CMD_KEY_ADD, fill_push, &p);
			if (err < 0)
				die("key push", err);
			next += BATCH;
			t0 = now_ns();
			for (i = 0; i < calls; i++) {
				memset(&kr, 0, sizeof(kr));
				kr.size = sizeof(kr);
				memcpy(kr.stream_id, stream_id, sizeof(stream_id));
				kr.number = per_call[m];
				kr.keys_len = sizeof(many);
				kr.keys_ptr = (uintptr_t)many;
				kr.indices_ptr = (uintptr_t)indices;
				if (ioctl(fd, QKD_IOC_GET_KEYS, &kr))
					die("QKD_IOC_GET_KEYS", errno);
			}
			t = (now_ns() - t0) / (calls * per_call[m]);
			keys_ns[m] = t < keys_ns[m] ? t : keys_ns[m];
			/* what a call left over goes with a flush */
			genl_call(QKD_CMD_KEY_FLUSH, fill_keys_ref, NULL);
		}

		t0 = now_ns();
		for (i = 0; i < BATCH / 10; i++) {
			err = genl_call(QKD_CMD_STREAM_GET, fill_stream_ref, NULL);
			if (err < 0)
				die("stream get", err);
		}
		t = (now_ns() - t0) / (BATCH / 10);
		genl_ns = t < genl_ns ? t : genl_ns;
	}
	explicit_bzero(key, sizeof(key));
	explicit_bzero(many, sizeof(many));
	qkd_close(ksid);
	genl_call(QKD_CMD_KEY_FLUSH, fill_keys_ref, NULL);
	bench_key_add(syscall_ns, genl_ns, next);
	genl_call(QKD_CMD_LINK_DEL, fill_link_ref, NULL);
	close(fd);
	nl_socket_free(sk);

	printf("%-36s %12s %10s\n", "operation", "ns/op", "x getppid");
	printf("%-36s %12.0f %10.2f\n", "getppid() (baseline)", syscall_ns, 1.0);
	printf("%-36s %12.0f %10.2f\n", "QKD_IOC_INFO (ioctl floor)", info_ns,
	       info_ns / syscall_ns);
	printf("%-36s %12.0f %10.2f\n", "QKD_IOC_GET_KEY, 32-byte key", ioctl_ns,
	       ioctl_ns / syscall_ns);
	for (m = 0; m < 2; m++) {
		char what[48];

		snprintf(what, sizeof(what), "QKD_IOC_GET_KEYS, per key (%u/call)",
			 per_call[m]);
		printf("%-36s %12.0f %10.2f\n", what, keys_ns[m],
		       keys_ns[m] / syscall_ns);
	}
	printf("%-36s %12.0f %10.2f\n", "genl STREAM_GET round trip", genl_ns,
	       genl_ns / syscall_ns);
	printf("\n%-36s %12s %12s %10s\n", "one 32-byte key a call", "ns/key",
	       "keys/s", "x ioctl");
	for (m = 0; m < 4; m++)
		printf("%-36s %12.0f %12.0f %10.2f\n", lib_what[m], lib_ns[m],
		       1e9 / lib_ns[m], lib_ns[m] / lib_ns[0]);
	printf("\nkeys/s: one per ioctl %.0f, %u per ioctl %.0f\n", 1e9 / ioctl_ns,
	       per_call[1], 1e9 / keys_ns[1]);
	printf("goal: a key fetch <= 3x getppid: one key per ioctl %s (%.2fx), batched %s (%.2fx)\n",
	       ioctl_ns <= 3 * syscall_ns ? "met" : "NOT met", ioctl_ns / syscall_ns,
	       keys_ns[1] <= 3 * syscall_ns ? "met" : "NOT met",
	       keys_ns[1] / syscall_ns);
	return 0;
}
