# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an image needs to know about its program: is it an ELF Nanos can run, and which shared
libraries (and dynamic loader) must go into the image with it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import struct
import subprocess

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

MACHINES = {62: "x86_64", 183: "aarch64"}
OTHER_MACHINES = {3: "i386", 40: "arm", 243: "riscv"}
PT_LOAD, PT_INTERP = 1, 3
ET_EXEC, ET_DYN = 2, 3
# A loader path longer than this is no path (PATH_MAX); reading it whole could take any memory.
INTERP_MAX = 4096
# The images built here boot with boot.img's BIOS stage1/stage2: the pc platform, x86_64 only.
KERNEL_MACHINE = 62
WHAT_A_KERNEL_IS = ("a Nanos kernel.img is the x86_64 ELF executable of a Nanos release "
                    "(kernel.img in nanos-release-linux-<version>.tar.gz)")


class ElfInfo:
    def __init__(self, path, machine, interp, kind):
        self.path = path
        self.machine = machine  # "x86_64" or "aarch64"
        self.interp = interp  # the dynamic loader's path, None for a static program
        self.kind = kind  # "executable" or "shared object (PIE)"

    @property
    def dynamic(self):
        return self.interp is not None


# What can be wrong with the first 64 bytes of a file meant to be an executable Nanos runs (a
# program or the kernel); each caller words it its own way.
EMPTY, NOT_ELF, SHORT, NOT_ELF64LE, NOT_EXECUTABLE = ("empty", "not ELF", "short", "not ELF64LE",
                                                      "not an executable")
_PROGRAM_FAULTS = {
    EMPTY: "is not an ELF executable",
    NOT_ELF: "is not an ELF executable",
    SHORT: "is a damaged ELF file",
    NOT_ELF64LE: "is not a 64-bit little-endian ELF (Nanos runs only those)",
    NOT_EXECUTABLE: "is an ELF object or core file, not an executable",
}
_KERNEL_FAULTS = {
    EMPTY: "it is empty",
    NOT_ELF: "it is not an ELF file",
    SHORT: "it is too short for an ELF header (%d bytes)",
    NOT_ELF64LE: "it is not a 64-bit little-endian ELF",
    NOT_EXECUTABLE: "it is an ELF object or core file, not an executable",
}


def _header_fault(head):
    """What makes head (a file's first 64 bytes) no ELF64 little-endian executable or PIE
    header: one of the faults above, or None."""
    if not head:
        return EMPTY
    if head[:4] != b"\x7fELF":
        return NOT_ELF
    if len(head) < 64:
        return SHORT
    if head[4] != 2 or head[5] != 1:
        return NOT_ELF64LE
    e_type, = struct.unpack_from("<H", head, 16)
    if e_type not in (ET_EXEC, ET_DYN):
        return NOT_EXECUTABLE
    return None


def inspect(path):
    """Read the ELF header and program headers; refuse what Nanos cannot run."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            fault = _header_fault(head)
            if fault:
                raise OpsError("program %s %s" % (path, _PROGRAM_FAULTS[fault]))
            e_type, e_machine = struct.unpack_from("<HH", head, 16)
            if e_machine not in MACHINES:
                raise OpsError("program %s is for ELF machine %d; Nanos runs x86_64 and aarch64"
                               % (path, e_machine))
            interp = None
            for p_type, p_offset, p_filesz in _program_headers(f, head):
                if p_type == PT_INTERP:
                    if p_filesz > INTERP_MAX:
                        raise struct.error("PT_INTERP of %d bytes" % p_filesz)
                    f.seek(p_offset)
                    interp = f.read(p_filesz).rstrip(b"\0").decode("utf-8", "replace")
    except (OSError, struct.error, OverflowError, ValueError) as e:  # an offset past 2**63
        if isinstance(e, OSError):
            raise OpsError("cannot read program %s: %s" % (path, e.strerror or e))
        raise OpsError("program %s is a damaged ELF file" % path)
    kind = "executable" if e_type == ET_EXEC else "shared object (PIE)"
    return ElfInfo(path, MACHINES[e_machine], interp, kind)


def _program_headers(f, head):
    """[(p_type, p_offset, p_filesz)] of an ELF64 little-endian file; struct.error when the
    table is not in the file."""
    phoff, = struct.unpack_from("<Q", head, 32)
    phentsize, phnum = struct.unpack_from("<HH", head, 54)
    if phnum and phentsize < 56:
        raise struct.error("program headers of %d bytes" % phentsize)
    f.seek(phoff)
    table = f.read(phentsize * phnum)
    out = []
    for i in range(phnum):
        p_type, dummy, p_offset = struct.unpack_from("<IIQ", table, i * phentsize)
        p_filesz, = struct.unpack_from("<Q", table, i * phentsize + 32)
        out.append((p_type, p_offset, p_filesz))
    return out


def kernel_problem(path):
    """Why the file at path cannot be a Nanos kernel (text), or None. A cheap look: the ELF
    header and program headers of the stripped kernel.elf that Nanos ships as kernel.img
    (64-bit little-endian, x86_64, executable or PIE, loadable, no dynamic loader)."""
    with open(path, "rb") as f:
        head = f.read(64)
        fault = _header_fault(head)
        if fault == SHORT:
            return _KERNEL_FAULTS[SHORT] % len(head)
        if fault:
            return _KERNEL_FAULTS[fault]
        e_machine, = struct.unpack_from("<H", head, 18)
        if e_machine != KERNEL_MACHINE:
            name = MACHINES.get(e_machine) or OTHER_MACHINES.get(e_machine) or "machine %d" % e_machine
            return "it is an ELF for %s, not x86_64" % name
        try:
            headers = _program_headers(f, head)
        except (struct.error, OverflowError, ValueError, OSError):  # ValueError: seek past 2**63
            return "its ELF program header table is damaged"
    types = [h[0] for h in headers]
    if PT_INTERP in types:
        return "it is a dynamically linked program (it names a dynamic loader), not a kernel"
    if PT_LOAD not in types:
        return "it has no loadable segment"
    return None


def check_kernel(path, label=None):
    """Refuse a kernel.img that is not a Nanos kernel; label: what to call the file in the
    message (the path by default)."""
    label = label or "kernel %s" % path
    try:
        problem = kernel_problem(path)
    except OSError as e:
        raise OpsError("cannot read %s: %s" % (label, e.strerror or e))
    if problem:
        raise OpsError("%s is not a Nanos kernel: %s; %s" % (label, problem, WHAT_A_KERNEL_IS))
    return path


def trace_argv(interp, program):
    """The dynamic loader's own listing of what it would load; the program itself never runs."""
    return [interp, "--list", program]


# Running the loader named in PT_INTERP executes it: only system loaders are run.
_SYSTEM_LOADER = re.compile(r"^/(usr/)?lib(32|64|x32)?/([A-Za-z0-9_.-]+/)?ld-(linux|musl)[A-Za-z0-9_.-]*\.so[0-9.]*$")
_LIB_RE = re.compile(r"^\s*(\S+)\s+=>\s+(not found|\S+)(?:\s+\(0x[0-9a-f]+\))?\s*$")
_DIRECT_RE = re.compile(r"^\s*(/\S+)\s+\(0x[0-9a-f]+\)\s*$")


def parse_trace(output):
    """(paths to copy, names not found) from the loader's --list output."""
    found, missing = [], []
    for line in output.splitlines():
        m = _LIB_RE.match(line)
        if m:
            if m.group(2) == "not found":
                missing.append(m.group(1))
            elif m.group(2).startswith("/"):
                found.append(m.group(2))
            continue
        m = _DIRECT_RE.match(line)
        if m:
            found.append(m.group(1))  # the loader itself; vdso lines have no path
    return found, missing


def shared_libraries(info, run=subprocess.run):
    """Absolute host paths of every shared object the program loads, the loader included."""
    if not info.dynamic:
        return []
    if not _SYSTEM_LOADER.match(info.interp):
        raise OpsError("program %s asks for the dynamic loader %s, which is not a system loader "
                       "(/lib*/ or /usr/lib*/ ld-linux or ld-musl); it is not run"
                       % (info.path, info.interp))
    if not os.path.isfile(info.interp):
        raise OpsError("program %s needs the dynamic loader %s, which this host does not have; "
                       "build the program statically or on a host like the target"
                       % (info.path, info.interp))
    argv = trace_argv(info.interp, info.path)
    try:
        proc = run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60, check=False,
                   env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise OpsError("listing the shared libraries of %s failed: %s" % (info.path, e), argv=argv)
    out = proc.stdout.decode("utf-8", "replace")
    found, missing = parse_trace(out)
    if missing:
        raise OpsError("program %s needs shared libraries this host does not have: %s"
                       % (info.path, ", ".join(missing)), argv=argv)
    if proc.returncode != 0:
        raise OpsError("listing the shared libraries of %s failed: %s"
                       % (info.path, proc.stderr.decode("utf-8", "replace").strip()), argv=argv)
    if info.interp not in found:
        found.append(info.interp)
    return found
