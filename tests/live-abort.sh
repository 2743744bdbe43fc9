#!/bin/bash
# timeout: 500
# live-abort: `ferry abort` of a live block migration during the disk
# pre-copy and again during the RAM phase: the migration is cancelled, the
# guest keeps running on h1 and VERIFY PASSes, and nothing is left on h2
# (no domain, no instance dir, no transfer).  Past the switchover the abort
# is refused with its reason and the migration completes.
# serial: an abort must land inside a 4 s pause
. "$(dirname "$0")/live_lib.sh"
lab_up "$lab" --hosts 2
L guest h1 vm1 --disk-size 256M --write-rate 1M
sleep 6 # a few MiB written: round 0 takes seconds on a slow link

# wait_until ID JQ: until `ferry -j show` satisfies JQ; prints the record.
wait_until() {
	local i s=''
	for ((i = 0; i < 600; i++)); do
		s=$(L exec h1 ferry -j show "$1" 2>/dev/null || true)
		jq -e "$2" <<<"$s" >/dev/null 2>&1 && { echo "$s"; return 0; }
		sleep 0.1
	done
	fail "$1 never satisfied $2 (last: $(jq -c '{step, status, error}' <<<"$s"))"
}

aborted() { # aborted ID WHEN: cancelled, vm1 on h1, nothing on h2
	local st
	st=$(live_wait "$1" h1)
	assert_eq "$st" cancelled "$2: outcome ($(live_show "$1" h1 .error))"
	assert_eq "$(live_runs_on vm1)" h1 "$2: where vm1 runs"
	assert_eq "$(L virsh h1 domstate vm1 | head -1)" running "$2: running on h1"
	vm_gone h2 vm1
	L exec h2 ferry -j migrations vm1 | jq -e --arg id "$1" \
		'[.[] | select(.id == $id) | .status] | all(. == "cancelled" or . == "failed")' \
		>/dev/null || fail "$2: $1 still active on h2"
	live_verify h1 vm1
}

log "--- abort during disk pre-copy (2 Mbit/s link)"
L shape --rate 2mbit
id=$(L exec h1 ferry -j live-migrate vm1 --to h2 | jq -r .id)
wait_until "$id" '.step == "precopy" and .metrics.wire_bytes > 0' >/dev/null
L exec h1 ferry abort "$id" >/dev/null
aborted "$id" "pre-copy"

log "--- abort during the RAM phase (the link slowed to 1 Mbit/s once RAM starts)"
L shape --rate 20mbit
id=$(L exec h1 ferry -j live-migrate vm1 --to h2 | jq -r .id)
wait_until "$id" '.step == "ram"' >/dev/null
L shape --rate 1mbit
s=$(wait_until "$id" '.step == "ram" and .metrics.memory_processed_bytes > 0')
log "in the RAM phase: $(jq -c '.metrics | {memory_processed_bytes, memory_remaining_bytes, ram_disk_rounds}' <<<"$s")"
# (not `| grep -q`: under pipefail, virsh's SIGPIPE when grep leaves early fails it)
assert_eq "$(L virsh h2 domstate vm1 | head -1)" paused "the incoming domain on h2 during the RAM phase"
L exec h1 ferry abort vm1 >/dev/null
aborted "$id" "RAM phase"

log "--- past the switchover an abort is refused, and the migration completes"
L shape --rate none
L ferryd h1 restart --env FERRY_TEST_PAUSE=source:resuming:4000
id=$(L exec h1 ferry -j live-migrate vm1 --to h2 | jq -r .id)
wait_until "$id" '.step == "resuming"' >/dev/null
expect_fail L exec h1 ferry abort "$id"
assert_contains "$ERR" "point of no return" "abort after the switchover"
log "refused: $ERR"
assert_eq "$(live_wait "$id" h1)" completed "after a refused abort"
assert_eq "$(live_runs_on vm1)" h2 "where vm1 runs"
live_verify h2 vm1
vm_gone h1 vm1
log "ok"
