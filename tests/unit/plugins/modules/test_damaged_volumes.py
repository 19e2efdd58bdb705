# -*- coding: utf-8 -*-
"""Volume files damaged behind our back (cut short in the log or in the data, the magic zeroed,
a log byte flipped, renamed): an image that mounts one, a grow and a re-run of ops_volume, and
an instance that boots with one each fail with a message that names the volume, the file and
what is wrong, and the ops home - the damaged file included - is byte for byte what it was.
Each run is made twice, as a task runs and in check mode (--check), which refuses the same way.
Modules run as Ansible runs them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import run_module, tree

OTHER_UUID = "00000000-1111-2222-3333-444444444444"
REMEDY = ("restore it from a backup, or delete it (unikernel.ops.ops_volume with state: absent) "
          "and create it again")


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, c_programs):
    """An ops home with a stand-in kernel, the volume site (a file of several sectors in it)
    and the image web that mounts it."""
    base = tmp_path_factory.mktemp("damaged")
    ops = kernel_home(base / "ops")
    src = base / "src"
    src.mkdir()
    (src / "index.html").write_text("<h1>site</h1>\n")
    (src / "big.bin").write_bytes(bytes(range(256)) * 80)  # 40 sectors
    for module, args in (("ops_volume", {"name": "site", "source": str(src), "size": "4m"}),
                         ("ops_image", {"name": "web", "program": c_programs["static"],
                                        "mounts": {"site": "/site"}})):
        result, rc = run_module(module, dict(args, ops_dir=ops), base)
        assert rc == 0 and result["changed"], result
    (name,) = os.listdir(os.path.join(ops, "volumes"))
    with TFS(os.path.join(ops, "volumes", name)) as tfs:
        big = tfs.extents(tfs.lookup("/big.bin"))[0]
        with open(os.path.join(ops, "volumes", name), "rb") as f:
            f.seek(512)
            end_of_log = 512 + len(f.read(512 * 1024).rstrip(b"\0")) - 1
        uuid = tfs.uuid
    return {"ops": ops, "src": str(src), "base": base, "volume": name, "uuid": uuid,
            "big_end": (big[1] + big[2]) * 512, "end_of_log": end_of_log}


def _flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)[0]
        f.seek(offset)
        f.write(bytes((byte ^ 0xFF,)))


# name -> (damage it does to the volume file, returning the file's new path; the problem shown)
DAMAGES = {
    "log-cut-short": (lambda path, p: os.truncate(path, 1512) or path,
                      lambda p: "it is cut short: its log runs to byte 524800 but the file has 1512 bytes"),
    "magic-zeroed": (lambda path, p: _write(path, 0, bytes(6)),
                     lambda p: "its header is damaged (sector 0 does not start with the TFS magic NVMTFS)"),
    "frame-flipped": (lambda path, p: _flip(path, 512 + 9) or path,  # after "NVMTFS" 05 8800
                      lambda p: "its log is damaged (unknown log frame 253 at sector 1)"),
    "end-flipped": (lambda path, p: _flip(path, p["end_of_log"]) or path,
                    lambda p: "its log is damaged (unknown log frame 254 at sector 1)"),
    "data-cut-short": (lambda path, p: os.truncate(path, p["big_end"] - 4096) or path,
                       lambda p: "it is cut short: /big.bin has data up to byte %d but the file has %d bytes"
                       % (p["big_end"], p["big_end"] - 4096)),
}


def _write(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)
    return path


@pytest.fixture
def home(pristine, tmp_path):
    ops = str(tmp_path / "ops")
    shutil.copytree(pristine["ops"], ops, symlinks=True)
    return dict(pristine, ops=ops, path=os.path.join(ops, "volumes", pristine["volume"]))


def uses(home):
    """(module, args, what the volume cannot be) for each way a volume file is used."""
    return {
        "image": ("ops_image", {"name": "web", "program": home["static"], "mounts": {"site": "/site"}},
                  "mounted by image 'web'"),
        "grow": ("ops_volume", {"name": "site", "size": "8m"}, "grown"),
        "rerun": ("ops_volume", {"name": "site", "source": home["src"], "size": "4m"},
                  "compared with %s" % home["src"]),
        # refused before QEMU is started: nothing of the instance is made
        "boot": ("ops_instance", {"name": "vm", "image": "web", "volumes": ["site"]},
                 "attached to instance 'vm' at boot"),
    }


USES = ["image", "grow", "rerun", "boot"]
CHECK_MODE = pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])


def refused(home, tmp_path, module, args, msg, check_mode=False):
    before = tree(home["ops"])
    result, rc = run_module(module, dict(args, ops_dir=home["ops"], _ansible_check_mode=check_mode),
                            tmp_path)
    assert rc != 0 and result.get("failed"), result
    assert result["msg"] == msg
    assert "Traceback" not in json.dumps(result)
    assert tree(home["ops"]) == before, "the ops home changed"


@CHECK_MODE
@pytest.mark.parametrize("use", USES)
@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_volume_is_refused(home, tmp_path, c_programs, damage, use, check_mode):
    home["static"] = c_programs["static"]
    do, problem = DAMAGES[damage]
    path = do(home["path"], home)
    module, args, what = uses(home)[use]
    if use == "rerun" and "cut-short" in damage:
        what = "grown"  # the file is now smaller than the size asked: a re-run would grow it
    refused(home, tmp_path, module, args, "volume 'site' (%s) cannot be %s: %s. It is left as it is: %s"
            % (path, what, problem(home), REMEDY), check_mode)


@CHECK_MODE
@pytest.mark.parametrize("use", USES)
def test_renamed_volume_is_refused(home, tmp_path, c_programs, use, check_mode):
    """A file renamed by hand: Nanos would look for the label and UUID its header holds."""
    home["static"] = c_programs["static"]
    path = home["path"].replace(home["uuid"], OTHER_UUID)
    os.rename(home["path"], path)
    module, args, what = uses(home)[use]
    refused(home, tmp_path, module, args,
            "volume 'site' (%s) cannot be %s: its header says label 'site' and UUID %s, its file name "
            "'site' and %s. It is left as it is: rename the file back to site:%s.raw"
            % (path, what, home["uuid"], OTHER_UUID, home["uuid"]), check_mode)


@CHECK_MODE
def test_force_does_not_rebuild_a_damaged_volume(home, tmp_path, check_mode):
    path = DAMAGES["frame-flipped"][0](home["path"], home)
    refused(home, tmp_path, "ops_volume", {"name": "site", "source": home["src"], "force": True},
            "volume 'site' (%s) cannot be rebuilt from %s: its log is damaged (unknown log frame 253 "
            "at sector 1). It is left as it is: %s" % (path, home["src"], REMEDY), check_mode)


@CHECK_MODE
def test_a_new_image_mounting_it_by_uuid_is_refused_too(home, tmp_path, c_programs, check_mode):
    path = DAMAGES["data-cut-short"][0](home["path"], home)
    problem = DAMAGES["data-cut-short"][1](home)
    refused(home, tmp_path, "ops_image", {"name": "web2", "program": c_programs["static"],
                                          "mounts": {home["uuid"]: "/site"}},
            "volume 'site' (%s) cannot be mounted by image 'web2': %s. It is left as it is: %s"
            % (path, problem, REMEDY), check_mode)


def test_sound_volume_still_grows_and_mounts(home, tmp_path, c_programs):
    """The same runs on the undamaged copy succeed: the refusals above are the damage's."""
    for module, args in (("ops_volume", {"name": "site", "size": "8m"}),
                         ("ops_image", {"name": "web", "program": c_programs["static"],
                                        "mounts": {"site": "/site"}, "force": True})):
        result, rc = run_module(module, dict(args, ops_dir=home["ops"]), tmp_path)
        assert rc == 0 and result["changed"], result
    assert os.path.getsize(home["path"]) == 8 * 1024 * 1024
