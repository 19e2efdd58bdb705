# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instances on Azure: a VM from the image found by name (vm_size, a network interface or a
subnet, tags), volumes at boot at their LUNs, and the states running / stopped (deallocated,
so it is not billed) / absent, each waited for.

Data disks are attached with deleteOption Detach, so deleting a VM never deletes a volume; the
OS disk and a network interface made from subnet_id go with the VM.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import secrets

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure import mounts, resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.connection import (
    AzureConnection,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.images import find_image
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.volumes import find_disk
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import (
    parse_boot_volumes, refuse_local_options,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.instance_flow import InstanceFlow
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.local.records import validate_instance_name
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, InstanceProvider,
)

DEFAULT_SIZE = "Standard_B1s"  # as ops
# ops' account name; Nanos has no users, Azure wants one for an image it calls generalized.
ADMIN_USER = "nanos"
STOPPED = ("deallocated", "deallocating")


def _state_text(vm):
    if vm is None:
        return "state: absent\n"
    d = resources.describe_vm(vm)
    shown = dict((k, d[k]) for k in ("state", "image", "vm_size", "location", "attachments"))
    return json.dumps(shown, indent=1, sort_keys=True) + "\n"


def _network(conn, p, rname):
    nic, subnet = p.get("network_interface"), p.get("subnet_id")
    if nic and subnet:
        raise OpsError("give network_interface or subnet_id, not both")
    if nic:
        nic_id = nic if nic.startswith("/") else (
            "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/"
            "networkInterfaces/%s" % (conn.subscription, conn.group, nic))
        return {"networkInterfaces": [{"id": nic_id, "properties": {"primary": True}}]}
    if subnet:
        if not subnet.startswith("/subscriptions/") or "/subnets/" not in subnet:
            raise OpsError("subnet_id %r is not a subnet's resource id (/subscriptions/.../"
                           "virtualNetworks/VNET/subnets/SUBNET)" % subnet)
        # The VM makes its own network interface in the subnet and deletes it with itself.
        return {"networkApiVersion": "2020-11-01", "networkInterfaceConfigurations": [{
            "name": rname + "-nic", "properties": {
                "primary": True, "deleteOption": "Delete", "ipConfigurations": [{
                    "name": "ipconfig1", "properties": {"primary": True,
                                                        "subnet": {"id": subnet}}}]}}]}
    raise OpsError("a new VM needs network_interface (a network interface's name or id) or "
                   "subnet_id (a subnet's resource id)")


class AzureInstances(CloudBackend, InstanceProvider):
    def list_instances(self, name=None, check_mode=False):
        conn = AzureConnection(self.params, check_mode=True)
        found = conn.list_group("VirtualMachines.List", conn.compute.virtual_machines.list)
        names = volume_names(conn)
        out = []
        for vm in found:
            if not resources.is_ours(vm, "instance"):
                continue
            if name is not None and (vm.tags or {}).get(identity.LABEL) != name:
                continue
            vm = conn.log.read("VirtualMachines.Get", vm.name, conn.compute.virtual_machines.get,
                               resource_group_name=conn.group, vm_name=vm.name,
                               expand="instanceView")
            out.append(resources.describe_vm(vm, names))
        return dict(instances=out, stale=[])

    def ensure(self, p, check_mode=False):
        name = validate_instance_name(p["name"])
        refuse_local_options(p, "azure")
        boot = parse_boot_volumes(p.get("volumes"), resources.lun)
        for item in boot:
            mounts.refuse_read_only(item["read_only"])
        resources.tags_for("instance", name, p.get("tags"))  # refuses bad tags before any call
        conn = AzureConnection(self.params, check_mode)
        outcome, extra = _Job(conn, p, name, boot).run()
        outcome.actions = conn.log.actions
        return outcome, extra


def volume_names(conn):
    found = conn.list_group("Disks.ListByResourceGroup",
                            conn.compute.disks.list_by_resource_group)
    return dict((d.name.lower(), (d.tags or {}).get(identity.LABEL))
                for d in found if resources.is_ours(d, "volume"))


class _Job(InstanceFlow):
    def __init__(self, conn, p, name, boot):
        InstanceFlow.__init__(self, conn, p, name)
        self.boot = boot
        self.rname = resources.resource_name(name)

    def _get(self):
        return mounts.get_vm(self.conn, self.name)

    def find(self):
        return self._get()

    def state_text(self, inst):
        return _state_text(inst)

    def describe(self, inst):
        return resources.describe_vm(inst, volume_names(self.conn))

    def image(self):
        if not self.p.get("image"):
            raise OpsError("image is required to run an instance")
        image = find_image(self.conn, self.p["image"])
        if image is None:
            raise OpsError("image %r does not exist in resource group %s; build it with "
                           "unikernel.ops.ops_image (provider: azure)"
                           % (self.p["image"], self.conn.group))
        return image

    def volumes(self):
        out = []
        for item in self.boot:
            disk = find_disk(self.conn, item["volume"])
            if disk is None:
                raise OpsError("volume %r has no disk in resource group %s; create it with "
                               "unikernel.ops.ops_volume (provider: azure)"
                               % (item["volume"], self.conn.group))
            out.append((item, disk))
        return out

    def _luns(self, vm, vols):
        """[(disk, LUN, already attached)], fixed %N reserved first."""
        fixed = [i["attach_id"] for i, d in vols if i["attach_id"] is not None]
        out, taken = [], []
        for item, disk in vols:
            others = taken + [n for n in fixed if n != item["attach_id"]]
            lun, already = mounts.plan_lun(vm, disk, item["attach_id"], others)
            taken.append(lun)
            out.append((disk, lun, already))
        return out

    def differences(self, inst, image):
        out = []
        image_id = resources.fact(inst.tags, "image_id")
        if image_id and not resources.same_id(image_id, image.id):
            out.append("image: running %s, wanted %s" % (image_id, image.id))
        want = self.p.get("vm_size") or DEFAULT_SIZE
        have = resources.text(inst.hardware_profile.vm_size) if inst.hardware_profile else None
        if have != want:
            out.append("vm_size: running %s, wanted %s" % (have, want))
        return out

    def _wait_power(self, states, what):
        if not self.conn.wait:
            return self._get()

        def probe():
            vm = self._get()
            state = resources.power_state(vm) if vm else "missing"
            return state in states, state
        wait_until(probe, "VM %s to be %s" % (self.rname, what), self.conn.wait_timeout)
        return self._get()

    def create(self, image, vols):
        conn, p = self.conn, self.p
        size = p.get("vm_size") or DEFAULT_SIZE
        luns = self._luns(None, vols)
        placed = "".join(", %s at LUN %d" % (d.name, n) for d, n, dummy in luns)
        note = "%s from image %s with %d volume(s)%s" % (size, image.name, len(vols), placed)
        network = _network(conn, p, self.rname)
        if conn.log.check_mode:
            conn.log.plan("VirtualMachines.CreateOrUpdate", self.rname, note)
            return None
        body = {
            "location": conn.require_location(),
            "tags": resources.tags_for("instance", self.name, p.get("tags"),
                                       image=p["image"], image_id=image.id),
            "properties": {
                "hardwareProfile": {"vmSize": size},
                "storageProfile": {
                    "imageReference": {"id": image.id},
                    "osDisk": {"createOption": "FromImage", "deleteOption": "Delete",
                               "managedDisk": {"storageAccountType": "Standard_LRS"}},
                    "dataDisks": [mounts.data_disk(d, n) for d, n, dummy in luns]},
                # Nanos has no accounts; Azure wants one for a generalized image. The password
                # is random, used nowhere, and never shown.
                "osProfile": {"computerName": self.rname[:64], "adminUsername": ADMIN_USER,
                              "adminPassword": secrets.token_urlsafe(24) + "aA1!"},
                "networkProfile": network}}
        conn.run("VirtualMachines.CreateOrUpdate", self.rname,
                 conn.compute.virtual_machines.begin_create_or_update, note=note,
                 wait=conn.wait, vm_name=self.rname, parameters=body)
        return self._wait_power(("running",), "running")

    def attach(self, inst, vols):
        if inst is None:  # check mode: create() planned them with the VM
            return None
        todo = [(d, n) for d, n, already in self._luns(inst, vols) if not already]
        if not todo:
            return inst
        if self.conn.log.check_mode:
            self.conn.log.plan("VirtualMachines.CreateOrUpdate", inst.name, ", ".join(
                "%s at LUN %d" % (d.name, n) for d, n in todo))
            return inst
        return mounts.attach(self.conn, inst, todo)

    def _act(self, verb, inst, note=None):
        """virtual_machines.begin_<verb>, waited for; planned only in check mode (False)."""
        conn = self.conn
        call = "VirtualMachines." + verb.title().replace("_", "")
        if conn.log.check_mode:
            conn.log.plan(call, inst.name, note)
            return False
        conn.run(call, inst.name, getattr(conn.compute.virtual_machines, "begin_" + verb),
                 note=note, vm_name=inst.name)
        return True

    def start(self, inst, restart):
        state = resources.power_state(inst)
        if state in ("deallocated", "deallocating", "stopped", "stopping"):
            if self._act("start", inst):
                return self._wait_power(("running",), "running")
            return inst
        if restart:  # asked for: a guest restart, never done behind the user's back
            self._act("restart", inst)
        return inst

    def stop(self, inst):
        if resources.power_state(inst) == "deallocated":
            return inst
        if self._act("deallocate", inst, "stopped and deallocated: not billed for compute"):
            return self._wait_power(("deallocated",), "deallocated")
        return inst

    def remove(self, inst):
        self._act("delete", inst, "its volumes are kept (deleteOption Detach)")
