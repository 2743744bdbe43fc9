// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * track.c - ferryd's use of the eBPF dirty tracker (bpf/dirty.c): one
 * tracker per daemon, one tracked disk per migrating data disk, drained
 * into the byte ranges the mover copies in the next pre-copy round.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/copy/copy.h"
#include "bpf/bpf.h"

struct track_disk {
	struct tracker_disk *td;
	struct tracker_bitmap bm; /* reused from drain to drain */
};

static struct tracker *track;

int track_init(void)
{
	struct tracker_opts o = { .pin_dir = ferryd->conf.pin_dir };

	track = tracker_new(&o);
	return track ? 0 : -errno;
}

void track_fini(void)
{
	tracker_free(track);
	track = NULL;
}

int track_start(const char *path, struct track_disk **out)
{
	struct track_disk *d;
	int ret;

	if (!track)
		return -EOPNOTSUPP;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	tracker_bitmap_init(&d->bm);
	ret = tracker_start(track, path, ferryd->conf.track_granularity, &d->td);
	if (ret) {
		free(d);
		return ret;
	}
	*out = d;
	return 0;
}

int track_drain(struct track_disk *d, struct ferry_range **ranges, long *n, uint64_t *bytes,
		bool *rescan, uint32_t *reasons)
{
	size_t i, cnt = 0;
	int ret;

	*ranges = NULL;
	*n = 0;
	*bytes = 0;
	ret = tracker_drain(d->td, &d->bm);
	if (ret)
		return ret;
	*rescan = d->bm.rescan_needed;
	*reasons = d->bm.rescan_reasons;
	if (*rescan)
		return 0;
	ret = tracker_bitmap_ranges(&d->bm, 0, ranges, &cnt);
	if (ret)
		return ret;
	for (i = 0; i < cnt; i++)
		*bytes += (*ranges)[i].length_bytes;
	*n = (long)cnt;
	return 0;
}

void track_stop(struct track_disk *d)
{
	if (!d)
		return;
	tracker_stop(d->td);
	tracker_bitmap_fini(&d->bm);
	free(d);
}
