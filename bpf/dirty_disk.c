// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty_disk.c - the tracked disks of a tracker (bpf.h): tracker_start()
 * gives a disk a slot in the host-wide table and a bitmap of its own,
 * tracker_drain() takes the bits with an atomic exchange per word through
 * an mmap of that bitmap and adds what only userspace can see (process-
 * wide events, shared mappings, shrinking, stale I/O).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define FERRY_BPF_TRACKER_INTERNAL
#include "common.h"
#include "bpf/bpf.h"
#include "bpf/dirty.h"
#include "dirty.skel.h"

/* ---- tracker_start / tracker_stop -------------------------------------- */

/* Add (or with @remove, drop) this disk in its whole disk's part list. */
static int bdev_parts_update(struct tracker_disk *d, bool remove)
{
	struct tracker *t = d->t;
	int fd = bpf_map__fd(t->skel->maps.dirty_bdevs);
	struct dirty_bdev_map m = {};
	uint32_t i, j;

	if (bpf_map_lookup_elem(fd, &d->whole_devt, &m))
		memset(&m, 0, sizeof(m));
	for (i = j = 0; i < m.n && i < DIRTY_MAX_PARTS; i++)
		if (m.part[i].slot != d->slot)
			m.part[j++] = m.part[i];
	m.n = j;
	if (!remove) {
		if (m.n >= DIRTY_MAX_PARTS)
			return -ENOSPC;
		m.part[m.n].start_sect = d->start_sect;
		m.part[m.n].nr_sect = d->last_size / 512; /* not rounded up: a neighbour's */
		m.part[m.n].slot = d->slot;
		m.part[m.n].cookie = t->table[d->slot].cookie;
		m.n++;
	}
	if (!m.n)
		return bpf_map_delete_elem(fd, &d->whole_devt) ? -errno : 0;
	return bpf_map_update_elem(fd, &d->whole_devt, &m, BPF_ANY) ? -errno : 0;
}

static int disk_size(struct tracker_disk *d, uint64_t *size)
{
	struct stat st;

	if (d->kind == DIRTY_KIND_BDEV)
		return dirty_host_bdev_size(d->rmajor, d->rminor, size);
	if (fstat(d->fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

/*
 * What the file's file system reports: O_DIRECT completion through iomap
 * (so async O_DIRECT writes are placed when they land) and, for ext4,
 * every truncation.
 */
static uint64_t fs_config(const struct tracker *t, int fd)
{
	static const long iomap_dio_fs[] = {
		0xEF53, /* ext2/3/4 (ext4 driver) */
		0x58465342, /* xfs */
		0x9123683E, /* btrfs */
		0xF2F52010, /* f2fs */
	};
	long type = dirty_host_fs_type(fd);
	uint64_t c = 0;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(iomap_dio_fs); i++)
		if (t->have_dio && type == iomap_dio_fs[i])
			c |= DIRTY_CFG_DIO_DONE;
	if (t->have_ext4 && type == 0xEF53)
		c |= DIRTY_CFG_SHRINK_HOOK;
	return c;
}

/*
 * A file backing a buffered loop device is written by the loop driver's
 * thread, with no syscall to see; with direct I/O on a file system whose
 * O_DIRECT completion is seen, it is tracked.
 */
static bool loop_uncovered(struct tracker_disk *d)
{
	bool dio = false;
	char name[64];

	if (!dirty_host_loop_backing(d->fd, name, sizeof(name), &dio))
		return false;
	if (dio && (d->t->table[d->slot].config & DIRTY_CFG_DIO_DONE))
		return false;
	if (!d->loop_warned)
		log_warn("%s: backs /dev/%s, whose writes cannot be followed (track /dev/%s "
			 "instead); asking for full rescans while it does",
			 d->path, name, name);
	d->loop_warned = true;
	return true;
}

/* The programs' cheap filters: how many disks of each kind are tracked. */
static void disk_count(struct tracker_disk *d, int n)
{
	struct dirty_bpf__bss *bss = d->t->skel->bss;

	if (d->kind == DIRTY_KIND_FILE) {
		__atomic_fetch_add(&bss->nr_file_disks, n, __ATOMIC_SEQ_CST);
		return;
	}
	__atomic_fetch_add(&bss->nr_bdev_disks, n, __ATOMIC_SEQ_CST);
	if (d->whole_devt)
		__atomic_fetch_add(&bss->nr_rq_disks, n, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_add(&bss->nr_bio_disks, n, __ATOMIC_SEQ_CST);
}

/* Its bits in the programs' key filter: its key, and its whole disk's dev_t. */
static uint64_t key_bits(const struct tracker_disk *d)
{
	uint64_t m = 1ULL << DIRTY_KEY_BIT(d->key.dev, d->key.ino);

	if (d->whole_devt)
		m |= 1ULL << DIRTY_KEY_BIT(DIRTY_KEY_BDEV, (uint64_t)d->whole_devt);
	return m;
}

/*
 * Fill the programs' key cache entry for @d if it is free (dirty.h): the
 * cookie last.  Or, with !fill, empty it if it is @d's: the cookie first.
 */
static void key_cache_set(struct tracker_disk *d, bool fill)
{
	struct dirty_key_cache *c =
		&d->t->skel->bss->key_cache[DIRTY_KEY_BIT(d->key.dev, d->key.ino)];
	uint32_t cookie = d->t->table[d->slot].cookie;

	if (fill) {
		if (__atomic_load_n(&c->cookie, __ATOMIC_SEQ_CST))
			return; /* another disk's: this one is looked up */
		__atomic_store_n(&c->dev, d->key.dev, __ATOMIC_SEQ_CST);
		__atomic_store_n(&c->ino, d->key.ino, __ATOMIC_SEQ_CST);
		__atomic_store_n(&c->slot, d->slot, __ATOMIC_SEQ_CST);
		__atomic_store_n(&c->cookie, cookie, __ATOMIC_SEQ_CST);
		return;
	}
	if (__atomic_load_n(&c->cookie, __ATOMIC_SEQ_CST) != cookie || c->slot != d->slot ||
	    c->dev != d->key.dev || c->ino != d->key.ino)
		return;
	__atomic_store_n(&c->cookie, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&c->slot, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&c->dev, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&c->ino, 0, __ATOMIC_SEQ_CST);
}

/* The programs' key filter from the disks in the list (after a key went). */
static void key_mask_reset(struct tracker *t)
{
	struct tracker_disk *o;
	uint64_t m = 0;

	for (o = t->disks; o; o = o->next)
		m |= key_bits(o);
	__atomic_store_n(&t->skel->bss->key_mask, m, __ATOMIC_SEQ_CST);
}

static int gran_shift_of(uint32_t gran)
{
	if (gran < TRACKER_GRANULARITY_MIN || gran > TRACKER_GRANULARITY_MAX || (gran & (gran - 1)))
		return -EINVAL;
	return __builtin_ctz(gran);
}

static void disk_free(struct tracker_disk *d)
{
	if (d->words)
		munmap(d->words, d->words_len);
	if (d->words_fd >= 0)
		close(d->words_fd);
	if (d->fd >= 0)
		close(d->fd);
	free(d->ever);
	free(d->path);
	free(d);
}

static int disk_bitmap_create(struct tracker_disk *d)
{
	LIBBPF_OPTS(bpf_map_create_opts, mo, .map_flags = BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	void *m;

	d->words_fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "dirty_words", sizeof(__u32),
				     sizeof(__u64), (__u32)d->nwords, &mo);
	if (d->words_fd < 0)
		return -errno;
	d->words_len = ROUND_UP(d->nwords * sizeof(uint64_t), (size_t)sysconf(_SC_PAGESIZE));
	m = mmap(NULL, d->words_len, PROT_READ | PROT_WRITE, MAP_SHARED, d->words_fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	d->words = m;
	d->ever = calloc(d->nwords, sizeof(uint64_t));
	return d->ever ? 0 : -ENOMEM;
}

int tracker_start(struct tracker *t, const char *disk_path, uint32_t granularity_bytes,
		  struct tracker_disk **out)
{
	struct tracker_disk *d, *o;
	struct dirty_disk *e = NULL;
	uint64_t size = 0, cap;
	bool have_slot = false, keyed = false, mapped = false, parted = false;
	struct stat st;
	int shift, ret;
	__u32 cookie;

	*out = NULL;
	if (!granularity_bytes)
		granularity_bytes = TRACKER_GRANULARITY_DEFAULT;
	shift = gran_shift_of(granularity_bytes);
	if (shift < 0) {
		log_err("%s: granularity %u is not a power of two from 4 KiB to 1 MiB", disk_path,
			granularity_bytes);
		return -EINVAL;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->t = t;
	d->fd = d->words_fd = -1;
	d->gran = granularity_bytes;
	d->path = strdup(disk_path);
	if (!d->path) {
		ret = -ENOMEM;
		goto err;
	}
	d->fd = open(disk_path, O_PATH | O_CLOEXEC);
	if (d->fd < 0 || fstat(d->fd, &st) < 0) {
		ret = -errno;
		log_err("%s: %s", disk_path, strerror(errno));
		goto err;
	}
	if (S_ISREG(st.st_mode)) {
		d->kind = DIRTY_KIND_FILE;
		size = (uint64_t)st.st_size;
		cap = size + t->headroom_bytes;
		if (!t->have_file) {
			ret = -EOPNOTSUPP;
			log_err("%s: write syscalls cannot be traced on this kernel", disk_path);
			goto err;
		}
	} else if (S_ISBLK(st.st_mode)) {
		d->kind = DIRTY_KIND_BDEV;
		d->rmajor = major(st.st_rdev);
		d->rminor = minor(st.st_rdev);
		if (!t->have_bdev) {
			ret = -EOPNOTSUPP;
			log_err("%s: block I/O cannot be traced on this kernel", disk_path);
			goto err;
		}
		ret = dirty_host_bdev_size(d->rmajor, d->rminor, &size);
		if (ret || !size) {
			ret = ret ? ret : -EINVAL;
			log_err("%s: cannot read the device's size", disk_path);
			goto err;
		}
		cap = size;
		ret = dirty_host_bdev_layout(d->rmajor, d->rminor, &d->whole_devt, &d->start_sect);
		if (ret) {
			log_err("%s: cannot read the device's layout in /sys/dev/block", disk_path);
			goto err;
		}
	} else {
		ret = -EINVAL;
		log_err("%s: not a regular file or a block device", disk_path);
		goto err;
	}
	d->nbits = DIV_ROUND_UP(MAX(cap, 1), d->gran);
	d->nwords = DIV_ROUND_UP(d->nbits, 64);
	if (d->nwords > UINT32_MAX) {
		ret = -EFBIG;
		log_err("%s: too large for granularity %" PRIu64, disk_path, d->gran);
		goto err;
	}
	d->last_size = size;

	pthread_mutex_lock(&t->lock);
	ret = dirty_attach(t, d->kind, d->kind == DIRTY_KIND_BDEV && !d->whole_devt);
	if (ret)
		goto err_unlock;
	if (d->kind == DIRTY_KIND_FILE ? !t->have_file : !t->have_bdev) {
		ret = -EOPNOTSUPP;
		log_err("%s: the programs for this kind of disk could not attach", disk_path);
		goto err_unlock;
	}
	/* The key the programs will see (works across btrfs subvolumes and overlays). */
	ret = dirty_probe_fd(t, d->fd, &d->key);
	if (ret) {
		log_err("%s: the write-syscall hooks do not fire; is another program detaching "
			"them?",
			disk_path);
		goto err_unlock;
	}
	if (d->kind == DIRTY_KIND_BDEV && (d->key.dev != DIRTY_KEY_BDEV ||
					   d->key.ino != ((uint64_t)d->rmajor << 20 | d->rminor))) {
		ret = -EIO;
		log_err("%s: the kernel sees another device (%#llx) than stat() (%u:%u)", disk_path,
			(unsigned long long)d->key.ino, d->rmajor, d->rminor);
		goto err_unlock;
	}
	for (o = t->disks; o; o = o->next) {
		if (!memcmp(&o->key, &d->key, sizeof(d->key))) {
			ret = -EEXIST;
			log_err("%s: already tracked here (as %s)", disk_path, o->path);
			goto err_unlock;
		}
	}
	ret = dirty_slot_claim(t, &d->slot);
	if (ret) {
		log_err("%s: all %d slots of the disk table are in use", disk_path,
			DIRTY_MAX_DISKS);
		goto err_unlock;
	}
	have_slot = true;
	ret = disk_bitmap_create(d);
	if (ret) {
		log_err("%s: cannot create a bitmap of %" PRIu64 " blocks: %s", disk_path, d->nbits,
			strerror(-ret));
		goto err_unlock;
	}
	e = &t->table[d->slot];
	random_bytes(&cookie, sizeof(cookie));
	e->kind = d->kind;
	e->major = d->kind == DIRTY_KIND_BDEV ? d->rmajor : major(st.st_dev);
	e->minor = d->kind == DIRTY_KIND_BDEV ? d->rminor : minor(st.st_dev);
	e->ino = d->kind == DIRTY_KIND_FILE ? st.st_ino : 0;
	e->gran_shift = (uint32_t)shift;
	e->granularity_bytes = d->gran;
	e->nbits = d->nbits;
	if (d->kind == DIRTY_KIND_FILE)
		e->config = fs_config(t, d->fd);
	else if (!d->whole_devt)
		e->config = DIRTY_CFG_BIO_BASED;
	e->size_bytes = size;
	__atomic_store_n(&e->cookie, cookie | 1, __ATOMIC_SEQ_CST);

	ret = bpf_map_update_elem(bpf_map__fd(t->skel->maps.dirty_bitmaps), &d->slot, &d->words_fd,
				  BPF_ANY);
	if (ret) {
		ret = -errno;
		log_err("%s: cannot install the bitmap: %s", disk_path, strerror(errno));
		goto err_unlock;
	}
	mapped = true;
	/* From here on the programs may find this disk: its filter bits first. */
	__atomic_fetch_or(&t->skel->bss->key_mask, key_bits(d), __ATOMIC_SEQ_CST);
	if (d->whole_devt) {
		ret = bdev_parts_update(d, false);
		if (ret) {
			log_err("%s: cannot register the device: %s", disk_path,
				ret == -ENOSPC ? "too many tracked parts of one disk" :
						 strerror(-ret));
			goto err_unlock;
		}
		parted = true;
	}
	/* From here on the programs mark this disk. */
	key_cache_set(d, true);
	ret = bpf_map_update_elem(bpf_map__fd(t->skel->maps.dirty_keys), &d->key, &d->slot,
				  BPF_NOEXIST);
	if (ret) {
		ret = -errno;
		log_err("%s: cannot register the disk: %s", disk_path, strerror(errno));
		goto err_unlock;
	}
	keyed = true;
	disk_count(d, 1);
	/* Position writes that entered before the key fall back at their exit. */
	__atomic_fetch_add(&t->skel->bss->start_gen, 1, __ATOMIC_SEQ_CST);
	bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.dirty_global), &(__u32){ 0 }, &d->seen);
	/* Mappings made before we looked cannot be followed either. */
	if (d->kind == DIRTY_KIND_FILE && dirty_host_shared_mapping(d->key.dev, d->key.ino)) {
		__atomic_fetch_or(&e->rescan, DIRTY_RESCAN_MMAP, __ATOMIC_SEQ_CST);
		d->mmap_sticky = true;
	}
	d->next = t->disks;
	t->disks = d;
	pthread_mutex_unlock(&t->lock);
	log_debug(LOG_SUB_BPF, "%s: tracking in slot %u, %" PRIu64 " blocks of %" PRIu64 " bytes",
		  disk_path, d->slot, d->nbits, d->gran);
	*out = d;
	return 0;

err_unlock:
	if (parted)
		bdev_parts_update(d, true);
	if (mapped)
		key_cache_set(d, false);
	if (keyed)
		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.dirty_keys), &d->key);
	key_mask_reset(t);
	if (mapped)
		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.dirty_bitmaps), &d->slot);
	if (have_slot)
		dirty_slot_release(t, d->slot);
	if (!t->disks)
		dirty_detach(t);
	pthread_mutex_unlock(&t->lock);
err:
	disk_free(d);
	return ret;
}

int tracker_stop(struct tracker_disk *d)
{
	struct tracker *t = d->t;
	struct tracker_disk **pp;

	pthread_mutex_lock(&t->lock);
	for (pp = &t->disks; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	key_cache_set(d, false);
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.dirty_keys), &d->key);
	key_mask_reset(t); /* d is off the list */
	if (d->whole_devt)
		bdev_parts_update(d, true);
	disk_count(d, -1);
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.dirty_bitmaps), &d->slot);
	dirty_slot_release(t, d->slot);
	if (!t->disks)
		dirty_detach(t); /* idle: cost the host's writes nothing */
	pthread_mutex_unlock(&t->lock);
	log_debug(LOG_SUB_BPF, "%s: tracking stopped", d->path);
	disk_free(d);
	return 0;
}

const char *tracker_disk_path(const struct tracker_disk *d)
{
	return d->path;
}

/* ---- tracker_drain ------------------------------------------------------ */

/* Reap in-flight bios of @d that completed unseen or never did. */
static uint32_t inflight_reap(struct tracker_disk *d, uint64_t now)
{
	struct tracker *t = d->t;
	int fd = bpf_map__fd(t->skel->maps.dirty_inflight);
	struct dirty_disk *e = &t->table[d->slot];
	__u64 key, next, *prev = NULL;
	uint32_t why = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct dirty_inflight v;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v) || v.slot != d->slot)
			continue;
		if (v.cookie != e->cookie || v.done) {
			bpf_map_delete_elem(fd, &key);
		} else if (now > v.ts_ns && now - v.ts_ns > t->stale_after_ns) {
			bpf_map_delete_elem(fd, &key);
			__atomic_fetch_sub(&e->inflight, 1, __ATOMIC_SEQ_CST);
			why |= DIRTY_RESCAN_STALE;
		}
	}
	return why;
}

/* Reasons that come from process-wide events and from userspace checks. */
static uint32_t drain_checks(struct tracker_disk *d)
{
	struct tracker *t = d->t;
	struct dirty_global g = {};
	uint32_t why = 0;
	uint64_t now = now_ns();

	if (dirty_probe_fd(t, d->fd, NULL))
		why |= DIRTY_RESCAN_DETACHED;
	bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.dirty_global), &(__u32){ 0 }, &g);
	if (d->kind == DIRTY_KIND_FILE) {
		why |= t->file_always;
		if (g.lost_writes != d->seen.lost_writes)
			why |= DIRTY_RESCAN_LOST;
		if (g.blind_writes != d->seen.blind_writes)
			why |= DIRTY_RESCAN_IO_URING;
		if (g.truncates != d->seen.truncates &&
		    !(t->table[d->slot].config & DIRTY_CFG_SHRINK_HOOK))
			why |= DIRTY_RESCAN_TRUNCATE;
		if (loop_uncovered(d))
			why |= DIRTY_RESCAN_UNCOVERED;
	} else if (!d->whole_devt) {
		why |= inflight_reap(d, now);
	}
	d->seen = g;
	return why;
}

int tracker_drain(struct tracker_disk *d, struct tracker_bitmap *bm)
{
	struct tracker *t = d->t;
	struct dirty_disk *e = &t->table[d->slot];
	uint64_t i, taken = 0, fresh = 0, last = 0, size = 0, nbits;
	uint32_t why;
	int ret;

	pthread_mutex_lock(&t->lock);
	why = drain_checks(d);
	pthread_mutex_unlock(&t->lock);

	ret = tracker_bitmap_resize(bm, d->nbits);
	if (ret)
		return ret;
	bm->granularity_bytes = d->gran;
	/* Take each word whole: a bit set after its exchange waits for the next drain. */
	for (i = 0; i < d->nwords; i++) {
		uint64_t w;

		if (!__atomic_load_n(&d->words[i], __ATOMIC_RELAXED))
			continue;
		w = __atomic_exchange_n(&d->words[i], 0, __ATOMIC_SEQ_CST);
		bm->words[i] = w;
		taken += (uint64_t)__builtin_popcountll(w);
		fresh += (uint64_t)__builtin_popcountll(w & ~d->ever[i]);
		d->ever[i] |= w;
		if (w)
			last = i * 64 + 64 - (uint64_t)__builtin_clzll(w);
	}
	why |= (uint32_t)__atomic_exchange_n(&e->rescan, 0, __ATOMIC_SEQ_CST);
	if (taken)
		__atomic_fetch_sub(&e->pending_blocks, taken, __ATOMIC_SEQ_CST);

	/* Size after the bits: every write they stand for is inside it. */
	if (disk_size(d, &size) == 0) {
		if (size < d->last_size)
			why |= DIRTY_RESCAN_SHRINK; /* however it happened */
		d->last_size = size;
	}
	if (why & DIRTY_RESCAN_MMAP || d->mmap_sticky) {
		/* Until the last shared mapping is gone, nothing it writes is seen. */
		d->mmap_sticky = dirty_host_shared_mapping(d->key.dev, d->key.ino);
		if (d->mmap_sticky)
			why |= DIRTY_RESCAN_MMAP;
	}
	nbits = MAX(DIV_ROUND_UP(size, d->gran), last);
	bm->nbits = MIN(nbits, d->nbits);
	bm->size_bytes = size;
	bm->dirty_blocks = taken;
	bm->rescan_needed = why != 0;
	bm->rescan_reasons = why;
	bm->seq = ++d->seq;

	d->ever_count += fresh;
	__atomic_store_n(&e->dirty_blocks, d->ever_count, __ATOMIC_RELAXED);
	__atomic_store_n(&e->size_bytes, size, __ATOMIC_RELAXED);
	__atomic_store_n(&e->drains, d->seq, __ATOMIC_RELAXED);
	if (why) {
		__atomic_fetch_add(&e->rescans, 1, __ATOMIC_RELAXED);
		__atomic_fetch_or(&e->rescan_reasons, why, __ATOMIC_RELAXED);
		log_debug(LOG_SUB_BPF, "%s: drain %" PRIu64 " needs a rescan (%#x)", d->path,
			  d->seq, why);
	}
	return 0;
}

int tracker_disk_stats(struct tracker_disk *d, struct tracker_disk_stats *st)
{
	struct dirty_disk *e = &d->t->table[d->slot];

	memset(st, 0, sizeof(*st));
	st->writes = __atomic_load_n(&e->writes, __ATOMIC_RELAXED);
	st->written_bytes = __atomic_load_n(&e->written_bytes, __ATOMIC_RELAXED);
	st->pending_blocks = __atomic_load_n(&e->pending_blocks, __ATOMIC_RELAXED);
	st->inflight = __atomic_load_n(&e->inflight, __ATOMIC_RELAXED);
	st->dirty_blocks = d->ever_count;
	st->granularity_bytes = d->gran;
	st->size_bytes = d->last_size;
	st->drains = d->seq;
	st->rescans = __atomic_load_n(&e->rescans, __ATOMIC_RELAXED);
	st->rescan_reasons = (uint32_t)__atomic_load_n(&e->rescan_reasons, __ATOMIC_RELAXED);
	return 0;
}
