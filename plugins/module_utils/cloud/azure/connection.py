# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The azure-mgmt-compute client from the module's options, bounded waits on long-running
operations, and Azure's errors as clear messages.

Authentication as azure.azcollection does it (auth_source auto, env, cli, msi; client_id,
secret and tenant for a service principal), plus a bearer access_token. endpoint_url points the
client at another Resource Manager endpoint. No credential is ever put into a message or a
result.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.calls import CallLog
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome

try:
    from azure.core import exceptions as azexc
    from azure.core.credentials import AccessToken
    from azure.mgmt.compute import ComputeManagementClient
    # the backends build request models from here, so that one import guard covers them all
    from azure.mgmt.compute import models  # pylint: disable=unused-import
    from azure.mgmt.core.polling.arm_polling import ARMPolling
    HAS_AZURE = True
except ImportError:
    HAS_AZURE = False
    ARMPolling = object
    models = None

# Between two polls of an operation when Azure sends no Retry-After: from FIRST_POLL, growing
# by half each time, up to POLL_SECONDS (the SDK's own default is a flat 30 s).
FIRST_POLL = 0.2
POLL_SECONDS = 5
# Codes that mean "this resource is not there" (a missing resource group is not one of them).
MISSING = ("ResourceNotFound", "NotFound")


def explain(e):
    """(message, details) for Azure's errors, None for anything else."""
    if not HAS_AZURE:
        return None
    if isinstance(e, azexc.ClientAuthenticationError):
        return "authentication failed: %s" % _first_line(e), {
            "error": {"code": "ClientAuthenticationError"}}
    if isinstance(e, azexc.HttpResponseError):
        err = getattr(e, "error", None)
        code = getattr(err, "code", None) or getattr(e, "reason", None) or "HttpResponseError"
        message = getattr(err, "message", None) or _first_line(e)
        return "%s %s: %s" % (e.status_code, code, message), {
            "error": {"code": code, "message": message, "status": e.status_code}}
    if isinstance(e, azexc.AzureError):
        return _first_line(e), {"error": {"code": type(e).__name__}}
    return None


def _first_line(e):
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def code_of(e):
    return (e.details.get("error") or {}).get("code")


class BackoffPolling(ARMPolling):
    """ARM's polling, with Retry-After when Azure sends one and otherwise a delay that starts
    short and grows, so that a quick operation is not waited on for a flat interval."""

    def __init__(self, base_url):
        ARMPolling.__init__(self, POLL_SECONDS, path_format_arguments={"endpoint": base_url})
        self._backoff = FIRST_POLL

    def _extract_delay(self):
        told = ARMPolling._extract_delay(self)
        if told != POLL_SECONDS:  # Azure's Retry-After
            return told
        delay, self._backoff = self._backoff, min(self._backoff * 1.5, POLL_SECONDS)
        return delay


class StaticToken:
    """A TokenCredential for a bearer token the user already has (access_token)."""

    def __init__(self, token):
        self._token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self._token, int(time.time()) + 3600)

    def __repr__(self):
        return "StaticToken(<hidden>)"


def credential(params):
    """A TokenCredential as azure.azcollection chooses one."""
    token = params.get("access_token")
    source = params.get("auth_source") or "auto"
    sp = [params.get(k) for k in ("client_id", "secret", "tenant")]
    if any(sp) and not all(sp):
        raise OpsError("a service principal needs client_id, secret and tenant together")
    from azure import identity  # loaded only when a credential is made from it
    if token and source == "auto":
        return StaticToken(token)
    if all(sp) and source == "auto":
        return identity.ClientSecretCredential(sp[2], sp[0], sp[1])
    if source == "env":
        return identity.EnvironmentCredential()
    if source == "cli":
        return identity.AzureCliCredential()
    if source == "msi":
        return identity.ManagedIdentityCredential(client_id=params.get("client_id"))
    return identity.DefaultAzureCredential(exclude_interactive_browser_credential=True)


class AzureConnection:
    """One resource group's compute client and the task's CallLog."""

    def __init__(self, params, check_mode=False):
        if not HAS_AZURE:
            raise OpsError("provider azure needs the Python packages azure-mgmt-compute, "
                           "azure-storage-blob and azure-identity on the managed host")
        self.params = params
        self.home = OpsHome(params.get("ops_dir"))
        self.subscription = params.get("subscription_id") or os.environ.get(
            "AZURE_SUBSCRIPTION_ID")
        if not self.subscription:
            raise OpsError("subscription_id is required with provider azure (or set "
                           "AZURE_SUBSCRIPTION_ID)")
        self.group = params.get("resource_group")
        if not self.group:
            raise OpsError("resource_group is required with provider azure")
        self.location = params.get("location")
        self.wait = params.get("wait", True)
        self.wait_timeout = params.get("wait_timeout") or 600
        self.log = CallLog("Azure", check_mode, explain)
        kw = {}
        if params.get("endpoint_url"):
            kw["base_url"] = params["endpoint_url"]
        self.compute = ComputeManagementClient(credential(params), self.subscription, **kw)
        self.base_url = self.compute._config.base_url  # pylint: disable=protected-access

    def require_location(self):
        if not self.location:
            raise OpsError("location is required with provider azure to create resources (for "
                           "example eastus)")
        return self.location

    def resource_id(self, kind, name):
        return "/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/%s/%s" % (
            self.subscription, self.group, kind, name)

    def get(self, call, name, fn, **kwargs):
        """A read of one resource of the group; None when it does not exist. A resource group
        that does not exist is an error of its own (Azure answers 404 for both)."""
        try:
            return self.log.read(call, name, fn, resource_group_name=self.group, **kwargs)
        except OpsError as e:
            if code_of(e) == "ResourceGroupNotFound":
                raise self.no_group(e)
            if code_of(e) in MISSING or (e.details.get("error") or {}).get("status") == 404:
                return None
            raise

    def no_group(self, e):
        return OpsError("resource group %r does not exist in subscription %s (or this account "
                        "cannot see it); create it first" % (self.group, self.subscription),
                        **e.details)

    def list_group(self, call, fn):
        try:
            return self.log.read(call, self.group,
                                 lambda: list(fn(resource_group_name=self.group)))
        except OpsError as e:
            if code_of(e) == "ResourceGroupNotFound":
                raise self.no_group(e)
            raise

    def run(self, call, name, begin, note=None, wait=True, **kwargs):
        """A long-running operation (begin_*): sent, then waited for within wait_timeout; its
        result. wait=False leaves it running (only where the user said wait: false)."""
        poller = self.log.write(call, name, begin, note=note, resource_group_name=self.group,
                                polling=BackoffPolling(self.base_url), **kwargs)
        if not wait:
            return None
        return self.finish(call, name, poller)

    def delete(self, call, name, begin, **kwargs):
        """A delete, waited for; planned only in check mode; one already gone is fine."""
        if self.log.check_mode:
            self.log.plan(call, name)
            return
        try:
            self.run(call, name, begin, **kwargs)
        except OpsError as e:
            if code_of(e) not in MISSING:
                raise

    def finish(self, call, name, poller):
        deadline = time.monotonic() + self.wait_timeout
        try:
            self.log.read(call + " (wait)", name, poller.wait,
                          timeout=max(0.0, deadline - time.monotonic()))
        except OpsError as e:
            if code_of(e) == "ResourceGroupNotFound":
                raise self.no_group(e)
            raise
        if not poller.done():
            raise OpsError("timed out after %ds waiting for %s of %s (status: %s); raise "
                           "wait_timeout, or look at the resource in the Azure portal"
                           % (self.wait_timeout, call, name, poller.status()),
                           waited_for="%s %s" % (call, name), last_seen=poller.status())
        return poller.result()
