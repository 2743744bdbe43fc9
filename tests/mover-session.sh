#!/bin/bash
# mover-session: one session (ferry-copy --rounds) carries a whole-image
# round, dirty rounds and a final delta over one connection set-up -- the
# receiver accepts one HELLO per connection and creates one journal, not
# one per round -- and ends byte-identical to a source that changed between
# the rounds.  A round whose connections are dropped (ss -K on the
# receiver) reconnects, resumes from the receiver's journal and completes.
# timeout: 180
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

need_cmd ss mkfifo
mover_lab_up
mover_serve -vv
M=$((1 << 20))
C=4
src=$MOVER_TMP/src.img
truncate -s 192M "$src"
dd if=/dev/urandom of="$src" bs=1M count=64 conv=notrunc status=none
dd if=/dev/urandom of="$src" bs=1M count=8 seek=120 conv=notrunc status=none

# Round 0: everything; 1: three dirty pieces; 2: 64 MiB rewritten (the
# connections are dropped in it, once about 48 MiB went out at 20 MB/s);
# 3: the final delta, 64 KiB pieces.
cat >"$MOVER_TMP/rounds" <<ROUNDS
all
round
$((3 * M)) $((64 << 10))
$((70 * M)) $((2 * M))
$((121 * M + 4096)) 8192
round
$((8 * M)) $((64 * M))
round
$((5 * M)) $((64 << 10))
$((90 * M)) $((64 << 10))
$((180 * M)) $((64 << 10))
ROUNDS
dirty() { # dirty OFF LEN: new random bytes in the source
	head -c "$2" /dev/urandom | dd of="$src" bs=64K seek="$1" oflag=seek_bytes conv=notrunc \
		status=none
}
hellos() { grep -c 'hello from .* accepted' "$SERVE_LOG"; }
ready() { grep -q "^round $1: ready" "$MOVER_TMP/err"; }

mkfifo "$MOVER_TMP/go"
"$LAB" --lab "$LABN" exec h1 ferry-copy -j --token-file "$TOKEN" -C $C --unit-size 8M \
	--bwlimit 20M --retries 8 --resume sess-1 --rounds "$MOVER_TMP/rounds" --round-pause \
	"$src" ferry://h2/s.img <"$MOVER_TMP/go" >"$MOVER_TMP/out" 2>"$MOVER_TMP/err" &
pid=$!
cleanup_push "kill -9 $pid 2>/dev/null"
exec 3>"$MOVER_TMP/go"

wait_for 60 ready 1 || fail "round 0 did not end: $(tail -3 "$MOVER_TMP/err")"
dirty $((3 * M)) $((64 << 10))
dirty $((70 * M)) $((2 * M))
dirty $((121 * M + 4096)) 8192
echo go >&3
wait_for 30 ready 2 || fail "round 1 did not end: $(tail -3 "$MOVER_TMP/err")"
assert_eq "$(hellos)" $C "HELLOs for rounds 0 and 1 ($C connections)"
assert_eq "$(grep -c 'units done$' "$SERVE_LOG")" 1 "destinations and journals opened"
[ ! -e "$ROOT/s.img" ] || fail "the destination appeared before the commit"

dirty $((8 * M)) $((64 * M))
echo go >&3
sleep 2.5
on h2 ss -K -t state established '( sport = :4790 )' >"$MOVER_TMP/killed"
killed=$(grep -c 4790 "$MOVER_TMP/killed" || true)
[ "$killed" -gt 0 ] || skip "ss -K closed nothing (kernel without INET_DIAG_DESTROY?)"
log "dropped $killed connections in round 2"
wait_for 60 ready 3 || fail "round 2 did not resume: $(tail -3 "$MOVER_TMP/err")"
h3=$(hellos)
dirty $((5 * M)) $((64 << 10))
dirty $((90 * M)) $((64 << 10))
dirty $((180 * M)) $((64 << 10))
echo go >&3
exec 3>&-
rc=0
wait "$pid" || rc=$?
assert_eq "$rc" 0 "sender exit status ($(tail -3 "$MOVER_TMP/err"))"
assert_eq "$(hellos)" "$h3" "HELLOs for the final delta (none: the session is open)"

OUT=$(jq -s . "$MOVER_TMP/out")
assert_eq "$(jq length <<<"$OUT")" 4 "rounds reported"
assert_eq "$(j '[1].total_bytes')" $((2 * M + (64 << 10) + 8192)) "round 1 covered"
assert_eq "$(j '[3].total_bytes')" $((3 * (64 << 10))) "the final delta covered"
assert_ge "$(j '[2].retries')" 1 "round 2 reconnected"
# What was durable is not sent again; only the units in flight can be.
assert_le "$(j '[2].data_bytes')" $((64 * M + C * 8 * M)) "round 2 sent its ranges + units in flight"
log "round 2: $(jq -c ".[2] | {retries, total_bytes, skipped_bytes, data_bytes, wall_ms}" <<<"$OUT")"
same "$src" "$ROOT/s.img" "session copy"
grep -q 'transfer sess-1 complete' "$SERVE_LOG" || fail "no commit: $(tail -3 "$SERVE_LOG")"
log "rounds: $(jq -r '[.[] | .wall_ms | tostring] | join(" ms, ")' <<<"$OUT") ms; $(hellos) HELLOs in all"
