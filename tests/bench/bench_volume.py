#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Volume build benchmark: our TFS writer against the kernel's own copy, measured in one run.

  (a) 4 files totalling 1 GiB          baseline: cp -r of the tree (copy_file_range)
  (b) 50,000 files of 10 B - 4 KB       baseline: tar -cf of the tree into one file
      in 100 directories

Each figure is the median of --repeat runs, alternating baseline and ours, with `sync` before
each so that one run's writeback does not land in the next; the page cache is warm for both.
Also printed: the idempotent re-run (what a second `ansible-playbook` costs) and, when the
environment variable NANOS_MKFS names a Nanos mkfs binary, that tool on the same trees.

Usage: python tests/bench/bench_volume.py [--dir DIR] [--repeat N] [--only a|b] [--scale F]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import random
import shutil
import statistics
import subprocess
import time

import bench_common

from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec  # noqa: E402

GIB = 1024 ** 3


def make_big_tree(root, scale):
    os.makedirs(root)
    each = int(GIB * scale) // 4
    chunk = os.urandom(8 * 1024 * 1024)
    for i in range(4):
        with open(os.path.join(root, "blob-%d.bin" % i), "wb") as f:
            left = each
            while left:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
            f.write(os.urandom(16))  # files differ
    return 4


def make_small_tree(root, scale):
    rng = random.Random(42)
    count = int(50000 * scale)
    per_dir = max(1, count // 100)
    made = 0
    for d in range(100):
        sub = os.path.join(root, "dir-%03d" % d)
        os.makedirs(sub)
        for i in range(per_dir):
            with open(os.path.join(sub, "file-%05d.dat" % i), "wb") as f:
                f.write(os.urandom(rng.randint(10, 4096)))
            made += 1
    return made


def tree_bytes(root):
    total = 0
    for dirpath, dummy, files in os.walk(root):
        for f in files:
            total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def timed(fn):
    subprocess.run(["sync"], check=True)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def rm(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def bench_tree(label, src, work, baseline_name, baseline_argv, repeat):
    nfiles = sum(len(entry[2]) for entry in os.walk(src))
    nbytes = tree_bytes(src)
    out = os.path.join(work, "out")
    ops_dir = os.path.join(work, "ops-home")
    base_times, our_times, rerun_times, mkfs_times = [], [], [], []
    mkfs = os.environ.get("NANOS_MKFS")
    for dummy in range(repeat):
        rm(out)
        rm(ops_dir)
        base_times.append(timed(lambda: subprocess.run(baseline_argv(out), check=True)))
        rm(out)
        provider = OnPremVolumes(ops_dir=ops_dir)
        our_times.append(timed(lambda: provider.present(VolumeSpec(name="bench", source=src))))
        result = {}
        rerun_times.append(timed(lambda: result.update(
            out=provider.present(VolumeSpec(name="bench", source=src)))))
        assert not result["out"].changed
        if mkfs:
            manifest = os.path.join(work, "manifest")
            with open(manifest, "w") as f:
                f.write(_mkfs_manifest(src))
            with open(manifest) as stdin:
                mkfs_times.append(timed(lambda: subprocess.run(
                    [mkfs, os.path.join(work, "mkfs.img")], stdin=stdin, check=True,
                    stdout=subprocess.DEVNULL)))
            rm(os.path.join(work, "mkfs.img"))
    rm(out)
    rm(ops_dir)
    base, ours, rerun = (statistics.median(x) for x in (base_times, our_times, rerun_times))
    print("\n(%s) %d files, %.1f MiB" % (label, nfiles, nbytes / 1024 ** 2))
    print("  %-28s %8.3f s  %9.1f MiB/s  %10.0f files/s" % (baseline_name, base, nbytes / base / 1024 ** 2, nfiles / base))
    print("  %-28s %8.3f s  %9.1f MiB/s  %10.0f files/s" % ("ops_volume engine (create)", ours, nbytes / ours / 1024 ** 2, nfiles / ours))
    print("  %-28s %8.3f s" % ("ops_volume engine (re-run)", rerun))
    if mkfs_times:
        m = statistics.median(mkfs_times)
        print("  %-28s %8.3f s  ratio to baseline %.2fx" % ("Nanos mkfs", m, m / base))
    print("  ratio ours / %s: %.2fx   (runs: baseline %s, ours %s)" % (
        baseline_name, ours / base, " ".join("%.3f" % t for t in base_times),
        " ".join("%.3f" % t for t in our_times)))
    return ours / base


def _mkfs_manifest(src):
    def rec(path):
        parts = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.islink(full):
                parts.append('"%s":(linktarget:"%s")' % (name, os.readlink(full)))
            elif os.path.isdir(full):
                parts.append('"%s":(children:(%s))' % (name, rec(full)))
            else:
                parts.append('"%s":(contents:(host:"%s"))' % (name, full))
        return " ".join(parts)
    return "(children:(%s))" % rec(src)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.path.join(bench_common.REPO, ".build", "bench"),
                    help="work folder, on the disk to measure (default .build/bench)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", choices=["a", "b"])
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the trees for a quick look")
    args = ap.parse_args()
    rm(args.dir)
    os.makedirs(args.dir)
    try:
        print("work folder %s, %d repeats, median shown" % (args.dir, args.repeat))
        ratios = {}
        if args.only in (None, "a"):
            src = os.path.join(args.dir, "tree-a")
            make_big_tree(src, args.scale)
            ratios["a"] = bench_tree("a", src, args.dir, "cp -r",
                                     lambda out: ["cp", "-r", src, out], args.repeat)
            rm(src)
        if args.only in (None, "b"):
            src = os.path.join(args.dir, "tree-b")
            make_small_tree(src, args.scale)
            ratios["b"] = bench_tree("b", src, args.dir, "tar -cf",
                                     lambda out: ["tar", "-cf", out, "-C", src, "."], args.repeat)
        print("\nsummary: " + ", ".join("(%s) %.2fx" % kv for kv in sorted(ratios.items()))
              + "   goals: (a) <= 1.3x cp -r, (b) <= 1.5x tar -cf")
    finally:
        rm(args.dir)


if __name__ == "__main__":
    main()
