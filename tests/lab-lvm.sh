#!/bin/bash
# timeout: 120
# up --lvm gives each host a volume group of its own on a loop device, seen
# only inside that host; lvcreate/lvremove work inside the host (without
# udev); status shows the VG; down removes VGs and loop devices.  On a
# kernel without device-mapper the LVs are activated by the lab's stand-in
# (tools/lab/lvm-loop: a loop device over the LV's extents of the PV): the
# test then also checks that an LV's blocks are those extents, that rename
# keeps the device, and that down detaches the stacked loop devices.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh jq losetup pvcreate vgcreate lvcreate vgs

name=$(test_lab_name)
have_dm=1
grep -qw device-mapper /proc/misc || modprobe -q dm_mod 2>/dev/null || true
grep -qw device-mapper /proc/misc || have_dm=0

lab_up "$name" --lvm 256M
L() { "$LAB" --lab "$name" "$@"; }
export LVM_SUPPRESS_FD_WARNINGS=1

for h in h1 h2; do
	vg=ferry_${name}_$h
	assert_eq "$(L -j status | jq -r ".hosts[] | select(.name == \"$h\") | .vg")" "$vg" "$h: VG in status -j"
	L status | grep "^$h .*$vg\$" >/dev/null || fail "$h: VG not in plain status"
	# Each host sees its own VG and nothing else.
	assert_eq "$(L exec "$h" vgs --noheadings -o vg_name 2>/dev/null | xargs)" "$vg" "$h: vgs"
	size=$(L exec "$h" vgs --noheadings --units m --nosuffix -o vg_size "$vg" 2>/dev/null | xargs)
	assert_ge "${size%.*}" 200 "$h: VG size (MiB)"
done
loops=$(L -j status | jq -r '.hosts[].loop' | xargs)
log "loop devices: $loops"

vg=ferry_${name}_h1
[ $have_dm = 1 ] || log "no device-mapper: LVs are activated by tools/lab/lvm-loop"
log "lvcreate / lvremove inside h1"
L exec h1 lvcreate -q -y -L 32M -n t1 "$vg"
L exec h1 test -b "/dev/$vg/t1" || fail "/dev/$vg/t1 is not a block device"
L exec h1 dd if=/dev/zero of="/dev/$vg/t1" bs=1M count=4 oflag=direct status=none ||
	fail "cannot write $vg/t1"
assert_eq "$(L exec h2 lvs --noheadings -o lv_name 2>/dev/null | xargs)" "" "h2 sees h1's LV"
L exec h1 lvremove -q -y "$vg/t1"
L exec h1 test ! -e "/dev/$vg/t1" || fail "/dev/$vg/t1 left after lvremove"
if [ $have_dm = 0 ]; then
	# The stand-in maps an LV exactly onto its extents: a pattern written
	# to the second LV is at pe_start + first extent * extent size of the PV.
	L exec h1 lvcreate -q -y -L 8M -n a "$vg"
	L exec h1 lvcreate -q -y -L 8M -n b "$vg"
	pv=$(L -j status | jq -r '.hosts[] | select(.name == "h1") | .loop')
	L exec h1 sh -c "printf 'ferry-lvm-loop-%s' $$ | dd of=/dev/$vg/b bs=4096 conv=sync oflag=direct status=none" ||
		fail "cannot write $vg/b"
	read -r first < <(L exec h1 lvs --noheadings -o seg_pe_ranges "$vg/b" 2>/dev/null | sed 's/.*://; s/-.*//')
	pe_start=$(L exec h1 pvs --noheadings --units b --nosuffix -o pe_start 2>/dev/null | xargs)
	ext=$(L exec h1 vgs --noheadings --units b --nosuffix -o vg_extent_size "$vg" 2>/dev/null | xargs)
	got=$(dd if="$pv" bs=1 skip=$((pe_start + first * ext)) count=$((15 + ${#$})) iflag=skip_bytes status=none)
	assert_eq "$got" "ferry-lvm-loop-$$" "$vg/b's first bytes on the PV at extent $first"
	dev=$(L exec h1 readlink "/dev/$vg/b")
	L exec h1 lvrename -q "$vg" b b_resize >/dev/null
	assert_eq "$(L exec h1 readlink "/dev/$vg/b_resize")" "$dev" "device of $vg/b after lvrename"
	L exec h1 test ! -e "/dev/$vg/b" || fail "/dev/$vg/b left after lvrename"
	stacked=$(losetup -n -l -O NAME,BACK-FILE | awk -v pv="$pv" '$2 == pv' | wc -l)
	assert_eq "$stacked" 2 "loop devices over $pv (LVs a, b_resize)"
fi
L exec h1 lvcreate -q -y -L 16M -n t2 "$vg"	# left for down to remove

L down
for d in $loops; do
	if losetup "$d" 2>/dev/null | grep -q "/ferry-lab/$name/"; then
		fail "$d still attached"
	fi
done
[ -z "$(losetup -a | grep "/ferry-lab/$name/")" ] || fail "loop devices left: $(losetup -a)"
for d in $loops; do
	[ -z "$(losetup -n -l -O NAME,BACK-FILE | awk -v pv="$d" '$2 == pv')" ] ||
		fail "loop devices over $d left: $(losetup -a)"
done
[ ! -e "/dev/ferry_${name}_h1" ] || fail "/dev/ferry_${name}_h1 left"
if [ $have_dm = 1 ] && dmsetup ls | grep "^ferry_${name}_" >/dev/null; then
	fail "device-mapper devices left: $(dmsetup ls)"
fi
log "PASS"
