#!/bin/bash
# live bench: ferry's live block migration beside libvirt's own (virsh
# migrate --live --p2p --copy-storage-all: QEMU's NBD mirror), one run each,
# at 1 Gbit/s and unshaped, for a guest with an 8 GiB disk of which 2 GiB is
# written (its records compress about 2:1) and 256 MiB of RAM, writing
# 2 MiB/s throughout.  Then the same on shared storage: ferry beside plain
# `virsh migrate --live --p2p`.  The tools take turns moving the one guest,
# h1 -> h2 and back, and the guest verifies every block after each move.
#
# total     = the command's start to its return (ferry: --wait)
# wire      = the source's eth0 transmit counter (headers and all)
# blackout  = the guest's downtime from outside: its heartbeat (a line every
#             ms on a virtio-serial port, ferry-lab heartbeat) stops arriving
#             on the source and starts on the destination; the same reader
#             for both tools.  hb_jitter is the longest gap between beats
#             outside the blackout: the figure's resolution under TCG.
# reported  = each tool's own account: ferry's downtime_ms; libvirt's
#             `downtime` (domjobinfo --completed), QEMU's pause only.
#
# Each pair runs BENCH_LIVE_REPS times (default 3), ferry and libvirt in
# turn; the summary lines compare medians (total in ms, blackout in ms).
#
# Env: BENCH_LIVE_RATES (default "1gbit none"), BENCH_LIVE_DISK (8G),
# BENCH_LIVE_SPAN (2G), BENCH_LIVE_REPS (3), BENCH_LIVE_SHARED (1: also the
# shared-storage table).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$top/tools/ferry-lab
lab=blive$$
rates=${BENCH_LIVE_RATES:-"1gbit none"}
disk=${BENCH_LIVE_DISK:-8G}
span=${BENCH_LIVE_SPAN:-2G}
reps=${BENCH_LIVE_REPS:-3}
L() { "$LAB" --lab "$lab" "$@"; }
tmp=$(mktemp -d)
cleanup() {
	L down >/dev/null 2>&1 || true
	[ "$lab" = "blive$$" ] || "$LAB" --lab "blive$$" down >/dev/null 2>&1 || true
	rm -rf "$tmp"
}
trap cleanup EXIT
now_ms() { date +%s%3N; }
tx_bytes() { L exec "$1" cat /sys/class/net/eth0/statistics/tx_bytes; }
verify() { L verify "$1" g1 | grep -q '^VERIFY PASS' && echo PASS || echo FAIL; }
addr() { L addr "$1"; }
img=/var/lib/libvirt/images/g1

# hb_start SRC DST: follow g1's heartbeat; returns once the source's beats arrive.
hb_start() {
	rm -f "$tmp/hb.ready" "$tmp/hb.json"
	L heartbeat "$1" "$2" g1 --after 300 --timeout 900 --ready "$tmp/hb.ready" \
		>"$tmp/hb.json" 2>"$tmp/hb.err" &
	hb_pid=$!
	for ((i = 0; i < 100; i++)); do
		[ -e "$tmp/hb.ready" ] && return 0
		kill -0 "$hb_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "heartbeat: no beats from $1: $(cat "$tmp/hb.json" "$tmp/hb.err")" >&2
	return 1
}
# hb_end: the blackout and the jitter, ms.
hb_end() {
	wait "$hb_pid" || { echo "heartbeat: $(cat "$tmp/hb.json" "$tmp/hb.err")" >&2; echo "- -"; return 0; }
	jq -r '"\(.blackout_ms * 10 | round / 10) \([.src_gap_max_ms, .dst_gap_max_ms] | max | round)"' \
		"$tmp/hb.json"
}

row() { # TOOL MOVE TOTAL_MS WIRE_BYTES BLACKOUT JITTER REPORTED_MS VERIFY
	printf '| %-24s | %-6s | %8.1f | %9.0f | %11s | %9s | %14s | %-6s |\n' "$1" "$2" \
		"$(echo "$3 / 1000" | bc -l)" "$(echo "$4 / 1048576" | bc -l)" "$5" "$6" "$7" "$8"
	echo "${1// /_} $3 $5" >>"$tmp/rows"
}
header() {
	echo
	echo "$1"
	echo
	printf '| %-24s | %-6s | %8s | %9s | %11s | %9s | %14s | %-6s |\n' tool move total_s \
		wire_MiB blackout_ms hb_jitter reported_ms verify
	echo "|--------------------------|--------|----------|-----------|-------------|-----------|----------------|--------|"
}

ferry_run() { # SRC DST TOOLNAME
	local src=$1 dst=$2 t0 t1 tx0 id s bo jit
	hb_start "$src" "$dst"
	tx0=$(tx_bytes "$src")
	t0=$(now_ms)
	L exec "$src" ferry live-migrate g1 --to "$dst" --wait >"$tmp/ferry.out" 2>&1 ||
		{ cat "$tmp/ferry.out" >&2; return 1; }
	t1=$(now_ms)
	read -r bo jit < <(hb_end)
	id=$(L exec "$src" ferry -j migrations g1 | jq -r 'sort_by(.created_ms) | .[-1].id')
	s=$(L exec "$src" ferry -j show "$id")
	row "$3" "$src>$dst" $((t1 - t0)) $(($(tx_bytes "$src") - tx0)) "$bo" "$jit" \
		"$(jq -r '"\(.metrics.downtime_ms) (QEMU \(.metrics.qemu_downtime_ms))"' <<<"$s")" \
		"$(verify "$dst")"
}

# libvirt_run SRC DST TOOLNAME [VIRSH_OPTS...]: Nova's way (its driver
# pre-creates the disk on the destination, then libvirt mirrors it).
libvirt_run() {
	local src=$1 dst=$2 name=$3 t0 t1 tx0 bo jit dt copy=0
	shift 3
	[[ " $* " != *" --copy-storage-all "* ]] || copy=1
	[ "$copy" = 0 ] || L exec "$dst" sh -c "mkdir -p $img && qemu-img create -q -f raw $img/disk $disk"
	hb_start "$src" "$dst"
	tx0=$(tx_bytes "$src")
	t0=$(now_ms)
	L virsh "$src" migrate --live --p2p --persistent --undefinesource "$@" g1 \
		"qemu+tcp://$(addr "$dst")/system" >"$tmp/virsh.out" 2>&1 ||
		{ cat "$tmp/virsh.out" >&2; return 1; }
	t1=$(now_ms)
	read -r bo jit < <(hb_end)
	dt=$(L virsh "$dst" domjobinfo g1 --completed 2>/dev/null | awk '/^Total downtime:/ { print $3 }')
	row "$name" "$src>$dst" $((t1 - t0)) $(($(tx_bytes "$src") - tx0)) "$bo" "$jit" \
		"${dt:--} (QEMU)" "$(verify "$dst")"
	# what libvirt leaves behind on the source (Nova's post_live_migration)
	[ "$copy" = 0 ] || L exec "$src" rm -rf "$img"
}

median() { # TOOL FIELD(2=total 3=blackout): the median of the tool's rows
	awk -v t="${1// /_}" -v f="$2" '$1 == t && $f != "-" { print $f }' "$tmp/rows" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { # TOOL_A TOOL_B FIELD: median(A) / median(B)
	local a b
	a=$(median "$1" "$3")
	b=$(median "$2" "$3")
	if [ -n "$a" ] && [ -n "$b" ]; then
		awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f (%s / %s)", a / b, a, b }'
	else
		echo "-"
	fi
}

echo "guest: $disk disk, writing $span of it; 256 MiB RAM; heartbeat every 1 ms"
L up --hosts 2 >/dev/null 2>&1
L guest h1 g1 --disk-size "$disk" --span "$span" --memory 256 --write-rate 256M \
	--heartbeat 1 --timeout 300 >/dev/null 2>&1
want=$(($(numfmt --from=iec "$span") / 4096))
for ((i = 0; i < 900; i++)); do
	seq=$(L agent h1 g1 STATUS | sed -n 's/.*seq=\([0-9]*\).*/\1/p')
	[ "${seq:-0}" -ge "$want" ] && break
	sleep 1
done
L agent h1 g1 RATE 2M >/dev/null
echo "written: $(($(L exec h1 du -B1 "$img/disk" | cut -f1) >> 20)) MiB allocated of $disk; now 2 MiB/s"

for rate in $rates; do
	L shape --rate "$rate" >/dev/null 2>&1
	: >"$tmp/rows"
	header "link: $rate (block migration: non-shared disks), load $(cut -d' ' -f1 /proc/loadavg)"
	for ((r = 0; r < reps; r++)); do
		ferry_run h1 h2 ferry
		libvirt_run h2 h1 "libvirt copy-storage-all" --copy-storage-all --verbose
	done
	echo
	echo "$rate, medians of $reps: ferry's total time / libvirt's = $(ratio ferry "libvirt copy-storage-all" 2) ms" \
		"(target <= 0.5 at 1gbit); blackout $(ratio ferry "libvirt copy-storage-all" 3) ms (target <= 1)"
done

if [ "${BENCH_LIVE_SHARED:-1}" = 1 ]; then
	L down >/dev/null 2>&1
	lab=blives$$
	L up --hosts 2 --shared >/dev/null 2>&1
	L guest h1 g1 --disk-size 256M --memory 256 --write-rate 2M --heartbeat 1 >/dev/null 2>&1
	: >"$tmp/rows"
	header "shared storage (unshaped): only RAM moves, load $(cut -d' ' -f1 /proc/loadavg)"
	for ((r = 0; r < reps; r++)); do
		ferry_run h1 h2 ferry
		# --unsafe: libvirt cannot tell the lab's bind mount is shared
		# (it knows NFS, GFS2, Ceph...); ferry proved it with its probe.
		libvirt_run h2 h1 "virsh migrate --live" --unsafe
	done
	echo
	echo "shared, medians of $reps: ferry's blackout / plain libvirt's = $(ratio ferry "virsh migrate --live" 3) ms"
fi
