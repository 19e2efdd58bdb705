# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volumes on this host: raw TFS files in <ops home>/volumes, as the ops CLI keeps them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import hashlib
import os

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.local.instances import holders_of
from ansible_collections.unikernel.ops.plugins.module_utils.local.records import InstanceStore
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome, set_size
from ansible_collections.unikernel.ops.plugins.module_utils.providers import Outcome, VolumeProvider
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    EXTENSION_SECTORS, SECTOR, TFSFormatError, format_uuid,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.writer import (
    DataCopier, TreePlan, plan_tree, prepare, write_filesystem,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.content import (
    Fingerprint, compare, listing, render, signature_of,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    check_volume_file, find_volume, human_size, list_volume_files, normalize_uuid, open_sound_tfs,
    open_volume_file, parse_size, smallest_writable_size, validate_name, volume_path,
)

MIB = 1024 * 1024
# Free space a volume gets beyond its content when no size is given (besides the 1 MiB the
# guest reserves for its log): ops' default leaves none, and the guest's first write fails.
DEFAULT_FREE = MIB
GROWN = "grown"  # what check_volume_file says a volume cannot be when growing it


def new_volume_size(size_text, want_size, plan, need):
    """The size a new volume gets (want_size, else the default for what it needs); a size that
    cannot hold the tree and leave the guest room to write is refused. Every provider's."""
    size = want_size if want_size is not None else default_size(need)
    if size < need:
        raise OpsError(
            "size %s (%d bytes) cannot hold this volume: it needs at least %d bytes (%s of "
            "file data, its log, the 1 MiB the guest keeps free for its own log, and one free "
            "sector for the guest to write to)"
            % (size_text, size, need, human_size(plan.data_bytes)), needed=need)
    return size


def default_size(need):
    return -(-(need + DEFAULT_FREE) // MIB) * MIB


def _diff_text(size, entries, modified=()):
    if size is None:
        return ""
    lines = ["size: %d (%s)" % (size, human_size(size))] + render(entries, modified)
    return "\n".join(lines) + "\n"


def _uuid_bytes(uuid):
    return bytes.fromhex(uuid.replace("-", ""))


def plan_facts(plan, log, label, version):
    """What a volume built from this plan will report, known without reading it back."""
    log_sectors = 1 + len(log.extensions) * EXTENSION_SECTORS
    data_sectors = sum(-(-c[1] // SECTOR) for c in plan.copies)
    return {"label": label, "tfs_version": version, "used": (log_sectors + data_sectors) * SECTOR,
            "files": plan.files, "directories": plan.directories, "symlinks": plan.symlinks}


def tfs_facts(tfs):
    counts = tfs.entry_counts()  # the walk that used_bytes makes, made once per TFS
    return {"label": tfs.label, "tfs_version": tfs.version, "used": tfs.used_bytes(),
            "files": counts["file"], "directories": counts["directory"],
            "symlinks": counts["symlink"]}


def content_item(tfs, entry, checksums):
    item = entry.as_dict()
    if checksums and entry.kind == "file":
        h = hashlib.sha256()
        for chunk in tfs.iter_file(entry):
            h.update(chunk)
        item["sha256"] = h.hexdigest()
    return item


class OnPremVolumes(VolumeProvider):
    name = "onprem"

    def __init__(self, ops_dir=None):
        self.home = OpsHome(ops_dir)

    # -- reading --------------------------------------------------------------------------

    def _locked(self, check_mode):
        """The volumes lock; check mode writes nothing, not even a lock file."""
        return contextlib.nullcontext() if check_mode else self.home.lock("volumes")

    def _refuse_if_in_use(self, vf, what):
        """A running QEMU with the file open would keep writing to a file that is gone."""
        holders, unknown = holders_of(InstanceStore(self.home.root), vf.path)
        if holders:
            raise OpsError("volume %r is attached to running instance %s; stop it or detach the "
                           "volume (unikernel.ops.ops_mount) before %s it" % (
                               vf.name, ", ".join(holders), what))

    def _fingerprint(self, uuid):
        return Fingerprint(self.home.state("volumes", uuid + ".json"))

    def describe(self, vf, contents=False, checksums=False):
        """A volume as modules return it; a file that is not a readable TFS gets an `error`."""
        tfs, problem = open_sound_tfs(vf.path)
        with tfs or contextlib.nullcontext():
            return self._described(vf, tfs, problem, contents, checksums)

    def _described(self, vf, tfs, problem, contents=False, checksums=False):
        """describe() of what open_sound_tfs gave for the volume file (the caller closes it)."""
        out = {"name": vf.name, "uuid": vf.uuid, "path": vf.path, "size": vf.size,
               "created": vf.created, "provider": self.name}
        if problem:
            out["error"] = "not a readable Nanos volume: %s" % problem
            return out
        try:
            out.update(tfs_facts(tfs))
            if tfs.uuid != vf.uuid:
                out["warning"] = "the file name says UUID %s but the filesystem says %s" % (
                    vf.uuid, tfs.uuid)
            if contents:
                out["contents"] = [content_item(tfs, e, checksums) for e in tfs.walk()]
        except (OSError, TFSFormatError) as e:
            out["error"] = "not a readable Nanos volume: %s" % e
        return out

    def list_volumes(self, name=None, uuid=None, contents=False, checksums=False):
        uuid = normalize_uuid(uuid) if uuid else None
        return [self.describe(v, contents=contents, checksums=checksums)
                for v in list_volume_files(self.home.volumes)
                if (name is None or v.name == name) and (uuid is None or v.uuid == uuid)]

    def _find(self, spec):
        """The existing volume the spec names, refusing a UUID that belongs to another name."""
        volumes = list_volume_files(self.home.volumes)
        by_name = find_volume(volumes, name=spec.name, uuid=spec.uuid if spec.uuid else None)
        if spec.uuid:
            other = find_volume(volumes, uuid=spec.uuid)
            if other is not None and other.name != spec.name:
                raise OpsError("UUID %s already belongs to volume %r (%s)"
                               % (spec.uuid, other.name, other.path))
            if by_name is None:
                named = [v for v in volumes if v.name == spec.name]
                if named:
                    raise OpsError("volume %r exists with UUID %s, not %s; remove it first "
                                   "(state: absent) to recreate it with another UUID"
                                   % (spec.name, named[0].uuid, spec.uuid))
        return by_name

    # -- writing --------------------------------------------------------------------------

    def _plan(self, spec, check_mode, sink=None):
        if spec.source:
            self.home.check_source(spec.source)
        plan = plan_tree(spec.source, check_mode, sink) if spec.source else TreePlan()
        log = prepare(plan, version=spec.tfs_version)
        return plan, log, smallest_writable_size(plan, log)

    def _build(self, path, plan, log, uuid_bytes, name, size, version):
        with self.home.staged_file(path) as fd:
            write_filesystem(fd, plan, log, uuid_bytes, name, size, version)

    def present(self, spec, check_mode=False, want_diff=False):
        validate_name(spec.name)
        if spec.uuid:
            spec.uuid = normalize_uuid(spec.uuid)
        want_size = parse_size(spec.size) if spec.size is not None else None
        if not check_mode:
            self.home.ensure_dir(self.home.volumes)
        with self._locked(check_mode):
            existing = self._find(spec)
            if existing is None:
                return self._create(spec, want_size, check_mode, want_diff)
            plan, log, need = self._plan(spec, check_mode)
            return self._update(spec, existing, plan, log, need, want_size, check_mode, want_diff)

    def _create(self, spec, want_size, check_mode, want_diff):
        uuid_bytes = _uuid_bytes(spec.uuid) if spec.uuid else os.urandom(16)
        uuid = format_uuid(uuid_bytes)
        path = volume_path(self.home.volumes, spec.name, uuid)
        if check_mode:
            plan, log, need = self._plan(spec, check_mode)
            size = new_volume_size(spec.size, want_size, plan, need)
        else:
            # Data is copied by a second process while this one plans and encodes the tree.
            with self.home.staged_file(path) as fd:
                copier = DataCopier(fd) if spec.source and DataCopier.worthwhile() else None
                with copier or contextlib.nullcontext():
                    plan, log, need = self._plan(spec, False, copier)
                    size = new_volume_size(spec.size, want_size, plan, need)
                    write_filesystem(fd, plan, log, uuid_bytes, spec.name, size,
                                     spec.tfs_version, copier=copier)
        after = _diff_text(size, listing(plan.root)) if want_diff else ""
        action = "create %s (%s) from %s" % (path, human_size(size), spec.source or "nothing")
        facts = plan_facts(plan, log, spec.name, spec.tfs_version)
        if check_mode:
            volume = dict(facts, name=spec.name, uuid=uuid if spec.uuid else None,
                          path=path if spec.uuid else None, size=size, provider=self.name)
            return Outcome(True, volume, "", after, actions=[action])
        vf = find_volume(list_volume_files(self.home.volumes), uuid=uuid)
        if spec.source:
            self._fingerprint(uuid).save(signature_of(plan), vf.path, facts)
        return Outcome(True, self._volume(vf, facts), "", after, actions=[action])

    def _volume(self, vf, facts):
        return dict(facts, name=vf.name, uuid=vf.uuid, path=vf.path, size=vf.size,
                    created=vf.created, provider=self.name)

    def _inspect(self, spec, vf, plan, fingerprint, use):
        """(facts, root tuple now on disk, TreeDiff or None, reasons to rebuild, uuid bytes).

        When the fingerprint proves the volume still holds what we built from this very source,
        nothing is read; otherwise a damaged volume is refused (even with force: a rebuild would
        replace what is left of it), the log is read and the data compared byte for byte.
        """
        sig = signature_of(plan)
        facts = fingerprint.proven(sig, vf.path) if spec.source else None
        if facts is not None and facts.get("tfs_version") == spec.tfs_version:
            if use == GROWN:  # the proof is of file times; a grow is rare and worth 0.2 s
                check_volume_file(vf.path, use)
            return facts, plan.root, None, [], None
        tfs = open_volume_file(vf.path, use)
        with tfs:
            facts = tfs_facts(tfs)
            diff, reasons = None, []
            if spec.source:
                diff = compare(plan, spec.source, tfs)
                if diff:
                    reasons.append(diff.summary())
                if tfs.version != spec.tfs_version:
                    reasons.append("it is TFS version %d, not %d" % (tfs.version, spec.tfs_version))
            return facts, tfs.root, diff, reasons, tfs.uuid_bytes

    def _update(self, spec, vf, plan, log, need, want_size, check_mode, want_diff):
        warnings, actions = [], []
        if want_size is not None and want_size < vf.size:
            raise OpsError("volume %r is %d bytes and size %s asks for %d: shrinking would lose "
                           "data and is refused" % (vf.name, vf.size, spec.size, want_size))
        fingerprint = self._fingerprint(vf.uuid)
        if want_size is not None and want_size > vf.size:
            use = GROWN
        elif spec.source:
            use = ("rebuilt from %s" if spec.force else "compared with %s") % spec.source
        else:
            use = "used"
        facts, root, diff, reasons, uuid_bytes = self._inspect(spec, vf, plan, fingerprint, use)
        after_size = max(vf.size, want_size or 0)
        rebuild = bool(reasons) and spec.force
        if rebuild:
            if want_size is not None:
                new_volume_size(spec.size, want_size, plan, need)  # refuses a size too small
            after_size = max(after_size, need)
            actions.append("rebuild %s from %s (%s)" % (vf.path, spec.source, "; ".join(reasons)))
        elif reasons:
            warnings.append(
                "volume %r does not match %s: %s. Nothing in it was changed; set force: true to "
                "rebuild it from the source (keeping UUID %s). A rebuild replaces everything a "
                "guest wrote to it." % (vf.name, spec.source, "; ".join(reasons), vf.uuid))
        if after_size > vf.size and not rebuild:
            actions.append("grow %s from %d to %d bytes" % (vf.path, vf.size, after_size))
        before = after = ""
        if want_diff:
            have = listing(root)
            before = _diff_text(vf.size, have)
            after = (_diff_text(after_size, listing(plan.root), diff.modified if diff else ())
                     if rebuild else _diff_text(after_size, have))
        if check_mode or not actions:
            if spec.source and not reasons and not check_mode:
                fingerprint.save(signature_of(plan), vf.path, facts)  # proof for the next run
            volume = self._volume(vf, facts)
            volume["size"] = after_size
            return Outcome(bool(actions), volume, before, after, warnings, actions)
        if rebuild:
            self._refuse_if_in_use(vf, "rebuilding")
            self._build(vf.path, plan, log, uuid_bytes or _uuid_bytes(vf.uuid), vf.name,
                        after_size, spec.tfs_version)
            facts = plan_facts(plan, log, vf.name, spec.tfs_version)
        else:
            try:
                set_size(vf.path, after_size)  # safe: the kernel takes the disk's size
            except OSError as e:
                raise OpsError("cannot grow %s: %s" % (vf.path, e.strerror))
        vf = find_volume(list_volume_files(self.home.volumes), uuid=vf.uuid)
        if spec.source and (rebuild or not reasons):
            fingerprint.save(signature_of(plan), vf.path, facts)
        return Outcome(True, self._volume(vf, facts), before, after, warnings, actions)

    def absent(self, spec, check_mode=False, want_diff=False):
        if spec.uuid:
            spec.uuid = normalize_uuid(spec.uuid)
        if spec.name is None and spec.uuid is None:
            raise OpsError("name or uuid is required")
        with self._locked(check_mode):
            vf = find_volume(list_volume_files(self.home.volumes), name=spec.name, uuid=spec.uuid)
            if vf is None:
                return Outcome(False, None)
            tfs, problem = open_sound_tfs(vf.path)  # read once: for the result and the diff
            with tfs or contextlib.nullcontext():
                volume = self._described(vf, tfs, problem)
                before = ""
                if want_diff:
                    before = (_diff_text(vf.size, listing(tfs.root)) if tfs is not None
                              else "size: %d\n(not a readable volume)\n" % vf.size)
            action = "delete %s" % vf.path
            if not check_mode:
                self._refuse_if_in_use(vf, "deleting")
                try:
                    os.unlink(vf.path)
                except OSError as e:
                    raise OpsError("cannot delete %s: %s" % (vf.path, e.strerror))
                self._fingerprint(vf.uuid).drop()
            return Outcome(True, volume, before, "", actions=[action])
