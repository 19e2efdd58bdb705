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
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
conftest = importlib.import_module("conftest")  # makes ansible_collections.unikernel.ops importable

from ansible_collections.unikernel.ops.plugins.module_utils.image_store import LocalImages  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.manifest import ImageSpec  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-image-")
    try:
        release = os.environ.get("NANOS_RELEASE_DIR") or conftest.make_release(work, "0.0.0")
        src = os.path.join(work, "hello.c")
        with open(src, "wb") as f:
            f.write(conftest.HELLO_C)
        prog = os.path.join(work, "hello")
        subprocess.run(["gcc", "-O1", "-o", prog, src], check=True)
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
