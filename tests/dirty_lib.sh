# tests/dirty_lib.sh: sourced by tests/dirty-*.sh after tests/lib.sh.
#
# A scratch directory, the dirty tracker's test driver as a coprocess
# (build/tests/dirty-drain: track, then drain on command), and the oracle
# that compares a drained set with fio's own write log.

need_root
[ -r /sys/kernel/btf/vmlinux ] || skip "no kernel BTF (/sys/kernel/btf/vmlinux)"
DIRTY_DRAIN=$BUILD/tests/dirty-drain
DIRTY_ORACLE=$BUILD/tests/dirty-oracle
DIRTY_STRESS=$BUILD/tests/dirty-stress
for _b in "$DIRTY_DRAIN" "$DIRTY_ORACLE" "$DIRTY_STRESS" "$FERRY_BIN/ferry-dirty"; do
	[ -x "$_b" ] || fail "$_b missing (run make)"
done

DIRTY_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/ferry-dirty.XXXXXX")
cleanup_push "rm -rf '$DIRTY_TMP'"
_drainer=0

# tracker_up [-g GRAN] [-P PIN_DIR] PATH...: track PATHs in a dirty-drain
# coprocess (stopped on exit).  Drains go to $DIRTY_TMP/drained.N.
tracker_up() {
	_drainer=$((_drainer + 1))
	coproc DRAINER { exec "$DIRTY_DRAIN" "$@" 2>"$DIRTY_TMP/drainer.$_drainer.err"; }
	DRAINER_OUT=${DRAINER[0]}
	DRAINER_IN=${DRAINER[1]}
	cleanup_push "tracker_down"
	local line=
	read -r -t 30 line <&"$DRAINER_OUT" || true
	[ "$line" = '{"ready":true}' ] ||
		fail "tracker did not start: $line $(cat "$DIRTY_TMP/drainer.$_drainer.err")"
}

# tracker_drain FILE: drain every tracked disk, append their JSON to FILE.
tracker_drain() {
	local n=${TRACKED:-1} line i
	echo drain >&"$DRAINER_IN"
	for ((i = 0; i < n; i++)); do
		read -r -t 60 line <&"$DRAINER_OUT" || fail "tracker did not answer a drain"
		case $line in '{"error"'*) fail "drain: $line" ;; esac
		printf '%s\n' "$line" >>"$1"
	done
}

tracker_down() {
	[ -n "${DRAINER_PID:-}" ] || return 0
	echo quit >&"$DRAINER_IN" 2>/dev/null || true
	wait "$DRAINER_PID" 2>/dev/null || true
	unset DRAINER_PID
}

# oracle GRAN DRAINED LOG... [-- ORACLE-ARGS]: fail unless the drained set
# is exactly fio's writes rounded to GRAN (missed = 0, extra = 0).
oracle() {
	local gran=$1 drained=$2 res
	shift 2
	res=$("$DIRTY_ORACLE" -g "$gran" -d "$drained" "$@") ||
		fail "drained set differs from the write log: $res"
	log "oracle: $res"
	assert_eq "$(jq -r .rescan_needed <<<"$res")" false "rescan_needed"
	[ "$(jq -r .writes <<<"$res")" -gt 0 ] || fail "the write log is empty"
}

# fio_randwrite FILE|DEV LOG ENGINE [FIO-ARGS...]: random sizes and offsets.
fio_randwrite() {
	local target=$1 iolog=$2 engine=$3
	shift 3
	fio --name=dirty --filename="$target" --rw=randwrite --ioengine="$engine" \
		--randseed=$RANDOM$RANDOM --write_iolog="$iolog" --fallocate=none \
		--output-format=terse "$@" >"$DIRTY_TMP/fio.out" 2>&1 ||
		fail "fio $engine: $(tail -5 "$DIRTY_TMP/fio.out")"
}

# loop_up SIZE [LOSETUP-ARGS...]: a loop device on a new sparse file;
# loop_on FILE|DEV [LOSETUP-ARGS...]: one on something that exists.  The
# device's name is left in $LOOPDEV; it is detached on exit.
loop_up() {
	local back=$DIRTY_TMP/loop.$RANDOM.img
	truncate -s "$1" "$back"
	loop_on "$back" "${@:2}"
}
loop_on() {
	LOOPDEV=$(losetup -f --show "${@:2}" "$1") || fail "losetup $1 failed"
	cleanup_push "losetup -d '$LOOPDEV'"
}
