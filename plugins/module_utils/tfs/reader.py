# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a Nanos TFS: label, UUID, the tree, and file contents.

Reads what this collection writes, what Nanos mkfs writes (integer numbers) and what ops writes
(decimal strings), and logs a guest has appended to (updates by reference, deleted attributes,
uninitialised extents). A filesystem can start at any byte offset (an image partition).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    END_OF_LOG, END_OF_SEGMENT, LOG_EXTENSION_LINK, MAGIC, SECTOR, SUPPORTED_VERSIONS,
    TUPLE_AVAILABLE, TUPLE_EXTENDED, Decoder, TFSFormatError, as_int, decode_varint, format_uuid,
)

READ_CHUNK = 4 * 1024 * 1024
MAX_EXTENSIONS = 1 << 20  # a guard against link cycles in a damaged log
# Log extensions are 1024 sectors (ops refuses others); a length far beyond that is damage, and
# reading it whole would take that much memory.
MAX_EXTENSION_SECTORS = 1 << 16
# The kernel's link from a directory to its parent; in memory, and perhaps in a log it wrote:
# never a name in the tree nor a manifest value.
PARENT = b".."
# What a damaged log can make of the decoder or the tree; turned into a TFSFormatError naming
# the file (a reader that is not told about damage sees only these).
DAMAGE = (IndexError, KeyError, TypeError, AttributeError, RecursionError, OverflowError,
          ValueError)
NO_TFS = "no TFS found (missing NVMTFS magic)"


class HeaderError(TFSFormatError):
    """Sector 0 holds no TFS header this reader can use; nothing behind it was read."""


class PastTheEnd(TFSFormatError):
    """The header, a log extension or a file's data lies (in part) beyond the end of the disk:
    a file cut short, mostly. `what` is "header", "log" or the file's path (text); `end` is the
    byte of the disk it runs to, `disk_bytes` the disk's size."""

    def __init__(self, reason, path, what, end, disk_bytes):
        super().__init__(reason, path)
        self.what = what
        self.end = end
        self.disk_bytes = disk_bytes


def filesystem_name(path, offset=0):
    """How messages name a filesystem: the file, and where in it for an image partition."""
    return "%s" % (path,) if not offset else "%s (filesystem at byte %d)" % (path, offset)


class Entry:
    """One node of the tree: kind is 'file', 'directory' or 'symlink'."""

    __slots__ = ("path", "kind", "size", "target", "node")

    def __init__(self, path, kind, size=0, target=None, node=None):
        self.path = path  # bytes, absolute inside the filesystem ("/a/b")
        self.kind = kind
        self.size = size
        self.target = target  # bytes, for symlinks
        self.node = node

    def as_dict(self):
        d = {"path": os.fsdecode(self.path), "type": self.kind}
        if self.kind == "file":
            d["size"] = self.size
        elif self.kind == "symlink":
            d["target"] = os.fsdecode(self.target)
        return d


class TFS:
    """An open filesystem. Use as a context manager, or call close()."""

    def __init__(self, path, offset=0):
        self.path = path
        self.offset = offset
        self.name = filesystem_name(path, offset)
        self._usage = None  # (entries by kind, sectors in use), from one walk; see used_bytes
        self._fd = os.open(path, os.O_RDONLY)
        try:
            self.disk_bytes = os.lseek(self._fd, 0, os.SEEK_END)  # a block device's size too
            self._load()
        except DAMAGE as e:  # a damaged log, in any way
            os.close(self._fd)
            self._fd = None
            raise self._damaged(e)
        except Exception:
            os.close(self._fd)
            self._fd = None
            raise

    def _damaged(self, e):
        """A TFSFormatError naming this filesystem, for a reason (text) or a caught error."""
        if isinstance(e, TFSFormatError):
            if e.path == self.name:
                return e  # raised here already, perhaps as a HeaderError or PastTheEnd
            return TFSFormatError(e.reason, self.name)
        if isinstance(e, str):
            return TFSFormatError(e, self.name)
        return TFSFormatError("damaged filesystem metadata (%s)" % e.__class__.__name__, self.name)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _pread(self, length, sector):
        return os.pread(self._fd, length, self.offset + sector * SECTOR)

    def _load(self):
        head = self._pread(SECTOR, 0)
        if len(head) < SECTOR:
            raise PastTheEnd(NO_TFS, self.name, "header", self.offset + SECTOR, self.disk_bytes)
        try:
            self.version, self.uuid_bytes, self.label, start, length, initial_len = \
                parse_initial_extension(head)
            # The initial extension's own length (normally one sector) counts in used_bytes.
            self._check_extension(0, initial_len)
        except DAMAGE as e:  # told apart from damage in the log the header points to
            raise HeaderError(self._damaged(e).reason, self.name)
        self.log_extensions = [(0, initial_len)]
        self.root = self._read_log(start, length)
        if not isinstance(self.root, dict):
            raise TFSFormatError("the log holds no root tuple")

    @property
    def uuid(self):
        return format_uuid(self.uuid_bytes)

    def _check_extension(self, start, length):
        if not 0 < length <= MAX_EXTENSION_SECTORS:
            raise TFSFormatError("log extension at sector %d has a length of %d sectors "
                                 "(at most %d)" % (start, length, MAX_EXTENSION_SECTORS))
        end = self.offset + (start + length) * SECTOR
        if end > self.disk_bytes:
            raise PastTheEnd("log extension at sector %d (%d sectors) lies beyond the end of the "
                             "disk (%d bytes)" % (start, length, self.disk_bytes), self.name, "log",
                             end, self.disk_bytes)

    def _read_log(self, start, length):
        decoder = Decoder(self.version)
        root = None
        pending = None  # (total, bytearray) of a record continued in TUPLE_EXTENDED frames
        visited = set(ext[0] for ext in self.log_extensions)  # the initial extension, sector 0
        while True:
            if len(self.log_extensions) > MAX_EXTENSIONS:
                raise TFSFormatError("log extension chain does not end")
            if start in visited:
                raise TFSFormatError("the log extension at sector %d links back to itself or "
                                     "an earlier one" % start)
            visited.add(start)
            self._check_extension(start, length)
            self.log_extensions.append((start, length))
            buf = self._pread(length * SECTOR, start)
            if len(buf) < length * SECTOR or buf[:6] != MAGIC:
                raise TFSFormatError("log extension at sector %d is missing or damaged" % start)
            pos = len(MAGIC)
            pos = decode_varint(buf, pos)[1]  # version
            pos = decode_varint(buf, pos)[1]  # length
            link = None
            while link is None:
                if pos >= len(buf):
                    raise TFSFormatError("log extension at sector %d has no end" % start)
                frame = buf[pos]
                pos += 1
                if frame == END_OF_LOG:
                    if pending is not None:
                        raise TFSFormatError("the log ends inside a record")
                    return root
                if frame == END_OF_SEGMENT:
                    continue
                if frame == LOG_EXTENSION_LINK:
                    nstart, pos = decode_varint(buf, pos)
                    nlength, pos = decode_varint(buf, pos)
                    link = (nstart, nlength)
                elif frame == TUPLE_AVAILABLE:
                    if pending is not None:
                        raise TFSFormatError("a new record starts inside another")
                    total, pos = decode_varint(buf, pos)
                    seglen, pos = decode_varint(buf, pos)
                    pending = (total, bytearray(buf[pos:pos + seglen]))
                    pos += seglen
                elif frame == TUPLE_EXTENDED:
                    if pending is None:
                        raise TFSFormatError("a continuation frame without a record")
                    seglen, pos = decode_varint(buf, pos)
                    pending[1].extend(buf[pos:pos + seglen])
                    pos += seglen
                else:
                    raise TFSFormatError("unknown log frame %d at sector %d" % (frame, start))
                if pending is not None and len(pending[1]) >= pending[0]:
                    value = decoder.record(pending[1][:pending[0]])
                    pending = None
                    if root is None:
                        root = value
            start, length = link

    # -- the tree --------------------------------------------------------------------------

    def walk(self):
        """Yield every Entry below the root, depth-first in name order."""
        try:
            yield from walk_tree(self.root)
        except DAMAGE as e:
            raise self._damaged(e)

    def lookup(self, path):
        """The Entry at an absolute path (str or bytes); symlinks are not followed."""
        if isinstance(path, str):
            path = os.fsencode(path)
        node = self.root
        parts = [p for p in path.split(b"/") if p]
        for part in parts:
            children = node.get(b"children") if isinstance(node, dict) else None
            if not isinstance(children, dict) or part not in children:
                raise KeyError(os.fsdecode(path))
            node = children[part]
        if not isinstance(node, dict):
            raise self._damaged("%s is not a tuple" % os.fsdecode(path))
        try:
            return make_entry(b"/" + b"/".join(parts), node)
        except TFSFormatError as e:
            raise self._damaged(e)

    def extents(self, entry):
        """(file sector, disk sector, sectors, initialised) for each extent, in file order; an
        extent past the end of the disk is refused."""
        try:
            out = file_extents(entry)
        except DAMAGE as e:
            raise self._damaged(e)
        for extent in out:
            self._check_extent(entry, extent[1], extent[2])
        return out

    def _check_extent(self, entry, disk_sector, sectors):
        end = self.offset + (disk_sector + sectors) * SECTOR
        if end > self.disk_bytes:
            name = os.fsdecode(entry.path)
            raise PastTheEnd("%s: extent beyond the end of the disk" % name, self.name, name, end,
                             self.disk_bytes)

    def iter_file(self, entry, chunk=READ_CHUNK):
        """Yield a regular file's bytes in chunks; holes and uninitialised extents read as zeros."""
        remaining = entry.size
        pos = 0  # byte position in the file
        for fsect, dsect, nsect, inited in self.extents(entry):
            if remaining <= 0:
                break
            start = fsect * SECTOR
            if start > pos:  # a hole
                gap = min(start - pos, remaining)
                yield from _zeros(gap, chunk)
                pos += gap
                remaining -= gap
            span = min(nsect * SECTOR - (pos - start), remaining)
            if span <= 0:
                continue
            if not inited:
                yield from _zeros(span, chunk)
            else:
                done = 0
                while done < span:
                    n = min(chunk, span - done)
                    at = self.offset + dsect * SECTOR + (pos - start) + done
                    data = os.pread(self._fd, n, at) if at + n <= self.disk_bytes else b""
                    if len(data) != n:
                        raise self._damaged("%s: extent beyond the end of the disk"
                                            % os.fsdecode(entry.path))
                    yield data
                    done += n
            pos += span
            remaining -= span
        if remaining > 0:
            yield from _zeros(remaining, chunk)

    def read_file(self, path):
        entry = path if isinstance(path, Entry) else self.lookup(path)
        if entry.kind != "file":
            raise IsADirectoryError(os.fsdecode(entry.path))
        return b"".join(self.iter_file(entry))

    def used_bytes(self):
        """Sectors held by the log and by file extents, in bytes. Decodes every extent (never
        reading its data) and refuses one past the end of the disk, as extents() does."""
        return self._survey()[1] * SECTOR

    def entry_counts(self):
        """{"file": n, "directory": n, "symlink": n}: the entries below the root."""
        return dict(self._survey()[0])

    def _survey(self):
        """One walk of the tree, kept: the tree read at open does not change."""
        if self._usage is None:
            counts = {"file": 0, "directory": 0, "symlink": 0}
            sectors = sum(ext[1] for ext in self.log_extensions)
            for entry in self.walk():
                counts[entry.kind] += 1
                if entry.kind != "file":
                    continue
                try:
                    decoded = list(_decode_extents(entry))
                except DAMAGE as e:
                    raise self._damaged(e)
                for dummy, disk_sector, length, allocated, dummy2 in decoded:
                    self._check_extent(entry, disk_sector, length)
                    sectors += allocated
            self._usage = (counts, sectors)
        return self._usage

    def manifest(self):
        """The root tuple's keys other than the tree (an image's manifest), as plain values:
        a damaged log can make a tuple hold itself, which no caller could walk or return."""
        try:
            return dict((k, _plain(v, ())) for k, v in self.root.items()
                        if k not in (b"children", PARENT))
        except DAMAGE as e:
            raise self._damaged(e)


def parse_initial_extension(head):
    """Sector 0 of a TFS: (version, uuid bytes, label, log start, log length, own length)."""
    if len(head) < SECTOR or head[:6] != MAGIC:
        raise TFSFormatError(NO_TFS)
    pos = len(MAGIC)
    version, pos = decode_varint(head, pos)
    if version not in SUPPORTED_VERSIONS:
        raise TFSFormatError("TFS version %d is not supported" % version)
    initial_len, pos = decode_varint(head, pos)
    uuid_bytes = bytes(head[pos:pos + 16])
    pos += 16
    end = head.find(b"\0", pos)
    if end < 0:
        raise TFSFormatError("unterminated label")
    label = head[pos:end].decode("utf-8", "replace")
    pos = end + 1
    if pos >= len(head) or head[pos] != LOG_EXTENSION_LINK:
        raise TFSFormatError("the initial log extension does not link to the log")
    start, pos = decode_varint(head, pos + 1)
    length, pos = decode_varint(head, pos)
    return version, uuid_bytes, label, start, length, initial_len


def read_identity(path, offset=0):
    """(version, UUID, label) of the TFS at a byte offset, reading one sector."""
    fd = os.open(path, os.O_RDONLY)
    try:
        head = os.pread(fd, SECTOR, offset)
    finally:
        os.close(fd)
    try:
        version, uuid_bytes, label = parse_initial_extension(head)[:3]
    except TFSFormatError as e:
        raise TFSFormatError(e.reason, filesystem_name(path, offset))
    return version, format_uuid(uuid_bytes), label


def make_entry(path, node):
    if b"linktarget" in node:
        target = node[b"linktarget"]
        if not isinstance(target, (bytes, bytearray)):
            raise TFSFormatError("symlink %s has a target that is not a string" % os.fsdecode(path))
        return Entry(path, "symlink", target=bytes(target), node=node)
    if b"children" in node:
        return Entry(path, "directory", node=node)
    size = as_int(node.get(b"filelength", 0), "filelength of %s" % os.fsdecode(path))
    if size < 0:
        raise TFSFormatError("file %s has a negative length" % os.fsdecode(path))
    return Entry(path, "file", size=size, node=node)


def _children(path, node):
    children = node.get(b"children")
    if children is None:
        return {}
    if not isinstance(children, dict):
        raise TFSFormatError("directory %s: its children are not a tuple"
                             % (os.fsdecode(path) or "/"))
    return children


def walk_tree(root):
    """Yield an Entry for every node below a root tuple (decoded, or a writer's plan).

    Parents come before their children; siblings in name order. A directory reached a second
    time is damage (a log that makes a tuple its own descendant, or one directory two): walking
    on would never end, or grow without bound.
    """
    seen = {id(root): b"/"}
    stack = [(b"", _children(b"", root))]
    while stack:
        prefix, children = stack.pop()
        subdirs = []
        for name in sorted(children):
            node = children[name]
            if not isinstance(node, dict):
                continue
            if name in (b"", b".", PARENT) or b"/" in name or b"\0" in name:
                raise TFSFormatError("directory %s holds an entry named %r, which no path can "
                                     "name" % (os.fsdecode(prefix) or "/", name))
            entry = make_entry(prefix + b"/" + name, node)
            yield entry
            if entry.kind == "directory":
                first = seen.setdefault(id(node), entry.path)
                if first is not entry.path:
                    raise TFSFormatError("directory %s is also %s: the tree loops or shares a "
                                         "directory" % (os.fsdecode(entry.path),
                                                        os.fsdecode(first)))
                subdirs.append((entry.path, _children(entry.path, node)))
        stack.extend(reversed(subdirs))


def _extent_tuples(entry):
    extents = entry.node.get(b"extents")
    if extents is None:
        return {}
    if not isinstance(extents, dict):
        raise TFSFormatError("file %s: its extents are not a tuple" % os.fsdecode(entry.path))
    return extents


def _count(value, what, entry):
    n = as_int(value, "%s of %s" % (what, os.fsdecode(entry.path)))
    if n < 0:
        raise TFSFormatError("file %s has a negative %s" % (os.fsdecode(entry.path), what))
    return n


def _decode_extents(entry):
    """(file sector, disk sector, sectors, sectors allocated, initialised) for each extent of a
    file, in no order."""
    for key, ext in _extent_tuples(entry).items():
        if not isinstance(ext, dict):
            continue
        fsect = _count(key, "extent key", entry)
        dsect = _count(ext.get(b"offset"), "extent offset", entry)
        length = _count(ext.get(b"length"), "extent length", entry)
        allocated = _count(ext[b"allocated"], "allocated", entry) if b"allocated" in ext else length
        yield fsect, dsect, length, allocated, b"uninited" not in ext


def file_extents(entry):
    """(file sector, disk sector, sectors, initialised) for each extent of a file, in file
    order."""
    return sorted((e[0], e[1], e[2], e[4]) for e in _decode_extents(entry))


def _plain(value, parents):
    """A decoded value with no tuple or vector inside itself (parents: the enclosing ones)."""
    if isinstance(value, (dict, list)):
        if any(value is p for p in parents):
            raise TFSFormatError("a tuple of the manifest holds itself")
        inner = parents + (value,)
        if isinstance(value, dict):
            return dict((k, _plain(v, inner)) for k, v in value.items() if k != PARENT)
        return [_plain(v, inner) for v in value]
    return value


def _zeros(n, chunk):
    while n > 0:
        k = min(n, chunk)
        yield bytes(k)
        n -= k
