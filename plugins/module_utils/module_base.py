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

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

OPS_HOME_ARGS = dict(
    ops_dir=dict(type="path"),
)

# Documented by the unikernel.ops.ops_home.PROVIDER doc fragment; keep the two in step.
PROVIDER_ARGS = dict(
    provider=dict(type="str", choices=["onprem"], default="onprem"),
)


class OpsModule:
    def __init__(self, argument_spec, **kwargs):
        spec = dict(OPS_HOME_ARGS)
        spec.update(argument_spec)
        self.module = AnsibleModule(argument_spec=spec, **kwargs)

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
        """Run call(self) -> dict and exit with it; an OpsError fails with its message."""
        try:
            result = call(self)
        except OpsError as e:
            self.module.fail_json(msg=e.msg, **e.details)
        except Exception as e:  # a bug of ours: still a clear message, and the trace for a report
            self.module.fail_json(msg="unexpected error: %s" % e, exception=traceback.format_exc())
        self.module.exit_json(**result)
