#!/bin/bash
# mover-dos: connections that never finish their HELLO cannot keep a sender
# out.  With the receiver's defaults (those ferryd's embedded receiver has
# too), 80 connections trickling a HELLO a byte a second do not stop a
# real copy from the same host, and every one of them is closed within the
# HELLO deadline (10 s) however long it keeps trickling.  An authenticated
# connection that trickles a frame is closed by its frame deadline
# (--idle-timeout).
# timeout: 120
# serial: an 8 MiB copy during a flood must take under 5 s
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
head -c 8M /dev/urandom >"$MOVER_TMP/src.img"
on h1 python3 "$FERRY_TOP/tests/mover_wire.py" flood h2 4790 80 25 >"$MOVER_TMP/flood" 2>&1 &
flood=$!
cleanup_push "kill $flood 2>/dev/null"
sleep 3
start=$(date +%s%N)
ERR=
send "$MOVER_TMP/src.img" d.img -C 4 --retries 2 ||
	fail "the copy failed during the flood: $(tail -3 "$SERVE_LOG")"
ms=$((($(date +%s%N) - start) / 1000000))
same "$MOVER_TMP/src.img" "$ROOT/d.img" "copy during the flood"
log "copy during the flood: $ms ms, $(j retries) retries"
assert_le "$ms" 5000 "copy time during the flood"
wait "$flood" || fail "flood: $(cat "$MOVER_TMP/flood")"
log "flood: $(cat "$MOVER_TMP/flood")"
assert_contains "$(cat "$MOVER_TMP/flood")" "closed 80 of 80" "trickling connections closed"
kill -0 "$SERVE_PID" || fail "receiver died"

log "an authenticated connection trickling a frame"
mover_serve_stop
mover_serve --idle-timeout 3000
wire idle i.img $((1 << 20))
