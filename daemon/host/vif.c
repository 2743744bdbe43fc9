// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vif.c - the VIF monitor: every tap of a VM on this host carries ferry's
 * tc programs (bpf/vif.c), put there within milliseconds of the tap
 * appearing.
 *
 * A thread listens to rtnetlink (net/link.c).  A new link enslaved to a
 * bridge whose MAC is libvirt's tap MAC for a guest MAC (the guest's with
 * the first byte 0xFE, or 0xFA when the guest's is 0xFE) is a VIF:
 *   - expected: a live migration to this host named it in its precheck
 *     (vifmon_vm_expect), so it is watched at once;
 *   - otherwise its VM is looked up in libvirt (the domain may not be
 *     listed yet while an incoming migration prepares: retried).
 * The programs are put back when someone removes the tap's clsact qdisc,
 * after a short settle so that a tool replacing it (an `ingress` qdisc,
 * say) is not refused, and on a periodic check.  (libvirt 9.0's
 * `tc qdisc del dev X ingress` does not remove a clsact on this kernel:
 * the kinds differ; see docs/network.md.)
 * After lost events (ENOBUFS) every link is looked at again.  The counters
 * of a tap that is gone stay readable until its VM's entries are dropped
 * (a migration's source reads its last frame after the tap went away).
 */
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>

#include "bpf/vif.h"
#include "daemon/host/host.h"

#define VIFMON_MAX 256
#define VIFMON_POLL_MS 50
#define VIFMON_CHECK_NS (2000ull * 1000000)	  /* filters still there? */
#define VIFMON_SETTLE_NS (100ull * 1000000)	  /* after a qdisc went */
#define VIFMON_RESOLVE_NS (50ull * 1000000)	  /* retry an unknown tap */
#define VIFMON_RESOLVE_FOR_NS (60000ull * 1000000)

struct vifmon_ent {
	bool used;
	bool expected;			/* named by a migration, not seen yet */
	bool pending;			/* seen, VM not known yet */
	bool attached;
	int hooks;			/* VIF_HOOK_*: ingress only under an ingress qdisc */
	bool gone;			/* the tap was deleted */
	char vm[FERRY_NAME_MAX];
	uint8_t mac[6];			/* the guest's */
	char bridge[IFNAMSIZ];
	int ifindex;			/* 0 while expected */
	char ifname[IFNAMSIZ];
	uint8_t tap_mac[6];
	int master;
	uint64_t t_seen_ns;		/* CLOCK_TAI: the link event */
	uint64_t t_attach_ns;
	uint64_t check_at_ns;		/* next look at the filters */
	uint32_t reattaches;
	uint64_t seq;			/* age, for eviction */
};

static struct {
	pthread_mutex_t lock;
	struct vif_watch *vw;
	struct net_watch *nw;
	pthread_t thr;
	bool running;
	volatile bool stop;
	bool rescan;			/* look at every link again */
	struct vifmon_ent ents[VIFMON_MAX];
	uint64_t seq;
} vmon = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void vifmon_tap_mac(const uint8_t guest[6], uint8_t tap[6])
{
	memcpy(tap, guest, 6);
	tap[0] = guest[0] == 0xfe ? 0xfa : 0xfe;
}

static bool vifmon_is_tap_mac(const uint8_t mac[6])
{
	return mac[0] == 0xfe || mac[0] == 0xfa;
}

static struct vifmon_ent *vifmon_by_ifindex(int ifindex)
{
	for (int i = 0; i < VIFMON_MAX; i++) {
		struct vifmon_ent *e = &vmon.ents[i];

		if (e->used && !e->gone && !e->expected && e->ifindex == ifindex)
			return e;
	}
	return NULL;
}

/* A free slot, else the oldest gone tap's (its counters forgotten). */
static struct vifmon_ent *vifmon_slot(void)
{
	struct vifmon_ent *e = NULL, *old = NULL;

	for (int i = 0; i < VIFMON_MAX && !e; i++) {
		struct vifmon_ent *x = &vmon.ents[i];

		if (!x->used)
			e = x;
		else if (x->gone && (!old || x->seq < old->seq))
			old = x;
	}
	if (!e && old) {
		vif_tap_forget(vmon.vw, old->ifindex);
		e = old;
	}
	if (!e)
		return NULL;
	memset(e, 0, sizeof(*e));
	e->used = true;
	e->seq = ++vmon.seq;
	return e;
}

static void vifmon_hooks_log(const struct vifmon_ent *e)
{
	if (!(e->hooks & VIF_HOOK_EGRESS))
		log_warn("vif: vm %s: %s has an ingress qdisc, not a clsact (libvirt's outbound "
			 "<bandwidth>?): what the guest sends is counted, what it receives is not",
			 e->vm, e->ifname);
}

static void vifmon_attach(struct vifmon_ent *e)
{
	char mac[24];
	int ret;

	ret = vif_tap_attach(vmon.vw, e->ifindex, e->ifname, e->mac, e->vm);
	if (ret < 0) {
		log_warn("vif: vm %s: %s: cannot attach the programs: %s", e->vm, e->ifname,
			 strerror(-ret));
		e->check_at_ns = vif_now_ns() + VIFMON_SETTLE_NS;
		return;
	}
	e->attached = true;
	e->hooks = ret;
	e->pending = false;
	e->t_attach_ns = vif_now_ns();
	e->check_at_ns = e->t_attach_ns + VIFMON_CHECK_NS;
	log_info("vif: vm %s: watching %s (%s on %s), %.2f ms after its link event", e->vm,
		 e->ifname, fmt_mac(e->mac, mac, sizeof(mac)), e->bridge,
		 (double)(e->t_attach_ns - e->t_seen_ns) / 1e6);
	vifmon_hooks_log(e);
}

/*
 * The VM whose live XML has a bridged NIC with this tap MAC.  Calls
 * libvirt: never under vmon.lock.
 */
static int vifmon_resolve(const uint8_t tap_mac[6], char *vm, size_t vmlen, uint8_t guest[6],
			  char *bridge, size_t brlen)
{
	struct virt_domain_info *doms = NULL;
	struct domxml_nic nics[8];
	uint8_t t[6];
	int i, j, n = 0, k, ret = -ENOENT;

	if (virt_domain_list(ferryd->virt, &doms, &n))
		return -EIO;
	for (i = 0; i < n && ret; i++) {
		char *xml = virt_domain_live_xml(ferryd->virt, doms[i].name);

		k = xml ? domxml_nics(xml, nics, 8) : 0;
		free(xml);
		for (j = 0; j < k; j++) {
			vifmon_tap_mac(nics[j].mac, t);
			if (memcmp(t, tap_mac, 6))
				continue;
			snprintf(vm, vmlen, "%s", doms[i].name);
			memcpy(guest, nics[j].mac, 6);
			snprintf(bridge, brlen, "%s", nics[j].bridge);
			ret = 0;
			break;
		}
	}
	free(doms);
	return ret;
}

static void vifmon_link(const struct net_event *ev)
{
	struct vifmon_ent *e;
	uint8_t t[6];
	char br[IFNAMSIZ];

	if (vifmon_by_ifindex(ev->ifindex) || !ev->master || !vifmon_is_tap_mac(ev->mac))
		return;
	if (!if_indextoname(ev->master, br))
		return;
	for (int i = 0; i < VIFMON_MAX; i++) {
		e = &vmon.ents[i];
		if (!e->used || !e->expected || strcmp(e->bridge, br))
			continue;
		vifmon_tap_mac(e->mac, t);
		if (memcmp(t, ev->mac, 6))
			continue;
		e->expected = false;
		goto found;
	}
	/* Not expected: whose is it?  The thread asks libvirt. */
	e = vifmon_slot();
	if (!e)
		return;
	e->pending = true;
	snprintf(e->bridge, sizeof(e->bridge), "%s", br);
found:
	e->ifindex = ev->ifindex;
	e->master = ev->master;
	memcpy(e->tap_mac, ev->mac, 6);
	snprintf(e->ifname, sizeof(e->ifname), "%s", ev->name);
	e->t_seen_ns = vif_now_ns();
	if (!e->pending)
		vifmon_attach(e);
}

static void vifmon_event(const struct net_event *ev, void *arg)
{
	struct vifmon_ent *e;

	(void)arg;
	switch (ev->type) {
	case NET_EV_LINK:
		vifmon_link(ev);
		break;
	case NET_EV_LINK_DEL:
		e = vifmon_by_ifindex(ev->ifindex);
		if (e) {
			e->gone = true;
			e->attached = false;
			log_debug(LOG_SUB_NET, "vif: vm %s: %s is gone", e->vm, e->ifname);
		}
		break;
	case NET_EV_QDISC_DEL:
		e = vifmon_by_ifindex(ev->ifindex);
		if (e && e->attached)
			e->check_at_ns = vif_now_ns() + VIFMON_SETTLE_NS;
		break;
	case NET_EV_RESYNC:
		vmon.rescan = true;
		for (int i = 0; i < VIFMON_MAX; i++)
			vmon.ents[i].check_at_ns = 0;
		break;
	default:
		break;
	}
}

/* Pending taps: ask libvirt, outside the lock. */
static void vifmon_resolve_pending(uint64_t now)
{
	struct vifmon_ent *e;
	char vm[FERRY_NAME_MAX], br[IFNAMSIZ];
	uint8_t tap[6], guest[6];
	int ifindex;

	for (int i = 0; i < VIFMON_MAX; i++) {
		pthread_mutex_lock(&vmon.lock);
		e = &vmon.ents[i];
		if (!e->used || !e->pending || e->gone || now < e->check_at_ns) {
			pthread_mutex_unlock(&vmon.lock);
			continue;
		}
		ifindex = e->ifindex;
		memcpy(tap, e->tap_mac, 6);
		pthread_mutex_unlock(&vmon.lock);
		if (vifmon_resolve(tap, vm, sizeof(vm), guest, br, sizeof(br))) {
			pthread_mutex_lock(&vmon.lock);
			if (e->used && e->pending && e->ifindex == ifindex) {
				e->check_at_ns = now + VIFMON_RESOLVE_NS;
				if (now - e->t_seen_ns > VIFMON_RESOLVE_FOR_NS) {
					log_debug(LOG_SUB_NET, "vif: %s: no VM of this host has it",
						  e->ifname);
					memset(e, 0, sizeof(*e));
				}
			}
			pthread_mutex_unlock(&vmon.lock);
			continue;
		}
		pthread_mutex_lock(&vmon.lock);
		if (e->used && e->pending && e->ifindex == ifindex && !e->gone) {
			snprintf(e->vm, sizeof(e->vm), "%s", vm);
			memcpy(e->mac, guest, 6);
			vifmon_attach(e);
		}
		pthread_mutex_unlock(&vmon.lock);
	}
}

/* Filters someone removed go back on. */
static void vifmon_check(uint64_t now)
{
	pthread_mutex_lock(&vmon.lock);
	for (int i = 0; i < VIFMON_MAX; i++) {
		struct vifmon_ent *e = &vmon.ents[i];
		int ret;

		if (!e->used || e->gone || e->expected || e->pending || now < e->check_at_ns)
			continue;
		e->check_at_ns = now + VIFMON_CHECK_NS;
		if (e->attached && vif_tap_attached(vmon.vw, e->ifindex))
			continue;
		if (!e->attached) {
			vifmon_attach(e);
			continue;
		}
		ret = vif_tap_reattach(vmon.vw, e->ifindex);
		if (ret < 0) {
			log_warn("vif: vm %s: %s: our filters are gone and cannot go back: %s",
				 e->vm, e->ifname, strerror(-ret));
			e->check_at_ns = now + VIFMON_SETTLE_NS;
			continue;
		}
		e->reattaches++;
		e->hooks = ret;
		log_warn("vif: vm %s: %s: our filters were removed (its qdisc deleted or "
			 "replaced); attached again", e->vm, e->ifname);
		vifmon_hooks_log(e);
	}
	pthread_mutex_unlock(&vmon.lock);
}

static void *vifmon_thread(void *arg)
{
	struct pollfd pfd = { .fd = net_watch_fd(vmon.nw), .events = POLLIN };
	bool rescan;
	int ret;

	(void)arg;
	while (!vmon.stop) {
		pthread_mutex_lock(&vmon.lock);
		rescan = vmon.rescan;
		vmon.rescan = false;
		if (rescan)
			net_watch_links(vmon.nw);
		pthread_mutex_unlock(&vmon.lock);
		ret = poll(&pfd, 1, VIFMON_POLL_MS);
		if (ret > 0) {
			pthread_mutex_lock(&vmon.lock);
			ret = net_watch_recv(vmon.nw);
			pthread_mutex_unlock(&vmon.lock);
			if (ret)
				log_warn("vif: netlink: %s", strerror(-ret));
		}
		vifmon_resolve_pending(vif_now_ns());
		vifmon_check(vif_now_ns());
	}
	return NULL;
}

int vifmon_init(const char *pin_dir, bool drop_announces)
{
	int ret;

	vmon.vw = vif_watch_open(pin_dir, drop_announces);
	if (!vmon.vw)
		return -errno;
	/* taps that went while ferryd was down: nobody can ask for them */
	ret = vif_watch_prune(vmon.vw);
	if (ret > 0)
		log_info("vif: forgot %d tap(s) gone while ferryd was down", ret);
	vmon.nw = net_watch_new(vifmon_event, NULL);
	if (!vmon.nw) {
		ret = -errno;
		log_err("vif: netlink watch: %s", strerror(-ret));
		goto err;
	}
	vmon.rescan = true; /* the taps of VMs that run already */
	ret = -pthread_create(&vmon.thr, NULL, vifmon_thread, NULL);
	if (ret)
		goto err;
	vmon.running = true;
	return 0;
err:
	net_watch_free(vmon.nw);
	vif_watch_close(vmon.vw);
	vmon.nw = NULL;
	vmon.vw = NULL;
	return ret;
}

void vifmon_fini(void)
{
	if (vmon.running) {
		vmon.stop = true;
		pthread_join(vmon.thr, NULL);
		vmon.running = false;
	}
	net_watch_free(vmon.nw);
	vif_watch_close(vmon.vw);
	vmon.nw = NULL;
	vmon.vw = NULL;
}

bool vifmon_enabled(void)
{
	return vmon.running;
}

int vifmon_vm_expect(const char *vm, const struct domxml_nic *nics, int n)
{
	int ret = 0;

	if (!vmon.running)
		return -ENOTSUP;
	pthread_mutex_lock(&vmon.lock);
	for (int i = 0; i < n; i++) {
		struct vifmon_ent *e = NULL;

		/* A newer expectation replaces an older one for the same NIC. */
		for (int j = 0; j < VIFMON_MAX && !e; j++) {
			struct vifmon_ent *x = &vmon.ents[j];

			if (x->used && x->expected && !strcmp(x->vm, vm) &&
			    !memcmp(x->mac, nics[i].mac, 6))
				e = x;
		}
		if (!e)
			e = vifmon_slot();
		if (!e) {
			ret = -ENOSPC;
			break;
		}
		e->expected = true;
		snprintf(e->vm, sizeof(e->vm), "%s", vm);
		memcpy(e->mac, nics[i].mac, 6);
		snprintf(e->bridge, sizeof(e->bridge), "%s", nics[i].bridge);
	}
	vmon.rescan = true; /* the tap may be there already */
	pthread_mutex_unlock(&vmon.lock);
	return ret;
}

int vifmon_vm_watch(const char *vm)
{
	struct domxml_nic nics[VIFMON_VM_NICS];
	char *xml;
	int n, ret = 0;

	if (!vmon.running)
		return -ENOTSUP;
	xml = virt_domain_live_xml(ferryd->virt, vm);
	if (!xml)
		return -errno;
	n = domxml_nics(xml, nics, VIFMON_VM_NICS);
	free(xml);
	pthread_mutex_lock(&vmon.lock);
	for (int i = 0; i < n; i++) {
		int ifindex = nics[i].tap[0] ? (int)if_nametoindex(nics[i].tap) : 0;
		struct vifmon_ent *e;

		if (!ifindex) {
			ret = -ENODEV;
			continue;
		}
		e = vifmon_by_ifindex(ifindex);
		if (e && e->attached)
			continue;
		if (!e)
			e = vifmon_slot();
		if (!e) {
			ret = -ENOSPC;
			break;
		}
		e->pending = e->expected = false;
		e->ifindex = ifindex;
		snprintf(e->vm, sizeof(e->vm), "%s", vm);
		memcpy(e->mac, nics[i].mac, 6);
		vifmon_tap_mac(e->mac, e->tap_mac);
		snprintf(e->bridge, sizeof(e->bridge), "%s", nics[i].bridge);
		snprintf(e->ifname, sizeof(e->ifname), "%s", nics[i].tap);
		e->t_seen_ns = vif_now_ns();
		vifmon_attach(e);
		if (!e->attached)
			ret = -EIO;
	}
	pthread_mutex_unlock(&vmon.lock);
	return ret ? ret : n;
}

int vifmon_vm_read(const char *vm, struct vifmon_stat *out, int max)
{
	int n = 0;

	if (!vmon.running)
		return -ENOTSUP;
	pthread_mutex_lock(&vmon.lock);
	for (int i = 0; i < VIFMON_MAX && n < max; i++) {
		struct vifmon_ent *e = &vmon.ents[i];
		struct vifmon_stat *s = &out[n];

		if (!e->used || (vm && strcmp(e->vm, vm)) || (!vm && !e->vm[0]))
			continue;
		memset(s, 0, sizeof(*s));
		snprintf(s->vm, sizeof(s->vm), "%s", e->vm);
		memcpy(s->mac, e->mac, 6);
		snprintf(s->bridge, sizeof(s->bridge), "%s", e->bridge);
		snprintf(s->ifname, sizeof(s->ifname), "%s", e->ifname);
		s->ifindex = e->ifindex;
		s->expected = e->expected || e->pending;
		s->attached = e->attached;
		s->gone = e->gone;
		s->reattaches = e->reattaches;
		s->hooks = e->hooks;
		s->seq = e->seq;
		s->attach_lag_ns = e->attached ? e->t_attach_ns - e->t_seen_ns : 0;
		if (e->ifindex && !e->expected && !e->pending)
			s->have = !vif_tap_read(vmon.vw, e->ifindex, &s->v);
		n++;
	}
	pthread_mutex_unlock(&vmon.lock);
	return n;
}

void vifmon_vm_forget(const char *vm)
{
	pthread_mutex_lock(&vmon.lock);
	for (int i = 0; i < VIFMON_MAX; i++) {
		struct vifmon_ent *e = &vmon.ents[i];

		if (!e->used || strcmp(e->vm, vm) || (!e->gone && !e->expected))
			continue;
		if (e->gone)
			vif_tap_forget(vmon.vw, e->ifindex);
		memset(e, 0, sizeof(*e));
	}
	pthread_mutex_unlock(&vmon.lock);
}

void vifmon_announce_drop(bool on)
{
	if (vmon.vw)
		vif_watch_announce_drop(vmon.vw, on);
}

bool vifmon_announce_dropping(void)
{
	return vmon.vw && vif_watch_announce_dropping(vmon.vw);
}
