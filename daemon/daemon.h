/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * daemon.h - ferryd's internal interfaces, grouped by source file.
 *
 * ferryd runs one host's share of ferry's VM lifecycle.  The host that owns a
 * VM when an operation starts is the operation's *source* and coordinator; the
 * target host is its *destination*.  Both journal every step (fsync'd) before
 * its side effect; the source decides, the destination's handlers are
 * idempotent, so any request can be repeated after either side restarts.
 * See docs/state-machine.md.
 */
#ifndef FERRY_DAEMON_H
#define FERRY_DAEMON_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "common.h"
#include "net/net.h"

#define FERRYD_DEFAULT_CONFIG "/etc/ferry/ferryd.conf"
#define FERRYD_DEFAULT_SOCKET "/run/ferry/ferryd.sock"
#define FERRYD_DEFAULT_PORT 4710
#define FERRYD_MAX_PEERS 32
#define FERRYD_MAX_DISKS 16
#define FERRY_NAME_MAX 64
#define FERRY_ID_LEN 16 /* "m-" + 12 hex + NUL, padded */

/* config.c */
struct peer_conf {
	char name[FERRY_NAME_MAX];
	struct net_addr addr;
};

struct ferryd_conf {
	char host[FERRY_NAME_MAX];      /* this host's name in the cluster */
	struct net_addr listen;         /* peer protocol */
	struct net_addr mover_listen;   /* embedded mover receiver */
	struct peer_conf peers[FERRYD_MAX_PEERS];
	int npeers;
	char libvirt_uri[256];
	char state_dir[PATH_MAX];       /* journal: state_dir/migrations/ */
	char control_socket[PATH_MAX];
	char cluster_key_file[PATH_MAX];
	char instances_dir[PATH_MAX];   /* Nova-style instance dirs live here */
	char lvm_vg[FERRY_NAME_MAX];    /* volume group for LVM-backed disks */
	char pin_dir[PATH_MAX];         /* BPF pins (metrics, tracker) */
	bool allow_same_host;           /* allow resize onto the same host */
	int resize_confirm_window_s;    /* auto-confirm after this (0: never) */
	int shutdown_timeout_s;         /* per clean-shutdown attempt */
	int shutdown_retries;           /* clean attempts before destroy */
	int precopy_max_rounds;         /* rounds while the VM runs */
	uint64_t precopy_target_bytes;  /* stop pre-copy below this delta */
	int precopy_max_s;              /* time bound of the warm phase */
	int peer_retry_s;               /* keep retrying a restarting peer */
	uint32_t track_granularity;     /* dirty-tracking block, bytes */
	int mover_connections;          /* 0: mover's default */
	char mover_compress[32];        /* auto|none|zstd[:N] */
	uint64_t mover_bwlimit_bps;     /* 0: none */
	uint64_t reserved_host_memory_mib; /* kept free on a destination */
};

void conf_defaults(struct ferryd_conf *c);
/* Parse key = value lines; errors name file:line.  0 or -errno. */
int conf_load(struct ferryd_conf *c, const char *path);
void conf_dump(const struct ferryd_conf *c);
const struct peer_conf *conf_peer(const struct ferryd_conf *c, const char *name);

/* migration.c: the record of one cold migration or resize. */
enum mig_type {
	MIG_TYPE_MIGRATION = 0, /* same flavor ("cold migrate") */
	MIG_TYPE_RESIZE,
};

enum mig_role {
	MIG_ROLE_SOURCE = 0,
	MIG_ROLE_DEST,
};

/*
 * Steps, in flow order.  The journal records the step about to be taken;
 * each maps to one of Nova's migration statuses (mig_status_name()).
 */
enum mig_step {
	MIG_STEP_NEW = 0,        /* pre-migrating: record created */
	MIG_STEP_PREP,           /* pre-migrating: destination prechecks, dirs */
	MIG_STEP_PRECOPY,        /* migrating: warm copy while the VM runs */
	MIG_STEP_POWEROFF,       /* migrating: clean shutdown, then destroy */
	MIG_STEP_FINAL_COPY,     /* migrating: last delta, VM off */
	MIG_STEP_KEEP_SOURCE,    /* post-migrating: source dir -> <dir>_resize */
	MIG_STEP_FINISHING,      /* post-migrating: destination defines, starts */
	MIG_STEP_FINISHED,       /* finished: waiting for confirm or revert */
	MIG_STEP_CONFIRMING,     /* confirming: source copy removed */
	MIG_STEP_CONFIRMED,      /* confirmed (terminal) */
	MIG_STEP_REVERTING,      /* reverting: destination copy destroyed */
	MIG_STEP_REVERT_SOURCE,  /* reverting: source restored */
	MIG_STEP_REVERTED,       /* reverted (terminal) */
	MIG_STEP_ROLLBACK,       /* error: undoing a failed flow */
	MIG_STEP_FAILED,         /* error (terminal): rolled back */
	MIG_STEP__MAX,
};

enum mig_disk_kind {
	MIG_DISK_DATA = 0,
	MIG_DISK_SWAP, /* recreated on the destination, never copied */
};

struct flavor {
	int vcpus;
	uint64_t memory_mib;
	uint64_t root_disk_bytes; /* virtual size of the first data disk */
};

struct mig_disk {
	char target[16];                /* vda */
	enum mig_disk_kind kind;
	char backend[8];                /* "file" | "lvm" (struct disk_ops) */
	char format[8];                 /* raw | qcow2 */
	char src_path[PATH_MAX];        /* on the source */
	char dst_path[PATH_MAX];        /* on the destination, once finished */
	char stage_path[PATH_MAX];      /* where copies land before, if not there */
	char backing[PATH_MAX];         /* qcow2 backing file, or "" */
	uint64_t size_bytes;            /* container size: file or device */
	uint64_t alloc_bytes;           /* allocated on the source (sparse files) */
	char backing_sha256[65];        /* of the backing file, if any */
	uint64_t virtual_bytes;         /* guest-visible size */
	uint64_t new_virtual_bytes;     /* after resize (== virtual: no change) */
	char xfer_id[40];               /* mover transfer id of the current round */
	char src_sha256[65];            /* of the kept source copy, for revert */
};

struct mig_metrics {
	uint64_t t_created_ms;          /* wall clock, for display */
	uint64_t t_precopy_ms;
	uint64_t t_poweroff_ms;         /* shutdown requested */
	uint64_t t_off_ms;              /* the VM was seen off */
	uint64_t t_final_copy_ms;
	uint64_t t_finished_ms;
	uint64_t t_ended_ms;            /* confirmed, reverted or failed */
	uint64_t disk_total_bytes;      /* to copy, all rounds (grows per round) */
	uint64_t disk_processed_bytes;  /* copied so far, all rounds */
	uint64_t disk_remaining_bytes;  /* of the current round */
	uint64_t wire_bytes;            /* on the network, all rounds */
	uint64_t raw_bytes;             /* payload before compression */
	uint32_t precopy_rounds;
	uint64_t dirty_rate_bps;        /* last measured */
	uint64_t last_delta_bytes;      /* copied during downtime */
	uint64_t shutdown_ms;           /* shutdown request -> VM off */
	uint64_t downtime_ms;           /* VM off -> running on destination */
	uint32_t rescans;               /* disks copied whole after a tracker loss */
};

struct migration {
	char id[FERRY_ID_LEN];
	enum mig_type type;
	enum mig_role role;
	enum mig_step step;
	char vm[FERRY_NAME_MAX];
	char uuid[40];
	char src_host[FERRY_NAME_MAX];
	char dst_host[FERRY_NAME_MAX];
	bool was_running;               /* power state to restore */
	bool auto_confirm;              /* confirm as soon as finished */
	bool same_host;                 /* a resize onto the source host */
	char inst_dir[PATH_MAX];        /* source instance dir, "" if none */
	char dst_inst_dir[PATH_MAX];
	char stage_inst_dir[PATH_MAX];  /* same host: new disks until finished */
	char src_instances_dir[PATH_MAX]; /* the source's instances_dir */
	struct flavor old_flavor, new_flavor;
	struct mig_disk disks[FERRYD_MAX_DISKS];
	int ndisks;
	char *src_xml;                  /* source definition, for revert */
	char *dst_xml;                  /* what the destination defines */
	char error[512];                /* why it failed, or "" */
	struct mig_metrics m;
	uint64_t confirm_deadline_ms;   /* wall clock, 0: none */
	enum mig_step rollback_from;    /* step a rollback started from */
	/* Runtime only (not journaled). */
	bool busy;                      /* a thread is driving it */
};

const char *mig_step_name(enum mig_step s);
int mig_step_parse(const char *s, enum mig_step *out);
/* Nova's migration status for a step. */
const char *mig_status_name(enum mig_step s);
/* Nova's instance vm_state / task_state during a step. */
const char *mig_vm_state(const struct migration *m);
const char *mig_task_state(const struct migration *m);
bool mig_step_terminal(enum mig_step s);
const char *mig_type_name(enum mig_type t);

struct migration *mig_new(void);
void mig_free(struct migration *m);
struct json_object *mig_to_json(const struct migration *m, bool full);
/* Fill @m from JSON (journal or peer); -EINVAL naming the bad field. */
int mig_from_json(struct migration *m, struct json_object *o, char *err, size_t errlen);
int mig_id_generate(char *id, size_t len);

/* journal.c: every record is a file, replaced atomically and fsync'd. */
int journal_init(const char *state_dir);
int journal_save(const struct migration *m);
/* Load every record; calls @fn for each (takes ownership). */
int journal_load_all(int (*fn)(struct migration *m, void *ctx), void *ctx);
int journal_remove(const char *id, enum mig_role role);

/* virt.c: the only code that talks to libvirt. */
struct virt;
enum virt_power {
	VIRT_NOSTATE = 0,
	VIRT_RUNNING,
	VIRT_PAUSED,
	VIRT_SHUTOFF,
	VIRT_OTHER,
};

struct virt *virt_open(const char *uri);
void virt_close(struct virt *v);
/* -ENOENT when there is no such domain. */
int virt_domain_state(struct virt *v, const char *name, enum virt_power *state);
/* Inactive, migratable XML; malloc'd.  NULL + errno. */
char *virt_domain_xml(struct virt *v, const char *name);
int virt_domain_define(struct virt *v, const char *xml);
int virt_domain_start(struct virt *v, const char *name);
/* Clean shutdown with timeout and retries, then destroy; *forced says which. */
int virt_domain_poweroff(struct virt *v, const char *name, int timeout_s, int retries,
			 bool *forced);
int virt_domain_destroy(struct virt *v, const char *name);
/* Undefine a shut-off domain; -ENOENT if not defined. */
int virt_domain_undefine(struct virt *v, const char *name);
struct virt_domain_info {
	char name[FERRY_NAME_MAX];
	char uuid[40];
	enum virt_power state;
	int vcpus;
	uint64_t memory_mib;
};
int virt_domain_list(struct virt *v, struct virt_domain_info **out, int *n);
int virt_node_free_memory_mib(struct virt *v, uint64_t *mib);
const char *virt_power_name(enum virt_power p);

/* domxml.c: reading and adapting domain XML (libxml2). */
struct domxml_disk {
	char target[16];
	char type[8];                   /* file | block */
	char format[8];                 /* raw | qcow2 */
	char path[PATH_MAX];
	bool readonly;
	bool swap;                      /* per ferry's metadata */
};

struct domxml_info {
	char name[FERRY_NAME_MAX];
	char uuid[40];
	int vcpus;
	uint64_t memory_mib;
	struct domxml_disk disks[FERRYD_MAX_DISKS];
	int ndisks;
};

int domxml_parse(const char *xml, struct domxml_info *info);
/*
 * The destination's definition: @xml with the new flavor and each disk's
 * source switched to its destination path.  malloc'd; NULL + errno.
 */
char *domxml_adapt(const char *xml, const struct flavor *fl, const struct mig_disk *disks,
		   int ndisks);

/* disk.c + disk_file.c + disk_lvm.c: storage backends. */
struct disk_ops {
	const char *name;
	/* Container size in bytes (file size or device size). */
	int (*size)(const char *path, uint64_t *bytes);
	/* Create an empty disk able to hold @bytes at @path (sparse). */
	int (*create)(const struct ferryd_conf *c, const char *path, uint64_t bytes);
	/* Grow the guest-visible size (raw: truncate, qcow2: qemu-img, LV). */
	int (*grow)(const char *path, const char *format, uint64_t new_virtual_bytes);
	/* Rename aside for revert and back; idempotent. */
	int (*keep)(const char *path);
	/* Rename @from to @to (same backend and volume group); idempotent. */
	int (*rename)(const char *from, const char *to);
	int (*restore)(const char *path);
	/* Remove (the kept copy with @kept); -ENOENT is success. */
	int (*remove)(const char *path, bool kept);
	bool (*exists)(const char *path);
};

extern const struct disk_ops disk_file_ops;
extern const struct disk_ops disk_lvm_ops;
const struct disk_ops *disk_ops_find(const char *name);
/* Path of the copy kept aside for revert. */
void disk_kept_path(const char *path, char *out, size_t len);
/* Virtual size of an image (qemu-img info for qcow2). */
int disk_virtual_size(const char *path, const char *format, uint64_t *bytes);
/* qcow2 backing file of @path, "" if none. */
int disk_backing_file(const char *path, char *out, size_t len);
/* SHA-256 of a whole file or device, hex. */
int disk_sha256(const char *path, char out[65]);
/* Run a program (argv, no shell); captures stderr into err.  0 or -EIO. */
int run_cmd(char *const argv[], char *err, size_t errlen);
/* The same, also capturing stdout into out. */
int run_cmd_out(char *const argv[], char *out, size_t outlen, char *err, size_t errlen);
/* Instance dirs: rename dir <-> dir_resize (idempotent), remove trees. */
int inst_dir_keep(const char *dir);
int inst_dir_restore(const char *dir);
int inst_dir_remove(const char *dir);

/* auth.c: cluster-key challenge-response and message MACs. */
#define AUTH_KEY_LEN 32
#define AUTH_NONCE_LEN 32
#define AUTH_MAC_LEN 32

int auth_key_load(const char *path, uint8_t key[AUTH_KEY_LEN]);
void auth_mac(const uint8_t key[AUTH_KEY_LEN], const void *a, size_t alen, const void *b,
	      size_t blen, uint8_t out[AUTH_MAC_LEN]);
void auth_session_key(const uint8_t key[AUTH_KEY_LEN], const uint8_t cn[AUTH_NONCE_LEN],
		      const uint8_t sn[AUTH_NONCE_LEN], uint8_t out[AUTH_KEY_LEN]);

/* peer.c: authenticated connections between ferryd instances. */
struct peer_conn;
/* Connect and authenticate (mutual); NULL + errno, message in err. */
struct peer_conn *peer_connect(const struct peer_conf *p, const char *self,
			       const uint8_t key[AUTH_KEY_LEN], int timeout_ms, char *err,
			       size_t errlen);
/* Server side of the handshake on an accepted socket. */
struct peer_conn *peer_accept(int fd, const char *self, const uint8_t key[AUTH_KEY_LEN],
			      char *err, size_t errlen);
void peer_close(struct peer_conn *pc);
const char *peer_name(const struct peer_conn *pc);
/* One MAC'd JSON message each way. */
int peer_send(struct peer_conn *pc, struct json_object *msg);
int peer_recv(struct peer_conn *pc, struct json_object **msg);
/*
 * Request/response to a named peer on a fresh connection: returns the
 * reply object (caller puts) or NULL with errno and a message in err.  A
 * reply {"ok": false, "error": ...} gives NULL, errno from "errno".
 */
struct json_object *peer_call(const char *host, struct json_object *req, int timeout_ms,
			      char *err, size_t errlen);

/* rpc.c: request dispatch shared by the control socket and peers. */
enum rpc_origin {
	RPC_LOCAL = 0, /* root on this host, through the control socket */
	RPC_PEER,      /* an authenticated ferryd */
};

/* Handle one request; always returns a reply object (ok or error). */
struct json_object *rpc_handle(struct json_object *req, enum rpc_origin origin,
			       const char *peer);
struct json_object *rpc_error(int err, const char *fmt, ...) __printf(2, 3);
struct json_object *rpc_ok(void);

/* ferryd.c: process-wide state. */
struct ferryd {
	struct ferryd_conf conf;
	uint8_t key[AUTH_KEY_LEN];
	struct virt *virt;
	pthread_mutex_t lock;           /* migrations, xfers */
	struct migration **migs;
	int nmigs;
	volatile int stopping;
	const char *crash_at;           /* FERRY_TEST_CRASH: role:step */
	struct mover_server *mover;
	struct tracker *tracker;
	struct metrics *metrics;
};

extern struct ferryd *ferryd;

/* migstore.c: the in-memory set of migrations (under ferryd->lock). */
void migstore_add(struct migration *m);
/* By id; the source's record when this host holds both (same-host resize). */
struct migration *migstore_find(const char *id);
struct migration *migstore_find_role(const char *id, enum mig_role role);
/* Active (non-terminal) migration of @vm on this host, or NULL. */
struct migration *migstore_active_for_vm(const char *vm);
/* Most recent migration of @vm (any state), or NULL. */
struct migration *migstore_latest_for_vm(const char *vm);
/* Journal @m at @step (fsync'd) and publish metrics; 0 or -errno. */
int mig_set_step(struct migration *m, enum mig_step step);
int mig_save(struct migration *m);
/* Test hook: die with SIGKILL if FERRY_TEST_CRASH names this point. */
void mig_crash_point(const struct migration *m, const char *point);

/* cold.c: cold migration and resize, source (coordinator) side. */
struct cold_request {
	enum mig_type type;
	char vm[FERRY_NAME_MAX];
	char to[FERRY_NAME_MAX];        /* "" for resize: pick */
	struct flavor flavor;           /* 0 fields: keep */
	bool confirm;                   /* confirm when finished */
};

/* Validate, journal and start the operation in a thread. */
int cold_start(const struct cold_request *r, char *id, char *err, size_t errlen);
int cold_confirm(const char *id, char *err, size_t errlen);
int cold_revert(const char *id, char *err, size_t errlen);
/* Resume an unfinished source-side operation (reconcile). */
void cold_resume(struct migration *m);

/* cold.c: shared by coldprep.c and coldcopy.c */
bool cold_transient(int err);
void cold_set_error(struct migration *m, const char *msg);
struct json_object *cold_req(const char *op, const struct migration *m);
/* A request to the destination, retried while it restarts; puts @req. */
struct json_object *cold_call(struct migration *m, struct json_object *req, bool forever,
			      char *err, size_t errlen);
const char *cold_jstr(struct json_object *o, const char *k);

/* coldprep.c */
int cold_gather(struct migration *m, const struct cold_request *r, char *err, size_t errlen);
int cold_pick_dest(const struct cold_request *r, struct migration *m, char *err,
		   size_t errlen);
/* Destination prechecks and preparation, then the backing files it lacks. */
int cold_prep(struct migration *m, char *err, size_t errlen);

/* coldcopy.c */
struct cold_disk_state {
	struct track_disk *track;
	uint8_t token[32];
	uint16_t port;
	char dest_path[PATH_MAX];       /* as the destination registered it */
	unsigned int round;             /* copy rounds, for transfer ids */
};

/* Tracking on, round 0 (whole disks), dirty rounds until the delta is small. */
int cold_precopy(struct migration *m, struct cold_disk_state *st, char *err, size_t errlen);
/* One round: whole disks, or the ranges drained since the last round. */
int cold_round(struct migration *m, struct cold_disk_state *st, bool whole, uint64_t *copied,
	       char *err, size_t errlen);
void cold_tracking_stop(struct cold_disk_state *st, int n);

/* deststore.c: the destination's storage (used by coldpeer.c) */
/* Where a backing file lives here: same place relative to instances_dir. */
void dest_backing_path(const char *src_instances, const char *backing, char *out, size_t len);
/* Choose destination paths for every disk; -EEXIST if any is taken. */
int dest_paths(struct migration *m, const char *src_instances, char *err, size_t errlen);
/* Capacity and sanity, before anything is created. */
int dest_precheck(struct migration *m, char *err, size_t errlen);
/* Backing files: add the indexes of those missing here to @need. */
int dest_backings(struct migration *m, const char *src_instances, struct json_object *need,
		  char *err, size_t errlen);
/* The instance dir and empty disks (sparse, sized); idempotent. */
int dest_create(struct migration *m, char *err, size_t errlen);
/* Where copies go until finished: the staging path, or the final one. */
const char *dest_copy_path(const struct mig_disk *d);
/* Same host: move the staged disks into place (the source is kept aside). */
int dest_unstage(struct migration *m, char *err, size_t errlen);
/*
 * Remove everything this record created here; idempotent.  @defined: it
 * got as far as defining the domain (a revert), else it never did (an
 * abort, which on the same host must not touch the source's domain).
 */
int dest_cleanup(struct migration *m, bool defined);

/* coldpeer.c: the destination's handlers (idempotent). */
struct json_object *dest_prep(struct json_object *req);
struct json_object *dest_xfer_open(struct json_object *req);
struct json_object *dest_finish(struct json_object *req);
struct json_object *dest_confirm(struct json_object *req);
struct json_object *dest_revert(struct json_object *req);
struct json_object *dest_abort(struct json_object *req);
struct json_object *dest_status(struct json_object *req);
/* Resume an unfinished destination-side record (reconcile). */
void dest_resume(struct migration *m);

/* reconcile.c */
int reconcile_start(void);

/* xfer.c: the embedded mover receiver and the sender, for whole disks and
 * dirty ranges. */
struct xfer_progress {
	uint64_t done_bytes;
	uint64_t total_bytes;
	uint64_t wire_bytes;
};

int xfer_server_start(void);
void xfer_server_stop(void);
/* Destination: allow a transfer into @path of at most @size bytes; returns the token. */
int xfer_register(const char *mig_id, const char *xfer_id, const char *path, uint64_t size,
		  bool is_block, uint8_t token[32]);
void xfer_unregister_mig(const char *mig_id);
/*
 * Source: copy @src (whole when nranges < 0, else the ranges) into
 * @dest_path through the transfer @token at the destination's mover port.
 * Progress goes into @m's metrics.
 */
int xfer_send(struct migration *m, const char *src, const char *dest_path, const char *xfer_id,
	      const char *dst_host, uint16_t port, const uint8_t token[32],
	      const struct ferry_range *ranges, long nranges, char *err, size_t errlen);

/* track.c: dirty tracking of a migrating disk (bpf/ tracker). */
struct track_disk;
int track_init(void);
void track_fini(void);
int track_start(const char *path, struct track_disk **out);
/*
 * Dirty ranges since the previous drain (malloc'd); *rescan when tracking
 * lost writes and the whole disk must be copied.
 */
int track_drain(struct track_disk *d, struct ferry_range **ranges, long *n, uint64_t *bytes,
		bool *rescan, uint32_t *reasons);
void track_stop(struct track_disk *d);

/* metrics.c: migration metrics in a pinned BPF map, for bpftool. */
int metrics_init(const char *pin_dir);
void metrics_publish(const struct migration *m);
void metrics_fini(void);

#endif /* FERRY_DAEMON_H */
