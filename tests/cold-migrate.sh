#!/bin/bash
# cold-migrate: a running self-checking guest moves h1 -> h2 with ferry's
# warm cold migration (pre-copy while it writes, off only for the last
# delta); its agent re-reads every block on h2 and finds no lost write;
# `ferry -j` and the pinned metrics map report the migration; on a terminal
# --wait draws a progress line; confirm, asked on h3 (neither source nor
# destination), leaves nothing of the VM on h1.
# timeout: 400
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq bpftool script
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 3

log "guest g1 on h1, writing 2 MiB/s"
L guest h1 g1 --disk-size 256M --write-rate 2M
seq0=$(L agent h1 g1 STATUS | sed -n 's/.*seq=\([0-9]*\).*/\1/p')
sleep 3

log "ferry migrate g1 --to h2 --wait (on a pseudo-terminal: the progress line)"
L exec h1 script -qec "ferry migrate g1 --to h2 --wait" /dev/null | tr '\r' '\n' >"$BUILD/cold-migrate.tty"
grep -q 'migrating .*% .*/s ETA' "$BUILD/cold-migrate.tty" || fail "no progress line: $(head -c 600 "$BUILD/cold-migrate.tty")"
grep -q '^migration m-.*: vm g1  h1 -> h2' "$BUILD/cold-migrate.tty" || fail "no summary after --wait"
assert_eq "$(L virsh h2 domstate g1 | head -1)" running "g1 on h2"
assert_eq "$(L virsh h1 domstate g1 | head -1)" "shut off" "source copy of g1 kept off on h1"
L exec h1 test -d /var/lib/libvirt/images/g1_resize || fail "h1 keeps g1_resize for revert"
L exec h2 test -f /var/lib/libvirt/images/g1/disk || fail "g1's disk on h2"

log "the guest verifies every block it wrote, on h2"
L verify h2 g1 | tee /dev/stderr | grep -q '^VERIFY PASS' || fail "VERIFY on h2"
seq1=$(L agent h2 g1 STATUS | sed -n 's/.*seq=\([0-9]*\).*/\1/p')
assert_ge "$seq1" $((seq0 + 1)) "the agent kept writing across the move"

log "ferry -j migrations / show, from both hosts"
m=$(L exec h2 ferry -j migrations g1)
echo "$m" | jq -e 'type == "array" and length == 1' >/dev/null || fail "one migration: $m"
id=$(echo "$m" | jq -r '.[0].id')
for k in id vm type status source dest downtime_ms disk_total_bytes disk_processed_bytes wire_bytes; do
	echo "$m" | jq -e ".[0] | has(\"$k\")" >/dev/null || fail "migrations lacks $k"
done
assert_eq "$(echo "$m" | jq -r '.[0].status')" finished "status"
assert_eq "$(echo "$m" | jq -r '.[0].source + ">" + .[0].dest')" "h1>h2" "hosts"
s=$(L exec h1 ferry -j show "$id")
rounds=$(echo "$s" | jq '.metrics.precopy_rounds')
down=$(echo "$s" | jq '.metrics.downtime_ms')
total=$(echo "$s" | jq '.metrics.disk_total_bytes')
done_b=$(echo "$s" | jq '.metrics.disk_processed_bytes')
delta=$(echo "$s" | jq '.metrics.last_delta_bytes')
log "rounds=$rounds downtime=${down}ms total=$total processed=$done_b last_delta=$delta"
assert_ge "$rounds" 1 "warm pre-copy rounds"
assert_ge "$down" 1 "downtime measured"
assert_eq "$done_b" "$total" "every byte to copy was copied"
assert_le "$delta" $((64 << 20)) "only a small delta copied while the VM was off"
assert_eq "$(echo "$s" | jq -r '.vm_state')" resized "vm_state while finished"

log "the pinned metrics map names the same migration (bpftool)"
dump=$(L exec h1 bpftool -j map dump pinned /sys/fs/bpf/ferry/migrations)
echo "$dump" | jq -e --arg id "$id" '.[] | select(.formatted.key.id == $id) |
	.formatted.value | .status == "finished" and .downtime_ms > 0 and .vm == "g1"' >/dev/null ||
	fail "metrics map: $dump"

l=$(L exec h2 ferry -j list)
echo "$l" | jq -e '.[] | select(.name == "g1") | .state == "running" and .migration != null' >/dev/null ||
	fail "ferry -j list on h2: $l"

log "confirm from h3 (neither source nor destination): nothing of g1 stays on h1"
L exec h3 ferry confirm g1 --wait
L virsh h1 dominfo g1 >/dev/null 2>&1 && fail "g1 still defined on h1"
L exec h1 test ! -e /var/lib/libvirt/images/g1_resize || fail "g1_resize left on h1"
L exec h1 test ! -e /var/lib/libvirt/images/g1 || fail "g1 dir left on h1"
assert_eq "$(L exec h1 ferry -j show "$id" | jq -r .status)" confirmed "status after confirm"
assert_eq "$(L exec h2 ferry -j migrations g1 | jq -r '.[0].status')" confirmed "seen from h2"
L verify h2 g1 >/dev/null || fail "VERIFY after confirm"
log "ok"
