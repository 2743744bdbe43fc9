// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * coldprep.c - cold migration and resize, before any copy: what the VM is
 * (flavor, disks, instance dir, backing files), where it goes, and the
 * destination's prechecks and preparation (its dirs and empty disks, and
 * the backing files it lacks).
 */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/flows/flows.h"

#define COLD_CALL_MS 5000

static int cold_fill_disk(struct migration *m, const struct domxml_disk *dd, char *err,
			  size_t errlen)
{
	struct mig_disk *d = &m->disks[m->ndisks];
	const struct disk_ops *ops;
	char why[PATH_MAX + 80];
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
	ops = disk_ops_for(dd, why, sizeof(why));
	if (!ops) {
		snprintf(err, errlen, "vm %s: disk %s: %s", m->vm, dd->target, why);
		return -EOPNOTSUPP;
	}
	snprintf(d->backend, sizeof(d->backend), "%s", ops->name);
	ret = ops->size(d->src_path, &d->size_bytes);
	if (!ret)
		ret = disk_virtual_size(d->src_path, d->format, &d->virtual_bytes);
	if (!ret && !strcmp(d->format, "qcow2"))
		ret = disk_backing_file(d->src_path, d->backing, sizeof(d->backing));
	if (!ret && d->backing[0])
		ret = disk_sha256(d->backing, d->backing_sha256);
	d->alloc_bytes = d->size_bytes;
	if (!ret && ops->alloc && ops->alloc(d->src_path, &d->alloc_bytes))
		d->alloc_bytes = d->size_bytes;
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

		if (!disk_has(d, DISK_CAP_INST_DIR))
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
	/* Those disks move with the dir, not one by one. */
	for (i = 0; m->inst_dir[0] && i < m->ndisks; i++)
		m->disks[i].in_inst_dir = disk_has(&m->disks[i], DISK_CAP_INST_DIR);
}

int cold_gather(struct migration *m, const struct cold_request *r, char *err,
		       size_t errlen)
{
	struct domxml_info info;
	enum virt_power power;
	char rival[256];
	int i, ret, root = -1;

	/* Its disks may be half moved: say why before looking at them. */
	ret = store_vm_busy(m->vm, rival, sizeof(rival));
	if (ret) {
		snprintf(err, errlen, "vm %s: operation already in progress (%s)", m->vm, rival);
		return ret;
	}
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

/* Pick a destination: the named one, or the peer with the most free memory. */
int cold_pick_dest(const struct cold_request *r, struct migration *m, char *err,
			  size_t errlen)
{
	struct peer_reply all[FERRYD_MAX_PEERS];
	struct json_object *q, *rep;
	uint64_t best_free = 0;
	int i;

	if (r->to[0]) {
		if (!strcmp(r->to, ferryd->conf.host)) {
			/* As Nova: a resize may stay on its host when allowed; a migration
			 * never does. */
			if (r->type != MIG_TYPE_RESIZE) {
				snprintf(err, errlen, "vm %s: cannot migrate to its own host %s",
					 m->vm, ferryd->conf.host);
				return -EINVAL;
			}
			if (!ferryd->conf.allow_same_host) {
				snprintf(err, errlen, "vm %s: resize onto its own host %s is not "
						      "allowed (allow_same_host in ferryd.conf)",
					 m->vm, ferryd->conf.host);
				return -EINVAL;
			}
			m->same_host = true;
			snprintf(m->dst_host, sizeof(m->dst_host), "%s", r->to);
			return 0;
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
		/* A host that is down is refused now, not after the retry budget. */
		q = json_object_new_object();
		json_object_object_add(q, "op", json_object_new_string("host_info"));
		rep = peer_call(r->to, q, COLD_CALL_MS, err, errlen);
		json_object_put(q);
		if (!rep)
			return errno ? -errno : -EHOSTUNREACH;
		json_object_put(rep);
		snprintf(m->dst_host, sizeof(m->dst_host), "%s", r->to);
		return 0;
	}
	/* Every peer at once: a dead one costs the deadline once. */
	for (i = 0; i < ferryd->conf.npeers; i++)
		all[i].host = ferryd->conf.peers[i].name;
	q = json_object_new_object();
	json_object_object_add(q, "op", json_object_new_string("host_info"));
	peer_call_all(all, ferryd->conf.npeers, q, COLD_CALL_MS);
	json_object_put(q);
	for (i = 0; i < ferryd->conf.npeers; i++) {
		struct json_object *v;

		if (all[i].rep && json_object_object_get_ex(all[i].rep, "free_memory_mib", &v) &&
		    json_object_get_uint64(v) > best_free) {
			best_free = json_object_get_uint64(v);
			snprintf(m->dst_host, sizeof(m->dst_host), "%s", all[i].host);
		}
		json_object_put(all[i].rep);
	}
	if (!m->dst_host[0]) {
		snprintf(err, errlen, "vm %s: no reachable destination host", m->vm);
		return -EHOSTUNREACH;
	}
	return 0;
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
		req = rpc_req("cold.xfer_open", m);
		json_object_object_add(req, "disk", json_object_new_int(disk));
		json_object_object_add(req, "backing", json_object_new_boolean(true));
		json_object_object_add(req, "src_instances_dir",
				       json_object_new_string(ferryd->conf.instances_dir));
		json_object_object_add(req, "size", json_object_new_uint64(size));
		rep = cold_call(m, req, false, err, errlen);
		if (!rep)
			return -errno;
		if (!rpc_str(rep, "token") || hex_decode(rpc_str(rep, "token"), token, 32) ||
		    !rpc_str(rep, "path") || !json_object_object_get_ex(rep, "port", &v)) {
			json_object_put(rep);
			snprintf(err, errlen, "%s: bad xfer_open reply", m->dst_host);
			return -EPROTO;
		}
		snprintf(bk_id, sizeof(bk_id), "%s-%s-backing", m->id, m->disks[disk].target);
		ret = xfer_send(m, m->disks[disk].backing, rpc_str(rep, "path"), bk_id,
				m->dst_host, (uint16_t)json_object_get_int(v), token, NULL, -1, err,
				errlen);
		json_object_put(rep);
		if (ret)
			return ret;
	}
	return 0;
}

int cold_prep(struct migration *m, char *err, size_t errlen)
{
	struct json_object *req, *rep, *disks, *need = NULL;
	size_t i;
	int ret;

	req = rpc_req("cold.prep", m);
	mig_lock(m);
	json_object_object_add(req, "migration", mig_to_json(m, true));
	mig_unlock(m);
	json_object_object_add(req, "src_instances_dir",
			       json_object_new_string(ferryd->conf.instances_dir));
	rep = cold_call(m, req, false, err, errlen);
	if (!rep)
		return -errno;
	/* The destination chose where each disk goes. */
	mig_lock(m);
	if (json_object_object_get_ex(rep, "dst_paths", &disks)) {
		for (i = 0; i < json_object_array_length(disks) && (int)i < m->ndisks; i++)
			snprintf(m->disks[i].dst_path, sizeof(m->disks[i].dst_path), "%s",
				 json_object_get_string(json_object_array_get_idx(disks, i)));
	}
	if (rpc_str(rep, "dst_inst_dir"))
		snprintf(m->dst_inst_dir, sizeof(m->dst_inst_dir), "%s",
			 rpc_str(rep, "dst_inst_dir"));
	mig_unlock(m);
	json_object_object_get_ex(rep, "need_backing", &need);
	ret = mig_save(m);
	if (!ret)
		ret = cold_backing(m, need, err, errlen);
	json_object_put(rep);
	return ret;
}

