#!/bin/bash
# cluster-records: every VM has a record in etcd (/ferry/vms/NAME: owner,
# generation, power, flavor, disks, definition) that its owner keeps
# current, and each change of owner is generation + 1, written into the
# domain's metadata too.  The test shows, on a real etcd and libvirtd:
# - a new guest's record: owner h1, generation 1, its definition, metadata;
# - a live migration moves it to h2 (generation 2), a cold migration with
#   confirm back to h1 (generation 3); a ferryd restart changes nothing;
# - libvirt's events keep it current at once: a suspend, a resume, a VM
#   defined and undefined with virsh (whose record keeps its generation);
# - a copy defined on h2 from an older generation (a host that comes back
#   after its VM moved on) is stale: quarantined, the record untouched.
# timeout: 300
. "$(dirname "$0")/cluster_lib.sh"
lab_up "$lab" --hosts 2 --etcd
L guest h1 vm1 --disk-size 64M --write-rate 1M

rec() { L etcd ctl get "/ferry/vms/$1" --print-value-only; }
field() { rec "$1" | jq -r "$2"; }
meta_gen() { L virsh "$1" metadata "$2" https://ferry.dev/xmlns/cluster/1 --config 2>/dev/null | sed -n "s/.*generation=.\([0-9]*\).*/\1/p"; }
# wait_field MAX_S VM JQ WANT
wait_field() {
	local i got
	for ((i = 0; i < $1 * 10; i++)); do
		got=$(field "$2" "$3" 2>/dev/null || true)
		[ "$got" = "$4" ] && return 0
		sleep 0.1
	done
	fail "record $2: $3 is '$got' after $1 s, want '$4' (record: $(rec "$2" | jq -c 'del(.xml)'))"
}

log "--- a new guest's record"
wait_field 10 vm1 '.owner + "/" + (.generation | tostring) + "/" + .power' "h1/1/running"
r=$(rec vm1)
assert_eq "$(echo "$r" | jq -r '.vcpus, .memory_mib' | xargs)" "1 128" "vm1's flavor in the record"
assert_eq "$(echo "$r" | jq -r '[.disks[] | .target + ":" + (.shared | tostring)] | join(",")')" "vda:false" "vm1's disks"
echo "$r" | jq -e '.xml | contains("<name>vm1</name>")' >/dev/null || fail "vm1's record has no definition"
assert_eq "$(meta_gen h1 vm1)" 1 "generation in vm1's metadata on h1"
L exec h1 ferry vms | sed 's/^/    /'

log "--- live migration to h2: generation 2"
L exec h1 ferry -j live-migrate vm1 --to h2 --wait >/dev/null
wait_field 10 vm1 '.owner + "/" + (.generation | tostring)' "h2/2"
assert_eq "$(meta_gen h2 vm1)" 2 "generation in vm1's metadata on h2"
L ferryd h2 log | grep -c "records: vm vm1 moved here from h1: owner h2, generation 2" >/dev/null ||
	fail "h2's log does not say it took vm1"

log "--- cold migration back to h1, confirmed: generation 3"
L exec h2 ferry -j migrate vm1 --to h1 --wait --confirm >/dev/null
wait_field 10 vm1 '.owner + "/" + (.generation | tostring) + "/" + .power' "h1/3/running"
assert_eq "$(meta_gen h1 vm1)" 3 "generation in vm1's metadata on h1"
L verify h1 vm1 | sed 's/^/    /'

log "--- a ferryd restart changes nothing"
rev=$(L etcd ctl get /ferry/vms/vm1 -w json | grep -o '"mod_revision":[0-9]*' | cut -d: -f2)
L ferryd h1 restart
sleep 2
assert_eq "$(field vm1 '.owner + "/" + (.generation | tostring)')" "h1/3" "vm1 after h1's ferryd restarted"
assert_eq "$(L etcd ctl get /ferry/vms/vm1 -w json | grep -o '"mod_revision":[0-9]*' | cut -d: -f2)" "$rev" \
	"vm1's record was not rewritten by the restart"

log "--- libvirt's events: suspend, resume (the full pass is every 30 s)"
L virsh h1 suspend vm1 >/dev/null
wait_field 3 vm1 .power paused
L virsh h1 resume vm1 >/dev/null
wait_field 3 vm1 .power running

log "--- a VM defined with virsh on h2, then undefined"
L virsh h1 dumpxml --inactive vm1 | sed -e 's/<name>vm1</<name>vm2</' -e '/<uuid>/d' \
	-e 's/host="h1" generation="3"/host="h2" generation="1"/' >"$BUILD/vm2.xml"
L exec h2 virsh define /dev/stdin <"$BUILD/vm2.xml" >/dev/null
wait_field 3 vm2 '.owner + "/" + (.generation | tostring) + "/" + .power' "h2/1/shutoff"
L exec h2 virsh undefine vm2 >/dev/null
wait_field 3 vm2 '.owner + "/" + (.generation | tostring) + "/" + .power' "h2/1/undefined"

log "--- a stale copy on h2 (generation 2, the record is at 3)"
L virsh h1 dumpxml --inactive vm1 | sed 's/host="h1" generation="3"/host="h2" generation="2"/' >"$BUILD/vm1-stale.xml"
rev=$(L etcd ctl get /ferry/vms/vm1 -w json | grep -o '"mod_revision":[0-9]*' | cut -d: -f2)
L exec h2 virsh define /dev/stdin <"$BUILD/vm1-stale.xml" >/dev/null
q=$(quarantined h2 h2 vm1)
assert_eq "$(echo "$q" | jq -r '"\(.record_owner)/\(.record_generation)/\(.generation)"')" \
	"h1/3/2" "h2's stale copy of vm1"
L ferryd h2 log | grep -c "vm vm1 here is stale: the cluster's record has it on h1, generation 3 (this copy: generation 2)" >/dev/null ||
	fail "h2's log does not say vm1 is stale there"
expect_fail L virsh h2 domstate vm1
sleep 1
assert_eq "$(field vm1 '.owner + "/" + (.generation | tostring)')" "h1/3" "vm1's record after h2's stale copy"
assert_eq "$(L etcd ctl get /ferry/vms/vm1 -w json | grep -o '"mod_revision":[0-9]*' | cut -d: -f2)" "$rev" \
	"vm1's record untouched by h2"
L exec h2 ferry vms | sed 's/^/    /'
L exec h2 ferry quarantine | sed 's/^/    /'
log "ok: records follow their VMs, generations only grow, a stale copy takes nothing"
