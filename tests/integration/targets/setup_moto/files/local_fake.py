# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plumbing the local fakes of cloud APIs share (setup_gcp's gce_fake.py, setup_azure's
arm_fake.py); each keeps its API model (routes, validation, resources, operations) itself.

* ``HttpsFake``: a base class that serves a fake over https on 127.0.0.1 from a thread, with a
  CA made by moto_endpoint.make_ca, a request log (``requests``) and the control endpoints
  under ``/__fake/``. A subclass answers the API in ``_dispatch``.
* ``serve``, ``start``, ``stop``: the fake in a process of its own, nobody's child (started with
  moto_endpoint.spawn_detached); STATE_DIR/NAME.json says where it listens, NAME.pid and
  NAME.log are its pid and output. ``start_server``: an emulator next to it, the same way.
* ``record``, ``calls``, ``resources``, ``cli_command``: its control endpoints, from outside.

The fakes import it with the collection under pytest; run as scripts (ansible-test), they put
this folder on sys.path, which ansible-test copies next to theirs (needs/target/setup_moto).
Only loopback is ever used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import json
import os
import shutil
import signal
import ssl
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

if __package__:
    from ansible_collections.unikernel.ops.tests.integration.targets.setup_moto.files import (
        moto_endpoint,
    )
else:  # a fake run as a script put this folder on sys.path
    import moto_endpoint

CONTROL = "/__fake/"
# the answer of an HTTP client that went away: nobody to tell
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ssl.SSLError)


# --------------------------------------------------------------------------------------------
# The server, in a thread of the process that uses the fake


class Handler(BaseHTTPRequestHandler):
    """Hands every request to the server's fake. A fake subclasses it to set server_version
    (and to take more HTTP methods: an absent do_X answers 501)."""
    protocol_version = "HTTP/1.1"

    def _any(self):
        self.server.fake._serve(self)

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _any

    def log_message(self, *args):
        pass  # the fake keeps its own log


class TlsServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def finish_request(self, request, client_address):
        # the TLS handshake happens in the connection's own thread
        try:
            request = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(request, client_address, self)

    def handle_error(self, request, client_address):
        pass


class HttpsFake:
    """A fake of an HTTP JSON API on https://127.0.0.1:PORT. ``start()`` it (a CA and server
    certificate are made in cert_dir, or a temporary folder: ``ca_file``), use ``url``, ``stop()``
    it. Every API request is logged in ``requests`` as {method, path, query, body, operation,
    mutating, status}.

    A subclass sets ``label`` (how its messages name it), ``handler_class``, ``content_type``
    and ``api_error`` (the exception class of its API's error answers), and defines
    ``_dispatch`` (answer one API request), ``_error_answer`` and ``_fake_error`` (its API's
    error shape), ``reset()`` (which sets ``requests``) and ``inventory()``; it may extend
    ``_control``, ``_reset_log``, ``_response_headers`` and ``_served_state``."""

    label = "fake"
    handler_class = Handler
    content_type = "application/json; charset=utf-8"
    api_error = ()  # nothing, until a subclass names its class

    def __init__(self, cert_dir=None):
        self._cert_dir = cert_dir
        self._tmp = None
        self._server = None
        self._thread = None
        self._lock = threading.RLock()
        self.ca_file = self.cert_file = self.key_file = None

    # ---- lifecycle

    def start(self):
        name = self.handler_class.server_version
        cert_dir = self._cert_dir
        if cert_dir is None:
            self._tmp = cert_dir = tempfile.mkdtemp(prefix=name + "-")
        self.ca_file, self.cert_file, self.key_file = moto_endpoint.make_ca(cert_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, self.key_file)
        self._server = TlsServer(("127.0.0.1", 0), self.handler_class)
        self._server.ssl_context = ctx
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name=name, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = self._thread = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return self._server.server_address[1]

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    def mutations(self):
        """The recorded requests that change something."""
        return [r for r in self.requests if r["mutating"]]

    # ---- HTTP plumbing

    def _serve(self, h):
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        if split.path.startswith(CONTROL):
            with self._lock:
                status, payload = self._control(h.command, split.path[len(CONTROL):],
                                                parse_qs(split.query))
            self._answer(h, status, payload, {})
            return
        entry = {"method": h.command, "path": unquote(split.path), "query": {}, "body": None,
                 "operation": None, "mutating": False, "status": None}
        headers = {}
        try:
            with self._lock:
                try:
                    status, payload, headers = self._dispatch(h, split, raw, entry)
                except self.api_error as e:
                    status, payload = self._error_answer(e)
                except Exception:  # a bug of the fake: say so loudly
                    tb = traceback.format_exc()
                    entry["traceback"] = tb
                    status, payload = self._error_answer(
                        self._fake_error(500, "%s crashed:\n%s" % (self.label, tb)))
                entry["status"] = status
                self.requests.append(entry)
            self._answer(h, status, payload, headers)
        except CLIENT_GONE:
            pass

    def _answer(self, h, status, payload, headers):
        """payload as JSON (None: no body), after headers (a dict)."""
        try:
            data = b"" if payload is None else json.dumps(payload, indent=1).encode("utf-8")
            h.send_response(status)
            for k, v in self._response_headers(headers):
                h.send_header(k, v)
            if data:
                h.send_header("Content-Type", self.content_type)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            if h.command != "HEAD":
                h.wfile.write(data)
        except CLIENT_GONE:
            pass

    def _response_headers(self, headers):
        """The headers of an answer: those it was given; a subclass adds its own."""
        return list(headers.items())

    def _control(self, method, what, query):
        """The control endpoints under /__fake/ (not recorded, no authentication): GET
        requests, GET resources, POST reset-log, POST reset. A subclass adds its own."""
        if method == "GET" and what == "requests":
            return 200, copy.deepcopy(self.requests)
        if method == "GET" and what == "resources":
            return 200, self.inventory()
        if method == "POST" and what == "reset-log":
            self._reset_log()
            return 200, {"requests": 0}
        if method == "POST" and what == "reset":
            self.reset()
            return 200, {"reset": True}
        return self._error_answer(self._fake_error(
            404, "%s has no control endpoint %s %s%s" % (self.label, method, CONTROL, what)))

    def _reset_log(self):
        self.requests = []

    def _served_state(self):
        """What `serve` writes into the state file besides url, ca_file and pid."""
        return {}

    @staticmethod
    def _out(res):
        """A stored resource as the API shows it: a copy without the fake's own "_" fields."""
        if res is None:
            return None
        return {k: copy.deepcopy(v) for k, v in res.items() if not k.startswith("_")}

    # ---- what a subclass defines

    def _dispatch(self, h, split, raw, entry):
        """(status, payload, headers) of an API request (h the handler, split its URL, raw
        its body), filling in entry; raises api_error for an error answer."""
        raise NotImplementedError

    @staticmethod
    def _error_answer(error):
        """(status, payload) of an api_error."""
        raise NotImplementedError

    @staticmethod
    def _fake_error(status, message):
        """An api_error of the fake itself: 404 (no such control endpoint) or 500 (a bug)."""
        raise NotImplementedError

    def reset(self):
        raise NotImplementedError

    def inventory(self):
        raise NotImplementedError


def take_failure(failures, operation):
    """An injected failure: of failures, [operation, times left, failure] lists, the failure
    of the first for operation with times left (one less now), else None."""
    for f in failures:
        if f[0] == operation and f[1] > 0:
            f[1] -= 1
            return f[2]
    return None


# --------------------------------------------------------------------------------------------
# The fake in a process of its own, and emulators next to it


def serve(state_dir, name, fake_class, **kwargs):
    """fake_class(cert_dir=STATE_DIR, **kwargs) in the foreground until SIGTERM or SIGINT;
    STATE_DIR/NAME.json says where ({"url", "ca_file", "pid"} and what _served_state adds)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    done = threading.Event()

    def on_signal(signum, frame):
        done.set()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake = fake_class(cert_dir=state_dir, **kwargs)
    fake.start()
    state = os.path.join(state_dir, name + ".json")
    try:
        described = {"url": fake.url, "ca_file": fake.ca_file, "pid": os.getpid()}
        described.update(fake._served_state())
        with open(state + ".tmp", "w") as f:
            json.dump(described, f)
        os.rename(state + ".tmp", state)  # whole, or not there
        while not done.wait(1.0):
            pass
    finally:
        fake.stop()
        if os.path.exists(state):
            os.unlink(state)


def start(script, state_dir, name, args=(), timeout=60.0):
    """`python SCRIPT serve STATE_DIR ARGS...` detached; its NAME.json once written."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    state = os.path.join(state_dir, name + ".json")
    if os.path.exists(state):
        os.unlink(state)
    pid = moto_endpoint.spawn_detached(
        [sys.executable, os.path.abspath(script), "serve", state_dir] + list(args), state_dir,
        name)
    deadline = time.monotonic() + timeout
    while not os.path.exists(state):
        if not moto_endpoint.alive(pid) or time.monotonic() > deadline:
            moto_endpoint.stop(state_dir, name)
            raise RuntimeError("%s did not start (see %s)" % (
                os.path.splitext(os.path.basename(script))[0],
                os.path.join(state_dir, name + ".log")))
        time.sleep(0.05)
    with open(state) as f:
        return json.load(f)


def stop(state_dir, name):
    """Stop the server of STATE_DIR/NAME.pid; False when none ran."""
    return moto_endpoint.stop(state_dir, name)


def start_server(state_dir, name, argv, port, probe, timeout):
    """argv (a server on 127.0.0.1:port) detached as NAME; its URL (http://127.0.0.1:PORT) once
    URL + probe answers. When it does not in time, it is stopped again (RuntimeError)."""
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    pid = moto_endpoint.spawn_detached(argv, state_dir, name)
    url = "http://127.0.0.1:%d" % port
    try:
        moto_endpoint.wait_http(url + probe, pid, timeout, "%s (see %s)" % (
            os.path.basename(argv[0]), os.path.join(state_dir, name + ".log")))
    except RuntimeError:
        moto_endpoint.stop(state_dir, name)
        raise
    return url


def read_pid(state_dir, name):
    with open(os.path.join(state_dir, name + ".pid")) as f:
        return int(f.read())


# --------------------------------------------------------------------------------------------
# Its control endpoints, from another process


def open_loopback(req, ctx=None):
    """urlopen for loopback: never through a proxy the environment names; the body as text."""
    handlers = [urllib.request.ProxyHandler({})]
    if ctx is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    return urllib.request.build_opener(*handlers).open(req, timeout=30).read().decode()


def control(state_dir, name, method, what):
    """The JSON answer of a control endpoint of the fake STATE_DIR/NAME.json describes."""
    with open(os.path.join(state_dir, name + ".json")) as f:
        state = json.load(f)
    ctx = ssl.create_default_context(cafile=state["ca_file"])
    req = urllib.request.Request(state["url"] + CONTROL + what, method=method,
                                 data=b"" if method == "POST" else None)
    return json.loads(open_loopback(req, ctx))


def record(state_dir, name):
    """An empty request log from here on."""
    return control(state_dir, name, "POST", "reset-log")


def calls(state_dir, name):
    """The requests logged since record(), in short."""
    return [{"operation": r["operation"], "mutating": r["mutating"], "method": r["method"],
             "path": r["path"], "status": r["status"]}
            for r in control(state_dir, name, "GET", "requests")]


def resources(state_dir, name):
    """What the fake holds (its inventory())."""
    return control(state_dir, name, "GET", "resources")


def cli_command(cmd, state_dir, name):
    """Run a command every fake's CLI has (stop, record, calls, resources) and print its JSON
    answer; False when cmd is none of them."""
    client = {"record": record, "calls": calls, "resources": resources}.get(cmd)
    if cmd == "stop":
        print(json.dumps({"stopped": stop(state_dir, name)}))
    elif client is not None:
        print(json.dumps(client(state_dir, name)))
    else:
        return False
    return True
