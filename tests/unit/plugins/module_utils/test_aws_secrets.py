# -*- coding: utf-8 -*-
"""A known secret key never shows up: not in a result, not in a failure's msg or details, not
in any line ansible-playbook prints or logs at -vvv."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec, backend
from ansible_collections.unikernel.ops.tests.unit.conftest import COLLECTIONS_PATH
from ansible_collections.unikernel.ops.tests.unit.plugins.module_utils import aws_helpers as aws

PLAY = """
- hosts: localhost
  gather_facts: false
  module_defaults:
    group/unikernel.ops.ops:
      provider: aws
      region: us-east-1
      zone: us-east-1a
      endpoint_url: "{url}"
      access_key: "{access}"
      secret_key: "{secret}"
      ops_dir: "{ops}"
  tasks:
    - name: A volume
      unikernel.ops.ops_volume:
        name: secretive
        size: 1g
    - name: Listed
      unikernel.ops.ops_volume_info:
    - name: Bad input fails with the provider's error
      unikernel.ops.ops_volume:
        name: secretive2
        zone: us-east-1zz
      ignore_errors: true
    - name: An endpoint that refuses connections fails too
      unikernel.ops.ops_volume_info:
        endpoint_url: "http://127.0.0.1:9"
        wait_timeout: 5
      ignore_errors: true
"""


def test_engine_results_and_errors_hold_no_secret(cloud):
    p = aws.params(cloud["url"], cloud["ops"])
    out = backend("volumes", p).present(VolumeSpec(name="s", size="1g"))
    text = json.dumps([out.volume, out.actions, out.warnings, out.before, out.after], default=str)
    with pytest.raises(OpsError) as bad:
        backend("volumes", dict(p, zone="us-east-1zz")).present(VolumeSpec(name="t"))
    with pytest.raises(OpsError) as refused:
        backend("volumes", dict(p, endpoint_url="http://127.0.0.1:9")).list_volumes()
    for e in (bad.value, refused.value):
        text += e.msg + json.dumps(e.details, default=str)
    assert "refused" in refused.value.msg or "connect" in refused.value.msg.lower()
    assert aws.SECRET not in text and aws.ACCESS not in text


def test_playbook_output_and_log_hold_no_secret(cloud, tmp_path):
    play = tmp_path / "play.yml"
    play.write_text(PLAY.format(url=cloud["url"], access=aws.ACCESS, secret=aws.SECRET,
                                ops=cloud["ops"]))
    log = tmp_path / "ansible.log"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_PATH, ANSIBLE_LOG_PATH=str(log),
               ANSIBLE_NOCOLOR="1", ANSIBLE_PYTHON_INTERPRETER=sys.executable)
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                          "-vvv", "-i", "localhost,", "-c", "local", str(play)],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    output = run.stdout + run.stderr + log.read_text()
    assert run.returncode == 0, output[-3000:]
    assert "ok=4" in run.stdout and "ignored=2" in run.stdout, run.stdout[-2000:]
    assert "is not an availability zone" in run.stdout
    assert aws.SECRET not in output and aws.ACCESS not in output
