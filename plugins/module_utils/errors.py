# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type the engine raises for anything a user can act on."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class OpsError(Exception):
    """A failure with a message for the user and optional structured details.

    Modules turn it into fail_json(msg=..., **details); nothing else is caught as "expected".
    """

    def __init__(self, msg, **details):
        super(OpsError, self).__init__(msg)
        self.msg = msg
        self.details = details
