# -*- coding: utf-8 -*-
"""The _info modules on an ops home where one volume and one image are damaged, run as Ansible
runs them: the others are listed as they are, the damaged one is listed with an `error` that
names the file and what is wrong, and nothing in the ops home changes. A module asked to change
a damaged volume refuses and leaves it as it is."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    LOG_EXTENSION_LINK, SECTOR, encode_varint,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import parse_initial_extension
from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home, small_site
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import run_module, tree


def _patch(path, offset, data):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def _first_log_sector(path, offset=0):
    with open(path, "rb") as f:
        f.seek(offset)
        return parse_initial_extension(f.read(SECTOR))[3]


def _loop(path, offset=0):
    """The first log extension's first frame made a link to itself."""
    start = _first_log_sector(path, offset)
    with open(path, "rb") as f:
        f.seek(offset + start * SECTOR + 6)
        head = f.read(4)
    at = 6 + 1 + (2 if head[1] & 0x80 else 1)  # past the version and the length (1024: 2 bytes)
    _patch(path, offset + start * SECTOR + at,
           bytes((LOG_EXTENSION_LINK,)) + encode_varint(start) + encode_varint(1024))
    return "the log extension at sector %d links back to itself or an earlier one" % start


def _zero_log_magic(path, offset=0):
    start = _first_log_sector(path, offset)
    _patch(path, offset + start * SECTOR, bytes(6))
    return "log extension at sector %d is missing or damaged" % start


def _truncate(path, offset=0):
    os.truncate(path, offset + 3 * SECTOR)
    return "log extension at sector 1 (1024 sectors) lies beyond the end of the disk (%d bytes)" % (
        offset + 3 * SECTOR)


DAMAGE = {"loop": _loop, "zeroed-log-magic": _zero_log_magic, "truncated": _truncate}


def _volume_reason(damage, path):
    """What the volume store says of a volume damaged so: the reader's reason, but for a volume
    cut short, which the store tells from its size before its log is read."""
    if damage != "truncated":
        return DAMAGE[damage](path)
    with open(path, "rb") as f:
        start, length = parse_initial_extension(f.read(SECTOR))[3:5]
    _truncate(path)
    return "it is cut short: its log runs to byte %d but the file has %d bytes" % (
        (start + length) * SECTOR, os.path.getsize(path))


@pytest.fixture(scope="module")
def built(tmp_path_factory, c_programs):
    """A pristine ops home with the volumes good and bad and the images app and broken."""
    base = tmp_path_factory.mktemp("corrupt-home")
    ops = kernel_home(base / "ops")
    src = small_site(base / "src")
    for module, args in (("ops_volume", {"name": "good", "source": str(src), "size": "4m"}),
                         ("ops_volume", {"name": "bad", "source": str(src), "size": "4m"}),
                         ("ops_image", {"name": "app", "program": c_programs["static"]}),
                         ("ops_image", {"name": "broken", "program": c_programs["static"]})):
        result, rc = run_module(module, dict(args, ops_dir=ops), base)
        assert rc == 0 and result["changed"], result
    return {"ops": ops, "src": str(src)}


@pytest.fixture
def home(built, tmp_path):
    ops = str(tmp_path / "ops")
    shutil.copytree(built["ops"], ops, symlinks=True)
    return {"ops": ops, "src": built["src"], "tmp": tmp_path}


def _volume_path(ops, name):
    found = [n for n in os.listdir(os.path.join(ops, "volumes")) if n.startswith(name + ":")]
    assert len(found) == 1, found
    return os.path.join(ops, "volumes", found[0])


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_volume_info_lists_the_others_and_names_the_damage(home, damage):
    bad = _volume_path(home["ops"], "bad")
    reason = _volume_reason(damage, bad)
    before = tree(home["ops"])
    result, rc = run_module("ops_volume_info", {"ops_dir": home["ops"], "contents": True, "checksums": True},
                            home["tmp"])
    assert rc == 0 and not result.get("failed"), result
    by_name = dict((v["name"], v) for v in result["volumes"])
    assert sorted(by_name) == ["bad", "good"]
    good = by_name["good"]
    assert "error" not in good and good["files"] == 2
    assert sorted(c["path"] for c in good["contents"]) == ["/index.html", "/sub", "/sub/note.txt"]
    # how the volume store words it is its own (the entry's path names the file); it carries
    # the reader's reason
    error = by_name["bad"]["error"]
    assert error.startswith("not a readable Nanos volume: "), error
    assert reason in error, error
    assert by_name["bad"]["path"] == bad and "contents" not in by_name["bad"]
    assert tree(home["ops"]) == before


def test_volume_update_refuses_a_damaged_volume_and_keeps_it(home):
    bad = _volume_path(home["ops"], "bad")
    _zero_log_magic(bad)
    before = tree(home["ops"])
    result, rc = run_module("ops_volume", {"ops_dir": home["ops"], "name": "bad", "source": home["src"]},
                            home["tmp"])
    assert rc != 0 and result["failed"], result
    assert bad in result["msg"] and "left as it is" in result["msg"], result
    assert "unexpected error" not in result["msg"] and "exception" not in result
    assert tree(home["ops"]) == before


@pytest.mark.parametrize("damage", ["loop", "zeroed-log-magic", "mbr", "truncated"])
def test_image_info_lists_the_others_and_names_the_damage(home, damage):
    broken = os.path.join(home["ops"], "images", "broken")
    with open(broken, "rb") as f:
        mbr = f.read(SECTOR)
    rootfs = int.from_bytes(mbr[446 + 16 + 8:446 + 16 + 12], "little") * SECTOR
    if damage == "mbr":
        _patch(broken, 510, b"\0\0")
        reason = "%s is not a disk image (no partition table)" % broken
    else:
        reason = "%s (filesystem at byte %d): %s" % (broken, rootfs, DAMAGE[damage](broken, rootfs))
    before = tree(home["ops"])
    result, rc = run_module("ops_image_info", {"ops_dir": home["ops"]}, home["tmp"])
    assert rc == 0 and not result.get("failed"), result
    by_name = dict((i["name"], i) for i in result["images"])
    assert sorted(by_name) == ["app", "broken"]
    assert "error" not in by_name["app"] and by_name["app"]["program"] == "/hello-static"
    assert by_name["broken"]["error"] == "not a readable Nanos image: %s" % reason, by_name["broken"]
    assert by_name["broken"]["built_by_collection"] is False
    assert "Traceback" not in json.dumps(result)
    assert tree(home["ops"]) == before
