# -*- coding: utf-8 -*-
"""Credentials in URLs (`user:pass@`) never appear in what a module prints: its message, its
result, or the invocation Ansible echoes - when the download works, when it fails, when the
arguments are refused before the module starts, and when the URL comes from the environment."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.url_credentials import url_credentials
from ansible_collections.unikernel.ops.tests.integration.targets.ops_kernel.files import release_store
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import run_module

SECRET = "s3cr3t-Pw"
USER = "alice-ci"


def with_credentials(url, user=USER, password=SECRET):
    scheme, rest = url.split("://", 1)
    return "%s://%s:%s@%s" % (scheme, user, password, rest)


def assert_hidden(result, *secrets):
    printed = json.dumps(result)
    for secret in secrets:
        assert secret not in printed, printed
    return printed


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def store(tmp_path):
    root = str(tmp_path / "store")
    release_store.make_store(root, "0.1.99", [])
    server = release_store.StoreServer(root).start()
    yield server
    server.stop()


@pytest.mark.parametrize("text, found", [
    ("https://alice:s3cr3t@host/x", {"alice:s3cr3t", "s3cr3t"}),
    ("GET http://tok3n-abc@h:1/p failed", {"tok3n-abc"}),
    ("http://al%40ce:p%2Fss@h/", {"al%40ce:p%2Fss", "p%2Fss", "al@ce:p/ss", "p/ss"}),
    ("http://u:pw@h/", {"u:pw"}),  # a password this short alone would mask every "pw" printed
    ("http://ci@h/", set()),  # nor a token this short
    ("https://ghp_T0ken@host/r.git", {"ghp_T0ken"}),  # a userinfo without ':' is a token
    ("http://u:p@ss@h/x", {"u:p@ss", "p@ss"}),  # urllib sends all up to the last '@'
    ("http://u:pa\"ss@h/", {"u:pa\"ss", "pa\"ss"}),  # and a quote unencoded
    ("mail alice@example.com, see http://host/a@b", set()),
])
def test_url_credentials_found(text, found):
    assert url_credentials(text) == found


def test_download_that_works_shows_no_credentials(store, tmp_path):
    result, rc = run_module("ops_kernel", {"ops_dir": str(tmp_path / "ops"), "version": "0.1.99",
                                           "release_url": with_credentials(store.url)}, tmp_path)
    assert rc == 0 and result["changed"], result
    printed = assert_hidden(result, SECRET, USER)
    assert "127.0.0.1" in printed  # the URL is still shown, without what it carried
    assert os.path.isfile(str(tmp_path / "ops" / "0.1.99" / "kernel.img"))


def test_download_that_fails_shows_no_credentials(store, tmp_path):
    result, rc = run_module("ops_kernel", {"ops_dir": str(tmp_path / "ops"), "version": "0.1.42",
                                           "release_url": with_credentials(store.url)}, tmp_path)
    assert rc == 1 and "404 Not Found" in result["msg"], result
    assert "http://********@127.0.0.1:" in result["msg"]
    assert_hidden(result, SECRET, USER)


def test_refused_arguments_show_no_credentials(tmp_path):
    # AnsibleModule refuses these before the module's code runs, and echoes the arguments
    result, rc = run_module("ops_kernel", {"ops_dir": str(tmp_path / "ops"), "state": "sideways",
                                           "release_url": with_credentials("http://127.0.0.1:9/")},
                            tmp_path)
    assert rc == 1 and result["msg"] == "missing required arguments: version", result
    assert_hidden(result, SECRET, USER)


def test_cloud_endpoint_and_environment_show_no_credentials(tmp_path, monkeypatch):
    # botocore takes the endpoint from AWS_ENDPOINT_URL and prints it as given when it cannot
    # connect: only our masking of the environment's URLs keeps its credentials out
    monkeypatch.setenv("AWS_ENDPOINT_URL", with_credentials("http://127.0.0.1:9/", "envuser", "env-Secret"))
    result, rc = run_module("ops_volume_info", {
        "ops_dir": str(tmp_path / "ops"), "provider": "aws", "region": "us-east-1",
        "access_key": "AKIAEXAMPLEKEY", "secret_key": "example-secret-key"}, tmp_path)
    assert rc == 1 and "Could not connect to the endpoint URL" in result["msg"], result
    assert "http://********@127.0.0.1:9/" in result["msg"], result  # the local endpoint was asked
    assert_hidden(result, "env-Secret", "envuser", "example-secret-key")


def test_cloud_endpoint_option_shows_no_credentials(tmp_path):
    result, rc = run_module("ops_volume_info", {
        "ops_dir": str(tmp_path / "ops"), "provider": "aws", "region": "us-east-1",
        "endpoint_url": with_credentials("http://127.0.0.1:9/"),
        "access_key": "AKIAEXAMPLEKEY", "secret_key": "example-secret-key"}, tmp_path)
    assert rc == 1 and "http://********@127.0.0.1:9/" in result["msg"], result
    assert_hidden(result, SECRET, USER, "example-secret-key")
