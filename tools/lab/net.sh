# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034,SC2153 # globals of ferry-lab
#
# tools/lab/net.sh: cut a host off the lab switch and put it back (sourced
# by ferry-lab).  A partitioned host keeps running (its ferryd, libvirtd and
# guests) but no packet reaches or leaves it: the failure a dead or
# unreachable peer is to everyone else.  Its switch ports go down (eth0's,
# HOST, and its ferrybr0 uplink's, HOSTu: its guests are cut off too), so
# connections to it time out rather than being refused.

lab_usage_partition() {
	echo "  partition HOST...      cut HOSTs and their guests off the switch (they keep running)"
	echo "  heal HOST...           put partitioned HOSTs back"
}

# lab_port_set STATE HOST...: switch ports of each HOST up or down.
lab_port_set() {
	local state=$1 h p out
	shift
	[ $# -gt 0 ] || lab_usage_die "need a HOST"
	lab_load
	for h in "$@"; do
		lab_host_check "$h"
		for p in "$h" "${h}u"; do
			# a lab made before uplinks existed has no HOSTu
			[ "$p" = "$h" ] || ip -n "$(lab_sw_netns)" link show "$p" >/dev/null 2>&1 || continue
			out=$(ip -n "$(lab_sw_netns)" link set "$p" "$state" 2>&1) ||
				lab_die "$h: switch port $p $state: $out"
		done
	done
}

lab_cmd_partition() { lab_port_set down "$@"; }
lab_cmd_heal() { lab_port_set up "$@"; }
