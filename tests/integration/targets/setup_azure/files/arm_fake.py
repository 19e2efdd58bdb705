# -*- coding: utf-8 -*-
"""An in-memory fake of Azure Resource Manager for Microsoft.Compute, at the HTTP level.

The tests start it on 127.0.0.1 over https (with a CA made by moto_endpoint.make_ca) and drive
it through the real ``azure.mgmt.compute.ComputeManagementClient(credential, subscription_id,
base_url=fake.url)``; managed disks are backed by page blobs on Azurite (the blob service of
npm ``azurite``, started next to it with ``start_azurite``).

Every request is checked the way ARM checks it, against azure-mgmt-compute itself:

* ``Authorization: Bearer <token>`` is required (401 ``AuthenticationFailed`` otherwise; when the
  fake is given a ``token``, it must be that one). Tokens are never logged nor echoed.
* The method and path must be those of a request builder of azure-mgmt-compute
  (``operations/_operations.py``: ``build_<group>_<operation>_request``), and ``api-version``
  the one that builder sends (400 ``InvalidApiVersionParameter``). A known path the fake does
  not implement answers 501 ``NotImplemented``; an unknown one 404 ``InvalidResourceType``.
* An unknown subscription answers 404 ``SubscriptionNotFound``, an unknown resource group 404
  ``ResourceGroupNotFound`` (on GET too), a missing resource 404 ``ResourceNotFound``.
* A JSON body is walked along the rest fields of the SDK's own model for the operation
  (``Disk``, ``DiskUpdate``, ``GrantAccessData``, ``Image``, ``VirtualMachine``, ...,
  resolving their annotations as ``model_base`` does): an unknown field, a wrong JSON type, a
  value outside a closed enum (``Enum``/``Literal``; azure-mgmt-compute 39 declares nearly all
  its enums open, ``Union[str, Enum]``: those take any string, and the handlers refuse the
  values of the fields they use with ``InvalidParameter``, as the Compute RP does) or a
  read-only field (``visibility == ["read"]``, e.g.
  ``provisioningState``: the SDK itself never sends those, it serializes with
  ``exclude_readonly=True``) answers 400 ``InvalidRequestContent`` naming the field.

Then a model of disks, images and virtual machines answers, with ARM's refusals (LUN in use,
disk attached elsewhere, disk in use on delete, size that cannot shrink, upload size not
aligned, property changes not allowed).

Long-running operations, as ARM runs them (so that the SDK's ARMPolling really polls):

* A valid mutating call checks everything at once (errors are synchronous HTTP errors),
  answers 200/201/202 as the SDK expects for that operation (disk PUT/PATCH 202, VM and image
  PUT 201 on create, 200 on update, DELETE and POST actions 202) with the resource in a
  transitional ``provisioningState`` (``Creating``/``Updating``/``Deleting``) where there is a
  body, an ``Azure-AsyncOperation`` header (``<url>/subscriptions/<sub>/providers/
  Microsoft.Compute/locations/<loc>/operations/<id>?api-version=...``), for DELETE and POST a
  ``Location`` header (the same URL with ``monitor=true``), and ``retry-after-ms: 1`` (not
  ``Retry-After: 0``: ARMPolling takes 0 for "none" and waits its polling_interval, 30 s).
* Each GET of either URL is a poll: ``InProgress`` for the first ``polls_to_done - 1`` polls,
  then ``Succeeded`` or ``Failed`` with ``error {code, message}``. Only then does the resource
  reach its final state (disk created / Attached / Unattached, VM running / stopped /
  deallocated, deleted resources gone, SAS granted or revoked). ``polls_to_done = 0`` finishes
  the operation in the call itself. The Location URL answers 202 while the operation runs, then
  200 with the operation's result (``{"accessSAS": ...}`` for ``beginGetAccess``,
  the storage profile for ``attachDetachDataDisks``) or 204.
* While an operation on a resource is pending, another mutating call on it answers 409
  ``OperationNotAllowed`` (as ARM refuses concurrent operations).
* ``fail_operation(operation, code, message)``: the next such call's operation ends Failed and
  changes nothing; ``fail_request(operation, status, code, message)``: the next such request
  answers that HTTP error; ``finish_operations()`` completes every pending operation.

Disks and SAS: creating a disk creates its page blob (of ``uploadSizeBytes``, or diskSizeGB GiB
+ 512) in a container of its own on Azurite (one container per disk: a container holds at most
five stored access policies). ``beginGetAccess`` stores an access policy (``r`` for Read,
``rw`` for Write) on that container and answers ``{"accessSAS": "<azurite>/devstoreaccount1/
<container>/abcd?sv=...&si=<policy>&sr=b&sig=..."}``; ``endGetAccess`` deletes the policy, and
Azurite (3.35) enforces that: a revoked SAS is refused with 403, and a read SAS cannot write.
After write access, ``endGetAccess`` checks that the blob's last 512 bytes are a fixed-VHD
footer for its size (cookie ``conectix``, disk type 2, current size = blob size - 512, the
one's-complement checksum); if not, its operation Fails with ``InvalidVhd`` (access is revoked
all the same and the disk stays ``ReadyToUpload``). ``read_disk`` and ``page_ranges`` read the
blob back from Azurite. An OS disk made from an image has no blob (and cannot be exported).

Network: the fake knows one NIC (``nic0``) and one subnet (``vnet0/default``) in the default
resource group (``nic_id``, ``subnet_id``); a VM names either the NIC in
``networkInterfaces`` or the subnet in ``networkInterfaceConfigurations`` (with
``networkApiVersion``). Sizes: ``VM_SIZES`` (with their data disk limits). One location.

Request log: each request is {operation (e.g. ``Disks_CreateOrUpdate``, ``Disks_GrantAccess``,
``VirtualMachines_Start``, ``Operations_Get`` for polls), mutating, method, path, query,
status, body} (``adminPassword`` and ``customData`` redacted); ``calls(operation)`` and
``mutations()`` read it in-process.

Control endpoints, outside the ARM paths (no authentication, not recorded): ``GET
/__fake/requests``, ``GET /__fake/resources`` (``inventory()``), ``POST /__fake/reset-log``,
``POST /__fake/reset``, ``GET /__fake/disk-blob?resourceGroup=RG&name=NAME`` (where its blob
is on Azurite).

pytest imports it; ansible-test (the target setup_azure) runs it:

    arm_fake.py serve STATE_DIR [AZURITE_URL]
                                   the fake in the foreground; STATE_DIR/arm.json holds
                                   {"url", "ca_file", "pid", "azurite_url", ...} once it listens
    arm_fake.py start STATE_DIR [AZURITE_URL]
                                   serve, detached; print arm.json once it is written
    arm_fake.py stop STATE_DIR     stop it
    arm_fake.py record STATE_DIR   (again) an empty request log
    arm_fake.py calls STATE_DIR    the log since then, as JSON:
                                   [{"operation", "mutating", "method", "path", "status"}]
    arm_fake.py resources STATE_DIR
                                   what the fake holds, as JSON (see inventory())
    arm_fake.py start-azurite STATE_DIR
                                   azurite-blob on loopback, in memory; print {"url", "pid"}
    arm_fake.py stop-azurite STATE_DIR
    arm_fake.py start-all STATE_DIR
                                   Azurite, then the fake told its URL; print {"url",
                                   "ca_file", "pid", "azurite_url", "azurite_pid",
                                   "subscription", "resource_group", "location", "subnet_id",
                                   "nic_id"}; when one cannot start, none is left running
    arm_fake.py stop-all STATE_DIR stop both
    arm_fake.py disk-bytes STATE_DIR NAME OUT_PATH [RESOURCE_GROUP]
                                   the disk's blob, written to OUT_PATH; print {"size"}
    arm_fake.py page-ranges STATE_DIR NAME [RESOURCE_GROUP]
                                   the written [start, end] byte ranges (end inclusive)

azurite-blob is looked for next to sys.executable (npm install -g --prefix .venv), then on
PATH. The HTTPS server, the control endpoints and the process commands are setup_moto's
local_fake.py (shared with the GCE fake); the servers are started with
moto_endpoint.spawn_detached, so that they are nobody's child. Only loopback is ever used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import datetime
import enum
import functools
import hmac
import json
import os
import re
import shutil
import struct
import sys
import threading
import typing
import uuid
from urllib.parse import parse_qs, quote, unquote

if __package__:  # imported with the collection (pytest)
    from ansible_collections.unikernel.ops.tests.integration.targets.setup_moto.files import (
        local_fake,
    )
else:  # run as a script: ansible-test copies setup_moto's files/ next to this target's
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir,
                                    os.pardir, "setup_moto", "files"))
    import local_fake

KIB, MIB, GIB, TIB = 1024, 1024 ** 2, 1024 ** 3, 1024 ** 4
PROCESS = "arm"  # its files in STATE_DIR: arm.json (where it listens), arm.pid, arm.log
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
DEFAULT_RESOURCE_GROUPS = ("unikernel-ops-test",)
DEFAULT_LOCATION = "eastus"
DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
           "K1SZFPTOtr/KBHBeksoGMGw==")
BLOB_NAME = "abcd"
DISK_SKUS = ("Standard_LRS", "Premium_LRS", "StandardSSD_LRS")
# size -> maximum number of data disks (as Azure lists them)
VM_SIZES = {"Standard_B1s": 2, "Standard_B1ms": 2, "Standard_B2s": 4, "Standard_B2ms": 4,
            "Standard_D2s_v3": 4, "Standard_D4s_v3": 8, "Standard_D2s_v5": 4,
            "Standard_A1_v2": 2, "Standard_A2_v2": 4, "Standard_DS1_v2": 4}
UPLOAD_MIN = 20 * MIB + 512
UPLOAD_MAX = 32 * TIB + 512
MAX_LUN = 63
CACHING = ("None", "ReadOnly", "ReadWrite")
DELETE_OPTIONS = ("Delete", "Detach")
BUSY_DISK_STATES = ("ReadyToUpload", "ActiveUpload", "ActiveSAS", "ActiveSASFrozen")

# operation id -> SDK request builder (build_<builder>_request), and the SDK model of its body
OPERATIONS = {
    "Disks_Get": ("disks_get", None),
    "Disks_CreateOrUpdate": ("disks_create_or_update", "Disk"),
    "Disks_Update": ("disks_update", "DiskUpdate"),
    "Disks_Delete": ("disks_delete", None),
    "Disks_ListByResourceGroup": ("disks_list_by_resource_group", None),
    "Disks_List": ("disks_list", None),
    "Disks_GrantAccess": ("disks_grant_access", "GrantAccessData"),
    "Disks_RevokeAccess": ("disks_revoke_access", None),
    "Images_Get": ("images_get", None),
    "Images_CreateOrUpdate": ("images_create_or_update", "Image"),
    "Images_Delete": ("images_delete", None),
    "Images_ListByResourceGroup": ("images_list_by_resource_group", None),
    "Images_List": ("images_list", None),
    "VirtualMachines_Get": ("virtual_machines_get", None),
    "VirtualMachines_CreateOrUpdate": ("virtual_machines_create_or_update", "VirtualMachine"),
    "VirtualMachines_Delete": ("virtual_machines_delete", None),
    "VirtualMachines_List": ("virtual_machines_list", None),
    "VirtualMachines_ListAll": ("virtual_machines_list_all", None),
    "VirtualMachines_InstanceView": ("virtual_machines_instance_view", None),
    "VirtualMachines_Start": ("virtual_machines_start", None),
    "VirtualMachines_PowerOff": ("virtual_machines_power_off", None),
    "VirtualMachines_Deallocate": ("virtual_machines_deallocate", None),
    "VirtualMachines_Restart": ("virtual_machines_restart", None),
    "VirtualMachines_AttachDetachDataDisks": ("virtual_machines_attach_detach_data_disks",
                                              "AttachDetachDataDisksRequest"),
}
READ_ONLY_OPS = ("_Get", "_List", "_ListByResourceGroup", "_ListAll", "_InstanceView")
REDACT = ("adminPassword", "customData")


class ArmError(Exception):
    """An HTTP error in ARM's shape {"error": {"code", "message"}}."""

    def __init__(self, status, code, message, target=None):
        Exception.__init__(self, message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target

    def payload(self):
        err = {"code": self.code, "message": self.message}
        if self.target:
            err["target"] = self.target
        return {"error": err}


def _bad(message, target=None):
    return ArmError(400, "InvalidParameter", message, target)


def _content(message, target=None):
    return ArmError(400, "InvalidRequestContent", message, target)


def _choice(value, allowed, where, default=None):
    """The canonical spelling of value among allowed (case-insensitive), else InvalidParameter."""
    if value is None:
        return default
    for a in allowed:
        if a.lower() == str(value).lower():
            return a
    raise _bad("The value '%s' of '%s' is not valid; allowed: %s."
               % (value, where, ", ".join(allowed)), where)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")


def _redacted(value):
    if isinstance(value, dict):
        return {k: ("<redacted>" if k in REDACT else _redacted(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


# --------------------------------------------------------------------------------------------
# What azure-mgmt-compute sends: its request builders (routes, api-versions) and its models

_SDK = None
_SDK_LOCK = threading.Lock()
_BUILDER_RE = re.compile(
    r'^def build_(\w+?)_request\(.*?'
    r'_params\.pop\("api-version", "([^"]+)"\).*?'
    r'_url = \(?\s*"([^"]+)".*?'
    r'HttpRequest\(method="([A-Z]+)"', re.S | re.M)


class Sdk:
    """The routes of azure-mgmt-compute's request builders and a checker of bodies against its
    models."""

    def __init__(self):
        from azure.mgmt.compute import models
        from azure.mgmt.compute._utils import model_base
        from azure.mgmt.compute.models import _models as models_module
        from azure.mgmt.compute.operations import _operations
        with open(_operations.__file__, encoding="utf-8") as f:
            text = f.read()
        self.models = models
        self.model_base = model_base
        self.namespace = dict(vars(models_module))
        self.namespace["_models"] = models
        self.builders = {}
        self.routes = []
        # one builder at a time: cut the source at each "def build_"
        starts = [m.start() for m in re.finditer(r"^def build_", text, re.M)] + [len(text)]
        for a, b in zip(starts, starts[1:]):
            m = _BUILDER_RE.match(text, a, b)
            if not m:
                continue
            name, api_version, template, method = m.groups()
            regex, names = self._compile(template)
            self.builders[name] = {"api_version": api_version, "template": template,
                                   "method": method}
            self.routes.append((name, method, regex, names, template.count("{")))
        # the most literal template first
        self.routes.sort(key=lambda r: r[4])
        self.by_builder = {b: op for op, (b, _m) in OPERATIONS.items()}
        self._fields = {}

    @staticmethod
    def _compile(template):
        names, out = [], []
        for seg in template.split("/"):
            m = re.fullmatch(r"\{(\w+)\}", seg)
            if m:
                names.append(m.group(1))
                out.append("([^/]+)")
            else:
                out.append(re.escape(seg))
        return re.compile("/".join(out), re.I), names

    def api_version(self, operation):
        return self.builders[OPERATIONS[operation][0]]["api_version"]

    def match(self, method, path):
        """(operation id or builder name, path parameters, implemented) of the request."""
        verbs = False
        for name, m, regex, names, _n in self.routes:
            mt = regex.fullmatch(path)
            if not mt:
                continue
            verbs = True
            if m != method:
                continue
            params = {k: unquote(v) for k, v in zip(names, mt.groups())}
            op = self.by_builder.get(name)
            return (op or name), params, op is not None
        if verbs:
            raise ArmError(405, "MethodNotAllowed", "The requested resource does not support "
                           "http method '%s'." % method)
        return None

    # ---- bodies

    def model(self, name):
        return getattr(self.models, name)

    def fields(self, cls):
        """rest name -> (attribute, rest field, annotation) of a model class."""
        if cls not in self._fields:
            hints = typing.get_type_hints(cls, globalns=self.namespace)
            out = {}
            for klass in reversed(cls.__mro__):
                for attr, rf in vars(klass).items():
                    if attr[0] != "_" and isinstance(rf, self.model_base._RestField):
                        out[rf._rest_name_input or attr] = (attr, rf, hints.get(attr))
            self._fields[cls] = out
        return self._fields[cls]

    def check(self, value, annotation, where):
        """Raise InvalidRequestContent when value does not fit the annotation."""
        if value is None:
            return
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if annotation is typing.Any or annotation is None:
            return
        if origin is typing.Union:
            args = [a for a in args if a is not type(None)]
            enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
            if enums:
                # Union[str, Enum]: an open ("extensible") enum, any string goes through the
                # model; the handlers refuse the values the service refuses (InvalidParameter)
                if not isinstance(value, str):
                    raise _content("Invalid value for '%s': expected a string, got %s"
                                   % (where, json.dumps(value)), where)
                return
            if len(args) == 1:
                return self.check(value, args[0], where)
            for a in args:
                try:
                    self.check(value, a, where)
                    return
                except ArmError:
                    pass
            raise _content("Invalid value for '%s': %s" % (where, json.dumps(value)), where)
        if origin is typing.Literal:
            if value not in args:
                raise _content("The value %s of '%s' is not valid; allowed: %s"
                               % (json.dumps(value), where, ", ".join(map(str, args))), where)
            return
        if origin in (list, typing.List):
            if not isinstance(value, list):
                raise self._type(where, "an array", value)
            for i, item in enumerate(value):
                self.check(item, args[0] if args else None, "%s[%d]" % (where, i))
            return
        if origin in (dict, typing.Dict):
            if not isinstance(value, dict):
                raise self._type(where, "an object", value)
            for k, item in value.items():
                self.check(item, args[1] if len(args) > 1 else None, "%s.%s" % (where, k))
            return
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            allowed = [e.value for e in annotation]
            if value not in allowed:
                raise _content("The value %s of '%s' is not valid; allowed: %s"
                               % (json.dumps(value), where, ", ".join(map(str, allowed))), where)
            return
        if isinstance(annotation, type) and issubclass(annotation, self.model_base.Model):
            return self.check_model(value, annotation, where)
        if annotation is bool:
            if not isinstance(value, bool):
                raise self._type(where, "a boolean", value)
        elif annotation is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self._type(where, "an integer", value)
        elif annotation is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self._type(where, "a number", value)
        elif annotation is str:
            if not isinstance(value, str):
                raise self._type(where, "a string", value)
        elif annotation in (datetime.datetime, datetime.date):
            try:
                datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            except ValueError:
                raise self._type(where, "a date-time", value)
        elif annotation is bytes:
            if not isinstance(value, str):
                raise self._type(where, "a base64 string", value)

    def check_model(self, value, cls, where):
        if not isinstance(value, dict):
            raise self._type(where, "an object (%s)" % cls.__name__, value)
        mapping = getattr(cls, "__mapping__", None)
        if mapping:
            for _attr, rf, _ann in self.fields(cls).values():
                if rf._is_discriminator and value.get(rf._rest_name_input) in mapping:
                    cls = mapping[value[rf._rest_name_input]]
                    break
        fields = self.fields(cls)
        for k, v in value.items():
            sub = "%s.%s" % (where, k) if where else k
            if k not in fields:
                raise _content("Could not find member '%s' on object of type '%s' (at '%s')."
                               % (k, cls.__name__, sub), sub)
            _attr, rf, ann = fields[k]
            if rf._visibility == ["read"]:
                raise _content("The property '%s' is read-only and cannot be set (at '%s')."
                               % (k, sub), sub)
            self.check(v, ann, sub)

    @staticmethod
    def _type(where, expected, value):
        return _content("Invalid value for '%s': expected %s, got %s"
                        % (where, expected, json.dumps(value)), where)


def sdk():
    """The SDK's routes and models, loaded once per process."""
    global _SDK
    with _SDK_LOCK:
        if _SDK is None:
            _SDK = Sdk()
        return _SDK


# --------------------------------------------------------------------------------------------
# VHD footers


def vhd_footer(size, uid=None, timestamp=0):
    """A fixed-VHD footer (512 bytes) for a disk of `size` data bytes: what a client appends."""
    geometry = _chs(size // 512)
    raw = bytearray(struct.pack(
        ">8sIIQI4sIIQQIII16sB427s", b"conectix", 2, 0x00010000, 0xFFFFFFFFFFFFFFFF,
        timestamp, b"uops", 0x00010000, 0x5769326B, size, size, geometry, 2, 0,
        (uid or uuid.uuid4()).bytes, 0, b"\0" * 427))
    struct.pack_into(">I", raw, 64, (~sum(raw)) & 0xFFFFFFFF)
    return bytes(raw)


def _chs(sectors):
    sectors = min(sectors, 65535 * 16 * 255)
    if sectors >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = sectors // spt
    else:
        spt = 17
        cth = sectors // spt
        heads = max((cth + 1023) // 1024, 4)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = sectors // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = sectors // spt
    return ((cth // heads) << 16) | (heads << 8) | spt


def check_vhd_footer(footer, blob_size):
    """None when footer is a valid fixed-VHD footer for a blob of blob_size bytes, else why."""
    if len(footer) != 512:
        return "the blob is shorter than a VHD footer"
    if footer[:8] != b"conectix":
        return "the last 512 bytes are not a VHD footer (no 'conectix' cookie)"
    disk_type = struct.unpack_from(">I", footer, 60)[0]
    if disk_type != 2:
        return "the VHD is not a fixed VHD (disk type %d, want 2)" % disk_type
    current = struct.unpack_from(">Q", footer, 48)[0]
    if current != blob_size - 512:
        return ("the VHD's current size %d does not match the blob (%d bytes of data)"
                % (current, blob_size - 512))
    want = struct.unpack_from(">I", footer, 64)[0]
    raw = bytearray(footer)
    raw[64:68] = b"\0\0\0\0"
    if (~sum(raw)) & 0xFFFFFFFF != want:
        return "the VHD footer's checksum is wrong"
    return None


# --------------------------------------------------------------------------------------------
# Azurite


def _blob_service(azurite_url):
    from azure.storage.blob import BlobServiceClient
    return BlobServiceClient(azurite_url.rstrip("/") + "/" + DEV_ACCOUNT,
                             credential={"account_name": DEV_ACCOUNT, "account_key": DEV_KEY},
                             retry_total=2)


def _azurite_exe():
    here = os.path.join(os.path.dirname(sys.executable), "azurite-blob")
    if os.path.exists(here):
        return here
    found = shutil.which("azurite-blob")
    if not found:
        raise RuntimeError("azurite-blob is not installed (npm install -g --prefix .venv "
                           "azurite@3.35.0)")
    return found


# --------------------------------------------------------------------------------------------
# The fake (its HTTPS server: local_fake.HttpsFake)


class _Handler(local_fake.Handler):
    server_version = "arm-fake"
    do_HEAD = local_fake.Handler._any


class _Ctx:
    def __init__(self, op, method, params, query, body, api_version):
        self.op, self.method, self.params, self.query = op, method, params, query
        self.body, self.api_version = body, api_version
        self.rg = params.get("resourceGroupName")


class ArmFake(local_fake.HttpsFake):
    """The fake. ``start()`` it, point ComputeManagementClient at ``url`` (``base_url``) with
    ``REQUESTS_CA_BUNDLE`` set to ``ca_file``, read ``requests`` back, ``reset()`` between tests,
    ``stop()`` at the end."""

    label = "arm_fake"
    handler_class = _Handler
    api_error = ArmError

    def __init__(self, subscription=DEFAULT_SUBSCRIPTION, resource_groups=DEFAULT_RESOURCE_GROUPS,
                 location=DEFAULT_LOCATION, cert_dir=None, azurite_url=None, polls_to_done=2,
                 token=None):
        local_fake.HttpsFake.__init__(self, cert_dir)
        self.subscription = subscription
        self.resource_groups = list(resource_groups)
        self.location = location
        self.azurite_url = azurite_url
        self.polls_to_done = polls_to_done
        self.page_size = 100
        self.retry_after = None
        self.retry_after_ms = 1
        self._token = token
        self.vm_sizes = dict(VM_SIZES)
        self.sdk = sdk()
        self.reset()

    @property
    def resource_group(self):
        return self.resource_groups[0]

    def rg_id(self, rg=None):
        return "/subscriptions/%s/resourceGroups/%s" % (self.subscription,
                                                        rg or self.resource_group)

    @property
    def subnet_id(self):
        return (self.rg_id() + "/providers/Microsoft.Network/virtualNetworks/vnet0/subnets/"
                "default")

    @property
    def nic_id(self):
        return self.rg_id() + "/providers/Microsoft.Network/networkInterfaces/nic0"

    def disk_id(self, name, rg=None):
        return self.rg_id(rg) + "/providers/Microsoft.Compute/disks/" + name

    def image_id(self, name, rg=None):
        return self.rg_id(rg) + "/providers/Microsoft.Compute/images/" + name

    def vm_id(self, name, rg=None):
        return self.rg_id(rg) + "/providers/Microsoft.Compute/virtualMachines/" + name

    def reset(self):
        """Forget every resource, operation, recorded request and injected failure, and delete
        the disks' containers on Azurite (the settings stay)."""
        with self._lock:
            for disk in list(getattr(self, "_disks", {}).values()):
                self._drop_blob(disk)
            self.requests = []
            self._disks = {}    # (rg, name) lowercased -> disk
            self._images = {}
            self._vms = {}
            self._ops = {}
            self._fail_requests = []
            self._fail_ops = []
            self._nics = {self.nic_id.lower(): None}    # NIC id -> VM id using it
            self._subnets = {self.subnet_id.lower()}

    # ---- hooks for the tests (and mutations())

    def calls(self, operation=None):
        """The recorded requests of one operation id (e.g. 'Disks_GrantAccess'), or all."""
        return [r for r in self.requests if operation is None or r["operation"] == operation]

    def fail_request(self, operation, status=503, code="ServiceUnavailable",
                     message="The service is temporarily unavailable.", times=1):
        """The next `times` valid requests of the operation answer this HTTP error."""
        with self._lock:
            self._fail_requests.append([operation, times, ArmError(status, code, message)])

    def fail_operation(self, operation, code="InternalExecutionError",
                       message="An internal execution error occurred.", times=1):
        """The next `times` valid calls of the mutating operation start an operation that ends
        Failed with this error and changes nothing."""
        with self._lock:
            self._fail_ops.append([operation, times, (code, message)])

    def finish_operations(self):
        """Complete every pending operation."""
        with self._lock:
            for op_id in list(self._ops):
                self._complete(op_id)

    def inventory(self):
        """What the fake holds: {"disks": {"rg/name": diskState}, "images": [...],
        "virtual_machines": {"rg/name": power state}, "pending_operations": [...]}."""
        with self._lock:
            return {
                "disks": {"%s/%s" % (d["_rg"], d["name"]): d["properties"].get(
                    "diskState", d["properties"]["provisioningState"])
                    for d in sorted(self._disks.values(), key=lambda d: d["id"].lower())},
                "images": sorted("%s/%s" % (i["_rg"], i["name"]) for i in self._images.values()),
                "virtual_machines": {"%s/%s" % (v["_rg"], v["name"]): v["_power"]
                                     for v in sorted(self._vms.values(),
                                                     key=lambda v: v["id"].lower())},
                "pending_operations": sorted(k for k, o in self._ops.items()
                                             if o["status"] == "InProgress")}

    def resource(self, kind, name, rg=None):
        """A stored 'disk', 'image' or 'vm' as GET shows it, or None."""
        store = {"disk": self._disks, "image": self._images, "vm": self._vms}[kind]
        with self._lock:
            res = store.get(((rg or self.resource_group).lower(), name.lower()))
            return self._out(res) if res else None

    def disk_blob(self, name, rg=None):
        """(container, blob, size) of a disk's page blob on Azurite."""
        with self._lock:
            disk = self._disks.get(((rg or self.resource_group).lower(), name.lower()))
            if disk is None or not disk.get("_container"):
                raise KeyError("no disk %s with a blob" % name)
            return disk["_container"], BLOB_NAME, disk["_blob_size"]

    def _blob_client(self, name, rg=None):
        container, blob, _size = self.disk_blob(name, rg)
        return _blob_service(self.azurite_url).get_blob_client(container, blob)

    def read_disk(self, name, rg=None, path=None):
        """The bytes of the disk's blob (written to path instead when given: its size)."""
        return read_blob(self._blob_client(name, rg), path)

    def page_ranges(self, name, rg=None):
        """The (start, end) byte ranges of the blob that were written (end inclusive)."""
        return blob_page_ranges(self._blob_client(name, rg))

    # ---- HTTP (the rest: local_fake.HttpsFake)

    @staticmethod
    def _error_answer(error):
        return error.status, error.payload()

    @staticmethod
    def _fake_error(status, message):
        return ArmError(status, "NotFound" if status == 404 else "InternalServerError", message)

    def _response_headers(self, headers):
        return [("x-ms-request-id", str(uuid.uuid4()))] + list(headers.items())

    def _control(self, method, what, query):
        try:
            if method == "GET" and what == "disk-blob":
                rg = (query.get("resourceGroup") or [None])[0]
                container, blob, size = self.disk_blob(query["name"][0], rg)
                return 200, {"azurite_url": self.azurite_url, "account": DEV_ACCOUNT,
                             "container": container, "blob": blob, "size": size}
            return local_fake.HttpsFake._control(self, method, what, query)
        except (KeyError, ValueError) as e:  # no such disk (or no name)
            return 404, ArmError(404, "NotFound", str(e)).payload()

    def _served_state(self):
        return {"azurite_url": self.azurite_url, "subscription": self.subscription,
                "resource_group": self.resource_group, "location": self.location,
                "subnet_id": self.subnet_id, "nic_id": self.nic_id}

    def _authorized(self, h):
        auth = h.headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return False
        if self._token is not None:
            return hmac.compare_digest(auth[7:].strip().encode(), self._token.encode())
        return True

    _OP_RE = re.compile(r"/subscriptions/([^/]+)/providers/Microsoft\.Compute/locations/"
                        r"([^/]+)/operations/([^/]+)", re.I)

    def _dispatch(self, h, split, raw, entry):
        path = split.path.rstrip("/") if split.path != "/" else split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        entry["query"] = dict(query)
        body = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError as e:
                entry["body"] = "<not JSON>"
                raise ArmError(400, "InvalidRequestContent", "The request content was invalid "
                               "and could not be deserialized: %s" % e)
            entry["body"] = _redacted(body)
        if not self._authorized(h):
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The "
                           "'Authorization' header is missing or not a valid bearer token.")
        mt = self._OP_RE.fullmatch(path)
        if mt:
            entry["operation"] = "Operations_Get"
            if h.command != "GET":
                raise ArmError(405, "MethodNotAllowed", "The requested resource does not "
                               "support http method '%s'." % h.command)
            return self._poll(mt.group(1), mt.group(3), query)
        hit = self.sdk.match(h.command, path)
        if hit is None:
            raise ArmError(404, "InvalidResourceType", "The resource type could not be found "
                           "for path '%s' in the namespace 'Microsoft.Compute'." % path)
        op, params, implemented = hit
        entry["operation"] = op
        entry["mutating"] = h.command != "GET" and not op.endswith(READ_ONLY_OPS)
        builder = OPERATIONS[op][0] if implemented else op
        want = self.sdk.builders[builder]["api_version"]
        got = query.get("api-version")
        if got is None:
            raise ArmError(400, "MissingApiVersionParameter", "The api-version query parameter "
                           "(?api-version=) is required for all requests.")
        if got != want:
            raise ArmError(400, "InvalidApiVersionParameter", "The api-version '%s' is invalid. "
                           "The supported versions are '%s'." % (got, want))
        if params.get("subscriptionId", "").lower() != self.subscription.lower():
            raise ArmError(404, "SubscriptionNotFound", "The subscription '%s' could not be "
                           "found." % params.get("subscriptionId"))
        rg = params.get("resourceGroupName")
        if rg is not None and rg.lower() not in [r.lower() for r in self.resource_groups]:
            raise ArmError(404, "ResourceGroupNotFound", "Resource group '%s' could not be "
                           "found." % rg)
        if not implemented:
            raise ArmError(501, "NotImplemented", "arm_fake does not implement %s" % op)
        model = OPERATIONS[op][1]
        if model:
            if body is None:
                raise ArmError(400, "InvalidRequestContent", "The request content was "
                               "invalid: a body is required.")
            self.sdk.check_model(body, self.sdk.model(model), "")
        elif body not in (None, {}):
            raise ArmError(400, "InvalidRequestContent", "%s takes no request body." % op)
        failure = local_fake.take_failure(self._fail_requests, op)
        if failure is not None:
            raise failure
        ctx = _Ctx(op, h.command, params, query, body or {}, want)
        handler = getattr(self, "_h_" + op)
        return handler(ctx)

    # ---- shared helpers (and _out)

    @staticmethod
    def _not_found(kind, name, rg):
        return ArmError(404, "ResourceNotFound", "The Resource 'Microsoft.Compute/%s/%s' under "
                        "resource group '%s' was not found. For more details please go to "
                        "https://aka.ms/ARMResourceNotFoundFix" % (kind, name, rg))

    def _get(self, store, kind, ctx, param):
        res = store.get((ctx.rg.lower(), ctx.params[param].lower()))
        if res is None:
            raise self._not_found(kind, ctx.params[param], ctx.rg)
        return res

    def _list(self, ctx, items):
        items = sorted(items, key=lambda r: r["id"].lower())
        skip = ctx.query.get("$skiptoken") or "0"
        if not skip.isdigit():
            raise _bad("Invalid $skiptoken '%s'." % skip)
        start = int(skip)
        page = items[start:start + max(1, self.page_size)]
        out = {"value": [self._out(r) for r in page]}
        if start + len(page) < len(items):
            out["nextLink"] = "%s%s?api-version=%s&$skiptoken=%d" % (
                self.url, self._list_path(ctx), ctx.api_version, start + len(page))
        return 200, out, {}

    def _list_path(self, ctx):
        builder = OPERATIONS[ctx.op][0]
        template = self.sdk.builders[builder]["template"]
        return template.format(**{k: quote(v, safe="") for k, v in ctx.params.items()})

    def _ref(self, value, kind, where):
        """(rg, name) of a Microsoft.Compute resource id of this subscription."""
        mt = re.fullmatch(r"/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/"
                          r"Microsoft\.Compute/%s/([^/]+)" % kind, value or "", re.I)
        if not mt:
            raise _bad("The value '%s' of '%s' is not a valid %s resource id." % (
                value, where, kind), where)
        if mt.group(1).lower() != self.subscription.lower():
            raise ArmError(404, "NotFound", "Resource '%s' referenced in '%s' was not found "
                           "(subscription '%s')." % (value, where, mt.group(1)), where)
        return mt.group(2), mt.group(3)

    def _find(self, store, kind, value, where):
        rg, name = self._ref(value, kind, where)
        res = store.get((rg.lower(), name.lower()))
        if res is None:
            raise ArmError(404, "NotFound", "Resource '%s' referenced in '%s' was not found."
                           % (value, where), where)
        return res

    def _check_location(self, body):
        loc = (body.get("location") or "").replace(" ", "").lower()
        if not loc:
            raise _bad("Required parameter 'location' is missing (null).", "location")
        if loc != self.location.lower():
            raise ArmError(400, "LocationNotAvailableForResourceType", "The provided location "
                           "'%s' is not available for resource type 'Microsoft.Compute'. "
                           "List of available regions for the resource type is '%s'."
                           % (body.get("location"), self.location))

    def _busy(self, res, what):
        if res.get("_op"):
            raise ArmError(409, "OperationNotAllowed", "Operation '%s' is not allowed on %s "
                           "'%s' since another operation is in progress on it."
                           % (what, res["type"].split("/")[-1][:-1], res["name"]))

    # ---- operations

    def _failure_for(self, op):
        return local_fake.take_failure(self._fail_ops, op)

    def _lro(self, ctx, status, payload, resource, finish, location=False):
        """Start an operation for the call; `finish` (run when it succeeds) may return
        (code, message) to fail it, and sets entry["result"] for the Location GET."""
        op_id = str(uuid.uuid4())
        failure = self._failure_for(ctx.op)
        entry = {"name": op_id, "status": "InProgress", "startTime": _now(), "polls": 0,
                 "finish": None if failure else finish, "error": failure, "result": None,
                 "resource": resource, "api_version": ctx.api_version, "operation": ctx.op}
        self._ops[op_id] = entry
        if resource is not None:
            resource["_op"] = op_id
        url = "%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s" \
            "?api-version=%s" % (self.url, self.subscription, self.location, op_id,
                                 ctx.api_version)
        headers = dict(self._retry_headers(), **{"Azure-AsyncOperation": url})
        if location:
            headers["Location"] = url + "&monitor=true"
        if self.polls_to_done <= 0:
            self._complete(op_id)
        return status, payload, headers

    def _retry_headers(self):
        """How long the client waits before its next poll. ARMPolling treats "Retry-After: 0"
        as absent (and then waits its polling_interval, 30 s by default), so the fake says
        "retry-after-ms" (1 ms by default) unless retry_after (seconds) is set."""
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return {"retry-after-ms": str(self.retry_after_ms)}

    def _complete(self, op_id):
        entry = self._ops[op_id]
        if entry["status"] != "InProgress":
            return
        res = entry["resource"]
        if res is not None and res.get("_op") == op_id:
            res.pop("_op")
        if entry["finish"] is not None:
            err = entry["finish"](entry)
            entry["finish"] = None
            if err:
                entry["error"] = err
        entry["status"] = "Failed" if entry["error"] else "Succeeded"
        entry["endTime"] = _now()

    def _poll(self, sub, op_id, query):
        entry = self._ops.get(op_id)
        if sub.lower() != self.subscription.lower():
            raise ArmError(404, "SubscriptionNotFound", "The subscription '%s' could not be "
                           "found." % sub)
        if entry is None:
            raise ArmError(404, "NotFound", "The operation '%s' was not found." % op_id)
        if query.get("api-version") != entry["api_version"]:
            raise ArmError(400, "InvalidApiVersionParameter", "The api-version '%s' is "
                           "invalid. The supported versions are '%s'."
                           % (query.get("api-version"), entry["api_version"]))
        entry["polls"] += 1
        if entry["polls"] >= self.polls_to_done:
            self._complete(op_id)
        headers = self._retry_headers()
        if query.get("monitor") == "true":
            if entry["status"] == "InProgress":
                headers["Location"] = "%s/subscriptions/%s/providers/Microsoft.Compute/" \
                    "locations/%s/operations/%s?api-version=%s&monitor=true" % (
                        self.url, self.subscription, self.location, op_id,
                        entry["api_version"])
                return 202, None, headers
            if entry["status"] == "Failed":
                code, message = entry["error"]
                return 400, {"error": {"code": code, "message": message}}, headers
            if entry["result"] is None:
                return 204, None, headers
            return 200, copy.deepcopy(entry["result"]), headers
        out = {"name": op_id, "status": entry["status"], "startTime": entry["startTime"]}
        if entry["status"] != "InProgress":
            out["endTime"] = entry["endTime"]
        if entry["status"] == "Failed":
            code, message = entry["error"]
            out["error"] = {"code": code, "message": message}
        return 200, out, headers

    # ---- disks

    def _drop_blob(self, disk):
        if disk.get("_container") and self.azurite_url:
            try:
                _blob_service(self.azurite_url).delete_container(disk["_container"])
            except Exception:  # pylint: disable=broad-except
                pass

    def _h_Disks_Get(self, ctx):
        return 200, self._out(self._get(self._disks, "disks", ctx, "diskName")), {}

    def _h_Disks_ListByResourceGroup(self, ctx):
        return self._list(ctx, [d for d in self._disks.values()
                                if d["_rg"].lower() == ctx.rg.lower()])

    def _h_Disks_List(self, ctx):
        return self._list(ctx, self._disks.values())

    def _sku(self, body, where="sku.name", default="Standard_LRS"):
        name = (body.get("sku") or {}).get("name") or default
        for s in DISK_SKUS:
            if s.lower() == name.lower():
                return s
        raise _bad("The value '%s' of '%s' is not supported by arm_fake (%s)."
                   % (name, where, ", ".join(DISK_SKUS)), where)

    @staticmethod
    def _tags(body):
        tags = body.get("tags") or {}
        if len(tags) > 50:
            raise _bad("At most 50 tags are allowed.", "tags")
        for k in tags:
            if len(k) > 512 or re.search(r"[<>%&\\?/]", k):
                raise ArmError(400, "InvalidTagNameCharacters", "The tag names '%s' have "
                               "reserved characters '<,>,%%,&,\\,?,/' or control characters."
                               % k)
        return dict(tags)

    def _h_Disks_CreateOrUpdate(self, ctx):
        name = ctx.params["diskName"]
        key = (ctx.rg.lower(), name.lower())
        body = ctx.body
        props = body.get("properties") or {}
        self._check_location(body)
        tags = self._tags(body)
        disk = self._disks.get(key)
        if disk is not None:
            return self._disk_update(ctx, disk, props, tags, body, put=True)
        if not re.fullmatch(r"[A-Za-z0-9_][-.A-Za-z0-9_]{0,78}[A-Za-z0-9_]|[A-Za-z0-9_]", name):
            raise ArmError(400, "InvalidResourceName", "The resource name '%s' is invalid."
                           % name)
        sku = self._sku(body)
        creation = props.get("creationData") or {}
        option = (creation.get("createOption") or "").lower()
        size_gb = props.get("diskSizeGB")
        if option == "upload":
            upload = creation.get("uploadSizeBytes")
            where = "properties.creationData.uploadSizeBytes"
            if upload is None:
                raise _bad("Required parameter 'uploadSizeBytes' is missing (null).", where)
            if (upload % 512 or (upload - 512) % MIB or upload < UPLOAD_MIN
                    or upload > UPLOAD_MAX):
                raise _bad("The value %d of '%s' is invalid: it must be the size of a fixed "
                           "VHD, a multiple of 1 MiB plus 512 bytes (the footer), between %d "
                           "and %d bytes." % (upload, where, UPLOAD_MIN, UPLOAD_MAX), where)
            if size_gb is not None:
                raise _bad("Parameter 'diskSizeGB' is not allowed with createOption Upload; "
                           "use 'uploadSizeBytes'.", "properties.diskSizeGB")
            size_bytes = upload - 512
            size_gb = -(-size_bytes // GIB)
            blob_size = upload
            final_state = "ReadyToUpload"
        elif option == "empty":
            if size_gb is None:
                raise _bad("Required parameter 'diskSizeGB' is missing (null).",
                           "properties.diskSizeGB")
            if not 1 <= size_gb <= 32767:
                raise _bad("The value %d of 'diskSizeGB' is out of range [1, 32767]."
                           % size_gb, "properties.diskSizeGB")
            size_bytes = size_gb * GIB
            blob_size = size_bytes + 512
            final_state = "Unattached"
        else:
            raise _bad("arm_fake implements createOption Upload and Empty, not '%s'."
                       % creation.get("createOption"), "properties.creationData.createOption")
        uid = str(uuid.uuid4())
        disk = {"id": self.disk_id(name, ctx.rg), "name": name,
                "type": "Microsoft.Compute/disks", "location": self.location, "tags": tags,
                "sku": {"name": sku, "tier": "Premium" if sku.startswith("Premium")
                        else "Standard"},
                "properties": {"creationData": dict(creation), "diskSizeGB": size_gb,
                               "diskSizeBytes": size_bytes, "uniqueId": uid,
                               "timeCreated": _now(), "provisioningState": "Creating",
                               "encryption": {"type": "EncryptionAtRestWithPlatformKey"},
                               "networkAccessPolicy": "AllowAll",
                               "publicNetworkAccess": "Enabled"},
                "_rg": ctx.rg, "_blob_size": blob_size, "_container": None}
        if option == "empty":
            disk["properties"]["creationData"] = {"createOption": "Empty"}
        if props.get("osType"):
            disk["properties"]["osType"] = props["osType"]
        if props.get("hyperVGeneration"):
            disk["properties"]["hyperVGeneration"] = props["hyperVGeneration"]
        if self.azurite_url:
            disk["_container"] = "md-" + uid.replace("-", "")
            container = _blob_service(self.azurite_url).create_container(disk["_container"])
            container.get_blob_client(BLOB_NAME).create_page_blob(blob_size)
        self._disks[key] = disk

        def finish(_entry):
            disk["properties"]["provisioningState"] = "Succeeded"
            disk["properties"]["diskState"] = final_state
        failure = self._fail_ops and any(f[0] == ctx.op and f[1] > 0 for f in self._fail_ops)
        out = self._out(disk)
        if failure:
            self._drop_blob(disk)
            del self._disks[key]
        return self._lro(ctx, 202, out, None if failure else disk, finish)

    def _disk_update(self, ctx, disk, props, tags, body, put):
        self._busy(disk, ctx.op)
        cur = disk["properties"]
        if put:
            creation = props.get("creationData") or {}
            old = cur["creationData"]
            if ({k.lower(): str(v).lower() for k, v in creation.items()}
                    != {k.lower(): str(v).lower() for k, v in old.items()}):
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property "
                               "'creationData' is not allowed.", "creationData")
        if body.get("sku"):
            sku = self._sku(body)
            if sku != disk["sku"]["name"] and disk.get("managedBy"):
                raise ArmError(409, "OperationNotAllowed", "Changing the sku of disk '%s' is "
                               "not allowed while it is attached to VM '%s'."
                               % (disk["name"], disk["managedBy"]))
        else:
            sku = disk["sku"]["name"]
        allowed = {"diskSizeGB", "creationData", "osType", "hyperVGeneration",
                   "networkAccessPolicy", "publicNetworkAccess", "encryption"}
        for k in props:
            if k not in allowed:
                raise _bad("arm_fake does not implement changing property '%s' of a disk." % k,
                           "properties." + k)
        size_gb = props.get("diskSizeGB")
        if size_gb is not None and size_gb != cur["diskSizeGB"]:
            if size_gb < cur["diskSizeGB"]:
                raise ArmError(400, "BadRequest", "Disk size cannot be reduced: disk '%s' is "
                               "%d GB, the requested size is %d GB." % (disk["name"],
                                                                        cur["diskSizeGB"],
                                                                        size_gb))
            if cur.get("diskState") in BUSY_DISK_STATES or cur["provisioningState"] != \
                    "Succeeded":
                raise ArmError(409, "OperationNotAllowed", "Disk '%s' cannot be resized "
                               "while its state is %s." % (disk["name"], cur.get("diskState")))
        put_tags = tags if put or "tags" in body else None

        def apply():
            if put_tags is not None:
                disk["tags"] = put_tags
            disk["sku"] = {"name": sku, "tier": "Premium" if sku.startswith("Premium")
                           else "Standard"}
            cur["provisioningState"] = "Updating"

        def finish(_entry):
            cur["provisioningState"] = "Succeeded"
            if size_gb is not None and size_gb > cur["diskSizeGB"]:
                cur["diskSizeGB"] = size_gb
                cur["diskSizeBytes"] = size_gb * GIB
                disk["_blob_size"] = size_gb * GIB + 512
                if disk.get("_container") and self.azurite_url:
                    self._blob_client(disk["name"], disk["_rg"]).resize_blob(
                        disk["_blob_size"])
        if self._failure_pending(ctx.op):
            return self._lro(ctx, 202, self._out(disk), disk, finish)
        apply()
        return self._lro(ctx, 202, self._out(disk), disk, finish)

    def _failure_pending(self, op):
        return any(f[0] == op and f[1] > 0 for f in self._fail_ops)

    def _h_Disks_Update(self, ctx):
        disk = self._get(self._disks, "disks", ctx, "diskName")
        return self._disk_update(ctx, disk, ctx.body.get("properties") or {},
                                 self._tags(ctx.body), ctx.body, put=False)

    def _h_Disks_Delete(self, ctx):
        disk = self._disks.get((ctx.rg.lower(), ctx.params["diskName"].lower()))
        if disk is None:
            return 204, None, {}
        self._busy(disk, ctx.op)
        state = disk["properties"].get("diskState")
        if disk.get("managedBy") or disk.get("_reserved"):
            raise ArmError(409, "OperationNotAllowed", "Disk %s is attached to VM %s."
                           % (disk["name"], disk.get("managedBy") or disk["_reserved"]))
        if state in ("ActiveUpload", "ActiveSAS"):
            raise ArmError(409, "OperationNotAllowed", "Disk %s is in state %s: revoke its "
                           "access (endGetAccess) before deleting it." % (disk["name"], state))

        def finish(_entry):
            self._disks.pop((disk["_rg"].lower(), disk["name"].lower()), None)
            self._drop_blob(disk)
        if not self._failure_pending(ctx.op):
            disk["properties"]["provisioningState"] = "Deleting"
        return self._lro(ctx, 202, None, disk, finish, location=True)

    def _h_Disks_GrantAccess(self, ctx):
        disk = self._get(self._disks, "disks", ctx, "diskName")
        self._busy(disk, ctx.op)
        access = (ctx.body.get("access") or "").lower()
        state = disk["properties"].get("diskState")
        duration = ctx.body.get("durationInSeconds")
        if duration is None:
            raise _bad("Required parameter 'durationInSeconds' is missing (null).",
                       "durationInSeconds")
        if not 1 <= duration <= 5 * 24 * 3600:
            raise _bad("The value %d of 'durationInSeconds' is out of range." % duration,
                       "durationInSeconds")
        if access == "write":
            if state != "ReadyToUpload":
                raise ArmError(409, "OperationNotAllowed", "Write access can only be granted "
                               "on a disk in state ReadyToUpload; disk '%s' is %s."
                               % (disk["name"], state or disk["properties"]
                                  ["provisioningState"]))
        elif access == "read":
            if state not in ("Unattached", "ActiveSAS", "Reserved"):
                raise ArmError(409, "OperationNotAllowed", "Read access cannot be granted on "
                               "disk '%s' in state %s." % (disk["name"], state or disk[
                                   "properties"]["provisioningState"]))
        else:
            raise _bad("The value '%s' of 'access' is not allowed: Read or Write."
                       % ctx.body.get("access"), "access")
        if not disk.get("_container") or not self.azurite_url:
            raise ArmError(409, "OperationNotAllowed", "Disk '%s' has no blob arm_fake can "
                           "give access to (no Azurite, or an OS disk made from an image)."
                           % disk["name"])

        def finish(entry):
            from azure.storage.blob import AccessPolicy, BlobSasPermissions, generate_blob_sas
            svc = _blob_service(self.azurite_url)
            container = svc.get_container_client(disk["_container"])
            now = datetime.datetime.now(datetime.timezone.utc)
            policy = "g" + uuid.uuid4().hex[:16]
            perm = BlobSasPermissions(read=True, write=access == "write")
            container.set_container_access_policy(signed_identifiers={policy: AccessPolicy(
                permission=perm, start=now - datetime.timedelta(minutes=5),
                expiry=now + datetime.timedelta(seconds=duration))})
            sas = generate_blob_sas(DEV_ACCOUNT, disk["_container"], BLOB_NAME,
                                    account_key=DEV_KEY, policy_id=policy)
            url = "%s/%s/%s/%s?%s" % (self.azurite_url.rstrip("/"), DEV_ACCOUNT,
                                      disk["_container"], BLOB_NAME, sas)
            disk["_access"] = access
            disk["properties"]["diskState"] = "ActiveUpload" if access == "write" \
                else "ActiveSAS"
            entry["result"] = {"accessSAS": url}
        return self._lro(ctx, 202, None, disk, finish, location=True)

    def _h_Disks_RevokeAccess(self, ctx):
        disk = self._get(self._disks, "disks", ctx, "diskName")
        self._busy(disk, ctx.op)

        def finish(_entry):
            access = disk.pop("_access", None)
            if disk.get("_container") and self.azurite_url and access:
                svc = _blob_service(self.azurite_url)
                svc.get_container_client(disk["_container"]).set_container_access_policy(
                    signed_identifiers={})
            if access == "write":
                size = disk["_blob_size"]
                blob = svc.get_blob_client(disk["_container"], BLOB_NAME)
                footer = blob.download_blob(offset=size - 512, length=512).readall()
                why = check_vhd_footer(footer, size)
                if why:
                    disk["properties"]["diskState"] = "ReadyToUpload"
                    return ("InvalidVhd", "The uploaded content of disk '%s' is not a valid "
                            "fixed VHD: %s." % (disk["name"], why))
                disk["properties"]["diskState"] = "Unattached"
            elif access == "read":
                disk["properties"]["diskState"] = "Unattached"
            return None
        return self._lro(ctx, 202, None, disk, finish, location=True)

    # ---- images

    def _h_Images_Get(self, ctx):
        return 200, self._out(self._get(self._images, "images", ctx, "imageName")), {}

    def _h_Images_ListByResourceGroup(self, ctx):
        return self._list(ctx, [i for i in self._images.values()
                                if i["_rg"].lower() == ctx.rg.lower()])

    def _h_Images_List(self, ctx):
        return self._list(ctx, self._images.values())

    def _h_Images_CreateOrUpdate(self, ctx):
        name = ctx.params["imageName"]
        key = (ctx.rg.lower(), name.lower())
        body = ctx.body
        self._check_location(body)
        tags = self._tags(body)
        props = body.get("properties") or {}
        if props.get("sourceVirtualMachine"):
            raise _bad("arm_fake does not implement images from a virtual machine.",
                       "properties.sourceVirtualMachine")
        storage = props.get("storageProfile") or {}
        osd = storage.get("osDisk")
        where = "properties.storageProfile.osDisk"
        if not osd:
            raise _bad("Required parameter 'osDisk' is missing (null).", where)
        if storage.get("dataDisks"):
            raise _bad("arm_fake does not implement images with data disks.",
                       "properties.storageProfile.dataDisks")
        for field in ("osType", "osState"):
            if not osd.get(field):
                raise _bad("Required parameter '%s' is missing (null)." % field,
                           "%s.%s" % (where, field))
        if (osd.get("managedDisk") or {}).get("id") is None:
            raise _bad("arm_fake implements images from a managed disk only: "
                       "'%s.managedDisk.id' is required." % where, where + ".managedDisk.id")
        source = self._find(self._disks, "disks", osd["managedDisk"]["id"],
                            where + ".managedDisk.id")
        sstate = source["properties"].get("diskState")
        if source["properties"]["provisioningState"] != "Succeeded" or \
                sstate in ("ReadyToUpload", "ActiveUpload"):
            raise ArmError(409, "OperationNotAllowed", "Disk '%s' cannot be the source of an "
                           "image in state %s." % (source["id"], sstate or source[
                               "properties"]["provisioningState"]), where + ".managedDisk.id")
        hyperv = _choice(props.get("hyperVGeneration"), ("V1", "V2"),
                         "properties.hyperVGeneration", "V1")
        image = self._images.get(key)
        os_disk = {"osType": _choice(osd["osType"], ("Linux", "Windows"), where + ".osType"),
                   "osState": _choice(osd["osState"], ("Generalized", "Specialized"),
                                      where + ".osState"),
                   "managedDisk": {"id": source["id"]},
                   "caching": osd.get("caching") or "ReadWrite",
                   "storageAccountType": osd.get("storageAccountType") or source["sku"]["name"],
                   "diskSizeGB": osd.get("diskSizeGB") or source["properties"]["diskSizeGB"]}
        if image is not None:
            self._busy(image, ctx.op)
            old = image["properties"]
            if (old["storageProfile"]["osDisk"]["managedDisk"]["id"].lower()
                    != source["id"].lower() or old["storageProfile"]["osDisk"]["osType"]
                    != os_disk["osType"] or old["hyperVGeneration"].lower() != hyperv.lower()):
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property "
                               "'storageProfile' of image '%s' is not allowed." % name,
                               "properties.storageProfile")
            if not self._failure_pending(ctx.op):
                image["tags"] = tags
                old["provisioningState"] = "Updating"

            def finish_update(_entry):
                old["provisioningState"] = "Succeeded"
            return self._lro(ctx, 200, self._out(image), image, finish_update)
        image = {"id": self.image_id(name, ctx.rg), "name": name,
                 "type": "Microsoft.Compute/images", "location": self.location, "tags": tags,
                 "properties": {"storageProfile": {"osDisk": os_disk, "dataDisks": [],
                                                   "zoneResilient": False},
                                "provisioningState": "Creating", "hyperVGeneration": hyperv},
                 "_rg": ctx.rg}
        out = self._out(image)
        if self._failure_pending(ctx.op):
            return self._lro(ctx, 201, out, None, None)
        self._images[key] = image

        def finish(_entry):
            image["properties"]["provisioningState"] = "Succeeded"
        return self._lro(ctx, 201, out, image, finish)

    def _h_Images_Delete(self, ctx):
        image = self._images.get((ctx.rg.lower(), ctx.params["imageName"].lower()))
        if image is None:
            return 204, None, {}
        self._busy(image, ctx.op)

        def finish(_entry):
            self._images.pop((image["_rg"].lower(), image["name"].lower()), None)
        if not self._failure_pending(ctx.op):
            image["properties"]["provisioningState"] = "Deleting"
        return self._lro(ctx, 202, None, image, finish, location=True)

    # ---- virtual machines

    def _vm_out(self, vm, expand=False):
        out = self._out(vm)
        if expand:
            out["properties"]["instanceView"] = self._instance_view(vm)
        return out

    def _instance_view(self, vm):
        prov = vm["properties"]["provisioningState"]
        statuses = [{"code": "ProvisioningState/%s" % prov.lower(), "level": "Info",
                     "displayStatus": "Provisioning %s" % prov.lower()},
                    {"code": "PowerState/%s" % vm["_power"], "level": "Info",
                     "displayStatus": "VM %s" % vm["_power"]}]
        if prov == "Succeeded":
            statuses[0]["time"] = vm["_time"]
        disks = [{"name": d["name"], "statuses": [{
            "code": "ProvisioningState/succeeded", "level": "Info",
            "displayStatus": "Provisioning succeeded"}]}
            for d in [vm["properties"]["storageProfile"]["osDisk"]]
            + vm["properties"]["storageProfile"]["dataDisks"]]
        view = {"computerName": (vm["properties"].get("osProfile") or {}).get("computerName"),
                "hyperVGeneration": vm["_hyperv"], "disks": disks, "statuses": statuses}
        return view

    def _h_VirtualMachines_Get(self, ctx):
        vm = self._get(self._vms, "virtualMachines", ctx, "vmName")
        expand = ctx.query.get("$expand")
        if expand not in (None, "instanceView", "userData", "resiliencyView"):
            raise _bad("The value '%s' of '$expand' is not valid." % expand, "$expand")
        return 200, self._vm_out(vm, expand == "instanceView"), {}

    def _h_VirtualMachines_InstanceView(self, ctx):
        vm = self._get(self._vms, "virtualMachines", ctx, "vmName")
        return 200, self._instance_view(vm), {}

    def _h_VirtualMachines_List(self, ctx):
        return self._list(ctx, [v for v in self._vms.values()
                                if v["_rg"].lower() == ctx.rg.lower()])

    def _h_VirtualMachines_ListAll(self, ctx):
        return self._list(ctx, self._vms.values())

    def _plan_data_disks(self, vm_id, specs, current, size, where):
        """The new dataDisks list from the requested one: [(spec out, disk)]; checks LUNs,
        disks and their states. `current`: {disk id lower: lun} attached to this VM now."""
        plan, luns, seen = [], {}, set()
        specs = [s for s in specs if not s.get("toBeDetached")]
        limit = self.vm_sizes[size]
        if len(specs) > limit:
            raise ArmError(409, "OperationNotAllowed", "The maximum number of data disks "
                           "allowed to be attached to a VM of size %s is %d." % (size, limit),
                           where)
        for i, spec in enumerate(specs):
            at = "%s[%d]" % (where, i)
            lun = spec.get("lun")
            if lun is None:
                raise _bad("Required parameter 'dataDisk.lun' is missing (null).", at + ".lun")
            if not 0 <= lun <= MAX_LUN:
                raise _bad("The value %d of 'lun' is out of range [0, %d]." % (lun, MAX_LUN),
                           at + ".lun")
            if lun in luns:
                raise _bad("A disk at LUN %d already exists (%s)." % (lun, luns[lun]),
                           at + ".lun")
            option = (spec.get("createOption") or "").lower()
            if option != "attach":
                raise _bad("arm_fake implements data disks with createOption Attach only, "
                           "not '%s'." % spec.get("createOption"), at + ".createOption")
            mid = (spec.get("managedDisk") or {}).get("id")
            if not mid:
                raise _bad("Required parameter 'managedDisk.id' is missing (null) for a disk "
                           "attached at LUN %d." % lun, at + ".managedDisk.id")
            disk = self._find(self._disks, "disks", mid, at + ".managedDisk.id")
            if disk["id"].lower() in seen:
                raise _bad("Disk %s is listed twice." % disk["name"], at + ".managedDisk.id")
            seen.add(disk["id"].lower())
            luns[lun] = disk["name"]
            owner = disk.get("managedBy") or disk.get("_reserved")
            if owner and owner.lower() != vm_id.lower():
                raise ArmError(409, "OperationNotAllowed", "Disk %s is already attached to VM "
                               "%s." % (disk["name"], owner), at + ".managedDisk.id")
            was = current.get(disk["id"].lower())
            if was is not None and was != lun:
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property 'lun' of "
                               "data disk %s (attached at LUN %d) is not allowed: detach it "
                               "first." % (disk["name"], was), at + ".lun")
            if was is None:
                self._busy(disk, "attach")
                state = disk["properties"].get("diskState")
                if state != "Unattached":
                    raise ArmError(409, "OperationNotAllowed", "Disk %s cannot be attached in "
                                   "state %s." % (disk["name"], state or disk["properties"]
                                                  ["provisioningState"]),
                                   at + ".managedDisk.id")
            plan.append(({"lun": lun, "name": disk["name"], "createOption": "Attach",
                          "caching": _choice(spec.get("caching"), CACHING, at + ".caching",
                                             "None"),
                          "writeAcceleratorEnabled": False,
                          "managedDisk": {"id": disk["id"],
                                          "storageAccountType": disk["sku"]["name"]},
                          "deleteOption": _choice(spec.get("deleteOption"), DELETE_OPTIONS,
                                                  at + ".deleteOption", "Detach"),
                          "diskSizeGB": disk["properties"]["diskSizeGB"],
                          "toBeDetached": False}, disk))
        return plan

    def _network(self, props, vm_id, where="properties.networkProfile"):
        net = props.get("networkProfile") or {}
        nics = net.get("networkInterfaces") or []
        configs = net.get("networkInterfaceConfigurations") or []
        if not nics and not configs:
            raise _bad("Required parameter 'networkProfile' is missing (null).", where)
        if nics and configs:
            raise _bad("'networkInterfaces' and 'networkInterfaceConfigurations' cannot both "
                       "be given.", where)
        out = {}
        if nics:
            ids = []
            for i, nic in enumerate(nics):
                nid = nic.get("id") or ""
                if nid.lower() not in self._nics:
                    raise ArmError(400, "InvalidResourceReference", "Resource %s referenced "
                                   "by resource %s was not found." % (nid, vm_id),
                                   "%s.networkInterfaces[%d].id" % (where, i))
                user = self._nics[nid.lower()]
                if user and user.lower() != vm_id.lower():
                    raise ArmError(400, "NicInUse", "Network Interface %s is used by existing "
                                   "resource %s." % (nid, user))
                ids.append(nid.lower())
            out["networkInterfaces"] = copy.deepcopy(nics)
            return out, ids
        if not net.get("networkApiVersion"):
            raise _bad("'networkApiVersion' is required with "
                       "'networkInterfaceConfigurations'.", where + ".networkApiVersion")
        for i, cfg in enumerate(configs):
            at = "%s.networkInterfaceConfigurations[%d]" % (where, i)
            if not cfg.get("name"):
                raise _bad("Required parameter 'name' is missing (null).", at + ".name")
            ipcs = (cfg.get("properties") or {}).get("ipConfigurations") or []
            if not ipcs:
                raise _bad("Required parameter 'ipConfigurations' is missing (null).",
                           at + ".properties.ipConfigurations")
            for j, ipc in enumerate(ipcs):
                sid = ((ipc.get("properties") or {}).get("subnet") or {}).get("id") or ""
                if sid.lower() not in self._subnets:
                    raise ArmError(400, "InvalidResourceReference", "Resource %s referenced "
                                   "by resource %s was not found." % (sid, vm_id),
                                   "%s.properties.ipConfigurations[%d].properties.subnet.id"
                                   % (at, j))
        out["networkApiVersion"] = net["networkApiVersion"]
        out["networkInterfaceConfigurations"] = copy.deepcopy(configs)
        return out, []

    @staticmethod
    def _os_profile(props, osd_state, existing):
        prof = props.get("osProfile")
        where = "properties.osProfile"
        if existing is not None:
            old = existing.get("osProfile")
            if prof is not None and old is not None:
                for k in ("computerName", "adminUsername"):
                    if prof.get(k) is not None and prof.get(k) != old.get(k):
                        raise ArmError(409, "PropertyChangeNotAllowed", "Changing property "
                                       "'osProfile.%s' is not allowed." % k, where + "." + k)
                if prof.get("adminPassword"):
                    raise ArmError(409, "PropertyChangeNotAllowed", "Changing property "
                                   "'osProfile.adminPassword' is not allowed.",
                                   where + ".adminPassword")
            return old
        if osd_state.lower() == "specialized":
            if prof:
                raise _bad("Parameter 'osProfile' is not allowed.", where)
            return None
        if not prof:
            raise _bad("Required parameter 'osProfile' is missing (null).", where)
        for k in ("computerName", "adminUsername"):
            if not prof.get(k):
                raise _bad("Required parameter 'osProfile.%s' is missing (null)." % k,
                           where + "." + k)
        linux = prof.get("linuxConfiguration") or {}
        keys = (linux.get("ssh") or {}).get("publicKeys") or []
        if not prof.get("adminPassword") and not keys:
            raise _bad("Required parameter 'adminPassword' is missing (null).",
                       where + ".adminPassword")
        if linux.get("disablePasswordAuthentication") and not keys:
            raise _bad("Authentication using either SSH or by user name and password must be "
                       "enabled in Linux profile.", where + ".linuxConfiguration")
        out = {k: copy.deepcopy(v) for k, v in prof.items() if k not in REDACT}
        out.setdefault("secrets", [])
        out.setdefault("allowExtensionOperations", True)
        out.setdefault("requireGuestProvisionSignal", True)
        out.setdefault("linuxConfiguration", {"disablePasswordAuthentication": False,
                                              "provisionVMAgent": True})
        return out

    def _h_VirtualMachines_CreateOrUpdate(self, ctx):
        name = ctx.params["vmName"]
        key = (ctx.rg.lower(), name.lower())
        body = ctx.body
        self._check_location(body)
        tags = self._tags(body)
        props = body.get("properties") or {}
        vm = self._vms.get(key)
        vm_id = self.vm_id(name, ctx.rg)
        if vm is not None:
            self._busy(vm, ctx.op)
            if vm["properties"]["provisioningState"] == "Deleting":
                raise ArmError(409, "OperationNotAllowed", "VM '%s' is being deleted." % name)
        if vm is None and not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]{0,62}[A-Za-z0-9_]", name):
            raise ArmError(400, "InvalidResourceName", "The resource name '%s' is invalid."
                           % name)
        size = (props.get("hardwareProfile") or {}).get("vmSize")
        if size is None and vm is not None:
            size = vm["properties"]["hardwareProfile"]["vmSize"]
        if size is None:
            raise _bad("Required parameter 'hardwareProfile.vmSize' is missing (null).",
                       "properties.hardwareProfile.vmSize")
        if size not in self.vm_sizes:
            raise _bad("The value %s provided for the VM size is not valid. The valid sizes "
                       "in the current region are: %s." % (size, ", ".join(sorted(
                           self.vm_sizes))), "properties.hardwareProfile.vmSize")
        storage = props.get("storageProfile") or {}
        where = "properties.storageProfile"
        ref = storage.get("imageReference")
        if vm is None:
            if not ref or not ref.get("id"):
                raise _bad("arm_fake implements VMs from a managed image only: '%s."
                           "imageReference.id' is required." % where,
                           where + ".imageReference.id")
            image = self._find(self._images, "images", ref["id"], where + ".imageReference.id")
            if image["properties"]["provisioningState"] != "Succeeded":
                raise ArmError(409, "OperationNotAllowed", "Image '%s' is not ready (%s)."
                               % (image["id"], image["properties"]["provisioningState"]))
            img_os = image["properties"]["storageProfile"]["osDisk"]
            osd = storage.get("osDisk") or {}
            if (osd.get("createOption") or "").lower() != "fromimage":
                raise _bad("The value '%s' of 'osDisk.createOption' is not supported by "
                           "arm_fake: FromImage." % osd.get("createOption"),
                           where + ".osDisk.createOption")
            if osd.get("osType") and osd["osType"].lower() != img_os["osType"].lower():
                raise _bad("The osType %s of the OS disk does not match the image's (%s)."
                           % (osd["osType"], img_os["osType"]), where + ".osDisk.osType")
            if osd.get("diskSizeGB") is not None and osd["diskSizeGB"] < img_os["diskSizeGB"]:
                raise _bad("The OS disk size %d GB is smaller than the image's (%d GB)."
                           % (osd["diskSizeGB"], img_os["diskSizeGB"]),
                           where + ".osDisk.diskSizeGB")
            os_state = img_os["osState"]
            existing_props = None
        else:
            old_ref = vm["properties"]["storageProfile"]["imageReference"]
            if ref and ref.get("id") and ref["id"].lower() != old_ref["id"].lower():
                raise ArmError(409, "PropertyChangeNotAllowed", "Changing property "
                               "'imageReference' is not allowed.", where + ".imageReference")
            os_state = "Generalized"
            existing_props = vm["properties"]
        os_profile = self._os_profile(props, os_state, existing_props)
        current = {}
        if vm is not None:
            current = {d["managedDisk"]["id"].lower(): d["lun"]
                       for d in vm["properties"]["storageProfile"]["dataDisks"]}
        plan = self._plan_data_disks(vm_id, storage.get("dataDisks") or [], current, size,
                                     where + ".dataDisks")
        network, nic_ids = self._network(props, vm_id)
        if vm is None:
            return self._vm_create(ctx, name, key, vm_id, tags, props, size, image, osd,
                                   os_profile, network, nic_ids, plan)
        return self._vm_update(ctx, vm, tags, props, size, network, nic_ids, plan, current)

    def _vm_create(self, ctx, name, key, vm_id, tags, props, size, image, osd, os_profile,
                   network, nic_ids, plan):
        img_os = image["properties"]["storageProfile"]["osDisk"]
        os_name = osd.get("name") or "%s_OsDisk_1_%s" % (name, uuid.uuid4().hex)
        os_sku = (osd.get("managedDisk") or {}).get("storageAccountType") or \
            img_os["storageAccountType"]
        os_size = osd.get("diskSizeGB") or img_os["diskSizeGB"]
        if (ctx.rg.lower(), os_name.lower()) in self._disks:
            raise ArmError(409, "Conflict", "Disk %s already exists." % os_name)
        os_disk_out = {"osType": img_os["osType"], "name": os_name,
                       "createOption": "FromImage",
                       "caching": _choice(osd.get("caching"), CACHING,
                                          "properties.storageProfile.osDisk.caching",
                                          "ReadWrite"),
                       "managedDisk": {"id": self.disk_id(os_name, ctx.rg),
                                       "storageAccountType": os_sku},
                       "deleteOption": _choice(osd.get("deleteOption"), DELETE_OPTIONS,
                                               "properties.storageProfile.osDisk.deleteOption",
                                               "Detach"),
                       "diskSizeGB": os_size}
        vm = {"id": vm_id, "name": name, "type": "Microsoft.Compute/virtualMachines",
              "location": self.location, "tags": tags,
              "properties": {"vmId": str(uuid.uuid4()),
                             "hardwareProfile": {"vmSize": size},
                             "storageProfile": {
                                 "imageReference": {"id": image["id"]},
                                 "osDisk": os_disk_out,
                                 "dataDisks": [p[0] for p in plan],
                                 "diskControllerType": "SCSI"},
                             "networkProfile": network,
                             "provisioningState": "Creating", "timeCreated": _now()},
              "_rg": ctx.rg, "_power": "starting", "_time": _now(),
              "_hyperv": image["properties"]["hyperVGeneration"], "_nics": nic_ids}
        if os_profile is not None:
            vm["properties"]["osProfile"] = os_profile
        for k in ("diagnosticsProfile", "userData", "securityProfile", "priority",
                  "evictionPolicy", "billingProfile", "licenseType", "additionalCapabilities"):
            if props.get(k) is not None:
                vm["properties"][k] = copy.deepcopy(props[k])
        vm["properties"].pop("userData", None)  # never shown without $expand=userData
        out = self._vm_out(vm)
        if self._failure_pending(ctx.op):
            return self._lro(ctx, 201, out, None, None)
        self._vms[key] = vm
        for nid in nic_ids:
            self._nics[nid] = vm_id
        for _spec, disk in plan:
            disk["_reserved"] = vm_id

        def finish(_entry):
            os_disk = {"id": self.disk_id(os_name, ctx.rg), "name": os_name,
                       "type": "Microsoft.Compute/disks", "location": self.location,
                       "tags": {}, "managedBy": vm_id,
                       "sku": {"name": os_sku, "tier": "Premium" if os_sku.startswith(
                           "Premium") else "Standard"},
                       "properties": {"osType": img_os["osType"],
                                      "hyperVGeneration": image["properties"][
                                          "hyperVGeneration"],
                                      "creationData": {"createOption": "FromImage",
                                                       "imageReference": {"id": image["id"]}},
                                      "diskSizeGB": os_size, "diskSizeBytes": os_size * GIB,
                                      "uniqueId": str(uuid.uuid4()), "timeCreated": _now(),
                                      "provisioningState": "Succeeded",
                                      "diskState": "Attached"},
                       "_rg": ctx.rg, "_blob_size": os_size * GIB + 512, "_container": None}
            self._disks[(ctx.rg.lower(), os_name.lower())] = os_disk
            for _spec, disk in plan:
                self._attach(disk, vm_id)
            vm["properties"]["provisioningState"] = "Succeeded"
            vm["_power"] = "running"
            vm["_time"] = _now()
        return self._lro(ctx, 201, out, vm, finish)

    @staticmethod
    def _attach(disk, vm_id):
        disk.pop("_reserved", None)
        disk["managedBy"] = vm_id
        disk["properties"]["diskState"] = "Attached"

    @staticmethod
    def _detach(disk):
        disk.pop("_reserved", None)
        disk.pop("managedBy", None)
        disk["properties"]["diskState"] = "Unattached"

    def _vm_update(self, ctx, vm, tags, props, size, network, nic_ids, plan, current):
        vm_id = vm["id"]
        new_ids = {d.get("id").lower() for _s, d in plan}
        removed = [self._disk_by_id(i) for i in current if i not in new_ids]
        added = [d for _s, d in plan if d["id"].lower() not in current]
        if self._failure_pending(ctx.op):
            return self._lro(ctx, 200, self._vm_out(vm), vm, None)
        vm["tags"] = tags
        p = vm["properties"]
        p["hardwareProfile"] = {"vmSize": size}
        p["storageProfile"]["dataDisks"] = [s for s, _d in plan]
        osd = (props.get("storageProfile") or {}).get("osDisk") or {}
        if osd.get("deleteOption"):
            p["storageProfile"]["osDisk"]["deleteOption"] = osd["deleteOption"]
        p["networkProfile"] = network
        for nid in vm["_nics"]:
            self._nics[nid] = None
        for nid in nic_ids:
            self._nics[nid] = vm_id
        vm["_nics"] = nic_ids
        p["provisioningState"] = "Updating"
        for d in added:
            d["_reserved"] = vm_id

        def finish(_entry):
            for d in removed:
                if d is not None:
                    self._detach(d)
            for d in added:
                self._attach(d, vm_id)
            p["provisioningState"] = "Succeeded"
        return self._lro(ctx, 200, self._vm_out(vm), vm, finish)

    def _disk_by_id(self, disk_id):
        for d in self._disks.values():
            if d["id"].lower() == disk_id.lower():
                return d
        return None

    def _h_VirtualMachines_AttachDetachDataDisks(self, ctx):
        vm = self._get(self._vms, "virtualMachines", ctx, "vmName")
        self._busy(vm, ctx.op)
        p = vm["properties"]
        cur_specs = copy.deepcopy(p["storageProfile"]["dataDisks"])
        current = {d["managedDisk"]["id"].lower(): d["lun"] for d in cur_specs}
        detach = ctx.body.get("dataDisksToDetach") or []
        attach = ctx.body.get("dataDisksToAttach") or []
        if not detach and not attach:
            raise _bad("At least one of 'dataDisksToAttach' and 'dataDisksToDetach' is "
                       "required.")
        for i, d in enumerate(detach):
            did = (d.get("diskId") or "").lower()
            if did not in current:
                raise _bad("Disk %s is not attached to VM %s." % (d.get("diskId"), vm["name"]),
                           "dataDisksToDetach[%d].diskId" % i)
            cur_specs = [s for s in cur_specs if s["managedDisk"]["id"].lower() != did]
        used = {s["lun"]: s["name"] for s in cur_specs}
        for i, a in enumerate(attach):
            did = a.get("diskId") or ""
            if did.lower() in current and did.lower() not in [
                    (d.get("diskId") or "").lower() for d in detach]:
                raise ArmError(409, "Conflict", "Disk %s is already attached to VM %s."
                               % (did, vm["name"]), "dataDisksToAttach[%d].diskId" % i)
            lun = a.get("lun")
            if lun is None:
                lun = min(n for n in range(MAX_LUN + 1) if n not in used)
            elif lun in used:
                raise ArmError(409, "Conflict", "LUN %d of VM %s is already in use by disk %s."
                               % (lun, vm["name"], used[lun]), "dataDisksToAttach[%d].lun" % i)
            used[lun] = did
            cur_specs.append({"lun": lun, "createOption": "Attach", "managedDisk": {"id": did},
                              "caching": a.get("caching"), "deleteOption": a.get("deleteOption")})
        keep = {s["managedDisk"]["id"].lower(): s["lun"] for s in cur_specs}
        plan = self._plan_data_disks(vm["id"], cur_specs, {k: v for k, v in current.items()
                                                           if k in keep},
                                     p["hardwareProfile"]["vmSize"], "dataDisksToAttach")
        new_ids = {d["id"].lower() for _s, d in plan}
        removed = [self._disk_by_id(i) for i in current if i not in new_ids]
        added = [d for _s, d in plan if d["id"].lower() not in current]
        if self._failure_pending(ctx.op):
            return self._lro(ctx, 202, None, vm, None, location=True)
        p["storageProfile"]["dataDisks"] = [s for s, _d in plan]
        p["provisioningState"] = "Updating"
        for d in added:
            d["_reserved"] = vm["id"]

        def finish(entry):
            for d in removed:
                if d is not None:
                    self._detach(d)
            for d in added:
                self._attach(d, vm["id"])
            p["provisioningState"] = "Succeeded"
            entry["result"] = copy.deepcopy(p["storageProfile"])
        return self._lro(ctx, 202, None, vm, finish, location=True)

    def _h_VirtualMachines_Delete(self, ctx):
        vm = self._vms.get((ctx.rg.lower(), ctx.params["vmName"].lower()))
        if vm is None:
            return 204, None, {}
        self._busy(vm, ctx.op)
        if ctx.query.get("forceDeletion") not in (None, "true", "false"):
            raise _bad("The value of 'forceDeletion' must be true or false.", "forceDeletion")

        def finish(_entry):
            self._vms.pop((vm["_rg"].lower(), vm["name"].lower()), None)
            sp = vm["properties"]["storageProfile"]
            for spec in [sp["osDisk"]] + sp["dataDisks"]:
                disk = self._disk_by_id(spec["managedDisk"]["id"])
                if disk is None:
                    continue
                if (spec.get("deleteOption") or "Detach").lower() == "delete":
                    self._disks.pop((disk["_rg"].lower(), disk["name"].lower()), None)
                    self._drop_blob(disk)
                else:
                    self._detach(disk)
            for nid in vm["_nics"]:
                self._nics[nid] = None
        if not self._failure_pending(ctx.op):
            vm["properties"]["provisioningState"] = "Deleting"
            vm["_power"] = "stopping"
        return self._lro(ctx, 202, None, vm, finish, location=True)

    def _power(self, ctx, allowed, transitional, final, verb):
        vm = self._get(self._vms, "virtualMachines", ctx, "vmName")
        self._busy(vm, ctx.op)
        if vm["properties"]["provisioningState"] == "Deleting":
            raise ArmError(409, "OperationNotAllowed", "Operation '%s' is not allowed on VM "
                           "'%s' since the VM is marked for deletion." % (verb, vm["name"]))
        if vm["_power"] not in allowed:
            raise ArmError(409, "OperationNotAllowed", "Operation '%s' is not allowed on VM "
                           "'%s' since the VM is %s." % (verb, vm["name"], vm["_power"]))
        before = vm["_power"]

        def finish(_entry):
            vm["_power"] = final
        if not self._failure_pending(ctx.op):
            vm["_power"] = transitional if before != final else before
        return self._lro(ctx, 202, None, vm, finish, location=True)

    def _h_VirtualMachines_Start(self, ctx):
        return self._power(ctx, ("running", "stopped", "deallocated"), "starting", "running",
                           "start")

    def _h_VirtualMachines_PowerOff(self, ctx):
        if ctx.query.get("skipShutdown") not in (None, "true", "false"):
            raise _bad("The value of 'skipShutdown' must be true or false.", "skipShutdown")
        return self._power(ctx, ("running", "stopped"), "stopping", "stopped", "powerOff")

    def _h_VirtualMachines_Deallocate(self, ctx):
        return self._power(ctx, ("running", "stopped", "deallocated"), "deallocating",
                           "deallocated", "deallocate")

    def _h_VirtualMachines_Restart(self, ctx):
        return self._power(ctx, ("running",), "starting", "running", "restart")


# --------------------------------------------------------------------------------------------
# Blobs on Azurite (shared by the fake and the CLI)


def read_blob(blob, path=None):
    """The bytes of a blob client's blob; written to path instead when given (its size)."""
    stream = blob.download_blob(max_concurrency=4)
    if path is None:
        return stream.readall()
    with open(path, "wb") as f:
        return stream.readinto(f)


def blob_page_ranges(blob):
    """[(start, end)] of the written pages (end inclusive), merged."""
    out = []
    for r in blob.list_page_ranges():
        if r.cleared:
            continue
        if out and out[-1][1] + 1 == r.start:
            out[-1] = (out[-1][0], r.end)
        else:
            out.append((r.start, r.end))
    return out


# --------------------------------------------------------------------------------------------
# Running it in a process of its own, and Azurite next to it


def serve(state_dir, azurite_url=None):
    """The fake in the foreground until SIGTERM or SIGINT; STATE_DIR/arm.json says where."""
    local_fake.serve(state_dir, PROCESS, ArmFake, azurite_url=azurite_url or None)


def start(state_dir, azurite_url=None, timeout=60.0):
    """`serve` detached; its arm.json once written."""
    return local_fake.start(__file__, state_dir, PROCESS, [azurite_url] if azurite_url else [],
                            timeout)


def stop(state_dir):
    return local_fake.stop(state_dir, PROCESS)


def start_azurite(state_dir, timeout=60.0):
    """azurite-blob on 127.0.0.1, in memory; its URL (http://127.0.0.1:PORT)."""
    port = local_fake.moto_endpoint.free_port()
    # --location cannot go with --inMemoryPersistence: the cwd (the state dir) is its folder
    return local_fake.start_server(
        state_dir, "azurite",
        [_azurite_exe(), "--disableTelemetry", "--inMemoryPersistence", "--skipApiVersionCheck",
         "--silent", "--blobHost", "127.0.0.1", "--blobPort", str(port)],
        port, "/" + DEV_ACCOUNT + "?comp=list", timeout)


def stop_azurite(state_dir):
    return local_fake.stop(state_dir, "azurite")


def start_all(state_dir):
    azurite = start_azurite(state_dir)
    try:
        out = start(state_dir, azurite)
    except BaseException:
        stop_azurite(state_dir)
        raise
    out.update(azurite_url=azurite, azurite_pid=local_fake.read_pid(state_dir, "azurite"))
    return out


# record(STATE_DIR): an empty request log from here on; calls(STATE_DIR): the requests logged
# since, in short; resources(STATE_DIR): what the fake holds
record = functools.partial(local_fake.record, name=PROCESS)
calls = functools.partial(local_fake.calls, name=PROCESS)
resources = functools.partial(local_fake.resources, name=PROCESS)


def _cli_blob(state_dir, name, rg=None):
    what = "disk-blob?name=" + quote(name)
    if rg:
        what += "&resourceGroup=" + quote(rg)
    where = local_fake.control(state_dir, PROCESS, "GET", what)
    svc = _blob_service(where["azurite_url"])
    return svc.get_blob_client(where["container"], where["blob"])


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    cmd, arg, rest = argv[1], argv[2], argv[3:]
    if cmd == "serve":
        serve(arg, *rest[:1])
    elif cmd == "start":
        print(json.dumps(start(arg, *rest[:1])))
    elif cmd == "start-azurite":
        url = start_azurite(arg)
        print(json.dumps({"url": url, "pid": local_fake.read_pid(arg, "azurite")}))
    elif cmd == "stop-azurite":
        print(json.dumps({"stopped": stop_azurite(arg)}))
    elif cmd == "start-all":
        print(json.dumps(start_all(arg)))
    elif cmd == "stop-all":
        print(json.dumps({"stopped": [stop(arg), stop_azurite(arg)]}))
    elif cmd == "disk-bytes" and len(rest) >= 2:
        size = read_blob(_cli_blob(arg, rest[0], *rest[2:3]), rest[1])
        print(json.dumps({"size": size}))
    elif cmd == "page-ranges" and rest:
        print(json.dumps(blob_page_ranges(_cli_blob(arg, rest[0], *rest[1:2]))))
    elif not local_fake.cli_command(cmd, arg, PROCESS):  # stop, record, calls, resources
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
