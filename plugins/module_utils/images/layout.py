# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bytes of a bootable Nanos disk image (BIOS boot), as ops and Nanos mkfs lay it out:

    boot.img (stage1 MBR + stage2) | 4 KiB crash-log area | bootfs, 12 MiB | rootfs, to the end

with MBR entries 0 (bootfs) and 1 (rootfs), both type 0x83 and flagged 0x80. The kernel finds
its partitions by position, takes the rootfs to the end of the disk, and writes its crash log
into the 4 KiB before the bootfs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import SECTOR

BOOTFS_BYTES = 12 * 1024 * 1024
CRASH_LOG_BYTES = 4096
PART_TABLE = 446
PART_ENTRY = 16
TYPE_LINUX = 0x83
TYPE_EFI = 0xEF
STAGE2_RECORD = 426  # stage1 ends with (u64 load base, u64 stage2 length, u32 type 12)
STAGE2_RECORD_TYPE = 12
# Real-mode stage1 loads stage2 below 1 MiB; a larger file is not a boot.img (and is not
# read whole).
MAX_BOOT_BYTES = 1024 * 1024


def read_boot_region(boot_path, label=None):
    """boot.img's bytes, checked: stage1 must describe a stage2 that the file really holds.
    label: what to call the file in messages (the path by default)."""
    label = label or boot_path
    try:
        with open(boot_path, "rb") as f:
            data = f.read(MAX_BOOT_BYTES + 1)
    except OSError as e:
        raise OpsError("cannot read boot image %s: %s" % (label, e.strerror))
    if len(data) < SECTOR or data[510:512] != b"\x55\xaa":
        raise OpsError("%s is not a Nanos boot.img (no boot sector signature)" % label)
    dummy, length, typ = struct.unpack_from("<QQI", data, STAGE2_RECORD)
    if typ != STAGE2_RECORD_TYPE:
        raise OpsError("%s is not a Nanos boot.img (its boot sector describes no stage2)"
                       % label)
    if len(data) > MAX_BOOT_BYTES:
        raise OpsError("%s is not a Nanos boot.img: it is larger than %d bytes (stage1 loads "
                       "stage2 below 1 MiB)" % (label, MAX_BOOT_BYTES))
    if SECTOR + length != len(data):
        raise OpsError("%s is damaged: its boot sector says %d bytes of stage2, the file has %d"
                       % (label, length, len(data) - SECTOR))
    return data


def _chs(lba):
    """CHS bytes as Nanos writes them (63 sectors, 255 heads; clamped); the kernel ignores them."""
    cyl, rem = divmod(lba, 255 * 63)
    head, sec = divmod(rem, 63)
    if cyl > 1023:
        return bytes((0xFE, 0x3F, 0xFF))
    return bytes((head, ((cyl >> 8) << 6) | (sec + 1), cyl & 0xFF))


def partition_entry(lba, count, ptype=TYPE_LINUX):
    return (b"\x80" + _chs(lba) + bytes((ptype,)) + _chs(lba + count - 1)
            + struct.pack("<II", lba, count))


class Layout:
    """Byte offsets of the parts of an image whose boot region is `boot_len` bytes."""

    def __init__(self, boot_len, total):
        self.bootfs = -(-(boot_len + CRASH_LOG_BYTES) // SECTOR) * SECTOR
        self.rootfs = self.bootfs + BOOTFS_BYTES
        self.total = total
        if total <= self.rootfs:
            raise OpsError("an image of %d bytes has no room for a root filesystem" % total)

    @property
    def rootfs_size(self):
        return self.total - self.rootfs

    def mbr(self, boot_sector):
        """boot.img's first sector with the partition table filled in."""
        table = (partition_entry(self.bootfs // SECTOR, BOOTFS_BYTES // SECTOR)
                 + partition_entry(self.rootfs // SECTOR, self.rootfs_size // SECTOR)
                 + bytes(2 * PART_ENTRY))
        return boot_sector[:PART_TABLE] + table + b"\x55\xaa"


def read_partitions(path):
    """[(type, byte offset, byte length)] of the used MBR entries of an image."""
    try:
        with open(path, "rb") as f:
            mbr = f.read(SECTOR)
    except OSError as e:
        raise OpsError("cannot read image %s: %s" % (path, e.strerror))
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        raise OpsError("%s is not a disk image (no partition table)" % path)
    parts = []
    for i in range(4):
        entry = mbr[PART_TABLE + i * PART_ENTRY:PART_TABLE + (i + 1) * PART_ENTRY]
        ptype = entry[4]
        lba, count = struct.unpack_from("<II", entry, 8)
        if ptype:
            parts.append((ptype, lba * SECTOR, count * SECTOR))
    return parts


def filesystem_offsets(path):
    """(bootfs offset, rootfs offset) as the kernel picks them: by position, one further along
    when the first partition is an EFI system partition."""
    parts = read_partitions(path)
    first = 1 if parts and parts[0][0] == TYPE_EFI else 0
    if len(parts) < first + 2:
        raise OpsError("%s has no Nanos boot and root partitions" % path)
    return parts[first][1], parts[first + 1][1]


def write_boot_region(fd, boot_data, layout):
    """boot.img at byte 0 with the partition table; the crash-log area stays zero (sparse)."""
    os.pwrite(fd, boot_data[SECTOR:], SECTOR)
    os.pwrite(fd, layout.mbr(boot_data[:SECTOR]), 0)
