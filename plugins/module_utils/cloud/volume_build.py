# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every cloud's volume backend does before it talks to its cloud: plan the source tree,
fingerprint it, size the volume, and build the same TFS the on-prem backend writes into a
scratch file that is always removed."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.writer import (
    TreePlan, plan_tree, prepare, write_filesystem,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.content import listing
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import (
    new_volume_size, plan_facts,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    normalize_uuid, parse_size, smallest_writable_size, validate_name,
)
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import set_size

GIB = 1024 ** 3


def gib_for(size):
    return -(-size // GIB)


def checked_spec(spec):
    """A volume spec's name and UUID checked (the UUID normalized in place); its size in bytes,
    None when not given."""
    validate_name(spec.name)
    if spec.uuid:
        spec.uuid = normalize_uuid(spec.uuid)
    return parse_size(spec.size) if spec.size is not None else None


def select(volumes, name=None, uuid=None):
    """The described volumes of that name and UUID (either may be None)."""
    uuid = normalize_uuid(uuid) if uuid else None
    return [v for v in volumes if (name is None or v["name"] == name)
            and (uuid is None or v["uuid"] == uuid)]


class SourcePlan:
    """A volume spec's source, planned and fingerprinted (file hashes cached per cloud)."""

    def __init__(self, home, provider, spec, check_mode):
        self.spec = spec
        if spec.source:
            home.check_source(spec.source)
        self.plan = plan_tree(spec.source, check_mode) if spec.source else TreePlan()
        self.log = prepare(self.plan, version=spec.tfs_version)
        self.need = smallest_writable_size(self.plan, self.log)
        self.cache = identity.HashCache(home, provider, "volumes", spec.name)
        self.digest, self.hashes = identity.volume_fingerprint(
            self.plan, self.log, spec.tfs_version, self.cache.load())

    def save_hashes(self):
        if self.spec.source:
            self.cache.save(self.hashes)

    def facts(self):
        return plan_facts(self.plan, self.log, self.spec.name, self.spec.tfs_version)

    def entries(self):
        return listing(self.plan.root)

    def size(self, want_size):
        """The size a new volume gets (before the cloud's rounding)."""
        return new_volume_size(self.spec.size, want_size, self.plan, self.need)

    def reasons(self, fingerprint, tfs_version):
        """Why an existing volume does not hold this source (empty: it does)."""
        out = []
        if self.spec.source:
            if not fingerprint:
                out.append("it was not built by this collection, so its content cannot be "
                           "compared with the source")
            elif fingerprint != self.digest:
                out.append("its content differs from the source")
        if tfs_version and int(tfs_version) != self.spec.tfs_version:
            out.append("it is TFS version %s, not %d" % (tfs_version, self.spec.tfs_version))
        return out

    @contextlib.contextmanager
    def built(self, home, uuid_bytes, size):
        """The TFS at `size` bytes in a scratch file (sparse); yields its fd."""
        with home.scratch_file() as fd:
            set_size(fd, size)
            write_filesystem(fd, self.plan, self.log, uuid_bytes, self.spec.name, size,
                             self.spec.tfs_version)
            yield fd


def mismatch_warning(spec, reasons, uuid):
    return ("volume %r does not match %s: %s. Nothing in it was changed; set force: true to "
            "rebuild it from the source (keeping UUID %s). A rebuild replaces everything a "
            "guest wrote to it." % (spec.name, spec.source, "; ".join(reasons), uuid))
