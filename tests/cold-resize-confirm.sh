#!/bin/bash
# cold-resize-confirm: resize a running guest h1 -> h2 (vcpus, memory,
# disk) and confirm: it runs on h2 with the new flavor and VERIFY PASS;
# nothing of it remains on h1 (definition, instance dir, kept copy).  A
# stopped VM migrates and stays stopped, with identical disks.
# timeout: 400
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 2

L guest h1 g1 --disk-size 128M --memory 128 --write-rate 1M --swap 32M
sleep 2
log "resize to 2 vCPUs, 160 MiB, 1 GiB disk, and confirm in one go"
L exec h1 ferry resize g1 --to h2 --vcpus 2 --memory 160 --disk 1 --confirm
assert_eq "$(L virsh h2 domstate g1 | head -1)" running "g1 on h2"
assert_eq "$(L virsh h2 dominfo g1 | awk '/^CPU\(s\)/ {print $2}')" 2 "vcpus on h2"
assert_eq "$(L virsh h2 dominfo g1 | awk '/Max memory/ {print $3}')" $((160 * 1024)) "memory"
assert_eq "$(L exec h2 stat -c %s /var/lib/libvirt/images/g1/disk)" $((1 << 30)) "disk size"
L exec h2 test -f /var/lib/libvirt/images/g1/disk.swap || fail "swap disk recreated on h2"
L verify h2 g1 | grep -q '^VERIFY PASS' || fail "VERIFY on h2"
L virsh h1 dominfo g1 >/dev/null 2>&1 && fail "g1 still defined on h1"
L exec h1 test ! -e /var/lib/libvirt/images/g1 || fail "g1 dir left on h1"
L exec h1 test ! -e /var/lib/libvirt/images/g1_resize || fail "g1_resize left on h1"
assert_eq "$(L exec h1 ferry -j migrations g1 | jq -r '.[0].status')" confirmed "status"

log "a stopped VM migrates back to h1 and stays stopped"
L guest-stop h2 g1
before=$(L exec h2 sha256sum /var/lib/libvirt/images/g1/disk | cut -d' ' -f1)
L exec h2 ferry migrate g1 --to h1 --confirm
assert_eq "$(L virsh h1 domstate g1 | head -1)" "shut off" "stopped VM stays stopped"
after=$(L exec h1 sha256sum /var/lib/libvirt/images/g1/disk | cut -d' ' -f1)
assert_eq "$after" "$before" "disk identical after a cold move"
L guest-start h1 g1
L verify h1 g1 | grep -q '^VERIFY PASS' || fail "VERIFY after the move"
log "ok"
