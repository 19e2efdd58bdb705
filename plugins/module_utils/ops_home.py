# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ops home directory: where ops and this collection keep volumes, images and instances."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import fcntl
import json
import os
import re
import tempfile
import time

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

# Our own bookkeeping lives in a hidden folder that ops never lists (ops lists every file in
# images/ as an image and splits every file name in volumes/ on ':').
STATE_DIR = ".unikernel-ops"


def read_state(path, default=None):
    """A JSON state file of ours, or default when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def write_state(path, data):
    """A JSON state file, owner-only whatever the umask, replaced atomically."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        json.dump(data, f)
    os.rename(tmp, path)


def drop_state(path):
    try:
        os.unlink(path)
    except OSError:
        pass


_OWNER = re.compile(r"^\.staging-([0-9]+)\.([0-9]+)-")


def process_start(pid):
    """A process's start time (clock ticks since boot, /proc/PID/stat field 22) as text, or
    None when there is no such process (or only its zombie): with the pid it names one process,
    pids being reused."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie is gone, only not reaped yet
        return None
    return fields[19]


def staging_prefix():
    """The start of a staging file's name: says which process owns it, so that the next run
    can tell a killed run's leftovers from the files of a run still going."""
    pid = os.getpid()
    return ".staging-%d.%s-" % (pid, process_start(pid) or "0")


def set_size(target, size):
    """Truncate an fd or a path to size bytes. A size that one file cannot have on that
    filesystem (EFBIG) is the user's error, said as such, not a trace."""
    try:
        if isinstance(target, int):
            os.ftruncate(target, size)
        else:
            os.truncate(target, size)
    except OSError as e:
        if e.errno not in (errno.EFBIG, errno.EINVAL):
            raise
        raise OpsError("a size of %d bytes (%.1f GiB) is more than one file can have on the "
                       "filesystem of the ops home (%s); choose a smaller size"
                       % (size, size / float(1 << 30), e.strerror), size=size)


def default_ops_dir():
    """As ops: $OPS_HOME/.ops when OPS_HOME is set, else ~/.ops."""
    base = os.environ.get("OPS_HOME")
    if base:
        return os.path.join(base, ".ops")
    return os.path.join(os.path.expanduser("~"), ".ops")


class OpsHome:
    def check_source(self, source):
        """A volume's source may not be the ops home or hold it: the volume would hold every
        volume and image in it, and its own file while that is written."""
        src, home = os.path.realpath(source), os.path.realpath(self.root)
        if home == src or home.startswith(src.rstrip(os.sep) + os.sep):
            raise OpsError("source %s %s the ops home %s: a volume of it would hold the volumes "
                           "and images themselves; give a directory outside the ops home"
                           % (source, "is" if home == src else "holds", self.root))

    def __init__(self, ops_dir=None):
        self.root = os.path.abspath(os.path.expanduser(ops_dir or default_ops_dir()))

    @property
    def volumes(self):
        return os.path.join(self.root, "volumes")

    @property
    def images(self):
        return os.path.join(self.root, "images")

    @property
    def instances(self):
        return os.path.join(self.root, "instances")

    def state(self, *parts):
        return os.path.join(self.root, STATE_DIR, *parts)

    def ensure_dir(self, path, mode=0o755):
        try:
            os.makedirs(path, mode=mode, exist_ok=True)
        except OSError as e:
            raise OpsError("cannot create %s: %s" % (path, e.strerror))
        return path

    @contextlib.contextmanager
    def lock(self, name):
        """An exclusive lock across processes, so two runs never create the same thing twice."""
        path = os.path.join(self.ensure_dir(self.state(), 0o700), name + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _tmp_dir(self):
        """Our tmp folder; leftovers of killed runs older than a day are removed."""
        tmpdir = self.ensure_dir(self.state("tmp"), 0o700)
        self._clean_leftovers(tmpdir)
        return tmpdir

    @staticmethod
    def _clean_leftovers(tmpdir):
        """Remove the staging files of runs that are gone: a name that says its owner (pid and
        start time, see staging_prefix) is removed once that process is no longer there; an
        older name without one once it is a day old."""
        cutoff = time.time() - 24 * 3600
        try:
            names = os.listdir(tmpdir)
        except OSError:
            return
        for name in names:
            if not name.startswith(".staging-"):
                continue
            path = os.path.join(tmpdir, name)
            owner = _OWNER.match(name)
            try:
                if owner:
                    gone = process_start(int(owner.group(1))) != owner.group(2)
                else:
                    gone = os.lstat(path).st_mtime < cutoff
                if gone:
                    os.unlink(path)
            except OSError:
                pass

    def sweep_leftovers(self):
        """What a killed run left in this ops home (its staging files), removed; run by every
        module before it does anything. An ops home that does not exist is left alone."""
        for folder in (self.state("tmp"), self.volumes, self.images):
            if os.path.isdir(folder):
                self._clean_leftovers(folder)

    def _staging_dir(self, final_path):
        """Our tmp folder, or the target's own folder when that is on another filesystem
        (a rename cannot cross filesystems)."""
        tmpdir = self._tmp_dir()
        target_dir = os.path.dirname(final_path)
        if os.stat(tmpdir).st_dev != os.stat(target_dir).st_dev:
            self._clean_leftovers(target_dir)
            tmpdir = target_dir
        return tmpdir

    @contextlib.contextmanager
    def staged_file(self, final_path, mode=0o644):
        """A temp file on the same filesystem, renamed onto final_path only if the block succeeds.

        Yields the open fd. On any error the temp file is removed and final_path is untouched.
        When it replaces an existing file, the data is flushed to disk first, so a crash cannot
        leave a half-written file where a good one was.
        """
        fd, tmp = tempfile.mkstemp(prefix=staging_prefix(), suffix=".raw",
                                   dir=self._staging_dir(final_path))
        try:
            os.fchmod(fd, mode)
            yield fd
            if os.path.exists(final_path):
                os.fsync(fd)
            os.close(fd)
            fd = None
            os.rename(tmp, final_path)
        except BaseException:
            if fd is not None:
                os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    @contextlib.contextmanager
    def scratch_file(self):
        """A temp file in our tmp folder that is always removed: bytes built for an upload."""
        fd, tmp = tempfile.mkstemp(prefix=staging_prefix(), suffix=".raw", dir=self._tmp_dir())
        try:
            yield fd
        finally:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
