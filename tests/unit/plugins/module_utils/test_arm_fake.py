# -*- coding: utf-8 -*-
"""The ARM fake itself, driven through the real azure-mgmt-compute and azure-storage-blob
clients over https with the suite's own CA (Azurite behind the disks), and through raw requests
for what the SDK will not send."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

pytest.importorskip("azure.mgmt.compute")
pytest.importorskip("azure.storage.blob")
requests = pytest.importorskip("requests")

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError  # noqa: E402
from azure.mgmt.compute import ComputeManagementClient, models  # noqa: E402
from azure.storage.blob import BlobClient  # noqa: E402

arm_fake = pytest.importorskip(
    "ansible_collections.unikernel.ops.tests.integration.targets.setup_azure.files.arm_fake")

MIB = 1024 ** 2
RG = arm_fake.DEFAULT_RESOURCE_GROUPS[0]
DATA = 20 * MIB
UPLOAD = DATA + 512


def code(exc):
    return exc.value.error.code


def new_disk(az, name, upload=UPLOAD, tags=None):
    poller = az["compute"].disks.begin_create_or_update(RG, name, models.Disk(
        location=az["location"], sku=models.DiskSku(name="Standard_LRS"), tags=tags or {},
        creation_data=models.CreationData(create_option="Upload", upload_size_bytes=upload)))
    return poller.result()


def upload(az, name, payload, footer=True):
    """Write access, payload then (a real) footer through the SAS, revoke: the poller."""
    sas = az["compute"].disks.begin_grant_access(RG, name, models.GrantAccessData(
        access="Write", duration_in_seconds=3600)).result().access_sas
    blob = BlobClient.from_blob_url(sas, retry_total=0)
    blob.upload_page(payload, offset=0, length=len(payload))
    if footer:
        blob.upload_page(arm_fake.vhd_footer(DATA), offset=DATA, length=512)
    return sas, az["compute"].disks.begin_revoke_access(RG, name)


def ready_disk(az, name, payload=b"\x5a" * (4 * MIB)):
    new_disk(az, name)
    upload(az, name, payload)[1].result()
    return az["compute"].disks.get(RG, name)


def make_image(az, name="img"):
    disk = ready_disk(az, name + "-src")
    return az["compute"].images.begin_create_or_update(RG, name, models.Image(
        location=az["location"], hyper_v_generation="V2",
        storage_profile=models.ImageStorageProfile(os_disk=models.ImageOSDisk(
            os_type="Linux", os_state="Generalized",
            managed_disk=models.SubResource(id=disk.id))))).result()


def make_vm(az, name, image, data_disks=(), size="Standard_B1s"):
    return az["compute"].virtual_machines.begin_create_or_update(RG, name, models.VirtualMachine(
        location=az["location"],
        hardware_profile=models.HardwareProfile(vm_size=size),
        storage_profile=models.StorageProfile(
            image_reference=models.ImageReference(id=image.id),
            os_disk=models.OSDisk(create_option="FromImage", delete_option="Delete"),
            data_disks=[models.DataDisk(lun=lun, create_option="Attach",
                                        managed_disk=models.ManagedDiskParameters(id=disk.id))
                        for lun, disk in data_disks]),
        os_profile=models.OSProfile(computer_name=name, admin_username="ops",
                                    admin_password="S3cret-pass!"),
        network_profile=models.NetworkProfile(network_interfaces=[
            models.NetworkInterfaceReference(id=az["nic_id"])])))


def attach(disk, lun):
    return models.AttachDetachDataDisksRequest(data_disks_to_attach=[
        models.DataDisksToAttach(disk_id=disk.id, lun=lun)])


def raw(az, method, path, body=None, api_version="2026-03-02", token="t"):
    headers = {"Authorization": "Bearer " + token} if token else {}
    params = {"api-version": api_version} if api_version else {}
    return requests.request(method, az["fake"].url + path, json=body, params=params,
                            headers=headers, verify=az["fake"].ca_file, timeout=10)


def disk_path(name, rg=RG):
    return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s" % (
        arm_fake.DEFAULT_SUBSCRIPTION, rg, name)


def test_upload_flow_end_to_end(azure):
    fake = azure["fake"]
    disk = new_disk(azure, "vol", tags={"Name": "vol", "CreatedBy": "ops"})
    assert disk.disk_state == "ReadyToUpload"
    assert (disk.disk_size_gb, disk.disk_size_bytes) == (1, DATA)
    assert disk.sku.name == "Standard_LRS" and disk.tags["CreatedBy"] == "ops"
    assert disk.provisioning_state == "Succeeded" and disk.unique_id and disk.time_created
    # the create was polled through Azure-AsyncOperation, then the final GET
    assert [r["operation"] for r in fake.requests] == [
        "Disks_CreateOrUpdate", "Operations_Get", "Operations_Get", "Disks_Get"]
    assert fake.requests[0]["status"] == 202
    payload = os.urandom(3 * MIB) + b"\0" * MIB + os.urandom(MIB)
    sas, revoke = upload(azure, "vol", payload)
    assert sas.startswith(azure["azurite_url"] + "/devstoreaccount1/") and "sig=" in sas
    assert azure["compute"].disks.get(RG, "vol").disk_state == "ActiveUpload"
    revoke.result()
    assert azure["compute"].disks.get(RG, "vol").disk_state == "Unattached"
    data = fake.read_disk("vol")
    assert len(data) == UPLOAD and data[:len(payload)] == payload
    assert data[DATA:] == arm_fake.vhd_footer(DATA)[:0] + data[DATA:]
    assert arm_fake.check_vhd_footer(data[DATA:], UPLOAD) is None
    assert fake.page_ranges("vol") == [(0, len(payload) - 1), (DATA, UPLOAD - 1)]
    # the SAS is revoked for real: Azurite refuses the old URL
    with pytest.raises(HttpResponseError) as e:
        BlobClient.from_blob_url(sas, retry_total=0).upload_page(
            b"x" * 512, offset=0, length=512)
    assert e.value.status_code == 403
    # read access: read-only
    ro = azure["compute"].disks.begin_grant_access(RG, "vol", models.GrantAccessData(
        access="Read", duration_in_seconds=60)).result().access_sas
    assert azure["compute"].disks.get(RG, "vol").disk_state == "ActiveSAS"
    ro_blob = BlobClient.from_blob_url(ro, retry_total=0)
    assert ro_blob.download_blob(offset=0, length=16).readall() == payload[:16]
    with pytest.raises(HttpResponseError):
        ro_blob.upload_page(b"x" * 512, offset=0, length=512)
    azure["compute"].disks.begin_revoke_access(RG, "vol").result()
    assert azure["compute"].disks.get(RG, "vol").disk_state == "Unattached"
    grant = fake.calls("Disks_GrantAccess")[0]
    assert grant["mutating"] and grant["status"] == 202


def test_invalid_vhd_fails_and_stays_ready_to_upload(azure):
    new_disk(azure, "bad")
    sas, revoke = upload(azure, "bad", b"\1" * MIB, footer=False)
    with pytest.raises(HttpResponseError) as e:
        revoke.result()
    assert "InvalidVhd" in str(e.value)
    assert azure["compute"].disks.get(RG, "bad").disk_state == "ReadyToUpload"
    with pytest.raises(HttpResponseError):  # revoked all the same
        BlobClient.from_blob_url(sas, retry_total=0).upload_page(
            b"x" * 512, offset=0, length=512)
    # a footer for another size is refused too
    sas = azure["compute"].disks.begin_grant_access(RG, "bad", models.GrantAccessData(
        access="Write", duration_in_seconds=60)).result().access_sas
    BlobClient.from_blob_url(sas).upload_page(arm_fake.vhd_footer(DATA - MIB), offset=DATA,
                                              length=512)
    with pytest.raises(HttpResponseError) as e:
        azure["compute"].disks.begin_revoke_access(RG, "bad").result()
    assert "current size" in str(e.value)


def test_refusals_of_disk_requests(azure):
    c = azure["compute"]
    for size in (UPLOAD + 512, UPLOAD - 512, 20 * MIB, 8 * MIB + 512):
        with pytest.raises(HttpResponseError) as e:
            new_disk(azure, "odd", upload=size)
        assert code(e) == "InvalidParameter" and "uploadSizeBytes" in e.value.error.message
    # unknown resource group vs missing disk
    with pytest.raises(ResourceNotFoundError) as e:
        c.disks.get("nope-rg", "vol")
    assert code(e) == "ResourceGroupNotFound"
    assert e.value.error.message == "Resource group 'nope-rg' could not be found."
    with pytest.raises(ResourceNotFoundError) as e:
        c.disks.get(RG, "vol")
    assert code(e) == "ResourceNotFound"
    # unknown and read-only fields, wrong types and enum values, in raw bodies
    body = {"location": "eastus", "properties": {"creationData": {
        "createOption": "Upload", "uploadSizeBytes": UPLOAD}}}
    assert raw(azure, "PUT", disk_path("raw"), body).status_code == 202
    cases = ((None, {"bogus": 1}, "bogus"),
             ({"provisioningState": "Succeeded"}, None, "properties.provisioningState"),
             ({"diskSizeGB": "10"}, None, "properties.diskSizeGB"),
             ({"creationData": {"createOption": "Upload", "frob": 1}}, None,
              "properties.creationData.frob"),
             ({"creationData": {"createOption": 3}}, None,
              "properties.creationData.createOption"))
    for props, top, field in cases:
        b = dict(body, **(top or {}))
        b["properties"] = dict(body["properties"], **(props or {}))
        r = raw(azure, "PUT", disk_path("raw2"), b)
        assert r.status_code == 400, (b, r.text)
        err = r.json()["error"]
        assert err["code"] == "InvalidRequestContent" and field in err["message"], err
    b = {"location": "eastus", "properties": {"creationData": {"createOption": "Sideways"}}}
    r = raw(azure, "PUT", disk_path("raw2"), b)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidParameter")
    # api-version and authentication
    r = raw(azure, "GET", disk_path("raw"), api_version="2024-03-02")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    assert "2026-03-02" in r.json()["error"]["message"]
    r = raw(azure, "GET", disk_path("raw"), token=None)
    assert r.status_code == 401 and "t" not in r.json()["error"]["message"].split()
    with pytest.raises(HttpResponseError):
        ComputeManagementClient(_NoToken(), azure["subscription"], base_url=azure["fake"].url,
                                retry_total=0).disks.get(RG, "raw")
    r = raw(azure, "GET", "/subscriptions/%s/providers/Microsoft.Compute/frobs"
            % azure["subscription"])
    assert r.status_code == 404
    # PUT on an existing disk: creationData cannot change, size only grows
    new_disk(azure, "vol")
    with pytest.raises(HttpResponseError) as e:
        new_disk(azure, "vol", upload=UPLOAD + MIB)
    assert code(e) == "PropertyChangeNotAllowed"
    upload(azure, "vol", b"\1" * 512)[1].result()
    grown = c.disks.begin_update(RG, "vol", models.DiskUpdate(disk_size_gb=4)).result()
    assert grown.disk_size_gb == 4
    with pytest.raises(HttpResponseError) as e:
        c.disks.begin_update(RG, "vol", models.DiskUpdate(disk_size_gb=2)).result()
    assert "cannot be reduced" in e.value.error.message
    # write access only on ReadyToUpload
    with pytest.raises(HttpResponseError) as e:
        c.disks.begin_grant_access(RG, "vol", models.GrantAccessData(
            access="Write", duration_in_seconds=60)).result()
    assert code(e) == "OperationNotAllowed"


def test_token_must_match_when_set(azure_endpoints, monkeypatch):
    fake = arm_fake.ArmFake(token="right-token").start()
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_file)
        r = requests.get(fake.url + disk_path("x"), params={"api-version": "2026-03-02"},
                         headers={"Authorization": "Bearer wrong-token"}, verify=fake.ca_file,
                         timeout=10)
        assert r.status_code == 401 and r.json()["error"]["code"] == "AuthenticationFailed"
        assert "wrong-token" not in r.text
        r = requests.get(fake.url + disk_path("x"), params={"api-version": "2026-03-02"},
                         headers={"Authorization": "Bearer right-token"}, verify=fake.ca_file,
                         timeout=10)
        assert r.json()["error"]["code"] == "ResourceNotFound"
        assert "right-token" not in repr(fake.requests)
    finally:
        fake.stop()


class _NoToken:
    def get_token(self, *scopes, **kwargs):
        from azure.core.credentials import AccessToken
        return AccessToken("", 0)


def test_lists_page_and_operations_poll(azure):
    fake = azure["fake"]
    fake.page_size = 2
    fake.polls_to_done = 0
    for i in range(5):
        new_disk(azure, "d%d" % i)
    names = [d.name for d in azure["compute"].disks.list_by_resource_group(RG)]
    assert names == ["d0", "d1", "d2", "d3", "d4"]
    assert len(fake.calls("Disks_ListByResourceGroup")) == 3
    fake.polls_to_done = 3
    fake.reset_log = None
    before = len(fake.calls("Operations_Get"))
    poller = azure["compute"].disks.begin_delete(RG, "d0")
    assert azure["compute"].disks.get(RG, "d0").provisioning_state == "Deleting"
    poller.result()
    assert len(fake.calls("Operations_Get")) - before == 3
    assert "d0" not in [d.name for d in azure["compute"].disks.list_by_resource_group(RG)]
    assert fake.calls("Disks_Delete")[0]["status"] == 202
    # deleting what is gone answers 204
    azure["compute"].disks.begin_delete(RG, "d0").result()
    assert fake.calls("Disks_Delete")[-1]["status"] == 204
    # injected failures
    fake.fail_operation("Disks_CreateOrUpdate", "InternalExecutionError", "boom")
    with pytest.raises(HttpResponseError) as e:
        new_disk(azure, "f")
    assert "boom" in str(e.value)
    assert "unikernel-ops-test/f" not in fake.inventory()["disks"]
    fake.fail_request("Disks_Get", 409, "Conflict", "nope")
    with pytest.raises(HttpResponseError) as e:
        azure["compute"].disks.get(RG, "d1")
    assert code(e) == "Conflict"
    assert not fake.inventory()["pending_operations"]


def test_vm_lifecycle_luns_and_refusals(azure):
    c, fake = azure["compute"], azure["fake"]
    fake.polls_to_done = 1
    image = make_image(azure)
    assert image.provisioning_state == "Succeeded"
    data = ready_disk(azure, "data", b"\7" * 512)
    other = ready_disk(azure, "other", b"\7" * 512)
    vm = make_vm(azure, "vm1", image, [(3, data)]).result()
    assert vm.provisioning_state == "Succeeded"
    assert [(d.lun, d.name) for d in vm.storage_profile.data_disks] == [(3, "data")]
    assert vm.os_profile.admin_password is None
    assert "S3cret" not in repr(fake.requests)
    os_disk = c.disks.get(RG, vm.storage_profile.os_disk.name)
    assert os_disk.name.startswith("vm1_OsDisk_1_") and os_disk.managed_by == vm.id
    assert (os_disk.disk_state, c.disks.get(RG, "data").disk_state) == ("Attached", "Attached")
    assert c.disks.get(RG, "data").managed_by == vm.id
    view = c.virtual_machines.instance_view(RG, "vm1")
    assert {s.code for s in view.statuses} == {"ProvisioningState/succeeded",
                                               "PowerState/running"}
    got = c.virtual_machines.get(RG, "vm1", expand="instanceView")
    assert got.instance_view.statuses[1].code == "PowerState/running"
    # a disk in use cannot be deleted
    with pytest.raises(HttpResponseError) as e:
        c.disks.begin_delete(RG, "data").result()
    assert code(e) == "OperationNotAllowed" and "vm1" in e.value.error.message
    # LUN collision in a full PUT, and a LUN change of an attached disk
    vm = c.virtual_machines.get(RG, "vm1")
    vm.storage_profile.data_disks.append(models.DataDisk(
        lun=3, create_option="Attach", managed_disk=models.ManagedDiskParameters(id=other.id)))
    with pytest.raises(HttpResponseError) as e:
        c.virtual_machines.begin_create_or_update(RG, "vm1", vm).result()
    assert code(e) == "InvalidParameter" and "LUN 3" in e.value.error.message
    vm = c.virtual_machines.get(RG, "vm1")
    vm.storage_profile.data_disks[0].lun = 4
    with pytest.raises(HttpResponseError) as e:
        c.virtual_machines.begin_create_or_update(RG, "vm1", vm).result()
    assert code(e) == "PropertyChangeNotAllowed"
    # attach with attachDetachDataDisks at a used LUN, then at LUN 0
    with pytest.raises(HttpResponseError) as e:
        c.virtual_machines.begin_attach_detach_data_disks(RG, "vm1", attach(other, 3)).result()
    assert code(e) == "Conflict"
    prof = c.virtual_machines.begin_attach_detach_data_disks(RG, "vm1", attach(other, 0)).result()
    assert sorted(d.lun for d in prof.data_disks) == [0, 3]
    # detach by a full PUT
    vm = c.virtual_machines.get(RG, "vm1")
    vm.storage_profile.data_disks = [d for d in vm.storage_profile.data_disks if d.lun == 3]
    c.virtual_machines.begin_create_or_update(RG, "vm1", vm).result()
    assert c.disks.get(RG, "other").disk_state == "Unattached"
    # a disk attached to vm1 cannot go to vm2; unknown size refused
    with pytest.raises(HttpResponseError) as e:
        make_vm(azure, "vm2", image, [(0, data)]).result()
    assert code(e) == "OperationNotAllowed" and "already attached to VM" in str(e.value)
    with pytest.raises(HttpResponseError) as e:
        make_vm(azure, "vm3", image, size="Standard_Huge").result()
    assert code(e) == "InvalidParameter"
    # deallocate, attach while deallocated, start
    c.virtual_machines.begin_deallocate(RG, "vm1").result()
    assert c.virtual_machines.instance_view(RG, "vm1").statuses[1].code == \
        "PowerState/deallocated"
    vm = c.virtual_machines.get(RG, "vm1")
    vm.storage_profile.data_disks.append(models.DataDisk(
        lun=1, create_option="Attach", managed_disk=models.ManagedDiskParameters(id=other.id)))
    c.virtual_machines.begin_create_or_update(RG, "vm1", vm).result()
    with pytest.raises(HttpResponseError) as e:
        c.virtual_machines.begin_restart(RG, "vm1").result()
    assert code(e) == "OperationNotAllowed"
    c.virtual_machines.begin_start(RG, "vm1").result()
    assert fake.inventory()["virtual_machines"] == {"%s/vm1" % RG: "running"}
    # delete: data disks stay, Unattached; the OS disk (deleteOption Delete) goes
    c.virtual_machines.begin_delete(RG, "vm1").result()
    assert [v.name for v in c.virtual_machines.list(RG)] == []
    disks = fake.inventory()["disks"]
    assert disks["%s/data" % RG] == "Unattached" and disks["%s/other" % RG] == "Unattached"
    assert not [k for k in disks if "OsDisk" in k]
    assert {r["operation"] for r in fake.mutations()} >= {
        "VirtualMachines_CreateOrUpdate", "VirtualMachines_Deallocate",
        "VirtualMachines_Start", "VirtualMachines_Delete", "Images_CreateOrUpdate",
        "VirtualMachines_AttachDetachDataDisks"}


def test_vm_network_and_os_profile_checks(azure):
    c = azure["compute"]
    azure["fake"].polls_to_done = 0
    image = make_image(azure)
    ssh = models.SshConfiguration(public_keys=[models.SshPublicKey(
        path="/home/ops/.ssh/authorized_keys", key_data="ssh-ed25519 AAAA")])
    ipc = models.VirtualMachineNetworkInterfaceIPConfiguration(
        name="ip", subnet=models.SubResource(id=azure["subnet_id"]))
    body = models.VirtualMachine(
        location=azure["location"],
        hardware_profile=models.HardwareProfile(vm_size="Standard_B2s"),
        storage_profile=models.StorageProfile(
            image_reference=models.ImageReference(id=image.id),
            os_disk=models.OSDisk(create_option="FromImage")),
        os_profile=models.OSProfile(
            computer_name="n", admin_username="ops",
            linux_configuration=models.LinuxConfiguration(disable_password_authentication=True,
                                                          ssh=ssh)),
        network_profile=models.NetworkProfile(
            network_api_version="2020-11-01",
            network_interface_configurations=[models.VirtualMachineNetworkInterfaceConfiguration(
                name="nic", ip_configurations=[ipc])]))
    vm = c.virtual_machines.begin_create_or_update(RG, "net", body).result()
    assert vm.network_profile.network_interface_configurations[0].name == "nic"
    body.network_profile.network_interface_configurations[0].ip_configurations[0].subnet.id = \
        azure["subnet_id"].replace("default", "nope")
    with pytest.raises(HttpResponseError):
        c.virtual_machines.begin_create_or_update(RG, "net2", body).result()
    body.network_profile = models.NetworkProfile(network_interfaces=[
        models.NetworkInterfaceReference(id=azure["nic_id"])])
    body.os_profile = None
    with pytest.raises(HttpResponseError) as e:
        c.virtual_machines.begin_create_or_update(RG, "net3", body).result()
    assert "osProfile" in e.value.error.message
    body.storage_profile.image_reference.id = image.id.replace("/img", "/ghost")
    with pytest.raises(HttpResponseError) as e:
        c.virtual_machines.begin_create_or_update(RG, "net4", body).result()
    assert "ghost" in e.value.error.message


def test_cli_start_all_and_read_back(tmp_path):
    import json
    import subprocess
    import sys
    state = str(tmp_path / "state")
    script = arm_fake.__file__

    def run(*args):
        return json.loads(subprocess.run([sys.executable, script] + list(args), check=True,
                                         capture_output=True, text=True).stdout)
    try:
        out = run("start-all", state)
    except subprocess.CalledProcessError as e:
        pytest.skip("start-all failed: %s" % e.stderr)
    try:
        assert set(out) >= {"url", "ca_file", "pid", "azurite_url", "azurite_pid",
                            "subscription", "resource_group", "location", "subnet_id",
                            "nic_id"}
        env = dict(os.environ, REQUESTS_CA_BUNDLE=out["ca_file"])
        os.environ["REQUESTS_CA_BUNDLE"], old = out["ca_file"], os.environ.get(
            "REQUESTS_CA_BUNDLE")
        try:
            from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.conftest import (
                StaticTokenCredential,
            )
            c = ComputeManagementClient(StaticTokenCredential(), out["subscription"],
                                        base_url=out["url"])
            c.disks.begin_create_or_update(out["resource_group"], "cli", models.Disk(
                location=out["location"], creation_data=models.CreationData(
                    create_option="Upload", upload_size_bytes=UPLOAD)), polling_interval=0).result()
            sas = c.disks.begin_grant_access(out["resource_group"], "cli", models.GrantAccessData(
                access="Write", duration_in_seconds=60)).result().access_sas
            BlobClient.from_blob_url(sas).upload_page(b"\3" * 512, offset=512, length=512)
        finally:
            if old is None:
                os.environ.pop("REQUESTS_CA_BUNDLE")
            else:
                os.environ["REQUESTS_CA_BUNDLE"] = old
        assert env
        assert run("page-ranges", state, "cli") == [[512, 1023]]
        target = str(tmp_path / "cli.vhd")
        assert run("disk-bytes", state, "cli", target) == {"size": UPLOAD}
        with open(target, "rb") as f:
            assert f.read(1024)[512:] == b"\3" * 512
        assert run("resources", state)["disks"] == {"%s/cli" % RG: "ActiveUpload"}
        assert [c["operation"] for c in run("calls", state)][:1] == ["Disks_CreateOrUpdate"]
    finally:
        assert run("stop-all", state) == {"stopped": [True, True]}
