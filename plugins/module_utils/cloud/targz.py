# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A sparse disk file streamed as the .tar.gz Google Compute Engine imports (images.insert with
rawDisk.source): one member, disk.raw, in GNU tar's old GNU format with a sparse map, the archive
`tar --format=oldgnu -Sczf image.tar.gz disk.raw` writes.

The data regions are found with SEEK_DATA/SEEK_HOLE, rounded out to 512-byte sectors and described
in the member's sparse map; only they are read and compressed, so the holes of a 10 GiB disk cost
nothing. The map follows GNU tar 1.34: the regions in order, then a zero-length entry at the file's
size; four entries in the header, 21 in each extension block after it; numbers that do not fit 11
octal digits in GNU's base-256 form. The tar stream ends with two zero blocks and is padded to a
10240-byte record, then framed as gzip with mtime 0, so the same file always gives the same bytes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct
import zlib

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.blocks import data_ranges
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

NAME = b"disk.raw"
BLOCK = 512
RECORD = 20 * BLOCK  # GNU tar's default blocking factor
HEADER_ENTRIES = 4  # sparse entries in the old GNU header, from offset 386
EXTENSION_ENTRIES = 21  # sparse entries in each extension block
READ_SIZE = 1024 * 1024  # the most read from the file at once


def sparse_map(fd, size):
    """[(offset, numbytes)] of fd's data regions below size, rounded out to 512-byte sectors
    (never past size) and merged where they touch; holes are found with lseek, never read."""
    regions = []
    for start, end in data_ranges(fd, size):
        start -= start % BLOCK
        end = min(size, -(-end // BLOCK) * BLOCK)
        if regions and start <= regions[-1][1]:
            if end > regions[-1][1]:
                regions[-1][1] = end
        elif end > start:
            regions.append([start, end])
    return [(start, end - start) for start, end in regions]


def tar_number(value, width):
    """A numeric header field as GNU tar writes it: width-1 octal digits and a NUL, or, for values
    that do not fit, base-256 (0x80, then the value big-endian in the remaining bytes)."""
    if value < 0:
        raise ValueError("negative tar number %d" % value)
    if value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    if value < 256 ** (width - 1):
        return b"\x80" + value.to_bytes(width - 1, "big")
    raise ValueError("%d does not fit a %d-byte tar field" % (value, width))


def _entries(entries):
    return b"".join(tar_number(offset, 12) + tar_number(numbytes, 12) for offset, numbytes in entries)


def tar_header_blocks(regions, size, mtime=0):
    """The member's header and its sparse extension blocks, as one bytes (a multiple of 512).

    regions: sparse_map's list; the map written is it plus GNU tar's closing (size, 0) entry."""
    entries = list(regions) + [(size, 0)]
    head, rest = entries[:HEADER_ENTRIES], entries[HEADER_ENTRIES:]
    stored = sum(numbytes for _offset, numbytes in regions)
    header = b"".join([
        NAME.ljust(100, b"\0"),
        b"0000644\0",  # mode
        b"0000000\0",  # uid
        b"0000000\0",  # gid
        tar_number(stored, 12),  # size: the bytes stored in the archive
        tar_number(mtime, 12),
        b" " * 8,  # chksum, counted as spaces
        b"S",  # typeflag: GNU sparse
        bytes(100),  # linkname
        b"ustar  \0",  # old GNU magic and version
        b"root".ljust(32, b"\0"),  # uname
        b"root".ljust(32, b"\0"),  # gname
        bytes(8 + 8 + 12 + 12 + 12 + 4 + 1),  # devmajor devminor atime ctime offset longnames unused
        _entries(head).ljust(HEADER_ENTRIES * 24, b"\0"),
        b"\1" if rest else b"\0",  # isextended
        tar_number(size, 12),  # realsize
    ]).ljust(BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(header)
    blocks = [header[:148] + checksum + header[156:]]
    while rest:
        part, rest = rest[:EXTENSION_ENTRIES], rest[EXTENSION_ENTRIES:]
        blocks.append(_entries(part).ljust(EXTENSION_ENTRIES * 24, b"\0")
                      + (b"\1" if rest else b"\0") + bytes(7))
    return b"".join(blocks)


class _GzipChunks:
    """A gzip member written in pieces and handed back in chunks of exactly `chunk` bytes."""

    def __init__(self, chunk, level):
        self._chunk = chunk
        self._deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._crc = 0
        self._size = 0
        xfl = b"\2" if level == 9 else b"\4" if level == 1 else b"\0"
        # magic, deflate, no flags, mtime 0, extra flags, OS unix
        self._out = bytearray(b"\x1f\x8b\x08\x00" + bytes(4) + xfl + b"\x03")

    def write(self, data):
        self._crc = zlib.crc32(data, self._crc)
        self._size += len(data)
        self._out += self._deflate.compress(data)
        return self._full()

    def close(self):
        self._out += self._deflate.flush()
        self._out += struct.pack("<II", self._crc & 0xFFFFFFFF, self._size & 0xFFFFFFFF)
        yield from self._full()
        if self._out:
            yield bytes(self._out)
            self._out = bytearray()

    def _full(self):
        while len(self._out) >= self._chunk:
            piece = bytes(self._out[:self._chunk])
            del self._out[:self._chunk]
            yield piece


def targz_chunks(fd, size, chunk=8 * 1024 * 1024, mtime=0, level=6):
    """Yield the .tar.gz of the first size bytes of fd (a file descriptor) as bytes, in chunks of
    exactly chunk bytes but the last (GCS resumable uploads want multiples of 256 KiB).

    Only the data regions are read (with os.pread, at most 1 MiB at a time), so time and CPU follow
    the data, not the size; at most about two chunks are held. The output is the same for the same
    file content and map: the member is owned by root (0/0), mode 0644, mtime `mtime`; the gzip
    header carries mtime 0. Raises OpsError if the file ends before a region it had mapped."""
    if size < 0:
        raise ValueError("negative size %d" % size)
    if chunk < 1:
        raise ValueError("chunk must be at least one byte, not %d" % chunk)
    if not 0 <= level <= 9:
        raise ValueError("gzip level must be 0 to 9, not %d" % level)
    regions = sparse_map(fd, size)
    gz = _GzipChunks(chunk, level)
    headers = tar_header_blocks(regions, size, mtime)
    yield from gz.write(headers)
    stored = 0
    read_size = min(chunk, READ_SIZE)
    for offset, numbytes in regions:
        pos, end = offset, offset + numbytes
        while pos < end:
            data = os.pread(fd, min(read_size, end - pos), pos)
            if not data:
                raise OpsError("the disk file ended at %d bytes while being archived, before the "
                               "data mapped up to %d" % (pos, end), offset=pos, size=size)
            pos += len(data)
            yield from gz.write(data)
        stored += numbytes
    tar_length = len(headers) + -(-stored // BLOCK) * BLOCK + 2 * BLOCK
    tail = bytes(-stored % BLOCK + 2 * BLOCK + -tar_length % RECORD)
    yield from gz.write(tail)
    yield from gz.close()
