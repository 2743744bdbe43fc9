#!/bin/bash
# cold-concurrent: two `ferry migrate` commands for one VM issued at the same
# moment from two hosts (its own, and one that forwards to it): exactly one
# is accepted, the other gets "operation already in progress" naming it.
# Meanwhile another VM migrates the other way, so both hosts are source and
# destination at once; both migrations finish and both guests verify.
# timeout: 600
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 3

L guest h1 g1 --disk-size 64M --memory 128 --write-rate 512K
L guest h2 g2 --disk-size 64M --memory 128 --write-rate 512K

log "g1: ferry migrate --to h2 from h1 and from h3 at once; g2: h2 -> h1 meanwhile"
go=$(date +%s.%N | awk '{printf "%.3f", $1 + 2}') # the same instant for all three
race() { # HOST VM TO OUT
	L exec "$1" sh -c 'until [ "$(date +%s.%N | cut -c1-14)" \> "$0" ]; do sleep 0.005; done; exec ferry -j migrate "$1" --to "$2"' \
		"$go" "$2" "$3" >"$BUILD/cc-$1-$2.out" 2>&1
	echo $? >"$BUILD/cc-$1-$2.rc"
}
race h1 g1 h2 &
race h3 g1 h2 &
race h2 g2 h1 &
wait
ok=0 busy=0
for h in h1 h3; do
	rc=$(cat "$BUILD/cc-$h-g1.rc") out=$(cat "$BUILD/cc-$h-g1.out")
	log "$h: exit $rc: $out"
	if [ "$rc" = 0 ]; then
		ok=$((ok + 1)) id=$(echo "$out" | jq -r .id)
	elif [[ $out == *"operation already in progress"* ]]; then
		busy=$((busy + 1)) refusal=$out
	fi
done
assert_eq "$ok" 1 "accepted migrations of g1"
assert_eq "$busy" 1 "refused with 'operation already in progress'"
assert_contains "$refusal" "$id" "the refusal names the one running"
assert_eq "$(cat "$BUILD/cc-h2-g2.rc")" 0 "g2's migration, at the same time: $(cat "$BUILD/cc-h2-g2.out")"
id2=$(jq -r .id "$BUILD/cc-h2-g2.out")

wait_finished() { # HOST ID
	local i st
	for ((i = 0; i < 600; i++)); do
		st=$(L exec "$1" ferry -j show "$2" | jq -r .step)
		case $st in finished) return 0 ;; failed | cancelled) fail "$2 ended $st: $(L exec "$1" ferry -j show "$2" | jq -r .error)" ;; esac
		sleep 0.3
	done
	fail "$2 did not finish (step $st)"
}
wait_finished h1 "$id"
wait_finished h2 "$id2"
assert_eq "$(L exec h1 ferry -j migrations g1 | jq length)" 1 "one migration of g1 recorded"
L exec h3 ferry confirm "$id" --wait >/dev/null
L exec h1 ferry confirm "$id2" --wait >/dev/null
L verify h2 g1 --timeout 120 | grep -q '^VERIFY PASS' || fail "VERIFY g1 on h2"
L verify h1 g2 --timeout 120 | grep -q '^VERIFY PASS' || fail "VERIFY g2 on h1"
log "ok: one of two concurrent starts accepted; crossing migrations both finished"
