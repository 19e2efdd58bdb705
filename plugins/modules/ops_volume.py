#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_volume
short_description: Create, grow and delete Nanos unikernel volumes
version_added: 0.1.0
description:
  - Builds a Nanos volume (a TFS filesystem in a raw file) from a host directory, the way
    C(ops volume create NAME -s SIZE -d DIR) does, natively in Python; the ops CLI is not needed.
  - The volume is the file C(<ops_dir>/volumes/<name>:<uuid>.raw), so C(ops volume list) and
    C(ops run --mounts) see and use it, and volumes made by ops are managed here too.
  - The directory's contents become the volume root (unlike ops, where C(-d ./data) and
    C(-d data) differ).
  - An existing volume is never rebuilt unless O(force=true), since a guest may have written to it.
    When its content differs from O(source), the module changes nothing, warns, and shows the
    difference with C(--diff).
  - Every volume gets room for the guest to write; ops' default size does not (the guest
    reserves 1 MiB for its log before its first write).
  - An existing volume file that is damaged - its TFS header or log does not read, or the file is
    shorter than its log and data say - or that was renamed (its header holds another label or
    UUID than its file name) is refused with a message naming the file and what is wrong, and
    left as it is, even with O(force=true). Only the header and the log are read for this.
  - With O(provider=aws), the same filesystem is built locally at a whole number of GiB (the
    size is rounded up, and the result says so), sent as an EBS snapshot with the EBS direct
    API (only the 512 KiB blocks that hold data, in parallel), and an EBS volume is made from it
    in O(zone), tagged C(Name) and C(CreatedBy=ops) as ops tags it (C(ops volume list -t aws)
    lists it) plus the collection's label, UUID and content fingerprint. An unchanged source
    makes no mutating call and sends nothing. With O(force=true) a changed source gets a new
    snapshot that sends only the blocks that differ (C(ParentSnapshotId)) and a replacement
    volume; refused while the volume is attached. A larger O(size) grows it in place
    (C(ModifyVolume)). V(absent) deletes the volume and the snapshot the collection made for it,
    and is refused while it is attached.
  - With O(provider=gcp), the filesystem is built at a whole number of GiB, streamed as
    C(disk.raw) in a sparse C(.tar.gz) (holes are never read or sent) to O(bucket) with a
    resumable upload, imported with C(images.insert), and a persistent disk is made from that
    image in O(zone). GCE names are strict, so the disk's name is derived from O(name) (itself
    when valid, else with invalid characters replaced and a short hash added); the real name,
    UUID, fingerprint, image and staging object are kept in its description. Unchanged sources,
    O(force), growth (C(disks.resize)) and V(absent) (the disk, its image and its staging object)
    behave as on AWS.
  - With O(provider=azure), the filesystem is built locally with its data part a whole number of
    MiB (at least 20 MiB), a fixed-VHD footer is written after it by the collection (no
    qemu-img), and it is uploaded directly into a managed disk in O(resource_group) (no storage
    account) - created with C(createOption) V(Upload), write access granted, only the non-zero
    512-byte pages sent through the SAS URL, access revoked, waited for until the disk is
    C(Unattached). Sizes over 4 GiB work. Tags hold C(CreatedBy=ops), the name, UUID and
    fingerprint. Unchanged sources and O(force) behave as on AWS (a forced rebuild builds the new
    VHD first, then deletes the disk and uploads it again under the same name, as Azure disks
    cannot be renamed); a larger O(size) grows the disk (C(Disks.Update)); V(absent) deletes the
    disk; both are refused while it is attached.
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
    description: Nothing is written; C(changed) and the diff tell what a real run would do.
  diff_mode:
    support: full
    description: Before and after show the size and one line per file, directory and symlink.
options:
  name:
    description:
      - The volume's name, which is also its filesystem label and the key a manifest mounts it by.
      - At most 31 bytes (Nanos never mounts a longer label); no C(:), C(/), whitespace or
        control characters; must not start with C(%) or C(.).
      - Names are unique. A second volume of the same name is refused (ops allows it, and then
        cannot delete or attach either).
    type: str
    required: true
  state:
    description:
      - V(present) creates the volume when missing, grows it when O(size) is larger, and
        rebuilds it when its content differs from O(source) only with O(force=true).
      - V(absent) deletes the volume file.
    type: str
    choices: [present, absent]
    default: present
  size:
    description:
      - The size of the volume file, in ops' grammar - a whole number of bytes optionally followed
        by V(k), V(m) or V(g) (any case, base 1024), rounded up to a multiple of 512. Examples
        V(512), V(56k), V(500m), V(10g). Anything else (V(10GB), V(1.5g)) is an error, where ops
        silently ignores it.
      - When omitted, a new volume gets its content plus at least 1 MiB of free space, rounded up
        to a whole MiB; an existing volume keeps its size.
      - A size too small for the content is an error (ops silently grows the file). The smallest
        size accepted holds the content and its log, the 1 MiB the guest reserves for its log, and
        one free sector for the guest to write (plus a log extension of 512 KiB when the last one
        is nearly full); the message gives it. A larger size grows an existing volume in place,
        which is safe (Nanos takes the disk's size). A smaller one is refused.
    type: str
  source:
    description:
      - A directory on the managed host whose contents become the volume's root. Regular files,
        directories and symlinks are copied (symlinks as links); other file types are an error.
      - When omitted, a new volume is empty and an existing one is not compared with anything.
    type: path
  uuid:
    description:
      - A fixed UUID for a new volume (C(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)); a random one
        otherwise.
      - With an existing volume, selects it by UUID; a volume of this name with another UUID is
        an error.
    type: str
  force:
    description:
      - Rebuild an existing volume whose content differs from O(source), keeping its UUID and
        size (grown if the content needs more). Everything a guest wrote to it is replaced.
      - A damaged volume file is not rebuilt; delete it (V(absent)) to build it again.
    type: bool
    default: false
  volume_type:
    description:
      - The EBS volume type with O(provider=aws) (V(gp3) when omitted), the persistent disk type
        with O(provider=gcp) (V(pd-balanced) when omitted), the managed disk SKU with
        O(provider=azure) (V(Standard_LRS) when omitted).
    type: str
    aliases: [disk_type]
  iops:
    description:
      - Provisioned IOPS (V(gp3), V(io1), V(io2)). Only with O(provider=aws).
    type: int
  throughput:
    description:
      - Throughput in MiB/s (V(gp3)). Only with O(provider=aws).
    type: int
  encrypted:
    description:
      - Encrypt the EBS volume (with the account's default key). Only with O(provider=aws).
    type: bool
  tags:
    description:
      - Tags of the cloud volume besides those the collection sets (C(Name), C(CreatedBy),
        C(unikernel-ops:*)). Only with a cloud O(provider).
    type: dict
  tfs_version:
    description:
      - The TFS format version of a new volume. V(4) is what C(ops --tfsv4) writes, for old
        kernels.
    type: int
    choices: [4, 5]
    default: 5
notes:
  - Files are copied with C(copy_file_range) where the kernel offers it, the volume is written to
    a temporary file in the ops home and renamed into place, and it stays sparse.
  - A lock in the ops home serialises concurrent runs, so two cannot create the same volume.
seealso:
  - module: unikernel.ops.ops_volume_info
"""

EXAMPLES = r"""
- name: Build a 10 GiB volume from a directory of assets
  unikernel.ops.ops_volume:
    name: my-assets
    size: 10g
    source: ./my-assets

- name: An empty volume for the guest to write to
  unikernel.ops.ops_volume:
    name: scratch
    size: 64m

- name: Rebuild a volume when its source changed (replaces what a guest wrote)
  unikernel.ops.ops_volume:
    name: my-assets
    source: ./my-assets
    force: true

- name: The same volume as an EBS volume in eu-west-1a (sent as a snapshot, data blocks only)
  unikernel.ops.ops_volume:
    provider: aws
    region: eu-west-1
    zone: eu-west-1a
    name: my-assets
    size: 10g
    source: ./my-assets
    volume_type: gp3
    tags:
      team: web

- name: Delete a volume
  unikernel.ops.ops_volume:
    name: scratch
    state: absent
"""

RETURN = r"""
volume:
  description:
    - The volume after the task; in check mode, what it would be (a new volume's UUID and path are
      null unless O(uuid) was given). Null when O(state=absent).
  returned: always
  type: dict
  contains:
    name:
      description: The volume's name.
      type: str
      sample: my-assets
    uuid:
      description: The filesystem UUID, as in the file name.
      type: str
      sample: e1a9a40e-8d2b-19b7-61b7-57c43f362aaa
    label:
      description: The filesystem label Nanos matches mounts against.
      type: str
      sample: my-assets
    path:
      description: The volume file.
      type: str
      sample: /home/user/.ops/volumes/my-assets:e1a9a40e-8d2b-19b7-61b7-57c43f362aaa.raw
    size:
      description: Size of the volume (and of its file) in bytes.
      type: int
      sample: 10737418240
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
    tfs_version:
      description: The TFS format version.
      type: int
      sample: 5
    created:
      description: The volume file's modification time (what C(ops volume list) shows as created).
      type: str
      sample: "2026-11-25T23:56:01.123456+00:00"
    provider:
      description: Where the volume lives.
      type: str
      sample: onprem
    id:
      description: The EBS volume id (O(provider=aws)).
      type: str
      sample: vol-0123456789abcdef0
    zone:
      description: Its availability zone (O(provider=aws)).
      type: str
      sample: eu-west-1a
    size_gib:
      description: Its size in GiB (O(provider=aws)).
      type: int
      sample: 10
    requested_size:
      description: The size asked for before rounding up to whole GiB (O(provider=aws), new volumes).
      type: int
    notes:
      description: What was adjusted, such as the size rounded up to whole GiB.
      type: list
      elements: str
    snapshot_id:
      description: The EBS snapshot the volume was made from (O(provider=aws)).
      type: str
      sample: snap-0123456789abcdef0
    fingerprint:
      description: Digest of the source's structure and content the volume was built from.
      type: str
    state:
      description: The EBS volume state (O(provider=aws)).
      type: str
      sample: available
    attachments:
      description: Instances it is attached to, with C(instance_id), C(device) and C(state).
      type: list
      elements: dict
    upload:
      description:
        - What was sent (O(provider=aws), when a snapshot was written) - C(blocks_sent),
          C(bytes_sent), C(blocks_with_data), C(blocks_unchanged) (not sent, the same in the parent
          snapshot), C(zero_blocks_sent), C(retries), C(seconds).
      type: dict
    replaced:
      description: The volume a forced rebuild replaced (O(provider=aws)).
      type: str
actions:
  description: What the task did, or would do in check mode, one step per item.
  returned: always
  type: list
  elements: str
  sample: ["create /home/user/.ops/volumes/my-assets:e1a9a40e-8d2b-19b7-61b7-57c43f362aaa.raw (10.0 GiB) from ./my-assets"]
"""

from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.providers import VolumeSpec, backend


CLOUD_OPTIONS = ("volume_type", "iops", "throughput", "encrypted", "tags")


def run(m):
    p = m.params
    provider = backend("volumes", p)
    spec = VolumeSpec(name=p["name"], uuid=p["uuid"], size=p["size"], source=p["source"],
                      force=p["force"], tfs_version=p["tfs_version"],
                      cloud=dict((k, p[k]) for k in CLOUD_OPTIONS))
    if p["state"] == "absent":
        outcome = provider.absent(spec, check_mode=m.check_mode, want_diff=m.diff_mode)
        outcome.volume = None
    else:
        outcome = provider.present(spec, check_mode=m.check_mode, want_diff=m.diff_mode)
    return m.outcome_result(outcome, "volume")


def main():
    m = OpsModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            size=dict(type="str"),
            source=dict(type="path"),
            uuid=dict(type="str"),
            force=dict(type="bool", default=False),
            tfs_version=dict(type="int", choices=[4, 5], default=5),
            volume_type=dict(type="str", aliases=["disk_type"]),
            iops=dict(type="int"),
            throughput=dict(type="int"),
            encrypted=dict(type="bool"),
            tags=dict(type="dict"),
        ),
        providers=True,
        supports_check_mode=True,
    )
    m.run(run)


if __name__ == "__main__":
    main()
