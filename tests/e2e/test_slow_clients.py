#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Slow clients (issue 8, section 4): slowloris and slow POST.

A head trickled at a byte a second is answered 408 request_header_timeout
at timeouts.request_header; a body trickled so is answered 408
request_body_timeout at timeouts.request_body, on the buffered, the spliced
and the chunked path. A large body at a reasonable rate is never cut, since
each limits.min_request_body_rate bytes add a second, and a slow upstream
is never blamed on the client. Meanwhile other clients keep their answers,
and weft does not spin."""

import os
import socket
import threading
import time

from weftlib import (LoopbackServer, Tap, Weft, check, config_yaml, free_port, metric_sum,
                     request, wait_for)

HEADER_S = 2
BODY_S = 2
RATE = 1000          # limits.min_request_body_rate, bytes/s


class BodyBackend(LoopbackServer):
    """reads each request's body (Content-Length or chunked) and answers its
    length; /slowread/MS waits MS ms before reading the body"""

    def __init__(self):
        self.requests = 0
        super().__init__()

    def one(self, c, f):
        line = f.readline(65536)
        if not line:
            return False
        target = line.split(b" ")[1].decode()
        hmap = {}
        while True:
            h = f.readline(65536)
            if h in (b"\r\n", b""):
                break
            k, v = h.decode().split(":", 1)
            hmap[k.strip().lower()] = v.strip()
        if target.startswith("/slowread/") or target.startswith("/slowcontinue/"):
            time.sleep(int(target.split("/")[2]) / 1000)
        if target.startswith("/slowcontinue/"):
            c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        n = 0
        if hmap.get("transfer-encoding") == "chunked":
            while True:
                size = int(f.readline().split(b";")[0], 16)
                if size == 0:
                    f.readline()
                    break
                n += len(f.read(size))
                f.read(2)
        else:
            left = int(hmap.get("content-length", "0"))
            while left > 0:
                d = f.read(min(left, 65536))
                if not d:
                    return False
                n += len(d)
                left -= len(d)
        self.requests += 1
        body = b"%d\n" % n
        c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        return True


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])      # utime + stime


def read_all(s):
    out = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d
    except ConnectionResetError:
        return out + b"<RESET>"


def answer_of(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1]) if head[0].startswith("HTTP/1.1 ") else None
    hdrs = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return status, hdrs


class Trickler:
    """@n connections that each send @data a byte every @interval seconds,
    from one thread, until weft closes them; records when each closed and
    what it got"""

    def __init__(self, n, data, interval=1.0, start_with=b""):
        self.socks = []
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", PORT), timeout=15)
            if start_with:
                s.sendall(start_with)
            self.socks.append(s)
        self.data = data
        self.interval = interval
        self.t0 = time.monotonic()
        self.results = [None] * n        # (seconds until closed, bytes got)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        i = 0
        while not self.stop and i < len(self.data) and any(r is None for r in self.results):
            for k, s in enumerate(self.socks):
                if self.results[k] is not None:
                    continue
                try:
                    s.sendall(self.data[i:i + 1])
                except OSError:
                    self._finish(k, s)
            i += 1
            end = time.monotonic() + self.interval
            while time.monotonic() < end:
                self._poll()
                time.sleep(0.05)
        while not self.stop and any(r is None for r in self.results):
            self._poll()
            time.sleep(0.05)

    def _poll(self):
        for k, s in enumerate(self.socks):
            if self.results[k] is None:
                s.setblocking(False)
                try:
                    d = s.recv(65536, socket.MSG_PEEK)
                except BlockingIOError:
                    continue
                except OSError:
                    d = b""
                finally:
                    s.setblocking(True)
                if d is not None:
                    self._finish(k, s)

    def _finish(self, k, s):
        s.settimeout(5)
        got = read_all(s)
        self.results[k] = (time.monotonic() - self.t0, got)
        s.close()

    def wait(self, timeout):
        self.thread.join(timeout)
        self.stop = True
        self.thread.join(5)
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        return self.results


def normal_requests_during(seconds):
    """normal requests on fresh connections while @seconds pass: how many,
    and the slowest one's time; each must be answered 200"""
    n, slowest = 0, 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        status, _, body = request(PORT, "POST", "/echo", body=b"x" * 100, timeout=5)
        slowest = max(slowest, time.monotonic() - t)
        check(status == 200 and body == b"100\n", f"a normal client got {status} {body!r}")
        n += 1
        time.sleep(0.02)
    return n, slowest


def check_closed_with(results, status, token, lo, hi):
    for r in results:
        check(r is not None, "a slow connection was never closed")
        when, got = r
        st, hdrs = answer_of(got)
        check(st == status and hdrs.get("x-weft-error") == token,
              f"want {status} {token}, got {got[:200]!r}")
        check(hdrs.get("connection") == "close", "no connection: close")
        check(b"<RESET>" not in got, "reset instead of a clean close")
        check(lo <= when <= hi, f"closed after {when:.1f}s, want {lo}..{hi}s")


# ---------------------------------------------------------------- slowloris

def test_slowloris_many():
    """200 connections trickle a head at a byte a second: each is answered
    408 request_header_timeout at about timeouts.request_header and
    closed; a normal client keeps getting answers meanwhile, and weft does
    not spin"""
    before = WEFT.metrics().get("weft_bad_requests_total", 0)
    head = b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Slow: " + b"s" * 100
    ticks0, t0 = cpu_ticks(WEFT.proc.pid), time.monotonic()
    tr = Trickler(200, head, 1.0)
    n, slowest = normal_requests_during(HEADER_S + 0.5)
    results = tr.wait(HEADER_S + 10)
    cpu = (cpu_ticks(WEFT.proc.pid) - ticks0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0)
    check(n >= 5, f"only {n} normal requests were answered")
    check(slowest < 4, f"a normal request took {slowest:.1f}s")
    check_closed_with(results, 408, "request_header_timeout", HEADER_S - 0.5, HEADER_S + 4)
    check(cpu < 0.5, f"weft used {cpu:.0%} of a core with slow clients")
    m = WEFT.metrics()
    check(m.get("weft_bad_requests_total", 0) >= before + 200, "the timeouts were not counted")


def test_slowloris_after_keepalive():
    """a second head on a kept connection trickled: the same 408"""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok")
    first = s.recv(65536)
    check(first.startswith(b"HTTP/1.1 200"), f"first request: {first!r}")
    t0 = time.monotonic()
    for b in b"GET /echo HTTP/1.1\r\n":
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        s.settimeout(1.0)
        try:
            d = s.recv(65536, socket.MSG_PEEK)
            if d:
                break
        except socket.timeout:
            pass
    s.settimeout(5)
    got = read_all(s)
    when = time.monotonic() - t0
    st, hdrs = answer_of(got)
    check(st == 408 and hdrs.get("x-weft-error") == "request_header_timeout", f"got {got[:200]!r}")
    check(HEADER_S - 0.5 <= when <= HEADER_S + 4, f"closed after {when:.1f}s")
    s.close()


# ---------------------------------------------------------------- slow POST

def slow_post(head, body, lo=BODY_S - 0.5, hi=BODY_S + 4):
    tr = Trickler(1, body, 1.0, start_with=head)
    results = tr.wait(BODY_S + 12)
    check_closed_with(results, 408, "request_body_timeout", lo, hi)


def test_slow_post_buffered():
    """a small body at a byte a second: 408 request_body_timeout"""
    before = WEFT.metrics().get("weft_bad_requests_total", 0)
    slow_post(b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", b"b" * 100)
    check(WEFT.metrics().get("weft_bad_requests_total", 0) >= before + 1, "not counted")


def test_slow_post_spliced():
    """a body large enough to be spliced socket to socket: the same"""
    spliced0 = metric_sum(WEFT.metrics(), "weft_spliced_bytes_total")
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n"
    tr = Trickler(1, b"b" * 100, 1.0, start_with=head)
    results = tr.wait(BODY_S + 12)
    check_closed_with(results, 408, "request_body_timeout", BODY_S - 0.5, BODY_S + 4)
    check(metric_sum(WEFT.metrics(), "weft_spliced_bytes_total") > spliced0,
          "the body did not take the splice path")


def test_slow_post_chunked():
    slow_post(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
              b"64\r\n" + b"c" * 100)


def test_slow_post_many_others_served():
    """50 slow bodies at once: all cut, normal clients served meanwhile"""
    head = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
    tr = Trickler(50, b"b" * 100, 1.0, start_with=head)
    n, slowest = normal_requests_during(BODY_S + 0.5)
    results = tr.wait(BODY_S + 12)
    check(n >= 5 and slowest < 4, f"normal clients starved: {n} answers, slowest {slowest:.1f}s")
    check_closed_with(results, 408, "request_body_timeout", BODY_S - 0.5, BODY_S + 4)


def steady_post(path, total, seconds, block=4096):
    """@total bytes over about @seconds at an even rate; the answer"""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=30)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
              % (path.encode(), total))
    sent, t0 = 0, time.monotonic()
    while sent < total:
        n = min(block, total - sent)
        s.sendall(b"r" * n)
        sent += n
        delay = t0 + seconds * sent / total - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    got = read_all(s)
    s.close()
    return got, time.monotonic() - t0


def test_reasonable_rate_not_cut():
    """a large body at 8 KB/s (over min_request_body_rate) for about twice
    timeouts.request_body is not cut: each RATE bytes add a second"""
    total = 8192 * (2 * BODY_S + 1)
    got, took = steady_post("/echo", total, 2 * BODY_S + 1)
    check(took > BODY_S + 1, f"the upload took only {took:.1f}s: the test proves nothing")
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"%d\n" % total),
          f"a steady upload was cut: {got[:200]!r}")


def test_large_spliced_rate_not_cut():
    """the same for a spliced body (1 MiB at 256 KiB/s, 4 s)"""
    total = 1 << 20
    got, took = steady_post("/echo", total, 4, block=65536)
    check(took > BODY_S + 1, f"the upload took only {took:.1f}s")
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"%d\n" % total),
          f"a steady spliced upload was cut: {got[:200]!r}")


def test_slow_upstream_not_blamed():
    """the upstream reads the body only after 3 s; the client sent it all at
    once, so the wait is not the client's: no 408"""
    total = 4 << 20
    got, took = steady_post(f"/slowread/{(BODY_S + 1) * 1000}", total, 0, block=1 << 20)
    check(took > BODY_S, f"took only {took:.1f}s: the test proves nothing")
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"%d\n" % total),
          f"a slow upstream was blamed on the client: {got[:200]!r}")


def test_expect_wait_not_blamed():
    """a client that sent Expect: 100-continue waits for the 100, which the
    upstream sends after 3 s: that wait is not the client's"""
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    s.sendall(b"POST /slowcontinue/%d HTTP/1.1\r\nHost: a\r\nConnection: close\r\n"
              b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n" % ((BODY_S + 1) * 1000))
    t0 = time.monotonic()
    first = s.recv(65536)
    check(first.startswith(b"HTTP/1.1 100 "), f"no 100 Continue first: {first[:200]!r}")
    check(time.monotonic() - t0 > BODY_S, "the 100 came early: the test proves nothing")
    s.sendall(b"hello")
    got = read_all(s)
    s.close()
    check(got.startswith(b"HTTP/1.1 200") and got.endswith(b"5\n"),
          f"the wait for 100 Continue was blamed on the client: {got[:200]!r}")


BACKEND = BodyBackend()
PORT = free_port()
WEFT = Weft(config_yaml([{"name": "inbound", "address": f"127.0.0.1:{PORT}", "upstream": "app"}],
                        {"app": [BACKEND.address]}, free_port(),
                        extra=f"workers: 1\ntimeouts: {{request_header: {HEADER_S}s, "
                              f"request_body: {BODY_S}s, request: 30s}}\n"
                              f"limits: {{min_request_body_rate: {RATE}}}\n"))

tap = Tap()
try:
    WEFT.start()
    for t in [test_slowloris_many, test_slowloris_after_keepalive, test_slow_post_buffered,
              test_slow_post_spliced, test_slow_post_chunked, test_slow_post_many_others_served,
              test_reasonable_rate_not_cut, test_large_spliced_rate_not_cut,
              test_slow_upstream_not_blamed, test_expect_wait_not_blamed]:
        tap.run(t)
finally:
    WEFT.stop()
    BACKEND.stop()
tap.done()
