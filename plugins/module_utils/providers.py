# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The provider interface every volume backend implements, and the registry modules use.

A module never branches on the provider: it builds a VolumeSpec, asks volume_provider() for the
backend and calls one method. Cloud backends (AWS, GCP, Azure) register here the same way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError


class VolumeSpec:
    """What the user asked for, already validated by the module's argument spec."""

    def __init__(self, name=None, uuid=None, size=None, source=None, force=False, tfs_version=5):
        self.name = name
        self.uuid = uuid
        self.size = size
        self.source = source
        self.force = force
        self.tfs_version = tfs_version


class Outcome:
    """What a provider did (or, in check mode, would do).

    actions: human-readable steps, as containers.podman returns the commands it ran.
    before/after: text for Ansible's diff.
    """

    def __init__(self, changed=False, volume=None, before="", after="", warnings=None,
                 actions=None):
        self.changed = changed
        self.volume = volume
        self.before = before
        self.after = after
        self.warnings = warnings or []
        self.actions = actions or []


class VolumeProvider:
    """Interface of a volume backend."""

    name = None

    def list_volumes(self, name=None, uuid=None, contents=False, checksums=False):
        """Return a list of volume dicts."""
        raise NotImplementedError

    def present(self, spec, check_mode=False, want_diff=False):
        """Make the volume exist as specified; return an Outcome (diff texts if want_diff)."""
        raise NotImplementedError

    def absent(self, spec, check_mode=False, want_diff=False):
        """Make the volume not exist; return an Outcome (diff texts if want_diff)."""
        raise NotImplementedError


def _onprem(options):
    from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes
    return OnPremVolumes(ops_dir=options.get("ops_dir"))


# Factories are imported lazily so that a provider's SDK is only needed when it is used.
PROVIDERS = {"onprem": _onprem}


def volume_provider(name, options):
    try:
        factory = PROVIDERS[name]
    except KeyError:
        raise OpsError("unknown provider %r; available: %s" % (name, ", ".join(sorted(PROVIDERS))))
    return factory(options)
