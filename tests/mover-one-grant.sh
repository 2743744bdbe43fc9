#!/bin/bash
# mover-one-grant: a token grants one transfer to one destination, not a
# way to read or resize other files under --root:
# - VERIFY is answered only for what the transfer wrote: neither a range
#   HELLO with no ranges nor a whole-image HELLO into an existing file can
#   read a planted secret back;
# - an existing file smaller than the image is not grown unless the sender
#   asks (--grow);
# - a committed transfer's id is not taken again with the same token.
# timeout: 90
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
head -c 1M /dev/urandom >"$ROOT/secret.img"
cp "$ROOT/secret.img" "$MOVER_TMP/secret.orig"
wire verify-unwritten secret.img $((1 << 20))
cmp -s "$ROOT/secret.img" "$MOVER_TMP/secret.orig" || fail "the secret was changed"

log "growing an existing file only when asked"
printf '18 bytes of data!\n' >"$ROOT/small.img"
truncate -s 4M "$MOVER_TMP/big.img"
head -c 1M /dev/urandom | dd of="$MOVER_TMP/big.img" conv=notrunc status=none
expect_fail on h1 ferry-copy --token-file "$TOKEN" "$MOVER_TMP/big.img" ferry://h2/small.img
assert_contains "$ERR" "smaller than the image" "refusal"
assert_eq "$(stat -c %s "$ROOT/small.img")" 18 "size of the file not grown"
send "$MOVER_TMP/big.img" small.img --grow
same "$MOVER_TMP/big.img" "$ROOT/small.img" "grown when asked"

log "a completed transfer's id is not taken again"
send "$MOVER_TMP/big.img" once.img --resume once-1
expect_fail on h1 ferry-copy --token-file "$TOKEN" --resume once-1 "$MOVER_TMP/big.img" \
	ferry://h2/once.img
assert_contains "$ERR" "is complete" "second use of a completed transfer"
