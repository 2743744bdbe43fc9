#!/usr/bin/env python3
# peer_probe.py ADDR PORT MODE: a client of ferryd's peer port, as an
# attacker or an old ferryd would be: without the cluster key, or (mode
# call) with it, as a peer that sends what a real ferryd never would.
#   version  hello with protocol version 1; print the server's reply
#   trickle  one byte a second after the hello; print seconds until closed
#   hold N   open N connections and send nothing; print how many the server
#            closed at once, then hold the rest for 3 s
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import time


def recv_msg(s):
    hdr = b""
    while len(hdr) < 4:
        c = s.recv(4 - len(hdr))
        if not c:
            raise EOFError
        hdr += c
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        c = s.recv(n - len(body))
        if not c:
            raise EOFError
        body += c
    return json.loads(body)


def send_msg(s, obj):
    b = json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(b)) + b)


def proof(key, tag, n1, n2, h1, h2):
    return hmac.new(key, tag + n1 + n2 + h1.encode() + b"\0" + h2.encode() + b"\0",
                    hashlib.sha256).digest()


def call(addr, port, keyfile, me, req):
    """Authenticate as @me with the cluster key, send one request, return the reply."""
    key = bytes.fromhex(open(keyfile).read().strip())
    s = socket.create_connection((addr, port), timeout=30)
    hello = recv_msg(s)
    sn, cn, srv = bytes.fromhex(hello["nonce"]), os.urandom(32), hello["host"]
    send_msg(s, {"version": 2, "host": me, "nonce": cn.hex(),
                 "mac": proof(key, b"C", sn, cn, me, srv).hex()})
    ok = recv_msg(s)
    if not ok.get("ok"):
        return ok
    session = hmac.new(key, b"session:" + cn + sn, hashlib.sha256).digest()
    body = json.dumps(req).encode()
    mac = hmac.new(session, b"c" + struct.pack(">Q", 0) + body, hashlib.sha256).digest()
    s.sendall(struct.pack(">I", len(body) + 32) + body + mac)
    hdr = s.recv(4, socket.MSG_WAITALL)
    n = struct.unpack(">I", hdr)[0]
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return json.loads(data[:-32])


def main():
    addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "version":
        s = socket.create_connection((addr, port), timeout=10)
        hello = recv_msg(s)
        send_msg(s, {"version": 1, "host": "old", "nonce": "00" * 32, "mac": "00" * 32})
        print(json.dumps({"hello": hello, "reply": recv_msg(s)}))
    elif mode == "trickle":
        s = socket.create_connection((addr, port), timeout=30)
        recv_msg(s)
        t0 = time.monotonic()
        s.settimeout(1.0)
        try:
            s.sendall(struct.pack(">I", 200))
            for _ in range(30):
                s.sendall(b"{")
                try:
                    if s.recv(1) == b"":
                        break
                except socket.timeout:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        print("%.1f" % (time.monotonic() - t0))
    elif mode == "hold":
        n, socks, closed = int(sys.argv[4]), [], 0
        for _ in range(n):
            try:
                socks.append(socket.create_connection((addr, port), timeout=2))
            except OSError:
                closed += 1
        time.sleep(0.5)
        for s in socks:
            s.settimeout(0.2)
            try:
                # The server's hello, then EOF if it closed us at once.
                data = s.recv(65536)
                if data == b"" or s.recv(65536) == b"":
                    closed += 1
            except socket.timeout:
                pass
            except OSError:
                closed += 1
        print(closed, flush=True)
        time.sleep(3)
    elif mode == "call":
        # call KEYFILE AS_HOST JSON_REQUEST
        print(json.dumps(call(addr, port, sys.argv[4], sys.argv[5], json.loads(sys.argv[6]))))
    else:
        sys.exit("unknown mode " + mode)


main()
