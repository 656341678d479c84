/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * libqkd: a minimal streaming JSON writer (objects, arrays, strings,
 * unsigned integers, numbers given as text, booleans) for the tools' -j
 * output.
 */
#ifndef QKD_JSON_H
#define QKD_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define QKD_JSON_DEPTH	16

struct qkd_json {
	FILE *f;
	int depth;
	bool first[QKD_JSON_DEPTH];
	bool after_key;
	bool pretty;	/* qkd_json_pretty(): one member a line, indented */
};

void qkd_json_init(struct qkd_json *j, FILE *f);
/*
 * Pretty output (qkdctl -j -p): each member and item on a line of its own,
 * indented by four spaces a level, "key": value. Kept across
 * qkd_json_end(); qkd_json_init() turns it off.
 */
void qkd_json_pretty(struct qkd_json *j, bool on);
/* '{' or '[' as a value (after a key, or as an array item). */
void qkd_json_open(struct qkd_json *j, char c);
void qkd_json_close(struct qkd_json *j, char c);
/* A member's key; the next value or open is its value. */
void qkd_json_key(struct qkd_json *j, const char *key);
/* @key NULL: an array item (or the value after qkd_json_key()). */
void qkd_json_str(struct qkd_json *j, const char *key, const char *s);
void qkd_json_u64(struct qkd_json *j, const char *key, uint64_t v);
void qkd_json_bool(struct qkd_json *j, const char *key, bool v);
void qkd_json_null(struct qkd_json *j, const char *key);
/* @s is a JSON number as RFC 8259 spells it (no nan, inf, 0x, 01, 1.). */
bool qkd_json_is_number(const char *s);
/* The number written as @s, as is; a string if @s is not a JSON number. */
void qkd_json_num(struct qkd_json *j, const char *key, const char *s);
/* Ends the top-level value with a newline and resets the writer. */
void qkd_json_end(struct qkd_json *j);

#endif /* QKD_JSON_H */
