#!/bin/bash
# timeout: 120
# A tracked loop device: every block fio writes is drained, at device
# offsets, and nothing else, whether the writes are syscalls on the device
# itself (O_DIRECT sync and async, buffered) or block I/O reaching it from
# a loop device stacked on it (then only request completions show them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd fio jq losetup

loop_up 128M
dev=$LOOPDEV
loop_on "$dev"
above=$LOOPDEV
loop_on "$dev" --direct-io=on
above_dio=$LOOPDEV

run() { # GRAN NAME TARGET ENGINE FIO-ARGS...
	local gran=$1 name=$2 target=$3 engine=$4
	shift 4
	log "$name: fio on $target (granularity $gran)"
	: >"$DIRTY_TMP/drained"
	tracker_drain "$DIRTY_TMP/discard"
	fio_randwrite "$target" "$DIRTY_TMP/$name.log" "$engine" --size=128M --io_size=12M "$@"
	sync
	tracker_drain "$DIRTY_TMP/drained"
	oracle "$gran" "$DIRTY_TMP/drained" "$DIRTY_TMP/$name.log"
}

tracker_up -g 4k "$dev"
run 4k direct-psync "$dev" psync --direct=1 --bsrange=4k-256k
run 4k direct-libaio "$dev" libaio --direct=1 --bsrange=4k-256k --iodepth=16
run 4k direct-io_uring "$dev" io_uring --direct=1 --bsrange=4k-256k --iodepth=16
run 4k buffered "$dev" pvsync2 --bsrange=4k-128k
run 4k stacked "$above" libaio --direct=1 --bsrange=4k-256k --iodepth=8
run 4k stacked-dio "$above_dio" psync --direct=1 --bsrange=4k-256k
run 4k stacked-buffered "$above" psync --bsrange=4k-128k
tracker_down
tracker_up -g 1m "$dev"
run 1m direct-1m "$dev" libaio --direct=1 --bsrange=4k-256k --iodepth=16
log PASS
