# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash disable=SC2034,SC2153 # globals of ferry-lab
#
# tools/lab/guest.sh: self-checking guests on lab hosts (sourced by ferry-lab).
#
#   guest HOST NAME [...]   define and start a TCG guest running ferry-agent
#   verify HOST NAME        ask its agent for a verdict (exit 0 only on PASS)
#   agent HOST NAME CMD...  send one raw agent command, print the reply
#   console HOST NAME       print its serial console log
#   guest-addr NAME         the address of a guest made with --nic
#
# Disks follow Nova's layout: /var/lib/libvirt/images/NAME/{disk,disk.swap},
# a qcow2 overlay on /var/lib/libvirt/images/_base/HASH with --backing, or
# LVs NAME_disk and NAME_disk.swap in the host's VG with --lvm.  The guest
# itself (kernel + initramfs) comes from tools/guest/build, cached under
# /var/cache/ferry/guest, a path every host sees.  See docs/guest.md.

LAB_GUEST_PORT=org.ferry.agent.0
LAB_GUEST_XMLNS=https://ferry.dev/xmlns/instance/1
# pti=on: QEMU before 9.0 loses guest RAM writes under TCG during a live
# migration (cpu_physical_memory_sync_dirty_bitmap clears the dirty bits
# without resetting TCG's TLB "not dirty" state; fixed upstream by
# "physmem: Fix migration dirty bitmap coherency with TCG memory access").
# Hot kernel pages (hrtimers, IRQ stacks) then reach the destination stale
# and the guest panics in its timer interrupt, more often the longer the
# RAM phase.  Page-table isolation reloads CR3 on every kernel entry, and
# each reload flushes TCG's TLB: the window shrinks enough that no lab test
# has hit it since (it does not close it).
LAB_GUEST_CMDLINE="console=ttyS0 loglevel=4 acpi=noirq tsc=reliable pti=on"

# Paths as seen inside a host.
lab_guest_dir() { echo "/var/lib/libvirt/images/$1"; }
lab_guest_console() { echo "/var/log/libvirt/qemu/$1-console.log"; }
# Not under channel/target: libvirt replaces paths there with its own
# per-run ones (domain-ID-NAME/...), and this one must not change.
lab_guest_socket() { echo "/var/lib/libvirt/qemu/channel/ferry/$1.agent"; }
# The heartbeat port's socket (--heartbeat), and where the root namespace
# sees a host's copy of it.
LAB_GUEST_BEAT_PORT=org.ferry.heartbeat.0
lab_guest_beat_socket() { echo "/var/lib/libvirt/qemu/channel/ferry/$1.beat"; }
lab_guest_beat_socket_here() { echo "$(lab_host_dir "$1")/lib-libvirt/qemu/channel/ferry/$2.beat"; }
# The console log as seen from here (the host's private dirs are binds of
# its state dir), so waiting does not enter the namespaces at every poll.
lab_guest_console_here() { echo "$(lab_host_dir "$1")/log-libvirt/qemu/$2-console.log"; }

lab_guest_name_check() {
	[[ $1 =~ ^[a-z0-9][a-z0-9_-]{0,39}$ ]] ||
		lab_usage_die "$LAB_CMD: guest name '$1': use 1-40 of a-z 0-9 _ -"
}

# lab_guest_size SIZE WHAT: 256M, 1G, 4096 -> bytes in LAB_GUEST_BYTES.
# (Helpers that can die set variables: a die inside $() would be silent.)
lab_guest_size() {
	local v=${1%B}
	v=${v%i}
	[[ $v =~ ^[0-9]+[KMGT]?$ ]] || lab_usage_die "$LAB_CMD: $2 '$1': want a size like 256M or 1G"
	LAB_GUEST_BYTES=$(numfmt --from=iec "$v")
}

# The host side of the agent's channel, built when missing.
LAB_GUEST_CLIENT=$FERRY_TOP/build/guest/ferry-agent-client
lab_guest_client_check() {
	[ -x "$LAB_GUEST_CLIENT" ] && return 0
	make -C "$FERRY_TOP" --no-print-directory -s guest-bins >&2 ||
		lab_die "building ferry-agent-client failed (make guest-bins)"
}

lab_guest_image() { # sets LAB_GUEST_KERNEL, LAB_GUEST_INITRD
	local out
	out=$("$FERRY_TOP/tools/guest/build" --print -q) ||
		lab_die "building the guest image failed (tools/guest/build)"
	LAB_GUEST_KERNEL=$(sed -n 's/^KERNEL=//p' <<<"$out")
	LAB_GUEST_INITRD=$(sed -n 's/^INITRD=//p' <<<"$out")
	[ -f "$LAB_GUEST_KERNEL" ] && [ -f "$LAB_GUEST_INITRD" ] ||
		lab_die "tools/guest/build gave no kernel/initrd"
}

# lab_guest_disks HOST NAME: create the instance's disks (as Nova's driver
# does before a spawn or, on a destination, in pre_live_migration).  Uses
# G_* set by lab_cmd_guest.  Sets G_DISK_SRC/G_SWAP_SRC (paths in the host)
# and G_DISK_TYPE (file or block).
lab_guest_disks() {
	local host=$1 name=$2 dir base out vg
	dir=$(lab_guest_dir "$name")
	G_BASE=''
	if [ "$G_LVM" = 1 ]; then
		vg=${LAB_VG[$host]:-}
		[ -n "$vg" ] || lab_die "$host: no volume group (bring the lab up with 'up --lvm SIZE')"
		G_DISK_TYPE='block'
		G_DISK_SRC=/dev/$vg/${name}_disk
		G_SWAP_SRC=/dev/$vg/${name}_disk.swap
		out=$(lab_host_run "$host" lvcreate -q -y -Wy -Zy -L "${G_DISK_BYTES}b" -n "${name}_disk" "$vg" 2>&1) ||
			lab_die "$host: lvcreate ${name}_disk in $vg: $out"
		# a new LV may hold an old one's blocks: the agent wants zeros
		lab_host_run "$host" blkdiscard -f -z "$G_DISK_SRC" >/dev/null 2>&1 ||
			lab_host_run "$host" dd if=/dev/zero of="$G_DISK_SRC" bs=1M oflag=direct status=none ||
			lab_die "$host: cannot zero $G_DISK_SRC"
		if [ -n "$G_SWAP_BYTES" ]; then
			out=$(lab_host_run "$host" lvcreate -q -y -Wy -Zy -L "${G_SWAP_BYTES}b" -n "${name}_disk.swap" "$vg" 2>&1) ||
				lab_die "$host: lvcreate ${name}_disk.swap in $vg: $out"
		fi
		return 0
	fi

	G_DISK_TYPE='file'
	G_DISK_SRC=$dir/disk
	G_SWAP_SRC=$dir/disk.swap
	lab_host_run "$host" test ! -e "$G_DISK_SRC" ||
		lab_die "$host: $G_DISK_SRC exists (guest '$name' already there?)"
	lab_host_run "$host" mkdir -p "$dir" "$(dirname "$(lab_guest_console "$name")")"
	if [ "$G_BACKING" = 1 ]; then
		# Nova: _base/<sha1 of the image id>, raw, shared by the instances
		# booted from that image; the instance disk is a qcow2 overlay.
		base=/var/lib/libvirt/images/_base/$(printf 'ferry-blank-%s' "$G_DISK_BYTES" | sha1sum | cut -c1-40)
		G_BASE=$base
		lab_host_run "$host" mkdir -p /var/lib/libvirt/images/_base
		lab_host_run "$host" test -e "$base" ||
			out=$(lab_host_run "$host" qemu-img create -q -f raw "$base" "$G_DISK_BYTES" 2>&1) ||
			lab_die "$host: creating $base: $out"
		out=$(lab_host_run "$host" qemu-img create -q -f qcow2 -F raw -b "$base" "$G_DISK_SRC" "$G_DISK_BYTES" 2>&1) ||
			lab_die "$host: creating $G_DISK_SRC: $out"
	else
		out=$(lab_host_run "$host" qemu-img create -q -f "$G_FORMAT" "$G_DISK_SRC" "$G_DISK_BYTES" 2>&1) ||
			lab_die "$host: creating $G_DISK_SRC: $out"
	fi
	if [ -n "$G_SWAP_BYTES" ]; then
		out=$(lab_host_run "$host" qemu-img create -q -f "$G_FORMAT" "$G_SWAP_SRC" "$G_SWAP_BYTES" 2>&1) ||
			lab_die "$host: creating $G_SWAP_SRC: $out"
	fi
}

# lab_guest_disks_rm HOST NAME: undo lab_guest_disks (the shared base stays).
lab_guest_disks_rm() {
	if [ "$G_DISK_TYPE" = block ]; then
		lab_host_run "$1" lvremove -q -y "$G_DISK_SRC" >/dev/null 2>&1 || true
		[ -z "$G_SWAP_BYTES" ] || lab_host_run "$1" lvremove -q -y "$G_SWAP_SRC" >/dev/null 2>&1 || true
	else
		lab_host_run "$1" rm -rf "$(lab_guest_dir "$2")"
	fi
}

lab_guest_disk_xml() { # lab_guest_disk_xml SOURCE TARGET FORMAT
	local src=$1 tgt=$2 fmt=$3
	if [ "$G_DISK_TYPE" = block ]; then
		cat <<EOF
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='$src'/>
      <target dev='$tgt' bus='virtio'/>
    </disk>
EOF
	else
		cat <<EOF
    <disk type='file' device='disk'>
      <driver name='qemu' type='$fmt' cache='none'/>
      <source file='$src'/>
      <target dev='$tgt' bus='virtio'/>
    </disk>
EOF
	fi
}

# --- NIC addresses ---------------------------------------------------------
# A guest made with --nic gets an address of the lab's /24, .100 to .249
# (hosts have .1-.64, the client namespace .250), recorded in the lab's
# state as "nic NAME ADDR": the same name always gets the same address,
# whichever host it is made on, and addresses never clash within a lab.
# Its MAC is 52:54:00 and the address's last three bytes.  Both are in the
# domain XML (the MAC, ferry.ip= on the kernel command line), so they
# travel with a migration.

lab_guest_mac() { # lab_guest_mac ADDR
	local -a o
	IFS=. read -r -a o <<<"$1"
	printf '52:54:00:%02x:%02x:%02x\n' "${o[1]}" "${o[2]}" "${o[3]}"
}

# lab_guest_nic_alloc NAME [ADDR]: NAME's address (ADDR, or the one it has,
# or the lowest free one) into G_NIC_ADDR, recorded; serialized by a lock.
lab_guest_nic_alloc() {
	local name=$1 want=${2:-} fd n h a
	local -A used=()
	if [ -n "$want" ]; then
		[[ $want =~ ^${LAB_SUBNET//./\\.}\.([0-9]{1,3})$ ]] ||
			lab_usage_die "guest: --nic '$want': want an address of the lab's $LAB_SUBNET.0/24"
		n=${BASH_REMATCH[1]}
		[ "$n" -ge 2 ] && [ "$n" -le 254 ] ||
			lab_usage_die "guest: --nic '$want': not a host address of $LAB_SUBNET.0/24"
	fi
	exec {fd}<"$(lab_dir)"
	flock -x "$fd"
	lab_load
	if [ -n "${LAB_NIC[$name]:-}" ]; then
		[ -z "$want" ] || [ "$want" = "${LAB_NIC[$name]}" ] ||
			lab_die "guest '$name' has address ${LAB_NIC[$name]} in lab '$LAB_NAME', not $want"
		G_NIC_ADDR=${LAB_NIC[$name]}
		exec {fd}<&-
		return 0
	fi
	for h in "${LAB_HOSTS[@]}"; do used[${LAB_ADDR[$h]}]="host $h"; done
	[ -z "$LAB_CLIENT_ADDR" ] || used[$LAB_CLIENT_ADDR]="the client namespace"
	for a in "${!LAB_NIC[@]}"; do used[${LAB_NIC[$a]}]="guest $a"; done
	if [ -n "$want" ]; then
		[ -z "${used[$want]:-}" ] || lab_die "guest: --nic $want: taken by ${used[$want]}"
		G_NIC_ADDR=$want
	else
		G_NIC_ADDR=''
		for ((n = LAB_NIC_FIRST; n <= LAB_NIC_LAST; n++)); do
			[ -n "${used[$LAB_SUBNET.$n]:-}" ] || { G_NIC_ADDR=$LAB_SUBNET.$n; break; }
		done
		[ -n "$G_NIC_ADDR" ] ||
			lab_die "guest: --nic: no free address in $LAB_SUBNET.$LAB_NIC_FIRST-$LAB_NIC_LAST"
	fi
	lab_state_add nic "$name" "$G_NIC_ADDR"
	LAB_NIC[$name]=$G_NIC_ADDR
	exec {fd}<&-
}

lab_guest_xml() { # lab_guest_xml NAME
	local name=$1 cmdline fmt=$G_FORMAT swap_meta='' nic_meta='' mac=''
	[ "$G_BACKING" = 0 ] || fmt=qcow2
	[ "$G_DISK_TYPE" = file ] || fmt=raw
	cmdline="$LAB_GUEST_CMDLINE ferry.rate=$G_RATE ferry.pattern=$G_PATTERN"
	[ -z "$G_SPAN" ] || cmdline="$cmdline ferry.span=$G_SPAN"
	[ -z "$G_MEMRATE" ] || cmdline="$cmdline ferry.memrate=$G_MEMRATE"
	[ -z "$G_MEMSPAN" ] || cmdline="$cmdline ferry.memspan=$G_MEMSPAN"
	[ -z "$G_BEAT_MS" ] || cmdline="$cmdline ferry.heartbeat=$G_BEAT_MS"
	[ -z "$G_SWAP_BYTES" ] || cmdline="$cmdline ferry.swap=vdb"
	if [ -n "$G_SWAP_BYTES" ]; then
		swap_meta="
      <ferry:disk target='vdb' role='swap' size_bytes='$G_SWAP_BYTES'/>"
	fi
	if [ -n "$G_NIC_ADDR" ]; then
		cmdline="$cmdline ferry.ip=$G_NIC_ADDR/24"
		nic_meta="
      <ferry:nic bridge='ferrybr0' address='$G_NIC_ADDR' mac='$(lab_guest_mac "$G_NIC_ADDR")'/>"
		mac="
      <mac address='$(lab_guest_mac "$G_NIC_ADDR")'/>"
	fi
	cat <<EOF
<domain type='qemu'>
  <name>$name</name>
  <metadata>
    <ferry:instance xmlns:ferry='$LAB_GUEST_XMLNS'>
      <ferry:disk target='vda' role='root' size_bytes='$G_DISK_BYTES'$([ -z "$G_BASE" ] || echo " backing='$G_BASE'")/>$swap_meta
      <ferry:agent channel='$LAB_GUEST_PORT' socket='$(lab_guest_socket "$name")'/>
      <ferry:console path='$(lab_guest_console "$name")'/>
      <ferry:workload rate='$G_RATE' pattern='$G_PATTERN' span='${G_SPAN:-all}'/>$nic_meta
    </ferry:instance>
  </metadata>
  <memory unit='MiB'>$G_MEMORY</memory>
  <vcpu>$G_VCPUS</vcpu>
  <os>
    <type arch='x86_64'>hvm</type>
    <kernel>$LAB_GUEST_KERNEL</kernel>
    <initrd>$LAB_GUEST_INITRD</initrd>
    <cmdline>$cmdline</cmdline>
  </os>
  <features>
    <acpi/>
  </features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
$(lab_guest_disk_xml "$G_DISK_SRC" vda "$fmt")
$([ -z "$G_SWAP_BYTES" ] || lab_guest_disk_xml "$G_SWAP_SRC" vdb "$fmt")
    <interface type='bridge'>$mac
      <source bridge='ferrybr0'/>
      <model type='virtio'/>
      <rom enabled='no'/>
    </interface>
    <serial type='file'>
      <source path='$(lab_guest_console "$name")' append='on'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <source mode='bind' path='$(lab_guest_socket "$name")'/>
      <target type='virtio' name='$LAB_GUEST_PORT'/>
    </channel>$([ -z "$G_BEAT_MS" ] || printf "
    <channel type='unix'>
      <source mode='bind' path='%s'/>
      <target type='virtio' name='%s'/>
    </channel>" "$(lab_guest_beat_socket "$name")" "$LAB_GUEST_BEAT_PORT")
    <video>
      <model type='none'/>
    </video>
    <memballoon model='none'/>
  </devices>
</domain>
EOF
}

# lab_guest_wait_ready HOST NAME OFFSET TIMEOUT_S: wait for "AGENT READY" in
# the console log after byte OFFSET; die with the console's tail otherwise.
lab_guest_wait_ready() {
	local host=$1 name=$2 off=$3 t=$4 con i st line
	con=$(lab_guest_console_here "$host" "$name")
	for ((i = 0; i < t * 5; i++)); do
		line=$(tail -c +"$((off + 1))" "$con" 2>/dev/null | grep -a -m1 -E 'AGENT (READY|ERROR)' || true)
		case $line in
		*"AGENT READY"*) LAB_GUEST_READY_LINE=${line#*AGENT READY }; return 0 ;;
		*"AGENT ERROR"*) break ;;
		esac
		if [ $((i % 5)) = 4 ]; then
			st=$(lab_host_virsh "$host" domstate "$name" 2>/dev/null | sed -n 1p || true)
			[ "$st" = running ] || break
		fi
		sleep 0.2
	done
	lab_err "$host: guest '$name' not ready${line:+ ($line)}${st:+ (state: $st)} after $(((i + 1) / 5))s; console $(lab_guest_console "$name") ends with:"
	tail -c +"$((off + 1))" "$con" 2>/dev/null | tail -n 15 | sed 's/^/    /' >&2
	[ "$st" = running ] || [ -z "$st" ] ||
		tail -n 5 "$(lab_host_dir "$host")/log-libvirt/qemu/$name.log" 2>/dev/null | sed 's/^/    qemu: /' >&2
	exit 1
}

lab_usage_guest() {
	echo "  guest HOST NAME [--disk-size SIZE] [--memory MIB] [--vcpus N] [--format raw|qcow2]"
	echo "        [--backing] [--lvm] [--swap SIZE] [--write-rate R] [--pattern P] [--span SIZE]"
	echo "        [--mem-rate R] [--mem-span SIZE] [--heartbeat MS] [--nic [ADDR]]"
	echo "        [--no-start] [--disk-only] [--timeout S]"
	echo "                         define and start a self-checking guest (docs/guest.md);"
	echo "                         --disk-only: only create its disks (a migration target);"
	echo "                         --heartbeat: a line every MS ms on a 2nd port (heartbeat);"
	echo "                         --nic: a static address of the lab (.100 up, or ADDR),"
	echo "                         answering ICMP and UDP echo (port 7)"
}
lab_usage_guest_addr() {
	echo "  guest-addr NAME        the address (and MAC, with -j) of a guest made with --nic"
}
lab_usage_guest_start() {
	echo "  guest-start HOST NAME [--timeout S]   start a defined guest, wait for its agent"
}
lab_usage_guest_stop() {
	echo "  guest-stop HOST NAME [--destroy] [--timeout S]"
	echo "                         clean shutdown (ACPI power button: the agent saves its"
	echo "                         expectations) and wait until off; --destroy pulls the plug"
}
lab_usage_verify() {
	echo "  verify HOST NAME [--timeout S]  the guest's verdict; exit 0 only on VERIFY PASS"
}
lab_usage_agent() {
	echo "  agent HOST NAME [--timeout S] CMD...  send a command to the guest's agent"
	echo "                         (VERIFY STATUS PAUSE RESUME RATE PATTERN PING SHUTDOWN HELP)"
}
lab_usage_console() {
	echo "  console HOST NAME [--tail N]    print the guest's serial console log"
}

lab_cmd_guest() {
	local name='' start=1 disk_only=0 timeout=120 off t0 h out
	G_DISK_BYTES=$((256 << 20)) G_MEMORY=128 G_VCPUS=1 G_FORMAT=raw G_BACKING=0 G_LVM=0
	G_SWAP_BYTES='' G_RATE=4M G_PATTERN=sequential G_SPAN='' G_MEMRATE='' G_MEMSPAN='' G_BEAT_MS=''
	G_NIC=0 G_NIC_WANT='' G_NIC_ADDR=''
	lab_host_args "$@"
	shift "$LAB_SHIFT_TOTAL"
	while [ $# -gt 0 ]; do
		case $1 in
		--disk-size) lab_guest_size "${2:-}" --disk-size; G_DISK_BYTES=$LAB_GUEST_BYTES; shift ;;
		--memory) G_MEMORY=${2:-}; shift
			[[ $G_MEMORY =~ ^[0-9]+$ ]] && [ "$G_MEMORY" -ge 64 ] ||
				lab_usage_die "guest: --memory '$G_MEMORY': want MiB >= 64" ;;
		--vcpus) G_VCPUS=${2:-}; shift
			[[ $G_VCPUS =~ ^[1-8]$ ]] || lab_usage_die "guest: --vcpus '$G_VCPUS': want 1..8" ;;
		--format) G_FORMAT=${2:-}; shift
			[[ $G_FORMAT =~ ^(raw|qcow2)$ ]] || lab_usage_die "guest: --format '$G_FORMAT': raw or qcow2" ;;
		--backing) G_BACKING=1 ;;
		--lvm) G_LVM=1 ;;
		--swap) lab_guest_size "${2:-}" --swap; G_SWAP_BYTES=$LAB_GUEST_BYTES; shift ;;
		--write-rate) lab_guest_size "${2:-}" --write-rate; G_RATE=$2; shift ;;
		--pattern) G_PATTERN=${2:-}; shift
			[[ $G_PATTERN =~ ^(sequential|random|hotspot)$ ]] ||
				lab_usage_die "guest: --pattern '$G_PATTERN': sequential, random or hotspot" ;;
		--span) lab_guest_size "${2:-}" --span; G_SPAN=$2; shift ;;
		--mem-rate) lab_guest_size "${2:-}" --mem-rate; G_MEMRATE=$2; shift ;;
		--mem-span) lab_guest_size "${2:-}" --mem-span; G_MEMSPAN=$2; shift ;;
		--heartbeat) G_BEAT_MS=${2:-}; shift
			[[ $G_BEAT_MS =~ ^[0-9]+$ ]] && [ "$G_BEAT_MS" -ge 1 ] && [ "$G_BEAT_MS" -le 1000 ] ||
				lab_usage_die "guest: --heartbeat '$G_BEAT_MS': want 1..1000 ms" ;;
		--nic) G_NIC=1
			# an optional ADDR: the next word if it looks like one
			if [[ ${2:-} =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then G_NIC_WANT=$2; shift; fi ;;
		--nic=*) G_NIC=1 G_NIC_WANT=${1#*=} ;;
		--no-start) start=0 ;;
		--disk-only) disk_only=1 ;;
		--timeout) timeout=${2:-}; shift
			[[ $timeout =~ ^[0-9]+$ ]] || lab_usage_die "guest: --timeout '$timeout': want seconds" ;;
		-*) lab_common_opt "$@" || lab_usage_die "guest: unknown option '$1'"; shift "$LAB_SHIFT"; continue ;;
		*) [ -z "$name" ] || lab_usage_die "guest: unexpected '$1'"; name=$1 ;;
		esac
		shift
	done
	[ -n "$name" ] || lab_usage_die "guest: missing NAME"
	lab_guest_name_check "$name"
	[ "$G_BACKING" = 0 ] || [ "$G_LVM" = 0 ] || lab_usage_die "guest: --backing and --lvm exclude each other"
	[ "$G_DISK_BYTES" -ge $((4 << 20)) ] || lab_usage_die "guest: --disk-size: at least 4M"
	[ $((G_DISK_BYTES % 4096)) = 0 ] || lab_usage_die "guest: --disk-size: a multiple of 4 KiB"
	lab_need_root
	t0=$(date +%s.%N)

	if [ "$disk_only" = 0 ] && lab_host_virsh "$LAB_HOST" domid "$name" >/dev/null 2>&1; then
		lab_die "$LAB_HOST: a domain '$name' exists already"
	fi
	# Any host may receive the guest: each needs the directories of the
	# console log and of the agent's socket.
	for h in "${LAB_HOSTS[@]}"; do
		mkdir -p "$(lab_host_dir "$h")/log-libvirt/qemu" \
			"$(lab_host_dir "$h")/lib-libvirt/qemu/channel/ferry"
	done
	lab_guest_disks "$LAB_HOST" "$name"
	if [ "$disk_only" = 1 ]; then
		if [ "$LAB_JSON" = 1 ]; then
			lab_out_json "{\"host\": $(lab_json_str "$LAB_HOST"), \"name\": $(lab_json_str "$name"), \"disk\": $(lab_json_str "$G_DISK_SRC"), \"swap\": $([ -n "$G_SWAP_BYTES" ] && lab_json_str "$G_SWAP_SRC" || echo null)}"
		else
			lab_info "$LAB_HOST: disks of '$name' created: $G_DISK_SRC${G_SWAP_BYTES:+ $G_SWAP_SRC}"
		fi
		return 0
	fi

	[ "$G_NIC" = 0 ] || lab_guest_nic_alloc "$name" "$G_NIC_WANT"
	lab_guest_image
	local xml
	xml=$(mktemp /tmp/ferry-guest-XXXXXX.xml)
	lab_guest_xml "$name" >"$xml"
	out=$(lab_host_virsh "$LAB_HOST" define "$xml" 2>&1) || {
		rm -f "$xml"
		lab_guest_disks_rm "$LAB_HOST" "$name"
		lab_die "$LAB_HOST: virsh define $name: $out"
	}
	rm -f "$xml"
	if [ "$start" = 1 ]; then
		off=$(stat -c %s "$(lab_guest_console_here "$LAB_HOST" "$name")" 2>/dev/null || echo 0)
		out=$(lab_host_virsh "$LAB_HOST" start "$name" 2>&1) ||
			lab_die "$LAB_HOST: virsh start $name: $out"
		lab_guest_wait_ready "$LAB_HOST" "$name" "$off" "$timeout"
	fi
	if [ "$LAB_JSON" = 1 ]; then
		lab_out_json "{\"host\": $(lab_json_str "$LAB_HOST"), \"name\": $(lab_json_str "$name"), \"started\": $([ "$start" = 1 ] && echo true || echo false), \"seconds\": $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'), \"disk\": $(lab_json_str "$G_DISK_SRC"), \"swap\": $([ -n "$G_SWAP_BYTES" ] && lab_json_str "$G_SWAP_SRC" || echo null), \"console\": $(lab_json_str "$(lab_guest_console "$name")"), \"socket\": $(lab_json_str "$(lab_guest_socket "$name")"), \"kernel\": $(lab_json_str "$LAB_GUEST_KERNEL"), \"initrd\": $(lab_json_str "$LAB_GUEST_INITRD"), \"address\": $([ -n "$G_NIC_ADDR" ] && lab_json_str "$G_NIC_ADDR" || echo null)}"
	elif [ "$start" = 1 ]; then
		lab_info "$LAB_HOST: guest '$name' ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s ($(sed 's/ state=.*//' <<<"$LAB_GUEST_READY_LINE"))${G_NIC_ADDR:+, address $G_NIC_ADDR}"
	else
		lab_info "$LAB_HOST: guest '$name' defined (not started)${G_NIC_ADDR:+, address $G_NIC_ADDR}"
	fi
}

# lab_guest_args ARGS...: [opts] HOST NAME; sets LAB_HOST, G_NAME, LAB_SHIFT_TOTAL
lab_guest_args() {
	lab_host_args "$@"
	shift "$LAB_SHIFT_TOTAL"
	while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
		lab_common_opt "$@" || break
		shift "$LAB_SHIFT"
		LAB_SHIFT_TOTAL=$((LAB_SHIFT_TOTAL + LAB_SHIFT))
	done
	[ $# -gt 0 ] || lab_usage_die "$LAB_CMD: missing NAME"
	G_NAME=$1
	LAB_SHIFT_TOTAL=$((LAB_SHIFT_TOTAL + 1))
	lab_guest_name_check "$G_NAME"
}

# The agent's socket of a running domain, from its live XML (falls back to
# the path ferry-lab gives it).
lab_guest_socket_of() { # HOST NAME
	local s
	s=$(lab_host_virsh "$1" dumpxml "$2" 2>/dev/null | awk -v port="$LAB_GUEST_PORT" '
		/<channel type=.unix.>/ { inch = 1; path = "" }
		inch && /<source / { if (match($0, /path=.[^"'\'']*/)) path = substr($0, RSTART + 6, RLENGTH - 6) }
		inch && /<target / && index($0, "name=\x27" port "\x27") { print path; exit }
		/<\/channel>/ { inch = 0 }')
	echo "${s:-$(lab_guest_socket "$2")}"
}

# lab_guest_ask HOST NAME TIMEOUT CMD...: the agent's reply line into
# LAB_GUEST_REPLY (not printed: called outside $(), errors reach the user).
lab_guest_ask() {
	local host=$1 name=$2 t=$3 client sock st out
	shift 3
	lab_guest_client_check
	client=$LAB_GUEST_CLIENT
	st=$(lab_host_virsh "$host" domstate "$name" 2>/dev/null | sed -n 1p) ||
		lab_die "$host: no guest '$name'"
	[ "$st" = running ] || lab_die "$host: guest '$name' is $st, not running"
	sock=$(lab_guest_socket_of "$host" "$name")
	out=$(lab_host_run "$host" "$client" -t "$t" "$sock" "$@" 2>&1) ||
		lab_die "$host: guest '$name': ${out:-no reply from its agent}"
	LAB_GUEST_REPLY=$out
}

# "VERIFY PASS blocks=3 seq=9 boot=clean" -> a JSON object
lab_guest_verdict_json() { # HOST NAME LINE
	local w s k v
	s="\"host\": $(lab_json_str "$1"), \"name\": $(lab_json_str "$2")"
	read -r -a w <<<"$3"
	s="$s, \"verdict\": $(lab_json_str "${w[1]:-}")"
	for kv in "${w[@]:2}"; do
		case $kv in
		*=*) k=${kv%%=*} v=${kv#*=}
		     if [[ $v =~ ^[0-9]+$ ]]; then s="$s, $(lab_json_str "$k"): $v"
		     else s="$s, $(lab_json_str "$k"): $(lab_json_str "$v")"; fi ;;
		esac
	done
	[ "${w[1]:-}" != ERROR ] || s="$s, \"message\": $(lab_json_str "${3#VERIFY ERROR }")"
	echo "{$s, \"line\": $(lab_json_str "$3")}"
}

lab_cmd_verify() {
	local timeout=300 line
	lab_guest_args "$@"
	shift "$LAB_SHIFT_TOTAL"
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) timeout=${2:-}; shift
			[[ $timeout =~ ^[0-9]+$ ]] || lab_usage_die "verify: --timeout '$timeout': want seconds" ;;
		*) lab_common_opt "$@" || lab_usage_die "verify: unexpected '$1'"; shift "$LAB_SHIFT"; continue ;;
		esac
		shift
	done
	lab_guest_ask "$LAB_HOST" "$G_NAME" "$timeout" VERIFY
	line=$LAB_GUEST_REPLY
	case $line in
	"VERIFY "*) ;;
	*) lab_die "$LAB_HOST: guest '$G_NAME': unexpected reply to VERIFY: $line" ;;
	esac
	if [ "$LAB_JSON" = 1 ]; then
		lab_out_json "$(lab_guest_verdict_json "$LAB_HOST" "$G_NAME" "$line")"
	else
		echo "$line"
	fi
	case $line in "VERIFY PASS "*) return 0 ;; *) return 1 ;; esac
}

lab_cmd_agent() {
	local line timeout=60
	local -a cmd=()
	lab_guest_args "$@"
	shift "$LAB_SHIFT_TOTAL"
	# agent commands and their arguments never start with '-'
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) timeout=${2:-}; shift
			[[ $timeout =~ ^[0-9]+$ ]] || lab_usage_die "agent: --timeout '$timeout': want seconds" ;;
		-*) lab_common_opt "$@" || lab_usage_die "agent: unknown option '$1'"; shift "$LAB_SHIFT"; continue ;;
		*) cmd+=("$1") ;;
		esac
		shift
	done
	[ ${#cmd[@]} -gt 0 ] || lab_usage_die "agent: missing CMD (try HELP)"
	lab_guest_ask "$LAB_HOST" "$G_NAME" "$timeout" "${cmd[@]}"
	line=$LAB_GUEST_REPLY
	if [ "$LAB_JSON" = 1 ]; then
		lab_out_json "{\"host\": $(lab_json_str "$LAB_HOST"), \"name\": $(lab_json_str "$G_NAME"), \"reply\": $(lab_json_str "$line")}"
	else
		echo "$line"
	fi
	case $line in ERROR*) return 1 ;; esac
}

lab_cmd_console() {
	local n='' con
	lab_guest_args "$@"
	shift "$LAB_SHIFT_TOTAL"
	while [ $# -gt 0 ]; do
		case $1 in
		--tail|-n) n=${2:-}; shift
			[[ $n =~ ^[0-9]+$ ]] || lab_usage_die "console: --tail '$n': want a number of lines" ;;
		*) lab_common_opt "$@" || lab_usage_die "console: unexpected '$1'"; shift "$LAB_SHIFT"; continue ;;
		esac
		shift
	done
	con=$(lab_guest_console_here "$LAB_HOST" "$G_NAME")
	[ -f "$con" ] || lab_die "$LAB_HOST: guest '$G_NAME' has no console log ($(lab_guest_console "$G_NAME"))"
	if [ -n "$n" ]; then tail -n "$n" "$con"; else cat "$con"; fi
}

lab_cmd_guest_start() {
	local timeout=120 off out t0
	lab_guest_args "$@"
	shift "$LAB_SHIFT_TOTAL"
	while [ $# -gt 0 ]; do
		case $1 in
		--timeout) timeout=${2:-}; shift
			[[ $timeout =~ ^[0-9]+$ ]] || lab_usage_die "guest-start: --timeout '$timeout': want seconds" ;;
		*) lab_common_opt "$@" || lab_usage_die "guest-start: unexpected '$1'"; shift "$LAB_SHIFT"; continue ;;
		esac
		shift
	done
	t0=$(date +%s.%N)
	off=$(stat -c %s "$(lab_guest_console_here "$LAB_HOST" "$G_NAME")" 2>/dev/null || echo 0)
	out=$(lab_host_virsh "$LAB_HOST" start "$G_NAME" 2>&1) ||
		lab_die "$LAB_HOST: virsh start $G_NAME: $out"
	lab_guest_wait_ready "$LAB_HOST" "$G_NAME" "$off" "$timeout"
	if [ "$LAB_JSON" = 1 ]; then
		lab_out_json "{\"host\": $(lab_json_str "$LAB_HOST"), \"name\": $(lab_json_str "$G_NAME"), \"seconds\": $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}'), \"ready\": $(lab_json_str "$LAB_GUEST_READY_LINE")}"
	else
		lab_info "$LAB_HOST: guest '$G_NAME' ready in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s ($(sed 's/ state=.*//' <<<"$LAB_GUEST_READY_LINE"))"
	fi
}

lab_cmd_guest_stop() {
	local timeout=60 destroy=0 off out st i saved='' con t0
	lab_guest_args "$@"
	shift "$LAB_SHIFT_TOTAL"
	while [ $# -gt 0 ]; do
		case $1 in
		--destroy) destroy=1 ;;
		--timeout) timeout=${2:-}; shift
			[[ $timeout =~ ^[0-9]+$ ]] || lab_usage_die "guest-stop: --timeout '$timeout': want seconds" ;;
		*) lab_common_opt "$@" || lab_usage_die "guest-stop: unexpected '$1'"; shift "$LAB_SHIFT"; continue ;;
		esac
		shift
	done
	t0=$(date +%s.%N)
	con=$(lab_guest_console_here "$LAB_HOST" "$G_NAME")
	off=$(stat -c %s "$con" 2>/dev/null || echo 0)
	if [ "$destroy" = 1 ]; then
		out=$(lab_host_virsh "$LAB_HOST" destroy "$G_NAME" 2>&1) ||
			lab_die "$LAB_HOST: virsh destroy $G_NAME: $out"
	else
		out=$(lab_host_virsh "$LAB_HOST" shutdown "$G_NAME" 2>&1) ||
			lab_die "$LAB_HOST: virsh shutdown $G_NAME: $out"
	fi
	for ((i = 0; i < timeout * 5; i++)); do
		# a transient domain (e.g. migrated without --persistent) vanishes
		st=$(lab_host_virsh "$LAB_HOST" domstate "$G_NAME" 2>/dev/null | sed -n 1p) || st=gone
		[ "$st" != "shut off" ] && [ "$st" != gone ] || break
		sleep 0.2
	done
	[ "$st" = "shut off" ] || [ "$st" = gone ] ||
		lab_die "$LAB_HOST: guest '$G_NAME' still $st after ${timeout}s"
	if [ "$destroy" = 0 ]; then
		saved=$(tail -c +"$((off + 1))" "$con" 2>/dev/null | grep -a -m1 -E 'expectations (saved|NOT saved)' || true)
		case $saved in
		*"expectations saved"*) ;;
		*) lab_die "$LAB_HOST: guest '$G_NAME' is off but its agent did not save its expectations: ${saved:-no word on the console}" ;;
		esac
	fi
	if [ "$LAB_JSON" = 1 ]; then
		lab_out_json "{\"host\": $(lab_json_str "$LAB_HOST"), \"name\": $(lab_json_str "$G_NAME"), \"clean\": $([ "$destroy" = 0 ] && echo true || echo false), \"seconds\": $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')}"
	else
		lab_info "$LAB_HOST: guest '$G_NAME' $([ "$destroy" = 0 ] && echo "shut down cleanly (${saved#*ferry-agent: })" || echo destroyed) in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')s"
	fi
}

lab_usage_heartbeat() {
	echo "  heartbeat SRC DST NAME [--after N] [--timeout S] [--ready FILE]"
	echo "                         follow guest NAME's heartbeat (guest --heartbeat) from"
	echo "                         SRC to DST across a migration; prints the blackout (JSON)"
}

# The reader runs here, in the lab's root namespace: each host's socket is
# reachable through that host's state dir, and all share one clock.
lab_cmd_heartbeat() {
	local src='' dst='' name='' opts=() bin=$FERRY_TOP/build/tests/heartbeat
	while [ $# -gt 0 ]; do
		case $1 in
		--after|--timeout|--ready)
			[ $# -ge 2 ] || lab_usage_die "heartbeat: $1 needs a value"
			opts+=("$1" "$2"); shift ;;
		-*) lab_common_opt "$@" || lab_usage_die "heartbeat: unknown option '$1'"; shift "$LAB_SHIFT"; continue ;;
		*) if [ -z "$src" ]; then src=$1
		   elif [ -z "$dst" ]; then dst=$1
		   elif [ -z "$name" ]; then name=$1
		   else lab_usage_die "heartbeat: unexpected '$1'"; fi ;;
		esac
		shift
	done
	[ -n "$name" ] || lab_usage_die "heartbeat: want SRC DST NAME"
	lab_guest_name_check "$name"
	lab_load
	lab_host_check "$src"
	lab_host_check "$dst"
	[ -x "$bin" ] || make -C "$FERRY_TOP" --no-print-directory -s build/tests/heartbeat >&2 ||
		lab_die "building $bin failed"
	exec "$bin" "${opts[@]}" "$(lab_guest_beat_socket_here "$src" "$name")" \
		"$(lab_guest_beat_socket_here "$dst" "$name")"
}

lab_cmd_guest_addr() {
	local name=''
	while [ $# -gt 0 ]; do
		case $1 in
		-*) lab_common_opt "$@" || lab_usage_die "guest-addr: unknown option '$1'"; shift "$LAB_SHIFT"; continue ;;
		*) [ -z "$name" ] || lab_usage_die "guest-addr: unexpected '$1'"; name=$1 ;;
		esac
		shift
	done
	[ -n "$name" ] || lab_usage_die "guest-addr: missing NAME"
	lab_guest_name_check "$name"
	lab_load
	[ -n "${LAB_NIC[$name]:-}" ] ||
		lab_die "guest '$name' has no address in lab '$LAB_NAME' (made without --nic?)"
	if [ "$LAB_JSON" = 1 ]; then
		lab_out_json "{\"name\": $(lab_json_str "$name"), \"address\": $(lab_json_str "${LAB_NIC[$name]}"), \"prefix\": 24, \"mac\": $(lab_json_str "$(lab_guest_mac "${LAB_NIC[$name]}")"), \"bridge\": \"ferrybr0\"}"
	else
		echo "${LAB_NIC[$name]}"
	fi
}
