#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Process faults (issue 8, section 6), the signal half: kill -9 and a start
again with nothing else to do, and SIGTERM with 1,000 requests in flight,
each of which must complete while the listeners stop accepting at once."""

import errno
import http.client
import os
import resource
import selectors
import signal
import socket
import threading
import time

import weftlib
from weftlib import (Backend, Tap, Weft, check, config_yaml, free_port, request, rst_close,
                     wait_for)

_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))


# ---------------------------------------------------------------- a slow backend

def body_for(i):
    """the body request /slow/@i gets: 16 KiB that differ per request"""
    unit = f"{i:04d}-".encode()
    return (unit * (16384 // len(unit) + 1))[:16384]


class SlowBackend:
    """One thread, one epoll: holds any number of keep-alive connections and
    answers each GET /slow/N @delay seconds after its head arrived, with
    body_for(N). Counts the requests that arrived."""

    def __init__(self, delay):
        self.delay = delay
        self.arrived = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.conns = {}     # socket -> [in, out, due]
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except BlockingIOError:
                return
            c.setblocking(False)
            self.conns[c] = [b"", b"", None]
            self.sel.register(c, selectors.EVENT_READ)

    def _drop(self, c):
        self.sel.unregister(c)
        del self.conns[c]
        c.close()

    def _read(self, c):
        st = self.conns[c]
        try:
            d = c.recv(65536)
        except OSError:
            d = b""
        if not d:
            self._drop(c)
            return
        st[0] += d
        if st[2] is None and b"\r\n\r\n" in st[0]:
            st[2] = time.monotonic() + self.delay
            self.arrived += 1

    def _answer(self, c, st):
        head, st[0] = st[0].split(b"\r\n\r\n", 1)
        path = head.split(b" ")[1].decode()
        body = body_for(int(path.rsplit("/", 1)[1]))
        st[1] += (b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)) + body
        st[2] = None
        self._flush(c, st)

    def _flush(self, c, st):
        try:
            n = c.send(st[1])
        except BlockingIOError:
            n = 0
        except OSError:
            self._drop(c)
            return
        st[1] = st[1][n:]
        self.sel.modify(c, selectors.EVENT_READ | (selectors.EVENT_WRITE if st[1] else 0))

    def _run(self):
        while not self.stopped:
            now = time.monotonic()
            dues = [st[2] for st in self.conns.values() if st[2] is not None]
            timeout = max(0.0, min(dues) - now) if dues else 0.1
            for key, ev in self.sel.select(min(timeout, 0.1)):
                if key.fileobj is self.sock:
                    self._accept()
                elif key.fileobj in self.conns and ev & selectors.EVENT_READ:
                    self._read(key.fileobj)
                if key.fileobj in self.conns and ev & selectors.EVENT_WRITE:
                    self._flush(key.fileobj, self.conns[key.fileobj])
            now = time.monotonic()
            for c, st in list(self.conns.items()):
                if st[2] is not None and st[2] <= now and c in self.conns:
                    self._answer(c, st)

    def stop(self):
        self.stopped = True
        self.thread.join(5)
        for c in list(self.conns):
            rst_close(c)
        self.sock.close()


# ---------------------------------------------------------------- many clients

class Client:
    """a request on its own socket, read to its end by collect()"""

    def __init__(self, port, i):
        self.i = i
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.s.setblocking(False)
        self.s.sendall(b"GET /slow/%d HTTP/1.1\r\nHost: drain\r\n\r\n" % i)
        self.buf = b""
        self.done = False

    def complete(self):
        if b"\r\n\r\n" not in self.buf:
            return False
        head, body = self.buf.split(b"\r\n\r\n", 1)
        for line in head.split(b"\r\n")[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                return len(body) >= int(v)
        return False

    def result(self):
        head, body = self.buf.split(b"\r\n\r\n", 1) if b"\r\n\r\n" in self.buf else (b"", b"")
        status = int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else None
        return status, body


def collect(clients, deadline):
    """reads every client's response until complete, closed or @deadline"""
    sel = selectors.DefaultSelector()
    for c in clients:
        sel.register(c.s, selectors.EVENT_READ, c)
    left = len(clients)
    while left > 0 and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            c = key.data
            try:
                d = c.s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            c.buf += d
            if not d or c.complete():
                # a client closes once it has its answer, as weft lingers for
                sel.unregister(c.s)
                c.s.close()
                c.done = True
                left -= 1
    sel.close()


def read_to_close(s, deadline):
    """everything @s reads until the peer closes; <HUNG> at @deadline.
    Closes @s then, as weft's lingering close waits for"""
    out = b""
    s.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    except socket.timeout:
        out += b"<HUNG>"
    except OSError:
        pass
    s.close()
    return out


def read_response_len(s):
    """reads one response with a content-length from blocking @s; its body length"""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            return None
        buf += d
    head, body = buf.split(b"\r\n\r\n", 1)
    length = int([l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
                 .split(b":")[1])
    while len(body) < length:
        d = s.recv(65536)
        if not d:
            return None
        body += d
    return len(body)


def connect_refused(port):
    """None when a connect is refused; else the connected socket. A connect
    that reached a listener's backlog just as weft closed that listener is
    reset by the kernel: refused too, and never left hanging"""
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
    except (ConnectionRefusedError, ConnectionResetError):
        s.close()
        return None
    return s


def test_sigterm_with_1000_in_flight():
    n = 1000
    drain_s = 10
    slow = SlowBackend(1.5)
    port = free_port()
    w = Weft(config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}",
                           "upstream": "app"}], {"app": [slow.address]}, free_port(),
                         extra=f"workers: 2\ntimeouts: {{drain: {drain_s}s}}\n"))
    w.start()
    clients, raced, idle = [], [], []
    try:
        # keep-alive callers between requests: a drain closes them at once
        for _ in range(20):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            idle[-1].sendall(b"GET /slow/0 HTTP/1.1\r\nHost: drain\r\n\r\n")
        for s in idle:
            check(read_response_len(s) == len(body_for(0)), "an idle caller was not served")
        base = slow.arrived
        clients = [Client(port, i) for i in range(n)]
        wait_for(lambda: slow.arrived - base == n, 10, step=0.01,
                 what=f"all {n} requests in flight at the backend")
        t_term = time.monotonic()
        w.proc.send_signal(signal.SIGTERM)
        # the listeners stop accepting at once: a connect is refused; one
        # that raced the signal is served to its end or closed, never hung
        refused_at = None
        while time.monotonic() < t_term + 2:
            s = connect_refused(port)
            if s is None:
                refused_at = time.monotonic()
                break
            raced.append(s)
            s.sendall(b"GET /slow/%d HTTP/1.1\r\nHost: drain\r\n\r\n" % (n + len(raced)))
            time.sleep(0.005)
        check(refused_at is not None, "listeners still accept 2 s after SIGTERM")
        check(refused_at - t_term < 0.5,
              f"listeners accepted for {refused_at - t_term:.2f} s after SIGTERM")
        check(connect_refused(port) is None, "a connect was accepted again while draining")
        for s in idle:
            check(read_to_close(s, time.monotonic() + 1) == b"",
                  "an idle keep-alive connection was not closed at once by the drain")
        collect(clients, t_term + drain_s)
        for s in raced:
            got = read_to_close(s, t_term + drain_s)
            check(got == b"" or got.endswith(body_for(n + raced.index(s) + 1)),
                  f"a connect that raced SIGTERM got neither its answer nor a close: "
                  f"{got[:100]!r}")
        bad = []
        for c in clients:
            status, body = c.result()
            if status != 200 or body != body_for(c.i):
                bad.append((c.i, status, len(body)))
        check(not bad, f"{len(bad)} of {n} requests did not complete: {bad[:5]}")
        try:
            rc = w.proc.wait(drain_s)
        except Exception:
            raise AssertionError("weft did not exit within timeouts.drain")
        check(time.monotonic() - t_term < drain_s, "weft took longer than timeouts.drain")
        check(rc == 0, f"weft exited {rc} after the drain")
    finally:
        for s in [c.s for c in clients] + raced + idle:
            rst_close(s)
        check(w.stop() == 0, "weft did not exit 0")
        slow.stop()


# ---------------------------------------------------------------- kill -9

def unit_file():
    root = os.environ.get("WEFT_BUILD_ROOT") or os.path.dirname(
        os.path.dirname(os.path.abspath(weftlib.WEFT)))
    return os.path.join(root, "systemd", "weft.service")


def test_unit_restarts_on_failure():
    path = unit_file()
    check(os.path.exists(path), f"no generated unit at {path}")
    section, service = None, {}
    for line in open(path):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            service[k] = v
    check(service.get("Restart") == "on-failure", f"Restart={service.get('Restart')}")
    check("@" not in service.get("ExecStart", "@"), f"ExecStart={service.get('ExecStart')}")
    check(service.get("ExecStart", "").split()[0].endswith("/weft"), "ExecStart is not weft")


def test_kill_9_and_start_again():
    backend = Backend("again")
    port, admin_port = free_port(), free_port()
    first = Weft(config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}",
                               "upstream": "app"}], {"app": [backend.address]}, admin_port,
                             extra="workers: 2\n"))
    second = None
    held = []
    try:
        first.start()
        files = sorted(os.listdir(first.dir))
        before = first.config()
        check(request(port)[0] == 200, "not serving before the kill")
        # connections open on the listener and on admin when it dies, so the
        # ports have sockets in TIME_WAIT and FIN_WAIT when it starts again
        for _ in range(5):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/echo")
            c.getresponse().read()
            held.append(c)
        a = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=5)
        a.request("GET", "/ready")
        a.getresponse().read()
        held.append(a)
        inflight = socket.create_connection(("127.0.0.1", port), timeout=5)
        inflight.sendall(b"GET /slow/3000 HTTP/1.1\r\nHost: a\r\n\r\n")
        wait_for(lambda: any(t == "/slow/3000" for _, t, _ in backend.seen), 5,
                 what="the slow request at the backend")
        first.proc.kill()
        check(first.proc.wait(5) == -signal.SIGKILL, "weft did not die of SIGKILL")
        # the same command line, at once, with nothing cleaned up
        t0 = time.monotonic()
        second = Weft(config_dir=first.dir)
        second.start()
        check(time.monotonic() - t0 < 5, "the restart took more than 5 s")
        check("cannot" not in second.logs(), f"restart complained:\n{second.logs()}")
        status, _, body = request(port)
        check(status == 200 and b'"backend": "again"' in body, f"not serving again: {status}")
        after = second.config()
        check(after["sources"] == before["sources"], "the restarted weft has other sources")
        check(after["listeners"] == before["listeners"], "the restarted weft has other listeners")
        check(sorted(os.listdir(first.dir)) == files, "weft left files in its config directory")
        rst_close(inflight)
    finally:
        for c in held:
            c.close()
        if second is not None:
            check(second.stop() == 0, "the restarted weft did not exit 0")
        if first.proc is not None and first.proc.poll() is None:
            first.proc.kill()
            first.proc.wait()
        backend.stop()


tap = Tap()
tap.run(test_unit_restarts_on_failure)
tap.run(test_kill_9_and_start_again)
tap.run(test_sigterm_with_1000_in_flight)
tap.done()
