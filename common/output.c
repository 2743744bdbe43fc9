// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * output.c - the one print path for plain text and JSON (-j, -p).
 *
 * Callers describe what they print once: out_u64("rate_bps", "%" PRIu64 "
 * B/s\n", v) prints the formatted text in plain mode and adds "rate_bps": v
 * to the current JSON container in JSON mode.  JSON is built with json-c and
 * written by out_flush(), one value per line (JSON lines) unless pretty.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common.h"

#define OUT_MAX_DEPTH 16

static enum out_mode out_cur_mode = OUT_PLAIN;
static struct json_object *out_stack[OUT_MAX_DEPTH];
static int out_depth; /* number of open containers */

void out_init(enum out_mode mode)
{
	out_cur_mode = mode;
	log_quiet_set(mode != OUT_PLAIN);
}

bool out_is_json(void)
{
	return out_cur_mode != OUT_PLAIN;
}

static void out_attach(const char *key, struct json_object *val)
{
	struct json_object *top;

	if (!out_depth) {
		/* A bare value at top level gets an implicit object. */
		out_stack[out_depth++] = json_object_new_object();
	}
	top = out_stack[out_depth - 1];
	if (json_object_is_type(top, json_type_array))
		json_object_array_add(top, val);
	else
		json_object_object_add(top, key ? key : "value", val);
}

static void out_push(const char *key, struct json_object *c)
{
	if (out_depth >= OUT_MAX_DEPTH) {
		json_object_put(c);
		return;
	}
	if (out_depth)
		out_attach(key, json_object_get(c));
	out_stack[out_depth++] = c;
}

static void out_pop(void)
{
	struct json_object *c;

	if (!out_depth)
		return;
	c = out_stack[--out_depth];
	if (out_depth)
		json_object_put(c); /* the parent holds its own reference */
	else
		out_stack[0] = c, out_depth = 1, out_flush();
}

void out_object_open(const char *key)
{
	if (out_is_json())
		out_push(key, json_object_new_object());
}

void out_object_close(void)
{
	if (out_is_json())
		out_pop();
}

void out_array_open(const char *key)
{
	if (out_is_json())
		out_push(key, json_object_new_array());
}

void out_array_close(void)
{
	if (out_is_json())
		out_pop();
}

static void out_plain_v(const char *fmt, ...) __printf(1, 2);
static void out_plain_v(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

/* The format strings come from our own callers and match the value type. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
void out_str(const char *key, const char *fmt, const char *val)
{
	if (out_is_json())
		out_attach(key, val ? json_object_new_string(val) : NULL);
	else if (fmt)
		out_plain_v(fmt, val ? val : "-");
}

void out_u64(const char *key, const char *fmt, uint64_t val)
{
	if (out_is_json())
		out_attach(key, json_object_new_uint64(val));
	else if (fmt)
		out_plain_v(fmt, val);
}

void out_s64(const char *key, const char *fmt, int64_t val)
{
	if (out_is_json())
		out_attach(key, json_object_new_int64(val));
	else if (fmt)
		out_plain_v(fmt, val);
}

void out_double(const char *key, const char *fmt, double val)
{
	if (out_is_json())
		out_attach(key, json_object_new_double(val));
	else if (fmt)
		out_plain_v(fmt, val);
}

void out_bool(const char *key, const char *fmt, bool val)
{
	if (out_is_json())
		out_attach(key, json_object_new_boolean(val));
	else if (fmt)
		out_plain_v(fmt, val ? "yes" : "no");
}

void out_null(const char *key, const char *fmt)
{
	if (out_is_json())
		out_attach(key, NULL);
	else if (fmt)
		out_plain_v(fmt, "-");
}
#pragma GCC diagnostic pop

void out_plain(const char *fmt, ...)
{
	va_list ap;

	if (out_is_json())
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

void out_flush(void)
{
	int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

	if (!out_is_json()) {
		fflush(stdout);
		return;
	}
	if (!out_depth)
		return;
	if (out_cur_mode == OUT_JSON_PRETTY)
		flags = JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
			JSON_C_TO_STRING_NOSLASHESCAPE;
	/* Only complete values are printed; close what the caller left open. */
	puts(json_object_to_json_string_ext(out_stack[0], flags));
	fflush(stdout);
	json_object_put(out_stack[0]);
	out_depth = 0;
}

void out_error(const char *fmt, ...)
{
	int saved = errno;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (out_is_json()) {
		struct json_object *o = json_object_new_object();

		/* Drop a half-built value: the error replaces it. */
		if (out_depth)
			json_object_put(out_stack[0]);
		out_depth = 0;
		json_object_object_add(o, "error", json_object_new_string(msg));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							       JSON_C_TO_STRING_NOSLASHESCAPE));
		fflush(stdout);
		json_object_put(o);
	} else {
		fflush(stdout);
		fprintf(stderr, "%s: %s\n", log_prog(), msg);
	}
	errno = saved;
}
