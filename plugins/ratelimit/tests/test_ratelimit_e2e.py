# SPDX-License-Identifier: LGPL-2.1-or-later
"""The ratelimit plugin end to end: real weft processes with two workers,
real callers bound to 127.0.0.2 and 127.0.0.3, a real backend that counts
what it was sent, and a real redis-server for the global limits."""

import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "e2e"))

from weftlib import (PLUGINDIR, Backend, Caller, RedisServer, Tap, Weft,  # noqa: E402
                     blast, check, free_port, metric_sum, wait_for)


# ---------------------------------------------------------------- helpers

def config(port, admin, backend, limits, redis="", plugins="ratelimit", extra_listeners="",
           extra=""):
    return (f"admin:\n  address: 127.0.0.1:{admin}\n"
            f"plugin_dirs: [{PLUGINDIR}]\n"
            "workers: 2\n"
            "listeners:\n"
            f"  - name: inbound\n    address: 127.0.0.1:{port}\n    upstream: app\n"
            f"    plugins: [{plugins}]\n{extra_listeners}"
            f"upstreams:\n  - name: app\n    endpoints: [{backend.address}]\n"
            f"ratelimit:\n{redis}  limits:\n{limits}{extra}")


def start(limits, redis="", **kw):
    backend = Backend("app")
    port, admin = free_port(), free_port()
    w = Weft(config(port, admin, backend, limits, redis, **kw))
    w.start()
    w.port, w.backend = port, backend
    return w


def stop(w):
    w.stop()
    w.backend.stop()


def statuses(port, n, path="/echo", src="127.0.0.1", headers=None):
    c = Caller(port, src)
    out = [c.get(path, headers=headers)[0] for _ in range(n)]
    c.close()
    return out


def within(admitted, rate, burst, t0, t1, slack=2):
    want = burst + rate * (t1 - t0)
    check(abs(admitted - want) <= slack,
          f"admitted {admitted}, want {want:.1f} +- {slack} over {t1 - t0:.2f} s")


# ---------------------------------------------------------------- local limits

def test_sidecar_total_is_exact_across_workers():
    """10/s for the sidecar is 10/s over both workers, counted by the backend"""
    w = start("    - name: total\n      rate: 10/s\n      burst: 5\n")
    try:
        counts, t0, t1 = blast(w.port, 3.0, threads=6)
        admitted = w.backend.requests
        check(counts.get(200, 0) == admitted, f"{counts} vs backend {admitted}")
        check(set(counts) <= {200, 429}, f"statuses {counts}")
        within(admitted, 10, 5, t0, t1)
        m = w.metrics()
        check(m['weft_ratelimit_requests_total{limit="total",result="admitted"}'] == admitted,
              "admitted counter")
        check(m['weft_ratelimit_requests_total{limit="total",result="limited"}'] ==
              counts.get(429, 0), "limited counter")
    finally:
        stop(w)


def test_refusal_carries_retry_after_and_ratelimit_headers():
    w = start("    - name: slow\n      rate: 6/m\n      burst: 2\n")
    try:
        c = Caller(w.port)
        check([c.get()[0] for _ in range(2)] == [200, 200], "the burst passes")
        status, h, body = c.get()
        check(status == 429, f"status {status}")
        check(h.get("x-weft-error") == "rate_limited", f"x-weft-error {h}")
        retry = int(h["retry-after"])
        check(1 <= retry <= 10, f"Retry-After {retry}: a token comes every 10 s")
        check(h.get("ratelimit-policy") == '"slow";q=6;w=60', f"policy {h}")
        check(h.get("ratelimit") == f'"slow";r=0;t={retry}', f"ratelimit {h}")
        check(b"rate_limited" in body, body)
        check(h.get("connection", "") != "close", "a refusal keeps the connection")
        # the same connection carries the next request
        check(c.get()[0] == 429, "still limited on the same connection")
        c.close()
        check(w.backend.requests == 2, f"backend saw {w.backend.requests}")
    finally:
        stop(w)


def test_keyed_by_source_ip():
    w = start("    - name: per-caller\n      rate: 1/m\n      burst: 3\n      key: source_ip\n")
    try:
        a = statuses(w.port, 5, src="127.0.0.2")
        c = statuses(w.port, 5, src="127.0.0.3")
        check(a == [200] * 3 + [429] * 2, f"A {a}")
        check(c == [200] * 3 + [429] * 2, f"C has a bucket of its own: {c}")
    finally:
        stop(w)


def test_keyed_by_header():
    w = start("    - name: per-user\n      rate: 1/m\n      burst: 2\n      key: header:x-user\n")
    try:
        alice = statuses(w.port, 3, headers={"x-user": "alice"})
        bob = statuses(w.port, 3, headers={"x-user": "bob"})
        none = statuses(w.port, 3)
        check(alice == [200, 200, 429], f"alice {alice}")
        check(bob == [200, 200, 429], f"bob {bob}")
        # no header: one shared bucket, not a way around the limit
        check(none == [200, 200, 429], f"no header {none}")
    finally:
        stop(w)


def test_route_scope_and_route_key():
    router = ("router:\n  virtual_hosts:\n    - domains: ['*']\n      routes:\n"
              "        - name: r-a\n          match: {path: {prefix: /a}}\n"
              "          upstream: app\n"
              "        - name: r-b\n          match: {path: {prefix: /b}}\n"
              "          upstream: app\n")
    w = start("    - name: only-a\n      rate: 1/m\n      burst: 2\n      routes: [r-a]\n"
              "    - name: each-route\n      rate: 1/m\n      burst: 4\n      key: route\n",
              plugins="router, ratelimit", extra=router)
    try:
        a = statuses(w.port, 3, path="/a")
        b = statuses(w.port, 6, path="/b")
        check(a == [200, 200, 429], f"/a is scoped by only-a: {a}")
        check(b == [200] * 4 + [429] * 2, f"/b has its own each-route bucket: {b}")
        m = w.metrics()
        check(m['weft_ratelimit_requests_total{limit="only-a",result="limited"}'] == 1, "only-a")
        check(m['weft_ratelimit_requests_total{limit="each-route",result="limited"}'] == 2,
              "each-route")
    finally:
        stop(w)


def test_listener_scope():
    port2 = free_port()
    w = start("    - name: second-only\n      rate: 1/m\n      burst: 1\n      listeners: [second]\n",
              extra_listeners=(f"  - name: second\n    address: 127.0.0.1:{port2}\n"
                               "    upstream: app\n    plugins: [ratelimit]\n"))
    try:
        check(statuses(w.port, 4) == [200] * 4, "the first listener is not limited")
        check(statuses(port2, 3) == [200, 429, 429], "the second one is")
    finally:
        stop(w)


def test_match_counts_only_matching_requests():
    """A on GET /foo is limited; A elsewhere and C anywhere are not counted"""
    w = start("    - name: a-foo\n      rate: 1/m\n      burst: 2\n"
              "      match:\n"
              "        from: [{source: {ipBlocks: [127.0.0.2/32]}}]\n"
              "        to: [{operation: {methods: [GET], paths: [/foo]}}]\n")
    try:
        check(statuses(w.port, 3, "/foo", "127.0.0.2") == [200, 200, 429], "A on /foo")
        check(statuses(w.port, 3, "/bar", "127.0.0.2") == [200] * 3, "A on /bar")
        check(statuses(w.port, 3, "/foo", "127.0.0.3") == [200] * 3, "C on /foo")
    finally:
        stop(w)


def test_reload_keeps_unchanged_buckets():
    limit = "    - name: keep\n      rate: 1/m\n      burst: 3\n"
    w = start(limit)
    try:
        check(statuses(w.port, 4) == [200, 200, 200, 429], "drained")
        base = config(w.port, w.admin_port, w.backend, limit)
        # an unrelated change: a second limit; 'keep' is the same
        w.rewrite(base + "    - name: other\n      rate: 100/s\n")
        check(statuses(w.port, 1) == [429], "the drained bucket survived the reload")
        # the limit itself changed: a fresh bucket
        w.rewrite(config(w.port, w.admin_port, w.backend,
                          "    - name: keep\n      rate: 2/m\n      burst: 3\n"))
        check(statuses(w.port, 4) == [200, 200, 200, 429], "a changed limit starts full")
        m = w.metrics()
        check(m['weft_ratelimit_requests_total{limit="keep",result="limited"}'] == 3,
              "counts survive reloads")
    finally:
        stop(w)


def test_bad_limit_keeps_old_config():
    limit = "    - name: keep\n      rate: 1/m\n      burst: 1\n"
    w = start(limit)
    try:
        gen = w.generation()
        path = os.path.join(w.dir, "weft.yaml")
        with open(path, "w") as fh:
            fh.write(config(w.port, w.admin_port, w.backend,
                            "    - name: keep\n      rate: lots\n"))
        wait_for(lambda: "'rate' must be" in w.logs(), 5, what="the error")
        check(w.generation() == gen, "the old config stays live")
        check("weft.yaml:" in w.logs().split("'rate' must be")[0].splitlines()[-1],
              "file:line:col in the log")
        check(statuses(w.port, 2) == [200, 429], "the old limit still applies")
    finally:
        stop(w)


# ---------------------------------------------------------------- Redis

def redis_section(redis_address, mode="open", timeout="100ms"):
    return (f"  redis:\n    address: {redis_address}\n    timeout: {timeout}\n"
            f"    failure_mode: {mode}\n    key_prefix: e2e{free_port()}\n")


def test_two_sidecars_share_a_global_limit():
    """two weft processes sharing 10/s admit 10/s together"""
    redis = RedisServer()
    section = redis_section(redis.address)
    limit = "    - name: shared\n      rate: 10/s\n      burst: 5\n      global: true\n"
    w1 = start(limit, section)
    backend = w1.backend
    port2, admin2 = free_port(), free_port()
    w2 = Weft(config(port2, admin2, backend, limit, section))
    w2.start()
    try:
        results = {}

        def run(name, port):
            results[name] = blast(port, 3.0, threads=3)
        ts = [threading.Thread(target=run, args=("a", w1.port)),
              threading.Thread(target=run, args=("b", port2))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        t0 = min(r[1] for r in results.values())
        t1 = max(r[2] for r in results.values())
        admitted = backend.requests
        ok = sum(r[0].get(200, 0) for r in results.values())
        check(ok == admitted, f"{results} vs backend {admitted}")
        for name, r in results.items():
            check(r[0].get(200, 0) > 0 and r[0].get(429, 0) > 0, f"{name}: {r[0]}")
        within(admitted, 10, 5, t0, t1)
        m1, m2 = w1.metrics(), w2.metrics()
        fails = sum(metric_sum(m, "weft_ratelimit_requests_total") -
                    m['weft_ratelimit_requests_total{limit="shared",result="admitted"}'] -
                    m['weft_ratelimit_requests_total{limit="shared",result="limited"}']
                    for m in (m1, m2))
        check(fails == 0, f"{fails} Redis failures")
    finally:
        w2.stop()
        stop(w1)
        redis.stop()


def test_redis_down_fails_open_or_closed():
    port = free_port()   # nothing listens here
    limit = "    - name: g\n      rate: 1/m\n      burst: 1\n      global: true\n"
    w = start(limit, redis_section(f"127.0.0.1:{port}", "open"))
    try:
        t = time.monotonic()
        check(statuses(w.port, 5) == [200] * 5, "open: requests pass")
        check(time.monotonic() - t < 2, "and at once")
        m = w.metrics()
        check(m['weft_ratelimit_requests_total{limit="g",result="failed_open"}'] == 5, "counted")
    finally:
        stop(w)
    w = start(limit, redis_section(f"127.0.0.1:{port}", "closed"))
    try:
        c = Caller(w.port)
        t = time.monotonic()
        status, h, _ = c.get()
        check(time.monotonic() - t < 1, "closed: refused at once")
        check(status == 503 and h.get("x-weft-error") == "ratelimit_unavailable", f"{status} {h}")
        check(w.backend.requests == 0, "nothing reached the backend")
        c.close()
    finally:
        stop(w)


class BlackHole:
    """accepts connections and never answers: a Redis that hangs"""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_slow_redis_never_holds_a_request_past_the_timeout():
    hole = BlackHole()
    limit = "    - name: g\n      rate: 1/m\n      burst: 1\n      global: true\n"
    w = start(limit, redis_section(f"127.0.0.1:{hole.port}", "open", "150ms"))
    try:
        # callers that reset their connection while their check is out: the
        # requests end, and their checks must be forgotten, not answered later
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", w.port))
            # a body still to come keeps weft reading, so it sees the reset
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: b\r\ncontent-length: 100\r\n\r\nabc")
            time.sleep(0.02)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        time.sleep(0.3)   # past the timeout: the forgotten checks fail now
        for _ in range(3):
            t = time.monotonic()
            status, _, _ = Caller(w.port).get()
            took = time.monotonic() - t
            check(status == 200, f"fail open: {status}")
            check(took < 1.0, f"held {took:.2f} s, timeout 150 ms")
        m = w.metrics()
        check(m['weft_ratelimit_requests_total{limit="g",result="failed_open"}'] >= 3, "counted")
        check("redis: no reply within 150 ms" in w.logs(), "the timeout is logged")
    finally:
        stop(w)
        hole.close()


def test_redis_restart_recovers():
    redis = RedisServer()
    limit = "    - name: g\n      rate: 1/m\n      burst: 2\n      global: true\n"
    w = start(limit, redis_section(redis.address, "closed"))
    try:
        check(statuses(w.port, 3) == [200, 200, 429], "limited through Redis")
        port = redis.port
        redis.stop()
        check(statuses(w.port, 1) == [503], "closed while Redis is down")
        redis2 = RedisServer.__new__(RedisServer)
        redis2.port = port
        redis2.proc = __import__("subprocess").Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=-3, stderr=-3)
        wait_for(lambda: redis2.command("PING") == b"+PONG", 5, what="redis restart")
        # a fresh Redis has a fresh bucket; weft reconnects within a second
        wait_for(lambda: statuses(w.port, 1) == [200], 3, step=0.2, what="reconnect")
        redis2.stop()
    finally:
        stop(w)


def test_script_flush_recovers():
    """SCRIPT FLUSH (or a failover to a fresh replica) loses the Lua script:
    weft loads it again instead of failing every check from then on"""
    redis = RedisServer()
    limit = "    - name: g\n      rate: 1/m\n      burst: 100\n      global: true\n"
    w = start(limit, redis_section(redis.address, "closed"))
    try:
        c = Caller(w.port)   # one connection: one worker, whose Redis connection is up
        check([c.get()[0] for _ in range(2)] == [200, 200], "through Redis")
        check(redis.command("SCRIPT", "FLUSH") == b"+OK", "flushed")
        codes = [c.get()[0] for _ in range(10)]
        c.close()
        check(codes.count(503) <= 2 and codes[-5:] == [200] * 5, f"after the flush: {codes}")
        check("the script is gone; loading it again" in w.logs(), "logged")
    finally:
        stop(w)
        redis.stop()


def main():
    tap = Tap()
    for t in (test_sidecar_total_is_exact_across_workers,
              test_refusal_carries_retry_after_and_ratelimit_headers,
              test_keyed_by_source_ip,
              test_keyed_by_header,
              test_route_scope_and_route_key,
              test_listener_scope,
              test_match_counts_only_matching_requests,
              test_reload_keeps_unchanged_buckets,
              test_bad_limit_keeps_old_config,
              test_two_sidecars_share_a_global_limit,
              test_redis_down_fails_open_or_closed,
              test_slow_redis_never_holds_a_request_past_the_timeout,
              test_redis_restart_recovers,
              test_script_flush_recovers):
        tap.run(t)
    tap.done()


if __name__ == "__main__":
    main()
