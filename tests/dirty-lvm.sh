#!/bin/bash
# timeout: 120
# A tracked LVM logical volume (a throwaway VG on a loop device): every
# block fio writes to the LV is drained at LV-relative offsets, although
# device-mapper sends the data to the physical volume at other offsets.
# Needs device-mapper in the kernel (skips without it).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd fio jq losetup pvcreate vgcreate lvcreate lvremove vgremove pvremove
grep -qw device-mapper /proc/misc || modprobe -q dm_mod 2>/dev/null || true
grep -qw device-mapper /proc/misc || skip "no device-mapper in this kernel"
export LVM_SUPPRESS_FD_WARNINGS=1

loop_up 256M
pv=$LOOPDEV
vg=ferrydirty$$
# Only our loop device, and no udev (lab hosts and CI machines have none).
lvmc=(--devices "$pv" --config 'activation { udev_sync = 0 udev_rules = 0 }')
pvcreate -q "${lvmc[@]}" "$pv" >/dev/null || fail "pvcreate $pv"
cleanup_push "pvremove -q -y ${lvmc[*]@Q} '$pv'"
vgcreate -q "${lvmc[@]}" "$vg" "$pv" >/dev/null || fail "vgcreate"
cleanup_push "vgremove -q -y ${lvmc[*]@Q} '$vg'"
# A first LV so that the tracked one does not start at the PV's start.
lvcreate -q -y "${lvmc[@]}" -L 32M -n pad "$vg" >/dev/null || fail "lvcreate pad"
cleanup_push "lvremove -q -y ${lvmc[*]@Q} '$vg/pad'"
lvcreate -q -y "${lvmc[@]}" -L 96M -n disk "$vg" >/dev/null || fail "lvcreate disk"
cleanup_push "lvremove -q -y ${lvmc[*]@Q} '$vg/disk'"
lv=/dev/$vg/disk
[ -b "$lv" ] || lv=/dev/mapper/$vg-disk
[ -b "$lv" ] || fail "no device node for $vg/disk"

tracker_up -g 4k "$lv"
for e in psync libaio io_uring; do
	log "fio $e on $lv"
	tracker_drain "$DIRTY_TMP/discard"
	fio_randwrite "$lv" "$DIRTY_TMP/$e.log" $e --direct=1 --bsrange=4k-256k --iodepth=8 \
		--io_size=12M
	: >"$DIRTY_TMP/drained"
	tracker_drain "$DIRTY_TMP/drained"
	oracle 4k "$DIRTY_TMP/drained" "$DIRTY_TMP/$e.log"
done
log "writes to the other LV are not this one's"
fio_randwrite "/dev/$vg/pad" "$DIRTY_TMP/pad.log" psync --direct=1 --bs=64k --io_size=8M
: >"$DIRTY_TMP/drained"
tracker_drain "$DIRTY_TMP/drained"
assert_eq "$(jq -r '.ranges | length' "$DIRTY_TMP/drained")" 0 "ranges after writing pad"
tracker_down
log PASS
