#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""The Azure upload: a volume holding 50 MB in 500 files, as the fixed VHD the collection writes,
sent to a page blob on Azurite (in memory, on loopback) two ways in the same run:

* ours (cloud/azure/pages.py): only the runs of non-zero 512-byte pages, from the data regions
  of the sparse file, 8 requests in flight;
* the baseline: azure-storage-blob's own page-blob upload (``upload_blob(blob_type=PageBlob)``,
  4 MiB chunks, which skips all-zero chunks and sends every other chunk whole).

Printed: the bytes each sends against the VHD's non-zero bytes (and what ops sends, the whole
file), and the time of each, --repeat times interleaved (baseline, ours, baseline, ours...),
median and min-max, with the ratio baseline/ours pair by pair.

Usage: python tests/bench/bench_azure.py [--repeat N] [--size-gib G]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import datetime
import os
import shutil
import tempfile
import time

# bench_common makes ansible_collections.unikernel.ops importable
import bench_common

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure import pages, vhd  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.calls import CallLog  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes  # noqa: E402
from ansible_collections.unikernel.ops.tests.integration.targets.setup_azure.files import arm_fake  # noqa: E402


def written(blob):
    ranges, dummy = blob.get_page_ranges()
    return sum(r["end"] + 1 - r["start"] for r in ranges)


def main():
    from azure.storage.blob import BlobSasPermissions, generate_blob_sas
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=bench_common.REPEAT)
    ap.add_argument("--size-gib", type=int, default=2)
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="bench-azure-")
    state = os.path.join(work, "azurite")
    try:
        src = os.path.join(work, "src")
        for i in range(500):
            d = os.path.join(src, "d%02d" % (i % 10))
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "f%03d.bin" % i), "wb") as f:
                f.write(os.urandom(100 * 1000))
        data = args.size_gib * 1024 ** 3
        vol = OnPremVolumes(os.path.join(work, ".ops")).present(
            VolumeSpec(name="bench", source=src, size="%dg" % args.size_gib)).volume
        path = vol["path"]
        with open(path, "r+b") as f:
            f.seek(data)
            f.write(vhd.footer(data, os.urandom(16)))
        size = os.path.getsize(path)
        nonzero = 0
        with open(path, "rb") as f:
            while True:
                chunk = f.read(pages.CHUNK)
                if not chunk:
                    break
                nonzero += sum(length for dummy, length in pages.nonzero_runs(chunk))
        print("VHD of %d bytes (%d GiB of data and the footer), 500 files of 100 KB, %d "
              "non-zero bytes (what ops uploads: all %d)" % (size, args.size_gib, nonzero, size))
        url = arm_fake.start_azurite(state)
        service = arm_fake._blob_service(url)  # pylint: disable=protected-access
        container = service.create_container("bench")
        ours, theirs, ratios, sent_ours, sent_theirs = [], [], [], 0, 0
        log = CallLog("Azure", False, lambda e: None)
        for n in range(args.repeat):
            base = container.get_blob_client("baseline-%d" % n)
            with open(path, "rb") as f:
                t0 = time.monotonic()
                base.upload_blob(f, blob_type="PageBlob", length=size, max_concurrency=8)
                theirs.append(time.monotonic() - t0)
            sent_theirs = written(base)
            base.delete_blob()
            blob = container.get_blob_client("ours-%d" % n)
            blob.create_page_blob(size)
            sas = generate_blob_sas(arm_fake.DEV_ACCOUNT, "bench", blob.blob_name,
                                    account_key=arm_fake.DEV_KEY,
                                    permission=BlobSasPermissions(read=True, write=True),
                                    expiry=datetime.datetime.utcnow()
                                    + datetime.timedelta(hours=1))
            with open(path, "rb") as f:
                t0 = time.monotonic()
                up = pages.upload(log, "bench", blob.url + "?" + sas, f.fileno(), size)
                ours.append(time.monotonic() - t0)
            sent_ours = up["bytes_sent"]
            assert written(blob) == sent_ours
            blob.delete_blob()
            ratios.append(theirs[-1] / ours[-1])
        print("bytes sent: ours %d (%.3fx the non-zero bytes), azure-storage-blob %d (%.3fx), "
              "ops %d (%.1fx)" % (sent_ours, sent_ours / nonzero, sent_theirs,
                                  sent_theirs / nonzero, size, size / nonzero))
        times = [bench_common.spread(v) for v in (ours, theirs, ratios)]
        print("time, %d interleaved pairs: ours %s s, azure-storage-blob %s s, ratio "
              "baseline/ours %s x" % tuple([args.repeat] + times))
    finally:
        arm_fake.stop_azurite(state)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
