# -*- coding: utf-8 -*-
"""Running a module as Ansible runs it (a separate Python process given its arguments as a JSON
file), and the snapshot of a folder that tells whether a failed run changed anything."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import stat
import subprocess
import sys

from ansible_collections.unikernel.ops.tests.unit.conftest import COLLECTIONS_PATH

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(HERE, "..", "..", "..", "..", "plugins", "modules")


def run_module(name, args, tmp):
    """The module's JSON result and its exit code, as Ansible would see them."""
    path = os.path.join(str(tmp), "args-%s.json" % name)
    with open(path, "w") as f:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_tmpdir=str(tmp))}, f)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_PATH)
    proc = subprocess.run([sys.executable, os.path.join(MODULES, name + ".py"), path],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=120,
                          check=False)  # a failing module exits 1: its result says why
    out = proc.stdout.decode("utf-8", "replace")
    try:
        result = json.loads(out[out.index("{"):])
    except ValueError:
        raise AssertionError("%s printed no result: %s %s" % (name, out, proc.stderr))
    return result, proc.returncode


def tree(root):
    """Every path under root with its kind, mode and content digest (for a file this user
    cannot read, its mtime) - except the empty lock files (flock) that a run takes before it
    looks at anything, whatever it then finds."""
    out = {}
    for base, dirs, files in os.walk(root):
        for d in dirs:
            p = os.path.join(base, d)
            out[os.path.relpath(p, root)] = ("dir", os.lstat(p).st_mode)
        for name in files:
            p = os.path.join(base, name)
            st = os.lstat(p)
            if name.endswith(".lock") and st.st_size == 0:
                continue
            if stat.S_ISLNK(st.st_mode):
                out[os.path.relpath(p, root)] = ("link", os.readlink(p))
                continue
            if not stat.S_ISREG(st.st_mode):  # a QMP socket: its kind and mode say all
                out[os.path.relpath(p, root)] = ("other", st.st_mode)
                continue
            h = hashlib.sha256()
            try:
                with open(p, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                digest = h.hexdigest()
            except PermissionError:  # a case of test_permissions made it so: it must stay so
                digest = "unreadable, mtime %d" % st.st_mtime_ns
            out[os.path.relpath(p, root)] = ("file", st.st_mode, st.st_size, digest)
    return out


def fill(value, where):
    if isinstance(value, str):
        return value.format(**where)
    if isinstance(value, list):
        return [fill(v, where) for v in value]
    if isinstance(value, dict):
        return dict((fill(k, where), fill(v, where)) for k, v in value.items())
    return value
