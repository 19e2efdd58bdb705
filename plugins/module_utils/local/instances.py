# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local instances as ops_instance wants them: the settings an instance should run with
(its image, memory, cpus, ports, boot volumes and 9p shares, checked against the ops home), how
they differ from the running one's, and the start, restart or stop that makes them so. The
records and the QEMU processes are local/records.py's; how a running one fares, local/health.py's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os
import re
import shutil

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import (
    parse_attach_id, parse_boot_volumes,
)
from ansible_collections.unikernel.ops.plugins.module_utils.local import qemu
from ansible_collections.unikernel.ops.plugins.module_utils.local.attach_ids import local_attach_id
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.layout import filesystem_offsets
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages, read_image
from ansible_collections.unikernel.ops.plugins.module_utils.providers import InstanceProvider, Outcome
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession, require_qmp
from ansible_collections.unikernel.ops.plugins.module_utils.local.health import (
    health, health_session, wait_for_console,
)
from ansible_collections.unikernel.ops.plugins.module_utils.local.records import (
    InstanceStore, validate_instance_name,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import TFSFormatError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import read_identity
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    check_volume_file, find_volume, list_volume_files, normalize_uuid,
)

_QEMU_ID = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,30}$")


def qemu_ids(volume):
    """(node name, device id) for a volume: its name when QEMU accepts it as an id (as ops
    names them), else derived from its UUID."""
    if _QEMU_ID.match(volume.name):
        return volume.name, volume.name
    ident = "v" + volume.uuid.replace("-", "")[:30]
    return ident, ident


def resolve_volume(home, key):
    """A local volume by name or UUID; a clear error otherwise."""
    volumes = list_volume_files(home.volumes)
    found = None
    if len(key) == 36 and key.count("-") == 4:
        found = find_volume(volumes, uuid=normalize_uuid(key))
    if found is None:
        found = find_volume(volumes, name=key)
    if found is None:
        raise OpsError("volume %r does not exist in %s" % (key, home.volumes))
    return found


# -- what the modules call ------------------------------------------------------------------

SETTING_KEYS = ("image", "image_rootfs", "memory", "cpus", "ports", "volumes", "shares",
                "read_only_shares", "accel")


def _boot_volume(home, item):
    """One of parse_boot_volumes' items, resolved against the ops home."""
    vol = resolve_volume(home, item["volume"])
    node, dev_id = qemu_ids(vol)
    return {"volume": vol.name, "uuid": vol.uuid, "path": vol.path, "node": node, "id": dev_id,
            "read_only": item["read_only"], "attach_id": item["attach_id"]}


_MEMORY = re.compile(r"^([0-9]+)[kKmMgGtT]?$")


def desired_settings(store, image, memory, cpus, ports, volumes, shares, accel):
    """The settings an instance should run with, resolved against the ops home."""
    images = LocalImages(store.home.root)
    path = image if os.path.isabs(image) else images.path(image)
    if not os.path.isfile(path):
        raise OpsError("image %r does not exist (looked at %s); build it with "
                       "unikernel.ops.ops_image" % (image, path))
    # 9p shares the image was built with, from its build record (no need to read the image)
    meta = images.metadata(os.path.basename(path)) if os.path.dirname(path) == store.home.images \
        else None
    merged_shares = dict((meta or {}).get("shares") or {})
    for tag, folder in (shares or {}).items():
        if not isinstance(folder, str) or not folder:
            raise OpsError("share %s: %r is not a host folder; give the path of a directory"
                           % (tag, folder))
        merged_shares[str(parse_attach_id(tag, "share %s" % folder))] = os.path.abspath(folder)
    for tag, folder in merged_shares.items():
        if not os.path.isdir(folder):
            raise OpsError("9p share %s (attach id %%%s) is not a directory" % (folder, tag))
    read_only_shares = _read_only_shares(path, meta, merged_shares)
    if isinstance(cpus, bool) or not isinstance(cpus, int) or not 1 <= cpus <= 255:
        raise OpsError("cpus %r is not valid: give a number of virtual CPUs from 1 to 255" % (cpus,))
    if not _MEMORY.match(str(memory)) or not int(_MEMORY.match(str(memory)).group(1)):
        raise OpsError("memory %r is not valid: use QEMU's syntax - a number of MiB, or a number "
                       "followed by k, M, G or T (256M, 2G)" % (memory,))
    for port in ports or []:
        qemu.parse_port(port)
    # the items as every provider reads them (shape, attach ids, a volume or an id given twice);
    # here any %N Nanos can hold is a SCSI device id
    vols = [_boot_volume(store.home, item) for item in parse_boot_volumes(
        volumes, device_of=lambda n: local_attach_id(n, "volumes"))]
    seen = set()
    for v in vols:
        if v["path"] in seen:
            raise OpsError("volume %s is given twice" % v["volume"])
        seen.add(v["path"])
        if v["id"] in qemu.RESERVED_DEVICE_IDS:
            raise OpsError("volume %s cannot be a boot volume: its QEMU device id %s is the "
                           "instance's own %s (device ids are unique); give the volume another name"
                           % (v["volume"], v["id"], qemu.RESERVED_DEVICE_IDS[v["id"]]))
    chosen, why = qemu.choose_accel(accel)
    try:  # one sector: the rootfs UUID changes exactly when the image is rebuilt
        rootfs = read_identity(path, filesystem_offsets(path)[1])[1]
    except (OSError, OpsError, TFSFormatError):
        rootfs = None  # not a Nanos image we can read: still bootable by QEMU
    return {"image": path, "image_rootfs": rootfs, "memory": str(memory), "cpus": int(cpus),
            "ports": [str(p) for p in ports or []], "volumes": vols,
            "shares": merged_shares, "read_only_shares": read_only_shares, "accel": chosen,
            "accel_reason": why}


def _read_only_shares(path, meta, shares):
    """The attach ids of the shares the image mounts :ro (its manifest's %N values), sorted; from
    the build record, else from the image itself."""
    if not shares:
        return []
    mounts = (meta or {}).get("mounts")
    if mounts is None:
        try:
            mounts = read_image(path)["mounts"]
        except (OSError, OpsError, TFSFormatError, KeyError, ValueError):
            mounts = {}  # not an image we can read: nothing says :ro
    return sorted((tag for tag in shares if str(mounts.get("%%%s" % tag, "")).endswith(":ro")),
                  key=int)


# what a setting recorded by no older run was then: an instance without it is no mismatch
UNRECORDED = {"read_only_shares": []}


def settings_diff(running, wanted):
    """Human-readable differences between a running instance's settings and the wanted ones."""
    out = []
    for key in SETTING_KEYS:
        have = running.get(key, UNRECORDED.get(key))
        if have != wanted.get(key):
            if key == "image_rootfs":
                out.append("the image was rebuilt since the instance started")
            else:
                out.append("%s: running %s, wanted %s" % (key, json.dumps(have),
                                                          json.dumps(wanted.get(key))))
    return out


def same_file(a, b):
    """Whether two paths name one file (another spelling, a link): QEMU shows a path as given."""
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except (OSError, TypeError):
        return False


def attachments_of(inst, timeout=5.0):
    """What QEMU says the instance has attached, or an OpsError."""
    if not inst.qmp_address:
        raise OpsError("instance %s has no QMP (ops started it without QMP)" % inst.name)
    with QMPSession(inst.qmp_address, timeout=timeout) as session:
        return session.attachments()


def holders_of(store, path, exclude_pid=None, timeout=5.0, read_only=False):
    """Running instances whose QEMU has `path` open in a way that conflicts (asked over QMP):
    any use conflicts with a writer; readers share. Also the instances we could not ask."""
    holders, unknown = [], []
    for inst in store.records()[0]:
        if inst.pid == exclude_pid:
            continue
        try:
            if any(same_file(a["file"], path) and not (read_only and a["read_only"])
                   for a in attachments_of(inst, timeout)):
                holders.append(inst.name)
        except OpsError:
            unknown.append(inst.name)
    return holders, unknown


def describe(inst, matched=None, checked=None):
    """inst as the modules return it, with its health (checked: health() already asked) and
    what QEMU has attached."""
    out = inst.as_dict()
    with contextlib.ExitStack() as stack:
        session = None
        if not checked:  # one QMP session for the status and the attachments
            checked, session = health_session(inst, stack)
        out.update(status=checked["status"], crash=checked["crash"], problem=checked["problem"])
        if checked["status"] in ("frozen", "unreachable"):  # asking again would only time out
            out["attachments"] = None
            out["attachments_error"] = checked["problem"]
        else:
            try:
                out["attachments"] = session.attachments() if session is not None \
                    else attachments_of(inst)
            except OpsError as e:
                out["attachments"] = None
                out["attachments_error"] = e.msg
    if matched is not None:
        out["matched"] = matched
    return out


def _state_text(settings):
    if not settings:
        return "state: not running\n"
    shown = dict((k, v) for k, v in settings.items() if k != "accel_reason")
    return "state: running\n" + json.dumps(shown, indent=1, sort_keys=True) + "\n"


def ensure_state(store, p, check_mode=False):
    """What ops_instance does: (Outcome, extra result keys). p: the module's parameters.

    Runs under the ops home's instances lock, so two runs never start or stop one instance
    at once (check mode takes no lock: it writes nothing)."""
    require_qmp()
    name = validate_instance_name(p["name"])
    _check_waits(p)
    if check_mode:
        return _ensure_state(store, name, p, True)
    with store.home.lock("instances"):
        return _ensure_state(store, name, p, False)


def _check_waits(p):
    """wait_for, timeout and stop_timeout, refused before anything is started or stopped."""
    if p.get("wait_for"):
        try:
            re.compile(p["wait_for"])
        except re.error as e:
            raise OpsError("wait_for %r is not a valid regular expression: %s" % (p["wait_for"], e))
    if p.get("timeout", 1) < 1:
        raise OpsError("timeout %r is not valid: give the seconds to wait for QMP and wait_for, "
                       "at least 1" % (p["timeout"],))
    if p.get("stop_timeout", 0) < 0:
        raise OpsError("stop_timeout %r is not valid: give the seconds the guest gets to power "
                       "down, 0 or more" % (p["stop_timeout"],))


def _check_openable(path, what, mode):
    if not os.access(path, mode):
        how = "read and written" if mode & os.W_OK else "read"
        raise OpsError("%s %s cannot be %s by this user, as QEMU must; make it so (chmod, chown) or "
                       "run as its owner" % (what, path, how))


def _ensure_state(store, name, p, check_mode):
    inst, stale = store.find(name)
    actions, extra = [], {}
    warnings = store.refused_warnings(name)
    if stale and not check_mode:
        store.clean_stale(stale)
    for s in stale:
        warnings.append("removed the stale record of %s: its QEMU process %d is gone" % (s.name, s.pid))
    before = _state_text(inst.settings if inst else None)
    wanted = None
    if p["state"] in ("running", "restarted"):
        if not p["image"]:
            raise OpsError("image is required to run an instance")
        wanted = desired_settings(store, p["image"], p["memory"], p["cpus"], p["ports"],
                                  p["volumes"], p["shares"], p["accel"])
    restart = p["state"] == "restarted"
    after = wanted
    if inst is not None and p["state"] == "running":
        differ = settings_diff(inst.settings, wanted)
        if differ and p["force"]:
            restart = True
        elif differ:
            extra["mismatch"] = differ
            after = inst.settings
            warnings.append("instance %s runs with other settings (%s); nothing was changed - set "
                            "force: true or state: restarted to restart it" % (name, "; ".join(differ)))
    checked = None
    if inst is not None and not restart and p["state"] == "running":
        # a record of a running QEMU is not yet a running guest: frozen, paused, crashed,
        # unreachable are said, never passed off as ok
        checked = health(inst, min(5.0, p["timeout"]))
        if checked["fatal"]:
            raise OpsError(checked["problem"], status=checked["status"], pid=inst.pid)
        if checked["problem"]:
            warnings.append(checked["problem"])
    if p["state"] in ("running", "restarted") and (inst is None or restart):
        # before anything is stopped or made: QEMU opens these for writing (a guest writes to
        # its image), and a damaged volume would not boot and must stay as it is
        _check_openable(wanted["image"], "image", os.R_OK | os.W_OK)
        for vol in wanted["volumes"]:
            _check_openable(vol["path"], "volume %s" % vol["volume"],
                            os.R_OK if vol["read_only"] else os.R_OK | os.W_OK)
            check_volume_file(vol["path"], "attached to instance %r at boot" % name)
    if inst is not None and (restart or p["state"] in ("stopped", "absent")):
        actions.append("stop %s (pid %d)" % (name, inst.pid))
        if not check_mode:
            actions[-1] += ": %s" % store.stop(inst, p["stop_timeout"])
        inst = None
    if p["state"] == "absent" and os.path.lexists(store.state_dir(name)):
        if not os.path.isdir(store.state_dir(name)) or os.path.islink(store.state_dir(name)):
            raise OpsError("%s is not a folder of this collection (a link or a file); nothing was "
                           "removed - remove it yourself if it is yours" % store.state_dir(name))
        actions.append("remove %s" % store.state_dir(name))
        if not check_mode:
            shutil.rmtree(store.state_dir(name))
    if inst is None and p["state"] in ("running", "restarted"):
        users = [i.name for i in store.records()[0] if i.data.get("image") == wanted["image"]]
        if users:
            raise OpsError("image %s is in use by running instance %s; a guest writes to its "
                           "image, so each instance needs its own" % (wanted["image"], ", ".join(users)))
        for vol in wanted["volumes"]:
            holders = holders_of(store, vol["path"], read_only=vol["read_only"])[0]
            if holders:
                raise OpsError("volume %s is attached to running instance %s; two instances "
                               "writing one volume corrupt it" % (vol["volume"], ", ".join(holders)))
        actions.append("start %s from %s (accel %s: %s)" % (name, wanted["image"], wanted["accel"],
                                                            wanted["accel_reason"]))
        if not check_mode:
            inst, argv = store.start(name, wanted["image"], wanted, p["timeout"])
            extra["argv"] = argv
            if p["wait_for"]:
                extra["matched"] = wait_for_console(inst.console, p["wait_for"], p["timeout"],
                                                    inst.pid, name)
    elif inst is not None and p.get("wait_for") and not check_mode:
        # already running: the guest must still show what it showed when started
        extra["matched"] = wait_for_console(inst.console, p["wait_for"], p["timeout"], inst.pid,
                                            name)
    if p["state"] in ("stopped", "absent"):
        after = None
    volume = describe(inst, extra.get("matched"), checked) if inst else None
    return Outcome(bool(actions), volume, before, _state_text(after), warnings, actions), extra


class LocalInstances(InstanceProvider):
    """ops_instance and ops_instance_info on this host."""

    def __init__(self, ops_dir=None):
        self.store = InstanceStore(ops_dir)

    def ensure(self, p, check_mode=False):
        return ensure_state(self.store, p, check_mode)

    def list_instances(self, name=None, check_mode=False):
        running, stale = self.store.records()
        stale = [s for s in stale if name is None or s.name == name]
        refused = [r for r in self.store.refused if name is None or r.name == name]
        if not check_mode:
            self.store.clean_stale(stale)
        return dict(instances=[describe(i) for i in running if name is None or i.name == name],
                    stale=[s.as_dict() for s in stale], refused=[r.as_dict() for r in refused],
                    warnings=[r.warning for r in refused])
