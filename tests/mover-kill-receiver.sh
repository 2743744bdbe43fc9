#!/bin/bash
# mover-kill-receiver: kill -9 the receiver in the middle of a copy; the
# sender gives up after its retries; the destination does not look
# complete; a new receiver and the same copy (same transfer id) resume from
# the journal, send less than what was not yet acknowledged plus one work
# unit -- shown by the stats -- and end identical.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
U=$((8 << 20))
src=$MOVER_TMP/src.img
truncate -s 256M "$src"
dd if=/dev/urandom of="$src" bs=1M count=192 seek=32 conv=notrunc status=none
total=$((256 << 20))

"$LAB" --lab "$LABN" exec h1 ferry-copy --token-file "$TOKEN" --resume kill-r --unit-size 8M --bwlimit 40M --retries 2 \
	--progress=json "$src" ferry://h2/k.img >/dev/null 2>"$MOVER_TMP/prog" &
pid=$!
cleanup_push "kill -9 $pid 2>/dev/null"
acked() { grep '^{' "$MOVER_TMP/prog" | tail -1 | jq -r .acked_bytes 2>/dev/null; }
acked_ge() { [ "$(acked)" -ge "$1" ] 2>/dev/null; }
wait_for 30 acked_ge $((48 << 20)) || fail "no progress: $(tail -2 "$MOVER_TMP/prog")"
assert_eq "$(cat /proc/$SERVE_PID/comm)" ferry-copy "the pid killed"
kill -9 "$SERVE_PID"
rc=0
wait "$pid" || rc=$?
assert_ne "$rc" 0 "sender exit status after losing its receiver"
grep -q "ferry://h2/k.img: " "$MOVER_TMP/prog" || fail "sender error: $(tail -3 "$MOVER_TMP/prog")"
a=$(acked)
log "receiver killed; the sender's last word: $a of $total bytes acknowledged"
[ ! -e "$ROOT/k.img" ] || fail "an interrupted copy looks complete"

mover_serve
send "$src" k.img --resume kill-r --unit-size 8M
same "$src" "$ROOT/k.img" "resumed copy"
sent=$(($(j total_bytes) - $(j skipped_bytes)))
remainder=$((total - a))
log "resume: resumed=$(j resumed), skipped $(j skipped_bytes), sent units covering $sent bytes ($(j data_bytes) data), remainder was $remainder"
assert_eq "$(j resumed)" true "resumed"
assert_le "$sent" $((remainder + U - 1)) "covered by the resume < remainder + one unit"
assert_le "$(j data_bytes)" $((remainder + U - 1)) "data sent by the resume < remainder + one unit"
