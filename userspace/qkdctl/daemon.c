// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl daemon show: what qkdd says about its link -- the status file it
 * rewrites after every round (qkdd --status; /run/qkdd/LINK.status under
 * the systemd unit): rounds, keys, QBER, efficiency, authentication reserve
 * and the last round's result. No kernel access is needed.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

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
};

static const char *get(const struct status_file *s, const char *key)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->f[i].key, key))
			return s->f[i].val;
	return "";
}

/* key=value lines; anything else in the file makes it unreadable. */
static int status_read(const char *path, struct status_file *s)
{
	char line[sizeof(s->f[0].key) + sizeof(s->f[0].val) + 2];
	FILE *f = fopen(path, "re");
	int err = 0;

	if (!f)
		return -errno;
	s->n = 0;
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

/* Is the daemon that wrote the file still there? */
static bool daemon_alive(const struct status_file *s)
{
	long pid = strtol(get(s, "pid"), NULL, 10);

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
		"last_reason", "warning", NULL,
	};
	static const char *const flags[] = { "connected", "auth_alarm", NULL };
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
	       strcmp(get(s, "connected"), "1") ? "not connected" : "connected",
	       get(s, "pid"));
	printf("    rounds %s ok %s aborted %s; keys %s, next index %s\n",
	       get(s, "rounds"), get(s, "rounds_ok"),
	       get(s, "rounds_aborted"), get(s, "keys_total"),
	       get(s, "next_index"));
	printf("    auth reserve %s bytes, tag failures %s\n",
	       get(s, "auth_reserve"), get(s, "auth_failures"));
	if (get(s, "warning")[0])
		printf("    WARNING: %s\n", get(s, "warning"));
	if (!res[0])
		return;
	printf("    last round %s: %s", get(s, "last_round"), res);
	if (!strcmp(res, "ok"))
		printf(", QBER %.2f%%, f %s%s%s%s, %s sifted bits, %s secret bits, %s keys, %s s\n",
		       100 * strtod(get(s, "qber"), NULL), get(s, "efficiency"),
		       get(s, "efficiency_true")[0] ? " (" : "",
		       get(s, "efficiency_true"),
		       get(s, "efficiency_true")[0] ? " against the true errors)" : "",
		       get(s, "sifted_bits"), get(s, "secret_bits"),
		       get(s, "keys"), get(s, "round_seconds"));
	else
		printf(": %s\n", get(s, "last_reason"));
}

static int show_one(const char *path, bool in_array)
{
	struct status_file s;
	int err = status_read(path, &s);

	if (err == -EBADMSG)
		return fail_msg("daemon show: %s is not a qkdd status file", path);
	if (err)
		return fail_msg("daemon show: %s: %s", path, strerror(-err));
	if (opts.out == OUT_JSON)
		print_json(&s);
	else if (opts.out == OUT_TAB)
		print_tab(&s);
	else
		print_human(&s);
	if (opts.out == OUT_JSON && !in_array)
		json_end();
	return 0;
}

static bool is_status_name(const char *name)
{
	size_t n = strlen(name);

	return name[0] != '.' && n > 7 && !strcmp(name + n - 7, ".status");
}

/* Every status file in the run directory, in name order. */
static int show_all(void)
{
	struct dirent **names;
	char path[512];
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
		if (is_status_name(names[i]->d_name)) {
			snprintf(path, sizeof(path), "%s/%s", QKDD_RUN_DIR,
				 names[i]->d_name);
			rc |= show_one(path, true);
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
	char path[512];
	int i = 0;

	if (argc == 0)
		return show_all();
	if (!strcmp(argv[0], "file")) {
		const char *file = arg_next(argc, argv, &i);

		arg_end(argc, argv, i);
		return show_one(file, false);
	}
	arg_end(argc, argv, 1);
	if (strchr(argv[0], '/') || strlen(argv[0]) >= 64)
		usage_error("daemon show: \"%s\" is not a link name (use \"file PATH\")",
			    argv[0]);
	snprintf(path, sizeof(path), "%s/%s.status", QKDD_RUN_DIR, argv[0]);
	return show_one(path, false);
}

int do_daemon(int argc, char **argv)
{
	if (argc < 2)
		usage_error("daemon: missing command (show)");
	if (matches(argv[1], "show"))
		return daemon_show(argc - 2, argv + 2);
	usage_error("daemon: unknown command \"%s\"", argv[1]);
}
