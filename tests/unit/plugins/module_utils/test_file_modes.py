# -*- coding: utf-8 -*-
"""File modes whatever the umask (issue 12, item 6): our bookkeeping (state folders 0700, state
files, fingerprints and locks 0600) is owner-only; volume and image files follow
the umask as Nanos mkfs makes its output (0644 less the umask), and a rebuilt volume keeps the
mode (and owner) of the file it replaces. Each umask is set in the module's own process
(subprocess's umask=), never in the test's."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.unikernel.ops.tests.unit.conftest import COLLECTIONS_PATH, kernel_home
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import MODULES

UMASKS = [0o000, 0o022, 0o077]
STATE_DIR = ".unikernel-ops"


def run_under(umask, name, args, tmp):
    """run_module with the module's process under umask."""
    path = os.path.join(str(tmp), "args-%s.json" % name)
    with open(path, "w") as f:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_tmpdir=str(tmp))}, f)
    proc = subprocess.run([sys.executable, os.path.join(MODULES, name + ".py"), path],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, umask=umask, timeout=120,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS_PATH), check=False)
    out = proc.stdout.decode("utf-8", "replace")
    result = json.loads(out[out.index("{"):])
    assert proc.returncode == 0, result
    return result


def modes(root):
    """{relative path: permission bits} of everything under root, root itself as '.'."""
    out = {".": stat.S_IMODE(os.lstat(root).st_mode)}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            p = os.path.join(base, name)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def source(root, text):
    os.makedirs(os.path.join(root, "sub"))
    with open(os.path.join(root, "sub", "page.html"), "w") as f:
        f.write(text)
    return root


@pytest.mark.parametrize("umask", UMASKS, ids=["umask%03o" % u for u in UMASKS])
def test_volumes_follow_the_umask_and_our_state_is_owner_only(tmp_path, umask):
    ops = str(tmp_path / "home" / "ops")  # neither exists yet: every folder is ours to make
    src = source(str(tmp_path / "src"), "one\n")
    volume = run_under(umask, "ops_volume", {"name": "site", "source": src, "ops_dir": ops},
                       tmp_path)["volume"]
    got = modes(str(tmp_path / "home"))
    want = {}
    for path in got:
        full = os.path.join(str(tmp_path / "home"), path)
        if STATE_DIR in path.split(os.sep):
            want[path] = 0o700 if os.path.isdir(full) else 0o600
        elif os.path.isdir(full):  # the ops home and volumes/, as ops makes them (0755 less the umask)
            want[path] = 0o755 & ~umask
        else:
            want[path] = 0o644 & ~umask
    assert got == want
    assert "ops/volumes/%s" % os.path.basename(volume["path"]) in got
    assert "ops/%s/volumes/%s.json" % (STATE_DIR, volume["uuid"]) in got  # the fingerprint


@pytest.mark.parametrize("umask", UMASKS, ids=["umask%03o" % u for u in UMASKS])
def test_a_rebuild_keeps_the_mode_of_the_volume_it_replaces(tmp_path, umask):
    ops = str(tmp_path / "ops")
    args = {"name": "site", "ops_dir": ops, "force": True}
    path = run_under(0o022, "ops_volume", dict(args, source=source(str(tmp_path / "a"), "one\n")),
                     tmp_path)["volume"]["path"]
    os.chmod(path, 0o604)  # a mode no umask gives: the user's own choice
    ino = os.stat(path).st_ino
    result = run_under(umask, "ops_volume", dict(args, source=source(str(tmp_path / "b"), "two!\n")),
                       tmp_path)
    assert result["changed"] and result["actions"][0].startswith("rebuild "), result
    st = os.stat(path)
    assert st.st_ino != ino  # a new file was renamed into place ...
    assert stat.S_IMODE(st.st_mode) == 0o604  # ... with the old one's mode


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_a_rebuild_by_root_keeps_the_owner_of_the_volume(tmp_path):
    ops = str(tmp_path / "ops")
    args = {"name": "site", "ops_dir": ops, "force": True}
    path = run_under(0o022, "ops_volume", dict(args, source=source(str(tmp_path / "a"), "one\n")),
                     tmp_path)["volume"]["path"]
    os.chown(path, 4321, 4322)
    run_under(0o022, "ops_volume", dict(args, source=source(str(tmp_path / "b"), "two!\n")), tmp_path)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (4321, 4322, 0o644)


@pytest.mark.parametrize("umask", UMASKS, ids=["umask%03o" % u for u in UMASKS])
def test_image_files_follow_the_umask(tmp_path, c_programs, umask):
    ops = kernel_home(tmp_path / "ops")
    image = run_under(umask, "ops_image", {"name": "web", "program": c_programs["static"],
                                           "ops_dir": ops}, tmp_path)["image"]
    assert stat.S_IMODE(os.stat(image["path"]).st_mode) == 0o644 & ~umask
    assert modes(os.path.join(ops, STATE_DIR, "tmp")) == {".": 0o700}


HELPERS = r"""
import json, os, sys
from ansible_collections.unikernel.ops.plugins.module_utils import ops_home
home = ops_home.OpsHome(sys.argv[1])
home.ensure_dir(home.root)
for folder in (home.state(), home.state("volumes")):  # as an older run may have left them
    os.mkdir(folder)
    os.chmod(folder, 0o700)
for folder in (home.state("volumes"), home.state()):  # deepest first: 0277 takes our write
    os.chmod(folder, 0o777 & ~ops_home.current_umask())
ops_home.write_state(home.state("volumes", "fp.json"), {"a": 1})
ops_home.write_state(home.state("cloud", "aws", "snapshots", "snap.json"), {"b": 2})
home.ensure_dir(home.state("instances", "web"), 0o755)
with home.lock("volumes"):
    pass
with home.scratch_file() as fd:
    scratch = os.fstat(fd).st_mode & 0o777
print(json.dumps({"scratch": scratch, "umask": ops_home.current_umask()}))
"""


@pytest.mark.parametrize("umask", UMASKS + [0o277], ids=["umask%03o" % u for u in UMASKS + [0o277]])
def test_state_files_and_folders_are_owner_only_whatever_the_umask(tmp_path, umask):
    ops = str(tmp_path / "ops")
    proc = subprocess.run([sys.executable, "-c", HELPERS, ops], stdout=subprocess.PIPE, umask=umask,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS_PATH), check=True)
    out = json.loads(proc.stdout)
    assert out == {"scratch": 0o600, "umask": umask}
    got = modes(os.path.join(ops, STATE_DIR))
    assert got == {".": 0o700, "volumes": 0o700, "volumes/fp.json": 0o600, "cloud": 0o700,
                   "cloud/aws": 0o700, "cloud/aws/snapshots": 0o700,
                   "cloud/aws/snapshots/snap.json": 0o600, "instances": 0o700,
                   "instances/web": 0o700, "tmp": 0o700,
                   "volumes.lock": 0o600}
    # the ops home: as ops makes it, but one we can still write ourselves (umask 0277)
    assert stat.S_IMODE(os.stat(ops).st_mode) == (0o755 & ~umask) | 0o700
