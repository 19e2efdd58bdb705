# -*- coding: utf-8 -*-
"""An in-memory fake of the Google Compute Engine REST API (v1), at the HTTP level.

The tests start it on 127.0.0.1 over https (with a CA made by ``make_ca``) and drive it through
the real ``google.cloud.compute_v1`` clients (REST transport). Every request is first checked
against the discovery document ``compute.v1.json`` that google-api-python-client ships: the
HTTP method and path must be a discovery method, path and query parameters must be declared and
match their patterns, and the JSON body of a method with a ``request`` schema is validated
recursively (known fields only, JSON types, enums, no output-only fields). A request that fails
the check gets HTTP 400 in Google's error shape, naming the problem.

Then a small model of zones, disks, images, instances and operations answers it.

Timing of operations (the rule the tests can rely on):

* A mutating call checks everything at once (errors are synchronous HTTP errors) and applies
  its change at once: a created resource is visible in GET straight away, but in a transitional
  status (disk CREATING, image PENDING, instance PROVISIONING, STAGING on start, STOPPING on
  stop, DELETING / STOPPING while being deleted). It returns an Operation in status RUNNING.
* The operation becomes DONE on its ``polls_to_done``-th ``zoneOperations.get`` /
  ``globalOperations.get`` (default 2: the first get says RUNNING, the second says DONE), or
  at once on ``zoneOperations.wait`` / ``globalOperations.wait`` (wait always answers DONE).
  With ``polls_to_done = 0`` the mutating call itself answers DONE.
* When the operation turns DONE the resource reaches its final status (disk and image READY,
  instance RUNNING or TERMINATED) and deleted resources disappear (and an instance's
  auto-delete disks with it). ``finish_operations()`` completes every pending operation.
* A failing operation (see ``fail_operation`` and ``require_objects``) changes nothing; when
  DONE it carries ``error.errors[{code, message}]``, ``httpErrorStatusCode`` and
  ``httpErrorMessage``.
* A mutating call repeated with the same ``requestId`` query parameter answers the operation
  of the first call again (its current state) and changes nothing, as GCE does.

``op.result()`` of the SDK's ExtendedOperation polls compute.googleapis.com whatever the
client's endpoint is, so the callers wait with ``ZoneOperationsClient.wait`` /
``GlobalOperationsClient.wait``.

Control endpoints, outside the Compute API paths, for a process other than the one the fake runs
in (no authentication, not recorded): ``GET /__fake/requests`` (the request log as JSON),
``GET /__fake/resources`` (``inventory()``: what it holds), ``POST /__fake/reset-log`` (forget
the log and the resets), ``POST /__fake/reset`` (``reset()``).

pytest imports it; ansible-test (the target setup_gcp) runs it:

    gce_fake.py serve STATE_DIR          the fake in the foreground; STATE_DIR/gce.json holds
                                         {"url", "ca_file", "pid"} once it listens
    gce_fake.py start STATE_DIR          serve, detached; print gce.json once it is written
    gce_fake.py stop STATE_DIR           stop it
    gce_fake.py record STATE_DIR         (again) an empty request log
    gce_fake.py calls STATE_DIR          the log since then, as JSON:
                                         [{"operation", "mutating", "method", "path", "status"}]
    gce_fake.py resources STATE_DIR      what the fake holds, as JSON (see inventory())
    gce_fake.py start-gcs STATE_DIR [BUCKET]
                                         gcp-storage-emulator on loopback, in memory, with
                                         BUCKET (default staging); print {"url", "pid"}
    gce_fake.py stop-gcs STATE_DIR       stop it
    gce_fake.py objects GCS_URL BUCKET   the names of the bucket's objects, as JSON
    gce_fake.py start-all STATE_DIR [BUCKET]
                                         both: print {"url", "ca_file", "pid", "gcs_url",
                                         "gcs_pid"}; when one cannot start, none is left running
    gce_fake.py stop-all STATE_DIR       stop both

The HTTPS server, the control endpoints and the process commands are setup_moto's local_fake.py
(shared with the Azure fake); the servers are started with moto_endpoint.spawn_detached, so that
they are nobody's child; stop tells one that exited (and is not reaped yet) from one that runs.
Only loopback is ever used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import copy
import datetime
import functools
import hashlib
import json
import math
import os
import re
import sys
import threading
import urllib.error
from urllib.parse import parse_qs, unquote

if __package__:  # imported with the collection (pytest)
    from ansible_collections.unikernel.ops.tests.integration.targets.setup_moto.files import (
        local_fake,
    )
else:  # run as a script: ansible-test copies setup_moto's files/ next to this target's
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                    os.pardir, "setup_moto", "files"))
    import local_fake

GIB = 1024 ** 3
PREFIX = "/compute/v1/"
PROCESS = "gce"  # its files in STATE_DIR: gce.json (where it listens), gce.pid, gce.log
NAME_RE = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
LABEL_KEY_RE = r"[a-z][-_a-z0-9]{0,62}"
LABEL_VALUE_RE = r"[-_a-z0-9]{0,63}"
EMPTY_FINGERPRINT = "42WmSpB8rSM="  # what GCE reports for an empty label set
DEFAULT_ZONES = ("us-central1-a", "us-central1-b", "europe-west1-b")
DISK_TYPES = ("pd-balanced", "pd-standard", "pd-ssd")
MACHINE_TYPES = ("e2-micro", "e2-small", "e2-medium", "e2-standard-2", "e2-standard-4",
                 "e2-standard-8", "n1-standard-1", "n1-standard-2", "n1-standard-4",
                 "n2-standard-2", "n2-standard-4", "f1-micro", "g1-small", "c3-standard-4")
STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
          404: "NOT_FOUND", 409: "ALREADY_EXISTS", 412: "FAILED_PRECONDITION",
          429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 501: "UNIMPLEMENTED", 503: "UNAVAILABLE"}
HTTP_TEXT = {400: "BAD REQUEST", 403: "FORBIDDEN", 404: "NOT FOUND", 409: "CONFLICT",
             412: "PRECONDITION FAILED", 500: "INTERNAL SERVER ERROR", 503: "SERVICE UNAVAILABLE"}
REF_URL = re.compile(r"^https?://[^/]+/compute/(?:v1|beta|alpha)/")


class ApiError(Exception):
    """An HTTP error in Google's JSON shape."""

    def __init__(self, code, message, reason="invalid"):
        Exception.__init__(self, message)
        self.code = code
        self.message = message
        self.reason = reason

    def payload(self):
        return {"error": {"code": self.code, "message": self.message,
                          "errors": [{"message": self.message, "domain": "global",
                                      "reason": self.reason}],
                          "status": STATUS.get(self.code, "UNKNOWN")}}


def _invalid(field, value, why):
    return ApiError(400, "Invalid value for field '%s': '%s'. %s" % (field, value, why))


def _not_found(rel):
    return ApiError(404, "The resource '%s' was not found" % rel, "notFound")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


# --------------------------------------------------------------------------------------------
# Certificates


def make_ca(dirpath):
    """A CA and a server certificate for 127.0.0.1 / localhost signed by it, written into
    dirpath; returns (ca_file, cert_file, key_file). (moto_endpoint.make_ca, shared with the
    Azure fake.)"""
    return local_fake.moto_endpoint.make_ca(dirpath)


# --------------------------------------------------------------------------------------------
# The discovery document

_DISCOVERY = None
_DISCOVERY_LOCK = threading.Lock()


def discovery_document_text():
    """compute.v1.json as shipped by google-api-python-client."""
    rel = ("discovery_cache", "documents", "compute.v1.json")
    try:
        from importlib import resources
        return resources.files("googleapiclient").joinpath(*rel).read_text(encoding="utf-8")
    except (ImportError, AttributeError, TypeError):
        import googleapiclient
        with open(os.path.join(os.path.dirname(googleapiclient.__file__), *rel),
                  encoding="utf-8") as f:
            return f.read()


def discovery():
    """The parsed discovery document, loaded once per process."""
    global _DISCOVERY
    with _DISCOVERY_LOCK:
        if _DISCOVERY is None:
            _DISCOVERY = Discovery(json.loads(discovery_document_text()))
        return _DISCOVERY


class Discovery:
    """Routes and request validation from a discovery document."""

    def __init__(self, doc):
        self.doc = doc
        self.schemas = doc["schemas"]
        self.global_params = set(doc.get("parameters", {})) | {"$alt"}
        self.methods = {}
        self.routes = []
        self._walk(doc)

    def _walk(self, node):
        for res in node.get("resources", {}).values():
            for m in res.get("methods", {}).values():
                self.methods[m["id"]] = m
                templates = [("path", m["path"])]
                if m.get("flatPath") and m["flatPath"] != m["path"]:
                    templates.append(("flatPath", m["flatPath"]))
                for kind, tpl in templates:
                    regex, names, literal = self._compile(tpl)
                    self.routes.append((m, regex, names, literal, kind == "path"))
            self._walk(res)

    @staticmethod
    def _compile(tpl):
        names, out, literal = [], [], []
        for seg in tpl.split("/"):
            literal.append(0 if "{" in seg else 1)
            pos, rx = 0, ""
            for mt in re.finditer(r"\{(\+?)([^}]+)\}", seg):
                rx += re.escape(seg[pos:mt.start()])
                rx += "(.+)" if mt.group(1) else "([^/]+)"
                names.append(mt.group(2))
                pos = mt.end()
            out.append(rx + re.escape(seg[pos:]))
        return re.compile("/".join(out)), names, tuple(literal)

    def match(self, http_method, rel_path):
        """(method, path parameters, matched on 'path') of the best route, or ApiError 400."""
        hits, verbs = [], set()
        for m, regex, names, literal, is_path in self.routes:
            mt = regex.fullmatch(rel_path)
            if not mt:
                continue
            verbs.add(m["httpMethod"])
            if m["httpMethod"] == http_method:
                # a literal segment beats a placeholder at the first position they differ
                hits.append(((literal, is_path), m, dict(zip(names, mt.groups())), is_path))
        if not hits:
            where = "%s %s%s" % (http_method, PREFIX, rel_path)
            if verbs:
                raise ApiError(400, "No Compute Engine v1 method matches %s (the path takes %s)"
                               % (where, ", ".join(sorted(verbs))))
            raise ApiError(400, "No Compute Engine v1 method matches %s" % where)
        hits.sort(key=lambda h: h[0], reverse=True)
        m, params, is_path = hits[0][1:]
        return m, {k: unquote(v) for k, v in params.items()}, is_path

    def check_path(self, m, params, is_path):
        for name, p in m.get("parameters", {}).items():
            if p.get("location") != "path":
                continue
            if name not in params:
                if p.get("required") and is_path:
                    raise ApiError(400, "Required path parameter '%s' is missing" % name,
                                   "required")
                continue
            self._check_param(name, params[name], p, "path parameter")

    def check_query(self, m, raw_query):
        """The query as {name: value} (a list for a repeated parameter), or ApiError 400."""
        parsed = parse_qs(raw_query, keep_blank_values=True)
        declared = m.get("parameters", {})
        out = {}
        for name, values in parsed.items():
            p = declared.get(name)
            if p is None or p.get("location") != "query":
                if name in self.global_params:
                    out[name] = values[-1] if len(values) == 1 else values
                    continue
                raise ApiError(400, "Invalid JSON payload received. Unknown name \"%s\": Cannot "
                               "bind query parameter. Field '%s' could not be found in request "
                               "message (method %s)." % (name, name, m["id"]))
            if len(values) > 1 and not p.get("repeated"):
                raise ApiError(400, "Query parameter '%s' given %d times but is not repeated"
                               % (name, len(values)))
            for v in values:
                self._check_param(name, v, p, "query parameter")
            out[name] = values if p.get("repeated") else values[0]
        for name, p in declared.items():
            if p.get("location") == "query" and p.get("required") and name not in out:
                raise ApiError(400, "Required field '%s' not specified" % name, "required")
        return out

    @staticmethod
    def _check_param(name, value, p, what):
        t, fmt = p.get("type"), p.get("format")
        ok = True
        if t == "boolean":
            ok = value in ("true", "false", "True", "False", "1", "0")
        elif t == "integer" or fmt in ("int64", "uint64"):
            ok = re.fullmatch(r"-?[0-9]+" if fmt in ("int32", "int64") else r"[0-9]+",
                              value) is not None
        if not ok:
            raise ApiError(400, "Invalid value '%s' for %s '%s' (%s%s)"
                           % (value, what, name, t, "/" + fmt if fmt else ""))
        if "enum" in p and value not in p["enum"]:
            raise ApiError(400, "Invalid value '%s' for %s '%s'; allowed: %s"
                           % (value, what, name, ", ".join(p["enum"])))
        if "pattern" in p and re.fullmatch(p["pattern"], value) is None:
            raise ApiError(400, "Invalid value '%s' for %s '%s': must match regex '%s'"
                           % (value, what, name, p["pattern"]))

    def check_body(self, m, body):
        self.check_value(body, m["request"], "resource")

    def _resolve(self, sch):
        seen = 0
        while "$ref" in sch:
            sch = self.schemas[sch["$ref"]]
            seen += 1
            if seen > 20:
                break
        return sch

    def check_value(self, v, sch, where):
        if v is None:  # JSON null is "not set" in proto3 JSON
            return
        sch = self._resolve(sch)
        t = sch.get("type")
        if t == "any":
            return
        if t == "object" or (t is None and "properties" in sch):
            if not isinstance(v, dict):
                raise self._type_error(where, "a JSON object", v)
            props = sch.get("properties")
            addl = sch.get("additionalProperties")
            for k, sub in v.items():
                if props is not None and k in props:
                    p = props[k]
                    if p.get("readOnly"):
                        raise ApiError(400, "Invalid value at '%s.%s': '%s' is an output-only "
                                       "field and must not be set in a request"
                                       % (where, k, k))
                    self.check_value(sub, p, "%s.%s" % (where, k))
                elif addl is not None:
                    self.check_value(sub, addl, "%s[%s]" % (where, json.dumps(k)))
                else:
                    raise ApiError(400, "Invalid JSON payload received. Unknown name \"%s\" at "
                                   "'%s': Cannot find field (schema %s)."
                                   % (k, where, sch.get("id", "?")))
            return
        if t == "array":
            if not isinstance(v, list):
                raise self._type_error(where, "a JSON array", v)
            for i, item in enumerate(v):
                self.check_value(item, sch.get("items", {}), "%s[%d]" % (where, i))
            return
        fmt = sch.get("format")
        if t == "string":
            if not isinstance(v, str):
                what = "a JSON string" + (" holding a %s" % fmt if fmt else "")
                raise self._type_error(where, what, v)
            if fmt in ("int64", "uint64"):
                if re.fullmatch(r"-?[0-9]+" if fmt == "int64" else r"[0-9]+", v) is None:
                    raise self._type_error(where, "a JSON string holding a %s" % fmt, v)
            elif fmt == "byte":
                try:
                    base64.b64decode(v.replace("-", "+").replace("_", "/")
                                     + "=" * (-len(v) % 4), validate=True)
                except ValueError:
                    raise self._type_error(where, "base64 bytes", v)
        elif t == "integer":
            if isinstance(v, bool) or not isinstance(v, int):
                raise self._type_error(where, "a JSON number (%s)" % (fmt or "integer"), v)
            lo, hi = {"int32": (-2 ** 31, 2 ** 31 - 1), "uint32": (0, 2 ** 32 - 1)}.get(
                fmt, (-2 ** 63, 2 ** 64 - 1))
            if not lo <= v <= hi:
                raise self._type_error(where, "a %s" % fmt, v)
        elif t == "number":
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise self._type_error(where, "a JSON number", v)
        elif t == "boolean":
            if not isinstance(v, bool):
                raise self._type_error(where, "a JSON boolean", v)
        if "enum" in sch and v not in sch["enum"]:
            raise ApiError(400, "Invalid value at '%s' (enum), %s; allowed: %s"
                           % (where, json.dumps(v), ", ".join(sch["enum"])))

    @staticmethod
    def _type_error(where, expected, v):
        return ApiError(400, "Invalid value at '%s': expected %s, got %s"
                        % (where, expected, json.dumps(v)))


# --------------------------------------------------------------------------------------------
# List filters: FIELD = VALUE, FIELD != VALUE, FIELD : VALUE, FIELD eq REGEX, FIELD ne REGEX,
# joined by spaces / AND / OR, negated by NOT, grouped with parentheses.

_FTOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|(!=|=|:)|([^\s()"=!:]+))')


def _tokens(expr):
    out, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        mt = _FTOKEN.match(expr, pos)
        if not mt or mt.end() == pos:
            raise ValueError(expr[pos:])
        pos = mt.end()
        if mt.group(1) or mt.group(2):
            out.append(("p", mt.group(1) or mt.group(2)))
        elif mt.group(3) is not None:
            out.append(("s", re.sub(r"\\(.)", r"\1", mt.group(3))))
        elif mt.group(4):
            out.append(("o", mt.group(4)))
        else:
            out.append(("w", mt.group(5)))
    return out


def _field(res, path):
    cur = res
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if isinstance(cur, (dict, list)):
        return json.dumps(cur)
    return str(cur)


def _glob(pattern, value):
    rx = ".*".join(re.escape(p) for p in pattern.split("*"))
    return re.fullmatch(rx, value) is not None


def parse_filter(expr):
    """A predicate on resource dicts for a GCE list filter, or ValueError."""
    toks = _tokens(expr)
    pos = [0]

    def peek():
        return toks[pos[0]] if pos[0] < len(toks) else (None, None)

    def take():
        t = peek()
        pos[0] += 1
        return t

    def term():
        kind, val = take()
        if kind == "p" and val == "(":
            e = or_expr()
            if take() != ("p", ")"):
                raise ValueError("missing )")
            return e
        if kind == "w" and val in ("NOT", "-"):
            inner = term()
            return lambda r: not inner(r)
        if kind != "w":
            raise ValueError("field expected")
        field = val
        ok, op = take()
        if ok == "w" and op in ("eq", "ne"):
            pass
        elif ok != "o":
            raise ValueError("operator expected after %s" % field)
        vk, value = take()
        if vk not in ("w", "s"):
            raise ValueError("value expected after %s %s" % (field, op))
        if op in ("eq", "ne"):
            rx = re.compile(value)

            def cmp(r):
                got = _field(r, field)
                hit = got is not None and rx.fullmatch(got) is not None
                return hit if op == "eq" else not hit
            return cmp

        def cmp2(r):
            got = _field(r, field)
            if op == ":" and value == "*":
                return got is not None
            hit = got is not None and _glob(value, got)
            return not hit if op == "!=" else hit
        return cmp2

    def and_expr():
        parts = [term()]
        while True:
            kind, val = peek()
            if kind is None or (kind == "p" and val == ")") or (kind == "w" and val == "OR"):
                return lambda r: all(p(r) for p in parts)
            if kind == "w" and val == "AND":
                take()
            parts.append(term())

    def or_expr():
        parts = [and_expr()]
        while peek() == ("w", "OR"):
            take()
            parts.append(and_expr())
        return lambda r: any(p(r) for p in parts)

    if not toks:
        return lambda r: True
    pred = or_expr()
    if pos[0] != len(toks):
        raise ValueError("trailing %r" % (toks[pos[0]],))
    return pred


# --------------------------------------------------------------------------------------------
# The fake (its HTTPS server: local_fake.HttpsFake)


class _Handler(local_fake.Handler):
    server_version = "gce-fake"


class GceFake(local_fake.HttpsFake):
    """The fake. ``start()`` it, point the clients at ``url`` with ``REQUESTS_CA_BUNDLE`` set to
    ``ca_file``, read ``requests`` back, ``reset()`` between tests, ``stop()`` at the end."""

    label = "gce_fake"
    handler_class = _Handler
    content_type = "application/json; charset=UTF-8"
    api_error = ApiError

    def __init__(self, project="test-project", zones=DEFAULT_ZONES, polls_to_done=2,
                 cert_dir=None):
        local_fake.HttpsFake.__init__(self, cert_dir)
        self.project = project
        self.zones = list(zones)
        self.disk_types = set(DISK_TYPES)
        self.machine_types = set(MACHINE_TYPES)
        self.polls_to_done = polls_to_done
        self.default_image_size_gb = 1
        self.default_disk_size_gb = 10
        self.require_objects = False
        self.discovery = discovery()
        self.reset()

    def reset(self):
        """Forget every resource, operation, recorded request, reset, object size and
        injected failure (the settings zones, disk_types, machine_types, polls_to_done,
        require_objects and the default sizes stay)."""
        with self._lock:
            self.requests = []
            self.resets = []
            self.object_sizes = {}
            self._images = {}      # (project, name)
            self._disks = {}       # (project, zone, name)
            self._instances = {}   # (project, zone, name)
            self._ops = {}         # (project, zone or None, name)
            self._fail_requests = []
            self._request_ids = {}  # (project, requestId) -> operation key
            self._fail_ops = []
            self._counter = 0

    # ---- hooks for the tests (and mutations())

    def calls(self, operation):
        """The recorded requests of one discovery method id, e.g. 'compute.instances.reset'."""
        return [r for r in self.requests if r["operation"] == operation]

    def fail_request(self, operation, code=503, message="Service temporarily unavailable",
                     reason="backendError", times=1):
        """The next `times` valid requests of the method id answer this HTTP error."""
        with self._lock:
            self._fail_requests.append([operation, times, ApiError(code, message, reason)])

    def fail_operation(self, operation, code="INTERNAL_ERROR", message="Internal error",
                       http_status=500, times=1):
        """The next `times` valid calls of the mutating method id return an operation that
        ends DONE with this error and change nothing."""
        with self._lock:
            self._fail_ops.append([operation, times, (code, message, http_status)])

    def finish_operations(self):
        """Complete every pending operation."""
        with self._lock:
            for key in list(self._ops):
                self._complete(key)

    def add_image(self, name, project=None, disk_size_gb=10, family=None, labels=None,
                  source="https://storage.googleapis.com/seed/seed.tar.gz"):
        """A READY image seeded without a request (e.g. in another project); returns it."""
        with self._lock:
            project = project or self.project
            img = self._new_image(project, name, {"rawDisk": {"source": source}},
                                  source, int(disk_size_gb), None)
            img["status"] = "READY"
            if family:
                img["family"] = family
            if labels:
                img["labels"] = dict(labels)
                img["labelFingerprint"] = _fingerprint(labels)
            self._images[(project, name)] = img
            return self._out(img)

    def inventory(self):
        """Everything the fake holds, in every project and zone: {"disks", "images",
        "instances"} as sorted lists of project/zone/name (images: project/name), and
        "pending_operations" (the names of those not DONE)."""
        with self._lock:
            return {
                "disks": sorted("/".join(k) for k in self._disks),
                "images": sorted("/".join(k) for k in self._images),
                "instances": sorted("/".join(k) for k in self._instances),
                "pending_operations": sorted(k[2] for k, e in self._ops.items()
                                             if e["op"]["status"] != "DONE")}

    def resource(self, kind, name, zone=None, project=None):
        """A stored 'image', 'disk', 'instance' or 'operation' as GET shows it, or None."""
        project = project or self.project
        with self._lock:
            if kind == "image":
                r = self._images.get((project, name))
            elif kind == "disk":
                r = self._disks.get((project, zone, name))
            elif kind == "instance":
                r = self._instances.get((project, zone, name))
            else:
                entry = self._ops.get((project, zone, name))
                r = entry and entry["op"]
            return self._out(r) if r else None

    # ---- HTTP (the rest: local_fake.HttpsFake)

    @staticmethod
    def _error_answer(error):
        return error.code, error.payload()

    @staticmethod
    def _fake_error(status, message):
        return ApiError(status, message, "notFound" if status == 404 else "backendError")

    def _control(self, method, what, query):
        if method == "GET" and what == "resets":
            return 200, copy.deepcopy(self.resets)
        return local_fake.HttpsFake._control(self, method, what, query)

    def _reset_log(self):
        self.requests = []
        self.resets = []

    def _dispatch(self, h, split, raw, entry):
        path = split.path
        if raw:
            try:
                entry["body"] = json.loads(raw.decode("utf-8"))
            except ValueError as e:
                entry["body"] = raw.decode("utf-8", "replace")
                raise ApiError(400, "Invalid JSON payload received. %s" % e)
        if not path.startswith(PREFIX):
            raise ApiError(400, "No Compute Engine v1 method matches %s %s" % (h.command, path))
        m, params, is_path = self.discovery.match(h.command, path[len(PREFIX):])
        mid = m["id"]
        entry["operation"] = mid
        entry["mutating"] = m["httpMethod"] != "GET" and not mid.endswith("Operations.wait")
        auth = h.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or len(auth) <= len("Bearer "):
            raise ApiError(401, "Request is missing required authentication credential. "
                           "Expected OAuth 2 access token.", "required")
        self.discovery.check_path(m, params, is_path)
        query = self.discovery.check_query(m, split.query)
        entry["query"] = query
        body = entry["body"]
        if "request" in m:
            self.discovery.check_body(m, {} if body is None else body)
        elif body not in (None, {}):
            raise ApiError(400, "Invalid JSON payload received: method %s takes no request "
                           "body" % mid)
        failure = local_fake.take_failure(self._fail_requests, mid)
        if failure is not None:
            raise failure
        project = params.get("project")
        zone = params.get("zone")
        if zone is not None and mid != "compute.zones.get" and zone not in self.zones:
            raise self._unknown_zone(project, zone)
        handler = getattr(self, "_h_" + mid.split(".", 1)[1].replace(".", "_"), None)
        if handler is None:
            raise ApiError(501, "gce_fake does not implement %s" % mid, "notImplemented")
        rid = query.get("requestId") if entry["mutating"] else None
        if rid and (project, rid) in self._request_ids:
            return 200, self._out(self._ops[self._request_ids[(project, rid)]]["op"]), {}
        ctx = _Ctx(mid, project, zone, params, query, body or {})
        answer = handler(ctx)
        if rid and answer.get("kind") == "compute#operation":
            self._request_ids[(project, rid)] = (project, answer.get("zone") and zone,
                                                 answer["name"])
        return 200, answer, {}

    # ---- shared helpers

    def _next_id(self):
        self._counter += 1
        return str(7000000000000000000 + self._counter * 7919)

    def _link(self, rel):
        return "%s%s%s" % (self.url, PREFIX, rel)

    @staticmethod
    def _unknown_zone(project, zone):
        return ApiError(404, "The resource 'projects/%s/zones/%s' was not found (Unknown zone)"
                        % (project, zone), "notFound")

    @staticmethod
    def _check_name(name, field="resource.name"):
        if not isinstance(name, str) or re.fullmatch(NAME_RE, name) is None:
            raise _invalid(field, name or "", "Must be a match of regex '(?:%s)'" % NAME_RE)

    @staticmethod
    def _check_labels(labels, field="resource.labels"):
        labels = labels or {}
        if len(labels) > 64:
            raise _invalid(field, "", "At most 64 labels are allowed.")
        for k, v in labels.items():
            if re.fullmatch(LABEL_KEY_RE, k) is None:
                raise _invalid(field, "", "Label key '%s' violates format constraints. The key "
                               "must start with a lowercase character, can only contain "
                               "lowercase letters, numeric characters, underscores and dashes. "
                               "The key can be at most 63 characters long." % k)
            if re.fullmatch(LABEL_VALUE_RE, v) is None:
                raise _invalid(field, "", "Label value '%s' violates format constraints. The "
                               "value can only contain lowercase letters, numeric characters, "
                               "underscores and dashes. The value can be at most 63 characters "
                               "long." % v)

    def _ref(self, value, project, field, shapes):
        """Parse a (full or partial) resource URL: (project, parts) with parts matching one
        of the shapes, e.g. ("zones", None, "disks", None) where None is a variable part."""
        if not isinstance(value, str) or not value:
            raise _invalid(field, value or "", "The URL is malformed.")
        rel = REF_URL.sub("", value)
        if rel.startswith("projects/"):
            bits = rel.split("/", 2)
            if len(bits) < 3 or not bits[1]:
                raise _invalid(field, value, "The URL is malformed.")
            project, rel = bits[1], bits[2]
        parts = rel.split("/")
        for shape in shapes:
            if len(shape) == len(parts) and all(
                    s is None and p or s == p for s, p in zip(shape, parts)):
                return project, parts
        raise _invalid(field, value, "The URL is malformed.")

    def _disk_type(self, value, project, zone, field):
        if value is None:
            return self._link("projects/%s/zones/%s/diskTypes/pd-standard" % (project, zone))
        p, parts = self._ref(value, project, field, [("zones", None, "diskTypes", None)])
        if parts[1] != zone:
            raise _invalid(field, value, "Disk type must be in zone '%s'." % zone)
        if parts[3] not in self.disk_types:
            raise _invalid(field, value, "Disk type '%s' does not exist in zone '%s'."
                           % (parts[3], zone))
        return self._link("projects/%s/zones/%s/diskTypes/%s" % (p, zone, parts[3]))

    def _find_image(self, value, project, field):
        p, parts = self._ref(value, project, field,
                             [("global", "images", None), ("global", "images", "family", None)])
        if len(parts) == 3:
            img = self._images.get((p, parts[2]))
            rel = "projects/%s/global/images/%s" % (p, parts[2])
        else:
            rel = "projects/%s/global/images/family/%s" % (p, parts[3])
            img = self._from_family(p, parts[3])
        if img is None:
            raise _not_found(rel)
        if img["status"] != "READY":
            raise ApiError(400, "The resource 'projects/%s/global/images/%s' is not ready"
                           % (p, img["name"]), "resourceNotReady")
        return img

    def _from_family(self, project, family):
        cands = [i for (p, _name), i in self._images.items()
                 if p == project and i.get("family") == family and i["status"] == "READY"
                 and not i.get("deprecated")]
        return max(cands, key=lambda i: i["creationTimestamp"]) if cands else None

    def _find_disk(self, value, project, field):
        p, parts = self._ref(value, project, field, [("zones", None, "disks", None)])
        zone = parts[1]
        if zone not in self.zones:
            raise self._unknown_zone(p, zone)
        disk = self._disks.get((p, zone, parts[3]))
        if disk is None:
            raise _not_found("projects/%s/zones/%s/disks/%s" % (p, zone, parts[3]))
        return disk

    def _get(self, store, key, rel):
        res = store.get(key)
        if res is None:
            raise _not_found(rel)
        return res

    def _list(self, ctx, items, kind, rel):
        items = self._filtered(ctx, items)
        items.sort(key=lambda r: r.get("name", ""))
        page, token = self._page(ctx, items)
        out = {"kind": kind, "id": rel, "selfLink": self._link(rel)}
        if page:
            out["items"] = page
        if token:
            out["nextPageToken"] = token
        return out

    def _filtered(self, ctx, items):
        expr = ctx.query.get("filter")
        if not expr:
            return [self._out(r) for r in items]
        try:
            pred = parse_filter(expr)
        except (ValueError, re.error):
            raise ApiError(400, "Invalid list filter expression '%s'." % expr)
        return [self._out(r) for r in items if pred(r)]

    @staticmethod
    def _page(ctx, items):
        size = int(ctx.query.get("maxResults") or 500)
        size = max(1, min(size, 500))
        token = ctx.query.get("pageToken") or "0"
        if not token.isdigit():
            raise ApiError(400, "Invalid value for field 'pageToken': '%s'." % token)
        start = int(token)
        nxt = start + size
        return items[start:nxt], (str(nxt) if nxt < len(items) else None)

    def _aggregated(self, ctx, store, key, kind):
        items = {}
        for zone in self.zones:
            got = self._filtered(ctx, [r for (p, z, _name), r in sorted(store.items())
                                       if p == ctx.project and z == zone])
            scope = "zones/%s" % zone
            if got:
                items[scope] = {key: got}
            else:
                items[scope] = {"warning": {
                    "code": "NO_RESULTS_ON_PAGE",
                    "message": "There are no results for scope '%s' on this page." % scope,
                    "data": [{"key": "scope", "value": scope}]}}
        rel = "projects/%s/aggregated/%s" % (ctx.project, key)
        return {"kind": kind, "id": rel, "items": items, "selfLink": self._link(rel)}

    def _base(self, kind, name, rel, body):
        res = {k: copy.deepcopy(v) for k, v in body.items()}
        res.update({"kind": kind, "id": self._next_id(), "creationTimestamp": _now(),
                    "name": name, "selfLink": self._link(rel)})
        labels = body.get("labels") or {}
        res["labels"] = dict(labels)
        res["labelFingerprint"] = _fingerprint(labels)
        if not labels:
            del res["labels"]
        return res

    # ---- operations

    def _failure_for(self, mid):
        return local_fake.take_failure(self._fail_ops, mid)

    def _op(self, ctx, op_type, target_rel, target_id=None, finish=None, error=None):
        """A new operation for the call in ctx; `finish` runs when it turns DONE (unless it
        fails)."""
        zone = ctx.zone
        name = "operation-%d-%013x-%08x-%08x" % (
            int(datetime.datetime.now().timestamp() * 1000), self._counter + 1,
            int(hashlib.sha256(target_rel.encode()).hexdigest()[:8], 16), len(self._ops) + 1)
        scope = "projects/%s/zones/%s" % (ctx.project, zone) if zone else \
            "projects/%s/global" % ctx.project
        op = {"kind": "compute#operation", "id": self._next_id(), "name": name,
              "operationType": op_type, "targetLink": self._link(target_rel),
              "status": "RUNNING", "user": "test@example.com", "progress": 0,
              "insertTime": _now(), "startTime": _now(),
              "selfLink": self._link("%s/operations/%s" % (scope, name))}
        if target_id:
            op["targetId"] = target_id
        if zone:
            op["zone"] = self._link("projects/%s/zones/%s" % (ctx.project, zone))
        key = (ctx.project, zone, name)
        self._ops[key] = {"op": op, "polls": 0, "finish": finish, "error": error,
                          "method": ctx.mid}
        if self.polls_to_done <= 0:
            self._complete(key)
        return self._out(op)

    def _mutate(self, ctx, op_type, target_rel, apply, target_id=None):
        """Run apply() (which returns the finish callback or None) unless a failure is
        injected for this method, and answer the operation."""
        failure = self._failure_for(ctx.mid)
        if failure:
            return self._op(ctx, op_type, target_rel, target_id, error=failure)
        finish = apply()
        return self._op(ctx, op_type, target_rel, target_id, finish=finish)

    def _complete(self, key):
        entry = self._ops[key]
        op = entry["op"]
        if op["status"] == "DONE":
            return
        op["status"] = "DONE"
        op["progress"] = 100
        op["endTime"] = _now()
        if entry["error"]:
            code, message, http_status = entry["error"]
            op["error"] = {"errors": [{"code": code, "message": message}]}
            op["httpErrorStatusCode"] = http_status
            op["httpErrorMessage"] = HTTP_TEXT.get(http_status, "ERROR")
        elif entry["finish"]:
            entry["finish"]()
            entry["finish"] = None

    def _op_get(self, ctx, zone, wait):
        key = (ctx.project, zone, ctx.params["operation"])
        entry = self._ops.get(key)
        if entry is None:
            scope = "zones/%s" % zone if zone else "global"
            raise _not_found("projects/%s/%s/operations/%s"
                             % (ctx.project, scope, ctx.params["operation"]))
        entry["polls"] += 1
        if wait or entry["polls"] >= self.polls_to_done:
            self._complete(key)
        return self._out(entry["op"])

    def _h_zoneOperations_get(self, ctx):
        return self._op_get(ctx, ctx.zone, False)

    def _h_zoneOperations_wait(self, ctx):
        return self._op_get(ctx, ctx.zone, True)

    def _h_globalOperations_get(self, ctx):
        return self._op_get(ctx, None, False)

    def _h_globalOperations_wait(self, ctx):
        return self._op_get(ctx, None, True)

    def _h_zoneOperations_list(self, ctx):
        items = [e["op"] for (p, z, _name), e in self._ops.items()
                 if p == ctx.project and z == ctx.zone]
        return self._list(ctx, items, "compute#operationList",
                          "projects/%s/zones/%s/operations" % (ctx.project, ctx.zone))

    def _h_globalOperations_list(self, ctx):
        items = [e["op"] for (p, z, _name), e in self._ops.items() if p == ctx.project and not z]
        return self._list(ctx, items, "compute#operationList",
                          "projects/%s/global/operations" % ctx.project)

    # ---- zones

    def _zone(self, project, name):
        return {"kind": "compute#zone", "id": str(2000 + self.zones.index(name)),
                "creationTimestamp": "1969-12-31T16:00:00.000-08:00", "name": name,
                "description": name, "status": "UP",
                "region": self._link("projects/%s/regions/%s" % (project, name.rsplit("-", 1)[0])),
                "selfLink": self._link("projects/%s/zones/%s" % (project, name)),
                "availableCpuPlatforms": ["Intel Broadwell", "AMD Milan"],
                "supportsPzs": False}

    def _h_zones_get(self, ctx):
        if ctx.zone not in self.zones:
            raise self._unknown_zone(ctx.project, ctx.zone)
        return self._zone(ctx.project, ctx.zone)

    def _h_zones_list(self, ctx):
        return self._list(ctx, [self._zone(ctx.project, z) for z in self.zones],
                          "compute#zoneList", "projects/%s/zones" % ctx.project)

    # ---- images

    def _new_image(self, project, name, body, source, size_gb, archive_bytes):
        rel = "projects/%s/global/images/%s" % (project, name)
        img = self._base("compute#image", name, rel, body)
        img.update({"status": "PENDING", "diskSizeGb": str(size_gb),
                    "storageLocations": body.get("storageLocations") or ["us"]})
        if source:
            raw = dict(body.get("rawDisk") or {})
            raw["source"] = source
            raw.setdefault("containerType", "TAR")
            img["rawDisk"] = raw
            img["sourceType"] = "RAW"
        if archive_bytes is not None:
            img["archiveSizeBytes"] = str(archive_bytes)
        return img

    @staticmethod
    def _gcs_url(value):
        mt = re.fullmatch(r"gs://([^/]+)/(.+)", value or "") or re.fullmatch(
            r"https://storage\.(?:googleapis|cloud\.google)\.com/([^/]+)/(.+)", value or "")
        return mt and "https://storage.googleapis.com/%s/%s" % (mt.group(1), mt.group(2))

    def _object_size(self, url):
        for key, n in self.object_sizes.items():
            if self._gcs_url(key) == url:
                return n
        return None

    def _h_images_insert(self, ctx):
        body, project = ctx.body, ctx.project
        name = body.get("name")
        self._check_name(name)
        self._check_labels(body.get("labels"))
        rel = "projects/%s/global/images/%s" % (project, name)
        if (project, name) in self._images:
            raise ApiError(409, "The resource '%s' already exists" % rel, "alreadyExists")
        raw = (body.get("rawDisk") or {}).get("source")
        given = [k for k in ("rawDisk", "sourceDisk", "sourceImage", "sourceSnapshot")
                 if body.get(k)]
        if len(given) != 1:
            raise _invalid("resource", "", "Exactly one of rawDisk.source, sourceDisk, "
                           "sourceImage, sourceSnapshot must be specified (got %s)."
                           % (", ".join(given) or "none"))
        error, source, archive = None, None, None
        if body.get("rawDisk"):
            source = self._gcs_url(raw)
            if not source:
                raise _invalid("resource.rawDisk.source", raw or "", "The URL is malformed.")
            archive = self._object_size(source)
            if archive is not None:
                size = max(1, int(math.ceil(archive / float(GIB))))
            else:
                size = self.default_image_size_gb
                if self.require_objects:
                    error = ("RESOURCE_NOT_FOUND", "The resource '%s' of type 'GCS object' "
                             "was not found." % source, 404)
        elif body.get("sourceDisk"):
            disk = self._find_disk(body["sourceDisk"], project, "resource.sourceDisk")
            if disk["status"] != "READY":
                raise ApiError(400, "The resource '%s' is not ready" % _rel(disk),
                               "resourceNotReady")
            size = int(disk["sizeGb"])
        elif body.get("sourceImage"):
            size = int(self._find_image(body["sourceImage"], project,
                                        "resource.sourceImage")["diskSizeGb"])
        else:
            raise _invalid("resource.sourceSnapshot", body["sourceSnapshot"],
                           "gce_fake does not implement images from snapshots.")
        if body.get("diskSizeGb"):
            size = max(size, int(body["diskSizeGb"]))
        failure = self._failure_for(ctx.mid)
        if error or failure:
            return self._op(ctx, "insert", rel, error=error or failure)
        img = self._new_image(project, name, body, source, size, archive)
        if body.get("sourceDisk"):
            img["sourceDisk"] = disk["selfLink"]
            img["sourceDiskId"] = disk["id"]
            img["sourceType"] = "RAW"
        self._images[(project, name)] = img

        def finish():
            img["status"] = "READY"
        return self._op(ctx, "insert", rel, img["id"], finish=finish)

    def _h_images_get(self, ctx):
        name = ctx.params["image"]
        return self._out(self._get(self._images, (ctx.project, name),
                                   "projects/%s/global/images/%s" % (ctx.project, name)))

    def _h_images_getFromFamily(self, ctx):
        img = self._from_family(ctx.project, ctx.params["family"])
        if img is None:
            raise _not_found("projects/%s/global/images/family/%s"
                             % (ctx.project, ctx.params["family"]))
        return self._out(img)

    def _h_images_list(self, ctx):
        items = [i for (p, _name), i in self._images.items() if p == ctx.project]
        return self._list(ctx, items, "compute#imageList",
                          "projects/%s/global/images" % ctx.project)

    def _h_images_delete(self, ctx):
        name = ctx.params["image"]
        rel = "projects/%s/global/images/%s" % (ctx.project, name)
        img = self._get(self._images, (ctx.project, name), rel)
        if img["status"] != "READY":
            raise ApiError(400, "The resource '%s' is not ready" % rel, "resourceNotReady")

        def apply():
            img["status"] = "DELETING"
            return lambda: self._images.pop((ctx.project, name), None)
        return self._mutate(ctx, "delete", rel, apply, img["id"])

    def _h_images_setLabels(self, ctx):
        name = ctx.params["resource"]
        rel = "projects/%s/global/images/%s" % (ctx.project, name)
        return self._set_labels(ctx, self._get(self._images, (ctx.project, name), rel), rel)

    def _set_labels(self, ctx, res, rel):
        labels = ctx.body.get("labels") or {}
        self._check_labels(labels, "labels")
        fp = ctx.body.get("labelFingerprint")
        if not fp:
            raise ApiError(400, "Required field 'labelFingerprint' not specified", "required")
        if fp != res["labelFingerprint"]:
            raise ApiError(412, "Labels fingerprint either invalid or resource labels have "
                           "changed", "conditionNotMet")

        def apply():
            res.pop("labels", None)
            if labels:
                res["labels"] = dict(labels)
            res["labelFingerprint"] = _fingerprint(labels)
        return self._mutate(ctx, "setLabels", rel, apply, res["id"])

    # ---- disks

    def _h_disks_insert(self, ctx):
        body, project, zone = ctx.body, ctx.project, ctx.zone
        name = body.get("name")
        self._check_name(name)
        self._check_labels(body.get("labels"))
        rel = "projects/%s/zones/%s/disks/%s" % (project, zone, name)
        if (project, zone, name) in self._disks:
            raise ApiError(409, "The resource '%s' already exists" % rel, "alreadyExists")
        for k in ("sourceSnapshot", "sourceDisk", "sourceInstantSnapshot", "sourceStorageObject"):
            if body.get(k):
                raise _invalid("resource.%s" % k, body[k],
                               "gce_fake does not implement disks from a %s." % k)
        image_ref = body.get("sourceImage") or ctx.query.get("sourceImage")
        image = self._find_image(image_ref, project, "resource.sourceImage") \
            if image_ref else None
        dtype = self._disk_type(body.get("type"), project, zone, "resource.type")
        size = self._check_size(body.get("sizeGb"), image, "resource.sizeGb")

        def apply():
            disk = self._new_disk(project, zone, name, body, image, size, dtype)
            return lambda: disk.update(status="READY")
        return self._mutate(ctx, "insert", rel, apply)

    def _check_size(self, given, image, field):
        image_size = int(image["diskSizeGb"]) if image else None
        if given in (None, ""):
            return image_size or self.default_disk_size_gb
        size = int(given)
        if size < 1:
            raise _invalid(field, given, "Disk size must be at least 1 GB.")
        if image_size and size < image_size:
            raise _invalid(field, given, "Requested disk size cannot be smaller than the image "
                           "size (%d GB)" % image_size)
        return size

    def _new_disk(self, project, zone, name, body, image, size, dtype):
        rel = "projects/%s/zones/%s/disks/%s" % (project, zone, name)
        disk = self._base("compute#disk", name, rel, body)
        disk.update({"sizeGb": str(size), "zone": self._link("projects/%s/zones/%s"
                                                             % (project, zone)),
                     "status": "CREATING", "type": dtype, "physicalBlockSizeBytes": "4096",
                     "_project": project, "_zone": zone})
        disk.pop("sourceImage", None)
        if image:
            disk["sourceImage"] = image["selfLink"]
            disk["sourceImageId"] = image["id"]
            if image.get("guestOsFeatures") and "guestOsFeatures" not in disk:
                disk["guestOsFeatures"] = copy.deepcopy(image["guestOsFeatures"])
        self._disks[(project, zone, name)] = disk
        return disk

    def _h_disks_get(self, ctx):
        name = ctx.params["disk"]
        return self._out(self._get(self._disks, (ctx.project, ctx.zone, name), "projects/%s/"
                                   "zones/%s/disks/%s" % (ctx.project, ctx.zone, name)))

    def _h_disks_list(self, ctx):
        items = [d for (p, z, _name), d in self._disks.items() if p == ctx.project and z == ctx.zone]
        return self._list(ctx, items, "compute#diskList",
                          "projects/%s/zones/%s/disks" % (ctx.project, ctx.zone))

    def _h_disks_aggregatedList(self, ctx):
        return self._aggregated(ctx, self._disks, "disks", "compute#diskAggregatedList")

    def _h_disks_delete(self, ctx):
        name = ctx.params["disk"]
        rel = "projects/%s/zones/%s/disks/%s" % (ctx.project, ctx.zone, name)
        disk = self._get(self._disks, (ctx.project, ctx.zone, name), rel)
        if disk.get("users"):
            raise ApiError(400, "The disk resource '%s' is already being used by '%s'"
                           % (rel, _rel_url(disk["users"][0])),
                           "resourceInUseByAnotherResource")
        if disk["status"] != "READY":
            raise ApiError(400, "The resource '%s' is not ready" % rel, "resourceNotReady")

        def apply():
            disk["status"] = "DELETING"
            return lambda: self._disks.pop((ctx.project, ctx.zone, name), None)
        return self._mutate(ctx, "delete", rel, apply, disk["id"])

    def _h_disks_resize(self, ctx):
        name = ctx.params["disk"]
        rel = "projects/%s/zones/%s/disks/%s" % (ctx.project, ctx.zone, name)
        disk = self._get(self._disks, (ctx.project, ctx.zone, name), rel)
        given = ctx.body.get("sizeGb")
        if not given:
            raise ApiError(400, "Required field 'sizeGb' not specified", "required")
        if int(given) <= int(disk["sizeGb"]):
            raise _invalid("sizeGb", given, "New disk size '%s' GiB must be larger than "
                           "existing size '%s' GiB." % (given, disk["sizeGb"]))
        if disk["status"] != "READY":
            raise ApiError(400, "The resource '%s' is not ready" % rel, "resourceNotReady")

        def apply():
            disk["sizeGb"] = str(int(given))
        return self._mutate(ctx, "resizeDisk", rel, apply, disk["id"])

    def _h_disks_setLabels(self, ctx):
        name = ctx.params["resource"]
        rel = "projects/%s/zones/%s/disks/%s" % (ctx.project, ctx.zone, name)
        return self._set_labels(ctx, self._get(self._disks, (ctx.project, ctx.zone, name), rel),
                                rel)

    # ---- instances

    def _machine_type(self, value, project, zone):
        field = "resource.machineType"
        if not value:
            raise _invalid(field, "", "A machine type must be specified.")
        p, parts = self._ref(value, project, field, [("zones", None, "machineTypes", None)])
        mtype = parts[3]
        if parts[1] != zone:
            raise _invalid(field, value, "Machine type must be in zone '%s'." % zone)
        if mtype not in self.machine_types and re.fullmatch(
                r"(?:[a-z0-9]+-)?custom-[0-9]+-[0-9]+(?:-ext)?", mtype) is None:
            raise _invalid(field, value, "Machine type with name '%s' does not exist in zone "
                           "'%s'." % (mtype, zone))
        return self._link("projects/%s/zones/%s/machineTypes/%s" % (p, zone, mtype))

    def _check_attach(self, disk, zone, inst_rel, field, mode, attached_here=()):
        """Refusals of attaching disk (mode) to the instance inst_rel in zone."""
        disk_rel = _rel(disk)
        if disk["_zone"] != zone:
            raise _invalid(field, disk_rel, "Disk must be in the same zone as the instance "
                           "('%s', the disk is in '%s')." % (zone, disk["_zone"]))
        for user in disk.get("users") or []:
            other = _rel_url(user)
            if other == inst_rel:
                raise ApiError(400, "The disk resource '%s' is already being used by '%s'"
                               % (disk_rel, other), "resourceInUseByAnotherResource")
            other_mode = self._mode_on(other, disk)
            if other_mode == "READ_WRITE" or mode == "READ_WRITE":
                raise ApiError(400, "The disk resource '%s' is already being used by '%s' "
                               "(attached %s there; requested %s)"
                               % (disk_rel, other, other_mode, mode),
                               "resourceInUseByAnotherResource")
        if disk_rel in attached_here:
            raise _invalid(field, disk_rel, "The same disk is attached twice.")
        if disk["status"] != "READY":
            raise ApiError(400, "The resource '%s' is not ready" % disk_rel, "resourceNotReady")

    def _mode_on(self, inst_rel, disk):
        bits = inst_rel.split("/")
        inst = self._instances.get((bits[1], bits[3], bits[5]))
        for d in (inst or {}).get("disks", []):
            if d["source"] == disk["selfLink"]:
                return d["mode"]
        return None

    def _attached(self, disk, spec, index, boot, auto_delete):
        out = {"kind": "compute#attachedDisk", "type": "PERSISTENT",
               "mode": spec.get("mode") or "READ_WRITE", "source": disk["selfLink"],
               "deviceName": spec["deviceName"], "index": index, "boot": boot,
               "autoDelete": auto_delete, "interface": spec.get("interface") or "SCSI",
               "diskSizeGb": disk["sizeGb"]}
        if disk.get("guestOsFeatures"):
            out["guestOsFeatures"] = copy.deepcopy(disk["guestOsFeatures"])
        return out

    def _h_instances_insert(self, ctx):
        body, project, zone = ctx.body, ctx.project, ctx.zone
        for k in ("sourceInstanceTemplate", "sourceMachineImage"):
            if ctx.query.get(k):
                raise ApiError(400, "gce_fake does not implement instances.insert with %s" % k)
        name = body.get("name")
        self._check_name(name)
        self._check_labels(body.get("labels"))
        rel = "projects/%s/zones/%s/instances/%s" % (project, zone, name)
        if (project, zone, name) in self._instances:
            raise ApiError(409, "The resource '%s' already exists" % rel, "alreadyExists")
        mtype = self._machine_type(body.get("machineType"), project, zone)
        specs = body.get("disks") or []
        if not specs:
            raise _invalid("resource.disks", "", "At least one disk (the boot disk) must be "
                           "specified.")
        if not any(s.get("boot") for s in specs):
            raise _invalid("resource.disks", "", "Boot disk must be specified.")
        plans, names, sources, new_disks = [], set(), [], set()
        for i, spec in enumerate(specs):
            field = "resource.disks[%d]" % i
            spec = dict(spec)
            if spec.get("boot") and i != 0:
                raise _invalid(field + ".boot", "true", "Boot disk must be the first disk "
                               "attached to the instance.")
            if spec.get("type") not in (None, "PERSISTENT"):
                raise _invalid(field + ".type", spec["type"], "gce_fake only implements "
                               "PERSISTENT disks.")
            init, src = spec.get("initializeParams"), spec.get("source")
            if bool(init) == bool(src):
                raise _invalid(field, "", "Exactly one of source and initializeParams must be "
                               "specified.")
            mode = spec.get("mode") or "READ_WRITE"
            if src:
                disk = self._find_disk(src, project, field + ".source")
                self._check_attach(disk, zone, rel, field + ".source", mode, sources)
                sources.append(_rel(disk))
                plans.append((spec, disk, None))
            else:
                dname = init.get("diskName") or name
                self._check_name(dname, field + ".initializeParams.diskName")
                drel = "projects/%s/zones/%s/disks/%s" % (project, zone, dname)
                if (project, zone, dname) in self._disks or dname in new_disks:
                    raise ApiError(409, "The resource '%s' already exists" % drel,
                                   "alreadyExists")
                new_disks.add(dname)
                ipf = field + ".initializeParams"
                self._check_labels(init.get("labels"), ipf + ".labels")
                image = self._find_image(init["sourceImage"], project, ipf + ".sourceImage") \
                    if init.get("sourceImage") else None
                if spec.get("boot") and image is None:
                    raise _invalid(ipf + ".sourceImage", "", "A boot disk created with "
                                   "initializeParams needs a sourceImage.")
                size = self._check_size(init.get("diskSizeGb"), image, ipf + ".diskSizeGb")
                dtype = self._disk_type(init.get("diskType"), project, zone, ipf + ".diskType")
                plans.append((spec, None, (dname, init, image, size, dtype)))
            if spec.get("deviceName"):
                if spec["deviceName"] in names:
                    raise _invalid(field + ".deviceName", spec["deviceName"], "The device name "
                                   "'%s' is already in use." % spec["deviceName"])
                names.add(spec["deviceName"])
        nics = body.get("networkInterfaces") or []
        if not nics:
            raise _invalid("resource.networkInterfaces", "", "At least one network interface "
                           "is required.")
        nic_out = [self._nic(project, zone, i, n) for i, n in enumerate(nics)]

        def apply():
            inst = self._base("compute#instance", name, rel, body)
            inst_link = inst["selfLink"]
            attached, created = [], []
            for index, (spec, disk, create) in enumerate(plans):
                if create:
                    dname, init, image, size, dtype = create
                    dbody = {"labels": init.get("labels") or {}}
                    if init.get("description"):
                        dbody["description"] = init["description"]
                    disk = self._new_disk(project, zone, dname, dbody, image, size, dtype)
                    created.append(disk)
                    auto = spec.get("autoDelete", True)
                else:
                    auto = bool(spec.get("autoDelete", False))
                if not spec.get("deviceName"):
                    spec["deviceName"] = _free_device(
                        names | {a["deviceName"] for a in attached}, index)
                attached.append(self._attached(disk, spec, index, bool(spec.get("boot")),
                                               bool(auto)))
                disk.setdefault("users", []).append(inst_link)
                disk["lastAttachTimestamp"] = _now()
            tags = dict(body.get("tags") or {})
            tags["fingerprint"] = _fingerprint(tags.get("items") or [])
            metadata = dict(body.get("metadata") or {})
            metadata["kind"] = "compute#metadata"
            metadata["fingerprint"] = _fingerprint(metadata.get("items") or [])
            sched = {"onHostMaintenance": "MIGRATE", "automaticRestart": True,
                     "preemptible": False, "provisioningModel": "STANDARD"}
            sched.update(body.get("scheduling") or {})
            inst.update({"machineType": mtype, "status": "PROVISIONING",
                         "zone": self._link("projects/%s/zones/%s" % (project, zone)),
                         "disks": attached, "networkInterfaces": nic_out, "tags": tags,
                         "metadata": metadata, "scheduling": sched,
                         "canIpForward": bool(body.get("canIpForward", False)),
                         "deletionProtection": bool(body.get("deletionProtection", False)),
                         "cpuPlatform": "Intel Broadwell", "startRestricted": False,
                         "fingerprint": _fingerprint([name, inst["id"]]),
                         "_project": project, "_zone": zone})
            self._instances[(project, zone, name)] = inst

            def finish():
                for d in created:
                    d["status"] = "READY"
                if inst["status"] == "PROVISIONING":
                    inst["status"] = "RUNNING"
                    inst["lastStartTimestamp"] = _now()
            return finish
        return self._mutate(ctx, "insert", rel, apply)

    def _nic(self, project, zone, index, nic):
        out = copy.deepcopy(nic)
        region = zone.rsplit("-", 1)[0]
        net = nic.get("network") or "global/networks/default"
        p, parts = self._ref(net, project, "resource.networkInterfaces[%d].network" % index,
                             [("global", "networks", None)])
        out["network"] = self._link("projects/%s/global/networks/%s" % (p, parts[2]))
        sub = nic.get("subnetwork") or "regions/%s/subnetworks/%s" % (region, parts[2])
        p, sparts = self._ref(sub, project, "resource.networkInterfaces[%d].subnetwork" % index,
                              [("regions", None, "subnetworks", None)])
        out["subnetwork"] = self._link("projects/%s/regions/%s/subnetworks/%s"
                                       % (p, sparts[1], sparts[3]))
        self._counter += 1
        out.update({"kind": "compute#networkInterface", "name": "nic%d" % index,
                    "fingerprint": _fingerprint([index, self._counter]),
                    "stackType": nic.get("stackType") or "IPV4_ONLY"})
        out.setdefault("networkIP", "10.128.%d.%d" % (self._counter // 250 % 250,
                                                      self._counter % 250 + 2))
        acs = []
        for ac in nic.get("accessConfigs") or []:
            ac = dict(ac)
            ac.update({"kind": "compute#accessConfig"})
            ac.setdefault("type", "ONE_TO_ONE_NAT")
            ac.setdefault("name", "External NAT")
            ac.setdefault("networkTier", "PREMIUM")
            ac.setdefault("natIP", "34.%d.%d.%d" % (self._counter // 62500 % 250 + 1,
                                                    self._counter // 250 % 250,
                                                    self._counter % 250 + 1))
            acs.append(ac)
        if acs:
            out["accessConfigs"] = acs
        return out

    def _instance(self, ctx, param="instance"):
        name = ctx.params[param]
        rel = "projects/%s/zones/%s/instances/%s" % (ctx.project, ctx.zone, name)
        return self._get(self._instances, (ctx.project, ctx.zone, name), rel), rel

    def _h_instances_get(self, ctx):
        return self._out(self._instance(ctx)[0])

    def _h_instances_list(self, ctx):
        items = [i for (p, z, _name), i in self._instances.items()
                 if p == ctx.project and z == ctx.zone]
        return self._list(ctx, items, "compute#instanceList",
                          "projects/%s/zones/%s/instances" % (ctx.project, ctx.zone))

    def _h_instances_aggregatedList(self, ctx):
        return self._aggregated(ctx, self._instances, "instances",
                                "compute#instanceAggregatedList")

    def _h_instances_delete(self, ctx):
        inst, rel = self._instance(ctx)
        if inst.get("_deleting"):
            raise ApiError(400, "The resource '%s' is not ready" % rel, "resourceNotReady")
        if inst.get("deletionProtection"):
            raise ApiError(400, "Invalid resource usage: 'Resource cannot be deleted if it's "
                           "protected against deletion.'", "resourceIsProtected")

        def apply():
            inst["_deleting"] = True
            inst["status"] = "STOPPING"

            def finish():
                self._instances.pop((ctx.project, ctx.zone, inst["name"]), None)
                for ad in inst["disks"]:
                    disk = self._disk_by_link(ad["source"])
                    if disk is None:
                        continue
                    if inst["selfLink"] in disk.get("users", []):
                        disk["users"].remove(inst["selfLink"])
                    if not disk.get("users"):
                        disk.pop("users", None)
                    disk["lastDetachTimestamp"] = _now()
                    if ad.get("autoDelete"):
                        self._disks.pop((disk["_project"], disk["_zone"], disk["name"]), None)
            return finish
        return self._mutate(ctx, "delete", rel, apply, inst["id"])

    def _disk_by_link(self, link):
        for d in self._disks.values():
            if d["selfLink"] == link:
                return d
        return None

    def _h_instances_start(self, ctx):
        inst, rel = self._instance(ctx)
        self._not_deleting(inst, rel)

        def apply():
            if inst["status"] in ("TERMINATED", "STOPPED", "STOPPING"):
                inst["status"] = "STAGING"

            def finish():
                if inst["status"] in ("STAGING", "PROVISIONING"):
                    inst["status"] = "RUNNING"
                    inst["lastStartTimestamp"] = _now()
            return finish
        return self._mutate(ctx, "start", rel, apply, inst["id"])

    def _h_instances_stop(self, ctx):
        inst, rel = self._instance(ctx)
        self._not_deleting(inst, rel)

        def apply():
            if inst["status"] != "TERMINATED":
                inst["status"] = "STOPPING"

            def finish():
                if inst["status"] == "STOPPING":
                    inst["status"] = "TERMINATED"
                    inst["lastStopTimestamp"] = _now()
            return finish
        return self._mutate(ctx, "stop", rel, apply, inst["id"])

    def _h_instances_reset(self, ctx):
        inst, rel = self._instance(ctx)
        self._not_deleting(inst, rel)
        if inst["status"] != "RUNNING":
            raise ApiError(400, "The resource '%s' is not ready (instance status %s; only a "
                           "RUNNING instance can be reset)" % (rel, inst["status"]),
                           "resourceNotReady")

        def apply():
            self.resets.append({"project": ctx.project, "zone": ctx.zone,
                                "instance": inst["name"]})
        return self._mutate(ctx, "reset", rel, apply, inst["id"])

    @staticmethod
    def _not_deleting(inst, rel):
        if inst.get("_deleting"):
            raise ApiError(400, "The resource '%s' is not ready" % rel, "resourceNotReady")

    def _h_instances_attachDisk(self, ctx):
        inst, rel = self._instance(ctx)
        self._not_deleting(inst, rel)
        spec = dict(ctx.body)
        if spec.get("initializeParams"):
            raise _invalid("resource.initializeParams", "", "It is not possible to create and "
                           "attach a disk at the same time.")
        if spec.get("boot"):
            raise _invalid("resource.boot", "true", "gce_fake does not attach boot disks.")
        if spec.get("type") not in (None, "PERSISTENT"):
            raise _invalid("resource.type", spec["type"], "gce_fake only implements "
                           "PERSISTENT disks.")
        disk = self._find_disk(spec.get("source"), ctx.project, "resource.source")
        mode = spec.get("mode") or "READ_WRITE"
        used = {d["deviceName"] for d in inst["disks"]}
        if spec.get("deviceName") in used:
            raise _invalid("resource.deviceName", spec["deviceName"], "The device name '%s' is "
                           "already in use." % spec["deviceName"])
        self._check_attach(disk, ctx.zone, rel, "resource.source", mode)

        def apply():
            index = max(d["index"] for d in inst["disks"]) + 1 if inst["disks"] else 0
            if not spec.get("deviceName"):
                spec["deviceName"] = _free_device(used, index)
            inst["disks"].append(self._attached(disk, spec, index, False,
                                                bool(spec.get("autoDelete", False))))
            disk.setdefault("users", []).append(inst["selfLink"])
            disk["lastAttachTimestamp"] = _now()
        return self._mutate(ctx, "attachDisk", rel, apply, inst["id"])

    def _h_instances_detachDisk(self, ctx):
        inst, rel = self._instance(ctx)
        self._not_deleting(inst, rel)
        device = ctx.query["deviceName"]
        found = [d for d in inst["disks"] if d["deviceName"] == device]
        if not found:
            raise _invalid("deviceName", device, "No attached disk found with device name "
                           "'%s'" % device)
        ad = found[0]
        if ad.get("boot") and inst["status"] not in ("TERMINATED", "STOPPED"):
            raise _invalid("deviceName", device, "The boot disk of a running instance cannot "
                           "be detached.")

        def apply():
            inst["disks"].remove(ad)
            disk = self._disk_by_link(ad["source"])
            if disk is not None:
                if inst["selfLink"] in disk.get("users", []):
                    disk["users"].remove(inst["selfLink"])
                if not disk.get("users"):
                    disk.pop("users", None)
                disk["lastDetachTimestamp"] = _now()
        return self._mutate(ctx, "detachDisk", rel, apply, inst["id"])

    def _h_instances_setLabels(self, ctx):
        inst, rel = self._instance(ctx)
        return self._set_labels(ctx, inst, rel)


class _Ctx:
    def __init__(self, mid, project, zone, params, query, body):
        self.mid, self.project, self.zone = mid, project, zone
        self.params, self.query, self.body = params, query, body


def _fingerprint(value):
    if not value:
        return EMPTY_FINGERPRINT
    digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).digest()
    return base64.b64encode(digest[:8]).decode("ascii")


def _free_device(taken, index):
    """GCE's default device name: persistent-disk-N, N the disk's index (or the next free)."""
    n = index
    while "persistent-disk-%d" % n in taken:
        n += 1
    return "persistent-disk-%d" % n


def _rel_url(link):
    return REF_URL.sub("", link)


def _rel(res):
    return _rel_url(res["selfLink"])


# --------------------------------------------------------------------------------------------
# Running it in a process of its own, and gcp-storage-emulator next to it


def serve(state_dir, project="test-project"):
    """The fake in the foreground until SIGTERM or SIGINT; STATE_DIR/gce.json says where."""
    local_fake.serve(state_dir, PROCESS, GceFake, project=project)


def start(state_dir, timeout=60.0):
    """`serve` detached; its gce.json once written."""
    return local_fake.start(__file__, state_dir, PROCESS, (), timeout)


def stop(state_dir):
    return local_fake.stop(state_dir, PROCESS)


# record(STATE_DIR): an empty request log from here on; calls(STATE_DIR): the requests logged
# since, in short; resources(STATE_DIR): what the fake holds
record = functools.partial(local_fake.record, name=PROCESS)
calls = functools.partial(local_fake.calls, name=PROCESS)
resources = functools.partial(local_fake.resources, name=PROCESS)


def start_gcs(state_dir, bucket="staging", timeout=30.0):
    """gcp-storage-emulator on 127.0.0.1, in memory, with the bucket made; its URL."""
    port = local_fake.moto_endpoint.free_port()
    exe = os.path.join(os.path.dirname(sys.executable), "gcp-storage-emulator")
    return local_fake.start_server(
        state_dir, "gcs", [exe, "start", "--host", "127.0.0.1", "--port", str(port),
                           "--in-memory", "--default-bucket", bucket, "-q"],
        port, "/storage/v1/b", timeout)


def stop_gcs(state_dir):
    return local_fake.stop(state_dir, "gcs")


def objects(gcs_url, bucket):
    """The names of the bucket's objects (None when there is no such bucket)."""
    names, token = [], None
    while True:
        url = "%s/storage/v1/b/%s/o" % (gcs_url, bucket)
        if token:
            url += "?pageToken=" + token
        try:
            page = json.loads(local_fake.open_loopback(url))
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise
        names += [o["name"] for o in page.get("items") or []]
        token = page.get("nextPageToken")
        if not token:
            return sorted(names)


def start_all(state_dir, bucket="staging"):
    out = start(state_dir)
    try:
        gcs = start_gcs(state_dir, bucket)
    except BaseException:
        stop(state_dir)
        raise
    out.update(gcs_url=gcs, gcs_pid=local_fake.read_pid(state_dir, "gcs"))
    return out


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    cmd, arg, rest = argv[1], argv[2], argv[3:]
    if cmd == "serve":
        serve(arg)
    elif cmd == "start":
        print(json.dumps(start(arg)))
    elif cmd == "start-gcs":
        url = start_gcs(arg, *rest[:1])
        print(json.dumps({"url": url, "pid": local_fake.read_pid(arg, "gcs")}))
    elif cmd == "stop-gcs":
        print(json.dumps({"stopped": stop_gcs(arg)}))
    elif cmd == "objects" and rest:
        print(json.dumps(objects(arg, rest[0])))
    elif cmd == "start-all":
        print(json.dumps(start_all(arg, *rest[:1])))
    elif cmd == "stop-all":
        print(json.dumps({"stopped": [stop_gcs(arg), stop(arg)]}))
    elif not local_fake.cli_command(cmd, arg, PROCESS):  # stop, record, calls, resources
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
