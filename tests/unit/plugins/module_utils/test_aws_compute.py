# -*- coding: utf-8 -*-
"""provider: aws images, instances and hot-plug through boto3 against moto in server mode.

moto accepts a device in use, a volume attached elsewhere and a cross-zone attach: every
refusal asserted here is the collection's own."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import read_image
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec, backend
from ansible_collections.unikernel.ops.tests.unit.conftest import make_release
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils import aws_helpers as aws
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.aws_helpers import (
    moto_endpoint,
)

GIB = 1024 ** 3


def mutating(calls):
    return [c["operation"] for c in calls if c["mutating"]]


def recorded(cloud, fn):
    moto_endpoint.record(cloud["url"])
    try:
        return fn(), moto_endpoint.calls(cloud["url"])
    except BaseException:
        moto_endpoint.calls(cloud["url"])
        raise


@pytest.fixture
def kernel(cloud):
    make_release(cloud["ops"], "0.1.99")
    with open(cloud["ops"] + "/latest.txt", "w") as f:
        f.write("0.1.99")


def p(cloud, **kw):
    return aws.params(cloud["url"], cloud["ops"], **kw)


def volume(cloud, name, **kw):
    return backend("volumes", p(cloud, **kw)).present(VolumeSpec(name=name, size="1g")).volume


def image(cloud, c_programs, check_mode=False, force=False, **kw):
    kw.setdefault("name", "web")
    kw.setdefault("program", c_programs["static"])
    tags = kw.pop("tags", None)
    return backend("images", p(cloud, tags=tags)).present(ImageSpec(**kw), force=force,
                                                          check_mode=check_mode, want_diff=True)


def instance_params(cloud, **kw):
    base = dict(name="app", image="web", state="running", volumes=[], ports=[], shares={},
                wait_for=None, force=False, instance_type=None, subnet_id=None,
                security_groups=None, tags=None)
    base.update(kw)
    return p(cloud, **base)


def run_instance(cloud, check_mode=False, **kw):
    prm = instance_params(cloud, **kw)
    return backend("instances", prm).ensure(prm, check_mode=check_mode)


def mount(cloud, check_mode=False, state="attached", **kw):
    base = dict(instance="app", volume="v1", attach_id=None, read_only=False, state=state,
                force=False, timeout=10)
    base.update(kw)
    prm = p(cloud, **base)
    b = backend("mounts", prm)
    return (b.detached if state == "detached" else b.attached)(prm, check_mode=check_mode)


def test_image_mount_keys_are_checked_against_cloud_volumes(cloud, kernel, c_programs):
    with pytest.raises(OpsError, match="mount key 'assets' matches no volume in the cloud"):
        image(cloud, c_programs, mounts={"assets": "/assets"})
    with pytest.raises(OpsError, match="9p shares exist only on provider onprem"):
        image(cloud, c_programs, mounts={"/tmp": "/host"})
    volume(cloud, "assets")
    out = image(cloud, c_programs, mounts={"assets": "/assets", "%1": "/hot:ro"})
    assert out.changed and out.volume["mounts"] == {"assets": "/assets", "%1": "/hot:ro"}
    snap = out.volume["snapshot_id"]
    img = cloud["ec2"].describe_images(ImageIds=[out.volume["id"]])["Images"][0]
    tags = dict((t["Key"], t["Value"]) for t in img["Tags"])
    assert tags["unikernel-ops:snapshot"] == snap and tags["CreatedBy"] == "ops"
    assert tags["unikernel-ops:fingerprint"] == out.volume["fingerprint"]
    size = int(tags["unikernel-ops:size"])
    assert size % GIB == 0
    path = aws.read_snapshot(cloud["ebs"], [snap], size, str(cloud["tmp"] / "image.raw"))
    back = read_image(path)
    assert back["mounts"] == {"assets": "/assets", "%1": "/hot:ro"}
    assert back["program"] == "/hello-static"

    again, calls = recorded(cloud, lambda: image(cloud, c_programs,
                                                 mounts={"assets": "/assets", "%1": "/hot:ro"}))
    assert not again.changed and mutating(calls) == [] and calls
    changed = image(cloud, c_programs, mounts={"assets": "/data"})
    assert changed.changed and changed.volume["id"] != out.volume["id"]
    assert [i["ImageId"] for i in cloud["ec2"].describe_images(Owners=["self"])["Images"]] == \
        [changed.volume["id"]]
    assert [s["SnapshotId"] for s in cloud["ec2"].describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag:unikernel-ops:kind", "Values": ["image"]}]
    )["Snapshots"]] == [changed.volume["snapshot_id"]]

    gone = backend("images", p(cloud)).absent("web")
    assert gone.changed and gone.actions == [
        "ec2.DeregisterImage %s" % changed.volume["id"],
        "ec2.DeleteSnapshot %s" % changed.volume["snapshot_id"]]
    assert cloud["ec2"].describe_images(Owners=["self"])["Images"] == []
    assert not backend("images", p(cloud)).absent("web").changed


def test_instance_lifecycle_with_boot_volume_at_its_attach_id(cloud, kernel, c_programs):
    volume(cloud, "v1")
    image(cloud, c_programs, mounts={"%1": "/data"})
    (check, dummy), calls = recorded(cloud, lambda: run_instance(
        cloud, check_mode=True, volumes=[{"volume": "v1", "attach_id": 1}]))
    assert check.changed and mutating(calls) == []
    out, dummy = run_instance(cloud, volumes=[{"volume": "v1", "attach_id": 1}])
    assert out.changed and out.volume["state"] == "running"
    assert [(a["device"], a["volume"], a["attach_id"]) for a in out.volume["attachments"]] == \
        [("/dev/sdb", "v1", 1)]
    (again, dummy), calls = recorded(cloud, lambda: run_instance(
        cloud, volumes=[{"volume": "v1", "attach_id": 1}]))
    assert not again.changed and mutating(calls) == []
    stopped, dummy = run_instance(cloud, state="stopped")
    assert stopped.changed and stopped.volume["state"] == "stopped"
    assert not run_instance(cloud, state="stopped")[0].changed
    started, dummy = run_instance(cloud)
    assert started.changed and started.volume["state"] == "running"
    mismatch, extra = run_instance(cloud, instance_type="m5.large")
    assert not mismatch.changed and "instance_type" in extra["mismatch"][0]
    gone, dummy = run_instance(cloud, state="absent")
    assert gone.changed
    vol = cloud["ec2"].describe_volumes(
        Filters=[{"Name": "tag:Name", "Values": ["v1"]}])["Volumes"][0]
    assert vol["State"] == "available"  # terminating never deletes a volume
    assert not run_instance(cloud, state="absent")[0].changed


def test_force_replaces_an_instance_on_a_rebuilt_image_and_keeps_its_boot_volume(
        cloud, kernel, c_programs):
    volume(cloud, "v1")
    image(cloud, c_programs, mounts={"%1": "/data"})
    boot = [{"volume": "v1", "attach_id": 1}]
    first, dummy = run_instance(cloud, volumes=boot)
    image(cloud, c_programs, mounts={"%1": "/data"}, env={"VERSION": "2"})  # rebuilt: a new AMI
    kept, extra = run_instance(cloud, volumes=boot)
    assert not kept.changed and "image" in extra["mismatch"][0]
    assert kept.volume["id"] == first.volume["id"]
    replaced, dummy = run_instance(cloud, volumes=boot, force=True)
    assert replaced.changed and replaced.volume["id"] != first.volume["id"]
    assert replaced.actions[0] == "ec2.TerminateInstances %s (its volumes are kept)" % first.volume["id"]
    # the volume the old instance held is attached to the new one at the same %N
    assert [(a["device"], a["volume"]) for a in replaced.volume["attachments"]] == \
        [("/dev/sdb", "v1")]
    assert not run_instance(cloud, volumes=boot, force=True)[0].changed


@pytest.mark.parametrize("kw, message", [
    ({"image": "nope"}, "image 'nope' does not exist in us-east-1"),
    ({"volumes": [{"volume": "v1", "attach_id": 26}]}, "attach_id 26 is out of range on AWS"),
    ({"volumes": [{"volume": "v1", "attach_id": "x"}]}, "is not a number"),
    ({"volumes": ["missing"]}, "volume 'missing' does not exist"),
    ({"ports": ["8080"]}, "ports applies to provider onprem only"),
    ({"zone": "us-east-1zz"}, "not an availability zone"),
])
def test_instance_bad_input_leaves_nothing(cloud, kernel, c_programs, kw, message):
    volume(cloud, "v1")
    image(cloud, c_programs)
    moto_endpoint.record(cloud["url"])
    with pytest.raises(OpsError, match=message):
        run_instance(cloud, **kw)
    assert mutating(moto_endpoint.calls(cloud["url"])) == []


def test_hotplug_attach_ids_collisions_and_detach(cloud, kernel, c_programs):
    for n in ("v1", "v2", "v3"):
        volume(cloud, n)
    image(cloud, c_programs)
    run_instance(cloud)
    check, calls = recorded(cloud, lambda: mount(cloud, check_mode=True, attach_id=1))
    assert check.changed and mutating(calls) == []
    out = mount(cloud, attach_id=1)
    assert out.changed and out.volume["device"] == "/dev/sdb" and out.volume["attach_id"] == 1
    again, calls = recorded(cloud, lambda: mount(cloud, attach_id=1))
    assert not again.changed and mutating(calls) == []
    with pytest.raises(OpsError, match=r"device /dev/sdb \(%1\) of instance .* is held by "
                                       r"volume v1"):
        mount(cloud, volume="v2", attach_id=1)
    free = mount(cloud, volume="v2")
    assert free.volume["device"] == "/dev/sdc"
    with pytest.raises(OpsError, match="attach_id 26 is out of range"):
        mount(cloud, volume="v3", attach_id=26)
    with pytest.raises(OpsError, match="attach_id 0 is out of range"):
        mount(cloud, volume="v3", attach_id=0)
    with pytest.raises(OpsError, match="instance 'ghost' does not exist"):
        mount(cloud, instance="ghost")
    # a second instance may not take a volume the first holds
    run_instance(cloud, name="other")
    with pytest.raises(OpsError, match="volume v1 .* is attached to instance"):
        mount(cloud, instance="other")
    det, calls = recorded(cloud, lambda: mount(cloud, state="detached", check_mode=True))
    assert det.changed and mutating(calls) == []
    det = mount(cloud, state="detached")
    assert det.changed
    vol = cloud["ec2"].describe_volumes(VolumeIds=[out.volume["volume_id"]])["Volumes"][0]
    assert vol["State"] == "available" and vol["Attachments"] == []
    assert not mount(cloud, state="detached").changed


def test_cross_zone_attach_is_refused(cloud, kernel, c_programs):
    volume(cloud, "far", zone="us-east-1b")
    image(cloud, c_programs)
    run_instance(cloud)
    with pytest.raises(OpsError, match="is in zone us-east-1b and instance .* in us-east-1a"):
        mount(cloud, volume="far")
