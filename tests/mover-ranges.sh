#!/bin/bash
# mover-ranges: a range copy into an existing destination (what ferryd's
# pre-copy rounds do) makes the destination equal to the source inside the
# ranges, zero runs and holes included (punched: the destination held data
# there), and leaves every byte outside the ranges as it was.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
M=$((1 << 20))
src=$MOVER_TMP/src.img dst=$ROOT/dst.img
truncate -s 96M "$src"
dd if=/dev/urandom of="$src" bs=1M count=20 seek=2 conv=notrunc status=none
dd if=/dev/zero of="$src" bs=1M count=3 seek=10 conv=notrunc status=none # a zero run
dd if=/dev/urandom of="$src" bs=1M count=10 seek=60 conv=notrunc status=none
head -c 96M /dev/urandom >"$dst" # the destination held other data everywhere
cp "$dst" "$MOVER_TMP/dst.before"

# ranges: data + zero run + data; a hole; across a unit boundary; odd bytes
cat >"$MOVER_TMP/ranges" <<RANGES
# offset length
$((8 * M)) $((6 * M))
$((40 * M)) $((2 * M))
$((31 * M + 5)) $((2 * M + 1000))
$((60 * M + 4095)) 2
RANGES
send "$src" dst.img --ranges "$MOVER_TMP/ranges" --unit-size 8M --verify -C 2
assert_eq "$(j total_bytes)" $((10 * M + 1002)) "bytes covered"

python3 - "$src" "$dst" "$MOVER_TMP/dst.before" "$MOVER_TMP/ranges" <<'PY' || fail "range copy"
import sys
src, dst, before = (open(p, "rb").read() for p in sys.argv[1:4])
ranges = sorted(tuple(map(int, l.split())) for l in open(sys.argv[4])
                if l.strip() and l[0] != "#")
pos = 0
for off, ln in ranges:
    if dst[off:off + ln] != src[off:off + ln]:
        sys.exit("range %d+%d differs from the source" % (off, ln))
    if dst[pos:off] != before[pos:off]:  # outside the ranges: untouched
        sys.exit("bytes in %d..%d, outside the ranges, changed" % (pos, off))
    pos = off + ln
if dst[pos:] != before[pos:]:
    sys.exit("bytes after %d, outside the ranges, changed" % pos)
PY
log "zero run and hole in range: punched in the destination"
python3 - "$dst" <<'PY' || fail "no holes where the source had zeros"
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
M = 1 << 20
for off in (10 * M, 12 * M, 40 * M):  # zero run, zero run, hole
    if os.lseek(fd, off, os.SEEK_HOLE) != off:
        sys.exit(1)
PY
