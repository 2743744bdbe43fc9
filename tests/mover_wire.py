#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""tests/mover_wire.py: a minimal peer speaking the mover's wire format
(docs/wire-format.md), to send a receiver frames that ferry-copy never
would, and to write the fuzzer's seed corpus.

  mover_wire.py send HOST PORT TOKEN_FILE PATH IMAGE_BYTES SCENARIO
      HELLO as a sender would, then one bad frame (see SCENARIOS); prints
      the receiver's ERROR message (or "closed") and exits 0 if the receiver
      refused, 1 if it accepted the frame.
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
VERSION = 1
HELLO, WELCOME, ERROR, DATA, ZERO, UNIT_END, UNIT_ACK, FIN, FIN_OK = range(1, 10)
VERIFY, VERIFY_SUM, COMMIT, COMMIT_OK = range(10, 14)
DATA_ZSTD = 1
UNIT = 1 << 20


def frame(ftype, payload=b"", flags=0, raw_len=0, offset=0, arg=0, length=None):
    n = len(payload) if length is None else length
    return MAGIC + struct.pack("<BBHIIQQ", VERSION, ftype, flags, n, raw_len, offset,
                               arg) + payload


def hello(token, image_bytes, path, xid, unit=UNIT, units=None, flags=0):
    if units is None:
        units = (image_bytes + unit - 1) // unit
    xid, path = xid.encode(), path.encode()
    p = token + struct.pack("<QQQQIIIIHHI", image_bytes, unit, units, 0, flags, 0, 0, 1,
                            len(xid), len(path), 0)
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
    if len(argv) == 3 and argv[1] == "corpus":
        return cmd_corpus(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
