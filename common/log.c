// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * log.c - one logger for every ferry binary: levels, a per-subsystem debug
 * mask and a stderr or syslog (journal) sink.  Every entry point preserves
 * errno so that callers can log and then return -errno.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static const char *log_progname = "ferry";
static enum log_level log_cur_level = LOG_LVL_WARN;
static unsigned int log_debug_mask;
static enum log_sink log_cur_sink = LOG_SINK_STDERR;
static bool log_quiet;
static bool log_stamps;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_last[512];

static const struct {
	const char *name;
	unsigned int bit;
} log_subs[] = {
	{ "core", LOG_SUB_CORE }, { "mover", LOG_SUB_MOVER }, { "bpf", LOG_SUB_BPF },
	{ "net", LOG_SUB_NET },	  { "daemon", LOG_SUB_DAEMON }, { "virt", LOG_SUB_VIRT },
	{ "peer", LOG_SUB_PEER }, { "cluster", LOG_SUB_CLUSTER }, { "all", LOG_SUB_ALL },
};

void log_init(const char *prog)
{
	const char *slash = strrchr(prog, '/');
	const char *env;

	log_progname = slash ? slash + 1 : prog;
	env = getenv("FERRY_DEBUG");
	if (env && *env && log_debug_parse(env) == 0)
		log_cur_level = LOG_LVL_DEBUG;
}

const char *log_prog(void)
{
	return log_progname;
}

void log_level_set(enum log_level lvl)
{
	log_cur_level = lvl;
	if (lvl >= LOG_LVL_DEBUG && !log_debug_mask)
		log_debug_mask = LOG_SUB_ALL;
}

enum log_level log_level_get(void)
{
	return log_cur_level;
}

int log_debug_parse(const char *list)
{
	unsigned int mask = 0;
	char *dup, *tok, *save = NULL;
	int ret = 0;

	dup = strdup(list);
	if (!dup)
		return -ENOMEM;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(log_subs); i++)
			if (!strcasecmp(tok, log_subs[i].name))
				break;
		if (i == ARRAY_SIZE(log_subs)) {
			log_err("unknown debug subsystem '%s' (known: core, mover, bpf, net, "
				"daemon, virt, peer, all)",
				tok);
			ret = -EINVAL;
			goto out;
		}
		mask |= log_subs[i].bit;
	}
	log_debug_mask = mask;
	log_cur_level = LOG_LVL_DEBUG;
out:
	free(dup);
	return ret;
}

void log_debug_mask_set(unsigned int mask)
{
	log_debug_mask = mask;
}

bool log_debug_enabled(unsigned int sub)
{
	return log_cur_level >= LOG_LVL_DEBUG && (log_debug_mask & sub);
}

void log_sink_set(enum log_sink sink)
{
	if (sink == LOG_SINK_SYSLOG && log_cur_sink != LOG_SINK_SYSLOG)
		openlog(log_progname, LOG_PID | LOG_NDELAY, LOG_DAEMON);
	log_cur_sink = sink;
}

void log_quiet_set(bool quiet)
{
	log_quiet = quiet;
}

void log_timestamps_set(bool on)
{
	log_stamps = on;
}

const char *log_last_error(void)
{
	return log_last;
}

static const char *log_sub_name(unsigned int sub)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(log_subs) - 1; i++)
		if (log_subs[i].bit == sub)
			return log_subs[i].name;
	return "core";
}

void log_vmsg(enum log_level lvl, unsigned int sub, const char *fmt, va_list ap)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	static const char *const tag[] = { "", "warning: ", "", "" };
	int saved = errno;
	char msg[1024];
	size_t n;

	if (lvl > log_cur_level)
		goto out;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';

	pthread_mutex_lock(&log_lock);
	if (lvl == LOG_LVL_ERR)
		snprintf(log_last, sizeof(log_last), "%s", msg);
	if (log_cur_sink == LOG_SINK_SYSLOG) {
		syslog(prio[lvl], "%s", msg);
	} else if (!(log_quiet && lvl <= LOG_LVL_WARN)) {
		if (log_stamps) {
			struct timespec ts;
			struct tm tm;

			clock_gettime(CLOCK_REALTIME, &ts);
			gmtime_r(&ts.tv_sec, &tm);
			fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
				tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
				ts.tv_nsec / 1000000);
		}
		if (lvl == LOG_LVL_DEBUG)
			fprintf(stderr, "%s: [%s] %s\n", log_progname, log_sub_name(sub), msg);
		else
			fprintf(stderr, "%s: %s%s\n", log_progname, tag[lvl], msg);
	}
	pthread_mutex_unlock(&log_lock);
out:
	errno = saved;
}

void log_msg(enum log_level lvl, unsigned int sub, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(lvl, sub, fmt, ap);
	va_end(ap);
}
