// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * metrics.bpf.c - no programs: only the pinned map in which ferryd keeps
 * each migration's metrics, created from this object so that it carries
 * BTF and `bpftool map dump` prints named fields.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "metrics.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, FERRY_METRICS_MAX);
	__type(key, struct ferry_mig_key);
	__type(value, struct ferry_mig_metrics);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} migrations SEC(".maps");

char LICENSE[] SEC("license") = "Dual BSD/GPL";
