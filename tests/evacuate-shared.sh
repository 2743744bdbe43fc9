#!/bin/bash
# evacuate-shared: a guest on storage shared by h1 and h2 (ferry-lab up
# --sanlock: each host's own FUSE view of one dir, so QEMU's image locks do
# not cross hosts, and libvirt's sanlock lock manager with disk leases on
# it; sanlock runs without a watchdog, -w 0: this machine has none).  With
# real etcd, libvirtd, QEMU and sanlock, lease TTL 3 s, grace 3 s, sanlock
# io_timeout 1 s:
# - while h1's alive key lives, evacuate is refused ("still in use"), as it
#   is to the VM's own host and for a VM without a record;
# - h1 crashes (every process killed at once, its sanlock too): once its key
#   is gone, `ferry evacuate vm1` on h2 rebuilds vm1 from its record on the
#   same disk and starts it once sanlock lets it (h1's host lease dead:
#   8 x io_timeout + 60 s after its last renewal): owner h2, generation 2,
#   running, and the agent's verdict for an unclean boot passes with every
#   write it had acknowledged before the crash (seq at least as high);
# - h1 comes back: its copy is stale (generation 1) and quarantined: its
#   definition kept, the shared disk left to its owner, the domain
#   undefined; a restore of it is refused, a purge deletes it;
# - then h2 is partitioned with its ferryd frozen (SIGSTOP) and vm1's QEMU
#   running on: ferry's own fence cannot act, h2's key goes, and h1's
#   evacuation claims vm1 (generation 3) but sanlock refuses its start
#   while h2's QEMU holds the disk's lease: h1 waits, starting nothing;
#   h2's ferryd thawed fences itself (its lease is long gone), its QEMU goes
#   and the lease with it, h1 starts vm1 (verdict as above), and h2 healed
#   quarantines its copy;
# - last, h1 is partitioned with its ferryd running: it fences itself (vm1's
#   QEMU gone before the key's going plus the grace), h2 evacuates at once
#   (the fence released the lease), and h1 healed quarantines its copy;
# - a poller sees at most one QEMU running vm1 every 50 ms throughout.  (A
#   start whose lease is held elsewhere does make a QEMU process: libvirt
#   starts QEMU with its vCPUs stopped and takes the leases before it
#   starts them, killing it when it cannot; such a QEMU, domain state
#   paused, is counted apart and reported.)
# Prints detection time (crash -> key gone), recovery time (key gone -> the
# guest running on h2) and how long each start waited for the lease.
# timeout: 480
# serial: bounds fencing to seconds, and sanlock renews every 1 s
. "$(dirname "$0")/cluster_lib.sh"
export FERRY_LAB_LEASE_TTL=3 FERRY_LAB_EVACUATE_GRACE=3
lab_up "$lab" --hosts 2 --etcd --sanlock
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

# Never two QEMUs running vm1: a poller, every 50 ms, for the whole test.
poll=$BUILD/evacuate-shared.poll
: >"$poll"
rm -f "$poll.bad" "$poll.paused"
(
	while [ -e "$poll" ]; do
		a=$(qemu_pid h1 vm1) b=$(qemu_pid h2 vm1)
		if [ -n "$a" ] && [ -n "$b" ]; then
			sa=$(L virsh h1 domstate vm1 2>/dev/null | sed -n 1p || true)
			sb=$(L virsh h2 domstate vm1 2>/dev/null | sed -n 1p || true)
			if [ "$sa" = running ] && [ "$sb" = running ]; then
				echo "$(date +%T.%N) two QEMUs running: h1 $a, h2 $b" >>"$poll.bad"
			else
				echo "$(date +%T.%N) h1 $a $sa, h2 $b $sb" >>"$poll.paused"
			fi
		fi
		sleep 0.05
	done
) &
poller=$!
cleanup_push "rm -f '$poll' '$poll.paused'; kill $poller 2>/dev/null"

# verify_unclean HOST WHEN: vm1 on HOST verifies UNCLEAN (its last stop was
# a crash or a fence), its newest record no older than $seq0, what the
# agent had acknowledged on the host it was lost from.
verify_unclean() {
	local v
	v=$(L verify "$1" vm1 2>&1) || true
	log "$1: $v"
	[[ $v == "VERIFY UNCLEAN"* ]] || fail "vm1 on $1 after $2: $v"
	assert_ge "$(echo "$v" | sed -n 's/.* seq=\([0-9]*\).*/\1/p')" "$seq0" \
		"the newest record on disk, against what vm1 had acknowledged before $2"
}

# quarantine_is VIEWER HOST WANT: HOST's copy of vm1 is in quarantine (sets
# q to its entry), WANT its generation/record owner/record generation.
quarantine_is() {
	q=$(quarantined "$1" "$2" vm1)
	assert_eq "$(echo "$q" | jq -r '"\(.generation)/\(.record_owner)/\(.record_generation)"')" "$3" "$2's quarantined copy"
}

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
log "detection (crash -> h1's key gone) $((t1 - t0)) ms; recovery (key gone -> vm1 running on h2) $((t2 - t1)) ms, of which the start took $(echo "$out" | jq -r .evacuate.start_ms) ms (sanlock: h1's host lease expiring)"
assert_eq "$(echo "$out" | jq -r '.type + "/" + .step + "/" + .source + "/" + .dest')" "evacuation/done/h1/h2" "the evacuation"
r=$(L etcd ctl get /ferry/vms/vm1 --print-value-only)
assert_eq "$(echo "$r" | jq -r '"\(.owner)/\(.generation)/\(.evacuated_from)/\(.data_lost)"')" "h2/2/h1/false" "vm1's record after"
assert_eq "$(L virsh h2 metadata vm1 https://ferry.dev/xmlns/cluster/1 --config | grep -o 'generation="[0-9]*"')" \
	'generation="2"' "generation in vm1's definition on h2"
verify_unclean h2 "the crash of h1"

log "--- h1 returns: its copy is stale, quarantined, the shared disk untouched"
L revive h1
quarantine_is h2 h1 1/h2/2
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

log "--- h2 partitioned with its ferryd frozen and vm1 running: sanlock is the fence"
pid2=$(qemu_pid h2 vm1)
[ -n "$pid2" ] || fail "vm1 is not running on h2"
L freeze h2
L partition h2
cleanup_push "'$LAB' --lab '$lab' thaw h2 2>/dev/null; '$LAB' --lab '$lab' heal h2 2>/dev/null"
t0=$(ms_now)
until key_gone h1 h2; do
	[ $(($(ms_now) - t0)) -lt 10000 ] || fail "h2's key still there 10 s after the partition"
	sleep 0.05
done
id=$(L exec h1 ferry -j evacuate vm1 | jq -r .id) || fail "evacuate from h1: no id"
# The claim is taken and the start refused by sanlock, again and again.
for ((i = 0; i < 200; i++)); do
	w=$(L exec h1 ferry -j show "$id" | jq -r '"\(.step)/\(.evacuate.lease_wait_ms)"')
	[[ $w == start/* && ${w#start/} -gt 0 ]] && break
	[[ $w != done/* && $w != failed/* && $w != error/* ]] || fail "h1's evacuation ended early: $w ($(L exec h1 ferry -j show "$id" | jq -r .error))"
	sleep 0.1
done
[[ $w == start/* && ${w#start/} -gt 0 ]] || fail "h1's evacuation never waited for the lease: $w"
sleep 5
assert_eq "$(L exec h1 ferry -j show "$id" | jq -r .step)" start "h1's evacuation, 5 s after the lease was first refused"
assert_eq "$(qemu_pid h2 vm1)" "$pid2" "vm1's QEMU on h2 (frozen ferryd, partitioned)"
st=$(L virsh h1 domstate vm1 2>/dev/null | sed -n 1p || true)
[ "$st" != running ] || fail "vm1 runs on h1 while h2 holds its disk's lease"
log "vm1 on h1 while h2 holds the lease: ${st:-no domain state}"
assert_eq "$(L etcd ctl get /ferry/vms/vm1 --print-value-only | jq -r '"\(.owner)/\(.generation)"')" "h1/3" "vm1's record: claimed by h1"
L ferryd h1 log | grep -c "vm vm1: its disk lease is held by another host" >/dev/null ||
	fail "h1's log does not say why vm1 waits"
L sanlock h2 status | grep -c "^r __LIBVIRT__DISKS__:.* p $pid2\$" >/dev/null ||
	fail "h2's sanlock does not list vm1's QEMU ($pid2) as the lease's holder: $(L sanlock h2 status)"
seq0=$(L agent h2 vm1 STATUS | sed -n 's/.*seq=\([0-9]*\).*/\1/p')
log "h1 waits for the lease; h2's vm1 (QEMU $pid2) acknowledged seq $seq0; thawing h2's ferryd"
t0=$(ms_now)
L thaw h2
until [ -z "$(qemu_pid h2 vm1)" ]; do
	[ $(($(ms_now) - t0)) -lt 20000 ] || fail "h2's thawed ferryd did not fence vm1 within 20 s"
	sleep 0.05
done
t1=$(ms_now)
until [ "$(L exec h1 ferry -j show "$id" | jq -r .step)" = "done" ]; do
	[ $(($(ms_now) - t1)) -lt 60000 ] || fail "h1's evacuation did not finish 60 s after h2's fence: $(L exec h1 ferry -j show "$id" | jq -c '{step, error}')"
	sleep 0.1
done
t2=$(ms_now)
assert_eq "$(L virsh h1 domstate vm1 | head -1)" running "vm1 on h1"
log "h2 fenced itself $((t1 - t0)) ms after the thaw; h1 started vm1 $((t2 - t1)) ms later, having waited $(L exec h1 ferry -j show "$id" | jq -r .evacuate.lease_wait_ms) ms for the lease"
verify_unclean h1 "h2's partition with its ferryd frozen"
L heal h2
quarantine_is h1 h2 2/h1/3

log "--- h1 partitioned, its ferryd running: it fences itself, h2 evacuates"
pid1=$(qemu_pid h1 vm1)
[ -n "$pid1" ] || fail "vm1 is not running on h1"
seq0=$(L agent h1 vm1 STATUS | sed -n 's/.*seq=\([0-9]*\).*/\1/p')
t0=$(ms_now)
L partition h1
cleanup_push "'$LAB' --lab '$lab' heal h1 2>/dev/null"
partition_watch h2 h1 "$pid1" "$t0" 15000
log "h1 partitioned: vm1's QEMU gone at +$dead_ms ms (h1's own fence), h1's key gone for h2 at +$gone_ms ms"
assert_le "$dead_ms" $((gone_ms + FERRY_LAB_EVACUATE_GRACE * 1000)) "vm1's QEMU exit (ms), against the key's going plus the grace"
out=$(L exec h2 ferry -j evacuate vm1 --wait) || fail "evacuate from h2: $out"
assert_eq "$(echo "$out" | jq -r '.step + "/" + .source')" "done/h1" "the evacuation of the partitioned h1's VM"
assert_eq "$(L virsh h2 domstate vm1 | head -1)" running "vm1 on h2"
log "h2 started vm1 in $(echo "$out" | jq -r .evacuate.start_ms) ms (h1's fence had released the lease)"
verify_unclean h2 "h1's partition"
L heal h1
quarantine_is h2 h1 3/h2/4

rm -f "$poll"
wait "$poller" 2>/dev/null || true
[ ! -s "$poll.bad" ] || fail "two QEMUs ran vm1: $(head -3 "$poll.bad")"
log "the poller saw a second, never started, QEMU for vm1 $(wc -l <"$poll.paused" 2>/dev/null || echo 0) times (a start sanlock refused)"
log "ok: evacuated on shared storage with one QEMU at a time (sanlock held off a frozen host's twin), the returning copies quarantined"
