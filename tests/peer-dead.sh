#!/bin/bash
# peer-dead: with two of three peers cut off (their switch ports down, so
# connections time out rather than being refused), `ferry hosts` and
# `ferry migrations` answer within one deadline, not one timeout per dead
# peer, and name the dead ones; once they are back, the pooled links come
# back too.
# timeout: 300
# serial: a 3 s peer deadline checked to within 2 s
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 4

timed() { # OUT_VAR CMD...: run, store output, print elapsed ms
	local t0 out
	t0=$(date +%s%N)
	out=$("$@" 2>&1) || true
	printf '%s' "$out" >"$BUILD/peer-dead.out"
	echo $((($(date +%s%N) - t0) / 1000000))
}

ms=$(timed L exec h1 ferry -j hosts)
log "all up: ferry hosts in ${ms} ms"
assert_eq "$(jq '[.[] | select(.reachable)] | length' "$BUILD/peer-dead.out")" 4 "reachable hosts"

log "cut h3 and h4 off the switch"
L partition h3 h4
ms=$(timed L exec h1 ferry -j hosts)
log "two peers down: ferry hosts in ${ms} ms"
h=$(cat "$BUILD/peer-dead.out")
assert_eq "$(echo "$h" | jq -r '[.[] | select(.reachable) | .host] | sort | join(",")')" "h1,h2" "reachable"
assert_eq "$(echo "$h" | jq -r '[.[] | select(.reachable | not) | .host] | sort | join(",")')" "h3,h4" "unreachable"
echo "$h" | jq -e '[.[] | select(.reachable | not) | .error | length > 0] | all' >/dev/null ||
	fail "a dead host without its error: $h"
# One deadline (3 s) for all, plus the CLI's own work; two timeouts would be 6 s+.
assert_le "$ms" 5000 "ferry hosts with two dead peers (ms)"
ms=$(timed L exec h1 ferry -j migrations)
log "two peers down: ferry migrations in ${ms} ms"
assert_le "$ms" 5000 "ferry migrations with two dead peers (ms)"

log "heal: the links come back"
L heal h3 h4
for ((i = 0; i < 50; i++)); do
	n=$(L exec h1 ferry -j hosts | jq '[.[] | select(.reachable)] | length')
	[ "$n" = 4 ] && break
	sleep 0.2
done
assert_eq "$n" 4 "reachable hosts after heal"
log "ok: dead peers cost one deadline, not one each"
