#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a local cloud endpoint holds, asked with the cloud's own SDK, not the collection's
cloud code; the bytes downloaded are then read with the collection's TFS and image readers
(which the unit tests check on their own, against Nanos' mkfs and byte vectors).

    readback.py CLOUD ENDPOINT_JSON WORK_DIR

CLOUD is aws, gcp or azure; ENDPOINT_JSON is what the endpoint's start command printed, plus
where to look (AWS: region; GCP: project, zone, bucket; the molecule scenarios save it).
Prints as JSON:
    volumes      {name: {path: sha256, or "directory", or "symlink TARGET"}} - the tree of
                 the bytes uploaded for each volume (AWS: its
                 snapshot's blocks over the EBS direct API; GCP: the disk.raw of its staging
                 object in Cloud Storage; Azure: the managed disk's page blob on Azurite),
                 written to WORK_DIR and read there with the collection's TFS reader
    images       {name: {program, mounts, klibs, environment}} - the same for each image,
                 read with the collection's image reader (the manifest of its root filesystem)
    instances    [name] - every instance (a name twice is there twice)
    attachments  {instance: {volume name: device}} - the device name (AWS), the
                 deviceName (GCP) or the LUN (Azure) the cloud has for each attached disk
    left         every volume, snapshot, image, instance, disk, object or blob the endpoint
                 still holds (terminated AWS instances aside), as "kind name"
    moto_internal  (AWS) what moto makes where AWS makes nothing, and which is left out of
                 "left": the untagged volume behind each snapshot (its StartSnapshot and
                 RegisterImage make one; their ids are kept in WORK_DIR/moto-internal.json from
                 run to run, so one is recognised after its snapshot is gone), and the snapshot
                 RegisterImage substitutes for the image's, once that image is gone
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import sys
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
TARGETS = os.path.join(PROJECT, "tests", "integration", "targets")
GIB = 1 << 30
EBS_BLOCK = 512 * 1024  # moto reports a BlockSize of 512, but keeps the 512 KiB blocks it is sent


def tfs_tree(path):
    """The tree of the TFS (a volume) in the file at path: {path: sha256 of a file,
    "directory", or "symlink TARGET"}."""
    from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
    with TFS(path) as tfs:
        tree = {}
        for entry in tfs.walk():
            if entry.kind == "file":
                h = hashlib.sha256()
                for chunk in tfs.iter_file(entry):
                    h.update(chunk)
                tree[os.fsdecode(entry.path)] = h.hexdigest()
            elif entry.kind == "symlink":
                tree[os.fsdecode(entry.path)] = "symlink " + os.fsdecode(entry.target)
            else:
                tree[os.fsdecode(entry.path)] = entry.kind
        return tree


def image_facts(path):
    """The manifest's program and mounts of the image in the file at path."""
    from ansible_collections.unikernel.ops.plugins.module_utils.images.store import read_image
    image = read_image(path)
    return {"program": image["program"], "mounts": image["mounts"], "klibs": image["klibs"],
            "environment": image["environment"]}


def read_back(downloads, instances, left, internal=None):
    """The answer, from downloads: (kind, name, path) of each volume's or image's bytes, and
    instances: (name, {volume: device})."""
    out = {"volumes": {}, "images": {}, "instances": sorted(i[0] for i in instances),
           "attachments": dict(instances), "left": sorted(left)}
    for kind, name, path in downloads:
        if kind == "volume":
            out["volumes"][name] = tfs_tree(path)
        else:
            out["images"][name] = image_facts(path)
    if internal is not None:
        out["moto_internal"] = sorted(internal)
    return out


def tags_of(resource):
    return dict((t["Key"], t["Value"]) for t in resource.get("Tags") or [])


# ---- AWS: moto --------------------------------------------------------------------------------

def aws(endpoint, work):
    import boto3
    kw = dict(endpoint_url=endpoint["endpoint_url"],
              region_name=endpoint.get("region", "us-east-1"), aws_access_key_id="testing",
              aws_secret_access_key="testing")
    ec2, ebs = boto3.client("ec2", **kw), boto3.client("ebs", **kw)
    downloads, names, left, internal = [], {}, [], []
    snapshots = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    # moto's own: its StartSnapshot and RegisterImage make an untagged volume behind each
    # snapshot, which AWS does not; remembered from run to run, as the snapshot may be gone
    behind_path = os.path.join(work, "moto-internal.json")
    behind = set()
    if os.path.exists(behind_path):
        with open(behind_path) as f:
            behind.update(json.load(f))
    behind.update(snap["VolumeId"] for snap in snapshots if snap.get("VolumeId"))
    with open(behind_path, "w") as f:
        json.dump(sorted(behind), f)
    for vol in ec2.describe_volumes()["Volumes"]:
        tags = tags_of(vol)
        if not tags and not vol["Attachments"] and vol["VolumeId"] in behind:
            internal.append("volume %s" % vol["VolumeId"])
            continue
        names[vol["VolumeId"]] = tags.get("Name", vol["VolumeId"])
        left.append("volume %s" % names[vol["VolumeId"]])
    images = ec2.describe_images(Owners=["self"])["Images"]
    left += ["image %s" % i["Name"] for i in images]
    for snap in snapshots:
        ami = (snap.get("Description") or "").partition("Auto-created snapshot for AMI ")[2]
        if ami and ami not in [i["ImageId"] for i in images]:
            # moto's RegisterImage replaces the image's mapping with a snapshot of its own and
            # leaves it behind on DeregisterImage; AWS registers the collection's snapshot
            internal.append("snapshot %s" % snap["SnapshotId"])
            continue
        left.append("snapshot %s" % snap["SnapshotId"])
        tags = tags_of(snap)
        if tags.get("unikernel-ops:kind") in ("volume", "image"):
            path = os.path.join(work, snap["SnapshotId"] + ".raw")
            read_snapshot(ebs, snap["SnapshotId"], snap["VolumeSize"] * GIB, path)
            downloads.append((tags["unikernel-ops:kind"], tags["Name"], path))
    instances = []
    for res in ec2.describe_instances()["Reservations"]:
        for inst in res["Instances"]:
            if inst["State"]["Name"] in ("terminated", "shutting-down"):
                continue
            name = tags_of(inst).get("Name")
            left.append("instance %s" % name)
            instances.append((name, dict(
                (names.get(m["Ebs"]["VolumeId"], m["Ebs"]["VolumeId"]), m["DeviceName"])
                for m in inst.get("BlockDeviceMappings") or []
                if m["DeviceName"] != inst.get("RootDeviceName") and "Ebs" in m)))
    return read_back(downloads, instances, left, internal)


def read_snapshot(ebs, snapshot_id, size, path):
    """The snapshot's blocks over the EBS direct API, into a sparse file of its size."""
    with open(path, "wb") as f:
        f.truncate(size)
        kwargs = {"SnapshotId": snapshot_id}
        while True:
            page = ebs.list_snapshot_blocks(**kwargs)
            for block in page["Blocks"]:
                got = ebs.get_snapshot_block(SnapshotId=snapshot_id, BlockIndex=block["BlockIndex"],
                                             BlockToken=block["BlockToken"])
                f.seek(block["BlockIndex"] * EBS_BLOCK)
                f.write(got["BlockData"].read())
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]


# ---- GCP: the Compute Engine fake and gcp-storage-emulator -------------------------------------

def gcp(endpoint, work):
    project, zone, bucket = endpoint["project"], endpoint["zone"], endpoint["bucket"]
    os.environ["REQUESTS_CA_BUNDLE"] = endpoint["ca_file"]
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint["gcs_url"]
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import compute_v1, storage
    from google.oauth2.credentials import Credentials
    kw = dict(credentials=Credentials("readback"),
              client_options=ClientOptions(api_endpoint=endpoint["url"]))
    blobs = storage.Client(project=project, credentials=AnonymousCredentials()).bucket(bucket)
    downloads, names, left = [], {}, []
    # every volume and image is imported from a staging object, named in its description
    for image in compute_v1.ImagesClient(**kw).list(project=project):
        left.append("image %s" % image.name)
        facts = json.loads(image.description or "{}")
        names[image.name] = facts.get("name", image.name)
        if facts.get("object"):
            raw = os.path.join(work, image.name + ".raw")
            bucket_name, obj = facts["object"][len("gs://"):].split("/", 1)  # gs://BUCKET/NAME
            read_targz(blobs.client.bucket(bucket_name).blob(obj), raw)
            downloads.append(("volume" if facts.get("kind") == "volume-image" else "image",
                              names[image.name], raw))
    disks = {}
    for disk in compute_v1.DisksClient(**kw).list(project=project, zone=zone):
        left.append("disk %s" % disk.name)
        disks[disk.name] = names.get(disk.source_image.rsplit("/", 1)[-1], disk.name)
    left += ["object %s" % b.name for b in blobs.list_blobs()]
    instances = []
    for inst in compute_v1.InstancesClient(**kw).list(project=project, zone=zone):
        left.append("instance %s" % inst.name)
        instances.append((inst.name, dict(
            (disks.get(d.source.rsplit("/", 1)[-1], d.source), d.device_name)
            for d in inst.disks if not d.boot)))
    return read_back(downloads, instances, left)


def read_targz(blob, raw):
    """The disk.raw of a .tar.gz object (as GCE imports it), into raw."""
    archive = raw + ".tar.gz"
    blob.download_to_filename(archive)
    with tarfile.open(archive) as tar:
        with tar.extractfile(tar.getmember("disk.raw")) as src, open(raw, "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
    os.unlink(archive)


# ---- Azure: the Resource Manager fake and Azurite ----------------------------------------------

def azure(endpoint, work):
    os.environ["REQUESTS_CA_BUNDLE"] = endpoint["ca_file"]
    sys.path.insert(0, os.path.join(TARGETS, "setup_azure", "files"))
    import arm_fake  # the fake's own client of its control endpoint: where a disk's blob is
    from azure.core.credentials import AccessToken
    from azure.mgmt.compute import ComputeManagementClient

    class Token:
        def get_token(self, *scopes, **kwargs):
            return AccessToken("readback", 4102444800)

    state, rg = endpoint["state_dir"], endpoint["resource_group"]
    compute = ComputeManagementClient(Token(), endpoint["subscription"], base_url=endpoint["url"])
    downloads, names, left = [], {}, []
    for disk in compute.disks.list_by_resource_group(rg):
        left.append("disk %s" % disk.name)
        tags = disk.tags or {}
        names[disk.id.lower()] = tags.get("unikernel-ops:label", disk.name)
        kind = {"volume": "volume", "image-disk": "image"}.get(tags.get("unikernel-ops:kind"))
        if kind:
            path = os.path.join(work, disk.name + ".vhd")  # a fixed VHD: the disk, then a footer
            arm_fake.read_blob(arm_fake._cli_blob(state, disk.name), path)
            downloads.append((kind, names[disk.id.lower()], path))
    left += ["image %s" % i.name for i in compute.images.list_by_resource_group(rg)]
    instances = []
    for vm in compute.virtual_machines.list(rg):
        left.append("vm %s" % vm.name)
        instances.append((vm.name, dict(
            (names.get(d.managed_disk.id.lower(), d.name), d.lun)
            for d in vm.storage_profile.data_disks or [])))
    svc = arm_fake._blob_service(endpoint["azurite_url"])
    for container in svc.list_containers():
        left += ["blob %s/%s" % (container.name, b.name)
                 for b in svc.get_container_client(container.name).list_blobs()]
    return read_back(downloads, instances, left)


def main(argv):
    if len(argv) != 4 or argv[1] not in ("aws", "gcp", "azure"):
        raise SystemExit(__doc__)
    with open(argv[2]) as f:
        endpoint = json.load(f)
    os.makedirs(argv[3], mode=0o700, exist_ok=True)
    sys.path.insert(0, os.path.join(PROJECT, ".build", "collections"))
    print(json.dumps(globals()[argv[1]](endpoint, argv[3]), sort_keys=True))


if __name__ == "__main__":
    main(sys.argv)
