#!/bin/bash
# evacuate-local: h1 crashes while its guest's disk is local to it (a qcow2
# overlay on a base image, as Nova's instances are).  Nothing of the disk
# is reachable, so `ferry evacuate` on h2 rebuilds the VM as Nova does: a
# new overlay on the same base image (which h2 has), the definition from the
# record, generation 2; the VM boots on a fresh disk, and the output and the
# record say its data is lost.  --on-shared-storage is refused (the record
# says the disk is local); h1's copy is quarantined when it returns (its
# disk moved aside, not deleted) and restored by the operator as a new VM.
# timeout: 300
. "$(dirname "$0")/cluster_lib.sh"
export FERRY_LAB_LEASE_TTL=3 FERRY_LAB_EVACUATE_GRACE=3
lab_up "$lab" --hosts 2 --etcd
L guest h1 vm1 --disk-size 64M --write-rate 1M --backing
for ((i = 0; i < 50; i++)); do
	r=$(L etcd ctl get /ferry/vms/vm1 --print-value-only)
	[ -n "$r" ] && break
	sleep 0.1
done
base=$(echo "$r" | jq -r '.disks[0].backing')
assert_eq "$(echo "$r" | jq -r '"\(.owner)/\(.disks[0].format)/\(.disks[0].shared)"')" "h1/qcow2/false" "vm1's record"
assert_contains "$base" "/var/lib/libvirt/images/_base/" "vm1's base image in its record"
# h2 has the image too (Nova's image cache: the same base on every host)
L exec h2 sh -c "mkdir -p '$(dirname "$base")' && qemu-img create -q -f raw '$base' 64M"

L crash h1
for ((i = 0; i < 100; i++)); do
	key_gone h2 h1 && break
	sleep 0.1
done
expect_fail L exec h2 ferry evacuate vm1 --on-shared-storage
assert_contains "$ERR" "its record says its disks are not on shared storage" "--on-shared-storage on a local disk"
out=$(L exec h2 ferry evacuate vm1 --wait 2>&1) || fail "evacuate: $out"
echo "$out" | sed 's/^/    /'
assert_contains "$out" "THE VM'S DATA IS LOST" "what ferry says of the disks"
r=$(L etcd ctl get /ferry/vms/vm1 --print-value-only)
assert_eq "$(echo "$r" | jq -r '"\(.owner)/\(.generation)/\(.data_lost)"')" "h2/2/true" "vm1's record after"
assert_eq "$(L exec h2 qemu-img info -U --output=json /var/lib/libvirt/images/vm1/disk | jq -r '."backing-filename"')" \
	"$base" "the new disk's base image"
v=$(L verify h2 vm1 2>&1) || true
log "h2: $v"
[[ $v == "VERIFY PASS"*"boot=fresh"* ]] || fail "vm1 on h2 on its new disk: $v"

L revive h1
q=$(quarantined h1 h1 vm1)
assert_eq "$(echo "$q" | jq -r '"\(.record_owner)/\(.record_generation)/\(.disks[0].how)"')" "h2/2/moved" "h1's copy of vm1"
kept=$(echo "$q" | jq -r '.disks[0].kept')
L exec h1 test -s "$kept" || fail "the quarantined disk $kept is not there"
L ferryd h1 log | grep -c "nothing deleted" >/dev/null || fail "h1's log says nothing of the quarantine"
log "--- the operator restores h1's copy as a new VM"
L exec h1 ferry quarantine restore "$(echo "$q" | jq -r .id)" --as vm1old
assert_eq "$(L virsh h1 domstate vm1old | head -1)" "shut off" "the restored copy"
L virsh h1 domblklist vm1old | grep -c "/var/lib/libvirt/images/vm1old/vda" >/dev/null || fail "the restored copy's disk: $(L virsh h1 domblklist vm1old)"
assert_ne "$(L virsh h1 domuuid vm1old)" "$(L virsh h2 domuuid vm1)" "the restored copy's UUID"
assert_eq "$(L exec h1 ferry -j quarantine | jq 'length')" 0 "quarantine after the restore"
for ((i = 0; i < 50; i++)); do
	[ "$(L etcd ctl get /ferry/vms/vm1old --print-value-only | jq -r '"\(.owner)/\(.generation)"')" = h1/1 ] && break
	sleep 0.1
done
assert_eq "$(L etcd ctl get /ferry/vms/vm1old --print-value-only | jq -r '"\(.owner)/\(.generation)"')" h1/1 "the restored copy's record"
log "ok: rebuilt on its base image with its data lost, and said so; the old copy kept and restored"
