// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty-drain - test driver for the dirty tracker: track the disks named on
 * the command line, say {"ready": true} on stdout, then obey one command per
 * line of stdin:
 *   drain   drain every disk; one JSON object per disk with its ranges
 *   stats   one JSON object per disk with its counters
 *   quit    (or end of input) stop tracking and exit
 *
 * Usage: dirty-drain [-g BYTES] [-P PIN_DIR] [-v] PATH...
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "bpf/bpf.h"

#define MAX_DISKS 64

static void reason_add(const char *name, void *arg)
{
	(void)arg;
	out_str(NULL, NULL, name);
}

static int drain_one(struct tracker_disk *d, struct tracker_bitmap *bm)
{
	struct ferry_range *r;
	size_t n, i;
	int ret;

	ret = tracker_drain(d, bm);
	if (ret) {
		out_error("%s: drain: %s", tracker_disk_path(d), strerror(-ret));
		return ret;
	}
	ret = tracker_bitmap_ranges(bm, 0, &r, &n);
	if (ret)
		return ret;
	out_object_open(NULL);
	out_str("path", NULL, tracker_disk_path(d));
	out_u64("seq", NULL, bm->seq);
	out_u64("granularity_bytes", NULL, bm->granularity_bytes);
	out_u64("nbits", NULL, bm->nbits);
	out_u64("size_bytes", NULL, bm->size_bytes);
	out_u64("dirty_blocks", NULL, bm->dirty_blocks);
	out_bool("rescan_needed", NULL, bm->rescan_needed);
	out_array_open("rescan_reasons");
	tracker_rescan_foreach(bm->rescan_reasons, reason_add, NULL);
	out_array_close();
	out_array_open("ranges");
	for (i = 0; i < n; i++) {
		out_array_open(NULL);
		out_u64(NULL, NULL, r[i].offset_bytes);
		out_u64(NULL, NULL, r[i].length_bytes);
		out_array_close();
	}
	out_array_close();
	out_object_close();
	free(r);
	return 0;
}

static void stats_one(struct tracker_disk *d)
{
	struct tracker_disk_stats st;

	tracker_disk_stats(d, &st);
	out_object_open(NULL);
	out_str("path", NULL, tracker_disk_path(d));
	out_u64("writes", NULL, st.writes);
	out_u64("written_bytes", NULL, st.written_bytes);
	out_u64("pending_blocks", NULL, st.pending_blocks);
	out_u64("dirty_blocks", NULL, st.dirty_blocks);
	out_u64("drains", NULL, st.drains);
	out_u64("rescans", NULL, st.rescans);
	out_u64("inflight", NULL, st.inflight);
	out_object_close();
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "granularity", required_argument, NULL, 'g' },
		{ "pin-dir", required_argument, NULL, 'P' },
		{ "verbose", no_argument, NULL, 'v' },
		{ NULL, 0, NULL, 0 },
	};
	struct tracker_opts o = { .pin_dir = "" };
	struct tracker_disk *disks[MAX_DISKS];
	struct tracker_bitmap bm[MAX_DISKS];
	struct tracker *t;
	uint64_t gran = 0;
	char line[256];
	int c, i, n = 0, rc = 1;

	log_init(argv[0]);
	out_init(OUT_JSON);
	while ((c = getopt_long(argc, argv, "g:P:v", lopts, NULL)) != -1) {
		switch (c) {
		case 'g':
			if (parse_size(optarg, &gran) || gran > UINT32_MAX) {
				out_error("bad granularity '%s'", optarg);
				return 2;
			}
			break;
		case 'P':
			o.pin_dir = optarg;
			break;
		case 'v':
			log_level_set(log_level_get() < LOG_LVL_INFO ? LOG_LVL_INFO :
								       LOG_LVL_DEBUG);
			break;
		default:
			return 2;
		}
	}
	if (optind >= argc || argc - optind > MAX_DISKS) {
		out_error("usage: dirty-drain [-g BYTES] [-P PIN_DIR] [-v] PATH...");
		return 2;
	}
	t = tracker_new(&o);
	if (!t) {
		out_error("tracker: %s", log_last_error());
		return 1;
	}
	for (i = optind; i < argc; i++, n++) {
		int ret = tracker_start(t, argv[i], (uint32_t)gran, &disks[n]);

		if (ret) {
			out_error("%s: %s", argv[i], log_last_error());
			goto out;
		}
		tracker_bitmap_init(&bm[n]);
	}
	out_bool("ready", NULL, true);
	out_flush();
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "drain")) {
			for (i = 0; i < n; i++)
				if (drain_one(disks[i], &bm[i]))
					goto out;
		} else if (!strcmp(line, "stats")) {
			for (i = 0; i < n; i++)
				stats_one(disks[i]);
		} else if (!strcmp(line, "quit")) {
			break;
		} else if (*line) {
			out_error("unknown command '%s'", line);
		}
	}
	rc = 0;
out:
	for (i = 0; i < n; i++) {
		tracker_stop(disks[i]);
		tracker_bitmap_fini(&bm[i]);
	}
	tracker_free(t);
	return rc;
}
