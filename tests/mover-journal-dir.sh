#!/bin/bash
# mover-journal-dir: the receiver's journal directory (ROOT/.ferry) is not a
# destination however the path spells it -- "./.ferry/x", "sub/../.ferry/x",
# "//.ferry/x" -- so a token holder cannot overwrite another transfer's
# journal.  The check is on what the path resolved to.
# timeout: 60
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
mkdir -p "$ROOT/.ferry" "$ROOT/sub"
head -c 4K /dev/urandom >"$ROOT/.ferry/victim.journal"
cp "$ROOT/.ferry/victim.journal" "$MOVER_TMP/victim.orig"
head -c 4K /dev/urandom >"$MOVER_TMP/src.img"
for p in .ferry/victim.journal ./.ferry/victim.journal sub/../.ferry/victim.journal \
	sub/.././.ferry/victim.journal; do
	expect_fail on h1 ferry-copy --token-file "$TOKEN" "$MOVER_TMP/src.img" "ferry://h2/$p"
	assert_contains "$ERR" "the journal directory is not a destination" "$p"
	cmp -s "$ROOT/.ferry/victim.journal" "$MOVER_TMP/victim.orig" || fail "$p: journal overwritten"
	[ -z "$(find "$ROOT/.ferry" -name '*.ferry-part')" ] || fail "$p: a part file in .ferry"
done
log "a file named like the journal directory elsewhere is fine"
send "$MOVER_TMP/src.img" sub/.ferry-not
same "$MOVER_TMP/src.img" "$ROOT/sub/.ferry-not" "ordinary name"
