# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared pieces of weft's end-to-end tests: a TAP reporter, test backends,
a weft process runner and raw-socket helpers. Python standard library only."""

import http.client
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import traceback

WEFT = os.environ.get("WEFT_EXE") or os.path.join(
    os.environ.get("WEFT_BUILD_ROOT", "build"), "core", "weft")
PLUGINDIR = os.environ.get("WEFT_E2E_PLUGINDIR", "")


# ---------------------------------------------------------------- TAP

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def run(self, func, *args):
        name = func.__name__
        self.n += 1
        t0 = time.monotonic()
        try:
            func(*args)
            print(f"ok {self.n} - {name} # {time.monotonic() - t0:.2f}s", flush=True)
        except SkipTest as e:
            print(f"ok {self.n} - {name} # SKIP {e}", flush=True)
        except Exception:
            self.failed += 1
            print(f"not ok {self.n} - {name}", flush=True)
            for line in traceback.format_exc().splitlines():
                print(f"# {line}", flush=True)

    def done(self):
        print(f"1..{self.n}", flush=True)
        sys.exit(1 if self.failed else 0)


class SkipTest(Exception):
    pass


def check(cond, what="check failed"):
    if not cond:
        raise AssertionError(what)


def wait_for(pred, timeout=5.0, step=0.02, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


_given_ports = set()


def free_port():
    """a free loopback port, never the same one twice in a process (the
    kernel may hand a just-closed ephemeral port out again)"""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port not in _given_ports:
            _given_ports.add(port)
            return port


# ---------------------------------------------------------------- backends

def rst_close(s):
    """closes @s with SO_LINGER 0: the peer gets an RST, not a FIN, and no
    TIME_WAIT is left behind to eat the ephemeral ports of later suites"""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    except OSError:
        pass


class LoopbackServer:
    """A TCP server on 127.0.0.1 (a free port unless @port is given) that
    hands each accepted connection, numbered from 1, to serve(conn, n) on a
    thread of its own. connections counts them. A subclass sets up its own
    state before calling __init__, which starts accepting."""

    def __init__(self, port=None, backlog=256):
        self.port = port or free_port()
        self.connections = 0
        self._accepted = []
        self._accept_lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(backlog)
        threading.Thread(target=self._accept_loop, daemon=True).start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self._accept_lock:
                self.connections += 1
                n = self.connections
                self._accepted.append(c)
            threading.Thread(target=self.serve, args=(c, n), daemon=True).start()

    def serve(self, conn, n):
        """by default: one() for each request until it says False"""
        f = conn.makefile("rb")
        try:
            while self.one(conn, f):
                pass
        except (OSError, ValueError):
            pass
        finally:
            conn.close()

    def one(self, conn, f):
        """reads one request from @f and answers it on @conn; False to close"""
        raise NotImplementedError

    def stop(self):
        """stops accepting and closes every connection it accepted"""
        self.sock.close()
        with self._accept_lock:
            for c in self._accepted:
                try:
                    c.close()
                except OSError:
                    pass


class Backend:
    """A threaded HTTP/1.1 test server with keep-alive.

    GET /echo answers JSON with the method, path, headers and body it saw.
    /status/N answers status N. /slow/MS waits MS ms. /big/N sends N bytes.
    /chunked/N sends N chunks. /upgrade switches to an echo tunnel.
    /close answers without a length and closes. /flaky/KEY/N answers 503
    to the first N requests for KEY, then 200; /flakyreset/KEY/N hangs up
    on them instead. Every answer carries x-backend: NAME. It counts
    requests and connections, and keeps (method, target, host) of each
    request in seen."""

    def __init__(self, name="backend", port=None):
        self.name = name
        self.port = port or free_port()
        self.requests = 0
        self.connections = 0
        self.bodies = []
        self.seen = []
        self.flaky = {}
        self.lock = threading.Lock()
        self.stopped = False
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(512)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        self.conns = []

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        with self.lock:
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline(65536)
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers = []
                while True:
                    h = f.readline(65536)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, v = h.decode("latin-1").split(":", 1)
                    headers.append((k.strip(), v.strip()))
                hmap = {k.lower(): v for k, v in headers}
                body = b""
                if "content-length" in hmap:
                    body = f.read(int(hmap["content-length"]))
                elif hmap.get("transfer-encoding", "").lower() == "chunked":
                    body = read_chunked(f)
                with self.lock:
                    self.requests += 1
                    self.seen.append((method, target, hmap.get("host", "")))
                if not self._answer(c, f, method, target, headers, hmap, body):
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    def _send(self, c, status, body, extra=(), close=False, length=True):
        head = f"HTTP/1.1 {status} X\r\nx-backend: {self.name}\r\nx-backend-secret: s\r\n"
        for k, v in extra:
            head += f"{k}: {v}\r\n"
        if length:
            head += f"content-length: {len(body)}\r\n"
        if close:
            head += "connection: close\r\n"
        c.sendall(head.encode() + b"\r\n" + body)

    def _answer(self, c, f, method, target, headers, hmap, body):
        path = target.split("?")[0]
        if path.startswith("/flaky"):
            _, kind, key, n = path.split("/")[:4]
            with self.lock:
                left = self.flaky.setdefault(key, int(n))
                self.flaky[key] = left - 1
            if left > 0 and kind == "flakyreset":
                return False
            if left > 0:
                self._send(c, 503, b"flaky\n")
            else:
                self._send(c, 200, b"recovered\n")
        elif path.startswith("/status/"):
            self._send(c, int(path.split("/")[2]), b"status\n")
        elif path.startswith("/slow/"):
            time.sleep(int(path.split("/")[2]) / 1000)
            self._send(c, 200, b"slow\n")
        elif path.startswith("/big/"):
            n = int(path.split("/")[2])
            head = (f"HTTP/1.1 200 OK\r\nx-backend: {self.name}\r\n"
                    f"content-length: {n}\r\n\r\n").encode()
            c.sendall(head)
            if method == "HEAD":         # a correct server sends no body to HEAD
                return hmap.get("connection", "").lower() != "close"
            block = b"x" * 65536
            left = n
            while left > 0:
                c.sendall(block[:min(left, len(block))])
                left -= min(left, len(block))
        elif path.startswith("/chunked/"):
            n = int(path.split("/")[2])
            c.sendall(f"HTTP/1.1 200 OK\r\nx-backend: {self.name}\r\n"
                      "transfer-encoding: chunked\r\n\r\n".encode())
            for i in range(n):
                data = f"chunk{i};".encode()
                c.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            c.sendall(b"0\r\n\r\n")
        elif path == "/upgrade":
            c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\n"
                      b"upgrade: " + hmap.get("upgrade", "").encode() + b"\r\n\r\n")
            while True:
                data = c.recv(65536)
                if not data:
                    return False
                c.sendall(data)
        elif path == "/close":
            c.sendall(f"HTTP/1.1 200 OK\r\nx-backend: {self.name}\r\n"
                      "connection: close\r\n\r\nuntil close".encode())
            return False
        elif path == "/hangup":
            return False
        else:
            out = json.dumps({"backend": self.name, "method": method, "path": target,
                              "headers": headers, "body_len": len(body),
                              "body_sha": __import__("hashlib").sha256(body).hexdigest()})
            self._send(c, 200, out.encode(), extra=[("content-type", "application/json")])
        return hmap.get("connection", "").lower() != "close"


def read_chunked(f):
    body = b""
    while True:
        size = int(f.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while f.readline() not in (b"\r\n", b""):
                pass
            return body
        body += f.read(size)
        f.readline()


# ---------------------------------------------------------------- weft

def config_yaml(listeners, upstreams, admin_port, extra=""):
    out = [f"admin:\n  address: 127.0.0.1:{admin_port}\n"]
    if PLUGINDIR:
        out.append(f"plugin_dirs: [{PLUGINDIR}]\n")
    out.append("listeners:\n")
    for l in listeners:
        out.append(f"  - name: {l['name']}\n    address: {l['address']}\n")
        for k in ("direction", "upstream"):
            if k in l:
                out.append(f"    {k}: {l[k]}\n")
        if "plugins" in l:
            out.append(f"    plugins: [{', '.join(l['plugins'])}]\n")
        if "raw" in l:
            out.append(l["raw"])
    out.append("upstreams:\n")
    for name, eps in upstreams.items():
        out.append(f"  - name: {name}\n    endpoints: [{', '.join(eps)}]\n")
    out.append(extra)
    return "".join(out)


class Weft:
    """A weft process on a config directory of its own."""

    def __init__(self, config_text=None, config_dir=None, args=(), env=None, filename="weft.yaml"):
        self.dir = config_dir or tempfile.mkdtemp(prefix="weft-e2e-")
        self.logpath = tempfile.mktemp(prefix="weft-e2e-log-")
        if config_text is not None:
            with open(os.path.join(self.dir, filename), "w") as fh:
                fh.write(config_text)
        self.admin_port = None
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None

    def start(self, wait=True, config_path=None):
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen([WEFT, "--config", config_path or self.dir,
                                      "--log-level", "debug"] + self.args,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        if wait:
            self.wait_ready()
        return self

    def find_admin(self):
        for name in sorted(os.listdir(self.dir)):
            p = os.path.join(self.dir, name)
            if os.path.isfile(p) and name.endswith(".yaml"):
                for line in open(p):
                    if "address:" in line and self.admin_port is None:
                        self.admin_port = int(line.strip().rsplit(":", 1)[1])
                        return

    def wait_ready(self, timeout=10):
        if self.admin_port is None:
            self.find_admin()

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"weft exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                return self.admin("/ready")[0] == 200
            except OSError:
                return False
        wait_for(ready, timeout, what="weft /ready")

    def admin(self, path):
        """GET @path on the admin listener: (status, headers, body)"""
        return admin_get(self.admin_port, path)

    def logs(self):
        try:
            return open(self.logpath).read()
        except OSError:
            return ""

    def config(self):
        return json.loads(self.admin("/config")[2])

    def generation(self):
        return self.config()["generation"]

    def rewrite(self, text, filename="weft.yaml", timeout=10):
        """replaces a config file by rename, as a ConfigMap update would,
        and waits for the reload to take"""
        gen = self.generation()
        path = os.path.join(self.dir, filename)
        with open(path + ".tmp", "w") as fh:
            fh.write(text)
        os.rename(path + ".tmp", path)
        wait_for(lambda: self.generation() > gen, timeout, what="reload")

    def metrics(self):
        return parse_metrics(self.admin("/metrics")[2].decode())

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc is None or self.proc.poll() is not None:
            rc = self.proc.returncode if self.proc else None
        else:
            self.proc.send_signal(sig)
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("weft did not exit after SIGTERM")
        # a sanitizer build reports here: any report fails the test
        log = self.logs()
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            check(marker not in log, f"sanitizer report:\n{log[-4000:]}")
        return rc

    def rss_kb(self, field="VmRSS"):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0


def admin_get(port, path, method="GET"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request(method, path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body


def parse_metrics(text):
    """{'name{labels}': value} for every sample line."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, value = line.rsplit(" ", 1)
        out[key] = float(value)
    return out


def metric_sum(metrics, prefix):
    return sum(v for k, v in metrics.items() if k == prefix or k.startswith(prefix + "{"))


# ---------------------------------------------------------------- clients

def request(port, method="GET", path="/echo", headers=None, body=None, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def raw(port, data, timeout=5, shutdown=False):
    """Sends @data; returns everything read until the server closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    if shutdown:
        s.shutdown(socket.SHUT_WR)
    chunks = []
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            chunks.append(d)
    except ConnectionResetError:
        chunks.append(b"<RESET>")
    finally:
        s.close()
    return b"".join(chunks)


def parse_status(resp):
    line = resp.split(b"\r\n", 1)[0]
    return int(line.split(b" ")[1]) if line.startswith(b"HTTP/1.1 ") else None


def header_of(resp, name):
    head = resp.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n")[1:]:
        k, _, v = line.partition(":")
        if k.strip().lower() == name.lower():
            return v.strip()
    return None


# ---------------------------------------------------------------- callers

class Caller:
    """One keep-alive connection from a chosen source address, as a caller
    (127.0.0.2 is "A", 127.0.0.3 is "C" and so on) would hold it."""

    def __init__(self, port, src="127.0.0.1", timeout=10):
        self.port, self.src, self.timeout = port, src, timeout
        self.c = None

    def _connect(self):
        self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout,
                                            source_address=(self.src, 0))

    def get(self, path="/echo", method="GET", headers=None, body=None, host="service-b"):
        h = {"Host": host}
        h.update(headers or {})
        if self.c is None:
            self._connect()
        try:
            self.c.request(method, path, body=body, headers=h)
            r = self.c.getresponse()
        except (http.client.HTTPException, OSError):
            self.c.close()
            self._connect()
            self.c.request(method, path, body=body, headers=h)
            r = self.c.getresponse()
        data = r.read()
        if r.getheader("connection", "").lower() == "close":
            self.c.close()
            self.c = None
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def close(self):
        if self.c is not None:
            self.c.close()


def blast(port, seconds, path="/echo", src="127.0.0.1", threads=4, headers=None):
    """Requests as fast as @threads keep-alive callers can send them for
    @seconds. Returns ({status: count}, t_first, t_last): when the first
    request was sent and the last answer read (time.monotonic())."""
    counts, lock = {}, threading.Lock()
    times = []
    end = time.monotonic() + seconds

    def run():
        c = Caller(port, src)
        mine, first, last = {}, None, None
        while time.monotonic() < end:
            t = time.monotonic()
            status, _, _ = c.get(path, headers=headers)
            first = first if first is not None else t
            last = time.monotonic()
            mine[status] = mine.get(status, 0) + 1
        c.close()
        with lock:
            for k, v in mine.items():
                counts[k] = counts.get(k, 0) + v
            if first is not None:
                times.append((first, last))

    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return counts, min(f for f, _ in times), max(l for _, l in times)


class RedisServer:
    """A real redis-server (Debian's) on a free loopback port, no persistence."""

    def __init__(self):
        exe = __import__("shutil").which("redis-server")
        if exe is None:
            raise SkipTest("redis-server is not installed (scripts/setup-debian.sh installs it)")
        self.port = free_port()
        self.proc = subprocess.Popen([exe, "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.command("PING") == b"+PONG", 5, what="redis-server")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def command(self, *args):
        """one command, its raw first reply line; None when Redis is not up"""
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        except OSError:
            return None
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            a = str(a).encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        line = s.makefile("rb").readline().rstrip(b"\r\n")
        s.close()
        return line

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
