#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Hot-plug benchmark on a running QEMU (TCG): instance start time, then attach and detach
latency (median of --repeat), each an ops_mount engine call with its QMP read-back.

The guest is a stand-in image that idles unless NANOS_RELEASE_DIR names a real Nanos release
(kernel.img, boot.img), in which case a real Nanos guest boots and sees every attach.

Usage: python tests/bench/bench_hotplug.py [--repeat N]
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

from ansible_collections.unikernel.ops.plugins.module_utils.local import instances, mounts  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-hotplug-")
    home = os.path.join(work, ".ops")
    store = instances.InstanceStore(home)
    try:
        release = bench_common.release(work)
        prog = bench_common.compile_program(  # a guest program that stays up
            work, "idle", b'#include <stdio.h>\n#include <unistd.h>\n'
            b'int main(void) { puts("ready"); fflush(stdout); sleep(3600); return 0; }\n', static=True)
        OnPremVolumes(home).present(VolumeSpec(name="hot"))
        LocalImages(home).present(ImageSpec(name="bench", program=prog, mounts={"%1": "/hot"},
                                            kernel=os.path.join(release, "kernel.img"),
                                            boot=os.path.join(release, "boot.img")))
        params = dict(name="bench", image="bench", state="running", memory="256M", cpus=1,
                      ports=[], volumes=[], shares={}, accel="auto", timeout=30,
                      wait_for="ready" if bench_common.real_kernel() else None,
                      stop_timeout=1, force=False)
        t = time.perf_counter()
        out, dummy = instances.ensure_state(store, params)
        start = time.perf_counter() - t
        attach, detach = [], []
        for dummy in range(args.repeat):
            t = time.perf_counter()
            assert mounts.ensure_attached(store, "bench", "hot", attach_id=1).changed
            attach.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert mounts.ensure_detached(store, "bench", "hot").changed
            detach.append(time.perf_counter() - t)
        print("guest: %s, accel %s" % ("Nanos " + release if bench_common.real_kernel()
                                       else "stand-in (idles)", out.volume["settings"]["accel"]))
        print("  instance start (to QMP ready%s) %8.1f ms" % (
            ", guest program running" if params["wait_for"] else "", start * 1000))
        print("  attach  median %6.1f ms  (min %.1f, max %.1f, n=%d)" % (
            statistics.median(attach) * 1000, min(attach) * 1000, max(attach) * 1000, len(attach)))
        print("  detach  median %6.1f ms  (min %.1f, max %.1f, n=%d; waits for DEVICE_DELETED)" % (
            statistics.median(detach) * 1000, min(detach) * 1000, max(detach) * 1000, len(detach)))
    finally:
        for inst in store.records()[0]:
            store.stop(inst, 0.5)
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
