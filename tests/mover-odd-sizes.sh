#!/bin/bash
# mover-odd-sizes: images whose size is not a multiple of 4 KiB (1 byte,
# 4097 bytes, 10 MiB + 123 with a data tail, a 33 MiB + 1 image across two
# work units), over the network and locally, arrive byte-identical and with
# their exact size.
# timeout: 120
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mover_lib.sh"

mover_lab_up
mover_serve
i=0
for size in 1 4097 $(((10 << 20) + 123)) $(((33 << 20) + 1)); do
	i=$((i + 1))
	src=$MOVER_TMP/odd$i.img
	truncate -s "$size" "$src"
	head -c $((size < 3000 ? size : 3000)) /dev/urandom | dd of="$src" conv=notrunc status=none
	if [ "$size" -gt 8192 ]; then # a data tail that ends mid-block
		head -c 777 /dev/urandom | dd of="$src" bs=1 seek=$((size - 777)) conv=notrunc status=none
	fi
	send "$src" "odd$i.img" --verify
	assert_eq "$(stat -c %s "$ROOT/odd$i.img")" "$size" "size over the network"
	same "$src" "$ROOT/odd$i.img" "odd size $size over the network"
	ferry-copy "$src" "$MOVER_TMP/local$i.img" >/dev/null
	same "$src" "$MOVER_TMP/local$i.img" "odd size $size locally"
	log "size $size ok"
done
