#!/bin/bash
# evacuate bench: how long a crashed host's VM is down, on shared storage,
# with and without disk leases.  Two hosts, real etcd (lease TTL
# BENCH_TTL s, grace BENCH_GRACE s), a TCG guest writing 1 MiB/s on the
# lab's shared storage; each round crashes the VM's host (every process
# killed at once), runs `ferry evacuate --wait` on the other host as soon
# as the dead host's key is gone, revives the dead host (its copy is
# quarantined, then purged) and goes the other way next round.
#
# detection = crash -> the dead host's alive key gone, as the survivor sees it
# recovery  = key gone -> the guest running on the survivor
# start     = the evacuation's libvirt start (sanlock: the wait for the dead
#             host's lease, 8 x io_timeout + 60 s after its last renewal)
#
# Rows: the lab without disk leases (--shared) and with libvirt's sanlock
# lock manager (--sanlock, io_timeout FERRY_LAB_SANLOCK_IO_TIMEOUT, 1 s),
# beside the published figures of other HA systems (design note).
# Every round's guest must give VERIFY UNCLEAN (every block sound).
#
# Env: BENCH_REPS (default 2), BENCH_TTL (3), BENCH_GRACE (3).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
LAB=$top/tools/ferry-lab
lab=bevac$$
reps=${BENCH_REPS:-2}
export FERRY_LAB_LEASE_TTL=${BENCH_TTL:-3} FERRY_LAB_EVACUATE_GRACE=${BENCH_GRACE:-3}
L() { "$LAB" --lab "$lab" "$@"; }
cleanup() { L down >/dev/null 2>&1 || true; }
trap cleanup EXIT
now_ms() { date +%s%3N; }
key_gone() { # VIEWER HOST
	[ "$(L exec "$1" ferry -j cluster | jq -r --arg h "$2" '[.hosts[]? | select(.host == $h)] | length')" = 0 ]
}
median() { sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }

declare -A det rec start
round() { # MODE DEAD ALIVE
	local mode=$1 dead=$2 alive=$3 t0 t1 t2 out v id i
	t0=$(now_ms)
	L crash "$dead" >/dev/null 2>&1
	until key_gone "$alive" "$dead"; do
		[ $(($(now_ms) - t0)) -lt 20000 ] || { echo "bench: $dead's key still there 20 s after the crash" >&2; exit 1; }
		sleep 0.05
	done
	t1=$(now_ms)
	out=$(L exec "$alive" ferry -j evacuate g1 --wait)
	until [ "$(L virsh "$alive" domstate g1 2>/dev/null | head -1)" = running ]; do sleep 0.05; done
	t2=$(now_ms)
	[ "$(echo "$out" | jq -r .step)" = "done" ] || { echo "bench: evacuation: $out" >&2; exit 1; }
	v=$(L verify "$alive" g1 2>&1) || true
	[[ $v == "VERIFY UNCLEAN"* ]] || { echo "bench: g1 on $alive after the evacuation: $v" >&2; exit 1; }
	det[$mode]+="$((t1 - t0)) " rec[$mode]+="$((t2 - t1)) "
	start[$mode]+="$(echo "$out" | jq -r .evacuate.start_ms) "
	printf '  %-10s %s -> %s  detection %6d ms  recovery %6d ms  start %6d ms  %s\n' "$mode" "$dead" "$alive" \
		$((t1 - t0)) $((t2 - t1)) "$(echo "$out" | jq -r .evacuate.start_ms)" "${v%% blocks=*}"
	L revive "$dead" >/dev/null 2>&1
	for ((i = 0; i < 100; i++)); do
		id=$(L exec "$alive" ferry -j quarantine | jq -r --arg h "$dead" '.[] | select(.vm == "g1" and .host == $h) | .id')
		[ -n "$id" ] && break
		sleep 0.1
	done
	[ -n "$id" ] || { echo "bench: $dead's copy of g1 was not quarantined" >&2; exit 1; }
	L exec "$alive" ferry quarantine purge "$id" >/dev/null
}

for mode in shared sanlock; do
	L up --hosts 2 --etcd "--$mode" >/dev/null
	L guest h1 g1 --disk-size 64M --write-rate 1M >/dev/null
	dead=h1 alive=h2
	for ((r = 0; r < reps; r++)); do
		round "$mode" "$dead" "$alive"
		t=$dead dead=$alive alive=$t
	done
	L down >/dev/null
done

echo
echo "evacuation on shared storage, TTL ${FERRY_LAB_LEASE_TTL} s, grace ${FERRY_LAB_EVACUATE_GRACE} s, $reps rounds each (medians):"
printf '%-44s %12s %12s %12s\n' "" detection recovery start
for mode in shared sanlock; do
	case $mode in
	shared) name="ferry, no disk leases" ;;
	sanlock) name="ferry, sanlock leases (io_timeout ${FERRY_LAB_SANLOCK_IO_TIMEOUT:-1} s)" ;;
	esac
	printf '%-44s %10s ms %10s ms %10s ms\n' "$name" \
		"$(tr ' ' '\n' <<<"${det[$mode]}" | grep . | median)" \
		"$(tr ' ' '\n' <<<"${rec[$mode]}" | grep . | median)" \
		"$(tr ' ' '\n' <<<"${start[$mode]}" | grep . | median)"
done
printf '%-44s %12s %12s\n' "Proxmox ha-manager (published)" - "~120000 ms"
printf '%-44s %12s %12s\n' "vSphere HA (published)" "15000 ms" -
printf '%-44s %12s %12s\n' "OpenShift Virtualization (published example)" - "~545000 ms"
