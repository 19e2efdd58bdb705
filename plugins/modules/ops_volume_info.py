#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_volume_info
short_description: List Nanos unikernel volumes and what they hold
version_added: 0.1.0
description:
  - Lists the volumes in the ops home, as C(ops volume list) does, including volumes made by the
    ops CLI, read with the collection's own TFS reader.
  - With O(contents=true), returns each volume's tree (paths, types, sizes, link targets), and
    with O(checksums=true) the SHA-256 of every file's data, read from the volume itself.
  - With O(provider=aws), lists the EBS volumes tagged C(CreatedBy=ops) (the collection's and
    ops' own), with C(id), C(zone), C(state), C(snapshot_id), C(fingerprint) and
    C(attachments); O(contents=true) reads the volume's snapshot back with the EBS direct API
    and lists its tree with the same reader.
  - With O(provider=gcp), lists the collection's persistent disks in O(zone) (by their
    C(unikernel-ops=volume) label), with their real name, C(resource_name), UUID, image, staging
    object, fingerprint and attachments.
  - With O(provider=azure), lists the collection's managed disks in O(resource_group), with
    their state, size, SKU, UUID, fingerprint and the VM that holds them.
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
    description: Only the volume of this name.
    type: str
  uuid:
    description: Only the volume with this UUID.
    type: str
  contents:
    description: Return each volume's tree in RV(volumes[].contents).
    type: bool
    default: false
  checksums:
    description:
      - With O(contents=true), add the SHA-256 of each regular file's data. Reads all the data.
    type: bool
    default: false
seealso:
  - module: unikernel.ops.ops_volume
"""

EXAMPLES = r"""
- name: List all volumes
  unikernel.ops.ops_volume_info:
  register: vols

- name: Show what one volume holds, with checksums
  unikernel.ops.ops_volume_info:
    name: my-assets
    contents: true
    checksums: true
  register: assets

- name: Compare a file in the volume with its source
  ansible.builtin.assert:
    that:
      - (assets.volumes[0].contents | selectattr('path', 'equalto', '/index.html') | first).sha256
        == lookup('ansible.builtin.file', 'my-assets/index.html') | hash('sha256')
"""

RETURN = r"""
volumes:
  description: The volumes found, in file name order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The volume's name (from its file name, as ops reads it).
      type: str
      sample: my-assets
    uuid:
      description: The volume's UUID (from its file name).
      type: str
      sample: e1a9a40e-8d2b-19b7-61b7-57c43f362aaa
    path:
      description: The volume file.
      type: str
      sample: /home/user/.ops/volumes/my-assets:e1a9a40e-8d2b-19b7-61b7-57c43f362aaa.raw
    size:
      description: Size in bytes.
      type: int
      sample: 10737418240
    created:
      description: The file's modification time, ISO 8601 in UTC.
      type: str
      sample: "2026-11-25T23:56:01.123456+00:00"
    provider:
      description: Where the volume lives.
      type: str
      sample: onprem
    label:
      description: The filesystem label. Absent when RV(volumes[].error) is set.
      type: str
      sample: my-assets
    tfs_version:
      description: The TFS format version.
      type: int
      sample: 5
    used:
      description: Bytes the filesystem uses for data and its log.
      type: int
      sample: 1590272
    files:
      description: Number of regular files.
      type: int
      sample: 12
    directories:
      description: Number of directories, not counting the root.
      type: int
      sample: 3
    symlinks:
      description: Number of symbolic links.
      type: int
      sample: 1
    contents:
      description: Every entry below the root, parents before children.
      returned: when O(contents=true)
      type: list
      elements: dict
      sample:
        - {path: /index.html, type: file, size: 1024, sha256: "9f86d08..."}
        - {path: /img, type: directory}
        - {path: /latest, type: symlink, target: index.html}
    warning:
      description: Set when the file name and the filesystem disagree on the UUID.
      returned: when they disagree
      type: str
    error:
      description:
        - Why the file could not be read as a Nanos volume (a damaged header or log, a log that
          loops or points past the end of the file, a tree that holds itself, ...), naming the
          file; the other facts are missing.
        - A damaged volume does not fail the task; the other volumes are listed as they are.
      returned: when the file is not a readable volume
      type: str
"""

from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.providers import backend


def run(m):
    p = m.params
    provider = backend("volumes", p)
    volumes = provider.list_volumes(name=p["name"], uuid=p["uuid"], contents=p["contents"],
                                    checksums=p["checksums"])
    return dict(changed=False, volumes=volumes)


def main():
    m = OpsModule(
        argument_spec=dict(
            name=dict(type="str"),
            uuid=dict(type="str"),
            contents=dict(type="bool", default=False),
            checksums=dict(type="bool", default=False),
        ),
        providers=True,
        supports_check_mode=True,
    )
    m.run(run)


if __name__ == "__main__":
    main()
