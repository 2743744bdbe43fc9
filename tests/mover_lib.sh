# tests/mover_lib.sh: sourced by tests/mover-*.sh after tests/lib.sh.
#
# A lab of two hosts (real TCP between network namespaces), a scratch
# directory both hosts see (/var/tmp is shared by the lab's hosts), a
# receiver (`ferry-copy --serve`) on h2 and helpers to copy from h1.

need_root
need_cmd jq python3
[ -x "$FERRY_BIN/ferry-copy" ] || fail "build/bin/ferry-copy missing (run make)"

MOVER_TMP=$(mktemp -d /var/tmp/ferry-mover.XXXXXX)
cleanup_push "rm -rf '$MOVER_TMP'"
TOKEN=$MOVER_TMP/token
ROOT=$MOVER_TMP/root
mkdir -p "$ROOT"
_serves=0

# mover_lab_up: lab with h1, h2 (removed on exit).
mover_lab_up() {
	LABN=$(test_lab_name)
	"$LAB" --lab "$LABN" up >/dev/null || fail "ferry-lab up failed"
	cleanup_push "'$LAB' --lab '$LABN' down"
}

on() { # on HOST CMD...: run CMD inside a lab host
	local h=$1
	shift
	"$LAB" --lab "$LABN" exec "$h" "$@"
}

# mover_serve [ARGS...]: a receiver on h2 serving $ROOT; sets SERVE_PID and
# SERVE_LOG (its stdout+stderr).  Extra ARGS go to ferry-copy --serve;
# SERVE_ENV (VAR=VALUE words) goes to its environment.
mover_serve() {
	SERVE_LOG=$MOVER_TMP/serve.$((++_serves)).log
	# Not through on(): $! must be ferry-copy itself (exec all the way).
	# shellcheck disable=SC2086
	"$LAB" --lab "$LABN" exec h2 env ${SERVE_ENV:-} ferry-copy --serve --listen :4790 \
		--root "$ROOT" --token-file "$TOKEN" "$@" >"$SERVE_LOG" 2>&1 &
	SERVE_PID=$!
	cleanup_push "kill -9 $SERVE_PID 2>/dev/null"
	wait_for 10 grep -q '^listening' "$SERVE_LOG" || fail "receiver did not start: $(cat "$SERVE_LOG")"
}

# mover_serve_stop: SIGTERM the receiver and wait for it.
mover_serve_stop() {
	kill "$SERVE_PID" 2>/dev/null || true
	wait "$SERVE_PID" 2>/dev/null || true
}

# send SRC NAME [OPTS...]: copy SRC from h1 to ferry://h2/NAME; -j summary
# in $OUT.
send() {
	local src=$1 name=$2
	shift 2
	OUT=$(on h1 ferry-copy -j --token-file "$TOKEN" "$@" "$src" "ferry://h2/$name") ||
		fail "ferry-copy $src -> h2/$name: ${OUT:-no output}"
}

# j KEY: a field of the last summary.
j() { jq -r ".$1" <<<"$OUT"; }

# digest FILE: content digest (holes and zeros alike) and size.
digest() { ferry-copy -j --checksum "$1" | jq -r '.files[0] | "\(.digest) \(.size_bytes)"'; }

alloc_kib() { du -k "$1" | cut -f1; }

# same FILE1 FILE2 WHAT: byte-identical (cmp, and the digest agrees).
same() {
	local a b
	cmp "$1" "$2" >/dev/null || fail "$3: $2 differs from $1"
	a=$(digest "$1")
	b=$(digest "$2")
	case $a in [0-9a-f]*" "[0-9]*) ;; *) fail "no digest of $1: '$a'" ;; esac
	assert_eq "$b" "$a" "$3: digest"
}

# faultfs: the LD_PRELOAD shim that fails chosen disk calls (tests/helpers).
FAULTFS=$BUILD/tests/libfaultfs.so

# wire SCENARIO PATH IMAGE_BYTES: a scripted peer (tests/mover_wire.py
# script) from h1; its words in $OUT; fails the test if the receiver went
# along.
wire() {
	local rc=0
	OUT=$(on h1 python3 "$FERRY_TOP/tests/mover_wire.py" script h2 4790 "$TOKEN" "$2" "$3" "$1") ||
		rc=$?
	log "$1: $OUT"
	[ $rc = 0 ] || fail "$1: the receiver went along (rc $rc): $OUT"
}
