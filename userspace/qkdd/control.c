// SPDX-License-Identifier: GPL-2.0-only
/*
 * The control socket (--control PATH; /run/qkdd/LINK.sock under the unit):
 * a unix stream socket, mode 0600, on which the daemon itself answers
 * "status\n" with its status, the key=value lines of the status file as
 * of the last change, then closes. A thread serves it, so that the answer
 * comes in the middle of a round too. Only root and the daemon's own user
 * are answered (SO_PEERCRED), whatever the socket's mode. qkdctl daemon
 * show asks it; nothing there changes the daemon.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "qkdd.h"

static struct {
	int fd;
	pthread_t th;
	bool running;
	volatile sig_atomic_t stop;
	pthread_mutex_t mu;
	char *text;
	size_t len;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} ctl = { .fd = -1, .mu = PTHREAD_MUTEX_INITIALIZER };

void control_publish(const char *text, size_t len)
{
	char *copy;

	if (!ctl.running)
		return;
	copy = malloc(len + 1);
	if (!copy)
		return;		/* the previous status stays */
	memcpy(copy, text, len);
	copy[len] = '\0';
	pthread_mutex_lock(&ctl.mu);
	free(ctl.text);
	ctl.text = copy;
	ctl.len = len;
	pthread_mutex_unlock(&ctl.mu);
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		p += w;
		len -= (size_t)w;
	}
}

static void serve(int fd)
{
	struct timeval tv = { .tv_sec = 1 };
	struct ucred cr;
	socklen_t cl = sizeof(cr);
	char req[64];
	size_t n = 0;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (n < sizeof(req) - 1) {
		ssize_t r = recv(fd, req + n, sizeof(req) - 1 - n, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
		if (memchr(req, '\n', n))
			break;
	}
	req[n] = '\0';
	req[strcspn(req, "\r\n")] = '\0';
	/* after the request, so that the peer reads the answer */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		write_all(fd, "error: permission denied\n", 25);
		return;
	}
	if (strcmp(req, "status")) {
		write_all(fd, "error: unknown command (status)\n", 32);
		return;
	}
	pthread_mutex_lock(&ctl.mu);
	if (ctl.text)
		write_all(fd, ctl.text, ctl.len);
	pthread_mutex_unlock(&ctl.mu);
}

static void *control_thread(void *arg)
{
	(void)arg;
	while (!ctl.stop) {
		struct pollfd p = { .fd = ctl.fd, .events = POLLIN };
		int cfd;

		if (poll(&p, 1, 200) <= 0)
			continue;
		cfd = accept4(ctl.fd, NULL, NULL, SOCK_CLOEXEC);
		if (cfd < 0)
			continue;
		serve(cfd);
		close(cfd);
	}
	return NULL;
}

int control_start(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t um;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errlen, "control socket %s: path too long", path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail_errno;
	if (!lstat(path, &st)) {
		/* a socket left by a daemon that died: reuse the name; one
		 * that answers belongs to a running daemon */
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "control socket %s: exists and is not a socket",
				 path);
			close(fd);
			return -EEXIST;
		}
		if (!connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
			snprintf(err, errlen, "control socket %s: another qkdd answers on it (the same link twice?)",
				 path);
			close(fd);
			return -EADDRINUSE;
		}
		close(fd);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || unlink(path))
			goto fail_errno;
	}
	um = umask(0177);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(um);
	if (r || chmod(path, 0600) || listen(fd, 8))
		goto fail_errno;
	ctl.fd = fd;
	ctl.stop = 0;
	snprintf(ctl.path, sizeof(ctl.path), "%s", path);
	ctl.running = true;
	if (pthread_create(&ctl.th, NULL, control_thread, NULL)) {
		ctl.running = false;
		unlink(path);
		errno = EAGAIN;
		goto fail_errno;
	}
	return 0;
fail_errno:
	r = -errno;
	snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
	ctl.fd = -1;
	return r;
}

void control_stop(void)
{
	if (!ctl.running)
		return;
	ctl.stop = 1;
	pthread_join(ctl.th, NULL);
	ctl.running = false;
	unlink(ctl.path);
	close(ctl.fd);
	ctl.fd = -1;
	pthread_mutex_lock(&ctl.mu);
	free(ctl.text);
	ctl.text = NULL;
	pthread_mutex_unlock(&ctl.mu);
}
