// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * metrics.c - loads metrics.bpf.o (maps only) with its pinning set to
 * ferryd's pin dir, so the map survives ferryd restarts and operators read
 * it with `bpftool map dump pinned PIN_DIR/migrations`.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common.h"
#include "metrics.h"
#include "pin.h"
#include "metrics.skel.h"

struct ferry_metrics {
	struct metrics_bpf *skel;
	int map_fd;
};

struct ferry_metrics *ferry_metrics_open(const char *pin_dir)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct ferry_metrics *fm;
	int ret;

	ret = mkdir_p(pin_dir, 0700);
	if (ret) {
		log_err("metrics: %s: %s (is bpffs mounted on /sys/fs/bpf?)", pin_dir,
			strerror(-ret));
		errno = -ret;
		return NULL;
	}
	fm = calloc(1, sizeof(*fm));
	if (!fm)
		return NULL;
	fm->skel = metrics_bpf__open_opts(&opts);
	if (!fm->skel) {
		ret = -errno;
		log_err("metrics: open BPF object: %s", strerror(errno));
		goto err;
	}
	ret = bpf_pin_check(fm->skel->maps.migrations, pin_dir, "metrics");
	if (!ret)
		ret = metrics_bpf__load(fm->skel);
	if (ret) {
		log_err("metrics: load (pin %s/migrations): %s", pin_dir, strerror(-ret));
		goto err;
	}
	fm->map_fd = bpf_map__fd(fm->skel->maps.migrations);
	return fm;
err:
	metrics_bpf__destroy(fm->skel);
	free(fm);
	errno = -ret;
	return NULL;
}

int ferry_metrics_update(struct ferry_metrics *fm, const struct ferry_mig_key *key,
			 const struct ferry_mig_metrics *val)
{
	if (bpf_map_update_elem(fm->map_fd, key, val, BPF_ANY) < 0)
		return -errno;
	return 0;
}

void ferry_metrics_close(struct ferry_metrics *fm)
{
	if (!fm)
		return;
	/* The pinned map stays: it is the operators' view across restarts. */
	metrics_bpf__destroy(fm->skel);
	free(fm);
}
