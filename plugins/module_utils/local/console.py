# -*- coding: utf-8 -*-
# Copyright: (c) 2026, unikernel.ops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a Nanos guest's console says about its health.

Nanos prints a crash on its serial console before it halts or hangs: `lastvector: ...` and the
registers for a fault (src/x86_64/interrupt.c dump_context), `assertion X failed at ...` for a
failed kernel assertion (runtime.h), `frame trace:` before the stack. Once one of these is on the
console the guest will not come up, so waiting for a pattern or an attachment can stop at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

CRASH_MARKERS = re.compile(r"^.*(?:lastvector: |assertion .* failed|frame trace:).*$", re.MULTILINE)
CRASH_CONTEXT_LINES = 12  # the marker and what follows: the vector, the faulting address, ...


def read_console(path, offset=0):
    """The console log from offset on, as text ('' when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""


def crash_lines(text):
    """The console lines that show a Nanos crash (the first marker and the lines after it), or
    None when the text shows none."""
    m = CRASH_MARKERS.search(text)
    if not m:
        return None
    lines = text[m.start():].splitlines()[:CRASH_CONTEXT_LINES]
    return "\n".join(line.rstrip() for line in lines if line.strip())


def crash_message(what, text):
    """An OpsError message for a guest whose console shows a crash, or None."""
    lines = crash_lines(text)
    if lines is None:
        return None
    return "%s: the guest crashed (its console shows a Nanos crash):\n%s" % (what, lines)
