#!/bin/bash
# timeout: 120
# A lab host looks like a machine of its own: its own sysfs (its links only),
# hostname and /etc/hosts, bpffs, tracefs, private libvirt and ferry dirs,
# an images dir on a disk that takes O_DIRECT, a ferrybr0 bridge with an
# uplink to the switch (down with the host's port on partition), and a
# libvirtd that the other hosts, and the client namespace, reach over TCP.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh jq

name=$(test_lab_name)
lab_up "$name" >/dev/null
X() { "$LAB" --lab "$name" exec "$@"; }

log "sysfs, hostname, /etc/hosts"
assert_eq "$(X h1 ls /sys/class/net | xargs)" "eth0 ferrybr0 lo uplink0" "h1: /sys/class/net"
X h1 test -d /sys/class/net/ferrybr0/bridge || fail "h1: ferrybr0 is not a bridge"
X h1 ip -br link show ferrybr0 | grep -qw UP || fail "h1: ferrybr0 is not up"
assert_eq "$(X h1 cat /sys/class/net/ferrybr0/bridge/stp_state)" 0 "h1: ferrybr0 STP"
assert_eq "$(X h1 cat /sys/class/net/ferrybr0/bridge/forward_delay)" 0 "h1: ferrybr0 forward delay"
X h1 ip -o link show uplink0 | grep -q "master ferrybr0 .*state UP" ||
	fail "h1: uplink0 is not an up port of ferrybr0: $(X h1 ip -o link show uplink0)"
sw=ferry-$name-sw
ip -n "$sw" -o link show h1u | grep -q "master br0 .*state UP" ||
	fail "switch: h1u is not an up port of br0: $(ip -n "$sw" -o link show h1u)"
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
log "the client namespace reaches the hosts; partition downs both ports of h1"
a1=$("$LAB" --lab "$name" addr h1)
assert_eq "$("$LAB" --lab "$name" addr client | cut -d. -f4)" 250 "client address"
C() { "$LAB" --lab "$name" client timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/16509"' "$a1"; }
C || fail "client -> h1:16509"
"$LAB" --lab "$name" partition h1
for p in h1 h1u; do
	ip -n "$sw" -o link show "$p" | grep -q "state DOWN" || fail "partition: switch port $p is up"
done
C 2>/dev/null && fail "client reaches a partitioned h1"
"$LAB" --lab "$name" heal h1
C || fail "client -> h1:16509 after heal"
u1=$(X h1 virsh -c qemu:///system capabilities | sed -n 's|.*<uuid>\(.*\)</uuid>.*|\1|p' | sed -n 1p)
u2=$(X h1 virsh -c qemu+tcp://h2/system capabilities | sed -n 's|.*<uuid>\(.*\)</uuid>.*|\1|p' | sed -n 1p)
[ -n "$u1" ] && [ "$u1" != "$u2" ] || fail "host UUIDs: h1 '$u1', h2 '$u2'"
log "PASS"
