# -*- coding: utf-8 -*-
"""The local AWS endpoint of the tests (moto in server mode) and reading its snapshots back
through boto3 itself, not through the engine."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import boto3

from ansible_collections.unikernel.ops.tests.integration.targets.setup_moto.files import (
    moto_endpoint,
)

REGION = "us-east-1"
ZONE = "us-east-1a"
SECRET = "unikernel-ops-test-SECRET-5b8e1f"  # must never show up in a result or message
ACCESS = "AKIAUNIKERNELOPSTEST"
BLOCK = 512 * 1024


def params(endpoint, ops_dir, **kw):
    p = {"provider": "aws", "ops_dir": ops_dir, "region": REGION, "zone": ZONE,
         "endpoint_url": endpoint, "access_key": ACCESS, "secret_key": SECRET,
         "session_token": None, "profile": None, "validate_certs": True, "wait": True,
         "wait_timeout": 60, "tags": None}
    p.update(kw)
    return p


def clients(endpoint):
    kw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS,
              aws_secret_access_key=SECRET)
    return boto3.client("ec2", **kw), boto3.client("ebs", **kw)


def read_snapshot(ebs, snapshot_ids, size, path):
    """Blocks of the snapshots (a parent first, then its children) into a sparse file.

    moto does not let a child inherit its parent's blocks as EBS does, so the chain is laid
    down here in order."""
    with open(path, "wb") as f:
        f.truncate(size)
        for sid in snapshot_ids:
            for b in ebs.list_snapshot_blocks(SnapshotId=sid)["Blocks"]:
                data = ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=b["BlockIndex"],
                                              BlockToken=b["BlockToken"])["BlockData"].read()
                f.seek(b["BlockIndex"] * BLOCK)
                f.write(data)
    return path


def nonzero_bytes(path):
    """Bytes of the file in 512 KiB blocks that are not all zero."""
    n = 0
    zero = bytes(BLOCK)
    with open(path, "rb") as f:
        while True:
            b = f.read(BLOCK)
            if not b:
                return n
            if b != zero[:len(b)]:
                n += len(b)


__all__ = ["moto_endpoint", "os"]
