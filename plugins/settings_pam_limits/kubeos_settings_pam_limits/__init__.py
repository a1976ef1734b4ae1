"""kubeos add-on: the `pam.limits` settings model (/etc/security/limits.conf lines).

A limits.conf line is `<domain> <type> <item> <value>`. The key names the first three,
joined with dots and split from the right, so a domain may itself hold dots:
`*.soft.nofile`, `@wheel.hard.nproc`, `john.doe.-.memlock`. The value is the fourth field.
Add/update rewrites the matching line (keeping its spacing and any trailing comment) or
appends one; delete removes it only when the value matches too (S5).
"""

from __future__ import annotations

import logging
import re

from kubeos.contracts import Change, NodeContext, Provides
from kubeos.errors import Problem, SettingError
from kubeos.fsutil import atomic_write
from kubeos.hooks import hookimpl
from kubeos.models.settings import SettingItem, SettingsConfig

MODEL = "pam.limits"
DEFAULT_PATH = "/etc/security/limits.conf"
TYPES = ("soft", "hard", "-")
ITEMS = (
    "core", "data", "fsize", "memlock", "nofile", "rss", "stack", "cpu", "nproc", "as",
    "maxlogins", "maxsyslogins", "nonewprivs", "priority", "locks", "sigpending", "msgqueue",
    "nice", "rtprio",
)  # fmt: skip
_DOMAIN = re.compile(r"^(\*|%|[@%]?[A-Za-z0-9_][A-Za-z0-9_.:-]*|%?[0-9]*:[0-9]*)$")
_VALUE = re.compile(r"^(-?[0-9]+|unlimited|infinity)$")
# domain, type, item, value, then the rest (spacing + comment) kept as written.
_LINE = re.compile(r"^(\s*)(\S+)(\s+)(\S+)(\s+)(\S+)(\s+)(\S+)(.*)$")
log = logging.getLogger(__name__)


def split_key(key: str) -> tuple[str, str, str]:
    """`domain.type.item` -> its three fields; ValueError naming what is wrong."""
    parts = key.rsplit(".", 2)
    if len(parts) != 3:
        raise ValueError("must be <domain>.<type>.<item>, e.g. '*.soft.nofile'")
    domain, type_, item = parts
    if not _DOMAIN.match(domain):
        raise ValueError(f"domain {domain!r} is not a user, @group, %group, uid range or '*'")
    if type_ not in TYPES:
        raise ValueError(f"type {type_!r} must be one of soft, hard, -")
    if item not in ITEMS:
        raise ValueError(f"item {item!r} is not a limits.conf item")
    return domain, type_, item


@hookimpl
def kubeos_provides() -> Provides:
    return Provides(setting_models=(MODEL,))


@hookimpl
def kubeos_validate_setting(model: str, config: SettingsConfig) -> list[Problem]:
    problems = []
    for i, entry in enumerate(config.contents):
        try:
            split_key(entry.key)
        except ValueError as exc:
            problems.append(Problem(f"contents[{i}].key", "PL1", f"{entry.key!r}: {exc}"))
        if entry.value is None:
            if not entry.is_delete:
                problems.append(Problem(f"contents[{i}].value", "S3", "must not be empty"))
        elif not _VALUE.match(entry.value):
            problems.append(
                Problem(f"contents[{i}].value", "PL2", "must be an integer, unlimited or infinity")
            )
    return problems


@hookimpl
def kubeos_apply_setting(model: str, config: SettingsConfig, node: NodeContext) -> list[Change]:
    path = node.host_path(config.configpath or DEFAULT_PATH)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise SettingError(model, "", f"directory {path.parent} does not exist") from None
        text = ""
    except UnicodeDecodeError:
        raise SettingError(model, "", f"{path} is not text, left untouched") from None
    lines = text.splitlines(keepends=True)
    changes = []
    for entry in config.contents:
        try:
            changes.append(_apply(lines, entry))
        except ValueError as exc:
            raise SettingError(model, entry.key, str(exc)) from None  # nothing written yet
    rendered = "".join(lines)
    if rendered != text:
        atomic_write(path, rendered)
    return changes


def _find(lines: list[str], fields: tuple[str, str, str]) -> int | None:
    """Index of the last line setting `fields` (the last one is what pam_limits applies)."""
    found = None
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#"):
            continue
        m = _LINE.match(line.rstrip("\n"))
        if m and (m[2], m[4], m[6]) == fields:
            found = i
    return found


def _apply(lines: list[str], entry: SettingItem) -> Change:
    fields = split_key(entry.key)
    at = _find(lines, fields)
    m = _LINE.match(lines[at].rstrip("\n")) if at is not None else None
    old = m[8] if m else None
    if entry.is_delete:
        if m is None or at is None:
            log.warning("%s: %s is absent; nothing to delete", MODEL, entry.key)
            return Change(MODEL, entry.key, "unchanged", note="absent; nothing to delete")
        if entry.value is not None and entry.value != old:
            log.warning(
                "%s: %s is %s, not %s; not deleted (S5)", MODEL, entry.key, old, entry.value
            )
            return Change(MODEL, entry.key, "unchanged", note="value differs; not deleted (S5)")
        del lines[at]
        return Change(MODEL, entry.key, "deleted", old=old)
    assert entry.value is not None
    if m is not None and at is not None:
        if old == entry.value:
            return Change(MODEL, entry.key, "unchanged")
        end = "\n" if lines[at].endswith("\n") else ""
        lines[at] = "".join(m.groups()[:7]) + entry.value + m[9] + end
        return Change(MODEL, entry.key, "updated", old, entry.value)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.append("\t".join((*fields, entry.value)) + "\n")
    return Change(MODEL, entry.key, "added", None, entry.value)
