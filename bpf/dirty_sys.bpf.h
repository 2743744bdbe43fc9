/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirty_sys.bpf.h - part of dirty.bpf.c: the write syscalls on files (a
 * block device is marked at the block layer only, dirty_async.bpf.h).
 * Each marks at its exit, once the data is in the file: at an explicit offset (pwrite64,
 * pwritev, pwritev2, fallocate, splice and copy_file_range with an output
 * offset, io_submit's iocbs, FICLONERANGE) or at the file position noted at
 * entry (write, writev, sendfile, ...).  Size changes, O_TRUNC, reflinks and
 * shared mappings become rescan reasons.
 */
#ifndef FERRY_BPF_DIRTY_SYS_BPF_H
#define FERRY_BPF_DIRTY_SYS_BPF_H

/*
 * Entry of a write at the file position (write, writev, sendfile, splice
 * and copy_file_range without an output offset, pwritev2 at -1 or with
 * RWF_APPEND): remember where the position was.
 */
static __always_inline struct dirty_pending *pending(bool create)
{
	return bpf_task_storage_get(&dirty_pending, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

static __always_inline void pos_enter(long nr, long fd)
{
	struct dirty_pending *p;
	struct dirty_disk *d;
	struct file *f;
	__u32 slot;

	if (!nr_file_disks)
		return;
	p = pending(true);
	if (!p)
		return; /* the exit falls back to the position it ends at */
	p->nr = nr;
	p->gen = start_gen;
	p->flags = 0;
	f = fd_file(fd);
	d = file_disk(f, &slot);
	if (!d)
		return;
	p->file = (__u64)f;
	p->slot = slot;
	p->cookie = d->cookie;
	p->flags = DIRTY_PEND_TRACKED;
	if (file_iocb_flags(f) & IOCB_APPEND) {
		p->flags |= DIRTY_PEND_APPEND;
		p->lo = file_size(f);
	} else {
		p->lo = file_pos(f);
	}
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
	__u32 slot;
	__s64 hi;

	if (!nr_file_disks)
		return;
	pp = pending(false);
	if (pp && pp->nr == nr) {
		p = *pp;
		pp->nr = 0;
		if (!(p.flags & DIRTY_PEND_TRACKED)) {
			if (p.gen == start_gen)
				return; /* untracked, and no disk started since */
			goto fallback;
		}
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
		hi = (p.flags & DIRTY_PEND_APPEND) ? file_size(f) : file_pos(f);
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

/*
 * Every exit below is a function of (syscall number, return value, the
 * task's registers), called either from its own syscalls:sys_exit_*
 * program or from dirty_sys_exit, the one tp_btf/sys_exit program that
 * replaces them all where the kernel has it (see there).
 */
static __always_inline bool probe_exit(struct pt_regs *regs)
{
	if (!probe_tid || cur_tid() != probe_tid)
		return false;
	probe(PT_REGS_PARM1_SYSCALL(regs));
	return true;
}

static __always_inline void pwrite_exit(long ret, struct pt_regs *regs)
{
	posw_exit(ret, PT_REGS_PARM1_SYSCALL(regs), PT_REGS_PARM4_SYSCALL(regs));
}

SEC("tracepoint/syscalls/sys_exit_pwrite64")
int dirty_pwrite64_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (probe_tid && probe_exit(cur_regs()))
		return 0;
	if (nr_file_disks)
		pwrite_exit(ctx->ret, cur_regs());
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_pwritev")
int dirty_pwritev_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks)
		pwrite_exit(ctx->ret, cur_regs());
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_pwritev2")
int dirty_pwritev2_enter(struct trace_event_raw_sys_enter *ctx)
{
	if ((__s64)ctx->args[3] == -1 || (ctx->args[5] & RWF_APPEND))
		pos_enter(ctx->id, ctx->args[0]);
	return 0;
}

static __always_inline void pwritev2_exit(long nr, long ret, struct pt_regs *regs)
{
	struct dirty_pending *p;
	__s64 pos;

	pos = PT_REGS_PARM4_SYSCALL(regs);
	p = pending(false);
	if (pos == -1 || (p && p->nr == nr))
		pos_exit(nr, ret, PT_REGS_PARM1_SYSCALL(regs));
	else
		posw_exit(ret, PT_REGS_PARM1_SYSCALL(regs), pos);
}

SEC("tracepoint/syscalls/sys_exit_pwritev2")
int dirty_pwritev2_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks)
		pwritev2_exit(ctx->id, ctx->ret, cur_regs());
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
	if (nr_file_disks)
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
	if (nr_file_disks)
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
	if (nr_file_disks)
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

static __always_inline void offout_exit(long nr, long ret, struct pt_regs *regs)
{
	struct dirty_disk *d;
	__s64 end = 0;
	__u64 offp;
	__u32 slot;
	long fd;

	fd = PT_REGS_PARM3_SYSCALL(regs);
	offp = PT_REGS_PARM4_SYSCALL(regs);
	if (!offp) {
		pos_exit(nr, ret, fd);
		return;
	}
	if (ret <= 0)
		return;
	d = file_disk(fd_file(fd), &slot);
	if (!d)
		return;
	if (bpf_probe_read_user(&end, sizeof(end), (void *)offp) || end < ret) {
		rescan(d, DIRTY_RESCAN_LOST);
		return;
	}
	mark(slot, end - ret, ret, counted(d));
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
	if (nr_file_disks)
		offout_exit(ctx->id, ctx->ret, cur_regs());
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
	if (nr_file_disks)
		offout_exit(ctx->id, ctx->ret, cur_regs());
	return 0;
}

static __always_inline void fallocate_exit(long ret, struct pt_regs *regs)
{
	struct dirty_disk *d;
	__s64 off, len;
	__u32 slot;
	long mode;

	if (ret < 0)
		return;
	d = file_disk(fd_file(PT_REGS_PARM1_SYSCALL(regs)), &slot);
	if (!d)
		return;
	mode = PT_REGS_PARM2_SYSCALL(regs);
	off = PT_REGS_PARM3_SYSCALL(regs);
	len = PT_REGS_PARM4_SYSCALL(regs);
	if (mode & (FALLOC_FL_COLLAPSE_RANGE_ | FALLOC_FL_INSERT_RANGE_))
		rescan(d, DIRTY_RESCAN_SHIFT); /* every block after off moved */
	else if (mode & (FALLOC_FL_PUNCH_HOLE_ | FALLOC_FL_ZERO_RANGE_ | FALLOC_FL_WRITE_ZEROES_))
		mark(slot, off, len, counted(d));
	/* Plain allocation and unshare leave the data as it reads. */
}

SEC("tracepoint/syscalls/sys_exit_fallocate")
int dirty_fallocate_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks && ctx->ret >= 0)
		fallocate_exit(ctx->ret, cur_regs());
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ftruncate")
int dirty_ftruncate_enter(struct trace_event_raw_sys_enter *ctx)
{
	struct dirty_pending *p;
	struct dirty_disk *d;
	struct file *f;
	__u32 slot;

	if (!nr_file_disks)
		return 0;
	f = fd_file(ctx->args[0]);
	d = file_disk(f, &slot);
	if (!d)
		return 0;
	p = pending(true);
	if (!p) {
		rescan(d, DIRTY_RESCAN_SHRINK); /* cannot tell later: assume the worst */
		return 0;
	}
	p->nr = ctx->id;
	p->flags = DIRTY_PEND_TRACKED;
	p->slot = slot;
	p->cookie = d->cookie;
	p->lo = file_size(f);
	p->arg = ctx->args[1];
	return 0;
}

static __always_inline void ftruncate_exit(long nr, long ret)
{
	struct dirty_pending *p;
	struct dirty_disk *d;

	p = pending(false);
	if (!p || p->nr != nr)
		return;
	p->nr = 0;
	if (ret == 0 && p->arg < p->lo) {
		d = bpf_map_lookup_elem(&dirty_disks, &p->slot);
		if (d && d->cookie == p->cookie)
			rescan(d, DIRTY_RESCAN_SHRINK);
	}
	/* Growth needs nothing: the new tail reads as zeroes (size_bytes says it). */
}

SEC("tracepoint/syscalls/sys_exit_ftruncate")
int dirty_ftruncate_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks)
		ftruncate_exit(ctx->id, ctx->ret);
	return 0;
}

static __always_inline void truncate_exit(long ret)
{
	struct dirty_global *g;

	/* By path: which inode is unknown here; userspace decides per disk. */
	if (ret == 0 && (g = global()))
		__sync_fetch_and_add(&g->truncates, 1);
}

SEC("tracepoint/syscalls/sys_exit_truncate")
int dirty_truncate_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks)
		truncate_exit(ctx->ret);
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

static __always_inline void openat2_exit(long ret, struct pt_regs *regs)
{
	struct open_how how = {};

	if (ret < 0)
		return;
	if (bpf_probe_read_user(&how, sizeof(how), (void *)PT_REGS_PARM3_SYSCALL(regs)))
		how.flags = O_TRUNC_; /* cannot tell: check the file */
	open_exit(ret, how.flags);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int dirty_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks && ctx->ret >= 0)
		openat2_exit(ctx->ret, cur_regs());
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_creat")
int dirty_creat_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks)
		open_exit(ctx->ret, O_TRUNC_);
	return 0;
}

static __always_inline void ioctl_exit(long ret, struct pt_regs *regs)
{
	struct file_clone_range fcr = {};
	struct dirty_disk *d;
	__u32 slot;
	long cmd;

	if (ret < 0)
		return;
	cmd = (__u32)PT_REGS_PARM2_SYSCALL(regs);
	if (cmd != FICLONE_ && cmd != FICLONERANGE_)
		return;
	d = file_disk(fd_file(PT_REGS_PARM1_SYSCALL(regs)), &slot);
	if (!d)
		return;
	if (cmd == FICLONERANGE_ &&
	    !bpf_probe_read_user(&fcr, sizeof(fcr), (void *)PT_REGS_PARM3_SYSCALL(regs)) &&
	    fcr.src_length)
		mark(slot, fcr.dest_offset, fcr.src_length, counted(d));
	else
		rescan(d, DIRTY_RESCAN_REFLINK);
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int dirty_ioctl_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks && ctx->ret >= 0)
		ioctl_exit(ctx->ret, cur_regs());
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
	if (!d)
		return 0;
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
	flags = file_iocb_flags(f);
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

static __always_inline void io_submit_exit(long n, struct pt_regs *regs)
{
	struct aio_loop a = {};
	struct dirty_global *g;

	if (n <= 0)
		return;
	a.iocbpp = PT_REGS_PARM3_SYSCALL(regs);
	if (n > max_aio_iocbs)
		a.bad = 1;
	if (n == 1)
		aio_iocb_cb(0, &a); /* the usual batch: no loop */
	else
		bpf_loop(n > max_aio_iocbs ? max_aio_iocbs : n, aio_iocb_cb, &a, 0);
	if (a.bad && (g = global()))
		__sync_fetch_and_add(&g->blind_writes, 1); /* every file disk rescans */
}

SEC("tracepoint/syscalls/sys_exit_io_submit")
int dirty_io_submit_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (nr_file_disks && ctx->ret > 0)
		io_submit_exit(ctx->ret, cur_regs());
	return 0;
}

/* ---- every exit in one program -------------------------------------- */

/*
 * Syscall numbers, set by the loader (they are not in BTF); -1: no such
 * syscall on this architecture.
 */
const volatile long nr_pwrite64 = -1, nr_pwritev = -1, nr_pwritev2 = -1;
const volatile long nr_write = -1, nr_writev = -1, nr_sendfile = -1;
const volatile long nr_copy_file_range = -1, nr_splice = -1, nr_fallocate = -1;
const volatile long nr_ftruncate = -1, nr_truncate = -1, nr_open = -1, nr_openat = -1;
const volatile long nr_openat2 = -1, nr_creat = -1, nr_ioctl = -1, nr_io_submit = -1;

#define TS_COMPAT_ 0x0002 /* x86: a 32-bit syscall (its own numbers) */

/*
 * The raw tracepoint behind every syscalls:sys_exit_* event.  Where it
 * exists, this one program replaces the sys_exit_* ones above: each of
 * those is dispatched through a perf record per syscall, and must then
 * ask for the task's registers (bpf_task_pt_regs), where this tracepoint
 * passes them.  That saves some 30 ns on every tracked write; the price is
 * a test of the syscall number on every syscall exit of the host, while a
 * file is tracked (a tracker of block devices does not attach it).
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(dirty_sys_exit, struct pt_regs *regs, long ret)
{
	long nr;

#if defined(__TARGET_ARCH_x86)
	nr = regs->orig_ax;
	if (bpf_get_current_task_btf()->thread_info.status & TS_COMPAT_)
		return 0; /* as the sys_exit_* events, which skip 32-bit syscalls */
#elif defined(__TARGET_ARCH_arm64)
	nr = regs->syscallno;
#else
	return 0; /* the loader uses the sys_exit_* programs */
#endif
	if (nr == nr_pwrite64) {
		if (probe_tid && probe_exit(regs))
			return 0;
		if (nr_file_disks)
			pwrite_exit(ret, regs);
		return 0;
	}
	if (!nr_file_disks)
		return 0;
	if (nr == nr_pwritev)
		pwrite_exit(ret, regs);
	else if (nr == nr_write || nr == nr_writev || nr == nr_sendfile)
		pos_exit(nr, ret, PT_REGS_PARM1_SYSCALL(regs));
	else if (nr == nr_pwritev2)
		pwritev2_exit(nr, ret, regs);
	else if (nr == nr_io_submit)
		io_submit_exit(ret, regs);
	else if (nr == nr_copy_file_range || nr == nr_splice)
		offout_exit(nr, ret, regs);
	else if (nr == nr_fallocate)
		fallocate_exit(ret, regs);
	else if (nr == nr_ftruncate)
		ftruncate_exit(nr, ret);
	else if (nr == nr_truncate)
		truncate_exit(ret);
	else if (nr == nr_openat)
		open_exit(ret, PT_REGS_PARM3_SYSCALL(regs));
	else if (nr == nr_open)
		open_exit(ret, PT_REGS_PARM2_SYSCALL(regs));
	else if (nr == nr_openat2)
		openat2_exit(ret, regs);
	else if (nr == nr_creat)
		open_exit(ret, O_TRUNC_);
	else if (nr == nr_ioctl)
		ioctl_exit(ret, regs);
	return 0;
}

#endif /* FERRY_BPF_DIRTY_SYS_BPF_H */
