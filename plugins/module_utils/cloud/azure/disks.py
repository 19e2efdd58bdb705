# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Managed disks uploaded directly (no storage account): a disk created with createOption
Upload and the VHD's size, write access granted, the non-zero pages sent through the SAS URL,
access revoked, and the disk waited for until it is Unattached. Volumes and images share it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure import pages, resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.vhd import FOOTER, MIB
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

MIN_DATA = 20 * MIB  # Azure's smallest upload (ops pads to it too)
SKUS = ("Standard_LRS", "StandardSSD_LRS", "Premium_LRS", "StandardSSD_ZRS", "Premium_ZRS")
UPLOAD_SECONDS = 24 * 3600  # how long the write SAS lives; revoked as soon as the upload ends


def data_size(size):
    """The data part of the VHD for a volume of `size` bytes: whole MiB, at least 20 MiB."""
    return max(MIN_DATA, -(-size // MIB) * MIB)


def get_disk(conn, name):
    return conn.get("Disks.Get", name, conn.compute.disks.get, disk_name=name)


def refuse_attached(disk, what):
    if disk.managed_by or resources.text(disk.disk_state) in ("Attached", "Reserved"):
        raise OpsError("disk %s is attached to VM %s; detach it (unikernel.ops.ops_mount state: "
                       "detached) before %s it" % (disk.name, resources.last(disk.managed_by)
                                                   or "(unknown)", what))


def delete_disk(conn, name):
    conn.delete("Disks.Delete", name, conn.compute.disks.begin_delete, disk_name=name)


def upload_disk(conn, name, fd, size, tags, sku, note):
    """A new managed disk `name` holding fd's `size` bytes (data and footer); the disk and the
    upload's figures. The disk is deleted again when anything fails before it is complete, so
    a failed run leaves nothing behind."""
    location = conn.require_location()
    body = {"location": location, "sku": {"name": sku}, "tags": tags,
            "properties": {"creationData": {"createOption": "Upload",
                                            "uploadSizeBytes": size}}}
    conn.run("Disks.CreateOrUpdate", name, conn.compute.disks.begin_create_or_update,
             note=note, disk_name=name, disk=body)
    try:
        access = conn.run("Disks.GrantAccess", name, conn.compute.disks.begin_grant_access,
                          note="write, for the upload", disk_name=name,
                          grant_access_data={"access": "Write",
                                             "durationInSeconds": UPLOAD_SECONDS})
        try:
            up = pages.upload(conn.log, name, access.access_sas, fd, size)
            conn.log.actions.append("PutPage %s (%d requests, %d bytes of %d)"
                                    % (name, up["requests"], up["bytes_sent"], size))
        finally:
            conn.run("Disks.RevokeAccess", name, conn.compute.disks.begin_revoke_access,
                     disk_name=name)
        disk = wait_unattached(conn, name)
    except BaseException:
        _discard(conn, name)
        raise
    return disk, up


def plan_upload(conn, name, size, note):
    """upload_disk's steps, for check mode's actions."""
    conn.log.plan("Disks.CreateOrUpdate", name, note)
    conn.log.plan("Disks.GrantAccess", name, "write, for the upload")
    conn.log.plan("PutPage", name, "the non-zero pages of %d bytes" % size)
    conn.log.plan("Disks.RevokeAccess", name)


def wait_unattached(conn, name):
    def probe():
        disk = get_disk(conn, name)
        state = resources.text(disk.disk_state) if disk is not None else "missing"
        return state == "Unattached", (disk if state == "Unattached" else state)
    return wait_until(probe, "disk %s to be Unattached after its upload" % name,
                      conn.wait_timeout)


def _discard(conn, name):
    """Best effort: the disk of a failed upload holds nothing anyone wrote. Its access is
    revoked again first (a disk open for upload cannot be deleted)."""
    for call, begin in (("Disks.RevokeAccess", conn.compute.disks.begin_revoke_access),
                        ("Disks.Delete", conn.compute.disks.begin_delete)):
        try:
            conn.run(call, name, begin, disk_name=name)
        except OpsError:
            pass


def grow(conn, disk, want_gib):
    return conn.run("Disks.Update", disk.name, conn.compute.disks.begin_update,
                    note="grow from %s to %d GiB" % (disk.disk_size_gb, want_gib),
                    disk_name=disk.name, disk={"properties": {"diskSizeGB": want_gib}})


def vhd_size(data):
    return data + FOOTER
