#!/bin/bash
# timeout: 400
# live-refusals: every refusal Nova's live-migrate makes, each with its
# message, before anything is copied; the VM keeps running untouched on h1
# and nothing appears on h2.  The hypervisor-type, version and CPU checks
# run on the real destination ferryd and libvirtd, fed the source's side of
# the request by an authenticated test peer (peer_probe.py), since both lab
# hosts run the same QEMU; shared storage refusals run on a --shared lab.
. "$(dirname "$0")/live_lib.sh"
need_cmd python3
lab_up "$lab" --hosts 2
L guest h1 vm1 --disk-size 256M --write-rate 512K
L guest h1 off1 --disk-size 64M --no-start

refuse() { # refuse WANT CMD...: fails on h1, and says WANT
	local want=$1
	shift
	expect_fail L exec h1 "$@"
	assert_contains "$ERR" "$want" "$*"
	log "refused: $ERR"
}
refuse "UnableToMigrateToSelf" ferry live-migrate vm1 --to h1
refuse "unknown host 'h9'" ferry live-migrate vm1 --to h9
refuse "InstanceNotFound" ferry live-migrate nosuch --to h2
refuse "InstanceInvalidState" ferry live-migrate off1 --to h2
refuse "InvalidLocalStorage" ferry live-migrate vm1 --to h2 --block-migrate no
refuse "auto, yes or no" ferry live-migrate vm1 --to h2 --block-migrate maybe
refuse "1-60000 ms" ferry live-migrate vm1 --to h2 --max-downtime 0
# Without over-commit a disk needs its virtual size (4 TiB) on the destination.
L guest h1 big1 --disk-size 4T --span 16M
refuse "insufficient disk space" ferry live-migrate big1 --to h2
L virsh h1 destroy big1 >/dev/null
FERRY_LAB_FERRYD_CONF="reserved_host_memory_mib = 100000000" L ferryd h2 restart
refuse "insufficient memory" ferry live-migrate vm1 --to h2
L ferryd h2 stop
refuse "ComputeServiceUnavailable" ferry live-migrate vm1 --to h2
L ferryd h2 start

log "--- the destination's own checks, fed by a test peer as h1"
probe=$FERRY_TOP/tests/helpers/peer_probe.py
a2=$(L addr h2)
rec=$(jq -nc '{
	format: 2, flow: "live", flow_version: 1, id: "m-0000000000aa", vm: "probe1",
	type: "live-migration", role: "source", flow_step: "precheck", phase: "run",
	coordinating: true, coordinator: "h1", source: "h1", dest: "h2", was_running: true,
	live: {block_migration: false, max_downtime_ms: 500},
	old_flavor: {vcpus: 1, memory_mib: 64, root_disk_bytes: 1048576},
	new_flavor: {vcpus: 1, memory_mib: 64, root_disk_bytes: 1048576}, disks: []}')
check() { # check JQ_PATCH: send live.check from "h1", print the reply
	L exec h1 python3 "$probe" "$a2" 4710 call /etc/ferry/cluster.key h1 \
		"$(jq -nc --argjson r "$rec" '{op: "live.check", id: $r.id, migration: $r,
			probe: ".ferry-shared-m-0000000000aa", hv_type: "QEMU",
			hv_version: 7002000, libvirt_version: 9000000} | '"$1")"
}
refused() { # WHAT REPLY NEEDLE
	log "$1: $(echo "$2" | jq -c '{ok, error}')"
	assert_eq "$(echo "$2" | jq -r .ok)" false "$1 refused"
	assert_contains "$(echo "$2" | jq -r .error)" "$3" "$1: the reason"
}
ok=$(check '.')
assert_eq "$(echo "$ok" | jq -r .ok)" true "the same hypervisor passes: $ok"
refused "another hypervisor" "$(check '.hv_type = "Xen"')" "InvalidHypervisorType"
refused "a newer QEMU on the source" "$(check '.hv_version = 99000000')" "DestinationHypervisorTooOld"
refused "a newer libvirt on the source" "$(check '.libvirt_version = 99000000')" "DestinationHypervisorTooOld"
refused "a CPU TCG cannot give" "$(check '.cpu_xml = "<cpu mode=\"custom\" match=\"exact\"><model fallback=\"forbid\">Icelake-Server</model><feature policy=\"require\" name=\"avx512f\"/></cpu>" | .virttype = "qemu"')" "MigrationPreCheckError"
ok=$(check '.cpu_xml = "<cpu mode=\"custom\" match=\"exact\"><model fallback=\"forbid\">qemu64</model></cpu>" | .virttype = "qemu"')
assert_eq "$(echo "$ok" | jq -r .ok)" true "qemu64 under TCG passes: $ok"
refused "a probe path" "$(check '.probe = "../../etc/passwd"')" "bad probe name"

log "--- nothing moved"
assert_eq "$(L virsh h1 domstate vm1 | head -1)" running "vm1 untouched"
vm_gone h2 vm1
L exec h1 ferry -j migrations vm1 | jq -e 'all(.[]; .status == "failed")' >/dev/null ||
	fail "refused live migrations are on record as failed"
live_verify h1 vm1

log "--- shared storage: block migration refused, and a disk outside the shared dir"
lab2=${lab}s
L2() { "$LAB" --lab "$lab2" "$@"; }
lab_up "$lab2" --hosts 2 --shared
L2 guest h1 vm2 --disk-size 64M --write-rate 256K
expect_fail L2 exec h1 ferry live-migrate vm2 --to h2 --block-migrate yes
assert_contains "$ERR" "InvalidSharedStorage" "block migration on shared storage"
log "refused: $ERR"
assert_eq "$(L2 virsh h1 domstate vm2 | head -1)" running "vm2 untouched"
log "ok"
