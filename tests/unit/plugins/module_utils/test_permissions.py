# -*- coding: utf-8 -*-
"""Permission paths that only a user other than root meets (root reads and writes every file,
whatever its mode): a source file or folder the user cannot read, an ops home it cannot write,
a volume, image, program or kernel it cannot read. Each case runs the module as Ansible runs it
and asserts a failure whose message names the path and says what is wrong (never "unexpected
error"), and an ops home byte for byte as it was; the info modules report the file they cannot
read and go on. As root, ./dev test runs these as an unprivileged user (./dev unit-nonroot);
run as root they are skipped."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os

import pytest

from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home, small_site
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import run_module, tree

pytestmark = pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes every file whatever its mode: "
                                                          "./dev unit-nonroot runs these as an unprivileged user")


@pytest.fixture
def home(tmp_path, c_programs):
    """An ops home with a stand-in kernel, the volume site and the image web; a source folder;
    the modes a case takes away are given back afterwards, so that pytest can clean up."""
    ops = kernel_home(tmp_path / "ops")
    src = small_site(tmp_path / "src")
    for module, args in (("ops_volume", {"name": "site", "source": str(src), "size": "4m"}),
                         ("ops_image", {"name": "web", "program": c_programs["static"], "mounts": {"site": "/site"}})):
        result, rc = run_module(module, dict(args, ops_dir=ops), tmp_path)
        assert rc == 0 and result["changed"], result
    taken = []

    def take(path, mode):
        taken.append((path, os.stat(path).st_mode & 0o7777))
        os.chmod(path, mode)
        return path

    where = {"ops": ops, "src": str(src), "tmp": str(tmp_path), "take": take,
             "volume": glob.glob(os.path.join(ops, "volumes", "site:*.raw"))[0],
             "image": os.path.join(ops, "images", "web"),
             "kernel": os.path.join(ops, "0.1.99", "kernel.img"),
             "program": c_programs["static"]}
    yield where
    for path, mode in reversed(taken):
        os.chmod(path, mode)


def refused(home, module, args, tmp_path, ops=None, unchanged=True):
    """Runs module, asserts a clean failure and (unless told not to) an unchanged ops home;
    returns the message."""
    ops = ops or home["ops"]
    args.setdefault("ops_dir", ops)
    before = tree(ops) if os.access(ops, os.R_OK | os.X_OK) else None
    result, rc = run_module(module, args, tmp_path)
    msg = result.get("msg", "")
    assert rc != 0 and result.get("failed"), result
    assert "unexpected error" not in msg and "Traceback" not in json.dumps(result), result
    if unchanged and before is not None:
        assert tree(ops) == before, "the ops home changed"
    return msg


def test_an_unreadable_source_file(home, tmp_path):
    secret = os.path.join(home["src"], "sub", "secret.txt")
    with open(secret, "w") as f:
        f.write("not for you\n")
    home["take"](secret, 0)
    msg = refused(home, "ops_volume", {"name": "other", "source": home["src"], "size": "4m"}, tmp_path)
    assert msg == "cannot read %s: Permission denied" % secret


def test_an_unreadable_source_folder(home, tmp_path):
    private = os.path.join(home["src"], "private")
    os.mkdir(private)
    home["take"](private, 0)
    msg = refused(home, "ops_volume", {"name": "other", "source": home["src"], "size": "4m"}, tmp_path)
    assert msg == "cannot read directory %s: Permission denied" % private


def test_an_unreadable_source(home, tmp_path):
    home["take"](home["src"], 0)
    msg = refused(home, "ops_volume", {"name": "other", "source": home["src"], "size": "4m"}, tmp_path)
    assert msg == "cannot read directory %s: Permission denied" % home["src"]


def test_a_volumes_folder_that_is_not_writable(home, tmp_path):
    volumes = home["take"](os.path.join(home["ops"], "volumes"), 0o555)
    msg = refused(home, "ops_volume", {"name": "other", "source": home["src"], "size": "4m"}, tmp_path)
    assert msg.startswith("cannot write %s/other:" % volumes) and msg.endswith(".raw: Permission denied"), msg


def test_an_images_folder_that_is_not_writable(home, tmp_path):
    images = home["take"](os.path.join(home["ops"], "images"), 0o555)
    msg = refused(home, "ops_image", {"name": "web2", "program": home["program"]}, tmp_path)
    assert msg == "cannot write %s/web2: Permission denied" % images


def test_an_ops_home_that_cannot_be_made(home, tmp_path):
    parent = tmp_path / "read-only"
    parent.mkdir()
    home["take"](str(parent), 0o555)
    ops = str(parent / ".ops")
    msg = refused(home, "ops_volume", {"name": "other", "source": home["src"], "size": "4m"}, tmp_path, ops=ops)
    assert msg == "cannot create %s: Permission denied" % os.path.join(ops, "volumes")
    assert not os.path.exists(ops)


def test_deleting_from_a_volumes_folder_that_is_not_writable(home, tmp_path):
    volumes = home["take"](os.path.join(home["ops"], "volumes"), 0o555)
    msg = refused(home, "ops_volume", {"name": "site", "state": "absent"}, tmp_path)
    assert msg == "cannot delete %s: Permission denied" % home["volume"], volumes


def test_growing_an_unreadable_volume(home, tmp_path):
    home["take"](home["volume"], 0)
    msg = refused(home, "ops_volume", {"name": "site", "source": home["src"], "size": "8m"}, tmp_path)
    assert msg.startswith("volume 'site' (%s) cannot be grown: it cannot be read (Permission denied)." % home["volume"]), msg


def test_an_unreadable_volume_for_ops_volume_info(home, tmp_path):
    home["take"](home["volume"], 0)
    result, rc = run_module("ops_volume_info", {"ops_dir": home["ops"], "name": "site", "contents": True}, tmp_path)
    assert rc == 0, result
    assert result["volumes"][0]["error"] == "not a readable Nanos volume: it cannot be read (Permission denied)", result


def test_an_unreadable_volume_for_ops_image(home, tmp_path):
    home["take"](home["volume"], 0)
    msg = refused(home, "ops_image", {"name": "web2", "program": home["program"], "mounts": {"site": "/site"}}, tmp_path)
    assert msg.startswith("volume 'site' (%s) cannot be mounted by image 'web2': it cannot be read (Permission denied)."
                          % home["volume"]), msg


def test_an_unreadable_program(home, tmp_path):
    program = os.path.join(home["tmp"], "program")
    with open(home["program"], "rb") as f, open(program, "wb") as out:
        out.write(f.read())
    home["take"](program, 0o100)
    msg = refused(home, "ops_image", {"name": "web2", "program": program}, tmp_path)
    assert msg == "cannot read program %s: Permission denied" % program


def test_an_unreadable_kernel(home, tmp_path):
    home["take"](home["kernel"], 0)
    msg = refused(home, "ops_image", {"name": "web2", "program": home["program"]}, tmp_path)
    assert msg == "cannot read kernel %s of Nanos 0.1.99: Permission denied" % home["kernel"]


def test_an_unreadable_image_for_ops_image_info(home, tmp_path):
    home["take"](home["image"], 0)
    result, rc = run_module("ops_image_info", {"ops_dir": home["ops"], "name": "web"}, tmp_path)
    assert rc == 0, result
    assert result["images"][0]["error"] == "not a readable Nanos image: cannot read image %s: Permission denied" % home["image"]


def test_an_unreadable_image_for_ops_instance_leaves_nothing(home, tmp_path):
    """Refused before QEMU is started or the instance's state folder is made."""
    home["take"](home["image"], 0o444)
    msg = refused(home, "ops_instance", {"name": "vm", "image": "web", "memory": "64M"}, tmp_path)
    assert msg == ("image %s cannot be read and written by this user, as QEMU must; make it so "
                   "(chmod, chown) or run as its owner" % home["image"])


def test_a_read_only_volume_file_for_ops_instance_leaves_nothing(home, tmp_path):
    home["take"](home["volume"], 0o444)
    msg = refused(home, "ops_instance", {"name": "vm", "image": "web", "memory": "64M",
                                         "volumes": ["site"]}, tmp_path)
    assert msg == ("volume site %s cannot be read and written by this user, as QEMU must; make it "
                   "so (chmod, chown) or run as its owner" % home["volume"])
