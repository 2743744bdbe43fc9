# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034,SC2153,SC2004 # globals of ferry-lab
#
# tools/lab/lvm.sh: per-host LVM volume groups (sourced by ferry-lab).
#
# `up --lvm SIZE` gives each host a volume group ferry_LAB_HOST on a loop
# device backed by a sparse file in the host's state dir.  Each host has its
# own /etc/lvm (bound over it in the host's mount namespace): it sees only its
# own loop device and never waits for udev (there is none in a lab host).
# From the root namespace, lab_lvm_env runs LVM with a host's configuration.
#
# On a kernel without device-mapper, LVM keeps its metadata but cannot
# activate a volume; inside the hosts tools/lab/lvm-loop then stands in for
# activation (each LV a loop device over its extents of the PV; see there).

lab_have_dm() {
	grep -qw device-mapper /proc/misc 2>/dev/null && return 0
	modprobe -q dm_mod 2>/dev/null || true
	grep -qw device-mapper /proc/misc 2>/dev/null
}

# lab_lvm_conf LOOPDEV: HOST's lvm.conf.  Without device-mapper in the kernel
# activation is switched off, so LVM commands neither fail on nor create
# /dev/mapper/control.
lab_lvm_conf() {
	local act=1
	lab_have_dm || act=0
	cat <<EOF
# ferry-lab: LVM of a host of lab '$LAB_NAME'; sees only its own loop device.
devices {
	global_filter = [ "a|^$1\$|", "r|.*|" ]
	obtain_device_list_from_udev = 0
	external_device_info_source = "none"
	use_devicesfile = 0
	hints = "none"	# /run/lvm is shared by all hosts
}
activation {
	udev_sync = 0
	udev_rules = 0
	verify_udev_operations = 1
	monitoring = 0
}
global {
	activation = $act
	use_lvmpolld = 0
	event_activation = 0
}
EOF
}

# lab_lvm_env HOST CMD...: run an LVM command from the root namespace with
# HOST's configuration (works even when the host's namespaces are gone).
lab_lvm_env() {
	local host=$1
	shift
	LVM_SYSTEM_DIR="$(lab_host_dir "$host")/etc-lvm" LVM_SUPPRESS_FD_WARNINGS=1 "$@"
}

lab_lvm_check() { # lab_lvm_check SIZE: before anything is made
	[[ $1 =~ ^[0-9]+[KMGT]?$ ]] || lab_usage_die "up: --lvm '$1': want a size like 4G"
	lab_need_cmds pvcreate vgcreate vgchange losetup
	lab_have_dm ||
		lab_warn "--lvm: this kernel has no device-mapper (no 'device-mapper' in /proc/misc): logical volumes are activated by the lab's stand-in, as loop devices over the PV's extents (tools/lab/lvm-loop)"
}

lab_lvm_up() { # lab_lvm_up HOST SIZE
	local host=$1 size=$2 hd dev vg out
	hd=$(lab_host_dir "$host") vg=$(lab_host_vg "$host")
	mkdir -p "$hd/etc-lvm"
	truncate -s "$size" "$hd/lvm.img"
	dev=$(losetup --find --show "$hd/lvm.img") || lab_die "$host: losetup $hd/lvm.img failed"
	lab_state_add loop "$host" "$dev"
	LAB_LOOP[$host]=$dev
	lab_lvm_conf "$dev" >"$hd/etc-lvm/lvm.conf"
	out=$(lab_lvm_env "$host" pvcreate -q "$dev" 2>&1) || lab_die "$host: pvcreate $dev: $out"
	out=$(lab_lvm_env "$host" vgcreate -q "$vg" "$dev" 2>&1) || lab_die "$host: vgcreate $vg: $out"
	lab_state_add vg "$host" "$vg"
	LAB_VG[$host]=$vg
}

# lab_lvm_down HOST VG [LOOPDEV...]: deactivate VG's volumes, detach the
# loop devices.  Never fails.
lab_lvm_down() {
	local host=$1 vg=$2 dev d
	shift 2
	if [ -f "$(lab_host_dir "$host")/etc-lvm/lvm.conf" ]; then
		lab_lvm_env "$host" vgchange -q -an "$vg" >/dev/null 2>&1 || true
	fi
	if lab_have_dm && command -v dmsetup >/dev/null; then
		for d in $(dmsetup ls 2>/dev/null | awk -v p="$vg-" 'index($1, p) == 1 {print $1}'); do
			dmsetup remove -f "$d" 2>/dev/null || lab_warn "$host: cannot remove $d"
		done
	fi
	rm -rf "/dev/${vg:?}"
	for dev in "$@"; do
		[ -b "$dev" ] || continue
		# LVs that tools/lab/lvm-loop mapped over this PV
		for d in $(losetup -n -l -O NAME,BACK-FILE 2>/dev/null | awk -v pv="$dev" '$2 == pv {print $1}'); do
			losetup -d "$d" 2>/dev/null || lab_warn "$host: cannot detach $d (an LV over $dev)"
		done
		losetup -d "$dev" 2>/dev/null || lab_warn "$host: cannot detach $dev"
	done
}

# lab_lvm_loops: loop devices backed by files of this lab (also unrecorded).
lab_lvm_loops() {
	losetup -n -O NAME,BACK-FILE -l 2>/dev/null |
		awk -v d="$(lab_dir)/" 'index($2, d) == 1 {print $1}'
}
