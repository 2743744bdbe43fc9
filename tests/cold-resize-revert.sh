#!/bin/bash
# cold-resize-revert: resize a running guest h1 -> h2 with more memory and a
# bigger disk, then revert: the original VM runs on h1 again with the old
# flavor, disks byte-identical to the copy kept at power-off (sha256), the
# guest's own verdict PASS, and nothing of it left on h2.
# timeout: 400
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 2

L guest h1 g1 --disk-size 128M --memory 128 --write-rate 1M
sleep 2
mem0=$(L virsh h1 dominfo g1 | awk '/Max memory/ {print $3}')

log "resize g1: 192 MiB, 1 GiB disk, onto h2"
L exec h1 ferry resize g1 --to h2 --memory 192 --disk 1 --wait
assert_eq "$(L virsh h2 domstate g1 | head -1)" running "g1 on h2"
assert_eq "$(L virsh h2 dominfo g1 | awk '/Max memory/ {print $3}')" $((192 * 1024)) "memory on h2"
size2=$(L exec h2 stat -c %s /var/lib/libvirt/images/g1/disk)
assert_eq "$size2" $((1 << 30)) "disk grown on h2"
L verify h2 g1 | grep -q '^VERIFY PASS' || fail "VERIFY on h2 with the bigger disk"

log "checksum of the copy kept on h1 (the source as it was at power-off)"
kept=$(L exec h1 sha256sum /var/lib/libvirt/images/g1_resize/disk | cut -d' ' -f1)
id=$(L exec h1 ferry -j migrations g1 | jq -r '.[0].id')

log "revert (asked on h2)"
L exec h2 ferry revert g1 --wait
assert_eq "$(L virsh h1 domstate g1 | head -1)" running "g1 back on h1"
assert_eq "$(L virsh h1 dominfo g1 | awk '/Max memory/ {print $3}')" "$mem0" "old memory on h1"
s=$(L exec h1 ferry -j show "$id")
assert_eq "$(echo "$s" | jq -r .status)" reverted "status"
assert_eq "$(echo "$s" | jq -r .error)" "" "no error (revert compares the restored disks)"
assert_eq "$(echo "$s" | jq -r '.disks[0].src_sha256')" "$kept" "ferryd's checksum of the kept copy"
L verify h1 g1 | grep -q '^VERIFY PASS' || fail "VERIFY on h1 after revert"
assert_eq "$(L exec h1 stat -c %s /var/lib/libvirt/images/g1/disk)" $((128 << 20)) "old disk size on h1"

log "nothing of g1 on h2"
L virsh h2 dominfo g1 >/dev/null 2>&1 && fail "g1 still defined on h2"
L exec h2 test ! -e /var/lib/libvirt/images/g1 || fail "g1 dir left on h2"
L exec h1 test ! -e /var/lib/libvirt/images/g1_resize || fail "g1_resize left on h1"

log "a stopped VM's revert: disks byte-identical, stays stopped"
L guest-stop h1 g1
before=$(L exec h1 sha256sum /var/lib/libvirt/images/g1/disk | cut -d' ' -f1)
L exec h1 ferry resize g1 --to h2 --disk 1 --wait
assert_eq "$(L virsh h2 domstate g1 | head -1)" "shut off" "stopped VM stays stopped on h2"
L exec h1 ferry revert g1 --wait
assert_eq "$(L virsh h1 domstate g1 | head -1)" "shut off" "stopped VM stays stopped after revert"
after=$(L exec h1 sha256sum /var/lib/libvirt/images/g1/disk | cut -d' ' -f1)
assert_eq "$after" "$before" "disk byte-identical after revert"
L guest-start h1 g1
L verify h1 g1 | grep -q '^VERIFY PASS' || fail "VERIFY after a cold revert"
log "ok"
