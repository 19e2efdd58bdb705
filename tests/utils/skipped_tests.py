# -*- coding: utf-8 -*-
"""A pytest plugin that writes the node id of every skipped test, one a line, to the file named
by UOPS_SKIPPED_TESTS: ./dev runs the unit tests as an unprivileged user, then those that
skipped there (some need root) again as root.

  PYTHONPATH=tests/utils UOPS_SKIPPED_TESTS=FILE python -m pytest -p skipped_tests ...
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os


def pytest_runtest_logreport(report):
    path = os.environ.get("UOPS_SKIPPED_TESTS")
    if path and report.skipped and not hasattr(report, "wasxfail"):  # an xfail is reported as skipped
        with open(path, "a") as f:
            f.write(report.nodeid + "\n")
