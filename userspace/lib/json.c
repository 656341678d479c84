// SPDX-License-Identifier: GPL-2.0-only
/*
 * libqkd: a minimal streaming JSON writer.
 */
#include <qkd/json.h>

void qkd_json_init(struct qkd_json *j, FILE *f)
{
	j->f = f;
	j->depth = 0;
	j->first[0] = true;
	j->after_key = false;
	j->pretty = false;
}

void qkd_json_pretty(struct qkd_json *j, bool on)
{
	j->pretty = on;
}

static void newline(struct qkd_json *j, int depth)
{
	fputc('\n', j->f);
	for (int i = 0; i < depth; i++)
		fputs("    ", j->f);
}

/* Before a value or key: a comma unless first, nothing right after a key. */
static void sep(struct qkd_json *j)
{
	if (j->after_key) {
		j->after_key = false;
		return;
	}
	if (!j->first[j->depth])
		fputc(',', j->f);
	j->first[j->depth] = false;
	if (j->pretty && j->depth > 0)
		newline(j, j->depth);
}

static void escape(struct qkd_json *j, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', j->f);
	for (; *p; p++) {
		switch (*p) {
		case '"':
			fputs("\\\"", j->f);
			break;
		case '\\':
			fputs("\\\\", j->f);
			break;
		case '\n':
			fputs("\\n", j->f);
			break;
		case '\t':
			fputs("\\t", j->f);
			break;
		case '\r':
			fputs("\\r", j->f);
			break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				fprintf(j->f, "\\u%04x", *p);
			else
				fputc(*p, j->f);
		}
	}
	fputc('"', j->f);
}

void qkd_json_key(struct qkd_json *j, const char *key)
{
	sep(j);
	escape(j, key);
	fputs(j->pretty ? ": " : ":", j->f);
	j->after_key = true;
}

static void value(struct qkd_json *j, const char *key)
{
	if (key)
		qkd_json_key(j, key);
	sep(j);
}

void qkd_json_open(struct qkd_json *j, char c)
{
	sep(j);
	fputc(c, j->f);
	if (j->depth < QKD_JSON_DEPTH - 1)
		j->depth++;
	j->first[j->depth] = true;
}

void qkd_json_close(struct qkd_json *j, char c)
{
	if (j->pretty && !j->first[j->depth] && j->depth > 0)
		newline(j, j->depth - 1);
	fputc(c, j->f);
	if (j->depth > 0)
		j->depth--;
}

void qkd_json_str(struct qkd_json *j, const char *key, const char *s)
{
	value(j, key);
	escape(j, s);
}

void qkd_json_u64(struct qkd_json *j, const char *key, uint64_t v)
{
	value(j, key);
	fprintf(j->f, "%llu", (unsigned long long)v);
}

void qkd_json_bool(struct qkd_json *j, const char *key, bool v)
{
	value(j, key);
	fputs(v ? "true" : "false", j->f);
}

void qkd_json_null(struct qkd_json *j, const char *key)
{
	value(j, key);
	fputs("null", j->f);
}

static const char *digits(const char *p)
{
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

bool qkd_json_is_number(const char *s)
{
	const char *p = s, *q;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		p = digits(p);
	else
		return false;
	if (*p == '.') {
		q = digits(p + 1);
		if (q == p + 1)
			return false;
		p = q;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		q = digits(p);
		if (q == p)
			return false;
		p = q;
	}
	return !*p;
}

void qkd_json_num(struct qkd_json *j, const char *key, const char *s)
{
	if (!qkd_json_is_number(s)) {
		qkd_json_str(j, key, s);
		return;
	}
	value(j, key);
	fputs(s, j->f);
}

void qkd_json_end(struct qkd_json *j)
{
	bool pretty = j->pretty;

	fputc('\n', j->f);
	qkd_json_init(j, j->f);
	j->pretty = pretty;
}
