"""grub.cfg: find the KubeOS menu entries 'A' and 'B' and their `linux` lines (B1, B2).

Only the parameter part of one `linux` line is ever rewritten; every other byte of the
file, including the other entry, stays as it was.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubeos_settings_grub.params import tokenize

_MENUENTRY = re.compile(r"^\s*menuentry\s+(?P<title>'[^']*'|\"[^\"]*\"|\S+)(?P<rest>.*)$")
_ID_OPTION = re.compile(r"\$menuentry_id_option\s+(?P<id>'[^']*'|\"[^\"]*\"|\S+)")
_LINUX = re.compile(r"^(?P<lead>\s*)(?P<cmd>linux|linuxefi|linux16)(?P<rest>\s.*)?$")


class GrubCfgError(ValueError):
    """grub.cfg does not have the shape KubeOS boots from."""


@dataclass
class LinuxLine:
    """The `linux` line of one menu entry, split into kernel path and parameters."""

    index: int  # line number in the file (0-based)
    lead: str
    cmd: str
    kernel: str
    params: list[str]

    def render(self) -> str:
        return " ".join([f"{self.lead}{self.cmd}", self.kernel, *self.params])

    def param(self, key: str) -> str | None:
        """The value of the last `key=` parameter (the one the kernel uses)."""
        found = None
        for p in self.params:
            k, _, v = p.partition("=")
            if k == key and "=" in p:
                found = v
        return found


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def menu_entries(lines: list[str]) -> dict[str, LinuxLine]:
    """Map each menu entry id (its $menuentry_id_option, else its title) to its linux line."""
    entries: dict[str, LinuxLine] = {}
    i = 0
    while i < len(lines):
        m = _MENUENTRY.match(lines[i])
        if not m:
            i += 1
            continue
        idm = _ID_OPTION.search(m["rest"])
        label = _unquote(idm["id"] if idm else m["title"])
        depth, j, linux = 1, i + 1, None
        while j < len(lines) and depth > 0:
            stripped = lines[j].strip()
            if stripped == "}":
                depth -= 1
            elif stripped.endswith("{"):
                depth += 1
            elif linux is None and depth == 1:
                lm = _LINUX.match(lines[j].rstrip("\r\n"))
                if lm:
                    linux = _parse_linux(j, lm)
            j += 1
        if depth > 0:
            raise GrubCfgError(f"menu entry {label!r} has no closing '}}'")
        if linux is not None:
            if label in entries:
                raise GrubCfgError(f"two menu entries are called {label!r}")
            entries[label] = linux
        i = j
    return entries


def _parse_linux(index: int, m: re.Match[str]) -> LinuxLine:
    try:
        words = tokenize(m["rest"] or "")
    except ValueError as exc:
        raise GrubCfgError(f"line {index + 1}: {exc}") from None
    if not words:
        raise GrubCfgError(f"line {index + 1}: linux line names no kernel")
    return LinuxLine(index, m["lead"], m["cmd"], words[0], words[1:])


def ab_entries(lines: list[str]) -> dict[str, LinuxLine]:
    """Entries 'A' and 'B' (B2); a clear error when either is missing."""
    entries = menu_entries(lines)
    missing = [label for label in ("A", "B") if label not in entries]
    if missing:
        found = ", ".join(repr(k) for k in entries) or "none"
        raise GrubCfgError(
            f"no menu entry {' or '.join(repr(m) for m in missing)} with a linux line"
            f" (found: {found})"
        )
    return {"A": entries["A"], "B": entries["B"]}
