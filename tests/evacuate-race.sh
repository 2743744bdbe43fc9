#!/bin/bash
# evacuate-race: h2 and h3 evacuate h1's guest at the same moment, after h1
# crashed (shared storage, lease TTL 3 s, grace 3 s).  Both pass their
# check; the claim, one etcd transaction on the record's revision, lets
# exactly one through: one evacuation is done, the other failed with
# nothing taken; the record has the winner at generation 2; the guest runs
# on the winner only.  The winner crashed too, its evacuation is still
# listed by the loser's `ferry migrations`, from the cluster's record of
# migrations (marked so).  Then, with etcd's
# quorum lost (two members of three stopped), no evacuation starts and the
# last host fences itself (docs/evacuate.md: quorum loss fences every host).
# timeout: 300
. "$(dirname "$0")/cluster_lib.sh"
export FERRY_LAB_LEASE_TTL=3 FERRY_LAB_EVACUATE_GRACE=3
lab_up "$lab" --hosts 3 --etcd --shared
L guest h1 vm1 --disk-size 64M --write-rate 1M
for ((i = 0; i < 50; i++)); do
	[ -n "$(L etcd ctl get /ferry/vms/vm1 --print-value-only)" ] && break
	sleep 0.1
done
L crash h1
until key_gone h2 h1 && key_gone h3 h1; do sleep 0.1; done
L exec h2 ferry -j evacuate vm1 --wait >"$BUILD/race.h2" 2>&1 &
a=$!
L exec h3 ferry -j evacuate vm1 --wait >"$BUILD/race.h3" 2>&1 &
b=$!
wait $a || true
wait $b || true
for h in h2 h3; do log "$h: $(jq -c '{step, error}' "$BUILD/race.$h" 2>/dev/null || cat "$BUILD/race.$h")"; done
steps=$(for h in h2 h3; do jq -r .step "$BUILD/race.$h" 2>/dev/null || echo refused; done | sort | xargs)
case $steps in
"done failed" | "done refused") ;;
*) fail "two evacuations at once: want one done and one failed, got: $steps" ;;
esac
win=$(for h in h2 h3; do if [ "$(jq -r .step "$BUILD/race.$h" 2>/dev/null)" = done ]; then echo "$h"; fi; done)
lose=$([ "$win" = h2 ] && echo h3 || echo h2)
jq -r .error "$BUILD/race.$lose" | grep -q "record changed" ||
	fail "the loser's error does not say the record changed: $(cat "$BUILD/race.$lose")"
r=$(L etcd ctl get /ferry/vms/vm1 --print-value-only)
assert_eq "$(echo "$r" | jq -r '"\(.owner)/\(.generation)"')" "$win/2" "vm1's record"
until [ "$(L virsh "$win" domstate vm1 2>/dev/null | head -1)" = running ]; do sleep 0.1; done
assert_eq "$(qemu_pid "$lose" vm1)" "" "a QEMU for vm1 on the loser $lose"
expect_fail L virsh "$lose" domstate vm1

log "--- quorum lost: no evacuation starts, and the hosts fence themselves"
L crash "$win"
until key_gone "$lose" "$win"; do sleep 0.1; done
# The dead winner's evacuation still answers, from the cluster's record.
m=$(L exec "$lose" ferry -j migrations vm1 | jq -c --arg h "$win" '.[] | select(.type == "evacuation" and .dest == $h)')
assert_eq "$(echo "$m" | jq -r '"\(.mirrored)/\(.reported_by)/\(.status)"')" "true/$win/done" \
	"$win's evacuation in $lose's ferry migrations, $win dead"
L exec "$lose" ferry migrations vm1 | grep -c "^$(echo "$m" | jq -r .id) *\* " >/dev/null ||
	fail "the plain listing does not mark the mirrored record: $(L exec "$lose" ferry migrations vm1)"
L exec "$lose" ferry migrations vm1 | sed 's/^/    /'
L etcd stop e1
L etcd stop e2
expect_fail L exec "$lose" ferry evacuate vm1
log "evacuate without quorum: $ERR"
case $ERR in *"host $lose is fenced"* | *"record"*) ;; *) fail "evacuate without quorum: $ERR" ;; esac
for ((i = 0; i < 100; i++)); do
	[ "$(L exec "$lose" ferry -j cluster | jq -r .fenced)" = true ] && break
	sleep 0.1
done
assert_eq "$(L exec "$lose" ferry -j cluster | jq -r .fenced)" true "$lose without quorum (the documented policy)"
assert_eq "$(L etcd ctl get /ferry/vms/vm1 --print-value-only --consistency=s 2>/dev/null | jq -r '"\(.owner)/\(.generation)"')" \
	"$win/2" "vm1's record, read from the one member left"
log "ok: of two evacuations at once, $win's claim went through and $lose's took nothing; none without quorum"
