# -*- coding: utf-8 -*-
"""Killed builds (issue 12, item 3): ops_volume, run as Ansible runs it, is killed (SIGKILL) at
seeded random points of rebuilding a 1 GiB volume and of creating one (whose data a forked
copier writes). After each kill no process of the killed run is left, the previous volume is
byte for byte what it was - or, when the kill came after the rename, the new volume, read back
with our reader and compared with its source byte for byte - and after the next run of any
module no staging file is left in the ops home.

Set KILL_SEED to replay a run; the seed is printed (and named in every assertion)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.conftest import COLLECTIONS_PATH
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import MODULES, run_module

UPDATE_KILLS = 14
CREATE_KILLS = 6
SEED = int(os.environ.get("KILL_SEED") or random.SystemRandom().randrange(1 << 31))


def make_source(root, variant):
    """3,000 small files in 30 folders (planning and encoding time), 4 files of 48 MiB (copying
    time: about 0.4 s for the whole build on the 2-CPU test machine) and a symlink. The
    variants differ in every file's size, so a rebuild from the other one is never a no-op."""
    rng = random.Random(variant)
    blob = rng.randbytes(2 << 20)
    os.makedirs(root)
    for d in range(30):
        os.mkdir(os.path.join(root, "d%02d" % d))
    for i in range(3000):
        with open(os.path.join(root, "d%02d" % (i % 30), "f%05d.txt" % i), "wb") as f:
            f.write(blob[i:i + 100 + (i * 37 + variant) % 4000])
    for i in range(4):
        with open(os.path.join(root, "big%d.bin" % i), "wb") as f:
            for j in range(48):
                f.write(blob[j + variant:j + variant + (1 << 20)])
        os.truncate(os.path.join(root, "big%d.bin" % i), (48 << 20) - 512 * variant - i)
    os.symlink("d00/f00000.txt", os.path.join(root, "first"))
    return root


def content_digest(path):
    """sha256 of a sparse file's size and of each data region with its offset (SEEK_DATA).

    Equal digests mean equal bytes (a hole reads as zeros), at a tenth of the time of hashing
    the 1 GiB that is mostly holes; the one way to differ without a byte changed is a region
    rewritten in place, which is itself what must not happen to the previous volume."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        h.update(b"%d;" % size)
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: only a hole is left
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            h.update(b"%d:%d;" % (start, end))
            while start < end:
                chunk = os.pread(fd, min(8 << 20, end - start), start)
                h.update(chunk)
                start += len(chunk)
            pos = end
    finally:
        os.close(fd)
    return h.hexdigest()


def assert_holds(volume, source, why):
    """The volume file, read with our reader, holds exactly the source tree."""
    want = {}
    for base, dirs, files in os.walk(source):
        for name in dirs + files:
            p = os.path.join(base, name)
            rel = "/" + os.path.relpath(p, source)
            if os.path.islink(p):
                want[rel] = ("symlink", os.readlink(p))
            elif os.path.isdir(p):
                want[rel] = ("directory", None)
            else:
                want[rel] = ("file", os.path.getsize(p))
    with TFS(volume) as tfs:
        have = {}
        for entry in tfs.walk():
            path = os.fsdecode(entry.path)
            have[path] = (entry.kind, os.fsdecode(entry.target) if entry.kind == "symlink"
                          else entry.size if entry.kind == "file" else None)
            if entry.kind == "file":
                with open(os.path.join(source, path.lstrip("/")), "rb") as f:
                    for chunk in tfs.iter_file(entry):
                        assert f.read(len(chunk)) == chunk, "%s: %s differs" % (why, path)
                    assert f.read(1) == b"", "%s: %s is short in the volume" % (why, path)
    assert have == want, why


def group_members(pgid, parent):
    """Live processes (zombies are gone, only not reaped yet) of the killed run: its process
    group, or children it left with another group."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X") and (int(fields[2]) == pgid or int(fields[1]) == parent):
            out.append(int(pid))
    return out


def staging_files(ops, pid=None):
    """Staging and temp files anywhere in the ops home (of one run when pid is given)."""
    mark = ".staging-%d." % pid if pid else ".staging-"
    found = []
    for base, dirs, files in os.walk(ops):
        for name in dirs + files:
            if name.startswith(mark) or (pid is None and name.endswith(".tmp")):
                found.append(os.path.join(base, name))
    return found


def start(name, args, tmp):
    path = os.path.join(str(tmp), "args-kill-%s.json" % name)
    with open(path, "w") as f:
        json.dump({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_tmpdir=str(tmp))}, f)
    # its own process group: what it forks is found by the group after it is gone
    return subprocess.Popen([sys.executable, os.path.join(MODULES, "ops_volume.py"), path],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=COLLECTIONS_PATH))


def kill_at(proc, delay):
    """SIGKILL proc `delay` seconds after it started; (finished by itself, copier was alive)."""
    time.sleep(max(0.0, delay - (time.monotonic() - proc.started)))
    finished = proc.poll() is not None
    helpers = [p for p in group_members(proc.pid, proc.pid) if p != proc.pid]
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return finished, bool(helpers)


def assert_nothing_left(proc, why):
    """Within half a second of the killed run's end (a copier killed with its parent is gone in
    a few ms, one left to find the end of its work by itself can take most of a second)."""
    t0 = time.monotonic()
    while group_members(proc.pid, proc.pid) and time.monotonic() < t0 + 0.5:
        time.sleep(0.005)
    assert group_members(proc.pid, proc.pid) == [], "%s: a process of the killed run is left" % why


def next_run_sweeps(ops, tmp, why):
    result, rc = run_module("ops_volume_info", {"ops_dir": ops}, tmp)
    assert rc == 0 and all("error" not in v for v in result["volumes"]), (why, result)
    assert staging_files(ops) == [], "%s: left after the next run" % why
    return result


def spread(rng, count, lo, hi):
    """count delays, one at a random point of each of count equal slices of [lo, hi), shuffled:
    every phase of the build gets kills, in no fixed order."""
    delays = [lo + (hi - lo) * (k + rng.random()) / count for k in range(count)]
    rng.shuffle(delays)
    return delays


def kill_inside_the_build(kill_once, delays, phases, inside, early, what, attempts=6):
    """kill_once(i, delay) at each delay, then retried: on a loaded machine the timed run can
    mislead the spread, so when no kill landed inside the build (phase `inside`), kill again
    between the latest kill that came too early (a phase in `early`) and the earliest that came
    too late, until one lands there (each extra kill is checked like the others). Fails when none
    did; `what` says what the build was doing then."""
    for i, delay in enumerate(delays):
        kill_once(i, delay)
    for i in range(len(delays), len(delays) + attempts):
        if inside in [p[1] for p in phases]:
            break
        lo = max([d for d, p in phases if p in early] or [0.0])
        hi = min([d for d, p in phases if p not in early and d > lo] or [lo * 2 + 0.2])
        kill_once(i, (lo + hi) / 2)
    print("kills (delay, phase; one must land while %s): %s" % (what, phases))
    assert inside in [p[1] for p in phases], \
        "KILL_SEED=%d: no kill landed while %s: %s" % (SEED, what, phases)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    base = tmp_path_factory.mktemp("killed-builds")
    return {"A": make_source(str(base / "A"), 0), "B": make_source(str(base / "B"), 1),
            "base": base}


def test_a_killed_build_leaves_nothing_and_the_volume_intact(sources, tmp_path):
    print("KILL_SEED=%d" % SEED)
    rng = random.Random(SEED)
    ops = str(tmp_path / "ops")
    args = dict(name="v", size="1g", force=True, ops_dir=ops)
    result, rc = run_module("ops_volume", dict(args, source=sources["A"]), tmp_path)
    assert rc == 0, result
    volume = result["volume"]["path"]
    uuid = result["volume"]["uuid"]
    # One whole rebuild, timed: the kills are spread over the same span.
    proc = start("timed", dict(args, source=sources["B"]), tmp_path)
    t0 = time.monotonic()
    assert proc.wait() == 0
    whole = time.monotonic() - t0
    print("a whole rebuild takes %.2f s" % whole)
    phases = []
    state = {"holds": "B"}

    def kill_once(i, delay):
        target = "A" if state["holds"] == "B" else "B"
        why = "KILL_SEED=%d, update kill %d at %.3f s" % (SEED, i, delay)
        before, ino = content_digest(volume), os.stat(volume).st_ino
        proc = start("update", dict(args, source=sources[target]), tmp_path)
        proc.started = time.monotonic()
        finished = kill_at(proc, delay)[0]
        assert_nothing_left(proc, why)
        left = staging_files(ops, proc.pid)
        assert glob.glob(os.path.join(ops, "volumes", "*.raw")) == [volume], why
        if content_digest(volume) == before:
            assert not finished and os.stat(volume).st_ino == ino, why
            phase = "building" if left else "before the build"
        else:  # the kill came after the rename: the new volume, whole
            assert_holds(volume, sources[target], why)
            state["holds"] = target
            phase = "finished" if finished else "replaced"
        phases.append((round(delay, 3), phase))
        info = next_run_sweeps(ops, tmp_path, why)
        assert [v["uuid"] for v in info["volumes"]] == [uuid], why

    kill_inside_the_build(kill_once, spread(rng, UPDATE_KILLS, 0.3 * whole, 1.05 * whole), phases,
                          "building", ("before the build",), "the volume was being built")
    assert_holds(volume, sources[state["holds"]], "KILL_SEED=%d, at the end" % SEED)


def test_a_killed_create_leaves_no_copier_and_no_volume(sources, tmp_path):
    """A new volume's data is copied by a forked copier while the module plans: it dies with
    the module, and nothing but a whole volume appears."""
    print("KILL_SEED=%d" % SEED)
    rng = random.Random(SEED + 1)
    ops = str(tmp_path / "ops")
    result, rc = run_module("ops_volume", {"name": "timed", "size": "1g", "ops_dir": ops,
                                           "source": sources["B"]}, tmp_path)
    assert rc == 0, result
    proc = start("timed", {"name": "timed2", "size": "1g", "ops_dir": ops,
                           "source": sources["B"]}, tmp_path)
    t0 = time.monotonic()
    assert proc.wait() == 0
    whole = time.monotonic() - t0
    keep = sorted(glob.glob(os.path.join(ops, "volumes", "*.raw")))
    phases = []

    def kill_once(i, delay):
        why = "KILL_SEED=%d, create kill %d at %.3f s" % (SEED, i, delay)
        name = "fresh%d" % i
        proc = start(name, {"name": name, "size": "1g", "ops_dir": ops,
                            "source": sources["B"]}, tmp_path)
        proc.started = time.monotonic()
        finished, copier = kill_at(proc, delay)
        assert_nothing_left(proc, why)
        made = glob.glob(os.path.join(ops, "volumes", name + ":*.raw"))
        if made:
            assert_holds(made[0], sources["B"], why)
        phases.append((round(delay, 3), "copier running" if copier else
                       "finished" if finished else "made" if made else "no copier"))
        next_run_sweeps(ops, tmp_path, why)
        for path in made:
            os.unlink(path)
        assert sorted(glob.glob(os.path.join(ops, "volumes", "*.raw"))) == keep, why

    kill_inside_the_build(kill_once, spread(rng, CREATE_KILLS, 0.4 * whole, 0.95 * whole), phases,
                          "copier running", ("no copier",), "the copier ran")
