# SPDX-License-Identifier: LGPL-2.1-or-later
"""Certificate rotation under load (issue 6, sections 3 and 7): the
workload certificate, key and bundle sit in a kubelet-style volume
(cert.pem -> ..data/cert.pem -> ..<timestamp>/cert.pem). While 32 keep-alive
mTLS clients keep sending requests, the volume is swapped the way kubelet's
AtomicWriter does it. Not one request may fail, every established
connection carries on, and new handshakes get the new certificate."""

import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from weftlib import PLUGINDIR, Backend, Tap, check, free_port, wait_for  # noqa: E402
from mtlslib import (Certs, MtlsConn, MtlsWeft, check_weft_alive, client_context,  # noqa: E402
                     leaf_der, mtls_get, presented_cert, series, spiffe, tls_yaml, total)
import kubelet_atomic_writer  # noqa: E402

CLIENTS = 32
CERTS = None


def config(vol, port, admin, backend):
    return f"""\
admin:
  address: 127.0.0.1:{admin}
plugin_dirs: [{PLUGINDIR}]
workers: 2
{tls_yaml(vol + '/cert.pem', vol + '/key.pem', vol + '/ca.pem')}\
listeners:
  - name: inbound
    address: 127.0.0.1:{port}
    upstream: app
    tls: {{mode: STRICT}}
    plugins: [metrics]
upstreams:
  - name: app
    endpoints: [{backend.address}]
"""


class Client(threading.Thread):
    """one keep-alive mTLS connection sending GETs until told to stop"""

    def __init__(self, port, ctx, stop, n):
        super().__init__(daemon=True)
        self.conn = MtlsConn(port, ctx, timeout=10)
        self.stop, self.n = stop, n
        self.ok, self.failed, self.errors = 0, 0, []
        self.done_at = []             # monotonic time of each good answer
        self.first_sock = None
        self.peer_der = None

    def run(self):
        i = 0
        while not self.stop.is_set():
            i += 1
            try:
                st, _, body = self.conn.get(f"/r/{self.n}/{i}")
                if st == 200 and b'"backend"' in body:
                    self.ok += 1
                    self.done_at.append(time.monotonic())
                else:
                    self.failed += 1
                    self.errors.append(f"status {st}")
            except Exception as e:    # any failure is a failed request
                self.failed += 1
                self.errors.append(repr(e))
            if self.first_sock is None and self.conn.sock is not None:
                self.first_sock = self.conn.sock
                self.peer_der = self.conn.sock.getpeercert(binary_form=True)
        self.conn.close()


def test_rotation_under_load():
    vol = tempfile.mkdtemp(prefix="weft-mtls-rot-")
    kubelet_atomic_writer.update(vol, CERTS.files("b"))
    port, admin, backend = free_port(), free_port(), Backend("app")
    w = MtlsWeft(config(vol, port, admin, backend))
    stop = threading.Event()
    clients = []
    try:
        w.start()
        ctx = client_context(CERTS, "a")
        old, new = leaf_der(CERTS.leaf("b")[0]), leaf_der(CERTS.leaf("b2")[0])
        check(presented_cert(port, ctx) == old, "the first certificate is live")
        gauge = series(w, "weft_tls_certificate_expiry_seconds", spiffe_id=spiffe("b"))
        check(len(gauge) == 1 and gauge[0][1] <= 30 * 86400, f"expiry gauge {gauge}")

        clients = [Client(port, ctx, stop, n) for n in range(CLIENTS)]
        for c in clients:
            c.start()
        wait_for(lambda: all(c.ok >= 5 for c in clients), 15,
                 what=f"all {CLIENTS} clients under way")
        time.sleep(1.5)               # load before the swap; not an assertion
        gen = w.generation()
        handshakes = total(w, "weft_tls_handshakes_total", role="server")

        probes = [0]

        def probe():
            probes[0] += 1
            return presented_cert(port, ctx)

        kubelet_atomic_writer.update(vol, CERTS.files("b2"))
        wait_for(lambda: w.generation() > gen, 10, what="a new generation after the swap")
        wait_for(lambda: probe() == new, 10, what="a new handshake presents the new certificate")
        swapped = time.monotonic()
        wait_for(lambda: all(c.done_at and c.done_at[-1] > swapped + 2.0 for c in clients), 15,
                 what="every client answered for two seconds after the swap")
        stop.set()
        for c in clients:
            c.join(15)
            check(not c.is_alive(), f"client {c.n} hung")

        failed = [(c.n, c.failed, c.errors[:3]) for c in clients if c.failed]
        total_ok = sum(c.ok for c in clients)
        print(f"# {total_ok} requests on {CLIENTS} connections, "
              f"{sum(c.failed for c in clients)} failed", flush=True)
        check(not failed, f"failed requests: {failed}")
        for c in clients:
            check(c.conn.connects == 1, f"client {c.n} connected {c.conn.connects} times")
            check(c.peer_der == old, f"client {c.n} started on the old certificate")
            check(c.first_sock is not None, f"client {c.n} never connected")
            before = [t for t in c.done_at if t < swapped]
            after = [t for t in c.done_at if t > swapped]
            check(before and after, f"client {c.n}: {len(before)} before, {len(after)} after")
        check(backend.requests >= total_ok, f"backend counted {backend.requests} of {total_ok}")
        # the probes were the only new handshakes: the 32 connections stayed up
        wait_for(lambda: total(w, "weft_tls_handshakes_total", role="server")
                 >= handshakes + probes[0], 5, what=f"{probes[0]} probe handshakes counted")
        got = total(w, "weft_tls_handshakes_total", role="server") - handshakes
        check(got == probes[0], f"{got} server handshakes since the swap, {probes[0]} probes")
        gauge = series(w, "weft_tls_certificate_expiry_seconds", spiffe_id=spiffe("b"))
        check(len(gauge) == 1 and 59 * 86400 < gauge[0][1] <= 60 * 86400,
              f"the gauge follows the new 60-day leaf: {gauge}")
        check(mtls_get(port, ctx, "/r/after")[0] == 200)
        check_weft_alive(w)
        check(w.stop() == 0, "weft exit status")
    finally:
        stop.set()
        for c in clients:
            c.join(5)
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
        backend.stop()
        shutil.rmtree(vol, ignore_errors=True)


def test_second_rotation_and_bundle():
    """two swaps in a row, the second also adding the second CA to the
    bundle: clients of either CA are admitted after it"""
    vol = tempfile.mkdtemp(prefix="weft-mtls-rot2-")
    kubelet_atomic_writer.update(vol, CERTS.files("b"))
    port, admin, backend = free_port(), free_port(), Backend("app")
    w = MtlsWeft(config(vol, port, admin, backend))
    try:
        w.start()
        ctx_a = client_context(CERTS, "a")
        ctx_other = client_context(CERTS, "wrong-ca")
        check(mtls_get(port, ctx_a, "/r2/a")[0] == 200)
        kubelet_atomic_writer.update(vol, CERTS.files("b2"))
        wait_for(lambda: presented_cert(port, ctx_a) == leaf_der(CERTS.leaf("b2")[0]), 10,
                 what="the first swap")
        files = CERTS.files("b")
        files["ca.pem"] += open(CERTS.ca2, "rb").read()
        kubelet_atomic_writer.update(vol, files)
        wait_for(lambda: presented_cert(port, ctx_a) == leaf_der(CERTS.leaf("b")[0]), 10,
                 what="the second swap")
        check(mtls_get(port, ctx_a, "/r2/a-after")[0] == 200)
        check(mtls_get(port, ctx_other, "/r2/ca2")[0] == 200,
              "a leaf of the second CA is admitted once the bundle holds it")
        check(w.stop() == 0, "weft exit status")
    finally:
        if w.proc is not None and w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()
        backend.stop()
        shutil.rmtree(vol, ignore_errors=True)


def main():
    global CERTS
    tap = Tap()
    try:
        CERTS = Certs()
        tap.run(test_rotation_under_load)
        tap.run(test_second_rotation_and_bundle)
    finally:
        if CERTS is not None:
            CERTS.cleanup()
    tap.done()


if __name__ == "__main__":
    main()
