# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's Compute Engine resources: names derived from volume names, our facts kept
in labels and the description, and resources described as modules return them.

GCE names are [a-z]([-a-z0-9]{0,61}[a-z0-9])? and label values 63 characters of [a-z0-9_-], so
a volume's real name (its TFS label), UUID and fingerprint live in the description as JSON; the
resource name is derived from the real name, the same way every time, so it is the identity.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import re

from ansible_collections.unikernel.ops.plugins.module_utils.cloud import identity
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

GIB = 1024 ** 3
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABEL_KEY_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_LABEL_VALUE_RE = re.compile(r"^[a-z0-9_-]{0,63}$")
LABEL_CREATED_BY = "createdby"  # GCE label keys are lower case: ops' CreatedBy=ops
LABEL_KIND = "unikernel-ops"
MARK = "unikernel.ops"  # the description's JSON says who wrote it


def resource_name(name, suffix=None):
    """A valid GCE name for `name`: itself when valid, else lower-cased with invalid characters
    replaced and a short hash of the real name appended (so two names never collide); with a
    suffix (one build of a volume's image), that is appended within the 63 characters."""
    if _NAME_RE.match(name):
        out = name
    else:
        s = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
        if not s or not s[0].isalpha():
            s = "v-" + s
        tail = "-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        out = s[:63 - len(tail)].rstrip("-") + tail
    if suffix:
        tail = "-" + suffix
        out = out[:63 - len(tail)].rstrip("-") + tail
    return out


def labels_for(kind, user):
    out = dict(user or {})
    for k, v in out.items():
        if not _LABEL_KEY_RE.match(k) or not _LABEL_VALUE_RE.match(v):
            raise OpsError("label %s=%s is not a valid GCE label (keys [a-z][a-z0-9_-], values "
                           "[a-z0-9_-], at most 63 characters)" % (k, v))
        if k in (LABEL_CREATED_BY, LABEL_KIND):
            raise OpsError("label %r is set by the collection and cannot be given" % k)
    out[LABEL_CREATED_BY] = identity.CREATED_BY
    out[LABEL_KIND] = kind
    return out


def user_labels(labels):
    return dict((k, v) for k, v in (labels or {}).items()
                if k not in (LABEL_CREATED_BY, LABEL_KIND))


def description(facts):
    return json.dumps(dict(facts, by=MARK), sort_keys=True)


def facts_of(resource):
    """Our facts from a resource's description, or None when we did not write it."""
    try:
        data = json.loads(resource.description or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("by") == MARK else None


def ours(resource, name, kind, owner):
    """resource when the collection made it for `name` (None stays None); else the name is taken
    by something we must not touch. kind: disk, instance; owner: what the name is for."""
    if resource is None:
        return None
    facts = facts_of(resource)
    if not facts or facts.get("name") != name:
        raise OpsError("the %s name %r (for %s %r) is taken by %s %s this collection did not "
                       "make%s; choose another %s name" % (
                           kind, resource.name, owner, name, "an" if kind[0] in "aeiou" else "a",
                           kind, " (it belongs to %s %r)" % (owner, facts["name"]) if facts
                           else "", owner))
    return resource


def last(url):
    return url.rsplit("/", 1)[-1] if url else url


def describe_disk(disk, zone):
    facts = facts_of(disk) or {}
    return {"name": facts.get("name") or disk.name, "resource_name": disk.name,
            "id": str(disk.id) if disk.id else None, "uuid": facts.get("uuid"),
            "label": facts.get("name") or disk.name, "size": int(disk.size_gb) * GIB,
            "size_gib": int(disk.size_gb), "zone": last(disk.zone) or zone,
            "disk_type": last(disk.type_), "state": disk.status,
            "image": facts.get("image"), "object": facts.get("object"),
            "fingerprint": facts.get("fingerprint"), "tfs_version": facts.get("tfs_version"),
            "attachments": [last(u) for u in disk.users], "tags": user_labels(disk.labels),
            "self_link": disk.self_link, "provider": "gcp",
            "built_by_collection": bool(facts)}


def describe_image(image):
    facts = facts_of(image) or {}
    return {"name": facts.get("name") or image.name, "resource_name": image.name,
            "id": str(image.id) if image.id else None, "state": image.status,
            "fingerprint": facts.get("fingerprint"), "object": facts.get("object"),
            "size": int(image.disk_size_gb) * GIB if image.disk_size_gb else None,
            "guest_os_features": sorted(f.type_ for f in image.guest_os_features),
            "tags": user_labels(image.labels), "self_link": image.self_link, "provider": "gcp",
            "built_by_collection": bool(facts)}


# %N <-> deviceName: Nanos reads persistent-disk-N from the SCSI device id page.
ATTACH_MAX = 127


def device_name(attach_id):
    if not isinstance(attach_id, int) or isinstance(attach_id, bool) or \
            not 1 <= attach_id <= ATTACH_MAX:
        raise OpsError("attach_id %r is out of range on GCP: %%N is the deviceName "
                       "persistent-disk-N, N 1 to %d (persistent-disk-0 is the boot disk)"
                       % (attach_id, ATTACH_MAX))
    return "persistent-disk-%d" % attach_id


def device_attach_id(name):
    m = re.match(r"^persistent-disk-([0-9]+)$", name or "")
    return int(m.group(1)) if m else None


def describe_instance(inst, names=None):
    disks = []
    for d in inst.disks:
        if d.boot:
            continue
        disks.append({"device": d.device_name, "disk": last(d.source),
                      "volume": (names or {}).get(last(d.source)), "mode": d.mode,
                      "attach_id": device_attach_id(d.device_name)})
    facts = facts_of(inst) or {}
    return {"name": facts.get("name") or inst.name, "resource_name": inst.name,
            "id": str(inst.id) if inst.id else None, "state": inst.status,
            "machine_type": last(inst.machine_type), "zone": last(inst.zone),
            "image": facts.get("image"), "attachments": disks,
            "network_tags": sorted(inst.tags.items) if inst.tags else [],
            "tags": user_labels(inst.labels), "provider": "gcp"}
