# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Images on Azure: the same image bytes as on-prem (whole MiB), a fixed-VHD footer, uploaded
directly into a managed disk, and an image made from that disk, which VMs boot. The klibs
cloud_init and tls are added as ops adds them for Azure: they report provisioning "ready" to
Azure, without which a VM never finishes creating.

The fingerprint in the image's tags makes an unchanged re-run a no-op; a changed input uploads a
new disk and replaces the image (images hold no user data), then deletes the old disk.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure import disks, resources, vhd
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.connection import (
    AzureConnection,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import VolumeRef
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images import manifest
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import (
    plan_image, validate_image_name,
)
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, ImageProvider, Outcome,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import human_size
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import set_size

AZURE_KLIBS = ("cloud_init", "tls")


def find_image(conn, name):
    return conn.get("Images.Get", resources.resource_name(name), conn.compute.images.get,
                    image_name=resources.resource_name(name))


def _diff_text(facts, man=None):
    if not facts:
        return ""
    lines = ["resource_name: %s" % facts.get("resource_name"),
             "fingerprint: %s" % facts.get("fingerprint")]
    return "\n".join(lines + (manifest.render(man) if man else [])) + "\n"


def delete_image(conn, name):
    conn.delete("Images.Delete", name, conn.compute.images.begin_delete, image_name=name)


class AzureImages(CloudBackend, ImageProvider):
    def list_images(self, name=None):
        conn = AzureConnection(self.params, check_mode=True)
        found = conn.list_group("Images.ListByResourceGroup",
                                conn.compute.images.list_by_resource_group)
        out = [resources.describe_image(i) for i in found if resources.is_ours(i, "image")]
        return [i for i in out if name is None or i["name"] == name]

    def _volumes(self, conn):
        found = conn.list_group("Disks.ListByResourceGroup",
                                conn.compute.disks.list_by_resource_group)
        return [VolumeRef(d["name"], d["uuid"], d["resource_name"])
                for d in (resources.describe_disk(x) for x in found
                          if resources.is_ours(x, "volume"))]

    def present(self, spec, config=None, force=False, check_mode=False, want_diff=False):
        validate_image_name(spec.name)
        warnings = manifest.load_config(spec, config)
        spec.klibs = list(spec.klibs or []) + [k for k in AZURE_KLIBS
                                               if k not in (spec.klibs or [])]
        user_tags = self.params.get("tags")
        resources.tags_for("image", spec.name, user_tags)  # refuses bad tags before any call
        conn = AzureConnection(self.params, check_mode)
        cache = identity.HashCache(conn.home, "azure", "images", spec.name)
        build = plan_image(conn.home, spec, self._volumes(conn), cache.load(), shares=False,
                           unit=vhd.MIB, floor=disks.MIN_DATA)
        rname = resources.resource_name(spec.name)
        existing = find_image(conn, spec.name)
        current = resources.describe_image(existing) if existing else None
        if current and not current["built_by_collection"] and not force:
            raise OpsError("image %r (%s) was not built by this collection, so it cannot tell "
                           "whether it matches; set force: true to replace it"
                           % (spec.name, rname))
        facts = dict(build.facts(), provider="azure", resource_name=rname)
        facts.pop("shares")
        before = _diff_text(current) if want_diff else ""
        after = _diff_text(facts, build.manifest) if want_diff else ""
        if current and not force and current["fingerprint"] == build.digest:
            return Outcome(False, dict(facts, id=current["id"], disk=current["disk"]), before,
                           before, warnings)
        disk_name = resources.resource_name(spec.name, build.digest[:10])
        note = "%s, kernel %s" % (human_size(build.total),
                                  build.kernel.version or build.kernel.kernel)
        if check_mode:
            disks.plan_upload(conn, disk_name, disks.vhd_size(build.total),
                              "upload of the image, " + note)
            if current:
                delete_image(conn, rname)
            conn.log.plan("Images.CreateOrUpdate", rname, "from disk %s" % disk_name)
            return Outcome(True, facts, before, after, warnings, conn.log.actions)
        disk, up = self._upload(conn, spec, build, disk_name, note)
        try:
            if current:  # the name is free only once the old image is gone
                delete_image(conn, rname)
            image = self._create(conn, spec, rname, disk, build.digest, user_tags)
        except BaseException:
            disks.delete_disk(conn, disk.name)
            raise
        if current and current["disk"] and current["disk"] != disk.name:
            disks.delete_disk(conn, current["disk"])
        cache.save(build.hashes)
        facts.update(id=image.id, disk=disk.name, upload=up)
        return Outcome(True, facts, before, after, warnings, conn.log.actions)

    @staticmethod
    def _upload(conn, spec, build, disk_name, note):
        tags = resources.tags_for("image-disk", spec.name, fingerprint=build.digest)
        note = "upload of the image, " + note
        total = disks.vhd_size(build.total)
        with conn.home.scratch_file() as fd:
            build.write(fd)
            set_size(fd, total)
            os.pwrite(fd, vhd.footer(build.total, os.urandom(16)), build.total)
            existing = disks.get_disk(conn, disk_name)
            if existing is not None:  # a run that stopped between the upload and the image
                resources.ours(existing, spec.name, "image-disk", "image")
                disks.delete_disk(conn, disk_name)
            return disks.upload_disk(conn, disk_name, fd, total, tags, "Standard_LRS", note)

    @staticmethod
    def _create(conn, spec, rname, disk, digest, user_tags):
        body = {"location": conn.require_location(),
                "tags": resources.tags_for("image", spec.name, user_tags, fingerprint=digest,
                                           disk=disk.name),
                "properties": {"hyperVGeneration": "V1", "storageProfile": {"osDisk": {
                    "osType": "Linux", "osState": "Generalized",
                    "managedDisk": {"id": disk.id}}}}}
        return conn.run("Images.CreateOrUpdate", rname, conn.compute.images.begin_create_or_update,
                        note="from disk %s" % disk.name, image_name=rname, parameters=body)

    def absent(self, name, check_mode=False, want_diff=False):
        validate_image_name(name)
        conn = AzureConnection(self.params, check_mode)
        existing = find_image(conn, name)
        if existing is None:
            return Outcome(False, None)
        current = resources.describe_image(existing)
        if not current["built_by_collection"]:
            raise OpsError("image %r (%s) was not made by this collection; it is left as it is"
                           % (name, existing.name))
        delete_image(conn, existing.name)
        if current["disk"]:
            disks.delete_disk(conn, current["disk"])
        if not check_mode:
            identity.HashCache(conn.home, "azure", "images", name).drop()
        return Outcome(True, None, _diff_text(current) if want_diff else "", "",
                       actions=conn.log.actions)
