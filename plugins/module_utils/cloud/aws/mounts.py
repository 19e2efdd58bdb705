# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hot-plug on AWS: AttachVolume at the device that gives the guest its %N, DetachVolume, each
waited for until both the volume and the instance's block device mapping agree.

The refusals are ours: AWS refuses some of them late, and moto none (a device in use, a volume
attached elsewhere, another zone). Unlike ec2_vol, detach names the instance and needs no
`instance: None`, and a free device is chosen when no id is given.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws import resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.connection import (
    AwsConnection, tag_dict,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, MountProvider, Outcome,
)

READ_ONLY_NOTE = ("EBS has no read-only attachment: volume %s is attached read-write, and the "
                  "guest mounts it read-only only where the image's manifest says :ro")


def _mappings(inst):
    """device -> volume id of the instance's EBS mappings, the root device included."""
    return dict((m["DeviceName"], m["Ebs"]["VolumeId"])
                for m in inst.get("BlockDeviceMappings") or [] if "Ebs" in m)


def _render(att):
    if not att:
        return ""
    return "".join("%s: %s\n" % (k, att.get(k)) for k in ("instance", "volume", "volume_id",
                                                          "device", "attach_id"))


def _result(inst, vol, device):
    return {"instance": tag_dict(inst).get("Name"), "instance_id": inst["InstanceId"],
            "volume": tag_dict(vol).get("Name"), "volume_id": vol["VolumeId"], "device": device,
            "attach_id": resources.device_attach_id(device) if device else None,
            "provider": "aws"}


def lookup(conn, instance, volume):
    inst = resources.find_instance(conn, instance)
    if inst is None:
        raise OpsError("instance %r does not exist in %s (no running or stopped instance of that "
                       "Name tagged CreatedBy=ops)" % (instance, conn.region))
    vol = resources.find_volume(conn, volume)
    if vol is None:
        raise OpsError("volume %r does not exist in %s; create it with unikernel.ops.ops_volume "
                       "(provider: aws)" % (volume, conn.region))
    return inst, vol


def plan_attach(conn, inst, vol, attach_id, taken=None):
    """(device, already attached) for vol on inst; refuses what would collide.

    taken: devices other volumes of the same request already hold (boot volumes)."""
    zone = (inst.get("Placement") or {}).get("AvailabilityZone")
    name = tag_dict(vol).get("Name")
    if vol.get("AvailabilityZone") and zone and vol["AvailabilityZone"] != zone:
        raise OpsError("volume %s (%s) is in zone %s and instance %s in %s: EBS attaches only "
                       "within a zone" % (name, vol["VolumeId"], vol["AvailabilityZone"],
                                          inst["InstanceId"], zone))
    want = resources.attach_device(attach_id) if attach_id is not None else None
    for a in vol.get("Attachments") or []:
        if a["InstanceId"] != inst["InstanceId"]:
            raise OpsError("volume %s (%s) is attached to instance %s at %s; detach it there "
                           "first (EBS volumes attach to one instance)"
                           % (name, vol["VolumeId"], a["InstanceId"], a["Device"]))
        if want and a["Device"] != want:
            raise OpsError("volume %s is attached to this instance at %s, not %s (%%%d); detach "
                           "it first to move it" % (name, a["Device"], want, attach_id))
        return a["Device"], True
    used = _mappings(inst)
    used.update(taken or {})
    if want:
        holder = used.get(want)
        if holder and holder != vol["VolumeId"]:
            raise OpsError("device %s (%%%d) of instance %s is held by volume %s; choose another "
                           "attach_id or detach that volume first"
                           % (want, attach_id, inst["InstanceId"], holder_name(conn, holder)))
        return want, False
    for n in range(1, 26):
        device = resources.attach_device(n)
        if device not in used and device.replace("/dev/sd", "/dev/xvd") not in used:
            return device, False
    raise OpsError("instance %s has no free device /dev/sdb-/dev/sdz" % inst["InstanceId"])


def holder_name(conn, volume_id):
    v = resources.volume_by_id_or_none(conn, volume_id)
    name = tag_dict(v).get("Name") if v else None
    return "%s (%s)" % (name, volume_id) if name else volume_id


def attach(conn, inst, vol, device):
    conn.log.write("ec2.AttachVolume", vol["VolumeId"], conn.ec2.attach_volume,
                   note="to %s at %s" % (inst["InstanceId"], device), Device=device,
                   InstanceId=inst["InstanceId"], VolumeId=vol["VolumeId"])
    _wait_mapping(conn, inst["InstanceId"], vol["VolumeId"], device, True)


def detach(conn, inst, vol, device):
    conn.log.write("ec2.DetachVolume", vol["VolumeId"], conn.ec2.detach_volume,
                   note="from %s at %s" % (inst["InstanceId"], device), Device=device,
                   InstanceId=inst["InstanceId"], VolumeId=vol["VolumeId"])
    _wait_mapping(conn, inst["InstanceId"], vol["VolumeId"], device, False)


def _wait_mapping(conn, instance_id, volume_id, device, present):
    """Until the volume is in-use/available and the instance's mapping shows it/not."""
    if not conn.wait:
        return

    def probe():
        v = resources.volume_by_id(conn, volume_id)
        inst = resources.instance_by_id(conn, instance_id)
        mapped = _mappings(inst).get(device) == volume_id
        atts = [a for a in v.get("Attachments") or [] if a["InstanceId"] == instance_id]
        if present:
            done = v["State"] == "in-use" and mapped and atts and atts[0]["State"] == "attached"
        else:
            done = v["State"] == "available" and not mapped and not atts
        return done, "volume %s, %s" % (v["State"], "mapped" if mapped else "not mapped")
    wait_until(probe, "volume %s to be %s instance %s at %s" % (
        volume_id, "attached to" if present else "detached from", instance_id, device),
        conn.wait_timeout)


class AwsMounts(CloudBackend, MountProvider):

    def attached(self, p, check_mode=False):
        if p.get("attach_id") is not None:
            resources.attach_device(p["attach_id"])  # the range check, before any request
        conn = AwsConnection(self.params, check_mode)
        inst, vol = lookup(conn, p["instance"], p["volume"])
        device, already = plan_attach(conn, inst, vol, p.get("attach_id"))
        warnings = [READ_ONLY_NOTE % p["volume"]] if p.get("read_only") else []
        now = _result(inst, vol, device)
        if already:
            return Outcome(False, now, _render(now), _render(now), warnings)
        if check_mode:
            conn.log.plan("ec2.AttachVolume", vol["VolumeId"], "to %s at %s"
                          % (inst["InstanceId"], device))
        else:
            attach(conn, inst, vol, device)
        return Outcome(True, now, "", _render(now), warnings, conn.log.actions)

    def detached(self, p, check_mode=False):
        conn = AwsConnection(self.params, check_mode)
        inst, vol = lookup(conn, p["instance"], p["volume"])
        mine = [a for a in vol.get("Attachments") or [] if a["InstanceId"] == inst["InstanceId"]]
        if not mine:
            return Outcome(False, None)
        device = mine[0]["Device"]
        if device == inst.get("RootDeviceName"):
            raise OpsError("volume %s is the root device of instance %s" % (p["volume"],
                                                                            inst["InstanceId"]))
        was = _result(inst, vol, device)
        if check_mode:
            conn.log.plan("ec2.DetachVolume", vol["VolumeId"], "from %s at %s"
                          % (inst["InstanceId"], device))
        else:
            detach(conn, inst, vol, device)
        return Outcome(True, was, _render(was), "", actions=conn.log.actions)
