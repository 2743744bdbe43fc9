// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty.c - the dirty-block tracker's loader and library (bpf.h).
 *
 * tracker_new() opens, configures, loads and attaches dirty.bpf.c once per
 * process; tracker_start() gives a disk a slot in the host-wide table
 * (pinned map dirty_disks, shared by every tracker on the host and read by
 * operators with bpftool) and a bitmap of its own; tracker_drain() takes the
 * bits with an atomic exchange per word through an mmap of that bitmap.
 * Several processes may track at once: each has its own programs and keys,
 * and only the disk table is shared, one slot per disk.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "common.h"
#include "bpf/bpf.h"
#include "bpf/dirty.h"
#include "dirty.skel.h"

#define BPF_FS_MAGIC_ 0xcafe4a11
#define TRACEFS_MAGIC_ 0x74726163
#define HEADROOM_DEFAULT (64 * GIB)
#define STALE_DEFAULT_MS 30000
#define PENDING_GC_NS (300ULL * 1000000000ULL)

/* Which disks a program serves, and what its absence means. */
enum prog_role {
	ROLE_FILE_CORE, /* without it files cannot be tracked */
	ROLE_FILE, /* a path to files: if it exists but fails, files always rescan */
	ROLE_DIO, /* completion of O_DIRECT on iomap file systems */
	ROLE_EXT4, /* truncation seen by ext4 */
	ROLE_BDEV_CORE, /* without it block devices cannot be tracked */
};

static const struct prog_desc {
	const char *name; /* program in dirty.bpf.c */
	const char *event; /* "cat/event" of a tracepoint, or a tp_btf name */
	bool btf;
	enum prog_role role;
} prog_descs[] = {
	{ "dirty_pwrite64_exit", "syscalls/sys_exit_pwrite64", false, ROLE_FILE_CORE },
	{ "dirty_pwritev_exit", "syscalls/sys_exit_pwritev", false, ROLE_FILE_CORE },
	{ "dirty_write_enter", "syscalls/sys_enter_write", false, ROLE_FILE_CORE },
	{ "dirty_write_exit", "syscalls/sys_exit_write", false, ROLE_FILE_CORE },
	{ "dirty_writev_enter", "syscalls/sys_enter_writev", false, ROLE_FILE_CORE },
	{ "dirty_writev_exit", "syscalls/sys_exit_writev", false, ROLE_FILE_CORE },
	{ "dirty_pwritev2_enter", "syscalls/sys_enter_pwritev2", false, ROLE_FILE },
	{ "dirty_pwritev2_exit", "syscalls/sys_exit_pwritev2", false, ROLE_FILE },
	{ "dirty_sendfile_enter", "syscalls/sys_enter_sendfile64", false, ROLE_FILE },
	{ "dirty_sendfile_exit", "syscalls/sys_exit_sendfile64", false, ROLE_FILE },
	{ "dirty_cfr_enter", "syscalls/sys_enter_copy_file_range", false, ROLE_FILE },
	{ "dirty_cfr_exit", "syscalls/sys_exit_copy_file_range", false, ROLE_FILE },
	{ "dirty_splice_enter", "syscalls/sys_enter_splice", false, ROLE_FILE },
	{ "dirty_splice_exit", "syscalls/sys_exit_splice", false, ROLE_FILE },
	{ "dirty_fallocate_exit", "syscalls/sys_exit_fallocate", false, ROLE_FILE },
	{ "dirty_ftruncate_enter", "syscalls/sys_enter_ftruncate", false, ROLE_FILE },
	{ "dirty_ftruncate_exit", "syscalls/sys_exit_ftruncate", false, ROLE_FILE },
	{ "dirty_truncate_exit", "syscalls/sys_exit_truncate", false, ROLE_FILE },
	{ "dirty_open_exit", "syscalls/sys_exit_open", false, ROLE_FILE },
	{ "dirty_openat_exit", "syscalls/sys_exit_openat", false, ROLE_FILE },
	{ "dirty_openat2_exit", "syscalls/sys_exit_openat2", false, ROLE_FILE },
	{ "dirty_creat_exit", "syscalls/sys_exit_creat", false, ROLE_FILE },
	{ "dirty_ioctl_exit", "syscalls/sys_exit_ioctl", false, ROLE_FILE },
	{ "dirty_mmap_enter", "syscalls/sys_enter_mmap", false, ROLE_FILE },
	{ "dirty_io_submit_exit", "syscalls/sys_exit_io_submit", false, ROLE_FILE },
	{ "dirty_uring_submit", "io_uring_submit_req", true, ROLE_FILE },
	{ "dirty_uring_complete", "io_uring_complete", true, ROLE_FILE },
	{ "dirty_uring_overflow", "io_uring_cqe_overflow", true, ROLE_FILE },
	{ "dirty_dio_begin", "iomap_dio_rw_begin", true, ROLE_DIO },
	{ "dirty_dio_complete", "iomap_dio_complete", true, ROLE_DIO },
	{ "dirty_ext4_truncate", "ext4_truncate_enter", true, ROLE_EXT4 },
	{ "dirty_rq_complete", "block_rq_complete", true, ROLE_BDEV_CORE },
	{ "dirty_bio_queue", "block_bio_queue", true, ROLE_BDEV_CORE },
	{ "dirty_bio_complete", "block_bio_complete", true, ROLE_BDEV_CORE },
};

struct tracker {
	struct dirty_bpf *skel;
	struct bpf_link *links[ARRAY_SIZE(prog_descs)];
	struct dirty_disk *table; /* mmap of dirty_disks */
	size_t table_len;
	char pin_path[PATH_MAX]; /* of dirty_disks, "" when not pinned */
	char pin_dir[PATH_MAX];
	uint64_t headroom_bytes;
	uint64_t stale_after_ns;
	uint32_t self_tgid, self_start;
	bool have_file, have_bdev, have_dio, have_ext4;
	uint32_t file_always; /* reasons every file disk reports (coverage gaps) */
	uint64_t pending_gc_ns;
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
	uint64_t seq;
};

/* ---- libbpf glue -------------------------------------------------------- */

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (level == LIBBPF_WARN)
		log_msg(LOG_LVL_WARN, LOG_SUB_BPF, "%s", buf);
	else if (log_debug_enabled(LOG_SUB_BPF))
		log_msg(LOG_LVL_DEBUG, LOG_SUB_BPF, "%s", buf);
	return 0;
}

static void libbpf_print_init(void)
{
	libbpf_set_print(libbpf_print);
}

static const char *tracefs_dir(void)
{
	if (!access("/sys/kernel/tracing/events", F_OK))
		return "/sys/kernel/tracing";
	if (!access("/sys/kernel/debug/tracing/events", F_OK))
		return "/sys/kernel/debug/tracing";
	return NULL;
}

/* Classic tracepoints need tracefs; mount it where it belongs if it is not. */
static int tracefs_ensure(void)
{
	struct statfs sf;

	if (tracefs_dir())
		return 0;
	if (statfs("/sys/kernel/tracing", &sf) == 0 && sf.f_type != TRACEFS_MAGIC_ &&
	    mount("tracefs", "/sys/kernel/tracing", "tracefs", 0, NULL) == 0) {
		log_info("mounted tracefs on /sys/kernel/tracing");
		if (tracefs_dir())
			return 0;
	}
	log_err("tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)");
	return -ENOENT;
}

static bool event_exists(const struct prog_desc *pd, const struct btf *vmlinux)
{
	char path[PATH_MAX];

	if (pd->btf) {
		snprintf(path, sizeof(path), "btf_trace_%s", pd->event);
		return vmlinux && btf__find_by_name_kind(vmlinux, path, BTF_KIND_TYPEDEF) > 0;
	}
	snprintf(path, sizeof(path), "%s/events/%s/id", tracefs_dir(), pd->event);
	return access(path, F_OK) == 0;
}

/* ---- process identity, for slots of the shared table ------------------- */

static uint32_t proc_start_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	int fd, i;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* comm may hold spaces */
	if (!p)
		return 0;
	/* Each space after ')' starts the next field from 3 on; starttime is 22. */
	for (i = 3; i <= 22 && p; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &start) != 1)
		return 0;
	return (uint32_t)start;
}

static bool owner_alive(uint32_t tgid, uint32_t start)
{
	if (kill((pid_t)tgid, 0) < 0 && errno == ESRCH)
		return false;
	return proc_start_ticks((pid_t)tgid) == start;
}

static uint64_t owner_word(uint32_t tgid, uint32_t start)
{
	struct dirty_disk d = { .owner_tgid = tgid, .owner_start = start };
	uint64_t w;

	memcpy(&w, &d, sizeof(w));
	return w;
}

/* Claim a free (or dead owner's) slot; -ENOSPC when all are taken. */
static int slot_claim(struct tracker *t, uint32_t *slot)
{
	uint64_t mine = owner_word(t->self_tgid, t->self_start);
	uint32_t i;

	for (i = 0; i < DIRTY_MAX_DISKS; i++) {
		struct dirty_disk *e = &t->table[i];
		uint64_t *w = (uint64_t *)e, cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);
		uint32_t tgid = e->owner_tgid, start = e->owner_start;

		if (cur == mine)
			continue; /* one of ours */
		if (cur && owner_alive(tgid, start))
			continue;
		if (__atomic_compare_exchange_n(w, &cur, mine, false, __ATOMIC_SEQ_CST,
						__ATOMIC_SEQ_CST)) {
			/* Everything after the owner word starts from zero. */
			memset((char *)e + sizeof(*w), 0, sizeof(*e) - sizeof(*w));
			*slot = i;
			return 0;
		}
	}
	return -ENOSPC;
}

static void slot_release(struct tracker *t, uint32_t slot)
{
	struct dirty_disk *e = &t->table[slot];

	__atomic_store_n(&e->cookie, 0, __ATOMIC_RELEASE);
	__atomic_store_n((uint64_t *)e, 0, __ATOMIC_RELEASE);
}

static bool table_in_use(const struct tracker *t)
{
	uint32_t i;

	for (i = 0; i < DIRTY_MAX_DISKS; i++)
		if (t->table[i].owner_tgid &&
		    owner_alive(t->table[i].owner_tgid, t->table[i].owner_start))
			return true;
	return false;
}

/*
 * A table pinned by an older build with another layout cannot be reused;
 * remove it when nobody alive owns a slot in it.
 */
static int pinned_table_check(const char *path)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	int fd, ret = 0;

	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		ret = -errno;
		goto out;
	}
	if (info.type == BPF_MAP_TYPE_ARRAY && info.value_size == sizeof(struct dirty_disk) &&
	    info.max_entries == DIRTY_MAX_DISKS && (info.map_flags & BPF_F_MMAPABLE))
		goto out;
	if (info.value_size >= 8) {
		char *v = calloc(1, info.value_size);
		__u32 k;

		for (k = 0; v && k < info.max_entries; k++) {
			uint32_t tgid, start;

			if (bpf_map_lookup_elem(fd, &k, v))
				continue;
			memcpy(&tgid, v, 4);
			memcpy(&start, v + 4, 4);
			if (tgid && owner_alive(tgid, start)) {
				log_err("%s: in use by process %u with another layout "
					"(stop that tracker first)",
					path, tgid);
				ret = -EBUSY;
				break;
			}
		}
		free(v);
		if (ret)
			goto out;
	}
	log_warn("%s: removing a stale disk table of another layout", path);
	if (unlink(path) < 0)
		ret = -errno;
out:
	close(fd);
	return ret;
}

/* ---- tracker_new / tracker_free ---------------------------------------- */

static int pin_dir_prepare(struct tracker *t, const char *dir)
{
	struct statfs sf;
	int ret;

	ret = mkdir_p(dir, 0700);
	if (ret) {
		log_err("%s: cannot create the pin directory: %s", dir, strerror(-ret));
		return ret;
	}
	if (statfs(dir, &sf) < 0 || sf.f_type != BPF_FS_MAGIC_) {
		log_err("%s: not on a BPF file system (mount -t bpf bpf /sys/fs/bpf)", dir);
		return -ENOTDIR;
	}
	snprintf(t->pin_dir, sizeof(t->pin_dir), "%s", dir);
	snprintf(t->pin_path, sizeof(t->pin_path), "%s/dirty_disks", dir);
	return pinned_table_check(t->pin_path);
}

static void set_autoload(struct tracker *t, bool (*keep)(const struct prog_desc *),
			 const struct btf *vmlinux)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(prog_descs); i++) {
		const struct prog_desc *pd = &prog_descs[i];
		struct bpf_program *p = bpf_object__find_program_by_name(t->skel->obj, pd->name);
		bool on = event_exists(pd, vmlinux) && (!keep || keep(pd));

		if (p)
			bpf_program__set_autoload(p, on);
		if (!on)
			log_debug(LOG_SUB_BPF, "%s: not loaded (%s)", pd->name,
				  event_exists(pd, vmlinux) ? "falling back" : "no such event");
	}
}

static bool keep_core(const struct prog_desc *pd)
{
	return pd->role == ROLE_FILE_CORE || pd->role == ROLE_BDEV_CORE;
}

/* Attach what loaded; decide what each kind of disk can rely on. */
static void attach_all(struct tracker *t, bool extras_dropped)
{
	bool file_ok = true, bdev_ok = true, dio = true, ext4 = true, extra_gap = false;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(prog_descs); i++) {
		const struct prog_desc *pd = &prog_descs[i];
		struct bpf_program *p = bpf_object__find_program_by_name(t->skel->obj, pd->name);
		bool ok = false;

		if (p && bpf_program__autoload(p)) {
			t->links[i] = bpf_program__attach(p);
			ok = t->links[i] != NULL;
			if (!ok)
				log_warn("cannot attach %s to %s: %s", pd->name, pd->event,
					 strerror(errno));
		}
		switch (pd->role) {
		case ROLE_FILE_CORE:
			file_ok &= ok;
			break;
		case ROLE_BDEV_CORE:
			bdev_ok &= ok;
			break;
		case ROLE_DIO:
			dio &= ok;
			break;
		case ROLE_EXT4:
			ext4 &= ok;
			break;
		case ROLE_FILE:
			/* An event that does not exist is a path that does not exist. */
			if (!ok && p && (bpf_program__autoload(p) || extras_dropped))
				extra_gap = true;
			break;
		}
	}
	t->have_file = file_ok;
	t->have_bdev = bdev_ok;
	t->have_dio = dio;
	t->have_ext4 = ext4;
	if (extra_gap) {
		t->file_always |= DIRTY_RESCAN_UNCOVERED;
		log_warn("some write paths to files cannot be followed on this kernel: "
			 "every drain of a file disk will ask for a full rescan");
	}
}

struct tracker *tracker_new(const struct tracker_opts *o)
{
	static pthread_once_t print_once = PTHREAD_ONCE_INIT;
	LIBBPF_OPTS(bpf_object_open_opts, open_opts);
	const char *pin = o && o->pin_dir ? o->pin_dir : TRACKER_PIN_DIR_DEFAULT;
	struct btf *vmlinux = NULL;
	struct tracker *t;
	bool dropped = false;
	int ret, fd;
	void *m;

	pthread_once(&print_once, libbpf_print_init);

	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_init(&t->lock, NULL);
	t->headroom_bytes = o && o->headroom_bytes ? o->headroom_bytes : HEADROOM_DEFAULT;
	t->stale_after_ns =
		(o && o->stale_after_ms ? o->stale_after_ms : STALE_DEFAULT_MS) * 1000000ULL;
	t->self_tgid = (uint32_t)getpid();
	t->self_start = proc_start_ticks(getpid());

	ret = tracefs_ensure();
	if (ret)
		goto err;
	if (*pin) {
		ret = pin_dir_prepare(t, pin);
		if (ret)
			goto err;
		open_opts.pin_root_path = t->pin_dir;
	}
	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux) {
		ret = -errno;
		log_err("cannot read the kernel's BTF (/sys/kernel/btf/vmlinux): %s",
			strerror(errno));
		goto err;
	}
	for (;;) {
		t->skel = dirty_bpf__open_opts(&open_opts);
		if (!t->skel) {
			ret = -errno;
			log_err("cannot open the dirty tracker's BPF object: %s", strerror(errno));
			goto err;
		}
		if (!*pin)
			bpf_map__set_pin_path(t->skel->maps.dirty_disks, NULL);
		t->skel->rodata->max_mark_words = DIRTY_MARK_MAX_WORDS;
		t->skel->rodata->max_aio_iocbs = DIRTY_AIO_MAX_IOCBS;
		set_autoload(t, dropped ? keep_core : NULL, vmlinux);
		ret = dirty_bpf__load(t->skel);
		if (!ret)
			break;
		dirty_bpf__destroy(t->skel);
		t->skel = NULL;
		if (dropped) {
			log_err("cannot load the dirty tracker's BPF programs: %s "
				"(-v shows the verifier's log)",
				strerror(-ret));
			goto err;
		}
		log_warn("loading every dirty-tracking program failed (%s); retrying with "
			 "the essential ones",
			 strerror(-ret));
		dropped = true;
	}
	attach_all(t, dropped);
	if (!t->have_file && !t->have_bdev) {
		ret = -EOPNOTSUPP;
		log_err("neither write syscalls nor block I/O can be traced on this kernel");
		goto err;
	}

	fd = bpf_map__fd(t->skel->maps.dirty_disks);
	t->table_len = ROUND_UP(sizeof(struct dirty_disk) * DIRTY_MAX_DISKS,
				(size_t)sysconf(_SC_PAGESIZE));
	m = mmap(NULL, t->table_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		ret = -errno;
		log_err("cannot map the disk table: %s", strerror(errno));
		goto err;
	}
	t->table = m;
	btf__free(vmlinux);
	log_debug(LOG_SUB_BPF,
		  "dirty tracker ready: files %s, block devices %s, "
		  "O_DIRECT completion %s, ext4 truncation %s, table %s",
		  t->have_file ? "yes" : "no", t->have_bdev ? "yes" : "no",
		  t->have_dio ? "yes" : "no", t->have_ext4 ? "yes" : "no",
		  *t->pin_path ? t->pin_path : "(not pinned)");
	return t;
err:
	btf__free(vmlinux);
	tracker_free(t);
	errno = -ret;
	return NULL;
}

const char *tracker_pin_path(const struct tracker *t)
{
	return *t->pin_path ? t->pin_path : NULL;
}

void tracker_free(struct tracker *t)
{
	size_t i;
	int saved = errno;

	if (!t)
		return;
	while (t->disks)
		tracker_stop(t->disks);
	for (i = 0; i < ARRAY_SIZE(t->links); i++)
		bpf_link__destroy(t->links[i]);
	if (t->table) {
		bool busy = table_in_use(t);

		munmap(t->table, t->table_len);
		if (!busy && *t->pin_path) {
			unlink(t->pin_path);
			rmdir(t->pin_dir); /* only if nothing else is pinned there */
		}
	}
	dirty_bpf__destroy(t->skel);
	pthread_mutex_destroy(&t->lock);
	free(t);
	errno = saved;
}

/* ---- tracker_start / tracker_stop -------------------------------------- */

/*
 * Ask the programs themselves which key they will see for @fd: a pwrite64()
 * of nothing by this thread makes the exit hook record the key and count a
 * hit.  This also proves the syscall hooks fire.  Called with t->lock held.
 */
static int probe_fd(struct tracker *t, int fd, struct dirty_key *key)
{
	struct dirty_global g0 = {}, g1 = {};
	int gfd = bpf_map__fd(t->skel->maps.dirty_global);
	__u32 zero = 0;

	bpf_map_lookup_elem(gfd, &zero, &g0);
	memset(&t->skel->bss->probe_key, 0, sizeof(t->skel->bss->probe_key));
	__atomic_store_n(&t->skel->bss->probe_tid, (uint32_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	syscall(SYS_pwrite64, fd, NULL, 0, 0);
	__atomic_store_n(&t->skel->bss->probe_tid, 0, __ATOMIC_SEQ_CST);
	bpf_map_lookup_elem(gfd, &zero, &g1);
	if (g1.probe_hits == g0.probe_hits)
		return -EIO;
	if (key)
		memcpy(key, &t->skel->bss->probe_key, sizeof(*key));
	return 0;
}

/* Is there a shared mapping of (dev, ino) in any process on the host? */
static bool shared_mapping_exists(uint64_t kdev, uint64_t ino)
{
	unsigned int kmaj = (unsigned int)(kdev >> 20), kmin = (unsigned int)(kdev & 0xfffff);
	bool found = false;
	struct dirent *de;
	DIR *dir;

	dir = opendir("/proc");
	if (!dir)
		return true; /* cannot tell: assume so */
	while (!found && (de = readdir(dir))) {
		char path[64], line[512];
		FILE *f;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/maps", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned int maj, min;
			unsigned long long i;
			char perms[8];

			if (sscanf(line, "%*x-%*x %7s %*x %x:%x %llu", perms, &maj, &min, &i) != 4)
				continue;
			if (perms[3] == 's' && i == ino && maj == kmaj && min == kmin) {
				found = true;
				break;
			}
		}
		fclose(f);
	}
	closedir(dir);
	return found;
}

static int bdev_size(unsigned int maj, unsigned int min, uint64_t *size)
{
	char path[128], *s;
	uint64_t sectors;
	int ret;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/size", maj, min);
	s = file_read_all(path, 64, NULL);
	if (!s)
		return -errno;
	s[strcspn(s, "\n")] = '\0';
	ret = parse_u64(s, &sectors);
	free(s);
	if (!ret)
		*size = sectors * 512;
	return ret;
}

static int sysfs_u64(unsigned int maj, unsigned int min, const char *attr, uint64_t *v)
{
	char path[128], *s;
	int ret;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s", maj, min, attr);
	s = file_read_all(path, 64, NULL);
	if (!s)
		return -errno;
	s[strcspn(s, "\n")] = '\0';
	ret = parse_u64(s, v);
	free(s);
	return ret;
}

/*
 * Where requests for this device complete: request-based (blk-mq) disks
 * and their partitions complete against the whole disk at absolute
 * sectors; bio-based ones (device-mapper) complete their own bios.
 */
static int bdev_layout(struct tracker_disk *d)
{
	char path[128], dev[32];
	unsigned int wmaj = d->rmajor, wmin = d->rminor;
	uint64_t start = 0;
	char *s;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/partition", d->rmajor, d->rminor);
	if (!access(path, F_OK)) {
		if (sysfs_u64(d->rmajor, d->rminor, "start", &start))
			return -EIO;
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/../dev", d->rmajor, d->rminor);
		s = file_read_all(path, 64, NULL);
		if (!s || sscanf(s, "%u:%u", &wmaj, &wmin) != 2) {
			free(s);
			return -EIO;
		}
		free(s);
	}
	snprintf(dev, sizeof(dev), "%u:%u", wmaj, wmin);
	snprintf(path, sizeof(path), "/sys/dev/block/%s/mq", dev);
	if (access(path, F_OK))
		return 0; /* bio-based */
	d->whole_devt = wmaj << 20 | wmin;
	d->start_sect = start;
	return 0;
}

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
		m.part[m.n].nr_sect = d->nbits * d->gran / 512;
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
		return bdev_size(d->rmajor, d->rminor, size);
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
	struct statfs sf;
	uint64_t c = 0;
	size_t i;

	if (fstatfs(fd, &sf) < 0)
		return 0;
	for (i = 0; i < ARRAY_SIZE(iomap_dio_fs); i++)
		if (t->have_dio && (long)sf.f_type == iomap_dio_fs[i])
			c |= DIRTY_CFG_DIO_DONE;
	if (t->have_ext4 && sf.f_type == 0xEF53)
		c |= DIRTY_CFG_SHRINK_HOOK;
	return c;
}

/*
 * Is the file the backing file of a buffered loop device?  The loop
 * driver writes it from a kernel thread, with no syscall to see; with
 * direct I/O its writes complete through iomap and are seen.
 */
static bool loop_backed(const struct tracker_disk *d)
{
	struct stat me, st;
	struct dirent *de;
	bool found = false;
	DIR *dir;

	if (fstat(d->fd, &me) < 0)
		return false;
	dir = opendir("/sys/block");
	if (!dir)
		return false;
	while (!found && (de = readdir(dir))) {
		char path[PATH_MAX], *bf, *dio;

		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		bf = file_read_all(path, PATH_MAX, NULL);
		if (!bf)
			continue;
		bf[strcspn(bf, "\n")] = '\0';
		if (!stat(bf, &st) && st.st_dev == me.st_dev && st.st_ino == me.st_ino) {
			snprintf(path, sizeof(path), "/sys/block/%s/loop/dio", de->d_name);
			dio = file_read_all(path, 16, NULL);
			found = !dio || dio[0] != '1' ||
				!(d->t->table[d->slot].config & DIRTY_CFG_DIO_DONE);
			if (found)
				log_warn("%s: backs /dev/%s, whose writes cannot be followed "
					 "(track /dev/%s instead)",
					 d->path, de->d_name, de->d_name);
			free(dio);
		}
		free(bf);
	}
	closedir(dir);
	return found;
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
		ret = bdev_size(d->rmajor, d->rminor, &size);
		if (ret || !size) {
			ret = ret ? ret : -EINVAL;
			log_err("%s: cannot read the device's size", disk_path);
			goto err;
		}
		cap = size;
		ret = bdev_layout(d);
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
	/* The key the programs will see (works across btrfs subvolumes and overlays). */
	ret = probe_fd(t, d->fd, &d->key);
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
	ret = slot_claim(t, &d->slot);
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
	ret = bpf_map_update_elem(bpf_map__fd(t->skel->maps.dirty_keys), &d->key, &d->slot,
				  BPF_NOEXIST);
	if (ret) {
		ret = -errno;
		log_err("%s: cannot register the disk: %s", disk_path, strerror(errno));
		goto err_unlock;
	}
	keyed = true;
	if (d->kind == DIRTY_KIND_FILE)
		__atomic_fetch_add(&t->skel->bss->nr_file_disks, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_add(&t->skel->bss->nr_bdev_disks, 1, __ATOMIC_SEQ_CST);
	bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.dirty_global), &(__u32){ 0 }, &d->seen);
	/* Mappings made before we looked cannot be followed either. */
	if (d->kind == DIRTY_KIND_FILE && shared_mapping_exists(d->key.dev, d->key.ino)) {
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
	if (keyed)
		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.dirty_keys), &d->key);
	if (mapped)
		bpf_map_delete_elem(bpf_map__fd(t->skel->maps.dirty_bitmaps), &d->slot);
	if (have_slot)
		slot_release(t, d->slot);
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
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.dirty_keys), &d->key);
	if (d->whole_devt)
		bdev_parts_update(d, true);
	if (d->kind == DIRTY_KIND_FILE)
		__atomic_fetch_sub(&t->skel->bss->nr_file_disks, 1, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_sub(&t->skel->bss->nr_bdev_disks, 1, __ATOMIC_SEQ_CST);
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.dirty_bitmaps), &d->slot);
	slot_release(t, d->slot);
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

/* Forget syscalls whose exit never came (their thread died in between). */
static void pending_reap(struct tracker *t, uint64_t now)
{
	int fd = bpf_map__fd(t->skel->maps.dirty_pending);
	__u32 key, next, *prev = NULL;

	if (now < t->pending_gc_ns)
		return;
	t->pending_gc_ns = now + PENDING_GC_NS / 10;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		struct dirty_pending v;

		key = next;
		prev = &key;
		if (!bpf_map_lookup_elem(fd, &key, &v) && now > v.ts_ns &&
		    now - v.ts_ns > PENDING_GC_NS)
			bpf_map_delete_elem(fd, &key);
	}
}

/* Reasons that come from process-wide events and from userspace checks. */
static uint32_t drain_checks(struct tracker_disk *d)
{
	struct tracker *t = d->t;
	struct dirty_global g = {};
	uint32_t why = 0;
	uint64_t now = now_ns();

	if (probe_fd(t, d->fd, NULL))
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
		if (loop_backed(d))
			why |= DIRTY_RESCAN_UNCOVERED;
	} else if (!d->whole_devt) {
		why |= inflight_reap(d, now);
	}
	d->seen = g;
	pending_reap(t, now);
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
		d->mmap_sticky = shared_mapping_exists(d->key.dev, d->key.ino);
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
