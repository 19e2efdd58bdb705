# -*- coding: utf-8 -*-
"""Make the checkout importable as ansible_collections.unikernel.ops, as Ansible imports it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_path():
    # Already inside .../ansible_collections/unikernel/ops (ansible-test's layout)?
    parts = ROOT.split(os.sep)
    if parts[-3:-1] == ["ansible_collections", "unikernel"] and parts[-1] == "ops":
        return os.sep.join(parts[:-3])
    base = os.path.join(ROOT, ".build", "collections")
    link = os.path.join(base, "ansible_collections", "unikernel", "ops")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.join("..", "..", "..", ".."), link)
    return base


sys.path.insert(0, _collections_path())
