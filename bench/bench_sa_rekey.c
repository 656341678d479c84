// SPDX-License-Identifier: GPL-2.0-only
/*
 * bench_sa_rekey: ESP SA re-keys per second, done inside the kernel by the
 * module (QKD_CMD_SA_REKEY: take the next key of the stream, build and add
 * the next outbound SA, retire the old one), against the same re-key done
 * from userspace the way a script does it: the key fetched from /dev/qkd,
 * then `ip xfrm state add` of the new SA and `ip xfrm state delete` of the
 * old one. Both in the same run on the same kernel, in a network namespace
 * of their own. The ip path is the baseline (1.00x).
 *
 * Also shown: `ip -batch`, one ip process for all the commands, which
 * leaves out the fork and exec of each command; what remains is parsing
 * and the XFRM netlink round trips an IKE daemon would make too.
 *
 * Goal (Documentation/ipsec.md): in-kernel re-key at least 20x the ip path,
 * and a sustained rate of at least 1000 SAs/s.
 *
 * Runs where qkd.ko is loaded (in the VM: bench/run-vm-bench.sh), as root.
 */
#include <errno.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <qkd/dev.h>
#include <qkd/nl.h>
#include <qkd/sa.h>

#define KEY_SIZE	36	/* AES-256 + 4-byte salt: rfc4106(gcm(aes)) */
#define ROUNDS		3
#define KERNEL_REKEYS	2000	/* per round */
#define IP_REKEYS	60	/* per round, two ip processes each */
#define BATCH_REKEYS	400	/* per round, through one `ip -batch` */
#define MAX_KEYS	16384

extern char **environ;

static const uint8_t sa_stream[QKD_STREAM_ID_LEN] = {
	0xbe, 0x9c, 0x00, 0x02, 0x00, 0x00, 0x40, 0x00,
	0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
};

static const uint8_t ip_stream[QKD_STREAM_ID_LEN] = {
	0xbe, 0x9c, 0x00, 0x02, 0x00, 0x00, 0x40, 0x00,
	0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
};

static struct qkd_nl *nl;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int err)
{
	const char *ext = nl ? qkd_nl_extack(nl) : NULL;

	fprintf(stderr, "bench_sa_rekey: %s: %s%s%s\n", what,
		strerror(err < 0 ? -err : err), ext && *ext ? ": " : "",
		ext ? ext : "");
	exit(1);
}

/* @n keys of @stream from @first on; the bytes do not matter here. */
static void push_keys(const uint8_t *stream, uint64_t first, size_t n)
{
	uint8_t *data = malloc(n * KEY_SIZE);
	size_t i;
	int err;

	if (!data)
		die("malloc", ENOMEM);
	for (i = 0; i < n * KEY_SIZE; i++)
		data[i] = (uint8_t)(i * 131 + first);
	err = qkd_key_add(nl, stream, first, data, n * KEY_SIZE, KEY_SIZE, NULL);
	explicit_bzero(data, n * KEY_SIZE);
	free(data);
	if (err)
		die("key push", err);
}

/* The next key of the ip path's stream, as ip takes it: 0x and hex. */
static void fetch_key_hex(int fd, char hex[2 + 2 * KEY_SIZE + 1])
{
	uint8_t key[KEY_SIZE];
	size_t len;
	int err, i;

	err = qkd_dev_get_key(fd, ip_stream, key, sizeof(key), &len, NULL, NULL);
	if (err)
		die("QKD_IOC_GET_KEY", err);
	hex[0] = '0';
	hex[1] = 'x';
	for (i = 0; i < KEY_SIZE; i++)
		sprintf(hex + 2 + 2 * i, "%02x", key[i]);
	explicit_bzero(key, sizeof(key));
}

static void run_ip(char *const argv[])
{
	int status;
	pid_t pid;

	if (posix_spawnp(&pid, "ip", NULL, NULL, argv, environ))
		die("spawning ip", errno);
	if (waitpid(pid, &status, 0) < 0)
		die("waitpid", errno);
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		die("ip xfrm state failed", EIO);
}

/* One re-key the script way: SPI @spi replaces @spi - 1 (0: none). */
static void ip_rekey(int fd, unsigned int spi)
{
	char hex[2 + 2 * KEY_SIZE + 1], s[16], old[16];
	char *add[] = {
		"ip", "xfrm", "state", "add", "src", "10.9.1.1", "dst", "10.9.1.2",
		"proto", "esp", "spi", s, "reqid", "7", "mode", "transport",
		"aead", "rfc4106(gcm(aes))", hex, "128", NULL,
	};
	char *del[] = {
		"ip", "xfrm", "state", "delete", "src", "10.9.1.1", "dst",
		"10.9.1.2", "proto", "esp", "spi", old, NULL,
	};

	fetch_key_hex(fd, hex);
	snprintf(s, sizeof(s), "0x%x", spi);
	snprintf(old, sizeof(old), "0x%x", spi - 1);
	run_ip(add);
	explicit_bzero(hex, sizeof(hex));
	if (spi > 0x1000)
		run_ip(del);
}

/* @n re-keys through one `ip -batch -`, SPIs from @spi on. */
static void ip_batch_rekeys(int fd, unsigned int spi, int n)
{
	char hex[2 + 2 * KEY_SIZE + 1];
	FILE *ip = popen("ip -batch -", "w");
	int i;

	if (!ip)
		die("popen ip -batch", errno);
	for (i = 0; i < n; i++, spi++) {
		fetch_key_hex(fd, hex);
		fprintf(ip, "xfrm state add src 10.9.2.1 dst 10.9.2.2 proto esp spi 0x%x reqid 8 mode transport aead rfc4106(gcm(aes)) %s 128\n",
			spi, hex);
		if (i)
			fprintf(ip, "xfrm state delete src 10.9.2.1 dst 10.9.2.2 proto esp spi 0x%x\n",
				spi - 1);
		/* Command by command, as a daemon re-keying on demand would. */
		fflush(ip);
	}
	explicit_bzero(hex, sizeof(hex));
	if (pclose(ip))
		die("ip -batch failed", EIO);
}

int main(void)
{
	const uint32_t max_keys = MAX_KEYS;
	double t0, t, kernel_rate = 0, ip_rate = 0, batch_rate = 0;
	struct qkd_sa_params p;
	struct qkd_sa_info sa;
	struct qkd_link_ref link = { .name = "bench-sa" };
	unsigned int spi = 0x1000;
	int fd, err, r, i;

	if (unshare(CLONE_NEWNET))
		die("unshare(CLONE_NEWNET)", errno);
	err = qkd_nl_open(&nl);
	if (err)
		die("genl qkd (is qkd.ko loaded?)", err);
	fd = qkd_dev_open(NULL);
	if (fd < 0)
		die("/dev/qkd", fd);
	err = qkd_link_add(nl, "bench-sa", QKD_LINK_ROLE_INITIATOR, 0, NULL, NULL);
	if (err)
		die("link add", err);
	err = qkd_stream_add(nl, sa_stream, &link, KEY_SIZE, &max_keys, NULL, NULL);
	if (!err)
		err = qkd_stream_add(nl, ip_stream, &link, KEY_SIZE, &max_keys,
				     NULL, NULL);
	if (err)
		die("stream add", err);
	/* Generation g of the out channel takes index 2g: 2 per re-key. */
	push_keys(sa_stream, 0, 2 * (ROUNDS * KERNEL_REKEYS + 4));
	push_keys(ip_stream, 0, ROUNDS * (IP_REKEYS + BATCH_REKEYS));

	memset(&p, 0, sizeof(p));
	memcpy(p.stream_id, sa_stream, sizeof(sa_stream));
	p.addr_len = 4;
	memcpy(p.local, (uint8_t[]){ 10, 9, 0, 1 }, 4);
	memcpy(p.remote, (uint8_t[]){ 10, 9, 0, 2 }, 4);
	p.first_index = 0;	/* where push_keys() started */
	p.have_first = true;
	err = qkd_sa_add(nl, &p, &sa);
	if (err)
		die("sa add", err);

	/* Best of ROUNDS for each: the least disturbed run. */
	for (r = 0; r < ROUNDS; r++) {
		t0 = now_s();
		for (i = 0; i < KERNEL_REKEYS; i++) {
			/* No traffic, no peer: forced past the lookahead. */
			err = qkd_sa_rekey_force(nl, sa_stream, &sa);
			if (err)
				die("sa rekey", err);
		}
		t = KERNEL_REKEYS / (now_s() - t0);
		kernel_rate = t > kernel_rate ? t : kernel_rate;
		if (sa.out_gen != (uint64_t)(r + 1) * KERNEL_REKEYS)
			die("re-keys missing", EPROTO);

		t0 = now_s();
		for (i = 0; i < IP_REKEYS; i++)
			ip_rekey(fd, spi++);
		t = IP_REKEYS / (now_s() - t0);
		ip_rate = t > ip_rate ? t : ip_rate;

		t0 = now_s();
		ip_batch_rekeys(fd, 0x100000 * (r + 1), BATCH_REKEYS);
		t = BATCH_REKEYS / (now_s() - t0);
		batch_rate = t > batch_rate ? t : batch_rate;
	}
	qkd_sa_del(nl, sa_stream);
	qkd_link_del(nl, &link);
	close(fd);
	qkd_nl_close(nl);

	printf("%-46s %10s %8s\n", "SA re-key, AES-256-GCM ESP", "SAs/s", "x ip");
	printf("%-46s %10.0f %8.2f\n", "ip xfrm state add/delete, key from /dev/qkd",
	       ip_rate, 1.0);
	printf("%-46s %10.0f %8.2f\n", "ip -batch xfrm state add/delete, same",
	       batch_rate, batch_rate / ip_rate);
	printf("%-46s %10.0f %8.2f\n", "in-kernel QKD_CMD_SA_REKEY", kernel_rate,
	       kernel_rate / ip_rate);
	printf("goal: in-kernel >= 20x the ip path: %s (%.1fx); >= 1000 SAs/s: %s (%.0f)\n",
	       kernel_rate >= 20 * ip_rate ? "met" : "NOT met",
	       kernel_rate / ip_rate,
	       kernel_rate >= 1000 ? "met" : "NOT met", kernel_rate);
	printf("in-kernel vs ip -batch (no fork/exec): %.1fx\n",
	       kernel_rate / batch_rate);
	return 0;
}
