# -*- coding: utf-8 -*-
"""Kernel resolution and release installs, from a tarball built here, served over local HTTP."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import hashlib
import http.server
import io
import os
import shutil
import tarfile
import threading
import urllib.request

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.images import kernels
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome
from ansible_collections.unikernel.ops.tests.unit.conftest import make_release


def make_tarball(tmp_path, name="nanos-release-linux-0.1.99.tar.gz", extra=None):
    rel = make_release(tmp_path / "build", "0.1.99")
    path = str(tmp_path / name)
    with tarfile.open(path, "w:gz") as tar:
        for entry in sorted(os.listdir(rel)):
            tar.add(os.path.join(rel, entry), arcname=entry)
        for arcname, data in (extra or {}).items():
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(path, "rb") as f:
        return path, hashlib.sha256(f.read()).hexdigest(), rel


def urllib_download(url, dest):
    with urllib.request.urlopen(url, timeout=10) as resp, open(dest, "wb") as out:
        shutil.copyfileobj(resp, out)


@pytest.fixture
def http_dir(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, "http://127.0.0.1:%d/" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_install_from_http_with_checksum(tmp_path, http_dir):
    served, base = http_dir
    tarball, digest, rel = make_tarball(tmp_path)
    shutil.copy(tarball, str(served))
    home = OpsHome(str(tmp_path / ".ops"))
    store = kernels.ReleaseStore(home)
    url = base + os.path.basename(tarball)
    changed, actions = store.install("0.1.99", url, urllib_download, "sha256:" + digest,
                                     check_mode=True)
    assert changed and not os.path.exists(home.root)
    changed, actions = store.install("0.1.99", url, urllib_download, "sha256:" + digest)
    assert changed and len(actions) == 2
    k = kernels.resolve(home)
    assert k.version == "0.1.99"
    assert open(k.kernel, "rb").read() == open(os.path.join(rel, "kernel.img"), "rb").read()
    assert sorted(os.listdir(k.klibs_dir)) == sorted(os.listdir(os.path.join(rel, "klibs")))
    assert open(os.path.join(home.root, "latest.txt")).read() == "0.1.99"
    assert store.install("0.1.99", url, urllib_download, digest) == (False, [])


def test_checksum_mismatch_installs_nothing(tmp_path):
    tarball, digest, dummy = make_tarball(tmp_path)
    home = OpsHome(str(tmp_path / ".ops"))
    with pytest.raises(OpsError, match="has sha256 %s, not the expected" % digest):
        kernels.ReleaseStore(home).install("0.1.99", tarball, None, "sha256:" + "0" * 64)
    assert not os.path.exists(os.path.join(home.root, "0.1.99"))
    assert not os.path.exists(os.path.join(home.root, "latest.txt"))
    with pytest.raises(OpsError, match="not valid"):
        kernels.ReleaseStore(home).install("0.1.99", tarball, None, "md5:abc")


def test_refuses_path_traversal_and_non_releases(tmp_path):
    bad, dummy, dummy2 = make_tarball(tmp_path, "bad.tar.gz", extra={"../evil": b"x"})
    home = OpsHome(str(tmp_path / ".ops"))
    store = kernels.ReleaseStore(home)
    with pytest.raises(OpsError, match="outside its folder"):
        store.install("0.1.99", bad, None)
    assert not os.path.exists(str(tmp_path / "evil"))
    junk = tmp_path / "junk.tar.gz"
    with tarfile.open(str(junk), "w:gz") as tar:
        info = tarfile.TarInfo("README")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(OpsError, match="not a Nanos release: it has no kernel.img, boot.img"):
        store.install("0.1.99", str(junk), None)
    with pytest.raises(OpsError, match="does not exist"):
        store.install("0.1.99", str(tmp_path / "nope.tar.gz"), None)
    with pytest.raises(OpsError, match="not valid"):
        store.install("../x", str(junk), None)
    assert not os.path.exists(os.path.join(home.root, "0.1.99"))


def test_replace_and_remove(tmp_path):
    first, d1, dummy = make_tarball(tmp_path / "a")
    second, d2, rel2 = make_tarball(tmp_path / "b")
    home = OpsHome(str(tmp_path / ".ops"))
    store = kernels.ReleaseStore(home)
    assert store.install("0.1.99", first, None, d1)[0]
    # another tarball for the same version, asked for by checksum: replaced whole
    assert store.install("0.1.99", second, None, d2)[0]
    k = kernels.resolve(home, "0.1.99")
    assert open(k.kernel, "rb").read() == open(os.path.join(rel2, "kernel.img"), "rb").read()
    assert store.remove("0.1.99", check_mode=True)[0] and os.path.isdir(os.path.dirname(k.kernel))
    changed, actions = store.remove("0.1.99")
    assert changed and "latest.txt" in actions[1]
    assert not os.path.exists(os.path.join(home.root, "latest.txt"))
    assert store.remove("0.1.99") == (False, [])


def test_resolution(tmp_path):
    home = OpsHome(str(tmp_path / ".ops"))
    make_release(home.root, "0.1.50")
    make_release(home.root, "nightly")
    with pytest.raises(OpsError, match="has no latest.txt"):
        kernels.resolve(home)
    assert kernels.resolve(home, "0.1.50").version == "0.1.50"
    assert kernels.resolve(home, "nightly").kernel == os.path.join(home.root, "nightly", "kernel.img")
    with open(os.path.join(home.root, "latest.txt"), "w") as f:
        f.write("0.1.50\n")
    assert kernels.resolve(home).klibs_dir == os.path.join(home.root, "0.1.50", "klibs")
    with pytest.raises(OpsError, match="looked for kernel.img and boot.img in"):
        kernels.resolve(home, "0.2.0")


def test_installed_releases(tmp_path):
    home = OpsHome(str(tmp_path / ".ops"))
    assert kernels.ReleaseStore(home).installed() == []
    make_release(home.root, "0.1.50")
    make_release(home.root, "nightly")
    os.makedirs(os.path.join(home.root, "volumes"))
    assert kernels.ReleaseStore(home).installed() == ["0.1.50", "nightly"]


def test_ops_home_folders_are_never_releases(tmp_path):
    tarball, digest, dummy = make_tarball(tmp_path)
    home = OpsHome(str(tmp_path / ".ops"))
    store = kernels.ReleaseStore(home)
    vols = os.path.join(home.root, "volumes")
    os.makedirs(vols)
    with open(os.path.join(vols, "data:0badc0de-0000-1111-2222-333344445555.raw"), "wb") as f:
        f.write(b"precious")
    for name in ("volumes", "images", "instances"):
        with pytest.raises(OpsError, match="folder of the ops home, not a Nanos version"):
            store.install(name, tarball, None)
        with pytest.raises(OpsError, match="folder of the ops home, not a Nanos version"):
            store.remove(name)
    os.makedirs(os.path.join(home.root, "my-stuff"))
    with pytest.raises(OpsError, match="exists and is not a Nanos release"):
        store.install("my-stuff", tarball, None)
    with pytest.raises(OpsError, match="is not a Nanos release; it is left as it is"):
        store.remove("my-stuff")
    assert os.listdir(vols) == ["data:0badc0de-0000-1111-2222-333344445555.raw"]
    assert os.path.isdir(os.path.join(home.root, "my-stuff"))


def test_check_mode_writes_nothing(tmp_path):
    tarball, digest, dummy = make_tarball(tmp_path)
    home = OpsHome(str(tmp_path / "fresh" / ".ops"))
    assert kernels.ReleaseStore(home).install("0.1.99", tarball, None, check_mode=True)[0]
    assert not os.path.exists(str(tmp_path / "fresh"))
