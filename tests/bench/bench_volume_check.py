#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""The damaged-volume check (volumes/store.check_volume_file) that an image build, a grow, a
re-run, a boot and a hot-plug now make of each volume they use: its cost against a full read.

Two 1 GiB volumes: (a) --files small files (default 20,000, 10 B - 4 KB) in 100 directories,
(b) 4 files of 200 MiB.
Two baselines, each measured in the same run against the check: (1) a full read with our
reader, every file's data included - what the check avoids; (2) reading the volume file once
from start to end, raw (mostly holes, so the floor of any read of it). --repeat (default 7)
interleaved pairs each, baseline then ours, page cache warm for both; printed: median and
min-max of each and of the ratio ours/baseline pair by pair.

Usage: python tests/bench/bench_volume_check.py [--dir DIR] [--repeat N] [--files N]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import glob
import os
import random
import shutil
import tempfile
import time

import bench_common

from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import check_volume_file  # noqa: E402


def make_small_files(root, count):
    rng = random.Random(42)
    for i in range(count):
        sub = os.path.join(root, "dir-%03d" % (i % 100))
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, "file-%05d.dat" % i), "wb") as f:
            f.write(os.urandom(rng.randint(10, 4096)))


def make_big_files(root, dummy):
    os.makedirs(root)
    chunk = os.urandom(8 << 20)
    for i in range(4):
        with open(os.path.join(root, "blob-%d.bin" % i), "wb") as f:
            for dummy_chunk in range(25):
                f.write(chunk)
            f.write(os.urandom(16))  # files differ


def read_all(path):
    t0 = time.perf_counter()
    with open(path, "rb", buffering=0) as f:
        while f.read(8 << 20):
            pass
    return time.perf_counter() - t0


def full_read(path):
    t0 = time.perf_counter()
    with TFS(path) as tfs:
        for entry in tfs.walk():
            if entry.kind == "file":
                for dummy in tfs.iter_file(entry):
                    pass
    return time.perf_counter() - t0


def check(path):
    t0 = time.perf_counter()
    check_volume_file(path, "checked")
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", help="work folder (default: a temporary one)")
    ap.add_argument("--repeat", type=int, default=bench_common.REPEAT)
    ap.add_argument("--files", type=int, default=20000)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-volume-check-", dir=args.dir)
    repeat = max(args.repeat, bench_common.REPEAT)
    try:
        for case, make, label in (("a", make_small_files, "%d files of 10 B - 4 KB" % args.files),
                                  ("b", make_big_files, "4 files of 200 MiB")):
            src = os.path.join(work, "src-" + case)
            make(src, args.files)
            ops = os.path.join(work, "ops-" + case)
            OnPremVolumes(ops).present(VolumeSpec(name="bench", source=src, size="1g"))
            (path,) = glob.glob(os.path.join(ops, "volumes", "bench:*.raw"))
            read_all(path)  # warm the page cache for both sides
            print("(%s) 1 GiB volume, %s:" % (case, label))
            for baseline_name, baseline in (("full read (our reader)", full_read),
                                            ("raw read of the file", read_all)):
                pairs = bench_common.Pairs("check_volume_file", baseline_name)
                pairs.run(lambda: baseline(path), lambda: check(path), repeat)
                pairs.report(scale=1000, unit="ms", fmt="%.1f")
            shutil.rmtree(src)
            shutil.rmtree(ops)
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
