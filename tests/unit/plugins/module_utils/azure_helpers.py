# -*- coding: utf-8 -*-
"""The provider: azure tests' view of their local Azure: the module parameters that point at the
Resource Manager fake (setup_azure's arm_fake.py, https with its own CA) and what the fake and
Azurite hold, read back through azure-storage-blob, not through the engine."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.unikernel.ops.tests.integration.targets.setup_azure.files import arm_fake

TOKEN = "unikernel-ops-test-AZ-TOKEN-51e0b9"  # must never show up in a result or message
FOOTER = 512


def params(azure, **kw):
    p = {"provider": "azure", "ops_dir": azure["ops"], "subscription_id": azure["subscription"],
         "resource_group": azure["resource_group"], "location": azure["location"],
         "endpoint_url": azure["fake"].url, "access_token": TOKEN, "auth_source": None,
         "client_id": None, "secret": None, "tenant": None, "wait": True, "wait_timeout": 60,
         "tags": None}
    p.update(kw)
    return p


def mutations(fake):
    return [r["operation"] for r in fake.mutations()]


def clear(fake):
    """Forget the request log (what the next call sends is what the test looks at)."""
    fake.requests[:] = []


def disks(fake):
    """The names of the disks in the default resource group, sorted."""
    return sorted(k.split("/", 1)[1] for k in fake.inventory()["disks"])


def written_bytes(azure, name):
    return sum(end + 1 - start for start, end in azure["fake"].page_ranges(name))


def read_disk(azure, name):
    """The disk's data part as a sparse file (only its written pages are downloaded) and its
    VHD footer, parsed by the fake's own check (as Azure checks it)."""
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure import vhd
    fake = azure["fake"]
    blob = fake._blob_client(name)  # pylint: disable=protected-access
    size = blob.get_blob_properties().size
    path = str(azure["tmp"] / ("readback-%s.raw" % name))
    with open(path, "wb") as f:
        f.truncate(size - FOOTER)
        for start, end in fake.page_ranges(name):
            f.seek(start)
            f.write(blob.download_blob(offset=start, length=end + 1 - start).readall())
        f.truncate(size - FOOTER)  # the footer is read from the blob, not kept in the file
    tail = blob.download_blob(offset=size - FOOTER, length=FOOTER).readall()
    why = arm_fake.check_vhd_footer(tail, size)
    assert why is None, why
    return path, vhd.parse(tail)


def foreign_disk(azure, name):
    """A disk another tool made (no tags of ours), through the SDK straight to the fake."""
    poller = azure["compute"].disks.begin_create_or_update(
        azure["resource_group"], name,
        {"location": azure["location"], "properties": {
            "creationData": {"createOption": "Empty"}, "diskSizeGB": 1}}, polling_interval=0)
    return poller.result()


def lun_of(fake, vm, volume):
    """The LUN the fake's own VM record holds the disk at (None: not attached)."""
    res = fake.resource("vm", vm)
    for d in res["properties"]["storageProfile"].get("dataDisks", []):
        if d["managedDisk"]["id"].lower().endswith("/disks/" + volume.lower()):
            return d["lun"]
    return None


def nonzero_file_bytes(path):
    """Bytes of path's non-zero 512-byte pages (holes are not read)."""
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.blocks import data_ranges
    total = 0
    with open(path, "rb") as f:
        for start, end in data_ranges(f.fileno(), os.path.getsize(path)):
            f.seek(start)
            left = end - start
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                left -= len(chunk)
                total += sum(512 for i in range(0, len(chunk), 512) if any(chunk[i:i + 512]))
    return total
