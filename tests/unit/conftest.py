# -*- coding: utf-8 -*-
"""Make the checkout importable as ansible_collections.unikernel.ops, as Ansible imports it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import struct
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_path():
    # Already inside .../ansible_collections/unikernel/ops (ansible-test's layout)?
    parts = ROOT.split(os.sep)
    if parts[-3:-1] == ["ansible_collections", "unikernel"] and parts[-1] == "ops":
        return os.sep.join(parts[:-3])
    base = os.path.join(ROOT, ".build", "collections")
    link = os.path.join(base, "ansible_collections", "unikernel", "ops")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.join("..", "..", "..", ".."), link)
    return base


COLLECTIONS_PATH = _collections_path()
sys.path.insert(0, COLLECTIONS_PATH)

# The stand-in Nanos release shared with the integration tests.
from ansible_collections.unikernel.ops.tests.integration.targets.setup_nanos_standin.files.nanos_standin import (  # noqa: E402 pylint: disable=wrong-import-position
    make_boot_img, make_release,
)

__all__ = ["make_boot_img", "make_release", "kernel_home", "small_site", "serial_boot_image",
           "c_programs", "COLLECTIONS_PATH"]


def kernel_home(ops, version="0.1.99"):
    """An ops home at ops whose latest.txt names a stand-in release; returns ops as a str."""
    ops = str(ops)
    make_release(ops, version)
    with open(os.path.join(ops, "latest.txt"), "w") as f:
        f.write(version)
    return ops


def small_site(src):
    """A volume source of two small files, one in a folder: src/index.html, src/sub/note.txt."""
    os.makedirs(os.path.join(str(src), "sub"))
    with open(os.path.join(str(src), "index.html"), "w") as f:
        f.write("<h1>site</h1>\n")
    with open(os.path.join(str(src), "sub", "note.txt"), "w") as f:
        f.write("note\n")
    return src


def serial_boot_image(path, text):
    """A 1 MiB disk whose boot sector writes text (bytes or str) to the serial port COM1 (0x3f8),
    then halts for good: a guest whose console says exactly what a test wants, then hangs.
    Returns path as a str."""
    if not isinstance(text, bytes):
        text = text.encode("utf-8")
    loop = (b"\xba\xf8\x03"   # mov dx, 0x3f8
            b"\xac"           # next: lodsb
            b"\x84\xc0"       # test al, al
            b"\x74\x03"       # jz halt
            b"\xee"           # out dx, al
            b"\xeb\xf8"       # jmp next
            b"\xf4"           # halt: hlt (interrupts are off: for good)
            b"\xeb\xfd")      # jmp halt
    head = b"\xfa\xfc\x31\xc0\x8e\xd8"  # cli; cld; xor ax, ax; mov ds, ax
    text_at = 0x7C00 + len(head) + 3 + len(loop)  # the text follows the code
    code = head + b"\xbe" + struct.pack("<H", text_at) + loop  # mov si, text_at
    if len(code) + len(text) + 1 > 510:
        raise ValueError("%d bytes of text do not fit in a boot sector" % len(text))
    sector = bytearray(512)
    sector[:len(code) + len(text)] = code + text  # then a NUL: the end of the text
    sector[510:] = b"\x55\xaa"
    with open(str(path), "wb") as f:
        f.write(bytes(sector))
        f.truncate(1 << 20)
    return str(path)


# -- fixtures shared by the image tests ---------------------------------------------------------

HELLO_C = b"""#include <stdio.h>
int main(int argc, char **argv) { printf("hello from %s\\n", argv[0]); return 0; }
"""


@pytest.fixture(scope="session")
def c_programs(tmp_path_factory):
    """A small C program compiled here, statically and dynamically linked."""
    if not shutil.which("gcc"):
        pytest.fail("gcc is needed (bindep.txt installs it)")
    d = tmp_path_factory.mktemp("programs")
    (d / "hello.c").write_bytes(HELLO_C)
    subprocess.run(["gcc", "-O1", "-o", str(d / "hello-dynamic"), str(d / "hello.c")], check=True)
    subprocess.run(["gcc", "-O1", "-static", "-o", str(d / "hello-static"), str(d / "hello.c")],
                   check=True)
    return {"dynamic": str(d / "hello-dynamic"), "static": str(d / "hello-static")}
