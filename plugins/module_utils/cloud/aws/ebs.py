# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""EBS snapshots written and read with the EBS direct API: no S3 bucket, no import role.

Only the 512 KiB blocks that hold data are sent; a snapshot that continues another
(ParentSnapshotId) sends only the blocks that differ from it, known from the block digests kept
for the parent in the ops home or, where they are missing, read back from the parent itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import os
import uuid as uuidlib

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.connection import (
    retryable, tag_list,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.blocks import (
    linear_checksum, upload_blocks,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import (
    drop_state, read_state, set_size, write_state,
)

BLOCK = 512 * 1024  # the EBS block size (moto reports 512, but stores what it is sent)
GIB = 1024 ** 3
WORKERS = 8  # blocks in flight: 2 x this many at most in memory


def gib_for(size):
    return -(-size // GIB)


class BlockDigests:
    """sha256 of each non-zero block of the snapshots this host wrote (owner-only)."""

    def __init__(self, home):
        self.home = home

    def _path(self, snapshot_id):
        return self.home.state("cloud", "aws", "snapshots", snapshot_id + ".json")

    def load(self, snapshot_id):
        data = read_state(self._path(snapshot_id))
        return dict((int(k), v) for k, v in data.items()) if isinstance(data, dict) else None

    def save(self, snapshot_id, digests):
        write_state(self._path(snapshot_id), dict((str(k), v) for k, v in digests.items()))

    def drop(self, snapshot_id):
        drop_state(self._path(snapshot_id))


def snapshot_blocks(conn, snapshot_id):
    """(index, token) of every block the snapshot holds (read-only)."""
    out, token = [], None
    while True:
        kw = {"SnapshotId": snapshot_id, "MaxResults": 10000}
        if token:
            kw["NextToken"] = token
        page = conn.log.read("ebs.ListSnapshotBlocks", snapshot_id, conn.ebs.list_snapshot_blocks,
                             **kw)
        out.extend((b["BlockIndex"], b["BlockToken"]) for b in page.get("Blocks", []))
        token = page.get("NextToken")
        if not token:
            return out


def read_block(conn, snapshot_id, index, token):
    got = conn.log.read("ebs.GetSnapshotBlock", snapshot_id, conn.ebs.get_snapshot_block,
                        SnapshotId=snapshot_id, BlockIndex=index, BlockToken=token)
    return got["BlockData"].read()


def read_digests(conn, snapshot_id):
    """Block digests of a snapshot read from the snapshot itself (when none are kept here)."""
    out = {}
    for index, token in snapshot_blocks(conn, snapshot_id):
        data = read_block(conn, snapshot_id, index, token)
        if data.strip(b"\0"):
            out[index] = hashlib.sha256(data.ljust(BLOCK, b"\0")).hexdigest()
    return out


def read_snapshot(conn, snapshot_id, fd, size):
    """The snapshot's bytes into fd (sparse: only its blocks are written)."""
    set_size(fd, size)
    for index, token in snapshot_blocks(conn, snapshot_id):
        os.pwrite(fd, read_block(conn, snapshot_id, index, token), index * BLOCK)


def snapshot_state(conn, snapshot_id):
    snaps = conn.log.read("ec2.DescribeSnapshots", snapshot_id, conn.ec2.describe_snapshots,
                          SnapshotIds=[snapshot_id])["Snapshots"]
    return snaps[0] if snaps else None


def wait_completed(conn, snapshot_id):
    def probe():
        snap = snapshot_state(conn, snapshot_id)
        state = snap.get("State") if snap else "missing"
        if state == "error":
            raise OpsError("snapshot %s failed: %s" % (snapshot_id, snap.get("StateMessage")))
        return state == "completed", state
    wait_until(probe, "snapshot %s to complete" % snapshot_id, conn.wait_timeout)


def upload_snapshot(conn, fd, size, name, tags, parent=None):
    """A completed snapshot of fd's size (whole GiB); returns (snapshot id, UploadStats).

    On any failure the unfinished snapshot is deleted: nothing is left behind."""
    if size % GIB:
        raise OpsError("internal error: a snapshot of %d bytes is not whole GiB" % size)
    digests = BlockDigests(conn.home)
    parent_digests = None
    if parent:
        parent_digests = digests.load(parent)
        if parent_digests is None:
            parent_digests = read_digests(conn, parent)
    kw = {"VolumeSize": size // GIB, "Tags": tag_list(tags), "Description": "%s (unikernel.ops)"
          % name, "ClientToken": str(uuidlib.uuid4()), "Timeout": 60}
    if parent:
        kw["ParentSnapshotId"] = parent
    snapshot_id = conn.log.write("ebs.StartSnapshot", name, conn.ebs.start_snapshot,
                                 note="%d GiB%s" % (size // GIB, ", parent %s" % parent if parent
                                                    else ""), **kw)["SnapshotId"]
    try:
        def put(index, data, digest):
            conn.log.write("ebs.PutSnapshotBlock", snapshot_id, conn.ebs.put_snapshot_block,
                           quiet=True, SnapshotId=snapshot_id, BlockIndex=index, BlockData=data,
                           DataLength=len(data), Checksum=base64.b64encode(digest).decode(),
                           ChecksumAlgorithm="SHA256")
        stats = upload_blocks(fd, size, BLOCK, put, parent_digests, workers=WORKERS,
                              retryable=retryable)
        conn.log.actions.append("ebs.PutSnapshotBlock %s (%d blocks, %d bytes)"
                                % (snapshot_id, stats.sent_blocks, stats.sent_bytes))
        conn.log.write("ebs.CompleteSnapshot", snapshot_id, conn.ebs.complete_snapshot,
                       SnapshotId=snapshot_id, ChangedBlocksCount=stats.sent_blocks,
                       Checksum=base64.b64encode(linear_checksum(stats.sent)).decode(),
                       ChecksumAlgorithm="SHA256", ChecksumAggregationMethod="LINEAR")
        wait_completed(conn, snapshot_id)
    except BaseException:
        delete_snapshot(conn, snapshot_id, quiet_errors=True)
        raise
    digests.save(snapshot_id, stats.digests)
    return snapshot_id, stats


def delete_snapshot(conn, snapshot_id, quiet_errors=False):
    try:
        conn.log.write("ec2.DeleteSnapshot", snapshot_id, conn.ec2.delete_snapshot,
                       SnapshotId=snapshot_id)
    except OpsError:
        if not quiet_errors:
            raise
    BlockDigests(conn.home).drop(snapshot_id)


def owned_snapshot(conn, snapshot_id, kind, name=None):
    """[snapshot_id] when the collection made it for a resource of this kind (and name), else []:
    a snapshot someone else made is never deleted."""
    if not snapshot_id:
        return []
    snap = snapshot_state(conn, snapshot_id)
    tags = dict((t["Key"], t["Value"]) for t in (snap or {}).get("Tags") or [])
    if tags.get(identity.KIND) == kind and (name is None or tags.get("Name") == name):
        return [snapshot_id]
    return []


def delete_snapshots(conn, snapshot_ids):
    """Delete them; in check mode, say so."""
    for sid in snapshot_ids:
        if conn.log.check_mode:
            conn.log.plan("ec2.DeleteSnapshot", sid)
        else:
            delete_snapshot(conn, sid)
