# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sending a sparse disk file to a cloud block by block: only blocks that hold data (found with
SEEK_DATA/SEEK_HOLE, then checked for zeros), only those that differ from a parent snapshot, in
parallel with a bound on the blocks in flight, each retried a bounded number of times."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError


def data_ranges(fd, size):
    """(start, end) byte ranges of fd that may hold data; holes are skipped without reading."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: only a hole is left
            return
        try:
            end = os.lseek(fd, start, os.SEEK_HOLE)
        except OSError:
            end = size
        end = min(end, size)
        if start >= size:
            return
        yield start, end
        pos = end


def candidate_blocks(fd, size, block_size):
    """Indexes of the blocks that overlap data, in order."""
    last = -1
    for start, end in data_ranges(fd, size):
        for index in range(max(start // block_size, last + 1), (end - 1) // block_size + 1):
            yield index
            last = index


class UploadStats:
    def __init__(self):
        self.sent_blocks = 0
        self.sent_bytes = 0
        self.zero_blocks_sent = 0  # blocks the parent had data in and that are zero now
        self.skipped_unchanged = 0
        self.digests = {}  # block index -> sha256 hex of every non-zero block of the file
        self.sent = {}  # block index -> sha256 bytes of every block sent (for the aggregate)
        self.seconds = 0.0
        self.retries = 0

    def as_dict(self):
        return {"blocks_sent": self.sent_blocks, "bytes_sent": self.sent_bytes,
                "zero_blocks_sent": self.zero_blocks_sent,
                "blocks_unchanged": self.skipped_unchanged, "blocks_with_data": len(self.digests),
                "retries": self.retries, "seconds": round(self.seconds, 3)}


def upload_blocks(fd, size, block_size, put, parent=None, workers=8, retries=4, retryable=None,
                  backoff=0.25):
    """Send fd's blocks through put(index, data, sha256_bytes); returns UploadStats.

    parent: {index: sha256 hex} of the non-zero blocks of the snapshot this one continues (its
    blocks are inherited, so only differing blocks are sent, and blocks that became zero are
    sent as zeros); None for a fresh snapshot. At most 2 * workers blocks are in memory."""
    parent = parent or {}
    stats = UploadStats()
    lock = threading.Lock()
    zero = bytes(block_size)
    started = time.monotonic()

    def one(index):
        data = os.pread(fd, block_size, index * block_size)
        if len(data) < block_size:
            data += bytes(block_size - len(data))
        digest = hashlib.sha256(data)
        hexdigest = digest.hexdigest()
        if data == zero:
            if index not in parent:
                return
            kind = "zero"
        else:
            with lock:
                stats.digests[index] = hexdigest
            if parent.get(index) == hexdigest:
                with lock:
                    stats.skipped_unchanged += 1
                return
            kind = "data"
        for attempt in range(retries + 1):
            try:
                put(index, data, digest.digest())
                break
            except Exception as e:  # pylint: disable=broad-except
                if attempt == retries or not (retryable and retryable(e)):
                    raise
                with lock:
                    stats.retries += 1
                time.sleep(backoff * (2 ** attempt))
        with lock:
            stats.sent_blocks += 1
            stats.sent_bytes += block_size
            stats.sent[index] = digest.digest()
            if kind == "zero":
                stats.zero_blocks_sent += 1

    wanted = sorted(set(candidate_blocks(fd, size, block_size)) | set(parent))
    wanted = [i for i in wanted if i * block_size < size]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        pending = set()
        try:
            for index in wanted:
                while len(pending) >= 2 * max(1, workers):
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        f.result()  # the first failure stops the upload
                pending.add(pool.submit(one, index))
            for f in pending:
                f.result()
        except BaseException:
            for f in pending:
                f.cancel()
            raise
    stats.seconds = time.monotonic() - started
    return stats


def linear_checksum(sent):
    """sha256 over the sent blocks' sha256s in block order (EBS' LINEAR aggregation)."""
    h = hashlib.sha256()
    for index in sorted(sent):
        h.update(sent[index])
    return h.digest()


def require_size_multiple(size, unit, what):
    if size % unit:
        raise OpsError("%s is %d bytes, not a multiple of %d" % (what, size, unit))
