#!/bin/bash
# timeout: 180
# Every block fio writes to a tracked file, with each I/O engine and random
# sizes and offsets, is in the drained set, and nothing else is (beyond
# rounding to the granularity): fio's own write log is the oracle.
# serial: asserts no rescan, and the tracker counts some events machine-wide
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd fio jq

img=$DIRTY_TMP/disk.img
truncate -s 256M "$img"
# Another file on the same file system, written too: it must not show up.
other=$DIRTY_TMP/other.img
truncate -s 64M "$other"

run() { # GRAN NAME ENGINE FIO-ARGS...
	local gran=$1 name=$2 engine=$3
	shift 3
	log "$name (granularity $gran)"
	: >"$DIRTY_TMP/drained"
	tracker_drain "$DIRTY_TMP/discard" # start from an empty set
	fio_randwrite "$img" "$DIRTY_TMP/$name.log" "$engine" --io_size=12M "$@"
	fio --name=noise --filename="$other" --rw=randwrite --bs=4k --io_size=1M \
		--output-format=terse >/dev/null
	tracker_drain "$DIRTY_TMP/drained"
	oracle "$gran" "$DIRTY_TMP/drained" "$DIRTY_TMP/$name.log"
}

tracker_up -g 4k "$img"
# Buffered, unaligned: 512-byte multiples that straddle 4 KiB blocks.
run 4k psync psync --bsrange=512-128k
run 4k pvsync2 pvsync2 --bsrange=512-128k
run 4k posixaio posixaio --bsrange=512-128k --iodepth=8
run 4k sync sync --bsrange=512-128k		# lseek + write at the file position
run 4k vsync vsync --bsrange=512-128k	# readv/writev at the file position
run 4k io_uring io_uring --bsrange=512-128k --iodepth=16
run 4k libaio-buffered libaio --bsrange=512-128k --iodepth=8
# O_DIRECT: completion comes later than submission.
run 4k libaio libaio --direct=1 --bsrange=4k-256k --iodepth=16
run 4k io_uring-direct io_uring --direct=1 --bsrange=4k-256k --iodepth=16
run 4k io_uring-fixed io_uring --direct=1 --bsrange=4k-256k --iodepth=16 \
	--registerfiles=1 --fixedbufs=1
run 4k io_uring-sqpoll io_uring --bsrange=512-128k --iodepth=16 --sqthread_poll=1
run 4k pvsync2-direct pvsync2 --direct=1 --bsrange=4k-256k
tracker_down

# The default granularity (64 KiB), four writers at once (one log each).
tracker_up "$img"
log "4 concurrent fio (granularity 64k)"
tracker_drain "$DIRTY_TMP/discard"
: >"$DIRTY_TMP/drained"
pids=()
for e in psync pvsync2 io_uring libaio; do
	fio --name=par --filename="$img" --rw=randwrite --ioengine=$e --bsrange=512-128k \
		--io_size=8M --randseed=$RANDOM$RANDOM --write_iolog="$DIRTY_TMP/par.$e.log" \
		--fallocate=none --output-format=terse >/dev/null 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent fio failed"; done
tracker_drain "$DIRTY_TMP/drained"
oracle 64k "$DIRTY_TMP/drained" "$DIRTY_TMP"/par.*.log
log PASS
