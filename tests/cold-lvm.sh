#!/bin/bash
# cold-lvm: an LVM-backed guest (raw disk on an LV of the host's volume
# group, which Nova refuses to cold-migrate) migrates with ferry: its LV is
# created in the destination's VG, copied with zero runs written out (a new
# LV may hold old data), the source LV kept as LV_resize until confirm;
# revert brings it back; a resize grows the LV (lvextend) and confirm
# removes the source LV; VERIFY PASS everywhere.
# timeout: 400
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq
need_lab_lvm
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 2 --lvm 2G
vg1=ferry_${lab}_h1 vg2=ferry_${lab}_h2

L guest h1 g1 --lvm --disk-size 256M --write-rate 1M
L exec h1 test -b "/dev/$vg1/g1_disk" || fail "g1's disk is an LV on h1"
log "migrate g1 to h2"
L exec h1 ferry migrate g1 --to h2 --wait
assert_eq "$(L virsh h2 domstate g1 | head -1)" running "g1 on h2"
assert_contains "$(L virsh h2 domblklist g1)" "/dev/$vg2/g1_disk" "g1's disk on h2"
L exec h1 test -b "/dev/$vg1/g1_disk_resize" || fail "source LV kept as g1_disk_resize"
assert_contains "$(L verify h2 g1)" "VERIFY PASS" "VERIFY on h2"
log "revert"
L exec h2 ferry revert g1 --wait
L exec h1 test -b "/dev/$vg1/g1_disk" || fail "source LV back"
assert_eq "$(L exec h2 lvs --noheadings -o lv_name "$vg2" 2>/dev/null | xargs)" "" "LVs of $vg2 after revert"
assert_contains "$(L verify h1 g1)" "VERIFY PASS" "VERIFY on h1 after revert"
log "resize to h2 with a 1 GiB disk, then confirm"
L exec h1 ferry resize g1 --to h2 --disk 1 --memory 160 --confirm
assert_eq "$(L exec h2 blockdev --getsize64 "/dev/$vg2/g1_disk")" $((1 << 30)) "g1's LV on h2 (bytes)"
assert_contains "$(L virsh h2 domblklist g1)" "/dev/$vg2/g1_disk" "g1's disk on h2"
assert_eq "$(L exec h1 lvs --noheadings -o lv_name "$vg1" 2>/dev/null | xargs)" "" "LVs of $vg1 after confirm"
L exec h1 test ! -e "/dev/$vg1/g1_disk_resize" || fail "/dev/$vg1/g1_disk_resize left after confirm"
assert_contains "$(L verify h2 g1)" "VERIFY PASS" "VERIFY on h2 after the resize"
log "ok"
