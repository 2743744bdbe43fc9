// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * virt.c - everything ferryd asks of the local hypervisor goes through here,
 * and through libvirt only.  libvirt's own error messages are routed into
 * ferry's logger; callers get -errno and the message is logged once, naming
 * the domain.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/libvirt-qemu.h>
#include <libvirt/virterror.h>

#include "daemon/host/host.h"

struct virt {
	char uri[256];
	pthread_mutex_t lock; /* conn (re)opening */
	virConnectPtr conn;
};

static void virt_error_cb(void *opaque, virErrorPtr err)
{
	/* Callers report failures with context; keep libvirt's text for -v. */
	log_debug(LOG_SUB_VIRT, "libvirt: %s", err && err->message ? err->message : "?");
}

static const char *virt_errmsg(void)
{
	const char *m = virGetLastErrorMessage();

	return m ? m : "unknown libvirt error";
}

static int virt_errno(void)
{
	virErrorPtr e = virGetLastError();

	if (!e)
		return -EIO;
	switch (e->code) {
	case VIR_ERR_NO_DOMAIN:
		return -ENOENT;
	case VIR_ERR_OPERATION_INVALID:
		return -EINVAL;
	case VIR_ERR_OPERATION_TIMEOUT:
		return -ETIMEDOUT;
	case VIR_ERR_RESOURCE_BUSY: /* a lock manager's lease (sanlock) held elsewhere */
		return -EBUSY;
	case VIR_ERR_NO_CONNECT:
	case VIR_ERR_SYSTEM_ERROR:
	case VIR_ERR_RPC:
		return -ECONNREFUSED;
	default:
		return -EIO;
	}
}

struct virt *virt_open(const char *uri)
{
	struct virt *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	snprintf(v->uri, sizeof(v->uri), "%s", uri);
	pthread_mutex_init(&v->lock, NULL);
	virSetErrorFunc(NULL, virt_error_cb);
	v->conn = virConnectOpen(uri);
	if (!v->conn) {
		log_err("libvirt %s: %s (is libvirtd running?)", uri, virt_errmsg());
		free(v);
		errno = ECONNREFUSED;
		return NULL;
	}
	return v;
}

void virt_close(struct virt *v)
{
	if (!v)
		return;
	if (v->conn)
		virConnectClose(v->conn);
	pthread_mutex_destroy(&v->lock);
	free(v);
}

/* The connection, reopened if libvirtd restarted under us. */
static virConnectPtr virt_conn(struct virt *v)
{
	virConnectPtr c;

	pthread_mutex_lock(&v->lock);
	if (v->conn && virConnectIsAlive(v->conn) != 1) {
		virConnectClose(v->conn);
		v->conn = NULL;
	}
	if (!v->conn) {
		v->conn = virConnectOpen(v->uri);
		if (!v->conn)
			log_err("libvirt %s: %s", v->uri, virt_errmsg());
	}
	c = v->conn;
	if (c)
		virConnectRef(c);
	pthread_mutex_unlock(&v->lock);
	return c;
}

static virDomainPtr virt_lookup(struct virt *v, const char *name, virConnectPtr *cp, int *err)
{
	virConnectPtr c = virt_conn(v);
	virDomainPtr d;

	*cp = c;
	if (!c) {
		*err = -ECONNREFUSED;
		return NULL;
	}
	d = virDomainLookupByName(c, name);
	if (!d)
		*err = virt_errno();
	return d;
}

static void virt_put(virConnectPtr c, virDomainPtr d)
{
	if (d)
		virDomainFree(d);
	if (c)
		virConnectClose(c);
}

static enum virt_power virt_power_of(int st)
{
	switch (st) {
	case VIR_DOMAIN_RUNNING:
		return VIRT_RUNNING;
	case VIR_DOMAIN_PAUSED:
	case VIR_DOMAIN_PMSUSPENDED:
		return VIRT_PAUSED;
	case VIR_DOMAIN_SHUTOFF:
	case VIR_DOMAIN_CRASHED:
		return VIRT_SHUTOFF;
	case VIR_DOMAIN_NOSTATE:
		return VIRT_NOSTATE;
	default:
		return VIRT_OTHER;
	}
}

const char *virt_power_name(enum virt_power p)
{
	static const char *const names[] = { "nostate", "running", "paused", "shutoff", "other" };

	return p <= VIRT_OTHER ? names[p] : "?";
}

/* State and reason; with arrived, whether an incoming migration is over. */
static int __virt_domain_state(struct virt *v, const char *name, enum virt_power *state,
			       bool *arrived)
{
	virDomainJobInfo ji;
	virConnectPtr c;
	virDomainPtr d;
	int st, reason, ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	if (virDomainGetState(d, &st, &reason, 0) < 0) {
		ret = virt_errno();
		log_err("vm %s: state: %s", name, virt_errmsg());
		goto out;
	}
	*state = virt_power_of(st);
	if (!arrived)
		goto out;
	/*
	 * Running: libvirt's Finish resumed it.  Paused by the user, with no
	 * job left: Finish ran and left it paused (VIR_MIGRATE_PAUSED).  Paused
	 * by the migration: the incoming job is still on.
	 */
	*arrived = st == VIR_DOMAIN_RUNNING ||
		   (st == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_USER &&
		    virDomainGetJobInfo(d, &ji) == 0 && ji.type == VIR_DOMAIN_JOB_NONE);
out:
	virt_put(c, d);
	return ret;
}

int virt_domain_state(struct virt *v, const char *name, enum virt_power *state)
{
	return __virt_domain_state(v, name, state, NULL);
}

int virt_domain_arrived(struct virt *v, const char *name, enum virt_power *state, bool *arrived)
{
	*arrived = false;
	return __virt_domain_state(v, name, state, arrived);
}

static char *__virt_domain_xml(struct virt *v, const char *name, unsigned int flags,
			       const char *what)
{
	virConnectPtr c;
	virDomainPtr d;
	char *xml = NULL;
	int ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	xml = virDomainGetXMLDesc(d, flags);
	if (!xml) {
		ret = virt_errno();
		log_err("vm %s: %s: %s", name, what, virt_errmsg());
	}
out:
	virt_put(c, d);
	if (!xml)
		errno = -ret;
	return xml;
}

char *virt_domain_xml(struct virt *v, const char *name)
{
	return __virt_domain_xml(v, name, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_MIGRATABLE,
				 "XML");
}

int virt_domain_define(struct virt *v, const char *xml)
{
	virConnectPtr c = virt_conn(v);
	virDomainPtr d;
	int ret = 0;

	if (!c)
		return -ECONNREFUSED;
	d = virDomainDefineXML(c, xml);
	if (!d) {
		ret = virt_errno();
		log_err("define domain: %s", virt_errmsg());
	}
	virt_put(c, d);
	return ret;
}

int virt_domain_start(struct virt *v, const char *name)
{
	virConnectPtr c;
	virDomainPtr d;
	int ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	if (virDomainIsActive(d) == 1)
		goto out;
	if (virDomainCreate(d) < 0) {
		ret = virt_errno();
		log_err("vm %s: start: %s", name, virt_errmsg());
	}
out:
	virt_put(c, d);
	return ret;
}

int virt_domain_destroy(struct virt *v, const char *name)
{
	virConnectPtr c;
	virDomainPtr d;
	int ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0) {
		ret = virt_errno();
		log_err("vm %s: destroy: %s", name, virt_errmsg());
	}
out:
	virt_put(c, d);
	return ret;
}

int virt_domain_poweroff(struct virt *v, const char *name, int timeout_s, int retries,
			 bool *forced)
{
	virConnectPtr c;
	virDomainPtr d;
	int ret = 0, attempt;

	*forced = false;
	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	for (attempt = 0; attempt <= retries; attempt++) {
		uint64_t deadline = now_ms() + (uint64_t)timeout_s * 1000 / (retries + 1);

		if (virDomainIsActive(d) != 1)
			goto out;
		if (virDomainShutdownFlags(d, VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN) < 0 &&
		    virDomainIsActive(d) == 1)
			log_warn("vm %s: shutdown request %d: %s", name, attempt + 1,
				 virt_errmsg());
		while (now_ms() < deadline) {
			if (virDomainIsActive(d) != 1)
				goto out;
			usleep(100 * 1000);
		}
		log_warn("vm %s: no clean shutdown after attempt %d", name, attempt + 1);
	}
	log_warn("vm %s: destroying after %d clean shutdown attempts", name, retries + 1);
	*forced = true;
	if (virDomainDestroy(d) < 0 && virDomainIsActive(d) == 1) {
		ret = virt_errno();
		log_err("vm %s: destroy: %s", name, virt_errmsg());
	}
out:
	virt_put(c, d);
	return ret;
}

int virt_domain_undefine(struct virt *v, const char *name)
{
	virConnectPtr c;
	virDomainPtr d;
	int ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	if (virDomainIsActive(d) == 1) {
		ret = -EBUSY;
		log_err("vm %s: cannot undefine a running domain", name);
		goto out;
	}
	if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
					      VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
					      VIR_DOMAIN_UNDEFINE_NVRAM) < 0) {
		ret = virt_errno();
		log_err("vm %s: undefine: %s", name, virt_errmsg());
	}
out:
	virt_put(c, d);
	return ret;
}

int virt_domain_list(struct virt *v, struct virt_domain_info **out, int *n)
{
	virConnectPtr c = virt_conn(v);
	virDomainPtr *doms = NULL;
	struct virt_domain_info *info = NULL;
	int i, cnt, ret = 0;

	*out = NULL;
	*n = 0;
	if (!c)
		return -ECONNREFUSED;
	cnt = virConnectListAllDomains(c, &doms, 0);
	if (cnt < 0) {
		ret = virt_errno();
		log_err("list domains: %s", virt_errmsg());
		goto out;
	}
	info = calloc((size_t)cnt + 1, sizeof(*info));
	if (!info) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < cnt; i++) {
		virDomainInfo di;
		int st, reason;

		snprintf(info[i].name, sizeof(info[i].name), "%s", virDomainGetName(doms[i]));
		virDomainGetUUIDString(doms[i], info[i].uuid);
		info[i].persistent = virDomainIsPersistent(doms[i]) == 1;
		if (virDomainGetState(doms[i], &st, &reason, 0) == 0)
			info[i].state = virt_power_of(st);
		if (virDomainGetInfo(doms[i], &di) == 0) {
			info[i].vcpus = di.nrVirtCpu;
			info[i].memory_mib = di.maxMem / 1024;
		}
	}
	*out = info;
	*n = cnt;
	info = NULL;
out:
	for (i = 0; doms && i < cnt; i++)
		virDomainFree(doms[i]);
	free(doms);
	free(info);
	virConnectClose(c);
	return ret;
}

int virt_node_free_memory_mib(struct virt *v, uint64_t *mib)
{
	virConnectPtr c = virt_conn(v);
	virNodeMemoryStatsPtr st = NULL;
	unsigned long long kib = 0;
	int i, n = 0, ret = 0;

	if (!c)
		return -ECONNREFUSED;
	/* Free + reclaimable cache: what a new guest can actually get. */
	if (virNodeGetMemoryStats(c, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &n, 0) < 0 || n <= 0)
		goto err;
	st = calloc((size_t)n, sizeof(*st));
	if (!st) {
		ret = -ENOMEM;
		goto out;
	}
	if (virNodeGetMemoryStats(c, VIR_NODE_MEMORY_STATS_ALL_CELLS, st, &n, 0) < 0)
		goto err;
	for (i = 0; i < n; i++)
		if (!strcmp(st[i].field, VIR_NODE_MEMORY_STATS_FREE) ||
		    !strcmp(st[i].field, VIR_NODE_MEMORY_STATS_BUFFERS) ||
		    !strcmp(st[i].field, VIR_NODE_MEMORY_STATS_CACHED))
			kib += st[i].value;
	*mib = kib / 1024;
	goto out;
err:
	ret = virt_errno();
	log_err("free memory: %s", virt_errmsg());
out:
	free(st);
	virConnectClose(c);
	return ret;
}

/* ---- live migration -------------------------------------------------- */

/* The running definition, as a migration sends it (secure: with its secrets). */
char *virt_domain_live_xml(struct virt *v, const char *name)
{
	return __virt_domain_xml(v, name, VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE,
				 "live XML");
}

int virt_host_info(struct virt *v, struct virt_host *h)
{
	virConnectPtr c = virt_conn(v);
	unsigned long lib = 0, hv = 0;
	const char *type;
	int ret = 0;

	memset(h, 0, sizeof(*h));
	if (!c)
		return -ECONNREFUSED;
	type = virConnectGetType(c);
	if (!type || virConnectGetLibVersion(c, &lib) < 0 || virConnectGetVersion(c, &hv) < 0) {
		ret = virt_errno();
		log_err("libvirt %s: versions: %s", v->uri, virt_errmsg());
	} else {
		snprintf(h->type, sizeof(h->type), "%s", type);
		h->libvirt_version = lib;
		h->hv_version = hv;
	}
	virConnectClose(c);
	return ret;
}

int virt_cpu_compare(struct virt *v, const char *virttype, const char *cpu_xml, bool *ok)
{
	virConnectPtr c = virt_conn(v);
	int r, ret = 0;

	*ok = false;
	if (!c)
		return -ECONNREFUSED;
	/*
	 * The hypervisor's CPU, not the host's: under TCG (virttype "qemu")
	 * virConnectCompareCPU judges against KVM's host CPU and refuses.
	 */
	r = virConnectCompareHypervisorCPU(c, NULL, NULL, NULL, virttype, cpu_xml, 0);
	if (r == VIR_CPU_COMPARE_ERROR) {
		ret = virt_errno();
		log_err("compare CPU: %s", virt_errmsg());
	} else {
		*ok = r != VIR_CPU_COMPARE_INCOMPATIBLE;
	}
	virConnectClose(c);
	return ret;
}

/*
 * One live migration, peer to peer, driven by the source libvirtd; blocks
 * until it ends.  On failure libvirt's reason is in @err.  It runs on a
 * connection of its own: seen with libvirt 9.0, calls from other threads
 * on the shared connection (the controller's job stats, its abort) could
 * wait behind the migration call for as long as it lasted.
 */
int virt_domain_migrate(struct virt *v, const char *name, const struct virt_migrate *p,
			char *err, size_t errlen)
{
	unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
			     VIR_MIGRATE_UNDEFINE_SOURCE;
	virTypedParameterPtr params = NULL;
	int nparams = 0, maxparams = 0, ret = 0;
	virConnectPtr c = NULL;
	virDomainPtr d = NULL;

	c = virConnectOpen(v->uri);
	if (!c) {
		ret = -ECONNREFUSED;
		snprintf(err, errlen, "vm %s: libvirt %s: %s", name, v->uri, virt_errmsg());
		goto out;
	}
	d = virDomainLookupByName(c, name);
	if (!d) {
		ret = virt_errno();
		snprintf(err, errlen, "vm %s: %s", name, virt_errmsg());
		goto out;
	}
	if (p->paused)
		flags |= VIR_MIGRATE_PAUSED;
	if (p->unsafe)
		flags |= VIR_MIGRATE_UNSAFE;
	if (p->auto_converge)
		flags |= VIR_MIGRATE_AUTO_CONVERGE;
	if (p->postcopy)
		flags |= VIR_MIGRATE_POSTCOPY;
	if ((p->dest_xml && virTypedParamsAddString(&params, &nparams, &maxparams,
						     VIR_MIGRATE_PARAM_DEST_XML, p->dest_xml) < 0) ||
	    (p->persist_xml && virTypedParamsAddString(&params, &nparams, &maxparams,
							VIR_MIGRATE_PARAM_PERSIST_XML,
							p->persist_xml) < 0) ||
	    (p->bandwidth_mibps && virTypedParamsAddULLong(&params, &nparams, &maxparams,
							    VIR_MIGRATE_PARAM_BANDWIDTH,
							    p->bandwidth_mibps) < 0)) {
		ret = -ENOMEM;
		snprintf(err, errlen, "vm %s: migration parameters: out of memory", name);
		goto out;
	}
	if (virDomainMigrateToURI3(d, p->dest_uri, params, (unsigned int)nparams, flags) < 0) {
		ret = virt_errno();
		snprintf(err, errlen, "vm %s: libvirt migration to %s: %s", name, p->dest_uri,
			 virt_errmsg());
	}
out:
	virTypedParamsFree(params, nparams);
	virt_put(c, d);
	return ret;
}

static uint64_t virt_param_u64(virTypedParameterPtr p, int n, const char *name)
{
	unsigned long long v = 0;

	virTypedParamsGetULLong(p, n, name, &v);
	return v;
}

int virt_domain_job(struct virt *v, const char *name, bool completed, struct virt_job *j)
{
	virTypedParameterPtr p = NULL;
	virConnectPtr c;
	virDomainPtr d;
	int type = 0, n = 0, ret = 0;

	memset(j, 0, sizeof(*j));
	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	if (virDomainGetJobStats(d, &type, &p, &n,
				 completed ? VIR_DOMAIN_JOB_STATS_COMPLETED : 0) < 0) {
		ret = virt_errno();
		goto out;
	}
	j->active = type == VIR_DOMAIN_JOB_BOUNDED || type == VIR_DOMAIN_JOB_UNBOUNDED;
	j->failed = type == VIR_DOMAIN_JOB_FAILED;
	j->memory_total = virt_param_u64(p, n, VIR_DOMAIN_JOB_MEMORY_TOTAL);
	j->memory_processed = virt_param_u64(p, n, VIR_DOMAIN_JOB_MEMORY_PROCESSED);
	j->memory_remaining = virt_param_u64(p, n, VIR_DOMAIN_JOB_MEMORY_REMAINING);
	j->memory_bps = virt_param_u64(p, n, VIR_DOMAIN_JOB_MEMORY_BPS);
	j->memory_dirty_rate = virt_param_u64(p, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE);
	j->memory_page_size = virt_param_u64(p, n, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE);
	j->memory_iteration = virt_param_u64(p, n, VIR_DOMAIN_JOB_MEMORY_ITERATION);
	j->downtime_ms = virt_param_u64(p, n, VIR_DOMAIN_JOB_DOWNTIME);
	j->elapsed_ms = virt_param_u64(p, n, VIR_DOMAIN_JOB_TIME_ELAPSED);
	virTypedParamsGetInt(p, n, VIR_DOMAIN_JOB_AUTO_CONVERGE_THROTTLE, &j->throttle_pct);
out:
	virTypedParamsFree(p, n);
	virt_put(c, d);
	return ret;
}

/* The small calls on a domain, from one table: name, what it does. */
enum virt_op {
	VIRT_OP_ABORT_JOB,
	VIRT_OP_SUSPEND,
	VIRT_OP_RESUME,
	VIRT_OP_POSTCOPY,
};

static int virt_domain_op(struct virt *v, const char *name, enum virt_op op)
{
	static const char *const what[] = { "abort job", "suspend", "resume", "post-copy" };
	virConnectPtr c;
	virDomainPtr d;
	int r = -1, ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	switch (op) {
	case VIRT_OP_ABORT_JOB:
		r = virDomainAbortJob(d);
		break;
	case VIRT_OP_SUSPEND:
		r = virDomainSuspend(d);
		break;
	case VIRT_OP_RESUME:
		r = virDomainResume(d);
		break;
	case VIRT_OP_POSTCOPY:
		r = virDomainMigrateStartPostCopy(d, 0);
		break;
	}
	if (r < 0) {
		ret = virt_errno();
		log_err("vm %s: %s: %s", name, what[op], virt_errmsg());
	}
out:
	virt_put(c, d);
	return ret;
}

int virt_domain_abort_job(struct virt *v, const char *name)
{
	return virt_domain_op(v, name, VIRT_OP_ABORT_JOB);
}

int virt_domain_suspend(struct virt *v, const char *name)
{
	return virt_domain_op(v, name, VIRT_OP_SUSPEND);
}

int virt_domain_resume(struct virt *v, const char *name)
{
	return virt_domain_op(v, name, VIRT_OP_RESUME);
}

int virt_domain_postcopy(struct virt *v, const char *name)
{
	return virt_domain_op(v, name, VIRT_OP_POSTCOPY);
}

int virt_domain_set_max_downtime(struct virt *v, const char *name, uint64_t ms)
{
	virConnectPtr c;
	virDomainPtr d;
	int ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	if (virDomainMigrateSetMaxDowntime(d, ms, 0) < 0) {
		ret = virt_errno();
		log_debug(LOG_SUB_VIRT, "vm %s: max downtime %" PRIu64 " ms: %s", name, ms,
			  virt_errmsg());
	}
out:
	virt_put(c, d);
	return ret;
}

/*
 * QMP announce-self: QEMU sends its RARPs again and asks the guest to
 * announce.  libvirt 9.0 has no API for it; the monitor passthrough it
 * takes taints the domain (libvirt logs "custom-monitor"), as Nova's
 * enable_qemu_monitor_announce_self does.
 */
int virt_domain_announce(struct virt *v, const char *name)
{
	static const char cmd[] = "{\"execute\":\"announce-self\",\"arguments\":"
				  "{\"initial\":50,\"max\":550,\"rounds\":5,\"step\":100}}";
	char *result = NULL;
	virConnectPtr c;
	virDomainPtr d;
	int ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	if (virDomainQemuMonitorCommand(d, cmd, &result, 0) < 0) {
		ret = virt_errno();
		log_warn("vm %s: QMP announce-self: %s", name, virt_errmsg());
	} else if (strstr(result ?: "", "\"error\"")) {
		ret = -EIO;
		log_warn("vm %s: QMP announce-self: %s", name, result);
	}
	free(result);
out:
	virt_put(c, d);
	return ret;
}

/* ---- metadata ------------------------------------------------------------ */

char *virt_domain_meta_get(struct virt *v, const char *name, const char *uri)
{
	virConnectPtr c;
	virDomainPtr d;
	char *xml = NULL;
	int ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	xml = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, uri, VIR_DOMAIN_AFFECT_CONFIG);
	if (!xml) {
		virErrorPtr e = virGetLastError();

		ret = e && e->code == VIR_ERR_NO_DOMAIN_METADATA ? -ENODATA : virt_errno();
		if (ret != -ENODATA)
			log_err("vm %s: metadata %s: %s", name, uri, virt_errmsg());
	}
out:
	virt_put(c, d);
	if (!xml)
		errno = -ret;
	return xml;
}

int virt_domain_meta_set(struct virt *v, const char *name, const char *uri, const char *prefix,
			 const char *xml)
{
	unsigned int flags = VIR_DOMAIN_AFFECT_CONFIG;
	virConnectPtr c;
	virDomainPtr d;
	int ret = 0;

	d = virt_lookup(v, name, &c, &ret);
	if (!d)
		goto out;
	if (virDomainIsActive(d) == 1)
		flags |= VIR_DOMAIN_AFFECT_LIVE;
	if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, xml, prefix, uri, flags)) {
		ret = virt_errno();
		log_err("vm %s: set metadata %s: %s", name, uri, virt_errmsg());
	}
out:
	virt_put(c, d);
	return ret;
}

/* ---- lifecycle events ------------------------------------------------------ */

/*
 * libvirt delivers events on a connection of their own, from its default
 * event loop, which this thread runs; a timer wakes the loop so that a stop
 * is seen within VIRT_EVENT_TICK_MS.  A connection that dies (libvirtd
 * restarted) is opened again, and @cb is called with a NULL name then: the
 * caller must look at everything, as events may have been missed.
 */
#define VIRT_EVENT_TICK_MS 500

static struct {
	pthread_t thr;
	bool running;
	char uri[256];
	virt_event_fn cb;
} vev;

static int virt_event_lifecycle(virConnectPtr c, virDomainPtr d, int event, int detail,
				void *opaque)
{
	(void)c;
	(void)detail;
	(void)opaque;
	vev.cb(virDomainGetName(d), event == VIR_DOMAIN_EVENT_DEFINED ? "defined" :
				    event == VIR_DOMAIN_EVENT_UNDEFINED ? "undefined" :
				    event == VIR_DOMAIN_EVENT_STARTED ? "started" :
				    event == VIR_DOMAIN_EVENT_STOPPED ? "stopped" :
				    event == VIR_DOMAIN_EVENT_SUSPENDED ? "suspended" :
				    event == VIR_DOMAIN_EVENT_RESUMED ? "resumed" :
									 "other");
	return 0;
}

static void virt_event_tick(int timer, void *opaque)
{
	(void)timer;
	(void)opaque;
}

static void *virt_event_thread(void *arg)
{
	virConnectPtr c = NULL;
	int cb_id = -1, timer;

	(void)arg;
	timer = virEventAddTimeout(VIRT_EVENT_TICK_MS, virt_event_tick, NULL, NULL);
	while (vev.running && !ferryd->stopping) {
		if (!c || virConnectIsAlive(c) != 1) {
			if (c) {
				if (cb_id >= 0)
					virConnectDomainEventDeregisterAny(c, cb_id);
				virConnectClose(c);
				c = NULL;
				cb_id = -1;
			}
			c = virConnectOpen(vev.uri);
			if (c)
				cb_id = virConnectDomainEventRegisterAny(
					c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
					VIR_DOMAIN_EVENT_CALLBACK(virt_event_lifecycle), NULL, NULL);
			if (!c || cb_id < 0) {
				log_warn("libvirt %s: no lifecycle events: %s; trying again", vev.uri,
					 virt_errmsg());
				sleep(1);
				continue;
			}
			vev.cb(NULL, "connected");
		}
		if (virEventRunDefaultImpl() < 0)
			usleep(VIRT_EVENT_TICK_MS * 1000);
	}
	if (timer >= 0)
		virEventRemoveTimeout(timer);
	if (c) {
		if (cb_id >= 0)
			virConnectDomainEventDeregisterAny(c, cb_id);
		virConnectClose(c);
	}
	return NULL;
}

int virt_events_start(struct virt *v, virt_event_fn cb)
{
	int ret;

	if (vev.running)
		return -EALREADY;
	if (virEventRegisterDefaultImpl() < 0) {
		log_err("libvirt: event loop: %s", virt_errmsg());
		return -EIO;
	}
	snprintf(vev.uri, sizeof(vev.uri), "%s", v->uri);
	vev.cb = cb;
	vev.running = true;
	ret = -pthread_create(&vev.thr, NULL, virt_event_thread, NULL);
	if (ret)
		vev.running = false;
	return ret;
}

void virt_events_stop(void)
{
	if (!vev.running)
		return;
	vev.running = false;
	pthread_join(vev.thr, NULL);
}
