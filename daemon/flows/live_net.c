// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * live_net.c - live migration, the VM's network: ferry's "vif-plugged"
 * precheck, the hold on the switchover until the destination watches every
 * tap, and the cut-over's account (see docs/network.md).
 *
 *   precheck   the source sends each bridged NIC (MAC, bridge, its MTU);
 *              the destination refuses a bridge that is missing, down, a
 *              plain link, slow to forward (STP with a forward delay) or
 *              of another MTU, then expects the NIC's tap (host/vif.c)
 *   RAM phase  the controller keeps QEMU's downtime at its floor and holds
 *              a force-complete until live.state says every destination
 *              tap carries the programs
 *   cut-over   after the resume the destination waits for an announce
 *              (QEMU's RARP, the guest's gratuitous ARP) on each tap; none
 *              within net_announce_wait_ms: QMP announce-self (a taint,
 *              logged and recorded).  Its bridge's FDB must then hold the
 *              guest MAC on the new tap, or ferry puts it there (a
 *              reachable entry, never a local one).  The source matches
 *              what the destination saw with its own counters: blackout,
 *              announce lag, stranded frames, drops.
 *
 * Nothing here fails a migration after the switchover: the VM runs on the
 * destination, and a network check that cannot be made is logged and left
 * out of the record.
 */
#include <errno.h>
#include <inttypes.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/flows/flows.h"

#define LIVE_NET_CALL_MS 15000
#define LIVE_NET_POLL_MS 5
#define LIVE_NET_FDB_MS 500	   /* no announce yet: for the bridge to learn */
#define LIVE_NET_GUEST_MS 3000	   /* for the first frame of a guest that talks */
#define LIVE_NET_HOLD_MS 10000	   /* longest hold of the switchover */

/* ---- precheck ----------------------------------------------------------- */

/* The source: the VM's bridged NICs, for the destination to judge. */
int live_net_check_req(struct migration *m, struct json_object *req)
{
	struct domxml_nic nics[VIFMON_VM_NICS];
	struct json_object *a;
	char mac[24];
	char *xml;
	int i, n;

	xml = virt_domain_live_xml(ferryd->virt, m->vm);
	if (!xml)
		return -errno;
	n = domxml_nics(xml, nics, VIFMON_VM_NICS);
	free(xml);
	if (n < 0)
		return n;
	a = json_object_new_array();
	for (i = 0; i < n; i++) {
		struct json_object *o = json_object_new_object();
		unsigned int mtu = 0;

		net_link_mtu(nics[i].bridge, &mtu);
		json_object_object_add(o, "mac",
				       json_object_new_string(fmt_mac(nics[i].mac, mac, sizeof(mac))));
		json_object_object_add(o, "bridge", json_object_new_string(nics[i].bridge));
		json_object_object_add(o, "mtu", json_object_new_int((int)mtu));
		json_object_array_add(a, o);
	}
	json_object_object_add(req, "nics", a);
	return n;
}

static int live_net_bridge_judge(const struct migration *m, const char *mac, const char *bridge,
				 unsigned int mtu, char *err, size_t errlen)
{
	const char *host = ferryd->conf.host;
	struct net_bridge b;
	int ret;

	ret = net_bridge_info(bridge, &b);
	if (ret == -ENODEV) {
		snprintf(err, errlen, "%s: bridge %s of vm %s's NIC %s does not exist here "
				      "(MigrationPreCheckError)",
			 host, bridge, m->vm, mac);
		return -ENODEV;
	}
	if (ret) {
		snprintf(err, errlen, "%s: bridge %s of vm %s's NIC %s: %s (MigrationPreCheckError)",
			 host, bridge, m->vm, mac, strerror(-ret));
		return ret;
	}
	if (!b.is_bridge)
		snprintf(err, errlen, "%s: %s, vm %s's NIC %s's bridge, is not a bridge here "
				      "(MigrationPreCheckError)",
			 host, bridge, m->vm, mac);
	else if (!b.up)
		snprintf(err, errlen, "%s: bridge %s of vm %s's NIC %s is down "
				      "(MigrationPreCheckError)",
			 host, bridge, m->vm, mac);
	else if (b.stp && b.forward_delay_cs)
		snprintf(err, errlen, "%s: bridge %s of vm %s's NIC %s runs STP with a forward "
				      "delay of %.1f s: the new port would not forward for %.1f s "
				      "(MigrationPreCheckError)",
			 host, bridge, m->vm, mac, (double)b.forward_delay_cs / 100,
			 (double)b.forward_delay_cs / 50);
	else if (mtu && b.mtu != mtu)
		snprintf(err, errlen, "%s: bridge %s of vm %s's NIC %s has MTU %u, %u on %s "
				      "(MigrationPreCheckError)",
			 host, bridge, m->vm, mac, b.mtu, mtu, m->src_host);
	else
		return 0;
	return -EINVAL;
}

/* The destination: judge each NIC's bridge, then expect its tap. */
int live_net_check_dest(const struct migration *m, struct json_object *req, char *err,
			size_t errlen)
{
	struct domxml_nic nics[VIFMON_VM_NICS];
	struct json_object *a;
	int i, n = 0, ret;

	if (!json_object_object_get_ex(req, "nics", &a) || !json_object_is_type(a, json_type_array))
		return 0; /* a source without the check */
	for (i = 0; i < (int)json_object_array_length(a) && n < VIFMON_VM_NICS; i++) {
		struct json_object *o = json_object_array_get_idx(a, i);
		const char *mac = rpc_str(o, "mac"), *br = rpc_str(o, "bridge");
		int64_t mtu = rpc_int(o, "mtu", 0);

		if (!mac || !br || parse_mac(mac, nics[n].mac) || !br[0] ||
		    strlen(br) >= sizeof(nics[n].bridge) || strchr(br, '/') || mtu < 0 ||
		    mtu > 65536) {
			snprintf(err, errlen, "live.check: bad NIC %d in the request", i);
			return -EINVAL;
		}
		ret = live_net_bridge_judge(m, mac, br, (unsigned int)mtu, err, errlen);
		if (ret)
			return ret;
		snprintf(nics[n].bridge, sizeof(nics[n].bridge), "%s", br);
		nics[n++].tap[0] = '\0';
	}
	if (n && vifmon_enabled()) {
		ret = vifmon_vm_expect(m->vm, nics, n);
		if (ret)
			log_warn("vif: vm %s: cannot expect its taps: %s", m->vm, strerror(-ret));
	}
	return 0;
}

/* ---- the hold on the switchover ---------------------------------------- */

/* The destination: each NIC of VM has a current tap with the programs. */
bool live_net_watched(const char *vm, int *nics)
{
	struct vifmon_stat st[VIFMON_VM_NICS * 2];
	int i, n = vifmon_vm_read(vm, st, ARRAY_SIZE(st)), all = 0, on = 0;

	for (i = 0; i < n; i++) {
		if (st[i].gone)
			continue;
		all++;
		on += st[i].attached;
	}
	if (nics)
		*nics = all;
	return n >= 0 && all == on;
}

/*
 * The source's controller, each tick until it holds: may QEMU switch over?
 * Yes once the destination watches every tap (or has no VIF monitor), and
 * after LIVE_NET_HOLD_MS in any case: the migration matters more than its
 * account.
 */
bool live_net_hold(struct migration *m, uint64_t since_ms)
{
	struct live_priv *p = m->priv;
	struct json_object *rep;
	char err[256];
	bool ok;

	if (!p || p->net_ok || !p->nnics)
		return false;
	rep = cold_call(m, rpc_req("live.state", m), false, err, sizeof(err));
	ok = rep && (rpc_bool(rep, "vifs_watched") || !rpc_bool(rep, "vif_monitor"));
	json_object_put(rep);
	if (ok) {
		log_info("migration %s: %s watches vm %s's %d VIF(s) %" PRIu64 " ms into the RAM "
			 "phase",
			 m->id, m->dst_host, m->vm, p->nnics, since_ms);
	} else if (since_ms >= LIVE_NET_HOLD_MS) {
		log_warn("migration %s: %s does not watch vm %s's VIFs after %" PRIu64 " ms; "
			 "the switchover goes on without the blackout account",
			 m->id, m->dst_host, m->vm, since_ms);
		ok = true;
	}
	p->net_ok = ok;
	return !ok;
}

/* ---- cut-over: the destination ----------------------------------------- */

static bool live_net_announced(const struct vifmon_stat *s)
{
	return s->have && (s->v.rarp_count || s->v.garp_count);
}

/* The destination's current taps of VM (not the ones that went). */
static int live_net_read_current(const char *vm, struct vifmon_stat *st, int max)
{
	struct vifmon_stat all[VIFMON_VM_NICS * 2];
	int i, n = vifmon_vm_read(vm, all, ARRAY_SIZE(all)), k = 0;

	for (i = 0; i < n && k < max; i++)
		if (!all[i].gone && !all[i].expected)
			st[k++] = all[i];
	return k;
}

static void live_net_wait(const char *vm, struct vifmon_stat *st, int *n, uint64_t until_ns,
			  bool (*done)(const struct vifmon_stat *))
{
	int i;

	for (;;) {
		*n = live_net_read_current(vm, st, VIFMON_VM_NICS);
		for (i = 0; i < *n && done(&st[i]); i++)
			;
		if (i == *n || vif_now_ns() >= until_ns)
			return;
		usleep(LIVE_NET_POLL_MS * 1000);
	}
}

static bool live_net_guest_seen(const struct vifmon_stat *s)
{
	return s->have && s->v.tx_first_ns;
}

/* The MAC on the tap's port, else put there; whether ferry had to. */
static bool live_net_fdb(const struct migration *m, const struct vifmon_stat *s, uint64_t wait_ns)
{
	uint64_t until = vif_now_ns() + wait_ns;
	int br = (int)if_nametoindex(s->bridge), port = 0, ret;
	char mac[24];

	fmt_mac(s->mac, mac, sizeof(mac));
	for (;;) {
		ret = net_fdb_port(br, s->mac, &port);
		if (!ret && port == s->ifindex)
			return false;
		if (vif_now_ns() >= until)
			break;
		usleep(LIVE_NET_POLL_MS * 1000);
	}
	ret = net_fdb_set(s->ifindex, s->mac);
	if (ret)
		log_err("migration %s: vm %s: bridge %s: cannot put %s on %s: %s", m->id, m->vm,
			s->bridge, mac, s->ifname, strerror(-ret));
	else
		log_warn("migration %s: vm %s: bridge %s had %s on %s, not on %s: moved it there "
			 "(a reachable entry)",
			 m->id, m->vm, s->bridge, mac, port ? "another port" : "no port", s->ifname);
	return !ret;
}

/*
 * The destination, the moment its VM resumed: QEMU's RARPs went out before
 * the vCPUs ran and the bridge learns from a frame as it takes it, so a
 * tap that had its announce and is not the MAC's port now will not become
 * it: put it there at once.  Waiting for the source's live.net cost a
 * guest whose bridge had a stale entry a second of dropped frames in the
 * lab.  Taps with no announce yet are live.net's.
 */
void live_net_resumed(struct migration *m)
{
	struct vifmon_stat st[VIFMON_VM_NICS];
	int i, n;

	if (!vifmon_enabled())
		return;
	n = live_net_read_current(m->vm, st, VIFMON_VM_NICS);
	for (i = 0; i < n; i++) {
		if (!live_net_announced(&st[i]) || !live_net_fdb(m, &st[i], 0))
			continue;
		mig_lock(m);
		if (m->live.nfdb_fixed < MIG_MAX_VIFS)
			m->live.fdb_fixed[m->live.nfdb_fixed++] = st[i].ifindex;
		mig_unlock(m);
	}
}

static bool live_net_fixed_at_resume(struct migration *m, int ifindex)
{
	bool found = false;

	mig_lock(m);
	for (int i = 0; i < m->live.nfdb_fixed; i++)
		found |= m->live.fdb_fixed[i] == ifindex;
	mig_unlock(m);
	return found;
}

static struct json_object *live_net_stat_json(const struct vifmon_stat *s, bool self, bool fixed)
{
	struct json_object *o = json_object_new_object();
	char mac[24];

	json_object_object_add(o, "mac",
			       json_object_new_string(fmt_mac(s->mac, mac, sizeof(mac))));
	json_object_object_add(o, "tap", json_object_new_string(s->ifname));
	json_object_object_add(o, "bridge", json_object_new_string(s->bridge));
	json_object_object_add(o, "tx_first_ns", json_object_new_uint64(s->v.tx_first_ns));
	json_object_object_add(o, "rarp_count", json_object_new_uint64(s->v.rarp_count));
	json_object_object_add(o, "rarp_first_ns", json_object_new_uint64(s->v.rarp_first_ns));
	json_object_object_add(o, "garp_count", json_object_new_uint64(s->v.garp_count));
	json_object_object_add(o, "garp_first_ns", json_object_new_uint64(s->v.garp_first_ns));
	json_object_object_add(o, "drops", json_object_new_uint64(s->v.drops));
	json_object_object_add(o, "attach_lag_ns", json_object_new_uint64(s->attach_lag_ns));
	json_object_object_add(o, "reattaches", json_object_new_uint64(s->reattaches));
	json_object_object_add(o, "announce_self", json_object_new_boolean(self));
	json_object_object_add(o, "fdb_fixed", json_object_new_boolean(fixed));
	return o;
}

/*
 * live.net: after the resume, each tap's announces, the FDB, the guest's
 * first frame.  The VM runs: the waits here cost the source's clean-up
 * some time, never the guest.
 */
struct json_object *live_dest_net(const struct rpc_ctx *ctx, struct json_object *req)
{
	const char *id = rpc_str(req, "id");
	struct migration *m = id ? store_find(id, MIG_ROLE_DEST) : NULL;
	struct vifmon_stat st[VIFMON_VM_NICS];
	bool self[VIFMON_VM_NICS] = { 0 }, fixed[VIFMON_VM_NICS] = { 0 }, any = false;
	uint64_t t0, wait_ns = (uint64_t)ferryd->conf.net_announce_wait_ms * 1000000;
	struct json_object *rep, *a;
	int64_t guest_ms;
	int i, n, ret;

	(void)ctx;
	if (!m || m->flow != &live_flow)
		return rpc_error(ENOENT, "%s: no such live migration on %s", id ?: "?",
				 ferryd->conf.host);
	if (!vifmon_enabled())
		return rpc_error(ENOTSUP, "%s: no VIF monitor on %s", m->id, ferryd->conf.host);
	mig_lock(m);
	t0 = m->live.t_resume_tai_ns ?: vif_now_ns();
	mig_unlock(m);
	live_net_wait(m->vm, st, &n, t0 + wait_ns, live_net_announced);
	for (i = 0; i < n; i++) {
		if (live_net_announced(&st[i]))
			continue;
		self[i] = any = true;
		log_warn("migration %s: vm %s: no announce on %s within %d ms of the resume",
			 m->id, m->vm, st[i].ifname, ferryd->conf.net_announce_wait_ms);
	}
	if (any) {
		if (vifmon_announce_dropping()) {
			log_warn("migration %s: test_drop_announce: announces pass again", m->id);
			vifmon_announce_drop(false);
		}
		ret = virt_domain_announce(ferryd->virt, m->vm);
		log_warn("migration %s: vm %s: QMP announce-self through libvirt's monitor "
			 "passthrough%s; libvirt marks the domain tainted (custom-monitor)",
			 m->id, m->vm, ret ? " failed" : " sent");
		live_net_wait(m->vm, st, &n, vif_now_ns() + wait_ns, live_net_announced);
	}
	/* learning is synchronous: after an announce there is nothing to wait for */
	for (i = 0; i < n; i++)
		fixed[i] = live_net_fixed_at_resume(m, st[i].ifindex) ||
			   live_net_fdb(m, &st[i],
					live_net_announced(&st[i]) ?
						0 :
						(uint64_t)LIVE_NET_FDB_MS * 1000000);
	guest_ms = rpc_int(req, "guest_wait_ms", LIVE_NET_GUEST_MS);
	guest_ms = guest_ms < 0 ? 0 : MIN(guest_ms, LIVE_NET_GUEST_MS);
	live_net_wait(m->vm, st, &n, vif_now_ns() + (uint64_t)guest_ms * 1000000,
		      live_net_guest_seen);
	rep = rpc_ok();
	a = json_object_new_array();
	for (i = 0; i < n; i++)
		json_object_array_add(a, live_net_stat_json(&st[i], self[i], fixed[i]));
	json_object_object_add(rep, "vifs", a);
	return rep;
}

/* ---- cut-over: the source's account ------------------------------------ */

static uint64_t live_net_us(uint64_t later_ns, uint64_t earlier_ns)
{
	return later_ns > earlier_ns && earlier_ns ? (later_ns - earlier_ns) / 1000 : 0;
}

/* The source's newest entry for this MAC: the tap the VM left. */
static const struct vifmon_stat *live_net_src(const struct vifmon_stat *st, int n,
					      const uint8_t mac[6])
{
	const struct vifmon_stat *best = NULL;

	for (int i = 0; i < n; i++)
		if (st[i].have && !memcmp(st[i].mac, mac, 6) && (!best || st[i].seq > best->seq))
			best = &st[i];
	return best;
}

static void live_net_account(struct migration *m, struct json_object *d,
			     const struct vifmon_stat *src, int nsrc)
{
	struct mig_vif *v = &m->live.vifs[m->live.nvifs];
	const struct vifmon_stat *s;
	uint64_t first_ann, last;
	uint8_t mac[6];
	const char *str = rpc_str(d, "mac");

	if (!str || parse_mac(str, mac) || m->live.nvifs >= MIG_MAX_VIFS)
		return;
	memset(v, 0, sizeof(*v));
	s = live_net_src(src, nsrc, mac);
	snprintf(v->mac, sizeof(v->mac), "%s", str);
	snprintf(v->bridge, sizeof(v->bridge), "%s", rpc_str(d, "bridge") ?: "");
	snprintf(v->dst_tap, sizeof(v->dst_tap), "%s", rpc_str(d, "tap") ?: "");
	v->rarps = (uint64_t)rpc_int(d, "rarp_count", 0);
	v->garps = (uint64_t)rpc_int(d, "garp_count", 0);
	v->announce_self = rpc_bool(d, "announce_self");
	v->announce_seen = (v->rarps || v->garps) && !v->announce_self;
	v->fdb_fixed = rpc_bool(d, "fdb_fixed");
	v->drops = (uint64_t)rpc_int(d, "drops", 0);
	v->attach_lag_us = (uint64_t)rpc_int(d, "attach_lag_ns", 0) / 1000;
	v->reattaches = (uint32_t)rpc_int(d, "reattaches", 0);
	v->guest_seen = rpc_int(d, "tx_first_ns", 0) > 0;
	if (s) {
		last = s->v.tx_last_ns;
		snprintf(v->src_tap, sizeof(v->src_tap), "%s", s->ifname);
		v->blackout_us = live_net_us((uint64_t)rpc_int(d, "tx_first_ns", 0), last);
		first_ann = (uint64_t)rpc_int(d, "rarp_first_ns", 0);
		if (rpc_int(d, "garp_first_ns", 0) > 0 &&
		    (!first_ann || (uint64_t)rpc_int(d, "garp_first_ns", 0) < first_ann))
			first_ann = (uint64_t)rpc_int(d, "garp_first_ns", 0);
		v->announce_lag_us = live_net_us(first_ann, last);
		v->stranded_packets = s->v.rx_since_tx;
		v->drops += s->v.drops;
	}
	m->live.nvifs++;
	m->m.net_vifs++;
	m->m.net_vifs_seen += v->guest_seen && s;
	m->m.net_blackout_us = MAX(m->m.net_blackout_us, v->blackout_us);
	m->m.net_announce_lag_us = MAX(m->m.net_announce_lag_us, v->announce_lag_us);
	m->m.net_stranded_packets += v->stranded_packets;
	m->m.net_drops += v->drops;
	m->m.net_announce_self += v->announce_self;
	m->m.net_fdb_fixed += v->fdb_fixed;
}

/*
 * Whether a guest sent a frame on one of its taps here within
 * LIVE_NET_GUEST_MS of now_ns.  The destination waits for the first frame
 * of one that did (the blackout is that frame less the last one here); one
 * that did not has no blackout to measure (its first frame would time its
 * own silence), and waiting for it would only hold the migration's end.
 */
bool live_net_guest_talked(const struct vifmon_stat *src, int n, uint64_t now_ns)
{
	for (int i = 0; i < n; i++)
		if (src[i].have && src[i].v.tx_last_ns && now_ns >= src[i].v.tx_last_ns &&
		    now_ns - src[i].v.tx_last_ns <= (uint64_t)LIVE_NET_GUEST_MS * 1000000)
			return true;
	return false;
}

/* After the resume: what each NIC went through, into the record. */
void live_net_cutover(struct migration *m)
{
	struct vifmon_stat src[VIFMON_VM_NICS * 2];
	struct live_priv *p = m->priv;
	struct json_object *req, *rep, *a;
	char err[512], why[64] = "";
	int i, n, wait_ms;

	if (!p || !p->nnics || !vifmon_enabled())
		return;
	n = vifmon_vm_read(m->vm, src, ARRAY_SIZE(src));
	if (m->was_paused)
		snprintf(why, sizeof(why), "stays paused");
	else if (!live_net_guest_talked(src, MAX(n, 0), vif_now_ns()))
		snprintf(why, sizeof(why), "sent no frame here in the last %d ms", LIVE_NET_GUEST_MS);
	wait_ms = why[0] ? 0 : LIVE_NET_GUEST_MS;
	if (why[0])
		log_info("migration %s: vm %s %s: its first frame on %s is not waited for", m->id,
			 m->vm, why, m->dst_host);
	req = rpc_req("live.net", m);
	json_object_object_add(req, "guest_wait_ms", json_object_new_int(wait_ms));
	rep = peer_call(m->dst_host, req, LIVE_NET_CALL_MS, err, sizeof(err));
	json_object_put(req); /* peer_call does not take it */
	if (!rep) {
		log_warn("migration %s: no network account from %s: %s", m->id, m->dst_host, err);
		return;
	}
	/* again: frames that came to the tap here meanwhile are stranded */
	n = vifmon_vm_read(m->vm, src, ARRAY_SIZE(src));
	mig_lock(m);
	m->live.nvifs = 0;
	m->m.net_vifs = m->m.net_vifs_seen = m->m.net_blackout_us = 0;
	m->m.net_announce_lag_us = m->m.net_stranded_packets = m->m.net_drops = 0;
	m->m.net_announce_self = m->m.net_fdb_fixed = 0;
	if (json_object_object_get_ex(rep, "vifs", &a) && json_object_is_type(a, json_type_array))
		for (i = 0; i < (int)json_object_array_length(a); i++)
			live_net_account(m, json_object_array_get_idx(a, i), src, MAX(n, 0));
	mig_unlock(m);
	json_object_put(rep);
	for (i = 0; i < m->live.nvifs; i++) {
		const struct mig_vif *v = &m->live.vifs[i];
		char cut[96] = "blackout unknown (no guest frame on the destination)";

		if (v->guest_seen && v->src_tap[0])
			snprintf(cut, sizeof(cut), "blackout %.3f ms, announce lag %.3f ms",
				 (double)v->blackout_us / 1000, (double)v->announce_lag_us / 1000);
		log_info("migration %s: vm %s NIC %s: %s (%s -> %s on %s), %" PRIu64
			 " RARP(s) %" PRIu64 " GARP(s)%s, %" PRIu64 " stranded, %" PRIu64
			 " dropped%s",
			 m->id, m->vm, v->mac, cut, v->src_tap[0] ? v->src_tap : "?", v->dst_tap,
			 m->dst_host, v->rarps, v->garps,
			 v->announce_self ? " after announce-self" : "", v->stranded_packets,
			 v->drops, v->fdb_fixed ? ", FDB moved by ferry" : "");
	}
	vifmon_vm_forget(m->vm);
}
