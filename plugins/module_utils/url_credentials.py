# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials written into URLs (`https://user:pass@host/`), kept out of every output.

A release store, an endpoint or a proxy may be given with its credentials in the URL; the URL
itself must still reach the request (open_url and the SDKs send them), so they are not removed
from the option. Instead each credential found in the options or the environment joins the
module's no_log values, which Ansible masks in every message and result it prints, whatever
raised them (ours, urllib's, an SDK's), and in the invocation it echoes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re

from ansible.module_utils.basic import AnsibleModule

from urllib.parse import unquote

# scheme://userinfo@host - up to the last '@' before the path, as urllib splits it: an
# unencoded '@' or quote in a password is still sent, so it must still be masked
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#\s]+)@")
_SHORTEST_ALONE = 4  # a shorter password alone would mask every such run of letters in the output


def url_credentials(text):
    """The secrets in the URLs of text: each userinfo whole (raw and decoded), and each
    password of a useful length on its own. The user of user:pass is no secret and is left
    shown; a userinfo without ':' is taken as a token (https://TOKEN@host/) and masked."""
    found = set()
    for userinfo in _USERINFO.findall(text):
        for form in (userinfo, unquote(userinfo)):
            secret = form.split(":", 1)[1] if ":" in form else form
            if ":" in form:
                found.add(form)  # user:pass as the URL shows it
            if len(secret) >= _SHORTEST_ALONE:
                found.add(secret)
    return found


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def credentials_in(params):
    """The URL credentials of the options and of the environment (proxies, AWS_ENDPOINT_URL)."""
    found = set()
    for text in list(_strings(params)) + [v for v in os.environ.values() if "://" in v]:
        found.update(url_credentials(text))
    return found


class CredentialSafeModule(AnsibleModule):
    """An AnsibleModule that masks URL credentials in all it prints and logs. They join the
    no_log values as soon as the raw arguments are read, so the argument checks that run (and
    may fail) before any subclass code are covered too."""

    def _load_params(self):
        super()._load_params()
        self.no_log_values.update(credentials_in(self.params))
