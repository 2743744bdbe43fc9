// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * dirty.c - the dirty-block tracker's loader (bpf.h); its disks are in
 * dirty_disk.c.
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

#define FERRY_BPF_TRACKER_INTERNAL
#include "common.h"
#include "bpf/bpf.h"
#include "bpf/dirty.h"
#include "dirty.skel.h"

#define BPF_FS_MAGIC_ 0xcafe4a11
#define TRACEFS_MAGIC_ 0x74726163
#define HEADROOM_DEFAULT (64 * GIB)
#define STALE_DEFAULT_MS 30000

/* Which disks a program serves, and what its absence means. */
enum prog_role {
	ROLE_FILE_CORE, /* without it files cannot be tracked */
	ROLE_FILE, /* a path to files: if it exists but fails, files always rescan */
	ROLE_DIO, /* completion of O_DIRECT on iomap file systems */
	ROLE_EXT4, /* truncation seen by ext4 */
	ROLE_BDEV_CORE, /* without it block devices cannot be tracked */
};

/*
 * When a program is attached: each group with the first disk that needs it
 * (a program costs every event of its kind on the host, tracked or not, so
 * a tracker of block devices runs no syscall or file system hook but the
 * self-probe's, and one of files no block completion hook).  All are
 * detached with the last disk.
 */
enum prog_group {
	GRP_PROBE = 1 << 0, /* the self-probe's hook: every kind of disk */
	GRP_FILE = 1 << 1, /* files: write syscalls, size changes, mappings, io_uring, iomap */
	GRP_RQ = 1 << 2, /* request-based block devices */
	GRP_BIO = 1 << 3, /* bio-based block devices */
};

/*
 * Syscall exits come either from one tp_btf/sys_exit program (cheaper per
 * tracked write: see dirty_sys_exit) or, where the kernel lacks that
 * tracepoint or the program fails to load, from one syscalls:sys_exit_*
 * program each.
 */
enum prog_exit {
	EXIT_ANY, /* not a syscall exit */
	EXIT_RAW, /* loaded when the raw sys_exit program is used */
	EXIT_EVENT, /* loaded when it is not */
};

static const struct prog_desc {
	const char *name; /* program in dirty.bpf.c */
	const char *event; /* "cat/event" of a tracepoint, or a tp_btf name */
	bool btf;
	enum prog_role role;
	enum prog_group group;
	enum prog_exit exit;
} prog_descs[] = {
	{ "dirty_sys_exit", "sys_exit", true, ROLE_FILE_CORE, GRP_PROBE, EXIT_RAW },
	{ "dirty_pwrite64_exit", "syscalls/sys_exit_pwrite64", false, ROLE_FILE_CORE, GRP_PROBE, EXIT_EVENT },
	{ "dirty_pwritev_exit", "syscalls/sys_exit_pwritev", false, ROLE_FILE_CORE, GRP_FILE, EXIT_EVENT },
	{ "dirty_write_enter", "syscalls/sys_enter_write", false, ROLE_FILE_CORE, GRP_FILE },
	{ "dirty_write_exit", "syscalls/sys_exit_write", false, ROLE_FILE_CORE, GRP_FILE, EXIT_EVENT },
	{ "dirty_writev_enter", "syscalls/sys_enter_writev", false, ROLE_FILE_CORE, GRP_FILE },
	{ "dirty_writev_exit", "syscalls/sys_exit_writev", false, ROLE_FILE_CORE, GRP_FILE, EXIT_EVENT },
	{ "dirty_pwritev2_enter", "syscalls/sys_enter_pwritev2", false, ROLE_FILE, GRP_FILE },
	{ "dirty_pwritev2_exit", "syscalls/sys_exit_pwritev2", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_sendfile_enter", "syscalls/sys_enter_sendfile64", false, ROLE_FILE, GRP_FILE },
	{ "dirty_sendfile_exit", "syscalls/sys_exit_sendfile64", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_cfr_enter", "syscalls/sys_enter_copy_file_range", false, ROLE_FILE, GRP_FILE },
	{ "dirty_cfr_exit", "syscalls/sys_exit_copy_file_range", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_splice_enter", "syscalls/sys_enter_splice", false, ROLE_FILE, GRP_FILE },
	{ "dirty_splice_exit", "syscalls/sys_exit_splice", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_fallocate_exit", "syscalls/sys_exit_fallocate", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_ftruncate_enter", "syscalls/sys_enter_ftruncate", false, ROLE_FILE, GRP_FILE },
	{ "dirty_ftruncate_exit", "syscalls/sys_exit_ftruncate", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_truncate_exit", "syscalls/sys_exit_truncate", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_open_exit", "syscalls/sys_exit_open", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_openat_exit", "syscalls/sys_exit_openat", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_openat2_exit", "syscalls/sys_exit_openat2", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_creat_exit", "syscalls/sys_exit_creat", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_ioctl_exit", "syscalls/sys_exit_ioctl", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_mmap_enter", "syscalls/sys_enter_mmap", false, ROLE_FILE, GRP_FILE },
	{ "dirty_io_submit_exit", "syscalls/sys_exit_io_submit", false, ROLE_FILE, GRP_FILE, EXIT_EVENT },
	{ "dirty_uring_submit", "io_uring_submit_req", true, ROLE_FILE, GRP_FILE },
	{ "dirty_uring_complete", "io_uring_complete", true, ROLE_FILE, GRP_FILE },
	{ "dirty_uring_overflow", "io_uring_cqe_overflow", true, ROLE_FILE, GRP_FILE },
	{ "dirty_dio_begin", "iomap_dio_rw_begin", true, ROLE_DIO, GRP_FILE },
	{ "dirty_dio_complete", "iomap_dio_complete", true, ROLE_DIO, GRP_FILE },
	{ "dirty_ext4_truncate", "ext4_truncate_enter", true, ROLE_EXT4, GRP_FILE },
	{ "dirty_rq_complete", "block_rq_complete", true, ROLE_BDEV_CORE, GRP_RQ },
	{ "dirty_bio_queue", "block_bio_queue", true, ROLE_BDEV_CORE, GRP_BIO },
	{ "dirty_bio_complete", "block_bio_complete", true, ROLE_BDEV_CORE, GRP_BIO },
};

_Static_assert(ARRAY_SIZE(prog_descs) <= TRACKER_MAX_PROGS, "TRACKER_MAX_PROGS");

/* ---- libbpf glue -------------------------------------------------------- */

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char buf[1024];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/*
	 * libbpf's netlink calls print the kernel's extack at WARN, also for
	 * what a caller probes for (no clsact yet, no filter yet); the caller
	 * reports a real failure itself, with its errno and the object.
	 */
	if (level == LIBBPF_WARN && strncmp(buf, "Kernel error message:", 21))
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

/* ---- slots of the shared disk table ---------------------------------------- */

static uint64_t owner_word(uint32_t tgid, uint32_t start)
{
	struct dirty_disk d = { .owner_tgid = tgid, .owner_start = start };
	uint64_t w;

	memcpy(&w, &d, sizeof(w));
	return w;
}

/* Claim a free (or dead owner's) slot; -ENOSPC when all are taken. */
int dirty_slot_claim(struct tracker *t, uint32_t *slot)
{
	uint64_t mine = owner_word(t->self_tgid, t->self_start);
	uint32_t i;

	for (i = 0; i < DIRTY_MAX_DISKS; i++) {
		struct dirty_disk *e = &t->table[i];
		uint64_t *w = (uint64_t *)e, cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);
		uint32_t tgid = e->owner_tgid, start = e->owner_start;

		if (cur == mine)
			continue; /* one of ours */
		if (cur && dirty_host_alive(tgid, start))
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

void dirty_slot_release(struct tracker *t, uint32_t slot)
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
		    dirty_host_alive(t->table[i].owner_tgid, t->table[i].owner_start))
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
			if (tgid && dirty_host_alive(tgid, start)) {
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

/* Whether @pd is one of the set this tracker uses (the other exits are not). */
static bool prog_used(const struct tracker *t, const struct prog_desc *pd)
{
	return pd->exit == EXIT_ANY || (pd->exit == EXIT_RAW) == t->raw_exit;
}

static void set_autoload(struct tracker *t, bool (*keep)(const struct prog_desc *),
			 const struct btf *vmlinux)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(prog_descs); i++) {
		const struct prog_desc *pd = &prog_descs[i];
		struct bpf_program *p = bpf_object__find_program_by_name(t->skel->obj, pd->name);
		bool on = prog_used(t, pd) && event_exists(pd, vmlinux) && (!keep || keep(pd));

		if (!prog_used(t, pd)) {
			if (p)
				bpf_program__set_autoload(p, false);
			continue;
		}

		if (p)
			bpf_program__set_autoload(p, on);
		if (!on)
			log_debug(LOG_SUB_BPF, "%s: not loaded (%s)", pd->name,
				  event_exists(pd, vmlinux) ? "falling back" : "no such event");
	}
}

/* The raw sys_exit program knows where this architecture keeps the syscall number. */
static bool raw_exit_arch(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
	return true;
#else
	return false;
#endif
}

/* Syscall numbers for dirty_sys_exit (not in BTF); -1 where there is none. */
static void syscall_numbers_set(struct tracker *t)
{
	struct dirty_bpf__rodata *ro = t->skel->rodata;

	ro->nr_pwrite64 = SYS_pwrite64;
	ro->nr_pwritev = SYS_pwritev;
	ro->nr_pwritev2 = SYS_pwritev2;
	ro->nr_write = SYS_write;
	ro->nr_writev = SYS_writev;
	ro->nr_sendfile = SYS_sendfile;
	ro->nr_copy_file_range = SYS_copy_file_range;
	ro->nr_splice = SYS_splice;
	ro->nr_fallocate = SYS_fallocate;
	ro->nr_ftruncate = SYS_ftruncate;
	ro->nr_truncate = SYS_truncate;
	ro->nr_openat = SYS_openat;
	ro->nr_openat2 = SYS_openat2;
	ro->nr_ioctl = SYS_ioctl;
	ro->nr_io_submit = SYS_io_submit;
#ifdef SYS_open
	ro->nr_open = SYS_open;
#endif
#ifdef SYS_creat
	ro->nr_creat = SYS_creat;
#endif
}

static bool keep_core(const struct prog_desc *pd)
{
	return pd->role == ROLE_FILE_CORE || pd->role == ROLE_BDEV_CORE;
}

/*
 * Attach what loaded of @groups (or, with !attach, only see what would be
 * there); decide what each kind of disk can rely on.  A program of a group
 * not attached yet counts as there if it loaded.
 */
static void attach_groups(struct tracker *t, unsigned int groups, bool attach)
{
	bool file_ok = true, bdev_ok = true, dio = true, ext4 = true, extra_gap = false;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(prog_descs); i++) {
		const struct prog_desc *pd = &prog_descs[i];
		struct bpf_program *p = bpf_object__find_program_by_name(t->skel->obj, pd->name);
		bool ok = p && bpf_program__autoload(p);

		if (!prog_used(t, pd))
			continue;
		if (ok && attach && (groups & pd->group) && !t->links[i]) {
			t->links[i] = bpf_program__attach(p);
			if (!t->links[i])
				log_warn("cannot attach %s to %s: %s", pd->name, pd->event,
					 strerror(errno));
		}
		if (ok && (t->attached & pd->group || (attach && (groups & pd->group))))
			ok = t->links[i] != NULL;
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
			if (!ok && p && (bpf_program__autoload(p) || t->extras_dropped))
				extra_gap = true;
			break;
		}
	}
	if (attach)
		t->attached |= groups;
	t->have_file = file_ok;
	t->have_bdev = bdev_ok;
	t->have_dio = dio;
	t->have_ext4 = ext4;
	t->file_always = extra_gap ? DIRTY_RESCAN_UNCOVERED : 0;
	if (extra_gap && attach && (groups & GRP_FILE))
		log_warn("some write paths to files cannot be followed on this kernel: "
			 "every drain of a file disk will ask for a full rescan");
}

/*
 * The programs are attached only while a disk is tracked, and only those
 * its kind needs: an idle tracker (ferryd between migrations) costs the
 * host's writes nothing.  Attaching takes a fraction of a second;
 * detaching about a second (the kernel waits for tracepoint users to
 * leave).  Both with t->lock held.
 */
int dirty_attach(struct tracker *t, enum dirty_kind kind, bool bio_based)
{
	unsigned int want = GRP_PROBE;

	if (kind == DIRTY_KIND_FILE)
		want |= GRP_FILE;
	else
		want |= bio_based ? GRP_BIO : GRP_RQ;
	if ((t->attached & want) == want)
		return 0;
	attach_groups(t, want & ~t->attached, true);
	if (!t->have_file && !t->have_bdev) {
		dirty_detach(t);
		log_err("neither write syscalls nor block I/O can be traced on this kernel");
		return -EOPNOTSUPP;
	}
	return 0;
}

void dirty_detach(struct tracker *t)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(t->links); i++) {
		bpf_link__destroy(t->links[i]);
		t->links[i] = NULL;
	}
	t->attached = 0;
}

struct tracker *tracker_new(const struct tracker_opts *o)
{
	static pthread_once_t print_once = PTHREAD_ONCE_INIT;
	LIBBPF_OPTS(bpf_object_open_opts, open_opts);
	const char *pin = o && o->pin_dir ? o->pin_dir : TRACKER_PIN_DIR_DEFAULT;
	struct btf *vmlinux = NULL;
	struct tracker *t;
	bool dropped = false;
	static const struct prog_desc raw_exit_desc = { .event = "sys_exit", .btf = true };
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
	t->self_start = dirty_host_start_ticks(getpid());

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
	t->raw_exit = event_exists(&raw_exit_desc, vmlinux) && raw_exit_arch();
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
		syscall_numbers_set(t);
		set_autoload(t, dropped ? keep_core : NULL, vmlinux);
		ret = dirty_bpf__load(t->skel);
		if (!ret)
			break;
		dirty_bpf__destroy(t->skel);
		t->skel = NULL;
		if (t->raw_exit) {
			log_warn("loading the dirty-tracking programs with the raw sys_exit "
				 "tracepoint failed (%s); retrying with one per syscall",
				 strerror(-ret));
			t->raw_exit = false;
			continue;
		}
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
	t->extras_dropped = dropped;
	attach_groups(t, 0, false); /* what will be there: attached with the first disk */
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
	int saved = errno;

	if (!t)
		return;
	while (t->disks)
		tracker_stop(t->disks);
	dirty_detach(t);
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

/* ---- used by dirty_disk.c ---------------------------------------------- */

/*
 * Ask the programs themselves which key they will see for @fd: a pwrite64()
 * of nothing by this thread makes the exit hook record the key and count a
 * hit.  This also proves the syscall hooks fire.  Called with t->lock held.
 */
int dirty_probe_fd(struct tracker *t, int fd, struct dirty_key *key)
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
