# -*- coding: utf-8 -*-
"""Local instances and hot-plug against real qemu-system-x86_64 (TCG), checked over QMP.

The guest is a stand-in image (its boot sector halts the CPU): every assertion about
attachments is made against QEMU's own answer, not against our records.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.local import instances
from ansible_collections.unikernel.ops.plugins.module_utils.local import mounts
from ansible_collections.unikernel.ops.plugins.module_utils.local import records
from ansible_collections.unikernel.ops.plugins.module_utils.local import qemu
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec
from ansible_collections.unikernel.ops.plugins.module_utils.local.qmp import QMPSession
from ansible_collections.unikernel.ops.tests.unit.conftest import make_release

pytestmark = pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-system-x86_64 is not installed (bindep.txt)")


@pytest.fixture
def env(tmp_path, c_programs):
    # a path with spaces, as users have
    home = str(tmp_path / "ops home with spaces" / ".ops")
    make_release(home, "0.1.99")
    with open(os.path.join(home, "latest.txt"), "w") as f:
        f.write("0.1.99")
    vols = OnPremVolumes(home)
    for name in ("data", "extra", "other"):
        vols.present(VolumeSpec(name=name))
    LocalImages(home).present(ImageSpec(name="app image", program=c_programs["static"],
                                        mounts={"data": "/data", "%1": "/hot"}))
    store = records.InstanceStore(home)
    yield store
    running, dummy = store.records()
    for inst in running:
        store.stop(inst, 0.5)


def params(**kw):
    p = dict(name="vm", image="app image", state="running", memory="128M", cpus=1, ports=[],
             volumes=[], shares={}, accel="auto", wait_for=None, timeout=20, stop_timeout=1,
             force=False)
    p.update(kw)
    return p


def qemu_says(store, name):
    inst, dummy = store.find(name)
    with QMPSession(inst.qmp_address) as qmp:
        return dict((a["id"], a) for a in qmp.attachments())


def test_start_idempotent_mismatch_restart_stop(env):
    store = env
    out, extra = instances.ensure_state(store, params(), check_mode=True)
    assert out.changed and store.find("vm")[0] is None
    out, extra = instances.ensure_state(store, params(volumes=["data"]))
    assert out.changed and extra["argv"][0].endswith("qemu-system-x86_64")
    inst = out.volume
    assert os.path.exists("/proc/%d" % inst["pid"])
    assert os.stat(inst["qmp_socket"]).st_mode & 0o077 == 0 or \
        os.stat(os.path.dirname(inst["qmp_socket"])).st_mode & 0o077 == 0  # owner-only
    assert set(a["id"] for a in inst["attachments"]) == {"boot", "data"}
    record = json.load(open(os.path.join(store.home.instances, str(inst["pid"]))))
    assert record["instance"] == "vm" and record["pid"] == str(inst["pid"])
    for key in ("image", "ports", "bridged", "private_ip", "mac", "mgmt", "arch"):
        assert key in record  # ops' own keys, so `ops instance list` reads it
    again, extra = instances.ensure_state(store, params(volumes=["data"]))
    assert not again.changed and again.volume["pid"] == inst["pid"]
    differ, extra = instances.ensure_state(store, params(volumes=["data"], memory="256M"))
    assert not differ.changed and extra["mismatch"] == ['memory: running "128M", wanted "256M"']
    restarted, extra = instances.ensure_state(store, params(volumes=["data"], memory="256M",
                                                            force=True))
    assert restarted.changed and restarted.volume["pid"] != inst["pid"]
    assert not os.path.exists("/proc/%d/cmdline" % inst["pid"]) or \
        b"qemu" not in open("/proc/%d/cmdline" % inst["pid"], "rb").read()
    stopped, extra = instances.ensure_state(store, params(state="stopped"))
    assert stopped.changed and stopped.volume is None and store.find("vm")[0] is None
    assert not instances.ensure_state(store, params(state="stopped"))[0].changed
    gone, extra = instances.ensure_state(store, params(state="absent"))
    assert gone.changed and not os.path.exists(store.state_dir("vm"))


def test_hotplug_cycle_against_qemu(env):
    store = env
    instances.ensure_state(store, params())
    check = mounts.ensure_attached(store, "vm", "extra", attach_id=1, check_mode=True)
    assert check.changed and "extra" not in qemu_says(store, "vm")
    out = mounts.ensure_attached(store, "vm", "extra", attach_id=1)
    assert out.changed and out.warnings == []
    att = qemu_says(store, "vm")["extra"]
    assert att["attach_id"] == 1 and att["device_id"] == "persistent-disk-1"
    assert att["read_only"] is False and att["file"] == out.volume["path"]
    assert not mounts.ensure_attached(store, "vm", "extra", attach_id=1).changed
    with pytest.raises(OpsError, match="attached to vm as .* with read_only=False, attach_id=1"):
        mounts.ensure_attached(store, "vm", "extra", read_only=True)
    out = mounts.ensure_detached(store, "vm", "extra")
    assert out.changed and "extra" not in qemu_says(store, "vm")
    assert not mounts.ensure_detached(store, "vm", "extra").changed
    # attach again after detach: proves QEMU released the node and the file
    out = mounts.ensure_attached(store, "vm", "extra", read_only=True)
    assert out.changed
    assert "the guest will not mount it" in out.warnings[0]  # the image mounts data and %1 only
    att = qemu_says(store, "vm")["extra"]
    assert att["read_only"] is True and att["attach_id"] is None
    out = mounts.ensure_attached(store, "vm", "extra", attach_id=1, force=True)
    assert out.changed and qemu_says(store, "vm")["extra"]["attach_id"] == 1


def test_a_volume_is_not_attached_twice(env, c_programs):
    store = env
    for name in ("second", "third"):
        LocalImages(store.home.root).present(ImageSpec(name=name, program=c_programs["static"]))
    instances.ensure_state(store, params(name="a", volumes=["data"]))
    with pytest.raises(OpsError, match="in use by running instance a; a guest writes to its image"):
        instances.ensure_state(store, params(name="b"))
    instances.ensure_state(store, params(name="b", image="second"))
    with pytest.raises(OpsError, match="attached to running instance a"):
        mounts.ensure_attached(store, "b", "data")
    with pytest.raises(OpsError, match="attached to running instance a"):
        instances.ensure_state(store, params(name="c", image="third", volumes=["data"]))
    assert "data" not in qemu_says(store, "b")


def test_faults(env):
    store = env
    with pytest.raises(OpsError, match="volume 'nope' does not exist"):
        instances.ensure_state(store, params(volumes=["nope"]))
    with pytest.raises(OpsError, match="image 'missing' does not exist"):
        instances.ensure_state(store, params(image="missing"))
    instances.ensure_state(store, params())
    with pytest.raises(OpsError, match="volume 'nope' does not exist"):
        mounts.ensure_attached(store, "vm", "nope")
    with pytest.raises(OpsError, match="instance 'ghost' is not running"):
        mounts.ensure_attached(store, "ghost", "extra")
    # QEMU stopped with SIGSTOP: said at once, not after the QMP timeout
    inst = store.find("vm")[0]
    os.kill(inst.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 5  # the signal is delivered asynchronously
        while " T " not in open("/proc/%d/stat" % inst.pid).read() and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()
        with pytest.raises(OpsError, match=r"^instance vm \(QEMU pid %d\) is stopped \(process state T, "
                                           r"as after SIGSTOP\)" % inst.pid):
            mounts.ensure_attached(store, "vm", "extra", timeout=30)
        assert time.monotonic() - t0 < 5
    finally:
        os.kill(inst.pid, signal.SIGCONT)
    # QEMU killed between two tasks: a clear error, and the stale record is cleaned
    os.kill(inst.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while records.pid_alive(inst.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(OpsError, match="is not running \\(its QEMU process %d is gone; the stale "
                                       "record was removed\\)" % inst.pid):
        mounts.ensure_attached(store, "vm", "extra")
    assert not os.path.exists(inst.record_path)
    out, extra = instances.ensure_state(store, params())  # starts again
    assert out.changed


def test_instances_started_by_ops_are_listed(env, tmp_path):
    """ops records QMP as a TCP port in `mgmt`; we read attachments through it."""
    store = env
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    image = LocalImages(store.home.root).path("app image")
    pidfile = str(tmp_path / "ops.pid")
    subprocess.run([qemu.find_binary(), "-machine", "q35", "-display", "none", "-accel", "tcg",
                    "-drive", "file=%s,format=raw,if=none,id=hd0" % qemu.qemu_opt(image),
                    "-device", "virtio-scsi-pci,id=scsi0",
                    "-device", "scsi-hd,bus=scsi0.0,drive=hd0",
                    "-qmp", "tcp:127.0.0.1:%d,server=on,wait=off" % port,
                    "-pidfile", pidfile, "-daemonize"], check=True)
    pid = int(open(pidfile).read())
    try:
        os.makedirs(store.home.instances, exist_ok=True)
        with open(os.path.join(store.home.instances, str(pid)), "w") as f:
            json.dump({"instance": "from-ops", "image": image, "ports": None, "bridged": False,
                       "private_ip": "", "mac": "", "pid": str(pid), "mgmt": str(port),
                       "arch": "amd64"}, f)
        running, stale = store.records()
        ops_inst = [i for i in running if i.name == "from-ops"][0]
        described = instances.describe(ops_inst)
        assert described["started_by"] == "ops"
        assert [a["file"] for a in described["attachments"]] == [image]
        out = mounts.ensure_attached(store, "from-ops", "other")
        assert out.changed
        assert "other" in dict((a["id"], a) for a in instances.attachments_of(ops_inst))
    finally:
        os.kill(pid, signal.SIGKILL)


def test_choose_accel(tmp_path):
    sysmod = tmp_path / "module"
    for mod in ("kvm", "kvm_pvm"):
        (sysmod / mod).mkdir(parents=True)
    dev = tmp_path / "kvm"
    dev.write_bytes(b"")
    assert qemu.choose_accel("auto", str(sysmod), str(dev))[0] == "tcg"
    (sysmod / "kvm_pvm").rmdir()
    assert qemu.choose_accel("auto", str(sysmod), str(dev))[0] == "tcg"  # no hardware module
    (sysmod / "kvm_intel").mkdir()
    assert qemu.choose_accel("auto", str(sysmod), str(dev)) == ("kvm", "hardware KVM is available")
    assert qemu.choose_accel("tcg", str(sysmod), str(dev))[0] == "tcg"
    assert qemu.choose_accel("auto", str(sysmod), str(tmp_path / "none"))[0] == "tcg"
    with pytest.raises(OpsError, match="missing or not accessible"):
        qemu.choose_accel("kvm", str(sysmod), str(tmp_path / "none"))


def test_a_volume_in_use_is_not_rebuilt_or_deleted(env, tmp_path):
    store = env
    instances.ensure_state(store, params(volumes=["data"]))
    vols = OnPremVolumes(store.home.root)
    src = tmp_path / "new"
    src.mkdir()
    (src / "f").write_bytes(b"new content")
    with pytest.raises(OpsError, match="attached to running instance vm; stop it or detach"):
        vols.present(VolumeSpec(name="data", source=str(src), force=True))
    with pytest.raises(OpsError, match="attached to running instance vm; stop it or detach"):
        vols.absent(VolumeSpec(name="data"))
    assert "data" in qemu_says(store, "vm")


def test_a_reused_pid_is_not_our_instance(env):
    """A record whose pid now belongs to another process (after a reboot) is stale: that
    process is neither taken for the instance nor killed."""
    store = env
    other = subprocess.Popen(["bash", "-c", "exec -a qemu-system-x86_64 sleep 60"])
    try:
        time.sleep(0.2)
        os.makedirs(store.home.instances, exist_ok=True)
        state = store.state_dir("vm")  # the record is ours: its paths are where we put them
        with open(os.path.join(store.home.instances, str(other.pid)), "w") as f:
            json.dump({"instance": "vm", "image": "x", "pid": str(other.pid), "mgmt": "",
                       "unikernel_ops": {"argv": ["qemu-system-x86_64", "-pidfile",
                                                  os.path.join(state, "qemu.pid")],
                                         "qmp_socket": os.path.join(state, "qmp.sock")}}, f)
        inst, stale = store.find("vm")
        assert inst is None and [s.pid for s in stale] == [other.pid] and store.refused == []
        out, extra = instances.ensure_state(store, params(state="stopped"))
        assert not out.changed and other.poll() is None  # still alive
        assert out.warnings == ["removed the stale record of vm: its QEMU process %d is gone" % other.pid]
    finally:
        other.kill()
        other.wait()


def test_an_ops_instance_without_qmp_can_be_stopped(env):
    store = env
    image = LocalImages(store.home.root).path("app image")
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                             "qemu-system-x86_64", image])  # looks like ops' QEMU to /proc
    try:
        time.sleep(0.2)
        os.makedirs(store.home.instances, exist_ok=True)
        with open(os.path.join(store.home.instances, str(fake.pid)), "w") as f:
            json.dump({"instance": "plain", "image": image, "pid": str(fake.pid), "mgmt": ""}, f)
        assert store.find("plain")[0] is not None
        out, extra = instances.ensure_state(store, params(name="plain", state="stopped",
                                                          stop_timeout=0))
        # no QMP to ask the guest: SIGTERM at once, not after stop_timeout
        assert out.changed and out.actions == ["stop plain (pid %d): terminated (SIGTERM)" % fake.pid]
        assert fake.wait(5) is not None
    finally:
        if fake.poll() is None:
            fake.kill()
