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

pytest imports it for the same functions, and local_fake.py (next to it: the plumbing of the
fakes of setup_gcp and setup_azure) uses free_port, spawn_detached, wait_http, alive, stop and
make_ca (their https CA). Only loopback is ever used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import datetime
import ipaddress
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


def make_ca(dirpath):
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it, written into
    dirpath; returns (ca_file, cert_file, key_file)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=30)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unikernel.ops test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, key_cert_sign=True, crl_sign=True,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=True, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_file = os.path.join(dirpath, "ca.pem")
    cert_file = os.path.join(dirpath, "server.pem")
    key_file = os.path.join(dirpath, "server-key.pem")
    with open(ca_file, "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(cert_file, "wb") as f:
        f.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(key_file, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    return ca_file, cert_file, key_file


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
