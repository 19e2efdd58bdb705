# -*- coding: utf-8 -*-
"""Byte-level vectors from the TFS spec, and the value codec in both versions."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    DELETED, Decoder, Encoder, TFSFormatError, _Header, as_int, decode_varint, encode_varint,
    format_uuid, parse_uuid,
)


@pytest.mark.parametrize("n, raw", [(0, "00"), (1, "01"), (121, "79"), (127, "7f"),
                                    (1024, "8800"), (3073, "9801"), (2 ** 32, "9080808000")])
def test_varint_vectors(n, raw):
    assert encode_varint(n).hex() == raw
    assert decode_varint(bytes.fromhex(raw), 0) == (n, len(raw) // 2)


def test_varint_truncated():
    with pytest.raises(TFSFormatError):
        decode_varint(b"\x88", 0)


def _encode(value, version=5):
    enc = Encoder(version)
    enc.value(value)
    return bytes(enc.out)


def test_spec_examples_v5():
    # `93` a tuple of 3, `a0` an empty vector, `c1 "6"` a 1-byte string
    assert _encode({"a": "6"})[:3] == bytes.fromhex("91") + b"\x81a"
    assert _encode([]) == bytes.fromhex("a0")
    assert _encode("6") == bytes.fromhex("c1") + b"6"
    assert _encode("hello.txt") == bytes.fromhex("c809") + b"hello.txt"
    assert _encode({"children": {}}) == bytes.fromhex("91 8808") + b"children" + bytes.fromhex("90")
    assert _encode({"a": 1, "b": 2, "c": 3})[0] == 0x93
    assert _encode(3073)[:1] == b"\xb0" and _encode(3073)[1:] == bytes.fromhex("9801")


@pytest.mark.parametrize("length", [0, 7, 8, 127, 128, 1023, 1024, 70000, 2 ** 24 + 3])
@pytest.mark.parametrize("version", [4, 5])
def test_header_lengths_roundtrip(version, length):
    h = _Header(version)
    raw = h.encode(True, 1, length)
    assert h.decode(raw, 0) == (True, 1, length, len(raw))


def test_symbols_are_written_in_full_once_and_referenced_after():
    out = _encode({"x": {"children": {}}, "y": {"children": {}}})
    # root=1, "x"=2, tuple=3, "children"=4, tuple=5, "y"=6, tuple=7, then a reference to 4
    assert out == (bytes.fromhex("92 8178 91 8808") + b"children"
                   + bytes.fromhex("90 8179 91 04 90"))


@pytest.mark.parametrize("version", [4, 5])
def test_roundtrip_and_dictionary(version):
    extent = {"offset": 3073, "length": 1, "allocated": 1}
    tree = {"children": {"a": {"filelength": 3, "extents": {"0": extent}},
                         "l": {"linktarget": "a"}, "d": {"children": {}}},
            "arguments": ["prog", "x"], "environment": {"A": "b"}}
    enc = Encoder(version)
    enc.value(tree)
    dec = Decoder(version)
    got = dec.record(bytes(enc.out))
    a = got[b"children"][b"a"]
    assert as_int(a[b"filelength"]) == 3
    assert as_int(a[b"extents"][b"0"][b"offset"]) == 3073
    assert got[b"children"][b"l"][b"linktarget"] == b"a"
    assert got[b"children"][b"d"] == {b"children": {}}
    if version == 5:
        assert got[b"arguments"] == [b"prog", b"x"]
    else:  # vectors become tuples keyed "0", "1"
        assert got[b"arguments"] == {b"0": b"prog", b"1": b"x"}
    assert dec.table[1] is got  # the root is dictionary entry 1
    assert len(dec.table) - 1 == enc.count


def test_updates_by_reference_and_deletion():
    enc = Encoder(5)
    enc.value({"children": {"f": {"filelength": 1}}})
    first = bytes(enc.out)
    # root=1 "children"=2 tuple=3 "f"=4 file tuple=5 "filelength"=6.
    # A later record references tuple 5: a new length, and deletes an attribute
    h = enc.header
    update = h.encode(False, 1, 2) + encode_varint(5)
    enc.out = bytearray()
    enc.symbol("filelength")
    update += bytes(enc.out) + b"\xb0" + encode_varint(9)
    enc.out = bytearray()
    enc.symbol("mtime")
    update += bytes(enc.out) + b"\x80"  # the delete marker
    dec = Decoder(5)
    root = dec.record(first)
    dec.record(update)
    assert root[b"children"][b"f"] == {b"filelength": 9}


def test_delete_marker_and_no_value():
    dec = Decoder(5)
    assert dec.record(b"\x80") is DELETED
    assert dec.record(b"\x81\x00") == b"\x00"
    enc = Encoder(5)
    enc.value(None)
    assert bytes(enc.out) == b"\x81\x00"


def test_bad_references_are_errors():
    with pytest.raises(TFSFormatError):
        Decoder(5).record(b"\x05")  # symbol reference to an empty dictionary
    with pytest.raises(TFSFormatError):
        Decoder(5).record(b"\x91\x81a")  # truncated


def test_numbers_as_strings_and_integers_both_read():
    for as_strings in (False, True):
        enc = Encoder(5, numbers_as_strings=as_strings)
        enc.value({"n": 123456})
        got = Decoder(5).record(bytes(enc.out))
        assert as_int(got[b"n"]) == 123456
    with pytest.raises(TFSFormatError):
        as_int(b"12x")


def test_booleans_refused():
    with pytest.raises(TypeError):
        Encoder(5).value(True)


def test_uuid_format():
    raw = bytes(range(16))
    text = format_uuid(raw)
    assert text == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert parse_uuid(text.upper()) == raw
    for bad in ("", "0001020304050607", "00010203-0405-0607-0809-0a0b0c0d0e0g"):
        with pytest.raises(ValueError):
            parse_uuid(bad)


def test_file_template_writes_what_the_generic_encoder_writes():
    from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import FileTuple
    files = [(0, 3073, 0), (5, 3073, 1), (70000, 3074, 137), (2 ** 31, 3211, 4194304)]
    fast = {b"children": dict((b"f%d" % i, FileTuple(*f)) for i, f in enumerate(files))}
    plain = {b"children": dict((b"f%d" % i, dict(FileTuple(*f))) for i, f in enumerate(files))}
    for version, strings in ((5, False), (5, True), (4, False)):
        a, b = Encoder(version, strings), Encoder(version, strings)
        a.value(fast)
        b.value(plain)
        assert bytes(a.out) == bytes(b.out) and a.count == b.count
