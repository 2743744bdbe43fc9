// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * migration.c - the migration record: steps and Nova's names for them, and
 * its JSON form (the journal and the peer protocol use the same one).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"

static const struct {
	const char *step;
	const char *status; /* Nova migration status */
} mig_steps[MIG_STEP__MAX] = {
	[MIG_STEP_NEW] = { "new", "pre-migrating" },
	[MIG_STEP_PREP] = { "prep", "pre-migrating" },
	[MIG_STEP_PRECOPY] = { "precopy", "migrating" },
	[MIG_STEP_POWEROFF] = { "poweroff", "migrating" },
	[MIG_STEP_FINAL_COPY] = { "final-copy", "migrating" },
	[MIG_STEP_KEEP_SOURCE] = { "keep-source", "post-migrating" },
	[MIG_STEP_FINISHING] = { "finishing", "post-migrating" },
	[MIG_STEP_FINISHED] = { "finished", "finished" },
	[MIG_STEP_CONFIRMING] = { "confirming", "confirming" },
	[MIG_STEP_CONFIRMED] = { "confirmed", "confirmed" },
	[MIG_STEP_REVERTING] = { "reverting", "reverting" },
	[MIG_STEP_REVERT_SOURCE] = { "revert-source", "reverting" },
	[MIG_STEP_REVERTED] = { "reverted", "reverted" },
	[MIG_STEP_ROLLBACK] = { "rollback", "error" },
	[MIG_STEP_FAILED] = { "failed", "error" },
};

const char *mig_step_name(enum mig_step s)
{
	return s < MIG_STEP__MAX ? mig_steps[s].step : "?";
}

const char *mig_status_name(enum mig_step s)
{
	return s < MIG_STEP__MAX ? mig_steps[s].status : "?";
}

int mig_step_parse(const char *s, enum mig_step *out)
{
	int i;

	for (i = 0; i < MIG_STEP__MAX; i++) {
		if (!strcmp(s, mig_steps[i].step)) {
			*out = (enum mig_step)i;
			return 0;
		}
	}
	return -EINVAL;
}

bool mig_step_terminal(enum mig_step s)
{
	return s == MIG_STEP_CONFIRMED || s == MIG_STEP_REVERTED || s == MIG_STEP_FAILED;
}

const char *mig_type_name(enum mig_type t)
{
	return t == MIG_TYPE_RESIZE ? "resize" : "migration";
}

/* Nova's instance vm_state while the migration is at its step. */
const char *mig_vm_state(const struct migration *m)
{
	const char *base = m->was_running ? "active" : "stopped";

	switch (m->step) {
	case MIG_STEP_FINISHED:
	case MIG_STEP_CONFIRMING:
	case MIG_STEP_REVERTING:
	case MIG_STEP_REVERT_SOURCE:
		return "resized";
	case MIG_STEP_ROLLBACK:
		return "error";
	default:
		return base;
	}
}

/* Nova's instance task_state (NULL shown as "-"). */
const char *mig_task_state(const struct migration *m)
{
	switch (m->step) {
	case MIG_STEP_NEW:
	case MIG_STEP_PREP:
		return "resize_prep";
	case MIG_STEP_PRECOPY:
	case MIG_STEP_POWEROFF:
	case MIG_STEP_FINAL_COPY:
		return "resize_migrating";
	case MIG_STEP_KEEP_SOURCE:
		return "resize_migrated";
	case MIG_STEP_FINISHING:
		return "resize_finish";
	case MIG_STEP_CONFIRMING:
		return "resize_confirming";
	case MIG_STEP_REVERTING:
	case MIG_STEP_REVERT_SOURCE:
		return "resize_reverting";
	default:
		return NULL;
	}
}

struct migration *mig_new(void)
{
	return calloc(1, sizeof(struct migration));
}

void mig_free(struct migration *m)
{
	if (!m)
		return;
	free(m->src_xml);
	free(m->dst_xml);
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

static struct json_object *metrics_to_json(const struct mig_metrics *mm)
{
	struct json_object *o = json_object_new_object();

	J_U64(o, "t_created_ms", mm->t_created_ms);
	J_U64(o, "t_precopy_ms", mm->t_precopy_ms);
	J_U64(o, "t_poweroff_ms", mm->t_poweroff_ms);
	J_U64(o, "t_off_ms", mm->t_off_ms);
	J_U64(o, "t_final_copy_ms", mm->t_final_copy_ms);
	J_U64(o, "t_finished_ms", mm->t_finished_ms);
	J_U64(o, "t_ended_ms", mm->t_ended_ms);
	J_U64(o, "disk_total_bytes", mm->disk_total_bytes);
	J_U64(o, "disk_processed_bytes", mm->disk_processed_bytes);
	J_U64(o, "disk_remaining_bytes", mm->disk_remaining_bytes);
	J_U64(o, "wire_bytes", mm->wire_bytes);
	J_U64(o, "raw_bytes", mm->raw_bytes);
	J_U64(o, "precopy_rounds", mm->precopy_rounds);
	J_U64(o, "dirty_rate_bps", mm->dirty_rate_bps);
	J_U64(o, "last_delta_bytes", mm->last_delta_bytes);
	J_U64(o, "shutdown_ms", mm->shutdown_ms);
	J_U64(o, "downtime_ms", mm->downtime_ms);
	J_U64(o, "rescans", mm->rescans);
	return o;
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
	return o;
}

struct json_object *mig_to_json(const struct migration *m, bool full)
{
	struct json_object *o = json_object_new_object(), *disks;
	const char *task = mig_task_state(m);
	int i;

	J_STR(o, "id", m->id);
	J_STR(o, "vm", m->vm);
	J_STR(o, "uuid", m->uuid);
	J_STR(o, "type", mig_type_name(m->type));
	J_STR(o, "role", m->role == MIG_ROLE_DEST ? "dest" : "source");
	J_STR(o, "status", mig_status_name(m->step));
	J_STR(o, "step", mig_step_name(m->step));
	J_STR(o, "vm_state", mig_vm_state(m));
	json_object_object_add(o, "task_state", task ? json_object_new_string(task) : NULL);
	J_STR(o, "source", m->src_host);
	J_STR(o, "dest", m->dst_host);
	J_BOOL(o, "was_running", m->was_running);
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
	J_STR(o, "rollback_from", mig_step_name(m->rollback_from));
	json_object_object_add(o, "old_flavor", flavor_to_json(&m->old_flavor));
	json_object_object_add(o, "new_flavor", flavor_to_json(&m->new_flavor));
	json_object_object_add(o, "metrics", metrics_to_json(&m->m));
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

static void metrics_from_json(struct jr *r, struct mig_metrics *mm)
{
	struct json_object *v = jr_get(r, "metrics", json_type_object, false);
	struct jr s = { .o = v };

	if (!v)
		return;
	mm->t_created_ms = jr_u64(&s, "t_created_ms");
	mm->t_precopy_ms = jr_u64(&s, "t_precopy_ms");
	mm->t_poweroff_ms = jr_u64(&s, "t_poweroff_ms");
	mm->t_off_ms = jr_u64(&s, "t_off_ms");
	mm->t_final_copy_ms = jr_u64(&s, "t_final_copy_ms");
	mm->t_finished_ms = jr_u64(&s, "t_finished_ms");
	mm->t_ended_ms = jr_u64(&s, "t_ended_ms");
	mm->disk_total_bytes = jr_u64(&s, "disk_total_bytes");
	mm->disk_processed_bytes = jr_u64(&s, "disk_processed_bytes");
	mm->disk_remaining_bytes = jr_u64(&s, "disk_remaining_bytes");
	mm->wire_bytes = jr_u64(&s, "wire_bytes");
	mm->raw_bytes = jr_u64(&s, "raw_bytes");
	mm->precopy_rounds = (uint32_t)jr_u64(&s, "precopy_rounds");
	mm->dirty_rate_bps = jr_u64(&s, "dirty_rate_bps");
	mm->last_delta_bytes = jr_u64(&s, "last_delta_bytes");
	mm->shutdown_ms = jr_u64(&s, "shutdown_ms");
	mm->downtime_ms = jr_u64(&s, "downtime_ms");
	mm->rescans = (uint32_t)jr_u64(&s, "rescans");
	if (s.bad && !r->bad)
		r->bad = s.bad;
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
	if (r.bad && !parent->bad)
		parent->bad = r.bad;
}

int mig_from_json(struct migration *m, struct json_object *o, char *err, size_t errlen)
{
	struct jr r = { .o = o };
	struct json_object *disks;
	char buf[32] = "";
	size_t i, n;

	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "migration record is not an object");
		return -EINVAL;
	}
	jr_str(&r, "id", m->id, sizeof(m->id), true);
	jr_str(&r, "vm", m->vm, sizeof(m->vm), true);
	jr_str(&r, "uuid", m->uuid, sizeof(m->uuid), false);
	jr_str(&r, "type", buf, sizeof(buf), true);
	m->type = !strcmp(buf, "resize") ? MIG_TYPE_RESIZE : MIG_TYPE_MIGRATION;
	buf[0] = '\0';
	jr_str(&r, "role", buf, sizeof(buf), false);
	m->role = !strcmp(buf, "dest") ? MIG_ROLE_DEST : MIG_ROLE_SOURCE;
	buf[0] = '\0';
	jr_str(&r, "step", buf, sizeof(buf), true);
	if (buf[0] && mig_step_parse(buf, &m->step) && !r.bad)
		r.bad = "step";
	jr_str(&r, "source", m->src_host, sizeof(m->src_host), true);
	jr_str(&r, "dest", m->dst_host, sizeof(m->dst_host), true);
	m->was_running = jr_bool(&r, "was_running");
	m->auto_confirm = jr_bool(&r, "auto_confirm");
	m->same_host = jr_bool(&r, "same_host");
	jr_str(&r, "error", m->error, sizeof(m->error), false);
	jr_str(&r, "inst_dir", m->inst_dir, sizeof(m->inst_dir), false);
	jr_str(&r, "dst_inst_dir", m->dst_inst_dir, sizeof(m->dst_inst_dir), false);
	jr_str(&r, "stage_inst_dir", m->stage_inst_dir, sizeof(m->stage_inst_dir), false);
	jr_str(&r, "src_instances_dir", m->src_instances_dir, sizeof(m->src_instances_dir),
	       false);
	m->confirm_deadline_ms = jr_u64(&r, "confirm_deadline_ms");
	buf[0] = '\0';
	jr_str(&r, "rollback_from", buf, sizeof(buf), false);
	if (buf[0] && mig_step_parse(buf, &m->rollback_from) && !r.bad)
		r.bad = "rollback_from";
	flavor_from_json(&r, "old_flavor", &m->old_flavor);
	flavor_from_json(&r, "new_flavor", &m->new_flavor);
	metrics_from_json(&r, &m->m);
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
