#!/bin/bash
# evacuate-shared: h1 crashes (every process killed at once) while its
# guest runs on storage shared with h2 (ferry-lab up --shared; a plain bind
# mount, so QEMU's image locks are one kernel's: a stand-in for shared
# storage that cannot tell a split brain apart, which the poller below
# checks instead).  With real etcd, libvirtd and QEMU, lease TTL 3 s, grace
# 3 s:
# - while h1's alive key lives, evacuate is refused ("still in use"), as it
#   is to the VM's own host and for a VM without a record;
# - once the key is gone, `ferry evacuate vm1` on h2 rebuilds vm1 from its
#   record on the same disk: owner h2, generation 2, running, and the
#   agent's verdict for an unclean boot passes with every write it had
#   acknowledged before the crash (seq at least as high);
# - a poller sees at most one QEMU for vm1 every 50 ms throughout;
# - h1 comes back: its copy is stale (generation 1) and quarantined: its
#   definition kept, the shared disk left to its owner, the domain
#   undefined; a restore of it is refused, a purge deletes it.
# Prints detection time (crash -> key gone) and recovery time (key gone ->
# the guest running on h2).
# timeout: 300
. "$(dirname "$0")/cluster_lib.sh"
export FERRY_LAB_LEASE_TTL=3 FERRY_LAB_EVACUATE_GRACE=3
lab_up "$lab" --hosts 2 --etcd --shared
L guest h1 vm1 --disk-size 64M --write-rate 1M
for ((i = 0; i < 50; i++)); do
	[ "$(L exec h2 ferry -j vms | jq -r '.vms[] | select(.vm == "vm1") | .disks[0].shared')" = true ] && break
	sleep 0.1
done
assert_eq "$(L exec h2 ferry -j vms | jq -r '.vms[] | select(.vm == "vm1") | "\(.owner)/\(.generation)/\(.disks[0].shared)"')" \
	"h1/1/true" "vm1's record"

log "--- refusals while h1 lives"
expect_fail L exec h2 ferry evacuate vm1
assert_contains "$ERR" "host h1 is alive" "evacuating from a live host"
assert_contains "$ERR" "(Compute service of h1 is still in use)" "Nova's word for it"
expect_fail L exec h2 ferry evacuate vm1 --to h1
assert_contains "$ERR" "the target host can't be the same one" "evacuating to the VM's own host"
expect_fail L exec h2 ferry evacuate nosuchvm
assert_contains "$ERR" "(InstanceNotFound)" "a VM without a record"

# Never two QEMUs for vm1: a poller, every 50 ms, for the whole test.
poll=$BUILD/evacuate-shared.poll
: >"$poll"
(
	while [ -e "$poll" ]; do
		a=$(qemu_pid h1 vm1) b=$(qemu_pid h2 vm1)
		[ -n "$a" ] && [ -n "$b" ] && echo "$(date +%T.%N) two QEMUs: h1 $a, h2 $b" >>"$poll.bad"
		sleep 0.05
	done
) &
poller=$!
cleanup_push "rm -f '$poll'; kill $poller 2>/dev/null"

seq0=$(L agent h1 vm1 STATUS | sed -n 's/.*seq=\([0-9]*\).*/\1/p')
log "--- h1 crashes (vm1 acknowledged seq $seq0)"
t0=$(ms_now)
L crash h1
until key_gone h2 h1; do
	[ $(($(ms_now) - t0)) -lt 10000 ] || fail "h1's key still there 10 s after the crash"
	sleep 0.05
done
t1=$(ms_now)
out=$(L exec h2 ferry -j evacuate vm1 --wait) || fail "evacuate: $out"
until [ "$(L virsh h2 domstate vm1 2>/dev/null | head -1)" = running ]; do sleep 0.05; done
t2=$(ms_now)
log "detection (crash -> h1's key gone) $((t1 - t0)) ms; recovery (key gone -> vm1 running on h2) $((t2 - t1)) ms"
assert_eq "$(echo "$out" | jq -r '.type + "/" + .step + "/" + .source + "/" + .dest')" "evacuation/done/h1/h2" "the evacuation"
r=$(L etcd ctl get /ferry/vms/vm1 --print-value-only)
assert_eq "$(echo "$r" | jq -r '"\(.owner)/\(.generation)/\(.evacuated_from)/\(.data_lost)"')" "h2/2/h1/false" "vm1's record after"
assert_eq "$(L virsh h2 metadata vm1 https://ferry.dev/xmlns/cluster/1 --config | grep -o 'generation="[0-9]*"')" \
	'generation="2"' "generation in vm1's definition on h2"
v=$(L verify h2 vm1 2>&1) || true
log "h2: $v"
[[ $v == "VERIFY UNCLEAN"* ]] || fail "vm1 on h2 after the evacuation: $v"
seq1=$(echo "$v" | sed -n 's/.* seq=\([0-9]*\).*/\1/p')
assert_ge "$seq1" "$seq0" "the newest record on disk, against what the agent had acknowledged before the crash"

log "--- h1 returns: its copy is stale, quarantined, the shared disk untouched"
L revive h1
q=$(quarantined h2 h1 vm1)
assert_eq "$(echo "$q" | jq -r '"\(.generation)/\(.record_owner)/\(.record_generation)"')" "1/h2/2" "h1's quarantined copy"
L exec h1 ferry -j quarantine | jq -e --arg id "$(echo "$q" | jq -r .id)" \
	'.[] | select(.id == $id) | .disks[0].how == "shared: left in place"' >/dev/null ||
	fail "the shared disk was not left in place: $(L exec h1 ferry quarantine)"
L exec h1 test -s "$(echo "$q" | jq -r .dir)/domain.xml" || fail "no definition kept in quarantine"
expect_fail L virsh h1 domstate vm1
L ferryd h1 log | grep -c "quarantine: vm vm1 (generation 1) is stale here" >/dev/null || fail "h1's log says nothing of the quarantine"
L exec h1 ferry quarantine | sed 's/^/    /'
id=$(echo "$q" | jq -r .id)
expect_fail L exec h1 ferry quarantine restore "$id" --as vm1old
assert_contains "$ERR" "was not moved aside" "restoring a copy of a shared disk"
L exec h2 ferry quarantine purge "$id" >/dev/null
assert_eq "$(L exec h1 ferry -j quarantine | jq 'length')" 0 "quarantine after the purge"
L exec h1 test ! -e "$(echo "$q" | jq -r .dir)" || fail "the purged copy's files are still there"
v=$(L verify h2 vm1 2>&1) || true
[[ $v == "VERIFY UNCLEAN"* || $v == "VERIFY PASS"* ]] || fail "vm1 on h2 after h1 returned: $v"
log "h2: $v"
rm -f "$poll"
wait "$poller" 2>/dev/null || true
[ ! -s "$poll.bad" ] || fail "two QEMUs ran for vm1: $(head -3 "$poll.bad")"
log "ok: evacuated on shared storage with one QEMU at a time, the returning copy quarantined"
