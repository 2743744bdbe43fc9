#!/bin/bash
# mover-empty-zero: an empty image gives an empty file; an all-zero image
# (allocated zeros) gives an all-zero file of the same size that allocates
# nothing, with nothing but records on the wire.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
: >"$MOVER_TMP/empty.img"
send "$MOVER_TMP/empty.img" empty.img
[ -f "$ROOT/empty.img" ] || fail "empty image not created"
assert_eq "$(stat -c %s "$ROOT/empty.img")" 0 "empty image size"
assert_eq "$(j units_total)" 0 "work units of an empty image"

dd if=/dev/zero of="$MOVER_TMP/zero.img" bs=1M count=64 status=none
send "$MOVER_TMP/zero.img" zero.img --verify
same "$MOVER_TMP/zero.img" "$ROOT/zero.img" "all-zero image"
assert_eq "$(j zero_bytes)" $((64 << 20)) "zero bytes detected"
assert_eq "$(j data_bytes)" 0 "data bytes sent"
assert_le "$(j wire_bytes)" 65536 "bytes on the wire"
assert_le "$(alloc_kib "$ROOT/zero.img")" 64 "allocation of the all-zero copy (KiB)"

ferry-copy "$MOVER_TMP/empty.img" "$MOVER_TMP/empty2.img" >/dev/null
assert_eq "$(stat -c %s "$MOVER_TMP/empty2.img")" 0 "local empty copy"
