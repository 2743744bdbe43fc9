#!/bin/bash
# cluster-fence: a host cut off from etcd fences itself (lease TTL 3 s).
# - h1 is partitioned while vm1 runs there: h1's ferryd begins to fence
#   before h2 sees h1's alive key gone, destroys vm1 (its metadata names h1
#   the owner), and vm1's QEMU is gone at most EVAC_GRACE_MS after the key
#   (the grace an evacuation waits; destroying a TCG guest takes 1-2 s here);
# - while fenced, libvirt refuses to start vm1 (tools/ferry-fence-hook, in
#   /etc/libvirt/hooks/qemu.d/), ferryd refuses new operations, and a
#   ferryd restart stays fenced;
# - healed, h1 is back in, unfenced, starts nothing by itself, and vm1 can
#   be started again.
# timeout: 300
# serial: times QEMU exit against the alive key, on a 3 s etcd lease
. "$(dirname "$0")/cluster_lib.sh"
TTL=3
EVAC_GRACE_MS=3000
export FERRY_LAB_LEASE_TTL=$TTL
lab_up "$lab" --hosts 2 --etcd
L guest h1 vm1 --disk-size 64M --write-rate 1M
for ((i = 0; i < 50; i++)); do
	[ "$(L exec h1 ferry -j vms | jq -r '.vms[] | select(.vm == "vm1") | .generation')" = 1 ] && break
	sleep 0.1
done
assert_eq "$(L virsh h1 metadata vm1 https://ferry.dev/xmlns/cluster/1 --config | grep -c 'host="h1"')" 1 "vm1's owner metadata"
pid=$(qemu_pid h1 vm1)
[ -n "$pid" ] || fail "vm1's QEMU on h1 not found"

log "--- h1 partitioned with vm1 running (QEMU pid $pid)"
t0=$(ms_now)
L partition h1
partition_watch h2 h1 "$pid" "$t0" $((TTL * 1000 + EVAC_GRACE_MS + 5000))
fence_at=$(L ferryd h1 log | grep -m1 "fences itself" | cut -c1-23)
log "h1's key gone for h2 at +${gone_ms} ms, vm1's QEMU gone at +${dead_ms} ms (fence began at $fence_at)"
assert_le "$dead_ms" $((gone_ms + EVAC_GRACE_MS)) "vm1's QEMU exit (ms), against the key's going plus the grace"
# The fence began before the key went: compare on h1's log clock.
fence_ms=$(($(date -d "${fence_at/T/ } UTC" +%s%3N) - t0))
assert_le "$fence_ms" "$gone_ms" "ms from the partition until the fence began, against the key's going"
# (libvirt's destroy returns some time after QEMU exits: it waits for the reaping)
wait_for 10 sh -c "'$LAB' --lab '$lab' ferryd h1 log | grep -c 'fence: vm vm1 (generation 1) destroyed: host h1 is out of the cluster' >/dev/null" ||
	fail "h1's log does not say it destroyed vm1"

log "--- fenced: no start, no operation, and a restart stays fenced"
expect_fail L virsh h1 start vm1
assert_contains "$ERR" "ferry: not starting vm1: host h1 out of the cluster" "libvirt's refusal"
expect_fail L exec h1 ferry live-migrate vm1 --to h2
expect_fail L exec h1 ferry migrate vm1 --to h2
assert_contains "$ERR" "host h1 is fenced" "ferryd's refusal"
L ferryd h1 restart
assert_eq "$(L exec h1 ferry -j cluster | jq -r .fenced)" true "h1 fenced after a ferryd restart"
L exec h1 ferry cluster | sed 's/^/    /'

log "--- healed: back in, unfenced, nothing restarted by itself"
L heal h1
for ((i = 0; i < 100; i++)); do
	[ "$(L exec h1 ferry -j cluster | jq -r .fenced)" = false ] && break
	sleep 0.1
done
assert_eq "$(L exec h1 ferry -j cluster | jq -r .fenced)" false "h1 fenced after the heal"
sleep 1
assert_eq "$(L virsh h1 domstate vm1 | head -1)" "shut off" "vm1 after the heal (not restarted)"
L guest-start h1 vm1
# Destroyed, not shut down: the boot scan's verdict for an unclean stop.
out=$(L verify h1 vm1 2>&1) || true
[[ $out == "VERIFY UNCLEAN"* || $out == "VERIFY PASS"* ]] || fail "vm1 after the fence: $out"
log "h1: $out"
log "ok: a partitioned host stopped its VM before its key went, refused starts, and came back"
