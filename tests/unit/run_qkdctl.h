/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Running build/qkdctl from a unit test (test_qkdctl_*.c): its exit
 * code, standard output and standard error, stdin from /dev/null.
 */
#ifndef QKD_TEST_RUN_QKDCTL_H
#define QKD_TEST_RUN_QKDCTL_H

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define QKDCTL	"build/qkdctl"

struct run {
	int rc;
	char out[16384];
	char err[4096];
};

static void slurp(int fd, char *buf, size_t cap)
{
	ssize_t n = pread(fd, buf, cap - 1, 0);

	buf[n > 0 ? n : 0] = '\0';
}

/*
 * build/qkdctl ARGS with stdout and stderr captured; @uid >= 0 runs it as
 * that user (a directory root could write anyway), @mask is its umask.
 * The binary is opened as the caller and run with fexecve(), so @uid needs
 * no search permission on the way to the tree.
 */
static void run_qkdctl(struct run *r, int uid, mode_t mask,
		       const char *const *args)
{
	char *argv[16];
	FILE *fo = tmpfile(), *fe = tmpfile();
	int status, i;
	pid_t pid;

	r->rc = -1;
	r->out[0] = r->err[0] = '\0';
	if (!fo || !fe)
		goto out;
	argv[0] = QKDCTL;
	for (i = 0; args[i] && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[i + 1] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDONLY);

		dup2(devnull, STDIN_FILENO);
		dup2(fileno(fo), STDOUT_FILENO);
		dup2(fileno(fe), STDERR_FILENO);
		/*
		 * Opened before the privileges go: the tree may sit where
		 * @uid cannot reach it (a clone in a 0700 mktemp -d).
		 */
		int exe = open(argv[0], O_RDONLY);

		umask(mask);
		if (uid >= 0 && (setgid((gid_t)uid) || setuid((uid_t)uid)))
			_exit(126);
		if (exe >= 0)
			fexecve(exe, argv, environ);
		_exit(127);
	}
	if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
		r->rc = WEXITSTATUS(status);
	slurp(fileno(fo), r->out, sizeof(r->out));
	slurp(fileno(fe), r->err, sizeof(r->err));
out:
	if (fo)
		fclose(fo);
	if (fe)
		fclose(fe);
}

#endif
