# tests/lib.sh: sourced by every tests/*.sh.
#
# A test prints what it does, exits 0 on pass, 77 on skip (missing kernel
# feature or tool only) and anything else on failure.  Register cleanup with
# `cleanup_push CMD`; it runs (last first) on any exit.
set -euo pipefail

FERRY_TOP=${FERRY_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BUILD=${BUILD:-$FERRY_TOP/build}
FERRY_BIN=${FERRY_BIN:-$BUILD/bin} # tests/run -S: the sanitized build
LAB=$FERRY_TOP/tools/ferry-lab
PATH=$FERRY_BIN:$PATH
export FERRY_TOP BUILD FERRY_BIN PATH

_cleanups=()
cleanup_push() { _cleanups+=("$*"); }
_run_cleanups() {
	local rc=$? i
	set +e
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[$i]}" >/dev/null 2>&1
	done
	exit $rc
}
trap _run_cleanups EXIT
trap 'exit 130' INT TERM
# A command that ends the test through set -e says which (fires exactly
# where errexit does; a bare "exit 141" from a pipe said nothing).
trap 'printf "FAIL: exit %s at %s line %s: %s\n" "$?" "${0##*/}" "$LINENO" "$BASH_COMMAND" >&2' ERR

log() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf 'SKIP %s\n' "$*"; exit 77; }

need_root() { [ "$(id -u)" = 0 ] || skip "needs root"; }
need_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || skip "needs $c"
	done
}

# need_lab_lvm: the LVM tools a lab's --lvm needs.  Without device-mapper in
# the kernel (CONFIG_BLK_DEV_DM) LVM cannot activate a volume: the lab then
# activates each LV as a loop device over its extents of the PV
# (tools/lab/lvm-loop), a stand-in for dm's linear target only; LVM's
# metadata, lvcreate/lvrename/lvremove and vgs are the real ones.  Says so.
need_lab_lvm() {
	need_cmd lvs losetup
	if ! grep -qw device-mapper /proc/misc 2>/dev/null && ! modprobe -q dm_mod 2>/dev/null; then
		log "no device-mapper in this kernel: LVs are activated by the lab's stand-in (tools/lab/lvm-loop)"
	fi
}

assert_eq() { # assert_eq GOT WANT WHAT
	[ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}
assert_ne() {
	[ "$1" != "$2" ] || fail "$3: got '$1', must differ"
}
assert_le() { # assert_le A B WHAT   (integers)
	[ "$1" -le "$2" ] || fail "$3: $1 > $2"
}
assert_ge() {
	[ "$1" -ge "$2" ] || fail "$3: $1 < $2"
}
assert_gt() {
	[ "$1" -gt "$2" ] || fail "$3: $1 <= $2"
}
assert_contains() { # assert_contains HAYSTACK NEEDLE WHAT
	case "$1" in *"$2"*) ;; *) fail "$3: '$2' not in: $1" ;; esac
}
# expect_fail CMD...: the command must exit non-zero; its stderr is in $ERR.
expect_fail() {
	local rc=0
	ERR=$("$@" 2>&1 >/dev/null) || rc=$?
	[ $rc != 0 ] || fail "expected failure: $*"
}
# wait_for SECONDS CMD...: poll until CMD succeeds.
wait_for() {
	local t=$1 i
	shift
	for ((i = 0; i < t * 5; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# vm_left HOST VM: what of VM is left on HOST (domain, instance dir, transfer
# journals), one line each, or nothing.  Needs the test's L().
vm_left() {
	! L virsh "$1" dominfo "$2" >/dev/null 2>&1 || echo "$2 still defined on $1"
	L exec "$1" test ! -e "/var/lib/libvirt/images/$2" ||
		echo "$2's instance dir left on $1: $(L exec "$1" ls -A "/var/lib/libvirt/images/$2" | paste -sd' ')"
	[ -z "$(L exec "$1" ls /var/lib/ferry/xfer 2>/dev/null)" ] || echo "transfer journal left on $1"
}
vm_gone_now() { [ -z "$(vm_left "$1" "$2")" ]; }

# vm_gone HOST VM [WHY]: nothing of VM left on HOST, within 30 s (a
# destination whose abort call timed out tears down on its own, after the
# source has come to rest: the flows say "it will clean up when it asks");
# how long that took is logged.  Fails with what is left and HOST's log.
vm_gone() {
	local t0=$SECONDS
	if ! wait_for 30 vm_gone_now "$1" "$2"; then
		L ferryd "$1" log 2>&1 | tail -n 20 | sed 's/^/    /' >&2
		fail "${3:+$3: }$(vm_left "$1" "$2" | paste -sd';')"
	fi
	[ $((SECONDS - t0)) = 0 ] || log "$2 gone from $1 after $((SECONDS - t0)) s"
}
# test_lab_name: a lab name of at most 12 characters, unique among the tests
# running at once (tests/run -j): the test's name cut to 6, then its pid in
# base 36 (5 digits hold any pid_max).
test_lab_name() {
	local n=$$ id='' d=0123456789abcdefghijklmnopqrstuvwxyz
	while ((n)); do id=${d:n % 36:1}$id; n=$((n / 36)); done
	echo "t$(basename "$0" .sh | tr -cd 'a-z0-9' | cut -c1-6)$id"
}
# lab_up NAME [UP OPTIONS...]: `ferry-lab --lab NAME up ...`, with `down`
# registered as cleanup first (so a half-made lab goes too).
lab_up() {
	local name=$1
	shift
	cleanup_push "'$LAB' --lab '$name' down"
	"$LAB" --lab "$name" up "$@"
}
# lab_tcp_ok LAB HOST ADDR PORT: from HOST of LAB, a TCP connect to ADDR:PORT
# succeeds within 3 s.
lab_tcp_ok() {
	"$LAB" --lab "$1" exec "$2" timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$3" "$4" 2>/dev/null
}

# kv_get LINE KEY: the value of KEY=VALUE in a line of words ("" if absent),
# e.g. kv_get "VERIFY PASS blocks=3 seq=9" seq -> 9.
kv_get() {
	local w
	for w in $1; do
		case $w in "$2="*) echo "${w#*=}"; return 0 ;; esac
	done
	echo ""
}
