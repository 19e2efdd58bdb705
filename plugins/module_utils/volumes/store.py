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
    LABEL_MAX, SECTOR, format_uuid, parse_uuid,
)

SIZE_GRAMMAR = ("a whole number of bytes, optionally followed by k, m or g (any case, base 1024), "
                "for example 512, 56k, 500m, 10g")
_SIZE_RE = re.compile(r"^([0-9]+)([kmg]?)$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}
_FILE_RE = re.compile(r"^(?P<name>[^:/]+):(?P<uuid>[0-9a-fA-F-]{36})\.raw$")


def parse_size(value):
    """ops' size grammar, rounded up to whole 512-byte sectors; anything else is an error."""
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
        raise OpsError("size %r is not valid: use %s, or leave size out for a volume sized to "
                       "its content" % (value, SIZE_GRAMMAR))
    return -(-nbytes // SECTOR) * SECTOR


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
