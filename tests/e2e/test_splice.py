#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Bodies moved with splice(2): a large plaintext body with a known length
(or one delimited by the close) goes socket -> pipe -> socket without being
copied through weft. The bytes must arrive exactly, keep-alive must go on
after them, small bodies stay on the buffered path, and a transfer that
breaks off must leave no byte behind for the next one."""

import hashlib
import os
import socket

from weftlib import LoopbackServer, Tap, Weft, check, config_yaml, free_port, wait_for

MiB = 1024 * 1024
# not one repeated byte: a lost, doubled or reordered block changes the hash
BLOCK = os.urandom(MiB)


def payload(n):
    """n bytes of BLOCK, shifted by a byte per block."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += BLOCK[i % 251:] + BLOCK[:i % 251]
        i += 1
    return bytes(out[:n])


class BodyServer(LoopbackServer):
    """GET /down/N answers N payload bytes with a length; /cut/N/M announces
    N and closes after M; /eof/N sends N bytes delimited by the close; PUT
    and POST read the body and answer its length and SHA-256."""

    def __init__(self):
        super().__init__(backlog=64)

    def one(self, c, f):
        line = f.readline(65536)
        if not line:
            return False
        method, target, _ = line.decode().split(" ", 2)
        length = 0
        while True:
            h = f.readline(65536)
            if h in (b"\r\n", b""):
                break
            k, v = h.decode().split(":", 1)
            if k.strip().lower() == "content-length":
                length = int(v)
        parts = target.split("/")
        if method in ("PUT", "POST"):
            digest = hashlib.sha256()
            left = length
            while left > 0:
                chunk = f.read(min(left, MiB))
                if not chunk:
                    return False
                digest.update(chunk)
                left -= len(chunk)
            body = f"{length} {digest.hexdigest()}".encode()
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            return True
        n = int(parts[2])
        if parts[1] == "down":
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % n + payload(n))
            return True
        if parts[1] == "cut":
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % n +
                      payload(int(parts[3])))
            return False
        c.sendall(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n" + payload(n))
        return False


class Client:
    """One keep-alive connection, reading responses with a length exactly."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.f = self.sock.makefile("rb")

    def send(self, method, path, body=b""):
        head = f"{method} {path} HTTP/1.1\r\nhost: splice\r\ncontent-length: {len(body)}\r\n\r\n"
        self.sock.sendall(head.encode() + body)
        return self.response()

    def response(self):
        status = int(self.f.readline().split()[1])
        length = None
        while True:
            h = self.f.readline()
            if h in (b"\r\n", b""):
                break
            k, v = h.decode().split(":", 1)
            if k.strip().lower() == "content-length":
                length = int(v)
        body = self.f.read(length) if length is not None else self.f.read()
        return status, body

    def close(self):
        self.f.close()
        self.sock.close()


server = BodyServer()
port = free_port()
w = Weft(config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "app"}],
                     {"app": [f"127.0.0.1:{server.port}"]}, free_port()))
w.start()


def spliced(direction):
    return w.metrics().get(
        f'weft_spliced_bytes_total{{listener="inbound",direction="{direction}"}}', 0)


def test_download_spliced():
    before = spliced("response")
    c = Client(port)
    status, body = c.send("GET", f"/down/{16 * MiB}")
    c.close()
    check(status == 200 and len(body) == 16 * MiB, f"got {status}, {len(body)} bytes")
    check(body == payload(16 * MiB), "the body differs from what the server sent")
    moved = spliced("response") - before
    # what came with the head went through the buffer; the rest was spliced
    check(15 * MiB < moved <= 16 * MiB, f"{moved} response bytes spliced, want most of 16 MiB")


def test_upload_spliced():
    before = spliced("request")
    data = payload(16 * MiB)
    c = Client(port)
    status, body = c.send("PUT", "/up", data)
    c.close()
    want = f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()
    check(status == 200 and body == want, f"server saw {body!r}, want {want!r}")
    moved = spliced("request") - before
    check(15 * MiB < moved <= 16 * MiB, f"{moved} request bytes spliced, want most of 16 MiB")


def test_keepalive_after_splice():
    conns = server.connections
    c = Client(port)
    for i in range(3):
        status, body = c.send("GET", f"/down/{MiB + i}")
        check(status == 200 and body == payload(MiB + i), f"download {i}: {status}, {len(body)}")
        data = payload(MiB - i)
        status, body = c.send("POST", "/up", data)
        check(body == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode(),
              f"upload {i}: server saw {body!r}")
        status, body = c.send("GET", "/down/10")
        check(status == 200 and body == payload(10), f"small request after {i}: {body!r}")
    c.close()
    check(server.connections - conns <= 1,
          f"{server.connections - conns} upstream connections for one keep-alive client")


def test_small_bodies_buffered():
    before = (spliced("request"), spliced("response"))
    c = Client(port)
    status, body = c.send("GET", "/down/40000")
    check(body == payload(40000), "small download differs")
    status, body = c.send("PUT", "/up", payload(40000))
    check(body.startswith(b"40000 "), f"small upload: {body!r}")
    c.close()
    check((spliced("request"), spliced("response")) == before,
          "a body under 64 KiB took a pipe")


def test_close_delimited():
    c = Client(port)
    status, body = c.send("GET", f"/eof/{3 * MiB}")
    c.close()
    check(status == 200 and body == payload(3 * MiB),
          f"close-delimited body: {len(body)} bytes, want {3 * MiB} exactly")


def test_upstream_dies_mid_body():
    c = Client(port)
    status, body = c.send("GET", f"/cut/{8 * MiB}/{2 * MiB}")
    rest = c.f.read()          # nothing more: weft closes a broken message
    c.close()
    check(len(body) + len(rest) < 8 * MiB,
          f"a body cut at 2 MiB reached the client as {len(body)} bytes and a clean end")
    # no byte of the broken body may leak into the next one
    c = Client(port)
    for i in range(4):
        status, body = c.send("GET", f"/down/{2 * MiB}")
        check(body == payload(2 * MiB), f"download {i} after a cut body differs")
    c.close()


def test_client_leaves_mid_download():
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET /down/{64 * MiB} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
        got = 0
        while got < 512 * 1024:
            got += len(s.recv(65536))
        s.close()
    wait_for(lambda: w.metrics().get('weft_connections_active{listener="inbound"}') == 0,
             timeout=10, what="the abandoned downloads to be closed")
    c = Client(port)
    status, body = c.send("GET", f"/down/{4 * MiB}")
    c.close()
    check(body == payload(4 * MiB), "a download after abandoned ones differs")


tap = Tap()
for t in [test_download_spliced, test_upload_spliced, test_keepalive_after_splice,
          test_small_bodies_buffered, test_close_delimited, test_upstream_dies_mid_body,
          test_client_leaves_mid_download]:
    tap.run(t)
w.stop()
tap.done()
