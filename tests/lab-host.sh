#!/bin/bash
# timeout: 120
# A lab host looks like a machine of its own: its own sysfs (its links only),
# hostname and /etc/hosts, bpffs, tracefs, private libvirt and ferry dirs,
# an images dir on a disk that takes O_DIRECT, a ferrybr0 bridge, and a
# libvirtd that the other hosts reach over TCP.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh jq

name=$(test_lab_name)
lab_up "$name" >/dev/null
X() { "$LAB" --lab "$name" exec "$@"; }

log "sysfs, hostname, /etc/hosts"
assert_eq "$(X h1 ls /sys/class/net | xargs)" "eth0 ferrybr0 lo" "h1: /sys/class/net"
X h1 test -d /sys/class/net/ferrybr0/bridge || fail "h1: ferrybr0 is not a bridge"
X h1 ip -br link show ferrybr0 | grep -qw UP || fail "h1: ferrybr0 is not up"
assert_eq "$(X h1 hostname)" h1 "h1: hostname"
assert_eq "$(X h1 getent hosts h2 | awk '{print $1}')" "$("$LAB" --lab "$name" addr h2)" "h1: h2 resolves"
assert_eq "$(X h2 ip -4 -br addr show eth0 | awk '{print $3}')" "$("$LAB" --lab "$name" addr h2)/24" "h2: eth0 address"

log "bpffs and tracefs"
for h in h1 h2; do
	assert_eq "$(X $h stat -f -c %T /sys/fs/bpf)" bpf_fs "$h: /sys/fs/bpf"
	X $h test -d /sys/kernel/tracing/events/sched || fail "$h: no tracefs events"
done
X h1 mkdir /sys/fs/bpf/ferry-lab-test
X h2 test ! -e /sys/fs/bpf/ferry-lab-test || fail "h2 sees h1's bpffs"
[ ! -e /sys/fs/bpf/ferry-lab-test ] || fail "the root namespace sees h1's bpffs"

log "private dirs"
for d in /etc/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt \
	/etc/ferry /var/lib/ferry /var/log/ferry /run/libvirt /run/ferry; do
	X h1 touch "$d/ferry-lab-test"
	X h2 test ! -e "$d/ferry-lab-test" || fail "h2 sees h1's $d"
	[ ! -e "$d/ferry-lab-test" ] || fail "the root namespace sees h1's $d"
done
X h1 test -S /run/libvirt/libvirt-sock || fail "h1: no /run/libvirt/libvirt-sock"
X h1 test -s /var/log/libvirt/libvirtd.log || fail "h1: no libvirtd log"
fs=$(X h1 stat -f -c %T /var/lib/libvirt/images)
assert_ne "$fs" tmpfs "h1: filesystem of /var/lib/libvirt/images"
X h1 dd if=/dev/zero of=/var/lib/libvirt/images/odirect bs=4096 count=16 oflag=direct status=none ||
	fail "h1: O_DIRECT write in /var/lib/libvirt/images ($fs)"
[ -f "/var/lib/ferry-lab/$name/h1/lib-libvirt/images/odirect" ] || fail "images are not in the host's state dir"

log "libvirtd over TCP, with the host's own UUID"
assert_eq "$(X h2 virsh -c qemu+tcp://h1/system hostname)" h1 "h2 -> h1 over TCP"
u1=$(X h1 virsh -c qemu:///system capabilities | sed -n 's|.*<uuid>\(.*\)</uuid>.*|\1|p' | head -1)
u2=$(X h1 virsh -c qemu+tcp://h2/system capabilities | sed -n 's|.*<uuid>\(.*\)</uuid>.*|\1|p' | head -1)
[ -n "$u1" ] && [ "$u1" != "$u2" ] || fail "host UUIDs: h1 '$u1', h2 '$u2'"
log "PASS"
