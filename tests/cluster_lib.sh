# shellcheck shell=bash
# tests/cluster_lib.sh: what the cluster tests (etcd, fencing, records,
# evacuation) share, lib.sh included: root, jq, etcd, the test's lab name in
# $lab and L() for ferry-lab on it.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
need_cmd jq etcd etcdctl curl
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }

ms_now() { echo $(($(date +%s%N) / 1000000)); }

# qemu_pid HOST VM: the pid of VM's running QEMU on HOST (libvirt's pid
# file there, naming a live qemu-system process), or nothing.
qemu_pid() {
	local p
	p=$(L exec "$1" cat "/run/libvirt/qemu/$2.pid" 2>/dev/null) || return 0
	[ -n "$p" ] && [[ $(cat "/proc/$p/comm" 2>/dev/null) == qemu-system* ]] &&
		! grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && echo "$p"
	return 0
}

# key_gone VIEWER HOST: HOST's alive key is absent, as VIEWER's ferryd reads etcd.
key_gone() {
	[ "$(L exec "$1" ferry -j cluster | jq -r --arg h "$2" '[.hosts[]? | select(.host == $h)] | length')" = 0 ]
}

# partition_watch VIEWER HOST PID T0 LIMIT_MS: after HOST was partitioned at
# T0 (ms_now), until LIMIT_MS past it: sets gone_ms to when VIEWER stopped
# seeing HOST's alive key and dead_ms to when QEMU PID (on HOST) exited,
# both in ms after T0; fails if either did not happen.
partition_watch() {
	local viewer=$1 host=$2 pid=$3 t0=$4 limit=$5
	gone_ms='' dead_ms=''
	while [ $(($(ms_now) - t0)) -lt "$limit" ]; do
		if [ -z "$gone_ms" ] && key_gone "$viewer" "$host"; then gone_ms=$(($(ms_now) - t0)); fi
		if [ -z "$dead_ms" ] && { [ ! -d "/proc/$pid" ] || grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; }; then
			dead_ms=$(($(ms_now) - t0))
		fi
		[ -n "$gone_ms" ] && [ -n "$dead_ms" ] && break
		sleep 0.05
	done
	[ -n "$dead_ms" ] || fail "QEMU $pid on the partitioned $host still runs: $(L ferryd "$host" log | grep fence | tail -3)"
	[ -n "$gone_ms" ] || fail "$viewer still sees the partitioned $host's alive key"
}

# quarantined VIEWER HOST VM: waits up to 10 s for HOST's quarantined copy of
# VM, as `ferry quarantine` on VIEWER lists it; prints its entry (JSON).
quarantined() {
	local i q=''
	for ((i = 0; i < 100; i++)); do
		q=$(L exec "$1" ferry -j quarantine | jq -c --arg h "$2" --arg v "$3" '.[] | select(.vm == $v and .host == $h)')
		[ -n "$q" ] && break
		sleep 0.1
	done
	[ -n "$q" ] || fail "$2's copy of $3 is not in quarantine: $(L ferryd "$2" log | grep -E 'stale|quarantine' | tail -3)"
	echo "$q"
}
