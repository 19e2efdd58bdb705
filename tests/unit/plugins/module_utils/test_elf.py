# -*- coding: utf-8 -*-
"""ELF checks and shared-library resolution, on programs compiled here and on recorded output."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess

import pytest
import yaml

from ansible_collections.unikernel.ops.plugins.module_utils.images import elf
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

CASES = yaml.safe_load(open(os.path.join(os.path.dirname(__file__), "test_elf.yml")))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_parse_trace(case):
    assert elf.parse_trace(case["output"]) == (case["found"], case["missing"])


def test_trace_argv_is_exact():
    assert elf.trace_argv("/lib64/ld-linux-x86-64.so.2", "/srv/my app") == \
        ["/lib64/ld-linux-x86-64.so.2", "--list", "/srv/my app"]


def test_dynamic_program(c_programs):
    info = elf.inspect(c_programs["dynamic"])
    assert info.machine == os.uname().machine and info.dynamic
    libs = elf.shared_libraries(info)
    assert info.interp in libs
    assert any(os.path.basename(p) == "libc.so.6" for p in libs)
    assert all(os.path.isabs(p) and os.path.exists(p) for p in libs)


def test_static_program(c_programs):
    info = elf.inspect(c_programs["static"])
    assert not info.dynamic
    assert elf.shared_libraries(info) == []


def test_missing_library_is_named(tmp_path):
    lib = tmp_path / "libgone.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(lib), "-x", "c", "-"],
                   input=b"int gone(void) { return 1; }\n", check=True)
    prog = tmp_path / "needs-gone"
    subprocess.run(["gcc", "-o", str(prog), "-x", "c", "-", "-L", str(tmp_path), "-lgone"],
                   input=b"int gone(void); int main(void) { return gone(); }\n", check=True)
    lib.unlink()
    with pytest.raises(OpsError, match="libgone.so"):
        elf.shared_libraries(elf.inspect(str(prog)))


@pytest.mark.parametrize("content, match", [
    (b"#!/bin/sh\necho hi\n", "not an ELF"),
    (b"\x7fELF\x01\x01" + bytes(58), "64-bit"),
    (b"\x7fELF\x02\x01" + bytes(10) + b"\x01\x00\x3e\x00" + bytes(44), "object or core"),
    (b"\x7fELF\x02\x01" + bytes(10) + b"\x02\x00\x28\x00" + bytes(44), "machine 40"),
])
def test_refused(tmp_path, content, match):
    p = tmp_path / "bad"
    p.write_bytes(content)
    with pytest.raises(OpsError, match=match):
        elf.inspect(str(p))


def test_missing_program(tmp_path):
    with pytest.raises(OpsError, match="cannot read program"):
        elf.inspect(str(tmp_path / "nope"))


def test_foreign_loader_is_not_run(tmp_path):
    prog = tmp_path / "odd-loader"
    marker = tmp_path / "ran"
    evil = tmp_path / "evil-loader"
    evil.write_text("#!/bin/sh\ntouch %s\n" % marker)
    evil.chmod(0o755)
    subprocess.run(["gcc", "-o", str(prog), "-x", "c", "-", "-Wl,--dynamic-linker=%s" % evil],
                   input=b"int main(void) { return 0; }\n", check=True)
    info = elf.inspect(str(prog))
    assert info.interp == str(evil)
    with pytest.raises(OpsError, match="not a system loader"):
        elf.shared_libraries(info)
    assert not marker.exists()
