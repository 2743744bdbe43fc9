#!/bin/bash
# timeout: 180
# The self-checking guest boots under TCG, its agent writes (the sequence
# number advances), obeys PAUSE/RESUME/RATE, and VERIFY says PASS; the
# verdict parses as JSON with -j.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh qemu-system-x86_64 qemu-img busybox cpio jq

lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
cleanup_push "$LAB" --lab "$lab" down
L up --hosts 1

log "boot a guest"
t0=$(date +%s)
L guest h1 vm1 --write-rate 2M --swap 16M
log "ready after $(($(date +%s) - t0))s"
L console h1 vm1 | grep -q "swap on /dev/vdb" || fail "no swap on vdb: $(L console h1 vm1 | tail -5)"
L console h1 vm1 | grep -q "link eth0 up" || fail "the NIC is not up"

log "it writes"
s1=$(L agent h1 vm1 STATUS)
sleep 2
s2=$(L agent h1 vm1 STATUS)
assert_eq "$(kv_get "$s2" pattern)" sequential "pattern"
assert_eq "$(kv_get "$s2" rate)" $((2 << 20)) "rate"
assert_eq "$(kv_get "$s2" boot)" fresh "boot kind"
[ "$(kv_get "$s2" seq)" -gt "$(kv_get "$s1" seq)" ] || fail "seq does not advance: $s1 -> $s2"

log "PAUSE stops it, RESUME and RATE restart it"
p=$(L agent h1 vm1 PAUSE)
assert_contains "$p" "OK paused" "PAUSE"
a=$(kv_get "$(L agent h1 vm1 STATUS)" seq)
sleep 1
b=$(kv_get "$(L agent h1 vm1 STATUS)" seq)
assert_eq "$b" "$a" "seq while paused"
L agent h1 vm1 RATE 8M | grep -q "OK rate=$((8 << 20))" || fail "RATE"
L agent h1 vm1 PATTERN random | grep -q "OK pattern=random" || fail "PATTERN"
L agent h1 vm1 RESUME >/dev/null
sleep 1
c=$(kv_get "$(L agent h1 vm1 STATUS)" seq)
[ "$c" -gt "$b" ] || fail "seq does not advance after RESUME ($b -> $c)"
expect_fail L agent h1 vm1 FROB
assert_contains "$ERR$(L agent h1 vm1 FROB 2>&1 || true)" "unknown command" "unknown command"

log "VERIFY PASS"
v=$(L verify h1 vm1) || fail "verify: $v"
log "$v"
assert_contains "$v" "VERIFY PASS blocks=" "verdict"
[ "$(kv_get "$v" records)" -gt 0 ] || fail "no records written: $v"
j=$(L verify h1 vm1 -j) || fail "verify -j: $j"
printf '%s' "$j" | jq -e '.verdict == "PASS" and .blocks > 0 and .host == "h1"' >/dev/null ||
	fail "verify -j: $j"
log "PASS"
