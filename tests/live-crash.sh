#!/bin/bash
# live-crash: kill -9 of ferryd on the source and on the destination at
# every journaled point of a live block migration (FERRY_TEST_CRASH makes
# ferryd SIGKILL itself right after journaling that point, or at a named
# point inside a step), then start it again.  Before the switchover the
# migration walks back, or rolls forward when libvirt finished the RAM phase
# on its own while ferryd was dead; after it, it completes.  Either way the
# guest is active on exactly one host, VERIFY PASSes there, the outcome
# matches where it runs, and nothing is left on the other host.
# timeout: 1200
. "$(dirname "$0")/live_lib.sh"
lab_up "$lab" --hosts 2
L guest h1 vm1 --disk-size 64M --write-rate 1M
# A RAM phase of several 200 ms controller ticks (~2 s for its 128 MiB),
# so that ram-tick is reached.
L shape --rate 300mbit
here=h1

other() { [ "$1" = h1 ] && echo h2 || echo h1; }

# crash ROLE POINT: live-migrate vm1 off $here, ferryd of ROLE's host dying at POINT.
crash() {
	local role=$1 point=$2 src dst victim id st on
	src=$here dst=$(other "$here")
	[ "$role" = source ] && victim=$src || victim=$dst
	log "--- kill -9 of $role ($victim) at '$point'"
	L ferryd "$victim" restart --env "FERRY_TEST_CRASH=$role:$point"
	id=$(L exec "$src" ferry -j live-migrate vm1 --to "$dst" | jq -r .id)
	wait_for 120 sh -c "! '$LAB' --lab $lab ferryd $victim status" ||
		fail "ferryd on $victim did not die at $role:$point"
	L ferryd "$victim" start
	st=$(live_wait "$id" "$src")
	on=$(live_runs_on vm1)
	log "$id came to rest: $st, vm1 on $on ($(live_show "$id" "$src" .error))"
	case $st in
	completed) assert_eq "$on" "$dst" "$role:$point: completed, so vm1 runs on $dst" ;;
	*) assert_eq "$on" "$src" "$role:$point: $st, so vm1 runs on $src" ;;
	esac
	assert_eq "$(L virsh "$on" domstate vm1 | head -1)" running "$role:$point: vm1's state"
	live_verify "$on" vm1
	vm_gone "$(other "$on")" vm1
	here=$on
}

for p in prep precopy before-libvirt ram-tick ram switched before-seal sealed resuming cleanup; do
	crash source "$p"
done
for p in prep resuming completed; do
	crash dest "$p"
done
log "ok: every crash point came to rest with vm1 verified on exactly one host"
