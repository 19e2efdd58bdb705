# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hot-plug on Azure: a data disk at LUN N for %N (Nanos' storvsc reads the LUN as the attach
id), otherwise at the lowest free LUN, through a PUT of the VM with its data disks changed.

Unlike azure_rm_manageddisk: a disk already attached to this VM is no change whatever its LUN
(it is never re-attached at another one), attach_id 0 is LUN 0, a LUN another disk holds and a
disk attached to another VM are refused before any request, and detach names the disk."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure import resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.connection import (
    AzureConnection, models,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.volumes import find_disk
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, MountProvider, Outcome,
)


def get_vm(conn, name):
    """The collection's VM of this instance name, or None; a VM of that name the collection did
    not make means the name is taken (it is never started, changed or deleted)."""
    rname = resources.resource_name(name)
    vm = conn.get("VirtualMachines.Get", rname, conn.compute.virtual_machines.get, vm_name=rname,
                  expand="instanceView")
    return resources.ours(vm, name, "instance", "instance")


def refuse_read_only(read_only):
    if read_only:
        raise OpsError("read_only: Azure has no read-only attachment of a managed disk; mount "
                       "it read-only in the image instead (mounts: {volume: /path:ro})")


def lookup(conn, instance, volume):
    vm = get_vm(conn, instance)
    if vm is None:
        raise OpsError("instance %r does not exist in resource group %s" % (instance, conn.group))
    disk = find_disk(conn, volume)
    if disk is None:
        raise OpsError("volume %r has no disk in resource group %s; create it with "
                       "unikernel.ops.ops_volume (provider: azure)" % (volume, conn.group))
    return vm, disk


def attached_at(vm, disk):
    """The data disk entry of disk on vm, or None."""
    for d in resources.data_disks(vm):
        if d.managed_disk and resources.same_id(d.managed_disk.id, disk.id):
            return d
    return None


def plan_lun(vm, disk, attach_id, taken=()):
    """(LUN, already attached) for disk on vm (None: a VM not created yet); refuses what
    would collide. taken: LUNs other disks of the same request get."""
    want = resources.lun(attach_id) if attach_id is not None else None
    current = attached_at(vm, disk) if vm is not None else None
    if current is not None:
        if want is not None and current.lun != want:
            raise OpsError("volume disk %s is attached to VM %s at LUN %d, not %d (%%%d); detach "
                           "it first to move it" % (disk.name, vm.name, current.lun, want, want))
        return current.lun, True
    holder = disk.managed_by
    if holder and not (vm is not None and resources.same_id(holder, vm.id)):
        raise OpsError("volume disk %s is attached to VM %s; a managed disk belongs to one VM - "
                       "detach it there first" % (disk.name, resources.last(holder)))
    used = {}
    if vm is not None:
        used = dict((d.lun, resources.last(d.managed_disk.id) if d.managed_disk else d.name)
                    for d in resources.data_disks(vm))
    used.update(dict((t, None) for t in taken))
    if want is not None:
        if want in used:
            other = used[want] or "(another volume)"
            raise OpsError("LUN %d (%%%d) of VM %s is held by disk %s; choose another attach_id "
                           "or detach that disk first" % (want, want, vm.name if vm else "",
                                                          other))
        return want, False
    for n in range(resources.LUN_MAX + 1):
        if n not in used:
            return n, False
    raise OpsError("VM %s has no free LUN (0-%d)" % (vm.name, resources.LUN_MAX))


def data_disk(disk, lun):
    # deleteOption Detach: deleting the VM never deletes a volume
    return {"lun": lun, "createOption": "Attach", "managedDisk": {"id": disk.id},
            "deleteOption": "Detach", "caching": "None"}


def put_data_disks(conn, vm, entries, note):
    """PUT the VM as Azure showed it with these data disks (Azure attaches and detaches by a
    full PUT); sent as the SDK's model, which leaves out what is read-only."""
    vm.storage_profile.data_disks = [models.DataDisk(e) for e in entries]
    body = vm
    conn.run("VirtualMachines.CreateOrUpdate", vm.name,
             conn.compute.virtual_machines.begin_create_or_update, note=note, vm_name=vm.name,
             parameters=body)
    return conn.log.read("VirtualMachines.Get", vm.name, conn.compute.virtual_machines.get,
                         resource_group_name=conn.group, vm_name=vm.name, expand="instanceView")


def current_entries(vm):
    return [dict(d.as_dict()) for d in resources.data_disks(vm)]


def _clean(entry):
    """A data disk entry as a PUT may send it (no sizes or rates Azure computed)."""
    keep = ("lun", "createOption", "managedDisk", "deleteOption", "caching", "name",
            "writeAcceleratorEnabled")
    out = dict((k, v) for k, v in entry.items() if k in keep)
    if "managedDisk" in out:
        out["managedDisk"] = {"id": out["managedDisk"]["id"]}
    return out


def attach(conn, vm, plans):
    """Attach [(disk, lun)] in one PUT; the VM as Azure then shows it."""
    entries = [_clean(e) for e in current_entries(vm)] + [data_disk(d, n) for d, n in plans]
    note = ", ".join("%s at LUN %d" % (d.name, n) for d, n in plans)
    vm = put_data_disks(conn, vm, entries, note)
    for disk, n in plans:
        shown = attached_at(vm, disk)
        if shown is None or shown.lun != n:
            raise OpsError("Azure finished attaching %s but VM %s does not show it at LUN %d"
                           % (disk.name, vm.name, n))
    return vm


def detach(conn, vm, disk):
    entries = [_clean(e) for e in current_entries(vm)
               if not resources.same_id((e.get("managedDisk") or {}).get("id"), disk.id)]
    vm = put_data_disks(conn, vm, entries, "detach %s" % disk.name)
    if attached_at(vm, disk) is not None:
        raise OpsError("Azure finished detaching %s but VM %s still shows it"
                       % (disk.name, vm.name))
    return vm


def _result(vm, disk, lun):
    return {"instance": (vm.tags or {}).get(identity.LABEL) or vm.name,
            "instance_id": vm.id, "volume": (disk.tags or {}).get(identity.LABEL)
            or disk.name, "volume_id": disk.id, "device": "lun%d" % lun, "lun": lun,
            "attach_id": lun, "read_only": False, "provider": "azure"}


def _render(att):
    if not att:
        return ""
    return "".join("%s: %s\n" % (k, att.get(k)) for k in ("instance", "volume", "lun",
                                                          "attach_id"))


class AzureMounts(CloudBackend, MountProvider):
    def attached(self, p, check_mode=False):
        if p.get("attach_id") is not None:
            resources.lun(p["attach_id"])  # the range check, before any request
        refuse_read_only(p.get("read_only"))
        conn = AzureConnection(self.params, check_mode)
        vm, disk = lookup(conn, p["instance"], p["volume"])
        lun, already = plan_lun(vm, disk, p.get("attach_id"))
        now = _result(vm, disk, lun)
        if already:
            return Outcome(False, now, _render(now), _render(now))
        if check_mode:
            conn.log.plan("VirtualMachines.CreateOrUpdate", vm.name, "%s at LUN %d"
                          % (disk.name, lun))
        else:
            attach(conn, vm, [(disk, lun)])
        return Outcome(True, now, "", _render(now), actions=conn.log.actions)

    def detached(self, p, check_mode=False):
        conn = AzureConnection(self.params, check_mode)
        vm, disk = lookup(conn, p["instance"], p["volume"])
        current = attached_at(vm, disk)
        if current is None:
            return Outcome(False, None)
        was = _result(vm, disk, current.lun)
        if check_mode:
            conn.log.plan("VirtualMachines.CreateOrUpdate", vm.name, "detach %s" % disk.name)
        else:
            detach(conn, vm, disk)
        return Outcome(True, was, _render(was), "", actions=conn.log.actions)
