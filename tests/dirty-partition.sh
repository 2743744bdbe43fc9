#!/bin/bash
# timeout: 90
# A tracked partition: writes to it are drained at partition-relative
# offsets; writes to the whole disk are drained for the part that falls in
# the partition, and writes to the other partition not at all.  (Partitions
# are added with BLKPG, so no partition-table parser is needed.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd fio jq losetup addpart delpart

loop_up 128M
disk=$LOOPDEV
p1_start=2048 p1_len=81920	  # sectors: 1 MiB .. 41 MiB
p2_start=86016 p2_len=122880  # 42 MiB .. 102 MiB
addpart "$disk" 1 $p1_start $p1_len || skip "cannot add partitions (BLKPG)"
cleanup_push "delpart '$disk' 1"
addpart "$disk" 2 $p2_start $p2_len || fail "addpart 2"
cleanup_push "delpart '$disk' 2"
wait_for 5 test -b "${disk}p2" || fail "${disk}p2 did not appear"

tracker_up -g 4k "${disk}p2"

log "fio on ${disk}p2"
tracker_drain "$DIRTY_TMP/discard"
fio_randwrite "${disk}p2" "$DIRTY_TMP/p2.log" libaio --direct=1 --bsrange=4k-256k \
	--iodepth=8 --io_size=12M
: >"$DIRTY_TMP/drained"
tracker_drain "$DIRTY_TMP/drained"
oracle 4k "$DIRTY_TMP/drained" "$DIRTY_TMP/p2.log"

log "fio on ${disk}p1: nothing drained"
fio_randwrite "${disk}p1" "$DIRTY_TMP/p1.log" psync --direct=1 --bs=64k --io_size=8M
: >"$DIRTY_TMP/drained"
tracker_drain "$DIRTY_TMP/drained"
assert_eq "$(jq -r '.ranges | length' "$DIRTY_TMP/drained")" 0 "ranges after writing p1"

log "fio on $disk across the end of p1 and into p2: the p2 part, relative to p2"
fio_randwrite "$disk" "$DIRTY_TMP/whole.log" psync --direct=1 --bsrange=4k-128k \
	--offset=$((38 * 1024 * 1024)) --size=64M --io_size=12M
: >"$DIRTY_TMP/drained"
tracker_drain "$DIRTY_TMP/drained"
oracle 4k "$DIRTY_TMP/drained" "$DIRTY_TMP/whole.log" -s $((p2_start * 512))
log PASS
