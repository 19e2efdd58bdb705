# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attaching volumes to running local instances and detaching them, checked against QEMU."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import read_image
from ansible_collections.unikernel.ops.plugins.module_utils.local.instances import (
    InstanceStore, holders_of, qemu_ids, resolve_volume,
)
from ansible_collections.unikernel.ops.plugins.module_utils.providers import MountProvider, Outcome
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession, require_qmp


def _running(store, name, check_mode=False):
    inst, stale = store.find(name)
    if stale and not check_mode:
        store.clean_stale(stale)
    if inst is None:
        gone = " (its QEMU process %s is gone; the stale record was %s)" % (
            stale[0].pid, "found" if check_mode else "removed") if stale else ""
        raise OpsError("instance %r is not running%s" % (name, gone))
    if not inst.qmp_address:
        raise OpsError("instance %r has no QMP: ops starts instances without it unless "
                       "RunConfig.QMP is true" % name)
    return inst


def _render(att):
    if not att:
        return ""
    return "volume: %s\nnode: %s\nread_only: %s\nattach_id: %s\n" % (
        att.get("file"), att.get("node"), att.get("read_only"), att.get("attach_id"))


def manifest_warning(inst, vol, attach_id):
    """Why the guest would never mount this volume, or None."""
    try:
        mounts = read_image(inst.data.get("image"))["mounts"]
    except Exception:  # pylint: disable=broad-except
        return None  # not an image we can read: nothing to say
    keys = set(mounts)
    wanted = {vol.name, vol.uuid}
    if attach_id is not None:
        wanted.add("%%%d" % attach_id)
    if keys & wanted or any(k.lower() == vol.uuid for k in keys):
        return None
    by = "name, UUID" + (" or %%%d" % attach_id if attach_id is not None else "")
    return ("the image of instance %s mounts %s, nothing that matches volume %s (by %s): the "
            "guest will not mount it" % (inst.name, ", ".join(sorted(keys)) or "no volumes",
                                         vol.name, by))


def _find(atts, vol, dev_id):
    mine = [a for a in atts if a["file"] == vol.path or a["id"] == dev_id]
    return mine[0] if mine else None


def ensure_attached(store, instance, volume, read_only=False, attach_id=None, timeout=10.0,
                    force=False, check_mode=False):
    inst = _running(store, instance, check_mode)
    vol = resolve_volume(store.home, volume)
    node, dev_id = qemu_ids(vol)
    warnings = []
    with QMPSession(inst.qmp_address, timeout=timeout) as qmp:
        atts = qmp.attachments()
        current = _find(atts, vol, dev_id)
        wanted = {"id": dev_id, "node": node, "file": vol.path, "read_only": bool(read_only),
                  "attach_id": attach_id}
        if current is not None:
            same = (current["file"] == vol.path and current["read_only"] == bool(read_only)
                    and current["attach_id"] == attach_id)
            if same:
                return Outcome(False, _result(vol, current), _render(current), _render(current))
            if not force:
                raise OpsError("volume %s is attached to %s as %s with read_only=%s, attach_id=%s; "
                               "set force: true to re-attach it as asked" % (
                                   vol.name, instance, current["file"], current["read_only"],
                                   current["attach_id"]))
        holders, unknown = holders_of(store, vol.path, exclude_pid=inst.pid, timeout=timeout,
                                      read_only=read_only)
        if holders:
            raise OpsError("volume %s is attached to running instance %s; two instances writing "
                           "one volume corrupt it (read-only attachments can share it)"
                           % (vol.name, ", ".join(holders)))
        if unknown:
            warnings.append("could not ask instance(s) %s over QMP whether they use volume %s"
                            % (", ".join(unknown), vol.name))
        why = manifest_warning(inst, vol, attach_id)
        if why:
            warnings.append(why)
        actions = []
        if current is not None:
            actions.append("detach %s from %s" % (current["id"], instance))
        how = (" read-only" if read_only else "") + \
            (" (%%%d)" % attach_id if attach_id is not None else "")
        actions.append("attach %s to %s as %s%s" % (vol.path, instance, dev_id, how))
        if check_mode:
            return Outcome(True, _result(vol, wanted), _render(current), _render(wanted),
                           warnings, actions)
        if current is not None:
            qmp.detach(current["id"], current["node"], timeout)
            atts = None  # changed: attach asks QEMU again
        qmp.attach(node, dev_id, vol.path, read_only, attach_id, attachments=atts)
        after = _find(qmp.attachments(), vol, dev_id)  # QEMU's word, not ours
        if after is None or after["read_only"] != bool(read_only) or after["attach_id"] != attach_id:
            raise OpsError("QEMU accepted the attach of %s but does not show it as asked: %r"
                           % (vol.name, after))
    return Outcome(True, _result(vol, after), _render(current), _render(after), warnings, actions)


def ensure_detached(store, instance, volume, timeout=10.0, check_mode=False):
    inst = _running(store, instance, check_mode)
    vol = resolve_volume(store.home, volume)
    node, dev_id = qemu_ids(vol)
    with QMPSession(inst.qmp_address, timeout=timeout) as qmp:
        current = _find(qmp.attachments(), vol, dev_id)
        if current is None:
            return Outcome(False, None)
        if current["id"] in ("boot", None):
            raise OpsError("volume %s is the instance's boot disk" % vol.name)
        actions = ["detach %s (%s) from %s" % (vol.path, current["id"], instance)]
        if check_mode:
            return Outcome(True, _result(vol, current), _render(current), "", actions=actions)
        qmp.detach(current["id"], current["node"], timeout)
        if _find(qmp.attachments(), vol, dev_id) is not None:
            raise OpsError("QEMU still shows volume %s attached after the detach" % vol.name)
    return Outcome(True, _result(vol, current), _render(current), "", actions=actions)


def _result(vol, att):
    return {"volume": vol.name, "uuid": vol.uuid, "path": vol.path, "node": att.get("node"),
            "device_id": att.get("id"), "attach_id": att.get("attach_id"),
            "read_only": att.get("read_only")}


class LocalMounts(MountProvider):
    """ops_mount on this host: SCSI LUNs hot-plugged over QMP."""

    def __init__(self, ops_dir=None):
        self.store = InstanceStore(ops_dir)

    def attached(self, p, check_mode=False):
        require_qmp()
        return ensure_attached(self.store, p["instance"], p["volume"], p["read_only"],
                               p["attach_id"], p["timeout"], p["force"], check_mode=check_mode)

    def detached(self, p, check_mode=False):
        require_qmp()
        return ensure_detached(self.store, p["instance"], p["volume"], p["timeout"],
                               check_mode=check_mode)
