#!/bin/bash
# mover-qcow2: qcow2 images are copied as files: byte-identical, and the
# copy passes `qemu-img check` and `qemu-img compare` with the original.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"
need_cmd qemu-img qemu-io

mover_lab_up
mover_serve
src=$MOVER_TMP/vm.qcow2
qemu-img create -q -f qcow2 "$src" 2G
qemu-io -f qcow2 -c "write -P 0x5a 0 3M" -c "write -P 0 64M 8M" -c "write -P 0xa5 1G 5M" \
	-c "write -z 1536M 1M" -c "write -P 0x11 2047M 1M" "$src" >/dev/null
qemu-img check -q "$src" || fail "source image broken"

send "$src" vm.qcow2 --verify
same "$src" "$ROOT/vm.qcow2" "qcow2 copy"
qemu-img check "$ROOT/vm.qcow2" >"$MOVER_TMP/check.out" 2>&1 || fail "qemu-img check: $(cat "$MOVER_TMP/check.out")"
grep -q "No errors were found" "$MOVER_TMP/check.out" || fail "qemu-img check: $(cat "$MOVER_TMP/check.out")"
qemu-img compare -q "$src" "$ROOT/vm.qcow2" || fail "qemu-img compare"
log "qcow2 of $(stat -c %s "$src") bytes: $(j data_bytes) data bytes sent, check clean"
