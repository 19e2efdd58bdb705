# -*- coding: utf-8 -*-
"""Shared test helpers: build a volume with the engine, and compare it with its source."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.unikernel.ops.plugins.module_utils.tfs import writer as tfs_writer
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS


def build(source, path, label="vol", version=5, extra=1024 * 1024, uuid=None):
    plan = tfs_writer.plan_tree(source)
    log = tfs_writer.prepare(plan, version=version)
    size = tfs_writer.required_sectors(plan, log) * 512 + extra
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        tfs_writer.write_filesystem(fd, plan, log, uuid or os.urandom(16), label, size, version)
    finally:
        os.close(fd)
    return plan, log


def host_tree(source):
    """{relative path bytes: (kind, bytes or target)} of a host directory, symlinks unfollowed."""
    out = {}
    src = os.fsencode(source)
    for dirpath, dirnames, filenames in os.walk(src):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = full[len(src):]
            if os.path.islink(full):
                out[rel] = ("symlink", os.readlink(full))
            elif os.path.isdir(full):
                out[rel] = ("directory", None)
            else:
                with open(full, "rb") as f:
                    out[rel] = ("file", f.read())
    return out


def volume_tree(path, offset=0):
    """The same shape as host_tree, read back with our reader."""
    out = {}
    with TFS(path, offset) as tfs:
        for e in tfs.walk():
            if e.kind == "file":
                out[e.path] = ("file", tfs.read_file(e))
            elif e.kind == "symlink":
                out[e.path] = ("symlink", e.target)
            else:
                out[e.path] = ("directory", None)
    return out
