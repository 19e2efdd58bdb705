# -*- coding: utf-8 -*-
"""What the benchmarks share: the collection on sys.path, a kernel release, a compiled program."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
conftest = importlib.import_module("conftest")  # makes ansible_collections.unikernel.ops importable


def release(work):
    """NANOS_RELEASE_DIR (a real release: kernel.img, boot.img) or a stand-in made in work."""
    return os.environ.get("NANOS_RELEASE_DIR") or conftest.make_release(work, "0.0.0")


def real_kernel():
    return "NANOS_RELEASE_DIR" in os.environ


def compile_program(work, name, source, static=False):
    src = os.path.join(work, name + ".c")
    with open(src, "wb") as f:
        f.write(source)
    out = os.path.join(work, name)
    subprocess.run(["gcc", "-O1"] + (["-static"] if static else []) + ["-o", out, src], check=True)
    return out
