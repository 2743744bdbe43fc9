#!/bin/bash
# timeout: 60
# The write syscalls fio does not use land exactly where they wrote:
# copy_file_range and splice with and without an output offset, sendfile
# at the file position, pwritev2 with flags, writev at the position, write
# on an O_APPEND descriptor, and two threads appending through one shared
# file description.  The script doing them logs what it wrote in fio's
# iolog format; the oracle compares (missed = 0, extra = 0).
# serial: asserts no rescan, and the tracker counts some events machine-wide
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/dirty_lib.sh"
need_cmd jq python3

img=$DIRTY_TMP/disk.img
src=$DIRTY_TMP/src.img
truncate -s 32M "$img"
head -c 4M /dev/urandom >"$src"

tracker_up -g 4k "$img"
tracker_drain "$DIRTY_TMP/discard"
python3 - "$img" "$src" "$DIRTY_TMP/ops.log" <<'PY' || fail "the syscalls failed"
import os, sys, threading
img, src, logpath = sys.argv[1:4]
log = open(logpath, "w")
log.write("fio version 2 iolog\n")
def wrote(off, n):
    if n > 0:
        log.write("%s write %d %d\n" % (img, off, n))

fd = os.open(img, os.O_RDWR)
s = os.open(src, os.O_RDONLY)

# copy_file_range with an output offset, then at the file position
n = os.copy_file_range(s, fd, 100000, 10000, 1234567); wrote(1234567, n)
os.lseek(fd, 3000001, os.SEEK_SET)
n = os.copy_file_range(s, fd, 70000, 0); wrote(3000001, n)

# splice from a pipe, with an output offset and at the file position
r, w = os.pipe()
os.write(w, os.urandom(20000))
n = os.splice(r, fd, 20000, offset_dst=5000123); wrote(5000123, n)
os.write(w, os.urandom(9000))
os.lseek(fd, 6000007, os.SEEK_SET)
n = os.splice(r, fd, 9000); wrote(6000007, n)

# sendfile: the output is written at its file position
os.lseek(fd, 7777777, os.SEEK_SET)
n = os.sendfile(fd, s, 0, 33333); wrote(7777777, n)

# pwritev (three buffers), pwritev2 with a flag, writev at the position
bufs = [os.urandom(1000), os.urandom(5000), os.urandom(300)]
n = os.pwritev(fd, bufs, 9000000); wrote(9000000, n)
n = os.pwritev(fd, bufs, 9500001, os.RWF_DSYNC); wrote(9500001, n)
os.lseek(fd, 10000003, os.SEEK_SET)
n = os.writev(fd, bufs); wrote(10000003, n)

# write on an O_APPEND descriptor: at the end, whatever the position
a = os.open(img, os.O_WRONLY | os.O_APPEND)
end = os.fstat(a).st_size
n = os.write(a, os.urandom(7000)); wrote(end, n)
os.close(a)

# two threads appending through one shared description (f_pos_lock)
shared = os.open(img, os.O_WRONLY)
start = 12000000
os.lseek(shared, start, os.SEEK_SET)
sizes = [[(i * 7919 + t * 104729) % 9000 + 1 for i in range(300)] for t in range(2)]
def appender(t):
    for sz in sizes[t]:
        os.write(shared, b"x" * sz)
ths = [threading.Thread(target=appender, args=(t,)) for t in range(2)]
[th.start() for th in ths]
[th.join() for th in ths]
total = sum(map(sum, sizes))
assert os.lseek(shared, 0, os.SEEK_CUR) == start + total
wrote(start, total)
os.close(shared)
log.close()
PY
: >"$DIRTY_TMP/drained"
tracker_drain "$DIRTY_TMP/drained"
oracle 4k "$DIRTY_TMP/drained" "$DIRTY_TMP/ops.log"
log PASS
