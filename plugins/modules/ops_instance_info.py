#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_instance_info
short_description: List local Nanos instances and what QEMU has attached to them
version_added: 0.1.0
description:
  - Lists the instances recorded in C(<ops_dir>/instances/), those started by the ops CLI
    included, with their state and, over QMP (our UNIX socket, or ops' C(mgmt) TCP port), the
    disks QEMU has attached, and its health (QEMU's run state, a Nanos crash on its console).
    Records whose QEMU process is gone are reported as stale (and removed unless in check mode,
    as ops does). Records that are not this user's to act on (another owner, writable by others,
    a link, paths outside the instance's state folder) are reported as refused and left alone.
  - With O(provider=aws), lists the EC2 instances tagged C(CreatedBy=ops) that are not
    terminated, with their attached volumes, device names and attach ids (V(%N)).
  - With O(provider=gcp), lists the collection's instances in O(zone), with their disks by
    C(deviceName) (V(persistent-disk-N) is V(%N)).
  - With O(provider=azure), lists the collection's VMs in O(resource_group) with their power
    state, size and data disks by LUN (the LUN is V(%N)).
requirements:
  - the Python package qemu.qmp on the managed host (for attachments)
author:
  - unikernel.ops maintainers (@unikernel-ops)
extends_documentation_fragment:
  - unikernel.ops.ops_home
  - unikernel.ops.ops_home.PROVIDER
  - unikernel.ops.aws
  - unikernel.ops.gcp
  - unikernel.ops.azure
  - unikernel.ops.aws.WAITS
attributes:
  check_mode:
    support: full
    description: Stale records are reported but not removed.
  diff_mode:
    support: none
    description: The module only reads.
options:
  name:
    description: Only the instance of this name.
    type: str
seealso:
  - module: unikernel.ops.ops_instance
"""

EXAMPLES = r"""
- name: What is running, and what is attached
  unikernel.ops.ops_instance_info:
  register: running
"""

RETURN = r"""
# status, crash and problem: keep in step with ops_instance (RETURN has no doc fragments)
instances:
  description: Running instances.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The instance's name.
      type: str
      sample: web-1
    pid:
      description: The QEMU process.
      type: int
      sample: 41234
    image:
      description: The image file.
      type: str
      sample: /home/user/.ops/images/webapp
    ports:
      description: Forwarded ports, as recorded.
      type: list
      elements: str
    console:
      description: The console log (null for instances ops started).
      type: str
    qmp_socket:
      description: Our QMP socket (null for instances ops started).
      type: str
    mgmt:
      description: ops' QMP TCP port, for instances ops started with QMP.
      type: str
    started_by:
      description: V(unikernel.ops) or V(ops).
      type: str
      sample: unikernel.ops
    settings:
      description: The settings an instance of this collection runs with.
      type: dict
    attachments:
      description: Disks QEMU reports (file, node, id, read_only, attach_id); null when QMP could not be asked.
      type: list
      elements: dict
    attachments_error:
      description: Why QMP could not be asked.
      returned: when attachments is null
      type: str
    status:
      description:
        - QEMU's run state (V(running), V(paused), ...), or V(frozen) (the process is stopped by
          a signal), V(unreachable) (QMP is gone or does not answer), V(unknown) (no QMP).
      type: str
      sample: running
    crash:
      description: The Nanos crash lines on its console; null when it shows none.
      type: str
    problem:
      description:
        - What is wrong with it (paused, frozen, unreachable, crashed, or a QEMU status other than
          running); null when nothing.
      type: str
stale:
  description: Records whose QEMU process is gone.
  returned: always
  type: list
  elements: dict
refused:
  description: Records left alone because they are not this user's to act on (each is also a warning).
  returned: when O(provider=onprem)
  type: list
  elements: dict
  contains:
    record:
      description: The record file.
      type: str
    name:
      description: The instance it names (null when it was not read).
      type: str
    pid:
      description: The pid it names (null when it was not read).
      type: int
    reason:
      description: Why it is not acted on.
      type: str
      sample: other users can write it (mode 0664); if it is yours, make it writable by you only (chmod go-w)
"""

from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.providers import backend


def run(m):
    found = backend("instances", m.params).list_instances(m.params["name"], check_mode=m.check_mode)
    for warning in found.pop("warnings", []):
        m.module.warn(warning)
    return dict(changed=False, **found)


def main():
    m = OpsModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True,
                  providers=True)
    m.run(run)


if __name__ == "__main__":
    main()
