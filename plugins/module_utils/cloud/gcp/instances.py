# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instances on GCP: instances.insert from the image found by name, volumes at boot with
deviceName persistent-disk-N, and the states running / stopped / absent, each waited for.

Volumes are attached with autoDelete false, so deleting an instance never deletes a volume.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import (
    parse_boot_volumes, refuse_local_options,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp import mounts, resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.connection import (
    GcpConnection, compute_v1,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.images import find_image
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.volumes import find_disk
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.instance_flow import InstanceFlow
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.local.records import validate_instance_name
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, InstanceProvider,
)

DEFAULT_MACHINE = "e2-small"
GONE = ("STOPPING", "SUSPENDING", "TERMINATED", "SUSPENDED")


def _state_text(inst):
    if inst is None:
        return "state: absent\n"
    d = resources.describe_instance(inst)
    shown = dict((k, d[k]) for k in ("state", "image", "machine_type", "zone", "attachments"))
    return json.dumps(shown, indent=1, sort_keys=True) + "\n"


class GcpInstances(CloudBackend, InstanceProvider):
    def list_instances(self, name=None, check_mode=False):
        conn = GcpConnection(self.params, check_mode=True)
        zone = conn.require_zone()
        found = conn.list_labelled("compute.instances.list", conn.instances,
                                   compute_v1.ListInstancesRequest, resources.LABEL_KIND, "instance",
                                   project=conn.project, zone=zone)
        names = self._volume_names(conn, zone)
        out = [resources.describe_instance(i, names) for i in found]
        return dict(instances=[i for i in out if name is None or i["name"] == name], stale=[])

    @staticmethod
    def _volume_names(conn, zone):
        disks = conn.list_labelled("compute.disks.list", conn.disks, compute_v1.ListDisksRequest,
                                   resources.LABEL_KIND, "volume", project=conn.project, zone=zone)
        return dict((d.name, (resources.facts_of(d) or {}).get("name")) for d in disks)

    def ensure(self, p, check_mode=False):
        name = validate_instance_name(p["name"])
        refuse_local_options(p, "gcp")
        boot = parse_boot_volumes(p.get("volumes"), resources.device_name)
        labels = resources.labels_for("instance", p.get("tags"))
        conn = GcpConnection(self.params, check_mode)
        zone = conn.require_zone()
        outcome, extra = _Job(conn, zone, p, name, boot, labels).run()
        outcome.actions = conn.log.actions
        return outcome, extra


class _Job(InstanceFlow):
    def __init__(self, conn, zone, p, name, boot, labels):
        InstanceFlow.__init__(self, conn, p, name)
        self.zone, self.boot, self.labels = zone, boot, labels
        self.rname = resources.resource_name(name)

    def _get(self):
        return mounts.get_instance(self.conn, self.zone, self.name)

    def find(self):
        return self._get()

    def state_text(self, inst):
        return _state_text(inst)

    def describe(self, inst):
        names = GcpInstances._volume_names(self.conn, self.zone)
        return resources.describe_instance(inst, names)

    def image(self):
        if not self.p.get("image"):
            raise OpsError("image is required to run an instance")
        image = find_image(self.conn, self.p["image"])
        if image is None:
            raise OpsError("image %r does not exist in project %s; build it with "
                           "unikernel.ops.ops_image (provider: gcp)"
                           % (self.p["image"], self.conn.project))
        return image

    def volumes(self):
        out = []
        for item in self.boot:
            disk = find_disk(self.conn, self.zone, item["volume"])
            if disk is None:
                raise OpsError("volume %r has no disk in zone %s; create it with "
                               "unikernel.ops.ops_volume (provider: gcp)"
                               % (item["volume"], self.zone))
            out.append((item, disk))
        return out

    def _devices(self, inst, vols):
        """(item, disk, device name, already attached) with fixed %N reserved first."""
        fixed = [resources.device_name(i["attach_id"]) for i, d in vols
                 if i["attach_id"] is not None]
        out, taken = [], list(fixed)
        for item, disk in vols:
            if inst is None:
                if item["attach_id"] is not None:
                    device = resources.device_name(item["attach_id"])
                else:
                    device = next(resources.device_name(n) for n in range(1, 128)
                                  if resources.device_name(n) not in taken)
                    taken.append(device)
                out.append((item, disk, device, False))
                continue
            device, already = mounts.plan_attach(
                self.conn, self.zone, inst, disk, item["attach_id"], item["read_only"],
                taken=[t for t in taken if item["attach_id"] is None
                       or t != resources.device_name(item["attach_id"])])
            taken.append(device)
            out.append((item, disk, device, already))
        return out

    def differences(self, inst, image):
        out = []
        facts = resources.facts_of(inst) or {}
        if facts.get("image_id") and facts["image_id"] != str(image.id):
            out.append("image: running %s (id %s), wanted id %s" % (
                facts.get("image"), facts["image_id"], image.id))
        want = self.p.get("machine_type") or DEFAULT_MACHINE
        if resources.last(inst.machine_type) != want:
            out.append("machine_type: running %s, wanted %s" % (
                resources.last(inst.machine_type), want))
        return out

    def _wait_status(self, statuses, what):
        if not self.conn.wait:
            return self._get()

        def probe():
            inst = self._get()
            status = inst.status if inst else "missing"
            return status in statuses, status
        wait_until(probe, "instance %s to be %s" % (self.rname, what), self.conn.wait_timeout)
        return self._get()

    def create(self, image, vols):
        conn, p = self.conn, self.p
        machine = p.get("machine_type") or DEFAULT_MACHINE
        disks = [compute_v1.AttachedDisk(
            boot=True, auto_delete=True, device_name="persistent-disk-0",
            initialize_params=compute_v1.AttachedDiskInitializeParams(
                source_image=image.self_link or "global/images/" + image.name))]
        for item, disk, device, dummy in self._devices(None, vols):
            disks.append(compute_v1.AttachedDisk(
                source=disk.self_link, device_name=device, auto_delete=False,
                mode=mounts.READ_ONLY if item["read_only"] else mounts.READ_WRITE))
        note = "%s from image %s with %d volume(s)" % (machine, image.name, len(vols))
        if conn.log.check_mode:
            conn.log.plan("compute.instances.insert", self.rname, note)
            return None
        body = compute_v1.Instance(
            name=self.rname, machine_type="zones/%s/machineTypes/%s" % (self.zone, machine),
            disks=disks, labels=self.labels,
            network_interfaces=[compute_v1.NetworkInterface(
                network="global/networks/%s" % (p.get("network") or "default"))],
            description=resources.description({"name": self.name, "image": image.name,
                                               "image_id": str(image.id)}))
        if p.get("network_tags"):
            body.tags = compute_v1.Tags(items=list(p["network_tags"]))
        op = conn.log.write("compute.instances.insert", self.rname, conn.instances.insert,
                            project=conn.project, zone=self.zone, instance_resource=body,
                            note=note)
        conn.wait_for(op, self.zone)
        return self._wait_status(("RUNNING",), "running")

    def attach(self, inst, vols):
        if inst is None:  # check mode: create() planned them with the instance
            return None
        changed = False
        for item, disk, device, already in self._devices(inst, vols):
            if already:
                continue
            if self.conn.log.check_mode:
                self.conn.log.plan("compute.instances.attachDisk", inst.name,
                                   "%s as %s" % (disk.name, device))
            else:
                mounts.attach(self.conn, self.zone, inst, disk, device, item["read_only"])
                changed = True
        return self._get() if changed else inst

    def _act(self, verb, inst, note=None):
        """instances.<verb> on inst, waited for; planned only in check mode (returns False)."""
        conn = self.conn
        call = "compute.instances." + verb
        if conn.log.check_mode:
            conn.log.plan(call, inst.name, note)
            return False
        op = conn.log.write(call, inst.name, getattr(conn.instances, verb), note=note,
                            project=conn.project, zone=self.zone, instance=inst.name)
        conn.wait_for(op, self.zone)
        return True

    def start(self, inst, restart):
        if inst.status in GONE:
            if inst.status in ("STOPPING", "SUSPENDING"):
                inst = self._wait_status(("TERMINATED", "SUSPENDED"), "stopped")
            if self._act("start", inst):
                return self._wait_status(("RUNNING",), "running")
            return inst
        if restart:  # asked for: a guest restart, never done behind the user's back
            self._act("reset", inst)
        return inst

    def stop(self, inst):
        if inst.status in ("TERMINATED", "STOPPING"):
            return self._wait_status(("TERMINATED",), "stopped")
        if self._act("stop", inst):
            return self._wait_status(("TERMINATED",), "stopped")
        return inst

    def remove(self, inst):
        self._act("delete", inst, "its volumes are kept")
