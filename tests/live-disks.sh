#!/bin/bash
# timeout: 600
# live-disks: block migrations of the other disk kinds, each guest writing
# for the whole migration and verifying on the destination: a qcow2 disk on
# a Nova-style backing file (the base is copied to a destination that lacks
# it, byte-identical, and the image checks clean), and a raw disk on an LVM
# volume (an LV made in the destination's VG; the source's LV removed).
# Then the per-host limit: with live_max_concurrent = 1 a second live
# migration waits in Nova's `queued` state until the first is done.
. "$(dirname "$0")/live_lib.sh"
need_lab_lvm
lab_up "$lab" --hosts 2 --lvm 1G
vg1=ferry_${lab}_h1 vg2=ferry_${lab}_h2

# migrated VM FROM TO: a live migration that completes, VM verified on TO.
migrated() {
	local id
	id=$(L exec "$2" ferry -j live-migrate "$1" --to "$3" | jq -r .id)
	assert_eq "$(live_wait "$id" "$2")" completed "$1: $2 -> $3 ($(live_show "$id" "$2" .error))"
	assert_eq "$(L virsh "$3" domstate "$1" | head -1)" running "$1 on $3"
	live_verify "$3" "$1"
	vm_gone "$2" "$1"
}

log "--- qcow2 on a backing file"
L guest h1 q1 --format qcow2 --backing --disk-size 128M --write-rate 1M
base=$(L exec h1 qemu-img info -U --output=json /var/lib/libvirt/images/q1/disk |
	jq -r '."full-backing-filename" // ."backing-filename"')
L exec h2 test ! -e "$base" || fail "h2 must start without the base image"
migrated q1 h1 h2
assert_eq "$(L exec h2 sha256sum "$base" | cut -d' ' -f1)" \
	"$(L exec h1 sha256sum "$base" | cut -d' ' -f1)" "base identical on h2"
L exec h2 test ! -e "$base.part" || fail "a partial base left on h2"
L exec h2 qemu-img check -U /var/lib/libvirt/images/q1/disk >/dev/null || fail "qemu-img check on h2"
L guest-stop h2 q1 # a clean shutdown: CPU for the next guest

log "--- raw on an LVM volume"
L guest h1 v1 --lvm --disk-size 128M --write-rate 1M
L exec h1 test -b "/dev/$vg1/v1_disk" || fail "v1's disk is an LV on h1"
migrated v1 h1 h2
assert_contains "$(L virsh h2 domblklist v1)" "/dev/$vg2/v1_disk" "v1's disk on h2"
assert_eq "$(L exec h1 lvs --noheadings -o lv_name "$vg1" 2>/dev/null | xargs)" "" "LVs left on h1"
migrated v1 h2 h1
assert_eq "$(L exec h2 lvs --noheadings -o lv_name "$vg2" 2>/dev/null | xargs)" "" "LVs left on h2"

log "--- live_max_concurrent = 1: the second waits in queued"
L guest-start h2 q1
L exec h2 ferry live-migrate q1 --to h1 --wait >/dev/null
L shape --rate 50mbit
a=$(L exec h1 ferry -j live-migrate v1 --to h2 | jq -r .id)
b=$(L exec h1 ferry -j live-migrate q1 --to h2 | jq -r .id)
seen=0
for ((i = 0; i < 300; i++)); do
	sa=$(live_show "$a" h1 .status) sb=$(live_show "$b" h1 .status)
	if [ "$seen" = 0 ] && [ "$sb" = queued ] && [ "$sa" != queued ]; then
		seen=1
		# Seen: the link need not hold the first back any more.  Shorter RAM
		# phases narrow the window of QEMU 7.2's TCG dirty-tracking bug (see
		# docs/live-migration.md), which two guests on two cores invite.
		L shape --rate none
	fi
	[ "$sb" = queued ] || [ "$sb" = accepted ] || break
	sleep 0.2
done
assert_eq "$seen" 1 "$b queued while $a ran (statuses: $sa / $sb)"
assert_eq "$(live_wait "$a" h1)" completed "$a"
assert_eq "$(live_wait "$b" h1)" completed "$b, after the queue"
live_verify h2 v1
live_verify h2 q1
log "ok"
