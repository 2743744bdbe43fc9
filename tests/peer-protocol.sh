#!/bin/bash
# peer-protocol: ferryd's peer port against clients without the cluster key.
# A client of another protocol version gets an error naming both versions;
# a handshake trickled a byte at a time is cut at one deadline for the whole
# handshake; connections that never authenticate are capped per address, so
# many of them neither make ferryd grow a thread each nor keep other hosts
# out: `ferry hosts` from a third host still reaches it.
# timeout: 240
# serial: times 60 connections against a 5 s deadline
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq python3
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 3
probe=$FERRY_TOP/tests/helpers/peer_probe.py
a1=$(L addr h1)

log "a client speaking protocol version 1"
out=$(L exec h2 python3 "$probe" "$a1" 4710 version)
log "$out"
assert_eq "$(echo "$out" | jq -r .hello.version)" 2 "the server's version in its hello"
err=$(echo "$out" | jq -r .reply.error)
assert_contains "$err" "version 1" "the refusal names the client's version"
assert_contains "$err" "version 2" "the refusal names the server's version"
assert_eq "$(echo "$out" | jq -r .reply.ok)" false "refused"

log "a handshake trickled one byte a second"
secs=$(L exec h2 python3 "$probe" "$a1" 4710 trickle)
log "closed after ${secs}s"
assert_le "${secs%.*}" 7 "the whole handshake has one deadline (5 s)"

log "60 connections from h2 that never authenticate"
pid=$(L exec h1 sh -c 'cat /run/ferry/ferryd.pid 2>/dev/null' || true)
L exec h2 python3 "$probe" "$a1" 4710 hold 60 >"$BUILD/peer-hold.out" &
hold=$!
for ((i = 0; i < 400; i++)); do
	[ -s "$BUILD/peer-hold.out" ] && break
	sleep 0.1
done
closed=$(head -1 "$BUILD/peer-hold.out")
log "closed at once: $closed of 60"
assert_ge "${closed:-0}" 50 "connections over the per-address cap closed at once"
if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
	threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
	log "ferryd on h1: $threads threads"
	assert_le "$threads" 40 "no thread per unauthenticated connection"
fi
h=$(L exec h3 ferry -j hosts)
assert_eq "$(echo "$h" | jq -r '.[] | select(.host == "h1") | .reachable')" true "h1 reachable from h3 meanwhile"
wait $hold
log "ok: versions checked, handshake bounded, unauthenticated connections capped"
