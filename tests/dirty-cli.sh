#!/bin/bash
# timeout: 60
# ferry-dirty's surface: --help, --version, one JSON object per interval
# with the documented keys, the bytes a writer wrote counted once, plain
# output with a header, and errors as {"error": ...} under -j.
# serial: waits 1.2 s for the tracker to load before writing
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd jq fio

fd=$FERRY_BIN/ferry-dirty
img=$DIRTY_TMP/disk.img
truncate -s 64M "$img"

"$fd" --help | grep -q '^Usage: ferry-dirty' || fail "--help"
"$fd" -V | grep -q '^ferry-dirty ' || fail "-V"
"$fd" -j -V | jq -e .version >/dev/null || fail "-j -V"

log "errors under -j are JSON on stdout, with a non-zero exit"
for args in "/nonexistent/disk" "-g 3k $img" "--interval 0 $img" "--bogus $img" "" \
	"/dev/null"; do
	rc=0
	out=$("$fd" -j $args 2>/dev/null) || rc=$?
	[ $rc != 0 ] || fail "ferry-dirty -j $args: exit 0"
	jq -e '.error | length > 0' <<<"$out" >/dev/null || fail "ferry-dirty -j $args: $out"
done
expect_fail "$fd" /nonexistent/disk
assert_contains "$ERR" "No such file" "plain error"

log "JSON lines while fio writes 8 MiB"
"$fd" -j -P "" -i 0.5 -c 8 "$img" >"$DIRTY_TMP/lines" &
pid=$!
sleep 1.2
fio --name=w --filename="$img" --rw=write --bs=64k --size=8M --ioengine=psync \
	--output-format=terse >/dev/null || fail fio
wait $pid || fail "ferry-dirty -j failed: $(cat "$DIRTY_TMP/lines")"
assert_eq "$(wc -l <"$DIRTY_TMP/lines")" 8 "lines"
jq -e 'has("written_bytes") and has("write_bps") and has("dirty_blocks") and
	has("dirty_bytes") and has("granularity_bytes") and has("rescan_needed") and
	.granularity_bytes == 65536 and .rescan_needed == false' "$DIRTY_TMP/lines" \
	>/dev/null || fail "keys: $(head -1 "$DIRTY_TMP/lines")"
assert_eq "$(jq -s 'map(.written_bytes) | add' "$DIRTY_TMP/lines")" $((8 * 1024 * 1024)) \
	"written_bytes over all lines"
assert_eq "$(jq -s 'last.dirty_bytes' "$DIRTY_TMP/lines")" $((8 * 1024 * 1024)) "dirty_bytes"
jq -s -e 'map(.write_bps) | max > 0' "$DIRTY_TMP/lines" >/dev/null || fail "write_bps"

log "plain output"
"$fd" -P "" -i 0.2 -c 2 "$img" >"$DIRTY_TMP/plain" || fail "plain run"
head -1 "$DIRTY_TMP/plain" | grep -q '^TIME .*WRITTEN/s.*DIRTY-TOTAL.*RESCAN' || fail "header"
assert_eq "$(wc -l <"$DIRTY_TMP/plain")" 3 "plain lines"
log PASS
