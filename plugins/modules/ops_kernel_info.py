#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_kernel_info
short_description: Which Nanos kernels the ops home has, and which one images would use
version_added: 0.1.0
description:
  - Lists the Nanos releases installed in the ops home (folders holding C(kernel.img) and
    C(boot.img)), the one C(latest.txt) names, and the kernel M(unikernel.ops.ops_image) would
    build with - or, when there is none, the reason and how to install one.
  - A release whose C(kernel.img) is not a Nanos kernel (not a 64-bit x86_64 ELF executable)
    or whose C(boot.img) has no Nanos boot sector, for example one an interrupted download left
    behind, is no kernel to build with; RV(missing) names the file and what is wrong with it.
author:
  - unikernel.ops maintainers (@unikernel-ops)
extends_documentation_fragment:
  - unikernel.ops.ops_home
  - unikernel.ops.ops_home.INFO_ATTRIBUTES
  - unikernel.ops.ops_home.PROVIDER
  - unikernel.ops.aws
  - unikernel.ops.gcp
  - unikernel.ops.azure
  - unikernel.ops.aws.WAITS
options:
  nanos_version:
    description:
      - Resolve this version instead of the one C(latest.txt) names.
      - Letters, digits, C(.), C(_), C(+) and C(-), at most 128 characters; any other is an error.
    type: str
notes:
  - Kernels live in the ops home on the managed host whatever O(provider) says (cloud images are
    built locally too); the provider options are accepted, and ignored, so that one
    C(module_defaults) entry for the C(group/unikernel.ops.ops) action group fits every module.
seealso:
  - module: unikernel.ops.ops_kernel
"""

EXAMPLES = r"""
- name: Is there a kernel to build images with?
  unikernel.ops.ops_kernel_info:
  register: kernels

- name: Say how to get one
  ansible.builtin.debug:
    msg: "{{ kernels.missing }}"
  when: kernels.kernel is none
"""

RETURN = r"""
releases:
  description: Installed release versions, sorted.
  returned: always
  type: list
  elements: str
  sample: ["0.1.53", "0.1.54"]
latest:
  description: The version C(latest.txt) names, or null.
  returned: always
  type: str
  sample: 0.1.54
kernel:
  description: The kernel images would use (version, kernel, boot, klibs), or null.
  returned: always
  type: dict
  sample: {version: 0.1.54, kernel: /home/user/.ops/0.1.54/kernel.img, boot: /home/user/.ops/0.1.54/boot.img, klibs: /home/user/.ops/0.1.54/klibs}
missing:
  description: Why there is no kernel (none installed, or which file of it is damaged), and how to install one.
  returned: when RV(kernel) is null
  type: str
"""

from ansible_collections.unikernel.ops.plugins.module_utils.images import kernels
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome


def run(m):
    home = OpsHome(m.params["ops_dir"])
    if m.params["nanos_version"]:  # a version that is no version is an error, not "missing"
        kernels.validate_version(m.params["nanos_version"])
    result = dict(changed=False, releases=kernels.ReleaseStore(home).installed(),
                  latest=kernels.installed_version(home), kernel=None)
    try:
        result["kernel"] = kernels.resolve(home, m.params["nanos_version"]).as_dict()
    except OpsError as e:
        result["missing"] = e.msg
    return result


def main():
    m = OpsModule(argument_spec=dict(nanos_version=dict(type="str")), supports_check_mode=True,
                  providers="accepted")
    m.run(run)


if __name__ == "__main__":
    main()
