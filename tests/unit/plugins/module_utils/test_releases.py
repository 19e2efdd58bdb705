# -*- coding: utf-8 -*-
"""ops_kernel's releases the way `ops update` gets them: a release store laid out as ops' store
(latest.txt, <version>/nanos-release-linux-<version>.tar.gz, nightly/), served over HTTP on
127.0.0.1 by the test itself, holding stand-in releases; faults injected into it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import socket
import stat
import time

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images import kernels, releases
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome
from ansible_collections.unikernel.ops.tests.integration.targets.ops_kernel.files import (
    release_store,
)

TARBALL = "/%s/nanos-release-linux-%s.tar.gz"
MARGIN = 1.5  # seconds a failing task may take beyond its timeout


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch):
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


@pytest.fixture
def store(tmp_path):
    root = str(tmp_path / "store")
    made = release_store.make_store(root, "0.1.99", ["0.1.98"])
    server = release_store.StoreServer(root).start()
    server.made = made
    server.root = root
    yield server
    server.stop()


@pytest.fixture
def home(tmp_path):
    return OpsHome(str(tmp_path / "home" / ".ops"))


def ensure(home, server_or_url, version="latest", **kw):
    url = getattr(server_or_url, "url", server_or_url)
    kw.setdefault("timeout", 10)
    return kernels.ensure(home, version, release_url=url, **kw)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def assert_nothing_left(home, version):
    assert not os.path.exists(os.path.join(home.root, version))
    assert not os.path.exists(os.path.join(home.root, "latest.txt"))
    tmp = home.state("tmp")
    assert not os.path.isdir(tmp) or os.listdir(tmp) == []


def test_layout_is_ops_layout():
    base = "https://storage.googleapis.com/nanos/release/"
    assert releases.DEFAULT_RELEASE_URL == base
    assert releases.latest_url(None) == base + "latest.txt"
    assert releases.release_tarball_url(base[:-1], "0.1.54") == (
        base + "0.1.54/nanos-release-linux-0.1.54.tar.gz")
    assert releases.nightly_tarball_url(base) == base + "nightly/nanos-nightly-linux.tar.gz"
    assert releases.nightly_stamp_url(base) == base + "nightly/nanos-nightly-linux.timestamp"
    with pytest.raises(OpsError, match="not an http, https or file URL"):
        releases.location("ftp://example.com/")


def test_latest_installs_and_rerun_downloads_no_tarball(store, home):
    tarball = TARBALL % ("0.1.99", "0.1.99")
    check = ensure(home, store, check_mode=True)
    assert check["changed"] and check["version"] == "0.1.99" and check["download"] is None
    assert check["kernel"] is None
    assert store.gets() == ["/latest.txt"]  # check mode reads latest.txt, downloads nothing
    assert not os.path.exists(home.root)

    done = ensure(home, store)
    assert done["changed"] and done["version"] == "0.1.99"
    size = os.path.getsize(store.made["0.1.99"]["path"])
    assert done["download"]["url"] == store.url + tarball[1:]
    assert done["download"]["bytes"] == size and done["download"]["attempts"] == 1
    assert done["download"]["seconds"] >= 0
    assert read(done["kernel"]["kernel"], "rb") == read(store.made["0.1.99"]["kernel"], "rb")
    assert done["kernel"]["boot"] == os.path.join(home.root, "0.1.99", "boot.img")
    assert read(os.path.join(home.root, "latest.txt")) == "0.1.99"
    assert kernels.resolve(home).version == "0.1.99"
    assert store.gets(tarball) == [tarball]

    before = len(store.requests)
    again = ensure(home, store)
    assert (again["changed"], again["actions"], again["download"]) == (False, [], None)
    assert again["kernel"] == done["kernel"]
    assert [r[1] for r in store.requests[before:]] == ["/latest.txt"]  # no tarball GET
    assert os.listdir(home.state("tmp")) == []


def test_new_latest_is_installed_next_to_the_old(store, home, tmp_path):
    ensure(home, store)
    release_store.make_store(str(tmp_path / "newer"), "0.2.0", nightly_stamp=None)
    os.rename(str(tmp_path / "newer" / "0.2.0"), os.path.join(store.root, "0.2.0"))
    with open(os.path.join(store.root, "latest.txt"), "w") as f:
        f.write("0.2.0\n")  # a trailing newline is not part of the version
    done = ensure(home, store)
    assert done["changed"] and done["version"] == "0.2.0"
    assert done["actions"][1] == "set latest.txt to 0.2.0 (was 0.1.99)"
    assert kernels.ReleaseStore(home).installed() == ["0.1.99", "0.2.0"]
    assert read(os.path.join(home.root, "latest.txt")) == "0.2.0"


def test_pinned_version_from_the_store(store, home):
    check = ensure(home, store, "0.1.98", latest=False, check_mode=True)
    assert check["changed"] and store.requests == []  # nothing to read for a pinned version
    done = ensure(home, store, "0.1.98", latest=False,
                  checksum="sha256:" + store.made["0.1.98"]["sha256"])
    assert done["changed"] and done["download"]["bytes"] > 0
    assert read(done["kernel"]["kernel"], "rb") == read(store.made["0.1.98"]["kernel"], "rb")
    assert not os.path.exists(os.path.join(home.root, "latest.txt"))
    before = len(store.requests)
    assert ensure(home, store, "0.1.98", latest=False)["changed"] is False
    assert len(store.requests) == before  # installed: the store is not even asked
    # the record and the temporary files are owner-only
    record = home.state("kernels", "0.1.98.json")
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    # a version the store does not have: one GET (a 404 is not retried), a clear message
    with pytest.raises(OpsError, match=r"downloading Nanos 0\.1\.50 failed: GET .*0\.1\.50/"
                       r"nanos-release-linux-0\.1\.50\.tar\.gz answered 404"):
        ensure(home, store, "0.1.50")
    assert store.gets("0.1.50.tar.gz") == [TARBALL % ("0.1.50", "0.1.50")]
    assert_nothing_left(home, "0.1.50")


def test_nightly_as_ops_does(store, home):
    stamp_path = "/nightly/nanos-nightly-linux.timestamp"
    tarball = "/nightly/nanos-nightly-linux.tar.gz"
    check = ensure(home, store, "nightly", check_mode=True)
    assert check["changed"] and store.gets() == [stamp_path]
    done = ensure(home, store, "nightly")
    assert done["changed"] and done["version"] == "nightly"
    folder = os.path.join(home.root, "nightly")
    assert done["kernel"]["kernel"] == os.path.join(folder, "kernel.img")
    assert read(done["kernel"]["kernel"], "rb") == read(store.made["nightly"]["kernel"], "rb")
    # ops keeps the installed build's timestamp there, and never names nightly in latest.txt
    assert read(os.path.join(folder, "nanos-nightly-linux.timestamp")).strip() == "20260101T0000"
    assert not os.path.exists(os.path.join(home.root, "latest.txt"))
    assert store.gets(tarball) == [tarball]

    before = len(store.requests)
    again = ensure(home, store, "nightly")
    assert again["changed"] is False and again["download"] is None
    assert [r[1] for r in store.requests[before:]] == [stamp_path]

    newer = release_store.set_nightly(store.root, "20260102T0000")
    assert ensure(home, store, "nightly", check_mode=True)["changed"]
    assert store.gets(tarball) == [tarball]  # check mode: still one download
    third = ensure(home, store, "nightly")
    assert third["changed"] and third["download"]["bytes"] == os.path.getsize(newer["path"])
    assert read(third["kernel"]["kernel"], "rb") == read(newer["kernel"], "rb")
    assert kernels.ReleaseStore(home).installed() == ["nightly"]


def test_store_down_fails_clearly_within_the_timeout(home):
    port = release_store.free_port()  # nothing listens there
    started = time.monotonic()
    with pytest.raises(OpsError) as e:
        ensure(home, "http://127.0.0.1:%d/" % port, timeout=3)
    took = time.monotonic() - started
    assert took < 3 + MARGIN
    assert "cannot read the latest Nanos version: GET http://127.0.0.1:%d/latest.txt failed " \
           "after 2 attempts" % port in e.value.msg
    assert "connection refused" in e.value.msg and "point release_url at a mirror" in e.value.msg
    assert not os.path.exists(home.root)


def test_store_that_hangs_fails_within_the_timeout(home):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # connections are queued, never answered
    try:
        started = time.monotonic()
        with pytest.raises(OpsError, match=r"failed after 1 attempt in .*timed out"):
            ensure(home, "http://127.0.0.1:%d/" % listener.getsockname()[1], timeout=2)
        assert time.monotonic() - started < 2 + MARGIN
    finally:
        listener.close()


def test_store_answering_500_fails_within_the_timeout(store, home):
    store.faults["/latest.txt"] = [500] * 10
    started = time.monotonic()
    with pytest.raises(OpsError) as e:
        ensure(home, store, timeout=5)
    assert time.monotonic() - started < 5 + MARGIN
    assert "after 3 attempts" in e.value.msg and "answered 500" in e.value.msg
    assert store.gets() == ["/latest.txt"] * 3  # the bound: 3 attempts
    assert not os.path.exists(home.root)


def test_retries_on_503_then_succeeds(store, home):
    tarball = TARBALL % ("0.1.99", "0.1.99")
    store.faults["/latest.txt"] = [503]
    store.faults[tarball] = [503, 503]
    done = ensure(home, store)
    assert done["changed"] and done["download"]["attempts"] == 3
    assert store.gets(tarball) == [tarball] * 3
    assert done["download"]["seconds"] >= 3.0  # backoff: 1 s, then 2 s
    assert kernels.resolve(home).version == "0.1.99"


def test_a_download_cut_short_is_retried(store, home):
    tarball = TARBALL % ("0.1.99", "0.1.99")
    store.faults[tarball] = ["short"]
    done = ensure(home, store, checksum=store.made["0.1.99"]["sha256"])
    assert done["download"]["attempts"] == 2
    assert done["download"]["bytes"] == os.path.getsize(store.made["0.1.99"]["path"])


def test_bad_checksum_is_refused_and_leaves_nothing(store, home):
    with pytest.raises(OpsError, match="has sha256 %s, not the expected %s; nothing was "
                       "installed" % (store.made["0.1.99"]["sha256"], "0" * 64)):
        ensure(home, store, checksum="sha256:" + "0" * 64)
    assert_nothing_left(home, "0.1.99")


def test_tarball_without_boot_img_is_refused_and_leaves_nothing(store, home, tmp_path):
    rel = release_store._make_release(str(tmp_path / "build"), "0.1.97")
    os.makedirs(os.path.join(store.root, "0.1.97"))
    release_store.pack(rel, os.path.join(store.root, "0.1.97", "nanos-release-linux-0.1.97.tar.gz"),
                       skip=("boot.img",))
    with open(os.path.join(store.root, "latest.txt"), "w") as f:
        f.write("0.1.97")
    with pytest.raises(OpsError, match=r"http://127\.0\.0\.1:\d+/0\.1\.97/nanos-release-linux-"
                       r"0\.1\.97\.tar\.gz is not a Nanos release: it has no boot\.img"):
        ensure(home, store)
    assert_nothing_left(home, "0.1.97")


def test_latest_txt_that_names_no_version_is_refused(store, home):
    for text in ("../../etc", "<html>oops</html>", "nightly", "volumes", ""):
        with open(os.path.join(store.root, "latest.txt"), "w") as f:
            f.write(text)
        with pytest.raises(OpsError, match="not a Nanos version|folder of the ops home"):
            ensure(home, store)
    assert not os.path.exists(home.root)


def test_proxy_from_the_environment_is_used(store, home, monkeypatch):
    monkeypatch.setenv("http_proxy", store.url)
    monkeypatch.setenv("no_proxy", "")
    done = ensure(home, "http://nanos-store.invalid/", "0.1.99")
    assert done["changed"]
    assert store.gets() == ["http://nanos-store.invalid/0.1.99/"
                            "nanos-release-linux-0.1.99.tar.gz"]


def test_file_mirror(store, home):
    done = ensure(home, "file://" + store.root)
    assert done["changed"] and done["version"] == "0.1.99" and store.requests == []
    assert done["download"]["bytes"] == os.path.getsize(store.made["0.1.99"]["path"])


def test_src_still_wins_and_bad_requests(store, home):
    done = ensure(home, store, "0.1.98", src=store.made["0.1.98"]["path"])
    assert done["changed"] and done["download"] is None and store.requests == []
    with pytest.raises(OpsError, match="give its version with it, not latest"):
        ensure(home, store, src=store.made["0.1.99"]["path"])
    with pytest.raises(OpsError, match="state=absent removes one release: give its version"):
        ensure(home, store, state="absent")
    assert ensure(home, store, "0.1.98", state="absent")["changed"]
    assert store.requests == []
