#!/bin/bash
# cold-qcow2: qcow2 guests with a Nova-style backing file (_base/HASH) move
# with ferry: the backing file is copied to a destination that lacks it and
# reused, not copied again, when an identical one is there; the overlay
# arrives byte-identical (qemu-img check clean) and the guest verifies.
# Also the confirm window: with resize_confirm_window_s set, a finished
# migration confirms itself.
# timeout: 400
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq qemu-img
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 2

L guest h1 g1 --format qcow2 --backing --disk-size 128M --write-rate 1M
base=$(L exec h1 qemu-img info -U --output=json /var/lib/libvirt/images/g1/disk |
	jq -r '."full-backing-filename" // ."backing-filename"')
log "backing file: $base"
L exec h2 test ! -e "$base" || fail "h2 must start without the base image"

log "g1: migrate to h2 (the base is copied)"
L exec h1 ferry migrate g1 --to h2 --confirm
L exec h2 test -f "$base" || fail "base image copied to h2"
assert_eq "$(L exec h2 sha256sum "$base" | cut -d' ' -f1)" \
	"$(L exec h1 sha256sum "$base" | cut -d' ' -f1)" "base identical on h2"
L exec h2 test ! -e "$base.part" || fail "no partial base left"
L exec h2 qemu-img check -U /var/lib/libvirt/images/g1/disk >/dev/null || fail "qemu-img check on h2"
L verify h2 g1 | grep -q '^VERIFY PASS' || fail "VERIFY of g1 on h2"
stamp=$(L exec h2 stat -c '%i %Y' "$base")

log "g2 on the same base, with a 3 s confirm window on h1: migrate to h2 (base reused)"
FERRY_LAB_FERRYD_CONF='resize_confirm_window_s = 3' L ferryd h1 restart
L guest h1 g2 --format qcow2 --backing --disk-size 128M --write-rate 1M
L exec h1 ferry migrate g2 --to h2 --wait
assert_eq "$(L exec h2 stat -c '%i %Y' "$base")" "$stamp" "base on h2 reused, not copied again"
id=$(L exec h1 ferry -j migrations g2 | jq -r '.[0].id')
wait_for 30 sh -c "'$LAB' --lab $lab exec h1 ferry -j show $id | jq -e '.status == \"confirmed\"'" ||
	fail "the confirm window did not confirm $id"
L virsh h1 dominfo g2 >/dev/null 2>&1 && fail "g2 still defined on h1 after auto-confirm"
L exec h1 test ! -e /var/lib/libvirt/images/g2_resize || fail "g2_resize left on h1"
L verify h2 g2 | grep -q '^VERIFY PASS' || fail "VERIFY of g2 on h2"
log "ok"
