#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Volume build benchmark: our TFS writer against the kernel's own copy, measured in one run.

  (a) 4 files totalling 1 GiB          baseline: cp -r of the tree (copy_file_range)
  (b) 50,000 files of 10 B - 4 KB       baseline: tar -cf of the tree into one file
      in 100 directories

Each case runs --repeat (default 7) interleaved pairs, baseline then ours, with `sync` before
each so that one run's writeback does not land in the next; the page cache is warm for both.
Printed per case: the median and min-max of ours, of the baseline, and of the ratio
ours/baseline computed pair by pair. Also printed: the idempotent re-run (what a second
`ansible-playbook` costs) and, when the environment variable NANOS_MKFS names a Nanos mkfs
binary, that tool on the same trees (its ratio to the baseline, pair by pair, too).

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
    pairs = bench_common.Pairs("ours (create)", baseline_name)
    mkfs_pairs = bench_common.Pairs("Nanos mkfs", baseline_name)
    reruns = []
    mkfs = os.environ.get("NANOS_MKFS")

    def baseline():
        rm(out)
        t = timed(lambda: subprocess.run(baseline_argv(out), check=True))
        rm(out)
        return t

    def ours():
        rm(ops_dir)
        provider = OnPremVolumes(ops_dir=ops_dir)
        t = timed(lambda: provider.present(VolumeSpec(name="bench", source=src)))
        result = {}
        reruns.append(timed(lambda: result.update(
            out=provider.present(VolumeSpec(name="bench", source=src)))))
        assert not result["out"].changed
        rm(ops_dir)
        return t

    def nanos_mkfs():
        manifest = os.path.join(work, "manifest")
        with open(manifest, "w") as f:
            f.write(_mkfs_manifest(src))
        with open(manifest) as stdin:
            t = timed(lambda: subprocess.run([mkfs, os.path.join(work, "mkfs.img")], stdin=stdin,
                                             check=True, stdout=subprocess.DEVNULL))
        rm(os.path.join(work, "mkfs.img"))
        return t

    for dummy in range(repeat):  # baseline, ours (and its re-run), [baseline, mkfs], ...
        pairs.run(baseline, ours, 1)
        if mkfs:
            mkfs_pairs.run(baseline, nanos_mkfs, 1)
    print("\n(%s) %d files, %.1f MiB; median (min-max) of %d interleaved pairs" % (
        label, nfiles, nbytes / 1024 ** 2, repeat))
    pairs.report()
    base, ours_t = (statistics.median(x) for x in (pairs.baseline, pairs.ours))
    print("  throughput: ours %.1f MiB/s, %.0f files/s; %s %.1f MiB/s, %.0f files/s" % (
        nbytes / ours_t / 1024 ** 2, nfiles / ours_t, baseline_name, nbytes / base / 1024 ** 2,
        nfiles / base))
    print("  ours (unchanged re-run)  %s" % bench_common.spread(reruns, unit=" s"))
    if mkfs:
        mkfs_pairs.report()
    return pairs


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
    ap.add_argument("--repeat", type=int, default=bench_common.REPEAT,
                    help="interleaved pairs per case (default %(default)s)")
    ap.add_argument("--only", choices=["a", "b"])
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the trees for a quick look")
    args = ap.parse_args()
    rm(args.dir)
    os.makedirs(args.dir)
    goals = {"a": 1.3, "b": 1.5}
    try:
        print("work folder %s, %d interleaved pairs per case" % (args.dir, args.repeat))
        results = {}
        if args.only in (None, "a"):
            src = os.path.join(args.dir, "tree-a")
            make_big_tree(src, args.scale)
            results["a"] = bench_tree("a", src, args.dir, "cp -r",
                                      lambda out: ["cp", "-r", src, out], args.repeat)
            rm(src)
        if args.only in (None, "b"):
            src = os.path.join(args.dir, "tree-b")
            make_small_tree(src, args.scale)
            results["b"] = bench_tree("b", src, args.dir, "tar -cf",
                                      lambda out: ["tar", "-cf", out, "-C", src, "."], args.repeat)
        print("\nsummary, ratio ours/baseline, median (min-max) of the pairs: " + "; ".join(
            "(%s) %s, goal <= %.1fx: %s" % (
                k, bench_common.spread(p.ratios, fmt="%.2f", unit="x"), goals[k],
                "met" if p.ratio <= goals[k] else "NOT met")
            for k, p in sorted(results.items())))
    finally:
        rm(args.dir)


if __name__ == "__main__":
    main()
