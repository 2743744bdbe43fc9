#!/bin/bash
# timeout: 60
# Writes through a shared mapping cannot be followed: they must produce the
# rescan flag, never silence.  Checked for a mapping made while tracking,
# for one that existed before tracking started, and that the flag stays
# while the mapping lives and goes once it is unmapped.
# serial: asserts no rescan, and the tracker counts some events machine-wide
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd fio jq python3

img=$DIRTY_TMP/disk.img
truncate -s 64M "$img"

reasons() { jq -r '.rescan_reasons | join(",")' "$1"; }

tracker_up "$img"
tracker_drain "$DIRTY_TMP/d0"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d0")" false "before any mapping"

log "fio's mmap engine writes through MAP_SHARED"
fio --name=m --filename="$img" --rw=randwrite --ioengine=mmap --bs=4k --io_size=4M \
	--output-format=terse >/dev/null || fail "fio mmap"
tracker_drain "$DIRTY_TMP/d1"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d1")" true "rescan after mmap writes"
assert_contains "$(reasons "$DIRTY_TMP/d1")" mmap "reasons"
tracker_drain "$DIRTY_TMP/d2"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d2")" false "once fio unmapped and exited"
tracker_down

log "a shared writable mapping that exists before tracking starts"
fifo=$DIRTY_TMP/fifo
mkfifo "$fifo"
python3 - "$img" "$fifo" <<'PY' &
import mmap, sys
f = open(sys.argv[1], "r+b")
m = mmap.mmap(f.fileno(), 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
ctl = open(sys.argv[2])
for line in ctl:          # each line: write a byte through the mapping
    if line.strip() == "quit":
        break
    m[4096 * 7] = (m[4096 * 7] + 1) % 256
m.close()
PY
mapper=$!
cleanup_push "kill $mapper"
exec 7>"$fifo"
wait_for 5 grep -q "$(stat -c %i "$img")" /proc/$mapper/maps || fail "no mapping"
tracker_up "$img"
echo w >&7
tracker_drain "$DIRTY_TMP/d3"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d3")" true "rescan with a mapping from before"
echo w >&7
tracker_drain "$DIRTY_TMP/d4"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d4")" true "rescan while it is still mapped"
echo quit >&7
exec 7>&-
wait "$mapper"
tracker_drain "$DIRTY_TMP/d5"
tracker_drain "$DIRTY_TMP/d6"
assert_eq "$(jq -r .rescan_needed "$DIRTY_TMP/d6")" false "after the mapping is gone"
log PASS
