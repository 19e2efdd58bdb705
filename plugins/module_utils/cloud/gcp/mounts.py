# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hot-plug on GCP: attachDisk with deviceName persistent-disk-N, which Nanos reads as %N from
the SCSI device id page, and detachDisk by deviceName - and nothing else: Nanos sees the new LUN
through virtio-scsi rescan, so no reset, stop or start is ever sent (ops resets the instance,
a hard reboot, after every attach and detach).

Refused before any change: a deviceName another disk holds, a disk attached read-write
elsewhere (or attached anywhere when this attach is read-write), a disk not in the zone."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp import resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.connection import (
    GcpConnection, compute_v1,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.volumes import find_disk
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, MountProvider, Outcome,
)

READ_WRITE, READ_ONLY = "READ_WRITE", "READ_ONLY"


def get_instance(conn, zone, name):
    """The collection's instance of this name, or None; an instance of the derived name that the
    collection did not make means the name is taken (it is never started, changed or deleted)."""
    rname = resources.resource_name(name)
    inst = conn.get("compute.instances.get", rname, conn.instances.get, project=conn.project,
                    zone=zone, instance=rname)
    return resources.ours(inst, name, "instance", "instance")


def lookup(conn, zone, instance, volume):
    inst = get_instance(conn, zone, instance)
    if inst is None:
        raise OpsError("instance %r does not exist in zone %s of project %s"
                       % (instance, zone, conn.project))
    disk = find_disk(conn, zone, volume)
    if disk is None:
        raise OpsError("volume %r has no disk in zone %s (disks attach only within their zone); "
                       "create it with unikernel.ops.ops_volume (provider: gcp)" % (volume, zone))
    return inst, disk


def _same(a, b):
    """Two resource references (URL or partial path) name the same resource."""
    return a.rsplit("/projects/", 1)[-1] == b.rsplit("/projects/", 1)[-1] if a and b else False


def attached_as(inst, disk):
    for d in inst.disks:
        if _same(d.source, disk.self_link):
            return d
    return None


def plan_attach(conn, zone, inst, disk, attach_id, read_only, taken=()):
    """(device name, already attached) for disk on inst; refuses what would collide."""
    mode = READ_ONLY if read_only else READ_WRITE
    want = resources.device_name(attach_id) if attach_id is not None else None
    current = attached_as(inst, disk)
    if current is not None:
        if want and current.device_name != want:
            raise OpsError("volume disk %s is attached to this instance as %s, not %s (%%%d); "
                           "detach it first to move it" % (disk.name, current.device_name, want,
                                                           attach_id))
        if current.mode != mode:
            raise OpsError("volume disk %s is attached %s, not %s; detach it first"
                           % (disk.name, current.mode, mode))
        return current.device_name, True
    for user in disk.users:
        if _same(user, inst.self_link):
            continue
        other = conn.get("compute.instances.get", resources.last(user), conn.instances.get,
                         project=conn.project, zone=zone, instance=resources.last(user))
        theirs = attached_as(other, disk) if other else None
        if theirs is None or (theirs.mode == READ_ONLY and mode == READ_ONLY):
            continue
        raise OpsError("volume disk %s is attached %s to instance %s; a disk attached read-write "
                       "belongs to one instance (read-only attachments can share it)"
                       % (disk.name, theirs.mode, resources.last(user)))
    used = dict((d.device_name, resources.last(d.source)) for d in inst.disks)
    used.update(dict((t, None) for t in taken))
    if want:
        if want in used:
            raise OpsError("deviceName %s (%%%d) of instance %s is held by disk %s; choose "
                           "another attach_id or detach that disk first"
                           % (want, attach_id, inst.name, used[want] or "(another boot volume)"))
        return want, False
    for n in range(1, resources.ATTACH_MAX + 1):
        name = resources.device_name(n)
        if name not in used:
            return name, False
    raise OpsError("instance %s has no free persistent-disk-N device name" % inst.name)


def attach(conn, zone, inst, disk, device, read_only):
    att = compute_v1.AttachedDisk(source=disk.self_link, device_name=device,
                                  mode=READ_ONLY if read_only else READ_WRITE, auto_delete=False)
    op = conn.log.write("compute.instances.attachDisk", inst.name, conn.instances.attach_disk,
                        project=conn.project, zone=zone, instance=inst.name,
                        attached_disk_resource=att, note="%s as %s" % (disk.name, device))
    conn.wait_for(op, zone)
    _check(conn, zone, inst.name, disk, True)


def detach(conn, zone, inst, disk, device):
    op = conn.log.write("compute.instances.detachDisk", inst.name, conn.instances.detach_disk,
                        project=conn.project, zone=zone, instance=inst.name, device_name=device,
                        note="%s (%s)" % (device, disk.name))
    conn.wait_for(op, zone)
    _check(conn, zone, inst.name, disk, False)


def _check(conn, zone, name, disk, present):
    """The instance's own word, read back after the operation."""
    if not conn.wait:
        return
    inst = conn.log.read("compute.instances.get", name, conn.instances.get, project=conn.project,
                         zone=zone, instance=name)
    if (attached_as(inst, disk) is not None) != present:
        raise OpsError("Compute Engine finished the %s of %s but instance %s does not show it"
                       % ("attach" if present else "detach", disk.name, name))


def _result(inst, disk, device, mode):
    facts = resources.facts_of(disk) or {}
    return {"instance": (resources.facts_of(inst) or {}).get("name") or inst.name,
            "instance_id": inst.name, "volume": facts.get("name") or disk.name,
            "volume_id": disk.name, "device": device,
            "attach_id": resources.device_attach_id(device), "read_only": mode == READ_ONLY,
            "provider": "gcp"}


def _render(att):
    if not att:
        return ""
    return "".join("%s: %s\n" % (k, att.get(k)) for k in ("instance", "volume", "device",
                                                          "attach_id", "read_only"))


class GcpMounts(CloudBackend, MountProvider):
    def attached(self, p, check_mode=False):
        if p.get("attach_id") is not None:
            resources.device_name(p["attach_id"])  # the range check, before any request
        conn = GcpConnection(self.params, check_mode)
        zone = conn.require_zone()
        inst, disk = lookup(conn, zone, p["instance"], p["volume"])
        device, already = plan_attach(conn, zone, inst, disk, p.get("attach_id"),
                                      p.get("read_only"))
        now = _result(inst, disk, device, READ_ONLY if p.get("read_only") else READ_WRITE)
        if already:
            return Outcome(False, now, _render(now), _render(now))
        if check_mode:
            conn.log.plan("compute.instances.attachDisk", inst.name, "%s as %s"
                          % (disk.name, device))
        else:
            attach(conn, zone, inst, disk, device, p.get("read_only"))
        return Outcome(True, now, "", _render(now), actions=conn.log.actions)

    def detached(self, p, check_mode=False):
        conn = GcpConnection(self.params, check_mode)
        zone = conn.require_zone()
        inst, disk = lookup(conn, zone, p["instance"], p["volume"])
        current = attached_as(inst, disk)
        if current is None:
            return Outcome(False, None)
        if current.boot:
            raise OpsError("volume disk %s is the boot disk of instance %s" % (disk.name,
                                                                               inst.name))
        was = _result(inst, disk, current.device_name, current.mode)
        if check_mode:
            conn.log.plan("compute.instances.detachDisk", inst.name, current.device_name)
        else:
            detach(conn, zone, inst, disk, current.device_name)
        return Outcome(True, was, _render(was), "", actions=conn.log.actions)
