#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Lifecycle: sd_notify over NOTIFY_SOCKET, graceful drain on SIGTERM and
POST /drain, --check never binding, and a restart after kill -9 serving
the same config (what systemd's Restart=on-failure relies on)."""

import os
import signal
import socket
import subprocess
import tempfile
import threading
import time

from weftlib import (WEFT, Backend, SkipTest, Tap, Weft, admin_get, check, config_yaml,
                     free_port, request, wait_for)

app = Backend("app")


def simple(port, admin, extra=""):
    return config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "app"}],
                       {"app": [app.address]}, admin, extra=extra)


def test_sd_notify():
    path = tempfile.mktemp(prefix="weft-notify-")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(10)
    port, admin = free_port(), free_port()
    w = Weft(simple(port, admin), env={"NOTIFY_SOCKET": path})
    w.admin_port = admin
    w.start(wait=False)
    try:
        check(sock.recv(4096) == b"READY=1", "no READY=1 at start")
        check(admin_get(admin, "/ready")[0] == 200)
        w.proc.send_signal(signal.SIGHUP)
        msg = sock.recv(4096).decode()
        check(msg.startswith("RELOADING=1\nMONOTONIC_USEC="), msg)
        usec = int(msg.split("MONOTONIC_USEC=")[1])
        now = time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
        check(abs(now - usec) < 5e6, "MONOTONIC_USEC is not CLOCK_MONOTONIC")
        check(sock.recv(4096) == b"READY=1", "no READY=1 after the reload")
        w.proc.send_signal(signal.SIGTERM)
        check(sock.recv(4096) == b"STOPPING=1", "no STOPPING=1")
        check(w.proc.wait(10) == 0)
    finally:
        w.stop()
        sock.close()
        os.unlink(path)


def test_sigterm_drains_in_flight():
    port, admin = free_port(), free_port()
    w = Weft(simple(port, admin))
    w.start()
    result = {}

    def slow():
        result["r"] = request(port, path="/slow/1500")
    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    w.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: admin_get(admin, "/ready")[0] == 503, 2, what="/ready 503 while draining")
    def refused():
        # workers close their sockets when they take the drain message
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return False
        except ConnectionRefusedError:
            return True
    wait_for(refused, 2, what="the listener to stop accepting while draining")
    t.join()
    check(result["r"][0] == 200, f"the in-flight request was cut: {result}")
    check(w.proc.wait(10) == 0, "weft did not exit 0 after draining")


def test_drain_timeout():
    port, admin = free_port(), free_port()
    w = Weft(simple(port, admin, extra="timeouts: {drain: 1s, request: 30s}\n"))
    w.start()
    def cut():
        try:
            request(port, path="/slow/5000", timeout=10)
        except OSError:
            pass    # cut at the drain timeout, as it should be
    t = threading.Thread(target=cut, daemon=True)
    t.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    w.proc.send_signal(signal.SIGINT)
    check(w.proc.wait(10) == 0)
    took = time.monotonic() - t0
    check(0.8 < took < 3, f"the drain took {took:.1f}s with a 1s drain timeout")


def test_post_drain_exits():
    port, admin = free_port(), free_port()
    w = Weft(simple(port, admin))
    w.start()
    st, _, body = admin_get(admin, "/drain", "POST")
    check(st == 202, st)
    check(w.proc.wait(10) == 0, "POST /drain did not exit 0")


def test_check_never_binds():
    port, admin = free_port(), free_port()
    w = Weft(simple(port, admin))
    w.start()
    try:
        p = subprocess.run([WEFT, "--check", "--config", w.dir], capture_output=True, text=True)
        check(p.returncode == 0, p.stdout + p.stderr)
        check(request(port)[0] == 200, "the live weft was disturbed")
        bad = os.path.join(tempfile.mkdtemp(), "bad.yaml")
        open(bad, "w").write("listeners:\n  - name: x\n    adress: 127.0.0.1:1\n")
        p = subprocess.run([WEFT, "--check", "--config", bad], capture_output=True, text=True)
        check(p.returncode != 0)
        check(f"{bad}:3:5:" in p.stderr, p.stderr)
    finally:
        w.stop()


def test_version_and_help():
    p = subprocess.run([WEFT, "--version"], capture_output=True, text=True)
    check(p.returncode == 0 and p.stdout.startswith("weft "), p.stdout)
    p = subprocess.run([WEFT, "--help"], capture_output=True, text=True)
    check(p.returncode == 0 and "--config" in p.stdout and "--check" in p.stdout)
    p = subprocess.run([WEFT, "--log-level", "loud", "--check"], capture_output=True, text=True)
    check(p.returncode != 0 and "loud" in p.stderr)


def test_log_level_filters():
    port, admin = free_port(), free_port()
    w = Weft(simple(port, admin))
    w.args = []
    w.start()
    w.stop()
    check("info server:" in w.logs(), "info lines at --log-level debug")
    w2 = Weft(simple(free_port(), free_port()))
    w2.start(wait=False)
    w2.proc.kill()
    w2.proc.wait()
    # the same config at warning level prints no info lines
    log = tempfile.mktemp()
    with open(log, "w") as fh:
        p = subprocess.Popen([WEFT, "--config", w2.dir, "--log-level", "warning"],
                             stdout=fh, stderr=subprocess.STDOUT)
        w2.proc = p
        w2.admin_port = None
        w2.wait_ready()
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    text = open(log).read()
    check("info " not in text and "debug " not in text, text)


def test_restart_after_kill_9():
    port, admin = free_port(), free_port()
    w = Weft(simple(port, admin))
    w.start()
    before = w.config()
    w.proc.kill()                # what systemd sees as a failure
    w.proc.wait()
    w.start()                    # Restart=on-failure starts it again
    try:
        after = w.config()
        check(after["sources"] == before["sources"], "a different config after the restart")
        check(request(port)[0] == 200, "not serving after the restart")
    finally:
        w.stop()


def test_open_file_limit_raised():
    """started with a soft limit of 256 open files, weft raises it to the
    hard limit and holds 400 client connections (each with an upstream
    one); before, accept() failed with EMFILE near 250"""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        raise SkipTest(f"hard open-file limit {hard} is too low to tell")
    port, admin = free_port(), free_port()
    w = Weft(simple(port, admin))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        w.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    socks = []
    try:
        limits = open(f"/proc/{w.proc.pid}/limits").read()
        line = next(l for l in limits.splitlines() if l.startswith("Max open files"))
        check(line.split()[3] == str(hard), f"soft limit not raised: {line}")
        for _ in range(400):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(b"GET /slow/300 HTTP/1.1\r\nhost: x\r\n\r\n")
            socks.append(s)
        answered = sum(1 for s in socks if s.recv(64).startswith(b"HTTP/1.1 200"))
        check(answered == 400, f"{answered} of 400 concurrent connections answered 200")
    finally:
        for s in socks:
            s.close()
        w.stop()


tap = Tap()
for t in [test_sd_notify, test_sigterm_drains_in_flight, test_drain_timeout,
          test_post_drain_exits, test_check_never_binds, test_version_and_help,
          test_log_level_filters, test_restart_after_kill_9, test_open_file_limit_raised]:
    tap.run(t)
app.stop()
tap.done()
