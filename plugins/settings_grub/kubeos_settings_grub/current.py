"""Which grub entry is `current` (B2, B3): the one whose root= is the running root.

The running root is `root=` on the kernel command line the node booted with
(`NodeContext.cmdline_path` under the host root). It is matched against each entry's
root= as a device path, UUID=<fs uuid> or PARTUUID=<partition uuid>; when the forms
differ, /dev/disk/by-uuid and by-partuuid links under the host root translate them.
B3: `NodeContext.pinned_current` (fixed when the operation was dispatched) wins.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kubeos.contracts import NodeContext
from kubeos_settings_grub.grubcfg import LinuxLine
from kubeos_settings_grub.params import split_param, tokenize

log = logging.getLogger(__name__)
LABELS = ("A", "B")
_LINK_DIRS = {"UUID": "/dev/disk/by-uuid", "PARTUUID": "/dev/disk/by-partuuid"}


class CurrentUnknown(ValueError):
    """The node's current entry cannot be told; the message says what was compared."""


def other(label: str) -> str:
    return "B" if label == "A" else "A"


def running_root(node: NodeContext) -> str:
    path = node.host_path(node.cmdline_path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CurrentUnknown(f"cannot read the kernel command line {path}: {exc}") from None
    try:
        tokens = tokenize(text)
    except ValueError as exc:
        raise CurrentUnknown(f"{path}: {exc}") from None
    root = None
    for token in tokens:
        key, value = split_param(token)
        if key == "root" and value:
            root = value.strip("\"'")
    if root is None:
        raise CurrentUnknown(f"{path} has no root= parameter")
    return root


def _forms(root: str, node: NodeContext) -> set[str]:
    """Every spelling of `root` we can establish: itself and, via udev links, its device."""
    kind, sep, ident = root.partition("=")
    if sep and kind.upper() in _LINK_DIRS:
        forms = {f"{kind.upper()}={ident.lower()}"}
        link = node.host_path(f"{_LINK_DIRS[kind.upper()]}/{ident.lower()}")
        if link.is_symlink():
            forms.add(f"/dev/{Path(os.readlink(link)).name}")
        return forms
    return {root}


def current_label(node: NodeContext, entries: dict[str, LinuxLine]) -> str:
    """B3 pinned label, else the entry whose root= is the running root."""
    if node.pinned_current is not None:
        if node.pinned_current not in LABELS:
            raise CurrentUnknown(f"pinned current {node.pinned_current!r} must be 'A' or 'B'")
        return node.pinned_current
    running = running_root(node)
    wanted = _forms(running, node)
    matches = []
    for label in LABELS:
        entry_root = entries[label].param("root")
        if entry_root is not None and _forms(entry_root.strip("\"'"), node) & wanted:
            matches.append(label)
    if len(matches) != 1:
        roots = ", ".join(f"{label}: root={entries[label].param('root')}" for label in LABELS)
        what = "matches both" if matches else "matches neither"
        raise CurrentUnknown(
            f"running root={running} {what} grub entry ({roots}); cannot tell which entry is"
            " current (B2)"
        )
    log.debug("running root=%s is grub entry %s", running, matches[0])
    return matches[0]
