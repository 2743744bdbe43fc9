/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * engine.h - ferryd's flow engine: the operation record, the flows that
 * register with the engine, and the engine that runs them (journal, store,
 * reconcile, metrics).  See docs/state-machine.md.
 *
 * An operation (cold migration, resize, live migration, evacuation) is a
 * *flow*: a table of steps, each with the side effect it takes (run), the
 * way back (undo) and the Nova states it shows, plus a point of no return.
 * The engine journals each step (fsync'd) before its side effect; on a
 * failure before the point of no return it walks the undos back, from it
 * on it only rolls forward.  One host *coordinates* each operation (it
 * decides); the others are participants whose handlers are the flow's
 * peer requests, idempotent, and who ask the coordinator after a restart.
 */
#ifndef FERRY_DAEMON_ENGINE_H
#define FERRY_DAEMON_ENGINE_H

#include <stdatomic.h>

#include <linux/types.h>

#include "daemon/daemon.h"
#include "bpf/metrics.h"

/* record.c: the record of one operation. */
#define MIG_FORMAT 2 /* of the journaled record; none at all: 1 (cold only) */

enum mig_type {
	MIG_TYPE_MIGRATION = 0, /* same flavor ("cold migrate") */
	MIG_TYPE_RESIZE,
	MIG_TYPE_LIVE,     /* live migration */
	MIG_TYPE_EVACUATE, /* rebuild on another host: the owner is dead */
	MIG_TYPE__MAX,
};

/* Where this host stands in the operation; who decides is separate. */
enum mig_role {
	MIG_ROLE_SOURCE = 0,
	MIG_ROLE_DEST,
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
	char backend[8];                /* struct disk_ops name (storage.h) */
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
	bool in_inst_dir;               /* moves with the instance dir, not alone */
};

/* The counters of bpf/metrics.h, one field each (FERRY_MIG_COUNTERS). */
struct mig_metrics {
#define MIG_METRIC_FIELD(type, name, comment) uint64_t name;
	FERRY_MIG_COUNTERS(MIG_METRIC_FIELD)
#undef MIG_METRIC_FIELD
};

/* A live migration's parameters (flows/live.c). */
/* A VM's NIC at a live migration's cut-over (flows/live_net.c). */
#define MIG_MAX_VIFS 8
struct mig_vif {
	char mac[18];                   /* the guest's */
	char bridge[16];
	char src_tap[16], dst_tap[16];
	bool guest_seen;                /* a guest frame on the destination */
	bool announce_seen;             /* a RARP or GARP there before announce-self */
	bool announce_self;             /* ferry sent QMP announce-self */
	bool fdb_fixed;                 /* ferry moved the MAC to the new port */
	uint64_t blackout_us;           /* dest's first guest frame - source's last */
	uint64_t announce_lag_us;       /* dest's first announce - source's last frame */
	uint64_t stranded_packets;      /* delivered to the source after its last frame */
	uint64_t drops;                 /* on either tap, while watched */
	uint64_t rarps, garps;          /* on the destination */
	uint64_t attach_lag_us;         /* dest: link event -> programs on */
	uint32_t reattaches;            /* dest: filters put back after removal */
};

struct mig_live {
	bool block;                     /* ferry copies the disks (else shared) */
	bool disk_over_commit;          /* count allocated, not virtual, bytes */
	bool force_complete;            /* asked for: the controller acts */
	uint32_t max_downtime_ms;       /* the budget */
	uint64_t bandwidth_bps;         /* RAM and disks, 0: unlimited */
	char reason[256];               /* the controller's last verdict */
	struct mig_vif vifs[MIG_MAX_VIFS];
	int nvifs;
	uint64_t t_resume_tai_ns;       /* dest, runtime only: when it resumed */
	int fdb_fixed[MIG_MAX_VIFS];    /* dest, runtime only: taps (ifindex) whose */
	int nfdb_fixed;                 /* FDB entry ferry made at the resume */
};

/* An evacuation's parameters and decisions (flows/evac.c). */
struct mig_evac {
	int target;                     /* --target-state: 0 as recorded, 1 active, 2 stopped */
	bool ask_shared;                /* --on-shared-storage */
	bool start;                     /* decided: start it once rebuilt */
	bool shared;                    /* the disks are on shared storage */
	bool data_lost;                 /* disks made anew: their data is gone */
	int64_t record_rev;             /* the VM record's mod_revision, as checked */
	int64_t generation;             /* the one this evacuation writes */
	uint64_t owner_gone_ms;         /* wall clock: the owner's key seen gone */
	uint64_t lease_wait_ms;         /* start: waited for a disk lease held elsewhere */
	uint64_t start_ms;              /* start: its libvirt start(s), waits included */
};

struct flow;

struct migration {
	char id[FERRY_ID_LEN];
	const struct flow *flow;        /* NULL: a foreign record, never run */
	enum mig_type type;
	enum mig_role role;
	int step;                       /* index into flow->steps */
	bool undoing;                   /* walking the undos back from step */
	bool cancelled;                 /* an abort asked for the walk back */
	int undo_from;                  /* the step the walk back started at */
	bool coordinating;              /* this record decides (coordinator's) */
	char coordinator[FERRY_NAME_MAX];
	char vm[FERRY_NAME_MAX];
	char uuid[40];
	char src_host[FERRY_NAME_MAX];
	char dst_host[FERRY_NAME_MAX];
	bool was_running;               /* power state to restore */
	bool was_paused;                /* ... running, but paused */
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
	struct mig_live live;
	struct mig_evac evac;
	uint64_t confirm_deadline_ms;   /* wall clock, 0: none */
	/* A foreign record: why it is not run, and its JSON, kept as found. */
	char foreign[160];
	struct json_object *raw;

	/* Runtime only (not journaled). */
	pthread_mutex_t lock;           /* the fields above, never across I/O */
	bool busy;                      /* a thread is driving it */
	bool committed;                 /* the ponr's side effect happened */
	atomic_bool stop;               /* cancel or shutdown: stop copying now */
	uint64_t journal_seq;           /* last serialized (under lock) */
	uint64_t journal_done;          /* last renamed into place */
	void *priv;                     /* the flow's runtime state */
};

/* The lock is not part of the record's value: const records lock too. */
#define mig_lock(m) pthread_mutex_lock((pthread_mutex_t *)&(m)->lock)
#define mig_unlock(m) pthread_mutex_unlock((pthread_mutex_t *)&(m)->lock)

const char *mig_step_name(const struct migration *m);
/* Nova's migration status, vm_state and task_state (NULL shown as "-"). */
const char *mig_status_name(const struct migration *m);
const char *mig_vm_state(const struct migration *m);
const char *mig_task_state(const struct migration *m);
bool mig_terminal(const struct migration *m);
bool mig_at_rest(const struct migration *m);
const char *mig_type_name(enum mig_type t);
int mig_type_parse(const char *s, enum mig_type *out);

struct migration *mig_new(void);
void mig_free(struct migration *m);
struct json_object *mig_to_json(const struct migration *m, bool full);
/*
 * Fill @m from JSON (journal or peer); -EINVAL naming the bad field.  A
 * record of a flow or format this ferryd does not know is -ENOTSUP, with
 * the reason in @err (and in m->foreign).
 */
int mig_from_json(struct migration *m, struct json_object *o, char *err, size_t errlen);
int mig_id_generate(char *id, size_t len);
/* The counters as JSON fields of @o (one list: FERRY_MIG_COUNTERS). */
void mig_metrics_to_json(const struct mig_metrics *mm, struct json_object *o);
/* Read them back; the first bad field's name, or NULL. */
const char *mig_metrics_from_json(struct mig_metrics *mm, struct json_object *o);

/* flow.c: flows register here; a record names its flow. */
enum flow_resume {
	FLOW_RESUME_UNDO = 0, /* a restart here walks back (before the ponr) */
	FLOW_RESUME_RERUN,    /* run the step again (it is idempotent) */
	FLOW_RESUME_SETTLE,   /* the step's settle decides from what it finds */
};

#define FLOW_STEP_REST     (1u << 0) /* the flow waits here for an action */
#define FLOW_STEP_TERMINAL (1u << 1) /* the operation is over */
#define FLOW_STEP_SYNC     (1u << 2) /* runs in the requester's thread */

struct flow_step {
	const char *name;        /* journaled and shown: "precopy" */
	const char *status;      /* Nova migration status: "migrating" */
	const char *task_state;  /* Nova instance task_state, NULL: none */
	const char *vm_state;    /* NULL: the VM's power state (active/stopped) */
	/* The step's side effect; idempotent.  0, or -errno with @err set. */
	int (*run)(struct migration *m, char *err, size_t errlen);
	/* Take it back (after run, or a partial run); idempotent. */
	int (*undo)(struct migration *m, char *err, size_t errlen);
	enum flow_resume resume;
	unsigned int flags;
	/*
	 * FLOW_RESUME_SETTLE: after a restart, find out what the interrupted
	 * side effect left (it may have completed on its own) and return the
	 * step to run on from, or -1 to walk back.  Runs in a worker.
	 */
	int (*settle)(struct migration *m, char *err, size_t errlen);
};

/* An operator action from a rest step: "confirm", "revert". */
struct flow_action {
	const char *name;
	const char *past;        /* "confirmed", for messages */
	int from;                /* the rest step it leaves */
	int first;               /* its first step; runs to the next terminal */
};

struct rpc_ctx;
/* cluster.h: a request a flow (or the core) handles. */
struct rpc_cmd {
	const char *name;        /* "cold.prep" */
	unsigned int from;       /* RPC_FROM_LOCAL | RPC_FROM_PEER */
	struct json_object *(*fn)(const struct rpc_ctx *ctx, struct json_object *req);
};

struct flow {
	const char *name;        /* journaled: "cold" */
	unsigned int version;    /* of its steps and record fields */
	const struct flow_step *steps;
	int nsteps;
	int ponr;                /* first step that only rolls forward */
	int failed;              /* terminal after a walk back on failure */
	int cancelled;           /* terminal after a walk back on abort */
	const struct flow_action *actions;
	int nactions;
	const struct rpc_cmd *cmds;
	int ncmds;
	/* Record types it runs (the first is its default). */
	const enum mig_type *types;
	int ntypes;
	/* At a rest step: the action to take now (auto-confirm), or NULL. */
	const char *(*rest_action)(struct migration *m);
	/* A record this host does not coordinate: bring it to rest. */
	void (*participant_resume)(struct migration *m);
	/* Free m->priv (the worker is done with it). */
	void (*priv_free)(struct migration *m);
	/* A knob on a running operation ("force_complete"); -errno with @err. */
	int (*control)(struct migration *m, const char *what, char *err, size_t errlen);
	/* A terminal record: the host the VM is defined on now (src or dst). */
	const char *(*vm_host)(const struct migration *m);
};

/* Register at start (flows/flows.c lists them); -EEXIST on a duplicate name. */
int flow_register(const struct flow *f);
const struct flow *flow_find(const char *name);
const struct flow *flow_for_type(enum mig_type t);
int flow_step_find(const struct flow *f, const char *name);
/* Every registered flow's requests, for the dispatcher. */
int flow_for_each(int (*fn)(const struct flow *f, void *ctx), void *ctx);

/* engine.c: running flows. */
/* Called (from the flow's thread) each time a record reaches a terminal step
 * (up to four functions, each once). */
void engine_on_end(void (*fn)(const char *vm));
/*
 * Accept a new operation: claim its VM in the store (atomically: of two
 * requests for one VM exactly one gets here), journal it at step 0, run
 * the flow's SYNC steps in this thread, then the rest in a worker.
 * Returns 0 (id in m->id) or -errno with @err; @m is owned by the engine
 * either way.
 */
int engine_start(struct migration *m, char *err, size_t errlen);
/* An operator action ("confirm", "revert") on a coordinated record. */
int engine_action(struct migration *m, const char *action, char *err, size_t errlen);
/* A knob on a running coordinated operation (flow->control). */
int engine_control(struct migration *m, const char *what, char *err, size_t errlen);
/*
 * The side effect that crosses the point of no return has happened (a
 * live migration's switchover): an abort is refused from now on, and one
 * accepted just before is dropped.  Call from the step that did it.
 */
void engine_commit(struct migration *m);
/* Abort before the point of no return: stop the copy, walk back. */
int engine_abort(struct migration *m, char *err, size_t errlen);
/* Bring a journaled record to rest (start and reconcile). */
void engine_resume(struct migration *m);
/* Test hook: FERRY_TEST_CRASH=ROLE:POINT kills ferryd at that point. */
void engine_crash_point(const struct migration *m, const char *point);
/* Test hook: FERRY_TEST_PAUSE=ROLE:POINT:MS sleeps there (abort tests). */
void engine_pause_point(const struct migration *m, const char *point);
/* Shutdown: stop every copy; wait up to @ms for the workers to rest. */
int engine_stop(int ms);
/*
 * A handler takes a record for the length of one request: -EAGAIN when a
 * thread (its resume, another request) already drives it; the sender
 * retries, as for a restarting peer.
 */
int engine_hold(struct migration *m);
void engine_unhold(struct migration *m);
/* A participant's own step change (journaled first). */
int engine_step_set(struct migration *m, int step);
/* A participant starts its walk back at its current step. */
int engine_undo_mark(struct migration *m);
/* Whether the copy of @m should stop (abort, shutdown). */
bool engine_stopping(const struct migration *m);

/* journal.c: every record is a file, replaced atomically and fsync'd. */
int journal_init(const char *state_dir);
/* Snapshot under m->lock, write and fsync without it. */
int journal_save(struct migration *m);
/* Load every record; calls @fn for each (takes ownership). */
int journal_load_all(int (*fn)(struct migration *m, void *ctx), void *ctx);
int journal_remove(const char *id, enum mig_role role);

/* store.c: the operations this host takes part in. */
/*
 * Add @m unless another non-terminal operation holds its VM (the other
 * role of the same id excepted: a resize onto its own host); -EBUSY with
 * the rival described in @rival ("resize m-..., status migrating").
 */
int store_claim(struct migration *m, char *rival, size_t len);
/*
 * -EBUSY, the rival in @rival, if an operation holds @vm: a request says
 * so before it looks at a VM that another operation is changing (the
 * claim stays the one that decides).
 */
int store_vm_busy(const char *vm, char *rival, size_t len);
/* Add a journaled record at start, without a claim. */
void store_add(struct migration *m);
struct migration *store_find(const char *id, enum mig_role role);
/* The coordinating record of @id, else any. */
struct migration *store_find_any(const char *id);
struct migration *store_active_for_vm(const char *vm);
struct migration *store_latest_for_vm(const char *vm);
/* A snapshot of every record (records are never freed while ferryd runs). */
int store_list(struct migration ***out);
/* Journal and publish after a field change. */
int mig_save(struct migration *m);

/* reconcile.c */
int reconcile_start(void);

/* metrics.c: operation metrics in a pinned BPF map, for bpftool. */
int metrics_init(const char *pin_dir);
void metrics_publish(const struct migration *m);
void metrics_fini(void);

#endif /* FERRY_DAEMON_ENGINE_H */
