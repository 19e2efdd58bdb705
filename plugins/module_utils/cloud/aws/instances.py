# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Instances on AWS: RunInstances from the image found by name, boot volumes attached at their
%N devices, and the states running / stopped / absent, each waited for.

Volumes are attached with DeleteOnTermination false (AttachVolume's default), so terminating an
instance never deletes a volume's data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws import mounts, resources
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import (
    parse_boot_volumes, refuse_local_options,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.connection import (
    AwsConnection, tag_dict, tag_list, user_tags,
)
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.instance_flow import InstanceFlow
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.waits import wait_until
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.local.records import validate_instance_name
from ansible_collections.unikernel.ops.plugins.module_utils.providers import (
    CloudBackend, InstanceProvider,
)

DEFAULT_TYPE = "t2.micro"  # as ops


def _state_text(inst):
    if not inst:
        return "state: absent\n"
    d = resources.describe_instance(inst)
    shown = dict((k, d[k]) for k in ("state", "image_id", "instance_type", "zone", "attachments"))
    return json.dumps(shown, indent=1, sort_keys=True) + "\n"


class AwsInstances(CloudBackend, InstanceProvider):

    def list_instances(self, name=None, check_mode=False):
        conn = AwsConnection(self.params, check_mode=True)
        names = dict((v["VolumeId"], tag_dict(v).get("Name")) for v in resources.volumes(conn))
        return dict(instances=[resources.describe_instance(i, names)
                               for i in resources.instances(conn, name)], stale=[])

    def ensure(self, p, check_mode=False):
        name = validate_instance_name(p["name"])
        refuse_local_options(p, "aws")
        boot = parse_boot_volumes(p.get("volumes"), resources.attach_device)
        tags = user_tags(p.get("tags"))
        conn = AwsConnection(self.params, check_mode)
        outcome, extra = _Job(conn, p, name, boot, tags).run()
        outcome.actions = conn.log.actions
        return outcome, extra


class _Job(InstanceFlow):
    def __init__(self, conn, p, name, boot, tags):
        InstanceFlow.__init__(self, conn, p, name)
        self.boot, self.tags = boot, tags
        self.zone = None

    def find(self):
        return resources.find_instance(self.conn, self.name)

    def state_text(self, inst):
        return _state_text(inst)

    def describe(self, inst):
        names = dict((v["VolumeId"], tag_dict(v).get("Name"))
                     for v in resources.volumes(self.conn))
        return resources.describe_instance(inst, names)

    def image(self):
        if not self.p.get("image"):
            raise OpsError("image is required to run an instance")
        img = resources.find_image(self.conn, self.p["image"])
        if img is None:
            raise OpsError("image %r does not exist in %s; build it with unikernel.ops.ops_image "
                           "(provider: aws)" % (self.p["image"], self.conn.region))
        return img

    def volumes(self):
        zone = self.zone = self.conn.require_zone()
        out = []
        for item in self.boot:
            vol = resources.find_volume(self.conn, item["volume"])
            if vol is None:
                raise OpsError("volume %r does not exist in %s; create it with "
                               "unikernel.ops.ops_volume (provider: aws)"
                               % (item["volume"], self.conn.region))
            if vol.get("AvailabilityZone") and vol["AvailabilityZone"] != zone:
                raise OpsError("volume %s is in zone %s, not %s: EBS attaches only within a zone"
                               % (item["volume"], vol["AvailabilityZone"], zone))
            if item["read_only"]:
                self.warnings.append(mounts.READ_ONLY_NOTE % item["volume"])
            out.append((item, vol))
        return out

    def differences(self, inst, image):
        out = []
        if inst.get("ImageId") != image["ImageId"]:
            out.append("image: running %s, wanted %s" % (inst.get("ImageId"), image["ImageId"]))
        wanted_type = self.p.get("instance_type") or DEFAULT_TYPE
        if inst.get("InstanceType") != wanted_type:
            out.append("instance_type: running %s, wanted %s" % (inst.get("InstanceType"),
                                                                 wanted_type))
        zone = (inst.get("Placement") or {}).get("AvailabilityZone")
        if zone != self.conn.zone:
            out.append("zone: running in %s, wanted %s" % (zone, self.conn.zone))
        return out

    def _wait_state(self, instance_id, states, what):
        if not self.conn.wait:
            return resources.instance_by_id(self.conn, instance_id)

        def probe():
            inst = resources.instance_by_id(self.conn, instance_id)
            state = inst["State"]["Name"] if inst else "missing"
            return state in states, state
        wait_until(probe, "instance %s to be %s" % (instance_id, what), self.conn.wait_timeout)
        return resources.instance_by_id(self.conn, instance_id)

    def create(self, image, vols):
        zone = self.zone
        conn, p = self.conn, self.p
        itype = p.get("instance_type") or DEFAULT_TYPE
        if conn.log.check_mode:
            conn.log.plan("ec2.RunInstances", self.name, "%s from %s in %s"
                          % (itype, image["ImageId"], zone))
            return None
        own = dict(self.tags, Name=self.name, CreatedBy=identity.CREATED_BY)
        own[identity.KIND] = "instance"
        kw = {"ImageId": image["ImageId"], "InstanceType": itype, "MinCount": 1, "MaxCount": 1,
              "Placement": {"AvailabilityZone": zone},
              "TagSpecifications": [{"ResourceType": "instance", "Tags": tag_list(own)}]}
        if p.get("subnet_id"):
            kw["SubnetId"] = p["subnet_id"]
        if p.get("security_groups"):
            kw["SecurityGroupIds"] = p["security_groups"]
        got = conn.log.write("ec2.RunInstances", self.name, conn.ec2.run_instances,
                             note="%s from %s in %s" % (itype, image["ImageId"], zone), **kw)
        instance_id = got["Instances"][0]["InstanceId"]
        return self._wait_state(instance_id, ("running",), "running")

    def start(self, inst, restart):
        conn = self.conn
        iid = inst["InstanceId"]
        state = inst["State"]["Name"]
        if state == "stopping":
            inst = self._wait_state(iid, ("stopped",), "stopped")
            state = "stopped"
        if state == "stopped":
            if conn.log.check_mode:
                conn.log.plan("ec2.StartInstances", iid)
                return inst
            conn.log.write("ec2.StartInstances", iid, conn.ec2.start_instances, InstanceIds=[iid])
            return self._wait_state(iid, ("running",), "running")
        if restart:
            if conn.log.check_mode:
                conn.log.plan("ec2.RebootInstances", iid)
                return inst
            conn.log.write("ec2.RebootInstances", iid, conn.ec2.reboot_instances,
                           InstanceIds=[iid])
        return self._wait_state(iid, ("running",), "running") if state == "pending" else inst

    def attach(self, inst, vols):
        conn = self.conn
        # devices of the volumes with a fixed %N first, so the others never take them
        taken = dict((resources.attach_device(item["attach_id"]), vol["VolumeId"])
                     for item, vol in vols if item["attach_id"] is not None)
        for item, vol in vols:
            if inst is None:  # check mode, instance not made yet
                if item["attach_id"] is None:
                    conn.log.plan("ec2.AttachVolume", vol["VolumeId"], "at a free device")
                    continue
                device = resources.attach_device(item["attach_id"])
                conn.log.plan("ec2.AttachVolume", vol["VolumeId"], "at %s" % device)
                continue
            device, already = mounts.plan_attach(conn, inst, vol, item["attach_id"], taken)
            taken[device] = vol["VolumeId"]
            if already:
                continue
            if conn.log.check_mode:
                conn.log.plan("ec2.AttachVolume", vol["VolumeId"], "to %s at %s"
                              % (inst["InstanceId"], device))
            else:
                mounts.attach(conn, inst, vol, device)
        if inst is not None and not conn.log.check_mode and vols:
            inst = resources.instance_by_id(conn, inst["InstanceId"])
        return inst

    def stop(self, inst):
        conn = self.conn
        iid = inst["InstanceId"]
        if inst["State"]["Name"] in ("stopped", "stopping"):
            return self._wait_state(iid, ("stopped",), "stopped")
        if conn.log.check_mode:
            conn.log.plan("ec2.StopInstances", iid)
            return inst
        conn.log.write("ec2.StopInstances", iid, conn.ec2.stop_instances, InstanceIds=[iid])
        return self._wait_state(iid, ("stopped",), "stopped")

    def remove(self, inst):
        conn = self.conn
        iid = inst["InstanceId"]
        if conn.log.check_mode:
            conn.log.plan("ec2.TerminateInstances", iid, "its volumes are kept")
            return
        conn.log.write("ec2.TerminateInstances", iid, conn.ec2.terminate_instances,
                       note="its volumes are kept", InstanceIds=[iid])
        self._wait_state(iid, ("terminated",), "terminated")
