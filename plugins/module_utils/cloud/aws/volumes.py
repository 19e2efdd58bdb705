# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes on AWS: the TFS the on-prem backend writes, built locally at a whole number of GiB,
sent as an EBS snapshot with the EBS direct API, and an EBS volume made from it.

Identity is the Name tag (CreatedBy=ops, as ops tags them) plus our keys for label, UUID and a
content fingerprint, so that an unchanged source makes no mutating call and sends nothing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws import ebs, resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.connection import (
    AwsConnection, tag_list, user_tags,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, Outcome, VolumeProvider,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.volume_build import (
    SourcePlan, checked_spec, mismatch_warning,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import TFSFormatError, format_uuid
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.content import render
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import (
    content_item, tfs_facts,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    human_size, normalize_uuid,
)

GIB = ebs.GIB
VOLUME_TYPES = ("gp2", "gp3", "io1", "io2", "st1", "sc1", "standard")


def check_cloud_options(opts):
    vtype = opts.get("volume_type") or "gp3"
    if vtype not in VOLUME_TYPES:
        raise OpsError("volume_type %r is not an EBS volume type (%s)"
                       % (vtype, ", ".join(VOLUME_TYPES)))
    if opts.get("iops") is not None and vtype not in ("gp3", "io1", "io2"):
        raise OpsError("iops applies to volume types gp3, io1 and io2, not %s" % vtype)
    if opts.get("throughput") is not None and vtype != "gp3":
        raise OpsError("throughput applies to volume type gp3 only, not %s" % vtype)
    return vtype


def _diff_text(v, entries=None):
    if v is None:
        return ""
    lines = ["%s: %s" % (k, v.get(k)) for k in ("id", "zone", "size", "volume_type",
                                                "fingerprint", "uuid")]
    return "\n".join(lines + (render(entries) if entries else [])) + "\n"


class AwsVolumes(CloudBackend, VolumeProvider):
    name = "aws"

    # -- reading --------------------------------------------------------------------------

    def list_volumes(self, name=None, uuid=None, contents=False, checksums=False):
        conn = AwsConnection(self.params, check_mode=True)  # reads only
        uuid = normalize_uuid(uuid) if uuid else None
        out = []
        for v in resources.volumes(conn, name):
            item = resources.describe_volume(v)
            if uuid is not None and item["uuid"] != uuid:
                continue
            if contents:
                self._read_contents(conn, item, checksums)
            out.append(item)
        return out

    @staticmethod
    def _read_contents(conn, item, checksums):
        """The volume's tree, read from its snapshot with our own reader."""
        if not item["snapshot_id"]:
            item["error"] = "no snapshot to read the volume's contents from"
            return
        with conn.home.scratch_file() as fd:
            ebs.read_snapshot(conn, item["snapshot_id"], fd, item["size"])
            try:
                with TFS("/proc/self/fd/%d" % fd) as tfs:
                    item.update(tfs_facts(tfs))
                    item["contents"] = [content_item(tfs, e, checksums) for e in tfs.walk()]
            except (OSError, TFSFormatError) as e:  # the reason: the file is a scratch fd
                item["error"] = "the snapshot is not a readable Nanos volume: %s" % getattr(e, "reason", e)

    # -- writing --------------------------------------------------------------------------

    def present(self, spec, check_mode=False, want_diff=False):
        want_size = checked_spec(spec)
        vtype = check_cloud_options(spec.cloud)
        tags = user_tags(spec.cloud.get("tags"))
        conn = AwsConnection(self.params, check_mode)
        zone = conn.require_zone()
        existing = resources.find_volume(conn, spec.name)
        src = SourcePlan(conn.home, "aws", spec, check_mode)
        job = _Job(conn, spec, src, zone, vtype, tags, want_diff)
        if existing is None:
            outcome = job.create(want_size)
        else:
            outcome = job.update(existing, want_size)
        if not check_mode:
            src.save_hashes()
        outcome.actions = conn.log.actions
        return outcome

    def absent(self, spec, check_mode=False, want_diff=False):
        if spec.name is None:
            raise OpsError("name is required")
        conn = AwsConnection(self.params, check_mode)
        v = resources.find_volume(conn, spec.name)
        if v is None:
            return Outcome(False, None)
        item = resources.describe_volume(v)
        if spec.uuid and item["uuid"] and normalize_uuid(spec.uuid) != item["uuid"]:
            raise OpsError("volume %r has UUID %s, not %s; nothing was deleted"
                           % (spec.name, item["uuid"], spec.uuid))
        refuse_attached(v, "deleting")
        snaps = owned_snapshots(conn, item)
        if check_mode:
            conn.log.plan("ec2.DeleteVolume", v["VolumeId"])
        else:
            delete_volume(conn, v["VolumeId"])
            identity.HashCache(conn.home, "aws", "volumes", spec.name).drop()
        ebs.delete_snapshots(conn, snaps)
        return Outcome(True, item, _diff_text(item) if want_diff else "", "",
                       actions=conn.log.actions)


def refuse_attached(v, what):
    atts = [a["InstanceId"] for a in v.get("Attachments") or []]
    if atts or v["State"] == "in-use":
        raise OpsError("volume %s (%s) is attached to instance %s; detach it "
                       "(unikernel.ops.ops_mount state: detached) before %s it"
                       % (resources.tag_dict(v).get("Name"), v["VolumeId"],
                          ", ".join(atts) or "?", what))


def owned_snapshots(conn, item):
    """The snapshot a volume was made from, when this collection made it for that volume."""
    if not item.get("built_by_collection"):
        return []
    return ebs.owned_snapshot(conn, item.get("snapshot_id"), "volume", item["name"])


def delete_volume(conn, volume_id):
    conn.log.write("ec2.DeleteVolume", volume_id, conn.ec2.delete_volume, VolumeId=volume_id)

    def gone():
        v = resources.volume_by_id_or_none(conn, volume_id)
        return v is None or v["State"] == "deleted", v["State"] if v else "deleted"
    if conn.wait:
        wait_until(gone, "volume %s to be deleted" % volume_id, conn.wait_timeout)


def wait_volume(conn, volume_id, states, what):
    def probe():
        v = resources.volume_by_id(conn, volume_id)
        state = v["State"] if v else "missing"
        if state == "error":
            raise OpsError("volume %s went into state error" % volume_id)
        return state in states, state
    if conn.wait:
        wait_until(probe, what, conn.wait_timeout)
    return resources.volume_by_id(conn, volume_id)


class _Job:
    """One present() run: what the source is and what exists."""

    def __init__(self, conn, spec, src, zone, vtype, tags, want_diff):
        self.conn, self.spec, self.src = conn, spec, src
        self.digest, self.zone, self.vtype, self.tags = src.digest, zone, vtype, tags
        self.want_diff = want_diff

    def _tags(self, uuid, kind, snapshot=None):
        out = dict(self.tags, Name=self.spec.name, CreatedBy=identity.CREATED_BY)
        out[identity.KIND] = kind
        out[identity.LABEL] = self.spec.name
        out[identity.UUID] = uuid
        out[identity.TFS_VERSION] = str(self.spec.tfs_version)
        if self.spec.source:
            out[identity.FINGERPRINT] = self.digest
        if snapshot:
            out[identity.SNAPSHOT] = snapshot
        return out

    def _after_entries(self):
        return self.src.entries() if self.want_diff else None

    def _build_and_send(self, uuid_bytes, gib, parent=None):
        """Build the TFS at gib GiB into a scratch file and send it; (snapshot id, stats)."""
        size = gib * GIB
        uuid = format_uuid(uuid_bytes)
        with self.src.built(self.conn.home, uuid_bytes, size) as fd:
            return ebs.upload_snapshot(self.conn, fd, size, self.spec.name,
                                       self._tags(uuid, "volume"), parent=parent)

    def _create_volume(self, snapshot_id, gib, uuid):
        c = self.spec.cloud
        kw = {"AvailabilityZone": self.zone, "SnapshotId": snapshot_id, "Size": gib,
              "VolumeType": self.vtype,
              "TagSpecifications": [{"ResourceType": "volume",
                                     "Tags": tag_list(self._tags(uuid, "volume", snapshot_id))}]}
        if c.get("iops") is not None:
            kw["Iops"] = c["iops"]
        if c.get("throughput") is not None:
            kw["Throughput"] = c["throughput"]
        if c.get("encrypted") is not None:
            kw["Encrypted"] = c["encrypted"]
        try:
            vid = self.conn.log.write("ec2.CreateVolume", self.spec.name,
                                      self.conn.ec2.create_volume,
                                      note="%d GiB %s in %s" % (gib, self.vtype, self.zone),
                                      **kw)["VolumeId"]
        except OpsError:
            ebs.delete_snapshot(self.conn, snapshot_id, quiet_errors=True)  # leave nothing
            raise
        return wait_volume(self.conn, vid, ("available",), "volume %s to be available" % vid)

    def _predicted(self, size, uuid, snapshot_id=None):
        return dict(self.src.facts(), name=self.spec.name, id=None, uuid=uuid, size=size,
                    size_gib=size // GIB, zone=self.zone, volume_type=self.vtype,
                    fingerprint=self.digest if self.spec.source else None,
                    snapshot_id=snapshot_id, attachments=[], tags=self.tags, provider="aws")

    def create(self, want_size):
        size = self.src.size(want_size)
        gib = ebs.gib_for(size)
        notes = []
        if gib * GIB != size:
            notes.append("size %s rounded up to %d GiB (EBS volumes are whole GiB)"
                         % (human_size(size), gib))
        uuid_bytes = bytes.fromhex(self.spec.uuid.replace("-", "")) if self.spec.uuid \
            else os.urandom(16)
        uuid = format_uuid(uuid_bytes)
        after = _diff_text(self._predicted(gib * GIB, uuid), self._after_entries())
        if self.conn.log.check_mode:
            self.conn.log.plan("ebs.StartSnapshot", self.spec.name, "%d GiB" % gib)
            self.conn.log.plan("ebs.PutSnapshotBlock", self.spec.name, "the blocks holding data")
            self.conn.log.plan("ebs.CompleteSnapshot", self.spec.name)
            self.conn.log.plan("ec2.CreateVolume", self.spec.name, "%d GiB %s in %s"
                               % (gib, self.vtype, self.zone))
            volume = self._predicted(gib * GIB, uuid if self.spec.uuid else None)
            volume["notes"] = notes
            return Outcome(True, volume, "", after)
        snapshot_id, stats = self._build_and_send(uuid_bytes, gib)
        v = self._create_volume(snapshot_id, gib, uuid)
        volume = dict(resources.describe_volume(v), **self.src.facts())
        volume.update(upload=stats.as_dict(), notes=notes, requested_size=size)
        return Outcome(True, volume, "", after)

    def update(self, v, want_size):
        conn, spec = self.conn, self.spec
        item = resources.describe_volume(v)
        warnings = []
        if spec.uuid and item["uuid"] and spec.uuid != item["uuid"]:
            raise OpsError("volume %r exists with UUID %s, not %s; remove it first (state: "
                           "absent) to recreate it with another UUID"
                           % (spec.name, item["uuid"], spec.uuid))
        if item["zone"] and item["zone"] != self.zone:
            raise OpsError("volume %r (%s) is in zone %s, not %s; a volume cannot move zones - "
                           "use its zone, or delete it first" % (spec.name, v["VolumeId"],
                                                                 item["zone"], self.zone))
        if want_size is not None and want_size < item["size"] and \
                ebs.gib_for(want_size) < item["size_gib"]:
            raise OpsError("volume %r is %d GiB and size %s asks for less: shrinking would lose "
                           "data and is refused" % (spec.name, item["size_gib"], spec.size))
        reasons = self.src.reasons(item["fingerprint"], item["tfs_version"])
        want_gib = ebs.gib_for(want_size) if want_size else item["size_gib"]
        before = _diff_text(item) if self.want_diff else ""
        if reasons and spec.force:
            return self._rebuild(v, item, max(want_gib, item["size_gib"]), reasons, before)
        if reasons:
            warnings.append(mismatch_warning(spec, reasons, item["uuid"]))
        if want_gib <= item["size_gib"]:
            return Outcome(False, item, before, before, warnings)
        after_item = dict(item, size=want_gib * GIB, size_gib=want_gib)
        after = _diff_text(after_item) if self.want_diff else ""
        if conn.log.check_mode:
            conn.log.plan("ec2.ModifyVolume", v["VolumeId"], "grow to %d GiB" % want_gib)
            return Outcome(True, after_item, before, after, warnings)
        conn.log.write("ec2.ModifyVolume", v["VolumeId"], conn.ec2.modify_volume,
                       note="grow from %d to %d GiB" % (item["size_gib"], want_gib),
                       VolumeId=v["VolumeId"], Size=want_gib)
        self._wait_modified(v["VolumeId"])
        v = resources.volume_by_id(conn, v["VolumeId"])
        return Outcome(True, resources.describe_volume(v), before, after, warnings)

    def _wait_modified(self, volume_id):
        """Until the new size is usable (optimizing or completed)."""
        def probe():
            mods = self.conn.log.read(
                "ec2.DescribeVolumesModifications", volume_id,
                self.conn.ec2.describe_volumes_modifications,
                VolumeIds=[volume_id])["VolumesModifications"]
            state = mods[-1]["ModificationState"] if mods else "completed"
            if state == "failed":
                raise OpsError("growing volume %s failed: %s"
                               % (volume_id, mods[-1].get("StatusMessage")))
            return state in ("optimizing", "completed"), state
        if self.conn.wait:
            wait_until(probe, "volume %s to grow" % volume_id, self.conn.wait_timeout)

    def _rebuild(self, v, item, gib, reasons, before):
        """A new snapshot that sends only the blocks that differ, a new volume from it, and
        the old volume and its snapshot deleted. Refused while the volume is attached."""
        conn = self.conn
        refuse_attached(v, "rebuilding")
        gib = max(gib, ebs.gib_for(self.src.need))
        uuid = item["uuid"] or format_uuid(os.urandom(16))
        after_item = self._predicted(gib * GIB, uuid)
        after = _diff_text(after_item, self._after_entries())
        old_snaps = owned_snapshots(conn, item)
        parent = item["snapshot_id"] if old_snaps and gib == item["size_gib"] else None
        if conn.log.check_mode:
            conn.log.plan("ebs.StartSnapshot", self.spec.name, "parent %s" % parent if parent
                          else "%d GiB" % gib)
            conn.log.plan("ebs.PutSnapshotBlock", self.spec.name, "the blocks that changed")
            conn.log.plan("ebs.CompleteSnapshot", self.spec.name)
            conn.log.plan("ec2.CreateVolume", self.spec.name, "replaces %s" % v["VolumeId"])
            conn.log.plan("ec2.DeleteVolume", v["VolumeId"])
            ebs.delete_snapshots(conn, old_snaps)
            return Outcome(True, after_item, before, after)
        snapshot_id, stats = self._build_and_send(bytes.fromhex(uuid.replace("-", "")), gib,
                                                  parent=parent)
        new = self._create_volume(snapshot_id, gib, uuid)
        delete_volume(conn, v["VolumeId"])
        ebs.delete_snapshots(conn, old_snaps)
        volume = dict(resources.describe_volume(new), **self.src.facts())
        volume.update(upload=stats.as_dict(), replaced=v["VolumeId"], rebuilt_because=reasons)
        return Outcome(True, volume, before, after)
