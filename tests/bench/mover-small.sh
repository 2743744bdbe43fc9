#!/bin/bash
# tests/bench/mover-small.sh [BIN_DIR [SIZE [RUNS]]]: the fixed cost of one
# small transfer.  A random file of SIZE (default 1M) copied over loopback,
# ferry-copy -> ferry-copy --serve beside nbdcopy --flush -> nbdkit file,
# alternating A B A B for RUNS runs (default 9, destination recreated or
# punched before each); prints both medians and their ratio.  Not timed
# tests: a table for docs/performance.md.
set -u
B=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
size=${2:-1M}
n=${3:-9}
d=$(mktemp -d /var/tmp/b1.XXXX)
head -c $size /dev/urandom > $d/src.img
mkdir $d/root
$B/ferry-copy --serve --listen 127.0.0.1:4799 --root $d/root --token-file $d/tok >/dev/null 2>&1 &
sp=$!
sleep 0.5
truncate -s $(stat -c %s $d/src.img) $d/nbd.img
nbdkit -f -i 127.0.0.1 -p 10899 file $d/nbd.img &
np=$!
sleep 0.5
ft=(); nt=()
for i in $(seq $n); do
	rm -f $d/root/x.img
	s=$(date +%s%N); $B/ferry-copy --token-file $d/tok $d/src.img ferry://127.0.0.1:4799/x.img >/dev/null || echo FERRY FAIL; e=$(date +%s%N)
	ft+=($(( (e-s)/1000 )))
	fallocate -p -o 0 -l $(stat -c %s $d/nbd.img) $d/nbd.img
	s=$(date +%s%N); nbdcopy --flush $d/src.img nbd://127.0.0.1:10899 || echo NBD FAIL; e=$(date +%s%N)
	nt+=($(( (e-s)/1000 )))
done
cmp $d/src.img $d/root/x.img || echo DIFF
kill $sp $np; wait 2>/dev/null
med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
f=$(med "${ft[@]}"); m=$(med "${nt[@]}")
echo "size $size: ferry median ${f} us, nbdcopy median ${m} us, ratio $(echo "scale=2; $f/$m" | bc)"
rm -rf $d
