#!/bin/bash
# cold-refusals: what ferry must refuse, with a clear error and a non-zero
# exit, leaving the VM untouched: unknown VM, unknown host, disk shrink,
# not enough memory on the target, a second operation on a VM that is
# moving, a peer with another cluster key, a non-root caller, and garbage
# on the peer port.
# timeout: 300
. "$(dirname "$0")/lib.sh"
need_root
need_cmd jq setpriv
lab=$(test_lab_name)
L() { "$LAB" --lab "$lab" "$@"; }
lab_up "$lab" --hosts 2
L guest h1 g1 --disk-size 2G --span 16M --memory 128 --write-rate 512K

refuse() { # refuse WANT CMD...: fails, and says WANT
	local want=$1
	shift
	expect_fail L exec h1 "$@"
	assert_contains "$ERR" "$want" "$*"
	log "refused: $ERR"
}
refuse "no such VM" ferry migrate nosuch --to h2
refuse "unknown host 'h9'" ferry migrate g1 --to h9
refuse "own host" ferry migrate g1 --to h1
refuse "allow_same_host" ferry resize g1 --to h1 --memory 160
refuse "unable to resize disk down" ferry resize g1 --to h2 --disk 1
refuse "insufficient memory" ferry resize g1 --to h2 --memory 4000000
refuse "migrate keeps the flavor" ferry migrate g1 --to h2 --memory 256
refuse "insufficient disk space" ferry resize g1 --to h2 --disk 1000000
L ferryd h2 stop
refuse "is ferryd running on h2" ferry migrate g1 --to h2
L ferryd h2 start
# JSON errors parse.
out=$(L exec h1 ferry -j migrate g1 --to h9 || true)
echo "$out" | jq -e '.error | test("unknown host")' >/dev/null || fail "-j error: $out"
assert_eq "$(L virsh h1 domstate g1 | head -1)" running "g1 untouched"
L exec h2 test ! -e /var/lib/libvirt/images/g1 || fail "a refused migration left files on h2"

log "a second operation while one runs"
L exec h1 ferry migrate g1 --to h2
refuse "already in progress" ferry migrate g1 --to h2
refuse "already in progress" ferry resize g1 --to h2 --memory 160
# The refused attempts are on record as errors (as in Nova); one is active.
ms=$(L exec h1 ferry -j migrations g1)
echo "$ms" | jq -e '[.[] | select(.status != "error")] | length == 1' >/dev/null ||
	fail "one active migration only: $ms"
echo "$ms" | jq -e '[.[] | select(.status == "error") | .error | test("insufficient memory")] | any' \
	>/dev/null || fail "the refused resize is recorded with its reason: $ms"
id=$(echo "$ms" | jq -r '.[] | select(.status != "error") | .id')
wait_for 120 sh -c "'$LAB' --lab $lab exec h1 ferry -j show $id | jq -e '.status == \"finished\"'" ||
	fail "first migration did not finish"
L exec h1 ferry revert g1 --wait
L verify h1 g1 | grep -q '^VERIFY PASS' || fail "VERIFY after revert"

log "a peer with another cluster key is refused"
L ferryd h2 stop
L exec h2 sh -c 'sed "s|/etc/ferry/cluster.key|/etc/ferry/other.key|" /etc/ferry/ferryd.conf >/etc/ferry/other.conf &&
	(umask 077; head -c32 /dev/urandom | od -An -tx1 | tr -d " \n" >/etc/ferry/other.key) &&
	ferryd -c /etc/ferry/other.conf --pid-file /run/ferry/ferryd.pid'
refuse "authentication failed" ferry migrate g1 --to h2
L exec h2 grep -q "authentication failed" /var/log/ferry/ferryd.log || fail "h2 logs the refusal"
L exec h1 ferry -j hosts | jq -e '.[] | select(.host == "h2") | .reachable == false' >/dev/null ||
	fail "hosts shows h2 unreachable"
L ferryd h2 restart

log "garbage on the peer port: the connection ends, ferryd lives"
addr=$(L addr h2)
L exec h1 sh -c "head -c 4096 /dev/urandom | timeout 5 nc -q1 $addr 4710 >/dev/null" || true
L exec h1 sh -c "printf '\377\377\377\377' | timeout 5 nc -q1 $addr 4710 >/dev/null" || true
L ferryd h2 status >/dev/null || fail "ferryd on h2 died of garbage"
L exec h1 ferry -j hosts | jq -e '.[] | select(.host == "h2") | .reachable' >/dev/null ||
	fail "h2 no longer answers"

log "the control socket is root-only"
expect_fail L exec h1 setpriv --reuid=65534 --regid=65534 --clear-groups ferry list
assert_contains "$ERR" "ermission denied" "non-root ferry"
log "ok"
