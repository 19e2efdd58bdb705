# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local instances' records: QEMU processes started from images, recorded where ops records them.

<ops home>/instances/<pid> holds ops' JSON (instance, image, ports, bridged, private_ip, mac, pid,
mgmt, arch) plus our own key `unikernel_ops` (settings, QMP socket, console log), so that
`ops instance list` shows our instances and we show ops'. A record whose process is gone is
stale: it is removed, as ops does. Our QMP sockets, console logs and pidfiles live in
<ops home>/.unikernel-ops/instances/<name>/ (mode 0700). The store starts and stops them.

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
import signal
import stat
import subprocess
import time

from ansible_collections.unikernel.ops.plugins.module_utils.local import qemu
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import (
    OpsHome, private_dirs, proc_stat_fields, replace_json,
)
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession

_SHORT_SOCKET = re.compile(r"^[0-9a-f]{16}\.sock$")
SOCKET_PATH_MAX = 100  # AF_UNIX paths must be shorter than 108 bytes
# what a stop has after stop_timeout: for QMP quit, then SIGTERM, then SIGKILL
QUIT_GRACE, TERM_GRACE, KILL_GRACE = 1.0, 1.0, 2.0


def validate_instance_name(name):
    if not name or "/" in name or "\0" in name or name.startswith(".") or len(name) > 64:
        raise OpsError("instance name %r cannot be used (no '/', no leading '.', at most 64 "
                       "characters)" % (name,))
    return name


def process_state(pid):
    """The state letter of /proc/<pid>/stat (R, S, D, T for stopped by a signal, t for traced,
    Z...), or None when there is no such process."""
    fields = proc_stat_fields(pid)
    return fields[0] if fields else None


def stopped_state(pid):
    """The state letter when pid is stopped by a signal (T) or traced (t): QEMU is frozen and
    QMP cannot answer. None otherwise."""
    state = process_state(pid)
    return state if state in ("T", "t") else None


def _cmdline(pid):
    """The command line of a live (not zombie) pid, as bytes; None when there is none to read."""
    if process_state(pid) in (None, "Z", "X"):
        return None
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read()
    except (OSError, ValueError):
        return None


def pid_alive(pid, marker=None):
    """Whether pid is a live (not zombie) process whose command line contains marker."""
    if marker is None:
        return process_state(pid) not in (None, "Z", "X")
    cmdline = _cmdline(pid)
    return cmdline is not None and marker.encode() in cmdline


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
    def qmp_socket_gone(self):
        """Whether our QMP socket is no longer there: QEMU cannot be asked anything."""
        return bool(self.qmp_socket) and not os.path.exists(self.qmp_socket)

    @property
    def running(self):
        """Whether the recorded pid is still this QEMU, run by this user: a pid reused after a
        reboot must not pass, so its command line must name our pidfile (ours) or the image
        (ops')."""
        cmdline = _cmdline(self.pid)  # read once for every marker
        if cmdline is None or b"qemu" not in cmdline or _process_uid(self.pid) != os.getuid():
            return False
        marker = self.pidfile or self.data.get("image")
        return marker.encode() in cmdline if marker else True

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

    @staticmethod
    def _private_dir(path):
        """path owner-only (0700) whatever the umask, with its missing folders (private_dirs),
        and a real folder of this user: private_dirs follows a link and leaves another user's
        folder as it is, and neither may hold our sockets and pidfiles."""
        try:
            private_dirs(path)
        except OSError as e:
            # something else where path should be is said below, as for a link
            if not (isinstance(e, FileExistsError) and e.filename == os.path.abspath(path)):
                raise OpsError("cannot create %s: %s" % (e.filename or path, e.strerror))
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            raise OpsError("%s is not a folder of this user (uid %d); remove it, or use an ops "
                           "home of your own" % (path, os.getuid()))
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
        if stopped_state(inst.pid):
            self._signal(inst, signal.SIGCONT)
            notes.append("it was stopped by a signal: continued it first")
        address = inst.qmp_address
        if inst.qmp_socket_gone:
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
