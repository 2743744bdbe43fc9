// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * records.c - the cluster's record of each VM, on etcd: /ferry/vms/NAME.
 *
 * A record holds what a rebuild elsewhere needs (the inactive definition,
 * the disks and whether each is on shared storage, the flavor, the power
 * state), its owner host and a generation.  The owner writes it; the
 * generation grows by one at every change of owner, and the owner also
 * writes it into the domain's definition (metadata element <ferry:owner
 * host= generation=> in VMREC_META_URI), so that a copy found on a host
 * tells which generation it is.
 *
 * Each host keeps the records of the domains defined on it current, from
 * one thread: on libvirt's lifecycle events, when a flow ends, and every
 * VMREC_RESYNC_S.  Every write is a transaction on the record's revision
 * as read, so that two hosts never both change one record unseen.  For a
 * domain defined here:
 *   - no record: this host creates it, generation 1;
 *   - a record this host owns: brought up to date;
 *   - a record another host owns, and the last operation on the VM here
 *     (none in progress) moved it between that host and this one: this host
 *     takes it, generation + 1 (a migration, live or cold, that ended with
 *     the VM defined here);
 *   - otherwise the copy here is stale (the record moved on without this
 *     host, as after an evacuation): said once, and nothing is written.
 * A record is never deleted here: an undefined VM's record says so
 * ("power": "undefined") and keeps its generation, which must only grow.
 * Nothing is written while this host is out of the cluster.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>

#include "daemon/cluster/cluster.h"
#include "daemon/storage/storage.h"

#define VMREC_RESYNC_S 30
#define VMREC_QUEUE 64
#define VMREC_STALE_MAX 64

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thr;
	bool running;
	bool all;                       /* a full pass is due */
	char queue[VMREC_QUEUE][FERRY_NAME_MAX];
	int nqueue;
	/* copies here the record does not own: (vm, generation) said */
	struct vmrec_stale stale[VMREC_STALE_MAX];
	int nstale;
	uint64_t writes, claims, conflicts;
} vr = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

void vmrec_key(const char *vm, char *key, size_t len)
{
	snprintf(key, len, "%s%s", VMREC_PREFIX, vm);
}

void vmrec_kick(const char *vm)
{
	int i;

	pthread_mutex_lock(&vr.lock);
	if (!vm) {
		vr.all = true;
	} else {
		for (i = 0; i < vr.nqueue && strcmp(vr.queue[i], vm); i++)
			;
		if (i == vr.nqueue) {
			if (vr.nqueue < VMREC_QUEUE)
				snprintf(vr.queue[vr.nqueue++], FERRY_NAME_MAX, "%s", vm);
			else
				vr.all = true;
		}
	}
	pthread_cond_signal(&vr.cond);
	pthread_mutex_unlock(&vr.lock);
}

/* ---- the record's content ----------------------------------------------- */

/*
 * Whether this host's instances dir is shared: another host's marker is in
 * it (each host leaves .ferry-host-NAME there at start, as Nova's test file
 * tells shared storage).
 */
static bool vmrec_instances_shared(void)
{
	char self[FERRY_NAME_MAX + 16];
	struct dirent *de;
	bool shared = false;
	DIR *d;

	snprintf(self, sizeof(self), ".ferry-host-%s", ferryd->conf.host);
	d = opendir(ferryd->conf.instances_dir);
	if (!d)
		return false;
	while (!shared && (de = readdir(d)))
		shared = !strncmp(de->d_name, ".ferry-host-", 12) && strcmp(de->d_name, self);
	closedir(d);
	return shared;
}

static void vmrec_marker(void)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/.ferry-host-%s", ferryd->conf.instances_dir,
		 ferryd->conf.host);
	f = fopen(path, "we");
	if (f)
		fclose(f);
}

/*
 * The definition as the record keeps it: without our own <ferry:owner>
 * element, whose generation the record holds itself (and which is written
 * after the record), so that setting it does not change the record.
 */
static void vmrec_xml_strip(char *xml)
{
	char *p = strstr(xml, "<ferry:owner xmlns:ferry=\"" VMREC_META_URI "\""), *e;

	if (!p || !(e = strstr(p, "/>")))
		return;
	e += 2;
	while (p > xml && (p[-1] == ' ' || p[-1] == '\t'))
		p--;
	if (*e == '\n')
		e++;
	memmove(p, e, strlen(e) + 1);
}

/* The record for @vm as this host sees it (owner and generation given). */
static struct json_object *vmrec_build(const struct virt_domain_info *di, const char *owner,
				       int64_t gen)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	size_t n = strlen(ferryd->conf.instances_dir);
	bool shared = vmrec_instances_shared();
	struct domxml_info info;
	char base[PATH_MAX];
	uint64_t vbytes;
	char *xml;
	int i;

	json_object_object_add(o, "vm", json_object_new_string(di->name));
	json_object_object_add(o, "uuid", json_object_new_string(di->uuid));
	json_object_object_add(o, "owner", json_object_new_string(owner));
	json_object_object_add(o, "generation", json_object_new_int64(gen));
	json_object_object_add(o, "power", json_object_new_string(virt_power_name(di->state)));
	json_object_object_add(o, "vcpus", json_object_new_int(di->vcpus));
	json_object_object_add(o, "memory_mib", json_object_new_uint64(di->memory_mib));
	xml = virt_domain_xml(ferryd->virt, di->name);
	if (xml && !domxml_parse(xml, &info)) {
		for (i = 0; i < info.ndisks; i++) {
			const struct domxml_disk *d = &info.disks[i];
			struct json_object *j = json_object_new_object();
			bool in_dir = !strcmp(d->type, "file") &&
				      !strncmp(d->path, ferryd->conf.instances_dir, n) &&
				      d->path[n] == '/';

			json_object_object_add(j, "target", json_object_new_string(d->target));
			json_object_object_add(j, "type", json_object_new_string(d->type));
			json_object_object_add(j, "format", json_object_new_string(d->format));
			json_object_object_add(j, "path", json_object_new_string(d->path));
			json_object_object_add(j, "shared", json_object_new_boolean(shared && in_dir));
			json_object_object_add(j, "swap", json_object_new_boolean(d->swap));
			/* Size, and the base image a rebuild without the disk starts from. */
			if (!disk_image_info(d->path, d->format, &vbytes, base, sizeof(base))) {
				json_object_object_add(j, "size_bytes", json_object_new_uint64(vbytes));
				if (base[0])
					json_object_object_add(j, "backing",
							       json_object_new_string(base));
			}
			json_object_array_add(arr, j);
		}
	}
	json_object_object_add(o, "disks", arr);
	if (xml)
		vmrec_xml_strip(xml);
	json_object_object_add(o, "xml", json_object_new_string(xml ? xml : ""));
	free(xml);
	return o;
}

/* What the last change of owner said of itself, kept while the owner stays. */
static void vmrec_keep_history(struct json_object *rec, struct json_object *old)
{
	static const char *const keys[] = { "evacuated_from", "evacuation", "data_lost" };
	struct json_object *v;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(keys); i++)
		if (json_object_object_get_ex(old, keys[i], &v))
			json_object_object_add(rec, keys[i], json_object_get(v));
}

/* The same record, leaving out when and by whom it was written. */
static bool vmrec_same(struct json_object *a, struct json_object *b)
{
	struct json_object *x = NULL, *y = NULL;
	bool same;

	if (json_object_deep_copy(a, &x, NULL) || json_object_deep_copy(b, &y, NULL)) {
		json_object_put(x);
		json_object_put(y);
		return false;
	}
	json_object_object_del(x, "updated_ms");
	json_object_object_del(y, "updated_ms");
	json_object_object_del(x, "updated_by");
	json_object_object_del(y, "updated_by");
	same = json_object_equal(x, y);
	json_object_put(x);
	json_object_put(y);
	return same;
}

/* ---- writing ------------------------------------------------------------- */

/* Write @rec as @vm's record if it is still at revision @rev (0: if there
 * is none); -ESTALE when it changed. */
static int vmrec_write(const char *vm, struct json_object *rec, int64_t rev)
{
	struct etcd_cmp cmp = { .what = rev ? ETCD_CMP_MOD : ETCD_CMP_CREATE, .revision = rev };
	struct etcd_op op = {};
	char key[128];
	int ret;

	vmrec_key(vm, key, sizeof(key));
	json_object_object_add(rec, "updated_ms", json_object_new_uint64(wall_ms()));
	json_object_object_add(rec, "updated_by", json_object_new_string(ferryd->conf.host));
	cmp.key = op.key = key;
	op.value = json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN);
	ret = etcd_txn(ferryd->etcd, &cmp, 1, &op, 1);
	pthread_mutex_lock(&vr.lock);
	if (!ret)
		vr.writes++;
	else if (ret == -ESTALE)
		vr.conflicts++;
	pthread_mutex_unlock(&vr.lock);
	return ret;
}

/* <ferry:owner host= generation=/> in the definition, when it differs. */
int vmrec_meta_set(const char *vm, int64_t gen)
{
	char *cur = virt_domain_meta_get(ferryd->virt, vm, VMREC_META_URI), want[256];
	int ret = 0;

	snprintf(want, sizeof(want), "<owner host='%s' generation='%lld'/>", ferryd->conf.host,
		 (long long)gen);
	if (vmrec_meta_of(cur, ferryd->conf.host) != gen)
		ret = virt_domain_meta_set(ferryd->virt, vm, VMREC_META_URI, "ferry", want);
	free(cur);
	return ret;
}

int64_t vmrec_meta_of(const char *meta, const char *host)
{
	char want[FERRY_NAME_MAX + 16];

	snprintf(want, sizeof(want), "host=\"%s\"", host);
	return meta && strstr(meta, want) ? vmrec_meta_generation(meta) : 0;
}

int64_t vmrec_meta_generation(const char *meta)
{
	const char *g = meta ? strstr(meta, "generation=") : NULL;

	if (!g)
		return 0;
	g += strlen("generation=");
	if (*g == '\'' || *g == '"')
		g++;
	return strtoll(g, NULL, 10);
}

/* Say once that the copy of @vm here is stale; remember it for `ferry vms`. */
static void vmrec_stale_note(const char *vm, const char *owner, int64_t gen, int64_t here_gen)
{
	int i;

	pthread_mutex_lock(&vr.lock);
	for (i = 0; i < vr.nstale; i++)
		if (!strcmp(vr.stale[i].vm, vm))
			break;
	if (i < vr.nstale && vr.stale[i].generation == gen && !strcmp(vr.stale[i].owner, owner)) {
		pthread_mutex_unlock(&vr.lock);
		return;
	}
	if (i == vr.nstale && vr.nstale < VMREC_STALE_MAX)
		vr.nstale++;
	if (i < vr.nstale) {
		snprintf(vr.stale[i].vm, sizeof(vr.stale[i].vm), "%s", vm);
		snprintf(vr.stale[i].owner, sizeof(vr.stale[i].owner), "%s", owner);
		vr.stale[i].generation = gen;
		vr.stale[i].here_generation = here_gen;
	}
	pthread_mutex_unlock(&vr.lock);
	log_warn("records: vm %s here is stale: the cluster's record has it on %s, generation "
		 "%lld (this copy: generation %lld); left as it is",
		 vm, owner, (long long)gen, (long long)here_gen);
}

static void vmrec_stale_forget(const char *vm)
{
	int i;

	pthread_mutex_lock(&vr.lock);
	for (i = 0; i < vr.nstale; i++)
		if (!strcmp(vr.stale[i].vm, vm)) {
			vr.stale[i] = vr.stale[--vr.nstale];
			break;
		}
	pthread_mutex_unlock(&vr.lock);
}

/*
 * Was the copy of @vm here moved from its owner?  Both must hold:
 *   - the copy is the record's current one: its metadata names the owner
 *     and generation the record has (it came with the definition from the
 *     owner; a copy an earlier owner left behind names an older one);
 *   - the last operation on @vm here ran between the owner and this host
 *     and ended with the VM here (its flow says where).
 * (Called with the domain defined here and no operation on it in progress.)
 */
static bool vmrec_moved_here(const char *vm, const char *owner, int64_t gen, const char *meta)
{
	struct migration *m = store_latest_for_vm(vm);
	const char *self = ferryd->conf.host, *on;
	bool ok;

	if (!m || !m->flow || !m->flow->vm_host || vmrec_meta_of(meta, owner) != gen)
		return false;
	mig_lock(m);
	on = mig_terminal(m) ? m->flow->vm_host(m) : NULL;
	ok = on && !strcmp(on, self) &&
	     (!strcmp(m->src_host, owner) || !strcmp(m->dst_host, owner));
	mig_unlock(m);
	return ok;
}

int vmrec_get(const char *vm, struct json_object **rec, int64_t *rev, char *err, size_t errlen)
{
	struct etcd_kv *kv = NULL;
	char key[128];
	int n = 0, ret;

	*rec = NULL;
	*rev = 0;
	if (!ferryd->etcd) {
		snprintf(err, errlen, "vm %s: no cluster record (etcd) on %s", vm, ferryd->conf.host);
		return -ENOTCONN;
	}
	vmrec_key(vm, key, sizeof(key));
	ret = etcd_get(ferryd->etcd, key, false, &kv, &n, NULL);
	if (ret) {
		snprintf(err, errlen, "vm %s: the cluster's record: %s", vm,
			 etcd_error(ferryd->etcd));
		return ret;
	}
	if (!n) {
		snprintf(err, errlen, "vm %s: no record in the cluster (InstanceNotFound)", vm);
		return -ENOENT;
	}
	*rec = json_tokener_parse(kv[0].value);
	*rev = kv[0].mod_revision;
	etcd_kvs_free(kv, n);
	if (!*rec || !json_object_is_type(*rec, json_type_object)) {
		json_object_put(*rec);
		*rec = NULL;
		snprintf(err, errlen, "vm %s: its record in etcd (%s) is not a JSON object", vm, key);
		return -EPROTO;
	}
	return 0;
}

static void vmrec_sync(const char *vm, const struct virt_domain_info *di)
{
	struct json_object *old = NULL, *rec = NULL;
	const char *owner;
	int64_t gen, here_gen, rev;
	char err[256];
	bool moved;
	char *meta;
	int ret;

	ret = vmrec_get(vm, &old, &rev, err, sizeof(err));
	if (ret == -EPROTO) {
		log_warn("records: %s; left as it is", err);
		return;
	}
	if (ret && ret != -ENOENT) {
		log_debug(LOG_SUB_CLUSTER, "records: %s", err);
		return;
	}
	if (!di) {
		/* Not defined here: say so in a record we own, nothing else. */
		if (!old || strcmp(rpc_str(old, "owner") ?: "", ferryd->conf.host) ||
		    !strcmp(rpc_str(old, "power") ?: "", "undefined") || store_active_for_vm(vm))
			goto out;
		if (json_object_deep_copy(old, &rec, NULL))
			goto out;
		json_object_object_add(rec, "power", json_object_new_string("undefined"));
		if (!vmrec_write(vm, rec, rev))
			log_info("records: vm %s is no longer defined here (record kept, "
				 "generation %lld)", vm, (long long)rpc_int(old, "generation", 0));
		goto out;
	}
	if (store_active_for_vm(vm))
		goto out; /* in flight: its end brings another pass */
	if (!old) {
		rec = vmrec_build(di, ferryd->conf.host, 1);
		ret = vmrec_write(vm, rec, 0);
		if (!ret) {
			log_info("records: vm %s: record created, owner %s, generation 1", vm,
				 ferryd->conf.host);
			vmrec_meta_set(vm, 1);
		}
		goto out;
	}
	owner = rpc_str(old, "owner") ?: "";
	gen = rpc_int(old, "generation", 0);
	if (!strcmp(owner, ferryd->conf.host)) {
		rec = vmrec_build(di, owner, gen);
		vmrec_keep_history(rec, old);
		if (!vmrec_same(rec, old) && !vmrec_write(vm, rec, rev))
			log_debug(LOG_SUB_CLUSTER, "records: vm %s: record updated", vm);
		vmrec_meta_set(vm, gen);
		vmrec_stale_forget(vm);
		goto out;
	}
	meta = virt_domain_meta_get(ferryd->virt, vm, VMREC_META_URI);
	here_gen = vmrec_meta_generation(meta);
	moved = vmrec_moved_here(vm, owner, gen, meta);
	free(meta);
	if (moved) {
		rec = vmrec_build(di, ferryd->conf.host, gen + 1);
		ret = vmrec_write(vm, rec, rev);
		if (!ret) {
			pthread_mutex_lock(&vr.lock);
			vr.claims++;
			pthread_mutex_unlock(&vr.lock);
			log_info("records: vm %s moved here from %s: owner %s, generation %lld", vm,
				 owner, ferryd->conf.host, (long long)gen + 1);
			vmrec_meta_set(vm, gen + 1);
			vmrec_stale_forget(vm);
		} else if (ret == -ESTALE) {
			vmrec_kick(vm); /* changed under us: look again */
		}
		goto out;
	}
	vmrec_stale_note(vm, owner, gen, here_gen);
	if (!quarantine_take(vm, owner, gen, here_gen, vmrec_instances_shared()))
		vmrec_stale_forget(vm);
out:
	json_object_put(rec);
	json_object_put(old);
}

/* One pass: every domain defined here, and every record that names us. */
static void vmrec_sync_all(void)
{
	struct virt_domain_info *doms = NULL;
	struct etcd_kv *kv = NULL;
	int i, j, n = 0, nk = 0;

	if (virt_domain_list(ferryd->virt, &doms, &n))
		return;
	for (i = 0; i < n; i++)
		if (doms[i].persistent)
			vmrec_sync(doms[i].name, &doms[i]);
	if (!etcd_get(ferryd->etcd, VMREC_PREFIX, true, &kv, &nk, NULL)) {
		for (j = 0; j < nk; j++) {
			const char *vm = kv[j].key + strlen(VMREC_PREFIX);

			struct json_object *o;

			for (i = 0; i < n && (!doms[i].persistent || strcmp(doms[i].name, vm)); i++)
				;
			if (i < n)
				continue;
			o = json_tokener_parse(kv[j].value);
			if (o && !strcmp(rpc_str(o, "owner") ?: "", ferryd->conf.host))
				vmrec_sync(vm, NULL);
			json_object_put(o);
		}
		etcd_kvs_free(kv, nk);
	}
	free(doms);
}

static void vmrec_sync_name(const char *vm)
{
	struct virt_domain_info *doms = NULL, *di = NULL;
	int i, n = 0;

	if (virt_domain_list(ferryd->virt, &doms, &n))
		return;
	for (i = 0; i < n; i++)
		if (doms[i].persistent && !strcmp(doms[i].name, vm))
			di = &doms[i];
	vmrec_sync(vm, di);
	free(doms);
}

static void *vmrec_thread(void *arg)
{
	char vm[FERRY_NAME_MAX];
	struct member_state st;
	uint64_t next_all = 0;
	struct timespec ts;
	bool all;

	(void)arg;
	pthread_mutex_lock(&vr.lock);
	while (vr.running && !ferryd->stopping) {
		if (!vr.all && !vr.nqueue && now_ms() < next_all) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&vr.cond, &vr.lock, &ts);
			continue;
		}
		member_state_get(&st);
		if (!st.alive) {
			/* Out of the cluster: no record is ours to write.  Later. */
			pthread_mutex_unlock(&vr.lock);
			usleep(200 * 1000);
			pthread_mutex_lock(&vr.lock);
			continue;
		}
		all = vr.all || now_ms() >= next_all;
		if (all) {
			vr.all = false;
			vr.nqueue = 0;
			next_all = now_ms() + VMREC_RESYNC_S * 1000;
			pthread_mutex_unlock(&vr.lock);
			vmrec_sync_all();
		} else {
			snprintf(vm, sizeof(vm), "%s", vr.queue[--vr.nqueue]);
			pthread_mutex_unlock(&vr.lock);
			vmrec_sync_name(vm);
		}
		pthread_mutex_lock(&vr.lock);
	}
	pthread_mutex_unlock(&vr.lock);
	return NULL;
}

static void vmrec_on_event(const char *vm, const char *event)
{
	log_debug(LOG_SUB_CLUSTER, "records: libvirt: %s %s", vm ? vm : "(connection)", event);
	vmrec_kick(vm);
}

int vmrec_start(void)
{
	int ret;

	if (!ferryd->etcd)
		return 0;
	vmrec_marker();
	vr.running = true;
	vr.all = true;
	ret = -pthread_create(&vr.thr, NULL, vmrec_thread, NULL);
	if (ret) {
		vr.running = false;
		log_err("records: thread: %s", strerror(-ret));
		return ret;
	}
	engine_on_end(vmrec_kick);
	if (virt_events_start(ferryd->virt, vmrec_on_event))
		log_warn("records: no libvirt events: VM records follow every %d s only",
			 VMREC_RESYNC_S);
	return 0;
}

void vmrec_stop(void)
{
	virt_events_stop();
	if (!vr.running)
		return;
	pthread_mutex_lock(&vr.lock);
	vr.running = false;
	pthread_cond_signal(&vr.cond);
	pthread_mutex_unlock(&vr.lock);
	pthread_join(vr.thr, NULL);
}

int vmrec_stale_list(struct vmrec_stale *out, int max)
{
	int n;

	pthread_mutex_lock(&vr.lock);
	n = MIN(vr.nstale, max);
	memcpy(out, vr.stale, (size_t)n * sizeof(*out));
	pthread_mutex_unlock(&vr.lock);
	return n;
}
