#!/bin/bash
# cold-abort: `ferry abort` during a cold migration's pre-copy stops the
# copy at once (the mover's cancel) and rolls back: the guest runs on h1 and
# VERIFY PASSes, nothing of it is left on h2, the migration is cancelled.
# The same abort once the migration is at "finishing" (its point of no
# return) is refused with that reason, and the migration completes.  A
# SIGTERM of ferryd mid-copy stops it at the next boundary; the journal says
# where, and the next start resumes it (before "finishing": a walk back).
# timeout: 600
# serial: an abort must land inside an 8 s pause, and ferryd stop within 4 s
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 2

L guest h1 g1 --disk-size 256M --memory 128 --write-rate 1M
show() { L exec h1 ferry -j show "$1"; }
field() { show "$1" | jq -r "$2"; }

# nothing_on_h2: no domain, no instance dir, no transfer journal (vm_gone).
nothing_on_h2() {
	vm_gone h2 g1 "$1"
	L exec h1 test ! -e /var/lib/libvirt/images/g1_resize || fail "g1_resize left on h1 ($1)"
}

runs_on_h1() {
	assert_eq "$(L virsh h1 domstate g1 | head -1)" running "g1 on h1 ($1)"
	local out
	out=$(L verify h1 g1 --timeout 120 2>&1) || true
	log "$out"
	[[ $out == "VERIFY PASS"* ]] || fail "VERIFY on h1 ($1)"
}

# wait_step ID STEP...: until the migration is at one of the STEPs.
wait_step() {
	local id=$1 i st
	shift
	for ((i = 0; i < 600; i++)); do
		st=$(field "$id" .step 2>/dev/null || true)
		for s in "$@"; do [ "$st" = "$s" ] && return 0; done
		sleep 0.1
	done
	fail "$id never reached $* (last: $st)"
}

log "--- abort during pre-copy, on a 2 Mbit/s link (the copy is under way)"
sleep 8 # some MiB written by the guest: round 0 takes half a minute at this rate
L shape --rate 2mbit
id=$(L exec h1 ferry -j migrate g1 --to h2 | jq -r .id)
for ((i = 0; i < 300; i++)); do
	s=$(show "$id")
	[ "$(echo "$s" | jq -r .step)" = precopy ] && [ "$(echo "$s" | jq -r .metrics.wire_bytes)" -gt 0 ] && break
	sleep 0.1
done
[ "$(echo "$s" | jq -r .step)" = precopy ] || fail "$id not copying: $s"
wire0=$(echo "$s" | jq -r .metrics.wire_bytes)
alloc=$(echo "$s" | jq -r '.disks[0].alloc_bytes')
t0=$(date +%s%N)
L exec h1 ferry abort "$id" --wait >/dev/null 2>&1 || true
ms=$((($(date +%s%N) - t0) / 1000000))
s=$(show "$id")
log "aborted with $wire0 of ~$alloc bytes sent; cancelled after ${ms} ms: $(echo "$s" | jq -c '{step, status, error}')"
assert_eq "$(echo "$s" | jq -r .step)" cancelled "step after abort"
assert_eq "$(echo "$s" | jq -r .status)" cancelled "status after abort"
assert_contains "$(echo "$s" | jq -r .error)" "cancelled by the operator" "error"
# What was left would take (alloc - wire0) / 250 kB/s; the abort is far quicker.
left_ms=$(((alloc - wire0) / 250))
log "the rest of round 0 alone would have taken ~${left_ms} ms"
assert_le "$ms" 15000 "abort to cancelled (ms), at most a chunk in flight per stream"
assert_le "$ms" "$left_ms" "the copy was stopped, not waited for"
L shape --rate none
runs_on_h1 "after abort"
nothing_on_h2 "after abort"
L exec h2 ferry -j show "$id" | jq -e '.step == "cancelled" or .step == "failed"' >/dev/null ||
	fail "h2 learnt of the abort: $(L exec h2 ferry -j show "$id")"

log "--- abort at finishing (past the point of no return) is refused"
L ferryd h1 restart --env FERRY_TEST_PAUSE=source:finishing:8000
id=$(L exec h1 ferry -j migrate g1 --to h2 | jq -r .id)
wait_step "$id" finishing
out=$(L exec h1 ferry abort "$id" 2>&1) && fail "abort at finishing accepted: $out"
log "refused: $out"
assert_contains "$out" "point of no return" "abort refusal"
assert_contains "$out" "finishing" "abort refusal names the step"
wait_step "$id" finished
assert_eq "$(L virsh h2 domstate g1 | head -1)" running "g1 on h2 after the refused abort"
L exec h1 ferry confirm "$id" --wait >/dev/null
L verify h2 g1 --timeout 120 | grep -q '^VERIFY PASS' || fail "VERIFY on h2"

log "--- SIGTERM mid-copy: stop at the boundary, resume at next start"
L shape --rate 8mbit
id=$(L exec h2 ferry -j migrate g1 --to h1 | jq -r .id)
for ((i = 0; i < 600; i++)); do
	[ "$(L exec h2 ferry -j show "$id" | jq -r .step)" = precopy ] && break
	sleep 0.1
done
t0=$(date +%s%N)
L ferryd h2 stop
ms=$((($(date +%s%N) - t0) / 1000000))
log "ferryd on h2 stopped in ${ms} ms"
assert_le "$ms" 4000 "SIGTERM stops the copy at once (the lab kills after 5 s)"
L ferryd h2 log | grep -q "stopped in precopy\|stopping before" || fail "h2 did not stop at a boundary"
j=$(L exec h2 cat "/var/lib/ferry/migrations/$id.json")
assert_eq "$(echo "$j" | jq -r .flow_step)" precopy "journaled step at the stop"
L shape --rate none
L ferryd h2 start
for ((i = 0; i < 600; i++)); do
	st=$(L exec h2 ferry -j show "$id" | jq -r .step)
	[ "$st" = failed ] && break
	sleep 0.2
done
assert_eq "$st" failed "resumed at next start (walked back before finishing)"
assert_contains "$(L exec h2 ferry -j show "$id" | jq -r .error)" "interrupted at precopy" "why"
assert_eq "$(L virsh h2 domstate g1 | head -1)" running "g1 on h2 after the resume"
L verify h2 g1 --timeout 120 | grep -q '^VERIFY PASS' || fail "VERIFY on h2 after the resume"
log "ok: abort rolls back before the point of no return and is refused after it; SIGTERM resumes"
