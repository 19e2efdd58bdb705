# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Finding the collection's AWS resources by name, and describing them as modules return them.

A name is the `Name` tag, as ops sets it; a second resource of the same name is an error, never
a guess (amazon.aws' ec2_vol cannot find by name at all and creates duplicates).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.connection import tag_dict
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

GIB = 1024 ** 3
GONE_VOLUME = ("deleting", "deleted", "error")
GONE_INSTANCE = ("shutting-down", "terminated")
OWN_KEYS = ("Name", "CreatedBy")


def _filters(name=None, **tags):
    out = [{"Name": "tag:CreatedBy", "Values": [identity.CREATED_BY]}]
    if name is not None:
        out.append({"Name": "tag:Name", "Values": [name]})
    for k, v in tags.items():
        out.append({"Name": "tag:" + k, "Values": [v]})
    return out


def _one(found, what, name):
    if len(found) > 1:
        raise OpsError("%d %ss are named %r (%s); names must be unique - delete the extra ones"
                       % (len(found), what, name, ", ".join(found_ids(found))))
    return found[0] if found else None


def found_ids(found):
    return [r.get("VolumeId") or r.get("ImageId") or r.get("InstanceId") for r in found]


def _paged(conn, call, op, key, resource, **kwargs):
    def run():
        out = []
        for page in conn.ec2.get_paginator(op).paginate(**kwargs):
            out.extend(page[key])
        return out
    return conn.log.read(call, resource, run)


def volumes(conn, name=None):
    """Volumes tagged CreatedBy=ops (ours and ops'), optionally of one name."""
    found = _paged(conn, "ec2.DescribeVolumes", "describe_volumes", "Volumes",
                   name or "CreatedBy=ops", Filters=_filters(name))
    return [v for v in found if v["State"] not in GONE_VOLUME]


def find_volume(conn, name):
    """The one volume of that name, or None; a volume of that name that ops did not make is an
    error (the name is taken)."""
    found = _one(volumes(conn, name), "volume", name)
    if found is None:
        others = conn.log.read("ec2.DescribeVolumes", name, conn.ec2.describe_volumes,
                               Filters=[{"Name": "tag:Name", "Values": [name]}])["Volumes"]
        others = [v for v in others if v["State"] not in GONE_VOLUME]
        if others:
            raise OpsError("the name %r is taken by volume %s, which neither ops nor this "
                           "collection made (no CreatedBy=ops tag); choose another name"
                           % (name, others[0]["VolumeId"]))
    return found


def describe_volume(v):
    tags = tag_dict(v)
    atts = [{"instance_id": a["InstanceId"], "device": a["Device"], "state": a["State"]}
            for a in v.get("Attachments") or []]
    version = tags.get(identity.TFS_VERSION)
    return {"name": tags.get("Name"), "id": v["VolumeId"], "uuid": tags.get(identity.UUID),
            "label": tags.get(identity.LABEL, tags.get("Name")),
            "size": v["Size"] * GIB, "size_gib": v["Size"], "zone": v.get("AvailabilityZone"),
            "state": v["State"], "volume_type": v.get("VolumeType"), "iops": v.get("Iops"),
            "throughput": v.get("Throughput"), "encrypted": v.get("Encrypted"),
            "snapshot_id": tags.get(identity.SNAPSHOT) or v.get("SnapshotId") or None,
            "fingerprint": tags.get(identity.FINGERPRINT),
            "tfs_version": int(version) if version else None,
            "attachments": atts,
            "created": v["CreateTime"].isoformat() if v.get("CreateTime") else None,
            "tags": user_tags_of(tags), "provider": "aws",
            "built_by_collection": identity.KIND in tags}


def user_tags_of(tags):
    return dict((k, v) for k, v in tags.items()
                if k not in OWN_KEYS and not k.startswith(identity.KEY_PREFIX))


def images(conn, name=None):
    filters = _filters()
    if name is not None:
        filters.append({"Name": "name", "Values": [name]})
    return conn.log.read("ec2.DescribeImages", name or "CreatedBy=ops", conn.ec2.describe_images,
                         Owners=["self"], Filters=filters)["Images"]


def find_image(conn, name):
    found = _one(images(conn, name), "image", name)
    if found is None:
        others = conn.log.read("ec2.DescribeImages", name, conn.ec2.describe_images,
                               Owners=["self"],
                               Filters=[{"Name": "name", "Values": [name]}])["Images"]
        if others:
            raise OpsError("the image name %r is taken by %s, which neither ops nor this "
                           "collection made; choose another name" % (name, others[0]["ImageId"]))
    return found


def describe_image(img):
    tags = tag_dict(img)
    return {"name": img.get("Name"), "id": img["ImageId"], "state": img.get("State"),
            "snapshot_id": tags.get(identity.SNAPSHOT), "fingerprint": tags.get(identity.FINGERPRINT),
            "size": int(tags["unikernel-ops:size"]) if tags.get("unikernel-ops:size") else None,
            "created": img.get("CreationDate"), "tags": user_tags_of(tags), "provider": "aws",
            "built_by_collection": identity.KIND in tags}


def instances(conn, name=None):
    found = _paged(conn, "ec2.DescribeInstances", "describe_instances", "Reservations",
                   name or "CreatedBy=ops", Filters=_filters(name))
    return [i for r in found for i in r["Instances"] if i["State"]["Name"] not in GONE_INSTANCE]


def find_instance(conn, name):
    return _one(instances(conn, name), "instance", name)


def instance_by_id(conn, instance_id):
    got = conn.log.read("ec2.DescribeInstances", instance_id, conn.ec2.describe_instances,
                        InstanceIds=[instance_id])["Reservations"]
    return got[0]["Instances"][0] if got and got[0]["Instances"] else None


def volume_by_id_or_none(conn, volume_id):
    """None once the volume is gone (DescribeVolumes then fails with NotFound)."""
    try:
        return volume_by_id(conn, volume_id)
    except OpsError as e:
        if (e.details.get("error") or {}).get("code") == "InvalidVolume.NotFound":
            return None
        raise


def volume_by_id(conn, volume_id):
    got = conn.log.read("ec2.DescribeVolumes", volume_id, conn.ec2.describe_volumes,
                        VolumeIds=[volume_id])["Volumes"]
    return got[0] if got else None


def describe_instance(inst, names=None):
    """names: volume id -> volume name, for the attachments."""
    tags = tag_dict(inst)
    root = inst.get("RootDeviceName")
    disks = []
    for m in inst.get("BlockDeviceMappings") or []:
        if m["DeviceName"] == root or "Ebs" not in m:
            continue
        vid = m["Ebs"]["VolumeId"]
        disks.append({"device": m["DeviceName"], "volume_id": vid,
                      "volume": (names or {}).get(vid), "state": m["Ebs"].get("Status"),
                      "attach_id": device_attach_id(m["DeviceName"])})
    return {"name": tags.get("Name"), "id": inst["InstanceId"], "state": inst["State"]["Name"],
            "image_id": inst.get("ImageId"), "instance_type": inst.get("InstanceType"),
            "zone": (inst.get("Placement") or {}).get("AvailabilityZone"),
            "subnet_id": inst.get("SubnetId"),
            "security_groups": sorted(g["GroupId"] for g in inst.get("SecurityGroups") or []),
            "private_ip": inst.get("PrivateIpAddress"), "public_ip": inst.get("PublicIpAddress"),
            "attachments": disks, "tags": user_tags_of(tags), "provider": "aws"}


# %N <-> device names: Nanos reads the EBS device name's last letter (NVMe vendor data on
# Nitro, the xvd minor on Xen), so %N is /dev/sd(a+N), N 1-25.
def attach_device(attach_id):
    if not isinstance(attach_id, int) or isinstance(attach_id, bool) or not 1 <= attach_id <= 25:
        raise OpsError("attach_id %r is out of range on AWS: %%N is the device /dev/sd(a+N), so "
                       "N is 1 to 25 (%%1 is /dev/sdb)" % (attach_id,))
    return "/dev/sd" + chr(ord("a") + attach_id)


def device_attach_id(device):
    letter = device[-1:] if device else ""
    for prefix in ("/dev/sd", "/dev/xvd", "xvd", "sd"):
        if device.startswith(prefix) and len(device) == len(prefix) + 1 and "b" <= letter <= "z":
            return ord(letter) - ord("a")
    return None
