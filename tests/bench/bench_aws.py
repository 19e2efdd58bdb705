#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""AWS volume benchmark: a volume built here and sent as an EBS snapshot with the EBS direct
API, against a local moto server (started once, stopped at the end). Figures, not pass/fail.

  (1) bytes sent    a 10 GiB volume holding ~200 MB in 2,000 files (random bytes, ~100 KB each,
                    20 directories): bytes sent against the volume's non-zero 512 KiB blocks,
                    read back from the endpoint.                               goal <= 1.05x
  (2) upload time   the parallel upload (ebs.WORKERS = 8, the default) against a sequential
                    one-block-at-a-time upload of the same blocks (ebs.WORKERS = 1); --repeat
                    pairs interleaved (ours, baseline, ours, ...), each a fresh volume on a
                    reset endpoint with a fresh ops home. upload = upload.seconds (the block
                    PUTs only); present() = the whole engine call (build, hash, upload,
                    CreateVolume and its waits). Median and spread (min-max) of each and of the
                    per-pair ratio baseline / ours.
  (3) re-runs       one 1 MB file rewritten with new random bytes of the same size, then
                    present(force=True): blocks and bytes sent against the 512 KiB blocks that
                    differ between the old and the new snapshot chains as read back (goal: only
                    those sent); and re-runs with nothing changed (no force): their wall time
                    and their mutating calls as the endpoint recorded them (goal: none).

moto runs on the same cores as the engine and answers in well under a millisecond of network
time, so (2) measures what overlapping requests gains against a local, CPU-bound server, not
against a network round trip per block.

Usage: python tests/bench/bench_aws.py [--repeat N] [--scale F]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import hashlib
import os
import random
import shutil
import statistics
import tempfile
import time
import urllib.request

# bench_common makes ansible_collections.unikernel.ops importable
import bench_common  # noqa: F401 pylint: disable=unused-import

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws import ebs  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec, backend  # noqa: E402
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS  # noqa: E402
from ansible_collections.unikernel.ops.tests.integration.targets.setup_moto.files import moto_endpoint  # noqa: E402
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils import aws_helpers as aws  # noqa: E402

GIB = 1024 ** 3
BLOCK = ebs.BLOCK
SIZE = "10g"
CHANGED = "dir-07/changing-1mb.bin"  # the one 1 MB file of the tree, rewritten for (3)


def make_tree(root, scale):
    """2,000 files (x scale) of random bytes, 60-140 KB each, in 20 directories, one of them
    1,000,000 bytes; returns (files, bytes)."""
    rng = random.Random(7)
    count = max(20, int(2000 * scale))
    nfiles = nbytes = 0
    for i in range(count):
        sub = os.path.join(root, "dir-%02d" % (i % 20))
        os.makedirs(sub, exist_ok=True)
        if i == 7:
            path, size = os.path.join(root, CHANGED), 1000 * 1000
        else:
            path, size = os.path.join(sub, "file-%04d.dat" % i), rng.randint(60000, 140000)
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        nfiles += 1
        nbytes += size
    return nfiles, nbytes


def reset(url):
    urllib.request.urlopen(url + "/moto-api/reset", data=b"", timeout=30).read()


def rm(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.unlink(path)


def spread(xs, fmt="%.3f"):
    """'median (min-max)' of xs."""
    return ("%s (%s-%s)" % (fmt, fmt, fmt)) % (statistics.median(xs), min(xs), max(xs))


def present(url, ops_dir, name, src, workers=None, force=False):
    """(Outcome, wall seconds) of one engine call; workers sets ebs.WORKERS for it."""
    saved = ebs.WORKERS
    if workers is not None:
        ebs.WORKERS = workers
    try:
        t = time.perf_counter()
        out = backend("volumes", aws.params(url, ops_dir)).present(
            VolumeSpec(name=name, source=src, size=SIZE, force=force))
        return out, time.perf_counter() - t
    finally:
        ebs.WORKERS = saved


def recorded(url, fn):
    """(fn(), the calls the endpoint saw while it ran)."""
    moto_endpoint.record(url)
    try:
        result = fn()
    finally:
        calls = moto_endpoint.calls(url)
    return result, calls


def overlay(ebs_client, snapshot_id, path):
    """The snapshot's blocks written over the file at path (a child over its parent's bytes:
    moto does not let a child inherit its parent's blocks as EBS does); returns how many."""
    with open(path, "r+b") as f:
        blocks = ebs_client.list_snapshot_blocks(SnapshotId=snapshot_id)["Blocks"]
        for b in blocks:
            data = ebs_client.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=b["BlockIndex"],
                                                 BlockToken=b["BlockToken"])["BlockData"].read()
            f.seek(b["BlockIndex"] * BLOCK)
            f.write(data)
    return len(blocks)


def sparse_copy(src, dst):
    """src into dst keeping its holes (shutil.copyfile would write the 10 GiB out)."""
    fd = os.open(src, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        with open(dst, "wb") as f:
            f.truncate(size)
            for start, end in _data_ranges(fd, size):
                pos = start
                while pos < end:
                    data = os.pread(fd, min(8 * 1024 * 1024, end - pos), pos)
                    os.pwrite(f.fileno(), data, pos)
                    pos += len(data)
    finally:
        os.close(fd)


def block_digests(path):
    """{index: sha256} of every 512 KiB block of the file that is not all zero (holes skipped)."""
    out = {}
    zero = bytes(BLOCK)
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        for start, end in _data_ranges(fd, size):
            for index in range(start // BLOCK, (end - 1) // BLOCK + 1):
                if index in out:
                    continue
                data = os.pread(fd, BLOCK, index * BLOCK)
                if data != zero[:len(data)]:
                    out[index] = hashlib.sha256(data).digest()
    finally:
        os.close(fd)
    return out


def _data_ranges(fd, size):
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            return
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        yield start, end
        pos = end


def mutating(calls):
    return [c["operation"] for c in calls if c["mutating"]]


def bench_times(url, work, src, nbytes, repeat):
    """(2): ours and the sequential baseline, interleaved, each on a reset endpoint."""
    runs = {"ours": {"upload": [], "wall": []}, "baseline": {"upload": [], "wall": []}}
    sent = {}
    reset(url)  # warm-up, not counted: boto3 loads its service models on the first clients
    present(url, os.path.join(work, "ops-warm-up"), "warm-up", None)
    rm(os.path.join(work, "ops-warm-up"))
    for i in range(repeat):
        for label, workers in (("ours", ebs.WORKERS), ("baseline", 1)):
            reset(url)
            ops_dir = os.path.join(work, "ops-%s-%d" % (label, i))
            out, wall = present(url, ops_dir, "bench-%s-%d" % (label, i), src, workers=workers)
            up = out.volume["upload"]
            assert out.changed and up["retries"] == 0, up
            runs[label]["upload"].append(up["seconds"])
            runs[label]["wall"].append(wall)
            sent.setdefault(label, set()).add((up["blocks_sent"], up["bytes_sent"]))
            rm(ops_dir)
    reset(url)
    print("\n(2) upload time, %d pairs interleaved (ours = %d workers, baseline = 1 worker)"
          % (repeat, ebs.WORKERS))
    for label in ("ours", "baseline"):
        up, wall = runs[label]["upload"], runs[label]["wall"]
        print("  %-9s upload %s s  %6.1f MiB/s   present() %s s" % (
            label, spread(up), nbytes / statistics.median(up) / 1024 ** 2, spread(wall)))
    for what in ("upload", "wall"):
        ratios = [b / a for a, b in zip(runs["ours"][what], runs["baseline"][what])]
        print("  ratio baseline / ours, %-9s %s x" % ("upload" if what == "upload"
                                                      else "present()", spread(ratios, "%.2f")))
    for label in ("ours", "baseline"):
        print("  runs %-9s upload %s" % (label, " ".join("%.2f" % t for t in runs[label]["upload"])))
        print("  runs %-9s wall   %s" % (label, " ".join("%.2f" % t for t in runs[label]["wall"])))
    print("  (blocks, bytes) sent, every distinct value over the runs: ours %s, baseline %s" % (
        sorted(sent["ours"]), sorted(sent["baseline"])))


def bench_bytes_and_reruns(url, work, src, nfiles, nbytes):
    """(1) and (3) on one volume."""
    dummy, ebs_client = aws.clients(url)
    ops_dir = os.path.join(work, "ops")
    reset(url)
    out, wall = present(url, ops_dir, "bench", src)
    first = out.volume
    up = first["upload"]
    old = os.path.join(work, "old.raw")
    aws.read_snapshot(ebs_client, [first["snapshot_id"]], first["size"], old)
    before = block_digests(old)
    nonzero = len(before) * BLOCK  # aws.nonzero_bytes(old), without reading 10 GiB of holes
    print("\n(1) bytes sent: %d files, %.1f MB of file data, volume %s (%d bytes)"
          % (nfiles, nbytes / 1e6, SIZE, first["size"]))
    print("  bytes sent            %12d  (%d blocks of 512 KiB, %d with data, %d zero)" % (
        up["bytes_sent"], up["blocks_sent"], up["blocks_with_data"], up["zero_blocks_sent"]))
    print("  non-zero bytes        %12d  (512 KiB blocks not all zero, read back from the "
          "snapshot)" % nonzero)
    print("  ratio sent / non-zero %12.3f x  (goal <= 1.05x)" % (up["bytes_sent"] / nonzero))
    print("  ratio sent / file data%12.3f x" % (up["bytes_sent"] / nbytes))
    print("  create: present() %.2f s, upload %.2f s" % (wall, up["seconds"]))

    # unchanged re-run: nothing sent, nothing mutated
    (same, wall_same), calls = recorded(url, lambda: present(url, ops_dir, "bench", src))

    # one 1 MB file rewritten, then a forced rebuild
    path = os.path.join(src, CHANGED)
    fresh = os.urandom(os.path.getsize(path))
    with open(path, "wb") as f:
        f.write(fresh)
    # not recorded: moto's recorder interleaves the log lines of concurrent large PUTs
    rebuilt, wall_force = present(url, ops_dir, "bench", src, force=True)
    new = rebuilt.volume
    nup = new["upload"]
    new_path = os.path.join(work, "new.raw")
    sparse_copy(old, new_path)
    stored = overlay(ebs_client, new["snapshot_id"], new_path)
    with TFS(new_path) as tfs:  # the chain read back holds the new bytes: no block was missed
        readback_ok = tfs.read_file(("/" + CHANGED).encode()) == fresh
    after = block_digests(new_path)
    differ = sorted(i for i in set(before) | set(after) if before.get(i) != after.get(i))

    # and an unchanged re-run after the rebuild
    (same2, wall_same2), calls2 = recorded(url, lambda: present(url, ops_dir, "bench", src))

    print("\n(3) re-runs on the same volume")
    print("  1 MB file rewritten, force=True: changed=%s, present() %.2f s, upload %.3f s" % (
        rebuilt.changed, wall_force, nup["seconds"]))
    print("    blocks sent %d (%d bytes; %d zero blocks), unchanged skipped %d, blocks the "
          "endpoint holds in the new snapshot %d"
          % (nup["blocks_sent"], nup["bytes_sent"], nup["zero_blocks_sent"],
             nup["blocks_unchanged"], stored))
    print("    blocks that differ between the old and new chains read back: %d (%d bytes), "
          "indexes %s" % (len(differ), len(differ) * BLOCK, differ))
    print("    ratio blocks sent / blocks that differ: %.2f x  (goal 1.00x); new file reads back "
          "from the chain: %s" % (nup["blocks_sent"] / max(1, len(differ)), readback_ok))
    for label, outcome, w, c in (("before the change", same, wall_same, calls),
                                 ("after the rebuild", same2, wall_same2, calls2)):
        print("  unchanged re-run %s (no force): changed=%s, present() %.2f s, %d calls, "
              "mutating %d%s" % (label, outcome.changed, w, len(c), len(mutating(c)),
                                 " %s" % mutating(c) if mutating(c) else ""))
    rm(old)
    rm(new_path)
    reset(url)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=7, help="pairs for (2) (default 7)")
    ap.add_argument("--scale", type=float, default=1.0, help="shrink the tree for a quick look")
    args = ap.parse_args()
    started = time.perf_counter()
    work = tempfile.mkdtemp(prefix="bench-aws-")
    state = os.path.join(work, "moto")
    try:
        url = moto_endpoint.start(state)["endpoint_url"]
        src = os.path.join(work, "src")
        nfiles, nbytes = make_tree(src, args.scale)
        print("moto server on loopback, volume size %s, tree of %d files / %.1f MB, block %d KiB"
              % (SIZE, nfiles, nbytes / 1e6, BLOCK // 1024))
        bench_times(url, work, src, nbytes, args.repeat)
        bench_bytes_and_reruns(url, work, src, nfiles, nbytes)
        print("\ntotal %.0f s" % (time.perf_counter() - started))
    finally:
        moto_endpoint.stop(state)
        rm(work)


if __name__ == "__main__":
    main()
