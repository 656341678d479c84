// SPDX-License-Identifier: GPL-2.0-only
/*
 * qkdctl: helpers shared by the subcommands: argument parsing, error
 * reporting, the netlink and device handles, a small JSON writer.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <qkd/dev.h>
#include <qkd/json.h>

#include "qkdctl.h"

struct qkdctl_opts opts = { .out = OUT_HUMAN };

static struct qkd_nl *nl_handle;
static int dev_fd = -1;

bool matches(const char *arg, const char *word)
{
	size_t n = strlen(arg);

	return n && n <= strlen(word) && !strncmp(arg, word, n);
}

void usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("qkdctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'qkdctl help'.\n", stderr);
	ctl_cleanup();
	exit(EXIT_USAGE);
}

int fail_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("qkdctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

int kernel_error(const char *what, int err)
{
	const char *ext = NULL;

	if (err < 0)
		err = -err;
	/* The extended ACK belongs to the last netlink failure only. */
	if (nl_handle && qkd_nl_errno(nl_handle) == err)
		ext = qkd_nl_extack(nl_handle);
	if (ext)
		fprintf(stderr, "qkdctl: %s: %s: %s\n", what, strerror(err),
			ext);
	else
		fprintf(stderr, "qkdctl: %s: %s\n", what, strerror(err));
	return 1;
}

struct qkd_nl *ctl_nl(void)
{
	int err;

	if (nl_handle)
		return nl_handle;
	err = qkd_nl_open(&nl_handle);
	if (err == -ENOENT) {
		fail_msg("generic netlink family \"%s\" not found (is the qkd module loaded?)",
			 QKD_FAMILY_NAME);
		exit(1);
	}
	if (err) {
		fail_msg("netlink: %s", strerror(-err));
		exit(1);
	}
	return nl_handle;
}

int ctl_dev(void)
{
	const char *path = opts.device ? opts.device : QKD_DEV_PATH;

	if (dev_fd >= 0)
		return dev_fd;
	dev_fd = qkd_dev_open(path);
	if (dev_fd < 0) {
		fail_msg("%s: %s%s", path, strerror(-dev_fd),
			 dev_fd == -ENOENT ?
			 " (is the qkd module loaded?)" : "");
		ctl_cleanup();
		exit(1);
	}
	return dev_fd;
}

void ctl_cleanup(void)
{
	qkd_nl_close(nl_handle);
	nl_handle = NULL;
	if (dev_fd >= 0)
		close(dev_fd);
	dev_fd = -1;
}

uint64_t arg_u64(const char *what, const char *s, uint64_t max)
{
	uint64_t v;
	int err = qkd_parse_u64(s, max, &v);

	if (err == -ERANGE)
		usage_error("%s \"%s\": out of range (0..%llu)", what, s,
			    (unsigned long long)max);
	if (err)
		usage_error("%s \"%s\": not a non-negative integer", what, s);
	return v;
}

uint32_t arg_u32(const char *what, const char *s)
{
	return (uint32_t)arg_u64(what, s, UINT32_MAX);
}

void arg_uuid(const char *what, const char *s, uint8_t out[16])
{
	if (qkd_uuid_parse(s, out))
		usage_error("%s \"%s\": not a UUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)",
			    what, s);
}

const char *arg_next(int argc, char **argv, int *i)
{
	const char *kw = argv[*i];

	if (*i + 1 >= argc)
		usage_error("\"%s\" needs a value", kw);
	*i += 2;
	return argv[*i - 1];
}

const char *arg_link_name(const char *s)
{
	const char *why;

	if (!qkd_link_name_valid(s, &why))
		usage_error("link name \"%s\": %s (1 to %d of [A-Za-z0-9_.-], not starting with '-' or '.')",
			    s, why, QKD_LINK_NAME_MAX - 1);
	return s;
}

void arg_link_ref(int argc, char **argv, int *i, struct qkd_link_ref *ref)
{
	if (*i >= argc)
		usage_error("missing link (NAME or \"id N\")");
	ref->name = NULL;
	ref->id = 0;
	if (!strcmp(argv[*i], "id")) {
		ref->id = arg_u32("link id", arg_next(argc, argv, i));
		if (!ref->id)
			usage_error("link id 0 is invalid (ids start at 1)");
		return;
	}
	ref->name = arg_link_name(argv[*i]);
	(*i)++;
}

void arg_end(int argc, char **argv, int i)
{
	if (i < argc)
		usage_error("unexpected argument \"%s\"", argv[i]);
}

/* ---- JSON (to standard output) ---------------------------------------- */

static struct qkd_json jw = { .first = { true } };

/* A listing held in memory until it is complete (json_hold()). */
static FILE *jheld;
static char *jheld_buf;
static size_t jheld_len;

static FILE *jout(void)
{
	return jheld ? jheld : stdout;
}

void json_hold(void)
{
	if (jheld)
		return;
	jheld = open_memstream(&jheld_buf, &jheld_len);
	/* without memory: straight to stdout, as before */
}

void json_drop(void)
{
	if (jheld) {
		fclose(jheld);
		free(jheld_buf);
		jheld = NULL;
		jheld_buf = NULL;
	}
	qkd_json_init(&jw, stdout);
	qkd_json_pretty(&jw, opts.pretty);
}

void listing_begin(void)
{
	if (opts.out != OUT_JSON)
		return;
	json_hold();
	json_open('[');
}

int listing_end(const char *what, int err)
{
	if (err < 0) {
		json_drop();
		return kernel_error(what, err);
	}
	if (opts.out == OUT_JSON) {
		json_close(']');
		json_end();
	}
	return 0;
}

void json_open(char c)
{
	jw.f = jout();
	qkd_json_open(&jw, c);
}

void json_close(char c)
{
	qkd_json_close(&jw, c);
}

void json_key(const char *key)
{
	jw.f = jout();
	qkd_json_key(&jw, key);
}

void json_str(const char *key, const char *s)
{
	jw.f = jout();
	qkd_json_str(&jw, key, s);
}

void json_u64(const char *key, uint64_t v)
{
	jw.f = jout();
	qkd_json_u64(&jw, key, v);
}

void json_bool(const char *key, bool v)
{
	jw.f = jout();
	qkd_json_bool(&jw, key, v);
}

void json_null(const char *key)
{
	jw.f = jout();
	qkd_json_null(&jw, key);
}

void json_num(const char *key, const char *text)
{
	jw.f = jout();
	qkd_json_num(&jw, key, text);
}

void json_uuid(const char *key, const uint8_t id[16])
{
	char s[QKD_UUID_STR_LEN];

	qkd_uuid_format(id, s);
	json_str(key, s);
}

void json_end(void)
{
	jw.f = jout();
	qkd_json_end(&jw);
	if (jheld) {
		fclose(jheld);
		fwrite(jheld_buf, 1, jheld_len, stdout);
		free(jheld_buf);
		jheld = NULL;
		jheld_buf = NULL;
		qkd_json_init(&jw, stdout);
		qkd_json_pretty(&jw, opts.pretty);
	}
}

void json_setup(void)
{
	qkd_json_pretty(&jw, opts.pretty);
}

/* ---- link names --------------------------------------------------------- */

struct link_names {
	uint32_t id;
	char name[QKD_LINK_NAME_MAX];
};

static struct link_names *names;
static int nnames = -1;

static int collect_name(const struct qkd_link *l, void *arg)
{
	struct link_names *tmp;

	(void)arg;
	tmp = realloc(names, (size_t)(nnames + 1) * sizeof(*names));
	if (!tmp)
		return -ENOMEM;
	names = tmp;
	names[nnames].id = l->id;
	memcpy(names[nnames].name, l->name, sizeof(l->name));
	nnames++;
	return 0;
}

const char *link_name_of(uint32_t id)
{
	int i;

	if (nnames < 0) {
		nnames = 0;
		/* Names are decoration: a failure just leaves them out. */
		if (qkd_link_dump(ctl_nl(), collect_name, NULL) < 0)
			nnames = 0;
	}
	for (i = 0; i < nnames; i++)
		if (names[i].id == id)
			return names[i].name;
	return NULL;
}
