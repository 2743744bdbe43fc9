#!/bin/bash
# mover-after-commit: once a transfer is committed on one connection, its
# other connection's frames are refused and that connection is closed:
# nothing is written into the renamed file, and no FIN_OK says it was.
# (tests/mover_wire.py script after-commit.)
# timeout: 60
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
wire after-commit c.img $((1 << 20))
[ -f "$ROOT/c.img" ] || fail "the transfer did not commit"
kill -0 "$SERVE_PID" || fail "receiver died"
