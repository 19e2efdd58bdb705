# -*- coding: utf-8 -*-
"""The local AWS endpoint the provider: aws tests share: one moto server for the session,
reset before each test."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import urllib.request

import pytest

from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils import aws_helpers as aws
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.aws_helpers import (
    moto_endpoint,
)


@pytest.fixture(scope="session")
def moto(tmp_path_factory):
    state = str(tmp_path_factory.mktemp("moto"))
    server = moto_endpoint.start(state)
    yield server["endpoint_url"]
    moto_endpoint.stop(state)


@pytest.fixture
def cloud(moto, tmp_path):
    """A clean endpoint, a fresh ops home, and the boto3 clients of the test itself."""
    urllib.request.urlopen(moto + "/moto-api/reset", data=b"").read()
    ec2, ebs = aws.clients(moto)
    return {"url": moto, "ops": str(tmp_path / ".ops"), "ec2": ec2, "ebs": ebs, "tmp": tmp_path}


@pytest.fixture(scope="session")
def gcp_endpoints(tmp_path_factory):
    """The Compute Engine fake (https, its own CA) and the Cloud Storage emulator."""
    from ansible_collections.unikernel.ops.tests.integration.targets.setup_gcp.files import (
        gce_fake,
    )
    from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils import gcp_helpers
    state = str(tmp_path_factory.mktemp("gcs"))
    gcs = gcp_helpers.start_gcs(state)
    fake = gce_fake.GceFake(project=gcp_helpers.PROJECT,
                            cert_dir=str(tmp_path_factory.mktemp("ca")))
    fake.start()
    old = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_file
    yield fake, gcs
    if old is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = old
    fake.stop()
    gce_fake.stop_gcs(state)


@pytest.fixture
def gcp(gcp_endpoints, tmp_path):
    """Both endpoints emptied, a fresh ops home, and the test's own storage client."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage
    fake, gcs = gcp_endpoints
    fake.reset()
    client = storage.Client(project="test-project", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": gcs})
    for blob in client.list_blobs("staging"):
        blob.delete()
    return {"fake": fake, "gcs": gcs, "storage": client, "ops": str(tmp_path / ".ops"),
            "tmp": tmp_path}


class StaticTokenCredential:
    """A TokenCredential with one fixed token (the Azure fake accepts any bearer token)."""

    def __init__(self, token="test-token"):
        self._token = token

    def get_token(self, *scopes, **kwargs):
        import time
        from azure.core.credentials import AccessToken
        return AccessToken(self._token, int(time.time()) + 3600)


@pytest.fixture(scope="session")
def azure_endpoints(tmp_path_factory):
    """Azurite (in memory) and the ARM fake (https, its own CA) told Azurite's URL; sets
    REQUESTS_CA_BUNDLE for the session. Yields the ArmFake."""
    pytest.importorskip("azure.mgmt.compute")
    from ansible_collections.unikernel.ops.tests.integration.targets.setup_azure.files import (
        arm_fake,
    )
    state = str(tmp_path_factory.mktemp("azurite"))
    try:
        azurite = arm_fake.start_azurite(state)
    except RuntimeError as e:
        pytest.skip(str(e))
    fake = arm_fake.ArmFake(cert_dir=str(tmp_path_factory.mktemp("armca")), azurite_url=azurite)
    fake.start()
    old = os.environ.get("REQUESTS_CA_BUNDLE")
    os.environ["REQUESTS_CA_BUNDLE"] = fake.ca_file
    yield fake
    if old is None:
        os.environ.pop("REQUESTS_CA_BUNDLE", None)
    else:
        os.environ["REQUESTS_CA_BUNDLE"] = old
    fake.stop()
    arm_fake.stop_azurite(state)


@pytest.fixture
def azure(azure_endpoints, tmp_path, monkeypatch):
    """The fake emptied (polls_to_done 2, page_size 100), REQUESTS_CA_BUNDLE pointing at its CA
    for this test, a fresh ops home and the test's own ComputeManagementClient."""
    from azure.mgmt.compute import ComputeManagementClient
    fake = azure_endpoints
    fake.reset()
    fake.polls_to_done = 2
    fake.page_size = 100
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", fake.ca_file)
    credential = StaticTokenCredential()
    compute = ComputeManagementClient(credential, fake.subscription, base_url=fake.url)
    return {"fake": fake, "compute": compute, "credential": credential,
            "subscription": fake.subscription, "resource_group": fake.resource_group,
            "location": fake.location, "subnet_id": fake.subnet_id, "nic_id": fake.nic_id,
            "azurite_url": fake.azurite_url, "ops": str(tmp_path / ".ops"), "tmp": tmp_path}
