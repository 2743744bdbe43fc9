#!/bin/bash
# timeout: 120
# A shaped link measures near its configured rate (iperf3 from h1 to a
# server in h2, both directions), and an unshaped one is much faster.
# --delay adds that one-way delay where the kernel has netem, and fails
# clearly where it has not.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh tc jq iperf3 ss

name=$(test_lab_name)
lab_up "$name" --rate 200mbit
L() { "$LAB" --lab "$name" "$@"; }

"$LAB" --lab "$name" exec h2 iperf3 -s -B "$(L addr h2)" </dev/null >/dev/null 2>&1 &
listening() { L exec h2 ss -Hltn 'sport = :5201' | grep -q .; }
wait_for 10 listening || fail "iperf3 server in h2 did not start"

# mbps [-R]: measured rate h1 -> h2 (h2 -> h1 with -R) in Mbit/s
mbps() {
	L exec h1 iperf3 -c h2 -t 2 -O 1 -J "$@" |
		jq '.end.sum_received.bits_per_second / 1e6 | floor'
}
# near GOT WANT WHAT: within +-25%
near() {
	log "$3: $1 Mbit/s (configured $2)"
	assert_ge "$1" $(($2 * 75 / 100)) "$3 (Mbit/s)"
	assert_le "$1" $(($2 * 125 / 100)) "$3 (Mbit/s)"
}

assert_eq "$(L -j status | jq -r '.shaping.rate')" 200mbit "status shaping"
near "$(mbps)" 200 "up --rate 200mbit, h1 -> h2"
L shape --rate 1gbit
near "$(mbps)" 1000 "shape --rate 1gbit, h1 -> h2"
near "$(mbps -R)" 1000 "shape --rate 1gbit, h2 -> h1"
L shape --rate none
fast=$(mbps)
log "unshaped: $fast Mbit/s"
assert_ge "$fast" 3000 "unshaped rate (Mbit/s)"
assert_eq "$(L -j status | jq '.shaping.rate_bps')" null "status after shape --rate none"

# connect_ms: time of a TCP connect h1 -> h2 (one round trip), in ms
connect_ms() {
	L exec h1 bash -c 't=$(date +%s%N); exec 3<>/dev/tcp/h2/5201; echo $((($(date +%s%N) - t) / 1000000))'
}
if L shape --delay 20 2>"$BUILD/lab-shaping.err"; then
	rtt=$(connect_ms)
	log "delay 20 ms one way: connect took $rtt ms"
	assert_ge "$rtt" 38 "round trip with --delay 20 (ms)"
	assert_le "$rtt" 200 "round trip with --delay 20 (ms)"
	L shape --delay 0
else
	err=$(cat "$BUILD/lab-shaping.err")
	assert_contains "$err" netem "error of shape --delay on a kernel without netem"
	log "no netem here: $err"
	assert_eq "$(L -j status | jq -c '.shaping')" '{"rate":null,"rate_bps":null,"delay_ms":0}' "shaping unchanged by a failed shape"
fi
rm -f "$BUILD/lab-shaping.err"
log "PASS"
