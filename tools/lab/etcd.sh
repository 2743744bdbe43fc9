# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034,SC2153 # globals of ferry-lab
#
# tools/lab/etcd.sh: the cluster's record, a real etcd cluster of the lab's
# own (sourced by ferry-lab).  `up --etcd` starts three members (Debian's
# etcd-server), each alone in a network namespace on the lab switch,
# ferry-LAB-e1..e3 at the lab's .80-.82, before any ferryd starts; every
# host's ferryd.conf then names all three (`etcd = ...`) and a lease TTL of
# FERRY_LAB_LEASE_TTL seconds (default 3).  Their data and logs are under
# the lab's state dir; `down` kills them with the rest of the lab.
# `ferry-lab etcd status|stop|start|kill|partition|heal|log [MEMBER]` acts on
# one member (e1..e3), e.g. to show that the loss of one of three stops
# nothing and the loss of two stops every write; `etcd ctl ARGS` runs
# etcdctl against the cluster.

LAB_ETCD_FIRST=80
LAB_ETCD_CLIENT_PORT=2379
LAB_ETCD_PEER_PORT=2380

lab_etcd_netns() { echo "ferry-$LAB_NAME-$1"; }
lab_etcd_dir() { echo "$(lab_dir)/etcd"; }
# The members' data, in memory: the lab's leases are seconds long, and an
# fsync that another lab's disk writes hold up must not outlast one (the
# lab measures fencing, not a disk).  lab_down removes it.
lab_etcd_data_dir() { echo "$LAB_ETCD_DATA_ROOT/$LAB_NAME"; }
lab_etcd_url() { echo "http://${LAB_ETCD_ADDR[$1]}:$LAB_ETCD_CLIENT_PORT"; }

# The client URLs of every member, as ferryd.conf's etcd line.
lab_etcd_endpoints() {
	local m out=''
	for m in "${LAB_ETCD_MEMBERS[@]}"; do
		out="$out${out:+, }$(lab_etcd_url "$m")"
	done
	echo "$out"
}

lab_etcd_pid() { # MEMBER: the running member's pid, or nothing
	local f p
	f="$(lab_etcd_dir)/$1.pid"
	[ -s "$f" ] || return 0
	p=$(cat "$f")
	if lab_pid_alive "$p" && grep -q etcd "/proc/$p/comm" 2>/dev/null; then echo "$p"; fi
}

lab_etcd_member_check() {
	local m
	for m in "${LAB_ETCD_MEMBERS[@]}"; do [ "$m" = "$1" ] && return 0; done
	lab_usage_die "etcd: no member '$1' in lab '$LAB_NAME' (members: ${LAB_ETCD_MEMBERS[*]:-none; up --etcd makes them})"
}

# lab_etcd_start MEMBER [new|existing]: start, do not wait.
lab_etcd_start() {
	local m=$1 state=${2:-existing} d cluster='' o
	d=$(lab_etcd_dir)
	for o in "${LAB_ETCD_MEMBERS[@]}"; do
		cluster="$cluster${cluster:+,}$o=http://${LAB_ETCD_ADDR[$o]}:$LAB_ETCD_PEER_PORT"
	done
	mkdir -p "$d" "$(lab_etcd_data_dir)"
	# setsid: not in our process group, so a test's ^C does not reach it;
	# `down` finds it by its network namespace.
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		ip netns exec "$(lab_etcd_netns "$m")" setsid etcd \
		--name "$m" --data-dir "$(lab_etcd_data_dir)/$m.data" --logger zap --log-outputs stderr \
		--listen-client-urls "$(lab_etcd_url "$m")" \
		--advertise-client-urls "$(lab_etcd_url "$m")" \
		--listen-peer-urls "http://${LAB_ETCD_ADDR[$m]}:$LAB_ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://${LAB_ETCD_ADDR[$m]}:$LAB_ETCD_PEER_PORT" \
		--initial-cluster "$cluster" --initial-cluster-state "$state" \
		--initial-cluster-token "ferry-lab-$LAB_NAME" \
		</dev/null >>"$d/$m.log" 2>&1 &
	echo $! >"$d/$m.pid"
}

lab_etcd_stop() { # MEMBER SIGNAL
	local p i
	p=$(lab_etcd_pid "$1")
	[ -n "$p" ] || return 0
	kill "-$2" "$p" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		lab_pid_alive "$p" || return 0
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null || true
}

# lab_etcd_health MEMBER: the member answers and the cluster has a leader.
lab_etcd_health() {
	ip netns exec "$(lab_etcd_netns "$1")" curl -s --noproxy '*' -m 2 \
		"$(lab_etcd_url "$1")/health" 2>/dev/null | grep -q '"health":"true"'
}

lab_etcd_wait() { # TIMEOUT_S
	local i m ok
	for ((i = 0; i < $1 * 10; i++)); do
		ok=1
		for m in "${LAB_ETCD_MEMBERS[@]}"; do lab_etcd_health "$m" || ok=0; done
		[ "$ok" = 0 ] || return 0
		sleep 0.1
	done
	for m in "${LAB_ETCD_MEMBERS[@]}"; do
		lab_etcd_health "$m" || lab_warn "etcd member $m: not healthy; its log: $(tail -n 3 "$(lab_etcd_dir)/$m.log")"
	done
	return 1
}

# lab_etcd_up N: N members on the switch, started together, healthy.
lab_etcd_up() {
	local n=$1 i m ns sns
	sns=$(lab_sw_netns)
	lab_need_cmds etcd curl
	LAB_ETCD_MEMBERS=()
	for ((i = 1; i <= n; i++)); do
		m=e$i
		LAB_ETCD_MEMBERS+=("$m")
		LAB_ETCD_ADDR[$m]=$LAB_SUBNET.$((LAB_ETCD_FIRST + i - 1))
		ns=$(lab_etcd_netns "$m")
		ip netns add "$ns"
		lab_state_add netns "$ns"
		ip -n "$sns" link add "$m" type veth peer name eth0 netns "$ns"
		ip -n "$sns" link set "$m" master br0 up
		ip -n "$ns" link set lo up
		ip -n "$ns" addr add "${LAB_ETCD_ADDR[$m]}/24" dev eth0
		ip -n "$ns" link set eth0 up
		lab_state_add etcd "$m" "${LAB_ETCD_ADDR[$m]}"
	done
	for m in "${LAB_ETCD_MEMBERS[@]}"; do lab_etcd_start "$m" new; done
	lab_etcd_wait 30 || lab_die "etcd: the lab's cluster did not become healthy in 30 s"
	lab_debug "etcd: ${LAB_ETCD_MEMBERS[*]} healthy at $(lab_etcd_endpoints)"
}

lab_usage_etcd() {
	echo "  etcd status|stop|start|kill|partition|heal|log [MEMBER]"
	echo "                         the lab's etcd members (up --etcd): health, or one member"
	echo "                         (e1..e3) stopped, started, killed, cut off the switch"
	echo "  etcd ctl ARGS...       etcdctl (API 3) against the lab's etcd cluster"
}

lab_cmd_etcd() {
	local action=${1:-status} m=${2:-} p st out first=1
	lab_load
	[ ${#LAB_ETCD_MEMBERS[@]} -gt 0 ] || lab_die "etcd: lab '$LAB_NAME' has no etcd (up --etcd)"
	case $action in
	status) ;;
	ctl)
		# etcdctl against the whole cluster, from the first member's namespace
		shift
		ip netns exec "$(lab_etcd_netns "${LAB_ETCD_MEMBERS[0]}")" env ETCDCTL_API=3 \
			etcdctl --endpoints "$(lab_etcd_endpoints | tr -d ' ')" --command-timeout 3s "$@"
		return ;;
	stop|start|kill|partition|heal|log)
		[ -n "$m" ] || lab_usage_die "etcd $action: need a MEMBER (${LAB_ETCD_MEMBERS[*]})"
		lab_etcd_member_check "$m" ;;
	*) lab_usage_die "etcd: unknown action '$action'" ;;
	esac
	case $action in
	stop) lab_etcd_stop "$m" TERM ;;
	kill) lab_etcd_stop "$m" KILL ;;
	start)
		[ -z "$(lab_etcd_pid "$m")" ] || lab_die "etcd: member $m is running"
		lab_etcd_start "$m" existing ;;
	partition|heal)
		st=down
		[ "$action" = heal ] && st=up
		out=$(ip -n "$(lab_sw_netns)" link set "$m" "$st" 2>&1) ||
			lab_die "etcd: member $m's switch port $st: $out" ;;
	log) cat "$(lab_etcd_dir)/$m.log" ;;
	status)
		[ "$LAB_JSON" = 1 ] && printf '['
		for m in "${LAB_ETCD_MEMBERS[@]}"; do
			p=$(lab_etcd_pid "$m")
			st=false
			lab_etcd_health "$m" && st=true
			if [ "$LAB_JSON" = 1 ]; then
				[ "$first" = 1 ] || printf ', '
				printf '{"member": "%s", "url": "%s", "pid": %s, "healthy": %s}' \
					"$m" "$(lab_etcd_url "$m")" "${p:-null}" "$st"
			else
				printf '%s %s pid %s %s\n' "$m" "$(lab_etcd_url "$m")" "${p:--}" \
					"$([ "$st" = true ] && echo healthy || echo unhealthy)"
			fi
			first=0
		done
		[ "$LAB_JSON" = 1 ] && printf ']\n'
		return 0 ;;
	esac
}
