#!/bin/bash
# timeout: 240
# Expectations survive a clean stop: after virsh shutdown (ACPI power
# button: the agent saves its table) and start, VERIFY PASS, also after the
# disk was grown while off; after virsh destroy and start the verdict says
# UNCLEAN, never PASS.  The disk is a qcow2 overlay on a _base image, as Nova
# lays it out.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh qemu-system-x86_64 qemu-img busybox cpio

lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
cleanup_push "$LAB" --lab "$lab" down
L up --hosts 1
disk=/var/lib/libvirt/images/vm1/disk

L guest h1 vm1 --backing --disk-size 128M --write-rate 4M --pattern random
L exec h1 qemu-img info -U "$disk" | grep -q "backing file: /var/lib/libvirt/images/_base/" ||
	fail "disk is not an overlay on _base"
sleep 2
seq1=$(kv_get "$(L agent h1 vm1 STATUS)" seq)

log "clean shutdown and start"
L guest-stop h1 vm1
L guest-start h1 vm1
st=$(L agent h1 vm1 STATUS)
assert_eq "$(kv_get "$st" boot)" clean "boot kind"
[ "$(kv_get "$st" seq)" -ge "$seq1" ] || fail "seq went back: $seq1 -> $st"
v=$(L verify h1 vm1) || fail "verify after a clean stop: $v"
log "$v"
assert_contains "$v" "VERIFY PASS" "verdict"
assert_eq "$(kv_get "$v" boot)" clean "verdict's boot kind"

log "grow the disk while off"
L guest-stop h1 vm1
L exec h1 qemu-img resize -q "$disk" 192M
L guest-start h1 vm1
st=$(L agent h1 vm1 STATUS)
assert_eq "$(kv_get "$st" disk_blocks)" $((192 << 8)) "disk blocks after resize"
v=$(L verify h1 vm1) || fail "verify after a resize: $v"
log "$v"

log "destroy and start: the verdict says unclean"
L guest-stop h1 vm1 --destroy
L guest-start h1 vm1
rc=0
v=$(L verify h1 vm1) || rc=$?
log "$v"
assert_eq "$rc" 1 "verify exit code after an unclean stop"
assert_contains "$v" "VERIFY UNCLEAN blocks=" "verdict"
assert_eq "$(kv_get "$(L agent h1 vm1 STATUS)" unclean_boots)" 1 "unclean boots"

log "a clean cycle after that is strict again"
L guest-stop h1 vm1
L guest-start h1 vm1
v=$(L verify h1 vm1) || fail "verify: $v"
log "$v"
log "PASS"
