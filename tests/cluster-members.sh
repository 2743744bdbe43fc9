#!/bin/bash
# cluster-members: each ferryd keeps its host's alive key on a real 3-member
# etcd cluster (ferry-lab up --etcd), on a lease of 3 s.  The test shows:
# - both hosts alive in etcd, seen alike from either host (`ferry cluster`,
#   `ferry hosts`), each key holding its host's name, address and version;
# - a killed ferryd's key lives out its lease (not gone at once, gone within
#   the TTL plus a renewal's slack), and a restart puts it back;
# - one etcd member of three lost: both hosts stay in the cluster, renewing;
# - quorum lost: each host knows it is out by its lease's deadline and says
#   so; quorum back: both are in again (on the lease a new leader revived,
#   or a new one);
# - a partitioned host is gone for the other, knows it is out itself, and
#   comes back under a new key (a new create_revision) once healed.
# timeout: 300
# serial: bounds lease expiry and renewals to seconds, on a 3 s etcd lease
. "$(dirname "$0")/cluster_lib.sh"
TTL=3
export FERRY_LAB_LEASE_TTL=$TTL
lab_up "$lab" --hosts 2 --etcd

cluster() { L exec "$1" ferry -j cluster; }
# alive_for VIEWER HOST: true/false, HOST's alive key as VIEWER's ferryd reads etcd
alive_for() { cluster "$1" | jq -r --arg h "$2" '[.hosts[]? | select(.host == $h)] | length > 0 and .[0].alive'; }
member_alive() { cluster "$1" | jq -r .membership.alive; }
# wait_state MAX_MS CMD... WANT: poll CMD every 100 ms until it prints WANT;
# prints the ms it took, fails past MAX_MS.
wait_state() {
	local max=$1 want=${*: -1} t0 got
	set -- "${@:2:$#-2}"
	t0=$(ms_now)
	while :; do
		got=$("$@" 2>/dev/null || true)
		[ "$got" = "$want" ] && break
		[ $(($(ms_now) - t0)) -le "$max" ] || fail "$* still '$got' after $max ms, want '$want'"
		sleep 0.1
	done
	echo $(($(ms_now) - t0))
}

log "--- both hosts in the cluster, seen alike from either"
wait_state 5000 alive_for h1 h1 true >/dev/null
wait_state 5000 alive_for h1 h2 true >/dev/null
for v in h1 h2; do
	c=$(cluster "$v")
	assert_eq "$(echo "$c" | jq -r '[.hosts[] | select(.alive) | .host] | sort | join(",")')" "h1,h2" "alive hosts seen from $v"
	assert_eq "$(echo "$c" | jq -r .lease_ttl_s)" "$TTL" "$v's lease TTL"
done
assert_eq "$(L exec h2 ferry -j hosts | jq -r '[.[] | select(.cluster.alive) | .host] | sort | join(",")')" "h1,h2" \
	"ferry hosts: alive in etcd"
# What etcd itself holds, read with etcdctl.
v=$(L etcd ctl get /ferry/hosts/h2 --print-value-only)
assert_eq "$(echo "$v" | jq -r .host)/$(echo "$v" | jq -r .addr)" "h2/$(L addr h2):4710" "h2's alive key"
# (the lease ID is an int64: read it as text, jq's doubles would round it)
lease=$(L etcd ctl get /ferry/hosts/h2 -w json | grep -o '"lease":[0-9]*' | cut -d: -f2)
[ "${lease:-0}" -gt 0 ] || fail "h2's alive key is on no lease"
granted=$(L etcd ctl lease timetolive "$(printf '%x' "$lease")" -w json | jq -r '."granted-ttl"')
assert_eq "$granted" "$TTL" "the lease's TTL in etcd"
L exec h1 ferry cluster | sed 's/^/    /'

log "--- kill -9 of h2's ferryd: its key lives out the lease, then goes"
rev0=$(cluster h1 | jq -r '.hosts[] | select(.host == "h2") | .create_revision')
L ferryd h2 kill
ms=$(wait_state $((TTL * 1000 + 2000)) alive_for h1 h2 false)
log "h2 gone for h1 ${ms} ms after the kill (TTL ${TTL} s)"
# Renewed every TTL/3: at least 2/3 of the TTL was left at the kill.
assert_ge "$ms" $((TTL * 1000 / 2)) "ms until a killed host's key went (not at once)"
L exec h1 ferry hosts | grep -E '^h2 .* gone ' >/dev/null || fail "ferry hosts does not say h2 is gone: $(L exec h1 ferry hosts)"
L ferryd h2 start
wait_state 3000 alive_for h1 h2 true >/dev/null
rev1=$(cluster h1 | jq -r '.hosts[] | select(.host == "h2") | .create_revision')
assert_gt "$rev1" "$rev0" "h2's key after it came back is a new one (create_revision)"

log "--- one etcd member of three stopped: nothing stops"
ep=$(cluster h1 | jq -r .endpoint)
for m in e1 e2 e3; do [ "$(L -j etcd status | jq -r --arg m "$m" '.[] | select(.member == $m) | .url')" = "$ep" ] && victim=$m; done
log "stopping $victim, the member h1 talks to ($ep)"
L etcd stop "$victim"
r0=$(cluster h1 | jq -r .membership.renewals)
sleep $((TTL * 2))
for h in h1 h2; do
	assert_eq "$(member_alive "$h")" true "$h in the cluster with $victim down"
	assert_eq "$(alive_for h1 "$h")" true "$h's key with $victim down"
done
r1=$(cluster h1 | jq -r .membership.renewals)
assert_ge "$((r1 - r0))" 4 "h1's renewals in $((TTL * 2)) s with $victim down"
for h in h1 h2; do
	L ferryd "$h" log | grep -c "out of the cluster" >/dev/null && fail "$h left the cluster with one member down"
done
assert_ne "$(cluster h1 | jq -r .endpoint)" "$ep" "h1's endpoint after $victim stopped"

log "--- a second member stopped: no quorum, each host knows it is out"
second=$(for m in e1 e2 e3; do [ "$m" != "$victim" ] && echo "$m"; done | sed -n 1p)
t0=$(ms_now)
L etcd stop "$second"
# By the deadline of its last renewal: a leader that lost its quorum still
# renews for up to an election timeout (1 s) before it steps down, and a
# member stopped gracefully hands its leadership over first (one more).
for h in h1 h2; do
	ms=$(wait_state $((TTL * 1000 + 4000)) member_alive "$h" false)
	log "$h out of the cluster $(($(ms_now) - t0)) ms after quorum was lost"
done
c=$(cluster h1)
echo "$c" | jq -e '.etcd_error | length > 0' >/dev/null || fail "ferry cluster without etcd's error: $c"
L exec h1 ferry hosts | grep -c "cluster record unavailable" >/dev/null || fail "ferry hosts does not say the record is unavailable"
wait_for $((TTL + 5)) sh -c "'$LAB' --lab '$lab' ferryd h1 log | grep -c 'h1 is out of the cluster' >/dev/null" ||
	fail "h1's log does not say it is out: $(L ferryd h1 log | grep cluster | tail -3)"

log "--- quorum back: both hosts in again"
L etcd start "$victim"
L etcd start "$second"
# A new leader gives every lease its whole TTL again: a lease that was
# alive when quorum went is renewed; one etcd let expire is replaced.
for h in h1 h2; do
	ms=$(wait_state 15000 member_alive "$h" true)
	log "$h in the cluster again after ${ms} ms ($(cluster "$h" | jq -r '.membership.registrations') lease(s) taken)"
done
wait_state 3000 alive_for h2 h1 true >/dev/null
wait_state 3000 alive_for h1 h2 true >/dev/null

log "--- h2 partitioned: gone for h1, out for itself, back under a new key"
rev0=$(cluster h1 | jq -r '.hosts[] | select(.host == "h2") | .create_revision')
L partition h2
ms=$(wait_state $((TTL * 1000 + 2000)) alive_for h1 h2 false)
log "h2 gone for h1 after ${ms} ms"
# h2 reaches nothing: its own ferryd answers on its control socket.
ms=$(wait_state $((TTL * 1000 + 1000)) member_alive h2 false)
L heal h2
wait_state 10000 alive_for h1 h2 true >/dev/null
rev1=$(cluster h1 | jq -r '.hosts[] | select(.host == "h2") | .create_revision')
assert_gt "$rev1" "$rev0" "h2's key after the partition is a new one"
log "ok: alive keys follow the hosts' leases through kills, member loss, quorum loss and a partition"
