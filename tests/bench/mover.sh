#!/bin/bash
# tests/bench/mover.sh: ferry-copy beside the tools operators use today, on
# the same images and the same link between two ferry-lab hosts (h1 -> h2).
#
# Images (tests/bench/mkimage.c, built once and cached under
# $FERRY_BENCH_DIR, default /var/tmp/ferry-bench), each made of slots
# cycling through zeros (allocated), text, binary records and random bytes:
#   1m    1 MiB, all allocated          64m   64 MiB, all allocated
#   2g    2 GiB virtual, 384 MiB allocated
#   16g   16 GiB virtual, 4 GiB allocated (3 GiB of it non-zero)
# Links: unshaped, 10gbit, 1gbit (tbf on the lab's links).
# Tools, each with a receiver on h2 and a sender on h1:
#   ferry        ferry-copy --serve --once  <-  ferry-copy (defaults)
#   ferry-auto3  the same with --compress auto:3 (levels 3 and -3 only, as
#                before the level ladder); not in the default set
#   floor        tests/helpers/floor: sendfile of the non-zero extents
#                (found before the run) -> splice into the file, fdatasync;
#                no checksums: the least any tool must do
#   nbdcopy      nbdkit file plugin         <-  nbdcopy --destination-is-zero
#   qemu-img     nbdkit file plugin         <-  qemu-img convert -n --target-is-zero
#   rsync        rsync --daemon             <-  rsync --sparse
#   tar-zstd-nc  nc -l | zstd -d | tar -xS  <-  tar -cS | zstd -1 -T0 | nc
# The round row (16g): a final delta's shape, 4 MiB in 64 KiB pieces
# scattered over the image, sent as the second round of a ferry-copy
# --rounds session (connections, HELLO and journal already there; the
# round's own time from its summary) beside the floor for the same ranges.
# Measured per run (same for every tool):
#   wall s   sender start until the receiver is done and the destination
#            is on disk (sync -f; ferry-copy and floor sync by themselves)
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
# tool's best of its runs (16g: FERRY_BENCH_REPS, default 2, tools slower
# than 20 s once; 2g: 3; 64m and 1m: 7) and alternates the tools' order.
# "ideal" is the non-zero bytes at the rate iperf3 measures on that link.
#
# Environment: FERRY_BENCH_DIR, FERRY_BENCH_IMAGES (default
# "1m 64m 2g 16g"), FERRY_BENCH_LINKS (default "none 10gbit 1gbit"),
# FERRY_BENCH_TOOLS (default all six), FERRY_BENCH_REPS,
# FERRY_BENCH_MAXLOAD (default 2.0), FERRY_BENCH_MAXWAIT (default 60).
set -euo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
bin=$top/build/bin
LAB=$top/tools/ferry-lab
dir=${FERRY_BENCH_DIR:-/var/tmp/ferry-bench}
links=${FERRY_BENCH_LINKS:-none 10gbit 1gbit}
images=${FERRY_BENCH_IMAGES:-1m 64m 2g 16g}
tools=${FERRY_BENCH_TOOLS:-ferry floor nbdcopy qemu-img rsync tar-zstd-nc}
reps16=${FERRY_BENCH_REPS:-2}
floor=$top/build/tests/floor
floor_conns=${FERRY_BENCH_FLOOR_CONNS:-8}
maxload=${FERRY_BENCH_MAXLOAD:-2.0}
maxwait=${FERRY_BENCH_MAXWAIT:-60}
lab=fbench$$

[ "$(id -u)" = 0 ] || { echo "mover: needs root (skipped)"; exit 0; }
[ -x "$bin/ferry-copy" ] && [ -x "$floor" ] || { echo "mover: build/ missing ferry-copy or floor (make)"; exit 1; }
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

mib() { echo "scale=2; $1 / 1048576" | bc | sed 's/^\./0./'; }

# --- the images, built once ---------------------------------------------------
# image_make NAME: sets img (the file), want (its digest), nonzero (bytes),
# ranges (its non-zero extents, for the floor); builds what is missing.
image_make() {
	local virt alloc
	case $1 in
	1m) virt=1M alloc=1M img=$dir/image-1m-v1.img ;;
	64m) virt=64M alloc=64M img=$dir/image-64m-v1.img ;;
	2g) virt=2G alloc=384M img=$dir/image-2g-v1.img ;;
	16g) virt=16 alloc=4 img=$dir/image-v1.img ;;
	*) echo "mover: unknown image $1"; exit 1 ;;
	esac
	[ -x "$work/mkimage" ] || gcc -O2 -o "$work/mkimage" tests/bench/mkimage.c
	if [ ! -s "$img.digest" ]; then
		echo "building the image $img (once)..."
		"$work/mkimage" "$img.tmp" $virt $alloc
		mv "$img.tmp" "$img"
		"$bin/ferry-copy" --checksum "$img" | cut -d' ' -f1 >"$img.digest"
	fi
	[ -s "$img.ranges" ] || "$floor" ranges "$img" >"$img.ranges"
	ranges=$img.ranges
	want=$(cat "$img.digest")
	nonzero=$(awk '{n += $2} END {printf "%.0f", n}' "$ranges")
	echo
	echo "## image $1: $img, $(mib "$(stat -c %s "$img")") MiB virtual," \
		"$(mib "$(($(du -k "$img" | cut -f1) << 10))") MiB allocated, $(mib "$nonzero") MiB non-zero," \
		"digest $want"
}

"$LAB" --lab "$lab" up >/dev/null
h2=$("$LAB" --lab "$lab" addr h2)
# Inside a host: nsenter into a process that stays in its namespaces, not
# `ferry-lab exec` (a script: tens of ms, a 1 MiB copy's whole time).
ns_holder() { # ns_holder HOST: NSPID, a sleep in HOST's namespaces
	local i
	"$LAB" --lab "$lab" exec "$1" sleep infinity >/dev/null 2>&1 &
	NSPID=$!
	pids+=("$NSPID")
	for ((i = 0; i < 100; i++)); do
		[ "$(readlink /proc/$NSPID/ns/net)" = "$(readlink /proc/self/ns/net)" ] || return 0
		sleep 0.05
	done
	echo "mover: could not enter $1's namespaces" >&2
	exit 1
}
ns_holder h1
h1pid=$NSPID
ns_holder h2
h2pid=$NSPID
NS1=(nsenter -t "$h1pid" -n -m -u --wd=/ --)
NS2=(nsenter -t "$h2pid" -n -m -u --wd=/ --)
on() { local h=$1; shift; if [ "$h" = h1 ]; then "${NS1[@]}" "$@"; else "${NS2[@]}" "$@"; fi; }
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
	ferry | ferry-auto3)
		DST=$dst/disk.img
		in_cg recv "${NS2[@]}" "$bin/ferry-copy" --serve --once --listen :4790 \
			--root "$dst" --token-file "$work/token" >"$work/recv.log" 2>&1 &
		wait_port 4790 ;;
	floor)
		DST=$dst/disk.img
		truncate -s "$(stat -c %s "$img")" "$DST"
		in_cg recv "${NS2[@]}" "$floor" recv 4791 "$DST" "$floor_conns" \
			>"$work/recv.log" 2>&1 &
		wait_port 4791 ;;
	nbdcopy | qemu-img)
		DST=$dst/disk.img
		truncate -s "$(stat -c %s "$img")" "$DST"
		in_cg recv "${NS2[@]}" nbdkit -f -i "$h2" -p 10809 file "$DST" \
			>"$work/recv.log" 2>&1 &
		wait_port 10809 ;;
	rsync)
		DST=$dst/disk.img
		in_cg recv "${NS2[@]}" rsync --daemon --no-detach --port=8873 \
			--address="$h2" --config="$work/rsyncd.conf" >"$work/recv.log" 2>&1 &
		wait_port 8873 ;;
	tar-zstd-nc)
		DST=$dst/$(basename "$img")
		in_cg recv "${NS2[@]}" bash -c \
			"nc -l -p 5000 | zstd -d -q | tar -x -S -C '$dst'" >"$work/recv.log" 2>&1 &
		wait_port 5000 ;;
	esac
	RECV=$!
	pids+=("$RECV")
}
send() {
	case $1 in
	ferry) in_cg send "${NS1[@]}" "$bin/ferry-copy" -j --token-file "$work/token" \
		"$img" ferry://h2/disk.img >"$work/ferry.json" ;;
	ferry-auto3) in_cg send "${NS1[@]}" "$bin/ferry-copy" -j --token-file "$work/token" \
		--compress auto:3 "$img" ferry://h2/disk.img >"$work/ferry.json" ;;
	floor) in_cg send "${NS1[@]}" "$floor" send h2:4791 "$img" "$ranges" "$floor_conns" ;;
	nbdcopy) in_cg send "${NS1[@]}" nbdcopy --destination-is-zero "$img" \
		"nbd://h2:10809" ;;
	qemu-img) in_cg send "${NS1[@]}" qemu-img convert -n --target-is-zero \
		-f raw -O raw "$img" "nbd://h2:10809" ;;
	rsync) in_cg send "${NS1[@]}" rsync --sparse "$img" \
		"rsync://h2:8873/bench/disk.img" ;;
	tar-zstd-nc) in_cg send "${NS1[@]}" bash -c \
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
	# The clock stops once the destination is on disk: a receiver's own
	# stop is not the copy's time (a daemon's, or the exit of a process
	# whose sender returned only once it had synced: ferry, floor).
	case $t in
	ferry | ferry-auto3 | floor | nbdcopy | qemu-img | rsync)
		in_cg recv "${NS2[@]}" sync -f "$DST"
		t1=$(date +%s%N)
		recv_stop "$t" ;;
	*)
		recv_stop "$t"
		in_cg recv "${NS2[@]}" sync -f "$DST"
		t1=$(date +%s%N) ;;
	esac
	w1=$(tx_bytes)
	got=$("$bin/ferry-copy" --checksum "$DST" | cut -d' ' -f1)
	R_WALL=$(echo "scale=4; ($t1 - $t0) / 1000000000" | bc)
	R_CPU=$(echo "scale=2; ($(cg_ns send) + $(cg_ns recv)) / 1000000000" | bc)
	R_WIRE=$(mib $((w1 - w0)))
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

# round LINK: the 16g image's final-delta row.  Two rounds of 64 pieces
# of 64 KiB each, scattered; the second is timed (its summary's wall_us),
# then the floor sends the second round's ranges.
round_ranges() { # round_ranges SEED: 64 pieces of 64 KiB inside the non-zero extents
	awk -v seed="$1" 'BEGIN {srand(seed)} {o[NR] = $1; l[NR] = $2}
		END {for (i = 0; i < 64; i++) {
			do k = int(rand() * NR) + 1; while (l[k] < 65536)
			printf "%d 65536\n", o[k] + int(rand() * int(l[k] / 65536)) * 65536 }}' "$ranges" |
		sort -n -u
}
round() {
	local f fus nus ms
	round_ranges 1 >"$work/round.a"
	round_ranges 2 >"$work/round.b"
	{ cat "$work/round.a"; echo round; cat "$work/round.b"; } >"$work/rounds"
	F_US=() N_US=()
	for ((rep = 1; rep <= 5; rep++)); do
		rm -rf "${dst:?}"/* "$dst"/.ferry
		quiet
		recv_start ferry
		in_cg send "${NS1[@]}" "$bin/ferry-copy" -j --token-file "$work/token" \
			--rounds "$work/rounds" "$img" ferry://h2/disk.img >"$work/round.json" ||
			{ echo "mover: round failed"; recv_stop ferry; return 1; }
		recv_stop ferry
		fus=$(jq -s '.[1].wall_us' "$work/round.json")
		rm -rf "${dst:?}"/* "$dst"/.ferry
		recv_start floor
		nus=$(in_cg send "${NS1[@]}" "$floor" send h2:4791 "$img" "$work/round.b" "$floor_conns" |
			jq .wall_us)
		recv_stop floor
		F_US+=("$fus") N_US+=("$nus")
	done
	f=$(printf '%s\n' "${F_US[@]}" | sort -n | head -1)
	n=$(printf '%s\n' "${N_US[@]}" | sort -n | head -1)
	echo
	echo "round (4 MiB in 64 KiB pieces over an open session), best of 5:" \
		"ferry ${f} us (runs: ${F_US[*]}), floor ${n} us (runs: ${N_US[*]})"
	line="${link/none/unshaped} round: ferry $(echo "scale=2; $f / 1000" | bc) ms,"
	line+=" floor $(echo "scale=2; $n / 1000" | bc) ms: $(echo "scale=2; $f / $n" | bc)x the floor"
	summary+=("$line")
}

summary=()
for image in $images; do
image_make "$image"
case $image in
16g) reps=$reps16 ;;
2g) reps=3 ;;
*) reps=7 ;;
esac
for link in $links; do
	"$LAB" --lab "$lab" shape --rate "$link" >/dev/null
	bps=$(link_rate)
	ideal=$(echo "scale=4; $nonzero * 8 / $bps" | bc)
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
	echo "image $image, link ${link/none/unshaped}, iperf3 $(echo "scale=2; $bps / 1000000000" | bc) Gbit/s;" \
		"ideal for $(mib "$nonzero") MiB of non-zero data: ${ideal} s"
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
		[[ $t != ferry* ]] && [ "$t" != floor ] && [ -n "${WALL[$t]:-}" ] || continue
		if [ -z "$best" ] || [ "$(echo "${WALL[$t]} < $best" | bc)" = 1 ]; then
			best=${WALL[$t]} bestt=$t
		fi
	done
	if [ -n "${WALL[ferry]:-}" ] && [ -n "$best" ]; then
		line="$image ${link/none/unshaped}: ferry ${WALL[ferry]} s (${WIRE[ferry]} MiB),"
		line+=" best reference $bestt $best s (${WIRE[$bestt]} MiB):"
		line+=" $(echo "scale=2; $best / ${WALL[ferry]}" | bc)x faster"
		[ -z "${WALL[nbdcopy]:-}" ] || [ "$bestt" = nbdcopy ] ||
			line+=", nbdcopy ${WALL[nbdcopy]} s: $(echo "scale=2; ${WALL[nbdcopy]} / ${WALL[ferry]}" | bc)x"
		[ -z "${WALL[floor]:-}" ] ||
			line+="; floor ${WALL[floor]} s: ferry $(echo "scale=2; ${WALL[ferry]} / ${WALL[floor]}" | bc)x the floor"
		echo
		echo "$line"
		summary+=("$line")
	fi
	[ "$image" != 16g ] || round
done
done
echo
echo "summary (load $(cut -d' ' -f1-3 /proc/loadavg)):"
printf '  %s\n' "${summary[@]}"
