# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034,SC2153 # globals of ferry-lab
#
# tools/lab/crash.sh: a host dies and comes back (sourced by ferry-lab).
# `crash HOST` kills every process in the host's network namespace with
# SIGKILL at once: its QEMUs, libvirtd and ferryd, as a power loss does to
# the host's software (its files, /run included, stay as they were: a
# power loss would also clear /run, which only matters to a fence file).
# `revive HOST` starts its libvirtd and ferryd again: the host returns.
# `freeze HOST` / `thaw HOST` stop and continue its ferryd alone (SIGSTOP,
# SIGCONT), its QEMUs running on: the case ferry's own fencing cannot
# cover.

lab_usage_crash() {
	echo "  crash HOST             kill -9 every process of HOST at once (QEMUs, libvirtd, ferryd)"
	echo "  revive HOST            start a crashed HOST's libvirtd and ferryd again"
	echo "  freeze HOST | thaw HOST  SIGSTOP / SIGCONT HOST's ferryd (its QEMUs run on)"
}

# lab_crash_daemons HOST: HOST's libvirtd, ferryd and QEMU pids still alive.
lab_crash_daemons() {
	local p
	for p in $(ip netns pids "$(lab_host_netns "$1")" 2>/dev/null); do
		case $(cat "/proc/$p/comm" 2>/dev/null) in
		libvirtd | ferryd | sanlock | qemu-system-*) ! lab_pid_alive "$p" || echo "$p" ;;
		esac
	done
}

lab_cmd_crash() {
	local host=${1:-} i pids left=''
	[ -n "$host" ] || lab_usage_die "crash: need a HOST"
	lab_load
	lab_host_check "$host"
	# Everything in the host dies; done once its daemons and QEMUs are gone
	# (a test's command may enter the host meanwhile: it dies too).
	for ((i = 0; i < 50; i++)); do
		pids=$(ip netns pids "$(lab_host_netns "$host")" 2>/dev/null | xargs)
		# shellcheck disable=SC2086 # a list of pids
		[ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
		left=$(lab_crash_daemons "$host")
		[ -n "$left" ] || break
		sleep 0.1
	done
	[ -z "$left" ] || lab_die "$host: processes survive SIGKILL: $left"
	lab_info "$host: crashed (every process killed)"
}

lab_cmd_revive() {
	local host=${1:-}
	[ -n "$host" ] || lab_usage_die "revive: need a HOST"
	lab_load
	lab_host_check "$host"
	# Its daemons must be gone (a test's command entering the host may not).
	! lab_pid_alive "${LAB_LIBVIRTD[$host]:-}" || lab_die "$host: libvirtd still runs: not crashed"
	[ -z "$(lab_ferryd_pid "$host")" ] || lab_die "$host: ferryd still runs: not crashed"
	[ "$LAB_SANLOCK" = 0 ] || lab_sanlock_start "$host"
	lab_libvirtd_start "$host"
	lab_libvirtd_wait "$host" 60
	lab_host_start_daemons "$host"
	lab_info "$host: revived (libvirtd ${LAB_LIBVIRTD[$host]}, ferryd $(lab_ferryd_pid "$host"))"
}

lab_ferryd_signal() { # HOST SIGNAL
	local pid
	lab_load
	lab_host_check "$1"
	pid=$(lab_ferryd_pid "$1")
	[ -n "$pid" ] || lab_die "$1: ferryd is not running"
	kill "-$2" "$pid"
}
lab_cmd_freeze() { [ -n "${1:-}" ] || lab_usage_die "freeze: need a HOST"; lab_ferryd_signal "$1" STOP; }
lab_cmd_thaw() { [ -n "${1:-}" ] || lab_usage_die "thaw: need a HOST"; lab_ferryd_signal "$1" CONT; }
