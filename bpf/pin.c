// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * pin.c - maps pinned by name under ferryd's pin dir (pin.h).
 *
 * libbpf reuses a pinned map whose type, sizes, entries and flags match
 * the object's and fails the load (EINVAL) on one that does not.  A map
 * left by another version of ferryd is replaced, with a warning: its
 * counters belong to a layout nobody reads any more.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common.h"
#include "pin.h"

int bpf_pin_check(const struct bpf_map *map, const char *pin_dir, const char *who)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char pin[PATH_MAX];
	int fd, ret = 0;

	snprintf(pin, sizeof(pin), "%s/%s", pin_dir, bpf_map__name(map));
	fd = bpf_obj_get(pin);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len)) {
		ret = -errno;
		goto out;
	}
	if (info.type == bpf_map__type(map) && info.key_size == bpf_map__key_size(map) &&
	    info.value_size == bpf_map__value_size(map) &&
	    info.max_entries == bpf_map__max_entries(map) &&
	    info.map_flags == bpf_map__map_flags(map))
		goto out;
	if (unlink(pin)) {
		ret = -errno;
		goto out;
	}
	log_warn("%s: %s had another layout (another ferryd's?): replaced", who, pin);
out:
	close(fd);
	return ret;
}
