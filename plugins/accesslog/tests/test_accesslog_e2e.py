# SPDX-License-Identifier: LGPL-2.1-or-later
"""The accesslog plugin end to end: real weft processes with two workers, a
real backend, real clients, and the log read back from files, a FIFO and
weft's own stdout. Every request must give exactly one whole JSON line with
the right fields, through rotation and reloads, and a destination that
takes nothing must cost dropped lines, never slow answers."""

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "e2e"))

from weftlib import (PLUGINDIR, WEFT, Backend, Caller, Tap, Weft,  # noqa: E402
                     check, free_port, raw, wait_for)

WRITTEN = 'weft_accesslog_lines_total{result="written"}'
DROPPED = 'weft_accesslog_lines_total{result="dropped"}'
KEYS = ["start_time", "duration_ms", "method", "authority", "path", "protocol", "status",
        "response_flags", "error_reason", "bytes_received", "bytes_sent", "upstream_host",
        "upstream_cluster", "request_id", "trace_id", "downstream_peer", "peer_principal",
        "route_name", "listener", "direction", "user_agent"]


# ---------------------------------------------------------------- helpers

def config(ports, admin, backend, dead_port, accesslog):
    return (f"admin:\n  address: 127.0.0.1:{admin}\n"
            f"plugin_dirs: [{PLUGINDIR}]\n"
            "workers: 2\n"
            "listeners:\n"
            f"  - name: inbound\n    address: 127.0.0.1:{ports[0]}\n    upstream: app\n"
            "    plugins: [router, accesslog]\n"
            f"  - name: dead\n    address: 127.0.0.1:{ports[1]}\n    upstream: dead\n"
            "    direction: outbound\n    plugins: [accesslog]\n"
            f"  - name: strict\n    address: 127.0.0.1:{ports[2]}\n    upstream: app\n"
            "    plugins: [router, accesslog]\n    router: {fallback: not_found}\n"
            f"  - name: quiet\n    address: 127.0.0.1:{ports[3]}\n    upstream: app\n"
            "upstreams:\n"
            f"  - name: app\n    endpoints: [{backend.address}]\n"
            f"  - name: dead\n    endpoints: [127.0.0.1:{dead_port}]\n"
            "router:\n  virtual_hosts:\n    - name: service-b\n      domains: [service-b]\n"
            "      routes:\n        - name: echo-route\n          match: {path: {prefix: /}}\n"
            "          upstream: app\n"
            f"{accesslog}")


class Setup:
    """weft with the accesslog on three listeners (and one without), a
    backend, and a port nothing listens on"""

    def __init__(self, path=None, buffer=None, accesslog=None):
        self.tmp = tempfile.mkdtemp(prefix="weft-accesslog-")
        self.path = path if path is not None else os.path.join(self.tmp, "access.log")
        self.backend = Backend("app")
        self.ports = [free_port() for _ in range(4)]
        self.dead_port = free_port()
        self.admin = free_port()
        if accesslog is None:
            accesslog = f"accesslog:\n  path: {self.path}\n"
            if buffer:
                accesslog += f"  buffer: {buffer}\n"
        self.accesslog = accesslog
        self.weft = Weft(self.config_text())

    def config_text(self, accesslog=None):
        return config(self.ports, self.admin, self.backend, self.dead_port,
                      accesslog if accesslog is not None else self.accesslog)

    @property
    def port(self):
        return self.ports[0]

    def start(self):
        self.weft.start()
        return self

    def metric(self, name):
        return self.weft.metrics().get(name, 0)

    def wait_written(self, n, timeout=10):
        wait_for(lambda: self.metric(WRITTEN) >= n, timeout, what=f"{n} lines written")
        time.sleep(0.05)   # a line too many would show up now
        check(self.metric(WRITTEN) == n, f"written {self.metric(WRITTEN)}, want {n}")

    def generation(self):
        return self.weft.generation()

    def rewrite(self, text):
        self.weft.rewrite(text)

    def stop(self):
        try:
            self.weft.stop()
        finally:
            self.backend.stop()


def read_lines(path):
    """every line of @path parsed; the file must end with a newline"""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as fh:
        data = fh.read()
    check(data == b"" or data.endswith(b"\n"), f"{path} ends inside a line: {data[-200:]!r}")
    out = []
    for line in data.split(b"\n")[:-1]:
        try:
            out.append(json.loads(line.decode("utf-8")))
        except (ValueError, UnicodeDecodeError) as e:
            raise AssertionError(f"not a JSON line ({e}): {line[:300]!r}")
    return out


def only(lines, **want):
    got = [line for line in lines if all(line.get(k) == v for k, v in want.items())]
    check(len(got) == 1, f"want one line with {want}, got {len(got)}: {got}")
    return got[0]


def traffic(port, n_threads, n_each, tag):
    """n_threads keep-alive callers, n_each requests each, unique paths;
    returns the set of paths answered 200"""
    done, lock = set(), threading.Lock()

    def run(t):
        c = Caller(port)
        for i in range(n_each):
            path = f"/echo?{tag}={t}.{i}"
            status, _, _ = c.get(path)
            check(status == 200, f"{path}: {status}")
            with lock:
                done.add(path)
        c.close()

    ts = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return done


class Background:
    """callers that keep sending until stopped; counts what was answered"""

    def __init__(self, port, threads=4, tag="bg"):
        self.port, self.tag = port, tag
        self.stopping = False
        self.paths, self.errors = set(), []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(t,)) for t in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, t):
        c = Caller(self.port)
        i = 0
        while not self.stopping:
            path = f"/echo?{self.tag}={t}.{i}"
            i += 1
            try:
                status, _, _ = c.get(path)
            except OSError as e:
                self.errors.append(repr(e))
                continue
            with self.lock:
                if status == 200:
                    self.paths.add(path)
                else:
                    self.errors.append(f"{path}: {status}")
        c.close()

    def stop(self):
        self.stopping = True
        for t in self.threads:
            t.join()
        check(not self.errors, f"errors: {self.errors[:5]}")
        return self.paths


# ---------------------------------------------------------------- fields

def test_one_line_per_request_with_its_fields():
    s = Setup().start()
    try:
        body = b"hello world"
        req = (b"POST /echo?x=1 HTTP/1.1\r\nHost: service-b\r\nUser-Agent: e2e-agent/1.0\r\n"
               b"x-request-id: rid-12345\r\n"
               b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n"
               + body)
        t0 = time.time()
        resp = raw(s.port, req)
        t1 = time.time()
        check(resp.startswith(b"HTTP/1.1 200"), resp[:100])
        seen = json.loads(resp.split(b"\r\n\r\n", 1)[1])
        seen_rid = dict((k.lower(), v) for k, v in seen["headers"])["x-request-id"]
        # a request without an x-request-id gets one from the core
        c = Caller(s.port)
        status, _, data = c.get("/echo?second", headers={"User-Agent": "second"})
        c.close()
        check(status == 200, status)
        generated = dict((k.lower(), v) for k, v in json.loads(data)["headers"])["x-request-id"]
        s.wait_written(2)
        lines = read_lines(s.path)
        check(len(lines) == 2, f"{len(lines)} lines")
        for line in lines:
            check(list(line) == KEYS, f"keys {list(line)}")
        a = only(lines, path="/echo?x=1")
        check(a["method"] == "POST" and a["authority"] == "service-b", a)
        check(a["protocol"] == "HTTP/1.1" and a["status"] == 200, a)
        check(a["response_flags"] == "-" and a["error_reason"] is None, a)
        check(a["bytes_received"] == len(req), f"bytes_received {a['bytes_received']} "
              f"vs {len(req)} sent")
        check(a["bytes_sent"] == len(resp), f"bytes_sent {a['bytes_sent']} vs {len(resp)} read")
        check(a["upstream_host"] == s.backend.address, a)
        check(a["upstream_cluster"] == "app" and a["route_name"] == "echo-route", a)
        check(a["request_id"] == "rid-12345" == seen_rid, f"{a['request_id']} / {seen_rid}")
        check(a["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736", a)
        check(a["downstream_peer"] == "127.0.0.1" and a["peer_principal"] is None, a)
        check(a["listener"] == "inbound" and a["direction"] == "inbound", a)
        check(a["user_agent"] == "e2e-agent/1.0", a)
        when = time.mktime(time.strptime(a["start_time"][:19], "%Y-%m-%dT%H:%M:%S")) \
            - time.timezone + int(a["start_time"][20:23]) / 1000
        check(a["start_time"].endswith("Z") and len(a["start_time"]) == 24, a["start_time"])
        check(t0 - 0.01 <= when <= t1 + 0.01, f"start_time {a['start_time']} not in [{t0}, {t1}]")
        check(isinstance(a["duration_ms"], float) and 0 < a["duration_ms"] < (t1 - t0) * 1000 + 50,
              f"duration_ms {a['duration_ms']}")
        b = only(lines, path="/echo?second")
        check(b["request_id"] == generated and len(generated) == 36, f"{b} / {generated}")
        check(b["trace_id"] is None and b["user_agent"] == "second", b)
    finally:
        s.stop()


def test_duration_of_a_slow_backend():
    s = Setup().start()
    try:
        c = Caller(s.port)
        t0 = time.monotonic()
        check(c.get("/slow/200")[0] == 200, "slow answer")
        took = (time.monotonic() - t0) * 1000
        c.close()
        s.wait_written(1)
        line = only(read_lines(s.path), path="/slow/200")
        # the line is written just after the answer: allow for a busy machine
        check(200 <= line["duration_ms"] <= took + 50, f"duration_ms {line['duration_ms']}, "
              f"the client waited {took:.1f} ms")
        text = open(s.path).read()
        check('"duration_ms":%.3f,' % line["duration_ms"] in text, "three decimals")
    finally:
        s.stop()


def test_upstream_down_is_502_uf():
    s = Setup().start()
    try:
        c = Caller(s.ports[1])
        status, h, _ = c.get("/x")
        c.close()
        check(status == 502, f"status {status}")
        s.wait_written(1)
        line = only(read_lines(s.path), path="/x")
        check(line["status"] == 502, line)
        check("UF" in line["response_flags"].split(","), f"flags {line['response_flags']}")
        check(line["error_reason"] == h.get("x-weft-error") and line["error_reason"], line)
        check(line["upstream_host"] == f"127.0.0.1:{s.dead_port}", line)
        check(line["upstream_cluster"] == "dead" and line["route_name"] is None, line)
        check(line["listener"] == "dead" and line["direction"] == "outbound", line)
    finally:
        s.stop()


def test_no_route_is_a_local_404():
    s = Setup().start()
    try:
        c = Caller(s.ports[2])
        status, h, _ = c.get("/nowhere", host="unknown-host")
        check(status == 404, f"status {status}")
        # the listener without the plugin logs nothing
        q = Caller(s.ports[3])
        check(q.get("/quiet")[0] == 200, "quiet listener")
        q.close()
        c.close()
        s.wait_written(1)
        line = only(read_lines(s.path), path="/nowhere")
        check(line["status"] == 404 and line["response_flags"] == "NR", line)
        check(line["error_reason"] == "no_route" == h.get("x-weft-error"), line)
        check(line["upstream_host"] is None and line["route_name"] is None, line)
        check(line["authority"] == "unknown-host" and line["listener"] == "strict", line)
        check(line["bytes_sent"] > 0, line)
        check(s.backend.requests == 1, f"backend saw {s.backend.requests}")
    finally:
        s.stop()


def test_http10_without_host():
    s = Setup().start()
    try:
        resp = raw(s.port, b"GET /echo?old HTTP/1.0\r\n\r\n")
        check(b" 200 " in resp.split(b"\r\n", 1)[0], resp[:80])
        s.wait_written(1)
        old = only(read_lines(s.path), path="/echo?old")
        check(old["authority"] is None and old["protocol"] == "HTTP/1.0", old)
        check(old["status"] == 200 and old["upstream_cluster"] == "app", old)
        check(old["bytes_sent"] == len(resp), f"{old['bytes_sent']} vs {len(resp)}")
    finally:
        s.stop()


def test_hostile_values_stay_valid_json():
    """quotes, backslashes, tabs, invalid UTF-8 and a 6 KB path, as a client
    can send them: one valid line, capped"""
    s = Setup().start()
    try:
        long_path = '/q"\\x/' + "a" * 6000
        req = (b"GET " + long_path.encode() + b" HTTP/1.1\r\nHost: service-b\r\n"
               b"User-Agent: q\"uo\\te\tx \xff\xfe caf\xc3\xa9\r\nConnection: close\r\n\r\n")
        resp = raw(s.port, req)
        check(resp.startswith(b"HTTP/1.1 200"), resp[:80])
        s.wait_written(1)
        line = read_lines(s.path)[0]
        check(line["path"] == long_path[:2048 - 2], f"path of {len(line['path'])} bytes")
        check(line["user_agent"] == 'q"uo\\te\tx \ufffd\ufffd caf\u00e9', repr(line["user_agent"]))
        text = open(s.path, "rb").read()
        check(b"\\u0009" in text, "a tab is escaped")
        check(len(text) < 8192, f"line of {len(text)} bytes")
    finally:
        s.stop()


# ---------------------------------------------------------------- volume

def test_concurrent_keepalive_requests_give_whole_lines():
    s = Setup().start()
    try:
        paths = traffic(s.port, 16, 150, "c")
        check(len(paths) == 2400, f"{len(paths)} answered")
        s.wait_written(2400)
        lines = read_lines(s.path)
        check(len(lines) == 2400, f"{len(lines)} lines for 2400 requests")
        check({line["path"] for line in lines} == paths, "one line per request path")
        check(all(line["status"] == 200 for line in lines), "statuses")
        check(s.metric(DROPPED) == 0, f"dropped {s.metric(DROPPED)}")
    finally:
        s.stop()


def test_logrotate_rename_and_sigusr1():
    s = Setup().start()
    try:
        rotated = s.path + ".1"
        bg = Background(s.port, tag="rot")
        wait_for(lambda: len(bg.paths) > 200, 10, what="traffic")
        os.rename(s.path, rotated)
        time.sleep(0.05)                  # lines keep going to the renamed file
        s.weft.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: s.metric("weft_accesslog_reopens_total") == 1, 5, what="a reopen")
        wait_for(lambda: os.path.exists(s.path) and len(read_lines(s.path)) > 100, 10,
                 what="lines in the new file")
        paths = bg.stop()
        # after the reopen: a few more, all in the new file
        after = traffic(s.port, 2, 20, "after")
        s.wait_written(len(paths) + len(after))
        old, new = read_lines(rotated), read_lines(s.path)
        check(len(old) + len(new) == len(paths) + len(after),
              f"{len(old)} + {len(new)} lines for {len(paths) + len(after)} requests")
        check({line["path"] for line in old + new} == paths | after, "every request once")
        check(after <= {line["path"] for line in new},
              "lines after the reopen are in the new file")
        check(s.metric(DROPPED) == 0 and s.metric("weft_accesslog_write_errors_total") == 0,
              "nothing dropped, no errors")
        check(oct(os.stat(s.path).st_mode & 0o777) == oct(0o640 & ~current_umask()),
              oct(os.stat(s.path).st_mode))
    finally:
        s.stop()


def current_umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_reloads_during_traffic_lose_no_line():
    s = Setup().start()
    try:
        moved = os.path.join(s.tmp, "moved.log")
        bg = Background(s.port, tag="rl")
        wait_for(lambda: len(bg.paths) > 100, 10, what="traffic")
        # the same destination: the writer carries on through the reload
        for i in range(3):
            s.rewrite(s.config_text() + f"# reload {i}\n")
            n = len(bg.paths)
            wait_for(lambda: len(bg.paths) > n + 50, 10, what="traffic after the reload")
        # another destination: the old writer finishes, the new one starts
        s.rewrite(s.config_text(f"accesslog:\n  path: {moved}\n"))
        n = len(bg.paths)
        wait_for(lambda: len(bg.paths) > n + 100, 10, what="traffic after the move")
        paths = bg.stop()
        s.wait_written(len(paths))
        first, second = read_lines(s.path), read_lines(moved)
        check(len(first) + len(second) == len(paths),
              f"{len(first)} + {len(second)} lines for {len(paths)} requests")
        check({line["path"] for line in first + second} == paths, "every request once")
        check(len(second) >= 100, f"{len(second)} lines in the new destination")
        check(s.metric(DROPPED) == 0, f"dropped {s.metric(DROPPED)}")
    finally:
        s.stop()


# ---------------------------------------------------------------- destinations

def test_stdout_is_the_default():
    s = Setup(accesslog="")   # no accesslog: key at all
    s.start()
    try:
        paths = traffic(s.port, 4, 25, "out")
        s.wait_written(100)
        s.stop()
        # weft's stdout and stderr share the log file: the JSON lines are ours
        text = open(s.weft.logpath, "rb").read().decode("utf-8")
        ours = [json.loads(line) for line in text.split("\n") if line.startswith("{")]
        check(len(ours) == 100, f"{len(ours)} JSON lines on stdout")
        check({line["path"] for line in ours} == paths, "one line per request")
        others = [line for line in text.split("\n") if line and not line.startswith("{")]
        check(any("ready" in line for line in others), "weft's own log is still there")
    finally:
        s.stop()


def blocked_destination(s, drain, n_threads=4, n_each=400):
    """traffic against a destination nobody reads: every answer comes fast,
    lines are dropped and counted; once @drain() reads it, what was kept
    is written and written + dropped covers every request"""
    latencies, lock = [], threading.Lock()

    def run(t):
        c = Caller(s.port)
        for i in range(n_each):
            t0 = time.monotonic()
            status, _, _ = c.get(f"/echo?blk={t}.{i}")
            with lock:
                latencies.append(time.monotonic() - t0)
            check(status == 200, status)
        c.close()

    ts = [threading.Thread(target=run, args=(t,)) for t in range(n_threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    n = n_threads * n_each
    latencies.sort()
    median, worst = latencies[len(latencies) // 2], latencies[-1]
    dropped = s.metric(DROPPED)
    check(dropped > n / 2, f"only {dropped} of {n} dropped: the destination is blocked")
    check(median < 0.05 and worst < 1.0, f"answers slowed: median {median * 1000:.1f} ms, "
          f"worst {worst * 1000:.1f} ms")
    got = drain(lambda: s.metric(WRITTEN) + s.metric(DROPPED) >= n)
    check(s.metric(WRITTEN) + s.metric(DROPPED) == n,
          f"written {s.metric(WRITTEN)} + dropped {s.metric(DROPPED)} != {n}")
    check(got == s.metric(WRITTEN), f"read {got} lines, written {s.metric(WRITTEN)}")
    return median, worst


def fifo_drain(fd):
    """reads @fd until done(); returns the whole lines read"""
    def drain(done):
        def read():
            try:
                return os.read(fd, 65536)
            except BlockingIOError:
                return b""

        data = b""
        end = time.monotonic() + 10
        while time.monotonic() < end:
            chunk = read()
            data += chunk
            if chunk:
                continue
            if done():
                # a line is counted once it is in the pipe: read the rest
                while chunk := read():
                    data += chunk
                break
            time.sleep(0.01)
        check(data.endswith(b"\n"), "the pipe ends inside a line")
        lines = data.split(b"\n")[:-1]
        for line in lines:
            json.loads(line)
        return len(lines)
    return drain


def test_blocked_fifo_drops_and_counts():
    tmp = tempfile.mkdtemp(prefix="weft-accesslog-")
    fifo = os.path.join(tmp, "log.fifo")
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)   # opened, never read
    s = Setup(path=fifo, buffer="64KiB").start()
    try:
        check(stat.S_ISFIFO(os.stat(fifo).st_mode), "still a FIFO")
        median, worst = blocked_destination(s, fifo_drain(reader))
        print(f"# blocked FIFO: median {median * 1000:.2f} ms, worst {worst * 1000:.1f} ms, "
              f"dropped {s.metric(DROPPED):.0f}", flush=True)
    finally:
        s.stop()
        os.close(reader)


def test_shutdown_with_a_blocked_destination_is_bounded():
    """lines still waiting for a FIFO nobody reads do not hold weft up
    past the writer's close timeout; they are counted as dropped"""
    tmp = tempfile.mkdtemp(prefix="weft-accesslog-")
    fifo = os.path.join(tmp, "log.fifo")
    os.mkfifo(fifo, 0o600)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    s = Setup(path=fifo, buffer="64KiB").start()
    try:
        traffic(s.port, 4, 200, "shut")
        wait_for(lambda: s.metric(DROPPED) > 0, 5, what="drops")
        t0 = time.monotonic()
        rc = s.weft.stop()
        took = time.monotonic() - t0
        check(rc == 0, f"exit status {rc}")
        check(took < 6, f"weft took {took:.1f} s to stop")
        check("dropped at close" in s.weft.logs(), "the lines left are reported")
        print(f"# stopped in {took:.2f} s with the destination blocked", flush=True)
    finally:
        s.stop()
        os.close(reader)


class PipedWeft(Weft):
    """weft with stdout into a pipe the test holds (stderr to the log file)"""

    def start(self, wait=True, config_path=None):
        self.log = open(self.logpath, "w")
        self.pipe_r, pipe_w = os.pipe()
        os.set_blocking(self.pipe_r, False)
        self.proc = subprocess.Popen([WEFT, "--config", config_path or self.dir,
                                      "--log-level", "debug"] + self.args,
                                     stdout=pipe_w, stderr=self.log, env=self.env)
        os.close(pipe_w)
        if wait:
            self.wait_ready()
        return self


def test_blocked_stdout_pipe_drops_and_counts():
    s = Setup(accesslog="accesslog:\n  buffer: 64KiB\n")
    s.weft = PipedWeft(s.config_text())
    s.start()
    try:
        blocked_destination(s, fifo_drain(s.weft.pipe_r))
        # weft's own log on stderr is untouched by the plugin's non-blocking stdout
        check("ready" in s.weft.logs(), "weft's log")
    finally:
        s.stop()
        os.close(s.weft.pipe_r)


def test_config_errors_have_positions():
    port, admin = free_port(), free_port()
    cases = [
        ("accesslog:\n  path: /nonexistent-weft-dir/a.log\n", "weft.yaml:10:9:",
         "No such file or directory"),
        ("accesslog:\n  path: \"-\"\n  format: text\n", "weft.yaml:11:3:", "format"),
        ("accesslog:\n  buffer: 1KiB\n", "weft.yaml:10:11:", "64KiB"),
    ]
    for text, where, what in cases:
        d = tempfile.mkdtemp(prefix="weft-accesslog-")
        with open(os.path.join(d, "weft.yaml"), "w") as fh:
            fh.write(f"admin:\n  address: 127.0.0.1:{admin}\n"
                     f"plugin_dirs: [{PLUGINDIR}]\n"
                     "listeners:\n"
                     f"  - name: in\n    address: 127.0.0.1:{port}\n    upstream: app\n"
                     "    plugins: [accesslog]\n" + text +
                     "upstreams:\n  - name: app\n    endpoints: [127.0.0.1:9]\n")
        r = subprocess.run([WEFT, "--check", "--config", d], capture_output=True, text=True,
                           timeout=30)
        out = r.stdout + r.stderr
        check(r.returncode != 0, f"--check accepted {text!r}")
        check(where in out and what in out, f"want {where} ... {what} in:\n{out}")


def test_sigusr1_without_a_file_is_harmless():
    """stdout has nothing to reopen; the signal must not kill weft"""
    s = Setup(accesslog="")
    s.start()
    try:
        s.weft.proc.send_signal(signal.SIGUSR1)
        traffic(s.port, 1, 5, "sig")
        s.wait_written(5)
        check(s.weft.proc.poll() is None, "weft is still running")
        check(s.metric("weft_accesslog_reopens_total") == 0, "nothing reopened")
    finally:
        s.stop()


if __name__ == "__main__":
    tap = Tap()
    tap.run(test_one_line_per_request_with_its_fields)
    tap.run(test_duration_of_a_slow_backend)
    tap.run(test_upstream_down_is_502_uf)
    tap.run(test_no_route_is_a_local_404)
    tap.run(test_http10_without_host)
    tap.run(test_hostile_values_stay_valid_json)
    tap.run(test_concurrent_keepalive_requests_give_whole_lines)
    tap.run(test_logrotate_rename_and_sigusr1)
    tap.run(test_reloads_during_traffic_lose_no_line)
    tap.run(test_stdout_is_the_default)
    tap.run(test_blocked_fifo_drops_and_counts)
    tap.run(test_shutdown_with_a_blocked_destination_is_bounded)
    tap.run(test_blocked_stdout_pipe_drops_and_counts)
    tap.run(test_config_errors_have_positions)
    tap.run(test_sigusr1_without_a_file_is_harmless)
    tap.done()
