/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * vif.h - the per-VIF counters shared by vif.bpf.c (tc programs on a VM's
 * tap) and ferryd, pinned as /sys/fs/bpf/ferry/vifs for
 * `bpftool map dump pinned /sys/fs/bpf/ferry/vifs`.  Fixed-width types only.
 *
 * Directions are the guest's: "tx" is what the guest transmits (tap
 * ingress), "rx" what is delivered to it (tap egress).  Times are
 * CLOCK_TAI in ns (bpf_ktime_get_tai_ns): synced across hosts by NTP/PTP,
 * so the destination's times compare with the source's.
 */
#ifndef FERRY_BPF_VIF_H
#define FERRY_BPF_VIF_H

#define FERRY_VIF_MAX 1024
/* The tc filters' handle and priority on the tap's clsact hooks. */
#define FERRY_VIF_TC_HANDLE 0xfe77
#define FERRY_VIF_TC_PRIO 0xfe77

#define FERRY_ETH_P_ARP 0x0806
#define FERRY_ETH_P_RARP 0x8035
#define FERRY_ETH_P_IPV6 0x86dd

struct ferry_vif_key {
	__u32 ifindex; /* in ferryd's network namespace */
};

/*
 * The counters, once: this list makes the map's fields and ferryd's JSON
 * of them (`ferry vifs`), so that neither misses one.  X(name, comment).
 */
#define FERRY_VIF_COUNTERS(X)                                                    \
	X(t_attached_ns, "when ferryd put the programs on")                     \
	/* Frames the guest sent, not its announces.  */                           \
	X(tx_packets, "guest frames, not announces")                            \
	X(tx_bytes, "")                                                         \
	X(tx_first_ns, "")                                                      \
	X(tx_last_ns, "")                                                       \
	X(tx_gap_max_ns, "longest time between two guest frames")               \
	X(tx_gap_end_ns, "the frame that ended it")                             \
	/* Frames delivered towards the guest. */                                \
	X(rx_packets, "")                                                       \
	X(rx_bytes, "")                                                         \
	X(rx_first_ns, "")                                                      \
	X(rx_last_ns, "")                                                       \
	X(rx_gap_max_ns, "")                                                    \
	X(rx_since_tx, "delivered since the guest's last frame")                \
	/* Announces: RARPs (QEMU's); GARPs, NAs, MLD reports (the guest's). */ \
	X(rarp_count, "")                                                       \
	X(rarp_first_ns, "")                                                    \
	X(rarp_last_ns, "")                                                     \
	X(garp_count, "")                                                       \
	X(garp_first_ns, "")                                                    \
	X(garp_last_ns, "")                                                     \
	X(na_count, "IPv6: unsolicited NAs and MLD reports")                    \
	X(na_first_ns, "")                                                      \
	X(na_last_ns, "")                                                       \
	X(announce_dropped, "by the test-only knob, never otherwise")           \
	/* Frames freed as drops on the tap (kfree_skb), either direction. */    \
	X(drops, "")                                                            \
	X(drop_last_ns, "")                                                     \
	X(drop_last_reason, "enum skb_drop_reason")

struct ferry_vif {
	/* Written by ferryd when it attaches (the programs never change them). */
	char vm[64];
	char ifname[16];
	__u8 mac[8]; /* the guest's MAC (6 bytes), not the tap's */
#define FERRY_VIF_FIELD(name, comment) __u64 name;
	FERRY_VIF_COUNTERS(FERRY_VIF_FIELD)
#undef FERRY_VIF_FIELD
};

#ifndef __bpf__
/* vif.c: the loader (userspace). */
#include <stdbool.h>
#include <stdint.h>

struct vif_watch;

/*
 * Load the programs (drops tracepoint attached) with the map pinned at
 * PIN_DIR/vifs, reusing one pinned before (a restart keeps the counters).
 * DROP_ANNOUNCES sets the test-only knob.  NULL + errno.
 */
struct vif_watch *vif_watch_open(const char *pin_dir, bool drop_announces);
void vif_watch_close(struct vif_watch *vw); /* the tc filters stay */
/*
 * Take ferry's filters (our handle, priority and program names) off every
 * link of this network namespace, for a ferryd whose monitor is off; the
 * qdiscs and the pinned map stay.  How many links, or -errno.
 */
int vif_links_detach(void);
/* Drop the entries of links that no longer exist here; how many. */
int vif_watch_prune(struct vif_watch *vw);

/* Where a tap's programs sit: what vif_tap_attach and vif_tap_reattach return. */
enum vif_hook {
	VIF_HOOK_INGRESS = 1 << 0, /* what the guest transmits: tx_* */
	VIF_HOOK_EGRESS = 1 << 1,  /* what is delivered to it: rx_* */
};

/*
 * Watch tap IFINDEX: a fresh entry (VM, IFNAME, the guest's MAC), or the
 * one of the same VM, MAC and name from before a restart with its counters,
 * then the filters on its clsact hooks, replacing ours from before.  The
 * clsact qdisc is created when missing.  A tap whose ingress slot holds an
 * `ingress` qdisc (libvirt's outbound <bandwidth>) has no egress hook: it
 * gets the ingress program only.  Returns the VIF_HOOK_* attached, or
 * -errno.
 */
int vif_tap_attach(struct vif_watch *vw, int ifindex, const char *ifname, const uint8_t mac[6],
		   const char *vm);
/* The filters again, the entry kept (after someone removed the qdisc). */
int vif_tap_reattach(struct vif_watch *vw, int ifindex);
/* Our filters off (never the qdisc: others may use it); the entry stays. */
int vif_tap_detach(struct vif_watch *vw, int ifindex);
/* Our filters are on every hook the tap has. */
bool vif_tap_attached(struct vif_watch *vw, int ifindex);
int vif_tap_read(struct vif_watch *vw, int ifindex, struct ferry_vif *out);
int vif_tap_forget(struct vif_watch *vw, int ifindex);
/* The test-only knob's state; see vif.bpf.c. */
void vif_watch_announce_drop(struct vif_watch *vw, bool on);
bool vif_watch_announce_dropping(struct vif_watch *vw);
/* Now on the programs' clock (CLOCK_TAI), ns. */
uint64_t vif_now_ns(void);
#endif

#endif /* FERRY_BPF_VIF_H */
