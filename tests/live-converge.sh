#!/bin/bash
# timeout: 600
# live-converge: a guest that dirties RAM faster than the link carries it
# (the agent's memory dirtier, 32 MB/s over 32 MiB, on a 50 Mbit/s link) never
# converges.  With live_timeout_action = abort the controller gives up after
# live_stall_s with the figures in its reason, and the VM keeps running on
# h1.  `ferry force-complete` makes the same migration finish (the source is
# paused, the rest moves, the destination runs), and so does
# live_timeout_action = force-complete on its own.
. "$(dirname "$0")/live_lib.sh"
lab_up "$lab" --hosts 2
L guest h1 vm1 --disk-size 64M --memory 256 --write-rate 256K --mem-rate 32M --mem-span 32M
L shape --rate 50mbit
status=$(L agent h1 vm1 STATUS)
assert_contains "$status" "mem_rate=33554432" "the guest's memory dirtier"
for h in h1 h2; do
	FERRY_LAB_FERRYD_CONF="live_stall_s = 6" L ferryd "$h" restart
done

log "--- live_timeout_action = abort: the controller gives up, with numbers"
id=$(L exec h1 ferry -j live-migrate vm1 --to h2 | jq -r .id)
assert_eq "$(live_wait "$id" h1 300)" failed "a migration that cannot converge"
err=$(live_show "$id" h1 .error)
log "error: $err"
assert_contains "$err" "cannot converge" "the error"
[[ $err =~ [0-9]+\ MB/s ]] || fail "no rates in the reason: $err"
[ -n "$(live_show "$id" h1 .live.reason)" ] || fail "no controller reason in the record"
assert_eq "$(live_runs_on vm1)" h1 "after the abort"
assert_eq "$(L virsh h1 domstate vm1 | head -1)" running "vm1 on h1"
vm_gone h2 vm1
live_verify h1 vm1

log "--- ferry force-complete: the source pauses, the rest moves, h2 runs it"
id=$(L exec h1 ferry -j live-migrate vm1 --to h2 | jq -r .id)
for ((i = 0; i < 600; i++)); do
	s=$(L exec h1 ferry -j show "$id")
	jq -e '.step == "ram" and .metrics.memory_processed_bytes > 0' <<<"$s" >/dev/null && break
	jq -e '.step == "failed" or .step == "cancelled"' <<<"$s" >/dev/null &&
		fail "$id ended before force-complete: $(jq -r .error <<<"$s")"
	sleep 0.1
done
L exec h1 ferry force-complete vm1 >/dev/null
assert_eq "$(live_wait "$id" h1 300)" completed "after force-complete"
assert_eq "$(live_runs_on vm1)" h2 "after force-complete"
assert_eq "$(L virsh h2 domstate vm1 | head -1)" running "vm1 resumed on h2"
s=$(L exec h1 ferry -j show "$id")
log "downtime: $(jq -c '.metrics | {downtime_ms, qemu_downtime_ms, seal_ms, resume_ms, ram_iterations}' <<<"$s")"
jq -e '.live.force_complete == true' <<<"$s" >/dev/null || fail "force_complete not recorded"
vm_gone h1 vm1
live_verify h2 vm1

log "--- live_timeout_action = force-complete: the controller finishes it alone"
for h in h1 h2; do
	FERRY_LAB_FERRYD_CONF=$'live_stall_s = 6\nlive_timeout_action = force-complete' \
		L ferryd "$h" restart
done
id=$(L exec h2 ferry -j live-migrate vm1 --to h1 | jq -r .id)
assert_eq "$(live_wait "$id" h2 300)" completed "with the timeout forcing completion"
reason=$(live_show "$id" h2 .live.reason)
log "controller: $reason"
[ -n "$reason" ] || fail "no controller reason recorded"
assert_eq "$(live_runs_on vm1)" h1 "after the forced completion"
assert_eq "$(L virsh h1 domstate vm1 | head -1)" running "vm1 resumed on h1"
vm_gone h2 vm1
live_verify h1 vm1
log "ok"
