# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local instances: QEMU processes started from images, recorded where ops records them.

<ops home>/instances/<pid> holds ops' JSON (instance, image, ports, bridged, private_ip, mac, pid,
mgmt, arch) plus our own key `unikernel_ops` (settings, QMP socket, console log), so that
`ops instance list` shows our instances and we show ops'. A record whose process is gone is
stale: it is removed, as ops does. Our QMP sockets, console logs and pidfiles live in
<ops home>/.unikernel-ops/instances/<name>/ (mode 0700).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import (
    parse_attach_id, parse_boot_volumes,
)
from ansible_collections.unikernel.ops.plugins.module_utils.local import qemu
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.layout import filesystem_offsets
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome
from ansible_collections.unikernel.ops.plugins.module_utils.providers import InstanceProvider, Outcome
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession, require_qmp
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import TFSFormatError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import read_identity
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    find_volume, list_volume_files, normalize_uuid,
)

_QEMU_ID = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,30}$")
SOCKET_PATH_MAX = 100  # AF_UNIX paths must be shorter than 108 bytes


def validate_instance_name(name):
    if not name or "/" in name or "\0" in name or name.startswith(".") or len(name) > 64:
        raise OpsError("instance name %r cannot be used (no '/', no leading '.', at most 64 "
                       "characters)" % (name,))
    return name


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


def pid_alive(pid, marker=None):
    """Whether pid is a live (not zombie) process whose command line contains marker."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False
        if marker is None:
            return True
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return marker.encode() in f.read()
    except (OSError, IndexError, ValueError):
        return False


class Instance:
    """A record read from <home>/instances/<pid>."""

    def __init__(self, record_path, data):
        self.record_path = record_path
        self.data = data
        self.name = data.get("instance")
        self.pid = int(data.get("pid") or 0)
        ours = data.get("unikernel_ops") or {}
        self.ours = bool(ours)
        self.qmp_socket = ours.get("qmp_socket")
        self.console = ours.get("console")
        self.settings = ours.get("settings") or {}
        self.mgmt = data.get("mgmt")

    @property
    def qmp_address(self):
        if self.qmp_socket:
            return self.qmp_socket
        if self.mgmt and str(self.mgmt).isdigit():
            return ("127.0.0.1", int(self.mgmt))  # an instance ops started with QMP on
        return None

    @property
    def running(self):
        """Whether the recorded pid is still this QEMU: a pid reused after a reboot must not
        pass, so its command line must name our pidfile (ours) or the image (ops')."""
        if not pid_alive(self.pid, "qemu"):
            return False
        argv = (self.data.get("unikernel_ops") or {}).get("argv") or []
        if "-pidfile" in argv:
            return pid_alive(self.pid, argv[argv.index("-pidfile") + 1])
        image = self.data.get("image")
        return pid_alive(self.pid, image) if image else True

    def as_dict(self):
        return {"name": self.name, "pid": self.pid, "image": self.data.get("image"),
                "ports": self.data.get("ports") or [], "console": self.console,
                "qmp_socket": self.qmp_socket, "mgmt": self.mgmt or None,
                "started_by": "unikernel.ops" if self.ours else "ops",
                "settings": self.settings}


class InstanceStore:
    def __init__(self, ops_dir=None):
        self.home = OpsHome(ops_dir)

    def state_dir(self, name):
        return self.home.state("instances", name)

    def socket_path(self, name):
        path = os.path.join(self.state_dir(name), "qmp.sock")
        if len(path.encode()) <= SOCKET_PATH_MAX:
            return path
        # A deep ops home: a short owner-only folder in /tmp, keyed by the long path.
        short = os.path.join("/tmp", "unikernel-ops-qmp-%d" % os.getuid())
        os.makedirs(short, mode=0o700, exist_ok=True)
        st = os.lstat(short)
        if st.st_uid != os.getuid() or st.st_mode & 0o077:
            raise OpsError("%s is not an owner-only folder of this user; refusing to put a QMP "
                           "socket there" % short)
        return os.path.join(short, hashlib.sha256(path.encode()).hexdigest()[:16] + ".sock")

    # -- records ----------------------------------------------------------------------------

    def records(self):
        """(running instances, stale records removed) from <home>/instances."""
        running, stale = [], []
        try:
            names = os.listdir(self.home.instances)
        except FileNotFoundError:
            return running, stale
        for fname in sorted(names):
            path = os.path.join(self.home.instances, fname)
            try:
                with open(path) as f:
                    inst = Instance(path, json.load(f))
            except (OSError, ValueError):
                continue
            if inst.running:
                running.append(inst)
            else:
                stale.append(inst)
        return running, stale

    def clean_stale(self, stale):
        for inst in stale:
            for path in (inst.record_path, inst.qmp_socket):
                if path:
                    try:
                        os.unlink(path)
                    except OSError:
                        pass

    def find(self, name):
        """(running Instance or None, stale Instances of that name)."""
        running, stale = self.records()
        mine = [i for i in running if i.name == name]
        return (mine[0] if mine else None), [i for i in stale if i.name == name]

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, name, image, settings, launch_timeout=30.0):
        """Start QEMU daemonized, record it, and wait until QMP answers."""
        validate_instance_name(name)
        state = self.home.ensure_dir(self.state_dir(name), 0o700)
        os.chmod(state, 0o700)
        sock = self.socket_path(name)
        pidfile = os.path.join(state, "qemu.pid")
        console = os.path.join(state, "console.log")
        for path in (sock, pidfile):
            if os.path.exists(path):
                os.unlink(path)
        open(console, "w").close()
        cfg = qemu.LaunchConfig(name, image, memory=settings["memory"], cpus=settings["cpus"],
                                ports=settings["ports"], volumes=settings["volumes"],
                                shares=settings["shares"], accel=settings["accel"],
                                console=console, qmp_socket=sock, pidfile=pidfile,
                                binary=qemu.find_binary())
        argv = qemu.build_argv(cfg)
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=launch_timeout, check=False)
        except subprocess.TimeoutExpired:
            raise OpsError("QEMU did not start within %.0f s" % launch_timeout, argv=argv)
        if proc.returncode != 0:
            raise OpsError("QEMU failed to start: %s" % proc.stderr.decode("utf-8", "replace").strip(),
                           argv=argv, rc=proc.returncode)
        try:
            with open(pidfile) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            raise OpsError("QEMU started but wrote no pidfile %s" % pidfile, argv=argv)
        record = {"instance": name, "image": image, "ports": [str(p) for p in settings["ports"]] or None,
                  "bridged": False, "private_ip": "", "mac": "", "pid": str(pid), "mgmt": "",
                  "arch": "amd64", "FreeMemory": 0, "TotalMemory": 0,
                  "unikernel_ops": {"qmp_socket": sock, "console": console, "argv": argv,
                                    "settings": settings}}
        self.home.ensure_dir(self.home.instances)
        record_path = os.path.join(self.home.instances, str(pid))
        with open(record_path + ".tmp", "w") as f:
            json.dump(record, f)
        os.rename(record_path + ".tmp", record_path)
        inst = Instance(record_path, record)
        with QMPSession(sock, timeout=launch_timeout) as session:
            session.execute("query-status")
        return inst, argv

    def stop(self, inst, timeout=10.0):
        """Ask the guest to power down; after timeout, quit QEMU; kill it if even that fails."""
        how = "powered down"
        if inst.qmp_address:
            try:
                with QMPSession(inst.qmp_address, timeout=min(5.0, timeout)) as session:
                    session.execute("system_powerdown")
            except OpsError:
                pass
        if not _wait_gone(inst.pid, timeout):
            how = "quit after %.0f s" % timeout
            if inst.qmp_address:
                try:
                    with QMPSession(inst.qmp_address, timeout=5.0) as session:
                        session.execute("quit")
                except OpsError:
                    pass
            if not _wait_gone(inst.pid, 5.0 if inst.qmp_address else 0.0):
                how = "killed"
                try:
                    os.kill(inst.pid, signal.SIGKILL)
                except OSError:
                    pass
                _wait_gone(inst.pid, 5.0)
        self.clean_stale([inst])
        return how


def _wait_gone(pid, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def wait_for_console(path, pattern, timeout, pid=None):
    """Wait until the console log matches pattern; (matched text) or an OpsError."""
    regex = re.compile(pattern)
    deadline = time.monotonic() + timeout
    text = ""
    while True:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            text = ""
        m = regex.search(text)
        if m:
            return m.group(0)
        if pid is not None and not pid_alive(pid):
            raise OpsError("the instance exited before its console matched %r" % pattern,
                           console_tail=text[-2000:])
        if time.monotonic() >= deadline:
            raise OpsError("the console did not match %r within %.0f s" % (pattern, timeout),
                           console_tail=text[-2000:])
        time.sleep(0.1)


# -- what the modules call ------------------------------------------------------------------

SETTING_KEYS = ("image", "image_rootfs", "memory", "cpus", "ports", "volumes", "shares", "accel")


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
        merged_shares[str(parse_attach_id(tag, "share %s" % folder))] = os.path.abspath(folder)
    for tag, folder in merged_shares.items():
        if not os.path.isdir(folder):
            raise OpsError("9p share %s (attach id %%%s) is not a directory" % (folder, tag))
    if isinstance(cpus, bool) or not isinstance(cpus, int) or not 1 <= cpus <= 255:
        raise OpsError("cpus %r is not valid: give a number of virtual CPUs from 1 to 255" % (cpus,))
    if not _MEMORY.match(str(memory)) or not int(_MEMORY.match(str(memory)).group(1)):
        raise OpsError("memory %r is not valid: use QEMU's syntax - a number of MiB, or a number "
                       "followed by k, M, G or T (256M, 2G)" % (memory,))
    for port in ports or []:
        qemu.parse_port(port)
    # the items as every provider reads them (shape, attach ids, a volume or an id given twice);
    # any %N from 0 is a SCSI device id here
    vols = [_boot_volume(store.home, item)
            for item in parse_boot_volumes(volumes, device_of=lambda n: n)]
    seen = set()
    for v in vols:
        if v["path"] in seen:
            raise OpsError("volume %s is given twice" % v["volume"])
        seen.add(v["path"])
    chosen, why = qemu.choose_accel(accel)
    try:  # one sector: the rootfs UUID changes exactly when the image is rebuilt
        rootfs = read_identity(path, filesystem_offsets(path)[1])[1]
    except (OSError, OpsError, TFSFormatError):
        rootfs = None  # not a Nanos image we can read: still bootable by QEMU
    return {"image": path, "image_rootfs": rootfs, "memory": str(memory), "cpus": int(cpus),
            "ports": [str(p) for p in ports or []], "volumes": vols,
            "shares": merged_shares, "accel": chosen, "accel_reason": why}


def settings_diff(running, wanted):
    """Human-readable differences between a running instance's settings and the wanted ones."""
    out = []
    for key in SETTING_KEYS:
        if running.get(key) != wanted.get(key):
            if key == "image_rootfs":
                out.append("the image was rebuilt since the instance started")
            else:
                out.append("%s: running %s, wanted %s" % (key, json.dumps(running.get(key)),
                                                          json.dumps(wanted.get(key))))
    return out


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
            if any(a["file"] == path and not (read_only and a["read_only"])
                   for a in attachments_of(inst, timeout)):
                holders.append(inst.name)
        except OpsError:
            unknown.append(inst.name)
    return holders, unknown


def describe(inst, matched=None):
    out = inst.as_dict()
    try:
        out["attachments"] = attachments_of(inst)
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
    if check_mode:
        return _ensure_state(store, name, p, True)
    with store.home.lock("instances"):
        return _ensure_state(store, name, p, False)


def _ensure_state(store, name, p, check_mode):
    inst, stale = store.find(name)
    actions, warnings, extra = [], [], {}
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
    if inst is not None and (restart or p["state"] in ("stopped", "absent")):
        actions.append("stop %s (pid %d)" % (name, inst.pid))
        if not check_mode:
            actions[-1] += ": %s" % store.stop(inst, p["stop_timeout"])
        inst = None
    if p["state"] == "absent" and os.path.isdir(store.state_dir(name)):
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
                                                    inst.pid)
    elif inst is not None and p.get("wait_for") and not check_mode:
        # already running: the guest must still show what it showed when started
        extra["matched"] = wait_for_console(inst.console, p["wait_for"], p["timeout"], inst.pid)
    if p["state"] in ("stopped", "absent"):
        after = None
    volume = describe(inst, extra.get("matched")) if inst else None
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
        if not check_mode:
            self.store.clean_stale(stale)
        return dict(instances=[describe(i) for i in running if name is None or i.name == name],
                    stale=[s.as_dict() for s in stale])
