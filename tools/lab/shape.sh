# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034,SC2153,SC2004 # globals of ferry-lab
#
# tools/lab/shape.sh: link shaping of ferry-lab hosts (sourced by ferry-lab).
#
# Each host's link is shaped in both directions: tbf on the egress of the
# host's eth0 and on the egress of its switch port, so RATE is the rate of a
# full-duplex link.  A delay (netem) goes on the host side only, so DELAY is
# the one-way delay between any two hosts (RTT = 2 * DELAY).

# lab_rate_bps RATE: print RATE (tc syntax: 200mbit, 1gbit, 10gbit, 500kbit,
# or plain bit/s) in bit/s; fails on anything else.
lab_rate_bps() {
	[[ $1 =~ ^([0-9]+(\.[0-9]+)?)([kmgKMG]bit|bit)?$ ]] || return 1
	awk -v n="${BASH_REMATCH[1]}" -v u="${BASH_REMATCH[3],,}" 'BEGIN {
		m = (u == "kbit") ? 1e3 : (u == "mbit") ? 1e6 : (u == "gbit") ? 1e9 : 1
		v = n * m; if (v < 8000) exit 1; printf "%.0f\n", v }'
}

# lab_shape_tbf RATE: tbf arguments for RATE.  The burst must hold a GSO
# packet and, at high rates, several ms of traffic, or tbf undershoots:
# 4 ms worth, at least 1 MiB (1gbit: 1 MiB, 10gbit: 5 MB).
lab_shape_tbf() {
	local bps burst
	bps=$(lab_rate_bps "$1")
	burst=$((bps / 8 / 250))
	[ "$burst" -ge $((1024 * 1024)) ] || burst=$((1024 * 1024))
	echo "tbf rate $1 burst $burst latency 50ms"
}

# lab_tc NETNS ARGS...: tc inside NETNS; dies naming the object on failure.
lab_tc() {
	local ns=$1 out
	shift
	out=$(tc -n "$ns" "$@" 2>&1) && return 0
	lab_die "$ns: tc $*: $out"
}

# lab_shape_probe DELAY_MS: before touching any link, check that the kernel
# has what DELAY needs (netem), on the switch namespace's loopback.
lab_shape_probe() {
	local sns out
	[ "$1" != 0 ] || return 0
	sns=$(lab_sw_netns)
	modprobe -q sch_netem 2>/dev/null || true
	out=$(tc -n "$sns" qdisc add dev lo root netem delay 1ms 2>&1) ||
		lab_die "--delay: this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM; tc says: $out): links can be rate-limited here but not delayed"
	tc -n "$sns" qdisc del dev lo root 2>/dev/null || true
}

# lab_shape_host HOST RATE DELAY_MS: (re)shape HOST's link; none/0 = unshaped.
lab_shape_host() {
	local host=$1 rate=$2 delay=$3 hns sns tbf=''
	hns=$(lab_host_netns "$host") sns=$(lab_sw_netns)
	[ "$rate" = none ] || tbf=$(lab_shape_tbf "$rate")
	tc -n "$hns" qdisc del dev eth0 root 2>/dev/null || true
	tc -n "$sns" qdisc del dev "$host" root 2>/dev/null || true
	if [ "$delay" != 0 ]; then
		lab_tc "$hns" qdisc add dev eth0 root handle 1: netem delay "${delay}ms" limit 1000000
		# shellcheck disable=SC2086
		[ -z "$tbf" ] || lab_tc "$hns" qdisc add dev eth0 parent 1:1 handle 10: $tbf
	elif [ -n "$tbf" ]; then
		# shellcheck disable=SC2086
		lab_tc "$hns" qdisc add dev eth0 root handle 10: $tbf
	fi
	# shellcheck disable=SC2086
	[ -z "$tbf" ] || lab_tc "$sns" qdisc add dev "$host" root handle 10: $tbf
}

# lab_shape_parse rate|delay VALUE: check VALUE, set LAB_RATE or LAB_DELAY.
lab_shape_parse() {
	local d
	case $1 in
	rate)
		[ "$2" = none ] || lab_rate_bps "$2" >/dev/null ||
			lab_usage_die "--rate '$2': want a rate like 200mbit, 1gbit, 10gbit, or none"
		LAB_RATE=$2 ;;
	delay)
		d=${2%ms}
		[ "$d" != none ] || d=0
		[[ $d =~ ^[0-9]+(\.[0-9]+)?$ ]] ||
			lab_usage_die "--delay '$2': want milliseconds, e.g. 10, or 0"
		[[ ! $d =~ ^0+(\.0+)?$ ]] || d=0
		LAB_DELAY=$d ;;
	esac
}

lab_shape_desc() {
	local s=''
	[ "$LAB_RATE" = none ] || s="rate $LAB_RATE"
	[ "$LAB_DELAY" = 0 ] || s="${s:+$s }delay ${LAB_DELAY}ms"
	echo "${s:-none}"
}

lab_shape_json() {
	if [ "$LAB_RATE" = none ]; then
		printf '{"rate": null, "rate_bps": null, "delay_ms": %s}' "$LAB_DELAY"
	else
		printf '{"rate": %s, "rate_bps": %s, "delay_ms": %s}' \
			"$(lab_json_str "$LAB_RATE")" "$(lab_rate_bps "$LAB_RATE")" "$LAB_DELAY"
	fi
}

lab_usage_shape() {
	echo "  shape [--rate RATE|none] [--delay MS]"
	echo "                         change the shaping of a running lab's links"
}
lab_cmd_shape() {
	local rate='' delay='' h
	while [ $# -gt 0 ]; do
		case $1 in
		--rate) rate=${2:-}; shift ;;
		--rate=*) rate=${1#*=} ;;
		--delay) delay=${2:-}; shift ;;
		--delay=*) delay=${1#*=} ;;
		*) lab_common_opt "$@" || lab_usage_die "shape: unknown option '$1'"
		   shift "$LAB_SHIFT"; continue ;;
		esac
		shift
	done
	[ -n "$rate$delay" ] || lab_usage_die "shape: give --rate and/or --delay"
	lab_need_root
	lab_load
	[ -z "$rate" ] || lab_shape_parse rate "$rate"
	[ -z "$delay" ] || lab_shape_parse delay "$delay"
	for h in "${LAB_HOSTS[@]}"; do
		lab_host_check "$h"
	done
	lab_shape_probe "$LAB_DELAY"
	for h in "${LAB_HOSTS[@]}"; do
		lab_shape_host "$h" "$LAB_RATE" "$LAB_DELAY"
	done
	lab_state_add shape "$LAB_RATE" "$LAB_DELAY"
	if [ "$LAB_JSON" = 1 ]; then
		lab_out_json "{\"lab\": $(lab_json_str "$LAB_NAME"), \"shaping\": $(lab_shape_json)}"
	else
		lab_info "lab '$LAB_NAME': shaping $(lab_shape_desc)"
	fi
}
