#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Process faults around weft's files (issue 8, section 6): the config
directory deleted or made unreadable keeps the old config live and reports
the error on /config and in the logs; a full disk under the access log costs
counted lines, never requests."""

import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

from weftlib import (Backend, Tap, Weft, check, config_yaml, free_port, request, wait_for)

PLUGINS = os.environ.get("WEFT_PLUGINS_BUILDDIR", "")
A = Backend("A")


def cfg(port, admin, extra_listener="", extra=""):
    listeners = [{"name": "inbound", "address": f"127.0.0.1:{port}", "upstream": "app",
                  "raw": extra_listener}]
    return config_yaml(listeners, {"app": [A.address]}, admin, extra=extra)


def serving(port):
    try:
        status, _, body = request(port, path="/echo", timeout=5)
    except OSError:
        return False
    return status == 200 and b"A" in body


def last_reload(w):
    return w.config().get("last_reload") or {}


def failed_reloads(w):
    return w.metrics().get('weft_config_reloads_total{result="failure"}', 0)


def test_config_dir_deleted():
    """rm -rf of the whole config directory: the watcher sees it, the old
    config stays live, the failure is on /config and in the log; the
    directory made again with a config is picked up with no signal"""
    port, admin = free_port(), free_port()
    w = Weft(cfg(port, admin))
    w.admin_port = admin
    w.start()
    try:
        gen = w.generation()
        shutil.rmtree(w.dir)
        wait_for(lambda: last_reload(w).get("result") == "failure", 5,
                 what="the failed reload on /config")
        err = last_reload(w)["error"]
        check(w.dir in err, f"the error names the directory: {err}")
        check(w.generation() == gen, "the generation must not change")
        check(failed_reloads(w) >= 1, "the failure is counted")
        check(serving(port), "the old config must stay live")
        check(re.search(re.escape(w.dir) + r".*(No such file|not found|does not exist)", w.logs()),
              "the failure must be in the log")
        for _ in range(20):
            check(serving(port), "requests keep being served")
        os.makedirs(w.dir)
        with open(os.path.join(w.dir, "weft.yaml"), "w") as fh:
            fh.write(cfg(port, admin))
        wait_for(lambda: w.generation() > gen, 5, what="the config made again to load")
        check(last_reload(w)["result"] == "success")
    finally:
        w.stop()


def nobody():
    return pwd.getpwnam("nobody")


def test_config_dir_unreadable():
    """chmod 000 on the config directory of a weft that is not root (root
    reads anything): the old config stays live and the error is reported;
    readable again, the next reload works"""
    port, admin = free_port(), free_port()
    d = tempfile.mkdtemp(prefix="weft-e2e-unreadable-")
    os.chmod(d, 0o755)
    with open(os.path.join(d, "weft.yaml"), "w") as fh:
        fh.write(cfg(port, admin))
    user = nobody()
    os.chown(d, user.pw_uid, user.pw_gid)
    os.chown(os.path.join(d, "weft.yaml"), user.pw_uid, user.pw_gid)
    w = Weft(config_dir=d)
    w.admin_port = admin

    def as_nobody():
        os.setgroups([])
        os.setgid(user.pw_gid)
        os.setuid(user.pw_uid)
    real_popen = subprocess.Popen

    def popen(*a, **kw):
        kw["preexec_fn"] = as_nobody
        return real_popen(*a, **kw)
    subprocess.Popen = popen
    try:
        w.start()
    finally:
        subprocess.Popen = real_popen
    try:
        gen = w.generation()
        os.chmod(d, 0)
        w.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: last_reload(w).get("result") == "failure", 5,
                 what="the failed reload on /config")
        err = last_reload(w)["error"]
        check(d in err and "ermission denied" in err, f"the error says why: {err}")
        check(w.generation() == gen and serving(port), "the old config must stay live")
        check("ermission denied" in w.logs(), "the failure must be in the log")
        os.chmod(d, 0o755)
        os.chmod(os.path.join(d, "weft.yaml"), 0)
        w.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: failed_reloads(w) >= 2, 5, what="a second failed reload")
        err = last_reload(w)["error"]
        check("weft.yaml" in err and "ermission denied" in err, f"the file is named: {err}")
        check(w.generation() == gen and serving(port), "the old config must stay live")
        os.chmod(os.path.join(d, "weft.yaml"), 0o644)
        w.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: last_reload(w).get("result") == "success", 5,
                 what="the reload to work once readable")
    finally:
        w.stop()
        os.chmod(d, 0o755)
        shutil.rmtree(d, ignore_errors=True)


def accesslog_lines(w, result):
    return w.metrics().get(f'weft_accesslog_lines_total{{result="{result}"}}', 0)


def test_access_log_disk_full():
    """the access log on a 64 KiB tmpfs filled to the last byte: requests
    still get 200, the lines that cannot be written are counted as dropped
    and the write errors too; space freed, lines are written again"""
    if not PLUGINS:
        raise AssertionError("WEFT_PLUGINS_BUILDDIR is not set")
    mnt = tempfile.mkdtemp(prefix="weft-e2e-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt], check=True)
    w = None
    try:
        log = os.path.join(mnt, "access.log")
        port, admin = free_port(), free_port()
        text = cfg(port, admin, extra_listener="    plugins: [accesslog]\n",
                   extra=f"accesslog:\n  path: {log}\n  buffer: 64KiB\n")
        text = text.replace(f"plugin_dirs: [{os.environ.get('WEFT_E2E_PLUGINDIR', '')}]\n", "")
        text = text.replace("listeners:\n", f"plugin_dirs: [{PLUGINS}]\nlisteners:\n", 1)
        w = Weft(text)
        w.admin_port = admin
        w.start()
        check(serving(port))
        wait_for(lambda: accesslog_lines(w, "written") >= 1, 5, what="the first line written")
        filler = os.path.join(mnt, "filler")
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4k"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        written = accesslog_lines(w, "written")
        for i in range(300):
            check(serving(port), f"request {i} on a full disk")
        wait_for(lambda: accesslog_lines(w, "dropped") > 0, 10, what="dropped lines counted")
        m = w.metrics()
        errors = sum(v for k, v in m.items() if k.startswith("weft_accesslog_write_errors"))
        check(errors > 0, f"write errors counted: {sorted(k for k in m if 'accesslog' in k)}")
        check(accesslog_lines(w, "written") < written + 300,
              "lines on a full disk cannot all be written")
        check("No space left on device" in w.logs(), "the failure is logged")
        os.unlink(filler)
        before = accesslog_lines(w, "written")
        wait_for(lambda: (serving(port) and accesslog_lines(w, "written") > before), 10,
                 what="lines written again once there is space")
        check("works again" in w.logs(), "the recovery is logged")
    finally:
        if w is not None:
            w.stop()
        subprocess.run(["umount", mnt])
        os.rmdir(mnt)


def main():
    t = Tap()
    for f in (test_config_dir_deleted, test_config_dir_unreadable, test_access_log_disk_full):
        t.run(f)
    A.stop()
    t.done()


if __name__ == "__main__":
    main()
