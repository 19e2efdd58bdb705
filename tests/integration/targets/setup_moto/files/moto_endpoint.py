#!/usr/bin/env python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A local AWS endpoint for the tests: moto in server mode on 127.0.0.1, and what it was asked.

    moto_endpoint.py start STATE_DIR     start moto_server, print {"endpoint_url", "pid"} as JSON
    moto_endpoint.py stop STATE_DIR      stop it
    moto_endpoint.py record URL          start (again) recording requests
    moto_endpoint.py calls URL           print the calls recorded since, as JSON:
                                         [{"service", "operation", "mutating"}]

pytest imports it for the same functions. Only loopback is ever used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

READ_PREFIXES = ("Describe", "List", "Get")
# EBS direct API: method and path -> operation
_EBS = (("POST", "/snapshots/completion/", "CompleteSnapshot"),
        ("PUT", "/blocks/", "PutSnapshotBlock"),
        ("GET", "/blocks/", "GetSnapshotBlock"),
        ("GET", "/blocks", "ListSnapshotBlocks"),
        ("GET", "/changedblocks", "ListChangedBlocks"),
        ("POST", "/snapshots", "StartSnapshot"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def spawn_detached(argv, state_dir, name, env=None):
    """Start argv in its own session and return at once, from a short-lived process of its own
    (`python moto_endpoint.py _spawn ...`), so that the server is nobody's child: tests that reap
    children see none. Its pid goes to STATE_DIR/NAME.pid, its output to STATE_DIR/NAME.log."""
    subprocess.run([sys.executable, os.path.abspath(__file__), "_spawn", state_dir, name,
                    json.dumps(argv), json.dumps(env or {})], check=True)
    with open(os.path.join(state_dir, name + ".pid")) as f:
        return int(f.read())


def _spawn(state_dir, name, argv, env):
    with open(os.path.join(state_dir, name + ".log"), "ab") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, **env), cwd=state_dir,
                                start_new_session=True)
    with open(os.path.join(state_dir, name + ".pid"), "w") as f:
        f.write(str(proc.pid))


def wait_http(url, pid, timeout, what, data=None):
    """Until url answers (a POST when data is given), or the server died or time ran out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, data=data, timeout=2).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            if not alive(pid) or time.monotonic() > deadline:
                raise RuntimeError("%s did not start" % what)
            time.sleep(0.1)


def alive(pid):
    """Running: a process that exited but that nobody reaped yet (the servers are nobody's
    child, so init reaps them, in its own time) is not."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def start(state_dir, timeout=30.0):
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    port = free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    env = {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
           "MOTO_RECORDER_FILEPATH": os.path.join(state_dir, "recording.jsonl")}
    pid = spawn_detached([exe, "-H", "127.0.0.1", "-p", str(port)], state_dir, "moto", env)
    url = "http://127.0.0.1:%d" % port
    wait_http(url + "/moto-api/reset", pid, timeout, "moto_server (see %s/moto.log)" % state_dir,
              data=b"")
    return {"endpoint_url": url, "pid": pid}


def stop(state_dir, name="moto", timeout=10.0):
    """SIGTERM to the server of STATE_DIR/NAME.pid, until it exited; False when none ran."""
    path = os.path.join(state_dir, name + ".pid")
    try:
        with open(path) as f:
            pid = int(f.read())
    except (OSError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return False
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.unlink(path)
    return True


def _post(url, path):
    return urllib.request.urlopen(url + path, data=b"", timeout=10).read()


def record(url):
    _post(url, "/moto-api/recorder/reset-recording")
    _post(url, "/moto-api/recorder/start-recording")


def _classify(entry):
    headers = dict((k.lower(), v) for k, v in (entry.get("headers") or {}).items())
    auth = headers.get("authorization", "")
    body = entry.get("body") or ""
    if entry.get("body_encoded"):
        body = base64.b64decode(body)
    path = urllib.parse.urlparse(entry["url"]).path
    if "/ebs/" in auth:
        for method, part, op in _EBS:
            if entry["method"] == method and part in path:
                return "ebs", op
        return "ebs", entry["method"] + " " + path
    service = auth.split("/")[3] if auth.count("/") >= 3 else "?"
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    action = urllib.parse.parse_qs(body).get("Action", [None])[0]
    if action is None:
        action = urllib.parse.parse_qs(urllib.parse.urlparse(entry["url"]).query).get(
            "Action", [entry["method"] + " " + path])[0]
    return service, action


def calls(url):
    """Every request since record(); stops the recording."""
    _post(url, "/moto-api/recorder/stop-recording")
    try:
        raw = urllib.request.urlopen(url + "/moto-api/recorder/download-recording",
                                     timeout=30).read().decode()
    except OSError:
        return []  # nothing was recorded (moto answers 500 before the first request)
    out = []
    # moto writes each entry and its newline in two writes, so parallel requests can put two
    # entries on one line: decode one JSON value after another instead of line by line
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        while pos < len(raw) and raw[pos].isspace():
            pos += 1
        if pos >= len(raw):
            break
        entry, pos = decoder.raw_decode(raw, pos)
        if "/moto-api/" in entry.get("url", ""):
            continue
        service, op = _classify(entry)
        out.append({"service": service, "operation": op,
                    "mutating": not op.startswith(READ_PREFIXES)})
    return out


def main(argv):
    cmd, arg = argv[1], argv[2]
    if cmd == "_spawn":
        _spawn(arg, argv[3], json.loads(argv[4]), json.loads(argv[5]))
    elif cmd == "start":
        print(json.dumps(start(arg)))
    elif cmd == "stop":
        print(json.dumps({"stopped": stop(arg)}))
    elif cmd == "record":
        record(arg)
        print(json.dumps({"recording": True}))
    elif cmd == "calls":
        print(json.dumps(calls(arg)))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
