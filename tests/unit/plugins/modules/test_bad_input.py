# -*- coding: utf-8 -*-
"""The bad-input table (bad_input*.yml): each row runs one module as Ansible runs it (a separate
Python process given its arguments as a JSON file) on an ops home that holds a kernel, a volume,
an image and a running record of nothing, and asserts that it fails with a message that names
the input (never "unexpected error"), and that the ops home is byte for byte what it was. Every
row runs twice: as a task runs, and in check mode (--check), where the same input is refused the
same way - but for a row that says in check_mode_passes why check mode cannot tell: its check-mode
run reports the change it would make, and changes nothing either."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import json
import os

import pytest
import yaml

from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home, small_site
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import fill, run_module, tree

HERE = os.path.dirname(os.path.abspath(__file__))
ROWS = []
for table in sorted(glob.glob(os.path.join(HERE, "bad_input*.yml"))):  # one file per area
    with open(table) as f:
        ROWS.extend(yaml.safe_load(f) or [])


@pytest.fixture(scope="module")
def home(tmp_path_factory, c_programs):
    """An ops home with a stand-in kernel, the volume site, the image web, and the files the
    rows point at."""
    base = tmp_path_factory.mktemp("bad-input")
    ops = kernel_home(base / "ops")
    src = small_site(base / "src")
    files = base / "files"
    files.mkdir()
    configs = {
        "mounts-list.json": {"Mounts": ["site:/site"]},
        "env-list.json": {"Env": ["A=1"]},
        "args-string.json": {"Args": "--port 80"},
        "nightly-string.json": {"NightlyBuild": "yes"},
        "not-object.json": ["Program"],
    }
    for name, data in configs.items():
        (files / name).write_text(json.dumps(data))
    (files / "not-json.json").write_text("{Mounts: site}")
    (files / "not-a-kernel.img").write_bytes(b"\x7fELF but not really a kernel\n" * 10)
    (files / "not-a-tarball.tar.gz").write_bytes(b"plain text\n")
    where = {"ops": ops, "src": str(src), "files": str(files), "tmp": str(base),
             "static": c_programs["static"], "dynamic": c_programs["dynamic"]}
    for module, args in (("ops_volume", {"name": "site", "source": str(src), "size": "4m"}),
                         ("ops_image", {"name": "web", "program": c_programs["static"],
                                        "mounts": {"site": "/site"}})):
        result, rc = run_module(module, dict(args, ops_dir=ops), base)
        assert rc == 0 and result["changed"], result
    return where


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
@pytest.mark.parametrize("row", ROWS, ids=["%s-%d" % (r["module"], i) for i, r in enumerate(ROWS)])
def test_bad_input(home, row, check_mode, tmp_path):
    args = fill(row["args"], home)
    args.setdefault("ops_dir", home["ops"])
    args["_ansible_check_mode"] = check_mode
    before = tree(home["ops"])
    result, rc = run_module(row["module"], args, tmp_path)
    msg = result.get("msg", "")
    if check_mode and row.get("check_mode_passes"):
        assert rc == 0 and result["changed"] and not result.get("failed"), result
    else:
        assert rc != 0 and result.get("failed"), result
        assert fill(row["msg"], home) in msg, msg
    assert "unexpected error" not in msg and "Traceback" not in json.dumps(result), result
    assert tree(home["ops"]) == before, "the ops home changed"


def test_the_highest_local_attach_id_is_taken(home, tmp_path):
    """2147483647, one below the row refused in bad_input_instance.yml, goes through (check
    mode: validated, nothing started)."""
    before = tree(home["ops"])
    result, rc = run_module("ops_instance", {
        "name": "top", "image": "web", "volumes": [{"volume": "site", "attach_id": 2147483647}],
        "ops_dir": home["ops"], "_ansible_check_mode": True}, tmp_path)
    assert rc == 0 and result["changed"] and not result.get("failed"), result
    assert result["actions"][0].startswith("start top from "), result
    assert tree(home["ops"]) == before
