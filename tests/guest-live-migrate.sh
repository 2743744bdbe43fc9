#!/bin/bash
# timeout: 240
# A writing guest moves from h1 to h2 with libvirt's live block migration
# (virsh migrate --live --p2p --copy-storage-all, as Nova does for
# non-shared storage); on h2 it runs, kept writing across the move, and its
# agent -- whose expectations travelled in RAM -- says VERIFY PASS.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh qemu-system-x86_64 qemu-img busybox cpio

lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
cleanup_push "$LAB" --lab "$lab" down
L up --hosts 2

log "boot on h1 and let it write"
L guest h1 vm1 --disk-size 256M --swap 16M --write-rate 4M --pattern hotspot
sleep 3
before=$(kv_get "$(L agent h1 vm1 STATUS)" seq)
[ "$before" -gt 0 ] || fail "the guest has not written"

log "the destination's disks (Nova: pre_live_migration)"
L guest h2 vm1 --disk-only --disk-size 256M --swap 16M

log "virsh migrate --live --p2p --copy-storage-all h1 -> h2"
t0=$(date +%s.%N)
L exec h1 virsh -c qemu:///system migrate --live --p2p --copy-storage-all \
	--persistent --undefinesource vm1 "qemu+tcp://h2/system" ||
	fail "virsh migrate failed"
log "migrated in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s"

assert_eq "$(L virsh h2 domstate vm1 | sed -n 1p)" running "state on h2"
L virsh h1 dominfo vm1 >/dev/null 2>&1 && fail "vm1 is still defined on h1"

log "it kept writing across the move"
after=$(kv_get "$(L agent h2 vm1 STATUS)" seq)
[ "$after" -gt "$before" ] || fail "seq did not advance across the move ($before -> $after)"
sleep 1
later=$(kv_get "$(L agent h2 vm1 STATUS)" seq)
[ "$later" -gt "$after" ] || fail "not writing on h2 ($after -> $later)"

log "VERIFY on h2"
v=$(L verify h2 vm1) || fail "verify on h2: $v"
log "$v"
assert_contains "$v" "VERIFY PASS" "verdict on h2"
[ "$(kv_get "$v" records)" -gt 0 ] || fail "no records: $v"
log "PASS"
