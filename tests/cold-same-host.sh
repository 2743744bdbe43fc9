#!/bin/bash
# cold-same-host: with allow_same_host, a resize may stay on its host (as
# Nova's allow_resize_to_same_host): the new disks are copied, while the VM
# runs, into a staging dir beside the instance dir and take its place once
# the source is kept aside; revert restores the original byte for byte, and
# confirm keeps the (one) definition.  A migration to the same host is
# still refused.
# timeout: 300
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
FERRY_LAB_FERRYD_CONF='allow_same_host = yes' lab_up "$lab" --hosts 1
img=/var/lib/libvirt/images

L guest h1 g1 --disk-size 128M --memory 128 --write-rate 1M --swap 32M
expect_fail L exec h1 ferry migrate g1 --to h1
assert_contains "$ERR" "cannot migrate to its own host" "migrate to self"

log "resize g1 on h1: 192 MiB, 1 GiB disk"
L exec h1 ferry resize g1 --to h1 --memory 192 --disk 1 --wait
assert_eq "$(L virsh h1 domstate g1 | head -1)" running "g1 runs"
assert_eq "$(L virsh h1 dominfo g1 | awk '/Max memory/ {print $3}')" $((192 * 1024)) "memory"
assert_eq "$(L exec h1 stat -c %s $img/g1/disk)" $((1 << 30)) "disk grown"
L exec h1 test -d $img/g1_resize || fail "the original kept as g1_resize"
L exec h1 test ! -e $img/g1.ferry-new || fail "staging dir left"
L verify h1 g1 | grep -q '^VERIFY PASS' || fail "VERIFY after the resize"
ms=$(L exec h1 ferry -j migrations g1)
echo "$ms" | jq -e 'length == 1 and .[0].source == "h1" and .[0].dest == "h1"' >/dev/null ||
	fail "one migration h1 -> h1: $ms"
kept=$(L exec h1 sha256sum $img/g1_resize/disk | cut -d' ' -f1)

log "revert: the original, byte for byte"
L exec h1 ferry revert g1 --wait
assert_eq "$(L virsh h1 dominfo g1 | awk '/Max memory/ {print $3}')" $((128 * 1024)) "old memory"
assert_eq "$(L exec h1 stat -c %s $img/g1/disk)" $((128 << 20)) "old disk size"
id=$(echo "$ms" | jq -r '.[0].id')
s=$(L exec h1 ferry -j show "$id")
assert_eq "$(echo "$s" | jq -r .status)" reverted "status"
assert_eq "$(echo "$s" | jq -r .error)" "" "revert found the restored disk identical"
assert_eq "$(echo "$s" | jq -r '.disks[0].src_sha256')" "$kept" "checksum of the kept copy"
L exec h1 test ! -e $img/g1_resize || fail "g1_resize left after revert"
L verify h1 g1 | grep -q '^VERIFY PASS' || fail "VERIFY after revert"

log "resize again and confirm: the definition stays"
L exec h1 ferry resize g1 --to h1 --vcpus 2 --disk 1 --confirm
assert_eq "$(L virsh h1 domstate g1 | head -1)" running "g1 runs after confirm"
assert_eq "$(L virsh h1 dominfo g1 | awk '/^CPU\(s\)/ {print $2}')" 2 "vcpus"
L exec h1 test ! -e $img/g1_resize || fail "g1_resize left after confirm"
L exec h1 test -f $img/g1/disk.swap || fail "swap disk recreated"
L verify h1 g1 | grep -q '^VERIFY PASS' || fail "VERIFY after confirm"
log "ok"
