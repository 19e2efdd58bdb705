# -*- coding: utf-8 -*-
"""The local AWS endpoint the provider: aws tests share: one moto server for the session,
reset before each test."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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
