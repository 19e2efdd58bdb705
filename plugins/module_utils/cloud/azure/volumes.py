# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes on Azure: the TFS the on-prem backend writes, built locally with its data part a
whole number of MiB, a fixed-VHD footer after it, uploaded directly into a managed disk (only
its non-zero pages). Sizes over 4 GiB work (ops' uint32 sizes overflow there).

The disk's tags hold the volume's name, UUID, TFS version and the fingerprint of its source, so
an unchanged source makes no mutating request and uploads nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure import disks, resources, vhd
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.connection import (
    AzureConnection,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.volume_build import (
    SourcePlan, checked_spec, gib_for, mismatch_warning, select,
)
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, Outcome, VolumeProvider,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import format_uuid
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.content import render
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import human_size
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import set_size


def _diff_text(v, entries=None):
    if v is None:
        return ""
    lines = ["%s: %s" % (k, v.get(k)) for k in ("resource_name", "location", "size",
                                                "disk_type", "fingerprint", "uuid")]
    return "\n".join(lines + (render(entries) if entries else [])) + "\n"


def find_disk(conn, name):
    """The disk of this volume name, or None; a disk of that name the collection did not make
    for this volume means the name is taken."""
    return resources.ours(disks.get_disk(conn, resources.resource_name(name)), name, "volume",
                          "volume")


def check_cloud_options(cloud):
    sku = cloud.get("volume_type") or "Standard_LRS"
    if sku not in disks.SKUS:
        raise OpsError("volume_type %r is not a managed disk SKU Azure uploads to (%s)"
                       % (sku, ", ".join(disks.SKUS)))
    for opt in ("iops", "throughput", "encrypted"):
        if cloud.get(opt) is not None:
            raise OpsError("%s applies to provider aws; leave it out on azure (managed disks "
                           "are encrypted at rest by default)" % opt)
    return sku


class AzureVolumes(CloudBackend, VolumeProvider):
    name = "azure"

    def list_volumes(self, name=None, uuid=None, contents=False, checksums=False):
        if contents:
            raise OpsError("contents: reading a volume back is done for provider aws; on azure "
                           "list it without contents")
        conn = AzureConnection(self.params, check_mode=True)
        found = conn.list_group("Disks.ListByResourceGroup",
                                conn.compute.disks.list_by_resource_group)
        out = [resources.describe_disk(d) for d in found if resources.is_ours(d, "volume")]
        return select(out, name, uuid)

    def present(self, spec, check_mode=False, want_diff=False):
        want_size = checked_spec(spec)
        sku = check_cloud_options(spec.cloud)
        user_tags = spec.cloud.get("tags")
        resources.tags_for("volume", spec.name, user_tags)  # refuses bad tags before any call
        conn = AzureConnection(self.params, check_mode)
        disk = find_disk(conn, spec.name)
        src = SourcePlan(conn.home, "azure", spec, check_mode)
        job = _Job(conn, spec, src, sku, user_tags, want_diff)
        outcome = job.create(want_size) if disk is None else job.update(disk, want_size)
        if not check_mode:
            src.save_hashes()
        outcome.actions = conn.log.actions
        return outcome

    def absent(self, spec, check_mode=False, want_diff=False):
        conn = AzureConnection(self.params, check_mode)
        disk = find_disk(conn, spec.name)
        if disk is None:
            return Outcome(False, None)
        item = resources.describe_disk(disk)
        disks.refuse_attached(disk, "deleting")
        disks.delete_disk(conn, disk.name)
        return Outcome(True, item, _diff_text(item) if want_diff else "", "",
                       actions=conn.log.actions)


class _Job:
    def __init__(self, conn, spec, src, sku, user_tags, want_diff):
        self.conn, self.spec, self.src, self.sku = conn, spec, src, sku
        self.user_tags, self.want_diff = user_tags, want_diff
        self.rname = resources.resource_name(spec.name)

    def _tags(self, uuid):
        return resources.tags_for(
            "volume", self.spec.name, self.user_tags, uuid=uuid,
            fingerprint=self.src.digest if self.spec.source else None,
            tfs_version=self.spec.tfs_version)

    def _predicted(self, data, uuid):
        return dict(self.src.facts(), name=self.spec.name, resource_name=self.rname, uuid=uuid,
                    size=data, size_gib=gib_for(data), location=self.conn.location,
                    disk_type=self.sku, state="Unattached",
                    fingerprint=self.src.digest if self.spec.source else None, attachments=[],
                    tags=dict(self.user_tags or {}), provider="azure")

    def _build(self, uuid, data, replace=None):
        """The VHD built and uploaded into a new disk; (disk, upload figures), or (None, None)
        in check mode. replace: the disk of the same name that a forced rebuild deletes once the
        new VHD is built."""
        conn = self.conn
        total = disks.vhd_size(data)
        note = "upload of %s, %s" % (human_size(data), self.sku)
        if conn.log.check_mode:
            if replace:
                disks.delete_disk(conn, replace)
            disks.plan_upload(conn, self.rname, total, note)
            return None, None
        uuid_bytes = bytes.fromhex(uuid.replace("-", ""))
        with self.src.built(conn.home, uuid_bytes, data) as fd:
            set_size(fd, total)
            os.pwrite(fd, vhd.footer(data, uuid_bytes), data)
            if replace:
                disks.delete_disk(conn, replace)
            return disks.upload_disk(conn, self.rname, fd, total, self._tags(uuid), self.sku,
                                     note)

    def create(self, want_size):
        size = self.src.size(want_size)
        data = disks.data_size(size)
        notes = []
        if data != size:
            notes.append("size %s rounded up to %s (an Azure upload's data part is whole MiB, "
                         "at least 20 MiB)" % (human_size(size), human_size(data)))
        uuid = self.spec.uuid or format_uuid(os.urandom(16))
        after = _diff_text(self._predicted(data, uuid),
                           self.src.entries() if self.want_diff else None)
        disk, up = self._build(uuid, data)
        if disk is None:
            volume = self._predicted(data, uuid if self.spec.uuid else None)
        else:
            volume = dict(resources.describe_disk(disk), **self.src.facts())
            volume["upload"] = up
        volume.update(notes=notes, requested_size=size)
        return Outcome(True, volume, "", after)

    def update(self, disk, want_size):
        conn, spec = self.conn, self.spec
        item = resources.describe_disk(disk)
        if spec.uuid and item["uuid"] and spec.uuid != item["uuid"]:
            raise OpsError("volume %r exists with UUID %s, not %s; remove it first (state: "
                           "absent) to recreate it with another UUID"
                           % (spec.name, item["uuid"], spec.uuid))
        if want_size is not None and disks.data_size(want_size) < item["size"]:
            raise OpsError("volume %r is %s and size %s asks for less: shrinking would lose data "
                           "and is refused" % (spec.name, human_size(item["size"]), spec.size))
        reasons = self.src.reasons(item["fingerprint"], item["tfs_version"])
        before = _diff_text(item) if self.want_diff else ""
        if reasons and spec.force:
            return self._rebuild(disk, item, want_size, reasons, before)
        warnings = [mismatch_warning(spec, reasons, item["uuid"])] if reasons else []
        if want_size is None or disks.data_size(want_size) <= item["size"]:
            return Outcome(False, item, before, before, warnings)
        want_gib = gib_for(want_size)
        after_item = dict(item, size=want_gib * resources.GIB, size_gib=want_gib)
        after = _diff_text(after_item) if self.want_diff else ""
        if conn.log.check_mode:
            conn.log.plan("Disks.Update", disk.name, "grow to %d GiB" % want_gib)
            return Outcome(True, after_item, before, after, warnings)
        disks.grow(conn, disk, want_gib)
        return Outcome(True, resources.describe_disk(disks.get_disk(conn, disk.name)), before,
                       after, warnings)

    def _rebuild(self, disk, item, want_size, reasons, before):
        """force with a changed source: the new VHD is built locally first, then the old disk
        (the user asked to replace what a guest wrote) is deleted and the name uploaded again:
        Azure disks cannot be renamed or re-opened for writing."""
        disks.refuse_attached(disk, "rebuilding")
        data = max(item["size"], disks.data_size(max(want_size or 0, self.src.need)))
        uuid = item["uuid"] or format_uuid(os.urandom(16))
        after = _diff_text(self._predicted(data, uuid),
                           self.src.entries() if self.want_diff else None)
        new, up = self._build(uuid, data, replace=disk.name)
        if new is None:
            return Outcome(True, self._predicted(data, uuid), before, after)
        volume = dict(resources.describe_disk(new), **self.src.facts())
        volume.update(upload=up, rebuilt_because=reasons)
        return Outcome(True, volume, before, after)
