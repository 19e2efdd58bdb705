# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a running local instance fares: QEMU's run state over QMP, a process frozen by a signal,
a QMP socket gone, and the Nanos crash lines on its console - said at once, never passed off as
a running guest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import re
import time

from ansible_collections.unikernel.ops.plugins.module_utils.local.console import (
    crash_lines, crash_message, read_console,
)
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession
from ansible_collections.unikernel.ops.plugins.module_utils.local.records import pid_alive, stopped_state

# QEMU run states in which the guest is held on purpose and QMP still works (`cont` resumes it)
HELD_STATES = ("paused", "suspended", "debug", "prelaunch", "inmigrate", "postmigrate",
               "finish-migrate", "save-vm", "restore-vm", "colo")


def health(inst, timeout=5.0, ask_qmp=True):
    """How an instance fares: dict(status, crash, problem, fatal). status is QEMU's run state
    ('running', 'paused', ...), or 'frozen' (the process is stopped by a signal), 'unreachable'
    (QMP is gone or does not answer), 'unknown' (no QMP to ask). problem says what is wrong,
    for the user; fatal when the instance cannot do its work or cannot be managed. ask_qmp
    False: what needs no QMP round trip only (for a caller about to open its own session)."""
    with contextlib.ExitStack() as stack:
        return health_session(inst, stack, timeout, ask_qmp)[0]


def health_session(inst, stack, timeout=5.0, ask_qmp=True):
    """(health, the QMP session it asked on, left open on stack for more questions), so that a
    caller needs no second session; the session is None when QMP was not asked or failed."""
    out = {"status": "unknown", "crash": None, "problem": None, "fatal": False}
    console = read_console(inst.console) if inst.console else ""
    out["crash"] = crash_lines(console)
    if _frozen(inst, out):
        return out, None
    address = inst.qmp_address
    if inst.qmp_socket_gone:
        out.update(status="unreachable", fatal=True, problem=(
            "instance %s (QEMU pid %d) cannot be managed: its QMP socket %s is gone; set state: "
            "restarted to replace it (QEMU is then stopped with SIGTERM)"
            % (inst.name, inst.pid, inst.qmp_socket)))
        return out, None
    session = None
    if address and ask_qmp:
        try:
            session = stack.enter_context(QMPSession(address, timeout=timeout))
            out["status"] = session.execute("query-status").get("status") or "unknown"
        except OpsError as e:
            if session is not None:
                session.close()  # closed before anything else, as a with block would (idempotent)
            if _frozen(inst, out):  # stopped while we asked
                return out, None
            out.update(status="unreachable", fatal=True, problem=(
                "instance %s (QEMU pid %d) cannot be managed: %s; set state: restarted to replace "
                "it" % (inst.name, inst.pid, e.msg)))
            return out, None
    if out["crash"]:
        out.update(fatal=True, problem=crash_message("instance %s" % inst.name, console))
    elif out["status"] in HELD_STATES:
        out["problem"] = ("instance %s is paused (QEMU status %r): its guest does not run; nothing "
                          "was changed - resume it over QMP (cont) or set state: restarted"
                          % (inst.name, out["status"]))
    elif out["status"] not in ("running", "unknown"):
        out.update(fatal=True, problem=(
            "instance %s does not run its guest (QEMU status %r); set state: restarted to "
            "restart it" % (inst.name, out["status"])))
    return out, session


def _frozen(inst, out):
    """Whether the process is stopped by a signal (then out says so)."""
    state = stopped_state(inst.pid)
    if state is None:
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
