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
__u32 nr_bdev_disks;
__u32 probe_tid; /* a pwrite64() by this thread reports its fd's key */
struct dirty_key probe_key;

/* Host-wide table of tracked disks, pinned, mmapable, with BTF. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, DIRTY_MAX_DISKS);
	__type(key, __u32);
	__type(value, struct dirty_disk);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dirty_disks SEC(".maps");

/* This process's disks: key -> slot in dirty_disks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DIRTY_MAX_DISKS);
	__type(key, struct dirty_key);
	__type(value, __u32);
} dirty_keys SEC(".maps");

/* One bitmap per slot, sized per disk by userspace. */
struct dirty_words {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, DIRTY_MAX_DISKS);
	__type(key, __u32);
	__array(values, struct dirty_words);
} dirty_bitmaps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tid */
	__type(value, struct dirty_pending);
} dirty_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* struct bio * */
	__type(value, struct dirty_inflight);
} dirty_inflight SEC(".maps");

/* Request-based disks with tracked parts: whole-disk dev_t -> parts. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DIRTY_MAX_DISKS);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* updates replace the value whole */
	__type(key, __u32);
	__type(value, struct dirty_bdev_map);
} dirty_bdevs SEC(".maps");

/* O_DIRECT writes to tracked files without IOCB_WRITE, begun, not done. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* struct kiocb * */
	__type(value, __u32); /* slot */
} dirty_dio_writes SEC(".maps");

/* io_uring rings that submitted writes to tracked (or unplaceable) files. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* struct io_ring_ctx * */
	__type(value, __u32); /* slot + 1, or 0 when the file was not placed */
} dirty_rings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dirty_global);
} dirty_global SEC(".maps");

/* Flags not in BTF (#defines in include/linux/fs.h and uapi). */
#define IOCB_APPEND (1 << 4)
#define IOCB_DIRECT (1 << 17)
#define IOCB_WRITE (1 << 18)
#define RWF_APPEND 0x10
#define FMODE_WRITE_ 0x2
#define O_TRUNC_ 01000
#define O_APPEND_ 02000
#define PROT_WRITE_ 0x2
#define MAP_SHARED_ 0x01
#define FALLOC_FL_PUNCH_HOLE_ 0x02
#define FALLOC_FL_COLLAPSE_RANGE_ 0x08
#define FALLOC_FL_ZERO_RANGE_ 0x10
#define FALLOC_FL_INSERT_RANGE_ 0x20
#define FALLOC_FL_WRITE_ZEROES_ 0x80
#define IOCB_CMD_PWRITE_ 1
#define IOCB_CMD_PWRITEV_ 8
#define FICLONE_ 0x40049409
#define FICLONERANGE_ 0x4020940d
#define S_IFMT_ 00170000
#define S_IFBLK_ 0060000
#define EIO_ 5
#define FFS_MASK_ (~3UL)

/* ---- the bitmap ----------------------------------------------------- */

static __always_inline __u64 popcount64(__u64 x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (x * 0x0101010101010101ULL) >> 56;
}

/* Bits of word @w that lie in blocks [first, last]. */
static __always_inline __u64 word_mask(__u64 w, __u64 first, __u64 last)
{
	__u64 lo = w << 6, hi = lo + 63, m = ~0ULL;

	if (first > lo)
		m &= ~0ULL << ((first - lo) & 63);
	if (last < hi)
		m &= ~0ULL >> ((hi - last) & 63);
	return m;
}

/* Set @mask in word @w; returns the bits newly set, or -1. */
static __always_inline long word_set(void *bm, __u64 w, __u64 mask)
{
	__u32 key = w;
	__u64 *p, old;

	p = bpf_map_lookup_elem(bm, &key);
	if (!p)
		return -1;
	/*
	 * Already set: a drain that takes it runs after this write's data is
	 * visible, so skipping the atomic loses nothing and saves the line.
	 */
	if ((*p & mask) == mask)
		return 0;
	old = __sync_fetch_and_or(p, mask);
	return popcount64(mask & ~old);
}

struct mark_loop {
	__u32 slot;
	__u32 err;
	__u64 w0;
	__u64 first;
	__u64 last;
	__u64 newbits;
};

static long mark_loop_cb(__u64 i, void *arg)
{
	struct mark_loop *m = arg;
	void *bm;
	long n;

	bm = bpf_map_lookup_elem(&dirty_bitmaps, &m->slot);
	if (!bm) {
		m->err = 1;
		return 1;
	}
	n = word_set(bm, m->w0 + i, word_mask(m->w0 + i, m->first, m->last));
	if (n < 0) {
		m->err = 1;
		return 1;
	}
	m->newbits += n;
	return 0;
}

static __always_inline void rescan(struct dirty_disk *d, __u64 why)
{
	if (!(d->rescan & why))
		__sync_fetch_and_or(&d->rescan, why);
}

static __always_inline struct dirty_global *global(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&dirty_global, &zero);
}

/*
 * Mark bytes [off, off + len) of the disk in @slot dirty.  @count: this is
 * the event that stands for the write in the counters (completion re-marks
 * of something already counted pass false).
 */
static __noinline int mark(__u32 slot, __u64 off, __u64 len, int count)
{
	struct mark_loop m = { .slot = slot };
	struct dirty_disk *d;
	__u64 end, nbits;
	__u32 shift;

	d = bpf_map_lookup_elem(&dirty_disks, &slot);
	if (!d || !len)
		return 0;
	shift = d->gran_shift;
	if (shift < DIRTY_GRAN_SHIFT_MIN || shift > DIRTY_GRAN_SHIFT_MAX)
		return 0;
	nbits = d->nbits;
	end = off + len;
	if (end < off || (__s64)off < 0) {
		rescan(d, DIRTY_RESCAN_CAPACITY);
		return 0;
	}
	m.first = off >> shift;
	m.last = (end - 1) >> shift;
	if (m.first >= nbits) {
		rescan(d, DIRTY_RESCAN_CAPACITY);
		goto out;
	}
	if (m.last >= nbits) {
		rescan(d, DIRTY_RESCAN_CAPACITY);
		m.last = nbits - 1;
	}
	m.w0 = m.first >> 6;
	if ((m.last >> 6) - m.w0 >= max_mark_words) {
		rescan(d, DIRTY_RESCAN_RANGE);
		goto out;
	}
	if ((m.last >> 6) - m.w0 < 2) {
		/* The common case: one or two words, no loop. */
		mark_loop_cb(0, &m);
		if ((m.last >> 6) != m.w0)
			mark_loop_cb(1, &m);
	} else {
		bpf_loop((m.last >> 6) - m.w0 + 1, mark_loop_cb, &m, 0);
	}
	if (m.err)
		rescan(d, DIRTY_RESCAN_CAPACITY);
	if (m.newbits)
		__sync_fetch_and_add(&d->pending_blocks, m.newbits);
out:
	if (count) {
		__sync_fetch_and_add(&d->writes, 1);
		__sync_fetch_and_add(&d->written_bytes, len);
	}
	return 0;
}

/* ---- files ---------------------------------------------------------- */

extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/* A struct file * from a plain number (a map, a probe read), for direct loads. */
static __always_inline struct file *as_file(__u64 p)
{
	if (!p)
		return NULL;
	return bpf_rdonly_cast((void *)p, bpf_core_type_id_kernel(struct file));
}

/*
 * task->files->fdt->fd[fd].  Loads through BTF pointers (the current task,
 * then read-only casts) cost a plain load each, where a probe read costs a
 * helper call: this runs on every write syscall of the host.
 */
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct files_struct *files;
	struct fdtable *fdt;
	struct file *f = NULL;
	__u64 fds;

	if (fd < 0)
		return NULL;
	files = task->files;
	if (!files)
		return NULL;
	fdt = files->fdt;
	if (!fdt || (__u64)fd >= fdt->max_fds)
		return NULL;
	fds = (__u64)fdt->fd;
	bpf_probe_read_kernel(&f, sizeof(f), (void *)(fds + fd * sizeof(f)));
	return as_file((__u64)f);
}

static __always_inline void inode_key(struct inode *inode, struct dirty_key *k)
{
	if ((inode->i_mode & S_IFMT_) == S_IFBLK_) {
		k->dev = DIRTY_KEY_BDEV;
		k->ino = inode->i_rdev;
	} else {
		k->dev = inode->i_sb->s_dev;
		k->ino = inode->i_ino;
	}
}

/* The disk @f writes to, or NULL; its slot in *slot. */
static __always_inline struct dirty_disk *file_disk(struct file *f, __u32 *slot)
{
	struct dirty_key k = {};
	struct inode *inode;
	__u32 *s;

	if (!f)
		return NULL;
	inode = f->f_inode;
	if (!inode)
		return NULL;
	inode_key(inode, &k);
	s = bpf_map_lookup_elem(&dirty_keys, &k);
	if (!s)
		return NULL;
	*slot = *s;
	return bpf_map_lookup_elem(&dirty_disks, slot);
}

static __always_inline __u32 file_iocb_flags(struct file *f)
{
	if (bpf_core_field_exists(f->f_iocb_flags))
		return f->f_iocb_flags;
	return (f->f_flags & O_APPEND_) ? IOCB_APPEND : 0;
}

static __always_inline __s64 file_size(struct file *f)
{
	return f->f_inode->i_size;
}

static __always_inline __s64 file_pos(struct file *f)
{
	return f->f_pos;
}

static __always_inline __u32 cur_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

static __always_inline struct pt_regs *cur_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

static __always_inline int any_disks(void)
{
	return nr_file_disks | nr_bdev_disks;
}

/*
 * Entry of a write at the file position (write, writev, sendfile, splice
 * and copy_file_range without an output offset, pwritev2 at -1 or with
 * RWF_APPEND): remember where the position was.
 */
static __always_inline void pos_enter(long nr, long fd)
{
	struct dirty_pending p = {};
	struct dirty_disk *d;
	struct file *f;
	__u32 slot, tid;

	if (!any_disks())
		return;
	f = fd_file(fd);
	d = file_disk(f, &slot);
	if (!d)
		return;
	p.file = (__u64)f;
	p.slot = slot;
	p.cookie = d->cookie;
	p.nr = nr;
	p.ts_ns = bpf_ktime_get_ns();
	if (file_iocb_flags(f) & IOCB_APPEND) {
		p.append = 1;
		p.lo = file_size(f);
	} else {
		p.lo = file_pos(f);
	}
	tid = cur_tid();
	if (bpf_map_update_elem(&dirty_pending, &tid, &p, BPF_ANY))
		rescan(d, DIRTY_RESCAN_OVERFLOW);
}

static __always_inline int counted(struct dirty_disk *d)
{
	/* Block devices are counted at bio completion. */
	return d->kind == DIRTY_KIND_FILE;
}

/*
 * Exit of such a write: the write landed somewhere in [lo, hi) where hi is
 * the position now; exactly at lo unless another writer sharing the file
 * description moved the position meanwhile, in which case the covering
 * span is marked.  @fd: for the fallback when entry was not seen.
 */
static __always_inline void pos_exit(long nr, long ret, long fd)
{
	struct dirty_pending *pp, p;
	struct dirty_disk *d;
	struct file *f;
	__u32 slot, tid;
	__s64 hi;

	if (!any_disks())
		return;
	tid = cur_tid();
	pp = bpf_map_lookup_elem(&dirty_pending, &tid);
	if (pp) {
		p = *pp;
		bpf_map_delete_elem(&dirty_pending, &tid);
		if (p.nr != nr)
			goto fallback;
		d = bpf_map_lookup_elem(&dirty_disks, &p.slot);
		if (!d || d->cookie != p.cookie)
			return;
		if (ret <= 0) {
			if (ret == -EIO_)
				rescan(d, DIRTY_RESCAN_IO_ERROR);
			return;
		}
		f = as_file(p.file);
		if (!f)
			return;
		hi = p.append ? file_size(f) : file_pos(f);
		if (hi >= p.lo + ret) {
			mark(p.slot, p.lo, hi - p.lo, 0);
		} else {
			/* The position went backwards (lseek, truncate). */
			mark(p.slot, p.lo, ret, 0);
			if (hi >= ret)
				mark(p.slot, hi - ret, ret, 0);
			rescan(d, DIRTY_RESCAN_POS_RACE);
		}
		if (counted(d)) {
			__sync_fetch_and_add(&d->writes, 1);
			__sync_fetch_and_add(&d->written_bytes, ret);
		}
		return;
	}
fallback:
	/* Entered before the disk was tracked: place it from where it ended. */
	if (ret <= 0)
		return;
	f = fd_file(fd);
	if (!f) {
		struct dirty_global *g = global();

		if (g && fd >= 0)
			__sync_fetch_and_add(&g->lost_writes, 1);
		return;
	}
	d = file_disk(f, &slot);
	if (!d)
		return;
	hi = (file_iocb_flags(f) & IOCB_APPEND) ? file_size(f) : file_pos(f);
	if (hi < ret) {
		rescan(d, DIRTY_RESCAN_POS_RACE);
		return;
	}
	mark(slot, hi - ret, ret, counted(d));
}

/* Exit of a write at an explicit offset (pwrite64, pwritev, pwritev2). */
static __always_inline void posw_exit(long ret, long fd, __s64 pos)
{
	struct dirty_disk *d;
	struct file *f;
	__u32 slot;

	if (ret == 0 || (ret < 0 && ret != -EIO_))
		return;
	f = fd_file(fd);
	if (!f) {
		struct dirty_global *g = global();

		if (g && fd >= 0 && ret > 0)
			__sync_fetch_and_add(&g->lost_writes, 1);
		return;
	}
	d = file_disk(f, &slot);
	if (!d)
		return;
	if (ret < 0) {
		rescan(d, DIRTY_RESCAN_IO_ERROR);
		return;
	}
	if (file_iocb_flags(f) & IOCB_APPEND) {
		/* Linux appends whatever the offset says. */
		__s64 hi = file_size(f);

		rescan(d, DIRTY_RESCAN_APPEND);
		if (hi >= ret)
			mark(slot, hi - ret, ret, counted(d));
		return;
	}
	mark(slot, pos, ret, counted(d));
}

static __always_inline void probe(long fd)
{
	struct dirty_global *g = global();
	struct file *f = fd_file(fd);
	struct inode *inode;

	if (f) {
		inode = f->f_inode;
		if (inode)
			inode_key(inode, &probe_key);
	}
	if (g)
		__sync_fetch_and_add(&g->probe_hits, 1);
}

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int dirty_pwrite64_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs;

	if (probe_tid && cur_tid() == probe_tid) {
		regs = cur_regs();
		probe(PT_REGS_PARM1_SYSCALL(regs));
		return 0;
	}
	if (!any_disks())
		return 0;
	regs = cur_regs();
	posw_exit(ctx->ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM4_SYSCALL(regs));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_pwritev")
int dirty_pwritev_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs;

	if (!any_disks())
		return 0;
	regs = cur_regs();
	posw_exit(ctx->ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM4_SYSCALL(regs));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwritev2")
int dirty_pwritev2_enter(struct trace_event_raw_sys_enter *ctx)
{
	if ((__s64)ctx->args[3] == -1 || (ctx->args[5] & RWF_APPEND))
		pos_enter(ctx->id, ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_pwritev2")
int dirty_pwritev2_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs;
	__u32 tid;
	__s64 pos;

	if (!any_disks())
		return 0;
	regs = cur_regs();
	pos = PT_REGS_PARM4_SYSCALL(regs);
	tid = cur_tid();
	if (pos == -1 || bpf_map_lookup_elem(&dirty_pending, &tid))
		pos_exit(ctx->id, ctx->ret, PT_REGS_PARM1_SYSCALL(regs));
	else
		posw_exit(ctx->ret, PT_REGS_PARM1_SYSCALL(regs), pos);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int dirty_write_enter(struct trace_event_raw_sys_enter *ctx)
{
	pos_enter(ctx->id, ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_write")
int dirty_write_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (any_disks())
		pos_exit(ctx->id, ctx->ret, PT_REGS_PARM1_SYSCALL(cur_regs()));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_writev")
int dirty_writev_enter(struct trace_event_raw_sys_enter *ctx)
{
	pos_enter(ctx->id, ctx->args[0]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_writev")
int dirty_writev_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (any_disks())
		pos_exit(ctx->id, ctx->ret, PT_REGS_PARM1_SYSCALL(cur_regs()));
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sendfile64")
int dirty_sendfile_enter(struct trace_event_raw_sys_enter *ctx)
{
	pos_enter(ctx->id, ctx->args[0]); /* out_fd, written at its position */
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int dirty_sendfile_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (any_disks())
		pos_exit(ctx->id, ctx->ret, PT_REGS_PARM1_SYSCALL(cur_regs()));
	return 0;
}

/*
 * splice() and copy_file_range() share the argument layout (fd_in, off_in,
 * fd_out, off_out, len, flags).  With an output offset the kernel has
 * advanced *off_out by the bytes written when we look at it.
 */
static __always_inline void offout_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!ctx->args[3])
		pos_enter(ctx->id, ctx->args[2]);
}

static __always_inline void offout_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs;
	struct dirty_disk *d;
	__s64 end = 0;
	__u64 offp;
	__u32 slot;
	long fd;

	if (!any_disks())
		return;
	regs = cur_regs();
	fd = PT_REGS_PARM3_SYSCALL(regs);
	offp = PT_REGS_PARM4_SYSCALL(regs);
	if (!offp) {
		pos_exit(ctx->id, ctx->ret, fd);
		return;
	}
	if (ctx->ret <= 0)
		return;
	d = file_disk(fd_file(fd), &slot);
	if (!d)
		return;
	if (bpf_probe_read_user(&end, sizeof(end), (void *)offp) || end < ctx->ret) {
		rescan(d, DIRTY_RESCAN_LOST);
		return;
	}
	mark(slot, end - ctx->ret, ctx->ret, counted(d));
}

SEC("tracepoint/syscalls/sys_enter_copy_file_range")
int dirty_cfr_enter(struct trace_event_raw_sys_enter *ctx)
{
	offout_enter(ctx);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_copy_file_range")
int dirty_cfr_exit(struct trace_event_raw_sys_exit *ctx)
{
	offout_exit(ctx);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_splice")
int dirty_splice_enter(struct trace_event_raw_sys_enter *ctx)
{
	offout_enter(ctx);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_splice")
int dirty_splice_exit(struct trace_event_raw_sys_exit *ctx)
{
	offout_exit(ctx);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_fallocate")
int dirty_fallocate_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct pt_regs *regs;
	struct dirty_disk *d;
	__s64 off, len;
	__u32 slot;
	long mode;

	if (!any_disks() || ctx->ret < 0)
		return 0;
	regs = cur_regs();
	d = file_disk(fd_file(PT_REGS_PARM1_SYSCALL(regs)), &slot);
	if (!d)
		return 0;
	mode = PT_REGS_PARM2_SYSCALL(regs);
	off = PT_REGS_PARM3_SYSCALL(regs);
	len = PT_REGS_PARM4_SYSCALL(regs);
	if (mode & (FALLOC_FL_COLLAPSE_RANGE_ | FALLOC_FL_INSERT_RANGE_))
		rescan(d, DIRTY_RESCAN_SHIFT); /* every block after off moved */
	else if (mode & (FALLOC_FL_PUNCH_HOLE_ | FALLOC_FL_ZERO_RANGE_ | FALLOC_FL_WRITE_ZEROES_))
		mark(slot, off, len, counted(d));
	/* Plain allocation and unshare leave the data as it reads. */
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ftruncate")
int dirty_ftruncate_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct dirty_pending p = {};
	struct dirty_disk *d;
	struct file *f;
	__u32 slot, tid;

	if (!any_disks())
		return 0;
	f = fd_file(ctx->args[0]);
	d = file_disk(f, &slot);
	if (!d)
		return 0;
	p.file = (__u64)f;
	p.slot = slot;
	p.cookie = d->cookie;
	p.nr = ctx->id;
	p.lo = file_size(f);
	p.arg = ctx->args[1];
	p.ts_ns = bpf_ktime_get_ns();
	tid = cur_tid();
	if (bpf_map_update_elem(&dirty_pending, &tid, &p, BPF_ANY))
		rescan(d, DIRTY_RESCAN_SHRINK); /* cannot tell later: assume the worst */
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ftruncate")
int dirty_ftruncate_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct dirty_pending *p;
	struct dirty_disk *d;
	__u32 tid = cur_tid();

	p = bpf_map_lookup_elem(&dirty_pending, &tid);
	if (!p)
		return 0;
	if (p->nr == ctx->id && ctx->ret == 0 && p->arg < p->lo) {
		d = bpf_map_lookup_elem(&dirty_disks, &p->slot);
		if (d && d->cookie == p->cookie)
			rescan(d, DIRTY_RESCAN_SHRINK);
	}
	/* Growth needs nothing: the new tail reads as zeroes (size_bytes says it). */
	bpf_map_delete_elem(&dirty_pending, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_truncate")
int dirty_truncate_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct dirty_global *g;

	/* By path: which inode is unknown here; userspace decides per disk. */
	if (nr_file_disks && ctx->ret == 0 && (g = global()))
		__sync_fetch_and_add(&g->truncates, 1);
	return 0;
}

/* open(O_TRUNC) of a tracked file empties it. */
static __always_inline void open_exit(long ret, __u64 flags)
{
	struct dirty_disk *d;
	__u32 slot;

	if (ret < 0 || !(flags & O_TRUNC_))
		return;
	d = file_disk(fd_file(ret), &slot);
	if (d)
		rescan(d, DIRTY_RESCAN_SHRINK);
}

SEC("tracepoint/syscalls/sys_exit_open")
int dirty_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks && ctx->ret >= 0)
		open_exit(ctx->ret, PT_REGS_PARM2_SYSCALL(cur_regs()));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat")
int dirty_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks && ctx->ret >= 0)
		open_exit(ctx->ret, PT_REGS_PARM3_SYSCALL(cur_regs()));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int dirty_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct open_how how = {};

	if (!nr_file_disks || ctx->ret < 0)
		return 0;
	if (bpf_probe_read_user(&how, sizeof(how), (void *)PT_REGS_PARM3_SYSCALL(cur_regs())))
		how.flags = O_TRUNC_; /* cannot tell: check the file */
	open_exit(ctx->ret, how.flags);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_creat")
int dirty_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks)
		open_exit(ctx->ret, O_TRUNC_);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int dirty_ioctl_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct file_clone_range fcr = {};
	struct pt_regs *regs;
	struct dirty_disk *d;
	__u32 slot;
	long cmd;

	if (!nr_file_disks || ctx->ret < 0)
		return 0;
	regs = cur_regs();
	cmd = (__u32)PT_REGS_PARM2_SYSCALL(regs);
	if (cmd != FICLONE_ && cmd != FICLONERANGE_)
		return 0;
	d = file_disk(fd_file(PT_REGS_PARM1_SYSCALL(regs)), &slot);
	if (!d)
		return 0;
	if (cmd == FICLONERANGE_ &&
	    !bpf_probe_read_user(&fcr, sizeof(fcr), (void *)PT_REGS_PARM3_SYSCALL(regs)) &&
	    fcr.src_length)
		mark(slot, fcr.dest_offset, fcr.src_length, counted(d));
	else
		rescan(d, DIRTY_RESCAN_REFLINK);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mmap")
int dirty_mmap_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct dirty_disk *d;
	struct file *f;
	__u32 slot;

	/* args: addr, len, prot, flags, fd, off */
	if (!nr_file_disks || !(ctx->args[3] & MAP_SHARED_) || (long)ctx->args[4] < 0)
		return 0;
	f = fd_file(ctx->args[4]);
	d = file_disk(f, &slot);
	if (!d || d->kind != DIRTY_KIND_FILE)
		return 0; /* block devices: their page cache reaches us as bios */
	/* Writable now, or could be made so with mprotect(). */
	if ((ctx->args[2] & PROT_WRITE_) || (f->f_mode & FMODE_WRITE_))
		rescan(d, DIRTY_RESCAN_MMAP);
	return 0;
}

/* io_submit(): read back the iocbs the kernel accepted (ret of them). */
struct aio_loop {
	__u64 iocbpp;
	__u32 bad;
};

static long aio_iocb_cb(__u64 i, void *arg)
{
	struct aio_loop *a = arg;
	struct dirty_disk *d;
	struct iocb cb = {};
	__u64 p = 0, len = 0;
	struct file *f;
	__u32 slot, flags;

	if (bpf_probe_read_user(&p, sizeof(p), (void *)(a->iocbpp + i * 8)) ||
	    bpf_probe_read_user(&cb, sizeof(cb), (void *)p)) {
		a->bad = 1;
		return 1;
	}
	if (cb.aio_lio_opcode != IOCB_CMD_PWRITE_ && cb.aio_lio_opcode != IOCB_CMD_PWRITEV_)
		return 0;
	f = fd_file(cb.aio_fildes);
	d = file_disk(f, &slot);
	if (!d)
		return 0;
	if (cb.aio_lio_opcode == IOCB_CMD_PWRITE_) {
		len = cb.aio_nbytes;
	} else {
		struct iovec iov;
		__u32 j;

		if (cb.aio_nbytes > DIRTY_AIO_MAX_IOVECS) {
			rescan(d, DIRTY_RESCAN_AIO);
			return 0;
		}
		for (j = 0; j < DIRTY_AIO_MAX_IOVECS && j < cb.aio_nbytes; j++) {
			if (bpf_probe_read_user(&iov, sizeof(iov),
						(void *)(cb.aio_buf + j * sizeof(iov)))) {
				rescan(d, DIRTY_RESCAN_AIO);
				return 0;
			}
			len += (__u64)iov.iov_len;
		}
	}
	flags = file_iocb_flags(f);
	if ((flags & IOCB_APPEND) || (cb.aio_rw_flags & RWF_APPEND))
		rescan(d, DIRTY_RESCAN_APPEND);
	/*
	 * Buffered aio writes are done by now.  O_DIRECT ones complete
	 * later: iomap_dio_complete marks them again, or, where the file
	 * system does not report it, the disk needs a rescan.
	 */
	if ((flags & IOCB_DIRECT) && d->kind == DIRTY_KIND_FILE &&
	    !(d->config & DIRTY_CFG_DIO_DONE))
		rescan(d, DIRTY_RESCAN_ASYNC_DIO);
	mark(slot, cb.aio_offset, len, counted(d));
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_io_submit")
int dirty_io_submit_exit(struct trace_event_raw_sys_exit *ctx)
{
	struct aio_loop a = {};
	struct dirty_global *g;
	long n = ctx->ret;

	if (!any_disks() || n <= 0)
		return 0;
	a.iocbpp = PT_REGS_PARM3_SYSCALL(cur_regs());
	if (n > max_aio_iocbs)
		a.bad = 1;
	bpf_loop(n > max_aio_iocbs ? max_aio_iocbs : n, aio_iocb_cb, &a, 0);
	if (a.bad && (g = global()))
		__sync_fetch_and_add(&g->blind_writes, 1); /* every file disk rescans */
	return 0;
}

/* ---- completion of O_DIRECT on iomap file systems -------------------- */

/*
 * Kernel writers (the loop driver, nfsd) do not always set IOCB_WRITE on
 * their kiocb: note at the start of each O_DIRECT write to a tracked file
 * that it is one, so that its completion is known for a write.
 */
SEC("tp_btf/iomap_dio_rw_begin")
int BPF_PROG(dirty_dio_begin, struct kiocb *iocb, struct iov_iter *iter)
{
	struct dirty_disk *d;
	__u64 key = (__u64)iocb;
	__u32 slot;

	if (!nr_file_disks || !iter->data_source || (iocb->ki_flags & IOCB_WRITE))
		return 0;
	d = file_disk(iocb->ki_filp, &slot);
	if (d && bpf_map_update_elem(&dirty_dio_writes, &key, &slot, BPF_ANY))
		rescan(d, DIRTY_RESCAN_OVERFLOW);
	return 0;
}

SEC("tp_btf/iomap_dio_complete")
int BPF_PROG(dirty_dio_complete, struct kiocb *iocb, int error, ssize_t ret)
{
	struct dirty_disk *d;
	__u64 key = (__u64)iocb;
	__u32 slot;
	__s64 pos;

	if (!nr_file_disks)
		return 0;
	if (!(iocb->ki_flags & IOCB_WRITE)) {
		if (!bpf_map_lookup_elem(&dirty_dio_writes, &key))
			return 0; /* a read */
		bpf_map_delete_elem(&dirty_dio_writes, &key);
	}
	d = file_disk(iocb->ki_filp, &slot);
	if (!d)
		return 0;
	if (error || ret < 0) {
		rescan(d, DIRTY_RESCAN_IO_ERROR); /* some of it may have landed */
		return 0;
	}
	pos = iocb->ki_pos; /* already advanced past the write */
	if (ret > 0 && pos >= ret)
		mark(slot, pos - ret, ret, 0);
	return 0;
}

/* ---- truncation seen by the file system (ext4) ----------------------- */

SEC("tp_btf/ext4_truncate_enter")
int BPF_PROG(dirty_ext4_truncate, struct inode *inode)
{
	struct dirty_key k = {};
	struct dirty_disk *d;
	__u32 *s;

	if (!nr_file_disks)
		return 0;
	k.dev = inode->i_sb->s_dev;
	k.ino = inode->i_ino;
	s = bpf_map_lookup_elem(&dirty_keys, &k);
	if (s && (d = bpf_map_lookup_elem(&dirty_disks, s)))
		rescan(d, DIRTY_RESCAN_SHRINK);
	return 0;
}

/* ---- io_uring ------------------------------------------------------- */

enum uring_class { URING_OTHER = 0, URING_WRITE, URING_ALTER };

static __always_inline int uring_class(__u8 op)
{
	if (op == bpf_core_enum_value(enum io_uring_op, IORING_OP_WRITE) ||
	    op == bpf_core_enum_value(enum io_uring_op, IORING_OP_WRITEV) ||
	    op == bpf_core_enum_value(enum io_uring_op, IORING_OP_WRITE_FIXED))
		return URING_WRITE;
	if (bpf_core_enum_value_exists(enum io_uring_op, IORING_OP_WRITEV_FIXED) &&
	    op == bpf_core_enum_value(enum io_uring_op, IORING_OP_WRITEV_FIXED))
		return URING_WRITE;
	if (op == bpf_core_enum_value(enum io_uring_op, IORING_OP_FALLOCATE) ||
	    op == bpf_core_enum_value(enum io_uring_op, IORING_OP_SPLICE))
		return URING_ALTER;
	if (bpf_core_enum_value_exists(enum io_uring_op, IORING_OP_FTRUNCATE) &&
	    op == bpf_core_enum_value(enum io_uring_op, IORING_OP_FTRUNCATE))
		return URING_ALTER;
	return URING_OTHER;
}

/* The file a request will use, as the issuing task would resolve it. */
static __always_inline struct file *uring_req_file(struct io_kiocb *req, __u64 flags)
{
	struct io_rsrc_node **nodes, *node = NULL;
	struct io_ring_ctx *ctx;
	int idx = BPF_CORE_READ(req, cqe.fd);
	__u32 nr;

	if (!(flags & REQ_F_FIXED_FILE))
		return fd_file(idx);
	if (!bpf_core_field_exists(struct io_rsrc_node, file_ptr))
		return NULL;
	ctx = BPF_CORE_READ(req, ctx);
	nr = BPF_CORE_READ(ctx, file_table.data.nr);
	if (idx < 0 || (__u32)idx >= nr)
		return NULL;
	nodes = BPF_CORE_READ(ctx, file_table.data.nodes);
	bpf_probe_read_kernel(&node, sizeof(node), &nodes[idx]);
	if (!node)
		return NULL;
	return as_file(BPF_CORE_READ(node, file_ptr) & FFS_MASK_);
}

/*
 * Submission: note rings that write to tracked files (so a lost CQE on them
 * is noticed), and writes whose completion will post no CQE.
 */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(dirty_uring_submit, struct io_kiocb *req)
{
	struct dirty_disk *d = NULL;
	struct dirty_global *g;
	__u32 slot = 0, v;
	__u64 flags, ring;
	struct file *f;

	if (!nr_file_disks)
		return 0;
	if (uring_class(BPF_CORE_READ(req, opcode)) == URING_OTHER)
		return 0;
	flags = BPF_CORE_READ(req, flags);
	f = uring_req_file(req, flags);
	if (f) {
		d = file_disk(f, &slot);
		if (!d)
			return 0; /* an untracked file */
		v = slot + 1;
	} else {
		v = 0; /* cannot place it before it runs */
	}
	ring = (__u64)BPF_CORE_READ(req, ctx);
	bpf_map_update_elem(&dirty_rings, &ring, &v, BPF_ANY);
	if (flags & REQ_F_CQE_SKIP) {
		if (d)
			rescan(d, DIRTY_RESCAN_IO_URING);
		else if ((g = global()))
			__sync_fetch_and_add(&g->blind_writes, 1);
	}
	return 0;
}

/* Completion: the write is visible; place it from where it ended. */
SEC("tp_btf/io_uring_complete")
int BPF_PROG(dirty_uring_complete, struct io_ring_ctx *ring, void *req_, struct io_uring_cqe *cqe)
{
	struct io_kiocb *req = req_;
	struct dirty_disk *d;
	struct io_rw *rw;
	__s64 end, res;
	__u32 slot;
	int cls;

	if (!nr_file_disks || !req)
		return 0;
	cls = uring_class(BPF_CORE_READ(req, opcode));
	if (cls == URING_OTHER)
		return 0;
	d = file_disk(as_file((__u64)BPF_CORE_READ(req, file)), &slot);
	if (!d)
		return 0;
	if (cls == URING_ALTER) {
		rescan(d, DIRTY_RESCAN_IO_URING);
		return 0;
	}
	res = BPF_CORE_READ(cqe, res);
	if (res < 0) {
		rescan(d, DIRTY_RESCAN_IO_ERROR);
		return 0;
	}
	rw = (struct io_rw *)((__u64)req + bpf_core_field_offset(struct io_kiocb, cmd));
	end = BPF_CORE_READ(rw, kiocb.ki_pos);
	if (res > 0) {
		if (end < res)
			rescan(d, DIRTY_RESCAN_IO_URING);
		else
			mark(slot, end - res, res, counted(d));
	}
	return 0;
}

/* A CQE that did not fit the ring is posted later without a trace. */
SEC("tp_btf/io_uring_cqe_overflow")
int BPF_PROG(dirty_uring_overflow, void *ring_)
{
	struct dirty_global *g;
	struct dirty_disk *d;
	__u64 ring = (__u64)ring_;
	__u32 *v, slot;

	if (!nr_file_disks)
		return 0;
	v = bpf_map_lookup_elem(&dirty_rings, &ring);
	if (!v)
		return 0;
	slot = *v - 1;
	if (*v && (d = bpf_map_lookup_elem(&dirty_disks, &slot)))
		rescan(d, DIRTY_RESCAN_IO_URING);
	else if ((g = global()))
		__sync_fetch_and_add(&g->blind_writes, 1);
	return 0;
}

/* ---- block devices -------------------------------------------------- */

static __always_inline int bio_writes(__u32 opf)
{
	__u32 op = opf & ((1U << 8) - 1); /* REQ_OP_MASK */

	return op == bpf_core_enum_value(enum req_op, REQ_OP_WRITE) ||
	       op == bpf_core_enum_value(enum req_op, REQ_OP_WRITE_ZEROES) ||
	       op == bpf_core_enum_value(enum req_op, REQ_OP_DISCARD) ||
	       op == bpf_core_enum_value(enum req_op, REQ_OP_SECURE_ERASE) ||
	       op == bpf_core_enum_value(enum req_op, REQ_OP_ZONE_APPEND);
}

/*
 * Request-based disks (loop, virtio, NVMe, SCSI, and their partitions):
 * blk-mq traces completion per request, not per bio, at the sector on the
 * whole disk.  Mark the part of every tracked device the request covers;
 * this also catches writes to the whole disk under a tracked partition.
 */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(dirty_rq_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	struct dirty_bdev_map *m;
	struct gendisk *disk;
	__u64 lo, hi;
	__u32 devt, i;

	if (!nr_bdev_disks || !nr_bytes || !bio_writes(rq->cmd_flags))
		return 0;
	disk = rq->q->disk;
	if (!disk)
		return 0;
	devt = disk->part0->bd_dev;
	m = bpf_map_lookup_elem(&dirty_bdevs, &devt);
	if (!m)
		return 0;
	lo = rq->__sector << 9;
	hi = lo + nr_bytes;
	for (i = 0; i < DIRTY_MAX_PARTS; i++) {
		struct dirty_bdev_part *p = &m->part[i];
		struct dirty_disk *d;
		__u64 s, e;

		if (i >= m->n)
			break;
		s = p->start_sect << 9;
		e = s + (p->nr_sect << 9);
		if (hi <= s || lo >= e)
			continue;
		d = bpf_map_lookup_elem(&dirty_disks, &p->slot);
		if (!d || d->cookie != p->cookie)
			continue;
		if (lo > s)
			s = lo;
		if (hi < e)
			e = hi;
		mark(p->slot, s - (p->start_sect << 9), e - s, 1);
	}
	return 0;
}

/*
 * Bio-based devices (device-mapper: LVM LVs): queue remembers the bio's
 * range, completion (traced for these: no request clears the flag) marks
 * it.  This is the LV's own bio, with LV-relative sectors, before dm remaps
 * clones of it to the physical volumes.
 */
SEC("tp_btf/block_bio_queue")
int BPF_PROG(dirty_bio_queue, struct bio *bio)
{
	struct dirty_inflight e = {};
	struct dirty_key k = {};
	struct block_device *bdev;
	struct dirty_disk *d;
	__u64 sector, key;
	__u32 *s;

	if (!nr_bdev_disks || !bio_writes(bio->bi_opf))
		return 0;
	bdev = bio->bi_bdev;
	if (!bdev)
		return 0;
	k.dev = DIRTY_KEY_BDEV;
	k.ino = bdev->bd_dev;
	s = bpf_map_lookup_elem(&dirty_keys, &k);
	if (!s)
		return 0;
	d = bpf_map_lookup_elem(&dirty_disks, s);
	if (!d || !(d->config & DIRTY_CFG_BIO_BASED))
		return 0; /* request-based: see dirty_rq_complete */
	sector = bio->bi_iter.bi_sector;
	if (bio->bi_flags & (1U << BIO_REMAPPED))
		sector -= bdev->bd_start_sect;
	e.start = sector << 9;
	e.len = bio->bi_iter.bi_size;
	if (!e.len)
		return 0; /* an empty flush */
	e.slot = *s;
	e.cookie = d->cookie;
	e.ts_ns = bpf_ktime_get_ns();
	key = (__u64)bio;
	if (bpf_map_update_elem(&dirty_inflight, &key, &e, BPF_ANY)) {
		/* Cannot wait for completion: mark now and make it a rescan. */
		mark(e.slot, e.start, e.len, 1);
		rescan(d, DIRTY_RESCAN_OVERFLOW);
		return 0;
	}
	__sync_fetch_and_add(&d->inflight, 1);
	return 0;
}

/* Completion of the bio queued above (after every clone of it completed). */
SEC("tp_btf/block_bio_complete")
int BPF_PROG(dirty_bio_complete, struct request_queue *q, struct bio *bio)
{
	struct dirty_inflight *e;
	struct dirty_disk *d;
	__u64 key = (__u64)bio;

	if (!nr_bdev_disks)
		return 0;
	e = bpf_map_lookup_elem(&dirty_inflight, &key);
	if (!e || e->done)
		return 0;
	d = bpf_map_lookup_elem(&dirty_disks, &e->slot);
	if (d && d->cookie == e->cookie) {
		mark(e->slot, e->start, e->len, 1);
		__sync_fetch_and_add(&d->inflight, -1);
	}
	if (bpf_map_delete_elem(&dirty_inflight, &key))
		e->done = 1; /* busy bucket: userspace reaps it */
	return 0;
}
