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

lab_cmd_crash() {
	local host=${1:-} i pids
	[ -n "$host" ] || lab_usage_die "crash: need a HOST"
	lab_load
	lab_host_check "$host"
	for ((i = 0; i < 50; i++)); do
		pids=$(ip netns pids "$(lab_host_netns "$host")" 2>/dev/null | xargs)
		[ -n "$pids" ] || break
		# shellcheck disable=SC2086 # a list of pids
		kill -KILL $pids 2>/dev/null || true
		sleep 0.1
	done
	[ -z "$pids" ] || lab_die "$host: processes survive SIGKILL: $pids"
	lab_info "$host: crashed (every process killed)"
}

lab_cmd_revive() {
	local host=${1:-}
	[ -n "$host" ] || lab_usage_die "revive: need a HOST"
	lab_load
	lab_host_check "$host"
	[ -z "$(ip netns pids "$(lab_host_netns "$host")" 2>/dev/null)" ] ||
		lab_die "$host: still has processes: not crashed"
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
