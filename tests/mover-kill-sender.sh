#!/bin/bash
# mover-kill-sender: kill -9 the sender in the middle of a copy; the
# destination does not look complete; the same copy run again (same
# transfer id) is resumed and sends less than what was not yet
# acknowledged plus one work unit -- shown by the stats -- and ends
# identical.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
U=$((8 << 20))
src=$MOVER_TMP/src.img
truncate -s 256M "$src"
dd if=/dev/urandom of="$src" bs=1M count=192 conv=notrunc status=none
total=$((256 << 20))

"$LAB" --lab "$LABN" exec h1 ferry-copy --token-file "$TOKEN" --resume kill-s --unit-size 8M --bwlimit 40M \
	--progress=json "$src" ferry://h2/k.img >/dev/null 2>"$MOVER_TMP/prog" &
pid=$!
cleanup_push "kill -9 $pid 2>/dev/null"
acked() { tail -1 "$MOVER_TMP/prog" | jq -r .acked_bytes 2>/dev/null; }
acked_ge() { [ "$(acked)" -ge "$1" ] 2>/dev/null; }
wait_for 30 acked_ge $((48 << 20)) || fail "no progress: $(tail -2 "$MOVER_TMP/prog")"
assert_eq "$(cat /proc/$pid/comm)" ferry-copy "the pid killed"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
a=$(acked)
log "sender killed after $a of $total bytes acknowledged"
# --bwlimit 40M held: bytes on the wire over the elapsed time, 10% slack.
tail -1 "$MOVER_TMP/prog" | jq -e '.wire_bytes * 1000 / .elapsed_ms <= 40 * 1048576 * 1.1' \
	>/dev/null || fail "--bwlimit exceeded: $(tail -1 "$MOVER_TMP/prog")"
[ ! -e "$ROOT/k.img" ] || fail "an interrupted copy looks complete"
ls -a "$ROOT" | grep -q '^\.k\.img\.kill-s\.ferry-part$' || fail "no part file: $(ls -a "$ROOT")"

send "$src" k.img --resume kill-s --unit-size 8M
same "$src" "$ROOT/k.img" "resumed copy"
sent=$(($(j total_bytes) - $(j skipped_bytes)))
remainder=$((total - a))
log "resume: resumed=$(j resumed), skipped $(j skipped_bytes), sent units covering $sent bytes ($(j data_bytes) data), remainder was $remainder"
assert_eq "$(j resumed)" true "resumed"
assert_le "$sent" $((remainder + U - 1)) "covered by the resume < remainder + one unit"
assert_le "$(j data_bytes)" $((remainder + U - 1)) "data sent by the resume < remainder + one unit"
[ -z "$(find "$ROOT" -name '*.ferry-part' -o -name '*.journal')" ] || fail "leftovers: $(find "$ROOT")"
