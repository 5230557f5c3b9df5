# SPDX-License-Identifier: LGPL-2.1-or-later
"""mTLS end to end (issue 6, sections 1, 2, 4 and 7, and 3's expiry), against
the contract in docs/design/mtls.md ("Interface").

One sidecar "B" (workload spiffe://cluster.local/ns/default/sa/b) in front of
a real backend, with four listeners: inbound (STRICT, with the acl, metrics
and accesslog plugins; the ACL admits only sa/a), permissive (PERMISSIVE),
plain (no tls: key) and plain-explicit (mode DISABLE). Callers are Python's
ssl module with certificates made by the built weftctl, and certtool for the
broken ones. A second sidecar "A" (sa/a) originates mTLS to B's inbound
listener for the outbound cases."""

import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from weftlib import (PLUGINDIR, WEFT, Backend, Caller, SkipTest, Tap, check,  # noqa: E402
                     free_port, request, wait_for)
from mtlslib import (Certs, MtlsConn, MtlsWeft, access_line, check_weft_alive,  # noqa: E402
                     client_context, failures, leaf_der, mtls_get, old_tls_context,
                     plain_attempt, presented_cert, series, spiffe, tls_attempt, tls_yaml,
                     total)
import kubelet_atomic_writer  # noqa: E402

HEADER_TIMEOUT = 1.0
SA_A = "cluster.local/ns/default/sa/a"

CERTS = None
B = None            # the sidecar under test: .w, .backend, .port[listener]
A = None            # the outbound sidecar, started by the first outbound test


class Sidecar:
    pass


def b_config(certs, ports, admin, backend):
    cert, key = certs.leaf("b-short")
    return f"""\
node: {{workload: b-v1, namespace: default, service: b, labels: {{app: b}}}}
admin:
  address: 127.0.0.1:{admin}
plugin_dirs: [{PLUGINDIR}]
workers: 2
timeouts: {{request_header: {int(HEADER_TIMEOUT * 1000)}ms}}
{tls_yaml(cert, key, certs.ca, expiry_warning="48h")}\
listeners:
  - name: inbound
    address: 127.0.0.1:{ports['inbound']}
    upstream: app
    tls: {{mode: STRICT}}
    plugins: [acl, metrics, accesslog]
  - name: permissive
    address: 127.0.0.1:{ports['permissive']}
    upstream: app
    tls: {{mode: PERMISSIVE}}
    plugins: [metrics, accesslog]
  - name: plain
    address: 127.0.0.1:{ports['plain']}
    upstream: app
    plugins: [metrics, accesslog]
  - name: plain-explicit
    address: 127.0.0.1:{ports['plain-explicit']}
    upstream: app
    tls: {{mode: DISABLE}}
    plugins: [accesslog]
upstreams:
  - name: app
    endpoints: [{backend.address}]
accesslog:
  path: "-"
acl:
  policies:
    - name: b-admits-a
      action: ALLOW
      rules:
        - from: [{{source: {{principals: ["{SA_A}"]}}}}]
"""


def start_b():
    s = Sidecar()
    s.backend = Backend("app")
    s.port = {name: free_port() for name in ("inbound", "permissive", "plain", "plain-explicit")}
    admin = free_port()
    s.w = MtlsWeft(b_config(CERTS, s.port, admin, s.backend))
    s.w.start()
    return s


def good_ctx():
    return client_context(CERTS, "a")


def backend_saw(path):
    return any(p == path for _, p, _ in B.backend.seen)


def log_lines(w, prefix):
    return [line for line in w.logs().splitlines() if line.startswith(prefix)]


# ---------------------------------------------------------------- STRICT: the good path

def test_strict_good_client_gets_200():
    """cert A over TLS 1.3 and over TLS 1.2: 200, the backend sees the
    request, ALPN says http/1.1, and weft presents B's leaf"""
    port = B.port["inbound"]
    before = total(B.w, "weft_tls_handshakes_total", listener="inbound", role="server")
    c = MtlsConn(port, good_ctx())
    try:
        st, h, body = c.get("/t/strict-good")
        check(st == 200, f"{st} {h} {body[:200]}")
        check(c.sock.version() in ("TLSv1.3", "TLSv1.2"), c.sock.version())
        check(c.sock.selected_alpn_protocol() == "http/1.1",
              f"ALPN {c.sock.selected_alpn_protocol()!r}")
        check(c.sock.getpeercert(binary_form=True) == leaf_der(CERTS.leaf("b-short")[0]),
              "the server presents B's workload certificate")
        # keep-alive: a second request on the same TLS connection
        check(c.get("/t/strict-good-2")[0] == 200 and c.connects == 1, "keep-alive over TLS")
    finally:
        c.close()
    check(backend_saw("/t/strict-good") and backend_saw("/t/strict-good-2"),
          f"backend saw {B.backend.seen[-5:]}")
    ctx12 = good_ctx()
    ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
    c = MtlsConn(port, ctx12)
    try:
        check(c.get("/t/strict-tls12")[0] == 200, "a TLS 1.2 client is served")
        check(c.sock.version() == "TLSv1.2", c.sock.version())
    finally:
        c.close()
    wait_for(lambda: total(B.w, "weft_tls_handshakes_total", listener="inbound",
                           role="server") >= before + 2, what="two server handshakes counted")


def test_acl_allows_a_and_denies_c():
    """the principal from the certificate drives the ACL: A passes, C gets
    403 rbac-denied and never reaches the backend"""
    port = B.port["inbound"]
    st, h, _ = mtls_get(port, good_ctx(), "/t/acl-a")
    check(st == 200, f"A: {st} {h}")
    c = MtlsConn(port, client_context(CERTS, "c"))
    try:
        st, h, body = c.get("/t/acl-c")
        check(st == 403 and h.get("x-weft-error") == "rbac-denied", f"C: {st} {h} {body!r}")
        # a denial keeps the TLS connection open for the next request
        st, h, _ = c.get("/t/acl-c2")
        check(st == 403 and c.connects == 1, f"C again on the same connection: {st} {h}")
    finally:
        c.close()
    check(backend_saw("/t/acl-a"), "A's request reached the backend")
    check(not backend_saw("/t/acl-c") and not backend_saw("/t/acl-c2"),
          "C's requests never reached the backend")
    wait_for(lambda: [ln for ln in B.w.logs().splitlines()
                      if "/t/acl-c" in ln and "principal cluster.local/ns/default/sa/c" in ln],
             what="the acl's denial line naming C's principal")


def test_metrics_show_source_principal():
    """istio_requests_total labels requests with the caller's SPIFFE ID and
    mutual_tls"""
    port = B.port["inbound"]
    want_a = dict(source_principal=spiffe("a"), connection_security_policy="mutual_tls",
                  response_code="200")
    want_c = dict(source_principal=spiffe("c"), connection_security_policy="mutual_tls",
                  response_code="403")
    a0, c0 = total(B.w, "istio_requests_total", **want_a), total(B.w, "istio_requests_total",
                                                                 **want_c)
    check(mtls_get(port, good_ctx(), "/t/metrics-a")[0] == 200)
    check(mtls_get(port, client_context(CERTS, "c"), "/t/metrics-c")[0] == 403)
    wait_for(lambda: total(B.w, "istio_requests_total", **want_a) >= a0 + 1
             and total(B.w, "istio_requests_total", **want_c) >= c0 + 1,
             what=f"istio_requests_total for A (200) and C (403):\n"
                  f"{series(B.w, 'istio_requests_total')}")
    for labels, _ in series(B.w, "istio_requests_total", source_principal=spiffe("a")):
        check(labels.get("destination_principal") in ("unknown", spiffe("b")),
              f"inbound destination_principal {labels}")


def test_accesslog_carries_principal():
    port = B.port["inbound"]
    check(mtls_get(port, good_ctx(), "/t/accesslog-a")[0] == 200)
    line = access_line(B.w, "/t/accesslog-a")
    check(line.get("peer_principal") == spiffe("a"), f"access log line {line}")
    check(line.get("listener") == "inbound" and line.get("status") == 200, line)


# ---------------------------------------------------------------- STRICT: refusals

def refusal(attempt, reason, src):
    """runs @attempt from @src against the STRICT listener and checks what
    issue 6 section 4 asks: refused, one log line naming peer and reason,
    the reason counted exactly once, and a good client served afterwards"""
    w, port = B.w, B.port["inbound"]
    before = failures(w, listener="inbound", role="server", reason=reason)
    before_all = failures(w, listener="inbound")
    t0 = time.monotonic()
    att = attempt(port, src)
    took = time.monotonic() - t0
    check(att.outcome == "refused", f"the connection was not refused: {att}")
    check(took < HEADER_TIMEOUT + 3, f"the refusal took {took:.2f}s")
    want = f"refused TLS from {att.peer} on listener 'inbound': {reason} ("
    wait_for(lambda: [ln for ln in log_lines(w, "warning tls: ") if want in ln], 5,
             what=f"the log line '{want}':\n{w.logs()[-2500:]}")
    wait_for(lambda: failures(w, listener="inbound", role="server", reason=reason) >= before + 1,
             5, what=f"weft_tls_handshake_failures_total{{reason={reason}}} +1:\n"
                     f"{series(w, 'weft_tls_handshake_failures_total')}")
    check_weft_alive(w)
    st, _, _ = mtls_get(port, good_ctx(), f"/t/after-{reason}")
    check(st == 200, f"a good client after the refusal got {st}")
    after = failures(w, listener="inbound", role="server", reason=reason)
    after_all = failures(w, listener="inbound")
    check(after == before + 1, f"{reason} counted {after - before} times")
    check(after_all == before_all + 1,
          f"{after_all - before_all} failures counted in all: "
          f"{series(w, 'weft_tls_handshake_failures_total')}")
    check(len([ln for ln in w.logs().splitlines() if f"refused TLS from {att.peer} " in ln]) == 1,
          "exactly one refusal line for the peer")
    return att


def cert_attempt(leaf):
    ctx = client_context(CERTS, leaf)
    return lambda port, src: tls_attempt(port, ctx, src=src)


def test_refuse_wrong_ca():
    refusal(cert_attempt("wrong-ca"), "unknown_ca", "127.0.0.11")


def test_refuse_expired():
    refusal(cert_attempt("expired"), "expired", "127.0.0.12")


def test_refuse_not_yet_valid():
    refusal(cert_attempt("not-yet-valid"), "not_yet_valid", "127.0.0.13")


def test_refuse_missing_san():
    refusal(cert_attempt("no-san"), "no_spiffe_id", "127.0.0.14")


def test_refuse_other_trust_domain():
    """spiffe://other.example/... chains to our CA but is not of our trust
    domain"""
    refusal(cert_attempt("other-td"), "wrong_spiffe_id", "127.0.0.15")


def test_refuse_no_client_certificate():
    ctx = client_context(CERTS, None)
    refusal(lambda port, src: tls_attempt(port, ctx, src=src), "no_client_certificate",
            "127.0.0.16")


def test_refuse_plaintext_on_strict():
    att = refusal(lambda port, src: plain_attempt(port, src=src), "plaintext_on_strict",
                  "127.0.0.17")
    check(b"HTTP/" not in att.detail.encode(), att)


def test_refuse_tls11():
    ctx = old_tls_context(CERTS)
    refusal(lambda port, src: tls_attempt(port, ctx, src=src), "protocol_version", "127.0.0.18")


def test_tls_looking_garbage_is_not_an_old_client():
    """bytes that only start like a TLS record: GnuTLS calls any bad record
    'unsupported version', but only a real ClientHello below TLS 1.2 is
    protocol_version"""
    refusal(lambda port, src: plain_attempt(port, data=b"\x16garbage, and more garbage than a "
                                                     b"record header", src=src),
            "handshake_error", "127.0.0.22")


def test_refused_client_gets_the_alert():
    """a refused client learns why from a TLS alert, also when (as TLS 1.3
    lets it, and as curl does) it had sent its request before the server
    judged its certificate: closing over unread bytes would send a TCP
    reset that destroys the alert in flight"""
    port = B.port["inbound"]
    for leaf, alert in (("wrong-ca", "ALERT_BAD_CERTIFICATE"),
                        (None, "ALERT_CERTIFICATE_REQUIRED")):
        got = [tls_attempt(port, client_context(CERTS, leaf), src="127.0.0.21")
               for _ in range(5)]
        check(all(a.outcome == "refused" for a in got), got)
        missed = [a for a in got if alert not in a.detail]
        check(not missed, f"{len(missed)} of 5 refused clients ({leaf}) saw no {alert}: "
                          f"{missed[0].detail if missed else ''}")


def closed_at_header_timeout(data, src):
    """sends @data (maybe nothing) to the STRICT port and waits: weft must
    close at timeouts.request_header, count reason timeout once, log it,
    and serve a good client after"""
    w, port = B.w, B.port["inbound"]
    before = failures(w, listener="inbound", role="server", reason="timeout")
    t0 = time.monotonic()
    att = plain_attempt(port, data=data, src=src, timeout=HEADER_TIMEOUT + 4)
    took = time.monotonic() - t0
    check(att.outcome == "refused" and HEADER_TIMEOUT * 0.7 <= took <= HEADER_TIMEOUT + 2.5,
          f"sent {data!r}: {att} after {took:.2f}s; timeouts.request_header is "
          f"{HEADER_TIMEOUT}s, client_idle the default 60s")
    wait_for(lambda: failures(w, listener="inbound", role="server", reason="timeout")
             == before + 1, 5, what="the handshake timeout counted once:\n"
                                    f"{series(w, 'weft_tls_handshake_failures_total')}")
    want = f"refused TLS from {att.peer} on listener 'inbound': timeout"
    wait_for(lambda: want in w.logs(), 5, what=f"the line '{want}'")
    check(mtls_get(port, good_ctx(), f"/t/after-timeout-{src}")[0] == 200)


def test_stalled_client_hello_closed_at_header_timeout():
    """a client that stops inside its ClientHello (slowloris in TLS)"""
    closed_at_header_timeout(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "127.0.0.19")


def test_silent_client_closed_at_header_timeout():
    """a client that connects to the STRICT port and sends nothing: the
    handshake it owes is bounded by request_header too"""
    closed_at_header_timeout(b"", "127.0.0.20")


# ---------------------------------------------------------------- PERMISSIVE and DISABLE

def test_permissive_takes_plaintext_and_mtls():
    port = B.port["permissive"]
    st, _, _ = request(port, path="/t/perm-plain")
    check(st == 200, f"plaintext on PERMISSIVE: {st}")
    c = MtlsConn(port, good_ctx())
    try:
        check(c.get("/t/perm-tls")[0] == 200, "mTLS on PERMISSIVE")
        check(c.get("/t/perm-tls-2")[0] == 200 and c.connects == 1, "keep-alive")
    finally:
        c.close()
    plain = access_line(B.w, "/t/perm-plain")
    tls = access_line(B.w, "/t/perm-tls")
    check(plain["listener"] == "permissive" and plain["peer_principal"] is None, plain)
    check(tls["listener"] == "permissive" and tls["peer_principal"] == spiffe("a"), tls)
    wait_for(lambda: total(B.w, "istio_requests_total", source_principal="unknown",
                           connection_security_policy="none") >= 1,
             what="plaintext counted with source_principal unknown, none")


def test_disable_is_plain_only():
    """the default and an explicit DISABLE: HTTP works, a TLS client gets
    no TLS, nothing is counted as a TLS failure"""
    for name in ("plain", "plain-explicit"):
        port = B.port[name]
        st, _, _ = request(port, path=f"/t/{name}")
        check(st == 200, f"{name}: plaintext {st}")
        check(access_line(B.w, f"/t/{name}")["peer_principal"] is None)
        att = tls_attempt(port, good_ctx())
        check(att.outcome == "refused", f"{name}: a TLS client was {att}")
        check(failures(B.w, listener=name) == 0, f"{name}: TLS failures counted")
        check(request(port, path=f"/t/{name}-after")[0] == 200)


def test_port_level_modes_by_original_destination():
    """one inbound listener takes iptables-redirected traffic for several
    app ports; tls.ports gives each its mode by the port the client meant
    (SO_ORIGINAL_DST), as Istio's portLevelMtls does"""
    listen, admin = free_port(), free_port()
    strict, plain, perm = free_port(), free_port(), free_port()
    rules = [["-p", "tcp", "-d", "127.0.0.1", "--dport", str(p), "-j", "REDIRECT",
              "--to-ports", str(listen)] for p in (strict, plain, perm)]
    added = []
    try:
        for r in rules:
            if shutil.which("iptables") is None or subprocess.run(
                    ["iptables", "-t", "nat", "-I", "OUTPUT"] + r, capture_output=True).returncode:
                raise SkipTest("iptables cannot redirect here")
            added.append(r)
        cert, key = CERTS.leaf("b")
        backend = Backend("app-ports")
        w = MtlsWeft(f"""\
admin:
  address: 127.0.0.1:{admin}
{tls_yaml(cert, key, CERTS.ca)}\
listeners:
  - name: redirected
    address: 127.0.0.1:{listen}
    upstream: app
    tls:
      mode: STRICT
      ports: {{{plain}: DISABLE, {perm}: PERMISSIVE}}
upstreams:
  - name: app
    endpoints: ["{backend.address}"]
""")
        w.start()
        try:
            check(request(plain, path="/p/plain")[0] == 200, "plaintext to the DISABLE port")
            check(tls_attempt(plain, good_ctx()).outcome == "refused", "TLS to the DISABLE port")
            check(request(perm, path="/p/perm-plain")[0] == 200, "plaintext to the PERMISSIVE port")
            check(mtls_get(perm, good_ctx(), "/p/perm-tls")[0] == 200, "mTLS to the PERMISSIVE port")
            check(plain_attempt(strict).outcome == "refused", "plaintext to the STRICT port")
            check(mtls_get(strict, good_ctx(), "/p/strict")[0] == 200, "mTLS to the STRICT port")
            check(total(w, "weft_tls_handshake_failures_total", reason="plaintext_on_strict") == 1,
                  series(w, "weft_tls_handshake_failures_total"))
        finally:
            w.stop()
            backend.stop()
    finally:
        for r in added:
            subprocess.run(["iptables", "-t", "nat", "-D", "OUTPUT"] + r, capture_output=True)


# ---------------------------------------------------------------- outbound

def start_a():
    global A
    if A is not None:
        return A
    s = Sidecar()
    s.port = {n: free_port() for n in ("out", "out-any", "out-wrong", "out-pp", "out-pt")}
    cert, key = CERTS.leaf("a")
    b_addr = f"127.0.0.1:{B.port['inbound']}"
    s.b_addr = b_addr
    perm_addr = f"127.0.0.1:{B.port['permissive']}"
    admin = free_port()
    s.w = MtlsWeft(f"""\
node: {{workload: a-v1, namespace: default, service: a, labels: {{app: a}}}}
admin:
  address: 127.0.0.1:{admin}
plugin_dirs: [{PLUGINDIR}]
workers: 2
timeouts: {{upstream_idle: 300ms}}
{tls_yaml(cert, key, CERTS.ca)}\
listeners:
  - name: out
    address: 127.0.0.1:{s.port['out']}
    direction: outbound
    upstream: b
    plugins: [metrics, accesslog]
  - name: out-any
    address: 127.0.0.1:{s.port['out-any']}
    direction: outbound
    upstream: b-any
  - name: out-wrong
    address: 127.0.0.1:{s.port['out-wrong']}
    direction: outbound
    upstream: b-wrong
    plugins: [accesslog]
  - name: out-pp
    address: 127.0.0.1:{s.port['out-pp']}
    direction: outbound
    upstream: b-perm-plain
  - name: out-pt
    address: 127.0.0.1:{s.port['out-pt']}
    direction: outbound
    upstream: b-perm-tls
upstreams:
  - name: b
    endpoints: [{b_addr}]
    tls:
      mode: ISTIO_MUTUAL
      spiffe_ids: [{spiffe('b')}]
  - name: b-any
    endpoints: [{b_addr}]
    tls: {{mode: ISTIO_MUTUAL}}
  - name: b-wrong
    endpoints: [{b_addr}]
    tls:
      mode: ISTIO_MUTUAL
      spiffe_ids: [{spiffe('zz')}]
  - name: b-perm-plain
    endpoints: [{perm_addr}]
  - name: b-perm-tls
    endpoints: [{perm_addr}]
    tls: {{mode: ISTIO_MUTUAL}}
accesslog:
  path: "-"
""")
    s.w.start()
    A = s
    return A


def test_outbound_istio_mutual():
    """client -> A (plaintext) -> mTLS -> B (STRICT) -> backend; B sees A's
    identity"""
    a = start_a()
    st, h, body = request(a.port["out"], path="/t/outbound", headers={"Host": "b"})
    check(st == 200, f"{st} {h} {body[:300]!r}")
    check(backend_saw("/t/outbound"), "the backend got it")
    line = access_line(B.w, "/t/outbound")
    check(line["peer_principal"] == spiffe("a") and line["listener"] == "inbound", line)
    st, _, _ = request(a.port["out-any"], path="/t/outbound-any", headers={"Host": "b"})
    check(st == 200, f"spiffe_ids left out admits any ID of the trust domain: {st}")
    check(total(a.w, "weft_tls_handshakes_total", role="client") >= 1,
          f"A counts client handshakes: {series(a.w, 'weft_tls_handshakes_total')}")
    wait_for(lambda: total(B.w, "istio_requests_total", source_principal=spiffe("a"),
                           connection_security_policy="mutual_tls") >= 1,
             what="B's metrics show A")
    # and A, the source reporter, names the server its mTLS check verified
    wait_for(lambda: total(a.w, "istio_requests_total", reporter="source",
                           destination_principal=spiffe("b")) >= 1,
             what=f"A's metrics show B as destination_principal:\n"
                  f"{series(a.w, 'istio_requests_total')}")


def test_mtls_upstreams_pool_by_address():
    """two ISTIO_MUTUAL upstreams with the same TLS settings, at two of B's
    listeners: each request reaches its own upstream, and keep-alive
    requests on one client connection reuse one pooled mTLS connection"""
    cert, key = CERTS.leaf("a")
    admin, one, two = free_port(), free_port(), free_port()
    w = MtlsWeft(f"""\
admin:
  address: 127.0.0.1:{admin}
workers: 1
{tls_yaml(cert, key, CERTS.ca)}\
listeners:
  - {{name: out-one, address: "127.0.0.1:{one}", direction: outbound, upstream: to-inbound}}
  - {{name: out-two, address: "127.0.0.1:{two}", direction: outbound, upstream: to-permissive}}
upstreams:
  - name: to-inbound
    endpoints: ["127.0.0.1:{B.port['inbound']}"]
    tls: {{mode: ISTIO_MUTUAL}}
  - name: to-permissive
    endpoints: ["127.0.0.1:{B.port['permissive']}"]
    tls: {{mode: ISTIO_MUTUAL}}
""")
    w.start()
    try:
        check(request(one, path="/t/pool-one", headers={"Host": "b"})[0] == 200)
        check(request(two, path="/t/pool-two", headers={"Host": "b"})[0] == 200)
        check(access_line(B.w, "/t/pool-one")["listener"] == "inbound",
              access_line(B.w, "/t/pool-one"))
        check(access_line(B.w, "/t/pool-two")["listener"] == "permissive",
              f"the second upstream's request went to {access_line(B.w, '/t/pool-two')}")
        caller = Caller(one)
        before = total(w, "weft_tls_handshakes_total", listener="out-one", role="client")
        for i in range(8):
            check(caller.get(f"/t/pool-ka-{i}", host="b")[0] == 200)
        caller.close()
        opened = total(w, "weft_tls_handshakes_total", listener="out-one", role="client") - before
        check(opened == 0, f"8 keep-alive requests opened {opened} more mTLS connections")
    finally:
        w.stop()


def test_outbound_wrong_spiffe_id_is_502():
    a = start_a()
    before = failures(a.w, role="client", reason="wrong_spiffe_id")
    st, h, _ = request(a.port["out-wrong"], path="/t/outbound-wrong", headers={"Host": "b"})
    check(st == 502 and h.get("x-weft-error") == "upstream_tls_failed", f"{st} {h}")
    check(not backend_saw("/t/outbound-wrong"), "no request byte reached B's backend")
    wait_for(lambda: failures(a.w, role="client", reason="wrong_spiffe_id") >= before + 1,
             what=f"A counts role=client reason=wrong_spiffe_id:\n"
                  f"{series(a.w, 'weft_tls_handshake_failures_total')}")
    want = f"TLS to {a.b_addr} (upstream 'b-wrong') failed: wrong_spiffe_id ("
    lines = wait_for(lambda: [ln for ln in log_lines(a.w, "warning tls: ") if want in ln],
                     what=f"the line '{want}':\n{a.w.logs()[-2000:]}")
    check(spiffe("b") in lines[0] and spiffe("zz") in lines[0], lines[0])
    line = access_line(a.w, "/t/outbound-wrong")
    check("UF" in line["response_flags"].split(","), f"response flag UF: {line}")
    check(line["error_reason"] == "upstream_tls_failed", line)
    check(total(a.w, "weft_upstream_errors_total", reason="upstream_tls_failed") >= 1,
          f"counted as an upstream error: {series(a.w, 'weft_upstream_errors_total')}")
    check(request(a.port["out"], path="/t/outbound-after", headers={"Host": "b"})[0] == 200,
          "the good upstream still works")


def test_outbound_resumption_keeps_identity():
    """A's pooled connection to B closes (upstream_idle 300ms); the next
    request reconnects resuming the TLS session, and B must still know A"""
    a = start_a()
    resumed = total(a.w, "weft_tls_handshakes_total", role="client", resumed="true")
    for i in range(3):
        path = f"/t/outbound-resume-{i}"
        st, h, _ = request(a.port["out"], path=path, headers={"Host": "b"})
        check(st == 200, f"request {i} through A after its connection to B closed: {st} {h}")
        line = access_line(B.w, path)
        check(line["peer_principal"] == spiffe("a"), f"request {i}: B saw {line}")
        wait_for(lambda: total(B.w, "weft_connections_active", listener="inbound") == 0, 5,
                 what="A's idle connection to B closed")
    check(total(a.w, "weft_tls_handshakes_total", role="client", resumed="true") >= resumed + 1,
          f"A resumed: {series(a.w, 'weft_tls_handshakes_total')}")


def test_outbound_plain_and_mtls_to_one_address_never_mix():
    """two upstreams on B's PERMISSIVE port, one plain and one
    ISTIO_MUTUAL: each request arrives the way its upstream says, however
    the pooled connections interleave"""
    a = start_a()
    for i in range(3):
        for kind in ("pp", "pt"):
            path = f"/t/mix-{kind}-{i}"
            st, h, _ = request(a.port[f"out-{kind}"], path=path, headers={"Host": "b"})
            check(st == 200, f"{path}: {st} {h}")
    for i in range(3):
        plain = access_line(B.w, f"/t/mix-pp-{i}")
        tls = access_line(B.w, f"/t/mix-pt-{i}")
        check(plain["listener"] == "permissive" and plain["peer_principal"] is None,
              f"the plain upstream's request {i} arrived as {plain}")
        check(tls["listener"] == "permissive" and tls["peer_principal"] == spiffe("a"),
              f"the mTLS upstream's request {i} arrived as {tls}")


# ---------------------------------------------------------------- certificates

def test_expiry_warning_and_gauge():
    """B's leaf lives 1 day and expiry_warning is 48h: a warning, and the
    gauge between 0 and one day; A's 30-day leaf is not warned about"""
    # the contract's line, "certificate spiffe://... expires in N s (...)"; the
    # certificate's file may stand in parentheses after the ID
    pat = re.compile(r"certificate spiffe://cluster\.local/ns/default/sa/b (?:\(\S+\) )?"
                     r"expires in (-?\d+) s")
    m = wait_for(lambda: pat.search(B.w.logs()), what="the expiry warning")
    line = [ln for ln in B.w.logs().splitlines() if pat.search(ln)][0]
    check(line.startswith("warning "), line)
    check(0 < int(m.group(1)) <= 86400, line)
    got = series(B.w, "weft_tls_certificate_expiry_seconds", spiffe_id=spiffe("b"))
    check(len(got) == 1, f"one gauge for B's leaf: {got}")
    check(0 < got[0][1] <= 86400, f"seconds until expiry {got[0][1]}")
    a = start_a()
    check(not re.search(r"certificate spiffe://\S+/sa/a (?:\(\S+\) )?expires in", a.w.logs()),
          "no warning for a leaf with 30 days left (default: a quarter of its lifetime)")
    got = series(a.w, "weft_tls_certificate_expiry_seconds", spiffe_id=spiffe("a"))
    check(len(got) == 1 and 29 * 86400 < got[0][1] <= 30 * 86400, f"A's gauge {got}")


def test_session_resumption():
    """a second connection resumes the first one's session (tickets) and
    weft counts it as resumed"""
    port = B.port["inbound"]
    before = total(B.w, "weft_tls_handshakes_total", listener="inbound", role="server",
                   resumed="true")
    ctx = good_ctx()
    c1 = MtlsConn(port, ctx)
    check(c1.get("/t/resume-1")[0] == 200)
    session = c1.sock.session
    c1.close()
    check(session is not None and session.has_ticket, "the server sent a session ticket")
    c2 = MtlsConn(port, ctx, session=session)
    try:
        st, _, _ = c2.get("/t/resume-2")
        check(st == 200, st)
        check(c2.sock.session_reused, "the second handshake resumed")
    finally:
        c2.close()
    line = access_line(B.w, "/t/resume-2")
    check(line["peer_principal"] == spiffe("a"), f"a resumed session keeps the identity: {line}")
    # GnuTLS's own client resumes too; its request goes on the resumed
    # session, and the ACL (sa/a only) lets it through
    if shutil.which("gnutls-cli") is not None:
        cert, key = CERTS.leaf("a")
        p = subprocess.run(["gnutls-cli", "--resume", "--insecure", "--x509certfile", cert,
                            "--x509keyfile", key, "-p", str(port), "127.0.0.1"],
                           input="GET /t/resume-gnutls HTTP/1.1\r\nHost: b\r\n"
                                 "connection: close\r\n\r\n",
                           capture_output=True, text=True, timeout=20)
        out = p.stdout + p.stderr
        check("This is a resumed session" in out, f"gnutls-cli --resume:\n{out}")
        check("HTTP/1.1 200" in out, f"gnutls-cli's request on the resumed session:\n{out}")
    wait_for(lambda: total(B.w, "weft_tls_handshakes_total", listener="inbound", role="server",
                           resumed="true") >= before + 1,
             what=f"resumed=\"true\" counted: {series(B.w, 'weft_tls_handshakes_total')}")


# ---------------------------------------------------------------- config errors

def weft_check(text):
    with tempfile.TemporaryDirectory(prefix="weft-mtls-check-") as d:
        with open(os.path.join(d, "weft.yaml"), "w") as fh:
            fh.write(text)
        p = subprocess.run([WEFT, "--check", "--config", d], capture_output=True, text=True,
                           timeout=30)
    return p.returncode, p.stdout + p.stderr


def line_of(text, needle):
    return [i + 1 for i, ln in enumerate(text.splitlines()) if needle in ln][0]


def check_config(text, tls="", upstream_tls=""):
    return (f"admin:\n  address: 127.0.0.1:{free_port()}\n{tls}"
            f"listeners:\n  - name: inbound\n    address: 127.0.0.1:{free_port()}\n"
            f"    upstream: app\n{text}"
            f"upstreams:\n  - name: app\n    endpoints: [127.0.0.1:9]\n{upstream_tls}")


def test_check_tls_without_credentials():
    """STRICT or ISTIO_MUTUAL without a top-level tls: fails at file:line:col"""
    cert, key = CERTS.leaf("b")
    ok = check_config("    tls: {mode: STRICT}\n", tls=tls_yaml(cert, key, CERTS.ca))
    rc, out = weft_check(ok)
    check(rc == 0, f"a good config fails --check:\n{out}")
    for text in (check_config("    tls: {mode: STRICT}\n"),
                 check_config("    tls: {mode: PERMISSIVE}\n"),
                 check_config("", upstream_tls="    tls: {mode: ISTIO_MUTUAL}\n")):
        rc, out = weft_check(text)
        check(rc != 0, f"--check passed:\n{text}")
        want = line_of(text, "tls: {mode:")
        check(re.search(rf"weft\.yaml:{want}:\d+:", out), f"no weft.yaml:{want}:COL in:\n{out}")
    text = check_config("    tls: {mode: STRICTER}\n", tls=tls_yaml(cert, key, CERTS.ca))
    rc, out = weft_check(text)
    check(rc != 0 and re.search(rf"weft\.yaml:{line_of(text, 'STRICTER')}:\d+:", out),
          f"an unknown mode:\n{out}")


def test_check_bad_files():
    """a key that does not match the certificate, and a missing file: the
    message names the file"""
    cert, _ = CERTS.leaf("b")
    _, other_key = CERTS.leaf("a")
    rc, out = weft_check(check_config("    tls: {mode: STRICT}\n",
                                      tls=tls_yaml(cert, other_key, CERTS.ca)))
    check(rc != 0 and other_key in out, f"key mismatch:\n{out}")
    missing = os.path.join(CERTS.dir, "nowhere", "cert.pem")
    rc, out = weft_check(check_config("    tls: {mode: STRICT}\n",
                                      tls=tls_yaml(missing, other_key, CERTS.ca)))
    check(rc != 0 and missing in out, f"missing file:\n{out}")


def test_bad_cert_on_rotation_keeps_old():
    """the credentials in a kubelet volume; a swap to a key that does not
    match keeps the old certificate live (logged, counted as a failed
    reload); the next good swap takes"""
    d = tempfile.mkdtemp(prefix="weft-mtls-vol-")
    kubelet_atomic_writer.update(d, CERTS.files("b"))
    port, admin, backend = free_port(), free_port(), Backend("app-r")
    w = MtlsWeft(f"""\
admin:
  address: 127.0.0.1:{admin}
plugin_dirs: [{PLUGINDIR}]
workers: 2
{tls_yaml(d + '/cert.pem', d + '/key.pem', d + '/ca.pem')}\
listeners:
  - name: inbound
    address: 127.0.0.1:{port}
    upstream: app
    tls: {{mode: STRICT}}
upstreams:
  - name: app
    endpoints: [{backend.address}]
""")
    try:
        w.start()
        ctx = good_ctx()
        check(presented_cert(port, ctx) == leaf_der(CERTS.leaf("b")[0]))
        gen = w.generation()
        fails = total(w, "weft_config_reloads_total", result="failure")
        bad = CERTS.files("c")
        bad["key.pem"] = open(CERTS.leaf("a")[1], "rb").read()
        kubelet_atomic_writer.update(d, bad)
        wait_for(lambda: total(w, "weft_config_reloads_total", result="failure") >= fails + 1,
                 5, what=f"a failed reload counted:\n{w.logs()[-2000:]}")
        check(w.generation() == gen, "the generation stayed")
        check(presented_cert(port, ctx) == leaf_der(CERTS.leaf("b")[0]),
              "new handshakes still get the old certificate")
        check(mtls_get(port, ctx, "/t/rot-bad")[0] == 200, "still serving")
        kubelet_atomic_writer.update(d, CERTS.files("c"))
        wait_for(lambda: presented_cert(port, ctx) == leaf_der(CERTS.leaf("c")[0]), 5,
                 what="the next good swap takes")
        check(w.generation() > gen, "the good swap made a new generation")
        check(mtls_get(port, ctx, "/t/rot-good")[0] == 200)
        check(w.stop() == 0, "weft exit status")
    finally:
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
        backend.stop()
        shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- the end

def test_weft_survived_everything():
    """B and A are still up after every refusal, and exit cleanly"""
    for s in (B, A):
        if s is None:
            continue
        check_weft_alive(s.w)
        check(s.w.stop() == 0, f"exit status {s.w.proc.returncode}")


def stop_everything():
    for s in (A, B):
        if s is None:
            continue
        if s.w.proc is not None and s.w.proc.poll() is None:
            s.w.proc.kill()
            s.w.proc.wait()
        if getattr(s, "backend", None) is not None:
            s.backend.stop()


TESTS = (test_strict_good_client_gets_200,
         test_acl_allows_a_and_denies_c,
         test_metrics_show_source_principal,
         test_accesslog_carries_principal,
         test_refuse_wrong_ca,
         test_refuse_expired,
         test_refuse_not_yet_valid,
         test_refuse_missing_san,
         test_refuse_other_trust_domain,
         test_refuse_no_client_certificate,
         test_refuse_plaintext_on_strict,
         test_refuse_tls11,
         test_port_level_modes_by_original_destination,
         test_tls_looking_garbage_is_not_an_old_client,
         test_refused_client_gets_the_alert,
         test_stalled_client_hello_closed_at_header_timeout,
         test_silent_client_closed_at_header_timeout,
         test_permissive_takes_plaintext_and_mtls,
         test_disable_is_plain_only,
         test_outbound_istio_mutual,
         test_mtls_upstreams_pool_by_address,
         test_outbound_wrong_spiffe_id_is_502,
         test_outbound_resumption_keeps_identity,
         test_outbound_plain_and_mtls_to_one_address_never_mix,
         test_expiry_warning_and_gauge,
         test_session_resumption,
         test_check_tls_without_credentials,
         test_check_bad_files,
         test_bad_cert_on_rotation_keeps_old,
         test_weft_survived_everything)


# the subtests that start no sidecar B of their own
NO_B = (test_check_tls_without_credentials, test_check_bad_files,
        test_bad_cert_on_rotation_keeps_old)


def not_started(t, why):
    def fail():
        raise AssertionError(f"sidecar B did not start:\n{why[-3000:]}")
    fail.__name__ = t.__name__
    return fail


def main():
    global CERTS, B
    tap = Tap()
    startup = ""
    try:
        CERTS = Certs()
        try:
            B = start_b()
        except AssertionError as e:
            B = None
            startup = str(e)
        for t in TESTS:
            if B is None and t not in NO_B:
                tap.run(not_started(t, startup))
                continue
            tap.run(t)
    finally:
        stop_everything()
        if CERTS is not None:
            CERTS.cleanup()
    tap.done()


if __name__ == "__main__":
    main()
