#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""Hot-plug benchmark on a running QEMU (TCG): instance start time, then attach and detach
latency, each an ops_mount engine call with its QMP read-back.

Baseline, measured in the same run: one QMP round trip (connect, `query-block`, close) to the
same QEMU, the least any engine call costs. --repeat (default 20, at least 7) rounds of
query, attach, query, detach; printed: median and min-max of each, and the ratios
attach/query and detach/query computed pair by pair.

The guest is a stand-in image that idles unless NANOS_RELEASE_DIR names a real Nanos release
(kernel.img, boot.img), in which case a real Nanos guest boots and sees every attach.

Usage: python tests/bench/bench_hotplug.py [--repeat N]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import os
import shutil
import tempfile
import time

import bench_common

from ansible_collections.unikernel.ops.plugins.module_utils.local import instances, mounts, records  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=20,
                    help="rounds (at least %d)" % bench_common.REPEAT)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-hotplug-")
    home = os.path.join(work, ".ops")
    store = records.InstanceStore(home)
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
        inst = store.find("bench")[0]

        def query():
            t = time.perf_counter()
            with QMPSession(inst.qmp_address, timeout=10) as qmp:
                qmp.execute("query-block")
            return time.perf_counter() - t

        def attach():
            t = time.perf_counter()
            assert mounts.ensure_attached(store, "bench", "hot", attach_id=1).changed
            return time.perf_counter() - t

        def detach():
            t = time.perf_counter()
            assert mounts.ensure_detached(store, "bench", "hot").changed
            return time.perf_counter() - t

        attaches = bench_common.Pairs("attach", "QMP query-block")
        detaches = bench_common.Pairs("detach", "QMP query-block")
        for dummy in range(max(args.repeat, bench_common.REPEAT)):
            attaches.run(query, attach, 1)
            detaches.run(query, detach, 1)
        print("guest: %s, accel %s" % ("Nanos " + release if bench_common.real_kernel()
                                       else "stand-in (idles)", out.volume["settings"]["accel"]))
        print("  instance start (to QMP ready%s) %8.1f ms" % (
            ", guest program running" if params["wait_for"] else "", start * 1000))
        attaches.report(scale=1000, unit="ms", fmt="%.1f")
        detaches.report(scale=1000, unit="ms", fmt="%.1f")
        print("  (detach waits for DEVICE_DELETED)")
    finally:
        for inst in store.records()[0]:
            store.stop(inst, 0.5)
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
