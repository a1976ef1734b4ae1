"""Parse os-release(5) text: the version a root filesystem calls itself (PRETTY_NAME)."""

from __future__ import annotations

import shlex

#: os-release files are a few hundred bytes; anything far larger is not one.
MAX_OS_RELEASE = 64 * 1024


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value pairs with shell-style quoting; comments and junk lines are skipped."""
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if not key.isidentifier():
            continue
        try:
            parts = shlex.split(value)
        except ValueError:
            continue
        fields[key] = " ".join(parts)
    return fields


def pretty_name(text: str) -> str:
    """PRETTY_NAME, falling back to `NAME VERSION` as os-release(5) suggests; '' if none."""
    fields = parse_os_release(text)
    if fields.get("PRETTY_NAME"):
        return fields["PRETTY_NAME"]
    return " ".join(v for v in (fields.get("NAME", ""), fields.get("VERSION", "")) if v)
