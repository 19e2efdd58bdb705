# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One digest of what planned filesystems will hold: structure and every file's content.

Images (local and cloud) and cloud volumes use it to tell "unchanged" without building anything.
File hashes are reused while a file's size, mtime and inode stay the same, so an unchanged re-run
reads no file data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os

from ansible_collections.unikernel.ops.plugins.module_utils.tfs.writer import Inline

CHUNK = 4 * 1024 * 1024


def sha256_file(path, chunk=CHUNK):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                return h.hexdigest()
            h.update(block)


def _hash_file(path, known, hashes):
    key = os.fsdecode(path)
    st = os.stat(path)
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    hit = hashes.get(key) or known.get(key)
    if hit is None or hit[:3] != stamp:
        hit = stamp + [sha256_file(path)]
    hashes[key] = hit
    return hit[3]


def content_digest(filesystems, extra=(), known=None):
    """(hex digest, file hashes used) of (TreePlan, LogLayout) pairs and extra byte strings.

    The log's encoded record stands for names, kinds, sizes, links, layout and manifest in one;
    `known` is the hashes dict a previous call returned."""
    h = hashlib.sha256()
    for item in extra:
        h.update(hashlib.sha256(item).digest())
    hashes = {}
    for plan, log in filesystems:
        h.update(log.record)
        for source, dummy, dummy2 in plan.copies:
            if isinstance(source, Inline):
                h.update(hashlib.sha256(source.data).digest())
            else:
                h.update(bytes.fromhex(_hash_file(source, known or {}, hashes)))
    return h.hexdigest(), hashes
