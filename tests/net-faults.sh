#!/bin/bash
# timeout: 300
# net-faults: the network going wrong around a live migration.
# - h2's bridge missing, down, running STP with a forward delay, or with
#   another MTU: `ferry live-migrate` is refused before anything is copied,
#   naming the bridge and what is wrong; the VM runs on untouched.
# - h2 drops every announce (test_drop_announce): ferry sees none within
#   net_announce_wait_ms, sends QMP announce-self, says so in the record
#   and the log, and a 1 kHz pinger gets replies again.
# - the tap's qdisc changes under the programs: what libvirt's <bandwidth>
#   does, a clsact deleted, an ingress qdisc in its place.  The programs
#   come back and the counters go on.
# - ferryd restarts: the tap's counters go on; with net_watch = no it
#   takes the programs off; a tap that went while ferryd was down loses
#   its entry in the pinned map.
# serial: every probe of the last second answered; counters within 3 s
. "$(dirname "$0")/live_lib.sh"
PINGER=$BUILD/tests/pinger
[ -x "$PINGER" ] || fail "no $PINGER (make all)"
cleanup_push rm -f "$BUILD/$lab-ping.json" "$BUILD/$lab-ping.txt"
lab_up "$lab" --hosts 2 >/dev/null
FERRY_LAB_FERRYD_CONF='test_drop_announce = yes' L ferryd h2 restart >/dev/null
L guest h1 vm1 --nic --disk-size 64M >/dev/null
addr=$(L guest-addr vm1)
mac=$(L -j guest-addr vm1 | jq -r .mac)
br() { L exec h2 ip link set ferrybr0 "$@"; }

log "--- h2's ferrybr0 is wrong: refused before any copy"
refused() { # WHAT NEEDLE: live-migrate vm1 to h2 is refused, nothing moved
	local id
	expect_fail L exec h1 ferry live-migrate vm1 --to h2 --wait
	log "$1: $ERR"
	assert_contains "$ERR" "MigrationPreCheckError" "$1"
	assert_contains "$ERR" "ferrybr0" "$1: names the bridge"
	assert_contains "$ERR" "$2" "$1: says what is wrong"
	id=$(L exec h1 ferry -j migrations vm1 | jq -r 'max_by(.created_ms) | .id')
	L exec h1 ferry -j show "$id" | jq -e '.status == "failed" and
		.metrics.disk_processed_bytes == 0 and .metrics.memory_processed_bytes == 0' \
		>/dev/null || fail "$1: $id copied something: $(L exec h1 ferry -j show "$id" |
			jq -c '{status, d: .metrics.disk_processed_bytes,
				m: .metrics.memory_processed_bytes}')"
	assert_eq "$(L virsh h1 domstate vm1 | head -1)" running "$1: vm1 on h1"
	vm_gone h2 vm1 "$1"
}
br down
br name ferrybrx
refused "no bridge" "does not exist"
L exec h2 ip link set ferrybrx name ferrybr0
refused "bridge down" "is down"
br up
br type bridge stp_state 1 forward_delay 400
refused "STP, 4 s forward delay" "forward delay of 4.0 s"
br type bridge stp_state 0
br type bridge forward_delay 0
br mtu 1400
refused "MTU 1400" "MTU 1400, 1500 on h1"
br mtu 1500

log "--- h2 drops the announces: ferry sends announce-self"
# not through L(): $! must be the pinger (ferry-lab client execs it)
"$LAB" --lab "$lab" client pinger -j -w "$BUILD/$lab-ping.txt" "$addr" >"$BUILD/$lab-ping.json" &
pid=$!
cleanup_push kill "$pid"
sleep 1
out=$(L exec h1 ferry live-migrate vm1 --to h2 --wait) || { log "$out"; live_diag h1 vm1; fail "live-migrate"; }
id=$(sed -n '1s/^live-migration \(m-[0-9a-f]*\).*/\1/p' <<<"$out")
log "$(grep -E -A1 "NIC" <<<"$out")"
sleep 2
kill -TERM "$pid"
wait "$pid" || fail "pinger: $(cat "$BUILD/$lab-ping.json")"
P=$(cat "$BUILD/$lab-ping.json")
log "pinger: sent $(jq -r .sent <<<"$P"), lost $(jq -r .lost <<<"$P"), longest gap $(($(jq -r .gap_max_ns <<<"$P") / 1000)) us"
j=$(L exec h1 ferry -j show "$id")
v=$(jq -c '.live.vifs[0]' <<<"$j")
log "record: $v"
assert_eq "$(jq -r .announce_self <<<"$v")" true "announce-self in the record"
assert_eq "$(jq -r .announce_seen <<<"$v")" false "no announce of QEMU's own seen"
assert_eq "$(jq -r .metrics.net_announce_self <<<"$j")" 1 "net_announce_self"
assert_contains "$out" "announce-self" "ferry live-migrate --wait says so"
w=$(L exec h2 ferry -j vifs vm1 | jq -c '[.vifs[] | select(.state == "watched")][0]')
[ "$(jq -r .announce_dropped <<<"$w")" -ge 1 ] || fail "the knob dropped nothing: $w"
[ "$(jq -r .rarp_count <<<"$w")" -ge 1 ] || fail "no RARP from announce-self: $w"
assert_contains "$(L ferryd h2 log 2>&1)" "announce-self through libvirt's monitor passthrough sent" "h2's log"
assert_contains "$(L ferryd h2 log 2>&1)" "tainted (custom-monitor)" "h2's log: the taint"
assert_contains "$(L exec h2 cat /var/log/libvirt/qemu/vm1.log)" "custom-monitor" "libvirt's taint in vm1's log on h2"
# Recovered: the last second of probes was answered, after the longest gap.
sent=$(jq -r .sent <<<"$P")
late=$(awk -v from=$((sent - 1000)) '$1 >= from && $3 == 0' "$BUILD/$lab-ping.txt" | wc -l)
assert_eq "$late" 0 "probes of the last second unanswered"
[ "$(jq -r .last_reply_ns <<<"$P")" -gt "$(jq -r .gap_after_ns <<<"$P")" ] || fail "no replies after the gap"

log "--- the tap's qdisc changes under the programs"
tap=$(jq -r .tap <<<"$w")
"$LAB" --lab "$lab" client pinger -i 5000 "$addr" >/dev/null 2>&1 &
pid=$!
cleanup_push kill "$pid"
vif() { L exec h2 ferry -j vifs vm1 | jq -c --arg t "$tap" '[.vifs[] | select(.tap == $t and .state == "watched")][0]'; }
filters() { # the programs on the tap's hooks, e.g. "vif_ingress vif_egress"
	# (under an ingress qdisc both hooks show its one block: once each)
	{ L exec h2 tc filter show dev "$tap" ingress; L exec h2 tc filter show dev "$tap" egress; } |
		grep -o 'name vif_[a-z]*' | cut -d' ' -f2 | awk '!seen[$0]++' | paste -sd' '
}
grows() { # grows WHAT FIELD BEFORE: FIELD of the tap's entry passes BEFORE within 3 s
	local i n
	for ((i = 0; i < 30; i++)); do
		n=$(vif | jq -r ".$2")
		[ "$n" -gt "$3" ] && return 0
		sleep 0.1
	done
	fail "$1: $2 stuck at $n (was $3): $(vif)"
}
reattached() { # reattached WHAT N: the monitor has put the programs back N times
	wait_for 5 sh -c "[ \"\$(\"$LAB\" --lab $lab exec h2 ferry -j vifs vm1 |
		jq -r '[.vifs[] | select(.tap == \"$tap\" and .state == \"watched\")][0].reattaches')\" = $2 ]" ||
		fail "$1: reattaches $(vif | jq -r .reattaches), want $2"
}
s0=$(vif)
tx=$(jq -r .tx_packets <<<"$s0")
grows "before" tx_packets "$tx"
if E=$(L exec h2 virsh -c qemu:///system domiftune vm1 "$tap" --live --inbound 1000,2000,1000 2>&1); then
	log "libvirt's <bandwidth> inbound applied"
else
	# libvirt shapes inbound with htb + sfq, outbound with an ingress
	# qdisc and act_police: this kernel has neither sch_sfq nor act_police.
	log "libvirt's <bandwidth> cannot be applied on this kernel ($E); standing in with the tc commands it runs"
	L exec h2 tc qdisc del dev "$tap" root 2>/dev/null || true
	L exec h2 tc qdisc del dev "$tap" ingress 2>/dev/null || true
fi
# `tc qdisc del … ingress` names a kind the clsact does not have: the
# kernel refuses, and the programs never went away.
assert_eq "$(filters)" "vif_ingress vif_egress" "after libvirt's clear"
tx=$(vif | jq -r .tx_packets)
grows "after libvirt's clear" tx_packets "$tx"

L exec h2 tc qdisc del dev "$tap" clsact
reattached "clsact deleted" 1
assert_eq "$(filters)" "vif_ingress vif_egress" "after the clsact was deleted"
s1=$(vif)
[ "$(jq -r .tx_packets <<<"$s1")" -ge "$tx" ] || fail "counters restarted: $s0 -> $s1"
grows "clsact deleted" tx_packets "$(jq -r .tx_packets <<<"$s1")"
grows "clsact deleted" rx_packets "$(jq -r .rx_packets <<<"$s1")"

# an ingress qdisc, as libvirt's outbound <bandwidth> makes at start
L exec h2 sh -c "tc qdisc del dev $tap clsact && tc qdisc add dev $tap ingress"
reattached "ingress qdisc" 2
assert_eq "$(filters)" "vif_ingress" "under an ingress qdisc: the ingress program only"
s2=$(vif)
assert_eq "$(jq -r .rx_counted <<<"$s2")" false "rx_counted under an ingress qdisc"
grows "ingress qdisc" tx_packets "$(jq -r .tx_packets <<<"$s2")"
assert_contains "$(L exec h2 ferry vifs vm1)" " - " "ferry vifs prints '-' for what it cannot count"

L exec h2 tc qdisc del dev "$tap" ingress
reattached "ingress qdisc gone" 3
assert_eq "$(filters)" "vif_ingress vif_egress" "a clsact again"
assert_eq "$(vif | jq -r .rx_counted)" true "rx_counted again"

log "--- ferryd restarts: a tap's counters go on, a gone tap's entry goes"
s3=$(vif)
FERRY_LAB_FERRYD_CONF='test_drop_announce = yes' L ferryd h2 restart >/dev/null
wait_for 10 sh -c "\"$LAB\" --lab $lab exec h2 ferry -j vifs vm1 | jq -e '.vifs[] | select(.tap == \"$tap\" and .state == \"watched\")'" ||
	fail "h2's ferryd does not watch $tap after its restart"
s4=$(vif)
[ "$(jq -r .tx_packets <<<"$s4")" -ge "$(jq -r .tx_packets <<<"$s3")" ] ||
	fail "counters restarted with ferryd: $s3 -> $s4"
assert_eq "$(jq -r .t_attached_ns <<<"$s4")" "$(jq -r .t_attached_ns <<<"$s3")" "the entry's attach time"
grows "after ferryd's restart" tx_packets "$(jq -r .tx_packets <<<"$s4")"
kill "$pid"
# net_watch off: a ferryd takes its predecessor's filters off the taps
FERRY_LAB_FERRYD_CONF='net_watch = no' L ferryd h2 restart >/dev/null
wait_for 10 sh -c "\"$LAB\" --lab $lab ferryd h2 log 2>&1 | grep -q 'net_watch is off: ferry.s programs taken off 1 link'" ||
	fail "h2's ferryd with net_watch = no: $(L ferryd h2 log 2>&1 | tail -3)"
assert_eq "$(filters)" "" "filters on $tap with net_watch = no"
assert_contains "$(L exec h2 tc qdisc show dev "$tap")" "clsact" "the qdisc stays"
# a tap that goes while ferryd is down: the next one has nobody to tell
L ferryd h2 stop >/dev/null
L virsh h2 destroy vm1 >/dev/null
assert_eq "$(L exec h2 bpftool -j map dump pinned /sys/fs/bpf/ferry/vifs | jq length)" 1 "entries on h2, ferryd down"
L ferryd h2 start >/dev/null
wait_for 10 sh -c "\"$LAB\" --lab $lab ferryd h2 log 2>&1 | grep -q 'forgot 1 tap(s) gone while ferryd was down'" ||
	fail "h2's ferryd did not forget $tap: $(L ferryd h2 log 2>&1 | grep vif: | tail -3)"
assert_eq "$(L exec h2 bpftool -j map dump pinned /sys/fs/bpf/ferry/vifs | jq length)" 0 "entries on h2"
log "ok"
