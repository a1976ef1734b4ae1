"""Which root a grub.cfg menu entry mounts: `root=` of the `linux` line in its body.

The boot switch only picks an entry (saved_entry); what that entry boots is decided by
its kernel command line. Before switching, the upgrade checks that line names the root it
just wrote (U5): a grub.cfg saying root=UUID=<old uuid> would otherwise boot a node that
cannot find its root. Kept apart from the settings_grub plugin, which edits grub.cfg: the
core never imports a plugin.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubeos.contracts import NodeContext
from kubeos.errors import InstallError
from kubeos.node.parttable import LayoutError
from kubeos.node.rootspec import RootSpec, parse_root

_MENUENTRY = re.compile(r"\s*menuentry\s+(['\"])(?P<title>.*?)\1(?P<tail>.*)\{\s*$")
_ENTRY_ID = re.compile(r"\$menuentry_id_option\s+(['\"])(?P<id>.*?)\1")
_LINUX = re.compile(r"\s*(?:linux|linuxefi|linux16)\s+(?P<args>.*)$")


@dataclass(frozen=True)
class MenuEntry:
    title: str
    entry_id: str
    body: tuple[str, ...]

    def matches(self, label: str) -> bool:
        return label in (self.title, self.entry_id)  # grub matches an id or a title


def _logical_lines(text: str) -> list[str]:
    """Lines with grub's backslash-newline continuations joined."""
    return text.replace("\\\n", " ").splitlines()


def parse_entries(text: str) -> list[MenuEntry]:
    """Top-level menu entries with their body lines (braces counted, `${var}` included)."""
    entries: list[MenuEntry] = []
    lines = _logical_lines(text)
    i = 0
    while i < len(lines):
        m = _MENUENTRY.match(lines[i])
        i += 1
        if not m:
            continue
        tail = _ENTRY_ID.search(m["tail"])
        depth, body = 1, []
        while i < len(lines) and depth > 0:
            line = lines[i]
            depth += line.count("{") - line.count("}")
            if depth > 0:
                body.append(line)
            i += 1
        entries.append(MenuEntry(m["title"], tail["id"] if tail else "", tuple(body)))
    return entries


def read_entries(node: NodeContext) -> list[MenuEntry] | None:
    """The node's grub.cfg menu entries; None when there is no grub.cfg."""
    try:
        text = node.grub_cfg.read_text(errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InstallError(f"cannot read {node.grub_cfg}: {exc.strerror}") from exc
    return parse_entries(text)


def entry_root(node: NodeContext, label: str) -> RootSpec | None:
    """`root=` of menu entry `label`'s kernel line; None when there is no grub.cfg.

    InstallError when the entry is missing or its kernel line names no usable root=.
    """
    entries = read_entries(node)
    if entries is None:
        return None
    entry = next((e for e in entries if e.matches(label)), None)
    if entry is None:
        raise InstallError(f"{node.grub_cfg} has no menu entry {label!r}")
    kernels = [m["args"] for line in entry.body if (m := _LINUX.match(line))]
    if not kernels:
        raise InstallError(f"{node.grub_cfg}: menu entry {label!r} has no linux line")
    try:
        return parse_root(kernels[-1])
    except LayoutError as exc:
        raise InstallError(f"{node.grub_cfg}: menu entry {label!r}: {exc} [U5]") from exc
