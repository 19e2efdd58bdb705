# -*- coding: utf-8 -*-
"""The local GCP endpoints of the tests: Cloud Storage on gcp-storage-emulator, Compute Engine on
the fake in gce_fake.py (https, a CA made here; both in the integration target setup_gcp, which
starts them for ansible-test too), and the uploaded archive read back through the storage client
and tarfile, not through the engine."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys
import tarfile

from ansible_collections.unikernel.ops.tests.integration.targets.setup_gcp.files import gce_fake

PROJECT = "test-project"
ZONE = "us-central1-a"
BUCKET = "staging"
TOKEN = "unikernel-ops-test-TOKEN-7c1d2a"  # must never show up in a result or message
GIB = 1024 ** 3


def start_gcs(state_dir, timeout=30.0):
    """gcp-storage-emulator on 127.0.0.1, in memory, with the staging bucket made; its URL.
    Stopped with gce_fake.stop_gcs(state_dir)."""
    return gce_fake.start_gcs(state_dir, BUCKET, timeout)


def params(gce_url, gcs_url, ops_dir, **kw):
    p = {"provider": "gcp", "ops_dir": ops_dir, "project": PROJECT, "zone": ZONE,
         "bucket": BUCKET, "endpoint_url": gce_url, "storage_endpoint_url": gcs_url,
         "auth_kind": "accesstoken", "access_token": TOKEN, "service_account_file": None,
         "wait": True, "wait_timeout": 60, "tags": None}
    p.update(kw)
    return p


def read_archive(storage_client, gs_url, tmp_path):
    """The uploaded object: its members, and disk.raw extracted to a sparse file."""
    bucket, dummy, name = gs_url[len("gs://"):].partition("/")
    os.makedirs(str(tmp_path), exist_ok=True)
    archive = os.path.join(str(tmp_path), "download.tar.gz")
    storage_client.bucket(bucket).blob(name).download_to_filename(archive)
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        tar.extract(members[0], str(tmp_path), filter="fully_trusted") \
            if sys.version_info >= (3, 12) else tar.extract(members[0], str(tmp_path))
    return [(m.name, m.size, m.issparse()) for m in members], \
        os.path.join(str(tmp_path), members[0].name)
