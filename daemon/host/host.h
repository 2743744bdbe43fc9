/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * host.h - this host's hypervisor: libvirt (virt.c) and domain XML (domxml.c).
 */
#ifndef FERRY_DAEMON_HOST_H
#define FERRY_DAEMON_HOST_H

#include <linux/types.h>

#include "bpf/vif.h"
#include "daemon/engine/engine.h"

/* virt.c: the only code that talks to libvirt. */
struct virt;
enum virt_power {
	VIRT_NOSTATE = 0,
	VIRT_RUNNING,
	VIRT_PAUSED,
	VIRT_SHUTOFF,
	VIRT_OTHER,
};

struct virt *virt_open(const char *uri);
void virt_close(struct virt *v);
/* -ENOENT when there is no such domain. */
int virt_domain_state(struct virt *v, const char *name, enum virt_power *state);
/* On a live migration's destination: *arrived once libvirt's incoming job
 * is over (its Finish ran), the domain running or left paused by
 * VIR_MIGRATE_PAUSED; false while the migration still comes in. */
int virt_domain_arrived(struct virt *v, const char *name, enum virt_power *state, bool *arrived);
/* Inactive, migratable XML; malloc'd.  NULL + errno. */
char *virt_domain_xml(struct virt *v, const char *name);
int virt_domain_define(struct virt *v, const char *xml);
int virt_domain_start(struct virt *v, const char *name);
/* Clean shutdown with timeout and retries, then destroy; *forced says which. */
int virt_domain_poweroff(struct virt *v, const char *name, int timeout_s, int retries,
			 bool *forced);
int virt_domain_destroy(struct virt *v, const char *name);
/* Undefine a shut-off domain; -ENOENT if not defined. */
int virt_domain_undefine(struct virt *v, const char *name);
struct virt_domain_info {
	char name[FERRY_NAME_MAX];
	char uuid[40];
	enum virt_power state;
	int vcpus;
	uint64_t memory_mib;
	bool persistent;                /* defined, not only running */
};
int virt_domain_list(struct virt *v, struct virt_domain_info **out, int *n);
/* The domain's (persistent) metadata element of namespace @uri; malloc'd,
 * NULL + errno (ENODATA: none). */
char *virt_domain_meta_get(struct virt *v, const char *name, const char *uri);
/* Set it (<prefix:...> in the XML), in the definition and the running domain. */
int virt_domain_meta_set(struct virt *v, const char *name, const char *uri, const char *prefix,
			 const char *xml);
/*
 * Lifecycle events ("defined", "undefined", "started", "stopped", ...) on a
 * connection and thread of their own; @name NULL ("connected"): the
 * connection was (re)made and events may have been missed.
 */
typedef void (*virt_event_fn)(const char *name, const char *event);
int virt_events_start(struct virt *v, virt_event_fn cb);
void virt_events_stop(void);
int virt_node_free_memory_mib(struct virt *v, uint64_t *mib);
const char *virt_power_name(enum virt_power p);

/* Live migration. */
struct virt_host {
	char type[16];                  /* "QEMU" */
	uint64_t libvirt_version;       /* major * 1000000 + minor * 1000 + micro */
	uint64_t hv_version;            /* QEMU's, same encoding */
};

struct virt_migrate {
	const char *dest_uri;           /* qemu+tcp://ADDR/system */
	const char *dest_xml;           /* the live definition there, or NULL */
	const char *persist_xml;        /* the persistent one there, or NULL */
	uint64_t bandwidth_mibps;       /* 0: unlimited */
	bool paused;                    /* the destination rests paused */
	bool unsafe;                    /* ferry makes the disks safe itself */
	bool auto_converge;
	bool postcopy;                  /* allow a switch to post-copy */
};

/* libvirt's job statistics (virDomainGetJobStats). */
struct virt_job {
	bool active, failed;
	uint64_t memory_total, memory_processed, memory_remaining;
	uint64_t memory_bps, memory_dirty_rate, memory_page_size, memory_iteration;
	uint64_t downtime_ms, elapsed_ms;
	int throttle_pct;
};

/* Migratable live XML (secure fields included); malloc'd, NULL + errno. */
char *virt_domain_live_xml(struct virt *v, const char *name);
int virt_host_info(struct virt *v, struct virt_host *h);
/* Whether @cpu_xml runs on this host's hypervisor for @virttype ("qemu", "kvm"). */
int virt_cpu_compare(struct virt *v, const char *virttype, const char *cpu_xml, bool *ok);
int virt_domain_migrate(struct virt *v, const char *name, const struct virt_migrate *p,
			char *err, size_t errlen);
/* The running job, or with @completed the last one that ended. */
int virt_domain_job(struct virt *v, const char *name, bool completed, struct virt_job *j);
int virt_domain_abort_job(struct virt *v, const char *name);
int virt_domain_suspend(struct virt *v, const char *name);
int virt_domain_resume(struct virt *v, const char *name);
/* QMP announce-self through the monitor passthrough (taints the domain). */
int virt_domain_announce(struct virt *v, const char *name);
int virt_domain_postcopy(struct virt *v, const char *name);
int virt_domain_set_max_downtime(struct virt *v, const char *name, uint64_t ms);

/* domxml.c: reading and adapting domain XML (libxml2). */
struct domxml_disk {
	char target[16];
	char type[8];                   /* file | block */
	char format[8];                 /* raw | qcow2 */
	char path[PATH_MAX];
	bool readonly;
	bool swap;                      /* per ferry's metadata */
};

struct domxml_info {
	char name[FERRY_NAME_MAX];
	char uuid[40];
	int vcpus;
	uint64_t memory_mib;
	struct domxml_disk disks[FERRYD_MAX_DISKS];
	int ndisks;
};

int domxml_parse(const char *xml, struct domxml_info *info);
/*
 * The destination's definition: @xml with the new flavor and each disk's
 * source switched to its destination path.  malloc'd; NULL + errno.
 */
char *domxml_adapt(const char *xml, const struct flavor *fl, const struct mig_disk *disks,
		   int ndisks);

/* The cluster's namespace of <ferry:owner> (cluster/records.c). */
#define DOMXML_CLUSTER_NS "https://ferry.dev/xmlns/cluster/1"
/* @xml as a new VM named @name: no UUID, no <ferry:owner>.  malloc'd. */
char *domxml_rename(const char *xml, const char *name);
/*
 * The domain's <cpu> element (malloc'd) and its type ("qemu", "kvm") in
 * @virttype; NULL + ENOENT when it names no CPU.
 */
char *domxml_cpu(const char *xml, char *virttype, size_t len);
/* A VM's bridged NICs: <interface type='bridge'> with a MAC and a bridge. */
struct domxml_nic {
	uint8_t mac[6];                 /* the guest's */
	char bridge[16];
	char tap[16];                   /* <target dev>, "" if not running */
};
/* Up to MAX of them; their number, or -EINVAL for unreadable XML. */
int domxml_nics(const char *xml, struct domxml_nic *nics, int max);

/* vif.c: the VIF monitor (ferry's tc programs on every VM tap). */
#define VIFMON_VM_NICS 8

struct vifmon_stat {
	char vm[FERRY_NAME_MAX];
	uint8_t mac[6];                 /* the guest's */
	char bridge[16];
	char ifname[16];
	int ifindex;
	bool expected;                  /* not seen yet, or its VM not known yet */
	bool attached;
	bool gone;                      /* the tap was deleted: counters frozen */
	bool have;                      /* v holds the tap's counters */
	uint32_t reattaches;            /* filters put back after removal */
	int hooks;                      /* VIF_HOOK_*: no egress, no rx_* */
	uint64_t seq;                   /* larger: newer */
	uint64_t attach_lag_ns;         /* link event -> programs on */
	struct ferry_vif v;
};

/* The programs, the map (PIN_DIR/vifs) and the netlink thread. */
int vifmon_init(const char *pin_dir, bool drop_announces);
void vifmon_fini(void);
bool vifmon_enabled(void);
/* A migration to here: watch VM's taps the moment they appear. */
int vifmon_vm_expect(const char *vm, const struct domxml_nic *nics, int n);
/* Watch VM's current taps now; the number of NICs, or -errno. */
int vifmon_vm_watch(const char *vm);
/* VM's entries (current and gone taps, expectations), every VM's for
 * NULL; their number. */
int vifmon_vm_read(const char *vm, struct vifmon_stat *out, int max);
/* Drop VM's gone taps and expectations. */
void vifmon_vm_forget(const char *vm);
void vifmon_announce_drop(bool on);
bool vifmon_announce_dropping(void);

#endif /* FERRY_DAEMON_HOST_H */
