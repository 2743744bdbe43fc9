#!/bin/bash
# tests/bench/dirty.sh: what the eBPF dirty tracker costs a write-heavy
# workload.  fio 4 KiB random writes, IOPS with no tracker at all and with
# a tracker on the target (drained every second, as ferryd does while it
# pre-copies), on a file (page cache; O_DIRECT with pwritev as QEMU's
# aio=threads does; libaio) and on a loop device.  Runs come in pairs, off-on
# then on-off, so that drift in the machine's load hits both columns; the
# overhead is the median of the per-pair differences.  fio's own CPU time
# per write is shown too: it is far less sensitive than IOPS to other load
# on a shared machine.
#
# Last, the time the tracker's programs themselves take per event
# (kernel.bpf_stats_enabled during one more run of each target).
#
# Environment: DIRTY_BENCH_REPS (pairs, default 7), DIRTY_BENCH_SECS
# (seconds per run, default 2), DIRTY_BENCH_DIR (scratch, default /var/tmp).
set -u
cd "$(dirname "$0")/../.."
top=$(pwd)
reps=${DIRTY_BENCH_REPS:-7}
secs=${DIRTY_BENCH_SECS:-2}
drain=$top/build/tests/dirty-drain
[ "$(id -u)" = 0 ] || { echo "dirty: needs root (skipped)"; exit 0; }
[ -x "$drain" ] || { echo "dirty: $drain missing (make)"; exit 1; }
command -v fio >/dev/null || { echo "dirty: needs fio (skipped)"; exit 0; }

tmp=$(mktemp -d "${DIRTY_BENCH_DIR:-/var/tmp}/ferry-bench-dirty.XXXXXX")
loop=
trk=
cleanup() {
	[ -n "$trk" ] && kill "$trk" 2>/dev/null && wait "$trk" 2>/dev/null
	[ -n "$loop" ] && losetup -d "$loop"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

img=$tmp/disk.img
truncate -s 1G "$img"
dd if=/dev/zero of="$img" bs=1M count=1024 conv=notrunc status=none # allocated
back=$tmp/loop.img
truncate -s 1G "$back"
dd if=/dev/zero of="$back" bs=1M count=1024 conv=notrunc status=none
loop=$(losetup -f --show "$back")
sync

tracker_on() { # TARGET: start a tracker, drained every second until tracker_off
	mkfifo "$tmp/ctl"
	"$drain" -g 64k "$1" <"$tmp/ctl" >"$tmp/trk.out" 2>"$tmp/trk.err" &
	trk=$!
	exec 5>"$tmp/ctl"
	rm -f "$tmp/ctl"
	for _ in $(seq 100); do
		grep -q ready "$tmp/trk.out" 2>/dev/null && break
		sleep 0.1
	done
	grep -q ready "$tmp/trk.out" || { echo "dirty: tracker: $(cat "$tmp/trk.err")"; exit 1; }
	(while sleep 1; do echo drain >&5 || exit 0; done) &
	ticker=$!
}
tracker_off() {
	kill "$ticker" 2>/dev/null
	wait "$ticker" 2>/dev/null
	echo quit >&5
	exec 5>&-
	wait "$trk"
	trk=
	: >"$tmp/trk.out"
}

run() { # TARGET FIO-ARGS...: "IOPS CPU-ns-per-write" of one run (fio's own CPU)
	local target=$1
	shift
	fio --name=bench --filename="$target" --rw=randwrite --bs=4k --size=1G \
		--runtime="$secs" --time_based --ramp_time=1 --randrepeat=0 \
		--output-format=json "$@" 2>/dev/null |
		jq -r '.jobs[0] | "\(.write.iops | floor) \((.usr_cpu + .sys_cpu) * 10000 *
			.job_runtime / .write.total_ios | floor) \(.write.total_ios)"'
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a - b) * 100 / a }'; }

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

row() { # LABEL TARGET FIO-ARGS...
	local label=$1 target=$2 i off on offs=() ons=() pcts=() coff=() con=() cpcts=()
	shift 2
	for ((i = 0; i < reps; i++)); do
		# off-on, then on-off: a steady drift in load cancels out in pairs
		if ((i % 2 == 0)); then
			off=($(run "$target" "$@"))
			tracker_on "$target"
			on=($(run "$target" "$@"))
			tracker_off
		else
			tracker_on "$target"
			on=($(run "$target" "$@"))
			tracker_off
			off=($(run "$target" "$@"))
		fi
		offs+=("${off[0]}") ons+=("${on[0]}") coff+=("${off[1]}") con+=("${on[1]}")
		pcts+=("$(pct "${off[0]}" "${on[0]}")")
		cpcts+=("$(pct "${on[1]}" "${off[1]}")")
	done
	printf '%-34s %9s %9s %8s%%  %7s %7s %8s%%\n' "$label" \
		"$(printf '%s\n' "${offs[@]}" | median)" "$(printf '%s\n' "${ons[@]}" | median)" \
		"$(printf '%s\n' "${pcts[@]}" | median)" \
		"$(printf '%s\n' "${coff[@]}" | median)" "$(printf '%s\n' "${con[@]}" | median)" \
		"$(printf '%s\n' "${cpcts[@]}" | median)"
	echo "    per pair, IOPS lost %: ${pcts[*]}; fio CPU added %: ${cpcts[*]}" >>"$tmp/pairs"
}

others=$(bpftool prog show 2>/dev/null | grep -c 'name dirty_pwrite64_exit')
echo "fio 4 KiB random writes, ${secs} s per run, $reps pairs (off-on, on-off), tracker at 64 KiB"
echo "granularity drained every second; other dirty trackers loaded: $others"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %9s %9s %9s  %7s %7s %9s\n' "target, engine" "IOPS off" "IOPS on" "lost" \
	"ns/w off" "ns/w on" "added"
: >"$tmp/pairs"
row "file, psync (page cache)" "$img" --ioengine=psync
row "file, pvsync O_DIRECT (QEMU's way)" "$img" --ioengine=pvsync --direct=1
row "file, libaio O_DIRECT qd16" "$img" --ioengine=libaio --direct=1 --iodepth=16
row "loop device, psync O_DIRECT" "$loop" --ioengine=psync --direct=1
row "loop device, libaio O_DIRECT qd16" "$loop" --ioengine=libaio --direct=1 --iodepth=16
# progcost LABEL "PROGS" TARGET FIO-ARGS...: one more tracked run with
# bpf_stats on: the time per run of the programs each write of this kind
# goes through (PROGS, without their dirty_ prefix), summed, beside fio's
# own CPU per write in the same run: both under the same load, so their
# ratio is steadier than IOPS.  Other writers on the host run the same
# programs; only the time per run is used, not the count.
progcost() {
	local label=$1 progs=$2 target=$3 first was r stats
	shift 3
	first=$(bpftool -j prog show 2>/dev/null | jq '[.[].id] | max // 0')
	was=$(sysctl -n kernel.bpf_stats_enabled)
	tracker_on "$target"
	sysctl -qw kernel.bpf_stats_enabled=1
	r=($(run "$target" "$@"))
	sysctl -qw kernel.bpf_stats_enabled="$was"
	stats=$(bpftool -j prog show | jq -r --argjson first "$first" --arg progs "$progs" '
		($progs | split(" ") | map("dirty_" + .)) as $want |
		[.[] | select(.id > $first and (.name as $n | $want | index($n)) and
			(.run_cnt // 0) > 0)] |
		"\(map(.run_time_ns / .run_cnt) | add | floor) " +
		(map("\(.name | ltrimstr("dirty_")) \(.run_time_ns / .run_cnt | floor)") | join(" + "))')
	printf '%-34s %9s %9s %8s%%   %s\n' "$label" "${stats%% *}" "${r[1]}" \
		"$(awk -v a="${stats%% *}" -v b="${r[1]}" 'BEGIN { printf "%.2f", a * 100 / b }')" \
		"${stats#* }"
	tracker_off
}
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "(medians; lost = IOPS lost with the tracker, ns/w = fio's own CPU per write,"
echo " added = CPU per write added; block completion work of the loop device runs"
echo " in its kernel thread, outside fio's CPU)"
cat "$tmp/pairs"
echo
echo "CPU per write in the programs a write goes through (bpf_stats, which adds ~50 ns"
echo "a run of its own; tracepoint dispatch not included), against fio's CPU per write:"
printf '%-34s %9s %9s %9s   %s\n' "target, engine" "prog ns/w" "fio ns/w" "share" \
	"programs (ns per run)"
progcost "file, psync (page cache)" "pwrite64_exit" "$img" --ioengine=psync
progcost "file, pvsync O_DIRECT (QEMU's way)" "pwritev_exit dio_complete" "$img" \
	--ioengine=pvsync --direct=1
progcost "file, libaio O_DIRECT qd16" "io_submit_exit dio_complete" "$img" --ioengine=libaio \
	--direct=1 --iodepth=16
progcost "loop device, psync O_DIRECT" "pwrite64_exit rq_complete" "$loop" --ioengine=psync \
	--direct=1
progcost "loop device, libaio O_DIRECT qd16" "io_submit_exit rq_complete" "$loop" \
	--ioengine=libaio --direct=1 --iodepth=16
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
