#!/bin/bash
# timeout: 60
# Vectored O_DIRECT aio, as QEMU's aio=native writes an LVM-backed disk:
# one IOCB_CMD_PWRITEV per io_submit with 256 iovecs, more than the tracker
# reads back from user memory at io_submit.  On a tracked block device the
# requests are marked as they complete: the drained set is exactly what was
# written, with no rescan.  On a tracked file, where the iovecs are what
# gives the length, the disk says "rescan needed" (reason aio): never
# silence.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd jq losetup
AIOV=$BUILD/tests/dirty-aiov
[ -x "$AIOV" ] || fail "$AIOV missing (run make)"

loop_up 64M
dev=$LOOPDEV
tracker_up -g 4k "$dev"
tracker_drain "$DIRTY_TMP/discard"
log "block device $dev: 40 writes of 256 x 4 KiB iovecs"
"$AIOV" "$dev" "$DIRTY_TMP/dev.log" 40 256 || fail "vectored aio writes to $dev failed"
tracker_drain "$DIRTY_TMP/drained.dev"
oracle 4k "$DIRTY_TMP/drained.dev" "$DIRTY_TMP/dev.log"
tracker_down

img=$DIRTY_TMP/disk.img
truncate -s 64M "$img"
tracker_up -g 4k "$img"
tracker_drain "$DIRTY_TMP/discard"
log "file $img: 4 writes of 256 x 4 KiB iovecs"
"$AIOV" "$img" "$DIRTY_TMP/file.log" 4 256 || fail "vectored aio writes to $img failed"
tracker_drain "$DIRTY_TMP/drained.file"
res=$(tail -n 1 "$DIRTY_TMP/drained.file")
log "file drain: $(jq -c '{rescan_needed, rescan_reasons}' <<<"$res")"
assert_eq "$(jq -r .rescan_needed <<<"$res")" true "rescan_needed on the file"
assert_contains "$(jq -c .rescan_reasons <<<"$res")" aio "rescan reasons on the file"
log "PASS"
