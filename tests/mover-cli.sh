#!/bin/bash
# mover-cli: ferry-copy's command line: --help, --version, -j output that
# parses (summary, checksum, errors as {"error": ...}), usage errors exit 2.
# timeout: 60
. "$(dirname "$0")/lib.sh"
need_cmd jq
tmp=$(mktemp -d /var/tmp/ferry-cli.XXXXXX)
cleanup_push "rm -rf '$tmp'"

ferry-copy --help | grep -q "^Usage: ferry-copy" || fail "--help"
ferry-copy -h | grep -q -- "--serve" || fail "-h"
ferry-copy --version | grep -q "^ferry-copy [0-9]" || fail "--version"
ferry-copy -V -j | jq -e '.version and .wire_version == 3' >/dev/null || fail "-V -j"

head -c 300K /dev/urandom >"$tmp/a"
ferry-copy -j "$tmp/a" "$tmp/b" >"$tmp/out"
jq -e '.image_bytes == 307200 and .data_bytes == 307200 and .wire_bytes > 0 and
	.streams >= 1 and (.transfer_id | length) > 0 and .compress_ratio >= 1 and
	has("hole_bytes") and has("zero_bytes") and has("rate_bps") and has("retries")' \
	"$tmp/out" >/dev/null || fail "-j summary: $(cat "$tmp/out")"
ferry-copy -p "$tmp/a" "$tmp/c" | jq -e .wall_ms >/dev/null || fail "-p summary"
ferry-copy "$tmp/a" "$tmp/d" | grep -q "on the wire" || fail "plain summary"
ferry-copy -j --checksum "$tmp/a" "$tmp/b" | jq -e '.files[0].digest == .files[1].digest' \
	>/dev/null || fail "--checksum -j"
ferry-copy --progress=json "$tmp/a" "$tmp/e" 2>"$tmp/prog" >/dev/null
tail -1 "$tmp/prog" | jq -e '.final and .done_bytes == .total_bytes' >/dev/null ||
	fail "--progress=json: $(cat "$tmp/prog")"

usage() { # usage ARGS...: exit 2, and -j errors are JSON
	local rc=0
	ferry-copy "$@" >/dev/null 2>&1 || rc=$?
	assert_eq $rc 2 "exit status of ferry-copy $*"
	{ ferry-copy -j "$@" 2>/dev/null || true; } | jq -e '.error | length > 0' >/dev/null ||
		fail "-j error for ferry-copy $*"
}
usage --compress=lz4 "$tmp/a" "$tmp/x"
usage -C 99 "$tmp/a" "$tmp/x"
usage --bwlimit=fast "$tmp/a" "$tmp/x"
usage --resume ../x "$tmp/a" "$tmp/x"
usage "$tmp/a"
usage ferry://h1/x "$tmp/x"
usage --serve
usage "$tmp/a" ferry://nohost
usage --no-such-option
rc=0
ferry-copy -j "$tmp/missing" "$tmp/x" >"$tmp/err" || rc=$?
assert_eq $rc 1 "exit status for a missing source"
jq -e '.error | test("missing: No such file")' "$tmp/err" >/dev/null || fail "error: $(cat "$tmp/err")"
