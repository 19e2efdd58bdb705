# -*- coding: utf-8 -*-
"""What the benchmarks share: the collection on sys.path, a kernel release, a compiled program,
and interleaved repeats (baseline, ours, baseline, ours, ...) reported as median and spread."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os
import statistics
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


# Every case runs at least this many pairs by default, so that one noisy run decides nothing.
REPEAT = 7


def spread(values, scale=1.0, fmt="%.3f", unit=""):
    """'median<unit> (min-max)' of values, each multiplied by scale."""
    v = [x * scale for x in values]
    return (fmt + "%s (" + fmt + "-" + fmt + ")") % (statistics.median(v), unit, min(v), max(v))


class Pairs:
    """Timings of ours and its baseline, measured pair by pair in one run.

    run() calls baseline() then ours() `repeat` times; each returns its own elapsed seconds
    (so that setup and cleanup stay outside the timed part). The ratio is ours / baseline,
    computed within each pair, so a slow moment of the machine weighs on both sides of it.
    """

    def __init__(self, name, baseline_name):
        self.name = name
        self.baseline_name = baseline_name
        self.ours = []
        self.baseline = []

    def run(self, baseline, ours, repeat):
        for dummy in range(repeat):
            self.baseline.append(baseline())
            self.ours.append(ours())
        return self

    @property
    def ratios(self):
        return [o / b for o, b in zip(self.ours, self.baseline)]

    @property
    def ratio(self):
        return statistics.median(self.ratios)

    def report(self, indent="  ", scale=1.0, unit="s", fmt="%.3f"):
        """Three lines: ours, the baseline, the ratio ours/baseline (median, min-max, pairs)."""
        width = max(len(self.name), len(self.baseline_name))
        unit = " " + unit
        print("%s%-*s %s" % (indent, width, self.name, spread(self.ours, scale, fmt, unit)))
        print("%s%-*s %s" % (indent, width, self.baseline_name,
                             spread(self.baseline, scale, fmt, unit)))
        print("%sratio %s / %s, pair by pair: %s   (median (min-max), %d interleaved pairs)"
              % (indent, self.name, self.baseline_name, spread(self.ratios, fmt="%.2f", unit="x"),
                 len(self.ratios)))
