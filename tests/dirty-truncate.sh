#!/bin/bash
# timeout: 60
# Changes of a tracked file's size: shrinking by ftruncate, by truncate(2)
# on the path and by open(O_TRUNC) each make the next drain ask for a full
# rescan; growing does not (the new tail reads as zeroes) and the drain
# reports the new size.  fallocate: punching a hole marks its range,
# collapsing a range asks for a rescan.
# serial: asserts no rescan, and truncate(2) is counted machine-wide
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd jq truncate fallocate perl

img=$DIRTY_TMP/disk.img
truncate -s 64M "$img"
dd if=/dev/urandom of="$img" bs=1M count=8 conv=notrunc status=none

n=0
drain() { # drain; the result in $D
	n=$((n + 1))
	D=$DIRTY_TMP/d$n
	tracker_drain "$D"
}
expect() { # RESCAN REASON WHAT
	assert_eq "$(jq -r .rescan_needed "$D")" "$1" "$3: rescan_needed"
	[ -z "$2" ] || assert_contains "$(jq -r '.rescan_reasons | join(",")' "$D")" "$2" "$3"
}

tracker_up -g 64k "$img"
drain
expect false "" "start"

log "grow with ftruncate: no rescan, new size"
truncate -s 96M "$img"
drain
expect false "" "growth"
assert_eq "$(jq -r .size_bytes "$D")" $((96 * 1024 * 1024)) "size after growth"

log "shrink with ftruncate"
truncate -s 80M "$img"
drain
expect true shrink "ftruncate shrink"
drain
expect false "" "the drain after"

log "shrink with truncate(2) on the path"
perl -e 'truncate($ARGV[0], 70 * 1024 * 1024) or die "$!"' "$img"
drain
expect true "" "truncate(2) shrink"

log "open(O_TRUNC)"
: >"$img"
drain
expect true shrink "O_TRUNC"
truncate -s 64M "$img"
drain

log "punch a hole: its blocks, and only them"
fallocate -p -o $((1024 * 1024)) -l $((256 * 1024)) "$img"
drain
expect false "" "punch hole"
assert_eq "$(jq -c .ranges "$D")" "[[$((1024 * 1024)),$((256 * 1024))]]" "punched range"

log "collapse a range"
if fallocate -c -o $((4 * 1024 * 1024)) -l $((1024 * 1024)) "$img" 2>/dev/null; then
	drain
	expect true collapse_insert "collapse range"
else
	log "collapse range not supported by this file system; skipped that step"
fi
tracker_down
log PASS
