# -*- coding: utf-8 -*-
"""Sizes, names and the ops home's volume files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome, default_ops_dir
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    find_volume, list_volume_files, parse_size, validate_name,
)


@pytest.mark.parametrize("text, nbytes", [
    ("512", 512), ("56k", 57344), ("56K", 57344), ("500m", 500 * 1024 ** 2),
    ("10g", 10 * 1024 ** 3), ("10G", 10 * 1024 ** 3), ("1000", 1024), ("1", 512),
    (4096, 4096), (" 1m ", 1024 ** 2),
])
def test_size_grammar(text, nbytes):
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["10GB", "1.5g", "1t", "", "-1", "0", "k", "1 m", "1mb", True])
def test_size_refused_with_the_grammar(text):
    with pytest.raises(OpsError, match="56k, 500m, 10g"):
        parse_size(text)


@pytest.mark.parametrize("name", ["vol", "my-assets", "a.b_c", "x" * 31, u"caf\u00e9", "p%1"])
def test_names_accepted(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name, why", [
    ("x" * 32, "32 bytes long"), (u"\u00e9" * 16, "32 bytes long"), ("a:b", "':'"),
    ("a/b", "'/'"), ("a b", "' '"), ("%1", "attach ids"), (".hidden", "hides"), ("", "empty"),
    ("tab\there", "'\\\\t'"),
])
def test_names_refused(name, why):
    with pytest.raises(OpsError, match=why):
        validate_name(name)


def test_default_ops_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("OPS_HOME", str(tmp_path))
    assert default_ops_dir() == str(tmp_path / ".ops")
    monkeypatch.delenv("OPS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert default_ops_dir() == str(tmp_path / "h" / ".ops")


def test_listing_as_ops(tmp_path):
    vols = tmp_path / "volumes"
    vols.mkdir()
    for fname in ("a:00010203-0405-0607-0809-0a0b0c0d0e0f.raw", "b:00010203-0405-0607-0809-0a0b0c0d0eff.raw",
                  "a:00010203-0405-0607-0809-0a0b0c0d0e00.raw", "stray.txt", "nouuid.raw"):
        (vols / fname).write_bytes(b"")
    found = list_volume_files(str(vols))
    assert [(v.name, v.uuid[-2:]) for v in found] == [("a", "00"), ("a", "0f"), ("b", "ff")]
    assert find_volume(found, name="b").uuid.endswith("ff")
    assert find_volume(found, name="zz") is None
    with pytest.raises(OpsError, match="2 volumes are named 'a'.*Pass uuid"):
        find_volume(found, name="a")
    assert find_volume(found, name="a", uuid="00010203-0405-0607-0809-0a0b0c0d0e00").name == "a"


def test_staged_file_leaves_nothing_on_error(tmp_path):
    home = OpsHome(str(tmp_path / ".ops"))
    final = str(tmp_path / "final")
    with pytest.raises(RuntimeError):
        with home.staged_file(final) as fd:
            os.write(fd, b"partial")
            raise RuntimeError("boom")
    assert not os.path.exists(final)
    assert os.listdir(home.state("tmp")) == []
