#!/bin/bash
# timeout: 400
# live-libvirtd: libvirtd on the destination restarts during the RAM phase
# of a live block migration.  libvirt cannot take an incoming migration
# over across its own restart, so the migration fails there; ferry walks it
# back: vm1 keeps running on h1 and VERIFY PASSes, nothing is left on h2
# (no domain, files or transfer), and the next live migration completes.
. "$(dirname "$0")/live_lib.sh"
lab_up "$lab" --hosts 2
L guest h1 vm1 --disk-size 64M --write-rate 1M
L shape --rate 20mbit

id=$(L exec h1 ferry -j live-migrate vm1 --to h2 | jq -r .id)
for ((i = 0; i < 600; i++)); do
	s=$(L exec h1 ferry -j show "$id")
	jq -e '.step == "ram" and .metrics.memory_processed_bytes > 0' <<<"$s" >/dev/null && break
	jq -e '.step == "failed" or .step == "cancelled" or .step == "completed"' <<<"$s" >/dev/null &&
		fail "$id ended before the RAM phase: $(jq -r '.step + " " + .error' <<<"$s")"
	sleep 0.1
done
log "RAM phase: $(jq -c '.metrics | {memory_processed_bytes, memory_remaining_bytes}' <<<"$s")"
L libvirtd h2 restart
st=$(live_wait "$id" h1 300)
on=$(live_runs_on vm1)
log "$id: $st, vm1 on $on ($(live_show "$id" h1 .error))"
case $st in
completed) assert_eq "$on" h2 "completed, so vm1 runs on h2"; vm_gone h1 vm1 ;;
*) assert_eq "$on" h1 "$st, so vm1 runs on h1"; vm_gone h2 vm1 ;;
esac
assert_eq "$(L virsh "$on" domstate vm1 | head -1)" running "vm1's state on $on"
live_verify "$on" vm1

log "--- the next live migration completes"
L shape --rate none
other=h2; [ "$on" = h2 ] && other=h1
id=$(L exec "$on" ferry -j live-migrate vm1 --to "$other" | jq -r .id)
assert_eq "$(live_wait "$id" "$on")" completed "after libvirtd's restart ($(live_show "$id" "$on" .error))"
live_verify "$other" vm1
vm_gone "$on" vm1
log "ok"
