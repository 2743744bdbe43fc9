# shellcheck shell=bash
# tests/live_lib.sh: what live-migration tests share, lib.sh included: root,
# jq, the test's lab name in $lab and L() for ferry-lab on it.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
need_cmd jq
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }

# live_wait ID HOST [SECONDS]: until the live migration rests; prints the step.
live_wait() {
	local id=$1 host=$2 t=${3:-240} i st=''
	for ((i = 0; i < t * 2; i++)); do
		st=$(L exec "$host" ferry -j show "$id" 2>/dev/null | jq -r .step 2>/dev/null || true)
		case $st in completed | failed | cancelled) echo "$st"; return 0 ;; esac
		sleep 0.5
	done
	fail "live migration $id did not come to rest (last step '$st')"
}

# live_show ID HOST KEY: one field of `ferry -j show` (jq path, e.g. .metrics.downtime_ms).
live_show() { L exec "$2" ferry -j show "$1" | jq -r "$3"; }

# live_runs_on VM: the one host it runs (or is paused) on; fails on 0 or 2.
live_runs_on() {
	local vm=$1 h st on=()
	for h in h1 h2; do
		st=$(L virsh "$h" domstate "$vm" 2>/dev/null | head -1 || true)
		case $st in running | paused) on+=("$h") ;; esac
	done
	[ ${#on[@]} = 1 ] || fail "$vm is active on ${#on[@]} hosts (${on[*]:-none})"
	echo "${on[0]}"
}

# live_verify HOST VM: the guest's agent says VERIFY PASS on HOST.  QEMU 7.2
# under TCG loses guest RAM writes in a live migration (docs/guest.md,
# docs/live-migration.md); ferry moves disks, and two outcomes of that
# defect are told apart from a disk fault and said so in the output:
# - RAMLOST: every block at least as new as the guest remembers, some
#   newer (the agent's memory lost its update); the verdict is asked again
#   and must then be PASS;
# - the guest's kernel crashed (an oops on its console, no answer) or its
#   virtio core found a ring it keeps in RAM corrupt ("id N is not a head!":
#   the ring stops, and the agent's disk I/O with it): the guest is booted again on HOST and its boot scan checks the disk (every
#   block a valid record of its own, none older than at the last clean
#   stop): UNCLEAN, never FAIL; then a clean stop and boot, after which
#   the verdict (and every later one) must be PASS.
live_verify() {
	local out= oopsed=0
	if live_guest_oopsed "$1" "$2"; then
		oopsed=1
	else
		out=$(L verify "$1" "$2" --timeout 30 2>&1) || true
		# No verdict: did the guest crash while it was asked?
		if [[ $out != "VERIFY "* ]] && live_guest_oopsed "$1" "$2"; then
			oopsed=1
		fi
	fi
	if [[ $out == "VERIFY RAMLOST"* ]]; then
		log "$1: $out"
		log "QEMU < 9.0 under TCG lost guest RAM writes (the agent's memory, not the disk); asking again"
		out=$(L verify "$1" "$2" --timeout 30 2>&1) || true
	elif [ "$oopsed" = 1 ]; then
		log "$2's kernel crashed or broke a virtio ring on $1 (console below): QEMU < 9.0 under TCG lost guest RAM" \
			"writes; its disk is checked by a boot instead${out:+ ($out)}"
		L console "$1" "$2" --tail 40 2>&1 | grep -E "BUG|Oops|RIP|panic|fault|$LIVE_VRING_BROKEN" | sed 's/^/    /' || true
		L guest-stop "$1" "$2" --destroy
		L guest-start "$1" "$2"
		out=$(L verify "$1" "$2" --timeout 30 2>&1) || true
		if [[ $out == "VERIFY UNCLEAN"* ]]; then
			log "$1: $out (the boot scan found every block sound)"
			# A clean stop and boot: later verdicts are strict again.
			L guest-stop "$1" "$2"
			L guest-start "$1" "$2"
			out=$(L verify "$1" "$2" --timeout 30 2>&1) || true
		fi
	fi
	if [[ $out != "VERIFY PASS"* ]]; then
		log "verify on $1: $out"
		live_diag "$1" "$2"
		fail "VERIFY of $2 on $1: $out"
	fi
	log "$1: $out"
}

# What drivers/virtio/virtio_ring.c prints when the used ring names a buffer
# the guest's own (RAM) bookkeeping does not have in flight.
LIVE_VRING_BROKEN='virtio[0-9]*: .*(is not a head|out of range)'

# live_guest_oopsed HOST VM: VM's console on HOST shows a kernel oops, or a
# virtio ring found corrupt, since the last boot it logged (the log is
# appended to across migrations).  The log is read whole before it is
# matched: under pipefail, a grep -q fed by a pipe exits at its first match
# and the writer's SIGPIPE would turn a match into "no oops" at random.
live_guest_oopsed() {
	local since re="BUG: |Oops|general protection fault|Kernel panic|end trace|$LIVE_VRING_BROKEN"
	since=$(L console "$1" "$2" 2>/dev/null |
		awk '/Linux version/ {t = ""} {t = t $0 "\n"} END {printf "%s", t}') || return 1
	[[ $since =~ $re ]]
}

live_diag() {
	local h
	log "$2's console on $1 (last lines):"
	L console "$1" "$2" --tail 30 2>&1 | sed 's/^/    /' || true
	for h in h1 h2; do
		log "ferryd on $h (last lines):"
		L ferryd "$h" log 2>&1 | tail -n 25 | sed 's/^/    /' || true
	done
}

