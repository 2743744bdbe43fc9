# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034,SC2153 # globals of ferry-lab
#
# tools/lab/sanlock.sh: shared storage and the leases on it (sourced by
# ferry-lab).
#
# `up --shared`: each host sees the lab's one instances dir at
# /var/lib/libvirt/images through a FUSE mount of its own (bindfs), run in
# the host's mount namespace but not its network namespace: as separate
# machines mounting one export, a file lock taken on one host is not seen
# on another (QEMU's image locks cannot stand in for a fence), and a crash
# of the host (its network namespace) leaves its mount, as it would leave a
# SAN.  O_DIRECT works through it.
#
# `up --sanlock` (implies --shared): every host also runs a sanlock daemon
# (Debian's sanlock 3.8) and its libvirtd uses libvirt's sanlock lock
# manager with automatic disk leases on the shared storage
# (/var/lib/libvirt/images/.sanlock, lockspace __LIBVIRT__DISKS__, host_id
# = the host's number, io_timeout FERRY_LAB_SANLOCK_IO_TIMEOUT, default
# 1 s).  libvirt starts QEMU with its vCPUs stopped and takes the disk
# leases before it starts them: a second QEMU for a disk whose lease
# another live host holds is killed before its guest runs.  sanlock runs WITHOUT a watchdog here (-w 0: the machine has no
# /dev/watchdog), so a host whose sanlock dies cannot be reset by it; a
# host's lease counts as dead 8 x io_timeout + 60 s after its last renewal
# (sanlock's fixed watchdog_fire_timeout), 68 s at io_timeout 1.  The
# daemon starts with a preload (build/tests/liblab-rlimit.so) that lets
# its rlimit raise pass in a container without CAP_SYS_RESOURCE; it uses
# neither limit (-l 0 -h 0).
# `ferry-lab sanlock HOST status|log` shows a host's daemon.

LAB_SANLOCK_LS=__LIBVIRT__DISKS__
LAB_SANLOCK_DIR=/var/lib/libvirt/images/.sanlock

lab_sanlock_io_timeout() { echo "${FERRY_LAB_SANLOCK_IO_TIMEOUT:-1}"; }
lab_sanlock_shim() { echo "$FERRY_TOP/build/tests/liblab-rlimit.so"; }
lab_sanlock_log() { echo "$(lab_host_dir "$1")/log-sanlock.log"; }
lab_sanlock_host_id() { echo "${1#h}"; }

# lab_shared_mount HOST: HOST's own FUSE view of the shared instances dir.
lab_shared_mount() {
	local host=$1
	nsenter --mount="$(lab_host_mntns "$host")" -- \
		bindfs --no-allow-other "$(lab_shared_dir)" /var/lib/libvirt/images ||
		lab_die "$host: bindfs of the shared instances dir failed"
}

# lab_sanlock_libvirt_conf HOST: libvirt's sanlock lock manager on HOST
# (appended to the qemu.conf lab_host_write_config wrote).
lab_sanlock_libvirt_conf() {
	local host=$1 hd
	hd=$(lab_host_dir "$host")
	echo 'lock_manager = "sanlock"' >>"$hd/etc-libvirt/qemu.conf"
	cat >"$hd/etc-libvirt/qemu-sanlock.conf" <<EOF
# ferry-lab: libvirt's sanlock lock manager on host $host
auto_disk_leases = 1
disk_lease_dir = "$LAB_SANLOCK_DIR"
host_id = $(lab_sanlock_host_id "$host")
require_lease_for_disks = 1
io_timeout = $(lab_sanlock_io_timeout)
user = "root"
group = "root"
EOF
}

# lab_sanlock_init: the lockspace on the shared storage, written once
# before any libvirtd starts (libvirt would create it on its own, but two
# hosts starting at once could each see the other's half-written file).
lab_sanlock_init() {
	local d f
	lab_need_cmds sanlock bindfs
	[ -f "$(lab_sanlock_shim)" ] || lab_die "$(lab_sanlock_shim) is not built (run make)"
	d="$(lab_shared_dir)/${LAB_SANLOCK_DIR##*/}"
	f="$d/$LAB_SANLOCK_LS"
	mkdir -p "$d"
	truncate -s 1M "$f"
	sanlock direct init -s "$LAB_SANLOCK_LS:0:$f:0" -o "$(lab_sanlock_io_timeout)" >/dev/null ||
		lab_die "sanlock: cannot initialize the lockspace $f"
	lab_info "sanlock: no /dev/watchdog here: each host's daemon runs with -w 0 (a host whose sanlock dies is not reset), and with a preload that lets its rlimit raise pass (no CAP_SYS_RESOURCE)"
}

# lab_sanlock_start HOST: HOST's sanlock daemon, answering, before its
# libvirtd starts (libvirt joins the lockspace when its driver starts).
lab_sanlock_start() {
	local host=$1 i
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
		LD_PRELOAD="$(lab_sanlock_shim)" \
		nsenter --net="/run/netns/$(lab_host_netns "$host")" \
		--mount="$(lab_host_mntns "$host")" --uts="$(lab_host_utsns "$host")" --wd=/ -- \
		setsid sanlock daemon -D -w 0 -h 0 -l 0 -U root -G root -e "$host" \
		</dev/null >>"$(lab_sanlock_log "$host")" 2>&1 &
	for ((i = 0; i < 100; i++)); do
		lab_host_nsenter "$host" sanlock client status >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	lab_die "$host: sanlock did not answer within 10 s: $(tail -n 3 "$(lab_sanlock_log "$host")" | tr '\n' ' ')"
}

lab_usage_sanlock() {
	echo "  sanlock HOST status|log  HOST's sanlock daemon: lockspaces and leases, or its log"
}

lab_cmd_sanlock() {
	local host=${1:-} action=${2:-status}
	[ -n "$host" ] || lab_usage_die "sanlock: need a HOST"
	lab_load
	lab_host_check "$host"
	[ "$LAB_SANLOCK" = 1 ] || lab_die "lab '$LAB_NAME' runs no sanlock (up --sanlock)"
	case $action in
	status) lab_host_nsenter "$host" sanlock client status ;;
	log) cat "$(lab_sanlock_log "$host")" ;;
	*) lab_usage_die "sanlock: want status or log, not '$action'" ;;
	esac
}
