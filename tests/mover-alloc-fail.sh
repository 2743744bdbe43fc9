#!/bin/bash
# mover-alloc-fail: the receiver cannot get a buffer for a DATA frame
# (faultfs fails posix_memalign, a mock of memory exhaustion).  The
# connection fails; the payload it did not read is never parsed as frames
# (here: frames that would end the unit with no data written).
# timeout: 60
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

[ -f "$FAULTFS" ] || fail "$FAULTFS missing (run make)"
mover_lab_up
SERVE_ENV="LD_PRELOAD=$FAULTFS FERRY_FAULT=posix_memalign:*:1+:ENOMEM" mover_serve
wire alloc a.img $((1 << 20))
grep -q "no buffer for it" "$SERVE_LOG" || fail "not reported: $(cat "$SERVE_LOG")"
[ ! -e "$ROOT/a.img" ] || fail "committed"
