#!/bin/bash
# ferry-cli: the command-line surface of ferry and ferryd without a cluster:
# --help, --version, usage errors (exit 2), JSON errors that parse, and
# ferryd's configuration parsing (--dump-config, errors naming file:line).
. "$(dirname "$0")/lib.sh"
need_cmd jq
tmp=$(mktemp -d)
cleanup_push "rm -rf '$tmp'"

ferry --help | grep -q "migrate VM" || fail "ferry --help"
ferry --version | grep -q "^ferry [0-9]" || fail "ferry --version"
ferryd --help | grep -q -- "--dump-config" || fail "ferryd --help"
ferryd --version | grep -q "^ferryd [0-9]" || fail "ferryd --version"

rc=0; ferry nosuchcmd 2>/dev/null || rc=$?
assert_eq "$rc" 2 "unknown command exits 2"
rc=0; ferry migrate 2>/dev/null || rc=$?
assert_eq "$rc" 2 "migrate without a VM exits 2"

# No ferryd behind the socket: a clear error, JSON under -j.
out=$(ferry -j -s "$tmp/none.sock" list || true)
echo "$out" | jq -e '.error | test("is ferryd running")' >/dev/null || fail "-j error: $out"
expect_fail ferry -s "$tmp/none.sock" hosts
assert_contains "$ERR" "none.sock" "plain error names the socket"

cat >"$tmp/ok.conf" <<CONF
# a comment
host = hA
listen = 198.18.9.1:4710
peers = hB=198.18.9.2:4710, hC=198.18.9.3
precopy_target_bytes = 16M
track_granularity = 128K
CONF
j=$(ferryd -c "$tmp/ok.conf" --dump-config -j)
assert_eq "$(echo "$j" | jq -r .host)" hA "host"
assert_eq "$(echo "$j" | jq -r '.peers | map(.name) | join(",")')" "hB,hC" "peers"
assert_eq "$(echo "$j" | jq -r '.peers[1].addr')" "198.18.9.3:4710" "default peer port"
assert_eq "$(echo "$j" | jq -r .precopy_target_bytes)" $((16 << 20)) "sizes"
assert_eq "$(echo "$j" | jq -r .mover_listen)" "198.18.9.1:4711" "mover port next to listen"
ferryd -c "$tmp/ok.conf" --dump-config | grep -q "^host = hA" || fail "plain --dump-config"

printf 'host = x\nfrobnicate = 1\n' >"$tmp/bad.conf"
expect_fail ferryd -f -c "$tmp/bad.conf" --dump-config
assert_contains "$ERR" "bad.conf:2: unknown key 'frobnicate'" "unknown key"
printf 'track_granularity = 3000\n' >"$tmp/bad2.conf"
expect_fail ferryd -f -c "$tmp/bad2.conf" --dump-config
assert_contains "$ERR" "bad2.conf:1: bad value for 'track_granularity'" "bad value"
printf 'peers = justaname\n' >"$tmp/bad3.conf"
expect_fail ferryd -c "$tmp/bad3.conf" --dump-config
assert_contains "$ERR" "bad3.conf:1" "bad peers"
# etcd's endpoints are URLs: an address alone is refused, naming the line.
printf 'host = x\netcd = http://198.18.0.80:2379, 198.18.0.81:2379\n' >"$tmp/bad4.conf"
expect_fail ferryd -c "$tmp/bad4.conf" --dump-config
assert_contains "$ERR" "bad4.conf:2: bad value for 'etcd'" "etcd endpoint without a scheme"
printf 'host = x\netcd = http://198.18.0.80:2379, http://198.18.0.81:2379\ncluster_lease_ttl_s = 4\n' >"$tmp/ok2.conf"
assert_eq "$(ferryd -c "$tmp/ok2.conf" --dump-config -j | jq -r '.etcd + " " + (.cluster_lease_ttl_s | tostring)')" \
	"http://198.18.0.80:2379, http://198.18.0.81:2379 4" "etcd in --dump-config"
log "ok"
