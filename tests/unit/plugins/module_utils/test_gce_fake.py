# -*- coding: utf-8 -*-
"""The GCE fake itself, driven through the real google.cloud.compute_v1 clients (REST) over
https with the suite's own CA, and through raw requests for what the SDK will not send."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

gce_fake = pytest.importorskip(
    "ansible_collections.unikernel.ops.tests.integration.targets.setup_gcp.files.gce_fake")
compute_v1 = pytest.importorskip("google.cloud.compute_v1")
requests = pytest.importorskip("requests")

from google.api_core import exceptions  # noqa: E402
from google.api_core.client_options import ClientOptions  # noqa: E402
from google.oauth2.credentials import Credentials  # noqa: E402

P = "test-project"
Z = "us-central1-a"
GIB = 1024 ** 3
DONE = compute_v1.Operation.Status.DONE
RUNNING = compute_v1.Operation.Status.RUNNING
OBJECT = "https://storage.googleapis.com/ops-bucket/img.tar.gz"


@pytest.fixture(scope="module")
def server():
    fake = gce_fake.GceFake(project=P).start()
    yield fake
    fake.stop()


@pytest.fixture
def gce(server, monkeypatch):
    server.reset()
    server.polls_to_done = 2
    server.require_objects = False
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_file)
    kw = dict(transport="rest", client_options=ClientOptions(api_endpoint=server.url),
              credentials=Credentials(token="test-token"))
    c = type("Clients", (), {})()
    c.fake = server
    c.disks = compute_v1.DisksClient(**kw)
    c.images = compute_v1.ImagesClient(**kw)
    c.instances = compute_v1.InstancesClient(**kw)
    c.zone_ops = compute_v1.ZoneOperationsClient(**kw)
    c.global_ops = compute_v1.GlobalOperationsClient(**kw)
    c.zones = compute_v1.ZonesClient(**kw)
    return c


def wait_zone(gce, op, zone=Z):
    return gce.zone_ops.wait(project=P, zone=zone, operation=op.name)


def make_image(gce, name="img", size=3 * GIB + 1):
    gce.fake.object_sizes[OBJECT] = size
    op = gce.images.insert(project=P, image_resource=compute_v1.Image(
        name=name, raw_disk=compute_v1.RawDisk(source=OBJECT), labels={"createdby": "ops"},
        guest_os_features=[compute_v1.GuestOsFeature(type_="VIRTIO_SCSI_MULTIQUEUE")]))
    assert gce.global_ops.wait(project=P, operation=op.name).status == DONE
    return name


def make_disk(gce, name, image="img", size=None, zone=Z, mode=None):
    disk = compute_v1.Disk(name=name, source_image="global/images/%s" % image,
                           type_="zones/%s/diskTypes/pd-balanced" % zone,
                           labels={"createdby": "ops"})
    if size:
        disk.size_gb = size
    op = gce.disks.insert(project=P, zone=zone, disk_resource=disk)
    assert wait_zone(gce, op, zone).status == DONE
    return name


def make_instance(gce, name, extra_disks=()):
    disks = [compute_v1.AttachedDisk(boot=True, auto_delete=True,
                                     initialize_params=compute_v1.AttachedDiskInitializeParams(
                                         source_image="global/images/img"))]
    for disk, device, mode in extra_disks:
        disks.append(compute_v1.AttachedDisk(source="zones/%s/disks/%s" % (Z, disk),
                                             device_name=device, mode=mode))
    op = gce.instances.insert(project=P, zone=Z, instance_resource=compute_v1.Instance(
        name=name, machine_type="zones/%s/machineTypes/e2-small" % Z, disks=disks,
        labels={"createdby": "ops"}, tags=compute_v1.Tags(items=["ops"]),
        network_interfaces=[compute_v1.NetworkInterface(network="global/networks/default")]))
    assert wait_zone(gce, op).status == DONE
    return name


def raw(gce, method, rel, body=None, params=None):
    return requests.request(method, "%s/compute/v1/%s" % (gce.fake.url, rel), json=body,
                            params=params, headers={"Authorization": "Bearer test-token"},
                            verify=gce.fake.ca_file, timeout=10)


def test_image_then_disk_and_operation_timing(gce):
    gce.fake.object_sizes["gs://ops-bucket/img.tar.gz"] = 3 * GIB + 1
    op = gce.images.insert(project=P, image_resource=compute_v1.Image(
        name="img", raw_disk=compute_v1.RawDisk(source=OBJECT)))
    assert op.status == RUNNING
    assert gce.images.get(project=P, image="img").status == "PENDING"
    assert gce.global_ops.get(project=P, operation=op.name).status == RUNNING
    done = gce.global_ops.get(project=P, operation=op.name)
    assert done.status == DONE and done.progress == 100 and not done.error.errors
    image = gce.images.get(project=P, image="img")
    assert (image.status, image.disk_size_gb, image.raw_disk.source) == ("READY", 4, OBJECT)

    # a not-yet-DONE disk is CREATING, and READY after the wait
    op = gce.disks.insert(project=P, zone=Z, disk_resource=compute_v1.Disk(
        name="data", source_image="projects/%s/global/images/img" % P, size_gb=8,
        type_="zones/%s/diskTypes/pd-ssd" % Z, labels={"createdby": "ops"}))
    assert gce.disks.get(project=P, zone=Z, disk="data").status == "CREATING"
    assert wait_zone(gce, op).status == DONE
    disk = gce.disks.get(project=P, zone=Z, disk="data")
    base = "%s/compute/v1/projects/%s/zones/%s" % (gce.fake.url, P, Z)
    assert disk.status == "READY" and disk.size_gb == 8 and disk.id
    assert disk.self_link == base + "/disks/data" and disk.zone == base
    assert disk.type_ == base + "/diskTypes/pd-ssd"
    assert disk.source_image == "%s/compute/v1/projects/%s/global/images/img" % (gce.fake.url, P)
    assert dict(disk.labels) == {"createdby": "ops"} and disk.label_fingerprint
    # the JSON itself: int64 as a string, no users while unattached
    body = raw(gce, "GET", "projects/%s/zones/%s/disks/data" % (P, Z)).json()
    assert body["sizeGb"] == "8" and "users" not in body

    with pytest.raises(exceptions.Conflict, match="already exists"):
        make_disk(gce, "data")
    with pytest.raises(exceptions.BadRequest, match="smaller than the image size"):
        make_disk(gce, "tiny", size=2)
    with pytest.raises(exceptions.NotFound, match="global/images/nope' was not found"):
        make_disk(gce, "other", image="nope")


def test_list_filters_resize_and_labels(gce):
    make_image(gce)
    make_disk(gce, "a")
    op = gce.disks.insert(project=P, zone=Z, disk_resource=compute_v1.Disk(
        name="b", size_gb=20, labels={"createdby": "someone-else"}))
    wait_zone(gce, op)
    req = compute_v1.ListDisksRequest(project=P, zone=Z, filter="labels.createdby=ops")
    assert [d.name for d in gce.disks.list(request=req)] == ["a"]
    assert [d.name for d in gce.disks.list(project=P, zone=Z)] == ["a", "b"]
    req = compute_v1.ListDisksRequest(project=P, zone=Z, filter='name = "b"')
    assert [d.name for d in gce.disks.list(request=req)] == ["b"]
    req = compute_v1.ListImagesRequest(project=P, filter="labels.createdby=ops")
    assert [i.name for i in gce.images.list(request=req)] == ["img"]

    with pytest.raises(exceptions.BadRequest, match="must be larger than existing size"):
        gce.disks.resize(project=P, zone=Z, disk="a", disks_resize_request_resource=(
            compute_v1.DisksResizeRequest(size_gb=3)))
    wait_zone(gce, gce.disks.resize(project=P, zone=Z, disk="a",
                                    disks_resize_request_resource=compute_v1.DisksResizeRequest(
                                        size_gb=30)))
    disk = gce.disks.get(project=P, zone=Z, disk="a")
    assert disk.size_gb == 30
    with pytest.raises(exceptions.PreconditionFailed, match="fingerprint"):
        gce.disks.set_labels(project=P, zone=Z, resource="a",
                             zone_set_labels_request_resource=compute_v1.ZoneSetLabelsRequest(
                                 labels={"x": "y"}, label_fingerprint="AAAAAAAAAAA="))
    wait_zone(gce, gce.disks.set_labels(
        project=P, zone=Z, resource="a",
        zone_set_labels_request_resource=compute_v1.ZoneSetLabelsRequest(
            labels={"x": "y"}, label_fingerprint=disk.label_fingerprint)))
    assert dict(gce.disks.get(project=P, zone=Z, disk="a").labels) == {"x": "y"}


def test_instances_attach_detach_refusals(gce):
    make_image(gce)
    make_disk(gce, "data")
    make_disk(gce, "more")
    make_instance(gce, "vm1", [("data", "persistent-disk-1", "READ_WRITE")])
    vm = gce.instances.get(project=P, zone=Z, instance="vm1")
    assert vm.status == "RUNNING"
    assert [(d.device_name, d.boot, d.index, d.mode, d.auto_delete, d.type_, d.interface)
            for d in vm.disks] == [
        ("persistent-disk-0", True, 0, "READ_WRITE", True, "PERSISTENT", "SCSI"),
        ("persistent-disk-1", False, 1, "READ_WRITE", False, "PERSISTENT", "SCSI")]
    assert vm.disks[1].source.endswith("/zones/%s/disks/data" % Z)
    assert list(gce.disks.get(project=P, zone=Z, disk="vm1").users) == [vm.self_link]
    assert list(gce.disks.get(project=P, zone=Z, disk="data").users) == [vm.self_link]

    # the device name is taken on that instance
    with pytest.raises(exceptions.BadRequest,
                       match="The device name 'persistent-disk-1' is already in use") as e:
        gce.instances.attach_disk(project=P, zone=Z, instance="vm1",
                                  attached_disk_resource=compute_v1.AttachedDisk(
                                      source="zones/%s/disks/more" % Z,
                                      device_name="persistent-disk-1"))
    assert e.value.errors[0]["reason"] == "invalid"
    # a READ_WRITE disk cannot go to a second instance, in any mode
    make_instance(gce, "vm2")
    for mode in ("READ_WRITE", "READ_ONLY"):
        with pytest.raises(exceptions.BadRequest, match="is already being used by") as e:
            gce.instances.attach_disk(project=P, zone=Z, instance="vm2",
                                      attached_disk_resource=compute_v1.AttachedDisk(
                                          source="projects/%s/zones/%s/disks/data" % (P, Z),
                                          device_name="data", mode=mode))
        assert e.value.errors[0]["reason"] == "resourceInUseByAnotherResource"
    with pytest.raises(exceptions.BadRequest, match="is already being used by") as e:
        gce.disks.delete(project=P, zone=Z, disk="data")
    assert e.value.errors[0]["reason"] == "resourceInUseByAnotherResource"

    wait_zone(gce, gce.instances.detach_disk(project=P, zone=Z, instance="vm1",
                                             device_name="persistent-disk-1"))
    assert not gce.disks.get(project=P, zone=Z, disk="data").users
    assert [d.device_name for d in gce.instances.get(project=P, zone=Z, instance="vm1").disks] \
        == ["persistent-disk-0"]
    with pytest.raises(exceptions.BadRequest, match="No attached disk found with device name"):
        gce.instances.detach_disk(project=P, zone=Z, instance="vm1",
                                  device_name="persistent-disk-1")
    # now vm2 may have it; a disk in another zone is refused
    wait_zone(gce, gce.instances.attach_disk(
        project=P, zone=Z, instance="vm2",
        attached_disk_resource=compute_v1.AttachedDisk(source="zones/%s/disks/data" % Z,
                                                       device_name="data")))
    make_disk(gce, "far", zone="us-central1-b")
    with pytest.raises(exceptions.BadRequest, match="same zone"):
        gce.instances.attach_disk(project=P, zone=Z, instance="vm2",
                                  attached_disk_resource=compute_v1.AttachedDisk(
                                      source="zones/us-central1-b/disks/far"))

    # stop / start / reset, and delete: the boot disk goes, the attached one is detached
    op = gce.instances.stop(project=P, zone=Z, instance="vm2")
    assert gce.instances.get(project=P, zone=Z, instance="vm2").status == "STOPPING"
    wait_zone(gce, op)
    assert gce.instances.get(project=P, zone=Z, instance="vm2").status == "TERMINATED"
    wait_zone(gce, gce.instances.start(project=P, zone=Z, instance="vm2"))
    wait_zone(gce, gce.instances.reset(project=P, zone=Z, instance="vm2"))
    assert gce.fake.resets == [{"project": P, "zone": Z, "instance": "vm2"}]
    wait_zone(gce, gce.instances.delete(project=P, zone=Z, instance="vm2"))
    with pytest.raises(exceptions.NotFound):
        gce.instances.get(project=P, zone=Z, instance="vm2")
    with pytest.raises(exceptions.NotFound):
        gce.disks.get(project=P, zone=Z, disk="vm2")
    assert not gce.disks.get(project=P, zone=Z, disk="data").users
    wait_zone(gce, gce.disks.delete(project=P, zone=Z, disk="data"))


def test_requests_checked_against_discovery(gce):
    make_image(gce)
    rel = "projects/%s/zones/%s/disks" % (P, Z)
    good = {"name": "x", "sizeGb": "10"}
    assert raw(gce, "POST", rel, good).status_code == 200
    cases = [
        ({"name": "y", "bogus": 1}, 'Unknown name "bogus"'),
        ({"name": "y", "sizeGb": 10}, "sizeGb': expected a JSON string holding a int64"),
        ({"name": "y", "status": "READY"}, "'status' is an output-only field"),
        ({"name": "y", "labels": {"a": 1}}, 'resource.labels["a"]'),
        ({"name": "y", "guestOsFeatures": [{"type": "NOPE"}]}, "(enum)"),
        ({"name": "y", "guestOsFeatures": [{"typo": "GVNIC"}]},
         "at 'resource.guestOsFeatures[0]'"),
        ({"name": "Bad_Name"}, "Must be a match of regex"),
    ]
    for body, words in cases:
        r = raw(gce, "POST", rel, body)
        err = r.json()["error"]
        assert r.status_code == 400 and words in err["message"], (body, err)
        assert err["status"] == "INVALID_ARGUMENT" and err["code"] == 400
        assert err["errors"][0]["domain"] == "global" and err["errors"][0]["reason"]
    r = raw(gce, "GET", rel, params={"nope": "1"})
    assert r.status_code == 400 and 'Unknown name "nope"' in r.json()["error"]["message"]
    assert raw(gce, "GET", rel, params={"maxResults": "x"}).status_code == 400
    assert raw(gce, "GET", rel, params={"prettyPrint": "false", "alt": "json"}).ok
    r = raw(gce, "GET", "projects/%s/zones/%s/gizmos" % (P, Z))
    assert r.status_code == 400 and "No Compute Engine v1 method" in r.json()["error"]["message"]
    r = raw(gce, "POST", "projects/%s/zones/%s/instances/vm/detachDisk" % (P, Z))
    assert r.status_code == 400 and "deviceName" in r.json()["error"]["message"]
    r = raw(gce, "GET", "projects/BAD!/zones/%s/disks" % Z)
    assert r.status_code == 400 and "must match regex" in r.json()["error"]["message"]
    # the literal route wins over the placeholder: images/family/F is getFromFamily
    raw(gce, "GET", "projects/%s/global/images/family/fam" % P)
    assert gce.fake.requests[-1]["operation"] == "compute.images.getFromFamily"


def test_unknown_zone_and_failed_operation(gce):
    with pytest.raises(exceptions.NotFound, match="zones/mars-1a' was not found"):
        gce.disks.get(project=P, zone="mars-1a", disk="x")
    with pytest.raises(exceptions.NotFound, match="Unknown zone"):
        gce.zones.get(project=P, zone="mars-1a")
    assert gce.zones.get(project=P, zone=Z).status == "UP"
    assert [z.name for z in gce.zones.list(project=P)] == sorted(gce.fake.zones)

    gce.fake.require_objects = True
    op = gce.images.insert(project=P, image_resource=compute_v1.Image(
        name="ghost", raw_disk=compute_v1.RawDisk(source="gs://ops-bucket/missing.tar.gz")))
    done = gce.global_ops.wait(project=P, operation=op.name)
    assert done.status == DONE and done.http_error_status_code == 404
    assert done.error.errors[0].code == "RESOURCE_NOT_FOUND"
    assert "missing.tar.gz" in done.error.errors[0].message
    with pytest.raises(exceptions.NotFound):
        gce.images.get(project=P, image="ghost")

    gce.fake.fail_operation("compute.disks.insert", code="QUOTA_EXCEEDED",
                            message="Quota 'SSD_TOTAL_GB' exceeded.", http_status=403)
    op = gce.disks.insert(project=P, zone=Z, disk_resource=compute_v1.Disk(name="q"))
    done = wait_zone(gce, op)
    assert done.error.errors[0].code == "QUOTA_EXCEEDED" and done.http_error_message
    with pytest.raises(exceptions.NotFound):
        gce.disks.get(project=P, zone=Z, disk="q")
    # the SDK retries a GET on 503 by itself (not a mutating call)
    gce.fake.fail_request("compute.disks.get", code=503)
    with pytest.raises(exceptions.NotFound):
        gce.disks.get(project=P, zone=Z, disk="q")
    assert [r["status"] for r in gce.fake.calls("compute.disks.get")][-2:] == [503, 404]
    gce.fake.fail_request("compute.disks.insert", code=503)
    with pytest.raises(exceptions.ServiceUnavailable):
        gce.disks.insert(project=P, zone=Z, disk_resource=compute_v1.Disk(name="q"))


def test_request_log_and_reset(gce):
    make_image(gce)
    make_disk(gce, "data")
    make_instance(gce, "vm1")
    rid = "0b5c3f9e-1d2a-4c8b-9e7f-6a5b4c3d2e1f"

    def attach():
        # request_id is a field of the request object only, not a keyword of the method
        return gce.instances.attach_disk(request=compute_v1.AttachDiskInstanceRequest(
            project=P, zone=Z, instance="vm1", request_id=rid,
            attached_disk_resource=compute_v1.AttachedDisk(source="zones/%s/disks/data" % Z,
                                                           device_name="data")))
    first = attach()
    wait_zone(gce, first)
    # a retried call with the same requestId answers the first operation, changes nothing
    again = attach()
    assert again.name == first.name and again.status == DONE
    assert len(gce.instances.get(project=P, zone=Z, instance="vm1").disks) == 2
    assert [r["operation"] for r in gce.fake.mutations()] == [
        "compute.images.insert", "compute.disks.insert", "compute.instances.insert",
        "compute.instances.attachDisk", "compute.instances.attachDisk"]
    call = gce.fake.calls("compute.instances.attachDisk")[0]
    assert call["method"] == "POST" and call["status"] == 200
    assert call["path"] == "/compute/v1/projects/%s/zones/%s/instances/vm1/attachDisk" % (P, Z)
    assert call["query"] == {"requestId": rid}
    assert call["body"] == {"source": "zones/%s/disks/data" % Z, "deviceName": "data"}
    waits = gce.fake.calls("compute.zoneOperations.wait")
    assert len(waits) == 3 and not any(w["mutating"] for w in waits)
    gce.fake.reset()
    assert gce.fake.requests == []
    with pytest.raises(exceptions.NotFound):
        gce.images.get(project=P, image="img")


def test_control_endpoints_are_not_compute_requests(gce):
    make_image(gce)
    make_disk(gce, "data")
    ca = gce.fake.ca_file
    log = requests.get(gce.fake.url + "/__fake/requests", verify=ca, timeout=10).json()
    assert [r["operation"] for r in log if r["mutating"]] == [
        "compute.images.insert", "compute.disks.insert"]
    assert log == gce.fake.requests  # the same log, and reading it was not logged
    assert "authorization" not in json.dumps(log).lower()  # no header, so no token, is kept
    assert requests.post(gce.fake.url + "/__fake/reset-log", verify=ca, timeout=10).json() == \
        {"requests": 0}
    assert gce.fake.requests == [] and gce.fake.resource("disk", "data", Z)  # only the log
    held = requests.get(gce.fake.url + "/__fake/resources", verify=ca, timeout=10).json()
    assert held == {"disks": ["%s/%s/data" % (P, Z)], "images": ["%s/img" % P], "instances": [],
                    "pending_operations": []}
    bad = requests.get(gce.fake.url + "/__fake/nothing", verify=ca, timeout=10)
    assert bad.status_code == 404 and "no control endpoint" in bad.json()["error"]["message"]
    assert requests.post(gce.fake.url + "/__fake/reset", verify=ca, timeout=10).ok
    assert gce.fake.resource("disk", "data", Z) is None and gce.fake.requests == []


def test_cli_serves_detached_and_stops(tmp_path):
    """What the target setup_gcp runs: start (serve, detached), record, calls, stop."""
    import subprocess
    import sys
    state = str(tmp_path / "state")
    cli = [sys.executable, gce_fake.__file__]
    started = json.loads(subprocess.run(cli + ["start", state], check=True,
                                        capture_output=True, text=True).stdout)
    try:
        assert started["url"].startswith("https://127.0.0.1:")
        with open(os.path.join(state, "gce.json")) as f:
            assert json.load(f) == started
        zones = requests.get(started["url"] + "/compute/v1/projects/%s/zones" % P,
                             headers={"Authorization": "Bearer t"},
                             verify=started["ca_file"], timeout=10)
        assert zones.ok and Z in [z["name"] for z in zones.json()["items"]]
        assert gce_fake.calls(state) == [{
            "operation": "compute.zones.list", "mutating": False, "method": "GET",
            "path": "/compute/v1/projects/%s/zones" % P, "status": 200}]
        gce_fake.record(state)
        assert gce_fake.calls(state) == []
    finally:
        assert gce_fake.stop(state)
    assert not os.path.exists(os.path.join(state, "gce.json"))  # it stopped cleanly
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(started["url"] + "/__fake/requests", verify=started["ca_file"], timeout=5)
