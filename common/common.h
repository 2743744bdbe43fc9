/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * common.h - small helpers shared by ferry's components: the logger, the one
 * print path for plain and JSON output, and a few parsing and I/O helpers.
 * Grouped by source file.
 */
#ifndef FERRY_COMMON_H
#define FERRY_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.1.0"
#endif

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d)-1) / (d))
#define ROUND_UP(n, a) (DIV_ROUND_UP(n, a) * (a))
#define ROUND_DOWN(n, a) ((n) / (a) * (a))
#define __printf(a, b) __attribute__((format(printf, a, b)))
#define __unused __attribute__((unused))

/*
 * A byte range of a disk: what the dirty tracker reports and what the mover
 * copies, passed from one to the other unchanged.
 */
struct ferry_range {
	uint64_t offset_bytes;
	uint64_t length_bytes; /* > 0 */
};

#define KIB (1024ULL)
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)
#define TIB (1024ULL * GIB)

/* log.c */
enum log_level {
	LOG_LVL_ERR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* Debug subsystems, selected with --debug=mover,bpf or -vv (all). */
enum log_sub {
	LOG_SUB_CORE = 1u << 0,
	LOG_SUB_MOVER = 1u << 1,
	LOG_SUB_BPF = 1u << 2,
	LOG_SUB_NET = 1u << 3,
	LOG_SUB_DAEMON = 1u << 4,
	LOG_SUB_VIRT = 1u << 5,
	LOG_SUB_PEER = 1u << 6,
	LOG_SUB_CLUSTER = 1u << 7, /* etcd: membership and records */
	LOG_SUB_ALL = ~0u,
};

enum log_sink {
	LOG_SINK_STDERR = 0,
	LOG_SINK_SYSLOG, /* journald reads it through /dev/log */
};

void log_init(const char *prog);
const char *log_prog(void);
void log_level_set(enum log_level lvl);
enum log_level log_level_get(void);
/* Parse "mover,bpf" (or "all"); returns 0 or -EINVAL naming the bad word. */
int log_debug_parse(const char *list);
void log_debug_mask_set(unsigned int mask);
bool log_debug_enabled(unsigned int sub);
void log_sink_set(enum log_sink sink);
/* When set, errors and warnings are not written to stderr (JSON mode writes
 * them as {"error": ...} through output.c instead). */
void log_quiet_set(bool quiet);
/* Prefix each stderr line with a UTC timestamp (daemons writing a file). */
void log_timestamps_set(bool on);
void log_vmsg(enum log_level lvl, unsigned int sub, const char *fmt, va_list ap);
void log_msg(enum log_level lvl, unsigned int sub, const char *fmt, ...) __printf(3, 4);
/* Last error message written, for callers that must report it elsewhere. */
const char *log_last_error(void);

/* All of these preserve errno. */
#define log_err(...) log_msg(LOG_LVL_ERR, LOG_SUB_CORE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, LOG_SUB_CORE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, LOG_SUB_CORE, __VA_ARGS__)
#define log_debug(sub, ...)                                                                        \
	do {                                                                                       \
		if (log_debug_enabled(sub))                                                        \
			log_msg(LOG_LVL_DEBUG, sub, __VA_ARGS__);                                  \
	} while (0)

/* output.c: one print path for plain text and -j JSON, iproute2 style. */
enum out_mode {
	OUT_PLAIN = 0,
	OUT_JSON,
	OUT_JSON_PRETTY,
};

void out_init(enum out_mode mode);
bool out_is_json(void);
/*
 * Containers.  In JSON mode they nest; in plain mode they print nothing.
 * A NULL key inside an array (or at top level) opens an anonymous value.
 */
void out_object_open(const char *key);
void out_object_close(void);
void out_array_open(const char *key);
void out_array_close(void);
/*
 * Values.  @fmt is the plain-text format (NULL: JSON only); the JSON key is
 * always @key.  In plain mode the value is printed with @fmt immediately.
 */
void out_str(const char *key, const char *fmt, const char *val);
void out_u64(const char *key, const char *fmt, uint64_t val);
void out_s64(const char *key, const char *fmt, int64_t val);
void out_double(const char *key, const char *fmt, double val);
void out_bool(const char *key, const char *fmt, bool val);
void out_null(const char *key, const char *fmt);
/* Plain-only text (newlines, separators). */
void out_plain(const char *fmt, ...) __printf(1, 2);
/* Print a finished top-level JSON value (one line, or pretty) and reset. */
void out_flush(void);
/*
 * Report a fatal error of the command: plain mode "prog: msg" on stderr,
 * JSON mode {"error": "msg"} on stdout (so `cmd -j | jq` never breaks).
 */
void out_error(const char *fmt, ...) __printf(1, 2);

/* util.c */
/* "4096", "4k", "1M", "16G", "1T" (binary multipliers); -EINVAL / -ERANGE. */
int parse_size(const char *s, uint64_t *out);
/* "500M" bytes/s, "1gbit", "100mbit"; returns bytes per second. */
int parse_rate(const char *s, uint64_t *out_bps);
int parse_u64(const char *s, uint64_t *out);
int parse_int(const char *s, int min, int max, int *out);
/* Human-readable bytes "1.5 GiB" into buf. */
int parse_mac(const char *s, uint8_t mac[6]); /* "52:54:00:12:34:56" */
const char *fmt_bytes(uint64_t v, char *buf, size_t len);
const char *fmt_mac(const uint8_t mac[6], char *buf, size_t len);
uint64_t now_ns(void); /* CLOCK_MONOTONIC */
uint64_t now_ms(void);
uint64_t wall_ms(void); /* CLOCK_REALTIME, for timestamps shown to people */
/* Full-length I/O, retrying on EINTR and short counts; 0 or -errno. */
int read_full(int fd, void *buf, size_t len);
int write_full(int fd, const void *buf, size_t len);
int pread_full(int fd, void *buf, size_t len, off_t off);
int pwrite_full(int fd, const void *buf, size_t len, off_t off);
int random_bytes(void *buf, size_t len);
/* Lower-case hex; out must hold 2*len+1. */
void hex_encode(const void *in, size_t len, char *out);
/* Exactly 2*len hex digits; 0 or -EINVAL. */
int hex_decode(const char *in, void *out, size_t len);
/* Constant-time comparison: 0 when equal. */
int ct_memcmp(const void *a, const void *b, size_t len);
/* Write a file atomically (tmp + fsync + rename + fsync dir); 0 or -errno. */
int file_write_atomic(const char *path, const void *buf, size_t len, mode_t mode);
/* Create @path (never an existing file, never through a link), write, fsync. */
int file_write_new(const char *path, const void *buf, size_t len, mode_t mode);
/* Read a whole small file (NUL-terminated, at most max bytes); NULL + errno. */
char *file_read_all(const char *path, size_t max, size_t *len);
int fsync_dir_of(const char *path);
/* mkdir -p; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* A detached thread running fn(arg); 0 or -errno. */
int thread_spawn_detached(void *(*fn)(void *), void *arg);

#endif /* FERRY_COMMON_H */
