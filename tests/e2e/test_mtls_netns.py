# SPDX-License-Identifier: LGPL-2.1-or-later
"""Two sidecars in separate network namespaces talk mTLS over a veth pair
(issue 6, section 7):

    ns1 (10.231.0.1)                          ns2 (10.231.0.2)
    curl -> A (outbound, sa/a) ==mTLS==> B (inbound STRICT, sa/b) -> backend
    curl -> C (outbound, sa/c) ==mTLS==> B: denied by B's ACL

B's ACL admits spiffe://cluster.local/ns/default/sa/a only; B's metrics
show the caller's source_principal. Needs root and `ip netns`; without
them every subtest is skipped with the reason."""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from weftlib import PLUGINDIR, Backend, SkipTest, Tap, check, wait_for  # noqa: E402
from mtlslib import (Certs, Netns, NsWeft, check_weft_alive, failures, in_netns,  # noqa: E402
                     series, spiffe, tls_yaml, total)

B_PORT = 15006
NODE = "node: {{workload: {sa}-v1, namespace: default, service: {sa}, labels: {{app: {sa}}}}}\n"

NET = None
CERTS = None
ENV = {}            # 'b', 'a', 'c': NsWeft; 'backend': Backend (listening in ns2)


def b_config(backend_port):
    cert, key = CERTS.leaf("b-dns")
    return f"""\
admin:
  address: 127.0.0.1:15000
{NODE.format(sa='b')}\
plugin_dirs: [{PLUGINDIR}]
workers: 2
{tls_yaml(cert, key, CERTS.ca)}\
listeners:
  - name: inbound
    address: {NET.ip2}:{B_PORT}
    upstream: app
    tls: {{mode: STRICT}}
    plugins: [acl, metrics]
upstreams:
  - name: app
    endpoints: [127.0.0.1:{backend_port}]
acl:
  policies:
    - name: b-admits-a
      action: ALLOW
      rules:
        - from: [{{source: {{principals: ["cluster.local/ns/default/sa/a"]}}}}]
"""


def caller_config(sa, admin, port):
    cert, key = CERTS.leaf(sa)
    return f"""\
admin:
  address: 127.0.0.1:{admin}
{NODE.format(sa=sa)}\
plugin_dirs: [{PLUGINDIR}]
workers: 1
timeouts: {{upstream_idle: 300ms}}
{tls_yaml(cert, key, CERTS.ca)}\
listeners:
  - name: outbound
    address: 127.0.0.1:{port}
    direction: outbound
    upstream: b
    plugins: [metrics]
upstreams:
  - name: b
    endpoints: [{NET.ip2}:{B_PORT}]
    tls:
      mode: ISTIO_MUTUAL
      spiffe_ids: [{spiffe('b')}]
      sni: b.default.svc
"""


def curl(ns, *args):
    """curl -i in @ns: (status or None, {headers}, body, the whole result)"""
    p = NET.exec(ns, "curl", "-s", "-S", "-i", "--max-time", "10", *args, text=False)
    p.stdout, p.stderr = p.stdout.decode("latin-1"), p.stderr.decode("latin-1")
    out = p.stdout
    head, _, body = out.partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = None
    if lines and lines[0].startswith("HTTP/"):
        status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body, p


def start():
    global NET
    if os.geteuid() != 0:
        raise SkipTest("network namespaces need root")
    net = Netns()
    try:
        net.setup()
    except (OSError, FileNotFoundError) as e:
        net.cleanup()
        raise SkipTest(f"ip netns is unavailable here: {e}")
    NET = net
    ENV["backend"] = in_netns(NET.ns2, Backend, "app-b")
    ENV["b"] = NsWeft(NET.ns2, b_config(ENV["backend"].port)).start()
    ENV["a"] = NsWeft(NET.ns1, caller_config("a", 15000, 15001)).start()
    ENV["c"] = NsWeft(NET.ns1, caller_config("c", 15010, 15002)).start()


def test_a_reaches_b_over_mtls():
    st, h, body, p = curl(NET.ns1, "http://127.0.0.1:15001/n/a", "-H", "Host: b")
    check(st == 200, f"curl through A: {st}\n{p.stdout}{p.stderr}")
    check(json.loads(body)["backend"] == "app-b", body)
    check(any(path == "/n/a" for _, path, _ in ENV["backend"].seen), "the backend got it")
    b = ENV["b"]
    want = dict(source_principal=spiffe("a"), connection_security_policy="mutual_tls",
                response_code="200")
    wait_for(lambda: total(b, "istio_requests_total", **want) >= 1,
             what=f"B's metrics show A: {series(b, 'istio_requests_total')}")
    check(total(ENV["a"], "weft_tls_handshakes_total", role="client") >= 1,
          f"A originated TLS: {series(ENV['a'], 'weft_tls_handshakes_total')}")
    check(total(b, "weft_tls_handshakes_total", listener="inbound", role="server") >= 1,
          f"B accepted TLS: {series(b, 'weft_tls_handshakes_total')}")


def test_c_is_denied_by_b():
    st, h, _, p = curl(NET.ns1, "http://127.0.0.1:15002/n/c", "-H", "Host: b")
    check(st == 403 and h.get("x-weft-error") == "rbac-denied",
          f"curl through C: {st} {h}\n{p.stdout}{p.stderr}")
    check(not any(path == "/n/c" for _, path, _ in ENV["backend"].seen),
          "C's request never reached the backend")
    b = ENV["b"]
    wait_for(lambda: total(b, "istio_requests_total", source_principal=spiffe("c"),
                           connection_security_policy="mutual_tls", response_code="403") >= 1,
             what=f"B's metrics show C denied: {series(b, 'istio_requests_total')}")
    check(total(b, "istio_requests_total", source_principal=spiffe("c"),
                response_code="200") == 0, "no request of C's was admitted")
    check("principal cluster.local/ns/default/sa/c" in b.logs(), "B's acl log names C")


def test_a_admitted_again_after_reconnecting():
    """A's idle connection to B closes (upstream_idle 300ms); A reconnects,
    resuming its TLS session, and B still admits it as sa/a"""
    b = ENV["b"]
    for i in range(3):
        wait_for(lambda: total(b, "weft_connections_active", listener="inbound") == 0, 5,
                 what="A's idle connection to B closed")
        st, h, _, p = curl(NET.ns1, f"http://127.0.0.1:15001/n/again-{i}", "-H", "Host: b")
        check(st == 200, f"request {i} after A reconnected: {st} {h}\n{p.stderr}")
    check(total(b, "istio_requests_total", source_principal="unknown") == 0,
          f"B counted requests without a principal: {series(b, 'istio_requests_total')}")


def test_curl_with_a_workload_certificate():
    """curl itself as a mesh client across the veth (--cert/--key/--cacert)"""
    cert, key = CERTS.leaf("a")
    st, _, body, p = curl(NET.ns1, "--cacert", CERTS.ca, "--cert", cert, "--key", key,
                          "--resolve", f"b.default.svc:{B_PORT}:{NET.ip2}",
                          f"https://b.default.svc:{B_PORT}/n/curl")
    check(st == 200, f"curl with A's certificate: {st}\n{p.stdout}{p.stderr}")
    check(json.loads(body)["backend"] == "app-b", body)
    st, _, _, p = curl(NET.ns1, "--cacert", CERTS.ca, "--resolve",
                       f"b.default.svc:{B_PORT}:{NET.ip2}", f"https://b.default.svc:{B_PORT}/n/x")
    check(st is None and p.returncode != 0, f"curl without a certificate: {st} {p.returncode}")


def test_plaintext_across_the_veth_is_refused():
    b = ENV["b"]
    before = failures(b, listener="inbound", reason="plaintext_on_strict")
    st, _, _, p = curl(NET.ns1, f"http://{NET.ip2}:{B_PORT}/n/plain")
    check(st is None and p.returncode != 0, f"plaintext answered {st}: {p.stdout[:200]}")
    wait_for(lambda: failures(b, listener="inbound", reason="plaintext_on_strict") == before + 1,
             what="the refusal counted")
    wait_for(lambda: f"refused TLS from {NET.ip1}:" in b.logs(),
             what="the refusal line names the peer in ns1")
    check(not any(path == "/n/plain" for _, path, _ in ENV["backend"].seen))


def test_sidecars_exit_cleanly():
    for name in ("a", "c", "b"):
        check_weft_alive(ENV[name])
        check(ENV[name].stop() == 0, f"{name} exit status")


def stop_everything():
    for name in ("a", "c", "b"):
        w = ENV.get(name)
        if w is not None and w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
    if ENV.get("backend") is not None:
        ENV["backend"].stop()
    if NET is not None:
        NET.cleanup()


TESTS = (test_a_reaches_b_over_mtls,
         test_c_is_denied_by_b,
         test_a_admitted_again_after_reconnecting,
         test_curl_with_a_workload_certificate,
         test_plaintext_across_the_veth_is_refused,
         test_sidecars_exit_cleanly)


def skipped(t, why):
    def skip():
        raise SkipTest(why)
    skip.__name__ = t.__name__
    return skip


def failed(t, why):
    def fail():
        raise AssertionError(why)
    fail.__name__ = t.__name__
    return fail


def main():
    global CERTS
    tap = Tap()
    try:
        CERTS = Certs()
        why, stand_in = None, None
        try:
            start()
        except SkipTest as e:
            why, stand_in = str(e), skipped
        except (AssertionError, OSError) as e:
            why, stand_in = f"the sidecars did not start: {e}", failed
        for t in TESTS:
            tap.run(stand_in(t, why) if stand_in else t)
    finally:
        stop_everything()
        if CERTS is not None:
            CERTS.cleanup()
    tap.done()


if __name__ == "__main__":
    main()
