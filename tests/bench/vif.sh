#!/bin/bash
# tests/bench/vif.sh: what ferry's VIF programs (bpf/vif.bpf.c: a tc
# clsact program on each hook of a VM's tap, and a kfree_skb tracepoint)
# cost the traffic of the link they watch.  The programs are put on and
# taken off with build/tests/vif-probe, the loader ferryd uses (bpf/vif.c)
# without ferryd; "off" is the link with no clsact qdisc at all, "on" the
# qdisc and both programs, so the figure is everything ferry adds.
#
# Rows:
#   tcp   iperf3, one TCP stream, BENCH_VIF_SECS s, through a veth pair
#         between two namespaces made here (ferry-bvif-va -> ferry-bvif-vb,
#         198.18.200.0/24); the programs are on vpb, the receiver's end:
#         its ingress sees the data (on a tap: what the guest sends, the
#         heavier program), its egress the ACKs.  Gbit/s received.
#   udp   the same with UDP, 64-byte payloads, -b 0 (as fast as the one
#         sender goes): packets sent per second, the per-packet cost
#         (veth's TSO frames of up to 64 KiB hide it in the tcp row).
#   icmp  build/tests/pinger (ICMP echo, 1 kHz, BENCH_VIF_SECS s) from the
#         client namespace of lab `bvif` (tools/ferry-lab) to a TCG guest on
#         h1, whose tap carries the programs: median RTT.  h1's ferryd runs
#         with net_watch = no throughout (restarted so; the filters a
#         stopped ferryd leaves on the tap are removed with its clsact), and
#         vif-probe attaches in h1's namespace for the "on" runs: ferryd's
#         own monitor puts on the same programs, but restarting ferryd for
#         each run would change more than the programs.
# CPUs (iperf3 -A): veth delivers in the sender's softirq, so vpb's
# ingress program runs on the sender's CPU.  tcp: client and server both
# on CPU 0, the whole path bound by that one CPU (the worst case for a
# relative cost; apart, the two CPUs race, and the backlog drops and TCP
# retransmits by the thousand: 7-16 Gbit/s from one run to the next).
# udp: client on CPU 0, server on CPU 1, and the figure is the sender's
# rate (its CPU carries the programs); what the server receives depends
# on whether it keeps up, and is printed, not compared.
#
# Each row runs BENCH_VIF_PAIRS (default 6) A/B pairs, off-on then on-off
# in turn, so that a drift of this shared machine's load cancels; the
# table gives each arm's median, the median of the per-pair loss (tcp,
# udp: (off - on) / off) or ratio (icmp: on / off), and the spread of that
# per-pair figure (min / max).  Target: throughput loss under 2% (tcp).
# The bench reports, it does not gate: exit 0 once it ran, 77 when iperf3
# (or root) is missing, 1 on a failure.
#
# Env: BENCH_VIF_PAIRS (6), BENCH_VIF_SECS (3), BENCH_VIF_ROWS
# ("tcp udp icmp").
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
PROBE=$top/build/tests/vif-probe
PINGER=$top/build/tests/pinger
LAB=$top/tools/ferry-lab
lab=bvif
pairs=${BENCH_VIF_PAIRS:-6}
secs=${BENCH_VIF_SECS:-3}
rows=${BENCH_VIF_ROWS:-tcp udp icmp}
nsa=ferry-bvif-va nsb=ferry-bvif-vb
addra=198.18.200.1 addrb=198.18.200.2
port=5201

[ "$(id -u)" = 0 ] || { echo "vif: needs root (skipped)"; exit 77; }
for c in iperf3 jq tc ip nsenter; do
	command -v "$c" >/dev/null || { echo "vif: needs $c (skipped)"; exit 77; }
done
[ -x "$PROBE" ] && [ -x "$PINGER" ] || { echo "vif: no $PROBE or $PINGER (make all)"; exit 1; }
[[ $pairs =~ ^[1-9][0-9]*$ ]] && [[ $secs =~ ^[1-9][0-9]*$ ]] ||
	{ echo "vif: BENCH_VIF_PAIRS and BENCH_VIF_SECS: positive integers"; exit 1; }

tmp=$(mktemp -d)
pin=/sys/fs/bpf/ferry-bvif-$$
made_ns=() made_lab=0 pids=()
cleanup() {
	local p n
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for n in "${made_ns[@]}"; do ip netns del "$n" 2>/dev/null; done
	[ "$made_lab" = 0 ] || "$LAB" --lab "$lab" down >/dev/null 2>&1
	rm -rf "$pin" "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() { echo "vif: $*" >&2; exit 1; }
L() { "$LAB" --lab "$lab" "$@"; }
in_ns() { local n=$1; shift; nsenter --net="/run/netns/$n" -- "$@"; }
# iperf3 -A: tcp on CPU 0, udp's sender on 0 and its server on 1
aff_tcp=0,0 aff_udp=0,1
[ "$(nproc)" -ge 2 ] || aff_udp=0,0
mkdir -p "$pin"

# --- the statistics -----------------------------------------------------------
# $tmp/runs: "ROW PAIR ARM VALUE", one line per measured run.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
arm_median() { awk -v r="$1" -v a="$2" '$1 == r && $3 == a { print $4 }' "$tmp/runs" | median; }
# per_pair ROW loss|ratio: one figure per pair, (off - on) / off * 100 or on / off
per_pair() {
	awk -v r="$1" -v k="$2" '$1 == r { v[$2, $3] = $4; p[$2] = 1 }
		END { for (i in p) if (v[i, "off"] > 0 && ((i, "on") in v))
			print (k == "loss") ? (v[i, "off"] - v[i, "on"]) / v[i, "off"] * 100 : v[i, "on"] / v[i, "off"] }' \
		"$tmp/runs"
}
record() { echo "$1 $2 $3 $4" >>"$tmp/runs"; }
unpid() { # unpid PID: no longer ours to end
	local p keep=()
	for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	pids=("${keep[@]}")
}
: >"$tmp/runs"

# --- the programs on and off ---------------------------------------------------
# probe_on NETNS IFNAME [MAC]: vif-probe attached (both hooks), until probe_off.
probe_on() {
	local i mac=()
	[ -z "${3:-}" ] || mac=(-m "$3")
	"$PROBE" -n "/run/netns/$1" -p "$pin" "${mac[@]}" "$2" 0 >"$tmp/probe.json" 2>"$tmp/probe.err" &
	PROBE_PID=$!
	pids+=("$PROBE_PID")
	for ((i = 0; i < 100; i++)); do
		grep -q "attached to $2" "$tmp/probe.err" && break
		kill -0 "$PROBE_PID" 2>/dev/null || die "vif-probe on $2: $(cat "$tmp/probe.err")"
		sleep 0.05
	done
	grep -q "attached to $2" "$tmp/probe.err" || die "vif-probe on $2: not attached after 5 s"
	grep -q "ingress only" "$tmp/probe.err" && die "vif-probe on $2: ingress only (an ingress qdisc?)"
	return 0
}
# probe_off NETNS IFNAME: detach; the counters in $PROBE_J; the qdisc removed.
probe_off() {
	kill -TERM "$PROBE_PID"
	wait "$PROBE_PID" || die "vif-probe on $2: exit $?: $(cat "$tmp/probe.err")"
	PROBE_J=$(cat "$tmp/probe.json")
	jq -e .tx_packets <<<"$PROBE_J" >/dev/null || die "vif-probe on $2: output: $PROBE_J"
	unpid "$PROBE_PID"
	tc -n "$1" qdisc del dev "$2" clsact 2>/dev/null || true
}
check_bare() { # check_bare NETNS IFNAME: no filter of ours
	if tc -n "$1" filter show dev "$2" ingress | grep -q 'handle 0xfe77'; then
		die "$2: ferry's filter is on the 'off' arm: $(tc -n "$1" filter show dev "$2" ingress)"
	fi
}
pj() { jq -r "$1" <<<"$PROBE_J"; }

# run ROW PAIR ARM: one measured run of ROW with the programs ARM (off|on).
# meas_ROW prints the value and writes a note for the log in $tmp/meas.note.
run() {
	local row=$1 pair=$2 arm=$3 v ns dev mac
	case $row in tcp | udp) ns=$nsb dev=vpb mac= ;; icmp) ns=$h1ns dev=$tap mac=$gmac ;; esac
	check_bare "$ns" "$dev"
	[ "$arm" = off ] || probe_on "$ns" "$dev" "$mac"
	v=$("meas_$row")
	[ "$arm" = off ] || probe_off "$ns" "$dev"
	record "$row" "$pair" "$arm" "$v"
	if [ "$arm" = on ]; then
		echo "  pair $pair $arm: $v $(unit "$row") $(cat "$tmp/meas.note"); programs counted" \
			"tx $(pj .tx_packets) rx $(pj .rx_packets) drops $(pj .drops)"
		echo "$row $(pj .tx_packets) $(pj .rx_packets) $(pj .drops)" >>"$tmp/counted"
		sanity_"$row"
	else
		echo "  pair $pair $arm: $v $(unit "$row") $(cat "$tmp/meas.note")"
	fi
}
unit() { case $1 in tcp) echo Gbit/s ;; udp) echo "Mpps sent" ;; icmp) echo "us RTT" ;; esac; }
row_pairs() { # row_pairs ROW: the A/B pairs, off-on then on-off in turn
	local p
	for ((p = 1; p <= pairs; p++)); do
		if [ $((p % 2)) = 1 ]; then run "$1" "$p" off; run "$1" "$p" on
		else run "$1" "$p" on; run "$1" "$p" off; fi
	done
}

# --- the veth rows ---------------------------------------------------------------
iperf() { # iperf ARGS...: the client's JSON, retried while the server resets
	local i out
	for ((i = 0; i < 5; i++)); do
		if out=$(nsenter --net="/run/netns/$nsa" -- iperf3 -c "$addrb" -p "$port" \
			-t "$secs" -J "$@" 2>&1); then
			echo "$out"
			return 0
		fi
		sleep 0.5
	done
	die "iperf3 $*: $(jq -r '.error // empty' <<<"$out" 2>/dev/null || echo "$out")"
}
meas_tcp() {
	local j
	j=$(iperf -A "$aff_tcp")
	jq -r '"retransmits \(.end.sum_sent.retransmits)"' <<<"$j" >"$tmp/meas.note"
	jq -r '.end.sum_received.bits_per_second / 1e9 * 1000 | round / 1000' <<<"$j"
}
meas_udp() {
	local j
	j=$(iperf -u -l 64 -b 0 -A "$aff_udp")
	jq -r '.end.sum_received | "(server received \(.packets - .lost_packets) of \(.packets))"' \
		<<<"$j" >"$tmp/meas.note"
	jq -r '.end.sum_sent | .packets / .seconds / 1e6 * 10000 | round / 10000' <<<"$j"
}
# Every frame seen: the data on ingress (tcp: GSO frames, fewer than segments).
sanity_tcp() { [ "$(pj .tx_packets)" -gt 1000 ] && [ "$(pj .rx_packets)" -gt 1000 ] ||
	die "tcp: the programs counted too little: $PROBE_J"; }
sanity_udp() { [ "$(pj .tx_packets)" -gt 100000 ] || die "udp: the programs counted too little: $PROBE_J"; }

veth_up() {
	local n
	for n in "$nsa" "$nsb"; do
		[ ! -e "/run/netns/$n" ] || die "netns $n exists (another run of this bench? ip netns del $n)"
		ip netns add "$n"
		made_ns+=("$n")
		ip -n "$n" link set lo up
	done
	ip link add vpa netns "$nsa" type veth peer name vpb netns "$nsb"
	ip -n "$nsa" addr add "$addra/24" dev vpa
	ip -n "$nsb" addr add "$addrb/24" dev vpb
	ip -n "$nsa" link set vpa up
	ip -n "$nsb" link set vpb up
	nsenter --net="/run/netns/$nsb" -- iperf3 -s -B "$addrb" -p "$port" >"$tmp/iperf3-s.log" 2>&1 &
	pids+=("$!")
	for ((n = 0; n < 100; n++)); do
		in_ns "$nsb" ss -Hltn "sport = :$port" | grep -q . && break
		sleep 0.05
	done
	in_ns "$nsb" ss -Hltn "sport = :$port" | grep -q . || die "iperf3 -s: $(cat "$tmp/iperf3-s.log")"
	# warm-up, not counted (the first run after an idle spell is off)
	iperf -t 1 -A "$aff_tcp" >/dev/null
}

# --- the guest row -------------------------------------------------------------
meas_icmp() {
	local j
	j=$(L client "$PINGER" -j -d "$secs" "$gaddr") || die "pinger: $j"
	jq -r '"sent \(.sent) lost \(.lost), max \(.rtt_max_ns / 1000 | round) us"' <<<"$j" >"$tmp/meas.note"
	echo "$(jq -r .sent <<<"$j") $(jq -r .lost <<<"$j")" >>"$tmp/icmp.sent"
	jq -r '.rtt_median_ns / 100 | round / 10' <<<"$j"
}
# The probes and their replies, each on its hook (ARP aside).
sanity_icmp() {
	local want=$((secs * 900))
	[ "$(pj .tx_packets)" -gt "$want" ] && [ "$(pj .rx_packets)" -gt "$want" ] ||
		die "icmp: the programs counted too little: $PROBE_J"
}

lab_up() {
	local st
	if L list 2>/dev/null | grep -qx "$lab"; then
		die "lab '$lab' exists (another run of this bench? tools/ferry-lab --lab $lab down)"
	fi
	made_lab=1
	L up --hosts 2 >"$tmp/lab.log" 2>&1 || die "ferry-lab up: $(tail -3 "$tmp/lab.log")"
	# a guest that writes nothing to its disk: its vCPU answers alone
	L guest h1 vm1 --nic --disk-size 64M --write-rate 0 >>"$tmp/lab.log" 2>&1 ||
		die "ferry-lab guest: $(tail -3 "$tmp/lab.log")"
	gaddr=$(L guest-addr vm1)
	gmac=$(L -j guest-addr vm1 | jq -r .mac)
	tap=$(L virsh h1 domiflist vm1 | awk -v m="$gmac" '$5 == m { print $1 }')
	[ -n "$tap" ] || die "no tap of vm1 with $gmac: $(L virsh h1 domiflist vm1)"
	h1ns=ferry-$lab-h1
	FERRY_LAB_FERRYD_CONF='net_watch = no' L ferryd h1 restart >>"$tmp/lab.log" 2>&1 ||
		die "ferryd h1 restart: $(tail -3 "$tmp/lab.log")"
	L exec h1 grep -qx 'net_watch = no' /etc/ferry/ferryd.conf || die "h1's ferryd.conf has no net_watch = no"
	st="h1's ferryd restarted with net_watch = no"
	if L exec h1 tc filter show dev "$tap" ingress | grep -q 'handle 0xfe77'; then
		L exec h1 tc qdisc del dev "$tap" clsact
		st+="; it left its filters on $tap (a stopped ferryd does), removed with the clsact"
	fi
	L exec h1 tc filter show dev "$tap" ingress | grep -q 'handle 0xfe77' &&
		die "$tap: filter 0xfe77 still there"
	echo "$st; $tap has no filter 0xfe77"
	# warm-up, not counted
	L client "$PINGER" -d 1 "$gaddr" >/dev/null || die "the guest $gaddr does not answer"
}

# --- the runs ----------------------------------------------------------------------
others=$(bpftool prog show 2>/dev/null | grep -c ' name vif_drop ' || true)
echo "vif programs: off = no clsact on the link, on = vif-probe (clsact, both tc programs," \
	"kfree_skb tracepoint); $pairs A/B pairs per row (off-on, on-off, ...), ${secs} s per run"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg); vif_drop programs already loaded" \
	"on this machine (others' ferryd, both arms): ${others:-?}"
: >"$tmp/counted"
: >"$tmp/icmp.sent"
for row in $rows; do
	case $row in
	tcp | udp)
		[ -e "/run/netns/$nsb" ] || veth_up
		echo
		echo "$row: iperf3 $([ "$row" = tcp ] && echo "TCP, 1 stream, -A $aff_tcp" ||
			echo "UDP, 64 B, -b 0, -A $aff_udp")," \
			"$nsa -> $nsb, programs on vpb; load $(cut -d' ' -f1 /proc/loadavg)" ;;
	icmp)
		for n in "${made_ns[@]}"; do ip netns del "$n"; done
		made_ns=()
		echo
		lab_up
		echo "icmp: pinger 1 kHz from lab $lab's client to vm1 ($gaddr, TCG) on h1, programs" \
			"on $tap; load $(cut -d' ' -f1 /proc/loadavg)" ;;
	*) die "unknown row '$row' (tcp udp icmp)" ;;
	esac
	row_pairs "$row"
done

# --- the table -----------------------------------------------------------------------
fmt() { awk -v v="$1" -v d="$2" 'BEGIN { printf "%.*f", d, v }'; }
echo
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| row | off | on | loss % / ratio (median of pairs) | spread (min / max of pairs) |"
echo "|---|---|---|---|---|"
for row in $rows; do
	off=$(arm_median "$row" off) on=$(arm_median "$row" on)
	case $row in
	tcp | udp) k=loss d=2 suf=" %" ;;
	icmp) k=ratio d=3 suf="x" ;;
	esac
	m=$(per_pair "$row" "$k" | median)
	lo=$(per_pair "$row" "$k" | sort -g | head -1) hi=$(per_pair "$row" "$k" | sort -g | tail -1)
	case $row in
	tcp) name="TCP 1 stream, Gbit/s" ;;
	udp) name="UDP 64 B, Mpps sent" ;;
	icmp) name="ICMP RTT to a TCG guest, median us" ;;
	esac
	echo "| $name | $off | $on | $(fmt "$m" "$d")$suf | $(fmt "$lo" "$d") / $(fmt "$hi" "$d") |"
done
echo
if grep -q '^tcp ' "$tmp/runs"; then
	m=$(per_pair tcp loss | median)
	if awk -v m="$m" 'BEGIN { exit !(m < 2) }'; then verdict="met"; else verdict="NOT met"; fi
	echo "target: TCP throughput loss under 2%: $verdict (median of $pairs pairs: $(fmt "$m" 2)%)"
fi
if grep -q '^udp ' "$tmp/runs"; then
	off=$(arm_median udp off) on=$(arm_median udp on)
	echo "udp: $(awk -v a="$off" -v b="$on" 'BEGIN { printf "%.0f", 1000 / b - 1000 / a }') ns more" \
		"per packet for the one sender (1/pps, medians); drops counted by the programs" \
		"(socket-buffer drops behind vpb, in its namespace): median" \
		"$(awk '$1 == "udp" { print $4 }' "$tmp/counted" | median)"
fi
if [ -s "$tmp/icmp.sent" ]; then
	echo "icmp: $(awk '{ s += $1; l += $2 } END { print s " probes, " l " lost" }' "$tmp/icmp.sent")"
fi
