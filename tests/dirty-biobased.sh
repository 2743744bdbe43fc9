#!/bin/bash
# timeout: 90
# A tracked bio-based block device -- zram here, the same path as a
# device-mapper LV: queued bios are remembered and marked when the block
# layer completes them.  fio writes it directly and through a loop device
# stacked on it (where no syscall on the tracked device is ever made).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd fio jq losetup
[ -w /sys/class/zram-control/hot_add ] || skip "no zram in this kernel"

id=$(cat /sys/class/zram-control/hot_add) || skip "cannot add a zram device"
cleanup_push "echo $id >/sys/class/zram-control/hot_remove"
cleanup_push "echo 1 >/sys/block/zram$id/reset"
echo 128M >"/sys/block/zram$id/disksize"
dev=/dev/zram$id
wait_for 5 test -b "$dev" || fail "$dev did not appear"
[ ! -e "/sys/block/zram$id/mq" ] || log "note: zram$id is request-based on this kernel"
loop_on "$dev"
above=$LOOPDEV

tracker_up -g 4k "$dev"
run() { # NAME TARGET ENGINE FIO-ARGS...
	local name=$1 target=$2 engine=$3
	shift 3
	log "$name: fio on $target"
	tracker_drain "$DIRTY_TMP/discard"
	fio_randwrite "$target" "$DIRTY_TMP/$name.log" "$engine" --size=128M --io_size=12M "$@"
	sync
	: >"$DIRTY_TMP/drained"
	tracker_drain "$DIRTY_TMP/drained"
	oracle 4k "$DIRTY_TMP/drained" "$DIRTY_TMP/$name.log"
}
run direct "$dev" libaio --direct=1 --bsrange=4k-256k --iodepth=16
run stacked "$above" libaio --direct=1 --bsrange=4k-256k --iodepth=16
run stacked-buffered "$above" psync --bsrange=4k-128k
tracker_down
log PASS
