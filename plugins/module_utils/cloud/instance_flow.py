# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ops_instance's states on a cloud, written once: each provider fills in the steps (find,
create, start, attach, stop, remove...), every step planning instead of acting in check mode."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.unikernel.ops.plugins.module_utils.providers import Outcome


class InstanceFlow:
    def __init__(self, conn, p, name):
        self.conn, self.p, self.name = conn, p, name
        self.warnings = []

    # -- the steps a provider implements --------------------------------------------------
    def find(self):
        raise NotImplementedError

    def image(self):
        raise NotImplementedError

    def volumes(self):
        raise NotImplementedError

    def differences(self, inst, image):
        raise NotImplementedError

    def create(self, image, vols):
        raise NotImplementedError

    def start(self, inst, restart):
        raise NotImplementedError

    def attach(self, inst, vols):
        raise NotImplementedError

    def stop(self, inst):
        raise NotImplementedError

    def remove(self, inst):
        raise NotImplementedError

    def state_text(self, inst):
        raise NotImplementedError

    def describe(self, inst):
        raise NotImplementedError

    # -- the flow -------------------------------------------------------------------------
    def run(self):
        """(Outcome, extra result keys)."""
        state = self.p["state"]
        inst = self.find()
        before = self.state_text(inst)
        extra = {}
        if state in ("running", "restarted"):
            image = self.image()
            vols = self.volumes()
            if inst is not None:
                differ = self.differences(inst, image)
                if differ and not self.p.get("force"):
                    extra["mismatch"] = differ
                    self.warnings.append(
                        "instance %s runs with other settings (%s); nothing was changed - set "
                        "force: true to replace it (its volumes are kept)"
                        % (self.name, "; ".join(differ)))
                elif differ:
                    self.remove(inst)
                    inst = None
                    if not self.conn.log.check_mode:
                        vols = self.volumes()  # read again: the removal detached them
            if inst is None:
                inst = self.create(image, vols)
            else:
                inst = self.start(inst, state == "restarted")
            inst = self.attach(inst, vols)
        elif inst is not None and state == "stopped":
            inst = self.stop(inst)
        elif inst is not None and state == "absent":
            self.remove(inst)
            inst = None
        changed = bool(self.conn.log.actions)
        if state == "absent":
            after = "state: absent\n"
        elif not changed:
            after = before
        elif inst is None or self.conn.log.check_mode:
            after = "state: %s (planned)\n" % state
        else:
            after = self.state_text(inst)
        result = self.describe(inst) if inst is not None else None
        return Outcome(changed, result, before, after, self.warnings), extra
