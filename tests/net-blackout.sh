#!/bin/bash
# timeout: 240
# net-blackout: ferry's blackout of a live migration, measured by its tc
# programs on the taps (destination's first guest frame minus the source's
# last), against an independent pinger at 1 kHz from the lab's client
# namespace: within 2 ms plus one ping interval of the pinger's longest gap.
# QEMU's RARPs are seen on the destination tap before the guest's first
# frame, and h2's bridge has the guest MAC on the new tap.  Then libvirt's
# plain `virsh migrate --live` moves it back: the same blackout, from
# `ferry -j vifs` on both hosts, holds against the pinger without ferry's
# live migration.  Last, h2's bridge is kept from learning on the new tap:
# ferry finds the MAC elsewhere in the FDB and puts it on the tap as a
# reachable entry, never a permanent one.
# serial: compares the blackout with a pinger's gap to 3 ms
. "$(dirname "$0")/live_lib.sh"
need_cmd bridge
PINGER=$BUILD/tests/pinger
[ -x "$PINGER" ] || fail "no $PINGER (make all)"
cleanup_push rm -f "$BUILD/$lab-ping.json"
lab_up "$lab" --hosts 2 >/dev/null
L guest h1 vm1 --nic --disk-size 64M >/dev/null
addr=$(L guest-addr vm1)
mac=$(L -j guest-addr vm1 | jq -r .mac)
# not through L(): $! must be the pinger (ferry-lab client execs it)
"$LAB" --lab "$lab" client pinger -j "$addr" >"$BUILD/$lab-ping.json" &
pid=$!
cleanup_push kill "$pid"
sleep 2
out=$(L exec h1 ferry live-migrate vm1 --to h2 --wait) || { log "$out"; live_diag h1 vm1; fail "live-migrate"; }
id=$(sed -n '1s/^live-migration \(m-[0-9a-f]*\).*/\1/p' <<<"$out")
log "$(grep -E "NIC|RARP|downtime" <<<"$out")"
sleep 2
kill -TERM "$pid"
wait "$pid" || fail "pinger: $(cat "$BUILD/$lab-ping.json")"
P=$(cat "$BUILD/$lab-ping.json")
gap_us=$(($(jq -r .gap_max_ns <<<"$P") / 1000))
j=$(L exec h1 ferry -j show "$id")
v=$(jq -c '.live.vifs[0]' <<<"$j")
log "ferry: $v"
log "pinger: sent $(jq -r .sent <<<"$P"), lost $(jq -r .lost <<<"$P"), longest gap $gap_us us"
assert_eq "$(jq -r .guest_seen <<<"$v")" true "a guest frame on h2"
assert_eq "$(jq -r .mac <<<"$v")" "$mac" "the NIC"
b_us=$(jq -r .blackout_us <<<"$v")
d=$((b_us > gap_us ? b_us - gap_us : gap_us - b_us))
log "blackout $b_us us vs pinger gap $gap_us us: $d us apart (bound 3000 us: 2 ms + 1 ping interval)"
assert_le "$d" 3000 "|ferry's blackout - pinger's gap| (us)"
assert_eq "$(jq -r .metrics.net_blackout_us <<<"$j")" "$b_us" "net_blackout_us in the metrics"
# RARPs before the guest's first frame, on h2's tap
w=$(L exec h2 ferry -j vifs vm1 | jq -c '[.vifs[] | select(.state == "watched")][0]')
[ "$(jq -r .rarp_count <<<"$w")" -ge 1 ] || fail "no RARP seen on h2: $w"
[ "$(jq -r .rarp_first_ns <<<"$w")" -lt "$(jq -r .tx_first_ns <<<"$w")" ] ||
	fail "RARP not before the guest's first frame: $w"
tap=$(jq -r .tap <<<"$w")
fdb=$(L exec h2 bridge fdb show br ferrybr0 | grep -i "^$mac " || true)
assert_contains "$fdb" "dev $tap " "h2's FDB entry of $mac"
assert_eq "$(jq -r .fdb_fixed <<<"$v")" false "the bridge learnt it by itself"

log "virsh migrate --live h2 -> h1: the blackout from ferry's counters on both hosts"
L guest h1 vm1 --disk-only --disk-size 64M >/dev/null
"$LAB" --lab "$lab" client pinger -j "$addr" >"$BUILD/$lab-ping.json" &
pid=$!
cleanup_push kill "$pid"
sleep 2
L exec h2 virsh -c qemu:///system migrate --live --p2p --copy-storage-all \
	--persistent --undefinesource vm1 "qemu+tcp://h1/system" || fail "virsh migrate"
sleep 2
kill -TERM "$pid"
wait "$pid" || fail "pinger: $(cat "$BUILD/$lab-ping.json")"
P=$(cat "$BUILD/$lab-ping.json")
gap_us=$(($(jq -r .gap_max_ns <<<"$P") / 1000))
# h2: the tap the VM left; h1: the one it runs on now
src=$(L exec h2 ferry -j vifs vm1 | jq -c --arg m "$mac" \
	'[.vifs[] | select(.mac == $m and .state == "gone")] | max_by(.tx_last_ns)')
dst=$(L exec h1 ferry -j vifs vm1 | jq -c --arg m "$mac" \
	'[.vifs[] | select(.mac == $m and .state == "watched")][0]')
log "h2 (left): $src"
log "h1 (now): $dst"
[ "$src" != null ] && [ "$dst" != null ] || fail "a tap not watched: h2 $src, h1 $dst"
assert_eq "$(jq -r .rx_counted <<<"$dst")" true "h1's tap counts both directions"
b_us=$((($(jq -r .tx_first_ns <<<"$dst") - $(jq -r .tx_last_ns <<<"$src")) / 1000))
d=$((b_us > gap_us ? b_us - gap_us : gap_us - b_us))
log "pinger: sent $(jq -r .sent <<<"$P"), lost $(jq -r .lost <<<"$P"), longest gap $gap_us us"
log "blackout $b_us us vs pinger gap $gap_us us: $d us apart (bound 3000 us)"
assert_le "$d" 3000 "|blackout from ferry vifs - pinger's gap| (us)"
[ "$(jq -r .rarp_count <<<"$dst")" -ge 1 ] || fail "no RARP seen on h1: $dst"
[ "$(jq -r .rarp_first_ns <<<"$dst")" -lt "$(jq -r .tx_first_ns <<<"$dst")" ] ||
	fail "RARP not before the guest's first frame on h1: $dst"

log "h2's bridge does not learn on the new tap: ferry puts the MAC there"
# virsh migrate --copy-storage-all leaves the source's disk behind, and
# ferry refuses to migrate onto an instance directory that exists
L exec h2 rm -rf /var/lib/libvirt/images/vm1
# the first tap to join h2's bridge is the incoming one: no learning on it
L exec h2 sh -c 'for i in $(seq 600); do for p in /sys/class/net/ferrybr0/brif/vnet*; do
	[ -e "$p" ] && bridge link set dev "${p##*/}" learning off && exit 0; done; sleep 0.05; done; exit 1' &
lpid=$!
"$LAB" --lab "$lab" client pinger -j "$addr" >"$BUILD/$lab-ping.json" &
pid=$!
cleanup_push kill "$pid"
sleep 1
out=$(L exec h1 ferry live-migrate vm1 --to h2 --wait) || { log "$out"; live_diag h1 vm1; fail "live-migrate"; }
wait "$lpid" || fail "no tap joined h2's bridge"
sleep 1
kill -TERM "$pid"
wait "$pid" || fail "pinger: $(cat "$BUILD/$lab-ping.json")"
gap_us=$(($(jq -r .gap_max_ns "$BUILD/$lab-ping.json") / 1000))
id=$(sed -n '1s/^live-migration \(m-[0-9a-f]*\).*/\1/p' <<<"$out")
v=$(L exec h1 ferry -j show "$id" | jq -c '.live.vifs[0]')
log "ferry: $v"
assert_eq "$(jq -r .fdb_fixed <<<"$v")" true "ferry moved the FDB entry"
assert_contains "$out" "FDB entry moved by ferry" "ferry live-migrate --wait says so"
tap=$(jq -r .dst_tap <<<"$v")
fdb=$(L exec h2 bridge fdb show br ferrybr0 | grep -i "^$mac " || true)
log "h2: $fdb"
assert_contains "$fdb" "dev $tap master ferrybr0" "h2's FDB entry of $mac"
case $fdb in *permanent*) fail "a permanent (local) entry: $fdb" ;; esac
assert_contains "$(L ferryd h2 log 2>&1)" "moved it there" "h2's log"
# made at the resume, the entry leaves no second outage behind the blackout
b_us=$(jq -r .blackout_us <<<"$v")
d=$((b_us > gap_us ? b_us - gap_us : gap_us - b_us))
log "blackout $b_us us vs pinger gap $gap_us us: $d us apart (bound 3000 us)"
assert_le "$d" 3000 "|blackout - pinger's gap| with ferry's FDB entry (us)"
log "ok"
