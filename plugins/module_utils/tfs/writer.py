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

import codecs
import contextlib
import errno
import gc
import hashlib
import os
import signal
import stat
import struct
import sys

try:
    import fcntl
except ImportError:  # not a POSIX system
    fcntl = None

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    END_OF_LOG, EXTENSION_BYTES, EXTENSION_SECTORS, GUEST_RESERVE_SECTORS, INITIAL_SECTORS,
    LABEL_MAX, LINK_FRAME_MAX, LOG_EXTENSION_LINK, MAGIC, MAX_EXTENT_SECTORS,
    NEW_EXTENSION_THRESHOLD, SECTOR, SEGMENT_RESERVE, TUPLE_AVAILABLE, TUPLE_EXTENDED,
    Encoder, FileTuple, encode_varint,
)
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import set_size

DATA_START_SECTOR = INITIAL_SECTORS + EXTENSION_SECTORS + GUEST_RESERVE_SECTORS  # 3073
# Files up to this size are read and written in batches; larger ones go through
# copy_file_range, which copies inside the kernel (and may share blocks on reflink filesystems).
SMALL_FILE = 256 * 1024
BATCH_BYTES = 1024 * 1024
COPY_CHUNK = 64 * 1024 * 1024


def sectors_for(nbytes):
    return -(-nbytes // SECTOR)


class Inline:
    """File data given as bytes (a generated /etc/passwd) instead of a host path."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data


def shown(path):
    """A path (bytes or str) as a message shows it: bytes that are not UTF-8 as \\xNN, so that
    the message is text and the user sees which bytes they are."""
    if isinstance(path, str):
        try:
            path = path.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate that no file name decoded to
            return path.encode("utf-8", "backslashreplace").decode("utf-8")
    return path.decode("utf-8", "backslashreplace")


# Nanos resolves every path a guest opens as UTF-8 and fails an invalid sequence with ENOENT
# (src/fs/fs.c, filesystem_resolve_internal): a name or link target that is not UTF-8 could be
# stored but never reached.
_NOT_UTF8 = ("is not valid UTF-8 (\\xNN marks a byte that is not): Nanos resolves every path as UTF-8 "
             "and could never %s it; %s")


def _refuse_name(path):
    return OpsError("file name %s %s" % (shown(path), _NOT_UTF8 % (
        "open", "rename it (convmv converts a tree's names) or move it out of the source")))


def _refuse_target(path, target):
    return OpsError("symlink %s points to %s, which %s" % (shown(path), shown(target), _NOT_UTF8 % (
        "follow", "point it at a UTF-8 path or move it out of the source")))


def _guest_parts(guest_path):
    try:
        if isinstance(guest_path, str):
            guest_path = guest_path.encode("utf-8")
        else:
            guest_path.decode("utf-8")
    except UnicodeError:
        raise OpsError("guest path %s %s" % (shown(guest_path), _NOT_UTF8 % ("open", "give it in UTF-8")))
    parts = [p for p in guest_path.split(b"/") if p]
    if any(p in (b".", b"..") for p in parts):
        raise OpsError("guest path %r must not contain . or .." % shown(guest_path))
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
                raise OpsError("%s is a file in the image, not a directory" % shown(part))
            node = nxt
        return node[b"children"]

    def _place(self, guest_path, node):
        parts = _guest_parts(guest_path)
        if not parts:
            raise OpsError("cannot place a file at /")
        children = self.directory(b"/".join(parts[:-1]))
        if parts[-1] in children:
            raise OpsError("%s is given twice" % shown(b"/" + b"/".join(parts)))
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


def plan_tree(source, check_readable=False, sink=None):
    """Walk `source` (its contents become the volume root) and lay it out.

    Symlinks are stored as links, never followed. Sockets, FIFOs and devices have no TFS form
    and are refused. With check_readable, every file and directory is checked for read access
    now (check mode has no later copy step to find out). With a sink (a DataCopier), each
    directory's files are handed over for copying as soon as they are laid out.
    """
    return TreePlan().add_tree("/", source, check_readable, sink)


@contextlib.contextmanager
def _gc_paused():
    """No cyclic garbage collection while a tree's tuples are built and encoded.

    Those are tens of thousands of new dicts and no cycles; each automatic collection would walk
    all of them again (a third of the planning time for 50,000 files)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _walk_into(plan, root_children, source, check_readable, sink):
    src = os.fsencode(source)
    try:
        st = os.stat(src)
    except OSError as e:
        raise OpsError("source directory %s cannot be used: %s" % (source, e.strerror))
    if not stat.S_ISDIR(st.st_mode):
        raise OpsError("source %s is not a directory" % source)
    with _gc_paused():
        _walk(plan, root_children, src, check_readable, sink)


_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
_UTF8_FS = codecs.lookup(_FS_ENCODING).name == "utf-8"


def _utf8_entries(found, prefix):
    """A directory's (name as bytes, DirEntry), sorted as bytes (as stored); a name that is not
    UTF-8 is refused."""
    if _UTF8_FS:
        try:  # strict: the name's own bytes, or an error when they are not UTF-8
            return sorted((e.name.encode("utf-8"), e) for e in found)
        except UnicodeEncodeError:
            pass
    entries = sorted((e.name.encode(_FS_ENCODING, _FS_ERRORS), e) for e in found)
    for pair in entries:
        try:
            pair[0].decode("utf-8")
        except UnicodeDecodeError:
            raise _refuse_name(prefix + pair[0])
    return entries


def _walk(plan, root_children, src, check_readable, sink):
    # This loop runs once per file of the tree: state is kept in locals. Each directory is
    # opened once and its entries are looked at relative to it (no full-path lookups).
    # The signature hashes b"\0".join([abspath] + one part per entry), a directory at a time.
    sig_update = plan.signature.update
    sig_update(os.path.abspath(src))
    copies = plan.copies
    copies_append = copies.append
    data_end = plan.data_end
    files = directories = symlinks = data_bytes = 0
    stack = [(src, root_children, 0)]
    while stack:
        dirpath, children, nofollow = stack.pop()
        prefix = dirpath if dirpath.endswith(b"/") else dirpath + b"/"  # as os.path.join
        dfd = None
        try:
            dfd = os.open(dirpath, _DIR_FLAGS | nofollow)
            with os.scandir(dfd) as it:  # names are str here
                found = list(it)
        except OSError as e:
            if dfd is not None:
                os.close(dfd)
            raise OpsError("cannot read directory %s: %s" % (shown(dirpath), e.strerror))
        subdirs = []
        sig_parts = [b""]  # joined: a NUL before each part
        sig_append = sig_parts.append
        # This directory's files with data, for the sink: names, sizes, and the first sector.
        first_sector = data_end
        names, sizes = [], []
        try:
            for name, entry in _utf8_entries(found, prefix):
                try:
                    if entry.is_file(follow_symlinks=False):
                        if check_readable and not os.access(name, os.R_OK, dir_fd=dfd):
                            raise OSError(errno.EACCES, "Permission denied")
                        st = entry.stat(follow_symlinks=False)
                        size = st.st_size
                        path = prefix + name
                        sig_append(b"f%s\0%d:%d" % (path, size, st.st_mtime_ns))
                        if size:
                            nsect = -(-size // SECTOR)
                            copies_append((path, size, data_end))
                            names.append(name)
                            sizes.append(size)
                            if nsect <= MAX_EXTENT_SECTORS:
                                children[name] = FileTuple(size, data_end, nsect)
                            else:
                                children[name] = {b"filelength": size,
                                                  b"extents": _extents(data_end, nsect)}
                            data_end += nsect
                            data_bytes += size
                        else:
                            children[name] = {b"filelength": 0, b"extents": {}}
                        files += 1
                    elif entry.is_symlink():
                        target = os.readlink(name, dir_fd=dfd)
                        try:
                            target.decode("utf-8")
                        except UnicodeDecodeError:
                            raise _refuse_target(prefix + name, target)
                        children[name] = {b"linktarget": target}
                        symlinks += 1
                        sig_append(b"l%s\0%s" % (prefix + name, target))
                    elif entry.is_dir(follow_symlinks=False):
                        path = prefix + name
                        if check_readable and not os.access(name, os.R_OK | os.X_OK, dir_fd=dfd):
                            raise OSError(errno.EACCES, "Permission denied")
                        sub = {}
                        children[name] = {b"children": sub}
                        subdirs.append((path, sub, _NOFOLLOW))
                        directories += 1
                        sig_append(b"d%s" % path)
                    else:
                        raise OpsError("%s is not a regular file, directory or symlink; TFS "
                                       "cannot hold it" % shown(prefix + name))
                except OSError as e:
                    raise OpsError("cannot read %s: %s" % (shown(prefix + name), e.strerror))
        finally:
            os.close(dfd)
        # Depth-first in name order, so that data is laid out in a stable order.
        stack.extend(reversed(subdirs))
        if sink is not None and names:
            sink.add_dir(prefix, names, sizes, first_sector)
        if len(sig_parts) > 1:
            sig_update(b"\0".join(sig_parts))
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
                           % (shown(path), size, done))
        done += n


class _DataWriter:
    """Writes file data at its sectors. Small files are read (readv) straight into one reused
    buffer, their padding zeroed, which goes out in one pwrite per contiguous MiB: no bytes
    object per file. Larger files are copied with _copy_range."""

    def __init__(self, dst_fd, base=0):
        self.dst_fd = dst_fd
        self.base = base
        self.buf = bytearray(BATCH_BYTES + SMALL_FILE)
        self.view = memoryview(self.buf)
        self.start = 0  # absolute byte offset of buf[0]
        self.fill = 0  # bytes of buf in use
        self.extra = bytearray(1)  # a file that grew reads one byte more
        self.zeros = memoryview(bytes(SECTOR))

    def flush(self):
        if self.fill:
            view = self.view[:self.fill]
            offset = self.start
            while view:
                n = os.pwrite(self.dst_fd, view, offset)
                view, offset = view[n:], offset + n
            self.fill = 0

    def inline(self, data, sector):
        self.flush()
        os.pwrite(self.dst_fd, data, self.base + sector * SECTOR)

    def files(self, entries, dir_fd=None, prefix=b""):
        """Copy each (name, size, first sector); names are relative to dir_fd when given,
        shown in messages after prefix."""
        # Once per file of the tree: the buffer's fill level is kept in a local.
        base = self.base
        view = self.view
        extra = self.extra
        zeros = self.zeros
        readv = os.readv
        open_ = os.open
        close = os.close
        flags = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        fill = self.fill
        for name, size, sector in entries:
            offset = base + sector * SECTOR
            try:
                fd = open_(name, flags, dir_fd=dir_fd)
            except OSError as e:
                raise OpsError("cannot read %s: %s" % (shown(prefix + name), e.strerror))
            try:
                if size <= SMALL_FILE:
                    if fill and (self.start + fill != offset or fill + size > BATCH_BYTES):
                        self.fill = fill
                        self.flush()
                        fill = 0
                    if not fill:
                        self.start = offset
                    got = readv(fd, [view[fill:fill + size], extra])
                    if got != size:
                        raise OpsError("%s changed size while it was being copied (expected %d "
                                       "bytes, got %d)" % (shown(prefix + name), size, got))
                    fill += size
                    pad = -size % SECTOR
                    if pad:  # the buffer is reused: padding is zeroed here
                        view[fill:fill + pad] = zeros[:pad]
                        fill += pad
                else:
                    self.fill = fill
                    self.flush()
                    fill = 0
                    _copy_range(fd, self.dst_fd, size, offset, prefix + name)
            except OSError as e:
                raise OpsError("cannot copy %s: %s" % (shown(prefix + name), e.strerror))
            finally:
                close(fd)
        self.fill = fill


def _copy_data(dst_fd, copies, base=0):
    """Copy each (source, size, first sector) to base + sector * 512 of dst_fd."""
    writer = _DataWriter(dst_fd, base)
    run = []  # host files between two Inline ones
    for copy in copies:
        if isinstance(copy[0], Inline):
            writer.files(run)
            run = []
            writer.inline(copy[0].data, copy[2])
        else:
            run.append(copy)
    writer.files(run)
    writer.flush()


# A directory's files as the copier receives them: path length, file count, length of the
# names, first sector; then the path, the sizes (u64 each) and the names joined by NULs.
_DIR = struct.Struct("<IIIQ")


def die_with(parent):
    """This (forked) process gets SIGKILL when its parent dies (Linux's PR_SET_PDEATHSIG), so a
    killed build leaves no copier running on; and exits now if the parent is already gone."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes  # pylint: disable=import-outside-toplevel
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)


class DataCopier:
    """Copies file data in a forked child while the parent goes on planning and encoding.

    A tree of many small files costs as much Python time to plan and encode as to copy; on a
    machine with two cores or more both run at once. The parent sends each directory's files
    (names, sizes, sectors) down a pipe; the child opens the directory once and its files
    relative to it. The child reports the first error (an unreadable file) through a pipe; the
    parent raises it from finish(). Use as a context manager: leaving it by an exception kills
    the child.
    """

    def __init__(self, fd):
        rec_r, self._rec_w = os.pipe()
        try:  # a deep pipe (Linux): the parent rarely waits for the child to catch up
            if fcntl is not None and sys.platform.startswith("linux"):
                fcntl.fcntl(self._rec_w, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except OSError:
            pass
        self._err_r, err_w = os.pipe()
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the child: copy what arrives, then exit without cleanup handlers
            code = 0
            try:
                die_with(parent)
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
        gc.disable()  # this process makes no cycles
        writer = _DataWriter(fd)
        with os.fdopen(rec_fd, "rb", buffering=1 << 20) as records:
            read = records.read
            while True:
                head = read(_DIR.size)
                if not head:
                    break
                plen, count, nlen, sector = _DIR.unpack(head)
                prefix = read(plen)
                sizes = struct.unpack("<%dQ" % count, read(8 * count))
                names = read(nlen).split(b"\0")
                if len(names) != count or len(prefix) != plen:
                    raise OpsError("internal: a truncated record reached the copier")
                entries = []
                for name, size in zip(names, sizes):  # the data is contiguous, in this order
                    entries.append((name, size, sector))
                    sector += -(-size // SECTOR)
                try:
                    dir_fd = os.open(prefix, _DIR_FLAGS)
                except OSError as e:
                    raise OpsError("cannot read directory %s: %s"
                                   % (shown(prefix), e.strerror))
                try:
                    writer.files(entries, dir_fd, prefix)
                finally:
                    os.close(dir_fd)
        writer.flush()

    def add_dir(self, prefix, names, sizes, first_sector):
        """Queue one directory's files that hold data (names, their sizes, laid out one after
        the other from first_sector); prefix is the directory's path and ends with '/'."""
        blob = b"\0".join(names)  # a name never holds a NUL
        data = b"".join((_DIR.pack(len(prefix), len(names), len(blob), first_sector), prefix,
                         struct.pack("<%dQ" % len(sizes), *sizes), blob))
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
        set_size(fd, base + size)
    if copier is not None:
        copier.finish()
    else:
        _copy_data(fd, plan.copies, base)
    for sector, data in log.extensions:
        os.pwrite(fd, data, base + sector * SECTOR)
    os.pwrite(fd, initial_extension(version, uuid_bytes, label), base)
