# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one base every module of the collection runs on.

It adds the shared options (see the unikernel.ops.ops_home doc fragment), runs the module's one
call into the engine, and turns an OpsError into fail_json with its details attached.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome
from ansible_collections.unikernel.ops.plugins.module_utils.url_credentials import CredentialSafeModule

OPS_HOME_ARGS = dict(
    ops_dir=dict(type="path"),
)

# Documented by the unikernel.ops.ops_home.PROVIDER, unikernel.ops.aws, unikernel.ops.gcp and
# unikernel.ops.azure doc fragments; keep them in step.
PROVIDER_ARGS = dict(
    provider=dict(type="str", choices=["onprem", "aws", "gcp", "azure"], default="onprem"),
    # AWS connection, named as amazon.aws names them
    region=dict(type="str", aliases=["aws_region"]),
    zone=dict(type="str", aliases=["availability_zone"]),
    endpoint_url=dict(type="str", aliases=["aws_endpoint_url"]),
    profile=dict(type="str", aliases=["aws_profile"]),
    access_key=dict(type="str", aliases=["aws_access_key_id"], no_log=True),
    secret_key=dict(type="str", aliases=["aws_secret_access_key"], no_log=True),
    session_token=dict(type="str", aliases=["aws_session_token"], no_log=True),
    validate_certs=dict(type="bool", default=True),
    # GCP, named as google.cloud names them
    project=dict(type="str"),
    bucket=dict(type="str"),
    storage_endpoint_url=dict(type="str"),
    auth_kind=dict(type="str", choices=["application", "serviceaccount", "accesstoken"]),
    service_account_file=dict(type="path"),
    access_token=dict(type="str", no_log=True),
    # Azure, named as azure.azcollection names them (access_token above serves it too)
    subscription_id=dict(type="str"),
    resource_group=dict(type="str"),
    location=dict(type="str"),
    auth_source=dict(type="str", choices=["auto", "env", "cli", "msi"]),
    client_id=dict(type="str"),
    secret=dict(type="str", no_log=True),
    tenant=dict(type="str"),
    # every cloud: bounded waits for what a mutating call started
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=600),
)

# Options that only a cloud provider uses; on onprem a value for one of them is an error rather
# than silently ignored.
CLOUD_ONLY = ("region", "zone", "endpoint_url", "profile", "access_key", "secret_key",
              "session_token", "project", "bucket", "storage_endpoint_url", "auth_kind",
              "service_account_file", "access_token", "subscription_id", "resource_group",
              "location", "auth_source", "client_id", "secret", "tenant", "volume_type", "iops",
              "throughput", "encrypted", "tags", "instance_type", "subnet_id", "security_groups",
              "machine_type", "network", "network_tags", "vm_size", "network_interface")


def misplaced_options(params):
    """With provider onprem, the cloud options given, as one message (or None). Options of
    another cloud than the chosen one are left alone: one module_defaults entry may carry the
    connection options of several clouds, and a variable pick the provider."""
    if (params.get("provider") or "onprem") != "onprem":
        return None
    extra = [k for k in CLOUD_ONLY if params.get(k) is not None]
    if not extra:
        return None
    them = "them" if len(extra) > 1 else "it"
    return "%s: only a cloud provider uses %s; set provider (aws, gcp, azure) or leave %s out" % (
        ", ".join(extra), them, them)


class OpsModule:
    def __init__(self, argument_spec, providers=False, **kwargs):
        """providers: True for a module with a backend per provider; "accepted" for a module
        that works on the ops home whatever the provider (kernels), which takes the provider
        options only so that one module_defaults entry for the action group fits every module."""
        spec = dict(OPS_HOME_ARGS)
        if providers:
            spec.update(PROVIDER_ARGS)
        spec.update(argument_spec)
        self.module = CredentialSafeModule(argument_spec=spec, **kwargs)
        if providers is True:
            wrong = misplaced_options(self.params)
            if wrong:
                self.module.fail_json(msg=wrong)

    @property
    def params(self):
        return self.module.params

    @property
    def check_mode(self):
        return self.module.check_mode

    @property
    def diff_mode(self):
        return self.module._diff

    def outcome_result(self, outcome, key):
        """exit_json arguments for a provider Outcome, with the diff when --diff asked for it."""
        result = dict(changed=outcome.changed, actions=outcome.actions)
        result[key] = outcome.volume
        if self.diff_mode:
            result["diff"] = dict(before=outcome.before, after=outcome.after)
        for w in outcome.warnings:
            self.module.warn(w)
        return result

    def run(self, call):
        """Run call(self) -> dict and exit with it; an OpsError fails with its message. First,
        what killed runs left in the ops home (their staging files) is removed."""
        if "ops_dir" in self.params:
            try:
                OpsHome(self.params["ops_dir"]).sweep_leftovers()
            except OSError:
                pass  # a leftover that cannot be removed now is tried again by the next run
        try:
            result = call(self)
        except OpsError as e:
            self.module.fail_json(msg=e.msg, **e.details)
        except Exception as e:  # a bug of ours: still a clear message, and the trace for a report
            self.module.fail_json(msg="unexpected error: %s" % e, exception=traceback.format_exc())
        self.module.exit_json(**result)
