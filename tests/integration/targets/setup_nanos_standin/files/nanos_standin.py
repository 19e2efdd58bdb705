#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""A stand-in Nanos release for tests: kernel.img, boot.img and klibs/ that are laid out like the
real ones (boot.img's boot sector describes its stage2, as Nanos' stage1 does) but boot nothing.

  python nanos_standin.py DEST_FOLDER [VERSION]    -> DEST_FOLDER/VERSION/{kernel.img,boot.img,klibs/}

Also imported by the unit tests (make_boot_img, make_release).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct
import sys


def make_boot_img(path, stage2_len=3 * 512):
    """A boot sector whose stage2 record (u64 base, u64 length, u32 type 12 at byte 426)
    describes the stage2 that follows."""
    sector = bytearray(512)
    sector[:4] = b"\xfa\xf4\xeb\xfd"  # cli; hlt; jmp back to the hlt: a guest that idles
    struct.pack_into("<QQI", sector, 426, 0x8000, stage2_len, 12)
    sector[510:512] = b"\x55\xaa"
    stage2 = bytes((i * 29 + 7) & 0xFF for i in range(stage2_len))
    with open(str(path), "wb") as f:
        f.write(bytes(sector) + stage2)
    return str(path)


def kernel_elf_header(size):
    """The ELF header and one PT_LOAD program header a kernel.img starts with: 64-bit
    little-endian x86_64, position independent (ET_DYN, as Nanos links its kernel), no loader."""
    ident = b"\x7fELF" + bytes((2, 1, 1, 0)) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0x200000, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x200000, 0x200000, size, size, 4096)
    return header + load


def make_release(folder, version="0.1.99", klibs=("tls", "ntp", "cloud_init")):
    """A release folder <folder>/<version> with kernel.img, boot.img and klibs/."""
    folder = os.path.join(str(folder), version)
    os.makedirs(os.path.join(folder, "klibs"))
    with open(os.path.join(folder, "kernel.img"), "wb") as f:
        f.write(kernel_elf_header(200000) + os.urandom(200000))
    make_boot_img(os.path.join(folder, "boot.img"))
    for k in klibs:
        with open(os.path.join(folder, "klibs", k), "wb") as f:
            f.write(b"klib " + k.encode() + os.urandom(3000))
    return folder


if __name__ == "__main__":
    print(make_release(sys.argv[1], *(sys.argv[2:3] or [])))
