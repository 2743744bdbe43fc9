#!/bin/bash
# mover-token: a sender without the receiver's token is refused before
# anything is created; the receiver logs the refusal and keeps serving.
# timeout: 60
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
head -c 1M /dev/urandom >"$MOVER_TMP/src.img"
python3 -c 'import secrets; print(secrets.token_hex(32))' >"$MOVER_TMP/other-token"

expect_fail on h1 ferry-copy --token-file "$MOVER_TMP/other-token" "$MOVER_TMP/src.img" ferry://h2/x.img
assert_contains "$ERR" "ferry://h2/x.img: " "error names the destination"
assert_contains "$ERR" "access denied (wrong token)" "refusal"
[ -z "$(find "$ROOT" -name 'x.img*' -o -name '*.ferry-part')" ] || fail "something was created"
grep -q "refused: access denied" "$SERVE_LOG" || fail "receiver did not log the refusal"

log "a token file that is not a token"
echo nope >"$MOVER_TMP/bad-token"
expect_fail on h1 ferry-copy --token-file "$MOVER_TMP/bad-token" "$MOVER_TMP/src.img" ferry://h2/x.img
assert_contains "$ERR" "not a token" "bad token file"
expect_fail on h1 ferry-copy "$MOVER_TMP/src.img" ferry://h2/x.img
assert_contains "$ERR" "needs --token-file" "missing token file"

log "the right token still works"
send "$MOVER_TMP/src.img" x.img
same "$MOVER_TMP/src.img" "$ROOT/x.img" "copy after refusals"
