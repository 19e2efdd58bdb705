#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""The GCP upload's archive: a 10 GiB volume holding 200 MB in 2,000 files, as the .tar.gz of
disk.raw that Compute Engine imports, streamed by cloud/targz.py, next to GNU tar writing the
same archive (`tar --format=oldgnu -Sczf`, Google's documented command) in the same run.

Printed: the archive's bytes against the volume's data bytes, and the time of ours and of GNU
tar, --repeat times interleaved (tar, ours, tar, ours, ...), median and min-max, with the ratio
pair by pair. The upload itself is not timed here (the emulator is in-memory and local).

Usage: python tests/bench/bench_gcp.py [--repeat N] [--scale F]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time

# bench_common makes ansible_collections.unikernel.ops importable
import bench_common  # noqa: F401 pylint: disable=unused-import

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.blocks import data_ranges  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.targz import targz_chunks  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes  # noqa: E402


def spread(values):
    return "%.3f (%.3f-%.3f)" % (statistics.median(values), min(values), max(values))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-gcp-")
    try:
        src = os.path.join(work, "src")
        files = int(2000 * args.scale)
        for i in range(files):
            d = os.path.join(src, "d%02d" % (i % 20))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%04d.bin" % i), "wb") as f:
                f.write(os.urandom(100 * 1000))
        vol = OnPremVolumes(os.path.join(work, ".ops")).present(
            VolumeSpec(name="bench", source=src, size="10g")).volume
        raw = os.path.join(work, "disk.raw")
        os.rename(vol["path"], raw)
        size = os.path.getsize(raw)
        with open(raw, "rb") as f:
            data = sum(e - s for s, e in data_ranges(f.fileno(), size))
        print("volume %d bytes (10 GiB), %d files of 100 KB, %d bytes in its data regions"
              % (size, files, data))
        ours, theirs, ratios, out_bytes, tar_bytes = [], [], [], 0, 0
        for dummy in range(args.repeat):
            t0 = time.monotonic()
            with open(os.path.join(work, "tar.tar.gz"), "wb") as out:
                subprocess.run(["tar", "--format=oldgnu", "-Sczf", "-", "disk.raw"], cwd=work,
                               stdout=out, check=True)
            theirs.append(time.monotonic() - t0)
            tar_bytes = os.path.getsize(os.path.join(work, "tar.tar.gz"))
            t0 = time.monotonic()
            n = 0
            with open(raw, "rb") as f:
                for chunk in targz_chunks(f.fileno(), size):
                    n += len(chunk)
            ours.append(time.monotonic() - t0)
            out_bytes = n
            ratios.append(theirs[-1] / ours[-1])
        print("archive bytes: ours %d (%.3fx the data), GNU tar %d (%.3fx)"
              % (out_bytes, out_bytes / data, tar_bytes, tar_bytes / data))
        print("time, %d interleaved pairs: ours %s s, GNU tar %s s, ratio tar/ours %s x"
              % (args.repeat, spread(ours), spread(theirs), spread(ratios)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
