# -*- coding: utf-8 -*-
"""provider: gcp through the real google-cloud-compute and google-cloud-storage clients, against
the Compute Engine fake (every request checked against compute.v1.json) and gcp-storage-emulator.
The uploaded object is downloaded and unpacked, and disk.raw read with our own reader."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import read_image
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec, backend
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.conftest import make_release
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils import gcp_helpers as g
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.test_aws_volumes import (
    assert_same_tree, make_tree,
)

GIB = 1024 ** 3


def p(gcp, **kw):
    return g.params(gcp["fake"].url, gcp["gcs"], gcp["ops"], **kw)


def mutating(gcp):
    return [r["operation"] for r in gcp["fake"].requests if r["mutating"]]


def objects(gcp):
    return sorted(b.name for b in gcp["storage"].list_blobs(g.BUCKET))


def present(gcp, check_mode=False, want_diff=False, **kw):
    cloud = {k: kw.pop(k) for k in ("volume_type", "tags") if k in kw}
    extra = {k: kw.pop(k) for k in ("zone", "bucket") if k in kw}
    return backend("volumes", p(gcp, **extra)).present(VolumeSpec(cloud=cloud, **kw),
                                                       check_mode=check_mode,
                                                       want_diff=want_diff)


@pytest.fixture
def kernel(gcp):
    make_release(gcp["ops"], "0.1.99")
    with open(gcp["ops"] + "/latest.txt", "w") as f:
        f.write("0.1.99")


def test_volume_object_is_a_targz_of_disk_raw_that_reads_back_identical(gcp):
    src = make_tree(gcp["tmp"] / "src")
    check = present(gcp, check_mode=True, want_diff=True, name="my_assets", source=str(src))
    assert check.changed and mutating(gcp) == [] and objects(gcp) == []
    assert "/big.bin" in check.after
    out = present(gcp, name="my_assets", source=str(src), size="1500m")
    assert out.changed
    vol = out.volume
    assert vol["resource_name"].startswith("my-assets-") and vol["name"] == "my_assets"
    assert vol["size_gib"] == 2 and "rounded up to 2 GiB" in vol["notes"][0]
    members, raw = g.read_archive(gcp["storage"], vol["object"], gcp["tmp"])
    assert [(n, s) for n, s, dummy in members] == [("disk.raw", 2 * GIB)]
    assert members[0][2]  # stored sparse: the holes were not sent
    assert vol["upload"]["bytes_sent"] < 45 * 1000 * 1000
    with TFS(raw) as tfs:
        assert tfs.label == "my_assets" and tfs.uuid == vol["uuid"]
        assert_same_tree(src, tfs)
    ops = mutating(gcp)
    assert ops == ["compute.images.insert", "compute.disks.insert"], ops
    assert "compute.instances.reset" not in ops

    gcp["fake"].requests.clear()
    again = present(gcp, name="my_assets", source=str(src), size="1500m")
    assert not again.changed and mutating(gcp) == [] and gcp["fake"].requests
    assert len(objects(gcp)) == 1


def test_changed_source_warns_force_rebuilds_and_absent_removes_all(gcp):
    src = gcp["tmp"] / "src"
    src.mkdir()
    (src / "a.txt").write_text("one\n")
    first = present(gcp, name="data", source=str(src)).volume
    (src / "a.txt").write_text("two\n")
    gcp["fake"].requests.clear()
    warned = present(gcp, name="data", source=str(src))
    assert not warned.changed and mutating(gcp) == [] and "force: true" in warned.warnings[0]
    out = present(gcp, name="data", source=str(src), force=True).volume
    assert out["uuid"] == first["uuid"] and out["image"] != first["image"]
    assert objects(gcp) == [out["object"].split("/", 3)[3]]
    dummy, raw = g.read_archive(gcp["storage"], out["object"], gcp["tmp"])
    with TFS(raw) as tfs:
        assert tfs.read_file(b"/a.txt") == b"two\n"
    grown = present(gcp, name="data", size="3g")
    assert grown.changed and grown.volume["size_gib"] == 3
    assert "compute.disks.resize" in grown.actions[0]
    with pytest.raises(OpsError, match="shrinking"):
        present(gcp, name="data", size="1g")
    b = backend("volumes", p(gcp))
    gcp["fake"].requests.clear()
    assert b.absent(VolumeSpec(name="data"), check_mode=True).changed and mutating(gcp) == []
    gone = b.absent(VolumeSpec(name="data"))
    assert gone.changed and [a.split()[0] for a in gone.actions] == [
        "compute.disks.delete", "compute.images.delete", "storage.objects.delete"]
    assert objects(gcp) == [] and not b.absent(VolumeSpec(name="data")).changed
    assert b.list_volumes() == []


@pytest.mark.parametrize("kw, message", [
    ({"bucket": "nope"}, "bucket 'nope' does not exist"),
    ({"zone": "mars-central1-a"}, "zone 'mars-central1-a' does not exist in project"),
    ({"size": "1.5g"}, "size '1.5g' is not valid"),
    ({"volume_type": "pd-fast"}, "volume_type 'pd-fast' is not a GCE disk type"),
    ({"tags": {"Team": "x"}}, "is not a valid GCE label"),
])
def test_volume_bad_input_leaves_nothing(gcp, kw, message):
    kw.setdefault("name", "bad")
    with pytest.raises(OpsError, match=message):
        present(gcp, **kw)
    assert mutating(gcp) == [] and objects(gcp) == []


def test_a_disk_name_taken_by_another_disk_is_refused(gcp):
    from google.api_core.client_options import ClientOptions
    from google.cloud import compute_v1
    from google.oauth2.credentials import Credentials
    disks = compute_v1.DisksClient(credentials=Credentials(token="t"), transport="rest",
                                   client_options=ClientOptions(api_endpoint=gcp["fake"].url))
    gcp["fake"].default_disk_size_gb = 1
    disks.insert(project=g.PROJECT, zone=g.ZONE, disk_resource=compute_v1.Disk(
        name="taken", size_gb=1))
    with pytest.raises(OpsError, match="the disk name 'taken' .* is taken by a disk this "
                                       "collection did not make"):
        present(gcp, name="taken")


def image(gcp, c_programs, check_mode=False, **kw):
    kw.setdefault("name", "web")
    kw.setdefault("program", c_programs["static"])
    return backend("images", p(gcp)).present(ImageSpec(**kw), check_mode=check_mode,
                                             want_diff=True)


def test_image_imported_from_the_same_bytes(gcp, kernel, c_programs):
    present(gcp, name="assets")
    check = image(gcp, c_programs, check_mode=True, mounts={"assets": "/assets"})
    assert check.changed and mutating(gcp).count("compute.images.insert") == 1  # the volume's
    out = image(gcp, c_programs, mounts={"assets": "/assets", "%2": "/hot"})
    assert out.changed
    members, raw = g.read_archive(gcp["storage"], out.volume["object"], gcp["tmp"])
    assert [m[0] for m in members] == ["disk.raw"] and members[0][1] % GIB == 0
    assert read_image(raw)["mounts"] == {"assets": "/assets", "%2": "/hot"}
    imgs = backend("images", p(gcp)).list_images()
    assert [(i["name"], i["guest_os_features"]) for i in imgs] == [("web", ["GVNIC"])]
    gcp["fake"].requests.clear()
    assert not image(gcp, c_programs, mounts={"assets": "/assets", "%2": "/hot"}).changed
    assert mutating(gcp) == []
    gone = backend("images", p(gcp)).absent("web")
    assert gone.changed and backend("images", p(gcp)).list_images() == []


def instance(gcp, check_mode=False, **kw):
    prm = dict(name="app", image="web", state="running", volumes=[], ports=[], shares={},
               wait_for=None, force=False, machine_type=None, network=None, network_tags=None,
               tags=None)
    prm.update(kw)
    prm = p(gcp, **prm)
    return backend("instances", prm).ensure(prm, check_mode=check_mode)


def mount(gcp, check_mode=False, state="attached", **kw):
    prm = dict(instance="app", volume="v1", attach_id=None, read_only=False, state=state,
               force=False, timeout=10)
    prm.update(kw)
    prm = p(gcp, **prm)
    b = backend("mounts", prm)
    return (b.detached if state == "detached" else b.attached)(prm, check_mode=check_mode)


def test_instance_and_hotplug_without_reset(gcp, kernel, c_programs):
    for n in ("v1", "v2", "v3"):
        present(gcp, name=n)
    image(gcp, c_programs)
    gcp["fake"].requests.clear()
    check, dummy = instance(gcp, check_mode=True, volumes=[{"volume": "v3", "attach_id": 3}])
    assert check.changed and mutating(gcp) == []
    out, dummy = instance(gcp, volumes=[{"volume": "v3", "attach_id": 3}])
    assert out.changed and out.volume["state"] == "RUNNING"
    assert [(a["device"], a["volume"]) for a in out.volume["attachments"]] == \
        [("persistent-disk-3", "v3")]
    gcp["fake"].requests.clear()
    assert not instance(gcp, volumes=[{"volume": "v3", "attach_id": 3}])[0].changed
    assert mutating(gcp) == []

    assert mount(gcp, check_mode=True, attach_id=2).changed and mutating(gcp) == []
    att = mount(gcp, attach_id=2)
    assert att.changed and att.volume["device"] == "persistent-disk-2"
    assert not mount(gcp, attach_id=2).changed
    with pytest.raises(OpsError, match="deviceName persistent-disk-2 \\(%2\\) of instance app "
                                       "is held by disk v1"):
        mount(gcp, volume="v2", attach_id=2)
    with pytest.raises(OpsError, match="attach_id 0 is out of range on GCP"):
        mount(gcp, volume="v2", attach_id=0)
    ro = mount(gcp, volume="v2", read_only=True)
    assert ro.volume["device"] == "persistent-disk-1" and ro.volume["read_only"]
    instance(gcp, name="other")
    with pytest.raises(OpsError, match="attached READ_WRITE to instance app"):
        mount(gcp, instance="other", volume="v1")
    assert mount(gcp, instance="other", volume="v2", read_only=True).changed  # readers share
    det = mount(gcp, state="detached")
    assert det.changed and not mount(gcp, state="detached").changed
    ops = [r["operation"] for r in gcp["fake"].requests]
    for verb in ("reset", "stop", "start"):
        assert "compute.instances.%s" % verb not in ops
    assert gcp["fake"].resets == []
    with pytest.raises(OpsError, match="instance 'ghost' does not exist"):
        mount(gcp, instance="ghost")

    stopped, dummy = instance(gcp, state="stopped")
    assert stopped.changed and stopped.volume["state"] == "TERMINATED"
    assert instance(gcp)[0].volume["state"] == "RUNNING"
    gone, dummy = instance(gcp, state="absent")
    assert gone.changed and not instance(gcp, state="absent")[0].changed
    v3 = [v for v in backend("volumes", p(gcp)).list_volumes() if v["name"] == "v3"][0]
    assert v3["attachments"] == []  # deleting an instance never deletes a volume


def test_no_token_in_results_or_errors(gcp):
    out = present(gcp, name="s")
    text = json.dumps([out.volume, out.actions], default=str)
    with pytest.raises(OpsError) as bad:
        present(gcp, name="t", zone="nowhere-1-a")
    text += bad.value.msg + json.dumps(bad.value.details, default=str)
    assert g.TOKEN not in text
    assert os.path.isdir(gcp["ops"])


@pytest.mark.skipif(__import__("shutil").which("qemu-system-x86_64") is None,
                    reason="qemu-system-x86_64 is not installed (bindep.txt)")
def test_local_preflight_of_the_gcp_device_model(gcp, kernel, c_programs, tmp_path):
    """The very bytes Compute Engine imports, booted under QEMU with the volume on virtio-scsi
    as device_id persistent-disk-2, the way the GCE instance presents it to Nanos."""
    from ansible_collections.unikernel.ops.plugins.module_utils.local import instances, records
    from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession
    vol = present(gcp, name="hot").volume
    img = image(gcp, c_programs, mounts={"%2": "/hot"}).volume
    local = tmp_path / "local" / ".ops"
    (local / "volumes").mkdir(parents=True)
    dummy, vol_raw = g.read_archive(gcp["storage"], vol["object"], tmp_path / "v")
    os.rename(vol_raw, str(local / "volumes" / ("hot:%s.raw" % vol["uuid"])))
    dummy, img_raw = g.read_archive(gcp["storage"], img["object"], tmp_path / "i")
    assert read_image(img_raw)["mounts"] == {"%2": "/hot"}
    store = records.InstanceStore(str(local))
    prm = dict(name="preflight", image=img_raw, state="running", memory="128M", cpus=1,
               ports=[], volumes=[{"volume": "hot", "attach_id": 2}], shares={}, accel="auto",
               wait_for=None, timeout=20, stop_timeout=1, force=False)
    out, dummy = instances.ensure_state(store, prm)
    try:
        assert out.changed
        inst, dummy = store.find("preflight")
        with QMPSession(inst.qmp_address) as qmp:
            atts = dict((a["id"], a) for a in qmp.attachments())
        assert atts["hot"]["attach_id"] == 2 and atts["hot"]["file"].endswith(
            "hot:%s.raw" % vol["uuid"])
    finally:
        for running in store.records()[0]:
            store.stop(running, 0.5)


def test_an_instance_name_taken_by_another_tool_is_never_touched(gcp, kernel, c_programs):
    from google.api_core.client_options import ClientOptions
    from google.cloud import compute_v1
    from google.oauth2.credentials import Credentials
    image(gcp, c_programs)
    gcp["fake"].add_image("debian", disk_size_gb=10)
    instances = compute_v1.InstancesClient(
        credentials=Credentials(token="t"), transport="rest",
        client_options=ClientOptions(api_endpoint=gcp["fake"].url))
    instances.insert(project=g.PROJECT, zone=g.ZONE, instance_resource=compute_v1.Instance(
        name="squat", machine_type="zones/%s/machineTypes/e2-small" % g.ZONE,
        disks=[compute_v1.AttachedDisk(boot=True, initialize_params=compute_v1.
                                       AttachedDiskInitializeParams(
                                           source_image="global/images/debian"))],
        network_interfaces=[compute_v1.NetworkInterface(network="global/networks/default")]))
    gcp["fake"].finish_operations()
    gcp["fake"].requests.clear()
    for state in ("running", "absent", "stopped"):
        with pytest.raises(OpsError, match="taken by an instance this collection did not make"):
            instance(gcp, name="squat", state=state)
    assert mutating(gcp) == []
