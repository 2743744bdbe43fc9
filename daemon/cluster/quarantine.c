// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * quarantine.c - a stale copy of a VM is moved aside, never destroyed.
 *
 * A copy is stale when the cluster's record has the VM on another host or
 * at a newer generation (records.c): its host was evacuated while it was
 * away.  Nova deletes such a copy's domain, disks and instance folder when
 * its compute service starts again; ferry keeps them for the operator:
 *   - a copy still running is destroyed (the VM runs elsewhere now; on
 *     shared storage two QEMUs would write one disk);
 *   - its definition goes to DIR/domain.xml, where DIR is
 *     instances_dir/.ferry-quarantine/VM-gGEN-TIME (on the disks' own file
 *     system, so that moving them is a rename);
 *   - its local disks are renamed into DIR; disks on shared storage are
 *     never touched (the VM's owner uses them), nor those that cannot be
 *     renamed there (another file system, a block device): each is listed
 *     with where it is;
 *   - DIR/quarantine.json says all of it, the domain is undefined, and the
 *     same manifest goes to etcd at /ferry/quarantine/HOST/ID.
 * `ferry quarantine list` shows every host's, `purge ID` deletes one (the
 * only deletion), `restore ID --as NAME` defines it again as a new VM.
 */
#include <dirent.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/cluster/cluster.h"
#include "daemon/storage/storage.h"

#define QUAR_DIR ".ferry-quarantine"

static void quar_root(char *out, size_t len)
{
	snprintf(out, len, "%s/%s", ferryd->conf.instances_dir, QUAR_DIR);
}

static void quar_key(const char *host, const char *id, char *out, size_t len)
{
	snprintf(out, len, "%s%s/%s", QUAR_PREFIX, host, id);
}

/* An id is a directory name of ours: no '/', no dot first. */
static bool quar_id_ok(const char *id)
{
	return id && *id && *id != '.' && !strchr(id, '/') && strlen(id) < 128;
}

int quarantine_take(const char *vm, const char *owner, int64_t gen, int64_t here_gen,
		    bool shared)
{
	struct json_object *man = NULL, *disks;
	char root[PATH_MAX], dir[PATH_MAX + 160], path[PATH_MAX + 200], id[160], key[300];
	struct domxml_info info;
	enum virt_power pw;
	char *xml = NULL;
	const char *s;
	int i, ret;

	if (!virt_domain_state(ferryd->virt, vm, &pw) && (pw == VIRT_RUNNING || pw == VIRT_PAUSED)) {
		ret = virt_domain_destroy(ferryd->virt, vm);
		log_warn("quarantine: vm %s (generation %lld) was running here while the record "
			 "has it on %s (generation %lld): %s",
			 vm, (long long)here_gen, owner, (long long)gen,
			 ret ? "cannot destroy it" : "destroyed");
		if (ret)
			return ret;
	}
	xml = virt_domain_xml(ferryd->virt, vm);
	if (!xml)
		return -errno;
	if (domxml_parse(xml, &info)) {
		free(xml);
		return -EINVAL;
	}
	quar_root(root, sizeof(root));
	snprintf(id, sizeof(id), "%s-g%lld-%llu", vm, (long long)here_gen,
		 (unsigned long long)wall_ms());
	snprintf(dir, sizeof(dir), "%s/%s", root, id);
	ret = mkdir_p(dir, 0700);
	if (ret)
		goto out;
	snprintf(path, sizeof(path), "%s/domain.xml", dir);
	ret = file_write_atomic(path, xml, strlen(xml), 0600);
	if (ret)
		goto out;
	man = json_object_new_object();
	json_object_object_add(man, "id", json_object_new_string(id));
	json_object_object_add(man, "vm", json_object_new_string(vm));
	json_object_object_add(man, "host", json_object_new_string(ferryd->conf.host));
	json_object_object_add(man, "generation", json_object_new_int64(here_gen));
	json_object_object_add(man, "record_owner", json_object_new_string(owner));
	json_object_object_add(man, "record_generation", json_object_new_int64(gen));
	json_object_object_add(man, "when_ms", json_object_new_uint64(wall_ms()));
	json_object_object_add(man, "dir", json_object_new_string(dir));
	disks = json_object_new_array();
	for (i = 0; i < info.ndisks; i++) {
		const struct domxml_disk *d = &info.disks[i];
		struct json_object *j = json_object_new_object();
		char base[PATH_MAX];
		const char *how;

		snprintf(base, sizeof(base), "%s", d->path);
		snprintf(path, sizeof(path), "%s/%s-%s", dir, d->target, basename(base));
		if (shared) {
			how = "shared: left in place";
		} else if (strcmp(d->type, "file")) {
			how = "not a file: left in place";
		} else if (rename(d->path, path) == 0) {
			how = "moved";
		} else {
			how = errno == ENOENT ? "missing" : "cannot be renamed here: left in place";
		}
		json_object_object_add(j, "target", json_object_new_string(d->target));
		json_object_object_add(j, "path", json_object_new_string(d->path));
		json_object_object_add(j, "kept", json_object_new_string(strcmp(how, "moved") ? d->path : path));
		json_object_object_add(j, "how", json_object_new_string(how));
		json_object_array_add(disks, j);
	}
	json_object_object_add(man, "disks", disks);
	s = json_object_to_json_string_ext(man, JSON_C_TO_STRING_PRETTY);
	snprintf(path, sizeof(path), "%s/quarantine.json", dir);
	ret = file_write_atomic(path, s, strlen(s), 0600);
	if (ret)
		goto out;
	ret = virt_domain_undefine(ferryd->virt, vm);
	if (ret)
		goto out;
	quar_key(ferryd->conf.host, id, key, sizeof(key));
	if (ferryd->etcd &&
	    etcd_put(ferryd->etcd, key, json_object_to_json_string_ext(man, JSON_C_TO_STRING_PLAIN), 0))
		log_warn("quarantine: %s: not in etcd yet: %s", id, etcd_error(ferryd->etcd));
	log_warn("quarantine: vm %s (generation %lld) is stale here (the record has it on %s, "
		 "generation %lld): moved to %s and undefined; nothing deleted",
		 vm, (long long)here_gen, owner, (long long)gen, dir);
out:
	if (ret)
		log_err("quarantine: vm %s: %s: %s", vm, dir, strerror(-ret));
	json_object_put(man);
	free(xml);
	return ret;
}

static struct json_object *quar_manifest(const char *id)
{
	char root[PATH_MAX], path[PATH_MAX + 300];

	if (!quar_id_ok(id))
		return NULL;
	quar_root(root, sizeof(root));
	snprintf(path, sizeof(path), "%s/%s/quarantine.json", root, id);
	return json_object_from_file(path);
}

struct json_object *quarantine_list(char *err, size_t errlen)
{
	struct json_object *arr = json_object_new_array();
	struct etcd_kv *kv = NULL;
	int i, n = 0;

	if (!ferryd->etcd) {
		/* This host's only. */
		char root[PATH_MAX];
		struct dirent *de;
		DIR *d;

		quar_root(root, sizeof(root));
		d = opendir(root);
		while (d && (de = readdir(d))) {
			struct json_object *m = de->d_name[0] != '.' ? quar_manifest(de->d_name) : NULL;

			if (m)
				json_object_array_add(arr, m);
		}
		if (d)
			closedir(d);
		return arr;
	}
	if (etcd_get(ferryd->etcd, QUAR_PREFIX, true, &kv, &n, NULL)) {
		snprintf(err, errlen, "quarantine: %s", etcd_error(ferryd->etcd));
		json_object_put(arr);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		struct json_object *m = json_tokener_parse(kv[i].value);

		if (m && json_object_is_type(m, json_type_object))
			json_object_array_add(arr, m);
		else
			json_object_put(m);
	}
	etcd_kvs_free(kv, n);
	return arr;
}

int quarantine_purge(const char *id, char *err, size_t errlen)
{
	struct json_object *m = quar_manifest(id);
	char key[300];
	int ret;

	if (!m) {
		snprintf(err, errlen, "quarantine: no %s on %s", id ?: "?", ferryd->conf.host);
		return -ENOENT;
	}
	ret = inst_dir_remove(rpc_str(m, "dir"));
	json_object_put(m);
	if (ret) {
		snprintf(err, errlen, "quarantine: %s: cannot remove it: %s", id, strerror(-ret));
		return ret;
	}
	quar_key(ferryd->conf.host, id, key, sizeof(key));
	if (ferryd->etcd && etcd_delete(ferryd->etcd, key))
		log_warn("quarantine: %s: still in etcd: %s", id, etcd_error(ferryd->etcd));
	log_warn("quarantine: %s purged (deleted) by the operator", id);
	return 0;
}

int quarantine_restore(const char *id, const char *name, char *err, size_t errlen)
{
	struct json_object *m = quar_manifest(id), *disks;
	struct mig_disk md[FERRYD_MAX_DISKS] = {};
	char path[PATH_MAX + 300], dir[PATH_MAX + 80], *xml = NULL, *x1 = NULL, *x2 = NULL;
	struct flavor fl = {};
	enum virt_power pw;
	int i, n = 0, ret;

	if (!m) {
		snprintf(err, errlen, "quarantine: no %s on %s", id ?: "?", ferryd->conf.host);
		return -ENOENT;
	}
	if (!name || !*name || strchr(name, '/') || strlen(name) >= FERRY_NAME_MAX) {
		snprintf(err, errlen, "quarantine restore %s: need --as NAME, a new VM's name", id);
		ret = -EINVAL;
		goto out;
	}
	if (virt_domain_state(ferryd->virt, name, &pw) != -ENOENT) {
		snprintf(err, errlen, "quarantine restore %s: vm %s exists here", id, name);
		ret = -EEXIST;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/domain.xml", rpc_str(m, "dir"));
	xml = file_read_all(path, 16u << 20, NULL);
	if (!xml) {
		snprintf(err, errlen, "quarantine restore %s: %s: %s", id, path, strerror(errno));
		ret = -errno;
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/%s", ferryd->conf.instances_dir, name);
	ret = mkdir_p(dir, 0755);
	if (ret)
		goto out;
	disks = json_object_object_get(m, "disks");
	for (i = 0; disks && i < (int)json_object_array_length(disks); i++) {
		const char *how = rpc_str(json_object_array_get_idx(disks, i), "how") ?: "";

		if (strcmp(how, "moved") && strcmp(how, "missing")) {
			snprintf(err, errlen, "quarantine restore %s: disk %s was not moved aside (%s): "
					      "a new VM on it would share it with %s's",
				 id, rpc_str(json_object_array_get_idx(disks, i), "target") ?: "?",
				 how, rpc_str(m, "vm") ?: "the VM");
			ret = -EBUSY;
			goto out;
		}
	}
	for (i = 0; disks && i < (int)json_object_array_length(disks) && n < FERRYD_MAX_DISKS; i++) {
		struct json_object *d = json_object_array_get_idx(disks, i);
		struct mig_disk *x = &md[n];

		if (strcmp(rpc_str(d, "how") ?: "", "moved"))
			continue; /* in place: the definition already names it */
		const char *tgt = rpc_str(d, "target") ?: "";

		snprintf(x->target, sizeof(x->target), "%s", tgt);
		snprintf(x->backend, sizeof(x->backend), "%s", disk_file_ops.name);
		snprintf(x->dst_path, sizeof(x->dst_path), "%s/%s", dir, tgt);
		if (rename(rpc_str(d, "kept"), x->dst_path)) {
			ret = -errno;
			snprintf(err, errlen, "quarantine restore %s: disk %s: %s", id, x->target,
				 strerror(errno));
			goto out;
		}
		n++;
	}
	x1 = domxml_adapt(xml, &fl, md, n);
	x2 = x1 ? domxml_rename(x1, name) : NULL;
	ret = x2 ? virt_domain_define(ferryd->virt, x2) : -EINVAL;
	if (ret) {
		snprintf(err, errlen, "quarantine restore %s: define %s: %s", id, name, strerror(-ret));
		goto out;
	}
	log_warn("quarantine: %s restored as a new vm %s (its disks in %s)", id, name, dir);
	ret = quarantine_purge(id, err, errlen); /* what is left: the manifest and XML */
out:
	json_object_put(m);
	free(xml);
	free(x1);
	free(x2);
	return ret;
}
