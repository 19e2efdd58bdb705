# -*- coding: utf-8 -*-
"""Sizes, names and the ops home's volume files."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome, default_ops_dir
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    check_volume_file, find_volume, list_volume_files, parse_size, validate_name,
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


def test_size_zero_names_what_is_sized():
    with pytest.raises(OpsError) as e:
        parse_size("0", "image")
    assert e.value.msg.endswith(", or leave size out for an image sized to its content")
    with pytest.raises(OpsError) as e:
        parse_size("0")
    assert e.value.msg.endswith(", or leave size out for a volume sized to its content")


def test_check_volume_file(tmp_path):
    """A sound volume passes; a file that is no volume, or whose version or label are not what
    its header should hold, is refused naming the file and the reason."""
    vol = OnPremVolumes(ops_dir=str(tmp_path / ".ops")).present(VolumeSpec(name="v", size="2m")).volume
    assert check_volume_file(vol["path"], "grown") is None
    empty = str(tmp_path / "empty.raw")
    open(empty, "wb").close()
    with pytest.raises(OpsError) as e:
        check_volume_file(empty, "attached to instance 'x'")
    assert e.value.msg == (
        "volume 'empty.raw' (%s) cannot be attached to instance 'x': it is cut short: the file has 0 "
        "bytes, less than its 512-byte header. It is left as it is: restore it from a backup, or "
        "delete it (unikernel.ops.ops_volume with state: absent) and create it again" % empty)
    assert e.value.details == {"volume": empty}
    with open(vol["path"], "r+b") as f:
        f.seek(6)
        f.write(b"\x09")  # the version
    with pytest.raises(OpsError) as e:
        check_volume_file(vol["path"], "grown")
    assert "cannot be grown: its header is damaged (TFS version 9 is not supported). It is" in e.value.msg
    with open(vol["path"], "r+b") as f:
        f.seek(6)
        f.write(b"\x05")
        f.seek(6 + 2 + 16)
        f.write(b"w")  # the label: v -> w
    with pytest.raises(OpsError) as e:
        check_volume_file(vol["path"], "grown")
    assert e.value.msg == (
        "volume 'v' (%s) cannot be grown: its header says label 'w' and UUID %s, its file name 'v' and "
        "%s. It is left as it is: rename the file back to w:%s.raw" % ((vol["path"],) + (vol["uuid"],) * 3))
