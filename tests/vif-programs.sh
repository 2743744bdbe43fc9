#!/bin/bash
# timeout: 60
# vif-programs: ferry's VIF programs (bpf/vif.c) on a veth pair, without a
# lab or a guest, through vif-probe:
# - every probe of a pinger and every reply is counted, once, by direction;
# - a map pinned under the same name by another layout is replaced, with a
#   warning, and the new one has ferry's layout;
# - the detach takes ferry's filters off and leaves the clsact qdisc;
# - under an `ingress` qdisc only the ingress program goes on, and nothing
#   the link sends is counted as received.
# The veth end in namespace A stands for a tap: its ingress is what "the
# guest" (namespace B) sends.
# serial: counts a 200 Hz pinger's probes; a 5 ms stall drops one
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip tc bpftool jq
PROBE=$BUILD/tests/vif-probe PINGER=$BUILD/tests/pinger
[ -x "$PROBE" ] && [ -x "$PINGER" ] || fail "no $PROBE or $PINGER (make all)"
a=ferry-tvp$$a b=ferry-tvp$$b pin=/sys/fs/bpf/ferry-tvp$$
cleanup_push ip netns del "$a"
cleanup_push ip netns del "$b"
cleanup_push rm -rf "$pin"
ip netns add "$a"
ip netns add "$b"
ip link add vpa netns "$a" type veth peer name vpb netns "$b"
ip -n "$a" addr add 198.18.250.1/24 dev vpa
ip -n "$b" addr add 198.18.250.2/24 dev vpb
ip -n "$a" link set vpa up
ip -n "$b" link set vpb up
mkdir -p "$pin"

probe() { # probe SECONDS [vif-probe options]: counters in $J, stderr in $E
	local s=$1
	shift
	"$PROBE" -n "/run/netns/$a" -p "$pin" "$@" vpa "$s" >"$BUILD/tvp$$.json" 2>"$BUILD/tvp$$.err" &
	PID=$!
	wait_for 5 grep -q "attached to vpa" "$BUILD/tvp$$.err" || fail "vif-probe: $(cat "$BUILD/tvp$$.err")"
}
probe_done() {
	wait "$PID" || fail "vif-probe: $(cat "$BUILD/tvp$$.err")"
	J=$(cat "$BUILD/tvp$$.json") E=$(cat "$BUILD/tvp$$.err")
	rm -f "$BUILD/tvp$$.json" "$BUILD/tvp$$.err"
}
ping_b() { ip netns exec "$b" "$PINGER" -j -d 1 -i 5000 198.18.250.1 >/dev/null || fail "pinger"; }

log "a stale pin of another layout is replaced"
bpftool map create "$pin/vifs" type hash key 4 value 8 entries 4 name vifs
probe 3
ping_b
probe_done
assert_contains "$E" "had another layout" "vif-probe's warning"
vs=$(bpftool -j map show pinned "$pin/vifs" | jq .bytes_value)
[ "$vs" -gt 8 ] || fail "the pinned map kept the old layout (value $vs bytes)"
log "counters: $(jq -c '{tx_packets, rx_packets, drops, rarp_count}' <<<"$J")"
# 200 probes in, 200 replies out, plus what the kernels say (ARP, ND)
tx=$(jq -r .tx_packets <<<"$J") rx=$(jq -r .rx_packets <<<"$J")
assert_ge "$tx" 200 "probes seen on ingress"
assert_le "$tx" 230 "probes seen on ingress, once each"
assert_ge "$rx" 200 "replies seen on egress"
assert_le "$rx" 230 "replies seen on egress, once each"
assert_le "$(jq -r .drops <<<"$J")" 20 "drops (frames freed after use are not drops)"

log "the detach leaves the qdisc"
assert_contains "$(tc -n "$a" qdisc show dev vpa)" "clsact" "clsact after the detach"
[ -z "$(tc -n "$a" filter show dev vpa ingress)$(tc -n "$a" filter show dev vpa egress)" ] ||
	fail "filters left: $(tc -n "$a" filter show dev vpa ingress)"

log "under an ingress qdisc: the ingress program only"
tc -n "$a" qdisc del dev vpa clsact
tc -n "$a" qdisc add dev vpa ingress
probe 3
assert_eq "$(tc -n "$a" filter show dev vpa ingress | grep -o 'name vif_[a-z]*' | sort -u)" \
	"name vif_ingress" "programs on the ingress qdisc's block"
ping_b
probe_done
assert_contains "$E" "ingress only" "vif-probe says so"
assert_ge "$(jq -r .tx_packets <<<"$J")" 200 "probes seen under an ingress qdisc"
assert_eq "$(jq -r .rx_packets <<<"$J")" 0 "replies are not counted as anything"
log "ok"
