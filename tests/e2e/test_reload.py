#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Hot reload: kubelet ConfigMap updates under load with zero failures,
bad configs that keep the old one live, in-place and rename edits, SIGHUP,
bursts, listener diffs, long-lived tunnels and plugin state across reloads."""

import http.client
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

import kubelet_atomic_writer
from weftlib import (Backend, Tap, Weft, admin_get, check, config_yaml, free_port,
                     parse_status, request, wait_for)

A = Backend("A")
B = Backend("B")


def cfg(port, admin, backend, extra_listeners=(), extra=""):
    ls = [{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "app"}]
    ls += list(extra_listeners)
    return config_yaml(ls, {"app": [backend.address]}, admin, extra=extra)


def generation(w):
    return w.config()["generation"]


def start_on_file(prefix, port, admin, text):
    """a weft on a directory holding one plain weft.yaml"""
    d = tempfile.mkdtemp(prefix=prefix)
    path = os.path.join(d, "weft.yaml")
    open(path, "w").write(text)
    w = Weft(config_dir=d)
    w.admin_port = admin
    w.start()
    return w, path


def start_on_configmap(port, admin, text):
    """a weft on a directory kubelet's AtomicWriter wrote"""
    cm = tempfile.mkdtemp(prefix="weft-configmap-")
    kubelet_atomic_writer.update(cm, {"weft.yaml": text})
    w = Weft(config_dir=cm)
    w.admin_port = admin
    w.start()
    return w, cm


class Load:
    """@n keep-alive clients hammering @port until stopped."""

    def __init__(self, port, n=32):
        self.port = port
        self.ok = 0
        self.failures = []
        self.stop_flag = False
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(n)]
        self.conns = set()
        for t in self.threads:
            t.start()

    def client(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.connect()
        sock_id = id(c.sock)
        with self.lock:
            self.conns.add(sock_id)
        while not self.stop_flag:
            try:
                c.request("GET", "/echo")
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError(f"status {r.status} {r.getheader('x-weft-error')}")
                if r.getheader("connection", "").lower() == "close":
                    raise RuntimeError("connection: close during the run")
                with self.lock:
                    self.ok += 1
            except Exception as e:        # every failure counts, resets included
                with self.lock:
                    self.failures.append(repr(e))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        c.close()

    def stop(self):
        self.stop_flag = True
        for t in self.threads:
            t.join(15)


def serving(port, name):
    try:
        st, h, _ = request(port, timeout=2)
        return st == 200 and h.get("x-backend") == name
    except OSError:
        return False


def test_kubelet_updates_under_load():
    """50 AtomicWriter updates, alternating the upstream, 32 busy
    keep-alive connections: zero failures, each config live within 1 s"""
    port, admin = free_port(), free_port()
    w, cm = start_on_configmap(port, admin, cfg(port, admin, A))
    try:
        gen0 = generation(w)
        load = Load(port, 32)
        wait_for(lambda: load.ok > 100, 10, what="load to run")
        worst = 0.0
        for i in range(50):
            target = B if i % 2 == 0 else A
            kubelet_atomic_writer.update(cm, {"weft.yaml": cfg(port, admin, target)})
            t0 = time.monotonic()
            try:
                wait_for(lambda: serving(port, target.name), 1.0, step=0.01,
                         what=f"update {i + 1} to serve {target.name} within 1 s")
            except AssertionError:
                print("# " + w.logs()[-3000:].replace("\n", "\n# "))
                raise
            worst = max(worst, time.monotonic() - t0)
        time.sleep(0.3)
        load.stop()
        check(not load.failures, f"{len(load.failures)} failed: {load.failures[:5]}")
        check(load.ok > 1000, f"only {load.ok} requests went through")
        check(generation(w) == gen0 + 50, f"generation {generation(w)}, want {gen0 + 50}")
        m = w.metrics()
        check(m['weft_config_reloads_total{result="success"}'] == 50)
        check(m['weft_config_reloads_total{result="failure"}'] == 0)
        print(f"# {load.ok} requests, 0 failed, worst swap-to-serving {worst * 1000:.0f} ms")
    finally:
        w.stop()


def test_bad_config_keeps_old_live():
    port, admin = free_port(), free_port()
    w, cm = start_on_configmap(port, admin, cfg(port, admin, A))
    try:
        gen = generation(w)
        bad = cfg(port, admin, B).replace("upstream: app", "upstream: app\n    typo_key: 1")
        kubelet_atomic_writer.update(cm, {"weft.yaml": bad})
        wait_for(lambda: (w.config().get("last_reload") or {}).get("result") == "failure", 3,
                 what="the failed reload to show on /config")
        last = w.config()["last_reload"]
        check(re.search(r"weft\.yaml:\d+:\d+: .*typo_key", last["error"]), last["error"])
        check(generation(w) == gen, "a bad config must not change the generation")
        check(serving(port, "A"), "the old config must stay live")
        check(w.metrics()['weft_config_reloads_total{result="failure"}'] == 1)
        check(re.search(r"weft\.yaml:\d+:\d+: .*typo_key", w.logs()),
              "the error must be logged as file:line:col")
        kubelet_atomic_writer.update(cm, {"weft.yaml": cfg(port, admin, B)})
        wait_for(lambda: serving(port, "B"), 2, what="the fixed config")
        check(w.config()["last_reload"]["result"] == "success")
    finally:
        w.stop()


def test_plain_file_in_place_and_rename():
    d = tempfile.mkdtemp(prefix="weft-vm-")
    path = os.path.join(d, "weft.yaml")
    port, admin = free_port(), free_port()
    open(path, "w").write(cfg(port, admin, A))
    w = Weft(config_dir=d)
    w.admin_port = admin
    w.start(config_path=path)
    try:
        with open(path, "r+") as fh:          # edited in place
            fh.write(cfg(port, admin, B))
            fh.truncate()
        wait_for(lambda: serving(port, "B"), 2, what="in-place edit to reload")
        tmp = path + ".tmp"
        open(tmp, "w").write(cfg(port, admin, A))
        os.rename(tmp, path)                  # replaced by rename
        wait_for(lambda: serving(port, "A"), 2, what="rename to reload")
        gen = generation(w)
        open(os.path.join(d, "notes.txt"), "w").write("not config")
        time.sleep(0.5)
        check(generation(w) == gen, "an unrelated file must not reload")
    finally:
        w.stop()


def test_sighup_and_burst():
    port, admin = free_port(), free_port()
    w, path = start_on_file("weft-hup-", port, admin, cfg(port, admin, A))
    try:
        gen = generation(w)
        w.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: generation(w) == gen + 1, 2, what="SIGHUP reload")
        gen += 1
        for i in range(6):                    # a burst of writes
            open(path, "w").write(cfg(port, admin, B if i % 2 == 0 else A)
                                  + f"# edit {i}\n")
            time.sleep(0.01)
        time.sleep(0.6)
        check(generation(w) == gen + 1, f"a burst gave {generation(w) - gen} reloads, want 1")
    finally:
        w.stop()


def test_listener_diff():
    """unchanged listeners keep their sockets (no refused connect during
    reloads), new ones open, removed ones stop and drain"""
    port, admin, port2 = free_port(), free_port(), free_port()
    extra = [{"name": "second", "address": f"127.0.0.1:{port2}", "upstream": "app"}]
    w, path = start_on_file("weft-diff-", port, admin, cfg(port, admin, A))
    refused = []
    stop = False

    def connector():
        while not stop:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=2)
                s.close()
            except OSError as e:
                refused.append(repr(e))
    t = threading.Thread(target=connector, daemon=True)
    t.start()
    try:
        open(path, "w").write(cfg(port, admin, A, extra))
        wait_for(lambda: serving(port2, "A"), 2, what="the new listener")
        # a slow request in flight on the listener that goes away
        result = {}

        def slow():
            result["r"] = request(port2, path="/slow/1500", timeout=10)
        st = threading.Thread(target=slow)
        st.start()
        time.sleep(0.3)
        open(path, "w").write(cfg(port, admin, A))
        wait_for(lambda: not any(l["name"] == "second" for l in w.config()["listeners"]), 2,
                 what="the listener removal")
        time.sleep(0.2)
        try:
            socket.create_connection(("127.0.0.1", port2), timeout=1).close()
            check(False, "the removed listener still accepts")
        except ConnectionRefusedError:
            pass
        st.join()
        check(result["r"][0] == 200, f"the in-flight request on the removed listener: {result}")
    finally:
        stop = True
        t.join()
        w.stop()
    check(not refused, f"the unchanged listener refused {len(refused)} connects: {refused[:3]}")


def test_removed_listener_drain_timeout():
    """connections of a removed listener get timeouts.drain, then close"""
    port, admin, port2 = free_port(), free_port(), free_port()
    extra = [{"name": "second", "address": f"127.0.0.1:{port2}", "upstream": "app"}]
    drain = "timeouts: {drain: 1s, request: 30s}\n"
    w, path = start_on_file("weft-drain-", port, admin, cfg(port, admin, A, extra, extra=drain))
    try:
        s = socket.create_connection(("127.0.0.1", port2), timeout=10)
        s.sendall(b"GET /slow/8000 HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.2)
        open(path, "w").write(cfg(port, admin, A, extra=drain))
        t0 = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
        took = time.monotonic() - t0
        check(data == b"", f"got {data!r}")
        check(0.8 < took < 4, f"closed after {took:.1f}s with a 1s drain timeout")
        check(serving(port, "A"), "the kept listener must be unaffected")
    finally:
        w.stop()


def test_tunnel_survives_reloads():
    port, admin = free_port(), free_port()
    w, path = start_on_file("weft-ws-", port, admin, cfg(port, admin, A))
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\n"
                  b"Upgrade: websocket\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        check(parse_status(head) == 101)
        # an idle keep-alive client connection too
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/echo")
        c.getresponse().read()
        for i in range(3):
            open(path, "w").write(cfg(port, admin, B if i % 2 == 0 else A))
            wait_for(lambda: serving(port, "B" if i % 2 == 0 else "A"), 2, what="reload")
            s.sendall(b"ping%d" % i)
            got = b""
            while len(got) < 5:
                got += s.recv(100)
            check(got == b"ping%d" % i, f"the tunnel broke on reload {i}: {got!r}")
            c.request("GET", "/echo")
            r = c.getresponse()
            r.read()
            check(r.status == 200, "the keep-alive connection broke")
        s.close()
        c.close()
    finally:
        w.stop()


def test_plugin_state_survives_and_new_plugin_on_reload():
    port, admin = free_port(), free_port()
    w, path = start_on_file("weft-plugin-reload-", port, admin, cfg(port, admin, A))
    try:
        check(request(port, path="/probe/local")[1].get("x-backend") == "A",
              "no plugin yet: the path goes upstream")
        with_probe = cfg(port, admin, A).replace(
            "upstream: app\n", "upstream: app\n    plugins: [probe]\n", 1)
        open(path, "w").write(with_probe)
        wait_for(lambda: request(port, path="/probe/local")[1].get("x-probe-local") == "1", 2,
                 what="the plugin enabled by a reload")
        hits = [int(request(port, path="/probe/local")[2].split(b"hits=")[1].split()[0])
                for _ in range(3)]
        open(path, "w").write(with_probe + "# touched\n")
        wait_for(lambda: (w.config().get("last_reload") or {}).get("result") == "success"
                 and generation(w) >= 3, 2, what="another reload")
        after = int(request(port, path="/probe/local")[2].split(b"hits=")[1].split()[0])
        check(after == hits[-1] + 1, f"kept state lost across reload: {hits} then {after}")
    finally:
        w.stop()


tap = Tap()
for t in [test_kubelet_updates_under_load, test_bad_config_keeps_old_live,
          test_plain_file_in_place_and_rename, test_sighup_and_burst, test_listener_diff,
          test_removed_listener_drain_timeout,
          test_tunnel_survives_reloads, test_plugin_state_survives_and_new_plugin_on_reload]:
    tap.run(t)
A.stop()
B.stop()
tap.done()
