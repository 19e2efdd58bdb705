# -*- coding: utf-8 -*-
"""provider: azure through the real azure-mgmt-compute and azure-storage-blob clients, against
the Resource Manager fake (every body deserialized with azure-mgmt-compute's models, operations
polled) and Azurite. The uploaded pages are downloaded from Azurite, the VHD footer checked (by
our parser and by qemu-img) and the TFS read with our own reader against the source."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure import pages, vhd
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import read_image
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec, backend
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.conftest import make_release
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils import azure_helpers as az
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.test_aws_volumes import (
    assert_same_tree, make_tree,
)

GIB = 1024 ** 3
MIB = 1024 * 1024


def p(azure, **kw):
    return az.params(azure, **kw)


def present(azure, check_mode=False, want_diff=False, **kw):
    cloud = {k: kw.pop(k) for k in ("volume_type", "tags", "iops") if k in kw}
    extra = {k: kw.pop(k) for k in ("resource_group", "location", "access_token", "client_id",
                                    "secret", "tenant") if k in kw}
    return backend("volumes", p(azure, **extra)).present(VolumeSpec(cloud=cloud, **kw),
                                                         check_mode=check_mode,
                                                         want_diff=want_diff)


def mutating(azure):
    return az.mutations(azure["fake"])


@pytest.fixture
def kernel(azure):
    make_release(azure["ops"], "0.1.99")
    with open(azure["ops"] + "/latest.txt", "w") as f:
        f.write("0.1.99")


# -- the VHD footer and the page runs, on their own ------------------------------------------

@pytest.mark.parametrize("size", [20 * MIB, 6 * GIB, 130 * GIB + 7 * MIB])
def test_vhd_footer_is_what_qemu_img_reads_as_a_fixed_vhd(tmp_path, size):
    raw = vhd.footer(size, bytes(range(16)), 1764547200)
    f = vhd.parse(raw)
    assert f["current_size"] == f["original_size"] == size and f["disk_type"] == 2
    assert f["timestamp"] == 1764547200 and f["unique_id"] == bytes(range(16))
    bad = bytearray(raw)
    bad[100] ^= 1
    with pytest.raises(ValueError, match="checksum"):
        vhd.parse(bytes(bad))
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (qemu-utils, bindep.txt)")
    path = tmp_path / "disk.vhd"
    with open(str(path), "wb") as out:
        out.truncate(size)
        out.seek(size)
        out.write(raw)
    info = json.loads(subprocess.check_output(
        ["qemu-img", "info", "--output=json", "--image-opts",
         "driver=vpc,force_size_calc=current_size,file.filename=%s" % path]))
    assert info["format"] == "vpc" and info["virtual-size"] == size
    # the footer qemu-img writes for the same size (ops' own command, with force_size as Azure
    # asks) has the same fields but for the writer, the time, the disk's id and the geometry
    # (qemu-img marks "use the current size" with the largest CHS; ours is the spec's CHS)
    (tmp_path / "disk.raw").write_bytes(b"")
    os.truncate(str(tmp_path / "disk.raw"), size)
    subprocess.check_call(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
                           "subformat=fixed,force_size=on", str(tmp_path / "disk.raw"),
                           str(tmp_path / "theirs.vhd")])
    with open(str(tmp_path / "theirs.vhd"), "rb") as vf:
        vf.seek(-512, os.SEEK_END)
        theirs = vhd.parse(vf.read())
    for key in ("features", "version", "data_offset", "original_size", "current_size",
                "disk_type"):
        assert f[key] == theirs[key], key


def test_vhd_footer_refuses_a_data_part_that_is_not_whole_mib():
    with pytest.raises(ValueError, match="whole MiB"):
        vhd.footer(20 * MIB + 512, bytes(16))


@pytest.mark.parametrize("layout", [
    [], [(0, 1)], [(511, 2)], [(4096, 100), (4196, 3000)], [(70000, 1), (200000, 65536 * 2)],
    [(CH - 1, 1) for CH in (pages.CHUNK,)],
])
def test_nonzero_runs_cover_exactly_the_non_zero_pages(layout):
    data = bytearray(pages.CHUNK)
    for off, length in layout:
        data[off:off + length] = b"\x5a" * length
    runs = pages.nonzero_runs(bytes(data))
    covered = bytearray(len(data))
    for off, length in runs:
        assert off % 512 == 0 and length % 512 == 0 and length > 0
        covered[off:off + length] = b"\x01" * length
    for page in range(0, len(data), 512):
        holds = any(data[page:page + 512])
        assert bool(covered[page]) == holds, page
    assert all(b - a > 0 for (a, dummy), (b, dummy2) in zip(runs, runs[1:]))


# -- volumes ------------------------------------------------------------------------------

def test_volume_uploads_a_fixed_vhd_that_reads_back_identical(azure):
    src = make_tree(azure["tmp"] / "src")
    check = present(azure, check_mode=True, want_diff=True, name="my_assets", source=str(src))
    assert check.changed and mutating(azure) == []
    assert "/big.bin" in check.after and az.disks(azure["fake"]) == []
    assert [a.split()[0] for a in check.actions] == [
        "Disks.CreateOrUpdate", "Disks.GrantAccess", "PutPage", "Disks.RevokeAccess"]

    out = present(azure, name="my_assets", source=str(src), size="100m", tags={"team": "web"})
    assert out.changed
    vol = out.volume
    assert vol["state"] == "Unattached" and vol["size"] == 100 * MIB
    assert vol["resource_name"] == "my_assets" and vol["tags"] == {"team": "web"}
    path, footer = az.read_disk(azure, "my_assets")
    assert footer["current_size"] == 100 * MIB
    with TFS(path) as tfs:
        assert tfs.label == "my_assets" and tfs.uuid == vol["uuid"]
        assert_same_tree(src, tfs)
    sent = vol["upload"]["bytes_sent"]
    assert sent == az.written_bytes(azure, "my_assets")
    assert sent <= 1.05 * az.nonzero_file_bytes(path) + 512  # the footer
    assert mutating(azure) == ["Disks_CreateOrUpdate", "Disks_GrantAccess", "Disks_RevokeAccess"]

    az.clear(azure["fake"])
    again = present(azure, name="my_assets", source=str(src), size="100m", tags={"team": "web"})
    assert not again.changed and again.warnings == [] and mutating(azure) == []
    assert az.written_bytes(azure, "my_assets") == sent


def test_a_6_gib_volume_sends_only_its_data_pages(azure):
    """Over 4 GiB (ops' uint32 sizes overflow there): 50 MB of data in a 6 GiB disk."""
    src = azure["tmp"] / "src"
    src.mkdir()
    for i in range(5):
        (src / ("part%d.bin" % i)).write_bytes(os.urandom(10 * 1000 * 1000))
    out = present(azure, name="big", source=str(src), size="6g")
    vol = out.volume
    assert vol["size"] == 6 * GIB and vol["size_gib"] == 6
    path, footer = az.read_disk(azure, "big")
    assert footer["current_size"] == 6 * GIB and os.path.getsize(path) == 6 * GIB
    nonzero = az.nonzero_file_bytes(path)
    assert vol["upload"]["bytes_sent"] <= 1.05 * nonzero + 512
    assert az.written_bytes(azure, "big") == vol["upload"]["bytes_sent"]
    with TFS(path) as tfs:
        assert_same_tree(src, tfs)


def test_changed_source_warns_force_rebuilds_grow_and_absent(azure):
    src = azure["tmp"] / "src"
    src.mkdir()
    (src / "a.txt").write_text("one\n")
    first = present(azure, name="data", source=str(src)).volume
    (src / "a.txt").write_text("two\n")
    az.clear(azure["fake"])
    warned = present(azure, name="data", source=str(src))
    assert not warned.changed and "does not match" in warned.warnings[0]
    assert mutating(azure) == []
    rebuilt = present(azure, name="data", source=str(src), force=True).volume
    assert rebuilt["uuid"] == first["uuid"] and rebuilt["rebuilt_because"]
    path, dummy = az.read_disk(azure, "data")
    with TFS(path) as tfs:
        assert tfs.read_file(b"/a.txt") == b"two\n" and tfs.uuid == first["uuid"]

    grown = present(azure, name="data", source=str(src), size="2g")
    assert grown.changed and grown.volume["size_gib"] == 2
    assert "Disks_Update" in mutating(azure)
    with pytest.raises(OpsError, match="shrinking would lose data"):
        present(azure, name="data", source=str(src), size="30m")
    gone = backend("volumes", p(azure)).absent(VolumeSpec(name="data"))
    assert gone.changed and az.disks(azure["fake"]) == []
    assert not backend("volumes", p(azure)).absent(VolumeSpec(name="data")).changed


@pytest.mark.parametrize("kw, message", [
    ({"resource_group": "nowhere"}, "resource group 'nowhere' does not exist"),
    ({"volume_type": "pd-ssd"}, "not a managed disk SKU"),
    ({"iops": 3000}, "iops applies to provider aws"),
    ({"tags": {"unikernel-ops:kind": "x"}}, "set by the collection"),
    ({"location": None}, "location is required"),
])
def test_volume_bad_input_leaves_nothing(azure, kw, message):
    with pytest.raises(OpsError, match=message):
        present(azure, name="v", **kw)
    assert az.disks(azure["fake"]) == [] and mutating(azure) == []


def test_a_disk_name_taken_by_another_disk_is_refused(azure):
    az.foreign_disk(azure, "taken")
    az.clear(azure["fake"])
    for call in (lambda: present(azure, name="taken"),
                 lambda: backend("volumes", p(azure)).absent(VolumeSpec(name="taken"))):
        with pytest.raises(OpsError, match="'taken' .*is taken by a disk this collection did "
                                           "not make"):
            call()
    assert mutating(azure) == [] and az.disks(azure["fake"]) == ["taken"]


def test_a_failed_upload_leaves_no_disk(azure):
    azure["fake"].fail_operation("Disks_RevokeAccess", "InternalError", "injected")
    with pytest.raises(OpsError, match="injected"):
        present(azure, name="half")
    assert az.disks(azure["fake"]) == []


# -- images, instances, hot-plug ----------------------------------------------------------

def image(azure, c_programs, check_mode=False, **kw):
    kw.setdefault("name", "web")
    kw.setdefault("program", c_programs["static"])
    return backend("images", p(azure)).present(ImageSpec(**kw), check_mode=check_mode,
                                               want_diff=True)


def test_image_is_the_same_bytes_with_the_azure_klibs(azure, kernel, c_programs):
    present(azure, name="assets")
    az.clear(azure["fake"])
    check = image(azure, c_programs, check_mode=True, mounts={"assets": "/assets"})
    assert check.changed and mutating(azure) == []
    out = image(azure, c_programs, mounts={"assets": "/assets", "%2": "/hot"})
    assert out.changed and out.volume["klibs"] == ["cloud_init", "tls"]
    path, footer = az.read_disk(azure, out.volume["disk"])
    assert footer["current_size"] % MIB == 0
    img = read_image(path)
    assert img["mounts"] == {"assets": "/assets", "%2": "/hot"}
    assert img["klibs"] == ["cloud_init", "tls"]
    listed = backend("images", p(azure)).list_images()
    assert [(i["name"], i["disk"]) for i in listed] == [("web", out.volume["disk"])]
    az.clear(azure["fake"])
    assert not image(azure, c_programs, mounts={"assets": "/assets", "%2": "/hot"}).changed
    assert mutating(azure) == []
    old_disk = out.volume["disk"]
    new = image(azure, c_programs, mounts={"assets": "/data"})
    assert new.changed and new.volume["disk"] != old_disk
    assert old_disk not in az.disks(azure["fake"])
    gone = backend("images", p(azure)).absent("web")
    assert gone.changed and backend("images", p(azure)).list_images() == []
    assert az.disks(azure["fake"]) == ["assets"]


def instance(azure, check_mode=False, **kw):
    prm = dict(name="app", image="web", state="running", volumes=[], ports=[], shares={},
               wait_for=None, force=False, vm_size=None, network_interface=None,
               subnet_id=azure["subnet_id"], tags=None)
    prm.update(kw)
    prm = p(azure, **prm)
    return backend("instances", prm).ensure(prm, check_mode=check_mode)


def mount(azure, check_mode=False, state="attached", **kw):
    prm = dict(instance="app", volume="v1", attach_id=None, read_only=False, state=state,
               force=False, timeout=10)
    prm.update(kw)
    prm = p(azure, **prm)
    b = backend("mounts", prm)
    return (b.detached if state == "detached" else b.attached)(prm, check_mode=check_mode)


def luns(result):
    return [(a["lun"], a["volume"]) for a in result.volume["attachments"]]


def test_instance_states_with_volumes_at_their_luns(azure, kernel, c_programs):
    for n in ("v1", "v2", "v3"):
        present(azure, name=n)
    image(azure, c_programs)
    az.clear(azure["fake"])
    vols = [{"volume": "v3", "attach_id": 3}, "v1"]
    check, dummy = instance(azure, check_mode=True, volumes=vols)
    assert check.changed and mutating(azure) == []
    out, dummy = instance(azure, volumes=vols)
    assert out.changed and out.volume["state"] == "running"
    assert luns(out) == [(0, "v1"), (3, "v3")]
    assert out.volume["vm_size"] == "Standard_B1s"
    az.clear(azure["fake"])
    assert not instance(azure, volumes=vols)[0].changed and mutating(azure) == []

    stopped, dummy = instance(azure, state="stopped")
    assert stopped.changed and stopped.volume["state"] == "deallocated"
    assert not instance(azure, state="stopped")[0].changed
    assert instance(azure)[0].volume["state"] == "running"
    differ, extra = instance(azure, vm_size="Standard_B2s")
    assert not differ.changed and "vm_size" in differ.warnings[0]
    gone, dummy = instance(azure, state="absent")
    assert gone.changed and not instance(azure, state="absent")[0].changed
    left = dict((v["name"], v) for v in backend("volumes", p(azure)).list_volumes())
    assert set(left) == {"v1", "v2", "v3"}
    assert all(v["state"] == "Unattached" and v["attachments"] == [] for v in left.values())


def test_hotplug_luns_never_collide_and_reattach_is_no_change(azure, kernel, c_programs):
    for n in ("v1", "v2", "v3", "v4"):
        present(azure, name=n)
    image(azure, c_programs)
    instance(azure, network_interface="nic0", subnet_id=None, vm_size="Standard_B2s")
    az.clear(azure["fake"])
    assert mount(azure, check_mode=True).changed and mutating(azure) == []
    a1 = mount(azure, volume="v1")
    a2 = mount(azure, volume="v2")
    assert (a1.volume["lun"], a2.volume["lun"]) == (0, 1)  # two free LUNs, not LUN 0 twice
    a3 = mount(azure, volume="v3", attach_id=3)
    assert a3.changed and a3.volume["lun"] == 3
    az.clear(azure["fake"])
    for again in (mount(azure, volume="v1"), mount(azure, volume="v3", attach_id=3)):
        assert not again.changed
    assert mutating(azure) == []
    with pytest.raises(OpsError, match="LUN 3 \\(%3\\) of VM app is held by disk v3"):
        mount(azure, volume="v4", attach_id=3)
    with pytest.raises(OpsError, match="attached to VM app at LUN 3, not 5"):
        mount(azure, volume="v3", attach_id=5)
    with pytest.raises(OpsError, match="attach_id 64 is out of range on Azure"):
        mount(azure, volume="v4", attach_id=64)
    with pytest.raises(OpsError, match="no read-only attachment"):
        mount(azure, volume="v4", read_only=True)
    assert mutating(azure) == []
    det = mount(azure, volume="v2", state="detached")
    assert det.changed and det.volume["lun"] == 1
    assert not mount(azure, volume="v2", state="detached").changed
    assert mount(azure, volume="v4").volume["lun"] == 1  # the lowest free LUN again
    assert mount(azure, volume="v1", state="detached").changed
    zero = mount(azure, volume="v2", attach_id=0)  # attach_id 0 is LUN 0, not "no id"
    assert zero.changed and zero.volume["lun"] == 0
    instance(azure, name="other", subnet_id=azure["subnet_id"])
    with pytest.raises(OpsError, match="v2 is attached to VM app"):
        mount(azure, instance="other", volume="v2")
    vm = backend("instances", p(azure)).list_instances(name="app")["instances"][0]
    assert [(a["lun"], a["volume"]) for a in vm["attachments"]] == [
        (0, "v2"), (1, "v4"), (3, "v3")]
    assert az.lun_of(azure["fake"], "app", "v2") == 0  # what the fake itself holds


def test_no_secret_in_results_or_errors(azure):
    out = present(azure, name="s")
    text = json.dumps([out.volume, out.actions], default=str)
    with pytest.raises(OpsError) as bad:
        present(azure, name="t", resource_group="nowhere")
    text += bad.value.msg + json.dumps(bad.value.details, default=str)
    assert az.TOKEN not in text and "sig=" not in text


def test_a_service_principal_secret_is_in_no_error(azure, monkeypatch):
    """azure-identity's own failure (its authority is a closed port here) becomes a clear
    message without the secret."""
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://127.0.0.1:9")
    secret = "unikernel-ops-test-SP-SECRET-0d44"
    kw = dict(access_token=None, client_id="11111111-2222-3333-4444-555555555555",
              secret=secret, tenant="66666666-7777-8888-9999-000000000000")
    with pytest.raises(OpsError) as bad:
        present(azure, name="s", **kw)
    assert "authentication failed" in bad.value.msg
    text = bad.value.msg + json.dumps(bad.value.details, default=str)
    assert secret not in text and mutating(azure) == []
    with pytest.raises(OpsError, match="client_id, secret and tenant together"):
        present(azure, name="s", access_token=None, client_id="x", secret=secret)


@pytest.mark.parametrize("kw, message", [
    ({"volumes": [{"volume": "v1", "attach_id": 64}]}, "attach_id 64 is out of range on Azure"),
    ({"volumes": [{"volume": "v1", "read_only": True}]}, "no read-only attachment"),
    ({"subnet_id": None}, "needs network_interface .* or subnet_id"),
    ({"subnet_id": "vnet0/default"}, "is not a subnet's resource id"),
    ({"network_interface": "nic0"}, "network_interface or subnet_id, not both"),
    ({"image": "ghost"}, "image 'ghost' does not exist in resource group"),
    ({"volumes": ["ghost"]}, "volume 'ghost' has no disk"),
    ({"resource_group": "nowhere"}, "resource group 'nowhere' does not exist"),
    ({"ports": ["8080"]}, "ports applies to provider onprem only"),
])
def test_instance_bad_input_leaves_nothing(azure, kernel, c_programs, kw, message):
    present(azure, name="v1")
    image(azure, c_programs)
    az.clear(azure["fake"])
    with pytest.raises(OpsError, match=message):
        instance(azure, **kw)
    assert mutating(azure) == [] and azure["fake"].inventory()["virtual_machines"] == {}
