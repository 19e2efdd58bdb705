#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ops_image
short_description: Build bootable Nanos images that mount volumes
version_added: 0.1.0
description:
  - Builds a bootable Nanos disk image C(<ops_dir>/images/<name>) natively, as
    C(ops image create <name> -c config.json) does - boot sector, a 12 MiB boot filesystem with the
    kernel and klibs, and a root filesystem with the program, its shared libraries, extra files
    and the manifest that names which volumes mount where.
  - Idempotent by fingerprint - every input (boot.img, kernel, klibs, program and libraries by
    content, files, the manifest) is hashed; an unchanged image is not rebuilt, and a guest that
    wrote to the image's root filesystem does not make it look changed.
  - Mount keys are checked before anything boots - a volume name must match exactly one local
    volume, a UUID must be well formed, a host directory must exist (it is shared over 9p), and
    anything else is an error naming the key. ops silently turns such typos into 9p shares.
  - A local volume the mounts name whose file is damaged (its TFS header or log does not read, or
    the file is shorter than its log and data say) or was renamed (its header holds another label
    or UUID than its file name) is an error naming the volume, even when the image is current;
    the volume and the image are left as they are. Only the header and the log are read.
  - The root filesystem gets free space for the guest to write (ops sizes it to its content, and
    the guest's writes fail).
  - With O(provider=aws), the same image bytes (rounded up to whole GiB) are sent as an EBS
    snapshot with the EBS direct API, as ops does, and registered as an AMI (hvm, ENA, root
    C(/dev/sda1), legacy BIOS boot) named O(name); its tags keep the snapshot id and the
    fingerprint, so an unchanged re-run makes no mutating call. A changed input replaces the AMI
    and deletes the old snapshot. Mount keys are checked against the EBS volumes of the region;
    host directories (9p) are refused. V(absent) deregisters the AMI and deletes its snapshot.
  - With O(provider=gcp), the same image bytes are streamed as C(disk.raw) in a sparse
    C(.tar.gz) to O(bucket) and imported with C(images.insert) with the guest OS feature ops
    sets (C(GVNIC)); unchanged inputs make no mutating request, a changed input replaces the
    image and its staging object; mount keys are checked against the disks in O(zone).
  - With O(provider=azure), the klibs C(cloud_init) and C(tls) are added (as ops adds them; they
    report provisioning "ready" to Azure), the image bytes get a fixed-VHD footer and are uploaded
    directly into a managed disk, and an image (Linux, generalized, Hyper-V generation 1) is made
    from that disk. Its tags keep the fingerprint and the disk, so an unchanged re-run makes no
    mutating request; a changed input uploads a new disk, replaces the image and deletes the old
    disk. V(absent) deletes the image and its disk.
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
    description: Nothing is written; C(changed) says whether a real run would build.
  diff_mode:
    support: full
    description: Before and after show the image's manifest.
options:
  name:
    description: The image's name, its file name in C(<ops_dir>/images/).
    type: str
    required: true
  state:
    description: V(present) builds the image when missing or when an input changed; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  program:
    description:
      - The ELF executable (x86_64 or aarch64, 64-bit) the image runs, a path on the managed host.
        A dynamically linked program brings its shared libraries and dynamic loader along, found
        with the loader's own C(--list) (the program itself is never run); a missing library is
        an error.
      - Required with O(state=present) unless O(config) names C(Program).
    type: path
  program_path:
    description: Where the program goes in the image. Defaults to C(/<file name of program>).
    type: str
  args:
    description: Arguments after the program; the manifest's C(arguments) starts with the program path.
    type: list
    elements: str
  env:
    description: Environment variables, added to C(USER), C(PWD), C(NANOS_VERSION), C(NANOS_ARCH) and C(IMAGE_NAME).
    type: dict
  files:
    description:
      - Extra host files. Each is a relative path (taken from the config file's folder when
        O(config) is a file, and kept as the path in the image, as ops' C(Files)) or a dict with
        C(src) (host path) and C(dest) (path in the image).
    type: list
    elements: raw
  dirs:
    description:
      - Extra host directories, copied recursively; entries as for O(files) (ops' C(Dirs)).
    type: list
    elements: raw
  mounts:
    description:
      - What to mount where, as ops' C(Mounts) - keys are a volume name, a volume UUID, V(%N) (an
        attach id, for volumes attached later by M(unikernel.ops.ops_mount)) or an existing host
        directory (shared over 9p when the instance runs); values are the mount point in the
        guest, with V(:ro) appended for read-only.
      - The mount points are created in the image.
    type: dict
  manifest_passthrough:
    description:
      - Extra manifest keys, as ops' C(ManifestPassthrough). Booleans and numbers are converted
        to the strings Nanos expects (ops fails on them); dicts become tuples, lists vectors.
      - Nanos takes some flags as on whatever their value - C(readonly_rootfs), C(debug_exit),
        C(noaslr), C(ltrace), C(static_map_program), C(missing_files), C(exec_protection),
        C(program_overwrite), C(ingest_kernel_symbols). For those a value that means off
        (V(false), V(no), V(off), V(0)) leaves the key out of the manifest, as it would be meant.
    type: dict
  readonly_rootfs:
    description:
      - Make the root filesystem read-only. Only V(true) writes C(readonly_rootfs) into the
        manifest - Nanos treats any value, even "false", as read-only.
    type: bool
  config:
    description:
      - An ops configuration, as a path to a C(config.json) or the same as a dict. Used keys are
        C(Program), C(Args), C(Env), C(Files), C(Dirs), C(Mounts), C(ManifestPassthrough),
        C(BaseVolumeSz), C(Kernel), C(Boot), C(Klibs), C(KlibDir), C(NanosVersion),
        C(NightlyBuild) (any case); keys about running or deploying (C(RunConfig),
        C(CloudConfig)) are ignored, others are warned about.
      - Module options win; O(env), O(mounts) and O(manifest_passthrough) are merged key by key.
    type: raw
  kernel:
    description:
      - An explicit C(kernel.img) (with O(boot)), instead of the ops home's.
      - It must be a Nanos kernel (a 64-bit x86_64 ELF executable with no dynamic loader);
        anything else is refused before the image is built.
    type: path
  boot:
    description:
      - An explicit C(boot.img) (with O(kernel)).
      - It must be a Nanos boot sector (the C(0x55AA) signature and its stage2 record); anything
        else is refused.
    type: path
  klibs:
    description: Names of klibs (kernel libraries such as V(tls), V(ntp)) to put in the boot filesystem.
    type: list
    elements: str
  klib_dir:
    description: Where the klibs are, instead of the kernel release's C(klibs/) folder.
    type: path
  nanos_version:
    description:
      - Which installed release to use, C(<ops_dir>/<version>/). Defaults to the one in
        C(<ops_dir>/latest.txt); V(nightly) uses C(<ops_dir>/nightly/).
    type: str
  size:
    description:
      - Size of the whole image, in ops' size grammar (V(512), V(56k), V(500m), V(10g)), as ops'
        C(BaseVolumeSz). Defaults to the content plus 8 MiB free in the root filesystem.
      - A smaller size is an error unless the root filesystem keeps the room the guest needs to
        write - the 1 MiB it reserves for its log and one free sector (more when the last log
        extension is nearly full); the message gives the smallest size accepted.
    type: str
  hostname:
    description: The guest's host name, written to C(/etc/hostname) and C(/proc/sys/kernel/hostname).
    type: str
    default: uniboot
  nameservers:
    description: Name servers for the generated C(/etc/resolv.conf).
    type: list
    elements: str
    default: ["8.8.8.8"]
  force:
    description: Rebuild even when the fingerprint says nothing changed.
    type: bool
    default: false
  tags:
    description:
      - Tags of the cloud image besides those the collection sets (C(Name), C(CreatedBy),
        C(unikernel-ops:*)). Only with a cloud O(provider).
    type: dict
notes:
  - Files given in O(files) or O(dirs) at C(/etc/resolv.conf), C(/etc/passwd) or C(/etc/hostname)
    replace the generated ones.
seealso:
  - module: unikernel.ops.ops_image_info
  - module: unikernel.ops.ops_volume
  - module: unikernel.ops.ops_kernel
"""

EXAMPLES = r"""
- name: The same image as an AMI in eu-west-1, mounting an EBS volume by name
  unikernel.ops.ops_image:
    provider: aws
    region: eu-west-1
    name: webapp
    program: ./build/webapp
    mounts:
      assets: /assets

- name: An image that mounts the my-assets volume at /assets
  unikernel.ops.ops_image:
    name: webapp
    program: ./build/webapp
    args: [--port, "8080"]
    env:
      MODE: production
    mounts:
      my-assets: /assets
      "%1": /uploads
    readonly_rootfs: true

- name: The same from an ops config file
  unikernel.ops.ops_image:
    name: webapp
    program: ./build/webapp
    config: ./config.json
"""

RETURN = r"""
image:
  description: The image after the task (in check mode, what it would be). Null when O(state=absent).
  returned: always
  type: dict
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
      description: Size of the image in bytes.
      type: int
      sample: 25165824
    fingerprint:
      description: SHA-256 over every input; a change of any input changes it.
      type: str
      sample: 8c6976e5b5410415bde908bd4dee15dfb167a9c873fc4bb8a81f6f2ab448a918
    kernel:
      description: The kernel used - version and the paths of kernel.img, boot.img and klibs.
      type: dict
      sample: {version: 0.1.54, kernel: /home/user/.ops/0.1.54/kernel.img, boot: /home/user/.ops/0.1.54/boot.img, klibs: /home/user/.ops/0.1.54/klibs}
    program:
      description: The program's path in the image.
      type: str
      sample: /webapp
    mounts:
      description: The manifest's mounts, key to mount point; host directories appear as their V(%N).
      type: dict
      sample: {my-assets: /assets, "%1": "/uploads"}
    shares:
      description: Host directories shared over 9p, by attach id (the V(%N) in RV(image.mounts)).
      type: dict
      sample: {"0": /srv/static}
    volumes:
      description: Local volume files the mounts name, by mount key.
      type: dict
      sample: {my-assets: "/home/user/.ops/volumes/my-assets:e1a9a40e-8d2b-19b7-61b7-57c43f362aaa.raw"}
    libraries:
      description: Shared libraries put in the image, at their host paths.
      type: list
      elements: str
      sample: [/lib/x86_64-linux-gnu/libc.so.6, /lib64/ld-linux-x86-64.so.2]
    readonly_rootfs:
      description: Whether the root filesystem is read-only.
      type: bool
      sample: true
    klibs:
      description: The klibs in the boot filesystem.
      type: list
      elements: str
      sample: [tls]
    id:
      description: The AMI id (O(provider=aws)).
      type: str
      sample: ami-0123456789abcdef0
    snapshot_id:
      description: The EBS snapshot the AMI boots from (O(provider=aws)).
      type: str
      sample: snap-0123456789abcdef0
    upload:
      description: What was sent when the image was built (O(provider=aws)), with the keys of the upload that M(unikernel.ops.ops_volume) returns.
      type: dict
    provider:
      description: Where the image lives.
      type: str
      sample: aws
actions:
  description: What the task did, or would do in check mode.
  returned: always
  type: list
  elements: str
  sample: ["create /home/user/.ops/images/webapp (24.0 MiB) with kernel 0.1.54"]
"""

from ansible_collections.unikernel.ops.plugins.module_utils.images.manifest import ImageSpec
from ansible_collections.unikernel.ops.plugins.module_utils.module_base import OpsModule
from ansible_collections.unikernel.ops.plugins.module_utils.providers import backend


def run(m):
    p = m.params
    images = backend("images", p)
    if p["state"] == "absent":
        outcome = images.absent(p["name"], check_mode=m.check_mode, want_diff=m.diff_mode)
    else:
        spec = ImageSpec(**dict((f, p.get(f)) for f in ImageSpec.FIELDS))
        outcome = images.present(spec, config=p["config"], force=p["force"],
                                 check_mode=m.check_mode, want_diff=m.diff_mode)
    return m.outcome_result(outcome, "image")


def main():
    m = OpsModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            program=dict(type="path"),
            program_path=dict(type="str"),
            args=dict(type="list", elements="str"),
            env=dict(type="dict"),
            files=dict(type="list", elements="raw"),
            dirs=dict(type="list", elements="raw"),
            mounts=dict(type="dict"),
            manifest_passthrough=dict(type="dict", no_log=False),
            readonly_rootfs=dict(type="bool"),
            config=dict(type="raw"),
            kernel=dict(type="path"),
            boot=dict(type="path"),
            klibs=dict(type="list", elements="str"),
            klib_dir=dict(type="path"),
            nanos_version=dict(type="str"),
            size=dict(type="str"),
            hostname=dict(type="str", default="uniboot"),
            nameservers=dict(type="list", elements="str", default=["8.8.8.8"]),
            force=dict(type="bool", default=False),
            tags=dict(type="dict"),
        ),
        providers=True,
        supports_check_mode=True,
    )
    m.run(run)


if __name__ == "__main__":
    main()
