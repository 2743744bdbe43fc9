#!/bin/bash
# cold-crash: kill -9 of ferryd on the source and on the destination at
# every journaled point of the flow (FERRY_TEST_CRASH makes ferryd SIGKILL
# itself right after journaling that point), then restart it: the operation
# rolls back or completes, the guest VERIFY PASSes wherever it ends up, and
# no orphan remains (domain, instance dir, kept copy, transfer journal).
# timeout: 1200
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 2
L guest h1 g1 --disk-size 64M --memory 128 --write-rate 1M
here=h1

other() { [ "$1" = h1 ] && echo h2 || echo h1; }

# Where does g1 run?  Exactly one host, and it verifies.
check_rest() {
	local h run=() st out
	for h in h1 h2; do
		st=$(L virsh "$h" domstate g1 2>/dev/null | head -1 || true)
		[ "$st" = running ] && run+=("$h")
	done
	[ ${#run[@]} = 1 ] || fail "g1 runs on ${#run[@]} hosts (${run[*]:-none})"
	here=${run[0]}
	out=$(L verify "$here" g1 --timeout 120 2>&1) || true
	if [[ $out == *"no reply"* ]]; then
		# A command lost on its way to the agent (not a verdict): say so,
		# show the guest, and ask once more.  A FAIL is never asked again.
		log "g1's agent on $here did not answer VERIFY: $out"
		guest_diag
		out=$(L verify "$here" g1 --timeout 120 2>&1) || true
	fi
	if [[ $out != "VERIFY PASS"* ]]; then
		log "verify on $here: $out"
		guest_diag
		fail "VERIFY on $here"
	fi
}

guest_diag() {
	local h
	log "g1's console on $here (last lines):"
	L console "$here" g1 --tail 40 2>&1 | sed 's/^/    /' || true
	for h in h1 h2; do
		log "ferryd on $h (last lines):"
		L ferryd "$h" log 2>&1 | tail -n 15 | sed 's/^/    /' || true
	done
}

check_clean() {
	local o
	o=$(other "$here")
	vm_gone "$o" g1
	for h in h1 h2; do
		L exec "$h" test ! -e /var/lib/libvirt/images/g1_resize || fail "g1_resize left on $h"
		[ -z "$(L exec "$h" ls /var/lib/ferry/xfer 2>/dev/null)" ] || fail "transfer journal left on $h"
	done
}

# wait_rest ID HOST: until the migration is finished or terminal.
wait_rest() {
	local i st
	for ((i = 0; i < 240; i++)); do
		st=$(L exec "$2" ferry -j show "$1" 2>/dev/null | jq -r .step 2>/dev/null || true)
		case $st in finished | confirmed | reverted | failed) echo "$st"; return 0 ;; esac
		sleep 0.5
	done
	fail "migration $1 did not come to rest (last step '$st')"
}

# crash ROLE POINT [ACTION]: migrate g1 off $here with ferryd of ROLE's
# host dying at POINT; ACTION "confirm" or "revert" crashes during that.
crash() {
	local role=$1 point=$2 action=${3:-} src dst victim id st
	src=$here dst=$(other "$here")
	[ "$role" = source ] && victim=$src || victim=$dst
	log "--- kill -9 of $role ($victim) at '$point'${action:+ during $action}"
	if [ -n "$action" ]; then
		L exec "$src" ferry migrate g1 --to "$dst" --wait >/dev/null
	fi
	L ferryd "$victim" restart --env "FERRY_TEST_CRASH=$role:$point"
	if [ -n "$action" ]; then
		L exec "$src" ferry "$action" g1 >/dev/null || true
	else
		L exec "$src" ferry migrate g1 --to "$dst" >/dev/null || true
	fi
	wait_for 120 sh -c "! '$LAB' --lab $lab ferryd $victim status" ||
		fail "ferryd on $victim did not die at $role:$point"
	L ferryd "$victim" start
	id=$(L exec "$src" ferry -j migrations g1 | jq -r 'sort_by(.created_ms) | .[-1].id')
	st=$(wait_rest "$id" "$src")
	log "$id came to rest: $st ($(L exec "$src" ferry -j show "$id" | jq -r .error))"
	if [ "$st" = finished ]; then
		L exec "$src" ferry confirm "$id" --wait >/dev/null
	fi
	check_rest
	check_clean
}

for p in prep precopy precopy-round poweroff final-copy final-copied keep-source finishing finished; do
	crash source "$p"
done
for p in prep finishing finish-grown finish-defined finished; do
	crash dest "$p"
done
crash source confirming confirm
crash source reverting revert
crash source revert-source revert
crash dest reverting revert
log "ok: every crash point came to rest with g1 verified on exactly one host"
