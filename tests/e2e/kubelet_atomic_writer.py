#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""kubelet's AtomicWriter update of a ConfigMap volume, step by step, as
pkg/volume/util/atomic_writer.go does it:

  1. write every key into a new timestamped directory ..<timestamp>
  2. point a fresh symlink ..data_tmp at it
  3. rename ..data_tmp over ..data (the atomic swap)
  4. make sure each key is a symlink key -> ..data/key; drop removed keys
  5. delete the previous timestamped directory

Usage as a command: kubelet_atomic_writer.py DIR KEY=FILE [KEY=FILE...]"""

import datetime
import os
import shutil
import sys


def _timestamp_dir(target):
    now = datetime.datetime.utcnow()
    name = now.strftime("..%Y_%m_%d_%H_%M_%S.") + f"{now.microsecond:06d}{os.getpid() % 1000:03d}"
    path = os.path.join(target, name)
    n = 0
    while os.path.exists(path):
        n += 1
        path = os.path.join(target, f"{name}{n}")
    os.mkdir(path, 0o755)
    return path


def update(target, files):
    """@files: {key: bytes or str}. Returns the new timestamped directory."""
    os.makedirs(target, exist_ok=True)
    data_link = os.path.join(target, "..data")
    old = os.readlink(data_link) if os.path.islink(data_link) else None
    ts_dir = _timestamp_dir(target)                                   # 1
    for key, content in files.items():
        mode = "wb" if isinstance(content, bytes) else "w"
        with open(os.path.join(ts_dir, key), mode) as fh:
            fh.write(content)
    tmp_link = os.path.join(target, "..data_tmp")                     # 2
    if os.path.lexists(tmp_link):
        os.unlink(tmp_link)
    os.symlink(os.path.basename(ts_dir), tmp_link)
    os.rename(tmp_link, data_link)                                    # 3
    for key in files:                                                 # 4
        link = os.path.join(target, key)
        if not os.path.lexists(link):
            os.symlink(os.path.join("..data", key), link)
    for name in os.listdir(target):
        link = os.path.join(target, name)
        if not name.startswith("..") and os.path.islink(link) and name not in files:
            os.unlink(link)
    if old is not None and old != os.path.basename(ts_dir):           # 5
        shutil.rmtree(os.path.join(target, old), ignore_errors=True)
    return ts_dir


if __name__ == "__main__":
    files = {}
    for arg in sys.argv[2:]:
        key, _, path = arg.partition("=")
        files[key] = open(path, "rb").read()
    update(sys.argv[1], files)
