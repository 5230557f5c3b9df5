#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Request smuggling and protocol abuse (issue 8, section 3).

Each attack is answered per RFC 9112 and none may desynchronise a pooled
upstream connection. The backend here records every request it parsed on
each upstream TCP connection and answers with the connection's id, the
request's index on it and the target it saw. Every case warms the pool
first, sends the attack on a raw socket, then sends a normal request and
proves it got ITS OWN answer on the SAME pooled upstream connection, and
that no smuggled request (a target containing "smuggled") ever reached the
backend. docs/http1.md explains each decision."""

import socket
import threading
import time

from weftlib import LoopbackServer, Tap, Weft, check, config_yaml, free_port

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"


# ---------------------------------------------------------------- backend

class RecBackend(LoopbackServer):
    """An HTTP/1.1 server that records, per TCP connection, every request it
    parsed: (conn id, index on the connection, method, target, headers,
    body). It parses strictly (CRLF, one Content-Length or chunked) so a
    desynchronised byte stream shows up as a garbage or smuggled request.
    Every answer carries x-conn, x-idx and x-target, and a body naming them.

    /early/N answers status N before reading the body, then reads and drops
    the body (a conformant server that keeps the connection). /continue
    sends 100 Continue when asked to, then reads the body. /expect417
    answers 417 to an Expect without reading the body, then reads and drops
    what the head announced."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log = []          # (conn, idx, method, target, headers, body)
        self.garbage = []      # (conn, first line) of what could not be parsed
        self.heads = []        # (conn, method, target) of every head, body read or not
        super().__init__()

    def requests(self):
        with self.lock:
            return list(self.log)

    def mark(self):
        """where the logs are now, for smuggled()"""
        with self.lock:
            return (len(self.log), len(self.garbage), len(self.heads))

    def heads_since(self, since):
        with self.lock:
            return self.heads[since[2]:]

    def smuggled(self, since=(0, 0, 0)):
        """smuggled requests and unparseable bytes seen since @since"""
        with self.lock:
            return ([r for r in self.log[since[0]:] if "smuggled" in r[3]] +
                    self.garbage[since[1]:])

    def serve(self, c, cid):
        f = c.makefile("rb")
        idx = 0
        try:
            while True:
                line = f.readline(65536)
                if not line:
                    return
                if not line.endswith(b"\r\n") or line.count(b" ") != 2:
                    with self.lock:
                        self.garbage.append((cid, line))
                    return
                method, target, _ = line.decode("latin-1").split(" ")
                headers = []
                while True:
                    h = f.readline(65536)
                    if h == b"\r\n":
                        break
                    if not h.endswith(b"\r\n") or b":" not in h:
                        with self.lock:
                            self.garbage.append((cid, h))
                        return
                    k, v = h[:-2].decode("latin-1").split(":", 1)
                    headers.append((k.lower(), v.strip()))
                hmap = dict(headers)
                idx += 1
                with self.lock:
                    self.heads.append((cid, method, target))
                if not self._answer(c, f, cid, idx, method, target, headers, hmap):
                    return
        except EOFError:
            pass    # weft closed inside a body it had to give up on
        except (OSError, ValueError) as e:
            with self.lock:
                self.garbage.append((cid, repr(e).encode()))
        finally:
            c.close()

    @staticmethod
    def _read_body(f, hmap):
        """the body; EOFError when the peer closed inside it (a cut, not
        garbage), ValueError on bad framing"""
        def exactly(n):
            data = f.read(n)
            if len(data) < n:
                raise EOFError
            return data

        def line():
            data = f.readline(65536)
            if not data.endswith(b"\n"):
                raise EOFError
            return data

        if hmap.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(line().split(b";")[0].strip(), 16)
                if size == 0:
                    while line() != b"\r\n":
                        pass
                    return body
                body += exactly(size)
                if exactly(2) != b"\r\n":
                    raise ValueError("bad chunk end")
        n = int(hmap.get("content-length", "0"))
        return exactly(n) if n else b""

    def _send(self, c, status, cid, idx, target, extra=b""):
        body = f"{cid}/{idx} {target}\n".encode()
        c.sendall(b"HTTP/1.1 %d X\r\nx-conn: %d\r\nx-idx: %d\r\nx-target: %s\r\n"
                  b"content-length: %d\r\n%s\r\n%s" %
                  (status, cid, idx, target.encode("latin-1"), len(body), extra, body))

    def _record(self, cid, idx, method, target, headers, body):
        with self.lock:
            self.log.append((cid, idx, method, target, dict(headers), body))

    def _answer(self, c, f, cid, idx, method, target, headers, hmap):
        """records the request before answering, so a client that has the
        answer finds the request in the log"""
        expect = hmap.get("expect", "").lower() == "100-continue"
        early = 417 if target == "/expect417" and expect else None
        if target.startswith("/early/"):
            early = int(target.split("/")[2])
        if target == "/chunked-resp":
            self._record(cid, idx, method, target, headers, b"")
            c.sendall(b"HTTP/1.1 200 OK\r\nx-conn: %d\r\nx-target: %s\r\n"
                      b"transfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n"
                      b"7\r\n, world\r\n0\r\nx-trailer: t\r\n\r\n" % (cid, target.encode()))
            return True
        if target == "/switch":
            # 101 to a request that asked for no upgrade, then other bytes
            self._record(cid, idx, method, target, headers, b"")
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n"
                      b"connection: upgrade\r\n\r\nHTTP/1.1 200 OK\r\n"
                      b"x-target: /next\r\ncontent-length: 0\r\n\r\n")
            return True
        if early is not None:
            self._record(cid, idx, method, target, headers, None)
            self._send(c, early, cid, idx, target)
            self._read_body(f, hmap)
        else:
            if target == "/continue" and expect:
                c.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            body = self._read_body(f, hmap)
            self._record(cid, idx, method, target, headers, body)
            self._send(c, 200, cid, idx, target, b"x-body-len: %d\r\n" % len(body))
        return hmap.get("connection", "").lower() != "close"


# ---------------------------------------------------------------- clients

class Resp:
    def __init__(self, status, headers, body, interim):
        self.status, self.headers, self.body, self.interim = status, headers, body, interim

    def h(self, name):
        return self.headers.get(name)


def read_response(f, head_request=False):
    """one response from the file @f (interim 1xx collected); None at EOF"""
    interim = []
    while True:
        line = f.readline(65536)
        if not line:
            return None
        check(line.endswith(b"\r\n"), f"status line without CRLF: {line!r}")
        status = int(line.split(b" ")[1])
        headers = {}
        while True:
            h = f.readline(65536)
            check(h.endswith(b"\r\n"), f"header without CRLF: {h!r}")
            if h == b"\r\n":
                break
            k, v = h[:-2].decode("latin-1").split(":", 1)
            headers[k.strip().lower()] = v.strip()
        if 100 <= status < 200:
            interim.append(status)
            continue
        break
    if head_request or status in (204, 304):
        body = b""
    elif headers.get("transfer-encoding") == "chunked":
        body = RecBackend._read_body(f, headers)
    elif "content-length" in headers:
        body = f.read(int(headers["content-length"]))
    else:
        body = f.read()
    return Resp(status, headers, body, interim)


class Client:
    """one raw client connection to weft"""

    def __init__(self, timeout=5):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
        self.f = self.s.makefile("rb")

    def send(self, data):
        self.s.sendall(data)
        return self

    def response(self, head_request=False):
        return read_response(self.f, head_request)

    def closed(self):
        """TRUE when the server closed cleanly (EOF, no reset, no more bytes)"""
        try:
            rest = self.f.read()
        except ConnectionResetError:
            return False
        check(rest == b"", f"bytes after the answer: {rest[:200]!r}")
        return True

    def close(self):
        self.f.close()
        self.s.close()


def get(path, version=b"1.1", extra=b""):
    """one request on a fresh connection, closed by the client after"""
    c = Client()
    c.send(b"GET " + path.encode() + b" HTTP/" + version + b"\r\nHost: app\r\n" + extra + b"\r\n")
    r = c.response()
    c.close()
    check(r is not None, f"no answer to {path}")
    return r


# ---------------------------------------------------------------- the proof

_n = [0]
_mark = [(0, 0, 0)]


def clean():
    """nothing smuggled (nor garbage) reached the backend since warm()"""
    bad = BACKEND.smuggled(_mark[0])
    check(bad == [], f"smuggled or garbage reached the backend: {bad}")


def warm():
    """a normal request; returns the upstream connection it used"""
    _mark[0] = BACKEND.mark()
    _n[0] += 1
    r = get(f"/warm-{_n[0]}")
    check(r.status == 200 and r.h("x-target") == f"/warm-{_n[0]}", f"warm-up failed: {r.status}")
    return int(r.h("x-conn"))


def next_in_sync(what):
    """a normal request after @what gets its own answer; returns it"""
    _n[0] += 1
    path = f"/after-{_n[0]}"
    r = get(path)
    check(r.status == 200 and r.h("x-target") == path,
          f"desync after {what}: {path} got {r.status} {r.h('x-target')}")
    return r


def same_conn_after(conn):
    """the next normal request gets its own answer on the same upstream
    connection, and nothing smuggled ever reached the backend"""
    _n[0] += 1
    path = f"/after-{_n[0]}"
    before = len(BACKEND.requests())
    r = get(path)
    check(r.status == 200, f"after the attack: {r.status} {r.body!r}")
    check(r.h("x-target") == path, f"desync: {path} got the answer to {r.h('x-target')}")
    check(int(r.h("x-conn")) == conn,
          f"the pooled upstream connection {conn} was not reused (got {r.h('x-conn')})")
    reqs = BACKEND.requests()
    check(len(reqs) == before + 1 and reqs[-1][3] == path,
          f"the backend saw more than the one request: {reqs[before:]}")
    clean()


def refused(data, status, token, split=None):
    """@data is answered @status with @token, the connection closes cleanly,
    nothing reaches the backend, and the pooled connection stays in sync"""
    conn = warm()
    before = len(BACKEND.requests())
    c = Client()
    if split is None:
        c.send(data)
    else:
        # the head first, the rest once the answer may be out
        c.send(data[:split])
        time.sleep(0.05)
        try:
            c.send(data[split:])
        except OSError:
            pass
    r = c.response()
    check(r is not None, "no answer")
    check(r.status == status, f"want {status}, got {r.status} {r.body!r}")
    check(r.h("x-weft-error") == token, f"want token {token}, got {r.h('x-weft-error')}")
    check(r.h("connection") == "close", "no connection: close")
    check(c.closed(), "the connection was reset, not closed")
    c.close()
    check(len(BACKEND.requests()) == before, f"forwarded: {BACKEND.requests()[before:]}")
    same_conn_after(conn)


def cut(data, status, token):
    """@data goes bad after its head went upstream: answered @status with
    @token and closed; the upstream connection holding part of a body is
    never reused, and the next request gets its own answer"""
    conn = warm()
    c = Client()
    c.send(data)
    r = c.response()
    check(r is not None and r.status == status and r.h("x-weft-error") == token,
          f"want {status} {token}, got {r and r.status} {r and r.h('x-weft-error')}")
    check(r.h("connection") == "close", "no connection: close")
    check(c.closed(), "the connection was reset, not closed")
    c.close()
    r = next_in_sync("a body cut mid-way")
    forwarded = [h for h in BACKEND.heads_since(_mark[0]) if h[1] == "POST"]
    if forwarded:
        check(int(r.h("x-conn")) != conn, "the upstream connection with half a body was reused")
    else:
        check(int(r.h("x-conn")) == conn, "the untouched pooled connection was not reused")
    clean()


# ---------------------------------------------------------------- framing attacks

def test_cl_te():
    """CL.TE: a front end that frames by Content-Length would pass the
    chunked terminator and the smuggled request as the body"""
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 43\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400,
            "content_length_and_transfer_encoding")


def test_te_cl():
    """TE.CL: Transfer-Encoding first, then a short Content-Length"""
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 4\r\n\r\n" + b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n",
            400, "content_length_and_transfer_encoding")


def test_te_trailing_space():
    """`chunked ` with a trailing space is chunked: trailing whitespace is
    not part of a field value (RFC 9110 5.5). It is forwarded framed once,
    as chunked, and the smuggled-looking body stays a body"""
    conn = warm()
    c = Client()
    body = b"%x\r\n" % len(SMUGGLED) + SMUGGLED + b"\r\n0\r\n\r\n"
    c.send(b"POST /te-space HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \r\n\r\n" + body)
    r = c.response()
    check(r.status == 200 and r.h("x-target") == "/te-space", f"got {r.status} {r.body!r}")
    check(int(r.h("x-conn")) == conn, "not the pooled connection")
    check(r.h("x-body-len") == str(len(SMUGGLED)), f"body length {r.h('x-body-len')}")
    seen = BACKEND.requests()[-1]
    check(seen[4].get("transfer-encoding") == "chunked" and "content-length" not in seen[4],
          f"framing forwarded as {seen[4]}")
    check(seen[5] == SMUGGLED, "the body changed")
    c.close()
    same_conn_after(conn)


def test_te_obfuscated():
    """xchunked, `chunked, identity`, a tab-folded value: not chunked as the
    last coding, so the length is unknown: 501 (RFC 9112 6.1, 6.3)"""
    for te in (b"xchunked", b"chunked, identity", b"identity, chunked", b"chunked;q=1",
               b"\"chunked\""):
        refused(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + te + b"\r\n\r\n"
                b"0\r\n\r\n" + SMUGGLED, 501, "unsupported_transfer_encoding")


def test_te_duplicated():
    """two Transfer-Encoding lines are one list, `chunked, chunked`: chunked
    twice is invalid (RFC 9112 6.1)"""
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 501,
            "unsupported_transfer_encoding")
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
            b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n" + SMUGGLED, 501,
            "unsupported_transfer_encoding")


def test_te_underscore():
    """Transfer_Encoding (and Content_Length) reach a backend that maps `_`
    to `-` (CGI, some frameworks) as framing headers weft did not frame by"""
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            b"Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400, "bad_header")
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent_Length: 5\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, 400, "bad_header")


def test_te_on_http10():
    """HTTP/1.0 has no chunked framing (RFC 9112 6.1)"""
    refused(b"POST /x HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
            SMUGGLED, 501, "unsupported_transfer_encoding")


def test_duplicate_content_length():
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 36\r\n\r\n" +
            SMUGGLED, 400, "bad_content_length")
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 36\r\nContent-Length: 36\r\n\r\n" +
            SMUGGLED, 400, "bad_content_length")
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0, 36\r\n\r\n" + SMUGGLED, 400,
            "bad_content_length")
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 36,36\r\n\r\n" + SMUGGLED, 400,
            "bad_content_length")


def test_negative_or_overflowing_content_length():
    for cl in (b"-1", b"-0", b"+36", b"18446744073709551616", b"9223372036854775808",
               b"99999999999999999999999", b"0x24", b"3 6", b"36.0", b""):
        refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: " + cl + b"\r\n\r\n" + SMUGGLED,
                400, "bad_content_length")


def test_chunk_size_overflow():
    """a size past 64 bits must not wrap to a small one"""
    for size in (b"10000000000000024", b"ffffffffffffffffff", b"-24", b"0x24", b" 24"):
        refused(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + size +
                b"\r\n" + SMUGGLED + b"\r\n0\r\n\r\n", 400, "bad_chunk", split=None)


def chunked_post(path, body_chunks):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
            b"".join(body_chunks))


def test_chunk_extensions():
    """a short extension is allowed and passed on; an oversized one, or too
    many extension bytes over a body, is 400 bad_chunk. Mid-body the head
    is already upstream: the client gets 400 and the upstream connection is
    closed, never reused"""
    conn = warm()
    c = Client()
    c.send(chunked_post(b"/ext-ok", [b"5;name=value;x=\"q\"\r\nhello\r\n0\r\n\r\n"]))
    r = c.response()
    check(r.status == 200 and r.h("x-body-len") == "5", f"short extension: {r.status}")
    c.close()
    same_conn_after(conn)
    # one line of 5000 bytes of extension (4096 at most)
    cut(chunked_post(b"/x", [b"5;" + b"a" * 5000 + b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED]),
        400, "bad_chunk")
    # many small chunks, each with its extension: 16 KiB over the body
    many = [b"1;" + b"e" * 100 + b"\r\nx\r\n"] * 400
    cut(chunked_post(b"/x", many + [b"0\r\n\r\n" + SMUGGLED]), 400, "bad_chunk")


def test_chunk_bad_framing_mid_body():
    """a bad chunk after the head went upstream: 400, the client connection
    closes, the upstream connection is dropped (it holds half a body)"""
    data = chunked_post(b"/mid", [b"5\r\nhello\r\n"])
    cut(data + b"zz\r\n" + SMUGGLED, 400, "bad_chunk")
    cut(data + b"5\r\nhelloXY" + SMUGGLED, 400, "bad_chunk")


def test_bare_lf():
    """bare LF line ends are refused (docs/http1.md: a proxy is strict)"""
    refused(b"GET /x HTTP/1.1\nHost: a\n\n" + SMUGGLED, 400, "bare_lf")
    refused(b"GET /x HTTP/1.1\r\nHost: a\nContent-Length: 36\r\n\r\n" + SMUGGLED, 400, "bare_lf")
    refused(b"GET /x HTTP/1.1\r\nHost: a\r\n\n" + SMUGGLED, 400, "bare_lf")
    refused(chunked_post(b"/x", [b"5\nhello\r\n0\r\n\r\n" + SMUGGLED]), 400, "bad_chunk")
    refused(chunked_post(b"/x", [b"5\r\nhello\n0\r\n\r\n" + SMUGGLED]), 400, "bad_chunk")


# ---------------------------------------------------------------- malformed heads

def test_space_before_colon():
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n"
            b"Content-Length: 36\r\n\r\n" + SMUGGLED, 400, "space_before_colon")
    refused(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length\t: 36\r\n\r\n" + SMUGGLED, 400,
            "space_before_colon")


def test_injected_nul_cr_lf():
    refused(b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", 400, "nul_in_head")
    refused(b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\rContent-Length: 36\r\n\r\n" + SMUGGLED, 400,
            "bare_cr")
    refused(b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\nContent-Length: 36\r\n\r\n" + SMUGGLED, 400,
            "bare_lf")
    refused(b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: a\x0bb\r\n\r\n", 400, "bad_header")
    refused(b"GET /x\x00 HTTP/1.1\r\nHost: a\r\n\r\n", 400, "nul_in_head")


def test_absolute_form_host_differs():
    """RFC 9112 3.2.2: the authority of an absolute-form target replaces
    Host; weft forwards origin-form with a Host that says the same"""
    conn = warm()
    c = Client()
    c.send(b"GET http://other.example:8080/abs/path?q=1 HTTP/1.1\r\nHost: app\r\n\r\n")
    r = c.response()
    check(r.status == 200, f"got {r.status} {r.body!r}")
    seen = BACKEND.requests()[-1]
    check(seen[3] == "/abs/path?q=1", f"target forwarded as {seen[3]!r}")
    check(seen[4].get("host") == "other.example:8080", f"host forwarded as {seen[4].get('host')!r}")
    check(int(r.h("x-conn")) == conn, "not the pooled connection")
    c.send(b"OPTIONS http://other.example HTTP/1.1\r\nHost: app\r\n\r\n")
    r = c.response()
    seen = BACKEND.requests()[-1]
    check(r.status == 200 and seen[3] == "*" and seen[4].get("host") == "other.example",
          f"OPTIONS forwarded as {seen[3]!r} {seen[4].get('host')!r}")
    c.send(b"GET HTTP://Other.Example HTTP/1.1\r\nHost: app\r\n\r\n")
    r = c.response()
    seen = BACKEND.requests()[-1]
    check(r.status == 200 and seen[3] == "/" and seen[4].get("host") == "Other.Example",
          f"empty path forwarded as {seen[3]!r} {seen[4].get('host')!r}")
    c.close()
    same_conn_after(conn)
    for target in (b"http://user@evil/x", b"http:///x", b"ftp://a/x", b"x/y", b"*",
                   b"http://a/x#frag"):
        refused(b"GET " + target + b" HTTP/1.1\r\nHost: app\r\n\r\n", 400, "bad_target")


def test_missing_host():
    refused(b"GET /x HTTP/1.1\r\nX-A: b\r\n\r\n", 400, "missing_host")
    refused(b"GET http://a/x HTTP/1.1\r\n\r\n", 400, "missing_host")
    refused(b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "duplicate_host")


def test_http09():
    """HTTP/0.9 (a request line without a version) is not served: 400, on
    an HTTP/1.1 status line, then a close"""
    refused(b"GET /x\r\n\r\n", 400, "bad_request_line")
    refused(b"GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505, "unsupported_version")
    refused(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, "unsupported_version")


# ---------------------------------------------------------------- connection behaviour

def test_http10_keep_alive():
    """an HTTP/1.0 client that asks for keep-alive keeps its connection and
    is told so; without it, the connection closes after the answer; the
    upstream connection is pooled either way"""
    conn = warm()
    c = Client()
    c.send(b"GET /ka1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = c.response()
    check(r.status == 200 and r.h("x-target") == "/ka1", f"got {r.status}")
    check(r.h("connection", ) == "keep-alive", f"no connection: keep-alive: {r.headers}")
    check("transfer-encoding" not in r.headers, "chunked to an HTTP/1.0 client")
    check(int(r.h("x-conn")) == conn, "not the pooled connection")
    c.send(b"GET /ka2 HTTP/1.0\r\n\r\n")
    r = c.response()
    check(r.status == 200 and r.h("x-target") == "/ka2", f"second request got {r.status}")
    check(r.h("connection") == "close", "no close for a plain HTTP/1.0 request")
    check(c.closed(), "HTTP/1.0 without keep-alive stayed open")
    c.close()
    same_conn_after(conn)


def test_http10_chunked_response():
    """RFC 9112 6.1: no chunked to an HTTP/1.0 client: the data alone,
    delimited by the close; the upstream connection goes back to the pool
    once the whole chunked body was read"""
    conn = warm()
    c = Client()
    c.send(b"GET /chunked-resp HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    r = c.response()
    check(r.status == 200 and "transfer-encoding" not in r.headers,
          f"chunked to HTTP/1.0: {r.headers}")
    check(r.h("connection") == "close" and "content-length" not in r.headers,
          f"not delimited by the close: {r.headers}")
    check(r.body == b"hello, world", f"body {r.body!r}")
    c.close()
    same_conn_after(conn)
    # an HTTP/1.1 client still gets the chunks as they came
    c = Client()
    c.send(b"GET /chunked-resp HTTP/1.1\r\nHost: a\r\n\r\n")
    r = c.response()
    check(r.h("transfer-encoding") == "chunked" and r.body == b"hello, world", f"{r.headers}")
    c.close()


def test_unasked_101():
    """a 101 to a request without an upgrade: 502, and the connection that
    switched to who knows what is never pooled"""
    conn = warm()
    r = get("/switch")
    check(r.status == 502 and r.h("x-weft-error") == "upstream_bad_response",
          f"got {r.status} {r.headers}")
    r = next_in_sync("a 101")
    check(int(r.h("x-conn")) != conn, "the switched connection was reused")


def test_pipelined_in_order():
    """three requests in one write, one with a body: three answers, in
    order, each to its own request"""
    conn = warm()
    c = Client()
    c.send(b"GET /p1 HTTP/1.1\r\nHost: a\r\n\r\n"
           b"POST /p2 HTTP/1.1\r\nHost: a\r\nContent-Length: 36\r\n\r\n" + SMUGGLED +
           b"GET /p3 HTTP/1.1\r\nHost: a\r\n\r\n")
    got = [c.response() for _ in range(3)]
    check([r.h("x-target") for r in got] == ["/p1", "/p2", "/p3"],
          f"answers out of order: {[r.h('x-target') for r in got]}")
    check(all(int(r.h("x-conn")) == conn for r in got), "the pipelined requests left the pool")
    c.close()
    same_conn_after(conn)


def test_pipelined_after_bad_request():
    """a bad request in a pipeline: the good one before it is answered, the
    bad one gets its 400, nothing after it is read as a request"""
    conn = warm()
    c = Client()
    c.send(b"GET /q1 HTTP/1.1\r\nHost: a\r\n\r\n"
           b"GET /q2 HTTP/1.1\r\nHost: a\r\nX: a\x00\r\n\r\n" + SMUGGLED)
    r1, r2 = c.response(), c.response()
    check(r1.status == 200 and r1.h("x-target") == "/q1", f"first: {r1.status}")
    check(r2.status == 400 and r2.h("x-weft-error") == "nul_in_head", f"second: {r2.status}")
    check(c.closed(), "not closed")
    c.close()
    same_conn_after(conn)


def test_body_after_early_error():
    """413 for a body over limits.max_request_body: the body still coming is
    never parsed as a request, the connection closes"""
    conn = warm()
    c = Client()
    c.send(b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n")
    r = c.response()
    check(r.status == 413 and r.h("x-weft-error") == "body_too_large", f"got {r.status}")
    check(r.h("connection") == "close", "no close after 413")
    try:
        c.send(SMUGGLED * 100)
    except OSError:
        pass
    check(c.closed(), "not closed after 413")
    c.close()
    same_conn_after(conn)


def test_body_after_early_upstream_answer():
    """the upstream answers 403 before reading the body (and keeps reading
    it, as RFC 9110 15 allows): weft passes the answer on, closes the client
    connection, and never reuses the upstream connection half-way through a
    body"""
    conn = warm()
    c = Client()
    c.send(b"POST /early/403 HTTP/1.1\r\nHost: a\r\nContent-Length: 72\r\n\r\n")
    r = c.response()
    check(r.status == 403 and r.h("x-target") == "/early/403", f"got {r.status}")
    check(r.h("connection") == "close", "the client connection is not closed")
    try:
        c.send(SMUGGLED * 2)
    except OSError:
        pass
    check(c.closed(), "not closed")
    c.close()
    next_in_sync("an early answer")
    # the backend reads the early answer's 72 body bytes before its next
    # request: had weft reused the connection with the body cut, the next
    # request's own bytes would have been taken as that body, and the
    # next_in_sync check above (or clean(), for garbage) would fail
    clean()


def test_expect_100_continue():
    """Expect goes upstream, whose 100 Continue reaches the client before
    the body; a 417 (or any early final answer) ends the exchange, closes
    the client connection, and the body the client never sent is never
    waited for on the pooled connection"""
    conn = warm()
    c = Client()
    c.send(b"POST /continue HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
           b"Expect: 100-continue\r\n\r\n")
    c.s.settimeout(3)
    line = c.f.readline()
    check(line.startswith(b"HTTP/1.1 100 "), f"no 100 Continue before the body: {line!r}")
    check(c.f.readline() == b"\r\n", "100 Continue with headers")
    c.send(b"hello")
    r = c.response()
    check(r.status == 200 and r.h("x-body-len") == "5", f"got {r.status}")
    check(int(r.h("x-conn")) == conn, "not the pooled connection")
    c.close()
    same_conn_after(conn)
    c = Client()
    c.send(b"POST /expect417 HTTP/1.1\r\nHost: a\r\nContent-Length: 36\r\n"
           b"Expect: 100-continue\r\n\r\n")
    r = c.response()
    check(r.status == 417, f"got {r.status}")
    check(r.h("connection") == "close", "no close after a final answer to an Expect")
    check(c.closed(), "not closed")
    c.close()
    next_in_sync("a 417")
    clean()


def test_expect_http10_no_interim():
    """RFC 9110 15.2: no 1xx to an HTTP/1.0 client"""
    c = Client()
    c.send(b"POST /continue HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
    r = c.response()
    check(r.status == 200 and r.interim == [], f"got {r.status} after {r.interim}")
    c.close()


def test_nothing_smuggled():
    check(BACKEND.smuggled() == [], f"smuggled or garbage at the backend: {BACKEND.smuggled()}")


BACKEND = RecBackend()
PORT = free_port()
WEFT = Weft(config_yaml([{"name": "inbound", "address": f"127.0.0.1:{PORT}", "upstream": "app"}],
                        {"app": [BACKEND.address]}, free_port(),
                        extra="workers: 1\ntimeouts: {upstream_idle: 60s}\n"
                              "limits: {max_request_body: 1MiB}\n"))

tap = Tap()
try:
    WEFT.start()
    for t in [test_cl_te, test_te_cl, test_te_trailing_space, test_te_obfuscated,
              test_te_duplicated, test_te_underscore, test_te_on_http10,
              test_duplicate_content_length, test_negative_or_overflowing_content_length,
              test_chunk_size_overflow, test_chunk_extensions, test_chunk_bad_framing_mid_body,
              test_bare_lf, test_space_before_colon, test_injected_nul_cr_lf,
              test_absolute_form_host_differs, test_missing_host, test_http09,
              test_http10_keep_alive, test_http10_chunked_response, test_unasked_101,
              test_pipelined_in_order, test_pipelined_after_bad_request,
              test_body_after_early_error, test_body_after_early_upstream_answer,
              test_expect_100_continue, test_expect_http10_no_interim, test_nothing_smuggled]:
        tap.run(t)
finally:
    WEFT.stop()
    BACKEND.stop()
tap.done()
