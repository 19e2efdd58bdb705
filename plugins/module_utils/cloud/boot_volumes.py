# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ops_instance's `volumes` for a cloud instance: each a volume name or {volume, attach_id,
read_only}, checked before any request (every cloud has its own range of %N)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError


class VolumeRef:
    """A cloud volume as the image's mount check sees one (path: the cloud's id)."""

    def __init__(self, name, uuid, path):
        self.name, self.uuid, self.path = name, uuid, path


def parse_attach_id(value, what):
    """The N of %N from an option (N, "N" or "%N"), or None; anything else is refused."""
    if value is None:
        return None
    try:
        number = int(str(value)[1:] if str(value).startswith("%") else value)
    except (TypeError, ValueError):
        number = None
    if isinstance(value, bool) or number is None or number < 0:
        raise OpsError("%s: attach_id %r is not a number from 0 (the N of %%N)" % (what, value))
    return number


def parse_boot_volumes(volumes, device_of):
    """[{volume, attach_id, read_only}]; device_of(attach_id) refuses an id out of range."""
    out = []
    for item in volumes or []:
        if isinstance(item, str):
            item = {"volume": item}
        if not isinstance(item, dict) or not item.get("volume"):
            raise OpsError("volumes: each item is a volume name or {volume, attach_id, "
                           "read_only}, not %r" % (item,))
        attach_id = parse_attach_id(item.get("attach_id"), "volumes: volume %s" % item["volume"])
        if attach_id is not None:
            device_of(attach_id)
        out.append({"volume": str(item["volume"]), "attach_id": attach_id,
                    "read_only": bool(item.get("read_only"))})
    names = [i["volume"] for i in out]
    for n in set(names):
        if names.count(n) > 1:
            raise OpsError("volume %s is given twice" % n)
    ids = [i["attach_id"] for i in out if i["attach_id"] is not None]
    for n in set(ids):
        if ids.count(n) > 1:
            raise OpsError("attach_id %%%d is given to two volumes" % n)
    return out


def refuse_local_options(p, provider):
    for opt in ("ports", "shares"):
        if p.get(opt):
            raise OpsError("%s applies to provider onprem only; on %s open ports with the "
                           "cloud's firewall, and mount volumes instead of 9p shares"
                           % (opt, provider))
    if p.get("wait_for"):
        raise OpsError("wait_for reads the console of a local instance; with provider %s leave "
                       "it out (the instance is waited for until it is running)" % provider)
