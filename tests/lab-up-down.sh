#!/bin/bash
# timeout: 120
# ferry-lab up then down leaves no namespace, mount, process, link, loop
# device or state behind; down twice is fine, and so is down after a crash
# (libvirtd killed with SIGKILL, a stray process left in a host).
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh tc jq losetup pvcreate

name=$(test_lab_name)
root_links() { ip -o link show | awk -F': ' '{print $2}' | sort | xargs; }
links_before=$(root_links)

alive() { # the pid runs (a zombie waiting for init to reap it does not)
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

# check_gone PIDS...: nothing of the lab is left.
check_gone() {
	local p
	assert_eq "$(ip netns list | awk '{print $1}' | grep -c "^ferry-$name-" || true)" 0 "namespaces left"
	assert_eq "$(grep -c "/ferry-lab/$name" /proc/self/mountinfo || true)" 0 "mounts left"
	assert_eq "$(losetup -a | grep -c "/ferry-lab/$name/" || true)" 0 "loop devices left"
	for p in "$@"; do
		! alive "$p" || fail "process $p ($(cat "/proc/$p/comm")) still runs"
	done
	assert_eq "$(root_links)" "$links_before" "links of the root namespace"
	[ ! -e "/var/lib/ferry-lab/$name" ] || fail "state dir /var/lib/ferry-lab/$name left"
	[ ! -e "/run/ferry-lab/$name" ] || fail "/run/ferry-lab/$name left"
	[ ! -e "/dev/ferry_${name}_h1" ] || fail "/dev/ferry_${name}_h1 left"
	case " $("$LAB" list | xargs) " in *" $name "*) fail "lab still listed" ;; esac
	return 0
}

# lab_pids: libvirtd pids, plus a stray process started in h2.
stray_runs() { ip netns pids "ferry-$name-h2" | xargs -r ps -o comm= -p | grep -qx sleep; }
lab_pids() {
	"$LAB" --lab "$name" exec h2 sleep 600 </dev/null >/dev/null 2>&1 &
	wait_for 5 stray_runs || fail "stray process did not start"
	{ "$LAB" --lab "$name" -j status | jq -r '.hosts[].libvirtd.pid'
	  ip netns pids "ferry-$name-h2"; } | sort -u | xargs
}

log "up (3 hosts, with LVM)"
lab_up "$name" --hosts 3 --lvm 64M
pids=$(lab_pids)
log "pids: $pids"
for p in $pids; do alive "$p" || fail "$p is not running"; done
assert_eq "$(ip netns list | awk '{print $1}' | grep -c "^ferry-$name-")" 5 "namespaces (3 hosts + switch + client)"
assert_eq "$(losetup -a | grep -c "/ferry-lab/$name/")" 3 "loop devices"
assert_eq "$(root_links)" "$links_before" "links of the root namespace while up"

log "down, twice"
"$LAB" --lab "$name" down
check_gone $pids
"$LAB" --lab "$name" down || fail "second down failed"
check_gone $pids

log "up, kill -9 libvirtd of h1, down"
lab_up "$name" --lvm 64M
pids=$(lab_pids)
kill -9 "$("$LAB" --lab "$name" -j status | jq -r '.hosts[0].libvirtd.pid')"
h1_dead() { "$LAB" --lab "$name" status | grep '^h1 .* dead' >/dev/null; }
wait_for 5 h1_dead || fail "status does not show h1's dead libvirtd"
"$LAB" --lab "$name" down
check_gone $pids

log "up killed half-way, down"
"$LAB" --lab "$name" up --hosts 3 --lvm 64M >/dev/null 2>&1 &
upid=$!
wait_for 10 test -e "/var/lib/ferry-lab/$name/h2/lvm.img" || fail "up made no progress"
kill -9 $upid
wait $upid 2>/dev/null || true
"$LAB" --lab "$name" down
check_gone
log "PASS"
