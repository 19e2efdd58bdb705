# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Nanos TFS on-disk format: constants, varints, and the tuple value codec.

This file knows bytes only; building a filesystem is tfs_writer, reading one is tfs_reader.
Versions 5 (current Nanos) and 4 (ops --tfsv4) are both supported.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import uuid as uuid_mod

SECTOR = 512
MAGIC = b"NVMTFS"
# Every log extension but the 1-sector initial one is 1024 sectors: ops' reader refuses others.
EXTENSION_SECTORS = 1024
EXTENSION_BYTES = EXTENSION_SECTORS * SECTOR
INITIAL_SECTORS = 1
LABEL_MAX = 31  # 32 bytes with the NUL; a 32-byte label makes the kernel's probe fail
# The guest reserves two log extensions before its first data write.
GUEST_RESERVE_SECTORS = 2 * EXTENSION_SECTORS
# Nanos mkfs splits extents at 65536 sectors (32 MiB); we do the same.
MAX_EXTENT_SECTORS = 65536

# Log frame bytes.
END_OF_LOG = 1
TUPLE_AVAILABLE = 2
TUPLE_EXTENDED = 3
END_OF_SEGMENT = 4
LOG_EXTENSION_LINK = 5

# Room the kernel keeps at the end of an extension: a link frame (1 + two 10-byte varints)
# and a tuple frame header. It links to a new extension when end + 21 + 53 >= size.
LINK_FRAME_MAX = 21
NEW_EXTENSION_THRESHOLD = 21 + 53
SEGMENT_RESERVE = 21 + 21

# v5 value types (bits 6-4 of the header byte).
TYPE_BUFFER = 0  # symbols, and the special "delete" / "no value" markers
TYPE_TUPLE = 1
TYPE_VECTOR = 2
TYPE_INTEGER = 3
TYPE_STRING = 4

SUPPORTED_VERSIONS = (4, 5)


# A u64 takes at most 10 base-128 bytes; a longer run is damage (and would build a huge int).
VARINT_MAX_BYTES = 10


class TFSFormatError(ValueError):
    """The bytes are not a TFS we understand.

    path: the file, when known; reason: the message without it (for callers that name the file
    themselves)."""

    def __init__(self, reason, path=None):
        super(TFSFormatError, self).__init__("%s: %s" % (path, reason) if path else reason)
        self.reason = reason
        self.path = path


def encode_varint(n):
    """Big-endian base-128; every byte but the last has bit 0x80 set."""
    if n < 0:
        raise ValueError("varint must not be negative")
    if n < 0x80:
        return bytes((n,))
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.reverse()
    return bytes(out)


def decode_varint(buf, pos):
    """Return (value, new position)."""
    n = 0
    end = pos + VARINT_MAX_BYTES
    while pos < end:
        try:
            b = buf[pos]
        except IndexError:
            raise TFSFormatError("truncated varint")
        pos += 1
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            return n, pos
    raise TFSFormatError("a number longer than 64 bits")


def format_uuid(raw):
    """16 bytes shown in byte order, grouped 8-4-4-4-12 (no RFC 4122 bits implied)."""
    return str(uuid_mod.UUID(bytes=bytes(raw)))


def parse_uuid(text):
    """The inverse of format_uuid; raises ValueError on anything but 8-4-4-4-12 hex."""
    text = str(text).strip().lower()
    if len(text) != 36 or [len(p) for p in text.split("-")] != [8, 4, 4, 4, 12]:
        raise ValueError("not a UUID of the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx: %r" % text)
    return uuid_mod.UUID(text).bytes


class _Header:
    """Header byte layouts of the two versions.

    v5: bit 7 immediate, bits 6-4 type, bit 3 "more length bytes", bits 2-0 length high bits.
    v4: bit 7 immediate, bit 6 type (0 buffer, 1 tuple), bit 5 "more", bits 4-0 length.
    """

    def __init__(self, version):
        if version == 5:
            self.type_shift, self.type_mask, self.ext_bit, self.len_bits = 4, 0x7, 0x08, 3
        elif version == 4:
            self.type_shift, self.type_mask, self.ext_bit, self.len_bits = 6, 0x1, 0x20, 5
        else:
            raise TFSFormatError("unsupported TFS version %r" % (version,))
        self.len_mask = (1 << self.len_bits) - 1
        self._cache = {}

    def encode(self, immediate, typ, length):
        key = (immediate, typ, length)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        first = (0x80 if immediate else 0) | (typ << self.type_shift)
        if length <= self.len_mask:
            out = bytes((first | length,))
        else:
            words = -(-(length.bit_length() - self.len_bits) // 7)
            parts = [first | self.ext_bit | (length >> (7 * words))]
            for i in range(words - 1, -1, -1):
                parts.append(((length >> (7 * i)) & 0x7F) | (0x80 if i else 0))
            out = bytes(parts)
        if length < 1 << 20:
            self._cache[key] = out
        return out

    def decode(self, buf, pos):
        """Return (immediate, type, length, new position)."""
        try:
            b = buf[pos]
        except IndexError:
            raise TFSFormatError("truncated value header")
        pos += 1
        immediate = bool(b & 0x80)
        typ = (b >> self.type_shift) & self.type_mask
        length = b & self.len_mask
        if b & self.ext_bit:
            end = pos + VARINT_MAX_BYTES
            while True:
                if pos >= end:
                    raise TFSFormatError("a value length longer than 64 bits")
                try:
                    c = buf[pos]
                except IndexError:
                    raise TFSFormatError("truncated value length")
                pos += 1
                length = (length << 7) | (c & 0x7F)
                if not c & 0x80:
                    break
        return immediate, typ, length, pos


class Deleted:
    """Marker decoded from a record that removes an attribute."""


DELETED = Deleted()


class FileTuple(dict):
    """A regular file's tuple with one extent, as the writer makes nearly all of them:
    (filelength:size extents:(0:(offset:sector length:n allocated:n))). It is an ordinary dict
    to every reader; the encoder writes it from a template once its symbols are known, which
    makes encoding tens of thousands of files several times faster."""

    __slots__ = ("size", "sector", "nsect")

    def __init__(self, size, sector, nsect):  # pylint: disable=super-init-not-called
        # Item by item rather than through dict.__init__: a third cheaper, and it runs per file.
        self[b"filelength"] = size
        self[b"extents"] = {b"0": {b"offset": sector, b"length": nsect, b"allocated": nsect}}
        self.size = size
        self.sector = sector
        self.nsect = nsect


_FILE_SYMBOLS = (b"filelength", b"extents", b"0", b"offset", b"length", b"allocated")


class Encoder:
    """Encode a tree of tuples into the log's value stream.

    Python values map as: dict -> tuple, list -> vector, int -> integer, str -> string,
    bytes -> string (raw bytes), None -> "attribute present without value".
    Keys of dicts are symbols (bytes or str); the dictionary of symbols and tuples is shared
    by everything encoded with one Encoder, as it is shared by one log.
    """

    def __init__(self, version=5, numbers_as_strings=False):
        self.version = version
        self.header = _Header(version)
        self.numbers_as_strings = numbers_as_strings
        self.symbols = {}
        self.count = 0  # dictionary entries handed out so far (1-based indices)
        self.out = bytearray()
        self._refs = {}  # symbol index -> encoded reference
        self._tuple_headers = [self.header.encode(True, TYPE_TUPLE, n) for n in range(8)]
        self._file_template = None

    def symbol(self, name):
        if isinstance(name, str):
            name = name.encode("utf-8", "surrogateescape")
        index = self.symbols.get(name)
        if index is not None:
            self.out += self.header.encode(False, TYPE_BUFFER, index)
            return
        self.count += 1
        self.symbols[name] = self.count
        self.out += self.header.encode(True, TYPE_BUFFER, len(name))
        self.out += name

    def value(self, v):
        enc = self.header.encode
        out = self.out
        if isinstance(v, bool):
            raise TypeError("booleans have no TFS encoding; convert them to strings")
        elif isinstance(v, int):
            if self.version == 4 or self.numbers_as_strings:
                self.value(str(v))
            elif v >= 0:
                out += b"\xb0"
                out += encode_varint(v)
            else:
                out += b"\xb1"
                out += encode_varint(-v)
        elif isinstance(v, (str, bytes, bytearray)):
            data = v.encode("utf-8", "surrogateescape") if isinstance(v, str) else bytes(v)
            if self.version == 4:
                out += enc(True, TYPE_BUFFER, len(data))
            else:
                out += enc(True, TYPE_STRING, len(data))
            out += data
        elif isinstance(v, dict):
            self._tuple(v)
        elif isinstance(v, (list, tuple)):
            if self.version == 4:
                self._tuple(dict((str(i), item) for i, item in enumerate(v)))
                return
            self.count += 1
            out += enc(True, TYPE_VECTOR, len(v))
            for item in v:
                self.value(item)
        elif v is None:
            out += enc(True, TYPE_BUFFER, 1)
            out += b"\x00"
        else:
            raise TypeError("cannot encode %r in TFS" % (v,))

    def _tuple(self, d):
        # The hot path of building a volume (tens of thousands of file tuples): symbols, nested
        # tuples, file tuples and small integers are handled inline, everything else by value().
        out = self.out
        enc = self.header.encode
        symbols = self.symbols
        refs = self._refs
        ints_inline = self.version == 5 and not self.numbers_as_strings
        self.count += 1  # a tuple takes its index before its children
        n = len(d)
        out += self._tuple_headers[n] if n < 8 else enc(True, TYPE_TUPLE, n)
        for k, item in d.items():
            if not isinstance(k, bytes):
                k = k.encode("utf-8", "surrogateescape") if isinstance(k, str) else bytes(k)
            index = symbols.get(k)
            if index is None:
                self.count += 1
                symbols[k] = self.count
                out += enc(True, TYPE_BUFFER, len(k))
                out += k
            else:
                ref = refs.get(index)
                if ref is None:
                    ref = refs[index] = enc(False, TYPE_BUFFER, index)
                out += ref
            t = type(item)
            if t is FileTuple and ints_inline:
                tpl = self._file_template or self._make_file_template()
                if tpl is None:
                    self._tuple(item)  # the first file makes the symbols known
                    continue
                # Exactly the bytes _tuple would write for the file, from the template: the
                # part up to the sector and the part after it are cached by size and length.
                heads, tails, middle = tpl[0], tpl[1], tpl[2]
                size = item.size
                head = heads.get(size)
                if head is None:
                    head = tpl[3] + encode_varint(size) + middle
                    if size < _SMALL:  # larger sizes seldom repeat
                        heads[size] = head
                nsect = item.nsect
                tail = tails.get(nsect)
                if tail is None:
                    v = encode_varint(nsect)
                    tail = tails[nsect] = tpl[4] + v + tpl[5] + v
                out += head
                out += _varint(item.sector)
                out += tail
                self.count += 3  # the file's tuple, its extents tuple and the extent
            elif t is dict:
                self._tuple(item)
            elif t is int and ints_inline and item >= 0:
                out += b"\xb0"
                out += _small_varint(item) if item < _SMALL else encode_varint(item)
            else:
                self.value(item)

    def _make_file_template(self):
        """The fixed bytes of a FileTuple, once its six symbols are in the dictionary."""
        if not all(sym in self.symbols for sym in _FILE_SYMBOLS):
            return None
        ref = dict((sym, self.header.encode(False, TYPE_BUFFER, self.symbols[sym]))
                   for sym in _FILE_SYMBOLS)
        hdr = self._tuple_headers
        self._file_template = (
            {}, {},  # head by file size, tail by sector count
            ref[b"extents"] + hdr[1] + ref[b"0"] + hdr[3] + ref[b"offset"] + b"\xb0",
            hdr[2] + ref[b"filelength"] + b"\xb0",
            ref[b"length"] + b"\xb0",
            ref[b"allocated"] + b"\xb0")
        return self._file_template


def _varint(n):
    """encode_varint, unrolled for the values of disk sectors."""
    if n < 0x4000:
        if n < 0x80:
            return bytes((n,))
        return bytes((0x80 | n >> 7, n & 0x7F))
    if n < 0x200000:
        return bytes((0x80 | n >> 14, 0x80 | (n >> 7) & 0x7F, n & 0x7F))
    return encode_varint(n)


_SMALL = 1 << 16
_SMALL_VARINTS = {}


def _small_varint(n):
    hit = _SMALL_VARINTS.get(n)
    if hit is None:
        hit = _SMALL_VARINTS[n] = encode_varint(n)
    return hit


class Decoder:
    """Decode log records into Python values, applying updates to earlier tuples.

    Tuples decode to dicts keyed by bytes; strings and untyped buffers to bytes; integers to int.
    A reference to an earlier tuple merges its pairs into that dict (how later log records
    update the tree), and an attribute whose value is the delete marker is removed.
    """

    def __init__(self, version):
        self.version = version
        self.header = _Header(version)
        self.table = [None]  # 1-based dictionary

    def record(self, buf):
        value, pos = self._value(buf, 0)
        if pos != len(buf):
            raise TFSFormatError("%d stray bytes after a log record" % (len(buf) - pos))
        return value

    def _symbol(self, buf, pos):
        immediate, typ, length, pos = self.header.decode(buf, pos)
        if typ != TYPE_BUFFER:
            raise TFSFormatError("attribute name of type %d" % typ)
        if immediate:
            name = bytes(buf[pos:pos + length])
            if len(name) != length:
                raise TFSFormatError("truncated attribute name")
            self.table.append(name)
            return name, pos + length
        return self._lookup(length, bytes), pos

    def _lookup(self, index, kind):
        try:
            item = self.table[index]
        except IndexError:
            item = None
        if index == 0 or not isinstance(item, kind):
            raise TFSFormatError("bad dictionary reference %d" % index)
        return item

    def _value(self, buf, pos):
        immediate, typ, length, pos = self.header.decode(buf, pos)
        if self.version == 4:
            # v4 has two types: buffers (every scalar) and tuples.
            typ = TYPE_TUPLE if typ == 1 else TYPE_BUFFER
        if typ == TYPE_TUPLE:
            if immediate:
                target = {}
                self.table.append(target)
            else:
                index, pos = decode_varint(buf, pos)
                target = self._lookup(index, dict)
            for dummy in range(length):
                name, pos = self._symbol(buf, pos)
                value, pos = self._value(buf, pos)
                if value is DELETED:
                    target.pop(name, None)
                else:
                    target[name] = value
            return target, pos
        if typ == TYPE_VECTOR:
            if immediate:
                target = []
                self.table.append(target)
            else:
                index, pos = decode_varint(buf, pos)
                target = self._lookup(index, list)
            for dummy in range(length):
                value, pos = self._value(buf, pos)
                if value is DELETED:  # deletes an attribute; a vector has none
                    raise TFSFormatError("a delete marker inside a vector")
                target.append(value)
            return target, pos
        if typ == TYPE_INTEGER:
            n, pos = decode_varint(buf, pos)
            return (-n if length & 1 else n), pos
        if typ in (TYPE_BUFFER, TYPE_STRING):
            if not immediate:
                if typ == TYPE_BUFFER:
                    return self._lookup(length, bytes), pos
                raise TFSFormatError("string by reference")
            data = bytes(buf[pos:pos + length])
            if len(data) != length:
                raise TFSFormatError("truncated value")
            if typ == TYPE_BUFFER and length == 0:
                return DELETED, pos
            return data, pos + length
        raise TFSFormatError("unknown value type %d" % typ)


def as_int(value, what="number"):
    """Numbers are integers (Nanos mkfs, the kernel) or decimal strings (ops); both are valid."""
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("ascii", "replace")
        if text.isdigit():
            return int(text)
    raise TFSFormatError("%s is not a number: %r" % (what, value))
