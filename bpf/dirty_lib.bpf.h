/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirty_lib.bpf.h - part of dirty.bpf.c: its maps, the bitmap (mark()), and
 * the fd -> struct file -> disk resolution every program uses.
 */
#ifndef FERRY_BPF_DIRTY_LIB_BPF_H
#define FERRY_BPF_DIRTY_LIB_BPF_H

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

/* Per task: the write syscall it is in (task storage: no hashing, freed with the task). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
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

enum { MARK_OK, MARK_STOPPED, MARK_FAILED };

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
		m->err = MARK_STOPPED;
		return 1;
	}
	n = word_set(bm, m->w0 + i, word_mask(m->w0 + i, m->first, m->last));
	if (n < 0) {
		m->err = MARK_FAILED;
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
	if (m.err == MARK_STOPPED)
		return 0; /* the disk is being stopped: its bitmap is gone */
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
	fds = (__u64)fdt->fd + fd * sizeof(f);
	if (bpf_core_field_offset(struct kiocb, ki_filp) == 0) {
		/*
		 * The slot is a struct file *: read it as the first member of
		 * a struct that starts with one (a kiocb), through a read-only
		 * cast -- a plain load where a probe read is a helper call.
		 */
		struct kiocb *k =
			bpf_rdonly_cast((void *)fds, bpf_core_type_id_kernel(struct kiocb));

		f = k->ki_filp;
	} else {
		bpf_probe_read_kernel(&f, sizeof(f), (void *)fds);
	}
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

#define READ_ONCE_U32(x) (*(volatile __u32 *)&(x))
#define READ_ONCE_U64(x) (*(volatile __u64 *)&(x))

/* Not tracked, for sure: its key's bit is clear (no map lookup). */
static __always_inline bool key_untracked(const struct dirty_key *k)
{
	return !(key_mask & (1ULL << DIRTY_KEY_BIT(k->dev, k->ino)));
}

/* The disk of @inode's key, or NULL; its slot in *slot. */
static __always_inline struct dirty_disk *inode_disk(struct inode *inode, __u32 *slot)
{
	struct dirty_key k = {};
	struct dirty_disk *d;
	__u32 *s, bit;

	inode_key(inode, &k);
	bit = DIRTY_KEY_BIT(k.dev, k.ino);
	if (!(key_mask & (1ULL << bit)))
		return NULL;
#if defined(__TARGET_ARCH_x86)
	/*
	 * The cache, without hashing, read like a seqlock: the owner writes
	 * the cookie last when it fills an entry and first (to 0) when it
	 * empties one, x86 keeps loads and stores in order, and the entry is
	 * taken only if its cookie did not change while it was read and is
	 * still its slot's.  Anything else falls through to the lookup.
	 */
	{
		struct dirty_key_cache *c = &key_cache[bit & 63];
		__u32 cs, ck = READ_ONCE_U32(c->cookie);

		if (ck && READ_ONCE_U64(c->dev) == k.dev && READ_ONCE_U64(c->ino) == k.ino) {
			cs = READ_ONCE_U32(c->slot);
			if (READ_ONCE_U32(c->cookie) == ck) {
				d = bpf_map_lookup_elem(&dirty_disks, &cs);
				if (d && d->cookie == ck) {
					*slot = cs;
					return d;
				}
			}
		}
	}
#endif
	s = bpf_map_lookup_elem(&dirty_keys, &k);
	if (!s)
		return NULL;
	*slot = *s;
	return bpf_map_lookup_elem(&dirty_disks, slot);
}

/*
 * The file disk @f writes to, or NULL; its slot in *slot.  Block devices
 * are not looked up: every write reaches them as a request or a bio, and
 * is marked as that completes (buffered writes at writeback).
 */
static __always_inline struct dirty_disk *file_disk(struct file *f, __u32 *slot)
{
	struct inode *inode;

	if (!f)
		return NULL;
	inode = f->f_inode;
	if (!inode || (inode->i_mode & S_IFMT_) == S_IFBLK_)
		return NULL;
	return inode_disk(inode, slot);
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

static __always_inline int counted(struct dirty_disk *d)
{
	/* Block devices are counted at request or bio completion. */
	return d->kind == DIRTY_KIND_FILE;
}

#endif /* FERRY_BPF_DIRTY_LIB_BPF_H */
