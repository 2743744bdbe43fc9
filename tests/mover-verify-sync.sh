#!/bin/bash
# mover-verify-sync: the receiver's sync before a verify fails (EIO from
# tests/helpers/faultfs.c, a mock of a failing disk); that is an error for
# the transfer, not a sync done: no verify on any of its connections is
# answered after it.
# timeout: 60
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

[ -f "$FAULTFS" ] || fail "$FAULTFS missing (run make)"
mover_lab_up
# The 1st fdatasync of the part file is the FIN's group commit, the 2nd
# the verify's.
SERVE_ENV="LD_PRELOAD=$FAULTFS FERRY_FAULT=fdatasync:*.ferry-part:2:EIO" mover_serve
wire verify-sync v.img $((1 << 20))
grep -q "faultfs: fdatasync" "$SERVE_LOG" || fail "the fault was not hit: $(cat "$SERVE_LOG")"
grep -q "verify: fdatasync: Input/output error" "$SERVE_LOG" || fail "not reported: $(cat "$SERVE_LOG")"
[ ! -e "$ROOT/v.img" ] || fail "committed"
