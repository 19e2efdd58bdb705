# -*- coding: utf-8 -*-
"""Local instance health against real qemu-system-x86_64 (TCG): owner-only records and state
whatever the umask, a paused, frozen (SIGSTOP) or QMP-less QEMU said and stopped within
stop_timeout, a Nanos crash on the console reported at once, and records that are not ours left
alone. Guests are one boot sector each: the stand-in image (it halts) or one that prints given
text on the serial port and halts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages
from ansible_collections.unikernel.ops.plugins.module_utils.local import instances, records
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession
from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home, serial_boot_image
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import tree

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed (bindep.txt)")

STOP_TIMEOUT = 2
CRASH = (b"booting\r\n"
         b"lastvector: 000000000000000e (Page fault)\r\n"
         b"     rip: ffffffff8001a2b3\r\n"
         b"frame trace:\r\n"
         b"ffffffff8001a2b3\r\n")


@pytest.fixture
def store(tmp_path):
    home = str(tmp_path / "ops home" / ".ops")
    s = records.InstanceStore(home)
    yield s
    for inst in s.records()[0]:
        s.stop(inst, 0.5)


@pytest.fixture
def umask_000():
    old = os.umask(0)
    yield
    os.umask(old)


def params(**kw):
    p = dict(name="vm", image=None, state="running", memory="64M", cpus=1, ports=[], volumes=[],
             shares={}, accel="tcg", wait_for=None, timeout=20, stop_timeout=STOP_TIMEOUT,
             force=False)
    p.update(kw)
    return p


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def check_mode_says(store, p):
    """What ensure_state(p) says in check mode of the instance as it is - its OpsError's message,
    or the warnings of an Outcome that changes nothing - asserting that the ops home is as it
    was."""
    before = tree(store.home.root)
    try:
        out, dummy = instances.ensure_state(store, p, check_mode=True)
    except OpsError as e:
        said = e.msg
    else:
        assert not out.changed, out.actions
        said = out.warnings
    assert tree(store.home.root) == before, "check mode changed the ops home"
    return said


def test_owner_only_under_umask_000_readonly_share_and_a_paused_guest(store, umask_000, tmp_path,
                                                                      c_programs):
    home = kernel_home(store.home.root)
    shared = tmp_path / "shared"
    shared.mkdir()
    LocalImages(home).present(ImageSpec(name="app", program=c_programs["static"],
                                        mounts={str(shared): "/shared:ro"}))
    out, extra = instances.ensure_state(store, params(image="app"))
    assert out.changed and out.warnings == []
    inst = out.volume
    # the share the image mounts :ro is read-only in QEMU too
    assert "local,path=%s,mount_tag=0,security_model=none,multidevs=remap,id=fs0,readonly=on" \
        % shared in extra["argv"]
    assert inst["settings"]["read_only_shares"] == ["0"]
    state = store.state_dir("vm")
    for folder in (store.home.state(), store.home.state("instances"), state, store.home.instances):
        assert mode(folder) == 0o700, folder
    for path in (os.path.join(store.home.instances, str(inst["pid"])),
                 os.path.join(state, "console.log"), os.path.join(state, "qemu.pid")):
        assert mode(path) == 0o600, path
    # QEMU makes its socket 0750 (it daemonizes with umask 027): no one else can connect, and
    # its folder is owner-only as well
    assert mode(inst["qmp_socket"]) & 0o022 == 0 and mode(os.path.dirname(inst["qmp_socket"])) == 0o700
    assert os.listdir(store.home.instances) == [str(inst["pid"])]  # no temp file left
    assert inst["status"] == "running" and inst["problem"] is None

    # paused over QMP: said (QMP still manages it), nothing changed
    with QMPSession(inst["qmp_socket"]) as qmp:
        qmp.execute("stop")
    out, extra = instances.ensure_state(store, params(image="app"))
    assert not out.changed and out.volume["status"] == "paused"
    assert out.warnings == ["instance vm is paused (QEMU status 'paused'): its guest does not run; "
                            "nothing was changed - resume it over QMP (cont) or set state: restarted"]
    assert check_mode_says(store, params(image="app")) == out.warnings
    listed = instances.LocalInstances(home).list_instances()
    assert [i["status"] for i in listed["instances"]] == ["paused"]
    t0 = time.monotonic()
    out, extra = instances.ensure_state(store, params(state="stopped"))
    assert time.monotonic() - t0 < STOP_TIMEOUT + 5
    assert out.actions == ["stop vm (pid %d): quit after %d s" % (inst["pid"], STOP_TIMEOUT)]
    assert not records.pid_alive(inst["pid"])


def test_frozen_or_qmp_less_qemu_is_said_and_stopped_within_stop_timeout(store, tmp_path):
    image = serial_boot_image(tmp_path / "idle.img", b"idle\r\n")
    out, extra = instances.ensure_state(store, params(image=image, wait_for="idle"))
    first = out.volume["pid"]
    os.kill(first, signal.SIGSTOP)
    deadline = time.monotonic() + 5
    while records.process_state(first) != "T" and time.monotonic() < deadline:
        time.sleep(0.02)  # the signal is delivered, not yet acted on, right after kill()
    t0 = time.monotonic()
    with pytest.raises(OpsError) as e:
        instances.ensure_state(store, params(image=image))
    assert time.monotonic() - t0 < 2  # /proc says it, without waiting for QMP to time out
    assert e.value.msg == (
        "instance vm (QEMU pid %d) is stopped (process state T, as after SIGSTOP): QEMU and its "
        "guest are frozen and QMP cannot answer; resume it (kill -CONT %d) or set state: "
        "restarted" % (first, first))
    assert check_mode_says(store, params(image=image)) == e.value.msg
    assert records.process_state(first) == "T"  # check mode did not continue it
    described = instances.LocalInstances(store.home.root).list_instances("vm")["instances"][0]
    assert described["status"] == "frozen" and described["attachments"] is None
    # replaced (force, other memory): the frozen QEMU is continued, then stopped in time
    t0 = time.monotonic()
    out, extra = instances.ensure_state(store, params(image=image, memory="96M", force=True))
    assert time.monotonic() - t0 < STOP_TIMEOUT + 5 + 10  # the stop, then a TCG boot
    assert out.actions[0] == ("stop vm (pid %d): quit after %d s; it was stopped by a signal: "
                              "continued it first" % (first, STOP_TIMEOUT))
    assert not records.pid_alive(first)
    second = out.volume["pid"]

    # its QMP socket removed: it cannot be managed, said; stopped with SIGTERM at once
    sock = out.volume["qmp_socket"]
    os.unlink(sock)
    with pytest.raises(OpsError) as e:
        instances.ensure_state(store, params(image=image, memory="96M"))
    assert e.value.msg == ("instance vm (QEMU pid %d) cannot be managed: its QMP socket %s is gone; "
                           "set state: restarted to replace it (QEMU is then stopped with SIGTERM)"
                           % (second, sock))
    assert check_mode_says(store, params(image=image, memory="96M")) == e.value.msg
    t0 = time.monotonic()
    out, extra = instances.ensure_state(store, params(state="absent"))
    assert time.monotonic() - t0 < STOP_TIMEOUT + 5
    assert out.actions == ["stop vm (pid %d): terminated (SIGTERM); its QMP socket was gone" % second,
                           "remove %s" % store.state_dir("vm")]
    assert not records.pid_alive(second) and store.records() == ([], [])


def test_a_crash_on_the_console_fails_at_once(store, tmp_path):
    image = serial_boot_image(tmp_path / "crash.img", CRASH)
    lines = ("lastvector: 000000000000000e (Page fault)\n     rip: ffffffff8001a2b3\n"
             "frame trace:\nffffffff8001a2b3")
    t0 = time.monotonic()
    with pytest.raises(OpsError) as e:
        instances.ensure_state(store, params(image=image, wait_for="listening on", timeout=120))
    assert time.monotonic() - t0 < 30  # not the 120 s of the timeout
    assert e.value.msg == ("instance vm (waiting for 'listening on'): the guest crashed (its "
                           "console shows a Nanos crash):\n" + lines)
    # QEMU still runs the hung guest: a later run says so too, without wait_for
    with pytest.raises(OpsError) as e:
        instances.ensure_state(store, params(image=image))
    assert e.value.msg == "instance vm: the guest crashed (its console shows a Nanos crash):\n" + lines
    assert check_mode_says(store, params(image=image)) == e.value.msg
    listed = instances.LocalInstances(store.home.root).list_instances("vm")["instances"][0]
    assert listed["crash"] == lines and listed["status"] == "running"


# -- records that are not ours: never signalled, connected to or removed -----------------------

def fake_qemu(marker):
    """A live process whose command line looks like our QEMU's (it names marker)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "qemu-system-x86_64", "-pidfile", marker])
    time.sleep(0.2)
    return proc


def write_record(store, pid, **ours):
    state = store.state_dir("vm")
    data = {"qmp_socket": os.path.join(state, "qmp.sock"), "console": os.path.join(state, "console.log"),
            "argv": ["qemu-system-x86_64", "-pidfile", os.path.join(state, "qemu.pid")]}
    data.update(ours)
    os.makedirs(store.home.instances, exist_ok=True)
    path = os.path.join(store.home.instances, str(pid))
    with open(path, "w") as f:
        json.dump({"instance": "vm", "image": "x", "pid": str(pid), "mgmt": "",
                   "unikernel_ops": data}, f)
    os.chmod(path, 0o600)
    return path


@pytest.mark.parametrize("case", ["foreign owner", "group-writable", "symlink", "console outside",
                                  "socket outside", "pidfile outside"])
def test_a_record_not_ours_is_left_alone(store, tmp_path, case):
    elsewhere = str(tmp_path / "elsewhere")
    os.makedirs(elsewhere)
    pidfile = os.path.join(store.state_dir("vm"), "qemu.pid")
    if case == "pidfile outside":
        pidfile = os.path.join(elsewhere, "qemu.pid")
    proc = fake_qemu(pidfile)
    try:
        if case == "console outside":
            path = write_record(store, proc.pid, console=os.path.join(elsewhere, "console.log"))
        elif case == "socket outside":
            path = write_record(store, proc.pid, qmp_socket=os.path.join(elsewhere, "victim"))
            with open(os.path.join(elsewhere, "victim"), "w") as f:
                f.write("not a socket")
        elif case == "pidfile outside":
            path = write_record(store, proc.pid, argv=["qemu-system-x86_64", "-pidfile", pidfile])
        else:
            path = write_record(store, proc.pid)
        if case == "foreign owner":
            if os.getuid() != 0:
                pytest.skip("giving a file to another user needs root")
            os.chown(path, 65534, 65534)
        elif case == "group-writable":
            os.chmod(path, 0o664)
        elif case == "symlink":
            target = os.path.join(elsewhere, "record")
            shutil.move(path, target)
            os.symlink(target, path)
        state = os.path.realpath(store.state_dir("vm"))
        why = {
            "foreign owner": "it is owned by uid 65534, not by this user (uid %d)" % os.getuid(),
            "group-writable": "other users can write it (mode 0664); if it is yours, make it "
                              "writable by you only (chmod go-w)",
            "symlink": "it is a symbolic link",
            "console outside": "its console log %s/console.log is not in the instance's state "
                               "folder %s" % (elsewhere, state),
            "socket outside": "its QMP socket %s/victim is not in the instance's state folder %s"
                              % (elsewhere, state),
            "pidfile outside": "its pidfile %s is not in the instance's state folder %s"
                               % (pidfile, state),
        }[case]
        warning = ("the record %s (instance %s, pid %s) was left alone - nothing it names was "
                   "stopped, connected to or removed: %s"
                   % (path, "None" if case == "symlink" else "'vm'",
                      "None" if case == "symlink" else proc.pid, why))
        listed = instances.LocalInstances(store.home.root).list_instances()
        assert listed["instances"] == [] and listed["stale"] == []
        assert listed["warnings"] == [warning]
        if case != "symlink":  # a link is not read, so its name is not known
            for state_wanted in ("stopped", "absent"):
                out, extra = instances.ensure_state(store, params(state=state_wanted))
                assert not out.changed or out.actions == ["remove %s" % store.state_dir("vm")]
                assert out.warnings == [warning]
        assert proc.poll() is None, "a record not ours got its pid signalled"
        assert os.path.lexists(path)
        if case == "socket outside":
            assert open(os.path.join(elsewhere, "victim")).read() == "not a socket"
    finally:
        proc.kill()
        proc.wait()
