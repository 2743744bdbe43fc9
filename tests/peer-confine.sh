#!/bin/bash
# peer-confine: a peer holding the cluster key cannot make ferryd create or
# touch files outside its own places (issue 9, item 10).  An authenticated
# client sends cold.prep records naming paths outside h1's instances dir (a
# disk, its instance dir, a backing file), a same-host resize from another
# host, and claims h1's own name: each is refused with the reason, and no
# file appears.
# timeout: 180
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq python3
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 2
probe=$FERRY_TOP/tests/helpers/peer_probe.py
a1=$(L addr h1)
key=$(L exec h2 sh -c 'echo /etc/ferry/cluster.key')

# prep NAME RECORD_PATCH: send cold.prep with a minimal record patched by jq.
prep() {
	local rec
	rec=$(jq -nc --arg id "m-$(printf '%012x' $RANDOM$RANDOM)" '{
		format: 2, flow: "cold", flow_version: 1, id: $id, vm: "evil", type: "migration",
		role: "source", flow_step: "prep", phase: "run", coordinating: true,
		coordinator: "h2", source: "h2", dest: "h1", was_running: false,
		inst_dir: "", src_instances_dir: "/var/lib/libvirt/images",
		old_flavor: {vcpus: 1, memory_mib: 16, root_disk_bytes: 1048576},
		new_flavor: {vcpus: 1, memory_mib: 16, root_disk_bytes: 1048576},
		disks: [{target: "vda", kind: "data", backend: "file", format: "raw",
			 src_path: "/var/lib/libvirt/images/evil/disk", size_bytes: 1048576,
			 alloc_bytes: 0, virtual_bytes: 1048576, new_virtual_bytes: 1048576}]
	} | '"$2")
	L exec h2 python3 "$probe" "$a1" 4710 call "$key" "${3:-h2}" \
		"$(jq -nc --argjson r "$rec" '{op: "cold.prep", id: $r.id, migration: $r,
			src_instances_dir: $r.src_instances_dir}')"
}

refused() { # WHAT REPLY NEEDLE
	log "$1: $(echo "$2" | jq -c '{ok, error}')"
	assert_eq "$(echo "$2" | jq -r .ok)" false "$1 refused"
	assert_contains "$(echo "$2" | jq -r .error)" "$3" "$1: the reason"
}

refused "a disk outside the instances dir" \
	"$(prep x '.disks[0].src_path = "/etc/ferry-pwn/disk" | .src_instances_dir = "/elsewhere"')" \
	"outside this host's instances dir"
refused "a disk path climbing out" \
	"$(prep x '.disks[0].src_path = "/var/lib/libvirt/images/../../../etc/ferry-pwn2"')" \
	"outside this host's instances dir"
refused "an instance dir named .." \
	"$(prep x '.inst_dir = "/var/lib/libvirt/images/.."')" "outside this host's instances dir"
refused "a backing file outside" \
	"$(prep x '.disks[0].format = "qcow2" | .disks[0].backing = "/etc/ferry-pwn3" | .disks[0].backing_sha256 = "00"')" \
	"outside this host's instances dir"
refused "a same-host resize sent by another host" \
	"$(prep x '.same_host = true | .dest = "h1" | .disks[0].src_path = "/etc/ferry-pwn4"')" \
	"can only come from h1"
out=$(prep x '.' h1)
log "a peer claiming h1's name: $out"
assert_eq "$(echo "$out" | jq -r .ok)" false "h1's own name refused to a peer"
for f in /etc/ferry-pwn /etc/ferry-pwn2 /etc/ferry-pwn3 /etc/ferry-pwn4 /etc/ferry-pwn4.ferry-new; do
	L exec h1 test ! -e "$f" || fail "$f was created on h1"
done
log "and a record inside the instances dir is still accepted"
ok=$(prep x '.')
log "$(echo "$ok" | jq -c '{ok, dst_paths}')"
assert_eq "$(echo "$ok" | jq -r .ok)" true "a well-formed prep"
assert_eq "$(echo "$ok" | jq -r '.dst_paths[0]')" /var/lib/libvirt/images/evil/disk "its path"
log "ok: every path a peer names stays in h1's own places"
