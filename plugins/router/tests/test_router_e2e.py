# SPDX-License-Identifier: LGPL-2.1-or-later
"""The router end to end: real weft processes, real upstream processes, real
clients. The mission's three examples first, then every match kind, action,
retry, fault, mirror, load-balancing algorithm and input format."""

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "e2e"))

from weftlib import (PLUGINDIR, WEFT, Backend, SkipTest, Tap, Weft, admin_get,  # noqa: E402
                     check, free_port, metric_sum, parse_metrics)


# ---------------------------------------------------------------- helpers

def base_config(listen_port, admin_port, upstreams, listener_extra=""):
    out = [f"admin:\n  address: 127.0.0.1:{admin_port}\n",
           f"plugin_dirs: [{PLUGINDIR}]\n",
           "workers: 2\n",
           "listeners:\n",
           f"  - name: mesh\n    address: 127.0.0.1:{listen_port}\n"
           f"    direction: outbound\n    plugins: [router]\n{listener_extra}"]
    if upstreams:
        out.append("upstreams:\n")
        for name, eps in upstreams.items():
            out.append(f"  - name: {name}\n    endpoints: [{', '.join(eps)}]\n")
    return "".join(out)


def start(upstreams, docs, listener_extra="", extra=""):
    """weft with one router listener; @docs: {filename: yaml} beside it."""
    port, admin = free_port(), free_port()
    w = Weft(base_config(port, admin, upstreams, listener_extra) + extra)
    for name, text in docs.items():
        with open(os.path.join(w.dir, name), "w") as fh:
            fh.write(text)
    w.start()
    w.port = port
    return w


class Client:
    """One keep-alive connection."""

    def __init__(self, port, timeout=10):
        self.port = port
        self.timeout = timeout
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def get(self, path="/echo", host="service-b", method="GET", headers=None, body=None):
        h = {"Host": host}
        h.update(headers or {})
        try:
            self.c.request(method, path, body=body, headers=h)
            r = self.c.getresponse()
        except (http.client.HTTPException, OSError):
            self.c.close()
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self.c.request(method, path, body=body, headers=h)
            r = self.c.getresponse()
        data = r.read()
        if r.getheader("connection", "").lower() == "close":
            self.c.close()
            self.c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data

    def close(self):
        self.c.close()


def shares(port, n, host="service-b", path="/echo", headers=None, threads=4):
    """{x-backend: count} over @n requests on @threads keep-alive connections."""
    counts = {}
    lock = threading.Lock()
    errors = []

    def run(k):
        cl = Client(port)
        local = {}
        try:
            for _ in range(k):
                st, h, _ = cl.get(path, host=host, headers=headers)
                key = h.get("x-backend", f"status-{st}") if st == 200 else f"status-{st}"
                local[key] = local.get(key, 0) + 1
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))
        cl.close()
        with lock:
            for key, v in local.items():
                counts[key] = counts.get(key, 0) + v

    ts = [threading.Thread(target=run, args=(n // threads,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, errors)
    return counts


def check_share(counts, name, expected, n, bound=1.5):
    got = 100.0 * counts.get(name, 0) / n
    print(f"# {name}: {got:.2f}% of {n} (want {expected}% ± {bound})", flush=True)
    check(abs(got - expected) <= bound, f"{name}: {got:.2f}% of {n}, want {expected}% ± {bound}")


def weft_check(files):
    d = tempfile.mkdtemp(prefix="weft-router-check-")
    for name, text in files.items():
        with open(os.path.join(d, name), "w") as fh:
            fh.write(text)
    p = subprocess.run([WEFT, "--check", "--config", d], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr, d


MISSION_VS = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata:
  name: service-b
spec:
  hosts:
    - service-b
  http:
    - route:
      - destination:
          host: service-b-v1
          weight: 90
      - destination:
          host: service-b-v2
          weight: 10
"""



def mission_vs(w1, w2):
    return MISSION_VS.replace("weight: 90", "weight: W1").replace(
        "weight: 10", "weight: W2").replace("W1", str(w1)).replace("W2", str(w2))


# ---------------------------------------------------------------- the mission

def test_mission_split_90_10_as_written():
    """The user's VirtualService, weight inside destination, word for word."""
    v1, v2 = Backend("v1"), Backend("v2")
    w = start({"service-b-v1": [v1.address], "service-b-v2": [v2.address]},
              {"service-b.yaml": MISSION_VS})
    try:
        n = 10000
        counts = shares(w.port, n)
        check(sum(counts.values()) == n, counts)
        check_share(counts, "v1", 90, n)
        check_share(counts, "v2", 10, n)
        log = w.logs()
        check("service-b.yaml:12:11" in log and "service-b.yaml:15:11" in log and
              "beside 'destination'" in log,
              f"no positioned warning about weight:\n{log[-2000:]}")
    finally:
        w.stop()
        v1.stop()
        v2.stop()


def test_mission_split_istio_shape_999_1():
    """weight beside destination (Istio's schema), and a 999/1 split."""
    v1, v2 = Backend("v1"), Backend("v2")
    vs = """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: service-b}
spec:
  hosts: [service-b]
  http:
    - route:
      - destination: {host: service-b-v1}
        weight: 999
      - destination: {host: service-b-v2}
        weight: 1
"""
    w = start({"service-b-v1": [v1.address], "service-b-v2": [v2.address]}, {"vs.yaml": vs})
    try:
        n = 10000
        counts = shares(w.port, n)
        check_share(counts, "v1", 99.9, n, bound=0.3)
        check(1 <= counts.get("v2", 0) <= 35, counts)
        check("beside 'destination'" not in w.logs(), "warned about a correct file")
    finally:
        w.stop()
        v1.stop()
        v2.stop()


def test_mission_accept_language_en_gb_to_v2():
    v1, v2 = Backend("v1"), Backend("v2")
    vs = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [service-b]
  http:
    - match:
        - headers:
            accept-language:
              exact: en-GB
      route:
        - destination: {host: service-b, subset: v2}
    - route:
        - destination: {host: service-b, subset: v1}
"""
    w = start({"service-b-v1": [v1.address], "service-b-v2": [v2.address]}, {"vs.yaml": vs})
    try:
        cl = Client(w.port)
        for _ in range(20):
            check(cl.get(headers={"Accept-Language": "en-GB"})[1]["x-backend"] == "v2")
            check(cl.get(headers={"Accept-Language": "en-US"})[1]["x-backend"] == "v1")
            check(cl.get()[1]["x-backend"] == "v1")
            check(cl.get(headers={"Accept-Language": "en-GB,en;q=0.8"})[1]["x-backend"] == "v1")
    finally:
        w.stop()
        v1.stop()
        v2.stop()


def test_mission_get_foo_to_cache():
    cache, origin = Backend("cache"), Backend("origin")
    vs = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: catalog}
spec:
  hosts: [service-b]
  http:
    - match:
        - uri: {prefix: /foo}
          method: {exact: GET}
      route:
        - destination: {host: cache}
    - route:
        - destination: {host: origin}
"""
    w = start({"cache": [cache.address], "origin": [origin.address]}, {"vs.yaml": vs})
    try:
        cl = Client(w.port)
        check(cl.get("/foo")[1]["x-backend"] == "cache")
        check(cl.get("/foo/bar?x=1")[1]["x-backend"] == "cache")
        check(cl.get("/foo", method="POST", body=b"x")[1]["x-backend"] == "origin")
        check(cl.get("/foo", method="HEAD")[1]["x-backend"] == "origin")
        check(cl.get("/bar")[1]["x-backend"] == "origin")
        check(cache.requests == 2 and origin.requests == 3, (cache.requests, origin.requests))
    finally:
        w.stop()
        cache.stop()
        origin.stop()


# ---------------------------------------------------------------- matches and actions

MATCH_VS = """apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: kinds}
spec:
  hosts: [service-b, "*.wild.example"]
  http:
    - match: [{uri: {exact: /exact}}]
      route: [{destination: {host: a}}]
    - match: [{uri: {regex: "/users/[0-9]+"}}]
      route: [{destination: {host: b}}]
    - match: [{uri: {prefix: /CASE}, ignoreUriCase: true}]
      route: [{destination: {host: b}}]
    - match: [{headers: {x-prefix: {prefix: abc}}}]
      route: [{destination: {host: a}}]
    - match: [{headers: {x-regex: {regex: "v[0-9]"}}}]
      route: [{destination: {host: b}}]
    - match: [{headers: {x-present: {}}}]
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /q}, queryParams: {debug: {exact: "1"}}}]
      route: [{destination: {host: b}}]
    - match: [{uri: {prefix: /q}, queryParams: {id: {regex: "[a-f]+"}}}]
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /absent}, withoutHeaders: {x-token: {}}}]
      route: [{destination: {host: b}}]
    - match: [{method: {regex: "PUT|PATCH"}}]
      route: [{destination: {host: b}}]
    - route: [{destination: {host: c}}]
"""


def test_match_kinds():
    a, b, c = Backend("a"), Backend("b"), Backend("c")
    w = start({"a": [a.address], "b": [b.address], "c": [c.address]}, {"vs.yaml": MATCH_VS})
    try:
        cl = Client(w.port)
        cases = [
            ("/exact", {}, "GET", "service-b", "a"),
            ("/exact/more", {}, "GET", "service-b", "c"),
            ("/users/42", {}, "GET", "service-b", "b"),
            ("/users/42x", {}, "GET", "service-b", "c"),
            ("/case/x", {}, "GET", "service-b", "b"),
            ("/x", {"x-prefix": "abcdef"}, "GET", "service-b", "a"),
            ("/x", {"x-prefix": "zabc"}, "GET", "service-b", "c"),
            ("/x", {"x-regex": "v7"}, "GET", "service-b", "b"),
            ("/x", {"x-regex": "v77"}, "GET", "service-b", "c"),
            ("/x", {"x-present": ""}, "GET", "service-b", "a"),
            ("/q?debug=1", {}, "GET", "service-b", "b"),
            ("/q?a=2&debug=1", {}, "GET", "service-b", "b"),
            ("/q?debug=2", {}, "GET", "service-b", "c"),
            ("/q?id=beef", {}, "GET", "service-b", "a"),
            ("/q?id=xyz", {}, "GET", "service-b", "c"),
            ("/absent", {}, "GET", "service-b", "b"),
            ("/absent", {"x-token": "t"}, "GET", "service-b", "c"),
            ("/m", {}, "PUT", "service-b", "b"),
            ("/m", {}, "PATCH", "service-b", "b"),
            ("/m", {}, "DELETE", "service-b", "c"),
            ("/exact", {}, "GET", "service-b:8080", "a"),
            ("/exact", {}, "GET", "api.wild.example", "a"),
            ("/exact", {}, "GET", "SERVICE-B", "a"),
        ]
        for path, headers, method, host, want in cases:
            st, h, _ = cl.get(path, host=host, headers=headers, method=method,
                              body=b"" if method in ("PUT", "PATCH") else None)
            check(st == 200 and h.get("x-backend") == want,
                  f"{method} {host}{path} {headers}: {st} {h.get('x-backend')}, want {want}")
        # no virtual host for this authority, and no default upstream: 404
        st, h, _ = cl.get("/exact", host="unknown.example")
        check(st == 404 and h.get("x-weft-error") == "no_route", (st, h))
    finally:
        w.stop()
        for x in (a, b, c):
            x.stop()


ACTIONS_VS = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: actions}
spec:
  hosts: [service-b]
  http:
    - match: [{uri: {prefix: /old/}}]
      rewrite: {uri: /new/, authority: rewritten.example}
      headers:
        request:
          set: {x-set: one}
          add: {x-add: two}
          remove: [x-drop]
        response:
          set: {x-resp-set: three}
          remove: [x-backend-secret]
      route:
        - destination: {host: a}
          headers:
            request: {set: {x-dest: a}}
            response: {add: {x-dest-resp: a}}
    - match: [{uri: {exact: /moved}}]
      redirect: {uri: /new-home, authority: other.example, redirectCode: 308}
    - match: [{uri: {exact: /hello}}]
      directResponse: {status: 418, body: {string: "short and stout\\n"}}
    - match: [{uri: {regex: "/r/([a-z]+)/([0-9]+)"}}]
      rewrite: {uriRegexRewrite: {match: "/r/([a-z]+)/([0-9]+)", rewrite: "/\\\\2/\\\\1"}}
      route: [{destination: {host: a}}]
"""


def test_actions():
    a = Backend("a")
    w = start({"a": [a.address]}, {"vs.yaml": ACTIONS_VS})
    try:
        cl = Client(w.port)
        st, h, body = cl.get("/old/page?q=1", headers={"x-drop": "d", "x-add": "one"})
        seen = __import__("json").loads(body)
        hdrs = {}
        for k, v in seen["headers"]:
            hdrs.setdefault(k.lower(), []).append(v)
        check(st == 200 and seen["path"] == "/new/page?q=1", seen["path"])
        check(hdrs.get("host") == ["rewritten.example"], hdrs.get("host"))
        check(hdrs.get("x-set") == ["one"] and hdrs.get("x-dest") == ["a"], hdrs)
        check(hdrs.get("x-add") == ["one", "two"], hdrs.get("x-add"))
        check("x-drop" not in hdrs, hdrs)
        check(h.get("x-resp-set") == "three" and h.get("x-dest-resp") == "a", h)
        check("x-backend-secret" not in h, h)

        st, h, _ = cl.get("/moved?keep=1")
        check(st == 308, st)
        check(h.get("location") in ("http://other.example/new-home?keep=1",
                                    "http://other.example/new-home"), h.get("location"))
        st, h, body = cl.get("/hello")
        check(st == 418 and body == b"short and stout\n", (st, body))

        st, h, body = cl.get("/r/abc/42")
        check(__import__("json").loads(body)["path"] == "/42/abc", body)
    finally:
        w.stop()
        a.stop()


# ---------------------------------------------------------------- timeouts, retries, faults

def test_rule_timeout():
    a = Backend("a")
    vs = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: t}
spec:
  hosts: [service-b]
  http:
    - match: [{uri: {prefix: /slow/}}]
      timeout: 0.3s
      route: [{destination: {host: a}}]
    - route: [{destination: {host: a}}]
"""
    w = start({"a": [a.address]}, {"vs.yaml": vs})
    try:
        cl = Client(w.port)
        t0 = time.monotonic()
        st, h, _ = cl.get("/slow/1500")
        took = time.monotonic() - t0
        check(st == 504 and h.get("x-weft-error") == "upstream_timeout", (st, h))
        check(0.25 <= took < 1.0, f"timeout took {took:.3f}s, want about 0.3s")
        st, _, _ = Client(w.port).get("/echo")
        check(st == 200)
    finally:
        w.stop()
        a.stop()


def retry_vs(retries):
    return f"""apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: r}}
spec:
  hosts: [service-b]
  http:
    - match: [{{uri: {{prefix: /retry/}}}}]
      rewrite: {{uri: /}}
      retries: {retries}
      route: [{{destination: {{host: a}}}}]
    - route: [{{destination: {{host: a}}}}]
"""


def test_retry_on_503_and_reset():
    a = Backend("a")
    w = start({"a": [a.address]},
              {"vs.yaml": retry_vs("{attempts: 3, perTryTimeout: 2s, retryOn: \"5xx,reset\"}")})
    try:
        cl = Client(w.port)
        # two 503s then 200: three tries
        st, _, body = cl.get("/retry/flaky/k1/2")
        check(st == 200 and body == b"recovered\n", (st, body))
        # two hang-ups then 200
        st, _, body = cl.get("/retry/flakyreset/k2/2")
        check(st == 200 and body == b"recovered\n", (st, body))
        # more failures than attempts: the last 503 goes to the client
        st, _, body = cl.get("/retry/flaky/k3/10")
        check(st == 503 and body == b"flaky\n", (st, body))
        check(a.flaky["k3"] == 10 - 4, a.flaky)
        # a POST body is sent again on each try
        a.bodies = []
        st, _, body = cl.get("/retry/flaky/k4/1", method="POST", body=b"p" * 3000)
        check(st == 200, st)
        # without a retry policy the first 503 is the answer
        st, _, _ = cl.get("/flaky/k5/1")
        check(st == 503, st)
        m = parse_metrics(admin_get(w.admin_port, "/metrics")[2].decode())
        check(m.get('weft_upstream_errors_total{reason="upstream_retried"}', 0) >= 7, m)
    finally:
        w.stop()
        a.stop()


def test_retry_skips_large_body():
    a = Backend("a")
    w = start({"a": [a.address]},
              {"vs.yaml": retry_vs("{attempts: 3, retryOn: \"5xx\"}")})
    try:
        cl = Client(w.port)
        st, _, _ = cl.get("/retry/flaky/big/1", method="POST", body=b"x" * (200 * 1024))
        check(st == 503, f"a 200 KiB body was retried: {st}")
        st, _, _ = cl.get("/retry/flaky/small/1", method="POST", body=b"x" * (32 * 1024))
        check(st == 200, st)
    finally:
        w.stop()
        a.stop()


def test_fault_abort_and_delay_percentages():
    a = Backend("a")
    vs = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: f}
spec:
  hosts: [service-b]
  http:
    - match: [{uri: {prefix: /abort}}]
      fault: {abort: {httpStatus: 503, percentage: {value: 30}}}
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /delay}}]
      fault: {delay: {fixedDelay: 0.2s, percentage: {value: 50}}}
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /both}}]
      fault:
        delay: {fixedDelay: 0.2s, percentage: {value: 100}}
        abort: {httpStatus: 429, percentage: {value: 100}}
      route: [{destination: {host: a}}]
    - match: [{uri: {prefix: /hello}}]
      fault: {delay: {fixedDelay: 0.2s, percentage: {value: 100}}}
      directResponse: {status: 204}
"""
    w = start({"a": [a.address]}, {"vs.yaml": vs})
    try:
        counts = shares(w.port, 2000, path="/abort")
        aborted = counts.get("status-503", 0)
        check(abs(aborted / 2000 - 0.30) <= 0.04, counts)
        check(a.requests == 2000 - aborted, (a.requests, aborted))
        cl = Client(w.port)
        slow = 0
        for _ in range(60):
            t0 = time.monotonic()
            st, _, _ = cl.get("/delay")
            check(st == 200)
            if time.monotonic() - t0 >= 0.19:
                slow += 1
        check(15 <= slow <= 45, f"{slow} of 60 delayed, want about 30")
        # a delay before a local answer holds the whole answer, head first
        for path, status in (("/both", 429), ("/hello", 204)):
            t0 = time.monotonic()
            st, h, body = Client(w.port, timeout=3).get(path)
            took = time.monotonic() - t0
            check(st == status and took >= 0.19, (path, st, took, body))
            if status == 429:
                check(h.get("x-weft-error") == "fault_abort", h)
    finally:
        w.stop()
        a.stop()


# ---------------------------------------------------------------- mirroring

class Blackhole:
    """Accepts connections and never answers."""

    def __init__(self):
        self.port = free_port()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(512)
        self.accepted = []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def stop(self):
        self.sock.close()
        for c in self.accepted:
            c.close()


def test_mirror_never_affects_main():
    a, shadow, hole = Backend("a"), Backend("shadow"), Blackhole()
    dead = free_port()
    vs = f"""apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {{name: m}}
spec:
  hosts: [service-b]
  http:
    - match: [{{uri: {{prefix: /copy}}}}]
      route: [{{destination: {{host: a}}}}]
      mirror: {{host: shadow}}
      mirrorPercentage: {{value: 100}}
    - match: [{{uri: {{prefix: /half}}}}]
      route: [{{destination: {{host: a}}}}]
      mirror: {{host: shadow}}
      mirrorPercentage: {{value: 50}}
    - match: [{{uri: {{prefix: /hole}}}}]
      route: [{{destination: {{host: a}}}}]
      mirrors:
        - destination: {{host: hole}}
        - destination: {{host: dead}}
"""
    w = start({"a": [a.address], "shadow": [shadow.address],
               "hole": [f"127.0.0.1:{hole.port}"], "dead": [f"127.0.0.1:{dead}"]},
              {"vs.yaml": vs})
    try:
        cl = Client(w.port)
        for i in range(20):
            st, h, _ = cl.get(f"/copy/{i}", method="POST", body=b"m" * 1000)
            check(st == 200 and h["x-backend"] == "a")
        time.sleep(0.3)
        copies = [s for s in shadow.seen if s[1].startswith("/copy/")]
        check(len(copies) == 20, f"{len(copies)} copies")
        check(all(s[2] == "service-b-shadow" for s in copies), copies[:3])
        for _ in range(400):
            cl.get("/half")
        time.sleep(0.3)
        half = len([s for s in shadow.seen if s[1] == "/half"])
        check(140 <= half <= 260, f"{half} of 400 mirrored at 50%")
        # mirrors that hang or refuse cost the main request nothing
        t0 = time.monotonic()
        for _ in range(50):
            st, h, _ = cl.get("/hole")
            check(st == 200 and h["x-backend"] == "a", (st, h))
        took = time.monotonic() - t0
        check(took < 2.0, f"50 requests with a black-hole mirror took {took:.2f}s")
        check(w.proc.poll() is None)
    finally:
        w.stop()
        for x in (a, shadow, hole):
            x.stop()


# ---------------------------------------------------------------- load balancing

def lb_setup(policy_yaml, n=3, outlier=""):
    backends = [Backend(f"e{i}") for i in range(n)]
    vs = """apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: lb}
spec:
  hosts: [service-b]
  http:
    - route: [{destination: {host: pool}}]
"""
    dr = f"""apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {{name: pool}}
spec:
  host: pool
  trafficPolicy:
    loadBalancer: {policy_yaml}
{outlier}"""
    w = start({"pool": [b.address for b in backends]}, {"vs.yaml": vs, "dr.yaml": dr})
    return w, backends


def test_lb_round_robin_and_random():
    for policy in ("{simple: ROUND_ROBIN}", "{simple: RANDOM}"):
        w, bs = lb_setup(policy)
        try:
            counts = shares(w.port, 3000)
            for b in bs:
                check(800 <= counts.get(b.name, 0) <= 1200, (policy, counts))
            # one connection stays on one worker: round robin never picks the
            # same endpoint twice running, random does (so the policy applied)
            cl = Client(w.port)
            seq = [cl.get()[1]["x-backend"] for _ in range(300)]
            repeats = sum(1 for a, b in zip(seq, seq[1:]) if a == b)
            if "ROUND_ROBIN" in policy:
                check(repeats == 0, (policy, seq[:12]))
            else:
                check(repeats >= 50, (policy, repeats, seq[:12]))
        finally:
            w.stop()
            for b in bs:
                b.stop()


def test_lb_least_request_avoids_slow_endpoint():
    w, bs = lb_setup("{simple: LEAST_REQUEST}")
    try:
        # e0 is slow: requests to /slow/.. on it take long, so P2C with
        # peak-EWMA sends most traffic to the others
        slow = bs[0]
        orig = slow._answer

        def slow_answer(c, f, method, target, headers, hmap, body, orig=orig):
            time.sleep(0.05)
            return orig(c, f, method, target, headers, hmap, body)
        slow._answer = slow_answer
        counts = shares(w.port, 600, threads=6)
        check(counts.get("e0", 0) < 600 / 3 * 0.6, f"slow endpoint got {counts}")
        check(counts.get("e1", 0) > 150 and counts.get("e2", 0) > 150, counts)
    finally:
        w.stop()
        for b in bs:
            b.stop()


def test_lb_consistent_hash_ring_and_maglev():
    for policy in ("{consistentHash: {httpHeaderName: x-user}}",
                   "{consistentHash: {httpHeaderName: x-user, maglev: {tableSize: 65537}}}",
                   "{consistentHash: {httpCookie: {name: session}}}",
                   "{consistentHash: {useSourceIp: true}}"):
        w, bs = lb_setup(policy)
        try:
            cl = Client(w.port)
            owners = {}
            for user in range(60):
                hdr = ({"cookie": f"a=b; session=u{user}"} if "Cookie" in policy
                       else {"x-user": f"u{user}"})
                got = {cl.get(headers=hdr)[1]["x-backend"] for _ in range(5)}
                check(len(got) == 1, (policy, user, got))
                owners[user] = got.pop()
            spread = set(owners.values())
            if "SourceIp" in policy:
                check(len(spread) == 1, (policy, spread))
            else:
                check(len(spread) == 3, (policy, owners))
        finally:
            w.stop()
            for b in bs:
                b.stop()


def test_outlier_ejection_and_return():
    outlier = """    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
      baseEjectionTime: 1s
      maxEjectionPercent: 50
"""
    w, bs = lb_setup("{simple: ROUND_ROBIN}", n=3, outlier=outlier)
    try:
        bad = bs[0]
        orig = bad._answer

        def failing(c, f, method, target, headers, hmap, body, orig=orig):
            if bad.failing:
                bad._send(c, 503, b"bad\n")
                return True
            return orig(c, f, method, target, headers, hmap, body)
        bad.failing = True
        bad._answer = failing
        cl = Client(w.port)
        for _ in range(30):
            cl.get()
        before = bad.requests
        statuses = [cl.get()[0] for _ in range(60)]
        # with 2 workers each ejects after its own 3 failures at most
        check(bad.requests - before <= 2, f"ejected endpoint still got {bad.requests - before}")
        check(statuses.count(200) >= 58, statuses)
        bad.failing = False
        time.sleep(1.3)
        got = shares(w.port, 300, threads=2)
        check(got.get("e0", 0) >= 40, f"endpoint did not return: {got}")
        log = w.logs()
        check("eject" in log, log[-1500:])
    finally:
        w.stop()
        for b in bs:
            b.stop()


# ---------------------------------------------------------------- Gateway API

def test_httproute_gamma():
    a, b, m = Backend("a"), Backend("b"), Backend("m")
    route = """apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: svc-b}
spec:
  parentRefs:
    - {group: "", kind: Service, name: service-b}
  rules:
    - matches:
        - path: {type: PathPrefix, value: /api}
          headers: [{type: Exact, name: x-canary, value: "yes"}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier: {set: [{name: x-route, value: canary}]}
        - type: ResponseHeaderModifier
          responseHeaderModifier: {add: [{name: x-served, value: canary}]}
      backendRefs: [{name: b, port: PORT_B}]
    - matches:
        - path: {type: PathPrefix, value: /api}
      filters:
        - type: URLRewrite
          urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}
        - type: RequestMirror
          requestMirror: {backendRef: {name: m, port: PORT_M}}
      timeouts: {request: 300ms}
      backendRefs:
        - {name: a, port: PORT_A, weight: 3}
        - {name: b, port: PORT_B, weight: 1}
    - matches:
        - path: {type: Exact, value: /old}
      filters:
        - type: RequestRedirect
          requestRedirect: {hostname: new.example, statusCode: 301}
""".replace("PORT_A", str(a.port)).replace("PORT_B", str(b.port)).replace("PORT_M", str(m.port))
    # backends named a, b and m with a port: DNS-free IP upstreams declared
    w = start({"a": [a.address], "b": [b.address], "m": [m.address]}, {"route.yaml": route})
    try:
        cl = Client(w.port)
        st, h, body = cl.get("/api/x", headers={"x-canary": "yes"})
        check(st == 200 and h["x-backend"] == "b" and h.get("x-served") == "canary", h)
        check(b'"x-route", "canary"' in body, body)
        counts = shares(w.port, 2000, path="/api/items")
        check_share(counts, "a", 75, 2000, bound=4)
        st, h, body = cl.get("/api/items")
        check(b'"path": "/items"' in body, body)
        st, h, _ = cl.get("/apix")     # PathPrefix matches whole segments
        check(st == 404, st)
        st, h, _ = cl.get("/api/slow/1000")
        check(st == 504, st)
        st, h, _ = cl.get("/old")
        check(st == 301 and h["location"].startswith("http://new.example/old"), (st, h))
        time.sleep(0.3)
        check(any(s[1] == "/items" and s[2] == "service-b-shadow" for s in m.seen), m.seen[:3])
    finally:
        w.stop()
        for x in (a, b, m):
            x.stop()


# ---------------------------------------------------------------- errors

def test_unsupported_fields_are_positioned_errors():
    cases = {
        "cors.yaml": ("""apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [service-b]
  http:
    - corsPolicy: {allowOrigins: [{exact: "*"}]}
      route: [{destination: {host: a}}]
""", "cors.yaml:7:7", "corsPolicy"),
        "gw.yaml": ("""apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [service-b]
  gateways: [istio-system/ingress]
  http:
    - route: [{destination: {host: a}}]
""", "gw.yaml:6:", "gateways"),
        "labels.yaml": ("""apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: {name: x}
spec:
  hosts: [service-b]
  http:
    - match: [{sourceLabels: {app: x}}]
      route: [{destination: {host: a}}]
""", "labels.yaml:7:", "sourceLabels"),
        "typo.yaml": ("""apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: x}
spec:
  parentRefs: [{kind: Service, name: service-b}]
  rules:
    - backendRefz: [{name: a, port: 80}]
""", "typo.yaml:7:7", "backendRefz"),
    }
    for fname, (text, where, field) in cases.items():
        port, admin = free_port(), free_port()
        rc, out, _ = weft_check({"weft.yaml": base_config(port, admin, {"a": ["127.0.0.1:1"]}),
                                 fname: text})
        check(rc != 0, f"{fname} accepted:\n{out}")
        line = [ln for ln in out.splitlines() if where in ln]
        check(line and field in line[0], f"{fname}: want {where} naming {field}:\n{out}")
    # control-plane-only fields say why
    rc, out, _ = weft_check({"weft.yaml": base_config(free_port(), free_port(), {"a": ["127.0.0.1:1"]}),
                             "gw.yaml": cases["gw.yaml"][0]})
    check("gateway" in out.lower() and "sidecar" in out.lower(), out)


def test_bad_route_file_keeps_old_config_live():
    v1, v2 = Backend("v1"), Backend("v2")
    w = start({"service-b-v1": [v1.address], "service-b-v2": [v2.address]},
              {"vs.yaml": mission_vs(100, 0)})
    try:
        cl = Client(w.port)
        check(cl.get()[1]["x-backend"] == "v1")
        with open(os.path.join(w.dir, "vs.yaml"), "w") as fh:
            fh.write(MISSION_VS.replace("hosts:", "hostz:"))
        time.sleep(0.6)
        st, _, body = admin_get(w.admin_port, "/config")
        check(b"vs.yaml:" in body, body[:500])
        for _ in range(10):
            check(cl.get()[1]["x-backend"] == "v1")
        with open(os.path.join(w.dir, "vs.yaml"), "w") as fh:
            fh.write(mission_vs(0, 100))
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and cl.get()[1]["x-backend"] != "v2":
            time.sleep(0.05)
        check(cl.get()[1]["x-backend"] == "v2", "the fixed file did not take")
    finally:
        w.stop()
        v1.stop()
        v2.stop()


# ---------------------------------------------------------------- weft's own format

WEFT_ROUTES = """router:
  virtual_hosts:
    - name: service-b
      domains: [service-b]
      routes:
        - name: cache-gets
          match: {path: {prefix: /foo}, method: GET}
          upstream: cache
        - name: en-gb
          match:
            headers: [{name: accept-language, exact: en-GB}]
          upstream: service-b-v2
        - name: budget
          match: {path: {prefix: /status/}}
          upstream: origin
          retries: {attempts: 3, retry_on: [5xx], budget: {ratio: 0.2, min_per_second: 1}}
        - name: per-try
          match: {path: {prefix: /pertry}}
          upstream: halfdead
          retries: {attempts: 2, per_try_timeout: 200ms, retry_on: [reset]}
        - name: split
          split:
            - {upstream: service-b-v1, weight: 90}
            - {upstream: service-b-v2, weight: 10}
"""


def test_weft_format_mission_and_budget():
    v1, v2, cache, origin, hole = (Backend("v1"), Backend("v2"), Backend("cache"),
                                   Backend("origin"), Blackhole())
    w = start({"service-b-v1": [v1.address], "service-b-v2": [v2.address],
               "cache": [cache.address], "origin": [origin.address],
               "halfdead": [f"127.0.0.1:{hole.port}", origin.address]},
              {"routes.yaml": WEFT_ROUTES})
    try:
        cl = Client(w.port)
        check(cl.get("/foo")[1]["x-backend"] == "cache")
        check(cl.get("/foo", method="POST", body=b"x")[1]["x-backend"] != "cache")
        check(cl.get("/x", headers={"accept-language": "en-GB"})[1]["x-backend"] == "v2")
        n = 10000
        counts = shares(w.port, n, path="/x")
        check_share(counts, "v1", 90, n)
        check_share(counts, "v2", 10, n)

        # a per-try timeout moves the request off the endpoint that never answers
        for _ in range(6):
            t0 = time.monotonic()
            st, h, _ = cl.get("/pertry/echo")
            check(st == 200 and h["x-backend"] == "origin", (st, h))
            check(time.monotonic() - t0 < 0.8, "per-try timeout did not move on")

        # the upstream always fails: retries stop at the budget, not at attempts
        before = origin.requests
        requests = 300
        for _ in range(requests):
            check(cl.get("/status/503")[0] == 503)
        hits = origin.requests - before
        print(f"# retry budget: {hits} upstream tries for {requests} always-failing requests "
              f"with 3 retries allowed each", flush=True)
        # 20% of the requests plus a floor of 1/s over the 10 s window; without
        # the budget this would be 4 x 300
        check(hits <= requests * 1.2 + 12, f"{hits} upstream tries for {requests} requests")
        check(hits > requests, f"no retries at all: {hits}")
        m = parse_metrics(admin_get(w.admin_port, "/metrics")[2].decode())
        check(m.get('weft_upstream_errors_total{reason="retry_budget_exhausted"}', 0) > 0, m)
    finally:
        w.stop()
        for x in (v1, v2, cache, origin, hole):
            x.stop()


# ---------------------------------------------------------------- DNS destinations

DNS_SERVER = r'''
import socket, struct, sys
names = dict(a.split("=") for a in sys.argv[1:])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 53))
while True:
    data, peer = s.recvfrom(512)
    qid, flags, qd = struct.unpack("!HHH", data[:6])
    i, labels = 12, []
    while data[i]:
        labels.append(data[i + 1:i + 1 + data[i]].decode())
        i += data[i] + 1
    qtype = struct.unpack("!H", data[i + 1:i + 3])[0]
    question = data[12:i + 5]
    name = ".".join(labels).lower()
    ip = names.get(name)
    if ip and qtype == 1:
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(ip)
        s.sendto(struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0) + question + ans, peer)
    else:
        rcode = 0 if ip else 3
        s.sendto(struct.pack("!HHHHHH", qid, 0x8180 | rcode, 1, 0, 0, 0) + question, peer)
'''


def test_dns_destination_with_search_domains():
    """No upstream declared: the destination host resolves through the pod's
    resolver and its search domains, on the port the request was sent to."""
    if os.geteuid() != 0 or subprocess.run(["ip", "netns", "list"],
                                           capture_output=True).returncode != 0:
        raise SkipTest("needs root and ip netns")
    ns = f"weftdns{os.getpid()}"
    etc = f"/etc/netns/{ns}"
    procs = []
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "addr", "add", "127.0.0.2/8",
                        "dev", "lo"], check=False)
        os.makedirs(etc, exist_ok=True)
        with open(f"{etc}/resolv.conf", "w") as fh:
            fh.write("nameserver 127.0.0.1\nsearch default.svc.cluster.local "
                     "svc.cluster.local cluster.local\noptions ndots:5 timeout:1 attempts:1\n")
        with open(f"{etc}/hosts", "w") as fh:
            fh.write("127.0.0.1 localhost\n")
        dns = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", DNS_SERVER,
                                "service-b-v1.default.svc.cluster.local=127.0.0.2",
                                "service-b-v2.default.svc.cluster.local=127.0.0.2"])
        procs.append(dns)
        port = free_port()
        backend = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-c",
             "import http.server, sys\n"
             "class H(http.server.BaseHTTPRequestHandler):\n"
             "    def do_GET(self):\n"
             "        b = ('dns-backend ' + self.headers['host']).encode()\n"
             "        self.send_response(200); self.send_header('x-backend', 'dns')\n"
             "        self.send_header('content-length', str(len(b))); self.end_headers()\n"
             "        self.wfile.write(b)\n"
             "    def log_message(self, *a): pass\n"
             f"http.server.HTTPServer(('127.0.0.2', {port}), H).serve_forever()\n"])
        procs.append(backend)
        admin = free_port()
        cfg = tempfile.mkdtemp(prefix="weft-dns-")
        with open(os.path.join(cfg, "weft.yaml"), "w") as fh:
            fh.write(f"admin: {{address: 127.0.0.1:{admin}}}\nplugin_dirs: [{PLUGINDIR}]\n"
                     f"listeners:\n  - name: out\n    address: 127.0.0.1:{port}\n"
                     "    plugins: [router]\n")
        with open(os.path.join(cfg, "vs.yaml"), "w") as fh:
            fh.write(mission_vs(50, 50))
        weft = subprocess.Popen(["ip", "netns", "exec", ns, WEFT, "--config", cfg,
                                 "--log-level", "debug"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        procs.append(weft)
        out = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            # the request arrives for the listener's port; no port in Host
            p = subprocess.run(["ip", "netns", "exec", ns, "curl", "-s", "-m", "2",
                                "-H", "Host: service-b", f"http://127.0.0.1:{port}/x"],
                               capture_output=True)
            out = p.stdout
            if out.startswith(b"dns-backend"):
                break
            time.sleep(0.2)
        check(out == b"dns-backend service-b", out)
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["rm", "-rf", etc])


def main():
    tap = Tap()
    for t in (test_mission_split_90_10_as_written, test_mission_split_istio_shape_999_1,
              test_mission_accept_language_en_gb_to_v2, test_mission_get_foo_to_cache,
              test_match_kinds, test_actions, test_rule_timeout, test_retry_on_503_and_reset,
              test_retry_skips_large_body, test_fault_abort_and_delay_percentages,
              test_mirror_never_affects_main, test_lb_round_robin_and_random,
              test_lb_least_request_avoids_slow_endpoint, test_lb_consistent_hash_ring_and_maglev,
              test_outlier_ejection_and_return, test_httproute_gamma,
              test_unsupported_fields_are_positioned_errors,
              test_bad_route_file_keeps_old_config_live, test_weft_format_mission_and_budget,
              test_dns_destination_with_search_domains):
        if len(sys.argv) > 1 and t.__name__ not in sys.argv[1:]:
            continue
        tap.run(t)
    tap.done()


if __name__ == "__main__":
    main()
