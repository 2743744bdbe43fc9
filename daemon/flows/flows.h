/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * flows.h - the flows ferryd runs.  A flow is one file ending in its
 * struct flow (see engine.h and docs/state-machine.md), plus the files it
 * needs; flows.c lists them.  Nothing outside a flow knows its steps.
 */
#ifndef FERRY_DAEMON_FLOWS_H
#define FERRY_DAEMON_FLOWS_H

#include "daemon/cluster/cluster.h"
#include "daemon/copy/copy.h"
#include "daemon/host/host.h"
#include "daemon/storage/storage.h"

/* flows.c: register every flow, then the dispatcher's table. */
int flows_register(void);

/* cold.c: cold migration and resize (Nova's migrate and resize). */
extern const struct flow cold_flow;

enum cold_step {
	COLD_NEW = 0,        /* pre-migrating: record created */
	COLD_PREP,           /* pre-migrating: destination prechecks, dirs */
	COLD_PRECOPY,        /* migrating: warm copy while the VM runs */
	COLD_POWEROFF,       /* migrating: clean shutdown, then destroy */
	COLD_FINAL_COPY,     /* migrating: last delta, VM off */
	COLD_KEEP_SOURCE,    /* post-migrating: source dir -> <dir>_resize */
	COLD_FINISHING,      /* post-migrating: destination defines, starts (ponr) */
	COLD_FINISHED,       /* finished: waiting for confirm or revert */
	COLD_CONFIRMING,     /* confirming: source copy removed */
	COLD_CONFIRMED,      /* confirmed (terminal) */
	COLD_REVERTING,      /* reverting: destination copy destroyed */
	COLD_REVERT_SOURCE,  /* reverting: source restored */
	COLD_REVERTED,       /* reverted (terminal) */
	COLD_FAILED,         /* error (terminal): rolled back */
	COLD_CANCELLED,      /* cancelled (terminal): aborted, rolled back */
	COLD__NSTEPS,
};

struct cold_request {
	enum mig_type type;
	char vm[FERRY_NAME_MAX];
	char to[FERRY_NAME_MAX];        /* "" for resize: pick */
	struct flavor flavor;           /* 0 fields: keep */
	bool confirm;                   /* confirm when finished */
};

/* Per-disk state of the copy, for the worker's life (m->priv). */
struct cold_disk_state {
	struct track_disk *track;
	uint8_t token[32];
	uint16_t port;
	char dest_path[PATH_MAX];       /* as the destination registered it */
	unsigned int session;           /* sessions, for transfer ids */
	struct xfer_session *xs;        /* the open one: every round goes through it */
};

struct cold_priv {
	struct cold_disk_state st[FERRYD_MAX_DISKS];
};

bool cold_transient(int err);
/* Undo of a destination's preparation: it removes what it made (cold.abort). */
int cold_prep_undo(struct migration *m, char *err, size_t errlen);
/* A request to the destination, retried while it restarts; puts @req. */
struct json_object *cold_call(struct migration *m, struct json_object *req, bool forever,
			      char *err, size_t errlen);
struct cold_priv *cold_priv(struct migration *m);

/* cold_prep.c */
int cold_gather(struct migration *m, const struct cold_request *r, char *err, size_t errlen);
int cold_pick_dest(const struct cold_request *r, struct migration *m, char *err,
		   size_t errlen);
/* Destination prechecks and preparation, then the backing files it lacks. */
int cold_prep(struct migration *m, char *err, size_t errlen);

/* cold_copy.c */
/* Tracking on, round 0 (whole disks), dirty rounds until the delta is small. */
int cold_precopy(struct migration *m, struct cold_disk_state *st, char *err, size_t errlen);
/* One round: whole disks, or the ranges drained since the last round. */
int cold_round(struct migration *m, struct cold_disk_state *st, bool whole, uint64_t *copied,
	       char *err, size_t errlen);
void cold_tracking_stop(struct cold_disk_state *st, int n);
/* After the last round: commit every disk's session (durable, then closed). */
int cold_sessions_commit(struct migration *m, struct cold_disk_state *st, char *err,
			 size_t errlen);
void cold_sessions_close(struct cold_disk_state *st, int n);

/* cold_dest.c: the destination's handlers (idempotent) and its resume. */
struct json_object *cold_dest_prep(const struct rpc_ctx *ctx, struct json_object *req);
struct json_object *cold_dest_xfer_open(const struct rpc_ctx *ctx, struct json_object *req);
struct json_object *cold_dest_finish(const struct rpc_ctx *ctx, struct json_object *req);
struct json_object *cold_dest_confirm(const struct rpc_ctx *ctx, struct json_object *req);
struct json_object *cold_dest_revert(const struct rpc_ctx *ctx, struct json_object *req);
struct json_object *cold_dest_abort(const struct rpc_ctx *ctx, struct json_object *req);
void cold_dest_resume(struct migration *m);
/*
 * The destination's preparation serves every flow that copies disks
 * (cold.prep, cold.xfer_open, cold.abort): a flow's destination record
 * rests at its @prep step while the source copies, and ends in @failed
 * after a walk back.
 */
struct dest_steps {
	const struct flow *flow;
	int prep, failed;
};
const struct dest_steps *cold_dest_steps(const struct migration *m);
/*
 * The destination record a request names, of flow @f (NULL: any that
 * prepares here), held for the request; NULL with the reply in *rep.
 */
struct migration *cold_dest_hold(struct json_object *req, const struct flow *f,
				 struct json_object **rep);
/* Release it, then reply @rep. */
struct json_object *cold_dest_release(struct migration *m, struct json_object *rep);
/* Walk back a prepared destination record (journaled), to its failed step. */
int cold_dest_teardown(struct migration *m);
/* Backing files that arrived as <file>.part: checked, renamed into place. */
int cold_dest_backings_commit(struct migration *m, char *err, size_t errlen);

/* live.c: live migration (Nova's live-migration, with block migration). */
extern const struct flow live_flow;

enum live_step {
	LIVE_NEW = 0,        /* accepted: record created */
	LIVE_PRECHECK,       /* accepted: Nova's prechecks, storage decided */
	LIVE_QUEUED,         /* queued: waiting for a live-migration slot */
	LIVE_PREP,           /* preparing: destination disks, backing files */
	LIVE_PRECOPY,        /* running: tracked disk rounds, VM running */
	LIVE_RAM,            /* running: libvirt moves RAM, disk rounds go on */
	LIVE_SWITCHED,       /* post-migrating: source gone; residual copied (ponr) */
	LIVE_RESUMING,       /* post-migrating: the destination resumes */
	LIVE_CLEANUP,        /* post-migrating: source disks removed */
	LIVE_COMPLETED,      /* completed (terminal) */
	LIVE_FAILED,         /* failed (terminal): rolled back, VM on the source */
	LIVE_CANCELLED,      /* cancelled (terminal): aborted, rolled back */
	LIVE__NSTEPS,
};

/* Per-migration runtime state (m->priv): the disks' state first. */
struct live_call;
struct live_priv {
	struct cold_priv cold;
	int block_choice;               /* --block-migrate, until the precheck */
	bool slot;                      /* holds a live-migration slot */
	bool suspended;                 /* we paused the source (force-complete) */
	struct live_call *call;         /* libvirt's call, returning after the switchover */
	pthread_t call_thr;
	int nnics;                      /* bridged NICs, from the precheck */
	bool net_ok;                    /* the destination watches them (or gave up) */
};

struct live_priv *live_priv(struct migration *m);

/* live_ram.c: the RAM phase, its controller, and its settle after a restart. */
int live_run_ram(struct migration *m, char *err, size_t errlen);
int live_undo_ram(struct migration *m, char *err, size_t errlen);
int live_settle_ram(struct migration *m, char *err, size_t errlen);
/* Wait for libvirt's migration call to end (it confirms after the
 * switchover); with settle and no call (a restart), for its job on the
 * source. */
int live_ram_join(struct migration *m, bool settle);

/* live_dest.c: the destination's requests. */
struct json_object *live_dest_check(const struct rpc_ctx *ctx, struct json_object *req);
struct json_object *live_dest_ready(const struct rpc_ctx *ctx, struct json_object *req);
struct json_object *live_dest_resume(const struct rpc_ctx *ctx, struct json_object *req);
struct json_object *live_dest_state(const struct rpc_ctx *ctx, struct json_object *req);
void live_dest_participant(struct migration *m);

/* live_net.c: the VM's network at the precheck and the cut-over. */
int live_net_check_req(struct migration *m, struct json_object *req);
int live_net_check_dest(const struct migration *m, struct json_object *req, char *err,
			size_t errlen);
bool live_net_watched(const char *vm, int *nics);
/* The controller: true while the switchover must wait for the destination. */
bool live_net_hold(struct migration *m, uint64_t since_ms);
struct json_object *live_dest_net(const struct rpc_ctx *ctx, struct json_object *req);
void live_net_cutover(struct migration *m);
bool live_net_guest_talked(const struct vifmon_stat *src, int n, uint64_t now_ns);
/* The destination, at the resume: a tap that had its announce gets the FDB entry. */
void live_net_resumed(struct migration *m);

/* evac.c: evacuate (Nova's), rebuild a dead host's VM here. */
extern const struct flow evac_flow;

enum evac_step {
	EVAC_NEW = 0,        /* accepted: record created */
	EVAC_CHECK,          /* accepted: the VM's record, its owner gone, room */
	EVAC_GRACE,          /* pre-migrating: the owner's key stays gone */
	EVAC_CLAIM,          /* pre-migrating: owner = this host, generation + 1 */
	EVAC_REBUILD,        /* pre-migrating: disks, definition (ponr) */
	EVAC_START,          /* pre-migrating: started, if it is to run */
	EVAC_DONE,           /* done (terminal) */
	EVAC_FAILED,         /* failed (terminal): nothing was taken */
	EVAC_CANCELLED,      /* cancelled (terminal) */
	EVAC__NSTEPS,
};

#endif /* FERRY_DAEMON_FLOWS_H */
