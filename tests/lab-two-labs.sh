#!/bin/bash
# timeout: 120
# Two labs side by side (different --lab) both work, cannot reach each
# other, and taking one down leaves the other intact.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh tc jq

a=$(test_lab_name)a
b=$(test_lab_name)b
lab_up "$a"
lab_up "$b" --hosts 3

addr() { "$LAB" --lab "$1" addr "$2"; }
host_uuid() { "$LAB" --lab "$1" virsh "$2" capabilities | sed -n 's|.*<uuid>\(.*\)</uuid>.*|\1|p' | head -1; }

log "both labs answer, each libvirtd is its own host"
uuids=''
for l in "$a" "$b"; do
	for h in $("$LAB" --lab "$l" hosts); do
		assert_eq "$("$LAB" --lab "$l" virsh "$h" hostname)" "$h" "$l/$h: virsh hostname"
		uuids="$uuids $(host_uuid "$l" "$h")"
	done
done
assert_eq "$(echo "$uuids" | xargs -n1 | sort -u | wc -l)" 5 "distinct host UUIDs among:$uuids"
log "host UUIDs:$uuids"
assert_ne "$(addr "$a" h1)" "$(addr "$b" h1)" "h1 addresses of the two labs"

log "within a lab, hosts reach each other's libvirtd by name"
assert_eq "$("$LAB" --lab "$a" exec h1 virsh -c qemu+tcp://h2/system hostname)" h2 "$a: h1 -> h2"
assert_eq "$("$LAB" --lab "$b" exec h3 virsh -c qemu+tcp://h1/system hostname)" h1 "$b: h3 -> h1"

log "no cross-talk between the labs"
for h in h1 h2 h3; do
	! lab_tcp_ok "$a" h1 "$(addr "$b" "$h")" 16509 || fail "$a/h1 reaches $b/$h"
done
! lab_tcp_ok "$b" h2 "$(addr "$a" h2)" 16509 || fail "$b/h2 reaches $a/h2"
lab_tcp_ok "$a" h1 "$(addr "$a" h2)" 16509 || fail "$a/h1 cannot reach its own h2"

log "taking $a down leaves $b intact"
"$LAB" --lab "$a" down
[ -z "$(ip netns list | grep "^ferry-$a-")" ] || fail "$a: namespaces left"
# the switch, the client and three hosts
assert_eq "$(ip netns list | awk '{print $1}' | grep "^ferry-$b-" | sort | tr '\n' ' ')" \
	"ferry-$b-client ferry-$b-h1 ferry-$b-h2 ferry-$b-h3 ferry-$b-sw " "$b: namespaces"
assert_eq "$("$LAB" --lab "$b" -j status | jq '[.hosts[].libvirtd.alive] | all')" true "$b: libvirtd alive"
for h in h1 h2 h3; do
	assert_eq "$("$LAB" --lab "$b" virsh "$h" hostname)" "$h" "$b/$h: virsh after $a went down"
done
lab_tcp_ok "$b" h1 "$(addr "$b" h3)" 16509 || fail "$b/h1 cannot reach $b/h3 after $a went down"
"$LAB" --lab "$b" exec h2 test -d /sys/class/net/eth0 || fail "$b/h2 lost its sysfs"
log "PASS"
