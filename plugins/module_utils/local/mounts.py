# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attaching volumes to running local instances and detaching them, checked against QEMU."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import read_image
from ansible_collections.unikernel.ops.plugins.module_utils.local.attach_ids import local_attach_id
from ansible_collections.unikernel.ops.plugins.module_utils.local.console import (
    crash_lines, crash_message, read_console,
)
from ansible_collections.unikernel.ops.plugins.module_utils.local.health import health
from ansible_collections.unikernel.ops.plugins.module_utils.local.instances import (
    holders_of, qemu_ids, resolve_volume, same_file,
)
from ansible_collections.unikernel.ops.plugins.module_utils.local.records import InstanceStore
from ansible_collections.unikernel.ops.plugins.module_utils.providers import MountProvider, Outcome
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession, require_qmp
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    check_volume_file, list_volume_files,
)

# After QEMU shows a new LUN the console is watched this long: Nanos takes a LUN up within about
# 30 ms of device_add (more under TCG), and a guest that crashes on it is reported, not left.
SETTLE_SECONDS = 0.5
POLL_SECONDS = 0.05
CONSOLE_OVERLAP = 4096  # a crash line being written when a read starts is read whole next time
RESTART_HINT = "restart it: unikernel.ops.ops_instance state: restarted"


def check_timeout(timeout):
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 1:
        raise OpsError("timeout %r is not valid: give the seconds to wait for QEMU, 1 or more"
                       % (timeout,))
    return float(timeout)


def console_crash(inst, what, offset=0):
    """crash_message for what the instance's console shows from offset on, or None (also for
    an instance with no console log of ours, such as one ops started)."""
    if not inst.console:
        return None
    return crash_message(what, read_console(inst.console, offset))


def _console_end(inst):
    try:
        return max(0, os.path.getsize(inst.console) - CONSOLE_OVERLAP) if inst.console else 0
    except OSError:
        return 0


def _running(store, name, check_mode=False):
    """(the running instance, its health without QMP) or an OpsError."""
    inst, stale = store.find(name)
    if stale and not check_mode:
        store.clean_stale(stale)
    if inst is None:
        gone = " (its QEMU process %s is gone; the stale record was %s)" % (
            stale[0].pid, "found" if check_mode else "removed") if stale else ""
        refused = "".join("; " + w for w in store.refused_warnings(name))
        msg = "instance %r is not running%s%s" % (name, gone, refused)
        # a Nanos crash ends in vm_exit, which makes QEMU exit: say why it is gone
        raise OpsError((console_crash(stale[0], msg) if stale else None) or msg)
    if not inst.qmp_address:
        raise OpsError("instance %r has no QMP: ops starts instances without it unless "
                       "RunConfig.QMP is true" % name)
    # a frozen or QMP-less QEMU is said now, not timed out (a crash is said by the attach itself,
    # with what it means for the volume)
    state = health(inst, ask_qmp=False)  # the attach's own QMP session says the rest
    if state["fatal"] and not state["crash"]:
        raise OpsError(state["problem"], status=state["status"])
    return inst, state


def _volume_name(home, path):
    """The name of the volume whose file is path, or None."""
    for v in list_volume_files(home.volumes):
        if same_file(v.path, path):
            return v.name
    return None


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


def _find(atts, vol):
    """The attachment of the volume's file (a device that only has its id is another file)."""
    mine = [a for a in atts if a["file"] and same_file(a["file"], vol.path)]
    return mine[0] if mine else None


def _refuse_taken(store, qmp, atts, inst, vol, dev_id, current, attach_id):
    """Refuse, before any change, a device id or attach id another device of the instance has."""
    kinds = qmp.peripherals()
    if dev_id in kinds and not (current is not None and current["id"] == dev_id):
        holder = [a for a in atts if a["id"] == dev_id]
        other = _volume_name(store.home, holder[0]["file"]) if holder else None
        if other is not None:  # ops lets two volume files have one name
            raise OpsError("volume %s cannot be attached to instance %s: another file of volume "
                           "%s, %s, is attached there as device %s; detach it first"
                           % (vol.name, inst.name, other, holder[0]["file"], dev_id))
        raise OpsError("volume %s cannot be hot-plugged into instance %s: its QEMU device id %s is "
                       "taken there by the instance's %s%s (device ids are unique); give the volume "
                       "another name" % (vol.name, inst.name, dev_id, kinds[dev_id],
                                         " boot disk" if dev_id == "boot" else " device"))
    if attach_id is None:
        return
    for att in atts:
        if att["attach_id"] == attach_id and att is not current:
            other = _volume_name(store.home, att["file"])
            raise OpsError("attach_id %%%d is taken on instance %s by %s (device %s); give volume "
                           "%s another attach_id, or detach that one first" % (
                               attach_id, inst.name, "volume %s" % other if other else att["file"],
                               att["id"], vol.name))


def ensure_attached(store, instance, volume, read_only=False, attach_id=None, timeout=10.0,
                    force=False, check_mode=False):
    attach_id = local_attach_id(attach_id, "volume %s" % volume)
    timeout = check_timeout(timeout)
    inst, state = _running(store, instance, check_mode)
    vol = resolve_volume(store.home, volume)
    what = "volume %s was not attached to instance %s (%s)" % (vol.name, instance, RESTART_HINT)
    if state["crash"]:  # the console as _running read it: no second read
        raise OpsError(crash_message(what, state["crash"]))
    try:
        return _attach(store, inst, vol, read_only, attach_id, timeout, force, check_mode)
    except OpsError as e:
        # QMP failing (QEMU exited, or stopped answering) while the guest crashed: the crash is
        # the news, with the console lines that show it
        lines = crash_lines(read_console(inst.console)) if inst.console else None
        if lines and lines not in e.msg:
            raise OpsError(crash_message(what, lines), error=e.msg)
        raise


def _attach(store, inst, vol, read_only, attach_id, timeout, force, check_mode):
    instance = inst.name
    node, dev_id = qemu_ids(vol)
    warnings = []
    with QMPSession(inst.qmp_address, timeout=timeout) as qmp:
        atts = qmp.attachments()
        current = _find(atts, vol)
        wanted = {"id": dev_id, "node": node, "file": vol.path, "read_only": bool(read_only),
                  "attach_id": attach_id}
        if current is not None:
            if current["read_only"] == bool(read_only) and current["attach_id"] == attach_id:
                return Outcome(False, _result(vol, current), _render(current), _render(current))
            if not force:
                raise OpsError("volume %s is attached to %s as %s with read_only=%s, attach_id=%s; "
                               "set force: true to re-attach it as asked" % (
                                   vol.name, instance, current["file"], current["read_only"],
                                   current["attach_id"]))
        _refuse_taken(store, qmp, atts, inst, vol, dev_id, current, attach_id)
        holders, unknown = holders_of(store, vol.path, exclude_pid=inst.pid, timeout=timeout,
                                      read_only=read_only)
        if holders:
            raise OpsError("volume %s is attached to running instance %s; two instances writing "
                           "one volume corrupt it (read-only attachments can share it)"
                           % (vol.name, ", ".join(holders)))
        if unknown:
            warnings.append("could not ask instance(s) %s over QMP whether they use volume %s"
                            % (", ".join(unknown), vol.name))
        if current is None:  # one the guest has is in use: its log may be half written now
            check_volume_file(vol.path, "attached to instance %r" % instance)
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
        since = _console_end(inst)
        try:
            qmp.attach(node, dev_id, vol.path, read_only, attach_id, attachments=atts)
        except OpsError as e:
            details = dict(e.details)
            left = details.pop("left_in_qemu", None)
            raise _failed(qmp, vol, inst, current, e.msg + _lock_hint(e.msg, vol), details, left)
        after, why = _wait_shown(qmp, inst, vol, wanted, timeout, since)
        if why is not None:
            left = qmp.remove(dev_id, node, timeout)
            raise _failed(qmp, vol, inst, current, why, {}, left)
    return Outcome(True, _result(vol, after), _render(current), _render(after), warnings, actions)


def _lock_hint(qemu_msg, vol):
    if "lock" not in qemu_msg:
        return ""
    return " (another process has %s open; stop it, then attach again)" % vol.path


def _wait_shown(qmp, inst, vol, wanted, timeout, since):
    """(the attachment as QEMU shows it, None) once QEMU shows it as asked and the console shows
    no crash for SETTLE_SECONDS; (what QEMU shows, why not) otherwise - at once for a crash."""
    start = time.monotonic()
    after = None
    while True:
        crashed = console_crash(inst, "the guest of instance %s crashed when volume %s was "
                                      "attached (%s)" % (inst.name, vol.name, RESTART_HINT), since)
        if crashed:
            return after, crashed
        elapsed = time.monotonic() - start
        if after is None:
            found = _find(qmp.attachments(), vol)  # QEMU's word, not ours
            if found is not None and all(found[k] == wanted[k] for k in ("read_only", "attach_id")):
                after = found
            elif elapsed >= timeout:
                return found, ("QEMU accepted the attach of %s but did not show it as asked "
                               "within %.0f s: %r" % (vol.name, timeout, found))
        if after is not None and elapsed >= min(SETTLE_SECONDS, timeout):
            return after, None
        time.sleep(POLL_SECONDS)


def _failed(qmp, vol, inst, current, why, details, left=None):
    """The OpsError for an attach that failed after its checks, once nothing of it is left;
    a volume detached to be re-attached (force) is attached again as it was."""
    msg = "volume %s was not attached to instance %s: %s" % (vol.name, inst.name, why)
    if left:
        msg += "; %s" % left
    else:
        msg += "\nnothing of the attach is left in QEMU"
    if current is not None:
        try:
            qmp.attach(current["node"], current["id"], current["file"], current["read_only"],
                       current["attach_id"])
            msg += "; its previous attachment (read_only=%s, attach_id=%s) was restored" % (
                current["read_only"], current["attach_id"])
        except OpsError as e:
            msg += "; its previous attachment could not be restored: %s" % e.msg
    return OpsError(msg, **details)


def ensure_detached(store, instance, volume, timeout=10.0, check_mode=False):
    timeout = check_timeout(timeout)
    inst = _running(store, instance, check_mode)[0]
    vol = resolve_volume(store.home, volume)
    with QMPSession(inst.qmp_address, timeout=timeout) as qmp:
        current = _find(qmp.attachments(), vol)
        if current is None:
            return Outcome(False, None)
        if current["id"] in ("boot", None):
            raise OpsError("volume %s is the instance's boot disk" % vol.name)
        actions = ["detach %s (%s) from %s" % (vol.path, current["id"], instance)]
        if check_mode:
            return Outcome(True, _result(vol, current), _render(current), "", actions=actions)
        qmp.detach(current["id"], current["node"], timeout)
        if _find(qmp.attachments(), vol) is not None:
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
