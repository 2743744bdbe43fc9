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

#endif /* FERRY_DAEMON_FLOWS_H */
