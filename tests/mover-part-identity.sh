#!/bin/bash
# mover-part-identity: a copy into a new file is interrupted, its part file
# deleted, and the copy run again with the same transfer id.  The new part
# file (which ext4 tends to give the deleted one's inode number) is not the
# one the journal speaks of: the journal is dropped, every unit is sent
# again, and the result is identical -- not the old journal's units left as
# zeros.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
src=$MOVER_TMP/src.img
head -c 64M /dev/urandom >"$src"
part=$ROOT/.p.img.pid-x.ferry-part

"$LAB" --lab "$LABN" exec h1 ferry-copy --token-file "$TOKEN" --resume pid-x --unit-size 4M \
	--bwlimit 16M --progress=json "$src" ferry://h2/p.img >/dev/null 2>"$MOVER_TMP/prog" &
pid=$!
cleanup_push "kill -9 $pid 2>/dev/null"
acked_ge() { [ "$(grep '^{' "$MOVER_TMP/prog" | tail -1 | jq -r .acked_bytes)" -ge "$1" ] 2>/dev/null; }
wait_for 30 acked_ge $((16 << 20)) || fail "no progress: $(tail -2 "$MOVER_TMP/prog")"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
[ -f "$part" ] || fail "no part file: $(ls -a "$ROOT")"
[ -f "$ROOT/.ferry/pid-x.journal" ] || fail "no journal: $(ls -a "$ROOT/.ferry")"
ino=$(stat -c %i "$part")
rm -f "$part"
log "part file (inode $ino) deleted; its journal kept"

send "$src" p.img --resume pid-x --unit-size 4M
same "$src" "$ROOT/p.img" "copy after the part file was deleted"
log "new file: inode $(stat -c %i "$ROOT/p.img") (old part file: $ino); resumed=$(j resumed), skipped $(j skipped_bytes)"
assert_eq "$(j resumed)" false "the old journal was not trusted"
assert_eq "$(j skipped_bytes)" 0 "units skipped"

# The same, but the first sender is frozen, not killed: its connections are
# still open when the part file goes and the copy is run again.  The
# receiver's session for that transfer writes a file no one will see; the
# new hello ends it rather than joining it, and the new copy is whole.
part=$ROOT/.q.img.pid-y.ferry-part
"$LAB" --lab "$LABN" exec h1 ferry-copy --token-file "$TOKEN" --resume pid-y --unit-size 4M \
	--bwlimit 16M --progress=json "$src" ferry://h2/q.img >/dev/null 2>"$MOVER_TMP/prog" &
pid=$!
cleanup_push "kill -9 $pid 2>/dev/null"
wait_for 30 acked_ge $((16 << 20)) || fail "no progress: $(tail -2 "$MOVER_TMP/prog")"
kill -STOP "$pid"
[ -f "$part" ] || fail "no part file: $(ls -a "$ROOT")"
rm -f "$part"
log "sender $pid frozen with its connections open; part file deleted"
send "$src" q.img --resume pid-y --unit-size 4M
same "$src" "$ROOT/q.img" "copy beside a frozen sender of the deleted part file"
assert_eq "$(j resumed)" false "the stale session was not joined"
assert_contains "$(cat "$SERVE_LOG")" "part file .q.img.pid-y.ferry-part was removed" \
	"the receiver says why it ended the stale session"
kill -CONT "$pid"
rc=0
wait "$pid" 2>/dev/null || rc=$?
assert_ne "$rc" 0 "the frozen sender, continued, does not report success"
same "$src" "$ROOT/q.img" "q.img after the stale sender woke"
