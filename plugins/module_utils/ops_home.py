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
import stat
import tempfile
import time

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

# Our own bookkeeping lives in a hidden folder that ops never lists (ops lists every file in
# images/ as an image and splits every file name in volumes/ on ':').
STATE_DIR = ".unikernel-ops"


# Volume and image files: what Nanos mkfs creates its output with (tools/mkfs.c:
# open(..., O_CREAT|O_RDWR|O_TRUNC, 0644)), less the umask.
VOLUME_MODE = 0o644


def current_umask():
    """This process's umask, read without changing it where Linux shows it (/proc/self/status);
    elsewhere set and put back at once."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _make_dirs(path, mode, exact):
    """The missing folders of path, each made with mode (as Go's MkdirAll, which ops uses;
    Python's makedirs gives the parents 0777) less the umask, but always usable by their owner;
    exact: mode whatever the umask. Returns them."""
    missing = []
    folder = path
    while not os.path.isdir(folder):
        missing.append(folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            break
        folder = parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, mode)
        except FileExistsError:
            if not os.path.isdir(folder):
                raise
            continue  # another run made it at the same time: its mode is its own
        if exact:
            os.chmod(folder, mode)  # mkdir's mode is less the umask
        elif stat.S_IMODE(os.stat(folder).st_mode) & 0o700 != 0o700:
            # a umask such as 0277 would leave a folder we made that we cannot fill ourselves
            os.chmod(folder, (mode & ~current_umask()) | 0o700)
    return missing


def private_dirs(path):
    """A folder of our bookkeeping, owner-only (0700) whatever the umask, with its missing
    parents. The folders from the state folder (STATE_DIR) down are made 0700 even when they
    exist (an older run may have made them under another umask); the ops home above it is an
    ordinary folder (0755 less the umask, as ops makes it)."""
    path = os.path.abspath(path)
    parts = path.split(os.sep)
    first = parts.index(STATE_DIR) + 1 if STATE_DIR in parts else len(parts)
    _make_dirs(os.sep.join(parts[:first - 1]) or os.sep, 0o755, False)
    made = _make_dirs(path, 0o700, True)
    for i in range(first, len(parts) + 1):
        folder = os.sep.join(parts[:i])
        if folder in made:
            continue
        st = os.lstat(folder)  # a link is left alone: chmod would change what it points to
        if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != 0o700 \
                and st.st_uid == os.geteuid():
            os.chmod(folder, 0o700)
    return path


def read_state(path, default=None):
    """A JSON state file of ours, or default when it is missing or unreadable."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def write_state(path, data):
    """A JSON state file, owner-only (0600, its folders 0700) whatever the umask, replaced
    atomically."""
    private_dirs(os.path.dirname(path))
    replace_json(path, data)


def replace_json(path, data):
    """path holds data as JSON, owner-only (0600), replaced atomically in its folder. The temp
    file's name starts with '.' and names its owner, so a killed run's one is swept."""
    with _replacing(path, os.path.dirname(path), ".json") as fd:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", closefd=False) as f:  # _replacing closes the fd
            json.dump(data, f)


@contextlib.contextmanager
def _replacing(final_path, folder, suffix):
    """A temp file in folder, named by staging_prefix, renamed onto final_path only if the block
    succeeds. Yields the open fd. On any error the temp file is removed and final_path is
    untouched. When it replaces an existing file, the data is flushed to disk first, so a crash
    cannot leave a half-written file where a good one was."""
    fd, tmp = tempfile.mkstemp(prefix=staging_prefix(), suffix=suffix, dir=folder)
    renamed = False
    try:
        yield fd
        if os.path.exists(final_path):
            os.fsync(fd)
        os.close(fd)
        fd = None
        try:
            os.rename(tmp, final_path)
        except OSError as e:  # a folder this user may not write: the staging one could be
            raise OpsError("cannot write %s: %s" % (final_path, e.strerror))
        renamed = True
    finally:  # not an except clause: a generator closed early must clean up too
        if fd is not None:
            os.close(fd)
        if not renamed:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def drop_state(path):
    try:
        os.unlink(path)
    except OSError:
        pass


_OWNER = re.compile(r"^\.staging-([0-9]+)\.([0-9]+)-")


def proc_stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (the state letter first), or None
    when there is no such process. The name is cut at the last ')' since it may hold any."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)
    except OSError:
        return None
    return parts[1].split() if len(parts) == 2 else None


def process_start(pid):
    """A process's start time (clock ticks since boot, /proc/PID/stat field 22) as text, or
    None when there is no such process (or only its zombie): with the pid it names one process,
    pids being reused."""
    fields = proc_stat_fields(pid)
    if not fields or len(fields) < 20 or fields[0] in ("Z", "X"):  # a zombie: gone, not reaped
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
        """A folder with its missing parents, made with mode less the umask; the state folder and
        those in it always 0700 (private_dirs)."""
        full = os.path.abspath(path)
        try:
            if full == self.state() or full.startswith(self.state() + os.sep):
                private_dirs(full)
            else:
                _make_dirs(full, mode, False)
        except OSError as e:
            raise OpsError("cannot create %s: %s" % (path, e.strerror))
        return path

    @contextlib.contextmanager
    def lock(self, name):
        """An exclusive lock across processes, so two runs never create the same thing twice."""
        path = os.path.join(self.ensure_dir(self.state(), 0o700), name + ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)  # a umask such as 0277 would leave a lock no later run can open
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
        module before it does anything. An ops home that does not exist is left alone.
        Volumes and images are staged in the tmp folder (or beside their file); state files
        beside theirs, anywhere in the state folder."""
        for folder in (self.volumes, self.images, self.instances):
            if os.path.isdir(folder):
                self._clean_leftovers(folder)
        for folder, dirs, _files in os.walk(self.state()):
            dirs.sort()
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

    @staticmethod
    def _final_mode(final_path, fd):
        """Give the staged file what the file it replaces has (mode, and owner when we may), as
        mkfs's and ops' open(O_TRUNC) of an existing file keeps them: a volume made private
        stays private through a rebuild. A new file gets VOLUME_MODE less the umask."""
        try:
            st = os.stat(final_path)
        except FileNotFoundError:
            os.fchmod(fd, VOLUME_MODE & ~current_umask())
            return
        if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
            except PermissionError:
                pass  # not root: the new file is ours, as any file we create
        os.fchmod(fd, stat.S_IMODE(st.st_mode) & 0o777)

    @contextlib.contextmanager
    def staged_file(self, final_path):
        """A temp file on the same filesystem, renamed onto final_path only if the block succeeds
        (see _replacing). Yields the open fd. The file gets the mode of the file it replaces,
        else VOLUME_MODE less the umask.
        """
        with _replacing(final_path, self._staging_dir(final_path), ".raw") as fd:
            self._final_mode(final_path, fd)
            yield fd

    @contextlib.contextmanager
    def scratch_file(self):
        """A temp file in our tmp folder that is always removed: bytes built for an upload."""
        fd, tmp = tempfile.mkstemp(prefix=staging_prefix(), suffix=".raw", dir=self._tmp_dir())
        try:
            os.fchmod(fd, 0o600)  # mkstemp's 0600 is less the umask
            yield fd
        finally:
            os.close(fd)
            try:
                os.unlink(tmp)
            except OSError:
                pass
