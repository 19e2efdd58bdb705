# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options every module of the collection shares.
    DOCUMENTATION = r"""
options:
  ops_dir:
    description:
      - The ops home directory, where volumes (C(volumes/)), images (C(images/)), kernels and
        instance records live, shared with the ops CLI.
      - Defaults as in ops to C($OPS_HOME/.ops) when the E(OPS_HOME) environment variable is set
        on the managed host, else to C(~/.ops).
      - The collection keeps its own bookkeeping in C(.unikernel-ops/) inside it, where ops never
        looks.
    type: path
"""

    # The provider option every module with a cloud backend has.
    PROVIDER = r"""
options:
  provider:
    description:
      - Where the resource lives.
      - V(onprem) is the ops home on the managed host (raw volume files, image files, local
        QEMU instances), shared with the ops CLI.
      - V(aws) is EC2 and EBS in O(region), reached with the options of the
        unikernel.ops.aws documentation fragment; volumes and images are built locally with the
        same engine and sent as EBS snapshots with the EBS direct API.
      - V(gcp) is Compute Engine in O(project) and O(zone), reached with the options of the
        unikernel.ops.gcp documentation fragment; volumes and images are built locally with the
        same engine and imported from the staging O(bucket).
      - V(azure) is managed disks, images and VMs in O(resource_group), reached with the
        options of the unikernel.ops.azure documentation fragment; volumes and images are built
        locally with the same engine and uploaded directly into managed disks (no storage
        account).
      - Options that only a cloud uses are an error with V(onprem).
    type: str
    choices: [onprem, aws, gcp, azure]
    default: onprem
"""

    # Attributes of the _info modules, which only read.
    INFO_ATTRIBUTES = r"""
attributes:
  check_mode:
    support: full
    description: The module only reads.
  diff_mode:
    support: none
    description: The module only reads.
"""
