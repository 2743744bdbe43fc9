#!/bin/bash
# timeout: 90
# Tracked partitions: writes to one are drained at partition-relative
# offsets and never in the neighbour (even where the neighbour's size is
# not a multiple of the granularity); writes to the whole disk are drained
# for the part that falls in each partition.  (Partitions are added with
# BLKPG, so no partition-table parser is needed.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd fio jq losetup addpart delpart

loop_up 128M
disk=$LOOPDEV
p1_start=2048 p1_len=81921    # sectors: 1 MiB .. ~41 MiB, not a multiple of 64 KiB
p2_start=83969 p2_len=122880  # right after p1
addpart "$disk" 1 $p1_start $p1_len || skip "cannot add partitions (BLKPG)"
cleanup_push "delpart '$disk' 1"
addpart "$disk" 2 $p2_start $p2_len || fail "addpart 2"
cleanup_push "delpart '$disk' 2"
wait_for 5 test -b "${disk}p2" || fail "${disk}p2 did not appear"

TRACKED=2 tracker_up -g 64k "${disk}p1" "${disk}p2"
drain() { # drain both; their JSON in $DIRTY_TMP/p1.json, p2.json
	: >"$DIRTY_TMP/both"
	TRACKED=2 tracker_drain "$DIRTY_TMP/both"
	jq -c "select(.path == \"${disk}p1\")" "$DIRTY_TMP/both" >"$DIRTY_TMP/p1.json"
	jq -c "select(.path == \"${disk}p2\")" "$DIRTY_TMP/both" >"$DIRTY_TMP/p2.json"
}

log "fio on ${disk}p2, including its first block"
drain
fio_randwrite "${disk}p2" "$DIRTY_TMP/p2.log" libaio --direct=1 --bsrange=4k-256k \
	--iodepth=8 --io_size=12M
fio_randwrite "${disk}p2" "$DIRTY_TMP/p2first.log" psync --direct=1 --bs=4k --size=4k
drain
oracle 64k "$DIRTY_TMP/p2.json" "$DIRTY_TMP/p2.log" "$DIRTY_TMP/p2first.log"
assert_eq "$(jq -r '.ranges | length' "$DIRTY_TMP/p1.json")" 0 "p1 ranges after writing p2"

log "fio on ${disk}p1, including its last sector"
fio_randwrite "${disk}p1" "$DIRTY_TMP/p1.log" psync --direct=1 --bs=64k --io_size=8M
fio_randwrite "${disk}p1" "$DIRTY_TMP/p1last.log" psync --direct=1 --bs=512 \
	--offset=$(((p1_len - 1) * 512)) --size=512
drain
oracle 64k "$DIRTY_TMP/p1.json" "$DIRTY_TMP/p1.log" "$DIRTY_TMP/p1last.log"
assert_eq "$(jq -r '.ranges | length' "$DIRTY_TMP/p2.json")" 0 "p2 ranges after writing p1"

log "fio on $disk across both: each gets its part, relative to its start"
fio_randwrite "$disk" "$DIRTY_TMP/whole.log" psync --direct=1 --bsrange=4k-128k \
	--offset=$((38 * 1024 * 1024)) --size=62M --io_size=12M
drain
oracle 64k "$DIRTY_TMP/p2.json" "$DIRTY_TMP/whole.log" -s $((p2_start * 512))
# p1's part: the log's writes below p2, shifted by p1's start.
awk -v end=$((p2_start * 512)) '$3 == "write" && $4 < end' "$DIRTY_TMP/whole.log" |
	awk -v end=$((p2_start * 512)) '{ if ($4 + $5 > end) $5 = end - $4; print }' \
	>"$DIRTY_TMP/whole.p1.log"
[ -s "$DIRTY_TMP/whole.p1.log" ] || fail "no whole-disk write fell in p1"
oracle 64k "$DIRTY_TMP/p1.json" "$DIRTY_TMP/whole.p1.log" -s $((p1_start * 512))
log PASS
