# SPDX-License-Identifier: LGPL-2.1-or-later
"""The mission's sentence as one config: "service A can talk to service B,
only on path /foo, at a rate of 10 qps", enforced by B's sidecar.

Caller A is 127.0.0.2 and caller C is 127.0.0.3 (until mTLS gives callers
SPIFFE identities). The ACL comes as Istio's own AuthorizationPolicy file,
the rate as weft's ratelimit settings; docs/policy-example.md holds the
same config."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from weftlib import (PLUGINDIR, Backend, Caller, Tap, Weft, blast, check,  # noqa: E402
                     free_port)

RATE, BURST = 10, 10

AUTHZ = """\
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: a-to-b
  namespace: default
spec:
  selector:
    matchLabels:
      app: service-b
  action: ALLOW
  rules:
  - from:
    - source:
        ipBlocks: ["127.0.0.2"]
    to:
    - operation:
        methods: ["GET"]
        paths: ["/foo"]
"""


def sidecar_b(port, admin, backend):
    return f"""\
node:
  service: service-b
  namespace: default
  labels: {{app: service-b}}
admin:
  address: 127.0.0.1:{admin}
plugin_dirs: [{PLUGINDIR}]
workers: 2
listeners:
  - name: inbound
    address: 127.0.0.1:{port}
    direction: inbound
    upstream: service-b-app
    plugins: [ratelimit, acl]
upstreams:
  - name: service-b-app
    endpoints: [{backend.address}]
ratelimit:
  limits:
    - name: a-to-b-foo
      rate: {RATE}/s
      burst: {BURST}
      match:
        from: [{{source: {{ipBlocks: [127.0.0.2/32]}}}}]
        to: [{{operation: {{methods: [GET], paths: [/foo]}}}}]
"""


def start():
    backend = Backend("service-b")
    port, admin = free_port(), free_port()
    w = Weft(sidecar_b(port, admin, backend))
    with open(os.path.join(w.dir, "authz.yaml"), "w") as fh:
        fh.write(AUTHZ)
    w.start()
    w.port, w.backend = port, backend
    return w


def stop(w):
    w.stop()
    w.backend.stop()


def test_a_gets_foo_at_ten_per_second():
    """A sends GET /foo as fast as it can for 5 s: the server counts rate x
    duration + burst, within 2"""
    w = start()
    try:
        counts, t0, t1 = blast(w.port, 5.0, path="/foo", src="127.0.0.2", threads=4)
        admitted = w.backend.requests
        want = BURST + RATE * (t1 - t0)
        check(abs(admitted - want) <= 2,
              f"the server counted {admitted}, want {want:.1f} +- 2 over {t1 - t0:.2f} s")
        check(counts.get(200, 0) == admitted, f"{counts} vs {admitted}")
        check(set(counts) == {200, 429}, f"statuses {counts}")
        check(all(p.split("?")[0] == "/foo" for _, p, _ in w.backend.seen), "only /foo arrived")
        print(f"# A on GET /foo for {t1 - t0:.2f} s: {counts.get(200, 0)} admitted, "
              f"{counts.get(429, 0)} refused with 429; server counted {admitted}, "
              f"want {want:.1f}", flush=True)
    finally:
        stop(w)


def test_everything_else_from_a_is_403():
    w = start()
    try:
        a = Caller(w.port, "127.0.0.2")
        for method, path in (("GET", "/bar"), ("POST", "/foo"), ("GET", "/foo/x"),
                             ("DELETE", "/foo"), ("GET", "/")):
            status, h, body = a.get(path, method=method)
            check(status == 403, f"A {method} {path}: {status}")
            check(h.get("x-weft-error") == "rbac-denied", f"A {method} {path}: {h}")
        check(a.get("/foo")[0] == 200, "A's GET /foo on the same connection still passes")
        a.close()
        check([p for _, p, _ in w.backend.seen] == ["/foo"], f"backend saw {w.backend.seen}")
        check("denied GET /bar from 127.0.0.2 principal -: policy 'default/a-to-b'" in w.logs(),
              f"the denial is logged with the policy:\n{w.logs()[-2000:]}")
    finally:
        stop(w)


def test_any_request_from_c_is_403():
    w = start()
    try:
        c = Caller(w.port, "127.0.0.3")
        for method, path in (("GET", "/foo"), ("GET", "/bar"), ("POST", "/foo")):
            status, h, _ = c.get(path, method=method)
            check(status == 403 and h.get("x-weft-error") == "rbac-denied",
                  f"C {method} {path}: {status} {h}")
        c.close()
        # C is refused by the ACL, not counted by A's limit: A still has its burst
        a = Caller(w.port, "127.0.0.2")
        check([a.get("/foo")[0] for _ in range(BURST)] == [200] * BURST, "A's burst intact")
        a.close()
        check(w.backend.requests == BURST, f"backend saw {w.backend.requests}")
        m = w.metrics()
        # no ALLOW policy matched C: counted as not allowed, not as a DENY match
        denied = sum(v for k, v in m.items()
                     if k.startswith(("weft_acl_denied_total", "weft_acl_not_allowed_total"))
                     and 'dry_run="false"' in k)
        check(denied == 3, f"3 denials counted, got {denied}: {m}")
    finally:
        stop(w)


def test_a_recovers_after_a_pause():
    w = start()
    try:
        a = Caller(w.port, "127.0.0.2")
        codes = [a.get("/foo")[0] for _ in range(BURST + 5)]
        check(codes == [200] * BURST + [429] * 5, f"burst then 429: {codes}")
        time.sleep(0.35)
        check(a.get("/foo")[0] == 200, "a token every 100 ms")
        a.close()
    finally:
        stop(w)


def main():
    tap = Tap()
    for t in (test_a_gets_foo_at_ten_per_second,
              test_everything_else_from_a_is_403,
              test_any_request_from_c_is_403,
              test_a_recovers_after_a_pause):
        tap.run(t)
    tap.done()


if __name__ == "__main__":
    main()
