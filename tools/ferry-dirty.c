// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ferry-dirty - the live dirty rate of a disk image or block device, from
 * the eBPF dirty tracker: how fast it is written and how many distinct
 * blocks are dirtied per interval, which tells an operator whether a live
 * migration of that disk can converge on a given link.
 *
 *   ferry-dirty [-j] [-p] [-v] [--interval S] [--count N] [--granularity B]
 *               IMAGE|DEVICE
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "bpf/bpf.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: ferry-dirty [OPTIONS] IMAGE|DEVICE\n"
		"Show how fast a disk image or block device is written and how many distinct\n"
		"blocks get dirtied, one line per interval (eBPF, no change to the writer).\n"
		"A live migration of the disk converges when the dirty rate stays well\n"
		"below the link's rate.\n\n"
		"Options:\n"
		"  -i, --interval S       seconds per line (default 1, fractions allowed)\n"
		"  -c, --count N          stop after N lines (default: until interrupted)\n"
		"  -g, --granularity B    tracked block size, 4k to 1M (default 64k)\n"
		"  -P, --pin-dir DIR      pin the disk table there (default %s;\n"
		"                         \"\" pins nothing)\n"
		"  -j, --json             one JSON object per line\n"
		"  -p, --pretty           pretty JSON (implies -j)\n"
		"  -v, --verbose          more messages (-vv: debug)\n"
		"  -h, --help             this help\n"
		"  -V, --version          version\n",
		TRACKER_PIN_DIR_DEFAULT);
}

static void reason_add(const char *name, void *arg)
{
	(void)arg;
	out_str(NULL, NULL, name);
}

/* Sleep until @deadline_ns (CLOCK_MONOTONIC) or a signal. */
static void sleep_until(uint64_t deadline_ns)
{
	while (!stopping) {
		uint64_t now = now_ns();
		struct timespec ts;

		if (now >= deadline_ns)
			return;
		ts.tv_sec = (time_t)((deadline_ns - now) / 1000000000ULL);
		ts.tv_nsec = (long)((deadline_ns - now) % 1000000000ULL);
		nanosleep(&ts, NULL);
	}
}

static void fail(const char *what, int err)
{
	const char *msg = log_last_error();

	/* The library logged it already in plain mode; JSON needs it on stdout. */
	if (out_is_json() || !*msg)
		out_error("%s", *msg ? msg : what ? what : strerror(err));
}

struct sample {
	uint64_t t_ns;
	struct tracker_disk_stats st;
};

static void print_line(const struct tracker_bitmap *bm, const struct sample *a,
		       const struct sample *b, bool header)
{
	double secs = (double)(b->t_ns - a->t_ns) / 1e9;
	uint64_t written = b->st.written_bytes - a->st.written_bytes;
	uint64_t writes = b->st.writes - a->st.writes;
	uint64_t dirty_bytes = bm->dirty_blocks * bm->granularity_bytes;
	uint64_t write_bps = secs > 0 ? (uint64_t)((double)written / secs) : 0;
	uint64_t dirty_bps = secs > 0 ? (uint64_t)((double)dirty_bytes / secs) : 0;
	char tbuf[16], b1[32], b2[32], b3[32], why[256];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(tbuf, sizeof(tbuf), "%H:%M:%S", &tm);
	if (header)
		out_plain("%-8s  %12s  %9s  %12s  %12s  %s\n", "TIME", "WRITTEN/s", "WRITES/s",
			  "DIRTIED/s", "DIRTY-TOTAL", "RESCAN");
	out_object_open(NULL);
	out_u64("time_ms", NULL, wall_ms());
	out_u64("interval_ms", NULL, (b->t_ns - a->t_ns) / 1000000ULL);
	out_u64("written_bytes", NULL, written);
	out_u64("write_bps", NULL, write_bps);
	out_u64("writes", NULL, writes);
	out_u64("interval_dirty_blocks", NULL, bm->dirty_blocks);
	out_u64("interval_dirty_bytes", NULL, dirty_bytes);
	out_u64("dirty_bps", NULL, dirty_bps);
	out_u64("dirty_blocks", NULL, b->st.dirty_blocks);
	out_u64("dirty_bytes", NULL, b->st.dirty_blocks * bm->granularity_bytes);
	out_u64("granularity_bytes", NULL, bm->granularity_bytes);
	out_u64("size_bytes", NULL, bm->size_bytes);
	out_bool("rescan_needed", NULL, bm->rescan_needed);
	out_array_open("rescan_reasons");
	tracker_rescan_foreach(bm->rescan_reasons, reason_add, NULL);
	out_array_close();
	out_object_close();
	snprintf(b1, sizeof(b1), "%s/s", fmt_bytes(write_bps, b3, sizeof(b3)));
	snprintf(b2, sizeof(b2), "%s/s", fmt_bytes(dirty_bps, b3, sizeof(b3)));
	out_plain("%-8s  %12s  %9.0f  %12s  %12s  %s\n", tbuf, b1, secs > 0 ? writes / secs : 0.0,
		  b2, fmt_bytes(b->st.dirty_blocks * bm->granularity_bytes, b3, sizeof(b3)),
		  bm->rescan_needed ? tracker_rescan_str(bm->rescan_reasons, why, sizeof(why)) :
				      "no");
	out_flush();
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "granularity", required_argument, NULL, 'g' },
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct tracker_opts o = { 0 };
	enum out_mode mode = OUT_PLAIN;
	struct tracker_bitmap bm;
	struct tracker_disk *d = NULL;
	struct tracker *t = NULL;
	struct sample prev, cur;
	uint64_t gran = 0, count = 0, n, interval_ns = 1000000000ULL, next;
	int c, verbose = 0, ret, rc = 1;
	char *end;
	double secs;

	log_init(argv[0]);
	/* First pass for -j, so that even option errors come out as JSON. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "i:c:g:P:jpvhV", lopts, NULL)) != -1) {
		if (c == 'j' && mode == OUT_PLAIN)
			mode = OUT_JSON;
		else if (c == 'p')
			mode = OUT_JSON_PRETTY;
	}
	out_init(mode);
	optind = 1;
	while ((c = getopt_long(argc, argv, ":i:c:g:P:jpvhV", lopts, NULL)) != -1) {
		switch (c) {
		case 'i':
			errno = 0;
			secs = strtod(optarg, &end);
			if (errno || *end || !(secs >= 0.01 && secs <= 86400)) {
				out_error("bad interval '%s' (seconds, 0.01 to 86400)", optarg);
				return 2;
			}
			interval_ns = (uint64_t)(secs * 1e9);
			break;
		case 'c':
			if (parse_u64(optarg, &count) || !count) {
				out_error("bad count '%s'", optarg);
				return 2;
			}
			break;
		case 'g':
			if (parse_size(optarg, &gran) || gran < TRACKER_GRANULARITY_MIN ||
			    gran > TRACKER_GRANULARITY_MAX || (gran & (gran - 1))) {
				out_error("bad granularity '%s' (a power of two from 4k to 1M)",
					  optarg);
				return 2;
			}
			break;
		case 'P':
			o.pin_dir = optarg;
			break;
		case 'j':
		case 'p':
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			out_str("version", "ferry-dirty %s\n", FERRY_VERSION);
			out_flush();
			return 0;
		case ':':
			out_error("option '%s' needs a value (see --help)", argv[optind - 1]);
			return 2;
		default:
			out_error("unknown option '%s' (see --help)", argv[optind - 1]);
			return 2;
		}
	}
	if (verbose)
		log_level_set(verbose > 1 ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (optind != argc - 1) {
		out_error(optind >= argc ? "which disk? (see --help)" : "one disk at a time");
		return 2;
	}

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	tracker_bitmap_init(&bm);
	t = tracker_new(&o);
	if (!t) {
		fail("cannot load the dirty tracker", errno);
		goto out;
	}
	ret = tracker_start(t, argv[optind], (uint32_t)gran, &d);
	if (ret) {
		fail(NULL, -ret);
		goto out;
	}
	/* Start from an empty set: the first line covers the first interval. */
	ret = tracker_drain(d, &bm);
	if (ret) {
		fail(NULL, -ret);
		goto out;
	}
	prev.t_ns = now_ns();
	tracker_disk_stats(d, &prev.st);
	next = prev.t_ns;
	for (n = 0; !stopping && (!count || n < count); n++) {
		next += interval_ns;
		sleep_until(next);
		if (stopping)
			break;
		ret = tracker_drain(d, &bm);
		if (ret) {
			out_error("%s: drain: %s", argv[optind], strerror(-ret));
			goto out;
		}
		cur.t_ns = now_ns();
		tracker_disk_stats(d, &cur.st);
		print_line(&bm, &prev, &cur, n == 0);
		prev = cur;
	}
	rc = 0;
out:
	if (d)
		tracker_stop(d);
	tracker_free(t);
	tracker_bitmap_fini(&bm);
	return rc;
}
