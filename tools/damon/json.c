// SPDX-License-Identifier: LGPL-2.1-or-later OR BSD-2-Clause
/*
 * JSON for damon(1): a writer into a growing buffer, and a pull reader that
 * walks a document without building it in memory (a long record holds
 * millions of regions; the loader keeps only its own compact arrays).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static bool sb_reserve(struct sbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !sb_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sb_puts(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (!sb_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n + 1);
	b->len += n;
}

void sb_json_str(struct sbuf *b, const char *s)
{
	sb_puts(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			sb_printf(b, "\\%c", c);
		else if (c < 0x20)
			sb_printf(b, "\\u%04x", c);
		else
			sb_printf(b, "%c", c);
	}
	sb_puts(b, "\"");
}

void sb_free(struct sbuf *b)
{
	free(b->p);
	*b = (struct sbuf){0};
}

/* ------------------------------------------------------------------------ */

void jr_fail(struct jreader *jr, const char *what)
{
	size_t line = 1;

	if (jr->err[0])
		return; /* keep the first, innermost reason */
	for (const char *q = jr->start; q < jr->p && q < jr->end; q++)
		line += *q == '\n';
	snprintf(jr->err, sizeof(jr->err), "line %zu: %s", line, what);
}

static void skip_ws(struct jreader *jr)
{
	while (jr->p < jr->end &&
	       (*jr->p == ' ' || *jr->p == '\t' || *jr->p == '\n' || *jr->p == '\r'))
		jr->p++;
}

int jr_peek(struct jreader *jr)
{
	skip_ws(jr);
	return jr->p < jr->end ? (unsigned char)*jr->p : 0;
}

int jr_expect(struct jreader *jr, char c)
{
	if (jr_peek(jr) != c) {
		char m[40];

		snprintf(m, sizeof(m), "expected '%c'", c);
		jr_fail(jr, m);
		return -EINVAL;
	}
	jr->p++;
	return 0;
}

int jr_more(struct jreader *jr, char close, bool *first)
{
	int c = jr_peek(jr);

	if (c == close) {
		jr->p++;
		return 0;
	}
	if (!*first) {
		if (c != ',') {
			jr_fail(jr, "expected ',' or the end of the list");
			return -EINVAL;
		}
		jr->p++;
	}
	*first = false;
	return 1;
}

/* A string at jr->p (after its opening quote was seen), unescaped into buf
 * (truncated to sz - 1; \u escapes outside ASCII become '?'). */
static int read_string(struct jreader *jr, char *buf, size_t sz)
{
	size_t n = 0;

	jr->p++; /* the opening quote */
	while (jr->p < jr->end && *jr->p != '"') {
		char c = *jr->p++;

		if ((unsigned char)c < 0x20) {
			jr_fail(jr, "control character in a string");
			return -EINVAL;
		}
		if (c == '\\') {
			if (jr->p >= jr->end)
				break;
			c = *jr->p++;
			switch (c) {
			case 'n':
				c = '\n';
				break;
			case 't':
				c = '\t';
				break;
			case 'r':
				c = '\r';
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'u': {
				unsigned int v = 0;

				for (int i = 0; i < 4; i++, jr->p++) {
					char h = jr->p < jr->end ? *jr->p : 0;

					if (h >= '0' && h <= '9')
						v = v * 16 + (unsigned int)(h - '0');
					else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f')
						v = v * 16 + (unsigned int)((h | 0x20) - 'a' + 10);
					else {
						jr_fail(jr, "bad \\u escape");
						return -EINVAL;
					}
				}
				c = v < 0x80 ? (char)v : '?';
				break;
			}
			case '"':
			case '\\':
			case '/':
				break;
			default:
				jr_fail(jr, "bad escape in a string");
				return -EINVAL;
			}
		}
		if (buf && n + 1 < sz)
			buf[n++] = c;
	}
	if (jr->p >= jr->end) {
		jr_fail(jr, "unterminated string");
		return -EINVAL;
	}
	jr->p++;
	if (buf && sz)
		buf[n] = '\0';
	return 0;
}

int jr_key(struct jreader *jr, char *buf, size_t sz)
{
	if (jr_peek(jr) != '"') {
		jr_fail(jr, "expected a key");
		return -EINVAL;
	}
	if (read_string(jr, buf, sz))
		return -EINVAL;
	return jr_expect(jr, ':');
}

static bool literal_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       c == '-' || c == '+' || c == '.';
}

int jr_scalar(struct jreader *jr, char *buf, size_t sz, bool *is_null)
{
	int c = jr_peek(jr);
	size_t n = 0;

	*is_null = false;
	if (c == '"')
		return read_string(jr, buf, sz);
	if (!c || !literal_char((char)c)) {
		jr_fail(jr, "expected a number, a string or null");
		return -EINVAL;
	}
	while (jr->p < jr->end && literal_char(*jr->p)) {
		if (n + 1 < sz)
			buf[n++] = *jr->p;
		jr->p++;
	}
	buf[n] = '\0';
	if (!strcmp(buf, "null"))
		*is_null = true;
	return 0;
}

int jr_skip(struct jreader *jr)
{
	int c = jr_peek(jr);
	char tmp[64];
	bool first = true, null;
	int more;

	if (c == '[' || c == '{') {
		char close = c == '[' ? ']' : '}';

		if (jr->depth >= 64) {
			jr_fail(jr, "nested too deep");
			return -EINVAL;
		}
		jr->depth++;
		jr->p++;
		while ((more = jr_more(jr, close, &first)) == 1) {
			if (close == '}' && jr_key(jr, NULL, 0))
				return -EINVAL;
			if (jr_skip(jr))
				return -EINVAL;
		}
		jr->depth--;
		return more < 0 ? more : 0;
	}
	return jr_scalar(jr, tmp, sizeof(tmp), &null);
}
