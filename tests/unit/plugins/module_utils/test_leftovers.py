# -*- coding: utf-8 -*-
"""Nothing outlives a killed run: staging files name their owner, and the next run of any module
removes those whose owner is gone (whatever their age), and keeps those of a run still going;
the copier of a build dies with the build."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils import ops_home
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome
from ansible_collections.unikernel.ops.tests.unit.conftest import COLLECTIONS_PATH

MODULES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..",
                       "plugins", "modules")


def dead_pid():
    """The pid of a process that has just exited (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_staging_names_say_their_owner():
    name = ops_home.staging_prefix()
    m = ops_home._OWNER.match(name)  # pylint: disable=protected-access
    assert m and int(m.group(1)) == os.getpid()
    assert m.group(2) == ops_home.process_start(os.getpid())
    assert ops_home.process_start(dead_pid()) is None


def test_any_module_removes_what_killed_runs_left(tmp_path):
    home = OpsHome(str(tmp_path / "ops"))
    home.ensure_dir(home.volumes, 0o755)
    tmp = home.ensure_dir(home.state("tmp"), 0o700)
    # a child that stays alive while we look: its files are a run that is still going
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        files = {
            "killed": os.path.join(tmp, ".staging-%d.12345-abc.raw" % dead_pid()),
            "reused pid": os.path.join(home.volumes, ".staging-%d.1-abc.raw" % alive.pid),
            "running": os.path.join(tmp, ".staging-%d.%s-abc.raw"
                                    % (alive.pid, ops_home.process_start(alive.pid))),
            "old style, new": os.path.join(tmp, ".staging-abc.raw"),
            "old style, old": os.path.join(tmp, ".staging-def.raw"),
            "not ours": os.path.join(home.volumes, "data:0000.raw"),
        }
        for path in files.values():
            with open(path, "wb") as f:
                f.write(b"x" * 4096)
        day_ago = time.time() - 2 * 24 * 3600
        os.utime(files["old style, old"], (day_ago, day_ago))
        args = tmp_path / "args.json"
        args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"ops_dir": home.root}}))
        # a read-only module: it sweeps too
        run = subprocess.run([sys.executable, os.path.join(MODULES, "ops_kernel_info.py"),
                              str(args)], stdout=subprocess.PIPE, check=False,
                             env=dict(os.environ, PYTHONPATH=COLLECTIONS_PATH))
        assert run.returncode == 0, run.stdout
        left = dict((k, os.path.exists(p)) for k, p in files.items())
        assert left == {"killed": False, "reused pid": False, "running": True,
                        "old style, new": True, "old style, old": False, "not ours": True}
    finally:
        alive.kill()
        alive.wait()


def test_a_copier_dies_with_its_build(tmp_path):
    """die_with: a forked child of a process that is killed gets SIGKILL at once."""
    script = tmp_path / "build.py"
    script.write_text(
        "import os, sys, time\n"
        "sys.path.insert(0, %r)\n"
        "from ansible_collections.unikernel.ops.plugins.module_utils.tfs.writer import die_with\n"
        "parent = os.getpid()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    die_with(parent)\n"
        "    import ctypes\n"
        "    sig = ctypes.c_int(0)\n"
        "    ctypes.CDLL(None).prctl(2, ctypes.byref(sig), 0, 0, 0)  # PR_GET_PDEATHSIG\n"
        "    print(os.getpid(), sig.value, flush=True)\n"
        "    time.sleep(60)\n"
        "    os._exit(0)\n"
        "time.sleep(60)\n" % COLLECTIONS_PATH)
    build = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE)
    child, sig = map(int, build.stdout.readline().split())
    assert sig == signal.SIGKILL  # the copier asked the kernel to kill it with its parent
    build.send_signal(signal.SIGKILL)
    build.wait()
    # at once, not when something else gets round to orphans (an orphan that sleeps on is
    # still there after a second on these machines)
    deadline = time.monotonic() + 0.5
    while ops_home.process_start(child) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ops_home.process_start(child) is None, "the copier outlived its build"


def test_state_files_are_staged_under_their_owner_and_swept(tmp_path):
    """write_state's temp file names its owner, beside the state file: the next run removes a
    killed run's one wherever in the state folder it is, and a failed write leaves none."""
    home = OpsHome(str(tmp_path / "ops"))
    fingerprint = home.state("volumes", "f.json")
    ops_home.write_state(fingerprint, {"a": 1})
    with pytest.raises(TypeError):
        ops_home.write_state(fingerprint, {"a": object()})  # fails half-way through the dump
    assert os.listdir(os.path.dirname(fingerprint)) == ["f.json"]
    assert ops_home.read_state(fingerprint) == {"a": 1}
    dead = dead_pid()
    left = [home.state("volumes", ".staging-%d.777-abc.json" % dead),
            home.state("cloud", "aws", "snapshots", ".staging-%d.777-abc.json" % dead)]
    mine = home.state("volumes", ops_home.staging_prefix() + "abc.json")  # a run still going
    for path in left + [mine]:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("{")
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"ops_dir": home.root}}))
    run = subprocess.run([sys.executable, os.path.join(MODULES, "ops_volume_info.py"), str(args)],
                         stdout=subprocess.PIPE, check=False,
                         env=dict(os.environ, PYTHONPATH=COLLECTIONS_PATH))
    assert run.returncode == 0, run.stdout
    assert [os.path.exists(p) for p in left + [mine]] == [False, False, True]
