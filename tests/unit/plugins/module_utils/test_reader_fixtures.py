# -*- coding: utf-8 -*-
"""Our reader on filesystems other writers made: Nanos mkfs, ops' layout, and a guest's log."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import lzma
import os
import shutil

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.tfs import writer as tfs_writer
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    END_OF_LOG, END_OF_SEGMENT, SECTOR, TUPLE_AVAILABLE, Decoder, Encoder, TFSFormatError,
    encode_varint,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.tfs_helpers import (
    build, host_tree, volume_tree,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def make_small_tree(root):
    os.makedirs(os.path.join(root, "nested", "inner"))
    os.makedirs(os.path.join(root, "emptydir"))
    open(os.path.join(root, "empty.txt"), "wb").close()
    with open(os.path.join(root, "hi.txt"), "wb") as f:
        f.write(b"hi\n")
    with open(os.path.join(root, "nested", "inner", "deep.txt"), "wb") as f:
        f.write(b"deep inside\n")
    with open(os.path.join(root, u"h\u00e9llo.txt"), "wb") as f:
        f.write(u"h\u00e9llo\n".encode("utf-8"))
    with open(os.path.join(root, "pattern.bin"), "wb") as f:
        f.write(bytes(i * 7 % 251 for i in range(70000)))
    os.symlink("hi.txt", os.path.join(root, "link"))


def make_many_tree(root):
    for d in range(50):
        sub = os.path.join(root, "d%02d" % d)
        os.makedirs(sub)
        for i in range(500):
            with open(os.path.join(sub, "f%03d" % i), "wb") as f:
                if i % 50 == 0:
                    f.write(b"%d/%d\n" % (d, i))


def unpack(name, tmp_path):
    out = str(tmp_path / name.replace(".xz", ""))
    with lzma.open(os.path.join(FIXTURES, name)) as src, open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return out


@pytest.mark.parametrize("fixture, maker, label, uuid, extensions", [
    ("mkfs-small.img.xz", make_small_tree, "mkfs-small", "471fc369-6074-229e-6c16-43618568e496", 2),
    ("mkfs-many.img.xz", make_many_tree, "mkfs-many", "f0f296a7-951e-22ba-84c0-95154fe99acc", 3),
])
def test_reads_nanos_mkfs_volumes(tmp_path, fixture, maker, label, uuid, extensions):
    img = unpack(fixture, tmp_path)
    src = str(tmp_path / "src")
    maker(src)
    with TFS(img) as tfs:
        assert tfs.label == label
        assert tfs.uuid == uuid
        assert len(tfs.log_extensions) == extensions
    assert volume_tree(img) == host_tree(src)


def test_reads_ops_layout(tmp_path):
    """ops writes numbers as strings, packs data from sector 1025, and adds arguments and
    environment to a volume's root."""
    img = str(tmp_path / "ops.raw")
    files = {b"a.txt": b"alpha\n", b"b.bin": os.urandom(1500)}
    root = {b"children": {}, b"arguments": [], b"environment": {b"USER": b"root", b"PWD": b"/"}}
    sector = 1025
    with open(img, "wb") as f:
        f.truncate(4 * 1024 * 1024)
        for name, data in files.items():
            n = -(-len(data) // SECTOR)
            root[b"children"][name] = {b"filelength": len(data), b"extents": {
                b"0": {b"length": n, b"offset": sector, b"allocated": n}}}
            f.seek(sector * SECTOR)
            f.write(data)
            sector += n
        log = tfs_writer.layout_log(tfs_writer.encode_root(root, 5, numbers_as_strings=True), 5,
                                    sector)
        for start, data in log.extensions:
            f.seek(start * SECTOR)
            f.write(data)
        f.seek(0)
        f.write(tfs_writer.initial_extension(5, bytes(16), "opsvol"))
    with TFS(img) as tfs:
        assert tfs.label == "opsvol"
        assert tfs.manifest()[b"environment"] == {b"USER": b"root", b"PWD": b"/"}
        for name, data in files.items():
            assert tfs.read_file(b"/" + name) == data


def test_reads_a_log_a_guest_appended_to(tmp_path):
    """The kernel turns END_OF_LOG into END_OF_SEGMENT and appends records that update earlier
    tuples by reference; an extent may be uninitialised (reads as zeros)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "keep.txt").write_bytes(b"kept\n")
    (src / "cut.txt").write_bytes(b"0123456789")
    img = str(tmp_path / "vol.raw")
    plan, log = build(str(src), img)
    # Replay the writer's encoding so that our records continue its dictionary, as the
    # kernel's do, and find the indices of the tuples to update.
    enc = Encoder(5)
    enc.value(plan.root)
    dec = Decoder(5)
    decoded = dec.record(bytes(enc.out))
    cut_index = next(i for i, v in enumerate(dec.table) if v is decoded[b"children"][b"cut.txt"])
    children_index = next(i for i, v in enumerate(dec.table) if v is decoded[b"children"])
    # record 1: a new file "new.txt" of 700 bytes whose second sector is uninitialised
    new_sector = plan.data_end + 100
    enc.out = bytearray()
    enc.out += enc.header.encode(False, 1, 1) + encode_varint(children_index)
    enc.symbol("new.txt")
    enc.value({"filelength": 700, "extents": {"0": {"offset": new_sector, "length": 1,
                                                    "allocated": 1},
                                              "1": {"offset": new_sector + 1, "length": 1,
                                                    "allocated": 1, "uninited": None}}})
    rec1 = bytes(enc.out)
    # record 2: cut.txt truncated to 4 bytes
    enc.out = bytearray()
    enc.out += enc.header.encode(False, 1, 1) + encode_varint(cut_index)
    enc.symbol("filelength")
    enc.value(4)
    rec2 = bytes(enc.out)
    sector, data = log.extensions[-1]
    end = len(data) - 1
    assert data[end] == END_OF_LOG
    appended = bytes((END_OF_SEGMENT,))
    for rec in (rec1, rec2):
        appended += bytes((TUPLE_AVAILABLE,)) + encode_varint(len(rec)) + encode_varint(len(rec)) + rec
    appended += bytes((END_OF_LOG,))
    with open(img, "r+b") as f:
        f.seek(sector * SECTOR + end)
        f.write(appended)
        f.seek(new_sector * SECTOR)
        f.write(b"N" * 512 + b"garbage that must read as zeros")
    with TFS(img) as tfs:
        assert tfs.read_file("/keep.txt") == b"kept\n"
        assert tfs.read_file("/cut.txt") == b"0123"
        assert tfs.read_file("/new.txt") == b"N" * 512 + bytes(188)


def test_not_a_volume(tmp_path):
    junk = tmp_path / "junk.raw"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(TFSFormatError, match="magic"):
        TFS(str(junk))
    src = tmp_path / "src"
    src.mkdir()
    img = str(tmp_path / "cut.raw")
    build(str(src), img)
    with open(img, "r+b") as f:  # a damaged first log extension
        f.seek(SECTOR)
        f.write(b"XXXXXX")
    with pytest.raises(TFSFormatError, match="sector 1"):
        TFS(img)


def test_damaged_sector_zero_is_a_format_error(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    img = str(tmp_path / "v.raw")
    build(str(src), img)
    with open(img, "r+b") as f:  # a label that runs to the last byte of the sector
        f.seek(24)
        f.write(b"L" * (SECTOR - 25) + b"\0")
    with pytest.raises(TFSFormatError):
        TFS(img)
