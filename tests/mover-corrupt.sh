#!/bin/bash
# mover-corrupt: a chunk damaged after its checksum was computed is caught
# by the receiver before it is written; the error names the extent.  Once,
# the sender retries the unit (and the units it had sent behind it on that
# connection) and the copy ends identical; on every chunk,
# the copy fails and no destination appears under its name.
# The damage comes from a test-only hook of ferry-copy
# (--x-fault-corrupt-chunk N / --x-fault-corrupt-every N: flip a byte of the
# Nth data chunk after checksumming it); nothing else corrupts data here.
# timeout: 90
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
src=$MOVER_TMP/src.img
head -c 24M /dev/urandom >"$src"

log "one damaged chunk: detected, retried, identical"
# 24 units over 4 connections: the dropped connection's units sent behind
# the damaged chunk must be sent again, though it joins a live transfer.
send "$src" once.img --x-fault-corrupt-chunk 5 --verify --unit-size 1M -C 4
same "$src" "$ROOT/once.img" "copy after a retry"
assert_eq "$(j retries)" 1 "retries"
grep -q "extent 0x[0-9a-f]*+[0-9]*[KM]*: checksum mismatch" "$SERVE_LOG" ||
	fail "receiver did not report the extent: $(cat "$SERVE_LOG")"

log "every chunk damaged: the copy fails naming the extent"
expect_fail on h1 ferry-copy --token-file "$TOKEN" --retries 2 --x-fault-corrupt-every 1 \
	"$src" ferry://h2/always.img
assert_contains "$ERR" "ferry://h2/always.img: extent 0x" "error names destination and extent"
assert_contains "$ERR" "checksum mismatch" "error says what"
[ ! -e "$ROOT/always.img" ] || fail "a failed copy left a complete-looking destination"
