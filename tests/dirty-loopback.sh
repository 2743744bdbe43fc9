#!/bin/bash
# timeout: 60
# A tracked file that backs a buffered loop device is written by the loop
# driver's kernel thread, with no syscall to follow: while it does, every
# drain asks for a full rescan instead of staying silent.  With the loop
# device's direct I/O on, those writes complete through iomap and are
# tracked exactly.
# serial: asserts no rescan, and the tracker counts some events machine-wide
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd jq losetup fio

img=$DIRTY_TMP/disk.img
truncate -s 64M "$img"
tracker_up -g 4k "$img"
tracker_drain "$DIRTY_TMP/d0"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d0")" false "before any loop device"

log "buffered loop device on the file"
loop_on "$img"
dd if=/dev/urandom of="$LOOPDEV" bs=64k count=16 oflag=direct status=none
tracker_drain "$DIRTY_TMP/d1"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d1")" true "rescan while a loop device uses it"
assert_contains "$(jq -r '.rescan_reasons | join(",")' "$DIRTY_TMP/d1")" uncovered "reason"
losetup -d "$LOOPDEV"
tracker_drain "$DIRTY_TMP/d2"
tracker_drain "$DIRTY_TMP/d3"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d3")" false "once the loop device is gone"

log "loop device with direct I/O: writes tracked through iomap completion"
loop_on "$img" --direct-io=on
if [ "$(cat "/sys/block/${LOOPDEV#/dev/}/loop/dio")" != 1 ]; then
	log "direct I/O not available for this loop device; that part skipped"
else
	tracker_drain "$DIRTY_TMP/discard"
	fio_randwrite "$LOOPDEV" "$DIRTY_TMP/dio.log" libaio --direct=1 --bsrange=4k-128k \
		--iodepth=8 --io_size=8M
	: >"$DIRTY_TMP/drained"
	tracker_drain "$DIRTY_TMP/drained"
	oracle 4k "$DIRTY_TMP/drained" "$DIRTY_TMP/dio.log"
fi
log PASS
