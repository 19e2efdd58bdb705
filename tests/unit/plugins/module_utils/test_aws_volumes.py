# -*- coding: utf-8 -*-
"""provider: aws volumes through the real boto3 clients against moto in server mode: the bytes
are read back from the endpoint and compared with the source through our own TFS reader."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec, backend
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils import aws_helpers as aws
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.aws_helpers import (
    moto_endpoint,
)

GIB = 1024 ** 3


def make_tree(root):
    """The tree of the issue: nested dirs, an empty dir, an empty file, a symlink, a non-ASCII
    name and a 40 MB file."""
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "empty-file").write_bytes(b"")
    (root / "a" / "b" / "c" / "deep.txt").write_text("deep\n")
    (root / "a" / "link").symlink_to("b/c/deep.txt")
    (root / "a" / "grüße-😀.txt").write_text("non-ascii\n")
    (root / "big.bin").write_bytes(os.urandom(40 * 1000 * 1000))
    return root


def volumes_backend(cloud, **kw):
    return backend("volumes", aws.params(cloud["url"], cloud["ops"], **kw))


def present(cloud, check_mode=False, want_diff=False, **kw):
    cloud_opts = {k: kw.pop(k) for k in ("volume_type", "iops", "throughput", "encrypted", "tags")
                  if k in kw}
    extra = {k: kw.pop(k) for k in ("zone",) if k in kw}
    spec = VolumeSpec(cloud=cloud_opts, **kw)
    return volumes_backend(cloud, **extra).present(spec, check_mode=check_mode,
                                                   want_diff=want_diff)


def recorded(cloud, fn):
    moto_endpoint.record(cloud["url"])
    try:
        result = fn()
    finally:
        calls = moto_endpoint.calls(cloud["url"])
    return result, calls


def mutating(calls):
    return [c["operation"] for c in calls if c["mutating"]]


def assert_same_tree(source, tfs):
    """Every entry of source is in the volume with the same kind, bytes and link target, and
    nothing else is."""
    seen = set()
    for dirpath, dirnames, filenames in os.walk(str(source)):
        for name in dirnames + filenames:
            host = os.path.join(dirpath, name)
            guest = "/" + os.path.relpath(host, str(source))
            entry = tfs.lookup(guest.encode())
            assert entry is not None, guest
            seen.add(guest)
            if os.path.islink(host):
                assert entry.kind == "symlink"
                assert entry.target == os.readlink(host).encode()
            elif os.path.isdir(host):
                assert entry.kind == "directory"
            else:
                assert entry.kind == "file"
                with open(host, "rb") as f:
                    assert tfs.read_file(guest.encode()) == f.read(), guest
    assert set(e.path.decode() for e in tfs.walk()) == seen


def read_back(cloud, volume_id, chain=None):
    v = cloud["ec2"].describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    tags = dict((t["Key"], t["Value"]) for t in v["Tags"])
    path = str(cloud["tmp"] / ("readback-%s.raw" % volume_id))
    aws.read_snapshot(cloud["ebs"], chain or [tags["unikernel-ops:snapshot"]], v["Size"] * GIB,
                      path)
    return path, v, tags


def test_volume_reads_back_identical_and_reruns_change_nothing(cloud):
    src = make_tree(cloud["tmp"] / "src")
    out = present(cloud, name="assets", source=str(src), size="1g")
    assert out.changed
    vol = out.volume
    assert vol["size"] == GIB and vol["zone"] == aws.ZONE and vol["id"].startswith("vol-")
    path, v, tags = read_back(cloud, vol["id"])
    assert v["SnapshotId"] == tags["unikernel-ops:snapshot"]
    assert tags["Name"] == "assets" and tags["CreatedBy"] == "ops"
    assert tags["unikernel-ops:uuid"] == vol["uuid"]
    with TFS(path) as tfs:
        assert tfs.label == "assets" and tfs.uuid == vol["uuid"]
        assert_same_tree(src, tfs)
    # only the blocks that hold data were sent: at most 1.05x the volume's non-zero bytes
    assert vol["upload"]["bytes_sent"] <= 1.05 * aws.nonzero_bytes(path)
    assert vol["upload"]["bytes_sent"] >= 40 * 1000 * 1000
    assert any(a.startswith("ec2.CreateVolume") for a in out.actions)

    again, calls = recorded(cloud, lambda: present(cloud, name="assets", source=str(src),
                                                   size="1g"))
    assert not again.changed and again.warnings == []
    assert mutating(calls) == [] and calls, calls
    assert again.volume["id"] == vol["id"]


def test_check_mode_makes_read_only_calls_and_creates_nothing(cloud):
    src = make_tree(cloud["tmp"] / "src")
    out, calls = recorded(cloud, lambda: present(cloud, check_mode=True, want_diff=True,
                                                 name="assets", source=str(src)))
    assert out.changed
    assert mutating(calls) == []
    assert {c["operation"] for c in calls} >= {"DescribeAvailabilityZones", "DescribeVolumes"}
    assert "ec2.CreateVolume assets" in " ".join(out.actions)
    assert "/big.bin" in out.after
    assert cloud["ec2"].describe_volumes(
        Filters=[{"Name": "tag:CreatedBy", "Values": ["ops"]}])["Volumes"] == []
    assert not os.listdir(os.path.join(cloud["ops"], ".unikernel-ops", "tmp")) \
        if os.path.isdir(os.path.join(cloud["ops"], ".unikernel-ops", "tmp")) else True


def test_changed_source_warns_then_force_sends_only_changed_blocks(cloud):
    src = cloud["tmp"] / "src"
    src.mkdir()
    for i in range(20):
        (src / ("f%02d.bin" % i)).write_bytes(os.urandom(1000 * 1000))
    first = present(cloud, name="data", source=str(src), size="2g").volume
    (src / "f07.bin").write_bytes(os.urandom(1000 * 1000))
    warned, calls = recorded(cloud, lambda: present(cloud, name="data", source=str(src)))
    assert not warned.changed and mutating(calls) == []
    assert "differs from the source" in warned.warnings[0] and "force: true" in warned.warnings[0]
    out = present(cloud, name="data", source=str(src), force=True)
    assert out.changed
    new = out.volume
    assert new["id"] != first["id"] and new["uuid"] == first["uuid"] and new["replaced"] == \
        first["id"]
    # a 1 MB file spans at most 3 blocks, and its log record one more
    assert 1 <= new["upload"]["blocks_sent"] <= 4, new["upload"]
    assert new["upload"]["blocks_unchanged"] >= 30
    ids = [v["VolumeId"] for v in cloud["ec2"].describe_volumes(
        Filters=[{"Name": "tag:CreatedBy", "Values": ["ops"]}])["Volumes"]]
    assert ids == [new["id"]]
    snaps = cloud["ec2"].describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:Name", "Values": ["data"]}])["Snapshots"]
    assert [s["SnapshotId"] for s in snaps] == [new["snapshot_id"]]
    # EBS children inherit the parent's blocks; moto keeps them even after the delete
    path, dummy, dummy2 = read_back(cloud, new["id"], [first["snapshot_id"], new["snapshot_id"]])
    with TFS(path) as tfs:
        assert_same_tree(src, tfs)


def test_grow_in_place_and_refuse_shrink(cloud):
    first = present(cloud, name="scratch", size="1g").volume
    grown = present(cloud, name="scratch", size="3g")
    assert grown.changed and grown.volume["size_gib"] == 3 and grown.volume["id"] == first["id"]
    assert "ec2.ModifyVolume" in grown.actions[0]
    assert not present(cloud, name="scratch", size="3g").changed
    with pytest.raises(OpsError, match="shrinking"):
        present(cloud, name="scratch", size="1g")


def test_size_rounds_up_to_whole_gib_and_says_so(cloud):
    out = present(cloud, name="small", size="100m").volume
    assert out["size"] == GIB and out["requested_size"] == 100 * 1024 * 1024
    assert "rounded up to 1 GiB" in out["notes"][0]


@pytest.mark.parametrize("kw, message", [
    ({"zone": "us-east-1zz"}, "zone 'us-east-1zz' is not an availability zone of region us-east-1"),
    ({"size": "10GB"}, "size '10GB' is not valid"),
    ({"volume_type": "gp9"}, "volume_type 'gp9' is not an EBS volume type"),
    ({"volume_type": "gp2", "throughput": 200}, "throughput applies to volume type gp3 only"),
    ({"tags": {"Name": "x"}}, "tag 'Name' is set by the collection"),
    ({"name": "a:b"}, "cannot be used"),
])
def test_bad_input_is_refused_before_any_mutating_call(cloud, kw, message):
    kw.setdefault("name", "bad")
    moto_endpoint.record(cloud["url"])
    with pytest.raises(OpsError, match=message):
        present(cloud, **kw)
    assert mutating(moto_endpoint.calls(cloud["url"])) == []
    assert cloud["ec2"].describe_volumes(
        Filters=[{"Name": "tag:CreatedBy", "Values": ["ops"]}])["Volumes"] == []


def test_a_name_taken_by_a_volume_ops_did_not_make_is_refused(cloud):
    other = cloud["ec2"].create_volume(
        AvailabilityZone=aws.ZONE, Size=1,
        TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "db"}]}])
    with pytest.raises(OpsError, match="the name 'db' is taken by volume %s" % other["VolumeId"]):
        present(cloud, name="db", size="1g")


def test_absent_deletes_volume_and_its_snapshot_and_refuses_while_attached(cloud):
    vol = present(cloud, name="gone", size="1g").volume
    inst = cloud["ec2"].run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1,
                                      Placement={"AvailabilityZone": aws.ZONE})["Instances"][0]
    cloud["ec2"].attach_volume(VolumeId=vol["id"], InstanceId=inst["InstanceId"],
                               Device="/dev/sdf")
    b = volumes_backend(cloud)
    with pytest.raises(OpsError, match="attached to instance %s" % inst["InstanceId"]):
        b.absent(VolumeSpec(name="gone"))
    cloud["ec2"].detach_volume(VolumeId=vol["id"], InstanceId=inst["InstanceId"])
    check, calls = recorded(cloud, lambda: b.absent(VolumeSpec(name="gone"), check_mode=True))
    assert check.changed and mutating(calls) == []
    out = b.absent(VolumeSpec(name="gone"))
    assert out.changed and out.actions == ["ec2.DeleteVolume %s" % vol["id"],
                                           "ec2.DeleteSnapshot %s" % vol["snapshot_id"]]
    assert not b.absent(VolumeSpec(name="gone")).changed
    assert cloud["ec2"].describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:Name", "Values": ["gone"]}])["Snapshots"] == []


def test_info_lists_ours_and_reads_contents_from_the_snapshot(cloud):
    src = cloud["tmp"] / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "x.txt").write_text("x\n")
    present(cloud, name="listed", source=str(src))
    found = volumes_backend(cloud).list_volumes(contents=True, checksums=True)
    assert [v["name"] for v in found] == ["listed"]
    files = dict((c["path"], c) for c in found[0]["contents"])
    assert files["/d/x.txt"]["sha256"] == hashlib.sha256(b"x\n").hexdigest()
    assert json.dumps(found, default=str).count(aws.SECRET) == 0
