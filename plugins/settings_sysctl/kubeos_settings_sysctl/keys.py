"""Sysctl key syntax shared by kernel.sysctl and kernel.sysctl.persist (S2, K1, K2).

A key is dotted (`net.ipv4.ip_forward`) and names the file `net/ipv4/ip_forward` under
/proc/sys. Anything that could step outside /proc/sys (`..`, `/`, empty segments) is
refused here, before a path is ever built from it.
"""

from __future__ import annotations

import logging

from kubeos.errors import Problem
from kubeos.models.settings import SettingsConfig

log = logging.getLogger(__name__)

_FORBIDDEN = frozenset("/\\\x00\n\r")


def key_problem(key: str) -> str | None:
    """Why `key` is not a usable sysctl key, or None when it is."""
    if not key:
        return "must not be empty"
    if "=" in key:
        return f"must not contain '=' (got {key!r})"
    if any(ch in _FORBIDDEN for ch in key):
        return f"must be dotted (a.b.c) without '/', '\\', NUL or newline (got {key!r})"
    if any(ch.isspace() for ch in key):
        return f"must not contain whitespace (got {key!r})"
    segments = key.split(".")
    if any(s == "" for s in segments):
        return f"must not have empty segments ('..', leading or trailing '.') (got {key!r})"
    return None


def key_segments(key: str) -> list[str]:
    """`a.b.c` -> ["a", "b", "c"]; ValueError for a key `key_problem` refuses."""
    problem = key_problem(key)
    if problem is not None:
        raise ValueError(f"key {problem}")
    return key.split(".")


def normalize_value(value: str) -> str:
    """The kernel prints multi-field values with tabs; compare them field by field."""
    return " ".join(value.split())


def validate_block(
    model: str, config: SettingsConfig, value_needed_for_delete: bool
) -> list[Problem]:
    """K2/S2/S3 for one config block; S4 delete on kernel.sysctl is only a warning."""
    problems: list[Problem] = []
    key_rule = "S2" if value_needed_for_delete else "K2"
    for i, item in enumerate(config.contents):
        problem = key_problem(item.key)
        if problem is not None:
            problems.append(Problem(f"contents[{i}].key", key_rule, problem))
        if item.is_delete and not value_needed_for_delete:
            log.warning(
                "%s: contents[%d] key %r: delete is not supported and will be ignored (S4/K2)",
                model,
                i,
                item.key,
            )
            continue
        if not item.value or not item.value.strip():
            problems.append(
                Problem(f"contents[{i}].value", "S3", f"must not be empty for key {item.key!r}")
            )
        elif any(ch.isspace() for ch in item.value):
            log.warning(
                "%s: contents[%d] key %r: value %r contains spaces or tabs"
                " (S2: discouraged; written as-is, never through a shell)",
                model,
                i,
                item.key,
                item.value,
            )
    return problems
