// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * record.c - the operation record: Nova's names for where it is (from its
 * flow's step table), and its JSON form (the journal and the peer protocol
 * use the same one).  A record names its format and flow; one this ferryd
 * cannot run (a newer flow, format or type) is kept as found and never
 * guessed at.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/engine/engine.h"

static const char *const mig_types[MIG_TYPE__MAX] = {
	[MIG_TYPE_MIGRATION] = "migration",
	[MIG_TYPE_RESIZE] = "resize",
	[MIG_TYPE_LIVE] = "live-migration",
	[MIG_TYPE_EVACUATE] = "evacuation",
};

const char *mig_type_name(enum mig_type t)
{
	return t < MIG_TYPE__MAX ? mig_types[t] : "?";
}

int mig_type_parse(const char *s, enum mig_type *out)
{
	int i;

	for (i = 0; i < MIG_TYPE__MAX; i++) {
		if (!strcmp(s, mig_types[i])) {
			*out = (enum mig_type)i;
			return 0;
		}
	}
	return -EINVAL;
}

static const struct flow_step *mig_cur(const struct migration *m)
{
	if (!m->flow || m->step < 0 || m->step >= m->flow->nsteps)
		return NULL;
	return &m->flow->steps[m->step];
}

/* While walking back the step shown is "rollback", as before the engine. */
const char *mig_step_name(const struct migration *m)
{
	const struct flow_step *s = mig_cur(m);

	if (!s)
		return "unknown";
	return m->undoing ? "rollback" : s->name;
}

const char *mig_status_name(const struct migration *m)
{
	const struct flow_step *s = mig_cur(m);

	if (!s)
		return "unknown";
	if (m->undoing)
		return m->cancelled ? "cancelling" : "error";
	return s->status;
}

bool mig_terminal(const struct migration *m)
{
	const struct flow_step *s = mig_cur(m);

	return s && !m->undoing && (s->flags & FLOW_STEP_TERMINAL);
}

bool mig_at_rest(const struct migration *m)
{
	const struct flow_step *s = mig_cur(m);

	return s && !m->undoing && (s->flags & (FLOW_STEP_TERMINAL | FLOW_STEP_REST));
}

/* Nova's instance vm_state while the operation is at its step. */
const char *mig_vm_state(const struct migration *m)
{
	const struct flow_step *s = mig_cur(m);
	const char *base = m->was_paused ? "paused" : m->was_running ? "active" : "stopped";

	if (!s)
		return base;
	if (m->undoing)
		return m->cancelled ? base : "error";
	return s->vm_state ? s->vm_state : base;
}

/* Nova's instance task_state (NULL shown as "-"). */
const char *mig_task_state(const struct migration *m)
{
	const struct flow_step *s = mig_cur(m);

	return s && !m->undoing ? s->task_state : NULL;
}

struct migration *mig_new(void)
{
	struct migration *m = calloc(1, sizeof(struct migration));

	if (m)
		pthread_mutex_init(&m->lock, NULL);
	return m;
}

void mig_free(struct migration *m)
{
	if (!m)
		return;
	free(m->src_xml);
	free(m->dst_xml);
	json_object_put(m->raw);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int mig_id_generate(char *id, size_t len)
{
	uint8_t r[6];
	char hex[13];
	int ret;

	ret = random_bytes(r, sizeof(r));
	if (ret)
		return ret;
	hex_encode(r, sizeof(r), hex);
	snprintf(id, len, "m-%s", hex);
	return 0;
}

#define J_STR(o, k, v) json_object_object_add(o, k, json_object_new_string(v))
#define J_U64(o, k, v) json_object_object_add(o, k, json_object_new_uint64(v))
#define J_INT(o, k, v) json_object_object_add(o, k, json_object_new_int(v))
#define J_BOOL(o, k, v) json_object_object_add(o, k, json_object_new_boolean(v))

static struct json_object *flavor_to_json(const struct flavor *f)
{
	struct json_object *o = json_object_new_object();

	J_INT(o, "vcpus", f->vcpus);
	J_U64(o, "memory_mib", f->memory_mib);
	J_U64(o, "root_disk_bytes", f->root_disk_bytes);
	return o;
}

static struct json_object *vif_to_json(const struct mig_vif *v)
{
	struct json_object *o = json_object_new_object();

	J_STR(o, "mac", v->mac);
	J_STR(o, "bridge", v->bridge);
	J_STR(o, "src_tap", v->src_tap);
	J_STR(o, "dst_tap", v->dst_tap);
	J_BOOL(o, "guest_seen", v->guest_seen);
	J_BOOL(o, "announce_seen", v->announce_seen);
	J_BOOL(o, "announce_self", v->announce_self);
	J_BOOL(o, "fdb_fixed", v->fdb_fixed);
	J_U64(o, "blackout_us", v->blackout_us);
	J_U64(o, "announce_lag_us", v->announce_lag_us);
	J_U64(o, "stranded_packets", v->stranded_packets);
	J_U64(o, "drops", v->drops);
	J_U64(o, "rarps", v->rarps);
	J_U64(o, "garps", v->garps);
	J_U64(o, "attach_lag_us", v->attach_lag_us);
	J_U64(o, "reattaches", v->reattaches);
	return o;
}

static struct json_object *live_to_json(const struct mig_live *l)
{
	struct json_object *o = json_object_new_object();

	J_BOOL(o, "block_migration", l->block);
	J_BOOL(o, "disk_over_commit", l->disk_over_commit);
	J_BOOL(o, "force_complete", l->force_complete);
	J_U64(o, "max_downtime_ms", l->max_downtime_ms);
	J_U64(o, "bandwidth_bps", l->bandwidth_bps);
	J_STR(o, "reason", l->reason);
	if (l->nvifs) {
		struct json_object *a = json_object_new_array();

		for (int i = 0; i < l->nvifs; i++)
			json_object_array_add(a, vif_to_json(&l->vifs[i]));
		json_object_object_add(o, "vifs", a);
	}
	return o;
}

static struct json_object *evac_to_json(const struct mig_evac *e)
{
	struct json_object *o = json_object_new_object();

	J_INT(o, "target", e->target);
	J_BOOL(o, "ask_shared", e->ask_shared);
	J_BOOL(o, "start", e->start);
	J_BOOL(o, "shared", e->shared);
	J_BOOL(o, "data_lost", e->data_lost);
	json_object_object_add(o, "record_rev", json_object_new_int64(e->record_rev));
	json_object_object_add(o, "generation", json_object_new_int64(e->generation));
	J_U64(o, "owner_gone_ms", e->owner_gone_ms);
	J_U64(o, "lease_wait_ms", e->lease_wait_ms);
	J_U64(o, "start_ms", e->start_ms);
	return o;
}

void mig_metrics_to_json(const struct mig_metrics *mm, struct json_object *o)
{
#define MIG_METRIC_JSON(type, name, comment) J_U64(o, #name, mm->name);
	FERRY_MIG_COUNTERS(MIG_METRIC_JSON)
#undef MIG_METRIC_JSON
}

static struct json_object *disk_to_json(const struct mig_disk *d)
{
	struct json_object *o = json_object_new_object();

	J_STR(o, "target", d->target);
	J_STR(o, "kind", d->kind == MIG_DISK_SWAP ? "swap" : "data");
	J_STR(o, "backend", d->backend);
	J_STR(o, "format", d->format);
	J_STR(o, "src_path", d->src_path);
	J_STR(o, "dst_path", d->dst_path);
	J_STR(o, "stage_path", d->stage_path);
	J_STR(o, "backing", d->backing);
	J_U64(o, "size_bytes", d->size_bytes);
	J_U64(o, "alloc_bytes", d->alloc_bytes);
	J_STR(o, "backing_sha256", d->backing_sha256);
	J_U64(o, "virtual_bytes", d->virtual_bytes);
	J_U64(o, "new_virtual_bytes", d->new_virtual_bytes);
	J_STR(o, "xfer_id", d->xfer_id);
	J_STR(o, "src_sha256", d->src_sha256);
	J_BOOL(o, "in_inst_dir", d->in_inst_dir);
	return o;
}

struct json_object *mig_to_json(const struct migration *m, bool full)
{
	struct json_object *o, *disks, *mo;
	const char *task = mig_task_state(m);
	int i;

	if (!m->flow) {
		/* Foreign: as found, and why it is left alone. */
		o = m->raw ? json_object_get(m->raw) : json_object_new_object();
		J_STR(o, "id", m->id);
		J_STR(o, "status", "unknown");
		J_STR(o, "foreign", m->foreign);
		return o;
	}
	o = json_object_new_object();
	J_INT(o, "format", MIG_FORMAT);
	J_STR(o, "flow", m->flow->name);
	J_INT(o, "flow_version", (int)m->flow->version);
	J_STR(o, "id", m->id);
	J_STR(o, "vm", m->vm);
	J_STR(o, "uuid", m->uuid);
	J_STR(o, "type", mig_type_name(m->type));
	J_STR(o, "role", m->role == MIG_ROLE_DEST ? "dest" : "source");
	J_STR(o, "status", mig_status_name(m));
	J_STR(o, "step", mig_step_name(m));
	J_STR(o, "flow_step", m->flow->steps[m->step].name);
	J_STR(o, "phase", m->undoing ? "undo" : "run");
	J_BOOL(o, "cancelled", m->cancelled);
	J_STR(o, "coordinator", m->coordinator);
	J_BOOL(o, "coordinating", m->coordinating);
	J_STR(o, "vm_state", mig_vm_state(m));
	json_object_object_add(o, "task_state", task ? json_object_new_string(task) : NULL);
	J_STR(o, "source", m->src_host);
	J_STR(o, "dest", m->dst_host);
	J_BOOL(o, "was_running", m->was_running);
	J_BOOL(o, "was_paused", m->was_paused);
	if (m->type == MIG_TYPE_LIVE)
		json_object_object_add(o, "live", live_to_json(&m->live));
	if (m->type == MIG_TYPE_EVACUATE)
		json_object_object_add(o, "evacuate", evac_to_json(&m->evac));
	J_BOOL(o, "auto_confirm", m->auto_confirm);
	J_BOOL(o, "same_host", m->same_host);
	J_STR(o, "error", m->error);
	/* Flat copies of the headline metrics, as `ferry -j migrations` shows. */
	J_U64(o, "downtime_ms", m->m.downtime_ms);
	J_U64(o, "disk_total_bytes", m->m.disk_total_bytes);
	J_U64(o, "disk_processed_bytes", m->m.disk_processed_bytes);
	J_U64(o, "wire_bytes", m->m.wire_bytes);
	J_U64(o, "created_ms", m->m.t_created_ms);
	if (!full)
		return o;
	J_STR(o, "inst_dir", m->inst_dir);
	J_STR(o, "dst_inst_dir", m->dst_inst_dir);
	J_STR(o, "stage_inst_dir", m->stage_inst_dir);
	J_STR(o, "src_instances_dir", m->src_instances_dir);
	J_U64(o, "confirm_deadline_ms", m->confirm_deadline_ms);
	J_STR(o, "undo_from", m->flow->steps[m->undo_from].name);
	json_object_object_add(o, "old_flavor", flavor_to_json(&m->old_flavor));
	json_object_object_add(o, "new_flavor", flavor_to_json(&m->new_flavor));
	mo = json_object_new_object();
	mig_metrics_to_json(&m->m, mo);
	json_object_object_add(o, "metrics", mo);
	disks = json_object_new_array();
	for (i = 0; i < m->ndisks; i++)
		json_object_array_add(disks, disk_to_json(&m->disks[i]));
	json_object_object_add(o, "disks", disks);
	if (m->src_xml)
		J_STR(o, "src_xml", m->src_xml);
	if (m->dst_xml)
		J_STR(o, "dst_xml", m->dst_xml);
	return o;
}

/* Field readers: a missing optional field leaves the default. */
struct jr {
	struct json_object *o;
	const char *bad; /* first bad field */
};

static struct json_object *jr_get(struct jr *r, const char *k, enum json_type t, bool need)
{
	struct json_object *v;

	if (!json_object_object_get_ex(r->o, k, &v) || !v) {
		if (need && !r->bad)
			r->bad = k;
		return NULL;
	}
	if (!json_object_is_type(v, t) &&
	    !(t == json_type_int && json_object_is_type(v, json_type_double))) {
		if (!r->bad)
			r->bad = k;
		return NULL;
	}
	return v;
}

static void jr_str(struct jr *r, const char *k, char *dst, size_t len, bool need)
{
	struct json_object *v = jr_get(r, k, json_type_string, need);
	const char *s;

	if (!v)
		return;
	s = json_object_get_string(v);
	if (strlen(s) >= len) {
		if (!r->bad)
			r->bad = k;
		return;
	}
	strcpy(dst, s);
}

static uint64_t jr_u64(struct jr *r, const char *k)
{
	struct json_object *v = jr_get(r, k, json_type_int, false);

	return v ? json_object_get_uint64(v) : 0;
}

static bool jr_bool(struct jr *r, const char *k)
{
	struct json_object *v = jr_get(r, k, json_type_boolean, false);

	return v && json_object_get_boolean(v);
}

static char *jr_dup(struct jr *r, const char *k)
{
	struct json_object *v = jr_get(r, k, json_type_string, false);

	return v ? strdup(json_object_get_string(v)) : NULL;
}

static void flavor_from_json(struct jr *r, const char *k, struct flavor *f)
{
	struct json_object *v = jr_get(r, k, json_type_object, false);
	struct jr sub = { .o = v };

	if (!v)
		return;
	f->vcpus = (int)jr_u64(&sub, "vcpus");
	f->memory_mib = jr_u64(&sub, "memory_mib");
	f->root_disk_bytes = jr_u64(&sub, "root_disk_bytes");
	if (sub.bad && !r->bad)
		r->bad = sub.bad;
}

static void vif_from_json(struct json_object *o, struct mig_vif *v, struct jr *parent)
{
	struct jr r = { .o = o };

	jr_str(&r, "mac", v->mac, sizeof(v->mac), false);
	jr_str(&r, "bridge", v->bridge, sizeof(v->bridge), false);
	jr_str(&r, "src_tap", v->src_tap, sizeof(v->src_tap), false);
	jr_str(&r, "dst_tap", v->dst_tap, sizeof(v->dst_tap), false);
	v->guest_seen = jr_bool(&r, "guest_seen");
	v->announce_seen = jr_bool(&r, "announce_seen");
	v->announce_self = jr_bool(&r, "announce_self");
	v->fdb_fixed = jr_bool(&r, "fdb_fixed");
	v->blackout_us = jr_u64(&r, "blackout_us");
	v->announce_lag_us = jr_u64(&r, "announce_lag_us");
	v->stranded_packets = jr_u64(&r, "stranded_packets");
	v->drops = jr_u64(&r, "drops");
	v->rarps = jr_u64(&r, "rarps");
	v->garps = jr_u64(&r, "garps");
	v->attach_lag_us = jr_u64(&r, "attach_lag_us");
	v->reattaches = (uint32_t)MIN(jr_u64(&r, "reattaches"), UINT32_MAX);
	if (r.bad && !parent->bad)
		parent->bad = r.bad;
}

static void evac_from_json(struct jr *r, struct mig_evac *e)
{
	struct json_object *v = jr_get(r, "evacuate", json_type_object, false);
	struct jr sub = { .o = v };

	if (!v)
		return;
	e->target = (int)jr_u64(&sub, "target");
	e->ask_shared = jr_bool(&sub, "ask_shared");
	e->start = jr_bool(&sub, "start");
	e->shared = jr_bool(&sub, "shared");
	e->data_lost = jr_bool(&sub, "data_lost");
	e->record_rev = (int64_t)jr_u64(&sub, "record_rev");
	e->generation = (int64_t)jr_u64(&sub, "generation");
	e->owner_gone_ms = jr_u64(&sub, "owner_gone_ms");
	e->lease_wait_ms = jr_u64(&sub, "lease_wait_ms");
	e->start_ms = jr_u64(&sub, "start_ms");
	if (sub.bad && !r->bad)
		r->bad = sub.bad;
}

static void live_from_json(struct jr *r, struct mig_live *l)
{
	struct json_object *v = jr_get(r, "live", json_type_object, false);
	struct jr sub = { .o = v };

	if (!v)
		return;
	l->block = jr_bool(&sub, "block_migration");
	l->disk_over_commit = jr_bool(&sub, "disk_over_commit");
	l->force_complete = jr_bool(&sub, "force_complete");
	l->max_downtime_ms = (uint32_t)MIN(jr_u64(&sub, "max_downtime_ms"), UINT32_MAX);
	l->bandwidth_bps = jr_u64(&sub, "bandwidth_bps");
	jr_str(&sub, "reason", l->reason, sizeof(l->reason), false);
	v = jr_get(&sub, "vifs", json_type_array, false);
	l->nvifs = 0;
	for (size_t i = 0; v && i < json_object_array_length(v) && l->nvifs < MIG_MAX_VIFS; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);

		if (json_object_is_type(e, json_type_object))
			vif_from_json(e, &l->vifs[l->nvifs++], &sub);
	}
	if (sub.bad && !r->bad)
		r->bad = sub.bad;
}

const char *mig_metrics_from_json(struct mig_metrics *mm, struct json_object *o)
{
	struct jr r = { .o = o };

#define MIG_METRIC_READ(type, name, comment) mm->name = jr_u64(&r, #name);
	FERRY_MIG_COUNTERS(MIG_METRIC_READ)
#undef MIG_METRIC_READ
	return r.bad;
}

static void disk_from_json(struct json_object *o, struct mig_disk *d, struct jr *parent)
{
	struct jr r = { .o = o };
	char kind[8] = "data";

	jr_str(&r, "target", d->target, sizeof(d->target), true);
	jr_str(&r, "kind", kind, sizeof(kind), false);
	d->kind = !strcmp(kind, "swap") ? MIG_DISK_SWAP : MIG_DISK_DATA;
	jr_str(&r, "backend", d->backend, sizeof(d->backend), true);
	jr_str(&r, "format", d->format, sizeof(d->format), true);
	jr_str(&r, "src_path", d->src_path, sizeof(d->src_path), true);
	jr_str(&r, "dst_path", d->dst_path, sizeof(d->dst_path), false);
	jr_str(&r, "stage_path", d->stage_path, sizeof(d->stage_path), false);
	jr_str(&r, "backing", d->backing, sizeof(d->backing), false);
	d->size_bytes = jr_u64(&r, "size_bytes");
	d->alloc_bytes = jr_u64(&r, "alloc_bytes");
	jr_str(&r, "backing_sha256", d->backing_sha256, sizeof(d->backing_sha256), false);
	d->virtual_bytes = jr_u64(&r, "virtual_bytes");
	d->new_virtual_bytes = jr_u64(&r, "new_virtual_bytes");
	jr_str(&r, "xfer_id", d->xfer_id, sizeof(d->xfer_id), false);
	jr_str(&r, "src_sha256", d->src_sha256, sizeof(d->src_sha256), false);
	d->in_inst_dir = jr_bool(&r, "in_inst_dir");
	if (r.bad && !parent->bad)
		parent->bad = r.bad;
}

/* Refuse to run a record we do not understand; keep it as found. */
static int mig_foreign(struct migration *m, struct json_object *o, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", m->foreign);
	m->flow = NULL;
	json_object_put(m->raw);
	m->raw = json_object_get(o);
	return -ENOTSUP;
}

/* Which flow, format and step: the part of a record an old ferryd lacks. */
static int mig_flow_from_json(struct migration *m, struct jr *r, char *err, size_t errlen)
{
	char buf[32] = "", from[32] = "";
	struct json_object *v;
	long format = 1, version = 1;
	int step;

	v = jr_get(r, "format", json_type_int, false);
	if (v)
		format = json_object_get_int64(v);
	if (format < 1 || format > MIG_FORMAT) {
		snprintf(m->foreign, sizeof(m->foreign),
			 "record format %ld is not one this ferryd reads (1 to %d)", format,
			 MIG_FORMAT);
		return mig_foreign(m, r->o, err, errlen);
	}
	jr_str(r, "type", buf, sizeof(buf), true);
	if (buf[0] && mig_type_parse(buf, &m->type)) {
		snprintf(m->foreign, sizeof(m->foreign),
			 "operation type '%s' is not one this ferryd knows", buf);
		return mig_foreign(m, r->o, err, errlen);
	}
	if (format == 1) {
		/* Before the engine: cold migration and resize, the source decides. */
		m->flow = flow_for_type(m->type);
	} else {
		buf[0] = '\0';
		jr_str(r, "flow", buf, sizeof(buf), true);
		m->flow = buf[0] ? flow_find(buf) : NULL;
		if (buf[0] && !m->flow) {
			snprintf(m->foreign, sizeof(m->foreign),
				 "flow '%s' is not one this ferryd runs", buf);
			return mig_foreign(m, r->o, err, errlen);
		}
		v = jr_get(r, "flow_version", json_type_int, false);
		if (v)
			version = json_object_get_int64(v);
		if (m->flow && (version < 1 || version > (long)m->flow->version)) {
			snprintf(m->foreign, sizeof(m->foreign),
				 "flow '%s' version %ld is not one this ferryd runs (it runs "
				 "1 to %u)",
				 m->flow->name, version, m->flow->version);
			return mig_foreign(m, r->o, err, errlen);
		}
	}
	if (!m->flow) {
		if (!r->bad)
			r->bad = "flow";
		return -EINVAL;
	}
	buf[0] = '\0';
	jr_str(r, "role", buf, sizeof(buf), true);
	if (!strcmp(buf, "dest"))
		m->role = MIG_ROLE_DEST;
	else if (!strcmp(buf, "source") || (format == 1 && !buf[0]))
		m->role = MIG_ROLE_SOURCE;
	else if (!r->bad)
		r->bad = "role";
	buf[0] = '\0';
	jr_str(r, format == 1 ? "step" : "flow_step", buf, sizeof(buf), true);
	if (format == 1) {
		m->coordinating = m->role == MIG_ROLE_SOURCE;
		jr_str(r, "source", m->coordinator, sizeof(m->coordinator), true);
		jr_str(r, "rollback_from", from, sizeof(from), false);
		if (!strcmp(buf, "rollback")) {
			m->undoing = true;
			snprintf(buf, sizeof(buf), "%s", from[0] ? from : "prep");
		}
	} else {
		char phase[8] = "run";

		m->coordinating = jr_bool(r, "coordinating");
		m->cancelled = jr_bool(r, "cancelled");
		jr_str(r, "coordinator", m->coordinator, sizeof(m->coordinator), true);
		jr_str(r, "phase", phase, sizeof(phase), false);
		m->undoing = !strcmp(phase, "undo");
		jr_str(r, "undo_from", from, sizeof(from), false);
	}
	step = buf[0] ? flow_step_find(m->flow, buf) : -1;
	if (step < 0 && !r->bad)
		r->bad = format == 1 ? "step" : "flow_step";
	m->step = step < 0 ? 0 : step;
	step = from[0] ? flow_step_find(m->flow, from) : m->step;
	m->undo_from = step < 0 ? m->step : step;
	return 0;
}

int mig_from_json(struct migration *m, struct json_object *o, char *err, size_t errlen)
{
	struct jr r = { .o = o };
	struct json_object *disks, *mo;
	size_t i, n;
	int ret;

	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "migration record is not an object");
		return -EINVAL;
	}
	jr_str(&r, "id", m->id, sizeof(m->id), true);
	jr_str(&r, "vm", m->vm, sizeof(m->vm), true);
	jr_str(&r, "uuid", m->uuid, sizeof(m->uuid), false);
	ret = mig_flow_from_json(m, &r, err, errlen);
	if (ret == -ENOTSUP)
		return ret;
	jr_str(&r, "source", m->src_host, sizeof(m->src_host), true);
	jr_str(&r, "dest", m->dst_host, sizeof(m->dst_host), true);
	m->was_running = jr_bool(&r, "was_running");
	m->was_paused = jr_bool(&r, "was_paused");
	live_from_json(&r, &m->live);
	evac_from_json(&r, &m->evac);
	m->auto_confirm = jr_bool(&r, "auto_confirm");
	m->same_host = jr_bool(&r, "same_host");
	jr_str(&r, "error", m->error, sizeof(m->error), false);
	jr_str(&r, "inst_dir", m->inst_dir, sizeof(m->inst_dir), false);
	jr_str(&r, "dst_inst_dir", m->dst_inst_dir, sizeof(m->dst_inst_dir), false);
	jr_str(&r, "stage_inst_dir", m->stage_inst_dir, sizeof(m->stage_inst_dir), false);
	jr_str(&r, "src_instances_dir", m->src_instances_dir, sizeof(m->src_instances_dir),
	       false);
	m->confirm_deadline_ms = jr_u64(&r, "confirm_deadline_ms");
	flavor_from_json(&r, "old_flavor", &m->old_flavor);
	flavor_from_json(&r, "new_flavor", &m->new_flavor);
	mo = jr_get(&r, "metrics", json_type_object, false);
	if (mo && !r.bad)
		r.bad = mig_metrics_from_json(&m->m, mo);
	disks = jr_get(&r, "disks", json_type_array, false);
	n = disks ? json_object_array_length(disks) : 0;
	if (n > FERRYD_MAX_DISKS && !r.bad)
		r.bad = "disks";
	for (i = 0; i < n && i < FERRYD_MAX_DISKS; i++)
		disk_from_json(json_object_array_get_idx(disks, i), &m->disks[i], &r);
	m->ndisks = (int)MIN(n, (size_t)FERRYD_MAX_DISKS);
	free(m->src_xml);
	free(m->dst_xml);
	m->src_xml = jr_dup(&r, "src_xml");
	m->dst_xml = jr_dup(&r, "dst_xml");
	if (r.bad) {
		snprintf(err, errlen, "migration record: missing or bad field '%s'", r.bad);
		return -EINVAL;
	}
	return 0;
}
