// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * cold.c - cold migration and resize, the source host's side: it is the
 * coordinator and decides every roll forward or back.
 *
 *   new -> prep (destination prechecks, dirs/LVs)          pre-migrating
 *       -> precopy (VM running: whole disks, then dirty     migrating
 *          rounds from the tracker until the delta is small)
 *       -> poweroff (clean shutdown, retries, then destroy)
 *       -> final-copy (the last delta, VM off)
 *       -> keep-source (<dir> -> <dir>_resize)              post-migrating
 *       -> finishing (destination defines and starts)
 *       -> finished                                         finished
 *       -> confirming -> confirmed | reverting -> revert-source -> reverted
 *
 * Before "finishing" any failure rolls back (the source disks were never
 * touched); from "finishing" on, the flow only rolls forward.  Each step is
 * journaled before its side effect and every side effect is idempotent, so
 * reconcile (after a crash) simply runs the same code again.
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define COLD_CALL_MS 5000

static bool cold_transient(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ECONNABORTED:
	case EAGAIN:
	case EPROTO:
		return true;
	default:
		return false;
	}
}

static void cold_set_error(struct migration *m, const char *msg)
{
	pthread_mutex_lock(&ferryd->lock);
	if (!m->error[0])
		snprintf(m->error, sizeof(m->error), "%s", msg);
	pthread_mutex_unlock(&ferryd->lock);
}

static struct json_object *cold_req(const char *op, const struct migration *m)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "op", json_object_new_string(op));
	json_object_object_add(r, "id", json_object_new_string(m->id));
	return r;
}

/*
 * A request to the destination, retried while it is restarting (up to
 * peer_retry_s, or forever when @forever: past the point of no return).
 */
static struct json_object *cold_call(struct migration *m, struct json_object *req, bool forever,
				     char *err, size_t errlen)
{
	uint64_t deadline = now_ms() + (uint64_t)ferryd->conf.peer_retry_s * 1000;
	unsigned int delay_ms = 200;
	struct json_object *rep;

	for (;;) {
		rep = peer_call(m->dst_host, req, COLD_CALL_MS, err, errlen);
		if (rep || !cold_transient(errno) || ferryd->stopping)
			break;
		if (!forever && now_ms() >= deadline)
			break;
		log_warn("migration %s: %s; retrying", m->id, err);
		usleep(delay_ms * 1000);
		delay_ms = MIN(delay_ms * 2, 5000u);
	}
	json_object_put(req);
	return rep;
}

static const char *jget_str(struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* ---- gathering the VM's facts -------------------------------------- */

static int cold_fill_disk(struct migration *m, const struct domxml_disk *dd, char *err,
			  size_t errlen)
{
	struct mig_disk *d = &m->disks[m->ndisks];
	const struct disk_ops *ops;
	int ret;

	memset(d, 0, sizeof(*d));
	snprintf(d->target, sizeof(d->target), "%s", dd->target);
	snprintf(d->src_path, sizeof(d->src_path), "%s", dd->path);
	d->kind = dd->swap ? MIG_DISK_SWAP : MIG_DISK_DATA;
	if (strcmp(dd->format, "raw") && strcmp(dd->format, "qcow2")) {
		snprintf(err, errlen, "vm %s: disk %s: format '%s' is not supported (raw, qcow2)",
			 m->vm, dd->target, dd->format);
		return -EOPNOTSUPP;
	}
	snprintf(d->format, sizeof(d->format), "%s", dd->format);
	if (!strcmp(dd->type, "block")) {
		char vg[128];

		if (sscanf(dd->path, "/dev/%127[^/]/", vg) != 1 || strcmp(dd->format, "raw")) {
			snprintf(err, errlen, "vm %s: disk %s: %s is not a raw LVM volume "
					      "(/dev/VG/LV); ferry moves image files and LVs",
				 m->vm, dd->target, dd->path);
			return -EOPNOTSUPP;
		}
		snprintf(d->backend, sizeof(d->backend), "lvm");
	} else {
		snprintf(d->backend, sizeof(d->backend), "file");
	}
	ops = disk_ops_find(d->backend);
	ret = ops->size(d->src_path, &d->size_bytes);
	if (!ret)
		ret = disk_virtual_size(d->src_path, d->format, &d->virtual_bytes);
	if (!ret && !strcmp(d->format, "qcow2"))
		ret = disk_backing_file(d->src_path, d->backing, sizeof(d->backing));
	if (!ret && d->backing[0])
		ret = disk_sha256(d->backing, d->backing_sha256);
	if (!ret) {
		struct stat st;

		d->alloc_bytes = d->size_bytes;
		if (!strcmp(d->backend, "file") && stat(d->src_path, &st) == 0)
			d->alloc_bytes = (uint64_t)st.st_blocks * 512;
	}
	if (ret) {
		snprintf(err, errlen, "vm %s: disk %s: %s: %s", m->vm, d->target, d->src_path,
			 strerror(-ret));
		return ret;
	}
	d->new_virtual_bytes = d->virtual_bytes;
	m->ndisks++;
	return 0;
}

/* The Nova-style instance dir: the parent of the disks, inside instances_dir. */
static void cold_find_inst_dir(struct migration *m)
{
	char top[PATH_MAX], dir[PATH_MAX], parent[PATH_MAX];
	int i;

	if (!realpath(ferryd->conf.instances_dir, top))
		return;
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char tmp[PATH_MAX];

		if (strcmp(d->backend, "file"))
			continue;
		snprintf(tmp, sizeof(tmp), "%s", d->src_path);
		snprintf(dir, sizeof(dir), "%s", dirname(tmp));
		snprintf(tmp, sizeof(tmp), "%s", dir);
		snprintf(parent, sizeof(parent), "%s", dirname(tmp));
		if (strcmp(parent, top))
			return; /* not in an instance dir: disks are kept one by one */
		if (m->inst_dir[0] && strcmp(m->inst_dir, dir)) {
			m->inst_dir[0] = '\0'; /* disks in several dirs: per disk */
			return;
		}
		snprintf(m->inst_dir, sizeof(m->inst_dir), "%s", dir);
	}
}

static int cold_gather(struct migration *m, const struct cold_request *r, char *err,
		       size_t errlen)
{
	struct domxml_info info;
	enum virt_power power;
	int i, ret, root = -1;

	ret = virt_domain_state(ferryd->virt, m->vm, &power);
	if (ret) {
		snprintf(err, errlen, "vm %s: %s on host %s", m->vm,
			 ret == -ENOENT ? "no such VM" : strerror(-ret), ferryd->conf.host);
		return ret;
	}
	m->was_running = power == VIRT_RUNNING || power == VIRT_PAUSED;
	m->src_xml = virt_domain_xml(ferryd->virt, m->vm);
	if (!m->src_xml) {
		snprintf(err, errlen, "vm %s: cannot read its definition", m->vm);
		return -errno;
	}
	ret = domxml_parse(m->src_xml, &info);
	if (ret) {
		snprintf(err, errlen, "vm %s: cannot parse its definition", m->vm);
		return ret;
	}
	snprintf(m->uuid, sizeof(m->uuid), "%s", info.uuid);
	m->old_flavor.vcpus = info.vcpus;
	m->old_flavor.memory_mib = info.memory_mib;
	for (i = 0; i < info.ndisks; i++) {
		ret = cold_fill_disk(m, &info.disks[i], err, errlen);
		if (ret)
			return ret;
		if (root < 0 && m->disks[m->ndisks - 1].kind == MIG_DISK_DATA)
			root = m->ndisks - 1;
	}
	if (root < 0) {
		snprintf(err, errlen, "vm %s: no data disk to move", m->vm);
		return -EINVAL;
	}
	m->old_flavor.root_disk_bytes = m->disks[root].virtual_bytes;
	m->new_flavor = m->old_flavor;
	if (r->flavor.vcpus)
		m->new_flavor.vcpus = r->flavor.vcpus;
	if (r->flavor.memory_mib)
		m->new_flavor.memory_mib = r->flavor.memory_mib;
	if (r->flavor.root_disk_bytes) {
		if (r->flavor.root_disk_bytes < m->disks[root].virtual_bytes) {
			snprintf(err, errlen, "vm %s: unable to resize disk down: %s is %" PRIu64
					      " bytes, asked for %" PRIu64,
				 m->vm, m->disks[root].target, m->disks[root].virtual_bytes,
				 r->flavor.root_disk_bytes);
			return -EINVAL;
		}
		m->new_flavor.root_disk_bytes = r->flavor.root_disk_bytes;
		m->disks[root].new_virtual_bytes = r->flavor.root_disk_bytes;
	}
	cold_find_inst_dir(m);
	return 0;
}

/* ---- copying --------------------------------------------------------- */

struct cold_disk_state {
	struct track_disk *track;
	uint8_t token[32];
	uint16_t port;
	char dest_path[PATH_MAX];       /* as the destination registered it */
	unsigned int round;             /* copy rounds, for transfer ids */
};

/* Ask the destination for a transfer into disk @i (at its current size). */
static int cold_xfer_open(struct migration *m, int i, struct cold_disk_state *st, char *err,
			  size_t errlen)
{
	const struct disk_ops *ops = disk_ops_find(m->disks[i].backend);
	struct json_object *req, *rep, *v;
	const char *tok;
	uint64_t size;
	int ret;

	ret = ops->size(m->disks[i].src_path, &size);
	if (ret) {
		snprintf(err, errlen, "%s: %s", m->disks[i].src_path, strerror(-ret));
		return ret;
	}
	m->disks[i].size_bytes = size; /* a qcow2 file grows while the VM runs */
	/* One transfer id per round: a retry of the same round resumes it. */
	snprintf(m->disks[i].xfer_id, sizeof(m->disks[i].xfer_id), "%s-%s-r%u", m->id,
		 m->disks[i].target, st->round);
	req = cold_req("xfer_open", m);
	json_object_object_add(req, "disk", json_object_new_int(i));
	json_object_object_add(req, "size", json_object_new_uint64(size));
	json_object_object_add(req, "xfer_id", json_object_new_string(m->disks[i].xfer_id));
	rep = cold_call(m, req, false, err, errlen);
	if (!rep)
		return -errno;
	tok = jget_str(rep, "token");
	if (!tok || hex_decode(tok, st->token, sizeof(st->token)) || !jget_str(rep, "path") ||
	    !json_object_object_get_ex(rep, "port", &v)) {
		snprintf(err, errlen, "%s: bad xfer_open reply", m->dst_host);
		json_object_put(rep);
		return -EPROTO;
	}
	st->port = (uint16_t)json_object_get_int(v);
	snprintf(st->dest_path, sizeof(st->dest_path), "%s", jget_str(rep, "path"));
	json_object_put(rep);
	return 0;
}

/* Copy disk @i (whole if nranges < 0), reopening the transfer after a peer restart. */
static int cold_copy(struct migration *m, int i, struct cold_disk_state *st,
		     const struct xfer_range *ranges, long nranges, char *err, size_t errlen)
{
	uint64_t deadline = now_ms() + (uint64_t)ferryd->conf.peer_retry_s * 1000;
	int ret;

	for (;;) {
		ret = cold_xfer_open(m, i, st, err, errlen);
		if (!ret)
			ret = xfer_send(m, m->disks[i].src_path, st->dest_path,
					m->disks[i].xfer_id, m->dst_host, st->port, st->token,
					ranges, nranges, err, errlen);
		if (!ret || !cold_transient(-ret) || now_ms() >= deadline || ferryd->stopping)
			return ret;
		log_warn("migration %s: disk %s: %s; resuming", m->id, m->disks[i].target, err);
		sleep(1);
	}
}

static uint64_t ranges_bytes(const struct xfer_range *r, long n)
{
	uint64_t b = 0;
	long i;

	for (i = 0; i < n; i++)
		b += r[i].len;
	return b;
}

/*
 * One round over every data disk: whole disks (first round, or after a
 * tracker loss) or the dirty ranges since the last drain.  Returns the
 * bytes copied in *copied.
 */
static int cold_round(struct migration *m, struct cold_disk_state *st, bool whole,
		      uint64_t *copied, char *err, size_t errlen)
{
	int i, ret = 0;

	*copied = 0;
	for (i = 0; i < m->ndisks && !ret; i++) {
		struct xfer_range *ranges = NULL;
		long n = -1;
		uint64_t bytes = m->disks[i].size_bytes;
		bool rescan = whole || !st[i].track;

		if (m->disks[i].kind != MIG_DISK_DATA)
			continue;
		if (!rescan) {
			ret = track_drain(st[i].track, &ranges, &n, &bytes, &rescan);
			if (ret) {
				snprintf(err, errlen, "disk %s: dirty tracking: %s",
					 m->disks[i].target, strerror(-ret));
				break;
			}
			if (rescan) {
				log_warn("migration %s: disk %s: tracker lost writes; copying "
					 "the whole disk",
					 m->id, m->disks[i].target);
				pthread_mutex_lock(&ferryd->lock);
				m->m.rescans++;
				pthread_mutex_unlock(&ferryd->lock);
			}
		}
		if (rescan) {
			free(ranges);
			ranges = NULL;
			n = -1;
			bytes = m->disks[i].size_bytes;
		} else {
			bytes = ranges_bytes(ranges, n);
		}
		pthread_mutex_lock(&ferryd->lock);
		m->m.disk_total_bytes += bytes;
		m->m.disk_remaining_bytes = bytes;
		pthread_mutex_unlock(&ferryd->lock);
		st[i].round++;
		if (n != 0)
			ret = cold_copy(m, i, &st[i], ranges, n, err, errlen);
		*copied += bytes;
		free(ranges);
	}
	return ret;
}

/* Copy backing files the destination lacks (they never change). */
static int cold_backing(struct migration *m, struct json_object *need, char *err,
			size_t errlen)
{
	size_t i;

	for (i = 0; need && i < json_object_array_length(need); i++) {
		int disk = json_object_get_int(json_object_array_get_idx(need, i));
		struct json_object *req, *rep, *v;
		char bk_id[64];
		uint8_t token[32];
		uint64_t size;
		int ret;

		if (disk < 0 || disk >= m->ndisks || !m->disks[disk].backing[0])
			continue;
		ret = disk_file_ops.size(m->disks[disk].backing, &size);
		if (ret) {
			snprintf(err, errlen, "backing file %s: %s", m->disks[disk].backing,
				 strerror(-ret));
			return ret;
		}
		req = cold_req("xfer_open", m);
		json_object_object_add(req, "disk", json_object_new_int(disk));
		json_object_object_add(req, "backing", json_object_new_boolean(true));
		json_object_object_add(req, "src_instances_dir",
				       json_object_new_string(ferryd->conf.instances_dir));
		json_object_object_add(req, "size", json_object_new_uint64(size));
		rep = cold_call(m, req, false, err, errlen);
		if (!rep)
			return -errno;
		if (!jget_str(rep, "token") || hex_decode(jget_str(rep, "token"), token, 32) ||
		    !jget_str(rep, "path") || !json_object_object_get_ex(rep, "port", &v)) {
			json_object_put(rep);
			snprintf(err, errlen, "%s: bad xfer_open reply", m->dst_host);
			return -EPROTO;
		}
		snprintf(bk_id, sizeof(bk_id), "%s-%s-backing", m->id, m->disks[disk].target);
		ret = xfer_send(m, m->disks[disk].backing, jget_str(rep, "path"), bk_id,
				m->dst_host, (uint16_t)json_object_get_int(v), token, NULL, -1, err,
				errlen);
		json_object_put(rep);
		if (ret)
			return ret;
	}
	return 0;
}

/* Warm pre-copy while the VM runs; returns with tracking still on. */
static int cold_precopy(struct migration *m, struct cold_disk_state *st, char *err,
			size_t errlen)
{
	uint64_t start = now_ms(), copied, t0;
	int i, ret, round;

	for (i = 0; i < m->ndisks; i++) {
		if (m->disks[i].kind != MIG_DISK_DATA || !m->was_running)
			continue;
		ret = track_start(m->disks[i].src_path, &st[i].track);
		if (ret) {
			log_warn("migration %s: disk %s: no dirty tracking (%s): it will be "
				 "copied with the VM off",
				 m->id, m->disks[i].target, strerror(-ret));
			st[i].track = NULL;
		}
	}
	/* Round 0: everything, while the VM keeps running. */
	ret = cold_round(m, st, true, &copied, err, errlen);
	if (ret || !m->was_running)
		return ret;
	for (round = 1; round <= ferryd->conf.precopy_max_rounds; round++) {
		bool tracked = false;

		for (i = 0; i < m->ndisks; i++)
			tracked |= st[i].track != NULL;
		if (!tracked)
			break;
		t0 = now_ms();
		ret = cold_round(m, st, false, &copied, err, errlen);
		if (ret)
			return ret;
		pthread_mutex_lock(&ferryd->lock);
		m->m.precopy_rounds = (uint32_t)round;
		m->m.dirty_rate_bps = copied * 1000 / MAX(now_ms() - t0, 1);
		pthread_mutex_unlock(&ferryd->lock);
		mig_save(m);
		mig_crash_point(m, "precopy-round");
		log_info("migration %s: pre-copy round %d: %" PRIu64 " bytes", m->id, round,
			 copied);
		if (copied <= ferryd->conf.precopy_target_bytes)
			break;
		if (now_ms() - start > (uint64_t)ferryd->conf.precopy_max_s * 1000)
			break;
	}
	return 0;
}

/* ---- keeping and restoring the source ------------------------------- */

static int cold_keep_source(struct migration *m)
{
	int i, ret;

	if (m->inst_dir[0]) {
		ret = inst_dir_keep(m->inst_dir);
		if (ret)
			return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!strcmp(d->backend, "file") && m->inst_dir[0])
			continue; /* moved with the dir */
		ret = disk_ops_find(d->backend)->keep(d->src_path);
		if (ret) {
			log_err("migration %s: keep %s: %s", m->id, d->src_path, strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static int cold_restore_source(struct migration *m)
{
	int i, ret;

	if (m->inst_dir[0]) {
		ret = inst_dir_restore(m->inst_dir);
		if (ret && ret != -ENOENT)
			return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!strcmp(d->backend, "file") && m->inst_dir[0])
			continue;
		ret = disk_ops_find(d->backend)->restore(d->src_path);
		if (ret && ret != -ENOENT) {
			log_err("migration %s: restore %s: %s", m->id, d->src_path,
				strerror(-ret));
			return ret;
		}
	}
	return 0;
}

static void cold_kept_path(const struct migration *m, const struct mig_disk *d, char *out,
			   size_t len)
{
	if (!strcmp(d->backend, "file") && m->inst_dir[0]) {
		char kept[PATH_MAX];

		disk_kept_path(m->inst_dir, kept, sizeof(kept));
		snprintf(out, len, "%s%s", kept, d->src_path + strlen(m->inst_dir));
	} else {
		disk_kept_path(d->src_path, out, len);
	}
}

/*
 * Restore the VM's power state on the source.  A rollback from the power-off
 * step may find the guest halfway through the shutdown we asked for: let it
 * finish (bounded, then destroy) before starting it again.
 */
static int cold_power_restore(struct migration *m)
{
	enum virt_power p;
	bool forced;
	int ret;

	if (!m->was_running)
		return 0;
	ret = virt_domain_state(ferryd->virt, m->vm, &p);
	if (ret)
		return ret;
	if (p == VIRT_RUNNING && m->step == MIG_STEP_ROLLBACK &&
	    m->rollback_from == MIG_STEP_POWEROFF) {
		ret = virt_domain_poweroff(ferryd->virt, m->vm, ferryd->conf.shutdown_timeout_s,
					   ferryd->conf.shutdown_retries, &forced);
		if (ret)
			return ret;
		p = VIRT_SHUTOFF;
	}
	return p == VIRT_RUNNING ? 0 : virt_domain_start(ferryd->virt, m->vm);
}

static void cold_tracking_stop(struct cold_disk_state *st, int n)
{
	int i;

	for (i = 0; st && i < n; i++) {
		if (st[i].track)
			track_stop(st[i].track);
		st[i].track = NULL;
	}
}

/* Undo a flow that failed before "finishing": the source was never touched. */
static void cold_rollback(struct migration *m)
{
	char err[1024];
	struct json_object *rep;
	int ret;

	if (m->step != MIG_STEP_ROLLBACK) {
		pthread_mutex_lock(&ferryd->lock);
		m->rollback_from = m->step;
		pthread_mutex_unlock(&ferryd->lock);
		if (mig_set_step(m, MIG_STEP_ROLLBACK))
			return;
	}
	ret = cold_restore_source(m);
	if (!ret)
		ret = cold_power_restore(m);
	if (ret) {
		/* Leave it in rollback: reconcile tries again; never lose the VM. */
		log_err("migration %s: rollback of vm %s incomplete: %s", m->id, m->vm,
			strerror(-ret));
		return;
	}
	/* The destination cleans up now, or asks us later (dest_resume). */
	rep = peer_call(m->dst_host, cold_req("abort", m), COLD_CALL_MS, err, sizeof(err));
	if (!rep)
		log_warn("migration %s: %s; it will clean up when it asks", m->id, err);
	json_object_put(rep);
	mig_set_step(m, MIG_STEP_FAILED);
}

/* ---- the flow -------------------------------------------------------- */

/* Checksums of the kept copy, so that a revert can prove it restored it. */
static void cold_checksum_kept(struct migration *m)
{
	int i;

	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char kept[PATH_MAX], sum[65];

		if (d->kind != MIG_DISK_DATA || d->src_sha256[0])
			continue;
		cold_kept_path(m, d, kept, sizeof(kept));
		if (disk_sha256(kept, sum))
			continue;
		pthread_mutex_lock(&ferryd->lock);
		snprintf(d->src_sha256, sizeof(d->src_sha256), "%s", sum);
		pthread_mutex_unlock(&ferryd->lock);
	}
	mig_save(m);
}

static int cold_finish(struct migration *m, char *err, size_t errlen)
{
	struct json_object *req, *rep;
	int ret;

	if (!m->dst_xml) {
		char *xml = domxml_adapt(m->src_xml, &m->new_flavor, m->disks, m->ndisks);

		if (!xml) {
			snprintf(err, errlen, "vm %s: cannot adapt its definition", m->vm);
			return -EINVAL;
		}
		pthread_mutex_lock(&ferryd->lock);
		m->dst_xml = xml;
		pthread_mutex_unlock(&ferryd->lock);
	}
	ret = mig_set_step(m, MIG_STEP_FINISHING);
	if (ret)
		return ret;
	req = cold_req("finish", m);
	json_object_object_add(req, "migration", mig_to_json(m, true));
	rep = cold_call(m, req, true, err, errlen);
	if (!rep)
		return -errno;
	json_object_put(rep);
	if (!m->auto_confirm)
		cold_checksum_kept(m);
	pthread_mutex_lock(&ferryd->lock);
	/*
	 * VM off -> running on the destination (wall clock: survives restarts).
	 * A crash during the power-off left no t_off_ms: count from the request.
	 */
	if (m->was_running && (m->m.t_off_ms || m->m.t_poweroff_ms))
		m->m.downtime_ms = wall_ms() - (m->m.t_off_ms ? m->m.t_off_ms : m->m.t_poweroff_ms);
	m->m.t_finished_ms = wall_ms();
	if (ferryd->conf.resize_confirm_window_s)
		m->confirm_deadline_ms =
			wall_ms() + (uint64_t)ferryd->conf.resize_confirm_window_s * 1000;
	pthread_mutex_unlock(&ferryd->lock);
	return mig_set_step(m, MIG_STEP_FINISHED);
}

static int cold_do_confirm(struct migration *m);

static void cold_run(struct migration *m)
{
	struct cold_disk_state st[FERRYD_MAX_DISKS] = {};
	char err[1024] = "";
	uint64_t copied;
	bool forced;
	int ret;

	if (m->step >= MIG_STEP_FINISHING)
		goto finishing;
	ret = mig_set_step(m, MIG_STEP_PRECOPY);
	if (ret)
		goto fail;
	pthread_mutex_lock(&ferryd->lock);
	m->m.t_precopy_ms = wall_ms();
	pthread_mutex_unlock(&ferryd->lock);
	ret = cold_precopy(m, st, err, sizeof(err));
	if (ret)
		goto fail;

	ret = mig_set_step(m, MIG_STEP_POWEROFF);
	if (ret)
		goto fail;
	if (m->was_running) {
		pthread_mutex_lock(&ferryd->lock);
		m->m.t_poweroff_ms = wall_ms();
		pthread_mutex_unlock(&ferryd->lock);
		ret = virt_domain_poweroff(ferryd->virt, m->vm, ferryd->conf.shutdown_timeout_s,
					   ferryd->conf.shutdown_retries, &forced);
		if (ret) {
			snprintf(err, sizeof(err), "vm %s: power off failed", m->vm);
			goto fail;
		}
		if (forced)
			log_warn("migration %s: vm %s did not shut down cleanly; destroyed", m->id,
				 m->vm);
		pthread_mutex_lock(&ferryd->lock);
		m->m.t_off_ms = wall_ms();
		m->m.shutdown_ms = m->m.t_off_ms - m->m.t_poweroff_ms;
		pthread_mutex_unlock(&ferryd->lock);
	}

	ret = mig_set_step(m, MIG_STEP_FINAL_COPY);
	if (ret)
		goto fail;
	pthread_mutex_lock(&ferryd->lock);
	m->m.t_final_copy_ms = wall_ms();
	pthread_mutex_unlock(&ferryd->lock);
	if (m->was_running) {
		ret = cold_round(m, st, false, &copied, err, sizeof(err));
		if (ret)
			goto fail;
		pthread_mutex_lock(&ferryd->lock);
		m->m.last_delta_bytes = copied;
		pthread_mutex_unlock(&ferryd->lock);
	}
	cold_tracking_stop(st, m->ndisks);
	mig_crash_point(m, "final-copied");

	ret = mig_set_step(m, MIG_STEP_KEEP_SOURCE);
	if (!ret)
		ret = cold_keep_source(m);
	if (ret) {
		snprintf(err, sizeof(err), "vm %s: cannot keep the source disks aside: %s", m->vm,
			 strerror(-ret));
		goto fail;
	}

finishing:
	if (m->step <= MIG_STEP_FINISHING) {
		/* Past the point of no return: only forward. */
		ret = cold_finish(m, err, sizeof(err));
		if (ret) {
			cold_set_error(m, err);
			log_err("migration %s: finish on %s: %s (will retry)", m->id, m->dst_host,
				err);
			return;
		}
	}
	if (m->step == MIG_STEP_FINISHED && m->auto_confirm)
		cold_do_confirm(m);
	return;
fail:
	cold_tracking_stop(st, m->ndisks);
	if (!err[0])
		snprintf(err, sizeof(err), "%s", strerror(-ret));
	log_err("migration %s: %s; rolling back", m->id, err);
	cold_set_error(m, err);
	cold_rollback(m);
}

/* ---- confirm and revert --------------------------------------------- */

static int cold_do_confirm(struct migration *m)
{
	char err[1024];
	struct json_object *rep;
	int i, ret;

	ret = mig_set_step(m, MIG_STEP_CONFIRMING);
	if (ret)
		return ret;
	ret = virt_domain_undefine(ferryd->virt, m->vm);
	if (ret && ret != -ENOENT)
		return ret;
	if (m->inst_dir[0]) {
		char kept[PATH_MAX];

		disk_kept_path(m->inst_dir, kept, sizeof(kept));
		ret = inst_dir_remove(kept);
		if (ret)
			return ret;
	}
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];

		if (!strcmp(d->backend, "file") && m->inst_dir[0])
			continue;
		ret = disk_ops_find(d->backend)->remove(d->src_path, true);
		if (ret)
			return ret;
	}
	rep = cold_call(m, cold_req("confirm_dest", m), false, err, sizeof(err));
	if (!rep)
		log_warn("migration %s: %s; it will learn of the confirm when it asks", m->id,
			 err);
	json_object_put(rep);
	return mig_set_step(m, MIG_STEP_CONFIRMED);
}

static int cold_do_revert(struct migration *m)
{
	char err[1024];
	struct json_object *rep;
	int i, ret;

	if (m->step != MIG_STEP_REVERT_SOURCE) {
		ret = mig_set_step(m, MIG_STEP_REVERTING);
		if (ret)
			return ret;
		/* The destination's copy must be gone before the source runs again. */
		rep = cold_call(m, cold_req("revert_dest", m), false, err, sizeof(err));
		if (!rep) {
			cold_set_error(m, err);
			log_err("migration %s: revert: %s (will retry)", m->id, err);
			return -errno;
		}
		json_object_put(rep);
		ret = mig_set_step(m, MIG_STEP_REVERT_SOURCE);
		if (ret)
			return ret;
	}
	ret = cold_restore_source(m);
	if (!ret)
		ret = virt_domain_define(ferryd->virt, m->src_xml);
	if (ret)
		return ret;
	for (i = 0; i < m->ndisks; i++) {
		struct mig_disk *d = &m->disks[i];
		char sum[65];

		if (d->kind != MIG_DISK_DATA || !d->src_sha256[0])
			continue;
		if (disk_sha256(d->src_path, sum) || strcmp(sum, d->src_sha256)) {
			log_err("migration %s: revert: %s differs from the copy kept at power-off",
				m->id, d->src_path);
			cold_set_error(m, "revert: restored disk differs from the kept copy");
		}
	}
	ret = cold_power_restore(m);
	if (ret)
		return ret;
	return mig_set_step(m, MIG_STEP_REVERTED);
}

/* ---- threads and entry points --------------------------------------- */

enum cold_job {
	COLD_JOB_RUN,
	COLD_JOB_CONFIRM,
	COLD_JOB_REVERT,
	COLD_JOB_ROLLBACK,
};

struct cold_thread_arg {
	struct migration *m;
	enum cold_job job;
};

static void *cold_thread(void *p)
{
	struct cold_thread_arg *a = p;
	struct migration *m = a->m;

	switch (a->job) {
	case COLD_JOB_RUN:
		cold_run(m);
		break;
	case COLD_JOB_CONFIRM:
		if (cold_do_confirm(m))
			log_err("migration %s: confirm incomplete (will retry)", m->id);
		break;
	case COLD_JOB_REVERT:
		if (cold_do_revert(m))
			log_err("migration %s: revert incomplete (will retry)", m->id);
		break;
	case COLD_JOB_ROLLBACK:
		cold_rollback(m);
		break;
	}
	pthread_mutex_lock(&ferryd->lock);
	m->busy = false;
	pthread_mutex_unlock(&ferryd->lock);
	free(a);
	return NULL;
}

/* Start @job on @m unless a thread already drives it; caller holds no lock. */
static int cold_spawn(struct migration *m, enum cold_job job)
{
	struct cold_thread_arg *a;
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	pthread_mutex_lock(&ferryd->lock);
	if (m->busy) {
		pthread_mutex_unlock(&ferryd->lock);
		return -EBUSY;
	}
	m->busy = true;
	pthread_mutex_unlock(&ferryd->lock);
	a = calloc(1, sizeof(*a));
	if (!a) {
		ret = -ENOMEM;
		goto err;
	}
	a->m = m;
	a->job = job;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&t, &attr, cold_thread, a);
	pthread_attr_destroy(&attr);
	if (!ret)
		return 0;
	free(a);
err:
	pthread_mutex_lock(&ferryd->lock);
	m->busy = false;
	pthread_mutex_unlock(&ferryd->lock);
	return ret;
}

/* Pick a destination: the named one, or the peer with the most free memory. */
static int cold_pick_dest(const struct cold_request *r, struct migration *m, char *err,
			  size_t errlen)
{
	uint64_t best_free = 0;
	int i;

	if (r->to[0]) {
		if (!strcmp(r->to, ferryd->conf.host)) {
			snprintf(err, errlen, "vm %s: cannot %s to its own host %s (same-host "
					      "resize is not supported)",
				 m->vm, r->type == MIG_TYPE_RESIZE ? "resize" : "migrate",
				 ferryd->conf.host);
			return -EINVAL;
		}
		if (!conf_peer(&ferryd->conf, r->to)) {
			snprintf(err, errlen, "unknown host '%s' (peers of %s:", r->to,
				 ferryd->conf.host);
			for (i = 0; i < ferryd->conf.npeers; i++)
				snprintf(err + strlen(err), errlen - strlen(err), " %s",
					 ferryd->conf.peers[i].name);
			snprintf(err + strlen(err), errlen - strlen(err), ")");
			return -ENOENT;
		}
		snprintf(m->dst_host, sizeof(m->dst_host), "%s", r->to);
		return 0;
	}
	for (i = 0; i < ferryd->conf.npeers; i++) {
		struct json_object *q = json_object_new_object(), *rep, *v;
		char e[512];

		json_object_object_add(q, "op", json_object_new_string("host_info"));
		rep = peer_call(ferryd->conf.peers[i].name, q, COLD_CALL_MS, e, sizeof(e));
		json_object_put(q);
		if (!rep)
			continue;
		if (json_object_object_get_ex(rep, "free_memory_mib", &v) &&
		    json_object_get_uint64(v) > best_free) {
			best_free = json_object_get_uint64(v);
			snprintf(m->dst_host, sizeof(m->dst_host), "%s",
				 ferryd->conf.peers[i].name);
		}
		json_object_put(rep);
	}
	if (!m->dst_host[0]) {
		snprintf(err, errlen, "vm %s: no reachable destination host", m->vm);
		return -EHOSTUNREACH;
	}
	return 0;
}

static int cold_prep(struct migration *m, char *err, size_t errlen)
{
	struct json_object *req, *rep, *disks, *need = NULL;
	size_t i;
	int ret;

	req = cold_req("prep", m);
	json_object_object_add(req, "migration", mig_to_json(m, true));
	json_object_object_add(req, "src_instances_dir",
			       json_object_new_string(ferryd->conf.instances_dir));
	rep = cold_call(m, req, false, err, errlen);
	if (!rep)
		return -errno;
	/* The destination chose where each disk goes. */
	if (json_object_object_get_ex(rep, "dst_paths", &disks)) {
		for (i = 0; i < json_object_array_length(disks) && (int)i < m->ndisks; i++)
			snprintf(m->disks[i].dst_path, sizeof(m->disks[i].dst_path), "%s",
				 json_object_get_string(json_object_array_get_idx(disks, i)));
	}
	if (jget_str(rep, "dst_inst_dir"))
		snprintf(m->dst_inst_dir, sizeof(m->dst_inst_dir), "%s",
			 jget_str(rep, "dst_inst_dir"));
	json_object_object_get_ex(rep, "need_backing", &need);
	ret = mig_save(m);
	if (!ret)
		ret = cold_backing(m, need, err, errlen);
	json_object_put(rep);
	return ret;
}

int cold_start(const struct cold_request *r, char *id, char *err, size_t errlen)
{
	struct migration *m, *busy;
	int ret;

	pthread_mutex_lock(&ferryd->lock);
	busy = migstore_active_for_vm(r->vm);
	if (busy) {
		snprintf(err, errlen, "vm %s: operation already in progress (%s %s, status %s)",
			 r->vm, mig_type_name(busy->type), busy->id, mig_status_name(busy->step));
		pthread_mutex_unlock(&ferryd->lock);
		errno = EBUSY;
		return -EBUSY;
	}
	pthread_mutex_unlock(&ferryd->lock);

	m = mig_new();
	if (!m) {
		snprintf(err, errlen, "out of memory");
		return -(errno = ENOMEM);
	}
	m->type = r->type;
	m->role = MIG_ROLE_SOURCE;
	m->step = MIG_STEP_NEW;
	m->auto_confirm = r->confirm;
	snprintf(m->vm, sizeof(m->vm), "%s", r->vm);
	snprintf(m->src_host, sizeof(m->src_host), "%s", ferryd->conf.host);
	snprintf(m->src_instances_dir, sizeof(m->src_instances_dir), "%s",
		 ferryd->conf.instances_dir);
	ret = cold_gather(m, r, err, errlen);
	if (!ret)
		ret = cold_pick_dest(r, m, err, errlen);
	if (!ret)
		ret = mig_id_generate(m->id, sizeof(m->id));
	if (ret)
		goto err;
	m->m.t_created_ms = wall_ms();

	/* Journal it, then claim the VM (a second request now sees it busy). */
	pthread_mutex_lock(&ferryd->lock);
	busy = migstore_active_for_vm(r->vm);
	if (busy) {
		pthread_mutex_unlock(&ferryd->lock);
		snprintf(err, errlen, "vm %s: operation already in progress (%s)", r->vm,
			 busy->id);
		ret = -EBUSY;
		goto err;
	}
	ret = journal_save(m);
	pthread_mutex_unlock(&ferryd->lock);
	if (ret) {
		snprintf(err, errlen, "migration %s: cannot journal: %s", m->id, strerror(-ret));
		goto err;
	}
	m->busy = true; /* prep below runs in this thread */
	migstore_add(m);
	snprintf(id, FERRY_ID_LEN, "%s", m->id);
	log_info("migration %s: %s of vm %s from %s to %s", m->id, mig_type_name(m->type), m->vm,
		 m->src_host, m->dst_host);

	ret = mig_set_step(m, MIG_STEP_PREP);
	if (!ret)
		ret = cold_prep(m, err, errlen);
	pthread_mutex_lock(&ferryd->lock);
	m->busy = false;
	pthread_mutex_unlock(&ferryd->lock);
	if (ret) {
		/* Prechecks refused: nothing was done on either side worth keeping. */
		cold_set_error(m, err);
		cold_rollback(m);
		errno = -ret;
		return ret;
	}
	ret = cold_spawn(m, COLD_JOB_RUN);
	if (ret) {
		snprintf(err, errlen, "migration %s: cannot start: %s", m->id, strerror(-ret));
		errno = -ret;
	}
	return ret;
err:
	mig_free(m);
	errno = -ret;
	return ret;
}

static int cold_lookup(const char *id, struct migration **out, char *err, size_t errlen)
{
	struct migration *m;

	pthread_mutex_lock(&ferryd->lock);
	m = migstore_find(id);
	pthread_mutex_unlock(&ferryd->lock);
	if (!m) {
		snprintf(err, errlen, "%s: no such migration", id);
		return -ENOENT;
	}
	if (m->role != MIG_ROLE_SOURCE) {
		snprintf(err, errlen, "%s: coordinated by %s", id, m->src_host);
		return -EINVAL;
	}
	*out = m;
	return 0;
}

int cold_confirm(const char *id, char *err, size_t errlen)
{
	struct migration *m;
	int ret;

	ret = cold_lookup(id, &m, err, errlen);
	if (ret)
		return ret;
	if (m->step != MIG_STEP_FINISHED && m->step != MIG_STEP_CONFIRMING) {
		snprintf(err, errlen, "%s %s of vm %s is %s: only a finished one can be confirmed",
			 mig_type_name(m->type), m->id, m->vm, mig_status_name(m->step));
		return -EINVAL;
	}
	ret = cold_spawn(m, COLD_JOB_CONFIRM);
	if (ret == -EBUSY)
		snprintf(err, errlen, "%s: operation already in progress", m->id);
	return ret;
}

int cold_revert(const char *id, char *err, size_t errlen)
{
	struct migration *m;
	int ret;

	ret = cold_lookup(id, &m, err, errlen);
	if (ret)
		return ret;
	if (m->step != MIG_STEP_FINISHED && m->step != MIG_STEP_REVERTING &&
	    m->step != MIG_STEP_REVERT_SOURCE) {
		snprintf(err, errlen, "%s %s of vm %s is %s: only a finished one can be reverted",
			 mig_type_name(m->type), m->id, m->vm, mig_status_name(m->step));
		return -EINVAL;
	}
	ret = cold_spawn(m, COLD_JOB_REVERT);
	if (ret == -EBUSY)
		snprintf(err, errlen, "%s: operation already in progress", m->id);
	return ret;
}

void cold_resume(struct migration *m)
{
	enum cold_job job;

	switch (m->step) {
	case MIG_STEP_NEW:
	case MIG_STEP_PREP:
	case MIG_STEP_PRECOPY:
	case MIG_STEP_POWEROFF:
	case MIG_STEP_FINAL_COPY:
	case MIG_STEP_KEEP_SOURCE:
	case MIG_STEP_ROLLBACK:
		if (!m->error[0])
			snprintf(m->error, sizeof(m->error),
				 "interrupted at %s (ferryd restarted); rolled back",
				 mig_step_name(m->step));
		job = COLD_JOB_ROLLBACK;
		break;
	case MIG_STEP_FINISHING:
		job = COLD_JOB_RUN;
		break;
	case MIG_STEP_FINISHED:
		if (!m->auto_confirm &&
		    !(m->confirm_deadline_ms && wall_ms() >= m->confirm_deadline_ms))
			return;
		job = COLD_JOB_CONFIRM;
		break;
	case MIG_STEP_CONFIRMING:
		job = COLD_JOB_CONFIRM;
		break;
	case MIG_STEP_REVERTING:
	case MIG_STEP_REVERT_SOURCE:
		job = COLD_JOB_REVERT;
		break;
	default:
		return;
	}
	cold_spawn(m, job);
}
