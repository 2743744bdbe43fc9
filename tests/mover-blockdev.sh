#!/bin/bash
# mover-blockdev: a block device (loop) as the source and as the
# destination.  The destination device held other data: after the copy it
# equals the source over the image, zero runs included (written, or
# BLKZEROOUT with --zero=zeroout), and is untouched past the image's end.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"
need_cmd losetup mknod

mover_lab_up
mover_serve
truncate -s 64M "$MOVER_TMP/a.back"
dd if=/dev/urandom of="$MOVER_TMP/a.back" bs=1M count=4 seek=10 conv=notrunc status=none
dd if=/dev/urandom of="$MOVER_TMP/a.back" bs=1M count=1 seek=63 conv=notrunc status=none
dd if=/dev/urandom of="$MOVER_TMP/b.back" bs=1M count=96 status=none
loop_a=$(losetup -f --show "$MOVER_TMP/a.back") || skip "no loop devices"
cleanup_push "losetup -d $loop_a"
loop_b=$(losetup -f --show "$MOVER_TMP/b.back") || skip "no loop devices"
cleanup_push "losetup -d $loop_b"
# The receiver serves $ROOT only: give it the device as a node in there.
mknod "$ROOT/disk" b $((0x$(stat -c %t "$loop_b"))) $((0x$(stat -c %T "$loop_b")))
head -c $((32 << 20)) "$loop_b" >"$MOVER_TMP/b-head-before"
tail -c $((32 << 20)) "$loop_b" >"$MOVER_TMP/b-tail-before"

log "loop device -> loop device (zero runs written)"
send "$loop_a" disk --verify
assert_eq "$(j image_bytes)" $((64 << 20)) "image size from the source device"
cmp -n $((64 << 20)) "$loop_a" "$loop_b" || fail "destination device differs over the image"
tail -c $((32 << 20)) "$loop_b" | cmp - "$MOVER_TMP/b-tail-before" || fail "bytes past the image were touched"
assert_eq "$(j zero_bytes)" $((59 << 20)) "zero runs detected on a device source (no SEEK_DATA)"

log "again with --zero=zeroout onto a dirtied device"
dd if=/dev/urandom of="$loop_b" bs=1M count=64 conv=fsync status=none
send "$loop_a" disk --zero=zeroout
cmp -n $((64 << 20)) "$loop_a" "$loop_b" || fail "zeroout: destination differs"

log "loop device -> local file, and a file -> the device"
ferry-copy "$loop_a" "$MOVER_TMP/a.copy" >/dev/null
same "$MOVER_TMP/a.back" "$MOVER_TMP/a.copy" "device to file"
send "$MOVER_TMP/a.copy" disk
cmp -n $((64 << 20)) "$loop_a" "$loop_b" || fail "file to device"

log "a device smaller than the image is refused"
truncate -s 128M "$MOVER_TMP/big.img"
expect_fail on h1 ferry-copy --token-file "$TOKEN" "$MOVER_TMP/big.img" ferry://h2/disk
assert_contains "$ERR" "smaller than the image" "refusal message"
