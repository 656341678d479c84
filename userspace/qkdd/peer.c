// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdd TCP connections: the classical channel (HOST:PORT) and the
 * simulated quantum channel (HOST:PORT+1). The connecting side retries
 * with exponential back-off; every wait can be interrupted by SIGTERM.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qkdd.h"

int peer_split(const char *addr, char *host, size_t hostlen,
	       unsigned int *port)
{
	const char *colon, *h = addr;
	size_t hl;
	char *end;
	unsigned long p;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');

		if (!rb || rb[1] != ':')
			return -EINVAL;
		h = addr + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - addr);
	}
	if (!hl || hl >= hostlen)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	p = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || p == 0 || p >= 65535)
		return -EINVAL;
	*port = (unsigned int)p;
	return 0;
}

static int resolve(const char *host, unsigned int port, bool passive,
		   struct addrinfo **res)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	char ps[16];
	int r;

	hints.ai_flags = passive ? AI_PASSIVE : 0;
	snprintf(ps, sizeof(ps), "%u", port);
	r = getaddrinfo(host, ps, &hints, res);
	if (r) {
		qlog("cannot resolve %s: %s", host, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	return 0;
}

/*
 * The link may idle for hours while the key stores are full (pause.c):
 * TCP keepalives, after a minute of silence and every 15 s, find a peer
 * that went away (a reboot, a cut cable) within two minutes, with no
 * frame -- and no authentication pad -- spent on it.
 */
static void tune(int fd)
{
	int one = 1, idle = 60, intvl = 15, cnt = 4;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

int peer_listen(const char *host, unsigned int port)
{
	struct addrinfo *res, *ai;
	int fd = -1, one = 1, r;

	r = resolve(host, port, true, &res);
	if (r)
		return r;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (!bind(fd, ai->ai_addr, ai->ai_addrlen) && !listen(fd, 4))
			break;
		r = -errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		qlog("cannot listen on %s:%u: %s", host, port,
		     strerror(r ? -r : EADDRNOTAVAIL));
		return r ? r : -EADDRNOTAVAIL;
	}
	return fd;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

int peer_connect(const char *host, unsigned int port, unsigned int max_s)
{
	unsigned int delay = 100, tries = 0;

	while (!qkdd_stopping()) {
		struct addrinfo *res, *ai;
		int fd = -1, err = 0;

		if (!resolve(host, port, false, &res)) {
			for (ai = res; ai; ai = ai->ai_next) {
				fd = socket(ai->ai_family,
					    ai->ai_socktype | SOCK_CLOEXEC, 0);
				if (fd < 0)
					continue;
				if (!connect(fd, ai->ai_addr, ai->ai_addrlen))
					break;
				err = errno;
				close(fd);
				fd = -1;
			}
			freeaddrinfo(res);
		}
		if (fd >= 0) {
			tune(fd);
			return fd;
		}
		if (tries++ % 10 == 0)
			qlog("cannot connect to %s:%u (%s); retrying in %.1f s",
			     host, port, strerror(err ? err : EHOSTUNREACH),
			     delay / 1000.0);
		sleep_ms(delay);
		delay *= 2;
		if (delay > max_s * 1000)
			delay = max_s * 1000;
	}
	return -EINTR;
}

int peer_wait(int fd, unsigned int timeout_s, bool stoppable)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r;

		if (stoppable && qkdd_stopping())
			return -EINTR;
		r = poll(&p, 1, 200);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return -errno;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (timeout_s && t1.tv_sec - t0.tv_sec >= (time_t)timeout_s)
			return 0;
	}
}

/*
 * The newest connection waiting, older ones closed unused (nothing was sent
 * on them). After a back-off the queue holds the peer's earlier attempts,
 * each given up at its --timeout; taken oldest first, each would be found
 * dead, the back-off would start again, and a back-off longer than the
 * peer's timeout would never meet its live attempt: the link would stay
 * down after the attack (tests/e2e/qkdd_mitm.sh "qheader").
 */
int peer_accept(int lfd)
{
	int fd = -1;

	for (;;) {
		int r = fd < 0 ? peer_wait(lfd, 0, true) : 1, nfd;

		if (r < 0)
			return r;
		if (fd >= 0) {
			struct pollfd p = { .fd = lfd, .events = POLLIN };

			if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
				return fd;
		}
		nfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (nfd >= 0) {
			tune(nfd);
			if (fd >= 0)
				close(fd);
			fd = nfd;
			continue;
		}
		if (fd >= 0)
			return fd;
		if (errno != EINTR && errno != ECONNABORTED)
			return -errno;
	}
}
