#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_kernel
short_description: Install a Nanos kernel release into the ops home
version_added: 0.1.0
description:
  - Installs a Nanos release tarball (C(nanos-release-linux-<version>.tar.gz), holding
    C(kernel.img), C(boot.img) and C(klibs/)) into C(<ops_dir>/<version>/), where the ops CLI and
    M(unikernel.ops.ops_image) look for kernels, and records it in C(latest.txt) as
    C(ops update) does.
  - The tarball comes from a URL or a file on the managed host. It is checked against
    O(checksum) before anything is unpacked, and unpacked into a temporary folder that replaces
    the release folder whole, so a failed install leaves the previous one in place.
author:
  - unikernel.ops maintainers (@unikernel-ops)
extends_documentation_fragment:
  - unikernel.ops.ops_home
  - unikernel.ops.ops_home.PROVIDER
  - unikernel.ops.aws
  - unikernel.ops.gcp
  - unikernel.ops.aws.WAITS
attributes:
  check_mode:
    support: full
    description: Nothing is downloaded or written; C(changed) tells what a real run would do.
  diff_mode:
    support: none
    description: The result lists the actions instead.
options:
  version:
    description:
      - The release version, the name of its folder in the ops home (for example V(0.1.54)).
    type: str
    required: true
  src:
    description:
      - URL (http, https, file) or path on the managed host of the release tarball.
      - Required with O(state=present) unless the release is already installed.
    type: str
  checksum:
    description:
      - The tarball's SHA-256, as V(sha256:<hex>) (the form M(ansible.builtin.get_url) takes) or
        bare hex. A mismatch fails the task and installs nothing.
      - With a checksum, an installed release that was installed from another tarball is
        replaced.
    type: str
  latest:
    description: Write the version to C(latest.txt), making it the default kernel for images.
    type: bool
    default: true
  state:
    description: V(present) installs the release; V(absent) removes its folder (and C(latest.txt) if it named it).
    type: str
    choices: [present, absent]
    default: present
  force:
    description: Install again even when the release is already there.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for the download to start and for each read.
    type: int
    default: 60
  validate_certs:
    description: Check the server's TLS certificate when O(src) is an https URL.
    type: bool
    default: true
notes:
  - Kernels live in the ops home on the managed host whatever O(provider) says (cloud images are
    built locally too); the provider options are accepted, and ignored, so that one
    C(module_defaults) entry for the C(group/unikernel.ops.ops) action group fits every module.
seealso:
  - module: unikernel.ops.ops_image
"""

EXAMPLES = r"""
- name: Install a Nanos release and make it the default kernel
  unikernel.ops.ops_kernel:
    version: 0.1.54
    src: https://example.com/nanos/release/0.1.54/nanos-release-linux-0.1.54.tar.gz
    checksum: sha256:4f0c0d1cd3c1b7ab7d7a0f1f0f79cb35b08bdc0e73b0d33a25b76a8e0cf1c2a1

- name: Install from a tarball already on the host
  unikernel.ops.ops_kernel:
    version: 0.1.54
    src: /srv/mirror/nanos-release-linux-0.1.54.tar.gz
"""

RETURN = r"""
kernel:
  description: The installed release. Null when O(state=absent).
  returned: always
  type: dict
  contains:
    version:
      description: The release version.
      type: str
      sample: 0.1.54
    kernel:
      description: Path of C(kernel.img).
      type: str
      sample: /home/user/.ops/0.1.54/kernel.img
    boot:
      description: Path of C(boot.img).
      type: str
      sample: /home/user/.ops/0.1.54/boot.img
    klibs:
      description: Path of the klibs folder, null when the release has none.
      type: str
      sample: /home/user/.ops/0.1.54/klibs
actions:
  description: What the task did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["install Nanos 0.1.54 from /srv/mirror/nanos-release-linux-0.1.54.tar.gz into /home/user/.ops/0.1.54"]
"""

import shutil

from ansible.module_utils.urls import open_url

from ansible_collections.unikernel.ops.plugins.module_utils.images import kernels
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome


def run(m):
    p = m.params
    home = OpsHome(p["ops_dir"])
    store = kernels.ReleaseStore(home)
    if p["state"] == "absent":
        changed, actions = store.remove(p["version"], check_mode=m.check_mode)
        return dict(changed=changed, actions=actions, kernel=None)

    def download(url, dest):
        try:
            resp = open_url(url, timeout=p["timeout"], validate_certs=p["validate_certs"])
            with open(dest, "wb") as out:
                shutil.copyfileobj(resp, out, 1024 * 1024)
        except Exception as e:  # urllib raises many types; all mean the same here
            raise OpsError("downloading %s failed: %s" % (url, e))

    folder, present, dummy = store.status(kernels.validate_version(p["version"]))
    if not p["src"] and (not present or p["force"]):
        raise OpsError("src is required to install Nanos %s (it is not in %s)" % (p["version"], folder))
    changed, actions = store.install(p["version"], p["src"] or "", download, p["checksum"],
                                     p["latest"], p["force"], m.check_mode)
    kernel = None
    if not m.check_mode or present:
        kernel = kernels.resolve(home, p["version"]).as_dict()
    return dict(changed=changed, actions=actions, kernel=kernel)


def main():
    m = OpsModule(
        argument_spec=dict(
            version=dict(type="str", required=True),
            src=dict(type="str"),
            checksum=dict(type="str"),
            latest=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            force=dict(type="bool", default=False),
            timeout=dict(type="int", default=60),
            validate_certs=dict(type="bool", default=True),
        ),
        providers="accepted",
        supports_check_mode=True,
    )
    m.run(run)


if __name__ == "__main__":
    main()
