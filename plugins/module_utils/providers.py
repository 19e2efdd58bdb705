# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The interfaces every backend implements, and the registry modules use.

A module never branches on the provider: it asks backend(kind, params) for the backend of the
provider the user chose and calls one method of its interface below. Each provider registers its
backends in PROVIDERS.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError


class VolumeSpec:
    """What the user asked for, already validated by the module's argument spec."""

    def __init__(self, name=None, uuid=None, size=None, source=None, force=False, tfs_version=5,
                 cloud=None):
        self.cloud = cloud or {}  # cloud-only settings (volume_type, iops, tags...)
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


class Provider:
    """What every backend shares: it is built from the module's parameters."""

    @classmethod
    def from_params(cls, params):
        """Local backends need only the ops home; cloud backends override this."""
        return cls(params.get("ops_dir"))


class CloudBackend:
    """A cloud backend keeps the module's parameters: its connection options are among them.
    Listed first among a backend's bases, so that its from_params is the one used."""

    def __init__(self, params):
        self.params = params

    @classmethod
    def from_params(cls, params):
        return cls(params)


class VolumeProvider(Provider):
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


class ImageProvider(Provider):
    """Interface of an image backend."""

    def list_images(self, name=None):
        raise NotImplementedError

    def present(self, spec, config=None, force=False, check_mode=False, want_diff=False):
        raise NotImplementedError

    def absent(self, name, check_mode=False, want_diff=False):
        raise NotImplementedError


class InstanceProvider(Provider):
    """Interface of an instance backend. p: the ops_instance parameters."""

    def ensure(self, p, check_mode=False):
        """(Outcome, extra result keys)."""
        raise NotImplementedError

    def list_instances(self, name=None, check_mode=False):
        """dict(instances=[...], stale=[...])."""
        raise NotImplementedError


class MountProvider(Provider):
    """Interface of a hot-plug backend. p: the ops_mount parameters."""

    def attached(self, p, check_mode=False):
        raise NotImplementedError

    def detached(self, p, check_mode=False):
        raise NotImplementedError


KINDS = ("volumes", "images", "instances", "mounts")


# Each provider's backends by kind. The imports sit inside functions so that a provider's SDK
# is only loaded when it is used, and are plain import statements (not importlib) so that
# Ansible's module packer sees them and ships these files with every module.
def _onprem():
    from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages
    from ansible_collections.unikernel.ops.plugins.module_utils.local.instances import (
        LocalInstances,
    )
    from ansible_collections.unikernel.ops.plugins.module_utils.local.mounts import LocalMounts
    from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import (
        OnPremVolumes,
    )
    return {"volumes": OnPremVolumes, "images": LocalImages, "instances": LocalInstances,
            "mounts": LocalMounts}


def _aws():
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.images import AwsImages
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.instances import (
        AwsInstances,
    )
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.mounts import AwsMounts
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.aws.volumes import AwsVolumes
    return {"volumes": AwsVolumes, "images": AwsImages, "instances": AwsInstances,
            "mounts": AwsMounts}


def _gcp():
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.images import GcpImages
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.instances import (
        GcpInstances,
    )
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.mounts import GcpMounts
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.gcp.volumes import GcpVolumes
    return {"volumes": GcpVolumes, "images": GcpImages, "instances": GcpInstances,
            "mounts": GcpMounts}


def _azure():
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.images import (
        AzureImages,
    )
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.instances import (
        AzureInstances,
    )
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.mounts import (
        AzureMounts,
    )
    from ansible_collections.unikernel.ops.plugins.module_utils.cloud.azure.volumes import (
        AzureVolumes,
    )
    return {"volumes": AzureVolumes, "images": AzureImages, "instances": AzureInstances,
            "mounts": AzureMounts}


PROVIDERS = {"onprem": _onprem, "aws": _aws, "gcp": _gcp, "azure": _azure}


def backend(kind, params):
    """The backend of params["provider"] (default onprem) for one kind of resource, built from
    the module's parameters."""
    name = params.get("provider") or "onprem"
    if name not in PROVIDERS or kind not in KINDS:
        raise OpsError("unknown provider %r; available: %s" % (name, ", ".join(sorted(PROVIDERS))))
    return PROVIDERS[name]()[kind].from_params(params)
