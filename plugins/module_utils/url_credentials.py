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

from ansible.module_utils.basic import AnsibleModule, _load_params

from urllib.parse import unquote

# scheme://userinfo@ - userinfo cannot hold '/', '@' or blanks unencoded (RFC 3986)
_USERINFO = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#@\s'\"]+)@")
_SHORTEST_ALONE = 4  # a shorter password alone would mask every such run of letters in the output


def url_credentials(text):
    """The secrets in the URLs of text: each userinfo whole (raw and decoded), and each
    password of a useful length on its own."""
    found = set()
    for userinfo in _USERINFO.findall(text or ""):
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


def credentials_in(params, environ=None):
    """The URL credentials of the options and of the environment (proxies, AWS_ENDPOINT_URL)."""
    environ = os.environ if environ is None else environ
    found = set()
    for text in list(_strings(params)) + [v for v in environ.values() if "://" in v]:
        found.update(url_credentials(text))
    return found


class CredentialSafeModule(AnsibleModule):
    """An AnsibleModule that masks URL credentials in all it prints, also when its own argument
    checks fail (they run, and may fail, before a subclass could add no_log values): they are
    read from the raw arguments first."""

    def __init__(self, *args, **kwargs):
        self._url_credentials = credentials_in(_load_params())
        super().__init__(*args, **kwargs)

    def exit_json(self, **kwargs):
        self.no_log_values.update(self._url_credentials)
        super().exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        self.no_log_values.update(self._url_credentials)
        super().fail_json(msg, **kwargs)
