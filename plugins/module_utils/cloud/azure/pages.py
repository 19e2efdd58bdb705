# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A disk's pages sent through the SAS URL of a managed disk opened for upload: only the runs of
non-zero 512-byte pages (a fresh upload disk reads as zeros), at most 4 MiB a request (Azure's
limit), from the data regions of the sparse staging file, in parallel, each retried."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.blocks import upload_blocks

try:
    from azure.core import exceptions as azexc
    from azure.storage.blob import BlobClient
    HAS_BLOB = True
except ImportError:
    HAS_BLOB = False

PAGE = 512
CHUNK = 4 * 1024 * 1024  # the most one Put Page request may carry
_ZERO = bytes(64 * 1024)


def nonzero_runs(data):
    """(offset, length) of the runs of 512-byte pages of data that hold a non-zero byte."""
    view = memoryview(data)
    runs, start = [], None
    pos, size = 0, len(data)
    while pos < size:
        coarse = view[pos:pos + len(_ZERO)]
        if start is None and coarse == _ZERO[:len(coarse)]:
            pos += len(coarse)  # a whole zero stretch skipped in one comparison
            continue
        page = view[pos:pos + PAGE]
        zero = page == _ZERO[:len(page)]
        if zero and start is not None:
            runs.append((start, pos - start))
            start = None
        elif not zero and start is None:
            start = pos
        pos += PAGE
    if start is not None:
        runs.append((start, size - start))
    return runs


def retryable(e):
    if not HAS_BLOB:
        return False
    if isinstance(e, (azexc.ServiceRequestError, azexc.ServiceResponseError)):
        return True
    return isinstance(e, azexc.HttpResponseError) and (e.status_code or 0) >= 500


def upload(log, disk_name, sas_url, fd, size, workers=8):
    """Send fd's non-zero pages (size: data and footer, a multiple of 512) to the blob behind
    sas_url; the upload's figures. The SAS never goes into a message."""
    blob = BlobClient.from_blob_url(sas_url)
    sent = {"requests": 0, "bytes": 0}
    lock = threading.Lock()

    def put(index, data, digest):
        base = index * CHUNK
        for offset, length in nonzero_runs(data):
            log.write("PutPage", disk_name, blob.upload_page, quiet=True,
                      page=bytes(data[offset:offset + length]), offset=base + offset,
                      length=length)
            with lock:
                sent["requests"] += 1
                sent["bytes"] += length

    stats = upload_blocks(fd, size, CHUNK, put, workers=workers, retryable=retryable)
    return {"bytes_sent": sent["bytes"], "requests": sent["requests"],
            "chunks_with_data": len(stats.digests), "retries": stats.retries,
            "seconds": round(stats.seconds, 3), "size": size}
