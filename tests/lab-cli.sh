#!/bin/bash
# timeout: 120
# ferry-lab's command line: --help, --version, -j output that parses, clear
# errors naming the object, exit codes 0/1/2, exec passing stdin, stdout and
# the exit code through, and extension subcommands from $FERRY_LAB_PATH.
. "$(dirname "$0")/lib.sh"
need_root
need_cmd ip nsenter unshare libvirtd virsh tc jq

name=$(test_lab_name)

# run EXPECTED_RC CMD...: run CMD, check its exit code; output in $OUT/$ERR
run() {
	local want=$1 rc=0
	shift
	OUT=$("$@" 2>"$BUILD/lab-cli.err") || rc=$?
	ERR=$(cat "$BUILD/lab-cli.err")
	assert_eq "$rc" "$want" "exit code of: $*"
}
cleanup_push rm -f "$BUILD/lab-cli.err"
json() { printf '%s' "$OUT" | jq -e "$@" >/dev/null || fail "JSON check '$*' on: $OUT"; }

log "help and version"
run 0 "$LAB" --help
for w in up down exec virsh status shape hosts addr --lab --json; do
	assert_contains "$OUT" "$w" "--help"
done
run 0 "$LAB" -h
run 0 "$LAB" up --help
assert_contains "$OUT" "--hosts" "up --help"
run 0 "$LAB" -V
[[ $OUT =~ ^ferry-lab\ [0-9]+\.[0-9]+ ]] || fail "--version: $OUT"

log "usage errors exit 2"
run 2 "$LAB"
assert_contains "$ERR" "missing COMMAND" "no command"
run 2 "$LAB" frobnicate
assert_contains "$ERR" "unknown command 'frobnicate'" "unknown command"
run 2 "$LAB" -j frobnicate
json '.error | test("unknown command")'
run 2 "$LAB" --frob status
assert_contains "$ERR" "--frob" "unknown option"
run 2 "$LAB" --lab 'bad name!' status
assert_contains "$ERR" "bad name!" "bad lab name"
run 2 "$LAB" --lab "$name" up --hosts zero
run 2 "$LAB" --lab "$name" up --rate fast
assert_contains "$ERR" "--rate 'fast'" "bad rate"
[ ! -e "/var/lib/ferry-lab/$name" ] || fail "a refused up left state behind"

log "a lab that is not up"
run 1 "$LAB" --lab "$name" status
assert_contains "$ERR" "lab '$name' is not up" "status of a missing lab"
run 1 "$LAB" --lab "$name" -j status
json '.error | test("is not up")'

log "up, then -j output"
lab_up "$name" >/dev/null
run 1 "$LAB" --lab "$name" up
assert_contains "$ERR" "already exists" "up twice"
run 0 "$LAB" --lab "$name" -j status
json ".lab == \"$name\" and (.hosts | length) == 2 and .ready"
json '[.hosts[].libvirtd.alive] | all'
json '.hosts[0] | .name == "h1" and (.address | test("^198\\.1[89]\\.")) and .netns != null'
run 0 "$LAB" status --lab "$name" -p
json '.hosts[1].name == "h2"'
run 0 "$LAB" --lab "$name" status
assert_contains "$OUT" "ferry-$name-h1" "plain status"
run 0 "$LAB" --lab "$name" hosts
assert_eq "$(echo "$OUT" | xargs)" "h1 h2" "hosts"
run 0 "$LAB" --lab "$name" -j hosts
json '. == ["h1", "h2"]'
run 0 env FERRY_LAB="$name" "$LAB" addr h2
assert_eq "$OUT" "$("$LAB" --lab "$name" -j status | jq -r '.hosts[1].address')" "addr h2 (lab from \$FERRY_LAB)"
run 0 "$LAB" -j list
json "index(\"$name\") != null"

log "errors name the object"
run 1 "$LAB" --lab "$name" exec h9 true
assert_eq "$ERR" "ferry-lab: h9: no such host in lab '$name' (hosts: h1 h2)" "unknown host"
run 1 "$LAB" --lab "$name" -j virsh h9 list
json ".error == \"h9: no such host in lab '$name' (hosts: h1 h2)\""
run 2 "$LAB" --lab "$name" exec h1
assert_contains "$ERR" "missing CMD" "exec without a command"

log "exec passes stdin, stdout, environment and exit code"
rc=0
OUT=$(echo ping | "$LAB" --lab "$name" exec h1 sh -c 'read -r x; echo "$x $FERRY_LAB_HOST $(hostname) ${PATH%%:*}"; exit 7') || rc=$?
assert_eq "$rc" 7 "exit code through exec"
assert_eq "$OUT" "ping h1 h1 $FERRY_TOP/build/bin" "exec output"
run 0 "$LAB" --lab "$name" virsh h2 hostname
assert_eq "$OUT" h2 "virsh h2 hostname"

log "extensions: FERRY_LAB_PATH/*.sh adds subcommands"
ext=$(mktemp -d)
cleanup_push rm -rf "$ext"
cat >"$ext/hello.sh" <<'EOF'
lab_usage_hello() { echo "  hello HOST             greet HOST"; }
lab_cmd_hello() { lab_load; lab_host_check "$1"; echo "hello $1 at $(lab_host_addr "$1")"; }
EOF
run 0 env FERRY_LAB_PATH="$ext" "$LAB" --help
assert_contains "$OUT" "hello HOST" "--help of an extension"
run 0 env FERRY_LAB_PATH="$ext" "$LAB" --lab "$name" hello h2
assert_eq "$OUT" "hello h2 at $("$LAB" --lab "$name" addr h2)" "extension output"
run 1 env FERRY_LAB_PATH="$ext" "$LAB" --lab "$name" -j hello h7
json '.error | test("h7: no such host")'
echo 'lab_cmd_hosts() { echo hijacked; }' >"$ext/bad.sh"
run 0 env FERRY_LAB_PATH="$ext" "$LAB" --lab "$name" hosts
assert_eq "$(echo "$OUT" | xargs)" "h1 h2" "built-in 'hosts' with an extension redefining it"
assert_contains "$ERR" "redefines built-in command 'hosts'" "warning about a redefined built-in"
log "PASS"
