#!/bin/bash
# tests/bench/mover.sh: ferry-copy beside the tools operators use today, on
# the same image and the same link between two ferry-lab hosts (h1 -> h2).
#
# The image (tests/bench/mkimage.c, built once and cached under
# $FERRY_BENCH_DIR, default /var/tmp/ferry-bench): 16 GiB virtual, 4 GiB
# allocated -- a quarter zeros, a quarter text, a quarter binary records, a
# quarter random.  Links: unshaped, 10gbit, 1gbit (tbf on the lab's links).
# Tools, each with a receiver on h2 and a sender on h1:
#   ferry        ferry-copy --serve --once  <-  ferry-copy (defaults)
#   nbdcopy      nbdkit file plugin         <-  nbdcopy --destination-is-zero
#   qemu-img     nbdkit file plugin         <-  qemu-img convert -n --target-is-zero
#   rsync        rsync --daemon             <-  rsync --sparse
#   tar-zstd-nc  nc -l | zstd -d | tar -xS  <-  tar -cS | zstd -1 -T0 | nc
# Measured per run (same for every tool):
#   wall s   sender start until the receiver is done and the destination
#            is on disk (sync -f; ferry-copy fsyncs by itself)
#   cpu s    user+sys of everything on both sides: each side runs in a
#            cpuacct cgroup of its own (children and threads included)
#   wire MiB bytes sent by h1's eth0 (the kernel's counter: headers and
#            all), during the run
#   digest   the destination's content digest must equal the source's
#            (a run that differs is reported and not counted)
# The source's data is in the page cache before every run (read once),
# the destination is a new file, dirty pages are flushed between runs.
# This machine is shared: before each run the bench waits (up to
# FERRY_BENCH_MAXWAIT s) for the 1-minute load to fall under
# FERRY_BENCH_MAXLOAD, prints the load each run started at, keeps each
# tool's best of FERRY_BENCH_REPS runs (default 2; tools slower than 20 s
# run once) and alternates the tools' order between runs.
# "ideal" is the allocated non-zero bytes (3 GiB) at the rate iperf3
# measures on that link.
#
# Environment: FERRY_BENCH_DIR, FERRY_BENCH_LINKS (default
# "none 10gbit 1gbit"), FERRY_BENCH_TOOLS (default all five),
# FERRY_BENCH_REPS, FERRY_BENCH_MAXLOAD (default 2.0), FERRY_BENCH_MAXWAIT
# (default 60).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
bin=$top/build/bin
LAB=$top/tools/ferry-lab
dir=${FERRY_BENCH_DIR:-/var/tmp/ferry-bench}
links=${FERRY_BENCH_LINKS:-none 10gbit 1gbit}
tools=${FERRY_BENCH_TOOLS:-ferry nbdcopy qemu-img rsync tar-zstd-nc}
reps=${FERRY_BENCH_REPS:-2}
maxload=${FERRY_BENCH_MAXLOAD:-2.0}
maxwait=${FERRY_BENCH_MAXWAIT:-60}
lab=fbench$$
img=$dir/image-v1.img
nonzero=$((3 << 30))

[ "$(id -u)" = 0 ] || { echo "mover: needs root (skipped)"; exit 0; }
[ -x "$bin/ferry-copy" ] || { echo "mover: build/bin/ferry-copy missing (make)"; exit 1; }
for c in nbdkit nbdcopy qemu-img rsync zstd nc tar iperf3 jq; do
	command -v $c >/dev/null || { echo "mover: needs $c (skipped)"; exit 0; }
done
cg=/sys/fs/cgroup/cpuacct
[ -w $cg ] || { echo "mover: needs the cpuacct cgroup at $cg"; exit 1; }

mkdir -p "$dir"
work=$(mktemp -d "$dir/run.XXXXXX")
pids=()
cg_kill() { # cg_kill GROUP-DIR...: end every process in these groups (ours)
	local g p i
	for ((i = 0; i < 50; i++)); do
		p=$(cat "$@" 2>/dev/null | tr '\n' ' ')
		[ -n "${p// /}" ] || return 0
		# shellcheck disable=SC2086
		kill $([ $i -lt 30 ] || echo -9) $p 2>/dev/null
		sleep 0.2
	done
}
cleanup() {
	local p
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	cg_kill $cg/ferrybench-$$-*/cgroup.procs
	wait 2>/dev/null
	"$LAB" --lab "$lab" down >/dev/null 2>&1
	rmdir $cg/ferrybench-$$-* 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the image, built once ---------------------------------------------------
if [ ! -s "$img.digest" ] || [ "$(stat -c %s "$img" 2>/dev/null)" != $((16 << 30)) ]; then
	echo "building the image $img (once)..."
	gcc -O2 -o "$work/mkimage" tests/bench/mkimage.c
	"$work/mkimage" "$img.tmp" 16 4
	mv "$img.tmp" "$img"
	"$bin/ferry-copy" --checksum "$img" | cut -d' ' -f1 >"$img.digest"
fi
want=$(cat "$img.digest")
echo "image: $img, $(($(stat -c %s "$img") >> 30)) GiB virtual, $(($(du -k "$img" | cut -f1) >> 20)) GiB allocated, digest $want"

"$LAB" --lab "$lab" up >/dev/null
h2=$("$LAB" --lab "$lab" addr h2)
on() { local h=$1; shift; "$LAB" --lab "$lab" exec "$h" "$@"; }
openssl_token() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; echo; }
openssl_token >"$work/token"
chmod 600 "$work/token"
dst=$work/dst
mkdir -p "$dst"
cat >"$work/rsyncd.conf" <<EOF
[bench]
	path = $dst
	read only = false
	use chroot = false
	uid = root
	gid = root
EOF

# in_cg NAME CMD...: run CMD (exec) in this run's cpuacct cgroup NAME.
nrun=0
in_cg() {
	local g=$cg/ferrybench-$$-$nrun-$1
	shift
	mkdir -p "$g"
	bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$g" "$@"
}
cg_ns() { cat $cg/ferrybench-$$-$nrun-"$1"/cpuacct.usage 2>/dev/null || echo 0; }
tx_bytes() { on h1 cat /sys/class/net/eth0/statistics/tx_bytes; }
wait_port() { # wait_port PORT
	local i
	for ((i = 0; i < 100; i++)); do
		on h2 ss -Hltn "sport = :$1" | grep -q . && return 0
		sleep 0.1
	done
	echo "mover: nothing listens on h2:$1" >&2
	return 1
}

# recv_start TOOL / send TOOL / recv_stop: the five tools.  DST is the file
# the receiver writes.
recv_start() {
	case $1 in
	ferry)
		DST=$dst/disk.img
		in_cg recv "$LAB" --lab "$lab" exec h2 "$bin/ferry-copy" --serve --once --listen :4790 \
			--root "$dst" --token-file "$work/token" >"$work/recv.log" 2>&1 &
		wait_port 4790 ;;
	nbdcopy | qemu-img)
		DST=$dst/disk.img
		truncate -s 16G "$DST"
		in_cg recv "$LAB" --lab "$lab" exec h2 nbdkit -f -i "$h2" -p 10809 file "$DST" \
			>"$work/recv.log" 2>&1 &
		wait_port 10809 ;;
	rsync)
		DST=$dst/disk.img
		in_cg recv "$LAB" --lab "$lab" exec h2 rsync --daemon --no-detach --port=8873 \
			--address="$h2" --config="$work/rsyncd.conf" >"$work/recv.log" 2>&1 &
		wait_port 8873 ;;
	tar-zstd-nc)
		DST=$dst/$(basename "$img")
		in_cg recv "$LAB" --lab "$lab" exec h2 bash -c \
			"nc -l -p 5000 | zstd -d -q | tar -x -S -C '$dst'" >"$work/recv.log" 2>&1 &
		wait_port 5000 ;;
	esac
	RECV=$!
	pids+=("$RECV")
}
send() {
	case $1 in
	ferry) in_cg send "$LAB" --lab "$lab" exec h1 "$bin/ferry-copy" -j --token-file "$work/token" \
		"$img" ferry://h2/disk.img >"$work/ferry.json" ;;
	nbdcopy) in_cg send "$LAB" --lab "$lab" exec h1 nbdcopy --destination-is-zero "$img" \
		"nbd://h2:10809" ;;
	qemu-img) in_cg send "$LAB" --lab "$lab" exec h1 qemu-img convert -n --target-is-zero \
		-f raw -O raw "$img" "nbd://h2:10809" ;;
	rsync) in_cg send "$LAB" --lab "$lab" exec h1 rsync --sparse "$img" \
		"rsync://h2:8873/bench/disk.img" ;;
	tar-zstd-nc) in_cg send "$LAB" --lab "$lab" exec h1 bash -c \
		"tar -c -S -C '$(dirname "$img")' -f - '$(basename "$img")' | zstd -1 -T0 -q | nc -N h2 5000" ;;
	esac
}
recv_stop() { # daemons are stopped; the others end with the stream
	case $1 in
	nbdcopy | qemu-img | rsync) cg_kill "$cg/ferrybench-$$-$nrun-recv/cgroup.procs" ;;
	esac
	wait "$RECV" 2>/dev/null || true
}

# quiet: before a run, wait (at most $maxwait s) for the machine's 1-minute
# load to fall under $maxload -- it is shared, and others' guests run.
quiet() {
	local i
	for ((i = 0; i < maxwait; i += 5)); do
		[ "$(echo "$(cut -d' ' -f1 /proc/loadavg) < $maxload" | bc)" = 1 ] && return
		sleep 5
	done
}

run() { # run TOOL: one measured copy; sets R_WALL R_CPU R_WIRE R_LOAD, or fails
	local t=$1 t0 t1 w0 w1 got
	rm -rf "${dst:?}"/* "$dst"/.ferry
	sync
	"$bin/ferry-copy" --checksum "$img" >/dev/null # the source's data in the page cache
	quiet
	nrun=$((nrun + 1))
	R_LOAD=$(cut -d' ' -f1 /proc/loadavg)
	recv_start "$t"
	w0=$(tx_bytes)
	t0=$(date +%s%N)
	if ! send "$t" >"$work/send.log" 2>&1; then
		echo "mover: $t failed: $(tail -1 "$work/send.log")"
		recv_stop "$t"
		return 1
	fi
	recv_stop "$t"
	in_cg recv "$LAB" --lab "$lab" exec h2 sync -f "$DST"
	t1=$(date +%s%N)
	w1=$(tx_bytes)
	got=$("$bin/ferry-copy" --checksum "$DST" | cut -d' ' -f1)
	R_WALL=$(echo "scale=2; ($t1 - $t0) / 1000000000" | bc)
	R_CPU=$(echo "scale=2; ($(cg_ns send) + $(cg_ns recv)) / 1000000000" | bc)
	R_WIRE=$(((w1 - w0) >> 20))
	if [ "$got" != "$want" ]; then
		echo "mover: $t: destination digest $got, want $want"
		return 1
	fi
}

# A tool's best run (lowest wall time) of up to $reps; slow ones (over
# 20 s: far behind anyway) run once.  Runs of a link alternate the tools'
# order, so that a change in the machine's load does not favour one.
declare -A WALL CPU WIRE LOADS RUNS
record() { # record TOOL
	local t=$1
	RUNS[$t]=$((${RUNS[$t]:-0} + 1))
	LOADS[$t]="${LOADS[$t]:+${LOADS[$t]}/}$R_LOAD"
	if [ -z "${WALL[$t]:-}" ] || [ "$(echo "$R_WALL < ${WALL[$t]}" | bc)" = 1 ]; then
		WALL[$t]=$R_WALL CPU[$t]=$R_CPU WIRE[$t]=$R_WIRE
	fi
}

link_rate() { # iperf3 h1 -> h2, bits/s
	on h2 iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
	pids+=("$!")
	wait_port 5201
	on h1 iperf3 -c h2 -p 5201 -t 3 -J | jq '.end.sum_received.bits_per_second | floor'
}

summary=()
for link in $links; do
	"$LAB" --lab "$lab" shape --rate "$link" >/dev/null
	bps=$(link_rate)
	ideal=$(echo "scale=2; $nonzero * 8 / $bps" | bc)
	WALL=() CPU=() WIRE=() LOADS=() RUNS=()
	order=$tools
	for ((rep = 1; rep <= reps; rep++)); do
		for t in $order; do
			[ "$rep" = 1 ] || { [ -n "${WALL[$t]:-}" ] &&
				[ "$(echo "${WALL[$t]} < 20" | bc)" = 1 ]; } || continue
			run "$t" && record "$t"
		done
		order=$(echo $order | tr ' ' '\n' | tac | tr '\n' ' ')
	done
	echo
	echo "link: ${link/none/unshaped}, iperf3 $(echo "scale=2; $bps / 1000000000" | bc) Gbit/s;" \
		"ideal for 3 GiB of non-zero data: ${ideal} s"
	echo
	echo "| tool        | wall s | cpu s  | wire MiB | runs | load at start |"
	echo "|-------------|--------|--------|----------|------|---------------|"
	for t in $tools; do
		[ -n "${WALL[$t]:-}" ] || { echo "| $t | failed | | | | |"; continue; }
		printf '| %-11s | %6s | %6s | %8s | %4s | %-13s |\n' "$t" "${WALL[$t]}" "${CPU[$t]}" \
			"${WIRE[$t]}" "${RUNS[$t]}" "${LOADS[$t]}"
	done
	best= bestt=
	for t in $tools; do
		[ "$t" != ferry ] && [ -n "${WALL[$t]:-}" ] || continue
		if [ -z "$best" ] || [ "$(echo "${WALL[$t]} < $best" | bc)" = 1 ]; then
			best=${WALL[$t]} bestt=$t
		fi
	done
	if [ -n "${WALL[ferry]:-}" ] && [ -n "$best" ]; then
		line="${link/none/unshaped}: ferry ${WALL[ferry]} s, best reference $bestt $best s:"
		line+=" $(echo "scale=2; $best / ${WALL[ferry]}" | bc)x faster;"
		line+=" ferry / ideal $(echo "scale=2; ${WALL[ferry]} / $ideal" | bc)"
		echo
		echo "$line"
		summary+=("$line")
	fi
done
echo
echo "summary (load $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  %s\n' "${summary[@]}"
