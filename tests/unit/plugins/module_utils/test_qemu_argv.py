# -*- coding: utf-8 -*-
"""The exact QEMU argv for each configuration in test_qemu_argv.yml (CmdRunner-style)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest
import yaml

from ansible_collections.unikernel.ops.plugins.module_utils.local import qemu
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

CASES = yaml.safe_load(open(os.path.join(os.path.dirname(__file__), "test_qemu_argv.yml")))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_argv(case):
    assert qemu.build_argv(qemu.LaunchConfig(**case["config"])) == case["argv"]


@pytest.mark.parametrize("spec, parsed", [
    ("8080", ("tcp", "127.0.0.1", 8080, 8080)),
    ("8080:80", ("tcp", "127.0.0.1", 8080, 80)),
    ("0.0.0.0:8080:80", ("tcp", "0.0.0.0", 8080, 80)),
    ("53/udp", ("udp", "127.0.0.1", 53, 53)),
])
def test_ports(spec, parsed):
    assert qemu.parse_port(spec) == parsed


@pytest.mark.parametrize("spec", ["http", "70000", "1:2:3:4", "80:0", "-1"])
def test_bad_ports(spec):
    with pytest.raises(OpsError, match="port"):
        qemu.parse_port(spec)
