#!/bin/bash
# mover-sparse: a sparse image (holes, allocated zeros, text, random data)
# copied h1 -> h2 arrives byte-identical and stays sparse: the destination
# allocates what the source does minus its zero runs; holes are never read.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
src=$MOVER_TMP/src.img
truncate -s 512M "$src"
dd if=/dev/urandom of="$src" bs=1M count=16 seek=3 conv=notrunc status=none
dd if=/dev/zero of="$src" bs=1M count=8 seek=40 conv=notrunc status=none    # allocated zeros
head -c 24M < <(yes "ferry moves disks between hosts") | dd of="$src" bs=1M seek=100 conv=notrunc status=none
dd if=/dev/urandom of="$src" bs=4k count=1 seek=$((300 * 256 + 3)) conv=notrunc status=none
sync "$src"

log "copy with --verify"
send "$src" vm1.raw --verify -C 3
same "$src" "$ROOT/vm1.raw" "sparse copy"
assert_eq "$(j image_bytes)" $((512 << 20)) "image size"
assert_eq "$(j verified_bytes)" $((512 << 20)) "verified bytes"
assert_eq "$(j units_sent)" "$(j units_total)" "work units sent (each once)"
assert_eq "$(j zero_bytes)" $((8 << 20)) "allocated zeros detected"
# Holes are never read: read + holes = the image.
assert_eq $(($(j read_bytes) + $(j hole_bytes))) $((512 << 20)) "read + holes"
assert_le "$(j read_bytes)" $((50 << 20)) "bytes read"
assert_le "$(j wire_bytes)" $((45 << 20)) "bytes on the wire"

log "sparseness: source allocation minus the zero run, within file system slack"
sa=$(alloc_kib "$src") da=$(alloc_kib "$ROOT/vm1.raw")
assert_le "$da" $((sa - 8 * 1024 + 256)) "destination allocation (KiB)"
assert_ge "$da" $((sa - 8 * 1024 - 256)) "destination allocation (KiB)"
stat -c %a "$ROOT/vm1.raw" | grep -q 600 || fail "created mode"

log "no part file or journal left behind"
[ -z "$(find "$ROOT" -name '*.ferry-part' -o -name '*.journal')" ] || fail "leftovers: $(find "$ROOT")"
echo "ok: $(j data_bytes) data bytes, $(j wire_bytes) on the wire, $(j wall_ms) ms"
