# -*- coding: utf-8 -*-
"""File names that are not UTF-8 (issue 12, item 5): Nanos resolves every guest path as UTF-8
(an invalid sequence is ENOENT), so such a name or link target is refused with its path shown,
the bytes that are not UTF-8 as \\xNN - by the writer, and by ops_volume, which then leaves
the ops home as it was. Names that are UTF-8, whatever their script, are kept byte for byte."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs import writer as tfs_writer
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.tfs_helpers import build, host_tree, volume_tree
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import run_module, tree

LATIN1 = b"caf\xe9"  # "café" as latin-1: \xe9 is not UTF-8
NAME_MSG = ("file name %s is not valid UTF-8 (\\xNN marks a byte that is not): Nanos resolves every "
            "path as UTF-8 and could never open it; rename it (convmv converts a tree's names) or "
            "move it out of the source")
TARGET_MSG = ("symlink %s points to %s, which is not valid UTF-8 (\\xNN marks a byte that is not): "
              "Nanos resolves every path as UTF-8 and could never follow it; point it at a UTF-8 "
              "path or move it out of the source")
GUEST_MSG = ("guest path %s is not valid UTF-8 (\\xNN marks a byte that is not): Nanos resolves "
             "every path as UTF-8 and could never open it; give it in UTF-8")


def tree_with(root, bad):
    """A small valid tree, plus whatever bad(root) adds."""
    os.makedirs(os.path.join(root, "sub"))
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(b"<h1>site</h1>\n")
    bad(os.fsencode(root))
    return root


def bad_file(root):
    with open(os.path.join(root, b"sub", LATIN1), "wb") as f:
        f.write(b"x")


def bad_dir(root):
    os.mkdir(os.path.join(root, b"sub", LATIN1))
    with open(os.path.join(root, b"sub", LATIN1, b"inside.txt"), "wb") as f:
        f.write(b"x")


def bad_target(root):
    os.symlink(b"../" + LATIN1, os.path.join(root, b"sub", b"link"))


CASES = {
    "file": (bad_file, lambda src: NAME_MSG % (src + "/sub/caf\\xe9")),
    "directory": (bad_dir, lambda src: NAME_MSG % (src + "/sub/caf\\xe9")),
    "symlink target": (bad_target, lambda src: TARGET_MSG % (src + "/sub/link", "../caf\\xe9")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_writer_refuses_a_name_that_is_not_utf8(tmp_path, case):
    bad, msg = CASES[case]
    src = tree_with(str(tmp_path / "src"), bad)
    with pytest.raises(OpsError) as e:
        tfs_writer.plan_tree(src)
    assert e.value.msg == msg(src)
    with pytest.raises(OpsError) as e:  # check mode's walk too
        tfs_writer.plan_tree(src, check_readable=True)
    assert e.value.msg == msg(src)


def test_a_source_path_that_is_not_utf8_is_shown_escaped(tmp_path):
    """The bad bytes may be in the source's own path too: shown the same way, never as a
    trace (a lone surrogate would not even go out as JSON)."""
    base = os.fsencode(str(tmp_path)) + b"/src-\xff"
    src = tree_with(os.fsdecode(base), bad_file)
    with pytest.raises(OpsError) as e:
        tfs_writer.plan_tree(src)
    assert e.value.msg == NAME_MSG % (str(tmp_path) + "/src-\\xff/sub/caf\\xe9")


@pytest.mark.parametrize("guest", [b"/etc/" + LATIN1, "/etc/caf\udce9"])
def test_a_guest_path_that_is_not_utf8_is_refused(guest):
    with pytest.raises(OpsError) as e:
        tfs_writer.TreePlan().add_data(guest, b"x")
    assert e.value.msg == GUEST_MSG % "/etc/caf\\xe9"


def test_utf8_names_of_any_script_are_kept(tmp_path):
    src = tmp_path / "src"
    (src / "日本語").mkdir(parents=True)
    (src / "日本語" / "café ☃.txt").write_bytes(b"snow\n")
    (src / "Ünïcødé").write_bytes(b"u\n")
    os.symlink("日本語/café ☃.txt", str(src / "→"))
    vol = str(tmp_path / "vol.raw")
    build(str(src), vol)
    assert volume_tree(vol) == host_tree(str(src))


@pytest.fixture
def home(tmp_path):
    """An ops home holding the volume site, built from a good tree."""
    ops = str(tmp_path / "ops")
    good = tree_with(str(tmp_path / "good"), lambda root: None)
    result, rc = run_module("ops_volume", {"name": "site", "source": good, "ops_dir": ops}, tmp_path)
    assert rc == 0 and result["changed"], result
    return ops


@pytest.mark.parametrize("how", ["create", "create in check mode", "forced rebuild"])
def test_ops_volume_refuses_it_and_changes_nothing(home, tmp_path, how):
    src = tree_with(str(tmp_path / "src"), bad_file)
    args = {"name": "bad", "source": src, "ops_dir": home}
    if how == "create in check mode":
        args["_ansible_check_mode"] = True
    elif how == "forced rebuild":
        args.update(name="site", force=True)
    before = tree(home)
    result, rc = run_module("ops_volume", args, tmp_path)
    assert rc == 1 and result.get("failed"), result
    assert result["msg"] == NAME_MSG % (src + "/sub/caf\\xe9")
    assert "exception" not in result
    assert tree(home) == before, "the ops home changed"
