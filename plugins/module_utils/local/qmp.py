# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Talking QMP to a running QEMU, on the qemu.qmp package, with a timeout on every wait.

Hot-plug done right, where ops fires commands without reading a reply:
- attach: blockdev-add, then device_add of a scsi-hd LUN on the controller the instance booted
  with; if device_add fails (a write lock held by another process) the node is removed again,
  and an attach its caller finds wrong afterwards is undone with remove().
- detach: device_del, then wait for the DEVICE_DELETED event for that device, then blockdev-del
  (QEMU releases the node some 60 ms after device_del answers; deleting it earlier fails with
  "Node ... is in use" and the next attach of the volume with "Duplicate nodes").
- attachments are read back from QEMU (query-block and the devices' own properties).
QEMU serves one QMP client at a time, so every session is short and always closed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import traceback

from ansible_collections.unikernel.ops.plugins.module_utils.errors import OpsError
from ansible_collections.unikernel.ops.plugins.module_utils.local.qemu import (
    attach_device_id, blockdev, scsi_device,
)

try:
    from qemu.qmp import ConnectError, ExecuteError, QMPClient, QMPError
    HAS_QMP = True
    QMP_IMPORT_ERROR = None
except ImportError:
    HAS_QMP = False
    QMP_IMPORT_ERROR = traceback.format_exc()

DEFAULT_TIMEOUT = 10.0


def require_qmp():
    if not HAS_QMP:
        raise OpsError("the Python package qemu.qmp is required on the managed host "
                       "(pip install qemu.qmp)", exception=QMP_IMPORT_ERROR)


def _describe(address):
    if isinstance(address, (tuple, list)) and len(address) == 2:
        return "%s:%s" % tuple(address)
    return str(address)


class QMPSession:
    """A synchronous QMP session: `with QMPSession(address) as qmp: qmp.execute(...)`.

    address is a UNIX socket path or a (host, port) pair (ops' `mgmt` TCP port).
    """

    def __init__(self, address, timeout=DEFAULT_TIMEOUT):
        require_qmp()
        self.address = address
        self.timeout = timeout
        self._loop = None
        self._client = None

    def __enter__(self):
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient("unikernel.ops")
        try:
            self._run(self._client.connect(self.address), "connecting to QMP")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._loop is not None:
            if self._client is not None:
                try:
                    self._loop.run_until_complete(
                        asyncio.wait_for(self._client.disconnect(), self.timeout))
                except Exception:  # pylint: disable=broad-except
                    pass  # closing a broken session must not hide the real error
            self._loop.close()
            self._loop = None

    def _run(self, coro, what, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        try:
            return self._loop.run_until_complete(asyncio.wait_for(coro, timeout))
        except asyncio.TimeoutError:
            raise OpsError("QMP at %s did not answer within %.1f s while %s; is the QEMU process "
                           "stopped or busy?" % (_describe(self.address), timeout, what))
        except ExecuteError as e:
            raise OpsError("QEMU refused %s: %s" % (what, e), qmp_error=e.error_class)
        except ConnectError as e:
            raise OpsError("cannot connect to QMP at %s: %s" % (_describe(self.address), e))
        except (QMPError, OSError, EOFError) as e:
            raise OpsError("QMP at %s failed while %s: %s" % (_describe(self.address), what, e))

    def execute(self, cmd, args=None, timeout=None):
        return self._run(self._client.execute(cmd, args), "running %s" % cmd, timeout)

    # -- hot-plug ---------------------------------------------------------------------------

    def attach(self, node, dev_id, path, read_only=False, attach_id=None, attachments=None):
        """attachments: what attachments() returned just before, to save asking again. When
        device_add fails, the node added for it is removed before the error is raised, whose
        detail left_in_qemu says what could not be (None: nothing is left)."""
        # A node with no device on it is a leftover (ops' detach leaves one): it holds the file
        # open and would make blockdev-add fail with "Duplicate nodes".
        used = set(a["node"] for a in (self.attachments() if attachments is None else attachments))
        if node not in used and node in self.node_names():
            self.execute("blockdev-del", {"node-name": node})
        self.execute("blockdev-add", blockdev(node, path, read_only))
        try:
            self.execute("device_add", scsi_device(node, dev_id, attach_id))
        except OpsError as e:
            # the node must not stay behind: it holds the file open
            raise OpsError(e.msg, left_in_qemu=self.remove(None, node), **e.details)

    def remove(self, dev_id, node, timeout=None):
        """Undo an attach: detach device dev_id if QEMU has it, delete the node if QEMU has it.
        Never raises: returns what is left in QEMU as a sentence, or None when nothing is."""
        problems = []
        try:
            if dev_id and dev_id in self.peripherals():
                self.detach(dev_id, None, timeout)
            if node in self.node_names():
                self.execute("blockdev-del", {"node-name": node})
        except OpsError as e:
            problems.append(e.msg)
        try:
            left = []
            if dev_id and dev_id in self.peripherals():
                left.append("device %s" % dev_id)
            if node in self.node_names():
                left.append("block node %s" % node)
        except OpsError as e:
            return "QEMU could not be asked what is left of the attach: %s" % e.msg
        if not left:
            return None
        return "QEMU still has %s (%s); detach it with state: detached" % (
            " and ".join(left), "; ".join(problems) or "removing it failed")

    def node_names(self):
        """The names of QEMU's named block nodes."""
        return set(n.get("node-name") for n in self.execute("query-named-block-nodes", {"flat": True}))

    def peripherals(self):
        """{device id: QEMU type} of the devices given an id (-device id=..., device_add)."""
        out = {}
        for child in self.execute("qom-list", {"path": "/machine/peripheral"}):
            kind = child.get("type") or ""
            if kind.startswith("child<"):
                out[child["name"]] = kind[len("child<"):-1]
        return out

    def detach(self, dev_id, node, timeout=None):
        """device_del, wait for DEVICE_DELETED of this device, then blockdev-del."""
        timeout = self.timeout if timeout is None else timeout

        async def unplug():
            with self._client.listener("DEVICE_DELETED") as listener:
                await self._client.execute("device_del", {"id": dev_id})
                while True:
                    event = await listener.get()
                    data = event.get("data", {})
                    if data.get("device") == dev_id or \
                            data.get("path") == "/machine/peripheral/%s" % dev_id:
                        return

        self._run(unplug(), "detaching device %s (waiting for DEVICE_DELETED)" % dev_id, timeout)
        if node:
            self.execute("blockdev-del", {"node-name": node})

    def attachments(self):
        """Every disk QEMU has, from QEMU itself: id, node, file, read_only, attach_id."""
        out = []
        for blk in self.execute("query-block"):
            inserted = blk.get("inserted")
            if not inserted:
                continue
            qdev = blk.get("qdev") or ""
            dev_id = qdev.rsplit("/", 1)[-1] if qdev.startswith("/machine/peripheral/") else qdev
            item = {"id": dev_id or blk.get("device"), "node": inserted.get("node-name"),
                    "file": inserted.get("file"), "read_only": bool(inserted.get("ro")),
                    "attach_id": None, "device_id": None}
            if dev_id:
                try:
                    device_id = self.execute("qom-get", {"path": "/machine/peripheral/%s" % dev_id,
                                                         "property": "device_id"})
                except OpsError:
                    device_id = None  # not a scsi-hd (e.g. a virtio-blk disk)
                item["device_id"] = device_id or None
                prefix = attach_device_id(0)[:-1]
                if device_id and device_id.startswith(prefix) and device_id[len(prefix):].isdigit():
                    item["attach_id"] = int(device_id[len(prefix):])
            out.append(item)
        return out
