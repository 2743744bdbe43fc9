#!/bin/bash
# timeout: 300
# live-shared: on shared storage (ferry-lab up --shared: one instances dir,
# each host through its own mount) a live migration moves only RAM and
# device state: ferry's test file finds the storage shared, nothing is
# copied or created, the disks are left where they are (both hosts see the
# same file), the source is undefined, and the guest VERIFY PASSes on h2.
. "$(dirname "$0")/live_lib.sh"
lab_up "$lab" --hosts 2 --shared
L guest h1 vm1 --disk-size 256M --swap 16M --write-rate 2M --pattern random
sleep 2
ino1=$(L exec h1 stat -c %i /var/lib/libvirt/images/vm1/disk)
ino2=$(L exec h2 stat -c %i /var/lib/libvirt/images/vm1/disk)
assert_eq "$ino2" "$ino1" "both hosts see the same disk"
out=$(L exec h1 ferry live-migrate vm1 --to h2 --wait) || { log "$out"; live_diag h1 vm1; fail "live-migrate"; }
log "$out"
id=$(sed -n '1s/^live-migration \(m-[0-9a-f]*\).*/\1/p' <<<"$out")
j=$(L exec h1 ferry -j show "$id")
assert_eq "$(jq -r .live.block_migration <<<"$j")" false "shared storage detected"
assert_eq "$(jq -r .metrics.disk_processed_bytes <<<"$j")" 0 "no disk copied"
assert_eq "$(jq -r .metrics.wire_bytes <<<"$j")" 0 "nothing through the mover"
assert_eq "$(live_runs_on vm1)" h2 "where vm1 runs"
L virsh h1 dominfo vm1 >/dev/null 2>&1 && fail "vm1 still defined on h1"
assert_eq "$(L exec h2 stat -c %i /var/lib/libvirt/images/vm1/disk)" "$ino1" "the disk stayed in place"
log "downtime $(jq -r .metrics.downtime_ms <<<"$j") ms (libvirt's $(jq -r .metrics.qemu_downtime_ms <<<"$j") ms)"
live_verify h2 vm1

log "--- and back, paused: it stays paused"
L virsh h2 suspend vm1 >/dev/null
L exec h2 ferry live-migrate vm1 --to h1 --wait >/dev/null || { live_diag h2 vm1; fail "live-migrate back"; }
assert_eq "$(L virsh h1 domstate vm1 | head -1)" paused "paused on h1"
L virsh h1 resume vm1 >/dev/null
live_verify h1 vm1
L exec h1 test -e /var/lib/libvirt/images/vm1/disk || fail "the shared disk was removed"
log "ok"
