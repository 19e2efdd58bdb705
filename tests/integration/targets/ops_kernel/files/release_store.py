#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Nanos release store for the tests, laid out as ops' store and served over HTTP on loopback:

  ROOT/latest.txt                                       the current version (no newline, as GCS)
  ROOT/<version>/nanos-release-linux-<version>.tar.gz   stand-in releases (nanos_standin.py)
  ROOT/nightly/nanos-nightly-linux.tar.gz               a stand-in nightly build
  ROOT/nightly/nanos-nightly-linux.timestamp            its timestamp

    release_store.py make ROOT LATEST [VERSION...]   lay out a store, print its checksums as JSON
    release_store.py start STATE_DIR ROOT            serve ROOT detached; print {"url", "pid"}
    release_store.py requests STATE_DIR              print what it was asked: [[method, path, code]]
    release_store.py stop STATE_DIR                  stop it
    release_store.py free-port                       print a port nothing listens on

The unit tests import it for StoreServer (the same server in a thread, with faults to inject)
and make_store. Only 127.0.0.1 is ever used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import functools
import hashlib
import http.server
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NIGHTLY_TARBALL = "nightly/nanos-nightly-linux.tar.gz"
NIGHTLY_STAMP = "nightly/nanos-nightly-linux.timestamp"


STANDIN = "ansible_collections.unikernel.ops.tests.integration.targets.setup_nanos_standin.files"


def _make_release(folder, version):
    """A stand-in release folder, from setup_nanos_standin's nanos_standin.py."""
    try:
        nanos_standin = importlib.import_module(STANDIN + ".nanos_standin")
    except ImportError:  # run as a script from the integration target
        sys.path.insert(0, os.path.join(HERE, "..", "..", "setup_nanos_standin", "files"))
        nanos_standin = importlib.import_module("nanos_standin")
    return nanos_standin.make_release(folder, version)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack(release_folder, tarball, skip=()):
    """A release tarball as Nanos ships it: kernel.img, boot.img, klibs/ at the top."""
    with tarfile.open(tarball, "w:gz") as tar:
        for entry in sorted(os.listdir(release_folder)):
            if entry not in skip:
                tar.add(os.path.join(release_folder, entry), arcname=entry)
    return tarball


def make_store(root, latest, versions=(), nightly_stamp="20260101T0000"):
    """Stand-in releases for latest and versions, and a nightly build when nightly_stamp is
    given; returns {version or "nightly": {"path", "sha256", "kernel"}}."""
    build = os.path.join(root, ".build")
    made = {}
    for version in [latest] + [v for v in versions if v != latest]:
        rel = _make_release(build, version)
        os.makedirs(os.path.join(root, version), exist_ok=True)
        path = pack(rel, os.path.join(root, version, "nanos-release-linux-%s.tar.gz" % version))
        made[version] = {"path": path, "sha256": sha256(path),
                         "kernel": os.path.join(rel, "kernel.img")}
    with open(os.path.join(root, "latest.txt"), "w") as f:
        f.write(latest)
    if nightly_stamp:
        set_nightly(root, nightly_stamp, made)
    return made


def set_nightly(root, stamp, made=None):
    """A new stand-in nightly build, with its timestamp."""
    rel = _make_release(os.path.join(root, ".build", "nightly-" + stamp), "nightly")
    os.makedirs(os.path.join(root, "nightly"), exist_ok=True)
    path = pack(rel, os.path.join(root, NIGHTLY_TARBALL))
    with open(os.path.join(root, NIGHTLY_STAMP), "w") as f:
        f.write(stamp + "\n")
    info = {"path": path, "sha256": sha256(path), "kernel": os.path.join(rel, "kernel.img")}
    if made is not None:
        made["nightly"] = info
    return info


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):  # pylint: disable=invalid-name
        self.asked = self.path  # pylint: disable=attribute-defined-outside-init
        if self.path.startswith("http://"):  # asked as a proxy: serve the path all the same
            self.path = "/" + self.path.split("://", 1)[1].split("/", 1)[-1]
        codes = self.server.faults.get(self.path)
        if codes:
            code = codes.pop(0)
            if code == "short":  # the full length announced, half of it sent, then closed
                with open(self.translate_path(self.path), "rb") as f:
                    data = f.read()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[:len(data) // 2])
                self.close_connection = True
                return
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super(_Handler, self).do_GET()

    def log_request(self, code="-", size="-"):
        self.server.record(self.command, getattr(self, "asked", self.path),
                           int(getattr(code, "value", code)))

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        pass


class StoreServer(http.server.ThreadingHTTPServer):
    """ROOT over HTTP on 127.0.0.1. faults: {path: [status, ...]}, answered (one each) before
    the file is served; "short" sends half the file with the whole length announced.
    requests: [(method, path as asked, status)], also appended to log_path."""

    daemon_threads = True

    def __init__(self, root, port=0, log_path=None):
        handler = functools.partial(_Handler, directory=root)
        http.server.ThreadingHTTPServer.__init__(self, ("127.0.0.1", port), handler)
        self.faults = {}
        self.requests = []
        self.log_path = log_path
        self._lock = threading.Lock()
        self._thread = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.server_address[1]

    def record(self, method, path, code):
        with self._lock:
            self.requests.append((method, path, code))
            if self.log_path:
                with open(self.log_path, "a") as f:
                    f.write(json.dumps([method, path, code]) + "\n")

    def gets(self, suffix=""):
        return [p for m, p, c in self.requests if m == "GET" and p.endswith(suffix)]

    def start(self):
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self.shutdown()
        self.server_close()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _serve(state_dir, root):
    server = StoreServer(root, log_path=os.path.join(state_dir, "requests.jsonl"))
    with open(os.path.join(state_dir, "url.tmp"), "w") as f:
        f.write(server.url)
    os.rename(os.path.join(state_dir, "url.tmp"), os.path.join(state_dir, "url"))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    server.serve_forever()


def start(state_dir, root, timeout=30.0):
    """The server in its own session, outliving this process; its pid in STATE_DIR/store.pid."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(state_dir, "store.log"), "ab") as log:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_serve", state_dir,
                                 os.path.abspath(root)], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL, cwd=state_dir, start_new_session=True)
    with open(os.path.join(state_dir, "store.pid"), "w") as f:
        f.write(str(proc.pid))
    deadline = time.monotonic() + timeout
    url_file = os.path.join(state_dir, "url")
    while not os.path.exists(url_file):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the release store did not start (see %s/store.log)" % state_dir)
        time.sleep(0.05)
    with open(url_file) as f:
        return {"url": f.read(), "pid": proc.pid}


def stop(state_dir, timeout=10.0):
    path = os.path.join(state_dir, "store.pid")
    try:
        with open(path) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pid = None
    deadline = time.monotonic() + timeout
    while pid is not None and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.unlink(path)
    return True


def _alive(pid):
    """Running (an exited process nobody reaped yet is not)."""
    try:
        os.kill(pid, 0)
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def requests(state_dir):
    try:
        with open(os.path.join(state_dir, "requests.jsonl")) as f:
            return [json.loads(line) for line in f if line.strip()]
    except OSError:
        return []


def main(argv):
    cmd = argv[0] if argv else ""
    if cmd == "make":
        print(json.dumps(make_store(argv[1], argv[2], argv[3:])))
    elif cmd == "start":
        print(json.dumps(start(argv[1], argv[2])))
    elif cmd == "_serve":
        _serve(argv[1], argv[2])
    elif cmd == "requests":
        print(json.dumps(requests(argv[1])))
    elif cmd == "stop":
        print(json.dumps({"stopped": stop(argv[1])}))
    elif cmd == "free-port":
        print(free_port())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
