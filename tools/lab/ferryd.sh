# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034,SC2153 # globals of ferry-lab
#
# tools/lab/ferryd.sh: ferryd on every lab host (sourced by ferry-lab).
#
# `up` writes each host's /etc/ferry/ferryd.conf (its name and address, every
# other host as a peer, the lab's cluster key, its volume group if any) and
# starts ferryd there once libvirtd answers; `down` stops it.  Tests drive it
# with `ferry-lab ferryd HOST start|stop|restart|kill|status|log`, e.g. to
# kill -9 it mid-operation and start it again.  FERRY_LAB_FERRYD_CONF holds
# extra ferryd.conf lines for the hosts started by that call.

LAB_FERRYD_PORT=4710

lab_ferryd_bin() { echo "${FERRY_BIN:-$FERRY_TOP/build/bin}/ferryd"; }

# The lab's cluster key: one per lab, made at the first start.
lab_cluster_key() {
	local k
	k="$(lab_dir)/cluster.key"
	if [ ! -s "$k" ]; then
		(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$k.tmp" && echo >>"$k.tmp")
		mv "$k.tmp" "$k"
	fi
	echo "$k"
}

lab_ferryd_write_config() { # HOST
	local host=$1 hd peers='' h vg=''
	hd=$(lab_host_dir "$host")
	for h in "${LAB_HOSTS[@]}"; do
		[ "$h" = "$host" ] && continue
		peers="$peers${peers:+, }$h=${LAB_ADDR[$h]}:$LAB_FERRYD_PORT"
	done
	[ -n "${LAB_VG[$host]:-}" ] && vg=${LAB_VG[$host]}
	mkdir -p "$hd/etc-ferry"
	install -m 600 "$(lab_cluster_key)" "$hd/etc-ferry/cluster.key"
	cat >"$hd/etc-ferry/ferryd.conf" <<EOF
# ferry-lab: ferryd of host $host in lab '$LAB_NAME'
host = $host
listen = ${LAB_ADDR[$host]}:$LAB_FERRYD_PORT
mover_listen = ${LAB_ADDR[$host]}:$((LAB_FERRYD_PORT + 1))
peers = $peers
cluster_key_file = /etc/ferry/cluster.key
lvm_vg = $vg
# Small lab guests: keep the test flows quick.
shutdown_timeout_s = ${FERRY_LAB_SHUTDOWN_TIMEOUT:-30}
peer_retry_s = ${FERRY_LAB_PEER_RETRY:-30}
EOF
	if [ ${#LAB_ETCD_MEMBERS[@]} -gt 0 ]; then
		cat >>"$hd/etc-ferry/ferryd.conf" <<EOF
# The lab's etcd (up --etcd): a lease of a few seconds, as a lab wants.
etcd = $(lab_etcd_endpoints)
cluster_lease_ttl_s = ${FERRY_LAB_LEASE_TTL:-3}
evacuate_grace_s = ${FERRY_LAB_EVACUATE_GRACE:-3}
EOF
	fi
	[ -z "${FERRY_LAB_FERRYD_CONF:-}" ] || echo "$FERRY_LAB_FERRYD_CONF" >>"$hd/etc-ferry/ferryd.conf"
}

# A killed ferryd's leader turns zombie while its other threads may still be
# exiting (and holding its sockets): it is gone once no thread but a zombie
# leader is left.
lab_ferryd_alive() { # PID
	local n
	lab_pid_alive "$1" && return 0
	n=$(ls "/proc/$1/task" 2>/dev/null | wc -l)
	[ "$n" -gt 1 ]
}

lab_ferryd_pid() { # HOST: the running ferryd's pid, or nothing
	local pid
	pid=$(lab_host_nsenter "$1" cat /run/ferry/ferryd.pid 2>/dev/null) || return 0
	lab_ferryd_alive "$pid" && echo "$pid"
	return 0
}

# lab_ferryd_start HOST [VAR=VALUE...]: start ferryd (it daemonizes and
# returns once its sockets are open), with extra environment for tests.
lab_ferryd_start() {
	local host=$1 pid
	shift
	[ -z "$(lab_ferryd_pid "$host")" ] || lab_die "$host: ferryd is already running"
	lab_ferryd_write_config "$host"
	if ! lab_host_run "$host" env "$@" "$(lab_ferryd_bin)" --pid-file /run/ferry/ferryd.pid; then
		lab_die "$host: ferryd did not start; see $(lab_host_dir "$host")/log-ferry/ferryd.log: $(tail -n 3 "$(lab_host_dir "$host")/log-ferry/ferryd.log" 2>/dev/null | tr '\n' ' ')"
	fi
	pid=$(lab_ferryd_pid "$host")
	lab_state_add ferryd "$host" "$pid"
	lab_debug "$host: ferryd $pid ready"
}

lab_ferryd_stop() { # HOST [SIGNAL]
	local host=$1 sig=${2:-TERM} pid i
	pid=$(lab_ferryd_pid "$host")
	[ -n "$pid" ] || return 0
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		lab_ferryd_alive "$pid" || return 0
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
}

lab_host_start_daemons() {
	[ -x "$(lab_ferryd_bin)" ] || return 0
	lab_ferryd_start "$1"
}

lab_host_stop_daemons() {
	[ -x "$(lab_ferryd_bin)" ] || return 0
	lab_ferryd_stop "$1"
}

lab_usage_ferryd() {
	echo "  ferryd HOST start|stop|restart|kill|status|log [--env VAR=VALUE]..."
	echo "                     control HOST's ferryd (kill: SIGKILL, as a crash)"
}

lab_cmd_ferryd() {
	local host=${1:-} action=${2:-status} env=() pid
	[ -n "$host" ] || lab_usage_die "ferryd: need a host"
	shift $(($# >= 2 ? 2 : $#))
	while [ $# -gt 0 ]; do
		case $1 in
		--env) [ $# -ge 2 ] || lab_usage_die "ferryd: --env needs VAR=VALUE"
		       env+=("$2"); shift 2 ;;
		*) lab_usage_die "ferryd: unknown argument '$1'" ;;
		esac
	done
	lab_load
	lab_host_check "$host"
	[ -x "$(lab_ferryd_bin)" ] || lab_die "ferryd is not built (run make)"
	case $action in
	start) lab_ferryd_start "$host" "${env[@]}" ;;
	stop) lab_ferryd_stop "$host" TERM ;;
	kill) lab_ferryd_stop "$host" KILL ;;
	restart) lab_ferryd_stop "$host" TERM; lab_ferryd_start "$host" "${env[@]}" ;;
	status)
		pid=$(lab_ferryd_pid "$host")
		if [ "$LAB_JSON" = 1 ]; then
			lab_out_json "{\"host\": $(lab_json_str "$host"), \"running\": $([ -n "$pid" ] && echo true || echo false), \"pid\": ${pid:-null}}"
		else
			if [ -n "$pid" ]; then echo "$host: ferryd running, pid $pid"
			else echo "$host: ferryd not running"; fi
		fi
		[ -n "$pid" ] ;;
	log) cat "$(lab_host_dir "$host")/log-ferry/ferryd.log" ;;
	*) lab_usage_die "ferryd: unknown action '$action'" ;;
	esac
}
