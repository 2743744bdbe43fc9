#!/bin/bash
# timeout: 60
# Two trackers at once (two processes, one pin directory, as ferryd and an
# operator's ferry-dirty on one host): each sees only its own disks, a
# drain by one does not take the other's blocks, both show in the pinned
# disk table with named fields, and the table is unpinned when both exit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd jq bpftool

pin=/sys/fs/bpf/ferry-test-$$
cleanup_push "rm -rf '$pin'"
x=$DIRTY_TMP/x.img y=$DIRTY_TMP/y.img z=$DIRTY_TMP/z.img
truncate -s 16M "$x" "$y" "$z"

# A second tracker through FIFOs (the first is the coprocess).
mkfifo "$DIRTY_TMP/b.in" "$DIRTY_TMP/b.out"
"$DIRTY_DRAIN" -P "$pin" -g 4k "$y" "$z" <"$DIRTY_TMP/b.in" >"$DIRTY_TMP/b.out" \
	2>"$DIRTY_TMP/b.err" &
bpid=$!
exec 8>"$DIRTY_TMP/b.in" 9<"$DIRTY_TMP/b.out"
cleanup_push "kill $bpid"
read -r -t 30 line <&9 || true
[ "$line" = '{"ready":true}' ] || fail "tracker B: $line $(cat "$DIRTY_TMP/b.err")"
b_drain() { # FILE: drain B's two disks into FILE
	local l
	: >"$1"
	echo drain >&8
	read -r -t 30 l <&9 && echo "$l" >>"$1"
	read -r -t 30 l <&9 && echo "$l" >>"$1"
}
ranges_of() { jq -c --arg p "$2" 'select(.path == $p) | .ranges' "$1"; }

TRACKED=2 tracker_up -P "$pin" -g 4k "$x" "$z"
write() { dd if=/dev/urandom of="$1" bs=4k count=1 seek="$2" conv=notrunc status=none; }

write "$x" 1
write "$y" 2
write "$z" 3
TRACKED=2 tracker_drain "$DIRTY_TMP/a1"
b_drain "$DIRTY_TMP/b1"
assert_eq "$(ranges_of "$DIRTY_TMP/a1" "$x")" "[[4096,4096]]" "A sees x"
assert_eq "$(ranges_of "$DIRTY_TMP/a1" "$z")" "[[12288,4096]]" "A sees z"
assert_eq "$(ranges_of "$DIRTY_TMP/b1" "$y")" "[[8192,4096]]" "B sees y"
assert_eq "$(ranges_of "$DIRTY_TMP/b1" "$z")" "[[12288,4096]]" "B sees z (A drained it too)"

log "the pinned table names both processes' disks"
dump=$(bpftool -j map dump pinned "$pin/dirty_disks") || fail "bpftool map dump"
live=$(jq '[.[] | select(.formatted.value.owner_tgid != 0)] | length' <<<"$dump")
assert_eq "$live" 4 "slots in use"
owners=$(jq -r '[.[] | select(.formatted.value.owner_tgid != 0) | .formatted.value.owner_tgid] | unique | length' <<<"$dump")
assert_eq "$owners" 2 "owners"
jq -e '[.[] | select(.formatted.value.ino == '"$(stat -c %i "$y")"')][0].formatted.value | .writes >= 1 and
	.granularity_bytes == 4096 and has("written_bytes") and has("rescans")' \
	<<<"$dump" >/dev/null || fail "named fields for y: $dump"

log "B stops; A goes on alone"
echo quit >&8
wait $bpid || fail "tracker B failed"
exec 8>&- 9<&-
write "$y" 5
write "$x" 6
TRACKED=2 tracker_drain "$DIRTY_TMP/a2"
assert_eq "$(ranges_of "$DIRTY_TMP/a2" "$x")" "[[24576,4096]]" "A after B left"
assert_eq "$(ranges_of "$DIRTY_TMP/a2" "$z")" "[]" "z untouched"
[ -e "$pin/dirty_disks" ] || fail "table unpinned while A still tracks"
tracker_down
[ ! -e "$pin/dirty_disks" ] || fail "table still pinned after both trackers left"
log PASS
