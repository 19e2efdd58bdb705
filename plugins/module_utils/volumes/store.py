# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local volumes in the ops home: names, sizes, and the <name>:<uuid>.raw files.

The rules here are ops' own where ops is right (file naming, size grammar) and stricter where
ops is known to fail its users (invalid sizes ignored, unusable or duplicate names accepted).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    EXTENSION_BYTES, EXTENSION_SECTORS, LABEL_MAX, NEW_EXTENSION_THRESHOLD, SECTOR,
    TFSFormatError, format_uuid, parse_uuid,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import (
    NO_TFS, TFS, HeaderError, PastTheEnd,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.writer import required_sectors

SIZE_GRAMMAR = ("a whole number of bytes, optionally followed by k, m or g (any case, base 1024), "
                "for example 512, 56k, 500m, 10g")
_SIZE_RE = re.compile(r"^([0-9]+)([kmg]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_FILE_RE = re.compile(r"^(?P<name>[^:/]+):(?P<uuid>[0-9a-fA-F-]{36})\.raw$")
# Log bytes the guest's first write appends: a new file's tuple (a name of up to 255 bytes), its
# extents tuple and the extent, its length and times, each in its own frame.
ONE_WRITE_LOG_BYTES = 1024
UNREADABLE = "it cannot be read"
UNREADABLE_REMEDY = "make it readable and writable for this user (chmod, chown), or run as its owner"
DAMAGED_REMEDY = ("restore it from a backup, or delete it (unikernel.ops.ops_volume with state: absent) "
                  "and create it again")


def parse_size(value, what="volume"):
    """ops' size grammar, rounded up to whole 512-byte sectors; anything else is an error.

    `what` is what is sized ("volume", "image"), for the message."""
    if isinstance(value, bool):
        raise OpsError("size %r is not valid: use %s" % (value, SIZE_GRAMMAR))
    if isinstance(value, int):
        text = str(value)
    else:
        text = str(value).strip()
    m = _SIZE_RE.match(text)
    if not m:
        raise OpsError("size %r is not valid: use %s (ops would silently ignore it)"
                       % (value, SIZE_GRAMMAR))
    nbytes = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if nbytes <= 0:
        raise OpsError("size %r is not valid: use %s, or leave size out for a%s %s sized to its "
                       "content" % (value, SIZE_GRAMMAR, "n" if what[0] in "aeiou" else "", what))
    return -(-nbytes // SECTOR) * SECTOR


def smallest_writable_size(plan, log):
    """Bytes of the smallest filesystem for a planned tree that still lets the guest write.

    The layout keeps free the two log extensions the guest reserves before its first data write
    (tfs.md, "Space the guest needs"); beyond those the guest needs one sector for the data, and
    one more extension when the last one has no room for the records of that write (the kernel
    links to a new extension when end + 74 bytes reach the extension's size).
    """
    sectors = required_sectors(plan, log) + 1
    if len(log.extensions[-1][1]) + NEW_EXTENSION_THRESHOLD + ONE_WRITE_LOG_BYTES >= EXTENSION_BYTES:
        sectors += EXTENSION_SECTORS
    return sectors * SECTOR


def human_size(nbytes):
    for unit, div in (("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if nbytes >= div:
            return "%.1f %s" % (nbytes / div, unit)
    return "%d B" % nbytes


def validate_name(name):
    """A volume name is its TFS label and part of its file name; refuse what cannot work."""
    if not name:
        raise OpsError("a volume name must not be empty")
    raw = name.encode("utf-8", "surrogateescape")
    problems = []
    if len(raw) > LABEL_MAX:
        problems.append("it is %d bytes long and Nanos only mounts labels of at most %d bytes"
                        % (len(raw), LABEL_MAX))
    bad = sorted(set(c for c in name if c in ":/" or c.isspace() or ord(c) < 32 or ord(c) == 127))
    if bad:
        problems.append("it contains %s (':' and '/' break ops' volume files and listing; "
                        "whitespace and control characters break --mounts)"
                        % ", ".join(repr(c) for c in bad))
    if name.startswith("%"):
        problems.append("a leading '%' is how manifests name attach ids (%N)")
    if name.startswith("."):
        problems.append("a leading '.' hides the volume file")
    if problems:
        raise OpsError("volume name %r cannot be used: %s" % (name, "; ".join(problems)))
    return name


def normalize_uuid(value):
    try:
        return format_uuid(parse_uuid(value))
    except ValueError as e:
        raise OpsError(str(e))


class VolumeFile:
    """A volume file found in <ops home>/volumes."""

    def __init__(self, name, uuid, path, size, mtime):
        self.name = name
        self.uuid = uuid
        self.path = path
        self.size = size
        self.mtime = mtime

    @property
    def created(self):
        return datetime.datetime.fromtimestamp(self.mtime, datetime.timezone.utc).isoformat()


def volume_path(volumes_dir, name, uuid):
    return os.path.join(volumes_dir, "%s:%s.raw" % (name, uuid))


def list_volume_files(volumes_dir):
    """Every <name>:<uuid>.raw in the folder, as ops lists them; other files are ignored."""
    try:
        names = os.listdir(volumes_dir)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise OpsError("cannot list %s: %s" % (volumes_dir, e.strerror))
    out = []
    for fname in sorted(names):
        m = _FILE_RE.match(fname)
        if not m:
            continue
        path = os.path.join(volumes_dir, fname)
        try:
            st = os.stat(path)
        except OSError:
            continue  # removed while listing
        out.append(VolumeFile(m.group("name"), m.group("uuid").lower(), path, st.st_size,
                              st.st_mtime))
    return out


def find_volume(volumes, name=None, uuid=None):
    """The one volume with this name and/or UUID, or None; several is an error ops hides."""
    found = [v for v in volumes
             if (name is None or v.name == name) and (uuid is None or v.uuid == uuid)]
    if len(found) > 1:
        uuids = ", ".join(v.uuid for v in found)
        raise OpsError("%d volumes are named %r (UUIDs %s); ops cannot tell them apart either. "
                       "Pass uuid to choose one." % (len(found), name, uuids),
                       volumes=[v.path for v in found])
    return found[0] if found else None


def _problem(error):
    """What a reader's error says is wrong with a volume file, worded for our messages (which
    name the volume and file first)."""
    if isinstance(error, PastTheEnd):
        if error.what == "header":
            return "it is cut short: the file has %d bytes, less than its 512-byte header" % (
                error.disk_bytes,)
        where = "its log runs to" if error.what == "log" else "%s has data up to" % error.what
        return "it is cut short: %s byte %d but the file has %d bytes" % (
            where, error.end, error.disk_bytes)
    if isinstance(error, HeaderError):
        if error.reason == NO_TFS:
            return "its header is damaged (sector 0 does not start with the TFS magic NVMTFS)"
        return "its header is damaged (%s)" % error.reason
    return "its log is damaged (%s)" % error.reason


def open_sound_tfs(path):
    """(open TFS, None) for a volume file whose header and log read and that holds all of its log
    and data, or (None, what is wrong). Reads sector 0 and the log, never the data."""
    try:
        tfs = TFS(path)  # checks the header and every log extension against the file's size
    except OSError as e:
        return None, "%s (%s)" % (UNREADABLE, e.strerror)
    except TFSFormatError as e:
        return None, _problem(e)
    try:
        tfs.used_bytes()  # decodes every extent and checks it against the file's size (kept)
    except TFSFormatError as e:
        tfs.close()
        return None, _problem(e)
    return tfs, None


def open_volume_file(path, use):
    """The volume file's TFS, open, once check_volume_file's checks passed; OpsError otherwise."""
    base = os.path.basename(path)
    m = _FILE_RE.match(base)
    name = m.group("name") if m else base

    def refuse(problem, remedy=DAMAGED_REMEDY):
        raise OpsError("volume %r (%s) cannot be %s: %s. It is left as it is: %s"
                       % (name, path, use, problem, remedy), volume=path)

    tfs, problem = open_sound_tfs(path)
    if problem:
        refuse(problem, UNREADABLE_REMEDY if problem.startswith(UNREADABLE) else DAMAGED_REMEDY)
    if m:
        # Nanos mounts by the label and UUID in the header; ops lists by the file name.
        said = (tfs.label, tfs.uuid)
        if said != (name, m.group("uuid").lower()):
            tfs.close()
            refuse("its header says label %r and UUID %s, its file name %r and %s"
                   % (said[0], said[1], name, m.group("uuid").lower()),
                   "rename the file back to %s:%s.raw" % said)
    return tfs


def check_volume_file(path, use):
    """Refuse a volume file that is damaged: its TFS header (magic, version, label and UUID as its
    file name says) or its log (every extension as the reader walks it, up to its end) does not
    read, or the file is shorter than its log and file data say.

    Cheap: reads sector 0 and the log, never the data (0.2-0.4 s for 20,000 files, 2.4 s for
    100,000, most of it decoding the log).
    `use` completes "cannot be ..." in the message: "mounted by image 'web'", "grown".
    """
    open_volume_file(path, use).close()
