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
 * And the same keys as an application of ETSI GS QKD 014 takes them
 * (issue 17): enc_keys through qkd-kme over HTTPS with a client
 * certificate, from libcurl, one request at a time: over one kept-alive
 * connection (one easy handle reused), and over a new TCP connection and
 * mutual-TLS handshake for each request (a new easy handle each, no
 * session cache), one key a request; and kept alive with
 * QKD_GET_KEYS_MAX keys a request. Each request is timed on its own: the
 * median and p99 latency, keys/s, and both as ratios to the raw ioctl
 * timed the same way in the same run. The benchmark starts qkd-kme itself
 * (--kme PATH) on 127.0.0.1 with the certificates of --pki DIR (made by
 * tools/demo-pki.sh: ca.crt, kme.crt/.key with IP 127.0.0.1, sae-a.crt/.key
 * with CN sae-a), pushes every key a row can take before the row, and
 * fails (exit 1, the KME's log printed) when qkd-kme does not start or a
 * request is not answered as it must be: never a zero row. --no-kme
 * leaves the HTTPS rows out, saying so.
 *
 * Runs where qkd.ko is loaded (in the VM: bench/run-vm-bench.sh), as root.
 * It creates its own link and stream in the current netns and removes them.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

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
static uint64_t bench_key_add(double syscall_ns, double genl_ns, uint64_t next)
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
	return next;
}

/* ---- ETSI 014 through qkd-kme over HTTPS (issue 17) ---- */

#define KME_PORT_DEFAULT 18443
#define KME_START_S 90		/* qkd-kme must answer within this (TCG) */
#define BODY_MAX (QKD_GET_KEYS_MAX * 160 + 4096)

struct kme {
	const char *bin;	/* --kme */
	const char *pki;	/* --pki */
	unsigned int port;
	pid_t pid;
	char conf[PATH_MAX], log[PATH_MAX];
	char ca[PATH_MAX], crt[PATH_MAX], key[PATH_MAX];
	char url_status[128], url_enc[128];
};

static struct kme kme = { .port = KME_PORT_DEFAULT, .pid = -1 };

/* A reply's body; key bytes in base64, wiped after each check. */
static char body[BODY_MAX];
static size_t body_len;

/* Keys of the HTTPS rows: key k of a row is pattern key (k % BATCH). */
static uint8_t pattern[BATCH * KEY_SIZE];

static void kme_print_log(void)
{
	char line[512];
	FILE *f = fopen(kme.log, "r");

	if (!f) {
		fprintf(stderr, "bench_key_fetch: no qkd-kme log (%s)\n", kme.log);
		return;
	}
	fprintf(stderr, "bench_key_fetch: qkd-kme's log (%s):\n", kme.log);
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "  | %s", line);
	fclose(f);
}

static void kme_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void kme_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench_key_fetch: qkd-kme (HTTPS rows): ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	kme_print_log();
	exit(1);
}

/* atexit: a KME still running is stopped, whatever ended the run. */
static void kme_kill(void)
{
	if (kme.pid > 0) {
		kill(kme.pid, SIGTERM);
		waitpid(kme.pid, NULL, 0);
		kme.pid = -1;
	}
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	size_t n = size * nmemb;

	(void)arg;
	if (n > sizeof(body) - 1 - body_len)
		return 0;	/* too long: the transfer fails */
	memcpy(body + body_len, data, n);
	body_len += n;
	return n;
}

static void body_wipe(void)
{
	explicit_bzero(body, sizeof(body));
	body_len = 0;
}

static struct curl_slist *json_header;

/* An easy handle as SAE_A: the test CA, SAE_A's certificate, our buffer. */
static CURL *sae_handle(const char *url, const char *post)
{
	CURL *h = curl_easy_init();

	if (!h)
		kme_die("curl_easy_init failed");
	if (curl_easy_setopt(h, CURLOPT_URL, url) ||
	    curl_easy_setopt(h, CURLOPT_CAINFO, kme.ca) ||
	    curl_easy_setopt(h, CURLOPT_SSLCERT, kme.crt) ||
	    curl_easy_setopt(h, CURLOPT_SSLKEY, kme.key) ||
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) ||
	    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L) ||
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) ||
	    (post && (curl_easy_setopt(h, CURLOPT_HTTPHEADER, json_header) ||
		      curl_easy_setopt(h, CURLOPT_POSTFIELDS, post))))
		kme_die("curl_easy_setopt failed");
	return h;
}

/* One request on @h: its HTTP status, the body in body[]. */
static long sae_perform(CURL *h)
{
	long code = 0;
	CURLcode rc;

	body_wipe();
	rc = curl_easy_perform(h);
	if (rc != CURLE_OK)
		return -(long)rc;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	return code;
}

static void kme_start(void)
{
	char uuid[QKD_UUID_STR_LEN];
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	double t0 = now_ns();
	int fd, st;
	long code = 0;
	FILE *f;

	qkd_uuid_format(stream_id, uuid);
	snprintf(kme.conf, sizeof(kme.conf), "%s/bench-kme.conf", kme.pki);
	snprintf(kme.log, sizeof(kme.log), "%s/bench-kme.log", kme.pki);
	snprintf(kme.ca, sizeof(kme.ca), "%s/ca.crt", kme.pki);
	snprintf(kme.crt, sizeof(kme.crt), "%s/sae-a.crt", kme.pki);
	snprintf(kme.key, sizeof(kme.key), "%s/sae-a.key", kme.pki);
	snprintf(kme.url_status, sizeof(kme.url_status),
		 "https://127.0.0.1:%u/api/v1/keys/SAE_B/status", kme.port);
	snprintf(kme.url_enc, sizeof(kme.url_enc),
		 "https://127.0.0.1:%u/api/v1/keys/SAE_B/enc_keys", kme.port);
	f = fopen(kme.conf, "w");
	if (!f)
		kme_die("%s: %s", kme.conf, strerror(errno));
	fprintf(f, "# written by bench_key_fetch: a benchmark's KME, test certificates\n"
		"kme-id KME_BENCH\naddress 127.0.0.1\nport %u\n"
		"cert %s/kme.crt\nkey %s/kme.key\nca %s\n"
		"max-keys-per-request %u\n"
		"sae SAE_A cn=sae-a\npair SAE_A SAE_B %s KME_PEER\n",
		kme.port, kme.pki, kme.pki, kme.ca, QKD_GET_KEYS_MAX, uuid);
	if (fclose(f))
		kme_die("%s: %s", kme.conf, strerror(errno));

	fd = open(kme.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		kme_die("%s: %s", kme.log, strerror(errno));
	fflush(NULL);
	kme.pid = fork();
	if (kme.pid < 0)
		kme_die("fork: %s", strerror(errno));
	if (kme.pid == 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execl(kme.bin, kme.bin, "-c", kme.conf, (char *)NULL);
		fprintf(stderr, "bench_key_fetch: cannot run %s: %s\n", kme.bin,
			strerror(errno));
		_exit(127);
	}
	close(fd);

	/* Up when SAE_A's status request is answered 200. */
	for (;;) {
		CURL *h;

		if (waitpid(kme.pid, &st, WNOHANG) == kme.pid) {
			kme.pid = -1;
			kme_die("%s exited (%s %d) before answering",
				kme.bin, WIFEXITED(st) ? "status" : "signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
		}
		h = sae_handle(kme.url_status, NULL);
		code = sae_perform(h);
		curl_easy_cleanup(h);
		body_wipe();
		if (code == 200)
			break;
		if (code > 0)
			kme_die("status of the pair: HTTP %ld, not 200", code);
		if (now_ns() - t0 > KME_START_S * 1e9)
			kme_die("no answer on %s within %d s (last: %s)", kme.url_status,
				KME_START_S, curl_easy_strerror((CURLcode)-code));
		nanosleep(&pause, NULL);
	}
	printf("qkd-kme (pid %d) answers on https://127.0.0.1:%u after %.1f s\n",
	       (int)kme.pid, kme.port, (now_ns() - t0) / 1e9);
}

static void kme_stop(void)
{
	int st;

	if (kill(kme.pid, SIGTERM) || waitpid(kme.pid, &st, 0) != kme.pid)
		kme_die("stopping pid %d: %s", (int)kme.pid, strerror(errno));
	kme.pid = -1;
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		kme_die("did not stop cleanly on SIGTERM (wait status %#x)", st);
}

/*
 * The reply to an enc_keys of @number: exactly @number keys, key i the one
 * of index @first + i (key_ID) with the bytes pushed there (key).
 */
static void check_keys(uint32_t number, uint64_t first, uint64_t row_first)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o, *keys, *k, *v;
	uint8_t id[QKD_KEY_ID_LEN], got[KEY_SIZE + 4];
	uint64_t idx;
	uint32_t i;
	ssize_t n;

	if (!tok)
		kme_die("json_tokener_new failed");
	o = json_tokener_parse_ex(tok, body, (int)body_len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_object_get_ex(o, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array) ||
	    json_object_array_length(keys) != number)
		kme_die("enc_keys number=%u: not a key container of %u keys", number,
			number);
	for (i = 0; i < number; i++) {
		k = json_object_array_get_idx(keys, i);
		if (!json_object_object_get_ex(k, "key_ID", &v) ||
		    qkd_uuid_parse(json_object_get_string(v), id) ||
		    qkd_key_id_index(id, stream_id, &idx) || idx != first + i)
			kme_die("enc_keys: key %u is not the key_ID of index %llu", i,
				(unsigned long long)(first + i));
		if (!json_object_object_get_ex(k, "key", &v))
			kme_die("enc_keys: key %u has no key", i);
		n = qkd_base64_decode(json_object_get_string(v),
				      (size_t)json_object_get_string_len(v), got,
				      sizeof(got));
		if (n != KEY_SIZE ||
		    memcmp(got, pattern + ((idx - row_first) % BATCH) * KEY_SIZE,
			   KEY_SIZE))
			kme_die("enc_keys: index %llu is not the key pushed there",
				(unsigned long long)idx);
	}
	/*
	 * Ours are wiped; json-c's and libcurl's copies are out of reach, which
	 * is why the HTTPS rows serve only the benchmark's own pattern keys.
	 */
	explicit_bzero(got, sizeof(got));
	json_object_put(o);
	json_tokener_free(tok);
	body_wipe();
}

/* Push @count keys from *@next (the stream flushed first). */
static void push_keys(uint64_t *next, uint64_t count)
{
	int err;

	err = genl_call(QKD_CMD_KEY_FLUSH, fill_keys_ref, NULL);
	if (err < 0)
		die("key flush", err);
	while (count) {
		uint64_t n = count < BATCH ? count : BATCH;
		struct push p = { .first = *next, .data = pattern,
				  .len = n * KEY_SIZE };

		err = genl_call(QKD_CMD_KEY_ADD, fill_push, &p);
		if (err < 0)
			die("key push", err);
		*next += n;
		count -= n;
	}
}

struct lat_row {
	const char *what;
	uint32_t number;	/* keys a request */
	int fresh;		/* a new handle: TCP + TLS handshake each */
	unsigned int cap, min;	/* requests at most, at least */
	double budget_s;	/* then stop once min is done */
	/* results */
	unsigned int n;
	double med_ns, p99_ns, kps;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median, p99 and keys/s of @n request times @lat (sorted here). */
static void lat_stats(struct lat_row *r, double *lat, unsigned int n)
{
	double sum = 0;
	unsigned int i;

	qsort(lat, n, sizeof(*lat), cmp_double);
	for (i = 0; i < n; i++)
		sum += lat[i];
	r->n = n;
	r->med_ns = n % 2 ? lat[n / 2] : (lat[n / 2 - 1] + lat[n / 2]) / 2;
	r->p99_ns = lat[(99 * n + 99) / 100 - 1];
	r->kps = (double)n * r->number * 1e9 / sum;
}

/* The raw ioctl, each call timed on its own as the HTTPS requests are. */
static void ioctl_row(struct lat_row *r, int fd, uint64_t *next)
{
	static double lat[BATCH];
	struct qkd_key_request req;
	uint8_t key[KEY_SIZE];
	uint64_t first = *next;
	double t0;
	int i;

	push_keys(next, BATCH);
	for (i = 0; i < BATCH; i++) {
		memset(&req, 0, sizeof(req));
		req.size = sizeof(req);
		memcpy(req.stream_id, stream_id, sizeof(stream_id));
		req.key_len = sizeof(key);
		req.key_ptr = (uintptr_t)key;
		t0 = now_ns();
		if (ioctl(fd, QKD_IOC_GET_KEY, &req))
			die("QKD_IOC_GET_KEY", errno);
		lat[i] = now_ns() - t0;
		if (req.index != first + (uint64_t)i)
			die("keys out of order", EPROTO);
	}
	explicit_bzero(key, sizeof(key));
	lat_stats(r, lat, BATCH);
}

/* One HTTPS row: enc_keys of r->number keys a request, as SAE_A. */
static void https_row(struct lat_row *r, uint64_t *next)
{
	static double lat[4096];
	char post[48];
	unsigned int i, cap = r->cap < 4096 ? r->cap : 4096;
	uint64_t row_first, first;
	double t0, start;
	long code, conns;
	CURL *h = NULL;

	snprintf(post, sizeof(post), "{\"number\":%u}", r->number);
	/* every key the row may take, and one request more (the warm-up) */
	row_first = *next;
	push_keys(next, (uint64_t)(cap + 1) * r->number);
	first = row_first;
	if (!r->fresh) {
		/* the connection and its handshake, outside the clock */
		h = sae_handle(kme.url_enc, post);
		code = sae_perform(h);
		if (code != 200)
			kme_die("%s: warm-up enc_keys: %s %ld", r->what,
				code < 0 ? curl_easy_strerror((CURLcode)-code) : "HTTP",
				code < 0 ? 0 : code);
		check_keys(r->number, first, row_first);
		first += r->number;
	}
	start = now_ns();
	for (i = 0; i < cap; i++) {
		t0 = now_ns();
		if (r->fresh)
			h = sae_handle(kme.url_enc, post);
		code = sae_perform(h);
		conns = -1;
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
		if (r->fresh) {
			curl_easy_cleanup(h);
			h = NULL;
		}
		lat[i] = now_ns() - t0;
		if (code != 200)
			kme_die("%s: request %u: %s %ld", r->what, i,
				code < 0 ? curl_easy_strerror((CURLcode)-code) : "HTTP",
				code < 0 ? 0 : code);
		/* a kept-alive request opens no connection, a fresh one one */
		if (conns != (r->fresh ? 1 : 0))
			kme_die("%s: request %u opened %ld connections", r->what, i,
				conns);
		check_keys(r->number, first, row_first);
		first += r->number;
		if (i + 1 >= r->min && now_ns() - start > r->budget_s * 1e9) {
			i++;
			break;
		}
	}
	if (h)
		curl_easy_cleanup(h);
	lat_stats(r, lat, i);
}

static void bench_https(int fd, uint64_t next)
{
	struct lat_row rows[] = {
		{ .what = "QKD_IOC_GET_KEY (raw ioctl)", .number = 1 },
		{ .what = "HTTPS kept alive, number=1", .number = 1,
		  .cap = 4000, .min = 200, .budget_s = 5 },
		{ .what = "HTTPS new mTLS connection each, number=1",
		  .number = 1, .fresh = 1, .cap = 1000, .min = 30,
		  .budget_s = 10 },
		{ .what = "HTTPS kept alive, number=256 (a request)",
		  .number = QKD_GET_KEYS_MAX, .cap = 100, .min = 10,
		  .budget_s = 5 },
	};
	const unsigned int nrows = sizeof(rows) / sizeof(rows[0]);
	unsigned int m;
	int i;

	for (i = 0; i < (int)sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 11 + 3);
	ioctl_row(&rows[0], fd, &next);
	for (m = 1; m < nrows; m++)
		https_row(&rows[m], &next);
	genl_call(QKD_CMD_KEY_FLUSH, fill_keys_ref, NULL);
	kme_stop();

	printf("\nETSI GS QKD 014 enc_keys through qkd-kme (HTTPS, client certificate, libcurl), 32-byte keys;\n"
	       "each request timed on its own, the ioctl too; x ioctl: the row's figure over the ioctl's\n");
	printf("%-42s %8s %11s %11s %11s %10s %10s\n", "", "requests",
	       "median us", "p99 us", "keys/s", "median", "keys/s");
	printf("%-42s %8s %11s %11s %11s %10s %10s\n", "", "", "", "", "",
	       "x ioctl", "x ioctl");
	for (m = 0; m < nrows; m++)
		printf("%-42s %8u %11.1f %11.1f %11.0f %10.1f %10.3g\n",
		       rows[m].what, rows[m].n, rows[m].med_ns / 1e3,
		       rows[m].p99_ns / 1e3, rows[m].kps,
		       rows[m].med_ns / rows[0].med_ns, rows[m].kps / rows[0].kps);
}

static void usage(int rc)
{
	fprintf(rc ? stderr : stdout,
		"usage: bench_key_fetch --kme QKD_KME --pki DIR [--port N]\n"
		"       bench_key_fetch --no-kme\n"
		"DIR: ca.crt, kme.crt/kme.key (IP 127.0.0.1), sae-a.crt/sae-a.key (CN sae-a), as\n"
		"tools/demo-pki.sh DIR server:kme:127.0.0.1 client:sae-a makes them; bench/run-vm-bench.sh runs it in the VM\n");
	exit(rc);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kme", required_argument, NULL, 'k' },
		{ "pki", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, 'P' },
		{ "no-kme", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int no_kme = 0, c;
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

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k': kme.bin = optarg; break;
		case 'p': kme.pki = optarg; break;
		case 'P':
			kme.port = (unsigned int)strtoul(optarg, NULL, 10);
			if (!kme.port || kme.port > 65535)
				usage(2);
			break;
		case 'n': no_kme = 1; break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind != argc || (no_kme && (kme.bin || kme.pki)) ||
	    (!no_kme && (!kme.bin || !kme.pki)))
		usage(2);
	signal(SIGPIPE, SIG_IGN);
	if (!no_kme) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT))
			die("curl_global_init", EIO);
		json_header = curl_slist_append(NULL, "Content-Type: application/json");
		if (!json_header)
			die("curl_slist_append", ENOMEM);
		atexit(kme_kill);
	}

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
	/* qkd-kme first: a KME that cannot start fails the run at once */
	if (!no_kme)
		kme_start();
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
	next = bench_key_add(syscall_ns, genl_ns, next);
	if (!no_kme)
		bench_https(fd, next);
	else
		printf("\nHTTPS rows (qkd-kme): not run (--no-kme)\n");
	genl_call(QKD_CMD_LINK_DEL, fill_link_ref, NULL);
	close(fd);
	nl_socket_free(sk);
	if (!no_kme) {
		curl_slist_free_all(json_header);
		curl_global_cleanup();
	}

	printf("\n%-36s %12s %10s\n", "operation", "ns/op", "x getppid");
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
