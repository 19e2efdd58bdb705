# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Images on AWS: the same image bytes as on-prem (whole GiB), an EBS snapshot sent with the EBS
direct API as ops does, and an AMI registered from it (hvm, ENA, root /dev/sda1, legacy BIOS).

The AMI's tags keep its snapshot id and the build's fingerprint: an unchanged re-run makes no
mutating call, and a changed input replaces the AMI (images hold no user data).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws import ebs, resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.connection import (
    AwsConnection, tag_list, user_tags,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import VolumeRef
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images import manifest
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import (
    plan_image, validate_image_name,
)
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, ImageProvider, Outcome,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import human_size

ROOT_DEVICE = "/dev/sda1"
SIZE_TAG = identity.KEY_PREFIX + "size"


def _diff_text(facts):
    if not facts:
        return ""
    lines = ["id: %s" % facts.get("id"), "fingerprint: %s" % facts.get("fingerprint")]
    if facts.get("manifest"):
        lines += manifest.render(facts["manifest"])
    return "\n".join(lines) + "\n"


class AwsImages(CloudBackend, ImageProvider):

    def list_images(self, name=None):
        conn = AwsConnection(self.params, check_mode=True)
        return [resources.describe_image(i) for i in resources.images(conn, name)]

    def present(self, spec, config=None, force=False, check_mode=False, want_diff=False):
        validate_image_name(spec.name)
        warnings = manifest.load_config(spec, config)
        tags = user_tags(self.params.get("tags"))
        conn = AwsConnection(self.params, check_mode)
        vols = [VolumeRef(v["name"], v["uuid"], v["id"])
                for v in map(resources.describe_volume, resources.volumes(conn)) if v["name"]]
        cache = identity.HashCache(conn.home, "aws", "images", spec.name)
        build = plan_image(conn.home, spec, vols, cache.load(), shares=False, unit=ebs.GIB)
        existing = resources.find_image(conn, spec.name)
        current = resources.describe_image(existing) if existing else None
        facts = dict(build.facts(), provider="aws", id=current["id"] if current else None)
        facts.pop("shares")
        before = _diff_text(current) if want_diff else ""
        after = _diff_text(dict(facts, manifest=build.manifest)) if want_diff else ""
        if current and not force and current["fingerprint"] == build.digest:
            facts["snapshot_id"] = current["snapshot_id"]
            return Outcome(False, facts, before, before, warnings)
        if current and not current["built_by_collection"] and not force:
            raise OpsError("image %r (%s) was not built by this collection, so it cannot tell "
                           "whether it matches; set force: true to replace it"
                           % (spec.name, current["id"]))
        old_snaps = self._owned_snapshot(conn, current)
        why = "create" if not current else ("rebuild (forced)" if force else "rebuild")
        note = "%s, %s, kernel %s" % (why, human_size(build.total),
                                      build.kernel.version or build.kernel.kernel)
        if check_mode:
            conn.log.plan("ebs.StartSnapshot", spec.name, "%d GiB" % (build.total // ebs.GIB))
            conn.log.plan("ebs.PutSnapshotBlock", spec.name, "the blocks holding data")
            conn.log.plan("ebs.CompleteSnapshot", spec.name)
            if current:
                conn.log.plan("ec2.DeregisterImage", current["id"])
                ebs.delete_snapshots(conn, old_snaps)
            conn.log.plan("ec2.RegisterImage", spec.name, note)
            return Outcome(True, facts, before, after, warnings, conn.log.actions)
        own = dict(tags, Name=spec.name, CreatedBy=identity.CREATED_BY)
        own[identity.KIND] = "image"
        own[identity.FINGERPRINT] = build.digest
        own[SIZE_TAG] = str(build.total)
        with conn.home.scratch_file() as fd:
            build.write(fd)
            snapshot_id, stats = ebs.upload_snapshot(conn, fd, build.total, spec.name, own)
        try:
            if current:  # the name is free only once the old AMI is gone
                deregister(conn, current["id"])
                ebs.delete_snapshots(conn, old_snaps)
            image_id = self._register(conn, spec.name, snapshot_id, build, dict(own))
        except BaseException:
            ebs.delete_snapshot(conn, snapshot_id, quiet_errors=True)
            raise
        cache.save(build.hashes)
        facts.update(id=image_id, snapshot_id=snapshot_id, upload=stats.as_dict())
        return Outcome(True, facts, before, after, warnings, conn.log.actions)

    @staticmethod
    def _owned_snapshot(conn, current):
        if not current or not current["built_by_collection"]:
            return []
        return ebs.owned_snapshot(conn, current["snapshot_id"], "image")

    @staticmethod
    def _register(conn, name, snapshot_id, build, tags):
        arch = "arm64" if build.manifest.get("environment", {}).get("NANOS_ARCH") == "arm64" \
            else "x86_64"
        image_id = conn.log.write(
            "ec2.RegisterImage", name, conn.ec2.register_image, note="from %s" % snapshot_id,
            Name=name, Description="Nanos unikernel image %s (unikernel.ops)" % name,
            Architecture=arch, RootDeviceName=ROOT_DEVICE, VirtualizationType="hvm",
            EnaSupport=True, BootMode="legacy-bios",
            BlockDeviceMappings=[{"DeviceName": ROOT_DEVICE,
                                  "Ebs": {"SnapshotId": snapshot_id, "DeleteOnTermination": True,
                                          "VolumeType": "gp3"}}])["ImageId"]
        # RegisterImage does not take the snapshot id as a tag value we can find it by, and some
        # endpoints drop its TagSpecifications: tag it in a call of its own.
        tags[identity.SNAPSHOT] = snapshot_id
        conn.log.write("ec2.CreateTags", image_id, conn.ec2.create_tags, Resources=[image_id],
                       Tags=tag_list(tags))

        def probe():
            imgs = conn.log.read("ec2.DescribeImages", image_id, conn.ec2.describe_images,
                                 ImageIds=[image_id])["Images"]
            state = imgs[0]["State"] if imgs else "missing"
            if state in ("failed", "error", "invalid"):
                raise OpsError("image %s went into state %s" % (image_id, state))
            return state == "available", state
        if conn.wait:
            wait_until(probe, "image %s to be available" % image_id, conn.wait_timeout)
        return image_id

    def absent(self, name, check_mode=False, want_diff=False):
        validate_image_name(name)
        conn = AwsConnection(self.params, check_mode)
        existing = resources.find_image(conn, name)
        if existing is None:
            return Outcome(False, None)
        current = resources.describe_image(existing)
        snaps = self._owned_snapshot(conn, current)
        if check_mode:
            conn.log.plan("ec2.DeregisterImage", current["id"])
        else:
            deregister(conn, current["id"])
            identity.HashCache(conn.home, "aws", "images", name).drop()
        ebs.delete_snapshots(conn, snaps)
        return Outcome(True, None, _diff_text(current) if want_diff else "", "",
                       actions=conn.log.actions)


def deregister(conn, image_id):
    conn.log.write("ec2.DeregisterImage", image_id, conn.ec2.deregister_image, ImageId=image_id)
