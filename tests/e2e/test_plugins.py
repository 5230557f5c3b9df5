#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The plugin ABI from real .so files: the probe plugin drives the whole
host API; the loader refuses ABI mismatches and missing symbols with a
message that says what to rebuild; documents go to the plugin that claims
them; and examples/hello-plugin builds out of tree with nothing but
`pkg-config --cflags --libs weft-plugin` against an installed SDK."""

import json
import os
import re
import shutil
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "..", "..", "include", "weft", "plugin.h")) as header:
    ABI = int(re.search(r"#define WEFT_PLUGIN_ABI_VERSION (\d+)", header.read()).group(1))

from weftlib import (PLUGINDIR, WEFT, Backend, Tap, Weft, admin_get, check, config_yaml,
                     free_port, request, wait_for)

app = Backend("app")
other = Backend("other")


def check_config(text):
    d = tempfile.mkdtemp(prefix="weft-check-")
    path = os.path.join(d, "weft.yaml")
    open(path, "w").write(text)
    p = subprocess.run([WEFT, "--check", "--config", d], capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr, path


def probe_config(port, admin, extra_top="", listener_raw=""):
    return config_yaml(
        [{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "app",
          "direction": "outbound", "plugins": ["probe"], "raw": listener_raw}],
        {"app": [app.address], "other": [other.address]}, admin,
        extra="probe:\n  upstreams: [other]\n" + extra_top +
              "---\napiVersion: test.weft.dev/v1\nkind: Probe\nmessage: from-a-document\n")


def test_probe_host_api():
    port, admin = free_port(), free_port()
    w = Weft(probe_config(port, admin,
                          listener_raw="    probe:\n      respond_path: /local\n"))
    w.start()
    try:
        time.sleep(0.2)       # worker timers tick every 20 ms
        st, h, body = request(port, path="/local", headers={"X-Request-Id": "rid-1"})
        text = body.decode()
        check(st == 200 and h["x-probe-local"] == "1", (st, h))
        check(h["content-type"] == "text/plain")
        for part in ("message=from-a-document", "listener=inbound", "direction=outbound",
                     "peer=127.0.0.1", "id=rid-1"):
            check(part in text, f"{part} missing from {text}")
        check(re.search(r"worker=[01] ", text), text)
        check(int(re.search(r"ticks=(\d+)", text).group(1)) > 0, "worker timers never ran")
        # headers both ways, per-request data, the upstream a plugin picks
        st, h, body = request(port, headers={"X-Probe-Secret": "x"})
        seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
        check(seen.get("x-probe-seen") == "yes" and "x-probe-secret" not in seen, seen)
        check(h["x-probe-data"] == "kept" and h["x-probe-status"] == "200", h)
        check("x-backend-secret" not in h, "a plugin removed response header came through")
        check(h["x-backend"] == "app")
        st, h, _ = request(port, headers={"X-Probe-Upstream": "other"})
        check(h["x-backend"] == "other", "weft_request_set_upstream was ignored")
        # the LOG phase runs just after the answer is written: the client can
        # read the answer first, so the count may lag by a moment
        key = 'weft_probe_requests_total{listener="inbound"}'
        m = wait_for(lambda: (lambda m: m if m.get(key, 0) >= 3 else None)(w.metrics()),
                     what="the probe's LOG-phase counter")
        check(m[key] >= 3, m)
        text = admin_get(admin, "/metrics")[2].decode()
        check("# TYPE weft_probe_latency_seconds histogram" in text)
        plugins = w.config()["plugins"]
        check(plugins[0]["name"] == "probe" and plugins[0]["version"] == "1.0.0", plugins)
    finally:
        w.stop()


def test_plugin_config_errors_positioned():
    rc, out, path = check_config(probe_config(free_port(), free_port()).replace(
        "upstreams: [other]", "upstreams: [nope]"))
    check(rc != 0 and re.search(re.escape(path) + r":\d+:\d+: probe: unknown upstream 'nope'",
                                out), out)
    rc, out, path = check_config(probe_config(free_port(), free_port(),
                                              listener_raw="    probe:\n      bogus: 1\n"))
    check(rc != 0 and re.search(re.escape(path) + r":\d+:\d+: .*bogus", out), out)


def test_unclaimed_document_refused():
    text = config_yaml([{"name": "i", "address": f"127.0.0.1:{free_port()}", "upstream": "a"}],
                       {"a": [app.address]}, free_port(),
                       extra="---\napiVersion: networking.istio.io/v1beta1\n"
                             "kind: VirtualService\nmetadata: {name: x}\n")
    rc, out, path = check_config(text)
    check(rc != 0 and re.search(re.escape(path) + r":\d+:\d+: no loaded plugin handles", out),
          out)


def test_unknown_top_level_key():
    text = config_yaml([{"name": "i", "address": f"127.0.0.1:{free_port()}", "upstream": "a"}],
                       {"a": [app.address]}, free_port(), extra="timeouts_typo: {}\n")
    rc, out, path = check_config(text)
    check(rc != 0 and re.search(re.escape(path) + r":\d+:\d+: unknown key 'timeouts_typo'", out),
          out)


def test_abi_mismatch_refused():
    text = config_yaml([{"name": "i", "address": f"127.0.0.1:{free_port()}", "upstream": "a",
                         "plugins": ["badabi"]}], {"a": [app.address]}, free_port())
    rc, out, _ = check_config(text)
    so = os.path.join(PLUGINDIR, "badabi.so")
    check(rc != 0, out)
    check(f"plugin {so} has ABI {ABI + 98}, weft has ABI {ABI}: rebuild {so} against "
          f"weft-plugin {ABI}" in out,
          out)


def test_missing_symbol_refused():
    text = config_yaml([{"name": "i", "address": f"127.0.0.1:{free_port()}", "upstream": "a",
                         "plugins": ["nosymbol"]}], {"a": [app.address]}, free_port())
    rc, out, _ = check_config(text)
    check(rc != 0 and "nosymbol.so does not export weft_plugin_get_descriptor" in out, out)
    check(f"weft has ABI {ABI}" in out, out)


def test_missing_plugin_refused():
    text = config_yaml([{"name": "i", "address": f"127.0.0.1:{free_port()}", "upstream": "a",
                         "plugins": ["nothere"]}], {"a": [app.address]}, free_port())
    rc, out, path = check_config(text)
    check(rc != 0 and re.search(re.escape(path) + r":\d+:\d+: plugin 'nothere' not found", out),
          out)


def test_one_exported_symbol():
    nm = shutil.which("nm")
    if nm is None:
        return
    out = subprocess.run([nm, "-D", "--defined-only", os.path.join(PLUGINDIR, "probe.so")],
                         capture_output=True, text=True).stdout
    syms = [l.split()[-1] for l in out.splitlines() if l.split()[1] in "TDBR"]
    check(syms == ["weft_plugin_get_descriptor"], syms)


def test_hello_example_against_installed_sdk():
    """meson install into a staging root, then build examples/hello-plugin
    with only pkg-config weft-plugin, load it, and see its header"""
    root = os.environ["WEFT_BUILD_ROOT"]
    src = os.environ["WEFT_SOURCE_ROOT"]
    dest = tempfile.mkdtemp(prefix="weft-sdk-")
    p = subprocess.run(["meson", "install", "-C", root, "--destdir", dest, "--quiet",
                        "--no-rebuild"], capture_output=True, text=True)
    check(p.returncode == 0, p.stdout + p.stderr)
    pcs = subprocess.run(["find", dest, "-name", "weft-plugin.pc"], capture_output=True,
                         text=True).stdout.split()
    check(len(pcs) == 1, f"weft-plugin.pc installed: {pcs}")
    headers = subprocess.run(["find", dest, "-name", "plugin.h"], capture_output=True,
                             text=True).stdout.split()
    check(headers and headers[0].endswith("include/weft/plugin.h"), headers)
    # the staged SDK lives under @dest: relocate its prefix there
    pc = open(pcs[0]).read()
    prefix = re.search(r"^prefix=(.*)$", pc, re.M).group(1)
    open(pcs[0], "w").write(pc.replace(f"prefix={prefix}", f"prefix={dest}{prefix}", 1))
    work = tempfile.mkdtemp(prefix="weft-hello-")
    for f in os.listdir(os.path.join(src, "examples", "hello-plugin")):
        shutil.copy(os.path.join(src, "examples", "hello-plugin", f), work)
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pcs[0]))
    p = subprocess.run(["make", "-C", work], capture_output=True, text=True, env=env)
    check(p.returncode == 0, p.stdout + p.stderr)
    check(os.path.exists(os.path.join(work, "hello.so")))
    port, admin = free_port(), free_port()
    text = config_yaml([{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "a",
                         "plugins": ["hello"], "raw": "    hello:\n      greeting: bonjour\n"}],
                       {"a": [app.address]}, admin, extra="")
    text = text.replace(f"plugin_dirs: [{PLUGINDIR}]", f"plugin_dirs: [{work}]")
    w = Weft(text)
    w.start()
    try:
        st, h, _ = request(port)
        check(st == 200 and h.get("x-hello") == "bonjour", h)
        check(w.metrics().get('weft_hello_responses_total{listener="inbound"}', 0) >= 1)
    finally:
        w.stop()


tap = Tap()
for t in [test_probe_host_api, test_plugin_config_errors_positioned,
          test_unclaimed_document_refused, test_unknown_top_level_key, test_abi_mismatch_refused,
          test_missing_symbol_refused, test_missing_plugin_refused, test_one_exported_symbol,
          test_hello_example_against_installed_sdk]:
    tap.run(t)
app.stop()
other.stop()
tap.done()
