// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl daemon show: what qkdd says about its link -- asked of the daemon
 * itself on its control socket (qkdd --control; /run/qkdd/LINK.sock under
 * the systemd unit), or read from the status file it rewrites after every
 * round (--status; /run/qkdd/LINK.status) when it does not answer: rounds,
 * keys, QBER, efficiency, authentication reserve and the last round's
 * result. No kernel access is needed.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <qkd/json.h>

#include "qkdctl.h"

#define QKDD_RUN_DIR	"/run/qkdd"
#define FIELDS_MAX	128	/* qkdd writes about 80 */

struct field {
	char key[32];
	char val[224];
};

struct status_file {
	struct field f[FIELDS_MAX];
	int n;
	int alive;	/* 1 answered on its socket, 0 did not, -1 by the pid */
};

static const char *get(const struct status_file *s, const char *key)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->f[i].key, key))
			return s->f[i].val;
	return "";
}

/* key=value lines; anything else in the file makes it unreadable. */
static int status_parse(FILE *f, struct status_file *s)
{
	char line[sizeof(s->f[0].key) + sizeof(s->f[0].val) + 2];
	int err = 0;

	s->n = 0;
	s->alive = -1;
	while (fgets(line, sizeof(line), f)) {
		char *eq = strchr(line, '=');
		size_t kl, vl;

		line[strcspn(line, "\n")] = '\0';
		if (!line[0])
			continue;
		kl = eq ? (size_t)(eq - line) : 0;
		vl = eq ? strlen(eq + 1) : 0;
		if (!eq || !kl || kl >= sizeof(s->f[0].key) ||
		    vl >= sizeof(s->f[0].val) || s->n == FIELDS_MAX) {
			err = -EBADMSG;
			break;
		}
		memcpy(s->f[s->n].key, line, kl);
		s->f[s->n].key[kl] = '\0';
		memcpy(s->f[s->n].val, eq + 1, vl + 1);
		s->n++;
	}
	fclose(f);
	if (!err && !get(s, "link")[0])
		err = -EBADMSG;
	return err;
}

static int status_read(const char *path, struct status_file *s)
{
	FILE *f = fopen(path, "re");

	return f ? status_parse(f, s) : -errno;
}

/*
 * Ask the daemon on its control socket: "status\n", and the key=value
 * lines back. -errno when nothing answers there (-ENOENT, -ECONNREFUSED:
 * not running), -EACCES when it refuses us, -EBADMSG for a bad answer.
 */
static int status_ask(const char *path, struct status_file *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	char head[32];
	FILE *f;
	int fd, c, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    send(fd, "status\n", 7, MSG_NOSIGNAL) != 7) {
		err = -errno;
		close(fd);
		return err;
	}
	shutdown(fd, SHUT_WR);
	f = fdopen(fd, "r");
	if (!f) {
		err = -errno;
		close(fd);
		return err;
	}
	c = getc(f);
	if (c == 'e') {		/* "error: ..." */
		ungetc(c, f);
		if (fgets(head, sizeof(head), f) &&
		    !strncmp(head, "error: permission denied", 24)) {
			fclose(f);
			return -EACCES;
		}
		fclose(f);
		return -EBADMSG;
	}
	if (c != EOF)
		ungetc(c, f);
	err = status_parse(f, s);
	s->alive = 1;
	return err;
}

/* Is the daemon there? It answered on its socket, or (a status file read
 * by name: --status alone) its pid is alive. */
static bool daemon_alive(const struct status_file *s)
{
	long pid;

	if (s->alive >= 0)
		return s->alive;
	pid = strtol(get(s, "pid"), NULL, 10);
	return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static bool in(const char *key, const char *const *set)
{
	for (; *set; set++)
		if (!strcmp(key, *set))
			return true;
	return false;
}

/* A list of numbers "a,b,c" as an array; false if it is not one. */
static bool json_num_list(const char *key, const char *val)
{
	char buf[sizeof(((struct field *)0)->val)], *p, *save = NULL;
	size_t n = strlen(val);

	if (!n || n >= sizeof(buf) || val[0] == ',' || val[n - 1] == ',' ||
	    strstr(val, ",,"))
		return false;
	memcpy(buf, val, n + 1);
	for (p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
		if (!qkd_json_is_number(p))
			return false;
	memcpy(buf, val, n + 1);
	json_key(key);
	json_open('[');
	for (p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
		json_num(NULL, p);
	json_close(']');
	return true;
}

/*
 * A field's JSON type is the field's, not its value's (a link named "123"
 * stays a string): names and texts are strings, flags booleans, the
 * per-intensity lists arrays of numbers, everything else a number when
 * qkdd wrote one (a field it adds later too), else a string.
 */
static void print_json(const struct status_file *s)
{
	static const char *const strings[] = {
		"role", "link", "stream", "source", "last_result",
		"last_reason", "warning", "key_source", "kme", "kme_sae", NULL,
	};
	static const char *const flags[] = {
		"connected", "paused", "auth_alarm", NULL,
	};
	static const char *const lists[] = {
		"mu", "p_mu", "n_z", "n_x", "m_x", NULL,
	};

	json_open('{');
	for (int i = 0; i < s->n; i++) {
		const char *k = s->f[i].key, *v = s->f[i].val;

		if (in(k, strings))
			json_str(k, v);
		else if (in(k, flags) && (!strcmp(v, "0") || !strcmp(v, "1")))
			json_bool(k, v[0] == '1');
		else if (in(k, flags))
			json_null(k);
		else if (in(k, lists) && json_num_list(k, v))
			;
		else
			json_num(k, v);
	}
	json_bool("running", daemon_alive(s));
	json_close('}');
}

static void print_tab(const struct status_file *s)
{
	static const char *const cols[] = {
		"link", "role", "connected", "rounds_ok", "rounds_aborted",
		"keys_total", "next_index", "qber", "efficiency",
		"auth_reserve", "last_result",
	};

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		printf("%s%s", i ? "\t" : "", get(s, cols[i]));
	printf("\t%s\n", daemon_alive(s) ? "running" : "stopped");
}

static void print_human(const struct status_file *s)
{
	const char *res = get(s, "last_result");

	/* the file of a daemon that has exited keeps its last state */
	printf("link %s: %s, %s (pid %s)\n", get(s, "link"), get(s, "role"),
	       !daemon_alive(s) ? "not running" :
	       strcmp(get(s, "connected"), "1") ? "not connected" :
	       !strcmp(get(s, "paused"), "1") ?
	       "connected, paused: a key store is full" : "connected",
	       get(s, "pid"));
	printf("    rounds %s ok %s aborted %s; keys %s, next index %s\n",
	       get(s, "rounds"), get(s, "rounds_ok"),
	       get(s, "rounds_aborted"), get(s, "keys_total"),
	       get(s, "next_index"));
	printf("    auth reserve %s bytes, tag failures %s\n",
	       get(s, "auth_reserve"), get(s, "auth_failures"));
	if (get(s, "warning")[0])
		printf("    WARNING: %s\n", get(s, "warning"));
	if (!strcmp(get(s, "key_source"), "etsi014"))
		printf("    keys from the vendor KME %s (ETSI GS QKD 014, the other end's SAE %s)\n",
		       get(s, "kme"), get(s, "kme_sae"));
	if (!res[0])
		return;
	printf("    last round %s: %s", get(s, "last_round"), res);
	if (!strcmp(res, "ok"))
		printf(", QBER %.2f%%, %s%sf %s%s%s%s, %s sifted bits, %s secret bits, %s keys, %s s\n",
		       100 * strtod(get(s, "qber"), NULL),
		       get(s, "reconciliation"),
		       get(s, "reconciliation")[0] ? " " : "",
		       get(s, "efficiency"),
		       get(s, "efficiency_true")[0] ? " (" : "",
		       get(s, "efficiency_true"),
		       get(s, "efficiency_true")[0] ? " against the true errors)" : "",
		       get(s, "sifted_bits"), get(s, "secret_bits"),
		       get(s, "keys"), get(s, "round_seconds"));
	else
		printf(": %s\n", get(s, "last_reason"));
}

static void print_one(const struct status_file *s, bool in_array);

static int show_one(const char *path, bool in_array)
{
	struct status_file s;
	int err = status_read(path, &s);

	if (err == -EBADMSG)
		return fail_msg("daemon show: %s is not a qkdd status file", path);
	if (err)
		return fail_msg("daemon show: %s: %s", path, strerror(-err));
	print_one(&s, in_array);
	return 0;
}

/* The daemon of @sock, or the status file @file it left (not running). */
static int show_daemon(const char *sock, const char *file, bool in_array)
{
	struct status_file s;
	int err = status_ask(sock, &s);

	if (err == -EACCES)
		return fail_msg("daemon show: %s: the daemon answers only root and its own user",
				sock);
	if (err == -EBADMSG)
		return fail_msg("daemon show: %s: not a qkdd control socket",
				sock);
	if (err && file) {
		err = status_read(file, &s);
		if (err == -ENOENT)
			return fail_msg("daemon show: no daemon answers on %s and there is no %s",
					sock, file);
		if (err == -EBADMSG)
			return fail_msg("daemon show: %s is not a qkdd status file",
					file);
		if (err)
			return fail_msg("daemon show: %s: %s", file,
					strerror(-err));
		s.alive = 0;	/* its socket did not answer */
	} else if (err) {
		return fail_msg("daemon show: %s: %s", sock, strerror(-err));
	}
	print_one(&s, in_array);
	return 0;
}

static void print_one(const struct status_file *s, bool in_array)
{
	if (opts.out == OUT_JSON)
		print_json(s);
	else if (opts.out == OUT_TAB)
		print_tab(s);
	else
		print_human(s);
	if (opts.out == OUT_JSON && !in_array)
		json_end();
}

/* "NAME.status" or "NAME.sock": the length of NAME, else 0. */
static size_t daemon_name_len(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.')
		return 0;
	if (n > 7 && !strcmp(name + n - 7, ".status"))
		return n - 7;
	if (n > 5 && !strcmp(name + n - 5, ".sock"))
		return n - 5;
	return 0;
}

static int show_name(const char *name, bool in_array)
{
	char sock[512], file[512];

	snprintf(sock, sizeof(sock), "%s/%s.sock", QKDD_RUN_DIR, name);
	snprintf(file, sizeof(file), "%s/%s.status", QKDD_RUN_DIR, name);
	return show_daemon(sock, file, in_array);
}

/* Every daemon of the run directory (a socket, a status file or both), in
 * name order. */
static int show_all(void)
{
	struct dirent **names;
	char prev[256] = "";
	int n, rc = 0;

	n = scandir(QKDD_RUN_DIR, &names, NULL, alphasort);
	if (n < 0) {
		if (errno == ENOENT)
			n = 0;
		else
			return fail_msg("daemon show: %s: %s", QKDD_RUN_DIR,
					strerror(errno));
	}
	if (opts.out == OUT_JSON)
		json_open('[');
	for (int i = 0; i < n; i++) {
		size_t len = daemon_name_len(names[i]->d_name);

		if (len && len < sizeof(prev) &&
		    (strlen(prev) != len ||
		     strncmp(prev, names[i]->d_name, len))) {
			snprintf(prev, sizeof(prev), "%.*s", (int)len,
				 names[i]->d_name);
			rc |= show_name(prev, true);
		}
		free(names[i]);
	}
	if (n > 0)
		free(names);
	if (opts.out == OUT_JSON) {
		json_close(']');
		json_end();
	}
	return rc;
}

static int daemon_show(int argc, char **argv)
{
	int i = 0;

	if (argc == 0)
		return show_all();
	if (!strcmp(argv[0], "file")) {
		const char *file = arg_next(argc, argv, &i);

		arg_end(argc, argv, i);
		return show_one(file, false);
	}
	if (!strcmp(argv[0], "socket")) {
		const char *sock = arg_next(argc, argv, &i);

		arg_end(argc, argv, i);
		return show_daemon(sock, NULL, false);
	}
	arg_end(argc, argv, 1);
	if (strchr(argv[0], '/') || strlen(argv[0]) >= 64)
		usage_error("daemon show: \"%s\" is not a link name (use \"file PATH\" or \"socket PATH\")",
			    argv[0]);
	return show_name(argv[0], false);
}

int do_daemon(int argc, char **argv)
{
	if (argc < 2)
		usage_error("daemon: missing command (show)");
	if (matches(argv[1], "show"))
		return daemon_show(argc - 2, argv + 2);
	usage_error("daemon: unknown command \"%s\"", argv[1]);
}
