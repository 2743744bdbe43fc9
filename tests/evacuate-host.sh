#!/bin/bash
# evacuate-host: `ferry host-evacuate h1` moves every VM a dead h1 owns,
# each to the live host with the most free memory left as they are placed:
# two guests of h1 go one to h2 and one to h3 (the lab's hosts share one
# machine's free memory, so the placing's own accounting decides).  Refused
# while h1 lives, and, with every live host's memory reserved
# (reserved_host_memory_mib), refused for each VM (NoValidHost), as is
# evacuate.  Shared storage, lease TTL 3 s, grace 3 s.
# timeout: 300
# serial: places VMs by the machine's free memory
. "$(dirname "$0")/cluster_lib.sh"
export FERRY_LAB_LEASE_TTL=3 FERRY_LAB_EVACUATE_GRACE=3
lab_up "$lab" --hosts 3 --etcd --shared
L guest h1 vm1 --disk-size 64M --write-rate 1M
L guest h1 vm2 --disk-size 64M --write-rate 1M
for ((i = 0; i < 50; i++)); do
	[ "$(L exec h2 ferry -j vms | jq '[.vms[] | select(.owner == "h1")] | length')" = 2 ] && break
	sleep 0.1
done
expect_fail L exec h2 ferry host-evacuate h1
assert_contains "$ERR" "host h1 is alive" "host-evacuate of a live host"
L crash h1
until key_gone h2 h1; do sleep 0.1; done

log "--- no live host has room: refused (NoValidHost)"
for h in h2 h3; do FERRY_LAB_FERRYD_CONF='reserved_host_memory_mib = 100000000' L ferryd "$h" restart; done
out=$(L exec h2 ferry -j host-evacuate h1) || true
assert_eq "$(echo "$out" | jq -r '[.[] | .error // "placed"] | unique | join(",")')" \
	"no live host has room (NoValidHost)" "host-evacuate when every live host's memory is reserved"
expect_fail L exec h2 ferry evacuate vm1
assert_contains "$ERR" "no room (NoValidHost)" "evacuate to a host without room"
log "evacuate: $ERR"
for h in h2 h3; do L ferryd "$h" restart; done

out=$(L exec h2 ferry -j host-evacuate h1)
echo "$out" | jq -c '.[]' | sed 's/^/    /'
assert_eq "$(echo "$out" | jq -r '[.[].to] | sort | join(",")')" "h2,h3" "where host-evacuate placed h1's VMs"
for id in $(echo "$out" | jq -r '.[].id'); do
	to=$(echo "$out" | jq -r --arg id "$id" '.[] | select(.id == $id) | .to')
	vm=$(echo "$out" | jq -r --arg id "$id" '.[] | select(.id == $id) | .vm')
	for ((i = 0; i < 120; i++)); do
		st=$(L exec h2 ferry -j show "$id" | jq -r .step)
		case $st in done | failed | cancelled) break ;; esac
		sleep 0.25
	done
	assert_eq "$st" done "evacuation $id of $vm to $to"
	until [ "$(L virsh "$to" domstate "$vm" 2>/dev/null | head -1)" = running ]; do sleep 0.1; done
	v=$(L verify "$to" "$vm" 2>&1) || true
	[[ $v == "VERIFY UNCLEAN"* ]] || fail "$vm on $to: $v"
	log "$to: $vm: $v"
done
assert_eq "$(L exec h3 ferry -j vms | jq -r '[.vms[] | .owner + "/" + (.generation | tostring)] | sort | join(",")')" \
	"h2/2,h3/2" "the records after"
log "ok: a dead host's VMs spread over the live hosts"
