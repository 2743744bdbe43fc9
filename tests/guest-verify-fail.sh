#!/bin/bash
# timeout: 360
# The checker can fail.  A guest is stopped cleanly; on the host one data
# block of its disk is (a) damaged, or (b) rolled back to an older record --
# a lost write; after each boot the agent's verdict is VERIFY FAIL naming
# exactly that block.  (c) A saved table older than the data is a FAIL at
# boot too.  (d) The guest's RAM, not its disk, rolled back (virsh restore
# of an older save over a disk written since): VERIFY RAMLOST naming the
# newer blocks, then PASS once learned.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh qemu-system-x86_64 qemu-img busybox cpio od

lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
cleanup_push "$LAB" --lab "$lab" down
L up --hosts 1
disk=/var/lib/libvirt/images/vm1/disk

# A small working set that the sequential writer sweeps 4 times a second.
L guest h1 vm1 --span 1M --write-rate 4M
sleep 2
st=$(L agent h1 vm1 STATUS)
ds=$(kv_get "$st" data_start)
span=$(kv_get "$st" span)
assert_eq "$span" 256 "span in blocks"
L guest-stop h1 vm1

# block_get BLOCK FILE / block_put BLOCK FILE: one 4 KiB block of the disk
block_get() { L exec h1 dd if=$disk of="$2" bs=4096 skip="$1" count=1 status=none; }
block_put() { L exec h1 dd if="$1" of=$disk bs=4096 seek="$2" count=1 conv=notrunc status=none; }
tmp=$(mktemp -d)
cleanup_push rm -rf "$tmp"
rec_seq() { od -An -t u8 -j 8 -N 8 "$1" | tr -d ' '; } # a record's sequence number
# verify_fails HOST VM: the verdict into $v; `ferry-lab verify` must exit 1.
verify_fails() {
	local rc=0
	v=$(L verify "$1" "$2") || rc=$?
	log "$v"
	assert_eq "$rc" 1 "verify exit code"
}

log "(a) damage one block"
bad=$((ds + 37))
block_get $bad "$tmp/blk"
[ "$(head -c 8 "$tmp/blk")" = FERRYREC ] || fail "block $bad holds no record"
printf 'ferry was here, damaging this block' | dd of="$tmp/blk" bs=1 seek=2000 conv=notrunc status=none
block_put "$tmp/blk" $bad
L guest-start h1 vm1
verify_fails h1 vm1
assert_contains "$v" "VERIFY FAIL block=$bad " "verdict"
assert_eq "$(kv_get "$v" got)" badcsum "what the block held"
assert_eq "$(kv_get "$v" bad)" 1 "bad blocks"
j=$(L verify h1 vm1 -j) && fail "verify -j exits 0 on a failure"
printf '%s' "$j" | jq -e ".verdict == \"FAIL\" and .block == $bad" >/dev/null || fail "verify -j: $j"
L guest-stop h1 vm1

log "(b) a lost write: one block rolled back to an older record"
old=$((ds + 200))
block_get $old "$tmp/old"
oldseq=$(rec_seq "$tmp/old")
L guest-start h1 vm1
sleep 1 # the writer sweeps the span several times
L guest-stop h1 vm1
block_get $old "$tmp/new"
newseq=$(rec_seq "$tmp/new")
[ "$newseq" -gt "$oldseq" ] || fail "block $old was not rewritten ($oldseq -> $newseq)"
block_put "$tmp/old" $old
L guest-start h1 vm1
verify_fails h1 vm1
assert_contains "$v" "VERIFY FAIL block=$old expected=seq:$newseq got=seq:$oldseq " "verdict"
L guest-stop h1 vm1

log "(c) the expectation table rolled back under newer data: FAIL at boot"
L exec h1 dd if=$disk of="$tmp/meta" bs=4096 count="$ds" status=none
L guest-start h1 vm1
sleep 1
L guest-stop h1 vm1
L exec h1 dd if="$tmp/meta" of=$disk bs=4096 count="$ds" conv=notrunc status=none
L guest-start h1 vm1
verify_fails h1 vm1
assert_contains "$v" "VERIFY FAIL " "verdict"
assert_contains "$v" " at=boot " "found by"
# A rolled-back table is newer data than it expects: still a failure at boot.
[ "$(kv_get "$v" got | cut -d: -f2)" -gt "$(kv_get "$v" expected | cut -d: -f2)" ] ||
	fail "boot verdict names no newer block: $v"
L guest-stop h1 vm1

log "(d) the guest's RAM rolled back, not its disk: RAMLOST, then PASS"
# A second guest, whose disk no earlier case damaged.
L guest h1 vm2 --span 1M --write-rate 4M
sleep 1
assert_contains "$(L agent h1 vm2 PAUSE)" "OK paused" "pause"
save=/var/lib/libvirt/images/vm2.save
L virsh h1 save vm2 $save >/dev/null
L virsh h1 restore $save >/dev/null
assert_contains "$(L agent h1 vm2 RESUME)" "OK resumed" "resume"
sleep 1 # the writer sweeps the span several times
assert_contains "$(L agent h1 vm2 PAUSE)" "OK paused" "pause"
L virsh h1 destroy vm2 >/dev/null
L virsh h1 restore $save >/dev/null # RAM from before those writes, the disk after
L exec h1 rm -f $save
verify_fails h1 vm2
assert_contains "$v" "VERIFY RAMLOST block=" "verdict"
[ "$(kv_get "$v" lost)" -gt 0 ] || fail "no lost block counted: $v"
[ "$(kv_get "$v" got | cut -d: -f2)" -gt "$(kv_get "$v" expected | cut -d: -f2)" ] ||
	fail "RAMLOST names no newer block: $v"
v=$(L verify h1 vm2) || fail "second verdict: $v"
assert_contains "$v" "VERIFY PASS " "second verdict, the newer blocks learned"
log "PASS"
