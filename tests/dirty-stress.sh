#!/bin/bash
# timeout: 90
# Drains in a tight loop interleaved with concurrent writers lose nothing:
# every write is in a drain that began no later than just after it
# returned (pwrite, pwritev, write at the file position, O_DIRECT libaio).
# serial: asserts no rescan and a drain rate, and the tracker counts machine-wide
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"

img=$DIRTY_TMP/disk.img
truncate -s 64M "$img"
for g in 4k 64k; do
	log "6 writers, granularity $g"
	res=$("$DIRTY_STRESS" -t 6 -s 6 -g $g "$img") || fail "stress ($g): $res"
	log "$res"
	[ "$(jq -r .drains <<<"$res")" -gt 100 ] || fail "too few drains to mean anything: $res"
	assert_eq "$(jq -r .rescans <<<"$res")" 0 "rescans"
done
log PASS
