#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_instance
short_description: Run Nanos images as local QEMU instances with QMP
version_added: 0.1.0
description:
  - Starts, stops and restarts a local QEMU instance of a Nanos image, with ops' device model
    (q35, virtio-scsi, virtio-rng, isa-debug-exit, user networking with port forwards), volumes
    attached at boot as SCSI LUNs, host folders shared over 9p, and QMP on a UNIX socket that only
    its owner can use.
  - The instance is recorded in C(<ops_dir>/instances/<pid>) in ops' format, so
    C(ops instance list) shows it. A record whose QEMU is gone is cleaned up. Records, console
    logs, pidfiles and state folders are owner-only (0600, 0700) whatever the umask.
  - A record is acted on (its QEMU stopped, its QMP socket connected to, the record removed) only
    when it is this user's, no one else can write it, its console log, pidfile and QMP socket are
    in the instance's state folder and its pid is the QEMU it names; any other record is left
    alone, with a warning that names it and says why.
  - Idempotent - a running instance whose settings match is not a change. A mismatch (other
    memory, ports, volumes, a rebuilt image...) is reported and acted on only with O(force=true)
    or O(state=restarted).
  - With O(provider=aws), an EC2 instance named by its C(Name) tag (with C(CreatedBy=ops), as
    ops tags it) is run from the AMI of that name (built by M(unikernel.ops.ops_image) with
    O(provider=aws)); O(volumes) are attached at their V(%N) devices (C(/dev/sd(a+N))); every
    state change is waited for (O(wait), O(wait_timeout)). Terminating it never deletes a
    volume. A mismatch (image, O(instance_type), zone) is acted on only with O(force=true),
    which replaces the instance.
  - With O(provider=gcp), C(instances.insert) from the image of that name, O(volumes) attached at
    boot with C(deviceName) V(persistent-disk-N) for V(%N) (read-only ones C(READ_ONLY)); the
    states are waited for through the operations of the same endpoint.
  - With O(provider=azure), a VM from the image of that name (O(vm_size), O(network_interface) or
    O(subnet_id), O(tags)), O(volumes) attached at boot at LUN N for V(%N) (else the lowest free
    LUN); V(stopped) deallocates it (no compute is billed); every state is waited for. Deleting
    it never deletes a volume (data disks have C(deleteOption) V(Detach)).
requirements:
  - qemu-system-x86_64 on the managed host
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
    description: Nothing is started or stopped; C(changed) tells what a real run would do.
  diff_mode:
    support: full
    description: Before and after show the state and settings.
options:
  name:
    description: The instance's name.
    type: str
    required: true
  image:
    description:
      - The image to boot - a name in C(<ops_dir>/images/) or a path. Required with
        O(state=running) or O(state=restarted).
    type: str
  state:
    description:
      - V(running) starts the instance when it is not running. A running instance is checked - a
        QEMU stopped by a signal (SIGSTOP), a QMP socket that is gone or does not answer, a QEMU
        status other than running, and a Nanos crash on its console fail the task (the instance
        cannot do its work or cannot be managed; O(state=restarted) replaces it); a guest paused
        over QMP is a warning (QMP still manages it; it is not resumed).
      - V(stopped) asks the guest to power down and quits QEMU after O(stop_timeout). V(restarted)
        stops and starts it. V(absent) stops it and removes its console log and socket folder.
    type: str
    choices: [running, stopped, restarted, absent]
    default: running
  memory:
    description: Guest memory, in QEMU's syntax (V(256M), V(2G)).
    type: str
    default: 2G
  cpus:
    description: Number of virtual CPUs.
    type: int
    default: 1
  ports:
    description:
      - Ports forwarded from the host to the guest - V(8080), V(8080:80) (host:guest),
        V(0.0.0.0:8080:80) (with the address to listen on), V(53/udp). Without an address they
        listen on 127.0.0.1 only (ops listens on every address).
    type: list
    elements: str
    default: []
  volumes:
    description:
      - Volumes attached at boot, as SCSI LUNs. Each is a volume name or UUID, or a dict with
        C(volume), C(attach_id) (the N of V(%N), sets the SCSI C(device_id) Nanos reads it from)
        and C(read_only).
      - Locally, refused before anything is started or stopped - an C(attach_id) above 2147483647
        (Nanos keeps V(%N) in a 32-bit signed number), a volume whose name is the QEMU id of
        another device (C(boot), C(scsi0), C(pci.2)), a damaged or renamed volume file, and an
        image or volume file this user cannot read and write.
    type: list
    elements: raw
    default: []
  shares:
    description:
      - Host folders shared over 9p, by attach id (the N of the image's V(%N) mount). Shares the
        image was built with (host folders given as mount keys to M(unikernel.ops.ops_image)) are
        included without being listed here.
      - A share the image mounts read-only (V(:ro) in its mounts) is read-only in QEMU as well
        (C(readonly=on)), not only in the guest.
    type: dict
    default: {}
  accel:
    description:
      - V(tcg) (software emulation), V(kvm), or V(auto) - KVM where it runs Nanos (a hardware
        KVM module this user can open, not the PVM flavour), else TCG.
    type: str
    choices: [auto, kvm, tcg]
    default: auto
  wait_for:
    description:
      - A regular expression to wait for on the console after starting (or, when the instance
        already runs, to find on its console).
      - A Nanos crash on the console (C(lastvector:), C(assertion ... failed), C(frame trace:))
        fails the task at once, with those console lines in the message, not after O(timeout).
    type: str
  timeout:
    description: Seconds to wait for QMP to answer, and for O(wait_for); at least 1.
    type: int
    default: 30
  stop_timeout:
    description:
      - Seconds the guest gets to power down before QEMU is told to quit, then sent SIGTERM, then
        SIGKILL, each with a wait of 1 to 2 seconds, so a stop ends within some 5 seconds of
        O(stop_timeout). A QEMU stopped by a signal is continued (SIGCONT) first; one without a
        QMP socket is sent SIGTERM at once.
      - 0 or more.
    type: int
    default: 10
  force:
    description: Restart a running instance whose settings differ from the wanted ones.
    type: bool
    default: false
  instance_type:
    description:
      - The EC2 instance type; V(t2.micro) (as ops) when omitted. Only with O(provider=aws).
    type: str
  subnet_id:
    description:
      - The subnet of the instance; the zone's default subnet when omitted. With
        O(provider=aws).
      - With O(provider=azure), a subnet's resource id; the VM gets a network interface of its
        own there, deleted with it. Give this or O(network_interface).
    type: str
  security_groups:
    description:
      - Security group ids of the instance (this is how ports are opened on AWS; O(ports) is for
        O(provider=onprem)). Only with O(provider=aws).
    type: list
    elements: str
  machine_type:
    description:
      - The Compute Engine machine type; V(e2-small) when omitted. Only with O(provider=gcp).
    type: str
  network:
    description:
      - The VPC network of the instance; V(default) when omitted. Only with O(provider=gcp).
    type: str
  network_tags:
    description:
      - Network tags (firewall rules select instances by them). Only with O(provider=gcp).
    type: list
    elements: str
  vm_size:
    description:
      - The Azure VM size; V(Standard_B1s) (as ops) when omitted. Only with O(provider=azure).
    type: str
  network_interface:
    description:
      - An existing network interface for a new VM, by name (in O(resource_group)) or resource
        id. Only with O(provider=azure); give this or O(subnet_id).
    type: str
  tags:
    description:
      - Tags of the instance besides those the collection sets (C(Name), C(CreatedBy),
        C(unikernel-ops:*)); labels on GCP. Only with a cloud O(provider).
    type: dict
seealso:
  - module: unikernel.ops.ops_mount
  - module: unikernel.ops.ops_instance_info
  - module: unikernel.ops.ops_image
"""

EXAMPLES = r"""
- name: Run the webapp AMI on EC2 with a volume at %1 (/dev/sdb)
  unikernel.ops.ops_instance:
    provider: aws
    region: eu-west-1
    zone: eu-west-1a
    name: web-1
    image: webapp
    instance_type: t3.small
    security_groups: [sg-0123456789abcdef0]
    volumes:
      - volume: assets
        attach_id: 1

- name: Run the webapp image with a volume attached at boot
  unikernel.ops.ops_instance:
    name: web-1
    image: webapp
    memory: 512M
    ports: ["8080"]
    volumes:
      - my-assets
      - {volume: uploads, attach_id: 1}
    wait_for: "listening on"
    timeout: 60

- name: Stop it
  unikernel.ops.ops_instance:
    name: web-1
    state: stopped
"""

RETURN = r"""
# status, crash and problem: keep in step with ops_instance_info (RETURN has no doc fragments)
instance:
  description:
    - The instance after the task; null when it is not running.
    - With O(provider=aws) its keys are C(name), C(id), C(state), C(image_id),
      C(instance_type), C(zone), C(subnet_id), C(security_groups), C(private_ip),
      C(public_ip), C(attachments) (C(device), C(volume_id), C(volume), C(attach_id)), C(tags)
      and C(provider).
  returned: always
  type: dict
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
      description: The image file it booted.
      type: str
      sample: /home/user/.ops/images/webapp
    console:
      description: The console log (the guest's serial port).
      type: str
      sample: /home/user/.ops/.unikernel-ops/instances/web-1/console.log
    qmp_socket:
      description: The QMP UNIX socket (owner-only).
      type: str
      sample: /home/user/.ops/.unikernel-ops/instances/web-1/qmp.sock
    settings:
      description:
        - The settings it runs with (memory, cpus, ports, volumes, shares, read_only_shares - the
          attach ids of the shares that are read-only -, accel and why).
      type: dict
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
    attachments:
      description: Disks QEMU reports, with file, node, device id, read-only and attach id.
      type: list
      elements: dict
    attachments_error:
      description: Why QMP could not be asked for the disks.
      returned: when attachments is null
      type: str
    matched:
      description: The console text O(wait_for) matched.
      returned: when O(wait_for) was given and the instance runs (not in check mode)
      type: str
mismatch:
  description: How the running instance differs from the wanted settings (nothing was changed).
  returned: when it differs and neither O(force) nor O(state=restarted) was given
  type: list
  elements: str
argv:
  description: The QEMU command line of a start, as a list.
  returned: when the task started QEMU
  type: list
  elements: str
actions:
  description: What the task did, or would do in check mode.
  returned: always
  type: list
  elements: str
"""

from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.providers import backend


def run(m):
    outcome, extra = backend("instances", m.params).ensure(m.params, check_mode=m.check_mode)
    result = m.outcome_result(outcome, "instance")
    result.update(extra)
    return result


def main():
    m = OpsModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            image=dict(type="str"),
            state=dict(type="str", choices=["running", "stopped", "restarted", "absent"], default="running"),
            memory=dict(type="str", default="2G"),
            cpus=dict(type="int", default=1),
            ports=dict(type="list", elements="str", default=[]),
            volumes=dict(type="list", elements="raw", default=[]),
            shares=dict(type="dict", default={}),
            accel=dict(type="str", choices=["auto", "kvm", "tcg"], default="auto"),
            wait_for=dict(type="str"),
            timeout=dict(type="int", default=30),
            stop_timeout=dict(type="int", default=10),
            force=dict(type="bool", default=False),
            instance_type=dict(type="str"),
            subnet_id=dict(type="str"),
            security_groups=dict(type="list", elements="str"),
            machine_type=dict(type="str"),
            network=dict(type="str"),
            network_tags=dict(type="list", elements="str"),
            vm_size=dict(type="str"),
            network_interface=dict(type="str"),
            tags=dict(type="dict"),
        ),
        providers=True,
        supports_check_mode=True,
    )
    m.run(run)


if __name__ == "__main__":
    main()
