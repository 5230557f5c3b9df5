# SPDX-License-Identifier: LGPL-2.1-or-later
"""The acl plugin end to end: real weft processes, a real backend, real
clients bound to 127.0.0.2 (service A) and 127.0.0.3 (service C). The
mission first (B admits A only on GET /foo), then DENY-before-ALLOW, AUDIT,
dry run, Istio documents with selectors, and a bad policy on reload."""

import http.client
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "tests", "e2e"))

from weftlib import (PLUGINDIR, WEFT, Backend, Caller, Tap, Weft, admin_get, check,  # noqa: E402
                     free_port, wait_for)

A, C = "127.0.0.2", "127.0.0.3"


# ---------------------------------------------------------------- helpers

def base_config(backend, listeners, extra=""):
    """@listeners: [(name, port, raw listener lines)]"""
    admin = free_port()
    out = [f"admin:\n  address: 127.0.0.1:{admin}\n",
           f"plugin_dirs: [{PLUGINDIR}]\n",
           "workers: 2\n",
           "listeners:\n"]
    for name, port, raw in listeners:
        out.append(f"  - name: {name}\n    address: 127.0.0.1:{port}\n"
                   f"    upstream: app\n    plugins: [acl]\n{raw}")
    out.append(f"upstreams:\n  - name: app\n    endpoints: [{backend.address}]\n")
    out.append(extra)
    return "".join(out)


def start(backend, extra="", docs=None, listeners=None):
    """weft with one inbound acl listener (or @listeners) and @docs beside it"""
    port = free_port()
    listeners = listeners or [("inbound", port, "")]
    w = Weft(base_config(backend, listeners, extra))
    for name, text in (docs or {}).items():
        with open(os.path.join(w.dir, name), "w") as fh:
            fh.write(text)
    w.start()
    w.port = listeners[0][1]
    return w


class Client:
    """One keep-alive connection from @source."""

    def __init__(self, port, source):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                            source_address=(source, 0))

    def send(self, method="GET", path="/foo", body=None, headers=None):
        h = {"Host": "b"}
        h.update(headers or {})
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data, r.will_close

    def close(self):
        self.c.close()


def once(port, source, method="GET", path="/foo", headers=None):
    cl = Client(port, source)
    try:
        return cl.send(method, path, headers=headers)[:3]
    finally:
        cl.close()


def seen_paths(backend):
    with backend.lock:
        return [target for _, target, _ in backend.seen]


def metric(w, name, **labels):
    """the value of the series of @name with exactly @labels, or 0"""
    text = admin_get(w.admin_port, "/metrics")[2].decode()
    want = sorted(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        key, value = line.rsplit(" ", 1)
        got = key[len(name) + 1:-1].split(",") if "{" in key else []
        if sorted(got) == want:
            return float(value)
    return 0.0


def check_denied(st, h, body):
    check(st == 403, f"status {st}, want 403")
    check(h.get("x-weft-error") == "rbac-denied", f"x-weft-error: {h.get('x-weft-error')}")
    check(body == b"403 Forbidden: rbac-denied\n", body)


def wait_log(w, text, timeout=5):
    wait_for(lambda: text in w.logs(), timeout, what=f"log line with {text!r}")


MISSION = """acl:
  policies:
    - name: b-admits-a
      action: ALLOW
      rules:
        - name: a-get-foo
          from: [{source: {ipBlocks: [127.0.0.2]}}]
          to: [{operation: {methods: [GET], paths: [/foo]}}]
"""


# ---------------------------------------------------------------- the mission

def test_mission_a_get_foo_only():
    be = Backend("b")
    w = start(be, MISSION)
    try:
        st, _, body = once(w.port, A, "GET", "/foo")
        check(st == 200, f"A GET /foo: {st} {body!r}")
        check(seen_paths(be) == ["/foo"], seen_paths(be))
        check_denied(*once(w.port, A, "POST", "/foo"))
        check_denied(*once(w.port, A, "GET", "/bar"))
        check_denied(*once(w.port, C, "GET", "/foo"))
        check(seen_paths(be) == ["/foo"], f"a denied request reached B: {seen_paths(be)}")
        wait_log(w, "denied GET /foo from 127.0.0.3 principal -: "
                    "policy 'b-admits-a' (ALLOW) has no matching rule")
        check(metric(w, "weft_acl_not_allowed_total", dry_run="false") == 3,
              metric(w, "weft_acl_not_allowed_total", dry_run="false"))
    finally:
        w.stop()
        be.stop()


def test_keep_alive_after_403():
    be = Backend("b")
    w = start(be, MISSION)
    try:
        cl = Client(w.port, A)
        st, h, body, will_close = cl.send("DELETE", "/foo")
        check_denied(st, h, body)
        check(not will_close, f"the 403 closed the connection: {h}")
        sock = cl.c.sock
        st, _, _, _ = cl.send("GET", "/foo")
        check(st == 200, st)
        check(cl.c.sock is sock, "the client had to reconnect after the 403")
        st, h, body, _ = cl.send("GET", "/nope")
        check_denied(st, h, body)
        check(cl.c.sock is sock, "the client had to reconnect after the second 403")
        cl.close()
        check(be.requests == 1, be.requests)
    finally:
        w.stop()
        be.stop()


# ---------------------------------------------------------------- evaluation order

ALLOW_ALL_DENY_C = """acl:
  policies:
    - name: allow-everyone
      rules: [{}]
    - name: deny-c
      action: DENY
      rules:
        - name: no-c
          from: [{source: {ipBlocks: [127.0.0.3/32]}}]
    - name: audit-writes
      action: AUDIT
      rules:
        - name: writes
          to: [{operation: {methods: [POST, PUT]}}]
"""


def test_deny_first_and_log_names_policy_and_rule():
    be = Backend("b")
    w = start(be, ALLOW_ALL_DENY_C)
    try:
        check(once(w.port, A, "GET", "/foo")[0] == 200)
        check_denied(*once(w.port, C, "GET", "/foo"))
        check(seen_paths(be) == ["/foo"], seen_paths(be))
        wait_log(w, "denied GET /foo from 127.0.0.3 principal -: policy 'deny-c' rule 'no-c'")
        check(metric(w, "weft_acl_denied_total", policy="deny-c", dry_run="false") == 1)
        check(metric(w, "weft_acl_denied_total", policy="deny-c", dry_run="true") == 0)
    finally:
        w.stop()
        be.stop()


def test_audit_logs_but_allows():
    be = Backend("b")
    w = start(be, ALLOW_ALL_DENY_C)
    try:
        st, _, _ = once(w.port, A, "POST", "/orders?id=7")
        check(st == 200, st)
        check(seen_paths(be) == ["/orders?id=7"], seen_paths(be))
        wait_log(w, "audit POST /orders from 127.0.0.2 principal -: "
                    "policy 'audit-writes' rule 'writes'")
        check("id=7" not in w.logs(), "the query string went to the log")
        # audited and denied: the audit is counted, the DENY still decides
        check_denied(*once(w.port, C, "PUT", "/x"))
        check(metric(w, "weft_acl_audit_total", policy="audit-writes") == 2)
    finally:
        w.stop()
        be.stop()


# ---------------------------------------------------------------- dry run

def test_dry_run_global_and_listener():
    be = Backend("b")
    strict, lenient = free_port(), free_port()
    listeners = [("strict", strict, "    acl: {dry_run: false}\n"),
                 ("lenient", lenient, "")]
    w = start(be, MISSION.replace("acl:\n", "acl:\n  dry_run: true\n", 1), listeners=listeners)
    try:
        st, _, _ = once(lenient, C, "GET", "/foo")
        check(st == 200, f"global dry run denied: {st}")
        check_denied(*once(strict, C, "GET", "/foo"))
        check(seen_paths(be) == ["/foo"], seen_paths(be))
        wait_log(w, "would deny (dry run) GET /foo from 127.0.0.3")
        check(metric(w, "weft_acl_not_allowed_total", dry_run="true") == 1)
        check(metric(w, "weft_acl_not_allowed_total", dry_run="false") == 1)
    finally:
        w.stop()
        be.stop()


DRY_RUN_DENY = """apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: deny-c
  namespace: ns-b
  annotations:
    "istio.io/dry-run": "true"
spec:
  action: DENY
  rules:
  - from:
    - source:
        ipBlocks: ["127.0.0.3"]
"""


def test_dry_run_annotation():
    be = Backend("b")
    w = start(be, "node: {namespace: ns-b}\n", {"deny-c.yaml": DRY_RUN_DENY})
    try:
        st, _, _ = once(w.port, C, "GET", "/foo")
        check(st == 200, f"a dry-run policy denied: {st}")
        check(seen_paths(be) == ["/foo"], seen_paths(be))
        wait_log(w, "would deny (dry run) GET /foo from 127.0.0.3 principal -: "
                    "policy 'ns-b/deny-c' rule 'rules[0]'")
        check(metric(w, "weft_acl_denied_total", policy="ns-b/deny-c", dry_run="true") == 1)
        check(metric(w, "weft_acl_denied_total", policy="ns-b/deny-c", dry_run="false") == 0)
    finally:
        w.stop()
        be.stop()


# ---------------------------------------------------------------- Istio documents

ISTIO_ALLOW = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: b-admits-a
  namespace: ns-b
spec:
  selector:
    matchLabels:
      app: b
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

ISTIO_OTHER_APP = """apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-a-on-c
  namespace: ns-b
spec:
  selector:
    matchLabels:
      app: c
  action: DENY
  rules:
  - from:
    - source:
        ipBlocks: ["127.0.0.2"]
"""

NODE_B = "node:\n  namespace: ns-b\n  labels: {app: b}\n"


def test_istio_documents_and_selector():
    be = Backend("b")
    w = start(be, NODE_B, {"b-admits-a.yaml": ISTIO_ALLOW, "other-app.yaml": ISTIO_OTHER_APP})
    try:
        st, _, _ = once(w.port, A, "GET", "/foo")
        check(st == 200, f"the app=c DENY applied to app=b: {st}")
        check_denied(*once(w.port, A, "GET", "/bar"))
        check_denied(*once(w.port, C, "GET", "/foo"))
        check(seen_paths(be) == ["/foo"], seen_paths(be))
        wait_log(w, "policy 'ns-b/deny-a-on-c' skipped: selector app=c does not match")
        wait_log(w, "policy 'ns-b/b-admits-a' (ALLOW) has no matching rule")
    finally:
        w.stop()
        be.stop()


def test_bad_policy_keeps_old_policy_live():
    be = Backend("b")
    w = start(be, NODE_B, {"policy.yaml": ISTIO_ALLOW})
    path = os.path.join(w.dir, "policy.yaml")
    try:
        check(once(w.port, A, "GET", "/foo")[0] == 200)
        check_denied(*once(w.port, C, "GET", "/foo"))
        with open(path, "w") as fh:
            fh.write(ISTIO_ALLOW.replace('ipBlocks: ["127.0.0.2"]',
                                         'requestPrincipals: ["*"]'))

        def refused():
            body = admin_get(w.admin_port, "/config")[2].decode()
            return "requestPrincipals" in body and body
        body = wait_for(refused, 5, what="the refused reload on /config")
        check("policy.yaml:14:9:" in body, body[:2000])
        wait_log(w, "policy.yaml:14:9: source field 'requestPrincipals' is not supported")
        # the old policy is still the live one
        check(once(w.port, A, "GET", "/foo")[0] == 200)
        check_denied(*once(w.port, C, "GET", "/foo"))
        # a fixed file takes: C is now the one admitted
        with open(path, "w") as fh:
            fh.write(ISTIO_ALLOW.replace("127.0.0.2", "127.0.0.3"))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and once(w.port, C, "GET", "/foo")[0] != 200:
            time.sleep(0.05)
        check(once(w.port, C, "GET", "/foo")[0] == 200, "the fixed policy did not take")
        check_denied(*once(w.port, A, "GET", "/foo"))
    finally:
        w.stop()
        be.stop()


def test_custom_is_refused_by_check():
    be = Backend("b")
    port = free_port()
    w = Weft(base_config(be, [("inbound", port, "")], NODE_B))
    with open(os.path.join(w.dir, "custom.yaml"), "w") as fh:
        fh.write(ISTIO_ALLOW.replace("action: ALLOW", "action: CUSTOM\n  provider: {name: ext}"))
    try:
        p = subprocess.run([WEFT, "--check", "--config", w.dir], capture_output=True, text=True)
        out = p.stdout + p.stderr
        check(p.returncode != 0, out)
        check("custom.yaml:10:11: policy 'ns-b/b-admits-a': action CUSTOM is not supported" in out,
              out)
    finally:
        be.stop()


def test_denial_flood_is_not_a_log_flood():
    """500 denials in a burst: a few lines a second per worker, then a count"""
    be = Backend("b")
    w = start(be, ALLOW_ALL_DENY_C)
    try:
        c = Caller(w.port, C)
        for _ in range(500):
            check(c.get("/foo")[0] == 403)
        c.close()
        lines = w.logs().count("denied GET /foo from 127.0.0.3")
        check(1 <= lines <= 20 * 2 * 2, f"{lines} denial lines for 500 denials")
        time.sleep(1.1)
        # the next denial on a thread reports what it left out
        wait_for(lambda: once(w.port, C, "GET", "/foo")[0] == 403 and
                 "decision lines suppressed" in w.logs(), 5, step=0.1, what="the summary")
        check(metric(w, "weft_acl_denied_total", policy="deny-c", dry_run="false") >= 500,
              "every denial is counted even when not logged")
    finally:
        w.stop()
        be.stop()


def test_dot_segments_and_encodings_cannot_dodge_a_deny():
    """the rules see the normalized path, so /./admin or /%61dmin is /admin"""
    be = Backend("b")
    w = start(be, "acl:\n  policies:\n    - name: no-admin\n      action: DENY\n"
                  "      rules:\n        - to: [{operation: {paths: ['/admin*']}}]\n")
    try:
        for path in ("/admin", "/./admin", "/x/../admin", "//admin", "/%61dmin",
                     "/%2e%2e/admin/x", "/public/../admin?q=1"):
            check_denied(*once(w.port, A, "GET", path))
        check(once(w.port, A, "GET", "/public")[0] == 200, "other paths pass")
        check(seen_paths(be) == ["/public"], seen_paths(be))
    finally:
        w.stop()
        be.stop()


def test_ports_are_the_connections_not_the_host_headers():
    """a port in Host is the client's to choose; rules match the port it reached"""
    be = Backend("b")
    port = free_port()
    w = start(be, "acl:\n  policies:\n    - name: no-port\n      action: DENY\n"
                  f"      rules:\n        - to: [{{operation: {{ports: ['{port}']}}}}]\n",
              listeners=[("inbound", port, "")])
    try:
        for host in ("b", "b:1", f"b:{port}", "b:8080"):
            check_denied(*once(w.port, A, "GET", "/foo", headers={"Host": host}))
        check(seen_paths(be) == [], seen_paths(be))
    finally:
        w.stop()
        be.stop()


def main():
    tap = Tap()
    for t in (test_mission_a_get_foo_only, test_keep_alive_after_403,
              test_deny_first_and_log_names_policy_and_rule, test_audit_logs_but_allows,
              test_dry_run_global_and_listener, test_dry_run_annotation,
              test_istio_documents_and_selector, test_bad_policy_keeps_old_policy_live,
              test_custom_is_refused_by_check, test_denial_flood_is_not_a_log_flood,
              test_dot_segments_and_encodings_cannot_dodge_a_deny,
              test_ports_are_the_connections_not_the_host_headers):
        if len(sys.argv) > 1 and t.__name__ not in sys.argv[1:]:
            continue
        tap.run(t)
    tap.done()


if __name__ == "__main__":
    main()
