#!/bin/bash
# cold-migrate bench: VM downtime and total time of ferry's warm cold
# migration beside a Nova-style one (power off, then move the instance dir
# aside and rsync --sparse --compress it, as Nova's libvirt driver does for
# non-shared storage, define and start on the destination) for a guest with
# a 4 GiB disk of which 1 GiB is written, writing 2 MiB/s throughout, on a
# 1 Gbit/s lab link.  Both flows move the same guest, alternately h1 -> h2
# and back, and the guest verifies every block after each move.
#
# downtime    = VM off -> running on the destination (what the issue asks)
# unavailable = shutdown request -> running on the destination
#
# Env: BENCH_REPS (default 2), BENCH_RATE (default 1gbit).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$top/tools/ferry-lab
lab=bcold$$
reps=${BENCH_REPS:-2}
rate=${BENCH_RATE:-1gbit}
L() { "$LAB" --lab "$lab" "$@"; }
cleanup() { L down >/dev/null 2>&1 || true; }
trap cleanup EXIT
now_ms() { date +%s%3N; }
tx_bytes() { L exec "$1" cat /sys/class/net/eth0/statistics/tx_bytes; }

L up --hosts 2 --rate "$rate" >/dev/null
for h in h1 h2; do
	L exec "$h" sh -c "printf '[images]\n path = /var/lib/libvirt/images\n read only = no\n uid = root\n gid = root\n' >/etc/ferry/rsyncd.conf &&
		rsync --daemon --config=/etc/ferry/rsyncd.conf --address=$(L addr "$h") --port=8730"
done

echo "guest: 4 GiB disk, filling 1 GiB ..."
L guest h1 g1 --disk-size 4G --span 1G --memory 256 --write-rate 256M >/dev/null
for ((i = 0; i < 300; i++)); do
	seq=$(L agent h1 g1 STATUS | sed -n 's/.*seq=\([0-9]*\).*/\1/p')
	[ "$seq" -ge 262144 ] && break
	sleep 1
done
L agent h1 g1 RATE 2M >/dev/null
alloc=$(L exec h1 du -B1 /var/lib/libvirt/images/g1/disk | cut -f1)
echo "guest written: $((alloc >> 20)) MiB allocated of 4096 MiB; now writing 2 MiB/s; link $rate"

verify() { L verify "$1" g1 | grep -q '^VERIFY PASS' && echo PASS || echo FAIL; }

ferry_run() { # SRC DST
	local src=$1 dst=$2 t0 t1 tx0 id s
	tx0=$(tx_bytes "$src")
	t0=$(now_ms)
	L exec "$src" ferry migrate g1 --to "$dst" --confirm >/dev/null
	t1=$(now_ms)
	id=$(L exec "$dst" ferry -j migrations g1 | jq -r 'sort_by(.created_ms) | .[-1].id')
	s=$(L exec "$dst" ferry -j show "$id")
	printf '%-14s %-7s %8.1f %10.1f %10.2f %12.2f %9.0f %7s\n' ferry "$src>$dst" \
		"$(echo "($t1 - $t0) / 1000" | bc -l)" \
		"$(echo "$s" | jq '.metrics.shutdown_ms / 1000')" \
		"$(echo "$s" | jq '.metrics.downtime_ms / 1000')" \
		"$(echo "$s" | jq '(.metrics.shutdown_ms + .metrics.downtime_ms) / 1000')" \
		"$(echo "($(tx_bytes "$src") - $tx0) / 1048576" | bc -l)" "$(verify "$dst")"
	echo "$s" | jq '.metrics.downtime_ms' >>"$tmp/ferry"
}

nova_run() { # SRC DST
	local src=$1 dst=$2 t0 toff trun tx0 xml
	tx0=$(tx_bytes "$src")
	xml=$(L virsh "$src" dumpxml --inactive g1)
	t0=$(now_ms)
	L virsh "$src" shutdown g1 >/dev/null
	while [ "$(L virsh "$src" domstate g1 | head -1)" != "shut off" ]; do sleep 0.05; done
	toff=$(now_ms)
	# migrate_disk_and_power_off: the instance dir goes to _resize, then is copied.
	L exec "$src" mv /var/lib/libvirt/images/g1 /var/lib/libvirt/images/g1_resize
	L exec "$src" rsync -a --sparse --compress /var/lib/libvirt/images/g1_resize/ \
		"rsync://$(L addr "$dst"):8730/images/g1/"
	# finish_migration: define and power on at the destination.
	echo "$xml" | L exec "$dst" sh -c 'cat >/tmp/g1.xml && virsh -q define /tmp/g1.xml >/dev/null'
	L virsh "$dst" start g1 >/dev/null
	trun=$(now_ms)
	# confirm_resize
	L virsh "$src" undefine g1 >/dev/null
	L exec "$src" rm -rf /var/lib/libvirt/images/g1_resize
	L exec "$dst" sh -c 'until test -S /var/lib/libvirt/qemu/channel/ferry/g1.agent; do sleep 0.1; done'
	printf '%-14s %-7s %8.1f %10.1f %10.2f %12.2f %9.0f %7s\n' nova-style "$src>$dst" \
		"$(echo "($trun - $t0) / 1000" | bc -l)" "$(echo "($toff - $t0) / 1000" | bc -l)" \
		"$(echo "($trun - $toff) / 1000" | bc -l)" "$(echo "($trun - $t0) / 1000" | bc -l)" \
		"$(echo "($(tx_bytes "$src") - $tx0) / 1048576" | bc -l)" "$(verify "$dst")"
	echo $((trun - toff)) >>"$tmp/nova"
}

tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT
printf '%-14s %-7s %8s %10s %10s %12s %9s %7s\n' flow move total_s shutdown_s downtime_s \
	unavailable_s wire_MiB verify
src=h1 dst=h2
for ((r = 0; r < reps; r++)); do
	ferry_run "$src" "$dst"
	nova_run "$dst" "$src"
done
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
f=$(median "$tmp/ferry")
n=$(median "$tmp/nova")
echo
printf 'median downtime: ferry %.2f s, nova-style %.2f s -> ferry is %.1fx shorter (target >= 10x)\n' \
	"$(echo "$f / 1000" | bc -l)" "$(echo "$n / 1000" | bc -l)" "$(echo "$n / $f" | bc -l)"
