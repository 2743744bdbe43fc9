// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vif.bpf.c - what a VM's network interface (its tap) carries, counted on
 * the tap itself: tc clsact programs on ingress (frames the guest
 * transmits) and egress (frames delivered to it), and a kfree_skb
 * tracepoint for the frames the kernel drops there.  The programs never
 * drop or change a frame (TC_ACT_UNSPEC), save for the test-only knob
 * below.  One map entry per tap that ferryd watches (vif.h); a tap without
 * one costs a hash lookup.
 *
 * Blackout at a live migration = the destination's first guest frame
 * (tx_first_ns) minus the source's last (tx_last_ns).  Announces are
 * counted apart and never as guest frames: QEMU's RARPs go out when the
 * incoming migration has loaded, before the guest runs, and the guest's
 * gratuitous ARPs, unsolicited NAs and MLD reports answer QEMU's announce
 * request (virtio-net's GUEST_ANNOUNCE), tens of milliseconds before it
 * serves its peers again.
 */
#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "vif.h"

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_SHOT 2

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 netns_ino; /* ferryd's network namespace (drops) */

/*
 * Test-only: drop announces (RARP, gratuitous ARP, NA, MLD) the guest's tap
 * transmits while set, so a test can show what ferry does when none
 * arrives.  ferryd sets it only with test_drop_announce in its config, and
 * clears it before it sends announce-self.
 */
__u32 drop_announces;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FERRY_VIF_MAX);
	__type(key, struct ferry_vif_key);
	__type(value, struct ferry_vif);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vifs SEC(".maps");

enum vif_kind {
	VIF_FRAME,
	VIF_RARP,
	VIF_GARP,
	VIF_NA, /* IPv6: unsolicited neighbour advertisement, MLD report */
};

#define ICMPV6_MLD_REPORT 131
#define ICMPV6_MLD_DONE 132
#define ICMPV6_NA 136
#define ICMPV6_MLD2_REPORT 143

/*
 * What a guest's kernel sends when QEMU asks it to announce itself
 * (NETDEV_NOTIFY_PEERS), besides its gratuitous ARP: an unsolicited
 * neighbour advertisement to all nodes, and MLD reports (behind a
 * hop-by-hop header).  Measured in the lab: GARP, NA, MLD, five times in
 * the first 900 ms after the resume.  A solicited NA is unicast: a peer
 * served, a guest frame.
 */
static __always_inline enum vif_kind vif_kind6(struct __sk_buff *skb)
{
	__u8 nh, type, hbh[2], dst0;
	__u32 off = 14 + 40;

	if (bpf_skb_load_bytes(skb, 14 + 6, &nh, 1))
		return VIF_FRAME;
	if (nh == 0) { /* hop-by-hop options: next header, length in 8 bytes - 1 */
		if (bpf_skb_load_bytes(skb, off, hbh, 2))
			return VIF_FRAME;
		nh = hbh[0];
		off += ((__u32)hbh[1] + 1) * 8;
	}
	if (nh != 58 || bpf_skb_load_bytes(skb, off & 0xff, &type, 1))
		return VIF_FRAME;
	if (type == ICMPV6_MLD_REPORT || type == ICMPV6_MLD_DONE || type == ICMPV6_MLD2_REPORT)
		return VIF_NA;
	if (type == ICMPV6_NA && !bpf_skb_load_bytes(skb, 0, &dst0, 1) && (dst0 & 1))
		return VIF_NA;
	return VIF_FRAME;
}

static __always_inline enum vif_kind vif_kind(struct __sk_buff *skb)
{
	__u32 spa, tpa;
	__u16 op;

	if (skb->protocol == bpf_htons(FERRY_ETH_P_RARP))
		return VIF_RARP;
	if (skb->protocol == bpf_htons(FERRY_ETH_P_IPV6))
		return vif_kind6(skb);
	if (skb->protocol != bpf_htons(FERRY_ETH_P_ARP))
		return VIF_FRAME;
	/* Ethernet (14), arphdr (8), sha (6), spa (4), tha (6), tpa (4). */
	if (bpf_skb_load_bytes(skb, 14 + 6, &op, sizeof(op)) ||
	    bpf_skb_load_bytes(skb, 14 + 8 + 6, &spa, sizeof(spa)) ||
	    bpf_skb_load_bytes(skb, 14 + 8 + 6 + 4 + 6, &tpa, sizeof(tpa)))
		return VIF_FRAME;
	if (spa == tpa && spa && (op == bpf_htons(1) || op == bpf_htons(2)))
		return VIF_GARP;
	return VIF_FRAME;
}

static __always_inline void vif_stamp(__u64 *count, __u64 *first, __u64 *last, __u64 now)
{
	if (!*first)
		*first = now;
	*last = now;
	(*count)++;
}

SEC("tc")
int vif_ingress(struct __sk_buff *skb)
{
	struct ferry_vif_key key = { .ifindex = skb->ifindex };
	struct ferry_vif *v;
	enum vif_kind kind;
	__u64 now;

	v = bpf_map_lookup_elem(&vifs, &key);
	if (!v)
		return TC_ACT_UNSPEC;
	now = bpf_ktime_get_tai_ns();
	kind = vif_kind(skb);
	if (kind != VIF_FRAME && drop_announces) {
		__sync_fetch_and_add(&v->announce_dropped, 1);
		return TC_ACT_SHOT;
	}
	if (kind == VIF_RARP) {
		vif_stamp(&v->rarp_count, &v->rarp_first_ns, &v->rarp_last_ns, now);
		return TC_ACT_UNSPEC;
	}
	if (kind == VIF_GARP) {
		vif_stamp(&v->garp_count, &v->garp_first_ns, &v->garp_last_ns, now);
		return TC_ACT_UNSPEC;
	}
	if (kind == VIF_NA) {
		vif_stamp(&v->na_count, &v->na_first_ns, &v->na_last_ns, now);
		return TC_ACT_UNSPEC;
	}
	if (v->tx_last_ns && now - v->tx_last_ns > v->tx_gap_max_ns) {
		v->tx_gap_max_ns = now - v->tx_last_ns;
		v->tx_gap_end_ns = now;
	}
	vif_stamp(&v->tx_packets, &v->tx_first_ns, &v->tx_last_ns, now);
	v->tx_bytes += skb->len;
	v->rx_since_tx = 0;
	return TC_ACT_UNSPEC;
}

SEC("tc")
int vif_egress(struct __sk_buff *skb)
{
	struct ferry_vif_key key = { .ifindex = skb->ifindex };
	struct ferry_vif *v;
	__u64 now;

	v = bpf_map_lookup_elem(&vifs, &key);
	if (!v)
		return TC_ACT_UNSPEC;
	now = bpf_ktime_get_tai_ns();
	if (v->rx_last_ns && now - v->rx_last_ns > v->rx_gap_max_ns)
		v->rx_gap_max_ns = now - v->rx_last_ns;
	vif_stamp(&v->rx_packets, &v->rx_first_ns, &v->rx_last_ns, now);
	v->rx_bytes += skb->len;
	v->rx_since_tx++;
	return TC_ACT_UNSPEC;
}

/* A tun/tap frees what it cannot queue (ring full, device down). */
SEC("tp_btf/kfree_skb")
int BPF_PROG(vif_drop, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct ferry_vif_key key = {};
	struct net_device *dev;
	struct ferry_vif *v;

	if (reason <= SKB_CONSUMED) /* freed after use, not dropped */
		return 0;
	dev = BPF_CORE_READ(skb, dev);
	if (!dev || BPF_CORE_READ(dev, nd_net.net, ns.inum) != netns_ino)
		return 0;
	key.ifindex = BPF_CORE_READ(dev, ifindex);
	v = bpf_map_lookup_elem(&vifs, &key);
	if (!v)
		return 0;
	__sync_fetch_and_add(&v->drops, 1);
	v->drop_last_ns = bpf_ktime_get_tai_ns();
	v->drop_last_reason = reason;
	return 0;
}
