# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Local images: <ops home>/images/<name>, built natively, rebuilt only when an input changed.

Whether an image is current is decided by a fingerprint of every input (boot.img, kernel and
klibs, program, libraries and files by content, the encoded manifest and layout). It is kept in
the collection's own folder, because ops lists every file of images/ as an image.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible_collections.unikernel.ops.plugins.module_utils.images import layout as image_layout
from ansible_collections.unikernel.ops.plugins.module_utils.images import kernels
from ansible_collections.unikernel.ops.plugins.module_utils.images import manifest
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome, set_size, write_state
from ansible_collections.unikernel.ops.plugins.module_utils.providers import ImageProvider, Outcome
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.codec import (
    SECTOR, TFSFormatError, format_uuid,
)
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.digest import content_digest
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.reader import TFS, read_identity
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.writer import (
    TreePlan, prepare, required_sectors, write_filesystem,
)
from ansible_collections.unikernel.ops.plugins.module_utils.volumes.store import (
    check_volume_file, human_size, list_volume_files, parse_size, smallest_writable_size,
)

MIB = 1024 * 1024
# Free space the rootfs gets beyond its content when no size is given: the guest reserves
# 1 MiB for its log and programs write logs and temporary files (ops leaves none: ENOSPC).
DEFAULT_FREE = 8 * MIB


def validate_image_name(name):
    if not name or "/" in name or "\0" in name or name.startswith(".") or len(name) > 255:
        raise OpsError("image name %r cannot be used: it names a file in the ops home's images "
                       "folder (no '/', no leading '.')" % (name,))
    return name


def fingerprint(boot_data, filesystems, size_request, known=None):
    """One digest of everything an image is made of, and the file hashes it used."""
    return content_digest(filesystems, (boot_data, str(size_request).encode()), known)


def _decode(value):
    """Manifest values read back (bytes keys and strings) as text."""
    if isinstance(value, dict):
        return dict((_decode(k), _decode(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return value


def _plan_manifest(plan):
    return _decode(dict((k, v) for k, v in plan.root.items() if k != b"children"))


def read_image(path):
    """What an image holds, read from the image itself."""
    size = os.path.getsize(path)
    bootfs_off, rootfs_off = image_layout.filesystem_offsets(path)
    out = {"path": path, "size": size}
    with TFS(path, bootfs_off) as boot:
        names = [e.path.decode("utf-8", "replace") for e in boot.walk() if e.kind == "file"]
        out["kernel_size"] = boot.lookup("/kernel").size if "/kernel" in names else None
        out["klibs"] = sorted(n[len("/klib/"):] for n in names if n.startswith("/klib/"))
    with TFS(path, rootfs_off) as root:
        man = _decode(root.manifest())
        out["rootfs_uuid"] = root.uuid
        out["files"] = sum(1 for e in root.walk() if e.kind == "file")
    out["manifest"] = man
    out["program"] = man.get("program")
    out["arguments"] = man.get("arguments")
    out["environment"] = man.get("environment")
    out["mounts"] = man.get("mounts", {})
    out["readonly_rootfs"] = "readonly_rootfs" in man
    return out


class ImageBuild:
    """An image planned and fingerprinted from its inputs, not written yet.

    Local and cloud backends share it: they differ only in where the bytes go.
    """

    def __init__(self, spec, kernel, boot_data, bootfs, rootfs, mounts, libs, known_hashes=None,
                 unit=None, floor=0):
        self.spec = spec
        self.kernel = kernel
        self.boot_data = boot_data
        self.bootfs, self.rootfs, self.mounts, self.libs = bootfs, rootfs, mounts, libs
        self.boot_log = prepare(bootfs)
        if required_sectors(bootfs, self.boot_log) * SECTOR > image_layout.BOOTFS_BYTES:
            raise OpsError("the kernel and klibs do not fit the 12 MiB boot filesystem")
        self.root_log = prepare(rootfs)
        size_request = parse_size(spec.size, "image") if spec.size is not None else None
        layout_probe = image_layout.Layout(len(boot_data), 1 << 62)
        # The rootfs is writable too: the same room for the guest's first write as a volume.
        need = layout_probe.rootfs + smallest_writable_size(rootfs, self.root_log)
        if size_request is None:
            total = -(-(need + DEFAULT_FREE) // MIB) * MIB
        else:
            total = size_request
            if total < need:
                raise OpsError("size %s (%d bytes) cannot hold this image: it needs at least %d "
                               "bytes" % (spec.size, total, need), needed=need)
        total = max(total, floor)  # a cloud's smallest disk (20 MiB for an Azure upload)
        if unit:  # a cloud's unit (whole GiB on AWS): the guest takes the disk's size
            total = -(-total // unit) * unit
        self.total = total
        self.digest, self.hashes = fingerprint(
            boot_data, ((bootfs, self.boot_log), (rootfs, self.root_log)), size_request,
            known_hashes)
        self.manifest = _plan_manifest(rootfs)

    def facts(self):
        """What the image will be, as modules return it."""
        return {"name": self.spec.name, "fingerprint": self.digest, "size": self.total,
                "kernel": self.kernel.as_dict(), "program": self.manifest["program"],
                "mounts": self.mounts.manifest, "shares": self.mounts.shares,
                "volumes": self.mounts.volumes, "libraries": self.libs,
                "readonly_rootfs": "readonly_rootfs" in self.manifest,  # as Nanos will see it
                "klibs": list(self.spec.klibs or [])}

    def manifest_text(self):
        return "\n".join(manifest.render(self.manifest)) + "\n"

    def write(self, fd):
        """Write the whole image to fd; returns the new rootfs UUID."""
        layout = image_layout.Layout(len(self.boot_data), self.total)
        root_uuid = os.urandom(16)
        set_size(fd, self.total)
        image_layout.write_boot_region(fd, self.boot_data, layout)
        write_filesystem(fd, self.bootfs, self.boot_log, os.urandom(16), "",
                         image_layout.BOOTFS_BYTES, base=layout.bootfs)
        write_filesystem(fd, self.rootfs, self.root_log, root_uuid, "", layout.rootfs_size,
                         base=layout.rootfs)
        return format_uuid(root_uuid)


def plan_image(home, spec, volumes, known_hashes=None, shares=True, unit=None, floor=0):
    """An ImageBuild for spec, with the kernel found in home and mounts checked against volumes
    (objects with name, uuid and path); shares=False refuses host directories (9p is local)."""
    validate_image_name(spec.name)
    kernel = kernels.resolve(home, spec.nanos_version, spec.kernel, spec.boot, spec.klib_dir)
    boot_data = kernel.boot_data  # read and checked by resolve, before anything is written
    bootfs = TreePlan()
    bootfs.add_file("/kernel", kernel.kernel)
    for klib in spec.klibs or []:
        if "/" in klib or not kernel.klibs_dir or \
                not os.path.isfile(os.path.join(kernel.klibs_dir, klib)):
            where = kernel.klibs_dir or "this kernel (it has no klibs)"
            raise OpsError("klib %r was not found in %s" % (klib, where))
        bootfs.add_file("/klib/" + klib, os.path.join(kernel.klibs_dir, klib))
    rootfs, mounts, libs = manifest.build_rootfs(spec, kernel.version, volumes, shares=shares)
    return ImageBuild(spec, kernel, boot_data, bootfs, rootfs, mounts, libs, known_hashes,
                      unit, floor)


class LocalImages(ImageProvider):
    def __init__(self, ops_dir=None):
        self.home = OpsHome(ops_dir)

    def _meta_path(self, name):
        return self.home.state("images", name + ".json")

    def metadata(self, name):
        """What the last build by this collection recorded (fingerprint, kernel, shares...)."""
        return self._load_meta(name)

    def _load_meta(self, name):
        try:
            with open(self._meta_path(name)) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def _save_meta(self, name, meta):
        write_state(self._meta_path(name), meta)  # owner-only, replaced atomically

    @staticmethod
    def _manifest_text(path):
        try:
            return "\n".join(manifest.render(read_image(path)["manifest"])) + "\n"
        except (OSError, TFSFormatError, OpsError):
            return "(not a readable image)\n"

    def path(self, name):
        return os.path.join(self.home.images, name)

    # -- reading --------------------------------------------------------------------------

    def describe(self, name):
        path = self.path(name)
        try:
            out = read_image(path)
        except (OSError, TFSFormatError, OpsError) as e:
            out = {"path": path, "error": "not a readable Nanos image: %s" % getattr(e, "msg", e)}
        out["name"] = name
        meta = self._load_meta(name)
        if meta:
            out["fingerprint"] = meta.get("fingerprint")
            out["kernel"] = meta.get("kernel")
            out["shares"] = meta.get("shares", {})
            out["volumes"] = meta.get("volumes", {})
            out["built_by_collection"] = meta.get("rootfs_uuid") == out.get("rootfs_uuid")
        else:
            out["built_by_collection"] = False
        return out

    def list_images(self, name=None):
        try:
            names = sorted(os.listdir(self.home.images))
        except FileNotFoundError:
            return []
        return [self.describe(n) for n in names
                if (name is None or n == name) and os.path.isfile(self.path(n))]

    # -- building -------------------------------------------------------------------------

    def present(self, spec, config=None, force=False, check_mode=False, want_diff=False):
        validate_image_name(spec.name)
        warnings = manifest.load_config(spec, config)
        meta = self._load_meta(spec.name)
        build = plan_image(self.home, spec, list_volume_files(self.home.volumes),
                           (meta or {}).get("hashes"))
        for volume_file in sorted(set(build.mounts.volumes.values())):
            # An image is only as good as what it mounts; current or not, it is refused, as the
            # guest would find a damaged volume missing or unreadable at boot.
            check_volume_file(volume_file, "mounted by image %r" % spec.name)
        path = self.path(spec.name)
        exists = os.path.exists(path)
        current_uuid = None
        if exists:
            try:  # one sector: the image's rootfs UUID, which only a rebuild changes
                current_uuid = read_identity(path, image_layout.filesystem_offsets(path)[1])[1]
            except (OSError, TFSFormatError, OpsError):
                pass
        up_to_date = (exists and meta is not None and not force and current_uuid is not None
                      and meta.get("fingerprint") == build.digest
                      and meta.get("rootfs_uuid") == current_uuid)
        before = after = ""
        if want_diff:
            before = self._manifest_text(path) if exists else ""
            after = build.manifest_text()
        image = dict(build.facts(), path=path)
        if up_to_date:
            image["size"] = os.path.getsize(path)
            return Outcome(False, image, before, after, warnings)
        why = "create" if not exists else ("rebuild (forced)" if force else "rebuild")
        used_kernel = build.kernel.version or build.kernel.kernel
        actions = ["%s %s (%s) with kernel %s" % (why, path, human_size(build.total), used_kernel)]
        if check_mode:
            return Outcome(True, image, before, after, warnings, actions)
        self.home.ensure_dir(self.home.images)
        with self.home.lock("images"):
            with self.home.staged_file(path) as fd:
                root_uuid = build.write(fd)
            self._save_meta(spec.name, {"fingerprint": build.digest, "rootfs_uuid": root_uuid,
                                        "kernel": build.kernel.as_dict(),
                                        "shares": build.mounts.shares,
                                        "volumes": build.mounts.volumes,
                                        "mounts": build.mounts.manifest, "hashes": build.hashes})
        return Outcome(True, image, before, after, warnings, actions)

    def absent(self, name, check_mode=False, want_diff=False):
        validate_image_name(name)
        path = self.path(name)
        if not os.path.exists(path):
            return Outcome(False, None)
        before = self._manifest_text(path) if want_diff else ""
        if not check_mode:
            with self.home.lock("images"):
                os.unlink(path)
                try:
                    os.unlink(self._meta_path(name))
                except OSError:
                    pass
        return Outcome(True, None, before, "", actions=["delete %s" % path])
