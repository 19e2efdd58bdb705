# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a Nanos TFS from a host directory.

Two steps: plan_tree() walks the source once (lstat only) and lays every file out on disk;
write_filesystem() streams the data into place and writes the log. The layout follows Nanos
mkfs: the log's first extension at sector 1, file data from sector 3073 so that the guest finds
the 2048 free sectors it reserves before its first write, further log extensions after the data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import signal
import stat
import struct

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    END_OF_LOG, EXTENSION_BYTES, EXTENSION_SECTORS, GUEST_RESERVE_SECTORS, INITIAL_SECTORS,
    LABEL_MAX, LINK_FRAME_MAX, LOG_EXTENSION_LINK, MAGIC, MAX_EXTENT_SECTORS,
    NEW_EXTENSION_THRESHOLD, SECTOR, SEGMENT_RESERVE, TUPLE_AVAILABLE, TUPLE_EXTENDED,
    Encoder, FileTuple, encode_varint,
)

DATA_START_SECTOR = INITIAL_SECTORS + EXTENSION_SECTORS + GUEST_RESERVE_SECTORS  # 3073
# Files up to this size are read and written in batches; larger ones go through
# copy_file_range, which copies inside the kernel (and may share blocks on reflink filesystems).
SMALL_FILE = 256 * 1024
BATCH_BYTES = 8 * 1024 * 1024
COPY_CHUNK = 64 * 1024 * 1024


def sectors_for(nbytes):
    return -(-nbytes // SECTOR)


class Inline:
    """File data given as bytes (a generated /etc/passwd) instead of a host path."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def _guest_parts(guest_path):
    if isinstance(guest_path, str):
        guest_path = guest_path.encode("utf-8", "surrogateescape")
    parts = [p for p in guest_path.split(b"/") if p]
    if any(p in (b".", b"..") for p in parts):
        raise OpsError("guest path %r must not contain . or .." % os.fsdecode(guest_path))
    return parts


class TreePlan:
    """A filesystem laid out before a byte is written: a host directory (add_tree) and/or
    single files, data and links placed at guest paths (what an image's rootfs needs).

    root:      the TFS root tuple, ready to encode (file extents already placed).
    copies:    (source, size, first sector) for every non-empty file, in disk order; the source
               is a host path (bytes) or Inline data.
    data_end:  first sector after the file data.
    files, directories, symlinks, data_bytes: counts for results and diffs.
    """

    def __init__(self):
        self.root = {b"children": {}}
        self.copies = []
        self.data_end = DATA_START_SECTOR
        self.files = 0
        self.directories = 0
        self.symlinks = 0
        self.data_bytes = 0
        # Paths, sizes, mtimes and link targets of add_tree sources: cheap proof of no change.
        self.signature = hashlib.sha256()

    def directory(self, guest_path):
        """The children tuple of a guest directory, created with its parents as needed."""
        node = self.root
        for part in _guest_parts(guest_path):
            children = node[b"children"]
            nxt = children.get(part)
            if nxt is None:
                nxt = children[part] = {b"children": {}}
                self.directories += 1
            elif b"children" not in nxt:
                raise OpsError("%s is a file in the image, not a directory" % os.fsdecode(part))
            node = nxt
        return node[b"children"]

    def _place(self, guest_path, node):
        parts = _guest_parts(guest_path)
        if not parts:
            raise OpsError("cannot place a file at /")
        children = self.directory(b"/".join(parts[:-1]))
        if parts[-1] in children:
            raise OpsError("%s is given twice" % os.fsdecode(b"/" + b"/".join(parts)))
        children[parts[-1]] = node

    def _sized(self, source, size):
        nsect = -(-size // SECTOR)
        if size:
            self.copies.append((source, size, self.data_end))
            node = {b"filelength": size, b"extents": _extents(self.data_end, nsect)}
        else:
            node = {b"filelength": 0, b"extents": {}}
        self.data_end += nsect
        self.files += 1
        self.data_bytes += size
        return node

    def add_file(self, guest_path, host_path):
        """A host file (symlinks followed) at guest_path."""
        host = os.path.realpath(os.fsencode(host_path))  # copying opens with O_NOFOLLOW
        try:
            st = os.stat(host)
        except OSError as e:
            raise OpsError("cannot read %s: %s" % (host_path, e.strerror))
        if not stat.S_ISREG(st.st_mode):
            raise OpsError("%s is not a regular file" % host_path)
        self._place(guest_path, self._sized(host, st.st_size))

    def add_data(self, guest_path, data):
        self._place(guest_path, self._sized(Inline(bytes(data)), len(data)))

    def add_symlink(self, guest_path, target):
        self._place(guest_path, {b"linktarget": os.fsencode(target)})
        self.symlinks += 1

    def add_tree(self, guest_dir, source, check_readable=False, sink=None):
        """Walk `source`; its contents go below guest_dir. See plan_tree."""
        _walk_into(self, self.directory(guest_dir), source, check_readable, sink)
        return self


def _extents(first_sector, nsect):
    """A file's extents tuple: runs of at most 65536 sectors, keyed by file sector."""
    if nsect <= MAX_EXTENT_SECTORS:  # nearly every file: one extent
        return {b"0": {b"offset": first_sector, b"length": nsect, b"allocated": nsect}}
    extents = {}
    offset = 0
    while offset < nsect:
        length = min(MAX_EXTENT_SECTORS, nsect - offset)
        extents[str(offset).encode()] = {b"offset": first_sector + offset, b"length": length,
                                         b"allocated": length}
        offset += length
    return extents


def _name_key(entry):
    return entry.name


def plan_tree(source, check_readable=False, sink=None):
    """Walk `source` (its contents become the volume root) and lay it out.

    Symlinks are stored as links, never followed. Sockets, FIFOs and devices have no TFS form
    and are refused. With check_readable, every file and directory is checked for read access
    now (check mode has no later copy step to find out). With a sink (a DataCopier), each
    directory's files are handed over for copying as soon as they are laid out.
    """
    return TreePlan().add_tree("/", source, check_readable, sink)


def _walk_into(plan, root_children, source, check_readable, sink):
    src = os.fsencode(source)
    try:
        st = os.stat(src)
    except OSError as e:
        raise OpsError("source directory %s cannot be used: %s" % (source, e.strerror))
    if not stat.S_ISDIR(st.st_mode):
        raise OpsError("source %s is not a directory" % source)
    # This loop runs once per file of the tree: state is kept in locals.
    sig_parts = [os.path.abspath(src)]
    copies = plan.copies
    data_end = plan.data_end
    files = directories = symlinks = data_bytes = 0
    sent = len(copies)
    stack = [(src, root_children)]
    while stack:
        dirpath, children = stack.pop()
        try:
            with os.scandir(dirpath) as it:
                entries = sorted(it, key=_name_key)
        except OSError as e:
            raise OpsError("cannot read directory %s: %s" % (os.fsdecode(dirpath), e.strerror))
        subdirs = []
        for entry in entries:
            path = entry.path
            try:
                if entry.is_file(follow_symlinks=False):
                    if check_readable and not os.access(path, os.R_OK):
                        raise OSError(errno.EACCES, "Permission denied")
                    st = entry.stat(follow_symlinks=False)
                    size = st.st_size
                    sig_parts.append(b"f%s\0%d:%d" % (path, size, st.st_mtime_ns))
                    nsect = -(-size // SECTOR)
                    if size:
                        copies.append((path, size, data_end))
                        if nsect <= MAX_EXTENT_SECTORS:
                            children[entry.name] = FileTuple(size, data_end, nsect)
                        else:
                            children[entry.name] = {b"filelength": size,
                                                    b"extents": _extents(data_end, nsect)}
                    else:
                        children[entry.name] = {b"filelength": 0, b"extents": {}}
                    data_end += nsect
                    files += 1
                    data_bytes += size
                elif entry.is_symlink():
                    target = os.readlink(path)
                    children[entry.name] = {b"linktarget": target}
                    symlinks += 1
                    sig_parts.append(b"l%s\0%s" % (path, target))
                elif entry.is_dir(follow_symlinks=False):
                    if check_readable and not os.access(path, os.R_OK | os.X_OK):
                        raise OSError(errno.EACCES, "Permission denied")
                    sub = {}
                    children[entry.name] = {b"children": sub}
                    subdirs.append((path, sub))
                    directories += 1
                    sig_parts.append(b"d%s" % path)
                else:
                    raise OpsError("%s is not a regular file, directory or symlink; TFS cannot "
                                   "hold it" % os.fsdecode(path))
            except OSError as e:
                raise OpsError("cannot read %s: %s" % (os.fsdecode(path), e.strerror))
        # Depth-first in name order, so that data is laid out in a stable order.
        stack.extend(reversed(subdirs))
        if sink is not None and len(copies) > sent:
            sink.add(copies[sent:])
            sent = len(copies)
    plan.signature.update(b"\0".join(sig_parts))
    plan.data_end = data_end
    plan.files += files
    plan.directories += directories
    plan.symlinks += symlinks
    plan.data_bytes += data_bytes


def _copy_range(src_fd, dst_fd, size, dst_off, path):  # dst_off: absolute byte offset
    """Copy `size` bytes from the start of src_fd to dst_off, in the kernel when it can."""
    done = 0
    use_cfr = hasattr(os, "copy_file_range")
    while done < size:
        want = min(COPY_CHUNK, size - done)
        n = 0
        if use_cfr:
            try:
                n = os.copy_file_range(src_fd, dst_fd, want, done, dst_off + done)
            except OSError as e:
                if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP,
                                   errno.EBADF, errno.EPERM):
                    raise
                use_cfr = False
        if not use_cfr:
            chunk = os.pread(src_fd, min(want, 1024 * 1024), done)
            n = len(chunk)
            if n:
                os.pwrite(dst_fd, chunk, dst_off + done)
        if n == 0:
            raise OpsError("%s shrank while it was being copied (expected %d bytes, got %d)"
                           % (os.fsdecode(path), size, done))
        done += n


def _copy_data(dst_fd, copies, base=0):
    """Copy each (source, size, first sector) to base + sector * 512 of dst_fd."""
    batch = bytearray()
    batch_start = 0
    for path, size, sector in copies:
        offset = base + sector * SECTOR
        if isinstance(path, Inline):
            os.pwrite(dst_fd, path.data, offset)
            continue
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as e:
            raise OpsError("cannot read %s: %s" % (os.fsdecode(path), e.strerror))
        try:
            if size <= SMALL_FILE:
                data = os.read(fd, size + 1)
                if len(data) != size:
                    raise OpsError("%s changed size while it was being copied (expected %d "
                                   "bytes, got %d)" % (os.fsdecode(path), size, len(data)))
                if batch and batch_start + len(batch) != offset:
                    os.pwrite(dst_fd, batch, batch_start)
                    batch = bytearray()
                if not batch:
                    batch_start = offset
                batch += data
                pad = -size % SECTOR
                if pad:
                    batch += bytes(pad)
                if len(batch) >= BATCH_BYTES:
                    os.pwrite(dst_fd, batch, batch_start)
                    batch = bytearray()
            else:
                if batch:
                    os.pwrite(dst_fd, batch, batch_start)
                    batch = bytearray()
                _copy_range(fd, dst_fd, size, offset, path)
        except OSError as e:
            raise OpsError("cannot copy %s: %s" % (os.fsdecode(path), e.strerror))
        finally:
            os.close(fd)
    if batch:
        os.pwrite(dst_fd, batch, batch_start)


_RECORD = struct.Struct("<QQI")  # first sector, size, path length; then the path


class DataCopier:
    """Copies file data in a forked child while the parent goes on planning and encoding.

    A tree of many small files costs as much Python time to plan and encode as to copy; on a
    machine with two cores or more both run at once. The child reports the first error (an
    unreadable file) through a pipe; the parent raises it from finish(). Use as a context
    manager: leaving it by an exception kills the child.
    """

    def __init__(self, fd):
        rec_r, self._rec_w = os.pipe()
        self._err_r, err_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: copy what arrives, then exit without cleanup handlers
            code = 0
            try:
                os.close(self._rec_w)
                os.close(self._err_r)
                self._copy_from(rec_r, fd)
            except BaseException as e:  # pylint: disable=broad-except
                msg = e.msg if isinstance(e, OpsError) else "copying failed: %s" % e
                os.write(err_w, msg.encode("utf-8", "replace"))
                code = 1
            os._exit(code)
        os.close(rec_r)
        os.close(err_w)

    @classmethod
    def worthwhile(cls):
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return hasattr(os, "fork") and (cpus or 1) > 1

    @staticmethod
    def _copy_from(rec_fd, fd):
        with os.fdopen(rec_fd, "rb", buffering=1 << 20) as records:
            batch = []
            while True:
                head = records.read(_RECORD.size)
                if not head:
                    break
                sector, size, n = _RECORD.unpack(head)
                batch.append((records.read(n), size, sector))
                if len(batch) >= 512:
                    _copy_data(fd, batch)
                    batch = []
            _copy_data(fd, batch)

    def add(self, copies):
        data = b"".join(_RECORD.pack(sector, size, len(path)) + path
                        for path, size, sector in copies)
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._rec_w, view):]
        except BrokenPipeError:  # the child stopped early: its error is the one to report
            self.finish()

    def finish(self):
        os.close(self._rec_w)
        self._rec_w = None
        status = os.waitpid(self.pid, 0)[1]
        with os.fdopen(self._err_r, "rb") as err:
            msg = err.read().decode("utf-8", "replace")
        self.pid = None
        if status != 0:
            raise OpsError(msg or "copying file data failed (status %d)" % status)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            os.waitpid(self.pid, 0)
            if self._rec_w is not None:
                os.close(self._rec_w)
            os.close(self._err_r)
            self.pid = None


class LogLayout:
    """Where the encoded metadata goes: the bytes of each log extension, by first sector."""

    def __init__(self, record, extensions):
        self.record = record  # the encoded root tuple (a fingerprint of tree and layout)
        self.extensions = extensions  # list of (sector, bytes)

    @property
    def extra_sectors(self):
        return (len(self.extensions) - 1) * EXTENSION_SECTORS


def _extension_header(version):
    return MAGIC + encode_varint(version) + encode_varint(EXTENSION_SECTORS)


def layout_log(record, version, next_free_sector):
    """Frame one encoded record into 1024-sector extensions as the kernel would.

    The first extension is at sector 1; further ones are placed from next_free_sector on.
    A record that does not fit continues in TUPLE_EXTENDED frames after a link.
    """
    header = _extension_header(version)
    extensions = []
    current = bytearray(header)
    sector = INITIAL_SECTORS
    nxt = next_free_sector
    pos = 0
    total = len(record)
    first = True

    def link():
        nonlocal current, sector, nxt
        # mkfs ends a linked extension with END_OF_LOG too; readers stop at the link.
        current += (bytes((LOG_EXTENSION_LINK,)) + encode_varint(nxt)
                    + encode_varint(EXTENSION_SECTORS) + bytes((END_OF_LOG,)))
        extensions.append((sector, current))
        sector, nxt = nxt, nxt + EXTENSION_SECTORS
        current = bytearray(header)

    while first or pos < total:
        if len(current) + NEW_EXTENSION_THRESHOLD >= EXTENSION_BYTES:
            link()
        room = EXTENSION_BYTES - (len(current) + SEGMENT_RESERVE)
        seg = record[pos:pos + room]
        if first:
            current += bytes((TUPLE_AVAILABLE,)) + encode_varint(total) + encode_varint(len(seg))
            first = False
        else:
            current += bytes((TUPLE_EXTENDED,)) + encode_varint(len(seg))
        current += seg
        pos += len(seg)
        if pos < total:
            link()
    current.append(END_OF_LOG)
    if len(current) + LINK_FRAME_MAX > EXTENSION_BYTES:  # the kernel must be able to link on
        raise AssertionError("log extension overfilled")
    extensions.append((sector, current))
    return LogLayout(record, extensions)


def initial_extension(version, uuid_bytes, label):
    """Sector 0: magic, version, its own length (1), UUID, NUL-terminated label, link to sector 1."""
    label_bytes = label.encode("utf-8")
    if len(label_bytes) > LABEL_MAX:
        raise OpsError("label %r is %d bytes; Nanos accepts at most %d"
                       % (label, len(label_bytes), LABEL_MAX))
    if len(uuid_bytes) != 16:
        raise ValueError("a TFS UUID is 16 bytes")
    out = (MAGIC + encode_varint(version) + encode_varint(INITIAL_SECTORS) + bytes(uuid_bytes)
           + label_bytes + b"\0" + bytes((LOG_EXTENSION_LINK,)) + encode_varint(INITIAL_SECTORS)
           + encode_varint(EXTENSION_SECTORS) + bytes((END_OF_LOG,)))
    return out + bytes(SECTOR - len(out))


def encode_root(root, version=5, numbers_as_strings=False):
    enc = Encoder(version=version, numbers_as_strings=numbers_as_strings)
    enc.value(root)  # the root is the first thing encoded, so it is dictionary entry 1
    return bytes(enc.out)


def required_sectors(plan, log):
    return plan.data_end + log.extra_sectors


def prepare(plan, version=5, numbers_as_strings=False):
    """Encode the plan's metadata and place its log; returns the LogLayout."""
    record = encode_root(plan.root, version, numbers_as_strings)
    return layout_log(record, version, plan.data_end)


def write_filesystem(fd, plan, log, uuid_bytes, label, size, version=5, copier=None, base=0):
    """Write the filesystem into an open, empty file, or into the partition at byte `base`.

    `size` is the filesystem's byte length (a volume file is extended to it; holes stay
    sparse); it must hold the layout. With a copier that plan_tree fed, the data is already on
    its way; this waits for it.
    """
    need = required_sectors(plan, log) * SECTOR
    if size < need:
        raise OpsError("internal: %d bytes requested but the layout needs %d" % (size, need))
    if os.fstat(fd).st_size < base + size:
        os.ftruncate(fd, base + size)
    if copier is not None:
        copier.finish()
    else:
        _copy_data(fd, plan.copies, base)
    for sector, data in log.extensions:
        os.pwrite(fd, data, base + sector * SECTOR)
    os.pwrite(fd, initial_extension(version, uuid_bytes, label), base)
