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

    # The provider option of modules that manage volumes.
    PROVIDER = r"""
options:
  provider:
    description:
      - Where the volume lives. V(onprem) is a raw volume file in the ops home on the managed
        host, usable by local QEMU instances and by the ops CLI.
    type: str
    choices: [onprem]
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
