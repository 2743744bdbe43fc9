#!/bin/bash
# mover-confine: the standalone receiver writes only under --root: "..",
# absolute paths, symlinks leading out (in a directory or as the file
# itself) and its own journal directory are refused, and nothing outside
# the root changes.
# timeout: 60
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
out=$MOVER_TMP/outside
mkdir -p "$out" "$ROOT/sub"
echo "precious" >"$out/target"
ln -s "$out" "$ROOT/linkdir"
ln -s "$out/target" "$ROOT/linkfile"
head -c 64K /dev/urandom >"$MOVER_TMP/src.img"

refused() { # refused PATH REASON
	expect_fail on h1 ferry-copy --token-file "$TOKEN" "$MOVER_TMP/src.img" "ferry://h2/$1"
	assert_contains "$ERR" "$2" "refusal of $1"
}
refused "../outside/x.img" "leads outside the served root"
refused "sub/../../outside/x.img" "leads outside the served root"
refused "linkdir/x.img" "leads outside the served root"
refused "linkfile" "symbolic link"
refused "/$out/target" "directory does not exist"
refused ".ferry/j.img" "journal directory"
refused "sub/" "not a file path"
assert_eq "$(cat "$out/target")" "precious" "file outside the root"
assert_eq "$(ls "$out")" "target" "nothing created outside the root"

log "a path inside the root, through a subdirectory, works"
send "$MOVER_TMP/src.img" /sub/ok.img
same "$MOVER_TMP/src.img" "$ROOT/sub/ok.img" "confined copy"
