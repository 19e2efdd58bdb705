# -*- coding: utf-8 -*-
"""The bad-input table (bad_input.yml): each row runs one module as Ansible runs it (a separate
Python process given its arguments as a JSON file) on an ops home that holds a kernel, a volume,
an image and a running record of nothing, and asserts that it fails with a message that names
the input (never "unexpected error"), and that the ops home is byte for byte what it was."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.unikernel.ops.tests.unit.conftest import COLLECTIONS_PATH, make_release

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.path.join(HERE, "..", "..", "..", "..", "plugins", "modules")
with open(os.path.join(HERE, "bad_input.yml")) as f:
    ROWS = yaml.safe_load(f)


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
    """Every path under root with its kind, mode and content digest - except the empty lock
    files (flock) that a run takes before it looks at anything, whatever it then finds."""
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
            h = hashlib.sha256()
            with open(p, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out[os.path.relpath(p, root)] = ("file", st.st_mode, st.st_size, h.hexdigest())
    return out


def fill(value, where):
    if isinstance(value, str):
        return value.format(**where)
    if isinstance(value, list):
        return [fill(v, where) for v in value]
    if isinstance(value, dict):
        return dict((fill(k, where), fill(v, where)) for k, v in value.items())
    return value


@pytest.fixture(scope="module")
def home(tmp_path_factory, c_programs):
    """An ops home with a stand-in kernel, the volume site, the image web, and the files the
    rows point at."""
    base = tmp_path_factory.mktemp("bad-input")
    ops = str(base / "ops")
    make_release(ops, "0.1.99")
    with open(os.path.join(ops, "latest.txt"), "w") as f:
        f.write("0.1.99")
    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "index.html").write_text("<h1>site</h1>\n")
    (src / "sub" / "note.txt").write_text("note\n")
    files = base / "files"
    files.mkdir()
    configs = {
        "mounts-list.json": {"Mounts": ["site:/site"]},
        "env-list.json": {"Env": ["A=1"]},
        "args-string.json": {"Args": "--port 80"},
        "nightly-string.json": {"NightlyBuild": "yes"},
        "not-object.json": ["Program"],
    }
    for name, data in configs.items():
        (files / name).write_text(json.dumps(data))
    (files / "not-json.json").write_text("{Mounts: site}")
    (files / "not-a-kernel.img").write_bytes(b"\x7fELF but not really a kernel\n" * 10)
    (files / "not-a-tarball.tar.gz").write_bytes(b"plain text\n")
    where = {"ops": ops, "src": str(src), "files": str(files), "tmp": str(base),
             "static": c_programs["static"], "dynamic": c_programs["dynamic"]}
    for module, args in (("ops_volume", {"name": "site", "source": str(src), "size": "4m"}),
                         ("ops_image", {"name": "web", "program": c_programs["static"],
                                        "mounts": {"site": "/site"}})):
        result, rc = run_module(module, dict(args, ops_dir=ops), base)
        assert rc == 0 and result["changed"], result
    return where


@pytest.mark.parametrize("row", ROWS, ids=["%s-%d" % (r["module"], i) for i, r in enumerate(ROWS)])
def test_bad_input(home, row, tmp_path):
    args = fill(row["args"], home)
    args.setdefault("ops_dir", home["ops"])
    before = tree(home["ops"])
    result, rc = run_module(row["module"], args, tmp_path)
    msg = result.get("msg", "")
    assert rc != 0 and result.get("failed"), result
    assert fill(row["msg"], home) in msg, msg
    assert "unexpected error" not in msg and "Traceback" not in json.dumps(result), result
    assert tree(home["ops"]) == before, "the ops home changed"
