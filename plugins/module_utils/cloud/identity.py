# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the collection knows its cloud resources again: by name, plus its own keys for the
volume's label and UUID and a fingerprint of the content it was built from.

The fingerprint is the same digest local images use (structure and every file's content); file
hashes are cached in the ops home so an unchanged re-run reads no file data.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import (
    drop_state, read_state, write_state,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.digest import content_digest

# Keys kept on every resource the collection makes (tags on AWS and Azure, labels on GCP).
CREATED_BY = "ops"  # as ops tags its resources, so that `ops volume list -t aws` lists ours
KEY_PREFIX = "unikernel-ops:"
KIND = KEY_PREFIX + "kind"
LABEL = KEY_PREFIX + "label"
UUID = KEY_PREFIX + "uuid"
FINGERPRINT = KEY_PREFIX + "fingerprint"
TFS_VERSION = KEY_PREFIX + "tfs-version"
SNAPSHOT = KEY_PREFIX + "snapshot"


def volume_fingerprint(plan, log, version, known=None):
    """(digest, file hashes) of what a volume built from this plan holds."""
    return content_digest([(plan, log)], (b"tfs-volume-v%d" % version,), known)


class HashCache:
    """File hashes of the last fingerprint of one cloud resource, in the ops home (owner-only)."""

    def __init__(self, home, provider, kind, name):
        self.path = home.state("cloud", provider, kind, name + ".hashes.json")

    def load(self):
        return read_state(self.path, {})

    def save(self, hashes):
        write_state(self.path, hashes)

    def drop(self):
        drop_state(self.path)
