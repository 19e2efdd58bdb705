# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Images on GCP: the same image bytes as on-prem (whole GiB), streamed as disk.raw in a .tar.gz
to the staging bucket and imported with images.insert, with the guest OS feature ops sets
(GVNIC). The fingerprint in the description makes an unchanged re-run a no-op; a changed input
replaces the image (images hold no user data)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import VolumeRef
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp import resources, staging
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.connection import (
    GcpConnection, compute_v1,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.volumes import (
    delete_image, import_image,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.volume_build import GIB
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images import manifest
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import (
    plan_image, validate_image_name,
)
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, ImageProvider, Outcome,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import human_size

GUEST_OS_FEATURES = ("GVNIC",)  # as ops sets them for a BIOS image


def find_image(conn, name):
    rname = resources.resource_name(name)
    image = conn.get("compute.images.get", rname, conn.images.get, project=conn.project,
                     image=rname)
    return image


def _diff_text(facts, man=None):
    if not facts:
        return ""
    lines = ["resource_name: %s" % facts.get("resource_name"),
             "fingerprint: %s" % facts.get("fingerprint")]
    return "\n".join(lines + (manifest.render(man) if man else [])) + "\n"


class GcpImages(CloudBackend, ImageProvider):
    def list_images(self, name=None):
        conn = GcpConnection(self.params, check_mode=True)
        found = conn.list_labelled("compute.images.list", conn.images,
                                   compute_v1.ListImagesRequest, resources.LABEL_KIND, "image", project=conn.project)
        out = [resources.describe_image(i) for i in found]
        return [i for i in out if name is None or i["name"] == name]

    def _volumes(self, conn):
        if not conn.zone:
            return []
        disks = conn.list_labelled("compute.disks.list", conn.disks, compute_v1.ListDisksRequest,
                                   resources.LABEL_KIND, "volume", project=conn.project, zone=conn.zone)
        return [VolumeRef(d["name"], d["uuid"], d["resource_name"])
                for d in (resources.describe_disk(x, conn.zone) for x in disks)]

    def present(self, spec, config=None, force=False, check_mode=False, want_diff=False):
        validate_image_name(spec.name)
        warnings = manifest.load_config(spec, config)
        labels = resources.labels_for("image", self.params.get("tags"))
        conn = GcpConnection(self.params, check_mode)
        cache = identity.HashCache(conn.home, "gcp", "images", spec.name)
        build = plan_image(conn.home, spec, self._volumes(conn), cache.load(), shares=False,
                           unit=GIB)
        rname = resources.resource_name(spec.name)
        existing = find_image(conn, spec.name)
        current = resources.describe_image(existing) if existing else None
        if current and not current["built_by_collection"] and not force:
            raise OpsError("image %r (%s) was not built by this collection, so it cannot tell "
                           "whether it matches; set force: true to replace it"
                           % (spec.name, rname))
        facts = dict(build.facts(), provider="gcp", resource_name=rname)
        facts.pop("shares")
        before = _diff_text(current) if want_diff else ""
        after = _diff_text(dict(facts), build.manifest) if want_diff else ""
        if current and not force and current["fingerprint"] == build.digest:
            return Outcome(False, dict(facts, object=current["object"]), before, before,
                           warnings)
        obj = staging.PREFIX + resources.resource_name(spec.name, build.digest[:10]) + ".tar.gz"
        note = "%s, kernel %s" % (human_size(build.total),
                                  build.kernel.version or build.kernel.kernel)
        if check_mode:
            conn.log.plan("storage.objects.insert", "gs://%s/%s" % (self.params.get("bucket"), obj),
                          "resumable upload of disk.raw")
            if current:
                conn.log.plan("compute.images.delete", rname)
            conn.log.plan("compute.images.insert", rname, note)
            return Outcome(True, facts, before, after, warnings, conn.log.actions)
        bucket = conn.require_bucket()
        with conn.home.scratch_file() as fd:
            build.write(fd)
            up = staging.upload_disk(conn, bucket, obj, fd, build.total)
        try:
            if current:  # the name is free only once the old image is gone
                delete_image(conn, rname)
                if current["object"] != up["object"]:
                    staging.delete_object(conn, current["object"])
            import_image(conn, rname, staging.object_url(bucket.name, obj), labels,
                         resources.description({"name": spec.name, "kind": "image",
                                                "fingerprint": build.digest,
                                                "object": up["object"]}),
                         GUEST_OS_FEATURES)
        except BaseException:
            staging.delete_object(conn, up["object"])
            raise
        cache.save(build.hashes)
        facts.update(object=up["object"], upload=up)
        return Outcome(True, facts, before, after, warnings, conn.log.actions)

    def absent(self, name, check_mode=False, want_diff=False):
        validate_image_name(name)
        conn = GcpConnection(self.params, check_mode)
        existing = find_image(conn, name)
        if existing is None:
            return Outcome(False, None)
        current = resources.describe_image(existing)
        if not current["built_by_collection"]:
            raise OpsError("image %r (%s) was not made by this collection; it is left as it is"
                           % (name, existing.name))
        delete_image(conn, existing.name)
        staging.delete_object(conn, current["object"])
        if not check_mode:
            identity.HashCache(conn.home, "gcp", "images", name).drop()
        return Outcome(True, None, _diff_text(current) if want_diff else "", "",
                       actions=conn.log.actions)
