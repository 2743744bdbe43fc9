#!/bin/bash
# evacuate-crash: kill -9 of the evacuating host's ferryd at each journaled
# point of an evacuation (FERRY_TEST_CRASH, right after journaling it, and
# at "claimed": the etcd transaction went through, the step not journaled
# yet), then a restart.  The guest's host crashes before each round (shared
# storage, lease TTL 3 s, grace 3 s), and the two hosts take turns.  After
# each: the evacuation is done (a round walked back before its claim is
# asked again, once), the record has one owner, the evacuating host, at
# exactly one generation more (a claim repeated after a restart does not
# count twice), the guest runs there and nowhere else, and its unclean-boot
# verdict passes.  The crashed host comes back with its copy quarantined.
# timeout: 600
. "$(dirname "$0")/cluster_lib.sh"
export FERRY_LAB_LEASE_TTL=3 FERRY_LAB_EVACUATE_GRACE=3
lab_up "$lab" --hosts 2 --etcd --shared
L guest h1 vm1 --disk-size 64M --write-rate 1M
other() { [ "$1" = h1 ] && echo h2 || echo h1; }
record() { L etcd ctl get /ferry/vms/vm1 --print-value-only; }
for ((i = 0; i < 50; i++)); do [ -n "$(record)" ] && break; sleep 0.1; done

# evac_wait ID HOST: the evacuation's step once it rests.
evac_wait() {
	local i st=''
	for ((i = 0; i < 240; i++)); do
		st=$(L exec "$2" ferry -j show "$1" 2>/dev/null | jq -r .step 2>/dev/null || true)
		case $st in done | failed | cancelled) echo "$st"; return 0 ;; esac
		sleep 0.25
	done
	fail "evacuation $1 did not come to rest (last step '$st')"
}

for p in grace claim claimed rebuild start done; do
	owner=$(record | jq -r .owner) gen=$(record | jq -r .generation)
	to=$(other "$owner")
	log "--- $owner crashes; kill -9 of $to's ferryd at '$p' of the evacuation"
	L ferryd "$to" restart --env "FERRY_TEST_CRASH=dest:$p"
	L crash "$owner"
	until key_gone "$to" "$owner"; do sleep 0.1; done
	id=$(L exec "$to" ferry -j evacuate vm1 | jq -r .id)
	wait_for 60 sh -c "! '$LAB' --lab $lab ferryd $to status" || fail "$to's ferryd did not die at dest:$p"
	L ferryd "$to" start
	st=$(evac_wait "$id" "$to")
	log "$id came to rest: $st ($(L exec "$to" ferry -j show "$id" | jq -r .error))"
	if [ "$st" != done ]; then
		# Walked back before its claim: nothing was taken; ask again.
		assert_eq "$(record | jq -r '"\(.owner)/\(.generation)"')" "$owner/$gen" "the record after $id walked back"
		id=$(L exec "$to" ferry -j evacuate vm1 | jq -r .id)
		st=$(evac_wait "$id" "$to")
	fi
	assert_eq "$st" done "the evacuation after a crash at $p"
	assert_eq "$(record | jq -r '"\(.owner)/\(.generation)"')" "$to/$((gen + 1))" "vm1's record after a crash at $p"
	until [ "$(L virsh "$to" domstate vm1 2>/dev/null | head -1)" = running ]; do sleep 0.1; done
	assert_eq "$(qemu_pid "$owner" vm1)" "" "a QEMU for vm1 on the crashed $owner"
	v=$(L verify "$to" vm1 2>&1) || true
	[[ $v == "VERIFY UNCLEAN"* || $v == "VERIFY PASS"* ]] || fail "vm1 on $to after a crash at $p: $v"
	log "$to: $v"
	L revive "$owner"
	q=$(quarantined "$to" "$owner" vm1)
	assert_eq "$(echo "$q" | jq -r .record_owner)" "$to" "$owner's quarantined copy"
	L exec "$to" ferry quarantine purge "$(echo "$q" | jq -r .id)" >/dev/null
done
log "ok: an evacuation killed at any point ends with one owner, one generation more and one running guest"
