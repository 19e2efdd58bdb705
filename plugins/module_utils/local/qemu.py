# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Launching QEMU for a Nanos instance: the exact argv, and the choice of accelerator.

The device model is ops' (q35, pcie-root-ports, virtio-scsi, virtio-rng, isa-debug-exit, user
networking), so that images and volumes behave as under `ops run`. Differences, each on purpose:
argv is a list (paths with spaces work), disks are -blockdev nodes (their JSON form needs no
escaping), the boot disk has bootindex=0, QMP listens on a UNIX socket, and forwarded ports bind
to 127.0.0.1 unless an address is given.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import shutil

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

QEMU_BINARY = "qemu-system-x86_64"
SCSI_BUS = "scsi0.0"
BOOT_NODE = "hd0"
# the ids of the devices and nodes every instance has (build_argv): no volume can use one
RESERVED_DEVICE_IDS = {"boot": "boot disk", BOOT_NODE: "boot disk node", "scsi0": "SCSI controller",
                       "pci.1": "PCIe root port", "pci.2": "PCIe root port", "pci.4": "PCIe root port"}
_PORT_RE = re.compile(r"^(?:(?P<addr>[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+|\[[0-9a-fA-F:]+\]):)?"
                      r"(?P<host>[0-9]+)(?::(?P<guest>[0-9]+))?(?P<udp>/udp)?$")


def qemu_opt(value):
    """A value inside QEMU's k=v,k=v option syntax: commas are doubled."""
    return str(value).replace(",", ",,")


def parse_port(spec):
    """'8080', '8080:80', '0.0.0.0:8080:80', '53/udp' -> (proto, address, host port, guest port)."""
    m = _PORT_RE.match(str(spec).strip())
    if not m:
        raise OpsError("port %r is not valid: use HOST[:GUEST], ADDRESS:HOST:GUEST, optionally "
                       "followed by /udp" % (spec,))
    host = int(m.group("host"))
    guest = int(m.group("guest") or host)
    for p in (host, guest):
        if not 0 < p < 65536:
            raise OpsError("port %r is out of range" % (spec,))
    return ("udp" if m.group("udp") else "tcp", m.group("addr") or "127.0.0.1", host, guest)


def attach_device_id(attach_id):
    """The SCSI device_id Nanos reads an attach id (%N) from."""
    return "persistent-disk-%d" % attach_id


def blockdev(node, path, read_only=False):
    spec = {"driver": "raw", "node-name": node, "file": {"driver": "file", "filename": path}}
    if read_only:
        spec["read-only"] = True
    return spec


def scsi_device(node, dev_id, attach_id=None, bootindex=None):
    spec = {"driver": "scsi-hd", "bus": SCSI_BUS, "drive": node, "id": dev_id}
    if attach_id is not None:
        spec["device_id"] = attach_device_id(attach_id)
    if bootindex is not None:
        spec["bootindex"] = bootindex
    return spec


class LaunchConfig:
    """Everything argv depends on. volumes: dicts with path, node, id, read_only, attach_id.
    shares: {tag: host directory}; read_only_shares: the tags the image mounts :ro. ports: as
    parse_port accepts."""

    def __init__(self, name, image, memory="2G", cpus=1, ports=(), volumes=(), shares=None,
                 accel="tcg", console=None, qmp_socket=None, pidfile=None, binary=QEMU_BINARY,
                 read_only_shares=()):
        self.name = name
        self.image = image
        self.memory = memory
        self.cpus = cpus
        self.ports = list(ports)
        self.volumes = list(volumes)
        self.shares = dict(shares or {})
        self.read_only_shares = set(str(t) for t in read_only_shares)
        self.accel = accel
        self.console = console
        self.qmp_socket = qmp_socket
        self.pidfile = pidfile
        self.binary = binary


def build_argv(cfg):
    """The QEMU command line, as a list; nothing in it is ever passed through a shell."""
    argv = [cfg.binary, "-name", "guest=%s" % qemu_opt(cfg.name),
            "-machine", "q35",
            "-device", "pcie-root-port,port=0x10,chassis=1,id=pci.1,bus=pcie.0,multifunction=on,addr=0x3",
            "-device", "pcie-root-port,port=0x11,chassis=2,id=pci.2,bus=pcie.0,addr=0x3.0x6",
            "-device", "pcie-root-port,port=0x12,chassis=3,id=pci.4,bus=pcie.0,addr=0x3.0x4",
            # Hot-plugged volumes are LUNs on this controller: Nanos notices them (PCI hot-plug on
            # q35 it does not).
            "-device", "virtio-scsi-pci,bus=pci.2,addr=0x0,id=scsi0",
            "-blockdev", json.dumps(blockdev(BOOT_NODE, cfg.image), sort_keys=True),
            "-device", json.dumps(scsi_device(BOOT_NODE, "boot", bootindex=0), sort_keys=True)]
    for vol in cfg.volumes:
        argv += ["-blockdev", json.dumps(blockdev(vol["node"], vol["path"], vol.get("read_only")),
                                         sort_keys=True),
                 "-device", json.dumps(scsi_device(vol["node"], vol["id"], vol.get("attach_id")),
                                       sort_keys=True)]
    for tag in sorted(cfg.shares, key=int):
        # a share the guest mounts :ro is read-only in QEMU too: a guest that ignores its
        # manifest (or a 9p client bug) still cannot write the host folder
        argv += ["-virtfs", "local,path=%s,mount_tag=%s,security_model=none,multidevs=remap,id=fs%s%s"
                 % (qemu_opt(cfg.shares[tag]), tag, tag,
                    ",readonly=on" if str(tag) in cfg.read_only_shares else "")]
    netdev = "user,id=n0"
    for port in cfg.ports:
        proto, addr, host, guest = parse_port(port)
        netdev += ",hostfwd=%s:%s:%d-:%d" % (proto, addr, host, guest)
    argv += ["-m", str(cfg.memory), "-smp", str(cfg.cpus),
             "-device", "virtio-rng-pci", "-device", "isa-debug-exit",
             "-netdev", netdev, "-device", "virtio-net-pci,bus=pci.4,addr=0x0,netdev=n0",
             "-display", "none", "-vga", "none", "-no-reboot",
             "-accel", cfg.accel, "-cpu", "host" if cfg.accel == "kvm" else "max"]
    if cfg.console:
        argv += ["-serial", "file:%s" % cfg.console]  # taken literally: no escaping here
    if cfg.qmp_socket:
        argv += ["-qmp", "unix:%s,server=on,wait=off" % qemu_opt(cfg.qmp_socket)]
    if cfg.pidfile:
        argv += ["-pidfile", cfg.pidfile, "-daemonize"]
    return argv


def find_binary(binary=QEMU_BINARY):
    path = shutil.which(binary)
    if path is None:
        raise OpsError("%s was not found; install QEMU (Debian: apt-get install qemu-system-x86)"
                       % binary)
    return path


def choose_accel(requested="auto", sys_module="/sys/module", dev="/dev/kvm"):
    """(accelerator, why). auto takes KVM only where it runs Nanos: a hardware KVM (kvm_intel or
    kvm_amd) that this user can open. The PVM flavour (kvm_pvm) starts QEMU but fails Nanos
    guests, and QEMU's own kvm:tcg fallback does not notice, so auto takes TCG there."""
    if requested == "tcg":
        return "tcg", "asked for"
    usable = os.path.exists(dev) and os.access(dev, os.R_OK | os.W_OK)
    modules = set(os.listdir(sys_module)) if os.path.isdir(sys_module) else set()
    if requested == "kvm":
        if not usable:
            raise OpsError("accel kvm was asked for, but %s is missing or not accessible" % dev)
        return "kvm", "asked for"
    if not usable:
        return "tcg", "%s is missing or not accessible" % dev
    if "kvm_pvm" in modules:
        return "tcg", "this host's KVM is the PVM flavour, which does not run Nanos guests"
    if not modules & {"kvm_intel", "kvm_amd"}:
        return "tcg", "no hardware KVM module (kvm_intel, kvm_amd) is loaded"
    return "kvm", "hardware KVM is available"
