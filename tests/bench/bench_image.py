#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Image build benchmark: a build (forced) against an unchanged re-run (the fingerprint check).

The re-run is the baseline: --repeat (default 10, at least 7) interleaved pairs, re-run then
build, each printed as median and min-max, and the ratio build/re-run computed pair by pair
(how many times a build costs what proving "no change" costs).

Uses a stand-in kernel release unless NANOS_RELEASE_DIR names a real one (a folder with
kernel.img, boot.img and klibs/); the program is a C program compiled here, dynamically linked.

Usage: python tests/bench/bench_image.py [--repeat N]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import shutil
import tempfile
import time

import bench_common

from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10,
                    help="interleaved pairs (at least %d)" % bench_common.REPEAT)
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
        last = {"out": images.present(spec(), force=True)}  # the first re-run has an image

        def rerun():
            t = time.perf_counter()
            again = images.present(spec())
            t = time.perf_counter() - t
            assert not again.changed
            return t

        def build():
            t = time.perf_counter()
            last["out"] = images.present(spec(), force=True)
            t = time.perf_counter() - t
            assert last["out"].changed
            return t

        pairs = bench_common.Pairs("build", "unchanged re-run").run(
            rerun, build, max(args.repeat, bench_common.REPEAT))
        out = last["out"]
        print("kernel %s (%d bytes), image %d bytes, %d libraries" % (
            release, os.path.getsize(os.path.join(release, "kernel.img")), out.volume["size"],
            len(out.volume["libraries"])))
        pairs.report(scale=1000, unit="ms", fmt="%.2f")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
