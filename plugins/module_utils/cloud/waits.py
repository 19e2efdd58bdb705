# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded waits for what a cloud call started: every wait ends, with a message saying what it
waited for and what it saw last."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError


def wait_until(probe, what, timeout, first=0.2, longest=5.0):
    """Call probe() until it returns (True, value); probe returns (done, seen).

    Raises OpsError after `timeout` seconds naming `what` and the last thing seen."""
    deadline = time.monotonic() + max(0, timeout)
    delay = first
    while True:
        done, seen = probe()
        if done:
            return seen
        if time.monotonic() >= deadline:
            raise OpsError("timed out after %ds waiting for %s (last seen: %s); raise "
                           "wait_timeout, or look at the resource in the cloud console"
                           % (timeout, what, seen), waited_for=what, last_seen=str(seen))
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, longest)
