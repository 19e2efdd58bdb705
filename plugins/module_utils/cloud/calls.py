# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every request a cloud backend makes goes through a CallLog.

It names the call and the resource in every error (with the provider's error attached), keeps the
mutating calls as the task's `actions` (as containers.podman returns its commands), and refuses a
mutating call in check mode, so check mode cannot change a cloud even through a bug of ours.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError


class CallLog:
    def __init__(self, provider, check_mode, explain):
        """explain(exception) -> (message, details dict) for the provider's own errors, or None
        for anything else (which is then a bug of ours and propagates)."""
        self.provider = provider
        self.check_mode = check_mode
        self.explain = explain
        self.actions = []
        self.calls = []  # every call made, read-only ones too: "service.Operation resource"

    def _run(self, call, resource, fn, kwargs, record=True):
        if record:
            self.calls.append("%s %s" % (call, resource))
        try:
            return fn(**kwargs)
        except OpsError:
            raise
        except Exception as e:  # pylint: disable=broad-except
            told = self.explain(e)
            if told is None:
                raise
            message, details = told
            raise OpsError("%s %s on %s failed: %s" % (self.provider, call, resource, message),
                           call=call, resource=resource, **details)

    def read(self, call, resource, fn, **kwargs):
        """A call that changes nothing (Describe*, List*, Get*)."""
        return self._run(call, resource, fn, kwargs)

    def write(self, call, resource, fn, note=None, quiet=False, **kwargs):
        """A call that changes the cloud; recorded as an action unless quiet (one of many of the
        same kind, such as block uploads, which the caller sums up in one action)."""
        if self.check_mode:
            raise OpsError("internal error: %s %s on %s was about to run in check mode; nothing "
                           "was sent" % (self.provider, call, resource))
        if quiet:
            return self._run(call, resource, fn, kwargs, record=False)
        self.actions.append("%s %s%s" % (call, resource, " (%s)" % note if note else ""))
        return self._run(call, resource, fn, kwargs)

    def plan(self, call, resource, note=None):
        """What write() would do, for check mode's actions."""
        self.actions.append("%s %s%s" % (call, resource, " (%s)" % note if note else ""))
