/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirty.h - the fixed-width types shared by the dirty-block tracker's BPF
 * programs (dirty.bpf.c) and its loader (dirty.c).  Nothing else goes here:
 * userspace API is in bpf.h.
 *
 * Userspace must include <linux/types.h> before this header.
 */
#ifndef FERRY_BPF_DIRTY_H
#define FERRY_BPF_DIRTY_H

/* Slots in the host-wide disk table (every tracker process on a host). */
#define DIRTY_MAX_DISKS 128

/* dirty_key.dev for block devices: .ino then holds the kernel dev_t. */
#define DIRTY_KEY_BDEV 0xffffffffffffffffULL

/* Granularity bounds, as a shift: 4 KiB .. 1 MiB. */
#define DIRTY_GRAN_SHIFT_MIN 12
#define DIRTY_GRAN_SHIFT_MAX 20

/* Longest range marked in one go, in bitmap words (64 blocks each). */
#define DIRTY_MARK_MAX_WORDS (1U << 20)

/* Tracked ranges per request-based disk (the whole disk and partitions). */
#define DIRTY_MAX_PARTS 8

/* iocbs read per io_submit() and iovecs per iocb. */
#define DIRTY_AIO_MAX_IOCBS 1024
#define DIRTY_AIO_MAX_IOVECS 64

enum dirty_kind {
	DIRTY_KIND_FILE = 1,
	DIRTY_KIND_BDEV = 2,
};

/* dirty_disk.config: what the owner found out about the disk at start. */
enum dirty_config {
	DIRTY_CFG_DIO_DONE = 1 << 0, /* its fs reports O_DIRECT completion (iomap) */
	DIRTY_CFG_SHRINK_HOOK = 1 << 1, /* its fs reports every truncation (ext4) */
	DIRTY_CFG_BIO_BASED = 1 << 2, /* a bio-based device (dm): bios complete traced */
};

/*
 * Why a disk needs a full rescan.  The BPF side ORs bits into
 * dirty_disk.rescan; a drain takes them atomically.
 */
enum dirty_rescan {
	DIRTY_RESCAN_MMAP = 1 << 0, /* shared mapping of a tracked file */
	DIRTY_RESCAN_SHRINK = 1 << 1, /* truncated (may have shrunk) */
	DIRTY_RESCAN_SHIFT = 1 << 2, /* fallocate collapse/insert range */
	DIRTY_RESCAN_OVERFLOW = 1 << 3, /* an in-flight table was full */
	DIRTY_RESCAN_CAPACITY = 1 << 4, /* write beyond the bitmap */
	DIRTY_RESCAN_RANGE = 1 << 5, /* range too long to mark */
	DIRTY_RESCAN_POS_RACE = 1 << 6, /* file position moved under a write */
	DIRTY_RESCAN_IO_URING = 1 << 7, /* io_uring op or CQE we cannot follow */
	DIRTY_RESCAN_ASYNC_DIO = 1 << 8, /* async O_DIRECT without completion hook */
	DIRTY_RESCAN_IO_ERROR = 1 << 9, /* a write failed part way */
	DIRTY_RESCAN_TRUNCATE = 1 << 10, /* truncate(2) by path on this host */
	DIRTY_RESCAN_REFLINK = 1 << 11, /* FICLONE into the file */
	DIRTY_RESCAN_APPEND = 1 << 12, /* positional write on an O_APPEND fd */
	DIRTY_RESCAN_LOST = 1 << 13, /* a write whose file could not be resolved */
	DIRTY_RESCAN_STALE = 1 << 14, /* an in-flight I/O never completed */
	DIRTY_RESCAN_DETACHED = 1 << 15, /* a program stopped firing (userspace) */
	DIRTY_RESCAN_UNCOVERED = 1 << 16, /* a tracepoint it needs is missing */
	DIRTY_RESCAN_AIO = 1 << 17, /* io_submit too large or unreadable */
};

struct dirty_key {
	__u64 dev; /* kernel dev_t of the inode's sb, or DIRTY_KEY_BDEV */
	__u64 ino; /* inode number, or the block device's kernel dev_t */
};

/*
 * The bit a key sets in key_mask, a one-word filter the programs test
 * before any map lookup: a file whose bit is clear is not tracked.
 */
#define DIRTY_KEY_BIT(dev, ino) (((ino) ^ ((ino) >> 6) ^ ((ino) >> 12) ^ (dev) ^ ((dev) >> 20)) & 63)

/*
 * key_cache[DIRTY_KEY_BIT()]: the first disk keyed with that bit, so that
 * a tracked write finds its slot without hashing.  Only a hint: the
 * programs take it when its cookie is the slot's in dirty_disks, else
 * look the key up in dirty_keys.  The owner fills it before the key, and
 * clears the cookie first when the disk stops.
 */
struct dirty_key_cache {
	__u64 dev;
	__u64 ino;
	__u32 slot;
	__u32 cookie; /* 0: empty */
};

/*
 * One tracked disk: an element of the pinned, mmapable array dirty_disks
 * shared by every tracker on the host.  The owner writes the identity and
 * configuration; the BPF programs update the counters atomically; a drain
 * takes .rescan with an atomic exchange.
 */
struct dirty_disk {
	/* identity, written by the owner (the first two claimed together) */
	__u32 owner_tgid; /* tracking process; 0 = free slot */
	__u32 owner_start; /* its start time in clock ticks (low 32 bits) */
	__u32 cookie; /* new at every start; guards in-flight entries */
	__u32 kind; /* enum dirty_kind */
	__u32 major; /* st_dev (file) or st_rdev (block device), for people */
	__u32 minor;
	__u32 gran_shift; /* log2(granularity_bytes) */
	__u32 pad;
	__u64 ino; /* inode number (file) or 0 */
	__u64 granularity_bytes;
	__u64 nbits; /* blocks the bitmap holds */
	__u64 config; /* enum dirty_config */
	/* updated by the BPF programs */
	__u64 rescan; /* enum dirty_rescan bits since the last drain */
	__u64 writes; /* write operations seen */
	__u64 written_bytes; /* bytes those operations wrote */
	__u64 pending_blocks; /* blocks set since the last drain */
	__u64 inflight; /* async I/Os seen submitted, not yet completed */
	/* updated by the owner at each drain */
	__u64 drains;
	__u64 rescans; /* drains that returned rescan_needed */
	__u64 rescan_reasons; /* every reason seen since start */
	__u64 dirty_blocks; /* distinct blocks dirtied since start */
	__u64 size_bytes; /* disk size at the last drain */
};

/*
 * A write syscall between entry and exit (file-position writes, ftruncate):
 * the task's storage, so that its exit knows where the position was.
 */
struct dirty_pending {
	__u64 file; /* struct file * at entry */
	__s64 lo; /* f_pos, or i_size for O_APPEND, at entry */
	__s64 arg; /* ftruncate: new length */
	__u64 gen; /* start_gen at entry: no disk started since if unchanged */
	__u32 slot;
	__u32 cookie;
	__u32 nr; /* syscall number; 0: none in progress */
	__u32 flags; /* DIRTY_PEND_* */
};

#define DIRTY_PEND_TRACKED 1 /* the file is a tracked disk's */
#define DIRTY_PEND_APPEND 2 /* O_APPEND: lo is i_size */

/* A bio to a tracked block device between queue and completion. */
struct dirty_inflight {
	__u64 start; /* bytes, device-relative */
	__u64 len;
	__u64 ts_ns;
	__u32 slot;
	__u32 cookie;
	__u32 done; /* completed, but the delete failed */
	__u32 pad;
};

/*
 * The tracked parts of one request-based (blk-mq) disk, keyed by the whole
 * disk's kernel dev_t: requests complete against the whole disk, at
 * absolute sectors.
 */
struct dirty_bdev_part {
	__u64 start_sect; /* first sector of the tracked device on the disk */
	__u64 nr_sect;
	__u32 slot;
	__u32 cookie;
};

struct dirty_bdev_map {
	__u32 n;
	__u32 pad;
	struct dirty_bdev_part part[DIRTY_MAX_PARTS];
};

/* Process-wide events that concern every disk of one tracker. */
struct dirty_global {
	__u64 lost_writes; /* write exits whose fd no longer resolved */
	__u64 truncates; /* truncate(2) by path, anywhere */
	__u64 blind_writes; /* io_uring or aio writes we could neither place nor see done */
	__u64 probe_hits; /* self-probes seen (liveness of the syscall hooks) */
};

#endif /* FERRY_BPF_DIRTY_H */
