#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_mount
short_description: Hot-plug volumes into running Nanos instances, locally and on AWS
version_added: 0.1.0
description:
  - Attaches a volume to a running instance started by M(unikernel.ops.ops_instance) (or by
    ops with QMP on), or detaches it, over QMP - as a SCSI LUN on the controller the instance
    booted with, which Nanos notices and mounts within milliseconds.
  - Every step is checked against QEMU's own state - the attachment is read back from QEMU after
    the attach, and a detach waits for QEMU's C(DEVICE_DELETED) event before releasing the
    volume, so it can be attached again (ops' detach leaves it open, and its next attach fails).
  - A volume attached to another running instance is refused (two writers corrupt a volume).
  - Locally, refused before any change - an O(attach_id) another volume of the instance has (at
    boot or hot-plugged; the message names it), a volume whose QEMU device id (its name) is the
    id of another device of the instance (such as C(scsi0) or C(boot)), a damaged or renamed
    volume file (its TFS header or log unreadable, or the file shorter than they say), and an
    instance whose console shows a Nanos crash (C(lastvector:), C(assertion ... failed),
    C(frame trace:)); the message quotes those console lines.
  - Locally, an attach that fails after C(blockdev-add) is undone (C(device_del),
    C(blockdev-del)) before the task fails, and a volume detached to be re-attached with
    O(force) is attached again as it was. It fails when QEMU refuses the C(device_add) (a lock
    another process holds on the volume file), when the attachment does not show as asked
    within O(timeout), and when the guest's console shows a crash in the half second after the
    C(device_add).
  - Before attaching, the instance's image manifest is read; when no mount entry matches the
    volume (by name, UUID or O(attach_id)), the module warns that the guest will not mount it.
  - With O(provider=aws), C(AttachVolume) at the device that gives the guest its V(%N) -
    C(/dev/sd(a+N)), N 1 to 25, so V(%1) is C(/dev/sdb) - or, without O(attach_id), at the
    lowest free C(/dev/sd[b-z]); C(DetachVolume) names the instance. Both are waited for until
    the volume and the instance's block device mapping agree. Refused before any change - a
    device another volume holds (naming it), a volume attached to another instance, a volume in
    another zone. A volume already attached to the instance is no change. EBS has no read-only
    attachment, so O(read_only) only warns.
  - With O(provider=gcp), C(attachDisk) with C(deviceName) V(persistent-disk-N) for V(%N) (N 1 to
    127) or the lowest free N, C(READ_ONLY) when O(read_only), and C(detachDisk) by deviceName.
    Nothing else - no C(reset), C(stop) or C(start) (ops resets the instance after every attach
    and detach; Nanos sees the new disk through virtio-scsi rescan). Refused before any change -
    a deviceName another disk holds, a disk attached read-write elsewhere, a disk not in
    O(zone). The attachment is read back from the instance after the operation.
  - With O(provider=azure), the disk is attached at LUN N for V(%N) (N 0 to 63; V(0) is LUN 0),
    otherwise at the lowest free LUN, by a PUT of the VM with its data disks; detach removes
    that disk by its id. A disk already attached to the VM is no change whatever its LUN (it is
    never re-attached at another), a LUN another disk holds and a disk attached to another VM
    are refused before any request, and the VM is read back after the operation. Azure has no
    read-only attachment, so O(read_only) is refused.
  - the Python package qemu.qmp on the managed host
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
    description: QEMU is asked what is attached, nothing is changed.
  diff_mode:
    support: full
    description: Before and after show the attachment.
options:
  instance:
    description: The running instance's name (on AWS its C(Name) tag; it may also be stopped).
    type: str
    required: true
  volume:
    description: The volume's name or UUID.
    type: str
    required: true
  state:
    description: V(attached) or V(detached).
    type: str
    choices: [attached, detached]
    default: attached
  attach_id:
    description:
      - The N of an image's V(%N) mount - sets the SCSI C(device_id) V(persistent-disk-N) that
        Nanos matches V(%N) against.
      - Locally, N is 0 to 2147483647 (Nanos keeps it in a 32-bit signed number).
      - With O(provider=aws), N is 1 to 25 and gives the device C(/dev/sd(a+N)).
      - With O(provider=gcp), N is 1 to 127 and gives the C(deviceName) V(persistent-disk-N).
      - With O(provider=azure), N is 0 to 63 and is the data disk's LUN.
    type: int
  read_only:
    description: Attach read-only at QEMU's block layer (the guest cannot write even if it tries).
    type: bool
    default: false
  timeout:
    description:
      - Seconds to wait for QMP answers, for the attachment to show in QEMU and for the detach to
        complete; 1 or more.
    type: int
    default: 10
  force:
    description: Re-attach a volume that is attached with another O(read_only) or O(attach_id).
    type: bool
    default: false
seealso:
  - module: unikernel.ops.ops_instance
  - module: unikernel.ops.ops_volume
"""

EXAMPLES = r"""
- name: Attach the uploads volume as %1 while web-1 runs
  unikernel.ops.ops_mount:
    instance: web-1
    volume: uploads
    attach_id: 1

- name: Attach the uploads EBS volume as %1 (/dev/sdb) to the EC2 instance web-1
  unikernel.ops.ops_mount:
    provider: aws
    region: eu-west-1
    instance: web-1
    volume: uploads
    attach_id: 1

- name: Detach it again
  unikernel.ops.ops_mount:
    instance: web-1
    volume: uploads
    state: detached
"""

RETURN = r"""
attachment:
  description: The attachment as QEMU reports it (in check mode, as it would be); null when detached and nothing was attached.
  returned: always
  type: dict
  contains:
    volume:
      description: The volume's name.
      type: str
      sample: uploads
    uuid:
      description: The volume's UUID.
      type: str
      sample: e1a9a40e-8d2b-19b7-61b7-57c43f362aaa
    path:
      description: The volume file.
      type: str
      sample: /home/user/.ops/volumes/uploads:e1a9a40e-8d2b-19b7-61b7-57c43f362aaa.raw
    node:
      description: QEMU's block node name.
      type: str
      sample: uploads
    device_id:
      description: QEMU's device id of the scsi-hd.
      type: str
      sample: uploads
    attach_id:
      description: The attach id (N of V(%N)), or null.
      type: int
      sample: 1
    read_only:
      description: Whether QEMU attached it read-only.
      type: bool
      sample: false
    instance_id:
      description: The EC2 instance (O(provider=aws)).
      type: str
      sample: i-0123456789abcdef0
    volume_id:
      description: The EBS volume (O(provider=aws)).
      type: str
      sample: vol-0123456789abcdef0
    device:
      description: The device name it is attached at (O(provider=aws)).
      type: str
      sample: /dev/sdb
    provider:
      description: V(aws) for an EBS attachment.
      type: str
actions:
  description: What the task did, or would do in check mode.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.providers import backend


def run(m):
    mounts = backend("mounts", m.params)
    if m.params["state"] == "detached":
        outcome = mounts.detached(m.params, check_mode=m.check_mode)
    else:
        outcome = mounts.attached(m.params, check_mode=m.check_mode)
    return m.outcome_result(outcome, "attachment")


def main():
    m = OpsModule(
        argument_spec=dict(
            instance=dict(type="str", required=True),
            volume=dict(type="str", required=True),
            state=dict(type="str", choices=["attached", "detached"], default="attached"),
            attach_id=dict(type="int"),
            read_only=dict(type="bool", default=False),
            timeout=dict(type="int", default=10),
            force=dict(type="bool", default=False),
        ),
        providers=True,
        supports_check_mode=True,
    )
    m.run(run)


if __name__ == "__main__":
    main()
