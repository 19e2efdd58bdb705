# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes on GCP: the TFS the on-prem backend writes, built locally at a whole number of GiB,
streamed as disk.raw in a .tar.gz to the staging bucket, an image imported from it, and a
persistent disk made from the image.

The disk's name is derived from the volume's name (GCE names are strict); the real name, UUID,
fingerprint, image and staging object are kept in its description, so an unchanged source makes
no mutating request and uploads nothing, and state: absent removes all three.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp import resources, staging
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.connection import (
    GcpConnection, compute_v1,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.volume_build import (
    GIB, SourcePlan, checked_spec, gib_for, mismatch_warning, select,
)
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, Outcome, VolumeProvider,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import format_uuid
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.content import render
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import human_size

DISK_TYPES = ("pd-balanced", "pd-standard", "pd-ssd", "pd-extreme", "hyperdisk-balanced")


def _diff_text(v, entries=None):
    if v is None:
        return ""
    lines = ["%s: %s" % (k, v.get(k)) for k in ("resource_name", "zone", "size", "disk_type",
                                                "fingerprint", "uuid", "image")]
    return "\n".join(lines + (render(entries) if entries else [])) + "\n"


def find_disk(conn, zone, name):
    """The disk of this volume name, or None; a disk of the derived name that the collection did
    not make means the name is taken."""
    rname = resources.resource_name(name)
    disk = conn.get("compute.disks.get", rname, conn.disks.get, project=conn.project, zone=zone,
                    disk=rname)
    return resources.ours(disk, name, "disk", "volume")


def refuse_attached(disk, what):
    if disk.users:
        raise OpsError("volume disk %s is attached to instance %s; detach it "
                       "(unikernel.ops.ops_mount state: detached) before %s it"
                       % (disk.name, ", ".join(resources.last(u) for u in disk.users), what))


def delete_image(conn, name):
    if not name:
        return
    if conn.log.check_mode:
        conn.log.plan("compute.images.delete", name)
        return
    try:
        op = conn.log.write("compute.images.delete", name, conn.images.delete,
                            project=conn.project, image=name)
    except OpsError as e:
        if (e.details.get("error") or {}).get("code") == 404:
            return
        raise
    conn.wait_for(op)


def delete_disk(conn, zone, name):
    if conn.log.check_mode:
        conn.log.plan("compute.disks.delete", name)
        return
    op = conn.log.write("compute.disks.delete", name, conn.disks.delete, project=conn.project,
                        zone=zone, disk=name)
    conn.wait_for(op, zone)


def import_image(conn, name, url, labels, desc, features=()):
    """images.insert from a staging object; waited for."""
    image = compute_v1.Image(
        name=name, raw_disk=compute_v1.RawDisk(source=url), labels=labels, description=desc,
        guest_os_features=[compute_v1.GuestOsFeature(type_=f) for f in features])
    op = conn.log.write("compute.images.insert", name, conn.images.insert, project=conn.project,
                        image_resource=image, note="from %s" % url)
    conn.wait_for(op)


class GcpVolumes(CloudBackend, VolumeProvider):
    name = "gcp"

    def list_volumes(self, name=None, uuid=None, contents=False, checksums=False):
        conn = GcpConnection(self.params, check_mode=True)
        zone = conn.require_zone()
        if contents:
            raise OpsError("contents: reading a volume back is done for provider aws; on gcp "
                           "list it without contents")
        found = conn.list_labelled("compute.disks.list", conn.disks, compute_v1.ListDisksRequest,
                                   resources.LABEL_KIND, "volume", project=conn.project, zone=zone)
        out = [resources.describe_disk(d, zone) for d in found]
        return select(out, name, uuid)

    def present(self, spec, check_mode=False, want_diff=False):
        want_size = checked_spec(spec)
        dtype = spec.cloud.get("volume_type") or "pd-balanced"
        if dtype not in DISK_TYPES:
            raise OpsError("volume_type %r is not a GCE disk type (%s)"
                           % (dtype, ", ".join(DISK_TYPES)))
        for opt in ("iops", "throughput", "encrypted"):
            if spec.cloud.get(opt) is not None:
                raise OpsError("%s applies to provider aws; leave it out on gcp" % opt)
        labels = resources.labels_for("volume", spec.cloud.get("tags"))
        conn = GcpConnection(self.params, check_mode)
        zone = conn.require_zone()
        disk = find_disk(conn, zone, spec.name)
        src = SourcePlan(conn.home, "gcp", spec, check_mode)
        job = _Job(conn, spec, src, zone, dtype, labels, want_diff)
        outcome = job.create(want_size) if disk is None else job.update(disk, want_size)
        if not check_mode:
            src.save_hashes()
        outcome.actions = conn.log.actions
        return outcome

    def absent(self, spec, check_mode=False, want_diff=False):
        conn = GcpConnection(self.params, check_mode)
        zone = conn.require_zone()
        disk = find_disk(conn, zone, spec.name)
        if disk is None:
            return Outcome(False, None)
        item = resources.describe_disk(disk, zone)
        refuse_attached(disk, "deleting")
        delete_disk(conn, zone, disk.name)
        delete_image(conn, item["image"])
        staging.delete_object(conn, item["object"])
        return Outcome(True, item, _diff_text(item) if want_diff else "", "",
                       actions=conn.log.actions)


class _Job:
    def __init__(self, conn, spec, src, zone, dtype, labels, want_diff):
        self.conn, self.spec, self.src, self.zone = conn, spec, src, zone
        self.dtype, self.labels, self.want_diff = dtype, labels, want_diff
        self.rname = resources.resource_name(spec.name)

    def _predicted(self, gib, uuid, image=None):
        return dict(self.src.facts(), name=self.spec.name, resource_name=self.rname,
                    uuid=uuid, size=gib * GIB, size_gib=gib, zone=self.zone,
                    disk_type=self.dtype, image=image,
                    fingerprint=self.src.digest if self.spec.source else None, attachments=[],
                    tags=resources.user_labels(self.labels), provider="gcp")

    def _build(self, uuid, gib):
        """Upload the volume and import its image; (image name, object gs URL, upload facts)."""
        conn = self.conn
        image = resources.resource_name(self.spec.name, self.src.digest[:10])
        obj = staging.PREFIX + image + ".tar.gz"
        if conn.log.check_mode:
            conn.log.plan("storage.objects.insert", "gs://%s/%s" % (
                conn.params.get("bucket"), obj), "resumable upload of disk.raw, %d GiB" % gib)
            conn.log.plan("compute.images.insert", image)
            return image, None, None
        bucket = conn.require_bucket()
        with self.src.built(conn.home, bytes.fromhex(uuid.replace("-", "")), gib * GIB) as fd:
            up = staging.upload_disk(conn, bucket, obj, fd, gib * GIB)
        try:
            import_image(conn, image, staging.object_url(bucket.name, obj),
                         resources.labels_for("volume-image", None),
                         resources.description({"name": self.spec.name, "kind": "volume-image",
                                                "object": up["object"]}))
        except BaseException:
            staging.delete_object(conn, up["object"])
            raise
        return image, up["object"], up

    def _insert_disk(self, image, obj, uuid, gib):
        conn = self.conn
        facts = {"name": self.spec.name, "uuid": uuid, "image": image, "object": obj,
                 "tfs_version": self.spec.tfs_version}
        if self.spec.source:
            facts["fingerprint"] = self.src.digest
        disk = compute_v1.Disk(
            name=self.rname, size_gb=gib, source_image="global/images/" + image,
            type_="zones/%s/diskTypes/%s" % (self.zone, self.dtype), labels=self.labels,
            description=resources.description(facts))
        if conn.log.check_mode:
            conn.log.plan("compute.disks.insert", self.rname, "%d GiB %s" % (gib, self.dtype))
            return None
        try:
            op = conn.log.write("compute.disks.insert", self.rname, conn.disks.insert,
                                project=conn.project, zone=self.zone, disk_resource=disk,
                                note="%d GiB %s from %s" % (gib, self.dtype, image))
            conn.wait_for(op, self.zone)
        except BaseException:
            delete_image(conn, image)
            staging.delete_object(conn, obj)
            raise
        return conn.log.read("compute.disks.get", self.rname, conn.disks.get,
                             project=conn.project, zone=self.zone, disk=self.rname)

    def create(self, want_size):
        size = self.src.size(want_size)
        gib = gib_for(size)
        notes = []
        if gib * GIB != size:
            notes.append("size %s rounded up to %d GiB (GCE disk images are whole GiB)"
                         % (human_size(size), gib))
        uuid = self.spec.uuid or format_uuid(os.urandom(16))
        after = _diff_text(self._predicted(gib, uuid),
                           self.src.entries() if self.want_diff else None)
        image, obj, up = self._build(uuid, gib)
        disk = self._insert_disk(image, obj, uuid, gib)
        if disk is None:
            volume = self._predicted(gib, uuid if self.spec.uuid else None, image)
        else:
            volume = dict(resources.describe_disk(disk, self.zone), **self.src.facts())
            volume["upload"] = up
        volume.update(notes=notes, requested_size=size)
        return Outcome(True, volume, "", after)

    def update(self, disk, want_size):
        conn, spec = self.conn, self.spec
        item = resources.describe_disk(disk, self.zone)
        if spec.uuid and item["uuid"] and spec.uuid != item["uuid"]:
            raise OpsError("volume %r exists with UUID %s, not %s; remove it first (state: "
                           "absent) to recreate it with another UUID"
                           % (spec.name, item["uuid"], spec.uuid))
        if want_size is not None and gib_for(want_size) < item["size_gib"]:
            raise OpsError("volume %r is %d GiB and size %s asks for less: shrinking would lose "
                           "data and is refused" % (spec.name, item["size_gib"], spec.size))
        reasons = self.src.reasons(item["fingerprint"], item["tfs_version"])
        want_gib = max(gib_for(want_size) if want_size else 0, item["size_gib"])
        before = _diff_text(item) if self.want_diff else ""
        if reasons and spec.force:
            return self._rebuild(disk, item, want_gib, reasons, before)
        warnings = [mismatch_warning(spec, reasons, item["uuid"])] if reasons else []
        if want_gib == item["size_gib"]:
            return Outcome(False, item, before, before, warnings)
        after_item = dict(item, size=want_gib * GIB, size_gib=want_gib)
        after = _diff_text(after_item) if self.want_diff else ""
        if conn.log.check_mode:
            conn.log.plan("compute.disks.resize", disk.name, "grow to %d GiB" % want_gib)
            return Outcome(True, after_item, before, after, warnings)
        op = conn.log.write("compute.disks.resize", disk.name, conn.disks.resize,
                            project=conn.project, zone=self.zone, disk=disk.name,
                            disks_resize_request_resource=compute_v1.DisksResizeRequest(
                                size_gb=want_gib),
                            note="grow from %d to %d GiB" % (item["size_gib"], want_gib))
        conn.wait_for(op, self.zone)
        disk = conn.log.read("compute.disks.get", disk.name, conn.disks.get,
                             project=conn.project, zone=self.zone, disk=disk.name)
        return Outcome(True, resources.describe_disk(disk, self.zone), before, after, warnings)

    def _rebuild(self, disk, item, gib, reasons, before):
        refuse_attached(disk, "rebuilding")
        gib = max(gib, gib_for(self.src.need))
        uuid = item["uuid"] or format_uuid(os.urandom(16))
        after = _diff_text(self._predicted(gib, uuid),
                           self.src.entries() if self.want_diff else None)
        image, obj, up = self._build(uuid, gib)
        delete_disk(self.conn, self.zone, disk.name)
        new = self._insert_disk(image, obj, uuid, gib)
        if item["image"] != image:
            delete_image(self.conn, item["image"])
        if item["object"] != obj:
            staging.delete_object(self.conn, item["object"])
        if new is None:
            return Outcome(True, self._predicted(gib, uuid, image), before, after)
        volume = dict(resources.describe_disk(new, self.zone), **self.src.facts())
        volume.update(upload=up, rebuilt_because=reasons)
        return Outcome(True, volume, before, after)
