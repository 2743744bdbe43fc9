#!/bin/bash
# mover-commit-fail: a group commit fails -- EIO on the part file's
# fdatasync, then ENOSPC on the journal's write (tests/helpers/faultfs.c, a
# mock of a failing disk).  The transfer fails: a COMMIT that follows on
# another connection does not rename the file, since a unit was never
# journaled.  A ferry-copy hit the same way fails, and run again without
# the fault resumes and ends identical with every unit acknowledged.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

[ -f "$FAULTFS" ] || fail "$FAULTFS missing (run make)"
mover_lab_up
src=$MOVER_TMP/src.img
head -c 16M /dev/urandom >"$src"
# The journal's 1st pwrite is its header, the 2nd the first records.
for fault in "fdatasync:*.ferry-part:1:EIO" "pwrite:*.journal:2:ENOSPC"; do
	log "fault: $fault"
	SERVE_ENV="LD_PRELOAD=$FAULTFS FERRY_FAULT=$fault" mover_serve
	wire commit-fail cf.img $((2 << 20))
	[ ! -e "$ROOT/cf.img" ] || fail "$fault: renamed although a unit was not journaled"
	grep -q "faultfs: " "$SERVE_LOG" || fail "$fault: not hit: $(cat "$SERVE_LOG")"
	grep -q "group commit: " "$SERVE_LOG" || fail "$fault: not reported: $(cat "$SERVE_LOG")"
	mover_serve_stop

	SERVE_ENV="LD_PRELOAD=$FAULTFS FERRY_FAULT=$fault" mover_serve
	expect_fail on h1 ferry-copy --token-file "$TOKEN" -C 4 --unit-size 1M --resume cf-x \
		"$src" ferry://h2/x.img
	assert_contains "$ERR" "group commit: " "$fault: the sender's error"
	[ ! -e "$ROOT/x.img" ] || fail "$fault: a failed copy looks complete"
	mover_serve_stop
	SERVE_ENV= mover_serve
	send "$src" x.img -C 4 --unit-size 1M --resume cf-x
	same "$src" "$ROOT/x.img" "$fault: copy resumed after the failed commit"
	assert_eq "$(($(j units_acked) + $(j units_skipped)))" "$(j units_total)" "$fault: units journaled"
	mover_serve_stop
	rm -f "$ROOT/x.img"
done
