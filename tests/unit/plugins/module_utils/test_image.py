# -*- coding: utf-8 -*-
"""Images built with a stand-in kernel and boot.img, read back with our own reader."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import struct
import time

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.images import layout as image_layout
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images.store import LocalImages, read_image
from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.onprem import OnPremVolumes
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS
from ansible_collections.unikernel.ops.tests.unit.conftest import make_boot_img, make_release

MIB = 1024 * 1024


@pytest.fixture
def home(tmp_path):
    ops = tmp_path / ".ops"
    release = make_release(ops, "0.1.99")
    (ops / "latest.txt").write_text("0.1.99")
    return {"ops": str(ops), "release": release, "tmp": tmp_path}


def spec(**kw):
    kw.setdefault("name", "app")
    return ImageSpec(**kw)


def image_files(home):
    d = os.path.join(home["ops"], "images")
    tmp = os.path.join(home["ops"], ".unikernel-ops", "tmp")
    return (sorted(os.listdir(d)) if os.path.isdir(d) else [],
            sorted(os.listdir(tmp)) if os.path.isdir(tmp) else [])


def rootfs(path):
    return TFS(path, image_layout.filesystem_offsets(path)[1])


def test_static_image_layout_and_content(home, c_programs):
    out = LocalImages(home["ops"]).present(spec(program=c_programs["static"], args=["-v", "x y"],
                                                env={"MODE": "prod", "N": 3}))
    assert out.changed
    path = out.volume["path"]
    assert path == os.path.join(home["ops"], "images", "app")
    boot = open(os.path.join(home["release"], "boot.img"), "rb").read()
    data = open(path, "rb").read(len(boot) + 4096)
    # boot.img verbatim but for the partition table; then the zeroed crash-log area
    assert data[:446] == boot[:446] and data[512:len(boot)] == boot[512:]
    assert data[len(boot):] == bytes(4096)
    parts = image_layout.read_partitions(path)
    assert [p[0] for p in parts] == [0x83, 0x83]
    mbr = open(path, "rb").read(512)
    assert mbr[446] == 0x80 and mbr[462] == 0x80 and mbr[510:] == b"\x55\xaa"
    (t0, boot_off, boot_len), (t1, root_off, root_len) = parts
    assert boot_off == len(boot) + 4096 and boot_len == 12 * MIB
    assert root_off == boot_off + boot_len and root_off + root_len == os.path.getsize(path)
    with TFS(path, boot_off) as bootfs:
        assert bootfs.label == ""
        assert bootfs.read_file("/kernel") == open(os.path.join(home["release"], "kernel.img"), "rb").read()
        assert [e.path for e in bootfs.walk()] == [b"/kernel"]
    with rootfs(path) as root:
        assert root.read_file("/hello-static") == open(c_programs["static"], "rb").read()
        assert root.read_file("/etc/passwd").startswith(b"root:x:0:0:")
        assert root.read_file("/etc/resolv.conf") == b"nameserver 8.8.8.8\n"
        assert root.read_file("/etc/hostname") == b"uniboot\n"
        assert root.read_file("/proc/sys/kernel/hostname") == b"uniboot"
        assert not any(e.path.startswith(b"/lib") for e in root.walk())  # static: no libraries
        man = root.manifest()
    assert man[b"program"] == b"/hello-static"
    assert man[b"arguments"] == [b"/hello-static", b"-v", b"x y"]
    env = man[b"environment"]
    assert env[b"MODE"] == b"prod" and env[b"N"] == b"3" and env[b"USER"] == b"root"
    assert env[b"NANOS_VERSION"] == b"0.1.99" and env[b"IMAGE_NAME"] == b"app"
    assert b"mounts" not in man and b"readonly_rootfs" not in man and b"klibs" not in man
    # free room for the guest beyond the content
    with rootfs(path) as root:
        assert root_len - root.used_bytes() >= 8 * MIB


def test_dynamic_program_brings_its_libraries(home, c_programs):
    out = LocalImages(home["ops"]).present(spec(program=c_programs["dynamic"]))
    libs = out.volume["libraries"]
    assert any(lib.endswith("/libc.so.6") for lib in libs)
    with rootfs(out.volume["path"]) as root:
        for lib in libs:
            with open(os.path.realpath(lib), "rb") as f:
                assert root.read_file(lib) == f.read(), lib


def test_mount_key_forms(home, c_programs, tmp_path):
    vols = OnPremVolumes(home["ops"])
    named = vols.present(VolumeSpec(name="assets")).volume
    share = tmp_path / "static"
    share.mkdir()
    uuid = "0badc0de-0000-1111-2222-333344445555"
    out = LocalImages(home["ops"]).present(spec(program=c_programs["static"], mounts={
        "assets": "/assets:ro", uuid.upper(): "/by-uuid", "%2": "/hot", str(share): "/www",
        str(share) + "/": "/www2"}), want_diff=True)
    img = out.volume
    assert img["mounts"] == {"assets": "/assets:ro", uuid: "/by-uuid", "%2": "/hot",
                             "%0": "/www", "%1": "/www2"}
    assert img["shares"] == {"0": str(share), "1": str(share)}
    assert img["volumes"] == {"assets": named["path"]}
    with rootfs(img["path"]) as root:
        assert root.manifest()[b"mounts"][b"assets"] == b"/assets:ro"
        for point in ("/assets", "/by-uuid", "/hot", "/www", "/www2"):
            assert root.lookup(point).kind == "directory"
    assert "assets: /assets:ro" in out.after and out.before == ""
    meta = json.load(open(os.path.join(home["ops"], ".unikernel-ops", "images", "app.json")))
    assert meta["shares"] == {"0": str(share), "1": str(share)}


@pytest.mark.parametrize("mounts, match", [
    ({"asets": "/assets"}, "mount key 'asets' matches no volume in the ops home"),
    ({"assets": "/a", "%1": "/a"}, "mount point /a is given twice"),
    ({"0badc0de-0000-1111-2222-33334444555z": "/u"}, "looks like a UUID but is not"),
    ({"/no/such/dir": "/d"}, "host directory that does not exist"),
    ({"assets": "relative"}, "absolute path other than /"),
    ({"assets": "/"}, "absolute path other than /"),
])
def test_bad_mounts(home, c_programs, mounts, match):
    OnPremVolumes(home["ops"]).present(VolumeSpec(name="assets"))
    with pytest.raises(OpsError, match=match):
        LocalImages(home["ops"]).present(spec(program=c_programs["static"], mounts=mounts))
    assert image_files(home) == ([], [])


def test_volume_label_too_long_for_nanos(home, c_programs):
    vols = os.path.join(home["ops"], "volumes")
    os.makedirs(vols)
    long_name = "x" * 32  # as ops would create it
    open(os.path.join(vols, "%s:0badc0de-0000-1111-2222-333344445555.raw" % long_name), "wb").close()
    with pytest.raises(OpsError, match="more than 31 bytes"):
        LocalImages(home["ops"]).present(spec(program=c_programs["static"], mounts={long_name: "/x"}))


def test_readonly_rootfs_and_passthrough(home, c_programs):
    images = LocalImages(home["ops"])
    out = images.present(spec(program=c_programs["static"], readonly_rootfs=True, manifest_passthrough={
        "debug_exit": True, "futex_trace": False, "exec_wait": 3, "static_map": {"a": 1}, "list": [1, "b"]}))
    with rootfs(out.volume["path"]) as root:
        man = root.manifest()
    assert man[b"readonly_rootfs"] == b"true"
    assert man[b"debug_exit"] == b"true" and man[b"futex_trace"] == b"false"
    assert man[b"exec_wait"] == b"3" and man[b"static_map"] == {b"a": b"1"}
    assert man[b"list"] == [b"1", b"b"]
    out = images.present(spec(program=c_programs["static"], readonly_rootfs=False))
    with rootfs(out.volume["path"]) as root:
        assert b"readonly_rootfs" not in root.manifest()  # any value would count


def test_passthrough_flags_that_mean_off_are_left_out(home, c_programs):
    """Nanos takes these flags as on whatever their value; "off" leaves them out, and the
    result, ops_image_info (read_image) and the image's own manifest agree."""
    images = LocalImages(home["ops"])
    off = {"readonly_rootfs": "false", "debug_exit": "no", "noaslr": 0, "exec_protection": False,
           "missing_files": "Off", "futex_trace": "false"}
    out = images.present(spec(program=c_programs["static"], manifest_passthrough=off))
    with rootfs(out.volume["path"]) as root:
        man = root.manifest()
    for key in ("readonly_rootfs", "debug_exit", "noaslr", "exec_protection", "missing_files"):
        assert key.encode() not in man
    assert man[b"futex_trace"] == b"false"  # not a flag of that kind: passed as it is
    back = read_image(out.volume["path"])
    assert back["readonly_rootfs"] is False and "debug_exit" not in back["manifest"]
    assert out.volume["readonly_rootfs"] is False
    on = images.present(spec(program=c_programs["static"], readonly_rootfs=True,
                             manifest_passthrough={"readonly_rootfs": "false", "ltrace": "yes"}))
    with rootfs(on.volume["path"]) as root:
        man = root.manifest()
    assert man[b"readonly_rootfs"] == b"true"  # the option wins over the passthrough
    assert man[b"ltrace"] == b"yes"
    assert on.volume["readonly_rootfs"] is True
    through = images.present(spec(program=c_programs["static"],
                                  manifest_passthrough={"readonly_rootfs": "yes"}))
    assert through.volume["readonly_rootfs"] is True  # as Nanos sees it, and read_image says
    assert read_image(through.volume["path"])["readonly_rootfs"] is True


def test_ops_config_file(home, c_programs, tmp_path):
    proj = tmp_path / "proj"
    (proj / "static" / "css").mkdir(parents=True)
    (proj / "static" / "css" / "a.css").write_text("body{}")
    (proj / "data").mkdir()
    (proj / "data" / "seed.txt").write_text("seed")
    OnPremVolumes(home["ops"]).present(VolumeSpec(name="vol"))
    (proj / "config.json").write_text(json.dumps({
        "Args": ["--a"], "Env": {"A": "config", "B": "config"}, "Files": ["data/seed.txt"],
        "Dirs": ["static"], "Mounts": {"vol": "/files"}, "ManifestPassthrough": {"x": True},
        "BaseVolumeSz": "40m", "RunConfig": {"Ports": ["8080"]}, "Bogus": 1}))
    out = LocalImages(home["ops"]).present(
        spec(program=c_programs["static"], env={"B": "option"}), config=str(proj / "config.json"))
    assert out.warnings == ["ops config key 'Bogus' is not used for images and was ignored"]
    img = out.volume
    assert img["size"] == os.path.getsize(img["path"]) == 40 * MIB
    with rootfs(img["path"]) as root:
        man = root.manifest()
        assert root.read_file("/data/seed.txt") == b"seed"
        assert root.read_file("/static/css/a.css") == b"body{}"
    assert man[b"arguments"] == [b"/hello-static", b"--a"]
    assert man[b"environment"][b"A"] == b"config" and man[b"environment"][b"B"] == b"option"
    assert man[b"mounts"] == {b"vol": b"/files"} and man[b"x"] == b"true"


def test_ops_config_as_a_dict(home, c_programs):
    out = LocalImages(home["ops"]).present(
        spec(program=c_programs["static"], args=["--from-option"]),
        config={"args": ["--from-config"], "ENV": {"X": "1"}, "NanosVersion": "0.1.99",
                "ManifestPassthrough": {"futex_trace": True}})
    with rootfs(out.volume["path"]) as root:
        man = root.manifest()
    assert man[b"arguments"] == [b"/hello-static", b"--from-option"]  # options win
    assert man[b"environment"][b"X"] == b"1" and man[b"futex_trace"] == b"true"
    assert out.volume["kernel"]["version"] == "0.1.99"


def test_bad_inputs_leave_no_image(home, c_programs, tmp_path):
    images = LocalImages(home["ops"])
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    cases = [
        (spec(program=str(tmp_path / "missing")), "cannot read program"),
        (spec(program=str(script)), "not an ELF executable"),
        (spec(), "program is required"),
        (spec(program=c_programs["static"], klibs=["nope"]), "klib 'nope' was not found"),
        (spec(program=c_programs["static"], size="10GB"), "is not valid"),
        (spec(program=c_programs["static"], size="1m"), "cannot hold this image"),
        (spec(name="a/b", program=c_programs["static"]), "cannot be used"),
        (spec(program=c_programs["static"], nanos_version="9.9.9"),
         "no Nanos kernel 9.9.9 found: looked for kernel.img and boot.img in .*9.9.9; install a "
         "release with the unikernel.ops.ops_kernel module"),
    ]
    for s, match in cases:
        with pytest.raises(OpsError, match=match):
            images.present(s)
        assert image_files(home) == ([], []), match
    os.unlink(os.path.join(home["ops"], "latest.txt"))
    with pytest.raises(OpsError, match="no Nanos kernel is installed: .* has no latest.txt"):
        images.present(spec(program=c_programs["static"]))


def test_explicit_kernel_and_klibs(home, c_programs, tmp_path):
    other = make_release(tmp_path / "elsewhere", "custom", klibs=("tls",))
    out = LocalImages(home["ops"]).present(spec(
        program=c_programs["static"], kernel=os.path.join(other, "kernel.img"),
        boot=os.path.join(other, "boot.img"), klib_dir=os.path.join(other, "klibs"), klibs=["tls"]))
    info = read_image(out.volume["path"])
    assert info["klibs"] == ["tls"] and info["manifest"]["klibs"] == "bootfs"
    assert out.volume["kernel"]["kernel"] == os.path.join(other, "kernel.img")
    with pytest.raises(OpsError, match="given together"):
        LocalImages(home["ops"]).present(spec(program=c_programs["static"],
                                              kernel=os.path.join(other, "kernel.img")))


def test_bad_boot_img(home, c_programs, tmp_path):
    bad = tmp_path / "boot.img"
    make_boot_img(bad, 1024)
    with open(str(bad), "ab") as f:
        f.write(b"extra")  # longer than its boot sector says
    with pytest.raises(OpsError, match="damaged"):
        LocalImages(home["ops"]).present(spec(program=c_programs["static"], boot=str(bad),
                                              kernel=os.path.join(home["release"], "kernel.img")))


def test_idempotence_and_what_triggers_a_rebuild(home, c_programs, tmp_path):
    images = LocalImages(home["ops"])
    prog = tmp_path / "prog"
    prog.write_bytes(open(c_programs["static"], "rb").read())

    def run(check_mode=False, **kw):
        kw.setdefault("env", {"A": "1"})
        t = time.perf_counter()
        out = images.present(spec(program=str(prog), **kw), check_mode=check_mode)
        return out, time.perf_counter() - t

    out, t_build = run(check_mode=True)
    assert out.changed and image_files(home) == ([], [])
    out, t_build = run()
    assert out.changed
    first = out.volume["fingerprint"]
    out, t_rerun = run()
    assert not out.changed and out.volume["fingerprint"] == first
    print("image build %.3f s, unchanged re-run %.3f s" % (t_build, t_rerun))
    # A guest writing to the rootfs (the kernel appends to its log) is not a change.
    path = out.volume["path"]
    root_off = image_layout.filesystem_offsets(path)[1]
    with open(path, "r+b") as f:
        f.seek(root_off + 5000 * 512)
        f.write(b"written by a guest")
    assert not run()[0].changed
    assert run(env={"A": "2"})[0].changed  # the manifest changed
    data = bytearray(prog.read_bytes())
    data[-1] ^= 1
    prog.write_bytes(bytes(data))
    assert run(env={"A": "2"})[0].changed  # the program's content changed
    assert not run(env={"A": "2"})[0].changed
    kernel = os.path.join(home["release"], "kernel.img")
    with open(kernel, "ab") as f:
        f.write(b"patched")
    assert run(env={"A": "2"})[0].changed  # the kernel changed
    # An image replaced behind our back (e.g. by `ops image create`) is rebuilt.
    out = images.present(spec(program=str(prog), env={"A": "2"}), force=True)
    assert out.changed and out.actions[0].startswith("rebuild (forced)")


def test_absent_and_info(home, c_programs):
    images = LocalImages(home["ops"])
    images.present(spec(program=c_programs["static"], mounts={"%1": "/data"}))
    os.makedirs(os.path.join(home["ops"], "images"), exist_ok=True)
    with open(os.path.join(home["ops"], "images", "junk"), "wb") as f:
        f.write(b"not an image")
    info = dict((i["name"], i) for i in images.list_images())
    assert info["app"]["mounts"] == {"%1": "/data"} and info["app"]["built_by_collection"]
    assert info["app"]["program"] == "/hello-static" and info["app"]["readonly_rootfs"] is False
    assert "error" in info["junk"]
    out = images.absent("app", check_mode=True, want_diff=True)
    assert out.changed and "%1: /data" in out.before and os.path.exists(info["app"]["path"])
    assert images.absent("app").changed and not os.path.exists(info["app"]["path"])
    assert not images.absent("app").changed


def test_partition_entry_bytes_match_nanos():
    # as written by ops and Nanos mkfs for the real boot.img (bootfs at LBA 103)
    assert image_layout.partition_entry(103, 24576).hex() == "8001290083882e016700000000600000"
    entry = image_layout.partition_entry(24679, 5244)
    assert struct.unpack_from("<II", entry, 8) == (24679, 5244)


def test_relative_guest_paths_keep_their_dots():
    from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import _guest
    assert _guest(".env", "files") == "/.env"
    assert _guest("./.config/app.yml", "files") == "/.config/app.yml"
    assert _guest("..data/x", "files") == "/..data/x"
    with pytest.raises(OpsError):
        _guest("../x", "files")


def test_files_and_dirs_given_as_src_and_dest(home, c_programs, tmp_path):
    conf = tmp_path / "app.conf"
    conf.write_text("key=value\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.2.3\n")
    www = tmp_path / "www"
    (www / "img").mkdir(parents=True)
    (www / "img" / "a.png").write_bytes(b"\x89PNG")
    out = LocalImages(home["ops"]).present(spec(
        program=c_programs["static"],
        files=[{"src": str(conf), "dest": "/etc/app.conf"}, {"src": str(resolv), "dest": "/etc/resolv.conf"}],
        dirs=[{"src": str(www), "dest": "/srv/www"}]))
    with rootfs(out.volume["path"]) as root:
        assert root.read_file("/etc/app.conf") == b"key=value\n"
        assert root.read_file("/etc/resolv.conf") == b"nameserver 10.0.2.3\n"  # the user's wins
        assert root.read_file("/srv/www/img/a.png") == b"\x89PNG"
    with pytest.raises(OpsError, match="needs src"):
        LocalImages(home["ops"]).present(spec(program=c_programs["static"], files=[{"dest": "/x"}]))
