// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty.bpf.c - the dirty-block tracker's kernel side.
 *
 * Every write that can change a tracked disk sets bits in that disk's
 * bitmap (an mmapable array, one bit per granularity block); a drain in
 * userspace takes the bits word by word with an atomic exchange.  Nothing
 * is sent to userspace per write.
 *
 * A bit is set only once the data it stands for is visible to a reader:
 * synchronous syscalls at their exit, async I/O at its completion
 * (iomap_dio_complete, io_uring CQEs, bio completion).  So a drain that
 * takes a bit always happens after the write it stands for, and a copy made
 * after the drain reads that write's data.  Anything the programs cannot
 * follow sets a rescan reason on the disk instead (see dirty.h).
 *
 * Files are keyed by (sb dev, ino), block devices by their dev_t; the fd ->
 * struct file step walks task->files->fdt->fd[fd].  See
 * docs/dirty-tracking.md for the full design and its limits.
 *
 * One object, in parts: dirty_lib.bpf.h (maps, marking, resolution),
 * dirty_sys.bpf.h (write syscalls), dirty_async.bpf.h (completions).
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "dirty.h"

char LICENSE[] SEC("license") = "GPL";

/* Knobs, set between open and load. */
const volatile __u32 max_mark_words = DIRTY_MARK_MAX_WORDS; /* longest range marked */
const volatile __u32 max_aio_iocbs = DIRTY_AIO_MAX_IOCBS; /* iocbs read per io_submit() */

/* Set by userspace; cheap filters and the self-probe. */
__u32 nr_file_disks;
__u32 nr_bdev_disks; /* of which: */
__u32 nr_rq_disks; /* request-based (blk-mq) devices and partitions */
__u32 nr_bio_disks; /* bio-based (device-mapper) devices */
__u64 start_gen; /* bumped after each disk is keyed */
__u64 key_mask; /* DIRTY_KEY_BIT() of every key in dirty_keys, maybe more */
struct dirty_key_cache key_cache[64]; /* see dirty.h */
__u32 probe_tid; /* a pwrite64() by this thread reports its fd's key */
struct dirty_key probe_key;

#include "dirty_lib.bpf.h"
#include "dirty_sys.bpf.h"
#include "dirty_async.bpf.h"
