#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_image_info
short_description: List Nanos images and read their manifests
version_added: 0.1.0
description:
  - Lists the images in C(<ops_dir>/images/), as C(ops image list) does (images made by the ops
    CLI included), and returns each one's manifest read back from the image itself - program,
    arguments, environment, mounts, C(readonly_rootfs), klibs.
  - With O(provider=aws), lists the AMIs of this account tagged C(CreatedBy=ops), with C(id),
    C(state), C(snapshot_id) and C(fingerprint) from their tags.
  - With O(provider=gcp), lists the collection's Compute Engine images with their guest OS
    features, staging object and fingerprint.
  - With O(provider=azure), lists the collection's images in O(resource_group) with their
    provisioning state, fingerprint and the managed disk they were made from.
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
  name:
    description: Only the image of this name.
    type: str
seealso:
  - module: unikernel.ops.ops_image
"""

EXAMPLES = r"""
- name: What does the webapp image mount?
  unikernel.ops.ops_image_info:
    name: webapp
  register: info

- name: Show its mounts
  ansible.builtin.debug:
    var: info.images[0].mounts
"""

RETURN = r"""
images:
  description: The images found, in name order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The image's name.
      type: str
      sample: webapp
    path:
      description: The image file.
      type: str
      sample: /home/user/.ops/images/webapp
    size:
      description: Size in bytes.
      type: int
      sample: 25165824
    program:
      description: The manifest's program.
      type: str
      sample: /webapp
    arguments:
      description: The manifest's arguments.
      type: list
      elements: str
      sample: [/webapp, --port, "8080"]
    environment:
      description: The manifest's environment.
      type: dict
      sample: {USER: root, PWD: /, NANOS_VERSION: 0.1.54}
    mounts:
      description: The manifest's mounts, key to mount point (V(:ro) kept).
      type: dict
      sample: {my-assets: /assets}
    readonly_rootfs:
      description: Whether the manifest makes the root filesystem read-only.
      type: bool
      sample: false
    klibs:
      description: Klibs in the boot filesystem.
      type: list
      elements: str
      sample: []
    kernel_size:
      description: Size of the kernel in the boot filesystem.
      type: int
      sample: 1742928
    files:
      description: Number of regular files in the root filesystem.
      type: int
      sample: 7
    manifest:
      description: Every key of the manifest (the root filesystem's root tuple except its tree).
      type: dict
      sample: {program: /webapp, arguments: [/webapp], environment: {USER: root}}
    rootfs_uuid:
      description: The root filesystem's UUID.
      type: str
      sample: f8f20be5-f5e9-5ed8-124b-6b650a5accbf
    built_by_collection:
      description: Whether this collection built the image as it is now (its fingerprint applies).
      type: bool
      sample: true
    fingerprint:
      description: The fingerprint of the inputs of the last build by this collection.
      returned: when this collection built the image
      type: str
    kernel:
      description: The kernel of the last build by this collection.
      returned: when this collection built the image
      type: dict
    shares:
      description: Host directories shared over 9p, by attach id.
      returned: when this collection built the image
      type: dict
    volumes:
      description: Local volume files named by the mounts, by mount key, at build time.
      returned: when this collection built the image
      type: dict
    error:
      description:
        - Why the file could not be read as a Nanos image (no partition table, a damaged boot or
          root filesystem), naming the file and, for a filesystem, where in it it starts.
        - A damaged image does not fail the task; the other images are listed as they are.
      returned: when the file is not a readable image
      type: str
"""

from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.providers import backend


def run(m):
    return dict(changed=False, images=backend("images", m.params).list_images(m.params["name"]))


def main():
    m = OpsModule(argument_spec=dict(name=dict(type="str")), supports_check_mode=True,
                  providers=True)
    m.run(run)


if __name__ == "__main__":
    main()
