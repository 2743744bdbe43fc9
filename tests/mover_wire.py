#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""tests/mover_wire.py: a minimal peer speaking the mover's wire format
(docs/wire-format.md), to send a receiver frames that ferry-copy never
would, and to write the fuzzer's seed corpus.

  mover_wire.py send HOST PORT TOKEN_FILE PATH IMAGE_BYTES SCENARIO
      HELLO as a sender would, then one bad frame (see SCENARIOS); prints
      the receiver's ERROR message (or "closed") and exits 0 if the receiver
      refused, 1 if it accepted the frame.
  mover_wire.py script HOST PORT TOKEN_FILE PATH IMAGE_BYTES SCENARIO
      a conversation over one or more connections (see SCRIPTS) that a
      correct receiver must cut short; prints what happened, exits 0 if the
      receiver refused, 1 if it went along.
  mover_wire.py flood HOST PORT N SECONDS
      N connections that trickle a HELLO, one byte a second, for SECONDS;
      prints "closed K of N after S s" (K: closed by the receiver).
  mover_wire.py corpus DIR
      write seed inputs for tests/fuzz/fuzz_frame.c.

No checksums are computed here (no xxHash in Python's standard library):
the bad frames are refused before a checksum matters, and "bad-checksum"
relies on a zero checksum being wrong.
"""
import os
import socket
import struct
import subprocess
import sys

MAGIC = b"FERY"
VERSION = 3
HELLO, WELCOME, ERROR, DATA, ZERO, UNIT_END, UNIT_ACK, FIN, FIN_OK = range(1, 10)
VERIFY, VERIFY_SUM, COMMIT, COMMIT_OK, RANGES = range(10, 15)
DATA_ZSTD = 1
UNIT = 1 << 20


def frame(ftype, payload=b"", flags=0, raw_len=0, offset=0, arg=0, length=None):
    n = len(payload) if length is None else length
    return MAGIC + struct.pack("<BBHIIQQ", VERSION, ftype, flags, n, raw_len, offset,
                               arg) + payload


def hello(token, image_bytes, path, xid, unit=UNIT, units=None, flags=0, conns=1, index=0,
          zero_mode=0, nr_ranges=0, digest=0):
    if units is None:
        units = (image_bytes + unit - 1) // unit
    xid, path = xid.encode(), path.encode()
    p = token + struct.pack("<QQQQIIIIHHI", image_bytes, unit, units, digest, flags, zero_mode,
                            index, conns, len(xid), len(path), nr_ranges)
    return frame(HELLO, p + xid + path)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-1", "--stream-size=%d" % len(data)],
                          input=data, check=True,
                          stdout=subprocess.PIPE).stdout


def recv_frame(s):
    hdr = b""
    while len(hdr) < 32:
        b = s.recv(32 - len(hdr))
        if not b:
            return None, None
        hdr += b
    _, _, ftype, _, n, _, _, _ = struct.unpack("<4sBBHIIQQ", hdr)
    p = b""
    while len(p) < n:
        b = s.recv(n - len(p))
        if not b:
            break
        p += b
    return ftype, p


def scenario_frames(name, image_bytes):
    last = image_bytes - 1
    big = b"\x5a" * 4096
    bomb_src = b"\0" * (1 << 20)
    return {
        # offsets or lengths outside the declared image
        "zero-past-end": frame(ZERO, offset=image_bytes, arg=4096),
        "data-past-end": frame(DATA, big, raw_len=4096, offset=last - 100),
        "zero-wraps": frame(ZERO, offset=(1 << 64) - 4096, arg=8192),
        # a frame crossing a work unit, frames going backwards
        "zero-crosses-unit": frame(ZERO, offset=UNIT - 4096, arg=8192),
        "backwards": frame(ZERO, offset=8192, arg=4096) + frame(ZERO, offset=0, arg=4096),
        # larger than any frame may be
        "data-oversized": frame(DATA, b"", raw_len=16 << 20, offset=0, length=16 << 20),
        "hello-twice": hello(b"\0" * 32, image_bytes, "x", "x"),
        # a zstd frame that would inflate past what it declares
        "zstd-bomb": frame(DATA, zstd(bomb_src), flags=DATA_ZSTD, raw_len=4096, offset=0),
        "bad-checksum": frame(DATA, big, raw_len=4096, offset=0, arg=0),
        "bad-magic": b"NOPE" + b"\0" * 28,
        "bad-version": MAGIC + bytes([9]) + b"\0" * 27,
        "unit-end-mismatch": frame(ZERO, offset=0, arg=4096) + frame(UNIT_END, offset=0,
                                                                     arg=8192),
        "commit-early": frame(COMMIT),
        # header promises 64 KiB, 1000 bytes come, then the sender is gone
        "truncated": frame(DATA, b"\x5a" * 1000, raw_len=65536, offset=0, length=65536),
    }[name]


def cmd_send(host, port, token_file, path, image_bytes, name):
    token = bytes.fromhex(open(token_file).read().strip())
    image_bytes = int(image_bytes)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(hello(token, image_bytes, path, "wire-test-" + name))
    ftype, p = recv_frame(s)
    if ftype != WELCOME:
        msg = p[4:].decode(errors="replace") if ftype == ERROR else "no welcome"
        print("hello refused: " + msg)
        return 2
    try:
        s.sendall(scenario_frames(name, image_bytes))
    except OSError as e:
        print("closed: %s" % e)
        return 0
    if name == "truncated":
        s.shutdown(socket.SHUT_WR)
    try:
        ftype, p = recv_frame(s)
    except OSError as e:
        print("closed: %s" % e)
        return 0
    if ftype is None:
        print("closed")
        return 0
    if ftype == ERROR:
        (err,) = struct.unpack("<I", p[:4])
        print("error %d: %s" % (err, p[4:].decode(errors="replace")))
        return 0
    print("accepted (frame type %d)" % ftype)
    return 1


class Conn:
    """One connection of a scripted conversation."""

    def __init__(self, host, port, timeout=10):
        self.s = socket.create_connection((host, int(port)), timeout=timeout)

    def send(self, data):
        try:
            self.s.sendall(data)
            return True
        except OSError:
            return False

    def expect(self, want):
        """Read frames until one of type want: True; an ERROR or the end:
        False (self.why says which)."""
        while True:
            try:
                ftype, p = recv_frame(self.s)
            except OSError as e:
                self.why = "closed (%s)" % e
                return False
            if ftype is None:
                self.why = "closed"
                return False
            if ftype == ERROR:
                self.why = "error: " + p[4:].decode(errors="replace")
                return False
            if ftype == want:
                return True

    def close(self):
        self.s.close()


def whole_unit(unit=0):
    # A unit of zeros, as a sender sends a hole.
    return frame(ZERO, offset=unit * UNIT, arg=UNIT) + frame(UNIT_END, offset=unit, arg=UNIT)


def script_after_commit(a, b, h):
    """A transfer is committed on one connection; its other connection goes
    on sending (writes into the renamed file, never synced)."""
    if not (a.send(h(0)) and a.expect(WELCOME) and b.send(h(1)) and b.expect(WELCOME)):
        return 2, "handshake failed: " + getattr(a, "why", "") + getattr(b, "why", "")
    if not (a.send(whole_unit() + frame(FIN)) and a.expect(FIN_OK) and a.send(frame(COMMIT))
            and a.expect(COMMIT_OK)):
        return 2, "commit failed: " + a.why
    b.send(frame(ZERO, offset=0, arg=4096) + frame(ZERO, offset=4096, arg=UNIT - 4096)
           + frame(UNIT_END, offset=0, arg=UNIT) + frame(FIN))
    if b.expect(FIN_OK):
        return 1, "frames after the commit were taken (FIN_OK)"
    return 0, "after the commit: " + b.why


def script_verify_sync(a, b, h):
    """The receiver's verify sync fails (faultfs): no verify may pass after
    it, on any connection of the transfer."""
    if not (a.send(h(0)) and a.expect(WELCOME) and b.send(h(1)) and b.expect(WELCOME)):
        return 2, "handshake failed"
    if not (a.send(whole_unit() + frame(FIN)) and a.expect(FIN_OK)):
        return 2, "fin failed: " + a.why
    a.send(frame(VERIFY, offset=0, arg=UNIT))
    first = "answered" if a.expect(VERIFY_SUM) else a.why
    b.send(frame(VERIFY, offset=0, arg=UNIT))
    if b.expect(VERIFY_SUM):
        return 1, "first verify: %s; second verify answered after a failed sync" % first
    return 0, "first verify: %s; second: %s" % (first, b.why)


def script_commit_fail(a, b, h):
    """A group commit fails (faultfs); the sender goes on over its other
    connection as if it had not: its COMMIT must not succeed, since a unit
    was never journaled."""
    if not (a.send(h(0)) and a.expect(WELCOME) and b.send(h(1)) and b.expect(WELCOME)):
        return 2, "handshake failed"
    a.send(whole_unit(0) + frame(FIN))
    first = "FIN_OK" if a.expect(FIN_OK) else a.why
    b.send(whole_unit(1) + frame(FIN) + frame(COMMIT))
    if b.expect(COMMIT_OK):
        return 1, "first group commit: %s; yet the transfer committed" % first
    return 0, "first group commit: %s; then: %s" % (first, b.why)


def script_verify_unwritten(a, b, h):
    """VERIFY of what the transfer never wrote (an existing file's bytes)."""
    if not (a.send(h(0)) and a.expect(WELCOME)):
        return 0, "hello refused: " + a.why
    a.send(frame(VERIFY, offset=0, arg=4096))
    if a.expect(VERIFY_SUM):
        return 1, "verify of unwritten bytes answered"
    return 0, a.why


def script_alloc(a, b, h):
    """A DATA frame whose buffer cannot be had (faultfs fails posix_memalign);
    its payload holds frames that would end the unit without data."""
    if not (a.send(h(0)) and a.expect(WELCOME)):
        return 2, "hello refused: " + a.why
    inner = frame(ZERO, offset=64, arg=UNIT - 64) + frame(UNIT_END, offset=0, arg=UNIT)
    a.send(frame(DATA, inner, raw_len=len(inner), offset=0, arg=0) + frame(FIN))
    if a.expect(FIN_OK):
        return 1, "the payload was parsed as frames: unit done without data"
    return 0, a.why


def script_idle(a, b, h):
    """An authenticated connection that trickles a frame, a byte a second,
    must be closed by its frame deadline (the receiver's --idle-timeout),
    not kept as long as bytes come."""
    import time
    if not (a.send(h(0)) and a.expect(WELCOME)):
        return 2, "hello refused: " + a.why
    start = time.time()
    for byte in frame(ZERO, offset=0, arg=4096):
        if not a.send(bytes([byte])):
            break
        time.sleep(1)
    a.s.settimeout(5)
    a.expect(UNIT_ACK)
    took = time.time() - start
    return (0 if took < 20 else 1), "%s after %.0f s" % (a.why, took)


SCRIPTS = {"after-commit": script_after_commit, "verify-sync": script_verify_sync,
           "verify-unwritten": script_verify_unwritten, "alloc": script_alloc,
           "idle": script_idle, "commit-fail": script_commit_fail}


def cmd_script(host, port, token_file, path, image_bytes, name):
    token = bytes.fromhex(open(token_file).read().strip())
    image_bytes = int(image_bytes)
    xid = "wire-%s-%d" % (name, os.getpid())
    flags = 0
    if name == "verify-unwritten":
        flags = 1  # a range copy with no ranges
    h = lambda i: hello(token, image_bytes, path, xid, conns=2, index=i, flags=flags,
                        units=0 if flags else None)
    a = Conn(host, port)
    b = Conn(host, port) if name in ("after-commit", "verify-sync", "commit-fail") else None
    rc, what = SCRIPTS[name](a, b, h)
    print(what)
    if rc == 0 and name == "verify-unwritten":
        # And a whole-image transfer into the same file, before writing.
        c = Conn(host, port)
        hh = hello(token, image_bytes, path, xid + "-w")
        if c.send(hh) and c.expect(WELCOME):
            c.send(frame(VERIFY, offset=0, arg=4096))
            if c.expect(VERIFY_SUM):
                print("whole-image transfer: verify of unwritten bytes answered")
                rc = 1
            else:
                print("whole-image transfer: " + c.why)
        else:
            print("whole-image hello: " + c.why)
    return rc


def cmd_flood(host, port, n, seconds):
    import time
    n, seconds = int(n), float(seconds)
    junk = hello(b"\0" * 32, 1 << 20, "flood", "flood")
    socks = []
    for _ in range(n):
        try:
            socks.append(socket.create_connection((host, int(port)), timeout=5))
        except OSError:
            pass
    start = time.time()
    alive = list(range(len(socks)))
    pos = 0
    while time.time() - start < seconds and alive and pos < len(junk):
        still = []
        for i in alive:
            try:
                socks[i].send(junk[pos:pos + 1])
                still.append(i)
            except OSError:
                pass
        alive = still
        pos += 1
        time.sleep(1)
    # A receiver that closed us (maybe with an ERROR first): the next read
    # says so at once.
    closed = 0
    for sk in socks:
        sk.setblocking(False)
        try:
            sk.recv(4096)
            closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print("closed %d of %d after %.0f s" % (closed, n, time.time() - start))
    return 0


def cmd_corpus(d):
    os.makedirs(d, exist_ok=True)
    tok = bytes(range(32))
    img = 8 << 20
    text = (b"ferry moves disks " * 300)[:4096]
    seeds = {
        "copy": hello(tok, img, "vm1.raw", "seed-1") + frame(ZERO, offset=0, arg=4096)
        + frame(DATA, text, raw_len=4096, offset=4096) + frame(UNIT_END, offset=0, arg=8192)
        + frame(FIN) + frame(VERIFY, offset=0, arg=8192) + frame(COMMIT),
        "zstd": hello(tok, img, "d/vm2.qcow2", "seed-2", units=2, flags=1)
        + frame(DATA, zstd(text), flags=DATA_ZSTD, raw_len=4096, offset=UNIT)
        + frame(UNIT_END, offset=1, arg=4096),
        "ranges": hello(tok, img, "vm3.raw", "seed-3", units=2, flags=1, nr_ranges=2)
        + frame(RANGES, struct.pack("<QQQQ", 4096, 8192, UNIT + 512, 100))
        + frame(ZERO, offset=4096, arg=8192) + frame(UNIT_END, offset=0, arg=8192)
        + frame(DATA, text[:100], raw_len=100, offset=UNIT + 512),
        "welcome": frame(WELCOME, struct.pack("<IIQQQ", 2, 8, img, 3, 0) + b"\x07" + b"\0" * 7),
        "error": frame(ERROR, struct.pack("<I", 74) + b"extent 0x0+4K: checksum mismatch"),
        "acks": frame(UNIT_ACK, offset=3) + frame(FIN_OK)
        + frame(VERIFY_SUM, struct.pack("<Q", 8192), arg=5) + frame(COMMIT_OK, b"\0" * 32),
    }
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    return 0


def main(argv):
    if len(argv) == 8 and argv[1] == "send":
        return cmd_send(*argv[2:])
    if len(argv) == 8 and argv[1] == "script":
        return cmd_script(*argv[2:])
    if len(argv) == 6 and argv[1] == "flood":
        return cmd_flood(*argv[2:])
    if len(argv) == 3 and argv[1] == "corpus":
        return cmd_corpus(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
