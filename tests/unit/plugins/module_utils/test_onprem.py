# -*- coding: utf-8 -*-
"""The onprem volume provider: creation, idempotence, growth, force, check mode, locking."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils.tfs_helpers import (
    host_tree, volume_tree,
)

UUID = "0badc0de-0000-1111-2222-333344445555"


@pytest.fixture
def env(tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "a.txt").write_bytes(b"alpha\n")
    (src / "b.bin").write_bytes(os.urandom(5000))
    os.symlink("sub/a.txt", str(src / "link"))
    provider = OnPremVolumes(ops_dir=str(tmp_path / ".ops"))
    return provider, str(src), tmp_path


def volume_files(provider):
    d = provider.home.volumes
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_create_then_idempotent(env):
    provider, src = env[:2]
    spec = VolumeSpec(name="data", source=src, size="8m")
    out = provider.present(spec, check_mode=True, want_diff=True)
    assert out.changed and volume_files(provider) == []
    assert out.before == "" and "/sub/a.txt  6 bytes" in out.after

    out = provider.present(VolumeSpec(name="data", source=src, size="8m"))
    assert out.changed
    vol = out.volume
    assert os.path.basename(vol["path"]) == "data:%s.raw" % vol["uuid"]
    assert vol["size"] == 8 * 1024 ** 2 == os.path.getsize(vol["path"])
    assert (vol["label"], vol["files"], vol["directories"], vol["symlinks"]) == ("data", 2, 1, 1)
    assert volume_tree(vol["path"]) == host_tree(src)

    again = provider.present(VolumeSpec(name="data", source=src, size="8m"), want_diff=True)
    assert not again.changed and again.warnings == [] and again.before == again.after
    assert "/link -> sub/a.txt" in again.after
    assert dict((k, again.volume[k]) for k in vol if k != "created") == \
        dict((k, vol[k]) for k in vol if k != "created")
    # the same facts as reading the volume back
    read_back = provider.list_volumes(name="data")[0]
    assert dict((k, read_back[k]) for k in vol) == vol
    assert again.volume["uuid"] == vol["uuid"]


def test_default_size_leaves_room(env):
    provider, src = env[:2]
    vol = provider.present(VolumeSpec(name="data", source=src)).volume
    assert vol["size"] % (1024 * 1024) == 0
    assert vol["size"] - vol["used"] >= (2048 * 512) + 1024 * 1024  # guest reserve + 1 MiB


def test_fixed_uuid_and_conflicts(env):
    provider, src = env[:2]
    vol = provider.present(VolumeSpec(name="data", source=src, uuid=UUID.upper())).volume
    assert vol["uuid"] == UUID
    with TFS(vol["path"]) as tfs:
        assert tfs.uuid == UUID
    with pytest.raises(OpsError, match="already belongs to volume 'data'"):
        provider.present(VolumeSpec(name="other", uuid=UUID))
    with pytest.raises(OpsError, match="exists with UUID %s, not" % UUID):
        provider.present(VolumeSpec(name="data", uuid="11111111-2222-3333-4444-555555555555"))
    with pytest.raises(OpsError, match="not a UUID"):
        provider.present(VolumeSpec(name="x", uuid="nope"))


def test_duplicates_made_by_ops_are_reported(env):
    provider, src = env[:2]
    first = provider.present(VolumeSpec(name="dup", source=src)).volume
    copy = first["path"].replace(first["uuid"], "11111111-2222-3333-4444-555555555555")
    with open(first["path"], "rb") as a, open(copy, "wb") as b:
        b.write(a.read())
    with pytest.raises(OpsError, match="2 volumes are named 'dup'"):
        provider.present(VolumeSpec(name="dup", source=src))
    with pytest.raises(OpsError, match="2 volumes are named 'dup'"):
        provider.absent(VolumeSpec(name="dup"))


def test_grow_and_refuse_shrink(env):
    provider, src = env[:2]
    vol = provider.present(VolumeSpec(name="data", source=src, size="4m")).volume
    before = volume_tree(vol["path"])
    out = provider.present(VolumeSpec(name="data", size="6m"), check_mode=True)
    assert out.changed and os.path.getsize(vol["path"]) == 4 * 1024 ** 2
    out = provider.present(VolumeSpec(name="data", source=src, size="6m"))
    assert out.changed and out.actions[0].startswith("grow ")
    assert os.path.getsize(vol["path"]) == 6 * 1024 ** 2 == out.volume["size"]
    assert volume_tree(vol["path"]) == before
    assert not provider.present(VolumeSpec(name="data", source=src, size="6m")).changed
    with pytest.raises(OpsError, match="shrinking would lose data"):
        provider.present(VolumeSpec(name="data", size="5m"))
    assert os.path.getsize(vol["path"]) == 6 * 1024 ** 2


def test_size_too_small_for_content(env):
    provider, src = env[:2]
    with pytest.raises(OpsError) as e:
        provider.present(VolumeSpec(name="data", source=src, size="1m"))
    # sectors 0-1024 the log, 1025-3072 the guest's reserve, 3073-3083 the data, one free sector
    assert e.value.details["needed"] == (3084 + 1) * 512
    assert e.value.msg == (
        "size 1m (1048576 bytes) cannot hold this volume: it needs at least 1579520 bytes (4.9 KiB "
        "of file data, its log, the 1 MiB the guest keeps free for its own log, and one free sector "
        "for the guest to write to)")
    assert volume_files(provider) == []


def free_sectors(path):
    """Sectors of a volume that neither its log nor its files hold, as our reader counts them."""
    with TFS(path) as tfs:
        return os.path.getsize(path) // 512 - tfs.used_bytes() // 512


def log_room(path):
    """Bytes left after the end of the log in its last extension."""
    with TFS(path) as tfs:
        start, length = tfs.log_extensions[-1]
    with open(path, "rb") as f:
        f.seek(start * 512)
        ext = f.read(length * 512)
    return len(ext) - len(ext.rstrip(b"\0"))


def test_smallest_size_leaves_room_for_one_write(env):
    """At the smallest size accepted the guest can reserve its two log extensions and still
    write a sector; one sector less is refused, one byte less is that size (whole sectors)."""
    provider, src = env[:2]
    for name, source in (("empty", None), ("data", src)):
        with pytest.raises(OpsError) as e:
            provider.present(VolumeSpec(name=name, source=source, size="512"))
        need = e.value.details["needed"]
        vol = provider.present(VolumeSpec(name=name, source=source, size=str(need))).volume
        assert vol["size"] == need == os.path.getsize(vol["path"])
        assert free_sectors(vol["path"]) == 2048 + 1 and log_room(vol["path"]) > 74 + 1024
        with pytest.raises(OpsError) as e:
            provider.present(VolumeSpec(name=name + "2", source=source, size=str(need - 512)))
        assert e.value.msg.startswith("size %d (%d bytes) cannot hold this volume: it needs at least %d "
                                      "bytes (" % (need - 512, need - 512, need))
        vol = provider.present(VolumeSpec(name=name + "3", source=source, size=str(need - 1))).volume
        assert vol["size"] == need
    assert sorted(v["name"] for v in provider.list_volumes()) == ["data", "data3", "empty", "empty3"]


def test_smallest_size_with_a_full_log_extension(tmp_path):
    """When the last log extension has no room for the records of a write, the guest's first
    write starts a new one: the smallest size then holds a further extension."""
    src = tmp_path / "many"
    src.mkdir()
    provider = OnPremVolumes(ops_dir=str(tmp_path / ".ops"))
    files = []

    def log_end(tuner=0):
        """Bytes in the last log extension, with an empty file of a name that long added."""
        if tuner:
            (src / ("t" * tuner)).touch()
        log = provider._plan(VolumeSpec(name="x", source=str(src)), True)[1]
        if tuner:
            (src / ("t" * tuner)).unlink()
        assert len(log.extensions) == 1, "the log overflowed its first extension"
        return len(log.extensions[0][1])

    # Empty files of 200-byte names add about 208 bytes each to the log, a name one byte per
    # character: fill to below the window, then find the name length that lands in it.
    window = (524288 - 74 - 1024, 524288 - 74)
    while True:
        end = log_end()
        if end > window[0] - 100:
            break
        for dummy in range(max(1, (window[0] - 150 - end) // 210)):
            name = src / ("%05d" % len(files) + "n" * 195)
            name.touch()
            files.append(name)
    low, high = 1, 255  # the shortest name that reaches the window
    while low < high:
        mid = (low + high) // 2
        if log_end(mid) >= window[0]:
            high = mid
        else:
            low = mid + 1
    assert window[0] <= log_end(low) < window[1]
    (src / ("t" * low)).touch()
    need = provider._plan(VolumeSpec(name="x", source=str(src)), True)[2]
    assert need == (1 + 1024 + 2048 + 1 + 1024) * 512
    vol = provider.present(VolumeSpec(name="full", source=str(src), size=str(need))).volume
    assert free_sectors(vol["path"]) == 2048 + 1 + 1024 and log_room(vol["path"]) <= 74 + 1024


def test_content_change_needs_force(env):
    provider, src, tmp = env
    vol = provider.present(VolumeSpec(name="data", source=src)).volume
    with open(os.path.join(src, "sub", "a.txt"), "wb") as f:
        f.write(b"ALPHA\n")  # same size, other bytes
    with open(os.path.join(src, "new.txt"), "wb") as f:
        f.write(b"new")
    raw_before = open(vol["path"], "rb").read()
    out = provider.present(VolumeSpec(name="data", source=src))
    assert not out.changed
    assert "1 only in the source (/new.txt)" in out.warnings[0]
    assert "1 with other content (/sub/a.txt)" in out.warnings[0]
    assert open(vol["path"], "rb").read() == raw_before
    check = provider.present(VolumeSpec(name="data", source=src, force=True), check_mode=True,
                             want_diff=True)
    assert check.changed and "/new.txt  3 bytes" in check.after and "(content differs)" in check.after
    assert open(vol["path"], "rb").read() == raw_before
    out = provider.present(VolumeSpec(name="data", source=src, force=True))
    assert out.changed and out.volume["uuid"] == vol["uuid"] and out.volume["path"] == vol["path"]
    assert volume_tree(vol["path"]) == host_tree(src)
    assert not provider.present(VolumeSpec(name="data", source=src)).changed


def test_guest_writes_are_noticed(env):
    """A volume changed behind our back (a guest's write) is compared byte for byte again."""
    provider, src = env[:2]
    vol = provider.present(VolumeSpec(name="data", source=src)).volume
    with TFS(vol["path"]) as tfs:
        sector = tfs.extents(tfs.lookup("/sub/a.txt"))[0][1]
    with open(vol["path"], "r+b") as f:
        f.seek(sector * 512)
        f.write(b"ALPHA")
    out = provider.present(VolumeSpec(name="data", source=src))
    assert not out.changed and "with other content (/sub/a.txt)" in out.warnings[0]


def test_unreadable_volume_is_left_alone(env):
    """Even force does not rebuild a damaged volume: what is left of it may be all there is."""
    provider, src = env[:2]
    vol = provider.present(VolumeSpec(name="data", source=src)).volume
    with open(vol["path"], "r+b") as f:
        f.write(b"garbage!")
    damaged = open(vol["path"], "rb").read()
    with pytest.raises(OpsError) as e:
        provider.present(VolumeSpec(name="data", source=src, force=True))
    assert e.value.msg == (
        "volume 'data' (%s) cannot be rebuilt from %s: its header is damaged (sector 0 does not start "
        "with the TFS magic NVMTFS). It is left as it is: restore it from a backup, or delete it "
        "(unikernel.ops.ops_volume with state: absent) and create it again" % (vol["path"], src))
    assert open(vol["path"], "rb").read() == damaged
    info = provider.list_volumes(name="data")[0]
    assert info["uuid"] == vol["uuid"]
    assert info["error"] == ("not a readable Nanos volume: its header is damaged (sector 0 does not "
                             "start with the TFS magic NVMTFS)")


def test_volume_cut_short_in_its_data_is_an_error_in_info(env):
    provider, src = env[:2]
    vol = provider.present(VolumeSpec(name="data", source=src)).volume
    with TFS(vol["path"]) as tfs:
        end = (tfs.extents(tfs.lookup("/b.bin"))[0][1] + 1) * 512
    os.truncate(vol["path"], end)
    info = provider.list_volumes(name="data")[0]
    assert info["error"] == ("not a readable Nanos volume: it is cut short: /b.bin has data up to "
                             "byte %d but the file has %d bytes" % (end + 9 * 512, end))


def test_absent(env):
    provider, src = env[:2]
    vol = provider.present(VolumeSpec(name="data", source=src)).volume
    out = provider.absent(VolumeSpec(name="data"), check_mode=True)
    assert out.changed and os.path.exists(vol["path"])
    out = provider.absent(VolumeSpec(name="data"), want_diff=True)
    assert out.changed and not os.path.exists(vol["path"]) and "/sub/a.txt" in out.before
    assert not provider.absent(VolumeSpec(name="data")).changed


def test_info_contents_and_checksums(env):
    provider, src = env[:2]
    provider.present(VolumeSpec(name="data", source=src))
    info = provider.list_volumes(contents=True, checksums=True)
    assert len(info) == 1
    tree = dict((e["path"], e) for e in info[0]["contents"])
    assert tree["/sub/a.txt"]["sha256"] == hashlib.sha256(b"alpha\n").hexdigest()
    assert tree["/link"] == {"path": "/link", "type": "symlink", "target": "sub/a.txt"}
    assert tree["/sub"] == {"path": "/sub", "type": "directory"}


def _create(ops_dir, src, queue):
    try:
        out = OnPremVolumes(ops_dir=ops_dir).present(VolumeSpec(name="race", source=src))
        queue.put(out.changed)
    except Exception as e:  # pragma: no cover - reported to the parent
        queue.put(repr(e))


def test_concurrent_creates_make_one_volume(env):
    provider, src, tmp = env
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_create, args=(provider.home.root, src, queue)) for dummy in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    results = sorted(queue.get(timeout=5) for dummy in procs)
    assert results == [False, False, False, True]
    assert len(volume_files(provider)) == 1


# Root reads everything; as root, the child runs without the capabilities that bypass file
# permissions (setpriv is part of util-linux, essential on Debian).
DROP_DAC = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
            "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []


def test_unreadable_source_file_leaves_nothing(env):
    provider, src, tmp = env
    secret = os.path.join(src, "secret")
    with open(secret, "wb") as f:
        f.write(b"x")
    os.chmod(secret, 0)
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes\n"
            "from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec\n"
            "from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError\n"
            "try:\n"
            "    OnPremVolumes(ops_dir=%r).present(VolumeSpec(name='x', source=%r), check_mode=%s)\n"
            "except OpsError as e:\n"
            "    print(e.msg)\n")
    import ansible_collections
    coll = os.path.dirname(list(ansible_collections.__path__)[0])
    for check in (True, False):
        out = subprocess.run(DROP_DAC + [sys.executable, "-c", code % (coll, provider.home.root, src, check)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=True).stdout.decode()
        assert "cannot read %s: Permission denied" % secret in out, out
        assert volume_files(provider) == []
        tmpdir = provider.home.state("tmp")
        assert not os.path.isdir(tmpdir) or os.listdir(tmpdir) == []


def test_refused_tree_leaves_nothing_and_no_child(env):
    """A FIFO deep in the tree stops the build after data copying started in the helper process."""
    provider, src = env[:2]
    deep = os.path.join(src, "zz", "deeper")
    os.makedirs(deep)
    os.mkfifo(os.path.join(deep, "pipe"))
    with pytest.raises(OpsError, match="pipe is not a regular file"):
        provider.present(VolumeSpec(name="data", source=src))
    assert volume_files(provider) == []
    assert os.listdir(provider.home.state("tmp")) == []
    with pytest.raises(ChildProcessError):  # the copier was reaped
        os.waitpid(-1, os.WNOHANG)


def test_check_mode_on_a_fresh_home_writes_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    provider = OnPremVolumes(ops_dir=str(tmp_path / "fresh" / ".ops"))
    assert provider.present(VolumeSpec(name="v", source=str(src)), check_mode=True).changed
    assert not provider.absent(VolumeSpec(name="v"), check_mode=True).changed
    assert not os.path.exists(str(tmp_path / "fresh"))


def test_volumes_folder_on_another_filesystem(env):
    """volumes/ may be a link to another disk: staging happens there, rename still atomic."""
    provider, src, tmp = env
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    elsewhere = tempfile.mkdtemp(dir="/dev/shm")
    try:
        os.makedirs(provider.home.root)
        os.symlink(elsewhere, provider.home.volumes)
        vol = provider.present(VolumeSpec(name="data", source=src)).volume
        assert os.path.realpath(vol["path"]).startswith(elsewhere)
        assert volume_tree(vol["path"]) == host_tree(src)
        assert [n for n in os.listdir(elsewhere) if n.startswith(".staging-")] == []
    finally:
        shutil.rmtree(elsewhere)
