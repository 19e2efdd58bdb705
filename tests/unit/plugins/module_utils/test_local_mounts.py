# -*- coding: utf-8 -*-
"""ops_mount on local instances against real qemu-system-x86_64 (TCG): attach ids taken or out
of range, device ids taken, a device_add QEMU refuses, and guests that crash.

Every check of what is attached is QEMU's own answer (query-block, query-named-block-nodes,
/proc/<pid>/fd); the guests are a stand-in that halts and one whose boot sector prints the
lines of a Nanos page fault on the serial console, as a crashed Nanos does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import signal
import subprocess
import threading
import time

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages
from ansible_collections.unikernel.ops.plugins.module_utils.local import instances, mounts, qemu, records
from ansible_collections.unikernel.ops.plugins.module_utils.local.console import read_console
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes
from ansible_collections.unikernel.ops.tests.unit.conftest import kernel_home, serial_boot_image
from ansible_collections.unikernel.ops.tests.unit.plugins.modules.module_runner import run_module, tree

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed (bindep.txt)")

# What a Nanos page fault leaves on the console (src/x86_64/interrupt.c dump_context).
CRASH = ("en1: assigned 10.0.2.15\n"
         "lastvector: 000000000000000e (Page fault)\n"
         "     frame: ffffc00002000000\n"
         "error code: 0000000000000002\n"
         "   address: 0000000000000010\n"
         "\n"
         "frame trace:\n"
         "ffffc00001fffe50:   ffffffff80047bb1\t(storage_attach + 0000000000000071/00000000000000b0)\n")
CRASH_LINES = CRASH.split("\n", 1)[1].replace("\n\n", "\n").rstrip("\n")  # as console.py quotes them
RESTART = "restart it: unikernel.ops.ops_instance state: restarted"


@pytest.fixture
def store(tmp_path, c_programs):
    # deep enough that the QMP sockets live in /tmp (SOCKET_PATH_MAX), so that tree() can read
    # every file of the ops home
    home = kernel_home(tmp_path / ("ops-home-" + "d" * 60) / ".ops")
    vols = OnPremVolumes(home)
    for name in ("data", "extra", "other", "scsi0", "boot"):
        vols.present(VolumeSpec(name=name))
    LocalImages(home).present(ImageSpec(name="app", program=c_programs["static"],
                                        mounts={"data": "/data", "%1": "/hot"}))
    s = records.InstanceStore(home)
    yield s
    for inst in s.records()[0]:
        s.stop(inst, 0.5)


def start(store, name="vm", image="app", volumes=()):
    p = dict(name=name, image=image, state="running", memory="64M", cpus=1, ports=[],
             volumes=list(volumes), shares={}, accel="tcg", wait_for=None, timeout=20,
             stop_timeout=1, force=False)
    instances.ensure_state(store, p)
    return store.find(name)[0]


def qemu_says(inst):
    with QMPSession(inst.qmp_address) as qmp:
        return (dict((a["id"], a) for a in qmp.attachments()),
                qmp.execute("query-named-block-nodes", {"flat": True}))


def volume_path(store, name):
    return instances.resolve_volume(store.home, name).path


def open_by(pid, path):
    """Whether process pid has path open (QEMU keeps a volume's file open while it has a node)."""
    fds = "/proc/%d/fd" % pid
    for fd in os.listdir(fds):
        try:
            if os.readlink(os.path.join(fds, fd)) == path:
                return True
        except OSError:
            pass
    return False


def ops_mount(store, tmp_path, **args):
    args.setdefault("instance", "vm")
    t0 = time.monotonic()
    result, rc = run_module("ops_mount", dict(args, ops_dir=store.home.root), tmp_path)
    return result, rc, time.monotonic() - t0


def refused(store, tmp_path, msg, **args):
    """ops_mount fails with exactly msg, changes nothing of the ops home, and is no bug."""
    before = tree(store.home.root)
    result, rc, dummy = ops_mount(store, tmp_path, **args)
    assert rc != 0 and result.get("failed"), result
    assert result["msg"] == msg
    assert "Traceback" not in json.dumps(result)
    assert tree(store.home.root) == before, "the ops home changed"
    return result


def test_attach_ids_and_device_ids_on_hot_plug(store, tmp_path):
    inst = start(store, volumes=[{"volume": "data", "attach_id": 1}])
    # taken at boot, in check mode too
    msg = ("attach_id %1 is taken on instance vm by volume data (device data); give volume "
           "extra another attach_id, or detach that one first")
    refused(store, tmp_path, msg, volume="extra", attach_id=1)
    refused(store, tmp_path, msg, volume="extra", attach_id=1, _ansible_check_mode=True)
    # out of the range Nanos keeps; the top of it is taken as it is
    refused(store, tmp_path, "volume extra: attach_id 2147483648 is out of range for a local "
            "instance: Nanos keeps %N in a 32-bit signed number, so give an N from 0 to 2147483647",
            volume="extra", attach_id=2147483648)
    refused(store, tmp_path, "volume extra: attach_id -1 is not a number from 0 (the N of %N)",
            volume="extra", attach_id=-1)
    out = mounts.ensure_attached(store, "vm", "extra", attach_id=2147483647)
    assert out.changed and out.volume["attach_id"] == 2147483647
    # taken by a hot-plugged volume
    refused(store, tmp_path, "attach_id %2147483647 is taken on instance vm by volume extra "
            "(device extra); give volume other another attach_id, or detach that one first",
            volume="other", attach_id=2147483647)
    # a volume named after a device of the instance would be device_add'ed under its id
    refused(store, tmp_path, "volume scsi0 cannot be hot-plugged into instance vm: its QEMU device "
            "id scsi0 is taken there by the instance's virtio-scsi-pci device (device ids are "
            "unique); give the volume another name", volume="scsi0")
    refused(store, tmp_path, "volume boot cannot be hot-plugged into instance vm: its QEMU device "
            "id boot is taken there by the instance's scsi-hd boot disk (device ids are unique); "
            "give the volume another name", volume="boot", force=True)
    refused(store, tmp_path, "timeout 0 is not valid: give the seconds to wait for QEMU, 1 or more",
            volume="other", timeout=0)
    attached, nodes = qemu_says(inst)
    assert sorted(attached) == ["boot", "data", "extra"]
    assert attached["data"]["device_id"] == "persistent-disk-1"
    assert attached["extra"]["device_id"] == "persistent-disk-2147483647"
    assert not mounts.ensure_attached(store, "vm", "extra", attach_id=2147483647).changed
    # a damaged volume file is refused before QEMU is asked, and left as it is
    path = volume_path(store, "other")
    with open(path, "r+b") as f:
        f.write(bytes(6))
    damaged = ("volume 'other' (%s) cannot be attached to instance 'vm': its header is damaged "
               "(sector 0 does not start with the TFS magic NVMTFS). It is left as it is: restore "
               "it from a backup, or delete it (unikernel.ops.ops_volume with state: absent) and "
               "create it again" % path)
    refused(store, tmp_path, damaged, volume="other")
    refused(store, tmp_path, damaged, volume="other", _ansible_check_mode=True)
    assert sorted(qemu_says(inst)[0]) == ["boot", "data", "extra"]
    # at boot, a volume named after a device of every instance is refused before QEMU starts
    with pytest.raises(OpsError, match=r"^volume scsi0 cannot be a boot volume: its QEMU device id "
                                       r"scsi0 is the instance's own SCSI controller \(device ids "
                                       r"are unique\); give the volume another name$"):
        start(store, name="vm2", volumes=["scsi0"])


def test_a_device_add_qemu_refuses_leaves_nothing(store, tmp_path):
    """Another user's QEMU has the volume open read-only: ours may read it, and its write lock
    refuses our device_add of a writer after blockdev-add has succeeded."""
    inst = start(store)
    path = volume_path(store, "other")
    holder = subprocess.Popen([qemu.find_binary(), "-machine", "q35", "-S", "-display", "none",
                               "-accel", "tcg", "-blockdev", json.dumps(qemu.blockdev("h", path, True)),
                               "-device", "virtio-scsi-pci,id=s",
                               "-device", "scsi-hd,bus=s.0,drive=h"])
    try:
        deadline = time.monotonic() + 20
        while not open_by(holder.pid, path):
            assert holder.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        hint = ("QEMU refused running device_add: Failed to get \"write\" lock (another process "
                "has %s open; stop it, then attach again)" % path)
        result = refused(store, tmp_path, "volume other was not attached to instance vm: %s\n"
                         "nothing of the attach is left in QEMU" % hint, volume="other")
        assert result["qmp_error"] == "GenericError"
        attached, nodes = qemu_says(inst)
        assert sorted(attached) == ["boot"]
        assert [n for n in nodes if n["node-name"] == "other" or n.get("file") == path] == []
        assert not open_by(inst.pid, path)
        # read-only it can be; re-attached read-write (force) the same refusal, and the
        # read-only attachment is put back
        assert mounts.ensure_attached(store, "vm", "other", read_only=True, attach_id=3).changed
        with pytest.raises(OpsError) as e:
            mounts.ensure_attached(store, "vm", "other", attach_id=3, force=True)
        assert e.value.msg == ("volume other was not attached to instance vm: %s\nnothing of the "
                               "attach is left in QEMU; its previous attachment (read_only=True, "
                               "attach_id=3) was restored" % hint)
        attached, nodes = qemu_says(inst)
        assert attached["other"]["read_only"] is True and attached["other"]["attach_id"] == 3
        assert [n["node-name"] for n in nodes if n["node-name"] == "other"] == ["other"]
    finally:
        holder.kill()
        holder.wait()
    # once the other QEMU is gone, the same attach works: nothing of ours held the file
    out = mounts.ensure_attached(store, "vm", "other", attach_id=3, force=True)
    assert out.changed and qemu_says(inst)[0]["other"]["read_only"] is False


def test_a_crashed_guest_is_reported_at_once(store, tmp_path):
    image = serial_boot_image(tmp_path / "crashes.img", CRASH)
    inst = start(store, name="crashy", image=image)
    deadline = time.monotonic() + 20
    while CRASH_LINES.splitlines()[-1] not in read_console(inst.console):
        assert time.monotonic() < deadline, read_console(inst.console)
        time.sleep(0.05)
    msg = ("volume data was not attached to instance crashy (%s): the guest crashed (its console "
           "shows a Nanos crash):\n%s" % (RESTART, CRASH_LINES))
    refused(store, tmp_path, msg, instance="crashy", volume="data", _ansible_check_mode=True)
    result, rc, took = ops_mount(store, tmp_path, instance="crashy", volume="data", timeout=60)
    assert rc != 0 and result["msg"] == msg and took < 30
    assert sorted(qemu_says(inst)[0]) == ["boot"]
    # the crash is why its QEMU is gone (Nanos' vm_exit ends QEMU; here a kill does)
    os.kill(inst.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while records.pid_alive(inst.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(OpsError) as e:
        mounts.ensure_attached(store, "crashy", "data")
    assert e.value.msg == ("instance 'crashy' is not running (its QEMU process %d is gone; the "
                           "stale record was removed): the guest crashed (its console shows a "
                           "Nanos crash):\n%s" % (inst.pid, CRASH_LINES))


def test_a_guest_that_crashes_while_attaching_is_detached_at_once(store):
    """The crash lines reach the console the moment QEMU opens the volume (written here: the
    stand-in guest cannot take a LUN up); ops_mount reports them within its settle time, long
    before its timeout, and leaves nothing attached."""
    inst = start(store)
    path = volume_path(store, "extra")
    stop = threading.Event()

    def crash_on_open():
        while not stop.is_set():
            if open_by(inst.pid, path):
                with open(inst.console, "a") as f:
                    f.write(CRASH)
                return
            time.sleep(0.001)

    watcher = threading.Thread(target=crash_on_open)
    watcher.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(OpsError) as e:
            mounts.ensure_attached(store, "vm", "extra", attach_id=2, timeout=60)
    finally:
        stop.set()
        watcher.join()
    assert time.monotonic() - t0 < 10
    assert e.value.msg == ("volume extra was not attached to instance vm: the guest of instance vm "
                           "crashed when volume extra was attached (%s): the guest crashed (its "
                           "console shows a Nanos crash):\n%s\nnothing of the attach is left in "
                           "QEMU" % (RESTART, CRASH_LINES))
    attached, nodes = qemu_says(inst)
    assert sorted(attached) == ["boot"]
    assert [n for n in nodes if n["node-name"] == "extra" or n.get("file") == path] == []
    assert not open_by(inst.pid, path)
    # and from now on before anything is attached
    with pytest.raises(OpsError, match="^volume other was not attached to instance vm \\(restart"):
        mounts.ensure_attached(store, "vm", "other")
    assert sorted(qemu_says(inst)[0]) == ["boot"]
