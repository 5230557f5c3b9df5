#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Upstream faults (issue 8, section 5): an upstream that refuses, resets
mid-head or mid-body, answers garbage, never answers, answers 64 MiB
slowly, closes a keep-alive connection as weft reuses it, or whose DNS name
does not resolve. Each ends in the documented answer (x-weft-error token),
a correctly signalled truncation, or no error at all, and weft's memory
stays flat."""

import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time

from weftlib import (WEFT, Backend, LoopbackServer, SkipTest, Tap, Weft, check, config_yaml,
                     free_port, wait_for)

MiB = 1024 * 1024


# ---------------------------------------------------------------- upstream

def read_head(f):
    """(method, target, {name: value}) of the next request, None at the end"""
    line = f.readline(65536)
    if not line:
        return None
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers = {}
    while True:
        h = f.readline(65536)
        if h in (b"\r\n", b"\n", b""):
            break
        k, v = h.decode("latin-1").split(":", 1)
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        f.read(int(headers["content-length"]))
    return method, target, headers


def reset(sock):
    """close with SO_LINGER 0: the peer gets an RST, not a FIN"""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class FaultServer(LoopbackServer):
    """A keep-alive upstream whose answer the request path picks:

    /ok                  200 "ok"
    /halfstatus          half a status line, then RST
    /halfhead            half a response head, then RST
    /cut/N/M/how         a head with Content-Length N, M body bytes, then
                         how = rst or fin
    /cutchunked/M/how    a chunked head, M bytes in chunks, then rst or fin
    /garbage/KIND        KIND = hello, binary, h2, oversized, badheader,
                         twolengths, or badchunk (a good head, then a bad
                         chunk size); then it keeps the connection open
                         without a word
    /silent              reads the request and says nothing
    /stall/N/M           announces N bytes, sends M, then says nothing
    /drip/N/MS           N bytes, one every MS ms
    /slow/KIND/N/SECS    N bytes over about SECS seconds, KIND = len or chunked
    /race/how            the first request on a connection gets 200; any
                         later one is read and the connection closed (fin or
                         rst) without an answer

    Each connection has a number; seen holds (conn, method, path) per
    request and closed the numbers of connections weft closed."""

    def __init__(self):
        self.seen = []
        self.closed = set()
        self.lock = threading.Lock()
        super().__init__(backlog=128)

    def serve(self, c, n):
        f = c.makefile("rb")
        served = 0
        try:
            while True:
                req = read_head(f)
                if req is None:
                    with self.lock:
                        self.closed.add(n)
                    break
                method, target, _ = req
                with self.lock:
                    self.seen.append((n, method, target))
                if not self._answer(c, served, target.split("/")[1:]):
                    break
                served += 1
        except (OSError, ValueError):
            with self.lock:
                self.closed.add(n)
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _wait_closed(self, c, timeout=30):
        """says nothing until the peer closes"""
        c.settimeout(timeout)
        try:
            while c.recv(65536):
                pass
        except OSError:
            pass
        raise OSError("closed")

    def _end(self, c, how):
        if how == "rst":
            reset(c)
        else:
            c.shutdown(socket.SHUT_WR)
            c.close()
        return False

    def _answer(self, c, served, p):
        kind = p[0]
        if kind == "ok":
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")
            return True
        if kind == "halfstatus":
            c.sendall(b"HTTP/1.1 20")
            time.sleep(0.05)
            return self._end(c, "rst")
        if kind == "halfhead":
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\nx-half: ab")
            time.sleep(0.05)
            return self._end(c, "rst")
        if kind == "cut":
            n, m = int(p[1]), int(p[2])
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % n)
            c.sendall(b"x" * m)
            time.sleep(0.1)    # the bytes are out before the end
            return self._end(c, p[3])
        if kind == "cutchunked":
            m = int(p[1])
            c.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            while m > 0:
                k = min(m, 1000)
                c.sendall(b"%x\r\n%s\r\n" % (k, b"y" * k))
                m -= k
            time.sleep(0.1)
            return self._end(c, p[2])
        if kind == "garbage":
            c.sendall({"hello": b"hello\r\n\r\n",
                       "binary": bytes(range(256)) * 4,
                       "h2": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x12\x04\x00" * 4,
                       "oversized": b"HTTP/1.1 200 OK\r\n" +
                                    b"".join(b"x-pad-%d: %s\r\n" % (i, b"p" * 1000)
                                             for i in range(200)),
                       "badheader": b"HTTP/1.1 200 OK\r\nno colon\r\ncontent-length: 2\r\n\r\nok",
                       "twolengths": b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
                                     b"content-length: 3\r\n\r\nok",
                       "badchunk": b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                                   b"zz\r\nok\r\n0\r\n\r\n"}[p[1]])
            self._wait_closed(c, 10)
        if kind == "silent":
            self._wait_closed(c)
        if kind == "stall":
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % int(p[1]))
            c.sendall(b"z" * int(p[2]))
            self._wait_closed(c)
        if kind == "drip":
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % int(p[1]))
            for _ in range(int(p[1])):
                time.sleep(int(p[2]) / 1000)
                c.sendall(b"d")
            return True
        if kind == "slow":
            self._slow(c, p[1], int(p[2]), float(p[3]))
            return True
        if kind == "race":
            if served == 0:
                c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst")
                return True
            return self._end(c, p[1])
        raise ValueError(f"no such fault {p}")

    def _slow(self, c, kind, n, secs):
        piece = 256 * 1024
        block = b"s" * piece
        if kind == "len":
            c.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % n)
        else:
            c.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        start, sent = time.monotonic(), 0
        while sent < n:
            k = min(piece, n - sent)
            c.sendall(block[:k] if kind == "len" else b"%x\r\n%s\r\n" % (k, block[:k]))
            sent += k
            # pace: never ahead of n bytes per secs
            ahead = start + secs * sent / n - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        if kind != "len":
            c.sendall(b"0\r\n\r\n")


# ---------------------------------------------------------------- client

class Response:
    def __init__(self):
        self.status = None
        self.headers = {}
        self.body = b""
        self.body_len = 0
        self.complete = False   # the framing said the body ended
        self.closed = False     # the connection ended (FIN or RST)
        self.reset = False


class Conn:
    """One keep-alive client connection that reads responses by their
    framing and notices when weft closes."""

    def __init__(self, port, rcvbuf=None, timeout=15):
        self.sock = socket.socket()
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.eof = False
        self.reset = False
        self.t0, self.got = time.monotonic(), 0

    def send(self, method, path, body=b"", headers=""):
        head = f"{method} {path} HTTP/1.1\r\nhost: faults\r\n{headers}"
        if body:
            head += f"content-length: {len(body)}\r\n"
        self.sock.sendall(head.encode() + b"\r\n" + body)

    def _fill(self, limit=65536):
        if self.eof:
            return False
        try:
            d = self.sock.recv(limit)
        except ConnectionResetError:
            d = b""
            self.reset = True
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError("closed mid-line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n, sink, rate=None):
        """n bytes (or fewer at the end) to sink, at most @rate bytes per
        second; FALSE when cut short"""
        while n > 0:
            if not self.buf:
                if rate:
                    ahead = self.t0 + self.got / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                if not self._fill():
                    return False
                self.got += len(self.buf)
            k = min(n, len(self.buf))
            sink(self.buf[:k])
            self.buf = self.buf[k:]
            n -= k
        return True

    def response(self, keep_body=True, rate=None):
        """the next response; rate: read the body at most that fast"""
        r = Response()
        parts = []

        def sink(b):
            r.body_len += len(b)
            if keep_body:
                parts.append(b)
        try:
            line = self._line()
            r.status = int(line.split()[1])
            while True:
                h = self._line()
                if not h:
                    break
                k, v = h.decode("latin-1").split(":", 1)
                r.headers[k.strip().lower()] = v.strip()
            if "content-length" in r.headers:
                r.complete = self._take(int(r.headers["content-length"]), sink, rate)
            elif r.headers.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size = int(self._line().split(b";")[0], 16)
                    if size == 0:
                        while self._line():
                            pass
                        r.complete = True
                        break
                    if not self._take(size, sink, rate):
                        break
                    self._line()
            else:
                while self._fill():
                    pass
                sink(self.buf)
                self.buf = b""
                r.complete = True
        except (EOFError, ValueError, IndexError):
            pass
        r.body = b"".join(parts)
        r.closed, r.reset = self.eof, self.reset
        return r

    def wait_closed(self, timeout=5):
        """TRUE when weft ends the connection (with no further bytes) in time"""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
        except socket.timeout:
            return False
        return self.eof and self.buf == b""

    def close(self):
        self.sock.close()


def get(port, path, method="GET", body=b""):
    c = Conn(port)
    c.send(method, path, body)
    r = c.response()
    c.close()
    return r


def token(r):
    return r.headers.get("x-weft-error")


def expect_error(r, status, tok):
    check(r.status == status and token(r) == tok,
          f"want {status} {tok}, got {r.status} {token(r)} {r.body[:200]!r}")


# ---------------------------------------------------------------- weft

faults = FaultServer()
races = FaultServer()
slows = FaultServer()
dead_port = free_port()     # nothing listens here
port, race_port, slow_port, dead_listen = free_port(), free_port(), free_port(), free_port()


def listener(name, address, upstream, raw=""):
    return {"name": name, "address": f"127.0.0.1:{address}", "upstream": upstream, "raw": raw}


w = Weft(config_yaml(
    [listener("faults", port, "faults", "    timeouts: {request: 1s, response_idle: 1s}\n"),
     listener("race", race_port, "race"),
     listener("slow", slow_port, "slow"),
     listener("dead", dead_listen, "dead")],
    {"faults": [faults.address], "race": [races.address], "slow": [slows.address],
     "dead": [f"127.0.0.1:{dead_port}"]}, free_port(), extra="workers: 1\n"))
w.start()


def errors(reason):
    return sum(v for k, v in w.metrics().items()
               if k.startswith("weft_upstream_errors_total{") and f'reason="{reason}"' in k)


def still_usable(c, p):
    """the client connection carries another request after the error"""
    c.send("GET", p)
    r = c.response()
    check(r.status is not None and not r.closed,
          f"the client connection did not carry the next request: {r.status}")
    return r


# ---------------------------------------------------------------- refuses, resets mid-head

def test_refused():
    before = errors("upstream_connect_refused")
    c = Conn(dead_listen)
    c.send("GET", "/ok")
    r = c.response()
    expect_error(r, 502, "upstream_connect_refused")
    check(r.headers.get("connection") != "close", "a refused upstream closed the client")
    r = still_usable(c, "/ok")
    expect_error(r, 502, "upstream_connect_refused")
    c.close()
    check(errors("upstream_connect_refused") - before == 2, "the refusals were not counted")


def reset_mid_head(path):
    c = Conn(port)
    c.send("GET", path)
    r = c.response()
    check(r.headers.get("connection") != "close", "an upstream reset closed the client")
    first = r
    r = still_usable(c, "/ok")
    check(r.status == 200 and r.body == b"ok\n", f"next request: {r.status} {r.body!r}")
    c.close()
    expect_error(first, 502, "upstream_reset")


def test_reset_mid_status_line():
    reset_mid_head("/halfstatus")


def test_reset_mid_head():
    reset_mid_head("/halfhead")


# ---------------------------------------------------------------- resets mid-body

def cut(path, announced=None, late=0):
    """the client gets fewer bytes than announced and a closed connection;
    late: the client starts reading that late (small receive buffer)"""
    c = Conn(port, rcvbuf=16384 if late else None)
    c.send("GET", path)
    time.sleep(late)
    r = c.response(keep_body=False)
    closed = r.closed or c.wait_closed(5)
    c.close()
    check(r.status == 200, f"want the upstream's 200, got {r.status} {token(r)}")
    check(not r.complete, f"a cut body reached the client as complete ({r.body_len} bytes)")
    if announced is not None:
        check(r.body_len < announced, f"{r.body_len} of {announced} bytes")
    check(closed, "weft did not close the client after a cut body")
    return r


def test_reset_mid_body_buffered():
    for how in ("rst", "fin"):
        r = cut(f"/cut/40000/10000/{how}", 40000)
        # what came before the reset may be lost to the RST, never padded
        check(r.body_len <= 10000, f"{how}: {r.body_len} bytes of 10000 sent")
    # before a FIN nothing is lost, even to a client that reads late
    for late in (0, 0.3):
        r = cut("/cut/400000/300000/fin", 400000, late)
        check(r.body_len == 300000, f"late {late}: {r.body_len} bytes of 300000 sent")


def spliced_out():
    return w.metrics().get('weft_spliced_bytes_total{listener="faults",direction="response"}', 0)


def test_reset_mid_body_spliced():
    before = spliced_out()
    for how in ("rst", "fin"):
        r = cut(f"/cut/{8 * MiB}/{2 * MiB}/{how}", 8 * MiB)
        check(r.body_len <= 2 * MiB, f"{how}: {r.body_len} bytes of {2 * MiB} sent")
    r = cut(f"/cut/{8 * MiB}/{2 * MiB}/fin", 8 * MiB, late=0.3)
    check(r.body_len == 2 * MiB, f"late reader: {r.body_len} bytes of {2 * MiB} sent")
    check(spliced_out() - before > 3 * MiB,
          f"the cut bodies were not spliced ({spliced_out() - before} bytes)")


def test_reset_mid_body_chunked():
    for how in ("rst", "fin"):
        cut(f"/cutchunked/5000/{how}")
        cut(f"/cutchunked/{3 * MiB}/{how}")
    r = cut("/cutchunked/300000/fin", late=0.3)
    check(r.body_len == 300000, f"late reader: {r.body_len} bytes of 300000 sent")


def test_reset_mid_body_after_head_only():
    for how in ("rst", "fin"):
        r = cut(f"/cut/{1 * MiB}/0/{how}", MiB)
        check(r.body_len == 0, f"{how}: {r.body_len} bytes out of nothing")


# ---------------------------------------------------------------- garbage

def garbage(kind):
    t0 = time.monotonic()
    c = Conn(port)
    c.send("GET", f"/garbage/{kind}")
    r = c.response()
    expect_error(r, 502, "upstream_bad_response")
    # at once, not at the request timeout
    check(time.monotonic() - t0 < 0.9, f"{kind}: answered after {time.monotonic() - t0:.2f}s")
    r = still_usable(c, "/ok")
    check(r.status == 200, f"{kind}: next request got {r.status}")
    c.close()


def test_garbage():
    for kind in ("hello", "binary", "h2", "oversized", "badheader", "twolengths"):
        garbage(kind)


def test_garbage_chunk_after_good_head():
    c = Conn(port)
    c.send("GET", "/garbage/badchunk")
    r = c.response()
    c.close()
    # nothing of the answer went out yet: weft can still say what broke
    garbage("badchunk")


# ---------------------------------------------------------------- never answers

def test_never_answers():
    conns = faults.connections
    c = Conn(port)
    c.send("GET", "/ok")
    check(c.response().status == 200, "warm-up request failed")
    t0 = time.monotonic()
    c.send("GET", "/silent")
    r = c.response()
    took = time.monotonic() - t0
    expect_error(r, 504, "upstream_timeout")
    check(0.9 <= took < 4, f"504 after {took:.2f}s, want about timeouts.request (1s)")
    stuck = [n for n, _, path in faults.seen if path == "/silent"][-1]
    wait_for(lambda: stuck in faults.closed, 5, what="weft to close the stuck connection")
    r = still_usable(c, "/ok")
    check(r.status == 200, f"next request: {r.status}")
    last = faults.seen[-1]
    check(last[0] != stuck and last[2] == "/ok", f"the next request went on {last}, stuck {stuck}")
    check(faults.connections > conns, "no new upstream connection after the timeout")
    c.close()


def stalled(path, sent):
    before = errors("response_idle_timeout")
    c = Conn(port)
    t0 = time.monotonic()
    c.send("GET", path)
    r = c.response(keep_body=False)
    took = time.monotonic() - t0
    c.close()
    check(r.status == 200 and not r.complete and r.closed,
          f"{path}: want a cut 200 and a close, got {r.status} complete={r.complete}")
    check(r.body_len == sent, f"{path}: {r.body_len} bytes of {sent} sent")
    check(0.9 <= took < 4, f"{path}: closed after {took:.2f}s, want about response_idle (1s)")
    check(errors("response_idle_timeout") == before + 1, "the stall is counted")


def test_response_stalls_mid_body():
    """an upstream that sends a head and part of the body, then nothing:
    closed at timeouts.response_idle, buffered and spliced"""
    conns = faults.connections
    stalled("/stall/100/10", 10)
    stalled(f"/stall/{8 * MiB}/{2 * MiB}", 2 * MiB)
    wait_for(lambda: all(n in faults.closed for n in range(conns + 1, faults.connections + 1)),
             3, what="the stalled upstream connections to be closed")


def test_response_drip_not_cut():
    """bytes every 0.3 s keep a response alive past response_idle (1s)"""
    before = errors("response_idle_timeout")
    r = get(port, "/drip/8/300")
    check(r.status == 200 and r.complete and r.body == b"d" * 8,
          f"a steady slow answer was cut: {r.status} {r.body!r}")
    check(errors("response_idle_timeout") == before)


# ---------------------------------------------------------------- 64 MiB slowly

def rss():
    return w.rss_kb("VmRSS"), w.rss_kb("RssAnon")


def slow_transfers(size, secs, watch):
    """a fast and a slow reader each of a Content-Length and a chunked
    body, at once; returns the highest (VmRSS, RssAnon) seen"""
    results, peak = {}, list(rss())
    done = threading.Event()

    def one(kind, slow_reader):
        c = Conn(slow_port, rcvbuf=64 * 1024 if slow_reader else None, timeout=30)
        c.send("GET", f"/slow/{kind}/{size}/{secs}")
        # a slow reader takes a third longer than the upstream: weft must
        # hold the upstream back, not buffer the difference
        rate = size / (secs * 4 / 3) if slow_reader else None
        results[(kind, slow_reader)] = c.response(keep_body=False, rate=rate)
        c.close()

    ts = [threading.Thread(target=one, args=(k, s)) for k in ("len", "chunked")
          for s in (False, True)]
    for t in ts:
        t.start()

    def sample():
        while not done.is_set():
            now = rss()
            peak[0], peak[1] = max(peak[0], now[0]), max(peak[1], now[1])
            time.sleep(0.05)
    sampler = threading.Thread(target=sample)
    if watch:
        sampler.start()
    for t in ts:
        t.join(60)
    done.set()
    if watch:
        sampler.join()
    for key, r in results.items():
        check(r.status == 200 and r.complete and r.body_len == size,
              f"{key}: {r.status}, {r.body_len} of {size} bytes, complete {r.complete}")
    check(len(results) == 4, "a transfer did not finish")
    return peak


def test_slow_64mib_memory_flat():
    # the first transfers take the buffers and pipes steady state keeps
    slow_transfers(4 * MiB, 0.5, False)
    base = rss()
    peak = slow_transfers(64 * MiB, 5, True)
    grew = (peak[0] - base[0], peak[1] - base[1])
    print(f"# rss base {base} peak {peak}", flush=True)
    check(grew[0] < 4096 and grew[1] < 4096,
          f"RSS grew by VmRSS {grew[0]} kB, RssAnon {grew[1]} kB over {base} kB moving 4 x 64 MiB")


# ---------------------------------------------------------------- keep-alive race

def race(how):
    before = errors("upstream_retried")
    c = Conn(race_port)
    c.send("GET", f"/race/{how}")
    r = c.response()
    check(r.status == 200 and r.body == b"first", f"first request: {r.status} {r.body!r}")
    # the upstream closes the pooled connection as this request arrives
    c.send("GET", f"/race/{how}")
    r = c.response()
    check(r.status == 200 and r.body == b"first",
          f"{how}: an idempotent request on a closed keep-alive connection got "
          f"{r.status} {token(r)}")
    check(errors("upstream_retried") - before == 1, "the retry was not counted once")
    # a POST with a body is not sent twice
    c.send("POST", f"/race/{how}", b"payload")
    r = c.response()
    expect_error(r, 502, "upstream_reset")
    check(errors("upstream_retried") - before == 1, "a POST with a body was retried")
    posts = [s for s in races.seen if s[1] == "POST"]
    check(len(posts) == 1, f"the POST reached the upstream {len(posts)} times")
    races.seen.clear()
    c.close()


def test_keepalive_race_fin():
    race("fin")


def test_keepalive_race_rst():
    race("rst")


# ---------------------------------------------------------------- DNS

DNS_NAME = "weft-fault-upstream.test"


class ShadowedWeft(Weft):
    """weft in a mount namespace of its own where /etc/hosts and
    /etc/resolv.conf are bind mounts of files the test rewrites; sh execs
    weft, so the pid is weft's"""

    def __init__(self, config_text, hosts, resolv):
        super().__init__(config_text)
        self.hosts, self.resolv = hosts, resolv

    def start(self, wait=True, config_path=None):
        self.log = open(self.logpath, "w")
        script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && '
                  'shift 2 && exec "$@"')
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
             self.hosts, self.resolv, WEFT, "--config", self.dir, "--log-level", "debug"],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self


def rewrite_in_place(path, text):
    """the bind mount holds the inode: write it, never rename over it"""
    with open(path, "r+") as fh:
        fh.seek(0)
        fh.write(text)
        fh.truncate()


def test_dns_unresolved_then_recovers():
    if (os.geteuid() != 0 or shutil.which("unshare") is None or
            subprocess.run(["unshare", "-m", "true"], stderr=subprocess.DEVNULL).returncode != 0):
        raise SkipTest("needs root and unshare -m for a private /etc/hosts")
    tmp = tempfile.mkdtemp(prefix="weft-dns-")
    hosts, resolv = os.path.join(tmp, "hosts"), os.path.join(tmp, "resolv.conf")
    with open(hosts, "w") as fh:
        fh.write("127.0.0.1 localhost\n")
    with open(resolv, "w") as fh:
        # nothing answers DNS on 127.0.0.1: a name not in hosts fails at once
        fh.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    backend = Backend("dns")
    lport = free_port()
    text = config_yaml([listener("dns", lport, "named")],
                       {"named": [f"{DNS_NAME}:{backend.port}"]}, free_port(),
                       extra="    dns_refresh: 200ms\n")
    d = ShadowedWeft(text, hosts, resolv)
    try:
        d.start()
        check(open(f"/proc/{d.proc.pid}/comm").read().strip().startswith("weft"),
              "the process started is not weft itself")
        time.sleep(0.5)     # a few refreshes: the name stays unresolved
        unresolved = get(lport, "/echo")
        check(unresolved.status == 503 and
              token(unresolved) in ("upstream_unresolved", "no_healthy_endpoint"),
              f"an unresolved name: {unresolved.status} {token(unresolved)}")
        check("cannot resolve" in d.logs(), "the failed lookup was not logged")
        gen = d.generation()
        rewrite_in_place(hosts, f"127.0.0.1 localhost\n127.0.0.1 {DNS_NAME}\n")

        def served():
            return get(lport, "/echo").status == 200
        wait_for(served, 5, step=0.1, what="the name to resolve and the upstream to answer")
        check(d.generation() == gen, "recovery took a reload")
        check(token(unresolved) == "upstream_unresolved",
              f"an unresolved name answers {token(unresolved)}, not upstream_unresolved")
    finally:
        try:
            d.stop()
        finally:
            backend.stop()
            shutil.rmtree(tmp, ignore_errors=True)


tap = Tap()
for t in [test_refused, test_reset_mid_status_line, test_reset_mid_head,
          test_reset_mid_body_buffered, test_reset_mid_body_spliced,
          test_reset_mid_body_chunked, test_reset_mid_body_after_head_only, test_garbage,
          test_garbage_chunk_after_good_head,
          test_never_answers, test_response_stalls_mid_body, test_response_drip_not_cut,
          test_slow_64mib_memory_flat, test_keepalive_race_fin,
          test_keepalive_race_rst, test_dns_unresolved_then_recovers]:
    tap.run(t)
w.stop()
tap.done()
