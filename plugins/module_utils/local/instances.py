# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local instances: QEMU processes started from images, recorded where ops records them.

<ops home>/instances/<pid> holds ops' JSON (instance, image, ports, bridged, private_ip, mac, pid,
mgmt, arch) plus our own key `unikernel_ops` (settings, QMP socket, console log), so that
`ops instance list` shows our instances and we show ops'. A record whose process is gone is
stale: it is removed, as ops does. Our QMP sockets, console logs and pidfiles live in
<ops home>/.unikernel-ops/instances/<name>/ (mode 0700).

Anyone who can write instances/ can put a record there, so a record is acted on (its pid
signalled, its QMP socket connected to, its files removed) only when it is ours: a regular file
of this user that no one else can write, whose paths are where we put them and whose pid is the
QEMU it names. Any other record is reported and left alone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import time

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import (
    parse_attach_id, parse_boot_volumes,
)
from ansible_collections.unikernel.ops.plugins.module_utils.local import qemu
from ansible_collections.unikernel.ops.plugins.module_utils.local.attach_ids import local_attach_id
from ansible_collections.unikernel.ops.plugins.module_utils.local.console import (
    crash_lines, crash_message, read_console,
)
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.layout import filesystem_offsets
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages, read_image
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome, replace_json
from ansible_collections.unikernel.ops.plugins.module_utils.providers import InstanceProvider, Outcome
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession, require_qmp
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import TFSFormatError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import read_identity
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    check_volume_file, find_volume, list_volume_files, normalize_uuid,
)

_QEMU_ID = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,30}$")
_SHORT_SOCKET = re.compile(r"^[0-9a-f]{16}\.sock$")
SOCKET_PATH_MAX = 100  # AF_UNIX paths must be shorter than 108 bytes
# QEMU run states in which the guest is held on purpose and QMP still works (`cont` resumes it)
HELD_STATES = ("paused", "suspended", "debug", "prelaunch", "inmigrate", "postmigrate",
               "finish-migrate", "save-vm", "restore-vm", "colo")
# what a stop has after stop_timeout: for QMP quit, then SIGTERM, then SIGKILL
QUIT_GRACE, TERM_GRACE, KILL_GRACE = 1.0, 1.0, 2.0


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


def process_state(pid):
    """The state letter of /proc/<pid>/stat (R, S, D, T for stopped by a signal, t for traced,
    Z...), or None when there is no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid, marker=None):
    """Whether pid is a live (not zombie) process whose command line contains marker."""
    if process_state(pid) in (None, "Z", "X"):
        return False
    if marker is None:
        return True
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return marker.encode() in f.read()
    except (OSError, ValueError):
        return False


def _process_uid(pid):
    try:
        return os.stat("/proc/%d" % pid).st_uid
    except OSError:
        return None


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
        argv = ours.get("argv") or []
        self.pidfile = argv[argv.index("-pidfile") + 1] if "-pidfile" in argv[:-1] else None

    @property
    def qmp_address(self):
        if self.qmp_socket:
            return self.qmp_socket
        if self.mgmt and str(self.mgmt).isdigit():
            return ("127.0.0.1", int(self.mgmt))  # an instance ops started with QMP on
        return None

    @property
    def running(self):
        """Whether the recorded pid is still this QEMU, run by this user: a pid reused after a
        reboot must not pass, so its command line must name our pidfile (ours) or the image
        (ops')."""
        if not pid_alive(self.pid, "qemu") or _process_uid(self.pid) != os.getuid():
            return False
        if self.pidfile:
            return pid_alive(self.pid, self.pidfile)
        image = self.data.get("image")
        return pid_alive(self.pid, image) if image else True

    def as_dict(self):
        return {"name": self.name, "pid": self.pid, "image": self.data.get("image"),
                "ports": self.data.get("ports") or [], "console": self.console,
                "qmp_socket": self.qmp_socket, "mgmt": self.mgmt or None,
                "started_by": "unikernel.ops" if self.ours else "ops",
                "settings": self.settings}


class RefusedRecord:
    """A record under instances/ that is not ours to act on, and why."""

    def __init__(self, path, name, pid, reason):
        self.record_path = path
        self.name = name
        self.pid = pid
        self.reason = reason

    @property
    def warning(self):
        return ("the record %s (instance %r, pid %s) was left alone - nothing it names was "
                "stopped, connected to or removed: %s" % (self.record_path, self.name, self.pid,
                                                          self.reason))

    def as_dict(self):
        return {"record": self.record_path, "name": self.name, "pid": self.pid,
                "reason": self.reason}


def _read_record(path):
    """(JSON, stat) of a record file, read without following a link or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(fd) as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None, st
        return json.load(f), st


class InstanceStore:
    def __init__(self, ops_dir=None):
        self.home = OpsHome(ops_dir)
        self.refused = []  # RefusedRecord of the last records() call

    def state_dir(self, name):
        return self.home.state("instances", name)

    def _short_socket_dir(self):
        return os.path.join("/tmp", "unikernel-ops-qmp-%d" % os.getuid())

    def socket_path(self, name):
        path = os.path.join(self.state_dir(name), "qmp.sock")
        if len(path.encode()) <= SOCKET_PATH_MAX:
            return path
        # A deep ops home: a short owner-only folder in /tmp, keyed by the long path.
        short = self._short_socket_dir()
        os.makedirs(short, mode=0o700, exist_ok=True)
        st = os.lstat(short)
        if st.st_uid != os.getuid() or st.st_mode & 0o077 or not stat.S_ISDIR(st.st_mode):
            raise OpsError("%s is not an owner-only folder of this user; refusing to put a QMP "
                           "socket there" % short)
        return os.path.join(short, hashlib.sha256(path.encode()).hexdigest()[:16] + ".sock")

    def _private_dir(self, path, fix_existing=True):
        """path and every missing folder between the ops home and it, created owner-only
        whatever the umask (makedirs gives the folders on the way the umask's mode)."""
        self.home.ensure_dir(self.home.root)
        current = self.home.root
        for part in os.path.relpath(path, self.home.root).split(os.sep):
            current = os.path.join(current, part)
            try:
                os.mkdir(current, 0o700)
                os.chmod(current, 0o700)
            except FileExistsError:
                pass
            except OSError as e:
                raise OpsError("cannot create %s: %s" % (current, e.strerror))
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise OpsError("%s is not a folder of this user (uid %d); remove it, or use an ops "
                           "home of your own" % (path, os.getuid()))
        if fix_existing and stat.S_IMODE(st.st_mode) != 0o700:
            os.chmod(path, 0o700)
        return path

    # -- records ----------------------------------------------------------------------------

    def _record_problem(self, inst, st):
        """Why a record is not ours to act on, or None."""
        uid = os.getuid()
        if st.st_uid != uid:
            return "it is owned by uid %d, not by this user (uid %d)" % (st.st_uid, uid)
        if st.st_mode & 0o022:
            return ("other users can write it (mode %04o); if it is yours, make it writable by "
                    "you only (chmod go-w)" % stat.S_IMODE(st.st_mode))
        if inst.pid <= 0:
            return "it names no pid"
        try:
            validate_instance_name(inst.name if isinstance(inst.name, str) else "")
        except OpsError:
            return "its instance name cannot be one of an instance"
        if not inst.ours:
            return None
        state = os.path.realpath(self.state_dir(inst.name))
        for what, path, where in (("console log", inst.console, "console.log"),
                                  ("pidfile", inst.pidfile, "qemu.pid")):
            if path is not None and os.path.realpath(path) != os.path.join(state, where):
                return "its %s %s is not in the instance's state folder %s" % (what, path, state)
        if inst.qmp_socket is not None and not self._our_socket(inst.name, inst.qmp_socket):
            return "its QMP socket %s is not in the instance's state folder %s" % (
                inst.qmp_socket, state)
        return None

    def _our_socket(self, name, path):
        real = os.path.realpath(path)
        if real == os.path.join(os.path.realpath(self.state_dir(name)), "qmp.sock"):
            return True
        short = self._short_socket_dir()
        try:
            st = os.lstat(short)
        except OSError:
            return False
        return (os.path.dirname(real) == short and bool(_SHORT_SOCKET.match(os.path.basename(real)))
                and stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077)

    def records(self):
        """(running instances, stale records) from <home>/instances; the records that are not
        ours to act on are in self.refused."""
        running, stale, self.refused = [], [], []
        try:
            names = os.listdir(self.home.instances)
        except (FileNotFoundError, NotADirectoryError):
            return running, stale
        for fname in sorted(names):
            if fname.startswith("."):
                continue  # a record being written (see _write_record)
            path = os.path.join(self.home.instances, fname)
            try:
                data, st = _read_record(path)
            except OSError as e:
                if e.errno == errno.ELOOP:
                    self.refused.append(RefusedRecord(path, None, None, "it is a symbolic link"))
                continue
            except ValueError:
                continue  # not JSON: not a record (ops skips it too)
            if data is None or not isinstance(data, dict):
                if data is None:
                    self.refused.append(RefusedRecord(path, None, None, "it is not a regular file"))
                continue
            try:
                inst = Instance(path, data)
            except (ValueError, TypeError, AttributeError):
                continue
            problem = self._record_problem(inst, st)
            if problem:
                self.refused.append(RefusedRecord(path, inst.name, inst.pid, problem))
            elif inst.running:
                running.append(inst)
            else:
                stale.append(inst)
        return running, stale

    def clean_stale(self, stale):
        """Remove stale records (and their sockets); records() vouched for their paths."""
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

    def refused_warnings(self, name=None):
        return [r.warning for r in self.refused if name is None or r.name == name]

    # -- lifecycle --------------------------------------------------------------------------

    def _write_record(self, pid, record):
        """instances/<pid>, owner-only, replaced atomically (the temp name starts with '.', so
        records() skips it)."""
        folder = self.home.instances
        if not os.path.isdir(folder):
            self._private_dir(folder)  # ops' folder: only one we create is made owner-only
        path = os.path.join(folder, str(pid))
        replace_json(path, record)
        return path

    def start(self, name, image, settings, launch_timeout=30.0):
        """Start QEMU daemonized, record it, and wait until QMP answers."""
        validate_instance_name(name)
        state = self._private_dir(self.state_dir(name))
        sock = self.socket_path(name)
        pidfile = os.path.join(state, "qemu.pid")
        console = os.path.join(state, "console.log")
        for path in (sock, pidfile):
            if os.path.lexists(path):
                os.unlink(path)
        fd = os.open(console, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)  # an older console log keeps its mode otherwise
        os.close(fd)
        cfg = qemu.LaunchConfig(name, image, memory=settings["memory"], cpus=settings["cpus"],
                                ports=settings["ports"], volumes=settings["volumes"],
                                shares=settings["shares"], accel=settings["accel"],
                                console=console, qmp_socket=sock, pidfile=pidfile,
                                binary=qemu.find_binary(),
                                read_only_shares=settings.get("read_only_shares") or ())
        argv = qemu.build_argv(cfg)
        try:
            # umask 077: the pidfile and the QMP socket QEMU creates are owner-only too
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, timeout=launch_timeout, check=False,
                                  umask=0o077)
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
        inst = Instance(self._write_record(pid, record), record)
        with QMPSession(sock, timeout=launch_timeout) as session:
            session.execute("query-status")
        return inst, argv

    def stop(self, inst, timeout=10.0):
        """Stop inst's QEMU: the guest is asked to power down and gets `timeout` seconds; then
        QEMU is told to quit, then SIGTERM, then SIGKILL, each with a short bounded wait, so a
        stop ends within timeout + QUIT_GRACE + TERM_GRACE + KILL_GRACE (and QMP's connect).
        A QEMU stopped by SIGSTOP is continued first: only then can it power down or quit."""
        deadline = time.monotonic() + max(0.0, timeout)
        notes = []
        if process_state(inst.pid) in ("T", "t"):
            self._signal(inst, signal.SIGCONT)
            notes.append("it was stopped by a signal: continued it first")
        address = inst.qmp_address
        if inst.qmp_socket and not os.path.exists(inst.qmp_socket):
            address = None
            notes.append("its QMP socket was gone")
        asked = False
        left = deadline - time.monotonic()
        if address and left > 0:
            try:
                with QMPSession(address, timeout=max(0.5, min(5.0, left))) as session:
                    session.execute("system_powerdown")
                    asked = True
            except OpsError:
                notes.append("QMP did not answer")
        how = None
        if asked and _wait_gone(inst.pid, deadline - time.monotonic()):
            how = "powered down"
        if how is None and asked:
            try:
                with QMPSession(address, timeout=QUIT_GRACE) as session:
                    session.execute("quit")
            except OpsError:
                pass
            if _wait_gone(inst.pid, QUIT_GRACE):
                how = "quit after %.0f s" % timeout
        if how is None:
            # no QMP to ask: the whole stop_timeout is SIGTERM's (QEMU exits cleanly on it)
            self._signal(inst, signal.SIGTERM)
            if _wait_gone(inst.pid, max(TERM_GRACE, deadline - time.monotonic())):
                how = "terminated (SIGTERM)"
        if how is None:
            self._signal(inst, signal.SIGKILL)
            if not _wait_gone(inst.pid, KILL_GRACE):
                raise OpsError("QEMU process %d of instance %s is still there %.0f s after "
                               "SIGKILL (state %s); its record %s is kept"
                               % (inst.pid, inst.name, KILL_GRACE, process_state(inst.pid),
                                  inst.record_path))
            how = "killed (SIGKILL)"
        self.clean_stale([inst])
        return "; ".join([how] + notes)

    @staticmethod
    def _signal(inst, sig):
        if inst.running:  # still that QEMU: a pid reused meanwhile is not signalled
            try:
                os.kill(inst.pid, sig)
            except OSError:
                pass


def _wait_gone(pid, timeout):
    deadline = time.monotonic() + max(0.0, timeout)
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def health(inst, timeout=5.0):
    """How an instance fares: dict(status, crash, problem, fatal). status is QEMU's run state
    ('running', 'paused', ...), or 'frozen' (the process is stopped by a signal), 'unreachable'
    (QMP is gone or does not answer), 'unknown' (no QMP to ask). problem says what is wrong,
    for the user; fatal when the instance cannot do its work or cannot be managed."""
    out = {"status": "unknown", "crash": None, "problem": None, "fatal": False}
    if inst.console:
        out["crash"] = crash_lines(read_console(inst.console))
    if _frozen(inst, out):
        return out
    address = inst.qmp_address
    if inst.qmp_socket and not os.path.exists(inst.qmp_socket):
        out.update(status="unreachable", fatal=True, problem=(
            "instance %s (QEMU pid %d) cannot be managed: its QMP socket %s is gone; set state: "
            "restarted to replace it (QEMU is then stopped with SIGTERM)"
            % (inst.name, inst.pid, inst.qmp_socket)))
        return out
    if address:
        try:
            with QMPSession(address, timeout=timeout) as session:
                out["status"] = session.execute("query-status").get("status") or "unknown"
        except OpsError as e:
            if _frozen(inst, out):  # stopped while we asked
                return out
            out.update(status="unreachable", fatal=True, problem=(
                "instance %s (QEMU pid %d) cannot be managed: %s; set state: restarted to replace "
                "it" % (inst.name, inst.pid, e.msg)))
            return out
    if out["crash"]:
        out.update(fatal=True, problem=crash_message("instance %s" % inst.name,
                                                     read_console(inst.console)))
    elif out["status"] in HELD_STATES:
        out["problem"] = ("instance %s is paused (QEMU status %r): its guest does not run; nothing "
                          "was changed - resume it over QMP (cont) or set state: restarted"
                          % (inst.name, out["status"]))
    elif out["status"] not in ("running", "unknown"):
        out.update(fatal=True, problem=(
            "instance %s does not run its guest (QEMU status %r); set state: restarted to "
            "restart it" % (inst.name, out["status"])))
    return out


def _frozen(inst, out):
    """Whether the process is stopped by a signal (then out says so)."""
    state = process_state(inst.pid)
    if state not in ("T", "t"):
        return False
    out.update(status="frozen", fatal=True, problem=(
        "instance %s (QEMU pid %d) is stopped (process state %s, as after SIGSTOP): QEMU and "
        "its guest are frozen and QMP cannot answer; resume it (kill -CONT %d) or set state: "
        "restarted" % (inst.name, inst.pid, state, inst.pid)))
    return True


def wait_for_console(path, pattern, timeout, pid=None, name=None):
    """Wait until the console log matches pattern; (matched text) or an OpsError - at once when
    the console shows a Nanos crash (the guest will never get further)."""
    regex = re.compile(pattern)
    what = "instance %s (waiting for %r)" % (name, pattern) if name else "waiting for %r" % pattern
    deadline = time.monotonic() + timeout
    while True:
        text = read_console(path)
        crashed = crash_message(what, text)
        if crashed:
            raise OpsError(crashed, console_tail=text[-2000:])
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


def settings_diff(running, wanted):
    """Human-readable differences between a running instance's settings and the wanted ones."""
    out = []
    for key in SETTING_KEYS:
        if key == "read_only_shares":  # not recorded before; an instance without such shares
            if (running.get(key) or []) != (wanted.get(key) or []):  # is no mismatch
                out.append("read_only_shares: running %s, wanted %s"
                           % (json.dumps(running.get(key) or []), json.dumps(wanted.get(key))))
        elif running.get(key) != wanted.get(key):
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


def describe(inst, matched=None, checked=None):
    """inst as the modules return it, with its health (checked: health() already asked) and
    what QEMU has attached."""
    out = inst.as_dict()
    checked = checked or health(inst)
    out.update(status=checked["status"], crash=checked["crash"], problem=checked["problem"])
    if checked["status"] in ("frozen", "unreachable"):  # asking again would only time out
        out["attachments"] = None
        out["attachments_error"] = checked["problem"]
    else:
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
