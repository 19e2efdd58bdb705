# -*- coding: utf-8 -*-
"""A kernel that is not a kernel: release tarballs whose kernel.img or boot.img is something
else are refused by ops_kernel before anything is installed; an installed release whose
kernel.img was damaged is named by ops_kernel_info and refused by ops_image; an ELF that looks
like a Nanos kernel (64-bit x86_64 PIE with loadable segments and no loader) is accepted and
goes into the image byte for byte."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct
import tarfile

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images import elf
from ansible_collections.unikernel.ops.plugins.module_utils.images import layout as image_layout
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home, make_boot_img, make_release
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import run_module, tree

PT_LOAD, PT_INTERP, PT_NOTE = 1, 3, 4
WHAT = elf.WHAT_A_KERNEL_IS


def elf_image(e_type=3, machine=62, cls=2, data=1, segments=(PT_LOAD, PT_LOAD, PT_NOTE), body=4096,
              phentsize=56, phoff=64):
    """An ELF file laid out as a linker writes one: header, program headers, then bytes."""
    ident = b"\x7fELF" + bytes((cls, data, 1, 0)) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0x200000, phoff, 0, 0, 64,
                                 phentsize, len(segments), 64, 0, 0)
    table = b"".join(struct.pack("<IIQQQQQQ", t, 5, 0, 0x200000, 0x200000, body, body, 4096)
                     for t in segments)
    return header + table + bytes((i * 31) & 0xFF for i in range(body))


KERNELS = {
    "text": (b"#!/bin/sh\necho not a kernel\n", "it is not an ELF file"),
    "empty": (b"", "it is empty"),
    "elf-magic-only": (b"\x7fELF", "it is too short for an ELF header (4 bytes)"),
    "32-bit": (elf_image(cls=1), "it is not a 64-bit little-endian ELF"),
    "big-endian": (elf_image(data=2), "it is not a 64-bit little-endian ELF"),
    "object-file": (elf_image(e_type=1), "it is an ELF object or core file, not an executable"),
    "aarch64": (elf_image(machine=183), "it is an ELF for aarch64, not x86_64"),
    "riscv": (elf_image(machine=243), "it is an ELF for riscv, not x86_64"),
    "machine-9999": (elf_image(machine=9999), "it is an ELF for machine 9999, not x86_64"),
    "dynamic-program": (elf_image(segments=(PT_INTERP, PT_LOAD)),
                        "it is a dynamically linked program (it names a dynamic loader), not a kernel"),
    "nothing-to-load": (elf_image(segments=(PT_NOTE,)), "it has no loadable segment"),
    "table-past-the-end": (elf_image(phoff=1 << 40), "its ELF program header table is damaged"),
    "table-past-2**63": (elf_image(phoff=(1 << 64) - 8), "its ELF program header table is damaged"),
    "short-entries": (elf_image(phentsize=8), "its ELF program header table is damaged"),
    "gzip": (b"\x1f\x8b\x08\x00" + bytes(200), "it is not an ELF file"),
}


@pytest.mark.parametrize("case", sorted(KERNELS))
def test_check_kernel_names_what_is_wrong(tmp_path, case):
    data, why = KERNELS[case]
    path = tmp_path / "kernel.img"
    path.write_bytes(data)
    with pytest.raises(OpsError) as e:
        elf.check_kernel(str(path))
    assert e.value.msg == "kernel %s is not a Nanos kernel: %s; %s" % (path, why, WHAT)


def test_check_kernel_takes_a_kernel_like_elf_and_the_stand_in(tmp_path):
    path = tmp_path / "kernel.img"
    path.write_bytes(elf_image())
    assert elf.check_kernel(str(path)) == str(path)
    rel = make_release(tmp_path, "0.1.99")
    assert elf.check_kernel(os.path.join(rel, "kernel.img"))
    with pytest.raises(OpsError, match="^cannot read kernel %s: Is a directory$" % tmp_path):
        elf.check_kernel(str(tmp_path))


BOOTS = {
    "no-signature": (lambda p: p.write_bytes(bytes(1024)), "{p} is not a Nanos boot.img (no boot sector signature)"),
    "no-stage2": (lambda p: p.write_bytes(bytes(510) + b"\x55\xaa"),
                  "{p} is not a Nanos boot.img (its boot sector describes no stage2)"),
    "too-large": (lambda p: (make_boot_img(p), p.open("ab").write(bytes(2 * 1024 * 1024))),
                  "{p} is not a Nanos boot.img: it is larger than 1048576 bytes (stage1 loads stage2 below 1 MiB)"),
    "cut-short": (lambda p: p.write_bytes(make_boot_bytes(p)[:1000]),
                  "{p} is damaged: its boot sector says 1536 bytes of stage2, the file has 488"),
}


def make_boot_bytes(p):
    make_boot_img(p)
    return p.read_bytes()


@pytest.mark.parametrize("case", sorted(BOOTS))
def test_boot_img_checks(tmp_path, case):
    make, msg = BOOTS[case]
    path = tmp_path / "boot.img"
    make(path)
    with pytest.raises(OpsError) as e:
        image_layout.read_boot_region(str(path))
    assert e.value.msg == msg.format(p=path)


# -- ops_kernel: tarballs ------------------------------------------------------------------

def release_tarball(tmp_path, name, kernel=None, boot=None):
    rel = make_release(tmp_path / ("build-" + name), "0.1.98")
    if kernel is not None:
        with open(os.path.join(rel, "kernel.img"), "wb") as f:
            f.write(kernel)
    if boot is not None:
        with open(os.path.join(rel, "boot.img"), "wb") as f:
            f.write(boot)
    path = str(tmp_path / ("%s.tar.gz" % name))
    with tarfile.open(path, "w:gz") as tar:
        for entry in sorted(os.listdir(rel)):
            tar.add(os.path.join(rel, entry), arcname=entry)
    return path


def home_tree(ops):
    """tree() of the ops home but the collection's own scratch folder, which an install makes
    (empty when it is done) before it knows what the tarball holds."""
    return dict((k, v) for k, v in tree(ops).items()
                if k not in (".unikernel-ops", os.path.join(".unikernel-ops", "tmp")))


@pytest.fixture
def ops(tmp_path):
    return kernel_home(tmp_path / "ops")


@pytest.mark.parametrize("member, data, why", [
    ("kernel", b"<html>404 Not Found</html>\n", "the kernel.img of release tarball {t} is not a Nanos kernel: "
                                                "it is not an ELF file; " + WHAT),
    ("kernel", KERNELS["aarch64"][0], "the kernel.img of release tarball {t} is not a Nanos kernel: "
                                      "it is an ELF for aarch64, not x86_64; " + WHAT),
    ("boot", b"\x7fELF" + bytes(2000), "the boot.img of release tarball {t} is not a Nanos boot.img "
                                       "(no boot sector signature)"),
])
def test_ops_kernel_refuses_a_release_of_other_files(ops, tmp_path, member, data, why):
    tarball = release_tarball(tmp_path, member, **{member: data})
    before = home_tree(ops)
    result, rc = run_module("ops_kernel", {"version": "0.1.98", "src": tarball, "ops_dir": ops}, tmp_path)
    assert rc != 0 and result["failed"], result
    assert result["msg"] == why.format(t=tarball), result["msg"]
    assert "exception" not in result
    assert home_tree(ops) == before  # nothing installed, latest.txt untouched, no temporary folder left


def test_ops_kernel_installs_a_kernel_like_elf(ops, tmp_path):
    tarball = release_tarball(tmp_path, "elf", kernel=elf_image())
    result, rc = run_module("ops_kernel", {"version": "0.1.98", "src": tarball, "ops_dir": ops}, tmp_path)
    assert rc == 0 and result["changed"], result
    with open(os.path.join(ops, "0.1.98", "kernel.img"), "rb") as f:
        assert f.read() == elf_image()


# -- an installed release damaged afterwards -------------------------------------------------

def test_a_damaged_installed_kernel_is_named(ops, tmp_path, c_programs):
    kernel = os.path.join(ops, "0.1.99", "kernel.img")
    with open(kernel, "wb") as f:
        f.write(b"")  # an `ops update` that was cut off
    result, rc = run_module("ops_kernel_info", {"ops_dir": ops}, tmp_path)
    assert rc == 0 and result["kernel"] is None, result
    assert result["missing"] == "kernel %s of Nanos 0.1.99 is not a Nanos kernel: it is empty; %s" % (kernel, WHAT)
    before = tree(ops)
    result, rc = run_module("ops_image", {"name": "app", "program": c_programs["static"], "ops_dir": ops},
                            tmp_path)
    assert rc != 0 and result["msg"] == "kernel %s of Nanos 0.1.99 is not a Nanos kernel: it is empty; %s" % (
        kernel, WHAT), result
    assert tree(ops) == before


def test_ops_image_builds_with_a_kernel_like_elf(ops, tmp_path, c_programs):
    kernel = tmp_path / "kernel.img"
    kernel.write_bytes(elf_image())
    boot = os.path.join(ops, "0.1.99", "boot.img")
    result, rc = run_module("ops_image", {"name": "app", "program": c_programs["static"], "ops_dir": ops,
                                          "kernel": str(kernel), "boot": boot}, tmp_path)
    assert rc == 0 and result["changed"], result
    path = result["image"]["path"]
    with TFS(path, image_layout.filesystem_offsets(path)[0]) as bootfs:
        assert bootfs.read_file("/kernel") == elf_image()
