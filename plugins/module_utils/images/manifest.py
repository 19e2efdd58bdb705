# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An image's root filesystem and manifest, from module options and/or an ops config.json.

The manifest is the root tuple of the rootfs: program, arguments, environment, mounts and
whatever the user passes through. Every value is a string, vector or tuple, as Nanos expects
(ops fails on JSON booleans and numbers; we convert them). Mount keys are checked here, before
anything boots: ops turns any key it does not recognise, typos included, into a 9p share.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from ansible_collections.unikernel.ops.plugins.module_utils.images import elf
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import LABEL_MAX, parse_uuid
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.writer import TreePlan

# ops config.json keys this collection understands, by lower-case name (ops matches any case).
CONFIG_KEYS = {
    "program": "program", "args": "args", "env": "env", "files": "files", "dirs": "dirs",
    "mounts": "mounts", "manifestpassthrough": "manifest_passthrough", "basevolumesz": "size",
    "kernel": "kernel", "boot": "boot", "klibs": "klibs", "klibdir": "klib_dir",
    "nanosversion": "nanos_version", "nightlybuild": "nightly",
}
# Keys that only concern running or deploying, not the image: accepted and left alone.
CONFIG_IGNORED = {"runconfig", "cloudconfig", "targetroot", "volumesdir", "notrace",
                  "debugflags", "rebootonexit", "uefiboot", "uefi", "tfsv4", "mapdirs",
                  "localfilesparentdirectory", "home"}
_VIRTUAL_ID = re.compile(r"^%([0-9]+)$")
# Manifest flags that Nanos treats as on whatever their value - it only asks whether the key is
# there (nanos b9c3671: stage3.c readonly_rootfs, init.c debug_exit and ingest_kernel_symbols,
# exec.c and mmap.c noaslr, exec.c ltrace and static_map_program, syscall.c missing_files,
# unix.c exec_protection and program_overwrite). A value that means off leaves the key out.
PRESENCE_FLAGS = frozenset(("readonly_rootfs", "debug_exit", "ingest_kernel_symbols", "noaslr",
                            "ltrace", "static_map_program", "missing_files", "exec_protection",
                            "program_overwrite"))
OFF_VALUES = ("false", "no", "off", "0", "")


def means_off(value):
    return value is False or value is None or (
        not isinstance(value, (dict, list, tuple)) and str(value).strip().lower() in OFF_VALUES)


# What each used config key must hold, as ops' config.json has it; anything else is refused
# with the key named (ops would fail to parse it, or ignore it).
CONFIG_TYPES = {
    "env": (dict, "an object of NAME: value"), "mounts": (dict, "an object of volume: mount point"),
    "manifest_passthrough": (dict, "an object"), "args": (list, "a list of strings"),
    "files": (list, "a list of paths"), "dirs": (list, "a list of paths"),
    "klibs": (list, "a list of klib names"), "program": (str, "a path"), "kernel": (str, "a path"),
    "boot": (str, "a path"), "klib_dir": (str, "a path"), "nanos_version": (str, "a version"),
    "size": ((str, int), "a size such as 100m"), "nightly": (bool, "true or false"),
}


class ImageSpec:
    """What the user asked for; None means "not given" so that a config file can fill it."""

    FIELDS = ("name", "program", "program_path", "args", "env", "files", "dirs", "mounts",
              "manifest_passthrough", "readonly_rootfs", "kernel", "boot", "klibs", "klib_dir",
              "nanos_version", "size", "hostname", "nameservers")

    def __init__(self, **kwargs):
        for field in self.FIELDS:
            setattr(self, field, kwargs.pop(field, None))
        self.base_dir = kwargs.pop("base_dir", None)
        if kwargs:
            raise TypeError("unknown ImageSpec fields: %s" % ", ".join(kwargs))


def merge_config(spec, config):
    """Fill what the options leave unset from an ops config (a dict, as in config.json).

    Options win over the config; env, mounts and manifest_passthrough are merged key by key.
    Returns warnings.
    """
    warnings = []
    if config is None:
        return warnings
    if not isinstance(config, dict):
        raise OpsError("an ops config is a JSON object (Mounts, Env, Args, ...)")
    values = {}
    for key, value in config.items():
        low = key.lower()
        if low in CONFIG_KEYS:
            kind, shape = CONFIG_TYPES[CONFIG_KEYS[low]]
            if value is not None and (not isinstance(value, kind) or (
                    kind is not bool and isinstance(value, bool))):
                raise OpsError("ops config %s must be %s, not %s: %s" % (
                    key, shape, type(value).__name__, json.dumps(value)[:200]))
            values[CONFIG_KEYS[low]] = value
        elif low not in CONFIG_IGNORED:
            warnings.append("ops config key %r is not used for images and was ignored" % key)
    if values.pop("nightly", False) and spec.nanos_version is None:
        spec.nanos_version = "nightly"
    for field in ("env", "mounts", "manifest_passthrough"):
        if field in values:
            merged = dict(values.pop(field) or {})
            merged.update(getattr(spec, field) or {})
            setattr(spec, field, merged)
    for field, value in values.items():
        if getattr(spec, field) is None:
            setattr(spec, field, value)
    return warnings


def load_config(spec, config):
    """merge_config for a path to config.json or a dict; relative host paths in a config file
    are relative to the file's folder."""
    if isinstance(config, str):
        path = os.path.abspath(config)
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise OpsError("cannot read ops config %s: %s" % (config, e))
        spec.base_dir = spec.base_dir or os.path.dirname(path)
        return merge_config(spec, data)
    return merge_config(spec, config)


def _host(spec, path):
    path = os.path.expanduser(str(path))
    if not os.path.isabs(path) and spec.base_dir:
        path = os.path.join(spec.base_dir, path)
    return path


def _guest(path, what):
    path = str(path)
    while path.startswith("./"):
        path = path[2:]
    if not path.startswith("/"):
        path = "/" + path
    if path == "/" or ".." in path.split("/"):
        raise OpsError("%s %r is not a usable path in the image" % (what, path))
    return path


def _pairs(spec, items, what):
    """files/dirs entries: "rel/path" (same path in the image) or {src: ..., dest: ...}."""
    out = []
    for item in items or []:
        if isinstance(item, dict):
            if "src" not in item:
                raise OpsError("each of %s needs src (and optionally dest): %r" % (what, item))
            src = item["src"]
            dest = item.get("dest") or (src if not os.path.isabs(str(src)) else os.path.basename(str(src)))
        else:
            src = dest = item
        out.append((_host(spec, src), _guest(dest, what)))
    return out


def env_values(env):
    """The environment: each value a scalar (Nanos sets variables to strings); a list or an
    object would end up in the manifest as a vector or a tuple that no program can read."""
    for name, value in (env or {}).items():
        if isinstance(value, (list, tuple, dict)):
            raise OpsError("env %s is %s, not a string: an environment variable holds one value "
                           "(join a list into one string)" % (name, type(value).__name__))
    return env or {}


def manifest_string(value, where):
    """Manifest values as Nanos reads them: strings, vectors of them, tuples of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return [manifest_string(v, where) for v in value]
    if isinstance(value, dict):
        return dict((str(k), manifest_string(v, "%s.%s" % (where, k))) for k, v in value.items())
    if value is None:
        raise OpsError("%s has no value; give a string" % where)
    raise OpsError("%s: %r cannot be put in a manifest" % (where, value))


class MountPlan:
    def __init__(self):
        self.manifest = {}  # manifest key -> "/path[:ro]"
        self.shares = {}  # virtual id (str) -> host directory, for 9p
        self.volumes = {}  # manifest key -> volume file, for names and UUIDs known locally
        self.points = []


def plan_mounts(mounts, volumes, shares=True):
    """Check every mount key against the volumes and (shares=True) the host; see the module docs."""
    plan = MountPlan()
    taken = set()
    for key in mounts or {}:
        m = _VIRTUAL_ID.match(str(key))
        if m:
            taken.add(int(m.group(1)))
    next_id = 0
    for key, value in (mounts or {}).items():
        key = str(key)
        value = str(value)
        read_only = value.endswith(":ro")
        point = value[:-3] if read_only else value
        if not point.startswith("/") or point == "/" or ":" in point or ".." in point.split("/"):
            raise OpsError("mount %r -> %r: the mount point must be an absolute path other than "
                           "/, optionally followed by :ro" % (key, value))
        point = point.rstrip("/")
        if point in plan.points:
            raise OpsError("mount point %s is given twice (mount %r)" % (point, key))
        plan.points.append(point)
        manifest_value = point + (":ro" if read_only else "")
        if _VIRTUAL_ID.match(key):
            plan.manifest[key] = manifest_value
            continue
        if len(key) == 36 and key.count("-") == 4:
            try:
                parse_uuid(key)
            except ValueError:
                raise OpsError("mount key %r looks like a UUID but is not a valid one" % key)
            uuid = key.lower()
            plan.manifest[uuid] = manifest_value
            hit = [v for v in volumes if v.uuid == uuid]
            if hit:
                plan.volumes[uuid] = hit[0].path
            continue
        if key.startswith(("/", "./", "../", "~")):
            if not shares:
                raise OpsError("mount key %r is a host directory: 9p shares exist only on "
                               "provider onprem; mount a volume by name, UUID or %%N" % key)
            host = os.path.expanduser(key)
            if not os.path.isdir(host):
                raise OpsError("mount key %r is a host directory that does not exist (only an "
                               "existing directory is shared over 9p)" % key)
            while next_id in taken:
                next_id += 1
            taken.add(next_id)
            plan.manifest["%%%d" % next_id] = manifest_value
            plan.shares[str(next_id)] = os.path.abspath(host)
            continue
        named = [v for v in volumes if v.name == key]
        if len(named) != 1:
            known = ", ".join(sorted(set(v.name for v in volumes))) or "none"
            raise OpsError("mount key %r matches %s volume %s(volumes: %s); a key "
                           "is a volume name, a volume UUID, %%N%s"
                           % (key, "no" if not named else "more than one",
                              "in the ops home " if shares else "in the cloud ", known,
                              ", or an existing host directory" if shares else ""))
        if len(key.encode("utf-8")) > LABEL_MAX:
            raise OpsError("volume %r has a label of more than %d bytes; Nanos never mounts it"
                           % (key, LABEL_MAX))
        plan.manifest[key] = manifest_value
        plan.volumes[key] = named[0].path
    return plan


def build_rootfs(spec, kernel_version, volumes, shares=True):
    """(TreePlan with the manifest in its root, MountPlan, list of shared libraries)."""
    if not spec.program:
        raise OpsError("program is required (the ELF executable the image runs)")
    program = _host(spec, spec.program)
    info = elf.inspect(program)
    libs = elf.shared_libraries(info)
    guest_program = _guest(spec.program_path or "/" + os.path.basename(program), "program_path")
    plan = TreePlan()
    plan.add_file(guest_program, program)
    for lib in libs:
        plan.add_file(lib, lib)  # at the host's path, symlinks followed, as ops does
    for src, dest in _pairs(spec, spec.files, "files"):
        plan.add_file(dest, src)
    for src, dest in _pairs(spec, spec.dirs, "dirs"):
        if not os.path.isdir(src):
            raise OpsError("dirs: %s is not a directory" % src)
        plan.add_tree(dest, src)
    etc = plan.directory("/etc")
    hostname = (spec.hostname or "uniboot").encode()
    generated = {
        b"resolv.conf": "".join("nameserver %s\n" % ns for ns in (spec.nameservers or ["8.8.8.8"])).encode(),
        b"passwd": b"root:x:0:0:root:/root:/bin/nobash\n",
        b"hostname": hostname + b"\n",
    }
    for name, data in generated.items():
        if name not in etc:  # the user's own files win
            plan.add_data(b"/etc/" + name, data)
    if "hostname" not in plan.directory("/proc/sys/kernel"):
        plan.add_data("/proc/sys/kernel/hostname", hostname)
    mounts = plan_mounts(spec.mounts, volumes, shares)
    for point in mounts.points:
        plan.directory(point)
    manifest = {
        "program": guest_program,
        "arguments": [guest_program] + [manifest_string(a, "args") for a in (spec.args or [])],
        "environment": dict({"USER": "root", "PWD": "/", "NANOS_VERSION": kernel_version or "0.0",
                             "NANOS_ARCH": "amd64" if info.machine == "x86_64" else "arm64",
                             "IMAGE_NAME": spec.name},
                            **manifest_string(env_values(spec.env), "env")),
    }
    if mounts.manifest:
        manifest["mounts"] = mounts.manifest
    if spec.klibs:
        manifest["klibs"] = "bootfs"
    if spec.readonly_rootfs:
        manifest["readonly_rootfs"] = "true"  # any value counts, even "false": only set it
    for key, value in (spec.manifest_passthrough or {}).items():
        if key in ("children", "program"):
            raise OpsError("manifest_passthrough cannot set %r; use the module's options" % key)
        if key in PRESENCE_FLAGS and means_off(value):
            continue  # Nanos would take "false" as on; readonly_rootfs: true (the option) stays
        manifest[str(key)] = manifest_string(value, "manifest_passthrough.%s" % key)
    for key, value in manifest.items():
        plan.root[key.encode()] = value
    return plan, mounts, libs


def render(manifest):
    """A manifest (str keys, decoded) as sorted text lines, for diffs."""
    lines = []
    for key in sorted(manifest):
        value = manifest[key]
        if isinstance(value, dict):
            lines.append("%s:" % key)
            lines.extend("  %s: %s" % (k, value[k]) for k in sorted(value))
        elif isinstance(value, list):
            lines.append("%s: %s" % (key, json.dumps(value)))
        else:
            lines.append("%s: %s" % (key, value))
    return lines
