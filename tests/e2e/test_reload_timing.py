#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""How long a reload took: /config's last_reload.duration_ms and the
"configuration generation N live (reload took X ms)" log line, for SIGHUP,
file events and failed reloads; an unchanged file is hashed, not reloaded;
a config reloaded many times still reports errors at file:line:col."""

import os
import re
import signal
import tempfile
import time

import kubelet_atomic_writer
from weftlib import Backend, Tap, Weft, check, config_yaml, free_port, request, wait_for

A = Backend("A")
B = Backend("B")

LIVE = re.compile(r"configuration generation (\d+) live \(reload took (\d+\.\d) ms\)")


def cfg(port, admin, backend):
    ls = [{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "app"}]
    return config_yaml(ls, {"app": [backend.address]}, admin)


def last_reload(w):
    return w.config().get("last_reload") or {}


def live_lines(w):
    return {int(g): float(ms) for g, ms in LIVE.findall(w.logs())}


def start_on_configmap(port, admin, text):
    cm = tempfile.mkdtemp(prefix="weft-reload-timing-")
    kubelet_atomic_writer.update(cm, {"weft.yaml": text})
    w = Weft(config_dir=cm)
    w.admin_port = admin
    w.start()
    return w, cm


def test_sighup_reports_duration():
    port, admin = free_port(), free_port()
    w, _ = start_on_configmap(port, admin, cfg(port, admin, A))
    try:
        check(w.config()["last_reload"] is None, "no reload yet: last_reload is null")
        gen = w.generation()
        w.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: w.generation() == gen + 1, 5, what="the SIGHUP reload")
        last = last_reload(w)
        check(last["result"] == "success", last)
        check(isinstance(last["duration_ms"], int) and 0 <= last["duration_ms"] < 5000,
              f"duration_ms {last.get('duration_ms')!r}")
        wait_for(lambda: gen + 1 in live_lines(w), 2, what="the live log line")
        logged = live_lines(w)[gen + 1]
        check(abs(logged - last["duration_ms"]) <= 0.6,
              f"log says {logged} ms, /config {last['duration_ms']} ms")
    finally:
        w.stop()


def test_file_event_reports_duration_and_unchanged_is_skipped():
    port, admin = free_port(), free_port()
    w, cm = start_on_configmap(port, admin, cfg(port, admin, A))
    try:
        gen = w.generation()
        kubelet_atomic_writer.update(cm, {"weft.yaml": cfg(port, admin, B)})
        wait_for(lambda: w.generation() == gen + 1, 5, what="the ConfigMap reload")
        last = last_reload(w)
        check(last["result"] == "success" and isinstance(last["duration_ms"], int), last)
        check(request(port)[1].get("x-backend") == "B", "the new config serves")
        # the same bytes again: hashed, found unchanged, no reload
        kubelet_atomic_writer.update(cm, {"weft.yaml": cfg(port, admin, B)})
        wait_for(lambda: "config files unchanged; no reload" in w.logs(), 3,
                 what="the unchanged update to be seen and skipped")
        check(w.generation() == gen + 1, f"generation {w.generation()}, want {gen + 1}")
        check(last_reload(w)["time"] == last["time"], "an unchanged file must not reload")
    finally:
        w.stop()


def test_failed_reload_reports_duration():
    port, admin = free_port(), free_port()
    w, cm = start_on_configmap(port, admin, cfg(port, admin, A))
    try:
        bad = cfg(port, admin, A).replace("upstream: app", "upstream: app\n    typo_key: 1")
        kubelet_atomic_writer.update(cm, {"weft.yaml": bad})
        wait_for(lambda: last_reload(w).get("result") == "failure", 5, what="the failed reload")
        last = last_reload(w)
        check(isinstance(last["duration_ms"], int) and last["duration_ms"] >= 0, last)
        check(re.search(r"weft\.yaml:\d+:\d+: .*typo_key", last["error"]), last["error"])
    finally:
        w.stop()


def test_positions_after_many_reloads():
    """the YAML trees are freed once a generation is built: a later bad
    file is still reported at its line and column"""
    port, admin = free_port(), free_port()
    w, cm = start_on_configmap(port, admin, cfg(port, admin, A))
    try:
        for i in range(5):
            gen = w.generation()
            kubelet_atomic_writer.update(cm, {"weft.yaml": cfg(port, admin, B if i % 2 else A)
                                               + f"# {i}\n"})
            wait_for(lambda: w.generation() == gen + 1, 5, what=f"reload {i + 1}")
        text = cfg(port, admin, A)
        bad = text.replace("upstream: app", "upstream: app\n    typo_key: 1")
        line = bad.splitlines().index("    typo_key: 1") + 1
        kubelet_atomic_writer.update(cm, {"weft.yaml": bad})
        wait_for(lambda: last_reload(w).get("result") == "failure", 5, what="the failed reload")
        err = last_reload(w)["error"]
        check(re.search(rf"weft\.yaml:{line}:5: .*typo_key", err), err)
        check(request(port)[0] == 200, "the last good config still serves")
    finally:
        w.stop()


tap = Tap()
for t in [test_sighup_reports_duration, test_file_event_reports_duration_and_unchanged_is_skipped,
          test_failed_reload_reports_duration, test_positions_after_many_reloads]:
    tap.run(t)
A.stop()
B.stop()
tap.done()
