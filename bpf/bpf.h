/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * bpf.h - ferry's BPF component: loaders for the programs in bpf/ (x.bpf.c)
 * and the helpers around them.  Grouped by source file.
 */
#ifndef FERRY_BPF_H
#define FERRY_BPF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common.h"

/* dirty.c: the dirty-block tracker (docs/dirty-tracking.md) */

/* 64 KiB: QEMU's default dirty-bitmap granularity and the mover's chunk. */
#define TRACKER_GRANULARITY_DEFAULT (64u * 1024)
#define TRACKER_GRANULARITY_MIN (4u * 1024)
#define TRACKER_GRANULARITY_MAX (1024u * 1024)
#define TRACKER_PIN_DIR_DEFAULT "/sys/fs/bpf/ferry"

struct tracker; /* one per process: the loaded programs and their maps */
struct tracker_disk; /* one tracked file or block device */

struct tracker_opts {
	const char *pin_dir; /* NULL: TRACKER_PIN_DIR_DEFAULT; "": pin nothing */
	uint64_t headroom_bytes; /* growth a file disk may have; 0: 64 GiB */
	uint64_t stale_after_ms; /* bio still in flight at a drain: rescan; 0: 30 s */
};

/*
 * The set of blocks written since the previous drain.  Bit i (LSB first in
 * words[i / 64]) stands for bytes [i * granularity, (i + 1) * granularity).
 * When rescan_needed is set the set is incomplete: copy the whole disk
 * again; tracking goes on from this drain.
 */
struct tracker_bitmap {
	uint64_t granularity_bytes;
	uint64_t nbits; /* blocks covered: the disk size, rounded up */
	uint64_t *words; /* owned; reused by the next drain into this bitmap */
	size_t cap_words; /* allocated */
	uint64_t size_bytes; /* disk size, read after the bits were taken */
	uint64_t dirty_blocks; /* bits set */
	uint64_t seq; /* drain number, from 1 */
	bool rescan_needed;
	uint32_t rescan_reasons; /* enum dirty_rescan bits (bpf/dirty.h) */
};

struct tracker_disk_stats {
	uint64_t writes; /* write operations seen since start */
	uint64_t written_bytes; /* bytes they wrote */
	uint64_t pending_blocks; /* blocks set, not yet drained */
	uint64_t dirty_blocks; /* distinct blocks drained since start */
	uint64_t granularity_bytes;
	uint64_t size_bytes; /* at the last drain (at start before any) */
	uint64_t drains;
	uint64_t rescans; /* drains that said rescan_needed */
	uint64_t inflight; /* block I/O submitted, not completed */
	uint32_t rescan_reasons; /* every reason since start */
};

/*
 * Open, configure and load the programs (once per process; ~0.3 s).  They
 * are attached while at least one disk is tracked, so an idle tracker costs
 * the host nothing.  Needs root, BTF, and tracefs (mounted here if
 * missing).  NULL + errno on failure, logged.
 */
struct tracker *tracker_new(const struct tracker_opts *o);
/* Stop every disk, detach, and unpin the disk table if no tracker uses it. */
void tracker_free(struct tracker *t);
/* The pinned disk table, for `bpftool map dump pinned ...`; NULL if unpinned. */
const char *tracker_pin_path(const struct tracker *t);

/* dirty_disk.c: the tracked disks */
/*
 * Track a regular file (by inode) or a block device; granularity_bytes 0
 * means TRACKER_GRANULARITY_DEFAULT, else a power of two in [MIN, MAX].
 * Start before the first copy pass.  0 or -errno (-EEXIST: already tracked
 * here, -ENOSPC: no free slot, -EOPNOTSUPP: a needed tracepoint is absent).
 */
int tracker_start(struct tracker *t, const char *disk_path, uint32_t granularity_bytes,
		  struct tracker_disk **out);
/*
 * Atomically take the blocks written since the previous drain; 0 or -errno.
 * One drain at a time per disk; different disks may drain concurrently.
 */
int tracker_drain(struct tracker_disk *d, struct tracker_bitmap *bm);
int tracker_disk_stats(struct tracker_disk *d, struct tracker_disk_stats *st);
/* Stop tracking and free @d (the last disk detaches the programs: ~1 s). */
int tracker_stop(struct tracker_disk *d);
const char *tracker_disk_path(const struct tracker_disk *d);

/* dirty_bitmap.c: pure helpers on drained bitmaps */
void tracker_bitmap_init(struct tracker_bitmap *bm);
void tracker_bitmap_fini(struct tracker_bitmap *bm);
/* Make room for nbits bits (zeroed); 0 or -ENOMEM. */
int tracker_bitmap_resize(struct tracker_bitmap *bm, uint64_t nbits);
bool tracker_bitmap_test(const struct tracker_bitmap *bm, uint64_t bit);
uint64_t tracker_bitmap_count(const struct tracker_bitmap *bm);
/*
 * Turn the set bits into byte ranges, adjacent blocks merged, each at most
 * max_len_bytes long (0: unlimited, else rounded down to whole blocks, at
 * least one), the last one clipped at size_bytes when that is set.  *out is
 * malloc'ed (NULL when *n is 0).  0 or -ENOMEM.
 */
int tracker_bitmap_ranges(const struct tracker_bitmap *bm, uint64_t max_len_bytes,
			  struct ferry_range **out, size_t *n);
/* "mmap,shrink" for enum dirty_rescan bits, into buf; "none" for 0. */
const char *tracker_rescan_str(uint32_t reasons, char *buf, size_t len);
/* Call fn for each reason name in reasons (for JSON arrays). */
void tracker_rescan_foreach(uint32_t reasons, void (*fn)(const char *name, void *arg), void *arg);

/* dirty_host.c: what the tracker reads of the host (internal to bpf/) */
/* A process's start time in clock ticks (low 32 bits), 0 if unknown. */
uint32_t dirty_host_start_ticks(pid_t pid);
/* Is process tgid alive and still the one that started at @start? */
bool dirty_host_alive(uint32_t tgid, uint32_t start);
/* Does any process map (kernel dev_t, inode) shared?  true when unsure. */
bool dirty_host_shared_mapping(uint64_t kdev, uint64_t ino);
int dirty_host_bdev_size(unsigned int maj, unsigned int min, uint64_t *size);
/*
 * Request-based (blk-mq) device or partition: the whole disk's kernel
 * dev_t and the start sector on it; bio-based (device-mapper): 0, 0.
 */
int dirty_host_bdev_layout(unsigned int maj, unsigned int min, uint32_t *whole_devt,
			   uint64_t *start_sect);
/* statfs f_type of the file system under fd, 0 if unknown. */
long dirty_host_fs_type(int fd);
/* 1 when a loop device is backed by fd's file: its name, whether it uses direct I/O. */
int dirty_host_loop_backing(int fd, char *name, size_t len, bool *dio);

#ifdef FERRY_BPF_TRACKER_INTERNAL
/* dirty.c and dirty_disk.c, internal: the tracker's state. */
#include <limits.h>
#include <pthread.h>
#include <linux/types.h>
#include "bpf/dirty.h"

#define TRACKER_MAX_PROGS 48

struct dirty_bpf;
struct bpf_link;

struct tracker {
	struct dirty_bpf *skel;
	struct bpf_link *links[TRACKER_MAX_PROGS];
	struct dirty_disk *table; /* mmap of dirty_disks */
	size_t table_len;
	char pin_path[PATH_MAX]; /* of dirty_disks, "" when not pinned */
	char pin_dir[PATH_MAX];
	uint64_t headroom_bytes;
	uint64_t stale_after_ns;
	uint32_t self_tgid, self_start;
	bool have_file, have_bdev, have_dio, have_ext4;
	bool extras_dropped; /* loaded with the essential programs only */
	bool raw_exit; /* syscall exits through tp_btf/sys_exit, not sys_exit_* */
	unsigned int attached; /* groups of programs attached (while disks need them) */
	uint32_t file_always; /* reasons every file disk reports (coverage gaps) */
	pthread_mutex_t lock; /* disks list, probes, global counters */
	struct tracker_disk *disks;
};

struct tracker_disk {
	struct tracker *t;
	struct tracker_disk *next;
	char *path;
	int fd; /* O_PATH: fstat and self-probe */
	uint32_t slot;
	enum dirty_kind kind;
	struct dirty_key key;
	unsigned int rmajor, rminor; /* block device */
	uint32_t whole_devt; /* request-based: kernel dev_t of the whole disk, else 0 */
	uint64_t start_sect; /* partition start on it */
	uint64_t gran, nbits, nwords;
	int words_fd;
	uint64_t *words; /* mmap of the bitmap map */
	size_t words_len;
	uint64_t *ever; /* every block drained since start */
	uint64_t ever_count;
	uint64_t last_size;
	struct dirty_global seen; /* process-wide counters at the last drain */
	bool mmap_sticky; /* a shared mapping still exists */
	bool loop_warned;
	uint64_t seq;
};

/* dirty.c: for dirty_disk.c */
/* Attach the programs a disk of this kind needs, if they are not; 0 or -errno. */
int dirty_attach(struct tracker *t, enum dirty_kind kind, bool bio_based);
/* Detach them (the last disk stopped). */
void dirty_detach(struct tracker *t);
/* The key the programs see for fd (a self-probe); -EIO if they do not fire. */
int dirty_probe_fd(struct tracker *t, int fd, struct dirty_key *key);
/* A free (or dead owner's) slot of the disk table; -ENOSPC when none. */
int dirty_slot_claim(struct tracker *t, uint32_t *slot);
void dirty_slot_release(struct tracker *t, uint32_t slot);
#endif /* FERRY_BPF_TRACKER_INTERNAL */

#endif /* FERRY_BPF_H */
