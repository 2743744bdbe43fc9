#!/bin/bash
# mover-bad-frames: a peer speaking the wire format (tests/mover_wire.py)
# sends frames ferry-copy never would: past the image's end, wrapping
# around, across a work unit, backwards, oversized, a zstd frame inflating
# past its declared size, a bad checksum, bad magic/version, a unit end that
# does not add up, an early commit, a truncated frame.  Each is refused with
# an error and the destination (an existing file) is left untouched; the
# receiver keeps serving.  (Where a scenario starts with a valid zero
# record, it lands on the victim's first MiB, which is zeros already.)
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
size=$((8 << 20))
{ head -c 1M /dev/zero; head -c $((size - (1 << 20))) /dev/urandom; } >"$ROOT/victim.img"
cp "$ROOT/victim.img" "$MOVER_TMP/victim.orig"
for s in zero-past-end data-past-end zero-wraps zero-crosses-unit backwards data-oversized \
	hello-twice zstd-bomb bad-checksum bad-magic bad-version unit-end-mismatch commit-early \
	truncated; do
	out=$(on h1 python3 "$FERRY_TOP/tests/mover_wire.py" send h2 4790 "$TOKEN" victim.img $size "$s") ||
		fail "$s: accepted: $out"
	log "$s: $out"
	cmp "$ROOT/victim.img" "$MOVER_TMP/victim.orig" || fail "$s: destination changed"
done
grep -q "extent outside the image" "$SERVE_LOG" || fail "no 'outside the image' in the log"
grep -q "truncated frame" "$SERVE_LOG" || fail "truncated frame not reported"
kill -0 "$SERVE_PID" || fail "receiver died"

log "the receiver still serves a good copy"
head -c 1M /dev/urandom >"$MOVER_TMP/good.img"
send "$MOVER_TMP/good.img" good.img
same "$MOVER_TMP/good.img" "$ROOT/good.img" "copy after bad frames"
