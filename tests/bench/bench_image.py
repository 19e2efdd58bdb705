#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Image build benchmark: a first build against an unchanged re-run (the fingerprint check).

Uses a stand-in kernel release unless NANOS_RELEASE_DIR names a real one (a folder with
kernel.img, boot.img and klibs/); the program is a C program compiled here, dynamically linked.

Usage: python tests/bench/bench_image.py [--repeat N]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import shutil
import statistics
import tempfile
import time

import bench_common

from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-image-")
    try:
        release = bench_common.release(work)
        prog = bench_common.compile_program(work, "hello", bench_common.conftest.HELLO_C)
        images = LocalImages(os.path.join(work, ".ops"))

        def spec():
            return ImageSpec(name="bench", program=prog, args=["-v"], env={"A": "1"},
                             kernel=os.path.join(release, "kernel.img"),
                             boot=os.path.join(release, "boot.img"))
        builds, reruns = [], []
        for dummy in range(args.repeat):
            t = time.perf_counter()
            out = images.present(spec(), force=True)
            builds.append(time.perf_counter() - t)
            t = time.perf_counter()
            again = images.present(spec())
            reruns.append(time.perf_counter() - t)
            assert out.changed and not again.changed
        b, r = statistics.median(builds), statistics.median(reruns)
        print("kernel %s (%d bytes), image %d bytes, %d libraries" % (
            release, os.path.getsize(os.path.join(release, "kernel.img")), out.volume["size"],
            len(out.volume["libraries"])))
        print("  build            %8.4f s (median of %d)" % (b, args.repeat))
        print("  unchanged re-run %8.4f s   ratio %.2f of a build" % (r, r / b))
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
