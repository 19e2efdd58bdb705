# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fixed-VHD footer Azure wants after a disk's data: 512 bytes, written by the collection
(no qemu-img), as the Virtual Hard Disk Image Format Specification lays it out. Azure takes a
fixed VHD whose data part is a whole number of MiB."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import struct
import time

FOOTER = 512
MIB = 1024 * 1024
COOKIE = b"conectix"
FIXED = 2
_EPOCH = calendar.timegm((2000, 1, 1, 0, 0, 0, 0, 0, 0))  # VHD time is seconds since 2000
_LAYOUT = ">8sIIQI4sI4sQQHBBII16sB427s"


def geometry(size):
    """(cylinders, heads, sectors per track) of the spec's CHS algorithm."""
    total = min(size // 512, 65535 * 16 * 255)
    if total >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = total // spt
    else:
        spt = 17
        cth = total // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = total // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = total // spt
    return cth // heads, heads, spt


def checksum(footer):
    """One's complement of the byte sum, with the checksum field (64-67) counted as zero."""
    return ~(sum(footer[:64]) + sum(footer[68:])) & 0xFFFFFFFF


def footer(size, unique_id, timestamp=None):
    """The footer of a fixed VHD whose data part is `size` bytes; unique_id: 16 bytes."""
    if size % MIB:
        raise ValueError("a VHD's data part for Azure is whole MiB, not %d bytes" % size)
    when = int(time.time() if timestamp is None else timestamp) - _EPOCH
    cyl, heads, spt = geometry(size)
    raw = struct.pack(_LAYOUT, COOKIE, 2, 0x00010000, 0xFFFFFFFFFFFFFFFF, when & 0xFFFFFFFF,
                      b"uops", 0x00010000, b"Wi2k", size, size, cyl, heads, spt, FIXED, 0,
                      bytes(unique_id), 0, bytes(427))
    return raw[:64] + struct.pack(">I", checksum(raw)) + raw[68:]


def parse(raw):
    """The footer's fields; ValueError when it is not a valid fixed-VHD footer."""
    if len(raw) != FOOTER:
        raise ValueError("a VHD footer is 512 bytes, not %d" % len(raw))
    f = struct.unpack(_LAYOUT, raw)
    out = {"cookie": f[0], "features": f[1], "version": f[2], "data_offset": f[3],
           "timestamp": f[4] + _EPOCH, "creator": f[5], "original_size": f[8],
           "current_size": f[9], "geometry": (f[10], f[11], f[12]), "disk_type": f[13],
           "checksum": f[14], "unique_id": f[15]}
    if out["cookie"] != COOKIE:
        raise ValueError("no VHD footer (cookie %r)" % out["cookie"])
    if out["disk_type"] != FIXED:
        raise ValueError("VHD disk type %d, not fixed (2)" % out["disk_type"])
    if out["checksum"] != checksum(raw):
        raise ValueError("VHD footer checksum %08x, computed %08x"
                         % (out["checksum"], checksum(raw)))
    return out
