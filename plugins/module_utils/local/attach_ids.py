# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attach ids (the N of %N) a volume of a local instance can have.

Nanos reads N from the SCSI device id `persistent-disk-N` (src/virtio/virtio_scsi.c, parse_int
into a u64) and keeps it in an `int attach_id` (src/kernel/storage.c, which compares it with the
%N of a mount parsed as a u64 again). An N above 2147483647 does not survive that: 2147483648
becomes a negative int that no %N matches, and 4294967297 becomes 1, so the guest would mount it
as %1. The local range is therefore 0 to 2147483647; 0 is a real id (`persistent-disk-0`), the
boot disk has none.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.cloud.boot_volumes import parse_attach_id
from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError

LOCAL_ATTACH_ID_MAX = 2 ** 31 - 1


def local_attach_id(value, what):
    """The N of %N for a local instance's volume, or None; refused outside 0 to 2147483647."""
    number = parse_attach_id(value, what)
    if number is not None and number > LOCAL_ATTACH_ID_MAX:
        raise OpsError("%s: attach_id %d is out of range for a local instance: Nanos keeps %%N in "
                       "a 32-bit signed number, so give an N from 0 to %d"
                       % (what, number, LOCAL_ATTACH_ID_MAX))
    return number
