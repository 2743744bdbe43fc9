#!/bin/bash
# mover-huge-sparse: a 1 TiB image holding a few MiB copies in seconds: its
# holes are mapped per work unit and sent as records, never read, and the
# destination is as sparse as the source.  (Not a timing test: the bound
# below is loose; `make bench` has the numbers.)
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
src=$MOVER_TMP/huge.img
truncate -s 1T "$src"
for off in 0 $((137 << 30)) $((512 << 30)) $(((1 << 40) - (2 << 20))); do
	dd if=/dev/urandom of="$src" bs=1M count=2 seek=$((off >> 20)) conv=notrunc status=none
done

start=$(date +%s%N)
send "$src" huge.img
ms=$((($(date +%s%N) - start) / 1000000))
log "1 TiB copied in $ms ms: $(j read_bytes) bytes read, $(j wire_bytes) on the wire"
assert_eq "$(j image_bytes)" $((1 << 40)) "image size"
assert_eq "$(j read_bytes)" $((8 << 20)) "bytes read (the data only)"
assert_le "$(j wire_bytes)" $((12 << 20)) "bytes on the wire (data + 64 bytes of records per unit)"
assert_le "$ms" 60000 "wall time (ms)"
assert_eq "$(digest "$ROOT/huge.img")" "$(digest "$src")" "content digest"
for off in 0 $((137 << 30)) $((512 << 30)) $(((1 << 40) - (2 << 20))); do
	cmp -n $((2 << 20)) -i $off:$off "$src" "$ROOT/huge.img" || fail "data at $off differs"
done
assert_le "$(alloc_kib "$ROOT/huge.img")" $((9 * 1024)) "destination allocation (KiB)"
