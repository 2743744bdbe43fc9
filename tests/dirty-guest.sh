#!/bin/bash
# timeout: 240
# A real guest under libvirt (QEMU writing its raw disk with cache=none,
# aio=threads) against QEMU's own dirty bitmap for the same interval:
# every block QEMU marked dirty is in what the tracker drained (missed = 0).
# The interval is bounded by pausing the guest's writer, so both sets
# cover exactly the same writes; QEMU's bitmap (64 KiB, like the tracker)
# is read over NBD (block-export-add with the bitmap, nbdinfo --map).
# serial: asserts no rescan, and the tracker counts some events machine-wide
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd ip nsenter unshare libvirtd virsh qemu-system-x86_64 busybox cpio jq nbdinfo

lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
Q() { L virsh h1 qemu-monitor-command vm1 "$1" >"$DIRTY_TMP/qmp.out" ||
	fail "QMP $1: $(cat "$DIRTY_TMP/qmp.out")"; }
cleanup_push "'$LAB' --lab '$lab' down"
L up --hosts 1 >/dev/null
L guest h1 vm1 --disk-size 128M --write-rate 2M --pattern random >/dev/null
disk=/var/lib/libvirt/images/vm1/disk

node=$(L virsh h1 qemu-monitor-command vm1 '{"execute":"query-named-block-nodes"}' |
	jq -r --arg f "$disk" '[.return[] | select(.file == $f and .drv == "raw")][0]."node-name"')
[ -n "$node" ] && [ "$node" != null ] || fail "no format node for $disk"
log "QEMU's node for $disk: $node"

# The tracker runs inside the host, where the guest's disk is.
coproc DRAINER { exec "$LAB" --lab "$lab" exec h1 "$DIRTY_DRAIN" -g 64k "$disk" \
	2>"$DIRTY_TMP/drainer.err"; }
DRAINER_OUT=${DRAINER[0]} DRAINER_IN=${DRAINER[1]}
cleanup_push "tracker_down"
read -r -t 60 line <&"$DRAINER_OUT" || true
[ "$line" = '{"ready":true}' ] || fail "tracker: $line $(cat "$DIRTY_TMP/drainer.err")"

interval() { # NAME SECONDS PATTERN RATE
	local name=$1 res sock=$DIRTY_TMP/nbd.$1.sock
	log "interval $name: $2 s of $3 writes at $4/s"
	L agent h1 vm1 PATTERN "$3" >/dev/null
	L agent h1 vm1 RATE "$4" >/dev/null
	L agent h1 vm1 PAUSE >/dev/null
	Q '{"execute":"block-dirty-bitmap-add","arguments":{"node":"'"$node"'","name":"'"$name"'","granularity":65536}}'
	tracker_drain "$DIRTY_TMP/discard"
	L agent h1 vm1 RESUME >/dev/null
	sleep "$2"
	L agent h1 vm1 PAUSE >/dev/null
	: >"$DIRTY_TMP/drained.$name"
	tracker_drain "$DIRTY_TMP/drained.$name"
	Q '{"execute":"block-dirty-bitmap-disable","arguments":{"node":"'"$node"'","name":"'"$name"'"}}'
	Q '{"execute":"nbd-server-start","arguments":{"addr":{"type":"unix","data":{"path":"'"$sock"'"}}}}'
	Q '{"execute":"block-export-add","arguments":{"type":"nbd","id":"'"$name"'","node-name":"'"$node"'","name":"'"$name"'","writable":false,"bitmaps":["'"$name"'"]}}'
	nbdinfo --map="qemu:dirty-bitmap:$name" "nbd+unix:///$name?socket=$sock" \
		>"$DIRTY_TMP/qemu.$name.map" || fail "nbdinfo --map"
	Q '{"execute":"block-export-del","arguments":{"id":"'"$name"'"}}'
	Q '{"execute":"nbd-server-stop"}'
	Q '{"execute":"block-dirty-bitmap-remove","arguments":{"node":"'"$node"'","name":"'"$name"'"}}'
	L agent h1 vm1 RESUME >/dev/null
	res=$("$DIRTY_ORACLE" -g 64k --nbd-map --allow-extra -d "$DIRTY_TMP/drained.$name" \
		"$DIRTY_TMP/qemu.$name.map") || fail "blocks QEMU saw written, not drained: $res"
	log "QEMU's bitmap vs drained: $res"
	[ "$(jq -r .oracle_blocks <<<"$res")" -gt 10 ] || fail "the guest wrote too little: $res"
	assert_eq "$(jq -r .rescan_needed <<<"$res")" false "rescan_needed"
}
interval random 8 random 2M
interval seq 6 sequential 4M
tracker_down
v=$(L verify h1 vm1) || fail "the guest's own verdict: $v"
log "$v"
log PASS
