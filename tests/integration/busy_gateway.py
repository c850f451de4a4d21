#!/usr/bin/env python3
"""Two stand-in gateways on loopback for the load smoke test's check that
parley-load honours a refusal's retry_after_ms. Today's parleyd never answers
an auth `busy`, so a real one cannot be made to: the first stand-in answers
every auth {"error":{"code":"busy","retry_after_ms":HINT}} (the wire contract
of issue 18), the second signs in and joins. Each prints, with wall-clock ms,
"busy T" when it refused and "conn T" when the second was reached.

    busy_gateway.py HINT_MS PORTFILE     (writes "PORT1 PORT2"; exits after 30 s)
"""
import base64
import hashlib
import json
import socket
import struct
import sys
import threading
import time

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
hint = int(sys.argv[1])
out = threading.Lock()


def say(what):
    with out:
        print("%s %d" % (what, int(time.time() * 1000)), flush=True)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise EOFError
        b += c
    return b


def read_frame(s):
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    mask = recv_exact(s, 4)
    data = bytes(c ^ mask[i % 4] for i, c in enumerate(recv_exact(s, n)))
    return b0 & 0x0F, data


def send_text(s, obj):
    data = json.dumps(obj).encode()
    head = bytes([0x81, len(data)]) if len(data) < 126 else bytes([0x81, 126]) + struct.pack("!H", len(data))
    s.sendall(head + data)


def serve(conn, busy):
    try:
        head = b""
        while b"\r\n\r\n" not in head:
            c = conn.recv(4096)
            if not c:
                return
            head += c
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")][0]
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: parley.v1\r\n\r\n")
        if not busy:
            say("conn")
        while True:
            op, data = read_frame(conn)
            if op == 8:
                return
            m = json.loads(data)
            if m["op"] == "auth" and busy:
                say("busy")
                send_text(conn, {"id": m["id"], "error": {"code": "busy", "message": "admitting sign-ins at the rate storage answers", "retry_after_ms": hint}})
            elif m["op"] == "auth":
                send_text(conn, {"id": m["id"], "ok": {"person": "p", "workspace": "w", "role": "member"}})
            elif m["op"] == "join":
                send_text(conn, {"id": m["id"], "ok": {"room": m["room"], "last_seq": 0}})
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def listen(busy):
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)

    def loop():
        while True:
            c, _ = ls.accept()
            threading.Thread(target=serve, args=(c, busy), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return ls.getsockname()[1]


ports = (listen(True), listen(False))
with open(sys.argv[2], "w") as f:
    f.write("%d %d\n" % ports)
time.sleep(30)
