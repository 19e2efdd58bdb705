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
  - Releases come from where C(ops update) gets them (O(release_url), ops' release store by
    default, or a mirror of it), or from a tarball at hand (O(src)). V(latest) is the release
    the store's C(latest.txt) names; V(nightly) is the nightly build, installed as ops installs
    it.
  - Downloads are streamed into an owner-only temporary folder of the ops home, never held in
    memory, and retried at most 3 times in all (after 1 s, then 2 s) when the store does not
    answer, breaks off or answers 5xx; a 4xx is not retried. The tarball is checked against
    O(checksum) and must hold C(kernel.img) and C(boot.img); it is unpacked into a temporary
    folder that replaces the release folder whole, so a failed install leaves the previous one
    in place and nothing behind.
  - A tarball whose C(kernel.img) is not a Nanos kernel (the 64-bit x86_64 ELF executable of a
    release, with loadable segments and no dynamic loader) or whose C(boot.img) is not a Nanos
    boot sector image (the C(0x55AA) signature and the stage2 record Nanos' stage1 ends with,
    describing the stage2 that follows) is refused, naming the member and the tarball, before
    anything is installed.
  - Requests go through Ansible's C(open_url) on the managed host (Python's standard library),
    which takes proxies from the environment (C(https_proxy), C(http_proxy), C(no_proxy)) as
    urllib reads them.
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
    description:
      - No tarball is downloaded and nothing is written; C(changed) tells what a real run
        would do.
      - With O(version=latest) or O(version=nightly) and no O(src), check mode still reads the
        store's small C(latest.txt) (or the nightly timestamp), to know which release a real run
        would install.
      - An O(src) on the managed host that a real run would install is checked as that run
        checks it (O(checksum), a readable tarball, a kernel and boot record), unpacked in a
        temporary folder outside the ops home that is then removed, so check mode fails where
        the real run would.
  diff_mode:
    support: none
    description: The result lists the actions instead.
options:
  version:
    description:
      - The release version, the name of its folder in the ops home (for example V(0.1.54)); at
        most 128 characters.
      - V(latest) reads C(latest.txt) at O(release_url) (as C(ops update) does) and installs
        the release it names from C(<release_url>/<version>/nanos-release-linux-<version>.tar.gz).
        That release already installed is no change and downloads no tarball.
      - V(nightly) installs the nightly build C(<release_url>/nightly/nanos-nightly-linux.tar.gz)
        into C(<ops_dir>/nightly/), as ops does with C(--nightly). Like ops, it keeps the
        timestamp of the build (C(<release_url>/nightly/nanos-nightly-linux.timestamp)) in
        C(<ops_dir>/nightly/nanos-nightly-linux.timestamp), downloads again only when the
        store's timestamp differs, and never writes V(nightly) into C(latest.txt) (O(latest) is
        ignored).
      - Any other version without O(src) is downloaded from
        C(<release_url>/<version>/nanos-release-linux-<version>.tar.gz) when it is not
        installed.
      - Releases are those of Linux on x86-64 (ops' C(-virt) and C(-arm) variants are not
        handled).
    type: str
    required: true
  src:
    description:
      - URL (http, https, file) or path on the managed host of a release tarball at hand, used
        instead of O(release_url). Not with O(version=latest).
      - Only read when the release must be installed.
    type: str
  release_url:
    description:
      - Where releases are, laid out as ops' release store - C(latest.txt),
        C(<version>/nanos-release-linux-<version>.tar.gz) and
        C(nightly/nanos-nightly-linux.tar.gz) with C(nightly/nanos-nightly-linux.timestamp).
      - The default is where ops gets them. Set it to a mirror on sites without internet access
        (http, https or file URL).
    type: str
    default: https://storage.googleapis.com/nanos/release/
  checksum:
    description:
      - The tarball's SHA-256, as V(sha256:<hex>) (the form M(ansible.builtin.get_url) takes) or
        bare hex. A mismatch fails the task and installs nothing.
      - With a checksum, an installed release that was installed from another tarball is
        replaced.
    type: str
  latest:
    description:
      - Write the version to C(latest.txt), making it the default kernel for images.
      - Ignored for V(nightly).
    type: bool
    default: true
  state:
    description:
      - V(present) installs the release; V(absent) removes its folder (and C(latest.txt) if it
        named it). V(absent) needs a version, not V(latest).
    type: str
    choices: [present, absent]
    default: present
  force:
    description: Download and install again even when the release is already there.
    type: bool
    default: false
  timeout:
    description:
      - Seconds the store has to answer a request, all its attempts together (so a store that
        is down or hangs fails the task within this time), and to deliver each piece of a
        download once it answered. A whole download may take longer.
    type: int
    default: 60
  validate_certs:
    description: Check the server's TLS certificate for https URLs.
    type: bool
    default: true
notes:
  - Kernels live in the ops home on the managed host whatever O(provider) says (cloud images are
    built locally too); the provider options are accepted, and ignored, so that one
    C(module_defaults) entry for the C(group/unikernel.ops.ops) action group fits every module.
  - Files the module writes for itself (the temporary download, C(latest.txt), the nightly
    timestamp and its own records) are owner-only.
seealso:
  - module: unikernel.ops.ops_kernel_info
  - module: unikernel.ops.ops_image
"""

EXAMPLES = r"""
- name: Install the latest Nanos release, as ops update does
  unikernel.ops.ops_kernel:
    version: latest

- name: The latest release from a mirror (an air-gapped site)
  unikernel.ops.ops_kernel:
    version: latest
    release_url: https://mirror.example.com/nanos/release/
    timeout: 20

- name: A pinned release from ops' store, checked by its checksum
  unikernel.ops.ops_kernel:
    version: 0.1.54
    checksum: sha256:4f0c0d1cd3c1b7ab7d7a0f1f0f79cb35b08bdc0e73b0d33a25b76a8e0cf1c2a1

- name: The nightly build, as ops --nightly gets it (latest.txt is left alone)
  unikernel.ops.ops_kernel:
    version: nightly

- name: Install from a tarball already on the host
  unikernel.ops.ops_kernel:
    version: 0.1.54
    src: /srv/mirror/nanos-release-linux-0.1.54.tar.gz
"""

RETURN = r"""
version:
  description:
    - The release the task is about; for O(version=latest) the version C(latest.txt) at
      O(release_url) names.
  returned: always
  type: str
  sample: 0.1.54
kernel:
  description:
    - The installed release. Null when O(state=absent), and in check mode when it is not
      installed yet.
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
download:
  description: The tarball the task downloaded; null when it downloaded none.
  returned: always
  type: dict
  contains:
    url:
      description: What was downloaded.
      type: str
      sample: https://storage.googleapis.com/nanos/release/0.1.54/nanos-release-linux-0.1.54.tar.gz
    bytes:
      description: Its size.
      type: int
      sample: 5242880
    seconds:
      description: How long the download took, retries included.
      type: float
      sample: 1.734
    attempts:
      description: How many attempts it took (1 when the first one worked).
      type: int
      sample: 1
actions:
  description: What the task did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["install Nanos 0.1.54 from /srv/mirror/nanos-release-linux-0.1.54.tar.gz into /home/user/.ops/0.1.54"]
"""

from ansible_collections.unikernel.ops.plugins.module_utils.images import kernels
from ansible_collections.unikernel.ops.plugins.module_utils.images.releases import (
    DEFAULT_RELEASE_URL,
)
from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.ops_home import OpsHome

TASK_OPTIONS = ("version", "state", "src", "release_url", "checksum", "latest", "force",
                "timeout", "validate_certs")


def run(m):
    return kernels.ensure(OpsHome(m.params["ops_dir"]), check_mode=m.check_mode,
                          **dict((k, m.params[k]) for k in TASK_OPTIONS))


def main():
    m = OpsModule(
        argument_spec=dict(
            version=dict(type="str", required=True),
            src=dict(type="str"),
            release_url=dict(type="str", default=DEFAULT_RELEASE_URL),
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
