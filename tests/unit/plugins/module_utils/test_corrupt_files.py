# -*- coding: utf-8 -*-
"""Damaged volumes and images, read by our own reader: real files built by the writer, then cut,
flipped and relinked in systematic ways and at random (hypothesis).

Property: the reader either reads the file (a flip can land in file data or padding) or raises
TFSFormatError (images: OpsError too) whose message names the file; never IndexError,
struct.error, KeyError, UnicodeDecodeError, MemoryError, and never longer than a time bound.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal
import struct

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images import elf
from ansible_collections.unikernel.ops.plugins.module_utils.images import layout as image_layout
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages, read_image
from ansible_collections.unikernel.ops.plugins.module_utils.tfs import writer as tfs_writer
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    END_OF_LOG, LOG_EXTENSION_LINK, MAGIC, SECTOR, TUPLE_AVAILABLE, TUPLE_EXTENDED, TYPE_BUFFER,
    TYPE_TUPLE, TYPE_VECTOR, Encoder, TFSFormatError, _Header, decode_varint, encode_varint,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import (
    TFS, parse_initial_extension, read_identity,
)
from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.test_reader_fixtures import (
    make_small_tree,
)
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.tfs_helpers import build

SECONDS = 20  # a damaged file is refused (or read) well within this; a loop would not be


class TookTooLong(Exception):
    pass


def _alarm(signum, frame):
    raise TookTooLong("the reader did not finish within %d s" % SECONDS)


def bounded(call, *args):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS)
    try:
        return call(*args)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def read_volume(path, offset=0):
    """Everything ops_volume_info reads (contents with checksums) and more: every file's data,
    every entry looked up again, the manifest."""
    read_identity(path, offset)
    with TFS(path, offset) as tfs:
        entries = list(tfs.walk())
        tfs.used_bytes()
        tfs.manifest()
        for e in entries:
            tfs.lookup(e.path)
            e.as_dict()
            if e.kind == "file":
                for dummy in tfs.iter_file(e):
                    pass
    return entries


def assert_clean(call, path, *args, **kw):
    """call(path, *args) reads or refuses with a message naming path, in bounded time."""
    errors = kw.get("errors", (TFSFormatError,))
    try:
        bounded(call, path, *args)
    except errors as e:
        assert path in str(e), "the message does not name the file: %s" % e
        return str(e)
    return None


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    """A real volume (the small tree of the fixture tests: files, a hole-free 70 KB file,
    nested directories, a symlink, a UTF-8 name) and its bytes."""
    base = tmp_path_factory.mktemp("corrupt")
    src = str(base / "src")
    make_small_tree(src)
    path = str(base / "vol.raw")
    build(src, path, label="corrupt", extra=256 * 1024)
    with open(path, "rb") as f:
        data = f.read()
    copy = str(base / "patched.raw")
    with open(copy, "wb") as f:
        f.write(data)
    return {"path": path, "data": data, "src": src, "copy": copy}


def damaged_copy(tmp_path, data, edits=(), size=None, name="damaged.raw"):
    """A copy of data with (offset, bytes) written over it, cut to size if given."""
    path = str(tmp_path / name)
    buf = bytearray(data)
    for offset, patch in edits:
        if offset + len(patch) > len(buf):
            buf.extend(bytes(offset + len(patch) - len(buf)))
        buf[offset:offset + len(patch)] = patch
    with open(path, "wb") as f:
        f.write(bytes(buf[:size] if size is not None else buf))
    return path


class Patched:
    """The file at path with (offset, bytes) written over it for a while, then put back: many
    damaged versions of one large file without copying it each time."""

    def __init__(self, path, data, edits):
        self.path, self.data, self.edits = path, data, edits

    def __enter__(self):
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for offset, patch in self.edits:
                os.pwrite(fd, patch, offset)
        finally:
            os.close(fd)
        return self.path

    def __exit__(self, *exc):
        fd = os.open(self.path, os.O_WRONLY)
        try:
            for offset, patch in reversed(self.edits):
                os.pwrite(fd, self.data[offset:offset + len(patch)], offset)
        finally:
            os.close(fd)


def log_start(data):
    """(first log extension's sector, its length, byte where sector 0's link frame is)."""
    head = data[:SECTOR]
    dummy, dummy2, label, start, length, dummy3 = parse_initial_extension(head)
    link_at = head.index(b"\0", 6 + 2 + 16) + 1
    assert head[link_at] == LOG_EXTENSION_LINK and label == "corrupt"
    return start, length, link_at


def frames(data, sector):
    """[(byte offset, frame)] of one log extension, up to its END_OF_LOG."""
    base = sector * SECTOR
    buf = data[base:base + 1024 * SECTOR]
    assert buf[:6] == MAGIC
    pos = decode_varint(buf, decode_varint(buf, 6)[1])[1]
    out = []
    while True:
        frame = buf[pos]
        out.append((base + pos, frame))
        pos += 1
        if frame == END_OF_LOG:
            return out
        if frame == TUPLE_AVAILABLE:
            pos = decode_varint(buf, pos)[1]
            seglen, pos = decode_varint(buf, pos)
            pos += seglen
        elif frame == TUPLE_EXTENDED:
            seglen, pos = decode_varint(buf, pos)
            pos += seglen
        elif frame == LOG_EXTENSION_LINK:
            pos = decode_varint(buf, decode_varint(buf, pos)[1])[1]


def test_the_volume_reads_whole(volume):
    assert len(read_volume(volume["path"])) == 9


# -- cut ------------------------------------------------------------------------------------

def test_truncated_anywhere_is_refused_naming_the_file(volume, tmp_path):
    start, length, dummy = log_start(volume["data"])
    log_end = (start + length) * SECTOR
    cuts = [0, 1, 5, 6, 7, 20, 100, 511, 512, 513, start * SECTOR + 3, start * SECTOR + 200,
            log_end - 1, log_end, log_end + 100]
    for cut in cuts:
        path = damaged_copy(tmp_path, volume["data"], size=cut)
        msg = assert_clean(read_volume, path)
        assert msg is not None, "a volume cut at byte %d read as whole" % cut
    # cut in its free space only: nothing it holds is missing
    path = damaged_copy(tmp_path, volume["data"], size=len(volume["data"]) - 1)
    assert assert_clean(read_volume, path) is None


# -- flips ----------------------------------------------------------------------------------

def test_every_byte_of_the_header_flipped(volume, tmp_path):
    for offset in range(SECTOR):
        path = damaged_copy(tmp_path, volume["data"], [(offset, bytes((volume["data"][offset] ^ 0xFF,)))])
        assert_clean(read_volume, path)


def test_every_byte_of_the_log_record_flipped(volume, tmp_path):
    start, dummy, dummy2 = log_start(volume["data"])
    end = frames(volume["data"], start)[-1][0] + 1
    for offset in range(start * SECTOR, end):
        for xor in (0x01, 0x80, 0xFF):
            path = damaged_copy(tmp_path, volume["data"], [(offset, bytes((volume["data"][offset] ^ xor,)))])
            assert_clean(read_volume, path)


def test_zeroed_magic(volume, tmp_path):
    start, dummy, dummy2 = log_start(volume["data"])
    path = damaged_copy(tmp_path, volume["data"], [(0, bytes(6))])
    assert assert_clean(read_volume, path) == "%s: no TFS found (missing NVMTFS magic)" % path
    path = damaged_copy(tmp_path, volume["data"], [(start * SECTOR, bytes(6))])
    assert assert_clean(read_volume, path) == "%s: log extension at sector %d is missing or damaged" % (path, start)


# -- links ----------------------------------------------------------------------------------

def _link(start, length):
    return bytes((LOG_EXTENSION_LINK,)) + encode_varint(start) + encode_varint(length)


@pytest.mark.parametrize("start, length, msg", [
    (10 ** 6, 1024, "log extension at sector 1000000 (1024 sectors) lies beyond the end of the disk"),
    (1, 1 << 40, "log extension at sector 1 has a length of 1099511627776 sectors (at most 65536)"),
    (1, 0, "log extension at sector 1 has a length of 0 sectors (at most 65536)"),
    (0, 1024, "the log extension at sector 0 links back to itself or an earlier one"),
    ((1 << 64) - 1, 1024, "lies beyond the end of the disk"),
])
def test_initial_link_elsewhere(volume, tmp_path, start, length, msg):
    dummy, dummy2, link_at = log_start(volume["data"])
    path = damaged_copy(tmp_path, volume["data"], [(link_at, _link(start, length) + bytes(24))])
    got = assert_clean(read_volume, path)
    assert got.startswith(path + ": ") and msg in got, got


@pytest.mark.parametrize("target, msg", [
    ("self", "the log extension at sector {start} links back to itself or an earlier one"),
    ("past-end", "log extension at sector 99999999 (1024 sectors) lies beyond the end of the disk"),
    ("huge", "log extension at sector {next} has a length of 18446744073709551615 sectors"),
])
def test_log_extension_links_in_a_loop_or_away(volume, tmp_path, target, msg):
    start, dummy, dummy2 = log_start(volume["data"])
    end_at = frames(volume["data"], start)[-1][0]
    link = {"self": _link(start, 1024), "past-end": _link(99999999, 1024),
            "huge": _link(start + 1024, (1 << 64) - 1)}[target]
    path = damaged_copy(tmp_path, volume["data"], [(end_at, link)])
    got = assert_clean(read_volume, path)
    assert got.startswith("%s: %s" % (path, msg.format(start=start, next=start + 1024))), got


def test_a_varint_that_never_ends(volume, tmp_path):
    dummy, dummy2, link_at = log_start(volume["data"])
    path = damaged_copy(tmp_path, volume["data"], [(link_at + 1, b"\xff" * 200)])
    assert assert_clean(read_volume, path) == "%s: a number longer than 64 bits" % path


@pytest.mark.parametrize("total, seglen", [(1 << 62, 10), (10, 1 << 62), (1 << 62, 1 << 62)])
def test_huge_record_lengths(volume, tmp_path, total, seglen):
    start, dummy, dummy2 = log_start(volume["data"])
    at = frames(volume["data"], start)[0][0]
    patch = bytes((TUPLE_AVAILABLE,)) + encode_varint(total) + encode_varint(seglen)
    path = damaged_copy(tmp_path, volume["data"], [(at, patch)])
    assert assert_clean(read_volume, path) is not None


# -- records a damaged log can hold ----------------------------------------------------------

H = _Header(5)


def sym(name):
    return H.encode(True, TYPE_BUFFER, len(name)) + name


def tuple_ref(index, pairs):
    return H.encode(False, TYPE_TUPLE, pairs) + encode_varint(index)


def raw_volume(tmp_path, record, name="raw.raw"):
    """A volume whose log holds one record, as given."""
    path = str(tmp_path / name)
    log = tfs_writer.layout_log(record, 5, 2048)
    with open(path, "wb") as f:
        f.truncate(4 * 1024 * 1024)
        for start, data in log.extensions:
            f.seek(start * SECTOR)
            f.write(data)
        f.seek(0)
        f.write(tfs_writer.initial_extension(5, bytes(16), "raw"))
    return path


def encoded(value):
    enc = Encoder(5)
    enc.value(value)
    return bytes(enc.out)


# Dictionary indices: each immediate tuple, vector and symbol takes the next one, from 1.
RECORDS = {
    # root(1) {children(2): root}: the root is its own child
    "root-is-its-child": (H.encode(True, TYPE_TUPLE, 1) + sym(b"children") + tuple_ref(1, 0),
                          "directory /children is also /: the tree loops or shares a directory"),
    # root(1) {children(2): C(3) {a(4): A(5) {children: C}}}: a directory inside itself
    "directory-in-itself": (H.encode(True, TYPE_TUPLE, 1) + sym(b"children") + H.encode(True, TYPE_TUPLE, 1)
                            + sym(b"a") + H.encode(True, TYPE_TUPLE, 1) + H.encode(False, TYPE_BUFFER, 2)
                            + tuple_ref(3, 0),
                            "directory /a/a is also /a: the tree loops or shares a directory"),
    # root(1) {children(2): C(3) {a(4): D(5) {children(ref 2): E(6) {}}, b(7): D}}
    "shared-directory": (H.encode(True, TYPE_TUPLE, 1) + sym(b"children") + H.encode(True, TYPE_TUPLE, 2)
                         + sym(b"a") + H.encode(True, TYPE_TUPLE, 1) + H.encode(False, TYPE_BUFFER, 2)
                         + H.encode(True, TYPE_TUPLE, 0) + sym(b"b") + tuple_ref(5, 0),
                         "directory /b is also /a: the tree loops or shares a directory"),
    # root(1) {children(2): {}(3), program(4): root}: a manifest value that holds itself
    "manifest-holds-itself": (H.encode(True, TYPE_TUPLE, 2) + sym(b"children") + H.encode(True, TYPE_TUPLE, 0)
                              + sym(b"program") + tuple_ref(1, 0),
                              "a tuple of the manifest holds itself"),
    # root {children(2): {a: vector [delete marker]}}
    "delete-in-a-vector": (H.encode(True, TYPE_TUPLE, 1) + sym(b"args") + H.encode(True, TYPE_VECTOR, 1)
                           + H.encode(True, TYPE_BUFFER, 0), "a delete marker inside a vector"),
    "children-not-a-tuple": (encoded({"children": "just a string"}),
                             "directory /: its children are not a tuple"),
    "extents-a-vector": (encoded({"children": {"f": {"filelength": 10, "extents": ["0"]}}}),
                         "file /f: its extents are not a tuple"),
    "negative-length": (encoded({"children": {"f": {"filelength": -5}}}), "file /f has a negative length"),
    "length-not-a-number": (encoded({"children": {"f": {"filelength": {"x": "1"}}}}),
                            "filelength of /f is not a number: {b'x': b'1'}"),
    "target-a-tuple": (encoded({"children": {"l": {"linktarget": {"x": "y"}}}}),
                       "symlink /l has a target that is not a string"),
    "extent-past-the-disk": (encoded({"children": {"f": {"filelength": 1024, "extents": {
        "0": {"offset": 10 ** 9, "length": 2, "allocated": 2}}}}}), "/f: extent beyond the end of the disk"),
    "extent-past-2**63": (encoded({"children": {"f": {"filelength": 1024, "extents": {
        "0": {"offset": 1 << 62, "length": 2, "allocated": 2}}}}}), "/f: extent beyond the end of the disk"),
    "extent-offset-missing": (encoded({"children": {"f": {"filelength": 1024, "extents": {
        "0": {"length": 2, "allocated": 2}}}}}), "extent offset of /f is not a number: None"),
    "negative-extent": (encoded({"children": {"f": {"filelength": 1024, "extents": {
        "0": {"offset": -3, "length": 2, "allocated": 2}}}}}), "file /f has a negative extent offset"),
    "root-not-a-tuple": (encoded(["children"]), "the log holds no root tuple"),
    "slash-in-a-name": (encoded({"children": {"a/b": {"filelength": 0}}}),
                        "directory / holds an entry named b'a/b', which no path can name"),
    "dot-dot-name": (encoded({"children": {"d": {"children": {"..": {"children": {}}}}}}),
                     "directory /d holds an entry named b'..', which no path can name"),
}


def test_parent_links_a_kernel_may_log_are_no_damage(tmp_path):
    """root(1) {children(2): C(3) {d(4): D(5) {children: {}(6), ..(7): root}}, ..: root}: the
    kernel's parent links (root's own is itself) are neither entries nor manifest values."""
    record = (H.encode(True, TYPE_TUPLE, 2) + sym(b"children") + H.encode(True, TYPE_TUPLE, 1) + sym(b"d")
              + H.encode(True, TYPE_TUPLE, 2) + H.encode(False, TYPE_BUFFER, 2) + H.encode(True, TYPE_TUPLE, 0)
              + sym(b"..") + tuple_ref(1, 0) + H.encode(False, TYPE_BUFFER, 7) + tuple_ref(1, 0))
    path = raw_volume(tmp_path, record)
    with TFS(path) as tfs:
        assert [e.as_dict() for e in tfs.walk()] == [{"path": "/d", "type": "directory"}]
        assert tfs.manifest() == {}


@pytest.mark.parametrize("case", sorted(RECORDS))
def test_damaged_records_are_named(tmp_path, case):
    record, msg = RECORDS[case]
    path = raw_volume(tmp_path, record)
    assert assert_clean(read_volume, path) == "%s: %s" % (path, msg)


# -- at random ------------------------------------------------------------------------------

FLIPS = st.lists(st.tuples(st.integers(0, 64 * 1024 - 1), st.integers(1, 255)), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(flips=FLIPS)
def test_random_flips_in_the_first_64k(volume, flips):
    data = volume["data"]
    with Patched(volume["copy"], data, [(o, bytes((data[o] ^ x,))) for o, x in flips]) as path:
        assert_clean(read_volume, path)


# -- images ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image(tmp_path_factory, c_programs):
    base = tmp_path_factory.mktemp("corrupt-image")
    ops = kernel_home(base / ".ops")
    out = LocalImages(ops).present(ImageSpec(name="app", program=c_programs["static"], args=["-v"]))
    path = out.volume["path"]
    with open(path, "rb") as f:
        data = f.read()
    boot_off, root_off = image_layout.filesystem_offsets(path)
    copy = str(base / "patched-image")
    with open(copy, "wb") as f:
        f.write(data)
    return {"path": path, "data": data, "bootfs": boot_off, "rootfs": root_off, "copy": copy}


def test_the_image_reads_whole(image):
    assert read_image(image["path"])["arguments"] == ["/hello-static", "-v"]
    read_volume(image["path"], image["rootfs"])


IMAGE_ERRORS = (TFSFormatError, OpsError)


@pytest.mark.parametrize("where", ["mbr", "partition-table", "bootfs", "rootfs", "rootfs-log"])
def test_image_cut_at_each_part(image, tmp_path, where):
    cut = {"mbr": 300, "partition-table": 470, "bootfs": image["bootfs"] + 100,
           "rootfs": image["rootfs"] + 100, "rootfs-log": image["rootfs"] + 3 * SECTOR}[where]
    path = damaged_copy(tmp_path, image["data"], size=cut, name="cut-image")
    assert assert_clean(read_image, path, errors=IMAGE_ERRORS) is not None


def test_image_partitions_pointing_away(image):
    for lba in (0, 1, 2 ** 32 - 1, image["rootfs"] // SECTOR + 1):
        entry = bytes(image["data"][446 + 16:446 + 24]) + lba.to_bytes(4, "little") + bytes(4)
        with Patched(image["copy"], image["data"], [(446 + 16, entry)]) as path:
            assert assert_clean(read_image, path, errors=IMAGE_ERRORS) is not None


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(flips=FLIPS, part=st.sampled_from(["start", "rootfs"]))
def test_image_random_flips(image, flips, part):
    base = 0 if part == "start" else image["rootfs"]
    data = image["data"]
    with Patched(image["copy"], data, [(base + o, bytes((data[base + o] ^ x,))) for o, x in flips]) as path:
        assert_clean(read_image, path, errors=IMAGE_ERRORS)
        try:
            bounded(read_volume, path, image["rootfs"])
        except TFSFormatError as e:
            assert path in str(e)


# -- programs (images' ELF reader) ------------------------------------------------------------

def _elf64(phoff=64, interp_size=16, phnum=1):
    header = (b"\x7fELF\x02\x01\x01\x00" + bytes(8)
              + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, phoff, 0, 0, 64, 56, phnum, 64, 0, 0))
    table = struct.pack("<IIQQQQQQ", 3, 4, 120, 0, 0, interp_size, interp_size, 1)
    return header + table + b"/lib64/ld-linux-x86-64.so.2\0"


@pytest.mark.parametrize("case, data", [
    ("elf-magic-only", b"\x7fELF"),
    ("header-cut", b"\x7fELF\x02\x01\x01" + bytes(20)),
    ("table-past-2**63", _elf64(phoff=(1 << 64) - 8)),
    ("table-past-the-end", _elf64(phoff=1 << 40)),
    ("interp-of-2**62-bytes", _elf64(interp_size=1 << 62)),
    ("table-cut", _elf64(phnum=40)),
])
def test_damaged_programs_are_named(tmp_path, case, data):
    path = tmp_path / "program"
    path.write_bytes(data)
    with pytest.raises(OpsError) as e:
        bounded(elf.inspect, str(path))
    assert e.value.msg == "program %s is a damaged ELF file" % path
