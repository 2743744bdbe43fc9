#!/bin/bash
# timeout: 120
# A shaped link measures near its configured rate (iperf3 from h1 to a
# server in h2, both directions), and an unshaped one is much faster.
# --delay adds that one-way delay where the kernel has netem, and fails
# clearly where it has not.
# serial: measures link rates and RTTs
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
# near WANT WHAT [IPERF-ARGS...]: the measured rate is within +-25% of
# WANT Mbit/s.  Over 125% fails at once: the shaper let too much through.
# Under 75% is measured again, up to three times, since a loaded 2-core
# machine can leave iperf3 short of CPU; the best run must reach 75%.
near() {
	local want=$1 what=$2 got best=0 try
	shift 2
	for try in 1 2 3; do
		got=$(mbps "$@")
		log "$what: $got Mbit/s (configured $want, run $try)"
		assert_le "$got" $((want * 125 / 100)) "$what (Mbit/s)"
		[ "$got" -le "$best" ] || best=$got
		[ "$best" -lt $((want * 75 / 100)) ] || break
	done
	assert_ge "$best" $((want * 75 / 100)) "$what, best of $try runs (Mbit/s)"
}

assert_eq "$(L -j status | jq -r '.shaping.rate')" 200mbit "status shaping"
near 200 "up --rate 200mbit, h1 -> h2"
L shape --rate 1gbit
near 1000 "shape --rate 1gbit, h1 -> h2"
near 1000 "shape --rate 1gbit, h2 -> h1" -R
L shape --rate none
# Unshaped, the link must be clearly faster than the last shaped rate:
# best of three, for the same reason as above.
fast=0
for try in 1 2 3; do
	got=$(mbps)
	log "unshaped: $got Mbit/s (run $try)"
	[ "$got" -le "$fast" ] || fast=$got
	[ "$fast" -lt 3000 ] || break
done
assert_ge "$fast" 3000 "unshaped rate, best of $try runs (Mbit/s)"
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
