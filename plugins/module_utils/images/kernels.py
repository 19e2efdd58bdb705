# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Nanos kernels in the ops home: finding one as ops does, and installing a release tarball
(a file at hand, a URL, or a release of the store ops gets them from: see releases.py).

Layout, as ops keeps it: <home>/<version>/{kernel.img, boot.img, bootx64.efi, klibs/},
<home>/latest.txt naming the installed release, nightly builds in <home>/nightly/ with the
timestamp of the installed build in <home>/nightly/nanos-nightly-linux.timestamp.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json
import os
import re
import shutil
import tarfile
import tempfile

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.images import releases
from ansible_collections.unikernel.ops.plugins.module_utils.images.elf import check_kernel
from ansible_collections.unikernel.ops.plugins.module_utils.images.layout import read_boot_region
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import write_state
from ansible_collections.unikernel.ops.plugins.module_utils.tfs.digest import sha256_file

HOW_TO_GET_ONE = ("install a release with the unikernel.ops.ops_kernel module (version: latest, "
                  "from ops' release store or a mirror of it given as release_url; or src: a "
                  "nanos-release-linux-<version>.tar.gz URL or file), or with `ops update`")
_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
RELEASE_MEMBERS = ("kernel.img", "boot.img")
VERSION_MAX = 128  # a folder name, and <version>.json beside it, well within NAME_MAX


class Kernel:
    """The files an image is built from."""

    def __init__(self, version, kernel, boot, boot_data, klibs_dir=None):
        self.version = version  # None for explicit paths
        self.kernel = kernel
        self.boot = boot
        self.boot_data = boot_data  # boot.img's bytes as checked here: an image is built from them
        self.klibs_dir = klibs_dir

    def as_dict(self):
        return {"version": self.version, "kernel": self.kernel, "boot": self.boot,
                "klibs": self.klibs_dir}


# Folders of the ops home that are not kernel releases.
RESERVED = ("volumes", "images", "instances", "packages", "manifests", "tmp")


def validate_version(version):
    if not version or not _VERSION_RE.match(version) or version in (".", ".."):
        raise OpsError("Nanos version %r is not valid (letters, digits, '.', '_', '+', '-')"
                       % (version,))
    if len(version) > VERSION_MAX:
        raise OpsError("Nanos version %r... is %d characters long: a version names a folder of "
                       "the ops home and has at most %d" % (version[:20], len(version), VERSION_MAX))
    if version.lower() in RESERVED:
        raise OpsError("%r is a folder of the ops home, not a Nanos version" % (version,))
    return version


def installed_version(home):
    """The release latest.txt names, or None."""
    try:
        with open(os.path.join(home.root, "latest.txt")) as f:
            return f.read().strip() or None
    except OSError:
        return None


def resolve(home, nanos_version=None, kernel=None, boot=None, klibs=None):
    """The kernel to build with: explicit paths win, else <home>/<version> as ops looks."""
    if kernel or boot:
        if not (kernel and boot):
            raise OpsError("kernel and boot are given together (the kernel image and the boot "
                           "sector image of the same Nanos release)")
        for what, path in (("kernel", kernel), ("boot", boot)):
            if not os.path.exists(path):
                raise OpsError("%s %s does not exist" % (what, path))
            if not os.path.isfile(path):
                raise OpsError("%s %s is not a file: give the %s.img of a Nanos release"
                               % (what, path, what))
        check_kernel(kernel)
        boot_data = read_boot_region(boot, "boot %s" % boot)
        if klibs and not os.path.isdir(klibs):
            raise OpsError("klibs %s is not a directory" % klibs)
        return Kernel(nanos_version, kernel, boot, boot_data, klibs)
    looked = []
    version = nanos_version or installed_version(home)
    if version is None:
        raise OpsError("no Nanos kernel is installed: %s has no latest.txt and no nanos_version "
                       "was given; %s" % (home.root, HOW_TO_GET_ONE))
    validate_version(version)
    folder = os.path.join(home.root, version)
    looked.append(folder)
    kpath, bpath = os.path.join(folder, "kernel.img"), os.path.join(folder, "boot.img")
    if not (os.path.isfile(kpath) and os.path.isfile(bpath)):
        raise OpsError("no Nanos kernel %s found: looked for kernel.img and boot.img in %s; %s"
                       % (version, ", ".join(looked), HOW_TO_GET_ONE))
    # Files of the ops home can be damaged too (an interrupted `ops update`): named, not used.
    check_kernel(kpath, "kernel %s of Nanos %s" % (kpath, version))
    boot_data = read_boot_region(bpath, "boot %s of Nanos %s" % (bpath, version))
    kdir = klibs or os.path.join(folder, "klibs")
    return Kernel(version, kpath, bpath, boot_data, kdir if os.path.isdir(kdir) else None)


def parse_checksum(checksum):
    """'sha256:<hex>' (as ansible.builtin.get_url) or a bare sha256 hex digest."""
    if not checksum:
        return None
    algo, _sep, digest = checksum.rpartition(":")
    algo = algo or "sha256"
    if algo.lower() != "sha256" or not re.match(r"^[0-9a-fA-F]{64}$", digest):
        raise OpsError("checksum %r is not valid: use sha256:<64 hex digits>" % checksum)
    return digest.lower()


def _safe_extract(tar_path, dest, label=None):
    """Extract regular files and directories only, refusing anything that leaves dest.
    label: what to call the tarball in messages (its URL), tar_path by default."""
    label = label or tar_path
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            for member in tar.getmembers():
                name = os.path.normpath(member.name)
                if name.startswith(("/", "..")) or name == ".." or "/../" in name:
                    raise OpsError("release tarball member %r points outside its folder"
                                   % member.name)
                if member.isdir():
                    os.makedirs(os.path.join(dest, name), mode=0o755, exist_ok=True)
                elif member.isfile():
                    target = os.path.join(dest, name)
                    os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                    with tar.extractfile(member) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out, 1024 * 1024)
                    os.chmod(target, 0o755 if member.mode & 0o111 else 0o644)
                # links and devices in a kernel release are skipped: none are expected
    except (tarfile.TarError, EOFError) as e:
        raise OpsError("%s is not a readable tarball: %s" % (label, e))
    # Older releases call the kernel stage3.img; ops renames it.
    stage3 = os.path.join(dest, "stage3.img")
    if not os.path.exists(os.path.join(dest, "kernel.img")) and os.path.exists(stage3):
        os.rename(stage3, os.path.join(dest, "kernel.img"))
    missing = [m for m in RELEASE_MEMBERS if not os.path.isfile(os.path.join(dest, m))]
    if missing:
        raise OpsError("%s is not a Nanos release: it has no %s" % (label, ", ".join(missing)))
    # Checked before the release is put in place: a tarball of other files installs nothing.
    check_kernel(os.path.join(dest, "kernel.img"), "the kernel.img of release tarball %s" % label)
    read_boot_region(os.path.join(dest, "boot.img"), "the boot.img of release tarball %s" % label)


def _is_url(src):
    return re.match(r"^[a-z][a-z0-9+.-]*://", src) is not None


class ReleaseStore:
    """Install and remove Nanos releases in the ops home, with a record of what was installed."""

    def __init__(self, home):
        self.home = home

    def _record(self, version):
        return self.home.state("kernels", version + ".json")

    def _locked(self, check_mode):
        """The kernels lock; check mode writes nothing, not even a lock file."""
        return contextlib.nullcontext() if check_mode else self.home.lock("kernels")

    def installed(self):
        """Versions with a kernel.img and boot.img in their folder, sorted."""
        try:
            names = os.listdir(self.home.root)
        except OSError:
            return []
        return sorted(n for n in names if not n.startswith(".") and all(
            os.path.isfile(os.path.join(self.home.root, n, m)) for m in RELEASE_MEMBERS))

    def status(self, version):
        folder = os.path.join(self.home.root, version)
        present = all(os.path.isfile(os.path.join(folder, m)) for m in RELEASE_MEMBERS)
        record = None
        try:
            with open(self._record(version)) as f:
                record = json.load(f)
        except (OSError, ValueError):
            pass
        return folder, present, record

    def install(self, version, src, download, checksum=None, make_latest=True, force=False,
                check_mode=False, stamp=None):
        """Returns (changed, actions). download(url, dest_path) fetches a URL to a file.
        stamp: (file name, text) the release folder must hold to count as the same build (the
        nightly build's timestamp); written into the folder with the release."""
        validate_version(version)
        digest = parse_checksum(checksum)
        with self._locked(check_mode):
            return self._install(version, src, download, digest, make_latest, force, check_mode,
                                 stamp)

    @staticmethod
    def _stamp_matches(folder, stamp):
        if stamp is None:
            return True
        try:
            with open(os.path.join(folder, stamp[0])) as f:
                return f.read().strip() == stamp[1].strip()
        except OSError:
            return False

    def _install(self, version, src, download, digest, make_latest, force, check_mode, stamp):
        folder, present, record = self.status(version)
        if os.path.exists(folder) and not present and record is None:
            raise OpsError("%s exists and is not a Nanos release; it is left as it is" % folder)
        actions = []
        same = (present and (digest is None or (record or {}).get("sha256") == digest)
                and self._stamp_matches(folder, stamp))
        if not same or force:
            actions.append("install Nanos %s from %s into %s" % (version, src, folder))
        latest = installed_version(self.home)
        if make_latest and latest != version:
            actions.append("set latest.txt to %s (was %s)" % (version, latest))
        if check_mode and (not same or force) and not _is_url(src):
            self._check_local(src, digest)  # a plan that would fail fails now
        if check_mode or not actions:
            return bool(actions), actions
        self.home.ensure_dir(self.home.root)
        if not same or force:
            got = self._replace(version, folder, src, download, digest, stamp)
            write_state(self._record(version), {"sha256": got, "src": src})
        if make_latest and latest != version:
            # staged as volumes are: a killed run's temp file is swept by the next run
            with self.home.staged_file(os.path.join(self.home.root, "latest.txt")) as fd:
                os.write(fd, version.encode())  # ops writes it with no newline
        return True, actions

    @staticmethod
    def _checked_tarball(tarball, digest, src):
        """The sha256 of the tarball fetched from (or given as) src, checked against digest."""
        if not os.path.isfile(tarball):
            raise OpsError("release tarball %s does not exist" % src)
        got = sha256_file(tarball)
        if digest is not None and got != digest:
            raise OpsError("release tarball %s has sha256 %s, not the expected %s; "
                           "nothing was installed" % (src, got, digest))
        return got

    def _check_local(self, src, digest):
        """Check mode: a local tarball checked as an install checks it, unpacked in a temporary
        folder outside the ops home (which check mode leaves untouched) and removed."""
        self._checked_tarball(src, digest, src)
        tmpdir = tempfile.mkdtemp(prefix="unikernel-ops-release-check-")
        try:
            _safe_extract(src, tmpdir)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _replace(self, version, folder, src, download, digest, stamp):
        """Fetch, check and unpack the tarball in an owner-only temporary folder of the ops home,
        then put the release folder in place whole; the temporary folder never outlives this."""
        tmpdir = tempfile.mkdtemp(prefix=".release-",
                                  dir=self.home.ensure_dir(self.home.state("tmp"), 0o700))
        try:
            tarball = src
            if _is_url(src):
                tarball = os.path.join(tmpdir, "release.tar.gz")
                download(src, tarball)
            got = self._checked_tarball(tarball, digest, src)
            staged = os.path.join(tmpdir, "release")
            os.mkdir(staged, 0o755)
            _safe_extract(tarball, staged, src)
            if stamp is not None:
                fd = os.open(os.path.join(staged, stamp[0]), os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(stamp[1])
            if os.path.isdir(folder):
                os.rename(folder, os.path.join(tmpdir, "old"))  # replaced whole, never half-written
            os.rename(staged, folder)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return got

    def remove(self, version, check_mode=False):
        validate_version(version)
        with self._locked(check_mode):
            return self._remove(version, check_mode)

    def _remove(self, version, check_mode):
        folder, present, record = self.status(version)
        if not os.path.isdir(folder):
            return False, []
        if not present and record is None:
            raise OpsError("%s is not a Nanos release; it is left as it is" % folder)
        was_latest = installed_version(self.home) == version
        actions = ["remove %s" % folder]
        if was_latest:
            actions.append("remove latest.txt (it named %s)" % version)
        if not check_mode:
            shutil.rmtree(folder)
            doomed = [self._record(version)]
            if was_latest:
                doomed.append(os.path.join(self.home.root, "latest.txt"))
            for path in doomed:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        return True, actions


def _hint(home, release_url):
    """What a user can do when the release store cannot be read."""
    hint = ("release_url is %s; where it cannot be reached, point release_url at a mirror laid "
            "out as ops' store, or give src" % releases.location(release_url))
    have = installed_version(home)
    if have:
        hint += " (Nanos %s is installed already: latest.txt names it)" % have
    return hint


def _remote_text(fetcher, url, what, home, release_url):
    try:
        return fetcher.read_text(url)
    except OpsError as e:
        raise OpsError("cannot read %s: %s; %s" % (what, e.msg, _hint(home, release_url)),
                       **e.details)


def ensure(home, version, state="present", src=None, release_url=None, checksum=None,
           latest=True, force=False, timeout=60, validate_certs=True, check_mode=False):
    """The ops_kernel task: a release in the ops home (or not), as a result dict.

    version: a version; "latest", the one latest.txt at release_url names (read even in check
    mode); or "nightly", the nightly build, installed into <home>/nightly with its timestamp, as
    ops does, and never named in latest.txt. Without src, tarballs come from release_url and
    only when the release is missing (or another build, or force)."""
    store = ReleaseStore(home)
    result = dict(changed=False, actions=[], kernel=None, version=version, download=None)
    if state == "absent":
        if version == releases.LATEST:
            raise OpsError("state=absent removes one release: give its version (latest is the "
                           "one the release store names, not necessarily the one installed)")
        result["changed"], result["actions"] = store.remove(version, check_mode=check_mode)
        return result
    parse_checksum(checksum)  # a bad one fails before the store is asked anything
    fetcher = releases.Fetcher(timeout, validate_certs)
    release_url = releases.location(release_url)
    stamp = None
    if version == releases.LATEST:
        if src:
            raise OpsError("src is the tarball of one release: give its version with it, "
                           "not latest")
        version = _remote_text(fetcher, releases.latest_url(release_url),
                               "the latest Nanos version", home, release_url)
        if version in (releases.LATEST, releases.NIGHTLY) or not _VERSION_RE.match(version):
            raise OpsError("%s names %r, which is not a Nanos version"
                           % (releases.latest_url(release_url), version[:80]))
        validate_version(version)
    else:
        validate_version(version)
    if version == releases.NIGHTLY:
        latest = False  # ops never names nightly in latest.txt (it reads latest.txt as a number)
        if not src:
            built = _remote_text(fetcher, releases.nightly_stamp_url(release_url),
                                 "the nightly build's timestamp", home, release_url)
            stamp = (releases.NIGHTLY_STAMP, built)
            src = releases.nightly_tarball_url(release_url)
    if src and _is_url(src):
        releases.check_url(src, "src")
    src = src or releases.release_tarball_url(release_url, version)

    def download(url, dest):
        try:
            fetcher.download(url, dest)
        except OpsError as e:
            where = "; " + _hint(home, release_url) if url.startswith(release_url) else ""
            raise OpsError("downloading Nanos %s failed: %s%s" % (version, e.msg, where),
                           **e.details)

    present = store.status(version)[1]
    result["changed"], result["actions"] = store.install(
        version, src, download, checksum, latest, force, check_mode, stamp)
    result["version"] = version
    if not check_mode or present:
        result["kernel"] = resolve(home, version).as_dict()
    if fetcher.downloads:
        result["download"] = fetcher.downloads[-1]
    return result
