# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's Azure resources: names, tags (ops' CreatedBy=ops plus the collection's own
keys), %N as a LUN, and resources described as modules return them.

A resource is ours when its tags say CreatedBy=ops, our kind and the name it was made for; a
resource of the same name without them belongs to someone else and is never changed or deleted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

GIB = 1024 ** 3
# Managed disk and image names: 1-80 of letters, digits, _ - .; start with a letter or digit,
# end with a letter, digit or _. VM names are the same, at most 64.
_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9_])?$")
_BAD_TAG_KEY = re.compile(r"[<>%&\\?/]")
CREATED_BY = "CreatedBy"
OURS = (identity.KIND, identity.LABEL)
LUN_MAX = 63


def resource_name(name, suffix=None):
    """A valid Azure name for `name`: itself when valid, else with invalid characters replaced
    and a short hash of the real name appended (two names never collide); a suffix (one build
    of an image's disk) is appended within 64 characters."""
    if _NAME_RE.match(name):
        out = name
    else:
        s = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")
        tail = "-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        out = ("v" + s if not s[:1].isalnum() else s)[:64 - len(tail)] + tail
    if suffix:
        tail = "-" + suffix
        out = out[:64 - len(tail)].rstrip("-.") + tail
    return out


def tags_for(kind, name, user=None, **facts):
    """Tags of a resource the collection makes for `name`; user tags may not use our keys."""
    out = {}
    for k, v in (user or {}).items():
        k, v = str(k), str(v)
        if _BAD_TAG_KEY.search(k) or len(k) > 512 or len(v) > 256:
            raise OpsError("tag %r is not a valid Azure tag (keys at most 512 characters without "
                           "< > %% & \\ ? /, values at most 256)" % k)
        if k == CREATED_BY or k.startswith(identity.KEY_PREFIX):
            raise OpsError("tag %r is set by the collection and cannot be given" % k)
        out[k] = v
    out[CREATED_BY] = identity.CREATED_BY
    out[identity.KIND] = kind
    out[identity.LABEL] = name
    for k, v in facts.items():
        if v is not None:
            out[identity.KEY_PREFIX + k.replace("_", "-")] = str(v)
    return out


def fact(tags, key):
    return (tags or {}).get(identity.KEY_PREFIX + key.replace("_", "-"))


def user_tags(tags):
    return dict((k, v) for k, v in (tags or {}).items()
                if k != CREATED_BY and not k.startswith(identity.KEY_PREFIX))


def is_ours(resource, kind):
    tags = resource.tags or {}
    return tags.get(CREATED_BY) == identity.CREATED_BY and tags.get(identity.KIND) == kind


def ours(resource, name, kind, what):
    """resource when the collection made it as `kind` for `name` (None stays None); else the
    name is taken by something we must not touch."""
    if resource is None:
        return None
    tags = resource.tags or {}
    if is_ours(resource, kind) and tags.get(identity.LABEL) == name:
        return resource
    holder = tags.get(identity.LABEL) if is_ours(resource, kind) else None
    raise OpsError("the Azure name %r (for %s %r) is taken by a %s this collection did not make "
                   "for it%s; choose another name, or remove that resource yourself"
                   % (resource.name, what, name, _type(resource),
                      " (it holds %s %r)" % (what, holder) if holder else ""))


def _type(resource):
    return (resource.type or "resource").rsplit("/", 1)[-1].rstrip("s") or "resource"


def last(resource_id):
    return resource_id.rstrip("/").rsplit("/", 1)[-1] if resource_id else resource_id


def same_id(a, b):
    return bool(a and b) and a.lower() == b.lower()


def text(value):
    """An SDK enum or string as plain text."""
    return getattr(value, "value", value)


def lun(attach_id):
    """%N is the LUN on Azure (Nanos' storvsc reads the LUN as the attach id)."""
    if not isinstance(attach_id, int) or isinstance(attach_id, bool) or \
            not 0 <= attach_id <= LUN_MAX:
        raise OpsError("attach_id %r is out of range on Azure: %%N is the data disk's LUN, 0 to "
                       "%d" % (attach_id, LUN_MAX))
    return attach_id


def describe_disk(disk):
    tags = disk.tags or {}
    size_bytes = disk.disk_size_bytes or (disk.disk_size_gb or 0) * GIB
    return {"name": tags.get(identity.LABEL) or disk.name, "resource_name": disk.name,
            "id": disk.id, "uuid": fact(tags, "uuid"), "label": tags.get(identity.LABEL)
            or disk.name, "size": int(size_bytes), "size_gib": disk.disk_size_gb,
            "location": disk.location, "disk_type": text(disk.sku.name) if disk.sku else None,
            "state": text(disk.disk_state), "fingerprint": fact(tags, "fingerprint"),
            "tfs_version": fact(tags, "tfs_version"),
            "attachments": [last(disk.managed_by)] if disk.managed_by else [],
            "tags": user_tags(tags), "provider": "azure",
            "built_by_collection": is_ours(disk, "volume")}


def describe_image(image, disk=None):
    tags = image.tags or {}
    return {"name": tags.get(identity.LABEL) or image.name, "resource_name": image.name,
            "id": image.id, "state": text(image.provisioning_state),
            "fingerprint": fact(tags, "fingerprint"), "disk": fact(tags, "disk"),
            "size": int(disk.disk_size_bytes) if disk is not None and disk.disk_size_bytes
            else None, "location": image.location, "tags": user_tags(tags),
            "provider": "azure", "built_by_collection": is_ours(image, "image")}


def power_state(vm):
    """running, stopped, deallocated, starting... from the instance view (None if unknown)."""
    view = vm.instance_view
    for s in (view.statuses if view and view.statuses else []):
        if (s.code or "").startswith("PowerState/"):
            return s.code.split("/", 1)[1]
    return None


def data_disks(vm):
    return list((vm.storage_profile.data_disks if vm.storage_profile else None) or [])


def describe_vm(vm, names=None):
    tags = vm.tags or {}
    disks = [{"lun": d.lun, "attach_id": d.lun, "disk": last(d.managed_disk.id)
              if d.managed_disk else d.name,
              "volume": (names or {}).get(last(d.managed_disk.id).lower()
                                          if d.managed_disk else None),
              "read_only": False} for d in data_disks(vm)]  # Azure has no read-only attachment
    return {"name": tags.get(identity.LABEL) or vm.name, "resource_name": vm.name, "id": vm.id,
            "state": power_state(vm) or text(vm.provisioning_state),
            "provisioning_state": text(vm.provisioning_state),
            "vm_size": text(vm.hardware_profile.vm_size) if vm.hardware_profile else None,
            "location": vm.location, "image": fact(tags, "image"),
            "attachments": sorted(disks, key=lambda d: d["lun"]), "tags": user_tags(tags),
            "provider": "azure"}
