/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * qkdctl: shared declarations of the subcommands and their helpers.
 */
#ifndef QKDCTL_H
#define QKDCTL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <qkd/nl.h>
#include <qkd/util.h>

#define EXIT_USAGE	2

enum out_mode {
	OUT_HUMAN,
	OUT_JSON,
	OUT_TAB,
};

struct qkdctl_opts {
	enum out_mode out;
	const char *device;	/* /dev/qkd path */
	bool pretty;		/* -p: pretty JSON */
	bool timestamp;		/* --timestamp, monitor -t: time of each event */
};

extern struct qkdctl_opts opts;

/* Subcommands: argv[0] is the object name ("link", ...). */
int do_link(int argc, char **argv);
int do_stream(int argc, char **argv);
int do_key(int argc, char **argv);
int do_status(int argc, char **argv);
int do_monitor(int argc, char **argv);
int do_sa(int argc, char **argv);
int do_alg(int argc, char **argv);
int do_daemon(int argc, char **argv);
int do_genpsk(int argc, char **argv);
int do_up(int argc, char **argv);
int do_down(int argc, char **argv);
/* qkdctl key to-keyring (alg.c); argv[0] is the stream UUID. */
int key_to_keyring(int argc, char **argv);

struct qkd_sa_params;
/* The arguments of "sa add" (argv[0]: the stream UUID); exits 2 if bad. */
void sa_params_parse(int argc, char **argv, struct qkd_sa_params *out);

/* Usage text of one object (NULL: all) to @f. */
void usage(FILE *f, const char *object);

/* ---- helpers (common.c) ---------------------------------------------- */

/* @arg is a non-empty prefix of @word ("sh" matches "show"). */
bool matches(const char *arg, const char *word);

/* Print "qkdctl: <message>" and a hint, exit 2. */
__attribute__((noreturn, format(printf, 1, 2)))
void usage_error(const char *fmt, ...);

/* Print "qkdctl: <what>: <strerror(err)>[: <extack>]"; returns 1. */
int kernel_error(const char *what, int err);

/* Print "qkdctl: <message>"; returns 1. */
__attribute__((format(printf, 1, 2)))
int fail_msg(const char *fmt, ...);

/* The netlink handle, opened on first use (exits 1 if impossible). */
struct qkd_nl *ctl_nl(void);
/* /dev/qkd, opened on first use (exits 1 if impossible). */
int ctl_dev(void);
void ctl_cleanup(void);

/* Argument parsers that exit 2 with a message naming @what on error. */
uint32_t arg_u32(const char *what, const char *s);
uint64_t arg_u64(const char *what, const char *s, uint64_t max);
void arg_uuid(const char *what, const char *s, uint8_t out[16]);
/* The value after keyword argv[*i]; exits 2 if missing. Advances *i. */
const char *arg_next(int argc, char **argv, int *i);
/* { NAME | id N } at argv[*i]; advances *i past it. */
void arg_link_ref(int argc, char **argv, int *i, struct qkd_link_ref *ref);
/* A link name as qkd_link_name_valid() takes it; else exit 2. */
const char *arg_link_name(const char *s);
/* Fails with "unexpected argument" if argv[i] exists. */
void arg_end(int argc, char **argv, int i);

/* ---- JSON writer (common.c) ------------------------------------------- */

void json_open(char c);			/* '{' or '[' as a value */
void json_close(char c);
void json_key(const char *key);		/* before a member's value */
void json_str(const char *key, const char *s);	/* key NULL: array item */
void json_u64(const char *key, uint64_t v);
void json_bool(const char *key, bool v);
void json_null(const char *key);
/* A number given as text (a string if it is not a JSON number). */
void json_num(const char *key, const char *text);
void json_uuid(const char *key, const uint8_t id[16]);
void json_end(void);			/* newline after the top value */
void json_setup(void);			/* after the options: -p */
/*
 * Hold what follows in memory until json_end() (then it goes to stdout) or
 * json_drop() (then it is discarded): a listing that fails half-way prints
 * nothing on stdout. Not for key bytes (the buffer is not wiped).
 */
void json_hold(void);
void json_drop(void);
/*
 * A listing from a dump (link, stream, sa show without an object): in
 * JSON an array, held until the dump ends. listing_end() takes the dump's
 * result: below 0, nothing is printed on stdout and the kernel's error
 * (named with @what) is returned; else 0.
 */
void listing_begin(void);
int listing_end(const char *what, int err);

/* Link name of @id from a cached dump, or NULL. */
const char *link_name_of(uint32_t id);

/* Printing objects in the current output mode (link.c, stream.c). */
void print_link(const struct qkd_link *l);
void print_stream(const struct qkd_stream *s);

#endif /* QKDCTL_H */
