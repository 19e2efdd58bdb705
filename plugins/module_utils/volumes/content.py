# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a volume holds compared with the source directory it should hold.

Used to decide idempotence (nothing differs: no change) and to render --diff. Structure (paths,
types, sizes, link targets) comes from the volume's log; file data is compared byte for byte,
unless the volume file and the source are provably untouched since this collection built one
from the other (see Fingerprint).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import (
    drop_state, read_state, write_state,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import walk_tree

COMPARE_CHUNK = 1024 * 1024


def listing(root):
    """{path: (kind, size, target)} for a root tuple, decoded or planned."""
    return dict((e.path, (e.kind, e.size, e.target)) for e in walk_tree(root))


def render(entries, modified=()):
    """One line per entry, for a readable unified diff."""
    lines = []
    for path in sorted(entries):
        kind, size, target = entries[path]
        name = os.fsdecode(path)
        if kind == "directory":
            lines.append("%s/" % name)
        elif kind == "symlink":
            lines.append("%s -> %s" % (name, os.fsdecode(target)))
        else:
            lines.append("%s  %d bytes%s" % (name, size, "  (content differs)" if path in modified else ""))
    return lines


class TreeDiff:
    def __init__(self, added, removed, changed, modified):
        self.added = added  # paths only in the source
        self.removed = removed  # paths only in the volume
        self.changed = changed  # type, size or link target differ
        self.modified = modified  # same size, different bytes

    def __bool__(self):
        return bool(self.added or self.removed or self.changed or self.modified)

    __nonzero__ = __bool__

    def summary(self):
        parts = []
        for what, items in (("only in the source", self.added), ("only in the volume", self.removed),
                            ("of another type or size", self.changed),
                            ("with other content", self.modified)):
            if items:
                sample = ", ".join(os.fsdecode(p) for p in sorted(items)[:5])
                more = " and %d more" % (len(items) - 5) if len(items) > 5 else ""
                parts.append("%d %s (%s%s)" % (len(items), what, sample, more))
        return "; ".join(parts)


def _same_bytes(src_path, tfs, entry):
    try:
        fd = os.open(src_path, os.O_RDONLY)
    except OSError:
        return False
    try:
        pos = 0
        for chunk in tfs.iter_file(entry, COMPARE_CHUNK):
            if os.pread(fd, len(chunk), pos) != chunk:
                return False
            pos += len(chunk)
        return os.pread(fd, 1, pos) == b""
    finally:
        os.close(fd)


def compare(plan, source, tfs, compare_data=True):
    """Diff a TreePlan of `source` against an open TFS."""
    want = listing(plan.root)
    have = listing(tfs.root)
    added = sorted(set(want) - set(have))
    removed = sorted(set(have) - set(want))
    changed, modified = [], []
    src = os.fsencode(source)
    for path in sorted(set(want) & set(have)):
        if want[path] != have[path]:
            changed.append(path)
        elif compare_data and want[path][0] == "file" and want[path][1] > 0:
            if not _same_bytes(src + path, tfs, tfs.lookup(path)):
                modified.append(path)
    return TreeDiff(added, removed, changed, modified)


class Fingerprint:
    """Proof that a volume still holds what we built it from, without reading its data.

    Kept beside the ops home's volumes (never inside volumes/, which ops lists): the source's
    stat signature (paths, sizes, mtimes, link targets) and the volume file's size and mtime
    right after we wrote it. If both still match, the bytes match too; a guest that wrote to the
    volume, or an edited source file, changes one of them and we compare byte for byte.
    """

    def __init__(self, path):
        self.path = path

    def _load(self):
        return read_state(self.path)

    @staticmethod
    def _volume_stat(volume_path):
        st = os.stat(volume_path)
        return [st.st_size, st.st_mtime_ns, st.st_ino]

    def proven(self, signature, volume_path):
        """The facts saved with the proof when it still holds, else None."""
        data = self._load()
        try:
            if data and data.get("signature") == signature and \
                    data.get("volume") == self._volume_stat(volume_path):
                return data.get("facts")
        except OSError:
            pass
        return None

    def save(self, signature, volume_path, facts):
        write_state(self.path, {"signature": signature, "volume": self._volume_stat(volume_path),
                                "facts": facts})

    def drop(self):
        drop_state(self.path)


def signature_of(plan):
    return plan.signature.hexdigest() if getattr(plan, "signature", None) else None
