/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dirty_async.bpf.h - part of dirty.bpf.c: writes that complete after the
 * syscall that started them, marked at completion: O_DIRECT on iomap file
 * systems, io_uring CQEs, blk-mq requests and device-mapper bios; and ext4
 * truncations.
 */
#ifndef FERRY_BPF_DIRTY_ASYNC_BPF_H
#define FERRY_BPF_DIRTY_ASYNC_BPF_H

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

	/* Most callers are syscalls, which set IOCB_WRITE: test that first. */
	if ((iocb->ki_flags & IOCB_WRITE) || !iter->data_source || !nr_file_disks)
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
	if (key_untracked(&k))
		return 0;
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

	if (!nr_rq_disks || !nr_bytes || !bio_writes(rq->cmd_flags))
		return 0;
	disk = rq->q->disk;
	if (!disk)
		return 0;
	devt = disk->part0->bd_dev;
	if (!(key_mask & (1ULL << DIRTY_KEY_BIT(DIRTY_KEY_BDEV, (__u64)devt))))
		return 0; /* not a disk with tracked parts */
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

	if (!nr_bio_disks || !bio_writes(bio->bi_opf))
		return 0;
	bdev = bio->bi_bdev;
	if (!bdev)
		return 0;
	k.dev = DIRTY_KEY_BDEV;
	k.ino = bdev->bd_dev;
	if (key_untracked(&k))
		return 0;
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

	if (!nr_bio_disks)
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

#endif /* FERRY_BPF_DIRTY_ASYNC_BPF_H */
