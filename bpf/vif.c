// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vif.c - loads vif.bpf.o and puts its tc programs on VM taps.
 *
 * The map is pinned (PIN_DIR/vifs) so that a restarted ferryd keeps the
 * counters and `bpftool map dump` reads them.  The filters carry a fixed
 * handle and priority (vif.h) on the tap's clsact hooks: attaching again
 * replaces ours and nobody else's, and a detach removes only ours, never
 * the qdisc, which libvirt or an operator may use too.
 */
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common.h"
#include "pin.h"
#include "vif.h"
#include "vif.skel.h"

struct vif_watch {
	struct vif_bpf *skel;
	int map_fd;
	__u32 prog_id[2]; /* ingress, egress */
};

static const enum bpf_tc_attach_point vif_points[2] = { BPF_TC_INGRESS, BPF_TC_EGRESS };

static __u32 vif_prog_id(int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return 0;
	return info.id;
}

static int vif_netns_ino(__u32 *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

struct vif_watch *vif_watch_open(const char *pin_dir, bool drop_announces)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct vif_watch *vw;
	int ret;

	ret = mkdir_p(pin_dir, 0700);
	if (ret) {
		log_err("vif: %s: %s (is bpffs mounted on /sys/fs/bpf?)", pin_dir, strerror(-ret));
		errno = -ret;
		return NULL;
	}
	vw = calloc(1, sizeof(*vw));
	if (!vw)
		return NULL;
	vw->skel = vif_bpf__open_opts(&opts);
	if (!vw->skel) {
		ret = -errno;
		log_err("vif: open BPF object: %s", strerror(errno));
		goto err;
	}
	ret = vif_netns_ino((__u32 *)&vw->skel->rodata->netns_ino);
	if (ret) {
		log_err("vif: /proc/self/ns/net: %s", strerror(-ret));
		goto err;
	}
	ret = bpf_pin_check(vw->skel->maps.vifs, pin_dir, "vif");
	if (!ret)
		ret = vif_bpf__load(vw->skel);
	if (ret) {
		log_err("vif: load (pin %s/vifs): %s", pin_dir, strerror(-ret));
		goto err;
	}
	ret = vif_bpf__attach(vw->skel);
	if (ret) {
		log_err("vif: attach tp_btf/kfree_skb: %s", strerror(-ret));
		goto err;
	}
	vw->skel->bss->drop_announces = drop_announces;
	if (drop_announces)
		log_warn("vif: test_drop_announce is set: announces are dropped on watched taps");
	vw->map_fd = bpf_map__fd(vw->skel->maps.vifs);
	vw->prog_id[0] = vif_prog_id(bpf_program__fd(vw->skel->progs.vif_ingress));
	vw->prog_id[1] = vif_prog_id(bpf_program__fd(vw->skel->progs.vif_egress));
	return vw;
err:
	vif_bpf__destroy(vw->skel);
	free(vw);
	errno = -ret;
	return NULL;
}

void vif_watch_close(struct vif_watch *vw)
{
	if (!vw)
		return;
	/* The filters hold their programs; a restarted ferryd replaces them. */
	vif_bpf__destroy(vw->skel);
	free(vw);
}

static int vif_filter_put(struct bpf_tc_hook *hook, int prog_fd)
{
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = FERRY_VIF_TC_HANDLE, .priority = FERRY_VIF_TC_PRIO,
		    .prog_fd = prog_fd, .flags = BPF_TC_F_REPLACE);
	int ret;

	/*
	 * Create the qdisc only when an attach finds none (asking to create
	 * one that exists makes the kernel complain through libbpf's log).
	 */
	ret = bpf_tc_attach(hook, &o);
	if (ret == -EINVAL || ret == -ENOENT) {
		ret = bpf_tc_hook_create(hook);
		if (ret && ret != -EEXIST)
			return ret;
		o.prog_id = 0;
		ret = bpf_tc_attach(hook, &o);
	}
	return ret;
}

/* The id of the program our handle and priority hold at HOOK, or 0. */
static __u32 vif_filter_id(int ifindex, enum bpf_tc_attach_point point)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = point);
	LIBBPF_OPTS(bpf_tc_opts, o, .handle = FERRY_VIF_TC_HANDLE, .priority = FERRY_VIF_TC_PRIO);

	return bpf_tc_query(&hook, &o) ? 0 : o.prog_id;
}

/*
 * Ingress first.  If an `ingress` qdisc holds the tap's ingress slot
 * rather than a clsact (libvirt's outbound <bandwidth> makes one), the
 * kernel files every parent under that one block: the egress point then
 * answers with the ingress program, and attaching there would replace it.
 * Such a tap gets the ingress program only.
 */
static int vif_filters_put(struct vif_watch *vw, int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, in, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
	LIBBPF_OPTS(bpf_tc_hook, eg, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	int ret;

	ret = vif_filter_put(&in, bpf_program__fd(vw->skel->progs.vif_ingress));
	if (ret)
		return ret;
	if (vif_filter_id(ifindex, BPF_TC_EGRESS) == vw->prog_id[0])
		return VIF_HOOK_INGRESS;
	ret = vif_filter_put(&eg, bpf_program__fd(vw->skel->progs.vif_egress));
	return ret ?: VIF_HOOK_INGRESS | VIF_HOOK_EGRESS;
}

int vif_tap_attach(struct vif_watch *vw, int ifindex, const char *ifname, const uint8_t mac[6],
		   const char *vm)
{
	struct ferry_vif_key key = { .ifindex = ifindex };
	struct ferry_vif v = {}, old;
	bool fresh = true;
	int ret;

	snprintf(v.vm, sizeof(v.vm), "%s", vm);
	snprintf(v.ifname, sizeof(v.ifname), "%s", ifname);
	memcpy(v.mac, mac, 6);
	/*
	 * The same VM's tap as before a restart of ours keeps its counters;
	 * anything else (another VM, a MAC or name that changed) starts
	 * from zero.
	 */
	if (!bpf_map_lookup_elem(vw->map_fd, &key, &old) && !memcmp(old.mac, v.mac, 6) &&
	    !strncmp(old.vm, v.vm, sizeof(v.vm)) && !strncmp(old.ifname, v.ifname, sizeof(v.ifname)))
		fresh = false;
	v.t_attached_ns = vif_now_ns();
	if (fresh && bpf_map_update_elem(vw->map_fd, &key, &v, BPF_ANY) < 0)
		return -errno;
	ret = vif_filters_put(vw, ifindex);
	if (ret < 0 && fresh)
		bpf_map_delete_elem(vw->map_fd, &key);
	return ret;
}

int vif_tap_reattach(struct vif_watch *vw, int ifindex)
{
	return vif_filters_put(vw, ifindex);
}

/* Our program at POINT of IFINDEX: our handle and priority, and our name. */
static bool vif_filter_ours(int ifindex, enum bpf_tc_attach_point point)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info), id = vif_filter_id(ifindex, point);
	bool ours;
	int fd;

	if (!id)
		return false;
	fd = bpf_prog_get_fd_by_id(id);
	if (fd < 0)
		return false;
	ours = !bpf_obj_get_info_by_fd(fd, &info, &len) &&
	       (!strcmp(info.name, "vif_ingress") || !strcmp(info.name, "vif_egress"));
	close(fd);
	return ours;
}

/*
 * Our handle and priority off both hooks of IFINDEX; with ONLY_OURS, only
 * where the program there is one of ours by name (a filter some other
 * loader put at our handle stays).  How many came off, or -errno.
 */
static int vif_filters_del(int ifindex, bool only_ours)
{
	int n = 0, ret = 0, r;

	for (int i = 0; i < 2; i++) {
		LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = vif_points[i]);
		LIBBPF_OPTS(bpf_tc_opts, o, .handle = FERRY_VIF_TC_HANDLE,
			    .priority = FERRY_VIF_TC_PRIO);

		if (only_ours && !vif_filter_ours(ifindex, vif_points[i]))
			continue;
		r = bpf_tc_detach(&hook, &o);
		if (!r)
			n++;
		else if (r != -ENOENT && r != -ENODEV && r != -EINVAL && !ret)
			ret = r;
	}
	return ret ?: n;
}

int vif_tap_detach(struct vif_watch *vw, int ifindex)
{
	int ret = vif_filters_del(ifindex, false);

	(void)vw;
	return ret < 0 ? ret : 0;
}

bool vif_tap_attached(struct vif_watch *vw, int ifindex)
{
	__u32 eg;

	if (vif_filter_id(ifindex, BPF_TC_INGRESS) != vw->prog_id[0])
		return false;
	eg = vif_filter_id(ifindex, BPF_TC_EGRESS);
	/* the second: an ingress qdisc, one block (see vif_filters_put) */
	return eg == vw->prog_id[1] || eg == vw->prog_id[0];
}

int vif_tap_read(struct vif_watch *vw, int ifindex, struct ferry_vif *out)
{
	struct ferry_vif_key key = { .ifindex = ifindex };

	if (bpf_map_lookup_elem(vw->map_fd, &key, out) < 0)
		return -errno;
	return 0;
}

int vif_tap_forget(struct vif_watch *vw, int ifindex)
{
	struct ferry_vif_key key = { .ifindex = ifindex };

	if (bpf_map_delete_elem(vw->map_fd, &key) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int vif_links_detach(void)
{
	struct if_nameindex *ifs, *i;
	int n = 0;

	ifs = if_nameindex();
	if (!ifs)
		return -errno;
	for (i = ifs; i->if_index; i++)
		n += vif_filters_del((int)i->if_index, true) > 0;
	if_freenameindex(ifs);
	return n;
}

int vif_watch_prune(struct vif_watch *vw)
{
	struct ferry_vif_key key, next;
	char name[IF_NAMESIZE];
	int n = 0, ret;

	ret = bpf_map_get_next_key(vw->map_fd, NULL, &next);
	while (!ret) {
		key = next;
		ret = bpf_map_get_next_key(vw->map_fd, &key, &next);
		if (!if_indextoname(key.ifindex, name) &&
		    !bpf_map_delete_elem(vw->map_fd, &key))
			n++;
	}
	return n;
}

void vif_watch_announce_drop(struct vif_watch *vw, bool on)
{
	__atomic_store_n(&vw->skel->bss->drop_announces, on, __ATOMIC_SEQ_CST);
}

bool vif_watch_announce_dropping(struct vif_watch *vw)
{
	return __atomic_load_n(&vw->skel->bss->drop_announces, __ATOMIC_SEQ_CST);
}

uint64_t vif_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_TAI, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
